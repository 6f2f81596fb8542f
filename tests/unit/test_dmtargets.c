/* Unit tests of the mirror, delay and flakey targets over files (tgtenv): the bytes each one
 * reads and writes checked against the files, every refusal with the kernel's message, the status
 * and table text as the kernel prints them, the mirror's resync and failures, the delay's hold and
 * release, flakey's up and down intervals and features. Timing is checked loosely only. */
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
#include <time.h>
#include <unistd.h>

#include "tgtenv.h"
#include "dm.h"
#include "util.h"

static void status_is(struct pm_dtab *tb, bool table, size_t i, const char *want)
{
	char *s = tgtenv_status(tb, table, i);
	assert_string_equal(s, want);
	free(s);
}

/* poll the status (every 10 ms, up to 10 s) until it reads want */
static void status_becomes(struct pm_dtab *tb, bool table, const char *want)
{
	char *s = NULL;

	for (int i = 0; i < 1000; i++) {
		free(s);
		s = tgtenv_status(tb, table, 0);
		if (!strcmp(s, want))
			break;
		pm_sleep_ms(10);
	}
	assert_string_equal(s, want);
	free(s);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* an environment with 7:0 (tgtenv_fill_a) and 7:1 (tgtenv_fill_b) of these sizes */
static void two_devs(struct tgtenv *e, uint64_t s0, uint64_t s1, char *a, char *b)
{
	tgtenv_init(e);
	tgtenv_file(e, "7:0", s0, tgtenv_fill_a, a);
	tgtenv_file(e, "7:1", s1, tgtenv_fill_b, b);
}

/* presuspend, then free */
static void done(struct pm_dtab *tb)
{
	pm_dtab_presuspend(tb);
	pm_dtab_free(tb);
}

static struct pm_dtab *build(struct tgtenv *e, const char *table)
{
	struct pm_dtab *tb;
	char err[256];

	if (tgtenv_build(e, table, false, &tb, err, sizeof(err)))
		fail_msg("table \"%s\": %s", table, err);
	return tb;
}

/* every refusal with the kernel's message, and nothing left open */
static void test_refusals(void **state)
{
	static const struct {
		const char *table, *err;
	} cases[] = {
		{ "0 8 flakey 7:0 0 1\n", "flakey: Invalid argument count" },
		{ "0 8 flakey 7:0 x 1 1\n", "flakey: Invalid device sector" },
		{ "0 8 flakey 7:0 0 x 1\n", "flakey: Invalid up interval" },
		{ "0 8 flakey 7:0 0 -1 1\n", "flakey: Invalid up interval" },
		{ "0 8 flakey 7:0 0 1 x\n", "flakey: Invalid down interval" },
		{ "0 8 flakey 7:0 0 0 0\n", "flakey: Total (up + down) interval is zero" },
		{ "0 8 flakey 7:0 0 4294967295 1\n", "flakey: Total (up + down) interval is zero" }, /* wraps */
		{ "0 8 flakey 7:0 0 4294967295 2\n", "flakey: Interval overflow" },
		{ "0 8 flakey 7:0 0 1 1 12 a b c d e f g h i j k l\n", "flakey: Invalid number of feature args" },
		{ "0 8 flakey 7:0 0 1 1 2 drop_writes\n", "flakey: Invalid number of feature args" },
		{ "0 8 flakey 7:0 0 1 1 1 bogus\n", "flakey: Unrecognised flakey feature requested" },
		{ "0 8 flakey 7:0 0 1 1 2 drop_writes drop_writes\n", "flakey: Feature drop_writes duplicated" },
		{ "0 8 flakey 7:0 0 1 1 2 error_reads ERROR_READS\n", "flakey: Feature error_reads duplicated" },
		{ "0 8 flakey 7:0 0 1 1 2 drop_writes error_writes\n",
		  "flakey: Feature error_writes conflicts with feature drop_writes" },
		{ "0 8 flakey 7:0 0 1 1 2 error_writes drop_writes\n",
		  "flakey: Feature drop_writes conflicts with feature error_writes" },
		{ "0 8 flakey 7:0 0 1 1 4 corrupt_bio_byte 1 r 0\n",
		  "flakey: Feature corrupt_bio_byte requires 4 parameters" },
		{ "0 8 flakey 7:0 0 1 1 5 corrupt_bio_byte 0 r 0 0\n", "flakey: Invalid corrupt bio byte" },
		{ "0 8 flakey 7:0 0 1 1 5 corrupt_bio_byte 1 x 0 0\n", "flakey: Invalid corrupt bio direction (r or w)" },
		{ "0 8 flakey 7:0 0 1 1 5 corrupt_bio_byte 1 r 256 0\n",
		  "flakey: Invalid corrupt value to write into bio byte (0-255)" },
		{ "0 8 flakey 7:0 0 1 1 5 corrupt_bio_byte 1 r 0 -1\n", "flakey: Invalid corrupt bio flags mask" },
		{ "0 8 flakey 7:0 0 1 1 10 corrupt_bio_byte 1 r 0 0 corrupt_bio_byte 2 r 0 0\n",
		  "flakey: Feature corrupt_bio_byte duplicated" },
		{ "0 8 flakey 7:0 0 1 1 6 drop_writes corrupt_bio_byte 1 w 0 0\n",
		  "flakey: drop_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set" },
		{ "0 8 flakey 7:0 0 1 1 3 error_writes random_write_corrupt 5\n",
		  "flakey: error_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set" },
		{ "0 8 flakey 7:0 0 1 1 6 error_reads corrupt_bio_byte 1 r 0 0\n",
		  "flakey: error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set" },
		{ "0 8 flakey 7:0 0 1 1 2 random_read_corrupt 1000000001\n", "flakey: Invalid random corrupt argument" },
		{ "0 8 flakey 7:0 0 1 1 1 random_read_corrupt\n", "flakey: Feature random_read_corrupt requires a parameter" },
		{ "0 8 flakey 7:0 0 1 1 4 random_write_corrupt 1 random_write_corrupt 2\n",
		  "flakey: Feature random_write_corrupt duplicated" },
		{ "0 8 flakey 9:9 0 1 1\n", "flakey: Device lookup failed" },
		{ "0 8 delay 7:0 0\n", "delay: Requires exactly 3, 6 or 9 arguments" },
		{ "0 8 delay 7:0 0 1 7:1 0\n", "delay: Requires exactly 3, 6 or 9 arguments" },
		{ "0 8 delay 7:0 x 10\n", "delay: Invalid device sector" },
		{ "0 8 delay 7:0 0 1x\n", "delay: Invalid delay" },
		{ "0 8 delay 7:0 0 -5\n", "delay: Invalid delay" },
		{ "0 8 delay 9:9 0 10\n", "delay: Device lookup failed" },
		{ "0 8 delay 7:0 0 10 7:1 y 10\n", "delay: Invalid device sector" },
		{ "0 8 delay 7:0 0 10 7:1 0 z\n", "delay: Invalid delay" },
		{ "0 8 delay 7:0 0 10 7:1 0 10 9:9 0 0\n", "delay: Device lookup failed" },
		{ "0 64 mirror\n", "mirror: Insufficient mirror log arguments" },
		{ "0 64 mirror core 1\n", "mirror: Insufficient mirror log arguments" },
		{ "0 64 mirror core x 8 2 7:0 0 7:1 0\n", "mirror: Invalid mirror log argument count" },
		{ "0 64 mirror core 1 7 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror core 1 1 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror core 1 128 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror core 2 8 maybe 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror core 3 8 sync x 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror foo 1 8 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror disk 1 8 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror disk 2 9:9 8 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" },
		{ "0 64 mirror disk 2 7:3 8 2 7:0 0 7:1 0\n", "mirror: Error creating mirror dirty log" }, /* too small */
		{ "0 64 mirror core 1 8 1 7:0 0\n", "mirror: Invalid number of mirrors" },
		{ "0 64 mirror core 1 8 10 7:0 0 7:1 0\n", "mirror: Invalid number of mirrors" },
		{ "0 64 mirror core 1 8\n", "mirror: Invalid number of mirrors" },
		{ "0 64 mirror core 1 8 2 7:0 0\n", "mirror: Too few mirror arguments" },
		{ "0 64 mirror core 1 8 2 7:0 x 7:1 0\n", "mirror: Invalid offset" },
		{ "0 64 mirror core 1 8 2 7:0 0 9:9 0\n", "mirror: Device lookup failure" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 x\n", "mirror: Invalid number of features" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 2 handle_errors\n",
		  "mirror: Not enough arguments to support feature count" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 1 bogus\n", "mirror: Unrecognised feature requested" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 1 keep_log\n",
		  "mirror: keep_log feature requires the handle_errors feature" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 1 handle_errors extra\n", "mirror: Too many mirror arguments" },
		{ "0 64 mirror core 1 8 2 7:0 0 7:1 0 7:2 0\n", "mirror: Invalid number of features" },
	};
	struct tgtenv e;
	char err[256];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:1", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:2", 1 << 16, NULL, NULL);
	tgtenv_file(&e, "7:3", 1024, NULL, NULL); /* a mirror log's header only: no room for the bitmap */
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (!tgtenv_refused(&e, cases[i].table, err, sizeof(err)) || strcmp(err, cases[i].err))
			fail_msg("table \"%s\": got \"%s\", want \"%s\"", cases[i].table, err, cases[i].err);
	tgtenv_cleanup(&e);
}

/* ---- flakey ---- */

static void test_flakey_table(void **state)
{
	static const struct {
		const char *params, *table;
	} cases[] = {
		/* no features: every I/O fails while down, which the kernel shows as two features */
		{ "7:0 8 10 5", "7:0 8 10 5 2 error_reads error_writes" },
		{ "7:0 8 10 5 0", "7:0 8 10 5 2 error_reads error_writes" },
		{ "7:0 0 1 1 1 DROP_WRITES", "7:0 0 1 1 1 drop_writes" },
		{ "7:0 0 1 1 2 error_writes error_reads", "7:0 0 1 1 2 error_reads error_writes" },
		{ "7:0 0 1 1 5 corrupt_bio_byte 32 R 1 0", "7:0 0 1 1 5 corrupt_bio_byte 32 r 1 0" },
		{ "7:0 0 1 1 6 error_writes corrupt_bio_byte 32 r 1 0", "7:0 0 1 1 6 error_writes corrupt_bio_byte 32 r 1 0" },
		{ "7:0 0 1 1 2 drop_writes error_reads", "7:0 0 1 1 2 error_reads drop_writes" },
		{ "7:0 0 1 1 4 random_read_corrupt 5 random_write_corrupt 1000000000",
		  "7:0 0 1 1 4 random_read_corrupt 5 random_write_corrupt 1000000000" },
	};
	struct tgtenv e;
	char text[256];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "0 8 flakey %s\n", cases[i].params);
		struct pm_dtab *tb = build(&e, text);
		status_is(tb, true, 0, cases[i].table);
		status_is(tb, false, 0, "");
		pm_dtab_free(tb);
	}
	tgtenv_cleanup(&e);
}

