/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The losetup applet: util-linux's options and output formats over src/loop.c. */
#include "applets.h"
#include "common.h"
#include "../loop.h"
#include "../node.h"
#include "../util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum col { C_NAME, C_AUTOCLEAR, C_BACKFILE, C_BACKINO, C_BACKMAJMIN, C_MAJMIN, C_OFFSET, C_PARTSCAN, C_RO,
	   C_SIZELIMIT, C_DIO, C_LOGSEC, C_NCOLS };

static const struct {
	const char *name;
	bool right;
	enum { T_STR, T_NUM, T_BOOL } type;
	const char *help;
} cols[C_NCOLS] = {
	[C_NAME] = { "NAME", false, T_STR, "loop device name" },
	[C_AUTOCLEAR] = { "AUTOCLEAR", true, T_BOOL, "autoclear flag set" },
	[C_BACKFILE] = { "BACK-FILE", false, T_STR, "device backing file" },
	[C_BACKINO] = { "BACK-INO", true, T_NUM, "backing file inode number" },
	[C_BACKMAJMIN] = { "BACK-MAJ:MIN", true, T_STR, "backing file major:minor device number" },
	[C_MAJMIN] = { "MAJ:MIN", true, T_STR, "loop device major:minor number" },
	[C_OFFSET] = { "OFFSET", true, T_NUM, "offset from the beginning" },
	[C_PARTSCAN] = { "PARTSCAN", true, T_BOOL, "partscan flag set" },
	[C_RO] = { "RO", true, T_BOOL, "read-only device" },
	[C_SIZELIMIT] = { "SIZELIMIT", true, T_NUM, "size limit of the file in bytes" },
	[C_DIO] = { "DIO", true, T_BOOL, "access backing file with direct-io" },
	[C_LOGSEC] = { "LOG-SEC", true, T_NUM, "logical sector size in bytes" },
};

/* after LOOP_CONFIGURE with partscan: time for the kernel to add the partitions before their nodes
 * are made in a container's /dev */
#define PARTSCAN_SETTLE_MS 100

struct lopts {
	bool find, show, verbose, read_only, partscan, json, raw, noheadings, nooverlap;
	int direct_io; /* -1 unset, 0 off, 1 on */
	bool has_offset;
	uint64_t offset, sizelimit;
	unsigned block_size;
	enum col out[C_NCOLS];
	size_t nout;
};

static void usage(FILE *f)
{
	fprintf(f, "\nUsage:\n losetup [options] [<loopdev>]\n losetup [options] -f | <loopdev> <file>\n\n"
		   "Set up and control loop devices.\n\nOptions:\n"
		   " -a, --all                     list all used devices\n"
		   " -d, --detach <loopdev>...     detach one or more devices\n"
		   " -D, --detach-all              detach all used devices\n"
		   " -f, --find                    find first unused device\n"
		   " -c, --set-capacity <loopdev>  resize the device\n"
		   " -j, --associated <file>       list all devices associated with <file>\n"
		   " -L, --nooverlap               avoid possible conflict between devices\n\n"
		   " -o, --offset <num>            start at offset <num> into file\n"
		   "     --sizelimit <num>         device is limited to <num> bytes of the file\n"
		   " -b, --sector-size <num>       set the logical sector size to <num>\n"
		   " -P, --partscan                create a partitioned loop device\n"
		   " -r, --read-only               set up a read-only loop device\n"
		   "     --direct-io[=<on|off>]    open backing file with O_DIRECT\n"
		   "     --show                    print device name after setup (with -f)\n"
		   " -v, --verbose                 verbose mode\n\n"
		   " -J, --json                    use JSON --list output format\n"
		   " -l, --list                    list info about all or specified (default)\n"
		   " -n, --noheadings              don't print headings for --list output\n"
		   " -O, --output <cols>           specify columns to output for --list\n"
		   "     --output-all              output all columns\n"
		   "     --raw                     use raw --list output format\n\n"
		   " -h, --help                    display this help\n"
		   " -V, --version                 display version\n\n"
		   "Available output columns:\n");
	for (int i = 0; i < C_NCOLS; i++)
		fprintf(f, " %12s  %s\n", cols[i].name, cols[i].help);
	fprintf(f, "\nSizes take the suffixes KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB (powers of 1000).\n"
		   "Exit status: 0 done, 1 failure.\n");
}

