/* Unit tests of the BIOS RAID format readers (asr hpt37x hpt45x jmicron lsi nvidia pdc sil via) on
 * member disks synthesised in memory from the metadata facts (raidsyn.c): every level each format has,
 * member order, odd chunk sizes, each checksum rule and hostile fields. The layouts themselves are
 * judged by blkid in tests/cmd/raidfmt.t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raid/raid.h"
#include "raidsyn.h"

#define N 8192ull /* member disk sectors */
#define M 4096ull /* data per member */
#define ID 0x12345678u
#define NOSUB ""

struct exp {
	const char *set, *subset;
	enum pm_raid_type type, super;
	uint64_t offset, sectors;
	unsigned stride, super_stride, index, members, subset_index, subsets;
	uint64_t meta_offset, meta_len;
	enum pm_raid_status status;
	bool hpt; /* hpt37x: data from sector 10 on all but the first disk */
};

static uint8_t *mk(const struct rs_spec *s, unsigned i)
{
	uint8_t *img = calloc(1, s->disk_sectors * 512);
	assert_non_null(img);
	assert_int_equal(rs_write(s, i, img), 0);
	return img;
}

static char why[256];

static int rd(const struct pm_raid_format *f, const uint8_t *img, uint64_t sectors, struct pm_raid_dev *out,
	      size_t max)
{
	struct pm_disk d;
	pm_disk_from_mem(&d, img, sectors * 512, 512);
	why[0] = 0;
	int r = f->read(&d, "", out, max, why, sizeof(why));
	pm_disk_close(&d);
	if (r == -EBADMSG)
		assert_true(why[0] && !strchr(why, '\n')); /* a one-line reason */
	return r;
}

static void check(const struct pm_raid_dev *r, const struct exp *e, const struct pm_raid_format *f)
{
	assert_ptr_equal(r->fmt, f);
	assert_string_equal(r->set, e->set);
	assert_string_equal(r->subset, e->subset);
	assert_string_equal(r->group, "");
	assert_int_equal(r->type, e->type);
	assert_int_equal(r->super_type, e->super);
	assert_int_equal(r->status, e->status ? e->status : PM_RS_OK);
	assert_int_equal(r->offset, e->offset);
	assert_int_equal(r->sectors, e->sectors);
	assert_int_equal(r->stride, e->stride);
	assert_int_equal(r->super_stride, e->super_stride);
	assert_int_equal(r->index, e->index);
	assert_int_equal(r->members, e->members);
	assert_int_equal(r->subset_index, e->subset_index);
	assert_int_equal(r->subsets, e->subsets);
	assert_int_equal(r->meta_offset, e->meta_offset);
	assert_int_equal(r->meta_len, e->meta_len);
	assert_true(r->listed);
}

/* read member i of s with f and check it against e */
static void one(const struct pm_raid_format *f, const struct rs_spec *s, unsigned i, const struct exp *e)
{
	uint8_t *img = mk(s, i);
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	int r = rd(f, img, s->disk_sectors, out, PM_RAID_MAX_DEVS);
	if (r != 1)
		fail_msg("%s member %u: read gave %d (%s)", s->fmt, i, r, why);
	check(&out[0], e, f);
	/* no room for the record */
	assert_int_equal(rd(f, img, s->disk_sectors, out, 0), -ENOSPC);
	free(img);
}

/* every member i of a flat set of `disks` at `level`: index i, the rest as given (e: set, offset and
 * metadata place; e->hpt: data from sector 10 on every disk but the first, whose length it shortens) */
static void flat(const struct pm_raid_format *f, struct rs_spec *s, enum rs_level level, unsigned disks,
		 unsigned chunk, const struct exp *e, enum pm_raid_type type, unsigned members, unsigned stride,
		 uint64_t sectors)
{
	s->level = level, s->disks = disks, s->chunk = chunk;
	for (unsigned i = 0; i < disks; i++) {
		struct exp x = *e;
		x.type = type, x.index = i, x.members = members, x.stride = stride, x.sectors = sectors;
		if (e->hpt)
			x.offset = i ? 10 : 0, x.sectors -= x.offset;
		one(f, s, i, &x);
	}
}

/* every member i of a stacked set of two halves of disks/2: subset i / (disks/2), named "<set>-N" (or
 * sub[N]), index i % (disks/2), the chunk for both levels */
static void stacked(const struct pm_raid_format *f, struct rs_spec *s, enum rs_level level, unsigned disks,
		    unsigned chunk, const struct exp *e, enum pm_raid_type type, enum pm_raid_type super,
		    uint64_t sectors, const char *const *sub)
{
	unsigned h = disks / 2;
	s->level = level, s->disks = disks, s->chunk = chunk;
	for (unsigned i = 0; i < disks; i++) {
		char name[PM_RAID_NAME_MAX];
		snprintf(name, sizeof(name), "%s-%u", e->set, i / h);
		struct exp x = *e;
		x.subset = sub ? sub[i / h] : name, x.type = type, x.super = super, x.subset_index = i / h;
		x.subsets = 2, x.index = i % h, x.members = h, x.stride = x.super_stride = chunk, x.sectors = sectors;
		if (e->hpt) /* data from sector 10 but on disk 0: a RAID01 numbers its disks across the array */
			x.offset = (level == RS_RAID01 ? i : x.index) ? 10 : 0, x.sectors -= x.offset;
		one(f, s, i, &x);
	}
}

/* an image the reader must reject: r == -EBADMSG with a reason */
static void bad(const struct pm_raid_format *f, const uint8_t *img, uint64_t sectors, const char *what)
{
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	int r = rd(f, img, sectors, out, PM_RAID_MAX_DEVS);
	if (r != -EBADMSG)
		fail_msg("%s: %s: read gave %d, not -EBADMSG", f->name, what, r);
}

