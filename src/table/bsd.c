/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BSD disklabel, one reader for three places:
 *  - nested in a DOS slot (FreeBSD 0xa5, OpenBSD 0xa6, NetBSD 0xa9): the label in the slot's sector 1,
 *    read as the kernel's parse_bsd reads it (unused slices skipped, the rest numbered after every
 *    logical partition);
 *  - at byte 64 of the device's sector 0 (what parted writes; the kernel's "osf" reader): numbered
 *    slot by slot, an empty slot still taking its number, as the kernel numbers them; a label that
 *    claims more than 18 slots or lacks the second magic is not one (the kernel ignores it);
 *  - at the device's sector 1 (no kernel reader; kpartx and libblkid read it): unused slices skipped
 *    and the rest numbered 1, 2, 3 ... as kpartx and partx number them.
 * Little-endian on disk. */
#include "reader.h"
#include "../util.h"

#include <errno.h>

#define BSD_MAGIC 0x82564557u
#define BSD_MAGIC2_OFF 132
#define BSD_NPARTS_OFF 138
#define BSD_PARTS_OFF 148
#define BSD_PART_SIZE 16
#define BSD_FS_UNUSED 0
#define OSF_MAX 18            /* the kernel's MAX_OSF_PARTITIONS */
#define SECTOR1_MAX 22        /* the slices a 512-byte sector holds after the header */

struct slice {
	uint32_t size, offset;
	uint8_t fstype;
};

/* slice i of a label in l (len bytes from the label's start); false past the buffer */
static bool slice(const uint8_t *l, size_t len, unsigned i, struct slice *s)
{
	size_t off = BSD_PARTS_OFF + (size_t)i * BSD_PART_SIZE;

	if (off + BSD_PART_SIZE > len)
		return false;
	s->size = get_le32(l + off);
	s->offset = get_le32(l + off + 4);
	s->fstype = l[off + 12];
	return true;
}

static int nested(struct pm_ctx *c, const struct pm_label_at *at)
{
	const char *flavour = at->dos_type == 0xa5 ? "bsd" : at->dos_type == 0xa6 ? "openbsd" : "netbsd";
	unsigned max = at->dos_type == 0xa9 ? 22 : 16, n;
	uint8_t l[512];

	if (pm_disk_read512(c->disk, at->offset + 1, l) < 0 || get_le32(l) != BSD_MAGIC)
		return PM_NOTFOUND;
	n = get_le16(l + BSD_NPARTS_OFF);
	if (n > max)
		pm_warn(c, "%s label in partition %u: %u partitions, only the first %u read", flavour, at->origin, n, max);
	else
		max = n;
	/* FreeBSD offsets are relative when the 'c' slice starts at 0 */
	bool relative = at->dos_type == 0xa5 && get_le32(l + BSD_PARTS_OFF + 2 * BSD_PART_SIZE + 4) == 0;
	for (unsigned i = 0; i < max; i++) {
		struct slice s;
		uint64_t start;

		if (!slice(l, sizeof(l), i, &s))
			break;
		if (s.fstype == BSD_FS_UNUSED)
			continue;
		start = s.offset + (relative ? at->offset : 0);
		if (start == at->offset && s.size == at->size)
			continue; /* the whole slot again: already listed */
		if (start < at->offset || start + s.size > at->offset + at->size) {
			pm_warn(c, "%s label in partition %u: slice %c lies outside it, ignored", flavour, at->origin, 'a' + i);
			continue;
		}
		if (!pm_put_label(c, at, 0, start, s.size, flavour))
			return c->err;
	}
	return PM_FOUND;
}

int pm_label_bsd(struct pm_ctx *c, const struct pm_label_at *at)
{
	uint8_t sec[1024];
	unsigned n, num = 0;
	int r;

	if (at->origin)
		return nested(c, at);
	r = pm_disk_read(c->disk, 0, sec, sizeof(sec));
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (get_le32(sec + 64) == BSD_MAGIC) {
		/* the kernel's osf reader: both magics, at most 18 slots, numbered by slot */
		const uint8_t *l = sec + 64;
		if (get_le32(l + BSD_MAGIC2_OFF) != BSD_MAGIC || get_le16(l + BSD_NPARTS_OFF) > OSF_MAX)
			return PM_NOTFOUND;
		n = get_le16(l + BSD_NPARTS_OFF);
		for (unsigned i = 0; i < n; i++) {
			struct slice s;
			if (!slice(l, sizeof(sec) - 64, i, &s))
				break;
			if (s.size && !pm_put_label(c, at, i + 1, s.offset, s.size, NULL))
				return c->err;
		}
		return PM_FOUND;
	}
	if (get_le32(sec + 512) != BSD_MAGIC)
		return PM_NOTFOUND;
	/* sector 1, which the kernel does not read: kpartx's and libblkid's numbering */
	n = get_le16(sec + 512 + BSD_NPARTS_OFF);
	if (n > SECTOR1_MAX) {
		pm_warn(c, "BSD label: %u partitions, only the first %u read", n, SECTOR1_MAX);
		n = SECTOR1_MAX;
	}
	for (unsigned i = 0; i < n; i++) {
		struct slice s;
		if (!slice(sec + 512, 512, i, &s))
			break;
		if (s.fstype == BSD_FS_UNUSED || !s.size)
			continue;
		if (!pm_put_label(c, at, ++num, s.offset, s.size, NULL))
			return c->err;
	}
	return PM_FOUND;
}

int pm_read_bsd(struct pm_ctx *c)
{
	return pm_read_whole(c, pm_label_bsd);
}
