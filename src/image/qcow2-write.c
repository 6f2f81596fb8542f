/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writing qcow2 v2 and v3 images (docs/interop/qcow2.rst), crash-safely, in qemu's order: a kill or a
 * power loss at any moment leaves at worst leaked clusters (refcount above the references), never a
 * table entry that points at a cluster whose refcount or contents are not yet on disk; what was
 * written before a flush is on stable storage when the flush returns.
 *
 * As qemu (cache=writeback, no lazy refcounts), L2 tables and refcount blocks are held dirty in two
 * write-back caches of whole clusters, and reach the file in dependency order:
 *   - an allocation raises the refcounts (in the refcount-block cache), writes the new clusters whole
 *     (the data, the rest of the cluster copied from what the guest saw there: backing file, zeros,
 *     a compressed cluster decoded) straight to the file, then sets the L2 entries (offset | COPIED)
 *     in the L2 cache;
 *   - an L2 table is written back (evicted, or at a flush) only after every dirty refcount block is
 *     written and, when anything was written since the last one, an fdatasync: so no entry reaches
 *     the file before the refcount and the contents of the cluster it points at;
 *   - refcount blocks may be written back at any time (a count above the references is a leak);
 *   - a new L2 table is written at once (refcounts, fdatasync, the table, fdatasync) and then its L1
 *     entry; a new refcount block or refcount table is complete and synced before anything points at
 *     it, as before (the refcount table and the L1 table are written through, never cached dirty);
 *   - frees go the other way: the L2 entries changed, the table written back (with its own
 *     dependencies), fdatasync, and only then the refcounts lowered (in the cache), so a cluster is
 *     reused only once no table on disk references it (discard; a replaced compressed or shared
 *     cluster);
 *   - a flush (the guest's fsync): refcount blocks written, fdatasync, L2 tables written, fdatasync;
 *     close writes back the same way.
 * A kill loses only dirty metadata: clusters written but not referenced yet, leaks at worst.
 * map() (qcow2.c) looks up L2 tables in the writer's cache before the file (pm_qcow2_cached_l2): a
 * dirty table is newer than the file. The writer's operations are serialised by q->wlock; the L2
 * cache's slots and entries change under w->l2lock too, which map() takes (on any thread, and from
 * inside the writer when it reads what the guest saw) only to copy one entry.
 * Memory: the refcount table (at most 8 MiB, qemu's limit; 8 bytes per cluster_size^2*8/refcount_bits
 * bytes of file), the L2 cache (4 MiB of tables: 2 to 64 of them), the refcount-block cache (1 MiB:
 * 2 to 16 blocks), a cluster buffer and a chunk of at most CHUNK_CLUSTERS entries; 5 MiB of caches
 * with 64 KiB clusters, at most 4 + 4 clusters with 2 MiB ones, whatever the virtual size and the
 * write pattern. */
#include "qcow2.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CHUNK_CLUSTERS 256u
#define L2C_BYTES (4u << 20)     /* the L2 table cache: 4 MiB of tables, 2 to 64 of them */
#define L2C_MAX 64u
#define RBC_BYTES (1u << 20)     /* the refcount block cache: 1 MiB of blocks, 2 to 16 of them */
#define RBC_MAX 16u

/* A cache of whole clusters of metadata (L2 tables or refcount blocks), held dirty until written
 * back in the dependency order. */
struct mslot {
	uint64_t off;            /* the cluster's offset in the file, 0: the slot is free */
	uint64_t stamp;          /* last use, for LRU eviction */
	bool dirty;
	uint8_t *buf;
};

struct mcache {
	unsigned n;
	uint64_t clock;
	uint8_t *mem;            /* the n buffers, one allocation */
	struct mslot s[L2C_MAX];
};

struct qcow2w {
	uint64_t *rt;            /* the refcount table, host order (written through) */
	uint64_t rt_entries;
	unsigned rbe_bits;       /* log2 of the refcounts per refcount block */
	struct mcache rbc;       /* refcount blocks (the writer's alone: under wlock) */
	struct mcache l2c;       /* L2 tables: the writer changes them under wlock + l2lock, and */
	pthread_mutex_t l2lock;  /* map() (any thread) reads their entries under l2lock */
	bool l2lock_init;
	bool unsynced;           /* data or refcounts written since the last fdatasync: an L2 table
	                          * written back now would have to wait for one */
	uint8_t *cbuf;           /* a cluster being written */
	uint64_t free_hint;      /* clusters below it are in use */
	int err;                 /* sticky: after a failed write or sync the image is not written again */
	bool started;            /* the first write's header update done */
};

/* ---- where the metadata lies: qemu's overlap check ----
 * The structures guest data must never be written over nor freed: the header cluster, the L1 tables
 * (the active one and the snapshots'), the L2 tables they point at, the refcount table and blocks,
 * the snapshot table, the bitmap directory and tables. Found at the first write from the tables on
 * disk (meta_build, by the walk check makes) into img->tables and kept there as the writer adds or
 * moves them; an image whose structures overlap one another is not written at all. A COPIED entry,
 * or a cluster free by its refcount, that is one of them (a damaged or crafted image) would have the
 * guest's data written over the tables: the write fails instead (EUCLEAN) and nothing more is
 * written, as qemu refuses it ("Preventing invalid write on metadata"). 16 bytes a structure: 32 KiB
 * for the 2048 L2 tables of a fully allocated 1 TiB disk of 64 KiB clusters. */

/* The file now reaches end: readers see the bytes (map and the table reads check against it). */
static void note_end(struct pm_image *img, uint64_t end)
{
	struct qcow2 *q = img->priv;

	if (end > __atomic_load_n(&img->file_size, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&q->data_size, end, __ATOMIC_RELEASE);
		__atomic_store_n(&img->file_size, end, __ATOMIC_RELEASE);
	}
}

/* Write to the image file; a failure makes the writer stop for good. */
static int wr(struct pm_image *img, const void *buf, size_t len, uint64_t off)
{
	struct qcow2 *q = img->priv;
	int r = pm_pwrite_all(img->fd, buf, len, off);

	if (r < 0) {
		q->w->err = r;
		return r;
	}
	q->w->unsynced = true;
	note_end(img, off + len);
	return 0;
}

/* A table entry written: the file, then the table cache. */
static int wr_table(struct pm_image *img, const void *buf, size_t len, uint64_t off)
{
	int r = wr(img, buf, len, off);

	if (r == 0)
		pm_img_table_written(img, FID_IMAGE, off, buf, len);
	return r;
}

static int wsync(struct pm_image *img)
{
	struct qcow2 *q = img->priv;

	if (img->no_flush) {
		q->w->unsynced = false;
		return 0; /* a --snapshot overlay: lost at close anyway, so no ordering to keep */
	}
	if (fdatasync(img->fd) < 0) {
		q->w->err = -errno;
		return -errno;
	}
	q->w->unsynced = false;
	return 0;
}

/* ---- refcounts ---- */

