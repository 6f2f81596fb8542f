/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VHDX log (MS-VHDX 2.3): a circular buffer of 4 KiB sectors holding entries (a header, data and
 * zero descriptors, data sectors), each with a CRC-32C over the whole entry, the header's LogGuid and
 * a sequence number. The active sequence runs from the Tail of the entry with the highest sequence
 * number (the head) to the head, every entry valid and numbered one more than the one before.
 *
 * Read: the active sequence is replayed in memory (the sectors it writes kept in a memfd, an index of
 * file ranges over it), so a read-only look changes nothing in the file. Read-write: the same
 * replayed in the file, flushed, then LogGuid zero in both headers. A LogGuid whose log holds entries
 * but no valid sequence, or whose sequence cannot be applied, is refused.
 *
 * Written: every metadata change is one sector, logged as one entry at the log's start under a new
 * LogGuid, applied in place, then the LogGuid cleared (qemu's order, block/vhdx-log.c). */
#include "vhdx.h"
#include "../util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define LOG_HDR 64u
#define LOG_DESC 32u
#define MAX_LOG (256 * VHDX_MiB)
#define PROTECTED (192 * VHDX_KiB) /* file identifier and headers: never written through the log */

struct range {
	uint64_t off, len; /* bytes of the file ... */
	uint64_t mem;      /* ... read from here in the memfd (a zero range: a hole of it) */
};

struct vhdx_log {
	int fd;
	uint64_t mem_size;
	struct range *r; /* sorted by off, disjoint */
	size_t n, cap;
	uint64_t last_file_offset;
};

struct entry {
	uint64_t pos, len, tail, seq, flushed, last;
	uint32_t ndesc;
};

void vhdx_log_free(struct vhdx_log *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->r);
	free(l);
}

/* The sector i of an entry at pos (circular). */
static const uint8_t *sect(const uint8_t *log, uint64_t log_len, uint64_t pos, uint64_t i)
{
	return log + (pos + i * VHDX_LOG_SECTOR) % log_len;
}

