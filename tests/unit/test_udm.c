/* Unit tests of the userspace device mapper's ioctl engine, driven through the same client as the
 * kernel's device mapper (src/dm.c, with the engine in place of ioctl(2)): create, load, resume,
 * suspend, clear, rename, remove (busy, deferred), list, deps, versions, status and table text, a
 * refused table leaving the live one, I/O blocked while suspended, and tables over the engine's own
 * devices. The kernel's own behaviour is checked against the same calls in tests/vm/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tgtenv.h"
#include "dm.h"
#include "dmtable.h"
#include "vdev/udm.h"

static struct pm_udm *the_udm;
static int opens[64];                 /* open count by device id, as the block device would show it */
static unsigned removed[64], adds;
static char last_err[256];

static int fake_ioctl(struct pm_dm *dm, unsigned long cmd, void *io)
{
	(void)dm;
	int r = pm_udm_ioctl(the_udm, _IOC_NR(cmd), io, last_err, sizeof(last_err));
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

static int h_add(void *arg, unsigned id, const char *name, dev_t *dev)
{
	(void)arg, (void)name;
	adds++;
	*dev = makedev(7, 100 + id);
	return 0;
}

static int h_remove(void *arg, unsigned id, const char *name, dev_t dev, bool deferred)
{
	(void)arg, (void)dev, (void)name;
	if (!deferred)
		removed[id]++;
	return 0;
}

static int h_open(void *arg, dev_t dev)
{
	(void)arg;
	return opens[minor(dev) - 100];
}

/* the io_class hook's calls: how many, the last value */
static unsigned class_calls;
static bool class_cpu;

static void h_class(void *arg, bool cpu_bound)
{
	(void)arg;
	class_calls++;
	class_cpu = cpu_bound;
}

static struct tgtenv env;

static void setup_engine(struct pm_dm *dm)
{
	struct pm_udm_hooks h = {
		.dev_add = h_add,
		.dev_remove = h_remove,
		.dev_open_count = h_open,
		.io_class = h_class,
		.env = &env.env,
	};
	memset(opens, 0, sizeof(opens));
	memset(removed, 0, sizeof(removed));
	assert_int_equal(pm_udm_new(&the_udm, &h), 0);
	memset(dm, 0, sizeof(*dm));
	dm->fd = -1;
	dm->ioctl_fn = fake_ioctl;
	dm->version[0] = 4;
	dm->version[1] = PM_UDM_VERSION_MINOR;
}

static uint8_t fill_a(uint64_t i)
{
	return (uint8_t)(i * 31 + i / 512);
}

static int load_text(struct pm_dm *dm, const char *name, const char *text)
{
	struct pm_dm_table tb;
	struct pm_dm_table_err perr;
	struct pm_dm_ref ref = { .name = name };
	int r;

	assert_int_equal(pm_dm_table_parse(text, &tb, &perr), 0);
	r = pm_dm_load(dm, &ref, tb.t, tb.n, false, tb.secure);
	pm_dm_table_free(&tb);
	return r;
}

/* create NAME with TABLE live */
static void make_dev(struct pm_dm *dm, const char *name, const char *table)
{
	struct pm_dm_info info;
	struct pm_dm_ref ref = { .name = name };

	assert_int_equal(pm_dm_dev_create(dm, name, NULL, &info), 0);
	assert_int_equal(load_text(dm, name, table), 0);
	assert_int_equal(pm_dm_resume(dm, &ref, &info), 0);
}

static char *table_text(struct pm_dm *dm, const char *name, bool status, bool inactive)
{
	struct pm_dm_ref ref = { .name = name };
	struct pm_dm_target *t;
	struct pm_dm_info info;
	size_t n;
	static char out[1024];

	out[0] = 0;
	assert_int_equal(pm_dm_table(dm, &ref, status, inactive, false, &t, &n, &info), 0);
	for (size_t i = 0; i < n; i++) {
		char *line = pm_dm_target_format(&t[i], false);
		strcat(out, line);
		strcat(out, "\n");
		free(line);
	}
	pm_dm_targets_free(t, n);
	return out;
}

static void test_lifecycle(void **state)
{
	struct pm_dm dm;
	struct pm_dm_info info;
	struct pm_dm_ref ref = { .name = "one" };
	struct pm_dm_name *names;
	size_t n;
	uint8_t buf[4096], want[4096];
	char a[256];

	(void)state;
	tgtenv_init(&env);
	tgtenv_file(&env, "8:0", 1 << 20, fill_a, a);
	setup_engine(&dm);

	assert_int_equal(pm_dm_dev_create(&dm, "one", "UUID-1", &info), 0);
	assert_int_equal(info.dev, makedev(7, 101));
	assert_false(info.live_table);
	assert_int_equal(pm_dm_dev_create(&dm, "one", NULL, &info), -EBUSY);
	assert_int_equal(pm_dm_dev_create(&dm, "two", "UUID-1", &info), -EBUSY);
	assert_int_equal(pm_udm_read(the_udm, 1, 0, buf, 512), -ENXIO); /* no table yet */

	assert_int_equal(load_text(&dm, "one", "0 16 linear 8:0 8\n16 16 zero\n"), 0);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_false(info.live_table);
	assert_true(info.inactive_table);
	assert_int_equal(pm_dm_resume(&dm, &ref, &info), 0);
	assert_true(info.live_table);
	assert_false(info.inactive_table);
	assert_false(info.suspended);
	assert_int_equal(info.target_count, 2);
	assert_int_equal(pm_udm_size(the_udm, 1), 32 * 512);
	assert_string_equal(table_text(&dm, "one", false, false), "0 16 linear 8:0 8\n16 16 zero \n");

	/* I/O through the live table */
	assert_int_equal(pm_udm_read(the_udm, 1, 0, buf, 4096), 0);
	int fd = open(a, O_RDONLY);
	assert_int_equal(pread(fd, want, 4096, 8 * 512), 4096);
	close(fd);
	assert_memory_equal(buf, want, 4096);

	/* a refused table: the error in the kernel's words, the live table as it was, no inactive one */
	assert_int_equal(load_text(&dm, "one", "0 9 striped 2 3 8:0 0 8:0 0\n"), -EINVAL);
	assert_string_equal(last_err, "striped: Target length not divisible by number of stripes");
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_true(info.live_table);
	assert_false(info.inactive_table);
	assert_int_equal(load_text(&dm, "one", "0 8 nosuch\n"), -EINVAL);

	/* an inactive table, seen with --inactive, then cleared */
	assert_int_equal(load_text(&dm, "one", "0 8 error\n"), 0);
	assert_string_equal(table_text(&dm, "one", false, true), "0 8 error \n");
	assert_int_equal(pm_dm_clear(&dm, &ref), 0);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_false(info.inactive_table);

	/* rename: the event number goes up; a uuid is set only once */
	uint32_t ev = info.event_nr;
	assert_int_equal(pm_dm_rename(&dm, &ref, "uno", NULL), 0);
	ref.name = "uno";
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_int_equal(info.event_nr, ev + 1);
	assert_string_equal(info.uuid, "UUID-1");
	assert_int_equal(pm_dm_rename(&dm, &ref, NULL, "UUID-2"), -EINVAL);

	assert_int_equal(pm_dm_dev_create(&dm, "two", NULL, &info), 0);
	assert_int_equal(pm_dm_list(&dm, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0].name, "uno");
	assert_int_equal(names[1].dev, makedev(7, 102));
	free(names);

	/* open: remove refused; deferred: marked */
	opens[1] = 1;
	assert_int_equal(pm_dm_remove(&dm, &ref, false, 0), -EBUSY);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_int_equal(info.open_count, 1);
	assert_int_equal(pm_dm_remove(&dm, &ref, true, 0), 0);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_true(info.deferred_remove);
	opens[1] = 0;
	pm_udm_release(the_udm, 1);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), -ENXIO);
	assert_int_equal(removed[1], 1);
	assert_int_equal(pm_udm_read(the_udm, 1, 0, buf, 512), -ENXIO);

	assert_int_equal(pm_dm_remove_all(&dm), 0);
	assert_int_equal(pm_dm_list(&dm, &names, &n), 0);
	assert_int_equal(n, 0);
	free(names);
	assert_int_equal(pm_udm_count(the_udm), 0);
	assert_int_equal(env.opens, 0); /* every source closed */
	pm_udm_free(the_udm);
	tgtenv_cleanup(&env);
}

