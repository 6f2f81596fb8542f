/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The threads that answer a FUSE session's requests (see fpool.h), on libfuse3's low-level session
 * calls: libfuse reads and answers the requests, this file decides how many threads do. */
#define FUSE_USE_VERSION 312
#include "fpool.h"
#include "../par.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* A request that a thread asleep in read() of /dev/fuse takes costs a wake-up and a context switch,
 * which on a small or virtual machine cost more than the request itself: with libfuse's loop (16
 * threads waiting), 4 KiB random reads through the userspace DM ran at 55-68K IOPS here; with one
 * thread, which finds the next request already queued when it comes back, at 70-86K. So few threads
 * read: one per two processors it may run on (pm_cpus; at least one), and a thread done with a
 * request parks when enough read already. More are woken (or started) when requests wait in
 * /dev/fuse and no thread reads it, and either
 * - a thread is blocked: on a disk, a lock, or a request that a suspended device holds. A thread
 *   counts as blocked when it answers the same request as at the last look, or spent less than half
 *   of the time since running or runnable (its schedstat). This also keeps the server's own requests
 *   answered: removing a file, it stats its mount, and that request must not wait behind a thread
 *   that waits for the removal; or
 * - processors idle: over POOL_CPU_TICKS looks, requests waited at most looks and POOL_CPU_IDLE per
 *   cent of all processors' time was idle (/proc/stat): one thread more, up to POOL_EXTRA_MAX; one
 *   less when they did not. A cold read from a disk keeps the thread busy on its processor
 *   (allocating and filling pages) more than it blocks; one thread alone read a cold file at 12-14K
 *   IOPS where 16 read it at 19-23K.
 * And a thread that takes a large request (POOL_LARGE bytes or more came: a write's data) wakes (or
 * starts) another at once when none reads: the request's copies (out of /dev/fuse, into the file
 * underneath) take longer than a wake-up, and the next request can come out of /dev/fuse meanwhile,
 * on another processor (none when the server may run on one only: not done then).
 * The monitor (the thread that called pm_fpool_run) looks every POOL_TICK_US while requests are
 * answered, every POOL_IDLE_US when none came for POOL_IDLE_TICKS looks. POOL_PARKED threads stay
 * parked; others end. */
#define POOL_TICK_US 2000
#define POOL_IDLE_TICKS 50
#define POOL_IDLE_US 100000
#define POOL_READERS_MAX 4      /* threads in read() of /dev/fuse at most (others park) */
#define POOL_PARKED 8           /* parked threads kept; others end */
#define POOL_CPU_TICKS 10
#define POOL_CPU_IDLE 25
#define POOL_EXTRA_MAX 16
#define POOL_LARGE (128 * 1024) /* bytes received that make a request large (fpool.c's rules) */

/* Request buffers in transparent huge pages. The kernel copies a write's data out of /dev/fuse a page
 * at a time, pinning each page of the buffer it copies into, and the server copies it on into the
 * file's pages; with the buffer in one 2 MiB page both cost less than in 4 KiB pages: sequential
 * 1 MiB writes through served linear ran at a median 2600 MB/s where they ran at 2300 (16 pairs, the
 * two binaries taking turns; the new one faster in 14). A huge page is resident whole once touched,
 * so there are few, and only where the caller asks (the userspace DM's server; the image server
 * keeps its few MiB): one per processor the server may run on, at most POOL_HUGE_MAX, lent to a
 * thread from its read() of /dev/fuse to the end of its request; a thread that finds none uses its
 * own buffer, as libfuse allocates it. libfuse reads into a buffer given to it at most its own size
 * for one (se->bufsize: 256 pages and a 4 KiB header up to libfuse 3.16, and it has no call that
 * tells): used only where that fits (POOL_HUGE), and the front end keeps requests to 1 MiB of data
 * (max_write). A page the process cannot touch follows each buffer, so a larger read() would fail
 * (EFAULT) rather than write past it. */
#define POOL_HUGE (2u << 20)
#define POOL_HUGE_MAX 4

enum wstate { W_RECEIVING, W_BUSY, W_PARKED, W_DONE };

struct worker {
	struct pool *p;
	pthread_t t;
	enum wstate state;
	uint64_t seq, last_seq;   /* requests taken; the count at the monitor's last look */
	uint64_t last_sched;      /* ns running or runnable at the last look */
	int statfd;               /* its /proc/thread-self/schedstat, or -1 */
	int look_fd;              /* the monitor's: statfd when the look began, -1 if parked or ended */
	uint64_t look_sched;      /* the monitor's: ns running or runnable at this look (read_sched) */
	struct fuse_buf buf;
	void *own;                /* its own request buffer (libfuse's malloc), or NULL */
	void *huge;               /* a huge-page buffer lent to it, or NULL */
	struct worker *next;
};

