/* Unit tests of the qcow2 writer: images made by qemu-img (v2, v3, extended L2, refcount widths from
 * 1 to 64 bits, small clusters, compressed clusters, backing files), seeded writes through
 * pm_image_write and the same writes into a raw copy; then qemu-img check must find no error and no
 * leak, and qemu-img compare must find the two equal. The judge is qemu-img, not partmap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image.h"
#include "util.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pm-qcow2w-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return system("qemu-img --version >/dev/null 2>&1") == 0 ? 0 : -1; /* needed: the judge */
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* nwrites seeded writes (aligned and not, 1 byte to 1 MiB) into the image and into the raw copy */
static void pattern(struct pm_image *img, int raw, uint64_t size, uint64_t seed, int nwrites)
{
	uint64_t s = seed * 2654435761u + 1;
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	for (int i = 0; i < nwrites; i++) {
		uint64_t len = 1 + rnd(&s) % (1 << 20), off;
		if (rnd(&s) % 2) { /* aligned */
			len = (len + 511) & ~511ull;
			off = rnd(&s) % (size / 512) * 512;
		} else {
			off = rnd(&s) % size;
		}
		if (rnd(&s) % 4 == 0)
			len = 1 + len % 4096;
		if (len > size - off)
			len = size - off;
		for (uint64_t j = 0; j < len; j++)
			buf[j] = (uint8_t)(rnd(&s) | 1);
		assert_int_equal(pm_image_write(img, off, buf, len), 0);
		assert_int_equal(pwrite(raw, buf, len, (off_t)off), (ssize_t)len);
	}
	/* what was written reads back */
	uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);
	assert_non_null(a);
	assert_non_null(b);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		size_t n = size - off < (1 << 20) ? size - off : 1 << 20;
		assert_int_equal(pm_image_read(img, off, a, n), 0);
		assert_int_equal(pread(raw, b, n, (off_t)off), (ssize_t)n);
		assert_memory_equal(a, b, n);
	}
	free(a);
	free(b);
	free(buf);
}

/* create with qemu-img OPTS (and a raw copy of what the guest sees), write, check, compare */
static void run_case(const char *name, const char *opts, uint64_t size, const char *prep, int nwrites)
{
	char img_path[256], raw_path[256];
	struct pm_image *img = NULL;
	struct pm_image_diag d;

	snprintf(img_path, sizeof(img_path), "%s/%s.qcow2", dir, name);
	snprintf(raw_path, sizeof(raw_path), "%s/%s.raw", dir, name);
	if (prep && prep[0]) {
		assert_int_equal(sh("cd '%s' && %s", dir, prep), 0);
	} else {
		assert_int_equal(sh("qemu-img create -q -f qcow2 %s '%s' %llu", opts, img_path, (unsigned long long)size), 0);
	}
	assert_int_equal(sh("qemu-img convert -O raw '%s' '%s'", img_path, raw_path), 0);
	assert_int_equal(pm_image_open_flags(&img, img_path, NULL, PM_IMG_WRITABLE, &d), 0);
	assert_null(pm_image_readonly_reason(img));
	size = pm_image_size(img);
	int raw = open(raw_path, O_RDWR);
	assert_true(raw >= 0);
	pattern(img, raw, size, size ^ (uint64_t)nwrites, nwrites);
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	close(raw);
	assert_int_equal(sh("qemu-img check -q '%s'", img_path), 0);
	assert_int_equal(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", img_path, raw_path), 0);
}

static void test_v3(void **state)
{
	(void)state;
	run_case("v3", "", 64 << 20, NULL, 60);
}

static void test_v2(void **state)
{
	(void)state;
	run_case("v2", "-o compat=0.10", 64 << 20, NULL, 60);
}

static void test_small_clusters(void **state)
{
	(void)state;
	/* 512-byte clusters: many L2 tables, many refcount blocks, the refcount table grows */
	run_case("c512", "-o cluster_size=512", 16 << 20, NULL, 40);
	/* the refcount table grew: qemu-img made it one cluster at 512 */
	char path[256];
	uint8_t h[12];
	snprintf(path, sizeof(path), "%s/c512.qcow2", dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, 12, 48), 12);
	close(fd);
	assert_int_not_equal(get_be64(h), 512);
	assert_true(get_be32(h + 8) > 1);
}

static void test_refcount_widths(void **state)
{
	(void)state;
	run_case("rc1", "-o cluster_size=4096,refcount_bits=1", 16 << 20, NULL, 30);
	run_case("rc2", "-o cluster_size=4096,refcount_bits=2", 16 << 20, NULL, 30);
	run_case("rc8", "-o cluster_size=4096,refcount_bits=8", 16 << 20, NULL, 30);
	run_case("rc32", "-o cluster_size=1024,refcount_bits=32", 16 << 20, NULL, 30);
	run_case("rc64", "-o cluster_size=512,refcount_bits=64", 8 << 20, NULL, 30);
}

static void test_extended_l2(void **state)
{
	(void)state;
	run_case("el2", "-o extended_l2=on,cluster_size=64k", 64 << 20, NULL, 60);
}

static void test_backing(void **state)
{
	(void)state;
	/* a raw base full of a pattern, the overlay written partially: the rest of each cluster comes from
	 * the base; the base is not changed */
	run_case("ov", NULL, 0,
		 "head -c 33554432 /dev/urandom > base.raw && cp base.raw base.orig && "
		 "qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2",
		 50);
	assert_int_equal(sh("cmp -s '%s/base.raw' '%s/base.orig'", dir, dir), 0);
	run_case("ovel2", NULL, 0,
		 "qemu-img create -q -f qcow2 -o extended_l2=on -b base.raw -F raw ovel2.qcow2 && "
		 "qemu-io -c 'write -P 7 100k 3k' -c 'write -z 1m 64k' ovel2.qcow2 >/dev/null",
		 50);
	run_case("ovv2", NULL, 0,
		 "qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k -b base.raw -F raw ovv2.qcow2", 30);
}

static void test_compressed_and_zero(void **state)
{
	(void)state;
	/* compressed clusters overwritten: copied into new ones, their sectors released (no leak) */
	run_case("comp", NULL, 0,
		 "head -c 16777216 /dev/urandom > r.raw && base64 r.raw | head -c 16777216 > t.raw && "
		 "qemu-img convert -c -O qcow2 -o cluster_size=4k t.raw comp.qcow2 && "
		 "qemu-io -c 'write -z 2m 1m' -c 'write -z -u 4m 64k' comp.qcow2 >/dev/null",
		 40);
	run_case("compz", NULL, 0,
		 "qemu-img convert -c -O qcow2 -o compression_type=zstd t.raw compz.qcow2", 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v3),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_small_clusters),
		cmocka_unit_test(test_refcount_widths),
		cmocka_unit_test(test_extended_l2),
		cmocka_unit_test(test_backing),
		cmocka_unit_test(test_compressed_and_zero),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
