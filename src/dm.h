/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A device-mapper client over the DM ioctls of /dev/mapper/control (no libdevmapper). Library rules:
 * -errno returns, no printing, no global state. */
#ifndef PARTMAP_DM_H
#define PARTMAP_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PM_DM_NAME_LEN 128
#define PM_DM_UUID_LEN 129

struct pm_dm {
	int fd;
	uint32_t version[3];      /* the kernel's interface version */
	unsigned nioctls;         /* ioctls issued (for benchmarks) */
	bool udev;                /* a udev daemon is running: use cookies and let it make nodes */
	int udev_wait_ms;         /* how long to wait for udev before making nodes ourselves */
	bool udev_timed_out;      /* set when a wait ran out */
	bool udev_nowait;         /* leave nodes to udev without waiting for it (kpartx -n) */
	bool batching;            /* a run's one udev cookie is in use (pm_dm_batch_begin): */
	int batch_semid;          /* its semaphore */
	uint32_t batch_cookie;
	/* the DM ioctl; NULL = ioctl(2) on fd. The userspace device mapper's client (and tests' fake
	 * kernels) go here: -1 with errno set on failure, as ioctl(2). */
	int (*ioctl_fn)(struct pm_dm *dm, unsigned long cmd, void *io);
	void *ioctl_arg;          /* theirs */
	void (*ioctl_free)(struct pm_dm *dm); /* frees ioctl_arg at pm_dm_close */
	bool userspace;           /* the device mapper in userspace (src/vdev/udm.h) answers */
	char err[256];            /* its words for the last refusal of a table or a message, or "" */
};

/* A reply the kernel still flags DM_BUFFER_FULL at this size is an error (-ENOBUFS), not a truncated
 * answer returned as complete. */
#define PM_DM_REPLY_MAX (64u << 20)
/* pm_dm_remove's retries on EBUSY, PM_DM_REMOVE_RETRY_MS apart: undoing a half-made map (udev may
 * still hold it open for a moment), and dmsetup remove --retry (libdm's 25) */
#define PM_DM_REMOVE_RETRY_MS 200
#define PM_DM_REMOVE_RETRIES_UNDO 5
#define PM_DM_REMOVE_RETRIES_ASKED 25

/* A device is addressed by exactly one of these (name first, then uuid, then dev). */
struct pm_dm_ref {
	const char *name;
	const char *uuid;
	dev_t dev;
};

struct pm_dm_target {
	uint64_t start, length;
	char type[16];
	char *params;             /* owned (malloc) in results; borrowed in loads */
};

struct pm_dm_info {
	char name[PM_DM_NAME_LEN];
	char uuid[PM_DM_UUID_LEN];
	dev_t dev;
	uint32_t flags;           /* DM_*_FLAG */
	int32_t open_count;
	uint32_t event_nr;
	uint32_t target_count;
	bool suspended, read_only, live_table, inactive_table, deferred_remove;
};

struct pm_dm_name {
	char name[PM_DM_NAME_LEN];
	dev_t dev;
};

struct pm_dm_version {
	char name[64];
	uint32_t version[3];
};

/* Open /dev/mapper/control (made when missing: 10:236, or the numbers in /proc/misc) and negotiate
 * the interface version. -ENODEV when the kernel has no device mapper. */
#define PM_UDEV_TIMEOUT_DEFAULT_MS 10000
#define PM_UDEV_TIMEOUT_MAX_S 3600
/* The udev wait from PARTMAP_UDEV_TIMEOUT (whole seconds, 0 to PM_UDEV_TIMEOUT_MAX_S), or the default
 * when it is not set: 0 and *ms set, or -EINVAL for anything else. */
int pm_udev_timeout_env(int *ms);

int pm_dm_open(struct pm_dm *dm);
/* One udev cookie for many operations, as kpartx does: until pm_dm_batch_end, resume, remove and
 * rename count on it and return without waiting; pm_dm_batch_end waits (bounded by udev_wait_ms)
 * until udev has handled every uevent they caused, and sets udev_timed_out if it did not. Begin
 * returns 1 when batching, 0 when there is nothing to wait for (no udev, -n), -errno. */
