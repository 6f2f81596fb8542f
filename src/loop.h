/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loop devices: which ones back a file, and a free one from /dev/loop-control. Library rules: -errno
 * returns, no printing. */
#ifndef PARTMAP_LOOP_H
#define PARTMAP_LOOP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pm_loop_info {
	int index;
	dev_t dev;                    /* the loop device's own number */
	uint64_t offset, sizelimit;   /* bytes; sizelimit 0 = to the end of the file */
	bool read_only, autoclear, partscan, direct_io;
	char backing[PATH_MAX];       /* as sysfs reports it (may end in " (deleted)") */
	dev_t backing_dev;
	ino_t backing_ino;
	bool backing_known;           /* backing_dev/ino are valid */
	dev_t backing_rdev;           /* a block device bound: its number (0 for a file; known with the node) */
	char tag[64];                 /* lo_file_name (partmap's "partmap:<N>"; known with the node) */
	bool status_known;            /* read through the node with LOOP_GET_STATUS64 (else from sysfs) */
	bool hung;                    /* the status call did not answer in time: the backing file is on a
	                               * FUSE mount whose server is alive but does not answer (a dead
	                               * server's fails at once); the rest is sysfs's, backing unknown */
};

/* Fill info for loop device INDEX: one LOOP_GET_STATUS64 through its node (and the backing path
 * from sysfs); from sysfs alone when the node cannot be opened (a container's /dev). The status is
 * asked in a child process, waited for a bounded time (a FUSE server that does not answer would
 * block it: then info->hung). Returns 1 when the device is bound to a file, 0 when it is free,
 * -errno on error. */
int pm_loop_info(int index, struct pm_loop_info *info);
/* The logical sector size of loop device INDEX (512 when sysfs does not say). */
unsigned pm_loop_block_size(int index);

/* Find a bound loop device whose backing file is (dev, ino) and that covers the whole file (offset 0,
 * no size limit or one at least file_size). Returns 1 and fills info, 0 when none, -errno. */
int pm_loop_find_whole(dev_t dev, ino_t ino, uint64_t file_size, struct pm_loop_info *info);
/* Does this bound device show the whole of a file of file_size bytes (offset 0, no size limit or one
 * at least the file's size)? */
bool pm_loop_covers_whole(const struct pm_loop_info *li, uint64_t file_size);

/* Call fn(info) for each bound loop device, in sysfs directory order (as util-linux lists them); fn
 * returns 0 to go on, non-zero to stop (a negative value is returned). min_bytes: the smallest device
 * the caller wants; from 512 up only devices with a size are visited, as /proc/partitions lists them
 * (one file, not a lookup per free device), and only those of min_bytes or more (rounded down to
 * 512); below, every bound device through /sys/block. */
int pm_loop_each_info(int (*fn)(const struct pm_loop_info *info, void *arg), void *arg, uint64_t min_bytes);

/* Find a bound loop device, at offset 0, whose backing file sysfs names PATH (the file need not be
 * reachable: a FUSE file whose server died). min_bytes as for pm_loop_each_info: 0 to see every
 * device, whatever its size. Returns 1 and fills info, 0 when none, -errno. */
int pm_loop_find_path(const char *path, uint64_t min_bytes, struct pm_loop_info *info);

/* The index of the loop device with device number DEV, from sysfs (/sys/dev/block/M:m names the
 * device loopN; the minor is the index only when the loop driver has max_part=0). -ENODEV when DEV is
 * not a whole loop device (a partition of one included). */
int pm_loop_index_of(dev_t dev);
/* The index in a loop device's kernel name ("loop7" -> 7); -ENODEV for any other name ("loop7p1"). */
int pm_loop_index_of_name(const char *name);

/* LOOP_CTL_GET_FREE on control_fd (-1: /dev/loop-control opened for the call): the index of a free
 * loop device (the kernel creates one when none is free). -errno on error. */
int pm_loop_get_free(int control_fd);