static uint64_t rc_get(const uint8_t *blk, unsigned order, uint64_t i)
{
	unsigned bits = 1u << order;

	switch (bits) {
	case 64: return get_be64(blk + i * 8);
	case 32: return get_be32(blk + i * 4);
	case 16: return get_be16(blk + i * 2);
	case 8: return blk[i];
	default: return (blk[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
	}
}

/* Set entry i; *at, *n: the bytes of the block that changed. */
static void rc_set(uint8_t *blk, unsigned order, uint64_t i, uint64_t v, size_t *at, size_t *n)
{
	unsigned bits = 1u << order;

	*at = (size_t)(i * bits / 8);
	*n = bits >= 8 ? bits / 8 : 1;
	switch (bits) {
	case 64: put_be64(blk + *at, v); break;
	case 32: put_be32(blk + *at, (uint32_t)v); break;
	case 16: put_be16(blk + *at, (uint16_t)v); break;
	case 8: blk[*at] = (uint8_t)v; break;
	default: {
		unsigned sh = (unsigned)(i * bits % 8), mask = ((1u << bits) - 1) << sh;
		blk[*at] = (uint8_t)((blk[*at] & ~mask) | ((unsigned)v << sh & mask));
	}
	}
}

static uint64_t rc_max(unsigned order)
{
	return order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
}

/* Read a whole cluster at off (zeros for the part past the end of the file). */
static int read_cluster(struct pm_image *img, uint64_t off, uint8_t *buf)
{
	struct qcow2 *q = img->priv;
	uint64_t fsize = img->file_size;
	size_t have = off >= fsize ? 0 : fsize - off < q->cluster_size ? (size_t)(fsize - off) : q->cluster_size;

	memset(buf + have, 0, q->cluster_size - have);
	return have ? pm_img_pread(img->fd, fsize, off, buf, have) : 0;
}

/* ---- the metadata caches ---- */

static struct mslot *mc_find(struct mcache *mc, uint64_t off)
{
	for (unsigned i = 0; i < mc->n; i++) {
		if (mc->s[i].off == off) {
			mc->s[i].stamp = ++mc->clock;
			return &mc->s[i];
		}
	}
	return NULL;
}

/* The slot to reuse: a free one, else the least recently used. */
static struct mslot *mc_victim(struct mcache *mc)
{
	struct mslot *v = &mc->s[0];

	for (unsigned i = 0; i < mc->n; i++) {
		if (!mc->s[i].off)
			return &mc->s[i];
		if (mc->s[i].stamp < v->stamp)
			v = &mc->s[i];
	}
	return v;
}

static bool mc_dirty(const struct mcache *mc)
{
	for (unsigned i = 0; i < mc->n; i++)
		if (mc->s[i].off && mc->s[i].dirty)
			return true;
	return false;
}

/* A refcount block written back: no order to keep (a count above the references is a leak at worst;
 * counts are lowered only once the tables that referenced the clusters are synced). */
static int rb_writeback(struct pm_image *img, struct mslot *s)
{
	struct qcow2 *q = img->priv;
	int r;

	if (!s->off || !s->dirty)
		return 0;
	if ((r = wr(img, s->buf, q->cluster_size, s->off)) < 0)
		return r;
	s->dirty = false;
	return 0;
}

static int rb_writeback_all(struct pm_image *img)
{
	struct qcow2w *w = ((struct qcow2 *)img->priv)->w;
	int r;

	for (unsigned i = 0; i < w->rbc.n; i++)
		if ((r = rb_writeback(img, &w->rbc.s[i])) < 0)
			return r;
	return 0;
}

/* An L2 table written back, in the dependency order: every dirty refcount block written, and
 * fdatasync when anything (those blocks, new data clusters, COW) was written since the last one, so
 * that no entry reaches the file before the refcount and the contents of the cluster it points at.
 * The table's own write needs no sync after it (a flush makes it durable). */
static int l2_writeback(struct pm_image *img, struct mslot *s)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	int r;

	if (!s->off || !s->dirty)
		return 0;
	if ((r = rb_writeback_all(img)) < 0 || (w->unsynced && (r = wsync(img)) < 0))
		return r;
	if ((r = pm_pwrite_all(img->fd, s->buf, q->cluster_size, s->off)) < 0)
		return w->err = r;
	note_end(img, s->off + q->cluster_size);
	pm_img_table_written(img, FID_IMAGE, s->off, s->buf, q->cluster_size);
	s->dirty = false;
	return 0;
}

/* The cluster at off in cache mc (L2 tables or refcount blocks): read from the file, or a new zeroed
 * one (dirty), in the least recently used slot, whose dirty cluster is written back first in its
 * order. A slot is invisible to map() while it changes hands. */
static int mc_get(struct pm_image *img, struct mcache *mc, uint64_t off, bool fresh, struct mslot **out)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	struct mslot *s = mc_find(mc, off);
	int r;

	if (!s) {
		s = mc_victim(mc);
		if ((r = mc == &w->l2c ? l2_writeback(img, s) : rb_writeback(img, s)) < 0)
			return r;
		pthread_mutex_lock(&w->l2lock);
		s->off = 0;
		pthread_mutex_unlock(&w->l2lock);
		if (fresh)
			memset(s->buf, 0, q->cluster_size);
		else if ((r = read_cluster(img, off, s->buf)) < 0)
			return r;
		s->dirty = fresh;
		s->stamp = ++mc->clock;
		pthread_mutex_lock(&w->l2lock);
		s->off = off;
		pthread_mutex_unlock(&w->l2lock);
	}
	*out = s;
	return 0;
}

static int rb_get(struct pm_image *img, uint64_t off, struct mslot **out)
{
	return mc_get(img, &((struct qcow2 *)img->priv)->w->rbc, off, false, out);
}

static int l2_get(struct pm_image *img, uint64_t off, bool fresh, struct mslot **out)
{
	return mc_get(img, &((struct qcow2 *)img->priv)->w->l2c, off, fresh, out);
}

static void l2_entry(const struct qcow2 *q, const struct mslot *s, uint64_t idx, uint64_t *e, uint64_t *bm)
{
	*e = get_be64(s->buf + idx * q->entry_size);
	*bm = q->ext_l2 ? get_be64(s->buf + idx * q->entry_size + 8) : 0;
}

/* An entry changed in the cached table (dirty), under the lock map() reads it with. */
static void l2_set(struct qcow2 *q, struct mslot *s, uint64_t idx, uint64_t e, uint64_t bm)
{
	pthread_mutex_lock(&q->w->l2lock);
	put_be64(s->buf + idx * q->entry_size, e);
	if (q->ext_l2)
		put_be64(s->buf + idx * q->entry_size + 8, bm);
	s->dirty = true;
	pthread_mutex_unlock(&q->w->l2lock);
}

/* Everything dirty written back: refcount blocks, fdatasync, L2 tables, fdatasync. */
static int writeback_all(struct pm_image *img)
{
	struct qcow2w *w = ((struct qcow2 *)img->priv)->w;
	int r;

	if ((r = rb_writeback_all(img)) < 0)
		return r;
	for (unsigned i = 0; i < w->l2c.n; i++)
		if ((r = l2_writeback(img, &w->l2c.s[i])) < 0)
			return r;
	return wsync(img);
}

int pm_qcow2_cached_l2(struct qcow2 *q, uint64_t l2_off, uint64_t at, void *buf, size_t len)
{
	struct qcow2w *w = __atomic_load_n(&q->w, __ATOMIC_ACQUIRE);
	int found = 0;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->l2lock);
	for (unsigned i = 0; i < w->l2c.n; i++) {
		if (w->l2c.s[i].off == l2_off) {
			memcpy(buf, w->l2c.s[i].buf + at, len);
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&w->l2lock);
	return found;
}

static uint64_t rb_of(struct qcow2w *w, uint64_t c)
{
	uint64_t idx = c >> w->rbe_bits;
	return idx < w->rt_entries ? w->rt[idx] & REFTABLE_OFFSET_MASK : 0;
}

static int refcount_get(struct pm_image *img, uint64_t c, uint64_t *v)
{
	struct qcow2 *q = img->priv;
	uint64_t rb = rb_of(q->w, c);
	struct mslot *s;
	int r;

	*v = 0;
	if (!rb)
		return 0;
	if ((r = rb_get(img, rb, &s)) < 0)
		return r;
	*v = rc_get(s->buf, q->refcount_order, c & ((1ull << q->w->rbe_bits) - 1));
	return 0;
}

