/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helper threads for parts of one request's CPU work (par.h).
 *
 * The threads start at the first run of two parts or more (a table loaded and never used, or used only
 * for small requests, costs none); if they cannot start, every run is the caller's alone.
 *
 * A run is a job on the caller's stack, put on the pool's list for as long as the run lasts. Parts are
 * claimed by an atomic counter, by the caller and by any helper that finds the job on the list. The
 * caller takes the job off the list once no part is left to claim, then waits only for the helpers
 * still inside one of its parts (users): after that no helper can reach the job. */
#include "par.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define PAR_HELPERS_MAX 64
#define PAR_STACK (1u << 20) /* a part may go through a table into another (a stripe on a served device) */

struct par_job {
	int (*fn)(void *arg, unsigned i);
	void *arg;
	unsigned n;
	unsigned next;      /* atomic: the next part to claim */
	int ret;            /* atomic: the first error */
	unsigned users;     /* helpers inside the job (under the pool's lock) */
	struct par_job *link;
};

struct pm_par {
	pthread_mutex_t lock;
	pthread_cond_t work;    /* helpers wait here for a job */
	pthread_cond_t left;    /* callers wait here for their job's helpers to leave it */
	struct par_job *jobs;
	bool stop;
	bool tried;             /* the threads' start was tried */
	unsigned helpers;
	unsigned started;
	pthread_t th[];
};

unsigned pm_cpus(void)
{
	cpu_set_t set;
	long n;

	CPU_ZERO(&set);
	n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
	return n > 1 ? (unsigned)n : 1;
}

unsigned pm_par_helpers(void)
{
	unsigned n = pm_cpus();

	return n - 1 > 7 ? 7 : n - 1;
}

static void parts(struct par_job *j)
{
	unsigned i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n) {
		int r = j->fn(j->arg, i), zero = 0;

		if (r < 0)
			__atomic_compare_exchange_n(&j->ret, &zero, r, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	}
}

/* a job with a part left to claim */
static struct par_job *open_job(struct pm_par *p)
{
	for (struct par_job *j = p->jobs; j; j = j->link)
		if (__atomic_load_n(&j->next, __ATOMIC_RELAXED) < j->n)
			return j;
	return NULL;
}

static void *helper(void *arg)
{
	struct pm_par *p = arg;
	struct par_job *j = NULL;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && !(j = open_job(p)))
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		j->users++;
		pthread_mutex_unlock(&p->lock);
		parts(j);
		pthread_mutex_lock(&p->lock);
		if (--j->users == 0)
			pthread_cond_broadcast(&p->left);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Under the lock: the helpers started, as many as could be. They do the work of the requests of the
 * thread that starts them, and take its scheduling when it runs at a real-time priority (the
 * userspace DM's server answers a remapping table's requests so, with SCHED_RESET_ON_FORK, which
 * would start them at normal priority: behind every user task, they left their parts to the caller,
 * and striped reads ran at half speed). Asked of the kernel (sched_getscheduler), not of glibc,
 * which keeps the first answer. */
static void start(struct pm_par *p)
{
	pthread_attr_t attr;
	sigset_t all, old;
	struct sched_param sp;
	int policy = sched_getscheduler(0);

	p->tried = true;
	if (pthread_attr_init(&attr))
		return;
	pthread_attr_setstacksize(&attr, PAR_STACK);
	if (policy >= 0)
		policy &= ~SCHED_RESET_ON_FORK;
	if ((policy == SCHED_FIFO || policy == SCHED_RR) && sched_getparam(0, &sp) == 0) {
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, policy);
		pthread_attr_setschedparam(&attr, &sp);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (p->started < p->helpers && !pthread_create(&p->th[p->started], &attr, helper, p))
		p->started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

int pm_par_run(struct pm_par *p, unsigned n, int (*fn)(void *arg, unsigned i), void *arg)
{
	struct par_job j = { .fn = fn, .arg = arg, .n = n };

	if (!p || !p->helpers || n < 2) {
		parts(&j);
		return j.ret;
	}
	pthread_mutex_lock(&p->lock);
	if (!p->tried)
		start(p);
	if (!p->started) {
		pthread_mutex_unlock(&p->lock);
		parts(&j);
		return j.ret;
	}
	j.link = p->jobs;
	p->jobs = &j;
	if (n - 1 >= p->started)
		pthread_cond_broadcast(&p->work);
	else
		for (unsigned i = 0; i < n - 1; i++)
			pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	parts(&j);
	pthread_mutex_lock(&p->lock);
	for (struct par_job **l = &p->jobs; *l; l = &(*l)->link) {
		if (*l == &j) {
			*l = j.link;
			break;
		}
	}
	while (j.users)
		pthread_cond_wait(&p->left, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return __atomic_load_n(&j.ret, __ATOMIC_RELAXED);
}

int pm_par_new(unsigned helpers, struct pm_par **out)
{
	struct pm_par *p;

	*out = NULL;
	if (helpers > PAR_HELPERS_MAX)
		return -EINVAL;
	if (!(p = calloc(1, sizeof(*p) + helpers * sizeof(p->th[0]))))
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->left, NULL);
	p->helpers = helpers;
	*out = p;
	return 0;
}

void pm_par_free(struct pm_par *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->left);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
