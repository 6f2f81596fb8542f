/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the BIOS RAID format readers. */
#include "fmtutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pm_rf_bad(char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

int pm_rf_read(struct pm_disk *d, uint64_t off, void *buf, size_t len, const char *fmt, const char *what,
	       char *why, size_t whylen)
{
	int r = pm_disk_read(d, off, buf, len);
	if (r == -ERANGE)
		return pm_rf_bad(why, whylen, "%s: %s lies past the end of the disk", fmt, what);
	return r;
}

int pm_rf_tail(struct pm_disk *d, uint64_t back, void *buf, size_t len, uint64_t *at)
{
	uint64_t n = pm_disk_sectors(d);
	if (n <= back)
		return 0;
	*at = (n - back) * 512;
	int r = pm_disk_read(d, *at, buf, len);
	return r < 0 ? r : 1;
}

int pm_rf_rec(struct pm_raid_dev *out, size_t max, const struct pm_raid_format *f)
{
	if (!max)
		return -ENOSPC;
	memset(out, 0, sizeof(*out));
	out->fmt = f;
	out->listed = true;
	out->status = PM_RS_OK;
	return 0;
}

void pm_rf_name(char *dst, const char *handler, const char *id, size_t keep)
{
	size_t h = strlen(handler);
	snprintf(dst, PM_RAID_NAME_MAX, "%s_%s", handler, id);
	size_t len = strlen(dst);
	if (len - h <= keep)
		return;
	char save = dst[len - keep];
	dst[len - keep] = 0;
	pm_raid_mk_alpha(dst + h);
	dst[len - keep] = save;
}

void pm_rf_name_u(char *dst, const char *handler, uint32_t id)
{
	char num[16];
	snprintf(num, sizeof(num), "%u", id);
	pm_rf_name(dst, handler, num, 0);
}

void pm_rf_hpt(struct pm_raid_dev *r, const char *handler, uint32_t id, bool broken, unsigned shift,
	       unsigned disks, unsigned disk)
{
	r->status = broken ? PM_RS_BROKEN : PM_RS_OK;
	r->stride = shift ? 1u << shift : 0;
	r->members = disks;
	r->index = disk;
	if (id) {
		pm_rf_name_u(r->set, handler, id);
	} else {
		snprintf(r->set, sizeof(r->set), "%s_SPARE", handler);
		r->type = PM_RT_SPARE;
	}
}

int pm_rf_hpt_len(struct pm_disk *d, struct pm_raid_dev *r, uint32_t total, uint64_t other_len, char *why,
		  size_t whylen)
{
	const char *f = r->fmt->name;
	uint64_t len = r->type == PM_RT_RAID0 ? total / (r->members ? r->members : 1)
		     : r->type == PM_RT_RAID1 ? total : other_len;
	if (len <= r->offset)
		return pm_rf_bad(why, whylen, "%s: zero sectors", f);
	r->sectors = len - r->offset;
	/* a disk number past raid_disks is left to the set check: dmraid has seen RAID1 metadata saying
	 * raid_disks 1 on both disks */
	int e = pm_rf_extent(d, r, why, whylen);
	return e < 0 ? e : 1;
}

void pm_rf_subset(struct pm_raid_dev *r, unsigned n)
{
	snprintf(r->subset, sizeof(r->subset), "%.*s-%u", PM_RAID_NAME_MAX - 12, r->set, n);
	r->subset_index = n;
}

void pm_rf_stack(struct pm_raid_dev *r, enum pm_raid_type super_type, uint32_t super_stride, unsigned subsets,
		 unsigned n)
{
	r->super_type = super_type;
	r->super_stride = super_stride;
	r->subsets = subsets;
	pm_rf_subset(r, n);
}

int pm_rf_extent(const struct pm_disk *d, const struct pm_raid_dev *r, char *why, size_t whylen)
{
	const char *f = r->fmt->name;
	if (!r->sectors && r->type != PM_RT_UNDEF)
		return pm_rf_bad(why, whylen, "%s: zero sectors", f);
	if (!pm_rf_fits(d, r->offset, r->sectors))
		return pm_rf_bad(why, whylen, "%s: data %llu+%llu lies past the end of the disk (%llu sectors)", f,
				 (unsigned long long)r->offset, (unsigned long long)r->sectors,
				 (unsigned long long)pm_disk_sectors(d));
	return 0;
}

uint32_t pm_rf_sum32(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += pm_raid_le32(p + 4 * i);
	return s;
}

uint16_t pm_rf_sum16(const uint8_t *p, size_t n)
{
	uint16_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint16_t)(s + pm_raid_le16(p + 2 * i));
	return s;
}

uint32_t pm_rf_bytes(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

bool pm_rf_fits(const struct pm_disk *d, uint64_t start, uint64_t len)
{
	uint64_t n = pm_disk_sectors(d);
	return start <= n && len <= n - start;
}

void pm_rf_field(char *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = 0;
}
