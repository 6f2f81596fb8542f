/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The device mapper in userspace (see udm.h): the kernel's dm-ioctl.c behaviour on devices kept in
 * memory.
 *
 * Locks: ctl serialises the ioctls (one command at a time, as the kernel's _hash_lock mostly does);
 * io (with its condition) guards what the I/O path reads: each device's live table, suspended flag
 * and requests in flight, and the device list; tables_lock is read-held by a walk over every live
 * target (snapshot-origin) and write-held for a moment before an old table is freed, so that no walk
 * still uses it. A device's I/O waits while it is suspended; suspend waits until nothing is in
 * flight. DEV_WAIT sleeps on the event condition without holding ctl. */
#include "udm.h"
#include "../target/target.h"
#include "../dm.h"
#include "../util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

struct udev_dev {
	unsigned id;
	char name[DM_NAME_LEN];
	char uuid[DM_UUID_LEN];
	dev_t dev;
	struct pm_dtab *live, *inactive;
	bool suspended;
	bool deferred;            /* removal deferred to the last close */
	bool gone;                /* removed: I/O fails, the struct is freed when unreferenced */
	bool busy_seen;           /* during remove_all: could not be removed */
	bool frozen;              /* its filesystem was frozen by the suspend (thawed on resume) */
	uint32_t event_nr;
	unsigned inflight;
	unsigned refs;            /* tables (of this engine) that refer to it */
	uint64_t size;            /* the live table's, bytes */
	bool read_only;           /* the live table's */
	bool cpu_bound;           /* the live table's, or a device's under it (cpu_classes) */
	uint32_t io_opt;          /* atomic: the live table's optimal I/O size (pm_dtab_io_opt) */
};

struct pm_udm {
	struct pm_udm_hooks h;
	pthread_mutex_t ctl;
	pthread_mutex_t io;
	pthread_cond_t io_cond;   /* inflight drained, resumed */
	pthread_cond_t ev_cond;   /* an event */
	pthread_rwlock_t tables_lock;
	struct udev_dev **d;
	size_t n, cap;
	unsigned next_id;
	bool freeing;             /* pm_udm_free: no deferred removal carried out, no hooks */
};

/* ---- lookups (under io or ctl) ---- */

static struct udev_dev *by_id(struct pm_udm *u, unsigned id)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->d[i]->id == id && !u->d[i]->gone)
			return u->d[i];
	return NULL;
}

static struct udev_dev *by_dev(struct pm_udm *u, dev_t dev)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->d[i]->dev == dev && !u->d[i]->gone)
			return u->d[i];
	return NULL;
}

static struct udev_dev *by_name(struct pm_udm *u, const char *name)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->d[i]->name, name) && !u->d[i]->gone)
			return u->d[i];
	return NULL;
}

static struct udev_dev *by_uuid(struct pm_udm *u, const char *uuid)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->d[i]->uuid[0] && !strcmp(u->d[i]->uuid, uuid) && !u->d[i]->gone)
			return u->d[i];
	return NULL;
}

/* the device an ioctl names: exactly one of uuid, name, dev (the kernel's __find_device_hash_cell) */
static struct udev_dev *find(struct pm_udm *u, const struct dm_ioctl *io)
{
	if (io->uuid[0]) {
		if (io->name[0] || io->dev)
			return NULL;
		return by_uuid(u, io->uuid);
	}
	if (io->name[0]) {
		if (io->dev)
			return NULL;
		return by_name(u, io->name);
	}
	return io->dev ? by_dev(u, pm_dev_decode(io->dev)) : NULL;
}

/* ---- I/O ---- */

/* Wait until the device may take I/O and count one in flight: the table to use, or NULL (-ENXIO). */
static struct pm_dtab *io_begin(struct pm_udm *u, unsigned id, struct udev_dev **out)
{
	struct udev_dev *d;

	pthread_mutex_lock(&u->io);
	while ((d = by_id(u, id)) && d->suspended)
		pthread_cond_wait(&u->io_cond, &u->io);
	if (!d || !d->live) {
		pthread_mutex_unlock(&u->io);
		return NULL;
	}
	d->inflight++;
	*out = d;
	pthread_mutex_unlock(&u->io);
	return d->live;
}

static void io_end(struct pm_udm *u, struct udev_dev *d)
{
	pthread_mutex_lock(&u->io);
	if (--d->inflight == 0)
		pthread_cond_broadcast(&u->io_cond);
	pthread_mutex_unlock(&u->io);
}

/* the io_class hook, for the device a request came for (outer), not for those under it */
static void io_class(struct pm_udm *u, const struct udev_dev *d, bool outer)
{
	if (outer && u->h.io_class)
		u->h.io_class(u->h.arg, __atomic_load_n(&d->cpu_bound, __ATOMIC_RELAXED));
}

static int udm_read(struct pm_udm *u, unsigned id, uint64_t off, void *buf, size_t len, bool outer)
{
	struct udev_dev *d;
	struct pm_dtab *tb = io_begin(u, id, &d);
	int r;

	if (!tb)
		return -ENXIO;
	io_class(u, d, outer);
	r = pm_dtab_read(tb, off, buf, len);
	io_end(u, d);
	return r;
}

