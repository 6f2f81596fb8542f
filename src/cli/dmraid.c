/* SPDX-License-Identifier: GPL-2.0-or-later */
/* partmap dmraid: BIOS ("fake") RAID sets found on member disks, listed and mapped as Debian's dmraid
 * 1.0.0.rc16-12 does (output, set names, map names, DM UUIDs, messages, exit codes), from block
 * devices, loop devices and disk images in any format partmap reads, on the kernel's device mapper
 * or partmap's userspace one. Facts: ../shared/reference/dmraid.md §2, §3. */
#include "applets.h"
#include "common.h"

#include "../disk.h"
#include "../dm.h"
#include "../dmtable.h"
#include "../image/image.h"
#include "../loop.h"
#include "../ptable.h"
#include "../raid/set.h"
#include "../serve.h"
#include "../util.h"
#include "../vdev/udm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOOP_TAG "partmap-dmraid"
#define LOOP_TAG_NEW "partmap-dmraid+" /* a loop device the kernel created for the run: removed too */
#define MAX_DISKS 256

enum act { ACT_NONE, ACT_UP, ACT_DOWN };

struct opts {
	bool raid_devs, list, test, block, dump, version, json, readonly, no_parts;
	int sets, columns, verbose;
	enum act act;
	const char *fields, *formats, *separator;
	char partchar[8];
};

struct member {
	char arg[PATH_MAX];        /* as given, or /dev/sdX found by the scan */
	char dev[PATH_MAX];        /* the block device the tables name (a loop device for a file) */
	char serial[64];
	bool is_file, is_image;    /* a regular file; not raw */
	struct stat st;
	struct pm_image *img;
	struct pm_disk d;
	bool open;
	bool made;                 /* its loop device (and server) made by this run */
};

struct run {
	struct opts o;
	struct member m[MAX_DISKS];
	struct pm_raid_disk k[MAX_DISKS];
	size_t n;
	const char *names[MAX_DISKS]; /* set names given */
	size_t nnames;
	struct pm_raid_sets sets;
	struct pm_dm dm;
	bool dm_open;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: partmap dmraid [OPTION...] [DEVICE|IMAGE|SET...]   (also as `dmraid`)\n"
		"BIOS RAID sets (Intel IMSM, SNIA DDF and the other formats dmraid reads) on member disks,\n"
		"loop devices or disk images in any format partmap reads, as Debian's dmraid 1.0.0.rc16.\n"
		"  -r, --raid_devices        list the member devices\n"
		"  -s, --sets                list the sets (twice: with their subsets)\n"
		"  -l, --list_formats        list the metadata formats\n"
		"  -a, --activate y|n        map (y) or remove (n) the sets (and their partitions)\n"
		"  -t, --test                with -a: print the tables, change nothing\n"
		"  -c, --display_columns[=FIELDS]  short output (-c, -cc, -ccc); -r fields: devpath,format,\n"
		"                            raidname,type,status,sectors,dataoffset; -s fields: name,size,\n"
		"                            stride,type,status,subsets,devs,spares\n"
		"      --separator SEP       between -c fields (default ,)\n"
		"  -f, --format FORMAT[,FORMAT]  only these metadata formats\n"
		"  -P, --partchar CHAR       between a set name ending in a digit and a partition number (p)\n"
		"  -p, --no_partitions       map no partitions\n"
		"  -b, --block_devices       list the block devices scanned\n"
		"  -D, --dump_metadata       with -r: write each member's metadata to ./dmraid.FORMAT/\n"
		"  -v, --verbose             say more (why a disk is not used)\n"
		"      --json                -r and -s as JSON\n"
		"      --readonly            map read-only\n"
		"  -V, --version             versions\n"
		"  -h, --help                this help\n"
		"Without DEVICE arguments the block devices are scanned (sd, hd, vd and loop devices).\n"
		"PARTMAP_DM=user|kernel|auto chooses the device mapper (auto: the kernel's, else partmap's).\n"
		"Exit status: 0 success, 1 an error (no raid disks or sets, a set not activated).\n");
}

/* ---- devices ---- */

static void strip_serial(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	size_t i = 0;
	while (isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, strlen(s + i) + 1);
}

/* The serial number of a block device, as sysfs tells it; "" when none (loop devices). */
static void dev_serial(dev_t rdev, char *out, size_t len)
{
	char p[128];
	static const char *const where[] = { "serial", "device/serial", "device/vpd_pg80" };
	out[0] = 0;
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/%s", major(rdev), minor(rdev), where[i]);
		_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[256];
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		if (r <= 0)
			continue;
		buf[r] = 0;
		const char *s = buf;
		if (i == 2) { /* VPD page 0x80: a 4-byte header */
			if (r <= 4)
				continue;
			s = buf + 4;
		}
		pm_strlcpy(out, s, len);
		for (char *c = out; *c; c++)
			if (!isprint((unsigned char)*c))
				*c = ' ';
		strip_serial(out);
		if (*out)
			return;
	}
}

static int member_open(struct member *m, bool verbose)
{
	_cleanup_close_ int fd = open(m->arg, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &m->st) < 0)
		return -errno;
	if (S_ISREG(m->st.st_mode)) {
		struct pm_image_diag diag;
		m->is_file = true;
		int r = pm_image_open_fd(&m->img, fd, m->arg, NULL, &diag);
		if (r < 0) {
			fprintf(stderr, "ERROR: %s\n", diag.error);
			return r;
		}
		if (verbose)
			cli_image_warnings("dmraid", &diag);
		m->is_image = strcmp(pm_image_format(m->img), "raw") != 0;
		pm_disk_from_image(&m->d, m->img);
	} else if (S_ISBLK(m->st.st_mode)) {
		int r = pm_disk_open(&m->d, m->arg, O_RDONLY);
		if (r < 0)
			return r;
		dev_serial(m->st.st_rdev, m->serial, sizeof(m->serial));
		pm_strlcpy(m->dev, m->arg, sizeof(m->dev));
	} else {
		return -ENOTBLK;
	}
	m->open = true;
	return 0;
}