static void none(const struct pm_raid_format *f, const uint8_t *img, uint64_t sectors)
{
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	assert_int_equal(rd(f, img, sectors, out, PM_RAID_MAX_DEVS), 0);
}

/* every format: a blank disk is not its member, nor is a tiny one, nor another format's member */
static void test_blank(void **state)
{
	(void)state;
	uint8_t *z = calloc(1, N * 512);
	assert_non_null(z);
	const struct pm_raid_format *f9[] = { &pm_raid_asr, &pm_raid_hpt37x, &pm_raid_hpt45x, &pm_raid_jmicron,
					      &pm_raid_lsi, &pm_raid_nvidia, &pm_raid_pdc, &pm_raid_sil, &pm_raid_via };
	for (size_t k = 0; k < 9; k++) {
		none(f9[k], z, N);
		for (uint64_t s = 0; s < 12; s++)
			none(f9[k], z, s);
		assert_ptr_equal(pm_raid_format_by_name(f9[k]->name), f9[k]);
	}
	/* each format's member is read by that format alone */
	for (size_t k = 0; k < 9; k++) {
		struct rs_spec s = { .fmt = f9[k]->name, .level = RS_RAID1, .disks = 2, .chunk = 16, .disk_sectors = N,
				     .member_sectors = M, .id = ID };
		uint8_t *img = mk(&s, 1);
		for (size_t j = 0; j < 9; j++) {
			struct pm_raid_dev out[PM_RAID_MAX_DEVS];
			int r = rd(f9[j], img, N, out, PM_RAID_MAX_DEVS);
			if ((j == k) != (r == 1))
				fail_msg("%s member read by %s: %d", f9[k]->name, f9[j]->name, r);
		}
		free(img);
	}
	free(z);
}

/* dmraid -l: names, descriptions and capabilities, verbatim */
static void test_list(void **state)
{
	(void)state;
	static const char *const l[][3] = {
		{ "asr", "Adaptec HostRAID ASR", "0,1,10" }, { "hpt37x", "Highpoint HPT37X", "S,0,1,10,01" },
		{ "hpt45x", "Highpoint HPT45X", "S,0,1,10" }, { "jmicron", "JMicron ATARAID", "S,0,1" },
		{ "lsi", "LSI Logic MegaRAID", "0,1,10" }, { "nvidia", "NVidia RAID", "S,0,1,10,5" },
		{ "pdc", "Promise FastTrack", "S,0,1,10" }, { "sil", "Silicon Image(tm) Medley(tm)", "0,1,10" },
		{ "via", "VIA Software RAID", "S,0,1,10" },
	};
	for (size_t k = 0; k < sizeof(l) / sizeof(l[0]); k++) {
		const struct pm_raid_format *f = pm_raid_format_by_name(l[k][0]);
		assert_non_null(f);
		assert_string_equal(f->descr, l[k][1]);
		assert_string_equal(f->caps, l[k][2]);
	}
}

/* ---- nvidia ---- */
static void test_nvidia(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_nvidia;
	struct rs_spec s = { .fmt = "nvidia", .chunk = 32, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "nvidia_bcdefghi", .subset = NOSUB, .sectors = N - 2, .meta_offset = (N - 2) * 512,
			 .meta_len = 120 };
	flat(f, &s, RS_SPAN, 3, 32, &e, PM_RT_LINEAR, 3, 32, N - 2);
	flat(f, &s, RS_RAID0, 3, 32, &e, PM_RT_RAID0, 3, 32, N - 2);
	flat(f, &s, RS_RAID1, 2, 128, &e, PM_RT_RAID1, 2, 128, N - 2);
	flat(f, &s, RS_RAID5, 3, 64, &e, PM_RT_RAID5_LS, 3, 64, N - 2);
	/* RAID1+0: a mirror over two stripes; units 0,1 in -0 and 2,3 in -1 */
	stacked(f, &s, RS_RAID10, 4, 16, &e, PM_RT_RAID0, PM_RT_RAID1, N - 2, NULL);

	/* checksum: one changed byte; size field; a unit past the stripe is a spare; the error flag */
	s.level = RS_RAID0, s.disks = 2, s.chunk = 32;
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	uint8_t *img = mk(&s, 1);
	uint8_t *m = img + rs_meta("nvidia", N);
	m[0x20] ^= 1;
	bad(f, img, N, "checksum");
	m[0x20] ^= 1;
	m[8] = 31;
	rs_fix("nvidia", img, N);
	bad(f, img, N, "size 31");
	m[8] = 30;
	m[0x34 + 0x15] = 0; /* stripe width 0: every unit is past it, a spare (dmraid's rule) */
	m[0x34 + 0x18] = 0x80, m[0x34 + 0x19] = 0x81; /* even in RAID1+0, where the width divides */
	rs_fix("nvidia", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_SPARE);
	assert_string_equal(out[0].subset, "");
	m[0x34 + 0x18] = 0x80, m[0x34 + 0x19] = 0;
	m[0x34 + 0x15] = 3; /* width 3, 2 volumes: the unit is in the set */
	rs_fix("nvidia", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_RAID0);
	m[0x34 + 0x15] = 1; /* width 1 of 2 volumes: unit 1 is a spare */
	rs_fix("nvidia", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_SPARE);
	m[0x34 + 0x15] = 2;
	m[0x34 + 0x40] = 2;
	rs_fix("nvidia", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_BROKEN);
	m[0x34 + 0x40] = 0;
	m[0x34 + 0x14] = 3; /* rebuilding: still "ok" (dmraid's state table starts with code 0) */
	m[0x34 + 0x18] = 0x8A; /* RAID10 code dmraid does not map */
	rs_fix("nvidia", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_UNDEF);
	assert_int_equal(out[0].status, PM_RS_OK);
	/* the disk cut before its metadata: nothing found, nothing read outside */
	none(f, img, N - 1);
	none(f, img, 2);
	free(img);
}

