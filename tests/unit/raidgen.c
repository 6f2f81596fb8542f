/* Member images of BIOS RAID sets (isw, ddf1) written from the metadata facts; see raidgen.h. */
#include "raidgen.h"

#include "ptable.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

uint64_t rg_vol_sectors(const struct rg_vol *v)
{
	uint64_t rows = v->strip ? v->bpm / v->strip : 0;
	switch (v->level) {
	case RG_RAID0: return rows * v->strip * v->members;
	case RG_RAID1: return v->bpm;
	case RG_RAID10: return rows * v->strip * (v->members / 2);
	case RG_RAID5: return rows * v->strip * (v->members - 1);
	case RG_LINEAR: return v->bpm * v->members;
	}
	return 0;
}

/* ---- isw ---- */

uint64_t rg_isw_anchor(uint64_t disk_bytes)
{
	return disk_bytes - 1024;
}

static size_t isw_mpb_size(unsigned ndisks, const struct rg_vol *v, unsigned nvols)
{
	size_t sz = 0xD8 + 48u * ndisks;
	for (unsigned i = 0; i < nvols; i++)
		sz += 0x70 + 52 + 4u * (v[i].members - 1);
	return sz;
}

/* the MPB in memory <-> on the disk: the first sector at N-2, the others just before it */
static void isw_put(uint8_t *disk, uint64_t disk_bytes, const uint8_t *mpb, size_t size)
{
	size_t k = (size + 511) / 512;
	uint64_t a = rg_isw_anchor(disk_bytes);
	memcpy(disk + a, mpb, 512);
	if (k > 1)
		memcpy(disk + a - (k - 1) * 512, mpb + 512, (k - 1) * 512);
}

static void isw_get(const uint8_t *disk, uint64_t disk_bytes, uint8_t *mpb, size_t k)
{
	uint64_t a = rg_isw_anchor(disk_bytes);
	memcpy(mpb, disk + a, 512);
	if (k > 1)
		memcpy(mpb + 512, disk + a - (k - 1) * 512, (k - 1) * 512);
}

static void isw_sum(uint8_t *mpb, size_t size)
{
	uint32_t s = 0;
	put_le32(mpb + 0x20, 0);
	for (size_t i = 0; i + 4 <= size; i += 4)
		s += get_le32(mpb + i);
	put_le32(mpb + 0x20, s);
}

void rg_isw_fix(uint8_t *disk, uint64_t disk_bytes)
{
	uint64_t a = rg_isw_anchor(disk_bytes);
	size_t size = get_le32(disk + a + 0x24);
	size_t k = (size + 511) / 512;
	uint8_t *mpb = calloc(k, 512);
	isw_get(disk, disk_bytes, mpb, k);
	isw_sum(mpb, size);
	isw_put(disk, disk_bytes, mpb, size);
	free(mpb);
}

void rg_isw(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, uint32_t family,
	    const struct rg_vol *v, unsigned nvols, const char *const *serials)
{
	size_t size = isw_mpb_size(ndisks, v, nvols);
	size_t k = (size + 511) / 512;
	uint8_t *mpb = calloc(k, 512);
	memcpy(mpb, "Intel Raid ISM Cfg Sig. 1.3.00", 30);
	put_le32(mpb + 0x24, (uint32_t)size);
	put_le32(mpb + 0x28, family);
	put_le32(mpb + 0x2C, 1);
	put_le32(mpb + 0x40, family);
	mpb[0x38] = (uint8_t)ndisks;
	mpb[0x39] = (uint8_t)nvols;
	for (unsigned i = 0; i < ndisks; i++) {
		uint8_t *e = mpb + 0xD8 + 48 * i;
		if (serials && serials[i])
			memcpy(e, serials[i], strnlen(serials[i], 16));
		put_le32(e + 0x10, (uint32_t)(disk_bytes / 512));
		put_le32(e + 0x18, 0x02 | 0x08);
	}
	size_t off = 0xD8 + 48u * ndisks;
	for (unsigned i = 0; i < nvols; i++) {
		uint8_t *d = mpb + off, *m = d + 0x70;
		memcpy(d, v[i].name, strnlen(v[i].name, 16));
		uint64_t vs = rg_vol_sectors(&v[i]);
		put_le32(d + 0x10, (uint32_t)vs);
		put_le32(d + 0x14, (uint32_t)(vs >> 32));
		put_le32(m, (uint32_t)v[i].lba0);
		put_le32(m + 4, (uint32_t)v[i].bpm);
		put_le32(m + 8, v[i].strip ? (uint32_t)(v[i].bpm / v[i].strip) : 0);
		put_le16(m + 0x0C, (uint16_t)v[i].strip);
		m[0x0F] = v[i].level == RG_RAID0 ? 0 : v[i].level == RG_RAID5 ? 5 : 1;
		m[0x10] = (uint8_t)v[i].members;
		m[0x11] = v[i].level == RG_RAID1 || v[i].level == RG_RAID10 ? 2 : 1;
		for (unsigned j = 0; j < v[i].members; j++)
			put_le32(m + 0x30 + 4 * j, j);
		off += 0x70 + 52 + 4u * (v[i].members - 1);
	}
	isw_sum(mpb, size);
	for (unsigned i = 0; i < ndisks; i++)
		isw_put(disks[i], disk_bytes, mpb, size);
	free(mpb);
}

