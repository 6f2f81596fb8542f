/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The virtual block device's range checks, and a block device or file as one. */
#include "vdev.h"
#include "../image/image.h"
#include "../loop.h"
#include "../mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/major.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* size and read_only may change under a request (a served userspace-DM device at a table swap):
 * each read once */
static bool in_range(const struct pm_vdev *v, uint64_t off, uint64_t len)
{
	uint64_t size = __atomic_load_n(&v->size, __ATOMIC_RELAXED);

	return off <= size && len <= size - off;
}

static bool writable(const struct pm_vdev *v)
{
	return !__atomic_load_n(&v->read_only, __ATOMIC_RELAXED) && v->ops->write;
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
	if (!writable(v))
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
	if (!writable(v))
		return -EROFS;
	if (!v->ops->discard)
		return -EOPNOTSUPP;
	return len ? v->ops->discard(v, off, len) : 0;
}

static uint64_t iov_bytes(const struct iovec *iov, int n)
{
	uint64_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

/* without a vectored op: the buffers one after the other */
static int each_iov(struct pm_vdev *v, bool wr, uint64_t off, const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++) {
		int r = !iov[i].iov_len ? 0 : wr ? v->ops->write(v, off, iov[i].iov_base, iov[i].iov_len)
						 : v->ops->read(v, off, iov[i].iov_base, iov[i].iov_len);
		if (r < 0)
			return r;
		off += iov[i].iov_len;
	}
	return 0;
}

int pm_vdev_readv(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n)
{
	if (n < 0 || n > IOV_MAX)
		return -EINVAL;
	if (!in_range(v, off, iov_bytes(iov, n)))
		return -ERANGE;
	return v->ops->readv ? v->ops->readv(v, off, iov, n) : each_iov(v, false, off, iov, n);
}

int pm_vdev_writev(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n)
{
	if (n < 0 || n > IOV_MAX)
		return -EINVAL;
	if (!in_range(v, off, iov_bytes(iov, n)))
		return -ERANGE;
	if (!writable(v))
		return -EROFS;
	return v->ops->writev ? v->ops->writev(v, off, iov, n) : each_iov(v, true, off, iov, n);
}

void pm_vdev_close(struct pm_vdev *v)
{
	if (v->ops && v->ops->close)
		v->ops->close(v);
	v->ops = NULL;
	v->priv = NULL;
}

/* ---- a block device or a file ---- */

#define BOUNCE_MAX (1u << 20) /* an unaligned request goes through an aligned buffer this big at most */

struct fdev {
	int fd;
	int hold;                 /* a loop device whose file fd is (see loop_file), kept open; else -1 */
	uint64_t base;            /* where the device starts in fd (the loop device's offset) */
	bool blk;
	bool direct;              /* O_DIRECT: the device's page cache is bypassed, as the kernel's DM does */
	unsigned align;           /* what O_DIRECT needs: the logical block size */
};

static bool aligned(const struct fdev *f, const void *buf, uint64_t off, size_t len)
{
	return !f->direct || ((uintptr_t)buf % f->align == 0 && off % f->align == 0 && len % f->align == 0);
}

static int rw_plain(int fd, bool wr, uint64_t off, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = wr ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
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

/* I/O of any alignment on an O_DIRECT descriptor: whole blocks through an aligned buffer (a write
 * of part of a block reads the block first) */
static int rw_bounce(struct fdev *f, bool wr, uint64_t off, uint8_t *p, size_t len)
{
	uint64_t a = f->align;
	/* as big as the request needs (a page for a 4 KiB one), at most BOUNCE_MAX */
	uint64_t need = (off + len + a - 1) / a * a - off / a * a;
	size_t bsize = need < BOUNCE_MAX ? (size_t)need : BOUNCE_MAX;
	void *bb;
	int r = 0;

	if (posix_memalign(&bb, 4096, bsize))
		return -ENOMEM;
	while (len && r == 0) {
		uint64_t start = off / a * a, end = (off + len + a - 1) / a * a;
		if (end - start > bsize)
			end = start + bsize;
		size_t n = (size_t)(end - off < len ? end - off : len);
		size_t blen = (size_t)(end - start);
		if (!wr || start != off || (off + n) % a) {
			if ((r = rw_plain(f->fd, false, start, bb, blen)) < 0)
				break;
		}
		if (wr) {
			memcpy((uint8_t *)bb + (off - start), p, n);
			r = rw_plain(f->fd, true, start, bb, blen);
		} else {
			memcpy(p, (uint8_t *)bb + (off - start), n);
		}
		p += n, off += n, len -= n;
	}
	free(bb);
	return r;
}

static int fd_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	struct fdev *f = v->priv;

	off += f->base;
	return aligned(f, buf, off, len) ? rw_plain(f->fd, false, off, buf, len) : rw_bounce(f, false, off, buf, len);
}

