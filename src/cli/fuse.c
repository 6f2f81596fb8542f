/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fuse applet: an image's virtual disk as files on a FUSE mount, `DIR/disk` and one file per
 * partition (`DIR/p1`, `DIR/p5` ...), read through the image layer; writable where the image's data
 * lies as it is in a file. Needs no root (fusermount3 mounts for an ordinary user) and no loop
 * device; kpartx -a uses it, with a loop device on DIR/disk, for images that are not raw.
 *
 *   partmap fuse [-r | --snapshot] [-f] [--format FMT] IMAGE DIR
 *   partmap fuse -u DIR
 *
 * The files are served by the FUSE front end (src/vdev/front.h) that also serves the userspace
 * device mapper's devices: the image as a vdev, each partition a slice of it. The server detaches
 * from the terminal (setsid, chdir /, stdio to /dev/null) once the mount is in place, logs to syslog
 * (or the kernel log when no syslog listens), answers on several threads, and turns a failed read of
 * the image into an I/O error for that request only. This file: options and setup. */
#include "applets.h"
#include "common.h"
#include "../serve.h"
#include "../disk.h"
#include "../image/image.h"
#include "../ptable.h"
#include "../util.h"
#include "../vdev/front.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define MAX_LOGGED_ERRORS 100  /* then one line saying the rest are not logged */
#define SERVE_READAHEAD_KB 4096 /* the mount's read-ahead, when root can set it (front.h) */
/* read requests of at most 256 KiB (libfuse allows 1 MiB, max_pages 256, which writes keep: a
 * smaller max_write made them 4 times slower): through the 4 MiB read-ahead a cold sequential read
 * was as fast as with 1 MiB, and the server's peak memory half (each busy thread holds a reply buffer
 * of the request's size; bench/serve.sh, README) */
#define SERVE_MAX_READ (256 * 1024)

/* a file of the mount: the disk (the image's vdev) or a partition (a slice of it) */
struct file {
	char name[16];
	uint64_t off;              /* bytes of the virtual disk */
	struct pm_vdev v;
};

struct server {
	struct pm_image *img;
	const char *image_path;
	bool read_only;
	struct pm_vdev disk;
	struct file *files;
	size_t nfiles;
	bool to_kmsg;              /* no syslog daemon: the kernel log */
	unsigned logged;
};

static void logf_(struct server *s, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(struct server *s, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (__atomic_fetch_add(&s->logged, 1, __ATOMIC_RELAXED) > MAX_LOGGED_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->logged == MAX_LOGGED_ERRORS + 1)
		snprintf(msg, sizeof(msg), "%s: more errors, not logged", s->image_path);
	if (!s->to_kmsg) {
		syslog(prio, "%s", msg);
		return;
	}
	/* one write(): dprintf() writes nothing to /dev/kmsg (glibc's lseek(SEEK_CUR) on it fails) */
	char line[600];
	int n = snprintf(line, sizeof(line), "<%d>partmap-fuse[%d]: %s\n", prio, (int)getpid(), msg);
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0) {
			/* nowhere else to say it */
		}
		close(fd);
	}
}

/* a request the image failed: logged with its offset in the virtual disk */
static void io_error(void *arg, const char *name, const char *op, uint64_t off, uint64_t len, int err)
{
	struct server *s = arg;

	for (size_t i = 0; i < s->nfiles; i++)
		if (!strcmp(s->files[i].name, name))
			off += s->files[i].off;
	logf_(s, LOG_ERR, "%s: %s of %" PRIu64 " bytes at %" PRIu64 " failed: %s", s->image_path, op, len, off,
	      strerror(-err));
}

static void close_files(struct server *s)
{
	for (size_t i = 1; i < s->nfiles; i++)
		pm_vdev_close(&s->files[i].v);
	free(s->files);
	s->files = NULL;
	s->nfiles = 0;
}