int pm_dm_batch_begin(struct pm_dm *dm);
void pm_dm_batch_end(struct pm_dm *dm);
void pm_dm_close(struct pm_dm *dm);

int pm_dm_info(struct pm_dm *dm, const struct pm_dm_ref *ref, struct pm_dm_info *info);
/* DEV_CREATE; readonly applies to later loads */
int pm_dm_dev_create(struct pm_dm *dm, const char *name, const char *uuid, struct pm_dm_info *info);
/* TABLE_LOAD: targets must be contiguous from 0; secure wipes the kernel's copy (crypt keys) */
int pm_dm_load(struct pm_dm *dm, const struct pm_dm_ref *ref, const struct pm_dm_target *t, size_t n,
	       bool read_only, bool secure);
int pm_dm_clear(struct pm_dm *dm, const struct pm_dm_ref *ref);
#define PM_DM_NOFLUSH 1u
#define PM_DM_NOLOCKFS 2u
/* DEV_SUSPEND without the suspend flag: swap the inactive table in. Waits for udev (bounded). */
int pm_dm_resume(struct pm_dm *dm, const struct pm_dm_ref *ref, struct pm_dm_info *info);
/* ... with PM_DM_NOFLUSH / PM_DM_NOLOCKFS for the suspend a table swap makes first */
int pm_dm_resume_flags(struct pm_dm *dm, const struct pm_dm_ref *ref, unsigned flags, struct pm_dm_info *info);
int pm_dm_suspend(struct pm_dm *dm, const struct pm_dm_ref *ref, unsigned flags);
/* DEV_REMOVE; retries on EBUSY `retries` times 200 ms apart; deferred schedules it instead */
int pm_dm_remove(struct pm_dm *dm, const struct pm_dm_ref *ref, bool deferred, int retries);
int pm_dm_remove_all(struct pm_dm *dm);
/* DEV_RENAME to new_name, or set the uuid (DM_UUID_FLAG) when new_uuid is given */
int pm_dm_rename(struct pm_dm *dm, const struct pm_dm_ref *ref, const char *new_name, const char *new_uuid);
/* Table (status=false) or status text, of the live table or the inactive one. *out is malloc'd. */
int pm_dm_table(struct pm_dm *dm, const struct pm_dm_ref *ref, bool status, bool inactive, bool secure,
		struct pm_dm_target **out, size_t *n, struct pm_dm_info *info);
void pm_dm_targets_free(struct pm_dm_target *t, size_t n);
int pm_dm_deps(struct pm_dm *dm, const struct pm_dm_ref *ref, dev_t **out, size_t *n);
int pm_dm_list(struct pm_dm *dm, struct pm_dm_name **out, size_t *n);
int pm_dm_versions(struct pm_dm *dm, struct pm_dm_version **out, size_t *n);
/* TARGET_MSG; the reply (if any) goes to reply */
int pm_dm_message(struct pm_dm *dm, const struct pm_dm_ref *ref, uint64_t sector, const char *msg,
		  char *reply, size_t reply_len);
/* DEV_WAIT for an event after event_nr */
int pm_dm_wait(struct pm_dm *dm, const struct pm_dm_ref *ref, uint32_t event_nr, struct pm_dm_info *info);

/* Create and activate a map: create, load, resume; removed again when any step fails. */
int pm_dm_create_map(struct pm_dm *dm, const char *name, const char *uuid, const struct pm_dm_target *t,
		     size_t n, bool read_only, bool secure, struct pm_dm_info *info);

/* /dev/mapper/<name> for a map when no udev makes it (mknod; mode/uid/gid as given); stale ones fixed */
int pm_dm_make_node(const char *name, dev_t dev, mode_t mode, uid_t uid, gid_t gid);
int pm_dm_remove_node(const char *name);

/* udev cookies: release a semaphore left by a crashed run (dmsetup udevcomplete) */
int pm_dm_udev_complete(uint32_t cookie);
int pm_dm_udev_complete_all(void);
bool pm_dm_udev_running(void);

#endif
