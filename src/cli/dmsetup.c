/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The dmsetup applet: lvm2's dmsetup commands and output formats over src/dm.c (no libdevmapper). */
#include "applets.h"
#include "../dm.h"
#include "../dmtable.h"
#include "../names.h"
#include "../node.h"
#include "dmtree.h"
#include "../vdev/udm.h"
#include "../util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct dopts {
	const char *uuid;       /* -u: address by uuid (create: set it) */
	int major, minor;       /* -j/-m */
	bool readonly, notable, force, retry, deferred, noflush, nolockfs, showkeys, columns, noheadings,
		verbose, inactive, tree;
	const char *table;      /* --table */
	const char *fields;     /* -o */
	const char *separator;
	const char *setuuid;
	const char *target;     /* --target: only this type's lines (table, status), devices (ls) */
	enum { RA_KEEP, RA_SET, RA_MIN } ra_mode; /* --readahead (auto: RA_KEEP) */
	unsigned long ra;       /* sectors */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage:\n\n"
		   "dmsetup\n"
		   "        [--version] [-h|--help]\n"
		   "        [-v|--verbose] [-f|--force] [-r|--readonly] [-y|--yes]\n"
		   "        [--noudevsync] [--noudevrules] [--verifyudev] [--noopencount]\n\n"
		   "        create <dev_name>\n"
		   "            [-u|--uuid <uuid>] [-r|--readonly] [--notable | --table <table>] [<table_file>]\n"
		   "            [--readahead {[+]<sectors>|auto|none}]\n"
		   "        deps [-o devno|blkdevname|devname] [<dev_name>...]\n"
		   "        help\n"
		   "        info [<dev_name>...] [-c|-C|--columns [-o|--options <fields>] [--noheadings]\n"
		   "            [--separator <separator>]]\n"
		   "        load|reload <dev_name> [--table <table>] [<table_file>]\n"
		   "        clear <dev_name>\n"
		   "        ls [--target <target_type>] [--tree] [-o <options>]\n"
		   "        message <dev_name> <sector> <message>\n"
		   "        mknodes [<dev_name>...]\n"
		   "        remove [--deferred] [-f|--force] [--retry] <dev_name>...\n"
		   "        remove_all [-f|--force]\n"
		   "        rename <dev_name> <new_name>\n"
		   "        rename <dev_name> --setuuid <uuid>\n"
		   "        resume [--noflush] [--nolockfs] [--readahead {[+]<sectors>|auto|none}] <dev_name>...\n"
		   "        splitname <dev_name> [<subsystem>]\n"
		   "        status [--target <target_type>] [--inactive] [<dev_name>...]\n"
		   "        suspend [--noflush] [--nolockfs] <dev_name>...\n"
		   "        table [--target <target_type>] [--showkeys] [--inactive] [<dev_name>...]\n"
		   "        targets\n"
		   "        udevcomplete <cookie>\n"
		   "        udevcomplete_all\n"
		   "        version\n"
		   "        wait [-v|--verbose] <dev_name> [<event_nr>]\n\n"
		   "<dev_name> may be replaced by -u|--uuid <uuid> or -j|--major <major> -m|--minor <minor>.\n"
		   "Options may stand before or after the command. info -c fields: name, major, minor, attr,\n"
		   "open, segments, events, uuid, read_ahead, blkdevname, devno, tables_loaded, suspended,\n"
		   "readonly. -f with remove swaps in an error table first; --retry tries\n"
		   "25 times, 200 ms apart. -y, --noudevrules and --verifyudev are accepted and ignored;\n"
		   "--noudevsync (or DM_DISABLE_UDEV set) makes /dev/mapper nodes without udev.\n"
		   "ls and deps -o: devno, blkdevname, devname. ls --tree -o: ascii, utf, vt100; compact, inverted,\n"
		   "notrunc; blkdevname, [no]device, active, open, rw, uuid. splitname fields: subsystem,\n"
		   "vg_name, lv_name, lv_layer (-o, -c, --noheadings, --separator as info -c).\n"
		   "Tables: '<start> <length> <target> <params>' lines; devices as paths or major:minor.\n"
		   "Environment: PARTMAP_UDEV_TIMEOUT=N seconds to wait for udev (default 10);\n"
		   "PARTMAP_DM=auto (default: the kernel's device mapper, or where it has none, partmap's in\n"
		   "userspace), user (always userspace), kernel (never userspace).\n"
		   "Exit status: 0 done, 1 failure.\n"
		   "See also: man partmap-dmsetup\n");
}

static void ref_for(const struct dopts *o, const char *name, struct pm_dm_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	if (name)
		ref->name = name;
	else if (o->uuid)
		ref->uuid = o->uuid;
	else if (o->major >= 0 && o->minor >= 0)
		ref->dev = makedev((unsigned)o->major, (unsigned)o->minor);
}

static const char *ref_str(const struct pm_dm_ref *ref, char *buf, size_t len)
{
	if (ref->name)
		return ref->name;
	if (ref->uuid)
		return ref->uuid;
	snprintf(buf, len, "(%u:%u)", major(ref->dev), minor(ref->dev));
	return buf;
}

static void ioctl_failed(const struct pm_dm *dm, const char *what, const struct pm_dm_ref *ref, int err)
{
	char b[32];

	/* the userspace device mapper says why, in the words the kernel logs */
	if (dm->userspace && dm->err[0])
		fprintf(stderr, "device-mapper: %s\n", dm->err);
	fprintf(stderr, "device-mapper: %s ioctl on %s failed: %s\n", what, ref_str(ref, b, sizeof(b)), strerror(-err));
	if (err == -EINVAL && !dm->userspace)
		fprintf(stderr, "(the kernel only says EINVAL; its log tells why: dmesg | tail)\n");
}

/* ---- tables ---- */

/* a refused table, said the way dmsetup users know */
static void table_refused(const struct pm_dm_table_err *e)
{
	switch (e->kind) {
	case PM_DMT_SYNTAX:
		fprintf(stderr, "dmsetup: table line %u: expected '<start> <length> <target> <params>': %s\n", e->line, e->text);
		break;
	case PM_DMT_TYPE_LONG:
		fprintf(stderr, "dmsetup: table line %u: target type '%s' is too long\n", e->line, e->text);
		break;
	case PM_DMT_GAP:
		fprintf(stderr, "dmsetup: table line %u: gap in table: this target starts at sector %" PRIu64 ", the previous one ends at %" PRIu64 "\n",
			e->line, e->start, e->prev_end);
		break;
	case PM_DMT_ZERO_LENGTH:
		fprintf(stderr, "dmsetup: table line %u: zero-length target\n", e->line);
		break;
	case PM_DMT_TOO_LONG:
		fprintf(stderr, "dmsetup: table line %u: the target ends past sector 2^64\n", e->line);
		break;
	case PM_DMT_EMPTY:
		fprintf(stderr, "dmsetup: the table is empty\n");
		break;
	}
}

static char *read_all(FILE *f)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	buf[len] = 0;
	return buf;
}

