/* Unit tests of the isw and ddf1 readers and of the set assembly and its tables, on member images
 * synthesised from the metadata facts (raidsyn.c): every level, odd chunks, member order, each
 * checksum, hostile fields, degraded sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "raid/raid.h"
#include "raid/set.h"
#include "raidsyn.h"
#include "target/target.h"
#include "tgtenv.h"
#include "util.h"

#define DISK_SECTORS 4096ull
#define DISK_BYTES (DISK_SECTORS * 512)
#define NMAX 6

struct rig {
	unsigned n;
	uint8_t *buf[NMAX];
	struct pm_disk d[NMAX];
	struct pm_raid_disk k[NMAX];
	char path[NMAX][16];
	struct pm_raid_sets sets;
	uint64_t bytes;
};

static void rig_new(struct rig *r, unsigned n, uint64_t bytes)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->bytes = bytes;
	for (unsigned i = 0; i < n; i++) {
		r->buf[i] = calloc(1, bytes);
		assert_non_null(r->buf[i]);
	}
}

/* read disks in the order given by ord (NULL: 0..n-1), with serials (NULL: none) */
static int rig_scan(struct rig *r, const unsigned *ord, const char *const *serials, const char *formats)
{
	for (unsigned i = 0; i < r->n; i++) {
		unsigned j = ord ? ord[i] : i;
		pm_disk_from_mem(&r->d[i], r->buf[j], r->bytes, 512);
		snprintf(r->path[i], sizeof(r->path[i]), "/dev/d%u", j);
		memset(&r->k[i], 0, sizeof(r->k[i]));
		r->k[i].path = r->path[i];
		r->k[i].d = &r->d[i];
		r->k[i].serial = serials ? serials[j] : "";
	}
	return pm_raid_scan(r->k, r->n, formats);
}

static void rig_free(struct rig *r)
{
	pm_raid_sets_free(&r->sets);
	for (unsigned i = 0; i < r->n; i++)
		free(r->buf[i]);
}

/* scan + assemble + the tables of one set, as "name: line" lines */
static char *tables_of(struct rig *r, const char *set, char **log)
{
	assert_int_equal(pm_raid_assemble(r->k, r->n, &r->sets), 0);
	const struct pm_raid_set *s = pm_raid_set_find(&r->sets, set);
	if (!s) {
		fprintf(stderr, "no set %s; log: %s\n", set, r->sets.log ? r->sets.log : "");
		fail();
	}
	if (!s->ok)
		return NULL;
	struct pm_raid_map *m;
	size_t n;
	assert_int_equal(pm_raid_tables(s, &m, &n, log), 0);
	char *out = NULL;
	for (size_t i = 0; i < n; i++) {
		char *l = m[i].table;
		for (char *e; (e = strchr(l, '\n')); l = e + 1) {
			*e = 0;
			pm_raid_logf(&out, "%s: %s", m[i].name, l);
		}
	}
	pm_raid_maps_free(m, n);
	return out;
}

static void expect_tables(struct rig *r, const char *set, const char *want)
{
	char *log = NULL;
	char *got = tables_of(r, set, &log);
	if (!got || strcmp(got, want))
		fprintf(stderr, "got:\n%swant:\n%slog:\n%s\n", got ? got : "(none)", want, r->sets.log ? r->sets.log : "");
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(log);
}

static struct rs_vol vol(const char *name, enum rs_level l, unsigned m, uint32_t strip, uint64_t lba0, uint64_t bpm)
{
	struct rs_vol v = { .level = l, .members = m, .strip = strip, .lba0 = lba0, .bpm = bpm, .rlq = 2 };
	pm_strlcpy(v.name, name, sizeof(v.name));
	return v;
}

/* ---- isw ---- */

static void test_isw_raid0_odd_chunk(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 3, DISK_BYTES);
	struct rs_vol v = vol("Vol0", RS_RAID0, 3, 24, 0, 2000);
	rs_isw(r.buf, r.bytes, 3, 1234, &v, 1, NULL);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	for (unsigned i = 0; i < 3; i++) {
		if (r.k[i].n != 2)
			fprintf(stderr, "disk %u: err %d why %s\n", i, r.k[i].err, r.k[i].why);
		assert_int_equal(r.k[i].n, 2);
		assert_ptr_equal(r.k[i].fmt, &pm_raid_isw);
		assert_true(r.k[i].rd[0].listed);
		assert_int_equal(r.k[i].rd[0].type, PM_RT_GROUP);
		assert_string_equal(r.k[i].rd[0].set, "isw_bcde");
		assert_int_equal(r.k[i].rd[0].sectors, DISK_SECTORS - 2);
		assert_string_equal(r.k[i].rd[1].set, "isw_bcde_Vol0");
		assert_int_equal(r.k[i].rd[1].index, i);
		assert_true(r.k[i].rd[1].by_position);
	}
	/* 2000 / 24 = 83 rows of 24 */
	expect_tables(&r, "isw_bcde_Vol0", "isw_bcde_Vol0: 0 5976 striped 3 24 /dev/d0 0 /dev/d1 0 /dev/d2 0\n");
	rig_free(&r);
}

