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
#include <pthread.h>
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

static void count_line(void *ctx, const char *line)
{
	(void)line;
	(*(int *)ctx)++;
}

/* image check agrees with qemu-img check: clean after writes, a leak made by clearing an L2 entry,
 * -r leaks repairs it (qemu-img check clean after) */
static void test_check(void **state)
{
	char path[256];
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	int lines = 0;
	(void)state;

	snprintf(path, sizeof(path), "%s/chk.qcow2", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 -o cluster_size=4k '%s' 8M && "
			    "qemu-io -c 'write -P 3 0 64k' '%s' >/dev/null", path, path), 0);
	assert_int_equal(pm_image_open(&img, path, NULL, &d), 0);
	struct pm_image_check res = { .report = count_line, .ctx = &lines };
	assert_int_equal(pm_image_check(img, false, &res), 0);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(res.leaks, 0);
	assert_int_equal(lines, 0);
	assert_int_equal(pm_image_check(img, true, &res), -EROFS); /* not opened for writing */
	pm_image_close(img);
	/* clear the first L2 entry (L1 at the header's offset 40) */
	int fd = open(path, O_RDWR);
	uint8_t b[8], z[8] = { 0 };
	assert_int_equal(pread(fd, b, 8, 40), 8);
	assert_int_equal(pread(fd, b, 8, (off_t)get_be64(b)), 8);
	assert_int_equal(pwrite(fd, z, 8, (off_t)(get_be64(b) & 0x00fffffffffffe00ull)), 8);
	close(fd);
	assert_int_equal(sh("qemu-img check -q '%s' 2>/dev/null", path), 3);
	assert_int_equal(pm_image_open_flags(&img, path, NULL, PM_IMG_WRITABLE, &d), 0);
	assert_int_equal(pm_image_check(img, false, &res), 0);
	assert_int_equal(res.leaks, 1);
	assert_int_equal(res.corruptions, 0);
	assert_int_equal(pm_image_check(img, true, &res), 0);
	assert_int_equal(res.leaks_fixed, 1);
	assert_int_equal(res.leaks, 0);
	pm_image_close(img);
	assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
}

static void test_create(void **state)
{
	char path[256], base[256];
	struct pm_image_diag d;
	struct pm_image_create_opts o = { .size = 100 << 20, .cluster_size = 4096 };
	(void)state;

	snprintf(path, sizeof(path), "%s/new.qcow2", dir);
	assert_int_equal(pm_image_create(path, "qcow2", &o, &d), 0);
	assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
	assert_int_equal(sh("qemu-img info '%s' | grep -q '104857600 bytes'", path), 0);
	/* an overlay: its size from the base, the base's format recorded */
	snprintf(base, sizeof(base), "%s/cbase.raw", dir);
	assert_int_equal(sh("head -c 3000000 /dev/urandom > '%s'", base), 0);
	snprintf(path, sizeof(path), "%s/cov.qcow2", dir);
	o = (struct pm_image_create_opts){ .backing = "cbase.raw" };
	assert_int_equal(pm_image_create(path, "qcow2", &o, &d), 0);
	assert_int_equal(sh("qemu-img check -q '%s' && qemu-img compare -q '%s' '%s'", path, path, base), 0);
	assert_int_equal(pm_image_create(path, "vdi", &o, &d), -ENOTSUP);
	o.cluster_size = 1000;
	assert_int_equal(pm_image_create(path, "qcow2", &o, &d), -EINVAL);
}

