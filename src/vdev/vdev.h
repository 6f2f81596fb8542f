/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A virtual block device served from userspace: a size and read, write, flush and discard of byte
 * ranges. Image formats (src/image/) and device-mapper tables (src/target/, composed by
 * src/vdev/udm.c) are its implementations; one FUSE front end serves any of them as a file that a
 * loop device holds. Library rules: -errno returns, no printing, no global state.
 *
 * Offsets and lengths are bytes. Requests that reach a vdev from the loop device are whole 512-byte
 * sectors; a vdev may refuse others with -EINVAL. Every operation may be called from several threads
 * at once. */
#ifndef PARTMAP_VDEV_H
#define PARTMAP_VDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct pm_vdev;

struct pm_vdev_ops {
	int (*read)(struct pm_vdev *v, uint64_t off, void *buf, size_t len);
	/* NULL: the device is read-only (-EROFS) */
	int (*write)(struct pm_vdev *v, uint64_t off, const void *buf, size_t len);
	/* every write completed before the call is on stable storage when it returns; NULL: nothing to do */
	int (*flush)(struct pm_vdev *v);
	/* the range may read back as anything (zeros where the implementation can); NULL: -EOPNOTSUPP */
	int (*discard)(struct pm_vdev *v, uint64_t off, uint64_t len);
	/* free priv; NULL: nothing to free */
	void (*close)(struct pm_vdev *v);
	/* the bytes from off into (out of) the buffers in turn, as read (write) of one buffer would;
	 * NULL: pm_vdev_readv/writev call read (write) once a buffer */
	int (*readv)(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n);
	int (*writev)(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n);
};

struct pm_vdev {
	const struct pm_vdev_ops *ops;
	uint64_t size;            /* bytes */
	bool read_only;
	void *priv;
};

/* Range-checked calls: -ERANGE outside [0, size), -EROFS for a write to a read-only device. */
int pm_vdev_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len);
int pm_vdev_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len);
int pm_vdev_flush(struct pm_vdev *v);
int pm_vdev_discard(struct pm_vdev *v, uint64_t off, uint64_t len);
/* A device range gathered from (scattered into) n buffers, n <= IOV_MAX: one request where the vdev
 * can (a file's preadv/pwritev), else one a buffer */
int pm_vdev_readv(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n);
int pm_vdev_writev(struct pm_vdev *v, uint64_t off, const struct iovec *iov, int n);
void pm_vdev_close(struct pm_vdev *v);

/* A block device or a file as a vdev (pread/pwrite, fdatasync, BLKDISCARD or a hole punch). The fd is
 * duplicated; read_only opens nothing for writing. */
int pm_vdev_from_fd(struct pm_vdev *v, int fd, bool read_only);

struct pm_image;
/* An open image's virtual disk as a vdev (pm_image_read/write; flush: pm_image_sync, nothing when
 * read_only; discard: pm_image_zero_range, so a discarded range reads as zeros). The image stays the
 * caller's: close it after the vdev. */
int pm_vdev_from_image(struct pm_vdev *v, struct pm_image *img, bool read_only);

/* The bytes [off, off + size) of base as a device of their own (a partition of a disk): requests are
 * moved by off and handed to base, which stays the caller's (close it after the slice). -ERANGE when
 * the range is not inside base. */
int pm_vdev_slice(struct pm_vdev *v, struct pm_vdev *base, uint64_t off, uint64_t size);

#endif
