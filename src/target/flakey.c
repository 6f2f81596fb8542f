/* SPDX-License-Identifier: GPL-2.0-or-later */
/* flakey <dev> <offset> <up seconds> <down seconds> [<#feature args> <feature args>...]: the device's
 * sectors from offset on, reliable for up seconds from the table's build, then unreliable for down
 * seconds, and so on. While down, what happens is chosen by the features, as the current kernel's
 * flakey (1.5.0) does:
 *   error_reads                       reads fail (EIO)
 *   drop_writes                       writes succeed without being written
 *   error_writes                      writes fail (EIO)
 *   corrupt_bio_byte <N> <r|w> <v> <flags>  byte N (1-based) of each matching request becomes v
 *                                     (reads after reading; writes on a copy of the data)
 *   random_read_corrupt <p>, random_write_corrupt <p>  with probability p/1e9 a random byte of the
 *                                     request gets a random value
 * Without features every I/O fails while down (the kernel records that as error_reads error_writes,
 * and its table shows them). A request matches corrupt_bio_byte's flags when (op & flags) == flags,
 * op being 0 for reads and 1 (REQ_OP_WRITE) for writes: requests here carry no other flag. */
#include "tgtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define PROBABILITY_BASE 1000000000u

struct flakey {
	struct pm_source *dev;
	uint64_t start;           /* sectors */
	unsigned up, down;        /* seconds */
	bool error_reads, drop_writes, error_writes;
	unsigned corrupt_byte;    /* 1-based; 0: none */
	bool corrupt_write;       /* the direction: w (else r) */
	unsigned corrupt_value, corrupt_flags;
	unsigned random_read, random_write; /* out of PROBABILITY_BASE */
	struct timespec t0;       /* CLOCK_MONOTONIC at build */
};

/* dm_read_arg: the next word as a number in [min, max], else the message */
static int read_arg(struct pm_target *ti, char ***av, unsigned *ac, unsigned min, unsigned max, unsigned *v,
		    const char *msg)
{
	if (!*ac || pm_target_u32(**av, v) < 0 || *v < min || *v > max)
		return pm_target_fail(ti, -EINVAL, "%s", msg);
	(*av)++, (*ac)--;
	return 0;
}

/* a feature without arguments: once only, and not with the one it conflicts with */
static int set_feature(struct pm_target *ti, bool *flag, bool other, const char *name, const char *other_name)
{
	if (*flag)
		return pm_target_fail(ti, -EINVAL, "Feature %s duplicated", name);
	if (other)
		return pm_target_fail(ti, -EINVAL, "Feature %s conflicts with feature %s", name, other_name);
	*flag = true;
	return 0;
}

