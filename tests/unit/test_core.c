/* Unit tests of the sector reader, CRC-32 and the naming rules. */
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
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "disk.h"
#include "dm.h"
#include "loop.h"
#include <sys/ioctl.h>
#include <linux/dm-ioctl.h>
#include "node.h"
#include "names.h"
#include "mountinfo.h"
#include "ptable.h"
#include "util.h"

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(pm_crc32(0, "123456789", 9), 0xCBF43926u);
	assert_int_equal(pm_crc32(pm_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
	assert_int_equal(pm_crc32(0, "", 0), 0);
}

static void test_reader_bounds_mem(void **state)
{
	(void)state;
	uint8_t buf[1000], out[600];
	struct pm_disk d;

	for (int i = 0; i < 1000; i++)
		buf[i] = (uint8_t)i;
	pm_disk_from_mem(&d, buf, sizeof(buf), 512);
	assert_int_equal(pm_disk_read(&d, 400, out, 600), 0);
	assert_int_equal(out[0], (uint8_t)400);
	assert_int_equal(pm_disk_read(&d, 401, out, 600), -ERANGE);
	assert_int_equal(pm_disk_read(&d, UINT64_MAX - 10, out, 20), -ERANGE);
	assert_int_equal(pm_disk_read512(&d, 1, out), -ERANGE); /* sector 1 is 512..1023: past 1000 */
	assert_int_equal(pm_disk_read512(&d, UINT64_MAX / 256, out), -ERANGE);
	assert_int_equal(pm_disk_sectors(&d), 1);
	pm_disk_close(&d);
}

static void test_reader_file_and_cache(void **state)
{
	(void)state;
	char path[] = "/tmp/partmap-unit-XXXXXX";
	int fd = mkstemp(path);
	uint8_t data[20000], out[512];
	struct pm_disk d;

	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	close(fd);
	assert_int_equal(pm_disk_open(&d, path, O_RDONLY), 0);
	assert_int_equal(d.size, 20000);
	assert_int_equal(d.sector_size, 0); /* an image file does not say */
	uint8_t two[1024];
	assert_int_equal(pm_disk_read(&d, 0, two, 1024), 0);
	assert_int_equal(pm_disk_read(&d, 512, out, 512), 0); /* inside what was read: from the cache */
	assert_int_equal(d.nreads, 1);
	assert_memory_equal(out, data + 512, 512);
	/* an unaligned read reads its whole sector, and no more */
	assert_int_equal(pm_disk_read(&d, 700 + 1024, out, 10), 0);
	assert_memory_equal(out, data + 1724, 10);
	assert_int_equal(d.nreads, 2);
	assert_int_equal(d.bytes_read, 1024 + 512);
	/* the last, partial block */
	assert_int_equal(pm_disk_read(&d, 19900, out, 100), 0);
	assert_memory_equal(out, data + 19900, 100);
	assert_int_equal(pm_disk_read(&d, 19900, out, 101), -ERANGE);
	pm_disk_close(&d);
	unlink(path);
	assert_int_equal(pm_disk_open(&d, path, O_RDONLY), -ENOENT);
	assert_int_equal(pm_disk_open(&d, "/tmp", O_RDONLY), -EISDIR);
}

static void test_names(void **state)
{
	(void)state;
	char b[PM_NAME_MAX];

	assert_string_equal(pm_default_delim("loop0"), "p");
	assert_string_equal(pm_default_delim("sdb"), "");
	assert_string_equal(pm_default_delim("nvme0n1"), "p");
	assert_string_equal(pm_default_delim("mpatha"), "");
	assert_int_equal(pm_part_name(b, sizeof(b), "loop0", "p", 1), 0);
	assert_string_equal(b, "loop0p1");
	assert_int_equal(pm_part_name(b, sizeof(b), "vg0-guestdisk", "", 12), 0);
	assert_string_equal(b, "vg0-guestdisk12");
	assert_int_equal(pm_part_name(b, sizeof(b), "a", "/x/", 3), 0);
	assert_string_equal(b, "a!x!3");
	char longb[200];
	memset(longb, 'x', 130);
	longb[130] = 0;
	assert_int_equal(pm_part_name(b, sizeof(b), longb, "", 1), -ENAMETOOLONG);
	assert_int_equal(pm_base_from_path(b, sizeof(b), "/dev/mapper/vg0-guestdisk"), 0);
	assert_string_equal(b, "vg0-guestdisk");
	assert_int_equal(pm_base_from_path(b, sizeof(b), "disk.img"), 0);
	assert_string_equal(b, "disk.img");
	assert_int_equal(pm_base_from_path(b, sizeof(b), "dir/"), 0);
	assert_string_equal(b, "dir");
}

static void test_guid_str(void **state)
{
	(void)state;
	/* the Linux filesystem type GUID as stored on disk */
	static const uint8_t g[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
				       0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };
	char s[37];
	pm_guid_str(g, s);
	assert_string_equal(s, "0fc63daf-8483-4772-8e79-3d69d8477de4");
}

/* pm_node_ensure: a node it makes has exactly the mode given whatever the umask; udev's symlink to the
 * right node is kept; a stale node or a link to another device is replaced. Needs root (mknod). */
static void test_node_ensure(void **state)
{
	(void)state;
	char dir[] = "/tmp/pm-node-test.XXXXXX", node[64], real[64], link[64], other[64];
	struct stat st;
	bool made;
	dev_t dev = makedev(7, 250), dev2 = makedev(7, 251);

	if (geteuid() != 0)
		fail_msg("test_node_ensure needs root (mknod)");
	assert_non_null(mkdtemp(dir));
	snprintf(node, sizeof(node), "%s/n", dir);
	snprintf(real, sizeof(real), "%s/dm-x", dir);
	snprintf(link, sizeof(link), "%s/l", dir);
	snprintf(other, sizeof(other), "%s/dm-y", dir);
	mode_t old = umask(077);
	assert_int_equal(pm_node_ensure(node, dev, 0664, 0, 6, 0, &made), 0);
	umask(old);
	assert_true(made);
	assert_int_equal(lstat(node, &st), 0);
	assert_true(S_ISBLK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0664);
	assert_int_equal(st.st_gid, 6);
	/* udev's link to the device's node stays a link */
	assert_int_equal(mknod(real, S_IFBLK | 0600, dev), 0);
	assert_int_equal(symlink("dm-x", link), 0);
	assert_int_equal(pm_node_ensure(link, dev, 0600, 0, 0, 0, &made), 0);
	assert_false(made);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* a link to another device is stale: replaced by a node */
	assert_int_equal(mknod(other, S_IFBLK | 0600, dev2), 0);
	unlink(link);
	assert_int_equal(symlink("dm-y", link), 0);
	assert_int_equal(pm_node_ensure(link, dev, 0600, 0, 0, 0, &made), 0);
	assert_true(made);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISBLK(st.st_mode) && st.st_rdev == dev);
	unlink(node), unlink(real), unlink(link), unlink(other);
	assert_int_equal(rmdir(dir), 0);
}