/* the table from --table, a file, or stdin */
static int get_table(const struct dopts *o, const char *file, struct pm_dm_table *tb)
{
	struct pm_dm_table_err err;
	char *text;
	int r;

	if (o->table) {
		text = strdup(o->table);
	} else if (file) {
		FILE *f = fopen(file, "re");
		if (!f) {
			fprintf(stderr, "dmsetup: %s: %s\n", file, strerror(errno));
			return 1;
		}
		text = read_all(f);
		fclose(f);
	} else {
		text = read_all(stdin);
	}
	if (!text)
		return 1;
	/* --table 'a;b' is not lvm2 syntax; newlines separate lines */
	r = pm_dm_table_parse(text, tb, &err);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r == -EINVAL)
		table_refused(&err);
	else if (r < 0)
		fprintf(stderr, "dmsetup: %s\n", strerror(-r));
	return r < 0;
}

/* after a failed load: say so, name an unknown target */
static void load_failed(struct pm_dm *dm, const struct pm_dm_ref *ref, const struct pm_dm_table *tb, int err)
{
	ioctl_failed(dm, "reload", ref, err);
	if (err == -EINVAL) {
		struct pm_dm_version *v;
		size_t n;
		if (pm_dm_versions(dm, &v, &n) == 0) {
			for (size_t i = 0; i < tb->n; i++) {
				bool known = false;
				for (size_t k = 0; k < n; k++)
					known |= !strcmp(v[k].name, tb->t[i].type);
				if (!known)
					fprintf(stderr, "dmsetup: unknown target type '%s' (see 'dmsetup targets')\n", tb->t[i].type);
			}
			free(v);
		}
	}
}

static bool want_nodes(const struct pm_dm *dm)
{
	return !dm->udev || dm->udev_timed_out;
}

/* ---- commands ---- */

static void print_info_long(const struct pm_dm_info *i);
static int verbose_info(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref);
static int set_read_ahead(const struct dopts *o, const char *name, dev_t dev);

static int cmd_create(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_table tb = { 0 };
	struct pm_dm_info info;
	struct pm_dm_ref ref;
	int r;

	if (argc < 1) {
		fprintf(stderr, "dmsetup: create needs a device name\n");
		return 1;
	}
	if (!o->notable && get_table(o, argc > 1 ? argv[1] : NULL, &tb))
		return 1;
	ref_for(o, argv[0], &ref);
	if (o->notable) {
		r = pm_dm_dev_create(dm, argv[0], o->uuid, &info);
		if (r < 0) {
			ioctl_failed(dm, "create", &ref, r);
			return 1;
		}
	} else {
		r = pm_dm_dev_create(dm, argv[0], o->uuid, &info);
		if (r < 0) {
			ioctl_failed(dm, "create", &ref, r);
			pm_dm_table_free(&tb);
			return 1;
		}
		r = pm_dm_load(dm, &ref, tb.t, tb.n, o->readonly, tb.secure);
		if (r < 0) {
			load_failed(dm, &ref, &tb, r);
			pm_dm_remove(dm, &ref, false, PM_DM_REMOVE_RETRIES_UNDO); /* nothing half-created */
			pm_dm_table_free(&tb);
			return 1;
		}
		r = pm_dm_resume(dm, &ref, &info);
		if (r < 0) {
			ioctl_failed(dm, "resume", &ref, r);
			pm_dm_remove(dm, &ref, false, PM_DM_REMOVE_RETRIES_UNDO);
			pm_dm_table_free(&tb);
			return 1;
		}
	}
	pm_dm_table_free(&tb);
	if (want_nodes(dm) && (r = pm_dm_make_node(argv[0], info.dev, 0600, 0, 0)) < 0)
		fprintf(stderr, "dmsetup: /dev/mapper/%s: %s\n", argv[0], strerror(-r));
	if (!o->notable && set_read_ahead(o, argv[0], info.dev))
		return 1;
	return verbose_info(dm, o, &ref);
}

static int cmd_load(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_table tb = { 0 };
	struct pm_dm_ref ref;
	const char *name = o->uuid || o->major >= 0 ? NULL : argc > 0 ? argv[0] : NULL;
	const char *file = name ? (argc > 1 ? argv[1] : NULL) : (argc > 0 ? argv[0] : NULL);
	int r;

	ref_for(o, name, &ref);
	if (!ref.name && !ref.uuid && !ref.dev) {
		fprintf(stderr, "dmsetup: load needs a device\n");
		return 1;
	}
	if (get_table(o, file, &tb))
		return 1;
	r = pm_dm_load(dm, &ref, tb.t, tb.n, o->readonly, tb.secure);
	if (r < 0)
		load_failed(dm, &ref, &tb, r);
	pm_dm_table_free(&tb);
	return r < 0 || verbose_info(dm, o, &ref);
}

/* ---- the devices a command acts on ---- */

/* ONE_OR_MORE: the devices named, or the one of -u / -j -m; naming none is an error.
 * ALL_IF_NONE: ... or, when none is named, every device sorted by name. */
enum scope { ONE_OR_MORE, ALL_IF_NONE };

/* fn acts on one device; prefix is "name: " when output may cover several devices (NULL otherwise) */
typedef int (*each_fn)(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		       void *arg);

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct pm_dm_name *)a)->name, ((const struct pm_dm_name *)b)->name);
}

/* all devices, sorted by name */
static int all_devices(struct pm_dm *dm, struct pm_dm_name **v, size_t *n)
{
	int r = pm_dm_list(dm, v, n);
	if (r < 0) {
		fprintf(stderr, "device-mapper: list ioctl failed: %s\n", strerror(-r));
		return 1;
	}
	if (*n)
		qsort(*v, *n, sizeof(**v), by_name);
	return 0;
}

/* The one device iterator: fn on each device of SCOPE, going on past a failure. Returns 1 when any
 * failed; *count (when not NULL) says how many were visited (0 only when every device was asked for
 * and there is none). */
static int each_device(struct pm_dm *dm, const struct dopts *o, int argc, char **argv, enum scope scope, each_fn fn,
		       void *arg, size_t *count)
{
	char prefix[PM_DM_NAME_LEN + 4];
	struct pm_dm_ref ref;
	int rc = 0;

	if (count)
		*count = 0;
	if (argc == 0) {
		ref_for(o, NULL, &ref);
		if (ref.uuid || ref.dev) {
			if (count)
				*count = 1;
			return fn(dm, o, &ref, NULL, arg) != 0;
		}
		if (scope == ONE_OR_MORE) {
			fprintf(stderr, "dmsetup: a device name is needed\n");
			return 1;
		}
		_cleanup_free_ struct pm_dm_name *v = NULL;
		size_t n;
		if (all_devices(dm, &v, &n))
			return 1;
		for (size_t i = 0; i < n; i++) {
			snprintf(prefix, sizeof(prefix), "%s: ", v[i].name);
			ref_for(o, v[i].name, &ref);
			rc |= fn(dm, o, &ref, prefix, arg) != 0;
		}
		if (count)
			*count = n;
		return rc;
	}
	for (int i = 0; i < argc; i++) {
		snprintf(prefix, sizeof(prefix), "%s: ", argv[i]);
		ref_for(o, argv[i], &ref);
		rc |= fn(dm, o, &ref, argc > 1 ? prefix : NULL, arg) != 0;
	}
	if (count)
		*count = (size_t)argc;
	return rc;
}

