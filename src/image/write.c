/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers the sparse formats' write paths share (VHD, VDI, VMDK): full writes, zeroed ranges, the
 * table cache kept in step with what was written, the lock every format's map() and write() take,
 * a discard that punches the data a range maps to, and where the structures lie (every writer). */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
			if (pc.fd == img->fd && pm_ranges_hit(&img->tables, pc.host, n))
				return -EUCLEAN; /* the format's own structures: never punched */
			if (fallocate(pc.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pc.host, (off_t)n) < 0 &&
			    errno != EOPNOTSUPP && errno != ENOSYS)
				return -errno; /* a file system that cannot punch: nothing released */
		}
		off += pc.len;
		len -= pc.len;
	}
	return 0;
}

/* ---- where a format's structures lie ---- */

int pm_ranges_add(struct pm_ranges *s, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (off + len < off)
		return -EUCLEAN;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct pm_range *r = realloc(s->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = cap;
	}
	s->r[s->n++] = (struct pm_range){ off, len };
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct pm_range *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

int pm_ranges_seal(struct pm_ranges *s)
{
	if (s->n)
		qsort(s->r, s->n, sizeof(*s->r), range_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (s->r[i].off < s->r[i - 1].off + s->r[i - 1].len)
			return -EUCLEAN;
	return 0;
}

/* the first range that ends after off */
static size_t ranges_find(const struct pm_ranges *s, uint64_t off)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].off + s->r[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool pm_ranges_hit(const struct pm_ranges *s, uint64_t off, uint64_t len)
{
	size_t i = ranges_find(s, off);

	return len && i < s->n && (off + len < off || s->r[i].off < off + len);
}

int pm_ranges_insert(struct pm_ranges *s, uint64_t off, uint64_t len)
{
	int r;

	if (pm_ranges_hit(s, off, len))
		return -EUCLEAN;
	if ((r = pm_ranges_add(s, off, len)) < 0 || !len)
		return r;
	/* appended: moved down to its place */
	struct pm_range x = s->r[--s->n];
	size_t i = ranges_find(s, off);
	memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
	s->r[i] = x;
	s->n++;
	return 0;
}

void pm_ranges_remove(struct pm_ranges *s, uint64_t off)
{
	size_t i = ranges_find(s, off);

	if (i < s->n && s->r[i].off == off) {
		memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
		s->n--;
	}
}

void pm_ranges_free(struct pm_ranges *s)
{
	free(s->r);
	*s = (struct pm_ranges){ 0 };
}
