/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PlayStation 3 disk label (kpartx's reader; the kernel has none): two magic numbers, eight regions of
 * 64-bit big-endian start and size in 512-byte sectors; used regions numbered in order. */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define PS3_MAGIC1 0x0FACE0FFull
#define PS3_MAGIC2 0xDEADFACEull
#define PS3_PARTS_OFF 48
#define PS3_PART_SIZE 144

int pm_read_ps3(struct pm_ctx *c)
{
	uint8_t l[PS3_PARTS_OFF + 8 * PS3_PART_SIZE];
	unsigned num = 0;
	int r;

	r = pm_disk_read(c->disk, 0, l, sizeof(l));
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_be64(l + 16) != PS3_MAGIC1 || get_be64(l + 24) != PS3_MAGIC2)
		return PM_NOTFOUND;
	for (int i = 0; i < 8; i++) {
		const uint8_t *p = l + PS3_PARTS_OFF + PS3_PART_SIZE * i;
		uint64_t start = get_be64(p), size = get_be64(p + 8);

		if (start && size && !pm_put(c, ++num, start, size, PM_PRIMARY))
			return c->err;
	}
	return PM_FOUND;
}
