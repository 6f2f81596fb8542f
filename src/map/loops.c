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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int loop_usable(struct pm_parent *p)
{
	int idx = pm_loop_get_free();

	(void)p;
	return idx < 0 ? idx : 0;
}

/* is loop device idx one of ours for this parent? One pm_loop_info says it all. */
static int ours(struct pm_parent *p, const struct pm_loop_info *li, struct pm_mapping *m)
{
	int idx = li->index;
	unsigned long num;

	if (!li->status_known)
		return 0;
	if (strncmp(li->tag, PM_LOOP_TAG, strlen(PM_LOOP_TAG)) ||
	    pm_parse_ulong(li->tag + strlen(PM_LOOP_TAG), UINT32_MAX, &num) < 0 || num == 0)
		return 0;
	if (p->is_file) {
		if (li->backing_rdev != 0 || li->backing_dev != p->file_dev || li->backing_ino != p->file_ino)
			return 0;
	} else if (li->backing_rdev != p->rdev) {
		return 0;
	}
	memset(m, 0, sizeof(*m));
	m->num = (unsigned)num;
	m->loop_index = idx;
	m->start = li->offset / 512;
	m->size = (li->sizelimit ? li->sizelimit : (p->size > li->offset ? p->size - li->offset : 0)) / 512;
	m->dev = li->dev;
	snprintf(m->node, sizeof(m->node), "/dev/loop%d", idx);
	return pm_name_for(p, m->num, m->name, sizeof(m->name)) < 0 ? 0 : 1;
}

struct list_ctx {
	struct pm_parent *p;
	struct pm_mapping *v;
	size_t n, cap;
};

static int list_one(const struct pm_loop_info *li, void *arg)
{
	struct list_ctx *c = arg;
	struct pm_mapping m;

	if (li->index == c->p->loop_index || ours(c->p, li, &m) != 1)
		return 0;
	return pm_mappings_push(&c->v, &c->n, &c->cap, &m);
}

static int loop_list(struct pm_parent *p, bool extents, struct pm_mapping **out, size_t *n)
{
	(void)extents; /* a device's offset and size limit come with finding it */
	struct list_ctx c = { .p = p };
	int r = 0;

	if (p->file_loops_known) {
		/* the loop devices over this image, read when it was opened */
		for (size_t i = 0; r == 0 && i < p->nfile_loops; i++)
			r = list_one(&p->file_loops[i], &c);
	} else {
		r = pm_loop_each_info(list_one, &c, 512); /* a partition's loop has a sector at least */
	}

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
	char tag[32];
	struct pm_loop_cfg cfg = {
		.index = -1,
		.control_fd = -1,
		.offset = part->start * 512,
		.sizelimit = part->size * 512,
		.block_size = p->ssz,
		.read_only = p->read_only,
		.tag = tag,
	};
	int idx;

	snprintf(tag, sizeof(tag), PM_LOOP_TAG "%u", part->num);
	/* one /dev/loop-control for all the partitions of a run */
	if (p->loop_control_fd < 0)
		p->loop_control_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	cfg.control_fd = p->loop_control_fd;
	idx = pm_loop_attach(p->fd, &cfg, &m->dev);
	if (idx < 0)
		return idx;
	m->loop_index = idx;
	snprintf(m->node, sizeof(m->node), "/dev/loop%d", idx);
	/* the device was opened by its node to bind it: the node is there, with this number */
	m->node_ready = true;
	return 0;
}

static int loop_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	(void)p;
	/* detached, not removed: LOOP_CTL_REMOVE costs about 45 ms a device (5.8 s for 128 partitions
	 * against 78 ms to map them); the next -a takes the free devices again, so they do not pile up */
	return pm_loop_detach(m->loop_index, true);
}

const struct pm_backend pm_backend_loop = {
	.name = "loop",
	.usable = loop_usable,
	.list = loop_list,
	.add = loop_add,
	.remove = loop_remove,
};
