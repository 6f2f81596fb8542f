/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Device nodes: where no udev or devtmpfs makes them (a container's /dev on tmpfs), partmap does. */
#ifndef PARTMAP_NODE_H
#define PARTMAP_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Read "major:minor" from a sysfs "dev" file (path of the file). */
int pm_sysfs_devnum(const char *path, dev_t *dev);
/* The kernel's name of block device DEV (loop0, loop0p1, sdb), the last part of the link
 * /sys/dev/block/M:m. 0, -ENODEV when there is no such device, or -errno. */
int pm_dev_kernel_name(dev_t dev, char *buf, size_t len);
/* Is /dev a devtmpfs (which makes the kernel's nodes itself)? */
bool pm_dev_is_devtmpfs(void);
/* Make sure path is a block node for dev: waits up to wait_ms for devtmpfs to make it, then makes it
 * with exactly this mode (0600 when 0; the umask does not apply) and owner (left as root when both
 * are 0); never follows a symlink to set them. A symlink to a node of dev (udev's) is kept as it is.
 * Replaces a stale node (or link) for another number. *made
 * tells whether partmap made it. 0 or -errno. */
int pm_node_ensure(const char *path, dev_t dev, mode_t mode, uid_t uid, gid_t gid, int wait_ms, bool *made);
/* Remove path if it is a block node for dev (left by us or stale). 0, or -errno. */
int pm_node_remove(const char *path, dev_t dev);

/* /dev/mapper/<name> as a symlink to target (an absolute node path); replaces an older link of ours.
 * -EEXIST when a non-link (a real DM node) has that name. */
/* "/dev/mapper/<name>" into buf, for a name pm_dm_name_valid() accepts: 0, -EINVAL, -ENAMETOOLONG */
int pm_mapper_path(char *buf, size_t len, const char *name);
int pm_mapper_link(const char *name, const char *target);
/* The target of /dev/mapper/<name> when it is a symlink; -EINVAL when it is not one. */
int pm_mapper_readlink(const char *name, char *buf, size_t len);

/* How many holders a block device has, as the kernel's open count would see them: mounts of it,
 * block devices over it (holders in sysfs; loop devices backed by it), and descriptors of every
 * process but `except`. -errno when /proc cannot be read. */
int pm_block_openers(dev_t dev, pid_t except);

#endif
