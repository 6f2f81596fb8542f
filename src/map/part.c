/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The "part" backend: kernel partitions on the parent loop device through BLKPG (what partx -a
 * does); nodes /dev/loopNpM. Works wherever the kernel accepts partitions on loop devices, even with
 * no partition parsers built in. The kernel refuses overlapping partitions this way. Other block
 * devices are left to the loop backend, so that a disk's own partitions are never taken for ours. */
#include "map.h"
#include "../node.h"
#include "../util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int blkpg(struct pm_parent *p, int op, unsigned num, uint64_t start, uint64_t size)
{
	struct blkpg_partition bp = { .start = (long long)(start * 512), .length = (long long)(size * 512),
				      .pno = (int)num };
	struct blkpg_ioctl_arg arg = { .op = op, .datalen = sizeof(bp), .data = &bp };

	/* one open of the parent's node for all the partitions of a run */
	if (p->node_fd < 0 && (p->node_fd = open(p->node, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return -errno;
	return ioctl(p->node_fd, BLKPG, &arg) < 0 ? -errno : 0;
}

/* Kernel partitions cannot overlap, and BLKPG numbers stop at 255. */
static int part_can_map(const struct pm_parent *p, const struct pm_table *t)
{
	(void)p;
	if (pm_table_overlaps(t))
		return -EINVAL;
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].num > PM_BLKPG_MAX_PARTNO)
			return -ERANGE;
	return 0;
}

static int part_usable(struct pm_parent *p)
{
	char path[PATH_MAX + 16];
	int r;

	if (p->rdev == 0)
		return -ENODEV;
	/* only loop devices: on a real disk the kernel's own partitions would pass for partmap's
	 * mappings, and -d would delete them from the kernel's table */
	if (p->loop_index < 0)
		return -EOPNOTSUPP;
	snprintf(path, sizeof(path), "%s/partition", p->sysdir);
	if (access(path, F_OK) == 0)
		return -EINVAL; /* a partition cannot hold partitions */
	/* deleting a partition number that cannot exist tells whether BLKPG works here at all */
	r = blkpg(p, BLKPG_DEL_PARTITION, 65535, 0, 0);
	return r == -ENXIO ? 0 : (r == 0 ? 0 : r);
}

/* one partition of the parent from sysfs: <sysdir>/<entry>/{partition,start,size,dev} */
/* A partition's number from its sysfs name, <parent><delim><N> (loop0p12, sdb3): 0 when the entry
 * is not a partition of the parent (queue, holders, ...). Saves reading "partition" for each entry. */
static unsigned entry_num(const struct pm_parent *p, const char *entry)
{
	const char *delim = pm_default_delim(p->sysname);
	size_t sl = strlen(p->sysname), dl = strlen(delim);
	unsigned long v;

	if (strncmp(entry, p->sysname, sl) || strncmp(entry + sl, delim, dl) || entry[sl + dl] == '0' ||
	    pm_parse_ulong(entry + sl + dl, UINT32_MAX, &v) < 0 || v == 0)
		return 0;
	return (unsigned)v;
}

static int read_entry(struct pm_parent *p, const char *entry, bool extents, struct pm_mapping *m)
{
	char path[PATH_MAX * 2];
	int r;

	memset(m, 0, sizeof(*m));
	m->loop_index = -1;
	m->num = entry_num(p, entry);
	if (!m->num)
		return -ENOENT;
	if (extents) {
		snprintf(path, sizeof(path), "%s/%s/start", p->sysdir, entry);
		if ((r = pm_read_u64(path, &m->start)) < 0)
			return r;
		snprintf(path, sizeof(path), "%s/%s/size", p->sysdir, entry);
		if ((r = pm_read_u64(path, &m->size)) < 0)
			return r;
	}
	/* the device number: to make or check a node (not needed to remove one devtmpfs manages) */
	if (extents || !p->devtmpfs) {
		snprintf(path, sizeof(path), "%s/%s/dev", p->sysdir, entry);
		if ((r = pm_sysfs_devnum(path, &m->dev)) < 0)
			return r;
	}
	snprintf(m->node, sizeof(m->node), "/dev/%s", entry);
	return pm_name_for(p, m->num, m->name, sizeof(m->name)) < 0 ? -ENAMETOOLONG : 0;
}

static int part_list(struct pm_parent *p, bool extents, struct pm_mapping **out, size_t *n)
{
	DIR *d;
	struct dirent *de;
	struct pm_mapping *v = NULL;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (p->rdev == 0)
		return 0;
	d = opendir(p->sysdir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct pm_mapping m;

		if (de->d_name[0] == '.' || read_entry(p, de->d_name, extents, &m) < 0)
			continue;
		if (pm_mappings_push(&v, n, &cap, &m) < 0) {
			closedir(d);
			free(v);
			return -ENOMEM;
		}
	}
	closedir(d);
	pm_sort_mappings(v, *n);
	*out = v;
	return 0;
}

/* The device number of a partition just added. devtmpfs made its node before BLKPG returned: the
 * node says the number, and sysfs's entry for that number must be this partition (a node left by
 * someone else would name another); else the number comes from sysfs and the node is for publish()
 * to make. */
static int node_of_new(struct pm_parent *p, const char *entry, struct pm_mapping *m)
{
	char path[PATH_MAX * 2], name[NAME_MAX + 1];
	struct stat st;

	if (p->devtmpfs && lstat(m->node, &st) == 0 && S_ISBLK(st.st_mode) &&
	    pm_dev_kernel_name(st.st_rdev, name, sizeof(name)) == 0 && !strcmp(name, entry)) {
		m->dev = st.st_rdev;
		m->node_ready = true;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s/dev", p->sysdir, entry);
	return pm_sysfs_devnum(path, &m->dev);
}

static int part_add(struct pm_parent *p, const struct pm_part *part, struct pm_mapping *m)
{
	char entry[96];
	int r = blkpg(p, BLKPG_ADD_PARTITION, part->num, part->start, part->size);

	if (r < 0)
		return r;
	/* the kernel names it loop0p1 after a name ending in a digit, else sdb1; its number is all
	 * that is not known already */
	pm_part_name(entry, sizeof(entry), p->sysname, pm_default_delim(p->sysname), part->num);
	snprintf(m->node, sizeof(m->node), "/dev/%s", entry);
	r = node_of_new(p, entry, m);
	if (r < 0)
		goto undo;
	if (p->read_only) {
		/* a writable parent: make the partition itself read-only, and check that it is */
		int one = 1, ro = 0;
		r = pm_node_ensure(m->node, m->dev, p->node_mode, p->node_uid, p->node_gid, p->devtmpfs ? 1000 : 0, NULL);
		if (r < 0)
			goto undo;
		_cleanup_close_ int fd = open(m->node, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, BLKROSET, &one) < 0 || ioctl(fd, BLKROGET, &ro) < 0) {
			r = -errno;
			goto undo;
		}
		if (!ro) {
			r = -EIO;
			goto undo;
		}
	}
	return 0;
undo:
	/* nothing half-made: a partition that is not what was asked for is removed again */
	blkpg(p, BLKPG_DEL_PARTITION, part->num, 0, 0);
	return r;
}

static int part_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	/* mounted, open, or held by another mapping: the kernel refuses with EBUSY */
	int r = blkpg(p, BLKPG_DEL_PARTITION, m->num, 0, 0);

	if (r < 0 && r != -ENXIO)
		return r;
	/* a node partmap made in a tmpfs /dev stays behind: remove it (devtmpfs removed its own before
	 * BLKPG returned) */
	return p->devtmpfs ? 0 : pm_node_remove(m->node, m->dev);
}

const struct pm_backend pm_backend_part = {
	.name = "part",
	.usable = part_usable,
	.can_map = part_can_map,
	.list = part_list,
	.add = part_add,
	.remove = part_remove,
};
