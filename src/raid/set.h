/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BIOS RAID sets from the records the format readers found on several disks: reading every disk
 * (pm_raid_scan), grouping records into sets and stacked sets (pm_raid_assemble) with dmraid's
 * member-count check and degraded rules, and the device-mapper tables dmraid builds for a set
 * (pm_raid_tables). Messages dmraid prints go into a log text the caller prints. Library rules:
 * -errno returns, no printing, no global state. Facts: ../shared/reference/dmraid.md §0, §3. */
#ifndef PARTMAP_RAID_SET_H
#define PARTMAP_RAID_SET_H

#include "raid.h"

#define PM_RAID_MAX_MEMBERS 1024 /* members of one (sub)set: more is hostile metadata */
#define PM_RAID_WHY_LEN 256

/* One disk given to dmraid (or found by its scan). */
struct pm_raid_disk {
	const char *path;          /* what tables name: /dev/sdb, /dev/loop3 */
	struct pm_disk *d;         /* open for reading (pm_raid_scan only) */
	const char *serial;        /* "" when it has none */
	struct pm_raid_dev rd[PM_RAID_MAX_DEVS];
	size_t n;                  /* records found */
	const struct pm_raid_format *fmt; /* the format found, or NULL */
	int err;                   /* 0, or the reader's -errno (-EBADMSG: why says why) */
	char why[PM_RAID_WHY_LEN];
};

/* Read every disk with the registered formats (only those named in `formats`, "isw,ddf1", when not
 * NULL or ""); the first format that recognises a disk wins. Disks a reader could not place (isw
 * without a serial number) are placed by their order among the disks of the same group. 0 or -errno
 * (-EINVAL: an unknown name in formats). */
int pm_raid_scan(struct pm_raid_disk *disks, size_t n, const char *formats);

struct pm_raid_member {
	const struct pm_raid_disk *disk; /* NULL: missing */
	const struct pm_raid_dev *rd;
};

struct pm_raid_set {
	char name[PM_RAID_NAME_MAX];
	char group[PM_RAID_NAME_MAX];
	const struct pm_raid_format *fmt;
	enum pm_raid_type type;
	enum pm_raid_status status;
	uint32_t stride;
	uint64_t sectors;          /* the mapped size (0 while not activatable) */
	unsigned nmemb;            /* members expected (leaf sets) */
	unsigned present;          /* members found */
	struct pm_raid_member *m;  /* nmemb slots by position */
	unsigned nsub;             /* a superset's subsets */
	struct pm_raid_set *sub;
	bool ok;                   /* can be activated */
	bool degraded;             /* activatable with members missing */
};

struct pm_raid_sets {
	struct pm_raid_set *v;
	size_t n;
	char *log;                 /* dmraid's messages, one a line ("ERROR: ..."), or NULL */
};

/* Group the records of disks[0..n) into sets, in the order of their first member; check them. */
int pm_raid_assemble(const struct pm_raid_disk *disks, size_t n, struct pm_raid_sets *out);
void pm_raid_sets_free(struct pm_raid_sets *s);
const struct pm_raid_set *pm_raid_set_find(const struct pm_raid_sets *s, const char *name);
/* The display type of a set: a stacked set "raid10" (mirror over stripes) or "raid01" (stripe over
 * mirrors), dmraid's words; else pm_raid_type_name. */
const char *pm_raid_set_type_name(const struct pm_raid_set *s);
/* Member devices of a set, subsets' included (a spare set's are spares, not devices). */
unsigned pm_raid_set_devs(const struct pm_raid_set *s);
/* Spare devices of a set, subsets' included (the members of isw's spare sets). */
unsigned pm_raid_set_spares(const struct pm_raid_set *s);

/* One device-mapper device to create for a set, in creation order (subsets before their superset). */
struct pm_raid_map {
	char name[PM_RAID_NAME_MAX];
	char *table;               /* table lines, each ending in '\n' */
};
/* The tables dmraid builds for set s (which must be ok); messages (the degraded mirror's) appended
 * to *log (malloc'd text, may be NULL before). 0 or -errno (-EOPNOTSUPP: RAID6, a spare set). */
int pm_raid_tables(const struct pm_raid_set *s, struct pm_raid_map **out, size_t *n, char **log);
void pm_raid_maps_free(struct pm_raid_map *m, size_t n);
/* dmraid's mirror region size for a member of `sectors` sectors. */
uint32_t pm_raid_region(uint64_t sectors);

/* Append a printf-formatted line to a malloc'd text. */
int pm_raid_logf(char **log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
