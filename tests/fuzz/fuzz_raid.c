/* libFuzzer target for the BIOS RAID format readers (src/raid/): the input is a whole member disk, every
 * registered reader reads it. Checks their promises: no crash and no read outside the disk; at most
 * `max` records; every record's segment and metadata lie on the disk, its names are terminated, one is
 * listed; a refusal (-EBADMSG) says why in one line. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raid/raid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t k = 0; k < pm_raid_nall; k++) {
		const struct pm_raid_format *f = pm_raid_all[k];
		if (!f)
			continue;
		struct pm_disk d;
		struct pm_raid_dev out[PM_RAID_MAX_DEVS];
		char why[256] = "";
		pm_disk_from_mem(&d, data, size, 512);
		int r = f->read(&d, "", out, PM_RAID_MAX_DEVS, why, sizeof(why));
		pm_disk_close(&d);
		if (r == -EBADMSG) {
			if (!why[0] || strchr(why, '\n'))
				abort();
			continue;
		}
		if (r < 0 && r != -ENOMEM)
			abort();
		if (r > PM_RAID_MAX_DEVS)
			abort();
		uint64_t n = size / 512;
		int listed = 0;
		for (int i = 0; i < r; i++) {
			const struct pm_raid_dev *x = &out[i];
			if (x->fmt != f || x->offset > n || x->sectors > n - x->offset ||
			    x->meta_offset > size || x->meta_len > size - x->meta_offset ||
			    !memchr(x->set, 0, sizeof(x->set)) || !x->set[0] || !memchr(x->subset, 0, sizeof(x->subset)))
				abort();
			listed += x->listed;
		}
		if (r > 0 && listed != 1)
			abort();
	}
	return 0;
}
