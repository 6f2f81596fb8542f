/* SPDX-License-Identifier: GPL-2.0-or-later */
/* VMDK: a text descriptor (a file of its own, or embedded in a sparse extent) lists extents that
 * follow each other on the virtual disk: FLAT and VMFS (the bytes as they are, from an offset), ZERO,
 * SPARSE (hosted sparse extents, "KDMV": grain directory, grain tables, grains; compressed grains with
 * markers for streamOptimized) and VMFSSPARSE (ESXi delta extents, "COWD"). Delta disks name their
 * parent in parentFileNameHint. Little-endian. */
#include "format.h"
#include "../util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define KDMV_MAGIC 0x564d444bu /* "KDMV" */
#define COWD_MAGIC 0x44574f43u /* "COWD" */
#define FLAG_NL_TEST 0x1u
#define FLAG_RGD 0x2u
#define FLAG_ZERO_GRAIN 0x4u
#define FLAG_COMPRESSED 0x10000u
#define FLAG_MARKERS 0x20000u
#define GD_AT_END 0xffffffffffffffffull
#define GTE_ZEROED 1u
#define MAX_DESCRIPTOR (1u << 20)
#define MAX_EXTENTS 4096
#define MAX_GRAIN_SECTORS 0x20000u   /* 64 MiB grains: far above any real image */
#define MAX_GTES 512u                /* per grain table, as VMware writes them */
#define MARKER_EOS 0
#define MARKER_FOOTER 3

enum ext_type { EXT_FLAT, EXT_ZERO, EXT_SPARSE, EXT_COWD };

struct extent {
	enum ext_type type;
	uint64_t start, sectors;   /* on the virtual disk, in sectors */
	int fd;                    /* -1: ZERO, or the descriptor's own file (not closed) */
	bool own_fd;
	uint64_t fsize;
	uint64_t flat_off;         /* FLAT: byte offset in the file */
	/* sparse */
	uint64_t grain;            /* bytes */
	uint32_t gtes;             /* entries per grain table */
	uint64_t gd_off;           /* bytes */
	uint64_t gd_entries;
	uint64_t rgd_off;          /* the redundant grain directory (bytes), 0 when none */
	uint64_t next;             /* where the next grain goes: the file's end, rounded up to a grain */
	bool zero_grain, compressed, markers;
	uint64_t desc_off, desc_len; /* an embedded descriptor (bytes), 0 when none */
	struct pm_ranges own;      /* the structures of a file other than img->fd (see tables_of) */
};

struct vmdk {
	struct extent *ext;
	size_t n;
	char *flat_file;
	pthread_mutex_t lock;      /* of map() and write() */
	bool lock_init;
	uint64_t desc_off, desc_len; /* the descriptor in img->fd (its CID changes on the first write) */
	bool cid_done;
};

static bool is_descriptor(const uint8_t *head, size_t n)
{
	static const char sig[] = "# Disk DescriptorFile";

	return n >= sizeof(sig) - 1 && !memcmp(head, sig, sizeof(sig) - 1);
}

static int vmdk_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)tail, (void)fsize;
	return (n >= 4 && (get_le32(head) == KDMV_MAGIC || get_le32(head) == COWD_MAGIC)) || is_descriptor(head, n);
}

/* Where an extent file's structures lie: img->tables for the image's own file, else the extent's. */
static struct pm_ranges *tables_of(struct pm_image *img, struct extent *e)
{
	return e->fd == img->fd ? &img->tables : &e->own;
}

/* Before a sparse extent is written: every grain directory entry (of both directories) names a
 * grain table (partmap, like qemu, does not add grain tables; read a window at a time), and the
 * structures no grain may lie on are noted (the header, the descriptor, the directories, the
 * tables): overlapping ones make a damaged image, read but not written. */