/* disk, then a file per partition of the table on the virtual disk (cut at the disk's end) */
static int make_files(struct server *s)
{
	struct pm_disk d;
	struct pm_table t;
	struct pm_opts o = { 0 };
	int r;

	pm_vdev_from_image(&s->disk, s->img, s->read_only);
	pm_disk_from_image(&d, s->img);
	r = pm_probe(&d, &o, &t);
	pm_disk_close(&d);
	if (r < 0)
		t.nparts = 0; /* a damaged table: the disk alone */
	s->files = calloc(t.nparts + 1, sizeof(*s->files));
	if (!s->files) {
		pm_table_free(&t);
		return -ENOMEM;
	}
	snprintf(s->files[0].name, sizeof(s->files[0].name), "disk");
	s->files[0].v = s->disk;
	s->nfiles = 1;
	for (size_t i = 0; i < t.nparts && r >= 0; i++) {
		struct file *f = &s->files[s->nfiles];
		uint64_t off = t.parts[i].start * 512, size = t.parts[i].size * 512;
		if (off > s->disk.size)
			continue;
		if (size > s->disk.size - off)
			size = s->disk.size - off;
		snprintf(f->name, sizeof(f->name), "p%u", t.parts[i].num);
		f->off = off;
		if ((r = pm_vdev_slice(&f->v, &s->disk, off, size)) == 0)
			s->nfiles++;
	}
	pm_table_free(&t);
	if (r < 0)
		close_files(s);
	return r < 0 ? r : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: partmap fuse [-r|--snapshot] [-f] [--format FMT] IMAGE DIR   show DIR/disk and DIR/pN\n"
		   "       partmap fuse -u DIR                                           stop it\n"
		   "\tDIR/disk is the whole virtual disk, DIR/p1, DIR/p2 ... its partitions (kernel numbers);\n"
		   "\tno root needed (fusermount3), no loop device\n"
		   "\t-r            read-only (always, for formats partmap does not write in place)\n"
		   "\t--snapshot    read-write, but every write goes to a temporary qcow2 overlay in $TMPDIR\n"
		   "\t              (else /var/tmp), thrown away at unmount: IMAGE is only read (qemu-nbd -s)\n"
		   "\t-f            stay in the foreground\n"
		   "\t-u DIR        unmount DIR (as fusermount3 -u DIR); the server exits\n"
		   "\t--format FMT  read IMAGE as FMT: raw, qcow2, vmdk, vhd (vpc), vhdx, vdi;\n"
		   "\t              default: detected by its magic\n"
		   "\t--help        print this help\n"
		   "\t--version     print the version\n"
		   "exit status: 0 mounted (or unmounted), 1 usage error or a failure (with a message),\n"
		   "             3 the image is in use: another process (qemu, another partmap) writes it\n"
		   "see also: man partmap-fuse\n");
}

static int unmount_dir(const char *dir)
{
	if (geteuid() == 0) {
		if (umount2(dir, UMOUNT_NOFOLLOW) == 0)
			return 0;
		if (errno != EPERM) {
			fprintf(stderr, "fuse: %s: cannot unmount: %s\n", dir, strerror(errno));
			return 1;
		}
	}
	/* an ordinary user's mount: fusermount3 does it */
	pid_t pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", dir, (char *)NULL);
		fprintf(stderr, "fuse: fusermount3: %s (Debian's fuse3 package has it)\n", strerror(errno));
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* Why this mount cannot work, checked before libfuse reports it less clearly; NULL when it can. */
static const char *cannot_mount(const char *dir, char *why, size_t len)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return why;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "%s: not a directory", dir);
		return why;
	}
	if (pm_dir_has_entries(dir)) {
		snprintf(why, len, "%s: not empty", dir);
		return why;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		snprintf(why, len, "/dev/fuse: %s (no FUSE here: load fuse.ko, or give the container /dev/fuse)",
			 strerror(errno));
		return why;
	}
	if (geteuid() != 0 && !pm_have_command("fusermount3")) {
		snprintf(why, len, "fusermount3 not found: an ordinary user mounts with it (Debian's fuse3 package)");
		return why;
	}
	return NULL;
}

