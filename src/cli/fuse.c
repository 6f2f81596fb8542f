/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fuse applet: an image's virtual disk as files on a FUSE mount, `DIR/disk` and one file per
 * partition (`DIR/p1`, `DIR/p5` ...), read through the image layer; writable where the image's data
 * lies as it is in a file. Needs no root (fusermount3 mounts for an ordinary user) and no loop
 * device; kpartx -a uses it, with a loop device on DIR/disk, for images that are not raw.
 *
 *   partmap fuse [-r | --snapshot] [-f] [--format FMT] IMAGE DIR
 *   partmap fuse -u DIR
 *
 * The server detaches from the terminal (fuse_daemonize: setsid, chdir /, stdio to /dev/null) once
 * the mount is in place, logs to syslog (or the kernel log when no syslog listens), answers on
 * several threads, and turns a failed read of the image into an I/O error for that request only. */
#define FUSE_USE_VERSION 31
#include "applets.h"
#include "common.h"
#include "../serve.h"
#include "../disk.h"
#include "../image/image.h"
#include "../ptable.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#define SERVE_TIMEOUT 3600.0   /* attributes and names never change while mounted */
#define MAX_LOGGED_ERRORS 100  /* then one line saying the rest are not logged */
#define SERVE_READAHEAD_KB 4096 /* the mount's read-ahead, when root can set it (raise_readahead) */
#define SERVE_MAX_READ (256 * 1024) /* the largest read request (fs_init, and the max_read option) */

struct file {
	char name[16];
	uint64_t off, size;        /* bytes of the virtual disk */
};

struct server {
	struct pm_image *img;
	const char *image_path;
	bool read_only;
	struct file *files;
	size_t nfiles;
	bool to_kmsg;              /* no syslog daemon: the kernel log */
	unsigned logged;
	uid_t uid;
	gid_t gid;
	char readahead[64];        /* sysfs file of the mount's read-ahead; "" when it cannot be set */
	bool readahead_done;
};

static struct server *srv(void)
{
	return fuse_get_context()->private_data;
}

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
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dprintf(fd, "<%d>partmap-fuse[%d]: %s\n", prio, (int)getpid(), msg);
		close(fd);
	}
}

static const struct file *find(struct server *s, const char *path)
{
	if (path[0] != '/')
		return NULL;
	for (size_t i = 0; i < s->nfiles; i++)
		if (!strcmp(path + 1, s->files[i].name))
			return &s->files[i];
	return NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct server *s = srv();
	const struct file *f;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!(f = find(s, path)))
		return -ENOENT;
	st->st_mode = S_IFREG | (s->read_only ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)f->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
	st->st_ino = (ino_t)(f - s->files) + 2;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct server *s = srv();

	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < s->nfiles; i++)
		fill(buf, s->files[i].name, NULL, 0, 0);
	return 0;
}

/* The kernel gives a FUSE mount 128 KiB of read-ahead (an INIT reply can only lower it), so a loop
 * device reading the served disk sequentially gets it in 128 KiB requests, one round trip each.
 * With 4 MiB, read-ahead asks in requests of SERVE_MAX_READ and keeps several in flight: a cold
 * sequential read of a served qcow2 ran about twice as fast (bench/serve.sh; README).
 * Only root may set it, in sysfs, and only after INIT, which would lower it again: at the first open,
 * which comes before the file's read-ahead state is set up from it (kpartx -a reads the table from
 * the served disk before a loop device opens it). Never lowered. */
static void raise_readahead(struct server *s)
{
	char cur[32];
	ssize_t n;

	if (!s->readahead[0] || __atomic_exchange_n(&s->readahead_done, true, __ATOMIC_RELAXED))
		return;
	_cleanup_close_ int fd = open(s->readahead, O_RDWR | O_CLOEXEC);
	if (fd < 0 || (n = pread(fd, cur, sizeof(cur) - 1, 0)) <= 0)
		return;
	cur[n] = 0;
	if (strtoul(cur, NULL, 10) < SERVE_READAHEAD_KB)
		dprintf(fd, "%d\n", SERVE_READAHEAD_KB);
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct server *s = srv();

	raise_readahead(s);
	if (!find(s, path))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && s->read_only)
		return -EROFS;
	fi->keep_cache = 1; /* the image changes only through this mount */
	return 0;
}

/* The file of a request and its size cut at the file's end: 1 to go on, 0 at or past the end. */
static int request(struct server *s, const char *path, off_t off, size_t *size, const struct file **f)
{
	if (!(*f = find(s, path)))
		return -ENOENT;
	if (off < 0 || (uint64_t)off >= (*f)->size)
		return 0;
	if (*size > (*f)->size - (uint64_t)off)
		*size = (size_t)((*f)->size - (uint64_t)off);
	return 1;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct server *s = srv();
	const struct file *f;
	int r = request(s, path, off, &size, &f);

	(void)fi;
	if (r <= 0)
		return r;
	r = pm_image_read(s->img, f->off + (uint64_t)off, buf, size);
	if (r < 0) {
		logf_(s, LOG_ERR, "%s: read of %zu bytes at %" PRIu64 " failed: %s", s->image_path, size,
		      f->off + (uint64_t)off, strerror(-r));
		return -EIO;
	}
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct server *s = srv();
	const struct file *f;
	int r = request(s, path, off, &size, &f);

	(void)fi;
	if (r < 0)
		return r;
	if (s->read_only)
		return -EROFS;
	if (r == 0)
		return size ? -ENOSPC : 0;
	r = pm_image_write(s->img, f->off + (uint64_t)off, buf, size);
	if (r < 0) {
		logf_(s, LOG_ERR, "%s: write of %zu bytes at %" PRIu64 " failed: %s", s->image_path, size,
		      f->off + (uint64_t)off, strerror(-r));
		return r == -EROFS ? -EROFS : -EIO;
	}
	return (int)size;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct server *s = srv();

	(void)path, (void)datasync, (void)fi;
	return s->read_only ? 0 : pm_image_sync(s->img);
}

