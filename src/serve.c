/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "serve.h"
#include "mountinfo.h"
#include "util.h"
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void pm_serve_dir(dev_t dev, ino_t ino, char *buf, size_t len)
{
	snprintf(buf, len, "%s/image-%u:%u-%llu", PM_SERVE_ROOT, major(dev), minor(dev), (unsigned long long)ino);
}

void pm_serve_disk(const char *dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/disk", dir);
}

struct mount_q {
	const char *dir;
	dev_t dev;
	bool snapshot;
};

static int is_ours_on(const struct pm_mount *m, void *arg)
{
	struct mount_q *q = arg;

	if (strcmp(m->target, q->dir) || strcmp(m->fstype, "fuse.partmap") ||
	    strncmp(m->source, PM_SERVE_FSNAME_PREFIX, strlen(PM_SERVE_FSNAME_PREFIX)))
		return 0;
	q->dev = m->dev;
	q->snapshot = !strncmp(m->source, PM_SERVE_SNAPSHOT_PREFIX, strlen(PM_SERVE_SNAPSHOT_PREFIX));
	return 1;
}

/* Is a FUSE file system of partmap's mounted on dir? Its device number in *dev when it is (dev may be
 * NULL); *snapshot: is it a --snapshot server's (may be NULL). */
static bool mounted_on_ex(const char *dir, dev_t *dev, bool *snapshot)
{
	struct mount_q q = { .dir = dir };

	if (pm_mountinfo_each(is_ours_on, &q) != 1)
		return false;
	if (dev)
		*dev = q.dev;
	if (snapshot)
		*snapshot = q.snapshot;
	return true;
}

static bool mounted_on(const char *dir, dev_t *dev)
{
	return mounted_on_ex(dir, dev, NULL);
}

bool pm_serve_is_snapshot(const char *dir)
{
	bool snap = false;

	return mounted_on_ex(dir, NULL, &snap) && snap;
}

int pm_serve_mount_dev(const char *dir, dev_t *dev)
{
	return mounted_on(dir, dev) ? 0 : -ENOENT;
}

enum pm_serve_state pm_serve_state(const char *dir)
{
	char disk[PM_SERVE_PATH_MAX];

	if (!mounted_on(dir, NULL))
		return PM_SERVE_NONE;
	pm_serve_disk(dir, disk, sizeof(disk));
	/* a server killed leaves its mount: "Transport endpoint is not connected". An open asks the
	 * server (a stat may be answered from the kernel's attribute cache). */
	int fd = open(disk, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOTCONN || errno == ECONNABORTED ? PM_SERVE_DEAD : PM_SERVE_RUNNING;
	close(fd);
	return PM_SERVE_RUNNING;
}

int pm_serve_start(const char *exe, const char *image, const char *dir, const char *format, bool read_only,
		   bool snapshot)
{
	char *argv[8];
	int n = 0, st;
	pid_t pid;

	if (mkdir(PM_SERVE_ROOT, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	argv[n++] = (char *)"partmap";
	argv[n++] = (char *)"fuse";
	if (read_only)
		argv[n++] = (char *)"-r";
	else if (snapshot)
		argv[n++] = (char *)"--snapshot";
	if (format) {
		argv[n++] = (char *)"--format";
		argv[n++] = (char *)format;
	}
	argv[n++] = (char *)image;
	argv[n++] = (char *)dir;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execv(exe, argv);
		_exit(127);
	}
	/* it exits once mounted (its daemon goes on); bounded, so that a stuck mount cannot hang us */
	for (unsigned waited = 0;; waited += PM_SERVE_POLL_MS) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (waited >= PM_SERVE_WAIT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			umount2(dir, MNT_DETACH);
			rmdir(dir);
			return -ETIMEDOUT;
		}
		pm_sleep_ms(PM_SERVE_POLL_MS);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		rmdir(dir);
		return WIFEXITED(st) && WEXITSTATUS(st) == PM_EXIT_LOCKED ? -EBUSY : -EIO;
	}
	return 0;
}

int pm_serve_stop(const char *dir)
{
	if (mounted_on(dir, NULL) && umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		return -errno;
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

bool pm_dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return any;
}

bool pm_have_command(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path)
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	for (const char *p = path; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (e ? 1 : 0);
	}
	return false;
}