int fuse_main_applet(int argc, char **argv)
{
	enum { OPT_FORMAT = 256, OPT_HELP, OPT_VERSION, OPT_SNAPSHOT };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL;
	bool read_only = false, foreground = false, unmount = false, snapshot = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "rfu", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': read_only = true; break;
		case 'f': foreground = true; break;
		case 'u': unmount = true; break;
		case OPT_FORMAT: format = optarg; break;
		case OPT_SNAPSHOT: snapshot = true; break;
		case OPT_HELP: usage(stdout); return 0;
		case OPT_VERSION: printf("fuse (partmap) %s\n", PARTMAP_VERSION); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (unmount) {
		if (argc - optind != 1) {
			usage(stderr);
			return 1;
		}
		return unmount_dir(argv[optind]);
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 1;
	}
	if (snapshot && read_only) {
		fprintf(stderr, "fuse: --snapshot serves read-write (into a temporary overlay), -r read-only: give one\n");
		return 1;
	}
	const char *image = argv[optind], *dir = argv[optind + 1];
	char why[PATH_MAX + 128], abs_image[PATH_MAX];
	if (cannot_mount(dir, why, sizeof(why))) {
		fprintf(stderr, "fuse: %s\n", why);
		return 1;
	}
	if (!realpath(image, abs_image))
		pm_strlcpy(abs_image, image, sizeof(abs_image));

	struct server s = { .image_path = abs_image };
	struct pm_image_diag diag;
	int r = snapshot ? pm_image_open_snapshot(&s.img, image, format, &diag)
			 : pm_image_open_flags(&s.img, image, format, read_only ? 0 : PM_IMG_WRITABLE, &diag);
	cli_image_warnings("fuse", &diag);
	if (r < 0) {
		fprintf(stderr, "fuse: %s\n", diag.error[0] ? diag.error : strerror(-r));
		return r == -EBUSY ? PM_EXIT_LOCKED : 1;
	}
	const char *ro = pm_image_readonly_reason(s.img);
	s.read_only = read_only || ro;
	if (ro && !read_only)
		fprintf(stderr, "fuse: %s: read-only (%s)\n", image, ro);
	if ((r = make_files(&s)) < 0) {
		fprintf(stderr, "fuse: %s\n", strerror(-r));
		pm_image_close(s.img);
		return 1;
	}
	s.to_kmsg = access("/dev/log", W_OK) < 0;
	openlog("partmap-fuse", LOG_PID, LOG_DAEMON);

	/* fsname names the image: kpartx and mountinfo readers find the server by it */
	char fsname[PATH_MAX + 32], name[PATH_MAX];
	pm_strlcpy(name, abs_image, sizeof(name));
	for (char *p = name; *p; p++)
		if (*p == ',' || *p == ' ' || *p == '\\')
			*p = '_'; /* would split the options or the mountinfo line */
	snprintf(fsname, sizeof(fsname), "%s%s", snapshot ? PM_SERVE_SNAPSHOT_PREFIX : PM_SERVE_FSNAME_PREFIX, name);
	struct pm_front_cfg fc = {
		.fsname = fsname,
		.read_only = s.read_only,
		.discard_zeroes = true,
		.signals = true,
		.max_read = SERVE_MAX_READ,
		.readahead_kb = SERVE_READAHEAD_KB,
		.io_error = io_error,
		.arg = &s,
		.uid = getuid(),
		.gid = getgid(),
	};
	struct pm_front *front;
	cli_malloc_for_serving();
	if ((r = pm_front_new(&front, dir, &fc)) < 0) {
		fprintf(stderr, "fuse: %s: cannot mount (see the message above)\n", dir);
		close_files(&s);
		pm_image_close(s.img);
		return 1;
	}
	for (size_t i = 0; i < s.nfiles && r >= 0; i++)
		r = pm_front_add(front, s.files[i].name, &s.files[i].v);
	/* mounted: the caller may use it as soon as this process's parent sees it exit */
	if (r < 0 || pm_front_daemonize(front, foreground) < 0) {
		pm_front_free(front);
		close_files(&s);
		pm_image_close(s.img);
		return 1;
	}
	r = pm_front_loop(front);
	pm_front_free(front);
	if (!s.read_only)
		pm_image_sync(s.img);
	close_files(&s);
	pm_image_close(s.img);
	closelog();
	return r < 0 ? 1 : 0;
}