/* Is there a valid entry of this LogGuid at pos? (e filled) */
static bool entry_at(const uint8_t *log, uint64_t log_len, uint64_t pos, const uint8_t *guid, struct entry *e)
{
	const uint8_t *h = log + pos;

	if (memcmp(h, "loge", 4) || memcmp(h + 32, guid, 16))
		return false;
	e->pos = pos;
	e->len = get_le32(h + 8);
	e->tail = get_le32(h + 12);
	e->seq = get_le64(h + 16);
	e->ndesc = get_le32(h + 24);
	e->flushed = get_le64(h + 48);
	e->last = get_le64(h + 56);
	if (!e->len || e->len % VHDX_LOG_SECTOR || e->len > log_len || e->tail % VHDX_LOG_SECTOR || e->tail >= log_len ||
	    !e->seq)
		return false;
	uint64_t nsect = e->len / VHDX_LOG_SECTOR;
	uint64_t dsect = (LOG_HDR + (uint64_t)e->ndesc * LOG_DESC + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
	if (dsect > nsect)
		return false;
	/* the checksum: CRC-32C of the whole entry, its own field as zero */
	uint8_t first[VHDX_LOG_SECTOR];
	memcpy(first, h, sizeof(first));
	put_le32(first + 4, 0);
	uint32_t crc = pm_crc32c(0, first, sizeof(first));
	for (uint64_t i = 1; i < nsect; i++)
		crc = pm_crc32c(crc, sect(log, log_len, pos, i), VHDX_LOG_SECTOR);
	if (crc != get_le32(h + 4))
		return false;
	uint64_t ndata = 0;
	for (uint32_t i = 0; i < e->ndesc; i++) {
		uint64_t at = LOG_HDR + (uint64_t)i * LOG_DESC;
		const uint8_t *d = sect(log, log_len, pos, at / VHDX_LOG_SECTOR) + at % VHDX_LOG_SECTOR;
		if (get_le64(d + 24) != e->seq || get_le64(d + 16) % VHDX_LOG_SECTOR)
			return false;
		if (!memcmp(d, "zero", 4)) {
			uint64_t zl = get_le64(d + 8);
			if (!zl || zl % VHDX_LOG_SECTOR)
				return false;
		} else if (!memcmp(d, "desc", 4)) {
			if (dsect + ndata >= nsect)
				return false;
			const uint8_t *s = sect(log, log_len, pos, dsect + ndata);
			if (memcmp(s, "data", 4) || get_le32(s + 4) != (uint32_t)(e->seq >> 32) ||
			    get_le32(s + 4092) != (uint32_t)e->seq)
				return false;
			ndata++;
		} else {
			return false;
		}
	}
	return dsect + ndata == nsect;
}

/* [off, off+len) of the file now reads from mem: older ranges it covers cut away. */
static int add_range(struct vhdx_log *l, uint64_t off, uint64_t len, uint64_t mem)
{
	size_t need = l->n * 2 + 2; /* every old range may split in two (only one can) */
	if (need > l->cap) {
		struct range *nr = realloc(l->r, need * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		l->r = nr;
		l->cap = need;
	}
	size_t w = 0, n = l->n;
	struct range *tmp = malloc((n * 2 + 1) * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct range a = l->r[i];
		uint64_t end = a.off + a.len;
		if (end <= off || a.off >= off + len) {
			tmp[w++] = a;
			continue;
		}
		if (a.off < off)
			tmp[w++] = (struct range){ a.off, off - a.off, a.mem };
		if (end > off + len)
			tmp[w++] = (struct range){ off + len, end - (off + len), a.mem + (off + len - a.off) };
	}
	/* insert the new one in order */
	size_t at = 0;
	while (at < w && tmp[at].off < off)
		at++;
	memmove(tmp + at + 1, tmp + at, (w - at) * sizeof(*tmp));
	tmp[at] = (struct range){ off, len, mem };
	memcpy(l->r, tmp, (w + 1) * sizeof(*tmp));
	l->n = w + 1;
	free(tmp);
	return 0;
}

/* Apply the entry's descriptors to the in-memory replay; -EINVAL (diag set) for a target the log may
 * not write. */
static int replay_entry(struct pm_image *img, struct vhdx *v, struct vhdx_log *l, const uint8_t *log,
			const struct entry *e)
{
	uint64_t dsect = (LOG_HDR + (uint64_t)e->ndesc * LOG_DESC + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR, ndata = 0;
	int r;

	for (uint32_t i = 0; i < e->ndesc; i++) {
		uint64_t at = LOG_HDR + (uint64_t)i * LOG_DESC;
		const uint8_t *d = sect(log, v->log_len, e->pos, at / VHDX_LOG_SECTOR) + at % VHDX_LOG_SECTOR;
		bool zero = !memcmp(d, "zero", 4);
		uint64_t off = get_le64(d + 16), len = zero ? get_le64(d + 8) : VHDX_LOG_SECTOR;
		if (off < PROTECTED || len > UINT64_MAX - off || off + len > e->last ||
		    (off < v->log_off + v->log_len && off + len > v->log_off))
			return pm_img_fail(img, -EINVAL,
					   "%s: the VHDX log cannot be replayed: entry %llu writes bytes %llu-%llu, outside "
					   "what a log may change (headers, the log itself, or past the file's last offset %llu)",
					   img->path, (unsigned long long)e->seq, (unsigned long long)off,
					   (unsigned long long)(off + len - 1), (unsigned long long)e->last);
		uint64_t mem = l->mem_size;
		if (zero) {
			l->mem_size += len;
			if (ftruncate(l->fd, (off_t)l->mem_size) < 0)
				return -errno;
		} else {
			uint8_t s[VHDX_LOG_SECTOR];
			memcpy(s, sect(log, v->log_len, e->pos, dsect + ndata++), sizeof(s));
			memcpy(s, d + 8, 8);        /* LeadingBytes */
			memcpy(s + 4092, d + 4, 4); /* TrailingBytes */
			if ((r = pm_pwrite_all(l->fd, s, sizeof(s), mem)) < 0)
				return r;
			l->mem_size += sizeof(s);
		}
		if ((r = add_range(l, off, len, mem)) < 0)
			return r;
	}
	return 0;
}

static int no_replay(struct pm_image *img, const char *why, ...) __attribute__((format(printf, 2, 3)));
static int no_replay(struct pm_image *img, const char *why, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, why);
	vsnprintf(msg, sizeof(msg), why, ap);
	va_end(ap);
	return pm_img_fail(img, -EINVAL,
			   "%s: the VHDX log needs replay but cannot be replayed: %s (the image is damaged; "
			   "partmap opens it neither read-write nor read-only)",
			   img->path, msg);
}

int vhdx_log_load(struct pm_image *img, struct vhdx *v)
{
	static const uint8_t zero_guid[16];
	const uint8_t *guid = v->hdr + 48;
	int r;

	v->log = NULL;
	if (!memcmp(guid, zero_guid, 16))
		return 0;
	if (v->log_len > MAX_LOG || v->log_len < VHDX_LOG_SECTOR || v->log_len % VHDX_LOG_SECTOR ||
	    v->log_off % VHDX_MiB || v->log_off > img->file_size || v->log_len > img->file_size - v->log_off)
		return no_replay(img, "its log region (offset %llu, %llu bytes) lies outside the file",
				 (unsigned long long)v->log_off, (unsigned long long)v->log_len);
	_cleanup_free_ uint8_t *log = malloc(v->log_len);
	uint64_t nsect = v->log_len / VHDX_LOG_SECTOR;
	_cleanup_free_ struct entry *ent = calloc(nsect, sizeof(*ent));
	if (!log || !ent)
		return -ENOMEM;
	if ((r = pm_img_pread(img->fd, img->file_size, v->log_off, log, v->log_len)) < 0)
		return r;
	/* every valid entry of this LogGuid; the head: the highest sequence number */
	bool seen = false;
	struct entry *head = NULL;
	for (uint64_t i = 0; i < nsect; i++) {
		const uint8_t *h = log + i * VHDX_LOG_SECTOR;
		if (!memcmp(h, "loge", 4) && !memcmp(h + 32, guid, 16))
			seen = true;
		if (!entry_at(log, v->log_len, i * VHDX_LOG_SECTOR, guid, &ent[i]))
			memset(&ent[i], 0, sizeof(ent[i])); /* len 0: no valid entry here */
		else if (!head || ent[i].seq > head->seq)
			head = &ent[i];
	}
	if (!head) {
		/* a LogGuid set but nothing written under it yet (a crash before the first entry): empty */
		if (!seen)
			return 0;
		return no_replay(img, "its log holds entries of its LogGuid, none of them valid (checksum, sizes or "
				      "sequence numbers wrong)");
	}
	/* the sequence: from the head's tail, each entry the next number, up to the head */
	uint64_t pos = head->tail, count = 0, first_seq = 0;
	for (;;) {
		struct entry *e = &ent[pos / VHDX_LOG_SECTOR];
		if (!e->len || (count && e->seq != first_seq + count) || e->seq > head->seq || count >= nsect)
			return no_replay(img, "the sequence of its head entry %llu is broken at log offset %llu",
					 (unsigned long long)head->seq, (unsigned long long)pos);
		if (!count)
			first_seq = e->seq;
		count++;
		if (e == head)
			break;
		pos = (pos + e->len) % v->log_len;
	}
	if (head->flushed > img->file_size)
		return no_replay(img, "the file is %llu bytes, shorter than the %llu its log says were made durable",
				 (unsigned long long)img->file_size, (unsigned long long)head->flushed);
	struct vhdx_log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = memfd_create("partmap-vhdx-log", MFD_CLOEXEC);
	l->last_file_offset = head->last;
	if (l->fd < 0) {
		r = -errno;
		vhdx_log_free(l);
		return r;
	}
	pos = head->tail;
	for (uint64_t i = 0; i < count; i++) {
		struct entry *e = &ent[pos / VHDX_LOG_SECTOR];
		if ((r = replay_entry(img, v, l, log, e)) < 0) {
			vhdx_log_free(l);
			return r;
		}
		pos = (pos + e->len) % v->log_len;
	}
	v->log = l;
	return 0;
}

void vhdx_log_patch(const struct vhdx_log *l, uint64_t off, void *buf, size_t len)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		const struct range *a = &l->r[i];
		if (a->off >= off + len)
			break;
		if (a->off + a->len <= off)
			continue;
		uint64_t s = a->off > off ? a->off : off, e = a->off + a->len < off + len ? a->off + a->len : off + len;
		/* a memfd read cannot fail but for memory; zeros then (a damaged read, not a crash) */
		uint8_t *p = (uint8_t *)buf + (s - off);
		ssize_t got = pread(l->fd, p, (size_t)(e - s), (off_t)(a->mem + (s - a->off)));
		if (got < (ssize_t)(e - s))
			memset(p + (got > 0 ? got : 0), 0, (size_t)(e - s) - (size_t)(got > 0 ? got : 0));
	}
}

