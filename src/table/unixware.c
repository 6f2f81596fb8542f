/* SPDX-License-Identifier: GPL-2.0-or-later */
/* UnixWare disklabel in sector 29 of its slot; slice 0 (the whole slot) is skipped, the others are
 * absolute sector numbers. Nested in DOS slot type 0x63; kpartx also reads one on a whole device. */
#include "reader.h"
#include "../util.h"

#define UW_MAGIC 0xCA5E600Du
#define UW_MAGIC2 0x600DDEEEu
#define UW_VTOC_OFF 156
#define UW_SLICES_OFF (UW_VTOC_OFF + 60)
#define UW_SLICE_SIZE 12
#define UW_SLICES 16

static int read_label(struct pm_ctx *c, uint64_t offset, unsigned origin, enum pm_kind kind)
{
	uint8_t l[512];
	unsigned num = 0;

	if (pm_disk_read512(c->disk, offset + 29, l) < 0)
		return 0;
	if (get_le32(l + 4) != UW_MAGIC || get_le32(l + UW_VTOC_OFF) != UW_MAGIC2)
		return 0;
	for (unsigned i = 1; i < UW_SLICES; i++) {
		const uint8_t *s = l + UW_SLICES_OFF + i * UW_SLICE_SIZE;
		struct pm_part *p;

		if (get_le16(s) == 0) /* unused */
			continue;
		p = pm_put(c, kind == PM_NESTED ? c->next++ : ++num, get_le32(s + 4), get_le32(s + 8), kind);
		if (!p)
			break;
		if (kind == PM_NESTED) {
			p->container = origin;
			p->sublabel = "unixware";
		}
	}
	return 1;
}

void pm_nested_unixware(struct pm_ctx *c, uint64_t offset, uint64_t size, unsigned origin)
{
	(void)size;
	read_label(c, offset, origin, PM_NESTED);
}

int pm_read_unixware(struct pm_ctx *c)
{
	if (!read_label(c, 0, 0, PM_PRIMARY))
		return PM_NOTFOUND;
	return c->err ? c->err : PM_FOUND;
}