/* A fake device mapper for dm_call's reply buffer: the list of one device fits only in `fake_need`
 * bytes; a smaller buffer comes back flagged DM_BUFFER_FULL, as the kernel does. */
static size_t fake_need;
static unsigned fake_calls;
static int fake_dm_ioctl(struct pm_dm *dm, unsigned long cmd, void *arg)
{
	struct dm_ioctl *io = arg;
	struct dm_name_list *nl = (void *)((char *)io + io->data_start);

	(void)dm;
	assert_int_equal(cmd, DM_LIST_DEVICES);
	fake_calls++;
	if (io->data_size < fake_need) {
		io->flags |= DM_BUFFER_FULL_FLAG;
		return 0;
	}
	nl->dev = (253u << 8) | 7; /* 253:7 in the kernel's encoding */
	nl->next = 0;
	strcpy(nl->name, "big");
	io->data_size = io->data_start + (uint32_t)sizeof(*nl) + 4;
	return 0;
}

/* the one growing-array helper: doubles from 16, keeps the contents */
static void test_grow(void **state)
{
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	(void)state;
	for (uint64_t i = 0; i < 100; i++) {
		assert_int_equal(pm_grow(&v, n, &cap, sizeof(*v)), 0);
		v[n++] = i * 3;
	}
	assert_int_equal(cap, 128);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i], i * 3);
	/* not full: nothing moves */
	uint64_t *before = v;
	assert_int_equal(pm_grow(&v, n, &cap, sizeof(*v)), 0);
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 128);
	free(v);
}

