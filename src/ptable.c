/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The probe driver: chooses the sector size, runs the readers in the kernel's order, then applies the
 * kernel's generic rules (block/partitions/core.c): a partition starting past the end of the device is
 * dropped, one running past it is cut to it, both with a warning. */
#include "ptable.h"
#include "table/reader.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PM_MAX_WARNINGS 64

const struct pm_reader pm_readers[] = {
	{ "gpt", pm_read_gpt, pm_gpt_sector_size_hint },
	{ "sgi", pm_read_sgi, NULL },
	{ "dos", pm_read_dos, pm_dos_sector_size_hint },
	{ "bsd", pm_read_bsd, NULL },
	{ "sun", pm_read_sun, NULL },
	{ "atari", pm_read_atari, NULL },
	{ "mac", pm_read_mac, NULL },
	{ "ps3", pm_read_ps3, NULL },
	{ "solaris", pm_read_solaris, NULL },
	{ "unixware", pm_read_unixware, NULL },
};
const size_t pm_nreaders = ARRAY_SIZE(pm_readers);

const struct pm_nested_label pm_nested_labels[] = {
	{ 0xa5, pm_label_bsd },      /* FreeBSD */
	{ 0xa6, pm_label_bsd },      /* OpenBSD */
	{ 0xa9, pm_label_bsd },      /* NetBSD */
	{ 0x81, pm_label_minix },
	{ 0x63, pm_label_unixware },
	{ 0x82, pm_label_solaris },  /* also Linux swap: the VTOC's sanity value tells */
	{ 0xbf, pm_label_solaris },
};
const size_t pm_nnested_labels = ARRAY_SIZE(pm_nested_labels);

struct pm_part *pm_put_label(struct pm_ctx *c, const struct pm_label_at *at, unsigned num, uint64_t start,
			     uint64_t size, const char *sublabel)
{
	struct pm_part *p;

	if (!at->origin)
		return pm_put(c, num, start, size, PM_PRIMARY);
	p = pm_put(c, c->next++, start, size, PM_NESTED);
	if (p) {
		p->container = at->origin;
		p->sublabel = sublabel;
	}
	return p;
}

int pm_read_whole(struct pm_ctx *c, pm_label_fn read)
{
	struct pm_label_at whole = { 0, pm_disk_sectors(c->disk), 0, 0 };
	int r = read(c, &whole);

	return c->err ? c->err : r;
}

const char *pm_table_type(size_t i)
{
	return i < pm_nreaders ? pm_readers[i].name : NULL;
}

bool pm_table_type_known(const char *name)
{
	for (size_t i = 0; i < pm_nreaders; i++)
		if (!strcmp(pm_readers[i].name, name))
			return true;
	return false;
}

static void vadd_warning(struct pm_table *t, const char *fmt, va_list ap)
{
	char *s = NULL;
	char **w;

	if (t->nwarnings >= PM_MAX_WARNINGS) {
		t->dropped_warnings++;
		return;
	}
	if (vasprintf(&s, fmt, ap) < 0)
		return;
	w = realloc(t->warnings, (t->nwarnings + 1) * sizeof(*w));
	if (!w) {
		free(s);
		return;
	}
	t->warnings = w;
	t->warnings[t->nwarnings++] = s;
}

void pm_warn(struct pm_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vadd_warning(c->t, fmt, ap);
	va_end(ap);
}

void pm_set_error(struct pm_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->t->error, sizeof(c->t->error), fmt, ap);
	va_end(ap);
}

struct pm_part *pm_put(struct pm_ctx *c, unsigned num, uint64_t start, uint64_t size, enum pm_kind kind)
{
	struct pm_table *t = c->t;
	struct pm_part *p = NULL;

	if (c->err)
		return NULL;
	if (num > PM_MAX_PARTS) {
		if (!c->capped)
			pm_warn(c, "more than %d partitions: partition %u and those after it are not listed (partmap's limit)",
				PM_MAX_PARTS, num);
		c->capped = true;
		memset(&c->scratch, 0, sizeof(c->scratch));
		return &c->scratch;
	}
	/* numbers nearly always grow; only search when this one does not */
	if (t->nparts && t->parts[t->nparts - 1].num >= num) {
		for (size_t i = 0; i < t->nparts; i++)
			if (t->parts[i].num == num) {
				p = &t->parts[i];
				break;
			}
	}
	if (!p) {
		if (pm_grow(&t->parts, t->nparts, &t->cap, sizeof(*t->parts)) < 0) {
			c->err = -ENOMEM;
			return NULL;
		}
		p = &t->parts[t->nparts++];
	}
	memset(p, 0, sizeof(*p));
	p->num = num;
	p->start = start;
	p->size = size;
	p->kind = kind;
	return p;
}

void pm_table_free(struct pm_table *t)
{
	for (size_t i = 0; i < t->nwarnings; i++)
		free(t->warnings[i]);
	free(t->warnings);
	free(t->parts);
	memset(t, 0, sizeof(*t));
}

static void table_reset(struct pm_table *t)
{
	t->nparts = 0;
	t->type = NULL;
	t->error[0] = 0;
}