static int udm_write(struct pm_udm *u, unsigned id, uint64_t off, const void *buf, size_t len, bool outer)
{
	struct udev_dev *d;
	struct pm_dtab *tb = io_begin(u, id, &d);
	int r;

	if (!tb)
		return -ENXIO;
	io_class(u, d, outer);
	r = tb->read_only ? -EROFS : pm_dtab_write(tb, off, buf, len);
	io_end(u, d);
	return r;
}

int pm_udm_read(struct pm_udm *u, unsigned id, uint64_t off, void *buf, size_t len)
{
	return udm_read(u, id, off, buf, len, true);
}

int pm_udm_write(struct pm_udm *u, unsigned id, uint64_t off, const void *buf, size_t len)
{
	return udm_write(u, id, off, buf, len, true);
}

int pm_udm_flush(struct pm_udm *u, unsigned id)
{
	struct udev_dev *d;
	struct pm_dtab *tb = io_begin(u, id, &d);
	int r;

	if (!tb)
		return -ENXIO;
	r = pm_dtab_flush(tb);
	io_end(u, d);
	return r;
}

int pm_udm_discard(struct pm_udm *u, unsigned id, uint64_t off, uint64_t len)
{
	struct udev_dev *d;
	struct pm_dtab *tb = io_begin(u, id, &d);
	int r;

	if (!tb)
		return -ENXIO;
	r = tb->read_only ? -EROFS : pm_dtab_discard(tb, off, len);
	io_end(u, d);
	return r;
}

int64_t pm_udm_size(struct pm_udm *u, unsigned id)
{
	struct udev_dev *d;
	int64_t r;

	pthread_mutex_lock(&u->io);
	d = by_id(u, id);
	r = d ? (int64_t)d->size : -ENOENT;
	pthread_mutex_unlock(&u->io);
	return r;
}

bool pm_udm_read_only(struct pm_udm *u, unsigned id)
{
	struct udev_dev *d;
	bool r;

	pthread_mutex_lock(&u->io);
	d = by_id(u, id);
	r = d ? d->read_only : true;
	pthread_mutex_unlock(&u->io);
	return r;
}

size_t pm_udm_count(struct pm_udm *u)
{
	size_t n = 0;

	pthread_mutex_lock(&u->io);
	for (size_t i = 0; i < u->n; i++)
		n += !u->d[i]->gone;
	pthread_mutex_unlock(&u->io);
	return n;
}

/* ---- the engine's own devices as sources of tables ---- */

struct own_src {
	struct pm_udm *u;
	struct udev_dev *d;
};

static int own_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	struct own_src *o = v->priv;
	return udm_read(o->u, o->d->id, off, buf, len, false);
}

static int own_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	struct own_src *o = v->priv;
	return udm_write(o->u, o->d->id, off, buf, len, false);
}

static int own_flush(struct pm_vdev *v)
{
	struct own_src *o = v->priv;
	int r = pm_udm_flush(o->u, o->d->id);
	return r == -ENXIO ? 0 : r;
}

static int own_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	struct own_src *o = v->priv;
	return pm_udm_discard(o->u, o->d->id, off, len);
}

static const struct pm_vdev_ops own_ops = {
	.read = own_read,
	.write = own_write,
	.flush = own_flush,
	.discard = own_discard,
};

/* Under u->io, after a live table changed: each device's cpu_bound, its live table's or that of a
 * device under it (a table's source that is one of the engine's, at any depth: at most u->n passes). */
static void cpu_classes(struct pm_udm *u)
{
	bool changed = true;

	for (size_t i = 0; i < u->n; i++)
		__atomic_store_n(&u->d[i]->cpu_bound, u->d[i]->live && u->d[i]->live->cpu_bound, __ATOMIC_RELAXED);
	for (size_t pass = 0; changed && pass < u->n; pass++) {
		changed = false;
		for (size_t i = 0; i < u->n; i++) {
			struct udev_dev *d = u->d[i];
			for (size_t k = 0; d->live && !d->cpu_bound && k < d->live->nsrc; k++) {
				struct pm_vdev *v = d->live->src[k]->vdev;
				if (v && v->ops == &own_ops && ((struct own_src *)v->priv)->d->cpu_bound) {
					__atomic_store_n(&d->cpu_bound, true, __ATOMIC_RELAXED);
					changed = true;
				}
			}
		}
	}
}

/* A source's optimal I/O size: one of the engine's devices' (its live table's when that went live),
 * a block device's as the kernel gives it */
static uint32_t src_io_opt(void *arg, const struct pm_source *s)
{
	uint64_t v;

	(void)arg;
	if (s->vdev && s->vdev->ops == &own_ops)
		return __atomic_load_n(&((struct own_src *)s->vdev->priv)->d->io_opt, __ATOMIC_RELAXED);
	return major(s->dev) && pm_queue_get(s->dev, "optimal_io_size", &v) == 0 ? (uint32_t)v : 0;
}

/* A table's source: one of the engine's devices (by number or by a node's number), else the owner's
 * environment. Called while ctl is held (TABLE_LOAD). */
