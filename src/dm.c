/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "dm.h"
#include "names.h"
#include "node.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/dm-ioctl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define CONTROL "/dev/mapper/control"
#define OUT_START 16384 /* first buffer for commands that return data; doubled on DM_BUFFER_FULL_FLAG */
#define COOKIE_MAGIC 0x0D4D
#define COOKIE_TRIES 64 /* semaphore keys tried before giving up (another process may hold each) */
#define UDEV_PRIMARY_SOURCE 0x40

static int set_ref(struct dm_ioctl *io, const struct pm_dm_ref *ref)
{
	if (!ref)
		return 0;
	if (ref->name) {
		if (strlen(ref->name) >= sizeof(io->name))
			return -ENAMETOOLONG;
		memcpy(io->name, ref->name, strlen(ref->name) + 1);
	} else if (ref->uuid) {
		if (strlen(ref->uuid) >= sizeof(io->uuid))
			return -ENAMETOOLONG;
		memcpy(io->uuid, ref->uuid, strlen(ref->uuid) + 1);
	} else {
		io->dev = pm_dev_encode(ref->dev);
	}
	return 0;
}

/* The ioctl itself: the kernel's, or the one that stands in for it (the userspace device mapper, a
 * test's fake kernel). -1 with errno set on failure, as ioctl(2). */
static int dm_ioctl(struct pm_dm *dm, unsigned long cmd, struct dm_ioctl *io)
{
	dm->nioctls++;
	return dm->ioctl_fn ? dm->ioctl_fn(dm, cmd, io) : ioctl(dm->fd, cmd, io);
}

/* One DM ioctl: header + payload in, header + data out (grown while the kernel says the buffer is
 * too small). *out is the reply buffer (caller frees), or NULL when out is NULL. */
static int dm_call(struct pm_dm *dm, unsigned long cmd, const struct pm_dm_ref *ref, uint32_t flags,
		   uint32_t event_nr, const void *payload, size_t plen, size_t out_size, struct dm_ioctl **out)
{
	size_t size = sizeof(struct dm_ioctl) + plen;

	if (out_size > size)
		size = out_size;
	size = (size + 7) & ~(size_t)7;
	for (;;) {
		struct dm_ioctl *io = calloc(1, size);
		int r;

		if (!io)
			return -ENOMEM;
		io->version[0] = DM_VERSION_MAJOR;
		io->version[1] = 0;
		io->version[2] = 0;
		io->data_size = (uint32_t)size;
		io->data_start = sizeof(struct dm_ioctl);
		io->flags = flags;
		io->event_nr = event_nr;
		r = set_ref(io, ref);
		if (r < 0) {
			free(io);
			return r;
		}
		if (plen)
			memcpy((char *)io + io->data_start, payload, plen);
		r = dm_ioctl(dm, cmd, io);
		if (r < 0 || (io->flags & DM_BUFFER_FULL_FLAG)) {
			/* an error, or a reply that did not fit: wipe what may hold a key, then grow or fail */
			r = r < 0 ? -errno : size < PM_DM_REPLY_MAX ? 0 : -ENOBUFS;
			if (flags & DM_SECURE_DATA_FLAG)
				explicit_bzero(io, size);
			free(io);
			if (r < 0)
				return r;
			size *= 2;
			continue;
		}
		/* the reply is the caller's to read (and, with secure data, to wipe) */
		if (out) {
			*out = io;
		} else {
			if (flags & DM_SECURE_DATA_FLAG)
				explicit_bzero(io, size);
			free(io);
		}
		return 0;
	}
}