static int do_clear(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		      void *arg)
{
	(void)prefix;
	(void)arg;
	int r = pm_dm_clear(dm, ref);
	if (r < 0)
		ioctl_failed(dm, "clear", ref, r);
	return r < 0 || verbose_info(dm, o, ref);
}

static int do_suspend(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		        void *arg)
{
	(void)prefix;
	(void)arg;
	int r = pm_dm_suspend(dm, ref, (o->noflush ? PM_DM_NOFLUSH : 0) | (o->nolockfs ? PM_DM_NOLOCKFS : 0));
	if (r < 0)
		ioctl_failed(dm, "suspend", ref, r);
	return r < 0 || verbose_info(dm, o, ref);
}

static int do_resume(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		       void *arg)
{
	(void)prefix;
	(void)arg;
	struct pm_dm_info info;
	int r = pm_dm_resume_flags(dm, ref, (o->noflush ? PM_DM_NOFLUSH : 0) | (o->nolockfs ? PM_DM_NOLOCKFS : 0), &info);

	if (r < 0) {
		ioctl_failed(dm, "resume", ref, r);
		return 1;
	}
	if (want_nodes(dm))
		pm_dm_make_node(info.name, info.dev, 0600, 0, 0);
	if (info.live_table && set_read_ahead(o, info.name, info.dev))
		return 1;
	if (o->verbose)
		print_info_long(&info);
	return 0;
}

/* is dev in a table of one of the devices in v? */
static bool used_by_any(struct pm_dm *dm, const struct pm_dm_name *v, size_t n, dev_t dev)
{
	bool used = false;

	for (size_t i = 0; i < n && !used; i++) {
		struct pm_dm_ref ref = { .name = v[i].name };
		dev_t *d;
		size_t nd;
		if (pm_dm_deps(dm, &ref, &d, &nd) < 0)
			continue;
		for (size_t k = 0; k < nd; k++)
			used |= d[k] == dev;
		free(d);
	}
	return used;
}

