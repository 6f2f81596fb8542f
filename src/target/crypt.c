/* SPDX-License-Identifier: GPL-2.0-or-later */
/* crypt <cipher> <key> <iv_offset> <dev> <offset> [<#opt> <opt>...]: the kernel's dm-crypt (target
 * version 1.24, Linux 6.1) in userspace, with OpenSSL's libcrypto doing the AES (called through its
 * provider's functions where they can be, which costs a sector less than the EVP layer: cipher.h).
 *
 * Cipher specs: the legacy form cipher[:keycount]-chainmode-ivmode[:ivopts] and capi:<mode(cipher)>-
 * ivmode[:ivopts]; cipher aes (and cipher_null with ecb), chain modes ecb, cbc, xts, ctr; IV modes
 * plain, plain64, plain64be, essiv:<hash>, benbi, null. Each sector (sector_size bytes) is one cipher
 * message whose IV comes from its sector number: (offset in the target in 512-byte sectors) + iv_offset,
 * shifted down to sector_size units with iv_large_sectors; with a key count > 1 the key of a sector
 * is that number (512-byte units) modulo the count. The on-disk bytes are the kernel's for the same
 * table.
 *
 * The checks and their order, and the messages, are crypt_ctr's: optional parameters first, then the
 * cipher, the key, iv_offset, the device. What the kernel accepts but OpenSSL has not (other ciphers,
 * AES-192-XTS, AEAD and integrity, keys from the kernel keyring, the lmk/tcw/eboiv/elephant/random IV
 * modes) is refused with a message of its own saying so.
 *
 * Keys live in one locked (mlock, when allowed) and never-dumped mapping that is wiped before it is
 * unmapped. OpenSSL refuses XTS keys whose two halves are equal (the kernel takes them, and all-zero
 * test keys are common): such a key is used as K1 || K2' with K2' != K2 and every sector's IV
 * replaced by D_K2'(E_K2(IV)), which gives XTS the same tweak, so the same bytes.
 *
 * Threads: cipher contexts are not shared. A request takes a worker (its contexts, keyed lazily, and a
 * 64 KiB buffer for writes, which are never encrypted in the caller's buffer) from a pool and gives
 * it back; the pool holds as many workers as requests ever ran at once. A request of 256 KiB or more
 * is cut into parts of 128 KiB that the target's helper threads (src/par.c: one per CPU the process
 * may run on, but one) take too, each part with a worker of its own. */
#include "target.h"
#include "cipher.h"
#include "../par.h"
#include "../util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include <openssl/evp.h>

#define CRYPT_CHUNK (64u << 10)   /* a write's bounce buffer; a multiple of every sector_size */
#define CRYPT_PART (128u << 10)   /* requests of twice this or more: parts of this for helper threads */
#define CRYPTO_MAX_ALG_NAME 128   /* the kernel's limit on a crypto API name */
#define MAX_TAG_SIZE 480

enum chain { CH_ECB, CH_CBC, CH_XTS, CH_CTR };
enum ivmode { IV_NONE, IV_PLAIN, IV_PLAIN64, IV_PLAIN64BE, IV_ESSIV, IV_BENBI, IV_NULL };

/* the key material of one of the key count's keys, in the locked mapping */
struct subkey {
	uint8_t salt[EVP_MAX_MD_SIZE];   /* essiv: H(subkey) */
	uint8_t xts_alt[64];             /* xts with equal halves: K1 || K2' */
	uint8_t tweak_alt[32];           /* K2' */
	bool equal_halves;
};

struct crypt {
	struct pm_source *dev;
	uint64_t start;                  /* sectors */
	uint64_t iv_offset;
	char *cipher_string;             /* as given: the table echoes it */
	/* the cipher */
	enum chain chain;
	bool null_cipher;
	enum ivmode ivmode;
	unsigned iv_size;                /* 0 (ecb) or 16 */
	unsigned benbi_shift;
	const EVP_MD *essiv_md;
	unsigned tfms;                   /* the key count, a power of two */
	struct pm_cipher ciph;           /* the sectors' cipher, keyed by a subkey */
	struct pm_cipher essiv_ecb;      /* ECB keyed by the salt */
	struct pm_cipher tweak_ecb;      /* xts with equal halves: ECB for one half */
	/* the key */
	unsigned key_size;
	bool key_valid;
	uint8_t *key;                    /* key_size bytes in the locked mapping */
	struct subkey *sub;              /* tfms of them, in the locked mapping */
	void *secret;                    /* the mapping */
	size_t secret_len;
	/* options */
	unsigned sector_size, sector_shift;
	bool iv_large_sectors, allow_discards, same_cpu_crypt, submit_from_crypt_cpus, no_read_workqueue,
		no_write_workqueue;
	bool suspended;
	/* the worker pool */
	pthread_mutex_t lock;
	struct worker *idle;
	unsigned gen;                    /* a key change makes older workers re-key */
	struct pm_par *par;              /* helper threads for large requests */
};

