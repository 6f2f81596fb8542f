/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FUSE front end (see front.h), on libfuse3's high-level API. */
#define FUSE_USE_VERSION 312
#include "front.h"
#include "fpool.h"
#include "../serve.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FRONT_NAME_MAX 64
#define FRONT_MAX_BACKGROUND 64
#define FRONT_THREADS 16
#define FRONT_CACHE_TIMEOUT 3600.0 /* attributes and names, when the files' content does not change */

struct entry {
	char name[FRONT_NAME_MAX];
	struct pm_vdev *v;
	unsigned busy;            /* requests using it now */
	unsigned opens;
	bool dead;                /* removed: no new requests */
	ino_t ino;
};

struct pm_front {
	struct pm_front_cfg cfg;
	struct fuse *fuse;
	char dir[4096];
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct entry **e;
	size_t n, cap;
	ino_t next_ino;
	bool stopping;
	char readahead[64];       /* sysfs file of the mount's read-ahead; "" when it is not raised */
	bool readahead_done;
};

static struct pm_front *me(void)
{
	return fuse_get_context()->private_data;
}

/* the entry of a path, marked busy (put() it); NULL when none */
static struct entry *get(struct pm_front *f, const char *path)
{
	struct entry *e = NULL;

	if (path[0] != '/')
		return NULL;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		if (!f->e[i]->dead && !strcmp(f->e[i]->name, path + 1)) {
			e = f->e[i];
			e->busy++;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return e;
}

static void put(struct pm_front *f, struct entry *e)
{
	pthread_mutex_lock(&f->lock);
	if (--e->busy == 0)
		pthread_cond_broadcast(&f->idle);
	pthread_mutex_unlock(&f->lock);
}

/* a vdev's size and read-only flag may change under a request (the userspace DM's files take a new
 * table's at resume): each read once per request */
static uint64_t size_of(struct entry *e)
{
	return __atomic_load_n(&e->v->size, __ATOMIC_RELAXED);
}

static bool ro_of(struct entry *e)
{
	return __atomic_load_n(&e->v->read_only, __ATOMIC_RELAXED);
}

/* a request the vdev failed (a refusal, read-only or no discard, is not logged) */
static void io_failed(struct pm_front *f, struct entry *e, const char *op, off_t off, uint64_t len, int err)
{
	if (f->cfg.io_error && err != -EROFS && err != -EOPNOTSUPP)
		f->cfg.io_error(f->cfg.arg, e->name, op, (uint64_t)off, len, err);
}

/* The kernel gives a FUSE mount 128 KiB of read-ahead (an INIT reply can only lower it), so a loop
 * device reading a served file sequentially gets it in 128 KiB requests, one round trip each. With
 * 4 MiB, read-ahead asks in requests of max_read and keeps several in flight: a cold sequential read
 * of a served qcow2 ran about twice as fast (bench/serve.sh; README). Only root may set it, in sysfs,
 * and only after INIT, which would lower it again: at the first open, which comes before the file's
 * read-ahead state is set up from it (kpartx -a reads the table from the served disk before a loop
 * device opens it). Never lowered. */
static void raise_readahead(struct pm_front *f)
{
	char cur[32];
	ssize_t n;

	if (!f->readahead[0] || __atomic_exchange_n(&f->readahead_done, true, __ATOMIC_RELAXED))
		return;
	_cleanup_close_ int fd = open(f->readahead, O_RDWR | O_CLOEXEC);
	if (fd < 0 || (n = pread(fd, cur, sizeof(cur) - 1, 0)) <= 0)
		return;
	cur[n] = 0;
	if (strtoul(cur, NULL, 10) < f->cfg.readahead_kb)
		dprintf(fd, "%u\n", f->cfg.readahead_kb);
}

static int fr_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = f->cfg.uid;
	st->st_gid = f->cfg.gid;
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		st->st_ino = 1;
		return 0;
	}
	if (!(e = get(f, path)))
		return -ENOENT;
	st->st_mode = S_IFREG | (ro_of(e) ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)size_of(e);
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	st->st_ino = e->ino;
	put(f, e);
	return 0;
}

