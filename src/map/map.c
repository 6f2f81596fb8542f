/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The parent device, and the backend-independent part of -a, -u and -d. */
#include "map.h"
#include "../disk.h"
#include "../dm.h"
#include "../loop.h"
#include "../node.h"
#include "../util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int pm_name_for(const struct pm_parent *p, unsigned num, char *buf, size_t len)
{
	return pm_part_name(buf, len, p->base, p->delim, num);
}

static int cmp_mapping(const void *a, const void *b)
{
	const struct pm_mapping *x = a, *y = b;
	return (x->num > y->num) - (x->num < y->num);
}

int pm_sort_mappings(struct pm_mapping *m, size_t n)
{
	if (n > 1)
		qsort(m, n, sizeof(*m), cmp_mapping);
	return 0;
}

int pm_mappings_push(struct pm_mapping **v, size_t *n, size_t *cap, const struct pm_mapping *m)
{
	if (pm_grow(v, *n, cap, sizeof(**v)) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = *m;
	return 0;
}

/* a whole-file loop for the image, with the sector size its table needs */
static int attach_whole(struct pm_parent *p, const struct pm_parent_opts *o)
{
	struct pm_loop_cfg cfg = { .index = -1, .control_fd = -1, .read_only = p->read_only };
	unsigned ssz = o->sector_size;
	int idx;

	if (!ssz) {
		struct pm_disk d;
		struct pm_table t;
		int r = pm_disk_from_fd(&d, p->fd);
		if (r < 0)
			return r;
		pm_probe(&d, NULL, &t);
		ssz = t.sector_size ? t.sector_size : 512;
		pm_table_free(&t);
		pm_disk_close(&d);
	}
	cfg.block_size = ssz;
	cfg.existing = pm_parent_loops_found(p);
	cfg.tag_new = PM_LOOP_TAG_DISK_ADDED;
	idx = pm_loop_attach(p->fd, &cfg, NULL);
	if (idx < 0)
		return idx;
	p->loop_index = idx;
	p->loop_attached = true;
	p->loop_added = pm_loop_is_new(&cfg, idx);
	p->ssz = ssz;
	return 0;
}

static void set_loop_names(struct pm_parent *p)
{
	snprintf(p->node, sizeof(p->node), "/dev/loop%d", p->loop_index);
	snprintf(p->base, sizeof(p->base), "loop%d", p->loop_index);
}

struct file_loops {
	struct pm_parent *p;
	size_t cap;
};

static int collect_file_loop(const struct pm_loop_info *li, void *arg)
{
	struct file_loops *c = arg;
	struct pm_parent *p = c->p;

	if (!li->backing_known || li->backing_dev != p->file_dev || li->backing_ino != p->file_ino)
		return 0;
	if (pm_grow(&p->file_loops, p->nfile_loops, &c->cap, sizeof(*p->file_loops)) < 0)
		return -ENOMEM;
	p->file_loops[p->nfile_loops++] = *li;
	return 0;
}

/* One walk over the loop devices: those bound to the image are kept for the loop backend, and the
 * lowest-numbered one covering the whole file (offset 0, no size limit or one at least the file's
 * size) is the image's loop device. 1 with *whole filled, 0 when there is none, -errno. */
static int find_file_loops(struct pm_parent *p, struct pm_loop_info *whole)
{
	struct file_loops c = { p, 0 };
	/* every loop device over an image with a sector in it has a size (its partitions' too) */
	int r = pm_loop_each_info(collect_file_loop, &c, p->size >= 512 ? 512 : 0), best = -1;

	if (r < 0)
		return r;
	p->file_loops_known = true;
	for (size_t i = 0; i < p->nfile_loops; i++) {
		const struct pm_loop_info *li = &p->file_loops[i];
		if (pm_loop_covers_whole(li, p->size) && (best < 0 || li->index < p->file_loops[best].index))
			best = (int)i;
	}
	if (best < 0)
		return 0;
	*whole = p->file_loops[best];
	return 1;
}

int pm_parent_open(struct pm_parent *p, const char *path, const struct pm_parent_opts *o, const char **why)
{
	struct stat st;
	int r;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->lock_fd = -1;
	p->node_fd = -1;
	p->loop_control_fd = -1;
	p->loop_index = -1;
	p->path = path;
	p->read_only = o->read_only;
	p->udev_nowait = o->udev_nowait;
	p->delete_foreign = o->delete_foreign;
	*why = "cannot open";
	/* open once, then look at what was opened: type, device and inode all come from this descriptor
	 * (a stat() of the path first may describe another file than the one opened). O_NONBLOCK so that
	 * a FIFO cannot block the open; cleared once the type is known. */
	int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	p->fd = open(path, (p->read_only ? O_RDONLY : O_RDWR) | flags);
	if (p->fd < 0 && !p->read_only && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		/* a read-only image or device: map it read-only rather than not at all */
		p->fd = open(path, O_RDONLY | flags);
		p->read_only = true;
	}
	if (p->fd < 0)
		return -errno;
	if (fstat(p->fd, &st) < 0)
		return -errno;
	if (o->expect && (st.st_dev != o->expect->st_dev || st.st_ino != o->expect->st_ino)) {
		*why = "replaced while it was being opened";
		return -ESTALE;
	}
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -ENOTBLK;
	if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return -errno;
	*why = "cannot lock";
	/* the lock on a second open file description of that same file (a loop device keeps p->fd's,
	 * and a lock on it would outlive this run): a reopen through /proc, the path without /proc */
	char self[64];
	struct stat lst;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", p->fd);
	p->lock_fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (p->lock_fd < 0 && errno == ENOENT)
		p->lock_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (p->lock_fd < 0 || fstat(p->lock_fd, &lst) < 0)
		return -errno;
	if (lst.st_dev != st.st_dev || lst.st_ino != st.st_ino)
		return -ESTALE; /* the path now names another file */
	if (flock(p->lock_fd, LOCK_EX) < 0)
		return -errno;

	if (S_ISREG(st.st_mode)) {
		struct pm_loop_info li = { 0 };
		char sys[64];

		p->is_file = true;
		p->file_dev = st.st_dev;
		p->file_ino = st.st_ino;
		p->size = (uint64_t)st.st_size;
		*why = "cannot look for its loop device";
		r = find_file_loops(p, &li);
		if (r < 0)
			return r;
		if (r == 1) {
			p->loop_index = li.index;
			p->loop_added = pm_loop_disk_added(&li);
			p->ssz = pm_loop_block_size(li.index);
			if (!li.read_only && p->read_only) {
				/* -r on an image whose loop is writable: the maps are made read-only instead */
			}
		} else if (o->attach) {
			*why = "cannot attach a loop device";
			r = attach_whole(p, o);
			if (r < 0)
				return r;
		} else {
			return 0; /* nothing is mapped for an image without a loop device */
		}
		set_loop_names(p);
		snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", p->loop_index);
		*why = "cannot read its loop device's number";
		r = pm_sysfs_devnum(sys, &p->rdev);
		if (r < 0)
			return r;
	} else {
		int ssz;

		p->rdev = st.st_rdev;
		pm_strlcpy(p->node, path, sizeof(p->node));
		*why = "cannot read its size";
		if (ioctl(p->fd, BLKGETSIZE64, &p->size) < 0 || ioctl(p->fd, BLKSSZGET, &ssz) < 0)
			return -errno;
		p->ssz = (unsigned)ssz;
		*why = "cannot make a map name from this path";
		if (pm_dm_name_of(p->rdev, p->base, sizeof(p->base)) < 0) {
			r = pm_base_from_path(p->base, sizeof(p->base), path);
			if (r < 0)
				return r;
		}
		/* a loop device given by path: remember its index (a partition of one is not one) */
		r = pm_loop_index_of(p->rdev);
		p->loop_index = r >= 0 ? r : -1;
	}
	snprintf(p->sysdir, sizeof(p->sysdir), "/sys/dev/block/%u:%u", major(p->rdev), minor(p->rdev));
	pm_dev_kernel_name(p->rdev, p->sysname, sizeof(p->sysname));
	p->devtmpfs = pm_dev_is_devtmpfs();
	if (stat(p->node, &st) == 0) {
		p->node_mode = st.st_mode & 07777;
		p->node_uid = st.st_uid;
		p->node_gid = st.st_gid;
	} else {
		p->node_mode = 0600;
	}
	p->delim = o->delim ? o->delim : pm_default_delim(p->base);
	*why = "";
	return 0;
}

void pm_parent_close(struct pm_parent *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->node_fd >= 0)
		close(p->node_fd);
	if (p->loop_control_fd >= 0)
		close(p->loop_control_fd);
	pm_loop_set_free(&p->loops_found);
	p->loops_found_read = false;
	free(p->loops_doomed);
	p->loops_doomed = NULL;
	p->nloops_doomed = p->loops_doomed_cap = 0;
	free(p->file_loops);
	p->file_loops = NULL;
	p->nfile_loops = 0;
	p->file_loops_known = false;
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* drops the lock */
	if (p->dm) {
		pm_dm_close(p->dm);
		free(p->dm);
		p->dm = NULL;
	}
	p->fd = p->lock_fd = p->node_fd = p->loop_control_fd = -1;
}

