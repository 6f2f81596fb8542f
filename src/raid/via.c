/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VIA V-RAID: 51 bytes at LBA N-1, signature 0xAA55, an 8-bit sum of bytes 0..49 in byte 50
 * (facts: ../shared/reference/dmraid.md §1.6). */
#include "fmtutil.h"

#include <errno.h>
#include <stdio.h>

#define VIA_LEN 51

enum { VIA_R0 = 0, VIA_R1 = 1, VIA_SPAN = 8, VIA_R01 = 9 };

static int via_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	(void)serial;
	uint8_t m[VIA_LEN];
	uint64_t n = pm_disk_sectors(d), at;
	int r = pm_rf_tail(d, 1, m, sizeof(m), &at);
	if (r <= 0)
		return r;
	if (pm_raid_le16(m) != 0xAA55)
		return 0;
	if ((uint8_t)pm_rf_bytes(m, 50) != m[50])
		return pm_rf_bad(why, whylen, "via: invalid checksum");

	/* the disk bitfield: bootable:1 enhanced:1 in_disk_array:1 raid_type:4 array_index:3
	 * raid_type_info:5 tolerance:1, from bit 0 of the little-endian u16 at 3 */
	unsigned bits = pm_raid_le16(m + 3);
	unsigned in_array = bits >> 2 & 1, rtype = bits >> 3 & 0xF, info = bits >> 10 & 0x1F;
	unsigned tolerance = bits >> 15 & 1;
	unsigned ex = m[5];
	uint32_t sum = ex;
	for (unsigned i = 0; i < 8; i++)
		sum += pm_raid_le32(m + 0x12 + 4 * i);

	if ((r = pm_rf_rec(out, max, &pm_raid_via)) < 0)
		return r;
	pm_rf_name_u(out->set, "via", sum);
	out->status = tolerance ? PM_RS_BROKEN : in_array ? PM_RS_OK : PM_RS_UNDEF;
	out->offset = 0;
	out->sectors = n - 1;
	out->stride = 8u << (ex >> 4);
	out->meta_offset = at;
	out->meta_len = VIA_LEN;
	out->members = ex & 7;
	out->index = info & 7;
	switch (rtype) {
	case VIA_SPAN: out->type = PM_RT_LINEAR; break;
	case VIA_R0: out->type = PM_RT_RAID0; break;
	case VIA_R1:
		out->type = PM_RT_RAID1;
		out->members = 2;
		out->index = (info & 3) != 0; /* the source disk first */
		break;
	case VIA_R01:
		/* mirror over two stripes; bit 3 of raid_type_info names the stripe */
		out->type = PM_RT_RAID0;
		pm_rf_stack(out, PM_RT_RAID1, out->stride, 2, info >> 3 & 1);
		break;
	default: out->type = PM_RT_UNDEF; break;
	}
	return 1;
}

const struct pm_raid_format pm_raid_via = {
	.name = "via", .descr = "VIA Software RAID", .caps = "S,0,1,10", .read = via_read,
};