/* qemu's locks: a second writer (partmap or qemu-io) is refused; a reader without locks is not */
static void test_locks(void **state)
{
	char path[256];
	struct pm_image *a = NULL, *b = NULL;
	struct pm_image_diag d;
	(void)state;

	snprintf(path, sizeof(path), "%s/lk.qcow2", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 '%s' 8M", path), 0);
	assert_int_equal(pm_image_open_flags(&a, path, NULL, PM_IMG_WRITABLE, &d), 0);
	assert_int_equal(pm_image_open_flags(&b, path, NULL, PM_IMG_WRITABLE, &d), -EBUSY);
	assert_non_null(strstr(d.error, "in use"));
	assert_null(b);
	assert_int_equal(pm_image_open(&b, path, NULL, &d), 0);
	pm_image_close(b);
	assert_int_not_equal(sh("qemu-io -c 'write 0 4k' '%s' >/dev/null 2>&1", path), 0);
	pm_image_close(a);
	assert_int_equal(sh("qemu-io -c 'write 0 4k' '%s' >/dev/null 2>&1", path), 0);
	/* qemu holding it: partmap refuses */
	assert_int_equal(sh("(sleep 2 | qemu-io '%s' >/dev/null 2>&1 &) ; sleep 0.5", path), 0);
	assert_int_equal(pm_image_open_flags(&a, path, NULL, PM_IMG_WRITABLE, &d), -EBUSY);
	sleep(2);
}

struct thr {
	struct pm_image *img;
	int id;
	int err;
};

static void *writer_thread(void *p)
{
	struct thr *t = p;
	uint8_t buf[12288], back[12288];
	uint64_t s = (uint64_t)t->id * 7919 + 3;
	for (int i = 0; i < 200 && !t->err; i++) {
		/* each thread its own 1 MiB stripe: overlapping clusters of different threads only */
		uint64_t off = (uint64_t)t->id * (1 << 20) + rnd(&s) % ((1 << 20) - sizeof(buf));
		size_t len = 1 + rnd(&s) % sizeof(buf);
		memset(buf, t->id * 16 + i % 16 + 1, len);
		if (pm_image_write(t->img, off, buf, len) || pm_image_read(t->img, off, back, len) ||
		    memcmp(buf, back, len))
			t->err = 1;
	}
	return NULL;
}

/* several threads writing and reading at once (FUSE serves on several threads) */
static void test_threads(void **state)
{
	char path[256];
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	pthread_t th[4];
	struct thr t[4];
	(void)state;

	snprintf(path, sizeof(path), "%s/th.qcow2", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 -o cluster_size=4k '%s' 8M", path), 0);
	assert_int_equal(pm_image_open_flags(&img, path, NULL, PM_IMG_WRITABLE, &d), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ .img = img, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].err, 0);
	}
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
}

/* the write-back metadata cache under eviction: 512-byte clusters (an L2 table maps 32 KiB, the cache
 * holds 64 of them; a refcount block counts 128 KiB), writes all over a 16 MiB disk with no flush in
 * between, each followed by a read of an earlier written region (reads must see the dirty cached
 * tables, and the tables written back on eviction); a second thread reads meanwhile. Then qemu-img
 * check and compare against a raw copy given the same writes. */
struct rdr {
	struct pm_image *img;
	volatile int stop;
	int err;
};

static void *reader_thread(void *p)
{
	struct rdr *t = p;
	uint8_t buf[8192];
	uint64_t s = 77;
	while (!t->stop && !t->err)
		if (pm_image_read(t->img, rnd(&s) % ((16 << 20) - sizeof(buf)), buf, sizeof(buf)))
			t->err = 1;
	return NULL;
}

static void test_cache_evict(void **state)
{
	char path[256], raw[256];
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint64_t size = 16 << 20, s = 12345;
	uint8_t buf[20000], back[20000];
	(void)state;

	uint8_t *shadow = calloc(1, size);
	assert_non_null(shadow);
	snprintf(path, sizeof(path), "%s/ev.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/ev.raw", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 -o cluster_size=512 '%s' 16M", path), 0);
	assert_int_equal(pm_image_open_flags(&img, path, NULL, PM_IMG_WRITABLE, &d), 0);
	struct rdr rt = { .img = img };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &rt), 0);
	uint64_t offs[64] = { 0 };
	size_t lens[64] = { 0 };
	for (int i = 0; i < 600; i++) {
		uint64_t off = rnd(&s) % (size - sizeof(buf));
		size_t len = 1 + rnd(&s) % sizeof(buf);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(rnd(&s) >> 11);
		assert_int_equal(pm_image_write(img, off, buf, len), 0);
		memcpy(shadow + off, buf, len);
		offs[i % 64] = off;
		lens[i % 64] = len;
		int j = (int)(rnd(&s) % 64);
		if (lens[j]) {
			assert_int_equal(pm_image_read(img, offs[j], back, lens[j]), 0);
			assert_memory_equal(back, shadow + offs[j], lens[j]);
		}
	}
	rt.stop = 1;
	pthread_join(th, NULL);
	assert_int_equal(rt.err, 0);
	for (uint64_t off = 0; off < size; off += sizeof(back) / 2) {
		size_t len = size - off < sizeof(back) / 2 ? (size_t)(size - off) : sizeof(back) / 2;
		assert_int_equal(pm_image_read(img, off, back, len), 0);
		assert_memory_equal(back, shadow + off, len);
	}
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, shadow, size, 0), (ssize_t)size);
	close(fd);
	free(shadow);
	assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
	assert_int_equal(sh("qemu-img compare -q -f qcow2 -F raw '%s' '%s'", path, raw), 0);
}