/* A hole punched (the loop device's discard and write-zeroes) or a range zeroed: it reads as zeros
 * afterwards, released in the image where its format can. */
static int fs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct server *s = srv();
	const struct file *f;
	size_t size = (size_t)len;
	int r;

	(void)fi;
	if (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return 0; /* allocating: every byte of the files is there already */
	if (s->read_only)
		return -EROFS;
	if (len <= 0 || (r = request(s, path, off, &size, &f)) < 0)
		return len <= 0 ? -EINVAL : r;
	if (r == 0)
		return 0;
	r = pm_image_zero_range(s->img, f->off + (uint64_t)off, size);
	if (r < 0) {
		logf_(s, LOG_ERR, "%s: discard of %zu bytes at %" PRIu64 " failed: %s", s->image_path, size,
		      f->off + (uint64_t)off, strerror(-r));
		return r == -EROFS ? -EROFS : -EIO;
	}
	return 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	const struct file *f = find(srv(), path);

	(void)fi;
	/* the files have the disk's size; opening with O_TRUNC is allowed, changing it is not */
	return !f ? -ENOENT : (uint64_t)size == f->size ? 0 : -EPERM;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* read requests of at most 256 KiB (libfuse allows 1 MiB, max_pages 256, which writes keep: a
	 * smaller max_write made them 4 times slower): through the 4 MiB read-ahead a cold sequential read
	 * was as fast as with 1 MiB, and the server's peak memory half (each busy thread holds a reply
	 * buffer of the request's size; bench/serve.sh, README). libfuse wants the same value in the mount
	 * options. */
	conn->max_read = SERVE_MAX_READ;
	cfg->kernel_cache = 1;
	cfg->entry_timeout = cfg->attr_timeout = SERVE_TIMEOUT;
	cfg->use_ino = 1;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.truncate = fs_truncate,
	.init = fs_init,
};

/* disk, then a file per partition of the table on the virtual disk */
static int make_files(struct server *s)
{
	struct pm_disk d;
	struct pm_table t;
	struct pm_opts o = { 0 };
	int r;

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
	s->files[0].size = pm_image_size(s->img);
	s->nfiles = 1;
	for (size_t i = 0; i < t.nparts; i++) {
		struct file *f = &s->files[s->nfiles++];
		snprintf(f->name, sizeof(f->name), "p%u", t.parts[i].num);
		f->off = t.parts[i].start * 512;
		f->size = t.parts[i].size * 512;
	}
	pm_table_free(&t);
	return 0;
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

	struct server s = { .image_path = abs_image, .uid = getuid(), .gid = getgid() };
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
	char opts[PATH_MAX + 128], fsname[PATH_MAX];
	pm_strlcpy(fsname, abs_image, sizeof(fsname));
	for (char *p = fsname; *p; p++)
		if (*p == ',' || *p == ' ' || *p == '\\')
			*p = '_'; /* would split the options or the mountinfo line */
	snprintf(opts, sizeof(opts), "-ofsname=%s%s,subtype=partmap,default_permissions,max_read=%d%s",
		 snapshot ? PM_SERVE_SNAPSHOT_PREFIX : PM_SERVE_FSNAME_PREFIX, fsname, SERVE_MAX_READ,
		 s.read_only ? ",ro" : "");
	char *fargv[] = { argv[0], opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(2, fargv);
	cli_malloc_for_serving();
	struct fuse *f = fuse_new(&args, &ops, sizeof(ops), &s);
	if (!f) {
		fprintf(stderr, "fuse: cannot start the FUSE session\n");
		pm_image_close(s.img);
		return 1;
	}
	if (fuse_mount(f, dir) < 0) {
		fprintf(stderr, "fuse: %s: cannot mount (see the message above)\n", dir);
		fuse_destroy(f);
		pm_image_close(s.img);
		return 1;
	}
	char abs_dir[PATH_MAX];
	dev_t mdev;
	if (geteuid() == 0 && realpath(dir, abs_dir) && pm_serve_mount_dev(abs_dir, &mdev) == 0)
		snprintf(s.readahead, sizeof(s.readahead), "/sys/class/bdi/%u:%u/read_ahead_kb", major(mdev), minor(mdev));
	/* mounted: the caller may use it as soon as this process's parent sees it exit */
	if (fuse_daemonize(foreground) < 0) {
		fuse_unmount(f);
		fuse_destroy(f);
		pm_image_close(s.img);
		return 1;
	}
	fuse_set_signal_handlers(fuse_get_session(f));
	r = fuse_loop_mt(f, 0);
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	if (!s.read_only)
		pm_image_sync(s.img);
	pm_image_close(s.img);
	free(s.files);
	closelog();
	return r < 0 ? 1 : 0;
}
