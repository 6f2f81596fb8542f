/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BIOS RAID sets: reading disks with the format readers, grouping their records into (stacked) sets,
 * dmraid's member-count check and degraded rules, and the device-mapper tables dmraid builds. */
#include "set.h"

#include "../util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pm_raid_logf(char **log, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	va_start(ap, fmt);
	int l = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (l < 0)
		return -ENOMEM;
	size_t old = *log ? strlen(*log) : 0;
	char *n = realloc(*log, old + (size_t)l + 2);
	if (!n) {
		free(line);
		return -ENOMEM;
	}
	memcpy(n + old, line, (size_t)l);
	n[old + (size_t)l] = '\n';
	n[old + (size_t)l + 1] = 0;
	free(line);
	*log = n;
	return 0;
}

static bool in_list(const char *list, const char *name)
{
	size_t l = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t pl = e ? (size_t)(e - p) : strlen(p);
		if (pl == l && !strncmp(p, name, l))
			return true;
		p += pl + (e ? 1 : 0);
	}
	return false;
}

int pm_raid_scan(struct pm_raid_disk *disks, size_t n, const char *formats)
{
	if (formats && *formats) {
		/* every name must be a format */
		char tmp[256];
		pm_strlcpy(tmp, formats, sizeof(tmp));
		for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (!pm_raid_format_by_name(t))
				return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct pm_raid_disk *k = &disks[i];
		k->n = 0;
		k->fmt = NULL;
		k->err = 0;
		k->why[0] = 0;
		for (size_t f = 0; f < pm_raid_nall; f++) {
			const struct pm_raid_format *fmt = pm_raid_all[f];
			if (!fmt || (formats && *formats && !in_list(formats, fmt->name)))
				continue;
			char why[PM_RAID_WHY_LEN] = "";
			int r = fmt->read(k->d, k->serial ? k->serial : "", k->rd, PM_RAID_MAX_DEVS, why, sizeof(why));
			if (r == 0)
				continue;
			k->fmt = fmt;
			pm_strlcpy(k->why, why, sizeof(k->why));
			if (r < 0) {
				k->err = r;
				continue; /* a later format may still know the disk */
			}
			k->n = (size_t)r;
			k->err = 0;
			break;
		}
	}
	/* place the disks the metadata could not: the k-th of a group, in the order given, is member k */
	for (size_t i = 0; i < n; i++) {
		struct pm_raid_disk *k = &disks[i];
		if (!k->n || !k->rd[0].by_position || !k->fmt->read_pos)
			continue;
		int pos = 0;
		for (size_t j = 0; j < i; j++)
			if (disks[j].n && disks[j].fmt == k->fmt && disks[j].rd[0].by_position &&
			    !strcmp(disks[j].rd[0].group, k->rd[0].group))
				pos++;
		char why[PM_RAID_WHY_LEN] = "";
		int r = k->fmt->read_pos(k->d, k->serial ? k->serial : "", pos, k->rd, PM_RAID_MAX_DEVS, why,
					 sizeof(why));
		if (r < 0) {
			k->err = r;
			k->n = 0;
			pm_strlcpy(k->why, why, sizeof(k->why));
			continue;
		}
		k->n = (size_t)r;
		for (size_t x = 0; x < k->n; x++)
			k->rd[x].by_position = true;
		if (why[0])
			pm_strlcpy(k->why, why, sizeof(k->why));
	}
	return 0;
}

static void set_free(struct pm_raid_set *s)
{
	for (unsigned i = 0; i < s->nsub; i++)
		set_free(&s->sub[i]);
	free(s->sub);
	free(s->m);
	s->sub = NULL;
	s->m = NULL;
}

void pm_raid_sets_free(struct pm_raid_sets *s)
{
	for (size_t i = 0; i < s->n; i++)
		set_free(&s->v[i]);
	free(s->v);
	free(s->log);
	memset(s, 0, sizeof(*s));
}

