/* Unit tests of the crypt target: the bytes on the device for every cipher spec, IV mode, iv_offset and
 * sector_size, judged against vectors computed once by the openssl command line and python3-cryptography
 * (tests/unit/crypt_vectors.py -> crypt_vectors.h), never by this code; the kernel's refusals and
 * messages; the table text; misaligned I/O; discards; key messages; threads.
 * `test_crypt bench [MiB]` measures aes-xts-plain64 through pm_dtab_read/write over a file in /dev/shm. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tgtenv.h"
#include "dm.h"
#include "crypt_vectors.h"

#define K16 "000102030405060708090A0b0c0d0e0f"
#define K64 "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0" \
	    "f0e1d2c3b4a5968778695a4b3c2d1e0fffeeddccbbaa99887766554433221100"

/* the plaintext and ciphertext patterns of crypt_vectors.py */
static uint8_t pt(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) * 17 + 7);
}

static uint8_t ct(uint64_t i)
{
	return (uint8_t)(i * 37 + 11 + (i >> 12));
}

static uint8_t junk(uint64_t i)
{
	return (uint8_t)(i * 13 + 0x5c);
}

static void file_put(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned n;

	assert_true(EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL));
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void status_is(struct pm_dtab *tb, bool table, size_t i, const char *want)
{
	char *s = tgtenv_status(tb, table, i);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static struct pm_dtab *build_ok(struct tgtenv *e, const char *table)
{
	struct pm_dtab *tb = NULL;
	char err[256];
	int r = tgtenv_build(e, table, false, &tb, err, sizeof(err));

	if (r)
		fail_msg("%s: %s", table, err);
	return tb;
}

/* one vector, with the crypt target at table sector `at` (a zero target before it) */
static void check_vector(const struct crypt_vector *v, unsigned at)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char path[256], table[1024], hex[65];
	size_t len = (size_t)v->sectors * 512, fsize = (v->start + v->sectors + 8) * 512ull;
	uint8_t *buf = malloc(len), *back = malloc(len), *before = malloc(fsize), *after = malloc(fsize);
	uint64_t base = (uint64_t)at * 512;

	assert_non_null(buf);
	assert_non_null(back);
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", fsize, junk, path);
	if (at)
		snprintf(table, sizeof(table), "0 %u zero\n%u%s\n", at, at, v->table + 1);
	else
		snprintf(table, sizeof(table), "%s\n", v->table);
	tb = build_ok(&e, table);
	tgtenv_pread(path, 0, before, fsize);
	if (!v->reverse) {
		/* plaintext in: the device holds the expected ciphertext */
		for (size_t i = 0; i < len; i++)
			buf[i] = pt(i);
		assert_int_equal(pm_dtab_write(tb, base, buf, len), 0);
		tgtenv_pread(path, v->start * 512ull, back, len);
		sha256_hex(back, len, hex);
		if (strcmp(hex, v->sha256))
			fail_msg("%s: ciphertext %s, want %s", v->table, hex, v->sha256);
		/* and reads give the plaintext back */
		memset(back, 0, len);
		assert_int_equal(pm_dtab_read(tb, base, back, len), 0);
		assert_memory_equal(back, buf, len);
	} else {
		/* ciphertext on the device: reads give the expected plaintext, which writes back */
		for (size_t i = 0; i < len; i++)
			buf[i] = ct(i);
		file_put(path, v->start * 512ull, buf, len);
		tgtenv_pread(path, 0, before, fsize);
		assert_int_equal(pm_dtab_read(tb, base, back, len), 0);
		sha256_hex(back, len, hex);
		if (strcmp(hex, v->sha256))
			fail_msg("%s: plaintext %s, want %s", v->table, hex, v->sha256);
		memset(buf, 0, len);
		assert_int_equal(pm_dtab_write(tb, base, back, len), 0);
		tgtenv_pread(path, v->start * 512ull, buf, len);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(buf[i], ct(i));
	}
	/* nothing outside the target's range of the device changed */
	tgtenv_pread(path, 0, after, fsize);
	if (!v->reverse)
		memcpy(after + v->start * 512ull, before + v->start * 512ull, len);
	assert_memory_equal(before, after, fsize);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
	free(buf);
	free(back);
	free(before);
	free(after);
}

