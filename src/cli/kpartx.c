/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kpartx applet: option parsing compatible with multipath-tools' kpartx, and -l. */
#include "applets.h"
#include "common.h"
#include "../image/image.h"
#include "../loop.h"
#include "../dm.h"
#include "../map/map.h"
#include "../names.h"
#include "../serve.h"
#include "../ptable.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum action { ACT_LIST, ACT_ADD, ACT_DELETE, ACT_UPDATE };

struct kopts {
	enum action action;
	bool readonly, force_devmap, verbose, json, nowait, snapshot;
	const char *delim;      /* NULL = default rule */
	struct pm_opts probe;
	const char *backend;
	const char *format;     /* --format; NULL = detect */
	const char *shown;      /* the name messages give the device (an image behind its server) */
	const struct stat *expect; /* the file probed: what -a/-d/-u maps must be this one */
	int udev_wait_ms;       /* PARTMAP_UDEV_TIMEOUT */
};

/* What a path stands for: the device printed, the base of the map names, the disk to read. */
struct target {
	const char *path;
	char device[PATH_MAX];
	char base[PM_NAME_MAX];
	struct pm_disk disk;
	bool is_file;
	struct pm_image *img;   /* an image file (raw included), for -l */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage : kpartx [-a|-d|-u|-l] [-r|--snapshot] [-p STR] [-f] [-g] [-s|-n] [-v] [-t TYPE] [--json]\n"
		"               [--sector-size N] [--format FMT] [--backend=dm|part|loop] wholedisk\n"
		"\twholedisk: a block device or a disk image file (raw, qcow2, vmdk, vhd, vhdx, vdi)\n"
		"\t-a add partition devmappings\n"
		"\t-r devmappings will be readonly\n"
		"\t-d del partition devmappings (and detach an image's loop device)\n"
		"\t-u update partition devmappings (add, and remove those no longer in the table)\n"
		"\t-l list partitions devmappings that would be added by -a (the default)\n"
		"\t-p STR set device name-partition number delimiter (default: p after a digit)\n"
		"\t-g force GUID partition table (GPT)\n"
		"\t-f force devmap create; with -d, also remove linear maps over a parent\n"
		"\t   without a DM UUID that no tool made\n"
		"\t-v verbose\n"
		"\t-n nosync mode. Return before the partitions are created\n"
		"\t-s sync mode (Default). Don't return until the partitions are created\n"
		"\t-t TYPE read only this table type (%s",
		pm_table_type(0));
	for (size_t i = 1; pm_table_type(i); i++)
		fprintf(f, ", %s", pm_table_type(i));
	fprintf(f, ")\n"
		   "\t--json            with -l: print the partitions as JSON\n"
		   "\t--format FMT      read the file as this image format (raw, qcow2, vmdk, vhd, vhdx, vdi;\n"
		   "\t                  default: detected by its magic)\n"
		   "\t--sector-size N   read the table with N-byte sectors (512, 4096 ...)\n"
		   "\t--snapshot        with -a, an image file: read-write, but every write goes to a temporary\n"
		   "\t                  qcow2 overlay (in $TMPDIR, else /var/tmp) thrown away at -d; the image\n"
		   "\t                  is only read (as qemu-nbd --snapshot); raw images too\n"
		   "\t--backend=B       map with B: dm (device mapper), part (kernel partitions on a loop\n"
		   "\t                  device) or loop (a loop device per partition); default: the one\n"
		   "\t                  of existing mappings, else dm where the kernel has it, else part\n"
		   "\t                  (loop devices and images), else loop\n"
		   "\t--help            print this help\n"
		   "\t--version         print the version\n"
		   "environment: PARTMAP_UDEV_TIMEOUT=N seconds to wait for udev (default 10),\n"
		   "\tDM_DISABLE_UDEV (set) make /dev/mapper nodes without udev\n"
		   "exit status: 0 done (also: no partition table), 1 usage or open error or a failed\n"
		   "mapping, 2 a partition table was found but is too damaged to list anything,\n"
		   "3 (-a of an image) it is in use: qemu or another partmap writes it; nothing mapped\n"
		   "see also: man partmap-kpartx\n");
}

