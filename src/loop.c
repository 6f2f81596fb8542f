/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "loop.h"
#include "node.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* how long a loop device's status may take before its backing file is taken for one on a FUSE
 * server that does not answer (see complete_infos) */
#define STATUS_WAIT_MS 2000
/* ... and one over a file next to such a hung one's */
#define STATUS_WAIT_SAME_MS 200

/* /sys/block/loop<index>/<rel> as a number, or dflt when it cannot be read */
static uint64_t loop_sys_u64(int index, const char *rel, uint64_t dflt)
{
	char path[128];
	uint64_t v;

	snprintf(path, sizeof(path), "/sys/block/loop%d/%s", index, rel);
	return pm_read_u64(path, &v) == 0 ? v : dflt;
}

/* Is loop device index bound (sysfs shows its loop/ directory only then)? One access(). */
static bool loop_bound(int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", index);
	return access(path, F_OK) == 0;
}

/* What a bound device's status came to: asked in a child process (see complete_infos) and sent
 * back whole through a pipe (smaller than PIPE_BUF: one atomic write). */
struct status_rec {
	int index;
	bool have_status;         /* LOOP_GET_STATUS64 through the node answered */
	bool have_stat;           /* else the backing path could be stat()ed */
	dev_t rdev;               /* the node's number */
	struct loop_info64 li;
	dev_t st_dev;
	ino_t st_ino;
};
_Static_assert(sizeof(struct status_rec) <= PIPE_BUF, "one atomic write a record");

/* The calls that may block on a FUSE server: the status ioctl (the kernel's loop_get_status stats
 * the backing file) and, without a usable node (a container's /dev), a stat of the backing path. */
static void ask_status(const struct pm_loop_info *info, struct status_rec *rec)
{
	char path[64];
	struct stat st;
	int fd;

	memset(rec, 0, sizeof(*rec));
	rec->index = info->index;
	snprintf(path, sizeof(path), "/dev/loop%d", info->index);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && ioctl(fd, LOOP_GET_STATUS64, &rec->li) == 0) {
		rec->have_status = true;
		rec->rdev = st.st_rdev;
	} else if (stat(info->backing, &st) == 0) {
		rec->have_stat = true;
		rec->st_dev = st.st_dev;
		rec->st_ino = st.st_ino;
	}
	if (fd >= 0)
		close(fd);
}

/* the rest of a bound device's info (index and backing path filled) from its status, else sysfs */
static void apply_status(struct pm_loop_info *info, const struct status_rec *rec)
{
	char path[128];
	int index = info->index;

	if (rec && rec->have_status) {
		const struct loop_info64 *li = &rec->li;
		info->dev = rec->rdev;
		info->offset = li->lo_offset;
		info->sizelimit = li->lo_sizelimit;
		info->read_only = li->lo_flags & LO_FLAGS_READ_ONLY;
		info->autoclear = li->lo_flags & LO_FLAGS_AUTOCLEAR;
		info->partscan = li->lo_flags & LO_FLAGS_PARTSCAN;
		info->direct_io = li->lo_flags & LO_FLAGS_DIRECT_IO;
		info->backing_dev = pm_dev_decode(li->lo_device);
		info->backing_ino = (ino_t)li->lo_inode;
		info->backing_known = true;
		info->backing_rdev = pm_dev_decode(li->lo_rdevice);
		char tag[sizeof(li->lo_file_name) + 1];
		memcpy(tag, li->lo_file_name, sizeof(li->lo_file_name));
		tag[sizeof(li->lo_file_name)] = 0;
		pm_strlcpy(info->tag, tag, sizeof(info->tag));
		info->status_known = true;
		return;
	}
	/* no status (no usable node, a dead FUSE server's file, or one that does not answer): sysfs */
	info->offset = loop_sys_u64(index, "loop/offset", 0);
	info->sizelimit = loop_sys_u64(index, "loop/sizelimit", 0);
	info->autoclear = loop_sys_u64(index, "loop/autoclear", 0);
	info->partscan = loop_sys_u64(index, "loop/partscan", 0);
	info->direct_io = loop_sys_u64(index, "loop/dio", 0);
	info->read_only = loop_sys_u64(index, "ro", 0);
	snprintf(path, sizeof(path), "/sys/block/loop%d/dev", index);
	if (pm_sysfs_devnum(path, &info->dev) < 0)
		info->dev = 0;
	if (rec && rec->have_stat) {
		info->backing_dev = rec->st_dev;
		info->backing_ino = rec->st_ino;
		info->backing_known = true;
	}
}