/* Set the refcount of cluster c, whose refcount block exists (in the cache: dirty). */
static int refcount_set(struct pm_image *img, uint64_t c, uint64_t v)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	uint64_t rb = rb_of(w, c);
	struct mslot *s;
	size_t at, n;
	int r;

	if (!rb || (rb & (q->cluster_size - 1)))
		return -EIO;
	if (v > rc_max(q->refcount_order))
		return -EOVERFLOW;
	if ((r = rb_get(img, rb, &s)) < 0)
		return r;
	rc_set(s->buf, q->refcount_order, c & ((1ull << w->rbe_bits) - 1), v, &at, &n);
	s->dirty = true;
	return 0;
}

/* The first cluster from the hint on whose refcount is 0. */
static int find_free(struct pm_image *img, uint64_t *out)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	uint64_t c = w->free_hint, per = 1ull << w->rbe_bits;
	int r;

	for (;;) {
		uint64_t rb = rb_of(w, c);
		if (!rb) {
			*out = c;
			return 0;
		}
		struct mslot *s;
		if ((r = rb_get(img, rb, &s)) < 0)
			return r;
		for (uint64_t i = c & (per - 1); i < per; i++) {
			if (rc_get(s->buf, q->refcount_order, i) == 0) {
				*out = (c & ~(per - 1)) + i;
				return 0;
			}
		}
		c = (c & ~(per - 1)) + per;
	}
}

/* A refcount block for table index idx, placed at cluster c of the range it covers (so it counts
 * itself): written whole and synced before the table entry points at it. */
static int new_refblock(struct pm_image *img, uint64_t idx, uint64_t c)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	uint8_t e[8];
	size_t at, n;
	int r;

	if (pm_ranges_hit(&img->tables, c << q->cluster_bits, q->cluster_size))
		return -EUCLEAN; /* counted by no block, yet metadata: the refcounts are wrong */
	memset(w->cbuf, 0, q->cluster_size);
	rc_set(w->cbuf, q->refcount_order, c - (idx << w->rbe_bits), 1, &at, &n);
	if ((r = wr(img, w->cbuf, q->cluster_size, c << q->cluster_bits)) < 0 || (r = wsync(img)) < 0)
		return r;
	put_be64(e, c << q->cluster_bits);
	if ((r = wr(img, e, 8, q->reftable_off + idx * 8)) < 0)
		return r;
	w->rt[idx] = c << q->cluster_bits;
	return pm_ranges_insert(&img->tables, c << q->cluster_bits, q->cluster_size);
}

/* A refcount table with room for index need: new refcount blocks and the new table together at the
 * end of the file, covering themselves; synced; then the header switched to it in one write, synced;
 * then the old table's clusters freed. A crash before the switch leaves clusters past everything
 * counted, which nothing references and no refcount counts. */
static int grow_reftable(struct pm_image *img, uint64_t need)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	uint64_t cs = q->cluster_size, epc = cs / 8, per = 1ull << w->rbe_bits;
	uint64_t old_n = w->rt_entries, old_off = q->reftable_off, old_clusters = q->reftable_clusters;
	uint64_t fclusters = (img->file_size + cs - 1) >> q->cluster_bits;
	uint64_t a = old_n * per > fclusters ? old_n * per : fclusters;
	uint64_t k = 0, t = 0, first = a >> w->rbe_bits;
	uint8_t h[12];
	int r;

	for (int i = 0; i < 64; i++) {
		uint64_t last = (a + k + t - 1) >> w->rbe_bits;
		uint64_t want = last > need ? last + 1 : need + 1;
		if (want < old_n + old_n / 2)
			want = old_n + old_n / 2;
		uint64_t nk = last - first + 1, nt = (want + epc - 1) / epc;
		if (nk == k && nt == t)
			break;
		k = nk > k ? nk : k;
		t = nt > t ? nt : t;
	}
	if (t * cs > QCOW2_MAX_REFTABLE_BYTES || t > UINT32_MAX)
		return -EFBIG;
	if (pm_ranges_hit(&img->tables, a * cs, (k + t) * cs))
		return -EUCLEAN; /* past every counted cluster, yet metadata: a table points past the file */
	/* the refcount blocks: each counts the new clusters in its range */
	for (uint64_t m = 0; m < k; m++) {
		memset(w->cbuf, 0, cs);
		for (uint64_t x = a; x < a + k + t; x++) {
			size_t at, n;
			if (x >> w->rbe_bits == first + m)
				rc_set(w->cbuf, q->refcount_order, x & (per - 1), 1, &at, &n);
		}
		if ((r = wr(img, w->cbuf, cs, (a + m) * cs)) < 0)
			return r;
	}
	uint64_t n_new = t * epc;
	_cleanup_free_ uint64_t *rt = calloc(n_new, sizeof(*rt));
	_cleanup_free_ uint8_t *raw = calloc(n_new, 8);
	if (!rt || !raw)
		return -ENOMEM;
	memcpy(rt, w->rt, old_n * sizeof(*rt));
	for (uint64_t m = 0; m < k; m++)
		rt[first + m] = (a + m) * cs;
	for (uint64_t i = 0; i < n_new; i++)
		put_be64(raw + i * 8, rt[i]);
	if ((r = wr(img, raw, n_new * 8, (a + k) * cs)) < 0 || (r = wsync(img)) < 0)
		return r;
	put_be64(h, (a + k) * cs);
	put_be32(h + 8, (uint32_t)t);
	if ((r = wr(img, h, 12, HDR_REFTABLE_OFFSET)) < 0 || (r = wsync(img)) < 0)
		return r;
	free(w->rt);
	w->rt = rt;
	rt = NULL;
	w->rt_entries = n_new;
	q->reftable_off = (a + k) * cs;
	q->reftable_clusters = (uint32_t)t;
	pm_ranges_remove(&img->tables, old_off);
	for (uint64_t m = 0; m < k; m++)
		if ((r = pm_ranges_insert(&img->tables, (a + m) * cs, cs)) < 0)
			return r;
	if ((r = pm_ranges_insert(&img->tables, (a + k) * cs, t * cs)) < 0)
		return r;
	/* the old table: no longer referenced */
	for (uint64_t c = old_off / cs; c < old_off / cs + old_clusters; c++) {
		uint64_t v;
		if ((r = refcount_get(img, c, &v)) < 0 || (v && (r = refcount_set(img, c, v - 1)) < 0))
			return r;
		if (c < w->free_hint)
			w->free_hint = c;
	}
	return 0;
}

/* A free cluster, its refcount set to 1 (written, not synced): its host offset in *off. */
static int alloc_cluster(struct pm_image *img, uint64_t *off)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	int r;

	for (;;) {
		uint64_t c;
		if ((r = find_free(img, &c)) < 0)
			return r;
		uint64_t idx = c >> w->rbe_bits;
		if (c == 0 || (c << q->cluster_bits) >> q->cluster_bits != c ||
		    (c << q->cluster_bits) > ENTRY_OFFSET_MASK)
			return -EFBIG; /* cluster 0 is the header: a broken refcount structure */
		if (idx < w->rt_entries && rb_of(w, c)) {
			if (pm_ranges_hit(&img->tables, c << q->cluster_bits, q->cluster_size))
				return -EUCLEAN; /* metadata with a refcount of 0 */
			if ((r = refcount_set(img, c, 1)) < 0)
				return r;
			w->free_hint = c + 1;
			*off = c << q->cluster_bits;
			return 0;
		}
		r = idx < w->rt_entries ? new_refblock(img, idx, c) : grow_reftable(img, idx);
		if (r < 0)
			return r;
	}
}

