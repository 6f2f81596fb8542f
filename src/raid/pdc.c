/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Promise FastTrak: 2048 bytes at one of several sectors off the end of the disk (or, failing those,
 * at LBA 268435377), up to four areas 14 sectors apart, one per array; "Promise Technology, Inc.";
 * the first area's 511 dwords sum to its last (facts: ../shared/reference/dmraid.md §1.3). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PDC_LEN 2048
#define PDC_AREAS 4
#define PDC_AREA_STEP 14
#define PDC_MAGIC "Promise Technology, Inc."
#define PDC_R 0x200 /* the raid block */

enum { PDC_R0 = 0, PDC_R1 = 1, PDC_R10 = 2, PDC_SPAN = 8 };

/* sectors before the end of the disk where dmraid (Debian's, with 951) looks, in its order */
static const unsigned pdc_end[] = { 63, 255, 256, 16, 399, 591, 675, 735, 911, 974, 991, 951, 3087 };
#define PDC_NEND (sizeof(pdc_end) / sizeof(pdc_end[0]))
#define PDC_BEGIN 268435377u

/* One array's record from one area. meta: the area's first sector (first: the first area's); span_len: a
 * span member's length. */
static int pdc_rec(struct pm_disk *d, const uint8_t *m, uint64_t meta, uint64_t first, uint64_t span_len,
		   struct pm_raid_dev *out, char *why, size_t whylen)
{
	const uint8_t *a = m + PDC_R;
	unsigned disk = a[5], type = a[0x1F], total = a[0x20], shift = a[0x21];
	uint32_t start = pm_raid_le32(a + 0x10), total_secs = pm_raid_le32(a + 0x24);
	uint32_t id = pm_raid_le32(a + 0x2C);
	if (!total || total >= 8)
		return pm_rf_bad(why, whylen, "pdc: identifying the disk: total_disks %u", total);
	if (shift > 24)
		return pm_rf_bad(why, whylen, "pdc: absurd stripe shift %u", shift);
	/* a disk number past total_disks is left to the set check, as dmraid does */
	bool r10 = type == PDC_R10 || (type == PDC_R1 && total > 3);
	if (r10 && total < 2)
		return pm_rf_bad(why, whylen, "pdc: RAID10 of %u disk", total);

	pm_rf_rec(out, 1, &pm_raid_pdc);
	out->listed = false;
	pm_rf_name_u(out->set, "pdc", id);
	/* dmraid: the first array on the disk starts at sector 0 whatever `start` says; the others at start */
	out->offset = meta == first ? 0 : start;
	out->stride = shift ? 1u << shift : 0;
	out->meta_offset = meta * 512;
	out->meta_len = PDC_LEN;
	out->members = total;
	out->index = disk;
	switch (r10 ? PDC_R10 : type) {
	case PDC_SPAN: out->type = PM_RT_LINEAR; out->sectors = span_len; break;
	case PDC_R0: out->type = PM_RT_RAID0; out->sectors = total_secs / total; break;
	case PDC_R1: out->type = PM_RT_RAID1; out->sectors = total_secs; break;
	case PDC_R10:
		/* mirror over two stripes: disks [0, total/2) in the first */
		out->type = PM_RT_RAID0;
		out->sectors = total_secs / (total / 2);
		out->members = total / 2;
		out->index = disk % (total / 2);
		pm_rf_stack(out, PM_RT_RAID1, out->stride, 2, disk >= total / 2);
		break;
	default: out->type = PM_RT_UNDEF; break; /* dmraid: "RAID type %u not supported" */
	}
	return pm_rf_extent(d, out, why, whylen);
}

static int pdc_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	(void)serial;
	uint8_t m[PDC_AREAS][PDC_LEN];
	uint64_t n = pm_disk_sectors(d);
	if (n < PDC_LEN / 512)
		return 0;
	uint64_t last = n - PDC_LEN / 512; /* the last sector an area may start at */
	uint64_t first = 0, span_len = 0;
	unsigned areas = 0;
	int r;
	/* the first listed sector holding the signature; then its following areas while they do */
	for (size_t k = 0; k <= PDC_NEND && !areas; k++) {
		uint64_t s;
		if (k < PDC_NEND) {
			if (pdc_end[k] > n)
				continue;
			s = n - pdc_end[k];
		} else {
			s = PDC_BEGIN;
		}
		for (unsigned a = 0; a < PDC_AREAS && s + a * PDC_AREA_STEP <= last; a++) {
			if ((r = pm_disk_read(d, (s + a * PDC_AREA_STEP) * 512, m[a], PDC_LEN)) < 0)
				return r;
			if (memcmp(m[a], PDC_MAGIC, strlen(PDC_MAGIC)))
				break;
			if (!areas) {
				first = s;
				/* dmraid: a span member is the disk less the probe's distance from its end (from
				 * the beginning: less the probe sector) */
				span_len = k < PDC_NEND ? s : n - PDC_BEGIN;
			}
			areas++;
		}
	}
	if (!areas)
		return 0;
	if (pm_rf_sum32(m[0], 511) != pm_raid_le32(m[0] + 0x7FC))
		return pm_rf_bad(why, whylen, "pdc: invalid checksum");
	if (max < areas)
		return -ENOSPC;
	for (unsigned a = 0; a < areas; a++)
		if ((r = pdc_rec(d, m[a], first + a * PDC_AREA_STEP, first, span_len, &out[a], why, whylen)) < 0)
			return r;
	out[0].listed = true; /* dmraid -r shows the first area's array */
	return (int)areas;
}

const struct pm_raid_format pm_raid_pdc = {
	.name = "pdc", .descr = "Promise FastTrack", .caps = "S,0,1,10", .read = pdc_read,
};
