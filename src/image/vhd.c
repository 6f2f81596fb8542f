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
	/* writing (dynamic and differencing); the lock also guards map()'s table reads */
	pthread_mutex_t lock;
	bool lock_init;
	uint8_t footer[VHD_FOOTER]; /* copied to the file's new end when a block is added */
	uint64_t next;              /* where the next block goes */
	bool tail_footer;           /* the footer is at the end (else the copy at the start stood in) */
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

/* Where a new block goes: after the block table, the highest block and everything but the trailing
 * footer (space a crash left behind stays unused). The table is read a window at a time. */
static int vhd_find_next(struct pm_image *img, struct vhd *v)
{
	uint8_t b[4096];
	uint64_t next = (v->bat_off + (uint64_t)v->bat_entries * 4 + 511) & ~511ull;
	uint64_t body = img->file_size & ~511ull;

	/* every block lies before the footer at the end (at the end when it is missing) and on none of
	 * the structures (img->tables): else the image is damaged or crafted, and a write to a block
	 * would land on them; it is read, not written */
	uint64_t limit = v->tail_footer && body >= VHD_FOOTER ? body - VHD_FOOTER : body;

	if (body >= VHD_FOOTER && body - VHD_FOOTER > next)
		next = body - VHD_FOOTER;
	for (uint64_t i = 0; i < v->bat_entries; i += sizeof(b) / 4) {
		size_t n = v->bat_entries - i < sizeof(b) / 4 ? (size_t)(v->bat_entries - i) : sizeof(b) / 4;
		int r = pm_img_pread(img->fd, img->file_size, v->bat_off + i * 4, b, n * 4);
		if (r < 0)
			return r;
		for (size_t k = 0; k < n; k++) {
			uint32_t sec = get_be32(b + 4 * k);
			uint64_t end = (uint64_t)sec * 512 + v->bitmap_size + v->block_size;
			if (sec == VHD_UNUSED)
				continue;
			if (end > limit || pm_ranges_hit(&img->tables, (uint64_t)sec * 512, end - (uint64_t)sec * 512))
				img->ro_reason = "a VHD block table entry points at its headers, its block table or past its end";
			if (end > next)
				next = end;
		}
	}
	v->next = next;
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
	v->tail_footer = !memcmp(f, "conectix", 8);
	if (!v->tail_footer) {
		r = pm_img_pread(img->fd, img->file_size, 0, f, VHD_FOOTER);
		if (r < 0 || memcmp(f, "conectix", 8))
			return pm_img_fail(img, -EINVAL, "%s: no VHD footer", img->path);
		pm_img_warn(img, "%s: the VHD footer at the end is missing; using the copy at the start", img->path);
	}
	if (vhd_checksum(f, VHD_FOOTER, 64) != get_be32(f + 64))
		pm_img_warn(img, "%s: VHD footer checksum mismatch; reading it anyway", img->path);
	memcpy(v->footer, f, VHD_FOOTER);
	if (pm_img_lock_init(&v->lock) < 0)
		return -ENOMEM;
	v->lock_init = true;
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
	/* the structures: the footer's copy, the dynamic header, the block table, the parent locators'
	 * data; overlapping, a damaged image (read, not written) */
	if ((r = pm_ranges_add(&img->tables, 0, VHD_FOOTER)) < 0 || (r = pm_ranges_add(&img->tables, dh_off, sizeof(dh))) < 0 ||
	    (r = pm_ranges_add(&img->tables, v->bat_off, ((uint64_t)v->bat_entries * 4 + 511) & ~511ull)) < 0)
		return r;
	for (int i = 0; v->type == VHD_DIFF && i < VHD_LOCATORS; i++) {
		const uint8_t *loc = dh + 576 + 24 * i;
		if (get_be32(loc) && (r = pm_ranges_add(&img->tables, get_be64(loc + 16), get_be32(loc + 8))) < 0 && r != -EUCLEAN)
			return r;
	}
	if ((r = pm_ranges_seal(&img->tables)) < 0) {
		if (r != -EUCLEAN)
			return r;
		img->ro_reason = "its VHD structures (footer copy, dynamic header, block table, locators) overlap";
	}
	if (img->want_write && (r = vhd_find_next(img, v)) < 0)
		return r;
	if (v->type == VHD_DIFF)
		return vhd_open_parent(img, dh);
	return 0;
}