static void test_isw_member_order(void **state)
{
	(void)state;
	struct rig r;
	const char *serials[] = { "SER-A", "SER-B", "SER-C" };
	const unsigned ord[] = { 2, 0, 1 };
	rig_new(&r, 3, DISK_BYTES);
	struct rs_vol v = vol("Data", RS_RAID0, 3, 128, 0, 2048);
	rs_isw(r.buf, r.bytes, 3, 7, &v, 1, serials);
	/* given as d2 d0 d1 with serials: the metadata's order wins */
	assert_int_equal(rig_scan(&r, ord, serials, NULL), 0);
	assert_false(r.k[0].rd[1].by_position);
	assert_int_equal(r.k[0].rd[1].index, 2);
	expect_tables(&r, "isw_h_Data", "isw_h_Data: 0 6144 striped 3 128 /dev/d0 0 /dev/d1 0 /dev/d2 0\n");
	rig_free(&r);
	/* a serial the metadata does not have: refused, said why */
	v = vol("One", RS_RAID0, 1, 128, 0, 2048);
	rig_new(&r, 1, DISK_BYTES);
	rs_isw(r.buf, r.bytes, 1, 7, &v, 1, serials);
	const char *other[] = { "  NOT:THERE  " };
	assert_int_equal(rig_scan(&r, NULL, other, NULL), 0);
	assert_int_equal(r.k[0].err, -EBADMSG);
	assert_int_equal(r.k[0].n, 0);
	assert_non_null(strstr(r.k[0].why, "NOT;THERE"));
	rig_free(&r);
	/* whitespace is dropped and ':' read as ';', as dmraid does */
	rig_new(&r, 1, DISK_BYTES);
	const char *s2[] = { "AB;CD" };
	rs_isw(r.buf, r.bytes, 1, 7, &v, 1, s2);
	const char *given[] = { " AB:CD\t" };
	assert_int_equal(rig_scan(&r, NULL, given, NULL), 0);
	assert_int_equal(r.k[0].n, 2);
	rig_free(&r);
}

static void test_isw_raid1_degraded(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 2, DISK_BYTES);
	struct rs_vol v = vol("Mirror", RS_RAID1, 2, 0, 0, 4000);
	rs_isw(r.buf, r.bytes, 2, 99, &v, 1, NULL);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	expect_tables(&r, "isw_jj_Mirror",
		      "isw_jj_Mirror: 0 4000 mirror core 2 64 nosync 2 /dev/d0 0 /dev/d1 0 1 handle_errors\n");
	assert_string_equal(pm_raid_set_type_name(&r.sets.v[0]), "mirror");
	pm_raid_sets_free(&r.sets);
	/* one member: activated, as a linear map, with dmraid's messages */
	r.n = 1;
	char *log = NULL;
	char *t = tables_of(&r, "isw_jj_Mirror", &log);
	assert_string_equal(t, "isw_jj_Mirror: 0 4000 linear /dev/d0 0\n");
	assert_non_null(strstr(r.sets.log, "ERROR: isw: wrong # of devices in RAID set \"isw_jj_Mirror\" [1/2] on /dev/d0"));
	assert_non_null(strstr(r.sets.log, "keeping degraded mirror set \"isw_jj_Mirror\""));
	assert_string_equal(log, "ERROR: creating degraded mirror mapping for \"isw_jj_Mirror\"\n");
	assert_int_equal(r.sets.v[0].status, PM_RS_INCONSISTENT);
	free(t);
	free(log);
	r.n = 2;
	rig_free(&r);
}

static void test_isw_raid0_missing(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 2, DISK_BYTES);
	struct rs_vol v = vol("Stripe", RS_RAID0, 2, 64, 0, 2048);
	rs_isw(r.buf, r.bytes, 2, 5, &v, 1, NULL);
	/* only the second disk, given with its serial-less position 1: read it at position 1 */
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	memmove(&r.k[0], &r.k[1], sizeof(r.k[0]));
	r.k[0].path = "/dev/d1";
	assert_int_equal(pm_raid_assemble(r.k, 1, &r.sets), 0);
	assert_int_equal(r.sets.n, 1);
	assert_false(r.sets.v[0].ok);
	assert_int_equal(r.sets.v[0].status, PM_RS_BROKEN);
	assert_non_null(strstr(r.sets.log, "[1/2] on /dev/d1"));
	assert_non_null(strstr(r.sets.log, "ERROR: RAID set \"isw_f_Stripe\": member 1 of 2 is missing"));
	assert_non_null(strstr(r.sets.log, "ERROR: removing inconsistent RAID set \"isw_f_Stripe\""));
	struct pm_raid_map *m;
	size_t n;
	assert_int_equal(pm_raid_tables(&r.sets.v[0], &m, &n, NULL), -EINVAL);
	rig_free(&r);
}

