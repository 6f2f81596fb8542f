/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Solaris x86 VTOC, in sector 1 of its slot: 32-bit little-endian fields (the real on-disk layout,
 * not one built from a host's `long`). Nested in DOS slots 0x82 (when the sanity value is there, since
 * 0x82 is also Linux swap) and 0xbf; kpartx also reads one at the start of a whole device. */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define VTOC_SANE 0x600DDEEEu
#define VTOC_SANITY_OFF 12
#define VTOC_VERSION_OFF 16
#define VTOC_NPARTS_OFF 30
#define VTOC_SLICES_OFF 72
#define VTOC_SLICE_SIZE 12
#define VTOC_MAX 16

int pm_label_solaris(struct pm_ctx *c, const struct pm_label_at *at)
{
	const char *where = at->origin ? "in a DOS partition" : "at the start of the device";
	uint8_t v[512];
	unsigned max, num = 0;

	if (pm_disk_read512(c->disk, at->offset + 1, v) < 0 || get_le32(v + VTOC_SANITY_OFF) != VTOC_SANE)
		return PM_NOTFOUND;
	if (get_le32(v + VTOC_VERSION_OFF) != 1) {
		pm_warn(c, "Solaris VTOC %s: version %u not understood", where, get_le32(v + VTOC_VERSION_OFF));
		return PM_NOTFOUND;
	}
	max = get_le16(v + VTOC_NPARTS_OFF) > 8 ? VTOC_MAX : 8;
	for (unsigned i = 0; i < max; i++) {
		const uint8_t *s = v + VTOC_SLICES_OFF + i * VTOC_SLICE_SIZE;
		uint32_t size = get_le32(s + 8);

		if (!size)
			continue;
		if (!pm_put_label(c, at, ++num, get_le32(s + 4) + at->offset, size, "solaris"))
			return c->err;
	}
	return PM_FOUND;
}

int pm_read_solaris(struct pm_ctx *c)
{
	return pm_read_whole(c, pm_label_solaris);
}
