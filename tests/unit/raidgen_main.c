/* raidgen: member images of an isw or ddf1 set holding a given virtual disk, for tests/cmd/dmraid.t.
 *   raidgen isw|ddf1 raid0|raid1|raid10|raid5|linear MEMBERS STRIP MEMBER_SECTORS VIRT OUTPREFIX [NAME]
 * writes OUTPREFIX0.img ... (MEMBER_SECTORS + 64 sectors each, data from sector 0), taking the set's
 * bytes from the start of the file VIRT, and prints the set's size in sectors. */
#include "raidgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr, "usage: raidgen isw|ddf1 LEVEL MEMBERS STRIP MEMBER_SECTORS VIRT OUTPREFIX [NAME]\n");
		return 2;
	}
	static const char *const lv[] = { "raid0", "raid1", "raid10", "raid5", "linear" };
	struct rg_vol v = { .members = (unsigned)atoi(argv[3]), .strip = (uint32_t)atoi(argv[4]),
			    .bpm = strtoull(argv[5], NULL, 0), .rlq = 3 };
	int level = -1;
	for (int i = 0; i < 5; i++)
		if (!strcmp(argv[2], lv[i]))
			level = i;
	if (level < 0 || v.members < 1 || v.members > 8)
		return 2;
	v.level = (enum rg_level)level;
	snprintf(v.name, sizeof(v.name), "%s", argc > 8 ? argv[8] : "Volume0");
	bool isw = !strcmp(argv[1], "isw");
	if (isw)
		v.rlq = 2;
	uint64_t disk = (v.bpm + 64) * 512, vs = rg_vol_sectors(&v);
	uint8_t *d[8];
	for (unsigned i = 0; i < v.members; i++)
		if (!(d[i] = calloc(1, disk)))
			return 1;
	uint8_t *virt = calloc(vs ? vs : 1, 512);
	FILE *f = fopen(argv[6], "rb");
	if (!f || !virt) {
		perror(argv[6]);
		return 1;
	}
	size_t got = fread(virt, 1, vs * 512, f);
	fclose(f);
	(void)got; /* a shorter file: zeros after it */
	rg_scatter(&v, virt, d);
	const char *serials[8] = { 0 };
	if (isw)
		rg_isw(d, disk, v.members, 20261205, &v, 1, serials);
	else
		rg_ddf1(d, disk, v.members, &v, 1, false);
	for (unsigned i = 0; i < v.members; i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s%u.img", argv[7], i);
		FILE *o = fopen(p, "wb");
		if (!o || fwrite(d[i], 1, disk, o) != disk || fclose(o)) {
			perror(p);
			return 1;
		}
		free(d[i]);
	}
	free(virt);
	printf("%llu\n", (unsigned long long)vs);
	return 0;
}
