/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mirror <log type> <#log args> <log args> <#mirrors> (<dev> <offset>){#mirrors} [<#features>
 * handle_errors [keep_log]]: RAID1 over 2 to 9 legs, as the kernel's dm-raid1 with its dirty-region
 * logs (dm-log):
 *   core <region size> [sync|nosync]               the region states in memory
 *   disk <log dev> <region size> [sync|nosync]     also on a device: a header (magic "MiRr",
 *       version 2, nr_regions) at sector 0 and the clean-region bitmap at sector 2, little-endian
 *
 * The target is cut into regions (a power of two of sectors, 2 at least, at most the target). A
 * region is in sync when every leg holds the same data. Without nosync the legs are resynchronised
 * after resume: a background thread copies the default leg (leg 0) to the others region by region
 * (one region buffer of at most 1 MiB), until presuspend. Writes to a region in sync go to every leg;
 * writes to a region not yet in sync go to the default leg only (the resync copies them); a write to
 * the region being copied waits for the copy. Reads of a region in sync come from the default leg,
 * or the legs before it (cyclically) when it has failed; reads of a region out of sync come from the
 * default leg. A leg's failure is kept per kind and shown in the status (A alive, F flush, D write,
 * S sync, R read); a failed write marks its region out of sync. Without handle_errors failures raise
 * no event and a write that reached one leg succeeds; with handle_errors an event is raised, the
 * default leg moves to a healthy one when the set is in sync (or keep_log), and such a write is held
 * until presuspend, which fails it (the kernel requeues it on a noflush suspend; nothing here can).
 * The kernel's quirks are kept: a failed resync without handle_errors still counts its region as in
 * sync, and when the whole set comes into sync the legs' failures are forgotten. */
#include "tgtio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NR_MIRRORS 9
#define MIRROR_MAGIC 0x4D695272u /* "MiRr" */
#define MIRROR_DISK_VERSION 2
#define LOG_OFFSET 2              /* sectors: where the clean bitmap starts */
#define COPY_CHUNK (1u << 20)     /* the resync buffer at most */
#define NO_REGION UINT64_MAX

enum { ERR_WRITE, ERR_FLUSH, ERR_SYNC, ERR_READ };
enum log_sync { DEFAULTSYNC, NOSYNC, FORCESYNC };

struct leg {
	struct pm_source *dev;
	uint64_t offset;          /* sectors */
	unsigned errors;          /* failures seen (the kernel's error_count) */
	unsigned error_type;      /* 1 << ERR_* */
};

struct pend {
	uint64_t region;
	unsigned n;
};

struct mirror {
	struct pm_target *ti;
	pthread_mutex_t lk;       /* everything below */
	pthread_cond_t cv;        /* a region's writes done, a copy done, work for the thread, suspend */

	/* the log */
	bool disk;
	struct pm_source *logdev;
	enum log_sync sync;
	uint32_t region_size;     /* sectors */
	uint64_t nr_regions, sync_count, sync_search;
	size_t bitset_bytes;      /* whole 32-bit words */
	uint8_t *sync_bits;       /* little-endian bit order, as the kernel's */
	uint8_t *logbuf;          /* disk: header, then clean bits at LOG_OFFSET */
	size_t logbuf_len;
	bool touched_dirtied, touched_cleaned, flush_failed, log_dev_failed, log_dev_flush_failed;

	/* the set */
	bool handle_errors, keep_log;
	bool in_sync, leg_failure, log_failure;
	unsigned default_leg;
	unsigned events;          /* to raise once the lock is dropped */
	unsigned active;          /* requests inside the target */
	bool suspended, dying;
	uint64_t suspend_gen;     /* presuspend's count: held writes fail when it changes */

	/* the resync */
	pthread_t thread;
	bool running, stop;
	uint64_t recovering;      /* the region being copied, or NO_REGION */
	struct pend *pend;        /* regions with writes in flight */
	size_t npend, cappend;

	unsigned nlegs;
	struct leg leg[];
};

