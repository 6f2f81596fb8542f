/* mkraid: write synthesised BIOS RAID member images of any of the eleven formats (see raidsyn.h).
 * usage: mkraid [-d SOURCE] [-s SERIAL,...] FORMAT LEVEL DISKS CHUNK DISK_SECTORS MEMBER_SECTORS ID PREFIX [NAME]
 * writes PREFIX0.img .. PREFIX<DISKS-1>.img (sparse) and prints the set's size in sectors as dmraid maps
 * it. -d: the members also hold the set's data, the first that many sectors of SOURCE laid out as the
 * level does (span, raid0, raid1, raid10, raid01; raid5 for isw and ddf1); without it only the metadata
 * is written. -s: isw, the members' serial numbers (the disks' own, for dmraid to find them; images
 * have none). ID: the set id (isw: the family number). NAME: jmicron's, asr's array name, isw's and
 * ddf1's volume name (default Volume0). isw's and ddf1's RAID10 (mirror pairs striped) is raid01 here,
 * as dmraid names it; isw spare: a spare disk's own metadata. FORMAT pdc:S puts Promise metadata S
 * sectors before the end of the disk (one of the places dmraid probes; default 63); ddf1:le writes
 * DDF little-endian. */
#include "raidsyn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, const char *path)
{
	fprintf(stderr, "mkraid: %s: %s\n", path, what ? what : strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	const char *source = NULL;
	char serial_list[1024] = "";
	const char *serials[64] = { 0 };
	while (argc > 2 && (!strcmp(argv[1], "-d") || !strcmp(argv[1], "-s"))) {
		if (!strcmp(argv[1], "-d"))
			source = argv[2];
		else
			snprintf(serial_list, sizeof(serial_list), "%s", argv[2]);
		argv += 2;
		argc -= 2;
	}
	size_t nserials = 0;
	for (char *save = NULL, *t = strtok_r(serial_list, ",", &save); t && nserials < 64;
	     t = strtok_r(NULL, ",", &save))
		serials[nserials++] = t;
	if (argc < 9 || argc > 10) {
		fprintf(stderr, "usage: mkraid [-d SOURCE] [-s SERIAL,...] FORMAT LEVEL DISKS CHUNK DISK_SECTORS MEMBER_SECTORS ID PREFIX [NAME]\n"
				"levels: span raid0 raid1 raid10 raid01 raid5 spare\n");
		return 2;
	}
	int level = rs_level_by_name(argv[2]);
	if (level < 0) {
		fprintf(stderr, "mkraid: unknown level %s\n", argv[2]);
		return 2;
	}
	struct rs_spec s = {
		.fmt = argv[1], .level = (enum rs_level)level, .disks = (unsigned)strtoul(argv[3], NULL, 0),
		.chunk = (unsigned)strtoul(argv[4], NULL, 0), .disk_sectors = strtoull(argv[5], NULL, 0),
		.member_sectors = strtoull(argv[6], NULL, 0), .id = (uint32_t)strtoul(argv[7], NULL, 0),
		.name = argc > 9 ? argv[9] : NULL, .serials = nserials ? serials : NULL,
	};
	if (s.disks > 64)
		return fail("more than 64 disks", argv[3]);
	char fmt[32];
	snprintf(fmt, sizeof(fmt), "%s", argv[1]);
	char *colon = strchr(fmt, ':');
	if (colon) {
		*colon = 0;
		if (!strcmp(colon + 1, "le"))
			s.little_endian = true;
		else
			s.pdc_end = (unsigned)strtoul(colon + 1, NULL, 0);
	}
	s.fmt = fmt;
	size_t size = (size_t)s.disk_sectors * 512;
	uint8_t *img = malloc(size), *src = NULL;
	if (!img)
		return fail(NULL, "memory");
	uint64_t vsize = rs_size(&s);
	if (source) {
		/* the virtual disk: SOURCE's first vsize sectors (zeros past its end) */
		src = calloc(vsize ? vsize : 1, 512);
		int sfd = open(source, O_RDONLY);
		if (!src || sfd < 0)
			return fail(NULL, source);
		if (read(sfd, src, (size_t)vsize * 512) < 0)
			return fail(NULL, source);
		close(sfd);
	}
	for (unsigned i = 0; i < s.disks; i++) {
		memset(img, 0, size);
		if (src && s.level != RS_SPARE && rs_fill(&s, i, src, img)) /* a spare holds no data */
			return fail("no data layout for this level", argv[2]);
		if (rs_write(&s, i, img)) {
			fprintf(stderr, "mkraid: %s has no %s of %u disks (or the sizes do not fit it)\n", s.fmt,
				argv[2], s.disks);
			return 1;
		}
		char path[4096];
		snprintf(path, sizeof(path), "%s%u.img", argv[8], i);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			return fail(NULL, path);
		}
		/* write only the sectors that are not zero, so that the file stays sparse */
		for (size_t off = 0; off < size; off += 512) {
			size_t k = 0;
			while (k < 512 && !img[off + k])
				k++;
			if (k < 512 && pwrite(fd, img + off, 512, (off_t)off) != 512)
				return fail(NULL, path);
		}
		close(fd);
	}
	printf("%llu\n", (unsigned long long)vsize);
	free(img);
	free(src);
	return 0;
}