static void fill_info(const struct dm_ioctl *io, struct pm_dm_info *info)
{
	if (!info)
		return;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, io->name, sizeof(info->name));
	info->name[sizeof(info->name) - 1] = 0;
	memcpy(info->uuid, io->uuid, sizeof(info->uuid));
	info->uuid[sizeof(info->uuid) - 1] = 0;
	info->dev = pm_dev_decode(io->dev);
	info->flags = io->flags;
	info->open_count = io->open_count;
	info->event_nr = io->event_nr;
	info->target_count = io->target_count;
	info->suspended = io->flags & DM_SUSPEND_FLAG;
	info->read_only = io->flags & DM_READONLY_FLAG;
	info->live_table = io->flags & DM_ACTIVE_PRESENT_FLAG;
	info->inactive_table = io->flags & DM_INACTIVE_PRESENT_FLAG;
	info->deferred_remove = io->flags & DM_DEFERRED_REMOVE;
}

static int control_minor(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char line[128];
	int minor = 236, m;

	if (!f)
		return minor;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		if (sscanf(line, "%d %63s", &m, name) == 2 && !strcmp(name, "device-mapper"))
			minor = m;
	}
	fclose(f);
	return minor;
}

static bool misc_has_dm(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char line[128];
	bool found = false;

	if (!f)
		return access("/sys/module/dm_mod", F_OK) == 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " device-mapper"))
			found = true;
	fclose(f);
	return found;
}

bool pm_dm_udev_running(void)
{
	return access("/run/udev/control", F_OK) == 0;
}

int pm_udev_timeout_env(int *ms)
{
	const char *s = getenv("PARTMAP_UDEV_TIMEOUT");
	unsigned long v;

	*ms = PM_UDEV_TIMEOUT_DEFAULT_MS;
	if (!s)
		return 0;
	if (pm_parse_ulong(s, PM_UDEV_TIMEOUT_MAX_S, &v) < 0)
		return -EINVAL;
	*ms = (int)v * 1000;
	return 0;
}

int pm_dm_open(struct pm_dm *dm)
{
	struct dm_ioctl *io = NULL;
	int r;

	memset(dm, 0, sizeof(*dm));
	dm->fd = open(CONTROL, O_RDWR | O_CLOEXEC);
	if (dm->fd < 0 && errno == ENOENT) {
		/* no node (no udev, a container's /dev): make it, if the kernel has a device mapper at all */
		if (!misc_has_dm())
			return -ENODEV;
		if (mkdir("/dev/mapper", 0755) < 0 && errno != EEXIST)
			return -errno;
		if (mknod(CONTROL, S_IFCHR | 0600, makedev(10, (unsigned)control_minor())) < 0 && errno != EEXIST)
			return -errno;
		dm->fd = open(CONTROL, O_RDWR | O_CLOEXEC);
	}
	if (dm->fd < 0)
		return errno == ENXIO || errno == ENODEV ? -ENODEV : -errno;
	r = dm_call(dm, DM_VERSION, NULL, 0, 0, NULL, 0, 0, &io);
	if (r < 0) {
		close(dm->fd);
		dm->fd = -1;
		return r == -ENOTTY || r == -ENXIO ? -ENODEV : r;
	}
	memcpy(dm->version, io->version, sizeof(dm->version));
	free(io);
	if (dm->version[0] != DM_VERSION_MAJOR) {
		close(dm->fd);
		dm->fd = -1;
		return -EPROTO;
	}
	dm->udev = pm_dm_udev_running();
	dm->udev_wait_ms = PM_UDEV_TIMEOUT_DEFAULT_MS;
	return 0;
}

void pm_dm_close(struct pm_dm *dm)
{
	if (dm->batching) {
		semctl(dm->batch_semid, 0, IPC_RMID); /* a batch never ended: no semaphore left behind */
		dm->batching = false;
	}
	if (dm->fd >= 0)
		close(dm->fd);
	dm->fd = -1;
	if (dm->ioctl_free)
		dm->ioctl_free(dm);
	dm->ioctl_free = NULL;
}

int pm_dm_info(struct pm_dm *dm, const struct pm_dm_ref *ref, struct pm_dm_info *info)
{
	struct dm_ioctl *io;
	int r = dm_call(dm, DM_DEV_STATUS, ref, 0, 0, NULL, 0, 0, &io);

	if (r < 0)
		return r;
	fill_info(io, info);
	free(io);
	return 0;
}