struct pool {
	struct fuse_session *se;
	pthread_mutex_t m;
	pthread_cond_t park, tick;
	unsigned base, max;       /* threads reading /dev/fuse at once when none blocks; threads at most */
	unsigned want;            /* threads not parked wanted: base, one for each blocked, and extra */
	unsigned extra;           /* more while processors idle with requests waiting */
	bool overlap;             /* large requests wake another thread: more than one processor */
	unsigned nthreads, nparked, nreceiving;
	uint64_t taken;           /* requests taken, all threads */
	bool exiting;
	int error;
	struct worker *w;
	void *huge[POOL_HUGE_MAX]; /* huge-page buffers not lent */
	unsigned nhuge, nhuge_made, nhuge_max;
};

/* a POOL_HUGE buffer aligned to POOL_HUGE, in a huge page where the kernel has them, with a page
 * nothing can touch after it; NULL when there is no memory for it */
static void *huge_new(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = 2 * (size_t)POOL_HUGE + pg;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;
	size_t head, tail;

	if (m == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)m + POOL_HUGE - 1) & ~((uintptr_t)POOL_HUGE - 1));
	head = (size_t)(a - m);
	tail = len - head - POOL_HUGE - pg;
	if (head)
		munmap(m, head);
	if (tail)
		munmap(a + POOL_HUGE + pg, tail);
	if (mprotect(a + POOL_HUGE, pg, PROT_NONE) < 0) {
		munmap(a, POOL_HUGE + pg);
		return NULL;
	}
	(void)madvise(a, POOL_HUGE, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
	return a;
}

static void huge_free(void *a)
{
	munmap(a, POOL_HUGE + (size_t)sysconf(_SC_PAGESIZE));
}

/* may libfuse read requests into a POOL_HUGE buffer? Up to 3.16 it reads 256 pages and a 4 KiB header
 * at most (se->bufsize); later versions size that by a sysctl. */
static bool huge_fits(void)
{
	long pg = sysconf(_SC_PAGESIZE);

	return fuse_version() <= 316 && pg > 0 && 256 * (size_t)pg + 4096 <= POOL_HUGE;
}

/* under p->m: a huge-page buffer for w's next request where one is free (made when fewer than allowed
 * are; none made again once one could not be), else its own. w holds none here: every request's end
 * gives it back (buf_give). */
static void buf_take(struct pool *p, struct worker *w)
{
	if (!p->nhuge && p->nhuge_made < p->nhuge_max) {
		if ((p->huge[0] = huge_new()) != NULL) {
			p->nhuge = 1;
			p->nhuge_made++;
		} else {
			p->nhuge_max = p->nhuge_made;
		}
	}
	w->huge = p->nhuge ? p->huge[--p->nhuge] : NULL;
	w->buf.mem = w->huge ? w->huge : w->own;
}

/* under p->m: w's request is answered; a lent buffer goes back */
static void buf_give(struct pool *p, struct worker *w)
{
	if (w->huge) {
		p->huge[p->nhuge++] = w->huge;
		w->huge = NULL;
	}
	w->buf.mem = w->own;
}

static uint64_t sched_ns(int fd)
{
	char b[96];
	unsigned long long run = 0, wait = 0;
	ssize_t n;

	if (fd < 0 || (n = pread(fd, b, sizeof(b) - 1, 0)) <= 0)
		return 0;
	b[n] = 0;
	if (sscanf(b, "%llu %llu", &run, &wait) != 2)
		return 0;
	return run + wait;
}

