/* Unit tests of the device-mapper table text: parsing (paths to major:minor, every refusal with its
 * line), the printed form with crypt keys masked, and the round trip. Leaks on the error paths show
 * in the ASan build. */
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
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dmtable.h"

static void test_parse_good(void **state)
{
	struct pm_dm_table tb;
	struct pm_dm_table_err err;
	const char *text = "# a comment\n\n  0 2048 linear 7:0 2048  \n2048\t100 zero\n"
			   "2148 8 crypt aes-xts-plain64 00112233 0 7:0 0\n";

	(void)state;
	assert_int_equal(pm_dm_table_parse(text, &tb, &err), 0);
	assert_int_equal(tb.n, 3);
	assert_true(tb.secure);
	assert_int_equal(tb.t[0].start, 0);
	assert_int_equal(tb.t[0].length, 2048);
	assert_string_equal(tb.t[0].type, "linear");
	assert_string_equal(tb.t[0].params, "7:0 2048");
	assert_int_equal(tb.t[1].start, 2048);
	assert_string_equal(tb.t[1].type, "zero");
	assert_string_equal(tb.t[1].params, "");
	assert_string_equal(tb.t[2].params, "aes-xts-plain64 00112233 0 7:0 0");
	pm_dm_table_free(&tb);
	assert_null(tb.t);
	assert_int_equal(tb.n, 0);
}

/* a parameter naming a block device by path becomes major:minor; other paths stay */
static void test_parse_paths(void **state)
{
	char dir[] = "/tmp/pm-dmt-XXXXXX", blk[64], text[256];
	struct pm_dm_table tb;
	struct pm_dm_table_err err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(blk, sizeof(blk), "%s/blk", dir);
	assert_int_equal(mknod(blk, S_IFBLK | 0600, makedev(259, 4097)), 0);
	snprintf(text, sizeof(text), "0 10 linear %s 0\n10 10 linear /dev/null 5\n", blk);
	assert_int_equal(pm_dm_table_parse(text, &tb, &err), 0);
	assert_string_equal(tb.t[0].params, "259:4097 0");
	assert_string_equal(tb.t[1].params, "/dev/null 5");
	assert_false(tb.secure);
	pm_dm_table_free(&tb);
	/* many short paths: the output is longer than the input, sized without a realloc */
	char many[1024] = "0 1 striped 40 8";
	for (int i = 0; i < 40; i++)
		strcat(strcat(many, " "), blk), strcat(many, " 0");
	assert_int_equal(pm_dm_table_parse(many, &tb, &err), 0);
	assert_non_null(strstr(tb.t[0].params, "259:4097 0 259:4097 0"));
	pm_dm_table_free(&tb);
	unlink(blk);
	rmdir(dir);
}

static void refused(const char *text, enum pm_dm_table_error kind, unsigned line, const char *what)
{
	struct pm_dm_table tb;
	struct pm_dm_table_err err;

	assert_int_equal(pm_dm_table_parse(text, &tb, &err), -EINVAL);
	assert_int_equal(err.kind, kind);
	assert_int_equal(err.line, line);
	if (what)
		assert_string_equal(err.text, what);
	assert_null(tb.t); /* nothing left to free or wipe */
	assert_int_equal(tb.n, 0);
}

static void test_parse_refusals(void **state)
{
	struct pm_dm_table tb;
	struct pm_dm_table_err err;

	(void)state;
	refused("0 8 zero\nbad line\n", PM_DMT_SYNTAX, 2, "bad line");
	refused("-1 8 zero\n", PM_DMT_SYNTAX, 1, "-1 8 zero");
	refused("0 8 abcdefghijklmnopq\n", PM_DMT_TYPE_LONG, 1, "abcdefghijklmnopq");
	refused("0 8 zero\n\n9 8 zero\n", PM_DMT_GAP, 3, "zero");
	assert_int_equal(pm_dm_table_parse("0 8 zero\n4 8 zero", &tb, &err), -EINVAL);
	assert_int_equal(err.start, 4);
	assert_int_equal(err.prev_end, 8);
	/* a crypt target before the failure: its key was copied, and must be freed (ASan) */
	refused("0 8 crypt aes 0011 0 7:0 0\n8 0 zero\n", PM_DMT_ZERO_LENGTH, 2, "zero");
	refused("0 18446744073709551615 zero\n18446744073709551615 1 zero\n", PM_DMT_TOO_LONG, 2, "zero");
	refused("# nothing\n\n", PM_DMT_EMPTY, 2, "");
	refused("", PM_DMT_EMPTY, 0, "");
}

static void test_format(void **state)
{
	struct pm_dm_target crypt = { 0, 8, "crypt", (char *)"aes-cbc-essiv:sha256 0123456789abcdef 0 8:1 0" };
	struct pm_dm_target ring = { 0, 8, "crypt", (char *)"aes :32:logon:k 0 8:1 0" };
	struct pm_dm_target lin = { 8, 16, "linear", (char *)"8:1 0123" };
	struct pm_dm_table tb;
	struct pm_dm_table_err err;
	char *s;

	(void)state;
	s = pm_dm_target_format(&crypt, false);
	assert_string_equal(s, "0 8 crypt aes-cbc-essiv:sha256 0000000000000000 0 8:1 0");
	free(s);
	s = pm_dm_target_format(&crypt, true);
	assert_string_equal(s, "0 8 crypt aes-cbc-essiv:sha256 0123456789abcdef 0 8:1 0");
	/* the round trip: what is printed parses back to the same target */
	assert_int_equal(pm_dm_table_parse(s, &tb, &err), 0);
	assert_int_equal(tb.n, 1);
	assert_string_equal(tb.t[0].type, "crypt");
	assert_string_equal(tb.t[0].params, crypt.params);
	pm_dm_table_free(&tb);
	free(s);
	s = pm_dm_target_format(&ring, false);
	assert_string_equal(s, "0 8 crypt aes :32:logon:k 0 8:1 0");
	free(s);
	s = pm_dm_target_format(&lin, false);
	assert_string_equal(s, "8 16 linear 8:1 0123");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_paths),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