static int env_open(void *arg, const char *name, bool read_only, struct pm_source *src)
{
	struct pm_udm *u = arg;
	unsigned maj, min;
	char c;
	dev_t dev = 0;
	struct stat st;

	if (sscanf(name, "%u:%u%c", &maj, &min, &c) == 2)
		dev = makedev(maj, min);
	else if (name[0] == '/' && stat(name, &st) == 0 && S_ISBLK(st.st_mode))
		dev = st.st_rdev;
	pthread_mutex_lock(&u->io);
	struct udev_dev *d = dev ? by_dev(u, dev) : NULL;
	if (d)
		d->refs++;
	pthread_mutex_unlock(&u->io);
	if (!d) {
		const struct pm_target_env *e = u->h.env ? u->h.env : pm_target_env_default();
		src->owner_data = NULL;
		return e->open_source(e->arg, name, read_only, src);
	}
	struct pm_vdev *v = calloc(1, sizeof(*v));
	struct own_src *o = calloc(1, sizeof(*o));
	if (!v || !o) {
		free(v);
		free(o);
		pthread_mutex_lock(&u->io);
		d->refs--;
		pthread_mutex_unlock(&u->io);
		return -ENOMEM;
	}
	o->u = u;
	o->d = d;
	pthread_mutex_lock(&u->io);
	*v = (struct pm_vdev){ .ops = &own_ops, .size = d->size, .read_only = read_only, .priv = o };
	pthread_mutex_unlock(&u->io);
	src->dev = d->dev;
	snprintf(src->name, sizeof(src->name), "%u:%u", major(d->dev), minor(d->dev));
	src->vdev = v;
	src->owner_data = o;
	return 0;
}

static void dev_put(struct pm_udm *u, struct udev_dev *d);
static void deferred_release(struct pm_udm *u, struct udev_dev *d);

static void env_close(void *arg, struct pm_source *src)
{
	struct pm_udm *u = arg;
	struct own_src *o = src->owner_data;
	struct udev_dev *d;
	bool last;

	if (!o) {
		const struct pm_target_env *e = u->h.env ? u->h.env : pm_target_env_default();
		e->close_source(e->arg, src);
		return;
	}
	d = o->d;
	pthread_mutex_lock(&u->io);
	d->refs--;
	/* the last table that used a device whose removal was deferred: it goes now (tables are
	 * freed under the command lock, as removals are) */
	last = d->deferred && !d->refs && !d->gone && !u->freeing;
	dev_put(u, d);
	pthread_mutex_unlock(&u->io);
	free(src->vdev);
	free(o);
	src->vdev = NULL;
	src->owner_data = NULL;
	if (last)
		deferred_release(u, d);
}

/* the event of a table: the device whose live or inactive table holds the target */
struct ev_arg {
	struct pm_udm *u;
	unsigned id;
};

static void bump_event(struct pm_udm *u, struct udev_dev *d)
{
	__atomic_add_fetch(&d->event_nr, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&u->io);
	pthread_cond_broadcast(&u->ev_cond);
	pthread_mutex_unlock(&u->io);
}

static int env_each_target(void *arg, int (*fn)(struct pm_target *ti, void *fnarg), void *fnarg)
{
	struct pm_udm *u = arg;
	struct pm_dtab **tabs;
	size_t n = 0;
	int r = 0;

	pthread_rwlock_rdlock(&u->tables_lock);
	pthread_mutex_lock(&u->io);
	tabs = calloc(u->n ? u->n : 1, sizeof(*tabs));
	for (size_t i = 0; tabs && i < u->n; i++)
		if (!u->d[i]->gone && u->d[i]->live)
			tabs[n++] = u->d[i]->live;
	pthread_mutex_unlock(&u->io);
	for (size_t i = 0; tabs && i < n && !r; i++)
		for (size_t j = 0; j < tabs[i]->n && !r; j++)
			r = fn(&tabs[i]->t[j], fnarg);
	pthread_rwlock_unlock(&u->tables_lock);
	if (!tabs)
		return -ENOMEM;
	free(tabs);
	return r;
}

/* Each table gets an environment of its own so that its events reach its device. */
struct table_env {
	struct pm_target_env env;
	struct pm_udm *u;
	unsigned id;
};

static void table_event(void *arg);

static int tenv_open(void *arg, const char *name, bool ro, struct pm_source *src)
{
	struct table_env *te = arg;
	return env_open(te->u, name, ro, src);
}

static void tenv_close(void *arg, struct pm_source *src)
{
	struct table_env *te = arg;
	env_close(te->u, src);
}

static int tenv_each(void *arg, int (*fn)(struct pm_target *ti, void *fnarg), void *fnarg)
{
	struct table_env *te = arg;
	return env_each_target(te->u, fn, fnarg);
}

static void table_event(void *arg)
{
	struct table_env *te = arg;
	struct udev_dev *d;

	pthread_mutex_lock(&te->u->io);
	d = by_id(te->u, te->id);
	pthread_mutex_unlock(&te->u->io);
	if (d)
		bump_event(te->u, d);
}

/* ---- devices ---- */