/* A cluster for a new L2 table (alloc_cluster), noted among the metadata. */
static int alloc_l2(struct pm_image *img, uint64_t *off)
{
	int r = alloc_cluster(img, off);

	return r < 0 ? r : pm_ranges_insert(&img->tables, *off, ((struct qcow2 *)img->priv)->cluster_size);
}

/* Lower the refcount of every cluster that [off, off+len) touches (punching the ones that reach 0
 * out of the file when punch is set). */
static int release(struct pm_image *img, uint64_t off, uint64_t len, bool punch)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	int r;

	if (!len)
		return 0;
	if (pm_ranges_hit(&img->tables, off, len))
		return -EUCLEAN; /* a guest cluster that is metadata: never freed nor punched */
	for (uint64_t c = off >> q->cluster_bits; c <= (off + len - 1) >> q->cluster_bits; c++) {
		uint64_t v;
		if ((r = refcount_get(img, c, &v)) < 0)
			return r;
		if (v == 0)
			return -EIO; /* references without a count: left as it is (check reports it) */
		if ((r = refcount_set(img, c, v - 1)) < 0)
			return r;
		if (v == 1) {
			if (c < w->free_hint)
				w->free_hint = c;
			if (punch)
				(void)fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						(off_t)(c << q->cluster_bits), (off_t)q->cluster_size);
		}
	}
	return 0;
}

/* The host range an entry holds (a compressed cluster's sectors, or a cluster): 0 length if none. */
static void entry_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len)
{
	*off = *len = 0;
	if (e & ENTRY_COMPRESSED) {
		uint64_t coff = e & ((1ull << q->csize_shift) - 1);
		uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;
		*off = coff;
		*len = nsec * 512 - (coff & 511);
	} else if (e & ENTRY_OFFSET_MASK) {
		*off = e & ENTRY_OFFSET_MASK;
		*len = q->cluster_size;
	}
}

/* ---- the writer ---- */

static void w_free(struct qcow2w *w)
{
	if (!w)
		return;
	if (w->l2lock_init)
		pthread_mutex_destroy(&w->l2lock);
	free(w->rt);
	free(w->rbc.mem);
	free(w->l2c.mem);
	free(w->cbuf);
	free(w);
}

/* n slots of a cluster each: bytes/cluster_size of them, from 2 to max. */
static int mc_init(struct mcache *mc, uint64_t cs, uint64_t bytes, unsigned max)
{
	uint64_t n = bytes / cs;

	mc->n = n < 2 ? 2 : n > max ? max : (unsigned)n;
	mc->mem = malloc(mc->n * cs);
	if (!mc->mem)
		return -ENOMEM;
	for (unsigned i = 0; i < mc->n; i++)
		mc->s[i].buf = mc->mem + i * cs;
	return 0;
}

/* The refcount table in memory, the caches and the buffers: for writes and for check. map() may look
 * at the L2 cache as soon as q->w is set, so it is set last. */
static int state_init(struct pm_image *img)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w;
	int r;

	if (q->w)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->rt_entries = ((uint64_t)q->reftable_clusters << q->cluster_bits) / 8;
	w->rbe_bits = q->cluster_bits + 3 - q->refcount_order;
	w->rt = calloc(w->rt_entries ? w->rt_entries : 1, sizeof(*w->rt));
	w->cbuf = malloc(q->cluster_size);
	_cleanup_free_ uint8_t *raw = calloc(w->rt_entries ? w->rt_entries : 1, 8);
	r = -ENOMEM;
	if (w->rt && w->cbuf && raw && mc_init(&w->rbc, q->cluster_size, RBC_BYTES, RBC_MAX) == 0 &&
	    mc_init(&w->l2c, q->cluster_size, L2C_BYTES, L2C_MAX) == 0 && pthread_mutex_init(&w->l2lock, NULL) == 0) {
		w->l2lock_init = true;
		uint64_t have = img->file_size > q->reftable_off ? img->file_size - q->reftable_off : 0;
		if (have > w->rt_entries * 8)
			have = w->rt_entries * 8;
		r = have ? pm_img_pread(img->fd, img->file_size, q->reftable_off, raw, (size_t)have) : 0;
	}
	if (r < 0) {
		w_free(w);
		return r;
	}
	for (uint64_t i = 0; i < w->rt_entries; i++)
		w->rt[i] = get_be64(raw + i * 8);
	__atomic_store_n(&q->w, w, __ATOMIC_RELEASE);
	return 0;
}

static int meta_build(struct pm_image *img);

static int writer_init(struct pm_image *img)
{
	struct qcow2 *q = img->priv;
	int r = state_init(img);

	if (r < 0)
		return r;
	struct qcow2w *w = q->w;
	if (w->err || w->started)
		return w->err;
	for (uint64_t i = 0; i < w->rt_entries; i++)
		if (w->rt[i] & (q->cluster_size - 1) & REFTABLE_OFFSET_MASK)
			return w->err = -EIO; /* a misaligned refcount block: not written */
	if ((r = meta_build(img)) < 0)
		return w->err = r;
	/* autoclear: the bitmaps are not kept up to date, so they are declared inconsistent (the spec's
	 * way for a program that does not know them) before anything else changes */
	if (q->version >= 3 && (q->autoclear & AUTOCLEAR_BITMAPS)) {
		uint8_t b[8];
		put_be64(b, q->autoclear & ~(uint64_t)AUTOCLEAR_BITMAPS);
		if ((r = wr(img, b, 8, HDR_AUTOCLEAR)) < 0 || (r = wsync(img)) < 0)
			return r;
		q->autoclear &= ~(uint64_t)AUTOCLEAR_BITMAPS;
	}
	w->started = true;
	return 0;
}

void pm_qcow2_write_close(struct pm_image *img)
{
	struct qcow2 *q = img->priv;

	if (!q->w)
		return;
	if (q->w->started && !q->w->err)
		(void)writeback_all(img); /* what is dirty (a close has no way to report a failure) */
	w_free(q->w);
	q->w = NULL;
}

enum act { KEEP, INPLACE, NEWC, REUSE, SUB };

struct cl {
	enum act act;
	uint64_t host;
	uint64_t e, bm;          /* the entry as read */
	uint32_t mask;           /* SUB: the subclusters written */
};

static int read_l1(struct pm_image *img, uint64_t idx, uint64_t *e)
{
	struct qcow2 *q = img->priv;
	uint8_t b[8];
	int r = pm_img_table(img, FID_IMAGE, img->fd, img->file_size, q->l1_off, (uint64_t)q->l1_size * 8, idx * 8, b, 8);

	*e = get_be64(b);
	return r;
}

/* What the guest sees in [goff, goff+n) now (zeros past the virtual size). */
static int read_guest(struct pm_image *img, uint64_t goff, uint8_t *buf, size_t n)
{
	size_t have = goff >= img->size ? 0 : img->size - goff < n ? (size_t)(img->size - goff) : n;

	memset(buf + have, 0, n - have);
	return have ? pm_image_read(img, goff, buf, have) : 0;
}

/* is host a cluster one of the first n clusters of a write already lies at (a new one: none yet)? */
static bool held_before(const struct cl *c, uint64_t n, uint64_t host)
{
	for (uint64_t i = 0; i < n; i++)
		if (c[i].act != NEWC && c[i].host == host)
			return true;
	return false;
}