struct wctx {
	struct pm_cctx c[2];             /* decrypt, encrypt */
	struct pm_cctx essiv;            /* ECB encrypt under the salt */
	struct pm_cctx tw_enc, tw_dec;   /* equal halves: ECB encrypt under K2, decrypt under K2' */
};

struct worker {
	struct worker *next;
	unsigned gen;
	uint8_t *buf;
	struct wctx t[];
};

/* ---- workers ---- */

static void wctx_clear(struct wctx *t)
{
	pm_cctx_fini(&t->c[0]);
	pm_cctx_fini(&t->c[1]);
	pm_cctx_fini(&t->essiv);
	pm_cctx_fini(&t->tw_enc);
	pm_cctx_fini(&t->tw_dec);
}

static void worker_free(struct crypt *cc, struct worker *w)
{
	if (!w)
		return;
	for (unsigned i = 0; i < cc->tfms; i++)
		wctx_clear(&w->t[i]);
	free(w->buf);
	free(w);
}

static struct worker *worker_get(struct crypt *cc)
{
	struct worker *w;
	unsigned gen;

	pthread_mutex_lock(&cc->lock);
	if ((w = cc->idle))
		cc->idle = w->next;
	gen = cc->gen;
	pthread_mutex_unlock(&cc->lock);
	if (!w) {
		if (!(w = calloc(1, sizeof(*w) + cc->tfms * sizeof(w->t[0]))))
			return NULL;
		w->gen = gen;
	}
	if (w->gen != gen) {
		for (unsigned i = 0; i < cc->tfms; i++)
			wctx_clear(&w->t[i]);
		w->gen = gen;
	}
	return w;
}

static void worker_put(struct crypt *cc, struct worker *w)
{
	pthread_mutex_lock(&cc->lock);
	w->next = cc->idle;
	cc->idle = w;
	pthread_mutex_unlock(&cc->lock);
}

/* drop the idle workers (their contexts hold the old key) and make the busy ones re-key */
static void workers_rekey(struct crypt *cc)
{
	struct worker *w;

	pthread_mutex_lock(&cc->lock);
	w = cc->idle;
	cc->idle = NULL;
	cc->gen++;
	pthread_mutex_unlock(&cc->lock);
	while (w) {
		struct worker *next = w->next;
		worker_free(cc, w);
		w = next;
	}
}

/* one context keyed for the I/O path: a key OpenSSL refuses there is an I/O error */
static int ctx_new(struct pm_cctx *x, const struct pm_cipher *c, const uint8_t *key, int enc)
{
	int r = pm_cctx_init(x, c, key, enc);

	return r == -ENOMEM ? r : r < 0 ? -EIO : 0;
}

/* the contexts of key k for a direction, made on first use */
static int wctx_ready(struct crypt *cc, struct wctx *t, unsigned k, int enc)
{
	struct subkey *s = &cc->sub[k];
	unsigned ks = cc->key_size / cc->tfms;
	const uint8_t *key = cc->key + (size_t)k * ks;
	int r;

	if (!t->c[enc].c) {
		if (cc->null_cipher)
			return 0;
		if ((r = ctx_new(&t->c[enc], &cc->ciph, s->equal_halves ? s->xts_alt : key, enc)) < 0)
			return r;
	}
	if (cc->ivmode == IV_ESSIV && !t->essiv.c && (r = ctx_new(&t->essiv, &cc->essiv_ecb, s->salt, 1)) < 0)
		return r;
	if (s->equal_halves && !t->tw_enc.c) {
		if ((r = ctx_new(&t->tw_enc, &cc->tweak_ecb, key + ks / 2, 1)) < 0 ||
		    (r = ctx_new(&t->tw_dec, &cc->tweak_ecb, s->tweak_alt, 0)) < 0)
			return r;
	}
	return 0;
}

static int ecb_block(struct pm_cctx *x, uint8_t blk[16])
{
	return pm_cctx_run(x, NULL, blk, blk, 16);
}

/* ---- the IV and one sector ---- */

static int make_iv(struct crypt *cc, struct wctx *t, uint64_t sector, uint8_t iv[16])
{
	memset(iv, 0, 16);
	switch (cc->ivmode) {
	case IV_PLAIN:
		put_le32(iv, (uint32_t)sector);
		break;
	case IV_PLAIN64:
		put_le64(iv, sector);
		break;
	case IV_PLAIN64BE:
		put_be64(iv + 8, sector);
		break;
	case IV_ESSIV:
		put_le64(iv, sector);
		if (ecb_block(&t->essiv, iv) < 0)
			return -EIO;
		break;
	case IV_BENBI:
		put_be64(iv + 8, (sector << cc->benbi_shift) + 1);
		break;
	default:
		break;
	}
	if (t->tw_enc.c && (ecb_block(&t->tw_enc, iv) < 0 || ecb_block(&t->tw_dec, iv) < 0))
		return -EIO;
	return 0;
}

