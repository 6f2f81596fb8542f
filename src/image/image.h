/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image layer: a VM disk image (raw, qcow2, VMDK, VHD, VHDX, VDI) opened as a virtual disk, with
 * its virtual size and reads of any byte range of it. It sits below the sector reader (disk.h), so
 * every partition-table reader works on every format.
 *
 * Reads are safe from several threads at once (the table caches take a lock). Memory is bounded
 * whatever the virtual size: per layer PM_IMG_META_SLOTS metadata windows of at most
 * PM_IMG_META_WINDOW bytes and PM_IMG_DATA_SLOTS decoded (decompressed) clusters; chains are at most
 * PM_IMG_MAX_CHAIN layers deep. */
#ifndef PARTMAP_IMAGE_H
#define PARTMAP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_IMG_MAX_CHAIN 16          /* layers in a backing chain, the top one included */
#define PM_IMG_META_WINDOW 65536     /* bytes of a table read at once */
#define PM_IMG_META_SLOTS 32         /* cached table windows per layer (2 MiB) */
#define PM_IMG_DATA_SLOTS 4          /* decoded clusters kept per layer (at most 4 x 2 MiB) */
#define PM_IMG_MAX_WARNINGS 8

struct pm_image;

/* What an open found out, for the applets to print: the reason of a failure, and warnings. */
struct pm_image_diag {
	char error[512];
	char warnings[PM_IMG_MAX_WARNINGS][256];
	unsigned nwarnings;
};

/* One layer of an open image, for info and --json. */
struct pm_image_layer {
	const char *format;       /* "qcow2", "vmdk", ... */
	const char *path;         /* the file as partmap opened it */
	uint64_t virtual_size;    /* bytes */
	uint32_t cluster_size;    /* cluster, grain or block size in bytes; 0 for raw */
	const char *subformat;    /* "monolithicSparse", "dynamic", "fixed", "differencing", ... or NULL */
	bool writable_in_place;   /* its data lies as it is in a file (raw, fixed VHD, flat VMDK) */
};

/* Open PATH as FORMAT (NULL or "auto": detect by magic; "raw": the file's own bytes). Backing files,
 * parents and extents are opened too. Returns 0 or -errno; diag->error names the reason. */
int pm_image_open(struct pm_image **out, const char *path, const char *format, struct pm_image_diag *diag);
/* The same with flags: PM_IMG_WRITABLE opens the top layer's files read-write where they can be
 * (when not, pm_image_readonly_reason() says why). */
#define PM_IMG_WRITABLE 0x1u
/* ... and with PM_IMG_NO_FLUSH never synced, the crash-safe ordering skipped (qemu's cache=unsafe):
 * for a file being made, worth nothing until complete (image convert) */
#define PM_IMG_NO_FLUSH 0x2u
int pm_image_open_flags(struct pm_image **out, const char *path, const char *format, unsigned flags,
			struct pm_image_diag *diag);
/* The same on a descriptor already open (read-only use; it is duplicated, the caller keeps its own):
 * what was opened and checked is what is read. PATH names the image in messages and is where
 * relative backing-file names are resolved from. */
int pm_image_open_fd(struct pm_image **out, int fd, const char *path, const char *format, struct pm_image_diag *diag);
/* qemu's -snapshot (qemu-nbd --snapshot): PATH (as FORMAT, NULL: detected) becomes the backing file
 * of a temporary qcow2 overlay made in $TMPDIR, else /var/tmp, and unlinked as soon as it is open.
 * The result is writable; every write goes to the overlay and is lost at close; the image's own files
 * are only read. Its file is locked as qemu locks a backing file (read held; write and resize not
 * shared unless it is raw): -EBUSY when qemu or another partmap writes it. */
int pm_image_open_snapshot(struct pm_image **out, const char *path, const char *format, struct pm_image_diag *diag);
void pm_image_close(struct pm_image *img);
void pm_image_closep(struct pm_image **img);
#define _cleanup_image_ __attribute__((cleanup(pm_image_closep)))

uint64_t pm_image_size(const struct pm_image *img);
/* The format of the top layer. */
const char *pm_image_format(const struct pm_image *img);
/* Read len bytes of the virtual disk at off: 0, -ERANGE past the end, -EIO for a damaged image (a
 * table entry out of range, a cluster that does not decompress), -errno from the files. */