/* One run of the write inside one L2 table and at most CHUNK_CLUSTERS clusters. */
static int write_chunk(struct pm_image *img, uint64_t off, const uint8_t *p, size_t len)
{
	struct qcow2 *q = img->priv;
	struct qcow2w *w = q->w;
	uint64_t cs = q->cluster_size, gc0 = off >> q->cluster_bits, gc1 = (off + len - 1) >> q->cluster_bits;
	uint64_t n = gc1 - gc0 + 1, l1i = gc0 >> q->l2_bits, l1e, l2;
	struct cl c[CHUNK_CLUSTERS];
	struct mslot *t = NULL;
	bool new_l2, any_free = false;
	int r;

	if ((r = read_l1(img, l1i, &l1e)) < 0)
		return r;
	l2 = l1e & ENTRY_OFFSET_MASK;
	if (l2 && ((l2 & (cs - 1)) || !(l1e & ENTRY_COPIED)))
		return -EIO; /* misaligned, or shared with a snapshot */
	new_l2 = !l2;
	if (l2 && (r = l2_get(img, l2, false, &t)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t gc = gc0 + i, cstart = gc << q->cluster_bits;
		uint64_t from = off > cstart ? off - cstart : 0;
		uint64_t to = off + len < cstart + cs ? off + len - cstart : cs;
		struct cl *x = &c[i];
		memset(x, 0, sizeof(*x));
		if (t)
			l2_entry(q, t, gc & ((1ull << q->l2_bits) - 1), &x->e, &x->bm);
		uint64_t host = x->e & ENTRY_OFFSET_MASK, ro, rl;
		if (!(x->e & ENTRY_COMPRESSED) && host && (x->e & ENTRY_COPIED)) {
			if (host & (cs - 1))
				return -EIO;
			/* the entry points past the file (no cluster was ever allocated there), at a cluster
			 * an entry before it in this write holds too (the first one's data would be lost), or
			 * has reserved bits set (qemu refuses it): a damaged image, not written */
			if (host >= img->file_size || (x->e & ENTRY_RESERVED) || held_before(c, i, host))
				return -EUCLEAN;
			x->host = host;
			if (!q->ext_l2) {
				x->act = (x->e & ENTRY_ZERO) ? REUSE : INPLACE;
			} else {
				unsigned s0 = (unsigned)(from / q->sub_size), s1 = (unsigned)((to + q->sub_size - 1) / q->sub_size);
				x->mask = (uint32_t)((s1 >= 32 ? 0xffffffffu : (1u << s1) - 1) & ~((1u << s0) - 1));
				x->act = ((uint32_t)x->bm & x->mask) == x->mask ? INPLACE : SUB;
			}
		} else {
			x->act = NEWC;
			any_free |= (x->e & ENTRY_COMPRESSED) || host;
		}
		/* what the entry holds is metadata: written over in place, or freed when replaced, it
		 * would be lost (a damaged image; qemu refuses the write) */
		entry_range(q, x->e, &ro, &rl);
		if (pm_ranges_hit(&img->tables, ro, rl))
			return -EUCLEAN;
	}
	/* 1. refcounts */
	if (new_l2 && (r = alloc_l2(img, &l2)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		if (c[i].act != NEWC)
			continue;
		if ((r = alloc_cluster(img, &c[i].host)) < 0)
			return r;
		/* free by its refcount, yet a cluster this write writes in place: the refcounts are wrong,
		 * and the guest's data would go twice to one place */
		if (held_before(c, n, c[i].host))
			return -EUCLEAN;
	}
	/* 2. data: straight from the guest's buffer where it covers all that is written (runs contiguous
	 * in the file and in the buffer joined into one write); a new cluster (subclusters) written in
	 * part is filled around the guest's bytes with what the guest saw there */
	uint64_t run_host = 0, run_len = 0;
	const uint8_t *run_src = NULL;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t gc = gc0 + i, cstart = gc << q->cluster_bits;
		uint64_t from = off > cstart ? off - cstart : 0;
		uint64_t to = off + len < cstart + cs ? off + len - cstart : cs;
		uint64_t w0 = from, w1 = to; /* what is written in the cluster */
		const uint8_t *src = p + (cstart + from - off);
		struct cl *x = &c[i];
		if (x->act == SUB) {
			w0 = from / q->sub_size * q->sub_size;
			w1 = (to + q->sub_size - 1) / q->sub_size * q->sub_size;
		} else if (x->act != INPLACE) {
			w0 = 0;
			w1 = cs;
		}
		bool direct = w0 == from && w1 == to;
		if (direct && run_len && run_host + run_len == x->host + from && run_src + run_len == src) {
			run_len += to - from;
			continue;
		}
		if (run_len && (r = wr(img, run_src, (size_t)run_len, run_host)) < 0)
			return r;
		run_len = 0;
		if (direct) {
			run_host = x->host + from;
			run_src = src;
			run_len = to - from;
			continue;
		}
		if ((r = read_guest(img, cstart + w0, w->cbuf, w1 - w0)) < 0)
			return r;
		memcpy(w->cbuf + (from - w0), src, to - from);
		if ((r = wr(img, w->cbuf, w1 - w0, x->host + w0)) < 0)
			return r;
	}
	if (run_len && (r = wr(img, run_src, (size_t)run_len, run_host)) < 0)
		return r;
	/* 3. the tables, in the cache: they reach the file on eviction or flush, after the refcounts and
	 * an fdatasync (l2_writeback); a new table at once, then its L1 entry */
	if (new_l2 && (r = l2_get(img, l2, true, &t)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		struct cl *x = &c[i];
		uint64_t e = x->host | ENTRY_COPIED, bm = 0;
		if (x->act == INPLACE)
			continue;
		if (x->act == SUB)
			bm = (x->bm | x->mask) & ~((uint64_t)x->mask << 32);
		else if (q->ext_l2)
			bm = 0xffffffffu;
		l2_set(q, t, (gc0 + i) & ((1ull << q->l2_bits) - 1), e, bm);
	}
	if (new_l2) {
		uint8_t b[8];
		put_be64(b, l2 | ENTRY_COPIED);
		if ((r = l2_writeback(img, t)) < 0 || (r = wsync(img)) < 0 ||
		    (r = wr_table(img, b, 8, q->l1_off + l1i * 8)) < 0)
			return r;
	}
	/* 4. what was replaced: once no table on disk references it */
	if (any_free) {
		if ((r = l2_writeback(img, t)) < 0 || (r = wsync(img)) < 0)
			return r;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t ro, rl;
			if (c[i].act != NEWC)
				continue;
			entry_range(q, c[i].e, &ro, &rl);
			if ((r = release(img, ro, rl, false)) < 0)
				return w->err = r;
		}
	}
	return 0;
}

/* The next run of [off, off+len) that lies in one L2 table and at most CHUNK_CLUSTERS clusters. */
static size_t chunk_len(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t span = 1ull << (q->cluster_bits + q->l2_bits);
	uint64_t end = (off | (span - 1)) + 1;
	uint64_t cap = ((off >> q->cluster_bits) + CHUNK_CLUSTERS) << q->cluster_bits;

	if (cap < end)
		end = cap;
	return (size_t)(end - off < len ? end - off : len);
}

int pm_qcow2_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	struct qcow2 *q = img->priv;
	const uint8_t *p = buf;
	int r;

	if (q->data_file) {
		/* a raw external data file (the only kind written): in place where clusters are allocated,
		 * as before the writer (the tables are not changed) */
		return pm_img_write_in_place(img, off, buf, len);
	}
	pthread_mutex_lock(&q->wlock);
	r = writer_init(img);
	while (r == 0 && len) {
		size_t n = chunk_len(q, off, len);
		r = write_chunk(img, off, p, n);
		off += n;
		p += n;
		len -= n;
	}
	if (r < 0 && !q->w->err)
		q->w->err = -EIO; /* a half-done allocation: nothing more is written until reopened */
	pthread_mutex_unlock(&q->wlock);
	return r;
}

