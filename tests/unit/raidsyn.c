/* Synthesised BIOS RAID members of all eleven formats dmraid reads (see raidsyn.h). Field offsets:
 * ../shared/reference/dmraid.md §1. */
#include "raidsyn.h"

#include "ptable.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define le16(p, v) put_le16(p, (uint16_t)(v))
#define le32(p, v) put_le32(p, (uint32_t)(v))
#define be16(p, v) put_be16(p, (uint16_t)(v))
#define be32(p, v) put_be32(p, (uint32_t)(v))
#define rd32 get_le32
#define rd16 get_le16

static unsigned lg2(unsigned v)
{
	unsigned s = 0;
	while (v > 1) {
		v >>= 1;
		s++;
	}
	return s;
}

static const char *name_of(const struct rs_spec *s) { return s->name ? s->name : "Vol0"; }

static void fix_nvidia(uint8_t *m)
{
	le32(m + 0xC, 0);
	uint32_t sum = 0;
	for (unsigned i = 0; i < 30; i++)
		sum += rd32(m + 4 * i);
	le32(m + 0xC, 0u - sum);
}

static int w_nvidia(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	static const uint32_t levels[] = { [RS_SPAN] = 0xFF, [RS_RAID0] = 0x80, [RS_RAID1] = 0x81,
					   [RS_RAID10] = 0x8180, [RS_RAID01] = 0, [RS_RAID5] = 0x95, [RS_SPARE] = 0 };
	if (s->level == RS_RAID01)
		return -1;
	uint8_t *m = img + (s->disk_sectors - 2) * 512;
	unsigned width = s->level == RS_RAID1 ? 1 : s->level == RS_RAID10 ? s->disks / 2
		       : s->level == RS_RAID5 ? s->disks - 1 : s->disks;
	memcpy(m, "NVIDIA  ", 8);
	le32(m + 8, 30);
	le16(m + 0x10, 100);
	m[0x12] = (uint8_t)i;
	le32(m + 0x14, (uint32_t)(s->member_sectors * width));
	le32(m + 0x18, 512);
	uint8_t *a = m + 0x34;
	le32(a, 0x640000 + 0x34);
	le32(a + 4, s->id - 0x01010101u); /* the signature words sum to the id */
	le32(a + 8, 0x01010101u);
	m[0x34 + 0x15] = (uint8_t)width;
	m[0x34 + 0x16] = (uint8_t)s->disks;
	m[0x34 + 0x17] = (uint8_t)width;
	le32(a + 0x18, levels[s->level]);
	le32(a + 0x1C, s->chunk);
	le32(a + 0x20, s->chunk * 512);
	le32(a + 0x24, lg2(s->chunk));
	le32(a + 0x28, s->chunk - 1);
	le32(a + 0x2C, s->chunk * width);
	fix_nvidia(m);
	return 0;
}

static void fix_via(uint8_t *m)
{
	uint8_t sum = 0;
	for (unsigned i = 0; i < 50; i++)
		sum = (uint8_t)(sum + m[i]);
	m[50] = sum;
}

static int w_via(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	unsigned type, info, count = s->disks;
	switch (s->level) {
	case RS_SPAN: type = 8; info = i; break;
	case RS_RAID0: type = 0; info = i; break;
	case RS_RAID1: type = 1; info = i ? 2 : 0; break;
	case RS_RAID10: type = 9; info = (i % (s->disks / 2)) | (i / (s->disks / 2)) << 3; count = s->disks / 2; break;
	default: return -1;
	}
	if (s->chunk < 8 || lg2(s->chunk / 8) > 15)
		return -1;
	uint8_t *m = img + (s->disk_sectors - 1) * 512;
	le16(m, 0xAA55);
	m[2] = 1;
	le16(m + 3, 1u << 2 | type << 3 | info << 10);
	m[5] = (uint8_t)((count & 7) | lg2(s->chunk / 8) << 4);
	le32(m + 6, (uint32_t)(s->member_sectors * count));
	le32(m + 0x12, s->id - m[5]); /* Σ serial checksums + disk_array_ex = id */
	fix_via(m);
	return 0;
}

static void fix_jmicron(uint8_t *m)
{
	le16(m + 4, 0);
	unsigned sum = 0;
	for (unsigned i = 0; i < 64; i++)
		sum += rd16(m + 2 * i);
	le16(m + 4, (0x10000u - (sum & 0xFFFF)) & 0xFFFF);
}