static void test_isw_raid10(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 4, DISK_BYTES);
	struct rs_vol v = vol("R10", RS_RAID01, 4, 16, 0, 3000);
	rs_isw(r.buf, r.bytes, 4, 42, &v, 1, NULL);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	expect_tables(&r, "isw_ec_R10",
		      "isw_ec_R10-0: 0 3000 mirror core 2 64 nosync 2 /dev/d0 0 /dev/d1 0 1 handle_errors\n"
		      "isw_ec_R10-1: 0 3000 mirror core 2 64 nosync 2 /dev/d2 0 /dev/d3 0 1 handle_errors\n"
		      "isw_ec_R10: 0 5984 striped 2 16 /dev/mapper/isw_ec_R10-0 0 /dev/mapper/isw_ec_R10-1 0\n");
	assert_string_equal(pm_raid_set_type_name(&r.sets.v[0]), "raid01");
	assert_int_equal(pm_raid_set_devs(&r.sets.v[0]), 4);
	pm_raid_sets_free(&r.sets);
	/* mdadm's literal level 10 (dmraid refuses it): the same set */
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *m = r.buf[i] + rs_isw_anchor(r.bytes);
		m[0xD8 + 4 * 48 + 0x70 + 0x0F] = 10;
		rs_isw_fix(r.buf[i], r.bytes);
	}
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	expect_tables(&r, "isw_ec_R10",
		      "isw_ec_R10-0: 0 3000 mirror core 2 64 nosync 2 /dev/d0 0 /dev/d1 0 1 handle_errors\n"
		      "isw_ec_R10-1: 0 3000 mirror core 2 64 nosync 2 /dev/d2 0 /dev/d3 0 1 handle_errors\n"
		      "isw_ec_R10: 0 5984 striped 2 16 /dev/mapper/isw_ec_R10-0 0 /dev/mapper/isw_ec_R10-1 0\n");
	pm_raid_sets_free(&r.sets);
	/* one disk of each pair missing: still whole */
	memmove(&r.k[1], &r.k[2], sizeof(r.k[0]));
	assert_int_equal(pm_raid_assemble(r.k, 2, &r.sets), 0);
	assert_true(r.sets.v[0].ok);
	assert_true(r.sets.v[0].sub[0].degraded);
	pm_raid_sets_free(&r.sets);
	/* both of pair 1 missing: refused */
	assert_int_equal(pm_raid_assemble(r.k, 1, &r.sets), 0);
	assert_false(r.sets.v[0].ok);
	assert_non_null(strstr(r.sets.log, "subset 2 of 2 is missing"));
	rig_free(&r);
}

static void test_isw_raid5(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 3, DISK_BYTES);
	struct rs_vol v = vol("Par", RS_RAID5, 3, 32, 0, 2048);
	rs_isw(r.buf, r.bytes, 3, 3, &v, 1, NULL);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	assert_int_equal(r.k[0].rd[1].type, PM_RT_RAID5_LA);
	expect_tables(&r, "isw_d_Par",
		      "isw_d_Par: 0 4096 raid raid5_la 4 32 nosync region_size 64 3 - /dev/d0 - /dev/d1 - /dev/d2\n");
	pm_raid_sets_free(&r.sets);
	/* the middle one missing: activated, rebuilding it */
	memmove(&r.k[1], &r.k[2], sizeof(r.k[0]));
	r.n = 2;
	expect_tables(&r, "isw_d_Par", "isw_d_Par: 0 4096 raid raid5_la 6 32 sync rebuild 1 region_size 64 3 - /dev/d0 - - - /dev/d2\n");
	pm_raid_sets_free(&r.sets);
	/* two missing: refused */
	r.n = 1;
	assert_int_equal(pm_raid_assemble(r.k, 1, &r.sets), 0);
	assert_false(r.sets.v[0].ok);
	assert_non_null(strstr(r.sets.log, "removing inconsistent RAID set \"isw_d_Par\""));
	r.n = 3;
	rig_free(&r);
}

static void test_isw_two_volumes(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 2, DISK_BYTES);
	struct rs_vol v[2] = { vol("Sys", RS_RAID1, 2, 0, 0, 1024), vol("Scratch", RS_RAID0, 2, 128, 1024, 2048) };
	rs_isw(r.buf, r.bytes, 2, 777, v, 2, NULL);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	assert_int_equal(r.k[0].n, 3);
	expect_tables(&r, "isw_hhh_Scratch", "isw_hhh_Scratch: 0 4096 striped 2 128 /dev/d0 1024 /dev/d1 1024\n");
	assert_int_equal(r.sets.n, 2);
	assert_string_equal(r.sets.v[0].name, "isw_hhh_Sys");
	assert_string_equal(r.sets.v[0].group, "isw_hhh");
	rig_free(&r);
}

static void test_isw_checksum_and_hostile(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 1, DISK_BYTES);
	struct rs_vol v = vol("V", RS_RAID0, 1, 8, 0, 1024);
	rs_isw(r.buf, r.bytes, 1, 1, &v, 1, NULL);
	uint8_t *m = r.buf[0] + rs_isw_anchor(r.bytes);
	char why[256];
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	struct pm_disk d;
	pm_disk_from_mem(&d, r.buf[0], r.bytes, 512);
