/* SPDX-License-Identifier: GPL-2.0-or-later */
/* raid <raid_type> <#params> <chunk_size> [sync|nosync] [rebuild <idx>] [region_size <n>]
 * [data_offset <n>] [daemon_sleep|min_recovery_rate|max_recovery_rate|max_write_behind|stripe_cache
 * <n>] <#devs> (<meta|-> <data|->){#devs}: the parity levels of the kernel's dm-raid, as Debian's
 * dmraid builds them for BIOS RAID4/5 sets: raid4 (parity on the last device) and raid5_la, raid5_ra,
 * raid5_ls, raid5_rs (md's left/right, asymmetric/symmetric layouts). Chunk c of the target is data
 * chunk c % (n-1) of stripe row c / (n-1); each row has one parity chunk, the XOR of its data
 * chunks. Reads of a device that is missing ("-"), being rebuilt (rebuild idx) or failed are
 * reconstructed from the others; writes keep the parity right (read-modify-write, or from the other
 * data chunks when a data device is degraded). Metadata devices are not used (only "-" is taken);
 * there is no background resync: a "rebuild" device is written but not read. Writes are serialised. */
#include "tgtio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAID_MAX_DEVS 64

enum layout { L_RAID4, L_LA, L_RA, L_LS, L_RS };

struct rdev {
	struct pm_source *dev;    /* NULL: missing */
	bool degraded;            /* missing, rebuilding or failed: not read */
	unsigned errors;
};

struct raid {
	enum layout layout;
	char type[16];
	unsigned n;
	uint64_t chunk, data_offset, region;
	bool nosync;
	int rebuild;
	pthread_mutex_t lock;
	struct rdev d[];
};

static const struct {
	const char *name;
	enum layout l;
} types[] = {
	{ "raid4", L_RAID4 }, { "raid5_n", L_RAID4 }, { "raid5_la", L_LA }, { "raid5_ra", L_RA },
	{ "raid5_ls", L_LS }, { "raid5_rs", L_RS },
};

static void raid_free(struct raid *rs)
{
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

static int raid_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	uint64_t nparams, v, ndevs;
	int layout = -1, r;
	if (argc < 2)
		return pm_target_fail(ti, -EINVAL, "Too few arguments");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(argv[0], types[i].name))
			layout = (int)types[i].l;
	if (layout < 0)
		return pm_target_fail(ti, -EINVAL, "Unrecognised raid_type");
	if (pm_target_u64(argv[1], &nparams) < 0 || nparams < 1 || nparams > argc - 2)
		return pm_target_fail(ti, -EINVAL, "Cannot understand number of RAID parameters");
	uint64_t chunk;
	if (pm_target_u64(argv[2], &chunk) < 0 || chunk == 0 || chunk > (1u << 24))
		return pm_target_fail(ti, -EINVAL, "Bad numerical argument given for chunk_size");
	bool nosync = false;
	int rebuild = -1;
	uint64_t region = 0, data_offset = 0;
	for (uint64_t i = 1; i < nparams; i++) {
		const char *k = argv[2 + i];
		if (!strcmp(k, "sync") || !strcmp(k, "nosync")) {
			nosync = !strcmp(k, "nosync");
			continue;
		}
		if (++i >= nparams)
			return pm_target_fail(ti, -EINVAL, "Wrong number of raid parameters given");
		if (pm_target_u64(argv[2 + i], &v) < 0)
			return pm_target_fail(ti, -EINVAL, "Bad numerical argument given in raid params");
		if (!strcmp(k, "rebuild")) {
			if (v >= RAID_MAX_DEVS)
				return pm_target_fail(ti, -EINVAL, "Invalid rebuild index given (%llu)", (unsigned long long)v);
			rebuild = (int)v;
		} else if (!strcmp(k, "region_size")) {
			region = v;
		} else if (!strcmp(k, "data_offset")) {
			data_offset = v;
		} else if (strcmp(k, "daemon_sleep") && strcmp(k, "min_recovery_rate") && strcmp(k, "max_recovery_rate") &&
			   strcmp(k, "max_write_behind") && strcmp(k, "stripe_cache")) {
			return pm_target_fail(ti, -EINVAL, "Unable to parse RAID parameter: %s", k);
		}
	}
	unsigned at = 2 + (unsigned)nparams;
	if (at >= argc || pm_target_u64(argv[at], &ndevs) < 0 || ndevs < 2 || ndevs > RAID_MAX_DEVS)
		return pm_target_fail(ti, -EINVAL, "Cannot understand number of raid devices parameters");
	if (argc - at - 1 != 2 * ndevs)
		return pm_target_fail(ti, -EINVAL, "Supplied RAID devices does not match the count given");
	if (ndevs < 3 && layout != L_RAID4)
		return pm_target_fail(ti, -EINVAL, "Insufficient number of devices");
	if (rebuild >= (int)ndevs)
		return pm_target_fail(ti, -EINVAL, "Invalid rebuild index given (%d)", rebuild);
	if (ti->len % (ndevs - 1) || (ti->len / (ndevs - 1)) % chunk)
		return pm_target_fail(ti, -EINVAL, "Target length not divisible by number of data devices");
	struct raid *rs = calloc(1, sizeof(*rs) + ndevs * sizeof(rs->d[0]));
	if (!rs)
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate raid context");
	pthread_mutex_init(&rs->lock, NULL);
	rs->layout = (enum layout)layout;
	snprintf(rs->type, sizeof(rs->type), "%s", argv[0]);
	rs->n = (unsigned)ndevs;
	rs->chunk = chunk;
	rs->nosync = nosync;
	rs->rebuild = rebuild;
	rs->region = region;
	rs->data_offset = data_offset;
	unsigned missing = 0;
	for (unsigned i = 0; i < rs->n; i++) {
		const char *meta = argv[at + 1 + 2 * i], *data = argv[at + 2 + 2 * i];
		if (strcmp(meta, "-")) {
			raid_free(rs);
			return pm_target_fail(ti, -EINVAL, "Metadata devices are not supported here");
		}
		if (!strcmp(data, "-")) {
			rs->d[i].degraded = true;
			missing++;
			continue;
		}
		if ((r = pm_target_source(ti, data, &rs->d[i].dev)) < 0) {
			raid_free(rs);
			return pm_target_fail(ti, r, "RAID device lookup failure");
		}
		if ((int)i == rebuild) {
			rs->d[i].degraded = true;
			missing++;
		}
	}
	if (missing > 1) {
		raid_free(rs);
		return pm_target_fail(ti, -EINVAL, "Insufficient redundancy to activate array");
	}
	ti->priv = rs;
	return 0;
}