/* partmap's own hold on the parent's node (opened for BLKPG): the kernel would defer a detach, and
 * refuse a removal, while it is open */
static void drop_node_fd(struct pm_parent *p)
{
	if (p->node_fd >= 0) {
		close(p->node_fd);
		p->node_fd = -1;
	}
}

int pm_parent_detach(struct pm_parent *p, bool deferred)
{
	int r;

	if (!p->is_file || p->loop_index < 0)
		return 0;
	drop_node_fd(p);
	r = pm_loop_detach(p->loop_index, !deferred);
	/* a device still held (detached when its holder closes it) stays, free after that */
	if (r == 0 && p->loop_added)
		pm_parent_doom_loop(p, p->loop_index);
	return r < 0 ? r : 0;
}

bool pm_loop_disk_added(const struct pm_loop_info *li)
{
	return li->status_known && !strcmp(li->tag, PM_LOOP_TAG_DISK_ADDED);
}

/* A device made for partmap and noted for removal does not count as one that was there before: when
 * this run takes it again (-u remaking a changed partition), it is still tagged as made, and removed
 * later. */
struct pm_loop_set *pm_parent_loops_found(struct pm_parent *p)
{
	if (!p->loops_found_read) {
		p->loops_found_read = pm_loop_set_read(&p->loops_found) == 0;
		for (size_t i = 0; p->loops_found_read && i < p->nloops_doomed; i++)
			pm_loop_set_del(&p->loops_found, p->loops_doomed[i]);
	}
	return p->loops_found_read ? &p->loops_found : NULL;
}