/* ---- bits ---- */

static bool bit_test(const uint8_t *b, uint64_t i)
{
	return b[i >> 3] & (1u << (i & 7));
}

static void bit_set(uint8_t *b, uint64_t i)
{
	b[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static void bit_clear(uint8_t *b, uint64_t i)
{
	b[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

static uint8_t *clean_bits(struct mirror *m)
{
	return m->logbuf + LOG_OFFSET * PM_SECTOR;
}

static void set_clean(struct mirror *m, uint64_t region, bool clean)
{
	if (!m->disk)
		return;               /* the core log's clean bits are never looked at */
	if (clean && !m->flush_failed && !bit_test(clean_bits(m), region)) {
		bit_set(clean_bits(m), region);
		m->touched_cleaned = true;
	} else if (!clean && bit_test(clean_bits(m), region)) {
		bit_clear(clean_bits(m), region);
		m->touched_dirtied = true;
	}
}

static bool region_in_sync(const struct mirror *m, uint64_t region)
{
	return bit_test(m->sync_bits, region);
}

static void set_region_sync(struct mirror *m, uint64_t region, bool in_sync)
{
	if (in_sync && !region_in_sync(m, region)) {
		bit_set(m->sync_bits, region);
		m->sync_count++;
	} else if (!in_sync && region_in_sync(m, region)) {
		bit_clear(m->sync_bits, region);
		m->sync_count--;
	}
}

/* the next region out of sync from the search point (which only moves on until resume) */
static bool get_resync_work(struct mirror *m, uint64_t *region)
{
	while (m->sync_search < m->nr_regions) {
		uint64_t r = m->sync_search++;
		if (!region_in_sync(m, r)) {
			*region = r;
			return true;
		}
	}
	return false;
}

/* ---- locking, events, failures ---- */

static void lock(struct mirror *m)
{
	pthread_mutex_lock(&m->lk);
}

/* drop the lock, then raise the events noted under it */
static void unlock(struct mirror *m)
{
	unsigned ev = m->events;

	m->events = 0;
	pthread_mutex_unlock(&m->lk);
	while (ev--)
		pm_target_event(m->ti);
}

static int valid_leg(const struct mirror *m)
{
	for (unsigned i = 0; i < m->nlegs; i++)
		if (!m->leg[i].errors)
			return (int)i;
	return -1;
}

/* the default leg if it never failed, else the first healthy one going backwards from it */
static int choose_leg(const struct mirror *m)
{
	unsigned i = m->default_leg;

	do {
		if (!m->leg[i].errors)
			return (int)i;
		i = i ? i - 1 : m->nlegs - 1;
	} while (i != m->default_leg);
	return -1;
}

static void fail_leg(struct mirror *m, unsigned i, int type)
{
	struct leg *l = &m->leg[i];

	m->leg_failure = true;
	l->errors++;
	if (l->error_type & (1u << type))
		return;
	l->error_type |= 1u << type;
	if (!m->handle_errors)
		return;
	if (i == m->default_leg && (m->in_sync || m->keep_log)) {
		int v = valid_leg(m);
		if (v >= 0)
			m->default_leg = (unsigned)v;
	}
	m->events++;
}

/* fail every leg of the mask (a bit per leg) */
static void fail_legs(struct mirror *m, unsigned mask, int type)
{
	for (unsigned i = 0; i < m->nlegs; i++)
		if (mask & (1u << i))
			fail_leg(m, i, type);
}

static void reset_flags(struct mirror *m)
{
	m->leg_failure = false;
	for (unsigned i = 0; i < m->nlegs; i++)
		m->leg[i].errors = m->leg[i].error_type = 0;
}

static char leg_char(const struct leg *l)
{
	if (!l->errors)
		return 'A';
	return l->error_type & (1u << ERR_FLUSH) ? 'F' :
	       l->error_type & (1u << ERR_WRITE) ? 'D' :
	       l->error_type & (1u << ERR_SYNC)  ? 'S' :
	       l->error_type & (1u << ERR_READ)  ? 'R' : 'U';
}

/* handle_errors: a failed write waits for presuspend, which fails it */
static int hold(struct mirror *m)
{
	uint64_t gen = m->suspend_gen;

	if (m->events) {
		/* raise the failure's event before waiting */
		unlock(m);
		lock(m);
	}
	while (!m->suspended && !m->dying && gen == m->suspend_gen)
		pthread_cond_wait(&m->cv, &m->lk);
	return -EIO;
}

/* ---- the disk log ---- */

static void fail_log_device(struct mirror *m)
{
	if (m->log_dev_failed)
		return;
	m->log_dev_failed = true;
	m->events++;
}

static int flush_legs(struct mirror *m, unsigned *failed)
{
	int ret = 0, r;

	*failed = 0;
	for (unsigned i = 0; i < m->nlegs; i++)
		if ((r = pm_vdev_flush(m->leg[i].dev->vdev)) < 0) {
			*failed |= 1u << i;
			ret = r;
		}
	return ret;
}

/* Write the log when it changed (the kernel's disk_flush): cleaned regions only once the legs'
 * data is durable, dirtied ones durable before the writes that dirtied them. */
static int log_flush(struct mirror *m)
{
	unsigned failed;
	int r;

	if (!m->disk || (!m->touched_cleaned && !m->touched_dirtied))
		return 0;
	if (m->touched_cleaned && flush_legs(m, &failed) < 0) {
		fail_legs(m, failed, ERR_FLUSH);
		/* which regions are clean is unknown now: all dirty */
		m->flush_failed = true;
		for (uint64_t i = 0; i < m->nr_regions; i++)
			bit_clear(clean_bits(m), i);
		m->touched_dirtied = true;
	}
	if ((r = pm_vdev_write(m->logdev->vdev, 0, m->logbuf, m->logbuf_len)) < 0) {
		fail_log_device(m);
		return r;
	}
	if (m->touched_dirtied) {
		if ((r = pm_vdev_flush(m->logdev->vdev)) < 0) {
			m->log_dev_flush_failed = true;
			fail_log_device(m);
			return r;
		}
		m->touched_dirtied = false;
	}
	m->touched_cleaned = false;
	return 0;
}

/* the kernel's disk_resume: the regions' states from the device's clean bits */
static void disk_resume(struct mirror *m)
{
	uint64_t hdr_regions = 0;
	uint8_t *clean = clean_bits(m);
	int r = pm_vdev_read(m->logdev->vdev, 0, m->logbuf, m->logbuf_len);

	if (r == 0) {
		uint32_t magic = get_le32(m->logbuf), version = get_le32(m->logbuf + 4);

		hdr_regions = get_le64(m->logbuf + 8);
		if (m->sync != DEFAULTSYNC || magic != MIRROR_MAGIC) {
			/* a new log */
			version = MIRROR_DISK_VERSION;
			hdr_regions = 0;
		}
		if (version == 1)
			version = MIRROR_DISK_VERSION;
		if (version != MIRROR_DISK_VERSION)
			r = -EINVAL;
	}
	if (r < 0) {
		/* unreadable: every region out of sync */
		fail_log_device(m);
		hdr_regions = 0;
	}
	/* regions the log did not cover (the device grew), and past the end (it shrank) */
	for (uint64_t i = hdr_regions; i < m->nr_regions; i++) {
		if (m->sync == NOSYNC)
			bit_set(clean, i);
		else
			bit_clear(clean, i);
	}
	for (uint64_t i = m->nr_regions; i < m->bitset_bytes * 8; i++)
		bit_clear(clean, i);
	memcpy(m->sync_bits, clean, m->bitset_bytes);
	m->sync_count = 0;
	for (size_t i = 0; i < m->bitset_bytes; i++)
		m->sync_count += (uint64_t)__builtin_popcount(clean[i]);
	m->sync_search = 0;

	put_le32(m->logbuf, MIRROR_MAGIC);
	put_le32(m->logbuf + 4, MIRROR_DISK_VERSION);
	put_le64(m->logbuf + 8, m->nr_regions);
	if ((r = pm_vdev_write(m->logdev->vdev, 0, m->logbuf, m->logbuf_len)) == 0 &&
	    (r = pm_vdev_flush(m->logdev->vdev)) < 0)
		m->log_dev_flush_failed = true;
	if (r < 0)
		fail_log_device(m);
	else
		m->touched_cleaned = m->touched_dirtied = false;
}

/* ---- writes in flight per region ---- */

static struct pend *pend_find(struct mirror *m, uint64_t region)
{
	for (size_t i = 0; i < m->npend; i++)
		if (m->pend[i].region == region)
			return &m->pend[i];
	return NULL;
}

static int pend_inc(struct mirror *m, uint64_t region)
{
	struct pend *p = pend_find(m, region);

	if (p) {
		p->n++;
		return 0;
	}
	if (pm_grow(&m->pend, m->npend, &m->cappend, sizeof(*m->pend)) < 0)
		return -ENOMEM;
	m->pend[m->npend++] = (struct pend){ region, 1 };
	return 0;
}

/* the region's last write done: a region in sync is clean again (the thread writes the log) */
static void pend_dec(struct mirror *m, uint64_t region)
{
	struct pend *p = pend_find(m, region);

	if (p && !--p->n) {
		*p = m->pend[--m->npend];
		if (region_in_sync(m, region))
			set_clean(m, region, true);
		pthread_cond_broadcast(&m->cv);
	}
}

/* ---- the resync ---- */

/* copy one region from the default leg to the others; *read_err, *write_err (a bit per leg) */
static bool copy_region(struct mirror *m, uint64_t region, unsigned def, uint8_t *buf, size_t bufsz,
			bool *read_err, unsigned *write_err)
{
	uint64_t rbytes = (uint64_t)m->region_size * PM_SECTOR;
	uint64_t off = region * rbytes, end = off + rbytes;

	if (end > m->ti->len * PM_SECTOR)
		end = m->ti->len * PM_SECTOR; /* the last region may be short */
	*read_err = false;
	*write_err = 0;
	while (off < end) {
		size_t n = end - off < bufsz ? (size_t)(end - off) : bufsz;

		if (__atomic_load_n(&m->stop, __ATOMIC_RELAXED))
			return false;
		if (pm_src_read(m->leg[def].dev, m->leg[def].offset, off, buf, n) < 0) {
			/* the kernel ignores errors without handle_errors: the copy goes on */
			*read_err = true;
			if (m->handle_errors)
				return true;
		}
		for (unsigned i = 0; i < m->nlegs; i++)
			if (i != def && pm_src_write(m->leg[i].dev, m->leg[i].offset, off, buf, n) < 0)
				*write_err |= 1u << i;
		if (*write_err && m->handle_errors)
			return true;
		off += n;
	}
	return true;
}

static void *resync_main(void *arg)
{
	struct mirror *m = arg;
	uint64_t rbytes = (uint64_t)m->region_size * PM_SECTOR;
	size_t bufsz = rbytes < COPY_CHUNK ? (size_t)rbytes : COPY_CHUNK;
	_cleanup_free_ uint8_t *buf = malloc(bufsz);
	bool flushed = false;       /* the log written since the last wake (a failing one is not retried at once) */

	lock(m);
	while (!m->stop) {
		uint64_t region;

		if (m->events) {
			unlock(m);
			lock(m);
			continue;
		}
		if ((m->touched_cleaned || m->touched_dirtied) && !flushed) {
			flushed = true;
			if (log_flush(m) < 0)
				m->log_failure = true;
			continue;
		}
		if (!m->in_sync && m->sync_count == m->nr_regions) {
			/* the sync is complete */
			m->in_sync = true;
			m->events++;
			reset_flags(m);
			continue;
		}
		if (!buf || !get_resync_work(m, &region)) {
			pthread_cond_wait(&m->cv, &m->lk);
			flushed = false;
			continue;
		}
		flushed = false;
		/* quiesce the region: its writes in flight finish, new ones wait */
		m->recovering = region;
		pthread_cond_broadcast(&m->cv);
		while (!m->stop && pend_find(m, region))
			pthread_cond_wait(&m->cv, &m->lk);
		unsigned def = m->default_leg, write_err;
		bool read_err, done = false;
		if (!m->stop) {
			pthread_mutex_unlock(&m->lk);
			done = copy_region(m, region, def, buf, bufsz, &read_err, &write_err);
			pthread_mutex_lock(&m->lk);
		}
		if (done) {
			if (read_err)
				fail_leg(m, def, ERR_SYNC);
			fail_legs(m, write_err, ERR_SYNC);
			if (!read_err && !write_err)
				set_clean(m, region, true);
			set_region_sync(m, region, (!read_err && !write_err) || !m->handle_errors);
		}
		/* stopped: the region stays out of sync, found again after resume */
		m->recovering = NO_REGION;
		pthread_cond_broadcast(&m->cv);
	}
	/* events still due are raised by presuspend (or whoever unlocks next), not while it joins us */
	pthread_mutex_unlock(&m->lk);
	return NULL;
}

/* ---- construction ---- */

struct log_args {
	bool disk;
	struct pm_source *dev;
	uint32_t region_size;
	enum log_sync sync;
};

/* the log's own arguments; any refusal is the mirror's "Error creating mirror dirty log" */
static int log_parse(struct pm_target *ti, const char *type, unsigned argc, char **argv, struct log_args *la)
{
	unsigned rs;
	int r;

	memset(la, 0, sizeof(*la));
	if (!strcmp(type, "disk")) {
		if (argc < 2 || argc > 3)
			return -EINVAL;
		if ((r = pm_target_source(ti, argv[0], &la->dev)) < 0)
			return r;
		la->disk = true;
		argc--, argv++;
	} else if (strcmp(type, "core") || argc < 1 || argc > 2) {
		return -EINVAL;
	}
	if (argc > 1) {
		if (!strcmp(argv[1], "sync"))
			la->sync = FORCESYNC;
		else if (!strcmp(argv[1], "nosync"))
			la->sync = NOSYNC;
		else
			return -EINVAL;
	}
	if (pm_target_u32(argv[0], &rs) < 0 || rs < 2 || rs > ti->len || (rs & (rs - 1)))
		return -EINVAL;
	la->region_size = rs;
	return 0;
}

static int mirror_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct log_args la;
	unsigned nparams, nlegs, nfeat;
	struct mirror *m;
	int r;

	/* the log: <type> <#params> <params> */
	if (argc < 2)
		return pm_target_fail(ti, -EINVAL, "Insufficient mirror log arguments");
	if (pm_target_u32(argv[1], &nparams) < 0)
		return pm_target_fail(ti, -EINVAL, "Invalid mirror log argument count");
	if ((uint64_t)argc < 2 + (uint64_t)nparams)
		return pm_target_fail(ti, -EINVAL, "Insufficient mirror log arguments");
	if (log_parse(ti, argv[0], nparams, argv + 2, &la) < 0)
		return pm_target_fail(ti, -EINVAL, "Error creating mirror dirty log");
	uint64_t nr_regions = (ti->len + la.region_size - 1) / la.region_size;
	size_t bitset_bytes = (size_t)((nr_regions + 31) / 32 * 4);
	size_t logbuf_len = LOG_OFFSET * PM_SECTOR + (bitset_bytes + PM_SECTOR - 1) / PM_SECTOR * PM_SECTOR;
	if (la.disk && logbuf_len > la.dev->vdev->size)
		return pm_target_fail(ti, -EINVAL, "Error creating mirror dirty log"); /* log device too small */
	argc -= 2 + nparams;
	argv += 2 + nparams;

	if (!argc || pm_target_u32(argv[0], &nlegs) < 0 || nlegs < 2 || nlegs > MAX_NR_MIRRORS)
		return pm_target_fail(ti, -EINVAL, "Invalid number of mirrors");
	argc--, argv++;
	if (argc < nlegs * 2)
		return pm_target_fail(ti, -EINVAL, "Too few mirror arguments");

	if (!(m = calloc(1, sizeof(*m) + nlegs * sizeof(m->leg[0]))) ||
	    !(m->sync_bits = malloc(bitset_bytes)) || (la.disk && !(m->logbuf = calloc(1, logbuf_len)))) {
		r = pm_target_fail(ti, -ENOMEM, "Error creating mirror dirty log");
		goto bad;
	}
	m->ti = ti;
	m->nlegs = nlegs;
	m->disk = la.disk;
	m->logdev = la.dev;
	m->sync = la.sync;
	m->region_size = la.region_size;
	m->nr_regions = nr_regions;
	m->bitset_bytes = bitset_bytes;
	m->logbuf_len = logbuf_len;
	m->recovering = NO_REGION;
	memset(m->sync_bits, la.sync == NOSYNC ? 0xff : 0, bitset_bytes);
	m->sync_count = la.sync == NOSYNC ? nr_regions : 0;
	if (m->disk)
		memset(clean_bits(m), 0xff, bitset_bytes);

	for (unsigned i = 0; i < nlegs; i++, argv += 2, argc -= 2) {
		if (pm_target_u64(argv[1], &m->leg[i].offset) < 0 || m->leg[i].offset > UINT64_MAX / PM_SECTOR) {
			r = pm_target_fail(ti, -EINVAL, "Invalid offset");
			goto bad;
		}
		if ((r = pm_target_source(ti, argv[0], &m->leg[i].dev)) < 0) {
			r = pm_target_fail(ti, r, "Device lookup failure");
			goto bad;
		}
	}

	if (argc) {
		if (pm_target_u32(argv[0], &nfeat) < 0) {
			r = pm_target_fail(ti, -EINVAL, "Invalid number of features");
			goto bad;
		}
		argc--, argv++;
		if (nfeat > argc) {
			r = pm_target_fail(ti, -EINVAL, "Not enough arguments to support feature count");
			goto bad;
		}
		for (unsigned i = 0; i < nfeat; i++, argc--, argv++) {
			if (!strcmp(argv[0], "handle_errors"))
				m->handle_errors = true;
			else if (!strcmp(argv[0], "keep_log"))
				m->keep_log = true;
			else {
				r = pm_target_fail(ti, -EINVAL, "Unrecognised feature requested");
				goto bad;
			}
		}
		if (m->keep_log && !m->handle_errors) {
			r = pm_target_fail(ti, -EINVAL, "keep_log feature requires the handle_errors feature");
			goto bad;
		}
	}
	if (argc) {
		r = pm_target_fail(ti, -EINVAL, "Too many mirror arguments");
		goto bad;
	}
	/* the kernel's first look at the set, at load, before any event can be seen */
	m->in_sync = m->sync_count == m->nr_regions;
	pthread_mutex_init(&m->lk, NULL);
	pthread_cond_init(&m->cv, NULL);
	ti->priv = m;
	return 0;
bad:
	if (m) {
		free(m->sync_bits);
		free(m->logbuf);
		free(m);
	}
	return r;
}

static void stop_resync(struct mirror *m)
{
	lock(m);
	bool running = m->running;
	__atomic_store_n(&m->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->lk);
	if (running)
		pthread_join(m->thread, NULL);
	lock(m);
	m->running = false;
	__atomic_store_n(&m->stop, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&m->lk);
}

static void mirror_presuspend(struct pm_target *ti)
{
	struct mirror *m = ti->priv;

	lock(m);
	m->suspended = true;
	m->suspend_gen++;
	pthread_cond_broadcast(&m->cv); /* held writes fail */
	pthread_mutex_unlock(&m->lk);
	stop_resync(m);
	lock(m);
	log_flush(m); /* the kernel's postsuspend */
	unlock(m);
}

static void mirror_resume(struct pm_target *ti)
{
	struct mirror *m = ti->priv;

	lock(m);
	m->suspended = false;
	if (m->disk)
		disk_resume(m);
	else
		m->sync_search = 0;
	/* the kernel's worker searches at once; when every region is in sync it finds nothing, and a
	 * region failing after the resume is not copied again (deterministic here) */
	if (m->sync_count == m->nr_regions)
		m->sync_search = m->nr_regions;
	if (!m->running && !ti->read_only) {
		__atomic_store_n(&m->stop, false, __ATOMIC_RELAXED);
		m->running = pthread_create(&m->thread, NULL, resync_main, m) == 0;
	}
	pthread_cond_broadcast(&m->cv);
	unlock(m);
}

static void mirror_dtr(struct pm_target *ti)
{
	struct mirror *m = ti->priv;

	stop_resync(m);
	lock(m);
	m->dying = true;
	pthread_cond_broadcast(&m->cv);
	while (m->active)
		pthread_cond_wait(&m->cv, &m->lk);
	pthread_mutex_unlock(&m->lk);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->lk);
	free(m->pend);
	free(m->sync_bits);
	free(m->logbuf);
	free(m);
}

/* ---- I/O ---- */

/* a request never crosses a region (the kernel's max_io_len) */
static uint64_t mirror_max_io(struct pm_target *ti, uint64_t off)
{
	struct mirror *m = ti->priv;
	uint64_t rb = (uint64_t)m->region_size * PM_SECTOR;

	return rb - off % rb;
}

static uint64_t region_of(const struct mirror *m, uint64_t off)
{
	return off / PM_SECTOR / m->region_size;
}

/* a request comes in (dtr waits for it to leave) and goes to the legs without the lock */
static void enter(struct mirror *m)
{
	lock(m);
	m->active++;
	pthread_mutex_unlock(&m->lk);
}

static int leave(struct mirror *m, int r)
{
	if (!--m->active)
		pthread_cond_broadcast(&m->cv);
	unlock(m);
	return r;
}

static int mirror_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct mirror *m = ti->priv;
	uint64_t region = region_of(m, off);
	int r = -EIO;

	lock(m);
	m->active++;
	for (unsigned tries = 0; tries <= m->nlegs; tries++) {
		int i;

		if (region_in_sync(m, region))
			i = choose_leg(m);
		else
			i = m->leg[m->default_leg].errors ? -1 : (int)m->default_leg;
		if (i < 0)
			return leave(m, -EIO);
		pthread_mutex_unlock(&m->lk);
		r = pm_src_read(m->leg[i].dev, m->leg[i].offset, off, buf, len);
		lock(m);
		if (r == 0)
			break;
		/* another leg, when the default is fine or the region is in sync on a healthy one */
		fail_leg(m, (unsigned)i, ERR_READ);
		if (m->leg[m->default_leg].errors && !(region_in_sync(m, region) && choose_leg(m) >= 0))
			break;
	}
	return leave(m, r);
}

/* A failed write (or flush, or discard): the kernel's do_failures. */
static int write_failed(struct mirror *m, uint64_t region)
{
	if (!m->log_failure) {
		m->in_sync = false;
		if (region != NO_REGION)
			set_region_sync(m, region, false);
	}
	if (valid_leg(m) < 0)
		return -EIO;
	if (m->handle_errors)
		return hold(m);
	return 0;                 /* one leg has the data */
}

static int mirror_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct mirror *m = ti->priv;
	uint64_t region = region_of(m, off);
	unsigned errs = 0;
	int r = 0;

	lock(m);
	m->active++;
	while (m->recovering == region)
		pthread_cond_wait(&m->cv, &m->lk);
	bool sync = region_in_sync(m, region);
	if (pend_inc(m, region) < 0)
		return leave(m, -ENOMEM);
	if (sync)
		set_clean(m, region, false);
	if (log_flush(m) < 0)
		m->log_failure = true;
	bool to_failures = m->handle_errors && (sync ? m->log_failure : m->leg_failure);
	unsigned def = m->default_leg;
	pthread_mutex_unlock(&m->lk);

	if (!to_failures) {
		if (sync) {
			for (unsigned i = 0; i < m->nlegs; i++)
				if (pm_src_write(m->leg[i].dev, m->leg[i].offset, off, buf, len) < 0)
					errs |= 1u << i;
		} else {
			r = pm_src_write(m->leg[def].dev, m->leg[def].offset, off, buf, len);
		}
	}

	lock(m);
	fail_legs(m, errs, ERR_WRITE);
	if (to_failures || errs)
		r = write_failed(m, region);
	pend_dec(m, region);
	return leave(m, r);
}