static int parse_features(struct pm_target *ti, struct flakey *fc, unsigned ac, char **av)
{
	unsigned n = 0;
	int r;

	if (ac) {
		/* dm_read_arg_group: the count, then at least that many words */
		if (pm_target_u32(av[0], &n) < 0 || n > 11 || ac - 1 < n)
			return pm_target_fail(ti, -EINVAL, "Invalid number of feature args");
		av++, ac--;
	}
	/* words after the group are not looked at, as in the kernel */
	ac = n;
	while (ac) {
		const char *name = *av++;
		ac--;

		if (!strcasecmp(name, "error_reads")) {
			if ((r = set_feature(ti, &fc->error_reads, false, "error_reads", NULL)) < 0)
				return r;
		} else if (!strcasecmp(name, "drop_writes")) {
			if ((r = set_feature(ti, &fc->drop_writes, fc->error_writes, "drop_writes", "error_writes")) < 0)
				return r;
		} else if (!strcasecmp(name, "error_writes")) {
			if ((r = set_feature(ti, &fc->error_writes, fc->drop_writes, "error_writes", "drop_writes")) < 0)
				return r;
		} else if (!strcasecmp(name, "corrupt_bio_byte")) {
			if (fc->corrupt_byte)
				return pm_target_fail(ti, -EINVAL, "Feature corrupt_bio_byte duplicated");
			if (ac < 4)
				return pm_target_fail(ti, -EINVAL, "Feature corrupt_bio_byte requires 4 parameters");
			if ((r = read_arg(ti, &av, &ac, 1, UINT32_MAX, &fc->corrupt_byte, "Invalid corrupt bio byte")) < 0)
				return r;
			if (!strcasecmp(av[0], "w"))
				fc->corrupt_write = true;
			else if (!strcasecmp(av[0], "r"))
				fc->corrupt_write = false;
			else
				return pm_target_fail(ti, -EINVAL, "Invalid corrupt bio direction (r or w)");
			av++, ac--;
			if ((r = read_arg(ti, &av, &ac, 0, 255, &fc->corrupt_value,
					  "Invalid corrupt value to write into bio byte (0-255)")) < 0 ||
			    (r = read_arg(ti, &av, &ac, 0, UINT32_MAX, &fc->corrupt_flags, "Invalid corrupt bio flags mask")) < 0)
				return r;
		} else if (!strcasecmp(name, "random_read_corrupt") || !strcasecmp(name, "random_write_corrupt")) {
			bool rd = !strcasecmp(name, "random_read_corrupt");
			unsigned *p = rd ? &fc->random_read : &fc->random_write;

			if (*p)
				return pm_target_fail(ti, -EINVAL, "Feature %s duplicated", rd ? "random_read_corrupt" : "random_write_corrupt");
			if (!ac)
				return pm_target_fail(ti, -EINVAL, "Feature %s requires a parameter",
						      rd ? "random_read_corrupt" : "random_write_corrupt");
			if ((r = read_arg(ti, &av, &ac, 0, PROBABILITY_BASE, p, "Invalid random corrupt argument")) < 0)
				return r;
		} else {
			return pm_target_fail(ti, -EINVAL, "Unrecognised flakey feature requested");
		}
	}
	if (fc->drop_writes && ((fc->corrupt_byte && fc->corrupt_write) || fc->random_write))
		return pm_target_fail(ti, -EINVAL, "drop_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set");
	if (fc->error_writes && ((fc->corrupt_byte && fc->corrupt_write) || fc->random_write))
		return pm_target_fail(ti, -EINVAL, "error_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set");
	if (fc->error_reads && ((fc->corrupt_byte && !fc->corrupt_write) || fc->random_read))
		return pm_target_fail(ti, -EINVAL, "error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set");
	if (!fc->corrupt_byte && !fc->error_reads && !fc->drop_writes && !fc->error_writes && !fc->random_read &&
	    !fc->random_write)
		fc->error_reads = fc->error_writes = true;
	return 0;
}

static int flakey_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct flakey *fc;
	unsigned ac;
	char **av = argv + 2;
	int r;

	if (argc < 4)
		return pm_target_fail(ti, -EINVAL, "Invalid argument count");
	if (!(fc = calloc(1, sizeof(*fc))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate context");
	clock_gettime(CLOCK_MONOTONIC, &fc->t0);
	ac = argc - 2;
	if (pm_target_u64(argv[1], &fc->start) < 0 || fc->start > UINT64_MAX / PM_SECTOR) {
		r = pm_target_fail(ti, -EINVAL, "Invalid device sector");
		goto bad;
	}
	if ((r = read_arg(ti, &av, &ac, 0, UINT32_MAX, &fc->up, "Invalid up interval")) < 0 ||
	    (r = read_arg(ti, &av, &ac, 0, UINT32_MAX, &fc->down, "Invalid down interval")) < 0)
		goto bad;
	if (!(fc->up + fc->down)) {
		r = pm_target_fail(ti, -EINVAL, "Total (up + down) interval is zero");
		goto bad;
	}
	if (fc->up + fc->down < fc->up) {
		r = pm_target_fail(ti, -EINVAL, "Interval overflow");
		goto bad;
	}
	if ((r = parse_features(ti, fc, ac, av)) < 0)
		goto bad;
	if ((r = pm_target_source(ti, argv[0], &fc->dev)) < 0)
		goto bad;
	ti->priv = fc;
	return 0;
bad:
	free(fc);
	return r;
}

static void flakey_dtr(struct pm_target *ti)
{
	free(ti->priv);
}

/* whole seconds since the build, modulo the period, past the up interval */
static bool is_down(const struct flakey *fc)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t elapsed = (uint64_t)(now.tv_sec - fc->t0.tv_sec) - (now.tv_nsec < fc->t0.tv_nsec);
	return (unsigned)(elapsed % (fc->up + fc->down)) >= fc->up;
}