#define READ() pm_raid_isw.read(&d, "", out, PM_RAID_MAX_DEVS, why, sizeof(why))
#define READ0() pm_raid_isw.read_pos(&d, "", 0, out, PM_RAID_MAX_DEVS, why, sizeof(why))
	assert_int_equal(READ(), 1);
	assert_int_equal(READ0(), 2);
	/* a flipped bit in the volume name: the checksum no longer holds */
	m[0xD8 + 48 + 2] ^= 1;
	assert_int_equal(READ(), -EBADMSG);
	assert_non_null(strstr(why, "checksum"));
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ(), 1);
	/* the checksum field itself wrong */
	put_le32(m + 0x20, get_le32(m + 0x20) + 1);
	assert_int_equal(READ(), -EBADMSG);
	rs_isw_fix(r.buf[0], r.bytes);
	/* absurd sizes and counts, checksums right */
	uint32_t size = get_le32(m + 0x24);
	put_le32(m + 0x24, 0x7FFFFFFC);
	assert_int_equal(READ(), -EBADMSG);
	put_le32(m + 0x24, 64);
	assert_int_equal(READ(), -EBADMSG);
	put_le32(m + 0x24, size);
	m[0x38] = 200;
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	assert_non_null(strstr(why, "200 disks"));
	m[0x38] = 1;
	m[0x39] = 9; /* volumes that are not there */
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), -EBADMSG);
	m[0x39] = 1;
	uint8_t *map = m + 0xD8 + 48 + 0x70;
	put_le32(map + 4, (uint32_t)DISK_SECTORS); /* past the disk */
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), -EBADMSG);
	put_le32(map + 4, 1024);
	put_le32(map + 0x30, 5); /* a member that is not in the disk table */
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), 1); /* this disk is in no volume then */
	put_le32(map + 0x30, 0);
	map[0x10] = 0;
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), -EBADMSG);
	map[0x10] = 1;
	map[0x0F] = 6; /* a level dmraid does not know: the volume is left out, said why */
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), 1);
	assert_non_null(strstr(why, "RAID type 6"));
	map[0x0F] = 0;
	put_le16(map + 0x0C, 0);
	rs_isw_fix(r.buf[0], r.bytes);
	assert_int_equal(READ0(), -EBADMSG);
	/* a position past the disk table */
	assert_int_equal(pm_raid_isw.read_pos(&d, "", 3, out, PM_RAID_MAX_DEVS, why, sizeof(why)), -EBADMSG);
	/* truncated: the MPB says more sectors than the disk has before it */
	rig_free(&r);
	uint8_t small[4 * 512] = { 0 };
	memcpy(small + 2 * 512, "Intel Raid ISM Cfg Sig. 1.3.00", 30);
	put_le32(small + 2 * 512 + 0x24, 8192);
	pm_disk_from_mem(&d, small, sizeof(small), 512);
	assert_int_equal(READ(), -EBADMSG);
	/* too small a disk, nothing there: not isw */
	pm_disk_from_mem(&d, small, 1024, 512);
	assert_int_equal(READ(), 0);
#undef READ
#undef READ0
}

/* ---- ddf1 ---- */

static void test_ddf1_levels(void **state)
{
	(void)state;
	static const struct {
		enum rs_level l;
		unsigned members, rlq;
		const char *name, *want;
	} cases[] = {
		{ RS_RAID0, 3, 0, "Stripe", "ddf1_Stripe: 0 3072 striped 3 64 /dev/d0 16 /dev/d1 16 /dev/d2 16\n" },
		{ RS_RAID1, 2, 0, "Mirror", "ddf1_Mirror: 0 1050 mirror core 2 64 nosync 2 /dev/d0 16 /dev/d1 16 1 handle_errors\n" },
		{ RS_SPAN, 2, 0, "Span", "ddf1_Span: 0 1050 linear /dev/d0 16\nddf1_Span: 1050 1050 linear /dev/d1 16\n" },
		{ RS_RAID5, 3, 3, "R5ls", "ddf1_R5ls: 0 2048 raid raid5_ls 6 64 nosync region_size 64 data_offset 16 3 - /dev/d0 - /dev/d1 - /dev/d2\n" },
		{ RS_RAID5, 3, 2, "R5la", "ddf1_R5la: 0 2048 raid raid5_la 6 64 nosync region_size 64 data_offset 16 3 - /dev/d0 - /dev/d1 - /dev/d2\n" },
		{ RS_RAID5, 3, 0, "R5q0", "ddf1_R5q0: 0 2048 raid raid5_rs 6 64 nosync region_size 64 data_offset 16 3 - /dev/d0 - /dev/d1 - /dev/d2\n" },
		{ RS_RAID01, 4, 0, "Ten",
		  "ddf1_Ten-0: 0 1050 mirror core 2 64 nosync 2 /dev/d0 16 /dev/d1 16 1 handle_errors\n"
		  "ddf1_Ten-1: 0 1050 mirror core 2 64 nosync 2 /dev/d2 16 /dev/d3 16 1 handle_errors\n"
		  "ddf1_Ten: 0 2048 striped 2 64 /dev/mapper/ddf1_Ten-0 0 /dev/mapper/ddf1_Ten-1 0\n" },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int le = 0; le < 2; le++) {
			struct rig r;
			rig_new(&r, cases[c].members, DISK_BYTES);
			struct rs_vol v = vol(cases[c].name, cases[c].l, cases[c].members, 64, 16, 1050);
			v.rlq = cases[c].rlq;
			rs_ddf1(r.buf, r.bytes, cases[c].members, &v, 1, le);
			/* given in reverse: the disk data's reference puts each in its place */
			unsigned ord[NMAX];
			for (unsigned i = 0; i < cases[c].members; i++)
				ord[i] = cases[c].members - 1 - i;
			assert_int_equal(rig_scan(&r, ord, NULL, NULL), 0);
			assert_ptr_equal(r.k[0].fmt, &pm_raid_ddf1);
			assert_string_equal(r.k[0].rd[0].set, ".ddf1_disks");
			assert_int_equal(r.k[0].rd[0].type, PM_RT_GROUP);
			char set[64];
			snprintf(set, sizeof(set), "ddf1_%s", cases[c].name);
			/* the tables name disks by their place: reverse the paths back */
			for (unsigned i = 0; i < r.n; i++)
				snprintf(r.path[i], sizeof(r.path[i]), "/dev/d%u", ord[i]);
			expect_tables(&r, set, cases[c].want);
			rig_free(&r);
		}
	}
}

