/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A missing VHDX parent: the message names every path the locator gave and partmap looked for
 * (relative_path, absolute_win32_path, volume_path, each made a Linux path, a relative one beside
 * the child), as qemu names a missing backing file; a locator that names no path says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"
#include "imgfmt.h"
#include "util.h"

#define META (2u << 20)          /* where vhdx_new puts the metadata region */
#define LOC (META + 65536 + 64)  /* and the parent locator in it (the 4th metadata item) */

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return img_dir_make(dir, sizeof(dir), "partmap-vhdxparent");
}

static int teardown(void **state)
{
	(void)state;
	return img_dir_remove(dir);
}

/* Replace the locator's entries by these key/value pairs (ASCII, stored as UTF-16LE). */
static void set_locator(struct img *im, const char *const *kv, unsigned n)
{
	uint8_t *loc = im->data + LOC;
	uint32_t at = 20 + 12 * n;

	memset(loc + 16, 0, 65536 - 64 - 16);
	put_le16(loc + 18, (uint16_t)n);
	for (unsigned i = 0; i < 2 * n; i++) {
		uint8_t *e = loc + 20 + 12 * (i / 2);
		size_t len = strlen(kv[i]);
		put_le32(e + (i % 2 ? 4 : 0), at);
		put_le16(e + (i % 2 ? 10 : 8), (uint16_t)(len * 2));
		for (size_t j = 0; j < len; j++, at += 2)
			put_le16(loc + at, (uint8_t)kv[i][j]);
	}
	put_le32(im->data + META + 32 + 32 * 3 + 20, at); /* the item's length */
}

static void open_fails(const char *const *kv, unsigned n, struct pm_image_diag *d)
{
	struct img c = vhdx_new(3, DWG_C, DWG_P, "unused.vhdx");
	struct pm_image *img = NULL;

	set_locator(&c, kv, n);
	const char *path = img_save(dir, "child.vhdx", &c);
	assert_non_null(path);
	img_free(&c);
	assert_int_equal(pm_image_open(&img, path, NULL, d), -ENOENT);
	assert_null(img);
}

static void test_every_path_named(void **state)
{
	(void)state;
	static const char *const kv[] = {
		"parent_linkage", "{a3a2a1a0-b1b0-c1c0-0102-030405060708}",
		"relative_path", ".\\gone-rel.vhdx",
		"absolute_win32_path", "C:\\vms\\gone-abs.vhdx",
		"volume_path", "\\\\?\\Volume{0}\\vms\\gone-vol.vhdx",
	};
	struct pm_image_diag d;
	char want[3][256];

	open_fails(kv, 4, &d);
	snprintf(want[0], sizeof(want[0]), "%s/gone-rel.vhdx", dir);
	snprintf(want[1], sizeof(want[1]), "%s/C:/vms/gone-abs.vhdx", dir);
	snprintf(want[2], sizeof(want[2]), "//?/Volume{0}/vms/gone-vol.vhdx"); /* absolute once made a Linux path */
	for (int i = 0; i < 3; i++) {
		if (!strstr(d.error, want[i]))
			fail_msg("\"%s\" does not name %s", d.error, want[i]);
	}
	assert_non_null(strstr(d.error, "not found"));
}

static void test_no_path(void **state)
{
	(void)state;
	static const char *const kv[] = { "parent_linkage", "{a3a2a1a0-b1b0-c1c0-0102-030405060708}" };
	struct pm_image_diag d;

	open_fails(kv, 1, &d);
	assert_non_null(strstr(d.error, "names no path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_path_named),
		cmocka_unit_test(test_no_path),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
