/* libFuzzer target for one partition-table reader (FUZZ_TYPE), built once per reader.
 * Input: one option byte (bits 0-1: sector size auto/512/4096; bit 2: -g), then the disk image.
 * Checks the engine's promises: no crash, no partition outside the device, numbers sorted and unique. */
#include <stdint.h>
#include <stdlib.h>

#include "ptable.h"

#ifndef FUZZ_TYPE
#define FUZZ_TYPE "dos"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[4] = { 0, 512, 4096, 0 };
	struct pm_opts o = { .only = FUZZ_TYPE };
	struct pm_disk d;
	struct pm_table t;

	if (size < 1)
		return 0;
	o.sector_size = sizes[data[0] & 3];
	o.force_gpt = data[0] & 4;
	pm_disk_from_mem(&d, data + 1, size - 1, 0);
	int r = pm_probe(&d, &o, &t);
	if (r == PM_FOUND && !t.type)
		abort();
	for (size_t i = 0; i < t.nparts; i++) {
		const struct pm_part *p = &t.parts[i];
		if (p->size == 0 || p->start >= pm_disk_sectors(&d) || p->size > pm_disk_sectors(&d) - p->start)
			abort();
		if (i && p->num <= t.parts[i - 1].num)
			abort();
	}
	pm_table_free(&t);
	pm_disk_close(&d);
	return 0;
}
