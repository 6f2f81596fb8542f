/* Unit tests of the userspace device-mapper table: building (the kernel's refusals and messages),
 * I/O routed through linear, striped, zero and error targets checked byte by byte against the
 * files underneath, status and table text as the kernel prints them, sources opened once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgtenv.h"
#include "dm.h"

static void status_is(struct pm_dtab *tb, bool table, size_t i, const char *want)
{
	char *s = tgtenv_status(tb, table, i);
	assert_string_equal(s, want);
	free(s);
}

static void test_linear_zero_error(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], a[256];
	uint8_t buf[8192], want[8192];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 20, tgtenv_fill_a, a);
	assert_int_equal(tgtenv_build(&e, "0 8 linear 7:0 100\n8 8 zero\n16 8 error\n24 8 linear 7:0 0\n", false, &tb,
				      err, sizeof(err)), 0);
	assert_int_equal(tb->sectors, 32);
	assert_int_equal(tb->nsrc, 1); /* one open for two targets */
	assert_int_equal(e.opens, 1);
	/* a read across linear and zero */
	assert_int_equal(pm_dtab_read(tb, 0, buf, 8192), 0);
	tgtenv_pread(a, 100 * 512, want, 4096);
	assert_memory_equal(buf, want, 4096);
	for (int i = 4096; i < 8192; i++)
		assert_int_equal(buf[i], 0);
	/* error, and a read that touches it */
	assert_int_equal(pm_dtab_read(tb, 16 * 512, buf, 512), -EIO);
	assert_int_equal(pm_dtab_read(tb, 12 * 512, buf, 4096), -EIO);
	/* writes: through linear to the file; dropped by zero */
	memset(buf, 0xab, 1024);
	assert_int_equal(pm_dtab_write(tb, 24 * 512 + 1024, buf, 1024), 0);
	tgtenv_pread(a, 1024, want, 1024);
	assert_memory_equal(buf, want, 1024);
	assert_int_equal(pm_dtab_write(tb, 8 * 512, buf, 1024), 0);
	assert_int_equal(pm_dtab_read(tb, 8 * 512, want, 1024), 0);
	assert_int_equal(want[0], 0);
	/* unaligned requests and past the end */
	assert_int_equal(pm_dtab_read(tb, 1, buf, 512), -EINVAL);
	assert_int_equal(pm_dtab_read(tb, 31 * 512, buf, 1024), -ERANGE);
	status_is(tb, true, 0, "7:0 100");
	status_is(tb, true, 1, "");
	status_is(tb, false, 0, "");
	assert_int_equal(pm_dtab_flush(tb), 0);
	pm_dtab_free(tb);
	assert_int_equal(e.opens, 0);
	tgtenv_cleanup(&e);
}

static void test_linear_past_device(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256];
	uint8_t buf[1024];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 4096, tgtenv_fill_a, NULL);
	/* the kernel loads a table longer than its device; the I/O past the device's end fails */
	assert_int_equal(tgtenv_build(&e, "0 16 linear 7:0 4\n", false, &tb, err, sizeof(err)), 0);
	assert_int_equal(pm_dtab_read(tb, 0, buf, 1024), 0);
	assert_int_equal(pm_dtab_read(tb, 3 * 512, buf, 1024), -EIO);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *table, *err;
	} cases[] = {
		{ "0 8 linear 7:0\n", "linear: Invalid argument count" },
		{ "0 8 linear 7:0 x\n", "linear: Invalid device sector" },
		{ "0 8 linear 7:0 -1\n", "linear: Invalid device sector" },
		{ "0 8 linear 9:9 0\n", "linear: Device lookup failed" },
		{ "0 8 zero 1\n", "zero: No arguments required" },
		{ "0 8 nosuch\n", "table: nosuch: unknown target type" },
		{ "0 9 striped 2 4 7:0 0 7:1 0\n", "striped: Target length not divisible by number of stripes" },
		{ "0 12 striped 2 4 7:0 0 7:1 0\n", "striped: Target length not divisible by chunk size" },
		{ "0 16 striped 2 4 7:0 0\n", "striped: Not enough destinations specified" },
		{ "0 16 striped 0 4\n", "striped: Invalid stripe count" },
		{ "0 16 striped 2 0 7:0 0 7:1 0\n", "striped: Invalid chunk_size" },
		{ "0 16 striped 1\n", "striped: Not enough arguments" },
		{ "0 16 striped 2 4 7:0 0 7:1 z\n", "striped: Couldn't parse stripe destination" },
		{ "0 8 linear 7:0 0\n8 8 linear 7:0 q\n", "linear: Invalid device sector" },
	};
	struct tgtenv e;
	char err[256];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:1", 1 << 16, NULL, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(tgtenv_refused(&e, cases[i].table, err, sizeof(err))); /* nothing left open */
		assert_string_equal(err, cases[i].err);
	}
	tgtenv_cleanup(&e);
}