/* ---- via ---- */
static void test_via(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_via;
	struct rs_spec s = { .fmt = "via", .chunk = 32, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "via_dafebjijg", .subset = NOSUB, .sectors = N - 1, .meta_offset = (N - 1) * 512,
			 .meta_len = 51, .stride = 32 };
	flat(f, &s, RS_SPAN, 3, 32, &e, PM_RT_LINEAR, 3, 32, N - 1);
	flat(f, &s, RS_RAID0, 5, 8, &e, PM_RT_RAID0, 5, 8, N - 1); /* 8 << 0 */
	flat(f, &s, RS_RAID1, 2, 128, &e, PM_RT_RAID1, 2, 128, N - 1);
	/* RAID 0+1 (type 9): stripes under a mirror, the mirror bit names the subset */
	stacked(f, &s, RS_RAID10, 4, 64, &e, PM_RT_RAID0, PM_RT_RAID1, N - 1, NULL);
	s.level = RS_RAID0, s.disks = 2, s.chunk = 16;
	uint8_t *img = mk(&s, 1);
	uint8_t *m = img + rs_meta("via", N);
	m[0x20] ^= 0x40;
	bad(f, img, N, "checksum");
	m[0x20] ^= 0x40;
	m[50] ^= 1;
	bad(f, img, N, "checksum byte");
	m[50] ^= 1;
	struct pm_raid_dev out[4];
	m[4] |= 0x80; /* tolerance: broken */
	rs_fix("via", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_BROKEN);
	m[4] &= 0x7F;
	m[3] &= (uint8_t)~4; /* not in a disk array: status undefined */
	rs_fix("via", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_UNDEF);
	m[3] |= 4;
	m[5] = (uint8_t)((m[5] & 0xF0) | 1); /* index 1 of a 1-disk stripe: left to the set check */
	rs_fix("via", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].index, 1);
	assert_int_equal(out[0].members, 1);
	none(f, img, N - 1);
	free(img);
}

/* ---- jmicron ---- */
static void test_jmicron(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_jmicron;
	struct rs_spec s = { .fmt = "jmicron", .chunk = 16, .disk_sectors = N, .member_sectors = M, .id = ID,
			     .name = "Data 1" };
	struct exp e = { .set = "jmicron_Data 1", .subset = NOSUB, .sectors = M, .meta_offset = (N - 1) * 512,
			 .meta_len = 128, .stride = 16 };
	flat(f, &s, RS_SPAN, 3, 16, &e, PM_RT_LINEAR, 3, 16, M);
	s.data_offset = 3, e.offset = 3;
	flat(f, &s, RS_RAID0, 8, 256, &e, PM_RT_RAID0, 8, 256, M);
	/* a member of 70000 sectors: range * 65536 + range2 */
	struct exp big = e;
	s.data_offset = 0, s.member_sectors = 70000, s.name = "M", s.disk_sectors = 80000;
	big.set = "jmicron_M", big.offset = 0, big.meta_offset = (80000 - 1) * 512;
	flat(f, &s, RS_RAID1, 2, 4, &big, PM_RT_RAID1, 2, 4, 70000);
	s.disk_sectors = N, s.member_sectors = M, s.name = "0123456789abcdef"; /* 16 bytes, no NUL */
	e.set = "jmicron_0123456789abcdef", e.offset = 0;
	stacked(f, &s, RS_RAID01, 4, 32, &e, PM_RT_RAID1, PM_RT_RAID0, M, NULL);
	s.level = RS_RAID0, s.disks = 2, s.name = NULL;
	uint8_t *img = mk(&s, 0);
	uint8_t *m = img + rs_meta("jmicron", N);
	struct pm_raid_dev out[4];
	m[0x7F] ^= 1;
	bad(f, img, N, "checksum");
	m[0x7F] ^= 1;
	m[4] = (uint8_t)(m[4] + 1); /* a sum of 1 is accepted too */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_string_equal(out[0].set, "jmicron_Vol0");
	m[4] = (uint8_t)(m[4] + 1);
	bad(f, img, N, "sum 2");
	m[0x14] = 0xFF, m[0x15] = 0xFF; /* base past the disk */
	rs_fix("jmicron", img, N);
	bad(f, img, N, "segment past the disk");
	m[0x14] = m[0x15] = 0;
	memset(m + 0x40, 0, 32); /* this disk in no member slot */
	rs_fix("jmicron", img, N);
	bad(f, img, N, "not a member");
	none(f, img, N - 1);
	free(img);
}

/* ---- lsi ---- */
static void test_lsi(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_lsi;
	struct rs_spec s = { .fmt = "lsi", .chunk = 64, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "lsi_dafebjijga", .subset = NOSUB, .sectors = N - 1, .meta_offset = (N - 1) * 512,
			 .meta_len = 512, .stride = 64, .members = 2 };
	flat(f, &s, RS_RAID0, 2, 64, &e, PM_RT_RAID0, 2, 64, N - 1);
	flat(f, &s, RS_RAID1, 2, 24, &e, PM_RT_RAID1, 2, 24, N - 1); /* the stride is a plain number here */
	stacked(f, &s, RS_RAID10, 4, 128, &e, PM_RT_RAID0, PM_RT_RAID1, N - 1, NULL);
	uint8_t *img = mk(&s, 3);
	uint8_t *m = img + rs_meta("lsi", N);
	struct pm_raid_dev out[4];
	m[0x20 + 16 * 3 + 8] = 1; /* offline: listed, not used */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_BROKEN);
	m[0x1F1] = 2; /* slot 2*2+3: past the table */
	bad(f, img, N, "slot past the table");
	m[0x1F1] = 0;
	m[0x20 + 16 * 3] = 0x33; /* RAID10 stripe 3 */
	bad(f, img, N, "stripe 3");
	none(f, img, N - 1);
	free(img);
}

