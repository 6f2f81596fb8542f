/* Synthesised BIOS RAID members (see raidsyn.h). Field offsets: ../shared/reference/dmraid.md §1. */
#include "raidsyn.h"

#include <string.h>

static void le16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { le16(p, v & 0xFFFF); le16(p + 2, v >> 16); }
static void be16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v) { be16(p, v >> 16); be16(p + 2, v & 0xFFFF); }
static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned rd16(const uint8_t *p) { return (unsigned)(p[0] | p[1] << 8); }

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
	case RS_RAID01: /* mirrors under a stripe: order = which mirror */
		m[0x32] = 7;
		m[0x30] = 2;
		m[0x33] = (uint8_t)(i % 2);
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

int rs_write(const struct rs_spec *s, unsigned index, uint8_t *img)
{
	if (!s->disks || index >= s->disks || s->disk_sectors < 128 || !s->chunk)
		return -1;
	if ((s->level == RS_RAID10 || s->level == RS_RAID01) && (s->disks < 4 || s->disks % 2))
		return -1;
	static const struct { const char *name; int (*w)(const struct rs_spec *, unsigned, uint8_t *); } f[] = {
		{ "asr", w_asr }, { "hpt37x", w_hpt37x }, { "hpt45x", w_hpt45x }, { "jmicron", w_jmicron },
		{ "lsi", w_lsi }, { "nvidia", w_nvidia }, { "pdc", w_pdc }, { "sil", w_sil }, { "via", w_via },
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
	unsigned disk = s->level == RS_RAID10 ? i % (s->disks / 2) : s->level == RS_RAID01 ? i % 2 : i;
	*offset = 0;
	if (!strcmp(s->fmt, "nvidia")) {
		*sectors = n - 2;
	} else if (!strcmp(s->fmt, "via") || !strcmp(s->fmt, "lsi")) {
		*sectors = n - 1;
	} else if (!strcmp(s->fmt, "jmicron")) {
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

uint64_t rs_size(const struct rs_spec *s)
{
	uint64_t off, len, sum = 0, c = s->chunk;
	unsigned h = s->disks / 2;
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
	default: return 0;
	}
}

/* member `pos` of `count` striped in chunks of c sectors over the stream src (size sectors) */
static void stripe(const uint8_t *src, uint64_t size, uint64_t c, unsigned pos, unsigned count, uint8_t *dst)
{
	for (uint64_t k = pos; k * c < size; k += count)
		memcpy(dst + (k / count) * c * 512, src + k * c * 512, c * 512);
}

int rs_fill(const struct rs_spec *s, unsigned i, const uint8_t *src, uint8_t *img)
{
	uint64_t off, len, size = rs_size(s), c = s->chunk;
	unsigned h = s->disks / 2;
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
	case RS_RAID01: {
		/* this mirror's stream: chunk k of the set goes to mirror k % h */
		for (uint64_t k = i / 2; k * c < size; k += h)
			memcpy(dst + (k / h) * c * 512, src + k * c * 512, c * 512);
		return 0;
	}
	default: return -1;
	}
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
