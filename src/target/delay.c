/* SPDX-License-Identifier: GPL-2.0-or-later */
/* delay <dev> <off> <ms> [<wdev> <woff> <wms> [<fdev> <foff> <fms>]]: reads, writes and flushes
 * held for a number of milliseconds, then issued to a device at an offset. With 3 arguments one
 * triple serves all three; with 6 the second serves writes and flushes; with 9 the third serves
 * flushes. Discards are writes, as in the kernel. A request waits in the calling thread; the status
 * counts those waiting (reads, writes, flushes). presuspend releases every held request at once, and
 * until resume nothing is held. */
#include "tgtio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct delay_class {
	struct pm_source *dev;
	uint64_t start;           /* sectors */
	unsigned delay;           /* milliseconds */
	unsigned ops;             /* held now (under lk) */
};

struct delay {
	pthread_mutex_t lk;
	pthread_cond_t cv;        /* CLOCK_MONOTONIC: held requests, presuspend, dtr */
	bool may_delay;
	uint64_t release;         /* presuspend's count: a held request leaves when it changes */
	unsigned active;          /* requests inside the target (dtr waits for them) */
	unsigned argc;
	struct delay_class read, write, flush;
};

static int class_ctr(struct pm_target *ti, struct delay_class *c, char **argv)
{
	if (pm_target_u64(argv[1], &c->start) < 0 || c->start > UINT64_MAX / PM_SECTOR)
		return pm_target_fail(ti, -EINVAL, "Invalid device sector");
	if (pm_target_u32(argv[2], &c->delay) < 0)
		return pm_target_fail(ti, -EINVAL, "Invalid delay");
	return pm_target_source(ti, argv[0], &c->dev);
}

static int delay_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct delay *dc;
	pthread_condattr_t ca;
	int r;

	if (argc != 3 && argc != 6 && argc != 9)
		return pm_target_fail(ti, -EINVAL, "Requires exactly 3, 6 or 9 arguments");
	if (!(dc = calloc(1, sizeof(*dc))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate context");
	dc->argc = argc;
	dc->may_delay = true;
	/* the classes share sources: the table opens a device once however often it is named */
	if ((r = class_ctr(ti, &dc->read, argv)) < 0 ||
	    (r = class_ctr(ti, &dc->write, argc >= 6 ? argv + 3 : argv)) < 0 ||
	    (r = class_ctr(ti, &dc->flush, argc == 9 ? argv + 6 : argc == 6 ? argv + 3 : argv)) < 0) {
		free(dc);
		return r;
	}
	pthread_mutex_init(&dc->lk, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dc->cv, &ca);
	pthread_condattr_destroy(&ca);
	ti->priv = dc;
	return 0;
}

/* Enter the target: hold the request for the class's delay unless presuspend comes first. */
static void enter(struct delay *dc, struct delay_class *c)
{
	struct timespec until;

	pthread_mutex_lock(&dc->lk);
	dc->active++;
	if (c->delay && dc->may_delay) {
		uint64_t release = dc->release;

		pm_monotonic_after(&until, (uint64_t)c->delay * 1000);
		c->ops++;
		while (dc->release == release && pthread_cond_timedwait(&dc->cv, &dc->lk, &until) != ETIMEDOUT)
			;
		c->ops--;
	}
	pthread_mutex_unlock(&dc->lk);
}

static int leave(struct delay *dc, int r)
{
	pthread_mutex_lock(&dc->lk);
	if (!--dc->active)
		pthread_cond_broadcast(&dc->cv);
	pthread_mutex_unlock(&dc->lk);
	return r;
}

static int delay_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct delay *dc = ti->priv;

	enter(dc, &dc->read);
	return leave(dc, pm_src_read(dc->read.dev, dc->read.start, off, buf, len));
}

static int delay_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct delay *dc = ti->priv;

	enter(dc, &dc->write);
	return leave(dc, pm_src_write(dc->write.dev, dc->write.start, off, buf, len));
}

static int delay_flush(struct pm_target *ti)
{
	struct delay *dc = ti->priv;

	enter(dc, &dc->flush);
	return leave(dc, pm_vdev_flush(dc->flush.dev->vdev));
}

static int delay_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct delay *dc = ti->priv;

	enter(dc, &dc->write);
	return leave(dc, pm_src_discard(dc->write.dev, dc->write.start, off, len));
}

static void delay_presuspend(struct pm_target *ti)
{
	struct delay *dc = ti->priv;

	pthread_mutex_lock(&dc->lk);
	dc->may_delay = false;
	dc->release++;
	pthread_cond_broadcast(&dc->cv);
	pthread_mutex_unlock(&dc->lk);
}

static void delay_resume(struct pm_target *ti)
{
	struct delay *dc = ti->priv;

	pthread_mutex_lock(&dc->lk);
	dc->may_delay = true;
	pthread_mutex_unlock(&dc->lk);
}

static void delay_dtr(struct pm_target *ti)
{
	struct delay *dc = ti->priv;

	/* release what is held and wait until no request is inside: the sources close after us */
	delay_presuspend(ti);
	pthread_mutex_lock(&dc->lk);
	while (dc->active)
		pthread_cond_wait(&dc->cv, &dc->lk);
	pthread_mutex_unlock(&dc->lk);
	pthread_cond_destroy(&dc->cv);
	pthread_mutex_destroy(&dc->lk);
	free(dc);
}

static void delay_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct delay *dc = ti->priv;
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (!table) {
		pthread_mutex_lock(&dc->lk);
		PUT("%u %u %u", dc->read.ops, dc->write.ops, dc->flush.ops);
		pthread_mutex_unlock(&dc->lk);
		return;
	}
	const struct delay_class *cl[3] = { &dc->read, &dc->write, &dc->flush };
	for (unsigned i = 0; i < dc->argc / 3; i++)
		PUT("%s%s %llu %u", i ? " " : "", cl[i]->dev->name, (unsigned long long)cl[i]->start, cl[i]->delay);
#undef PUT
}

const struct pm_target_type pm_target_delay = {
	.name = "delay",
	.version = { 1, 5, 0 },
	.ctr = delay_ctr,
	.dtr = delay_dtr,
	.read = delay_read,
	.write = delay_write,
	.flush = delay_flush,
	.discard = delay_discard,
	.status = delay_status,
	.presuspend = delay_presuspend,
	.resume = delay_resume,
};
