/* SPDX-License-Identifier: GPL-2.0-or-later */
/* snapshot <origin> <cow> <P|PO|N> <chunk> [<#features> discard_zeroes_cow [discard_passdown_origin]]
 * and snapshot-origin <origin>, as the kernel's dm-snapshot serves them.
 *
 * A snapshot reads a chunk from its COW device once the chunk has an exception (origin chunk -> COW
 * chunk), else from the origin; its writes go to the COW only, the chunk copied first unless the
 * write covers it. A write through snapshot-origin first copies each chunk it touches into every
 * live snapshot of that origin that has no exception for it (the snapshots are found with the
 * environment's each_target).
 *
 * Persistent stores (P, PO) use the kernel's on-disk format, little-endian, in chunks of C sectors:
 * chunk 0 the header (u32 magic "SnAp" 0x70416e53, valid, version 1, chunk size), then metadata
 * areas of E = C*512/16 entries {u64 old_chunk, u64 new_chunk} at chunk 1 + (E+1)*a with the data
 * chunks of their entries after them; the list ends at the first entry whose new_chunk is 0. An
 * exception is committed in the kernel's order: the data chunk is written and flushed, the next area
 * zeroed when this one becomes full, then the area is written and flushed; only then does the I/O
 * that caused it complete; the copies one origin write needs are committed together (one flush before
 * the metadata), as the kernel commits the exceptions completed together. A full or failed store is invalidated (header rewritten with valid 0,
 * every I/O fails, status "Invalid"); with PO a snapshot write that finds no room leaves it
 * "Overflow" instead (reads go on, writes fail). Transient stores (N) keep the exceptions in memory
 * and use the COW from chunk 0.
 *
 * A snapshot loaded while a live snapshot uses the same origin and COW (a reload, or the seed's
 * "dmsetup table top | dmsetup load base") does not read the store: it shares the live one's and
 * takes it over when it is resumed, as the kernel's exception handover does; the one it took it from
 * is invalid from then on. Unlike the kernel, the source need not be suspended first (the kernel's
 * preresume refuses with "Unable to perform snapshot handover until source is suspended.").
 *
 * From the environment: each_target is called by snapshot's constructor (a live snapshot sharing the
 * COW) and by every snapshot-origin write or discard (the snapshots to copy into), never by resume;
 * a snapshot's destructor waits for the origin writes copying into it.
 *
 * Locking: one rwlock per store. Reads and writes to chunks already remapped take it shared; making
 * an exception (copy, commit) holds it exclusively, so a chunk being copied is never read half
 * copied and an origin write waits until the chunks it overwrites are safe in every snapshot. */
#include "target.h"
#include "../util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC 0x70416e53u
#define SNAP_DISK_VERSION 1u
#define SNAP_DEFAULT_CHUNK 32u   /* sectors: a new persistent store whose table says 0 */
#define SNAP_ENTRY 16u           /* bytes of one on-disk exception */
#define XT_EMPTY UINT64_MAX

extern const struct pm_target_type pm_target_snapshot, pm_target_snapshot_origin;

/* ---- the exceptions: origin chunk -> COW chunk (open addressing) ---- */

struct xtab {
	uint64_t *kv;             /* pairs old, new; old == XT_EMPTY: a free slot */
	size_t cap;               /* pairs, a power of 2 */
	size_t n;
};

