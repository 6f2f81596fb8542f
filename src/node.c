/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "node.h"
#include "mountinfo.h"
#include "names.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define MAPPER_DIR "/dev/mapper"
#define PM_NODE_POLL_MS 10 /* while waiting for devtmpfs or udev to make a node */

int pm_sysfs_devnum(const char *path, dev_t *dev)
{
	char buf[32];
	unsigned maj, min;
	int r = pm_read_line(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	if (sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	*dev = makedev(maj, min);
	return 0;
}

int pm_dev_kernel_name(dev_t dev, char *buf, size_t len)
{
	char link[64], target[PATH_MAX];
	const char *b;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? -ENODEV : -errno;
	target[n] = 0;
	b = strrchr(target, '/');
	pm_strlcpy(buf, b ? b + 1 : target, len);
	return 0;
}

/* the last mount on /dev wins */
static int dev_mount(const struct pm_mount *m, void *arg)
{
	if (!strcmp(m->target, "/dev"))
		*(bool *)arg = !strcmp(m->fstype, "devtmpfs");
	return 0;
}

bool pm_dev_is_devtmpfs(void)
{
	bool devtmpfs = false;

	pm_mountinfo_each(dev_mount, &devtmpfs);
	return devtmpfs;
}

int pm_node_ensure(const char *path, dev_t dev, mode_t mode, uid_t uid, gid_t gid, int wait_ms, bool *made)
{
	struct stat st;

	if (made)
		*made = false;
	for (int waited = 0;; waited += PM_NODE_POLL_MS) {
		if (lstat(path, &st) == 0) {
			if (S_ISBLK(st.st_mode) && st.st_rdev == dev)
				return 0;
			/* udev's entry: a link to the device's node (/dev/mapper/loop0p1 -> ../dm-0) is left
			 * alone; replacing it makes udev log "Conflicting inode" and drop its link */
			struct stat tgt;
			if (S_ISLNK(st.st_mode) && stat(path, &tgt) == 0 && S_ISBLK(tgt.st_mode) && tgt.st_rdev == dev)
				return 0;
			/* stale: a node for another device, or something else in the way */
			if (!S_ISBLK(st.st_mode) && !S_ISLNK(st.st_mode))
				return -EEXIST;
			if (unlink(path) < 0 && errno != ENOENT)
				return -errno;
			break;
		}
		if (errno != ENOENT)
			return -errno;
		if (waited >= wait_ms)
			break;
		pm_sleep_ms(PM_NODE_POLL_MS);
	}
	if (!mode)
		mode = 0600;
	if (mknod(path, S_IFBLK | mode, dev) < 0) {
		if (errno == EEXIST && lstat(path, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev)
			return 0; /* devtmpfs was faster after all */
		return -errno;
	}
	if (made)
		*made = true;
	/* mknod() obeys the umask: set the mode given, and the owner, on the node itself (a symlink put
	 * there meanwhile is never followed). On failure the node keeps a narrower mode, or root. */
	(void)fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW);
	if (uid || gid)
		(void)fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
	return 0;
}

int pm_node_remove(const char *path, dev_t dev)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISBLK(st.st_mode) || st.st_rdev != dev)
		return 0;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int pm_mapper_path(char *buf, size_t len, const char *name)
{
	if (!pm_dm_name_valid(name))
		return -EINVAL;
	return snprintf(buf, len, MAPPER_DIR "/%s", name) >= (int)len ? -ENAMETOOLONG : 0;
}

int pm_mapper_readlink(const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int r = pm_mapper_path(path, sizeof(path), name);

	if (r < 0)
		return r;
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

int pm_mapper_link(const char *name, const char *target)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], cur[PATH_MAX];
	struct stat st;
	int r = pm_mapper_path(path, sizeof(path), name);

	if (r < 0)
		return r;
	/* the common case, a name not yet taken: one syscall */
	if (symlink(target, path) == 0)
		return 0;
	if (errno == ENOENT) {
		if (mkdir(MAPPER_DIR, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (symlink(target, path) == 0)
			return 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		if (pm_mapper_readlink(name, cur, sizeof(cur)) == 0 && !strcmp(cur, target))
			return 0;
	}
	/* atomic replace: a new link renamed over the old one */
	snprintf(tmp, sizeof(tmp), MAPPER_DIR "/.%s.partmap-%d", name, (int)getpid());
	unlink(tmp);
	if (symlink(target, tmp) < 0)
		return -errno;
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}


struct mount_count {
	dev_t dev;
	int n;
};

static int count_mount(const struct pm_mount *m, void *arg)
{
	struct mount_count *c = arg;

	c->n += m->dev == c->dev;
	return 0;
}

/* the mounts of the filesystem on dev */
static int count_mounts(dev_t dev)
{
	struct mount_count c = { .dev = dev };

	pm_mountinfo_each(count_mount, &c);
	return c.n;
}

static int count_holders(dev_t dev)
{
	char path[128];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/holders", major(dev), minor(dev));
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* loop devices whose backing file is this block device */
static int count_loops_over(dev_t dev)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], back[4096];
		struct stat st;
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		if (pm_read_line(path, back, sizeof(back)) < 0)
			continue;
		if (stat(back, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev)
			n++;
	}
	closedir(d);
	return n;
}

int pm_block_openers(dev_t dev, pid_t except)
{
	DIR *proc = opendir("/proc");
	struct dirent *pe;
	int n = count_mounts(dev) + count_holders(dev) + count_loops_over(dev);

	if (!proc)
		return -errno;
	while ((pe = readdir(proc))) {
		char path[300];
		DIR *fds;
		struct dirent *fe;
		pid_t pid = (pid_t)atoi(pe->d_name);

		if (pid <= 0 || pid == except)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if (!(fds = opendir(path)))
			continue;
		while ((fe = readdir(fds))) {
			struct stat st;
			if (fe->d_name[0] == '.')
				continue;
			if (fstatat(dirfd(fds), fe->d_name, &st, 0) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev)
				n++;
		}
		closedir(fds);
	}
	closedir(proc);
	return n;
}