int pm_dm_dev_create(struct pm_dm *dm, const char *name, const char *uuid, struct pm_dm_info *info)
{
	struct dm_ioctl *io;
	struct pm_dm_ref ref = { .name = name };
	int r;

	if (!pm_dm_name_valid(name))
		return -EINVAL;
	if (uuid && strlen(uuid) >= PM_DM_UUID_LEN)
		return -ENAMETOOLONG;
	/* set_ref fills the name; the uuid goes alongside */
	{
		size_t size = sizeof(struct dm_ioctl);
		io = calloc(1, size);
		if (!io)
			return -ENOMEM;
		io->version[0] = DM_VERSION_MAJOR;
		io->data_size = (uint32_t)size;
		io->data_start = sizeof(struct dm_ioctl);
		r = set_ref(io, &ref);
		if (r == 0 && uuid)
			memcpy(io->uuid, uuid, strlen(uuid) + 1);
		if (r == 0 && dm_ioctl(dm, DM_DEV_CREATE, io) < 0)
			r = -errno;
		if (r == 0)
			fill_info(io, info);
		free(io);
	}
	return r;
}

int pm_dm_load(struct pm_dm *dm, const struct pm_dm_ref *ref, const struct pm_dm_target *t, size_t n,
	       bool read_only, bool secure)
{
	size_t len = 0, off = 0;
	uint8_t *buf;
	int r;

	for (size_t i = 0; i < n; i++)
		len += sizeof(struct dm_target_spec) + ((strlen(t[i].params ? t[i].params : "") + 1 + 7) & ~(size_t)7);
	buf = calloc(1, len ? len : 8);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct dm_target_spec spec = { .sector_start = t[i].start, .length = t[i].length };
		const char *params = t[i].params ? t[i].params : "";
		size_t plen = (strlen(params) + 1 + 7) & ~(size_t)7;

		if (strlen(t[i].type) >= sizeof(spec.target_type)) {
			free(buf);
			return -EINVAL;
		}
		memcpy(spec.target_type, t[i].type, strlen(t[i].type));
		spec.next = (uint32_t)(sizeof(spec) + plen);
		memcpy(buf + off, &spec, sizeof(spec));
		memcpy(buf + off + sizeof(spec), params, strlen(params));
		off += sizeof(spec) + plen;
	}
	{
		/* the target count travels in the header */
		size_t size = sizeof(struct dm_ioctl) + len;
		struct dm_ioctl *io = calloc(1, size);
		if (!io) {
			explicit_bzero(buf, len);
			free(buf);
			return -ENOMEM;
		}
		io->version[0] = DM_VERSION_MAJOR;
		io->data_size = (uint32_t)size;
		io->data_start = sizeof(struct dm_ioctl);
		io->target_count = (uint32_t)n;
		io->flags = (read_only ? DM_READONLY_FLAG : 0) | (secure ? DM_SECURE_DATA_FLAG : 0);
		r = set_ref(io, ref);
		memcpy((char *)io + io->data_start, buf, len);
		if (r == 0 && dm_ioctl(dm, DM_TABLE_LOAD, io) < 0)
			r = -errno;
		explicit_bzero(io, size);
		free(io);
	}
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

int pm_dm_clear(struct pm_dm *dm, const struct pm_dm_ref *ref)
{
	return dm_call(dm, DM_TABLE_CLEAR, ref, 0, 0, NULL, 0, 0, NULL);
}

/* ---- udev cookies (libdm's protocol: a SysV semaphore at 1 that udev's rule counts down) ---- */

