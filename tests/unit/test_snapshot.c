/* Unit tests of the snapshot and snapshot-origin targets over files: the seed's points A and B
 * (snapshot-origin copying into a snapshot's COW, the exception handover), the persistent store's
 * on-disk format read back by an independent parser written here from the kernel's format (and a
 * store built here by hand read by the target), stores filling up (invalid, or overflow with PO),
 * transient stores, persistence across a reload, the kernel's refusals and messages, and concurrent
 * origin writes with snapshot reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgtenv.h"
#include "dm.h"

#define SECT 512u

static uint8_t fill_a(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 512 + 3);
}

static uint8_t fill_b(uint64_t i)
{
	return (uint8_t)((i >> 3) ^ (i * 29) ^ 0x5a);
}

#define file_bytes tgtenv_pread
#define file_put tgtenv_pwrite

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static char *status(struct pm_dtab *tb, bool table, size_t i)
{
	static char buf[512];
	struct pm_dm_target *t;
	size_t n;

	assert_int_equal(pm_dtab_status(tb, table, &t, &n), 0);
	assert_true(i < n);
	snprintf(buf, sizeof(buf), "%s", t[i].params);
	pm_dm_targets_free(t, n);
	return buf;
}

/* ---- the persistent format, parsed here from the kernel's description (not through the target) ---- */

struct cow_view {
	uint32_t magic, valid, version, chunk;
	size_t n;                 /* exceptions */
	uint64_t old[4096], new[4096];
	uint64_t areas;           /* areas read (the last one not full) */
};

static void parse_cow(const char *path, struct cow_view *v)
{
	uint8_t h[16];

	memset(v, 0, sizeof(*v));
	file_bytes(path, 0, h, sizeof(h));
	v->magic = rd32(h);
	v->valid = rd32(h + 4);
	v->version = rd32(h + 8);
	v->chunk = rd32(h + 12);
	if (v->magic != 0x70416e53 || !v->valid)
		return;
	uint64_t cb = (uint64_t)v->chunk * SECT, e = cb / 16;
	uint8_t *area = malloc(cb);
	assert_non_null(area);
	for (uint64_t a = 0;; a++) {
		uint64_t i;
		file_bytes(path, (1 + (e + 1) * a) * cb, area, cb);
		v->areas = a + 1;
		for (i = 0; i < e; i++) {
			uint64_t nw = rd64(area + 16 * i + 8);
			if (!nw)
				break;
			assert_true(v->n < 4096);
			v->old[v->n] = rd64(area + 16 * i);
			v->new[v->n++] = nw;
		}
		if (i < e)
			break;
	}
	free(area);
}

/* a served device made of a table: the seed's basedup, linear over two files */
struct served {
	struct pm_dtab *tb;
	struct pm_vdev v;
};

static void serve(struct tgtenv *e, struct served *s, const char *name, const char *table)
{
	char err[256];

	assert_int_equal(tgtenv_build(e, table, false, &s->tb, err, sizeof(err)), 0);
	pm_dtab_vdev(s->tb, &s->v);
	tgtenv_add_vdev(e, name, &s->v);
	tgtenv_live(e, s->tb);
}

static struct pm_dtab *live(struct tgtenv *e, const char *table)
{
	struct pm_dtab *tb;
	char err[256];

	if (tgtenv_build(e, table, false, &tb, err, sizeof(err)))
		fail_msg("%s: %s", table, err);
	tgtenv_live(e, tb);
	return tb;
}

static void drop(struct tgtenv *e, struct pm_dtab *tb)
{
	tgtenv_unlive(e, tb);
	pm_dtab_free(tb);
}

static void fill_buf(uint8_t *b, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 31 + i / 512);
}

enum { DUP = 768, CHUNK = 8, CB = CHUNK * SECT };

/* the seed's setup: loop1 and loop2 joined as basedup, loop3 the COW (its first chunk zeroed) */
static void seed_setup(struct tgtenv *e, struct served *dup, char *l1, char *l2, char *l3, uint8_t *orig)
{
	tgtenv_init(e);
	tgtenv_file(e, "7:1", 512 * SECT, fill_a, l1);
	tgtenv_file(e, "7:2", 256 * SECT, fill_b, l2);
	tgtenv_file(e, "7:3", 1 << 20, NULL, l3);
	serve(e, dup, "253:0", "0 512 linear 7:1 0\n512 256 linear 7:2 0\n");
	assert_int_equal(pm_dtab_read(dup->tb, 0, orig, DUP * SECT), 0);
}

/* Point B: base becomes snapshot-origin of basedup; writes to it go to basedup after the old data
 * went to top's COW; top keeps the view of the time it was made. */
