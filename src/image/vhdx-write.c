/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writing VHDX dynamic and differencing disks (top layer only).
 *
 * The first write of a session renews FileWriteGuid and DataWriteGuid in both headers (MS-VHDX
 * 2.2.2.1), before anything else changes. A write into a FULLY_PRESENT block goes in place. Any other
 * block is made FULLY_PRESENT: a new payload block at the file's end (1 MiB aligned; a
 * PARTIALLY_PRESENT block keeps its own), filled with what the disk reads there now (zeros, or the
 * parent's sectors of a differencing disk: so unwritten sectors keep the parent's bytes) and the new
 * data, flushed; then its block table entry changed through the log (vhdx-log.c: entry, flush, in
 * place, flush, LogGuid cleared). A kill at any moment leaves at worst a payload block no entry
 * names. The sector bitmaps are never written: a block this writer touches is whole. */
#include "vhdx.h"
#include "../util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The block table entry idx set to e, through the log. */
static int bat_set(struct pm_image *img, struct vhdx *v, uint64_t idx, uint64_t e)
{
	uint64_t at = v->bat_off + idx * 8, sec = at & ~(uint64_t)(VHDX_LOG_SECTOR - 1);
	uint8_t s[VHDX_LOG_SECTOR];
	int r;

	/* the BAT is 1 MiB aligned, its length a multiple of 1 MiB: the sector lies inside it */
	if ((r = pm_img_table(img, 0, img->fd, img->file_size, v->bat_off, v->bat_len, sec - v->bat_off, s, sizeof(s))) < 0)
		return r;
	put_le64(s + (at - sec), e);
	return vhdx_log_sector(img, v, sec, s);
}

/* Write n bytes (p) at in of block blk, which is not FULLY_PRESENT (entry e, table index idx). */
static int fill_block(struct pm_image *img, struct vhdx *v, uint64_t blk, uint64_t idx, uint64_t e, uint64_t in,
		      const uint8_t *p, size_t n)
{
	unsigned state = e & 7;
	bool partial = state == PB_PARTIALLY_PRESENT;
	/* what the block reads now when it is not ours: zeros, or the parent */
	bool reads_zero = !v->has_parent || state == PB_ZERO;
	uint64_t foff = e & ~(VHDX_MiB - 1), base = blk * v->block_size;
	_cleanup_free_ uint8_t *tmp = NULL;
	int r;

	if (partial && !v->has_parent)
		return -EIO;
	if (!partial) {
		/* a new block at the file's end: the file grown over it (a hole: zeros) */
		foff = (img->file_size + VHDX_MiB - 1) & ~(VHDX_MiB - 1);
		if (foff >> 20 >= 1ull << 44)
			return -ENOSPC;
		if ((r = pm_img_extend(img->fd, &img->file_size, foff + v->block_size)) < 0)
			return r;
	} else if (foff + v->block_size > img->file_size) {
		return -EIO;
	}
	for (uint64_t at = 0; at < v->block_size; at += VHDX_MiB) {
		uint64_t len = v->block_size - at < VHDX_MiB ? v->block_size - at : VHDX_MiB;
		uint64_t w0 = in > at ? in : at, w1 = in + n < at + len ? in + n : at + len;
		if (w0 <= at && w1 >= at + len) {
			/* all of it new data */
			if ((r = pm_pwrite_all(img->fd, p + (at - in), (size_t)len, foff + at)) < 0)
				return r;
			continue;
		}
		if (reads_zero && !partial) {
			/* the rest reads as zeros, and the new block is zeros: the new data alone */
			if (w0 < w1 && (r = pm_pwrite_all(img->fd, p + (w0 - in), (size_t)(w1 - w0), foff + w0)) < 0)
				return r;
			continue;
		}
		/* the parent's bytes (or this block's own sectors) as the disk reads them now, then the new data */
		if (!tmp && !(tmp = malloc(VHDX_MiB)))
			return -ENOMEM;
		if ((r = pm_img_read_current(img, base + at, tmp, (size_t)len)) < 0)
			return r;
		if (w0 < w1)
			memcpy(tmp + (w0 - at), p + (w0 - in), (size_t)(w1 - w0));
		if ((r = pm_pwrite_all(img->fd, tmp, (size_t)len, foff + at)) < 0)
			return r;
	}
	/* the data is flushed by the log's first step before the entry names it */
	return bat_set(img, v, idx, foff | PB_FULLY_PRESENT);
}

/* Before anything else changes: both headers with a new FileWriteGuid and DataWriteGuid. */
static int session_start(struct pm_image *img, struct vhdx *v)
{
	int r;

	if (v->log)
		return -EROFS; /* never: the log is replayed when the image is opened for writing */
	if (v->session)
		return 0;
	if ((r = vhdx_update_headers(img, v, true, NULL)) < 0)
		return r;
	v->session = true;
	return 0;
}

static int write_locked(struct pm_image *img, struct vhdx *v, uint64_t off, const uint8_t *p, size_t len)
{
	int r = session_start(img, v);

	if (r < 0)
		return r;
	while (len) {
		uint64_t blk = off / v->block_size, in = off % v->block_size, e;
		size_t n = v->block_size - in < len ? (size_t)(v->block_size - in) : len;
		uint64_t idx = blk + blk / v->chunk_ratio;
		if ((r = vhdx_bat_entry(img, idx, &e)) < 0)
			return r;
		/* a block of the file that lies on a region (headers, log, table, metadata): a damaged
		 * image (a new block goes past them all, at the file's end) */
		if (((e & 7) == PB_FULLY_PRESENT || (e & 7) == PB_PARTIALLY_PRESENT) &&
		    pm_ranges_hit(&img->tables, e & ~(VHDX_MiB - 1), v->block_size))
			return -EUCLEAN;
		if ((e & 7) == PB_FULLY_PRESENT) {
			uint64_t foff = e & ~(VHDX_MiB - 1);
			if (foff + in + n > img->file_size)
				return -EIO;
			r = pm_pwrite_all(img->fd, p, n, foff + in);
		} else if ((e & 7) == PB_UNDEFINED || (e & 7) == PB_ZERO || (e & 7) == PB_UNMAPPED ||
			   (e & 7) == PB_NOT_PRESENT || (e & 7) == PB_PARTIALLY_PRESENT) {
			r = fill_block(img, v, blk, idx, e, in, p, n);
		} else {
			r = -EIO;
		}
		if (r < 0)
			return r;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

int vhdx_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	struct vhdx *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = write_locked(img, v, off, buf, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vhdx_flush(struct pm_image *img)
{
	struct vhdx *v = img->priv;

	/* every table change is made durable when it is made: only the data to sync, and the older
	 * header copy, should it still name the last log entry, made like the current one */
	pthread_mutex_lock(&v->lock);
	int r = vhdx_headers_settle(img, v);
	pthread_mutex_unlock(&v->lock);
	if (r == 0 && fdatasync(img->fd) < 0)
		r = -errno;
	return r;
}

int vhdx_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	struct vhdx *v = img->priv;

	/* the block's host bytes punched (they read as zeros); the block table stays as it is */
	pthread_mutex_lock(&v->lock);
	int r = session_start(img, v);
	if (r == 0)
		r = pm_img_punch_mapped(img, off, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}