/* up 0 s: always down; down 0 s: always up */
static void test_flakey_down(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256];
	uint8_t buf[4096], want[4096], orig[4096];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, tgtenv_fill_a, a);
	tgtenv_pread(a, 8 * 512, orig, sizeof(orig));

	/* always up: a plain mapping */
	tb = build(&e, "0 64 flakey 7:0 8 1 0\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	memset(buf, 0x11, 512);
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), 0);
	tgtenv_pread(a, 8 * 512, want, 512);
	assert_memory_equal(want, buf, 512);
	tgtenv_pwrite(a, 8 * 512, orig, 512);
	pm_dtab_free(tb);

	/* down without features: everything fails, the file is untouched */
	tb = build(&e, "0 64 flakey 7:0 8 0 1\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), -EIO);
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), -EIO);
	assert_int_equal(pm_dtab_flush(tb), -EIO);
	tgtenv_pread(a, 8 * 512, want, 512);
	assert_memory_equal(want, orig, 512);
	pm_dtab_free(tb);

	/* drop_writes: writes succeed without being written, reads work */
	tb = build(&e, "0 64 flakey 7:0 8 0 1 1 drop_writes\n");
	memset(buf, 0x22, 1024);
	assert_int_equal(pm_dtab_write(tb, 512, buf, 1024), 0);
	assert_int_equal(pm_dtab_flush(tb), 0);
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	pm_dtab_free(tb);

	/* error_writes alone: reads work */
	tb = build(&e, "0 64 flakey 7:0 8 0 1 1 error_writes\n");
	assert_int_equal(pm_dtab_write(tb, 512, buf, 512), -EIO);
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	pm_dtab_free(tb);

	/* error_reads alone: writes land */
	tb = build(&e, "0 64 flakey 7:0 8 0 1 1 error_reads\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), -EIO);
	memset(buf, 0x33, 512);
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), 0);
	tgtenv_pread(a, 8 * 512, want, 512);
	assert_memory_equal(want, buf, 512);
	tgtenv_pwrite(a, 8 * 512, orig, 512);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_flakey_corrupt(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256];
	uint8_t buf[4096], want[4096], orig[4096];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, tgtenv_fill_a, a);
	tgtenv_pread(a, 0, orig, sizeof(orig));

	/* byte 32 of every read becomes 1; the device is unchanged */
	tb = build(&e, "0 64 flakey 7:0 0 0 1 5 corrupt_bio_byte 32 r 1 0\n");
	assert_int_equal(pm_dtab_read(tb, 1024, buf, 2048), 0);
	memcpy(want, orig + 1024, 2048);
	want[31] = 1;
	assert_memory_equal(buf, want, 2048);
	tgtenv_pread(a, 0, buf, sizeof(buf));
	assert_memory_equal(buf, orig, sizeof(buf));
	/* writes are not touched by a read corruption */
	memset(buf, 0x44, 512);
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), 0);
	tgtenv_pread(a, 0, want, 512);
	assert_memory_equal(want, buf, 512);
	tgtenv_pwrite(a, 0, orig, 512);
	pm_dtab_free(tb);

	/* byte 7 of every write becomes 0xaa on the device; the caller's buffer is left alone */
	tb = build(&e, "0 64 flakey 7:0 0 0 1 5 corrupt_bio_byte 7 w 170 0\n");
	memset(buf, 0x55, 1024);
	assert_int_equal(pm_dtab_write(tb, 512, buf, 1024), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], 0x55);
	tgtenv_pread(a, 512, want, 1024);
	assert_int_equal(want[6], 0xaa);
	want[6] = 0x55;
	assert_memory_equal(want, buf, 1024);
	/* reads are untouched */
	tgtenv_pwrite(a, 512, orig + 512, 1024);
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	pm_dtab_free(tb);

	/* flags: a read is op 0, so a mask of 1 (REQ_OP_WRITE) never matches it */
	tb = build(&e, "0 64 flakey 7:0 0 0 1 5 corrupt_bio_byte 1 r 0 1\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	pm_dtab_free(tb);

	/* random_read_corrupt with certainty: one byte at most differs */
	tb = build(&e, "0 64 flakey 7:0 0 0 1 2 random_read_corrupt 1000000000\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	int diff = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		diff += buf[i] != orig[i];
	assert_true(diff <= 1);
	pm_dtab_free(tb);

	/* up (down 0): nothing corrupted */
	tb = build(&e, "0 64 flakey 7:0 0 1 0 5 corrupt_bio_byte 32 r 1 0\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, orig, sizeof(buf));
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* 1 s up, 1 s down, counted from the table's build */
static void test_flakey_intervals(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	uint8_t buf[512];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, tgtenv_fill_a, NULL);
	double t0 = now_ms();
	tb = build(&e, "0 64 flakey 7:0 0 1 1\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), 0);      /* ~0 s: up */
	pm_sleep_ms((unsigned)(1300 - (now_ms() - t0)));
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), -EIO);   /* ~1.3 s: down */
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), -EIO);
	pm_sleep_ms((unsigned)(2300 - (now_ms() - t0)));
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), 0);      /* ~2.3 s: up again */
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* ---- delay ---- */

