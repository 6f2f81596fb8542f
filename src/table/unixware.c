/* SPDX-License-Identifier: GPL-2.0-or-later */
/* UnixWare disklabel in sector 29 of its slot; slice 0 (the whole slot) is skipped, the others are
 * absolute sector numbers. Nested in DOS slot type 0x63; kpartx also reads one on a whole device,
 * numbering the used slices 1, 2, 3 ... */
#include "reader.h"
#include "../util.h"

#define UW_MAGIC 0xCA5E600Du
#define UW_MAGIC2 0x600DDEEEu
#define UW_VTOC_OFF 156
#define UW_SLICES_OFF (UW_VTOC_OFF + 60)
#define UW_SLICE_SIZE 12
#define UW_SLICES 16

int pm_label_unixware(struct pm_ctx *c, const struct pm_label_at *at)
{
	uint8_t l[512];
	unsigned num = 0;

	if (pm_disk_read512(c->disk, at->offset + 29, l) < 0)
		return PM_NOTFOUND;
	if (get_le32(l + 4) != UW_MAGIC || get_le32(l + UW_VTOC_OFF) != UW_MAGIC2)
		return PM_NOTFOUND;
	for (unsigned i = 1; i < UW_SLICES; i++) {
		const uint8_t *s = l + UW_SLICES_OFF + i * UW_SLICE_SIZE;

		if (get_le16(s) == 0) /* unused */
			continue;
		if (!pm_put_label(c, at, ++num, get_le32(s + 4), get_le32(s + 8), "unixware"))
			return c->err;
	}
	return PM_FOUND;
}

int pm_read_unixware(struct pm_ctx *c)
{
	return pm_read_whole(c, pm_label_unixware);
}