/* the one UTF-16 decoder (GPT names, VHD/VHDX parent locators) */
static void test_utf16(void **state)
{
	/* "a", U+00E9, U+20AC, U+1F600 (a pair), a lone high surrogate, then NUL and garbage */
	const uint8_t le[] = { 'a', 0, 0xe9, 0, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xd8, 0, 0, 'x', 0 };
	const uint8_t be[] = { 0, 'a', 0x20, 0xac };
	char out[32];

	(void)state;
	assert_int_equal(pm_utf16_to_utf8(le, sizeof(le), false, out, sizeof(out)), 13);
	assert_string_equal(out, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd");
	assert_int_equal(pm_utf16_to_utf8(be, sizeof(be), true, out, sizeof(out)), 4);
	assert_string_equal(out, "a\xe2\x82\xac");
	/* cut at a character boundary: room for "a" and U+00E9 but not U+20AC */
	assert_int_equal(pm_utf16_to_utf8(le, sizeof(le), false, out, 5), 3);
	assert_string_equal(out, "a\xc3\xa9");
	assert_int_equal(pm_utf16_to_utf8(le, sizeof(le), false, out, 0), 0);
}

/* one name check for every DM and /dev/mapper call: "control" and dot names could replace or escape
 * /dev/mapper's own entries (pm_dm_make_node took "control" and "..", pm_dm_remove_node "..") */
static void test_dm_name_valid(void **state)
{
	char path[64], long_name[200];

	(void)state;
	assert_true(pm_dm_name_valid("loop0p1"));
	assert_true(pm_dm_name_valid("a!b"));
	assert_false(pm_dm_name_valid(""));
	assert_false(pm_dm_name_valid(NULL));
	assert_false(pm_dm_name_valid("."));
	assert_false(pm_dm_name_valid(".."));
	assert_false(pm_dm_name_valid("control"));
	assert_false(pm_dm_name_valid("a/b"));
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	long_name[128] = 0; /* 128 characters: one too many */
	assert_false(pm_dm_name_valid(long_name));
	long_name[127] = 0;
	assert_true(pm_dm_name_valid(long_name));
	assert_int_equal(pm_mapper_path(path, sizeof(path), "vg-lv"), 0);
	assert_string_equal(path, "/dev/mapper/vg-lv");
	assert_int_equal(pm_mapper_path(path, sizeof(path), "control"), -EINVAL);
	assert_int_equal(pm_dm_make_node("control", makedev(7, 0), 0600, 0, 0), -EINVAL);
	assert_int_equal(pm_dm_make_node("..", makedev(7, 0), 0600, 0, 0), -EINVAL);
	assert_int_equal(pm_dm_remove_node(".."), -EINVAL);
	assert_int_equal(pm_dm_remove_node("control"), -EINVAL);
}

static void test_dm_reply_grows_then_fails(void **state)
{
	struct pm_dm dm = { .fd = -1, .ioctl_fn = fake_dm_ioctl };
	struct pm_dm_name *v = NULL;
	size_t n = 0;

	(void)state;
	/* grows 16 KiB -> 128 KiB and then reads the answer */
	fake_need = 100000;
	fake_calls = 0;
	assert_int_equal(pm_dm_list(&dm, &v, &n), 0);
	assert_int_equal(fake_calls, 4);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "big");
	assert_int_equal(major(v[0].dev), 253);
	assert_int_equal(minor(v[0].dev), 7);
	free(v);
	/* still full at the cap: an error, not a truncated list returned as complete */
	fake_need = (size_t)PM_DM_REPLY_MAX + 1;
	fake_calls = 0;
	assert_int_equal(pm_dm_list(&dm, &v, &n), -ENOBUFS);
	assert_int_equal(fake_calls, 13); /* 16 KiB, 32 KiB, ... 64 MiB */
	assert_null(v);
	assert_int_equal(n, 0);
}

/* the set of loop devices a run found: membership by bsearch over the sorted indices */
static void test_loop_set(void **state)
{
	(void)state;
	int v[] = { 0, 3, 7, 700, 100000 };
	struct pm_loop_set s = { v, 5 }, none = { NULL, 0 };

	for (size_t i = 0; i < 5; i++)
		assert_true(pm_loop_set_has(&s, v[i]));
	assert_false(pm_loop_set_has(&s, 1));
	assert_false(pm_loop_set_has(&s, 8));
	assert_false(pm_loop_set_has(&s, 100001));
	assert_false(pm_loop_set_has(&none, 0));
	pm_loop_set_del(&s, 7);
	pm_loop_set_del(&s, 8); /* not there: nothing */
	assert_int_equal(s.n, 4);
	assert_false(pm_loop_set_has(&s, 7));
	assert_true(pm_loop_set_has(&s, 3) && pm_loop_set_has(&s, 700) && pm_loop_set_has(&s, 100000));
	pm_loop_set_del(&s, 100000);
	pm_loop_set_del(&s, 0);
	assert_int_equal(s.n, 2);
	assert_true(v[0] == 3 && v[1] == 700);
	pm_loop_set_del(&none, 1);
}

/* removals from many threads: every device gets its own result, and the count of failures is right
 * (a descriptor that is not /dev/loop-control answers ENOTTY to each) */