static int w_jmicron(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	unsigned mode;
	switch (s->level) {
	case RS_SPAN: mode = 3; break;
	case RS_RAID0: mode = 0; break;
	case RS_RAID1: mode = 1; break;
	case RS_RAID01: mode = 2; break;
	default: return -1;
	}
	if (s->disks > 8 || s->chunk < 2)
		return -1;
	uint8_t *m = img + (s->disk_sectors - 1) * 512;
	memcpy(m, "JM", 2);
	le16(m + 2, 0x0001);
	le32(m + 0x10, 0x1230 * (i + 1) << 4 | 1);
	le32(m + 0x14, s->data_offset);
	le32(m + 0x18, (uint32_t)(s->member_sectors >> 16));
	le16(m + 0x1C, s->member_sectors & 0xFFFF);
	const char *n = name_of(s);
	memset(m + 0x20, ' ', 16);
	memcpy(m + 0x20, n, strlen(n) < 16 ? strlen(n) : 16);
	m[0x30] = (uint8_t)mode;
	m[0x31] = (uint8_t)(lg2(s->chunk) - 1);
	for (unsigned k = 0; k < s->disks; k++)
		le32(m + 0x40 + 4 * k, 0x1230 * (k + 1) << 4);
	fix_jmicron(m);
	return 0;
}

static int w_lsi(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	unsigned type = s->level == RS_RAID0 ? 1 : s->level == RS_RAID1 ? 2 : s->level == RS_RAID10 ? 3 : 0;
	if (!type || s->disks > 4)
		return -1;
	uint8_t *m = img + (s->disk_sectors - 1) * 512;
	memcpy(m, "$XIDE$", 6);
	m[0x10] = (uint8_t)type;
	le16(m + 0x12, s->chunk);
	for (unsigned k = 0; k < s->disks; k++) {
		uint8_t *e = m + 0x20 + 16 * k;
		e[0] = type == 3 ? (uint8_t)(k % 2 | (k / 2) << 4) : 0;
		le16(e + 2, 0x1111 * (k + 1));
		e[6] = (uint8_t)k;
	}
	m[0x1F0] = (uint8_t)i;
	m[0x1F1] = 0;
	le32(m + 0x1F2, s->id);
	return 0;
}

