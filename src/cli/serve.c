/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The serve applet: `partmap serve dm`, the userspace device mapper's server (src/vdev/udm.h). Run
 * by partmap dmsetup when a device is first created where the kernel has no device mapper: it mounts
 * its FUSE front end on PM_UDM_MOUNT, listens on PM_UDM_SOCKET, detaches (its first process exits
 * when both are in place), and then answers DM ioctls on the socket and I/O on the files, each device
 * a file that a loop device holds. It exits when its last device is removed (or when none was made
 * within a few seconds of its start). Logs go to syslog (the kernel log when no syslog listens). */
#include "applets.h"
#include "common.h"
#include "../vdev/udm.h"
#include "../vdev/front.h"
#include "../loop.h"
#include "../mountinfo.h"
#include "../node.h"
#include "../util.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
#include <syslog.h>
#include <unistd.h>

#define IDLE_EXIT_MS 5000 /* no device and no client this long: exit */
#define DM_READ_AHEAD_SECTORS 256 /* a new DM device's read-ahead */

struct server;

struct devfile {
	struct pm_vdev v;
	struct server *s;         /* whose engine serves it */
	unsigned id;
	int loop;                 /* its loop device's index */
};

struct server {
	struct pm_udm *u;
	struct pm_front *front;
	int listen_fd;
	pthread_mutex_t lock;     /* the fields below */
	struct devfile **files;
	size_t nfiles, cap;
	unsigned conns;
	bool exiting;
};

static struct devfile *file_of(struct server *s, unsigned id)
{
	for (size_t i = 0; i < s->nfiles; i++)
		if (s->files[i]->id == id)
			return s->files[i];
	return NULL;
}

/* ---- a device's file: I/O goes to the engine ---- */

static struct pm_udm *engine_of(struct pm_vdev *v);

static int df_read(struct pm_vdev *v, uint64_t off, void *buf, size_t len)
{
	return pm_udm_read(engine_of(v), ((struct devfile *)v->priv)->id, off, buf, len);
}

static int df_write(struct pm_vdev *v, uint64_t off, const void *buf, size_t len)
{
	return pm_udm_write(engine_of(v), ((struct devfile *)v->priv)->id, off, buf, len);
}

static int df_flush(struct pm_vdev *v)
{
	return pm_udm_flush(engine_of(v), ((struct devfile *)v->priv)->id);
}

static int df_discard(struct pm_vdev *v, uint64_t off, uint64_t len)
{
	return pm_udm_discard(engine_of(v), ((struct devfile *)v->priv)->id, off, len);
}

static const struct pm_vdev_ops df_ops = {
	.read = df_read,
	.write = df_write,
	.flush = df_flush,
	.discard = df_discard,
};

static struct pm_udm *engine_of(struct pm_vdev *v)
{
	return ((struct devfile *)v->priv)->s->u;
}

static void front_released(void *arg, const char *name)
{
	struct server *s = arg;
	unsigned long id;

	if (pm_parse_ulong(name, UINT32_MAX, &id) == 0)
		pm_udm_release(s->u, (unsigned)id);
}

/* ---- the engine's hooks ---- */

static int h_add(void *arg, unsigned id, const char *name, dev_t *dev)
{
	struct server *s = arg;
	struct devfile *df = calloc(1, sizeof(*df));
	char fname[32], path[128];
	int r;

	(void)name;
	if (!df)
		return -ENOMEM;
	df->id = id;
	df->s = s;
	df->v = (struct pm_vdev){ .ops = &df_ops, .priv = df };
	snprintf(fname, sizeof(fname), "%u", id);
	if ((r = pm_front_add(s->front, fname, &df->v)) < 0) {
		free(df);
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", PM_UDM_MOUNT, fname);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		pm_front_del(s->front, fname);
		free(df);
		return r;
	}
	/* direct I/O: a request reaches the server whole (up to FUSE's request size), where a buffered
	 * loop device would read its file a page at a time */
	struct pm_loop_cfg cfg = { .index = -1, .control_fd = -1, .tag = PM_UDM_LOOP_TAG, .direct_io = true };
	r = pm_loop_attach(fd, &cfg, dev);
	close(fd);
	if (r < 0) {
		pm_front_del(s->front, fname);
		free(df);
		return r;
	}
	df->loop = r;
	/* a new device reads ahead as a new DM device does (256 sectors), whatever a user set on the
	 * loop device before it was free */
	int lfd = pm_loop_open(df->loop, O_RDONLY);
	if (lfd >= 0) {
		ioctl(lfd, BLKRASET, (unsigned long)DM_READ_AHEAD_SECTORS);
		close(lfd);
	}
	pthread_mutex_lock(&s->lock);
	r = pm_grow(&s->files, s->nfiles + 1, &s->cap, sizeof(*s->files));
	if (r >= 0)
		s->files[s->nfiles++] = df;
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		pm_loop_set_ro(df->loop, false);
		pm_loop_detach(df->loop, false);
		pm_front_del(s->front, fname);
		free(df);
		return r;
	}
	return 0;
}