/* "1MiB", "512", "4K", "1MB" -> bytes; -EINVAL on junk, -ERANGE on overflow */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));
		unsigned base = 1024;
		if (!u || !*u)
			return -EINVAL;
		end++;
		if (!strcasecmp(end, "iB") || !*end)
			base = 1024;
		else if (!strcasecmp(end, "B"))
			base = 1000;
		else
			return -EINVAL;
		for (const char *k = units; k <= u; k++)
			mul *= base;
	}
	if (v && mul > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

/* "/dev/loop7" or "loop7" -> 7 */
static int loop_index_of(const char *dev)
{
	const char *b = strrchr(dev, '/');
	struct stat st;
	int idx = pm_loop_index_of_name(b ? b + 1 : dev);

	if (idx >= 0)
		return idx;
	/* a node under another name: its device number */
	if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode))
		return pm_loop_index_of(st.st_rdev);
	return -ENODEV;
}

static bool node_exists(int idx)
{
	char p[64];
	snprintf(p, sizeof(p), "/dev/loop%d", idx);
	return access(p, F_OK) == 0;
}

struct infos {
	struct pm_loop_info *v;
	size_t n, cap;
};

static int add_info(const struct pm_loop_info *li, void *arg)
{
	struct infos *b = arg;

	if (pm_grow(&b->v, b->n, &b->cap, sizeof(*b->v)) < 0)
		return -ENOMEM;
	b->v[b->n++] = *li;
	return 0;
}

/* the bound loop devices with their state, in sysfs directory order (as util-linux lists them): one
 * pass, each device's backing path read once */
static int bound_infos(struct pm_loop_info **out, size_t *n)
{
	struct infos b = { 0 };
	int r = pm_loop_each_info(add_info, &b, 0);

	if (r < 0) {
		free(b.v); /* nothing half-returned */
		b.v = NULL;
		b.n = 0;
	}
	*out = b.v;
	*n = b.n;
	return r;
}

static void print_status_line(const struct pm_loop_info *li)
{
	if (li->backing_known)
		printf("/dev/loop%d%s: [%04ju]:%ju (%s)", li->index, node_exists(li->index) ? "" : " (lost)",
		       (uintmax_t)li->backing_dev, (uintmax_t)li->backing_ino, li->backing);
	else /* the backing file's numbers not known: util-linux prints them empty */
		printf("/dev/loop%d%s: []: (%s)", li->index, node_exists(li->index) ? "" : " (lost)", li->backing);
	if (li->offset)
		printf(", offset %" PRIu64, li->offset);
	if (li->sizelimit)
		printf(", sizelimit %" PRIu64, li->sizelimit);
	printf("\n");
}

/* one cell as text */
static void cell(const struct pm_loop_info *li, enum col c, char *buf, size_t len)
{
	char path[64];
	dev_t d;

	switch (c) {
	case C_NAME:
		snprintf(buf, len, "/dev/loop%d%s", li->index, node_exists(li->index) ? "" : " (lost)");
		break;
	case C_AUTOCLEAR: snprintf(buf, len, "%d", li->autoclear); break;
	case C_BACKFILE: snprintf(buf, len, "%s", li->backing); break;
	/* empty (JSON null) when the backing file's numbers are not known: its status ioctl failed, as
	 * for a file on a FUSE mount whose server is gone; util-linux prints nothing there either */
	case C_BACKINO:
		if (li->backing_known)
			snprintf(buf, len, "%ju", (uintmax_t)li->backing_ino);
		else
			buf[0] = 0;
		break;
	case C_BACKMAJMIN:
		/* util-linux pads these the same way in every format, JSON and raw included */
		if (li->backing_known)
			snprintf(buf, len, "%8u:%-3u", major(li->backing_dev), minor(li->backing_dev));
		else
			buf[0] = 0;
		break;
	case C_MAJMIN:
		snprintf(path, sizeof(path), "/sys/block/loop%d/dev", li->index);
		if (pm_sysfs_devnum(path, &d) < 0)
			buf[0] = 0; /* gone since it was listed */
		else
			snprintf(buf, len, "%3u:%-3u", major(d), minor(d));
		break;
	case C_OFFSET: snprintf(buf, len, "%" PRIu64, li->offset); break;
	case C_PARTSCAN: snprintf(buf, len, "%d", li->partscan); break;
	case C_RO: snprintf(buf, len, "%d", li->read_only); break;
	case C_SIZELIMIT: snprintf(buf, len, "%" PRIu64, li->sizelimit); break;
	case C_DIO: snprintf(buf, len, "%d", li->direct_io); break;
	case C_LOGSEC: snprintf(buf, len, "%u", pm_loop_block_size(li->index)); break;
	default: buf[0] = 0;
	}
}