int pm_qcow2_flush(struct pm_image *img)
{
	struct qcow2 *q = img->priv;
	int r = 0;

	pthread_mutex_lock(&q->wlock);
	if (q->w && q->w->err)
		r = q->w->err;
	else if (q->w && (r = writeback_all(img)) < 0)
		;
	else if ((!q->w && fdatasync(img->fd) < 0) || (q->data_file && fdatasync(q->data_fd) < 0))
		r = -errno;
	if (r < 0 && q->w && !q->w->err)
		q->w->err = r; /* as qemu: after a failed sync, no later one can be trusted */
	pthread_mutex_unlock(&q->wlock);
	return r;
}

/* Whole clusters of [off, off+len) become unallocated (no backing file) or zero clusters (a backing
 * file, v3); their host clusters are released and punched out of the file. v2 with a backing file
 * has no way to say "zero": nothing is done. */
static int discard_chunk(struct pm_image *img, uint64_t gc0, uint64_t n)
{
	struct qcow2 *q = img->priv;
	uint64_t l1i = gc0 >> q->l2_bits, l1e, l2, e[CHUNK_CLUSTERS];
	struct mslot *t;
	bool changed = false;
	int r;

	if ((r = read_l1(img, l1i, &l1e)) < 0)
		return r;
	l2 = l1e & ENTRY_OFFSET_MASK;
	if (!l2 && !img->backing)
		return 0; /* unallocated without a backing file: reads as zeros already */
	if (!l2) {
		/* over a backing file the clusters must become zero clusters: an L2 table for them,
		 * counted, zeroed and synced before the L1 entry points at it */
		uint8_t b[8];
		if ((r = alloc_l2(img, &l2)) < 0 || (r = l2_get(img, l2, true, &t)) < 0 ||
		    (r = l2_writeback(img, t)) < 0 || (r = wsync(img)) < 0)
			return r;
		put_be64(b, l2 | ENTRY_COPIED);
		if ((r = wr_table(img, b, 8, q->l1_off + l1i * 8)) < 0)
			return r;
	}
	if ((l2 & (q->cluster_size - 1)) || ((l1e & ENTRY_OFFSET_MASK) && !(l1e & ENTRY_COPIED)))
		return -EIO; /* misaligned, or shared with a snapshot */
	if ((r = l2_get(img, l2, false, &t)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t idx = (gc0 + i) & ((1ull << q->l2_bits) - 1), bm, ne = 0, nbm = 0, ro, rl;
		l2_entry(q, t, idx, &e[i], &bm);
		entry_range(q, e[i], &ro, &rl);
		if (rl && !(e[i] & ENTRY_COMPRESSED) && !(e[i] & ENTRY_COPIED))
			return -EIO; /* shared: not released */
		if (pm_ranges_hit(&img->tables, ro, rl))
			return -EUCLEAN; /* metadata, not the guest's: the table is left as it is */
		if (img->backing) {
			if (q->ext_l2)
				nbm = 0xffffffffull << 32;
			else
				ne = ENTRY_ZERO;
		}
		if (e[i] == ne && bm == nbm) {
			e[i] = 0;
			continue; /* already so */
		}
		l2_set(q, t, idx, ne, nbm);
		changed = true;
		if (!rl)
			e[i] = 0; /* nothing to release */
	}
	if (!changed)
		return 0;
	/* frees go the other way: the table on disk first, then the refcounts */
	if ((r = l2_writeback(img, t)) < 0 || (r = wsync(img)) < 0)
		return r;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t ro, rl;
		entry_range(q, e[i], &ro, &rl);
		if ((r = release(img, ro, rl, true)) < 0)
			return q->w->err = r;
	}
	return 0;
}

int pm_qcow2_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	struct qcow2 *q = img->priv;
	uint64_t cs = q->cluster_size;
	uint64_t first = (off + cs - 1) >> q->cluster_bits, end = (off + len) >> q->cluster_bits;
	int r;

	if (off + len == img->size && (img->size & (cs - 1)))
		end++; /* the partial cluster at the end of the disk */
	if ((img->backing && q->version < 3) || q->data_file)
		return 0; /* zeros written instead (pm_image_zero_range) */
	pthread_mutex_lock(&q->wlock);
	r = writer_init(img);
	while (r == 0 && first < end) {
		uint64_t span_end = ((first >> q->l2_bits) + 1) << q->l2_bits;
		uint64_t n = end - first;
		if (n > span_end - first)
			n = span_end - first;
		if (n > CHUNK_CLUSTERS)
			n = CHUNK_CLUSTERS;
		r = discard_chunk(img, first, n);
		first += n;
	}
	if (r < 0 && !q->w->err)
		q->w->err = -EIO;
	pthread_mutex_unlock(&q->wlock);
	return r;
}

/* ---- check: references against refcounts, as qemu-img check ---- */

/* The walk of everything the image references. check counts the references per cluster; meta_build
 * (collect set) only notes where the metadata lies, without reading the L2 tables. */
struct chk {
	struct pm_image *img;
	struct pm_image_check *res;
	uint32_t *refs;          /* references counted per cluster of the file */
	uint64_t nb;             /* clusters in the file */
	uint8_t *buf;            /* an L2 table */
	bool collect;            /* meta_build: the metadata noted in img->tables, nothing counted */
	int err;
};

static void say(struct chk *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct chk *k, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!k->res->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	k->res->report(k->res->ctx, msg);
}

static void inc(struct chk *k, uint64_t off, uint64_t len, const char *what)
{
	struct qcow2 *q = k->img->priv;

	if (!len || k->collect)
		return;
	for (uint64_t c = off >> q->cluster_bits; c <= (off + len - 1) >> q->cluster_bits; c++) {
		if (c >= k->nb) {
			k->res->corruptions++;
			say(k, "ERROR %s at offset 0x%llx lies past the end of the file", what, (unsigned long long)off);
			return;
		}
		if (k->refs[c] < UINT32_MAX)
			k->refs[c]++;
	}
}

/* A metadata structure: counted as inc() does, or noted for meta_build (appended: sorted there). */
static void meta(struct chk *k, uint64_t off, uint64_t len, const char *what)
{
	int r;

	if (!k->collect)
		inc(k, off, len, what);
	else if (!k->err && (r = pm_ranges_add(&k->img->tables, off, len)) < 0)
		k->err = r;
}

