/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VirtualBox VDI, static and dynamic: a header, a block map of u32 (little-endian) and the blocks.
 * Map entries 0xffffffff (never written) and 0xfffffffe (zeroed) read as zeros. Differencing VDI
 * (a parent by UUID) is refused: nothing names the parent's file. */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <string.h>

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_TYPE_DYNAMIC 1
#define VDI_TYPE_STATIC 2
#define VDI_TYPE_DIFF 4
#define VDI_UNALLOCATED 0xffffffffu
#define VDI_ZERO 0xfffffffeu
#define VDI_MAX_BLOCK (64u << 20)

struct vdi {
	uint64_t map_off, data_off;
	uint32_t block_size, block_extra, nblocks;
};

static int vdi_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)tail, (void)fsize;
	return n >= 0x48 && get_le32(head + 0x40) == VDI_SIGNATURE;
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
	return 0;
}

static int vdi_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
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

const struct pm_image_fmt pm_fmt_vdi = {
	.name = "vdi",
	.probe = vdi_probe,
	.open = vdi_open,
	.map = vdi_map,
};