static int fr_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct pm_front *f = me();

	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++)
		if (!f->e[i]->dead)
			fill(buf, f->e[i]->name, NULL, 0, 0);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fr_open(const char *path, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e;

	raise_readahead(f);
	if (!(e = get(f, path)))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && ro_of(e)) {
		put(f, e);
		return -EROFS;
	}
	pthread_mutex_lock(&f->lock);
	e->opens++;
	pthread_mutex_unlock(&f->lock);
	fi->direct_io = f->cfg.direct_io;
	fi->keep_cache = !f->cfg.direct_io;
	put(f, e);
	return 0;
}

static int fr_release(const char *path, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	char name[FRONT_NAME_MAX] = "";
	bool last = false;

	(void)fi;
	if (path[0] != '/')
		return 0;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		if (!strcmp(f->e[i]->name, path + 1) && f->e[i]->opens) {
			last = --f->e[i]->opens == 0;
			pm_strlcpy(name, f->e[i]->name, sizeof(name));
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (last && f->cfg.released)
		f->cfg.released(f->cfg.arg, name);
	return 0;
}

/* a request's range cut at the file's end: 1 to go on, 0 at or past it */
static int clip(struct entry *e, off_t off, size_t *len)
{
	uint64_t size = size_of(e);

	if (off < 0 || (uint64_t)off >= size)
		return 0;
	if (*len > size - (uint64_t)off)
		*len = (size_t)(size - (uint64_t)off);
	return 1;
}

/* With cfg.aligned, read replies are made in page-aligned buffers: a vdev on a block device reads it
 * with O_DIRECT, which an unaligned buffer would send through a bounce buffer and one more copy.
 * Without, plain malloc (posix_memalign costs the image server CPU: 50 ticks a GiB against 35).
 * libfuse frees read buffers (free()). Writes are handed on in libfuse's buffer as it is, aligned or
 * not: an O_DIRECT source copies it into an aligned buffer itself (vdev.c's bounce: the one copy an
 * aligned buffer here would cost too), and every other vdev needs no copy at all (a loop device's
 * file written through its page cache: sequential writes through the userspace DM 1.6 times as
 * fast as with the copy made here for all). */
#define FRONT_ALIGN 4096

static void *alloc_buf(struct pm_front *f, size_t len)
{
	void *p = NULL;

	if (!f->cfg.aligned)
		return malloc(len ? len : 1);
	return posix_memalign(&p, FRONT_ALIGN, len ? len : 1) ? NULL : p;
}

static int fr_read_buf(const char *path, struct fuse_bufvec **bufp, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e = get(f, path);
	struct fuse_bufvec *bv;
	void *mem = NULL;
	int r = 0;

	(void)fi;
	if (!e)
		return -ENOENT;
	if (clip(e, off, &len) == 0)
		len = 0; /* at or past the end */
	if (!(bv = malloc(sizeof(*bv))) || !(mem = alloc_buf(f, len))) {
		free(bv);
		put(f, e);
		return -ENOMEM;
	}
	if (len && (r = pm_vdev_read(e->v, (uint64_t)off, mem, len)) < 0)
		io_failed(f, e, "read", off, len, r);
	put(f, e);
	if (r < 0) {
		free(mem);
		free(bv);
		return -EIO;
	}
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(len);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

static int fr_write_buf(const char *path, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e = get(f, path);
	size_t len = fuse_buf_size(in);
	void *mem = NULL;
	ssize_t n;
	int r;
	bool as_is = in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD);

	(void)fi;
	if (!e)
		return -ENOENT;
	r = clip(e, off, &len);
	if (r == 0) {
		r = len ? -ENOSPC : 0;
	} else if (as_is) {
		/* libfuse's buffer as it is */
		if ((r = pm_vdev_write(e->v, (uint64_t)off, (const char *)in->buf[0].mem + in->off, len)) < 0)
			io_failed(f, e, "write", off, len, r);
	} else if (!(mem = alloc_buf(f, len))) {
		r = -ENOMEM;
	} else {
		/* the data as it came, in pieces or in a pipe, into one buffer */
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);
		dst.buf[0].mem = mem;
		n = fuse_buf_copy(&dst, in, 0);
		if (n < 0 || (size_t)n != len)
			r = n < 0 ? (int)n : -EIO;
		else if ((r = pm_vdev_write(e->v, (uint64_t)off, mem, len)) < 0)
			io_failed(f, e, "write", off, len, r);
	}
	put(f, e);
	free(mem);
	if (r < 0)
		return r == -EROFS || r == -ENOSPC || r == -ENOMEM ? r : -EIO;
	return (int)len;
}

