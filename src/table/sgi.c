/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SGI disk volume header (dvh): magic 0x0BE5A941, a 32-bit sum over the 512-byte header that must be
 * zero, 16 partitions; big-endian. Slot i is partition i+1 (volume header and whole-volume included). */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define SGI_MAGIC 0x0BE5A941u
#define SGI_PARTS_OFF 312

int pm_read_sgi(struct pm_ctx *c)
{
	uint8_t l[512];
	uint32_t sum = 0;
	int r;

	r = pm_disk_read512(c->disk, 0, l);
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_be32(l) != SGI_MAGIC)
		return PM_NOTFOUND;
	for (int i = 0; i < 512; i += 4)
		sum += get_be32(l + i);
	if (sum) {
		pm_set_error(c, "SGI disk label: checksum wrong, label damaged");
		return -EBADMSG;
	}
	for (unsigned i = 0; i < 16; i++) {
		const uint8_t *p = l + SGI_PARTS_OFF + 12 * i;
		uint32_t blocks = get_be32(p);

		if (blocks && !pm_put(c, i + 1, get_be32(p + 4), blocks, PM_PRIMARY))
			return c->err;
	}
	return PM_FOUND;
}