static int w_hpt45x(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	uint8_t *m = img + (s->disk_sectors - 11) * 512;
	unsigned half = s->disks / 2;
	le32(m, 0x5A7816F3);
	le32(m + 4, s->level == RS_SPARE ? 0 : s->id);
	le32(m + 8, s->id + 1);
	m[0x13] = (uint8_t)lg2(s->chunk);
	switch (s->level) {
	case RS_SPAN: m[0x10] = 4; le32(m + 0xC, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID0: m[0x10] = 5; le32(m + 0xC, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID1: m[0x10] = 6; le32(m + 0xC, (uint32_t)s->member_sectors); break;
	case RS_RAID10:
		m[0x10] = 5;
		le32(m + 0xC, (uint32_t)(s->member_sectors * half));
		m[0x11] = (uint8_t)half;
		m[0x12] = (uint8_t)(i % half);
		m[0x20] = 6;
		m[0x21] = 2;
		m[0x22] = (uint8_t)(i / half);
		m[0x23] = (uint8_t)lg2(s->chunk);
		return 0;
	case RS_SPARE: break;
	default: return -1;
	}
	m[0x11] = (uint8_t)s->disks;
	m[0x12] = (uint8_t)i;
	return 0;
}

static int w_hpt37x(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	uint8_t *m = img + 9 * 512;
	unsigned half = s->disks / 2;
	le32(m + 0x20, 0x5A7816F0);
	le32(m + 0x24, s->level == RS_SPARE ? 0 : s->id);
	le32(m + 0x28, s->level == RS_SPARE ? 0 : s->id ^ 0x5555);
	m[0x31] = (uint8_t)lg2(s->chunk);
	m[0x30] = (uint8_t)s->disks;
	m[0x33] = (uint8_t)i;
	switch (s->level) {
	case RS_SPAN: m[0x32] = 3; le32(m + 0x34, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID0: m[0x32] = 0; le32(m + 0x34, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID1: m[0x32] = 1; le32(m + 0x34, (uint32_t)s->member_sectors); break;
	case RS_RAID10: /* stripes under a mirror: order = which stripe */
		m[0x32] = 2;
		m[0x30] = (uint8_t)half;
		m[0x33] = (uint8_t)(i % half);
		le32(m + 0x2C, i / half);
		le32(m + 0x34, (uint32_t)(s->member_sectors * half));
		break;
	case RS_RAID01:
		/* mirrors under a stripe: order = which mirror; the disks numbered across the array, so
		 * that only its first disk has data from sector 0 and the metadata at sector 9 lies in the
		 * set's sector 9 alone (numbered within each mirror, it would lie inside every mirror's
		 * data: in the stripe's chunk k of mirror k, on one leg only) */
		m[0x32] = 7;
		m[0x30] = 2;
		m[0x33] = (uint8_t)i;
		le32(m + 0x2C, i / 2);
		le32(m + 0x34, (uint32_t)s->member_sectors);
		break;
	case RS_SPARE: break;
	default: return -1;
	}
	return 0;
}

static void fix_sil1(uint8_t *m)
{
	unsigned sum = 0;
	for (unsigned i = 0; i < 0x13E / 2; i++)
		sum += rd16(m + 2 * i);
	le16(m + 0x13E, (0x10000u - (sum & 0xFFFF)) & 0xFFFF);
}

static int w_sil(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	uint8_t m[512] = { 0 };
	unsigned half = s->disks / 2;
	uint64_t array;
	le32(m + 0x60, 0x2F000000); /* what the chips write (blkid's magic); dmraid masks it to 0x3000000 */
	le32(m + 0x78, (uint32_t)s->disk_sectors);
	le16(m + 0x104, 0x3114);
	le16(m + 0x106, 0x1095);
	le16(m + 0x10A, 2);
	/* created 2009-03-14 15:26:53 */
	m[0x10C] = 53; m[0x10D] = 26; m[0x10E] = 15; m[0x10F] = 14; m[0x110] = 3; m[0x111] = 9;
	le16(m + 0x112, s->chunk);
	m[0x116] = (uint8_t)i;
	m[0x118] = m[0x119] = m[0x11A] = m[0x11B] = 0xFF;
	switch (s->level) {
	case RS_SPAN: m[0x117] = 255; array = s->member_sectors * s->disks; break;
	case RS_RAID0: m[0x117] = 0; m[0x118] = (uint8_t)s->disks; m[0x119] = 0; array = s->member_sectors * s->disks; break;
	case RS_RAID1: m[0x117] = 1; m[0x11A] = (uint8_t)s->disks; m[0x11B] = 0; array = s->member_sectors; break;
	case RS_RAID10:
		m[0x117] = 2;
		m[0x118] = (uint8_t)half;
		m[0x119] = (uint8_t)(i / half);
		m[0x11A] = 2;
		m[0x11B] = (uint8_t)(i / half);
		array = s->member_sectors * half;
		break;
	case RS_RAID5: m[0x117] = 16; m[0x118] = (uint8_t)s->disks; array = s->member_sectors * (s->disks - 1); break;
	case RS_SPARE: m[0x117] = 3; array = 0; break;
	default: return -1;
	}
	le32(m + 0x6C, (uint32_t)array);
	le32(m + 0x70, (uint32_t)(array >> 32));
	fix_sil1(m);
	for (unsigned k = 0; k < 4 && s->disk_sectors > 1 + 512 * k; k++) /* the copies the disk holds */
		memcpy(img + (s->disk_sectors - 1 - 512 * k) * 512, m, 512);
	return 0;
}

static void fix_pdc(uint8_t *m)
{
	uint32_t sum = 0;
	for (unsigned i = 0; i < 511; i++)
		sum += rd32(m + 4 * i);
	le32(m + 0x7FC, sum);
}

static int w_pdc(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	unsigned end = s->pdc_end ? s->pdc_end : 63;
	uint8_t *m = img + (s->disk_sectors - end) * 512;
	uint8_t *a = m + 0x200;
	memcpy(m, "Promise Technology, Inc.", 24);
	le32(m + 0x1C, s->id ^ 0xA5A5);
	le32(m + 0x24, s->id);
	a[5] = (uint8_t)i;
	le32(a + 8, s->id ^ 0xA5A5);
	le32(a + 0x10, s->data_offset);
	le32(a + 0x14, (uint32_t)s->member_sectors);
	a[0x20] = (uint8_t)s->disks;
	a[0x21] = (uint8_t)lg2(s->chunk);
	switch (s->level) {
	case RS_SPAN: a[0x1F] = 8; le32(a + 0x24, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID0: a[0x1F] = 0; a[0x22] = (uint8_t)s->disks; le32(a + 0x24, (uint32_t)(s->member_sectors * s->disks)); break;
	case RS_RAID1: a[0x1F] = 1; le32(a + 0x24, (uint32_t)s->member_sectors); break;
	case RS_RAID10: a[0x1F] = 1; a[0x22] = (uint8_t)(s->disks / 2); le32(a + 0x24, (uint32_t)(s->member_sectors * (s->disks / 2))); break;
	default: return -1;
	}
	le32(a + 0x2C, s->id);
	for (unsigned k = 0; k < s->disks && k < 8; k++) {
		le32(a + 0x34 + 12 * k + 4, s->id ^ 0xA5A5);
		le32(a + 0x34 + 12 * k + 8, k);
	}
	fix_pdc(m);
	return 0;
}

static void asr_sum(uint8_t *t)
{
	unsigned cnt = t[0xA] << 8 | t[0xB], sum = 0;
	for (unsigned k = 0; k < cnt * 64u; k++)
		sum += t[0x40 + k];
	be16(t + 0xE, sum & 0xFFFF);
}

static void asr_put(uint8_t *l, unsigned level, unsigned type, unsigned count, uint32_t magic, uint32_t id,
		    uint32_t cap, unsigned stripe, const char *name)
{
	be16(l, count);
	be32(l + 4, magic);
	l[8] = (uint8_t)level;
	l[9] = (uint8_t)type;
	be32(l + 0x10, id);
	be32(l + 0x18, cap);
	be16(l + 0x1C, stripe);
	if (name)
		memcpy(l + 0x30, name, strlen(name) < 16 ? strlen(name) : 16);
}

static int w_asr(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	if (s->level != RS_RAID0 && s->level != RS_RAID1 && s->level != RS_RAID10 && s->level != RS_SPARE)
		return -1;
	if (s->disks > 100)
		return -1;
	uint64_t n = s->disk_sectors, tbl = n - 17;
	uint8_t *rb = img + (n - 1) * 512, *t = img + tbl * 512;
	be32(rb, 0x37FC4D1E);
	rb[0x3F] = 8;
	be32(rb + 0x40, 0xD0000 + i);
	be32(rb + 0x100, 0x4450544D);
	be32(rb + 0x104, (uint32_t)tbl);
	be32(t, 0x900765C4);
	be32(t + 4, s->asr_version ? s->asr_version : 2);
	be16(t + 8, 127);
	be16(t + 0xC, 64);
	uint8_t *l = t + 0x40;
	unsigned c = 0;
	const char *name = name_of(s);
	if (s->level == RS_SPARE) {
		asr_put(l, 1, 0xFE, 1, 0xFFFFFFFF, 0, (uint32_t)n, 0, NULL);
		asr_put(l + 64, 0, 0xFE, 0, 0xD0000 + i, 0, (uint32_t)s->member_sectors, 0, NULL);
		c = 2;
	} else if (s->level == RS_RAID10) {
		unsigned half = s->disks / 2;
		asr_put(l, 3, 1, 2, s->id, 0, (uint32_t)(s->member_sectors * half), s->chunk, name);
		c = 1;
		for (unsigned h = 0; h < 2; h++) {
			asr_put(l + 64 * c++, 1, 0, half, s->id + 1 + h, 0, (uint32_t)(s->member_sectors * half), s->chunk, name);
			for (unsigned k = half; k-- > 0;) /* physical lines in reverse order of their ids */
				asr_put(l + 64 * c++, 0, 0, 0, 0xD0000 + h * half + k, k, (uint32_t)s->member_sectors,
					s->chunk, NULL);
		}
	} else {
		unsigned type = s->level == RS_RAID0 ? 0 : 1;
		uint64_t cap = type ? s->member_sectors : s->member_sectors * s->disks;
		asr_put(l, 1, type, s->disks, s->id, 0, (uint32_t)cap, s->chunk, name);
		c = 1;
		for (unsigned k = s->disks; k-- > 0;)
			asr_put(l + 64 * c++, 0, type, 0, 0xD0000 + k, k, (uint32_t)s->member_sectors, s->chunk, NULL);
	}
	be16(t + 0xA, c);
	asr_sum(t);
	return 0;
}

/* ---- isw (IMSM): the MPB's first sector at N-2, its other sectors just before it ---- */

uint64_t rs_isw_anchor(uint64_t disk_bytes)
{
	return disk_bytes - 1024;
}

static size_t isw_mpb_size(unsigned ndisks, const struct rs_vol *v, unsigned nvols)
{
	size_t sz = 0xD8 + 48u * ndisks;
	for (unsigned i = 0; i < nvols; i++)
		sz += 0x70 + 52 + 4u * (v[i].members - 1);
	return sz;
}

static void isw_put(uint8_t *disk, uint64_t disk_bytes, const uint8_t *mpb, size_t size)
{
	size_t k = (size + 511) / 512;
	uint64_t a = rs_isw_anchor(disk_bytes);
	memcpy(disk + a, mpb, 512);
	if (k > 1)
		memcpy(disk + a - (k - 1) * 512, mpb + 512, (k - 1) * 512);
}

static void isw_get(const uint8_t *disk, uint64_t disk_bytes, uint8_t *mpb, size_t k)
{
	uint64_t a = rs_isw_anchor(disk_bytes);
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

void rs_isw_fix(uint8_t *disk, uint64_t disk_bytes)
{
	uint64_t a = rs_isw_anchor(disk_bytes);
	size_t size = get_le32(disk + a + 0x24);
	size_t k = (size + 511) / 512;
	uint8_t *mpb = calloc(k, 512);
	isw_get(disk, disk_bytes, mpb, k);
	isw_sum(mpb, size);
	isw_put(disk, disk_bytes, mpb, size);
	free(mpb);
}

/* The MPB of a set (malloc'd, whole sectors; *size its mpb_size). spare: one disk's spare record. */
static uint8_t *isw_mpb(uint64_t disk_bytes, unsigned ndisks, uint32_t family, const struct rs_vol *v,
			unsigned nvols, const char *const *serials, bool spare, size_t *size)
{
	*size = isw_mpb_size(ndisks, v, nvols);
	uint8_t *mpb = calloc((*size + 511) / 512, 512);
	if (!mpb)
		return NULL;
	memcpy(mpb, spare ? "Intel Raid ISM Cfg Sig. 1.0.00" : "Intel Raid ISM Cfg Sig. 1.3.00", 30);
	put_le32(mpb + 0x24, (uint32_t)*size);
	put_le32(mpb + 0x28, family);
	put_le32(mpb + 0x2C, 1);
	put_le32(mpb + 0x40, spare ? 0 : family);
	mpb[0x38] = (uint8_t)ndisks;
	mpb[0x39] = (uint8_t)nvols;
	for (unsigned i = 0; i < ndisks; i++) {
		uint8_t *e = mpb + 0xD8 + 48 * i;
		if (serials && serials[i])
			memcpy(e, serials[i], strnlen(serials[i], 16));
		put_le32(e + 0x10, (uint32_t)(disk_bytes / 512));
		put_le32(e + 0x18, spare ? 0x01 | 0x08 : 0x02 | 0x08); /* spare or configured; usable */
	}
	size_t off = 0xD8 + 48u * ndisks;
	for (unsigned i = 0; i < nvols; i++) {
		uint8_t *d = mpb + off, *m = d + 0x70;
		memcpy(d, v[i].name, strnlen(v[i].name, 16));
		uint64_t vs = rs_vol_sectors(&v[i]);
		put_le32(d + 0x10, (uint32_t)vs);
		put_le32(d + 0x14, (uint32_t)(vs >> 32));
		put_le32(m, (uint32_t)v[i].lba0);
		put_le32(m + 4, (uint32_t)v[i].bpm);
		put_le32(m + 8, v[i].strip ? (uint32_t)(v[i].bpm / v[i].strip) : 0);
		put_le16(m + 0x0C, (uint16_t)v[i].strip);
		m[0x0F] = v[i].level == RS_RAID0 ? 0 : v[i].level == RS_RAID5 ? 5 : 1;
		m[0x10] = (uint8_t)v[i].members;
		m[0x11] = v[i].level == RS_RAID1 || v[i].level == RS_RAID01 ? 2 : 1;
		for (unsigned j = 0; j < v[i].members; j++)
			put_le32(m + 0x30 + 4 * j, j);
		off += 0x70 + 52 + 4u * (v[i].members - 1);
	}
	isw_sum(mpb, *size);
	return mpb;
}

void rs_isw(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, uint32_t family,
	    const struct rs_vol *v, unsigned nvols, const char *const *serials)
{
	size_t size;
	uint8_t *mpb = isw_mpb(disk_bytes, ndisks, family, v, nvols, serials, false, &size);
	for (unsigned i = 0; mpb && i < ndisks; i++)
		isw_put(disks[i], disk_bytes, mpb, size);
	free(mpb);
}

/* ---- ddf1: anchor at N-1, the primary header and its sections from N-32, big-endian (or not) ---- */

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

void rs_ddf1_fix(uint8_t *disk, uint64_t disk_bytes)
{
	uint64_t n = disk_bytes / 512;
	uint8_t *anchor = disk + (n - 1) * 512, *p = disk + (n - RS_DDF1_PRIMARY) * 512;
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

static void ddf_record(bool le, uint8_t *c, const uint8_t *guid, const struct rs_vol *v, unsigned first,
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
	p64(le, c + 0x50, rs_vol_sectors(v));
	for (unsigned j = 0; j < MPE; j++) {
		p32(le, c + 512 + 4 * j, j < count ? 0x1000 + first + j : 0xFFFFFFFF);
		p64(le, c + 512 + 4 * MPE + 8 * j, j < count ? v->lba0 : ~0ull);
	}
}

/* the primary header and its sections, the same on every disk but for the disk data record */
static void ddf1_area(uint8_t *area, uint64_t n, unsigned ndisks, const struct rs_vol *v, unsigned nvols, bool le)
{
	memset(area, 0, RS_DDF1_PRIMARY * 512);
	uint8_t *h = area;
	p32(le, h, 0xDE11DE11);
	memcpy(h + 8, "partmap-test-ddf-guid-00", 24);
	memcpy(h + 0x20, "02.00.00", 8);
	p32(le, h + 0x28, 1);
	p64(le, h + 0x60, n - RS_DDF1_PRIMARY);
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
		if (v[i].level == RS_RAID01) {
			for (unsigned s = 0; s < v[i].members / 2 && rec < P_NREC; s++)
				ddf_record(le, area + (P_CR + rec++ * P_RECLEN) * 512, guid, &v[i], 2 * s, 2, 1,
					   v[i].members / 2, s);
		} else if (rec < P_NREC) {
			unsigned lv = v[i].level == RS_RAID0 ? 0 : v[i].level == RS_RAID1 ? 1 : v[i].level == RS_RAID5 ? 5 : 0x0F;
			ddf_record(le, area + (P_CR + rec++ * P_RECLEN) * 512, guid, &v[i], 0, v[i].members, lv, 1, 0);
		}
	}
	for (; rec < P_NREC; rec++)
		memset(area + (P_CR + rec * P_RECLEN) * 512, 0xFF, 4);
	p32(le, area + P_DD * 512, 0x33333333);
}

/* disk i's copy: the area with its own disk data record, the anchor, the CRCs */
static void ddf1_put(const uint8_t *area, unsigned i, uint8_t *disk, uint64_t disk_bytes, bool le)
{
	uint64_t n = disk_bytes / 512;
	uint8_t *p = disk + (n - RS_DDF1_PRIMARY) * 512, *dd = p + P_DD * 512;
	memcpy(p, area, RS_DDF1_PRIMARY * 512);
	memcpy(dd + 8, area + P_PD * 512 + 0x40 + 64 * i, 24);
	p32(le, dd + 0x20, 0x1000 + i);
	uint8_t *anchor = disk + (n - 1) * 512;
	memcpy(anchor, area, 512);
	anchor[0x70] = 0;
	rs_ddf1_fix(disk, disk_bytes);
}

void rs_ddf1(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, const struct rs_vol *v, unsigned nvols,
	     bool le)
{
	uint8_t area[RS_DDF1_PRIMARY * 512];
	ddf1_area(area, disk_bytes / 512, ndisks, v, nvols, le);
	for (unsigned i = 0; i < ndisks; i++)
		ddf1_put(area, i, disks[i], disk_bytes, le);
}

/* one volume on all the set's disks, from a spec */
static struct rs_vol vol_of(const struct rs_spec *s)
{
	struct rs_vol v = { .level = s->level, .members = s->disks, .strip = s->chunk, .lba0 = s->data_offset,
			    .bpm = s->member_sectors, .rlq = s->rlq ? s->rlq : 3 };
	snprintf(v.name, sizeof(v.name), "%s", s->name ? s->name : "Volume0");
	return v;
}

static int w_isw(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	if (s->level == RS_SPAN || s->level == RS_RAID10 || (s->level == RS_RAID01 && s->disks != 4))
		return -1;
	if ((s->level == RS_RAID0 || s->level == RS_RAID5 || s->level == RS_RAID01) && !s->chunk)
		return -1;
	bool spare = s->level == RS_SPARE;
	struct rs_vol v = vol_of(s);
	if (!spare && s->data_offset + s->member_sectors + 64 > s->disk_sectors)
		return -1;
	const char *one[1] = { s->serials ? s->serials[i] : NULL };
	size_t size;
	uint8_t *mpb = isw_mpb(s->disk_sectors * 512, spare ? 1 : s->disks, s->id, &v, spare ? 0 : 1,
			       spare ? one : s->serials, spare, &size);
	if (!mpb)
		return -1;
	isw_put(img, s->disk_sectors * 512, mpb, size);
	free(mpb);
	return 0;
}

static int w_ddf1(const struct rs_spec *s, unsigned i, uint8_t *img)
{
	if (s->level == RS_RAID10 || s->level == RS_SPARE || s->disks > 16 || (s->level == RS_RAID01 && s->disks % 2))
		return -1;
	if ((s->level == RS_RAID0 || s->level == RS_RAID5 || s->level == RS_RAID01) && !s->chunk)
		return -1;
	if (s->data_offset + s->member_sectors + RS_DDF1_PRIMARY > s->disk_sectors)
		return -1;
	struct rs_vol v = vol_of(s);
	uint8_t area[RS_DDF1_PRIMARY * 512];
	ddf1_area(area, s->disk_sectors, s->disks, &v, 1, s->little_endian);
	ddf1_put(area, i, img, s->disk_sectors * 512, s->little_endian);
	return 0;
}

int rs_write(const struct rs_spec *s, unsigned index, uint8_t *img)
{
	bool vols = !strcmp(s->fmt, "isw") || !strcmp(s->fmt, "ddf1"); /* chunk 0: RAID1, span */
	if (!s->disks || index >= s->disks || s->disk_sectors < 128 || (!s->chunk && !vols))
		return -1;
	if ((s->level == RS_RAID10 || s->level == RS_RAID01) && (s->disks < 4 || s->disks % 2))
		return -1;
	static const struct { const char *name; int (*w)(const struct rs_spec *, unsigned, uint8_t *); } f[] = {
		{ "asr", w_asr }, { "hpt37x", w_hpt37x }, { "hpt45x", w_hpt45x }, { "jmicron", w_jmicron },
		{ "lsi", w_lsi }, { "nvidia", w_nvidia }, { "pdc", w_pdc }, { "sil", w_sil }, { "via", w_via },
		{ "isw", w_isw }, { "ddf1", w_ddf1 },
	};
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
		if (!strcmp(f[k].name, s->fmt))
			return f[k].w(s, index, img);
	return -1;
}

uint64_t rs_meta(const char *fmt, uint64_t n)
{
	if (!strcmp(fmt, "nvidia"))
		return (n - 2) * 512;
	if (!strcmp(fmt, "hpt45x"))
		return (n - 11) * 512;
	if (!strcmp(fmt, "hpt37x"))
		return 9 * 512;
	if (!strcmp(fmt, "pdc"))
		return (n - 63) * 512;
	if (!strcmp(fmt, "isw"))
		return rs_isw_anchor(n * 512);
	return (n - 1) * 512; /* asr (reserved block), jmicron, lsi, sil (first copy), via */
}

void rs_fix(const char *fmt, uint8_t *img, uint64_t n)
{
	uint8_t *m = img + rs_meta(fmt, n);
	if (!strcmp(fmt, "nvidia"))
		fix_nvidia(m);
	else if (!strcmp(fmt, "via"))
		fix_via(m);
	else if (!strcmp(fmt, "jmicron"))
		fix_jmicron(m);
	else if (!strcmp(fmt, "sil"))
		fix_sil1(m);
	else if (!strcmp(fmt, "pdc"))
		fix_pdc(m);
	else if (!strcmp(fmt, "isw"))
		rs_isw_fix(img, n * 512);
	else if (!strcmp(fmt, "ddf1"))
		rs_ddf1_fix(img, n * 512);
	else if (!strcmp(fmt, "asr")) {
		uint32_t tbl = (uint32_t)m[0x104] << 24 | m[0x105] << 16 | m[0x106] << 8 | m[0x107];
		if (tbl < n)
			asr_sum(img + (uint64_t)tbl * 512);
	}
}

void rs_geometry(const struct rs_spec *s, unsigned i, uint64_t *offset, uint64_t *sectors)
{
	uint64_t n = s->disk_sectors, m = s->member_sectors;
	bool flat = s->level == RS_SPAN || s->level == RS_SPARE || s->level == RS_RAID5;
	unsigned disk = s->level == RS_RAID10 ? i % (s->disks / 2) : i; /* hpt37x's disk number */
	*offset = 0;
	if (!strcmp(s->fmt, "nvidia")) {
		*sectors = n - 2;
	} else if (!strcmp(s->fmt, "via") || !strcmp(s->fmt, "lsi")) {
		*sectors = n - 1;
	} else if (!strcmp(s->fmt, "jmicron") || !strcmp(s->fmt, "isw") || !strcmp(s->fmt, "ddf1")) {
		*offset = s->data_offset;
		*sectors = m;
	} else if (!strcmp(s->fmt, "hpt45x")) {
		*sectors = flat ? n - 11 : m;
	} else if (!strcmp(s->fmt, "hpt37x")) {
		*offset = disk ? 10 : 0; /* every disk but a set's first */
		*sectors = (flat ? n : m) - *offset;
	} else if (!strcmp(s->fmt, "sil")) {
		*sectors = flat ? n - 3 * 512 - (n & 1 ? 1 : 2) : m;
	} else if (!strcmp(s->fmt, "pdc")) {
		*sectors = s->level == RS_SPAN ? n - (s->pdc_end ? s->pdc_end : 63) : m;
	} else {
		*sectors = m; /* asr */
	}
}

/* the smallest member of members [first, first + count) */
static uint64_t smallest(const struct rs_spec *s, unsigned first, unsigned count)
{
	uint64_t min = UINT64_MAX, off, len;
	for (unsigned k = first; k < first + count; k++) {
		rs_geometry(s, k, &off, &len);
		if (len < min)
			min = len;
	}
	return min;
}

/* isw and ddf1 have RAID5 data laid out here (nvidia's and SiI's RAID5: metadata only) */
static bool has_raid5(const struct rs_spec *s)
{
	return !strcmp(s->fmt, "isw") || !strcmp(s->fmt, "ddf1");
}

uint64_t rs_size(const struct rs_spec *s)
{
	uint64_t off, len, sum = 0, c = s->chunk;
	unsigned h = s->disks / 2;
	if (!c && s->level != RS_SPAN && s->level != RS_RAID1)
		return 0;
	switch (s->level) {
	case RS_SPAN:
		for (unsigned k = 0; k < s->disks; k++) {
			rs_geometry(s, k, &off, &len);
			sum += len;
		}
		return sum;
	case RS_RAID0: return smallest(s, 0, s->disks) / c * c * s->disks;
	case RS_RAID1: return smallest(s, 0, s->disks);
	case RS_RAID10: {
		uint64_t a = smallest(s, 0, h) / c * c * h, b = smallest(s, h, h) / c * c * h;
		return a < b ? a : b;
	}
	case RS_RAID01: {
		uint64_t min = UINT64_MAX;
		for (unsigned k = 0; k < h; k++) {
			uint64_t m = smallest(s, 2 * k, 2);
			min = m < min ? m : min;
		}
		return min / c * c * h;
	}
	case RS_RAID5: return has_raid5(s) && s->disks > 1 ? smallest(s, 0, s->disks) / c * c * (s->disks - 1) : 0;
	default: return 0;
	}
}

/* member `pos` of `count` striped in chunks of c sectors over the stream src (size sectors) */
static void stripe(const uint8_t *src, uint64_t size, uint64_t c, unsigned pos, unsigned count, uint8_t *dst)
{
	for (uint64_t k = pos; k * c < size; k += count)
		memcpy(dst + (k / count) * c * 512, src + k * c * 512, c * 512);
}

/* RAID5 member i of n: each row of n-1 data chunks and their parity, the parity on disk n-1-row%n;
 * the data chunks from the disk after the parity's on (left symmetric) or from disk 0 (asymmetric) */
static void raid5_member(const uint8_t *src, uint64_t size, uint64_t c, unsigned i, unsigned n, bool sym,
			 uint8_t *dst)
{
	for (uint64_t row = 0; row * (n - 1) * c < size; row++) {
		unsigned pdisk = (unsigned)(n - 1 - row % n);
		uint8_t *at = dst + row * c * 512;
		const uint8_t *data = src + row * (n - 1) * c * 512;
		if (i == pdisk) {
			memset(at, 0, c * 512);
			for (unsigned k = 0; k < n - 1; k++)
				for (size_t b = 0; b < c * 512; b++)
					at[b] ^= data[k * c * 512 + b];
		} else {
			unsigned k = sym ? (i + n - pdisk - 1) % n : (i < pdisk ? i : i - 1);
			memcpy(at, data + k * c * 512, c * 512);
		}
	}
}

int rs_fill(const struct rs_spec *s, unsigned i, const uint8_t *src, uint8_t *img)
{
	uint64_t off, len, size = rs_size(s), c = s->chunk;
	unsigned h = s->disks / 2;
	if (!size)
		return -1;
	rs_geometry(s, i, &off, &len);
	uint8_t *dst = img + off * 512;
	switch (s->level) {
	case RS_SPAN: {
		uint64_t at = 0, o, l;
		for (unsigned k = 0; k < i; k++) {
			rs_geometry(s, k, &o, &l);
			at += l;
		}
		memcpy(dst, src + at * 512, len * 512);
		return 0;
	}
	case RS_RAID0: stripe(src, size, c, i, s->disks, dst); return 0;
	case RS_RAID1: memcpy(dst, src, size * 512); return 0;
	case RS_RAID10: stripe(src, size, c, i % h, h, dst); return 0;
	case RS_RAID01: stripe(src, size, c, i / 2, h, dst); return 0; /* this mirror's stream */
	case RS_RAID5:
		raid5_member(src, size, c, i, s->disks, !strcmp(s->fmt, "ddf1") && (s->rlq ? s->rlq : 3) == 3, dst);
		return 0;
	default: return -1;
	}
}

/* the spec of one member of a volume (for its size and layout: isw and ddf1 lay data out alike) */
static struct rs_spec spec_of(const struct rs_vol *v)
{
	return (struct rs_spec){ .fmt = "ddf1", .level = v->level, .disks = v->members, .chunk = v->strip,
				 .member_sectors = v->bpm, .data_offset = (uint32_t)v->lba0, .rlq = v->rlq ? v->rlq : 2 };
}

uint64_t rs_vol_sectors(const struct rs_vol *v)
{
	struct rs_spec s = spec_of(v);
	return rs_size(&s);
}

void rs_scatter(const struct rs_vol *v, const uint8_t *virt, uint8_t *const *disks)
{
	struct rs_spec s = spec_of(v);
	for (unsigned i = 0; i < v->members; i++)
		rs_fill(&s, i, virt, disks[i]);
}

int rs_level_by_name(const char *name)
{
	static const char *const names[] = { [RS_SPAN] = "span", [RS_RAID0] = "raid0", [RS_RAID1] = "raid1",
					     [RS_RAID10] = "raid10", [RS_RAID01] = "raid01", [RS_RAID5] = "raid5",
					     [RS_SPARE] = "spare" };
	for (int k = 0; k < (int)(sizeof(names) / sizeof(names[0])); k++)
		if (!strcmp(names[k], name))
			return k;
	return -1;
}