static int check_tables(struct pm_image *img, struct extent *e)
{
	struct pm_ranges *t = tables_of(img, e);
	uint8_t b[4096];
	int r;

	if ((r = pm_ranges_add(t, 0, 512)) < 0 || (r = pm_ranges_add(t, e->desc_off, e->desc_len)) < 0 ||
	    (r = pm_ranges_add(t, e->gd_off, e->gd_entries * 4)) < 0 ||
	    (e->rgd_off && (r = pm_ranges_add(t, e->rgd_off, e->gd_entries * 4)) < 0)) {
		if (r == -EUCLEAN)
			img->ro_reason = "its VMDK structures (header, descriptor, grain directories and tables) overlap";
		return r == -EUCLEAN ? 0 : r;
	}
	for (int d = 0; d < 2; d++) {
		uint64_t gd = d ? e->rgd_off : e->gd_off;
		for (uint64_t i = 0; gd && i < e->gd_entries; i += sizeof(b) / 4) {
			size_t n = e->gd_entries - i < sizeof(b) / 4 ? (size_t)(e->gd_entries - i) : sizeof(b) / 4;
			if ((r = pm_img_pread(e->fd, e->fsize, gd + i * 4, b, n * 4)) < 0)
				return r;
			for (size_t k = 0; k < n; k++) {
				uint64_t gt = (uint64_t)get_le32(b + 4 * k) * 512;
				if (!gt || gt > e->fsize || (uint64_t)e->gtes * 4 > e->fsize - gt) {
					img->ro_reason = "a VMDK grain table is missing or lies outside the file (partmap "
							 "writes only into the grain tables a sparse extent has)";
					return 0;
				}
				if ((r = pm_ranges_add(t, gt, (uint64_t)e->gtes * 4)) < 0)
					return r;
			}
		}
	}
	if ((r = pm_ranges_seal(t)) == -EUCLEAN)
		img->ro_reason = "its VMDK structures (header, descriptor, grain directories and tables) overlap";
	return r == -EUCLEAN ? 0 : r;
}