static void test_point_b(void **state)
{
	struct tgtenv e;
	struct served dup;
	char l1[256], l2[256], l3[256];
	static uint8_t orig[DUP * SECT], want[DUP * SECT], got[DUP * SECT], buf[16 * SECT];
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	seed_setup(&e, &dup, l1, l2, l3, orig);
	struct pm_dtab *top = live(&e, "0 768 snapshot 253:0 7:3 p 8\n");
	assert_string_equal(status(top, false, 0), "16/2048 16");
	assert_string_equal(status(top, true, 0), "253:0 7:3 P 8");
	struct pm_dtab *base = live(&e, "0 768 snapshot-origin 253:0\n");
	assert_string_equal(status(base, true, 0), "253:0");
	assert_string_equal(status(base, false, 0), "");

	memcpy(want, orig, sizeof(want));
	struct {
		uint64_t sector, count;
	} w[] = { { 3, 1 }, { 12, 16 }, { 508, 8 }, { 5, 2 } }; /* chunks 0; 1, 2, 3; 63, 64; 0 again */
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		fill_buf(buf, w[i].count * SECT, (uint8_t)(i + 1));
		assert_int_equal(pm_dtab_write(base, w[i].sector * SECT, buf, w[i].count * SECT), 0);
		memcpy(want + w[i].sector * SECT, buf, w[i].count * SECT);
	}
	/* the origin changed (in the files underneath), the snapshot did not */
	assert_int_equal(pm_dtab_read(base, 0, got, sizeof(got)), 0);
	assert_memory_equal(got, want, sizeof(got));
	file_bytes(l1, 0, got, 512 * SECT);
	assert_memory_equal(got, want, 512 * SECT);
	file_bytes(l2, 0, got, 256 * SECT);
	assert_memory_equal(got, want + 512 * SECT, 256 * SECT);
	assert_int_equal(pm_dtab_read(top, 0, got, sizeof(got)), 0);
	assert_memory_equal(got, orig, sizeof(got));
	/* six exceptions: data chunks 2..7 */
	assert_string_equal(status(top, false, 0), "64/2048 16");

	/* a write to the snapshot: its chunk copied from the origin (unchanged there), the write laid over
	 * it; the origin does not see it */
	fill_buf(buf, SECT, 0x77);
	assert_int_equal(pm_dtab_write(top, 83 * SECT, buf, SECT), 0); /* chunk 10 */
	assert_int_equal(pm_dtab_read(top, 80 * SECT, got, CB), 0);
	assert_memory_equal(got, orig + 80 * SECT, 3 * SECT);
	assert_memory_equal(got + 3 * SECT, buf, SECT);
	assert_memory_equal(got + 4 * SECT, orig + 84 * SECT, 4 * SECT);
	assert_int_equal(pm_dtab_read(base, 83 * SECT, got, SECT), 0);
	assert_memory_equal(got, orig + 83 * SECT, SECT);
	assert_int_equal(pm_dtab_flush(top), 0);

	/* the COW, read as the kernel would */
	parse_cow(l3, v);
	assert_int_equal(v->magic, 0x70416e53);
	assert_int_equal(v->valid, 1);
	assert_int_equal(v->version, 1);
	assert_int_equal(v->chunk, 8);
	assert_int_equal(v->n, 7);
	static const uint64_t olds[] = { 0, 1, 2, 3, 63, 64, 10 };
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(v->old[i], olds[i]);
		assert_int_equal(v->new[i], 2 + i);
		file_bytes(l3, v->new[i] * CB, got, CB);
		if (olds[i] != 10) {
			assert_memory_equal(got, orig + olds[i] * CB, CB);
		} else {
			assert_memory_equal(got + 3 * SECT, buf, SECT);
			assert_memory_equal(got, orig + 80 * SECT, 3 * SECT);
		}
	}

	/* dismantling as the seed does: top removed, basedup's table back */
	drop(&e, top);
	fill_buf(buf, SECT, 0x99);
	assert_int_equal(pm_dtab_write(base, 200 * SECT, buf, SECT), 0); /* no snapshot left: straight through */
	file_bytes(l1, 200 * SECT, got, SECT);
	assert_memory_equal(got, buf, SECT);
	drop(&e, base);
	drop(&e, dup.tb);
	assert_int_equal(e.opens, 0);
	free(v);
	tgtenv_cleanup(&e);
}

/* Point A: top's table loaded into base; base takes top's store over at resume (top is invalid from
 * then on), writes to base go to the COW only; an origin device made afterwards writes basedup, and
 * base keeps its own view. */
static void test_point_a(void **state)
{
	struct tgtenv e;
	struct served dup;
	char l1[256], l2[256], l3[256], err[256];
	static uint8_t orig[DUP * SECT], got[DUP * SECT], buf[CB], buf2[CB];
	struct pm_dtab *base, *third;

	(void)state;
	seed_setup(&e, &dup, l1, l2, l3, orig);
	struct pm_dtab *top = live(&e, "0 768 snapshot 253:0 7:3 p 8\n");
	fill_buf(buf, SECT, 0x11);
	assert_int_equal(pm_dtab_write(top, 41 * SECT, buf, SECT), 0); /* chunk 5, before point A */
	assert_int_equal(tgtenv_build(&e, "0 768 snapshot 253:0 7:3 p 8\n", false, &base, err, sizeof(err)), 0);
	assert_string_equal(status(top, false, 0), "24/2048 16"); /* loading base changed nothing yet */
	tgtenv_live(&e, base);                                     /* dmsetup resume base */
	assert_string_equal(status(top, false, 0), "Invalid");
	assert_string_equal(status(base, false, 0), "24/2048 16");
	assert_int_equal(pm_dtab_read(top, 0, got, SECT), -EIO);
	assert_int_equal(pm_dtab_read(base, 41 * SECT, got, SECT), 0);
	assert_memory_equal(got, buf, SECT);
	/* a third user of the same COW is refused, as by the kernel */
	third = (void *)1;
	assert_int_equal(tgtenv_build(&e, "0 768 snapshot 253:0 7:3 P 8\n", false, &third, err, sizeof(err)), -EINVAL);
	assert_null(third);
	assert_string_equal(err, "snapshot: Snapshot cow pairing for exception table handover failed");

	/* writes to base: the COW only */
	fill_buf(buf, CB, 0x22);
	assert_int_equal(pm_dtab_write(base, 7 * CB, buf, CB), 0);
	file_bytes(l1, 7 * CB, got, CB);
	assert_memory_equal(got, orig + 7 * CB, CB);

	struct pm_dtab *origin = live(&e, "0 768 snapshot-origin 253:0\n");
	fill_buf(buf2, CB, 0x33);
	assert_int_equal(pm_dtab_write(origin, 7 * CB, buf2, CB), 0);
	assert_int_equal(pm_dtab_write(origin, 9 * CB + SECT, buf2, SECT), 0);
	/* basedup has the origin's writes; base its own, and the old data elsewhere */
	file_bytes(l1, 7 * CB, got, CB);
	assert_memory_equal(got, buf2, CB);
	assert_int_equal(pm_dtab_read(base, 7 * CB, got, CB), 0);
	assert_memory_equal(got, buf, CB);
	assert_int_equal(pm_dtab_read(base, 9 * CB, got, CB), 0);
	assert_memory_equal(got, orig + 9 * CB, CB);
	assert_int_equal(pm_dtab_read(origin, 7 * CB, got, CB), 0);
	assert_memory_equal(got, buf2, CB);
	assert_string_equal(status(base, false, 0), "40/2048 16"); /* chunks 5, 7, 9 */

	drop(&e, origin);
	drop(&e, top);
	/* with top gone, base still serves the store */
	assert_int_equal(pm_dtab_read(base, 7 * CB, got, CB), 0);
	assert_memory_equal(got, buf, CB);
	drop(&e, base);
	drop(&e, dup.tb);
	assert_int_equal(e.opens, 0);
	tgtenv_cleanup(&e);
}