static void test_ddf1_names_and_degraded(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 2, DISK_BYTES);
	struct rs_vol v = vol("", RS_RAID1, 2, 1, 0, 1000);
	rs_ddf1(r.buf, r.bytes, 2, &v, 1, false);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	/* no name: the GUID in hex ("partmap-test-vd-guid-00a") */
	assert_string_equal(r.k[0].rd[1].set, "ddf1_706172746d61702d746573742d76642d677569642d303061");
	/* an LSI GUID: characters 32..39 of the hex made constant (Debian's dmraid) */
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *p = r.buf[i] + (DISK_SECTORS - RS_DDF1_PRIMARY) * 512;
		memcpy(p + 3 * 512 + 0x40, "LSI", 3);
		memcpy(p + 4 * 512 + 8, "LSI", 3);
		rs_ddf1_fix(r.buf[i], r.bytes);
	}
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	assert_string_equal(r.k[0].rd[1].set, "ddf1_4c5349746d61702d746573742d76642d" "47114711" "2d303061");
	rig_free(&r);
	rig_new(&r, 2, DISK_BYTES);
	v = vol("my vol!  ", RS_RAID1, 2, 1, 0, 1000);
	rs_ddf1(r.buf, r.bytes, 2, &v, 1, false);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	assert_string_equal(r.k[0].rd[1].set, "ddf1_my_vol_");
	/* the second disk alone: a degraded mirror */
	r.k[0] = r.k[1];
	char *log = NULL;
	char *t = tables_of(&r, "ddf1_my_vol_", &log);
	r.n = 1;
	assert_non_null(t);
	assert_string_equal(t, "ddf1_my_vol_: 0 1000 linear /dev/d1 0\n");
	free(t);
	free(log);
	r.n = 2;
	rig_free(&r);
	/* RAID0 with a member missing: refused */
	rig_new(&r, 3, DISK_BYTES);
	v = vol("S", RS_RAID0, 3, 8, 0, 1000);
	rs_ddf1(r.buf, r.bytes, 3, &v, 1, false);
	assert_int_equal(rig_scan(&r, NULL, NULL, NULL), 0);
	r.k[1] = r.k[2];
	assert_int_equal(pm_raid_assemble(r.k, 2, &r.sets), 0);
	assert_false(r.sets.v[0].ok);
	assert_non_null(strstr(r.sets.log, "ERROR: ddf1: wrong # of devices in RAID set \"ddf1_S\" [2/3] on /dev/d0"));
	assert_non_null(strstr(r.sets.log, "member 2 of 3 is missing"));
	rig_free(&r);
}

static void test_ddf1_crc_and_hostile(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 1, DISK_BYTES);
	struct rs_vol v = vol("V", RS_RAID0, 1, 8, 0, 1000);
	rs_ddf1(r.buf, r.bytes, 1, &v, 1, false);
	uint8_t *disk = r.buf[0];
	uint64_t n = DISK_SECTORS, p = (n - RS_DDF1_PRIMARY) * 512;
	char why[256];
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	struct pm_disk d;
	pm_disk_from_mem(&d, disk, r.bytes, 512);
#define READ() pm_raid_ddf1.read(&d, "", out, PM_RAID_MAX_DEVS, why, sizeof(why))
	assert_int_equal(READ(), 2);
	/* each CRC: anchor, primary header, physical drives, virtual drives, config record, disk data */
	const uint64_t where[] = { (n - 1) * 512 + 0x30, p + 0x30, p + 512 + 0x50, p + 3 * 512 + 0x70,
				   p + 4 * 512 + 0x60, p + 12 * 512 + 0x30 };
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		disk[where[i]] ^= 0x40;
		assert_int_equal(READ(), -EBADMSG);
		if (!strstr(why, "CRC"))
			fprintf(stderr, "%zu: %s\n", i, why);
		assert_non_null(strstr(why, "CRC"));
		disk[where[i]] ^= 0x40;
		assert_int_equal(READ(), 2);
	}
	/* hostile fields with right CRCs */
	put_be64(disk + (n - 1) * 512 + 0x60, n + 5); /* primary header past the end */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be64(disk + (n - 1) * 512 + 0x60, n - RS_DDF1_PRIMARY);
	put_be32(disk + p + 0xD8, 0x7FFFFFF0); /* config section offset past the end */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be32(disk + p + 0xD8, 4);
	put_be32(disk + p + 0xDC, 0xFFFFFFFF); /* absurd length */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be32(disk + p + 0xDC, 8);
	put_be16(disk + p + 512 + 8, 500); /* 500 physical drives in 2 sectors */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be16(disk + p + 512 + 8, 1);
	put_be16(disk + p + 0x88, 0); /* no members per record */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be16(disk + p + 0x88, 200); /* more members than a record holds */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be16(disk + p + 0x88, 16);
	put_be16(disk + p + 4 * 512 + 0x40, 17); /* a record with more members than the maximum */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be16(disk + p + 4 * 512 + 0x40, 1);
	put_be64(disk + p + 4 * 512 + 512 + 64, n - 10); /* the member's extent runs off the disk */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be64(disk + p + 4 * 512 + 512 + 64, 0);
	disk[p + 4 * 512 + 0x42] = 60; /* a stripe of 2^60 sectors */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	disk[p + 4 * 512 + 0x42] = 3;
	put_be32(disk + p + 12 * 512 + 0x20, 0x4242); /* this disk is not a physical drive */
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), -EBADMSG);
	put_be32(disk + p + 12 * 512 + 0x20, 0x1000);
	rs_ddf1_fix(disk, r.bytes);
	assert_int_equal(READ(), 2);
	/* the anchor alone on a disk cut short: its primary header is gone */
	pm_disk_from_mem(&d, disk + p + 16 * 512, r.bytes - p - 16 * 512, 512);
	assert_int_equal(READ(), -EBADMSG);