/* ---- ddf1 ---- */

#define P_HDR 0
#define P_PD 1
#define P_PDLEN 2
#define P_VD 3
#define P_VDLEN 1
#define P_CR 4
#define P_RECLEN 2
#define P_NREC 4
#define P_DD 12
#define MPE 16

static void p16(bool le, uint8_t *p, uint16_t v) { le ? put_le16(p, v) : put_be16(p, v); }
static void p32(bool le, uint8_t *p, uint32_t v) { le ? put_le32(p, v) : put_be32(p, v); }
static void p64(bool le, uint8_t *p, uint64_t v) { le ? put_le64(p, v) : put_be64(p, v); }

static void ddf_crc(bool le, uint8_t *b, size_t len)
{
	p32(le, b + 4, 0xFFFFFFFF);
	p32(le, b + 4, pm_crc32(0, b, len));
}

void rg_ddf1_fix(uint8_t *disk, uint64_t disk_bytes)
{
	uint64_t n = disk_bytes / 512;
	uint8_t *anchor = disk + (n - 1) * 512, *p = disk + (n - RG_DDF1_PRIMARY) * 512;
	bool le = anchor[0] == 0x11;
	ddf_crc(le, anchor, 512);
	ddf_crc(le, p, 512);
	ddf_crc(le, p + P_PD * 512, P_PDLEN * 512);
	ddf_crc(le, p + P_VD * 512, P_VDLEN * 512);
	for (unsigned i = 0; i < P_NREC; i++) {
		uint8_t *c = p + (P_CR + i * P_RECLEN) * 512;
		if (c[0] == 0xEE)
			ddf_crc(le, c, P_RECLEN * 512);
	}
	ddf_crc(le, p + P_DD * 512, 512);
}

static void ddf_record(bool le, uint8_t *c, const uint8_t *guid, const struct rg_vol *v, unsigned first,
		       unsigned count, unsigned level, unsigned sec_cnt, unsigned sec_num)
{
	p32(le, c, 0xEEEEEEEE);
	memcpy(c + 8, guid, 24);
	p16(le, c + 0x40, (uint16_t)count);
	unsigned shift = 0;
	while (v->strip && (1u << shift) < v->strip)
		shift++;
	c[0x42] = (uint8_t)shift;
	c[0x43] = (uint8_t)level;
	c[0x44] = (uint8_t)(level == 5 ? v->rlq : 0);
	c[0x45] = (uint8_t)sec_cnt;
	c[0x46] = (uint8_t)sec_num;
	c[0x47] = sec_cnt > 1 ? 3 : 0;
	p64(le, c + 0x48, v->bpm);
	p64(le, c + 0x50, rg_vol_sectors(v));
	for (unsigned j = 0; j < MPE; j++) {
		p32(le, c + 512 + 4 * j, j < count ? 0x1000 + first + j : 0xFFFFFFFF);
		p64(le, c + 512 + 4 * MPE + 8 * j, j < count ? v->lba0 : ~0ull);
	}
}

