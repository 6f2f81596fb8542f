/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "loop.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* read a small sysfs file into buf without the trailing newline; -errno */
static int read_sysfs(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	return 0;
}

static int read_sysfs_u64(const char *path, uint64_t *v)
{
	char buf[32];
	char *end;
	int r = read_sysfs(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int pm_loop_info(int index, struct pm_loop_info *info)
{
	char path[128];
	uint64_t v;
	int r;

	memset(info, 0, sizeof(*info));
	info->index = index;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", index);
	r = read_sysfs(path, info->backing, sizeof(info->backing));
	if (r == -ENOENT) {
		/* the device exists but is not bound, or does not exist at all */
		snprintf(path, sizeof(path), "/sys/block/loop%d", index);
		return access(path, F_OK) == 0 ? 0 : -ENODEV;
	}
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/offset", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->offset = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/sizelimit", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->sizelimit = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/autoclear", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->autoclear = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/partscan", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->partscan = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/dio", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->direct_io = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/ro", index);
	if (read_sysfs_u64(path, &v) == 0)
		info->read_only = v;
	snprintf(path, sizeof(path), "/sys/block/loop%d/queue/logical_block_size", index);
	info->block_size = read_sysfs_u64(path, &v) == 0 ? (unsigned)v : 512;

	/* the authoritative backing device and inode come from the driver itself */
	snprintf(path, sizeof(path), "/dev/loop%d", index);
	{
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		struct loop_info64 li;

		if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &li) == 0) {
			/* lo_device is the kernel's huge_encode_dev() */
			unsigned maj = (unsigned)((li.lo_device & 0xfff00) >> 8);
			unsigned min = (unsigned)((li.lo_device & 0xff) | ((li.lo_device >> 12) & 0xfff00));
			info->backing_dev = makedev(maj, min);
			info->backing_ino = (ino_t)li.lo_inode;
			info->backing_known = true;
			return 1;
		}
	}
	/* no usable node (a container's /dev): the path sysfs reports, if it still names the file */
	{
		struct stat st;
		if (stat(info->backing, &st) == 0) {
			info->backing_dev = st.st_dev;
			info->backing_ino = st.st_ino;
			info->backing_known = true;
		}
	}
	return 1;
}

int pm_loop_find_whole(dev_t dev, ino_t ino, uint64_t file_size, struct pm_loop_info *info)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int best = -1;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct pm_loop_info li;
		char *end;
		long idx;

		if (strncmp(de->d_name, "loop", 4) || !de->d_name[4])
			continue;
		idx = strtol(de->d_name + 4, &end, 10);
		if (*end || idx < 0 || idx > INT32_MAX)
			continue;
		if (pm_loop_info((int)idx, &li) != 1 || !li.backing_known)
			continue;
		if (li.backing_dev != dev || li.backing_ino != ino)
			continue;
		if (li.offset != 0 || (li.sizelimit != 0 && li.sizelimit < file_size))
			continue;
		/* several: take the lowest number, as a user listing them would */
		if (best < 0 || idx < best) {
			best = (int)idx;
			*info = li;
		}
	}
	closedir(d);
	return best >= 0 ? 1 : 0;
}

int pm_loop_get_free(void)
{
	_cleanup_close_ int fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = ioctl(fd, LOOP_CTL_GET_FREE);
	return r < 0 ? -errno : r;
}
