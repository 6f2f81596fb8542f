/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2 v2 and v3 (qemu's docs/interop/qcow2.rst): two-level cluster tables, deflate and zstd
 * compressed clusters, zero clusters, extended L2 entries (subclusters), an external data file,
 * backing files. Big-endian. Refcounts, snapshots and bitmaps play no part in reading. */
#include "qcow2.h"
#include "../util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int qcow2_probe(const uint8_t *head, size_t n, const uint8_t *tail, uint64_t fsize)
{
	(void)tail, (void)fsize;
	return n >= 4 && get_be32(head) == QCOW2_MAGIC; /* any version: open() names one it does not read */
}

static int qcow2_decode(struct pm_image *img, const struct pm_img_piece *pc, uint8_t *out, size_t len)
{
	struct qcow2 *q = img->priv;
	uint64_t entry = pc->arg;
	uint64_t coff = entry & ((1ull << q->csize_shift) - 1);
	uint64_t nsec = ((entry >> q->csize_shift) & q->csize_mask) + 1;
	uint64_t csize = nsec * 512 - (coff & 511);
	int r;

	if (coff >= img->file_size)
		return -EIO;
	if (csize > img->file_size - coff)
		csize = img->file_size - coff; /* the last compressed cluster may end with the file */
	_cleanup_free_ uint8_t *in = malloc(csize);
	if (!in)
		return -ENOMEM;
	r = pm_img_pread(img->fd, img->file_size, coff, in, csize);
	if (r < 0)
		return r;
	return q->zstd ? pm_zstd_decompress(img, in, csize, out, len) : pm_inflate_raw(in, csize, out, len);
}

/* What lies at guest offset off, and how many bytes from off (at most max) share it. */
int pm_qcow2_map(struct pm_image *img, uint64_t off, uint64_t max, struct pm_img_piece *pc)
{
	struct qcow2 *q = img->priv;
	uint64_t in_cluster = off & (q->cluster_size - 1);
	uint64_t l1_span_bits = q->cluster_bits + q->l2_bits;
	uint64_t l1_index = off >> l1_span_bits;
	uint64_t l2_index = (off >> q->cluster_bits) & ((1ull << q->l2_bits) - 1);
	uint8_t e[16];
	int r;

	pc->len = q->cluster_size - in_cluster;
	if (l1_index >= q->l1_size) {
		pc->kind = PM_IMG_BELOW;
		pc->len = max;
		return 0;
	}
	r = pm_img_table(img, FID_IMAGE, img->fd, img->file_size, q->l1_off, (uint64_t)q->l1_size * 8, l1_index * 8, e, 8);
	if (r < 0)
		return r;
	uint64_t l2_off = get_be64(e) & ENTRY_OFFSET_MASK;
	if (!l2_off) {
		/* no L2 table: the whole span of this L1 entry is unallocated */
		uint64_t span_end = (l1_index + 1) << l1_span_bits;
		pc->kind = PM_IMG_BELOW;
		pc->len = l1_span_bits >= 64 || span_end - off > max ? max : span_end - off;
		return 0;
	}
	if (l2_off & (q->cluster_size - 1))
		return -EIO;
	/* the writer's cached table first: it may hold entries not yet written back to the file */
	if (!pm_qcow2_cached_l2(q, l2_off, l2_index * q->entry_size, e, q->entry_size)) {
		r = pm_img_table(img, FID_IMAGE, img->fd, img->file_size, l2_off, q->cluster_size,
				 l2_index * q->entry_size, e, q->entry_size);
		if (r < 0)
			return r;
	}
	uint64_t entry = get_be64(e);
	uint64_t bitmap = q->ext_l2 ? get_be64(e + 8) : 0;
	if (entry & ENTRY_COMPRESSED) {
		if (bitmap || q->data_file)
			return -EIO;
		pc->kind = PM_IMG_DECODE;
		pc->fid = FID_IMAGE;
		pc->key = entry & ((1ull << q->csize_shift) - 1);
		pc->unit = q->cluster_size;
		pc->unit_off = in_cluster;
		pc->decode = qcow2_decode;
		pc->arg = entry;
	} else {
		uint64_t hoff = entry & ENTRY_OFFSET_MASK;
		bool allocated = hoff || (q->data_file && (entry & ENTRY_COPIED));
		if (allocated && (hoff & (q->cluster_size - 1)))
			return -EIO;
		if (!q->ext_l2) {
			pc->kind = (entry & ENTRY_ZERO) ? PM_IMG_ZERO : allocated ? PM_IMG_DATA : PM_IMG_BELOW;
		} else {
			uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
			unsigned sc = (unsigned)(in_cluster / q->sub_size), n = (unsigned)(q->cluster_size / q->sub_size);
			if ((alloc & zero) || (!allocated && alloc))
				return -EIO;
			pc->kind = (zero >> sc) & 1 ? PM_IMG_ZERO : (alloc >> sc) & 1 ? PM_IMG_DATA : PM_IMG_BELOW;
			/* the following subclusters of the same kind */
			unsigned last = sc + 1;
			while (last < n && ((zero >> last) & 1) == ((zero >> sc) & 1) &&
			       ((alloc >> last) & 1) == ((alloc >> sc) & 1))
				last++;
			pc->len = (uint64_t)last * q->sub_size - in_cluster;
		}
		pc->fd = q->data_fd;
		pc->fsize = q->data_size;
		pc->host = hoff + in_cluster;
	}
	if (pc->len > max)
		pc->len = max;
	return 0;
}

/* The name of an unknown incompatible feature bit, from the feature name table when it has one. */
static void feature_name(struct pm_image *img, uint64_t ext_off, uint32_t ext_len, unsigned bit, char *name, size_t n)
{
	uint8_t ent[48];

	snprintf(name, n, "bit %u", bit);
	for (uint32_t i = 0; i + 48 <= ext_len; i += 48) {
		if (pm_img_pread(img->fd, img->file_size, ext_off + i, ent, 48) < 0)
			return;
		if (ent[0] == 0 && ent[1] == bit) {
			snprintf(name, n, "bit %u, \"%.46s\"", bit, (const char *)ent + 2);
			return;
		}
	}
}

static int qcow2_open(struct pm_image *img)
{
	struct qcow2 *q;
	uint8_t h[112] = { 0 };
	int r;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	img->priv = q;
	q->data_fd = img->fd;
	q->data_size = img->file_size;
	if (pthread_mutex_init(&q->wlock, NULL))
		return -ENOMEM;
	q->wlock_init = true;
	if (img->file_size < 72 || pm_img_pread(img->fd, img->file_size, 0, h, img->file_size < sizeof(h) ? 72 : sizeof(h)) < 0)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 header cut short", img->path);
	if (get_be32(h) != QCOW2_MAGIC)
		return pm_img_fail(img, -EINVAL, "%s: not a qcow2 image (no QFI\\xfb magic)", img->path);
	uint32_t version = get_be32(h + 4);
	uint64_t backing_off = get_be64(h + 8);
	uint32_t backing_len = get_be32(h + 16);
	q->cluster_bits = get_be32(h + 20);
	uint64_t size = get_be64(h + 24);
	uint32_t crypt = get_be32(h + 32);
	q->l1_size = get_be32(h + 36);
	q->l1_off = get_be64(h + 40);
	uint64_t incompat = 0, autoclear = 0, compat = 0;
	uint32_t header_len = 72, refcount_order = 4;
	uint8_t compression = 0;

	if (version != 2 && version != 3)
		return pm_img_fail(img, -ENOTSUP, "%s: qcow2 version %u is not supported (2 and 3 are)", img->path, version);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 cluster bits %u out of range (%d to %d)", img->path,
				   q->cluster_bits, QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
	q->cluster_size = 1ull << q->cluster_bits;
	if (version == 3) {
		if (img->file_size < 104)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 v3 header cut short", img->path);
		incompat = get_be64(h + HDR_INCOMPAT);
		compat = get_be64(h + HDR_COMPAT);
		autoclear = get_be64(h + HDR_AUTOCLEAR);
		refcount_order = get_be32(h + HDR_REFCOUNT_ORDER);
		header_len = get_be32(h + 100);
		if (header_len < 104 || header_len > q->cluster_size || header_len > img->file_size)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 header length %u out of range", img->path, header_len);
		if (header_len > 104)
			compression = h[104];
	}
	/* header extensions: from the end of the header to the end of the first cluster */
	char backing_fmt[64] = "";
	_cleanup_free_ char *data_name = NULL;
	uint64_t names_off = 0;
	uint32_t names_len = 0;
	uint64_t ext_end = q->cluster_size < img->file_size ? q->cluster_size : img->file_size;
	uint64_t pos = (header_len + 7) & ~7u;
	if (version == 2 && backing_off && backing_off < ext_end)
		ext_end = backing_off; /* v2 extensions stop at the backing name */
	while (pos + 8 <= ext_end) {
		uint8_t eh[8];
		if (pm_img_pread(img->fd, img->file_size, pos, eh, 8) < 0)
			break;
		uint32_t type = get_be32(eh), elen = get_be32(eh + 4);
		if (type == EXT_END)
			break;
		if (elen > ext_end - pos - 8)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 header extension 0x%08x runs past the first cluster",
					   img->path, type);
		if (type == EXT_BACKING_FORMAT && elen < sizeof(backing_fmt)) {
			if (pm_img_pread(img->fd, img->file_size, pos + 8, backing_fmt, elen) < 0)
				return -EIO;
			backing_fmt[elen] = 0;
		} else if (type == EXT_DATA_FILE && elen <= 4096) {
			free(data_name);
			data_name = calloc(1, elen + 1);
			if (!data_name)
				return -ENOMEM;
			if (pm_img_pread(img->fd, img->file_size, pos + 8, data_name, elen) < 0)
				return -EIO;
		} else if (type == EXT_FEATURE_NAMES) {
			names_off = pos + 8;
			names_len = elen;
		} else if (type == EXT_BITMAPS && elen >= 24) {
			q->bitmaps_ext = pos + 8;
		}
		pos += 8 + ((elen + 7ull) & ~7ull);
	}
	if (incompat & ~(uint64_t)INCOMPAT_KNOWN) {
		char name[80];
		unsigned bit = (unsigned)__builtin_ctzll(incompat & ~(uint64_t)INCOMPAT_KNOWN);
		feature_name(img, names_off, names_len, bit, name, sizeof(name));
		return pm_img_fail(img, -ENOTSUP, "%s: qcow2 incompatible feature %s is unknown to partmap: not read",
				   img->path, name);
	}
	if (crypt == 1)
		return pm_img_fail(img, -ENOTSUP, "%s: qcow2 image is encrypted (AES): not supported", img->path);
	if (crypt == 2)
		return pm_img_fail(img, -ENOTSUP, "%s: qcow2 image is encrypted (LUKS): not supported", img->path);
	if (crypt)
		return pm_img_fail(img, -ENOTSUP, "%s: qcow2 encryption method %u is unknown", img->path, crypt);
	if (incompat & INCOMPAT_CORRUPT)
		pm_img_warn(img, "%s: qcow2 image is marked corrupt; reading it anyway", img->path);
	if (refcount_order > 6)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 refcount order %u out of range (0 to 6)", img->path,
				   refcount_order);
	q->version = version;
	q->refcount_order = refcount_order;
	q->reftable_off = get_be64(h + HDR_REFTABLE_OFFSET);
	q->reftable_clusters = get_be32(h + HDR_REFTABLE_CLUSTERS);
	q->nb_snapshots = get_be32(h + HDR_NB_SNAPSHOTS);
	q->snapshots_off = get_be64(h + HDR_SNAPSHOTS_OFFSET);
	q->incompat = incompat;
	q->compat = compat;
	q->autoclear = autoclear;
	/* why partmap will not write it (it is still read): the reason, named */
	if (incompat & INCOMPAT_CORRUPT)
		img->ro_reason = "qcow2 image is marked corrupt ('qemu-img check -r all' repairs it)";
	else if (incompat & INCOMPAT_DIRTY)
		img->ro_reason = "qcow2 image is dirty: lazy refcounts not written back ('qemu-img check -r all' repairs it)";
	else if (autoclear & ~(uint64_t)AUTOCLEAR_KNOWN)
		img->ro_reason = "qcow2 image has autoclear feature bits unknown to partmap";
	else if ((incompat & INCOMPAT_DATA_FILE) && !(autoclear & AUTOCLEAR_DATA_FILE_RAW))
		img->ro_reason = "qcow2 image with an external data file that is not raw: partmap does not write those";
	else if (q->nb_snapshots)
		img->ro_reason = "qcow2 image has internal snapshots: partmap does not write those";
	else if (q->reftable_clusters == 0 || (q->reftable_off & ((1ull << q->cluster_bits) - 1)) ||
		 (uint64_t)q->reftable_clusters << q->cluster_bits > QCOW2_MAX_REFTABLE_BYTES)
		img->ro_reason = "qcow2 refcount table is invalid";
	if (incompat & INCOMPAT_COMPRESSION) {
		if (compression > 1)
			return pm_img_fail(img, -ENOTSUP, "%s: qcow2 compression type %u is unknown", img->path, compression);
		q->zstd = compression == 1;
	} else if (compression) {
		return pm_img_fail(img, -EINVAL, "%s: qcow2 compression type set without its feature bit", img->path);
	}
	q->ext_l2 = incompat & INCOMPAT_EXTL2;
	if (q->ext_l2 && q->cluster_bits < 14)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 extended L2 entries need clusters of 16 KiB or more", img->path);
	q->entry_size = q->ext_l2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->ext_l2 ? 4 : 3);
	q->sub_size = q->cluster_size / 32;
	q->csize_shift = 62 - (q->cluster_bits - 8);
	q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;

	if (size > (uint64_t)INT64_MAX)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 virtual size %llu is too large", img->path,
				   (unsigned long long)size);
	uint64_t span_bits = q->cluster_bits + q->l2_bits;
	uint64_t l1_needed = span_bits >= 64 ? 1 : (size + (1ull << span_bits) - 1) >> span_bits;
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 L1 table of %u entries is too large", img->path, q->l1_size);
	if (q->l1_size < l1_needed)
		return pm_img_fail(img, -EINVAL, "%s: qcow2 L1 table (%u entries) too small for the virtual size",
				   img->path, q->l1_size);
	if (l1_needed && ((q->l1_off & (q->cluster_size - 1)) || q->l1_off > img->file_size ||
			  l1_needed * 8 > img->file_size - q->l1_off))
		return pm_img_fail(img, -EINVAL, "%s: qcow2 L1 table lies outside the file", img->path);
	img->size = size;
	img->cluster_size = (uint32_t)q->cluster_size;
	img->subformat = version == 2 ? "v2" : "v3";

	if (incompat & INCOMPAT_DATA_FILE) {
		if (!data_name || !data_name[0])
			return pm_img_fail(img, -EINVAL, "%s: qcow2 external data file not named in the header", img->path);
		q->data_path = pm_img_resolve(img, data_name);
		if (!q->data_path)
			return -ENOMEM;
		r = pm_img_open_file(img, q->data_path, "external data file", &q->data_size);
		if (r < 0)
			return r;
		q->data_fd = r;
		q->data_file = true;
		if (autoclear & AUTOCLEAR_DATA_FILE_RAW) {
			img->in_place = true;
			img->flat_path = q->data_path;
			img->flat_offset = 0;
		}
	}
	if (backing_off) {
		if (backing_len == 0 || backing_len > QCOW2_MAX_BACKING_NAME)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 backing file name length %u out of range", img->path,
					   backing_len);
		char name[QCOW2_MAX_BACKING_NAME + 1];
		if (pm_img_pread(img->fd, img->file_size, backing_off, name, backing_len) < 0)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 backing file name lies outside the file", img->path);
		name[backing_len] = 0;
		if (strlen(name) != backing_len)
			return pm_img_fail(img, -EINVAL, "%s: qcow2 backing file name holds a NUL byte", img->path);
		r = pm_img_open_backing(img, name, backing_fmt[0] ? backing_fmt : NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static int qcow2_sync(struct pm_image *img)
{
	struct qcow2 *q = img->priv;

	return q->data_fd != img->fd && fdatasync(q->data_fd) < 0 ? -errno : 0;
}

static void qcow2_close(struct pm_image *img)
{
	struct qcow2 *q = img->priv;

	pm_qcow2_write_close(img);
	if (q->wlock_init)
		pthread_mutex_destroy(&q->wlock);
	if (q->data_fd >= 0 && q->data_fd != img->fd)
		close(q->data_fd);
	free(q->data_path);
	free(q);
	img->priv = NULL;
}

const struct pm_image_fmt pm_fmt_qcow2 = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.map = pm_qcow2_map,
	.close = qcow2_close,
	.sync = qcow2_sync,
	.write = pm_qcow2_write,
	.flush = pm_qcow2_flush,
	.discard = pm_qcow2_discard,
	.check = pm_qcow2_check,
	.create = pm_qcow2_create,
};
