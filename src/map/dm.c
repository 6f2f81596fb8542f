/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The "dm" backend: one linear device-mapper map per partition, named and tagged as multipath-tools'
 * kpartx does it (name <base><delim><N>, UUID part<N>-<parent uuid>), so that maps made by either tool
 * are recognised and removed by the other. */
#include "map.h"
#include "../dm.h"
#include "../util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

static int dm_usable(struct pm_parent *p)
{
	int r;

	if (p->dm)
		return 0;
	if (p->rdev == 0)
		return -ENODEV;
	p->dm = calloc(1, sizeof(*p->dm));
	if (!p->dm)
		return -ENOMEM;
	r = pm_dm_open(p->dm);
	if (r < 0) {
		free(p->dm);
		p->dm = NULL;
		return r;
	}
	p->dm->udev_nowait = p->udev_nowait;
	return 0;
}

/* the parent's UUID as kpartx uses it: its DM UUID, or a stand-in made of its device number */
static void parent_uuid(struct pm_parent *p, char *buf, size_t len)
{
	struct pm_dm_ref ref = { .dev = p->rdev };
	struct pm_dm_info info;

	if (!p->dm_parent_uuid[0]) {
		if (pm_dm_info(p->dm, &ref, &info) == 0 && info.uuid[0]) {
			pm_strlcpy(p->dm_parent_uuid, info.uuid, sizeof(p->dm_parent_uuid));
			p->dm_parent_has_uuid = true;
		} else
			snprintf(p->dm_parent_uuid, sizeof(p->dm_parent_uuid), "devnode_%u:%u_Wh5pYvM",
				 major(p->rdev), minor(p->rdev));
	}
	pm_strlcpy(buf, p->dm_parent_uuid, len);
}

/* "part<N>-<parent uuid>" -> N, or 0 when it is not a partition of this parent */
static unsigned uuid_num(const char *uuid, const char *puuid)
{
	const char *s;
	unsigned long n;
	char *end;

	if (strncmp(uuid, "part", 4))
		return 0;
	s = uuid + 4;
	if (*s < '0' || *s > '9')
		return 0;
	n = strtoul(s, &end, 10);
	if (*end != '-' || strcmp(end + 1, puuid) || n == 0 || n > UINT32_MAX)
		return 0;
	return (unsigned)n;
}

/* an exact parse of a linear table's "<maj>:<min> <start>" (kpartx's substring match mixes 7:1 and 7:10) */
static bool linear_on(const char *params, dev_t parent, uint64_t *start)
{
	unsigned maj, min;
	int n = 0;

	if (sscanf(params, "%u:%u %" SCNu64 "%n", &maj, &min, start, &n) != 3 || params[n])
		return false;
	return makedev(maj, min) == parent;
}

static void fill_mapping(struct pm_mapping *m, const char *name, unsigned num, uint64_t start, uint64_t size,
			 const struct pm_dm_info *info)
{
	memset(m, 0, sizeof(*m));
	m->num = num;
	pm_strlcpy(m->name, name, sizeof(m->name));
	m->start = start;
	m->size = size;
	m->dev = info->dev;
	m->loop_index = -1;
	m->own_node = true;
	m->open_count = info->open_count;
	snprintf(m->node, sizeof(m->node), "/dev/mapper/%s", name);
}

/* is this map a partition of the parent? fills m */
static int ours(struct pm_parent *p, const char *puuid, const struct pm_dm_name *dn, struct pm_mapping *m)
{
	struct pm_dm_ref ref = { .name = dn->name };
	struct pm_dm_target *t;
	struct pm_dm_info info;
	size_t n;
	uint64_t start;
	int r = pm_dm_table(p->dm, &ref, false, false, false, &t, &n, &info);

	if (r < 0)
		return 0;
	r = 0;
	if (n == 1 && !strcmp(t[0].type, "linear") && linear_on(t[0].params, p->rdev, &start)) {
		unsigned num = uuid_num(info.uuid, puuid);
		/* kpartx -d -f on a parent without a DM UUID skips the UUID check: any single linear map
		 * over the parent goes (numbered 0: not a partition partmap knows) */
		bool foreign = !num && p->delete_foreign && !p->dm_parent_has_uuid;
		if (num || foreign) {
			fill_mapping(m, dn->name, num, start, t[0].length, &info);
			r = 1;
		}
	} else if (n == 0 && !info.live_table) {
		/* no live table: a run killed between creating the map and resuming it (its UUID says whose
		 * partition it is); listed with no extent, so that -d removes it and -a/-u re-make it */
		unsigned num = uuid_num(info.uuid, puuid);
		if (num) {
			fill_mapping(m, dn->name, num, 0, 0, &info);
			r = 1;
		}
	}
	pm_dm_targets_free(t, n);
	return r;
}

