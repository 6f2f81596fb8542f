/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The "loop" backend: one loop device per partition, with offset and size limit, over the image file
 * (or the parent block device). Works on any kernel with loop devices. Each one carries the tag
 * "partmap:<N>" in lo_file_name, so -d and -u find them again from the kernel alone. Free devices
 * are taken first; one the kernel had to create for a partition is tagged "partmap:<N>:added", and
 * removing the partition's mapping removes the device too: -a then -d leave the loop devices as they
 * were. */
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

/* /dev/loop-control, opened once for all the partitions of a run; -errno when it cannot be */
static int control_fd(struct pm_parent *p)
{
	if (p->loop_control_fd < 0)
		p->loop_control_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	return p->loop_control_fd < 0 ? -errno : p->loop_control_fd;
}

/* loop devices can be had when /dev/loop-control opens; asking it for a free one here would make the
 * kernel create one when none is free */
static int loop_usable(struct pm_parent *p)
{
	int fd = control_fd(p);

	return fd < 0 ? fd : 0;
}

/* "partmap:<N>" or "partmap:<N>:added": 0 with the number, -EINVAL for any other tag */
static int parse_tag(const char *tag, unsigned *num, bool *added)
{
	char digits[sizeof(((struct pm_loop_info *)0)->tag)];
	size_t n, na = strlen(PM_LOOP_TAG_ADDED);
	unsigned long v;

	if (strncmp(tag, PM_LOOP_TAG, strlen(PM_LOOP_TAG)))
		return -EINVAL;
	pm_strlcpy(digits, tag + strlen(PM_LOOP_TAG), sizeof(digits));
	n = strlen(digits);
	*added = n > na && !strcmp(digits + n - na, PM_LOOP_TAG_ADDED);
	if (*added)
		digits[n - na] = 0;
	if (pm_parse_ulong(digits, UINT32_MAX, &v) < 0 || v == 0)
		return -EINVAL;
	*num = (unsigned)v;
	return 0;
}

/* is loop device idx one of ours for this parent? One pm_loop_info says it all. */
static int ours(struct pm_parent *p, const struct pm_loop_info *li, struct pm_mapping *m)
{
	int idx = li->index;
	unsigned num;
	bool added;

	if (!li->status_known || parse_tag(li->tag, &num, &added) < 0)
		return 0;
	if (p->is_file) {
		if (li->backing_rdev != 0 || li->backing_dev != p->file_dev || li->backing_ino != p->file_ino)
			return 0;
	} else if (li->backing_rdev != p->rdev) {
		return 0;
	}
	memset(m, 0, sizeof(*m));
	m->num = num;
	m->loop_index = idx;
	m->loop_added = added;
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
	char tag[32], tag_new[48];
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
	snprintf(tag_new, sizeof(tag_new), PM_LOOP_TAG "%u" PM_LOOP_TAG_ADDED, part->num);
	cfg.control_fd = control_fd(p);
	cfg.existing = pm_parent_loops_found(p); /* read once a run */
	cfg.tag_new = tag_new;
	idx = pm_loop_attach(p->fd, &cfg, &m->dev);
	if (idx < 0)
		return idx;
	m->loop_index = idx;
	m->loop_added = pm_loop_is_new(&cfg, idx);
	snprintf(m->node, sizeof(m->node), "/dev/loop%d", idx);
	/* the device was opened by its node to bind it: the node is there, with this number */
	m->node_ready = true;
	return 0;
}

static int loop_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	int r = pm_loop_detach(m->loop_index, true);

	/* a device made for partmap goes too, at the end of the run with the others: one by one,
	 * LOOP_CTL_REMOVE takes about 50 ms each; at the same time, about that for all of them */
	if (r == 0 && m->loop_added)
		pm_parent_doom_loop(p, m->loop_index);
	return r < 0 ? r : 0; /* 1: still held by another process, detached when it closes it */
}

const struct pm_backend pm_backend_loop = {
	.name = "loop",
	.usable = loop_usable,
	.list = loop_list,
	.add = loop_add,
	.remove = loop_remove,
};
