/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Silicon Image Medley: four 512-byte copies at LBA N-1, N-513, N-1025, N-1537; a copy is valid when
 * its magic, disk number, 16-bit checksum and disk size are; dmraid uses the first valid one
 * (facts: ../shared/reference/dmraid.md §1.5). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SIL_LEN 512
#define SIL_AREAS 4

enum { SIL_R0 = 0, SIL_R1 = 1, SIL_R10 = 2, SIL_SPARE = 3, SIL_R5 = 16, SIL_JBOD = 255 };

/* 0: not sil; 1: valid; -EBADMSG: sil but bad (why filled) */
static int sil_valid(const uint8_t *m, uint64_t n, unsigned area, char *why, size_t whylen)
{
	if ((pm_raid_le32(m + 0x60) & 0x3FFFFFF) != 0x3000000 || m[0x116] >= 8)
		return 0;
	if ((uint16_t)-pm_rf_sum16(m, 0x13E / 2) != pm_raid_le16(m + 0x13E))
		return pm_rf_bad(why, whylen, "sil: invalid metadata checksum in area %u", area);
	if (pm_raid_le32(m + 0x78) > n)
		return pm_rf_bad(why, whylen, "sil: invalid disk size in metadata area %u", area);
	return 1;
}

static int sil_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	(void)serial;
	uint8_t m[SIL_LEN];
	uint64_t n = pm_disk_sectors(d), at = 0;
	int bad = 0, r;
	bool found = false;
	for (unsigned area = 0; area < SIL_AREAS && !found; area++) {
		if ((r = pm_rf_tail(d, 1 + 512ull * area, m, sizeof(m), &at)) <= 0) {
			if (r < 0)
				return r;
			break;
		}
		r = sil_valid(m, n, area + 1, why, whylen);
		if (r > 0)
			found = true;
		else if (r < 0 && !bad)
			bad = r;
	}
	if (!found)
		return bad;

	uint64_t array = (uint64_t)pm_raid_le32(m + 0x70) << 32 | pm_raid_le32(m + 0x6C);
	unsigned type = m[0x117], disk = m[0x116];
	int per_stripe = (int8_t)m[0x118], stripe_no = (int8_t)m[0x119];
	int per_mirror = (int8_t)m[0x11A], mirror_no = (int8_t)m[0x11B];
	unsigned stride = pm_raid_le16(m + 0x112);

	if ((r = pm_rf_rec(out, max, &pm_raid_sil)) < 0)
		return r;
	/* the creation time, yymmddhhmmss, digits to letters */
	char id[40];
	snprintf(id, sizeof(id), "%02u%02u%02u%02u%02u%02u", m[0x111], m[0x110], m[0x10F], m[0x10E],
		 m[0x10D] % 60, m[0x10C] % 60);
	pm_rf_name(out->set, "sil", id, 0);
	/* dmraid's state table starts with code 0, so every member reads "ok" */
	out->status = PM_RS_OK;
	out->offset = 0;
	out->stride = stride;
	out->meta_offset = at;
	out->meta_len = SIL_LEN;
	out->index = disk;
	uint64_t cooked = n - (SIL_AREAS - 1) * 512 - (n & 1 ? 1 : 2);
	switch (type) {
	case SIL_SPARE: out->type = PM_RT_SPARE; out->sectors = cooked; break;
	case SIL_JBOD: out->type = PM_RT_LINEAR; out->sectors = cooked; break;
	case SIL_R5: out->type = PM_RT_RAID5_LS; out->sectors = cooked; break;
	case SIL_R0:
		out->type = PM_RT_RAID0;
		if (per_stripe <= 0 || disk >= (unsigned)per_stripe)
			return pm_rf_bad(why, whylen, "sil: disk %u of a %d-disk stripe", disk, per_stripe);
		out->members = (unsigned)per_stripe;
		out->sectors = array / (unsigned)per_stripe;
		break;
	case SIL_R1:
		out->type = PM_RT_RAID1;
		out->members = per_mirror > 0 ? (unsigned)per_mirror : 0; /* unknown: left to the set check */
		out->sectors = array;
		break;
	case SIL_R10:
		/* mirror over stripes: striped set <n> is subset "-<n>". dmraid maps each member with the
		 * whole array's length; the member's share of it is array / disks per stripe. */
		out->type = PM_RT_RAID0;
		if (per_stripe <= 0 || stripe_no < 0 || stripe_no >= 8)
			return pm_rf_bad(why, whylen, "sil: RAID10 stripe set %d of %d disks", stripe_no,
					 per_stripe);
		out->members = (unsigned)per_stripe;
		out->index = disk % (unsigned)per_stripe;
		out->sectors = array / (unsigned)per_stripe;
		out->set_sectors = array;
		pm_rf_stack(out, PM_RT_RAID1, stride, 2, (unsigned)stripe_no);
		break;
	default: out->type = PM_RT_UNDEF; out->sectors = cooked; break;
	}
	(void)mirror_no;
	return (r = pm_rf_extent(d, out, why, whylen)) < 0 ? r : 1;
}

const struct pm_raid_format pm_raid_sil = {
	.name = "sil", .descr = "Silicon Image(tm) Medley(tm)", .caps = "0,1,10", .read = sil_read,
};