static int fr_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e = get(f, path);
	int r;

	(void)datasync, (void)fi;
	if (!e)
		return -ENOENT;
	r = pm_vdev_flush(e->v);
	put(f, e);
	return r < 0 ? -EIO : 0;
}

/* A hole punched (the loop device's discard and write-zeroes) or, where the vdev's discard zeroes, a
 * range zeroed; an allocation is a no-op: every byte of the files is there already. */
static int fr_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e;
	size_t l = (size_t)len;
	int r = 0;

	(void)fi;
	if (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_ZERO_RANGE) && !f->cfg.discard_zeroes)
		return -EOPNOTSUPP;
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return 0;
	if (len <= 0)
		return -EINVAL;
	if (!(e = get(f, path)))
		return -ENOENT;
	if (clip(e, off, &l) > 0 && (r = pm_vdev_discard(e->v, (uint64_t)off, l)) < 0)
		io_failed(f, e, "discard", off, l, r);
	put(f, e);
	return r < 0 ? (r == -EROFS || r == -EOPNOTSUPP ? r : -EIO) : 0;
}

static int fr_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct pm_front *f = me();
	struct entry *e = get(f, path);
	int r;

	(void)fi;
	if (!e)
		return -ENOENT;
	r = (uint64_t)size == size_of(e) ? 0 : -EPERM; /* O_TRUNC opens are fine; a size change is not */
	put(f, e);
	return r;
}

static void *fr_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct pm_front *f = fuse_get_context()->private_data;

	/* many requests at once: a loop device in direct I/O mode sends its requests asynchronously,
	 * and FUSE holds back those over max_background (12 by default) */
	conn->max_background = f->cfg.max_waiting ? f->cfg.max_waiting : FRONT_MAX_BACKGROUND;
	conn->congestion_threshold = conn->max_background * 3 / 4;
	/* writes of 1 MiB at most (libfuse 3.14's limit too): the request buffers hold no more (fpool.c) */
	conn->max_write = 1u << 20;
	/* libfuse wants the same value in the mount options (pm_front_new) */
	if (f->cfg.max_read)
		conn->max_read = f->cfg.max_read;
	/* the data of a write in libfuse's buffer, not a pipe: handed on as it is (fr_write_buf), where
	 * the pipe would cost a copy out of it */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	cfg->use_ino = 1;
	/* sizes change with tables: ask every time when the content may change under the page cache */
	cfg->attr_timeout = f->cfg.direct_io ? 0 : FRONT_CACHE_TIMEOUT;
	cfg->entry_timeout = f->cfg.direct_io ? 0 : FRONT_CACHE_TIMEOUT;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = !f->cfg.direct_io;
	cfg->direct_io = f->cfg.direct_io;
	return f;
}

static const struct fuse_operations ops = {
	.getattr = fr_getattr,
	.readdir = fr_readdir,
	.open = fr_open,
	.release = fr_release,
	.read_buf = fr_read_buf,
	.write_buf = fr_write_buf,
	.fsync = fr_fsync,
	.fallocate = fr_fallocate,
	.truncate = fr_truncate,
	.init = fr_init,
};