static int fd_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	struct fdev *f = v->priv;
	uint8_t *p = (uint8_t *)(uintptr_t)buf; /* written from, never to */

	off += f->base;
	return aligned(f, buf, off, len) ? rw_plain(f->fd, true, off, p, len) : rw_bounce(f, true, off, p, len);
}

/* preadv/pwritev; a short transfer (a signal, a file's end) goes on buffer by buffer from where it
 * stopped. O_DIRECT with a buffer, offset or length out of line: one buffer at a time, through the
 * bounce buffer. */
static int fd_rwv(struct pm_vdev *v, bool wr, uint64_t off, const struct iovec *iov, int n)
{
	struct fdev *f = v->priv;
	uint64_t at = f->base + off;
	ssize_t got;

	for (int i = 0; i < n; i++) {
		if (!aligned(f, iov[i].iov_base, at, iov[i].iov_len))
			return each_iov(v, wr, off, iov, n);
		at += iov[i].iov_len;
	}
	do
		got = wr ? pwritev(f->fd, iov, n, (off_t)(f->base + off)) : preadv(f->fd, iov, n, (off_t)(f->base + off));
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	/* whole buffers done, then the rest of a part-done one, then the others */
	for (; n > 0 && (size_t)got >= iov->iov_len; iov++, n--) {
		got -= (ssize_t)iov->iov_len;
		off += iov->iov_len;
	}
	if (n == 0)
		return 0;
	int r = wr ? fd_write(v, off + (uint64_t)got, (const uint8_t *)iov->iov_base + got, iov->iov_len - (size_t)got)
		   : fd_read(v, off + (uint64_t)got, (uint8_t *)iov->iov_base + got, iov->iov_len - (size_t)got);
	if (r < 0)
		return r;
	return each_iov(v, wr, off + iov->iov_len, iov + 1, n - 1);
}

static int fd_readv(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n)
{
	return fd_rwv(v, false, off, iov, n);
}

static int fd_writev(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n)
{
	return fd_rwv(v, true, off, iov, n);
}

static int fd_flush(struct pm_vdev *v)
{
	struct fdev *f = v->priv;

	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int fd_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	struct fdev *f = v->priv;

	off += f->base;
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
		if (f->hold >= 0)
			close(f->hold);
		free(f);
	}
}

static const struct pm_vdev_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.flush = fd_flush,
	.discard = fd_discard,
	.close = fd_close,
	.readv = fd_readv,
	.writev = fd_writev,
};

/* is dev a FUSE mount's (from mountinfo: nothing is asked of the mount)? */
struct fuse_dev_q {
	dev_t dev;
	bool fuse;
};

static int fuse_dev_one(const struct pm_mount *m, void *arg)
{
	struct fuse_dev_q *q = arg;

	if (m->dev != q->dev || strncmp(m->fstype, "fuse", 4))
		return 0;
	q->fuse = true;
	return 1;
}

/* A whole loop device over a regular file is read and written in its file, at the device's offset:
 * one hop less (the loop device's worker thread and its completion) for every request, with the same
 * bytes, the same page cache (the file's, buffered as the loop device does, or O_DIRECT when it is in
 * direct I/O mode) and the same flush (fdatasync of the file). The kernel's DM reaches a loop device
 * below its own page cache too, so nothing a user sees changes. The loop device stays open (held) as
 * the kernel's DM holds it. Not for a file on a FUSE mount (a server that does not answer is kept
 * behind the loop device: the status is read with a bounded wait, the mount found in mountinfo by
 * the file's device number, and such a file never opened: the file opened is checked to be on that
 * device), nor a loop device whose status
 * cannot be read, whose file is not the one sysfs names (checked by device and inode), or whose file
 * cannot be opened as the device was. Returns the file's fd (*base, *direct set) or -errno. */