bool vhdx_log_touches(const struct vhdx_log *l, uint64_t off, uint64_t len)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (l->r[i].off < off + len && l->r[i].off + l->r[i].len > off)
			return true;
	return false;
}

int vhdx_read(struct pm_image *img, uint64_t off, void *buf, size_t len)
{
	struct vhdx *v = img->priv;
	uint64_t have = len;
	int r = 0;

	/* the replayed file may be longer (its LastFileOffset): zeros past the end of the file as it is */
	if (v->log && off + len > img->file_size && off + len <= v->log->last_file_offset) {
		have = off < img->file_size ? img->file_size - off : 0;
		memset((uint8_t *)buf + have, 0, len - have);
	}
	if (have)
		r = pm_img_pread(img->fd, img->file_size, off, buf, (size_t)have);
	if (r == 0)
		vhdx_log_patch(v->log, off, buf, len);
	return r;
}

void vhdx_log_redirect(const struct vhdx_log *l, struct pm_img_piece *pc)
{
	for (size_t i = 0; l && i < l->n; i++) {
		const struct range *a = &l->r[i];
		if (a->off + a->len <= pc->host)
			continue;
		if (a->off > pc->host) {
			if (a->off - pc->host < pc->len)
				pc->len = a->off - pc->host; /* up to where the log's bytes begin */
			return;
		}
		uint64_t n = a->off + a->len - pc->host;
		if (n < pc->len)
			pc->len = n;
		pc->fd = l->fd;
		pc->fsize = l->mem_size;
		pc->host = a->mem + (pc->host - a->off);
		return;
	}
}