const struct pm_raid_set *pm_raid_set_find(const struct pm_raid_sets *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

const char *pm_raid_set_type_name(const struct pm_raid_set *s)
{
	if (s->nsub) {
		enum pm_raid_type st = s->sub[0].type;
		if (s->type == PM_RT_RAID1 && st == PM_RT_RAID0)
			return "raid10";
		if (s->type == PM_RT_RAID0 && st == PM_RT_RAID1)
			return "raid01";
	}
	return pm_raid_type_name(s->type);
}

unsigned pm_raid_set_devs(const struct pm_raid_set *s)
{
	unsigned n = s->type == PM_RT_SPARE ? 0 : s->present;
	for (unsigned i = 0; i < s->nsub; i++)
		n += pm_raid_set_devs(&s->sub[i]);
	return n;
}

unsigned pm_raid_set_spares(const struct pm_raid_set *s)
{
	unsigned n = s->type == PM_RT_SPARE ? s->present : 0;
	for (unsigned i = 0; i < s->nsub; i++)
		n += pm_raid_set_spares(&s->sub[i]);
	return n;
}

static int leaf_place(struct pm_raid_set *s, const struct pm_raid_disk *k, const struct pm_raid_dev *rd, char **log)
{
	if (!s->m) {
		if (!rd->members || rd->members > PM_RAID_MAX_MEMBERS)
			return pm_raid_logf(log, "ERROR: %s: RAID set \"%s\" with %u members", rd->fmt->name,
					    s->name, rd->members);
		s->nmemb = rd->members;
		s->type = rd->type;
		s->stride = rd->stride;
		s->m = calloc(s->nmemb, sizeof(*s->m));
		if (!s->m)
			return -ENOMEM;
	}
	if (rd->index >= s->nmemb || s->m[rd->index].disk)
		return pm_raid_logf(log, "ERROR: %s: %s: member %u of RAID set \"%s\" given twice or out of range",
				    rd->fmt->name, k->path, rd->index, s->name);
	s->m[rd->index].disk = k;
	s->m[rd->index].rd = rd;
	s->present++;
	return 0;
}

static bool is_raid5(enum pm_raid_type t)
{
	return t >= PM_RT_RAID4 && t <= PM_RT_RAID5_RA;
}

static uint64_t min_member(const struct pm_raid_set *s)
{
	uint64_t m = UINT64_MAX;
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk && s->m[i].rd->sectors < m)
			m = s->m[i].rd->sectors;
	return m == UINT64_MAX ? 0 : m;
}

/* size of a set of n parts of smallest `small` each */
static uint64_t set_size(enum pm_raid_type t, uint64_t small, unsigned n, uint32_t stride, uint64_t sum)
{
	switch (t) {
	case PM_RT_LINEAR:
		return sum;
	case PM_RT_RAID0: /* one member: dmraid maps it linear, whole */
		return stride && n > 1 ? small / stride * stride * n : small * n;
	case PM_RT_RAID1:
		return small;
	case PM_RT_SPARE: /* dmraid shows a spare set's disk space (an isw spare: up to its metadata) */
		return sum;
	default:
		if (is_raid5(t))
			return n > 1 ? (stride ? small / stride * stride : small) * (n - 1) : 0;
		return 0;
	}
}

static void check_leaf(struct pm_raid_set *s, char **log)
{
	const char *on = "";
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk) {
			on = s->m[i].disk->path;
			break;
		}
	s->status = PM_RS_OK;
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk && s->m[i].rd->status != PM_RS_OK && s->status == PM_RS_OK)
			s->status = s->m[i].rd->status;
	s->ok = true;
	if (s->present != s->nmemb) {
		pm_raid_logf(log, "ERROR: %s: wrong # of devices in RAID set \"%s\" [%u/%u] on %s", s->fmt->name,
			     s->name, s->present, s->nmemb, on);
		unsigned missing = s->nmemb - s->present;
		if (s->type == PM_RT_RAID1 && s->present >= 1) {
			s->status = PM_RS_INCONSISTENT;
			s->degraded = true;
			pm_raid_logf(log, "ERROR: keeping degraded mirror set \"%s\"", s->name);
		} else if (is_raid5(s->type) && missing == 1) {
			s->status = PM_RS_INCONSISTENT;
			s->degraded = true;
			pm_raid_logf(log, "ERROR: keeping degraded %s set \"%s\"", pm_raid_type_name(s->type), s->name);
		} else {
			s->status = s->type == PM_RT_RAID1 || is_raid5(s->type) ? PM_RS_INCONSISTENT : PM_RS_BROKEN;
			s->ok = false;
			for (unsigned i = 0; i < s->nmemb; i++)
				if (!s->m[i].disk)
					pm_raid_logf(log, "ERROR: RAID set \"%s\": member %u of %u is missing", s->name,
						     i + 1, s->nmemb);
			pm_raid_logf(log, "ERROR: removing inconsistent RAID set \"%s\"", s->name);
		}
	}
	uint64_t sum = 0;
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk)
			sum += s->m[i].rd->sectors;
	s->sectors = s->ok ? set_size(s->type, min_member(s), s->nmemb, s->stride, sum) : 0;
	if (s->ok && s->type == PM_RT_RAID0 && s->nmemb > 1 && s->stride && min_member(s) < s->stride) {
		pm_raid_logf(log, "ERROR: RAID set \"%s\": members smaller than one stripe", s->name);
		s->ok = false;
		s->sectors = 0;
	}
}