static void member_close(struct member *m)
{
	if (m->open)
		pm_disk_close(&m->d);
	if (m->img)
		pm_image_close(m->img);
	m->img = NULL;
	m->open = false;
}

static bool sys_flag(const char *name, const char *file)
{
	char p[PATH_MAX], v[16];
	snprintf(p, sizeof(p), "/sys/block/%s/%s", name, file);
	return pm_read_line(p, v, sizeof(v)) == 0 && atoi(v) != 0;
}

/* The set name `-r` shows for a member: its subset's for a member of a stacked set ("<set>-0", as
 * Debian's dmraid prints for nvidia, pdc, sil, lsi, hpt), except asr's internal subsets (".asr_..."),
 * whose members show the set's */
static const char *r_name(const struct pm_raid_dev *rd)
{
	return rd->subset[0] && rd->subset[0] != '.' ? rd->subset : rd->set;
}

/* dmraid's scan: sd, hd, vd disks (not partitions), not removable; and loop devices (not the
 * userspace device mapper's own) */
static int scan_block(struct run *R)
{
	DIR *dir = opendir("/sys/block");
	if (!dir)
		return -errno;
	struct dirent *e;
	char names[MAX_DISKS][64];
	size_t n = 0;
	while ((e = readdir(dir)) && n < MAX_DISKS) {
		const char *s = e->d_name;
		size_t l = strlen(s);
		bool disk = (!strncmp(s, "sd", 2) || !strncmp(s, "hd", 2) || !strncmp(s, "vd", 2)) && l > 2 &&
			    !isdigit((unsigned char)s[l - 1]);
		bool loop = !strncmp(s, "loop", 4) && pm_loop_index_of_name(s) >= 0;
		if (!disk && !loop)
			continue;
		if (disk && sys_flag(s, "removable"))
			continue;
		if (loop) {
			struct pm_loop_info li;
			if (pm_loop_info(pm_loop_index_of_name(s), &li) != 1 || !strncmp(li.tag, PM_UDM_LOOP_TAG, strlen(PM_UDM_LOOP_TAG)))
				continue;
		}
		pm_strlcpy(names[n++], s, sizeof(names[0]));
	}
	closedir(dir);
	/* dmraid puts each disk it finds at the head of its list: -r lists them in the reverse of
	 * /sys/block's order (seen in the VM: sda sdc sdb sdd where readdir gives sdd sdb sdc sda) */
	for (size_t k = n; k-- > 0 && R->n < MAX_DISKS;) {
		size_t i = k;
		struct member *m = &R->m[R->n];
		memset(m, 0, sizeof(*m));
		if (snprintf(m->arg, sizeof(m->arg), "/dev/%.64s", names[i]) >= (int)sizeof(m->arg))
			continue;
		if (member_open(m, false) < 0 || pm_disk_sectors(&m->d) < 8) {
			member_close(m);
			continue;
		}
		R->n++;
	}
	return 0;
}

static int read_all(struct run *R)
{
	for (size_t i = 0; i < R->n; i++) {
		memset(&R->k[i], 0, sizeof(R->k[i]));
		R->k[i].path = R->m[i].dev[0] ? R->m[i].dev : R->m[i].arg;
		R->k[i].d = &R->m[i].d;
		R->k[i].serial = R->m[i].serial;
	}
	int r = pm_raid_scan(R->k, R->n, R->o.formats);
	if (r == -EINVAL) {
		fprintf(stderr, "ERROR: unknown format in \"%s\"\n", R->o.formats);
		return r;
	}
	if (R->o.verbose)
		for (size_t i = 0; i < R->n; i++)
			if (R->k[i].why[0] || R->k[i].err)
				fprintf(stderr, "%s: %s: %s\n", R->k[i].err ? "ERROR" : "INFO", R->m[i].arg,
					R->k[i].why[0] ? R->k[i].why : strerror(-R->k[i].err));
	return r;
}

static void no_raid(const struct run *R, const char *what)
{
	printf("no raid %s", what);
	if (R->o.formats && *R->o.formats)
		printf(" with format: \"%s\"", R->o.formats);
	if (R->nnames) {
		printf(" and with names: \"");
		for (size_t i = 0; i < R->nnames; i++)
			printf("%s%s", i ? " " : "", R->names[i]);
		printf("\"");
	}
	printf("\n");
}

/* ---- -r ---- */

static const char *field_r(const struct member *m, const struct pm_raid_disk *k, const struct pm_raid_dev *rd,
			   const char *f, char *buf, size_t len)
{
	(void)m;
	if (!strcmp(f, "devpath") || !strcmp(f, "path"))
		return k->path;
	if (!strcmp(f, "format"))
		return rd->fmt->name;
	if (!strcmp(f, "raidname"))
		return r_name(rd);
	if (!strcmp(f, "type"))
		return pm_raid_type_name(rd->type);
	if (!strcmp(f, "status"))
		return pm_raid_status_name(rd->status);
	if (!strcmp(f, "sectors") || !strcmp(f, "size")) {
		snprintf(buf, len, "%llu", (unsigned long long)rd->sectors);
		return buf;
	}
	if (!strcmp(f, "offset") || !strcmp(f, "dataoffset")) {
		snprintf(buf, len, "%llu", (unsigned long long)rd->offset);
		return buf;
	}
	return NULL;
}

static bool fields_ok(const char *fields, bool sets)
{
	static const char *const rf[] = { "devpath", "path", "format", "raidname", "type", "sectors", "size",
					  "status", "offset", "dataoffset", NULL };
	static const char *const sf[] = { "name", "raidname", "size", "sectors", "stride", "type", "status",
					  "subsets", "devs", "devices", "spares", NULL };
	char tmp[512];
	pm_strlcpy(tmp, fields, sizeof(tmp));
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool ok = false;
		for (const char *const *f = sets ? sf : rf; *f; f++)
			ok |= !strcmp(*f, t);
		if (!ok)
			return false;
	}
	return true;
}

