/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to the partition-table readers and the probe driver (as the kernel's check.h): the probe
 * context, how a reader adds partitions and warnings, the readers and their registry. Callers use
 * ../ptable.h. */
#ifndef PARTMAP_TABLE_READER_H
#define PARTMAP_TABLE_READER_H

#include "../ptable.h"

struct pm_ctx {
	struct pm_disk *disk;
	const struct pm_opts *opts;
	struct pm_table *t;
	unsigned ssz;             /* logical sector size in bytes */
	unsigned next;            /* next free number for logical and nested partitions (kernel state->next) */
	int err;                  /* sticky -ENOMEM from pm_put */
	bool capped;              /* a number above PM_MAX_PARTS was put: readers may stop */
	struct pm_part scratch;   /* what pm_put hands out for such numbers: filled, never listed */
};

/* Add a partition; start and size in 512-byte sectors. Returns the entry to fill in, or NULL
 * (out of memory: ctx->err is set). A later put of the same number replaces the earlier one. A
 * number above PM_MAX_PARTS is not listed (a warning says so once, ctx->capped is set): the entry
 * returned is a scratch one. */
struct pm_part *pm_put(struct pm_ctx *c, unsigned num, uint64_t start, uint64_t size, enum pm_kind kind);
void pm_warn(struct pm_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pm_set_error(struct pm_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reader returns PM_FOUND, PM_NOTFOUND, -EBADMSG (recognised, damaged) or another -errno. */
typedef int (*pm_reader_fn)(struct pm_ctx *c);
int pm_read_dos(struct pm_ctx *c);
int pm_read_gpt(struct pm_ctx *c);
int pm_read_bsd(struct pm_ctx *c);
int pm_read_sun(struct pm_ctx *c);
int pm_read_sgi(struct pm_ctx *c);
int pm_read_mac(struct pm_ctx *c);
int pm_read_atari(struct pm_ctx *c);
int pm_read_ps3(struct pm_ctx *c);
int pm_read_solaris(struct pm_ctx *c);
int pm_read_unixware(struct pm_ctx *c);

/* Where a label is read: on the whole device, or nested in a DOS slot (the kernel's parse_bsd,
 * parse_solaris_x86, parse_unixware, parse_minix). One reader per format serves both. */
struct pm_label_at {
	uint64_t offset, size;    /* 512-byte sectors; 0 and the device's size for the whole device */
	unsigned origin;          /* the DOS slot number; 0 for the whole device */
	uint8_t dos_type;         /* the slot's type (names the BSD flavour) */
};
typedef int (*pm_label_fn)(struct pm_ctx *c, const struct pm_label_at *at);

/* Nested labels by DOS slot type, in one table that dos.c reads: numbered after every logical
 * partition (c->next), in slot order. */
struct pm_nested_label {
	uint8_t dos_type;
	pm_label_fn read;
};
extern const struct pm_nested_label pm_nested_labels[];
extern const size_t pm_nnested_labels;

int pm_label_bsd(struct pm_ctx *c, const struct pm_label_at *at);
int pm_label_solaris(struct pm_ctx *c, const struct pm_label_at *at);
int pm_label_unixware(struct pm_ctx *c, const struct pm_label_at *at);
int pm_label_minix(struct pm_ctx *c, const struct pm_label_at *at);

/* A partition of a label: nested ones take the next number (kind PM_NESTED, container and sublabel
 * set), whole-device ones the number given (PM_PRIMARY). NULL as pm_put. */
struct pm_part *pm_put_label(struct pm_ctx *c, const struct pm_label_at *at, unsigned num, uint64_t start,
			     uint64_t size, const char *sublabel);
/* A whole-device reader from a label reader: PM_FOUND, PM_NOTFOUND or -errno (ctx->err first). */
int pm_read_whole(struct pm_ctx *c, pm_label_fn read);

/* DOS helper also used by GPT (protective MBR) */
bool pm_dos_is_extended(uint8_t type);

/* Sector-size hints for image files (which do not report one): 512 or 4096, 0 for no opinion. */
unsigned pm_gpt_sector_size_hint(struct pm_disk *d);
unsigned pm_dos_sector_size_hint(struct pm_disk *d);

/* The registry: the readers in the kernel's order (efi, sgi, msdos, osf, sun, atari, mac), then the
 * ones only kpartx has; -t, --help, the JSON names and the probe loop all read it. */
struct pm_reader {
	const char *name;
	pm_reader_fn read;
	unsigned (*sector_size_hint)(struct pm_disk *d); /* asked in registry order; NULL: none */
};
extern const struct pm_reader pm_readers[];
extern const size_t pm_nreaders;

#endif
