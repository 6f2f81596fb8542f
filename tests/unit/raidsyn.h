/* Synthesised BIOS RAID members of the eleven formats dmraid reads: each function writes member disks'
 * metadata (and, on request, the set's data laid out as the level does), from the facts in
 * ../shared/reference/dmraid.md, into zeroed disk images in memory. The unit tests, the fuzz seeds
 * and the mkraid generator (tests/unit/mkraid.c: the host and VM tests' member images) use it. */
#ifndef PARTMAP_TEST_RAIDSYN_H
#define PARTMAP_TEST_RAIDSYN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Layouts: RS_RAID10 a mirror of two stripes, RS_RAID01 a stripe of two-disk mirrors (member 2k and
 * 2k+1 the k-th mirror: what IMSM and mdadm's DDF call RAID10, dmraid shows as raid01). */
enum rs_level { RS_SPAN, RS_RAID0, RS_RAID1, RS_RAID10, RS_RAID01, RS_RAID5, RS_SPARE };

struct rs_spec {
	const char *fmt;          /* "nvidia", ... (dmraid's format names) */
	enum rs_level level;
	unsigned disks;           /* members of the set (RAID10/01: all of them, both halves) */
	unsigned chunk;           /* sectors; a power of two (via: 8 << k); isw, ddf1: 0 for RAID1 and span */
	uint64_t disk_sectors;    /* each member disk's size */
	uint64_t member_sectors;  /* data on each member, where the format records it */
	uint32_t id;              /* set id / magic / signature sum / IMSM family, as the format keeps one */
	const char *name;         /* jmicron, asr, isw, ddf1: the array/volume name (default "Vol0") */
	unsigned pdc_end;         /* pdc: metadata this many sectors before the end (default 63) */
	uint32_t data_offset;     /* pdc, jmicron, isw, ddf1: data start on the member (default 0) */
	unsigned asr_version;     /* asr: RAID table version (default 2: no checksum; 1: checksum kept) */
	const char *const *serials; /* isw: each member's serial number (NULL or "" where none) */
	unsigned rlq;             /* ddf1 RAID5 qualifier: 2 left asymmetric, 3 left symmetric (default 3) */
	bool little_endian;       /* ddf1: written little-endian (dmraid reads either) */
};

/* Write member `index` of the set into img (s->disk_sectors * 512 bytes, at least 128 sectors; SiI writes
 * the copies that fit). 0, or -1 when the format has no such level or the spec does not fit it.
 * isw RS_SPARE: a spare disk's own metadata (one disk, no volume, as mdadm and the Intel ROM write it). */
int rs_write(const struct rs_spec *s, unsigned index, uint8_t *img);
/* Recompute the checksum(s) of the metadata on img after a test changed a field. */
void rs_fix(const char *fmt, uint8_t *img, uint64_t disk_sectors);
/* Byte offset of the metadata block the format's fields are relative to (pdc: at the default probe;
 * asr: the reserved block; hpt37x: sector 9; sil: the first copy; isw: the MPB's anchor sector; ddf1:
 * the anchor header). */
uint64_t rs_meta(const char *fmt, uint64_t disk_sectors);
/* Where member `index`'s data lies, in sectors, as dmraid maps it (the record's offset and sectors). */
void rs_geometry(const struct rs_spec *s, unsigned index, uint64_t *offset, uint64_t *sectors);
/* The size in sectors of the set's virtual disk as dmraid maps it (span, RAID0/1/10/01, and isw and
 * ddf1 RAID5; 0 for others): stripes rounded down to whole chunks of the smallest member. */
uint64_t rs_size(const struct rs_spec *s);
/* Write member `index`'s share of the set's virtual disk src (rs_size(s) sectors) into its data area on
 * img: span concatenated, RAID0 in chunks, RAID1 copies, RAID10 a mirror of two stripes, RAID01 a
 * stripe of two-disk mirrors, RAID5 (isw: left asymmetric; ddf1: by rlq) with parity. -1 otherwise. */
int rs_fill(const struct rs_spec *s, unsigned index, const uint8_t *src, uint8_t *img);
/* The level names mkraid takes: span raid0 raid1 raid10 raid01 raid5 spare; -1 if unknown. */
int rs_level_by_name(const char *name);

/* ---- isw and ddf1 sets of several volumes, written on all member disks at once (the unit tests) ---- */

struct rs_vol {
	char name[17];
	enum rs_level level;       /* RS_RAID0, RS_RAID1, RS_RAID01, RS_RAID5, RS_SPAN */
	unsigned members;          /* disks 0..members-1 of the set, in this order */
	uint32_t strip;            /* chunk, sectors (ddf1: a power of two) */
	uint64_t lba0;             /* data start on each member */
	uint64_t bpm;              /* sectors of each member the volume uses */
	unsigned rlq;              /* ddf1 RAID5 qualifier (2: left asymmetric, 3: left symmetric) */
};

/* The virtual disk's size in sectors. */
uint64_t rs_vol_sectors(const struct rs_vol *v);
/* IMSM metadata (anchor at N-2) on each of ndisks buffers of disk_bytes; serials[i] or NULL ("").
 * Volumes follow one another in the MPB. */
void rs_isw(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, uint32_t family,
	    const struct rs_vol *v, unsigned nvols, const char *const *serials);
/* Recompute the IMSM checksum of the MPB on one disk (after a test changed a field). */
void rs_isw_fix(uint8_t *disk, uint64_t disk_bytes);
/* Byte offset of the MPB's first sector (the anchor at N-2). */
uint64_t rs_isw_anchor(uint64_t disk_bytes);
/* DDF metadata (anchor at N-1, primary header at N-32, big-endian, or little_endian). A RS_RAID01 volume
 * is written as mdadm writes its RAID10: RAID1 pairs as secondary elements of one virtual drive. */
void rs_ddf1(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, const struct rs_vol *v, unsigned nvols,
	     bool little_endian);
#define RS_DDF1_PRIMARY 32 /* sectors before the end */
/* Recompute every DDF CRC on one disk. */
void rs_ddf1_fix(uint8_t *disk, uint64_t disk_bytes);
/* Spread the virtual disk virt (rs_vol_sectors sectors) over the members as the volume lays it out
 * (RAID5: left asymmetric for rlq 2 or isw, left symmetric for rlq 3): rs_fill for each member. */
void rs_scatter(const struct rs_vol *v, const uint8_t *virt, uint8_t *const *disks);

#endif