/* Open a sparse extent file's header (KDMV or COWD) into e. */
static int open_sparse(struct pm_image *img, struct extent *e, const char *path)
{
	uint8_t h[512];

	if (pm_img_pread(e->fd, e->fsize, 0, h, sizeof(h)) < 0)
		return pm_img_fail(img, -EINVAL, "%s: VMDK sparse header cut short", path);
	if (get_le32(h) == COWD_MAGIC) {
		/* ESXi vmfsSparse: 4096 entries per grain table, the directory at a sector offset */
		e->type = EXT_COWD;
		e->sectors = get_le32(h + 12);
		e->grain = (uint64_t)get_le32(h + 16) * 512;
		e->gd_off = (uint64_t)get_le32(h + 20) * 512;
		e->gd_entries = get_le32(h + 24);
		e->gtes = 4096;
		img->ro_reason = "vmfsSparse (ESXi delta) VMDK: partmap does not write it";
	} else if (get_le32(h) == KDMV_MAGIC) {
		uint32_t version = get_le32(h + 4), flags = get_le32(h + 8);
		if (version < 1 || version > 3)
			return pm_img_fail(img, -ENOTSUP, "%s: VMDK sparse version %u is not supported", path, version);
		uint64_t gd = get_le64(h + 56);
		if (gd == GD_AT_END) {
			/* streamOptimized: the real header is the footer, 1024 bytes before the end */
			uint8_t ft[1536];
			if (e->fsize < 1536 + 512 || pm_img_pread(e->fd, e->fsize, e->fsize - 1536, ft, sizeof(ft)) < 0 ||
			    get_le32(ft + 12) != MARKER_FOOTER || get_le32(ft + 8) != 0 || get_le32(ft + 512) != KDMV_MAGIC ||
			    get_le32(ft + 1024 + 12) != MARKER_EOS || get_le32(ft + 1024 + 8) != 0)
				return pm_img_fail(img, -EINVAL, "%s: VMDK footer (grain directory at the end) missing", path);
			memcpy(h, ft + 512, 512);
			flags = get_le32(h + 8);
			gd = get_le64(h + 56);
		}
		if ((flags & FLAG_NL_TEST) && (h[73] != '\n' || h[74] != ' ' || h[75] != '\r' || h[76] != '\n'))
			return pm_img_fail(img, -EINVAL, "%s: VMDK header damaged by a newline conversion (FTP in text mode?)",
					   path);
		e->type = EXT_SPARSE;
		e->sectors = get_le64(h + 12);
		e->grain = get_le64(h + 20) > MAX_GRAIN_SECTORS ? 0 : get_le64(h + 20) * 512;
		e->gtes = get_le32(h + 44);
		e->gd_off = gd > UINT64_MAX / 512 ? UINT64_MAX : gd * 512;
		e->zero_grain = flags & FLAG_ZERO_GRAIN;
		e->compressed = flags & FLAG_COMPRESSED;
		e->markers = flags & FLAG_MARKERS;
		e->rgd_off = (flags & FLAG_RGD) && get_le64(h + 48) < UINT64_MAX / 512 ? get_le64(h + 48) * 512 : 0;
		if (get_le64(h + 28) && get_le64(h + 28) < UINT32_MAX && get_le64(h + 36) < UINT32_MAX) {
			e->desc_off = get_le64(h + 28) * 512;
			e->desc_len = get_le64(h + 36) * 512;
		}
		if (e->compressed || e->markers)
			img->ro_reason = "streamOptimized VMDK: its grains are compressed and only appended; partmap, "
					 "like qemu, does not write it";
		else if (version == 3)
			img->ro_reason = "VMDK version 3 (changed block tracking): read-only, as in qemu";
		if (e->compressed && get_le16(h + 77) != 1)
			return pm_img_fail(img, -ENOTSUP, "%s: VMDK compression algorithm %u is not supported", path,
					   get_le16(h + 77));
		if (!e->gtes || e->gtes > MAX_GTES)
			return pm_img_fail(img, -EINVAL, "%s: VMDK grain table size %u out of range", path, e->gtes);
		if (!e->grain)
			return pm_img_fail(img, -EINVAL, "%s: VMDK grain size out of range", path);
		uint64_t span = e->grain / 512 * e->gtes;
		e->gd_entries = (e->sectors + span - 1) / span;
	} else {
		return pm_img_fail(img, -EINVAL, "%s: not a VMDK sparse extent", path);
	}
	if (!e->grain || e->grain > (uint64_t)MAX_GRAIN_SECTORS * 512 || (e->grain & (e->grain - 1)))
		return pm_img_fail(img, -EINVAL, "%s: VMDK grain size out of range", path);
	if (e->gd_off > e->fsize || e->gd_entries > (e->fsize - e->gd_off) / 4)
		return pm_img_fail(img, -EINVAL, "%s: VMDK grain directory lies outside the file", path);
	if (e->sectors > e->gd_entries * e->gtes * (e->grain / 512))
		return pm_img_fail(img, -EINVAL, "%s: VMDK grain directory too small for the capacity", path);
	if (e->rgd_off && (e->rgd_off > e->fsize || e->gd_entries > (e->fsize - e->rgd_off) / 4))
		return pm_img_fail(img, -EINVAL, "%s: VMDK redundant grain directory lies outside the file", path);
	if (e->grain > img->cluster_size)
		img->cluster_size = (uint32_t)e->grain;
	e->next = (e->fsize + e->grain - 1) / e->grain * e->grain;
	if (img->want_write && !img->ro_reason && e->type == EXT_SPARSE)
		return check_tables(img, e);
	return 0;
}

