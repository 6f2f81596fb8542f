/* SPDX-License-Identifier: GPL-2.0-or-later */
/* partmap: one binary, applets chosen by the name it is called by or by its first argument. */
#include "applets.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*main)(int, char **);
} applets[] = {
	{ "kpartx", kpartx_main },
	{ "dmsetup", dmsetup_main },
	{ "losetup", losetup_main },
	{ "image", image_main },
	{ "fuse", fuse_main_applet },
	{ "serve", serve_main },
};

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: partmap APPLET [ARGS...]   (or call it as kpartx, dmsetup, losetup)\n"
		   "applets:");
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
		fprintf(f, " %s", applets[i].name);
	fprintf(f, "\n");
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