/* The read-ahead the kernel gives a device-mapper device at each table swap (disk_update_readahead):
 * twice its optimal I/O size, 128 KiB at least, in whole pages. */
static void set_read_ahead(dev_t dev, uint32_t io_opt)
{
	uint64_t pages = (uint64_t)io_opt * 2 / 4096;
	int r = pm_queue_set(dev, "read_ahead_kb", (pages > 32 ? pages : 32) * 4);

	if (r < 0)
		fprintf(stderr, "serve: %u:%u: setting read-ahead: %s\n", major(dev), minor(dev), strerror(-r));
}

static int h_update(void *arg, unsigned id, dev_t dev, uint64_t bytes, bool read_only, uint32_t io_opt)
{
	struct server *s = arg;
	struct devfile *df;
	int r;

	pthread_mutex_lock(&s->lock);
	df = file_of(s, id);
	pthread_mutex_unlock(&s->lock);
	if (!df)
		return -ENOENT;
	/* the front end reads them under running requests (the device is suspended: those wait in the
	 * engine for the new table) */
	__atomic_store_n(&df->v.size, bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&df->v.read_only, read_only, __ATOMIC_RELAXED);
	/* the loop device reads its file's new size: older kernels (6.1) take the inode's cached size
	 * without asking FUSE, so a stat (attributes are never cached here) refreshes it first */
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%u", PM_UDM_MOUNT, id);
	if (stat(path, &st) < 0)
		return -errno;
	if ((r = pm_loop_set_sizelimit(df->loop, UINT64_MAX)) < 0)
		return r;
	set_read_ahead(dev, io_opt);
	return pm_loop_set_ro(df->loop, read_only);
}

/* Does loop device index still hold device id's file? After an autoclear (a deferred or forced
 * removal) the kernel has freed it, and another process may have taken the number since: that one
 * is not ours to detach. */
static bool loop_holds(int index, unsigned id)
{
	char path[128];
	struct stat st;
	struct loop_info64 li;
	bool ours;

	snprintf(path, sizeof(path), "%s/%u", PM_UDM_MOUNT, id);
	if (stat(path, &st) < 0)
		return false;
	int fd = pm_loop_open(index, O_RDONLY);
	if (fd < 0)
		return false;
	ours = ioctl(fd, LOOP_GET_STATUS64, &li) == 0 && li.lo_inode == st.st_ino && li.lo_device == st.st_dev;
	close(fd);
	return ours;
}