/* Count what an L1 table references (an L2 table per entry, the clusters of its entries). */
static int walk_l1(struct chk *k, uint64_t l1_off, uint32_t l1_size)
{
	struct qcow2 *q = k->img->priv;
	struct pm_image *img = k->img;
	uint64_t cs = q->cluster_size;
	int r;

	for (uint32_t i = 0; i < l1_size; i++) {
		uint8_t b[8];
		if ((r = pm_img_table(img, FID_IMAGE, img->fd, img->file_size, l1_off, (uint64_t)l1_size * 8,
				      (uint64_t)i * 8, b, 8)) < 0)
			return r;
		uint64_t l1e = get_be64(b), l2 = l1e & ENTRY_OFFSET_MASK;
		if (!l2)
			continue;
		if (l1e & 0x7f000000000001ffull) {
			k->res->corruptions++;
			say(k, "ERROR L1 entry %u has reserved bits set", i);
		}
		if (l2 & (cs - 1)) {
			k->res->corruptions++;
			say(k, "ERROR L2 table offset 0x%llx unaligned (L1 index %u)", (unsigned long long)l2, i);
			continue;
		}
		meta(k, l2, cs, "L2 table");
		if (l2 >= img->file_size || k->collect)
			continue;
		if ((r = read_cluster(img, l2, k->buf)) < 0)
			return r;
		for (uint64_t j = 0; j < (1ull << q->l2_bits); j++) {
			uint64_t e = get_be64(k->buf + j * q->entry_size), ro, rl;
			uint64_t bm = q->ext_l2 ? get_be64(k->buf + j * q->entry_size + 8) : 0;
			if (e & ENTRY_COMPRESSED) {
				if (e & ENTRY_COPIED) {
					k->res->corruptions++;
					say(k, "ERROR compressed cluster with the COPIED flag (L2 entry %llu of 0x%llx)",
					    (unsigned long long)j, (unsigned long long)l2);
				}
			} else if ((e & ENTRY_OFFSET_MASK) & (cs - 1)) {
				k->res->corruptions++;
				say(k, "ERROR cluster offset 0x%llx unaligned", (unsigned long long)(e & ENTRY_OFFSET_MASK));
				continue;
			}
			if (q->ext_l2 && ((uint32_t)bm & (uint32_t)(bm >> 32))) {
				k->res->corruptions++;
				say(k, "ERROR subclusters both allocated and zero (L2 entry %llu of 0x%llx)",
				    (unsigned long long)j, (unsigned long long)l2);
			}
			entry_range(q, e, &ro, &rl);
			inc(k, ro, rl, "data cluster");
		}
	}
	return 0;
}

/* COPIED against the refcounts on disk, for the active tables. */
static int check_copied(struct chk *k)
{
	struct qcow2 *q = k->img->priv;
	struct pm_image *img = k->img;
	uint64_t cs = q->cluster_size, v;
	int r;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l1e;
		if ((r = read_l1(img, i, &l1e)) < 0)
			return r;
		uint64_t l2 = l1e & ENTRY_OFFSET_MASK;
		if (!l2 || (l2 & (cs - 1)) || l2 >= img->file_size)
			continue;
		if ((r = refcount_get(img, l2 >> q->cluster_bits, &v)) < 0)
			return r;
		if ((v == 1) != !!(l1e & ENTRY_COPIED)) {
			k->res->corruptions++;
			say(k, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu", i,
			    (unsigned long long)l1e, (unsigned long long)v);
		}
		if ((r = read_cluster(img, l2, k->buf)) < 0)
			return r;
		for (uint64_t j = 0; j < (1ull << q->l2_bits); j++) {
			uint64_t e = get_be64(k->buf + j * q->entry_size), h = e & ENTRY_OFFSET_MASK;
			if ((e & ENTRY_COMPRESSED) || !h || (h & (cs - 1)) || h >= img->file_size)
				continue;
			if ((r = refcount_get(img, h >> q->cluster_bits, &v)) < 0)
				return r;
			if ((v == 1) != !!(e & ENTRY_COPIED)) {
				k->res->corruptions++;
				say(k, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu", (unsigned long long)e,
				    (unsigned long long)v);
			}
		}
	}
	return 0;
}

static int walk_snapshots(struct chk *k)
{
	struct qcow2 *q = k->img->priv;
	struct pm_image *img = k->img;
	uint64_t pos = q->snapshots_off;
	int r;

	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		uint8_t h[40];
		if ((r = pm_img_pread(img->fd, img->file_size, pos, h, 40)) < 0)
			return r;
		uint64_t l1 = get_be64(h);
		uint32_t l1n = get_be32(h + 8);
		uint64_t len = 40 + (uint64_t)get_be32(h + 36) + get_be16(h + 12) + get_be16(h + 14);
		len = (len + 7) & ~7ull;
		if ((uint64_t)l1n * 8 > QCOW2_MAX_L1_BYTES || (l1 & (q->cluster_size - 1))) {
			k->res->corruptions++;
			say(k, "ERROR snapshot %u: L1 table invalid", i);
		} else {
			meta(k, l1, (uint64_t)l1n * 8, "snapshot L1 table");
			if ((r = walk_l1(k, l1, l1n)) < 0)
				return r;
		}
		pos += len;
	}
	if (q->nb_snapshots)
		meta(k, q->snapshots_off, pos - q->snapshots_off, "snapshot table");
	return 0;
}

/* The persistent bitmaps (only when the autoclear bit says they are consistent, as qemu). */
static int walk_bitmaps(struct chk *k)
{
	struct qcow2 *q = k->img->priv;
	struct pm_image *img = k->img;
	uint8_t e[24];
	int r;

	if (!q->bitmaps_ext || !(q->autoclear & AUTOCLEAR_BITMAPS))
		return 0;
	if ((r = pm_img_pread(img->fd, img->file_size, q->bitmaps_ext, e, 24)) < 0)
		return r;
	uint32_t n = get_be32(e);
	uint64_t dsize = get_be64(e + 8), doff = get_be64(e + 16);
	meta(k, doff, dsize, "bitmap directory");
	for (uint64_t pos = doff; n-- && pos + 24 <= doff + dsize;) {
		uint8_t d[24];
		if ((r = pm_img_pread(img->fd, img->file_size, pos, d, 24)) < 0)
			return r;
		uint64_t toff = get_be64(d);
		uint32_t tn = get_be32(d + 8);
		meta(k, toff, (uint64_t)tn * 8, "bitmap table");
		for (uint32_t t = 0; t < tn && !k->collect; t++) {
			uint8_t b[8];
			if ((r = pm_img_pread(img->fd, img->file_size, toff + (uint64_t)t * 8, b, 8)) < 0)
				return r;
			uint64_t bo = get_be64(b) & ENTRY_OFFSET_MASK;
			if (bo)
				inc(k, bo, q->cluster_size, "bitmap data");
		}
		uint64_t len = 24 + (uint64_t)get_be32(d + 20) + get_be16(d + 18);
		pos += (len + 7) & ~7ull;
	}
	return 0;
}

/* Everything the image references: the header, the tables and what they point at. */
static int walk_all(struct chk *k)
{
	struct qcow2 *q = k->img->priv;
	struct qcow2w *w = q->w;
	uint64_t cs = q->cluster_size;
	int r;

	meta(k, 0, cs, "header");
	meta(k, q->l1_off, (uint64_t)q->l1_size * 8, "L1 table");
	if ((r = walk_l1(k, q->l1_off, q->l1_size)) < 0 || (r = walk_snapshots(k)) < 0 || (r = walk_bitmaps(k)) < 0)
		return r;
	meta(k, q->reftable_off, (uint64_t)q->reftable_clusters * cs, "refcount table");
	for (uint64_t i = 0; i < w->rt_entries; i++) {
		uint64_t rb = w->rt[i] & REFTABLE_OFFSET_MASK;
		if (!rb)
			continue;
		if (rb & (cs - 1)) {
			k->res->corruptions++;
			say(k, "ERROR refcount block %llu is not cluster aligned", (unsigned long long)i);
			continue;
		}
		meta(k, rb, cs, "refcount block");
	}
	return k->err;
}

/* Where the metadata lies, from the tables on disk (see the overlap check at the top). Two
 * structures that overlap (a damaged or crafted image) and nothing is written: EUCLEAN. (An L2 table
 * shared with a snapshot would be two of them at one place, but an image with internal snapshots is
 * not written at all.) */