/* refused for writing: corrupt, dirty, unknown autoclear bits; read-only opens still work */
static void test_refused(void **state)
{
	static const struct { int off; uint8_t v; const char *word; } cases[] = {
		{ 79, 2, "corrupt" }, { 79, 1, "dirty" }, { 95, 0x80, "autoclear" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char path[256];
		struct pm_image *img = NULL;
		struct pm_image_diag d;
		uint8_t z[4096] = { 0 };
		snprintf(path, sizeof(path), "%s/ref%zu.qcow2", dir, i);
		assert_int_equal(sh("qemu-img create -q -f qcow2 '%s' 8M", path), 0);
		int fd = open(path, O_RDWR);
		assert_int_equal(pwrite(fd, &cases[i].v, 1, cases[i].off), 1);
		close(fd);
		assert_int_equal(pm_image_open_flags(&img, path, NULL, PM_IMG_WRITABLE, &d), 0);
		assert_non_null(pm_image_readonly_reason(img));
		assert_non_null(strstr(pm_image_readonly_reason(img), cases[i].word));
		assert_int_equal(pm_image_write(img, 0, z, sizeof(z)), -EROFS);
		assert_int_equal(pm_image_read(img, 0, z, sizeof(z)), 0);
		pm_image_close(img);
	}
}

/* discard and zero ranges: released clusters (holes punched), zero clusters over a backing file
 * (without allocating data), zeros written where the format cannot say so; qemu-img judges */
static void test_discard(void **state)
{
	static const struct { const char *opts; bool backing; } cases[] = {
		{ "-o cluster_size=4k", false },
		{ "-o cluster_size=4k", true },
		{ "-o extended_l2=on,cluster_size=64k", true },
		{ "-o compat=0.10,cluster_size=4k", true },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char path[256], raw[256];
		struct pm_image *img = NULL;
		struct pm_image_diag d;
		struct stat st0, st1;
		snprintf(path, sizeof(path), "%s/dis%zu.qcow2", dir, i);
		snprintf(raw, sizeof(raw), "%s/dis%zu.raw", dir, i);
		if (cases[i].backing)
			assert_int_equal(sh("cd '%s' && head -c 8388608 /dev/urandom > dbase%zu.raw && "
					    "qemu-img create -q -f qcow2 %s -b dbase%zu.raw -F raw '%s'",
					    dir, i, cases[i].opts, i, path), 0);
		else
			assert_int_equal(sh("qemu-img create -q -f qcow2 %s '%s' 8M", cases[i].opts, path), 0);
		assert_int_equal(pm_image_open_flags(&img, path, NULL, PM_IMG_WRITABLE, &d), 0);
		uint8_t *buf = malloc(8 << 20);
		assert_non_null(buf);
		memset(buf, 0x5a, 4 << 20);
		assert_int_equal(pm_image_write(img, 0, buf, 4 << 20), 0);
		assert_int_equal(pm_image_sync(img), 0);
		assert_int_equal(stat(path, &st0), 0);
		/* 1 MiB + 1000 bytes to 7 MiB - 5: partly written clusters, never written ones */
		uint64_t from = (1 << 20) + 1000, to = (7 << 20) - 5;
		assert_int_equal(pm_image_zero_range(img, from, to - from), 0);
		assert_int_equal(pm_image_read(img, from, buf, to - from), 0);
		for (uint64_t j = 0; j < to - from; j++)
			if (buf[j])
				fail_msg("case %zu: byte %llu not zero", i, (unsigned long long)(from + j));
		pm_image_close(img);
		free(buf);
		assert_int_equal(stat(path, &st1), 0);
		/* released: the file holds less (v2 over a backing file writes zeros instead) */
		if (i != 3)
			assert_true(st1.st_blocks * 512 < st0.st_blocks * 512 - (2 << 20));
		assert_int_equal(sh("qemu-img check -q '%s'", path), 0);
		/* what qemu reads: 0x5a up to from, zeros from there to 'to' */
		assert_int_equal(sh("qemu-img convert -O raw '%s' '%s'", path, raw), 0);
		buf = malloc(8 << 20);
		assert_non_null(buf);
		int fd = open(raw, O_RDONLY);
		assert_int_equal(pread(fd, buf, 8 << 20, 0), 8 << 20);
		close(fd);
		for (uint64_t j = 0; j < to; j++)
			if (buf[j] != (j < from ? 0x5a : 0))
				fail_msg("case %zu: qemu reads byte %llu as %u", i, (unsigned long long)j, buf[j]);
		free(buf);
	}
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
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_cache_evict),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_discard),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