static int loop_file(const struct stat *st, bool read_only, uint64_t *base, bool *direct)
{
	struct fuse_dev_q q = { 0 };
	struct pm_loop_info li;
	struct stat fst;
	int index = major(st->st_rdev) == LOOP_MAJOR ? pm_loop_index_of(st->st_rdev) : -ENODEV;

	if (index < 0)
		return -ENODEV;
	if (pm_loop_info(index, &li) != 1 || !li.status_known || li.hung || !li.backing_known ||
	    li.backing_rdev || li.dev != st->st_rdev || (!read_only && li.read_only))
		return -ENODEV;
	/* the file is not opened at all when it is on FUSE: its server may not answer the open (the
	 * status above may have come from cached attributes) */
	q.dev = li.backing_dev;
	if (pm_mountinfo_each(fuse_dev_one, &q) < 0 || q.fuse)
		return -ENODEV;
	int fd = open(li.backing, (read_only ? O_RDONLY : O_RDWR) | (li.direct_io ? O_DIRECT : 0) | O_CLOEXEC |
		      O_NOCTTY);
	if (fd < 0)
		return -ENODEV;
	if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_dev != li.backing_dev ||
	    fst.st_ino != li.backing_ino) {
		close(fd);
		return -ENODEV;
	}
	*base = li.offset;
	*direct = li.direct_io;
	return fd;
}

int pm_vdev_from_fd(struct pm_vdev *v, int fd, bool read_only)
{
	struct stat st;
	struct fdev *f;
	uint64_t size, base = 0;
	char path[64];
	int ssz = 512, lf = -1;
	bool ldirect = false;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			return -errno;
		if (ioctl(fd, BLKSSZGET, &ssz) < 0 || ssz < 512)
			ssz = 512;
		lf = loop_file(&st, read_only, &base, &ldirect);
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		return -EINVAL;
	}
	if (!(f = calloc(1, sizeof(*f)))) {
		if (lf >= 0)
			close(lf);
		return -ENOMEM;
	}
	f->blk = S_ISBLK(st.st_mode);
	f->align = (unsigned)ssz;
	f->fd = -1;
	f->hold = -1;
	if (lf >= 0) {
		/* the loop device's file (loop_file), the device held open */
		f->hold = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (f->hold < 0) {
			int e = -errno;
			close(lf);
			free(f);
			return e;
		}
		f->fd = lf;
		f->base = base;
		f->blk = false;
		f->direct = ldirect;
	} else if (f->blk) {
		/* a block device is used as the kernel's DM uses it: past its page cache */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		f->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
		f->direct = f->fd >= 0;
	}
	if (f->fd < 0)
		f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		int e = -errno;
		free(f);
		return e;
	}
	*v = (struct pm_vdev){ .ops = &fd_ops, .size = size, .read_only = read_only, .priv = f };
	return 0;
}

/* ---- an image's virtual disk ---- */

static int img_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	return pm_image_read(v->priv, off, buf, len);
}

static int img_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	return pm_image_write(v->priv, off, buf, len);
}

static int img_flush(struct pm_vdev *v)
{
	return v->read_only ? 0 : pm_image_sync(v->priv);
}

static int img_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	return pm_image_zero_range(v->priv, off, len);
}

static const struct pm_vdev_ops img_ops = {
	.read = img_read,
	.write = img_write,
	.flush = img_flush,
	.discard = img_discard,
};

int pm_vdev_from_image(struct pm_vdev *v, struct pm_image *img, bool read_only)
{
	*v = (struct pm_vdev){ .ops = &img_ops, .size = pm_image_size(img), .read_only = read_only, .priv = img };
	return 0;
}

/* ---- a slice of another vdev ---- */

struct slice {
	struct pm_vdev *base;
	uint64_t off;
};

static int sl_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	struct slice *s = v->priv;

	return pm_vdev_read(s->base, s->off + off, buf, len);
}

static int sl_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	struct slice *s = v->priv;

	return pm_vdev_write(s->base, s->off + off, buf, len);
}

static int sl_flush(struct pm_vdev *v)
{
	return pm_vdev_flush(((struct slice *)v->priv)->base);
}

static int sl_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	struct slice *s = v->priv;

	return pm_vdev_discard(s->base, s->off + off, len);
}

static void sl_close(struct pm_vdev *v)
{
	free(v->priv);
}

static const struct pm_vdev_ops slice_ops = {
	.read = sl_read,
	.write = sl_write,
	.flush = sl_flush,
	.discard = sl_discard,
	.close = sl_close,
};

int pm_vdev_slice(struct pm_vdev *v, struct pm_vdev *base, uint64_t off, uint64_t size)
{
	struct slice *s;

	if (!in_range(base, off, size))
		return -ERANGE;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->base = base;
	s->off = off;
	*v = (struct pm_vdev){ .ops = &slice_ops, .size = size, .read_only = base->read_only, .priv = s };
	return 0;
}
