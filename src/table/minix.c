/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minix subpartitions: a DOS-style table in the first sector of a 0x81 slot whose first entry is
 * 0x81 too; up to four subpartitions with absolute starts. Only nested (as in the kernel). */
#include "reader.h"
#include "../util.h"

int pm_label_minix(struct pm_ctx *c, const struct pm_label_at *at)
{
	uint8_t s[512];

	if (!at->origin || pm_disk_read512(c->disk, at->offset, s) < 0)
		return PM_NOTFOUND;
	if (s[510] != 0x55 || s[511] != 0xaa || s[0x1be + 4] != 0x81)
		return PM_NOTFOUND;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = s + 0x1be + 16 * i;
		struct pm_part *p;

		if (e[4] != 0x81)
			continue;
		p = pm_put_label(c, at, 0, get_le32(e + 8), get_le32(e + 12), "minix");
		if (!p)
			return c->err;
		p->has_dos_type = true;
		p->dos_type = 0x81;
	}
	return PM_FOUND;
}