static void dump_meta(const struct member *m, const struct pm_raid_disk *k, const struct pm_raid_dev *rd)
{
	char dir[64], p[PATH_MAX];
	snprintf(dir, sizeof(dir), "dmraid.%s", rd->fmt->name);
	mkdir(dir, 0755);
	const char *b = strrchr(m->arg, '/');
	b = b ? b + 1 : m->arg;
	if (!rd->meta_len || rd->meta_len > (64u << 20))
		return;
	uint8_t *buf = malloc(rd->meta_len);
	if (!buf)
		return;
	if (pm_disk_read(k->d, rd->meta_offset, buf, rd->meta_len) == 0) {
		snprintf(p, sizeof(p), "%s/%s.dat", dir, b);
		FILE *f = fopen(p, "w");
		if (f) {
			fwrite(buf, 1, rd->meta_len, f);
			fclose(f);
		}
		snprintf(p, sizeof(p), "%s/%s.offset", dir, b);
		if ((f = fopen(p, "w"))) {
			fprintf(f, "%llu\n", (unsigned long long)rd->meta_offset);
			fclose(f);
		}
		snprintf(p, sizeof(p), "%s/%s.size", dir, b);
		if ((f = fopen(p, "w"))) {
			fprintf(f, "%llu\n", (unsigned long long)pm_disk_sectors(k->d));
			fclose(f);
		}
	}
	free(buf);
}

static int do_r(struct run *R)
{
	const struct opts *o = &R->o;
	size_t found = 0;
	bool first = true;
	if (o->json)
		printf("{\"devices\":[");
	for (size_t i = 0; i < R->n; i++) {
		const struct pm_raid_disk *k = &R->k[i];
		for (size_t j = 0; j < k->n; j++) {
			const struct pm_raid_dev *rd = &k->rd[j];
			if (!rd->listed)
				continue;
			found++;
			char b1[32], b2[32];
			if (o->dump)
				dump_meta(&R->m[i], k, rd);
			if (o->json) {
				printf("%s{\"path\":", first ? "" : ",");
				cli_json_str(stdout, k->path);
				printf(",\"format\":\"%s\",\"name\":", rd->fmt->name);
				cli_json_str(stdout, rd->set);
				printf(",\"type\":\"%s\",\"status\":\"%s\",\"sectors\":%llu,\"offset\":%llu,\"serial\":",
				       pm_raid_type_name(rd->type), pm_raid_status_name(rd->status),
				       (unsigned long long)rd->sectors, (unsigned long long)rd->offset);
				cli_json_str(stdout, R->m[i].serial);
				printf("}");
				first = false;
			} else if (o->fields) {
				char tmp[512];
				pm_strlcpy(tmp, o->fields, sizeof(tmp));
				bool f1 = true;
				for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
					printf("%s%s", f1 ? "" : o->separator, field_r(&R->m[i], k, rd, t, b1, sizeof(b1)));
					f1 = false;
				}
				printf("\n");
			} else if (o->columns == 1) {
				printf("%s\n", k->path);
			} else if (o->columns > 1) {
				printf("%s:%s:%s:%s:%s:%s:%s\n", k->path, rd->fmt->name, r_name(rd), pm_raid_type_name(rd->type),
				       pm_raid_status_name(rd->status), field_r(NULL, k, rd, "sectors", b1, sizeof(b1)),
				       field_r(NULL, k, rd, "offset", b2, sizeof(b2)));
			} else {
				printf("%s: %s, \"%s\", %s, %s, %llu sectors, data@ %llu\n", k->path, rd->fmt->name, r_name(rd),
				       pm_raid_type_name(rd->type), pm_raid_status_name(rd->status),
				       (unsigned long long)rd->sectors, (unsigned long long)rd->offset);
			}
		}
	}
	if (o->json)
		printf("]}\n");
	if (!found && !o->json) {
		no_raid(R, "disks");
		return 1;
	}
	return found ? 0 : 1;
}

/* ---- device mapper ---- */

static int dm_open(struct run *R, bool start_ok)
{
	(void)start_ok;
	if (R->dm_open)
		return 0;
	const char *which = getenv("PARTMAP_DM");
	if (which && *which && strcmp(which, "user") && strcmp(which, "kernel") && strcmp(which, "auto")) {
		fprintf(stderr, "ERROR: PARTMAP_DM='%s': not user, kernel or auto\n", which);
		return -EINVAL;
	}
	bool force_user = which && !strcmp(which, "user"), force_kernel = which && !strcmp(which, "kernel");
	int r = force_user ? -ENODEV : pm_dm_open(&R->dm);
	if (r == -ENODEV && !force_kernel) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		r = pm_dm_open_user(&R->dm, exe);
	}
	if (r < 0) {
		fprintf(stderr, "ERROR: device-mapper: %s\n", strerror(-r));
		return r;
	}
	int ms;
	if (pm_udev_timeout_env(&ms) == 0)
		R->dm.udev_wait_ms = ms;
	R->dm_open = true;
	return 0;
}

static bool dm_exists(struct run *R, const char *name)
{
	struct pm_dm_info info;
	struct pm_dm_ref ref = { .name = name };
	return R->dm_open && pm_dm_info(&R->dm, &ref, &info) == 0;
}

static int dm_map(struct run *R, const char *name, const char *uuid, const char *table)
{
	struct pm_dm_table tb = { 0 };
	struct pm_dm_table_err err;
	struct pm_dm_info info;
	int r = pm_dm_table_parse(table, &tb, &err);
	if (r < 0) {
		fprintf(stderr, "ERROR: table for \"%s\": %s\n", name, err.text[0] ? err.text : strerror(-r));
		return r;
	}
	r = pm_dm_create_map(&R->dm, name, uuid, tb.t, tb.n, R->o.readonly, false, &info);
	pm_dm_table_free(&tb);
	if (r < 0) {
		fprintf(stderr, "ERROR: device-mapper: creating \"%s\": %s%s%s\n", name, strerror(-r),
			R->dm.err[0] ? ": " : "", R->dm.err);
		return r;
	}
	if (!R->dm.udev || R->dm.udev_timed_out)
		pm_dm_make_node(name, info.dev, 0600, 0, 0);
	return 0;
}

