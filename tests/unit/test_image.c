/* Unit tests of the image layer on images built in memory (imgfmt.c) and written to a temporary
 * folder: each format's reads, and the hostile cases (tables and clusters past the end, absurd
 * sizes and counts, compressed data of the wrong length, loops, unreplayed logs). */
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

#include "disk.h"
#include "image/image.h"
#include "imgfmt.h"
#include "ptable.h"
#include "util.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return img_dir_make(dir, sizeof(dir), "pm-image-test");
}

static int teardown(void **state)
{
	(void)state;
	return img_dir_remove(dir);
}

static const char *save(const char *name, const struct img *im)
{
	const char *p = img_save(dir, name, im);
	assert_non_null(p);
	return p;
}

static int open_img(const char *path, struct pm_image **img, struct pm_image_diag *d)
{
	return pm_image_open(img, path, NULL, d);
}

static bool filled(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- qcow2 ---- */

static void test_qcow2_reads(void **state)
{
	(void)state;
	struct img im = q2_new(2);
	uint8_t buf[3 * 512];
	struct pm_image *img;
	struct pm_image_diag d;

	memset(im.data + Q2_DATA, 0xa1, 512);
	memset(im.data + Q2_DATA + 512, 0xb2, 512);
	q2_set(&im, 0, Q2_DATA | (1ull << 63));
	q2_set(&im, 1, 1); /* zero cluster */
	q2_set(&im, 2, Q2_DATA + 512);
	/* cluster 3 unallocated: zeros without a backing file */
	assert_int_equal(open_img(save("a.qcow2", &im), &img, &d), 0);
	assert_string_equal(pm_image_format(img), "qcow2");
	assert_int_equal(pm_image_size(img), 32768);
	assert_int_equal(pm_image_read(img, 0, buf, sizeof(buf)), 0);
	assert_true(filled(buf, 512, 0xa1));
	assert_true(filled(buf + 512, 512, 0));
	assert_true(filled(buf + 1024, 512, 0xb2));
	assert_int_equal(pm_image_read(img, 32768 - 512, buf, 512), 0);
	assert_true(filled(buf, 512, 0));
	assert_int_equal(pm_image_read(img, 32768 - 511, buf, 512), -ERANGE);
	uint64_t len;
	assert_int_equal(pm_image_extent(img, 0, 32768, &len), PM_IMG_DATA);
	assert_int_equal(len, 512);
	assert_int_equal(pm_image_extent(img, 512, 32768 - 512, &len), PM_IMG_ZERO);
	pm_image_close(img);

	/* the sector reader over it: a DOS table inside the virtual disk is found */
	memset(im.data + Q2_DATA, 0, 512);
	img_dos(&(struct img){ im.data + Q2_DATA, 512 }, 0, 0, 0, 0x83, 4, 32);
	assert_int_equal(open_img(save("t.qcow2", &im), &img, &d), 0);
	struct pm_disk disk;
	struct pm_table t;
	struct pm_opts o = { 0 };
	pm_disk_from_image(&disk, img);
	assert_int_equal(pm_probe(&disk, &o, &t), PM_FOUND);
	assert_int_equal(t.nparts, 1);
	assert_int_equal(t.parts[0].start, 4);
	pm_table_free(&t);
	pm_disk_close(&disk);
	pm_image_close(img);
	img_free(&im);
}

static void test_qcow2_compressed(void **state)
{
	(void)state;
	uint8_t plain[1024], z[2048], buf[512];
	struct pm_image *img;
	struct pm_image_diag d;

	for (int i = 0; i < 1024; i++)
		plain[i] = (uint8_t)(i * 7);
	size_t zl = deflate_raw(plain, 512, z, sizeof(z));
	struct img im = q2_new(4);
	memcpy(im.data + Q2_DATA + 3, z, zl); /* compressed data need not be aligned */
	q2_set(&im, 0, q2_compressed(Q2_DATA + 3, (zl + 3) / 512));
	assert_int_equal(open_img(save("c.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), 0);
	assert_memory_equal(buf, plain, 512);
	pm_image_close(img);

	/* inflates to less than a cluster */
	zl = deflate_raw(plain, 300, z, sizeof(z));
	memset(im.data + Q2_DATA, 0, 4 * 512);
	memcpy(im.data + Q2_DATA, z, zl);
	q2_set(&im, 0, q2_compressed(Q2_DATA, 0));
	assert_int_equal(open_img(save("c2.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	pm_image_close(img);

	/* inflates to more than a cluster */
	zl = deflate_raw(plain, 1024, z, sizeof(z));
	memcpy(im.data + Q2_DATA, z, zl);
	q2_set(&im, 0, q2_compressed(Q2_DATA, 2));
	assert_int_equal(open_img(save("c3.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	pm_image_close(img);

	/* compressed data past the end of the file; garbage */
	q2_set(&im, 0, q2_compressed(1 << 20, 3));
	memset(im.data + Q2_DATA, 0xee, 512);
	q2_set(&im, 1, q2_compressed(Q2_DATA, 0));
	assert_int_equal(open_img(save("c4.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	assert_int_equal(pm_image_read(img, 512, buf, 512), -EIO);
	pm_image_close(img);
	img_free(&im);
}

static void test_qcow2_hostile_tables(void **state)
{
	(void)state;
	uint8_t buf[512];
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	struct img im = q2_new(1);

	/* a data cluster past the end of the file, an unaligned L2 table */
	q2_set(&im, 0, 1ull << 40);
	assert_int_equal(open_img(save("h.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	pm_image_close(img);
	put_be64(im.data + Q2_L1, Q2_L2 + 8);
	assert_int_equal(open_img(save("h2.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	pm_image_close(img);
	put_be64(im.data + Q2_L1, 1ull << 40); /* L2 past the end */
	assert_int_equal(open_img(save("h3.qcow2", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 512), -EIO);
	pm_image_close(img);
	put_be64(im.data + Q2_L1, Q2_L2);

	/* header fields: each refused at open with a message, nothing allocated after them */
	struct {
		unsigned off, width;
		uint64_t value;
		const char *msg;
	} bad[] = {
		{ 20, 4, 30, "cluster bits 30" },
		{ 36, 4, 0x10000000, "too large" },
		{ 36, 4, 0, "too small" },
		{ 40, 8, 1ull << 40, "outside the file" },
		{ 24, 8, UINT64_MAX, "too large" },
		{ 24, 8, 1ull << 62, "too small" },
		{ 4, 4, 4, "version 4" },
		{ 32, 4, 1, "AES" },
		{ 100, 4, 1 << 20, "header length" },
		{ 16, 4, 5000, "backing file name length" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct img b = q2_new(1);
		if (bad[i].off == 16)
			put_be64(b.data + 8, 200);
		if (bad[i].width == 4)
			put_be32(b.data + bad[i].off, (uint32_t)bad[i].value);
		else
			put_be64(b.data + bad[i].off, bad[i].value);
		img = NULL;
		if (open_img(save("bad.qcow2", &b), &img, &d) >= 0)
			fail_msg("case %zu (%s) opened", i, bad[i].msg);
		assert_null(img);
		if (!strstr(d.error, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, d.error, bad[i].msg);
		img_free(&b);
	}
	img_free(&im);
}

static void test_qcow2_unknown_feature_named(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	struct img im = q2_new(1);

	put_be64(im.data + 72, 1ull << 9);
	/* a feature name table extension after the header: type 0 (incompatible), bit 9 */
	put_be32(im.data + 104, 0x6803f857);
	put_be32(im.data + 108, 48);
	im.data[112] = 0;
	im.data[113] = 9;
	strcpy((char *)im.data + 114, "frobnication");
	assert_int_equal(open_img(save("f.qcow2", &im), &img, &d), -ENOTSUP);
	assert_non_null(strstr(d.error, "bit 9, \"frobnication\""));
	img_free(&im);
}

static void test_qcow2_backing_loop_and_missing(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	struct img im = q2_new(1);

	put_be64(im.data + 8, 400);
	put_be32(im.data + 16, 9);
	memcpy(im.data + 400, "self.qcow", 9);
	save("self.qcow", &im);
	assert_int_equal(open_img(save("self.qcow", &im), &img, &d), -ELOOP);
	assert_non_null(strstr(d.error, "loops"));
	memcpy(im.data + 400, "gone.raw\0", 9);
	put_be32(im.data + 16, 8);
	assert_int_equal(open_img(save("m.qcow2", &im), &img, &d), -ENOENT);
	assert_non_null(strstr(d.error, "gone.raw"));
	img_free(&im);
}

/* ---- VMDK ---- */

static void test_vmdk_descriptors(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[512];
	char *text = malloc(2 << 20);
	struct img im;

	/* a ZERO extent as large as 2^63 bytes less a sector: opens, reads zeros at its end */
	strcpy(text, "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 18014398509481983 ZERO\n");
	im = (struct img){ (uint8_t *)text, strlen(text) };
	assert_int_equal(open_img(save("z.vmdk", &im), &img, &d), 0);
	assert_int_equal(pm_image_size(img), 18014398509481983ull * 512);
	assert_int_equal(pm_image_read(img, pm_image_size(img) - 512, buf, 512), 0);
	assert_true(filled(buf, 512, 0));
	pm_image_close(img);
	/* extents adding up past 2^63 */
	strcat(text, "RW 2 ZERO\n");
	im.size = strlen(text);
	assert_true(open_img(save("z2.vmdk", &im), &img, &d) < 0);
	/* an absurd extent list: refused with its limit, no crash */
	strcpy(text, "# Disk DescriptorFile\nversion=1\n");
	for (int i = 0; i < 5000; i++)
		strcat(text + strlen(text) - 1, "\nRW 1 ZERO");
	strcat(text, "\n");
	im.size = strlen(text);
	assert_int_equal(open_img(save("many.vmdk", &im), &img, &d), -E2BIG);
	assert_non_null(strstr(d.error, "4096"));
	/* a device-backed extent, an extent with no file, none at all */
	const char *refused[] = {
		"# Disk DescriptorFile\nRW 100 VMFSRDM \"/dev/sda\"\n",
		"# Disk DescriptorFile\nRW 100 FLAT\n",
		"# Disk DescriptorFile\nversion=1\n",
		"# Disk DescriptorFile\nRW 100 FLAT \"short.bin\" 0\n",
	};
	struct img shortf = img_new(1000);
	save("short.bin", &shortf);
	img_free(&shortf);
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		strcpy(text, refused[i]);
		im.size = strlen(text);
		img = NULL;
		assert_true(open_img(save("r.vmdk", &im), &img, &d) < 0);
		assert_null(img);
		assert_true(d.error[0] != 0);
	}
	/* a descriptor over 1 MiB */
	memset(text, ' ', 2 << 20);
	memcpy(text, "# Disk DescriptorFile\n", 22);
	im.size = 2 << 20;
	assert_int_equal(open_img(save("big.vmdk", &im), &img, &d), -EINVAL);
	free(text);
}

static struct img kdmv(uint64_t capacity, uint32_t gtes, uint64_t gd_sector)
{
	struct img im = img_new(4096);
	put_le32(im.data, 0x564d444b);
	put_le32(im.data + 4, 1);
	put_le32(im.data + 8, 3);
	put_le64(im.data + 12, capacity);
	put_le64(im.data + 20, 8); /* 4 KiB grains */
	put_le32(im.data + 44, gtes);
	put_le64(im.data + 56, gd_sector);
	memcpy(im.data + 73, "\n \r\n", 4);
	return im;
}

static void test_vmdk_sparse_hostile(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[512];

	/* GD at sector 2 with one entry -> GT at sector 3 -> grain at sector 4 (zero-grain GTE at 1) */
	struct img im = kdmv(64, 512, 2);
	put_le32(im.data + 1024, 3);
	put_le32(im.data + 1536, 4);
	put_le32(im.data + 1536 + 4, 1);
	put_le32(im.data + 1536 + 8, 1u << 30); /* grain far past the end */
	img_grow(&im, 2048 + 4096);
	memset(im.data + 2048, 0x5a, 4096);
	assert_int_equal(open_img(save("s.vmdk", &im), &img, &d), 0);
	assert_int_equal(pm_image_size(img), 64 * 512);
	assert_int_equal(pm_image_read(img, 0, buf, 512), 0);
	assert_true(filled(buf, 512, 0x5a));
	assert_int_equal(pm_image_read(img, 4096, buf, 512), 0);
	assert_true(filled(buf, 512, 0));
	assert_int_equal(pm_image_read(img, 8192, buf, 512), -EIO);
	pm_image_close(img);
	img_free(&im);

	struct {
		uint64_t cap;
		uint32_t gtes;
		uint64_t gd;
	} bad[] = {
		{ 64, 0, 2 }, { 64, 100000, 2 }, { 64, 512, 1ull << 40 }, { 1ull << 50, 512, 2 }, { 64, 512, UINT64_MAX - 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		im = kdmv(bad[i].cap, bad[i].gtes, bad[i].gd);
		img = NULL;
		assert_true(open_img(save("b.vmdk", &im), &img, &d) < 0);
		assert_null(img);
		img_free(&im);
	}
	/* a damaged newline test (a file sent through FTP in text mode) */
	im = kdmv(64, 512, 2);
	im.data[75] = '\n';
	assert_int_equal(open_img(save("nl.vmdk", &im), &img, &d), -EINVAL);
	assert_non_null(strstr(d.error, "newline"));
	img_free(&im);
}

/* ESXi's vmfsSparse delta (COWD) over a VMFS flat base, both through descriptors: a grain of the
 * delta, then the base's bytes where the delta has none */
static void test_vmdk_vmfs_sparse(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[8192];
	struct img base = img_new(64 * 512);
	memset(base.data, 0x44, base.size);
	save("base-flat.vmdk", &base);
	img_free(&base);
	const char *bd = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\n"
			 "RW 64 VMFS \"base-flat.vmdk\"\n";
	struct img t = { (uint8_t *)bd, strlen(bd) };
	save("base.vmdk", &t);

	struct img c = img_new(40 * 512 + 4096);
	memcpy(c.data, "COWD", 4);
	put_le32(c.data + 4, 1);
	put_le32(c.data + 8, 3);
	put_le32(c.data + 12, 64);   /* disk sectors */
	put_le32(c.data + 16, 8);    /* grain: 8 sectors */
	put_le32(c.data + 20, 4);    /* grain directory at sector 4 */
	put_le32(c.data + 24, 1);    /* one entry */
	put_le32(c.data + 4 * 512, 8); /* its grain table at sector 8 (4096 entries) */
	put_le32(c.data + 8 * 512, 40); /* grain 0 at sector 40; grain 1 not here */
	memset(c.data + 40 * 512, 0x33, 4096);
	save("delta-delta.vmdk", &c);
	img_free(&c);
	const char *dd = "# Disk DescriptorFile\nversion=1\nCID=2\nparentCID=1\ncreateType=\"vmfsSparse\"\n"
			 "parentFileNameHint=\"base.vmdk\"\nRW 64 VMFSSPARSE \"delta-delta.vmdk\"\n";
	t = (struct img){ (uint8_t *)dd, strlen(dd) };
	assert_int_equal(open_img(save("delta.vmdk", &t), &img, &d), 0);
	assert_int_equal(pm_image_size(img), 64 * 512);
	assert_int_equal(pm_image_read(img, 0, buf, sizeof(buf)), 0);
	assert_true(filled(buf, 4096, 0x33));
	assert_true(filled(buf + 4096, 4096, 0x44));
	struct pm_image_layer l[4];
	assert_int_equal(pm_image_layers(img, l, 4), 2);
	assert_string_equal(l[0].subformat, "vmfsSparse");
	assert_string_equal(l[1].subformat, "vmfs");
	pm_image_close(img);
}

/* ---- VHD ---- */

static void test_vhd_differencing(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[3 * 4096];

	struct img p = vhd_new(4, UUID_P, NULL, NULL);
	uint64_t b0 = vhd_alloc(&p, 0), b1 = vhd_alloc(&p, 1);
	memset(p.data + b0, 0x10, 4096);
	memset(p.data + b1, 0x11, 4096);
	vhd_finish(&p);
	save("parent.vhd", &p);

	struct img c = vhd_new(4, UUID_C, UUID_P, "parent.vhd");
	uint64_t c1 = vhd_alloc(&c, 1);
	memset(c.data + c1, 0xc1, 4096);
	c.data[c1 - 512] = 0xf0; /* sectors 0-3 of block 1 here, 4-7 from the parent */
	uint64_t c2 = vhd_alloc(&c, 2);
	memset(c.data + c2, 0xc2, 4096);
	vhd_finish(&c);
	assert_int_equal(open_img(save("child.vhd", &c), &img, &d), 0);
	assert_int_equal(d.nwarnings, 0);
	assert_int_equal(pm_image_read(img, 0, buf, sizeof(buf)), 0);
	assert_true(filled(buf, 4096, 0x10));            /* block 0: the parent's */
	assert_true(filled(buf + 4096, 2048, 0xc1));     /* block 1: first half here */
	assert_true(filled(buf + 6144, 2048, 0x11));     /* second half the parent's */
	assert_true(filled(buf + 8192, 4096, 0xc2));
	assert_int_equal(pm_image_read(img, 3 * 4096, buf, 4096), 0);
	assert_true(filled(buf, 4096, 0));               /* nowhere: zeros */
	struct pm_image_layer l[4];
	assert_int_equal(pm_image_layers(img, l, 4), 2);
	assert_string_equal(l[0].subformat, "differencing");
	pm_image_close(img);

	/* the parent's identity is checked */
	memcpy(c.data + 512 + 40, UUID_C, 16);
	vhd_finish(&c);
	c.size -= 512;
	assert_int_equal(open_img(save("wrong.vhd", &c), &img, &d), -EINVAL);
	assert_non_null(strstr(d.error, "unique id"));
	img_free(&c);

	/* a checksum mismatch is read with a warning; a BAT entry past the end is an I/O error */
	p.data[p.size - 512 + 64] ^= 1;
	put_be32(p.data + 1536 + 8, 0x7fffffff);
	assert_int_equal(open_img(save("warn.vhd", &p), &img, &d), 0);
	assert_int_equal(d.nwarnings, 1);
	assert_non_null(strstr(d.warnings[0], "checksum"));
	assert_int_equal(pm_image_read(img, 2 * 4096, buf, 512), -EIO);
	pm_image_close(img);
	/* a block table outside the file */
	put_be64(p.data + p.size - 512 + 16, 1ull << 40);
	put_be64(p.data + 16, 1ull << 40);
	assert_true(open_img(save("bat.vhd", &p), &img, &d) < 0);
	img_free(&p);
}

/* ---- VHDX ---- */

static void test_vhdx(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t *buf = malloc(3 << 20);
	uint8_t bitmap[256];

	struct img p = vhdx_new(3, DWG_P, NULL, NULL);
	uint64_t at = vhdx_alloc(&p, 0, NULL);
	memset(p.data + at, 0x20, 1 << 20);
	at = vhdx_alloc(&p, 1, NULL);
	memset(p.data + at, 0x21, 1 << 20);
	assert_int_equal(open_img(save("parent.vhdx", &p), &img, &d), 0);
	assert_int_equal(pm_image_size(img), 3 << 20);
	assert_int_equal(pm_image_read(img, 0, buf, 3 << 20), 0);
	assert_true(filled(buf, 1 << 20, 0x20));
	assert_true(filled(buf + (2 << 20), 1 << 20, 0));
	pm_image_close(img);

	struct img c = vhdx_new(3, DWG_C, DWG_P, "parent.vhdx");
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[0] = 0x0f; /* sectors 0-3 of block 1 here, the rest from the parent */
	at = vhdx_alloc(&c, 1, bitmap);
	memset(c.data + at, 0xc1, 1 << 20);
	at = vhdx_alloc(&c, 2, NULL);
	memset(c.data + at, 0xc2, 1 << 20);
	assert_int_equal(open_img(save("child.vhdx", &c), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, 3 << 20), 0);
	assert_true(filled(buf, 1 << 20, 0x20));
	assert_true(filled(buf + (1 << 20), 2048, 0xc1));
	assert_true(filled(buf + (1 << 20) + 2048, (1 << 20) - 2048, 0x21));
	assert_true(filled(buf + (2 << 20), 1 << 20, 0xc2));
	pm_image_close(img);

	/* a parent that is not the one the child was made from */
	struct img other = vhdx_new(3, DWG_C, NULL, NULL);
	save("parent.vhdx", &other);
	img_free(&other);
	assert_int_equal(open_img(save("child.vhdx", &c), &img, &d), -EINVAL);
	assert_non_null(strstr(d.error, "not the disk"));
	img_free(&c);

	/* an unreplayed log: refused; damaged headers: refused */
	vhdx_add_log(&p);
	assert_int_equal(open_img(save("log.vhdx", &p), &img, &d), -EINVAL);
	assert_non_null(strstr(d.error, "log"));
	p.data[65536 + 100] ^= 1;
	p.data[131072 + 100] ^= 1;
	assert_int_equal(open_img(save("hdr.vhdx", &p), &img, &d), -EINVAL);
	assert_non_null(strstr(d.error, "headers"));
	img_free(&p);
	free(buf);
}

/* ---- VDI ---- */

static void test_vdi(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[4096 * 3];
	struct img im = vdi_new(4);

	uint64_t at = vdi_alloc(&im, 1);
	memset(im.data + at, 0x71, 4096);
	vdi_set(&im, 2, 0xfffffffe);
	vdi_set(&im, 3, 99); /* past the blocks */
	assert_int_equal(open_img(save("a.vdi", &im), &img, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, sizeof(buf)), 0);
	assert_true(filled(buf, 4096, 0));
	assert_true(filled(buf + 4096, 4096, 0x71));
	assert_true(filled(buf + 8192, 4096, 0));
	assert_int_equal(pm_image_read(img, 3 * 4096, buf, 512), -EIO);
	pm_image_close(img);
	put_le64(im.data + 0x170, 1ull << 40); /* larger than its blocks */
	assert_int_equal(open_img(save("b.vdi", &im), &img, &d), -EINVAL);
	img_free(&im);
}

/* An unknown format name and a file of no known format (raw) */
static void test_detection(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	struct img im = img_new(4096);

	assert_int_equal(open_img(save("plain.img", &im), &img, &d), 0);
	assert_string_equal(pm_image_format(img), "raw");
	assert_null(pm_image_readonly_reason(img));
	pm_image_close(img);
	assert_int_equal(pm_image_open(&img, save("plain.img", &im), "nope", &d), -EINVAL);
	assert_int_equal(pm_image_open(&img, save("plain.img", &im), "qcow2", &d), -EINVAL);
	assert_int_equal(pm_image_open(&img, dir, NULL, &d), -EISDIR);
	img_free(&im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qcow2_reads),
		cmocka_unit_test(test_qcow2_compressed),
		cmocka_unit_test(test_qcow2_hostile_tables),
		cmocka_unit_test(test_qcow2_unknown_feature_named),
		cmocka_unit_test(test_qcow2_backing_loop_and_missing),
		cmocka_unit_test(test_vmdk_descriptors),
		cmocka_unit_test(test_vmdk_sparse_hostile),
		cmocka_unit_test(test_vmdk_vmfs_sparse),
		cmocka_unit_test(test_vhd_differencing),
		cmocka_unit_test(test_vhdx),
		cmocka_unit_test(test_vdi),
		cmocka_unit_test(test_detection),
	};
	return cmocka_run_group_tests_name("image", tests, setup, teardown);
}
