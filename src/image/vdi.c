/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VirtualBox VDI, static and dynamic: a header, a block map of u32 (little-endian) and the blocks.
 * Map entries 0xffffffff (never written) and 0xfffffffe (zeroed) read as zeros. Differencing VDI
 * (a parent by UUID) is refused: nothing names the parent's file. */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_TYPE_DYNAMIC 1
#define VDI_TYPE_STATIC 2
#define VDI_TYPE_DIFF 4
#define VDI_UNALLOCATED 0xffffffffu
#define VDI_ZERO 0xfffffffeu
#define VDI_MAX_BLOCK (64u << 20)
#define VDI_ALLOCATED_AT 0x184   /* the header's count of allocated blocks */
#define VDI_JOINED_WRITE 65536   /* the count and a map entry this close: one write */

struct vdi {
	uint64_t map_off, data_off;
	uint32_t block_size, block_extra, nblocks;
	uint32_t allocated;        /* the header's count: the next block's index */
	pthread_mutex_t lock;      /* of map() and write() */
	bool lock_init;
};

static int vdi_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)tail, (void)fsize;
	return n >= 0x48 && get_le32(head + 0x40) == VDI_SIGNATURE;
}

/* Before writing: no map entry may name a block at or past the header's count, the index the next
 * block takes (the map read a window at a time). */
static int vdi_check_count(struct pm_image *img, struct vdi *v)
{
	uint8_t b[4096];

	for (uint64_t i = 0; i < v->nblocks; i += sizeof(b) / 4) {
		size_t n = v->nblocks - i < sizeof(b) / 4 ? (size_t)(v->nblocks - i) : sizeof(b) / 4;
		int r = pm_img_pread(img->fd, img->file_size, v->map_off + i * 4, b, n * 4);
		if (r < 0)
			return r;
		for (size_t k = 0; k < n; k++) {
			uint32_t idx = get_le32(b + 4 * k);
			if (idx < VDI_ZERO && idx >= v->allocated) {
				img->ro_reason = "its header counts fewer blocks than its block map names (qemu-img check "
						 "reports it)";
				return 0;
			}
		}
	}
	return 0;
}

