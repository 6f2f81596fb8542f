/* SPDX-License-Identifier: GPL-2.0-or-later */
/* striped <#stripes> <chunk_sectors> (<dev> <offset>){#stripes}: chunk c of the target lies on stripe
 * c % N, in row c / N of it. Checked as the current kernel does (a chunk of any size > 0, the length a
 * multiple of chunk * N); a stripe whose I/O failed is shown 'D' in the status. */
#include "target.h"
#include "../par.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRIPE_ERROR_MAX 15 /* the kernel's DM_IO_ERROR_THRESHOLD: events until then */

struct stripe {
	struct pm_source *dev;
	uint64_t start;           /* sectors */
	unsigned errors;          /* atomic */
};

struct striped {
	uint32_t n;
	uint64_t chunk;           /* sectors */
	struct pm_par *par;       /* helper threads: a large request's stripes at once */
	struct stripe s[];
};

static int striped_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	uint64_t n, chunk;
	struct striped *sc;
	int r;

	if (argc < 2)
		return pm_target_fail(ti, -EINVAL, "Not enough arguments");
	if (pm_target_u64(argv[0], &n) < 0 || n == 0 || n > 1024 * 1024)
		return pm_target_fail(ti, -EINVAL, "Invalid stripe count");
	if (pm_target_u64(argv[1], &chunk) < 0 || chunk == 0 || chunk > UINT32_MAX)
		return pm_target_fail(ti, -EINVAL, "Invalid chunk_size");
	if (ti->len % n)
		return pm_target_fail(ti, -EINVAL, "Target length not divisible by number of stripes");
	if ((ti->len / n) % chunk)
		return pm_target_fail(ti, -EINVAL, "Target length not divisible by chunk size");
	if (argc != 2 + 2 * n)
		return pm_target_fail(ti, -EINVAL, "Not enough destinations specified");
	if (!(sc = calloc(1, sizeof(*sc) + n * sizeof(sc->s[0]))))
		return pm_target_fail(ti, -ENOMEM, "Memory allocation for striped context failed");
	sc->n = (uint32_t)n;
	sc->chunk = chunk;
	for (uint32_t i = 0; i < n; i++) {
		if (pm_target_u64(argv[3 + 2 * i], &sc->s[i].start) < 0) {
			free(sc);
			return pm_target_fail(ti, -EINVAL, "Couldn't parse stripe destination");
		}
		if ((r = pm_target_source(ti, argv[2 + 2 * i], &sc->s[i].dev)) < 0) {
			free(sc);
			return pm_target_fail(ti, r, "Couldn't parse stripe destination");
		}
	}
	if (pm_par_new(pm_par_helpers(), &sc->par) < 0) {
		free(sc);
		return pm_target_fail(ti, -ENOMEM, "Memory allocation for striped context failed");
	}
	ti->priv = sc;
	return 0;
}

static void striped_dtr(struct pm_target *ti)
{
	struct striped *sc = ti->priv;

	if (sc)
		pm_par_free(sc->par);
	free(sc);
}

/* A request spans STRIPED_MAX_PIECES chunks at most (the first and last may be parts of one): each
 * stripe gets its pieces in one vectored request, since a stripe's pieces of consecutive chunks lie
 * end to end on it. A sequential 1 MiB write over two stripes of 64 KiB chunks: two pwritev calls, not
 * sixteen pwrites (bench/udm.sh: 1700 MB/s through the userspace DM as sixteen, 2500 with 1 MiB
 * chunks). */
#define STRIPED_MAX_PIECES 64

static uint64_t striped_max_io(struct pm_target *ti, uint64_t off)
{
	struct striped *sc = ti->priv;
	uint64_t cb = sc->chunk * PM_SECTOR;

	if (cb > UINT64_MAX / STRIPED_MAX_PIECES)
		return cb - off % cb;
	return cb - off % cb + (STRIPED_MAX_PIECES - 1) * cb;
}

/* the kernel's striped_io_hints: a chunk times the stripes (in its 32-bit arithmetic) */
static uint32_t striped_io_opt(const struct pm_target *ti)
{
	const struct striped *sc = ti->priv;

	return (uint32_t)(sc->chunk << 9) * sc->n;
}

static struct stripe *locate(struct pm_target *ti, uint64_t off, uint64_t *at)
{
	struct striped *sc = ti->priv;
	uint64_t sector = off / PM_SECTOR;
	uint64_t chunk = sector / sc->chunk, rest = sector % sc->chunk;
	struct stripe *st = &sc->s[chunk % sc->n];

	*at = ((st->start + (chunk / sc->n) * sc->chunk + rest) * PM_SECTOR) + off % PM_SECTOR;
	return st;
}

