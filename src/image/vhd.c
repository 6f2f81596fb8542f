/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VHD (Virtual PC / Hyper-V "vpc"): fixed (the disk, then a 512-byte footer), dynamic and
 * differencing (a copy of the footer, a dynamic header, a block allocation table of u32 sector
 * numbers; each block is a sector bitmap then the data). Big-endian.
 *
 * Size: the footer's current size, except for images written by Virtual PC ('vpc ') or older qemu
 * ('qemu'), whose guests saw the CHS geometry's product (cylinders x heads x sectors), unless that
 * geometry is the maximum 65535/16/255, which cannot describe larger disks. */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define VHD_FOOTER 512
#define VHD_DYN_HEADER 1024
#define VHD_FIXED 2
#define VHD_DYNAMIC 3
#define VHD_DIFF 4
#define VHD_UNUSED 0xffffffffu
#define VHD_MAX_BLOCK (256u << 20)
#define VHD_LOCATORS 8

struct vhd {
	int type;
	uint64_t bat_off;
	uint32_t bat_entries;
	uint32_t block_size;
	uint32_t bitmap_size;       /* bytes, a multiple of 512 */
};

static int vhd_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	/* a dynamic image starts with a footer copy; a fixed one has it only at its end */
	return (n >= 8 && !memcmp(head, "conectix", 8)) || (tail && fsize >= 1024 && !memcmp(tail, "conectix", 8));
}

static uint32_t vhd_checksum(const uint8_t *b, size_t n, size_t skip)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i++)
		if (i < skip || i >= skip + 4)
			sum += b[i];
	return ~sum;
}

static uint64_t vhd_size(const uint8_t *f)
{
	uint64_t current = get_be64(f + 48);
	uint32_t cyl = get_be16(f + 56), heads = f[58], secs = f[59];
	bool chs_creator = !memcmp(f + 28, "vpc ", 4) || !memcmp(f + 28, "qemu", 4);
	bool chs_max = cyl == 65535 && heads == 16 && secs == 255;

	if (chs_creator && !chs_max)
		return (uint64_t)cyl * heads * secs * 512;
	return current;
}

/* Try the parent a locator names (its path left in tried): W2ru (relative) and W2ku (absolute) hold a
 * Windows path in UTF-16LE, MacX a file:// URL in UTF-8. -ENOENT when it leads nowhere. */
static int try_locator(struct pm_image *img, const uint8_t *loc, char *tried, size_t len)
{
	uint32_t code = get_be32(loc), n = get_be32(loc + 8);
	uint64_t off = get_be64(loc + 16);
	uint8_t raw[2048];

	if (!n || n > sizeof(raw) || pm_img_pread(img->fd, img->file_size, off, raw, n) < 0)
		return -ENOENT;
	if (code == 0x57327275 /* W2ru */ || code == 0x57326b75 /* W2ku */) {
		pm_utf16_to_utf8(raw, n, false, tried, len);
	} else if (code == 0x4d616358 /* MacX */) {
		size_t k = n < len ? n : len - 1;
		memcpy(tried, raw, k);
		tried[k] = 0;
		if (!strncmp(tried, "file://", 7))
			memmove(tried, tried + 7, strlen(tried + 7) + 1);
	} else {
		return -ENOENT;
	}
	return pm_img_try_parent(img, tried, "vhd");
}

static int vhd_open_parent(struct pm_image *img, const uint8_t *dh)
{
	static const uint32_t order[] = { 0x57327275, 0x4d616358, 0x57326b75 }; /* relative first */
	char path[1024], tried[1024] = "";
	int r;

	for (size_t o = 0; o < ARRAY_SIZE(order) && !img->backing; o++) {
		for (int i = 0; i < VHD_LOCATORS && !img->backing; i++) {
			const uint8_t *loc = dh + 576 + 24 * i;
			if (get_be32(loc) != order[o])
				continue;
			r = try_locator(img, loc, path, sizeof(path));
			if (r < 0 && r != -ENOENT)
				return r;
			if (!tried[0])
				snprintf(tried, sizeof(tried), "%s", path);
		}
	}
	if (!img->backing) {
		/* last: the parent's name from the header, beside the child */
		char name[512];
		pm_utf16_to_utf8(dh + 64, 512, true, name, sizeof(name));
		if (name[0]) {
			r = pm_img_open_backing(img, name, "vhd");
			if (r < 0)
				return r;
		} else {
			return pm_img_fail(img, -ENOENT, "%s: VHD parent %s not found", img->path, tried[0] ? tried : "(unnamed)");
		}
	}
	/* the parent's identity: its footer's unique id is the child's parent UUID */
	uint8_t pf[VHD_FOOTER];
	struct pm_image *p = img->backing;
	if (pm_img_pread(p->fd, p->file_size, p->file_size - VHD_FOOTER, pf, VHD_FOOTER) < 0 ||
	    memcmp(pf + 68, dh + 40, 16)) {
		return pm_img_fail(img, -EINVAL, "%s: VHD parent %s is not the disk this one was made from (unique id differs)",
				   img->path, p->path);
	}
	return 0;
}