static void raw_string(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == '\\' || *p >= 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static int list(const struct lopts *o, const struct pm_loop_info *li, size_t m)
{
	size_t width[C_NCOLS] = { 0 };
	char buf[PATH_MAX + 64];

	if (o->json) {
		printf("{\n   \"loopdevices\": [\n");
		for (size_t i = 0; i < m; i++) {
			printf("%s", i ? "{\n" : "      {\n");
			for (size_t k = 0; k < o->nout; k++) {
				enum col c = o->out[k];
				char key[32];
				size_t j;
				for (j = 0; cols[c].name[j] && j < sizeof(key) - 1; j++)
					key[j] = (char)tolower((unsigned char)cols[c].name[j]);
				key[j] = 0;
				cell(&li[i], c, buf, sizeof(buf));
				printf("         \"%s\": ", key);
				if (!buf[0] && (c == C_BACKINO || c == C_BACKMAJMIN))
					printf("null");
				else if (cols[c].type == T_BOOL)
					printf("%s", buf[0] == '1' ? "true" : "false");
				else if (cols[c].type == T_NUM)
					printf("%s", buf);
				else
					cli_json_str(stdout, buf);
				printf("%s\n", k + 1 < o->nout ? "," : "");
			}
			printf("      }%s", i + 1 < m ? "," : "\n");
		}
		if (!m)
			printf("\n");
		printf("   ]\n}\n");
		return 0;
	}
	if (o->raw) {
		if (!o->noheadings)
			for (size_t k = 0; k < o->nout; k++)
				printf("%s%s", cols[o->out[k]].name, k + 1 < o->nout ? " " : "\n");
		for (size_t i = 0; i < m; i++)
			for (size_t k = 0; k < o->nout; k++) {
				cell(&li[i], o->out[k], buf, sizeof(buf));
				raw_string(buf);
				printf("%s", k + 1 < o->nout ? " " : "\n");
			}
		return 0;
	}
	if (!m)
		return 0;
	for (size_t k = 0; k < o->nout; k++) {
		width[k] = strlen(cols[o->out[k]].name); /* headings count even when not shown */
		for (size_t i = 0; i < m; i++) {
			cell(&li[i], o->out[k], buf, sizeof(buf));
			if (strlen(buf) > width[k])
				width[k] = strlen(buf);
		}
	}
	for (size_t i = o->noheadings ? 1 : 0; i <= m; i++) {
		for (size_t k = 0; k < o->nout; k++) {
			enum col c = o->out[k];
			bool last = k + 1 == o->nout;
			if (i == 0)
				pm_strlcpy(buf, cols[c].name, sizeof(buf));
			else
				cell(&li[i - 1], c, buf, sizeof(buf));
			if (cols[c].right)
				printf("%*s", (int)width[k], buf);
			else if (last)
				printf("%s", buf);
			else
				printf("%-*s", (int)width[k], buf);
			printf("%s", last ? "\n" : " ");
		}
	}
	return 0;
}

static int parse_columns(struct lopts *o, const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	o->nout = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int c;
		for (c = 0; c < C_NCOLS; c++)
			if (!strcasecmp(tok, cols[c].name))
				break;
		if (c == C_NCOLS) {
			fprintf(stderr, "losetup: unknown column: %s\n", tok);
			r = -EINVAL;
			break;
		}
		if (o->nout < C_NCOLS)
			o->out[o->nout++] = (enum col)c;
	}
	free(copy);
	return r;
}