static void test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(crypt_vectors) / sizeof(crypt_vectors[0]); i++) {
		check_vector(&crypt_vectors[i], 0);
		/* the IV counts from the target's start, not the table's */
		check_vector(&crypt_vectors[i], 16);
	}
}

/* a sector at a time gives the same bytes as one large write (chunking, the worker pool) */
static void test_large_and_piecewise(void **state)
{
	enum { SECTORS = 6000 };
	struct tgtenv e;
	struct pm_dtab *tb;
	char a[256], b[256];
	size_t len = SECTORS * 512;
	uint8_t *buf = malloc(len), *x = malloc(len), *y = malloc(len);

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", len, NULL, a);
	tgtenv_file(&e, "7:1", len, NULL, b);
	tb = build_ok(&e, "0 6000 crypt aes-xts-plain64 " K64 " 77 7:0 0\n6000 6000 crypt aes-xts-plain64 " K64
			  " 77 7:1 0\n");
	for (size_t i = 0; i < len; i++)
		buf[i] = pt(i * 3);
	assert_int_equal(pm_dtab_write(tb, 0, buf, len), 0);
	for (size_t s = 0; s < SECTORS; s++)
		assert_int_equal(pm_dtab_write(tb, len + s * 512, buf + s * 512, 512), 0);
	tgtenv_pread(a, 0, x, len);
	tgtenv_pread(b, 0, y, len);
	assert_memory_equal(x, y, len);
	assert_memory_not_equal(x, buf, 512);
	assert_int_equal(pm_dtab_read(tb, 512, x, len), 0); /* across the two targets */
	assert_memory_equal(x, buf + 512, len - 512);
	assert_memory_equal(x + len - 512, buf, 512);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
	free(buf);
	free(x);
	free(y);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *table, *err;
	} cases[] = {
		{ "0 8 crypt aes " K16 " 0 7:0", "crypt: Not enough arguments" },
		{ "0 8 crypt aes :x:logon:a 0 7:0 0", "crypt: Cannot parse key size" },
		{ "0 8 crypt aes :32logon 0 7:0 0", "crypt: Cannot parse key size" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 2 allow_discards", "crypt: Invalid number of feature args" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 9 a b c d e f g h i", "crypt: Invalid number of feature args" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 x", "crypt: Invalid number of feature args" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 bogus", "crypt: Invalid feature arguments" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 sector_size:1024x", "crypt: Invalid feature arguments" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 Sector_size:1024", "crypt: Invalid feature arguments" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 sector_size:1000", "crypt: Invalid feature value for sector_size" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 sector_size:8192", "crypt: Invalid feature value for sector_size" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 sector_size:256", "crypt: Invalid feature value for sector_size" },
		{ "0 9 crypt aes " K16 " 0 7:0 0 1 sector_size:4096",
		  "crypt: Device size is not multiple of sector_size feature" },
		{ "0 8 crypt aes " K16 " 0 7:0 3 1 sector_size:4096",
		  "crypt: start=3 not aligned to h/w logical block size 4096 of 7:0" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 integrity:0:none", "crypt: Invalid integrity arguments" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 integrity:481:none", "crypt: Invalid integrity arguments" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 integrity:16:foo", "crypt: Unknown integrity profile" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 integrity:16:aead", "crypt: Bad cipher specification" },
		{ "0 8 crypt aes " K16 " 0 7:0 0 1 integrity:16:none", "crypt: Integrity profile not supported." },
		{ "0 8 crypt cbc(aes)-plain " K16 " 0 7:0 0", "crypt: Bad cipher specification" },
		{ "0 8 crypt aes:3-cbc-plain " K16 " 0 7:0 0", "crypt: Bad cipher key count specification" },
		{ "0 8 crypt aes:0-cbc-plain " K16 " 0 7:0 0", "crypt: Bad cipher key count specification" },
		{ "0 8 crypt aes:x-cbc-plain " K16 " 0 7:0 0", "crypt: Bad cipher key count specification" },
		{ "0 8 crypt aes-cbc " K16 " 0 7:0 0", "crypt: IV mechanism required" },
		{ "0 8 crypt aes-xts " K16 " 0 7:0 0", "crypt: IV mechanism required" },
		{ "0 8 crypt aes-cbc-essiv " K16 " 0 7:0 0", "crypt: Digest algorithm missing for ESSIV mode" },
		{ "0 8 crypt capi:cbc(aes)-essiv " K16 " 0 7:0 0", "crypt: Digest algorithm missing for ESSIV mode" },
		{ "0 8 crypt serpent-cbc-plain " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt aes-ofb-plain " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt aes-ecb-essiv:sha256 " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt aes-cbc-essiv:sha512 " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt aes-cbc-essiv:nosuch " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt capi:cbc(aes " K16 " 0 7:0 0", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt capi:cbc(aes)-plain64 " K16 " 0 7:0 0 1 integrity:16:aead", "crypt: Error allocating crypto tfm" },
		{ "0 8 crypt aes-cbc-bogus " K16 " 0 7:0 0", "crypt: Invalid IV mode" },
		{ "0 8 crypt aes-cbc-plain-x " K16 " 0 7:0 0", "crypt: Invalid IV mode" },
		{ "0 8 crypt aes-cbc-lmk " K16 " 0 7:0 0", "crypt: IV mode lmk is not supported in userspace" },
		{ "0 8 crypt aes-cbc-plain 000102030405060708090a0b0c0d0e 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-cbc-plain 000102030405060708090a0b0c0d0eXY 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-cbc-plain - 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-cbc-plain 0 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-cbc-essiv:sha1 " K16 " 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-xts-plain64 " K16 " 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt cipher_null-ecb " K16 " 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes:2-cbc-plain " K16 " 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes:1048576-cbc-plain " K16 " 0 7:0 0", "crypt: Error decoding and setting key" },
		{ "0 8 crypt aes-cbc-plain :2147483647:logon:foo 0 7:0 0",
		  "crypt: Error decoding and setting key (keys in the kernel keyring are not supported in userspace)" },
		{ "0 8 crypt aes-xts-plain64 " K16 K16 K16 " 0 7:0 0",
		  "crypt: AES-192-XTS (a 384-bit XTS key) is not supported by OpenSSL" },
		{ "0 8 crypt aes-cbc-plain :16:logon:foo 0 7:0 0",
		  "crypt: Error decoding and setting key (keys in the kernel keyring are not supported in userspace)" },
		{ "0 8 crypt aes " K16 " x 7:0 0", "crypt: Invalid iv_offset sector" },
		{ "0 8 crypt aes " K16 " -1 7:0 0", "crypt: Invalid iv_offset sector" },
		{ "0 8 crypt aes " K16 " 4 7:0 0 1 sector_size:4096", "crypt: Invalid iv_offset sector" },
		{ "0 8 crypt aes " K16 " 0 9:9 0", "crypt: Device lookup failed" },
		{ "0 8 crypt aes " K16 " 0 7:0 x", "crypt: Invalid device sector" },
		{ "0 8 crypt aes " K16 " 0 7:0 -3", "crypt: Invalid device sector" },
	};
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], table[512];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tb = (void *)1;
		snprintf(table, sizeof(table), "%s\n", cases[i].table);
		assert_int_not_equal(tgtenv_build(&e, table, false, &tb, err, sizeof(err)), 0);
		assert_null(tb);
		if (strcmp(err, cases[i].err))
			fail_msg("%s: \"%s\", want \"%s\"", cases[i].table, err, cases[i].err);
		assert_int_equal(e.opens, 0);
	}
	tgtenv_cleanup(&e);
}