#undef READ
	rig_free(&r);
}

static void test_scan_formats_and_region(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 2, DISK_BYTES);
	struct rs_vol v = vol("V", RS_RAID1, 1, 0, 0, 1000);
	rs_isw(r.buf, r.bytes, 1, 1, &v, 1, NULL);
	rs_ddf1(r.buf + 1, r.bytes, 1, &v, 1, false);
	assert_int_equal(rig_scan(&r, NULL, NULL, "ddf1"), 0);
	assert_null(r.k[0].fmt);
	assert_ptr_equal(r.k[1].fmt, &pm_raid_ddf1);
	assert_int_equal(rig_scan(&r, NULL, NULL, "isw,ddf1"), 0);
	assert_ptr_equal(r.k[0].fmt, &pm_raid_isw);
	assert_int_equal(rig_scan(&r, NULL, NULL, "isw,bogus"), -EINVAL);
	rig_free(&r);
	assert_int_equal(pm_raid_region(2097152), 1024);
	assert_int_equal(pm_raid_region(1000), 64);
	assert_int_equal(pm_raid_region(1ull << 40), 131072);
}

/* ---- assembly of records as any reader gives them ---- */

static struct pm_raid_dev rec(const char *set, const char *subset, enum pm_raid_type t, enum pm_raid_type st,
			      unsigned index, unsigned members, unsigned sub, unsigned subs, uint64_t sectors)
{
	struct pm_raid_dev r = { .fmt = &pm_raid_isw, .type = t, .super_type = st, .status = PM_RS_OK,
				 .sectors = sectors, .stride = t == PM_RT_RAID0 ? 64 : 0, .index = index,
				 .members = members, .subset_index = sub, .subsets = subs };
	pm_strlcpy(r.set, set, sizeof(r.set));
	pm_strlcpy(r.subset, subset, sizeof(r.subset));
	return r;
}