/* is path a's directory the same as b's? */
static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');

	return sa && sb && sa - a == sb - b && !strncmp(a, b, (size_t)(sa - a));
}

/* poll fd for input for at most ms: > 0 ready, 0 timed out, < 0 error */
static int wait_input(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Complete info[0..n) (bound devices, index and backing path filled). The status ioctl stats the
 * backing file; for a file on a FUSE mount whose attributes are not cached, the kernel asks the
 * server, and a server that is alive but does not answer (stopped, hung) would block the call for
 * as long as it does (killing the caller does not end it once the server read the request). So
 * the calls run in a child process, one record back per device: a device whose record does not
 * come within STATUS_WAIT_MS is marked hung and gets sysfs's view (sysfs does not touch the file),
 * the child is killed and left (it ends when the server answers or dies), a new one asks the rest.
 * The asking process is a grandchild, reaped by the child between, which is reaped here: one left
 * blocked (both killed) goes to init and is never this process's zombie (a long-lived server, such
 * as the userspace DM's, asks at every table load).
 * A device over a file in the same directory as a hung one's (likely the same mount) is waited for
 * STATUS_WAIT_SAME_MS only: asked all the same, as the path may be another mount namespace's, and
 * a dead server's device (the status fails at once) must not pass for a hung one. */
static void complete_infos(struct pm_loop_info *info, size_t n)
{
	char stuck[PATH_MAX];
	size_t i = 0;

	stuck[0] = '\0'; /* not the whole buffer: each page of stack touched is a page fault */

	while (i < n) {
		int p[2];
		pid_t pid;

		if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
			/* no child to be had: sysfs only, for all the rest (no call that might block) */
			for (; i < n; i++)
				apply_status(&info[i], NULL);
			return;
		}
		if (pid == 0) {
			pid_t me;
			/* none of the caller's descriptors but the pipe: a child left blocked must not
			 * hold them (a userspace DM client's connection would keep its server) */
			if (p[1] != 3 && dup2(p[1], 3) < 0)
				_exit(1);
			close_range(4, ~0U, 0);
			p[1] = 3;
			/* this child reaps the one that asks, and is reaped by the caller: only an asker
			 * left blocked (both killed) outlives it, and goes to init, not to the caller */
			if ((me = fork()) != 0) {
				/* its end of the pipe closes when it exits: then the caller reaps it */
				if (me > 0)
					reap(me);
				_exit(me < 0 ? 1 : 0);
			}
			me = getpid();
			if (write(p[1], &me, sizeof(me)) != (ssize_t)sizeof(me))
				_exit(1);
			for (size_t j = i; j < n; j++) {
				struct status_rec rec;
				ask_status(&info[j], &rec);
				if (write(p[1], &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
					_exit(1);
			}
			_exit(0);
		}
		close(p[1]);
		/* the asker's pid first */
		pid_t asker = 0;
		if (wait_input(p[0], STATUS_WAIT_MS) <= 0 || read(p[0], &asker, sizeof(asker)) != (ssize_t)sizeof(asker) ||
		    asker <= 0) {
			/* no asker: sysfs only, for all the rest */
			close(p[0]);
			kill(pid, SIGKILL);
			reap(pid);
			for (; i < n; i++)
				apply_status(&info[i], NULL);
			return;
		}
		bool killed = false;
		for (; i < n && !killed; i++) {
			struct status_rec rec;
			int wait = stuck[0] && same_dir(info[i].backing, stuck) ? STATUS_WAIT_SAME_MS : STATUS_WAIT_MS;
			int r = wait_input(p[0], wait);

			if (r > 0 && read(p[0], &rec, sizeof(rec)) == (ssize_t)sizeof(rec) && rec.index == info[i].index) {
				apply_status(&info[i], &rec);
				continue;
			}
			/* no answer in time (or the child is gone): this device from sysfs, the rest from a
			 * new child */
			if (r == 0) {
				info[i].hung = true;
				pm_strlcpy(stuck, info[i].backing, sizeof(stuck));
			}
			apply_status(&info[i], NULL);
			kill(asker, SIGKILL);
			killed = true;
		}
		/* the pipe's end of file: the asker and the child between have both exited. An asker
		 * that answered everything may still block in its exit (closing a device whose release
		 * asks a FUSE server): after STATUS_WAIT_MS the child between is killed (it waits
		 * interruptibly), as it is at once when the asker was */
		char c;
		if (killed || wait_input(p[0], STATUS_WAIT_MS) <= 0 || read(p[0], &c, 1) != 0)
			kill(pid, SIGKILL);
		close(p[0]);
		reap(pid);
	}
}

int pm_loop_info(int index, struct pm_loop_info *info)
{
	char path[128];
	int r;

	memset(info, 0, sizeof(*info));
	info->index = index;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", index);
	r = pm_read_line(path, info->backing, sizeof(info->backing));
	if (r == -ENOENT) {
		/* the device exists but is not bound, or does not exist at all */
		snprintf(path, sizeof(path), "/sys/block/loop%d", index);
		return access(path, F_OK) == 0 ? 0 : -ENODEV;
	}
	if (r < 0)
		return r;
	complete_infos(info, 1);
	return 1;
}

unsigned pm_loop_block_size(int index)
{
	return (unsigned)loop_sys_u64(index, "queue/logical_block_size", 512);
}

/* a list of bound devices, their index and backing path read; completed then passed on */
struct bound {
	struct pm_loop_info *v;
	size_t n, cap;
};

static int bound_add(struct bound *b, int index, const char *backing)
{
	if (pm_grow(&b->v, b->n + 1, &b->cap, sizeof(*b->v)) < 0)
		return -ENOMEM;
	struct pm_loop_info *li = &b->v[b->n++];
	memset(li, 0, sizeof(*li));
	li->index = index;
	pm_strlcpy(li->backing, backing, sizeof(li->backing));
	return 0;
}

/* complete the list (one child process for all the status calls) and call fn on each */
static int bound_each(struct bound *b, int (*fn)(const struct pm_loop_info *info, void *arg), void *arg)
{
	int r = 0;

	complete_infos(b->v, b->n);
	for (size_t i = 0; r == 0 && i < b->n; i++)
		r = fn(&b->v[i], arg);
	free(b->v);
	return r < 0 ? r : 0;
}

/* every bound loop device, in sysfs order, with its pm_loop_info */
static int each_loop(int (*fn)(const struct pm_loop_info *info, void *arg), void *arg)
{
	DIR *d = opendir("/sys/block");
	struct bound b = { 0 };
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d))) {
		char rel[NAME_MAX + 32], backing[PATH_MAX];
		int idx = pm_loop_index_of_name(de->d_name);

		if (idx < 0)
			continue;
		/* one openat() tells a bound device: cheap with hundreds of unbound ones; the backing
		 * path from the file just opened */
		snprintf(rel, sizeof(rel), "%s/loop/backing_file", de->d_name);
		int fd = openat(dirfd(d), rel, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, backing, sizeof(backing) - 1);
		close(fd);
		if (n <= 0)
			continue;
		backing[n] = 0;
		backing[strcspn(backing, "\n")] = 0;
		r = bound_add(&b, idx, backing);
	}
	closedir(d);
	if (r < 0) {
		free(b.v);
		return r;
	}
	return bound_each(&b, fn, arg);
}

