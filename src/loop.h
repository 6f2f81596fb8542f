/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loop devices: which ones back a file, and a free one from /dev/loop-control. Library rules: -errno
 * returns, no printing. */
#ifndef PARTMAP_LOOP_H
#define PARTMAP_LOOP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pm_loop_info {
	int index;
	uint64_t offset, sizelimit;   /* bytes; sizelimit 0 = to the end of the file */
	bool read_only, autoclear, partscan, direct_io;
	unsigned block_size;          /* logical sector size of the loop device */
	char backing[PATH_MAX];       /* as sysfs reports it (may end in " (deleted)") */
	dev_t backing_dev;
	ino_t backing_ino;
	bool backing_known;           /* backing_dev/ino are valid */
};

/* Fill info for loop device INDEX from sysfs (and LOOP_GET_STATUS64 when the node can be opened).
 * Returns 1 when the device is bound to a file, 0 when it is free, -errno on error. */
int pm_loop_info(int index, struct pm_loop_info *info);

/* Find a bound loop device whose backing file is (dev, ino) and that covers the whole file (offset 0,
 * no size limit or one at least file_size). Returns 1 and fills info, 0 when none, -errno. */
int pm_loop_find_whole(dev_t dev, ino_t ino, uint64_t file_size, struct pm_loop_info *info);

/* LOOP_CTL_GET_FREE: the index of a free loop device (the kernel may create one). -errno on error. */
int pm_loop_get_free(void);

#endif
