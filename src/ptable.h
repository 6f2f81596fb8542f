/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The partition-table engine: probe a disk, collect partitions in the Linux kernel's numbering. */
#ifndef PARTMAP_PTABLE_H
#define PARTMAP_PTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk.h"

enum pm_kind {
	PM_PRIMARY = 0,   /* a slot of the top-level table */
	PM_EXTENDED,      /* a DOS extended partition (shown as the kernel shows it: 2 sectors or 1 lsector) */
	PM_LOGICAL,       /* a DOS logical partition inside an extended one */
	PM_NESTED,        /* a slice of a label nested in a DOS slot (BSD, Solaris, UnixWare, Minix) */
};

/* Partitions per table, at most: far above real tables (kpartx stops at 256, the kernel's BLKPG at
 * 255), low enough that a crafted chain of a million EBRs costs neither the memory nor a million maps. */
#define PM_MAX_PARTS 4096

#define PM_PF_TRUNCATED 0x1u   /* ran past the end of the device and was cut to it */
#define PM_PF_OUTSIDE   0x2u   /* a GPT entry outside the header's usable range */

struct pm_part {
	unsigned num;             /* kernel partition number, from 1 */
	uint64_t start, size;     /* absolute, in 512-byte sectors */
	enum pm_kind kind;
	unsigned container;       /* number of the partition holding it (logical, nested), else 0 */
	const char *sublabel;     /* for nested: "bsd", "solaris", ... */
	unsigned flags;
	bool has_dos_type;
	uint8_t dos_type;
	bool has_guid;
	uint8_t type_guid[16];    /* GPT: on-disk (mixed-endian) byte order */
	uint8_t uuid[16];
	char label[144];          /* GPT partition name (UTF-8), Mac name ... */
};

struct pm_table {
	const char *type;         /* "dos", "gpt", "bsd", "sun", ...; NULL = no table */
	unsigned sector_size;     /* logical sector size used to read it */
	struct pm_part *parts;    /* sorted by num, unique nums, after pm_probe */
	size_t nparts, cap;
	char **warnings;
	size_t nwarnings;
	size_t dropped_warnings;
	char error[256];          /* the reason when pm_probe fails or the table is damaged */
	bool has_disk_id;         /* DOS: the disk signature (MBR byte 440), the kernel's PARTUUID prefix */
	uint32_t disk_id;
};

struct pm_opts {
	bool force_gpt;           /* -g: accept a GPT whose protective MBR is missing */
	const char *only;         /* -t: run only this reader */
	unsigned sector_size;     /* --sector-size; 0 = from the device or guessed */
};

/* Result codes of pm_probe */
#define PM_FOUND 1
#define PM_NOTFOUND 0
/* -EBADMSG: a table was recognised but is damaged beyond use (table->type and error say which) */

int pm_probe(struct pm_disk *d, const struct pm_opts *opts, struct pm_table *t);
void pm_table_free(struct pm_table *t);
const struct pm_part *pm_table_find(const struct pm_table *t, unsigned num);
/* Do any two partitions share a sector? (BSD slices inside their DOS slot, Sun's whole-disk slice) */
bool pm_table_overlaps(const struct pm_table *t);

/* The registered readers' names, for -t and --help: the i-th, or NULL past the last. */
const char *pm_table_type(size_t i);
bool pm_table_type_known(const char *name);

uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len);

/* Format a GUID (on-disk byte order) as lowercase text; buf must hold 37 bytes. */
void pm_guid_str(const uint8_t g[16], char *buf);
bool pm_guid_is_null(const uint8_t g[16]);

#endif
