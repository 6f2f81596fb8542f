/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The userspace device mapper's client side: DM ioctls carried to the server over its socket, the
 * server started when a device is first created, and what a dead server left behind cleaned up. */
#include "udm.h"
#include "../dm.h"
#include "../loop.h"
#include "../mountinfo.h"
#include "../util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 10000

struct client {
	char exe[4096];
};

int pm_udm_sock_io(int fd, void *buf, size_t len, bool wr)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = wr ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_server(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	pm_strlcpy(sa.sun_path, PM_UDM_SOCKET, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

struct udm_mount {
	bool found;
	dev_t dev;
};

/* A mount at PM_UDM_MOUNT, or on a folder above it: the last one in the table (the latest) is the
 * one the path leads to. A copy of another namespace's server mount (this namespace was made from
 * that one with unshare -m), hidden under a tmpfs mounted on /run/partmap since, is not ours: its
 * loop devices are that server's. */
static int on_udm_mount(const struct pm_mount *m, void *arg)
{
	struct udm_mount *q = arg;
	size_t n = strlen(m->target);

	if (!strcmp(m->target, PM_UDM_MOUNT)) {
		q->found = true;
		q->dev = m->dev;
	} else if (!strncmp(m->target, PM_UDM_MOUNT, n) && (PM_UDM_MOUNT[n] == '/' || !strcmp(m->target, "/"))) {
		q->found = false;
	}
	return 0;
}

/* Is a partmap-dm FUSE mount in place at PM_UDM_MOUNT in this mount namespace (the mount the path
 * leads to)? Its device number in *dev (dev may be NULL). */
static bool mounted(dev_t *dev)
{
	struct udm_mount q = { 0 };

	if (pm_mountinfo_each(on_udm_mount, &q) < 0 || !q.found)
		return false;
	if (dev)
		*dev = q.dev;
	return true;
}

struct dead_loops {
	dev_t fs;                /* the dead server's mount: loop devices on its files are its */
	dev_t dev[1024];
	int index[1024];
	size_t n;
};

/* A loop device of the dead server: its file is on that server's mount. Matched by the mount's
 * device number, not by path: every mount namespace has its own server with the same paths, and
 * another namespace's live devices are not ours to detach. A file on a dead server's mount cannot
 * be asked for its number: such a loop device (ours, or as dead in another namespace) goes by path. */
static int note_loop(const struct pm_loop_info *li, void *arg)
{
	struct dead_loops *d = arg;

	size_t l = strlen(PM_UDM_MOUNT);
	/* a file the kernel cannot stat any more (a dead server's: the status ioctl fails, sysfs gives
	 * the path only) goes by its path; a live server's by its mount's number. A file whose status
	 * does not answer (hung) is a live but stopped server's, another namespace's: left alone. */
	bool dead = !li->backing_known && !li->hung && !strncmp(li->backing, PM_UDM_MOUNT, l) && li->backing[l] == '/';
	if ((dead || (li->backing_known && li->backing_dev == d->fs)) && d->n < 1024) {
		d->dev[d->n] = li->dev;
		d->index[d->n++] = li->index;
	}
	return 0;
}

int pm_udm_cleanup_dead(void)
{
	struct dead_loops d = { .n = 0 };
	bool have_mount = mounted(&d.fs);
	int r = have_mount ? pm_loop_each_info(note_loop, &d, 0) : 0;

	if (r < 0)
		return r;
	/* the /dev/mapper nodes that name those devices */
	DIR *dir = opendir("/dev/mapper");
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir))) {
			struct stat st;
			if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISBLK(st.st_mode))
				continue;
			for (size_t i = 0; i < d.n; i++)
				if (st.st_rdev == d.dev[i])
					unlinkat(dirfd(dir), de->d_name, 0);
		}
		closedir(dir);
	}
	for (size_t i = 0; i < d.n; i++) {
		pm_loop_set_ro(d.index[i], false);
		pm_loop_detach(d.index[i], false);
	}
	if (have_mount)
		umount2(PM_UDM_MOUNT, MNT_DETACH);
	unlink(PM_UDM_SOCKET);
	return 0;
}

/* Start the server and wait until it answers. Under the start lock. */
static int start_server(const struct client *c)
{
	pid_t pid;
	int st;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execl(c->exe, "partmap", "serve", "dm", (char *)NULL);
		_exit(127);
	}
	/* the server's first process exits once the socket and the mount are in place */
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
		int fd = connect_server();
		if (fd >= 0)
			return fd;
		pm_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* A connection to a running server; with start, one is started when none runs. -ENOENT: none runs
 * (and start was not asked). */
