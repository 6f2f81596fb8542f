/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BSD disklabel: nested in a DOS slot (FreeBSD 0xa5, OpenBSD 0xa6, NetBSD 0xa9), read as the kernel
 * reads it, or on its own at byte 64 of sector 0 (what parted writes, the kernel's "osf" reader) or at
 * sector 1 (what kpartx also accepts). Little-endian on disk. */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define BSD_MAGIC 0x82564557u
#define BSD_NPARTS_OFF 138
#define BSD_PARTS_OFF 148
#define BSD_PART_SIZE 16
#define BSD_MAX_STANDALONE 18 /* what fits in the sector after the header */

/* entry i of a label in buf (which holds len bytes from the label's start) */
static bool bsd_entry(const uint8_t *l, size_t len, unsigned i, uint32_t *size, uint32_t *offset, uint8_t *fstype)
{
	size_t off = BSD_PARTS_OFF + (size_t)i * BSD_PART_SIZE;

	if (off + BSD_PART_SIZE > len)
		return false;
	*size = get_le32(l + off);
	*offset = get_le32(l + off + 4);
	*fstype = l[off + 12];
	return true;
}

void pm_nested_bsd(struct pm_ctx *c, uint64_t offset, uint64_t size, unsigned origin, uint8_t id)
{
	const char *flavour = id == 0xa5 ? "bsd" : id == 0xa6 ? "openbsd" : "netbsd";
	unsigned max = id == 0xa9 ? 22 : 16;
	uint8_t l[512];
	unsigned n;

	if (pm_disk_read512(c->disk, offset + 1, l) < 0 || get_le32(l) != BSD_MAGIC)
		return;
	n = get_le16(l + BSD_NPARTS_OFF);
	if (n > max)
		pm_warn(c, "%s label in partition %u: %u partitions, only the first %u read", flavour, origin, n, max);
	else
		max = n;
	for (unsigned i = 0; i < max; i++) {
		uint32_t psize, poff;
		uint8_t fstype;
		uint64_t start;
		struct pm_part *p;

		if (!bsd_entry(l, sizeof(l), i, &psize, &poff, &fstype))
			break;
		if (fstype == 0)
			continue;
		start = poff;
		/* FreeBSD offsets are relative when the 'c' slice starts at 0 */
		if (id == 0xa5 && get_le32(l + BSD_PARTS_OFF + 2 * BSD_PART_SIZE + 4) == 0)
			start += offset;
		if (start == offset && psize == size)
			continue; /* the whole slot again: already listed */
		if (start < offset || start + psize > offset + size) {
			pm_warn(c, "%s label in partition %u: slice %c lies outside it, ignored", flavour, origin, 'a' + i);
			continue;
		}
		p = pm_put(c, c->next++, start, psize, PM_NESTED);
		if (!p)
			return;
		p->container = origin;
		p->sublabel = flavour;
	}
}

int pm_read_bsd(struct pm_ctx *c)
{
	uint8_t sec[1024];
	const uint8_t *l;
	size_t len;
	unsigned n;
	int r;

	r = pm_disk_read(c->disk, 0, sec, sizeof(sec));
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_le32(sec + 64) == BSD_MAGIC) {
		l = sec + 64;
		len = sizeof(sec) - 64;
	} else if (get_le32(sec + 512) == BSD_MAGIC) {
		l = sec + 512;
		len = 512;
	} else {
		return PM_NOTFOUND;
	}
	n = get_le16(l + BSD_NPARTS_OFF);
	if (n > BSD_MAX_STANDALONE) {
		pm_warn(c, "BSD label: %u partitions, only the first %u read", n, BSD_MAX_STANDALONE);
		n = BSD_MAX_STANDALONE;
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t psize, poff;
		uint8_t fstype;
		struct pm_part *p;

		if (!bsd_entry(l, len, i, &psize, &poff, &fstype))
			break;
		if (!psize)
			continue;
		p = pm_put(c, i + 1, poff, psize, PM_PRIMARY);
		if (!p)
			return c->err;
	}
	return PM_FOUND;
}