static void check_super(struct pm_raid_set *s, char **log)
{
	unsigned good = 0;
	uint64_t small = UINT64_MAX, sum = 0;
	s->status = PM_RS_OK;
	for (unsigned i = 0; i < s->nsub; i++) {
		struct pm_raid_set *u = &s->sub[i];
		if (!u->m) { /* no disk of this subset at all */
			pm_raid_logf(log, "ERROR: RAID set \"%s\": subset %u of %u is missing", s->name, i + 1, s->nsub);
			continue;
		}
		check_leaf(u, log);
		if (!u->ok)
			continue;
		good++;
		if (u->sectors < small)
			small = u->sectors;
		sum += u->sectors;
		if (u->status != PM_RS_OK && s->status == PM_RS_OK)
			s->status = u->status;
	}
	s->ok = true;
	if (good != s->nsub) {
		if (s->type == PM_RT_RAID1 && good >= 1) {
			s->degraded = true;
			s->status = PM_RS_INCONSISTENT;
			pm_raid_logf(log, "ERROR: keeping degraded mirror set \"%s\"", s->name);
		} else {
			s->ok = false;
			s->status = PM_RS_BROKEN;
			pm_raid_logf(log, "ERROR: removing inconsistent RAID set \"%s\"", s->name);
		}
	}
	s->sectors = s->ok ? set_size(s->type, small, s->nsub, s->stride, sum) : 0;
}

int pm_raid_assemble(const struct pm_raid_disk *disks, size_t n, struct pm_raid_sets *out)
{
	size_t cap = 0;
	int r;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct pm_raid_disk *k = &disks[i];
		for (size_t j = 0; j < k->n; j++) {
			const struct pm_raid_dev *rd = &k->rd[j];
			if (rd->type == PM_RT_GROUP || (rd->type == PM_RT_SPARE && !rd->name_by_path) ||
			    rd->type == PM_RT_UNDEF)
				continue;
			char name[PM_RAID_NAME_MAX];
			if (snprintf(name, sizeof(name), "%s%s", rd->set, rd->name_by_path && k->path ? k->path : "") >=
			    (int)sizeof(name))
				continue;
			/* Debian's dmraid keeps the path as it is: isw_<family>_/dev/sde (the VM's judge) */
			struct pm_raid_set *s = NULL;
			for (size_t x = 0; x < out->n; x++)
				if (!strcmp(out->v[x].name, name))
					s = &out->v[x];
			if (!s) {
				if ((r = pm_grow(&out->v, out->n + 1, &cap, sizeof(*out->v))) < 0)
					goto fail;
				s = &out->v[out->n++];
				memset(s, 0, sizeof(*s));
				pm_strlcpy(s->name, name, sizeof(s->name));
				pm_strlcpy(s->group, rd->group, sizeof(s->group));
				s->fmt = rd->fmt;
				if (rd->subset[0]) {
					if (!rd->subsets || rd->subsets > PM_RAID_MAX_MEMBERS) {
						out->n--;
						pm_raid_logf(&out->log, "ERROR: %s: RAID set \"%s\" with %u subsets",
							     rd->fmt->name, rd->set, rd->subsets);
						continue;
					}
					s->type = rd->super_type;
					s->stride = rd->super_stride;
					s->nsub = rd->subsets;
					s->sub = calloc(s->nsub, sizeof(*s->sub));
					if (!s->sub) {
						out->n--;
						r = -ENOMEM;
						goto fail;
					}
					for (unsigned u = 0; u < s->nsub; u++) {
						if (snprintf(s->sub[u].name, sizeof(s->sub[u].name), "%s-%u", s->name, u) >=
						    (int)sizeof(s->sub[u].name))
							s->sub[u].name[0] = 0;
						s->sub[u].fmt = rd->fmt;
						s->sub[u].type = rd->type;
					}
				}
			}
			if (rd->subset[0]) {
				if (!s->nsub || rd->subset_index >= s->nsub) {
					pm_raid_logf(&out->log, "ERROR: %s: %s: subset %u of RAID set \"%s\" out of range",
						     rd->fmt->name, k->path, rd->subset_index, s->name);
					continue;
				}
				struct pm_raid_set *u = &s->sub[rd->subset_index];
				pm_strlcpy(u->name, rd->subset, sizeof(u->name));
				r = leaf_place(u, k, rd, &out->log);
			} else {
				if (s->nsub) {
					pm_raid_logf(&out->log, "ERROR: %s: %s: RAID set \"%s\" both stacked and not",
						     rd->fmt->name, k->path, s->name);
					continue;
				}
				r = leaf_place(s, k, rd, &out->log);
			}
			if (r < 0)
				goto fail;
		}
	}
	for (size_t x = 0; x < out->n; x++) {
		struct pm_raid_set *s = &out->v[x];
		if (s->nsub)
			check_super(s, &out->log);
		else if (s->m)
			check_leaf(s, &out->log);
	}
	return 0;