static void test_delay_io(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256];
	uint8_t buf[4096], want[4096];

	(void)state;
	two_devs(&e, 1 << 16, 1 << 16, a, b);

	tb = build(&e, "0 32 delay 7:0 16 200\n");
	status_is(tb, true, 0, "7:0 16 200");
	status_is(tb, false, 0, "0 0 0");
	double t = now_ms();
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_true(now_ms() - t >= 200);
	tgtenv_pread(a, 16 * 512, want, sizeof(want));
	assert_memory_equal(buf, want, sizeof(buf));
	memset(buf, 0x66, 512);
	t = now_ms();
	assert_int_equal(pm_dtab_write(tb, 512, buf, 512), 0);
	assert_true(now_ms() - t >= 200);
	tgtenv_pread(a, 17 * 512, want, 512);
	assert_memory_equal(want, buf, 512);
	t = now_ms();
	assert_int_equal(pm_dtab_flush(tb), 0);
	assert_true(now_ms() - t >= 200);
	pm_dtab_free(tb);

	/* reads from 7:0 held 200 ms, writes to 7:1 at sector 8 not held */
	tb = build(&e, "0 32 delay 7:0 0 200 7:1 8 0\n");
	status_is(tb, true, 0, "7:0 0 200 7:1 8 0");
	memset(buf, 0x77, 1024);
	assert_int_equal(pm_dtab_write(tb, 1024, buf, 1024), 0);
	tgtenv_pread(b, 10 * 512, want, 1024);
	assert_memory_equal(want, buf, 1024);
	tgtenv_pread(a, 2 * 512, want, 1024);
	assert_int_not_equal(want[0], 0x77);
	t = now_ms();
	assert_int_equal(pm_dtab_read(tb, 1024, buf, 1024), 0);
	assert_true(now_ms() - t >= 200);
	assert_memory_equal(buf, want, 1024); /* from 7:0 */
	pm_dtab_free(tb);

	tb = build(&e, "0 32 delay 7:0 0 0 7:1 8 0 7:0 4 300\n");
	status_is(tb, true, 0, "7:0 0 0 7:1 8 0 7:0 4 300");
	t = now_ms();
	assert_int_equal(pm_dtab_flush(tb), 0);
	assert_true(now_ms() - t >= 300);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

