/* Synthesised BIOS RAID members: each function writes one member disk's metadata, from the facts in
 * ../shared/reference/dmraid.md, into a zeroed disk image in memory (the unit tests, the mkraid
 * generator and later host tests use them). */
#ifndef PARTMAP_TEST_RAIDSYN_H
#define PARTMAP_TEST_RAIDSYN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rs_level { RS_SPAN, RS_RAID0, RS_RAID1, RS_RAID10, RS_RAID01, RS_RAID5, RS_SPARE };

struct rs_spec {
	const char *fmt;          /* "nvidia", ... (dmraid's format names) */
	enum rs_level level;
	unsigned disks;           /* members of the set (RAID10/01: all of them, both halves) */
	unsigned chunk;           /* sectors; a power of two (via: 8 << k) */
	uint64_t disk_sectors;    /* each member disk's size */
	uint64_t member_sectors;  /* data on each member, where the format records it */
	uint32_t id;              /* set id / magic / signature sum, as the format keeps one */
	const char *name;         /* jmicron, asr: the array name (default "Vol0") */
	unsigned pdc_end;         /* pdc: metadata this many sectors before the end (default 63) */
	uint32_t data_offset;     /* pdc, jmicron: data start on the member (default 0) */
	unsigned asr_version;     /* asr: RAID table version (default 2: no checksum; 1: checksum kept) */
};

/* Write member `index` of the set into img (s->disk_sectors * 512 bytes, at least 128 sectors; SiI writes
 * the copies that fit). 0, or -1 when the format has no such level or the spec does not fit it. */
int rs_write(const struct rs_spec *s, unsigned index, uint8_t *img);
/* Recompute the checksum(s) of the metadata on img after a test changed a field. */
void rs_fix(const char *fmt, uint8_t *img, uint64_t disk_sectors);
/* Byte offset of the metadata block the format's fields are relative to (pdc: at the default probe;
 * asr: the reserved block; hpt37x: sector 9; sil: the first copy). */
uint64_t rs_meta(const char *fmt, uint64_t disk_sectors);
/* Where member `index`'s data lies, in sectors, as dmraid maps it (the record's offset and sectors). */
void rs_geometry(const struct rs_spec *s, unsigned index, uint64_t *offset, uint64_t *sectors);
/* The size in sectors of the set's virtual disk as dmraid maps it (span, RAID0/1/10/01; 0 for others):
 * stripes rounded down to whole chunks of the smallest member. */
uint64_t rs_size(const struct rs_spec *s);
/* Write member `index`'s share of the set's virtual disk src (rs_size(s) sectors) into its data area on
 * img: span concatenated, RAID0 in chunks, RAID1 copies, RAID10 a mirror of two stripes, RAID01 a
 * stripe of two-disk mirrors. -1 for the other levels. */
int rs_fill(const struct rs_spec *s, unsigned index, const uint8_t *src, uint8_t *img);
/* The level names mkraid takes: span raid0 raid1 raid10 raid01 raid5 spare; -1 if unknown. */
int rs_level_by_name(const char *name);

#endif