static int cookie_new(uint32_t *cookie, int *semid)
{
	for (int tries = 0; tries < COOKIE_TRIES; tries++) {
		uint32_t base = ((uint32_t)getpid() * 2654435761u + (uint32_t)tries * 40503u + (uint32_t)time(NULL)) & 0xffff;
		int id;

		if (!base)
			continue;
		id = semget((key_t)((COOKIE_MAGIC << 16) | base), 1, 0600 | IPC_CREAT | IPC_EXCL);
		if (id < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		if (semctl(id, 0, SETVAL, 1) < 0) {
			semctl(id, 0, IPC_RMID);
			return -errno;
		}
		*semid = id;
		*cookie = (UDEV_PRIMARY_SOURCE << 16) | base;
		return 0;
	}
	return -EBUSY;
}

/* after the ioctl: count down ourselves when no uevent went out, then wait (bounded) for zero */
static void cookie_wait(struct pm_dm *dm, int semid, bool uevent)
{
	struct sembuf down = { 0, -1, IPC_NOWAIT }, zero = { 0, 0, 0 };
	struct timespec ts = { dm->udev_wait_ms / 1000, (long)(dm->udev_wait_ms % 1000) * 1000000L };

	if (!uevent)
		semop(semid, &down, 1);
	else if (semtimedop(semid, &zero, 1, &ts) < 0 && errno == EAGAIN)
		dm->udev_timed_out = true;
	semctl(semid, 0, IPC_RMID);
}

int pm_dm_batch_begin(struct pm_dm *dm)
{
	int r;

	if (dm->batching)
		return 1;
	if (!dm->udev || dm->udev_timed_out || dm->udev_nowait)
		return 0;
	r = cookie_new(&dm->batch_cookie, &dm->batch_semid);
	if (r < 0)
		return r;
	dm->batching = true;
	return 1;
}

void pm_dm_batch_end(struct pm_dm *dm)
{
	struct sembuf down = { 0, -1, IPC_NOWAIT };

	if (!dm->batching)
		return;
	dm->batching = false;
	/* take back the count the cookie started with; udev takes one for each uevent: wait for zero */
	semop(dm->batch_semid, &down, 1);
	cookie_wait(dm, dm->batch_semid, true);
}

/* resume, remove and rename: with a cookie when udev runs */
static int dm_call_udev(struct pm_dm *dm, unsigned long cmd, const struct pm_dm_ref *ref, uint32_t flags,
			const void *payload, size_t plen, struct dm_ioctl **out)
{
	struct sembuf up = { 0, 1, 0 }, down = { 0, -1, IPC_NOWAIT };
	struct dm_ioctl *io = NULL;
	uint32_t cookie = 0;
	int semid = -1, r;
	bool uevent;

	if (dm->batching) {
		/* the run's cookie: one more uevent to wait for (the batch's end waits for them all) */
		semid = dm->batch_semid;
		cookie = dm->batch_cookie;
		semop(semid, &up, 1);
	} else if (dm->udev && !dm->udev_timed_out && !dm->udev_nowait && cookie_new(&cookie, &semid) < 0) {
		/* once udev has not answered in time, it is taken as absent for the rest of the run; with
		 * udev_nowait the uevent goes out without a cookie and nobody waits */
		semid = -1;
	}
	r = dm_call(dm, cmd, ref, flags, semid >= 0 ? cookie : 0, payload, plen, 0, &io);
	uevent = r == 0 && (io->flags & DM_UEVENT_GENERATED_FLAG);
	if (dm->batching) {
		if (!uevent)
			semop(semid, &down, 1); /* nothing for udev to count down */
	} else if (semid >= 0) {
		cookie_wait(dm, semid, uevent);
	}
	if (r == 0 && out)
		*out = io;
	else
		free(io);
	return r;
}

int pm_dm_resume(struct pm_dm *dm, const struct pm_dm_ref *ref, struct pm_dm_info *info)
{
	return pm_dm_resume_flags(dm, ref, 0, info);
}

int pm_dm_resume_flags(struct pm_dm *dm, const struct pm_dm_ref *ref, unsigned flags, struct pm_dm_info *info)
{
	struct dm_ioctl *io;
	uint32_t f = (flags & PM_DM_NOFLUSH ? DM_NOFLUSH_FLAG : 0) | (flags & PM_DM_NOLOCKFS ? DM_SKIP_LOCKFS_FLAG : 0);
	int r = dm_call_udev(dm, DM_DEV_SUSPEND, ref, f, NULL, 0, &io);

	if (r < 0)
		return r;
	fill_info(io, info);
	free(io);
	return 0;
}

int pm_dm_suspend(struct pm_dm *dm, const struct pm_dm_ref *ref, unsigned flags)
{
	uint32_t f = DM_SUSPEND_FLAG | (flags & PM_DM_NOFLUSH ? DM_NOFLUSH_FLAG : 0) |
		     (flags & PM_DM_NOLOCKFS ? DM_SKIP_LOCKFS_FLAG : 0);
	return dm_call(dm, DM_DEV_SUSPEND, ref, f, 0, NULL, 0, 0, NULL);
}

int pm_dm_remove(struct pm_dm *dm, const struct pm_dm_ref *ref, bool deferred, int retries)
{
	int r;

	/* deferred removal came with interface 4.27 */
	if (deferred && dm->version[1] < 27)
		return -EOPNOTSUPP;
	for (int i = 0;; i++) {
		r = dm_call_udev(dm, DM_DEV_REMOVE, ref, deferred ? DM_DEFERRED_REMOVE : 0, NULL, 0, NULL);
		if (r != -EBUSY || i >= retries)
			return r;
		pm_sleep_ms(PM_DM_REMOVE_RETRY_MS);
	}
}

int pm_dm_remove_all(struct pm_dm *dm)
{
	return dm_call(dm, DM_REMOVE_ALL, NULL, 0, 0, NULL, 0, 0, NULL);
}

int pm_dm_rename(struct pm_dm *dm, const struct pm_dm_ref *ref, const char *new_name, const char *new_uuid)
{
	const char *v = new_uuid ? new_uuid : new_name;

	if (!v || (new_uuid ? strlen(v) >= PM_DM_UUID_LEN : !pm_dm_name_valid(v)))
		return -EINVAL;
	return dm_call_udev(dm, DM_DEV_RENAME, ref, new_uuid ? DM_UUID_FLAG : 0, v, strlen(v) + 1, NULL);
}

void pm_dm_targets_free(struct pm_dm_target *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++) {
		if (t[i].params) {
			explicit_bzero(t[i].params, strlen(t[i].params));
			free(t[i].params);
		}
	}
	free(t);
}