static int h_remove(void *arg, unsigned id, const char *name, dev_t dev, bool deferred)
{
	struct server *s = arg;
	struct devfile *df;
	char fname[32];

	pthread_mutex_lock(&s->lock);
	df = file_of(s, id);
	pthread_mutex_unlock(&s->lock);
	if (!df)
		return 0;
	/* left writable for its next user (a read-only table set it read-only); the engine refuses
	 * writes to a read-only table's file meanwhile */
	pm_loop_set_ro(df->loop, false);
	if (deferred)
		return pm_loop_set_autoclear(df->loop); /* detached at its last close: then released */
	if (loop_holds(df->loop, id))
		pm_loop_detach(df->loop, false);
	/* its node (dmsetup removes it too; a deferred removal ends here, with no dmsetup to do it) */
	char node[PATH_MAX];
	if (pm_mapper_path(node, sizeof(node), name) == 0)
		pm_node_remove(node, dev);
	snprintf(fname, sizeof(fname), "%u", id);
	pm_front_del(s->front, fname);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nfiles; i++) {
		if (s->files[i] == df) {
			memmove(&s->files[i], &s->files[i + 1], (s->nfiles - i - 1) * sizeof(*s->files));
			s->nfiles--;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(df);
	return 0;
}

struct freeze_q {
	dev_t dev;
	bool freeze;
	int n;
};

static int freeze_one(const struct pm_mount *m, void *arg)
{
	struct freeze_q *q = arg;

	if (m->dev != q->dev)
		return 0;
	int fd = open(m->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (ioctl(fd, q->freeze ? FIFREEZE : FITHAW, 0) == 0)
		q->n++;
	else
		syslog(LOG_WARNING, "%s: %s: %s", m->target, q->freeze ? "FIFREEZE" : "FITHAW", strerror(errno));
	close(fd);
	return 0;
}

/* the kernel's lockfs: FIFREEZE/FITHAW on each filesystem mounted from the device */
static int h_freeze(void *arg, dev_t dev, bool freeze)
{
	struct freeze_q q = { .dev = dev, .freeze = freeze };

	(void)arg;
	pm_mountinfo_each(freeze_one, &q);
	return q.n > 0;
}

static int h_open_count(void *arg, dev_t dev)
{
	(void)arg;
	return pm_block_openers(dev, getpid());
}

/* The kernel's DM remaps a request in the submitter's context and completes it in a softirq, ahead of
 * every task. Here a thread of the server answers it, and its reply completes the loop device's
 * request, which wakes ksoftirqd, which preempted the thread at every reply: 3.5 context switches a
 * 4 KiB random read through a served linear device, against 2.0 through the loop device alone. At
 * the lowest real-time priority (SCHED_FIFO 1) the thread is not preempted by ksoftirqd, which then
 * completes the replies together when the thread goes back to wait: 2.0 context switches a read and
 * a quarter more reads a second. So requests of tables that remap and copy (linear, striped,
 * snapshot, mirror, ...) run so where the server may (root, CAP_SYS_NICE: else nothing changes); a
 * table with a cipher at normal priority, as dm-crypt's kcryptd workers run, so that encrypting a
 * stream of writes cannot take the processors from user tasks. SCHED_RESET_ON_FORK: no child
 * inherits it. Per thread: what was last asked (0 normal, 1 real-time, -1 nothing yet), so the
 * scheduler is asked only when a thread goes from one kind of table to the other. */
static __thread signed char thread_rt = -1;

static void h_io_class(void *arg, bool cpu_bound)
{
	struct sched_param sp = { .sched_priority = cpu_bound ? 0 : 1 };

	(void)arg;
	if (thread_rt == !cpu_bound)
		return;
	/* a failure (no privilege) is not asked again by this thread */
	thread_rt = !cpu_bound;
	sched_setscheduler(0, (cpu_bound ? SCHED_OTHER : SCHED_FIFO) | SCHED_RESET_ON_FORK, &sp);
}

/* ---- the socket ---- */

static void maybe_exit(struct server *s)
{
	bool go;

	pthread_mutex_lock(&s->lock);
	go = !s->exiting && s->conns == 0 && pm_udm_count(s->u) == 0;
	if (go)
		s->exiting = true;
	pthread_mutex_unlock(&s->lock);
	if (!go)
		return;
	/* under the start lock: a client from now on starts a new server */
	int lock = open(PM_UDM_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0)
		flock(lock, LOCK_EX);
	unlink(PM_UDM_SOCKET);
	shutdown(s->listen_fd, SHUT_RDWR);
	pm_front_stop(s->front);
	if (lock >= 0)
		close(lock);
}


struct conn {
	struct server *s;
	int fd;
};

/* Wait for a client's next request: true when one comes (or the client closed: the read says so),
 * false when the client kept the connection open and idle IDLE_EXIT_MS while the server had no
 * device. A live client that stopped between two requests (stopped, blocked elsewhere) would keep
 * an idle server for as long as it lives; dropped, it gets ECONNRESET at its next request and
 * connects again (a new server for a create, else the answer of a device mapper without devices). */
static bool request_comes(struct server *s, int fd)
{
	int idle_ms = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, 500);
		if (r != 0)
			return true; /* data, a close, or an error: the read sorts them out */
		pthread_mutex_lock(&s->lock);
		bool idle = pm_udm_count(s->u) == 0;
		pthread_mutex_unlock(&s->lock);
		idle_ms = idle ? idle_ms + 500 : 0;
		if (idle_ms >= IDLE_EXIT_MS)
			return false;
	}
}

static void *conn_thread(void *p)
{
	struct conn *c = p;
	struct server *s = c->s;

	for (;;) {
		struct pm_udm_req rq;
		struct pm_udm_rep rp = { 0 };
		char err[512];
		struct dm_ioctl *io;

		if (!request_comes(s, c->fd))
			break;
		if (pm_udm_sock_io(c->fd, &rq, sizeof(rq), false) < 0)
			break;
		if (rq.magic != PM_UDM_MAGIC || rq.size < sizeof(struct dm_ioctl) || rq.size > PM_UDM_REQ_MAX)
			break;
		if (!(io = calloc(1, rq.size)))
			break;
		if (pm_udm_sock_io(c->fd, io, rq.size, false) < 0) {
			free(io);
			break;
		}
		io->data_size = rq.size;
		rp.err = pm_udm_ioctl(s->u, rq.cmd, io, err, sizeof(err));
		if (rp.err < 0 && err[0])
			syslog(LOG_ERR, "device-mapper: %s", err);
		rp.size = rq.size;
		rp.err_len = (uint32_t)strlen(err);
		int r = pm_udm_sock_io(c->fd, &rp, sizeof(rp), true);
		if (r == 0)
			r = pm_udm_sock_io(c->fd, io, rq.size, true);
		if (r == 0)
			r = pm_udm_sock_io(c->fd, err, rp.err_len, true);
		explicit_bzero(io, rq.size); /* a table may hold a key */
		free(io);
		if (r < 0)
			break;
	}
	close(c->fd);
	pthread_mutex_lock(&s->lock);
	s->conns--;
	pthread_mutex_unlock(&s->lock);
	free(c);
	maybe_exit(s);
	return NULL;
}