/* en- or decrypt len bytes (whole sectors) that sit at byte off of the target, from in to out */
static int convert(struct crypt *cc, struct worker *w, int enc, uint64_t off, const uint8_t *in, uint8_t *out,
		   size_t len)
{
	unsigned ss = cc->sector_size;
	int r;

	for (size_t done = 0; done < len; done += ss) {
		uint64_t s512 = (off + done) / PM_SECTOR + cc->iv_offset;
		unsigned k = (unsigned)(s512 & (cc->tfms - 1));
		struct wctx *t = &w->t[k];
		uint8_t iv[16];

		if ((r = wctx_ready(cc, t, k, enc)) < 0)
			return r;
		if (cc->null_cipher) {
			if (out != in)
				memcpy(out + done, in + done, ss);
			continue;
		}
		if (cc->iv_size &&
		    (r = make_iv(cc, t, cc->iv_large_sectors ? s512 >> cc->sector_shift : s512, iv)) < 0)
			return r;
		if ((r = pm_cctx_run(&t->c[enc], cc->iv_size ? iv : NULL, in + done, out + done, ss)) < 0)
			return r;
	}
	return 0;
}

/* ---- I/O ---- */

/* the device's byte for the target's; misaligned I/O is killed (-EIO) as crypt_map does, and so is
 * I/O without a valid key and I/O past the device's end */
static int crypt_where(struct pm_target *ti, uint64_t off, uint64_t len, uint64_t *at)
{
	struct crypt *cc = ti->priv;
	uint64_t base = cc->start * PM_SECTOR;

	if ((off | len) & (cc->sector_size - 1) || !__atomic_load_n(&cc->key_valid, __ATOMIC_ACQUIRE))
		return -EIO;
	if (base / PM_SECTOR != cc->start || base + off < base || base + off + len > cc->dev->vdev->size)
		return -EIO;
	*at = base + off;
	return 0;
}

/* One request's cipher work in parts (CRYPT_PART, whole 4 KiB), on the caller's thread and
 * the target's helper threads: a 1 MiB read of a 512-byte-sector device costs one core about 0.4 ms
 * of cipher calls (an IV set up per sector), while the FUSE thread that brought it is the only one
 * at work. Each part takes its own worker. */
struct crypt_job {
	struct crypt *cc;
	uint64_t off, at;         /* the target's byte and the device's */
	const uint8_t *in;
	uint8_t *out;             /* reads: in place */
	size_t len, part;
};

/* part i's byte in the request and its length */
static size_t part_of(const struct crypt_job *j, unsigned i, size_t *len)
{
	size_t o = (size_t)i * j->part;

	*len = j->len - o < j->part ? j->len - o : j->part;
	return o;
}

/* part i of a read: read, then decrypted in place */
static int read_part(void *arg, unsigned i)
{
	struct crypt_job *j = arg;
	size_t n, o = part_of(j, i, &n);
	struct worker *w;
	int r;

	if ((r = pm_vdev_read(j->cc->dev->vdev, j->at + o, j->out + o, n)) < 0)
		return r;
	if (!(w = worker_get(j->cc)))
		return -ENOMEM;
	r = convert(j->cc, w, 0, j->off + o, j->out + o, j->out + o, n);
	worker_put(j->cc, w);
	return r;
}

/* part i of a write: encrypted through the worker's buffer and written, CRYPT_CHUNK at a time */
static int write_part(void *arg, unsigned i)
{
	struct crypt_job *j = arg;
	size_t n, o = part_of(j, i, &n), end = o + n;
	struct worker *w = worker_get(j->cc);
	int r = 0;

	if (!w)
		return -ENOMEM;
	if (!w->buf && !(w->buf = malloc(CRYPT_CHUNK))) {
		worker_put(j->cc, w);
		return -ENOMEM;
	}
	for (; o < end && r >= 0; o += CRYPT_CHUNK) {
		n = end - o < CRYPT_CHUNK ? end - o : CRYPT_CHUNK;
		if ((r = convert(j->cc, w, 1, j->off + o, j->in + o, w->buf, n)) >= 0)
			r = pm_vdev_write(j->cc->dev->vdev, j->at + o, w->buf, n);
	}
	worker_put(j->cc, w);
	return r;
}

/* Parts of CRYPT_PART, so that a helper that wakes late (tens of microseconds to wake an idle CPU in
 * a VM) still finds some, and one that wakes too late finds none and costs nothing. */
static int crypt_run(struct crypt_job *j, int (*fn)(void *, unsigned))
{
	j->part = j->len >= 2 * CRYPT_PART ? CRYPT_PART : j->len;
	return pm_par_run(j->cc->par, (unsigned)((j->len + j->part - 1) / j->part), fn, j);
}