static void test_assembly_generic(void **state)
{
	(void)state;
	struct pm_raid_disk k[4];
	const char *paths[] = { "/dev/a", "/dev/b", "/dev/c", "/dev/d" };
	struct pm_raid_sets sets;
	struct pm_raid_map *m;
	size_t n;
	memset(k, 0, sizeof(k));
	/* mirror over stripes (pdc, sil, nvidia, via, lsi RAID10): "raid10" */
	for (unsigned i = 0; i < 4; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "x_1-%u", i / 2);
		k[i].path = paths[i];
		k[i].rd[0] = rec("x_1", sub, PM_RT_RAID0, PM_RT_RAID1, i % 2, 2, i / 2, 2, 1000 + i);
		k[i].n = 1;
	}
	assert_int_equal(pm_raid_assemble(k, 4, &sets), 0);
	assert_int_equal(sets.n, 1);
	assert_string_equal(pm_raid_set_type_name(&sets.v[0]), "raid10");
	assert_int_equal(pm_raid_tables(&sets.v[0], &m, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(m[0].table, "0 1920 striped 2 64 /dev/a 0 /dev/b 0\n");
	assert_string_equal(m[1].table, "0 1920 striped 2 64 /dev/c 0 /dev/d 0\n");
	assert_string_equal(m[2].name, "x_1");
	assert_string_equal(m[2].table, "0 1920 mirror core 2 64 nosync 2 /dev/mapper/x_1-0 0 /dev/mapper/x_1-1 0 1 handle_errors\n");
	pm_raid_maps_free(m, n);
	pm_raid_sets_free(&sets);
	/* one stripe pair gone: the mirror keeps the other (linear over it) */
	assert_int_equal(pm_raid_assemble(k, 2, &sets), 0);
	assert_true(sets.v[0].ok);
	assert_true(sets.v[0].degraded);
	char *log = NULL;
	assert_int_equal(pm_raid_tables(&sets.v[0], &m, &n, &log), 0);
	assert_int_equal(n, 2);
	assert_string_equal(m[1].table, "0 1920 linear /dev/mapper/x_1-0 0\n");
	assert_non_null(strstr(log, "degraded mirror mapping"));
	free(log);
	pm_raid_maps_free(m, n);
	pm_raid_sets_free(&sets);
	/* linear: members of different sizes, concatenated; RAID0 of one: linear; RAID6: not mapped */
	memset(k, 0, sizeof(k));
	for (unsigned i = 0; i < 3; i++) {
		k[i].path = paths[i];
		k[i].rd[0] = rec("span", "", PM_RT_LINEAR, PM_RT_UNDEF, i, 3, 0, 0, 100 * (i + 1));
		k[i].rd[0].offset = i;
		k[i].n = 1;
	}
	k[3].path = paths[3];
	k[3].rd[0] = rec("one", "", PM_RT_RAID0, PM_RT_UNDEF, 0, 1, 0, 0, 1000);
	k[3].rd[1] = rec("six", "", PM_RT_RAID6, PM_RT_UNDEF, 0, 1, 0, 0, 1000);
	k[3].n = 2;
	assert_int_equal(pm_raid_assemble(k, 4, &sets), 0);
	assert_int_equal(sets.n, 3);
	assert_int_equal(pm_raid_tables(&sets.v[0], &m, &n, NULL), 0);
	assert_string_equal(m[0].table, "0 100 linear /dev/a 0\n100 200 linear /dev/b 1\n300 300 linear /dev/c 2\n");
	pm_raid_maps_free(m, n);
	assert_int_equal(pm_raid_tables(&sets.v[1], &m, &n, NULL), 0);
	assert_string_equal(m[0].table, "0 1000 linear /dev/d 0\n");
	pm_raid_maps_free(m, n);
	log = NULL;
	assert_int_equal(pm_raid_tables(&sets.v[2], &m, &n, &log), -EOPNOTSUPP);
	assert_non_null(strstr(log, "Unsupported RAID type raid6"));
	free(log);
	pm_raid_sets_free(&sets);
	/* hostile counts from a reader: no set, said why */
	k[0].rd[0] = rec("huge", "", PM_RT_RAID0, PM_RT_UNDEF, 0, 100000, 0, 0, 1000);
	k[0].n = 1;
	k[1].rd[0] = rec("huge2", "huge2-0", PM_RT_RAID0, PM_RT_RAID1, 0, 2, 7, 100000, 1000);
	k[1].n = 1;
	assert_int_equal(pm_raid_assemble(k, 2, &sets), 0);
	assert_non_null(strstr(sets.log, "with 100000 members"));
	assert_non_null(strstr(sets.log, "with 100000 subsets"));
	pm_raid_sets_free(&sets);
}

/* ---- the userspace raid target ---- */

static void test_target_raid(void **state)
{
	(void)state;
	static const char *const types[] = { "raid4", "raid5_la", "raid5_ra", "raid5_ls", "raid5_rs" };
	const unsigned n = 4, chunk = 8, rows = 6, off = 16;
	const uint64_t dev_bytes = (off + rows * chunk) * 512ull, vbytes = (uint64_t)(n - 1) * rows * chunk * 512;
	uint8_t *virt = malloc(vbytes), *got = malloc(vbytes);
	assert_non_null(virt);
	assert_non_null(got);
	for (uint64_t i = 0; i < vbytes; i++)
		virt[i] = (uint8_t)(i * 7 + i / 512 * 13 + 1);
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct tgtenv e;
		char path[4][256], text[512], err[256];
		struct pm_dtab *tb;
		tgtenv_init(&e);
		for (unsigned i = 0; i < n; i++) {
			char name[8];
			snprintf(name, sizeof(name), "7:%u", i);
			tgtenv_file(&e, name, dev_bytes, NULL, path[i]);
		}
		snprintf(text, sizeof(text), "0 %llu raid %s 6 %u nosync region_size 64 data_offset %u %u - 7:0 - 7:1 - 7:2 - 7:3\n",
			 (unsigned long long)(vbytes / 512), types[t], chunk, off, n);
		assert_int_equal(tgtenv_build(&e, text, false, &tb, err, sizeof(err)), 0);
		assert_int_equal(pm_dtab_write(tb, 0, virt, vbytes), 0);
		memset(got, 0, vbytes);
		assert_int_equal(pm_dtab_read(tb, 0, got, vbytes), 0);
		assert_memory_equal(got, virt, vbytes);
		char *st = tgtenv_status(tb, false, 0);
		assert_non_null(strstr(st, "AAAA"));
		free(st);
		pm_dtab_free(tb);
		/* on the members: each row's chunks XOR to zero (parity), read from the files */
		uint8_t *m[4];
		for (unsigned i = 0; i < n; i++) {
			m[i] = malloc(dev_bytes);
			tgtenv_pread(path[i], 0, m[i], dev_bytes);
		}
		for (uint64_t b = off * 512; b < dev_bytes; b++)
			assert_int_equal(m[0][b] ^ m[1][b] ^ m[2][b] ^ m[3][b], 0);
		/* left asymmetric and left symmetric as raidsyn.c lays them out (isw, mdadm's DDF) */
		if (t == 1 || t == 3) {
			struct rs_vol v = { .level = RS_RAID5, .members = n, .strip = chunk, .lba0 = off,
					    .bpm = rows * chunk, .rlq = t == 1 ? 2 : 3 };
			uint8_t *want[4];
			for (unsigned i = 0; i < n; i++)
				want[i] = calloc(1, dev_bytes);
			rs_scatter(&v, virt, want);
			for (unsigned i = 0; i < n; i++) {
				assert_memory_equal(m[i] + off * 512, want[i] + off * 512, dev_bytes - off * 512);
				free(want[i]);
			}
		}
		for (unsigned i = 0; i < n; i++)
			free(m[i]);
		/* each member missing in turn: every byte from parity; a write there keeps it readable */
		for (unsigned miss = 0; miss < n; miss++) {
			char devs[128] = "";
			for (unsigned i = 0; i < n; i++) {
				char one[16];
				snprintf(one, sizeof(one), " - %s", i == miss ? "-" : (const char *[]){ "7:0", "7:1", "7:2", "7:3" }[i]);
				strcat(devs, one);
			}
			snprintf(text, sizeof(text), "0 %llu raid %s 6 %u sync rebuild %u data_offset %u %u%s\n",
				 (unsigned long long)(vbytes / 512), types[t], chunk, miss, off, n, devs);
			memset(got, 0, vbytes);
			assert_int_equal(tgtenv_build(&e, text, false, &tb, err, sizeof(err)), 0);
			assert_int_equal(pm_dtab_read(tb, 0, got, vbytes), 0);
			assert_memory_equal(got, virt, vbytes);
			uint8_t blk[4096];
			memset(blk, 0xA5 + miss, sizeof(blk));
			assert_int_equal(pm_dtab_write(tb, 4096ull * (miss + 1), blk, sizeof(blk)), 0);
			memcpy(virt + 4096ull * (miss + 1), blk, sizeof(blk));
			assert_int_equal(pm_dtab_read(tb, 0, got, vbytes), 0);
			assert_memory_equal(got, virt, vbytes);
			pm_dtab_free(tb);
		}
		/* refusals: two missing, a metadata device, counts that do not match, an unknown type */
		assert_true(tgtenv_refused(&e, "0 48 raid raid5_la 1 8 3 - 7:0 - - - -\n", err, sizeof(err)));
		assert_non_null(strstr(err, "redundancy"));
		assert_true(tgtenv_refused(&e, "0 48 raid raid5_la 1 8 3 7:3 7:0 - 7:1 - 7:2\n", err, sizeof(err)));
		assert_true(tgtenv_refused(&e, "0 48 raid raid5_la 1 8 4 - 7:0 - 7:1 - 7:2\n", err, sizeof(err)));
		assert_true(tgtenv_refused(&e, "0 48 raid raid6_zr 1 8 3 - 7:0 - 7:1 - 7:2\n", err, sizeof(err)));
		assert_true(tgtenv_refused(&e, "0 40 raid raid5_la 1 8 3 - 7:0 - 7:1 - 7:2\n", err, sizeof(err)));
		tgtenv_cleanup(&e);
	}
	free(virt);
	free(got);
}

