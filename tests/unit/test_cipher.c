/* Unit tests of crypt's cipher contexts (src/target/cipher.c): the provider's functions are found for
 * every AES mode crypt uses, give the EVP layer's bytes sector by sector (each with its own IV, in
 * place and not, both ways), and refuse the keys OpenSSL refuses. The bytes themselves are checked
 * against the kernel's dm-crypt in test_crypt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "target/cipher.h"

#define SECTORS 64
#define SS 512

static const EVP_CIPHER *(*const modes[])(void) = {
	EVP_aes_128_ecb, EVP_aes_192_ecb, EVP_aes_256_ecb, EVP_aes_128_cbc, EVP_aes_192_cbc, EVP_aes_256_cbc,
	EVP_aes_128_ctr, EVP_aes_192_ctr, EVP_aes_256_ctr, EVP_aes_128_xts, EVP_aes_256_xts,
};

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void test_direct_found(void **state)
{
	(void)state;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct pm_cipher c, e;

		pm_cipher_init(&c, modes[m](), true);
		assert_true(pm_cipher_direct(&c));
		pm_cipher_init(&e, modes[m](), false);
		assert_false(pm_cipher_direct(&e));
		assert_int_equal(c.key_len, e.key_len);
		assert_int_equal(c.iv_len, e.iv_len);
		pm_cipher_fini(&c);
		pm_cipher_fini(&e);
	}
}

/* n sectors through x, sector i with IV i*7+base (none for ECB) */
static void run_sectors(struct pm_cctx *x, size_t iv_len, unsigned base, const uint8_t *in, uint8_t *out)
{
	for (unsigned i = 0; i < SECTORS; i++) {
		uint8_t iv[16] = { 0 };
		unsigned v = i * 7 + base;

		memcpy(iv, &v, sizeof(v));
		assert_int_equal(pm_cctx_run(x, iv_len ? iv : NULL, in + (size_t)i * SS, out + (size_t)i * SS, SS), 0);
	}
}

static void test_same_bytes(void **state)
{
	static uint8_t plain[SECTORS * SS], a[SECTORS * SS], b[SECTORS * SS], back[SECTORS * SS];
	uint8_t key[64];

	(void)state;
	fill(plain, sizeof(plain), 1);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct pm_cipher c, e;
		struct pm_cctx xc, xe;

		fill(key, sizeof(key), 100 + (unsigned)m);
		pm_cipher_init(&c, modes[m](), true);
		pm_cipher_init(&e, modes[m](), false);
		/* encrypt: direct out of place, EVP in place */
		assert_int_equal(pm_cctx_init(&xc, &c, key, 1), 0);
		assert_int_equal(pm_cctx_init(&xe, &e, key, 1), 0);
		run_sectors(&xc, c.iv_len, 3, plain, a);
		memcpy(b, plain, sizeof(b));
		run_sectors(&xe, e.iv_len, 3, b, b);
		assert_memory_equal(a, b, sizeof(a));
		assert_memory_not_equal(a, plain, SS);
		pm_cctx_fini(&xc);
		pm_cctx_fini(&xe);
		/* decrypt: direct in place, EVP out of place */
		assert_int_equal(pm_cctx_init(&xc, &c, key, 0), 0);
		assert_int_equal(pm_cctx_init(&xe, &e, key, 0), 0);
		run_sectors(&xc, c.iv_len, 3, a, a);
		run_sectors(&xe, e.iv_len, 3, b, back);
		assert_memory_equal(a, plain, sizeof(a));
		assert_memory_equal(back, plain, sizeof(back));
		pm_cctx_fini(&xc);
		pm_cctx_fini(&xe);
		pm_cipher_fini(&c);
		pm_cipher_fini(&e);
	}
}

/* a sector's IV changes its bytes, and a later IV set-up undoes none of an earlier one's */
static void test_iv_per_sector(void **state)
{
	uint8_t key[64], in[SS], one[SS], two[SS], again[SS], iv1[16] = { 1 }, iv2[16] = { 2 };
	struct pm_cipher c;
	struct pm_cctx x;

	(void)state;
	fill(key, sizeof(key), 7);
	fill(in, sizeof(in), 8);
	pm_cipher_init(&c, EVP_aes_256_xts(), true);
	assert_true(pm_cipher_direct(&c));
	assert_int_equal(pm_cctx_init(&x, &c, key, 1), 0);
	assert_int_equal(pm_cctx_run(&x, iv1, in, one, SS), 0);
	assert_int_equal(pm_cctx_run(&x, iv2, in, two, SS), 0);
	assert_int_equal(pm_cctx_run(&x, iv1, in, again, SS), 0);
	assert_memory_not_equal(one, two, SS);
	assert_memory_equal(one, again, SS);
	pm_cctx_fini(&x);
	pm_cipher_fini(&c);
}

/* OpenSSL refuses XTS keys of equal halves to encrypt: both routes say so alike */
static void test_refused_key(void **state)
{
	uint8_t key[64];

	(void)state;
	memset(key, 0x5a, sizeof(key));
	for (int direct = 0; direct <= 1; direct++) {
		struct pm_cipher c;
		struct pm_cctx x;

		pm_cipher_init(&c, EVP_aes_256_xts(), direct);
		assert_int_equal(pm_cctx_init(&x, &c, key, 1), -EINVAL);
		assert_null(x.c);
		assert_null(x.p);
		assert_null(x.e);
		pm_cipher_fini(&c);
	}
}

/* zeroed structures are ignored by the fini calls */
static void test_fini_zeroed(void **state)
{
	struct pm_cipher c = { 0 };
	struct pm_cctx x = { 0 };

	(void)state;
	pm_cctx_fini(&x);
	pm_cipher_fini(&c);
	assert_null(c.fetched);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_found),
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_iv_per_sector),
		cmocka_unit_test(test_refused_key),
		cmocka_unit_test(test_fini_zeroed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
