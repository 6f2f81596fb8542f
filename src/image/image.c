/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image layer: the format registry, detection by magic, backing chains, and the helpers every
 * format shares (bounded reads, the table and decoded-cluster caches). */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Detection order: formats with a magic at the start first, VHD (footer at the end) last, raw never
 * by detection unless nothing else matches. */
static const struct pm_image_fmt *const formats[] = {
	&pm_fmt_qcow2, &pm_fmt_vmdk, &pm_fmt_vhdx, &pm_fmt_vdi, &pm_fmt_vhd, &pm_fmt_raw,
};

const char *const pm_image_formats[] = { "raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", NULL };

/* "vpc" is qemu's name for VHD */
static const struct pm_image_fmt *format_by_name(const char *name)
{
	if (!strcmp(name, "vpc"))
		name = "vhd";
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}

void pm_img_warn(struct pm_image *img, const char *fmt, ...)
{
	va_list ap;
	struct pm_image_diag *d = img->diag;

	if (!d || d->nwarnings >= PM_IMG_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(d->warnings[d->nwarnings++], sizeof(d->warnings[0]), fmt, ap);
	va_end(ap);
}

int pm_img_fail(struct pm_image *img, int err, const char *fmt, ...)
{
	va_list ap;

	if (img->diag && !img->diag->error[0]) {
		va_start(ap, fmt);
		vsnprintf(img->diag->error, sizeof(img->diag->error), fmt, ap);
		va_end(ap);
	}
	return err;
}

int pm_img_pread(int fd, uint64_t fsize, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	if (off > fsize || len > fsize - off)
		return -EIO;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* ---- the byte-range cache ---- */

static int bcache_init(struct pm_bcache *c, unsigned nslots, size_t slot_max)
{
	if (pthread_mutex_init(&c->lock, NULL))
		return -ENOMEM;
	c->init = true;
	c->nslots = nslots;
	c->slot_max = slot_max;
	return 0;
}

static void bcache_free(struct pm_bcache *c)
{
	if (!c->init)
		return;
	for (unsigned i = 0; i < c->nslots; i++)
		free(c->slot[i].data);
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof(*c));
}

/* Copy [off, off+n) of file fid from a slot that holds it; true when found. Lock held. */
static bool bcache_lookup(struct pm_bcache *c, uint32_t fid, uint64_t off, void *buf, size_t n)
{
	for (unsigned i = 0; i < c->nslots; i++) {
		if (c->slot[i].len && c->slot[i].fid == fid && c->slot[i].off <= off &&
		    off - c->slot[i].off <= c->slot[i].len && n <= c->slot[i].len - (off - c->slot[i].off)) {
			c->slot[i].stamp = ++c->clock;
			memcpy(buf, c->slot[i].data + (off - c->slot[i].off), n);
			return true;
		}
	}
	return false;
}

/* The least recently used slot. Lock held. */
static unsigned bcache_victim(struct pm_bcache *c)
{
	unsigned v = 0;

	for (unsigned i = 1; i < c->nslots; i++)
		if (c->slot[i].stamp < c->slot[v].stamp)
			v = i;
	return v;
}

int pm_img_table(struct pm_image *img, uint32_t fid, int fd, uint64_t fsize, uint64_t tbl_off, uint64_t tbl_len,
		 uint64_t at, void *buf, size_t len)
{
	struct pm_bcache *c = &img->meta;
	uint64_t wstart, wend;
	unsigned v;
	int r;

	if (at > tbl_len || len > tbl_len - at || tbl_off > UINT64_MAX - tbl_len)
		return -EIO;
	wstart = at / PM_IMG_META_WINDOW * PM_IMG_META_WINDOW;
	wend = wstart + PM_IMG_META_WINDOW < tbl_len ? wstart + PM_IMG_META_WINDOW : tbl_len;
	if (at + len > wend) {
		/* an entry that straddles two windows (odd table offsets): read it in two parts */
		size_t first = (size_t)(wend - at);
		r = pm_img_table(img, fid, fd, fsize, tbl_off, tbl_len, at, buf, first);
		if (r < 0)
			return r;
		return pm_img_table(img, fid, fd, fsize, tbl_off, tbl_len, wend, (uint8_t *)buf + first, len - first);
	}
	pthread_mutex_lock(&c->lock);
	if (bcache_lookup(c, fid, tbl_off + at, buf, len)) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	v = bcache_victim(c);
	if (!c->slot[v].data && !(c->slot[v].data = malloc(c->slot_max))) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	c->slot[v].len = 0;
	r = pm_img_pread(fd, fsize, tbl_off + wstart, c->slot[v].data, (size_t)(wend - wstart));
	if (r == -EIO && tbl_off + at + len <= fsize) {
		/* the table runs past the end of the file but this entry does not: read just it */
		pthread_mutex_unlock(&c->lock);
		return pm_img_pread(fd, fsize, tbl_off + at, buf, len);
	}
	if (r == 0) {
		c->slot[v].fid = fid;
		c->slot[v].off = tbl_off + wstart;
		c->slot[v].len = (size_t)(wend - wstart);
		c->slot[v].stamp = ++c->clock;
		memcpy(buf, c->slot[v].data + (at - wstart), len);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void pm_img_table_written(struct pm_image *img, uint32_t fid, uint64_t off, const void *buf, size_t len)
{
	struct pm_bcache *c = &img->meta;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nslots; i++) {
		uint64_t s = c->slot[i].off, e = s + c->slot[i].len;
		if (!c->slot[i].len || c->slot[i].fid != fid || e <= off || s >= off + len)
			continue;
		uint64_t from = s > off ? s : off, to = e < off + len ? e : off + len;
		memcpy(c->slot[i].data + (from - s), (const uint8_t *)buf + (from - off), (size_t)(to - from));
	}
	pthread_mutex_unlock(&c->lock);
}

/* Copy a piece of a decoded unit from the decoded cache, or decode it (outside the lock, so that
 * several threads decompress at once) and put it there. */
static int read_decoded(struct pm_image *img, const struct pm_img_piece *pc, void *buf)
{
	struct pm_bcache *c = &img->dec;
	uint8_t *unit;
	unsigned v;
	int r;

	if (pc->unit > c->slot_max || pc->unit_off > pc->unit || pc->len > pc->unit - pc->unit_off)
		return -EIO;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nslots; i++) {
		if (c->slot[i].len == pc->unit && c->slot[i].fid == pc->fid && c->slot[i].off == pc->key) {
			c->slot[i].stamp = ++c->clock;
			memcpy(buf, c->slot[i].data + pc->unit_off, pc->len);
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	unit = malloc(c->slot_max);
	if (!unit)
		return -ENOMEM;
	r = pc->decode(img, pc, unit, pc->unit);
	if (r < 0) {
		free(unit);
		return r;
	}
	memcpy(buf, unit + pc->unit_off, pc->len);
	/* keep it: the least recently used slot takes this buffer, its old one is freed */
	pthread_mutex_lock(&c->lock);
	v = bcache_victim(c);
	free(c->slot[v].data);
	c->slot[v].data = unit;
	c->slot[v].fid = pc->fid;
	c->slot[v].off = pc->key;
	c->slot[v].len = pc->unit;
	c->slot[v].stamp = ++c->clock;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int layer_read(struct pm_image *img, uint64_t off, void *buf, size_t len);

/* A range this layer does not hold: the backing file's bytes, zeros past its end or without one. */
static int read_below(struct pm_image *img, uint64_t off, void *buf, size_t len)
{
	struct pm_image *b = img->backing;
	size_t have = 0;

	if (b && off < b->size) {
		have = b->size - off < len ? (size_t)(b->size - off) : len;
		int r = layer_read(b, off, buf, have);
		if (r < 0)
			return r;
	}
	memset((uint8_t *)buf + have, 0, len - have);
	return 0;
}

/* One piece of the virtual disk at off, at most max bytes, as the format maps it: 0, -errno, or -EIO
 * for a format that answers with no bytes or more than asked. */
static int map_piece(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	int r;

	memset(pc, 0, sizeof(*pc));
	r = img->fmt->map(img, off, max, pc);
	if (r < 0)
		return r;
	return pc->len == 0 || pc->len > max ? -EIO : 0;
}

/* The one read loop of every format: map a piece, read it, go on. Pieces that follow each other in
 * the same file are read with one pread. */
static int layer_read(struct pm_image *img, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;
	struct pm_img_piece pc, next;
	bool have_next = false;
	int r;

	while (len) {
		if (have_next) {
			/* the piece that ended the last join: mapped already, at this offset */
			pc = next;
			have_next = false;
		} else if ((r = map_piece(img, off, len, &pc)) < 0) {
			return r;
		}
		/* DATA pieces contiguous in one file become one read; the first that is not is kept (reading
		 * DATA touches no table cache, so it stays valid) */
		while (pc.kind == PM_IMG_DATA && pc.len < len) {
			if (map_piece(img, off + pc.len, len - pc.len, &next) < 0)
				break; /* mapped again, and its error returned, on the next turn */
			if (next.kind != PM_IMG_DATA || next.fd != pc.fd || next.host != pc.host + pc.len) {
				have_next = true;
				break;
			}
			pc.len += next.len;
		}
		switch (pc.kind) {
		case PM_IMG_DATA:
			r = pm_img_pread(pc.fd, pc.fsize, pc.host, p, pc.len);
			break;
		case PM_IMG_ZERO:
			memset(p, 0, pc.len);
			r = 0;
			break;
		case PM_IMG_BELOW:
			r = read_below(img, off, p, pc.len);
			break;
		case PM_IMG_DECODE:
			r = read_decoded(img, &pc, p);
			break;
		default:
			r = -EIO;
		}
		if (r < 0)
			return r;
		p += pc.len;
		off += pc.len;
		len -= pc.len;
	}
	return 0;
}

int pm_img_bitmap_run(struct pm_image *img, uint64_t bm_off, uint64_t bm_len, bool msb_first, uint64_t first,
		      uint64_t max, bool *value, uint64_t *run)
{
	uint8_t buf[64];
	uint64_t n = 0;

	while (n < max) {
		uint64_t bit = first + n, byte = bit / 8;
		size_t want = (size_t)((max - n + bit % 8 + 7) / 8);
		int r;

		if (want > sizeof(buf))
			want = sizeof(buf);
		if (byte >= bm_len)
			return -EIO;
		if (want > bm_len - byte)
			want = (size_t)(bm_len - byte);
		r = pm_img_table(img, 0, img->fd, img->file_size, bm_off, bm_len, byte, buf, want);
		if (r < 0)
			return r;
		for (uint64_t b = bit; n < max && b < (byte + want) * 8; b++, n++) {
			unsigned sh = msb_first ? 7 - (unsigned)(b % 8) : (unsigned)(b % 8);
			bool v = (buf[b / 8 - byte] >> sh) & 1;
			if (n == 0)
				*value = v;
			else if (v != *value) {
				*run = n;
				return 0;
			}
		}
	}
	*run = n;
	return 0;
}

/* ---- opening ---- */

char *pm_img_resolve(const struct pm_image *img, const char *name)
{
	const char *slash;
	char *s;

	if (name[0] == '/' || !(slash = strrchr(img->path, '/')))
		return strdup(name);
	if (asprintf(&s, "%.*s/%s", (int)(slash - img->path), img->path, name) < 0)
		return NULL;
	return s;
}

bool pm_img_is_above(const struct pm_image *img, dev_t dev, ino_t ino)
{
	/* the layers above are reachable from the top through ->backing down to img */
	for (const struct pm_image *l = img->top; l; l = l->backing) {
		if (l->st_dev == dev && l->st_ino == ino)
			return true;
		if (l == img)
			break;
	}
	return false;
}

/* Open a file read-write when the image wants writes and it can be, else read-only. */
static int open_data_file(struct pm_image *img, const char *path)
{
	int fd = -1;

	if (img->want_write) {
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM || errno == ETXTBSY)) {
			img->files_rw = false;
			img->ro_reason = errno == EROFS ? "on a read-only file system" : "a file of it is not writable";
		}
	}
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	return fd;
}

int pm_img_open_file(struct pm_image *img, const char *path, const char *what, uint64_t *size)
{
	struct stat st;
	int fd = open_data_file(img, path);

	if (fd < 0) {
		int e = errno;
		char cwd[PATH_MAX] = "";
		if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
			cwd[0] = 0;
		return pm_img_fail(img, -e, "%s %s%s%s of %s: %s", what, cwd, cwd[0] ? "/" : "", path, img->path,
				   strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return pm_img_fail(img, -EINVAL, "%s %s: not a regular file", what, path);
	}
	*size = (uint64_t)st.st_size;
	img->extra_allocated += (uint64_t)st.st_blocks * 512;
	return fd;
}

static int layer_open(struct pm_image **out, const char *path, int fd, const char *format, unsigned flags,
		      struct pm_image_diag *diag, const struct pm_image *above);

int pm_img_open_backing(struct pm_image *img, const char *name, const char *format)
{
	_cleanup_free_ char *path = pm_img_resolve(img, name);
	struct pm_image *b = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	if (img->depth + 1 >= PM_IMG_MAX_CHAIN)
		return pm_img_fail(img, -ELOOP, "%s: the backing chain is deeper than %d layers", img->path,
				   PM_IMG_MAX_CHAIN);
	if (format && !format_by_name(format))
		return pm_img_fail(img, -ENOTSUP, "%s: backing file %s has format '%s', which partmap does not read",
				   img->path, path, format);
	r = layer_open(&b, path, -1, format, 0, img->diag, img);
	if (r < 0)
		return r;
	img->backing = b;
	return 0;
}

int pm_img_try_parent(struct pm_image *img, char *path, const char *format)
{
	struct pm_image_diag *saved = img->diag, scratch = { 0 };
	int r;

	for (char *p = path; *p; p++)
		if (*p == '\\')
			*p = '/';
	if (!strncmp(path, "./", 2))
		memmove(path, path + 2, strlen(path + 2) + 1);
	if (!path[0])
		return -ENOENT;
	img->diag = &scratch; /* a locator that leads nowhere is not yet an error */
	r = pm_img_open_backing(img, path, format);
	img->diag = saved;
	if (r < 0 && r != -ENOENT)
		return pm_img_fail(img, r, "%s", scratch.error);
	return r;
}

/* fd: the file, already open (duplicated here), or -1 to open path */
static int layer_open(struct pm_image **out, const char *path, int fd, const char *format, unsigned flags,
		      struct pm_image_diag *diag, const struct pm_image *above)
{
	struct pm_image *img;
	struct stat st;
	uint8_t head[PM_IMG_PROBE_HEAD] = { 0 }, tail[512] = { 0 };
	int r;

	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->fd = -1;
	img->diag = diag;
	img->depth = above ? above->depth + 1 : 0;
	img->top = above ? above->top : img;
	img->path = strdup(path);
	if (!img->path) {
		r = -ENOMEM;
		goto fail;
	}
	img->want_write = img->files_rw = (flags & PM_IMG_WRITABLE) && !above;
	img->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : open_data_file(img, path);
	if (img->fd < 0) {
		r = -errno;
		if (above) {
			/* name the path looked for in full: a relative one depends on the folder it ran in */
			char cwd[PATH_MAX] = "";
			if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
				cwd[0] = 0;
			pm_img_fail(img, r, "backing file %s%s%s of %s: %s", cwd, cwd[0] ? "/" : "", path, above->path,
				    strerror(-r));
		} else {
			pm_img_fail(img, r, "%s: %s", path, strerror(-r));
		}
		goto fail;
	}
	if (fstat(img->fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		r = pm_img_fail(img, -EISDIR, "%s: is a directory, not a disk image", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = pm_img_fail(img, -EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	img->st_dev = st.st_dev;
	img->st_ino = st.st_ino;
	if (above && pm_img_is_above(above, st.st_dev, st.st_ino)) {
		r = pm_img_fail(img, -ELOOP, "%s: the backing chain loops back to %s", above->path, path);
		goto fail;
	}
	img->file_size = (uint64_t)st.st_size;
	img->extra_allocated = (uint64_t)st.st_blocks * 512;

	if (format && strcmp(format, "auto")) {
		img->fmt = format_by_name(format);
		if (!img->fmt) {
			r = pm_img_fail(img, -EINVAL, "unknown image format '%s'", format);
			goto fail;
		}
	} else {
		size_t n = img->file_size < sizeof(head) ? (size_t)img->file_size : sizeof(head);
		r = pm_img_pread(img->fd, img->file_size, 0, head, n);
		/* magics at the start first; only then the last sector (a fixed VHD's footer) */
		for (int pass = 0; r == 0 && pass < 2 && !img->fmt; pass++) {
			if (pass == 1 && img->file_size >= 512)
				r = pm_img_pread(img->fd, img->file_size, img->file_size - 512, tail, 512);
			for (size_t i = 0; r == 0 && i < ARRAY_SIZE(formats); i++) {
				if (formats[i]->probe(head, n, pass ? tail : NULL, img->file_size)) {
					img->fmt = formats[i];
					break;
				}
			}
		}
		if (r < 0) {
			pm_img_fail(img, r, "%s: cannot read: %s", path, strerror(-r));
			goto fail;
		}
	}
	r = bcache_init(&img->meta, PM_IMG_META_SLOTS, PM_IMG_META_WINDOW);
	if (r == 0)
		r = bcache_init(&img->dec, PM_IMG_DATA_SLOTS, 0);
	if (r < 0)
		goto fail;
	r = img->fmt->open(img);
	if (r < 0) {
		if (diag && !diag->error[0])
			pm_img_fail(img, r, "%s: not a valid %s image: %s", path, img->fmt->name, strerror(-r));
		goto fail;
	}
	/* the decoded cache holds whole clusters: size its slots now that the format knows them */
	img->dec.slot_max = img->cluster_size;
	img->diag = NULL;
	*out = img;
	return 0;
fail:
	img->diag = NULL;
	pm_image_close(img);
	return r;
}

/* ---- qemu's image locks (qemu: block/file-posix.c) ----
 * One-byte shared OFD locks: byte 100+i while holding permission i, byte 200+i while not sharing it;
 * permissions: 0 consistent read, 1 write, 2 write unchanged, 3 resize. A process that wants
 * permission i tests byte 200+i, one that does not share it tests byte 100+i, for a lock held
 * through another open file description. Set first, then tested, as qemu does: of two processes
 * racing, at least one sees the other. */
#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define PERM_READ 0x1u
#define PERM_WRITE 0x2u
#define PERM_WRITE_UNCHANGED 0x4u
#define PERM_RESIZE 0x8u
#define PERM_ALL 0xfu

static const char *const perm_names[] = { "consistent read", "write", "write unchanged", "resize" };

static int lock_byte(int fd, int cmd, short type, off_t at, struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

/* Take perm and leave shared to others; -EBUSY (diag naming the lock) when another holder conflicts. */
static int lock_image(struct pm_image *img, unsigned perm, unsigned shared)
{
	struct flock fl;
	int r;

	for (unsigned i = 0; i < 4; i++) {
		if ((perm >> i & 1) && (r = lock_byte(img->fd, F_OFD_SETLK, F_RDLCK, LOCK_PERM_BASE + i, &fl)) < 0)
			goto fail;
		if (!(shared >> i & 1) && (r = lock_byte(img->fd, F_OFD_SETLK, F_RDLCK, LOCK_SHARED_BASE + i, &fl)) < 0)
			goto fail;
	}
	for (unsigned i = 0; i < 4; i++) {
		bool want = perm >> i & 1, unshared = !(shared >> i & 1);
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 0 ? !want : !unshared)
				continue;
			off_t at = pass == 0 ? LOCK_SHARED_BASE + i : LOCK_PERM_BASE + i;
			if ((r = lock_byte(img->fd, F_OFD_GETLK, F_WRLCK, at, &fl)) < 0)
				goto fail;
			if (fl.l_type != F_UNLCK) {
				r = pm_img_fail(img, -EBUSY,
						"%s: in use: another process (qemu, or another partmap) %s it "
						"(its \"%s\" lock, byte %ld, is held): not opened for writing",
						img->path, pass == 0 ? "does not let others use" : "writes or resizes",
						perm_names[i], (long)at);
				goto fail;
			}
		}
	}
	return 0;
fail:
	if (r != -EBUSY)
		pm_img_fail(img, r, "%s: cannot take qemu's image locks: %s", img->path, strerror(-r));
	fl = (struct flock){ .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	fcntl(img->fd, F_OFD_SETLK, &fl);
	return r;
}

int pm_image_wait_unlocked(int fd, unsigned timeout_ms)
{
	struct flock fl;
	int r;

	for (unsigned waited = 0;; waited += 10) {
		if ((r = lock_byte(fd, F_OFD_GETLK, F_WRLCK, LOCK_PERM_BASE + 1, &fl)) < 0)
			return r;
		if (fl.l_type == F_UNLCK)
			return 0;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		pm_sleep_ms(10);
	}
}

/* A writable image holds what a qemu writer holds: on its file consistent read, write and resize, not
 * shared beyond reads and unchanged writes; on every backing file consistent read, shared with writers
 * only when it is raw (qemu: a format's file holds metadata, which nobody else may write or resize;
 * measured with qemu-nbd 7.2, --snapshot included: a qcow2 or VHD base gets bytes 100, 201 and 203, a
 * raw one byte 100 alone). So qemu refuses to write (or to open without -U) an image partmap writes,
 * and partmap one qemu writes. */
static int lock_chain(struct pm_image *img)
{
	int r;

	if (!img->want_write || !img->files_rw || pm_image_readonly_reason(img))
		return 0;
	r = lock_image(img, PERM_READ | PERM_WRITE | PERM_RESIZE, PERM_READ | PERM_WRITE_UNCHANGED);
	for (struct pm_image *b = img->backing; r == 0 && b; b = b->backing)
		r = lock_image(b, PERM_READ, b->fmt == &pm_fmt_raw ? PERM_ALL : PERM_READ | PERM_WRITE_UNCHANGED);
	return r;
}

int pm_image_open_flags(struct pm_image **out, const char *path, const char *format, unsigned flags,
			struct pm_image_diag *diag)
{
	struct pm_image_diag scratch;
	int r;

	if (!diag)
		diag = &scratch;
	memset(diag, 0, sizeof(*diag));
	*out = NULL;
	r = layer_open(out, path, -1, format, flags, diag, NULL);
	if (r < 0)
		return r;
	(*out)->no_flush = flags & PM_IMG_NO_FLUSH;
	for (struct pm_image *l = *out; l; l = l->backing)
		l->diag = diag;
	r = lock_chain(*out);
	if (r == 0 && (*out)->fmt->opened && (*out)->want_write && (*out)->files_rw && !pm_image_readonly_reason(*out))
		r = (*out)->fmt->opened(*out);
	for (struct pm_image *l = *out; l; l = l->backing)
		l->diag = NULL;
	if (r < 0)
		pm_image_closep(out);
	return r;
}

int pm_image_open_fd(struct pm_image **out, int fd, const char *path, const char *format, struct pm_image_diag *diag)
{
	struct pm_image_diag scratch;

	if (!diag)
		diag = &scratch;
	memset(diag, 0, sizeof(*diag));
	*out = NULL;
	return layer_open(out, path, fd, format, 0, diag, NULL);
}

int pm_image_open(struct pm_image **out, const char *path, const char *format, struct pm_image_diag *diag)
{
	return pm_image_open_flags(out, path, format, 0, diag);
}

int pm_img_write_in_place(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		struct pm_img_piece pc;
		int r = map_piece(img, off, len, &pc);
		if (r < 0)
			return r;
		/* only where the data lies as it is (or a hole of the file itself): no table to change */
		if (pc.kind != PM_IMG_DATA && !pc.hole)
			return -EROFS;
		if (pc.fd == img->fd && pm_ranges_hit(&img->tables, pc.host, pc.len))
			return -EUCLEAN; /* the format's own structures: a damaged image */
		if ((r = pm_pwrite_all(pc.fd, p, pc.len, pc.host)) < 0)
			return r;
		p += pc.len;
		off += pc.len;
		len -= pc.len;
	}
	return 0;
}

int pm_image_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	if (off > img->size || len > img->size - off)
		return -ERANGE;
	if (!img->want_write || !img->files_rw || pm_image_readonly_reason(img))
		return -EROFS;
	if (img->fmt->write)
		return img->fmt->write(img, off, buf, len);
	return pm_img_write_in_place(img, off, buf, len);
}

int pm_image_sync(struct pm_image *img)
{
	if (img->no_flush)
		return 0; /* thrown away at close: nothing to make durable (qemu's cache=unsafe) */
	if (img->fmt->flush && img->files_rw)
		return img->fmt->flush(img);
	if (fdatasync(img->fd) < 0)
		return -errno;
	return img->fmt->sync ? img->fmt->sync(img) : 0;
}

int pm_image_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	if (off > img->size || len > img->size - off)
		return -ERANGE;
	if (!img->want_write || !img->files_rw || pm_image_readonly_reason(img))
		return -EROFS;
	return img->fmt->discard ? img->fmt->discard(img, off, len) : 0;
}

int pm_image_check(struct pm_image *img, bool fix_leaks, struct pm_image_check *res)
{
	return img->fmt->check ? img->fmt->check(img, fix_leaks, res) : -ENOTSUP;
}

int pm_image_create(const char *path, const char *format, const struct pm_image_create_opts *o,
		    struct pm_image_diag *diag)
{
	const struct pm_image_fmt *f = format_by_name(format);
	struct pm_image_diag scratch;

	if (!diag)
		diag = &scratch;
	memset(diag, 0, sizeof(*diag));
	if (!f || !f->create) {
		snprintf(diag->error, sizeof(diag->error), "creating %s images is not supported (qcow2 is)", format);
		return -ENOTSUP;
	}
	return f->create(path, o, diag);
}

int pm_image_zero_range(struct pm_image *img, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	int r = pm_image_discard(img, off, len);

	if (r < 0 && r != -EOPNOTSUPP)
		return r;
	/* whatever still reads as something else than zeros: zeros written over it */
	while (len) {
		uint64_t n;
		int kind = pm_image_extent(img, off, len, &n);
		if (kind < 0)
			return kind;
		if (n == 0 || n > len)
			return -EIO;
		if (kind == PM_IMG_DATA) {
			for (uint64_t done = 0; done < n;) {
				size_t k = n - done < sizeof(zeros) ? (size_t)(n - done) : sizeof(zeros);
				if ((r = pm_image_write(img, off + done, zeros, k)) < 0)
					return r;
				done += k;
			}
		}
		off += n;
		len -= n;
	}
	return 0;
}

void pm_image_close(struct pm_image *img)
{
	if (!img)
		return;
	pm_image_close(img->backing);
	if (img->fmt && img->priv && img->fmt->close)
		img->fmt->close(img);
	else
		free(img->priv); /* a format whose state is one allocation needs no close() */
	pm_zstd_pool_free(img);
	bcache_free(&img->meta);
	bcache_free(&img->dec);
	pm_ranges_free(&img->tables);
	if (img->fd >= 0)
		close(img->fd);
	free(img->path);
	free(img);
}

void pm_image_closep(struct pm_image **img)
{
	pm_image_close(*img);
	*img = NULL;
}

uint64_t pm_image_size(const struct pm_image *img)
{
	return img->size;
}

const char *pm_image_format(const struct pm_image *img)
{
	return img->fmt->name;
}

int pm_image_read(struct pm_image *img, uint64_t off, void *buf, size_t len)
{
	if (off > img->size || len > img->size - off)
		return -ERANGE;
	if (len == 0)
		return 0;
	return layer_read(img, off, buf, len);
}

/* The kind of the single piece at off (through the backing chain), at most max bytes. */
static int extent_once(struct pm_image *img, uint64_t off, uint64_t max, uint64_t *len)
{
	for (;;) {
		struct pm_img_piece pc;
		int r = map_piece(img, off, max, &pc);
		if (r < 0)
			return r;
		*len = pc.len;
		if (pc.kind != PM_IMG_BELOW)
			return pc.kind == PM_IMG_ZERO ? PM_IMG_ZERO : PM_IMG_DATA;
		/* not in this layer: the backing file's extent, zeros past its end */
		max = *len;
		img = img->backing;
		if (!img || off >= img->size)
			return PM_IMG_ZERO;
		if (max > img->size - off)
			max = img->size - off;
	}
}

int pm_image_extent(struct pm_image *img, uint64_t off, uint64_t max, uint64_t *len)
{
	uint64_t n;
	int kind;

	if (off >= img->size || max == 0)
		return -ERANGE;
	if (max > img->size - off)
		max = img->size - off;
	kind = extent_once(img, off, max, len);
	/* join the pieces of the same kind that follow (a bounded number: one call stays cheap) */
	for (int i = 0; kind > 0 && i < PM_IMG_EXTENT_JOIN && *len < max; i++) {
		if (extent_once(img, off + *len, max - *len, &n) != kind)
			break;
		*len += n;
	}
	return kind;
}

unsigned pm_image_layers(const struct pm_image *img, struct pm_image_layer *layers, unsigned max)
{
	unsigned n = 0;

	for (; img && n < max; img = img->backing, n++) {
		layers[n] = (struct pm_image_layer){
			.format = img->fmt->name,
			.path = img->path,
			.virtual_size = img->size,
			.cluster_size = img->cluster_size,
			.subformat = img->subformat,
			.writable_in_place = img->in_place,
		};
	}
	return n;
}

const char *pm_image_readonly_reason(const struct pm_image *img)
{
	if (img->ro_reason)
		return img->ro_reason;
	if (img->fmt->write)
		return NULL; /* the format writes its top layer itself, backing files included */
	if (!img->in_place)
		return "sparse format: partmap does not write it yet";
	if (img->backing)
		return "has a backing file";
	return NULL;
}

uint64_t pm_image_allocated(const struct pm_image *img)
{
	uint64_t n = 0;

	for (; img; img = img->backing)
		n += img->extra_allocated;
	return n;
}

/* ---- raw ---- */

static int raw_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)head, (void)n, (void)fsize;
	return tail != NULL; /* whatever no other format claims, once the end was looked at too */
}

static int raw_open(struct pm_image *img)
{
	img->size = img->file_size;
	img->in_place = true;
	img->flat_path = img->path;
	return 0;
}

static int raw_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	off_t data = lseek(img->fd, (off_t)off, SEEK_DATA), hole;

	pc->fd = img->fd;
	pc->fsize = img->file_size;
	pc->host = off;
	pc->len = max;
	pc->kind = PM_IMG_DATA;
	if (data < 0 && errno == ENXIO) { /* only a hole from here to the end */
		pc->kind = PM_IMG_ZERO;
		pc->hole = true;
	} else if (data >= 0 && (uint64_t)data > off) {
		pc->kind = PM_IMG_ZERO;
		pc->hole = true;
		if ((uint64_t)data - off < max)
			pc->len = (uint64_t)data - off;
	} else if (data >= 0 && (hole = lseek(img->fd, (off_t)off, SEEK_HOLE)) > (off_t)off &&
		   (uint64_t)hole - off < max) {
		pc->len = (uint64_t)hole - off;
	}
	return 0;
}

int pm_image_flat_file(const struct pm_image *img, const char **path, uint64_t *offset)
{
	if (img->flat_path && !img->backing) {
		*path = img->flat_path;
		*offset = img->flat_offset;
		return 0;
	}
	return -ENOTSUP;
}

const struct pm_image_fmt pm_fmt_raw = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.map = raw_map,
};
