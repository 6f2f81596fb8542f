/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A device-mapper table in userspace: targets built from their lines, I/O routed to them, their
 * sources opened once, and the registry of target types. */
#include "target.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern const struct pm_target_type pm_target_linear, pm_target_striped, pm_target_zero, pm_target_error;

/* the targets present in this build; a target file adds itself here */
#pragma weak pm_target_crypt
#pragma weak pm_target_snapshot
#pragma weak pm_target_snapshot_origin
#pragma weak pm_target_mirror
#pragma weak pm_target_delay
#pragma weak pm_target_flakey
#pragma weak pm_target_raid
extern const struct pm_target_type pm_target_crypt, pm_target_snapshot, pm_target_snapshot_origin,
	pm_target_mirror, pm_target_delay, pm_target_flakey, pm_target_raid;

static const struct pm_target_type *const all_types[] = {
	&pm_target_linear, &pm_target_striped, &pm_target_zero, &pm_target_error, &pm_target_crypt,
	&pm_target_snapshot, &pm_target_snapshot_origin, &pm_target_mirror, &pm_target_delay,
	&pm_target_flakey, &pm_target_raid,
};

const struct pm_target_type *pm_target_type_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_types); i++)
		if (all_types[i] && !strcmp(all_types[i]->name, name))
			return all_types[i];
	return NULL;
}

size_t pm_target_type_list(const struct pm_target_type **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(all_types) && n < max; i++)
		if (all_types[i])
			out[n++] = all_types[i];
	return n;
}

int pm_target_fail(struct pm_target *ti, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ti->error, sizeof(ti->error), fmt, ap);
	va_end(ap);
	return err;
}

int pm_target_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*v = x;
	return 0;
}

void pm_target_event(struct pm_target *ti)
{
	const struct pm_target_env *env = ti->table->env;

	if (env->event)
		env->event(env->arg);
}

const struct pm_target_env *pm_target_env(const struct pm_target *ti)
{
	return ti->table->env;
}

/* ---- sources ---- */

/* s onto the target's list of the devices it opened (for pm_dtab_io_opt); known: s may be there
 * already (the table had it) */
static int note_used(struct pm_target *ti, struct pm_source *s, bool known)
{
	for (size_t i = 0; known && i < ti->nused; i++)
		if (ti->used[i] == s)
			return 0;
	if (pm_grow(&ti->used, ti->nused, &ti->used_cap, sizeof(*ti->used)) < 0)
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate memory");
	ti->used[ti->nused++] = s;
	return 0;
}