static int crypt_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct crypt *cc = ti->priv;
	struct crypt_job j = { .cc = cc, .off = off, .out = buf, .len = len };
	int r;

	if ((r = crypt_where(ti, off, len, &j.at)) < 0)
		return r;
	if ((r = crypt_run(&j, read_part)) < 0)
		explicit_bzero(buf, len);
	return r;
}

static int crypt_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct crypt *cc = ti->priv;
	struct crypt_job j = { .cc = cc, .off = off, .in = buf, .len = len };
	int r;

	if ((r = crypt_where(ti, off, len, &j.at)) < 0)
		return r;
	return crypt_run(&j, write_part);
}

/* discards bypass the encryption, as flushes do (the table flushes the device) */
static int crypt_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct crypt *cc = ti->priv;
	uint64_t base = cc->start * PM_SECTOR;

	if (!cc->allow_discards)
		return -EOPNOTSUPP;
	if (base / PM_SECTOR != cc->start || base + off < base || base + off + len > cc->dev->vdev->size)
		return -EIO;
	return pm_vdev_discard(cc->dev->vdev, base + off, len);
}

/* ---- parsing as the kernel's sscanf does ---- */

/* digits (at least one) from s as the kernel's %u/%llu reads them; *end after them */
static bool scan_num(const char *s, unsigned long long *v, const char **end)
{
	unsigned long long x = 0;
	const char *p = s;

	while (*p >= '0' && *p <= '9')
		x = x * 10 + (unsigned)(*p++ - '0');
	*v = x;
	*end = p;
	return p != s;
}

/* sscanf(s, "%u%c") == 1 */
static bool scan_uint(const char *s, unsigned *v)
{
	unsigned long long x;
	const char *end;

	if (!scan_num(s, &x, &end) || *end)
		return false;
	*v = (unsigned)x;
	return true;
}

/* get_key_size(): the hex key's byte count, or for ":<size>:<type>:<desc>" the size, the key string
 * then pointing at ":<type>:<desc>" */