static void grow(struct pool *p);

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;
	int r, old, fd;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	pthread_mutex_lock(&p->m);
	w->statfd = fd; /* the monitor takes it under p->m (read_sched) */
	for (;;) {
		/* enough threads read /dev/fuse already: this one parks (or ends) */
		while (!p->exiting && p->nreceiving >= p->base &&
		       (p->nthreads - p->nparked > p->want || p->nreceiving >= POOL_READERS_MAX)) {
			if (p->nparked >= POOL_PARKED)
				goto done;
			w->state = W_PARKED;
			p->nparked++;
			pthread_cond_wait(&p->park, &p->m);
			p->nparked--;
		}
		if (p->exiting || fuse_session_exited(p->se))
			break;
		w->state = W_RECEIVING;
		p->nreceiving++;
		buf_take(p, w);
		pthread_mutex_unlock(&p->m);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
		r = fuse_session_receive_buf(p->se, &w->buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
		pthread_mutex_lock(&p->m);
		p->nreceiving--;
		if (!w->huge && w->buf.mem)
			w->own = w->buf.mem; /* libfuse allocated it at the first request */
		if (r == -EINTR || r == -EAGAIN) {
			buf_give(p, w);
			continue;
		}
		if (r <= 0) {
			buf_give(p, w);
			if (r < 0) {
				fuse_session_exit(p->se);
				p->error = r;
			}
			break;
		}
		w->state = W_BUSY;
		w->seq++;
		p->taken++;
		/* a large request (a write's data) keeps this thread longer than a wake-up costs: another
		 * reads the next request meanwhile */
		if ((size_t)r >= POOL_LARGE && p->overlap && !p->nreceiving)
			grow(p);
		pthread_mutex_unlock(&p->m);
		fuse_session_process_buf(p->se, &w->buf);
		pthread_mutex_lock(&p->m);
		buf_give(p, w);
	}
	/* the session ended: the others too */
	p->exiting = true;
	pthread_cond_broadcast(&p->park);
done:
	w->state = W_DONE;
	p->nthreads--;
	pthread_cond_signal(&p->tick);
	pthread_mutex_unlock(&p->m);
	return NULL;
}

/* one more thread (a parked one woken, or a new one); under p->m */
static void grow(struct pool *p)
{
	struct worker *w;

	if (p->nparked) {
		pthread_cond_signal(&p->park);
		return;
	}
	if (p->nthreads >= p->max || !(w = calloc(1, sizeof(*w))))
		return;
	w->p = p;
	w->statfd = w->look_fd = -1;
	w->state = W_RECEIVING; /* until it runs: not blocked */
	if (pthread_create(&w->t, NULL, worker_main, w)) {
		free(w);
		return;
	}
	p->nthreads++;
	w->next = p->w;
	p->w = w;
}

/* join the threads that ended (all: every thread, once they end); under p->m */
static void reap(struct pool *p, bool all)
{
	for (struct worker **pw = &p->w; *pw;) {
		struct worker *w = *pw;
		if (!all && w->state != W_DONE) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		pthread_mutex_unlock(&p->m);
		pthread_join(w->t, NULL);
		pthread_mutex_lock(&p->m);
		if (w->statfd >= 0)
			close(w->statfd);
		void *got = w->buf.mem;
		if (w->huge)
			buf_give(p, w); /* cancelled in read() */
		else if (got && got != w->own)
			free(got); /* libfuse's, allocated in a read() that was cancelled */
		free(w->own);
		free(w);
	}
}

/* Under p->m, which is let go meanwhile (workers take it twice a request): each thread's schedstat
 * into look_sched, 0 for one parked or ended when the look began. Only the monitor unlinks and frees
 * workers (reap); others only add them at the list's head, so the list from the head taken here
 * stays as it is while p->m is let go, and a worker added meanwhile has look_sched 0. */
static void read_sched(struct pool *p)
{
	struct worker *head = p->w;

	for (struct worker *w = head; w; w = w->next)
		w->look_fd = w->state == W_PARKED || w->state == W_DONE ? -1 : w->statfd;
	pthread_mutex_unlock(&p->m);
	for (struct worker *w = head; w; w = w->next)
		w->look_sched = sched_ns(w->look_fd);
	pthread_mutex_lock(&p->m);
}

/* under p->m: the threads that seem blocked since the last look (and this look's counts taken) */
static unsigned count_blocked(struct pool *p)
{
	unsigned n = 0;

	read_sched(p);
	for (struct worker *w = p->w; w; w = w->next) {
		uint64_t ns = w->look_sched;
		if (w->state == W_BUSY &&
		    (w->seq == w->last_seq ||
		     (ns && w->last_sched && ns - w->last_sched < POOL_TICK_US * 1000ull / 2)))
			n++; /* the same request all along, or mostly off the processor */
		w->last_seq = w->seq;
		w->last_sched = ns;
	}
	return n;
}