static int parse_opts(int argc, char **argv, struct kopts *o)
{
	enum { OPT_JSON = 256, OPT_SSZ, OPT_VERSION, OPT_HELP, OPT_BACKEND, OPT_FORMAT, OPT_SNAPSHOT };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sector-size", required_argument, NULL, OPT_SSZ },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "rladfgvp:t:snu", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->readonly = true; break;
		case 'l': o->action = ACT_LIST; break;
		case 'a': o->action = ACT_ADD; break;
		case 'd': o->action = ACT_DELETE; break;
		case 'u': o->action = ACT_UPDATE; break;
		case 'f': o->force_devmap = true; break;
		case 'g': o->probe.force_gpt = true; break;
		case 'v': o->verbose = true; break;
		case 'p': o->delim = optarg; break;
		case 't': o->probe.only = optarg; break;
		case 's': o->nowait = false; break;
		case 'n': o->nowait = true; break;
		case OPT_JSON: o->json = true; break;
		case OPT_BACKEND: o->backend = optarg; break;
		case OPT_FORMAT: o->format = optarg; break;
		case OPT_SNAPSHOT: o->snapshot = true; break;
		case OPT_SSZ: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 512 || v > 65536 || (v & (v - 1))) {
				fprintf(stderr, "kpartx: invalid sector size '%s' (a power of two from 512 to 65536)\n", optarg);
				return 1;
			}
			o->probe.sector_size = (unsigned)v;
			break;
		}
		case OPT_VERSION:
			printf("kpartx (partmap) %s\n", PARTMAP_VERSION);
			return 0;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stdout);
			return 1;
		}
	}
	if (o->format && strcmp(o->format, "auto")) {
		bool ok = !strcmp(o->format, "vpc");
		for (int i = 0; pm_image_formats[i]; i++)
			ok |= !strcmp(pm_image_formats[i], o->format);
		if (!ok) {
			fprintf(stderr, "kpartx: unknown image format '%s' (raw, qcow2, vmdk, vhd, vhdx, vdi)\n", o->format);
			return 1;
		}
	}
	if (o->snapshot && o->readonly && o->action != ACT_DELETE) {
		fprintf(stderr, "kpartx: --snapshot maps read-write (into a temporary overlay), -r read-only: give one\n");
		return 1;
	}
	if (o->probe.only) {
		if (!pm_table_type_known(o->probe.only)) {
			fprintf(stderr, "kpartx: unknown partition table type '%s'\n", o->probe.only);
			return 1;
		}
	}
	return -1;
}

/* Open PATH once, read-only, and check what was opened (O_NONBLOCK: a FIFO cannot hang the open):
 * a disk image or a block device. The descriptor, or -1 with a message. Everything after reads this
 * descriptor, so type, size and identity all describe one file. */