static int vdi_open(struct pm_image *img)
{
	uint8_t h[0x190];
	struct vdi *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	img->priv = v;
	if (pm_img_pread(img->fd, img->file_size, 0, h, sizeof(h)) < 0)
		return pm_img_fail(img, -EINVAL, "%s: VDI header cut short", img->path);
	uint32_t version = get_le32(h + 0x44);
	uint32_t type = get_le32(h + 0x4c);
	if (version >> 16 != 1)
		return pm_img_fail(img, -ENOTSUP, "%s: VDI version %u.%u is not supported (1.x is)", img->path,
				   version >> 16, version & 0xffff);
	if (type == VDI_TYPE_DIFF)
		return pm_img_fail(img, -ENOTSUP, "%s: differencing VDI images are not supported", img->path);
	if (type != VDI_TYPE_DYNAMIC && type != VDI_TYPE_STATIC)
		return pm_img_fail(img, -ENOTSUP, "%s: VDI image type %u is not supported", img->path, type);
	v->map_off = get_le32(h + 0x154);
	v->data_off = get_le32(h + 0x158);
	uint32_t sector_size = get_le32(h + 0x168);
	uint64_t size = get_le64(h + 0x170);
	v->block_size = get_le32(h + 0x178);
	v->block_extra = get_le32(h + 0x17c);
	v->nblocks = get_le32(h + 0x180);
	if (sector_size != 512)
		return pm_img_fail(img, -ENOTSUP, "%s: VDI sector size %u is not supported", img->path, sector_size);
	if (v->block_size < 512 || v->block_size > VDI_MAX_BLOCK || (v->block_size & (v->block_size - 1)) ||
	    v->block_extra > VDI_MAX_BLOCK)
		return pm_img_fail(img, -EINVAL, "%s: VDI block size %u out of range", img->path, v->block_size);
	if (size > (uint64_t)v->nblocks * v->block_size)
		return pm_img_fail(img, -EINVAL, "%s: VDI disk size larger than its %u blocks", img->path, v->nblocks);
	if (v->map_off > img->file_size || (uint64_t)v->nblocks * 4 > img->file_size - v->map_off)
		return pm_img_fail(img, -EINVAL, "%s: VDI block map lies outside the file", img->path);
	img->size = size;
	img->cluster_size = v->block_size;
	img->subformat = type == VDI_TYPE_STATIC ? "static" : "dynamic";
	v->allocated = get_le32(h + VDI_ALLOCATED_AT);
	/* the header and the block map; the blocks lie from data_off on, so past both, or the image is
	 * damaged: read, but not written (a block would be written over them) */
	uint64_t hlen = 0x40 + (uint64_t)get_le32(h + 0x48); /* the pre-header and the header's own length */
	int r;
	if ((r = pm_ranges_add(&img->tables, 0, hlen > sizeof(h) ? hlen : sizeof(h))) < 0 ||
	    (r = pm_ranges_add(&img->tables, v->map_off, (uint64_t)v->nblocks * 4)) < 0 ||
	    (r = pm_ranges_seal(&img->tables)) < 0 || pm_ranges_hit(&img->tables, v->data_off, UINT64_MAX - v->data_off)) {
		if (r < 0 && r != -EUCLEAN)
			return r;
		img->ro_reason = "its VDI data area starts inside its header or block map";
	}
	if (pm_img_lock_init(&v->lock) < 0)
		return -ENOMEM;
	v->lock_init = true;
	return img->want_write ? vdi_check_count(img, v) : 0;
}

static int vdi_map_locked(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vdi *v = img->priv;
	uint64_t blk = off / v->block_size, in = off % v->block_size;
	uint8_t e[4];
	int r = pm_img_table(img, 0, img->fd, img->file_size, v->map_off, (uint64_t)v->nblocks * 4, blk * 4, e, 4);

	if (r < 0)
		return r;
	pc->len = v->block_size - in < max ? v->block_size - in : max;
	uint32_t idx = get_le32(e);
	if (idx == VDI_UNALLOCATED || idx == VDI_ZERO) {
		pc->kind = PM_IMG_ZERO;
		return 0;
	}
	if (idx >= v->nblocks)
		return -EIO;
	pc->kind = PM_IMG_DATA;
	pc->fd = img->fd;
	pc->fsize = img->file_size;
	pc->host = v->data_off + (uint64_t)idx * ((uint64_t)v->block_size + v->block_extra) + v->block_extra + in;
	return 0;
}

static int vdi_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vdi *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vdi_map_locked(img, off, max, pc);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* The header's count and block blk's map entry, written so that the count is never behind the map
 * (a block the map names is never handed out again, by partmap or qemu): in one write when they lie
 * close together, else the count first and synced. */
static int vdi_link(struct pm_image *img, struct vdi *v, uint64_t blk, uint32_t idx)
{
	uint64_t ent = v->map_off + blk * 4;
	uint8_t e[4];
	int r;

	put_le32(e, idx);
	if (ent > VDI_ALLOCATED_AT && ent + 4 - VDI_ALLOCATED_AT <= VDI_JOINED_WRITE) {
		size_t n = (size_t)(ent + 4 - VDI_ALLOCATED_AT);
		_cleanup_free_ uint8_t *b = malloc(n);
		if (!b)
			return -ENOMEM;
		if ((r = pm_img_pread(img->fd, img->file_size, VDI_ALLOCATED_AT, b, n - 4)) < 0)
			return r;
		put_le32(b, v->allocated + 1);
		memcpy(b + n - 4, e, 4);
		r = pm_pwrite_all(img->fd, b, n, VDI_ALLOCATED_AT);
	} else {
		uint8_t c[4];
		put_le32(c, v->allocated + 1);
		if ((r = pm_pwrite_all(img->fd, c, 4, VDI_ALLOCATED_AT)) < 0)
			return r;
		if (fdatasync(img->fd) < 0)
			return -errno;
		r = pm_pwrite_all(img->fd, e, 4, ent);
	}
	if (r < 0)
		return r;
	v->allocated++;
	pm_img_table_written(img, 0, ent, e, 4);
	return 0;
}