static size_t xt_slot(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

static bool xt_get(const struct xtab *t, uint64_t old, uint64_t *new)
{
	if (!t->cap)
		return false;
	for (size_t i = xt_slot(old, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (t->kv[2 * i] == XT_EMPTY)
			return false;
		if (t->kv[2 * i] == old) {
			*new = t->kv[2 * i + 1];
			return true;
		}
	}
}

static void xt_insert(uint64_t *kv, size_t cap, uint64_t old, uint64_t new)
{
	size_t i = xt_slot(old, cap);

	while (kv[2 * i] != XT_EMPTY)
		i = (i + 1) & (cap - 1);
	kv[2 * i] = old;
	kv[2 * i + 1] = new;
}

/* An entry for a chunk that has one already is ignored (the first one found serves). */
static int xt_put(struct xtab *t, uint64_t old, uint64_t new)
{
	uint64_t have;

	if (old == XT_EMPTY || xt_get(t, old, &have))
		return 0;
	if ((t->n + 1) * 4 > t->cap * 3) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		uint64_t *kv = malloc(cap * 2 * sizeof(*kv));
		if (!kv)
			return -ENOMEM;
		for (size_t i = 0; i < cap; i++)
			kv[2 * i] = XT_EMPTY;
		for (size_t i = 0; i < t->cap; i++)
			if (t->kv[2 * i] != XT_EMPTY)
				xt_insert(kv, cap, t->kv[2 * i], t->kv[2 * i + 1]);
		free(t->kv);
		t->kv = kv;
		t->cap = cap;
	}
	xt_insert(t->kv, t->cap, old, new);
	t->n++;
	return 0;
}

/* ---- the store and the targets ---- */

struct snap;

struct store {
	pthread_rwlock_t lock;
	unsigned refs;            /* the targets sharing it (atomic) */
	struct snap *owner;       /* the one serving it; the others sharing it are handed over or waiting */
	bool persistent;
	bool valid;
	bool overflow;            /* PO: a snapshot write found no room */
	uint32_t chunk;           /* sectors */
	uint64_t cb;              /* chunk bytes */
	uint32_t epa;             /* exceptions per metadata area */
	uint64_t next_free;       /* persistent: a chunk; transient: a sector */
	uint64_t area_no;         /* the metadata area being filled */
	uint32_t committed;       /* its entries */
	uint8_t *area;            /* its content */
	struct xtab x;
};

struct snap {
	struct pm_target *ti;
	struct pm_source *origin, *cow;
	struct store *st;
	bool po;                  /* the table said PO */
	bool zeroes, passdown;    /* discard_zeroes_cow, discard_passdown_origin */
	bool pending;             /* sharing a live snapshot's store: takes it over at resume */
	pthread_mutex_t m;
	pthread_cond_t idle;
	unsigned users;           /* origin writes copying into it (under m) */
};

static void store_put(struct store *st)
{
	if (!st || __atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_rwlock_destroy(&st->lock);
	free(st->area);
	free(st->x.kv);
	free(st);
}

static uint64_t area_chunk(const struct store *st, uint64_t a)
{
	return 1 + (uint64_t)(st->epa + 1) * a;
}

/* Is COW chunk c the store's own (the header, a metadata area)? An exception read from a damaged
 * or crafted store may name one: the kernel would write the snapshot's data over its own metadata
 * there; partmap fails that write (or discard) with EIO instead and reads it as the kernel does. */
static bool store_chunk(const struct store *st, uint64_t c)
{
	return c == 0 || (c - 1) % ((uint64_t)st->epa + 1) == 0;
}

/* I/O on a source: a request past its end fails with EIO as the kernel's does */
static int src_io(struct pm_source *s, bool write, uint64_t off, void *buf, size_t len)
{
	int r = write ? pm_vdev_write(s->vdev, off, buf, len) : pm_vdev_read(s->vdev, off, buf, len);

	return r == -ERANGE ? -EIO : r;
}

static int cow_zero(struct snap *s, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	int r;

	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((r = src_io(s->cow, true, off, (void *)(uintptr_t)zeros, n)) < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* chunk 0: the header, the rest of the chunk zero */
static int write_header(struct snap *s, bool valid)
{
	struct store *st = s->st;
	uint8_t h[PM_SECTOR] = { 0 };
	int r;

	put_le32(h, SNAP_MAGIC);
	put_le32(h + 4, valid);
	put_le32(h + 8, SNAP_DISK_VERSION);
	put_le32(h + 12, st->chunk);
	if ((r = src_io(s->cow, true, 0, h, sizeof(h))) < 0 || (r = cow_zero(s, PM_SECTOR, st->cb - PM_SECTOR)) < 0)
		return r;
	return pm_vdev_flush(s->cow->vdev);
}

/* The kernel's set_chunk_size rules (the logical block size of the devices is taken as 512). */
static bool chunk_ok(uint64_t c)
{
	return c && !(c & (c - 1)) && c <= (INT_MAX >> 9);
}

/* The store on the COW: a new one written, an existing one read into memory. 1: marked invalid. */
static int read_metadata(struct snap *s, uint32_t table_chunk)
{
	struct store *st = s->st;
	uint64_t cow_size = s->cow->vdev->size;
	uint8_t h[PM_SECTOR];
	bool fresh;
	int r;

	st->chunk = table_chunk ? table_chunk : SNAP_DEFAULT_CHUNK;
	st->cb = (uint64_t)st->chunk * PM_SECTOR;
	/* the kernel reads the whole header chunk: a COW smaller than that fails */
	if (st->cb > cow_size)
		return -EIO;
	if ((r = src_io(s->cow, false, 0, h, sizeof(h))) < 0)
		return r;
	fresh = get_le32(h) == 0;
	if (!fresh && get_le32(h) != SNAP_MAGIC)
		return -ENXIO; /* the kernel logs "Invalid or corrupt snapshot" */
	if (!fresh && get_le32(h + 12) != st->chunk) {
		/* the header's chunk size overrides the table's */
		if (!chunk_ok(get_le32(h + 12)))
			return -EINVAL;
		st->chunk = get_le32(h + 12);
		st->cb = (uint64_t)st->chunk * PM_SECTOR;
	}
	st->epa = (uint32_t)(st->cb / SNAP_ENTRY);
	if (area_chunk(st, 0) + 1 > cow_size / st->cb)
		return -EIO; /* no room for the first area: its I/O would fail */
	if (!(st->area = calloc(1, st->cb)))
		return -ENOMEM;
	st->next_free = 2;
	if (fresh) {
		st->valid = true;
		if ((r = write_header(s, true)) < 0)
			return r;
		if ((r = cow_zero(s, area_chunk(st, 0) * st->cb, st->cb)) < 0)
			return r;
		return pm_vdev_flush(s->cow->vdev);
	}
	if (get_le32(h + 8) != SNAP_DISK_VERSION)
		return -EINVAL;
	if (!get_le32(h + 4))
		return 1;
	st->valid = true;
	/* areas in turn while they are full */
	for (st->area_no = 0;; st->area_no++) {
		uint64_t at = area_chunk(st, st->area_no);
		if (at >= cow_size / st->cb)
			return -EIO;
		if ((r = src_io(s->cow, false, at * st->cb, st->area, st->cb)) < 0)
			return r;
		for (st->committed = 0; st->committed < st->epa; st->committed++) {
			const uint8_t *e = st->area + (size_t)st->committed * SNAP_ENTRY;
			uint64_t old = get_le64(e), new = get_le64(e + 8);
			if (!new)
				break;
			if (st->next_free <= new)
				st->next_free = add_sat(new, 1); /* a corrupt store cannot wrap it to the header */
			if ((r = xt_put(&st->x, old, new)) < 0)
				return r;
		}
		if (st->committed < st->epa)
			break;
	}
	if (st->next_free % (st->epa + 1) == 1 && st->next_free != UINT64_MAX)
		st->next_free++;
	return 0;
}

/* a lock is held on the store for all below */

static bool serving(const struct snap *s)
{
	return s->st->owner == s && s->st->valid;
}

/* every I/O fails from now on; a persistent store's header says so */
static void invalidate(struct snap *s)
{
	struct store *st = s->st;

	if (!st->valid)
		return;
	st->valid = false;
	if (st->persistent)
		(void)write_header(s, false); /* the kernel only warns when this fails */
	pm_target_event(s->ti);
}

/* Where the next exception goes; -ENOSPC when the COW is full. */
static int prepare(struct snap *s, uint64_t *new)
{
	struct store *st = s->st;
	uint64_t sectors = s->cow->vdev->size / PM_SECTOR;

	if (!st->persistent) {
		if (sectors < st->next_free + st->chunk)
			return -ENOSPC;
		*new = st->next_free / st->chunk;
		st->next_free += st->chunk;
		return 0;
	}
	if (sectors / st->chunk < add_sat(st->next_free, 1))
		return -ENOSPC;
	*new = st->next_free++;
	if (st->next_free % (st->epa + 1) == 1) /* a metadata area */
		st->next_free++;
	return 0;
}

/* The data of the exceptions old[i] -> new[i] is on the COW: make it durable, then the metadata (as
 * the kernel commits the exceptions completed together: the area written when it is full, after the
 * next one was zeroed, and once at the end). */
static int commit(struct snap *s, const uint64_t *old, const uint64_t *new, size_t n)
{
	struct store *st = s->st;
	int r = 0;

	if (st->persistent) {
		bool dirty = false;

		if ((r = pm_vdev_flush(s->cow->vdev)) < 0)
			return r;
		for (size_t i = 0; i < n && !r; i++) {
			uint8_t *e = st->area + (size_t)st->committed * SNAP_ENTRY;

			put_le64(e, old[i]);
			put_le64(e + 8, new[i]);
			dirty = true;
			if (++st->committed < st->epa)
				continue;
			/* a full area: the next one is zeroed first, so that a reader stops there */
			r = cow_zero(s, area_chunk(st, st->area_no + 1) * st->cb, st->cb);
			if (!r)
				r = src_io(s->cow, true, area_chunk(st, st->area_no) * st->cb, st->area, st->cb);
			if (!r)
				r = pm_vdev_flush(s->cow->vdev);
			st->committed = 0;
			st->area_no++;
			memset(st->area, 0, st->cb);
			dirty = false;
		}
		if (!r && dirty)
			r = src_io(s->cow, true, area_chunk(st, st->area_no) * st->cb, st->area, st->cb);
		if (!r && dirty)
			r = pm_vdev_flush(s->cow->vdev);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = xt_put(&st->x, old[i], new[i])) < 0)
			return r;
	return 0;
}

/* New exceptions for the origin chunks c[0..n), their data the origin's; with data (a snapshot write,
 * n == 1), len bytes of it laid over the chunk at byte at. Exclusive lock held. -EIO once the store is
 * invalid or (PO, a snapshot write) overflowed. */
static int new_exceptions(struct snap *s, const uint64_t *c, size_t n, const void *data, size_t at, size_t len)
{
	struct store *st = s->st;
	uint64_t osize = s->origin->vdev->size;
	_cleanup_free_ uint64_t *new = malloc(n * sizeof(*new));
	_cleanup_free_ uint8_t *buf = NULL;
	int r = 0;

	if (!new)
		return -ENOMEM;
	for (size_t i = 0; i < n && !r; i++) {
		uint64_t base = c[i] * st->cb;

		if (prepare(s, &new[i]) < 0) {
			if (s->po && st->persistent && data)
				st->overflow = true; /* no event: the kernel only logs it */
			else
				invalidate(s);
			return -EIO;
		}
		if (data && at == 0 && len == st->cb) {
			r = src_io(s->cow, true, new[i] * st->cb, (void *)(uintptr_t)data, len);
			continue;
		}
		if (!buf && !(buf = malloc(st->cb))) {
			r = -ENOMEM;
			break;
		}
		/* the origin's part of the chunk (it may end inside it) */
		size_t have = base >= osize ? 0 : osize - base < st->cb ? (size_t)(osize - base) : (size_t)st->cb;
		memset(buf + have, 0, st->cb - have);
		r = have ? src_io(s->origin, false, base, buf, have) : 0;
		if (!r && data)
			memcpy(buf + at, data, len);
		if (!r)
			r = src_io(s->cow, true, new[i] * st->cb, buf, st->cb);
	}
	if (!r)
		r = commit(s, c, new, n);
	if (r < 0) {
		invalidate(s);
		return -EIO;
	}
	return 0;
}

/* ---- the constructor ---- */

struct share {
	struct snap *me;
	struct store *st;
	unsigned count;
};

static bool shares(const struct pm_target *t, const struct snap *me)
{
	const struct snap *o = t->priv;

	return t->type == &pm_target_snapshot && o && o != me && o->origin->dev == me->origin->dev &&
	       o->cow->dev == me->cow->dev;
}

static int find_share(struct pm_target *t, void *arg)
{
	struct share *sh = arg;

	if (shares(t, sh->me)) {
		if (!sh->count++) {
			sh->st = ((struct snap *)t->priv)->st;
			__atomic_add_fetch(&sh->st->refs, 1, __ATOMIC_ACQ_REL);
		}
	}
	return 0;
}

/* kstrtouint: decimal, an optional '+', at most UINT_MAX */
static int parse_uint(const char *s, uint32_t *v)
{
	uint64_t x;

	if (*s == '+')
		s++;
	if (pm_target_u64(s, &x) < 0 || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

static int parse_features(struct pm_target *ti, struct snap *s, unsigned argc, char **argv)
{
	uint64_t n;
	int r = 0;

	if (!argc)
		return 0;
	if (pm_target_u64(argv[0], &n) < 0 || n > 2 || n > argc - 1)
		return pm_target_fail(ti, -EINVAL, "Invalid number of feature arguments");
	for (unsigned i = 1; i <= n; i++) {
		if (!strcasecmp(argv[i], "discard_zeroes_cow")) {
			s->zeroes = true;
		} else if (!strcasecmp(argv[i], "discard_passdown_origin")) {
			s->passdown = true;
		} else {
			r = pm_target_fail(ti, -EINVAL, "Unrecognised feature requested");
			break;
		}
	}
	if (!s->zeroes && s->passdown)
		r = pm_target_fail(ti, -EINVAL, "discard_passdown_origin feature depends on discard_zeroes_cow");
	return r;
}

static void snap_free(struct snap *s)
{
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->m);
	store_put(s->st);
	free(s);
}

static int snapshot_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct snap *s;
	uint32_t chunk;
	char type;
	int r;

	if (argc < 4)
		return pm_target_fail(ti, -EINVAL, "requires 4 or more arguments");
	if (!(s = calloc(1, sizeof(*s))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate private snapshot structure");
	s->ti = ti;
	pthread_mutex_init(&s->m, NULL);
	pthread_cond_init(&s->idle, NULL);
	if ((r = parse_features(ti, s, argc - 4, argv + 4)) < 0)
		goto bad;
	if ((r = pm_target_source(ti, argv[0], &s->origin)) < 0) {
		pm_target_fail(ti, r, "Cannot get origin device");
		goto bad;
	}
	if ((r = pm_target_source(ti, argv[1], &s->cow)) < 0) {
		pm_target_fail(ti, r, "Cannot get COW device");
		goto bad;
	}
	if (s->cow->dev == s->origin->dev) {
		r = pm_target_fail(ti, -EINVAL, "COW device cannot be the same as origin device");
		goto bad;
	}
	/* the exception store: its type (P with an optional O, or N) and chunk size; the kernel reports
	 * every failure here in one message */
	type = (char)toupper((unsigned char)argv[2][0]);
	if ((type != 'P' && type != 'N') || parse_uint(argv[3], &chunk) < 0 || (chunk && !chunk_ok(chunk)) ||
	    (type == 'P' && argv[2][1] && toupper((unsigned char)argv[2][1]) != 'O')) {
		r = pm_target_fail(ti, -EINVAL, "Couldn't create exception store");
		goto bad;
	}
	s->po = type == 'P' && argv[2][1];

	/* a live snapshot of the same origin on the same COW: its store is handed over at resume */
	struct share sh = { .me = s };
	for (size_t i = 0; i < ti->table->n; i++) /* this table's, not yet live */
		sh.count += shares(&ti->table->t[i], s) ? 2 : 0;
	const struct pm_target_env *env = pm_target_env(ti);
	if (!sh.count && env->each_target)
		env->each_target(env->arg, find_share, &sh);
	if (sh.count >= 2) {
		store_put(sh.st);
		r = pm_target_fail(ti, -EINVAL, "Snapshot cow pairing for exception table handover failed");
		goto bad;
	}
	if (sh.count) {
		s->st = sh.st;
		s->pending = true;
		ti->priv = s;
		return 0;
	}

	if (!(s->st = calloc(1, sizeof(*s->st)))) {
		r = pm_target_fail(ti, -ENOMEM, "Unable to allocate hash table space");
		goto bad;
	}
	/* writers first: readers spinning on a snapshot must not starve the copy an origin write waits
	 * for (glibc's default prefers readers); the lock is never taken twice by one thread */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->st->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	s->st->refs = 1;
	s->st->owner = s;
	s->st->persistent = type == 'P';
	if (s->st->persistent) {
		r = read_metadata(s, chunk);
		if (r < 0) {
			pm_target_fail(ti, r, "Failed to read snapshot metadata");
			goto bad;
		}
		s->st->valid = r == 0; /* 1: the kernel warns "Snapshot is marked invalid." */
	} else {
		s->st->chunk = chunk;
		s->st->cb = (uint64_t)chunk * PM_SECTOR;
		s->st->valid = true;
	}
	if (!s->st->chunk) {
		r = pm_target_fail(ti, -EINVAL, "Chunk size not set");
		goto bad;
	}
	ti->priv = s;
	return 0;
bad:
	snap_free(s);
	return r;
}

static void snapshot_dtr(struct pm_target *ti)
{
	struct snap *s = ti->priv;

	/* origin writes copying into it finish first */
	pthread_mutex_lock(&s->m);
	while (s->users)
		pthread_cond_wait(&s->idle, &s->m);
	pthread_mutex_unlock(&s->m);
	pthread_rwlock_wrlock(&s->st->lock);
	if (s->st->owner == s)
		s->st->owner = NULL;
	pthread_rwlock_unlock(&s->st->lock);
	snap_free(s);
}

/* the exception handover */
static void snapshot_resume(struct pm_target *ti)
{
	struct snap *s = ti->priv;

	if (!s->pending)
		return;
	pthread_rwlock_wrlock(&s->st->lock);
	s->st->owner = s;
	s->pending = false;
	pthread_rwlock_unlock(&s->st->lock);
}

/* ---- snapshot I/O: one chunk at most per call ---- */

static uint64_t snapshot_max_io(struct pm_target *ti, uint64_t off)
{
	struct snap *s = ti->priv;
	uint64_t pos = ti->begin * PM_SECTOR + off;

	return s->st->cb - pos % s->st->cb;
}

/* The kernel maps the device's sector s to sector s of the origin and of the chunk numbering (not
 * s - begin): a snapshot target starts at 0 in any useful table. */
static uint64_t position(struct pm_target *ti, uint64_t off)
{
	return ti->begin * PM_SECTOR + off;
}

static int snapshot_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct snap *s = ti->priv;
	struct store *st = s->st;
	uint64_t pos = position(ti, off), new;
	int r = -EIO;

	pthread_rwlock_rdlock(&st->lock);
	if (serving(s)) {
		if (xt_get(&st->x, pos / st->cb, &new))
			r = src_io(s->cow, false, new * st->cb + pos % st->cb, buf, len);
		else
			r = src_io(s->origin, false, pos, buf, len);
	}
	pthread_rwlock_unlock(&st->lock);
	return r;
}

/* A write into the COW chunk new that an exception names (pos: where in the snapshot) */
static int write_exception(struct snap *s, uint64_t new, uint64_t pos, const void *buf, size_t len)
{
	const struct store *st = s->st;

	if (store_chunk(st, new))
		return -EIO;
	return src_io(s->cow, true, new * st->cb + pos % st->cb, (void *)(uintptr_t)buf, len);
}

static int snapshot_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct snap *s = ti->priv;
	struct store *st = s->st;
	uint64_t pos = position(ti, off), c = pos / st->cb, new;
	int r = -EIO;

	pthread_rwlock_rdlock(&st->lock);
	if (serving(s) && !st->overflow && xt_get(&st->x, c, &new)) {
		r = write_exception(s, new, pos, buf, len);
		pthread_rwlock_unlock(&st->lock);
		return r;
	}
	pthread_rwlock_unlock(&st->lock);

	pthread_rwlock_wrlock(&st->lock);
	if (!serving(s) || st->overflow)
		r = -EIO;
	else if (xt_get(&st->x, c, &new))
		r = write_exception(s, new, pos, buf, len);
	else
		r = new_exceptions(s, &c, 1, buf, (size_t)(pos % st->cb), len);
	pthread_rwlock_unlock(&st->lock);
	return r;
}

static int snapshot_flush(struct pm_target *ti)
{
	struct snap *s = ti->priv;

	return pm_vdev_flush(s->cow->vdev);
}

/* with discard_zeroes_cow: a remapped chunk discarded whole reads zeros, a part of it is discarded on
 * the COW; a chunk with no exception is left alone (no copy-out); with discard_passdown_origin the
 * origin is discarded too */
static int snapshot_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct snap *s = ti->priv;
	struct store *st = s->st;
	uint64_t pos = position(ti, off), new;
	int r = -EIO;

	if (!s->zeroes)
		return -EOPNOTSUPP;
	pthread_rwlock_rdlock(&st->lock);
	if (serving(s) && !st->overflow) {
		r = 0;
		if (xt_get(&st->x, pos / st->cb, &new)) {
			uint64_t at = new * st->cb + pos % st->cb;
			r = store_chunk(st, new) ? -EIO
						 : len == st->cb ? cow_zero(s, at, len) : pm_vdev_discard(s->cow->vdev, at, len);
		}
		if (!r && s->passdown)
			r = pm_vdev_discard(s->origin->vdev, pos, len);
	}
	pthread_rwlock_unlock(&st->lock);
	return r == -ERANGE ? -EIO : r;
}

static void snapshot_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct snap *s = ti->priv;
	struct store *st = s->st;
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	pthread_rwlock_rdlock(&st->lock);
	if (table) {
		PUT("%s %s %s %u", s->origin->name, s->cow->name, !st->persistent ? "N" : s->po ? "PO" : "P", st->chunk);
		if (s->zeroes || s->passdown)
			PUT(" %d%s%s", s->zeroes + s->passdown, s->zeroes ? " discard_zeroes_cow" : "",
			    s->passdown ? " discard_passdown_origin" : "");
	} else if ((!s->pending && st->owner != s) || !st->valid) {
		PUT("Invalid");
	} else if (st->overflow) {
		PUT("Overflow");
	} else {
		uint64_t total = s->cow->vdev->size / PM_SECTOR;
		if (st->persistent)
			PUT("%llu/%llu %llu", (unsigned long long)(st->next_free * st->chunk), (unsigned long long)total,
			    (unsigned long long)((st->area_no + 2) * st->chunk));
		else
			PUT("%llu/%llu 0", (unsigned long long)st->next_free, (unsigned long long)total);
	}
	pthread_rwlock_unlock(&st->lock);
#undef PUT
}

const struct pm_target_type pm_target_snapshot = {
	.name = "snapshot",
	.version = { 1, 16, 0 },
	.ctr = snapshot_ctr,
	.dtr = snapshot_dtr,
	.read = snapshot_read,
	.write = snapshot_write,
	.flush = snapshot_flush,
	.discard = snapshot_discard,
	.status = snapshot_status,
	.resume = snapshot_resume,
	.max_io = snapshot_max_io,
};

/* ---- snapshot-origin ---- */

struct origin {
	struct pm_source *dev;
};

static int origin_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct origin *o;
	int r;

	if (argc != 1)
		return pm_target_fail(ti, -EINVAL, "origin: incorrect number of arguments");
	if (!(o = calloc(1, sizeof(*o))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate private origin structure");
	if ((r = pm_target_source(ti, argv[0], &o->dev)) < 0) {
		free(o);
		return pm_target_fail(ti, r, "Cannot get target device");
	}
	ti->priv = o;
	return 0;
}

static void origin_dtr(struct pm_target *ti)
{
	free(ti->priv);
}

struct users {
	dev_t dev;
	struct snap **v;
	size_t n, cap;
	int err;
};

/* each_target: the snapshots of this origin, held (their dtr waits) until the copies are done */
static int collect(struct pm_target *t, void *arg)
{
	struct users *u = arg;
	struct snap *s = t->priv;

	if (t->type != &pm_target_snapshot || !s || s->origin->dev != u->dev)
		return 0;
	if (pm_grow(&u->v, u->n, &u->cap, sizeof(*u->v)) < 0) {
		u->err = -ENOMEM;
		return 1;
	}
	pthread_mutex_lock(&s->m);
	s->users++;
	pthread_mutex_unlock(&s->m);
	u->v[u->n++] = s;
	return 0;
}

static void unuse(struct snap *s)
{
	pthread_mutex_lock(&s->m);
	if (!--s->users)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->m);
}

/* the chunks of [pos, pos+len) that s has no exception for, copied to its COW and committed together */
static int copy_out(struct snap *s, uint64_t pos, uint64_t len)
{
	struct store *st = s->st;
	uint64_t end = s->ti->table->sectors * PM_SECTOR, new;
	_cleanup_free_ uint64_t *need = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (pos >= end)
		return 0; /* beyond the snapshot's end: nothing to keep */
	if (len > end - pos)
		len = end - pos;
	uint64_t first = pos / st->cb, last = (pos + len - 1) / st->cb;
	bool any = false;
	pthread_rwlock_rdlock(&st->lock);
	for (uint64_t c = first; serving(s) && c <= last && !any; c++)
		any = !xt_get(&st->x, c, &new);
	pthread_rwlock_unlock(&st->lock);
	if (!any)
		return 0;
	pthread_rwlock_wrlock(&st->lock);
	for (uint64_t c = first; serving(s) && c <= last && !r; c++)
		if (!xt_get(&st->x, c, &new) && !(r = pm_grow(&need, n, &cap, sizeof(*need))))
			need[n++] = c;
	/* a failure leaves the snapshot invalid; the origin write goes on */
	if (!r && n)
		(void)new_exceptions(s, need, n, NULL, 0, 0);
	pthread_rwlock_unlock(&st->lock);
	return r;
}

/* before the origin's bytes [pos, pos+len) change */
static int origin_prepare(struct pm_target *ti, uint64_t pos, uint64_t len)
{
	struct origin *o = ti->priv;
	const struct pm_target_env *env = pm_target_env(ti);
	struct users u = { .dev = o->dev->dev };

	if (env->each_target) {
		env->each_target(env->arg, collect, &u);
	} else {
		for (size_t i = 0; i < ti->table->n && !u.err; i++)
			collect(&ti->table->t[i], &u);
	}
	for (size_t i = 0; i < u.n; i++) {
		if (!u.err)
			u.err = copy_out(u.v[i], pos, len);
		unuse(u.v[i]);
	}
	free(u.v);
	return u.err;
}

static int origin_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct origin *o = ti->priv;

	return src_io(o->dev, false, position(ti, off), buf, len);
}

static int origin_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct origin *o = ti->priv;
	int r = origin_prepare(ti, position(ti, off), len);

	return r < 0 ? r : src_io(o->dev, true, position(ti, off), (void *)(uintptr_t)buf, len);
}

static int origin_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct origin *o = ti->priv;
	int r = origin_prepare(ti, position(ti, off), len);

	if (!r)
		r = pm_vdev_discard(o->dev->vdev, position(ti, off), len);
	return r == -ERANGE ? -EIO : r;
}

static void origin_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct origin *o = ti->priv;

	if (table)
		snprintf(buf, len, "%s", o->dev->name);
}

const struct pm_target_type pm_target_snapshot_origin = {
	.name = "snapshot-origin",
	.version = { 1, 9, 0 },
	.ctr = origin_ctr,
	.dtr = origin_dtr,
	.read = origin_read,
	.write = origin_write,
	.discard = origin_discard,
	.status = origin_status,
};