static void *accept_thread(void *p)
{
	struct server *s = p;
	int idle_ms = 0;

	for (;;) {
		struct pollfd pfd = { .fd = s->listen_fd, .events = POLLIN };
		int r = poll(&pfd, 1, 500);
		if (s->exiting)
			break;
		if (r == 0) {
			/* started but never used (its client died before creating a device) */
			pthread_mutex_lock(&s->lock);
			bool idle = s->conns == 0 && pm_udm_count(s->u) == 0;
			pthread_mutex_unlock(&s->lock);
			idle_ms = idle ? idle_ms + 500 : 0;
			if (idle_ms >= IDLE_EXIT_MS) {
				maybe_exit(s);
				break;
			}
			continue;
		}
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
				continue;
			break;
		}
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t th;
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		s->conns++;
		pthread_mutex_unlock(&s->lock);
		idle_ms = 0;
		if (pthread_create(&th, NULL, conn_thread, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->lock);
			s->conns--;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		pthread_detach(th);
	}
	return NULL;
}

static int listen_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	pm_strlcpy(sa.sun_path, PM_UDM_SOCKET, sizeof(sa.sun_path));
	unlink(PM_UDM_SOCKET);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(PM_UDM_SOCKET, 0600) < 0 || listen(fd, 64) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Requests the served devices may hold at once (suspended, delayed, waiting on a mirror) without
 * holding up the others': a served loop device sends up to 128 at a time (the loop driver's queue
 * depth), so eight devices with full queues. With the kernel's 64 and libfuse's thread limit, one
 * suspended device with 64 requests queued stopped every other device of the server until resume. */
#define UDM_WAITING_MAX 1024

static int serve_dm(void)
{
	struct server s = { .listen_fd = -1 };
	struct pm_udm_hooks h = {
		.dev_add = h_add,
		.dev_update = h_update,
		.dev_remove = h_remove,
		.dev_open_count = h_open_count,
		.io_class = h_io_class,
		.dev_freeze = h_freeze,
		.arg = &s,
	};
	struct pm_front_cfg fc = {
		.fsname = PM_UDM_FSNAME,
		.direct_io = true,
		.allow_other = true,
		.aligned = true,
		.huge_buffers = true,
		.max_waiting = UDM_WAITING_MAX,
		.released = front_released,
		.arg = &s,
	};
	pthread_t th;
	int r;

	pthread_mutex_init(&s.lock, NULL);
	if ((mkdir("/run/partmap", 0755) < 0 && errno != EEXIST) || (mkdir(PM_UDM_DIR, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(PM_UDM_MOUNT, 0700) < 0 && errno != EEXIST)) {
		fprintf(stderr, "serve: %s: %s\n", PM_UDM_DIR, strerror(errno));
		return 1;
	}
	if ((r = pm_udm_new(&s.u, &h)) < 0 || (r = pm_front_new(&s.front, PM_UDM_MOUNT, &fc)) < 0) {
		fprintf(stderr, "serve: cannot mount %s: %s\n", PM_UDM_MOUNT, strerror(-r));
		pm_udm_free(s.u);
		return 1;
	}
	if ((s.listen_fd = listen_socket()) < 0) {
		fprintf(stderr, "serve: %s: %s\n", PM_UDM_SOCKET, strerror(-s.listen_fd));
		pm_front_free(s.front);
		pm_udm_free(s.u);
		return 1;
	}
	/* ready: the first process exits, the server goes on in the background */
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "serve: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		return 1;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	openlog("partmap-dm", LOG_PID | (access("/dev/log", W_OK) < 0 ? LOG_CONS : 0), LOG_DAEMON);
	if (pthread_create(&th, NULL, accept_thread, &s) != 0)
		return 1;
	r = pm_front_loop(s.front);
	s.exiting = true;
	shutdown(s.listen_fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(s.listen_fd);
	pm_front_free(s.front);
	/* devices still present (the mount went away under them): their loop devices let go */
	for (size_t i = 0; i < s.nfiles; i++) {
		pm_loop_set_ro(s.files[i]->loop, false);
		pm_loop_detach(s.files[i]->loop, false);
	}
	closelog();
	_exit(r < 0 ? 1 : 0); /* connection threads may still be winding down */
}

int serve_main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "dm")) {
		cli_malloc_for_serving();
		return serve_dm();
	}
	fprintf(stderr, "usage: partmap serve dm   (the userspace device mapper's server; partmap dmsetup starts it)\n");
	return 1;
}