void pm_parent_doom_loop(struct pm_parent *p, int index)
{
	/* out of the set of devices there before, if it has been read (else when it is) */
	if (p->loops_found_read)
		pm_loop_set_del(&p->loops_found, index);
	/* no room to note it: it stays, free, as a device that was there before would */
	if (pm_grow(&p->loops_doomed, p->nloops_doomed, &p->loops_doomed_cap, sizeof(*p->loops_doomed)) == 0)
		p->loops_doomed[p->nloops_doomed++] = index;
}

void pm_parent_release_loops(struct pm_parent *p, pm_report_fn report, void *arg)
{
	_cleanup_free_ int *err = NULL;
	_cleanup_free_ dev_t *dev = NULL;
	size_t n = p->nloops_doomed;

	if (n == 0)
		return;
	p->nloops_doomed = 0;
	drop_node_fd(p);
	err = calloc(n, sizeof(*err));
	dev = calloc(n, sizeof(*dev));
	if (!err || !dev)
		return;
	/* without devtmpfs (a container's /dev) the nodes of removed devices are partmap's to remove:
	 * their numbers first, while sysfs has them */
	for (size_t i = 0; !p->devtmpfs && i < n; i++) {
		char sys[64];
		snprintf(sys, sizeof(sys), "/sys/block/loop%d/dev", p->loops_doomed[i]);
		pm_sysfs_devnum(sys, &dev[i]);
	}
	pm_loop_remove_many(p->loop_control_fd, p->loops_doomed, err, n);
	for (size_t i = 0; i < n; i++) {
		struct pm_mapping m = { .loop_index = p->loops_doomed[i], .open_count = -1 };
		char sys[64];

		snprintf(m.node, sizeof(m.node), "/dev/loop%d", m.loop_index);
		snprintf(sys, sizeof(sys), "/sys/block/loop%d", m.loop_index);
		if (err[i] < 0) {
			snprintf(m.name, sizeof(m.name), "loop%d", m.loop_index);
			report(arg, PM_EV_LOOPKEPT, p, &m, err[i]);
		} else if (dev[i] && access(sys, F_OK) < 0) {
			pm_node_remove(m.node, dev[i]); /* gone (not taken by another process meanwhile) */
		}
	}
}