static int dm_unmap(struct run *R, const char *name)
{
	struct pm_dm_ref ref = { .name = name };
	int r = pm_dm_remove(&R->dm, &ref, false, PM_DM_REMOVE_RETRIES_UNDO);
	if (r < 0) {
		fprintf(stderr, "ERROR: device-mapper: removing \"%s\": %s\n", name, strerror(-r));
		return r;
	}
	pm_dm_remove_node(name);
	return 0;
}

/* ---- files: loop devices, image servers ---- */

static int self_exe(char *exe, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", exe, len - 1);
	if (n <= 0)
		return -errno;
	exe[n] = 0;
	return 0;
}

/* the loop device showing a member file now (raw: on the file; an image: on its server's disk, in
 * dir/disk, each PM_SERVE_PATH_MAX bytes): 1 and li filled, 0 none, -errno */
static int find_loop(const struct member *m, char *dir, char *disk, struct pm_loop_info *li)
{
	if (!m->is_image)
		return pm_loop_find_whole(m->st.st_dev, m->st.st_ino, (uint64_t)m->st.st_size, li);
	pm_serve_dir(m->st.st_dev, m->st.st_ino, dir, PM_SERVE_PATH_MAX);
	pm_serve_disk(dir, disk, PM_SERVE_PATH_MAX);
	return pm_loop_find_path(disk, 0, li);
}

/* the loop device showing a member file (raw: the file; an image: its server's disk), made when
 * `make` and missing; 1 found/made, 0 none, -errno */
static int file_loop(struct run *R, struct member *m, bool make)
{
	struct pm_loop_info li;
	char dir[PM_SERVE_PATH_MAX], disk[PM_SERVE_PATH_MAX];
	int r = find_loop(m, dir, disk, &li);
	if (r < 0)
		return r;
	if (r == 1 && li.autoclear && !strncmp(li.tag, LOOP_TAG, strlen(LOOP_TAG)))
		r = 0; /* ours, being detached (a -an whose map was still closing): not reused */
	if (r == 1) {
		snprintf(m->dev, sizeof(m->dev), "/dev/loop%d", li.index);
		return 1;
	}
	if (!make)
		return 0;
	bool ro = R->o.readonly;
	const char *backing = m->arg;
	if (m->is_image) {
		char exe[PATH_MAX], abs[PATH_MAX];
		const char *why = pm_image_readonly_reason(m->img);
		if (why && !ro) {
			fprintf(stderr, "WARN: %s: %s image mapped read-only (%s)\n", m->arg, pm_image_format(m->img), why);
			ro = true;
		}
		if ((r = self_exe(exe, sizeof(exe))) < 0)
			return r;
		if (pm_serve_state(dir) != PM_SERVE_RUNNING) {
			r = pm_serve_start(exe, realpath(m->arg, abs) ? abs : m->arg, dir, NULL, ro, false);
			if (r < 0) {
				fprintf(stderr, "ERROR: %s: cannot serve the image: %s\n", m->arg, strerror(-r));
				return r;
			}
		}
		backing = disk;
	}
	_cleanup_close_ int fd = open(backing, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 && !ro && (errno == EACCES || errno == EROFS || errno == EPERM))
		fd = open(backing, O_RDONLY | O_CLOEXEC), ro = true;
	if (fd < 0) {
		r = -errno;
		if (m->is_image)
			pm_serve_stop(dir);
		return r;
	}
	struct pm_loop_set existing = { 0 };
	pm_loop_set_read(&existing);
	struct pm_loop_cfg cfg = { .index = -1, .control_fd = -1, .read_only = ro, .tag = LOOP_TAG,
				   .existing = &existing, .tag_new = LOOP_TAG_NEW };
	int idx = pm_loop_attach(fd, &cfg, NULL);
	pm_loop_set_free(&existing);
	if (idx < 0) {
		fprintf(stderr, "ERROR: %s: no loop device: %s\n", m->arg, strerror(-idx));
		if (m->is_image)
			pm_serve_stop(dir);
		return idx;
	}
	snprintf(m->dev, sizeof(m->dev), "/dev/loop%d", idx);
	m->made = true;
	if (R->o.verbose)
		fprintf(stderr, "INFO: %s: attached to %s\n", m->arg, m->dev);
	return 1;
}

/* undo file_loop: the loop device (when this applet made it) and the image's server */
static int file_unloop(struct run *R, struct member *m)
{
	struct pm_loop_info li;
	char dir[PM_SERVE_PATH_MAX], disk[PM_SERVE_PATH_MAX];
	int rc = 0, r = find_loop(m, dir, disk, &li);
	if (r == 1 && !strncmp(li.tag, LOOP_TAG, strlen(LOOP_TAG))) {
		bool added = !strcmp(li.tag, LOOP_TAG_NEW);
		if ((r = pm_loop_detach(li.index, true)) < 0) {
			fprintf(stderr, "ERROR: /dev/loop%d: cannot detach: %s\n", li.index, strerror(-r));
			return 1;
		}
		/* still held (the device mapper closing the map's member): wait until the kernel lets it
		 * go, so that an -ay right after this does not find it */
		for (int i = 0; r == 1 && i < 300; i++) {
			struct pm_loop_info now;
			if (pm_loop_info(li.index, &now) != 1 || now.backing_ino != li.backing_ino ||
			    now.backing_dev != li.backing_dev)
				break;
			pm_sleep_ms(10);
		}
		if (R->o.verbose)
			fprintf(stderr, "INFO: %s: /dev/loop%d detached\n", m->arg, li.index);
		int err;
		if (added && r == 0)
			pm_loop_remove_many(-1, &li.index, &err, 1);
	}
	if (m->is_image && pm_serve_state(dir) != PM_SERVE_NONE && (r = pm_serve_stop(dir)) < 0) {
		fprintf(stderr, "ERROR: %s: cannot stop its server: %s\n", m->arg, strerror(-r));
		rc = 1;
	}
	return rc;
}

/* ---- -s ---- */

