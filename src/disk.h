/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sector reader: an image file, a block device or a memory buffer, with a known size and logical
 * sector size. Every read is checked against the size; nothing outside the device is ever read. */
#ifndef PARTMAP_DISK_H
#define PARTMAP_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PM_CACHE_SLOTS 8
#define PM_CACHE_MAX 4096  /* reads up to this size are cached; larger ones go straight to the file */

struct pm_image;

struct pm_disk {
	int fd;                  /* -1 for a memory disk */
	struct pm_image *img;    /* a VM image's virtual disk (not closed by pm_disk_close) */
	bool owns_fd;
	const uint8_t *mem;      /* memory disk (tests, fuzzers) */
	uint64_t size;           /* bytes */
	unsigned sector_size;    /* logical sector size in bytes; 0 = not known (image file) */
	bool is_blockdev;
	dev_t rdev;              /* block device number, when is_blockdev */
	dev_t st_dev;            /* backing file's device and inode, for image files */
	ino_t st_ino;
	/* statistics, for benchmarks and tests */
	uint64_t nreads;         /* pread calls made */
	uint64_t bytes_read;
	/* the last few sector ranges read, so that readers asking for the same sectors do not read
	 * them again; reads are widened to whole 512-byte sectors, no more */
	struct {
		uint64_t off;    /* byte offset, a multiple of 512 */
		size_t len;      /* 0 = empty */
		uint64_t stamp;
	} slot[PM_CACHE_SLOTS];
	/* slot i's bytes at cache[i * PM_CACHE_MAX]; allocated at the first read, not cleared, so that a
	 * short run (kpartx -l) touches only the pages of the slots it fills */
	uint8_t *cache;
	uint64_t clock;
};

/* Open PATH read-only (or read-write with O_RDWR in flags). Returns 0 or -errno. */
int pm_disk_open(struct pm_disk *d, const char *path, int flags);
/* Wrap an open fd (not closed by pm_disk_close). */
int pm_disk_from_fd(struct pm_disk *d, int fd);
/* A disk over a buffer; len bytes; sector_size may be 0 (unknown). */
void pm_disk_from_mem(struct pm_disk *d, const void *buf, uint64_t len, unsigned sector_size);
/* The virtual disk of an open image (image/image.h); sector size unknown. */
void pm_disk_from_image(struct pm_disk *d, struct pm_image *img);
void pm_disk_close(struct pm_disk *d);

/* Read len bytes at byte offset off. -ERANGE if any byte lies outside the device, -EIO on a short
 * read, -errno otherwise. */
int pm_disk_read(struct pm_disk *d, uint64_t off, void *buf, size_t len);
/* Read one 512-byte sector (kernel "read_part_sector" units). */
static inline int pm_disk_read512(struct pm_disk *d, uint64_t sector, void *buf)
{
	if (sector > UINT64_MAX / 512)
		return -34; /* ERANGE */
	return pm_disk_read(d, sector * 512, buf, 512);
}
/* Device size in 512-byte sectors. */
static inline uint64_t pm_disk_sectors(const struct pm_disk *d)
{
	return d->size / 512;
}

#endif