/* ---- hpt45x ---- */
static void test_hpt45x(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_hpt45x;
	struct rs_spec s = { .fmt = "hpt45x", .chunk = 64, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "hpt45x_dafebjijg", .subset = NOSUB, .meta_offset = (N - 11) * 512, .meta_len = 48,
			 .stride = 64 };
	flat(f, &s, RS_SPAN, 3, 64, &e, PM_RT_LINEAR, 3, 64, N - 11);
	flat(f, &s, RS_RAID0, 3, 8, &e, PM_RT_RAID0, 3, 8, M);
	flat(f, &s, RS_RAID1, 2, 1, &e, PM_RT_RAID1, 2, 0, M); /* shift 0: no stride */
	stacked(f, &s, RS_RAID10, 6, 256, &e, PM_RT_RAID0, PM_RT_RAID1, M, NULL);
	s.level = RS_SPARE, s.disks = 2, s.chunk = 16;
	struct exp sp = { .set = "hpt45x_SPARE", .subset = NOSUB, .type = PM_RT_SPARE, .sectors = N - 11,
			  .meta_offset = (N - 11) * 512, .meta_len = 48, .stride = 16, .index = 1, .members = 2 };
	one(f, &s, 1, &sp);

	s.level = RS_RAID0, s.disks = 2;
	uint8_t *img = mk(&s, 1);
	uint8_t *m = img + rs_meta("hpt45x", N);
	struct pm_raid_dev out[4];
	m[0] = 0xFD; /* the "bad" magic */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_BROKEN);
	m[0x10] = 6, m[0x20] = 6, m[0x22] = 1; /* a mirror flagged as half of a RAID10: dmraid keeps the suffix, stacks nothing */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_string_equal(out[0].set, "hpt45x_dafebjijg-1");
	assert_string_equal(out[0].subset, "");
	assert_int_equal(out[0].super_type, PM_RT_UNDEF);
	m[0x10] = 5, m[0x20] = m[0x22] = 0;
	m[0x12] = 8;
	bad(f, img, N, "disk number 8");
	m[0x12] = 1;
	m[0xF] = 0x7F; /* total sectors far past the disk */
	bad(f, img, N, "size past the disk");
	m[0xF] = 0;
	m[0x13] = 40;
	bad(f, img, N, "shift 40");
	none(f, img, N - 1);
	free(img);
}

/* ---- hpt37x ---- */
static void test_hpt37x(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_hpt37x;
	struct rs_spec s = { .fmt = "hpt37x", .chunk = 32, .disk_sectors = N, .member_sectors = M, .id = ID };
	/* named after magic_1 (the array) when it is set */
	struct exp e = { .set = "hpt37x_dafdjifhd", .subset = NOSUB, .meta_offset = 4608, .meta_len = 512,
			 .hpt = true };
	flat(f, &s, RS_SPAN, 3, 32, &e, PM_RT_LINEAR, 3, 32, N);
	flat(f, &s, RS_RAID0, 3, 32, &e, PM_RT_RAID0, 3, 32, M);
	flat(f, &s, RS_RAID1, 2, 32, &e, PM_RT_RAID1, 2, 32, M);
	/* type 2: stripes under a mirror; type 7: mirrors under a stripe */
	stacked(f, &s, RS_RAID10, 4, 512, &e, PM_RT_RAID0, PM_RT_RAID1, M, NULL);
	stacked(f, &s, RS_RAID01, 4, 16, &e, PM_RT_RAID1, PM_RT_RAID0, M, NULL);
	s.level = RS_SPARE, s.disks = 1;
	struct exp sp = { .set = "hpt37x_SPARE", .subset = NOSUB, .type = PM_RT_SPARE, .sectors = N,
			  .meta_offset = 4608, .meta_len = 512, .stride = 16, .members = 1 };
	one(f, &s, 0, &sp);

	s.level = RS_RAID0, s.disks = 2, s.chunk = 32;
	uint8_t *img = mk(&s, 1);
	uint8_t *m = img + rs_meta("hpt37x", N);
	struct pm_raid_dev out[4];
	m[0x28] = m[0x29] = m[0x2A] = m[0x2B] = 0; /* no array id: named after the set id */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_string_equal(out[0].set, "hpt37x_dafebjijg");
	m[0x32] = 1, m[0x30] = 1; /* RAID1 metadata saying 1 disk on disk 1 (seen by dmraid): still read */
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_RAID1);
	assert_int_equal(out[0].index, 1);
	assert_int_equal(out[0].members, 1);
	m[0x32] = 0, m[0x30] = 2;
	m[0x20] = 0xFD;
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].status, PM_RS_BROKEN);
	m[0x34] = 5, m[0x35] = m[0x36] = m[0x37] = 0; /* 2 sectors each: less than the offset of 10 */
	bad(f, img, N, "size below the data offset");
	m[0x37] = 0x7F;
	bad(f, img, N, "size past the disk");
	m[0x37] = 0;
	m[0x33] = 9;
	bad(f, img, N, "disk number 9");
	none(f, img, 9); /* the disk ends before sector 9 */
	free(img);
}