int pm_target_source(struct pm_target *ti, const char *name, struct pm_source **out)
{
	struct pm_dtab *tb = ti->table;
	struct pm_source *s;
	int r;

	if (!(s = calloc(1, sizeof(*s))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate memory");
	r = tb->env->open_source(tb->env->arg, name, tb->read_only, s);
	if (r < 0) {
		free(s);
		return pm_target_fail(ti, r, "Device lookup failed");
	}
	/* the same device twice in a table: the one opened first serves both */
	for (size_t i = 0; i < tb->nsrc; i++) {
		if (tb->src[i]->dev == s->dev) {
			tb->env->close_source(tb->env->arg, s);
			free(s);
			*out = tb->src[i];
			return note_used(ti, *out, true);
		}
	}
	if (pm_grow(&tb->src, tb->nsrc, &tb->src_cap, sizeof(*tb->src)) < 0) {
		tb->env->close_source(tb->env->arg, s);
		free(s);
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate memory");
	}
	tb->src[tb->nsrc++] = s;
	*out = s;
	if (note_used(ti, s, false) < 0)
		return -ENOMEM; /* s stays with the table, which frees it */
	return 0;
}

/* the default environment: block devices */
static int default_open(void *arg, const char *name, bool read_only, struct pm_source *src)
{
	unsigned maj, min;
	char c, path[64];
	const char *p = name;
	struct stat st;
	int r;

	(void)arg;
	if (sscanf(name, "%u:%u%c", &maj, &min, &c) == 2) {
		snprintf(path, sizeof(path), "/dev/block/%u:%u", maj, min);
		p = path;
	}
	_cleanup_close_ int fd = open(p, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && p == path) {
		/* no /dev/block links (no udev): a node of our own for the call */
		char tmp[] = "/tmp/partmap-dev-XXXXXX";
		int t = mkstemp(tmp);
		if (t >= 0) {
			close(t);
			unlink(tmp);
			if (mknod(tmp, S_IFBLK | 0600, makedev(maj, min)) == 0) {
				fd = open(tmp, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
				unlink(tmp);
			}
		}
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	struct pm_vdev *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if ((r = pm_vdev_from_fd(v, fd, read_only)) < 0) {
		free(v);
		return r;
	}
	src->dev = st.st_rdev;
	snprintf(src->name, sizeof(src->name), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	src->vdev = v;
	return 0;
}

static void default_close(void *arg, struct pm_source *src)
{
	(void)arg;
	if (src->vdev) {
		pm_vdev_close(src->vdev);
		free(src->vdev);
		src->vdev = NULL;
	}
}

static const struct pm_target_env default_env = {
	.open_source = default_open,
	.close_source = default_close,
};

const struct pm_target_env *pm_target_env_default(void)
{
	return &default_env;
}

/* ---- building ---- */

int pm_split_args(const char *params, unsigned *argc, char ***argv)
{
	size_t len = strlen(params), words = 0;
	char **v;
	char *buf, *w;
	bool in = false;

	/* at most len/2+1 words; the words are copied after the pointers */
	if (!(v = malloc((len / 2 + 2) * sizeof(char *) + len + 1)))
		return -ENOMEM;
	buf = (char *)(v + len / 2 + 2);
	w = buf;
	for (const char *p = params; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			if (in)
				*w++ = 0;
			in = false;
			continue;
		}
		if (!in)
			v[words++] = w;
		in = true;
		if (*p == '\\' && p[1])
			p++;
		*w++ = *p;
	}
	if (in)
		*w = 0;
	v[words] = NULL;
	*argc = (unsigned)words;
	*argv = v;
	return 0;
}

static void target_destroy(struct pm_target *ti)
{
	if (ti->type && ti->type->dtr)
		ti->type->dtr(ti);
	ti->type = NULL;
	free(ti->used);
	ti->used = NULL;
	ti->nused = ti->used_cap = 0;
}

void pm_dtab_free(struct pm_dtab *tb)
{
	if (!tb)
		return;
	for (size_t i = 0; i < tb->n; i++)
		target_destroy(&tb->t[i]);
	for (size_t i = 0; i < tb->nsrc; i++) {
		tb->env->close_source(tb->env->arg, tb->src[i]);
		free(tb->src[i]);
	}
	free(tb->src);
	free(tb->t);
	free(tb);
}

int pm_dtab_build(struct pm_dtab **out, const struct pm_dm_target *t, size_t n, bool read_only,
		   const struct pm_target_env *env, char *err, size_t err_len)
{
	struct pm_dtab *tb;
	int r = 0;

	*out = NULL;
	if (err_len)
		err[0] = 0;
	if (!n) {
		if (err_len)
			snprintf(err, err_len, "table: no targets");
		return -EINVAL;
	}
	if (!(tb = calloc(1, sizeof(*tb))) || !(tb->t = calloc(n, sizeof(*tb->t)))) {
		free(tb);
		return -ENOMEM;
	}
	tb->env = env;
	tb->read_only = read_only;
	tb->block_size = PM_SECTOR;
	for (size_t i = 0; i < n; i++) {
		struct pm_target *ti = &tb->t[i];
		const struct pm_target_type *type = pm_target_type_find(t[i].type);
		unsigned argc;
		char **argv;

		if (!type) {
			if (err_len)
				snprintf(err, err_len, "table: %s: unknown target type", t[i].type);
			r = -EINVAL;
			break;
		}
		if (t[i].start != tb->sectors || !t[i].length) {
			if (err_len)
				snprintf(err, err_len, "table: %s: gap or zero length at sector %llu", t[i].type,
					 (unsigned long long)t[i].start);
			r = -EINVAL;
			break;
		}
		*ti = (struct pm_target){ .table = tb, .begin = t[i].start, .len = t[i].length, .read_only = read_only };
		tb->cpu_bound |= type->cpu_bound;
		if ((r = pm_split_args(t[i].params ? t[i].params : "", &argc, &argv)) < 0)
			break;
		r = type->ctr(ti, argc, argv);
		/* the words may hold a key */
		explicit_bzero(argv, (strlen(t[i].params ? t[i].params : "") / 2 + 2) * sizeof(char *) +
					     strlen(t[i].params ? t[i].params : "") + 1);
		free(argv);
		if (r < 0) {
			if (err_len)
				snprintf(err, err_len, "%s: %s", type->name, ti->error[0] ? ti->error : strerror(-r));
			target_destroy(ti); /* its list of devices: the constructor released the rest */
			break;
		}
		ti->type = type;
		tb->n = i + 1;
		tb->sectors += ti->len;
		if (ti->block_size > tb->block_size)
			tb->block_size = ti->block_size;
	}
	if (r < 0) {
		pm_dtab_free(tb);
		return r;
	}
	*out = tb;
	return 0;
}

static uint64_t lcm_not_zero(uint64_t a, uint64_t b)
{
	uint64_t x = a, y = b;

	if (!a || !b)
		return a ? a : b;
	while (y) {
		uint64_t t = x % y;
		x = y;
		y = t;
	}
	return a / x * b;
}

uint32_t pm_dtab_io_opt(const struct pm_dtab *tb, uint32_t (*dev_io_opt)(void *arg, const struct pm_source *src),
			void *arg)
{
	uint32_t io_opt = 0;

	for (size_t i = 0; i < tb->n; i++) {
		const struct pm_target *ti = &tb->t[i];
		uint32_t own = 0;
		if (ti->type->io_opt) {
			own = ti->type->io_opt(ti);
		} else {
			for (size_t k = 0; k < ti->nused; k++)
				own = (uint32_t)lcm_not_zero(own, dev_io_opt(arg, ti->used[k]));
		}
		io_opt = (uint32_t)lcm_not_zero(io_opt, own);
	}
	return io_opt;
}

/* ---- I/O ---- */

/* the target holding byte off (binary search: targets are contiguous from 0) */
static struct pm_target *find(struct pm_dtab *tb, uint64_t off)
{
	size_t lo = 0, hi = tb->n;
	uint64_t s = off / PM_SECTOR;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (tb->t[mid].begin <= s)
			lo = mid;
		else
			hi = mid;
	}
	return &tb->t[lo];
}

enum op { OP_READ, OP_WRITE, OP_DISCARD };

static int route(struct pm_dtab *tb, enum op op, uint64_t off, uint8_t *buf, uint64_t len)
{
	if (off % PM_SECTOR || len % PM_SECTOR)
		return -EINVAL;
	if (off > tb->sectors * PM_SECTOR || len > tb->sectors * PM_SECTOR - off)
		return -ERANGE;
	while (len) {
		struct pm_target *ti = find(tb, off);
		uint64_t toff = off - ti->begin * PM_SECTOR;
		uint64_t n = ti->len * PM_SECTOR - toff;
		int r;

		if (n > len)
			n = len;
		if (ti->type->max_io) {
			uint64_t m = ti->type->max_io(ti, toff);
			if (m && m < n)
				n = m;
		}
		if (op != OP_DISCARD && n > (64u << 20))
			n = 64u << 20;
		switch (op) {
		case OP_READ:
			r = ti->type->read(ti, toff, buf, (size_t)n);
			break;
		case OP_WRITE:
			r = ti->read_only ? -EROFS : ti->type->write ? ti->type->write(ti, toff, buf, (size_t)n) : -EIO;
			break;
		default:
			r = ti->read_only ? -EROFS : ti->type->discard ? ti->type->discard(ti, toff, n) : -EOPNOTSUPP;
			break;
		}
		if (r < 0)
			return r;
		off += n;
		len -= n;
		if (buf)
			buf += n;
	}
	return 0;
}

int pm_dtab_read(struct pm_dtab *tb, uint64_t off, void *buf, size_t len)
{
	return route(tb, OP_READ, off, buf, len);
}

int pm_dtab_write(struct pm_dtab *tb, uint64_t off, const void *buf, size_t len)
{
	return route(tb, OP_WRITE, off, (uint8_t *)(uintptr_t)buf, len);
}

int pm_dtab_discard(struct pm_dtab *tb, uint64_t off, uint64_t len)
{
	return route(tb, OP_DISCARD, off, NULL, len);
}

int pm_dtab_flush(struct pm_dtab *tb)
{
	int ret = 0, r;

	for (size_t i = 0; i < tb->n; i++)
		if (tb->t[i].type->flush && (r = tb->t[i].type->flush(&tb->t[i])) < 0 && !ret)
			ret = r;
	if (!tb->read_only)
		for (size_t i = 0; i < tb->nsrc; i++)
			if ((r = pm_vdev_flush(tb->src[i]->vdev)) < 0 && !ret)
				ret = r;
	return ret;
}

void pm_dtab_presuspend(struct pm_dtab *tb)
{
	for (size_t i = 0; i < tb->n; i++)
		if (tb->t[i].type->presuspend)
			tb->t[i].type->presuspend(&tb->t[i]);
}

void pm_dtab_resume(struct pm_dtab *tb)
{
	for (size_t i = 0; i < tb->n; i++)
		if (tb->t[i].type->resume)
			tb->t[i].type->resume(&tb->t[i]);
}

int pm_dtab_status(struct pm_dtab *tb, bool table, struct pm_dm_target **out, size_t *n)
{
	struct pm_dm_target *v = calloc(tb->n, sizeof(*v));
	char buf[4096];

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < tb->n; i++) {
		struct pm_target *ti = &tb->t[i];

		buf[0] = 0;
		if (ti->type->status)
			ti->type->status(ti, table, buf, sizeof(buf));
		v[i].start = ti->begin;
		v[i].length = ti->len;
		pm_strlcpy(v[i].type, ti->type->name, sizeof(v[i].type));
		if (!(v[i].params = strdup(buf))) {
			explicit_bzero(buf, sizeof(buf));
			pm_dm_targets_free(v, i);
			return -ENOMEM;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	*out = v;
	*n = tb->n;
	return 0;
}

int pm_dtab_message(struct pm_dtab *tb, uint64_t sector, const char *msg, char *reply, size_t reply_len,
		     char *err, size_t err_len)
{
	struct pm_target *ti;
	unsigned argc;
	char **argv;
	int r;

	if (err_len)
		err[0] = 0;
	if (sector >= tb->sectors) {
		if (err_len)
			snprintf(err, err_len, "Target message sector outside device.");
		return -EINVAL;
	}
	ti = find(tb, sector * PM_SECTOR);
	if (!ti->type->message) {
		if (err_len)
			snprintf(err, err_len, "Target type does not support messages");
		return -EINVAL;
	}
	if ((r = pm_split_args(msg, &argc, &argv)) < 0)
		return r;
	ti->error[0] = 0;
	r = ti->type->message(ti, argc, argv, reply, reply_len);
	free(argv);
	if (r < 0 && err_len && ti->error[0])
		snprintf(err, err_len, "%s: %s", ti->type->name, ti->error);
	return r;
}

/* ---- as a vdev ---- */

static int tv_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	return pm_dtab_read(v->priv, off, buf, len);
}

static int tv_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	return pm_dtab_write(v->priv, off, buf, len);
}

static int tv_flush(struct pm_vdev *v)
{
	return pm_dtab_flush(v->priv);
}

static int tv_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	return pm_dtab_discard(v->priv, off, len);
}

static const struct pm_vdev_ops table_ops = {
	.read = tv_read,
	.write = tv_write,
	.flush = tv_flush,
	.discard = tv_discard,
};

void pm_dtab_vdev(struct pm_dtab *tb, struct pm_vdev *v)
{
	*v = (struct pm_vdev){ .ops = &table_ops, .size = tb->sectors * PM_SECTOR, .read_only = tb->read_only, .priv = tb };
}
