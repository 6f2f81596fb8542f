/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Atari AHDI root sector: four primary entries at 0x1c6 (flag, 3-character id, start, size; big-endian),
 * "XGM" entries start a chain of extended root sectors. No magic number: the table counts only when a
 * primary entry is active, has an alphanumeric id and fits the device, as the kernel requires. */
#include "reader.h"
#include "../util.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#define ROOT_PARTS 0x1c6
#define ICD_PARTS 0x156
#define MAX_CHAIN (1u << 16)

static bool valid_entry(const uint8_t *e, uint64_t disk)
{
	uint64_t st = get_be32(e + 4), sz = get_be32(e + 8);
	return (e[0] & 1) && isalnum(e[1]) && isalnum(e[2]) && isalnum(e[3]) && st <= disk && st + sz <= disk;
}

static bool icd_id(const uint8_t *id)
{
	static const char *const ids[] = { "GEM", "BGM", "LNX", "SWP", "RAW" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (!memcmp(id, ids[i], 3))
			return true;
	return false;
}

int pm_read_atari(struct pm_ctx *c)
{
	uint64_t disk = pm_disk_sectors(c->disk);
	uint8_t rs[512], xs[512];
	bool any = false, extended = false;
	unsigned slot = 1;
	int r;

	if (c->ssz != 512)
		return PM_NOTFOUND;
	r = pm_disk_read512(c->disk, 0, rs);
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	for (int i = 0; i < 4; i++)
		any |= valid_entry(rs + ROOT_PARTS + 12 * i, disk);
	if (!any)
		return PM_NOTFOUND;

	for (int i = 0; i < 4; i++, slot++) {
		const uint8_t *e = rs + ROOT_PARTS + 12 * i;
		uint64_t ext, part;
		unsigned links = 0;

		if (!(e[0] & 1))
			continue;
		if (memcmp(e + 1, "XGM", 3)) {
			if (!pm_put(c, slot, get_be32(e + 4), get_be32(e + 8), PM_PRIMARY))
				return c->err;
			continue;
		}
		extended = true;
		ext = part = get_be32(e + 4);
		for (;;) {
			if (++links > MAX_CHAIN) {
				pm_warn(c, "Atari XGM chain longer than %u links: stopped", MAX_CHAIN);
				break;
			}
			if (pm_disk_read512(c->disk, part, xs) < 0) {
				pm_warn(c, "Atari XGM chain: cannot read sector %llu", (unsigned long long)part);
				break;
			}
			if (!(xs[ROOT_PARTS] & 1))
				break;
			if (!pm_put(c, slot, part + get_be32(xs + ROOT_PARTS + 4), get_be32(xs + ROOT_PARTS + 8),
				    PM_LOGICAL))
				return c->err;
			if (!(xs[ROOT_PARTS + 12] & 1) || memcmp(xs + ROOT_PARTS + 13, "XGM", 3))
				break;
			uint64_t next = get_be32(xs + ROOT_PARTS + 12 + 4) + ext;
			if (next <= part) {
				pm_warn(c, "Atari XGM chain goes back to sector %llu: stopped", (unsigned long long)next);
				break;
			}
			part = next;
			slot++;
		}
	}
	if (!extended && icd_id(rs + ICD_PARTS + 1)) {
		for (int i = 0; i < 8; i++, slot++) {
			const uint8_t *e = rs + ICD_PARTS + 12 * i;
			if (!((e[0] & 1) && icd_id(e + 1)))
				continue;
			if (!pm_put(c, slot, get_be32(e + 4), get_be32(e + 8), PM_PRIMARY))
				return c->err;
		}
	}
	return PM_FOUND;
}