/* what the kernel takes although it looks odd */
static void test_accepted(void **state)
{
	static const char *const ok[] = {
		"0 8 crypt aes-ecb-bogus " K16 " 0 7:0 0",      /* ecb has no IV: the IV mode is ignored */
		"0 8 crypt aes-cbc-plain:x " K16 " 0 7:0 0",    /* options of plain are ignored */
		"0 8 crypt aes " K16 "f 0 7:0 0",               /* an odd last digit is not read */
		"0 8 crypt aes " K16 " 0 7:0 0 1 allow_discards extra", /* words past the count */
		"0 8 crypt aes " K16 " 0 7:0 0 0",
		"0 8 crypt aes " K16 " 0 7:0 0 1 ALLOW_DISCARDS",
		"0 8 crypt aes " K16 " 8 7:0 0 1 sector_size:4096",
		"0 8 crypt aes-cbc-essiv:sha256 " K16 " 0 7:0 0 8 allow_discards same_cpu_crypt "
		"submit_from_crypt_cpus no_read_workqueue no_write_workqueue sector_size:512 iv_large_sectors "
		"iv_large_sectors",
		"0 8 crypt aes:1-cbc-plain " K16 " 0 7:0 0",
	};
	struct tgtenv e;
	char table[512];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(table, sizeof(table), "%s\n", ok[i]);
		pm_dtab_free(build_ok(&e, table));
	}
	tgtenv_cleanup(&e);
}