static void test_loop_remove_many(void **state)
{
	(void)state;
	enum { N = 300 };
	int idx[N], err[N];
	int fd = open("/dev/null", O_RDWR);

	assert_true(fd >= 0);
	for (int i = 0; i < N; i++) {
		idx[i] = i;
		err[i] = 1;
	}
	assert_int_equal(pm_loop_remove_many(fd, idx, err, 0), 0);
	assert_int_equal(err[0], 1); /* nothing touched */
	assert_int_equal(pm_loop_remove_many(fd, idx, err, 1), 1);
	assert_int_equal(err[0], -ENOTTY);
	assert_int_equal(pm_loop_remove_many(fd, idx, err, N), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(err[i], -ENOTTY);
	close(fd);
}

static void test_mountinfo_parse(void **state)
{
	(void)state;
	struct pm_mount m;
	char l1[] = "36 35 98:0 /mnt1 /mnt\\040two\\134x rw,noatime master:1 shared:2 - ext3 /dev/my\\011disk rw,errors=continue\n";
	assert_int_equal(pm_mountinfo_parse(l1, &m), 0);
	assert_int_equal(m.id, 36);
	assert_int_equal(m.parent, 35);
	assert_true(m.dev == makedev(98, 0));
	assert_string_equal(m.root, "/mnt1");
	assert_string_equal(m.target, "/mnt two\\x");
	assert_string_equal(m.fstype, "ext3");
	assert_string_equal(m.source, "/dev/my\tdisk");
	/* no optional fields; a backslash not followed by three octal digits stays */
	char l2[] = "1 0 0:41 / /run/partmap/dm/fs rw - fuse.partmap partmap-dm rw,user_id=0\n";
	assert_int_equal(pm_mountinfo_parse(l2, &m), 0);
	assert_true(m.dev == makedev(0, 41));
	assert_string_equal(m.target, "/run/partmap/dm/fs");
	assert_string_equal(m.fstype, "fuse.partmap");
	assert_string_equal(m.source, "partmap-dm");
	char l3[] = "2 1 7:0 / /a\\9b rw - ext4 /dev/loop0 rw";
	assert_int_equal(pm_mountinfo_parse(l3, &m), 0);
	assert_string_equal(m.target, "/a\\9b");
	/* not entries */
	char b1[] = "36 35 98:0 /mnt1 /mnt2 rw master:1 ext3 /dev/root rw\n";
	assert_int_equal(pm_mountinfo_parse(b1, &m), -EINVAL);
	char b2[] = "x 35 98:0 / /m rw - ext3 /dev/root rw\n";
	assert_int_equal(pm_mountinfo_parse(b2, &m), -EINVAL);
	char b3[] = "1 2 98 / /m rw - ext3 /dev/root rw\n";
	assert_int_equal(pm_mountinfo_parse(b3, &m), -EINVAL);
	char b4[] = "";
	assert_int_equal(pm_mountinfo_parse(b4, &m), -EINVAL);
}

static int note_proc(const struct pm_mount *m, void *arg)
{
	if (!strcmp(m->target, "/proc") && !strcmp(m->fstype, "proc"))
		*(int *)arg += 1;
	return 0;
}

static int stop_at_first(const struct pm_mount *m, void *arg)
{
	(void)m;
	*(int *)arg += 1;
	return 7;
}

static void test_mountinfo_each(void **state)
{
	(void)state;
	int n = 0;
	assert_int_equal(pm_mountinfo_each(note_proc, &n), 0);
	assert_true(n >= 1); /* /proc is mounted where the tests run */
	n = 0;
	assert_int_equal(pm_mountinfo_each(stop_at_first, &n), 7);
	assert_int_equal(n, 1);
}

static void test_lvm_name_split(void **state)
{
	(void)state;
	/* what lvm2's dmsetup splitname prints for these (checked against Debian's in udm-more.t) */
	static const char *const cases[][4] = {
		{ "vg-lv", "vg", "lv", "" },		  { "vg-lv-layer", "vg", "lv", "layer" },
		{ "vg--x-lv--y-_mlog", "vg-x", "lv-y", "_mlog" }, { "a", "a", "", "" },
		{ "a-b-c-d", "a", "b", "c" },	  { "x-", "x-", "", "" },
		{ "a--", "a-", "", "" },		  { "a---b", "a-", "b", "" },
		{ "", "", "", "" },			  { "-", "-", "", "" },
		{ "a-b-", "a", "b-", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[64], *vg, *lv, *layer;
		snprintf(buf, sizeof(buf), "%s", cases[i][0]);
		pm_lvm_name_split(buf, &vg, &lv, &layer);
		assert_string_equal(vg, cases[i][1]);
		assert_string_equal(lv, cases[i][2]);
		assert_string_equal(layer, cases[i][3]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_reader_bounds_mem),
		cmocka_unit_test(test_reader_file_and_cache),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_guid_str),
		cmocka_unit_test(test_node_ensure),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_dm_name_valid),
		cmocka_unit_test(test_mountinfo_parse),
		cmocka_unit_test(test_mountinfo_each),
		cmocka_unit_test(test_lvm_name_split),
		cmocka_unit_test(test_dm_reply_grows_then_fails),
		cmocka_unit_test(test_loop_set),
		cmocka_unit_test(test_loop_remove_many),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
