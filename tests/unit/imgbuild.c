#include "imgbuild.h"
#include "ptable.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct img img_new(uint64_t size)
{
	struct img im = { calloc(1, size ? size : 1), size };
	if (!im.data)
		abort();
	return im;
}

void img_free(struct img *im)
{
	free(im->data);
	im->data = NULL;
}

void img_dos(struct img *im, uint64_t at, int slot, uint8_t boot, uint8_t type, uint32_t start, uint32_t size)
{
	uint8_t *s = im->data + at;
	uint8_t *e = s + 0x1be + 16 * slot;

	e[0] = boot;
	e[4] = type;
	put_le32(e + 8, start);
	put_le32(e + 12, size);
	s[510] = 0x55;
	s[511] = 0xaa;
}

static void write_header(struct img *im, unsigned ssz, uint64_t my, uint64_t alt, uint64_t array_lba,
			 uint32_t nentries, uint32_t array_crc)
{
	uint64_t lastlba = im->size / ssz - 1;
	uint64_t array_sectors = ((uint64_t)nentries * 128 + ssz - 1) / ssz;
	uint8_t *h = im->data + my * ssz;

	memset(h, 0, ssz);
	memcpy(h, "EFI PART", 8);
	put_le32(h + 8, 0x00010000);
	put_le32(h + 12, 92);
	put_le64(h + 24, my);
	put_le64(h + 32, alt);
	put_le64(h + 40, 2 + array_sectors);
	put_le64(h + 48, lastlba - 1 - array_sectors);
	memset(h + 56, 0x42, 16);
	put_le64(h + 72, array_lba);
	put_le32(h + 80, nentries);
	put_le32(h + 84, 128);
	put_le32(h + 88, array_crc);
	put_le32(h + 16, pm_crc32(0, h, 92));
}

void img_gpt(struct img *im, unsigned ssz, const struct gpt_ent *e, size_t n, uint32_t nentries, int no_pmbr)
{
	uint64_t lastlba = im->size / ssz - 1;
	uint64_t array_sectors = ((uint64_t)nentries * 128 + ssz - 1) / ssz;
	size_t alen = (size_t)nentries * 128;
	uint8_t *a = calloc(1, alen);
	uint32_t crc;

	if (!a)
		abort();
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = a + (size_t)e[i].index * 128;
		if (e[i].type)
			memset(p, e[i].type, 16);
		memset(p + 16, (int)(0x10 + i), 16);
		put_le64(p + 32, e[i].first);
		put_le64(p + 40, e[i].last);
		if (e[i].name)
			for (size_t k = 0; e[i].name[k] && k < 36; k++)
				put_le16(p + 56 + 2 * k, (uint8_t)e[i].name[k]);
	}
	crc = pm_crc32(0, a, alen);
	memcpy(im->data + 2 * ssz, a, alen);
	memcpy(im->data + (lastlba - array_sectors) * ssz, a, alen);
	write_header(im, ssz, 1, lastlba, 2, nentries, crc);
	write_header(im, ssz, lastlba, 1, lastlba - array_sectors, nentries, crc);
	if (!no_pmbr) {
		uint64_t sz = im->size / ssz - 1;
		img_dos(im, 0, 0, 0, 0xee, 1, sz > 0xffffffff ? 0xffffffff : (uint32_t)sz);
	}
	free(a);
}

void img_gpt_fix_header_crc(struct img *im, unsigned ssz, uint64_t lba)
{
	uint8_t *h = im->data + lba * ssz;
	put_le32(h + 16, 0);
	put_le32(h + 16, pm_crc32(0, h, get_le32(h + 12) <= ssz ? get_le32(h + 12) : 92));
}

void img_gpt_fix_array_crc(struct img *im, unsigned ssz, uint64_t hdr_lba)
{
	uint8_t *h = im->data + hdr_lba * ssz;
	uint64_t alba = get_le64(h + 72);
	put_le32(h + 88, pm_crc32(0, im->data + alba * ssz, (size_t)get_le32(h + 80) * get_le32(h + 84)));
	img_gpt_fix_header_crc(im, ssz, hdr_lba);
}

void img_sun_fix_csum(uint8_t *l)
{
	uint16_t c = 0;
	put_be16(l + 510, 0);
	for (int i = 0; i < 510; i += 2)
		c ^= get_be16(l + i);
	put_be16(l + 510, c);
}

void img_sgi_fix_csum(uint8_t *l)
{
	uint32_t s = 0;
	put_be32(l + 504, 0);
	for (int i = 0; i < 512; i += 4)
		s += get_be32(l + i);
	put_be32(l + 504, (uint32_t)(0 - s));
}
