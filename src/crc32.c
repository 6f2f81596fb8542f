/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as the UEFI GPT headers use it, and CRC-32C
 * (Castagnoli, reflected polynomial 0x82F63B78) as the VHDX headers use it. */
#include "ptable.h"
#include "image/format.h"

struct crc_table {
	uint32_t poly;
	int ready;
	uint32_t t[256];
};

static struct crc_table ieee = { .poly = 0xEDB88320u }, castagnoli = { .poly = 0x82F63B78u };

static uint32_t crc_update(struct crc_table *tab, uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* the table is a constant function of the polynomial: computing it twice is harmless */
	if (!__atomic_load_n(&tab->ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? tab->poly ^ (c >> 1) : c >> 1;
			tab->t[i] = c;
		}
		__atomic_store_n(&tab->ready, 1, __ATOMIC_RELEASE);
	}
	crc = ~crc;
	while (len--)
		crc = tab->t[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* pm_crc32(0, buf, len) gives the standard CRC-32 of buf; chain calls by passing the result back. */
uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len)
{
	return crc_update(&ieee, crc, buf, len);
}

uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc_update(&castagnoli, crc, buf, len);
}