/* The index LOOP_CTL_GET_FREE would give now, without making the kernel create a device when none is
 * free: the lowest-numbered free device, else the lowest number not in use (the kernel's rule).
 * For names shown before anything is attached (kpartx -l). -errno on error, and when
 * /dev/loop-control is not open to this process (no device could be had). */
int pm_loop_next_free(void);

/* The loop devices that exist, bound or free, by index (sorted): what a run found before it took
 * free ones, so that it knows which ones the kernel created for it. */
struct pm_loop_set {
	int *v;
	size_t n;
};
/* Read the set from /sys/block (one directory read). -errno on error. */
int pm_loop_set_read(struct pm_loop_set *s);
bool pm_loop_set_has(const struct pm_loop_set *s, int index);
/* Take index out of the set (no-op when it is not in it). */
void pm_loop_set_del(struct pm_loop_set *s, int index);
void pm_loop_set_free(struct pm_loop_set *s);

/* LOOP_CTL_REMOVE loop devices (free ones: detached, nobody holding them), on control_fd (-1: one
 * opened for the call). The kernel takes about 50 ms a device, most of it waiting for RCU grace
 * periods that removals running at the same time share: they run in up to PM_LOOP_REMOVE_THREADS
 * threads. A device still open (udev probing it after the detach) is tried again, a bounded number of
 * times. err[i] gets 0 (removed, gone already, or bound by another process meanwhile) or -errno.
 * Returns how many were not removed. */
size_t pm_loop_remove_many(int control_fd, const int *index, int *err, size_t n);

struct pm_loop_cfg {
	int index;                /* a given device, or -1 for a free one */
	int control_fd;           /* an open /dev/loop-control to take free ones from, or -1 */
	uint64_t offset, sizelimit;
	unsigned block_size;      /* 0 = 512 */
	bool read_only, autoclear, partscan, direct_io;
	const char *tag;          /* stored in lo_file_name (at most 63 characters) */
	/* with index -1: when the free device taken is not in *existing (the kernel created it for
	 * this call), tag_new is stored instead of tag */
	const struct pm_loop_set *existing;
	const char *tag_new;
};

/* Did pm_loop_attach with cfg take device INDEX as one the kernel created for the call (not in
 * cfg->existing; it then stored cfg->tag_new)? */
bool pm_loop_is_new(const struct pm_loop_cfg *cfg, int index);
/* Bind backing_fd to a loop device: LOOP_CONFIGURE, or LOOP_SET_FD + LOOP_SET_STATUS64 on kernels
 * without it. With index -1, a free device is taken and another one tried when a concurrent process
 * takes it first (EBUSY). Returns the index, or -errno; *dev (when not NULL) gets its number. */
int pm_loop_attach(int backing_fd, const struct pm_loop_cfg *cfg, dev_t *dev);
/* LOOP_CLR_FD, retried a few times on EBUSY. With check_busy, first refuse (-EBUSY) when the device is
 * held open exclusively (mounted, or used by another mapping). 0 when the device is free now, 1 when
 * another process still holds it open (the kernel detaches it when that one closes it), -errno. */
int pm_loop_detach(int index, bool check_busy);
/* Set or clear the read-only flag of loop device INDEX (BLKROSET, as the userspace DM does for a
 * read-only table). The flag belongs to the device number, not the attachment: a device let go with
 * it set would be read-only for whoever attaches a file to it next, so clear it before letting go.
 * 0 or -errno. */
int pm_loop_set_ro(int index, bool read_only);
/* Open /dev/loopN, making the node from sysfs when it is missing. Returns an fd or -errno. */
int pm_loop_open(int index, int flags);
/* Change the size limit of a bound loop device (LOOP_SET_STATUS64) or re-read its backing size
 * (LOOP_SET_CAPACITY when sizelimit is UINT64_MAX). */
int pm_loop_set_sizelimit(int index, uint64_t sizelimit);
/* Have the kernel detach a bound device when its last opener closes it (LO_FLAGS_AUTOCLEAR). */
int pm_loop_set_autoclear(int index);

#endif
