/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the BIOS RAID format readers (asr.c ... via.c): the record a reader fills, the
 * `why` of a rejected member, dmraid's set-name shapes, the vendor checksums and bounds checks. */
#ifndef PARTMAP_RAID_FMTUTIL_H
#define PARTMAP_RAID_FMTUTIL_H

#include "raid.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write a one-line reason into why (as dmraid -v says it) and return -EBADMSG. */
int pm_rf_bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Read len bytes at byte offset off; a read past the disk (-ERANGE) becomes -EBADMSG with
 * "<fmt>: <what> lies past the end of the disk" in why; other errors are returned as they are. */
int pm_rf_read(struct pm_disk *d, uint64_t off, void *buf, size_t len, const char *fmt, const char *what,
	       char *why, size_t whylen);

/* out[0] cleared and set up for format f: listed, status ok, types undef. -ENOSPC when max is 0. */
int pm_rf_rec(struct pm_raid_dev *out, size_t max, const struct pm_raid_format *f);

/* The set name dmraid makes: "<handler>_<id>" with the digits of everything after the handler name
 * turned into letters (mk_alpha) except the last keep characters. */
void pm_rf_name(char *dst, const char *handler, const char *id, size_t keep);
/* A stacked member: r->subset = "<r->set>-<n>", r->subset_index = n. */
void pm_rf_subset(struct pm_raid_dev *r, unsigned n);

/* Little-endian sums over a buffer: n 32-bit words, n 16-bit words, n bytes (as a 32-bit sum). */
uint32_t pm_rf_sum32(const uint8_t *p, size_t n);
uint16_t pm_rf_sum16(const uint8_t *p, size_t n);
uint32_t pm_rf_bytes(const uint8_t *p, size_t n);

/* Whether sectors [start, start + len) lie on the disk (no overflow). */
bool pm_rf_fits(const struct pm_disk *d, uint64_t start, uint64_t len);

/* Copy a fixed-size name field (not NUL-terminated when full) into dst[n + 1]. */
void pm_rf_field(char *dst, const uint8_t *src, size_t n);

#endif