static int open_checked(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0 || fstat(fd, st) < 0) {
		fprintf(stderr, "kpartx: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		fprintf(stderr, "kpartx: %s: %s\n", path, S_ISDIR(st->st_mode) ?
			"is a directory, not a disk image or block device" : "not a disk image or block device");
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* -v: the image's layers (never inlined, as open_target) */
static __attribute__((noinline)) void print_layers(struct pm_image *img, const char *path)
{
	struct pm_image_layer l[PM_IMG_MAX_CHAIN];
	unsigned n = pm_image_layers(img, l, PM_IMG_MAX_CHAIN);

	fprintf(stderr, "kpartx: %s: %s image, virtual size %" PRIu64 " bytes", path, l[0].format, l[0].virtual_size);
	for (unsigned i = 1; i < n; i++)
		fprintf(stderr, "%s %s (%s)", i == 1 ? ", backing chain:" : " ->", l[i].path, l[i].format);
	fputc('\n', stderr);
}

/* Set up the target: open it, choose the device and base names. Returns 0 or an exit code. Never
 * inlined: its buffers leave the stack before -l lists. */
static __attribute__((noinline)) int open_target(struct target *t, const char *path, struct kopts *o)
{
	struct stat st;
	int fd, r;

	memset(t, 0, sizeof(*t));
	t->path = path;
	fd = open_checked(path, &st);
	if (fd < 0)
		return 1;
	r = pm_disk_from_fd(&t->disk, fd);
	if (r < 0) {
		close(fd);
		fprintf(stderr, "kpartx: %s: cannot open: %s\n", path, strerror(-r));
		return 1;
	}
	t->disk.owns_fd = true;
	if (t->disk.is_blockdev) {
		pm_strlcpy(t->device, path, sizeof(t->device));
		if (pm_dm_name_of(t->disk.rdev, t->base, sizeof(t->base)) < 0 &&
		    pm_base_from_path(t->base, sizeof(t->base), path) < 0) {
			fprintf(stderr, "kpartx: %s: cannot make a map name from this path\n", path);
			return 1;
		}
		return 0;
	}

	t->is_file = true;
	struct pm_image_diag diag;
	r = pm_image_open_fd(&t->img, t->disk.fd, path, o->format, &diag);
	cli_image_warnings("kpartx", &diag);
	if (r < 0) {
		fprintf(stderr, "kpartx: %s\n", diag.error[0] ? diag.error : strerror(-r));
		return 1;
	}
	bool raw = !strcmp(pm_image_format(t->img), "raw");
	if (!raw) {
		/* the virtual disk, read through the image layer */
		pm_disk_close(&t->disk);
		pm_disk_from_image(&t->disk, t->img);
	}
	if (o->verbose)
		print_layers(t->img, path);
	/* an image file: named after the loop device that holds it, or the one -a would take */
	struct pm_loop_info li;
	int idx = -1;
	char dir[PM_SERVE_PATH_MAX], served[PM_SERVE_PATH_MAX];
	pm_serve_dir(st.st_dev, st.st_ino, dir, sizeof(dir));
	pm_serve_disk(dir, served, sizeof(served));
	if (pm_loop_find_path(served, pm_image_size(t->img), &li) == 1) {
		idx = li.index; /* served and mapped by -a (a raw image too, with --snapshot): the names it made */
	} else if (raw && pm_loop_find_whole(st.st_dev, st.st_ino, (uint64_t)st.st_size, &li) == 1) {
		idx = li.index;
		unsigned bs = pm_loop_block_size(li.index);
		if (!o->probe.sector_size && bs != 512)
			o->probe.sector_size = bs;
	} else {
		idx = pm_loop_next_free(); /* the name, without making the kernel create a device */
	}
	if (idx >= 0) {
		snprintf(t->device, sizeof(t->device), "/dev/loop%d", idx);
		snprintf(t->base, sizeof(t->base), "loop%d", idx);
		return 0;
	}
	if (!realpath(path, t->device))
		pm_strlcpy(t->device, path, sizeof(t->device));
	if (pm_base_from_path(t->base, sizeof(t->base), path) < 0) {
		fprintf(stderr, "kpartx: %s: cannot make a map name from this path\n", path);
		return 1;
	}
	return 0;
}

static const char *kind_name(enum pm_kind k)
{
	switch (k) {
	case PM_EXTENDED: return "extended";
	case PM_LOGICAL: return "logical";
	case PM_NESTED: return "nested";
	default: return "primary";
	}
}

static void print_json(const struct target *t, const struct pm_table *tab, const char *delim)
{
	printf("{\"device\":");
	cli_json_str(stdout, t->device);
	printf(",\"table\":");
	if (tab->type)
		cli_json_str(stdout, tab->type);
	else
		printf("null");
	printf(",\"sector_size\":%u,\"image\":", tab->sector_size);
	if (t->img)
		cli_image_json(stdout, t->img);
	else
		printf("null");
	printf(",\"partitions\":[");
	for (size_t i = 0; i < tab->nparts; i++) {
		const struct pm_part *p = &tab->parts[i];
		char name[PM_NAME_MAX + 16], guid[37];

		if (pm_part_name(name, sizeof(name), t->base, delim, p->num) < 0)
			snprintf(name, sizeof(name), "?");
		printf("%s\n {\"number\":%u,\"name\":", i ? "," : "", p->num);
		cli_json_str(stdout, name);
		printf(",\"start\":%" PRIu64 ",\"size\":%" PRIu64 ",\"start_bytes\":%" PRIu64 ",\"size_bytes\":%" PRIu64,
		       p->start, p->size, p->start * 512, p->size * 512);
		printf(",\"table\":\"%s\",\"sector_size\":%u,\"kind\":\"%s\"", tab->type, tab->sector_size,
		       kind_name(p->kind));
		if (p->has_dos_type)
			printf(",\"type\":\"0x%02x\"", p->dos_type);
		if (p->has_guid) {
			pm_guid_str(p->type_guid, guid);
			printf(",\"type\":\"%s\"", guid);
			pm_guid_str(p->uuid, guid);
			printf(",\"uuid\":\"%s\"", guid);
		} else if (tab->has_disk_id && p->kind != PM_NESTED) {
			/* the kernel's PARTUUID of a DOS partition: disk signature and number */
			printf(",\"uuid\":\"%08x-%02x\"", tab->disk_id, p->num);
		}
		if (p->label[0]) {
			printf(",\"part_name\":");
			cli_json_str(stdout, p->label);
		}
		if (p->container) {
			printf(",\"container\":%u", p->container);
			if (p->sublabel)
				printf(",\"sublabel\":\"%s\"", p->sublabel);
		} else {
			printf(",\"container\":null");
		}
		if (p->flags & PM_PF_TRUNCATED)
			printf(",\"truncated\":true");
		printf("}");
	}
	printf("%s]}\n", tab->nparts ? "\n" : "");
}

static int do_list(struct target *t, const struct kopts *o)
{
	struct pm_table tab;
	const char *delim = o->delim ? o->delim : pm_default_delim(t->base);
	int r, rc = 0;

	r = pm_probe(&t->disk, &o->probe, &tab);
	for (size_t i = 0; i < tab.nwarnings; i++)
		fprintf(stderr, "kpartx: %s: warning: %s\n", t->path, tab.warnings[i]);
	if (tab.dropped_warnings)
		fprintf(stderr, "kpartx: %s: %zu more warnings not shown\n", t->path, tab.dropped_warnings);
	if (r == -EBADMSG) {
		fprintf(stderr, "kpartx: %s: %s\n", t->path, tab.error);
		rc = 2;
	} else if (r < 0) {
		fprintf(stderr, "kpartx: %s: %s\n", t->path, tab.error[0] ? tab.error : strerror(-r));
		rc = 1;
	} else if (r == PM_NOTFOUND && o->verbose) {
		fprintf(stderr, "kpartx: %s: no partition table found\n", t->path);
	}
	if (o->json) {
		if (rc == 0)
			print_json(t, &tab, delim);
	} else if (rc == 0) {
		for (size_t i = 0; i < tab.nparts; i++) {
			const struct pm_part *p = &tab.parts[i];
			char name[PM_NAME_MAX + 16];

			if (pm_part_name(name, sizeof(name), t->base, delim, p->num) < 0) {
				fprintf(stderr, "kpartx: %s: the name for partition %u is too long\n", t->path, p->num);
				rc = 1;
				continue;
			}
			printf("%s : 0 %" PRIu64 " %s %" PRIu64 "\n", name, p->size, t->device, p->start);
		}
	}
	if (rc == 0 && o->verbose && tab.type)
		fprintf(stderr, "kpartx: %s: %s table, %u-byte sectors, %zu partitions\n", t->path, tab.type,
			tab.sector_size, tab.nparts);
	pm_table_free(&tab);
	return rc;
}

static void warn_loop_kept(const char *node, int err)
{
	fprintf(stderr, "kpartx: %s: warning: cannot remove the loop device made for partmap (%s): it stays, free\n",
		node, strerror(-err));
}

struct report_ctx {
	const struct kopts *o;
	int busy;
};

static void report(void *arg, enum pm_event ev, const struct pm_parent *p, const struct pm_mapping *m, int err)
{
	struct report_ctx *rc = arg;
	const char *name = m ? m->name : p->path;

	switch (ev) {
	case PM_EV_ADD:
		if (rc->o->verbose)
			printf("add map %s (%u:%u): 0 %" PRIu64 " linear %u:%u %" PRIu64 "\n", m->name, major(m->dev),
			       minor(m->dev), m->size, major(p->rdev), minor(p->rdev), m->start);
		break;
	case PM_EV_DEL:
		if (rc->o->verbose)
			printf("del devmap : %s\n", m->name);
		break;
	case PM_EV_BUSY:
		rc->busy++;
		fprintf(stderr, "kpartx: %s: in use (open or mounted), left in place\n", name);
		break;
	case PM_EV_FAIL:
		if (err == -EEXIST)
			fprintf(stderr, "kpartx: %s: a map or node of that name exists and is not a partition of %s: left alone\n",
				name, p->path);
		else
			fprintf(stderr, "kpartx: %s: %s\n", name, strerror(-err));
		break;
	case PM_EV_LOOPDEL:
		if (rc->o->verbose)
			fprintf(stderr, "loop deleted : %s\n", p->node);
		break;
	case PM_EV_WARN:
		fprintf(stderr, "kpartx: %s: warning: %s\n", name, strerror(-err));
		break;
	case PM_EV_LOOPKEPT:
		warn_loop_kept(m->node, err);
		break;
	}
	fflush(stdout);
}

/* Why backend b cannot map table t here, for the message: NULL when it can. */
static const char *cannot_map(const struct pm_backend *b, struct pm_parent *p, const struct pm_table *t, int *err)
{
	*err = b->usable(p);
	if (*err < 0)
		return "";
	*err = t && b->can_map ? b->can_map(p, t) : 0;
	if (*err == -EINVAL)
		return "the partitions overlap";
	if (*err == -ERANGE)
		return "partition numbers above 255 (the kernel's limit for partitions of a device)";
	return *err < 0 ? "" : NULL;
}

static const struct pm_backend *choose_backend(struct pm_parent *p, const struct kopts *o, const struct pm_table *t)
{
	const struct pm_backend *const *order = pm_backends, *b;
	const char *why;
	int err;

	if (o->backend) {
		b = NULL;
		for (size_t i = 0; order[i]; i++)
			if (!strcmp(o->backend, order[i]->name))
				b = order[i];
		if (!b) {
			fprintf(stderr, "kpartx: unknown backend '%s' (dm, part, loop)\n", o->backend);
			return NULL;
		}
		why = cannot_map(b, p, t, &err);
		if (why) {
			fprintf(stderr, "kpartx: %s: the %s backend cannot be used here: %s\n", p->path, b->name,
				*why ? why : strerror(-err));
			return NULL;
		}
		return b;
	}
	/* mappings made earlier stay with their backend */
	b = pm_backend_in_use(p);
	if (b)
		return b;
	/* the first that can: the device mapper, kernel partitions, one loop device per partition */
	for (size_t i = 0; order[i]; i++)
		if (!cannot_map(order[i], p, t, &err))
			return order[i];
	fprintf(stderr, "kpartx: %s: no way to map partitions here (no device mapper, no partitions on the device, no free loop device)\n",
		p->path);
	return NULL;
}

/* the loop devices made for partmap that this run detached are removed, then the parent closed */
static void close_parent(struct pm_parent *p, struct report_ctx *rc)
{
	pm_parent_release_loops(p, report, rc);
	pm_parent_close(p);
}

static int do_map(const char *path, struct kopts *o)
{
	struct pm_parent_opts po = {
		.attach = o->action != ACT_DELETE,
		.read_only = o->readonly,
		.sector_size = o->probe.sector_size,
		.delim = o->delim,
		.udev_nowait = o->nowait,
		.delete_foreign = o->force_devmap && o->action == ACT_DELETE,
		.expect = o->expect,
	};
	struct report_ctx rc = { .o = o };
	struct pm_parent p;
	const char *why, *shown = o->shown ? o->shown : path;
	int r, failures = 0;

	r = pm_parent_open(&p, path, &po, &why);
	if (r == 0 && getenv("DM_DISABLE_UDEV") && pm_backend_dm.usable(&p) == 0)
		p.dm->udev = false;
	if (r == 0 && pm_backend_dm.usable(&p) == 0)
		p.dm->udev_wait_ms = o->udev_wait_ms;
	if (r < 0) {
		fprintf(stderr, "kpartx: %s: %s%s%s\n", shown, why, *why ? ": " : "", strerror(-r));
		if (p.loop_attached)
			pm_parent_detach(&p, false);
		close_parent(&p, &rc);
		return 1;
	}
	if (o->action == ACT_DELETE) {
		for (const struct pm_backend *const *b = pm_backends; *b; b++)
			if ((*b)->usable(&p) == 0)
				failures += pm_map_sync(&p, *b, NULL, PM_SYNC_DELETE, report, &rc);
		if (!failures && p.is_file && p.loop_index >= 0) {
			r = pm_parent_detach(&p, true);
			if (r == 0)
				report(&rc, PM_EV_LOOPDEL, &p, NULL, 0);
			else {
				fprintf(stderr, "kpartx: %s: cannot detach: %s\n", p.node, strerror(-r));
				failures++;
			}
		}
		close_parent(&p, &rc);
		return failures ? 1 : 0;
	}

	struct pm_disk d;
	struct pm_table t = { 0 };
	struct pm_opts popts = o->probe;
	if (p.is_file)
		popts.sector_size = p.ssz;
	r = pm_disk_from_fd(&d, p.fd);
	if (r == 0) {
		/* an image is read through its loop device's view: the whole file from offset 0 */
		r = pm_probe(&d, &popts, &t);
		for (size_t i = 0; i < t.nwarnings; i++)
			fprintf(stderr, "kpartx: %s: warning: %s\n", shown, t.warnings[i]);
	}
	if (r < 0) {
		fprintf(stderr, "kpartx: %s: %s\n", shown, t.error[0] ? t.error : strerror(-r));
		if (p.loop_attached)
			pm_parent_detach(&p, false);
		pm_table_free(&t);
		pm_disk_close(&d);
		close_parent(&p, &rc);
		return r == -EBADMSG ? 2 : 1;
	}
	if (r == PM_NOTFOUND && o->verbose)
		fprintf(stderr, "kpartx: %s: no partition table found\n", shown);
	const struct pm_backend *b = choose_backend(&p, o, &t);
	if (!b) {
		failures = 1;
	} else {
		if (o->verbose)
			fprintf(stderr, "kpartx: %s: %s table, %zu partitions, backend %s\n", shown,
				t.type ? t.type : "no", t.nparts, b->name);
		failures = pm_map_sync(&p, b, &t, o->action == ACT_UPDATE ? PM_SYNC_UPDATE : PM_SYNC_ADD, report, &rc);
	}
	if (p.dm && p.dm->udev_timed_out)
		fprintf(stderr, "kpartx: udev did not confirm the maps within %d s: partmap made the nodes in /dev/mapper itself\n",
			p.dm->udev_wait_ms / 1000);
	/* nothing to map: do not leave a loop device behind that nobody asked for */
	if (p.loop_attached && (t.nparts == 0 || !b))
		pm_parent_detach(&p, false);
	pm_table_free(&t);
	pm_disk_close(&d);
	close_parent(&p, &rc);
	return failures ? 1 : 0;
}

/* -a/-d/-u of an image that is not raw: its virtual disk is served by `partmap fuse` on a private
 * mount, a loop device holds DIR/disk, and the partitions are mapped on that loop device as for a raw
 * image. -d undoes all of it, found again from the kernel, also after the server was killed. */
static int map_image(const char *path, int fd, const struct stat *st, struct pm_image *img, struct kopts *o)
{
	char dir[PM_SERVE_PATH_MAX], disk[PM_SERVE_PATH_MAX], exe[PATH_MAX];
	struct pm_loop_info li;
	int r, rc = 0;

	/* one run at a time per image: two -a at once end with one server and one set of maps */
	if (flock(fd, LOCK_EX) < 0) {
		fprintf(stderr, "kpartx: %s: cannot lock: %s\n", path, strerror(errno));
		return 1;
	}
	pm_serve_dir(st->st_dev, st->st_ino, dir, sizeof(dir));
	pm_serve_disk(dir, disk, sizeof(disk));
	o->shown = path;
	enum pm_serve_state state = pm_serve_state(dir);

	if (state == PM_SERVE_DEAD || (o->action == ACT_DELETE && state == PM_SERVE_NONE)) {
		/* a killed server (or a mount already gone): the maps on its loop device, the loop device,
		 * the mount, in that order */
		r = pm_loop_find_path(disk, 0, &li); /* a dead server's device, whatever its size */
		if (r == 1) {
			char node[32];
			struct kopts del = *o;
			del.action = ACT_DELETE;
			snprintf(node, sizeof(node), "/dev/loop%d", li.index);
			rc = do_map(node, &del);
			if (rc == 0) {
				r = pm_loop_detach(li.index, false);
				if (r < 0) {
					fprintf(stderr, "kpartx: %s: cannot detach: %s\n", node, strerror(-r));
					rc = 1;
				} else if (o->verbose) {
					fprintf(stderr, "loop deleted : %s\n", node);
				}
				/* a device the kernel created for the -a that served the image goes too */
				int err;
				if (r == 0 && pm_loop_disk_added(&li) &&
				    pm_loop_remove_many(-1, &li.index, &err, 1))
					warn_loop_kept(node, err);
			}
		}
		if (rc == 0 && (r = pm_serve_stop(dir)) < 0) {
			fprintf(stderr, "kpartx: %s: cannot unmount %s: %s\n", path, dir, strerror(-r));
			rc = 1;
		}
		if (o->action == ACT_DELETE || rc)
			return rc;
		state = PM_SERVE_NONE;
	}
	bool snap = state == PM_SERVE_RUNNING && pm_serve_is_snapshot(dir);
	if (snap && o->action == ACT_UPDATE)
		o->snapshot = true; /* -u goes on as the image is mapped */
	if (state == PM_SERVE_RUNNING && o->action != ACT_DELETE && snap != o->snapshot) {
		/* -a (or -u) again must not change where writes go */
		fprintf(stderr, "kpartx: %s: mapped %s: kpartx -d it first%s\n", path,
			o->snapshot ? "without --snapshot (writes go to the image)" : "with --snapshot (writes go to a temporary overlay)",
			o->snapshot ? "" : ", or give --snapshot");
		return 1;
	}
	if (o->action == ACT_DELETE) {
		/* the loop device detached, or to be detached by the kernel when its last user closes it:
		 * a lazy unmount then ends the server when that happens */
		rc = do_map(disk, o);
		if (rc == 0 && (r = pm_serve_stop(dir)) < 0) {
			fprintf(stderr, "kpartx: %s: cannot unmount %s: %s\n", path, dir, strerror(-r));
			rc = 1;
		}
		/* the server ends once the loop device lets go of its file: its last flush written, it
		 * closes the image. Wait for that (bounded), so that qemu can take the image at once;
		 * not while the loop device is kept by another user of it (the kernel detaches it later) */
		if (rc == 0 && pm_loop_find_path(disk, 0, &li) != 1 &&
		    pm_image_wait_unlocked(fd, PM_SERVE_WAIT_MS) == -ETIMEDOUT)
			fprintf(stderr, "kpartx: %s: its server has not closed it yet after %u s: still writing?\n",
				path, PM_SERVE_WAIT_MS / 1000);
		return rc;
	}
	const char *ro = o->snapshot ? NULL : pm_image_readonly_reason(img);
	bool started = false;
	if (o->snapshot && state == PM_SERVE_NONE && S_ISREG(st->st_mode) &&
	    pm_loop_find_whole(st->st_dev, st->st_ino, (uint64_t)st->st_size, &li) == 1) {
		fprintf(stderr, "kpartx: %s: mapped without --snapshot (on /dev/loop%d: writes go to the image): "
			"kpartx -d it first\n", path, li.index);
		return 1;
	}
	if (ro && !o->readonly)
		fprintf(stderr, "kpartx: %s: %s image mapped read-only (%s)\n", path, pm_image_format(img), ro);
	if (ro)
		o->readonly = true;
	if (state == PM_SERVE_NONE) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0) {
			fprintf(stderr, "kpartx: cannot find partmap's own binary: %s\n", strerror(errno));
			return 1;
		}
		exe[n] = 0;
		/* the server is named by the image's full path (ps, mountinfo show it) */
		char abs[PATH_MAX];
		r = pm_serve_start(exe, realpath(path, abs) ? abs : path, dir, o->format, o->readonly, o->snapshot);
		if (r < 0) {
			if (r == -EBUSY) /* the server said which lock, and nothing is mapped */
				return PM_EXIT_LOCKED;
			fprintf(stderr, "kpartx: %s: cannot serve the image: %s\n", path,
				r == -EIO ? "the server failed (its message is above)" : strerror(-r));
			return 1;
		}
		started = true;
	}
	rc = do_map(disk, o);
	/* nothing mapped (a failure, no partitions): nothing left behind */
	if (pm_loop_find_path(disk, 0, &li) != 1 && (started || rc == 0))
		pm_serve_stop(dir);
	return rc;
}