struct held {
	struct pm_dtab *tb;
	int r;
	double ms;
};

static void *held_read(void *arg)
{
	struct held *h = arg;
	uint8_t buf[512];
	double t = now_ms();

	h->r = pm_dtab_read(h->tb, 0, buf, sizeof(buf));
	h->ms = now_ms() - t;
	return NULL;
}

static void test_delay_presuspend(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	pthread_t th;
	struct held h = { 0 };
	uint8_t buf[512];

	(void)state;
	two_devs(&e, 1 << 16, 1 << 16, NULL, NULL);
	tb = build(&e, "0 32 delay 7:0 0 5000 7:1 0 0\n");
	h.tb = tb;
	assert_int_equal(pthread_create(&th, NULL, held_read, &h), 0);
	status_becomes(tb, false, "1 0 0"); /* one read held */
	pm_dtab_presuspend(tb);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(h.r, 0);
	assert_true(h.ms < 4000); /* released well before its 5 s */
	status_is(tb, false, 0, "0 0 0");
	/* suspended: nothing is held */
	double t = now_ms();
	assert_int_equal(pm_dtab_read(tb, 0, buf, sizeof(buf)), 0);
	assert_true(now_ms() - t < 4000);
	/* resumed: held again, and the table can go while a read is held */
	pm_dtab_resume(tb);
	assert_int_equal(pthread_create(&th, NULL, held_read, &h), 0);
	status_becomes(tb, false, "1 0 0");
	pm_dtab_presuspend(tb);
	assert_int_equal(pthread_join(th, NULL), 0);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* ---- mirror ---- */

static void test_mirror_nosync(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256], c[256];
	uint8_t buf[8192], want[8192];

	(void)state;
	two_devs(&e, 1 << 16, 1 << 16, a, b);
	tgtenv_file(&e, "7:2", 1 << 16, NULL, c);
	tb = build(&e, "0 100 mirror core 2 16 nosync 3 7:0 0 7:1 8 7:2 16 1 handle_errors\n");
	/* 100 sectors in regions of 16: 7, the last one short */
	status_is(tb, true, 0, "core 2 16 nosync 3 7:0 0 7:1 8 7:2 16 1 handle_errors");
	status_is(tb, false, 0, "3 7:0 7:1 7:2 7/7 1 AAA 1 core");
	pm_dtab_resume(tb);
	/* a write across regions lands on every leg at its offset */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 3 + 5);
	assert_int_equal(pm_dtab_write(tb, 12 * 512, buf, sizeof(buf)), 0);
	tgtenv_pread(a, 12 * 512, want, sizeof(want));
	assert_memory_equal(want, buf, sizeof(buf));
	tgtenv_pread(b, 20 * 512, want, sizeof(want));
	assert_memory_equal(want, buf, sizeof(buf));
	tgtenv_pread(c, 28 * 512, want, sizeof(want));
	assert_memory_equal(want, buf, sizeof(buf));
	/* the last, short region */
	assert_int_equal(pm_dtab_write(tb, 98 * 512, buf, 1024), 0);
	tgtenv_pread(c, 114 * 512, want, 1024);
	assert_memory_equal(want, buf, 1024);
	/* reads from the default leg (nosync: the others still differ elsewhere) */
	assert_int_equal(pm_dtab_read(tb, 0, buf, 4096), 0);
	tgtenv_pread(a, 0, want, 4096);
	assert_memory_equal(buf, want, 4096);
	assert_int_equal(pm_dtab_flush(tb), 0);
	assert_int_equal(pm_dtab_discard(tb, 32 * 512, 16 * 512), 0);
	status_is(tb, false, 0, "3 7:0 7:1 7:2 7/7 1 AAA 1 core");
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 0); /* in sync from the load: no event */
	done(tb);
	tgtenv_cleanup(&e);
}