static int key_size_of(char **key)
{
	unsigned long long x;
	const char *end;

	if ((*key)[0] != ':')
		return (int)(strlen(*key) >> 1);
	if (!strchr(*key + 1, ':') || !scan_num(*key + 1, &x, &end) || *end != ':' || (int)x < 0)
		return -EINVAL;
	*key = strchr(*key + 1, ':');
	return (int)x;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- the cipher ---- */

/* crypt_alloc_tfms(): what OpenSSL can do of "<chain>(<cipher>)", essiv(...,<hash>) around it */
static bool cipher_alloc(struct crypt *cc, const char *chain, const char *cipher, const char *essiv_hash)
{
	static const char *const chains[] = { "ecb", "cbc", "xts", "ctr" };
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(chains) && strcmp(chain, chains[i]); i++)
		;
	if (i == ARRAY_SIZE(chains))
		return false;
	cc->chain = (enum chain)i;
	if (!strcmp(cipher, "cipher_null"))
		cc->null_cipher = true;
	else if (strcmp(cipher, "aes"))
		return false;
	if (cc->null_cipher && cc->chain != CH_ECB)
		return false;
	cc->iv_size = cc->chain == CH_ECB ? 0 : 16;
	if (essiv_hash) {
		/* the essiv template: the IV as big as the cipher's block, the digest a key size of it */
		for (const char *p = essiv_hash; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				return false;
		if (cc->null_cipher || cc->iv_size != 16 || !(cc->essiv_md = EVP_get_digestbyname(essiv_hash)) ||
		    EVP_MD_get_size(cc->essiv_md) < 16 || EVP_MD_get_size(cc->essiv_md) > 32)
			return false;
	}
	return true;
}

/* the legacy form: cipher[:keycount]-chainmode-ivmode[:ivopts] (crypt_ctr_cipher_old) */
static int cipher_old(struct pm_target *ti, struct crypt *cc, char *spec, char **ivmode, char **ivopts)
{
	char *tmp = spec, *cipher, *chainmode, *keycount;
	char api[CRYPTO_MAX_ALG_NAME];
	int n;

	if (strchr(spec, '('))
		return pm_target_fail(ti, -EINVAL, "Bad cipher specification");
	keycount = strsep(&tmp, "-");
	cipher = strsep(&keycount, ":");
	if (!keycount)
		cc->tfms = 1;
	else if (!scan_uint(keycount, &cc->tfms) || !cc->tfms || (cc->tfms & (cc->tfms - 1)))
		return pm_target_fail(ti, -EINVAL, "Bad cipher key count specification");
	chainmode = strsep(&tmp, "-");
	*ivmode = strsep(&tmp, ":");
	*ivopts = tmp;
	if (!chainmode || (!strcmp(chainmode, "plain") && !*ivmode)) {
		chainmode = "cbc";
		*ivmode = "plain";
	}
	if (strcmp(chainmode, "ecb") && !*ivmode)
		return pm_target_fail(ti, -EINVAL, "IV mechanism required");
	if (*ivmode && !strcmp(*ivmode, "essiv")) {
		if (!*ivopts)
			return pm_target_fail(ti, -EINVAL, "Digest algorithm missing for ESSIV mode");
		n = snprintf(api, sizeof(api), "essiv(%s(%s),%s)", chainmode, cipher, *ivopts);
	} else {
		n = snprintf(api, sizeof(api), "%s(%s)", chainmode, cipher);
	}
	if (n < 0 || n >= (int)sizeof(api))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate cipher strings");
	if (!cipher_alloc(cc, chainmode, cipher, *ivmode && !strcmp(*ivmode, "essiv") ? *ivopts : NULL))
		return pm_target_fail(ti, -ENOENT, "Error allocating crypto tfm");
	return 0;
}

/* capi:<mode(cipher)>-ivmode[:ivopts] (crypt_ctr_cipher_new) */
static int cipher_new(struct pm_target *ti, struct crypt *cc, char *spec, bool aead, char **ivmode, char **ivopts)
{
	char *api = spec + strlen("capi:"), *open, *close;

	cc->tfms = 1;
	if ((*ivopts = strrchr(api, ':')))
		*(*ivopts)++ = 0;
	if ((*ivmode = strrchr(api, '-')))
		*(*ivmode)++ = 0;
	if (*ivmode && !strcmp(*ivmode, "essiv")) {
		if (!*ivopts)
			return pm_target_fail(ti, -EINVAL, "Digest algorithm missing for ESSIV mode");
		if (strlen("essiv(,)") + strlen(api) + strlen(*ivopts) >= CRYPTO_MAX_ALG_NAME)
			return pm_target_fail(ti, -ENOMEM, "Cannot allocate cipher string");
	}
	/* "<chain>(<cipher>)"; no AEAD here */
	open = strchr(api, '(');
	close = open ? strchr(open, ')') : NULL;
	if (aead || !open || !close || close[1] || strchr(open + 1, '('))
		return pm_target_fail(ti, -ENOENT, "Error allocating crypto tfm");
	*open = *close = 0;
	if (!cipher_alloc(cc, api, open + 1, *ivmode && !strcmp(*ivmode, "essiv") ? *ivopts : NULL))
		return pm_target_fail(ti, -ENOENT, "Error allocating crypto tfm");
	return 0;
}

/* crypt_ctr_ivmode() */
static int choose_ivmode(struct pm_target *ti, struct crypt *cc, const char *ivmode)
{
	static const char *const names[] = { [IV_PLAIN] = "plain", [IV_PLAIN64] = "plain64",
		[IV_PLAIN64BE] = "plain64be", [IV_ESSIV] = "essiv", [IV_BENBI] = "benbi", [IV_NULL] = "null" };
	static const char *const unsupported[] = { "eboiv", "elephant", "lmk", "tcw", "random" };

	cc->ivmode = IV_NONE;
	if (!cc->iv_size || !ivmode)
		return 0; /* "Selected cipher does not support IVs": the IV mode is ignored */
	for (unsigned i = IV_PLAIN; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(ivmode, names[i])) {
			cc->ivmode = (enum ivmode)i;
			/* benbi counts cipher blocks of 2^(9 - shift) bytes: 16 for aes, 1 for ctr */
			cc->benbi_shift = cc->chain == CH_CTR ? 9 : 5;
			return 0;
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(unsupported); i++)
		if (!strcmp(ivmode, unsupported[i]))
			return pm_target_fail(ti, -EOPNOTSUPP, "IV mode %s is not supported in userspace", ivmode);
	return pm_target_fail(ti, -EINVAL, "Invalid IV mode");
}

static const EVP_CIPHER *aes_of(enum chain ch, unsigned key_bytes)
{
	switch (ch) {
	case CH_ECB:
		return key_bytes == 16 ? EVP_aes_128_ecb() : key_bytes == 24 ? EVP_aes_192_ecb() :
		       key_bytes == 32 ? EVP_aes_256_ecb() : NULL;
	case CH_CBC:
		return key_bytes == 16 ? EVP_aes_128_cbc() : key_bytes == 24 ? EVP_aes_192_cbc() :
		       key_bytes == 32 ? EVP_aes_256_cbc() : NULL;
	case CH_CTR:
		return key_bytes == 16 ? EVP_aes_128_ctr() : key_bytes == 24 ? EVP_aes_192_ctr() :
		       key_bytes == 32 ? EVP_aes_256_ctr() : NULL;
	case CH_XTS:
		return key_bytes == 32 ? EVP_aes_128_xts() : key_bytes == 64 ? EVP_aes_256_xts() : NULL;
	}
	return NULL;
}

/* A cipher is set up at the first key that needs it and kept: a later key (a message, while
 * suspended: no I/O) has the same size, so the same ciphers. */
static void cipher_once(struct pm_cipher *c, const EVP_CIPHER *evp)
{
	if (!c->evp)
		pm_cipher_init(c, evp, true);
}

/* crypt_setkey() with the IV generator's key: the subkeys' ciphers, salts and XTS workarounds;
 * -EINVAL where the kernel's setkey fails, -EOPNOTSUPP where only OpenSSL lacks the cipher */
static int setkey(struct crypt *cc)
{
	unsigned ks = cc->key_size >> __builtin_ctz(cc->tfms);
	const EVP_CIPHER *evp;

	if (cc->null_cipher)
		return ks ? -EINVAL : 0;
	if (cc->chain == CH_XTS && ks == 48)
		return -EOPNOTSUPP; /* AES-192-XTS */
	if (!(evp = aes_of(cc->chain, ks)))
		return -EINVAL;
	cipher_once(&cc->ciph, evp);
	for (unsigned k = 0; k < cc->tfms; k++) {
		const uint8_t *key = cc->key + (size_t)k * ks;
		struct subkey *s = &cc->sub[k];
		unsigned ds;

		memset(s, 0, sizeof(*s));
		if (cc->ivmode == IV_ESSIV) {
			/* the salt, H(key), keys the IV's cipher; the kernel's setkey refuses a bad size */
			if (!EVP_Digest(key, ks, s->salt, &ds, cc->essiv_md, NULL))
				return -ENOMEM;
			if (!(evp = aes_of(CH_ECB, ds)))
				return -EINVAL;
			cipher_once(&cc->essiv_ecb, evp);
		}
		if (cc->chain == CH_XTS && !memcmp(key, key + ks / 2, ks / 2)) {
			s->equal_halves = true;
			memcpy(s->xts_alt, key, ks);
			s->xts_alt[ks / 2] ^= 1;
			memcpy(s->tweak_alt, s->xts_alt + ks / 2, ks / 2);
			cipher_once(&cc->tweak_ecb, aes_of(CH_ECB, ks / 2));
		}
	}
	return 0;
}

/* crypt_set_key(): decode the hex key (or "-") into the locked mapping and key the ciphers; the key
 * string is overwritten with '0's as the kernel does */
static int set_key(struct crypt *cc, char *key, const char **why)
{
	size_t slen = strlen(key);
	int r = -EINVAL;

	*why = "Error decoding and setting key";
	cc->key_valid = false;
	if (!cc->key_size && strcmp(key, "-"))
		goto out;
	if (key[0] == ':') {
		*why = "Error decoding and setting key (keys in the kernel keyring are not supported in userspace)";
		goto out;
	}
	if (!cc->secret)
		goto out;
	for (unsigned i = 0; i < cc->key_size; i++) {
		int hi = hexval(key[2 * i]), lo = hexval(key[2 * i + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		cc->key[i] = (uint8_t)(hi << 4 | lo);
	}
	if ((r = setkey(cc)) == -EOPNOTSUPP)
		*why = "AES-192-XTS (a 384-bit XTS key) is not supported by OpenSSL";
	if (!r)
		cc->key_valid = true;
out:
	memset(key, '0', slen);
	return r;
}

static void secret_free(struct crypt *cc)
{
	if (!cc->secret)
		return;
	explicit_bzero(cc->secret, cc->secret_len);
	munlock(cc->secret, cc->secret_len);
	munmap(cc->secret, cc->secret_len);
	cc->secret = NULL;
}

/* the key and what is derived from it: one private mapping, locked when allowed, never dumped */
static int secret_alloc(struct crypt *cc)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t subs = ((size_t)cc->key_size + 63) & ~(size_t)63;
	size_t len = subs + cc->tfms * sizeof(struct subkey);
	void *p;

	len = (len + page - 1) & ~(page - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	(void)mlock(p, len);  /* may fail without privilege: the mapping is still wiped */
	(void)madvise(p, len, MADV_DONTDUMP);
	cc->secret = p;
	cc->secret_len = len;
	cc->key = p;
	cc->sub = (struct subkey *)((uint8_t *)p + subs);
	return 0;
}

/* crypt_ctr_cipher(): the spec, the IV mode, the key */
static int ctr_cipher(struct pm_target *ti, struct crypt *cc, const char *spec, char *key, bool aead)
{
	char *ivmode = NULL, *ivopts = NULL, *copy;
	const char *why;
	int r;

	if (!(cc->cipher_string = strdup(spec)) || !(copy = strdup(spec)))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate cipher strings");
	if (!strncmp(copy, "capi:", 5))
		r = cipher_new(ti, cc, copy, aead, &ivmode, &ivopts);
	else if (aead)
		r = pm_target_fail(ti, -EINVAL, "Bad cipher specification");
	else
		r = cipher_old(ti, cc, copy, &ivmode, &ivopts);
	if (r >= 0)
		r = choose_ivmode(ti, cc, ivmode);
	free(copy);
	if (r < 0)
		return r;
	/* nothing is locked for a key that cannot be used: from the keyring, or more keys than bytes (which
	 * the kernel's setkey refuses); set_key() refuses them without it */
	if (key[0] != ':' && (cc->tfms == 1 || cc->tfms <= cc->key_size) && secret_alloc(cc) < 0)
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate encryption context");
	if ((r = set_key(cc, key, &why)) < 0)
		return pm_target_fail(ti, r == -EOPNOTSUPP ? r : -EINVAL, "%s", why);
	return 0;
}

/* crypt_ctr_optional() */
static int ctr_optional(struct pm_target *ti, struct crypt *cc, unsigned argc, char **argv, unsigned *tag_size,
			bool *aead)
{
	unsigned n;

	if (!argc || !scan_uint(argv[0], &n) || n > 8 || n > argc - 1)
		return pm_target_fail(ti, -EINVAL, "Invalid number of feature args");
	for (unsigned i = 1; i <= n; i++) {
		const char *o = argv[i];
		unsigned long long v;
		const char *end;

		if (!strcasecmp(o, "allow_discards"))
			cc->allow_discards = true;
		else if (!strcasecmp(o, "same_cpu_crypt"))
			cc->same_cpu_crypt = true;
		else if (!strcasecmp(o, "submit_from_crypt_cpus"))
			cc->submit_from_crypt_cpus = true;
		else if (!strcasecmp(o, "no_read_workqueue"))
			cc->no_read_workqueue = true;
		else if (!strcasecmp(o, "no_write_workqueue"))
			cc->no_write_workqueue = true;
		else if (!strncmp(o, "integrity:", 10) && scan_num(o + 10, &v, &end)) {
			const char *prof = strchr(o + 10, ':');
			if ((unsigned)v == 0 || (unsigned)v > MAX_TAG_SIZE)
				return pm_target_fail(ti, -EINVAL, "Invalid integrity arguments");
			if (prof && !strcasecmp(prof + 1, "aead"))
				*aead = true;
			else if (!prof || strcasecmp(prof + 1, "none"))
				return pm_target_fail(ti, -EINVAL, "Unknown integrity profile");
			*tag_size = (unsigned)v;
		} else if (!strncmp(o, "sector_size:", 12) && scan_num(o + 12, &v, &end) && !*end) {
			unsigned ss = (uint16_t)v; /* %hu */
			if (ss < PM_SECTOR || ss > 4096 || (ss & (ss - 1)))
				return pm_target_fail(ti, -EINVAL, "Invalid feature value for sector_size");
			if (ti->len & ((ss >> 9) - 1))
				return pm_target_fail(ti, -EINVAL, "Device size is not multiple of sector_size feature");
			cc->sector_size = ss;
			cc->sector_shift = (unsigned)__builtin_ctz(ss) - 9;
		} else if (!strcasecmp(o, "iv_large_sectors"))
			cc->iv_large_sectors = true;
		else
			return pm_target_fail(ti, -EINVAL, "Invalid feature arguments");
	}
	return 0;
}

static void crypt_dtr(struct pm_target *ti)
{
	struct crypt *cc = ti->priv;

	if (!cc)
		return;
	pm_par_free(cc->par);
	while (cc->idle) {
		struct worker *w = cc->idle;
		cc->idle = w->next;
		worker_free(cc, w);
	}
	pthread_mutex_destroy(&cc->lock);
	pm_cipher_fini(&cc->ciph);
	pm_cipher_fini(&cc->essiv_ecb);
	pm_cipher_fini(&cc->tweak_ecb);
	secret_free(cc);
	free(cc->cipher_string);
	free(cc);
	ti->priv = NULL;
}

static int crypt_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct crypt *cc;
	unsigned tag_size = 0;
	bool aead = false;
	char *key;
	int key_size, r;

	if (argc < 5)
		return pm_target_fail(ti, -EINVAL, "Not enough arguments");
	key = argv[1];
	if ((key_size = key_size_of(&key)) < 0)
		return pm_target_fail(ti, -EINVAL, "Cannot parse key size");
	if (!(cc = calloc(1, sizeof(*cc))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate encryption context");
	pthread_mutex_init(&cc->lock, NULL);
	ti->priv = cc;
	if (pm_par_new(pm_par_helpers(), &cc->par) < 0) {
		r = pm_target_fail(ti, -ENOMEM, "Cannot allocate encryption context");
		goto bad;
	}
	cc->key_size = (unsigned)key_size;
	cc->sector_size = PM_SECTOR;
	if (argc > 5 && (r = ctr_optional(ti, cc, argc - 5, argv + 5, &tag_size, &aead)) < 0)
		goto bad;
	if ((r = ctr_cipher(ti, cc, argv[0], key, aead)) < 0)
		goto bad;
	r = -EINVAL;
	if (pm_target_u64(argv[2], &cc->iv_offset) < 0 || (cc->iv_offset & ((cc->sector_size >> 9) - 1))) {
		pm_target_fail(ti, r, "Invalid iv_offset sector");
		goto bad;
	}
	if ((r = pm_target_source(ti, argv[3], &cc->dev)) < 0)
		goto bad;
	if (pm_target_u64(argv[4], &cc->start) < 0) {
		r = pm_target_fail(ti, -EINVAL, "Invalid device sector");
		goto bad;
	}
	if (tag_size) {
		/* no device here has the DM-DIF-EXT-TAG profile dm-integrity gives */
		r = pm_target_fail(ti, -EINVAL, "Integrity profile not supported.");
		goto bad;
	}
	/* the kernel's table check after the target's io_hints (dm-table.c device_area_is_invalid): the
	 * area on the device must start on the mapped device's logical block (sector_size) */
	if (cc->start & ((cc->sector_size >> 9) - 1)) {
		r = pm_target_fail(ti, -EINVAL, "start=%llu not aligned to h/w logical block size %u of %s",
				   (unsigned long long)cc->start, cc->sector_size, cc->dev->name);
		goto bad;
	}
	ti->block_size = cc->sector_size;
	return 0;
bad:
	crypt_dtr(ti);
	return r;
}

/* ---- status, messages ---- */

static void crypt_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct crypt *cc = ti->priv;
	size_t o = 0;
	unsigned n;

	if (!table)
		return;
#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	PUT("%s ", cc->cipher_string);
	if (!cc->key_size)
		PUT("-");
	for (unsigned i = 0; i < cc->key_size; i++)
		PUT("%02x", cc->key[i]);
	PUT(" %llu %s %llu", (unsigned long long)cc->iv_offset, cc->dev->name, (unsigned long long)cc->start);
	n = cc->allow_discards + cc->same_cpu_crypt + cc->submit_from_crypt_cpus + cc->no_read_workqueue +
	    cc->no_write_workqueue + (cc->sector_size != PM_SECTOR) + cc->iv_large_sectors;
	if (n) {
		PUT(" %u", n);
		if (cc->allow_discards)
			PUT(" allow_discards");
		if (cc->same_cpu_crypt)
			PUT(" same_cpu_crypt");
		if (cc->submit_from_crypt_cpus)
			PUT(" submit_from_crypt_cpus");
		if (cc->no_read_workqueue)
			PUT(" no_read_workqueue");
		if (cc->no_write_workqueue)
			PUT(" no_write_workqueue");
		if (cc->sector_size != PM_SECTOR)
			PUT(" sector_size:%u", cc->sector_size);
		if (cc->iv_large_sectors)
			PUT(" iv_large_sectors");
	}
#undef PUT
}

/* key set <key> | key wipe, only while suspended (crypt_message) */
static int crypt_message(struct pm_target *ti, unsigned argc, char **argv, char *reply, size_t reply_len)
{
	struct crypt *cc = ti->priv;
	const char *why;
	char *key;
	int r;

	(void)reply, (void)reply_len;
	if (argc < 2 || strcasecmp(argv[0], "key"))
		return pm_target_fail(ti, -EINVAL, "unrecognised message received.");
	if (!cc->suspended)
		return pm_target_fail(ti, -EINVAL, "not suspended during key manipulation.");
	if (argc == 3 && !strcasecmp(argv[1], "set")) {
		key = argv[2];
		r = key_size_of(&key);
		if (r < 0 || (unsigned)r != cc->key_size) {
			memset(argv[2], '0', strlen(argv[2]));
			return pm_target_fail(ti, -EINVAL, "Error decoding and setting key");
		}
		workers_rekey(cc);
		if ((r = set_key(cc, key, &why)) < 0) {
			explicit_bzero(cc->key, cc->key_size);
			return pm_target_fail(ti, -EINVAL, "%s", why);
		}
		return 0;
	}
	if (argc == 2 && !strcasecmp(argv[1], "wipe")) {
		cc->key_valid = false;
		workers_rekey(cc);
		explicit_bzero(cc->secret, cc->secret_len);
		return 0;
	}
	return pm_target_fail(ti, -EINVAL, "unrecognised message received.");
}

static void crypt_presuspend(struct pm_target *ti)
{
	((struct crypt *)ti->priv)->suspended = true;
}

static void crypt_resume(struct pm_target *ti)
{
	((struct crypt *)ti->priv)->suspended = false;
}

const struct pm_target_type pm_target_crypt = {
	.name = "crypt",
	.version = { 1, 24, 0 },
	.cpu_bound = true,
	.ctr = crypt_ctr,
	.dtr = crypt_dtr,
	.read = crypt_read,
	.write = crypt_write,
	.discard = crypt_discard,
	.status = crypt_status,
	.message = crypt_message,
	.presuspend = crypt_presuspend,
	.resume = crypt_resume,
};
