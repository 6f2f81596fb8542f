/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The mount table as the kernel shows it to this process (/proc/self/mountinfo): one walker, each
 * entry parsed and its paths unescaped. */
#ifndef PARTMAP_MOUNTINFO_H
#define PARTMAP_MOUNTINFO_H

#include <sys/types.h>

struct pm_mount {
	int id, parent;
	dev_t dev;              /* the filesystem's device number (major:minor) */
	const char *root;       /* the mounted directory inside the filesystem */
	const char *target;     /* the mount point */
	const char *fstype;     /* e.g. "ext4", "fuse.partmap" */
	const char *source;     /* e.g. "/dev/loop0", a FUSE fsname */
};

/* One line of mountinfo into m (its strings point into line, which is changed: fields cut, paths
 * unescaped). 0, or -EINVAL for a line that is not an entry. */
int pm_mountinfo_parse(char *line, struct pm_mount *m);

/* fn on each mount, in the kernel's order (later mounts later); the strings live for the call only.
 * fn returns 0 to go on, anything else stops the walk and is returned. 0 at the end, -errno when the
 * table cannot be read (an entry that does not parse is passed over). */
int pm_mountinfo_each(int (*fn)(const struct pm_mount *m, void *arg), void *arg);

#endif