/* The loop devices with a size, from /proc/partitions: one file for all of them, where the walk over
 * /sys/block costs a lookup for each free device too (hundreds of them after other tools' runs). The
 * kernel lists no device of size 0 there (every free one, and a bound one over an empty file).
 * -ENOENT without /proc. */
static int each_loop_sized(int (*fn)(const struct pm_loop_info *info, void *arg), void *arg, uint64_t min_bytes)
{
	FILE *f = fopen("/proc/partitions", "re");
	struct bound b = { 0 };
	char line[256];
	int r = 0;

	if (!f)
		return -ENOENT;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long kib; /* sectors / 2: 0 for a one-sector device, which is listed all the same */
		char name[64], path[128], backing[PATH_MAX];
		int idx;

		if (sscanf(line, " %u %u %llu %63s", &maj, &min, &kib, name) != 4 ||
		    (idx = pm_loop_index_of_name(name)) < 0)
			continue;
		/* smaller than the caller wants (kib is sectors / 2, rounded down): not a candidate, and
		 * no status asked for it (a child process, whose fork costs -l more than all its work) */
		if (min_bytes / 512 && (uint64_t)kib < (min_bytes / 512 - 1) / 2)
			continue;
		snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", idx);
		if (pm_read_line(path, backing, sizeof(backing)) == 0)
			r = bound_add(&b, idx, backing);
	}
	fclose(f);
	if (r < 0) {
		free(b.v);
		return r;
	}
	return bound_each(&b, fn, arg);
}