int pm_image_read(struct pm_image *img, uint64_t off, void *buf, size_t len);

/* Write len bytes of the virtual disk at off, in place: only an image opened PM_IMG_WRITABLE whose
 * readonly reason is NULL, and only where its data lies as it is in a file; -EROFS otherwise. */
int pm_image_write(struct pm_image *img, uint64_t off, const void *buf, size_t len);
/* Make every completed write durable: the format's dirty metadata written back in its safe order,
 * then fdatasync of every file of the top layer that holds data. */
int pm_image_sync(struct pm_image *img);
/* Release a range where the format can (see pm_image_fmt.discard); 0 where it cannot. */
int pm_image_discard(struct pm_image *img, uint64_t off, uint64_t len);
/* Make a range read as zeros (a hole punched in the virtual disk): released where the format can,
 * zeros written over what still reads otherwise. */
int pm_image_zero_range(struct pm_image *img, uint64_t off, uint64_t len);
/* What a check found (qemu-img check's counts): references against refcounts. report, when set,
 * is given one line per finding ("Leaked cluster 5 refcount=1 reference=0", "ERROR ..."). */
struct pm_image_check {
	uint64_t corruptions;
	uint64_t leaks;           /* clusters with a refcount above their references */
	uint64_t leaks_fixed;
	uint64_t clusters, allocated;
	void (*report)(void *ctx, const char *line);
	void *ctx;
};
/* Check the image's own metadata; fix_leaks lowers leaked refcounts (the image opened
 * PM_IMG_WRITABLE) and res then says what is left. -ENOTSUP for a format without a check (qcow2 has
 * one). Memory: 4 bytes per cluster of the file. */
int pm_image_check(struct pm_image *img, bool fix_leaks, struct pm_image_check *res);
/* A new image file (qemu-img create): FORMAT at PATH, virtual size o->size (0: the backing file's),
 * over o->backing (NULL: blank; a relative name is relative to PATH's folder) of format
 * o->backing_fmt (NULL: detected). An existing file is replaced. -ENOTSUP for formats without it. */
struct pm_image_create_opts {
	uint64_t size;
	const char *backing;
	const char *backing_fmt;
	uint32_t cluster_size;    /* 0: the format's default (qcow2: 64 KiB) */
};
int pm_image_create(const char *path, const char *format, const struct pm_image_create_opts *o,
		    struct pm_image_diag *diag);
/* The exit status of an applet refused an image because another process holds its lock (-EBUSY from
 * pm_image_open_flags with PM_IMG_WRITABLE: qemu, or another partmap, writes it). */
#define PM_EXIT_LOCKED 3
/* Wait until no open file description of the file behind fd (another process's) holds qemu's "write"
 * permission lock: a writer (partmap's server, qemu) has closed the image, its last flush done.
 * Polls every 10 ms for at most timeout_ms. 0, -ETIMEDOUT, or -errno. */
int pm_image_wait_unlocked(int fd, unsigned timeout_ms);

/* Extents of the virtual disk, for sparse copies: from off, how many bytes (at most max) are all
 * PM_IMG_DATA or all PM_IMG_ZERO (reads as zeros without reading data). Returns the kind or -errno. */
#define PM_IMG_DATA 1
#define PM_IMG_ZERO 2
int pm_image_extent(struct pm_image *img, uint64_t off, uint64_t max, uint64_t *len);

/* The chain, top first; returns the number of layers (at most PM_IMG_MAX_CHAIN). */
unsigned pm_image_layers(const struct pm_image *img, struct pm_image_layer *layers, unsigned max);
/* Why writes are not possible, or NULL when every layer is one file read-write in place (raw). */
const char *pm_image_readonly_reason(const struct pm_image *img);
/* Bytes the image's files take on disk (st_blocks), all layers and extents. */
uint64_t pm_image_allocated(const struct pm_image *img);
/* The raw byte range of the file behind the whole virtual disk, when there is one (raw, fixed VHD,
 * a single flat VMDK extent): 0 with *path set; -ENOTSUP otherwise. */
int pm_image_flat_file(const struct pm_image *img, const char **path, uint64_t *offset);

/* Names of the formats, for --format and --help; NULL-terminated. */
extern const char *const pm_image_formats[];

#endif