static bool wanted(const struct run *R, const struct pm_raid_set *s)
{
	if (!R->nnames)
		return true;
	for (size_t i = 0; i < R->nnames; i++)
		if (!strcmp(R->names[i], s->name) || !strcmp(R->names[i], s->group))
			return true;
	return false;
}

/* The size `-s` shows: the set's, except for a mirror or a span, whose smallest member dmraid rounds
 * down to the stride first (Debian's dmraid on nvidia, via, lsi, pdc, hpt sets in the VM; its tables
 * keep the whole members) */
static unsigned long long shown_size(const struct pm_raid_set *s)
{
	if (!s->stride || !s->m || (s->type != PM_RT_RAID1 && s->type != PM_RT_LINEAR))
		return (unsigned long long)s->sectors;
	if (s->type == PM_RT_RAID1)
		return (unsigned long long)(s->sectors / s->stride * s->stride);
	/* a span: its smallest member, so rounded, times the members (an hpt37x span whose second disk
	 * starts 10 sectors in shows 2 x the smaller) */
	unsigned long long small = ~0ull, n = 0;
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk) {
			n++;
			if (s->m[i].rd->sectors < small)
				small = s->m[i].rd->sectors;
		}
	return n ? small / s->stride * s->stride * n : 0;
}

static void set_fields_line(const struct run *R, const struct pm_raid_set *s)
{
	printf("%s:%llu:%u:%s:%s:%u:%u:%u\n", s->name, shown_size(s), s->stride, pm_raid_set_type_name(s),
	       pm_raid_status_name(s->status), s->nsub, pm_raid_set_devs(s), pm_raid_set_spares(s));
	(void)R;
}

static void member_lines(const struct pm_raid_set *s)
{
	for (unsigned i = 0; i < s->nsub; i++)
		member_lines(&s->sub[i]);
	for (unsigned i = 0; i < s->nmemb; i++)
		if (s->m[i].disk) {
			const struct pm_raid_dev *rd = s->m[i].rd;
			printf("%s:%s:%s:%s:%s:%llu:%llu\n", s->m[i].disk->path, rd->fmt->name, rd->name_by_path ? s->name : rd->set,
			       pm_raid_type_name(rd->type), pm_raid_status_name(rd->status),
			       (unsigned long long)rd->sectors, (unsigned long long)rd->offset);
		}
}

static void set_block(struct run *R, const struct pm_raid_set *s, const char *prefix, const char *noun, int depth)
{
	const struct opts *o = &R->o;
	bool inc = s->status == PM_RS_INCONSISTENT || s->status == PM_RS_BROKEN;
	bool active = dm_exists(R, s->name);
	if (o->fields) {
		char tmp[512];
		pm_strlcpy(tmp, o->fields, sizeof(tmp));
		bool f1 = true;
		for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			printf("%s", f1 ? "" : o->separator);
			f1 = false;
			if (!strcmp(t, "name") || !strcmp(t, "raidname"))
				printf("%s", s->name);
			else if (!strcmp(t, "size") || !strcmp(t, "sectors"))
				printf("%llu", shown_size(s));
			else if (!strcmp(t, "stride"))
				printf("%u", s->stride);
			else if (!strcmp(t, "type"))
				printf("%s", pm_raid_set_type_name(s));
			else if (!strcmp(t, "status"))
				printf("%s", pm_raid_status_name(s->status));
			else if (!strcmp(t, "subsets"))
				printf("%u", s->nsub);
			else if (!strcmp(t, "devs") || !strcmp(t, "devices"))
				printf("%u", pm_raid_set_devs(s));
			else if (!strcmp(t, "spares"))
				printf("%u", pm_raid_set_spares(s));
		}
		printf("\n");
	} else if (o->columns == 1) {
		printf("%s\n", s->name);
	} else if (o->columns > 1) {
		set_fields_line(R, s);
		if (o->columns > 2)
			member_lines(s);
	} else {
		printf("%s %s%s%set\n", prefix, inc ? "*Inconsistent* " : "", active ? "Active " : "", noun);
		printf("name   : %s\nsize   : %llu\nstride : %u\ntype   : %s\nstatus : %s\nsubsets: %u\ndevs   : %u\nspares : %u\n",
		       s->name, shown_size(s), s->stride, pm_raid_set_type_name(s),
		       pm_raid_status_name(s->status), s->nsub, pm_raid_set_devs(s), pm_raid_set_spares(s));
	}
	if (s->nsub && o->sets > 1 && depth < 4)
		for (unsigned i = 0; i < s->nsub; i++)
			if (s->sub[i].m)
				set_block(R, &s->sub[i], "-->", "Subs", depth + 1);
}

static void json_set(struct run *R, const struct pm_raid_set *s)
{
	printf("{\"name\":");
	cli_json_str(stdout, s->name);
	printf(",\"group\":");
	cli_json_str(stdout, s->group);
	printf(",\"format\":\"%s\",\"size\":%llu,\"stride\":%u,\"type\":\"%s\",\"status\":\"%s\",\"active\":%s,"
	       "\"degraded\":%s,\"usable\":%s,\"devs\":%u,\"spares\":%u,\"members\":[",
	       s->fmt->name, (unsigned long long)s->sectors, s->stride, pm_raid_set_type_name(s),
	       pm_raid_status_name(s->status), dm_exists(R, s->name) ? "true" : "false", s->degraded ? "true" : "false",
	       s->ok && s->type != PM_RT_SPARE ? "true" : "false", pm_raid_set_devs(s), pm_raid_set_spares(s));
	for (unsigned i = 0; i < s->nmemb; i++) {
		if (i)
			printf(",");
		if (s->m[i].disk)
			cli_json_str(stdout, s->m[i].disk->path);
		else
			printf("null");
	}
	printf("],\"subsets\":[");
	for (unsigned i = 0; i < s->nsub; i++) {
		if (i)
			printf(",");
		if (s->sub[i].m)
			json_set(R, &s->sub[i]);
		else
			printf("null");
	}
	printf("]}");
}