int pm_loop_each_info(int (*fn)(const struct pm_loop_info *info, void *arg), void *arg, uint64_t min_bytes)
{
	if (min_bytes >= 512) {
		int r = each_loop_sized(fn, arg, min_bytes);
		if (r != -ENOENT)
			return r;
	}
	return each_loop(fn, arg);
}

struct find {
	bool (*match)(const struct pm_loop_info *li, const void *arg);
	const void *arg;
	int best;
	struct pm_loop_info *info;
};

static int find_one(const struct pm_loop_info *li, void *arg)
{
	struct find *f = arg;

	if (f->match(li, f->arg) && (f->best < 0 || li->index < f->best)) {
		f->best = li->index;
		*f->info = *li;
	}
	return 0;
}

/* The lowest-numbered bound loop device that match() accepts (as a user listing them would take).
 * min_bytes: the smallest device match() can accept (see pm_loop_each_info). */
static int loop_find(bool (*match)(const struct pm_loop_info *li, const void *arg), const void *arg,
		     uint64_t min_bytes, struct pm_loop_info *info)
{
	struct find f = { match, arg, -1, info };
	int r = pm_loop_each_info(find_one, &f, min_bytes);

	return r < 0 ? r : f.best >= 0 ? 1 : 0;
}

struct whole {
	dev_t dev;
	ino_t ino;
	uint64_t size;
};

static bool match_whole(const struct pm_loop_info *li, const void *arg)
{
	const struct whole *w = arg;
	return li->backing_known && li->backing_dev == w->dev && li->backing_ino == w->ino &&
	       pm_loop_covers_whole(li, w->size);
}

bool pm_loop_covers_whole(const struct pm_loop_info *li, uint64_t file_size)
{
	return li->offset == 0 && (li->sizelimit == 0 || li->sizelimit >= file_size);
}

int pm_loop_find_whole(dev_t dev, ino_t ino, uint64_t file_size, struct pm_loop_info *info)
{
	struct whole w = { dev, ino, file_size };
	/* a device showing the whole file is at least as large as the file */
	return loop_find(match_whole, &w, file_size, info);
}

static bool match_path(const struct pm_loop_info *li, const void *arg)
{
	const char *path = arg;
	size_t n = strlen(path);
	return li->offset == 0 && !strncmp(li->backing, path, n) &&
	       (!li->backing[n] || !strcmp(li->backing + n, " (deleted)"));
}