void rg_ddf1(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, const struct rg_vol *v, unsigned nvols,
	     bool le)
{
	uint64_t n = disk_bytes / 512, plba = n - RG_DDF1_PRIMARY;
	uint8_t area[RG_DDF1_PRIMARY * 512];
	memset(area, 0, sizeof(area));
	uint8_t *h = area;
	p32(le, h, 0xDE11DE11);
	memcpy(h + 8, "partmap-test-ddf-guid-00", 24);
	memcpy(h + 0x20, "02.00.00", 8);
	p32(le, h + 0x28, 1);
	p64(le, h + 0x60, plba);
	p64(le, h + 0x68, ~0ull);
	h[0x70] = 1; /* primary */
	p16(le, h + 0x80, 16);
	p16(le, h + 0x82, P_NREC);
	p16(le, h + 0x84, 1);
	p16(le, h + 0x86, P_RECLEN);
	p16(le, h + 0x88, MPE);
	p32(le, h + 0xC8, P_PD);
	p32(le, h + 0xCC, P_PDLEN);
	p32(le, h + 0xD0, P_VD);
	p32(le, h + 0xD4, P_VDLEN);
	p32(le, h + 0xD8, P_CR);
	p32(le, h + 0xDC, P_NREC * P_RECLEN);
	p32(le, h + 0xE0, P_DD);
	p32(le, h + 0xE4, 1);
	uint8_t *pd = area + P_PD * 512;
	p32(le, pd, 0x22222222);
	p16(le, pd + 8, (uint16_t)ndisks);
	p16(le, pd + 10, 16);
	for (unsigned i = 0; i < ndisks; i++) {
		uint8_t *e = pd + 0x40 + 64 * i;
		memcpy(e, "partmap-test-disk-guid-0", 24);
		e[23] = (uint8_t)('a' + i);
		p32(le, e + 0x18, 0x1000 + i);
		p16(le, e + 0x1C, 2);
		p16(le, e + 0x1E, 1);
		p64(le, e + 0x20, n);
	}
	uint8_t *vd = area + P_VD * 512;
	p32(le, vd, 0xDDDDDDDD);
	p16(le, vd + 8, (uint16_t)nvols);
	p16(le, vd + 10, P_NREC);
	unsigned rec = 0;
	for (unsigned i = 0; i < nvols; i++) {
		uint8_t *e = vd + 0x40 + 64 * i;
		uint8_t guid[24];
		memcpy(guid, "partmap-test-vd-guid-000", 24);
		guid[23] = (uint8_t)('a' + i);
		memcpy(e, guid, 24);
		p16(le, e + 0x18, (uint16_t)i);
		e[0x20] = 0;
		memcpy(e + 0x30, v[i].name, strnlen(v[i].name, 16));
		if (v[i].level == RG_RAID10) {
			for (unsigned s = 0; s < v[i].members / 2 && rec < P_NREC; s++)
				ddf_record(le, area + (P_CR + rec++ * P_RECLEN) * 512, guid, &v[i], 2 * s, 2, 1,
					   v[i].members / 2, s);
		} else if (rec < P_NREC) {
			unsigned lv = v[i].level == RG_RAID0 ? 0 : v[i].level == RG_RAID1 ? 1 : v[i].level == RG_RAID5 ? 5 : 0x0F;
			ddf_record(le, area + (P_CR + rec++ * P_RECLEN) * 512, guid, &v[i], 0, v[i].members, lv, 1, 0);
		}
	}
	for (; rec < P_NREC; rec++)
		memset(area + (P_CR + rec * P_RECLEN) * 512, 0xFF, 4);
	uint8_t *dd = area + P_DD * 512;
	p32(le, dd, 0x33333333);
	for (unsigned i = 0; i < ndisks; i++) {
		memcpy(dd + 8, pd + 0x40 + 64 * i, 24);
		p32(le, dd + 0x20, 0x1000 + i);
		memcpy(disks[i] + plba * 512, area, sizeof(area));
		uint8_t *anchor = disks[i] + (n - 1) * 512;
		memcpy(anchor, area, 512);
		anchor[0x70] = 0;
		rg_ddf1_fix(disks[i], disk_bytes);
	}
}

/* ---- data ---- */

static void xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] ^= src[i];
}

void rg_scatter(const struct rg_vol *v, const uint8_t *virt, uint8_t *const *disks)
{
	uint64_t total = rg_vol_sectors(v), cs = v->strip, n = v->members;
	switch (v->level) {
	case RG_LINEAR:
		for (unsigned i = 0; i < n; i++)
			memcpy(disks[i] + v->lba0 * 512, virt + i * v->bpm * 512, v->bpm * 512);
		break;
	case RG_RAID1:
		for (unsigned i = 0; i < n; i++)
			memcpy(disks[i] + v->lba0 * 512, virt, v->bpm * 512);
		break;
	case RG_RAID0:
	case RG_RAID10: {
		unsigned width = v->level == RG_RAID0 ? (unsigned)n : (unsigned)n / 2;
		for (uint64_t c = 0; c * cs < total; c++) {
			uint64_t at = (v->lba0 + c / width * cs) * 512;
			unsigned d = (unsigned)(c % width);
			if (v->level == RG_RAID0) {
				memcpy(disks[d] + at, virt + c * cs * 512, cs * 512);
			} else {
				memcpy(disks[2 * d] + at, virt + c * cs * 512, cs * 512);
				memcpy(disks[2 * d + 1] + at, virt + c * cs * 512, cs * 512);
			}
		}
		break;
	}
	case RG_RAID5:
		for (uint64_t row = 0; row < v->bpm / cs; row++) {
			unsigned pdisk = (unsigned)(n - 1 - row % n);
			uint64_t at = (v->lba0 + row * cs) * 512;
			memset(disks[pdisk] + at, 0, cs * 512);
			for (unsigned k = 0; k < n - 1; k++) {
				unsigned d = v->rlq == 3 ? (unsigned)((pdisk + 1 + k) % n) : (k < pdisk ? k : k + 1);
				const uint8_t *src = virt + (row * (n - 1) + k) * cs * 512;
				memcpy(disks[d] + at, src, cs * 512);
				xor_into(disks[pdisk] + at, src, cs * 512);
			}
		}
		break;
	}
}