/* Free a removed device once nothing refers to it (under io). */
static void dev_put(struct pm_udm *u, struct udev_dev *d)
{
	if (!d->gone || d->refs || d->inflight)
		return;
	for (size_t i = 0; i < u->n; i++) {
		if (u->d[i] == d) {
			memmove(&u->d[i], &u->d[i + 1], (u->n - i - 1) * sizeof(*u->d));
			u->n--;
			break;
		}
	}
	free(d);
}

static void table_free(struct pm_udm *u, struct pm_dtab *tb)
{
	struct table_env *te;

	if (!tb)
		return;
	te = (struct table_env *)tb->env;
	/* no walk over live targets may still hold it */
	pthread_rwlock_wrlock(&u->tables_lock);
	pthread_rwlock_unlock(&u->tables_lock);
	pm_dtab_free(tb);
	free(te);
}

int pm_udm_new(struct pm_udm **out, const struct pm_udm_hooks *hooks)
{
	struct pm_udm *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->h = *hooks;
	pthread_mutex_init(&u->ctl, NULL);
	pthread_mutex_init(&u->io, NULL);
	pthread_cond_init(&u->io_cond, NULL);
	pthread_cond_init(&u->ev_cond, NULL);
	pthread_rwlock_init(&u->tables_lock, NULL);
	u->next_id = 1;
	*out = u;
	return 0;
}

void pm_udm_free(struct pm_udm *u)
{
	if (!u)
		return;
	u->freeing = true;
	/* tables first (they may refer to each other's devices), then the devices */
	for (size_t i = 0; i < u->n; i++) {
		struct udev_dev *d = u->d[i];
		struct pm_dtab *a = d->live, *b = d->inactive;
		d->live = d->inactive = NULL;
		table_free(u, a);
		table_free(u, b);
	}
	for (size_t i = 0; i < u->n; i++)
		free(u->d[i]);
	free(u->d);
	pthread_mutex_destroy(&u->ctl);
	pthread_mutex_destroy(&u->io);
	pthread_cond_destroy(&u->io_cond);
	pthread_cond_destroy(&u->ev_cond);
	pthread_rwlock_destroy(&u->tables_lock);
	free(u);
}

/* ---- replies ---- */

/* __dev_status: the device's state into the ioctl header */
static void dev_status(struct pm_udm *u, struct udev_dev *d, struct dm_ioctl *io)
{
	bool inactive_q = io->flags & DM_QUERY_INACTIVE_TABLE_FLAG;
	struct pm_dtab *tb = inactive_q ? d->inactive : d->live;
	int open = u->h.dev_open_count ? u->h.dev_open_count(u->h.arg, d->dev) : 0;

	io->flags &= ~(uint32_t)(DM_SUSPEND_FLAG | DM_READONLY_FLAG | DM_ACTIVE_PRESENT_FLAG |
				 DM_INACTIVE_PRESENT_FLAG | DM_DEFERRED_REMOVE);
	if (d->suspended)
		io->flags |= DM_SUSPEND_FLAG;
	if (d->deferred)
		io->flags |= DM_DEFERRED_REMOVE;
	io->dev = pm_dev_encode(d->dev);
	io->event_nr = __atomic_load_n(&d->event_nr, __ATOMIC_SEQ_CST);
	io->open_count = (open > 0 ? open : 0) + (int)d->refs;
	if (d->live)
		io->flags |= DM_ACTIVE_PRESENT_FLAG;
	if (d->inactive)
		io->flags |= DM_INACTIVE_PRESENT_FLAG;
	io->target_count = tb ? (uint32_t)tb->n : 0;
	if (inactive_q ? (d->inactive && d->inactive->read_only) : d->read_only)
		io->flags |= DM_READONLY_FLAG;
	pm_strlcpy(io->name, d->name, sizeof(io->name));
	pm_strlcpy(io->uuid, d->uuid, sizeof(io->uuid));
}