int pm_loop_find_path(const char *path, uint64_t min_bytes, struct pm_loop_info *info)
{
	return loop_find(match_path, path, min_bytes, info);
}

int pm_loop_index_of_name(const char *name)
{
	char *end;
	long v;

	if (strncmp(name, "loop", 4) || !isdigit((unsigned char)name[4]))
		return -ENODEV;
	v = strtol(name + 4, &end, 10);
	return *end || v > INT32_MAX ? -ENODEV : (int)v; /* loop0p1: a partition of one */
}

int pm_loop_index_of(dev_t dev)
{
	char name[NAME_MAX + 1];
	int r = pm_dev_kernel_name(dev, name, sizeof(name));

	return r < 0 ? r : pm_loop_index_of_name(name);
}

/* control_fd when it is one (>= 0), else /dev/loop-control opened into *own for the caller to close;
 * -errno when it cannot be opened */
static int control_or_open(int control_fd, int *own)
{
	if (control_fd >= 0)
		return control_fd;
	*own = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	return *own >= 0 ? *own : -errno;
}

int pm_loop_get_free(int control_fd)
{
	_cleanup_close_ int own = -1;
	int fd = control_or_open(control_fd, &own), r;

	if (fd < 0)
		return fd;
	r = ioctl(fd, LOOP_CTL_GET_FREE);
	return r < 0 ? -errno : r;
}