int pm_dm_table(struct pm_dm *dm, const struct pm_dm_ref *ref, bool status, bool inactive, bool secure,
		struct pm_dm_target **out, size_t *n, struct pm_dm_info *info)
{
	uint32_t flags = (status ? 0 : DM_STATUS_TABLE_FLAG) | (inactive ? DM_QUERY_INACTIVE_TABLE_FLAG : 0) |
			 (secure ? DM_SECURE_DATA_FLAG : 0);
	struct dm_ioctl *io;
	struct pm_dm_target *t;
	const char *data, *end;
	size_t off = 0;
	int r = dm_call(dm, DM_TABLE_STATUS, ref, flags, 0, NULL, 0, OUT_START, &io);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	fill_info(io, info);
	t = calloc(io->target_count ? io->target_count : 1, sizeof(*t));
	if (!t) {
		free(io);
		return -ENOMEM;
	}
	data = (const char *)io + io->data_start;
	end = (const char *)io + io->data_size;
	for (uint32_t i = 0; i < io->target_count; i++) {
		const struct dm_target_spec *spec = (const void *)(data + off);
		const char *params = (const char *)(spec + 1);

		if ((const char *)(spec + 1) > end) {
			r = -EPROTO;
			break;
		}
		t[i].start = spec->sector_start;
		t[i].length = spec->length;
		memcpy(t[i].type, spec->target_type, sizeof(spec->target_type));
		t[i].type[sizeof(t[i].type) - 1] = 0;
		t[i].params = strndup(params, (size_t)(end - params));
		if (!t[i].params) {
			r = -ENOMEM;
			break;
		}
		*n = i + 1;
		off = spec->next;
	}
	if (secure)
		explicit_bzero(io, io->data_size);
	free(io);
	if (r < 0) {
		pm_dm_targets_free(t, *n);
		*n = 0;
		return r;
	}
	*out = t;
	return 0;
}