/* One descriptor line "ACCESS SECTORS TYPE ["FILE" [OFFSET]]" into a new extent. */
static int add_extent(struct pm_image *img, struct vmdk *v, const char *line, uint64_t *pos)
{
	char access[16], type[16], name[1024] = "";
	unsigned long long sectors, offset = 0;
	int n = sscanf(line, "%15s %llu %15s \"%1023[^\"]\" %llu", access, &sectors, type, name, &offset);
	struct extent *e;

	if (n < 3)
		return 0;
	if (strcmp(access, "RW") && strcmp(access, "RDONLY") && strcmp(access, "NOACCESS"))
		return 0;
	if (v->n >= MAX_EXTENTS)
		return pm_img_fail(img, -E2BIG, "%s: more than %d VMDK extents", img->path, MAX_EXTENTS);
	if (sectors > (uint64_t)INT64_MAX / 512 || *pos > (uint64_t)INT64_MAX / 512 - sectors)
		return pm_img_fail(img, -EINVAL, "%s: VMDK extents add up to more than 2^63 bytes", img->path);
	e = &v->ext[v->n];
	memset(e, 0, sizeof(*e));
	e->fd = -1;
	e->start = *pos;
	e->sectors = sectors;
	if (!strcmp(type, "ZERO")) {
		e->type = EXT_ZERO;
		img->ro_reason = "a ZERO extent of the VMDK cannot hold what is written";
	} else if (!strcmp(type, "FLAT") || !strcmp(type, "VMFS") || !strcmp(type, "SPARSE") ||
		   !strcmp(type, "VMFSSPARSE")) {
		if (n < 4 || !name[0])
			return pm_img_fail(img, -EINVAL, "%s: VMDK extent without a file name: %s", img->path, line);
		_cleanup_free_ char *path = pm_img_resolve(img, name);
		if (!path)
			return -ENOMEM;
		int fd = pm_img_open_file(img, path, "VMDK extent", &e->fsize);
		if (fd < 0)
			return fd;
		e->fd = fd;
		e->own_fd = true;
		v->n++; /* from here the extent is closed with the image */
		if (type[0] == 'F' || !strcmp(type, "VMFS")) {
			e->type = EXT_FLAT;
			if (offset > UINT64_MAX / 512)
				return pm_img_fail(img, -EINVAL, "%s: VMDK extent offset out of range", img->path);
			e->flat_off = offset * 512;
			if (e->flat_off > e->fsize || sectors * 512 > e->fsize - e->flat_off)
				return pm_img_fail(img, -EINVAL, "%s: VMDK flat extent %s is shorter than the descriptor says",
						   img->path, path);
			if (!v->flat_file && (v->flat_file = strdup(path)))
				img->flat_offset = e->flat_off;
		} else {
			int r = open_sparse(img, e, path);
			if (r < 0)
				return r;
			/* qemu takes a sparse extent's length from its header; so does partmap */
			e->sectors = e->type == EXT_SPARSE ? e->sectors : sectors;
		}
		*pos += e->sectors;
		return 0;
	} else {
		return pm_img_fail(img, -ENOTSUP, "%s: VMDK extent type %s is not supported (device-backed or unknown)",
				   img->path, type);
	}
	v->n++;
	*pos += e->sectors;
	return 0;
}

/* A descriptor value: key="value" or key=value, into out. */
static bool desc_value(const char *text, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		while (*l == ' ' || *l == '\t')
			l++;
		if (strncmp(l, key, kl))
			continue;
		const char *p = l + kl;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		bool quoted = *p == '"';
		p += quoted;
		size_t i = 0;
		while (*p && *p != '\n' && *p != '\r' && (quoted ? *p != '"' : (*p != ' ' && *p != '\t')) && i + 1 < outlen)
			out[i++] = *p++;
		out[i] = 0;
		return true;
	}
	return false;
}

/* The image file itself as the one sparse extent (its embedded descriptor names it, or there is no
 * descriptor): v->ext has room for it. */
static int self_extent(struct pm_image *img, struct vmdk *v)
{
	struct extent *e = &v->ext[v->n++];

	e->fd = img->fd;
	e->fsize = img->file_size;
	e->start = 0;
	return open_sparse(img, e, img->path);
}

