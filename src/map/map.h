/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Mapping backends: give each partition a block device and /dev/mapper/<name>.
 *   part: kernel partitions on the parent (BLKPG), nodes /dev/loopNpM
 *   loop: one loop device per partition, with offset and size limit
 * Everything -d and -u need is read back from the kernel (sysfs, loop status): no state files. */
#ifndef PARTMAP_MAP_H
#define PARTMAP_MAP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../loop.h"
#include "../names.h"
#include "../ptable.h"

/* lo_file_name of partmap's per-partition loops: "partmap:<num>", and "partmap:<num>:added" for a
 * device the kernel created for partmap (none was free): -d removes those again */
#define PM_LOOP_TAG "partmap:"
#define PM_LOOP_TAG_ADDED ":added"
/* ... and of an image's whole-file loop the kernel created for partmap (no tag otherwise) */
#define PM_LOOP_TAG_DISK_ADDED PM_LOOP_TAG "disk" PM_LOOP_TAG_ADDED

struct pm_parent {
	const char *path;          /* as given */
	bool is_file;
	int fd;                    /* the image or the block device (given to loop devices as backing) */
	int node_fd;               /* the parent's node, opened once for BLKPG (part backend); -1 */
	int loop_control_fd;       /* /dev/loop-control, opened once for a run's loop devices; -1 */
	struct pm_loop_set loops_found; /* the loop devices there before this run took a free one */
	bool loops_found_read;
	int *loops_doomed;         /* loop devices made for partmap and detached by this run: */
	size_t nloops_doomed, loops_doomed_cap; /* pm_parent_release_loops removes them */
	struct pm_loop_info *file_loops; /* image: the loop devices bound to it, from the one walk over */
	size_t nfile_loops;        /* all loop devices that pm_parent_open makes (the loop backend's */
	bool file_loops_known;     /* list reads these instead of walking them all again) */
	int lock_fd;               /* a separate open of it that holds the flock: a loop device keeps its
				    * backing file open, and a lock on that would outlive partmap */
	dev_t file_dev;            /* image: its device and inode */
	ino_t file_ino;
	uint64_t size;             /* bytes */
	int loop_index;            /* image: its whole-file loop; a loop device parent: its index; else -1 */
	bool loop_attached;        /* the whole-file loop was attached by this run */
	bool loop_added;           /* ... on a device the kernel created for partmap (by this run or
				    * the one that attached it: its tag says) */
	dev_t rdev;                /* the parent block device (the whole-file loop for an image) */
	char node[PATH_MAX];       /* its node: /dev/loopN, or the path as given */
	char sysdir[PATH_MAX];     /* /sys/dev/block/M:m */
	char sysname[64];          /* the kernel's name of the parent: loop0, sdb ... */
	bool devtmpfs;             /* /dev makes the kernel's nodes itself */
	char base[PM_NAME_MAX];    /* map names: <base><delim><N> */
	const char *delim;
	unsigned ssz;              /* logical sector size */
	bool read_only;
	struct pm_dm *dm;          /* the device-mapper handle, when that backend is used */
	char dm_parent_uuid[132];  /* kpartx's parent UUID, worked out once */
	bool dm_parent_has_uuid;   /* ... and it is the parent's own DM UUID, not the devnode_ stand-in */
	bool delete_foreign;       /* -d -f: also linear maps over a parent without a DM UUID that
				    * partmap or kpartx did not make (kpartx's -f with -d) */
	bool udev_nowait;          /* -n: leave nodes to udev, do not wait for it */
	mode_t node_mode;          /* copied to the nodes partmap makes */
	uid_t node_uid;
	gid_t node_gid;
};

struct pm_mapping {
	unsigned num;
	char name[PM_NAME_MAX];
	uint64_t start, size;      /* 512-byte sectors on the parent */
	dev_t dev;
	char node[PATH_MAX];
	int loop_index;            /* loop backend */
	bool loop_added;           /* loop backend: the kernel created the device for partmap */
	bool own_node;             /* node is /dev/mapper/<name> itself (dm): no symlink */
	bool node_ready;           /* the backend saw the node in place (devtmpfs): nothing to check */
	int open_count;            /* dm: as listed (-1 unknown) */
};

struct pm_backend {
	const char *name;
	/* 0 when it can map partitions of this parent, else -errno (why not) */
	int (*usable)(struct pm_parent *p);
	/* 0 when it can map this table's partitions (optional), else -errno (why not) */
	int (*can_map)(const struct pm_parent *p, const struct pm_table *t);
	/* the mappings of this parent that exist now, sorted by number; without extents, start and
	 * size may be left 0 (enough to remove them: -d reads less) */
	int (*list)(struct pm_parent *p, bool extents, struct pm_mapping **out, size_t *n);
	/* make one; fills dev, node (and loop_index) */
	int (*add)(struct pm_parent *p, const struct pm_part *part, struct pm_mapping *m);
	/* remove one; -EBUSY when it is open or mounted */
	int (*remove)(struct pm_parent *p, const struct pm_mapping *m);
	/* give an existing mapping its new name (after -p changed); NULL: names are only links */
	int (*rename)(struct pm_parent *p, const struct pm_mapping *m, const char *new_name);
	/* optional: one wait for udev for a whole sync (dm, as kpartx's one cookie). begin returns 1
	 * when batching: nodes of new mappings are then checked after end, which waits (bounded) */
	int (*batch_begin)(struct pm_parent *p);
	void (*batch_end)(struct pm_parent *p);
};