static int do_s(struct run *R)
{
	size_t shown = 0;
	if (R->sets.log)
		fputs(R->sets.log, stderr);
	if (R->o.json)
		printf("{\"sets\":[");
	bool *done = calloc(R->sets.n + 1, sizeof(bool));
	if (!done)
		return 1;
	for (size_t i = 0; i < R->sets.n; i++) {
		const struct pm_raid_set *s = &R->sets.v[i];
		if (done[i] || !wanted(R, s))
			continue;
		if (!s->ok && !R->o.json)
			continue; /* dmraid removed it ("removing inconsistent RAID set") */
		if (R->o.json) {
			printf("%s", shown ? "," : "");
			json_set(R, s);
			shown++;
			continue;
		}
		if (s->group[0]) {
			/* a group superset (isw, ddf1): its volumes as subsets */
			if (!R->o.columns && !R->o.fields)
				printf("*** Group superset %s\n", s->group);
			for (size_t j = i; j < R->sets.n; j++)
				if (!done[j] && R->sets.v[j].ok && !strcmp(R->sets.v[j].group, s->group) &&
				    wanted(R, &R->sets.v[j])) {
					done[j] = true;
					set_block(R, &R->sets.v[j], "-->", R->sets.v[j].nsub ? "Supers" : "Subs", 1);
					shown++;
				}
		} else {
			set_block(R, s, "***", s->nsub ? "Supers" : "S", 0);
			shown++;
		}
	}
	free(done);
	if (R->o.json)
		printf("]}\n");
	if (!shown && !R->o.json) {
		no_raid(R, "sets");
		return 1;
	}
	return 0;
}

/* ---- -ay / -an ---- */

/* the partitions of an active set, mapped as dmraid names them */
static int map_parts(struct run *R, const char *set)
{
	char node[PATH_MAX];
	struct pm_disk d;
	struct pm_table t = { 0 };
	struct pm_opts po = { 0 };
	int rc = 0;
	snprintf(node, sizeof(node), "/dev/mapper/%s", set);
	if (pm_disk_open(&d, node, O_RDONLY) < 0)
		return 0;
	int r = pm_probe(&d, &po, &t);
	pm_disk_close(&d);
	if (r < 0)
		fprintf(stderr, "ERROR: %s: %s\n", set, t.error[0] ? t.error : strerror(-r));
	size_t l = strlen(set);
	bool digit = l && isdigit((unsigned char)set[l - 1]);
	for (size_t i = 0; r == PM_FOUND && i < t.nparts; i++) {
		const struct pm_part *p = &t.parts[i];
		if (!p->size || p->kind == PM_EXTENDED)
			continue;
		char name[PM_DM_NAME_LEN], uuid[PM_DM_UUID_LEN], table[PATH_MAX + 64];
		if (snprintf(name, sizeof(name), "%s%s%u", set, digit ? R->o.partchar : "", p->num) >= (int)sizeof(name))
			continue;
		snprintf(uuid, sizeof(uuid), "part%u-DMRAID-%s", p->num, set);
		snprintf(table, sizeof(table), "0 %llu linear %s %llu\n", (unsigned long long)p->size, node,
			 (unsigned long long)p->start);
		if (dm_exists(R, name)) {
			printf("RAID set \"%s\" already active\n", name);
			continue;
		}
		if (dm_map(R, name, uuid, table) < 0) {
			printf("RAID set \"%s\" was not activated\n", name);
			rc = 1;
			continue;
		}
		printf("RAID set \"%s\" was activated\n", name);
	}
	pm_table_free(&t);
	return rc;
}

static int activate(struct run *R, const struct pm_raid_set *s)
{
	struct pm_raid_map *maps;
	size_t nm;
	char *log = NULL;
	if (!s->ok) {
		printf("RAID set \"%s\" was not activated\n", s->name);
		return 1;
	}
	if (s->type == PM_RT_SPARE) {
		/* dmraid's type handler for spare sets, then its caller; the group goes on (exit 0) */
		fprintf(stderr, "ERROR: spare set \"%s\" cannot be activated\nERROR: no mapping possible for RAID set %s\n",
			s->name, s->name);
		return 0;
	}
	int r = pm_raid_tables(s, &maps, &nm, &log);
	if (log)
		fputs(log, stderr);
	free(log);
	if (r < 0) {
		printf("RAID set \"%s\" was not activated\n", s->name);
		return 1;
	}
	int rc = 0;
	if (R->o.test) {
		for (size_t i = 0; i < nm; i++) {
			char *l = maps[i].table;
			for (char *e; (e = strchr(l, '\n')); l = e + 1)
				printf("%s: %.*s\n", maps[i].name, (int)(e - l), l);
		}
		pm_raid_maps_free(maps, nm);
		return 0;
	}
	size_t made = 0;
	bool already = false;
	for (size_t i = 0; i < nm; i++) {
		char uuid[PM_DM_UUID_LEN];
		if (snprintf(uuid, sizeof(uuid), "DMRAID-%s", maps[i].name) >= (int)sizeof(uuid))
			uuid[0] = 0;
		if (dm_exists(R, maps[i].name)) {
			if (i + 1 == nm)
				already = true;
			continue;
		}
		if (dm_map(R, maps[i].name, uuid, maps[i].table) < 0) {
			/* undo the subsets made for it */
			while (made--)
				dm_unmap(R, maps[made].name);
			rc = 1;
			break;
		}
		made++;
	}
	if (rc) {
		printf("RAID set \"%s\" was not activated\n", s->name);
	} else if (already) {
		printf("RAID set \"%s\" already active\n", s->name);
	} else {
		printf("RAID set \"%s\" was activated\n", s->name);
	}
	if (!rc && !R->o.no_parts)
		rc |= map_parts(R, s->name);
	pm_raid_maps_free(maps, nm);
	return rc;
}

/* is `name` the map of set `set`, or of one of its partitions or subsets (by DM uuid) */
static bool uuid_of_set(const char *uuid, const char *set)
{
	const char *p = uuid;
	if (!strncmp(p, "part", 4)) {
		p += 4;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != '-')
			return false;
	}
	if (strncmp(p, "DMRAID-", 7))
		return false;
	p += 7;
	size_t l = strlen(set);
	return !strncmp(p, set, l) && (p[l] == 0 || (p[l] == '-' && isdigit((unsigned char)p[l + 1])));
}

