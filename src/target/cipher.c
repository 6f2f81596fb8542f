/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Cipher contexts for crypt's sectors: the provider's functions called directly where they can be
 * found and checked, the EVP layer elsewhere (cipher.h). */
#include "cipher.h"

#include <errno.h>
#include <openssl/provider.h>
#include <string.h>
#include <strings.h>

/* whether the colon-separated list names holds name (case aside) */
static bool names_have(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncasecmp(p, name, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* the provider's functions for c->fetched, or false */
static bool find_functions(struct pm_cipher *c)
{
	const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider(c->fetched);
	const char *name = EVP_CIPHER_get0_name(c->fetched);
	const OSSL_ALGORITHM *algs, *a;
	int no_cache = 0;

	if (!prov || !name || !(algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache)))
		return false;
	for (a = algs; a->algorithm_names; a++)
		if (names_have(a->algorithm_names, name))
			break;
	for (const OSSL_DISPATCH *d = a->algorithm_names ? a->implementation : NULL; d && d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX:
			c->newctx = OSSL_FUNC_cipher_newctx(d);
			break;
		case OSSL_FUNC_CIPHER_FREECTX:
			c->freectx = OSSL_FUNC_cipher_freectx(d);
			break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
			c->einit = OSSL_FUNC_cipher_encrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT:
			c->dinit = OSSL_FUNC_cipher_decrypt_init(d);
			break;
		case OSSL_FUNC_CIPHER_CIPHER:
			c->cipher = OSSL_FUNC_cipher_cipher(d);
			break;
		default:
			break;
		}
	}
	OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
	c->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	return c->newctx && c->freectx && c->einit && c->dinit && c->cipher && c->provctx;
}

static void drop_direct(struct pm_cipher *c)
{
	EVP_CIPHER_free(c->fetched);
	c->fetched = NULL;
	c->provctx = NULL;
	c->newctx = NULL;
	c->freectx = NULL;
	c->einit = NULL;
	c->dinit = NULL;
	c->cipher = NULL;
}

/* Two sectors each way through both routes, with different IVs one after the other: the direct
 * route must give the EVP layer's bytes and take them back. */
static bool self_check(const struct pm_cipher *c)
{
	struct pm_cipher evp = { .evp = c->evp, .key_len = c->key_len, .iv_len = c->iv_len };
	uint8_t key[EVP_MAX_KEY_LENGTH], iv[EVP_MAX_IV_LENGTH] = { 0 };
	uint8_t plain[1024], a[1024], b[1024];
	struct pm_cctx xa = { 0 }, xb = { 0 };
	bool ok = false;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 13 + 5);
	for (int enc = 1; enc >= 0; enc--) {
		const uint8_t *in = enc ? plain : a;
		uint8_t out_a[1024], out_b[1024];

		if (pm_cctx_init(&xa, &evp, key, enc) < 0 || pm_cctx_init(&xb, c, key, enc) < 0)
			goto out;
		for (unsigned s = 0; s < 2; s++) {
			iv[0] = (uint8_t)(s + 1);
			if (pm_cctx_run(&xa, c->iv_len ? iv : NULL, in + 512 * s, out_a + 512 * s, 512) < 0 ||
			    pm_cctx_run(&xb, c->iv_len ? iv : NULL, in + 512 * s, out_b + 512 * s, 512) < 0)
				goto out;
		}
		if (memcmp(out_a, out_b, sizeof(out_a)))
			goto out;
		memcpy(enc ? a : b, out_a, sizeof(out_a));
		pm_cctx_fini(&xa);
		pm_cctx_fini(&xb);
	}
	ok = !memcmp(b, plain, sizeof(plain)) && memcmp(a, plain, sizeof(plain));
out:
	pm_cctx_fini(&xa);
	pm_cctx_fini(&xb);
	return ok;
}

void pm_cipher_init(struct pm_cipher *c, const EVP_CIPHER *evp, bool direct)
{
	memset(c, 0, sizeof(*c));
	c->evp = evp;
	c->key_len = (size_t)EVP_CIPHER_get_key_length(evp);
	c->iv_len = (size_t)EVP_CIPHER_get_iv_length(evp);
	if (!direct || c->key_len > EVP_MAX_KEY_LENGTH || c->iv_len > EVP_MAX_IV_LENGTH)
		return;
	/* a fetch that fails (no provider has it) leaves the EVP route, which fails at first use */
	if (!(c->fetched = EVP_CIPHER_fetch(NULL, EVP_CIPHER_get0_name(evp), NULL)))
		return;
	if (!find_functions(c) || !self_check(c))
		drop_direct(c);
}

bool pm_cipher_direct(const struct pm_cipher *c)
{
	return c->fetched != NULL;
}

void pm_cipher_fini(struct pm_cipher *c)
{
	drop_direct(c);
	c->evp = NULL;
}

int pm_cctx_init(struct pm_cctx *x, const struct pm_cipher *c, const uint8_t *key, int enc)
{
	memset(x, 0, sizeof(*x));
	x->c = c;
	x->enc = enc;
	if (c->fetched) {
		if (!(x->p = c->newctx(c->provctx))) {
			pm_cctx_fini(x);
			return -ENOMEM;
		}
		if (!(enc ? c->einit : c->dinit)(x->p, key, c->key_len, NULL, 0, NULL)) {
			pm_cctx_fini(x);
			return -EINVAL;
		}
		return 0;
	}
	/* padding is turned off only where it applies (block size above 1): on a context with it off,
	 * OpenSSL 3.0 turns it off again at every IV set-up, through a parameter lookup by name */
	if (!(x->e = EVP_CIPHER_CTX_new())) {
		pm_cctx_fini(x);
		return -ENOMEM;
	}
	if (!EVP_CipherInit_ex(x->e, c->evp, NULL, key, NULL, enc) ||
	    (EVP_CIPHER_get_block_size(c->evp) > 1 && !EVP_CIPHER_CTX_set_padding(x->e, 0))) {
		pm_cctx_fini(x);
		return -EINVAL;
	}
	return 0;
}

int pm_cctx_run(struct pm_cctx *x, const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t len)
{
	const struct pm_cipher *c = x->c;

	if (x->p) {
		size_t n = 0;

		if (iv && !(x->enc ? c->einit : c->dinit)(x->p, NULL, 0, iv, c->iv_len, NULL))
			return -EIO;
		return c->cipher(x->p, out, &n, len, in, len) && n == len ? 0 : -EIO;
	}
	int n = 0;

	if (len > (size_t)INT32_MAX || (iv && !EVP_CipherInit_ex(x->e, NULL, NULL, NULL, iv, -1)))
		return -EIO;
	return EVP_CipherUpdate(x->e, out, &n, in, (int)len) && (size_t)n == len ? 0 : -EIO;
}

void pm_cctx_fini(struct pm_cctx *x)
{
	if (x->p && x->c)
		x->c->freectx(x->p);
	EVP_CIPHER_CTX_free(x->e);
	memset(x, 0, sizeof(*x));
}