/* A store built here by hand: header (chunk 8 overriding the table's 16), one area, data chunks. */
/* a valid store header (version 1, chunks of 8 sectors) at the start of COW file c */
static void put_header(const char *c, uint8_t *chunk)
{
	memset(chunk, 0, CB);
	le32(chunk, 0x70416e53);
	le32(chunk + 4, 1);
	le32(chunk + 8, 1);
	le32(chunk + 12, 8);
	file_put(c, 0, chunk, CB);
}

static void test_handmade_store(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char o[256], c[256], err[256];
	static uint8_t chunk[CB], got[CB], want[CB];
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 64 * CB, NULL, c);
	put_header(c, chunk);
	memset(chunk, 0, sizeof(chunk));
	static const uint64_t old[] = { 5, 0, 9 };
	for (int i = 0; i < 3; i++) {
		le64(chunk + 16 * i, old[i]);
		le64(chunk + 16 * i + 8, 2 + (uint64_t)i);
	}
	file_put(c, CB, chunk, CB);
	for (int i = 0; i < 3; i++) {
		memset(chunk, 0xa0 + i, sizeof(chunk));
		file_put(c, (2 + (uint64_t)i) * CB, chunk, CB);
	}

	assert_int_equal(tgtenv_build(&e, "0 512 snapshot 7:0 7:1 P 16\n", false, &tb, err, sizeof(err)), 0);
	tgtenv_live(&e, tb);
	assert_string_equal(status(tb, true, 0), "7:0 7:1 P 8");
	assert_string_equal(status(tb, false, 0), "40/512 16");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pm_dtab_read(tb, old[i] * CB, got, CB), 0);
		memset(want, 0xa0 + i, CB);
		assert_memory_equal(got, want, CB);
	}
	assert_int_equal(pm_dtab_read(tb, 1 * CB, got, CB), 0);
	file_bytes(o, CB, want, CB);
	assert_memory_equal(got, want, CB);
	/* the next exception goes to chunk 5, entry 3 of area 0 */
	memset(chunk, 0x5c, SECT);
	assert_int_equal(pm_dtab_write(tb, 20 * CB, chunk, SECT), 0);
	parse_cow(c, v);
	assert_int_equal(v->n, 4);
	assert_int_equal(v->old[3], 20);
	assert_int_equal(v->new[3], 5);
	assert_string_equal(status(tb, false, 0), "48/512 16");
	drop(&e, tb);

	/* a corrupt entry pointing past any device: no room is left, the header is never overwritten */
	le64(chunk, 30);
	le64(chunk + 8, UINT64_MAX);
	file_put(c, CB + 4 * 16, chunk, 16);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	assert_int_equal(pm_dtab_write(tb, 31 * CB, chunk, SECT), -EIO);
	assert_string_equal(status(tb, false, 0), "Invalid");
	parse_cow(c, v);
	assert_int_equal(v->magic, 0x70416e53);
	assert_int_equal(v->valid, 0);
	drop(&e, tb);

	/* exceptions naming the store's own chunks (the first metadata area, the header): reads go
	 * there as in the kernel, a write fails rather than land on the store, which stays as it was */
	put_header(c, chunk);
	memset(chunk, 0, sizeof(chunk));
	le64(chunk, 7);
	le64(chunk + 8, 1);
	le64(chunk + 16, 8);
	le64(chunk + 24, 2);
	file_put(c, CB, chunk, CB);
	static uint8_t area[CB], hdr[CB];
	file_bytes(c, 0, hdr, CB);
	file_bytes(c, CB, area, CB);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	assert_int_equal(pm_dtab_read(tb, 7 * CB, got, CB), 0);
	assert_memory_equal(got, area, CB);
	memset(chunk, 0x77, SECT);
	assert_int_equal(pm_dtab_write(tb, 7 * CB, chunk, SECT), -EIO);
	assert_int_equal(pm_dtab_write(tb, 8 * CB, chunk, SECT), 0); /* a data chunk: written */
	drop(&e, tb);
	file_bytes(c, 0, got, CB);
	assert_memory_equal(got, hdr, CB);
	file_bytes(c, CB, got, CB);
	assert_memory_equal(got, area, CB);
	free(v);
	tgtenv_cleanup(&e);
}

/* Chunks of one sector: 32 exceptions per area; areas fill, the next is zeroed and used; a reload
 * finds the same state. */
