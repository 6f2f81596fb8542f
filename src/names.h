/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kpartx's naming rules for partition maps. */
#ifndef PARTMAP_NAMES_H
#define PARTMAP_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PM_NAME_MAX 128 /* DM names: at most 127 characters */

/* The default delimiter: "p" when base ends in a digit (loop0p1, nvme0n1p1), else "" (sdb1). */
const char *pm_default_delim(const char *base);
/* "<base><delim><num>", '/' replaced by '!'; -ENAMETOOLONG when it does not fit in len or in 127. */
int pm_part_name(char *buf, size_t len, const char *base, const char *delim, unsigned num);
/* The base name for a path as given: its last component (not resolved through links). */
int pm_base_from_path(char *buf, size_t len, const char *path);
/* A name a DM device and its /dev/mapper entry can have: 1 to 127 characters, no '/', not ".", ".."
 * or "control" (the device mapper's own node). The one check every DM and /dev/mapper call makes. */
bool pm_dm_name_valid(const char *name);
/* For a device-mapper block device: its DM name from sysfs. 0, -ENOENT when not a DM device. */
int pm_dm_name_of(dev_t rdev, char *buf, size_t len);
/* LVM's DM names: VG-LV[-LAYER], a '-' inside a component doubled. Splits name (changed in place)
 * into its components, unescaped; anything after the layer is dropped, a '-' that ends the name is
 * kept as it is (lvm2's dm_split_lvm_name). */
void pm_lvm_name_split(char *name, char **vg, char **lv, char **layer);

#endif