/* The kernel takes partition numbers up to this through BLKPG (DISK_MAX_PARTS - 1). */
#define PM_BLKPG_MAX_PARTNO 255

extern const struct pm_backend pm_backend_part;
extern const struct pm_backend pm_backend_loop;
extern const struct pm_backend pm_backend_dm;
/* every backend, in the order -a prefers them (dm, part, loop); NULL-terminated */
extern const struct pm_backend *const pm_backends[];

enum pm_event {
	PM_EV_ADD,      /* made (or already there, for -a): kpartx's "add map" line */
	PM_EV_DEL,      /* removed: "del devmap" */
	PM_EV_BUSY,     /* in use: left alone */
	PM_EV_FAIL,     /* could not be made or removed (err) */
	PM_EV_LOOPDEL,  /* the image's loop device was detached */
	PM_EV_WARN,     /* something partmap could not tidy (a node, a link) */
	PM_EV_LOOPKEPT, /* a loop device partmap made could not be removed (err): it stays, free */
};
typedef void (*pm_report_fn)(void *arg, enum pm_event ev, const struct pm_parent *p,
			     const struct pm_mapping *m, int err);

enum pm_sync_mode { PM_SYNC_ADD, PM_SYNC_UPDATE, PM_SYNC_DELETE };

struct pm_parent_opts {
	bool attach;               /* an image without a loop device gets one (-a, -u) */
	bool read_only;
	unsigned sector_size;      /* for a new whole-file loop; 0 = guess from the table */
	const char *delim;         /* NULL = kpartx's default rule */
	bool udev_nowait;          /* -n */
	bool delete_foreign;       /* -d -f */
	const struct stat *expect; /* when set, path must still name this file (device and inode):
				    * -ESTALE when it was replaced since the caller looked at it */
};

/* Open and lock the parent, find (or attach) the image's loop device, work out names. 0 or -errno;
 * *why gets a short reason on failure. */
int pm_parent_open(struct pm_parent *p, const char *path, const struct pm_parent_opts *o, const char **why);
void pm_parent_close(struct pm_parent *p);

/* Bring the mappings in line with table: ADD makes missing ones and re-makes changed ones, UPDATE also
 * removes those no longer in the table, DELETE removes all. Busy mappings are left alone and
 * reported; all others are still done. Returns the number of failures (busy included). */
int pm_map_sync(struct pm_parent *p, const struct pm_backend *b, const struct pm_table *t,
		enum pm_sync_mode mode, pm_report_fn report, void *arg);

/* Detach the whole-file loop of an image. deferred (-d, as kpartx): LOOP_CLR_FD even when something
 * else holds the device open; the kernel then detaches it when the last user closes it (autoclear).
 * Otherwise (undoing a failed -a) only when nothing holds it. */
int pm_parent_detach(struct pm_parent *p, bool deferred);
/* Was li, an image's whole-file loop, made for partmap (its tag says)? */
bool pm_loop_disk_added(const struct pm_loop_info *li);
/* The loop devices that existed before this run took its first free one (read once; NULL when
 * /sys/block cannot be read: then no device counts as made for partmap). */
struct pm_loop_set *pm_parent_loops_found(struct pm_parent *p);
/* Note loop device INDEX, made for partmap and now detached, for pm_parent_release_loops. */
void pm_parent_doom_loop(struct pm_parent *p, int index);
/* Remove the noted loop devices, all at once (LOOP_CTL_REMOVE waits for the kernel: about 50 ms for
 * one or for a hundred): -a then -d leave the loop devices as they were. One that cannot be removed
 * is reported (PM_EV_LOOPKEPT) and stays, free; not a failure. */
void pm_parent_release_loops(struct pm_parent *p, pm_report_fn report, void *arg);

/* Which backend already holds mappings of this parent (NULL if none). */
const struct pm_backend *pm_backend_in_use(struct pm_parent *p);

/* shared by the backends */
int pm_name_for(const struct pm_parent *p, unsigned num, char *buf, size_t len);
int pm_sort_mappings(struct pm_mapping *m, size_t n);
/* append m to a growing list; -ENOMEM */
int pm_mappings_push(struct pm_mapping **v, size_t *n, size_t *cap, const struct pm_mapping *m);

#endif
