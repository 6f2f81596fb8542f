/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The device mapper in userspace: devices with a live and an inactive table slot, suspend and resume,
 * events, and the kernel's DM ioctl interface carried out on them (pm_udm_ioctl takes the same
 * struct dm_ioctl buffers the kernel does, so the device-mapper client in src/dm.c, and so dmsetup,
 * work unchanged over it). Tables are pm_dtab (src/target/); a table may refer to the engine's own
 * devices, which it then reads and writes directly. The block device of each device is made by the
 * owner through hooks (the server: a loop device on a FUSE file). Library rules: -errno returns, no
 * printing, no global state. */
#ifndef PARTMAP_UDM_H
#define PARTMAP_UDM_H

#include "vdev.h"

#include <linux/dm-ioctl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* the interface version answered to DM_VERSION, and the one the engine carries out */
#define PM_UDM_VERSION_MINOR 48

struct pm_udm;

struct pm_udm_hooks {
	/* A device was created: make its block device (it shows the device's file, id). *dev: its number. */
	int (*dev_add)(void *arg, unsigned id, const char *name, dev_t *dev);
	/* A table became live: its size, read-only state and optimal I/O size (bytes, 0: none; the
	 * kernel sets the device's read-ahead from it at every table swap) for the block device. */
	int (*dev_update)(void *arg, unsigned id, dev_t dev, uint64_t bytes, bool read_only, uint32_t io_opt);
	/* Removed: take the block device away (deferred: when its last opener closes it; the owner then
	 * calls pm_udm_release, and the device's node, if any, goes with it). */
	int (*dev_remove)(void *arg, unsigned id, const char *name, dev_t dev, bool deferred);
	/* Renamed (the block device may carry the name). */
	void (*dev_rename)(void *arg, unsigned id, dev_t dev, const char *name);
	/* Freeze (before a suspend) or thaw (after the resume) a filesystem mounted from the block
	 * device, as the kernel's lockfs does; 1 when one was frozen, 0 when none is mounted. NULL:
	 * nothing frozen. */
	int (*dev_freeze)(void *arg, dev_t dev, bool freeze);
	/* How many openers the block device has (mounts, descriptors, other block devices over it). */
	int (*dev_open_count)(void *arg, dev_t dev);
	/* A read or write that came for a device is about to run in the calling thread: cpu_bound when
	 * its live table, or one of a device under it, holds a target whose work is the processor's
	 * (crypt). NULL: not called. */
	void (*io_class)(void *arg, bool cpu_bound);
	/* How a device named in a table that is not one of the engine's is opened; NULL: block devices
	 * (pm_target_env_default). */
	const struct pm_target_env *env;
	void *arg;
};

int pm_udm_new(struct pm_udm **out, const struct pm_udm_hooks *hooks);
/* Every device dropped (tables freed; no hooks called). */
void pm_udm_free(struct pm_udm *u);

/* One DM ioctl as the kernel carries it out: io is the caller's buffer (io->data_size bytes) with
 * the command's input; the reply is written into it (DM_BUFFER_FULL_FLAG when it did not fit). 0 or
 * -errno as the kernel's ioctl would fail; err (when not NULL) gets a table's refusal in the
 * kernel's log words ("striped: Target length not divisible by number of stripes"). */
int pm_udm_ioctl(struct pm_udm *u, unsigned cmd, struct dm_ioctl *io, char *err, size_t err_len);

/* I/O on device id (the FUSE front end): blocks while the device is suspended; -ENXIO when it has
 * no live table or no longer exists. */
int pm_udm_read(struct pm_udm *u, unsigned id, uint64_t off, void *buf, size_t len);
int pm_udm_write(struct pm_udm *u, unsigned id, uint64_t off, const void *buf, size_t len);
int pm_udm_flush(struct pm_udm *u, unsigned id);
int pm_udm_discard(struct pm_udm *u, unsigned id, uint64_t off, uint64_t len);
/* The live table's size in bytes (0 without one); -ENOENT for no such device. */
int64_t pm_udm_size(struct pm_udm *u, unsigned id);
bool pm_udm_read_only(struct pm_udm *u, unsigned id);
/* A deferred removal's last opener went: the device goes. */
void pm_udm_release(struct pm_udm *u, unsigned id);
/* How many devices exist. */
size_t pm_udm_count(struct pm_udm *u);

#endif

/* ---- the server and its clients ----
 * One server process (`partmap serve dm`) holds every userspace device: it shows each as a file
 * PM_UDM_MOUNT/<id> of its FUSE mount (fsname PM_UDM_FSNAME) that a loop device holds, and answers
 * DM ioctls on a socket. It starts with the first DEV_CREATE and exits when its last device is
 * removed. */
#define PM_UDM_DIR "/run/partmap/dm"
#define PM_UDM_SOCKET PM_UDM_DIR "/control"
#define PM_UDM_MOUNT PM_UDM_DIR "/fs"
#define PM_UDM_LOCK PM_UDM_DIR "/lock"
#define PM_UDM_FSNAME "partmap-dm"
#define PM_UDM_LOOP_TAG "partmap-dm"
#define PM_UDM_MAGIC 0x704d646dU  /* "pMdm" */
#define PM_UDM_REQ_MAX (64u << 20) /* the largest ioctl buffer carried */

struct pm_udm_req {
	uint32_t magic;
	uint32_t cmd;             /* the ioctl's number (_IOC_NR) */
	uint32_t size;            /* bytes of the struct dm_ioctl buffer that follow */
};

struct pm_udm_rep {
	int32_t err;              /* 0 or -errno */
	uint32_t size;            /* bytes of the buffer that follow */
	uint32_t err_len;         /* bytes of the refusal's words after it */
};

struct pm_dm;
/* Use the userspace device mapper for dm, in place of the kernel's. Its ioctls go to the server,
 * started as `EXE serve dm` by the first DEV_CREATE; while none runs, the others are answered as a
 * device mapper without devices would answer them. A server found dead (killed) is cleaned up
 * first: the loop devices on its files detached, the /dev/mapper nodes of those removed, its mount
 * detached. */
int pm_dm_open_user(struct pm_dm *dm, const char *exe);
/* All of len bytes sent (wr) or received on a socket: 0, -ECONNRESET when the other side closed it,
 * -errno. */
int pm_udm_sock_io(int fd, void *buf, size_t len, bool wr);
/* What the userspace device mapper left behind by a dead server: cleaned as above. 0, or -errno. */
int pm_udm_cleanup_dead(void);