/* ---- writing ---- */

static int sync_file(struct pm_image *img)
{
	return fdatasync(img->fd) < 0 ? -errno : 0;
}

static int new_guid(uint8_t g[16])
{
	if (getrandom(g, 16, 0) != 16)
		return -EIO;
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40); /* version 4 (the mixed-endian third field's high byte) */
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	return 0;
}

/* The header as v->hdr holds it, with the next sequence number, over the non-current copy, which is
 * then the current one (the valid copy with the higher number is); not flushed. */
static int write_header(struct pm_image *img, struct vhdx *v)
{
	uint8_t *h = v->hdr;
	int slot = 1 - v->cur, r;

	put_le64(h + 8, get_le64(h + 8) + 1);
	put_le32(h + 4, 0);
	put_le32(h + 4, pm_crc32c(0, h, VHDX_HEADER_SIZE));
	if ((r = pm_pwrite_all(img->fd, h, VHDX_HEADER_SIZE, (uint64_t)(slot + 1) * 64 * VHDX_KiB)) < 0)
		return r;
	v->cur = slot;
	return 0;
}

int vhdx_update_headers(struct pm_image *img, struct vhdx *v, bool new_data, const uint8_t *log_guid)
{
	static const uint8_t zero_guid[16];
	uint8_t *h = v->hdr;
	int r;

	if ((r = new_guid(h + 16)) < 0 || (new_data && (r = new_guid(h + 32)) < 0))
		return r;
	memcpy(h + 48, log_guid ? log_guid : zero_guid, 16);
	/* the non-current copy first, flushed: then it is current and the other is rewritten */
	for (int i = 0; i < 2; i++)
		if ((r = write_header(img, v)) < 0 || (r = sync_file(img)) < 0)
			return r;
	return 0;
}

int vhdx_log_replay(struct pm_image *img)
{
	struct vhdx *v = img->priv;
	struct vhdx_log *l = v->log;
	uint8_t s[VHDX_LOG_SECTOR];
	int r;

	if (!l)
		return 0;
	if ((r = pm_img_extend(img->fd, &img->file_size, l->last_file_offset)) < 0)
		goto fail;
	for (size_t i = 0; i < l->n; i++) {
		const struct range *a = &l->r[i];
		if ((r = pm_img_extend(img->fd, &img->file_size, a->off + a->len)) < 0)
			goto fail;
		for (uint64_t k = 0; k < a->len; k += sizeof(s)) {
			size_t n = a->len - k < sizeof(s) ? (size_t)(a->len - k) : sizeof(s);
			if (pread(l->fd, s, n, (off_t)(a->mem + k)) != (ssize_t)n) {
				r = -EIO;
				goto fail;
			}
			if ((r = pm_pwrite_all(img->fd, s, n, a->off + k)) < 0)
				goto fail;
			pm_img_table_written(img, 0, a->off + k, s, n);
		}
	}
	/* the replayed sectors durable, then the log emptied (LogGuid zero) in both headers */
	if ((r = sync_file(img)) < 0 || (r = vhdx_update_headers(img, v, false, NULL)) < 0)
		goto fail;
	v->log = NULL;
	vhdx_log_free(l);
	return 0;
fail:
	return pm_img_fail(img, r, "%s: replaying the VHDX log in the file failed: %s", img->path, strerror(-r));
}