static void test_mirror_resync(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256];
	static uint8_t la[64 * 1024], lb[64 * 1024];
	uint8_t buf[1024];

	(void)state;
	two_devs(&e, 1 << 17, 1 << 17, a, b);
	tb = build(&e, "0 128 mirror core 1 8 2 7:0 16 7:1 0\n");
	status_is(tb, true, 0, "core 1 8 2 7:0 16 7:1 0");
	status_is(tb, false, 0, "2 7:0 7:1 0/16 1 AA 1 core");
	/* not resumed yet: nothing copied; reads come from leg 0, writes to regions out of sync go to
	 * leg 0 only */
	assert_int_equal(pm_dtab_read(tb, 40 * 512, buf, 1024), 0);
	tgtenv_pread(a, 56 * 512, la, 1024);
	assert_memory_equal(buf, la, 1024);
	memset(buf, 0x99, 1024);
	assert_int_equal(pm_dtab_write(tb, 8 * 512, buf, 1024), 0);
	tgtenv_pread(b, 8 * 512, lb, 1024);
	assert_int_not_equal(lb[0], 0x99);
	status_is(tb, false, 0, "2 7:0 7:1 0/16 1 AA 1 core");
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 0);

	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 16/16 1 AA 1 core");
	/* leg 1 holds leg 0's data, the write included */
	tgtenv_pread(a, 16 * 512, la, 64 * 1024);
	tgtenv_pread(b, 0, lb, 64 * 1024);
	assert_memory_equal(la, lb, 64 * 1024);
	assert_int_equal(lb[8 * 512], 0x99);
	/* past the target: leg 1 untouched */
	tgtenv_pread(b, 64 * 1024, lb, 512);
	assert_int_equal(lb[0], tgtenv_fill_b(64 * 1024));
	for (int i = 0; i < 100 && !__atomic_load_n(&e.events, __ATOMIC_RELAXED); i++)
		pm_sleep_ms(10);
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 1); /* the sync is complete */

	/* now in sync: a write lands on both */
	memset(buf, 0xab, 1024);
	assert_int_equal(pm_dtab_write(tb, 100 * 512, buf, 1024), 0);
	tgtenv_pread(a, 116 * 512, la, 1024);
	tgtenv_pread(b, 100 * 512, lb, 1024);
	assert_memory_equal(la, buf, 1024);
	assert_memory_equal(lb, buf, 1024);
	done(tb);

	/* sync: the same, shown as such */
	tb = build(&e, "0 128 mirror core 2 64 sync 2 7:0 16 7:1 0\n");
	status_is(tb, true, 0, "core 2 64 sync 2 7:0 16 7:1 0");
	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 2/2 1 AA 1 core");
	pm_dtab_free(tb); /* without presuspend: dtr stops the thread */
	tgtenv_cleanup(&e);
}

