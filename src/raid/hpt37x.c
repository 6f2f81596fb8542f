/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HighPoint HPT37x: 512 bytes at LBA 9, magic 0x5A7816F0 (0x5A7816FD: broken) at byte 0x20, no
 * checksum; data from sector 10 on every disk but disk 0 (facts: ../shared/reference/dmraid.md §1.8). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HPT37X_AT (9 * 512)
#define HPT37X_LEN 512
#define HPT37X_OK 0x5A7816F0u
#define HPT37X_BAD 0x5A7816FDu

enum { HPT37X_R0 = 0, HPT37X_R1 = 1, HPT37X_R01_R0 = 2, HPT37X_SPAN = 3, HPT37X_R3 = 4, HPT37X_R5 = 5,
       HPT37X_SINGLE = 6, HPT37X_R01_R1 = 7 };

static int hpt37x_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max,
		       char *why, size_t whylen)
{
	(void)serial;
	uint8_t m[HPT37X_LEN];
	uint64_t n = pm_disk_sectors(d);
	if (n < 10)
		return 0;
	int r = pm_disk_read(d, HPT37X_AT, m, sizeof(m));
	if (r < 0)
		return r;
	uint32_t magic = pm_raid_le32(m + 0x20);
	if (magic != HPT37X_OK && magic != HPT37X_BAD)
		return 0;

	uint32_t set = pm_raid_le32(m + 0x24), array = pm_raid_le32(m + 0x28), order = pm_raid_le32(m + 0x2C);
	unsigned disks = m[0x30], shift = m[0x31], type = m[0x32], disk = m[0x33];
	uint32_t total = pm_raid_le32(m + 0x34);
	if (disk >= 8)
		return pm_rf_bad(why, whylen, "hpt37x: disk number %u", disk);
	if (shift > 24)
		return pm_rf_bad(why, whylen, "hpt37x: absurd stripe shift %u", shift);

	if ((r = pm_rf_rec(out, max, &pm_raid_hpt37x)) < 0)
		return r;
	/* named after the array id, or the set's when there is none */
	pm_rf_hpt(out, "hpt37x", set ? (array ? array : set) : 0, magic == HPT37X_BAD, shift, disks, disk);
	out->offset = disk ? 10 : 0;
	out->meta_offset = HPT37X_AT;
	out->meta_len = HPT37X_LEN;
	if (set) {
		switch (type) {
		case HPT37X_SINGLE: case HPT37X_SPAN: out->type = PM_RT_LINEAR; break;
		case HPT37X_R0: out->type = PM_RT_RAID0; break;
		case HPT37X_R1: out->type = PM_RT_RAID1; break;
		case HPT37X_R01_R0:
			/* a stripe under a mirror (dmraid: raid10) */
			out->type = PM_RT_RAID0;
			out->super_type = PM_RT_RAID1;
			break;
		case HPT37X_R01_R1:
			/* a mirror under a stripe (dmraid: raid01) */
			out->type = PM_RT_RAID1;
			out->super_type = PM_RT_RAID0;
			break;
		default: out->type = PM_RT_UNDEF; break; /* RAID3/5: not mapped by dmraid */
		}
		if (out->super_type != PM_RT_UNDEF) {
			pm_rf_stack(out, out->super_type, out->stride, 2, order);
			/* dmraid sorts a subset's members by disk number, which may count across the
			 * whole array (a RAID01's second mirror: disks 2 and 3): the place in the subset */
			if (disks)
				out->index = disk % disks;
		}
	}
	return pm_rf_hpt_len(d, out, total, n, why, whylen);
}

const struct pm_raid_format pm_raid_hpt37x = {
	.name = "hpt37x", .descr = "Highpoint HPT37X", .caps = "S,0,1,10,01", .read = hpt37x_read,
};