/* The payload area of a reply: from data_start to data_size. */
static char *data(struct dm_ioctl *io, size_t *room)
{
	size_t start = io->data_start ? io->data_start : sizeof(*io);

	*room = io->data_size > start ? io->data_size - start : 0;
	io->data_start = (uint32_t)start;
	return (char *)io + start;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* ---- commands ---- */

static int name_ok(const char *s)
{
	return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int cmd_create(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d;
	int r;

	io->name[sizeof(io->name) - 1] = 0;
	io->uuid[sizeof(io->uuid) - 1] = 0;
	if (!name_ok(io->name))
		return -EINVAL;
	if (by_name(u, io->name) || (io->uuid[0] && by_uuid(u, io->uuid)))
		return -EBUSY;
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	d->id = u->next_id++;
	pm_strlcpy(d->name, io->name, sizeof(d->name));
	pm_strlcpy(d->uuid, io->uuid, sizeof(d->uuid));
	if (u->h.dev_add && (r = u->h.dev_add(u->h.arg, d->id, d->name, &d->dev)) < 0) {
		free(d);
		return r;
	}
	pthread_mutex_lock(&u->io);
	r = pm_grow(&u->d, u->n + 1, &u->cap, sizeof(*u->d));
	if (r >= 0)
		u->d[u->n++] = d;
	pthread_mutex_unlock(&u->io);
	if (r < 0) {
		if (u->h.dev_remove)
			u->h.dev_remove(u->h.arg, d->id, d->name, d->dev, false);
		free(d);
		return r;
	}
	io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
	dev_status(u, d, io);
	return 0;
}

/* Stop I/O (queued from now on), wait for what is in flight; with lockfs, a filesystem mounted from
 * the device is frozen first (its dirty data written while the device still serves). */
static void suspend_dev(struct pm_udm *u, struct udev_dev *d, bool lockfs)
{
	if (lockfs && d->live && u->h.dev_freeze)
		d->frozen = u->h.dev_freeze(u->h.arg, d->dev, true) > 0;
	if (d->live)
		pm_dtab_presuspend(d->live);
	pthread_mutex_lock(&u->io);
	d->suspended = true;
	while (d->inflight)
		pthread_cond_wait(&u->io_cond, &u->io);
	pthread_mutex_unlock(&u->io);
}

/* 0: removed (d freed); 1: deferred until the last close (d stays); -EBUSY, -errno */
static int remove_dev(struct pm_udm *u, struct udev_dev *d, bool deferred)
{
	int open = u->h.dev_open_count ? u->h.dev_open_count(u->h.arg, d->dev) : 0;
	struct pm_dtab *a, *b;

	if (open > 0 || d->refs) {
		if (!deferred)
			return -EBUSY;
		d->deferred = true;
		/* opened: its block device goes at its last close (then pm_udm_release); used only by
		 * other devices' tables: when the last of those goes (deferred_release) */
		int r = open > 0 && u->h.dev_remove ? u->h.dev_remove(u->h.arg, d->id, d->name, d->dev, true) : 0;
		return r < 0 ? r : 1;
	}
	if (d->live && !d->suspended)
		pm_dtab_presuspend(d->live);
	pthread_mutex_lock(&u->io);
	d->gone = true;
	pthread_cond_broadcast(&u->io_cond); /* queued I/O fails now */
	while (d->inflight)
		pthread_cond_wait(&u->io_cond, &u->io);
	a = d->live;
	b = d->inactive;
	d->live = d->inactive = NULL;
	cpu_classes(u);
	pthread_cond_broadcast(&u->ev_cond);
	pthread_mutex_unlock(&u->io);
	if (u->h.dev_remove)
		u->h.dev_remove(u->h.arg, d->id, d->name, d->dev, false);
	table_free(u, a);
	table_free(u, b);
	pthread_mutex_lock(&u->io);
	dev_put(u, d);
	pthread_mutex_unlock(&u->io);
	return 0;
}

/* A deferred removal whose device no table uses any more (under ctl): removed now, or, when it is
 * open meanwhile, at its last close. */
static void deferred_release(struct pm_udm *u, struct udev_dev *d)
{
	int open = u->h.dev_open_count ? u->h.dev_open_count(u->h.arg, d->dev) : 0;

	if (open > 0) {
		if (u->h.dev_remove)
			u->h.dev_remove(u->h.arg, d->id, d->name, d->dev, true);
		return;
	}
	d->deferred = false;
	remove_dev(u, d, false);
}

void pm_udm_release(struct pm_udm *u, unsigned id)
{
	struct udev_dev *d;

	pthread_mutex_lock(&u->ctl);
	pthread_mutex_lock(&u->io);
	d = by_id(u, id);
	pthread_mutex_unlock(&u->io);
	if (d && d->deferred) {
		d->deferred = false; /* the last opener is gone */
		remove_dev(u, d, false);
	}
	pthread_mutex_unlock(&u->ctl);
}

static int cmd_remove(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	int r;

	if (!d)
		return -ENXIO;
	if ((r = remove_dev(u, d, io->flags & DM_DEFERRED_REMOVE)) < 0)
		return r;
	if (r == 1) { /* deferred: d is still there */
		dev_status(u, d, io);
		return 0;
	}
	io->flags &= ~(uint32_t)DM_DEFERRED_REMOVE;
	return 0;
}

static int cmd_remove_all(struct pm_udm *u, struct dm_ioctl *io)
{
	bool deferred = io->flags & DM_DEFERRED_REMOVE;

	/* devices used by other tables go after those (the kernel's repeated passes); a device that
	 * stays (open, or its removal deferred) is passed over */
	for (;;) {
		struct udev_dev *next = NULL;
		for (size_t i = 0; i < u->n && !next; i++)
			if (!u->d[i]->gone && !u->d[i]->refs && !u->d[i]->deferred && !u->d[i]->busy_seen)
				next = u->d[i];
		if (!next)
			break;
		if (remove_dev(u, next, deferred) != 0)
			next->busy_seen = true; /* still there: not tried again in this call */
	}
	for (size_t i = 0; i < u->n; i++)
		u->d[i]->busy_seen = false;
	io->data_size = 0;
	return 0;
}

static int cmd_rename(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	size_t room;
	char *p = data(io, &room), *nl = memchr(p, 0, room);
	bool set_uuid = io->flags & DM_UUID_FLAG;

	if (!nl || p == nl)
		return -EINVAL;
	if (!d)
		return -ENXIO;
	if (set_uuid) {
		if (strlen(p) >= DM_UUID_LEN)
			return -EINVAL;
		if (d->uuid[0])
			return -EINVAL; /* a uuid is set once ("uuid is already set") */
		if (by_uuid(u, p))
			return -EBUSY;
		pm_strlcpy(d->uuid, p, sizeof(d->uuid));
	} else {
		if (strlen(p) >= DM_NAME_LEN || !name_ok(p))
			return -EINVAL;
		if (by_name(u, p))
			return -EBUSY;
		pm_strlcpy(d->name, p, sizeof(d->name));
		if (u->h.dev_rename)
			u->h.dev_rename(u->h.arg, d->id, d->dev, d->name);
	}
	bump_event(u, d);
	io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
	dev_status(u, d, io);
	return 0;
}

static int cmd_suspend(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	struct pm_dtab *old = NULL;

	if (!d)
		return -ENXIO;
	if (io->flags & DM_SUSPEND_FLAG) {
		if (!d->suspended)
			suspend_dev(u, d, !(io->flags & DM_SKIP_LOCKFS_FLAG));
		io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
		dev_status(u, d, io);
		return 0;
	}
	/* resume: swap an inactive table in (suspending first), then let I/O go */
	if (d->inactive) {
		struct pm_dtab *tb = d->inactive;
		uint32_t io_opt = pm_dtab_io_opt(tb, src_io_opt, u);
		if (!d->suspended)
			suspend_dev(u, d, !(io->flags & DM_SKIP_LOCKFS_FLAG));
		pthread_mutex_lock(&u->io);
		old = d->live;
		d->live = tb;
		d->inactive = NULL;
		d->size = tb->sectors * PM_SECTOR;
		d->read_only = tb->read_only;
		__atomic_store_n(&d->io_opt, io_opt, __ATOMIC_RELAXED);
		cpu_classes(u);
		pthread_mutex_unlock(&u->io);
		if (u->h.dev_update)
			u->h.dev_update(u->h.arg, d->id, d->dev, d->size, d->read_only, io_opt);
	}
	if (d->suspended && d->live)
		pm_dtab_resume(d->live);
	pthread_mutex_lock(&u->io);
	d->suspended = false;
	pthread_cond_broadcast(&u->io_cond);
	pthread_mutex_unlock(&u->io);
	if (d->frozen && u->h.dev_freeze)
		u->h.dev_freeze(u->h.arg, d->dev, false);
	d->frozen = false;
	table_free(u, old);
	io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
	dev_status(u, d, io);
	return 0;
}

static int cmd_status(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);

	if (!d)
		return -ENXIO;
	dev_status(u, d, io);
	return 0;
}

static int cmd_load(struct pm_udm *u, struct dm_ioctl *io, char *err, size_t err_len)
{
	struct udev_dev *d = find(u, io);
	size_t room, count = io->target_count;
	char *p = data(io, &room), *end = p + room;
	struct pm_dm_target *t;
	struct pm_dtab *tb;
	struct table_env *te;
	int r = 0;

	if (!d)
		return -ENXIO;
	if (!count) {
		if (err_len)
			snprintf(err, err_len, "table: no targets specified");
		return -EINVAL;
	}
	if (count > room / sizeof(struct dm_target_spec))
		return -EINVAL;
	if (!(t = calloc(count, sizeof(*t))))
		return -ENOMEM;
	/* specs chained by next, relative to each spec; params follow each spec */
	char *s = p;
	for (size_t i = 0; i < count; i++) {
		struct dm_target_spec spec;
		if (s < p || (size_t)(end - s) < sizeof(spec)) {
			r = -EINVAL;
			break;
		}
		memcpy(&spec, s, sizeof(spec));
		char *params = s + sizeof(spec);
		char *nul = memchr(params, 0, (size_t)(end - params));
		if (!nul) {
			r = -EINVAL;
			break;
		}
		t[i].start = spec.sector_start;
		t[i].length = spec.length;
		memcpy(t[i].type, spec.target_type, sizeof(t[i].type) - 1);
		t[i].type[sizeof(t[i].type) - 1] = 0;
		t[i].params = params;
		if (i + 1 < count) {
			if (spec.next < sizeof(spec) || spec.next > (size_t)(end - s)) {
				r = -EINVAL;
				break;
			}
			s += spec.next;
		}
	}
	if (r < 0) {
		free(t);
		return r;
	}
	if (!(te = calloc(1, sizeof(*te)))) {
		free(t);
		return -ENOMEM;
	}
	te->u = u;
	te->id = d->id;
	te->env = (struct pm_target_env){
		.open_source = tenv_open,
		.close_source = tenv_close,
		.event = table_event,
		.each_target = tenv_each,
		.arg = te,
	};
	r = pm_dtab_build(&tb, t, count, io->flags & DM_READONLY_FLAG, &te->env, err, err_len);
	free(t);
	if (r < 0) {
		free(te);
		return r;
	}
	/* a table may not refer to its own device */
	for (size_t i = 0; i < tb->nsrc; i++) {
		if (tb->src[i]->dev == d->dev) {
			if (err_len)
				snprintf(err, err_len, "table: %u:%u: device refers to itself", major(d->dev), minor(d->dev));
			pm_dtab_free(tb);
			free(te);
			return -EINVAL;
		}
	}
	struct pm_dtab *old = d->inactive;
	d->inactive = tb;
	table_free(u, old);
	io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
	dev_status(u, d, io);
	return 0;
}

static int cmd_clear(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	struct pm_dtab *old;

	if (!d)
		return -ENXIO;
	old = d->inactive;
	d->inactive = NULL;
	table_free(u, old);
	io->flags &= ~(uint32_t)DM_QUERY_INACTIVE_TABLE_FLAG;
	dev_status(u, d, io);
	return 0;
}

static int cmd_table_status(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	struct pm_dtab *tb;
	struct pm_dm_target *t = NULL;
	size_t n = 0, room, off = 0;
	char *p;
	int r;

	if (!d)
		return -ENXIO;
	dev_status(u, d, io);
	tb = io->flags & DM_QUERY_INACTIVE_TABLE_FLAG ? d->inactive : d->live;
	if (!tb)
		return 0;
	r = pm_dtab_status(tb, io->flags & DM_STATUS_TABLE_FLAG, &t, &n);
	if (r < 0)
		return r;
	p = data(io, &room);
	for (size_t i = 0; i < n; i++) {
		size_t plen = strlen(t[i].params) + 1;
		size_t need = align8(sizeof(struct dm_target_spec) + plen);
		struct dm_target_spec spec = { .sector_start = t[i].start, .length = t[i].length };

		if (off + need > room) {
			io->flags |= DM_BUFFER_FULL_FLAG;
			break;
		}
		memcpy(spec.target_type, t[i].type, sizeof(spec.target_type));
		spec.next = (uint32_t)(off + need); /* replies: from the start of the data */
		memcpy(p + off, &spec, sizeof(spec));
		memcpy(p + off + sizeof(spec), t[i].params, plen);
		off += need;
	}
	io->target_count = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		explicit_bzero(t[i].params, strlen(t[i].params));
	pm_dm_targets_free(t, n);
	return 0;
}

static int cmd_deps(struct pm_udm *u, struct dm_ioctl *io)
{
	struct udev_dev *d = find(u, io);
	struct pm_dtab *tb;
	size_t room;
	char *p;
	struct dm_target_deps deps = { 0 };

	if (!d)
		return -ENXIO;
	dev_status(u, d, io);
	tb = io->flags & DM_QUERY_INACTIVE_TABLE_FLAG ? d->inactive : d->live;
	p = data(io, &room);
	deps.count = tb ? (uint32_t)tb->nsrc : 0;
	if (sizeof(deps) + deps.count * sizeof(uint64_t) > room) {
		io->flags |= DM_BUFFER_FULL_FLAG;
		return 0;
	}
	memcpy(p, &deps, sizeof(deps));
	/* the kernel lists a table's devices newest first (each one added at the head of its list) */
	for (uint32_t i = 0; i < deps.count; i++) {
		uint64_t v = pm_dev_encode(tb->src[deps.count - 1 - i]->dev);
		memcpy(p + sizeof(deps) + i * sizeof(v), &v, sizeof(v));
	}
	return 0;
}

static int cmd_list(struct pm_udm *u, struct dm_ioctl *io)
{
	size_t room, off = 0, last = SIZE_MAX;
	char *p = data(io, &room);

	if (room < sizeof(struct dm_name_list)) {
		io->flags |= DM_BUFFER_FULL_FLAG;
		return 0;
	}
	memset(p, 0, sizeof(struct dm_name_list)); /* none: one record with dev 0 */
	for (size_t i = 0; i < u->n; i++) {
		struct udev_dev *d = u->d[i];
		struct dm_name_list nl = { 0 };
		size_t need;

		if (d->gone)
			continue;
		need = align8(offsetof(struct dm_name_list, name) + strlen(d->name) + 1);
		if (off + need > room) {
			io->flags |= DM_BUFFER_FULL_FLAG;
			return 0;
		}
		if (last != SIZE_MAX) {
			uint32_t next = (uint32_t)(off - last);
			memcpy(p + last + offsetof(struct dm_name_list, next), &next, sizeof(next));
		}
		nl.dev = pm_dev_encode(d->dev);
		memcpy(p + off, &nl, offsetof(struct dm_name_list, name));
		memcpy(p + off + offsetof(struct dm_name_list, name), d->name, strlen(d->name) + 1);
		last = off;
		off += need;
	}
	return 0;
}

static int cmd_versions(struct pm_udm *u, struct dm_ioctl *io)
{
	const struct pm_target_type *types[64];
	size_t n = pm_target_type_list(types, 64), room, off = 0, last = SIZE_MAX;
	char *p = data(io, &room);

	(void)u;
	for (size_t i = 0; i < n; i++) {
		struct dm_target_versions v = { 0 };
		size_t need = align8(sizeof(v) + strlen(types[i]->name) + 1);

		if (off + need > room) {
			io->flags |= DM_BUFFER_FULL_FLAG;
			return 0;
		}
		if (last != SIZE_MAX) {
			uint32_t next = (uint32_t)(off - last);
			memcpy(p + last + offsetof(struct dm_target_versions, next), &next, sizeof(next));
		}
		memcpy(v.version, types[i]->version, sizeof(v.version));
		memcpy(p + off, &v, sizeof(v));
		memcpy(p + off + sizeof(v), types[i]->name, strlen(types[i]->name) + 1);
		last = off;
		off += need;
	}
	return 0;
}

static int cmd_message(struct pm_udm *u, struct dm_ioctl *io, char *err, size_t err_len)
{
	struct udev_dev *d = find(u, io);
	size_t room;
	char *p = data(io, &room);
	struct dm_target_msg tm;
	char reply[4096] = "";
	int r;

	if (!d)
		return -ENXIO;
	if (room < sizeof(tm) + 1 || !memchr(p + sizeof(tm), 0, room - sizeof(tm)))
		return -EINVAL;
	memcpy(&tm, p, sizeof(tm));
	if (!d->live) {
		if (err_len)
			snprintf(err, err_len, "Target message sent to device without a live table.");
		return -EINVAL;
	}
	r = pm_dtab_message(d->live, tm.sector, p + sizeof(tm), reply, sizeof(reply), err, err_len);
	if (r < 0)
		return r;
	io->flags &= ~(uint32_t)DM_DATA_OUT_FLAG;
	if (reply[0]) {
		if (strlen(reply) + 1 > room)
			io->flags |= DM_BUFFER_FULL_FLAG;
		else {
			memcpy(p, reply, strlen(reply) + 1);
			io->flags |= DM_DATA_OUT_FLAG;
		}
	}
	return 0;
}

int pm_udm_ioctl(struct pm_udm *u, unsigned cmd, struct dm_ioctl *io, char *err, size_t err_len)
{
	int r;

	if (err_len)
		err[0] = 0;
	if (io->data_size < sizeof(*io))
		return -EINVAL;
	if (io->version[0] != DM_VERSION_MAJOR)
		return -EINVAL;
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = PM_UDM_VERSION_MINOR;
	io->version[2] = 0;
	io->flags &= ~(uint32_t)(DM_BUFFER_FULL_FLAG | DM_UEVENT_GENERATED_FLAG | DM_DATA_OUT_FLAG);
	io->name[sizeof(io->name) - 1] = 0;
	io->uuid[sizeof(io->uuid) - 1] = 0;
	if (cmd == DM_DEV_WAIT_CMD) {
		/* sleeps without the command lock: events come from I/O and other commands */
		struct udev_dev *d;
		uint32_t want = io->event_nr;
		pthread_mutex_lock(&u->ctl);
		pthread_mutex_lock(&u->io);
		d = find(u, io);
		if (d)
			d->refs++;
		pthread_mutex_unlock(&u->io);
		pthread_mutex_unlock(&u->ctl);
		if (!d)
			return -ENXIO;
		pthread_mutex_lock(&u->io);
		while (!d->gone && __atomic_load_n(&d->event_nr, __ATOMIC_SEQ_CST) == want)
			pthread_cond_wait(&u->ev_cond, &u->io);
		d->refs--;
		bool gone = d->gone;
		dev_put(u, d);
		pthread_mutex_unlock(&u->io);
		if (gone)
			return -ENXIO;
		pthread_mutex_lock(&u->ctl);
		d = find(u, io);
		r = d ? (dev_status(u, d, io), 0) : -ENXIO;
		pthread_mutex_unlock(&u->ctl);
		return r;
	}
	pthread_mutex_lock(&u->ctl);
	switch (cmd) {
	case DM_VERSION_CMD:
		r = 0;
		break;
	case DM_REMOVE_ALL_CMD:
		r = cmd_remove_all(u, io);
		break;
	case DM_LIST_DEVICES_CMD:
		r = cmd_list(u, io);
		break;
	case DM_DEV_CREATE_CMD:
		r = cmd_create(u, io);
		break;
	case DM_DEV_REMOVE_CMD:
		r = cmd_remove(u, io);
		break;
	case DM_DEV_RENAME_CMD:
		r = cmd_rename(u, io);
		break;
	case DM_DEV_SUSPEND_CMD:
		r = cmd_suspend(u, io);
		break;
	case DM_DEV_STATUS_CMD:
		r = cmd_status(u, io);
		break;
	case DM_TABLE_LOAD_CMD:
		r = cmd_load(u, io, err, err_len);
		break;
	case DM_TABLE_CLEAR_CMD:
		r = cmd_clear(u, io);
		break;
	case DM_TABLE_DEPS_CMD:
		r = cmd_deps(u, io);
		break;
	case DM_TABLE_STATUS_CMD:
		r = cmd_table_status(u, io);
		break;
	case DM_LIST_VERSIONS_CMD:
		r = cmd_versions(u, io);
		break;
	case DM_TARGET_MSG_CMD:
		r = cmd_message(u, io, err, err_len);
		break;
	default:
		r = -ENOTTY;
		break;
	}
	pthread_mutex_unlock(&u->ctl);
	return r;
}
