/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minix subpartitions: a DOS-style table in the first sector of a 0x81 slot whose first entry is
 * 0x81 too; up to four subpartitions with absolute starts. */
#include "reader.h"
#include "../util.h"

void pm_nested_minix(struct pm_ctx *c, uint64_t offset, uint64_t size, unsigned origin)
{
	uint8_t s[512];

	(void)size;
	if (pm_disk_read512(c->disk, offset, s) < 0)
		return;
	if (s[510] != 0x55 || s[511] != 0xaa || s[0x1be + 4] != 0x81)
		return;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = s + 0x1be + 16 * i;
		struct pm_part *p;

		if (e[4] != 0x81)
			continue;
		p = pm_put(c, c->next++, get_le32(e + 8), get_le32(e + 12), PM_NESTED);
		if (!p)
			return;
		p->container = origin;
		p->sublabel = "minix";
		p->has_dos_type = true;
		p->dos_type = 0x81;
	}
}
