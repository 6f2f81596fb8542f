/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FUSE front end: virtual block devices shown as files of one FUSE mount, for loop devices to
 * hold. Files can come and go while it runs. Threads answer as fpool.c decides; a request is handed
 * to the file's vdev as it comes (reads, writes, fsync -> flush, fallocate(PUNCH_HOLE) -> discard).
 * Library rules: -errno returns, no printing. */
#ifndef PARTMAP_FRONT_H
#define PARTMAP_FRONT_H

#include "vdev.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pm_front;

struct pm_front_cfg {
	const char *fsname;       /* shown in mountinfo (finds the server again) */
	/* no page cache of the files (their content can change under them): attributes asked every
	 * time; else the page cache is kept across opens and attributes for an hour */
	bool direct_io;
	bool read_only;           /* mounted ro */
	bool allow_other;         /* other users than the mounting one may open the files */
	/* FALLOC_FL_ZERO_RANGE is served by the vdev's discard (its discarded ranges read as zeros);
	 * else it is refused (-EOPNOTSUPP) */
	bool discard_zeroes;
	/* SIGINT, SIGTERM, SIGHUP make pm_front_loop return (libfuse's handlers, while it runs) */
	bool signals;
	/* read replies in page-aligned buffers (vdevs that read with O_DIRECT: the userspace DM's sources) */
	bool aligned;
	/* large writes' data received in huge-page buffers, one per processor (at most 4: fpool.c), for
	 * speed at a cost of 2 MiB each; else libfuse's buffers only */
	bool huge_buffers;
	unsigned max_read;        /* the largest read request in bytes; 0: libfuse's */
	/* requests that may wait in the vdevs at once (a suspended or delaying device holds its
	 * requests): the kernel lets as many asynchronous requests through, and as many threads more
	 * than 16 may answer, started as requests wait while the others are blocked (fpool.c), so that
	 * one file's held requests do not hold up another's. At most 65535. 0: 64 requests, 16 threads */
	unsigned max_waiting;
	/* as root, the mount's read-ahead raised to this (KiB) at the first open; 0: the kernel's */
	unsigned readahead_kb;
	/* the last holder of a file closed it (a loop device detached) */
	void (*released)(void *arg, const char *name);
	/* a request failed in the vdev (op "read", "write" or "discard"; off and len in the file; err
	 * the vdev's -errno) before the request is answered with an error; NULL: nothing */
	void (*io_error)(void *arg, const char *name, const char *op, uint64_t off, uint64_t len, int err);
	void *arg;
	uid_t uid;
	gid_t gid;
};

/* Mount an empty front end on dir (which must exist and be empty). */
int pm_front_new(struct pm_front **out, const char *dir, const struct pm_front_cfg *cfg);
/* Add or remove a file; the vdev stays the caller's (remove returns once no request uses it). */
int pm_front_add(struct pm_front *f, const char *name, struct pm_vdev *v);
int pm_front_del(struct pm_front *f, const char *name);
/* Detach from the terminal (setsid, chdir /, stdio to /dev/null) unless foreground; the process that
 * called it exits once the child runs (fuse_daemonize). Between pm_front_new and pm_front_loop. */
int pm_front_daemonize(struct pm_front *f, bool foreground);
/* Answer requests on several threads until pm_front_stop() or the mount goes away. */
int pm_front_loop(struct pm_front *f);
/* Make pm_front_loop return (from another thread): the mount is detached. */
void pm_front_stop(struct pm_front *f);
/* Unmount (if still mounted) and free. */
void pm_front_free(struct pm_front *f);

#endif
