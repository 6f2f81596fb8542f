/* Unit tests of the helper threads that share one request's parts (src/par.c): every part run once,
 * the first error returned, parts really run at once, helpers that block signals, many callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "par.h"

#define PARTS_MAX 200

struct count {
	unsigned n[PARTS_MAX];
	int fail_at[3];           /* parts that return -EIO (-1: none) */
};

static int count_part(void *arg, unsigned i)
{
	struct count *c = arg;

	__atomic_add_fetch(&c->n[i], 1, __ATOMIC_RELAXED);
	for (int k = 0; k < 3; k++)
		if (c->fail_at[k] == (int)i)
			return -EIO - k;
	return 0;
}

/* every part once, for pools of 0, 1 and 3 helpers and for no pool; nothing for n = 0 */
static void test_each_part_once(void **state)
{
	unsigned helpers[] = { 0, 1, 3 }, ns[] = { 0, 1, 2, 3, 7, PARTS_MAX };

	(void)state;
	for (int h = -1; h < 3; h++) {
		struct pm_par *p = NULL;

		if (h >= 0)
			assert_int_equal(pm_par_new(helpers[h], &p), 0);
		for (int rep = 0; rep < 50; rep++) {
			for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
				struct count c = { .fail_at = { -1, -1, -1 } };

				assert_int_equal(pm_par_run(p, ns[k], count_part, &c), 0);
				for (unsigned i = 0; i < PARTS_MAX; i++)
					assert_int_equal(c.n[i], i < ns[k] ? 1 : 0);
			}
		}
		pm_par_free(p);
	}
}

/* a failing part does not stop the others; the error is one of the failing parts' */
static void test_errors(void **state)
{
	struct pm_par *p;
	struct count c = { .fail_at = { 5, 60, -1 } };
	int r;

	(void)state;
	assert_int_equal(pm_par_new(2, &p), 0);
	r = pm_par_run(p, 100, count_part, &c);
	assert_true(r == -EIO || r == -EIO - 1);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(c.n[i], 1);
	/* alone on the caller's thread: the first in order */
	memset(c.n, 0, sizeof(c.n));
	assert_int_equal(pm_par_run(NULL, 100, count_part, &c), -EIO);
	pm_par_free(p);
	assert_int_equal(pm_par_new(65, &p), -EINVAL);
	assert_null(p);
}

/* Part 0 waits (up to 3 s) for part 1 to have started, and part 1 for part 0: they can only both
 * end well when they run at the same time, on two threads. Each records whether SIGTERM was blocked
 * on its thread. */
struct meet {
	pthread_t caller;
	unsigned started;
	bool helper_blocks[2], on_helper[2];
};

static int meet_part(void *arg, unsigned i)
{
	struct meet *m = arg;
	struct timespec t0, t;
	sigset_t cur;

	sigemptyset(&cur);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	m->on_helper[i] = !pthread_equal(pthread_self(), m->caller);
	m->helper_blocks[i] = sigismember(&cur, SIGTERM) == 1;
	__atomic_add_fetch(&m->started, 1, __ATOMIC_SEQ_CST);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (__atomic_load_n(&m->started, __ATOMIC_SEQ_CST) == 2)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 2)
			return -ETIMEDOUT;
		sched_yield();
	}
}

static void test_parts_at_once(void **state)
{
	struct pm_par *p;

	(void)state;
	assert_int_equal(pm_par_new(1, &p), 0);
	for (int rep = 0; rep < 20; rep++) {
		struct meet m = { .caller = pthread_self() };

		assert_int_equal(pm_par_run(p, 2, meet_part, &m), 0);
		assert_int_equal(m.started, 2);
		/* one part on the helper, whose mask blocks SIGTERM (the caller's does not) */
		assert_true(m.on_helper[0] != m.on_helper[1]);
		assert_true(m.on_helper[0] ? m.helper_blocks[0] : m.helper_blocks[1]);
		assert_false(m.on_helper[0] ? m.helper_blocks[1] : m.helper_blocks[0]);
	}
	pm_par_free(p);
	/* a pool of no helpers runs all on the caller: the two parts cannot meet */
	assert_int_equal(pm_par_new(0, &p), 0);
	{
		struct meet m = { .caller = pthread_self() };
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(pm_par_run(p, 2, meet_part, &m), -ETIMEDOUT);
		clock_gettime(CLOCK_MONOTONIC, &t);
		assert_true(t.tv_sec - t0.tv_sec >= 2);
	}
	pm_par_free(p);
}

/* four callers at once on one pool of two helpers, each run's parts counted */
struct caller {
	struct pm_par *p;
	int bad;
};

static void *caller_thread(void *arg)
{
	struct caller *c = arg;

	for (int rep = 0; rep < 2000; rep++) {
		struct count k = { .fail_at = { rep % 9 == 0 ? rep % 13 : -1, -1, -1 } };
		int want = rep % 9 == 0 ? -EIO : 0, r = pm_par_run(c->p, 13, count_part, &k);

		if (r != want)
			c->bad++;
		for (unsigned i = 0; i < 13; i++)
			if (k.n[i] != 1)
				c->bad++;
	}
	return NULL;
}

static void test_many_callers(void **state)
{
	struct pm_par *p;
	struct caller c[4];
	pthread_t th[4];

	(void)state;
	assert_int_equal(pm_par_new(2, &p), 0);
	for (int i = 0; i < 4; i++) {
		c[i] = (struct caller){ .p = p };
		assert_int_equal(pthread_create(&th[i], NULL, caller_thread, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].bad, 0);
	}
	pm_par_free(p);
	pm_par_free(NULL);
}

/* pm_cpus() counts the CPUs the process may use, and there are as many helpers but one: all of
 * them, then only the first (a child process pinned as taskset or a container's cpuset would) */
static void test_helpers_follow_affinity(void **state)
{
	cpu_set_t set;
	int status;
	pid_t pid;

	(void)state;
	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_int_equal(pm_cpus(), CPU_COUNT(&set));
	assert_int_equal(pm_par_helpers(), CPU_COUNT(&set) > 8 ? 7 : CPU_COUNT(&set) - 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int first = 0;

		while (!CPU_ISSET(first, &set))
			first++;
		CPU_ZERO(&set);
		CPU_SET(first, &set);
		_exit(sched_setaffinity(0, sizeof(set), &set) == 0 && pm_cpus() == 1 && pm_par_helpers() == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Helpers started by a caller at a real-time priority run at it too, though the caller has
 * SCHED_RESET_ON_FORK (as the userspace DM's server sets it): each of two parts that meet records
 * its thread's policy. In a child, so that the policy stays there; skipped without the privilege. */
struct meet_policy {
	struct meet m;
	int policy[2];
};

static int policy_part(void *arg, unsigned i)
{
	struct meet_policy *mp = arg;

	mp->policy[i] = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	return meet_part(&mp->m, i);
}

static void test_helpers_take_realtime(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sched_param sp = { .sched_priority = 1 };
		struct meet_policy mp = { .m = { .caller = pthread_self() } };
		struct pm_par *p;

		if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0)
			_exit(77);
		if (pm_par_new(1, &p) < 0 || pm_par_run(p, 2, policy_part, &mp) < 0)
			_exit(2);
		pm_par_free(p);
		_exit(mp.m.on_helper[0] != mp.m.on_helper[1] && mp.policy[0] == SCHED_FIFO &&
		      mp.policy[1] == SCHED_FIFO ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_part_once),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_parts_at_once),
		cmocka_unit_test(test_many_callers),
		cmocka_unit_test(test_helpers_follow_affinity),
		cmocka_unit_test(test_helpers_take_realtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