/* a leg too short: its I/O past 8 sectors fails */
static void test_mirror_failed_leg(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256];
	uint8_t buf[1024], want[1024];

	(void)state;
	two_devs(&e, 1 << 16, 4096, a, b);
	tb = build(&e, "0 64 mirror core 2 8 nosync 2 7:0 0 7:1 0\n");
	pm_dtab_resume(tb);
	memset(buf, 0x5c, sizeof(buf));
	assert_int_equal(pm_dtab_write(tb, 0, buf, 1024), 0); /* both legs */
	tgtenv_pread(b, 0, want, 1024);
	assert_memory_equal(want, buf, 1024);
	status_is(tb, false, 0, "2 7:0 7:1 8/8 1 AA 1 core");
	/* leg 1 fails the write: it is dead, the region out of sync; leg 0 has the data */
	assert_int_equal(pm_dtab_write(tb, 16 * 512, buf, 1024), 0);
	status_is(tb, false, 0, "2 7:0 7:1 7/8 1 AD 1 core");
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 0); /* the kernel raises none without handle_errors */
	memset(want, 0, sizeof(want));
	assert_int_equal(pm_dtab_read(tb, 16 * 512, want, 1024), 0);
	assert_memory_equal(want, buf, 1024);
	tgtenv_pread(a, 16 * 512, want, 1024);
	assert_memory_equal(want, buf, 1024);
	done(tb);

	/* leg 0 short: reads of regions in sync come from leg 1 once leg 0 failed; the region whose
	 * write failed on leg 0 is out of sync and can only be read from leg 0, which failed: EIO */
	tgtenv_cleanup(&e);
	two_devs(&e, 4096, 1 << 16, a, b);
	tb = build(&e, "0 64 mirror core 2 8 nosync 2 7:0 0 7:1 0\n");
	pm_dtab_resume(tb);
	assert_int_equal(pm_dtab_write(tb, 16 * 512, buf, 1024), 0);
	status_is(tb, false, 0, "2 7:0 7:1 7/8 1 DA 1 core");
	assert_int_equal(pm_dtab_read(tb, 24 * 512, want, 1024), 0);
	tgtenv_pread(b, 24 * 512, buf, 1024);
	assert_memory_equal(want, buf, 1024);
	assert_int_equal(pm_dtab_read(tb, 16 * 512, want, 1024), -EIO);
	/* a read failure on leg 0 in a region in sync: R... but D shows first */
	done(tb);

	/* read failure only: leg 0 short, nothing written; the read is retried on leg 1 */
	tb = build(&e, "0 64 mirror core 2 8 nosync 2 7:0 0 7:1 0\n");
	pm_dtab_resume(tb);
	assert_int_equal(pm_dtab_read(tb, 40 * 512, want, 1024), 0);
	tgtenv_pread(b, 40 * 512, buf, 1024);
	assert_memory_equal(want, buf, 1024);
	status_is(tb, false, 0, "2 7:0 7:1 8/8 1 RA 1 core");
	done(tb);
	tgtenv_cleanup(&e);
}