int pm_front_new(struct pm_front **out, const char *dir, const struct pm_front_cfg *cfg)
{
	struct pm_front *f;
	char opts[4300], maxread[32] = "";

	if (cfg->max_waiting > UINT16_MAX)
		return -EINVAL; /* the kernel's max_background is 16 bits */
	if (!(f = calloc(1, sizeof(*f))))
		return -ENOMEM;
	f->cfg = *cfg;
	f->next_ino = 2;
	pm_strlcpy(f->dir, dir, sizeof(f->dir));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->idle, NULL);
	if (cfg->max_read)
		snprintf(maxread, sizeof(maxread), ",max_read=%u", cfg->max_read);
	snprintf(opts, sizeof(opts), "-ofsname=%s,subtype=partmap,default_permissions%s%s%s",
		 cfg->fsname ? cfg->fsname : "partmap", maxread, cfg->allow_other ? ",allow_other" : "",
		 cfg->read_only ? ",ro" : "");
	char prog[] = "partmap";
	char *fargv[] = { prog, opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(2, fargv);
	f->fuse = fuse_new(&args, &ops, sizeof(ops), f);
	if (!f->fuse) {
		pm_front_free(f);
		return -EIO;
	}
	if (fuse_mount(f->fuse, dir) < 0) {
		fuse_destroy(f->fuse);
		f->fuse = NULL;
		pm_front_free(f);
		return -EIO;
	}
	/* the mount's device from mountinfo: the mount is not asked (nobody answers it yet) */
	char abs_dir[4096];
	dev_t mdev;
	if (cfg->readahead_kb && geteuid() == 0 && realpath(dir, abs_dir) && pm_serve_mount_dev(abs_dir, &mdev) == 0)
		snprintf(f->readahead, sizeof(f->readahead), "/sys/class/bdi/%u:%u/read_ahead_kb", major(mdev),
			 minor(mdev));
	*out = f;
	return 0;
}

int pm_front_add(struct pm_front *f, const char *name, struct pm_vdev *v)
{
	struct entry *e;
	int r;

	if (strlen(name) >= FRONT_NAME_MAX || strchr(name, '/'))
		return -EINVAL;
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	pm_strlcpy(e->name, name, sizeof(e->name));
	e->v = v;
	pthread_mutex_lock(&f->lock);
	e->ino = f->next_ino++;
	r = pm_grow(&f->e, f->n + 1, &f->cap, sizeof(*f->e));
	if (r >= 0)
		f->e[f->n++] = e;
	pthread_mutex_unlock(&f->lock);
	if (r < 0)
		free(e);
	return r < 0 ? r : 0;
}

int pm_front_del(struct pm_front *f, const char *name)
{
	int r = -ENOENT;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		struct entry *e = f->e[i];
		if (e->dead || strcmp(e->name, name))
			continue;
		e->dead = true;
		while (e->busy)
			pthread_cond_wait(&f->idle, &f->lock);
		memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof(*f->e));
		f->n--;
		free(e);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

int pm_front_loop(struct pm_front *f)
{
	return pm_fpool_run(fuse_get_session(f->fuse), f->cfg.max_waiting + FRONT_THREADS, f->cfg.signals,
			    f->cfg.huge_buffers);
}

int pm_front_daemonize(struct pm_front *f, bool foreground)
{
	(void)f;
	return fuse_daemonize(foreground) < 0 ? -EIO : 0;
}

void pm_front_stop(struct pm_front *f)
{
	f->stopping = true;
	fuse_exit(f->fuse);
	umount2(f->dir, MNT_DETACH); /* wakes the threads reading /dev/fuse */
}

void pm_front_free(struct pm_front *f)
{
	if (!f)
		return;
	if (f->fuse) {
		if (!f->stopping)
			fuse_unmount(f->fuse);
		fuse_destroy(f->fuse);
	}
	for (size_t i = 0; i < f->n; i++)
		free(f->e[i]);
	free(f->e);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->idle);
	free(f);
}