static void test_striped(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], a[256], b[256];
	enum { CHUNK = 3, LEN = 2 * CHUNK * 40 };
	static uint8_t buf[LEN * 512], want[512];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 20, tgtenv_fill_a, a);
	tgtenv_file(&e, "7:1", 1 << 20, tgtenv_fill_b, b);
	/* an odd chunk size (the current kernel allows any), the stripes at different offsets */
	assert_int_equal(tgtenv_build(&e, "0 240 striped 2 3 7:0 10 7:1 20\n", false, &tb, err, sizeof(err)), 0);
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	for (uint64_t s = 0; s < LEN; s++) {
		uint64_t chunk = s / CHUNK, stripe = chunk % 2, row = chunk / 2;
		uint64_t dev_sector = (stripe ? 20 : 10) + row * CHUNK + s % CHUNK;
		tgtenv_pread(stripe ? b : a, dev_sector * 512, want, 512);
		assert_memory_equal(buf + s * 512, want, 512);
	}
	/* a write across chunks lands on both */
	memset(buf, 0x5a, 4 * 512);
	assert_int_equal(pm_dtab_write(tb, 2 * 512, buf, 4 * 512), 0);
	tgtenv_pread(a, 12 * 512, want, 512); /* sector 2: stripe 0, row 0 */
	assert_int_equal(want[0], 0x5a);
	tgtenv_pread(b, 20 * 512, want, 512); /* sectors 3..5: stripe 1, row 0 */
	assert_int_equal(want[511], 0x5a);
	status_is(tb, true, 0, "2 3 7:0 10 7:1 20");
	status_is(tb, false, 0, "2 7:0 7:1 1 AA");
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* Sector s of a 3-stripe table of `chunk`-sector chunks, stripe k at sector base * (k + 1) of
 * path[k], as its file holds it */
static void stripes3_sector(char path[3][256], uint64_t chunk, uint64_t base, uint64_t s, uint8_t *out)
{
	uint64_t c = s / chunk;
	unsigned stripe = (unsigned)(c % 3);

	tgtenv_pread(path[stripe], (base * (stripe + 1) + c / 3 * chunk + s % chunk) * 512, out, 512);
}

struct req {
	uint64_t off, len; /* sectors */
};

/* Each request read and compared with the files sector by sector; then each written (every sector
 * its number) and every sector found in its file; the sector before each stripe's start untouched.
 * Stripe 1's file is filled with tgtenv_fill_b, the others with tgtenv_fill_a. */