struct wr {
	struct pm_dtab *tb;
	int r;
};

static void *held_write(void *arg)
{
	struct wr *w = arg;
	uint8_t buf[512];

	memset(buf, 0x3c, sizeof(buf));
	w->r = pm_dtab_write(w->tb, 16 * 512, buf, sizeof(buf));
	return NULL;
}

static void test_mirror_handle_errors(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	pthread_t th;
	struct wr w = { 0 };

	(void)state;
	two_devs(&e, 1 << 16, 4096, NULL, NULL);
	/* handle_errors: the failed write raises an event and is held until presuspend fails it */
	tb = build(&e, "0 64 mirror core 2 8 nosync 2 7:0 0 7:1 0 2 handle_errors keep_log\n");
	status_is(tb, true, 0, "core 2 8 nosync 2 7:0 0 7:1 0 2 handle_errors keep_log");
	pm_dtab_resume(tb);
	w.tb = tb;
	assert_int_equal(pthread_create(&th, NULL, held_write, &w), 0);
	for (int i = 0; i < 500 && !__atomic_load_n(&e.events, __ATOMIC_RELAXED); i++)
		pm_sleep_ms(10);
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 1);
	status_is(tb, false, 0, "2 7:0 7:1 7/8 1 AD 1 core");
	pm_dtab_presuspend(tb);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.r, -EIO);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);

	/* handle_errors, leg 0 failing a read while the set is in sync: an event, and leg 1 becomes
	 * the default, read first from then on */
	char b[256];
	uint8_t buf[1024], want[1024];
	two_devs(&e, 4096, 1 << 16, NULL, b);
	tb = build(&e, "0 64 mirror core 2 8 nosync 2 7:0 0 7:1 0 1 handle_errors\n");
	pm_dtab_resume(tb);
	assert_int_equal(pm_dtab_read(tb, 40 * 512, buf, 1024), 0);
	tgtenv_pread(b, 40 * 512, want, 1024);
	assert_memory_equal(buf, want, 1024);
	status_is(tb, false, 0, "2 7:0 7:1 8/8 1 RA 1 core");
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 1);
	assert_int_equal(pm_dtab_read(tb, 0, buf, 1024), 0); /* leg 0 could serve it, leg 1 does */
	tgtenv_pread(b, 0, want, 1024);
	assert_memory_equal(buf, want, 1024);
	assert_int_equal(__atomic_load_n(&e.events, __ATOMIC_RELAXED), 1);
	done(tb);
	tgtenv_cleanup(&e);
	two_devs(&e, 1 << 16, 4096, NULL, NULL);

	/* a resync that fails on leg 1: with handle_errors the regions stay out of sync, 'S' */
	e.events = 0;
	tb = build(&e, "0 64 mirror core 1 8 2 7:0 0 7:1 0 1 handle_errors\n");
	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 1/8 1 AS 1 core");
	done(tb);

	/* without it the kernel counts them in sync anyway, and forgets the failure once all are */
	tb = build(&e, "0 64 mirror core 1 8 2 7:0 0 7:1 0\n");
	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 8/8 1 AA 1 core");
	done(tb);
	tgtenv_cleanup(&e);
}