static void test_status(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	tb = build_ok(&e, "0 8 crypt aes-cbc-essiv:sha256 " K16 " 5 7:0 3\n8 8 crypt aes " K16 "f 0 7:0 0\n");
	status_is(tb, true, 0, "aes-cbc-essiv:sha256 000102030405060708090a0b0c0d0e0f 5 7:0 3");
	status_is(tb, true, 1, "aes 000102030405060708090a0b0c0d0e0f 0 7:0 0");
	status_is(tb, false, 0, "");
	pm_dtab_free(tb);
	/* the features in the kernel's order, whatever the table's */
	tb = build_ok(&e, "0 16 crypt aes-plain " K16 " 8 7:0 0 7 no_write_workqueue iv_large_sectors "
			  "No_Read_Workqueue sector_size:4096 submit_from_crypt_cpus same_cpu_crypt allow_discards\n");
	status_is(tb, true, 0, "aes-plain 000102030405060708090a0b0c0d0e0f 8 7:0 0 7 allow_discards same_cpu_crypt "
			       "submit_from_crypt_cpus no_read_workqueue no_write_workqueue sector_size:4096 "
			       "iv_large_sectors");
	pm_dtab_free(tb);
	tb = build_ok(&e, "0 16 crypt capi:xts(aes)-plain64 " K64 " 0 7:0 0 2 iv_large_sectors sector_size:512\n");
	status_is(tb, true, 0, "capi:xts(aes)-plain64 " K64 " 0 7:0 0 1 iv_large_sectors");
	pm_dtab_free(tb);
	tb = build_ok(&e, "0 16 crypt cipher_null-ecb - 0 7:0 0\n");
	status_is(tb, true, 0, "cipher_null-ecb - 0 7:0 0");
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_sector_size_io(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256];
	uint8_t buf[8192];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, junk, NULL);
	tb = build_ok(&e, "0 8 linear 7:0 0\n8 32 crypt aes-xts-plain64 " K64 " 0 7:0 0 1 sector_size:4096\n");
	assert_int_equal(tb->block_size, 4096);
	assert_int_equal(pm_dtab_read(tb, 8 * 512, buf, 4096), 0);
	assert_int_equal(pm_dtab_read(tb, 9 * 512, buf, 4096), -EIO);   /* misaligned start */
	assert_int_equal(pm_dtab_read(tb, 8 * 512, buf, 1024), -EIO);   /* a partial sector */
	assert_int_equal(pm_dtab_write(tb, 8 * 512, buf, 512), -EIO);
	assert_int_equal(pm_dtab_write(tb, 16 * 512, buf, 8192), 0);
	pm_dtab_free(tb);
	/* past the device's end */
	tb = build_ok(&e, "0 16 crypt aes " K16 " 0 7:0 120\n");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 4096), 0);
	assert_int_equal(pm_dtab_read(tb, 4096, buf, 512), -EIO);
	pm_dtab_free(tb);
	/* read-only */
	assert_int_equal(tgtenv_build(&e, "0 16 crypt aes " K16 " 0 7:0 0\n", true, &tb, err, sizeof(err)), 0);
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), 0);
	assert_int_equal(pm_dtab_write(tb, 0, buf, 512), -EROFS);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_discard(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char path[256];
	uint8_t buf[4096];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, junk, path);
	tb = build_ok(&e, "0 64 crypt aes-xts-plain64 " K64 " 0 7:0 8\n");
	assert_int_equal(pm_dtab_discard(tb, 0, 4096), -EOPNOTSUPP);
	pm_dtab_free(tb);
	tb = build_ok(&e, "0 64 crypt aes-xts-plain64 " K64 " 0 7:0 8 1 allow_discards\n");
	/* passed to the device untranslated: the file's bytes there become zeros */
	assert_int_equal(pm_dtab_discard(tb, 8 * 512, 4096), 0);
	tgtenv_pread(path, 16 * 512, buf, 4096);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	tgtenv_pread(path, 15 * 512, buf, 512);
	assert_int_equal(buf[0], junk(15 * 512));
	assert_int_equal(pm_dtab_flush(tb), 0);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static void test_key_messages(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char err[256], path[256];
	uint8_t buf[1024], want[1024], disk[1024];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, path);
	tb = build_ok(&e, "0 16 crypt aes-cbc-essiv:sha256 " K16 " 0 7:0 0\n");
	for (int i = 0; i < 1024; i++)
		want[i] = pt((uint64_t)i);
	assert_int_equal(pm_dtab_write(tb, 0, want, 1024), 0);
	tgtenv_pread(path, 0, disk, 1024);
	assert_int_equal(pm_dtab_message(tb, 0, "key wipe", NULL, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "crypt: not suspended during key manipulation.");
	pm_dtab_presuspend(tb);
	assert_int_equal(pm_dtab_message(tb, 0, "key frob", NULL, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "crypt: unrecognised message received.");
	assert_int_equal(pm_dtab_message(tb, 0, "key wipe", NULL, 0, err, sizeof(err)), 0);
	status_is(tb, true, 0, "aes-cbc-essiv:sha256 00000000000000000000000000000000 0 7:0 0");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 512), -EIO);   /* no key */
	assert_int_equal(pm_dtab_message(tb, 0, "key set 0011", NULL, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pm_dtab_message(tb, 0, "key set " K16, NULL, 0, err, sizeof(err)), 0);
	pm_dtab_resume(tb);
	assert_int_equal(pm_dtab_read(tb, 0, buf, 1024), 0);
	assert_memory_equal(buf, want, 1024);
	/* another key decrypts to something else, and writes with it */
	pm_dtab_presuspend(tb);
	assert_int_equal(pm_dtab_message(tb, 0, "key set ffeeddccbbaa99887766554433221100", NULL, 0, err, sizeof(err)), 0);
	pm_dtab_resume(tb);
	status_is(tb, true, 0, "aes-cbc-essiv:sha256 ffeeddccbbaa99887766554433221100 0 7:0 0");
	assert_int_equal(pm_dtab_read(tb, 0, buf, 1024), 0);
	assert_memory_not_equal(buf, want, 1024);
	assert_int_equal(pm_dtab_write(tb, 0, want, 1024), 0);
	tgtenv_pread(path, 0, buf, 1024);
	assert_memory_not_equal(buf, disk, 1024);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

/* kB of locked memory of this process (VmLck) */
#ifndef __SANITIZE_ADDRESS__ /* test_key_locked only */
static long locked_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* the key lives in locked memory for as long as the table does (one page here; RLIMIT_MEMLOCK allows
 * 64 KiB even without privilege) */
static void test_key_locked(void **state)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	long before;

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", 1 << 16, NULL, NULL);
	before = locked_kb();
	assert_true(before >= 0);
	tb = build_ok(&e, "0 8 crypt aes-xts-plain64 " K64 " 0 7:0 0\n");
	assert_true(locked_kb() > before);
	pm_dtab_free(tb);
	assert_int_equal(locked_kb(), before);
	tgtenv_cleanup(&e);
}
#endif