static int parse_descriptor(struct pm_image *img, struct vmdk *v, char *text, bool embedded)
{
	char ctype[64] = "", parent[1024] = "", cid[16] = "";
	uint64_t pos = 0;
	size_t lines = 1;
	int r;

	for (char *p = text; *p; p++)
		lines += *p == '\n';
	v->ext = calloc(lines < MAX_EXTENTS ? lines : MAX_EXTENTS + 1, sizeof(*v->ext));
	if (!v->ext)
		return -ENOMEM;
	/* the values first: the walk over the lines below cuts the text into lines */
	desc_value(text, "createType", ctype, sizeof(ctype));
	desc_value(text, "parentFileNameHint", parent, sizeof(parent));
	desc_value(text, "parentCID", cid, sizeof(cid));
	for (char *l = text; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		while (*l == ' ' || *l == '\t')
			l++;
		if (*l != '#') {
			if (embedded && (!strncmp(l, "RW ", 3) || !strncmp(l, "RDONLY ", 7))) {
				/* the embedded descriptor's single SPARSE extent is this very file */
				char access[16], type[16];
				unsigned long long sectors;
				if (sscanf(l, "%15s %llu %15s", access, &sectors, type) == 3 && !strcmp(type, "SPARSE")) {
					if (v->n)
						return pm_img_fail(img, -EINVAL, "%s: a VMDK sparse file lists more than itself",
								   img->path);
					if ((r = self_extent(img, v)) < 0)
						return r;
					pos = v->ext[0].sectors;
				}
			} else if (!embedded && (r = add_extent(img, v, l, &pos)) < 0) {
				return r;
			}
		}
		l = nl ? nl + 1 : NULL;
	}
	if (!v->n)
		return pm_img_fail(img, -EINVAL, "%s: the VMDK descriptor lists no extent", img->path);
	img->size = pos * 512;
	static const char *const known[] = { "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
					     "twoGbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsSparse",
					     "vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick" };
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(ctype, known[i]))
			img->subformat = known[i];
	bool all_flat = true;
	for (size_t i = 0; i < v->n; i++)
		all_flat &= v->ext[i].type == EXT_FLAT;
	if (all_flat && v->n == 1) {
		img->in_place = true;
		img->flat_path = v->flat_file;
	} else if (all_flat) {
		img->in_place = true; /* each extent in place; not one file */
	}
	if (parent[0] && strcmp(cid, "ffffffff"))
		return pm_img_open_backing(img, parent, "vmdk");
	return 0;
}


static int vmdk_open(struct pm_image *img)
{
	struct vmdk *v = calloc(1, sizeof(*v));
	uint8_t h[512];
	uint64_t off, len;
	bool embedded;

	if (!v)
		return -ENOMEM;
	img->priv = v;
	if (pm_img_lock_init(&v->lock) < 0)
		return -ENOMEM;
	v->lock_init = true;
	if (img->file_size < 4 || pm_img_pread(img->fd, img->file_size, 0, h, img->file_size < 512 ? 4 : 512) < 0)
		return pm_img_fail(img, -EINVAL, "%s: too short for a VMDK image", img->path);
	if (get_le32(h) == KDMV_MAGIC || get_le32(h) == COWD_MAGIC) {
		if (img->file_size < 512)
			return pm_img_fail(img, -EINVAL, "%s: VMDK header cut short", img->path);
		off = get_le32(h) == KDMV_MAGIC ? get_le64(h + 28) * 512 : 0;
		len = get_le32(h) == KDMV_MAGIC ? get_le64(h + 36) * 512 : 0;
		embedded = true;
		if (!off || !len) {
			/* a sparse extent opened on its own: it is the whole disk */
			v->ext = calloc(1, sizeof(*v->ext));
			if (!v->ext)
				return -ENOMEM;
			int r = self_extent(img, v);
			if (r < 0)
				return r;
			img->size = v->ext[0].sectors * 512;
			img->subformat = v->ext[0].type == EXT_COWD ? "vmfsSparse" : "monolithicSparse";
			return 0;
		}
	} else {
		off = 0;
		len = img->file_size;
		embedded = false;
	}
	if (len > MAX_DESCRIPTOR || off > img->file_size || len > img->file_size - off)
		return pm_img_fail(img, -EINVAL, "%s: VMDK descriptor larger than %u bytes or outside the file", img->path,
				   MAX_DESCRIPTOR);
	v->desc_off = off;
	v->desc_len = len;
	_cleanup_free_ char *text = calloc(1, len + 1);
	if (!text)
		return -ENOMEM;
	if (pm_img_pread(img->fd, img->file_size, off, text, len) < 0)
		return -EIO;
	return parse_descriptor(img, v, text, embedded);
}

/* The extent holding sector s (binary search: extents follow each other). */
static struct extent *find_extent(struct vmdk *v, uint64_t s)
{
	size_t lo = 0, hi = v->n;

	while (lo + 1 < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->ext[mid].start <= s)
			lo = mid;
		else
			hi = mid;
	}
	return &v->ext[lo];
}