static int attach(const struct lopts *o, const char *dev, const char *file)
{
	struct pm_loop_cfg cfg = {
		.index = -1,
		.control_fd = -1,
		.offset = o->offset,
		.sizelimit = o->sizelimit,
		.block_size = o->block_size,
		.read_only = o->read_only,
		.partscan = o->partscan,
		.direct_io = o->direct_io == 1,
	};
	char tag[64];
	struct stat st;
	uint64_t size;
	_cleanup_close_ int fd = -1;
	int idx;

	if (dev) {
		cfg.index = loop_index_of(dev);
		if (cfg.index < 0) {
			fprintf(stderr, "losetup: %s: not a loop device\n", dev);
			return 1;
		}
	}
	/* open once and ask the descriptor: type, size and device/inode all describe the file bound */
	/* O_NONBLOCK: a FIFO must not hang the open; cleared again for the file bound */
	fd = open(file, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | (o->direct_io == 1 ? O_DIRECT : 0));
	if (fd < 0 && !o->read_only && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (o->direct_io == 1 ? O_DIRECT : 0));
		cfg.read_only = true;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "losetup: %s: failed to set up loop device: %s\n", file, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		fprintf(stderr, "losetup: %s: failed to set up loop device: %s\n", file,
			S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file or block device");
		return 1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0)
		size = 0;
	if (o->offset >= size && size) {
		fprintf(stderr, "losetup: %s: offset %" PRIu64 " is past the end of the file (%" PRIu64 " bytes): nothing attached\n",
			file, o->offset, size);
		return 1;
	}
	if (o->sizelimit && o->sizelimit < 512) {
		fprintf(stderr, "losetup: %s: a size limit of %" PRIu64 " bytes gives a device of no sectors (0 means the whole file): nothing attached\n",
			file, o->sizelimit);
		return 1;
	}
	snprintf(tag, sizeof(tag), "%s", file);
	cfg.tag = tag;
	if (o->nooverlap && !dev) {
		/* -L: reuse a device with the same file, offset and size limit */
		_cleanup_free_ struct pm_loop_info *v = NULL;
		size_t n;
		if (bound_infos(&v, &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				const struct pm_loop_info *li = &v[i];
				if (li->backing_known && li->backing_dev == st.st_dev && li->backing_ino == st.st_ino &&
				    li->offset == o->offset && li->sizelimit == o->sizelimit) {
					if (o->show)
						printf("/dev/loop%d\n", li->index);
					return 0;
				}
			}
		}
	}
	idx = pm_loop_attach(fd, &cfg, NULL);
	if (idx < 0) {
		fprintf(stderr, "losetup: %s: failed to set up loop device: %s\n", file,
			idx == -EBUSY ? "Device or resource busy" :
			idx == -EIO ? "the kernel did not set the device up as asked (nothing attached)" : strerror(-idx));
		return 1;
	}
	if (o->partscan) {
		/* a container's /dev gets no partition nodes from the kernel: make them */
		char sys[96];
		DIR *d;
		struct dirent *de;
		pm_sleep_ms(PARTSCAN_SETTLE_MS);
		snprintf(sys, sizeof(sys), "/sys/block/loop%d", idx);
		if ((d = opendir(sys))) {
			while ((de = readdir(d))) {
				char devf[PATH_MAX], node[PATH_MAX];
				dev_t pd;
				if (strncmp(de->d_name, "loop", 4))
					continue;
				snprintf(devf, sizeof(devf), "%s/%s/dev", sys, de->d_name);
				snprintf(node, sizeof(node), "/dev/%s", de->d_name);
				if (pm_sysfs_devnum(devf, &pd) == 0)
					pm_node_ensure(node, pd, 0660, 0, 0, pm_dev_is_devtmpfs() ? 500 : 0, NULL);
			}
			closedir(d);
		}
	}
	if (o->show)
		printf("/dev/loop%d\n", idx);
	if (o->verbose)
		printf("Loop device is /dev/loop%d\n", idx);
	return 0;
}

static int detach(const char *dev)
{
	int idx = loop_index_of(dev), r;

	if (idx < 0) {
		fprintf(stderr, "losetup: %s: detach failed: %s\n", dev, strerror(ENODEV));
		return 1;
	}
	{
		struct pm_loop_info li;
		if (pm_loop_info(idx, &li) != 1) {
			fprintf(stderr, "losetup: %s: detach failed: %s\n", dev, strerror(ENXIO));
			return 1;
		}
	}
	r = pm_loop_detach(idx, false);
	if (r < 0) {
		fprintf(stderr, "losetup: %s: detach failed: %s\n", dev, strerror(-r));
		return 1;
	}
	return 0;
}