static void stripes3_check(struct pm_dtab *tb, char path[3][256], uint64_t chunk, uint64_t base,
			   const struct req *reqs, size_t n, uint8_t *buf, size_t buflen)
{
	uint8_t want[512];

	for (size_t i = 0; i < n; i++) {
		assert_true(reqs[i].len * 512 <= buflen);
		memset(buf, 0, reqs[i].len * 512);
		assert_int_equal(pm_dtab_read(tb, reqs[i].off * 512, buf, reqs[i].len * 512), 0);
		for (uint64_t s = 0; s < reqs[i].len; s++) {
			stripes3_sector(path, chunk, base, reqs[i].off + s, want);
			assert_memory_equal(buf + s * 512, want, 512);
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (uint64_t s = 0; s < reqs[i].len; s++)
			memset(buf + s * 512, (int)((reqs[i].off + s + i) & 0xff), 512);
		assert_int_equal(pm_dtab_write(tb, reqs[i].off * 512, buf, reqs[i].len * 512), 0);
		for (uint64_t s = 0; s < reqs[i].len; s++) {
			stripes3_sector(path, chunk, base, reqs[i].off + s, want);
			assert_int_equal(want[0], (reqs[i].off + s + i) & 0xff);
			assert_int_equal(want[511], (reqs[i].off + s + i) & 0xff);
		}
	}
	for (unsigned st = 0; st < 3; st++) {
		uint64_t at = (base * (st + 1) - 1) * 512;
		tgtenv_pread(path[st], at, want, 512);
		assert_int_equal(want[0], st == 1 ? tgtenv_fill_b(at) : tgtenv_fill_a(at));
	}
}

/* Requests spanning many chunks, starting and ending inside chunks, each stripe's pieces gathered into
 * one vectored request: every sector from (and to) the right place. The third stripe is another
 * table (a vdev with no vectored calls: one request a piece). */
static void test_striped_gather(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb, *inner;
	struct pm_vdev iv;
	char err[256], path[3][256];
	enum { LEN = 900 }; /* sectors: 180 chunks, more than one call takes */
	static uint8_t buf[LEN * 512];
	static const struct req reqs[] = {
		{ 0, LEN }, { 1, 3 }, { 4, 2 }, { 3, 400 }, { 7, 13 }, { 5, 15 }, { 14, 331 }, { 899, 1 }, { 100, 800 },
	};

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 20, tgtenv_fill_a, path[0]);
	tgtenv_file(&e, "7:1", 1 << 20, tgtenv_fill_b, path[1]);
	tgtenv_file(&e, "7:2", 1 << 20, tgtenv_fill_a, path[2]);
	assert_int_equal(tgtenv_build(&e, "0 2048 linear 7:2 0\n", false, &inner, err, sizeof(err)), 0);
	pm_dtab_vdev(inner, &iv);
	tgtenv_add_vdev(&e, "inner", &iv);
	assert_int_equal(tgtenv_build(&e, "0 900 striped 3 5 7:0 10 7:1 20 inner 30\n", false, &tb, err, sizeof(err)), 0);
	stripes3_check(tb, path, 5, 10, reqs, sizeof(reqs) / sizeof(reqs[0]), buf, sizeof(buf));
	char *st = tgtenv_status(tb, false, 0); /* the inner table shows as the number it was given */
	assert_non_null(st);
	assert_true(strlen(st) > 6 && !strcmp(st + strlen(st) - 6, " 1 AAA"));
	free(st);
	pm_dtab_free(tb);
	pm_dtab_free(inner);
	tgtenv_cleanup(&e);
}

/* Requests of 256 KiB and more have their stripes read and written at once, by the target's helper
 * threads (src/par.c): requests of 288 KiB to 3.75 MiB over three stripes of 32 KiB chunks, starting
 * and ending inside chunks. */