int pm_dm_deps(struct pm_dm *dm, const struct pm_dm_ref *ref, dev_t **out, size_t *n)
{
	struct dm_ioctl *io;
	const struct dm_target_deps *deps;
	int r = dm_call(dm, DM_TABLE_DEPS, ref, 0, 0, NULL, 0, OUT_START, &io);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	deps = (const void *)((const char *)io + io->data_start);
	*out = calloc(deps->count ? deps->count : 1, sizeof(dev_t));
	if (!*out) {
		free(io);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < deps->count; i++)
		(*out)[i] = pm_dev_decode(deps->dev[i]);
	*n = deps->count;
	free(io);
	return 0;
}

/* The chained records of a LIST_DEVICES or LIST_VERSIONS reply: each holds at next_at the offset of
 * the next one (0 ends it). fn gets every record that fits in the reply and ends the walk by
 * returning false. */
static void chain_walk(const struct dm_ioctl *io, size_t rec_size, size_t next_at,
		       bool (*fn)(const char *rec, void *arg), void *arg)
{
	const char *data = (const char *)io + io->data_start, *end = (const char *)io + io->data_size;
	size_t off = 0;

	for (;;) {
		const char *rec = data + off;
		uint32_t next;

		if (rec + rec_size > end || !fn(rec, arg))
			return;
		memcpy(&next, rec + next_at, sizeof(next));
		if (!next)
			return;
		off += next;
	}
}

/* The records of a list reply (devices, target versions) collected into a growing array: fn appends
 * one record (false to stop, with err set when out of memory). */
struct collect {
	void *v;
	size_t n, cap;
	int err;
};

/* room for one more element of size elem; false (and err set) when out of memory */
static bool collect_room(struct collect *c, size_t elem)
{
	if (pm_grow(&c->v, c->n, &c->cap, elem) < 0) {
		c->err = -ENOMEM;
		return false;
	}
	return true;
}

