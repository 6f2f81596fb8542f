/* Writes a seed corpus for the fuzz targets: small tables of every format, built in memory.
 * usage: mkseeds DIR   (makes DIR/<type>/seed-N files) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../unit/imgbuild.h"
#include "../unit/raidsyn.h"
#include "util.h"

static const char *dir;

static void save(const char *type, int n, const struct img *im, uint8_t opt)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, type);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%d", dir, type, n);
	f = fopen(path, "wb");
	if (!f || fwrite(&opt, 1, 1, f) != 1 || fwrite(im->data, 1, im->size, f) != im->size) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	const uint64_t S = 64 * 1024;
	struct img im;

	if (argc != 2)
		return 2;
	dir = argv[1];
	mkdir(dir, 0755);

	/* dos: primaries, a chain of logicals, nested bsd/solaris/unixware/minix */
	im = img_new(S);
	img_dos(&im, 0, 0, 0x80, 0x83, 4, 10);
	img_dos(&im, 0, 1, 0, 0x05, 16, 80);
	img_dos(&im, 16 * 512, 0, 0, 0x83, 1, 4);
	img_dos(&im, 16 * 512, 1, 0, 0x05, 8, 8);
	img_dos(&im, 24 * 512, 0, 0, 0x07, 1, 4);
	img_dos(&im, 0, 2, 0, 0xa5, 100, 20);
	put_le32(im.data + 101 * 512, 0x82564557u);
	put_le16(im.data + 101 * 512 + 138, 2);
	put_le32(im.data + 101 * 512 + 148, 5);
	put_le32(im.data + 101 * 512 + 152, 102);
	im.data[101 * 512 + 160] = 7;
	img_dos(&im, 0, 3, 0, 0xbf, 90, 8);
	put_le32(im.data + 91 * 512 + 12, 0x600DDEEEu);
	put_le32(im.data + 91 * 512 + 16, 1);
	put_le32(im.data + 91 * 512 + 72 + 4, 1);
	put_le32(im.data + 91 * 512 + 72 + 8, 3);
	save("dos", 1, &im, 1);
	save("dos", 2, &im, 0);
	img_free(&im);

	/* gpt, 512 and 4096 */
	im = img_new(S);
	struct gpt_ent e[] = { { .index = 2, .first = 40, .last = 50, .type = 1, .name = "x" },
			       { .index = 5, .first = 60, .last = 80, .type = 2 } };
	img_gpt(&im, 512, e, 2, 16, 0);
	save("gpt", 1, &im, 0);
	img_free(&im);
	im = img_new(S);
	struct gpt_ent e4[] = { { .index = 0, .first = 6, .last = 8, .type = 1 } };
	img_gpt(&im, 4096, e4, 1, 8, 0);
	save("gpt", 2, &im, 2);
	img_free(&im);

	/* bsd at 64 */
	im = img_new(S);
	put_le32(im.data + 64, 0x82564557u);
	put_le16(im.data + 64 + 138, 3);
	put_le32(im.data + 64 + 148, 10);
	put_le32(im.data + 64 + 152, 16);
	im.data[64 + 160] = 7;
	put_le32(im.data + 64 + 164 + 16, 100);
	save("bsd", 1, &im, 0);
	img_free(&im);

	/* sun */
	im = img_new(S);
	put_be16(im.data + 436, 2);
	put_be16(im.data + 438, 4);
	put_be32(im.data + 444, 1);
	put_be32(im.data + 448, 16);
	put_be16(im.data + 508, 0xDABE);
	img_sun_fix_csum(im.data);
	save("sun", 1, &im, 0);
	img_free(&im);

	/* sgi */
	im = img_new(S);
	put_be32(im.data, 0x0BE5A941u);
	put_be32(im.data + 312, 10);
	put_be32(im.data + 316, 4);
	img_sgi_fix_csum(im.data);
	save("sgi", 1, &im, 0);
	img_free(&im);

	/* mac */
	im = img_new(S);
	put_be16(im.data, 0x4552);
	put_be16(im.data + 2, 512);
	for (int i = 1; i <= 2; i++) {
		put_be16(im.data + 512 * i, 0x504d);
		put_be32(im.data + 512 * i + 4, 2);
		put_be32(im.data + 512 * i + 8, (uint32_t)(10 * i));
		put_be32(im.data + 512 * i + 12, 5);
	}
	save("mac", 1, &im, 0);
	img_free(&im);

	/* atari */
	im = img_new(S);
	uint8_t *a = im.data + 0x1c6;
	a[0] = 1;
	memcpy(a + 1, "GEM", 3);
	put_be32(a + 4, 2);
	put_be32(a + 8, 10);
	a[12] = 1;
	memcpy(a + 13, "XGM", 3);
	put_be32(a + 16, 20);
	put_be32(a + 20, 40);
	a = im.data + 20 * 512 + 0x1c6;
	a[0] = 1;
	memcpy(a + 1, "LNX", 3);
	put_be32(a + 4, 1);
	put_be32(a + 8, 5);
	save("atari", 1, &im, 1);
	img_free(&im);

	/* ps3 */
	im = img_new(S);
	put_be64(im.data + 16, 0x0FACE0FFull);
	put_be64(im.data + 24, 0xDEADFACEull);
	put_be64(im.data + 48, 8);
	put_be64(im.data + 56, 16);
	save("ps3", 1, &im, 0);
	img_free(&im);

	/* solaris and unixware on a whole device */
	im = img_new(S);
	put_le32(im.data + 512 + 12, 0x600DDEEEu);
	put_le32(im.data + 512 + 16, 1);
	put_le32(im.data + 512 + 72 + 4, 4);
	put_le32(im.data + 512 + 72 + 8, 8);
	save("solaris", 1, &im, 0);
	img_free(&im);
	im = img_new(S);
	put_le32(im.data + 29 * 512 + 4, 0xCA5E600Du);
	put_le32(im.data + 29 * 512 + 156, 0x600DDEEEu);
	put_le16(im.data + 29 * 512 + 216 + 12, 1);
	put_le32(im.data + 29 * 512 + 216 + 16, 40);
	put_le32(im.data + 29 * 512 + 216 + 20, 8);
	save("unixware", 1, &im, 0);
	img_free(&im);

	/* raid: isw and ddf1 members of every level (one disk of each set) */
	static const struct rs_vol vols[] = {
		{ "R0", RS_RAID0, 2, 8, 0, 64, 2 }, { "R1", RS_RAID1, 2, 0, 0, 64, 2 },
		{ "R10", RS_RAID01, 4, 8, 0, 64, 2 }, { "R5", RS_RAID5, 3, 8, 0, 64, 3 },
		{ "Span", RS_SPAN, 2, 0, 8, 32, 2 },
	};
	int seed = 1;
	for (size_t v = 0; v < sizeof(vols) / sizeof(vols[0]); v++) {
		uint8_t *disks[4];
		struct img ims[4];
		for (unsigned i = 0; i < 4; i++) {
			ims[i] = img_new(S);
			disks[i] = ims[i].data;
		}
		if (vols[v].level != RS_SPAN) {
			rs_isw(disks, S, vols[v].members, 1234, &vols[v], 1, NULL);
			save("raid", seed++, &ims[1], 0);
			save("raid", seed++, &ims[0], 3);
		}
		rs_ddf1(disks, S, vols[v].members, &vols[v], 1, v & 1);
		save("raid", seed++, &ims[1], 0);
		for (unsigned i = 0; i < 4; i++)
			img_free(&ims[i]);
	}

	/* the other formats' members (fuzz_raid: an option byte, then the disk), 128 sectors, each level */
	static const char *const raid[] = { "asr", "hpt37x", "hpt45x", "jmicron", "lsi", "nvidia", "pdc", "sil", "via" };
	int n = 100;
	for (size_t k = 0; k < sizeof(raid) / sizeof(raid[0]); k++)
		for (int lv = RS_SPAN; lv <= RS_SPARE; lv++) {
			struct rs_spec rs = { .fmt = raid[k], .level = (enum rs_level)lv, .disks = 4, .chunk = 16,
					      .disk_sectors = 128, .member_sectors = 64, .id = 0x12345678 };
			im = img_new(128 * 512);
			if (!rs_write(&rs, 1, im.data))
				save("raid", ++n, &im, 0);
			img_free(&im);
		}
	/* an IMSM spare disk's own record */
	struct rs_spec spare = { .fmt = "isw", .level = RS_SPARE, .disks = 1, .disk_sectors = 128, .id = 77 };
	im = img_new(128 * 512);
	if (!rs_write(&spare, 0, im.data))
		save("raid", ++n, &im, 0);
	img_free(&im);
	return 0;
}
