/* Builders for VM image files in memory (qcow2, VMDK, VHD, VHDX, VDI), for the unit tests and the
 * fuzz seeds. Each makes a small valid image that tests then damage on purpose. */
#ifndef PARTMAP_IMGFMT_H
#define PARTMAP_IMGFMT_H

#include "imgbuild.h"

/* qcow2 v3 with 512-byte clusters: header in cluster 0, L1 (one entry) in cluster 1, one L2 in
 * cluster 2, data clusters from 3 on. Virtual size 32 KiB (64 clusters, one L2 table). */
#define Q2_CLUSTER 512u
#define Q2_L1 512u
#define Q2_L2 1024u
#define Q2_DATA 1536u
struct img q2_new(unsigned ndata);
/* L2 entry of guest cluster i */
void q2_set(struct img *im, unsigned i, uint64_t entry);
/* A compressed-cluster entry for data at byte off, nsec 512-byte sectors long (beyond the first). */
uint64_t q2_compressed(uint64_t off, uint64_t extra_sectors);
/* Raw deflate of len bytes into out (room outlen); returns the compressed length. */
size_t deflate_raw(const uint8_t *in, size_t len, uint8_t *out, size_t outlen);

/* VHD dynamic (or differencing when parent_uuid is not NULL): block size 4096, nblocks blocks, all
 * unallocated. The BAT is at 1536, blocks (512-byte bitmap + data) are appended by vhd_alloc. */
struct img vhd_new(unsigned nblocks, const uint8_t *uuid, const uint8_t *parent_uuid, const char *parent_rel);
/* Allocate block b at the end of the image; returns its data offset; bitmap all ones. */
uint64_t vhd_alloc(struct img *im, unsigned b);
/* Recompute the footer checksums (both copies) and place the footer at the end. */
void vhd_finish(struct img *im);

/* VHDX: 1 MiB blocks, 512-byte sectors, virtual size nblocks MiB; differencing when parent_guid is
 * set (parent_linkage = that GUID's text, relative_path = parent_rel). Payload blocks appended by
 * vhdx_alloc (state FULLY_PRESENT, or PARTIALLY_PRESENT with the sector bitmap given). */
struct img vhdx_new(unsigned nblocks, const uint8_t *data_write_guid, const uint8_t *parent_guid, const char *parent_rel);
uint64_t vhdx_alloc(struct img *im, unsigned b, const uint8_t *bitmap_for_block);
/* Put a log entry of the header's log GUID at the log's start (an unreplayed log). */
void vhdx_add_log(struct img *im);

/* VDI dynamic: block size 4096, nblocks, all unallocated; vdi_alloc appends block b. */
struct img vdi_new(unsigned nblocks);
uint64_t vdi_alloc(struct img *im, unsigned b);
void vdi_set(struct img *im, unsigned b, uint32_t entry);

/* grow an image to size bytes (zeros) */
void img_grow(struct img *im, uint64_t size);

/* Fixed identities for a parent and a child image: VHDX data write GUIDs, VHD unique ids. */
extern const uint8_t DWG_P[16], DWG_C[16], UUID_P[16], UUID_C[16];

/* A test program's folder for image files: img_dir_make fills dir (room len) from a mkdtemp
 * template "/tmp/PREFIX.XXXXXX" and makes it (0, or -1); img_dir_remove removes it and its files
 * (0, or -1). img_path: dir/name, in one of 8 buffers used in turn (several in one call's
 * arguments). img_save writes im to dir/name: its path as img_path gives it, NULL on failure. */
int img_dir_make(char *dir, size_t len, const char *prefix);
int img_dir_remove(const char *dir);
const char *img_path(const char *dir, const char *name);
const char *img_save(const char *dir, const char *name, const struct img *im);

#endif