static int list_call(struct pm_dm *dm, unsigned long cmd, size_t rec_size, size_t next_at,
		     bool (*fn)(const char *rec, void *arg), void **out, size_t *n)
{
	struct collect c = { 0 };
	struct dm_ioctl *io;
	int r = dm_call(dm, cmd, NULL, 0, 0, NULL, 0, OUT_START, &io);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	chain_walk(io, rec_size, next_at, fn, &c);
	free(io);
	if (c.err) {
		free(c.v);
		return c.err;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}

static bool add_name(const char *rec, void *arg)
{
	const struct dm_name_list *nl = (const void *)rec;
	struct collect *c = arg;
	struct pm_dm_name *v;

	if (!nl->dev) /* a first record with no device: there are none */
		return false;
	if (!collect_room(c, sizeof(*v)))
		return false;
	v = (struct pm_dm_name *)c->v + c->n++;
	v->dev = pm_dev_decode(nl->dev);
	pm_strlcpy(v->name, nl->name, PM_DM_NAME_LEN);
	return true;
}

int pm_dm_list(struct pm_dm *dm, struct pm_dm_name **out, size_t *n)
{
	void *v;
	int r = list_call(dm, DM_LIST_DEVICES, sizeof(struct dm_name_list), offsetof(struct dm_name_list, next),
			  add_name, &v, n);

	*out = v;
	return r;
}

static bool add_version(const char *rec, void *arg)
{
	const struct dm_target_versions *tv = (const void *)rec;
	struct collect *c = arg;
	struct pm_dm_version *v;

	if (!tv->name[0])
		return false;
	if (!collect_room(c, sizeof(*v)))
		return false;
	v = (struct pm_dm_version *)c->v + c->n++;
	pm_strlcpy(v->name, tv->name, sizeof(v->name));
	memcpy(v->version, tv->version, sizeof(tv->version));
	return true;
}

int pm_dm_versions(struct pm_dm *dm, struct pm_dm_version **out, size_t *n)
{
	void *v;
	int r = list_call(dm, DM_LIST_VERSIONS, sizeof(struct dm_target_versions),
			  offsetof(struct dm_target_versions, next), add_version, &v, n);

	*out = v;
	return r;
}

int pm_dm_message(struct pm_dm *dm, const struct pm_dm_ref *ref, uint64_t sector, const char *msg,
		  char *reply, size_t reply_len)
{
	size_t plen = sizeof(struct dm_target_msg) + strlen(msg) + 1;
	struct dm_target_msg *tm = calloc(1, plen);
	struct dm_ioctl *io;
	int r;

	if (!tm)
		return -ENOMEM;
	tm->sector = sector;
	memcpy(tm->message, msg, strlen(msg) + 1);
	r = dm_call(dm, DM_TARGET_MSG, ref, 0, 0, tm, plen, OUT_START, &io);
	free(tm);
	if (r < 0)
		return r;
	if (reply && reply_len) {
		reply[0] = 0;
		if (io->flags & DM_DATA_OUT_FLAG)
			pm_strlcpy(reply, (const char *)io + io->data_start, reply_len);
	}
	free(io);
	return 0;
}

int pm_dm_wait(struct pm_dm *dm, const struct pm_dm_ref *ref, uint32_t event_nr, struct pm_dm_info *info)
{
	struct dm_ioctl *io;
	int r = dm_call(dm, DM_DEV_WAIT, ref, 0, event_nr, NULL, 0, 0, &io);

	if (r < 0)
		return r;
	fill_info(io, info);
	free(io);
	return 0;
}

int pm_dm_create_map(struct pm_dm *dm, const char *name, const char *uuid, const struct pm_dm_target *t,
		     size_t n, bool read_only, bool secure, struct pm_dm_info *info)
{
	struct pm_dm_ref ref = { .name = name };
	int r = pm_dm_dev_create(dm, name, uuid, info);

	if (r < 0)
		return r;
	r = pm_dm_load(dm, &ref, t, n, read_only, secure);
	if (r == 0)
		r = pm_dm_resume(dm, &ref, info);
	if (r < 0)
		pm_dm_remove(dm, &ref, false, PM_DM_REMOVE_RETRIES_UNDO); /* nothing half-created */
	return r;
}

int pm_dm_make_node(const char *name, dev_t dev, mode_t mode, uid_t uid, gid_t gid)
{
	char path[PATH_MAX];
	bool made;
	int r = pm_mapper_path(path, sizeof(path), name);

	if (r < 0)
		return r;
	if (mkdir("/dev/mapper", 0755) < 0 && errno != EEXIST)
		return -errno;
	return pm_node_ensure(path, dev, mode, uid, gid, 0, &made);
}

int pm_dm_remove_node(const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	int r = pm_mapper_path(path, sizeof(path), name);

	if (r < 0)
		return r;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISBLK(st.st_mode))
		return 0;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int pm_dm_udev_complete(uint32_t cookie)
{
	struct sembuf down = { 0, -1, IPC_NOWAIT };
	int id = semget((key_t)((COOKIE_MAGIC << 16) | (cookie & 0xffff)), 1, 0);

	if (id < 0)
		return -errno;
	if (semop(id, &down, 1) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int pm_dm_udev_complete_all(void)
{
	FILE *f = fopen("/proc/sysvipc/sem", "re");
	char line[256];
	int removed = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		long key;
		int id;
		if (sscanf(line, "%ld %d", &key, &id) != 2)
			continue;
		if (((unsigned long)key >> 16) == COOKIE_MAGIC && semctl(id, 0, IPC_RMID) == 0)
			removed++;
	}
	fclose(f);
	return removed;
}