const struct pm_backend *const pm_backends[] = { &pm_backend_dm, &pm_backend_part, &pm_backend_loop, NULL };

const struct pm_backend *pm_backend_in_use(struct pm_parent *p)
{
	for (const struct pm_backend *const *b = pm_backends; *b; b++) {
		if ((*b)->usable(p) < 0)
			continue;
		struct pm_mapping *m = NULL;
		size_t n = 0;
		if ((*b)->list(p, false, &m, &n) == 0 && n) {
			free(m);
			return *b;
		}
		free(m);
	}
	return NULL;
}

/* node and /dev/mapper link for a mapping that exists */
static int publish(struct pm_parent *p, const struct pm_mapping *m)
{
	bool made = false;
	int r;

	if (m->own_node) {
		/* the map's own node: made by the backend (or udev); put it back if it went missing */
		if (p->dm && p->dm->udev && p->udev_nowait)
			return 0;
		return pm_node_ensure(m->node, m->dev, p->node_mode, p->node_uid, p->node_gid, 0, &made);
	}
	if (!m->node_ready) {
		r = pm_node_ensure(m->node, m->dev, p->node_mode, p->node_uid, p->node_gid, p->devtmpfs ? 1000 : 0, &made);
		if (r < 0)
			return r;
	}
	return pm_mapper_link(m->name, m->node);
}

/* the /dev/mapper links as they were when a sync started: read once, not once per mapping */
struct links {
	struct link {
		char name[PM_NAME_MAX];
		char target[PATH_MAX];
	} *v;
	size_t n;
};

/* ".<name>.partmap-<pid>": a link being made when its maker was killed; removed once the maker is gone */
static void sweep_temp_link(const char *entry)
{
	const char *tag = strstr(entry, ".partmap-");
	char path[PATH_MAX];
	char *end;
	long pid;

	if (entry[0] != '.' || !tag)
		return;
	pid = strtol(tag + 9, &end, 10);
	if (*end || pid <= 0 || pid == getpid() || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
		return;
	snprintf(path, sizeof(path), "/dev/mapper/%s", entry);
	unlink(path);
}

static void links_free(struct links *l)
{
	free(l->v);
	l->v = NULL;
}

static void links_read(struct links *l)
{
	DIR *d = opendir("/dev/mapper");
	struct dirent *de;
	size_t cap = 0;

	l->v = NULL;
	l->n = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && de->d_type == DT_LNK)
			sweep_temp_link(de->d_name);
		if (de->d_name[0] == '.' || de->d_type != DT_LNK || strlen(de->d_name) >= PM_NAME_MAX)
			continue;
		if (pm_grow(&l->v, l->n, &cap, sizeof(*l->v)) < 0)
			break;
		pm_strlcpy(l->v[l->n].name, de->d_name, PM_NAME_MAX);
		if (pm_mapper_readlink(de->d_name, l->v[l->n].target, PATH_MAX) == 0)
			l->n++;
	}
	closedir(d);
}

/* remove the /dev/mapper links that pointed at the mapping's node when the sync started, whatever
 * their name (after -p changed), but the one named keep: from the table read then, one unlink each */
static void unpublish(struct links *l, const struct pm_mapping *m, const char *keep)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].target[0] && !strcmp(l->v[i].target, m->node) && (!keep || strcmp(l->v[i].name, keep))) {
			char path[PATH_MAX];
			if (pm_mapper_path(path, sizeof(path), l->v[i].name) == 0)
				unlink(path);
			l->v[i].target[0] = 0;
		}
}

static int remove_one(struct pm_parent *p, const struct pm_backend *b, struct links *l,
		      const struct pm_mapping *m, pm_report_fn report, void *arg)
{
	int r = b->remove(p, m);

	if (r == -EBUSY) {
		report(arg, PM_EV_BUSY, p, m, r);
		return 1;
	}
	if (r < 0) {
		report(arg, PM_EV_FAIL, p, m, r);
		return 1;
	}
	unpublish(l, m, NULL);
	report(arg, PM_EV_DEL, p, m, 0);
	return 0;
}