/* One entry, a sequence of its own at the log's start, in four flushes (qemu takes seven):
 *   1. the entry's data sector, and the header naming the entry's new LogGuid (one copy: the header
 *      with the higher sequence number is the current one), flushed together with the payload data
 *      written before the call: the data is durable before any entry makes it reachable. A header
 *      whose LogGuid no entry in the log carries names an empty log;
 *   2. the entry's header sector, flushed: a torn entry lacks its header (the sector before it
 *      carries an older LogGuid) rather than being a damaged one;
 *   3. the sector in place, flushed;
 *   4. LogGuid 0 in one header, flushed. The other copy still names the entry, which is applied:
 *      should it ever be current again, replaying the entry changes nothing. The next flush (or the
 *      next entry) writes it over (vhdx_headers_settle), so that at rest both copies name no log.
 * A kill before 2 completes leaves an empty log and the old table; after it, a log whose replay
 * gives the new table. */
int vhdx_log_sector(struct pm_image *img, struct vhdx *v, uint64_t off, const uint8_t *sector)
{
	uint8_t e[2 * VHDX_LOG_SECTOR] = { 0 }, guid[16];
	uint8_t *h = e, *d = e + LOG_HDR, *s = e + VHDX_LOG_SECTOR;
	uint64_t seq = ++v->log_seq;
	int r;

	if (v->log || v->log_len < sizeof(e))
		return -EROFS;
	if ((r = new_guid(guid)) < 0)
		return r;
	memcpy(h, "loge", 4);
	put_le32(h + 8, sizeof(e));
	put_le32(h + 12, 0); /* its own tail: a sequence of one entry at the log's start */
	put_le64(h + 16, seq);
	put_le32(h + 24, 1);
	memcpy(h + 32, guid, 16);
	put_le64(h + 48, img->file_size);
	put_le64(h + 56, img->file_size);
	memcpy(d, "desc", 4);
	memcpy(d + 4, sector + 4092, 4);
	memcpy(d + 8, sector, 8);
	put_le64(d + 16, off);
	put_le64(d + 24, seq);
	memcpy(s, "data", 4);
	put_le32(s + 4, (uint32_t)(seq >> 32));
	memcpy(s + 8, sector + 8, 4084);
	put_le32(s + 4092, (uint32_t)seq);
	put_le32(h + 4, pm_crc32c(0, e, sizeof(e)));
	memcpy(v->hdr + 48, guid, 16);
	if ((r = pm_pwrite_all(img->fd, s, VHDX_LOG_SECTOR, v->log_off + VHDX_LOG_SECTOR)) < 0 ||
	    (r = write_header(img, v)) < 0 || (r = sync_file(img)) < 0 ||
	    (r = pm_pwrite_all(img->fd, h, VHDX_LOG_SECTOR, v->log_off)) < 0 || (r = sync_file(img)) < 0)
		return r;
	if ((r = pm_pwrite_all(img->fd, sector, VHDX_LOG_SECTOR, off)) < 0)
		return r;
	pm_img_table_written(img, 0, off, sector, VHDX_LOG_SECTOR);
	if ((r = sync_file(img)) < 0)
		return r;
	memset(v->hdr + 48, 0, 16);
	if ((r = write_header(img, v)) < 0 || (r = sync_file(img)) < 0)
		return r;
	v->hdr_stale = true;
	return 0;
}

int vhdx_headers_settle(struct pm_image *img, struct vhdx *v)
{
	int r;

	if (!v->hdr_stale)
		return 0;
	if ((r = write_header(img, v)) < 0)
		return r;
	v->hdr_stale = false;
	return 0;
}