static int vhd_map_locked(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
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

static int vhd_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vhd *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vhd_map_locked(img, off, max, pc);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* Set the bits of sectors [s0, s1) in the bitmap bm (most significant bit first). */
static void set_bits(uint8_t *bm, uint64_t s0, uint64_t s1)
{
	for (uint64_t s = s0; s < s1; s++)
		bm[s / 8] |= (uint8_t)(0x80u >> (s % 8));
}

/* A new block for blk holding data (sectors s0..s1 of it). The order keeps every moment of it a valid
 * image: the footer first at the new end (the old one stays where it was until then), then the
 * bitmap and the data over the old footer, a sync, and only then the table entry. A crash before the
 * entry leaves unused space; nothing points at what was not written. */
static int vhd_alloc_block(struct pm_image *img, struct vhd *v, uint64_t blk, uint64_t s0, uint64_t s1,
			   const uint8_t *data)
{
	uint64_t at = v->next, end = at + v->bitmap_size + v->block_size;
	uint8_t e[4];
	int r;

	if (at / 512 >= VHD_UNUSED)
		return -EFBIG;
	if (pm_ranges_hit(&img->tables, at, end + VHD_FOOTER - at))
		return -EUCLEAN; /* a structure lies where the file should end: a damaged image */
	_cleanup_free_ uint8_t *bm = calloc(1, v->bitmap_size);
	if (!bm)
		return -ENOMEM;
	/* dynamic: the whole block is this file's (unwritten sectors read as zeros); differencing: only
	 * the sectors written, the others go on coming from the parent */
	if (v->type == VHD_DYNAMIC)
		memset(bm, 0xff, v->bitmap_size);
	else
		set_bits(bm, s0 / 512, s1 / 512);
	if ((r = pm_pwrite_all(img->fd, v->footer, VHD_FOOTER, end)) < 0)
		return r;
	if (end + VHD_FOOTER > img->file_size)
		img->file_size = end + VHD_FOOTER;
	v->next = end;
	if ((r = pm_pwrite_all(img->fd, bm, v->bitmap_size, at)) < 0 ||
	    (r = pm_pwrite_all(img->fd, data, (size_t)(s1 - s0), at + v->bitmap_size + s0)) < 0)
		return r;
	if (fdatasync(img->fd) < 0)
		return -errno;
	put_be32(e, (uint32_t)(at / 512));
	if ((r = pm_pwrite_all(img->fd, e, 4, v->bat_off + blk * 4)) < 0)
		return r;
	pm_img_table_written(img, 0, v->bat_off + blk * 4, e, 4);
	return 0;
}

/* Write sectors [s0, s1) of block blk (data: s1 - s0 bytes). */
static int vhd_write_sectors(struct pm_image *img, struct vhd *v, uint64_t blk, uint64_t s0, uint64_t s1,
			     const uint8_t *data)
{
	uint8_t e[4];
	int r = pm_img_table(img, 0, img->fd, img->file_size, v->bat_off, (uint64_t)v->bat_entries * 4, blk * 4, e, 4);

	if (r < 0)
		return r;
	uint32_t sec = get_be32(e);
	if (sec == VHD_UNUSED)
		return vhd_alloc_block(img, v, blk, s0, s1, data);
	uint64_t block_off = (uint64_t)sec * 512;
	/* never over the trailing footer or what lies past the blocks */
	if (block_off + v->bitmap_size + s1 > v->next)
		return -EIO;
	if ((r = pm_pwrite_all(img->fd, data, (size_t)(s1 - s0), block_off + v->bitmap_size + s0)) < 0)
		return r;
	/* sectors whose bits are clear: their data made durable first, then the bits set (a crash in
	 * between leaves them reading as before) */
	uint64_t first = s0 / 512, nsec = (s1 - s0) / 512, run;
	bool set;
	if ((r = pm_img_bitmap_run(img, block_off, v->bitmap_size, true, first, nsec, &set, &run)) < 0)
		return r;
	if (set && run == nsec)
		return 0;
	if (fdatasync(img->fd) < 0)
		return -errno;
	uint64_t b0 = first / 8, b1 = (first + nsec - 1) / 8 + 1;
	_cleanup_free_ uint8_t *bm = malloc((size_t)(b1 - b0));
	if (!bm)
		return -ENOMEM;
	if ((r = pm_img_table(img, 0, img->fd, img->file_size, block_off, v->bitmap_size, b0, bm, (size_t)(b1 - b0))) < 0)
		return r;
	set_bits(bm, first - b0 * 8, first - b0 * 8 + nsec);
	if ((r = pm_pwrite_all(img->fd, bm, (size_t)(b1 - b0), block_off + b0)) < 0)
		return r;
	pm_img_table_written(img, 0, block_off + b0, bm, (size_t)(b1 - b0));
	return 0;
}

static int vhd_write_locked(struct pm_image *img, struct vhd *v, uint64_t off, const uint8_t *p, size_t len)
{
	int r;

	if (v->type == VHD_FIXED)
		return pm_pwrite_all(img->fd, p, len, off);
	while (len) {
		uint64_t blk = off / v->block_size, in = off % v->block_size;
		size_t n = v->block_size - in < len ? (size_t)(v->block_size - in) : len;
		uint64_t s0 = in & ~511ull, s1 = (in + n + 511) & ~511ull;
		const uint8_t *data = p;
		_cleanup_free_ uint8_t *tmp = NULL;
		if (s0 != in || s1 != in + n) {
			/* a part of a sector: the rest of it as it reads now (the parent's in a differencing disk) */
			uint64_t base = blk * v->block_size;
			if (!(tmp = malloc((size_t)(s1 - s0))))
				return -ENOMEM;
			if ((r = pm_img_read_current(img, base + s0, tmp, 512)) < 0 ||
			    (r = pm_img_read_current(img, base + s1 - 512, tmp + (s1 - s0) - 512, 512)) < 0)
				return r;
			memcpy(tmp + (in - s0), p, n);
			data = tmp;
		}
		if ((r = vhd_write_sectors(img, v, blk, s0, s1, data)) < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vhd_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	struct vhd *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vhd_write_locked(img, v, off, buf, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static int vhd_flush(struct pm_image *img)
{
	/* every table and bitmap change is written when it is made: only the file to sync */
	return fdatasync(img->fd) < 0 ? -errno : 0;
}

static int vhd_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	struct vhd *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = pm_img_punch_mapped(img, off, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static void vhd_close(struct pm_image *img)
{
	struct vhd *v = img->priv;

	if (v->lock_init)
		pthread_mutex_destroy(&v->lock);
	free(v);
	img->priv = NULL;
}

const struct pm_image_fmt pm_fmt_vhd = {
	.name = "vhd",
	.probe = vhd_probe,
	.open = vhd_open,
	.map = vhd_map,
	.close = vhd_close,
	.write = vhd_write,
	.flush = vhd_flush,
	.discard = vhd_discard,
};