static int vhd_open(struct pm_image *img)
{
	uint8_t f[VHD_FOOTER];
	struct vhd *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	img->priv = v;
	if (img->file_size < VHD_FOOTER)
		return pm_img_fail(img, -EINVAL, "%s: too short for a VHD image", img->path);
	/* the footer at the end; a dynamic image's copy at the start stands in for a damaged one */
	r = pm_img_pread(img->fd, img->file_size, img->file_size - VHD_FOOTER, f, VHD_FOOTER);
	if (r < 0)
		return r;
	if (memcmp(f, "conectix", 8)) {
		r = pm_img_pread(img->fd, img->file_size, 0, f, VHD_FOOTER);
		if (r < 0 || memcmp(f, "conectix", 8))
			return pm_img_fail(img, -EINVAL, "%s: no VHD footer", img->path);
		pm_img_warn(img, "%s: the VHD footer at the end is missing; using the copy at the start", img->path);
	}
	if (vhd_checksum(f, VHD_FOOTER, 64) != get_be32(f + 64))
		pm_img_warn(img, "%s: VHD footer checksum mismatch; reading it anyway", img->path);
	v->type = (int)get_be32(f + 60);
	img->size = vhd_size(f);
	if (img->size > (uint64_t)INT64_MAX)
		return pm_img_fail(img, -EINVAL, "%s: VHD size out of range", img->path);
	if (v->type == VHD_FIXED) {
		img->subformat = "fixed";
		if (img->size > img->file_size - VHD_FOOTER)
			return pm_img_fail(img, -EINVAL, "%s: fixed VHD shorter than its size", img->path);
		img->in_place = true;
		img->flat_path = img->path;
		return 0;
	}
	if (v->type != VHD_DYNAMIC && v->type != VHD_DIFF)
		return pm_img_fail(img, -ENOTSUP, "%s: VHD disk type %d is not supported", img->path, v->type);
	img->subformat = v->type == VHD_DYNAMIC ? "dynamic" : "differencing";

	uint8_t dh[VHD_DYN_HEADER];
	uint64_t dh_off = get_be64(f + 16);
	if (pm_img_pread(img->fd, img->file_size, dh_off, dh, sizeof(dh)) < 0 || memcmp(dh, "cxsparse", 8))
		return pm_img_fail(img, -EINVAL, "%s: VHD dynamic header missing or outside the file", img->path);
	if (vhd_checksum(dh, sizeof(dh), 36) != get_be32(dh + 36))
		pm_img_warn(img, "%s: VHD dynamic header checksum mismatch; reading it anyway", img->path);
	v->bat_off = get_be64(dh + 16);
	v->bat_entries = get_be32(dh + 28);
	v->block_size = get_be32(dh + 32);
	if (v->block_size < 512 || v->block_size > VHD_MAX_BLOCK || (v->block_size & (v->block_size - 1)))
		return pm_img_fail(img, -EINVAL, "%s: VHD block size %u out of range", img->path, v->block_size);
	v->bitmap_size = ((v->block_size / 512 / 8) + 511) & ~511u;
	if (img->size > (uint64_t)v->bat_entries * v->block_size)
		return pm_img_fail(img, -EINVAL, "%s: VHD block table (%u entries) too small for the disk size", img->path,
				   v->bat_entries);
	if (v->bat_off > img->file_size || (uint64_t)v->bat_entries * 4 > img->file_size - v->bat_off)
		return pm_img_fail(img, -EINVAL, "%s: VHD block table lies outside the file", img->path);
	img->cluster_size = v->block_size;
	if (v->type == VHD_DIFF)
		return vhd_open_parent(img, dh);
	return 0;
}

static int vhd_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vhd *v = img->priv;
	int r;

	pc->fd = img->fd;
	pc->fsize = img->file_size;
	pc->kind = PM_IMG_DATA;
	if (v->type == VHD_FIXED) {
		pc->host = off;
		pc->len = max;
		return 0;
	}
	uint64_t blk = off / v->block_size, in = off % v->block_size;
	uint8_t e[4];
	pc->len = v->block_size - in < max ? v->block_size - in : max;
	r = pm_img_table(img, 0, img->fd, img->file_size, v->bat_off, (uint64_t)v->bat_entries * 4, blk * 4, e, 4);
	if (r < 0)
		return r;
	uint32_t sec = get_be32(e);
	if (sec == VHD_UNUSED) {
		pc->kind = v->type == VHD_DIFF ? PM_IMG_BELOW : PM_IMG_ZERO;
		return 0;
	}
	uint64_t block_off = (uint64_t)sec * 512;
	pc->host = block_off + v->bitmap_size + in;
	if (v->type == VHD_DYNAMIC)
		return 0;
	/* differencing: the sector bitmap says which sectors this file holds */
	uint64_t s = in / 512, nsec = (in + pc->len - 1) / 512 - s + 1, run;
	bool here;
	r = pm_img_bitmap_run(img, block_off, v->bitmap_size, true, s, nsec, &here, &run);
	if (r < 0)
		return -EIO;
	if (run < nsec && (s + run) * 512 < in + pc->len)
		pc->len = (s + run) * 512 - in;
	pc->kind = here ? PM_IMG_DATA : PM_IMG_BELOW;
	return 0;
}

const struct pm_image_fmt pm_fmt_vhd = {
	.name = "vhd",
	.probe = vhd_probe,
	.open = vhd_open,
	.map = vhd_map,
};