static void test_striped_parallel(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], path[3][256];
	enum { LEN = 3 * 64 * 40 }; /* sectors: 40 rows, 3.75 MiB */
	static uint8_t buf[LEN * 512];
	static const struct req reqs[] = {
		{ 0, 2048 }, { 37, 1500 }, { 1000, 3000 }, { 64, 576 }, { 5, 4000 }, { 0, LEN },
	};

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 4 << 20, tgtenv_fill_a, path[0]);
	tgtenv_file(&e, "7:1", 4 << 20, tgtenv_fill_b, path[1]);
	tgtenv_file(&e, "7:2", 4 << 20, tgtenv_fill_a, path[2]);
	assert_int_equal(tgtenv_build(&e, "0 7680 striped 3 64 7:0 8 7:1 16 7:2 24\n", false, &tb, err, sizeof(err)), 0);
	stripes3_check(tb, path, 64, 8, reqs, sizeof(reqs) / sizeof(reqs[0]), buf, sizeof(buf));
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_striped_error_status(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256];
	uint8_t buf[512];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:1", 4096, NULL, NULL); /* too short: its I/O past 8 sectors fails */
	assert_int_equal(tgtenv_build(&e, "0 64 striped 2 8 7:0 0 7:1 0\n", false, &tb, err, sizeof(err)), 0);
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), 0);
	assert_int_not_equal(pm_dtab_read(tb, 24 * 512, buf, 512), 0); /* stripe 1, row 1 */
	status_is(tb, false, 0, "2 7:0 7:1 1 AD");
	assert_int_equal(e.events, 1);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_split_args(void **state)
{
	unsigned argc;
	char **argv;

	(void)state;
	assert_int_equal(pm_split_args("  a\tb\\ c  d\\\\ ", &argc, &argv), 0);
	assert_int_equal(argc, 3);
	assert_string_equal(argv[0], "a");
	assert_string_equal(argv[1], "b c");
	assert_string_equal(argv[2], "d\\");
	assert_null(argv[3]);
	free(argv);
	assert_int_equal(pm_split_args("", &argc, &argv), 0);
	assert_int_equal(argc, 0);
	free(argv);
}

/* the optimal I/O size, as the kernel stacks it: striped and raid set their own (a row of chunks),
 * other targets take the least common multiple of their devices', the table that of its targets */
static uint32_t fake_io_opt(void *arg, const struct pm_source *s)
{
	(void)arg;
	return !strcmp(s->name, "7:2") ? 12288 : !strcmp(s->name, "7:3") ? 8192 : 0;
}

static void test_io_opt(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], path[256];
	static const struct { const char *text; uint32_t io_opt; } cases[] = {
		{ "0 64 linear 7:0 0", 0 },
		{ "0 64 zero", 0 },
		{ "0 512 striped 2 128 7:0 0 7:1 0", 131072 },
		{ "0 96 striped 3 8 7:0 0 7:1 0 7:2 0", 12288 },
		{ "0 64 linear 7:2 0", 12288 },
		{ "0 64 linear 7:2 0\n64 64 linear 7:3 0", 24576 },
		{ "0 64 zero\n64 512 striped 2 128 7:0 0 7:1 0", 131072 },
		{ "0 64 linear 7:2 0\n64 512 striped 2 128 7:0 0 7:1 0", 393216 },
		{ "0 64 mirror core 1 8 2 7:2 0 7:3 0", 24576 },
		{ "0 512 raid raid5_ls 1 128 3 - 7:0 - 7:1 - 7:2", 131072 },
		{ "0 512 raid raid4 1 64 5 - 7:0 - 7:1 - 7:2 - 7:3 - 7:4", 131072 },
	};

	(void)state;
	tgtenv_init(&e);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "7:%d", i);
		tgtenv_file(&e, name, 1 << 20, NULL, path);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tgtenv_build(&e, cases[i].text, false, &tb, err, sizeof(err)), 0);
		if (pm_dtab_io_opt(tb, fake_io_opt, NULL) != cases[i].io_opt)
			fail_msg("%s: io_opt %u, not %u", cases[i].text, pm_dtab_io_opt(tb, fake_io_opt, NULL),
				 cases[i].io_opt);
		pm_dtab_free(tb);
	}
	assert_int_equal(e.opens, 0);
	tgtenv_cleanup(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_zero_error),
		cmocka_unit_test(test_linear_past_device),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_striped),
		cmocka_unit_test(test_striped_gather),
		cmocka_unit_test(test_striped_parallel),
		cmocka_unit_test(test_striped_error_status),
		cmocka_unit_test(test_split_args),
		cmocka_unit_test(test_io_opt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