fail:
	pm_raid_sets_free(out);
	return r;
}

/* ---- tables ---- */

uint32_t pm_raid_region(uint64_t sectors)
{
	uint64_t want = sectors / 1024;
	if (want > 262144)
		want = 262144;
	if (want < 128)
		want = 128;
	uint64_t p = 1;
	while (p < want)
		p <<= 1;
	return (uint32_t)(p / 2);
}

struct tbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void tb_add(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_add(struct tbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int l = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (l < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)l < room) {
			b->len += (size_t)l;
			return;
		}
		size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)l;
		char *ns = realloc(b->s, ncap);
		if (!ns) {
			b->err = -ENOMEM;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
}

/* The device and offset of part i of a set: a member disk, or a subset's map. */
static void part_dev(const struct pm_raid_set *s, unsigned i, struct tbuf *b)
{
	if (s->nsub)
		tb_add(b, " /dev/mapper/%s 0", s->sub[i].name);
	else
		tb_add(b, " %s %llu", s->m[i].disk->path, (unsigned long long)s->m[i].rd->offset);
}

static bool part_ok(const struct pm_raid_set *s, unsigned i)
{
	return s->nsub ? s->sub[i].ok : s->m[i].disk != NULL;
}

static uint64_t part_sectors(const struct pm_raid_set *s, unsigned i)
{
	return s->nsub ? s->sub[i].sectors : s->m[i].rd->sectors;
}

