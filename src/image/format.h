/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Private to src/image/: what a format reader implements and the helpers it shares (bounded file
 * reads, the table-window cache, the decoded-cluster cache, backing files, decompression). */
#ifndef PARTMAP_IMAGE_FORMAT_H
#define PARTMAP_IMAGE_FORMAT_H

#include "image.h"

#include <pthread.h>
#include <sys/types.h>

#define PM_IMG_BELOW 3           /* not in this layer: the backing file's bytes (or zeros) */
#define PM_IMG_DECODE 4          /* a compressed unit: decoded, then copied from */
#define PM_IMG_PROBE_HEAD 512    /* bytes of the file's start given to probe(): every magic lies there */
#define PM_IMG_EXTENT_JOIN 4096  /* pieces pm_image_extent() joins into one answer */

struct pm_image;
struct pm_img_piece;

typedef int (*pm_decode_fn)(struct pm_image *img, const struct pm_img_piece *pc, uint8_t *out, size_t len);

/* What lies at a guest offset, as a format's map() says: len bytes (> 0) of one kind. */
struct pm_img_piece {
	int kind;                 /* PM_IMG_DATA, PM_IMG_ZERO, PM_IMG_BELOW or PM_IMG_DECODE */
	uint64_t len;
	bool hole;                /* ZERO, but a hole in a file at fd/host: written in place */
	int fd;                   /* DATA (and a hole): the file and the offset of the first byte in it */
	uint64_t fsize;
	uint64_t host;
	uint32_t fid;             /* DECODE: the unit (file id, key = its host offset), its size and */
	uint64_t key;             /* where the piece starts in it; decode() fills the unit */
	uint64_t unit, unit_off;
	pm_decode_fn decode;
	uint64_t arg;             /* for decode() */
	const void *argp;
};

struct pm_image_fmt {
	const char *name;
	/* 1 when the file is of this format: head = the first bytes (n of them); tail = its last 512
	 * bytes (all zeros when the file is shorter), or NULL in the first pass, which looks at the
	 * start only (most formats have their magic there; a fixed VHD has it only at its end). */
	int (*probe)(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize);
	/* Parse the headers, set size (and cluster_size, subformat, in_place), open what it needs. */
	int (*open)(struct pm_image *img);
	/* What lies at off, for at most max bytes (off < size, max > 0): fills pc; 0 or -errno. */
	int (*map)(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc);
	/* free img->priv and what it holds; NULL: img->priv is freed */
	void (*close)(struct pm_image *img);
	/* fdatasync the files holding data besides img->fd (extents, external data); optional */
	int (*sync)(struct pm_image *img);
	/* The write path of a sparse format (top layer only; NULL: only data that lies as it is in a
	 * file is written, by image.c). Write len bytes of the virtual disk at off (inside it; any
	 * alignment), allocating what is needed in the format's crash-safe order: a kill at any moment
	 * leaves at worst leaked clusters, never a table entry pointing at unwritten data. Thread-safe
	 * (the format takes its own lock). */
	int (*write)(struct pm_image *img, uint64_t off, const void *buf, size_t len);
	/* Make every write completed before the call durable: dirty metadata written back in the safe
	 * order, then the files synced. NULL: image.c's fdatasync of the files. */
	int (*flush)(struct pm_image *img);
	/* Release the range where the format can (qcow2: zero clusters or unallocated, the host space
	 * punched out); bytes that cannot be released are left as they are. NULL: discard is a no-op. */
	int (*discard)(struct pm_image *img, uint64_t off, uint64_t len);
	/* Called once a top layer opened for writing holds its locks (and can be written: no readonly
	 * reason), before any other use: what must change in the file before anything else does (VHDX:
	 * a pending log replayed). NULL: nothing. A failure fails the open. */
	int (*opened)(struct pm_image *img);
	/* Check the top layer's metadata (see pm_image_check); NULL: -ENOTSUP. */
	int (*check)(struct pm_image *img, bool fix_leaks, struct pm_image_check *res);
	/* Make a new image file (see pm_image_create); NULL: -ENOTSUP. */
	int (*create)(const char *path, const struct pm_image_create_opts *o, struct pm_image_diag *diag);
};