/* ---- sil ---- */
static void test_sil(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_sil;
	const uint64_t cooked = N - 3 * 512 - 2; /* dmraid's size for span, RAID5 and spares (N even) */
	struct rs_spec s = { .fmt = "sil", .chunk = 32, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "sil_ajadbebfcgfd", .subset = NOSUB, .meta_offset = (N - 1) * 512, .meta_len = 512,
			 .stride = 32 };
	flat(f, &s, RS_SPAN, 2, 32, &e, PM_RT_LINEAR, 0, 32, cooked);
	flat(f, &s, RS_RAID0, 3, 24, &e, PM_RT_RAID0, 3, 24, M);
	flat(f, &s, RS_RAID1, 2, 24, &e, PM_RT_RAID1, 2, 24, M);
	flat(f, &s, RS_RAID5, 3, 24, &e, PM_RT_RAID5_LS, 0, 24, cooked);
	stacked(f, &s, RS_RAID10, 4, 128, &e, PM_RT_RAID0, PM_RT_RAID1, M, NULL);
	s.level = RS_SPARE, s.disks = 1;
	struct exp sp = e;
	sp.type = PM_RT_SPARE, sp.index = 0, sp.members = 0, sp.sectors = cooked, sp.stride = 128;
	one(f, &s, 0, &sp);

	/* four copies: the first valid one is used */
	s.level = RS_RAID0, s.disks = 2, s.chunk = 16;
	uint8_t *img = mk(&s, 1);
	struct pm_raid_dev out[4];
	uint8_t *c[4];
	for (unsigned k = 0; k < 4; k++)
		c[k] = img + (N - 1 - 512 * k) * 512;
	c[0][0x20] ^= 1; /* copy 1's checksum wrong */
	c[1][0x63] = 0; /* copy 2 no magic */
	c[2][0x116] = 1; /* copy 3: disk 1 as well, but... */
	c[2][0x112] = 48; /* ...another stride, checksum left wrong */
	c[3][0x112] = 40; /* copy 4: valid, stride 40 */
	c[3][0x13E] = 0;
	{
		unsigned sum = 0;
		for (unsigned k = 0; k < 0x13E / 2; k++)
			sum += (unsigned)(c[3][2 * k] | c[3][2 * k + 1] << 8);
		c[3][0x13E] = (uint8_t)(0x10000 - (sum & 0xFFFF));
		c[3][0x13F] = (uint8_t)((0x10000 - (sum & 0xFFFF)) >> 8);
	}
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].stride, 40);
	assert_int_equal(out[0].meta_offset, (N - 1 - 1536) * 512);
	c[3][0x20] ^= 1;
	bad(f, img, N, "every copy bad");
	free(img);
	img = mk(&s, 1);
	c[0] = img + (N - 1) * 512;
	c[0][0x78] = 0xFF, c[0][0x79] = 0xFF; /* this disk larger than the disk */
	rs_fix("sil", img, N);
	memset(img + (N - 1 - 1536) * 512, 0, 512 * 1537 - 512); /* the other copies gone */
	bad(f, img, N, "disk size");
	c[0][0x78] = c[0][0x79] = 0;
	c[0][0x117] = 1, c[0][0x11A] = 0xFF; /* a mirror of -1 disks: read, the count left to the set check */
	rs_fix("sil", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_RAID1);
	assert_int_equal(out[0].members, 0);
	c[0][0x117] = 0;
	c[0][0x118] = 0; /* a 0-disk stripe */
	rs_fix("sil", img, N);
	bad(f, img, N, "0-disk stripe");
	c[0][0x118] = 2;
	c[0][0x6C] = c[0][0x6D] = 0, c[0][0x6E] = 0xFF; /* array far larger than two disks */
	rs_fix("sil", img, N);
	bad(f, img, N, "size past the disk");
	none(f, img, N - 1);
	free(img);
}