static int one_table(const struct pm_raid_set *s, struct pm_raid_map *map, char **log)
{
	struct tbuf b = { 0 };
	unsigned n = s->nsub ? s->nsub : s->nmemb;
	uint64_t small = UINT64_MAX;
	unsigned good = 0;
	for (unsigned i = 0; i < n; i++)
		if (part_ok(s, i)) {
			good++;
			if (part_sectors(s, i) < small)
				small = part_sectors(s, i);
		}
	if (!good)
		return -ENODEV;
	pm_strlcpy(map->name, s->name, sizeof(map->name));
	switch (s->type) {
	case PM_RT_LINEAR: {
		uint64_t start = 0;
		for (unsigned i = 0; i < n; i++) {
			tb_add(&b, "%llu %llu linear", (unsigned long long)start, (unsigned long long)part_sectors(s, i));
			part_dev(s, i, &b);
			tb_add(&b, "\n");
			start += part_sectors(s, i);
		}
		break;
	}
	case PM_RT_RAID0:
		if (n == 1) {
			tb_add(&b, "0 %llu linear", (unsigned long long)small);
			part_dev(s, 0, &b);
		} else {
			tb_add(&b, "0 %llu striped %u %u", (unsigned long long)s->sectors, n, s->stride);
			for (unsigned i = 0; i < n; i++)
				part_dev(s, i, &b);
		}
		tb_add(&b, "\n");
		break;
	case PM_RT_RAID1:
		if (good == 1) {
			for (unsigned i = 0; i < n; i++)
				if (part_ok(s, i)) {
					tb_add(&b, "0 %llu linear", (unsigned long long)small);
					part_dev(s, i, &b);
					tb_add(&b, "\n");
				}
			pm_raid_logf(log, "ERROR: creating degraded mirror mapping for \"%s\"", s->name);
			break;
		}
		tb_add(&b, "0 %llu mirror core 2 %u %s %u", (unsigned long long)small, pm_raid_region(small),
		       s->status == PM_RS_OK ? "nosync" : "sync", good);
		for (unsigned i = 0; i < n; i++)
			if (part_ok(s, i))
				part_dev(s, i, &b);
		tb_add(&b, " 1 handle_errors\n");
		break;
	case PM_RT_RAID4:
	case PM_RT_RAID5_LS:
	case PM_RT_RAID5_RS:
	case PM_RT_RAID5_LA:
	case PM_RT_RAID5_RA: {
		/* Debian's dmraid: mainline dm-raid, no metadata devices; the members' common data offset
		 * (dm-raid has one for all) as data_offset when it is not 0 */
		uint64_t off = 0;
		bool same = true;
		for (unsigned i = 0; i < n; i++)
			if (part_ok(s, i) && !s->nsub) {
				if (!off)
					off = s->m[i].rd->offset;
				else if (off != s->m[i].rd->offset)
					same = false;
			}
		if (!same || s->nsub)
			return -EOPNOTSUPP;
		int rebuild = -1;
		for (unsigned i = 0; i < n; i++)
			if (!part_ok(s, i))
				rebuild = (int)i;
		unsigned params = 4 + (rebuild >= 0 ? 2 : 0) + (off ? 2 : 0);
		tb_add(&b, "0 %llu raid %s %u %u %s", (unsigned long long)s->sectors,
		       s->type == PM_RT_RAID4 ? "raid4" : pm_raid_type_name(s->type), params, s->stride,
		       s->status == PM_RS_OK ? "nosync" : "sync");
		if (rebuild >= 0)
			tb_add(&b, " rebuild %d", rebuild);
		tb_add(&b, " region_size %u", pm_raid_region(small));
		if (off)
			tb_add(&b, " data_offset %llu", (unsigned long long)off);
		tb_add(&b, " %u", n);
		for (unsigned i = 0; i < n; i++)
			if (part_ok(s, i))
				tb_add(&b, " - %s", s->m[i].disk->path);
			else
				tb_add(&b, " - -");
		tb_add(&b, "\n");
		break;
	}
	default:
		free(b.s);
		pm_raid_logf(log, "ERROR: Unsupported RAID type %s for \"%s\"", pm_raid_type_name(s->type), s->name);
		return -EOPNOTSUPP;
	}
	if (b.err) {
		free(b.s);
		return b.err;
	}
	map->table = b.s;
	return 0;
}

void pm_raid_maps_free(struct pm_raid_map *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].table);
	free(m);
}

int pm_raid_tables(const struct pm_raid_set *s, struct pm_raid_map **out, size_t *nout, char **log)
{
	size_t n = 0, cap = 0;
	struct pm_raid_map *v = NULL;
	int r = 0;
	if (!s->ok)
		return -EINVAL;
	if (s->type == PM_RT_SPARE)
		return -EOPNOTSUPP; /* dmraid: "spare set ... cannot be activated" */
	for (unsigned i = 0; i <= s->nsub; i++) {
		const struct pm_raid_set *x = i < s->nsub ? &s->sub[i] : s;
		if (i < s->nsub && !x->ok)
			continue;
		if ((r = pm_grow(&v, n + 1, &cap, sizeof(*v))) < 0)
			break;
		memset(&v[n], 0, sizeof(v[n]));
		if ((r = one_table(x, &v[n], log)) < 0)
			break;
		n++;
	}
	if (r < 0) {
		pm_raid_maps_free(v, n);
		return r;
	}
	*out = v;
	*nout = n;
	return 0;
}
