/* Unit tests of the vdev adapters partmap fuse serves through the FUSE front end: an image's virtual
 * disk as a vdev (pm_vdev_from_image) and a slice of a vdev (pm_vdev_slice, a partition file). The
 * bytes are checked against the backing file read with pread, not through partmap. */
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
#include <unistd.h>

#include "image/image.h"
#include "vdev/vdev.h"

#define DISK (1u << 20)
#define PART_OFF 65536u
#define PART_LEN 131072u

static char path[] = "/tmp/partmap-test-vdev.XXXXXX";

static int make_file(void **state)
{
	uint8_t *b = malloc(DISK);
	int fd = mkstemp(path);

	(void)state;
	assert_non_null(b);
	assert_true(fd >= 0);
	for (size_t i = 0; i < DISK; i++)
		b[i] = (uint8_t)(i * 7 + i / 511);
	assert_int_equal(pwrite(fd, b, DISK, 0), DISK);
	close(fd);
	free(b);
	return 0;
}

static int drop_file(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void file_bytes(uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* a partition of an image: reads and writes land at the partition's offset, nothing outside it */
static void test_slice_of_image(void **state)
{
	struct pm_image *img;
	struct pm_image_diag diag;
	struct pm_vdev disk, part;
	uint8_t got[4096], want[4096];

	(void)state;
	assert_int_equal(pm_image_open_flags(&img, path, "raw", PM_IMG_WRITABLE, &diag), 0);
	assert_int_equal(pm_vdev_from_image(&disk, img, false), 0);
	assert_int_equal(disk.size, DISK);
	assert_int_equal(pm_vdev_slice(&part, &disk, PART_OFF, PART_LEN), 0);
	assert_int_equal(part.size, PART_LEN);
	assert_false(part.read_only);

	assert_int_equal(pm_vdev_read(&part, 512, got, sizeof(got)), 0);
	file_bytes(PART_OFF + 512, want, sizeof(want));
	assert_memory_equal(got, want, sizeof(got));

	/* the last sector, and past the end */
	assert_int_equal(pm_vdev_read(&part, PART_LEN - 512, got, 512), 0);
	file_bytes(PART_OFF + PART_LEN - 512, want, 512);
	assert_memory_equal(got, want, 512);
	assert_int_equal(pm_vdev_read(&part, PART_LEN - 512, got, 1024), -ERANGE);

	memset(got, 0xa5, sizeof(got));
	assert_int_equal(pm_vdev_write(&part, 8192, got, sizeof(got)), 0);
	assert_int_equal(pm_vdev_flush(&part), 0);
	file_bytes(PART_OFF + 8192, want, sizeof(want));
	assert_memory_equal(got, want, sizeof(got));
	file_bytes(PART_OFF + 8192 - 512, want, 512); /* the sector before it is untouched */
	assert_int_equal(want[0], (uint8_t)((PART_OFF + 8192 - 512) * 7 + (PART_OFF + 8192 - 512) / 511));

	/* a discard reads back as zeros (the image zeroes the range) */
	assert_int_equal(pm_vdev_discard(&part, 8192, 4096), 0);
	file_bytes(PART_OFF + 8192, want, sizeof(want));
	memset(got, 0, sizeof(got));
	assert_memory_equal(got, want, sizeof(got));

	/* a slice must lie inside its base */
	struct pm_vdev bad;
	assert_int_equal(pm_vdev_slice(&bad, &disk, DISK - 512, 1024), -ERANGE);
	assert_int_equal(pm_vdev_slice(&bad, &disk, DISK + 512, 0), -ERANGE);

	pm_vdev_close(&part);
	pm_vdev_close(&disk);
	pm_image_close(img);
}

/* read-only: the image's vdev and its slices refuse writes and discards */
static void test_read_only(void **state)
{
	struct pm_image *img;
	struct pm_image_diag diag;
	struct pm_vdev disk, part;
	uint8_t buf[512] = { 0 };

	(void)state;
	assert_int_equal(pm_image_open(&img, path, "raw", &diag), 0);
	assert_int_equal(pm_vdev_from_image(&disk, img, true), 0);
	assert_int_equal(pm_vdev_slice(&part, &disk, PART_OFF, PART_LEN), 0);
	assert_true(part.read_only);
	assert_int_equal(pm_vdev_write(&part, 0, buf, sizeof(buf)), -EROFS);
	assert_int_equal(pm_vdev_discard(&part, 0, 512), -EROFS);
	assert_int_equal(pm_vdev_flush(&part), 0);
	pm_vdev_close(&part);
	pm_vdev_close(&disk);
	pm_image_close(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_of_image),
		cmocka_unit_test(test_read_only),
	};
	return cmocka_run_group_tests(tests, make_file, drop_file);
}