/* ---- pdc ---- */
static void test_pdc(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_pdc;
	struct rs_spec s = { .fmt = "pdc", .chunk = 32, .disk_sectors = N, .member_sectors = M, .id = ID };
	struct exp e = { .set = "pdc_dafebjijg", .subset = NOSUB, .meta_offset = (N - 63) * 512, .meta_len = 2048,
			 .stride = 32 };
	flat(f, &s, RS_SPAN, 3, 32, &e, PM_RT_LINEAR, 3, 32, N - 63);
	flat(f, &s, RS_RAID0, 3, 128, &e, PM_RT_RAID0, 3, 128, M);
	flat(f, &s, RS_RAID1, 2, 128, &e, PM_RT_RAID1, 2, 128, M);
	/* RAID1 with 4 disks is RAID10: a mirror over two stripes, disks 0,1 in -0 */
	stacked(f, &s, RS_RAID10, 4, 64, &e, PM_RT_RAID0, PM_RT_RAID1, M, NULL);
	/* every probe location; the first array's data starts at 0 whatever its start field says (dmraid) */
	static const unsigned ends[] = { 63, 255, 256, 16, 399, 591, 675, 735, 911, 974, 991, 951, 3087 };
	s.level = RS_RAID0, s.disks = 2, s.chunk = 16, s.data_offset = 5;
	for (size_t k = 0; k < sizeof(ends) / sizeof(ends[0]); k++) {
		s.pdc_end = ends[k];
		struct exp x = e;
		x.type = PM_RT_RAID0, x.index = 1, x.members = 2, x.stride = 16, x.sectors = M, x.offset = 0;
		x.meta_offset = (N - ends[k]) * 512;
		one(f, &s, 1, &x);
	}
	s.pdc_end = 0, s.data_offset = 0;

	/* a second array on the disk: its area 14 sectors after the first; one record per array */
	uint8_t *img = mk(&s, 0);
	uint8_t *m = img + rs_meta("pdc", N);
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	memcpy(m + 14 * 512, m, 2048);
	uint8_t *m2 = m + 14 * 512;
	m2[0x200 + 0x1F] = 1; /* a mirror */
	m2[0x200 + 0x2C] ^= 0xFF; /* another id; its checksum is not checked (dmraid checks the first) */
	m2[0x200 + 0x10] = 0; /* data at 2048 (0x800) */
	m2[0x200 + 0x11] = 8;
	m2[0x200 + 0x24] = 0, m2[0x200 + 0x25] = 0x10, m2[0x200 + 0x26] = 0; /* a mirror of 4096 sectors */
	assert_int_equal(rd(f, img, N, out, PM_RAID_MAX_DEVS), 2);
	assert_true(out[0].listed);
	assert_false(out[1].listed);
	assert_string_equal(out[0].set, "pdc_dafebjijg");
	assert_int_equal(out[1].type, PM_RT_RAID1);
	assert_int_equal(out[1].offset, 2048);
	assert_int_equal(out[1].meta_offset, (N - 63 + 14) * 512);
	assert_string_not_equal(out[1].set, out[0].set);
	assert_int_equal(rd(f, img, N, out, 1), -ENOSPC);
	m2[0x200 + 0x13] = 0x7F; /* the second array's data far past the disk */
	bad(f, img, N, "second area: start past the disk");
	m2[0x200 + 0x13] = 0;
	m2[0x200 + 0x20] = 9; /* the second array with 9 disks */
	bad(f, img, N, "second area: 9 disks");
	memset(m2, 0, 2048);

	m[0x30] ^= 1;
	bad(f, img, N, "checksum");
	m[0x30] ^= 1;
	m[0x200 + 0x20] = 0;
	rs_fix("pdc", img, N);
	bad(f, img, N, "0 disks");
	m[0x200 + 0x20] = 8;
	rs_fix("pdc", img, N);
	bad(f, img, N, "8 disks");
	m[0x200 + 0x20] = 2;
	m[0x200 + 0x27] = 0x7F; /* an array far larger than its disks */
	rs_fix("pdc", img, N);
	bad(f, img, N, "size past the disk");
	m[0x200 + 0x27] = 0;
	m[0x200 + 0x5] = 2; /* disk 2 of 2: left to the set check */
	rs_fix("pdc", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].index, 2);
	m[0x200 + 0x5] = 0;
	m[0x200 + 0x1F] = 0x42; /* a type dmraid does not know: listed as undef */
	rs_fix("pdc", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_int_equal(out[0].type, PM_RT_UNDEF);
	none(f, img, N - 62); /* the probe at N-63 moved: nothing else there */
	none(f, img, 3);
	free(img);
}

/* ---- asr ---- */
static void test_asr(void **state)
{
	(void)state;
	const struct pm_raid_format *f = &pm_raid_asr;
	struct rs_spec s = { .fmt = "asr", .chunk = 128, .disk_sectors = N, .member_sectors = M, .id = ID,
			     .name = "Array 7" };
	struct exp e = { .set = "asr_Array 7", .subset = NOSUB, .sectors = M, .meta_offset = (N - 17) * 512,
			 .meta_len = 17 * 512, .stride = 128 };
	/* physical lines are written in reverse id order: the member order is by hba:channel:lun:id */
	flat(f, &s, RS_RAID0, 3, 128, &e, PM_RT_RAID0, 3, 128, M);
	flat(f, &s, RS_RAID0, 9, 16, &e, PM_RT_RAID0, 9, 16, M); /* 10 lines: past the table's first sector */
	s.asr_version = 1; /* a version 1 table keeps a checksum */
	flat(f, &s, RS_RAID1, 2, 128, &e, PM_RT_RAID1, 2, 128, M);
	s.asr_version = 0;
	static const char *const sub[] = { ".asr_Array 7_12345679_donotuse", ".asr_Array 7_1234567a_donotuse" };
	stacked(f, &s, RS_RAID10, 4, 64, &e, PM_RT_RAID0, PM_RT_RAID1, M, sub);
	s.level = RS_SPARE, s.disks = 1;
	struct exp sp = { .set = ".asr_spares", .subset = NOSUB, .type = PM_RT_SPARE, .sectors = M,
			  .meta_offset = (N - 17) * 512, .meta_len = 17 * 512 };
	one(f, &s, 0, &sp);

	s.level = RS_RAID1, s.disks = 2, s.asr_version = 1, s.chunk = 128;
	uint8_t *img = mk(&s, 1);
	uint8_t *rb = img + rs_meta("asr", N), *t = img + (N - 17) * 512;
	struct pm_raid_dev out[4];
	t[0x40 + 0x30 + 15] = ' '; /* a name padded to its end with spaces: trimmed */
	memset(t + 0x40 + 0x30 + 7, ' ', 9);
	rs_fix("asr", img, N);
	assert_int_equal(rd(f, img, N, out, 4), 1);
	assert_string_equal(out[0].set, "asr_Array 7");
	t[0x40 + 64 + 0x1B] ^= 1;
	bad(f, img, N, "version 1 checksum");
	t[7] = 2; /* version 2: no checksum */
	if (rd(f, img, N, out, 4) != 1)
		fail_msg("version 2: %s", why);
	t[7] = 1;
	rs_fix("asr", img, N);
	rb[0x3F] = 7;
	bad(f, img, N, "reserved block v7");
	rb[0x3F] = 8;
	rb[0x104] = 0x7F; /* the table far past the disk */
	bad(f, img, N, "table past the disk");
	rb[0x104] = 0;
	t[0] ^= 1;
	bad(f, img, N, "table magic");
	t[0] ^= 1;
	t[0xB] = 0;
	bad(f, img, N, "0 lines");
	t[0xB] = 200, t[9] = 255; /* 200 lines of 255: more than the table holds */
	bad(f, img, N, "200 lines");
	t[0xB] = 3, t[9] = 127;
	t[0xD] = 32;
	bad(f, img, N, "line size 32");
	t[0xD] = 64;
	rs_fix("asr", img, N);
	rb[0x43] ^= 0x0F; /* a drive magic no line has */
	bad(f, img, N, "disk not in the table");
	rb[0x43] ^= 0x0F;
	t[0x40 + 64 + 0xA] = 3; /* the first physical line (disk 1): failed */
	rs_fix("asr", img, N);
	bad(f, img, N, "failed disk");
	t[0x40 + 64 + 0xA] = 0;
	t[0x40 + 64 + 0x18] = 0x7F; /* capacity past the disk */
	rs_fix("asr", img, N);
	bad(f, img, N, "capacity past the disk");
	none(f, img, N - 1);
	free(img);
}

