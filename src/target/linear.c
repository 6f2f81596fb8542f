/* SPDX-License-Identifier: GPL-2.0-or-later */
/* linear <dev> <offset>: the target's sectors are the device's from offset on. Also zero (reads zeros,
 * writes dropped) and error (every I/O fails). */
#include "target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct linear {
	struct pm_source *dev;
	uint64_t start;           /* sectors */
};

static int linear_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	struct linear *lc;
	uint64_t start;
	int r;

	if (argc != 2)
		return pm_target_fail(ti, -EINVAL, "Invalid argument count");
	if (pm_target_u64(argv[1], &start) < 0)
		return pm_target_fail(ti, -EINVAL, "Invalid device sector");
	if (!(lc = calloc(1, sizeof(*lc))))
		return pm_target_fail(ti, -ENOMEM, "Cannot allocate linear context");
	if ((r = pm_target_source(ti, argv[0], &lc->dev)) < 0) {
		free(lc);
		return r;
	}
	lc->start = start;
	ti->priv = lc;
	return 0;
}

static void linear_dtr(struct pm_target *ti)
{
	free(ti->priv);
}

/* the device's byte for the target's byte off; I/O past the device's end fails as the kernel's does */
static int where(struct pm_target *ti, uint64_t off, uint64_t len, uint64_t *at)
{
	struct linear *lc = ti->priv;
	uint64_t base = lc->start * PM_SECTOR;

	if (base / PM_SECTOR != lc->start || base + off < base || base + off + len > lc->dev->vdev->size)
		return -EIO;
	*at = base + off;
	return 0;
}

static int linear_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	struct linear *lc = ti->priv;
	uint64_t at;
	int r = where(ti, off, len, &at);

	return r < 0 ? r : pm_vdev_read(lc->dev->vdev, at, buf, len);
}

static int linear_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	struct linear *lc = ti->priv;
	uint64_t at;
	int r = where(ti, off, len, &at);

	return r < 0 ? r : pm_vdev_write(lc->dev->vdev, at, buf, len);
}

static int linear_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	struct linear *lc = ti->priv;
	uint64_t at;
	int r = where(ti, off, len, &at);

	return r < 0 ? r : pm_vdev_discard(lc->dev->vdev, at, len);
}

static void linear_status(struct pm_target *ti, bool table, char *buf, size_t len)
{
	struct linear *lc = ti->priv;

	if (table)
		snprintf(buf, len, "%s %llu", lc->dev->name, (unsigned long long)lc->start);
}

const struct pm_target_type pm_target_linear = {
	.name = "linear",
	.version = { 1, 4, 0 },
	.ctr = linear_ctr,
	.dtr = linear_dtr,
	.read = linear_read,
	.write = linear_write,
	.discard = linear_discard,
	.status = linear_status,
};

/* ---- zero ---- */

static int zero_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return pm_target_fail(ti, -EINVAL, "No arguments required");
	return 0;
}

static int zero_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	(void)ti, (void)off;
	memset(buf, 0, len);
	return 0;
}

static int zero_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	(void)ti, (void)off, (void)buf, (void)len;
	return 0;
}

static int zero_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	(void)ti, (void)off, (void)len;
	return 0;
}

const struct pm_target_type pm_target_zero = {
	.name = "zero",
	.version = { 1, 2, 0 },
	.ctr = zero_ctr,
	.read = zero_read,
	.write = zero_write,
	.discard = zero_discard,
};

/* ---- error ---- */

static int error_ctr(struct pm_target *ti, unsigned argc, char **argv)
{
	(void)ti, (void)argc, (void)argv; /* the kernel's error target takes and ignores any arguments */
	return 0;
}

static int error_read(struct pm_target *ti, uint64_t off, void *buf, size_t len)
{
	(void)ti, (void)off, (void)buf, (void)len;
	return -EIO;
}

static int error_write(struct pm_target *ti, uint64_t off, const void *buf, size_t len)
{
	(void)ti, (void)off, (void)buf, (void)len;
	return -EIO;
}

static int error_discard(struct pm_target *ti, uint64_t off, uint64_t len)
{
	(void)ti, (void)off, (void)len;
	return -EIO;
}

const struct pm_target_type pm_target_error = {
	.name = "error",
	.version = { 1, 6, 0 },
	.ctr = error_ctr,
	.read = error_read,
	.write = error_write,
	.discard = error_discard,
};