const struct pm_part *pm_table_find(const struct pm_table *t, unsigned num)
{
	size_t lo = 0, hi = t->nparts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->parts[mid].num == num)
			return &t->parts[mid];
		if (t->parts[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_start(const void *a, const void *b)
{
	const struct pm_part *const *x = a, *const *y = b;
	return ((*x)->start > (*y)->start) - ((*x)->start < (*y)->start);
}

bool pm_table_overlaps(const struct pm_table *t)
{
	const struct pm_part **v;
	uint64_t end = 0;
	bool overlap = false;

	if (t->nparts < 2)
		return false;
	v = malloc(t->nparts * sizeof(*v));
	if (!v)
		return true; /* the safe answer */
	for (size_t i = 0; i < t->nparts; i++)
		v[i] = &t->parts[i];
	qsort(v, t->nparts, sizeof(*v), cmp_start);
	for (size_t i = 0; i < t->nparts && !overlap; i++) {
		if (i && v[i]->start < end)
			overlap = true;
		if (v[i]->start + v[i]->size > end)
			end = v[i]->start + v[i]->size;
	}
	free(v);
	return overlap;
}

static int cmp_num(const void *a, const void *b)
{
	const struct pm_part *x = a, *y = b;
	return (x->num > y->num) - (x->num < y->num);
}

/* The kernel's generic checks; keeps the list sorted by number. */
static void finish(struct pm_ctx *c)
{
	struct pm_table *t = c->t;
	uint64_t end = pm_disk_sectors(c->disk);
	size_t out = 0;
	bool sorted = true;

	for (size_t i = 1; i < t->nparts; i++)
		if (t->parts[i - 1].num > t->parts[i].num)
			sorted = false;
	if (!sorted)
		qsort(t->parts, t->nparts, sizeof(*t->parts), cmp_num);

	for (size_t i = 0; i < t->nparts; i++) {
		struct pm_part *p = &t->parts[i];

		if (p->size == 0)
			continue;
		if (p->start >= end) {
			pm_warn(c, "partition %u starts at sector %llu, past the end of the device (%llu sectors): dropped",
				p->num, (unsigned long long)p->start, (unsigned long long)end);
			continue;
		}
		if (p->size > end - p->start) {
			pm_warn(c, "partition %u (start %llu, size %llu) runs past the end of the device (%llu sectors): truncated to %llu sectors",
				p->num, (unsigned long long)p->start, (unsigned long long)p->size,
				(unsigned long long)end, (unsigned long long)(end - p->start));
			p->size = end - p->start;
			p->flags |= PM_PF_TRUNCATED;
		}
		t->parts[out++] = *p;
	}
	t->nparts = out;
}

static unsigned choose_sector_size(struct pm_disk *d, const struct pm_opts *o)
{
	if (o && o->sector_size)
		return o->sector_size;
	if (d->sector_size)
		return d->sector_size;
	/* an image file: the readers that can tell (a GPT header by where it is, a DOS table by how
	 * it fits), in registry order */
	for (size_t i = 0; i < pm_nreaders; i++) {
		unsigned ssz = pm_readers[i].sector_size_hint ? pm_readers[i].sector_size_hint(d) : 0;
		if (ssz)
			return ssz;
	}
	return 512;
}

int pm_probe(struct pm_disk *d, const struct pm_opts *opts, struct pm_table *t)
{
	static const struct pm_opts none;
	struct pm_ctx c = { .disk = d, .opts = opts ? opts : &none, .t = t };
	char damaged_type[16] = "";
	char damaged_msg[sizeof(t->error)] = "";
	bool known = false;

	memset(t, 0, sizeof(*t));
	c.ssz = choose_sector_size(d, c.opts);
	if (c.ssz < 512 || c.ssz > 65536 || (c.ssz & (c.ssz - 1))) {
		snprintf(t->error, sizeof(t->error), "invalid sector size %u", c.ssz);
		return -EINVAL;
	}
	t->sector_size = c.ssz;

	for (size_t i = 0; i < pm_nreaders; i++) {
		int r;

		if (c.opts->only && strcmp(c.opts->only, pm_readers[i].name))
			continue;
		known = true;
		table_reset(t);
		c.next = 5;
		c.err = 0;
		c.capped = false;
		r = pm_readers[i].read(&c);
		if (c.err)
			r = c.err;
		if (r == PM_FOUND) {
			t->type = pm_readers[i].name;
			finish(&c);
			return c.err ? c.err : PM_FOUND;
		}
		if (r == -EBADMSG) {
			/* remember the first damaged table; another reader may still find a good one */
			if (!damaged_type[0]) {
				pm_strlcpy(damaged_type, pm_readers[i].name, sizeof(damaged_type));
				memcpy(damaged_msg, t->error, sizeof(damaged_msg));
			}
			continue;
		}
		if (r < 0 && r != -ERANGE) {
			table_reset(t);
			if (!t->error[0])
				snprintf(t->error, sizeof(t->error), "%s reader: %s", pm_readers[i].name, strerror(-r));
			return r;
		}
	}
	table_reset(t);
	if (!known) {
		snprintf(t->error, sizeof(t->error), "unknown partition table type '%s'", c.opts->only);
		return -EINVAL;
	}
	if (damaged_type[0]) {
		for (size_t i = 0; i < pm_nreaders; i++)
			if (!strcmp(pm_readers[i].name, damaged_type))
				t->type = pm_readers[i].name;
		memcpy(t->error, damaged_msg, sizeof(t->error));
		return -EBADMSG;
	}
	return PM_NOTFOUND;
}

bool pm_guid_is_null(const uint8_t g[16])
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

void pm_guid_str(const uint8_t g[16], char *buf)
{
	snprintf(buf, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 get_le32(g), get_le16(g + 4), get_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13],
		 g[14], g[15]);
}
