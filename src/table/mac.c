/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Apple Partition Map: driver descriptor "ER" in block 0 gives the block size, map entries "PM" from
 * block 1 on, each naming the map's length. Every entry is a partition (the map itself and free space
 * included), numbered from 1 as the kernel numbers them. Big-endian. */
#include "reader.h"
#include "../util.h"

#include <errno.h>
#include <string.h>

#define MAC_DRIVER_MAGIC 0x4552
#define MAC_PART_MAGIC 0x504d

int pm_read_mac(struct pm_ctx *c)
{
	uint8_t b[512];
	uint8_t e[512];
	uint32_t bsize, count;
	uint64_t max_entries;
	int r;

	r = pm_disk_read512(c->disk, 0, b);
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_be16(b) != MAC_DRIVER_MAGIC)
		return PM_NOTFOUND;
	bsize = get_be16(b + 2);
	if (bsize < 512 || bsize % 512) {
		pm_set_error(c, "Mac partition map: block size %u is invalid", bsize);
		return -EBADMSG;
	}
	if (pm_disk_read(c->disk, bsize, e, sizeof(e)) < 0 || get_be16(e) != MAC_PART_MAGIC)
		return PM_NOTFOUND;
	count = get_be32(e + 4);
	max_entries = c->disk->size / bsize - 1;
	if (count == 0 || count > max_entries) {
		pm_warn(c, "Mac partition map: %u entries cannot fit on the device; reading until the first entry without signature",
			count);
		count = max_entries > UINT32_MAX ? UINT32_MAX : (uint32_t)max_entries;
	}
	for (uint32_t slot = 1; slot <= count; slot++) {
		struct pm_part *p;
		uint64_t mul = bsize / 512;

		if (slot > 1 && pm_disk_read(c->disk, (uint64_t)slot * bsize, e, sizeof(e)) < 0)
			break;
		if (get_be16(e) != MAC_PART_MAGIC)
			break;
		p = pm_put(c, slot, get_be32(e + 8) * mul, get_be32(e + 12) * mul, PM_PRIMARY);
		if (!p)
			return c->err;
		memcpy(p->label, e + 16, 32);
		p->label[32] = 0;
	}
	return PM_FOUND;
}
