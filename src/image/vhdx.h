/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to the VHDX reader (vhdx.c), its log (vhdx-log.c) and its write path (vhdx-write.c). */
#ifndef PARTMAP_IMAGE_VHDX_H
#define PARTMAP_IMAGE_VHDX_H

#include "format.h"

#define VHDX_KiB 1024ull
#define VHDX_MiB (1024ull * 1024)
#define VHDX_HEADER_SIZE (4 * VHDX_KiB)
#define VHDX_LOG_SECTOR 4096u

#define PB_NOT_PRESENT 0
#define PB_UNDEFINED 1
#define PB_ZERO 2
#define PB_UNMAPPED 3
#define PB_FULLY_PRESENT 6
#define PB_PARTIALLY_PRESENT 7
#define SB_PRESENT 6

struct vhdx_log;

struct vhdx {
	uint64_t bat_off, bat_len;
	uint32_t block_size, lss;
	uint64_t chunk_ratio;
	bool has_parent;
	uint8_t data_write_guid[16];
	/* the current header (4 KiB) and which copy it is (0: at 64 KiB, 1: at 128 KiB) */
	uint8_t hdr[VHDX_HEADER_SIZE];
	int cur;
	uint64_t log_off, log_len;
	/* a log that still needs replay, replayed in memory (NULL: none) */
	struct vhdx_log *log;
	/* writing: the lock also guards map()'s block table reads */
	pthread_mutex_t lock;
	bool lock_init;
	bool session;             /* FileWriteGuid and DataWriteGuid renewed (first write done) */
	uint64_t log_seq;         /* sequence number of the last log entry written */
	bool hdr_stale;           /* the older header copy still names the last log entry (applied) */
};

/* vhdx.c: the block table's entry idx (as the replayed log has it). */
int vhdx_bat_entry(struct pm_image *img, uint64_t idx, uint64_t *e);

/* vhdx-log.c. Find the log's active sequence (the header's LogGuid non-zero): replayed in memory into
 * v->log (NULL when nothing is to replay); a log that cannot be replayed is -EINVAL with the reason. */
int vhdx_log_load(struct pm_image *img, struct vhdx *v);
void vhdx_log_free(struct vhdx_log *l);
/* Read bytes of the file as they are after the log's replay (the file itself when there is none). */
int vhdx_read(struct pm_image *img, uint64_t off, void *buf, size_t len);
/* buf holds the file's bytes [off, off+len): the replayed log's bytes put over them. */
void vhdx_log_patch(const struct vhdx_log *l, uint64_t off, void *buf, size_t len);
/* Does the replayed log change any byte of [off, off+len)? */
bool vhdx_log_touches(const struct vhdx_log *l, uint64_t off, uint64_t len);
/* A DATA piece of the file: made to read the replayed log's bytes where it covers its start, else cut
 * before the next byte the log changes. */
void vhdx_log_redirect(const struct vhdx_log *l, struct pm_img_piece *pc);
/* The format's opened() hook: a log held in memory replayed in the file (the locks are held). */
int vhdx_log_replay(struct pm_image *img);
/* Both headers rewritten, the non-current one first, each flushed: a new FileWriteGuid always, a new
 * DataWriteGuid when new_data, the LogGuid given (NULL: zero). */
int vhdx_update_headers(struct pm_image *img, struct vhdx *v, bool new_data, const uint8_t *log_guid);
/* vhdx-log.c: when the older header copy still names an applied log entry, the current header
 * written over it (not flushed), so that both copies name no log. Called with v->lock held. */
int vhdx_headers_settle(struct pm_image *img, struct vhdx *v);
/* One 4 KiB sector of the metadata (at off, 4 KiB aligned) changed through the log, in four flushes
 * (the order is in vhdx-log.c): the data written before the call is flushed first. */
int vhdx_log_sector(struct pm_image *img, struct vhdx *v, uint64_t off, const uint8_t *sector);

/* vhdx-write.c */
int vhdx_write(struct pm_image *img, uint64_t off, const void *buf, size_t len);
int vhdx_flush(struct pm_image *img);
int vhdx_discard(struct pm_image *img, uint64_t off, uint64_t len);

#endif