/* Random changes to every format's metadata (checksums fixed or not): never a crash or a read outside
 * the disk (ASan), and every record found lies on the disk. */
static void test_mutate(void **state)
{
	(void)state;
	static const char *const fmts[] = { "asr", "hpt37x", "hpt45x", "jmicron", "lsi", "nvidia", "pdc", "sil", "via" };
	static const enum rs_level lv[] = { RS_RAID0, RS_RAID1, RS_RAID10 };
	uint32_t seed = 12345;
	unsigned found = 0, rejected = 0;
	for (size_t k = 0; k < 9; k++) {
		const struct pm_raid_format *f = pm_raid_format_by_name(fmts[k]);
		for (unsigned round = 0; round < 300; round++) {
			struct rs_spec s = { .fmt = fmts[k], .level = lv[round % 3], .disks = 4, .chunk = 16,
					     .disk_sectors = 4096, .member_sectors = 1024, .id = ID };
			if (!strcmp(fmts[k], "jmicron") && s.level == RS_RAID10)
				s.level = RS_RAID01;
			uint8_t *img = mk(&s, round % 4);
			uint64_t meta = rs_meta(fmts[k], s.disk_sectors);
			size_t span = !strcmp(fmts[k], "pdc") ? 2048 : 512;
			for (unsigned c = 0; c < 1 + round % 6; c++) {
				seed = seed * 1103515245 + 12345;
				size_t at = (seed >> 8) % span;
				img[meta + at] = (uint8_t)(seed >> 16);
				if (!strcmp(fmts[k], "asr")) /* and the table */
					img[(s.disk_sectors - 17) * 512 + (seed >> 4) % 1024] ^= (uint8_t)(seed >> 24);
			}
			if (round % 2)
				rs_fix(fmts[k], img, s.disk_sectors);
			struct pm_raid_dev out[PM_RAID_MAX_DEVS];
			int r = rd(f, img, s.disk_sectors, out, PM_RAID_MAX_DEVS);
			assert_true(r == -EBADMSG || (r >= 0 && r <= PM_RAID_MAX_DEVS));
			for (int j = 0; j < r; j++) {
				assert_true(out[j].offset <= s.disk_sectors);
				assert_true(out[j].sectors <= s.disk_sectors - out[j].offset);
				assert_true(out[j].meta_offset + out[j].meta_len <= s.disk_sectors * 512);
				assert_non_null(memchr(out[j].set, 0, sizeof(out[j].set)));
			}
			found += r > 0;
			rejected += r == -EBADMSG;
			free(img);
		}
	}
	assert_true(found > 100 && rejected > 100);
}

/* The set's virtual disk as dmraid maps it, rebuilt from the records the reader gives for each member
 * (offset, sectors, stride, index, subset): linear concatenates by index, a stripe takes chunks round
 * the members by index, a mirror is any member; stacked sets combine their subsets the same way. */
static uint64_t rebuild(const struct pm_raid_dev *r, const uint8_t *const *img, unsigned n, uint8_t *dst)
{
	const struct pm_raid_dev *by[16][16] = { { 0 } }; /* [subset][index] */
	unsigned nsub = r[0].subsets ? r[0].subsets : 1, per = 0;
	for (unsigned i = 0; i < n; i++) {
		assert_true(r[i].subset_index < nsub && r[i].index < 16);
		assert_null(by[r[i].subset_index][r[i].index]);
		by[r[i].subset_index][r[i].index] = &r[i];
	}
	per = n / nsub;
	/* each (sub)set's stream, then the superset over them */
	static uint8_t sub[2][8 << 20];
	uint64_t subsize[16] = { 0 }, min = UINT64_MAX;
	for (unsigned s = 0; s < nsub; s++) {
		const struct pm_raid_dev *m0 = by[s][0];
		uint8_t *out = nsub == 1 ? dst : sub[s];
		uint64_t small = UINT64_MAX, at = 0;
		for (unsigned k = 0; k < per; k++)
			small = by[s][k]->sectors < small ? by[s][k]->sectors : small;
		switch (m0->type) {
		case PM_RT_LINEAR:
			for (unsigned k = 0; k < per; k++) {
				const struct pm_raid_dev *m = by[s][k];
				memcpy(out + at * 512, img[m - r] + m->offset * 512, m->sectors * 512);
				at += m->sectors;
			}
			break;
		case PM_RT_RAID0: {
			uint64_t c = m0->stride, chunks = small / c;
			for (uint64_t q = 0; q < chunks * per; q++) {
				const struct pm_raid_dev *m = by[s][q % per];
				memcpy(out + q * c * 512, img[m - r] + (m->offset + q / per * c) * 512, c * 512);
			}
			at = chunks * c * per;
			break;
		}
		case PM_RT_RAID1:
			memcpy(out, img[m0 - r] + m0->offset * 512, small * 512);
			at = small;
			for (unsigned k = 1; k < per; k++) { /* the copies agree (but hpt37x's metadata sector) */
				const struct pm_raid_dev *m = by[s][k];
				for (uint64_t q = 0; q < small; q++)
					if (memcmp(out + q * 512, img[m - r] + (m->offset + q) * 512, 512) &&
					    !(m->fmt == &pm_raid_hpt37x && q == 9))
						fail_msg("%s: mirror copy %u differs at sector %llu", m->fmt->name, k,
							 (unsigned long long)q);
			}
			break;
		default: fail_msg("type %d", m0->type);
		}
		subsize[s] = at;
		min = at < min ? at : min;
	}
	if (nsub == 1)
		return subsize[0];
	if (r[0].super_type == PM_RT_RAID1) { /* a mirror of the subsets: they must agree */
		memcpy(dst, sub[0], min * 512);
		return min;
	}
	uint64_t c = r[0].super_stride, chunks = min / c; /* a stripe over the subsets */
	for (uint64_t q = 0; q < chunks * nsub; q++)
		memcpy(dst + q * c * 512, sub[q % nsub] + q / nsub * c * 512, c * 512);
	return chunks * c * nsub;
}

