/* Unit tests of the partition-table readers on tables built in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "imgbuild.h"
#include "ptable.h"
#include "util.h"

#define MiB (1024ull * 1024)

static int probe(struct img *im, unsigned ssz, bool force_gpt, struct pm_table *t)
{
	struct pm_disk d;
	struct pm_opts o = { .force_gpt = force_gpt };

	pm_disk_from_mem(&d, im->data, im->size, ssz);
	int r = pm_probe(&d, &o, t);
	pm_disk_close(&d);
	return r;
}

static void expect_part(const struct pm_table *t, unsigned num, uint64_t start, uint64_t size)
{
	const struct pm_part *p = pm_table_find(t, num);
	if (!p)
		fail_msg("partition %u missing", num);
	assert_int_equal(p->start, start);
	assert_int_equal(p->size, size);
}

static bool has_warning(const struct pm_table *t, const char *needle)
{
	for (size_t i = 0; i < t->nwarnings; i++)
		if (strstr(t->warnings[i], needle))
			return true;
	return false;
}

/* DOS: 2 primaries, an extended partition with three logicals */
static struct img dos_sample(unsigned ssz)
{
	uint32_t f = ssz / 512;
	struct img im = img_new(64 * MiB);
	uint32_t ext = 40960 / f;

	img_dos(&im, 0, 0, 0x80, 0x83, 2048 / f, 8192 / f);
	img_dos(&im, 0, 1, 0, 0x82, 10240 / f, 8192 / f);
	img_dos(&im, 0, 3, 0, 0x05, ext, 40960 / f);
	/* EBR 1 at ext: logical at +2048 (512-units), link to EBR 2 at +12288 */
	img_dos(&im, (uint64_t)ext * ssz, 0, 0, 0x83, 2048 / f, 4096 / f);
	img_dos(&im, (uint64_t)ext * ssz, 1, 0, 0x05, 12288 / f, 8192 / f);
	img_dos(&im, (uint64_t)(ext + 12288 / f) * ssz, 0, 0, 0x83, 2048 / f, 4096 / f);
	img_dos(&im, (uint64_t)(ext + 12288 / f) * ssz, 1, 0, 0x05, 20480 / f, 8192 / f);
	img_dos(&im, (uint64_t)(ext + 20480 / f) * ssz, 0, 0, 0x07, 2048 / f, 4096 / f);
	return im;
}

static void test_dos_logicals(void **state)
{
	(void)state;
	struct img im = dos_sample(512);
	struct pm_table t;

	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "dos");
	assert_int_equal(t.sector_size, 512);
	assert_int_equal(t.nparts, 6);
	expect_part(&t, 1, 2048, 8192);
	expect_part(&t, 2, 10240, 8192);
	expect_part(&t, 4, 40960, 2); /* the extended partition as the kernel shows it */
	assert_int_equal(pm_table_find(&t, 4)->kind, PM_EXTENDED);
	expect_part(&t, 5, 40960 + 2048, 4096);
	expect_part(&t, 6, 40960 + 12288 + 2048, 4096);
	expect_part(&t, 7, 40960 + 20480 + 2048, 4096);
	assert_int_equal(pm_table_find(&t, 7)->container, 4);
	assert_int_equal(pm_table_find(&t, 7)->dos_type, 0x07);
	assert_null(pm_table_find(&t, 3));
	pm_table_free(&t);
	img_free(&im);
}