static int grain_decode(struct pm_image *img, const struct pm_img_piece *pc, uint8_t *out, size_t len)
{
	const struct extent *e = pc->argp;
	uint64_t data = pc->key, clen;
	int r;

	(void)img;
	if (e->markers) {
		uint8_t m[12];
		if ((r = pm_img_pread(e->fd, e->fsize, pc->key, m, 12)) < 0)
			return r;
		clen = get_le32(m + 8);
		data += 12;
	} else {
		/* no marker gives the length: at most what a grain can deflate to */
		clen = e->fsize - pc->key < 2 * len + 1024 ? e->fsize - pc->key : 2 * len + 1024;
	}
	if (!clen || clen > 2 * len + 1024 || data > e->fsize || clen > e->fsize - data)
		return -EIO;
	_cleanup_free_ uint8_t *in = malloc(clen);
	if (!in)
		return -ENOMEM;
	if ((r = pm_img_pread(e->fd, e->fsize, data, in, clen)) < 0)
		return r;
	size_t n = len;
	if ((r = pm_inflate_zlib(in, clen, out, &n)) < 0)
		return r;
	/* only the disk's last grain may hold less than a grain: up to the disk's end (pc->arg) */
	if (n < pc->arg)
		return -EIO;
	memset(out + n, 0, len - n);
	return 0;
}

static int vmdk_sync(struct pm_image *img);

static int vmdk_map_locked(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vmdk *v = img->priv;
	struct extent *e = find_extent(v, off / 512);
	uint64_t rel = off - e->start * 512, left = e->sectors * 512 - rel;
	int r;

	pc->len = left < max ? left : max;
	pc->fd = e->fd;
	pc->fsize = e->fsize;
	switch (e->type) {
	case EXT_ZERO:
		pc->kind = PM_IMG_ZERO;
		return 0;
	case EXT_FLAT:
		pc->kind = PM_IMG_DATA;
		pc->host = e->flat_off + rel;
		return 0;
	case EXT_SPARSE:
	case EXT_COWD:
		break;
	}
	uint64_t grain_idx = rel / e->grain, in = rel % e->grain;
	uint64_t gd_idx = grain_idx / e->gtes, gt_idx = grain_idx % e->gtes;
	uint32_t fid = (uint32_t)(e - v->ext);
	uint8_t b[4];
	if (e->grain - in < pc->len)
		pc->len = e->grain - in;
	r = pm_img_table(img, fid, e->fd, e->fsize, e->gd_off, e->gd_entries * 4, gd_idx * 4, b, 4);
	if (r < 0)
		return r;
	uint64_t gt = (uint64_t)get_le32(b) * 512;
	pc->kind = PM_IMG_BELOW;
	if (!gt)
		return 0;
	r = pm_img_table(img, fid, e->fd, e->fsize, gt, (uint64_t)e->gtes * 4, gt_idx * 4, b, 4);
	if (r < 0)
		return r;
	uint32_t g = get_le32(b);
	if (!g)
		return 0;
	if (g == GTE_ZEROED && e->zero_grain) {
		pc->kind = PM_IMG_ZERO;
	} else if (e->compressed) {
		pc->kind = PM_IMG_DECODE;
		pc->fid = fid;
		pc->key = (uint64_t)g * 512;
		pc->unit = e->grain;
		pc->unit_off = in;
		pc->decode = grain_decode;
		pc->argp = e;
		/* the bytes of the disk this grain holds */
		pc->arg = e->sectors * 512 - (rel - in) < e->grain ? e->sectors * 512 - (rel - in) : e->grain;
	} else {
		pc->kind = PM_IMG_DATA;
		pc->host = (uint64_t)g * 512 + in;
	}
	return 0;
}

static int vmdk_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct vmdk *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vmdk_map_locked(img, off, max, pc);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* The first write gives the descriptor a new CID, as qemu and VMware do: a child made from this disk
 * (its parentCID the old one) then shows that its parent changed. Same number of hex digits, written
 * in place. */