struct thr {
	struct pm_dtab *tb;
	uint64_t off;
	int fails;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	static __thread uint8_t w[65536], r[65536];

	for (int round = 0; round < 40; round++) {
		for (size_t i = 0; i < sizeof(w); i++)
			w[i] = pt(i + t->off + (uint64_t)round);
		if (pm_dtab_write(t->tb, t->off, w, sizeof(w)) || pm_dtab_read(t->tb, t->off, r, sizeof(r)) ||
		    memcmp(w, r, sizeof(w)))
			t->fails++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	enum { N = 6 };
	struct tgtenv e;
	struct pm_dtab *tb, *one;
	struct thr t[N];
	pthread_t th[N];
	char a[256], b[256];
	static uint8_t x[N * 65536], y[N * 65536];

	(void)state;
	tgtenv_init(&e);
	tgtenv_file(&e, "7:0", N * 65536, NULL, a);
	tgtenv_file(&e, "7:1", N * 65536, NULL, b);
	tb = build_ok(&e, "0 768 crypt aes-xts-plain64 " K64 " 0 7:0 0\n");
	for (int i = 0; i < N; i++) {
		t[i] = (struct thr){ .tb = tb, .off = (uint64_t)i * 65536 };
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].fails, 0);
	}
	/* the same last round written by one thread gives the same device */
	one = build_ok(&e, "0 768 crypt aes-xts-plain64 " K64 " 0 7:1 0\n");
	for (int i = 0; i < N; i++) {
		for (size_t j = 0; j < 65536; j++)
			x[(size_t)i * 65536 + j] = pt(j + (uint64_t)i * 65536 + 39);
	}
	assert_int_equal(pm_dtab_write(one, 0, x, sizeof(x)), 0);
	tgtenv_pread(a, 0, x, sizeof(x));
	tgtenv_pread(b, 0, y, sizeof(y));
	assert_memory_equal(x, y, sizeof(x));
	pm_dtab_free(one);
	pm_dtab_free(tb);
	tgtenv_cleanup(&e);
}

