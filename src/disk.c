/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "disk.h"
#include "util.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void disk_init(struct pm_disk *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

int pm_disk_from_fd(struct pm_disk *d, int fd)
{
	struct stat st;

	disk_init(d);
	if (fstat(fd, &st) < 0)
		return -errno;
	d->fd = fd;
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes;
		int ssz;

		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
		if (ioctl(fd, BLKSSZGET, &ssz) < 0)
			return -errno;
		if (ssz < 512 || ssz > 65536 || (ssz & (ssz - 1)))
			return -EINVAL;
		d->size = bytes;
		d->sector_size = (unsigned)ssz;
		d->is_blockdev = true;
		d->rdev = st.st_rdev;
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
		d->st_dev = st.st_dev;
		d->st_ino = st.st_ino;
	} else if (S_ISDIR(st.st_mode)) {
		return -EISDIR;
	} else {
		return -ENOTBLK;
	}
	return 0;
}

int pm_disk_open(struct pm_disk *d, const char *path, int flags)
{
	int fd = open(path, (flags & O_ACCMODE) | O_CLOEXEC | O_NOCTTY);
	int r;

	if (fd < 0) {
		disk_init(d);
		return -errno;
	}
	r = pm_disk_from_fd(d, fd);
	if (r < 0) {
		close(fd);
		d->fd = -1;
		return r;
	}
	d->owns_fd = true;
	return 0;
}

void pm_disk_from_mem(struct pm_disk *d, const void *buf, uint64_t len, unsigned sector_size)
{
	disk_init(d);
	d->mem = buf;
	d->size = len;
	d->sector_size = sector_size;
}

void pm_disk_from_image(struct pm_disk *d, struct pm_image *img)
{
	disk_init(d);
	d->img = img;
	d->size = pm_image_size(img);
}

void pm_disk_close(struct pm_disk *d)
{
	free(d->cache);
	if (d->owns_fd && d->fd >= 0)
		close(d->fd);
	disk_init(d);
}

static int raw_read(struct pm_disk *d, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	if (d->mem) {
		memcpy(buf, d->mem + off, len);
		return 0;
	}
	if (d->img) {
		int r = pm_image_read(d->img, off, buf, len);
		d->nreads++;
		if (r == 0)
			d->bytes_read += len;
		return r;
	}
	while (done < len) {
		ssize_t n = pread(d->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		d->nreads++;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file shrank under us */
		done += (size_t)n;
		d->bytes_read += (uint64_t)n;
	}
	return 0;
}

/* Serve a small read from the cache of recently read sector ranges, or read its sectors. */
static int cached_read(struct pm_disk *d, uint64_t off, void *buf, size_t len)
{
	uint64_t soff = off & ~(uint64_t)511;
	uint64_t send = (off + len + 511) & ~(uint64_t)511;
	unsigned victim = 0;
	int r;

	if (send > d->size)
		send = d->size;
	if (!d->cache) {
		d->cache = malloc((size_t)PM_CACHE_SLOTS * PM_CACHE_MAX);
		if (!d->cache)
			return raw_read(d, off, buf, len);
	}
	for (unsigned i = 0; i < PM_CACHE_SLOTS; i++) {
		if (d->slot[i].len && d->slot[i].off <= off && off + len <= d->slot[i].off + d->slot[i].len) {
			d->slot[i].stamp = ++d->clock;
			memcpy(buf, d->cache + (size_t)i * PM_CACHE_MAX + (off - d->slot[i].off), len);
			return 0;
		}
		if (d->slot[i].stamp < d->slot[victim].stamp)
			victim = i;
	}
	if (send - soff > PM_CACHE_MAX)
		return raw_read(d, off, buf, len);
	uint8_t *data = d->cache + (size_t)victim * PM_CACHE_MAX;
	d->slot[victim].len = 0;
	r = raw_read(d, soff, data, (size_t)(send - soff));
	if (r < 0)
		return r;
	d->slot[victim].off = soff;
	d->slot[victim].len = (size_t)(send - soff);
	d->slot[victim].stamp = ++d->clock;
	memcpy(buf, data + (off - soff), len);
	return 0;
}

int pm_disk_read(struct pm_disk *d, uint64_t off, void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (off > d->size || len > d->size - off)
		return -ERANGE;
	if (!d->mem && len <= PM_CACHE_MAX)
		return cached_read(d, off, buf, len);
	return raw_read(d, off, buf, len);
}