static int new_cid(struct pm_image *img, struct vmdk *v)
{
	uint32_t rnd;

	if (v->cid_done || !v->desc_len)
		return 0;
	v->cid_done = true;
	_cleanup_free_ char *text = malloc(v->desc_len + 1);
	if (!text)
		return -ENOMEM;
	int r = pm_img_pread(img->fd, img->file_size, v->desc_off, text, v->desc_len);
	if (r < 0)
		return r;
	text[v->desc_len] = 0;
	for (char *l = text; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, "CID=", 4))
			continue;
		size_t k = 0;
		while (k < 8 && isxdigit((unsigned char)l[4 + k]))
			k++;
		if (!k)
			return 0;
		if (getentropy(&rnd, sizeof(rnd)) < 0)
			return -errno;
		uint32_t mask = k == 8 ? 0xffffffffu : (1u << (4 * k)) - 1;
		uint32_t old = (uint32_t)strtoul(l + 4, NULL, 16);
		rnd &= mask;
		if (rnd == old || rnd == 0xffffffffu || rnd == 0xfffffffeu)
			rnd = (rnd ^ 1u) & mask;
		char hex[9];
		snprintf(hex, sizeof(hex), "%0*x", (int)k, rnd);
		return pm_pwrite_all(img->fd, hex, k, v->desc_off + (uint64_t)(l + 4 - text));
	}
	return 0;
}

/* A new grain waiting for its grain-table entries (written once its data is synced). */
struct pending {
	struct extent *e;
	uint32_t fid;
	uint64_t gte, rgte;        /* where the entries go (rgte 0: no redundant directory) */
	uint8_t val[4];
};
#define MAX_PENDING 32

/* The grains' data synced, then their entries in the grain table and the redundant one: no entry
 * ever names a grain whose data is not on disk; a crash before leaves unused grains at the end. */
static int link_pending(struct pm_image *img, struct vmdk *v, struct pending *pend, size_t np)
{
	int r;

	for (size_t i = 0; i < v->n; i++) {
		bool used = false;
		for (size_t k = 0; k < np; k++)
			used |= pend[k].e == &v->ext[i];
		if (used && fdatasync(v->ext[i].fd) < 0)
			return -errno;
	}
	for (size_t k = 0; k < np; k++) {
		if ((r = pm_pwrite_all(pend[k].e->fd, pend[k].val, 4, pend[k].gte)) < 0)
			return r;
		pm_img_table_written(img, pend[k].fid, pend[k].gte, pend[k].val, 4);
		if (pend[k].rgte) {
			if ((r = pm_pwrite_all(pend[k].e->fd, pend[k].val, 4, pend[k].rgte)) < 0)
				return r;
			pm_img_table_written(img, pend[k].fid, pend[k].rgte, pend[k].val, 4);
		}
	}
	return 0;
}

/* Write n bytes at rel (inside one grain) of sparse extent e. */
static int write_grain(struct pm_image *img, struct vmdk *v, struct extent *e, uint64_t rel, const uint8_t *p,
		       size_t n, struct pending *pend, size_t *np)
{
	uint64_t gi = rel / e->grain, in = rel % e->grain, gd_idx = gi / e->gtes, gt_idx = gi % e->gtes;
	uint32_t fid = (uint32_t)(e - v->ext);
	uint8_t b[4];
	int r;

	if ((r = pm_img_table(img, fid, e->fd, e->fsize, e->gd_off, e->gd_entries * 4, gd_idx * 4, b, 4)) < 0)
		return r;
	uint64_t gt = (uint64_t)get_le32(b) * 512;
	if (!gt)
		return -EIO; /* checked at open: no grain table to write into */
	if ((r = pm_img_table(img, fid, e->fd, e->fsize, gt, (uint64_t)e->gtes * 4, gt_idx * 4, b, 4)) < 0)
		return r;
	uint32_t g = get_le32(b);
	if (g > GTE_ZEROED || (g == GTE_ZEROED && !e->zero_grain)) {
		/* a grain of this file: in place, never past the grains nor on a structure */
		if ((uint64_t)g * 512 + e->grain > e->next)
			return -EIO;
		if (pm_ranges_hit(tables_of(img, e), (uint64_t)g * 512, e->grain))
			return -EUCLEAN;
		return pm_pwrite_all(e->fd, p, n, (uint64_t)g * 512 + in);
	}
	/* a new grain at the end, whole: the rest of it as it reads now (the parent's, or zeros) */
	if (e->next / 512 > UINT32_MAX - e->grain / 512)
		return -EFBIG;
	if (*np == MAX_PENDING) {
		if ((r = link_pending(img, v, pend, *np)) < 0)
			return r;
		*np = 0;
	}
	_cleanup_free_ uint8_t *buf = malloc(e->grain);
	if (!buf)
		return -ENOMEM;
	if (n < e->grain && (r = pm_img_read_current(img, e->start * 512 + rel - in, buf, e->grain)) < 0)
		return r;
	memcpy(buf + in, p, n);
	uint64_t at = e->next;
	if ((r = pm_pwrite_all(e->fd, buf, e->grain, at)) < 0)
		return r;
	e->next = at + e->grain;
	if (e->next > e->fsize)
		e->fsize = e->next;
	if (e->fd == img->fd)
		img->file_size = e->fsize;
	struct pending *pd = &pend[(*np)++];
	pd->e = e;
	pd->fid = fid;
	pd->gte = gt + gt_idx * 4;
	pd->rgte = 0;
	put_le32(pd->val, (uint32_t)(at / 512));
	if (e->rgd_off) {
		if ((r = pm_img_table(img, fid, e->fd, e->fsize, e->rgd_off, e->gd_entries * 4, gd_idx * 4, b, 4)) < 0)
			return r;
		uint64_t rgt = (uint64_t)get_le32(b) * 512;
		if (rgt)
			pd->rgte = rgt + gt_idx * 4;
	}
	return 0;
}