extern const struct pm_image_fmt pm_fmt_raw, pm_fmt_qcow2, pm_fmt_vmdk, pm_fmt_vhd, pm_fmt_vhdx, pm_fmt_vdi;

/* A cache of byte ranges, keyed by (file id, offset); thread-safe; nslots buffers of slot_max. */
struct pm_bcache {
	pthread_mutex_t lock;
	bool init;
	unsigned nslots;
	size_t slot_max;
	uint64_t clock;
	struct {
		uint32_t fid;
		uint64_t off;
		size_t len;       /* 0 = empty */
		uint64_t stamp;
		uint8_t *data;
	} slot[PM_IMG_META_SLOTS];
};

/* Where a format's own structures (headers, tables, logs) lie in its image file: sorted, disjoint.
 * A writer never writes guest data over them nor frees them (qemu's overlap check): a table entry
 * that points there belongs to a damaged or crafted image (write.c). */
struct pm_range {
	uint64_t off, len;
};

struct pm_ranges {
	struct pm_range *r;
	size_t n, cap;
};

struct pm_image {
	const struct pm_image_fmt *fmt;
	char *path;               /* as opened (a backing file: resolved against its overlay's folder) */
	int fd;
	uint64_t file_size;
	uint64_t size;            /* virtual size, bytes */
	uint32_t cluster_size;
	const char *subformat;
	bool in_place;            /* data lies as it is in files: writable in place */
	bool want_write;          /* opened PM_IMG_WRITABLE (top layer only) */
	bool files_rw;            /* its files are open read-write */
	bool no_flush;            /* never synced (qemu's cache=unsafe): a --snapshot overlay, a file being made */
	const char *ro_reason;    /* set by a format that cannot be written */
	uint64_t extra_allocated; /* bytes taken by its files on disk */
	const char *flat_path;    /* the whole virtual disk lies as it is in this file ... */
	uint64_t flat_offset;     /* ... from this byte on (set by the format) */
	struct pm_image *backing;
	unsigned depth;           /* 0 = the top layer */
	dev_t st_dev;
	ino_t st_ino;
	void *priv;
	struct pm_bcache meta;    /* table windows */
	struct pm_ranges tables;  /* where the format's structures lie in fd (formats that write fill it) */
	struct pm_bcache dec;     /* decoded clusters */
	void *zstd_pool[PM_IMG_DATA_SLOTS]; /* idle zstd contexts (under dec.lock): one made per cluster costs more than the cluster */
	unsigned nzstd;
	struct pm_image_diag *diag; /* during open only */
	const struct pm_image *top; /* for loop detection during open */
};