static void test_areas(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *org;
	char o[256], c[256];
	static uint8_t orig[128 * SECT], got[128 * SECT], buf[SECT];
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 128 * SECT, fill_a, o);
	tgtenv_file(&e, "7:1", 256 * SECT, fill_b, c);
	memset(buf, 0, SECT);
	file_put(c, 0, buf, SECT); /* a fresh COW: its first chunk zeroed */
	file_bytes(o, 0, orig, sizeof(orig));
	tb = live(&e, "0 128 snapshot 7:0 7:1 P 1\n");
	org = live(&e, "0 128 snapshot-origin 7:0\n");
	for (int i = 0; i < 64; i++) {
		memset(buf, i, SECT);
		assert_int_equal(pm_dtab_write(org, (uint64_t)i * SECT, buf, SECT), 0);
	}
	/* hdr, area 0, 32 data, area 1 (chunk 34), 32 data, area 2 (chunk 67): next free 68 */
	assert_string_equal(status(tb, false, 0), "68/256 4");
	parse_cow(c, v); /* area 2 (chunk 67) was zeroed over fill_b's bytes when area 1 filled */
	assert_int_equal(v->n, 64);
	assert_int_equal(v->areas, 3);
	for (int i = 64; i < 70; i++) {
		memset(buf, i, SECT);
		assert_int_equal(pm_dtab_write(org, (uint64_t)i * SECT, buf, SECT), 0);
	}
	assert_string_equal(status(tb, false, 0), "74/256 4");
	parse_cow(c, v);
	assert_int_equal(v->n, 70);
	assert_int_equal(v->areas, 3);
	for (uint64_t i = 0; i < 70; i++) {
		uint64_t want = i < 32 ? 2 + i : i < 64 ? 35 + (i - 32) : 68 + (i - 64);
		assert_int_equal(v->old[i], i);
		assert_int_equal(v->new[i], want);
		file_bytes(c, want * SECT, buf, SECT);
		assert_memory_equal(buf, orig + i * SECT, SECT);
	}
	drop(&e, org);
	drop(&e, tb);
	/* reloaded */
	tb = live(&e, "0 128 snapshot 7:0 7:1 P 1\n");
	assert_string_equal(status(tb, false, 0), "74/256 4");
	assert_int_equal(pm_dtab_read(tb, 0, got, sizeof(got)), 0);
	assert_memory_equal(got, orig, sizeof(got));
	drop(&e, tb);
	free(v);
	tgtenv_cleanup(&e);
}

/* A COW of 5 chunks (header, area, 3 data): the fourth exception finds no room. */
static void test_full_invalid(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *org;
	char o[256], c[256];
	static uint8_t buf[CB], got[CB];
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 5 * CB, NULL, c);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	memset(buf, 0x42, CB);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pm_dtab_write(org, (uint64_t)i * CB, buf, SECT), 0);
	assert_string_equal(status(tb, false, 0), "40/40 16");
	unsigned ev = e.events;
	assert_int_equal(pm_dtab_write(org, 3 * CB, buf, SECT), 0); /* the origin write itself succeeds */
	assert_string_equal(status(tb, false, 0), "Invalid");
	assert_true(e.events > ev);
	assert_int_equal(pm_dtab_read(tb, 0, got, SECT), -EIO);
	assert_int_equal(pm_dtab_write(tb, 0, got, SECT), -EIO);
	file_bytes(o, 3 * CB, got, SECT);
	assert_memory_equal(got, buf, SECT);
	parse_cow(c, v);
	assert_int_equal(v->magic, 0x70416e53);
	assert_int_equal(v->valid, 0);
	drop(&e, org);
	drop(&e, tb);
	/* an invalid store loads, as Invalid */
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	assert_string_equal(status(tb, false, 0), "Invalid");
	assert_int_equal(pm_dtab_read(tb, 0, got, SECT), -EIO);
	drop(&e, tb);

	/* a snapshot write finding no room, without O: invalid too */
	memset(buf, 0, CB);
	file_put(c, 0, buf, CB);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	for (int i = 0; i < 3; i++)
		assert_int_equal(pm_dtab_write(tb, (uint64_t)i * CB, buf, SECT), 0);
	assert_int_equal(pm_dtab_write(tb, 3 * CB, buf, SECT), -EIO);
	assert_string_equal(status(tb, false, 0), "Invalid");
	drop(&e, tb);
	free(v);
	tgtenv_cleanup(&e);
}

/* PO: a snapshot write that finds no room leaves the snapshot readable, "Overflow" */
static void test_full_overflow(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *org;
	char o[256], c[256];
	static uint8_t buf[CB], got[CB], want[CB];
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 5 * CB, NULL, c);
	tb = live(&e, "0 512 snapshot 7:0 7:1 PO 8\n");
	assert_string_equal(status(tb, true, 0), "7:0 7:1 PO 8");
	memset(buf, 0x42, CB);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pm_dtab_write(tb, (uint64_t)i * CB + SECT, buf, SECT), 0);
	unsigned ev = e.events;
	assert_int_equal(pm_dtab_write(tb, 3 * CB, buf, SECT), -EIO);
	assert_string_equal(status(tb, false, 0), "Overflow");
	assert_int_equal(e.events, ev);
	assert_int_equal(pm_dtab_write(tb, 0, buf, SECT), -EIO); /* no writes at all, even remapped ones */
	assert_int_equal(pm_dtab_read(tb, 0, got, CB), 0);
	file_bytes(o, 0, want, CB);
	memcpy(want + SECT, buf, SECT);
	assert_memory_equal(got, want, CB);
	assert_int_equal(pm_dtab_read(tb, 3 * CB, got, CB), 0);
	file_bytes(o, 3 * CB, want, CB);
	assert_memory_equal(got, want, CB);
	parse_cow(c, v);
	assert_int_equal(v->valid, 1);
	assert_int_equal(v->n, 3);
	/* an origin write that needs room invalidates it, PO or not */
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	assert_int_equal(pm_dtab_write(org, 4 * CB, buf, SECT), 0);
	assert_string_equal(status(tb, false, 0), "Invalid");
	parse_cow(c, v);
	assert_int_equal(v->valid, 0);
	drop(&e, org);
	drop(&e, tb);
	free(v);
	tgtenv_cleanup(&e);
}

