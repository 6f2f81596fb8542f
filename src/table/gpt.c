/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GUID partition table (UEFI spec, chapter 5): protective or hybrid MBR, primary header at LBA 1,
 * backup header at the last LBA, both CRC-checked. Entry i is partition i+1, as the kernel numbers it. */
#include "reader.h"
#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT_HEADER_MIN 92
#define GPT_ENTRY_MIN 128
#define GPT_ENTRY_MAX 4096
#define GPT_ARRAY_MAX (64u << 20) /* bigger entry arrays are taken as damage, not as tables */

struct gpt_header {
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t nentries, esize, array_crc;
};

/* 1 valid, 0 not (why says so), <0 error */
static int read_header(struct pm_ctx *c, uint64_t lba, struct gpt_header *h, uint8_t **array, char *why,
		       size_t whylen, bool *signature)
{
	uint64_t lastlba = c->disk->size / c->ssz - 1;
	_cleanup_free_ uint8_t *sec = malloc(c->ssz);
	uint32_t hsize, crc;
	uint64_t array_len;
	int r;

	*signature = false;
	*array = NULL;
	if (!sec)
		return -ENOMEM;
	if (lba > lastlba || lba == 0) {
		snprintf(why, whylen, "header location %llu is outside the device", (unsigned long long)lba);
		return 0;
	}
	r = pm_disk_read(c->disk, lba * c->ssz, sec, c->ssz);
	if (r < 0)
		return r;
	if (memcmp(sec, "EFI PART", 8)) {
		snprintf(why, whylen, "no signature at LBA %llu", (unsigned long long)lba);
		return 0;
	}
	*signature = true;
	hsize = get_le32(sec + 12);
	if (hsize < GPT_HEADER_MIN || hsize > c->ssz) {
		snprintf(why, whylen, "header size %u is invalid", hsize);
		return 0;
	}
	crc = get_le32(sec + 16);
	put_le32(sec + 16, 0);
	if (pm_crc32(0, sec, hsize) != crc) {
		snprintf(why, whylen, "header CRC mismatch at LBA %llu", (unsigned long long)lba);
		return 0;
	}
	h->my_lba = get_le64(sec + 24);
	h->alt_lba = get_le64(sec + 32);
	h->first_usable = get_le64(sec + 40);
	h->last_usable = get_le64(sec + 48);
	h->entries_lba = get_le64(sec + 72);
	h->nentries = get_le32(sec + 80);
	h->esize = get_le32(sec + 84);
	h->array_crc = get_le32(sec + 88);
	if (h->my_lba != lba) {
		snprintf(why, whylen, "header at LBA %llu says it is at %llu", (unsigned long long)lba,
			 (unsigned long long)h->my_lba);
		return 0;
	}
	if (h->last_usable < h->first_usable) {
		snprintf(why, whylen, "usable range ends (%llu) before it starts (%llu)",
			 (unsigned long long)h->last_usable, (unsigned long long)h->first_usable);
		return 0;
	}
	if (h->esize < GPT_ENTRY_MIN || h->esize > GPT_ENTRY_MAX || (h->esize & (h->esize - 1))) {
		snprintf(why, whylen, "entry size %u is invalid", h->esize);
		return 0;
	}
	array_len = (uint64_t)h->nentries * h->esize;
	if (h->nentries == 0 || array_len > GPT_ARRAY_MAX) {
		snprintf(why, whylen, "entry count %u is invalid", h->nentries);
		return 0;
	}
	if (h->entries_lba > lastlba || array_len > c->disk->size - h->entries_lba * c->ssz) {
		snprintf(why, whylen, "entry array (LBA %llu, %llu bytes) runs past the end of the device",
			 (unsigned long long)h->entries_lba, (unsigned long long)array_len);
		return 0;
	}
	*array = malloc(array_len);
	if (!*array)
		return -ENOMEM;
	r = pm_disk_read(c->disk, h->entries_lba * c->ssz, *array, array_len);
	if (r < 0) {
		free(*array);
		*array = NULL;
		return r;
	}
	if (pm_crc32(0, *array, array_len) != h->array_crc) {
		snprintf(why, whylen, "entry array CRC mismatch");
		free(*array);
		*array = NULL;
		return 0;
	}
	return 1;
}


/* 0 none, 1 protective, 2 hybrid */
static int pmbr_kind(const uint8_t *mbr)
{
	bool ee = false, other = false;

	if (mbr[510] != 0x55 || mbr[511] != 0xaa)
		return 0;
	for (int i = 0; i < 4; i++) {
		uint8_t type = mbr[0x1be + 16 * i + 4];
		if (type == 0xee)
			ee = true;
		else if (type)
			other = true;
	}
	return ee ? (other ? 2 : 1) : 0;
}

