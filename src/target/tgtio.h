/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the mirror, delay and flakey targets: I/O on a source at a sector offset
 * (failing past the device's end with EIO, as the kernel's I/O does), and the kernel's "%u%c"
 * argument parse. */
#ifndef PARTMAP_TARGET_TGTIO_H
#define PARTMAP_TARGET_TGTIO_H

#include "target.h"
#include "../util.h"

#include <errno.h>
#include <limits.h>

/* the source's byte for byte off of a mapping that starts at sector start: -EIO when the range
 * does not lie on the device */
static inline int pm_src_where(const struct pm_source *s, uint64_t start, uint64_t off, uint64_t len,
			       uint64_t *at)
{
	uint64_t base = mul_sat(start, PM_SECTOR), a = add_sat(base, off);

	if (a == UINT64_MAX || a > s->vdev->size || len > s->vdev->size - a)
		return -EIO;
	*at = a;
	return 0;
}

static inline int pm_src_read(const struct pm_source *s, uint64_t start, uint64_t off, void *buf, size_t len)
{
	uint64_t at;
	int r = pm_src_where(s, start, off, len, &at);

	return r < 0 ? r : pm_vdev_read(s->vdev, at, buf, len);
}

static inline int pm_src_write(const struct pm_source *s, uint64_t start, uint64_t off, const void *buf,
			       size_t len)
{
	uint64_t at;
	int r = pm_src_where(s, start, off, len, &at);

	return r < 0 ? r : pm_vdev_write(s->vdev, at, buf, len);
}

static inline int pm_src_discard(const struct pm_source *s, uint64_t start, uint64_t off, uint64_t len)
{
	uint64_t at;
	int r = pm_src_where(s, start, off, len, &at);

	return r < 0 ? r : pm_vdev_discard(s->vdev, at, len);
}

/* the kernel's sscanf("%u%c") == 1: digits only, within 32 bits */
static inline int pm_target_u32(const char *s, unsigned *v)
{
	unsigned long x;

	if (pm_parse_ulong(s, UINT_MAX, &x) < 0)
		return -EINVAL;
	*v = (unsigned)x;
	return 0;
}

#endif