static void raid_dtr(struct pm_target *ti)
{
	raid_free(ti->priv);
}

static uint64_t raid_max_io(struct pm_target *ti, uint64_t off)
{
	struct raid *rs = ti->priv;
	uint64_t cb = rs->chunk * PM_SECTOR;
	return cb - off % cb;
}

/* where target byte off lies: the data device, the parity device, the byte offset on each */
static void locate(const struct raid *rs, uint64_t off, unsigned *dd, unsigned *pd, uint64_t *at)
{
	uint64_t sector = off / PM_SECTOR, c = sector / rs->chunk, rest = sector % rs->chunk;
	uint64_t row = c / (rs->n - 1);
	unsigned k = (unsigned)(c % (rs->n - 1)), n = rs->n;
	switch (rs->layout) {
	case L_RAID4: *pd = n - 1; *dd = k; break;
	case L_LA: *pd = n - 1 - (unsigned)(row % n); *dd = k < *pd ? k : k + 1; break;
	case L_RA: *pd = (unsigned)(row % n); *dd = k < *pd ? k : k + 1; break;
	case L_LS: *pd = n - 1 - (unsigned)(row % n); *dd = (*pd + 1 + k) % n; break;
	case L_RS: *pd = (unsigned)(row % n); *dd = (*pd + 1 + k) % n; break;
	}
	*at = (rs->data_offset + row * rs->chunk + rest) * PM_SECTOR + off % PM_SECTOR;
}

static int dev_io(struct pm_target *ti, struct rdev *d, uint64_t at, void *rbuf, const void *wbuf, size_t len)
{
	int r = rbuf ? pm_src_read(d->dev, 0, at, rbuf, len) : pm_src_write(d->dev, 0, at, wbuf, len);
	if (r < 0 && r != -EROFS) {
		if (!__atomic_exchange_n(&d->degraded, true, __ATOMIC_RELAXED))
			pm_target_event(ti);
		__atomic_add_fetch(&d->errors, 1, __ATOMIC_RELAXED);
	}
	return r;
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] ^= src[i];
}

/* the bytes device `skip` holds at `at`, from all the others */
static int reconstruct(struct pm_target *ti, struct raid *rs, unsigned skip, uint64_t at, uint8_t *buf, size_t len)
{
	uint8_t *tmp = malloc(len);
	if (!tmp)
		return -ENOMEM;
	memset(buf, 0, len);
	for (unsigned i = 0; i < rs->n; i++) {
		if (i == skip)
			continue;
		if (!rs->d[i].dev || rs->d[i].degraded) {
			free(tmp);
			return -EIO; /* a second one gone */
		}
		int r = dev_io(ti, &rs->d[i], at, tmp, NULL, len);
		if (r < 0) {
			free(tmp);
			return r;
		}
		xor_into(buf, tmp, len);
	}
	free(tmp);
	return 0;
}

