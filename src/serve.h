/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Image servers: a non-raw image is shown as one file, DIR/disk, by `partmap fuse` on a private FUSE
 * mount, so that a loop device can hold it. Everything is found again from the kernel (mountinfo,
 * loop devices' backing files): the folder is named after the image's device and inode. */
#ifndef PARTMAP_SERVE_H
#define PARTMAP_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PM_SERVE_ROOT "/run/partmap"
/* room for pm_serve_dir()'s and pm_serve_disk()'s paths (66 characters at most) */
#define PM_SERVE_PATH_MAX 96
#define PM_SERVE_FSNAME_PREFIX "partmap:"
#define PM_SERVE_SNAPSHOT_PREFIX "partmap:snapshot:" /* a --snapshot server's (it starts as the above) */
#define PM_SERVE_WAIT_MS 10000   /* the longest a server may take to mount */
#define PM_SERVE_POLL_MS 10      /* how often the mount is looked for meanwhile */

/* The folder of the server for the image (dev, ino): PM_SERVE_ROOT/image-<dev>-<ino>. */
void pm_serve_dir(dev_t dev, ino_t ino, char *buf, size_t len);
/* The file the server shows the virtual disk as: DIR/disk. */
void pm_serve_disk(const char *dir, char *buf, size_t len);

enum pm_serve_state { PM_SERVE_NONE, PM_SERVE_RUNNING, PM_SERVE_DEAD };
/* Is a partmap FUSE server mounted on dir, and does it answer? */
enum pm_serve_state pm_serve_state(const char *dir);
/* Is the server mounted on dir a --snapshot one (its fsname says so)? */
bool pm_serve_is_snapshot(const char *dir);

/* Start `EXE fuse [-r | --snapshot] [--format FMT] IMAGE DIR` (making DIR) and wait until it has
 * mounted. 0 or -errno (-ETIMEDOUT, or -EIO when it exited with a failure: it printed why). */
int pm_serve_start(const char *exe, const char *image, const char *dir, const char *format, bool read_only,
		   bool snapshot);
/* Unmount (lazily: a dead server's mount too) and remove the folder. The server exits by itself. */
int pm_serve_stop(const char *dir);

/* The device number of partmap's FUSE mount on dir (an absolute path, no links, unescaped), found
 * in /proc/self/mountinfo without touching the mount (its server may not answer yet). 0 or -ENOENT. */
int pm_serve_mount_dev(const char *dir, dev_t *dev);

/* Does dir hold anything besides . and ..? */
bool pm_dir_has_entries(const char *dir);
/* Is there an executable of this name on PATH? */
bool pm_have_command(const char *name);

#endif