static double now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* one pass of writes then reads over the file at path, printed */
static int bench_one(const char *path, size_t len, const char *opts, uint8_t *buf, size_t req)
{
	struct tgtenv e;
	struct pm_dtab *tb;
	char table[512], err[256];
	double t0, c0, tw, tr, cw, cr;
	int r = 0;

	tgtenv_init(&e);
	tgtenv_add(&e, "7:0", path);
	snprintf(table, sizeof(table), "0 %zu crypt aes-xts-plain64 " K64 " 0 7:0 0%s\n", len / 512, opts);
	if (tgtenv_build(&e, table, false, &tb, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (size_t off = 0; off < len && !r; off += req)
		r = pm_dtab_write(tb, off, buf, req);
	tw = now(CLOCK_MONOTONIC) - t0;
	cw = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (size_t off = 0; off < len && !r; off += req)
		r = pm_dtab_read(tb, off, buf, req);
	tr = now(CLOCK_MONOTONIC) - t0;
	cr = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	pm_dtab_free(tb);
	if (r)
		return 1;
	/* wall clock, and per CPU second (the machine is shared: the wall clock waits for others) */
	printf("aes-xts-plain64 512-bit key%s, %zu MiB in %zu KiB requests, 1 thread: write %.0f MB/s (%.0f per CPU s), "
	       "read %.0f MB/s (%.0f per CPU s)\n",
	       opts[0] ? opts + 2 : " (512-byte sectors)", len >> 20, req >> 10, (double)len / tw / 1e6,
	       (double)len / cw / 1e6, (double)len / tr / 1e6, (double)len / cr / 1e6);
	return 0;
}

/* aes-xts-plain64 (512-bit key) over a /dev/shm file: MB/s of pm_dtab_write and pm_dtab_read */
static int bench(unsigned mib)
{
	size_t len = (size_t)mib << 20, req = 1 << 20;
	char path[] = "/dev/shm/partmap-crypt-bench-XXXXXX";
	uint8_t *buf = calloc(1, req);
	int fd = mkstemp(path), r = 0;

	if (fd < 0 || !buf)
		return 1;
	/* the pages allocated before: the passes measure the target, not tmpfs growing */
	for (size_t off = 0; off < len && !r; off += req)
		r = pwrite(fd, buf, req, (off_t)off) != (ssize_t)req;
	close(fd);
	memset(buf, 0x3c, req);
	r = r || bench_one(path, len, "", buf, req) || bench_one(path, len, " 1 sector_size:4096", buf, req);
	unlink(path);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_large_and_piecewise),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_sector_size_io),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_key_messages),
#ifndef __SANITIZE_ADDRESS__ /* ASan's mlock does nothing: run in the plain build only (a skip is no pass) */
		cmocka_unit_test(test_key_locked),
#endif
		cmocka_unit_test(test_threads),
	};

	if (argc > 1 && !strcmp(argv[1], "bench"))
		return bench(argc > 2 ? (unsigned)atoi(argv[2]) : 256);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
