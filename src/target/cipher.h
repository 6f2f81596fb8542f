/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Cipher contexts for many short messages (crypt's sectors), each with an IV of its own.
 *
 * Through OpenSSL 3.0's EVP layer a 512-byte AES-XTS sector costs about 150 ns here, 90 of them the
 * cipher's: each IV set-up asks the provider for the IV length through a parameter lookup by name,
 * and each update goes through checks made for streams. The provider's own functions (provider-
 * cipher(7), found with OSSL_PROVIDER_query_operation(3)) take the key, the IV and a whole message
 * directly: about 113 ns. The cipher work is still OpenSSL's; only the calls are shorter.
 *
 * Where the provider's functions cannot be found, or a self-check at set-up finds that they do not
 * give the EVP layer's bytes, the EVP calls are used. */
#ifndef PARTMAP_TARGET_CIPHER_H
#define PARTMAP_TARGET_CIPHER_H

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* one algorithm: set up once, read-only after (shared by threads) */
struct pm_cipher {
	const EVP_CIPHER *evp;          /* the EVP route, and the cipher's sizes */
	EVP_CIPHER *fetched;            /* holds the provider while its functions are in use */
	void *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_cipher_fn *cipher;
	size_t key_len, iv_len;
};

/* one keyed context of one direction: one thread at a time */
struct pm_cctx {
	const struct pm_cipher *c;
	void *p;                        /* the provider's context, or */
	EVP_CIPHER_CTX *e;              /* the EVP one */
	int enc;
};

/* Set c up for evp (an AES mode of block size 16 or 1, no padding). direct: try the provider's
 * functions. c is usable after, through EVP at least (where OpenSSL lacks evp, its first context
 * fails to key). */
void pm_cipher_init(struct pm_cipher *c, const EVP_CIPHER *evp, bool direct);

/* whether c calls the provider directly */
bool pm_cipher_direct(const struct pm_cipher *c);

/* release c (no context of it may be left); a zeroed c is ignored */
void pm_cipher_fini(struct pm_cipher *c);

/* key a context (key: c's key length), to encrypt (enc 1) or decrypt (0). -ENOMEM, or -EINVAL where
 * OpenSSL refuses the key; x is zeroed then (x->c NULL: not keyed) */
int pm_cctx_init(struct pm_cctx *x, const struct pm_cipher *c, const uint8_t *key, int enc);

/* one message of len bytes (a multiple of the block size) from in to out (may be the same), with iv
 * (c's IV length) when iv is not NULL. 0 or -EIO */
int pm_cctx_run(struct pm_cctx *x, const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t len);

/* free the context (its key is wiped by OpenSSL); a zeroed x is ignored */
void pm_cctx_fini(struct pm_cctx *x);

#endif
