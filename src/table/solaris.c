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

/* Calls back for each used slice: returns the number of slices or -1 when there is no VTOC. */
static int read_vtoc(struct pm_ctx *c, uint64_t offset, const char *where,
		     void (*each)(struct pm_ctx *, void *, unsigned, uint64_t, uint64_t), void *arg)
{
	uint8_t v[512];
	unsigned max;
	int n = 0;

	if (pm_disk_read512(c->disk, offset + 1, v) < 0 || get_le32(v + VTOC_SANITY_OFF) != VTOC_SANE)
		return -1;
	if (get_le32(v + VTOC_VERSION_OFF) != 1) {
		pm_warn(c, "Solaris VTOC %s: version %u not understood", where, get_le32(v + VTOC_VERSION_OFF));
		return -1;
	}
	max = get_le16(v + VTOC_NPARTS_OFF) > 8 ? VTOC_MAX : 8;
	for (unsigned i = 0; i < max; i++) {
		const uint8_t *s = v + VTOC_SLICES_OFF + i * VTOC_SLICE_SIZE;
		uint32_t size = get_le32(s + 8);

		if (!size)
			continue;
		each(c, arg, i, get_le32(s + 4) + offset, size);
		n++;
	}
	return n;
}

struct nest {
	unsigned origin;
};

static void put_nested(struct pm_ctx *c, void *arg, unsigned slice, uint64_t start, uint64_t size)
{
	struct pm_part *p = pm_put(c, c->next++, start, size, PM_NESTED);

	(void)slice;
	if (p) {
		p->container = ((struct nest *)arg)->origin;
		p->sublabel = "solaris";
	}
}

void pm_nested_solaris(struct pm_ctx *c, uint64_t offset, uint64_t size, unsigned origin)
{
	struct nest n = { origin };

	(void)size;
	read_vtoc(c, offset, "in a DOS partition", put_nested, &n);
}

static void put_top(struct pm_ctx *c, void *arg, unsigned slice, uint64_t start, uint64_t size)
{
	unsigned *num = arg;

	(void)slice;
	pm_put(c, ++*num, start, size, PM_PRIMARY);
}

int pm_read_solaris(struct pm_ctx *c)
{
	unsigned num = 0;

	if (read_vtoc(c, 0, "at the start of the device", put_top, &num) < 0)
		return PM_NOTFOUND;
	return c->err ? c->err : PM_FOUND;
}
