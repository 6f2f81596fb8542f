/* Member images of BIOS RAID sets, synthesised from the metadata facts (../shared/reference/dmraid.md
 * §1.1 isw, §1.2 ddf1), for the unit tests, the fuzz seeds and tests/cmd/dmraid.t (raidgen). */
#ifndef PARTMAP_RAIDGEN_H
#define PARTMAP_RAIDGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rg_level { RG_RAID0, RG_RAID1, RG_RAID10, RG_RAID5, RG_LINEAR };

struct rg_vol {
	char name[17];
	enum rg_level level;
	unsigned members;          /* disks 0..members-1 of the set, in this order */
	uint32_t strip;            /* chunk, sectors (ddf1: a power of two) */
	uint64_t lba0;             /* data start on each member */
	uint64_t bpm;              /* sectors of each member the volume uses */
	unsigned rlq;              /* ddf1 RAID5 qualifier (2: left asymmetric, 3: left symmetric) */
};

/* The virtual disk's size in sectors. */
uint64_t rg_vol_sectors(const struct rg_vol *v);
/* IMSM metadata (anchor at N-2) on each of ndisks buffers of disk_bytes; serials[i] or NULL ("").
 * Volumes follow one another in the MPB. */
void rg_isw(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, uint32_t family,
	    const struct rg_vol *v, unsigned nvols, const char *const *serials);
/* Recompute the IMSM checksum of the MPB on one disk (after a test changed a field). */
void rg_isw_fix(uint8_t *disk, uint64_t disk_bytes);
/* Byte offset of the MPB's first sector (the anchor at N-2). */
uint64_t rg_isw_anchor(uint64_t disk_bytes);
/* DDF metadata (anchor at N-1, primary header at N-32, big-endian, or little_endian). A RG_RAID10 volume
 * is written as mdadm writes it: RAID1 pairs as secondary elements of one virtual drive. */
void rg_ddf1(uint8_t *const *disks, uint64_t disk_bytes, unsigned ndisks, const struct rg_vol *v, unsigned nvols,
	     bool little_endian);
#define RG_DDF1_PRIMARY 32 /* sectors before the end */
/* Recompute every DDF CRC on one disk. */
void rg_ddf1_fix(uint8_t *disk, uint64_t disk_bytes);
/* Spread the virtual disk virt (rg_vol_sectors sectors) over the members as the volume lays it out
 * (RAID5: left asymmetric for rlq 2 or isw, left symmetric for rlq 3). */
void rg_scatter(const struct rg_vol *v, const uint8_t *virt, uint8_t *const *disks);

#endif