static int deactivate(struct run *R, const char *const *sets, size_t nsets)
{
	struct pm_dm_name *names = NULL;
	size_t n = 0;
	int rc = 0;
	if (pm_dm_list(&R->dm, &names, &n) < 0)
		return 1;
	/* partitions, then sets (superset before its subsets: shorter names first) */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t len = 0; len < PM_DM_NAME_LEN; len++) {
			for (size_t i = 0; i < n; i++) {
				if (strlen(names[i].name) != len)
					continue;
				struct pm_dm_info info;
				struct pm_dm_ref ref = { .name = names[i].name };
				if (pm_dm_info(&R->dm, &ref, &info) < 0)
					continue;
				bool part = !strncmp(info.uuid, "part", 4);
				if (part != (pass == 0))
					continue;
				bool match = false;
				for (size_t j = 0; j < nsets; j++)
					match |= uuid_of_set(info.uuid, sets[j]);
				if (!nsets)
					match = strstr(info.uuid, "DMRAID-") != NULL;
				if (!match)
					continue;
				if (dm_unmap(R, names[i].name) < 0)
					rc = 1;
				else if (R->o.verbose)
					fprintf(stderr, "INFO: removed \"%s\"\n", names[i].name);
			}
		}
	}
	free(names);
	return rc;
}

static int do_a(struct run *R)
{
	int rc = 0;
	if (R->sets.log && !(R->o.act == ACT_DOWN))
		fputs(R->sets.log, stderr);
	if (R->o.act == ACT_UP) {
		size_t shown = 0;
		for (size_t i = 0; i < R->sets.n; i++)
			shown += wanted(R, &R->sets.v[i]);
		if (!shown) {
			no_raid(R, "sets");
			return 1;
		}
		if (!R->o.test && dm_open(R, true) < 0)
			return 1;
		if (R->o.test) {
			/* -t attaches nothing: a member file's table names the loop device that holds it now
			 * (the one -ay would use), else the file itself (README, dmraid: differences) */
			for (size_t i = 0; i < R->n; i++)
				if (R->m[i].is_file && R->k[i].n && file_loop(R, &R->m[i], false) == 1)
					R->k[i].path = R->m[i].dev;
		} else {
			/* the loop devices (and image servers) of the member files */
			for (size_t i = 0; i < R->n; i++) {
				if (!R->m[i].is_file || !R->k[i].n)
					continue;
				bool need = false;
				for (size_t j = 0; j < R->k[i].n && !need; j++)
					for (size_t x = 0; x < R->sets.n; x++)
						if (wanted(R, &R->sets.v[x]) && R->sets.v[x].ok && !strcmp(R->k[i].rd[j].set, R->sets.v[x].name))
							need = true;
				if (!need)
					continue;
				if (file_loop(R, &R->m[i], true) < 0)
					return 1;
				R->k[i].path = R->m[i].dev;
			}
		}
		bool any = false;
		for (size_t i = 0; i < R->sets.n; i++)
			if (wanted(R, &R->sets.v[i])) {
				rc |= activate(R, &R->sets.v[i]);
				any |= dm_exists(R, R->sets.v[i].name);
			}
		/* nothing mapped: nothing left behind either */
		for (size_t i = 0; i < R->n && !any && !R->o.test; i++)
			if (R->m[i].made)
				file_unloop(R, &R->m[i]);
		return rc;
	}
	/* -an */
	if (dm_open(R, false) < 0)
		return 1;
	const char *list[MAX_DISKS * 2];
	bool sub[MAX_DISKS * 2] = { false };
	size_t nl = 0;
	for (size_t i = 0; i < R->sets.n && nl < MAX_DISKS; i++)
		if (wanted(R, &R->sets.v[i])) {
			list[nl++] = R->sets.v[i].name;
			/* subsets not named <set>-N (asr's .asr_<name>_<id>_donotuse) */
			for (unsigned j = 0; j < R->sets.v[i].nsub && nl < MAX_DISKS; j++) {
				sub[nl] = true;
				list[nl++] = R->sets.v[i].sub[j].name;
			}
		}
	for (size_t i = 0; i < R->nnames && nl < MAX_DISKS * 2; i++)
		list[nl++] = R->names[i];
	if (!nl && R->n) {
		no_raid(R, "sets");
		return 1;
	}
	for (size_t i = 0; i < nl; i++)
		if (!sub[i] && !dm_exists(R, list[i]))
			printf("RAID set \"%s\" is not active\n", list[i]);
	rc |= deactivate(R, list, nl);
	for (size_t i = 0; i < R->n; i++)
		if (R->m[i].is_file)
			rc |= file_unloop(R, &R->m[i]);
	return rc;
}

/* ---- main ---- */

static int version(void)
{
	printf("dmraid (partmap) %s\n", PARTMAP_VERSION);
	return 0;
}

static int list_formats(const struct opts *o)
{
	if (o->verbose)
		printf("INFO: supported metadata formats:\n");
	for (size_t i = 0; i < pm_raid_nall; i++)
		if (pm_raid_all[i])
			printf("%-7s : %s (%s)\n", pm_raid_all[i]->name, pm_raid_all[i]->descr, pm_raid_all[i]->caps);
	printf("%-7s : %s\n", "dos", "DOS partitions on SW RAIDs");
	return 0;
}

static int block_devs(struct run *R)
{
	if (!R->n) {
		printf("no block devices found\n");
		return 1;
	}
	for (size_t i = 0; i < R->n; i++)
		printf("%s: %12llu total, \"%s\"\n", R->m[i].arg, (unsigned long long)pm_disk_sectors(&R->m[i].d),
		       R->m[i].serial[0] ? R->m[i].serial : "N/A");
	return 0;
}

enum { OPT_SEPARATOR = 256, OPT_JSON, OPT_READONLY };