static const struct pm_mapping *find_num(const struct pm_mapping *e, size_t n, unsigned num)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].num == num)
			return &e[i];
	return NULL;
}

/* mappings made while udev works through a batch: their nodes are checked (and made, if udev did
 * not answer) and they are reported once the batch has ended */
struct later {
	struct pm_mapping *v;
	size_t n, cap;
};

static int sync_mappings(struct pm_parent *p, const struct pm_backend *b, const struct pm_table *t,
			 enum pm_sync_mode mode, pm_report_fn report, void *arg, struct later *later)
{
	_cleanup_free_ struct pm_mapping *e = NULL;
	__attribute__((cleanup(links_free))) struct links links = { 0 };
	size_t ne = 0;
	int failures = 0, r;

	if (p->loop_index < 0 && p->is_file)
		return 0;
	r = b->list(p, mode != PM_SYNC_DELETE, &e, &ne);
	if (r < 0) {
		report(arg, PM_EV_FAIL, p, NULL, r);
		return 1;
	}
	links_read(&links); /* also tidies what a killed run left half-made */
	if (mode == PM_SYNC_DELETE) {
		for (size_t i = ne; i-- > 0;) /* logicals before their container */
			failures += remove_one(p, b, &links, &e[i], report, arg);
		return failures;
	}
	if (mode == PM_SYNC_UPDATE) {
		for (size_t i = ne; i-- > 0;)
			if (!pm_table_find(t, e[i].num))
				failures += remove_one(p, b, &links, &e[i], report, arg);
	}
	for (size_t i = 0; i < t->nparts; i++) {
		const struct pm_part *part = &t->parts[i];
		const struct pm_mapping *old = find_num(e, ne, part->num);
		struct pm_mapping m = { .num = part->num, .start = part->start, .size = part->size, .loop_index = -1,
					.open_count = -1 };

		r = pm_name_for(p, part->num, m.name, sizeof(m.name));
		if (r < 0) {
			report(arg, PM_EV_FAIL, p, &m, r);
			failures++;
			continue;
		}
		if (old && old->start == part->start && old->size == part->size) {
			struct pm_mapping keep = *old;
			if (b->rename && strcmp(old->name, m.name)) {
				/* found by its UUID under an old name (-p changed): rename it */
				r = b->rename(p, old, m.name);
				if (r < 0) {
					report(arg, PM_EV_FAIL, p, &m, r);
					failures++;
					continue;
				}
				if (keep.own_node)
					snprintf(keep.node, sizeof(keep.node), "/dev/mapper/%s", m.name);
			}
			memcpy(keep.name, m.name, sizeof(m.name));
			/* the name may have changed (-p): drop links under other names; the one under the
			 * current name stays in place (no moment without it) */
			unpublish(&links, old, keep.name);
			r = publish(p, &keep);
			report(arg, r < 0 ? PM_EV_FAIL : PM_EV_ADD, p, &keep, r);
			failures += r < 0;
			continue;
		}
		if (old) {
			struct pm_mapping was = *old;
			memcpy(was.name, m.name, sizeof(m.name));
			if (remove_one(p, b, &links, &was, report, arg)) {
				failures++;
				continue;
			}
		}
		r = b->add(p, part, &m);
		if (r == 0 && later) {
			r = pm_mappings_push(&later->v, &later->n, &later->cap, &m);
			if (r == 0)
				continue;
		}
		if (r == 0)
			r = publish(p, &m);
		if (r < 0) {
			report(arg, PM_EV_FAIL, p, &m, r);
			failures++;
			continue;
		}
		report(arg, PM_EV_ADD, p, &m, 0);
	}
	return failures;
}

int pm_map_sync(struct pm_parent *p, const struct pm_backend *b, const struct pm_table *t,
		enum pm_sync_mode mode, pm_report_fn report, void *arg)
{
	struct later later = { 0 };
	bool batch = b->batch_begin && b->batch_begin(p) > 0;
	int failures = sync_mappings(p, b, t, mode, report, arg, batch ? &later : NULL);

	if (batch) {
		b->batch_end(p);
		for (size_t i = 0; i < later.n; i++) {
			int r = publish(p, &later.v[i]);
			report(arg, r < 0 ? PM_EV_FAIL : PM_EV_ADD, p, &later.v[i], r);
			failures += r < 0;
		}
	}
	free(later.v);
	return failures;
}