static int raid_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct raid *rs = ti->priv;
	unsigned dd, pd;
	uint64_t at;
	locate(rs, off, &dd, &pd, &at);
	if (!rs->d[dd].degraded && dev_io(ti, &rs->d[dd], at, buf, NULL, len) == 0)
		return 0;
	pthread_mutex_lock(&rs->lock);
	int r = reconstruct(ti, rs, dd, at, buf, len);
	pthread_mutex_unlock(&rs->lock);
	return r;
}

static int raid_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct raid *rs = ti->priv;
	unsigned dd, pd;
	uint64_t at;
	int r = 0;
	locate(rs, off, &dd, &pd, &at);
	uint8_t *p = malloc(len), *old = malloc(len);
	if (!p || !old) {
		free(p);
		free(old);
		return -ENOMEM;
	}
	pthread_mutex_lock(&rs->lock);
	if (rs->d[pd].degraded) {
		/* no parity to keep: the data alone */
		r = dev_io(ti, &rs->d[dd], at, NULL, buf, len);
	} else if (rs->d[dd].degraded) {
		/* parity from the other data chunks and the new one */
		memset(p, 0, len);
		for (unsigned i = 0; i < rs->n && r == 0; i++) {
			if (i == dd || i == pd)
				continue;
			if ((r = dev_io(ti, &rs->d[i], at, old, NULL, len)) == 0)
				xor_into(p, old, len);
		}
		if (r == 0) {
			xor_into(p, buf, len);
			r = dev_io(ti, &rs->d[pd], at, NULL, p, len);
			if (r == 0 && rs->d[dd].dev) /* being rebuilt: it gets the data too */
				dev_io(ti, &rs->d[dd], at, NULL, buf, len);
		}
	} else {
		/* read-modify-write: new parity = old parity ^ old data ^ new data */
		if ((r = dev_io(ti, &rs->d[dd], at, old, NULL, len)) == 0 &&
		    (r = dev_io(ti, &rs->d[pd], at, p, NULL, len)) == 0) {
			xor_into(p, old, len);
			xor_into(p, buf, len);
			if ((r = dev_io(ti, &rs->d[dd], at, NULL, buf, len)) == 0)
				r = dev_io(ti, &rs->d[pd], at, NULL, p, len);
		}
	}
	pthread_mutex_unlock(&rs->lock);
	free(p);
	free(old);
	return r;
}

static void raid_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct raid *rs = ti->priv;
	size_t o = 0;
#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (table) {
		unsigned np = 1 + (rs->nosync ? 1 : 0) + (rs->rebuild >= 0 ? 2 : 0) + (rs->region ? 2 : 0) +
			      (rs->data_offset ? 2 : 0);
		PUT("%s %u %llu", rs->type, np, (unsigned long long)rs->chunk);
		if (rs->nosync)
			PUT(" nosync");
		if (rs->rebuild >= 0)
			PUT(" rebuild %d", rs->rebuild);
		if (rs->region)
			PUT(" region_size %llu", (unsigned long long)rs->region);
		if (rs->data_offset)
			PUT(" data_offset %llu", (unsigned long long)rs->data_offset);
		PUT(" %u", rs->n);
		for (unsigned i = 0; i < rs->n; i++)
			PUT(" - %s", rs->d[i].dev ? rs->d[i].dev->name : "-");
		return;
	}
	PUT("%s %u ", rs->type, rs->n);
	for (unsigned i = 0; i < rs->n; i++)
		PUT("%c", !rs->d[i].dev || __atomic_load_n(&rs->d[i].errors, __ATOMIC_RELAXED) ? 'D'
			  : rs->d[i].degraded ? 'a' : 'A');
	uint64_t per = ti->len / (rs->n - 1);
	PUT(" %llu/%llu idle 0 %llu -", (unsigned long long)per, (unsigned long long)per,
	    (unsigned long long)rs->data_offset);
#undef PUT
}

/* the kernel's raid_io_hints: a chunk times the data devices of a row (one parity chunk here) */
static uint32_t raid_io_opt(const struct pm_target *ti)
{
	const struct raid *rs = ti->priv;

	return (uint32_t)(rs->chunk << 9) * (rs->n - 1);
}

const struct pm_target_type pm_target_raid = {
	.name = "raid",
	.version = { 1, 15, 1 },
	.ctr = raid_ctr,
	.dtr = raid_dtr,
	.read = raid_read,
	.write = raid_write,
	.status = raid_status,
	.max_io = raid_max_io,
	.io_opt = raid_io_opt,
};
