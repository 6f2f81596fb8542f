/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as the UEFI GPT headers use it. */
#include "ptable.h"

static uint32_t table[256];
static int table_ready;

static void make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	__atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

/* pm_crc32(0, buf, len) gives the standard CRC-32 of buf; chain calls by passing the result back. */
uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* the table is a constant function of nothing: computing it twice is harmless */
	if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
		make_table();
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
