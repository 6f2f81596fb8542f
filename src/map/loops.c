/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The "loop" backend: one loop device per partition, with offset and size limit, over the image file
 * (or the parent block device). Works on any kernel with loop devices. Each one carries the tag
 * "partmap:<N>" in lo_file_name, so -d and -u find them again from the kernel alone. */
#include "map.h"
#include "../loop.h"
#include "../node.h"
#include "../util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int loop_usable(struct pm_parent *p)
{
	int idx = pm_loop_get_free();

	(void)p;
	return idx < 0 ? idx : 0;
}

/* is loop device idx one of ours for this parent? */
static int ours(struct pm_parent *p, int idx, struct pm_mapping *m)
{
	struct pm_loop_info li;
	char tag[64], sys[64];
	dev_t rdev;
	unsigned num;
	char *end;

	if (pm_loop_info(idx, &li) != 1)
		return 0;
	if (pm_loop_status(idx, tag, sizeof(tag), &rdev) < 0)
		return 0;
	if (strncmp(tag, PM_LOOP_TAG, strlen(PM_LOOP_TAG)))
		return 0;
	num = (unsigned)strtoul(tag + strlen(PM_LOOP_TAG), &end, 10);
	if (*end || num == 0)
		return 0;
	if (p->is_file) {
		if (rdev != 0 || !li.backing_known || li.backing_dev != p->file_dev || li.backing_ino != p->file_ino)
			return 0;
	} else if (rdev != p->rdev) {
		return 0;
	}
	memset(m, 0, sizeof(*m));
	m->num = num;
	m->loop_index = idx;
	m->start = li.offset / 512;
	m->size = (li.sizelimit ? li.sizelimit : (p->size > li.offset ? p->size - li.offset : 0)) / 512;
	snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", idx);
	if (pm_sysfs_devnum(sys, &m->dev) < 0)
		return 0;
	snprintf(m->node, sizeof(m->node), "/dev/loop%d", idx);
	return pm_name_for(p, num, m->name, sizeof(m->name)) < 0 ? 0 : 1;
}

struct list_ctx {
	struct pm_parent *p;
	struct pm_mapping *v;
	size_t n, cap;
};

static int list_one(int idx, void *arg)
{
	struct list_ctx *c = arg;
	struct pm_mapping m;

	if (idx == c->p->loop_index || ours(c->p, idx, &m) != 1)
		return 0;
	return pm_mappings_push(&c->v, &c->n, &c->cap, &m);
}

static int loop_list(struct pm_parent *p, struct pm_mapping **out, size_t *n)
{
	struct list_ctx c = { .p = p };
	int r = pm_loop_each_bound(list_one, &c);

	*out = NULL;
	*n = 0;
	if (r < 0) {
		free(c.v);
		return r;
	}
	pm_sort_mappings(c.v, c.n);
	*out = c.v;
	*n = c.n;
	return 0;
}

static int loop_add(struct pm_parent *p, const struct pm_part *part, struct pm_mapping *m)
{
	char tag[32], sys[64];
	struct pm_loop_cfg cfg = {
		.index = -1,
		.offset = part->start * 512,
		.sizelimit = part->size * 512,
		.block_size = p->ssz,
		.read_only = p->read_only,
		.tag = tag,
	};
	int idx, r;

	snprintf(tag, sizeof(tag), PM_LOOP_TAG "%u", part->num);
	idx = pm_loop_attach(p->fd, &cfg);
	if (idx < 0)
		return idx;
	m->loop_index = idx;
	snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", idx);
	r = pm_sysfs_devnum(sys, &m->dev);
	if (r < 0) {
		pm_loop_detach(idx, false);
		return r;
	}
	snprintf(m->node, sizeof(m->node), "/dev/loop%d", idx);
	return 0;
}

static int loop_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	int r;

	(void)p;
	/* detached, not removed: LOOP_CTL_REMOVE costs about 45 ms a device (5.8 s for 128 partitions
	 * against 78 ms to map them); the next -a takes the free devices again, so they do not pile up */
	r = pm_loop_detach(m->loop_index, true);
	return r;
}

const struct pm_backend pm_backend_loop = {
	.name = "loop",
	.usable = loop_usable,
	.list = loop_list,
	.add = loop_add,
	.remove = loop_remove,
};
