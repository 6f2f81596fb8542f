/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The virtual block device's range checks, and a block device or file as one. */
#include "vdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static bool in_range(const struct pm_vdev *v, uint64_t off, uint64_t len)
{
	return off <= v->size && len <= v->size - off;
}

int pm_vdev_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	if (!in_range(v, off, len))
		return -ERANGE;
	return len ? v->ops->read(v, off, buf, len) : 0;
}

int pm_vdev_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	if (!in_range(v, off, len))
		return -ERANGE;
	if (v->read_only || !v->ops->write)
		return -EROFS;
	return len ? v->ops->write(v, off, buf, len) : 0;
}

int pm_vdev_flush(struct pm_vdev *v)
{
	return v->ops->flush ? v->ops->flush(v) : 0;
}

int pm_vdev_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	if (!in_range(v, off, len))
		return -ERANGE;
	if (v->read_only || !v->ops->write)
		return -EROFS;
	if (!v->ops->discard)
		return -EOPNOTSUPP;
	return len ? v->ops->discard(v, off, len) : 0;
}

void pm_vdev_close(struct pm_vdev *v)
{
	if (v->ops && v->ops->close)
		v->ops->close(v);
	v->ops = NULL;
	v->priv = NULL;
}

/* ---- a block device or a file ---- */

struct fdev {
	int fd;
	bool blk;
};

static int fd_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	struct fdev *f = v->priv;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static int fd_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	struct fdev *f = v->priv;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static int fd_flush(struct pm_vdev *v)
{
	struct fdev *f = v->priv;

	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int fd_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	struct fdev *f = v->priv;

	if (f->blk) {
		uint64_t range[2] = { off, len };
		return ioctl(f->fd, BLKDISCARD, range) < 0 ? -errno : 0;
	}
	return fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 ? -errno : 0;
}

static void fd_close(struct pm_vdev *v)
{
	struct fdev *f = v->priv;

	if (f) {
		close(f->fd);
		free(f);
	}
}

static const struct pm_vdev_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.flush = fd_flush,
	.discard = fd_discard,
	.close = fd_close,
};

int pm_vdev_from_fd(struct pm_vdev *v, int fd, bool read_only)
{
	struct stat st;
	struct fdev *f;
	uint64_t size;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			return -errno;
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		return -EINVAL;
	}
	if (!(f = calloc(1, sizeof(*f))))
		return -ENOMEM;
	f->blk = S_ISBLK(st.st_mode);
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		int e = -errno;
		free(f);
		return e;
	}
	*v = (struct pm_vdev){ .ops = &fd_ops, .size = size, .read_only = read_only, .priv = f };
	return 0;
}
