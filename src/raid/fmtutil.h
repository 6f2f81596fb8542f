/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the BIOS RAID format readers (asr.c ... via.c): the record a reader fills, the
 * `why` of a rejected member, dmraid's set-name shapes, the vendor checksums and bounds checks. */
#ifndef PARTMAP_RAID_FMTUTIL_H
#define PARTMAP_RAID_FMTUTIL_H

#include "raid.h"

/* How the nine readers (asr hpt37x hpt45x jmicron lsi nvidia pdc sil via) fill struct pm_raid_dev:
 * - set: the top set's name as dmraid makes it; subset: "<set>-N" for a member of a stacked set
 *   (asr: ".asr_<name>_<magic hex>_donotuse"), "" otherwise. dmraid -r prints the subset's name for a
 *   stacked member (its raid_dev carries it) and the set's otherwise.
 * - type: of the (sub)set the member is directly in; super_type and super_stride: the top set's
 *   (RAID10: stripes under a mirror; RAID01 (jmicron, hpt37x type 7): mirrors under a stripe).
 * - index: the member's position in its (sub)set in dmraid's sort order; members: the disks that
 *   (sub)set expects as the metadata says (dmraid's devices(), per subset when stacked; 0 unknown);
 *   subset_index / subsets: the subset's place in the top set and how many it has.
 * - offset, sectors: the member's data segment as dmraid maps it (checked to lie on the disk).
 * - status: as dmraid maps it (several formats always read "ok": their state tables start with 0).
 * - meta_offset/meta_len: the area dmraid -D dumps (sil: the copy used; pdc: each array's own area).
 * - pdc: one record per array area on the disk (up to 4); only the first is `listed`. The others: one. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write a one-line reason into why (as dmraid -v says it) and return -EBADMSG. */
int pm_rf_bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Read len bytes at byte offset off; a read past the disk (-ERANGE) becomes -EBADMSG with
 * "<fmt>: <what> lies past the end of the disk" in why; other errors are returned as they are. */
int pm_rf_read(struct pm_disk *d, uint64_t off, void *buf, size_t len, const char *fmt, const char *what,
	       char *why, size_t whylen);

/* Read len bytes at sector N-back (N: the disk's sectors) into buf; *at gets the byte offset.
 * 0: the disk is too small to hold it (not this format); 1: read; <0: -errno. */
int pm_rf_tail(struct pm_disk *d, uint64_t back, void *buf, size_t len, uint64_t *at);

/* out[0] cleared and set up for format f: listed, status ok, types undef. -ENOSPC when max is 0. */
int pm_rf_rec(struct pm_raid_dev *out, size_t max, const struct pm_raid_format *f);

/* The set name dmraid makes: "<handler>_<id>" with the digits of everything after the handler name
 * turned into letters (mk_alpha) except the last keep characters. */
void pm_rf_name(char *dst, const char *handler, const char *id, size_t keep);
/* pm_rf_name with a decimal id, as most formats name their sets. */
void pm_rf_name_u(char *dst, const char *handler, uint32_t id);
/* HighPoint's shared rules (hpt37x, hpt45x): set id 0 is the spare pool "<handler>_SPARE", any other
 * names "<handler>_<id>"; the "bad" magic marks the member broken; the chunk is 1 << shift (0: none);
 * member `disk` of `disks`. */
void pm_rf_hpt(struct pm_raid_dev *r, const char *handler, uint32_t id, bool broken, unsigned shift,
	       unsigned disks, unsigned disk);
/* The rest of HighPoint's rules, once type and offset are known: a stripe member holds total / disks, a
 * mirror member total, any other (span, single, spare) other_len; less the data offset; the segment on
 * the disk. 1 or -EBADMSG with why. */
int pm_rf_hpt_len(struct pm_disk *d, struct pm_raid_dev *r, uint32_t total, uint64_t other_len, char *why,
		  size_t whylen);
/* A stacked member: r->subset = "<r->set>-<n>", r->subset_index = n. */
void pm_rf_subset(struct pm_raid_dev *r, unsigned n);

/* A member of a stacked set: in subset n ("<set>-<n>") of `subsets`, under a super_type superset whose
 * chunk is super_stride. */
void pm_rf_stack(struct pm_raid_dev *r, enum pm_raid_type super_type, uint32_t super_stride, unsigned subsets,
		 unsigned n);

/* The last checks of every record: its segment is not empty (unless its type is undef) and lies on the
 * disk. 0 or -EBADMSG with why. */
int pm_rf_extent(const struct pm_disk *d, const struct pm_raid_dev *r, char *why, size_t whylen);

/* Little-endian sums over a buffer: n 32-bit words, n 16-bit words, n bytes (as a 32-bit sum). */
uint32_t pm_rf_sum32(const uint8_t *p, size_t n);
uint16_t pm_rf_sum16(const uint8_t *p, size_t n);
uint32_t pm_rf_bytes(const uint8_t *p, size_t n);

/* Whether sectors [start, start + len) lie on the disk (no overflow). */
bool pm_rf_fits(const struct pm_disk *d, uint64_t start, uint64_t len);

/* Copy a fixed-size name field (not NUL-terminated when full) into dst[n + 1]. */
void pm_rf_field(char *dst, const uint8_t *src, size_t n);

#endif