int losetup_main(int argc, char **argv)
{
	enum { OPT_SIZELIMIT = 256, OPT_SHOW, OPT_DIO, OPT_RAW, OPT_OUTALL };
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "set-capacity", required_argument, NULL, 'c' },
		{ "detach", required_argument, NULL, 'd' },
		{ "detach-all", no_argument, NULL, 'D' },
		{ "find", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "associated", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' },
		{ "list", no_argument, NULL, 'l' },
		{ "nooverlap", no_argument, NULL, 'L' },
		{ "noheadings", no_argument, NULL, 'n' },
		{ "offset", required_argument, NULL, 'o' },
		{ "output", required_argument, NULL, 'O' },
		{ "output-all", no_argument, NULL, OPT_OUTALL },
		{ "sizelimit", required_argument, NULL, OPT_SIZELIMIT },
		{ "sector-size", required_argument, NULL, 'b' },
		{ "partscan", no_argument, NULL, 'P' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "direct-io", optional_argument, NULL, OPT_DIO },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "show", no_argument, NULL, OPT_SHOW },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	enum { A_NONE, A_ALL, A_CAPACITY, A_DETACH, A_DETACH_ALL, A_ASSOC, A_LIST } action = A_NONE;
	struct lopts o = { .direct_io = -1 };
	const char *assoc = NULL, *capdev = NULL;
	bool columns_given = false;
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ab:c:dDfhj:JlLno:O:PrvV", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': action = A_ALL; break;
		case 'c': action = A_CAPACITY; capdev = optarg; break;
		case 'd': action = A_DETACH; break;
		case 'D': action = A_DETACH_ALL; break;
		case 'f': o.find = true; break;
		case 'j': action = A_ASSOC; assoc = optarg; break;
		case 'J': o.json = true; action = A_LIST; break;
		case 'l': action = A_LIST; break;
		case 'L': o.nooverlap = true; break;
		case 'n': o.noheadings = true; break;
		case 'O':
			if (parse_columns(&o, optarg) < 0)
				return 1;
			columns_given = true;
			action = A_LIST;
			break;
		case OPT_OUTALL:
			for (int k = 0; k < C_NCOLS; k++)
				o.out[k] = (enum col)k;
			o.nout = C_NCOLS;
			columns_given = true;
			action = A_LIST;
			break;
		case 'o':
			if (parse_size(optarg, &o.offset) < 0) {
				fprintf(stderr, "losetup: invalid offset: '%s'\n", optarg);
				return 1;
			}
			o.has_offset = true;
			break;
		case OPT_SIZELIMIT:
			if (parse_size(optarg, &o.sizelimit) < 0) {
				fprintf(stderr, "losetup: invalid size: '%s'\n", optarg);
				return 1;
			}
			break;
		case 'b': {
			uint64_t v;
			if (parse_size(optarg, &v) < 0 || v < 512 || v > 4096 || (v & (v - 1))) {
				fprintf(stderr, "losetup: invalid sector size: '%s' (512, 1024, 2048 or 4096)\n", optarg);
				return 1;
			}
			o.block_size = (unsigned)v;
			break;
		}
		case 'P': o.partscan = true; break;
		case 'r': o.read_only = true; break;
		case OPT_DIO:
			if (!optarg || !strcmp(optarg, "on") || !strcmp(optarg, "1"))
				o.direct_io = 1;
			else if (!strcmp(optarg, "off") || !strcmp(optarg, "0"))
				o.direct_io = 0;
			else {
				fprintf(stderr, "losetup: unsupported --direct-io argument: %s\n", optarg);
				return 1;
			}
			break;
		case OPT_RAW: o.raw = true; action = A_LIST; break;
		case OPT_SHOW: o.show = true; break;
		case 'v': o.verbose = true; break;
		case 'V': printf("losetup (partmap) %s\n", PARTMAP_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "losetup: invalid option -- '%s'\nTry 'losetup --help' for more information.\n",
				argv[optind - 1]);
			return 1;
		}
	}
	if (!columns_given) {
		static const enum col def[] = { C_NAME, C_SIZELIMIT, C_OFFSET, C_AUTOCLEAR, C_RO, C_BACKFILE, C_DIO, C_LOGSEC };
		memcpy(o.out, def, sizeof(def));
		o.nout = ARRAY_SIZE(def);
	}

	switch (action) {
	case A_DETACH:
		if (optind >= argc) {
			fprintf(stderr, "losetup: -d needs a loop device\n");
			return 1;
		}
		for (int i = optind; i < argc; i++)
			rc |= detach(argv[i]);
		return rc;
	case A_DETACH_ALL: {
		_cleanup_free_ struct pm_loop_info *v = NULL;
		size_t n;
		if (bound_infos(&v, &n) < 0)
			return 1;
		for (size_t i = 0; i < n; i++) {
			char dev[32];
			snprintf(dev, sizeof(dev), "/dev/loop%d", v[i].index);
			rc |= detach(dev);
		}
		return rc;
	}
	case A_CAPACITY: {
		int idx = loop_index_of(capdev), r;
		r = idx < 0 ? idx : pm_loop_set_sizelimit(idx, UINT64_MAX);
		if (r < 0) {
			fprintf(stderr, "losetup: %s: set capacity failed: %s\n", capdev, strerror(-r));
			return 1;
		}
		return 0;
	}
	case A_ALL:
	case A_ASSOC: {
		_cleanup_free_ struct pm_loop_info *v = NULL;
		size_t n;
		struct stat st;
		if (assoc && stat(assoc, &st) < 0) {
			fprintf(stderr, "losetup: %s: %s\n", assoc, strerror(errno));
			return 1;
		}
		if (bound_infos(&v, &n) < 0)
			return 1;
		for (size_t i = 0; i < n; i++) {
			const struct pm_loop_info *li = &v[i];
			if (assoc && (!li->backing_known || li->backing_dev != st.st_dev || li->backing_ino != st.st_ino ||
				      (o.has_offset && li->offset != o.offset)))
				continue;
			print_status_line(li);
		}
		return 0;
	}
	case A_LIST: {
		_cleanup_free_ struct pm_loop_info *v = NULL;
		size_t n = 0;
		if (optind < argc) {
			/* the devices named, those of them bound */
			v = calloc((size_t)(argc - optind), sizeof(*v));
			if (!v)
				return 1;
			for (int i = optind; i < argc; i++) {
				int idx = loop_index_of(argv[i]);
				if (idx < 0) {
					fprintf(stderr, "losetup: %s: not a loop device\n", argv[i]);
					return 1;
				}
				if (pm_loop_info(idx, &v[n]) == 1)
					n++;
			}
		} else if (bound_infos(&v, &n) < 0) {
			return 1;
		}
		return list(&o, v, n);
	}
	default:
		break;
	}

	if (o.find && optind == argc) {
		/* -f alone: name the first free device */
		int idx = pm_loop_get_free(-1);
		if (idx < 0) {
			fprintf(stderr, "losetup: cannot find an unused loop device: %s\n", strerror(-idx));
			return 1;
		}
		printf("/dev/loop%d\n", idx);
		return 0;
	}
	if (o.find && optind == argc - 1)
		return attach(&o, NULL, argv[optind]);
	if (!o.find && optind == argc - 2)
		return attach(&o, argv[optind], argv[optind + 1]);
	if (!o.find && optind == argc - 1) {
		/* one device: its status line */
		struct pm_loop_info li;
		int idx = loop_index_of(argv[optind]);
		if (idx < 0 || pm_loop_info(idx, &li) != 1) {
			fprintf(stderr, "losetup: %s: %s\n", argv[optind], strerror(idx < 0 ? ENOENT : ENXIO));
			return 1;
		}
		print_status_line(&li);
		return 0;
	}
	if (optind == argc) {
		/* no arguments: the list of used devices */
		_cleanup_free_ struct pm_loop_info *v = NULL;
		size_t n;
		if (bound_infos(&v, &n) < 0)
			return 1;
		return list(&o, v, n);
	}
	usage(stderr);
	return 1;
}
