/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HighPoint HPT45x: 48 bytes at LBA N-11, magic 0x5A7816F3 (0x5A7816FD: broken), no checksum
 * (facts: ../shared/reference/dmraid.md §1.8). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HPT45X_LEN 48
#define HPT45X_OK 0x5A7816F3u
#define HPT45X_BAD 0x5A7816FDu

enum { HPT45X_SPAN = 4, HPT45X_R0 = 5, HPT45X_R1 = 6 };

static int hpt45x_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max,
		       char *why, size_t whylen)
{
	(void)serial;
	uint8_t m[HPT45X_LEN];
	uint64_t n = pm_disk_sectors(d), at;
	int r = pm_rf_tail(d, 11, m, sizeof(m), &at);
	if (r <= 0)
		return r;
	uint32_t magic = pm_raid_le32(m);
	if (magic != HPT45X_OK && magic != HPT45X_BAD)
		return 0;

	uint32_t set = pm_raid_le32(m + 4), total = pm_raid_le32(m + 0xC);
	unsigned type = m[0x10], disks = m[0x11], disk = m[0x12], shift = m[0x13];
	unsigned r1_type = m[0x20], r1_disks = m[0x21], r1_disk = m[0x22], r1_shift = m[0x23];
	if (disk >= 8)
		return pm_rf_bad(why, whylen, "hpt45x: disk number %u", disk);
	if (shift > 24 || r1_shift > 24)
		return pm_rf_bad(why, whylen, "hpt45x: absurd stripe shift");

	if ((r = pm_rf_rec(out, max, &pm_raid_hpt45x)) < 0)
		return r;
	pm_rf_hpt(out, "hpt45x", set, magic == HPT45X_BAD, shift, disks, disk);
	out->offset = 0;
	out->meta_offset = at;
	out->meta_len = HPT45X_LEN;
	if (set) {
		out->type = type == HPT45X_SPAN ? PM_RT_LINEAR : type == HPT45X_R0 ? PM_RT_RAID0
			  : type == HPT45X_R1 ? PM_RT_RAID1 : PM_RT_UNDEF;
		if (r1_type == HPT45X_R1) {
			if (out->type == PM_RT_RAID0) {
				/* RAID10: this stripe is one half of a mirror */
				pm_rf_stack(out, PM_RT_RAID1, r1_shift ? 1u << r1_shift : 0, r1_disks ? r1_disks : 2,
					    r1_disk);
			} else {
				/* dmraid names it as a subset but stacks nothing: the suffix stays */
				char *e = out->set + strlen(out->set);
				snprintf(e, sizeof(out->set) - (size_t)(e - out->set), "-%u", r1_disk);
			}
		}
	}
	return pm_rf_hpt_len(d, out, total, n - 11, why, whylen);
}

const struct pm_raid_format pm_raid_hpt45x = {
	.name = "hpt45x", .descr = "Highpoint HPT45X", .caps = "S,0,1,10", .read = hpt45x_read,
};