/* Members written with data (rs_fill: the virtual disk laid out by the facts), read back by the readers
 * and put together from their records: the virtual disk again, for every format and level. */
static void test_data(void **state)
{
	(void)state;
	static const char *const fmts[] = { "asr", "hpt37x", "hpt45x", "jmicron", "lsi", "nvidia", "pdc", "sil", "via" };
	static const struct { enum rs_level level; unsigned disks; } lv[] = {
		{ RS_SPAN, 3 }, { RS_RAID0, 3 }, { RS_RAID1, 2 }, { RS_RAID10, 4 }, { RS_RAID01, 4 }, { RS_RAID0, 2 },
	};
	const uint64_t n = 4096;
	unsigned sets = 0;
	uint32_t seed = 7;
	for (size_t k = 0; k < 9; k++) {
		const struct pm_raid_format *f = pm_raid_format_by_name(fmts[k]);
		for (size_t l = 0; l < sizeof(lv) / sizeof(lv[0]); l++) {
			struct rs_spec s = { .fmt = fmts[k], .level = lv[l].level, .disks = lv[l].disks,
					     .chunk = l == 5 ? 128 : 16, .disk_sectors = n, .member_sectors = 2048 - 32 * l,
					     .id = ID + (uint32_t)l };
			uint8_t *img[4];
			uint8_t *probe = calloc(1, n * 512);
			assert_non_null(probe);
			int w = rs_write(&s, 0, probe);
			free(probe);
			if (w)
				continue; /* not a level of this format */
			uint64_t size = rs_size(&s);
			assert_true(size > 0);
			uint8_t *src = malloc(size * 512), *got = calloc(1, 16 << 20);
			assert_non_null(src);
			assert_non_null(got);
			for (uint64_t b = 0; b < size * 512; b++) {
				seed = seed * 1103515245 + 12345;
				src[b] = (uint8_t)(seed >> 16);
			}
			struct pm_raid_dev rec[4] = { { 0 } };
			for (unsigned i = 0; i < s.disks; i++) {
				img[i] = calloc(1, n * 512);
				assert_non_null(img[i]);
				assert_int_equal(rs_fill(&s, i, src, img[i]), 0);
				assert_int_equal(rs_write(&s, i, img[i]), 0); /* metadata last (hpt37x: inside the data) */
				struct pm_raid_dev out[PM_RAID_MAX_DEVS];
				if (rd(f, img[i], n, out, PM_RAID_MAX_DEVS) != 1)
					fail_msg("%s level %d member %u: %s", fmts[k], s.level, i, why);
				rec[i] = out[0];
				uint64_t off, len;
				rs_geometry(&s, i, &off, &len);
				assert_int_equal(rec[i].offset, off);
				assert_int_equal(rec[i].sectors, len);
			}
			uint64_t built = rebuild(rec, (const uint8_t *const *)img, s.disks, got);
			assert_int_equal(built, size);
			/* hpt37x keeps its metadata in sector 9 of disk 0, inside the set's data: its sector 9 */
			if (!strcmp(fmts[k], "hpt37x"))
				memcpy(got + 9 * 512, src + 9 * 512, 512);
			if (memcmp(got, src, size * 512))
				fail_msg("%s level %d: the set's bytes differ from the virtual disk", fmts[k], s.level);
			sets++;
			for (unsigned i = 0; i < s.disks; i++)
				free(img[i]);
			free(src);
			free(got);
		}
	}
	assert_int_equal(sets, 7 + 9 + 9 + 8 + 2 + 9); /* span: 7 formats; RAID10: 8; RAID01: 2 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),    cmocka_unit_test(test_blank),   cmocka_unit_test(test_nvidia),
		cmocka_unit_test(test_via),     cmocka_unit_test(test_jmicron), cmocka_unit_test(test_lsi),
		cmocka_unit_test(test_hpt45x),  cmocka_unit_test(test_hpt37x),  cmocka_unit_test(test_sil),
		cmocka_unit_test(test_pdc),     cmocka_unit_test(test_asr),     cmocka_unit_test(test_mutate),
		cmocka_unit_test(test_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
