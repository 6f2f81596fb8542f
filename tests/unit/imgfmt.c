/* Builders for VM image files in memory: see imgfmt.h. */
#include "imgfmt.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len);

const uint8_t DWG_P[16] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xc0, 0xc1, 1, 2, 3, 4, 5, 6, 7, 8 };
const uint8_t DWG_C[16] = { 0xd0, 0xd1, 0xd2, 0xd3, 0xe0, 0xe1, 0xf0, 0xf1, 8, 7, 6, 5, 4, 3, 2, 1 };
const uint8_t UUID_P[16] = { 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
const uint8_t UUID_C[16] = { 0x99, 0x88, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };

int img_dir_make(char *dir, size_t len, const char *prefix)
{
	if ((size_t)snprintf(dir, len, "/tmp/%s.XXXXXX", prefix) >= len)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

int img_dir_remove(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

const char *img_path(const char *dir, const char *name)
{
	static char path[8][PATH_MAX];
	static unsigned next;
	char *p = path[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

const char *img_save(const char *dir, const char *name, const struct img *im)
{
	const char *p = img_path(dir, name);
	FILE *f = fopen(p, "wb");
	bool ok = f && fwrite(im->data, 1, im->size, f) == im->size;

	if (f && fclose(f) != 0)
		ok = false;
	return ok ? p : NULL;
}

void img_grow(struct img *im, uint64_t size)
{
	if (size <= im->size)
		return;
	im->data = realloc(im->data, size);
	memset(im->data + im->size, 0, size - im->size);
	im->size = size;
}

/* ---- qcow2 ---- */

struct img q2_new(unsigned ndata)
{
	struct img im = img_new(Q2_DATA + (uint64_t)ndata * Q2_CLUSTER);
	uint8_t *h = im.data;

	put_be32(h, 0x514649fb);
	put_be32(h + 4, 3);
	put_be32(h + 20, 9);                    /* 512-byte clusters */
	put_be64(h + 24, 64 * Q2_CLUSTER);      /* virtual size: one L2 table's worth */
	put_be32(h + 36, 1);                    /* L1 entries */
	put_be64(h + 40, Q2_L1);
	put_be32(h + 96, 4);                    /* refcount order */
	put_be32(h + 100, 104);                 /* header length */
	put_be64(im.data + Q2_L1, Q2_L2 | (1ull << 63));
	return im;
}

void q2_set(struct img *im, unsigned i, uint64_t entry)
{
	put_be64(im->data + Q2_L2 + 8 * i, entry);
}

uint64_t q2_compressed(uint64_t off, uint64_t extra_sectors)
{
	unsigned shift = 62 - (9 - 8);
	return (1ull << 62) | off | extra_sectors << shift;
}

size_t deflate_raw(const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
	z_stream s = { 0 };

	deflateInit2(&s, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY);
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)outlen;
	deflate(&s, Z_FINISH);
	deflateEnd(&s);
	return outlen - s.avail_out;
}

/* ---- VHD ---- */

#define VHD_BLOCK 4096u
#define VHD_BAT 1536u

static uint32_t vhd_sum(const uint8_t *b, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += b[i];
	return ~s;
}

static void put_utf16(uint8_t *p, const char *s, int be)
{
	for (; *s; s++, p += 2) {
		p[be ? 1 : 0] = (uint8_t)*s;
		p[be ? 0 : 1] = 0;
	}
}

struct img vhd_new(unsigned nblocks, const uint8_t *uuid, const uint8_t *parent_uuid, const char *parent_rel)
{
	uint64_t bat_len = ((uint64_t)nblocks * 4 + 511) & ~511ull;
	struct img im = img_new(VHD_BAT + bat_len + 1024);
	uint8_t *f = im.data, *d = im.data + 512;

	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);
	put_be32(f + 12, 0x00010000);
	put_be64(f + 16, 512);
	memcpy(f + 28, "test", 4);
	put_be64(f + 40, (uint64_t)nblocks * VHD_BLOCK);
	put_be64(f + 48, (uint64_t)nblocks * VHD_BLOCK);
	put_be32(f + 60, parent_uuid ? 4 : 3);
	memcpy(f + 68, uuid, 16);
	memcpy(d, "cxsparse", 8);
	put_be64(d + 8, UINT64_MAX);
	put_be64(d + 16, VHD_BAT);
	put_be32(d + 24, 0x00010000);
	put_be32(d + 28, nblocks);
	put_be32(d + 32, VHD_BLOCK);
	memset(im.data + VHD_BAT, 0xff, bat_len);
	if (parent_uuid) {
		uint64_t loc = VHD_BAT + bat_len;
		char win[256];
		snprintf(win, sizeof(win), ".\\%s", parent_rel);
		memcpy(d + 40, parent_uuid, 16);
		put_utf16(d + 64, parent_rel, 1);
		put_be32(d + 576, 0x57327275); /* W2ru */
		put_be32(d + 576 + 4, 1);
		put_be32(d + 576 + 8, (uint32_t)strlen(win) * 2);
		put_be64(d + 576 + 16, loc);
		put_utf16(im.data + loc, win, 0);
	}
	return im;
}

uint64_t vhd_alloc(struct img *im, unsigned b)
{
	uint64_t at = im->size;

	img_grow(im, at + 512 + VHD_BLOCK);
	memset(im->data + at, 0xff, 1); /* 8 sectors: one bitmap byte */
	put_be32(im->data + VHD_BAT + 4 * b, (uint32_t)(at / 512));
	return at + 512;
}

void vhd_finish(struct img *im)
{
	uint8_t *d = im->data + 512;
	uint64_t end = im->size;

	put_be32(d + 36, 0);
	put_be32(d + 36, vhd_sum(d, 1024));
	put_be32(im->data + 64, 0);
	put_be32(im->data + 64, vhd_sum(im->data, 512));
	img_grow(im, end + 512);
	memcpy(im->data + end, im->data, 512);
}

/* ---- VHDX ---- */

#define MB (1u << 20)
#define VHDX_LOG (1 * MB)
#define VHDX_META (2 * MB)
#define VHDX_BAT (3 * MB)
#define VHDX_DATA (4 * MB)
#define VHDX_CHUNK 4096u /* 2^23 * 512 / 1 MiB */

static const uint8_t G_BAT[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t G_META[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t G_PARAMS[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t G_SIZE[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t G_LSS[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t G_LOC[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const uint8_t G_LOCTYPE[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

static void crc_at(uint8_t *p, size_t len)
{
	put_le32(p + 4, 0);
	put_le32(p + 4, pm_crc32c(0, p, len));
}

static void meta_item(uint8_t *m, unsigned i, const uint8_t *guid, uint32_t off, uint32_t len, uint32_t flags)
{
	uint8_t *e = m + 32 + 32 * i;
	memcpy(e, guid, 16);
	put_le32(e + 16, off);
	put_le32(e + 20, len);
	put_le32(e + 24, flags);
}

static uint16_t kv_string(uint8_t *loc, uint32_t *at, const char *s)
{
	put_utf16(loc + *at, s, 0);
	*at += (uint32_t)strlen(s) * 2;
	return (uint16_t)(strlen(s) * 2);
}

struct img vhdx_new(unsigned nblocks, const uint8_t *dwg, const uint8_t *parent_guid, const char *parent_rel)
{
	struct img im = img_new(VHDX_DATA);
	uint8_t *m = im.data + VHDX_META;

	memcpy(im.data, "vhdxfile", 8);
	for (int i = 0; i < 2; i++) {
		uint8_t *h = im.data + (uint64_t)(i + 1) * 64 * 1024;
		memcpy(h, "head", 4);
		put_le64(h + 8, (uint64_t)i + 1);
		memcpy(h + 32, dwg, 16);
		put_le16(h + 66, 1);
		put_le32(h + 68, VHDX_LOG);
		put_le64(h + 72, VHDX_LOG);
		crc_at(h, 4096);
		uint8_t *r = im.data + (uint64_t)(i + 3) * 64 * 1024;
		memcpy(r, "regi", 4);
		put_le32(r + 8, 2);
		memcpy(r + 16, G_BAT, 16);
		put_le64(r + 32, VHDX_BAT);
		put_le32(r + 40, MB);
		put_le32(r + 44, 1);
		memcpy(r + 48, G_META, 16);
		put_le64(r + 64, VHDX_META);
		put_le32(r + 72, MB);
		put_le32(r + 76, 1);
		crc_at(r, 64 * 1024);
	}
	memcpy(m, "metadata", 8);
	unsigned n = 0;
	meta_item(m, n++, G_PARAMS, 65536, 8, 4);
	put_le32(m + 65536, MB);
	put_le32(m + 65536 + 4, parent_guid ? 2 : 0);
	meta_item(m, n++, G_SIZE, 65536 + 8, 8, 6);
	put_le64(m + 65536 + 8, (uint64_t)nblocks * MB);
	meta_item(m, n++, G_LSS, 65536 + 16, 4, 6);
	put_le32(m + 65536 + 16, 512);
	if (parent_guid) {
		uint8_t *loc = m + 65536 + 64;
		char linkage[64], rel[256];
		uint32_t at = 20 + 2 * 12;
		snprintf(linkage, sizeof(linkage), "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}", get_le32(parent_guid),
			 get_le16(parent_guid + 4), get_le16(parent_guid + 6), parent_guid[8], parent_guid[9],
			 parent_guid[10], parent_guid[11], parent_guid[12], parent_guid[13], parent_guid[14],
			 parent_guid[15]);
		snprintf(rel, sizeof(rel), ".\\%s", parent_rel);
		memcpy(loc, G_LOCTYPE, 16);
		put_le16(loc + 18, 2);
		const char *kv[4] = { "parent_linkage", linkage, "relative_path", rel };
		for (int i = 0; i < 2; i++) {
			uint8_t *e = loc + 20 + 12 * i;
			put_le32(e, at);
			put_le16(e + 8, kv_string(loc, &at, kv[2 * i]));
			put_le32(e + 4, at);
			put_le16(e + 10, kv_string(loc, &at, kv[2 * i + 1]));
		}
		meta_item(m, n++, G_LOC, 65536 + 64, at, 4);
	}
	put_le16(m + 10, (uint16_t)n);
	return im;
}

uint64_t vhdx_alloc(struct img *im, unsigned b, const uint8_t *bitmap)
{
	uint64_t at = im->size;

	img_grow(im, at + MB);
	put_le64(im->data + VHDX_BAT + 8ull * (b + b / VHDX_CHUNK), at | (bitmap ? 7 : 6));
	if (bitmap) {
		/* the chunk's sector bitmap block, made on first use; 256 bytes per 1 MiB block */
		uint64_t sbi = (uint64_t)(b / VHDX_CHUNK) * (VHDX_CHUNK + 1) + VHDX_CHUNK;
		uint64_t sb = get_le64(im->data + VHDX_BAT + 8 * sbi) & ~(uint64_t)(MB - 1);
		if (!sb) {
			sb = im->size;
			img_grow(im, sb + MB);
			put_le64(im->data + VHDX_BAT + 8 * sbi, sb | 6);
		}
		memcpy(im->data + sb + (uint64_t)(b % VHDX_CHUNK) * 256, bitmap, 256);
	}
	return at;
}

void vhdx_add_log(struct img *im)
{
	uint8_t *h = im->data + 64 * 1024, *e = im->data + VHDX_LOG;
	static const uint8_t log_guid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

	for (int i = 0; i < 2; i++, h += 64 * 1024) {
		memcpy(h + 48, log_guid, 16);
		crc_at(h, 4096);
	}
	memcpy(e, "loge", 4);
	put_le32(e + 8, 4096);
	memcpy(e + 32, log_guid, 16);
}

/* ---- VDI ---- */

#define VDI_BLOCK 4096u
#define VDI_MAP 512u

struct img vdi_new(unsigned nblocks)
{
	uint64_t map_len = ((uint64_t)nblocks * 4 + 511) & ~511ull;
	struct img im = img_new(VDI_MAP + map_len);
	uint8_t *h = im.data;

	memcpy(h, "<<< test VDI >>>\n", 17);
	put_le32(h + 0x40, 0xbeda107f);
	put_le32(h + 0x44, 0x00010001);
	put_le32(h + 0x48, 0x190);
	put_le32(h + 0x4c, 1);
	put_le32(h + 0x154, VDI_MAP);
	put_le32(h + 0x158, (uint32_t)(VDI_MAP + map_len));
	put_le32(h + 0x168, 512);
	put_le64(h + 0x170, (uint64_t)nblocks * VDI_BLOCK);
	put_le32(h + 0x178, VDI_BLOCK);
	put_le32(h + 0x180, nblocks);
	memset(im.data + VDI_MAP, 0xff, (size_t)nblocks * 4);
	return im;
}

uint64_t vdi_alloc(struct img *im, unsigned b)
{
	uint32_t used = get_le32(im->data + 0x184);
	uint64_t at = get_le32(im->data + 0x158) + (uint64_t)used * VDI_BLOCK;

	img_grow(im, at + VDI_BLOCK);
	put_le32(im->data + 0x184, used + 1);
	vdi_set(im, b, used);
	return at;
}

void vdi_set(struct img *im, unsigned b, uint32_t entry)
{
	put_le32(im->data + VDI_MAP + 4 * b, entry);
}
