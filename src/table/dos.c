/* SPDX-License-Identifier: GPL-2.0-or-later */
/* DOS/MBR: primaries 1-4 by slot, logical partitions from 5 in chain order, labels nested in slots
 * numbered after them, as the Linux kernel's msdos reader numbers them. */
#include "reader.h"
#include "../util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MBR_ENTRIES 0x1be
#define TYPE_GPT_PMBR 0xee
/* a chain may not go on for ever: the kernel gives up after 100 links without a data partition */
#define MAX_EMPTY_LINKS 100
#define MAX_LINKS (1u << 20)

struct dos_entry {
	uint8_t boot, type;
	uint32_t start, size;
};

static struct dos_entry entry(const uint8_t *sec, int i)
{
	const uint8_t *p = sec + MBR_ENTRIES + 16 * i;
	return (struct dos_entry){ p[0], p[4], get_le32(p + 8), get_le32(p + 12) };
}

static bool has_magic(const uint8_t *sec)
{
	return sec[510] == 0x55 && sec[511] == 0xaa;
}

bool pm_dos_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Set of EBR sectors already visited, so a chain that loops back is stopped. */
struct seen {
	uint64_t *slot;
	size_t cap, n;
};

static int seen_add(struct seen *s, uint64_t v) /* 1 new, 0 already there, -ENOMEM */
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slot[i])
				continue;
			size_t h = (s->slot[i] * 0x9E3779B97F4A7C15ull) >> 7 & (ncap - 1);
			while (ns[h])
				h = (h + 1) & (ncap - 1);
			ns[h] = s->slot[i];
		}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	uint64_t key = v + 1; /* 0 marks an empty slot */
	size_t h = (key * 0x9E3779B97F4A7C15ull) >> 7 & (s->cap - 1);
	while (s->slot[h]) {
		if (s->slot[h] == key)
			return 0;
		h = (h + 1) & (s->cap - 1);
	}
	s->slot[h] = key;
	s->n++;
	return 1;
}

/* Logical partitions; first/size in 512-byte sectors; ext_num = the extended partition's slot. */
static int parse_extended(struct pm_ctx *c, uint64_t first, uint64_t first_size, unsigned ext_num)
{
	uint64_t ss = c->ssz / 512;
	uint64_t this_sector = first, this_size = first_size;
	unsigned empty_links = 0, links = 0;
	struct seen seen = { 0 };
	uint8_t sec[512];
	int r = 0;

	for (;;) {
		int i;
		struct dos_entry e[4];

		if (++empty_links > MAX_EMPTY_LINKS) {
			pm_warn(c, "extended partition %u: %d links without a logical partition, chain ignored from there",
				ext_num, MAX_EMPTY_LINKS);
			break;
		}
		if (++links > MAX_LINKS) {
			pm_warn(c, "extended partition %u: more than %u links, rest of the chain ignored", ext_num, MAX_LINKS);
			break;
		}
		r = seen_add(&seen, this_sector);
		if (r < 0)
			break;
		if (r == 0) {
			pm_warn(c, "extended partition %u: chain loops back to sector %llu, stopped there", ext_num,
				(unsigned long long)this_sector);
			r = 0;
			break;
		}
		r = pm_disk_read512(c->disk, this_sector, sec);
		if (r < 0) {
			pm_warn(c, "extended partition %u: cannot read the link at sector %llu", ext_num,
				(unsigned long long)this_sector);
			r = 0;
			break;
		}
		r = 0;
		if (!has_magic(sec))
			break;
		for (i = 0; i < 4; i++)
			e[i] = entry(sec, i);

		/* data partitions first: usually entry 0; entries 2 and 3 only when they make sense */
		for (i = 0; i < 4; i++) {
			uint64_t offs, size, next;
			struct pm_part *p;

			if (!e[i].size || pm_dos_is_extended(e[i].type))
				continue;
			offs = e[i].start * ss;
			size = e[i].size * ss;
			next = this_sector + offs;
			if (i >= 2) {
				if (offs + size > this_size || next < first || next + size > first + first_size)
					continue;
			}
			p = pm_put(c, c->next, next, size, PM_LOGICAL);
			if (!p)
				goto out;
			p->container = ext_num;
			p->has_dos_type = true;
			p->dos_type = e[i].type;
			c->next++;
			empty_links = 0;
		}
		if (c->capped)
			break; /* past the limit: the rest of the chain lists nothing */
		/* then the first link to the next EBR, relative to the extended partition's start */
		for (i = 0; i < 4; i++)
			if (e[i].size && pm_dos_is_extended(e[i].type))
				break;
		if (i == 4)
			break;
		this_sector = first + e[i].start * ss;
		this_size = e[i].size * ss;
	}
out:
	free(seen.slot);
	return r;
}

