/* A target environment for unit tests (see tgtenv.h). */
#include "tgtenv.h"
#include "dmtable.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int env_open(void *arg, const char *name, bool read_only, struct pm_source *src)
{
	struct tgtenv *e = arg;

	for (unsigned i = 0; i < e->n; i++) {
		if (strcmp(e->dev[i].name, name))
			continue;
		if (e->dev[i].vdev) {
			/* a copy that does not own what it serves (closing it is a no-op) */
			struct pm_vdev *v = malloc(sizeof(*v));
			if (!v)
				return -ENOMEM;
			*v = *e->dev[i].vdev;
			v->read_only = v->read_only || read_only;
			src->dev = e->dev[i].dev;
			snprintf(src->name, sizeof(src->name), "%u:%u", major(src->dev), minor(src->dev));
			src->vdev = v;
			e->opens++;
			return 0;
		}
		int fd = open(e->dev[i].path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		struct pm_vdev *v = calloc(1, sizeof(*v));
		int r = v ? pm_vdev_from_fd(v, fd, read_only) : -ENOMEM;
		close(fd);
		if (r < 0) {
			free(v);
			return r;
		}
		src->dev = e->dev[i].dev;
		snprintf(src->name, sizeof(src->name), "%u:%u", major(src->dev), minor(src->dev));
		src->vdev = v;
		e->opens++;
		return 0;
	}
	return -ENODEV;
}

static void env_close(void *arg, struct pm_source *src)
{
	struct tgtenv *e = arg;

	for (unsigned i = 0; i < e->n; i++)
		if (e->dev[i].vdev && e->dev[i].dev == src->dev)
			src->vdev->ops = NULL; /* not ours to close */
	pm_vdev_close(src->vdev);
	free(src->vdev);
	src->vdev = NULL;
	e->opens--;
}

static void env_event(void *arg)
{
	struct tgtenv *e = arg;

	__atomic_add_fetch(&e->events, 1, __ATOMIC_RELAXED);
}

static int env_each_target(void *arg, int (*fn)(struct pm_target *ti, void *fnarg), void *fnarg)
{
	struct tgtenv *e = arg;
	int r = 0;

	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->nlive && !r; i++)
		for (size_t j = 0; j < e->live[i]->n && !r; j++)
			r = fn(&e->live[i]->t[j], fnarg);
	pthread_mutex_unlock(&e->lock);
	return r;
}

void tgtenv_init(struct tgtenv *e)
{
	memset(e, 0, sizeof(*e));
	e->env = (struct pm_target_env){
		.open_source = env_open,
		.close_source = env_close,
		.event = env_event,
		.each_target = env_each_target,
		.arg = e,
	};
	pthread_mutex_init(&e->lock, NULL);
}

void tgtenv_add_vdev(struct tgtenv *e, const char *name, struct pm_vdev *v)
{
	tgtenv_add(e, name, "");
	e->dev[e->n - 1].vdev = v;
}

void tgtenv_live(struct tgtenv *e, struct pm_dtab *tb)
{
	pthread_mutex_lock(&e->lock);
	assert(e->nlive < TGTENV_MAX);
	e->live[e->nlive++] = tb;
	pthread_mutex_unlock(&e->lock);
	pm_dtab_resume(tb);
}

void tgtenv_unlive(struct tgtenv *e, struct pm_dtab *tb)
{
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->nlive; i++)
		if (e->live[i] == tb)
			e->live[i--] = e->live[--e->nlive];
	pthread_mutex_unlock(&e->lock);
}

void tgtenv_add(struct tgtenv *e, const char *name, const char *path)
{
	unsigned maj, min;
	char c;

	assert(e->n < TGTENV_MAX);
	pm_strlcpy(e->dev[e->n].name, name, sizeof(e->dev[e->n].name));
	pm_strlcpy(e->dev[e->n].path, path, sizeof(e->dev[e->n].path));
	e->dev[e->n].dev = sscanf(name, "%u:%u%c", &maj, &min, &c) == 2 ? makedev(maj, min) : makedev(250, e->n);
	e->n++;
}

void tgtenv_file(struct tgtenv *e, const char *name, uint64_t size, uint8_t (*fill)(uint64_t i), char *path)
{
	char tmp[] = "/tmp/partmap-tgt-XXXXXX";
	int fd = mkstemp(tmp);
	uint8_t buf[65536];

	assert(fd >= 0);
	if (fill) {
		for (uint64_t off = 0; off < size;) {
			size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = fill(off + i);
			assert(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n);
			off += n;
		}
	} else {
		assert(ftruncate(fd, (off_t)size) == 0);
	}
	close(fd);
	tgtenv_add(e, name, tmp);
	if (path)
		pm_strlcpy(path, tmp, 256);
	e->dev[e->n - 1].made = true;
}

int tgtenv_build(struct tgtenv *e, const char *text, bool read_only, struct pm_dtab **out, char *err, size_t len)
{
	struct pm_dm_table tb;
	struct pm_dm_table_err perr;
	int r = pm_dm_table_parse(text, &tb, &perr);

	if (r < 0) {
		snprintf(err, len, "parse error at line %u", perr.line);
		return r;
	}
	r = pm_dtab_build(out, tb.t, tb.n, read_only, &e->env, err, len);
	pm_dm_table_free(&tb);
	return r;
}

void tgtenv_pread(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert(fd >= 0);
	n = pread(fd, buf, len, (off_t)off);
	assert(n == (ssize_t)len);
	(void)n;
	close(fd);
}

char *tgtenv_status(struct pm_dtab *tb, bool table, size_t i)
{
	struct pm_dm_target *t;
	char *s = NULL;
	size_t n;

	if (pm_dtab_status(tb, table, &t, &n) < 0)
		return NULL;
	if (i < n)
		s = strdup(t[i].params);
	pm_dm_targets_free(t, n);
	return s;
}

bool tgtenv_refused(struct tgtenv *e, const char *text, char *err, size_t len)
{
	struct pm_dtab *tb = (void *)1;

	if (tgtenv_build(e, text, false, &tb, err, len) == 0) {
		pm_dtab_free(tb);
		return false;
	}
	return !tb && e->opens == 0;
}

void tgtenv_cleanup(struct tgtenv *e)
{
	for (unsigned i = 0; i < e->n; i++)
		if (e->dev[i].made)
			unlink(e->dev[i].path);
	e->n = 0;
}

uint8_t tgtenv_fill_a(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 512);
}

uint8_t tgtenv_fill_b(uint64_t i)
{
	return (uint8_t)(i * 13 + 1 + i / 4096);
}

void tgtenv_pwrite(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	assert(fd >= 0);
	n = pwrite(fd, buf, len, (off_t)off);
	assert(n == (ssize_t)len);
	(void)n;
	close(fd);
}