/* N: exceptions in memory only, the COW used from chunk 0 */
static void test_transient(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *org;
	char o[256], c[256];
	static uint8_t buf[CB], got[CB], want[CB], orig[64 * CB];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 16 * CB, fill_b, c);
	file_bytes(o, 0, orig, sizeof(orig));
	tb = live(&e, "0 512 snapshot 7:0 7:1 n 8\n");
	assert_string_equal(status(tb, true, 0), "7:0 7:1 N 8");
	assert_string_equal(status(tb, false, 0), "0/128 0");
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	fill_buf(buf, SECT, 0x61);
	assert_int_equal(pm_dtab_write(tb, 57 * SECT, buf, SECT), 0); /* chunk 7 -> COW chunk 0 */
	assert_int_equal(pm_dtab_write(org, 3 * CB, buf, CB), 0);      /* chunk 3 -> COW chunk 1 */
	assert_string_equal(status(tb, false, 0), "16/128 0");
	file_bytes(c, 0, got, CB);
	memcpy(want, orig + 7 * CB, CB);
	memcpy(want + SECT, buf, SECT);
	assert_memory_equal(got, want, CB);
	file_bytes(c, CB, got, CB);
	assert_memory_equal(got, orig + 3 * CB, CB);
	assert_int_equal(pm_dtab_read(tb, 3 * CB, got, CB), 0);
	assert_memory_equal(got, orig + 3 * CB, CB);
	drop(&e, org);
	drop(&e, tb);
	/* nothing kept: a new transient snapshot sees the origin as it is now */
	tb = live(&e, "0 512 snapshot 7:0 7:1 N 8\n");
	assert_int_equal(pm_dtab_read(tb, 3 * CB, got, CB), 0);
	assert_memory_equal(got, buf, CB);
	/* and fills up: 16 chunks */
	for (int i = 0; i < 16; i++)
		assert_int_equal(pm_dtab_write(tb, (uint64_t)i * CB, buf, SECT), 0);
	assert_string_equal(status(tb, false, 0), "128/128 0");
	assert_int_equal(pm_dtab_write(tb, 20 * CB, buf, SECT), -EIO);
	assert_string_equal(status(tb, false, 0), "Invalid");
	drop(&e, tb);
	tgtenv_cleanup(&e);
}

/* P: built, written, freed, built again on the same COW: the same content */
static void test_reopen(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *org;
	char o[256], c[256];
	static uint8_t buf[3 * CB], before[64 * CB], after[64 * CB];
	char st[128];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 128 * CB, NULL, c);
	/* chunk 0 in the table: 32 for a new store */
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 0\n");
	assert_string_equal(status(tb, true, 0), "7:0 7:1 P 32");
	drop(&e, tb);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n"); /* the header's 32 wins */
	assert_string_equal(status(tb, true, 0), "7:0 7:1 P 32");
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	fill_buf(buf, sizeof(buf), 1);
	assert_int_equal(pm_dtab_write(tb, 100 * SECT, buf, 3 * CB), 0);
	assert_int_equal(pm_dtab_write(org, 300 * SECT, buf, 2 * CB), 0);
	assert_int_equal(pm_dtab_write(tb, 40 * CB, buf, CB), 0);
	assert_int_equal(pm_dtab_read(tb, 0, before, sizeof(before)), 0);
	snprintf(st, sizeof(st), "%s", status(tb, false, 0));
	drop(&e, org);
	drop(&e, tb);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 32\n");
	assert_string_equal(status(tb, false, 0), st);
	assert_int_equal(pm_dtab_read(tb, 0, after, sizeof(after)), 0);
	assert_memory_equal(before, after, sizeof(before));
	drop(&e, tb);
	tgtenv_cleanup(&e);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *table, *err;
		int r;
	} cases[] = {
		{ "0 64 snapshot 7:0 7:1 P\n", "snapshot: requires 4 or more arguments", -EINVAL },
		{ "0 64 snapshot 7:0 7:0 P 8\n", "snapshot: COW device cannot be the same as origin device", -EINVAL },
		{ "0 64 snapshot 9:9 7:1 P 8\n", "snapshot: Cannot get origin device", -ENODEV },
		{ "0 64 snapshot 7:0 9:9 P 8\n", "snapshot: Cannot get COW device", -ENODEV },
		{ "0 64 snapshot 7:0 7:1 X 8\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 12\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P x\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P -8\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 PX 8\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 8388608\n", "snapshot: Couldn't create exception store", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 N 0\n", "snapshot: Chunk size not set", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 8 1 foo\n", "snapshot: Unrecognised feature requested", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 8 3 a b c\n", "snapshot: Invalid number of feature arguments", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 8 2 discard_zeroes_cow\n", "snapshot: Invalid number of feature arguments", -EINVAL },
		{ "0 64 snapshot 7:0 7:1 P 8 1 discard_passdown_origin\n",
		  "snapshot: discard_passdown_origin feature depends on discard_zeroes_cow", -EINVAL },
		{ "0 64 snapshot 7:0 7:2 P 8\n", "snapshot: Failed to read snapshot metadata", -ENXIO }, /* not SnAp */
		{ "0 64 snapshot 7:0 7:3 P 8\n", "snapshot: Failed to read snapshot metadata", -EINVAL }, /* version 2 */
		{ "0 64 snapshot 7:0 7:4 P 8\n", "snapshot: Failed to read snapshot metadata", -EIO },    /* < 2 chunks */
		{ "0 64 snapshot 7:0 7:5 P 8\n", "snapshot: Failed to read snapshot metadata", -EINVAL }, /* chunk 3 */
		{ "0 32 snapshot 7:0 7:1 P 8\n32 32 snapshot 7:0 7:1 P 8\n",
		  "snapshot: Snapshot cow pairing for exception table handover failed", -EINVAL },
		{ "0 64 snapshot-origin\n", "snapshot-origin: origin: incorrect number of arguments", -EINVAL },
		{ "0 64 snapshot-origin 7:0 7:1\n", "snapshot-origin: origin: incorrect number of arguments", -EINVAL },
		{ "0 64 snapshot-origin 9:9\n", "snapshot-origin: Cannot get target device", -ENODEV },
	};
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], path[256];
	uint8_t h[CB] = { 0 };

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:1", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:2", 1 << 16, fill_a, NULL);
	tgtenv_file(&e, "7:3", 1 << 16, NULL, path);
	le32(h, 0x70416e53);
	le32(h + 4, 1);
	le32(h + 8, 2);
	le32(h + 12, 8);
	file_put(path, 0, h, 16);
	tgtenv_file(&e, "7:4", CB + SECT, NULL, NULL);
	tgtenv_file(&e, "7:5", 1 << 16, NULL, path);
	le32(h + 8, 1);
	le32(h + 12, 3);
	file_put(path, 0, h, 16);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tb = (void *)1;
		assert_int_equal(tgtenv_build(&e, cases[i].table, false, &tb, err, sizeof(err)), cases[i].r);
		assert_null(tb);
		assert_string_equal(err, cases[i].err);
		assert_int_equal(e.opens, 0);
	}
	/* lower case p and n, and PO's O in either case, are taken */
	assert_int_equal(tgtenv_build(&e, "0 64 snapshot 7:0 7:1 po 8\n", false, &tb, err, sizeof(err)), 0);
	assert_string_equal(status(tb, true, 0), "7:0 7:1 PO 8");
	pm_dtab_free(tb);
	assert_int_equal(tgtenv_build(&e, "0 64 snapshot 7:0 7:1 P 8 2 discard_zeroes_cow discard_passdown_origin\n", false,
				      &tb, err, sizeof(err)), 0);
	assert_string_equal(status(tb, true, 0), "7:0 7:1 P 8 2 discard_zeroes_cow discard_passdown_origin");
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* discard_zeroes_cow: a whole remapped chunk reads zeros afterwards; without it discards are refused */
static void test_discard(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char o[256], c[256];
	static uint8_t buf[CB], got[CB], zero[CB];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	tgtenv_file(&e, "7:1", 64 * CB, NULL, c);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	assert_int_equal(pm_dtab_discard(tb, 0, CB), -EOPNOTSUPP);
	drop(&e, tb);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8 1 discard_zeroes_cow\n");
	memset(buf, 0x3c, CB);
	assert_int_equal(pm_dtab_write(tb, 2 * CB, buf, SECT), 0);
	assert_int_equal(pm_dtab_discard(tb, 2 * CB, CB), 0);
	assert_int_equal(pm_dtab_read(tb, 2 * CB, got, CB), 0);
	assert_memory_equal(got, zero, CB);
	/* a chunk with no exception: left as it is */
	assert_int_equal(pm_dtab_discard(tb, 4 * CB, CB), 0);
	assert_int_equal(pm_dtab_read(tb, 4 * CB, got, CB), 0);
	file_bytes(o, 4 * CB, buf, CB);
	assert_memory_equal(got, buf, CB);
	drop(&e, tb);
	tgtenv_cleanup(&e);
}