static void test_dos_4k(void **state)
{
	(void)state;
	struct img im = dos_sample(4096);
	struct pm_table t;

	/* given the sector size, and guessed from the image */
	assert_int_equal(probe(&im, 4096, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 6);
	expect_part(&t, 4, 40960, 8); /* one logical sector */
	expect_part(&t, 6, 40960 + 12288 + 2048, 4096);
	pm_table_free(&t);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_int_equal(t.sector_size, 4096);
	expect_part(&t, 7, 40960 + 20480 + 2048, 4096);
	pm_table_free(&t);
	img_free(&im);
}

static void test_dos_empty_ebr_slot_takes_no_number(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;

	img_dos(&im, 0, 0, 0, 0x05, 2048, 20000);
	/* first EBR: no data partition, only a link */
	img_dos(&im, 2048 * 512, 1, 0, 0x05, 4096, 8000);
	img_dos(&im, (2048 + 4096) * 512ull, 0, 0, 0x83, 64, 1000);
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	expect_part(&t, 5, 2048 + 4096 + 64, 1000);
	assert_null(pm_table_find(&t, 6));
	pm_table_free(&t);
	img_free(&im);
}

static void test_dos_chain_cycle(void **state)
{
	(void)state;
	struct img im = img_new(8 * MiB);
	struct pm_table t;

	img_dos(&im, 0, 0, 0, 0x0f, 2048, 8192);
	/* EBR A -> EBR B -> EBR A ... */
	img_dos(&im, 2048 * 512, 0, 0, 0x83, 16, 100);
	img_dos(&im, 2048 * 512, 1, 0, 0x05, 1000, 1000);
	img_dos(&im, 3048 * 512, 0, 0, 0x83, 16, 100);
	img_dos(&im, 3048 * 512, 1, 0, 0x05, 0, 1000);
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 3);
	expect_part(&t, 5, 2048 + 16, 100);
	expect_part(&t, 6, 3048 + 16, 100);
	assert_true(has_warning(&t, "loops back"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_dos_chain_10000_links(void **state)
{
	(void)state;
	const unsigned links = 10000;
	struct img im = img_new((2048 + 2ull * links + 64) * 512);
	struct pm_table t;

	img_dos(&im, 0, 0, 0, 0x05, 2048, 2 * links + 16);
	for (unsigned i = 0; i < links; i++) {
		uint64_t at = (2048 + 2ull * i) * 512;
		img_dos(&im, at, 0, 0, 0x83, 1, 1);
		if (i + 1 < links)
			img_dos(&im, at, 1, 0, 0x05, 2 * (i + 1), 2);
	}
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	/* listed up to the cap (the extended partition, then logicals 5 to 4096), with a warning */
	assert_int_equal(t.nparts, 1 + PM_MAX_PARTS - 4);
	expect_part(&t, 5, 2049, 1);
	expect_part(&t, PM_MAX_PARTS, 2048 + 2 * (PM_MAX_PARTS - 5) + 1, 1);
	assert_null(pm_table_find(&t, PM_MAX_PARTS + 1));
	assert_int_equal(t.nwarnings, 1);
	assert_non_null(strstr(t.warnings[0], "more than 4096 partitions"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_dos_boot_indicator(void **state)
{
	(void)state;
	struct img im = img_new(MiB);
	struct pm_table t;

	img_dos(&im, 0, 0, 0x12, 0x83, 2048, 100); /* a FAT boot sector's code, not a table */
	assert_int_equal(probe(&im, 512, false, &t), PM_NOTFOUND);
	assert_int_equal(t.nparts, 0);
	pm_table_free(&t);
	img_free(&im);
}

static void test_end_of_device(void **state)
{
	(void)state;
	struct img im = img_new(MiB); /* 2048 sectors */
	struct pm_table t;

	img_dos(&im, 0, 0, 0, 0x83, 100, 100);
	img_dos(&im, 0, 1, 0, 0x83, 1000, 5000);             /* runs past: truncated */
	img_dos(&im, 0, 2, 0, 0x83, 4096, 10);               /* starts past: dropped */
	img_dos(&im, 0, 3, 0, 0x83, 0xfffffff0u, 0x100);     /* start+size beyond 32 bits */
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 2);
	expect_part(&t, 1, 100, 100);
	expect_part(&t, 2, 1000, 1048);
	assert_true(pm_table_find(&t, 2)->flags & PM_PF_TRUNCATED);
	assert_true(has_warning(&t, "truncated"));
	assert_true(has_warning(&t, "dropped"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_tiny_disks(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 0, 1, 511, 512, 1023 };
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct img im = img_new(sizes[i]);
		struct pm_table t;
		if (sizes[i] >= 512)
			img_dos(&im, 0, 0, 0, 0x83, 1, 100);
		int r = probe(&im, 0, false, &t);
		assert_true(r == PM_NOTFOUND || r == PM_FOUND);
		/* nothing may lie outside the device */
		for (size_t k = 0; k < t.nparts; k++)
			assert_true(t.parts[k].start + t.parts[k].size <= sizes[i] / 512);
		pm_table_free(&t);
		img_free(&im);
	}
}

static struct img gpt_sample(unsigned ssz, uint64_t size)
{
	struct img im = img_new(size);
	struct gpt_ent e[] = {
		{ .index = 2, .first = 2048 * 512 / ssz, .last = 4095 * 512 / ssz, .type = 0xaf, .name = "three" },
		{ .index = 99, .first = 8192 * 512 / ssz, .last = 16383 * 512 / ssz, .type = 0x11, .name = "hundred" },
	};
	img_gpt(&im, ssz, e, 2, 128, 0);
	return im;
}

static void test_gpt_gaps(void **state)
{
	(void)state;
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;

	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "gpt");
	assert_int_equal(t.nparts, 2);
	expect_part(&t, 3, 2048, 2048);
	expect_part(&t, 100, 8192, 8192);
	assert_string_equal(pm_table_find(&t, 3)->label, "three");
	assert_int_equal(t.nwarnings, 0);
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_4k(void **state)
{
	(void)state;
	struct img im = gpt_sample(4096, 32 * MiB);
	struct pm_table t;

	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND); /* guessed from where the header is */
	assert_int_equal(t.sector_size, 4096);
	expect_part(&t, 3, 2048, 2048);
	expect_part(&t, 100, 8192, 8192);
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_backup_used(void **state)
{
	(void)state;
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;

	im.data[512 + 30] ^= 0xff;  /* my_lba: header CRC now wrong */
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	expect_part(&t, 100, 8192, 8192);
	assert_true(has_warning(&t, "using the backup"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_both_bad(void **state)
{
	(void)state;
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;

	im.data[512 + 30] ^= 0xff;
	im.data[im.size - 512 + 30] ^= 0xff;
	assert_int_equal(probe(&im, 0, false, &t), -EBADMSG);
	assert_string_equal(t.type, "gpt");
	assert_non_null(strstr(t.error, "CRC"));
	assert_int_equal(t.nparts, 0);
	pm_table_free(&t);
	img_free(&im);
}

/* corrupt a field of both headers (fixing their CRCs), expect damage */
static void both_headers_field(uint64_t off, uint32_t v32, const char *why)
{
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;
	uint64_t last = im.size / 512 - 1;

	put_le32(im.data + 512 + off, v32);
	put_le32(im.data + last * 512 + off, v32);
	img_gpt_fix_header_crc(&im, 512, 1);
	img_gpt_fix_header_crc(&im, 512, last);
	assert_int_equal(probe(&im, 0, false, &t), -EBADMSG);
	if (!strstr(t.error, why))
		fail_msg("error '%s' does not say '%s'", t.error, why);
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_absurd_headers(void **state)
{
	(void)state;
	both_headers_field(12, 0xffffffffu, "header size");  /* header_size */
	both_headers_field(12, 20, "header size");
	both_headers_field(80, 0xffffffffu, "entry count");  /* nentries */
	both_headers_field(80, 0, "entry count");
	both_headers_field(84, 0x80000000u, "entry size");   /* entry size */
	both_headers_field(84, 100, "entry size");
	both_headers_field(72, 0xfffff000u, "past the end"); /* entry array LBA (low word) */
}

static void test_gpt_array_past_end(void **state)
{
	(void)state;
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;
	uint64_t last = im.size / 512 - 1;

	/* 130000 entries of 128 bytes = 16.6 MB: more than the device */
	put_le32(im.data + 512 + 80, 130000);
	put_le32(im.data + last * 512 + 80, 130000);
	img_gpt_fix_header_crc(&im, 512, 1);
	img_gpt_fix_header_crc(&im, 512, last);
	assert_int_equal(probe(&im, 0, false, &t), -EBADMSG);
	assert_non_null(strstr(t.error, "past the end"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_bad_entries(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	struct gpt_ent e[] = {
		{ .index = 0, .first = 4000, .last = 3000, .type = 1 },                  /* end before start */
		{ .index = 1, .first = 1ull << 62, .last = UINT64_MAX, .type = 2 },      /* beyond 64 bits */
		{ .index = 2, .first = 30000, .last = 40000, .type = 3 },                /* runs past the end */
		{ .index = 3, .first = 10, .last = 20, .type = 4 },                      /* outside usable range */
		{ .index = 4, .first = 2048, .last = 2048, .type = 5 },
	};
	img_gpt(&im, 512, e, ARRAY_SIZE(e), 128, 0);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 3);
	expect_part(&t, 3, 30000, 32768 - 30000);
	expect_part(&t, 4, 10, 11);
	expect_part(&t, 5, 2048, 1);
	assert_true(has_warning(&t, "before it starts"));
	assert_true(has_warning(&t, "usable range"));
	assert_true(has_warning(&t, "dropped"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_needs_pmbr(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	struct gpt_ent e[] = { { .index = 0, .first = 2048, .last = 4095, .type = 1 } };

	img_gpt(&im, 512, e, 1, 128, 1);
	assert_int_equal(probe(&im, 0, false, &t), PM_NOTFOUND);
	assert_true(has_warning(&t, "-g"));
	pm_table_free(&t);
	assert_int_equal(probe(&im, 0, true, &t), PM_FOUND);
	expect_part(&t, 1, 2048, 2048);
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_hybrid_mbr(void **state)
{
	(void)state;
	struct img im = gpt_sample(512, 16 * MiB);
	struct pm_table t;

	img_dos(&im, 0, 1, 0x80, 0x0c, 2048, 2048); /* a hybrid slot: GPT still wins */
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "gpt");
	assert_int_equal(t.nparts, 2);
	pm_table_free(&t);
	img_free(&im);
}

static void test_gpt_grown_image(void **state)
{
	(void)state;
	struct img small = gpt_sample(512, 16 * MiB);
	struct img im = img_new(32 * MiB);
	struct pm_table t;

	memcpy(im.data, small.data, small.size);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_true(has_warning(&t, "not at the end"));
	expect_part(&t, 100, 8192, 8192);
	pm_table_free(&t);
	img_free(&small);
	img_free(&im);
}

static void test_gpt_4096_entries(void **state)
{
	(void)state;
	enum { N = 4096 };
	struct img im = img_new(64 * MiB);
	static struct gpt_ent e[N];
	struct pm_table t;

	for (unsigned i = 0; i < N; i++)
		e[i] = (struct gpt_ent){ .index = i, .first = 2048 + 16ull * i, .last = 2048 + 16ull * i + 15, .type = 7 };
	img_gpt(&im, 512, e, N, N, 0);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, N);
	expect_part(&t, N, 2048 + 16ull * (N - 1), 16);
	pm_table_free(&t);
	img_free(&im);
}

static void test_nested_bsd(void **state)
{
	(void)state;
	struct img im = dos_sample(512);
	struct pm_table t;
	uint8_t *l;

	img_dos(&im, 0, 2, 0, 0xa5, 20480, 16384); /* FreeBSD slice in slot 3 */
	l = im.data + (20480 + 1) * 512ull;
	put_le32(l, 0x82564557u);
	put_le16(l + 138, 3);
	/* a: inside; b: the whole slot (skipped); c offset 0 => relative offsets */
	put_le32(l + 148, 4096);
	put_le32(l + 148 + 4, 1024);
	l[148 + 12] = 7;
	put_le32(l + 164, 16384);
	put_le32(l + 164 + 4, 0);
	l[164 + 12] = 7;
	put_le32(l + 180, 16384);
	put_le32(l + 180 + 4, 0);
	l[180 + 12] = 0;
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	/* after the three logicals 5,6,7: the BSD slices get 8 and 9 */
	expect_part(&t, 3, 20480, 16384);
	expect_part(&t, 8, 20480 + 1024, 4096);
	assert_null(pm_table_find(&t, 9));
	assert_int_equal(pm_table_find(&t, 8)->container, 3);
	assert_int_equal(pm_table_find(&t, 8)->kind, PM_NESTED);
	pm_table_free(&t);
	img_free(&im);
}

static void test_bsd_absurd_counts(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	uint8_t *l = im.data + 64;

	/* a label at byte 64 claiming 65535 partitions is no label for the kernel's osf reader */
	put_le32(l, 0x82564557u);
	put_le32(l + 132, 0x82564557u);
	put_le16(l + 138, 65535);
	put_le32(l + 148, 100);
	put_le32(l + 152, 2048);
	assert_int_equal(probe(&im, 512, false, &t), PM_NOTFOUND);
	pm_table_free(&t);
	/* ... nor is one without the second magic */
	put_le16(l + 138, 1);
	put_le32(l + 132, 0);
	assert_int_equal(probe(&im, 512, false, &t), PM_NOTFOUND);
	pm_table_free(&t);
	img_free(&im);

	/* a label at sector 1 claiming 65535: the 22 slices a sector holds are read, with a warning */
	im = img_new(16 * MiB);
	l = im.data + 512;
	put_le32(l, 0x82564557u);
	put_le16(l + 138, 65535);
	put_le32(l + 148, 100);
	put_le32(l + 152, 2048);
	l[148 + 12] = 7;
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 1);
	expect_part(&t, 1, 2048, 100);
	assert_true(has_warning(&t, "only the first 22"));
	pm_table_free(&t);
	img_free(&im);

	/* nested FreeBSD label claiming 1000 partitions: 16 read at most */
	im = img_new(16 * MiB);
	img_dos(&im, 0, 0, 0, 0xa5, 2048, 8192);
	l = im.data + (2048 + 1) * 512ull;
	put_le32(l, 0x82564557u);
	put_le16(l + 138, 1000);
	for (int i = 0; i < 20 && 148 + 16 * (i + 1) <= 512; i++) {
		put_le32(l + 148 + 16 * i, 8);
		put_le32(l + 148 + 16 * i + 4, 2048 + 8 + 8 * (uint32_t)i);
		l[148 + 16 * i + 12] = 7;
	}
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 1 + 16);
	assert_true(has_warning(&t, "only the first 16"));
	pm_table_free(&t);
	img_free(&im);
}

/* slice i: size, offset, fstype */
static void bsd_slice(uint8_t *l, int i, uint32_t size, uint32_t off, uint8_t fstype)
{
	put_le32(l + 148 + 16 * i, size);
	put_le32(l + 148 + 16 * i + 4, off);
	l[148 + 16 * i + 12] = fstype;
}

/* Whole-device labels: at byte 64 numbered slot by slot as the kernel's osf reader numbers them (an
 * empty slot keeps its number; an unused fstype with a size is listed); at sector 1 (no kernel
 * reader) numbered 1, 2, ... skipping unused slices, as kpartx and partx number them. */
static void test_bsd_whole_numbering(void **state)
{
	(void)state;
	for (int at = 0; at < 2; at++) {
		struct img im = img_new(16 * MiB);
		struct pm_table t;
		uint8_t *l = im.data + (at ? 512 : 64);

		put_le32(l, 0x82564557u);
		put_le32(l + 132, 0x82564557u);
		put_le16(l + 138, 4);
		bsd_slice(l, 0, 100, 100, 7);
		bsd_slice(l, 1, 0, 0, 0);
		bsd_slice(l, 2, 50, 300, 0);
		bsd_slice(l, 3, 60, 400, 7);
		assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
		assert_string_equal(t.type, "bsd");
		if (!at) {
			assert_int_equal(t.nparts, 3);
			expect_part(&t, 1, 100, 100);
			expect_part(&t, 3, 300, 50);
			expect_part(&t, 4, 400, 60);
		} else {
			assert_int_equal(t.nparts, 2);
			expect_part(&t, 1, 100, 100);
			expect_part(&t, 2, 400, 60);
		}
		pm_table_free(&t);
		img_free(&im);
	}
}

static void test_nested_solaris(void **state)
{
	(void)state;
	struct img im = img_new(32 * MiB);
	struct pm_table t;
	uint8_t *v;

	img_dos(&im, 0, 0, 0, 0x82, 2048, 4096);  /* Linux swap: no VTOC, nothing nested */
	img_dos(&im, 0, 1, 0, 0xbf, 8192, 16384); /* Solaris */
	v = im.data + (8192 + 1) * 512ull;
	put_le32(v + 12, 0x600DDEEEu);
	put_le32(v + 16, 1);
	put_le16(v + 30, 8);
	put_le32(v + 72 + 12 * 0 + 4, 0);
	put_le32(v + 72 + 12 * 0 + 8, 16384);
	put_le32(v + 72 + 12 * 3 + 4, 100);
	put_le32(v + 72 + 12 * 3 + 8, 200);
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_int_equal(t.nparts, 4);
	expect_part(&t, 5, 8192, 16384);
	expect_part(&t, 6, 8292, 200);
	assert_string_equal(pm_table_find(&t, 6)->sublabel, "solaris");
	pm_table_free(&t);
	img_free(&im);
}

static void test_nested_unixware_minix(void **state)
{
	(void)state;
	struct img im = img_new(32 * MiB);
	struct pm_table t;
	uint8_t *l;

	img_dos(&im, 0, 0, 0, 0x63, 2048, 8192);
	l = im.data + (2048 + 29) * 512ull;
	put_le32(l + 4, 0xCA5E600Du);
	put_le32(l + 156, 0x600DDEEEu);
	put_le16(l + 216 + 12 * 1, 1);
	put_le32(l + 216 + 12 * 1 + 4, 3000);
	put_le32(l + 216 + 12 * 1 + 8, 500);
	img_dos(&im, 0, 1, 0, 0x81, 16384, 8192);
	img_dos(&im, 16384 * 512ull, 0, 0, 0x81, 16400, 100);
	img_dos(&im, 16384 * 512ull, 1, 0, 0x81, 17000, 100);
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	expect_part(&t, 5, 3000, 500);
	expect_part(&t, 6, 16400, 100);
	expect_part(&t, 7, 17000, 100);
	pm_table_free(&t);
	img_free(&im);
}

static void test_sun(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	uint8_t *l = im.data;

	put_be16(l + 436, 16); /* ntrks */
	put_be16(l + 438, 32); /* nsect: 512 sectors a cylinder */
	put_be32(l + 444 + 0, 1);
	put_be32(l + 444 + 4, 2048);
	put_be32(l + 444 + 16 + 0, 0);
	put_be32(l + 444 + 16 + 4, 32768); /* slot 3: whole disk */
	put_be16(l + 508, 0xDABE);
	img_sun_fix_csum(l);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "sun");
	expect_part(&t, 1, 512, 2048);
	expect_part(&t, 3, 0, 32768);
	pm_table_free(&t);
	l[100] ^= 1;
	assert_int_equal(probe(&im, 0, false, &t), -EBADMSG);
	assert_non_null(strstr(t.error, "checksum"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_sgi(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	uint8_t *l = im.data;

	put_be32(l, 0x0BE5A941u);
	put_be32(l + 312 + 12 * 0, 4096);
	put_be32(l + 312 + 12 * 0 + 4, 2048);
	put_be32(l + 312 + 12 * 8, 2048);
	put_be32(l + 312 + 12 * 8 + 4, 0);
	img_sgi_fix_csum(l);
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "sgi");
	expect_part(&t, 1, 2048, 4096);
	expect_part(&t, 9, 0, 2048);
	pm_table_free(&t);
	img_free(&im);
}

static void test_mac_absurd_count(void **state)
{
	(void)state;
	struct img im = img_new(MiB);
	struct pm_table t;

	put_be16(im.data, 0x4552);
	put_be16(im.data + 2, 512);
	for (int i = 1; i <= 3; i++) {
		uint8_t *e = im.data + 512 * i;
		put_be16(e, 0x504d);
		put_be32(e + 4, 0xffffffffu); /* absurd map count */
		put_be32(e + 8, (uint32_t)(100 * i));
		put_be32(e + 12, 50);
	}
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "mac");
	assert_int_equal(t.nparts, 3);
	expect_part(&t, 3, 300, 50);
	assert_true(has_warning(&t, "cannot fit"));
	pm_table_free(&t);
	img_free(&im);
}

static void test_atari(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;
	uint8_t *e = im.data + 0x1c6;

	e[0] = 1;
	memcpy(e + 1, "GEM", 3);
	put_be32(e + 4, 2);
	put_be32(e + 8, 2000);
	e += 12;
	e[0] = 1;
	memcpy(e + 1, "XGM", 3);
	put_be32(e + 4, 4000);
	put_be32(e + 8, 20000);
	/* extended root sectors: one partition each, linked */
	uint8_t *x = im.data + 4000 * 512ull + 0x1c6;
	x[0] = 1;
	memcpy(x + 1, "LNX", 3);
	put_be32(x + 4, 1);
	put_be32(x + 8, 1000);
	x[12] = 1;
	memcpy(x + 13, "XGM", 3);
	put_be32(x + 16, 2000);
	x = im.data + 6000 * 512ull + 0x1c6;
	x[0] = 1;
	memcpy(x + 1, "LNX", 3);
	put_be32(x + 4, 1);
	put_be32(x + 8, 500);
	assert_int_equal(probe(&im, 512, false, &t), PM_FOUND);
	assert_string_equal(t.type, "atari");
	expect_part(&t, 1, 2, 2000);
	expect_part(&t, 2, 4001, 1000);
	expect_part(&t, 3, 6001, 500);
	pm_table_free(&t);
	img_free(&im);
}

static void test_ps3(void **state)
{
	(void)state;
	struct img im = img_new(16 * MiB);
	struct pm_table t;

	put_be64(im.data + 16, 0x0FACE0FFull);
	put_be64(im.data + 24, 0xDEADFACEull);
	put_be64(im.data + 48 + 144 * 1, 1000);
	put_be64(im.data + 48 + 144 * 1 + 8, 2000);
	put_be64(im.data + 48 + 144 * 3, 5000);
	put_be64(im.data + 48 + 144 * 3 + 8, 1ull << 40); /* past the end: truncated */
	assert_int_equal(probe(&im, 0, false, &t), PM_FOUND);
	assert_string_equal(t.type, "ps3");
	expect_part(&t, 1, 1000, 2000);
	expect_part(&t, 2, 5000, 32768 - 5000);
	pm_table_free(&t);
	img_free(&im);
}

static void test_only_type(void **state)
{
	(void)state;
	struct img im = dos_sample(512);
	struct pm_table t;
	struct pm_disk d;
	struct pm_opts o = { .only = "gpt" };

	pm_disk_from_mem(&d, im.data, im.size, 512);
	assert_int_equal(pm_probe(&d, &o, &t), PM_NOTFOUND);
	pm_table_free(&t);
	o.only = "nonsense";
	assert_int_equal(pm_probe(&d, &o, &t), -EINVAL);
	pm_table_free(&t);
	img_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dos_logicals),
		cmocka_unit_test(test_dos_4k),
		cmocka_unit_test(test_dos_empty_ebr_slot_takes_no_number),
		cmocka_unit_test(test_dos_chain_cycle),
		cmocka_unit_test(test_dos_chain_10000_links),
		cmocka_unit_test(test_dos_boot_indicator),
		cmocka_unit_test(test_end_of_device),
		cmocka_unit_test(test_tiny_disks),
		cmocka_unit_test(test_gpt_gaps),
		cmocka_unit_test(test_gpt_4k),
		cmocka_unit_test(test_gpt_backup_used),
		cmocka_unit_test(test_gpt_both_bad),
		cmocka_unit_test(test_gpt_absurd_headers),
		cmocka_unit_test(test_gpt_array_past_end),
		cmocka_unit_test(test_gpt_bad_entries),
		cmocka_unit_test(test_gpt_needs_pmbr),
		cmocka_unit_test(test_gpt_hybrid_mbr),
		cmocka_unit_test(test_gpt_grown_image),
		cmocka_unit_test(test_gpt_4096_entries),
		cmocka_unit_test(test_nested_bsd),
		cmocka_unit_test(test_bsd_absurd_counts),
		cmocka_unit_test(test_bsd_whole_numbering),
		cmocka_unit_test(test_nested_solaris),
		cmocka_unit_test(test_nested_unixware_minix),
		cmocka_unit_test(test_sun),
		cmocka_unit_test(test_sgi),
		cmocka_unit_test(test_mac_absurd_count),
		cmocka_unit_test(test_atari),
		cmocka_unit_test(test_ps3),
		cmocka_unit_test(test_only_type),
	};
	return cmocka_run_group_tests_name("tables", tests, NULL, NULL);
}
