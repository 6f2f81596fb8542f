/* Unit tests of pm_map_sync with a fake backend: what it asks the backend to do, and that no path
 * leaks (the ASan build runs these with LeakSanitizer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"

struct fake {
	size_t listed;          /* mappings list() returns */
	int list_err;
	unsigned removed[8];
	size_t nremoved;
	unsigned events[4];     /* counted by kind */
	bool extents_asked;     /* what the last list() was asked for */
};
static struct fake *fk;     /* the backend's callbacks have no argument of their own */

/* list(): always allocates, as a growing list does, even when it finds nothing */
static int fake_list(struct pm_parent *p, bool extents, struct pm_mapping **out, size_t *n)
{
	(void)p;
	fk->extents_asked = extents;
	*out = calloc(8, sizeof(**out));
	*n = 0;
	if (!*out)
		return -ENOMEM;
	if (fk->list_err) {
		free(*out);
		*out = NULL;
		return fk->list_err;
	}
	for (size_t i = 0; i < fk->listed; i++) {
		(*out)[i].num = (unsigned)i + 1;
		snprintf((*out)[i].name, sizeof((*out)[i].name), "pmtest-fake%zu", i + 1);
		snprintf((*out)[i].node, sizeof((*out)[i].node), "/nonexistent/pmtest%zu", i + 1);
		(*out)[i].loop_index = -1;
	}
	*n = fk->listed;
	return 0;
}

static int fake_remove(struct pm_parent *p, const struct pm_mapping *m)
{
	(void)p;
	fk->removed[fk->nremoved++] = m->num;
	return 0;
}

static int fake_add(struct pm_parent *p, const struct pm_part *part, struct pm_mapping *m)
{
	(void)p;
	(void)part;
	(void)m;
	return -EIO; /* adding is not what these tests look at: each add fails and is reported */
}

static const struct pm_backend fake_backend = { "fake", NULL, NULL, fake_list, fake_add, fake_remove, NULL };

static void count(void *arg, enum pm_event ev, const struct pm_parent *p, const struct pm_mapping *m, int err)
{
	(void)arg;
	(void)p;
	(void)m;
	(void)err;
	if ((unsigned)ev < 4)
		fk->events[ev]++;
}

static struct pm_parent parent(void)
{
	struct pm_parent p;
	memset(&p, 0, sizeof(p));
	p.loop_index = -1;
	p.fd = p.node_fd = p.lock_fd = -1;
	p.delim = "p";
	snprintf(p.base, sizeof(p.base), "pmtest");
	return p;
}

static void test_sync_delete_nothing(void **state)
{
	struct fake f = { 0 };
	struct pm_parent p = parent();

	(void)state;
	fk = &f;
	/* nothing listed: 0 failures, nothing removed, and the empty list freed (it leaked) */
	assert_int_equal(pm_map_sync(&p, &fake_backend, NULL, PM_SYNC_DELETE, count, NULL), 0);
	assert_int_equal(f.nremoved, 0);
}

static void test_sync_delete_order(void **state)
{
	struct fake f = { .listed = 3 };
	struct pm_parent p = parent();

	(void)state;
	fk = &f;
	assert_int_equal(pm_map_sync(&p, &fake_backend, NULL, PM_SYNC_DELETE, count, NULL), 0);
	/* logicals before their container: last first */
	assert_int_equal(f.nremoved, 3);
	assert_int_equal(f.removed[0], 3);
	assert_int_equal(f.removed[2], 1);
	assert_int_equal(f.events[PM_EV_DEL], 3);
	assert_false(f.extents_asked); /* removing needs no starts and sizes */
}

static void test_sync_list_fails(void **state)
{
	struct fake f = { .list_err = -EIO };
	struct pm_parent p = parent();

	(void)state;
	fk = &f;
	assert_int_equal(pm_map_sync(&p, &fake_backend, NULL, PM_SYNC_DELETE, count, NULL), 1);
	assert_int_equal(f.events[PM_EV_FAIL], 1);
}

static void test_sync_add_failures(void **state)
{
	struct pm_part parts[2] = { { .num = 1, .start = 2048, .size = 100 }, { .num = 2, .start = 4096, .size = 100 } };
	struct pm_table t = { 0 };
	struct fake f = { 0 };
	struct pm_parent p = parent();

	(void)state;
	fk = &f;
	t.parts = parts;
	t.nparts = 2;
	/* every add fails: each is reported, both counted, nothing leaks */
	assert_int_equal(pm_map_sync(&p, &fake_backend, &t, PM_SYNC_ADD, count, NULL), 2);
	assert_int_equal(f.events[PM_EV_FAIL], 2);
	assert_int_equal(f.nremoved, 0);
	assert_true(f.extents_asked); /* adding compares them */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_delete_nothing),
		cmocka_unit_test(test_sync_delete_order),
		cmocka_unit_test(test_sync_list_fails),
		cmocka_unit_test(test_sync_add_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