static int get_server(const struct client *c, bool start)
{
	int fd = connect_server(), lock, r;

	if (fd >= 0)
		return fd;
	if (mkdir("/run/partmap", 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(PM_UDM_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	lock = open(PM_UDM_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return -errno;
	if (flock(lock, LOCK_EX) < 0) {
		r = -errno;
		close(lock);
		return r;
	}
	fd = connect_server();
	if (fd < 0) {
		/* none answers: what a dead one left goes first */
		if (mounted(NULL) || access(PM_UDM_SOCKET, F_OK) == 0)
			pm_udm_cleanup_dead();
		fd = start ? start_server(c) : -ENOENT;
	}
	close(lock);
	return fd;
}

/* one request and its answer; -ECONNRESET when the server went away without answering */
static int exchange(int fd, unsigned nr, struct dm_ioctl *io, char *err, size_t err_len, int *result)
{
	struct pm_udm_req rq = { .magic = PM_UDM_MAGIC, .cmd = nr, .size = io->data_size };
	struct pm_udm_rep rp;
	int r;

	if ((r = pm_udm_sock_io(fd, &rq, sizeof(rq), true)) < 0 || (r = pm_udm_sock_io(fd, io, io->data_size, true)) < 0)
		return r;
	if ((r = pm_udm_sock_io(fd, &rp, sizeof(rp), false)) < 0)
		return r;
	if (rp.size != io->data_size || rp.err_len > 4096)
		return -EPROTO;
	if ((r = pm_udm_sock_io(fd, io, rp.size, false)) < 0)
		return r;
	char text[4097];
	if ((r = pm_udm_sock_io(fd, text, rp.err_len, false)) < 0)
		return r;
	text[rp.err_len] = 0;
	pm_strlcpy(err, text, err_len);
	*result = rp.err;
	return 0;
}

/* no server: answered as a device mapper without devices (a transient engine, nothing kept) */
static int local_answer(unsigned nr, struct dm_ioctl *io, char *err, size_t err_len)
{
	struct pm_udm_hooks h = { 0 };
	struct pm_udm *u;
	int r = pm_udm_new(&u, &h);

	if (r < 0)
		return r;
	r = pm_udm_ioctl(u, nr, io, err, err_len);
	pm_udm_free(u);
	return r;
}

static int user_ioctl(struct pm_dm *dm, unsigned long cmd, void *arg)
{
	struct client *c = dm->ioctl_arg;
	struct dm_ioctl *io = arg;
	unsigned nr = _IOC_NR(cmd);
	int result = 0, r = 0;

	dm->err[0] = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (dm->fd < 0) {
			int fd = get_server(c, nr == DM_DEV_CREATE_CMD);
			if (fd == -ENOENT) {
				r = local_answer(nr, io, dm->err, sizeof(dm->err));
				break;
			}
			if (fd < 0) {
				r = fd;
				break;
			}
			dm->fd = fd;
		}
		r = exchange(dm->fd, nr, io, dm->err, sizeof(dm->err), &result);
		if (r == -ECONNRESET || r == -EPIPE) {
			/* the server exited (its last device went) before answering: once more */
			close(dm->fd);
			dm->fd = -1;
			continue;
		}
		if (r == 0)
			r = result;
		break;
	}
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

static void client_free(struct pm_dm *dm)
{
	free(dm->ioctl_arg);
	dm->ioctl_arg = NULL;
}

int pm_dm_open_user(struct pm_dm *dm, const char *exe)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	memset(dm, 0, sizeof(*dm));
	pm_strlcpy(c->exe, exe, sizeof(c->exe));
	dm->fd = -1;
	dm->ioctl_fn = user_ioctl;
	dm->ioctl_arg = c;
	dm->ioctl_free = client_free;
	dm->userspace = true;
	dm->version[0] = DM_VERSION_MAJOR;
	dm->version[1] = PM_UDM_VERSION_MINOR;
	dm->udev = false;
	dm->udev_wait_ms = 0;
	/* a server already running answers; one found dead is cleaned up now */
	int fd = connect_server();
	if (fd >= 0)
		dm->fd = fd;
	else if (mounted(NULL) || access(PM_UDM_SOCKET, F_OK) == 0) {
		fd = get_server(c, false);
		if (fd >= 0)
			dm->fd = fd;
	}
	return 0;
}