/* ---- vdevs wrapped: the COW's operations recorded, an origin slowed down ---- */

struct wrap {
	struct pm_vdev inner;
	pthread_mutex_t m;
	char ops[256];
	uint64_t off[256], len[256];
	unsigned n;
	unsigned delay_us;        /* before each read */
};

static void wrap_log(struct wrap *w, char op, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&w->m);
	if (w->n < 256) {
		w->ops[w->n] = op;
		w->off[w->n] = off;
		w->len[w->n++] = len;
	}
	pthread_mutex_unlock(&w->m);
}

static int wrap_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	struct wrap *w = v->priv;

	if (w->delay_us)
		usleep(w->delay_us);
	return pm_vdev_read(&w->inner, off, buf, len);
}

static int wrap_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	struct wrap *w = v->priv;

	wrap_log(w, 'W', off, len);
	return pm_vdev_write(&w->inner, off, buf, len);
}

static int wrap_flush(struct pm_vdev *v)
{
	struct wrap *w = v->priv;

	wrap_log(w, 'F', 0, 0);
	return pm_vdev_flush(&w->inner);
}

static const struct pm_vdev_ops wrap_ops = { .read = wrap_read, .write = wrap_write, .flush = wrap_flush };

static void wrap_file(struct tgtenv *e, const char *name, uint64_t size, uint8_t (*fill)(uint64_t), char *path,
		      struct wrap *w, struct pm_vdev *v)
{
	char tmp[256];

	tgtenv_file(e, "file", size, fill, tmp);
	if (path)
		strcpy(path, tmp);
	int fd = open(tmp, O_RDWR);
	assert_true(fd >= 0);
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->m, NULL);
	assert_int_equal(pm_vdev_from_fd(&w->inner, fd, false), 0);
	close(fd);
	*v = (struct pm_vdev){ .ops = &wrap_ops, .size = size, .priv = w };
	tgtenv_add_vdev(e, name, v);
}

static void ops_are(struct wrap *w, unsigned from, const char *ops, const uint64_t *offs)
{
	assert_int_equal(w->n - from, strlen(ops));
	for (unsigned i = 0; ops[i]; i++) {
		assert_int_equal(w->ops[from + i], ops[i]);
		if (ops[i] == 'W')
			assert_int_equal(w->off[from + i], offs[i]);
	}
}

/* The kernel's commit order on the COW: the data chunk, a flush, (the next area zeroed when this one
 * is full,) the area, a flush; only then the origin is written. */