int dmraid_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "activate", required_argument, NULL, 'a' },
		{ "raid_devices", no_argument, NULL, 'r' },
		{ "sets", no_argument, NULL, 's' },
		{ "list_formats", no_argument, NULL, 'l' },
		{ "test", no_argument, NULL, 't' },
		{ "display_columns", optional_argument, NULL, 'c' },
		{ "separator", required_argument, NULL, OPT_SEPARATOR },
		{ "format", required_argument, NULL, 'f' },
		{ "partchar", required_argument, NULL, 'P' },
		{ "no_partitions", no_argument, NULL, 'p' },
		{ "block_devices", no_argument, NULL, 'b' },
		{ "dump_metadata", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "readonly", no_argument, NULL, OPT_READONLY },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct run R; /* large: not on the stack */
	memset(&R, 0, sizeof(R));
	struct opts *o = &R.o;
	o->separator = ",";
	strcpy(o->partchar, "p");
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:rslc::f:P:pbDtvVh", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (!strcmp(optarg, "y") || !strcmp(optarg, "yes"))
				o->act = ACT_UP;
			else if (!strcmp(optarg, "n") || !strcmp(optarg, "no"))
				o->act = ACT_DOWN;
			else {
				fprintf(stderr, "ERROR: invalid activate option \"%s\"\n", optarg);
				return 1;
			}
			break;
		case 'r': o->raid_devs = true; break;
		case 's': o->sets++; break;
		case 'l': o->list = true; break;
		case 't': o->test = true; break;
		case 'c':
			if (!optarg) {
				o->columns++;
			} else if (strspn(optarg, "c") == strlen(optarg)) {
				o->columns += 1 + (int)strlen(optarg);
			} else {
				o->fields = optarg;
			}
			break;
		case OPT_SEPARATOR: o->separator = optarg; break;
		case 'f': o->formats = optarg; break;
		case 'P':
			if (strlen(optarg) >= sizeof(o->partchar)) {
				fprintf(stderr, "ERROR: invalid partition character \"%s\"\n", optarg);
				return 1;
			}
			strcpy(o->partchar, optarg);
			break;
		case 'p': o->no_parts = true; break;
		case 'b': o->block = true; break;
		case 'D': o->dump = true; break;
		case 'v': o->verbose++; break;
		case OPT_JSON: o->json = true; break;
		case OPT_READONLY: o->readonly = true; break;
		case 'V': o->version = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	/* -c FIELDS as a separate word */
	if (o->columns == 1 && !o->fields && optind < argc && fields_ok(argv[optind], o->sets > 0) &&
	    access(argv[optind], F_OK) != 0) {
		o->fields = argv[optind++];
		o->columns = 0;
	}
	if (o->fields && !fields_ok(o->fields, o->sets > 0)) {
		fprintf(stderr, "ERROR: invalid field list \"%s\"\n", o->fields);
		return 1;
	}
	if (o->version)
		return version();
	if (o->list)
		return list_formats(o);
	int modes = o->raid_devs + (o->sets > 0) + (o->act != ACT_NONE) + o->block;
	if (modes != 1) {
		fprintf(stderr, modes ? "ERROR: options -r, -s, -a and -b exclude each other\n"
				      : "ERROR: one of -r, -s, -a, -b, -l or -V is needed\n");
		usage(stderr);
		return 1;
	}
	if (o->test && o->act == ACT_NONE) {
		fprintf(stderr, "ERROR: -t goes with -a\n");
		return 1;
	}
	if (o->json && !o->raid_devs && !o->sets) {
		fprintf(stderr, "ERROR: --json goes with -r and -s\n");
		return 1;
	}
	if (o->formats && *o->formats) {
		char tmp[256];
		pm_strlcpy(tmp, o->formats, sizeof(tmp));
		for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (!pm_raid_format_by_name(t)) {
				fprintf(stderr, "ERROR: unsupported metadata format \"%s\"\n", t);
				return 1;
			}
	}
	/* arguments: devices and image files, or set names */
	bool devs_given = false;
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (strchr(argv[i], '/') || stat(argv[i], &st) == 0) {
			if (R.n >= MAX_DISKS) {
				fprintf(stderr, "ERROR: more than %d devices\n", MAX_DISKS);
				rc = 1;
				goto out;
			}
			struct member *m = &R.m[R.n];
			memset(m, 0, sizeof(*m));
			pm_strlcpy(m->arg, argv[i], sizeof(m->arg));
			int r = member_open(m, o->verbose);
			if (r < 0) {
				fprintf(stderr, "ERROR: %s: %s\n", argv[i], strerror(-r));
				rc = 1;
				goto out;
			}
			R.n++;
			devs_given = true;
		} else {
			R.names[R.nnames++] = argv[i];
		}
	}
	if (!devs_given)
		scan_block(&R);
	if (o->block) {
		rc = block_devs(&R);
		goto out;
	}
	if (!R.n) {
		printf("no block devices found\n");
		rc = 1;
		goto out;
	}
	if (read_all(&R) < 0) {
		rc = 1;
		goto out;
	}
	if (o->raid_devs) {
		rc = do_r(&R);
		goto out;
	}
	bool any = false;
	for (size_t i = 0; i < R.n; i++)
		any |= R.k[i].n > 0;
	if (!any && !(o->act == ACT_DOWN && R.nnames)) {
		no_raid(&R, "disks");
		rc = 1;
		goto out;
	}
	if (pm_raid_assemble(R.k, R.n, &R.sets) < 0) {
		fprintf(stderr, "ERROR: out of memory\n");
		rc = 1;
		goto out;
	}
	if (o->sets) {
		/* active sets are shown so only when a device mapper answers without starting anything */
		if (dm_open(&R, false) < 0)
			R.dm_open = false;
		rc = do_s(&R);
		goto out;
	}
	rc = do_a(&R);
out:
	if (R.dm_open)
		pm_dm_close(&R.dm);
	pm_raid_sets_free(&R.sets);
	for (size_t i = 0; i < R.n; i++)
		member_close(&R.m[i]);
	return rc;
}