static int meta_build(struct pm_image *img)
{
	struct pm_image_check quiet = { 0 };
	struct chk k = { .img = img, .res = &quiet, .collect = true };
	int r;

	pm_ranges_free(&img->tables);
	if ((r = walk_all(&k)) < 0)
		return r;
	return pm_ranges_seal(&img->tables);
}

static int check_once(struct pm_image *img, bool fix, struct pm_image_check *res)
{
	struct qcow2 *q = img->priv;
	uint64_t cs = q->cluster_size;
	struct chk k = { .img = img, .res = res };
	int r;

	k.nb = (img->file_size + cs - 1) >> q->cluster_bits;
	_cleanup_free_ uint32_t *refs = calloc(k.nb ? k.nb : 1, sizeof(*refs));
	_cleanup_free_ uint8_t *buf = malloc(cs);
	if (!refs || !buf)
		return -ENOMEM;
	k.refs = refs;
	k.buf = buf;
	if ((r = walk_all(&k)) < 0)
		return r;
	res->clusters = k.nb;
	for (uint64_t c = 0; c < k.nb; c++) {
		uint64_t v;
		if ((r = refcount_get(img, c, &v)) < 0)
			return r;
		if (v)
			res->allocated++;
		if (v == refs[c])
			continue;
		if (v > refs[c]) {
			res->leaks++;
			say(&k, "%s cluster %llu refcount=%llu reference=%u", fix ? "Repairing" : "Leaked",
			    (unsigned long long)c, (unsigned long long)v, refs[c]);
			if (fix) {
				if ((r = refcount_set(img, c, refs[c])) < 0)
					return r;
				res->leaks_fixed++;
			}
		} else {
			res->corruptions++;
			say(&k, "ERROR cluster %llu refcount=%llu reference=%u", (unsigned long long)c,
			    (unsigned long long)v, refs[c]);
		}
	}
	return check_copied(&k);
}

int pm_qcow2_check(struct pm_image *img, bool fix_leaks, struct pm_image_check *res)
{
	struct qcow2 *q = img->priv;
	int r;

	if (fix_leaks && (!img->want_write || !img->files_rw || img->ro_reason))
		return -EROFS;
	pthread_mutex_lock(&q->wlock);
	r = state_init(img);
	if (r == 0 && (mc_dirty(&q->w->rbc) || mc_dirty(&q->w->l2c)))
		r = q->w->err ? q->w->err : writeback_all(img); /* the file as the cache holds it */
	if (r == 0) {
		res->corruptions = res->leaks = res->leaks_fixed = res->clusters = res->allocated = 0;
		r = check_once(img, false, res);
	}
	if (r == 0 && fix_leaks && res->leaks && !res->corruptions) {
		/* lower the leaked refcounts, then count again */
		struct pm_image_check quiet = { 0 };
		r = check_once(img, true, &quiet);
		if (r == 0 && (r = writeback_all(img)) == 0) {
			uint64_t fixed = quiet.leaks_fixed;
			void (*rep)(void *, const char *) = res->report;
			res->report = NULL;
			res->corruptions = res->leaks = res->clusters = res->allocated = 0;
			r = check_once(img, false, res);
			res->report = rep;
			res->leaks_fixed = fixed;
		}
	}
	pthread_mutex_unlock(&q->wlock);
	return r;
}

/* ---- create: a v3 image, laid out as qemu-img does (header, refcount table, refcount block, L1) ---- */

int pm_qcow2_create(const char *path, const struct pm_image_create_opts *o, struct pm_image_diag *diag)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 65536, size = o->size;
	unsigned bits = 0;
	const char *bfmt = o->backing_fmt;
	char detected[16] = "";
	int r;

	while ((1ull << bits) < cs)
		bits++;
	if ((1ull << bits) != cs || bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS) {
		snprintf(diag->error, sizeof(diag->error), "cluster size %llu: a power of two from 512 to 2 MiB",
			 (unsigned long long)cs);
		return -EINVAL;
	}
	if (o->backing) {
		/* the backing file, as it will be found: relative to the new image's folder */
		_cleanup_free_ char *bpath = NULL;
		const char *slash = strrchr(path, '/');
		if (o->backing[0] != '/' && slash) {
			if (asprintf(&bpath, "%.*s/%s", (int)(slash - path), path, o->backing) < 0)
				return -ENOMEM;
		} else if (!(bpath = strdup(o->backing))) {
			return -ENOMEM;
		}
		struct pm_image *b = NULL;
		struct pm_image_diag bd;
		r = pm_image_open(&b, bpath, bfmt, &bd);
		if (r < 0) {
			snprintf(diag->error, sizeof(diag->error), "backing file: %.400s", bd.error[0] ? bd.error : strerror(-r));
			return r;
		}
		if (!size)
			size = pm_image_size(b);
		if (!bfmt) {
			snprintf(detected, sizeof(detected), "%s", pm_image_format(b));
			bfmt = detected;
		}
		pm_image_close(b);
		if (strlen(o->backing) > QCOW2_MAX_BACKING_NAME) {
			snprintf(diag->error, sizeof(diag->error), "backing file name too long");
			return -ENAMETOOLONG;
		}
	}
	if (size > (1ull << 62)) {
		snprintf(diag->error, sizeof(diag->error), "virtual size too large");
		return -EFBIG;
	}
	size = (size + 511) & ~511ull;
	uint64_t span = 1ull << (bits + bits - 3);
	uint64_t l1_size = (size + span - 1) / span;
	uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
	uint64_t meta = 3 + (l1_clusters ? l1_clusters : 1);
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES || meta > cs * 8 / 16) {
		snprintf(diag->error, sizeof(diag->error), "virtual size too large for %llu-byte clusters",
			 (unsigned long long)cs);
		return -EFBIG;
	}
	_cleanup_free_ uint8_t *img = calloc(meta, cs);
	if (!img)
		return -ENOMEM;
	uint8_t *h = img;
	put_be32(h, QCOW2_MAGIC);
	put_be32(h + 4, 3);
	put_be32(h + 20, bits);
	put_be64(h + 24, size);
	put_be32(h + HDR_L1_SIZE, (uint32_t)l1_size);
	put_be64(h + HDR_L1_OFFSET, 3 * cs);
	put_be64(h + HDR_REFTABLE_OFFSET, cs);
	put_be32(h + HDR_REFTABLE_CLUSTERS, 1);
	put_be32(h + HDR_REFCOUNT_ORDER, 4);
	put_be32(h + 100, 104);
	uint64_t pos = 104;
	if (bfmt) {
		size_t n = strlen(bfmt);
		put_be32(h + pos, EXT_BACKING_FORMAT);
		put_be32(h + pos + 4, (uint32_t)n);
		memcpy(h + pos + 8, bfmt, n);
		pos += 8 + ((n + 7) & ~7ull);
	}
	pos += 8; /* the end of the extensions */
	if (o->backing) {
		size_t n = strlen(o->backing);
		if (pos + n > cs) {
			snprintf(diag->error, sizeof(diag->error), "backing file name does not fit in the first cluster");
			return -ENAMETOOLONG;
		}
		put_be64(h + 8, pos);
		put_be32(h + 16, (uint32_t)n);
		memcpy(h + pos, o->backing, n);
	}
	put_be64(img + cs, 2 * cs); /* the refcount table's one block */
	for (uint64_t c = 0; c < meta; c++)
		put_be16(img + 2 * cs + c * 2, 1);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		snprintf(diag->error, sizeof(diag->error), "%s: %s", path, strerror(errno));
		return r;
	}
	if ((r = pm_pwrite_all(fd, img, meta * cs, 0)) < 0 || (fsync(fd) < 0 && (r = -errno))) {
		snprintf(diag->error, sizeof(diag->error), "%s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}