static uint32_t rnd32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)rand();
	return v;
}

/* with probability p / PROBABILITY_BASE */
static bool chance(unsigned p)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)rand();
	return v % PROBABILITY_BASE < p;
}

static bool flags_match(const struct flakey *fc, bool write)
{
	return ((write ? 1u : 0u) & fc->corrupt_flags) == fc->corrupt_flags;
}

static int flakey_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct flakey *fc = ti->priv;
	uint8_t *b = buf;
	bool down = is_down(fc);
	int r;

	if (down && fc->error_reads)
		return -EIO;
	if ((r = pm_src_read(fc->dev, fc->start, off, buf, len)) < 0 || !down)
		return r;
	if (fc->corrupt_byte && !fc->corrupt_write && flags_match(fc, false) && fc->corrupt_byte - 1 < len)
		b[fc->corrupt_byte - 1] = (uint8_t)fc->corrupt_value;
	if (fc->random_read && len && chance(fc->random_read))
		b[rnd32() % len] = (uint8_t)rnd32();
	return 0;
}

/* what becomes of a write (or a flush, or a discard) while down: 0 dropped, -EIO failed, 1 issued */
static int write_fate(const struct flakey *fc)
{
	return fc->drop_writes ? 0 : fc->error_writes ? -EIO : 1;
}

static int flakey_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct flakey *fc = ti->priv;

	if (is_down(fc)) {
		int f = write_fate(fc);
		if (f <= 0)
			return f;
		bool fixed = fc->corrupt_byte && fc->corrupt_write && flags_match(fc, true);
		bool random = fc->random_write && len && chance(fc->random_write);
		if (fixed || random) {
			/* the caller's data stays as it was: the corruption is on a copy */
			_cleanup_free_ uint8_t *copy = malloc(len);
			if (!copy)
				return -ENOMEM;
			memcpy(copy, buf, len);
			if (fixed && fc->corrupt_byte - 1 < len)
				copy[fc->corrupt_byte - 1] = (uint8_t)fc->corrupt_value;
			if (random)
				copy[rnd32() % len] = (uint8_t)rnd32();
			return pm_src_write(fc->dev, fc->start, off, copy, len);
		}
	}
	return pm_src_write(fc->dev, fc->start, off, buf, len);
}

/* an empty flush is a write without data: dropped or failed while down as writes are */
static int flakey_flush(struct pm_target *ti)
{
	struct flakey *fc = ti->priv;

	int f = is_down(fc) ? write_fate(fc) : 1;
	if (f <= 0)
		return f;
	return pm_vdev_flush(fc->dev->vdev);
}

static int flakey_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct flakey *fc = ti->priv;

	int f = is_down(fc) ? write_fate(fc) : 1;
	if (f <= 0)
		return f;
	return pm_src_discard(fc->dev, fc->start, off, len);
}

static void flakey_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct flakey *fc = ti->priv;
	size_t o = 0;

	if (!table)
		return;
#define PUT(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	PUT("%s %llu %u %u", fc->dev->name, (unsigned long long)fc->start, fc->up, fc->down);
	PUT(" %u", (unsigned)fc->error_reads + fc->drop_writes + fc->error_writes + (fc->corrupt_byte ? 5u : 0u) +
			   (fc->random_read ? 2u : 0u) + (fc->random_write ? 2u : 0u));
	if (fc->error_reads)
		PUT(" error_reads");
	if (fc->drop_writes)
		PUT(" drop_writes");
	else if (fc->error_writes)
		PUT(" error_writes");
	if (fc->corrupt_byte)
		PUT(" corrupt_bio_byte %u %c %u %u", fc->corrupt_byte, fc->corrupt_write ? 'w' : 'r', fc->corrupt_value,
		    fc->corrupt_flags);
	if (fc->random_read)
		PUT(" random_read_corrupt %u", fc->random_read);
	if (fc->random_write)
		PUT(" random_write_corrupt %u", fc->random_write);
#undef PUT
}

const struct pm_target_type pm_target_flakey = {
	.name = "flakey",
	.version = { 1, 5, 0 },
	.ctr = flakey_ctr,
	.dtr = flakey_dtr,
	.read = flakey_read,
	.write = flakey_write,
	.flush = flakey_flush,
	.discard = flakey_discard,
	.status = flakey_status,
};
