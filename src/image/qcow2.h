/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to qcow2.c (reads) and qcow2-write.c (writes, check, create): the parsed header. */
#ifndef PARTMAP_IMAGE_QCOW2_H
#define PARTMAP_IMAGE_QCOW2_H

#include "format.h"

#include <pthread.h>

#define QCOW2_MAGIC 0x514649fbu          /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)    /* qemu's limit on the L1 table */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20) /* qemu's limit on the refcount table */
#define QCOW2_MAX_BACKING_NAME 1023

#define INCOMPAT_DIRTY 0x1u
#define INCOMPAT_CORRUPT 0x2u
#define INCOMPAT_DATA_FILE 0x4u
#define INCOMPAT_COMPRESSION 0x8u
#define INCOMPAT_EXTL2 0x10u
#define INCOMPAT_KNOWN 0x1fu
#define AUTOCLEAR_BITMAPS 0x1u
#define AUTOCLEAR_DATA_FILE_RAW 0x2u
#define AUTOCLEAR_KNOWN 0x3u

#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_FEATURE_NAMES 0x6803f857u
#define EXT_DATA_FILE 0x44415441u
#define EXT_BITMAPS 0x23852875u

#define ENTRY_OFFSET_MASK 0x00fffffffffffe00ull
#define ENTRY_COMPRESSED (1ull << 62)
#define ENTRY_COPIED (1ull << 63)
#define ENTRY_ZERO 1ull
#define ENTRY_RESERVED 0x3f000000000001feull /* a standard cluster's reserved bits (qemu: corrupt) */
#define REFTABLE_OFFSET_MASK 0xfffffffffffffe00ull

/* header field offsets */
#define HDR_L1_SIZE 36
#define HDR_L1_OFFSET 40
#define HDR_REFTABLE_OFFSET 48
#define HDR_REFTABLE_CLUSTERS 56
#define HDR_NB_SNAPSHOTS 60
#define HDR_SNAPSHOTS_OFFSET 64
#define HDR_INCOMPAT 72
#define HDR_COMPAT 80
#define HDR_AUTOCLEAR 88
#define HDR_REFCOUNT_ORDER 96

#define FID_IMAGE 0
#define FID_DATA 1

struct qcow2w;

struct qcow2 {
	unsigned version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	unsigned l2_bits;          /* log2 of the entries per L2 table */
	unsigned entry_size;       /* 8, or 16 with extended L2 */
	bool ext_l2, zstd, data_file;
	uint64_t sub_size;         /* subcluster size (extended L2) */
	uint64_t l1_off;
	uint32_t l1_size;
	unsigned csize_shift;
	uint64_t csize_mask;
	int data_fd;               /* the external data file, or the image */
	uint64_t data_size;
	char *data_path;
	/* for writes and check */
	unsigned refcount_order;
	uint64_t reftable_off;
	uint32_t reftable_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_off;
	uint64_t incompat, compat, autoclear;
	uint64_t bitmaps_ext;      /* offset of the bitmaps extension's data in the file, 0: none */
	struct qcow2w *w;          /* writer state, made at the first write */
	pthread_mutex_t wlock;     /* one writer at a time (write, flush, discard) */
	bool wlock_init;
};

/* qcow2.c */
int pm_qcow2_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc);

/* qcow2-write.c */
int pm_qcow2_write(struct pm_image *img, uint64_t off, const void *buf, size_t len);
int pm_qcow2_flush(struct pm_image *img);
int pm_qcow2_discard(struct pm_image *img, uint64_t off, uint64_t len);
void pm_qcow2_write_close(struct pm_image *img);
/* 1 and the len bytes at byte at of the L2 table at l2_off in buf, when the writer holds that table
 * (maybe dirty, newer than the file); 0: read it from the file. */
int pm_qcow2_cached_l2(struct qcow2 *q, uint64_t l2_off, uint64_t at, void *buf, size_t len);
int pm_qcow2_check(struct pm_image *img, bool fix_leaks, struct pm_image_check *res);
int pm_qcow2_create(const char *path, const struct pm_image_create_opts *o, struct pm_image_diag *diag);

#endif