/* lvm2's _error_device: the live table swapped for one as long that fails every I/O */
static int error_device(struct pm_dm *dm, const struct pm_dm_ref *ref)
{
	struct pm_dm_target err = { .start = 0, .type = "error", .params = (char *)"" };
	uint64_t size = 0;
	struct pm_dm_target *t;
	size_t n;
	int r;

	if ((r = pm_dm_table(dm, ref, false, false, false, &t, &n, NULL)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		size = t[i].start + t[i].length;
	pm_dm_targets_free(t, n);
	if (!size)
		return 0;
	err.length = size;
	if ((r = pm_dm_load(dm, ref, &err, 1, false, false)) < 0)
		return r;
	/* no flush, no freeze: what is under the old table may be gone (lvm2 does the same) */
	if ((r = pm_dm_resume_flags(dm, ref, PM_DM_NOFLUSH | PM_DM_NOLOCKFS, NULL)) < 0)
		pm_dm_clear(dm, ref);
	return r;
}

/* remove; -f: an error table first. The kernel still refuses an open device then (EBUSY); partmap's
 * userspace device mapper removes it as --deferred does (its node now, the device at its last
 * close), so that remove -f of an open device succeeds there, its users seeing only errors. */
static int do_remove(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		       void *arg)
{
	(void)prefix;
	(void)arg;
	struct pm_dm_info info;
	int r = pm_dm_info(dm, ref, &info);
	bool deferred = o->deferred;

	if (r < 0) {
		ioctl_failed(dm, "remove", ref, r);
		return 1;
	}
	if (o->force) {
		error_device(dm, ref);
		/* not one a table of another device uses: the engine would wait for that table to go */
		_cleanup_free_ struct pm_dm_name *v = NULL;
		size_t n;
		if (dm->userspace && pm_dm_info(dm, ref, &info) == 0 && info.open_count > 0 && pm_dm_list(dm, &v, &n) == 0 &&
		    !used_by_any(dm, v, n, info.dev))
			deferred = true;
	}
	r = pm_dm_remove(dm, ref, deferred, o->retry ? PM_DM_REMOVE_RETRIES_ASKED : 0);
	if (r < 0) {
		ioctl_failed(dm, "remove", ref, r);
		return 1;
	}
	if (!deferred || !(info.open_count > 0) || o->force)
		pm_dm_remove_node(info.name);
	return 0;
}

static int do_mknodes(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		        void *arg)
{
	(void)prefix;
	(void)arg;
	struct pm_dm_info info;
	int r = pm_dm_info(dm, ref, &info);

	(void)o;
	if (r < 0)
		return r == -ENXIO ? 0 : 1;
	return pm_dm_make_node(info.name, info.dev, 0600, 0, 0) < 0;
}

static const char *state_str(const struct pm_dm_info *i, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", i->suspended ? "SUSPENDED" : "ACTIVE", i->read_only ? " (READ-ONLY)" : "",
		 i->deferred_remove ? " (DEFERRED REMOVE)" : "");
	return buf;
}

/* sectors */
static unsigned read_ahead(dev_t dev)
{
	uint64_t kb;

	return pm_queue_get(dev, "read_ahead_kb", &kb) == 0 ? (unsigned)(kb * 2) : 256;
}

/* --readahead after create and resume, as lvm2's dmsetup sets it: N sectors, +N at least N, none
 * (0); auto leaves the kernel's. Through sysfs, which needs no device node (the kernel keeps whole
 * pages either way, as it does for BLKRASET). */
static int set_read_ahead(const struct dopts *o, const char *name, dev_t dev)
{
	int r;

	if (o->ra_mode == RA_KEEP || (o->ra_mode == RA_MIN && read_ahead(dev) >= o->ra))
		return 0;
	if ((r = pm_queue_set(dev, "read_ahead_kb", o->ra / 2)) < 0) {
		fprintf(stderr, "dmsetup: %s: setting read-ahead: %s\n", name, strerror(-r));
		return 1;
	}
	return 0;
}

static void print_info_long(const struct pm_dm_info *i)
{
	char st[64];

	printf("Name:              %s\n", i->name);
	printf("State:             %s\n", state_str(i, st, sizeof(st)));
	if (i->live_table || i->inactive_table) {
		printf("Read Ahead:        %u\n", read_ahead(i->dev));
	}
	printf("Tables present:    %s\n", i->live_table && i->inactive_table ? "LIVE & INACTIVE"
				      : i->live_table			     ? "LIVE"
				      : i->inactive_table		     ? "INACTIVE"
									     : "None");
	if (i->live_table || i->inactive_table || true) {
		printf("Open count:        %d\n", i->open_count);
		printf("Event number:      %u\n", i->event_nr);
		printf("Major, minor:      %u, %u\n", major(i->dev), minor(i->dev));
		printf("Number of targets: %u\n", i->target_count);
	}
	if (i->uuid[0])
		printf("UUID: %s\n", i->uuid);
	printf("\n");
}

/* -v: the info block, as lvm2's dmsetup prints it after create, load, suspend, resume and clear, and
 * before a device's table, status or deps */
static int verbose_info(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref)
{
	struct pm_dm_info info;
	int r;

	if (!o->verbose)
		return 0;
	if ((r = pm_dm_info(dm, ref, &info)) < 0) {
		ioctl_failed(dm, "info", ref, r);
		return 1;
	}
	print_info_long(&info);
	return 0;
}

/* ---- column reports (info -c, splitname): libdm's report layout ---- */

struct field {
	const char *name, *head;
	int width;
	bool right;
	const char *alias;      /* another name it answers to */
};

/* a report's fields: *all names every field; cell(row, k) fills one cell */
struct report {
	const struct field *f;
	size_t nf;
	const char *all;        /* "<section>_all" */
	const char *defaults;   /* the fields without -o */
	void (*cell)(const void *row, int k, char *c, size_t len);
};

static int field_index(const struct report *rp, const char *name, size_t len)
{
	for (size_t k = 0; k < rp->nf; k++)
		if ((strlen(rp->f[k].name) == len && !strncasecmp(name, rp->f[k].name, len)) ||
		    (rp->f[k].alias && strlen(rp->f[k].alias) == len && !strncasecmp(name, rp->f[k].alias, len)))
			return (int)k;
	return -1;
}

/* The selected fields: -o's list (a leading '+' adds to the defaults), or the defaults. -1 when a
 * name is unknown (said). */
static int select_fields(const struct report *rp, const char *list, int **sel, size_t *ns)
{
	size_t max = 1;
	const char *lists[2] = { rp->defaults, NULL };

	if (list && !strcmp(list, "+")) {
		fprintf(stderr, "Unrecognised field: \n");
		return -1;
	}
	if (list && list[0] == '+')
		lists[1] = list + 1;
	else if (list)
		lists[0] = list;
	for (int l = 0; l < 2; l++)
		for (const char *p = lists[l]; p && *p; p++)
			max += *p == ',' ? 1 : 0;
	max = (max + 2) * rp->nf;
	if (!(*sel = calloc(max, sizeof(**sel))))
		return -1;
	*ns = 0;
	for (int l = 0; l < 2; l++) {
		const char *p = lists[l];
		while (p && *p) {
			size_t len = strcspn(p, ",");
			int k = field_index(rp, p, len);
			if (rp->all && len == strlen(rp->all) && !strncasecmp(p, rp->all, len)) {
				for (size_t j = 0; j < rp->nf; j++)
					(*sel)[(*ns)++] = (int)j;
			} else if (k >= 0) {
				(*sel)[(*ns)++] = k;
			} else if (len) {
				fprintf(stderr, "Unrecognised field: %.*s\n", (int)len, p);
				free(*sel);
				*sel = NULL;
				return -1;
			}
			p += len + (p[len] == ',');
			/* an empty name is passed over, but not at the end (as libdm's parser) */
			if (p[-1] == ',' && !*p) {
				fprintf(stderr, "Unrecognised field: \n");
				free(*sel);
				*sel = NULL;
				return -1;
			}
		}
	}
	return 0;
}

/* The report: any number of rows and fields (two passes: widths, then the rows). libdm aligns it
 * only with headings and the default separator; --noheadings or --separator give plain fields
 * joined by the separator (":" by default). */
static int print_report(const struct dopts *o, const struct report *rp, const void *rows, size_t rowsize, size_t n)
{
	_cleanup_free_ int *sel = NULL, *width = NULL;
	size_t ns;
	char c[PM_DM_UUID_LEN + 16];

	if (select_fields(rp, o->fields, &sel, &ns) < 0)
		return 1;
	if (!(width = calloc(ns + 1, sizeof(*width))))
		return 1;
	bool aligned = !o->separator && !o->noheadings;
	const char *sep = o->separator ? o->separator : ":";
	for (size_t j = 0; aligned && j < ns; j++) {
		const struct field *f = &rp->f[sel[j]];
		width[j] = (int)strlen(f->head) > f->width ? (int)strlen(f->head) : f->width;
		for (size_t i = 0; i < n; i++) {
			rp->cell((const char *)rows + i * rowsize, sel[j], c, sizeof(c));
			if ((int)strlen(c) > width[j])
				width[j] = (int)strlen(c);
		}
	}
	for (size_t i = o->noheadings ? 1 : 0; i <= n; i++) {
		for (size_t j = 0; j < ns; j++) {
			if (i == 0)
				snprintf(c, sizeof(c), "%s", rp->f[sel[j]].head);
			else
				rp->cell((const char *)rows + (i - 1) * rowsize, sel[j], c, sizeof(c));
			if (j)
				printf("%s", aligned ? " " : sep);
			/* headings are left-aligned, numbers right-aligned, every column padded (as libdm) */
			if (!aligned)
				printf("%s", c);
			else if (rp->f[sel[j]].right && i > 0)
				printf("%*s", width[j], c);
			else
				printf("%-*s", width[j], c);
		}
		printf("\n");
	}
	return 0;
}

/* info -c */
static const struct field info_fields[] = {
	{ "name", "Name", 16, false, NULL },	{ "major", "Maj", 3, true, NULL },
	{ "minor", "Min", 3, true, NULL },	{ "attr", "Stat", 4, false, NULL },
	{ "open", "Open", 4, true, NULL },	{ "segments", "Targ", 4, true, "targets" },
	{ "events", "Event", 6, true, NULL }, { "uuid", "UUID", 32, false, NULL },
	{ "read_ahead", "RAhead", 6, true, "readahead" }, { "blkdevname", "BlkDevName", 16, false, NULL },
	{ "devno", "DevNo", 5, false, NULL },	{ "tables_loaded", "Tables", 6, false, NULL },
	{ "suspended", "Suspended", 9, false, NULL }, { "readonly", "Read-only", 9, false, NULL },
};

static void attr_str(const struct pm_dm_info *i, char *b)
{
	b[0] = i->live_table ? 'L' : '-';
	b[1] = i->inactive_table ? 'I' : '-';
	b[2] = i->suspended ? 's' : '-';
	b[3] = i->read_only ? 'r' : 'w';
	b[4] = 0;
}

static void info_cell(const void *row, int field, char *c, size_t len)
{
	const struct pm_dm_info *d = row;

	switch (field) {
	case 0: snprintf(c, len, "%s", d->name); break;
	case 1: snprintf(c, len, "%u", major(d->dev)); break;
	case 2: snprintf(c, len, "%u", minor(d->dev)); break;
	case 3: attr_str(d, c); break;
	case 4: snprintf(c, len, "%d", d->open_count); break;
	case 5: snprintf(c, len, "%u", d->target_count); break;
	case 6: snprintf(c, len, "%u", d->event_nr); break;
	case 7: snprintf(c, len, "%s", d->uuid); break;
	/* libdm asks the node for the read-ahead of a device with a live table, else shows 0 */
	case 8: snprintf(c, len, "%u", d->live_table ? read_ahead(d->dev) : 0); break;
	case 9:
		if (pm_dev_kernel_name(d->dev, c, len) < 0)
			c[0] = 0;
		break;
	case 10: snprintf(c, len, "%u:%u", major(d->dev), minor(d->dev)); break;
	case 11:
		snprintf(c, len, "%s", d->live_table ? (d->inactive_table ? "Both" : "Live")
						      : d->inactive_table ? "Inactive" : "None");
		break;
	case 12: snprintf(c, len, "%s", d->suspended ? "Suspended" : "Active"); break;
	case 13: snprintf(c, len, "%s", d->read_only ? "Read-only" : "Writeable"); break;
	default: c[0] = 0;
	}
}

static const struct report info_report = {
	.f = info_fields,
	.nf = ARRAY_SIZE(info_fields),
	.all = NULL,
	.defaults = "name,major,minor,attr,open,segments,events,uuid",
	.cell = info_cell,
};

/* splitname: LVM's name components, reported as info -c is */
struct split {
	const char *subsystem, *vg, *lv, *layer;
};

static const struct field split_fields[] = {
	{ "subsystem", "Subsys", 6, false, NULL },
	{ "vg_name", "VG", 4, false, NULL },
	{ "lv_name", "LV", 4, false, NULL },
	{ "lv_layer", "LVLayer", 7, false, NULL },
};

static void split_cell(const void *row, int field, char *c, size_t len)
{
	const struct split *sp = row;
	const char *v[] = { sp->subsystem, sp->vg, sp->lv, sp->layer };

	snprintf(c, len, "%s", field >= 0 && field < 4 ? v[field] : "");
}

static const struct report split_report = {
	.f = split_fields,
	.nf = ARRAY_SIZE(split_fields),
	.all = "splitname_all",
	.defaults = "vg_name,lv_name,lv_layer",
	.cell = split_cell,
};

/* splitname NAME [SUBSYSTEM]: only LVM's names (the default subsystem) have components */
static int cmd_splitname(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct split sp = { .subsystem = argc > 1 ? argv[1] : "LVM", .vg = "", .lv = "", .layer = "" };
	_cleanup_free_ char *copy = NULL;

	(void)dm;
	if (argc < 1 || argc > 2) {
		fprintf(stderr, "Incorrect number of arguments.\n");
		usage(stderr);
		return 1;
	}
	if (!strcmp(sp.subsystem, "LVM")) {
		char *vg, *lv, *layer;
		if (!(copy = strdup(argv[0])))
			return 1;
		pm_lvm_name_split(copy, &vg, &lv, &layer);
		sp.vg = vg;
		sp.lv = lv;
		sp.layer = layer;
	}
	return print_report(o, &split_report, &sp, sizeof(sp), 1);
}

/* info: the long form as each device comes, or rows collected for -c */
struct infos {
	struct pm_dm_info *v;
	size_t n, cap;
};

static int info_one(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		    void *arg)
{
	struct infos *in = arg;
	struct pm_dm_info info;
	int r = pm_dm_info(dm, ref, &info);

	(void)prefix;
	if (r == -ENXIO) {
		fprintf(stderr, "Device does not exist.\n");
		return 1;
	}
	if (r < 0) {
		ioctl_failed(dm, "info", ref, r);
		return 1;
	}
	if (!o->columns) {
		print_info_long(&info);
		return 0;
	}
	if (pm_grow(&in->v, in->n, &in->cap, sizeof(*in->v)) < 0) {
		fprintf(stderr, "dmsetup: %s\n", strerror(ENOMEM));
		return 1;
	}
	in->v[in->n++] = info;
	return 0;
}

static int cmd_info(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct infos in = { 0 };
	size_t seen;
	int rc = each_device(dm, o, argc, argv, ALL_IF_NONE, info_one, &in, &seen);

	if (!seen && !rc && !o->columns)
		printf("No devices found\n");
	if (o->columns && seen)
		rc |= print_report(o, &info_report, in.v, sizeof(*in.v), in.n);
	free(in.v);
	return rc;
}

static int print_table(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		       void *arg)
{
	bool status = arg != NULL;
	struct pm_dm_target *t;
	size_t n;
	int r = pm_dm_table(dm, ref, status, o->inactive, !status, &t, &n, NULL);

	if (r < 0) {
		ioctl_failed(dm, status ? "status" : "table", ref, r);
		return 1;
	}
	/* -v: the info block before the device's first line, no name prefixes, and a blank line after
	 * each of several devices */
	bool matched = false, several = prefix != NULL;
	if (o->verbose)
		prefix = NULL;
	for (size_t i = 0; i < n; i++) {
		if (o->target && strcmp(t[i].type, o->target))
			continue;
		if (!matched && verbose_info(dm, o, ref)) {
			pm_dm_targets_free(t, n);
			return 1;
		}
		matched = true;
		char *line = pm_dm_target_format(&t[i], status || o->showkeys);
		if (!line) {
			pm_dm_targets_free(t, n);
			fprintf(stderr, "dmsetup: %s\n", strerror(ENOMEM));
			return 1;
		}
		printf("%s%s\n", prefix ? prefix : "", line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
	pm_dm_targets_free(t, n);
	/* no table: an empty line (after the name, for several devices), as lvm2's dmsetup prints;
	 * with --target, nothing */
	if (!n && !o->target) {
		if (verbose_info(dm, o, ref))
			return 1;
		printf("%s\n", prefix ? prefix : "");
		matched = true;
	}
	if (matched && o->verbose && several)
		printf("\n");
	return 0;
}

/* ls --target: "name\t(major, minor)" (lvm2 writes these numbers so, unlike plain ls's) for each
 * device with a live target of that type (--inactive: in its inactive table) */
static int ls_target(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_name *v, size_t n)
{
	struct pm_dm_ref ref;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct pm_dm_target *t;
		size_t nt;
		bool has = false;
		ref_for(o, v[i].name, &ref);
		int r = pm_dm_table(dm, &ref, true, o->inactive, false, &t, &nt, NULL);
		if (r == -ENXIO)
			continue; /* removed meanwhile */
		if (r < 0) {
			ioctl_failed(dm, "status", &ref, r);
			rc = 1;
			continue;
		}
		for (size_t k = 0; k < nt && !has; k++)
			has = !strcmp(t[k].type, o->target);
		pm_dm_targets_free(t, nt);
		if (has)
			printf("%s\t(%u, %u)\n", v[i].name, major(v[i].dev), minor(v[i].dev));
	}
	return rc;
}

/* table, status, deps: every device (sorted, "name: " prefixes), one given by -u/-j/-m, or those
 * named (prefixed when more than one) */
static int show_devices(struct pm_dm *dm, const struct dopts *o, int argc, char **argv, each_fn fn, void *arg)
{
	size_t seen;
	int rc = each_device(dm, o, argc, argv, ALL_IF_NONE, fn, arg, &seen);

	if (!seen && !rc)
		printf("No devices found\n");
	return rc;
}

static int cmd_table(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return show_devices(dm, o, argc, argv, print_table, NULL);
}

static int cmd_status(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return show_devices(dm, o, argc, argv, print_table, (void *)1);
}

/* ls and deps -o: how devices are named: (major:minor), the kernel's name, or a device-mapper
 * device's own; -1 for an option lvm2 does not know (said) */
enum dev_naming { DN_DEVNO, DN_BLK, DN_MAP };
static int dev_naming(const char *fields)
{
	int show = DN_DEVNO;

	for (const char *p = fields; p && *p;) {
		size_t len = strcspn(p, ",");
		if (!strncmp(p, "devno", len))
			show = DN_DEVNO;
		else if (!strncmp(p, "blkdevname", len))
			show = DN_BLK;
		else if (!strncmp(p, "devname", len))
			show = DN_MAP;
		else {
			fprintf(stderr, "Option not recognised: %s.\n", p);
			return -1;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	return show;
}

/* deps -o: the naming, and for devname the device-mapper devices, listed once for the command */
struct deps_naming {
	int show;
	struct pm_dm_name *v;
	size_t n;
};

/* a dependency's name: a device-mapper device's own (the kernel's, or one served in userspace) for
 * devname, else the kernel's; -1 for none (then major, minor) */
static int dep_name(const struct deps_naming *dn, dev_t dev, char *buf, size_t len)
{
	for (size_t i = 0; dn->show == DN_MAP && i < dn->n; i++) {
		if (dn->v[i].dev == dev) {
			pm_strlcpy(buf, dn->v[i].name, len);
			return 0;
		}
	}
	return dn->show != DN_DEVNO && pm_dev_kernel_name(dev, buf, len) == 0 ? 0 : -1;
}

static int print_deps(struct pm_dm *dm, const struct dopts *o, const struct pm_dm_ref *ref, const char *prefix,
		      void *arg)
{
	const struct deps_naming *dn = arg;
	dev_t *d;
	size_t n;
	int r = pm_dm_deps(dm, ref, &d, &n);

	if (r < 0) {
		ioctl_failed(dm, "deps", ref, r);
		return 1;
	}
	if (verbose_info(dm, o, ref)) {
		free(d);
		return 1;
	}
	printf("%s%zu dependencies\t:", prefix && !o->verbose ? prefix : "", n);
	for (size_t i = 0; i < n; i++) {
		char nm[256];
		if (dep_name(dn, d[i], nm, sizeof(nm)) == 0)
			printf(" (%s)", nm);
		else
			printf(" (%u, %u)", major(d[i]), minor(d[i]));
	}
	printf("\n");
	if (prefix && o->verbose)
		printf("\n");
	free(d);
	return 0;
}

static int cmd_deps(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct deps_naming dn = { .show = dev_naming(o->fields) };
	int rc;

	if (dn.show < 0 || (dn.show == DN_MAP && all_devices(dm, &dn.v, &dn.n)))
		return 1;
	rc = show_devices(dm, o, argc, argv, print_deps, &dn);
	free(dn.v);
	return rc;
}

/* ls: "name\t(major:minor)", or -o blkdevname: the kernel's name of the block device, devname: the
 * device's own name (a device-mapper device's, as lvm2 prints it); --tree: the dependency tree */
static int cmd_ls(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	_cleanup_free_ struct pm_dm_name *v = NULL;
	int show = DN_DEVNO;
	size_t n;

	(void)argc;
	(void)argv;
	if (!o->tree && o->fields && (show = dev_naming(o->fields)) < 0)
		return 1;
	if (all_devices(dm, &v, &n))
		return 1;
	if (!n && (o->target || !o->tree))
		printf("No devices found\n");
	if (o->target)
		return ls_target(dm, o, v, n);
	if (o->tree)
		return dmsetup_tree(dm, v, n, o->fields);
	for (size_t i = 0; i < n; i++) {
		char kname[256];
		if (show == DN_BLK && pm_dev_kernel_name(v[i].dev, kname, sizeof(kname)) == 0)
			printf("%s\t(%s)\n", v[i].name, kname);
		else if (show == DN_MAP)
			printf("%s\t(%s)\n", v[i].name, v[i].name);
		else
			printf("%s\t(%u:%u)\n", v[i].name, major(v[i].dev), minor(v[i].dev));
	}
	return 0;
}

static int cmd_targets(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_version *v;
	size_t n;
	int r = pm_dm_versions(dm, &v, &n);

	(void)o;
	(void)argc;
	(void)argv;
	if (r < 0) {
		fprintf(stderr, "device-mapper: list_versions ioctl failed: %s\n", strerror(-r));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%-16s v%u.%u.%u\n", v[i].name, v[i].version[0], v[i].version[1], v[i].version[2]);
	free(v);
	return 0;
}

static int cmd_rename(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_ref ref;
	struct pm_dm_info info;
	const char *name = NULL, *target;
	int r;

	if (o->uuid || o->major >= 0) {
		if (argc != 1)
			goto usage;
		target = argv[0];
	} else {
		if (argc != 2)
			goto usage;
		name = argv[0];
		target = argv[1];
	}
	ref_for(o, name, &ref);
	if (pm_dm_info(dm, &ref, &info) < 0) {
		fprintf(stderr, "Device does not exist.\n");
		return 1;
	}
	r = pm_dm_rename(dm, &ref, o->setuuid ? NULL : target, o->setuuid ? target : NULL);
	if (r < 0) {
		ioctl_failed(dm, "rename", &ref, r);
		return 1;
	}
	if (!o->setuuid && want_nodes(dm)) {
		pm_dm_remove_node(info.name);
		pm_dm_make_node(target, info.dev, 0600, 0, 0);
	}
	return 0;
usage:
	fprintf(stderr, "dmsetup: usage: rename <dev_name> <new_name> | rename <dev_name> --setuuid <uuid>\n");
	return 1;
}

static int cmd_message(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_ref ref;
	char reply[4096], msg[4096] = "";
	int first = o->uuid || o->major >= 0 ? 0 : 1;
	unsigned long sector;
	int r;

	if (argc < first + 2) {
		fprintf(stderr, "dmsetup: usage: message <dev_name> <sector> <message>\n");
		return 1;
	}
	ref_for(o, first ? argv[0] : NULL, &ref);
	if (pm_parse_ulong(argv[first], ULONG_MAX, &sector) < 0) {
		fprintf(stderr, "dmsetup: invalid sector: %s\n", argv[first]);
		return 1;
	}
	for (int i = first + 1; i < argc; i++) {
		if (strlen(msg) + strlen(argv[i]) + 2 > sizeof(msg)) {
			fprintf(stderr, "dmsetup: the message is longer than %zu bytes\n", sizeof(msg) - 1);
			return 1;
		}
		if (i > first + 1)
			strcat(msg, " ");
		strcat(msg, argv[i]);
	}
	r = pm_dm_message(dm, &ref, sector, msg, reply, sizeof(reply));
	if (r < 0) {
		ioctl_failed(dm, "message", &ref, r);
		return 1;
	}
	if (reply[0])
		printf("%s\n", reply);
	return 0;
}

static int cmd_wait(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	struct pm_dm_ref ref;
	struct pm_dm_info info;
	int first = o->uuid || o->major >= 0 ? 0 : 1;
	uint32_t ev = 0;
	int r;

	if (argc < first) {
		fprintf(stderr, "dmsetup: usage: wait <dev_name> [<event_nr>]\n");
		return 1;
	}
	ref_for(o, first ? argv[0] : NULL, &ref);
	if (argc > first) {
		unsigned long v;
		if (pm_parse_ulong(argv[first], UINT32_MAX, &v) < 0) {
			fprintf(stderr, "dmsetup: invalid event number: %s\n", argv[first]);
			return 1;
		}
		ev = (uint32_t)v;
	}
	r = pm_dm_wait(dm, &ref, ev, &info);
	if (r < 0) {
		ioctl_failed(dm, "wait", &ref, r);
		return 1;
	}
	if (o->verbose)
		print_info_long(&info);
	return 0;
}

static int cmd_clear(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return each_device(dm, o, argc, argv, ONE_OR_MORE, do_clear, NULL, NULL);
}

static int cmd_suspend(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return each_device(dm, o, argc, argv, ONE_OR_MORE, do_suspend, NULL, NULL);
}

static int cmd_resume(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return each_device(dm, o, argc, argv, ONE_OR_MORE, do_resume, NULL, NULL);
}

static int cmd_remove(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return each_device(dm, o, argc, argv, ONE_OR_MORE, do_remove, NULL, NULL);
}

/* every device named, or all: one failure does not stop the rest */
static int cmd_mknodes(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	return each_device(dm, o, argc, argv, ALL_IF_NONE, do_mknodes, NULL, NULL);
}

/* the nodes of devices no longer there (lvm2 runs mknodes after remove_all) */
static void drop_nodes(struct pm_dm *dm, const struct pm_dm_name *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pm_dm_ref ref = { .name = v[i].name };
		struct pm_dm_info info;
		if (pm_dm_info(dm, &ref, &info) == -ENXIO)
			pm_dm_remove_node(v[i].name);
	}
}

/* remove_all as lvm2: every closed device goes; with -f, those left get an error table and a second
 * pass. On the userspace device mapper an open device not used by another is then removed as
 * remove -f removes it (at its last close). */
static int cmd_remove_all(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	_cleanup_free_ struct pm_dm_name *v = NULL;
	_cleanup_free_ struct pm_dm_name *left = NULL;
	size_t n, nleft;
	int r;

	(void)argc;
	(void)argv;
	if (all_devices(dm, &v, &n))
		return 1;
	r = pm_dm_remove_all(dm);
	if (r < 0) {
		fprintf(stderr, "device-mapper: remove_all ioctl failed: %s\n", strerror(-r));
		return 1;
	}
	drop_nodes(dm, v, n);
	if (!o->force)
		return 0;
	if (all_devices(dm, &left, &nleft))
		return 1;
	if (!nleft)
		return 0;
	for (size_t i = 0; i < nleft; i++) {
		struct pm_dm_ref ref = { .name = left[i].name };
		error_device(dm, &ref);
	}
	if (pm_dm_remove_all(dm) == 0)
		drop_nodes(dm, left, nleft);
	if (dm->userspace) {
		free(left);
		left = NULL;
		if (all_devices(dm, &left, &nleft))
			return 1;
		for (size_t i = 0; i < nleft; i++) {
			struct pm_dm_ref ref = { .name = left[i].name };
			if (!used_by_any(dm, left, nleft, left[i].dev) && pm_dm_remove(dm, &ref, true, 0) == 0)
				pm_dm_remove_node(left[i].name);
		}
	}
	free(left);
	left = NULL;
	if (all_devices(dm, &left, &nleft))
		return 1;
	/* still listed: open, or below an open one (userspace: gone at the last close) */
	size_t stay = 0;
	for (size_t i = 0; i < nleft; i++) {
		struct pm_dm_ref ref = { .name = left[i].name };
		struct pm_dm_info info;
		stay += pm_dm_info(dm, &ref, &info) == 0 && !(dm->userspace && info.deferred_remove);
	}
	if (stay)
		fprintf(stderr, "Unable to remove %zu device(s).\n", stay);
	return 0;
}

static int cmd_version(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	(void)o;
	(void)argc;
	(void)argv;
	printf("Library version:   partmap %s (no libdevmapper)\n", PARTMAP_VERSION);
	printf("Driver version:    %u.%u.%u%s\n", dm->version[0], dm->version[1], dm->version[2],
	       dm->userspace ? " (partmap userspace device mapper: the kernel has none)" : "");
	return 0;
}

/* a cookie as udev passes it (decimal, or 0x... hex), nothing else, at most 32 bits */
static int parse_cookie(const char *s, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || *end || *out > UINT32_MAX ? -EINVAL : 0;
}

/* udev's half of the cookie protocol: no control node needed */
static int cmd_udevcomplete(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	unsigned long cookie;
	int r;

	(void)dm;
	(void)o;
	if (argc < 1 || parse_cookie(argv[0], &cookie) < 0) {
		fprintf(stderr, "dmsetup: udevcomplete needs a cookie (a number)\n");
		return 1;
	}
	r = pm_dm_udev_complete((uint32_t)cookie);
	return r < 0 && r != -ENOENT;
}

static int cmd_udevcomplete_all(struct pm_dm *dm, const struct dopts *o, int argc, char **argv)
{
	int r = pm_dm_udev_complete_all();

	(void)dm;
	(void)o;
	(void)argc;
	(void)argv;
	if (r < 0)
		return 1;
	printf("%d semaphores with keys prefixed by 0x0D4D (device-mapper cookies) destroyed.\n", r);
	return 0;
}

/* The commands: name, handler, and whether it talks to the kernel's device mapper. */
static const struct command {
	const char *name;
	int (*run)(struct pm_dm *dm, const struct dopts *o, int argc, char **argv);
	bool no_dm;
} commands[] = {
	{ "create", cmd_create, false },
	{ "load", cmd_load, false },
	{ "reload", cmd_load, false },
	{ "clear", cmd_clear, false },
	{ "suspend", cmd_suspend, false },
	{ "resume", cmd_resume, false },
	{ "remove", cmd_remove, false },
	{ "remove_all", cmd_remove_all, false },
	{ "rename", cmd_rename, false },
	{ "info", cmd_info, false },
	{ "table", cmd_table, false },
	{ "status", cmd_status, false },
	{ "deps", cmd_deps, false },
	{ "ls", cmd_ls, false },
	{ "targets", cmd_targets, false },
	{ "version", cmd_version, false },
	{ "message", cmd_message, false },
	{ "wait", cmd_wait, false },
	{ "mknodes", cmd_mknodes, false },
	{ "splitname", cmd_splitname, true },
	{ "udevcomplete", cmd_udevcomplete, true },
	{ "udevcomplete_all", cmd_udevcomplete_all, true },
};

enum { O_NOTABLE = 256, O_TABLE, O_RETRY, O_DEFERRED, O_NOFLUSH, O_NOLOCKFS, O_SHOWKEYS, O_NOHEAD, O_SEP,
       O_SETUUID, O_VERSION, O_NOUDEVSYNC, O_NOUDEVRULES, O_INACTIVE, O_VERIFYUDEV, O_TREE, O_TARGET, O_READAHEAD, O_NOOPENCOUNT };
static const struct option longopts[] = {
	{ "uuid", required_argument, NULL, 'u' },
	{ "major", required_argument, NULL, 'j' },
	{ "minor", required_argument, NULL, 'm' },
	{ "readonly", no_argument, NULL, 'r' },
	{ "force", no_argument, NULL, 'f' },
	{ "columns", no_argument, NULL, 'c' },
	{ "options", required_argument, NULL, 'o' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "yes", no_argument, NULL, 'y' },
	{ "help", no_argument, NULL, 'h' },
	{ "notable", no_argument, NULL, O_NOTABLE },
	{ "table", required_argument, NULL, O_TABLE },
	{ "retry", no_argument, NULL, O_RETRY },
	{ "deferred", no_argument, NULL, O_DEFERRED },
	{ "noflush", no_argument, NULL, O_NOFLUSH },
	{ "nolockfs", no_argument, NULL, O_NOLOCKFS },
	{ "showkeys", no_argument, NULL, O_SHOWKEYS },
	{ "noheadings", no_argument, NULL, O_NOHEAD },
	{ "separator", required_argument, NULL, O_SEP },
	{ "setuuid", no_argument, NULL, O_SETUUID },
	{ "version", no_argument, NULL, O_VERSION },
	{ "noudevsync", no_argument, NULL, O_NOUDEVSYNC },
	{ "noudevrules", no_argument, NULL, O_NOUDEVRULES },
	{ "verifyudev", no_argument, NULL, O_VERIFYUDEV },
	{ "inactive", no_argument, NULL, O_INACTIVE },
	{ "tree", no_argument, NULL, O_TREE },
	{ "target", required_argument, NULL, O_TARGET },
	{ "readahead", required_argument, NULL, O_READAHEAD },
	{ "noopencount", no_argument, NULL, O_NOOPENCOUNT },
	{ NULL, 0, NULL, 0 },
};

/* one option, before or after the command; -1 when unknown */
static int apply_opt(int c, const char *arg, struct dopts *o, bool *setuuid, bool *noudevsync)
{
	switch (c) {
	case 'u': o->uuid = arg; break;
	case 'j':
	case 'm': {
		unsigned long v;
		if (pm_parse_ulong(arg, c == 'j' ? 4095 : 1048575, &v) < 0) {
			fprintf(stderr, "Invalid %s number: %s\n", c == 'j' ? "major" : "minor", arg);
			return -2;
		}
		if (c == 'j')
			o->major = (int)v;
		else
			o->minor = (int)v;
		break;
	}
	case 'r': o->readonly = true; break;
	case 'f': o->force = true; break;
	case 'c':
	case 'C': o->columns = true; break;
	case 'o': o->fields = arg; o->columns = true; break;
	case 'v': o->verbose = true; break;
	case 'y': break;
	case O_NOTABLE: o->notable = true; break;
	case O_TABLE: o->table = arg; break;
	case O_RETRY: o->retry = true; break;
	case O_DEFERRED: o->deferred = true; break;
	case O_NOFLUSH: o->noflush = true; break;
	case O_NOLOCKFS: o->nolockfs = true; break;
	case O_SHOWKEYS: o->showkeys = true; break;
	case O_NOHEAD: o->noheadings = true; break;
	case O_SEP: o->separator = arg; break;
	case O_SETUUID: *setuuid = true; break;
	case O_NOUDEVSYNC: *noudevsync = true; break;
	case O_NOUDEVRULES:
	case O_VERIFYUDEV: break;
	case O_INACTIVE: o->inactive = true; break;
	case O_TREE: o->tree = true; break;
	case O_TARGET: o->target = arg; break;
	case O_NOOPENCOUNT: break; /* the counts cost nothing to ask for here */
	case O_READAHEAD:
		if (!strcmp(arg, "auto")) {
			o->ra_mode = RA_KEEP;
		} else if (!strcmp(arg, "none")) {
			o->ra_mode = RA_SET;
			o->ra = 0;
		} else {
			o->ra_mode = *arg == '+' ? RA_MIN : RA_SET;
			if (pm_parse_ulong(arg + (*arg == '+'), UINT32_MAX, &o->ra) < 0) {
				fprintf(stderr, "Invalid read ahead value: %s (sectors, +sectors, auto or none)\n", arg);
				return -2;
			}
		}
		break;
	default: return -1;
	}
	return 0;
}

int dmsetup_main(int argc, char **argv)
{
	struct dopts o = { .major = -1, .minor = -1 };
	bool noudevsync = false, setuuid = false;
	struct pm_dm dm;
	const char *cmd;
	int c, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+u:j:m:rfcCo:vyh", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == O_VERSION) {
			printf("dmsetup (partmap) %s\n", PARTMAP_VERSION);
			return 0;
		}
		r = apply_opt(c, optarg, &o, &setuuid, &noudevsync);
		if (r == -2)
			return 1; /* a bad value, said */
		if (r < 0) {
			fprintf(stderr, "dmsetup: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	cmd = argv[optind++];
	/* options may also follow the command (dmsetup remove -f name) */
	{
		int rest_argc = argc - optind + 1;
		char **rest = argv + optind - 1;
		/* optind = 0, not 1: glibc's getopt then starts afresh; with 1 it keeps the first pass's
		 * state (its '+' mode, the position inside a group) and stops at the first argument */
		optind = 0;
		while ((c = getopt_long(rest_argc, rest, "u:j:m:rfcCo:vyh", longopts, NULL)) != -1) {
			r = apply_opt(c, optarg, &o, &setuuid, &noudevsync);
			if (r == -2)
				return 1;
			if (r < 0) {
				fprintf(stderr, "dmsetup: unknown option %s\n", rest[optind - 1]);
				return 1;
			}
		}
		argc = rest_argc - optind;
		argv = rest + optind;
	}
	o.setuuid = setuuid ? "" : NULL;

	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	const struct command *command = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			command = &commands[i];
	if (!command) {
		fprintf(stderr, "dmsetup: unknown command '%s'\n", cmd);
		usage(stderr);
		return 1;
	}
	if (command->no_dm)
		return command->run(NULL, &o, argc, argv) ? 1 : 0;
	int udev_wait_ms;
	if (pm_udev_timeout_env(&udev_wait_ms) < 0) {
		fprintf(stderr, "PARTMAP_UDEV_TIMEOUT='%s': not a whole number of seconds from 0 to %d\n",
			getenv("PARTMAP_UDEV_TIMEOUT"), PM_UDEV_TIMEOUT_MAX_S);
		return 1;
	}
	/* the kernel's device mapper, or, where it has none, the one in userspace (PARTMAP_DM=user
	 * forces it, PARTMAP_DM=kernel forbids it) */
	const char *which = getenv("PARTMAP_DM");
	if (which && *which && strcmp(which, "user") && strcmp(which, "kernel") && strcmp(which, "auto")) {
		fprintf(stderr, "PARTMAP_DM='%s': not user, kernel or auto\n", which);
		return 1;
	}
	bool force_user = which && !strcmp(which, "user"), force_kernel = which && !strcmp(which, "kernel");
	r = force_user ? -ENODEV : pm_dm_open(&dm);
	if (r == -ENODEV && !force_kernel) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		r = pm_dm_open_user(&dm, exe);
	}
	if (r < 0) {
		fprintf(stderr, "/dev/mapper/control: open failed: %s\n", strerror(-r));
		fprintf(stderr, "Failure to communicate with kernel device-mapper driver.\n");
		if (r == -ENODEV)
			fprintf(stderr, "Check that device-mapper is available in the kernel%s.\n",
				force_kernel ? " (PARTMAP_DM=kernel: the userspace one is not used)" : "");
		return 1;
	}
	if (noudevsync || getenv("DM_DISABLE_UDEV"))
		dm.udev = false;
	dm.udev_wait_ms = udev_wait_ms;

	r = command->run(&dm, &o, argc, argv);
	if (dm.udev_timed_out)
		fprintf(stderr, "dmsetup: udev did not answer within %d s: partmap made the nodes itself\n",
			dm.udev_wait_ms / 1000);
	pm_dm_close(&dm);
	return r ? 1 : 0;
}