static void test_mirror_disk_log(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256], l[256];
	uint8_t hdr[2048], buf[512];

	(void)state;
	two_devs(&e, 1 << 17, 1 << 17, a, b);
	tgtenv_file(&e, "7:2", 4096, tgtenv_fill_b, l); /* garbage: no log yet */
	/* 100 regions: a bitmap of 4 words */
	tb = build(&e, "0 200 mirror disk 2 7:2 2 2 7:0 0 7:1 0\n");
	status_is(tb, true, 0, "disk 2 7:2 2 2 7:0 0 7:1 0");
	status_is(tb, false, 0, "2 7:0 7:1 0/100 1 AA 3 disk 7:2 A");
	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 100/100 1 AA 3 disk 7:2 A");
	pm_dtab_presuspend(tb);
	tgtenv_pread(l, 0, hdr, sizeof(hdr));
	assert_int_equal(get_le32(hdr), 0x4D695272);
	assert_memory_equal(hdr, "rRiM", 4);
	assert_int_equal(get_le32(hdr + 4), 2);
	assert_int_equal(get_le64(hdr + 8), 100);
	/* every region clean: 100 bits set, the rest of the last word clear */
	for (int i = 0; i < 12; i++)
		assert_int_equal(hdr[1024 + i], 0xff);
	assert_int_equal(hdr[1024 + 12], 0x0f);
	for (int i = 13; i < 16; i++)
		assert_int_equal(hdr[1024 + i], 0);
	/* bytes of the log past the bitmap's sector are not ours */
	assert_int_equal(hdr[1536], tgtenv_fill_b(1536));
	pm_dtab_free(tb);

	/* a new table on the same log: in sync from the log, nothing copied (a byte changed on leg 1
	 * stays as it is) */
	memset(buf, 0xee, sizeof(buf));
	tgtenv_pwrite(b, 4 * 512, buf, 512);
	tb = build(&e, "0 200 mirror disk 2 7:2 2 2 7:0 0 7:1 0\n");
	pm_dtab_resume(tb);
	status_is(tb, false, 0, "2 7:0 7:1 100/100 1 AA 3 disk 7:2 A");
	pm_sleep_ms(50);
	tgtenv_pread(b, 4 * 512, buf, 512);
	assert_int_equal(buf[0], 0xee);
	/* a write dirties its region on the log before it is issued, and cleans it after */
	memset(buf, 0x12, sizeof(buf));
	assert_int_equal(pm_dtab_write(tb, 64 * 512, buf, 512), 0);
	pm_dtab_presuspend(tb);
	tgtenv_pread(l, 1024, hdr, 16);
	assert_int_equal(hdr[4], 0xff); /* region 32 clean again */
	pm_dtab_free(tb);

	/* sync: a new log each time; the region copied again */
	tb = build(&e, "0 200 mirror disk 3 7:2 2 sync 2 7:0 0 7:1 0\n");
	status_is(tb, true, 0, "disk 3 7:2 2 sync 2 7:0 0 7:1 0");
	pm_dtab_resume(tb);
	status_becomes(tb, false, "2 7:0 7:1 100/100 1 AA 3 disk 7:2 A");
	tgtenv_pread(b, 4 * 512, buf, 512);
	tgtenv_pread(a, 4 * 512, hdr, 512);
	assert_memory_equal(buf, hdr, 512);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_flakey_table),
		cmocka_unit_test(test_flakey_down),
		cmocka_unit_test(test_flakey_corrupt),
		cmocka_unit_test(test_flakey_intervals),
		cmocka_unit_test(test_delay_io),
		cmocka_unit_test(test_delay_presuspend),
		cmocka_unit_test(test_mirror_nosync),
		cmocka_unit_test(test_mirror_resync),
		cmocka_unit_test(test_mirror_failed_leg),
		cmocka_unit_test(test_mirror_handle_errors),
		cmocka_unit_test(test_mirror_disk_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
