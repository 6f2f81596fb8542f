/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sun disklabel (SPARC VTOC): magic 0xDABE and an XOR checksum over the 512-byte sector, eight
 * partitions in cylinders; big-endian. Slot i is partition i+1, the whole-disk slice included. */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define SUN_MAGIC 0xDABE
#define SUN_VTOC_SANITY 0x600DDEEEu
#define OFF_VERSION 128
#define OFF_NPARTS 140
#define OFF_SANITY 188
#define OFF_NTRKS 436
#define OFF_NSECT 438
#define OFF_PARTS 444
#define OFF_MAGIC 508

int pm_read_sun(struct pm_ctx *c)
{
	uint8_t l[512];
	uint16_t csum = 0;
	unsigned nparts = 8;
	uint64_t spc;
	int r;

	r = pm_disk_read512(c->disk, 0, l);
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_be16(l + OFF_MAGIC) != SUN_MAGIC)
		return PM_NOTFOUND;
	for (int i = 0; i < 512; i += 2)
		csum ^= get_be16(l + i);
	if (csum) {
		pm_set_error(c, "Sun disklabel: checksum wrong, label damaged");
		return -EBADMSG;
	}
	if (get_be32(l + OFF_SANITY) == SUN_VTOC_SANITY && get_be32(l + OFF_VERSION) == 1 &&
	    get_be16(l + OFF_NPARTS) <= 8)
		nparts = get_be16(l + OFF_NPARTS);
	spc = (uint64_t)get_be16(l + OFF_NTRKS) * get_be16(l + OFF_NSECT);
	for (unsigned i = 0; i < nparts; i++) {
		const uint8_t *p = l + OFF_PARTS + 8 * i;
		uint32_t nsect = get_be32(p + 4);

		if (nsect && !pm_put(c, i + 1, get_be32(p) * spc, nsect, PM_PRIMARY))
			return c->err;
	}
	return PM_FOUND;
}
