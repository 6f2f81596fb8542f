/* SPDX-License-Identifier: GPL-2.0-or-later */
/* partmap: one binary, applets chosen by the name it is called by or by its first argument. */
#include "applets.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*main)(int, char **);
	const char *what;
} applets[] = {
	{ "kpartx", kpartx_main, "list and map the partitions of a block device or disk image" },
	{ "dmsetup", dmsetup_main, "device-mapper devices, as lvm2's dmsetup" },
	{ "losetup", losetup_main, "loop devices, as util-linux's losetup" },
	{ "image", image_main, "VM disk images: info, raw (as qemu-img info, convert -O raw)" },
	{ "fuse", fuse_main_applet, "a disk image's disk and partitions as files, no root" },
	{ "dmraid", dmraid_main, "BIOS RAID sets (Intel, DDF, ...) from member disks or images, as dmraid" },
	{ "serve", serve_main, NULL }, /* internal: the userspace device mapper's server (dmsetup starts it) */
};

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: partmap APPLET [ARGS...]   (or call it by an applet's name through a link)\n"
		   "       partmap --help | --version\n"
		   "applets:\n");
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		if (applets[i].what) /* NULL: internal, not listed */
			fprintf(f, "  %-9s %s\n", applets[i].name, applets[i].what);
	fprintf(f, "partmap APPLET --help describes one; man partmap, man partmap-APPLET\n");
}

int main(int argc, char **argv)
{
	const char *me = argc > 0 ? base(argv[0]) : "partmap";

	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		if (!strcmp(me, applets[i].name))
			return applets[i].main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("partmap %s\n", PARTMAP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		if (!strcmp(argv[1], applets[i].name))
			return applets[i].main(argc - 1, argv + 1);
	fprintf(stderr, "partmap: unknown applet '%s'\n", argv[1]);
	usage(stderr);
	return 1;
}