/* An IMSM spare disk (its own one-disk record, the entry marked spare, as mdadm and the Intel ROM write
 * it): -r lists it as a spare of group isw_<family>, and it is the one member of a spare set named
 * after its path (dmraid: isw_<family>_<path>, mk_alphanum'd), which has no table; a RAID1 beside
 * it is untouched. A disk in a family's table but in no volume (not marked spare) stays in the group. */
static void test_isw_spare(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 3, DISK_BYTES);
	const char *serials[3] = { "SER0", "SER1", "SPARE2" };
	struct rs_vol v = vol("Mirror", RS_RAID1, 2, 0, 0, 2000);
	rs_isw(r.buf, r.bytes, 2, 42, &v, 1, serials);
	const char *one[1] = { serials[2] };
	struct rs_spec sp = { .fmt = "isw", .level = RS_SPARE, .disks = 1, .disk_sectors = DISK_SECTORS, .id = 1234,
			      .serials = one };
	assert_int_equal(rs_write(&sp, 0, r.buf[2]), 0);
	assert_int_equal(rig_scan(&r, NULL, serials, NULL), 0);
	assert_int_equal(r.k[2].n, 2);
	const struct pm_raid_dev *g = &r.k[2].rd[0], *x = &r.k[2].rd[1];
	assert_true(g->listed);
	assert_int_equal(g->type, PM_RT_SPARE);
	assert_string_equal(g->set, "isw_bcde");
	assert_int_equal(g->sectors, DISK_SECTORS - 2);
	assert_int_equal(g->status, PM_RS_OK);
	assert_false(x->listed);
	assert_true(x->name_by_path);
	assert_int_equal(x->type, PM_RT_SPARE);
	assert_int_equal(pm_raid_assemble(r.k, r.n, &r.sets), 0);
	const struct pm_raid_set *s = pm_raid_set_find(&r.sets, "isw_bcde_/dev/d2"); /* the path as it is (Debian dmraid, in the VM) */
	assert_non_null(s);
	assert_true(s->ok);
	assert_int_equal(s->type, PM_RT_SPARE);
	assert_string_equal(s->group, "isw_bcde");
	assert_int_equal(s->status, PM_RS_OK);
	assert_int_equal(s->sectors, DISK_SECTORS - 2); /* the disk up to its metadata, as dmraid -s shows */
	assert_int_equal(pm_raid_set_devs(s), 0);
	assert_int_equal(pm_raid_set_spares(s), 1);
	struct pm_raid_map *m;
	size_t n;
	assert_int_equal(pm_raid_tables(s, &m, &n, NULL), -EOPNOTSUPP);
	const struct pm_raid_set *mir = pm_raid_set_find(&r.sets, "isw_ec_Mirror");
	assert_non_null(mir);
	assert_true(mir->ok);
	assert_int_equal(pm_raid_set_devs(mir), 2);
	assert_int_equal(pm_raid_set_spares(mir), 0);
	assert_null(r.sets.log);
	rig_free(&r);

	/* a third disk in the family's table but in no volume, not marked spare: the group only */
	rig_new(&r, 3, DISK_BYTES);
	rs_isw(r.buf, r.bytes, 3, 42, &v, 1, serials);
	assert_int_equal(rig_scan(&r, NULL, serials, NULL), 0);
	assert_int_equal(r.k[2].n, 1);
	assert_int_equal(r.k[2].rd[0].type, PM_RT_GROUP);
	rig_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isw_raid0_odd_chunk),
		cmocka_unit_test(test_isw_member_order),
		cmocka_unit_test(test_isw_raid1_degraded),
		cmocka_unit_test(test_isw_raid0_missing),
		cmocka_unit_test(test_isw_raid10),
		cmocka_unit_test(test_isw_raid5),
		cmocka_unit_test(test_isw_two_volumes),
		cmocka_unit_test(test_isw_checksum_and_hostile),
		cmocka_unit_test(test_ddf1_levels),
		cmocka_unit_test(test_ddf1_names_and_degraded),
		cmocka_unit_test(test_ddf1_crc_and_hostile),
		cmocka_unit_test(test_scan_formats_and_region),
		cmocka_unit_test(test_assembly_generic),
		cmocka_unit_test(test_target_raid),
		cmocka_unit_test(test_isw_spare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