int pm_read_gpt(struct pm_ctx *c)
{
	uint64_t lastlba, ss = c->ssz / 512;
	struct gpt_header h;
	_cleanup_free_ uint8_t *array = NULL;
	uint8_t mbr[512];
	char why1[160] = "", why2[160] = "";
	bool sig1 = false, sig2 = false;
	int pmbr, r;

	if (c->disk->size < 2ull * c->ssz)
		return PM_NOTFOUND;
	lastlba = c->disk->size / c->ssz - 1;
	r = pm_disk_read512(c->disk, 0, mbr);
	if (r < 0)
		return r;
	pmbr = pmbr_kind(mbr);
	if (!pmbr && !c->opts->force_gpt) {
		uint8_t sig[8];
		if (pm_disk_read(c->disk, c->ssz, sig, 8) == 0 && !memcmp(sig, "EFI PART", 8))
			pm_warn(c, "a GPT header is present but the protective MBR is missing: ignored (use -g to read it)");
		return PM_NOTFOUND;
	}

	r = read_header(c, 1, &h, &array, why1, sizeof(why1), &sig1);
	if (r < 0)
		return r;
	if (r == 1) {
		/* the backup should sit on the last LBA; on a grown image it does not */
		if (h.alt_lba != lastlba)
			pm_warn(c, "the backup GPT header is at LBA %llu, not at the end of the device (LBA %llu): image grown or truncated?",
				(unsigned long long)h.alt_lba, (unsigned long long)lastlba);
	} else {
		uint64_t alt = lastlba;
		uint8_t *a2 = NULL;

		r = read_header(c, alt, &h, &a2, why2, sizeof(why2), &sig2);
		if (r < 0)
			return r;
		if (r == 1) {
			array = a2;
			pm_warn(c, "primary GPT header unusable (%s): using the backup at LBA %llu", why1,
				(unsigned long long)alt);
		} else if (!sig1 && !sig2 && pmbr != 1) {
			/* no GPT here at all: a hybrid-looking MBR is just a DOS table with a 0xEE slot */
			return PM_NOTFOUND;
		} else {
			pm_set_error(c, "GPT damaged: primary header: %s; backup header: %s", why1, why2);
			return -EBADMSG;
		}
	}
	if (h.last_usable > lastlba)
		pm_warn(c, "the GPT's usable range ends at LBA %llu, past the end of the device (LBA %llu): image truncated?",
			(unsigned long long)h.last_usable, (unsigned long long)lastlba);

	for (uint32_t i = 0; i < h.nentries; i++) {
		const uint8_t *e = array + (size_t)i * h.esize;
		uint64_t first = get_le64(e + 32), last = get_le64(e + 40);
		struct pm_part *p;

		if (pm_guid_is_null(e))
			continue;
		if (last < first) {
			pm_warn(c, "GPT entry %u ends (LBA %llu) before it starts (LBA %llu): ignored", i + 1,
				(unsigned long long)last, (unsigned long long)first);
			continue;
		}
		p = pm_put(c, i + 1, mul_sat(first, ss), mul_sat(add_sat(last - first, 1), ss), PM_PRIMARY);
		if (!p)
			return c->err;
		p->has_guid = true;
		memcpy(p->type_guid, e, 16);
		memcpy(p->uuid, e + 16, 16);
		pm_utf16_to_utf8(e + 56, 2 * ((h.esize - 56) / 2 < 36 ? (h.esize - 56) / 2 : 36), false, p->label,
				 sizeof(p->label));
		if (first < h.first_usable || last > h.last_usable) {
			p->flags |= PM_PF_OUTSIDE;
			pm_warn(c, "GPT entry %u (LBA %llu-%llu) lies outside the usable range (LBA %llu-%llu)", i + 1,
				(unsigned long long)first, (unsigned long long)last,
				(unsigned long long)h.first_usable, (unsigned long long)h.last_usable);
		}
	}
	return PM_FOUND;
}

unsigned pm_gpt_sector_size_hint(struct pm_disk *d)
{
	uint8_t sig[8];

	if (pm_disk_read(d, 512, sig, 8) == 0 && !memcmp(sig, "EFI PART", 8))
		return 512;
	if (pm_disk_read(d, 4096, sig, 8) == 0 && !memcmp(sig, "EFI PART", 8))
		return 4096;
	return 0;
}
