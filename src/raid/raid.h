/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BIOS ("fake") RAID metadata as dmraid reads it (facts: ../shared/reference/dmraid.md): one small
 * reader per vendor format (src/raid/<fmt>.c) behind struct pm_raid_format, one registry
 * (src/raid/formats.c), and one assembly (src/raid/set.c) that groups what the readers found on each
 * member disk into sets (stacked for RAID10/01), checks them and builds the device-mapper tables
 * dmraid builds. Library code: negative errno, no printing; what -v shows goes into `why`. */
#ifndef PARTMAP_RAID_H
#define PARTMAP_RAID_H

#include "../disk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_RAID_NAME_MAX 128   /* set names, with their subset suffix */
#define PM_RAID_MAX_DEVS 16    /* member records one disk may yield (volumes, groups) */

/* dmraid's unified types, in its order; display names: GROUP, partition, spare, linear, stripe,
 * mirror, raid4, raid5_ls, raid5_rs, raid5_la, raid5_ra, raid6 ("undef" for UNDEF). */
enum pm_raid_type {
	PM_RT_UNDEF, PM_RT_GROUP, PM_RT_PARTITION, PM_RT_SPARE, PM_RT_LINEAR, PM_RT_RAID0, PM_RT_RAID1,
	PM_RT_RAID4, PM_RT_RAID5_LS, PM_RT_RAID5_RS, PM_RT_RAID5_LA, PM_RT_RAID5_RA, PM_RT_RAID6,
};
/* dmraid's status names: setup, broken, inconsistent, nosync, ok; UNDEF prints "unknown". */
enum pm_raid_status { PM_RS_UNDEF, PM_RS_SETUP, PM_RS_BROKEN, PM_RS_INCONSISTENT, PM_RS_NOSYNC, PM_RS_OK };

struct pm_raid_format;

/* What a reader finds on one disk for one set the disk belongs to (dmraid's raid_dev). A disk in two
 * IMSM volumes gives two records, plus the group record `-r` lists. Sectors are 512 bytes. */
struct pm_raid_dev {
	const struct pm_raid_format *fmt;
	bool listed;                    /* the record `dmraid -r` prints for this disk (one per disk) */
	char set[PM_RAID_NAME_MAX];     /* the (top) set's name: the DM name of the set */
	char subset[PM_RAID_NAME_MAX];  /* stacked sets: the subset this member is in ("<set>-0"); "" */
	char group[PM_RAID_NAME_MAX];   /* the GROUP superset `-s` heads with (isw_<family>, .ddf1_disks); "" */
	enum pm_raid_type type;         /* of the (sub)set the member is directly in; GROUP for a group record */
	enum pm_raid_type super_type;   /* of the superset of a stacked set; UNDEF if not stacked */
	enum pm_raid_status status;
	uint64_t offset;                /* data start on the disk */
	uint64_t sectors;               /* length of the member's segment */
	uint32_t stride;                /* chunk of the (sub)set, sectors (0 where none) */
	uint32_t super_stride;          /* chunk of the superset (stacked RAID01: the stripe's) */
	unsigned index;                 /* position in its (sub)set, 0-based */
	unsigned members;               /* members its (sub)set expects */
	unsigned subset_index;          /* stacked: which subset (position in the superset) */
	unsigned subsets;               /* stacked: subsets the superset expects */
	uint64_t set_sectors;           /* the (top) set's size as the metadata states; 0 = computed */
	uint64_t meta_offset;           /* bytes: the metadata area on the disk (`-D` dumps it) */
	uint64_t meta_len;
	/* added by set.c's author: the metadata does not say which member this disk is (isw without a
	 * serial number: an image file, a loop device): the assembly places such disks in the order
	 * they were given, through the format's read_pos() */
	bool by_position;
	/* isw spare disks: the set (dmraid's spare set, a subset of the group) is named after the disk's
	 * path, which the reader does not know: its name is `set` followed by the path, every character
	 * outside [A-Za-z0-9_-] made '_' (isw_<family>__dev_sde), made by the assembly */
	bool name_by_path;
};

/* One vendor format. read() looks at one whole disk (or image); returns the number of records put
 * in out[0..max) (0: not this format), or -EBADMSG when the format is recognised but the metadata
 * fails its checks (why says which, for -v), or another -errno. serial: the disk's serial number as
 * dmraid gets it ("" for an image file or a loop device: readers that match members by serial, as
 * isw does, then fall back to the record's position, and say so in why). */
struct pm_raid_format {
	const char *name;               /* "isw" */
	const char *descr;              /* "Intel Software RAID" (dmraid -l) */
	const char *caps;               /* "0,1,5,01" */
	int (*read)(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max,
		    char *why, size_t whylen);
	/* Optional (NULL where members are identified by the metadata alone): read() for a disk known
	 * to be member POSITION (0-based) of its set's disk table, for disks read() flagged by_position. */
	int (*read_pos)(struct pm_disk *d, const char *serial, int position, struct pm_raid_dev *out, size_t max,
			char *why, size_t whylen);
};

/* The registry, in dmraid -l order (asr ddf1 hpt37x hpt45x isw jmicron lsi nvidia pdc sil via); an entry
 * is NULL while its reader is not linked in (weak: skip NULLs). */
extern const struct pm_raid_format *const *const pm_raid_all;
extern const size_t pm_raid_nall;
const struct pm_raid_format *pm_raid_format_by_name(const char *name);

extern const struct pm_raid_format pm_raid_asr, pm_raid_ddf1, pm_raid_hpt37x, pm_raid_hpt45x,
	pm_raid_isw, pm_raid_jmicron, pm_raid_lsi, pm_raid_nvidia, pm_raid_pdc, pm_raid_sil, pm_raid_via;

const char *pm_raid_type_name(enum pm_raid_type t);
const char *pm_raid_status_name(enum pm_raid_status s);

/* dmraid's name helpers (mk_alpha, mk_alphanum): digits to letters ('0'+n -> 'a'+n) in place, and every character outside
 * [A-Za-z0-9_-] to '_' in place. */
void pm_raid_mk_alpha(char *s);
void pm_raid_mk_alphanum(char *s);

/* Little- and big-endian field access for the readers (buffers are byte arrays, never cast). */
static inline uint16_t pm_raid_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pm_raid_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pm_raid_le64(const uint8_t *p) { return pm_raid_le32(p) | (uint64_t)pm_raid_le32(p + 4) << 32; }
static inline uint16_t pm_raid_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t pm_raid_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline uint64_t pm_raid_be64(const uint8_t *p) { return (uint64_t)pm_raid_be32(p) << 32 | pm_raid_be32(p + 4); }

#endif