static void test_commit_order(void **state)
{
	struct tgtenv e;
	struct wrap w;
	struct pm_vdev v;
	struct pm_dtab *tb, *org;
	char o[256];
	static uint8_t buf[64 * SECT], got[SECT];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 64 * CB, fill_a, o);
	wrap_file(&e, "7:1", 128 * CB, NULL, NULL, &w, &v);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 8\n");
	/* a new store: the header chunk, area 0 zeroed */
	assert_true(w.n >= 2 && w.ops[0] == 'W' && w.off[0] == 0);
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	unsigned n0 = w.n;
	memset(buf, 0x17, CB);
	assert_int_equal(pm_dtab_write(org, 5 * CB, buf, SECT), 0);
	ops_are(&w, n0, "WFWF", (const uint64_t[]){ 2 * CB, 0, 1 * CB, 0 });
	assert_int_equal(w.len[n0], CB);
	assert_int_equal(w.len[n0 + 2], CB);
	n0 = w.n;
	assert_int_equal(pm_dtab_write(tb, 9 * CB, buf, CB), 0); /* a whole chunk: no copy */
	ops_are(&w, n0, "WFWF", (const uint64_t[]){ 3 * CB, 0, 1 * CB, 0 });
	n0 = w.n;
	assert_int_equal(pm_dtab_write(tb, 9 * CB, buf, SECT), 0); /* remapped: straight to its chunk */
	ops_are(&w, n0, "W", (const uint64_t[]){ 3 * CB });
	file_bytes(o, 5 * CB, got, SECT);
	assert_memory_equal(got, buf, SECT);
	/* an origin write within a chunk, then one over two chunks: the copies of one write are
	 * committed together */
	n0 = w.n;
	assert_int_equal(pm_dtab_write(org, 20 * CB, buf, 3 * SECT), 0);
	assert_int_equal(pm_dtab_write(org, 20 * CB + 2 * CB - SECT, buf, 3 * SECT), 0);
	ops_are(&w, n0, "WFWFWWFWF", (const uint64_t[]){ 4 * CB, 0, 1 * CB, 0, 5 * CB, 6 * CB, 0, 1 * CB, 0 });
	drop(&e, org);
	drop(&e, tb);

	/* one-sector chunks: the 32nd exception fills area 0; area 1 (chunk 34) is zeroed before area 0
	 * is written */
	memset(buf, 0, SECT);
	assert_int_equal(pm_vdev_write(&v, 0, buf, SECT), 0);
	tb = live(&e, "0 512 snapshot 7:0 7:1 P 1\n");
	for (int i = 0; i < 31; i++)
		assert_int_equal(pm_dtab_write(tb, (uint64_t)i * SECT, buf, SECT), 0);
	n0 = w.n;
	assert_int_equal(pm_dtab_write(tb, 31 * SECT, buf, SECT), 0);
	ops_are(&w, n0, "WFWWF", (const uint64_t[]){ 33 * SECT, 0, 34 * SECT, 1 * SECT, 0 });
	n0 = w.n;
	assert_int_equal(pm_dtab_write(tb, 32 * SECT, buf, SECT), 0);
	ops_are(&w, n0, "WFWF", (const uint64_t[]){ 35 * SECT, 0, 34 * SECT, 0 });
	/* a batch filling area 1 on the way: 32 data chunks, a flush, area 2 (chunk 67) zeroed, area 1
	 * written, a flush, area 2 written, a flush */
	org = live(&e, "0 512 snapshot-origin 7:0\n");
	n0 = w.n;
	assert_int_equal(pm_dtab_write(org, 100 * SECT, buf, 33 * SECT), 0);
	assert_int_equal(w.n - n0, 33 + 6);
	for (unsigned i = 0; i < 31; i++)
		assert_true(w.ops[n0 + i] == 'W' && w.off[n0 + i] == (36 + i) * SECT);
	assert_true(w.ops[n0 + 31] == 'W' && w.off[n0 + 31] == 68 * SECT);
	assert_true(w.ops[n0 + 32] == 'W' && w.off[n0 + 32] == 69 * SECT);
	ops_are(&w, n0 + 33, "FWWFWF", (const uint64_t[]){ 0, 67 * SECT, 34 * SECT, 0, 67 * SECT, 0 });
	drop(&e, org);
	drop(&e, tb);
	pm_vdev_close(&w.inner);
	tgtenv_cleanup(&e);
}

/* ---- threads: origin writes racing snapshot reads and writes ---- */

enum { CC_SECTORS = 8192, CC_SNAPW = 7168 /* snapshot writes from this sector on */ };

