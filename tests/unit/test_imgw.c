/* Unit tests of the write paths of the sparse formats (VHD dynamic and differencing, VDI dynamic,
 * VMDK monolithicSparse and twoGbMaxExtentSparse): seeded patterns of aligned and unaligned writes
 * through pm_image_write, judged by qemu-img (check, compare against a raw file given the same
 * writes) and by reading back; several threads at once; what stays read-only (streamOptimized) and
 * the read fixes that came with it (a short streamOptimized grain, a missing VHDX parent's paths). */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "image/format.h"
#include "image/image.h"
#include "imgfmt.h"
#include "util.h"

uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len);

static char dir[64];
static bool have_qemu;

static int setup(void **state)
{
	(void)state;
	have_qemu = system("qemu-img --version >/dev/null 2>&1") == 0;
	return img_dir_make(dir, sizeof(dir), "pm-imgw-test");
}

static int teardown(void **state)
{
	(void)state;
	return img_dir_remove(dir);
}

static const char *path_of(const char *name)
{
	return img_path(dir, name);
}

/* Run a shell command in the test folder; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	int n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void save(const char *name, const struct img *im)
{
	assert_non_null(img_save(dir, name, im));
}

static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* The same writes into the image (through partmap) and into a raw model (a plain file, and memory):
 * n writes of 1 byte to 1 MiB (half of them 512-aligned), at offsets spread over the disk. */
