/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NVIDIA MediaShield / nForce RAID: 120 bytes at LBA N-2, a 30-dword block whose dwords sum to 0
 * (facts: ../shared/reference/dmraid.md §1.4). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NV_LEN 120
#define NV_ARRAY 0x34 /* the array block */

enum { NV_JBOD = 0xFF, NV_R0 = 0x80, NV_R1 = 0x81, NV_R3 = 0x83, NV_R5 = 0x85, NV_R10 = 0x8A,
       NV_R10_STACKED = 0x8180, NV_R5_SYM = 0x95, NV_SPARE = 0x00 };

static enum pm_raid_type nv_type(uint32_t level)
{
	switch (level) {
	case NV_JBOD: return PM_RT_LINEAR;
	case NV_R0: return PM_RT_RAID0;
	case NV_R1: return PM_RT_RAID1;
	case NV_R10_STACKED: return PM_RT_RAID0; /* the stripes under the mirror */
	case NV_R3: return PM_RT_RAID4;
	case NV_R5_SYM: return PM_RT_RAID5_LS;
	case NV_SPARE: return PM_RT_SPARE;
	default: return PM_RT_UNDEF; /* 0x85, 0x8A and the rest: not mapped by dmraid */
	}
}

static int nv_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		   size_t whylen)
{
	(void)serial;
	uint8_t m[NV_LEN];
	uint64_t n = pm_disk_sectors(d), at;
	int r = pm_rf_tail(d, 2, m, sizeof(m), &at);
	if (r <= 0)
		return r;
	if (memcmp(m, "NVIDIA", 6))
		return 0;
	if (pm_raid_le32(m + 8) != NV_LEN / 4)
		return pm_rf_bad(why, whylen, "nvidia: metadata size %u dwords, not 30", pm_raid_le32(m + 8));
	if (pm_rf_sum32(m, NV_LEN / 4))
		return pm_rf_bad(why, whylen, "nvidia: bad checksum");

	const uint8_t *a = m + NV_ARRAY;
	unsigned unit = m[0x12];
	unsigned width = a[0x15], total = a[0x16];
	uint32_t level = pm_raid_le32(a + 0x18);
	uint32_t chunk = pm_raid_le32(a + 0x1C);
	uint32_t sig = pm_rf_sum32(a + 4, 4);
	bool stacked = level == NV_R10_STACKED;

	if ((r = pm_rf_rec(out, max, &pm_raid_nvidia)) < 0)
		return r;
	char id[16];
	snprintf(id, sizeof(id), "%08x", sig);
	pm_rf_name(out->set, "nvidia", id, 0);

	/* a unit past the members the level uses is a spare (dmraid's rule) */
	unsigned used = width;
	if (level == NV_R10_STACKED || level == NV_R10 || level == NV_R1)
		used *= 2;
	else if (level == NV_R5_SYM)
		used += 1;
	out->type = total >= used && unit >= used ? PM_RT_SPARE : nv_type(level);
	out->status = pm_raid_le32(a + 0x40) & 0x02 ? PM_RS_BROKEN : PM_RS_OK;
	out->offset = 0;
	out->sectors = n - 2;
	out->stride = chunk;
	out->meta_offset = at;
	out->meta_len = NV_LEN;
	out->members = stacked ? total / 2 : total;
	out->index = unit;
	if (stacked && out->type != PM_RT_SPARE) { /* (a stripe width of 0 makes every unit a spare) */
		/* mirror over two stripes: units [0, width) in the first, the rest in the second */
		pm_rf_stack(out, PM_RT_RAID1, chunk, 2, unit >= width);
		out->index = unit % width;
	}
	return 1;
}

const struct pm_raid_format pm_raid_nvidia = {
	.name = "nvidia", .descr = "NVidia RAID", .caps = "S,0,1,10,5", .read = nv_read,
};