static int vmdk_write_locked(struct pm_image *img, struct vmdk *v, uint64_t off, const uint8_t *p, size_t len)
{
	struct pending pend[MAX_PENDING];
	size_t np = 0;
	int r = new_cid(img, v);

	while (r == 0 && len) {
		struct extent *e = find_extent(v, off / 512);
		uint64_t rel = off - e->start * 512, left = e->sectors * 512 - rel;
		size_t n = left < len ? (size_t)left : len;
		switch (e->type) {
		case EXT_FLAT:
			r = pm_pwrite_all(e->fd, p, n, e->flat_off + rel);
			break;
		case EXT_SPARSE:
			if (e->grain - rel % e->grain < n)
				n = (size_t)(e->grain - rel % e->grain);
			r = write_grain(img, v, e, rel, p, n, pend, &np);
			break;
		default:
			r = -EROFS; /* a read-only reason was set at open */
		}
		p += n;
		off += n;
		len -= n;
	}
	if (np) {
		int l = link_pending(img, v, pend, np);
		if (r == 0)
			r = l;
	}
	return r;
}

static int vmdk_write(struct pm_image *img, uint64_t off, const void *buf, size_t len)
{
	struct vmdk *v = img->priv;

	pthread_mutex_lock(&v->lock);
	int r = vmdk_write_locked(img, v, off, buf, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static int vmdk_discard(struct pm_image *img, uint64_t off, uint64_t len)
{
	struct vmdk *v = img->priv;

	/* grains stay in their tables (a hosted sparse extent has no free grains); their space is
	 * punched out and reads as zeros */
	pthread_mutex_lock(&v->lock);
	int r = pm_img_punch_mapped(img, off, len);
	pthread_mutex_unlock(&v->lock);
	return r;
}

static int vmdk_flush(struct pm_image *img)
{
	/* every entry is written when its grain is: the files to sync */
	if (fdatasync(img->fd) < 0)
		return -errno;
	return vmdk_sync(img);
}

static int vmdk_sync(struct pm_image *img)
{
	struct vmdk *v = img->priv;

	for (size_t i = 0; i < v->n; i++)
		if (v->ext[i].own_fd && fdatasync(v->ext[i].fd) < 0)
			return -errno;
	return 0;
}

static void vmdk_close(struct pm_image *img)
{
	struct vmdk *v = img->priv;

	for (size_t i = 0; i < v->n; i++) {
		if (v->ext[i].own_fd)
			close(v->ext[i].fd);
		pm_ranges_free(&v->ext[i].own);
	}
	free(v->ext);
	free(v->flat_file);
	if (v->lock_init)
		pthread_mutex_destroy(&v->lock);
	free(v);
	img->priv = NULL;
}

const struct pm_image_fmt pm_fmt_vmdk = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.map = vmdk_map,
	.close = vmdk_close,
	.sync = vmdk_sync,
	.write = vmdk_write,
	.flush = vmdk_flush,
	.discard = vmdk_discard,
};