static void pattern(struct pm_image *img, uint8_t *model, uint64_t size, int fd_raw, unsigned n, uint64_t seed)
{
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	rnd_state = seed;
	for (unsigned i = 0; i < n; i++) {
		bool aligned = rnd() & 1;
		uint64_t len = 1 + rnd() % (1 << 20), off = rnd() % size;
		if (aligned) {
			off &= ~511ull;
			len = (len + 511) & ~511ull;
		}
		if (off + len > size)
			len = size - off;
		if (!len)
			continue;
		for (uint64_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(i * 7 + k / 512 + 1);
		assert_int_equal(pm_image_write(img, off, buf, len), 0);
		memcpy(model + off, buf, len);
		assert_int_equal(pwrite(fd_raw, buf, len, (off_t)off), (ssize_t)len);
	}
	free(buf);
}

static void read_back(struct pm_image *img, const uint8_t *model, uint64_t size)
{
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(pm_image_read(img, 0, buf, size), 0);
	assert_memory_equal(buf, model, size);
	free(buf);
}

/* Create NAME with qemu-img, write a pattern through partmap, read it back before and after reopening,
 * then let qemu-img judge: compare with the raw model (and check, where the format has it). */
static void qemu_round(const char *fmt, const char *make, const char *name, uint64_t size, unsigned writes, bool check)
{
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t *model = calloc(1, size);

	assert_non_null(model);
	/* make: how the image is made (NULL: qemu-img create) */
	if (make)
		assert_int_equal(sh("rm -f model.raw && %s && truncate -s %llu model.raw", make, (unsigned long long)size), 0);
	else
		assert_int_equal(sh("rm -f %s model.raw && qemu-img create -q -f %s %s %llu && truncate -s %llu model.raw", name,
				    fmt, name, (unsigned long long)size, (unsigned long long)size),
				 0);
	int fd = open(path_of("model.raw"), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pm_image_open_flags(&img, path_of(name), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_null(pm_image_readonly_reason(img));
	pattern(img, model, size, fd, writes, size ^ writes);
	read_back(img, model, size);
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	close(fd);
	assert_int_equal(pm_image_open(&img, path_of(name), NULL, &d), 0);
	read_back(img, model, size);
	pm_image_close(img);
	if (check)
		assert_int_equal(sh("qemu-img check -q %s", name), 0);
	assert_int_equal(sh("qemu-img compare -q -f %s -F raw %s model.raw", fmt, name), 0);
	free(model);
}

static void test_vhd_dynamic(void **state)
{
	(void)state;
	if (!have_qemu)
		skip();
	qemu_round("vpc", NULL, "d.vhd", 48 << 20, 120, false);
	/* the footer at the end and its copy at the start: the same bytes */
	assert_int_equal(sh("test \"$(tail -c 512 d.vhd | od -An -tx1)\" = \"$(head -c 512 d.vhd | od -An -tx1)\""), 0);
}

static void test_vdi_dynamic(void **state)
{
	(void)state;
	if (!have_qemu)
		skip();
	qemu_round("vdi", NULL, "d.vdi", 48 << 20, 120, true);
}

static void test_vmdk_sparse(void **state)
{
	(void)state;
	if (!have_qemu)
		skip();
	qemu_round("vmdk", NULL, "m.vmdk", 24 << 20, 150, true);
	/* the redundant grain directory's tables agree with the primary ones: qemu-img reads only the
	 * primary, so compare the image with the copy whose header points at the redundant one */
	assert_int_equal(sh("cp m.vmdk r.vmdk && dd if=m.vmdk of=r.vmdk bs=1 skip=48 seek=56 count=8 conv=notrunc "
			    "status=none && qemu-img compare -q m.vmdk r.vmdk"),
			 0);
}

static void test_vmdk_split(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[3 * 65536];

	if (!have_qemu)
		skip();
	/* a split descriptor over three small sparse extents: the pattern lands in all of them */
	qemu_round("vmdk",
		   "rm -f s*.vmdk && for i in 1 2 3; do qemu-img create -q -f vmdk s-s00$i.vmdk 2M; done && "
		   "printf '# Disk DescriptorFile\\nversion=1\\nCID=12345678\\nparentCID=ffffffff\\n"
		   "createType=\"twoGbMaxExtentSparse\"\\n\\n# Extent description\\nRW 4096 SPARSE \"s-s001.vmdk\"\\n"
		   "RW 4096 SPARSE \"s-s002.vmdk\"\\nRW 4096 SPARSE \"s-s003.vmdk\"\\n' >s.vmdk",
		   "s.vmdk", 6 << 20, 60, true);
	assert_int_equal(sh("grep -q '^CID=' s.vmdk && ! grep -q '^CID=12345678' s.vmdk"), 0);
	/* qemu's own split layout (2 GiB extents): writes in each extent and across their borders */
	assert_int_equal(sh("rm -f q*.vmdk && qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse q.vmdk 5G"), 0);
	assert_int_equal(pm_image_open_flags(&img, path_of("q.vmdk"), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_null(pm_image_readonly_reason(img));
	memset(buf, 0x61, sizeof(buf));
	assert_int_equal(pm_image_write(img, 4096, buf, 1000), 0);
	assert_int_equal(pm_image_write(img, (2ull << 30) - 65536 - 100, buf, sizeof(buf)), 0);
	assert_int_equal(pm_image_write(img, (4ull << 30) + 12345, buf, 70000), 0);
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	assert_int_equal(sh("qemu-img check -q q.vmdk && qemu-io -f vmdk -c 'read -P 0x61 4096 1000' "
			    "-c 'read -P 0 5096 1000' -c 'read -P 0x61 2147417988 196608' -c 'read -P 0x61 4294979641 70000' "
			    "-c 'read -P 0 4295049641 1000' q.vmdk | grep -c 'read.*bytes at offset' | grep -qx 5"),
			 0);
	assert_int_equal(sh("test $(ls q-s*.vmdk | wc -l) = 3 && ! grep -q '^CID=ffffffff' q.vmdk"), 0);
}

/* A differencing VHD: written sectors come from the child; the others go on coming from the parent
 * (also in a block the child allocated); the parent's file is not changed. */

static void test_vhd_differencing(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	const unsigned nb = 64;
	const uint64_t size = (uint64_t)nb * 4096;
	uint8_t *model = malloc(size), *buf = malloc(size);

	assert_non_null(model);
	assert_non_null(buf);
	struct img p = vhd_new(nb, UUID_P, NULL, NULL);
	for (unsigned b = 0; b < nb; b += 2) {
		uint64_t at = vhd_alloc(&p, b);
		for (unsigned k = 0; k < 4096; k++)
			p.data[at + k] = (uint8_t)(b * 3 + k / 512 + 0x40);
	}
	vhd_finish(&p);
	save("parent.vhd", &p);
	assert_int_equal(pm_image_open(&img, path_of("parent.vhd"), NULL, &d), 0);
	assert_int_equal(pm_image_read(img, 0, model, size), 0);
	pm_image_close(img);
	struct img c = vhd_new(nb, UUID_C, UUID_P, "parent.vhd");
	vhd_finish(&c);
	c.size -= 512; /* vhd_finish placed the footer at the end already */
	img_grow(&c, c.size + 512);
	save("child.vhd", &c);
	assert_int_equal(sh("sha256sum parent.vhd >parent.sha"), 0);

	assert_int_equal(pm_image_open_flags(&img, path_of("child.vhd"), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_null(pm_image_readonly_reason(img));
	int fd = open(path_of("model.raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, model, size, 0), (ssize_t)size);
	pattern(img, model, size, fd, 10, 7);
	/* one byte into block 1's sector 0, one 512-byte sector (3) of block 5 */
	uint8_t x = 0xee, sec[512];
	memset(sec, 0xab, sizeof(sec));
	assert_int_equal(pm_image_write(img, 4096 + 10, &x, 1), 0);
	model[4096 + 10] = x;
	assert_int_equal(pm_image_write(img, 5 * 4096 + 3 * 512, sec, 512), 0);
	memcpy(model + 5 * 4096 + 3 * 512, sec, 512);
	read_back(img, model, size);
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	close(fd);
	assert_int_equal(sh("sha256sum -c --quiet parent.sha"), 0);
	assert_int_equal(pm_image_open(&img, path_of("child.vhd"), NULL, &d), 0);
	read_back(img, model, size);
	pm_image_close(img);

	/* the sectors of a block the child holds that it was not given still come from the parent:
	 * sector 3 of block 4 written in the child, then the parent's sector 4 of it changed */
	assert_int_equal(pm_image_open_flags(&img, path_of("child.vhd"), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_int_equal(pm_image_write(img, 4 * 4096 + 3 * 512, sec, 512), 0);
	pm_image_close(img);
	uint64_t pblk = get_be32(p.data + 1536 + 4 * 4) * 512ull + 512;
	memset(p.data + pblk + 4 * 512, 0x5a, 512);
	save("parent.vhd", &p);
	assert_int_equal(pm_image_open(&img, path_of("child.vhd"), NULL, &d), 0);
	assert_int_equal(pm_image_read(img, 4 * 4096, buf, 4096), 0);
	for (unsigned k = 0; k < 512; k++) {
		assert_int_equal(buf[3 * 512 + k], 0xab);
		assert_int_equal(buf[4 * 512 + k], 0x5a);
	}
	pm_image_close(img);
	img_free(&p);
	img_free(&c);
	free(model);
	free(buf);
}

/* Several threads writing (their own ranges) and reading at once; all of it read back after. */
struct job {
	struct pm_image *img;
	uint64_t off, len;
	unsigned id;
};

static void *writer(void *arg)
{
	struct job *j = arg;
	uint8_t buf[70000], rb[70000];

	for (uint64_t o = 0; o < j->len; o += sizeof(buf)) {
		size_t n = j->len - o < sizeof(buf) ? (size_t)(j->len - o) : sizeof(buf);
		memset(buf, (int)(j->id * 16 + (o / sizeof(buf)) % 16), n);
		if (pm_image_write(j->img, j->off + o, buf, n) < 0)
			return (void *)1;
		if (pm_image_read(j->img, j->off + o, rb, n) < 0 || memcmp(buf, rb, n))
			return (void *)1;
	}
	return NULL;
}

static void threads_round(const char *fmt, const char *name)
{
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	const uint64_t size = 32 << 20, part = size / 4;
	pthread_t t[4];
	struct job j[4];

	assert_int_equal(sh("rm -f %s && qemu-img create -q -f %s %s %llu", name, fmt, name, (unsigned long long)size), 0);
	assert_int_equal(pm_image_open_flags(&img, path_of(name), NULL, PM_IMG_WRITABLE, &d), 0);
	for (unsigned i = 0; i < 4; i++) {
		/* ranges that share units (blocks, grains) at their edges */
		j[i] = (struct job){ img, i * part + 1000, part - 1000, i };
		assert_int_equal(pthread_create(&t[i], NULL, writer, &j[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	pm_image_close(img);
	assert_int_equal(pm_image_open(&img, path_of(name), NULL, &d), 0);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(pm_image_read(img, 0, buf, size), 0);
	for (unsigned i = 0; i < 4; i++)
		for (uint64_t o = 0; o < part - 1000; o++)
			if (buf[i * part + 1000 + o] != (uint8_t)(i * 16 + (o / 70000) % 16))
				fail_msg("%s: thread %u's byte %llu", fmt, i, (unsigned long long)o);
	free(buf);
	pm_image_close(img);
	if (strcmp(fmt, "vpc"))
		assert_int_equal(sh("qemu-img check -q %s", name), 0);
}

static void test_threads(void **state)
{
	(void)state;
	if (!have_qemu)
		skip();
	threads_round("vpc", "t.vhd");
	threads_round("vdi", "t.vdi");
	threads_round("vmdk", "t.vmdk");
}

/* streamOptimized stays read-only, and says why */
static void test_vmdk_stream_readonly(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t b[512] = { 1 };

	if (!have_qemu)
		skip();
	assert_int_equal(sh("truncate -s 4M s.raw && qemu-img convert -q -O vmdk -o subformat=streamOptimized s.raw "
			    "so.vmdk && sha256sum so.vmdk >so.sha"),
			 0);
	assert_int_equal(pm_image_open_flags(&img, path_of("so.vmdk"), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_non_null(pm_image_readonly_reason(img));
	assert_non_null(strstr(pm_image_readonly_reason(img), "streamOptimized"));
	assert_int_equal(pm_image_write(img, 0, b, sizeof(b)), -EROFS);
	pm_image_close(img);
	assert_int_equal(sh("sha256sum -c --quiet so.sha"), 0);
}

/* A streamOptimized grain that inflates to fewer bytes than a grain (not the disk's last) fails
 * its read; it used to read as if complete, zero-filled. */
static void test_vmdk_short_grain(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	uint8_t buf[4096];

	if (!have_qemu)
		skip();
	assert_int_equal(sh("head -c 1M /dev/urandom >g.raw && qemu-img convert -q -O vmdk -o subformat=streamOptimized "
			    "g.raw g.vmdk"),
			 0);
	int fd = open(path_of("g.vmdk"), O_RDWR);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t h[512], gd[4], gt[4];
	/* the header (or the footer's, 1024 bytes before the end): the grain directory, its first
	 * table, grain 0 */
	assert_int_equal(pread(fd, h, 512, 0), 512);
	if (get_le64(h + 56) == UINT64_MAX)
		assert_int_equal(pread(fd, h, 512, st.st_size - 1024), 512);
	assert_int_equal(pread(fd, gd, 4, (off_t)get_le64(h + 56) * 512), 4);
	assert_int_equal(pread(fd, gt, 4, (off_t)get_le32(gd) * 512), 4);
	off_t grain = (off_t)get_le32(gt) * 512;
	uint8_t m[12], plain[1000], z[2048];
	assert_int_equal(pread(fd, m, 12, grain), 12);
	memset(plain, 0x33, sizeof(plain));
	uLongf zl = sizeof(z);
	assert_int_equal(compress2(z, &zl, plain, sizeof(plain), 6), Z_OK);
	assert_true(zl <= get_le32(m + 8));
	put_le32(m + 8, (uint32_t)zl);
	assert_int_equal(pwrite(fd, m, 12, grain), 12);
	assert_int_equal(pwrite(fd, z, zl, grain + 12), (ssize_t)zl);
	close(fd);
	assert_int_equal(pm_image_open(&img, path_of("g.vmdk"), NULL, &d), 0);
	assert_int_equal(pm_image_read(img, 0, buf, sizeof(buf)), -EIO);
	assert_int_equal(pm_image_read(img, 65536, buf, sizeof(buf)), 0); /* the next grain is whole */
	pm_image_close(img);
}

/* A missing VHDX parent: the message names the paths looked for. */
static void test_vhdx_missing_parent_named(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	struct img c = vhdx_new(3, DWG_C, DWG_P, "gone.vhdx");

	save("orphan.vhdx", &c);
	assert_int_equal(pm_image_open(&img, path_of("orphan.vhdx"), NULL, &d), -ENOENT);
	assert_non_null(strstr(d.error, path_of("gone.vhdx")));
	img_free(&c);
}


/* ---- VHDX: writing, and the log ---- */

static void test_vhdx_dynamic(void **state)
{
	(void)state;
	if (!have_qemu)
		skip();
	/* qemu's default block size (8 MiB here), and 1 MiB blocks over 3 chunks' worth of BAT entries */
	qemu_round("vhdx", NULL, "d.vhdx", 48 << 20, 120, true);
	qemu_round("vhdx", "rm -f b.vhdx && qemu-img create -q -f vhdx -o block_size=1M,log_size=1M b.vhdx 40M", "b.vhdx",
		   40 << 20, 150, true);
	threads_round("vhdx", "t.vhdx");
}

/* Where a VHDX file's BAT and log lie (region table, current header); the current header in hdr. */
static void vhdx_where(int fd, uint64_t *bat, uint64_t *log_off, uint32_t *log_len, uint8_t *hdr, int *cur)
{
	uint8_t h[2][4096], rt[65536];
	assert_int_equal(pread(fd, h[0], 4096, 65536), 4096);
	assert_int_equal(pread(fd, h[1], 4096, 131072), 4096);
	*cur = get_le64(h[1] + 8) > get_le64(h[0] + 8) ? 1 : 0;
	memcpy(hdr, h[*cur], 4096);
	*log_off = get_le64(hdr + 72);
	*log_len = get_le32(hdr + 68);
	assert_int_equal(pread(fd, rt, sizeof(rt), 196608), (ssize_t)sizeof(rt));
	static const uint8_t bat_guid[4] = { 0x66, 0x77, 0xc2, 0x2d };
	*bat = 0;
	for (unsigned i = 0; i < get_le32(rt + 8); i++)
		if (!memcmp(rt + 16 + 32 * i, bat_guid, 4))
			*bat = get_le64(rt + 16 + 32 * i + 16);
	assert_true(*bat != 0);
}

/* Both headers with this LogGuid (sequence numbers up, checksums right). */
static void vhdx_set_log_guid(int fd, const uint8_t *guid)
{
	uint8_t h[4096];
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(pread(fd, h, sizeof(h), i * 65536), 4096);
		memcpy(h + 48, guid, 16);
		put_le64(h + 8, get_le64(h + 8) + 2);
		put_le32(h + 4, 0);
		put_le32(h + 4, pm_crc32c(0, h, sizeof(h)));
		assert_int_equal(pwrite(fd, h, sizeof(h), i * 65536), 4096);
	}
}

struct tdesc {
	bool zero;
	uint64_t off, zlen;
	const uint8_t *sector; /* a data descriptor's 4 KiB */
};

/* A log entry (made here, independently of partmap's writer) at byte pos of the log: returns its length. */
static uint32_t vhdx_put_entry(int fd, uint64_t log_off, uint32_t log_len, uint32_t pos, const uint8_t *guid, uint64_t seq,
			       uint32_t tail, uint64_t flushed, uint64_t last, const struct tdesc *d, unsigned nd)
{
	unsigned ndata = 0;
	for (unsigned i = 0; i < nd; i++)
		ndata += !d[i].zero;
	uint32_t dsect = (64 + 32 * nd + 4095) / 4096, len = (dsect + ndata) * 4096;
	uint8_t *e = calloc(1, len);
	assert_non_null(e);
	memcpy(e, "loge", 4);
	put_le32(e + 8, len);
	put_le32(e + 12, tail);
	put_le64(e + 16, seq);
	put_le32(e + 24, nd);
	memcpy(e + 32, guid, 16);
	put_le64(e + 48, flushed);
	put_le64(e + 56, last);
	for (unsigned i = 0, k = 0; i < nd; i++) {
		uint8_t *x = e + 64 + 32 * i;
		memcpy(x, d[i].zero ? "zero" : "desc", 4);
		put_le64(x + 16, d[i].off);
		put_le64(x + 24, seq);
		if (d[i].zero) {
			put_le64(x + 8, d[i].zlen);
			continue;
		}
		uint8_t *s = e + (dsect + k++) * 4096;
		memcpy(x + 4, d[i].sector + 4092, 4);
		memcpy(x + 8, d[i].sector, 8);
		memcpy(s, "data", 4);
		put_le32(s + 4, (uint32_t)(seq >> 32));
		memcpy(s + 8, d[i].sector + 8, 4084);
		put_le32(s + 4092, (uint32_t)seq);
	}
	put_le32(e + 4, pm_crc32c(0, e, len));
	for (uint32_t k = 0; k < len; k += 4096) /* the log is circular: an entry may wrap */
		assert_int_equal(pwrite(fd, e + k, 4096, (off_t)(log_off + (pos + k) % log_len)), 4096);
	free(e);
	return len;
}

static const uint8_t LOG_GUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x48, 0x88, 0x99, 1, 2, 3, 4, 5, 6 };

/* l.vhdx: a dynamic VHDX (1 MiB blocks) with blocks 0 and 2 written by qemu, and a log of two entries
 * qemu has not replayed: entry 7 points block 3 at a new payload block appended to the file (0x5a)
 * and zeros 8 KiB of block 0's payload; entry 8 (tail: entry 7) moves block 2 to ZERO and block 4
 * to the appended block too. damage: 0 none, 1 entry 7's checksum wrong (entry 8's sequence then
 * starts at an invalid entry), 2 entry 8 numbered 9 (not the one after its tail's), 3 entry 7 writes
 * past the file's last offset, 4 the file shorter than the log's flushed offset, 5 both checksums
 * wrong, 6 entry 8's checksum wrong (a torn last entry: entry 7 alone is the active sequence), 7
 * none, but entry 7 starts in the log's last sector and wraps to its start. */
static void make_logged(int damage)
{
	assert_int_equal(sh("rm -f l.vhdx && qemu-img create -q -f vhdx -o block_size=1M,log_size=1M l.vhdx 8M && "
			    "qemu-io -c 'write -P 0x61 0 1M' -c 'write -P 0x62 2M 1M' l.vhdx >/dev/null"),
			 0);
	int fd = open(path_of("l.vhdx"), O_RDWR);
	assert_true(fd >= 0);
	uint64_t bat, log_off, b0;
	uint32_t log_len;
	uint8_t hdr[4096], sec[4096];
	int cur;
	vhdx_where(fd, &bat, &log_off, &log_len, hdr, &cur);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint64_t end = ((uint64_t)st.st_size + (1 << 20) - 1) & ~((1ull << 20) - 1);
	uint8_t *blk = malloc(1 << 20);
	assert_non_null(blk);
	memset(blk, 0x5a, 1 << 20);
	assert_int_equal(pwrite(fd, blk, 1 << 20, (off_t)end), 1 << 20);
	free(blk);
	uint64_t fsize = end + (1 << 20);
	assert_int_equal(pread(fd, sec, sizeof(sec), (off_t)bat), 4096);
	b0 = get_le64(sec) & ~((1ull << 20) - 1);
	assert_true(b0 != 0);
	put_le64(sec + 3 * 8, end | 6);
	struct tdesc d7[2] = { { false, bat, 0, sec }, { true, b0 + 4096, 8192, NULL } };
	if (damage == 3)
		d7[1].off = fsize + (1 << 20);
	uint32_t p7 = damage == 7 ? log_len - 4096 : 0;
	uint32_t len7 = vhdx_put_entry(fd, log_off, log_len, p7, LOG_GUID, 7, p7, fsize, fsize, d7, 2);
	put_le64(sec + 2 * 8, 2);
	put_le64(sec + 4 * 8, end | 6);
	struct tdesc d8[1] = { { false, bat, 0, sec } };
	vhdx_put_entry(fd, log_off, log_len, (p7 + len7) % log_len, LOG_GUID, damage == 2 ? 9 : 8, p7,
		       damage == 4 ? fsize + 4096 : fsize, fsize, d8, 1);
	/* a bit of a data sector flipped: entry 7's (1, 5), entry 8's (5) */
	for (int k = 0; k < 2; k++) {
		uint64_t at = log_off + (p7 + (k ? len7 : 0) + 4096) % log_len + 100;
		uint8_t x = 0;
		if (!(damage == 5 || (damage == 1 && k == 0) || (damage == 6 && k == 1)))
			continue;
		assert_int_equal(pread(fd, &x, 1, (off_t)at), 1);
		x ^= 1;
		assert_int_equal(pwrite(fd, &x, 1, (off_t)at), 1);
	}
	vhdx_set_log_guid(fd, LOG_GUID);
	close(fd);
}

static bool log_guid_zero(const char *name)
{
	static const uint8_t zero[16];
	uint8_t h[4096];
	bool z = true;
	int fd = open(path_of(name), O_RDONLY);
	assert_true(fd >= 0);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(pread(fd, h, sizeof(h), i * 65536), 4096);
		uint32_t want = get_le32(h + 4);
		put_le32(h + 4, 0);
		assert_int_equal(pm_crc32c(0, h, sizeof(h)), want);
		z = z && !memcmp(h + 48, zero, 16);
	}
	close(fd);
	return z;
}

/* A log that needs replay: read-only, replayed in memory (the file unchanged); read-write, replayed in
 * the file. qemu is the judge: its own replay (qemu-img check -r all) of a copy gives the same disk,
 * qemu-io finds what the log wrote in partmap's replay, and reads it as partmap did before replaying.
 * Also a log that wraps around the end of the circular log. */
static void test_vhdx_log_replay(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	const size_t size = 8 << 20;

	if (!have_qemu)
		skip();
	/* what the log does: blocks 3 and 4 the appended block, block 2 zero, 8 KiB of block 0 zero */
#define IO5 "qemu-io -r -c 'read -P 0x5a 3M 2M' -c 'read -P 0 2M 1M' -c 'read -P 0x61 0 4096' " \
	    "-c 'read -P 0 4096 8192' -c 'read -P 0x61 12288 4096' %s >io.out 2>&1 && "             \
	    "! grep -qi -e pattern -e fail io.out && test $(grep -c '^read' io.out) -eq 5"
	uint8_t *buf = malloc(size), *want = malloc(size);
	assert_non_null(buf);
	assert_non_null(want);
	for (int wrap = 0; wrap < 2; wrap++) {
		make_logged(wrap ? 7 : 0);
		assert_int_equal(sh("cp l.vhdx q.vhdx && sha256sum l.vhdx >l.sha"), 0);
		/* qemu refuses to open it read-only (it would have to replay) */
		assert_true(sh("qemu-io -r -c 'read 0 512' q.vhdx >/dev/null 2>&1") != 0);
		/* qemu's replay, in place. Of the wrapped log qemu replays entry 8 alone (it does not start
		 * at the head's Tail, which the spec asks for): only the unwrapped one is compared with it */
		assert_int_equal(sh("qemu-img check -q -r all q.vhdx >/dev/null 2>&1; qemu-img check -q q.vhdx && "
				    "qemu-img convert -O raw q.vhdx q.raw"),
				 0);
		if (!wrap)
			assert_int_equal(sh(IO5, "q.vhdx"), 0);
		int fd = open(path_of("q.raw"), O_RDONLY);
		assert_int_equal(pread(fd, want, size, 0), (ssize_t)size);
		close(fd);

		/* read-only: partmap reads the replayed disk, the file is not changed */
		assert_int_equal(pm_image_open(&img, path_of("l.vhdx"), NULL, &d), 0);
		assert_int_equal(pm_image_read(img, 0, buf, size), 0);
		if (!wrap)
			assert_memory_equal(buf, want, size);
		pm_image_close(img);
		assert_int_equal(sh("sha256sum -c --quiet l.sha"), 0);
		/* while another process writes the image (qemu's "write" lock bytes 101 and 201 held, as a
		 * qemu writer holds them), partmap neither opens it for writing nor replays its log */
		int lk = open(path_of("l.vhdx"), O_RDWR);
		assert_true(lk >= 0);
		for (off_t b = 101; b <= 201; b += 100) {
			struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = b, .l_len = 1 };
			assert_int_equal(fcntl(lk, F_OFD_SETLK, &fl), 0);
		}
		assert_int_equal(pm_image_open_flags(&img, path_of("l.vhdx"), NULL, PM_IMG_WRITABLE, &d), -EBUSY);
		close(lk);
		assert_int_equal(sh("sha256sum -c --quiet l.sha"), 0);
		/* read-write: replayed in the file (before any write), the log emptied in both headers; qemu
		 * reads there what partmap read from the file as it was */
		assert_int_equal(pm_image_open_flags(&img, path_of("l.vhdx"), NULL, PM_IMG_WRITABLE, &d), 0);
		assert_null(pm_image_readonly_reason(img));
		assert_int_equal(pm_image_read(img, 0, want, size), 0);
		assert_memory_equal(buf, want, size);
		pm_image_close(img);
		assert_true(log_guid_zero("l.vhdx"));
		assert_int_equal(sh("qemu-img check -q l.vhdx && qemu-img convert -O raw l.vhdx l.raw"), 0);
		assert_int_equal(sh(IO5, "l.vhdx"), 0);
		fd = open(path_of("l.raw"), O_RDONLY);
		assert_int_equal(pread(fd, want, size, 0), (ssize_t)size);
		close(fd);
		assert_memory_equal(buf, want, size);
		if (!wrap)
			assert_int_equal(sh("qemu-img compare -q l.vhdx q.vhdx"), 0);
	}
#undef IO5
	free(buf);
	free(want);
}

/* A log that cannot be replayed is refused, read-only too, and the file is left as it is. */
static void test_vhdx_log_refused(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	static const char *const why[] = { "", "is broken", "is broken", "outside what a log may change",
					   "shorter than", "none of them valid" };

	if (!have_qemu)
		skip();
	for (int damage = 1; damage <= 5; damage++) {
		make_logged(damage);
		assert_int_equal(sh("sha256sum l.vhdx >l.sha"), 0);
		int r = pm_image_open(&img, path_of("l.vhdx"), NULL, &d);
		if (r != -EINVAL || !strstr(d.error, "cannot be replayed"))
			fail_msg("damage %d: open %d, %s", damage, r, d.error);
		if (!strstr(d.error, why[damage]))
			fail_msg("damage %d: %s", damage, d.error);
		assert_int_equal(pm_image_open_flags(&img, path_of("l.vhdx"), NULL, PM_IMG_WRITABLE, &d), -EINVAL);
		assert_null(img);
		assert_int_equal(sh("sha256sum -c --quiet l.sha"), 0);
	}
	/* a torn last entry (entry 8's checksum wrong): entry 7 alone is replayed, as qemu does */
	make_logged(6);
	assert_int_equal(sh("cp l.vhdx q.vhdx && qemu-img check -q -r all q.vhdx >/dev/null 2>&1; qemu-img check -q q.vhdx"),
			 0);
	assert_int_equal(pm_image_open_flags(&img, path_of("l.vhdx"), NULL, PM_IMG_WRITABLE, &d), 0);
	pm_image_close(img);
	assert_true(log_guid_zero("l.vhdx"));
	assert_int_equal(sh("qemu-img check -q l.vhdx && qemu-img compare -q l.vhdx q.vhdx && "
			    "qemu-io -r -c 'read -P 0x62 2M 1M' -c 'read -P 0x5a 3M 1M' -c 'read -P 0 4M 1M' l.vhdx >io.out "
			    "2>&1 && ! grep -qi -e pattern -e fail io.out && test $(grep -c '^read' io.out) -eq 3"),
			 0);
	/* a LogGuid with nothing logged under it (a crash before the first entry): an empty log */
	assert_int_equal(sh("rm -f e.vhdx && qemu-img create -q -f vhdx e.vhdx 8M"), 0);
	int fd = open(path_of("e.vhdx"), O_RDWR);
	assert_true(fd >= 0);
	vhdx_set_log_guid(fd, LOG_GUID);
	close(fd);
	assert_int_equal(pm_image_open(&img, path_of("e.vhdx"), NULL, &d), 0);
	pm_image_close(img);
}

/* A differencing VHDX over a parent qemu wrote: unwritten sectors of a written block keep the
 * parent's bytes, the parent's file is not changed, the child keeps reading back after reopening. */
static void test_vhdx_differencing(void **state)
{
	(void)state;
	struct pm_image *img = NULL;
	struct pm_image_diag d;
	const uint64_t size = 6 << 20;

	if (!have_qemu)
		skip();
	assert_int_equal(sh("rm -f p.vhdx && qemu-img create -q -f vhdx -o block_size=1M p.vhdx 6M && "
			    "qemu-io -c 'write -P 0x71 0 6M' p.vhdx >/dev/null && qemu-img convert -O raw p.vhdx "
			    "model.raw && sha256sum p.vhdx >p.sha"),
			 0);
	uint8_t h[4096];
	int fd = open(path_of("p.vhdx"), O_RDONLY), cur;
	uint64_t bat, log_off;
	uint32_t log_len;
	vhdx_where(fd, &bat, &log_off, &log_len, h, &cur);
	close(fd);
	struct img c = vhdx_new(6, DWG_C, h + 32, "p.vhdx");
	uint8_t bitmap[256];
	memset(bitmap, 0, sizeof(bitmap));
	memset(bitmap, 0xff, 16); /* block 1: its first 128 sectors its own */
	uint64_t at = vhdx_alloc(&c, 1, bitmap);
	memset(c.data + at, 0x33, 1 << 20);
	save("c.vhdx", &c);
	img_free(&c);
	uint8_t *model = malloc(size);
	assert_non_null(model);
	fd = open(path_of("model.raw"), O_RDWR);
	assert_int_equal(pread(fd, model, size, 0), (ssize_t)size);
	memset(model + (1 << 20), 0x33, 128 * 512);
	assert_int_equal(pwrite(fd, model + (1 << 20), 128 * 512, 1 << 20), 128 * 512);
	assert_int_equal(pm_image_open_flags(&img, path_of("c.vhdx"), NULL, PM_IMG_WRITABLE, &d), 0);
	assert_null(pm_image_readonly_reason(img));
	read_back(img, model, size);
	pattern(img, model, size, fd, 40, 99);
	/* into the partly present block: its own sectors and the parent's kept around the new bytes */
	uint8_t w[700];
	memset(w, 0x44, sizeof(w));
	assert_int_equal(pm_image_write(img, (1 << 20) + 60000, w, sizeof(w)), 0);
	memcpy(model + (1 << 20) + 60000, w, sizeof(w));
	assert_int_equal(pwrite(fd, w, sizeof(w), (1 << 20) + 60000), (ssize_t)sizeof(w));
	read_back(img, model, size);
	assert_int_equal(pm_image_sync(img), 0);
	pm_image_close(img);
	close(fd);
	assert_int_equal(pm_image_open(&img, path_of("c.vhdx"), NULL, &d), 0);
	read_back(img, model, size);
	pm_image_close(img);
	assert_int_equal(sh("sha256sum -c --quiet p.sha"), 0);
	assert_true(log_guid_zero("c.vhdx"));
	/* qemu as the judge (it reads no differencing VHDX): a copy with its has-parent flag cleared reads,
	 * in each block the child's BAT says FULLY_PRESENT, the parent's bytes with the writes over them,
	 * and zeros elsewhere; every block written is FULLY_PRESENT (none left PARTIALLY_PRESENT) */
	unsigned full = 0;
	fd = open(path_of("c.vhdx"), O_RDONLY);
	assert_true(fd >= 0);
	for (unsigned b = 0; b < 6; b++) {
		uint8_t e[8];
		assert_int_equal(pread(fd, e, 8, (3 << 20) + 8 * b), 8); /* the builder's BAT, one chunk */
		if ((get_le64(e) & 7) == 6)
			full++;
		else
			memset(model + ((uint64_t)b << 20), 0, 1 << 20);
		assert_true((get_le64(e) & 7) != 7);
	}
	close(fd);
	assert_true(full >= 2);
	fd = open(path_of("full.raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(pwrite(fd, model, size, 0), (ssize_t)size);
	close(fd);
	/* the copy: flag cleared, the parent locator's metadata entry replaced by the two items qemu
	 * requires and the builder leaves out (physical sector size, page 83 data) */
	static const uint8_t phys[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
					  0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
	static const uint8_t page83[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
					    0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
	const off_t meta = 2 << 20;
	uint8_t tbl[32 * 6] = { 0 }, val[32] = { 0 };
	assert_int_equal(sh("cp c.vhdx nop.vhdx"), 0);
	fd = open(path_of("nop.vhdx"), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0", 1, meta + 65536 + 4), 1);
	assert_int_equal(pread(fd, tbl, sizeof(tbl), meta), (ssize_t)sizeof(tbl));
	put_le16(tbl + 10, 5);
	for (int i = 0; i < 2; i++) {
		uint8_t *e = tbl + 32 + 32 * (3 + i);
		memset(e, 0, 32);
		memcpy(e, i ? page83 : phys, 16);
		put_le32(e + 16, 65536 + 1024 + 32 * (uint32_t)i);
		put_le32(e + 20, i ? 16 : 4);
		put_le32(e + 24, 6);
	}
	put_le32(val, 512);
	assert_int_equal(pwrite(fd, tbl, sizeof(tbl), meta), (ssize_t)sizeof(tbl));
	assert_int_equal(pwrite(fd, val, sizeof(val), meta + 65536 + 1024), (ssize_t)sizeof(val));
	close(fd);
	assert_int_equal(sh("qemu-img compare -q -f vhdx -F raw nop.vhdx full.raw"), 0);
	free(model);
}

/* Where a format's structures lie (write.c): sealed sorted, overlaps refused, hits at the edges,
 * insert and remove keeping the order. */
static void test_ranges(void **state)
{
	struct pm_ranges s = { 0 };

	(void)state;
	assert_int_equal(pm_ranges_add(&s, 4096, 512), 0);
	assert_int_equal(pm_ranges_add(&s, 0, 512), 0);
	assert_int_equal(pm_ranges_add(&s, 1024, 0), 0); /* empty: not kept */
	assert_int_equal(pm_ranges_add(&s, 512, 512), 0); /* touches the one before: no overlap */
	assert_int_equal(pm_ranges_add(&s, UINT64_MAX - 10, 20), -EUCLEAN);
	assert_int_equal(pm_ranges_seal(&s), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.r[0].off == 0 && s.r[1].off == 512 && s.r[2].off == 4096);
	assert_true(pm_ranges_hit(&s, 0, 1));
	assert_true(pm_ranges_hit(&s, 1023, 1));
	assert_false(pm_ranges_hit(&s, 1024, 3072)); /* the gap, to its last byte */
	assert_true(pm_ranges_hit(&s, 1024, 3073));
	assert_true(pm_ranges_hit(&s, 4607, 100));
	assert_false(pm_ranges_hit(&s, 4608, 1 << 20));
	assert_false(pm_ranges_hit(&s, 100, 0));
	assert_true(pm_ranges_hit(&s, 2048, UINT64_MAX)); /* wraps: taken as reaching everything */
	assert_int_equal(pm_ranges_insert(&s, 2048, 1024), 0);
	assert_int_equal(pm_ranges_insert(&s, 3000, 100), -EUCLEAN);
	assert_int_equal(pm_ranges_insert(&s, 8192, 512), 0);
	assert_int_equal(s.n, 5);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.r[i].off >= s.r[i - 1].off + s.r[i - 1].len);
	pm_ranges_remove(&s, 4096);
	pm_ranges_remove(&s, 4097); /* no range starts there: nothing */
	assert_int_equal(s.n, 4);
	assert_false(pm_ranges_hit(&s, 4096, 512));
	assert_true(pm_ranges_hit(&s, 8192, 1));
	pm_ranges_free(&s);
	assert_int_equal(pm_ranges_add(&s, 0, 1024), 0);
	assert_int_equal(pm_ranges_add(&s, 1000, 8), 0);
	assert_int_equal(pm_ranges_seal(&s), -EUCLEAN);
	pm_ranges_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_vhd_dynamic),
		cmocka_unit_test(test_vhd_differencing),
		cmocka_unit_test(test_vdi_dynamic),
		cmocka_unit_test(test_vmdk_sparse),
		cmocka_unit_test(test_vmdk_split),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_vmdk_stream_readonly),
		cmocka_unit_test(test_vmdk_short_grain),
		cmocka_unit_test(test_vhdx_missing_parent_named),
		cmocka_unit_test(test_vhdx_dynamic),
		cmocka_unit_test(test_vhdx_log_replay),
		cmocka_unit_test(test_vhdx_log_refused),
		cmocka_unit_test(test_vhdx_differencing),
	};
	if (getenv("IMGW_TEST"))
		cmocka_set_test_filter(getenv("IMGW_TEST")); /* one test, by name (a glob) */
	return cmocka_run_group_tests_name("imgw", tests, setup, teardown);
}