static int dm_list(struct pm_parent *p, bool extents, struct pm_mapping **out, size_t *n)
{
	(void)extents; /* the table is read anyway: it says which maps are this parent's */
	struct pm_dm_name *names;
	struct pm_mapping *v;
	char puuid[PM_DM_UUID_LEN];
	size_t nn;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = dm_usable(p)) < 0)
		return r;
	r = pm_dm_list(p->dm, &names, &nn);
	if (r < 0)
		return r;
	v = calloc(nn ? nn : 1, sizeof(*v));
	if (!v) {
		free(names);
		return -ENOMEM;
	}
	parent_uuid(p, puuid, sizeof(puuid));
	for (size_t i = 0; i < nn; i++)
		if (ours(p, puuid, &names[i], &v[*n]) == 1)
			(*n)++;
	free(names);
	pm_sort_mappings(v, *n);
	*out = v;
	return 0;
}

static int dm_add(struct pm_parent *p, const struct pm_part *part, struct pm_mapping *m)
{
	char puuid[PM_DM_UUID_LEN], uuid[PM_DM_UUID_LEN + 16], params[64];
	struct pm_dm_target t = { .start = 0, .length = part->size, .type = "linear", .params = params };
	struct pm_dm_ref ref = { .name = m->name };
	struct pm_dm_info info;
	int r;

	if ((r = dm_usable(p)) < 0)
		return r;
	parent_uuid(p, puuid, sizeof(puuid));
	if (snprintf(uuid, sizeof(uuid), "part%u-%s", part->num, puuid) >= PM_DM_UUID_LEN)
		return -ENAMETOOLONG;
	snprintf(params, sizeof(params), "%u:%u %" PRIu64, major(p->rdev), minor(p->rdev), part->start);
	r = pm_dm_create_map(p->dm, m->name, uuid, &t, 1, p->read_only, false, &info);
	/* a map of that name (or UUID) that is not this partition: never touch it */
	if (r == -EBUSY && pm_dm_info(p->dm, &ref, &info) == 0)
		return -EEXIST;
	if (r < 0)
		return r;
	m->dev = info.dev;
	m->own_node = true;
	snprintf(m->node, sizeof(m->node), "/dev/mapper/%s", m->name);
	/* no udev, or udev did not answer in time: the node is ours to make (-n leaves it to udev) */
	if (!p->dm->udev || (p->dm->udev_timed_out && !p->dm->udev_nowait))
		r = pm_dm_make_node(m->name, m->dev, p->node_mode, p->node_uid, p->node_gid);
	return r;
}

static int dm_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	struct pm_dm_ref ref = { .name = m->name };
	struct pm_dm_info info;
	int r;

	if ((r = dm_usable(p)) < 0)
		return r;
	/* the open count comes with the listing; without it, ask */
	if (m->open_count < 0) {
		r = pm_dm_info(p->dm, &ref, &info);
		if (r == -ENXIO)
			return pm_dm_remove_node(m->name);
		if (r < 0)
			return r;
		if (info.open_count > 0)
			return -EBUSY;
	} else if (m->open_count > 0) {
		return -EBUSY;
	}
	r = pm_dm_remove(p->dm, &ref, false, PM_DM_REMOVE_RETRIES_UNDO);
	if (r == -ENXIO)
		return pm_dm_remove_node(m->name);
	if (r < 0)
		return r;
	return pm_dm_remove_node(m->name);
}

static int dm_rename(struct pm_parent *p, const struct pm_mapping *m, const char *new_name)
{
	struct pm_dm_ref ref = { .name = m->name }, nref = { .name = new_name };
	struct pm_dm_info info;
	int r;

	if ((r = dm_usable(p)) < 0)
		return r;
	if (pm_dm_info(p->dm, &nref, &info) == 0)
		return -EEXIST;
	r = pm_dm_rename(p->dm, &ref, new_name, NULL);
	if (r < 0)
		return r;
	pm_dm_remove_node(m->name);
	if (!p->dm->udev || (p->dm->udev_timed_out && !p->dm->udev_nowait))
		r = pm_dm_make_node(new_name, m->dev, p->node_mode, p->node_uid, p->node_gid);
	return r;
}

static int dm_batch_begin(struct pm_parent *p)
{
	return dm_usable(p) < 0 ? 0 : pm_dm_batch_begin(p->dm);
}

static void dm_batch_end(struct pm_parent *p)
{
	pm_dm_batch_end(p->dm);
}

const struct pm_backend pm_backend_dm = {
	.name = "dm",
	.usable = dm_usable,
	.list = dm_list,
	.add = dm_add,
	.remove = dm_remove,
	.rename = dm_rename,
	.batch_begin = dm_batch_begin,
	.batch_end = dm_batch_end,
};
