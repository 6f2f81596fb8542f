/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VHDX (MS-VHDX): two headers (the valid one with the higher sequence number wins), two region
 * tables naming the BAT and the metadata region, metadata items (block size, virtual size, logical
 * sector size, parent locator), a BAT whose payload entries are interleaved with sector-bitmap entries
 * (one per chunk). Little-endian; GUIDs in the mixed-endian order of GPT. A log that still needs
 * replay is replayed in memory for reading, in the file when opened read-write (vhdx-log.c); writes
 * are vhdx-write.c's. */
#include "vhdx.h"
#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define HEADER_SIZE VHDX_HEADER_SIZE
#define REGION_SIZE (64 * KiB)
#define MAX_BLOCK (256 * MiB)
#define META_TABLE (64 * KiB)   /* the metadata table; also the largest item read */

/* GUIDs as stored (first three fields little-endian) */
static const uint8_t GUID_BAT[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
				      0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t GUID_METADATA[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
					   0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t GUID_FILE_PARAMS[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
					      0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t GUID_DISK_SIZE[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
					    0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t GUID_LOGICAL_SECTOR[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
						 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t GUID_PHYSICAL_SECTOR[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
						  0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
static const uint8_t GUID_PAGE83[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
					 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
static const uint8_t GUID_PARENT_LOCATOR[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
						 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };

static int vhdx_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)tail, (void)fsize;
	return n >= 8 && !memcmp(head, "vhdxfile", 8);
}

static void guid_text(const uint8_t g[16], char *out)
{
	sprintf(out, "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}", get_le32(g), get_le16(g + 4), get_le16(g + 6),
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* Read and check a 4 KiB header or 64 KiB region table (CRC-32C with its checksum field as zero). */
static bool read_checked(struct pm_image *img, uint64_t off, uint8_t *buf, size_t len, const char *sig)
{
	if (vhdx_read(img, off, buf, len) < 0 || memcmp(buf, sig, 4))
		return false;
	uint32_t want = get_le32(buf + 4);
	put_le32(buf + 4, 0);
	bool ok = pm_crc32c(0, buf, len) == want;
	put_le32(buf + 4, want);
	return ok;
}

static int open_parent(struct pm_image *img, const uint8_t *loc, uint32_t loc_len)
{
	static const char *const keys[] = { "relative_path", "absolute_win32_path", "volume_path" };
	char linkage[64] = "", path[1024], tried[1024] = "";
	size_t tl = 0;
	int r = -ENOENT;

	if (loc_len < 20)
		return pm_img_fail(img, -EINVAL, "%s: VHDX parent locator cut short", img->path);
	unsigned count = get_le16(loc + 18);
	if (20 + (uint64_t)count * 12 > loc_len)
		return pm_img_fail(img, -EINVAL, "%s: VHDX parent locator entries run past it", img->path);
	/* the keys, in the order they are tried; parent_linkage (the parent's identity) first */
	for (size_t k = 0; k <= ARRAY_SIZE(keys) && !img->backing; k++) {
		for (unsigned i = 0; i < count && !img->backing; i++) {
			const uint8_t *kv = loc + 20 + 12 * i;
			uint32_t ko = get_le32(kv), vo = get_le32(kv + 4);
			unsigned kl = get_le16(kv + 8), vl = get_le16(kv + 10);
			char key[64];
			if ((uint64_t)ko + kl > loc_len || (uint64_t)vo + vl > loc_len)
				return pm_img_fail(img, -EINVAL, "%s: VHDX parent locator entry outside it", img->path);
			pm_utf16_to_utf8(loc + ko, kl, false, key, sizeof(key));
			if (k == 0) {
				if (!strcmp(key, "parent_linkage"))
					pm_utf16_to_utf8(loc + vo, vl, false, linkage, sizeof(linkage));
				continue;
			}
			if (strcmp(key, keys[k - 1]))
				continue;
			pm_utf16_to_utf8(loc + vo, vl, false, path, sizeof(path));
			r = pm_img_try_parent(img, path, "vhdx");
			if (r < 0 && r != -ENOENT)
				return r;
			if (r == -ENOENT && path[0] && tl < sizeof(tried)) {
				/* the path as looked for: made a Linux path, beside the child when relative */
				_cleanup_free_ char *full = pm_img_resolve(img, path);
				int w = snprintf(tried + tl, sizeof(tried) - tl, "%s%s", tl ? ", " : "", full ? full : path);
				tl += w > 0 ? (size_t)w : 0;
			}
		}
	}
	if (!img->backing)
		return pm_img_fail(img, -ENOENT, "%s: VHDX parent not found; tried %s", img->path,
				   tried[0] ? tried : "its locator names no path");
	struct vhdx *pv = img->backing->priv;
	char have[64];
	guid_text(pv->data_write_guid, have);
	if (linkage[0] && strcasecmp(linkage, have))
		return pm_img_fail(img, -EINVAL, "%s: VHDX parent %s is not the disk this one was made from (linkage %s, parent %s)",
				   img->path, img->backing->path, linkage, have);
	return 0;
}

static int vhdx_open(struct pm_image *img)
{
	struct vhdx *v = calloc(1, sizeof(*v));
	_cleanup_free_ uint8_t *buf = malloc(REGION_SIZE);
	uint8_t hdr[2][HEADER_SIZE];
	bool ok[2];
	int r;

	if (!v || !buf) {
		free(v);
		return -ENOMEM;
	}
	img->priv = v;
	for (int i = 0; i < 2; i++) {
		ok[i] = read_checked(img, (uint64_t)(i + 1) * 64 * KiB, hdr[i], HEADER_SIZE, "head");
		if (ok[i] && get_le16(hdr[i] + 66) != 1)
			return pm_img_fail(img, -ENOTSUP, "%s: VHDX version %u is not supported", img->path,
					   get_le16(hdr[i] + 66));
	}
	if (!ok[0] && !ok[1])
		return pm_img_fail(img, -EINVAL, "%s: both VHDX headers are damaged", img->path);
	const uint8_t *h = !ok[1] || (ok[0] && get_le64(hdr[0] + 8) >= get_le64(hdr[1] + 8)) ? hdr[0] : hdr[1];
	memcpy(v->data_write_guid, h + 32, 16);
	memcpy(v->hdr, h, HEADER_SIZE);
	v->cur = h == hdr[0] ? 0 : 1;
	v->log_off = get_le64(h + 72);
	v->log_len = get_le32(h + 68);
	if ((r = pm_img_lock_init(&v->lock)) < 0)
		return r;
	v->lock_init = true;
	/* a log to replay: in memory now (every read below sees it), in the file once locked (opened) */
	if ((r = vhdx_log_load(img, v)) < 0)
		return r;
	if (v->log_len < 2 * VHDX_LOG_SECTOR || v->log_off % MiB || v->log_off > img->file_size ||
	    v->log_len > img->file_size - v->log_off)
		img->ro_reason = "its VHDX log region is too small for an entry, or lies outside the file";

	/* the region table: either copy that checks */
	if (!read_checked(img, 192 * KiB, buf, REGION_SIZE, "regi") &&
	    !read_checked(img, 256 * KiB, buf, REGION_SIZE, "regi"))
		return pm_img_fail(img, -EINVAL, "%s: both VHDX region tables are damaged", img->path);
	uint32_t nreg = get_le32(buf + 8);
	uint64_t meta_off = 0, meta_len = 0;
	if (nreg > 2047)
		return pm_img_fail(img, -EINVAL, "%s: VHDX region table has %u entries", img->path, nreg);
	for (uint32_t i = 0; i < nreg; i++) {
		const uint8_t *e = buf + 16 + 32 * i;
		if (!memcmp(e, GUID_BAT, 16)) {
			v->bat_off = get_le64(e + 16);
			v->bat_len = get_le32(e + 24);
		} else if (!memcmp(e, GUID_METADATA, 16)) {
			meta_off = get_le64(e + 16);
			meta_len = get_le32(e + 24);
		} else if (get_le32(e + 28) & 1) {
			return pm_img_fail(img, -ENOTSUP, "%s: VHDX has a required region partmap does not know", img->path);
		}
	}
	if (!meta_len || meta_len > REGION_SIZE * 16 || meta_off > img->file_size || meta_len > img->file_size - meta_off)
		return pm_img_fail(img, -EINVAL, "%s: VHDX metadata region missing or outside the file", img->path);
	if (!v->bat_len || v->bat_off > img->file_size || v->bat_len > img->file_size - v->bat_off)
		return pm_img_fail(img, -EINVAL, "%s: VHDX block table missing or outside the file", img->path);

	/* the metadata table (at most 64 KiB), then each item it names: not the whole region */
	uint64_t tbl_len = meta_len < META_TABLE ? meta_len : META_TABLE;
	_cleanup_free_ uint8_t *meta = malloc(tbl_len), *loc = NULL;
	if (!meta)
		return -ENOMEM;
	if ((r = vhdx_read(img, meta_off, meta, tbl_len)) < 0)
		return r;
	if (tbl_len < 32 || memcmp(meta, "metadata", 8))
		return pm_img_fail(img, -EINVAL, "%s: VHDX metadata table damaged", img->path);
	unsigned nmeta = get_le16(meta + 10);
	uint64_t size = 0;
	uint32_t flags = 0, loc_len = 0;
	if (32 + (uint64_t)nmeta * 32 > tbl_len)
		return pm_img_fail(img, -EINVAL, "%s: VHDX metadata table has %u entries", img->path, nmeta);
	for (unsigned i = 0; i < nmeta; i++) {
		const uint8_t *e = meta + 32 + 32 * i;
		uint32_t off = get_le32(e + 16), len = get_le32(e + 20), f = get_le32(e + 24);
		uint8_t d[8];
		if ((uint64_t)off + len > meta_len)
			return pm_img_fail(img, -EINVAL, "%s: VHDX metadata item outside its region", img->path);
		bool known = !memcmp(e, GUID_FILE_PARAMS, 16) || !memcmp(e, GUID_DISK_SIZE, 16) ||
			     !memcmp(e, GUID_LOGICAL_SECTOR, 16);
		if (known && (len < 4 || vhdx_read(img, meta_off + off, d, len < 8 ? 4 : 8) < 0))
			return pm_img_fail(img, -EINVAL, "%s: VHDX metadata item cut short", img->path);
		if (!memcmp(e, GUID_FILE_PARAMS, 16) && len >= 8) {
			v->block_size = get_le32(d);
			flags = get_le32(d + 4);
		} else if (!memcmp(e, GUID_DISK_SIZE, 16) && len >= 8) {
			size = get_le64(d);
		} else if (!memcmp(e, GUID_LOGICAL_SECTOR, 16)) {
			v->lss = get_le32(d);
		} else if (!memcmp(e, GUID_PARENT_LOCATOR, 16)) {
			if (len > META_TABLE)
				return pm_img_fail(img, -EINVAL, "%s: VHDX parent locator of %u bytes", img->path, len);
			free(loc);
			if (!(loc = malloc(len ? len : 1)))
				return -ENOMEM;
			if ((r = vhdx_read(img, meta_off + off, loc, len)) < 0)
				return r;
			loc_len = len;
		} else if (!memcmp(e, GUID_PHYSICAL_SECTOR, 16) || !memcmp(e, GUID_PAGE83, 16)) {
			/* not needed to read */
		} else if (f & 4) {
			return pm_img_fail(img, -ENOTSUP, "%s: VHDX has a required metadata item partmap does not know",
					   img->path);
		}
	}
	if (v->block_size < MiB || v->block_size > MAX_BLOCK || (v->block_size & (v->block_size - 1)))
		return pm_img_fail(img, -EINVAL, "%s: VHDX block size %u out of range", img->path, v->block_size);
	if (v->lss != 512 && v->lss != 4096)
		return pm_img_fail(img, -EINVAL, "%s: VHDX logical sector size %u out of range", img->path, v->lss);
	if (!size || size > (64ull << 40) * 1024 || size % v->lss)
		return pm_img_fail(img, -EINVAL, "%s: VHDX virtual size out of range", img->path);
	v->has_parent = flags & 2;
	v->chunk_ratio = (8388608ull * v->lss) / v->block_size;
	uint64_t payload = (size + v->block_size - 1) / v->block_size;
	uint64_t need = v->has_parent ? (payload + v->chunk_ratio - 1) / v->chunk_ratio * (v->chunk_ratio + 1)
				      : payload + (payload - 1) / v->chunk_ratio;
	if (need * 8 > v->bat_len)
		return pm_img_fail(img, -EINVAL, "%s: VHDX block table too small for the virtual size", img->path);
	img->size = size;
	img->cluster_size = v->block_size;
	img->subformat = v->has_parent ? "differencing" : "dynamic";
	/* the regions no payload block may lie on (vhdx-write.c): the header section (file identifier,
	 * headers, region tables), the log, the block table, the metadata; overlapping, they make a
	 * damaged image that is read but not written (qemu refuses to open it) */
	if ((r = pm_ranges_add(&img->tables, 0, MiB)) < 0 || (r = pm_ranges_add(&img->tables, v->log_off, v->log_len)) < 0 ||
	    (r = pm_ranges_add(&img->tables, v->bat_off, v->bat_len)) < 0 ||
	    (r = pm_ranges_add(&img->tables, meta_off, meta_len)) < 0 || (r = pm_ranges_seal(&img->tables)) < 0) {
		if (r != -EUCLEAN)
			return r;
		img->ro_reason = "its VHDX regions (headers, log, block table, metadata) overlap";
	}
	if (v->has_parent) {
		if (!loc)
			return pm_img_fail(img, -EINVAL, "%s: differencing VHDX without a parent locator", img->path);
		return open_parent(img, loc, loc_len);
	}
	return 0;
}

int vhdx_bat_entry(struct pm_image *img, uint64_t idx, uint64_t *e)
{
	struct vhdx *v = img->priv;
	uint8_t b[8];
	int r = pm_img_table(img, 0, img->fd, img->file_size, v->bat_off, v->bat_len, idx * 8, b, 8);

	vhdx_log_patch(v->log, v->bat_off + idx * 8, b, 8);
	*e = get_le64(b);
	return r;
}

/* The run of equal bits from 'first' in a sector bitmap that the replayed log changes: read through it. */
static int bitmap_run_replayed(struct pm_image *img, uint64_t bm_off, uint64_t first, uint64_t max, bool *value,
			       uint64_t *run)
{
	uint8_t b[64];
	uint64_t n = 0, have = UINT64_MAX;
	int r;

	while (n < max) {
		uint64_t bit = first + n, at = bit / 8;
		if (have == UINT64_MAX || at < have || at >= have + sizeof(b)) {
			have = at;
			if ((r = vhdx_read(img, bm_off + at, b, sizeof(b))) < 0)
				return r;
		}
		bool v = b[at - have] >> (bit % 8) & 1;
		if (n == 0)
			*value = v;
		else if (v != *value)
			break;
		n++;
	}
	*run = n;
	return 0;
}

static int vhdx_map_locked(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vhdx *v = img->priv;
	uint64_t blk = off / v->block_size, in = off % v->block_size, e;
	int r;

	pc->len = v->block_size - in < max ? v->block_size - in : max;
	pc->fd = img->fd;
	pc->fsize = img->file_size;
	if ((r = vhdx_bat_entry(img, blk + blk / v->chunk_ratio, &e)) < 0)
		return r;
	uint64_t foff = e & ~(MiB - 1);
	switch (e & 7) {
	case PB_NOT_PRESENT:
	case PB_UNDEFINED:
	case PB_UNMAPPED:
		pc->kind = v->has_parent ? PM_IMG_BELOW : PM_IMG_ZERO;
		return 0;
	case PB_ZERO:
		pc->kind = PM_IMG_ZERO;
		return 0;
	case PB_FULLY_PRESENT:
		pc->kind = PM_IMG_DATA;
		pc->host = foff + in;
		vhdx_log_redirect(v->log, pc);
		return 0;
	case PB_PARTIALLY_PRESENT:
		if (v->has_parent)
			break;
		/* fall through */
	default:
		return -EIO;
	}
	/* the chunk's sector bitmap: one bit per logical sector, least significant bit first */
	uint64_t chunk = blk / v->chunk_ratio, sb;
	if ((r = vhdx_bat_entry(img, chunk * (v->chunk_ratio + 1) + v->chunk_ratio, &sb)) < 0)
		return r;
	if ((sb & 7) != SB_PRESENT)
		return -EIO;
	uint64_t sb_off = sb & ~(MiB - 1);
	uint64_t first = (off - chunk * v->chunk_ratio * v->block_size) / v->lss;
	uint64_t nsec = (in + pc->len + v->lss - 1) / v->lss - in / v->lss, t;
	bool here;
	if (vhdx_log_touches(v->log, sb_off + first / 8, (nsec + 7) / 8 + 1))
		r = bitmap_run_replayed(img, sb_off, first, nsec, &here, &t);
	else
		r = pm_img_bitmap_run(img, sb_off, MiB, false, first, nsec, &here, &t);
	if (r < 0)
		return r;
	uint64_t end = (in / v->lss + t) * v->lss;
	if (end < in + pc->len)
		pc->len = end - in;
	pc->host = foff + in;
	pc->kind = here ? PM_IMG_DATA : PM_IMG_BELOW;
	if (here)
		vhdx_log_redirect(v->log, pc);
	return 0;
}

static int vhdx_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vhdx *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vhdx_map_locked(img, off, max, pc);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static void vhdx_close(struct pm_image *img)
{
	struct vhdx *v = img->priv;

	vhdx_log_free(v->log);
	if (v->lock_init)
		pthread_mutex_destroy(&v->lock);
	free(v);
	img->priv = NULL;
}

const struct pm_image_fmt pm_fmt_vhdx = {
	.name = "vhdx",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.map = vhdx_map,
	.close = vhdx_close,
	.opened = vhdx_log_replay,
	.write = vhdx_write,
	.flush = vhdx_flush,
	.discard = vhdx_discard,
};
