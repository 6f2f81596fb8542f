/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers the sparse formats' write paths share (VHD, VDI, VMDK): full writes, zeroed ranges, the
 * table cache kept in step with what was written, the lock every format's map() and write() take,
 * and a discard that punches the data a range maps to. */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

int pm_img_lock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r;

	if (pthread_mutexattr_init(&a))
		return -ENOMEM;
	/* recursive: a write reads the old bytes of a partly written unit through the read path */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	r = pthread_mutex_init(m, &a) ? -ENOMEM : 0;
	pthread_mutexattr_destroy(&a);
	return r;
}

int pm_img_zero(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];

	if (!len)
		return 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int r = pm_pwrite_all(fd, zeros, n, off);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

int pm_img_extend(int fd, uint64_t *fsize, uint64_t end)
{
	if (end <= *fsize)
		return 0;
	if (ftruncate(fd, (off_t)end) < 0)
		return -errno;
	*fsize = end;
	return 0;
}

int pm_img_read_current(struct pm_image *img, uint64_t off, void *buf, size_t len)
{
	size_t have = 0;

	if (off < img->size) {
		have = img->size - off < len ? (size_t)(img->size - off) : len;
		int r = pm_image_read(img, off, buf, have);
		if (r < 0)
			return r;
	}
	memset((uint8_t *)buf + have, 0, len - have);
	return 0;
}

int pm_img_punch_mapped(struct pm_image *img, uint64_t off, uint64_t len)
{
	while (len) {
		struct pm_img_piece pc;
		memset(&pc, 0, sizeof(pc));
		int r = img->fmt->map(img, off, len, &pc);
		if (r < 0)
			return r;
		if (pc.len == 0 || pc.len > len)
			return -EIO;
		/* only this layer's own data: what reads from below or as zeros stays as it is */
		if (pc.kind == PM_IMG_DATA && pc.fd >= 0 && pc.host < pc.fsize) {
			uint64_t n = pc.fsize - pc.host < pc.len ? pc.fsize - pc.host : pc.len;
			if (fallocate(pc.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pc.host, (off_t)n) < 0 &&
			    errno != EOPNOTSUPP && errno != ENOSYS)
				return -errno; /* a file system that cannot punch: nothing released */
		}
		off += pc.len;
		len -= pc.len;
	}
	return 0;
}
