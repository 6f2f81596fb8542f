/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pm_image_open_snapshot: writes land in a temporary overlay (read back while open), the image file
 * stays byte for byte as it was, the overlay file is gone from $TMPDIR as soon as the open returns,
 * and an image whose format partmap reads but does not write (VHDX, raw too) works the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "imgfmt.h"
#include "util.h"

static char dir[] = "/tmp/partmap-imgsnap.XXXXXX";
static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
	return mkdir(tmpdir, 0700) || setenv("TMPDIR", tmpdir, 1) ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static unsigned entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void save(const char *path, const struct img *im)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(im->data, 1, im->size, f), im->size);
	fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*n ? *n : 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void check_snapshot(const char *path, uint64_t size)
{
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	size_t n0, n1;
	_cleanup_free_ uint8_t *before = slurp(path, &n0);
	_cleanup_free_ uint8_t *buf = malloc(300000), *back = malloc(300000), *orig = malloc(300000);

	assert_non_null(buf);
	assert_non_null(back);
	assert_non_null(orig);
	for (size_t i = 0; i < 300000; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(pm_image_open_snapshot(&img, path, NULL, &d), 0);
	assert_int_equal(entries(tmpdir), 0); /* unlinked once open */
	assert_int_equal(pm_image_size(img), size);
	assert_null(pm_image_readonly_reason(img));
	assert_int_equal(pm_image_read(img, 1000, orig, 300000), 0);
	assert_int_equal(pm_image_write(img, 12345, buf, 300000), 0);
	assert_int_equal(pm_image_read(img, 12345, back, 300000), 0);
	assert_memory_equal(back, buf, 300000);
	assert_int_equal(pm_image_read(img, 1000, back, 11345), 0); /* before the write: as it was */
	assert_memory_equal(back, orig, 11345);
	assert_int_equal(pm_image_sync(img), 0);
	assert_int_equal(pm_image_discard(img, 0, 65536), 0);
	pm_image_close(img);
	_cleanup_free_ uint8_t *after = slurp(path, &n1);
	assert_int_equal(n1, n0);
	assert_memory_equal(after, before, n0);
	assert_int_equal(entries(tmpdir), 0);
}

static void test_raw(void **state)
{
	(void)state;
	char path[128];
	struct img im = img_new(4u << 20);
	for (uint64_t i = 0; i < im.size; i += 4096)
		im.data[i] = (uint8_t)(i >> 12);
	snprintf(path, sizeof(path), "%s/d.raw", dir);
	save(path, &im);
	img_free(&im);
	check_snapshot(path, 4u << 20);
}

static void test_vhdx(void **state)
{
	(void)state;
	static const uint8_t dwg[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	char path[128];
	struct img im = vhdx_new(3, dwg, NULL, NULL);
	uint64_t at = vhdx_alloc(&im, 0, NULL);
	memset(im.data + at, 0x5a, 1u << 20);
	snprintf(path, sizeof(path), "%s/d.vhdx", dir);
	save(path, &im);
	img_free(&im);
	check_snapshot(path, 3u << 20);
}

static void test_missing(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	char path[128];

	snprintf(path, sizeof(path), "%s/none.qcow2", dir);
	assert_int_equal(pm_image_open_snapshot(&img, path, NULL, &d), -ENOENT);
	assert_non_null(strstr(d.error, "none.qcow2"));
	assert_int_equal(entries(tmpdir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_vhdx),
		cmocka_unit_test(test_missing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
