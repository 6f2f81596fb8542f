/* SPDX-License-Identifier: GPL-2.0-or-later */
/* LSI Logic MegaRAID (software/IDE): 512 bytes at LBA N-1, "$XIDE$", no checksum
 * (facts: ../shared/reference/dmraid.md §1.9). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LSI_LEN 512
#define LSI_DISKS 0x20 /* 4 entries of 16 bytes */

enum { LSI_R0 = 1, LSI_R1 = 2, LSI_R10 = 3 };

static int lsi_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	(void)serial;
	uint8_t m[LSI_LEN];
	uint64_t n = pm_disk_sectors(d), at;
	int r = pm_rf_tail(d, 1, m, sizeof(m), &at);
	if (r <= 0)
		return r;
	if (memcmp(m, "$XIDE$", 6))
		return 0;

	unsigned type = m[0x10], stride = pm_raid_le16(m + 0x12);
	unsigned disk = m[0x1F0], setno = m[0x1F1];
	uint32_t set_id = pm_raid_le32(m + 0x1F2);
	unsigned slot = setno * 2 + disk;
	if (slot >= 4)
		return pm_rf_bad(why, whylen, "lsi: disk %u of set %u: no such slot", disk, setno);
	const uint8_t *e = m + LSI_DISKS + 16 * slot;
	unsigned r10_stripe = e[0] & 0xF, r10_mirror = e[0] >> 4, offline = e[8];

	if ((r = pm_rf_rec(out, max, &pm_raid_lsi)) < 0)
		return r;
	char id[32];
	snprintf(id, sizeof(id), "%u%u", set_id, setno);
	pm_rf_name(out->set, "lsi", id, 0);
	/* dmraid lists an offline disk but leaves it out of its set */
	out->status = offline ? PM_RS_BROKEN : PM_RS_OK;
	out->offset = 0;
	out->sectors = n - 1;
	out->stride = stride;
	out->meta_offset = at;
	out->meta_len = LSI_LEN;
	out->members = 2;
	out->index = slot;
	switch (type) {
	case LSI_R0: out->type = PM_RT_RAID0; break;
	case LSI_R1: out->type = PM_RT_RAID1; break;
	case LSI_R10:
		/* mirror over two stripes (dmraid expects 4 disks) */
		out->type = PM_RT_RAID0;
		out->index = r10_stripe;
		pm_rf_stack(out, PM_RT_RAID1, stride, 2, r10_mirror);
		if (r10_stripe >= 2 || r10_mirror >= 2)
			return pm_rf_bad(why, whylen, "lsi: RAID10 stripe %u mirror %u out of range", r10_stripe,
					 r10_mirror);
		break;
	default: out->type = PM_RT_UNDEF; out->members = 0; break;
	}
	return 1;
}

const struct pm_raid_format pm_raid_lsi = {
	.name = "lsi", .descr = "LSI Logic MegaRAID", .caps = "0,1,10", .read = lsi_read,
};