static int io_done(struct pm_target *ti, struct stripe *st, int r)
{
	if (r < 0 && r != -EROFS) {
		unsigned e = __atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
		if (e <= STRIPE_ERROR_MAX)
			pm_target_event(ti);
	}
	return r;
}

/* Piece k of the request lies on stripe (first chunk + k) % N; the pieces of one stripe are k, k + N,
 * k + 2N...: one readv/writev for each stripe the request touches. A request of STRIPED_PAR or more
 * has them made at once, on the caller's thread and the target's helper threads (the stripes are
 * different devices, or different places of one: a sequential 1 MiB write over two files is two
 * 512 KiB writes into two page caches, which one thread would make one after the other). The error
 * returned is the first stripe's in the request's order (each stripe's counted, as the kernel counts
 * each bio's). */
#define STRIPED_PAR (256u << 10)

struct striped_job {
	struct pm_target *ti;
	bool wr;
	uint64_t off;
	uint8_t *buf;
	size_t len, first, pieces;
	int r[STRIPED_MAX_PIECES];   /* each stripe's result, in the order of its first piece */
};

/* the stripe of piece d (d < N): its pieces in one vectored request */
static int stripe_io(void *arg, unsigned d)
{
	struct striped_job *j = arg;
	struct striped *sc = j->ti->priv;
	uint64_t cb = sc->chunk * PM_SECTOR, at;
	struct stripe *st = locate(j->ti, d ? j->off + j->first + (d - 1) * cb : j->off, &at);
	struct iovec iov[STRIPED_MAX_PIECES];
	int n = 0;

	for (size_t k = d; k < j->pieces; k += sc->n) {
		size_t boff = k ? j->first + (k - 1) * cb : 0;
		size_t blen = k ? (j->len - boff < cb ? j->len - boff : (size_t)cb) : j->first;
		iov[n++] = (struct iovec){ .iov_base = j->buf + boff, .iov_len = blen };
	}
	j->r[d] = io_done(j->ti, st, j->wr ? pm_vdev_writev(st->dev->vdev, at, iov, n) :
					     pm_vdev_readv(st->dev->vdev, at, iov, n));
	return 0;
}

static int striped_rw(struct pm_target *ti, bool wr, uint64_t off, uint8_t *buf, size_t len)
{
	struct striped *sc = ti->priv;
	uint64_t cb = sc->chunk * PM_SECTOR;
	struct striped_job j = { .ti = ti, .wr = wr, .off = off, .buf = buf, .len = len };
	unsigned stripes;

	j.first = (size_t)(cb - off % cb < len ? cb - off % cb : len);
	j.pieces = 1 + (len - j.first + cb - 1) / cb;
	if (j.pieces > STRIPED_MAX_PIECES)
		return -EINVAL; /* never: max_io cuts requests to this */
	stripes = (unsigned)(j.pieces < sc->n ? j.pieces : sc->n);
	pm_par_run(len >= STRIPED_PAR ? sc->par : NULL, stripes, stripe_io, &j);
	for (unsigned d = 0; d < stripes; d++)
		if (j.r[d] < 0)
			return j.r[d];
	return 0;
}

static int striped_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	return striped_rw(ti, false, off, buf, len);
}

static int striped_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	return striped_rw(ti, true, off, (uint8_t *)(uintptr_t)buf, len); /* written from, never to */
}

/* chunk by chunk (a discard is not gathered) */
static int striped_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct striped *sc = ti->priv;
	uint64_t cb = sc->chunk * PM_SECTOR;

	while (len) {
		uint64_t at, n = cb - off % cb < len ? cb - off % cb : len;
		struct stripe *st = locate(ti, off, &at);
		int r = pm_vdev_discard(st->dev->vdev, at, n);
		if (r < 0)
			return r;
		off += n, len -= n;
	}
	return 0;
}

static void striped_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct striped *sc = ti->priv;
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (table) {
		PUT("%u %llu", sc->n, (unsigned long long)sc->chunk);
		for (uint32_t i = 0; i < sc->n; i++)
			PUT(" %s %llu", sc->s[i].dev->name, (unsigned long long)sc->s[i].start);
		return;
	}
	PUT("%u ", sc->n);
	for (uint32_t i = 0; i < sc->n; i++)
		PUT("%s ", sc->s[i].dev->name);
	PUT("1 ");
	for (uint32_t i = 0; i < sc->n; i++)
		PUT("%c", __atomic_load_n(&sc->s[i].errors, __ATOMIC_RELAXED) ? 'D' : 'A');
#undef PUT
}

const struct pm_target_type pm_target_striped = {
	.name = "striped",
	.version = { 1, 6, 0 },
	.ctr = striped_ctr,
	.dtr = striped_dtr,
	.read = striped_read,
	.write = striped_write,
	.discard = striped_discard,
	.status = striped_status,
	.max_io = striped_max_io,
	.io_opt = striped_io_opt,
};