struct reader {
	int r;
	bool done;
};

static void *read_thread(void *p)
{
	struct reader *rd = p;
	uint8_t buf[512];

	rd->r = pm_udm_read(the_udm, 1, 0, buf, sizeof(buf));
	__atomic_store_n(&rd->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_suspend_blocks(void **state)
{
	struct pm_dm dm;
	struct pm_dm_info info;
	struct pm_dm_ref ref = { .name = "s" };
	struct reader rd = { 0 };
	pthread_t th;

	(void)state;
	tgtenv_init(&env);
	tgtenv_file(&env, "8:0", 1 << 16, fill_a, NULL);
	setup_engine(&dm);
	assert_int_equal(pm_dm_dev_create(&dm, "s", NULL, &info), 0);
	assert_int_equal(load_text(&dm, "s", "0 64 linear 8:0 0\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &ref, &info), 0);
	assert_int_equal(pm_dm_suspend(&dm, &ref, 0), 0);
	assert_int_equal(pm_dm_info(&dm, &ref, &info), 0);
	assert_true(info.suspended);
	pthread_create(&th, NULL, read_thread, &rd);
	usleep(200 * 1000);
	assert_false(__atomic_load_n(&rd.done, __ATOMIC_SEQ_CST)); /* the reader waits */
	/* a new table swapped in while suspended: the waiting reader is served by it */
	assert_int_equal(load_text(&dm, "s", "0 64 zero\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &ref, &info), 0);
	pthread_join(th, NULL);
	assert_int_equal(rd.r, 0);
	assert_int_equal(pm_dm_remove(&dm, &ref, false, 0), 0);
	pm_udm_free(the_udm);
	tgtenv_cleanup(&env);
}

static void test_own_devices(void **state)
{
	struct pm_dm dm;
	struct pm_dm_info info;
	struct pm_dm_ref base = { .name = "base" }, top = { .name = "top" };
	dev_t *deps;
	size_t n;
	uint8_t buf[1024];

	(void)state;
	tgtenv_init(&env);
	tgtenv_file(&env, "8:0", 1 << 16, fill_a, NULL);
	setup_engine(&dm);
	assert_int_equal(pm_dm_dev_create(&dm, "base", NULL, &info), 0);
	assert_int_equal(load_text(&dm, "base", "0 128 linear 8:0 0\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &base, &info), 0);
	assert_int_equal(pm_dm_dev_create(&dm, "top", NULL, &info), 0);
	/* a table over the engine's own device: read straight from it, no block device between */
	assert_int_equal(load_text(&dm, "top", "0 64 linear 7:101 64\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &top, &info), 0);
	assert_int_equal(pm_udm_read(the_udm, 2, 0, buf, 1024), 0);
	assert_int_equal(buf[0], fill_a(64 * 512));
	assert_int_equal(pm_dm_deps(&dm, &top, &deps, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(deps[0], makedev(7, 101));
	free(deps);
	/* base is held by top's table */
	assert_int_equal(pm_dm_info(&dm, &base, &info), 0);
	assert_int_equal(info.open_count, 1);
	assert_int_equal(pm_dm_remove(&dm, &base, false, 0), -EBUSY);
	/* a table of a device over itself is refused */
	assert_int_equal(load_text(&dm, "top", "0 8 linear 7:102 0\n"), -EINVAL);
	/* remove_all takes top first, then base */
	assert_int_equal(pm_dm_remove_all(&dm), 0);
	assert_int_equal(pm_udm_count(the_udm), 0);
	assert_int_equal(env.opens, 0);
	pm_udm_free(the_udm);
	tgtenv_cleanup(&env);
}

/* A read (write) is announced once, for the device it came for, as cpu_bound when that device's
 * table or one under it has a crypt target: after every table change under it too. */
static unsigned read_class(unsigned id, bool *cpu)
{
	uint8_t buf[512];
	unsigned before = class_calls;

	assert_int_equal(pm_udm_read(the_udm, id, 0, buf, sizeof(buf)), 0);
	*cpu = class_cpu;
	return class_calls - before;
}

static void test_io_class(void **state)
{
	struct pm_dm dm;
	struct pm_dm_info info;
	struct pm_dm_ref base = { .name = "base" };
	const char *crypt = "0 128 crypt aes-xts-plain64 "
			    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 0 8:0 0\n";
	uint8_t buf[512] = { 0 };
	bool cpu;

	(void)state;
	tgtenv_init(&env);
	tgtenv_file(&env, "8:0", 1 << 16, fill_a, NULL);
	setup_engine(&dm);
	make_dev(&dm, "base", crypt);
	make_dev(&dm, "top", "0 64 linear 7:101 64\n");
	make_dev(&dm, "lin", "0 64 linear 8:0 0\n");
	assert_int_equal(read_class(1, &cpu), 1);
	assert_true(cpu);
	/* once, for top: crypt under it */
	assert_int_equal(read_class(2, &cpu), 1);
	assert_true(cpu);
	assert_int_equal(read_class(3, &cpu), 1);
	assert_false(cpu);
	unsigned before = class_calls;
	assert_int_equal(pm_udm_write(the_udm, 3, 0, buf, sizeof(buf)), 0);
	assert_int_equal(class_calls - before, 1);
	assert_false(class_cpu);
	/* base's table swapped for a linear one: top no longer cpu_bound; and back */
	assert_int_equal(load_text(&dm, "base", "0 128 linear 8:0 0\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &base, &info), 0);
	assert_int_equal(read_class(2, &cpu), 1);
	assert_false(cpu);
	assert_int_equal(load_text(&dm, "base", crypt), 0);
	assert_int_equal(pm_dm_resume(&dm, &base, &info), 0);
	assert_int_equal(read_class(2, &cpu), 1);
	assert_true(cpu);
	assert_int_equal(pm_dm_remove_all(&dm), 0);
	pm_udm_free(the_udm);
	tgtenv_cleanup(&env);
}

static void test_versions_message(void **state)
{
	struct pm_dm dm;
	struct pm_dm_info info;
	struct pm_dm_version *v;
	struct pm_dm_ref ref = { .name = "m" };
	size_t n;
	bool linear = false, striped = false;
	char reply[64];

	(void)state;
	tgtenv_init(&env);
	setup_engine(&dm);
	assert_int_equal(pm_dm_versions(&dm, &v, &n), 0);
	for (size_t i = 0; i < n; i++) {
		linear |= !strcmp(v[i].name, "linear") && v[i].version[0] == 1;
		striped |= !strcmp(v[i].name, "striped");
	}
	free(v);
	assert_true(linear && striped);
	assert_int_equal(pm_dm_dev_create(&dm, "m", NULL, &info), 0);
	assert_int_equal(load_text(&dm, "m", "0 8 zero\n"), 0);
	assert_int_equal(pm_dm_resume(&dm, &ref, &info), 0);
	assert_int_equal(pm_dm_message(&dm, &ref, 0, "hello", reply, sizeof(reply)), -EINVAL);
	assert_int_equal(pm_dm_message(&dm, &ref, 99, "hello", reply, sizeof(reply)), -EINVAL);
	assert_int_equal(pm_dm_remove_all(&dm), 0);
	pm_udm_free(the_udm);
	tgtenv_cleanup(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_suspend_blocks),
		cmocka_unit_test(test_own_devices),
		cmocka_unit_test(test_io_class),
		cmocka_unit_test(test_versions_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