static int mirror_flush(struct pm_target *ti)
{
	struct mirror *m = ti->priv;
	unsigned failed;
	int r = 0;

	enter(m);
	flush_legs(m, &failed);
	lock(m);
	fail_legs(m, failed, ERR_WRITE);
	if (failed)
		r = write_failed(m, NO_REGION);
	return leave(m, r);
}

static int mirror_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct mirror *m = ti->priv;
	unsigned errs = 0;
	int r = 0, e;

	enter(m);
	for (unsigned i = 0; i < m->nlegs; i++) {
		if ((e = pm_src_discard(m->leg[i].dev, m->leg[i].offset, off, len)) == -EOPNOTSUPP)
			r = e;
		else if (e < 0)
			errs |= 1u << i;
	}
	lock(m);
	fail_legs(m, errs, ERR_WRITE);
	if (errs)
		r = write_failed(m, NO_REGION);
	return leave(m, r);
}

static void mirror_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct mirror *m = ti->priv;
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	lock(m);
	if (!table) {
		char health[MAX_NR_MIRRORS + 1];

		PUT("%u ", m->nlegs);
		for (unsigned i = 0; i < m->nlegs; i++) {
			PUT("%s ", m->leg[i].dev->name);
			health[i] = leg_char(&m->leg[i]);
		}
		health[m->nlegs] = 0;
		PUT("%llu/%llu 1 %s ", (unsigned long long)m->sync_count, (unsigned long long)m->nr_regions, health);
		if (m->disk)
			PUT("3 disk %s %c", m->logdev->name,
			    m->log_dev_flush_failed ? 'F' : m->log_dev_failed ? 'D' : 'A');
		else
			PUT("1 core");
	} else {
		unsigned nargs = m->sync == DEFAULTSYNC ? 1 : 2;

		if (m->disk)
			PUT("disk %u %s %u ", nargs + 1, m->logdev->name, m->region_size);
		else
			PUT("core %u %u ", nargs, m->region_size);
		if (m->sync != DEFAULTSYNC)
			PUT("%ssync ", m->sync == NOSYNC ? "no" : "");
		PUT("%u", m->nlegs);
		for (unsigned i = 0; i < m->nlegs; i++)
			PUT(" %s %llu", m->leg[i].dev->name, (unsigned long long)m->leg[i].offset);
		if (m->handle_errors || m->keep_log)
			PUT(" %u%s%s", (unsigned)m->handle_errors + m->keep_log, m->handle_errors ? " handle_errors" : "",
			    m->keep_log ? " keep_log" : "");
	}
	pthread_mutex_unlock(&m->lk);
#undef PUT
}

const struct pm_target_type pm_target_mirror = {
	.name = "mirror",
	.version = { 1, 14, 0 },
	.ctr = mirror_ctr,
	.dtr = mirror_dtr,
	.read = mirror_read,
	.write = mirror_write,
	.flush = mirror_flush,
	.discard = mirror_discard,
	.status = mirror_status,
	.presuspend = mirror_presuspend,
	.resume = mirror_resume,
	.max_io = mirror_max_io,
};