/* -a, -d, -u. Apart from kpartx_main (never inlined): its buffers (a path, an image's diagnostics)
 * would otherwise be on the stack of -l too, whose every page touched is a page fault (README,
 * Benchmarks) */
static __attribute__((noinline)) int change_maps(char **argv, struct kopts *o)
{
	struct stat st;
	int rc;

	if (pm_udev_timeout_env(&o->udev_wait_ms) < 0) {
		fprintf(stderr, "kpartx: PARTMAP_UDEV_TIMEOUT='%s': not a whole number of seconds from 0 to %d\n",
			getenv("PARTMAP_UDEV_TIMEOUT"), PM_UDEV_TIMEOUT_MAX_S);
		return 1;
	}
	_cleanup_close_ int fd = open_checked(argv[optind], &st);
	if (fd < 0)
		return 1;
	if (S_ISREG(st.st_mode)) {
		struct pm_image_diag diag;
		_cleanup_image_ struct pm_image *img = NULL;
		if (pm_image_open_fd(&img, fd, argv[optind], o->format, &diag) < 0) {
			fprintf(stderr, "kpartx: %s\n", diag.error);
			return 1;
		}
		cli_image_warnings("kpartx", &diag);
		if (strcmp(pm_image_format(img), "raw") || o->snapshot)
			return map_image(argv[optind], fd, &st, img, o);
		/* a raw image mapped --snapshot is served too: -d and -u find that server */
		char dir[PM_SERVE_PATH_MAX];
		pm_serve_dir(st.st_dev, st.st_ino, dir, sizeof(dir));
		enum pm_serve_state state = pm_serve_state(dir);
		if (state == PM_SERVE_RUNNING && o->action != ACT_ADD)
			return map_image(argv[optind], fd, &st, img, o);
		if (state == PM_SERVE_RUNNING) {
			fprintf(stderr, "kpartx: %s: mapped with --snapshot (writes go to a temporary overlay): "
				"kpartx -d it first, or give --snapshot\n", argv[optind]);
			return 1;
		}
		if (state == PM_SERVE_DEAD) {
			/* a killed --snapshot server: its maps, loop device and mount go first */
			struct kopts del = *o;
			del.action = ACT_DELETE;
			rc = map_image(argv[optind], fd, &st, img, &del);
			if (rc || o->action == ACT_DELETE)
				return rc;
		}
	}
	if (o->snapshot && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "kpartx: %s: --snapshot maps image files, not block devices\n", argv[optind]);
		return 1;
	}
	/* what is mapped must be the file just probed: pm_parent_open checks it is */
	o->expect = &st;
	return do_map(argv[optind], o);
}

int kpartx_main(int argc, char **argv)
{
	struct kopts o = { .action = ACT_LIST };
	struct target t;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (optind >= argc) {
		usage(stdout);
		return 1;
	}
	if (o.json && o.action != ACT_LIST) {
		fprintf(stderr, "kpartx: --json goes with -l only\n");
		return 1;
	}
	if (o.action != ACT_LIST)
		return change_maps(argv, &o);
	rc = open_target(&t, argv[optind], &o);
	if (rc)
		return rc;
	rc = do_list(&t, &o);
	pm_disk_close(&t.disk);
	pm_image_close(t.img);
	return rc;
}