int pm_loop_open(int index, int flags)
{
	char node[64], sys[96];
	dev_t dev;
	int fd, r;

	snprintf(node, sizeof(node), "/dev/loop%d", index);
	fd = open(node, flags | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	/* no node: a container's /dev, or devtmpfs has not made it yet */
	snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", index);
	r = pm_sysfs_devnum(sys, &dev);
	if (r < 0)
		return r == -ENOENT ? -ENODEV : r;
	r = pm_node_ensure(node, dev, 0660, 0, 0, pm_dev_is_devtmpfs() ? 200 : 0, NULL);
	if (r < 0)
		return r;
	fd = open(node, flags | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static void fill_info(struct loop_info64 *li, const struct pm_loop_cfg *cfg, const char *tag)
{
	memset(li, 0, sizeof(*li));
	li->lo_offset = cfg->offset;
	li->lo_sizelimit = cfg->sizelimit;
	li->lo_flags = (cfg->read_only ? LO_FLAGS_READ_ONLY : 0) | (cfg->autoclear ? LO_FLAGS_AUTOCLEAR : 0) |
		       (cfg->partscan ? LO_FLAGS_PARTSCAN : 0) | (cfg->direct_io ? LO_FLAGS_DIRECT_IO : 0);
	if (tag)
		pm_strlcpy((char *)li->lo_file_name, tag, sizeof(li->lo_file_name));
}

/* How long the kernel may answer EAGAIN while udev or a reader still has pages of the device cached
 * (util-linux retries the same calls): PM_LOOP_EAGAIN_TRIES tries PM_LOOP_EAGAIN_MS apart. */
#define PM_LOOP_EAGAIN_TRIES 40
#define PM_LOOP_EAGAIN_MS 25
/* How often a free device is taken again when another process binds it first (at once for the first
 * 8, then PM_LOOP_BUSY_MS apart). */
#define PM_LOOP_BUSY_TRIES 64
#define PM_LOOP_BUSY_MS 20
/* How often a just-made node is opened again while udev sets its permissions. */
#define PM_LOOP_NODE_TRIES 5
#define PM_LOOP_NODE_MS 20
/* LOOP_CLR_FD tried again on EBUSY (a process closing the device), PM_LOOP_CLR_MS apart. */
#define PM_LOOP_CLR_TRIES 10
#define PM_LOOP_CLR_MS 50

/* ioctl() returning 0 or -errno, tried again while the kernel answers EAGAIN */
static int loop_ioctl(int fd, unsigned long req, void *arg)
{
	for (int i = 0;; i++) {
		if (ioctl(fd, req, arg) == 0)
			return 0;
		if (errno != EAGAIN || i + 1 >= PM_LOOP_EAGAIN_TRIES)
			return -errno;
		pm_sleep_ms(PM_LOOP_EAGAIN_MS);
	}
}

/* the old way, for kernels before 5.8: bind, then set the status and the block size */
static int attach_legacy(int lfd, int backing_fd, const struct pm_loop_cfg *cfg, const char *tag)
{
	struct loop_info64 li;
	int r;

	if (ioctl(lfd, LOOP_SET_FD, backing_fd) < 0)
		return -errno;
	fill_info(&li, cfg, tag);
	li.lo_flags &= ~(unsigned)LO_FLAGS_READ_ONLY; /* comes from how the backing file was opened */
	r = loop_ioctl(lfd, LOOP_SET_STATUS64, &li);
	if (r == 0 && cfg->block_size && cfg->block_size != 512)
		r = loop_ioctl(lfd, LOOP_SET_BLOCK_SIZE, (void *)(unsigned long)cfg->block_size);
	if (r < 0)
		ioctl(lfd, LOOP_CLR_FD, 0);
	return r;
}

/* Check what the kernel did: the device is bound, with the offset and size limit asked for. Kernels
 * 5.8 to 5.10 ignored lo_sizelimit in LOOP_CONFIGURE, so a wrong size limit is set once more with
 * LOOP_SET_STATUS64; anything else still wrong is -EIO. */
static int attach_verify(int lfd, const struct pm_loop_cfg *cfg)
{
	struct loop_info64 li;
	int r;

	if (ioctl(lfd, LOOP_GET_STATUS64, &li) < 0)
		return errno == ENXIO ? -EIO : -errno; /* ENXIO: the device is not bound after all */
	if (li.lo_offset != cfg->offset)
		return -EIO;
	if (li.lo_sizelimit == cfg->sizelimit)
		return 0;
	li.lo_sizelimit = cfg->sizelimit;
	r = loop_ioctl(lfd, LOOP_SET_STATUS64, &li);
	if (r < 0)
		return r;
	if (ioctl(lfd, LOOP_GET_STATUS64, &li) < 0)
		return -errno;
	return li.lo_offset == cfg->offset && li.lo_sizelimit == cfg->sizelimit ? 0 : -EIO;
}

bool pm_loop_is_new(const struct pm_loop_cfg *cfg, int index)
{
	return cfg->index < 0 && cfg->existing && cfg->tag_new && !pm_loop_set_has(cfg->existing, index);
}

int pm_loop_attach(int backing_fd, const struct pm_loop_cfg *cfg, dev_t *dev)
{
	struct loop_config lc;

	for (int attempt = 0; attempt < PM_LOOP_BUSY_TRIES; attempt++) {
		int idx = cfg->index >= 0 ? cfg->index : pm_loop_get_free(cfg->control_fd);
		_cleanup_close_ int lfd = -1;
		const char *tag = cfg->tag;
		int r;

		if (idx < 0)
			return idx;
		if (pm_loop_is_new(cfg, idx))
			tag = cfg->tag_new;
		lfd = pm_loop_open(idx, cfg->read_only ? O_RDONLY : O_RDWR);
		if (lfd < 0) {
			/* udev may still be setting the new node's permissions; or another process removed
			 * the free device between GET_FREE and this open (ENXIO) */
			if ((lfd == -EACCES || lfd == -ENOENT || lfd == -ENODEV || lfd == -ENXIO) &&
			    attempt < PM_LOOP_NODE_TRIES) {
				pm_sleep_ms(PM_LOOP_NODE_MS);
				continue;
			}
			return lfd;
		}
		memset(&lc, 0, sizeof(lc));
		lc.fd = (uint32_t)backing_fd;
		lc.block_size = cfg->block_size;
		fill_info(&lc.info, cfg, tag);
		r = loop_ioctl(lfd, LOOP_CONFIGURE, &lc);
		if (r == -EINVAL || r == -ENOTTY) {
			/* either no LOOP_CONFIGURE (older kernel) or a parameter it refuses: the old calls tell */
			r = attach_legacy(lfd, backing_fd, cfg, tag);
		}
		if (r == 0) {
			struct stat st;
			r = attach_verify(lfd, cfg);
			if (r == 0 && dev)
				r = fstat(lfd, &st) < 0 ? -errno : (*dev = st.st_rdev, 0);
			if (r == 0)
				return idx;
			ioctl(lfd, LOOP_CLR_FD, 0);
			return r;
		}
		if (r == -EBUSY && cfg->index < 0) {
			/* another process took this one between GET_FREE and our configure */
			pm_sleep_ms(attempt < 8 ? 1 : PM_LOOP_BUSY_MS);
			continue;
		}
		return r;
	}
	return -EBUSY;
}

int pm_loop_detach(int index, bool check_busy)
{
	int fd, r = 0;

	/* with check_busy, an exclusive open refuses a mounted or claimed device (EBUSY); the same
	 * descriptor then detaches it */
	fd = pm_loop_open(index, O_RDONLY | (check_busy ? O_EXCL : 0));
	if (fd < 0)
		return fd;
	for (int i = 0; i < PM_LOOP_CLR_TRIES; i++) {
		r = ioctl(fd, LOOP_CLR_FD, 0) < 0 ? -errno : 0;
		if (r != -EBUSY)
			break;
		pm_sleep_ms(PM_LOOP_CLR_MS);
	}
	close(fd);
	if (r == -ENXIO)
		return 0; /* already free */
	if (r < 0)
		return r;
	/* still bound after our close: another process holds the device, and the kernel detaches it
	 * when that one closes it (LOOP_CLR_FD only marks it autoclear then) */
	return loop_bound(index) ? 1 : 0;
}

int pm_loop_set_ro(int index, bool read_only)
{
	int fd = pm_loop_open(index, O_RDONLY), ro = read_only, r;

	if (fd < 0)
		return fd;
	r = ioctl(fd, BLKROSET, &ro) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int pm_loop_set_sizelimit(int index, uint64_t sizelimit)
{
	struct loop_info64 li;
	int fd = pm_loop_open(index, O_RDONLY), r = 0;

	if (fd < 0)
		return fd;
	if (sizelimit == UINT64_MAX) {
		r = ioctl(fd, LOOP_SET_CAPACITY, 0) < 0 ? -errno : 0;
	} else if (ioctl(fd, LOOP_GET_STATUS64, &li) < 0) {
		r = -errno;
	} else {
		li.lo_sizelimit = sizelimit;
		r = loop_ioctl(fd, LOOP_SET_STATUS64, &li);
	}
	close(fd);
	return r;
}

int pm_loop_set_autoclear(int index)
{
	struct loop_info64 li;
	int fd = pm_loop_open(index, O_RDONLY), r;

	if (fd < 0)
		return fd;
	if (ioctl(fd, LOOP_GET_STATUS64, &li) < 0) {
		r = -errno;
	} else {
		li.lo_flags |= LO_FLAGS_AUTOCLEAR;
		r = loop_ioctl(fd, LOOP_SET_STATUS64, &li);
	}
	close(fd);
	return r;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int pm_loop_set_read(struct pm_loop_set *s)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	size_t cap = 0;
	int r = 0;

	s->v = NULL;
	s->n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int idx = pm_loop_index_of_name(de->d_name);
		if (idx < 0)
			continue;
		if (pm_grow(&s->v, s->n, &cap, sizeof(*s->v)) < 0) {
			r = -ENOMEM;
			break;
		}
		s->v[s->n++] = idx;
	}
	closedir(d);
	if (r < 0) {
		pm_loop_set_free(s);
		return r;
	}
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_int);
	return 0;
}

static int *set_find(const struct pm_loop_set *s, int index)
{
	return s->n ? bsearch(&index, s->v, s->n, sizeof(*s->v), cmp_int) : NULL;
}

bool pm_loop_set_has(const struct pm_loop_set *s, int index)
{
	return set_find(s, index) != NULL;
}

void pm_loop_set_del(struct pm_loop_set *s, int index)
{
	int *at = set_find(s, index);

	if (!at)
		return;
	memmove(at, at + 1, (size_t)(s->v + s->n - (at + 1)) * sizeof(*at));
	s->n--;
}

void pm_loop_set_free(struct pm_loop_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

int pm_loop_next_free(void)
{
	struct pm_loop_set s;
	int r, next = 0;

	/* as GET_FREE: nothing for a caller that could not have a device */
	if (faccessat(AT_FDCWD, "/dev/loop-control", R_OK | W_OK, AT_EACCESS) < 0)
		return -errno;
	r = pm_loop_set_read(&s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s.n; i++)
		if (!loop_bound(s.v[i])) {
			next = s.v[i];
			goto out;
		}
	/* none free: the lowest number the set leaves out (it is sorted) */
	for (size_t i = 0; i < s.n && s.v[i] == next; i++)
		next++;
out:
	pm_loop_set_free(&s);
	return next;
}

/* Removals at the same time: the kernel's removals wait for RCU grace periods, which concurrent ones
 * share (128 devices: 6 s one after another, 70 ms from 128 threads on 6.18). Each thread's stack is
 * small: it only makes one ioctl at a time. */
#define PM_LOOP_REMOVE_THREADS 128
#define PM_LOOP_REMOVE_STACK (64 * 1024)
/* A device udev (or blkid) still holds after its detach is tried again, PM_LOOP_REMOVE_MS apart. */
#define PM_LOOP_REMOVE_TRIES 40
#define PM_LOOP_REMOVE_MS 25

struct remove_work {
	int control_fd;
	const int *index;
	int *err;
	size_t n;
	size_t next; /* the next one to take, shared by the threads (atomic) */
};

/* 0 also when the device is gone already, or bound again: another process took it, free, in the
 * meantime (it is that process's now) */
static int remove_one(int control_fd, int index)
{
	for (int i = 0;; i++) {
		if (ioctl(control_fd, LOOP_CTL_REMOVE, index) >= 0 || errno == ENODEV)
			return 0;
		if (errno != EBUSY)
			return -errno;
		/* bound again without autoclear: another process took it (partmap's own, and kpartx's,
		 * carry autoclear while a detach waits for the device's last user) */
		if (loop_sys_u64(index, "loop/autoclear", 1) == 0)
			return 0;
		if (i + 1 >= PM_LOOP_REMOVE_TRIES)
			return -EBUSY;
		pm_sleep_ms(PM_LOOP_REMOVE_MS);
	}
}

static void *remove_worker(void *arg)
{
	struct remove_work *w = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->n)
			return NULL;
		w->err[i] = remove_one(w->control_fd, w->index[i]);
	}
}

size_t pm_loop_remove_many(int control_fd, const int *index, int *err, size_t n)
{
	_cleanup_close_ int own = -1;
	struct remove_work w = { control_fd, index, err, n, 0 };
	pthread_t threads[PM_LOOP_REMOVE_THREADS - 1];
	size_t nthreads = 0, failed = 0;
	pthread_attr_t attr;

	if (n == 0)
		return 0;
	w.control_fd = control_or_open(control_fd, &own);
	if (w.control_fd < 0) {
		for (size_t i = 0; i < n; i++)
			err[i] = w.control_fd;
		return n;
	}
	/* this thread works too; the others start while there is work for them (one that cannot be
	 * started leaves its share to the rest) */
	if (n > 1 && pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, PM_LOOP_REMOVE_STACK);
		while (nthreads + 1 < n && nthreads < PM_LOOP_REMOVE_THREADS - 1 &&
		       pthread_create(&threads[nthreads], &attr, remove_worker, &w) == 0)
			nthreads++;
		pthread_attr_destroy(&attr);
	}
	remove_worker(&w);
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	for (size_t i = 0; i < n; i++)
		failed += err[i] < 0;
	return failed;
}