/* the share (0-100) of all processors' time spent idle since the last call; -1 when unknown */
static int idle_share(int fd, unsigned long long *last_idle, unsigned long long *last_total)
{
	char b[256];
	unsigned long long v[8] = { 0 }, idle, total = 0;
	ssize_t n;
	int r = -1;

	if (fd < 0 || (n = pread(fd, b, sizeof(b) - 1, 0)) <= 0)
		return -1;
	b[n] = 0;
	if (sscanf(b, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &v[6], &v[7]) != 8)
		return -1;
	for (int i = 0; i < 8; i++)
		total += v[i];
	idle = v[3] + v[4];
	/* iowait may go backwards (the kernel's documentation of /proc/stat): none idle then */
	if (*last_total && total > *last_total)
		r = idle <= *last_idle ? 0 : (int)(100 * (idle - *last_idle) / (total - *last_total));
	if (r > 100)
		r = 100;
	*last_idle = idle;
	*last_total = total;
	return r;
}

static bool waiting_requests(struct pool *p)
{
	struct pollfd pfd = { .fd = fuse_session_fd(p->se), .events = POLLIN };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

static void wait_us(struct pool *p, unsigned us)
{
	struct timespec ts;

	pm_monotonic_after(&ts, us);
	pthread_cond_timedwait(&p->tick, &p->m, &ts);
}

int pm_fpool_run(struct fuse_session *se, unsigned max_threads, bool signals, bool huge)
{
	struct pool p = { .se = se };
	pthread_condattr_t ca;
	uint64_t last_taken = 0;
	unsigned idle = 0, looks = 0, waited = 0;
	unsigned long long cpu_idle = 0, cpu_total = 0;
	_cleanup_close_ int statfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	unsigned cpus = pm_cpus();
	int r;

	p.want = p.base = cpus >= 4 ? cpus / 2 : 1;
	p.overlap = cpus > 1;
	p.nhuge_max = huge && huge_fits() ? (cpus < POOL_HUGE_MAX ? cpus : POOL_HUGE_MAX) : 0;
	p.max = max_threads ? max_threads : 1;
	if (p.base > p.max)
		p.base = p.max;
	pthread_mutex_init(&p.m, NULL);
	pthread_cond_init(&p.park, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p.tick, &ca);
	pthread_condattr_destroy(&ca);
	if (signals && fuse_set_signal_handlers(p.se) < 0) {
		r = -EIO;
		goto out;
	}
	pthread_mutex_lock(&p.m);
	for (unsigned i = 0; i < p.base; i++)
		grow(&p);
	for (;;) {
		wait_us(&p, idle >= POOL_IDLE_TICKS ? POOL_IDLE_US : POOL_TICK_US);
		reap(&p, false);
		if (p.exiting || fuse_session_exited(p.se))
			break;
		if (p.taken == last_taken && !p.nthreads) {
			p.error = -EIO; /* no thread could be started */
			break;
		}
		/* nothing taken and nothing being answered (a held request is) */
		idle = p.taken == last_taken && p.nthreads == p.nparked + p.nreceiving ? idle + 1 : 0;
		last_taken = p.taken;
		unsigned blocked = idle ? 0 : count_blocked(&p);
		bool starved = !idle && !p.nreceiving && waiting_requests(&p);
		/* every POOL_CPU_TICKS: one thread more while processors idle and requests wait at most
		 * looks, one less while they do not */
		waited += starved;
		if (++looks >= POOL_CPU_TICKS) {
			int share = idle_share(statfd, &cpu_idle, &cpu_total);
			if (share >= POOL_CPU_IDLE && waited > looks / 2 && p.extra < POOL_EXTRA_MAX)
				p.extra++;
			else if ((share >= 0 && share < POOL_CPU_IDLE / 2) || waited <= looks / 2)
				p.extra = p.extra ? p.extra - 1 : 0;
			looks = waited = 0;
		}
		if (idle)
			p.extra = 0;
		p.want = p.base + blocked + p.extra;
		if (starved && (blocked || p.nthreads - p.nparked < p.want))
			grow(&p);
	}
	/* the session ended: threads reading /dev/fuse are cancelled there (libfuse's loop does the
	 * same); those answering a request end after it */
	p.exiting = true;
	pthread_cond_broadcast(&p.park);
	for (struct worker *w = p.w; w; w = w->next)
		if (w->state == W_RECEIVING)
			pthread_cancel(w->t);
	reap(&p, true);
	pthread_mutex_unlock(&p.m);
	r = p.error;
	if (signals)
		fuse_remove_signal_handlers(p.se);
out:
	while (p.nhuge)
		huge_free(p.huge[--p.nhuge]);
	pthread_cond_destroy(&p.tick);
	pthread_cond_destroy(&p.park);
	pthread_mutex_destroy(&p.m);
	return r < 0 ? -EIO : 0;
}
