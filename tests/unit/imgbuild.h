/* Builders for partition tables in memory, for the unit tests and the fuzz seeds. */
#ifndef PARTMAP_IMGBUILD_H
#define PARTMAP_IMGBUILD_H

#include <stddef.h>
#include <stdint.h>

struct img {
	uint8_t *data;
	uint64_t size;
};

struct img img_new(uint64_t size);
void img_free(struct img *im);
/* A DOS entry in the table of the sector at byte offset `at` (slot 0..3); also sets 0x55AA. */
void img_dos(struct img *im, uint64_t at, int slot, uint8_t boot, uint8_t type, uint32_t start, uint32_t size);

struct gpt_ent {
	unsigned index;            /* 0-based entry slot */
	uint64_t first, last;      /* LBAs */
	uint8_t type;              /* non-zero: a type GUID made from this byte */
	const char *name;
};
/* A complete GPT (protective MBR unless no_pmbr, primary + backup) with nentries slots of esize. */
void img_gpt(struct img *im, unsigned ssz, const struct gpt_ent *e, size_t n, uint32_t nentries, int no_pmbr);
/* Recompute the header CRC of the GPT header at LBA lba (after a test modified it). */
void img_gpt_fix_header_crc(struct img *im, unsigned ssz, uint64_t lba);
void img_gpt_fix_array_crc(struct img *im, unsigned ssz, uint64_t hdr_lba);

void img_sun_fix_csum(uint8_t *label);
void img_sgi_fix_csum(uint8_t *label);

#endif