struct cc {
	struct pm_dtab *snap, *org;
	const uint8_t *orig;
	uint8_t *snapwant;        /* what the snapshot writer wrote (its own region) */
	unsigned seed;
	int bad;
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void *cc_origin_writer(void *arg)
{
	struct cc *c = arg;
	uint8_t buf[16 * SECT];

	for (int i = 0; i < 300; i++) {
		unsigned n = 1 + rnd(&c->seed) % 16, s = rnd(&c->seed) % (CC_SECTORS - n);
		memset(buf, (int)rnd(&c->seed), sizeof(buf));
		if (pm_dtab_write(c->org, (uint64_t)s * SECT, buf, n * SECT))
			c->bad++;
	}
	return NULL;
}

static void *cc_reader(void *arg)
{
	struct cc *c = arg;
	uint8_t buf[16 * SECT];

	for (int i = 0; i < 1500; i++) {
		unsigned n = 1 + rnd(&c->seed) % 16, s = rnd(&c->seed) % (CC_SNAPW - n);
		if (pm_dtab_read(c->snap, (uint64_t)s * SECT, buf, n * SECT) ||
		    memcmp(buf, c->orig + (uint64_t)s * SECT, n * SECT))
			c->bad++;
	}
	return NULL;
}

static void *cc_snap_writer(void *arg)
{
	struct cc *c = arg;
	uint8_t buf[8 * SECT];

	for (int i = 0; i < 200; i++) {
		unsigned n = 1 + rnd(&c->seed) % 8, s = CC_SNAPW + rnd(&c->seed) % (CC_SECTORS - CC_SNAPW - n);
		memset(buf, (int)rnd(&c->seed), sizeof(buf));
		if (pm_dtab_write(c->snap, (uint64_t)s * SECT, buf, n * SECT))
			c->bad++;
		else
			memcpy(c->snapwant + (uint64_t)s * SECT, buf, n * SECT);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct tgtenv e;
	char o[256], cw[256];
	static uint8_t orig[CC_SECTORS * SECT], want[CC_SECTORS * SECT], got[CC_SECTORS * SECT], chunk[CB];
	struct cc c[5];
	pthread_t th[5];
	void *(*fn[5])(void *) = { cc_origin_writer, cc_origin_writer, cc_reader, cc_reader, cc_snap_writer };
	struct cow_view *v = malloc(sizeof(*v));

	(void)state;
	struct wrap w;
	struct pm_vdev wv;

	tgtenv_init(&e);
	/* the origin's reads slowed down: a snapshot read that looked up its chunk unlocked would often
	 * read it after an origin write */
	wrap_file(&e, "7:0", CC_SECTORS * SECT, fill_a, o, &w, &wv);
	w.delay_us = 50;
	tgtenv_file(&e, "7:1", (CC_SECTORS / CHUNK + 16) * CB, NULL, cw);
	file_bytes(o, 0, orig, sizeof(orig));
	memcpy(want, orig, sizeof(want));
	struct pm_dtab *snap = live(&e, "0 8192 snapshot 7:0 7:1 P 8\n");
	struct pm_dtab *org = live(&e, "0 8192 snapshot-origin 7:0\n");
	for (int i = 0; i < 5; i++) {
		c[i] = (struct cc){ .snap = snap, .org = org, .orig = orig, .snapwant = want, .seed = 17u * (unsigned)i + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, fn[i], &c[i]), 0);
	}
	for (int i = 0; i < 5; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].bad, 0);
	}
	/* the snapshot: the origin as it was, and its own writes */
	assert_int_equal(pm_dtab_read(snap, 0, got, sizeof(got)), 0);
	assert_memory_equal(got, want, sizeof(got));
	file_bytes(o, 0, got, sizeof(got));
	assert_int_not_equal(memcmp(orig, got, sizeof(got)), 0); /* the origin did change */
	/* the COW read as the kernel would: every exception once, the data of the ones made by origin
	 * writes the origin's old chunk */
	parse_cow(cw, v);
	assert_int_equal(v->valid, 1);
	assert_true(v->n > 100);
	for (size_t i = 0; i < v->n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_true(v->old[j] != v->old[i] && v->new[j] != v->new[i]);
		if (v->old[i] * CHUNK + CHUNK <= CC_SNAPW) {
			file_bytes(cw, v->new[i] * CB, chunk, CB);
			assert_memory_equal(chunk, orig + v->old[i] * CB, CB);
		}
	}
	drop(&e, org);
	drop(&e, snap);
	pm_vdev_close(&w.inner);
	free(v);
	tgtenv_cleanup(&e);
}

/* Readers spinning on the chunk an origin write is about to change (the origin slow to read, so a
 * read is in flight whenever the copy completes): they must see the old data every time. */
struct hot {
	struct pm_dtab *snap;
	const uint8_t *orig;
	unsigned chunk;           /* atomic; HOT_N: stop */
	int bad;
};

enum { HOT_N = 48 };

static void *hot_reader(void *arg)
{
	struct hot *h = arg;
	uint8_t buf[CB];
	unsigned c;

	while ((c = __atomic_load_n(&h->chunk, __ATOMIC_ACQUIRE)) < HOT_N) {
		if (pm_dtab_read(h->snap, (uint64_t)c * CB, buf, CB) || memcmp(buf, h->orig + (uint64_t)c * CB, CB))
			__atomic_add_fetch(&h->bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_race_hot(void **state)
{
	struct tgtenv e;
	struct wrap w;
	struct pm_vdev wv;
	char o[256];
	static uint8_t orig[HOT_N * CB], buf[CB];
	pthread_t th[3];
	struct hot h = { .orig = orig };

	(void)state;
	tgtenv_init(&e);
	wrap_file(&e, "7:0", HOT_N * CB, fill_a, o, &w, &wv);
	w.delay_us = 300;
	tgtenv_file(&e, "7:1", (HOT_N + 8) * CB, NULL, NULL);
	file_bytes(o, 0, orig, sizeof(orig));
	h.snap = live(&e, "0 384 snapshot 7:0 7:1 N 8\n");
	struct pm_dtab *org = live(&e, "0 384 snapshot-origin 7:0\n");
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hot_reader, &h), 0);
	memset(buf, 0xee, sizeof(buf));
	for (unsigned c = 0; c < HOT_N; c++) {
		__atomic_store_n(&h.chunk, c, __ATOMIC_RELEASE);
		usleep(2000);
		assert_int_equal(pm_dtab_write(org, (uint64_t)c * CB + SECT, buf, SECT), 0);
		usleep(1000);
	}
	__atomic_store_n(&h.chunk, HOT_N, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(h.bad, 0);
	drop(&e, org);
	drop(&e, h.snap);
	pm_vdev_close(&w.inner);
	tgtenv_cleanup(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_point_b),
		cmocka_unit_test(test_point_a),
		cmocka_unit_test(test_handmade_store),
		cmocka_unit_test(test_areas),
		cmocka_unit_test(test_full_invalid),
		cmocka_unit_test(test_full_overflow),
		cmocka_unit_test(test_transient),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_commit_order),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_race_hot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
