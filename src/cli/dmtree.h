/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef PARTMAP_CLI_DMTREE_H
#define PARTMAP_CLI_DMTREE_H

#include "../dm.h"

#include <stddef.h>

/* dmsetup ls --tree over devs (the devices listed, sorted by name), with lvm2's tree options (a
 * comma-separated list, NULL for none). Prints; 0 or 1 (the exit status). */
int dmsetup_tree(struct pm_dm *dm, const struct pm_dm_name *devs, size_t ndevs, const char *opts);

#endif
