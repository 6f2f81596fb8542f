/* libFuzzer target for the BIOS RAID format readers (every one registered) and the set assembly and
 * table builder over what they find. Input: one option byte (bit 0: give a serial number; the rest:
 * the position for read_pos), then the disk. Checks the readers' promises: no crash or read outside
 * the disk (ASan), a count within the buffer, records of their own format with terminated names, and
 * that assembly and tables of two copies of the disk neither crash nor leak. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "raid/raid.h"
#include "raid/set.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct pm_raid_format *f, const struct pm_raid_dev *out, int r, size_t size)
{
	uint64_t n = size / 512;

	if (r > PM_RAID_MAX_DEVS || (r < 0 && r != -EBADMSG && r != -ENOMEM && r != -ENOBUFS &&
				     r != -ENAMETOOLONG && r != -ERANGE && r != -EIO))
		abort();
	for (int i = 0; i < r; i++) {
		const struct pm_raid_dev *x = &out[i];
		/* names terminated; the member's segment and its metadata on the disk */
		if (x->fmt != f || !memchr(x->set, 0, sizeof(x->set)) || !memchr(x->subset, 0, sizeof(x->subset)) ||
		    !memchr(x->group, 0, sizeof(x->group)) || x->offset > n || x->sectors > n - x->offset ||
		    x->meta_offset > size || x->meta_len > size - x->meta_offset)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	data++;
	size--;
	struct pm_disk d[2];
	struct pm_raid_dev out[PM_RAID_MAX_DEVS];
	char why[PM_RAID_WHY_LEN];
	pm_disk_from_mem(&d[0], data, size, 512);
	pm_disk_from_mem(&d[1], data, size, 512);
	for (size_t i = 0; i < pm_raid_nall; i++) {
		const struct pm_raid_format *f = pm_raid_all[i];
		if (!f)
			continue;
		int r = f->read(&d[0], (opt & 1) ? "SERIAL 1" : "", out, PM_RAID_MAX_DEVS, why, sizeof(why));
		check(f, out, r, size);
		if (!memchr(why, 0, sizeof(why)))
			abort();
		if (f->read_pos) {
			r = f->read_pos(&d[0], "", opt >> 1, out, PM_RAID_MAX_DEVS, why, sizeof(why));
			check(f, out, r, size);
		}
	}
	static struct pm_raid_disk k[2];
	memset(k, 0, sizeof(k));
	for (int i = 0; i < 2; i++) {
		k[i].path = i ? "/dev/b" : "/dev/a";
		k[i].d = &d[i];
		k[i].serial = "";
	}
	if (pm_raid_scan(k, 2, NULL) < 0)
		abort();
	struct pm_raid_sets sets;
	if (pm_raid_assemble(k, 2, &sets) == 0) {
		for (size_t i = 0; i < sets.n; i++) {
			struct pm_raid_map *m;
			size_t n;
			char *log = NULL;
			if (sets.v[i].ok && pm_raid_tables(&sets.v[i], &m, &n, &log) == 0)
				pm_raid_maps_free(m, n);
			free(log);
		}
		pm_raid_sets_free(&sets);
	}
	pm_disk_close(&d[0]);
	pm_disk_close(&d[1]);
	return 0;
}