int pm_read_dos(struct pm_ctx *c)
{
	uint64_t ss = c->ssz / 512;
	uint8_t mbr[512];
	struct dos_entry e[4];
	int r;

	r = pm_disk_read512(c->disk, 0, mbr);
	if (r < 0)
		return r == -ERANGE ? PM_NOTFOUND : r;
	if (!has_magic(mbr))
		return PM_NOTFOUND;
	for (int i = 0; i < 4; i++) {
		e[i] = entry(mbr, i);
		/* a FAT boot sector carries 0x55AA too; a real table has boot indicators 0x00 or 0x80 */
		if (e[i].boot != 0 && e[i].boot != 0x80)
			return PM_NOTFOUND;
	}
	for (int i = 0; i < 4; i++)
		if (e[i].type == TYPE_GPT_PMBR)
			return PM_NOTFOUND; /* the GPT reader's business */
	c->t->has_disk_id = true;
	c->t->disk_id = get_le32(mbr + 440);

	for (unsigned slot = 1; slot <= 4; slot++) {
		const struct dos_entry *d = &e[slot - 1];
		uint64_t start = d->start * ss, size = d->size * ss;
		struct pm_part *p;

		if (!size)
			continue;
		if (pm_dos_is_extended(d->type)) {
			/* shown as the kernel shows it: room for a boot loader, not the whole container */
			uint64_t n = ss > 2 ? ss : 2;
			p = pm_put(c, slot, start, n < size ? n : size, PM_EXTENDED);
			if (!p)
				return c->err;
			p->has_dos_type = true;
			p->dos_type = d->type;
			r = parse_extended(c, start, size, slot);
			if (r < 0)
				return r;
			continue;
		}
		p = pm_put(c, slot, start, size, PM_PRIMARY);
		if (!p)
			return c->err;
		p->has_dos_type = true;
		p->dos_type = d->type;
	}

	/* labels nested in slots, numbered after every logical partition */
	for (unsigned slot = 1; slot <= 4; slot++) {
		const struct dos_entry *d = &e[slot - 1];
		uint64_t start = d->start * ss, size = d->size * ss;

		if (!d->size)
			continue;
		for (size_t i = 0; i < pm_nnested_labels; i++) {
			if (pm_nested_labels[i].dos_type != d->type)
				continue;
			const struct pm_label_at at = { start, size, slot, d->type };
			r = pm_nested_labels[i].read(c, &at);
			if (r < 0)
				return r;
		}
		if (c->err)
			return c->err;
	}
	return PM_FOUND;
}

/* Image files do not say their sector size. A DOS table is read at 512 and at 4096 bytes per
 * sector; the reading that fits the file and finds links, data, 1 MiB alignment and a table that
 * fills the image wins; a tie means 512. */
unsigned pm_dos_sector_size_hint(struct pm_disk *d)
{
	static const unsigned sizes[2] = { 512, 4096 };
	uint8_t mbr[512], buf[4096];
	struct dos_entry e[4];
	uint64_t max_end = 0;
	int score[2] = { 0, 0 };
	int used = 0;

	if (pm_disk_read512(d, 0, mbr) < 0 || !has_magic(mbr))
		return 512;
	for (int i = 0; i < 4; i++) {
		e[i] = entry(mbr, i);
		if ((e[i].boot != 0 && e[i].boot != 0x80) || e[i].type == TYPE_GPT_PMBR)
			return 512;
		if (e[i].size) {
			used++;
			if ((uint64_t)e[i].start + e[i].size > max_end)
				max_end = (uint64_t)e[i].start + e[i].size;
		}
	}
	if (!used || max_end * 4096 > d->size)
		return 512;

	for (int k = 0; k < 2; k++) {
		uint64_t ssz = sizes[k];

		for (int i = 0; i < 4; i++) {
			uint64_t off = e[i].start * ssz;
			size_t len;
			bool nonzero = false;

			if (!e[i].size)
				continue;
			if (off % (1 << 20) == 0)
				score[k] += 1;
			if (pm_dos_is_extended(e[i].type)) {
				if (pm_disk_read(d, off, buf, 512) == 0 && has_magic(buf))
					score[k] += 4;
				continue;
			}
			len = d->size - off < sizeof(buf) ? (size_t)(d->size - off) : sizeof(buf);
			if (off < d->size && pm_disk_read(d, off, buf, len) == 0)
				for (size_t j = 0; j < len && !nonzero; j++)
					nonzero = buf[j] != 0;
			if (nonzero)
				score[k] += 2;
		}
		if (d->size - max_end * ssz < (2u << 20))
			score[k] += 1;
	}
	return score[1] > score[0] ? 4096 : 512;
}