/* A new block for blk: the next index after the allocated ones (qemu's rule; the blocks lie in that
 * order), zeroed where the file already reaches (space a crash left unnamed), the data written and
 * synced before the map names it. */
static int vdi_alloc(struct pm_image *img, struct vdi *v, uint64_t blk, uint64_t in, const uint8_t *p, size_t n)
{
	uint64_t unit = (uint64_t)v->block_size + v->block_extra;
	uint32_t idx = v->allocated;
	int r;

	if (idx >= v->nblocks)
		return -EIO; /* the count says every block is taken: a damaged header */
	uint64_t start = v->data_off + idx * unit, end = start + unit;
	if (start < img->file_size && (r = pm_img_zero(img->fd, start, (end < img->file_size ? end : img->file_size) - start)) < 0)
		return r;
	if ((r = pm_pwrite_all(img->fd, p, n, start + v->block_extra + in)) < 0)
		return r;
	if ((r = pm_img_extend(img->fd, &img->file_size, end)) < 0)
		return r;
	if (fdatasync(img->fd) < 0)
		return -errno;
	return vdi_link(img, v, blk, idx);
}

static int vdi_write_locked(struct pm_image *img, struct vdi *v, uint64_t off, const uint8_t *p, size_t len)
{
	int r;

	while (len) {
		uint64_t blk = off / v->block_size, in = off % v->block_size;
		size_t n = v->block_size - in < len ? (size_t)(v->block_size - in) : len;
		uint8_t e[4];
		if ((r = pm_img_table(img, 0, img->fd, img->file_size, v->map_off, (uint64_t)v->nblocks * 4, blk * 4, e, 4)) < 0)
			return r;
		uint32_t idx = get_le32(e);
		if (idx == VDI_UNALLOCATED || idx == VDI_ZERO) {
			r = vdi_alloc(img, v, blk, in, p, n);
		} else if (idx >= v->nblocks) {
			r = -EIO;
		} else {
			uint64_t host = v->data_off + (uint64_t)idx * ((uint64_t)v->block_size + v->block_extra) + v->block_extra;
			r = pm_pwrite_all(img->fd, p, n, host + in);
			if (r == 0 && host + in + n > img->file_size)
				img->file_size = host + in + n;
		}
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vdi_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	struct vdi *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vdi_write_locked(img, v, off, buf, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static int vdi_flush(struct pm_image *img)
{
	/* the map and the count are written when a block is added: only the file to sync */
	return fdatasync(img->fd) < 0 ? -errno : 0;
}

static int vdi_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	struct vdi *v = img->priv;

	/* the map keeps naming the block (qemu hands out blocks by the count alone, so a freed index
	 * could never be reused safely); its space is punched out and reads as zeros */
	pthread_mutex_lock(&v->lock);
	int r = pm_img_punch_mapped(img, off, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static void vdi_close(struct pm_image *img)
{
	struct vdi *v = img->priv;

	if (v->lock_init)
		pthread_mutex_destroy(&v->lock);
	free(v);
	img->priv = NULL;
}

const struct pm_image_fmt pm_fmt_vdi = {
	.name = "vdi",
	.probe = vdi_probe,
	.open = vdi_open,
	.map = vdi_map,
	.close = vdi_close,
	.write = vdi_write,
	.flush = vdi_flush,
	.discard = vdi_discard,
};