/* Messages during open (no-ops after it). pm_img_fail returns err. */
void pm_img_warn(struct pm_image *img, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pm_img_fail(struct pm_image *img, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* pread of exactly len bytes inside [0, fsize): -EIO past the end or on a short read. */
int pm_img_pread(int fd, uint64_t fsize, uint64_t off, void *buf, size_t len);
/* Read len bytes at byte 'at' of a table that lies at tbl_off, tbl_len bytes long, in file fid
 * (fd, fsize), through the image's table cache (windows of PM_IMG_META_WINDOW from the table's
 * start). -EIO when the bytes lie outside the table or the file. */
int pm_img_table(struct pm_image *img, uint32_t fid, int fd, uint64_t fsize, uint64_t tbl_off, uint64_t tbl_len,
		 uint64_t at, void *buf, size_t len);
/* Write where the format's map() says the data lies as it is in a file (or in a hole of the file
 * itself); -EROFS where a table would have to change. */
int pm_img_write_in_place(struct pm_image *img, uint64_t off, const void *buf, size_t len);
/* The bytes [off, off+len) of file fid were just written (pwrite done): every cached table window
 * holding any of them is patched, so that reads never see the bytes as they were. Call it after the
 * pwrite (a window read in between then holds the new bytes already). */
void pm_img_table_written(struct pm_image *img, uint32_t fid, uint64_t off, const void *buf, size_t len);
/* A run of equal bits in a sector bitmap (VHD: most significant bit first; VHDX: least significant
 * first) that lies at bm_off, bm_len bytes long, in the image's own file: the value of bit 'first'
 * and how many bits from it, at most 'max', have that value. Read through the table cache a few
 * dozen bytes at a time. 0, or -EIO outside the bitmap. */
int pm_img_bitmap_run(struct pm_image *img, uint64_t bm_off, uint64_t bm_len, bool msb_first, uint64_t first,
		      uint64_t max, bool *value, uint64_t *run);
/* Open the backing/parent file NAME (relative to the folder of img->path unless absolute) as FORMAT
 * (NULL: detect) into img->backing; checks depth and loops. want_size: unused. */
int pm_img_open_backing(struct pm_image *img, const char *name, const char *format);
/* A parent named by a locator (VHD, VHDX): path, as stored (Windows '\' separators, a leading ".\"
 * for relative ones), is made a Linux path in place and tried as the backing file. -ENOENT, silently,
 * when no file is there (the next locator may lead to it); any other failure is the open's error,
 * with its message. */
int pm_img_try_parent(struct pm_image *img, char *path, const char *format);
/* Resolve NAME against the folder of img->path into a new string (NULL on ENOMEM). */
char *pm_img_resolve(const struct pm_image *img, const char *name);
/* Open a further file of this image (an extent, an external data file), read-write when the image
 * was opened so (else read-only); its size in *size.
 * -errno with the diag set naming the path. */
int pm_img_open_file(struct pm_image *img, const char *path, const char *what, uint64_t *size);
/* The same checks for a layer about to be opened: is this file one of the layers above? */
bool pm_img_is_above(const struct pm_image *img, dev_t dev, ino_t ino);

/* Decompression. Exactly out_len bytes must come out: fewer or more is -EIO. */
int pm_inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
/* zlib-wrapped deflate; *out_len in: room, out: bytes produced; more than the room is -EIO. */
int pm_inflate_zlib(const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);
int pm_zstd_decompress(struct pm_image *img, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);
void pm_zstd_pool_free(struct pm_image *img);

uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len);

/* The write paths' helpers (write.c). A recursive mutex: the lock of a format's map() and write(). */
int pm_img_lock_init(pthread_mutex_t *m);
/* [off, off+len) of fd made to read as zeros (a hole punched, else zeros written). */
int pm_img_zero(int fd, uint64_t off, uint64_t len);
/* The file grown to end bytes when shorter (*fsize follows). */
int pm_img_extend(int fd, uint64_t *fsize, uint64_t end);
/* The virtual disk's bytes at off as they read now, zeros past its end. */
int pm_img_read_current(struct pm_image *img, uint64_t off, void *buf, size_t len);
/* Discard by punching holes in the data this layer maps the range to (reads then give zeros); the
 * tables stay as they are. Call with the format's lock held. */
int pm_img_punch_mapped(struct pm_image *img, uint64_t off, uint64_t len);
/* The structures' ranges (struct pm_ranges): appended while they are found, then sealed (sorted;
 * -EUCLEAN when two overlap: a damaged image); hit: does [off, off+len) touch one; insert (sealed,
 * kept sorted; -EUCLEAN when it would overlap one) and remove (the one starting at off) as a writer
 * makes or moves structures. -EUCLEAN from add when the range wraps around. */
int pm_ranges_add(struct pm_ranges *s, uint64_t off, uint64_t len);
int pm_ranges_seal(struct pm_ranges *s);
bool pm_ranges_hit(const struct pm_ranges *s, uint64_t off, uint64_t len);
int pm_ranges_insert(struct pm_ranges *s, uint64_t off, uint64_t len);
void pm_ranges_remove(struct pm_ranges *s, uint64_t off);
void pm_ranges_free(struct pm_ranges *s);

#endif
