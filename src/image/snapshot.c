/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --snapshot: an image behind a temporary qcow2 overlay (qemu's BDRV_O_SNAPSHOT, as qemu-nbd
 * --snapshot does it): the overlay is made in $TMPDIR (else /var/tmp) with the image as its backing
 * file, opened read-write, and unlinked at once, so that nothing is left whatever way the process
 * ends. The image is opened as a backing file: read-only, under qemu's backing-file locks. */
#include "format.h"
#include "../util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pm_image_open_snapshot(struct pm_image **out, const char *path, const char *format, struct pm_image_diag *diag)
{
	struct pm_image_diag scratch;
	char abs[PATH_MAX], fmt[16], tmp[PATH_MAX];
	const char *dir = getenv("TMPDIR");
	struct pm_image *img = NULL;
	int r, fd;

	if (!diag)
		diag = &scratch;
	memset(diag, 0, sizeof(*diag));
	*out = NULL;
	/* the overlay names its backing file by an absolute path: it lives in another folder */
	if (!realpath(path, abs)) {
		r = -errno;
		snprintf(diag->error, sizeof(diag->error), "%s: %s", path, strerror(errno));
		return r;
	}
	/* the format, as detected (a raw image stays raw, whatever magic its first bytes hold) */
	r = pm_image_open(&img, abs, format, diag);
	if (r < 0)
		return r;
	snprintf(fmt, sizeof(fmt), "%s", pm_image_format(img));
	pm_image_close(img);
	if (!dir || !dir[0])
		dir = "/var/tmp";
	if (snprintf(tmp, sizeof(tmp), "%s/partmap-snapshot.XXXXXX", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		snprintf(diag->error, sizeof(diag->error), "cannot make the snapshot overlay in %.400s: %s", dir,
			 strerror(errno));
		return r;
	}
	close(fd);
	struct pm_image_create_opts o = { .backing = abs, .backing_fmt = fmt };
	r = pm_image_create(tmp, "qcow2", &o, diag);
	if (r == 0)
		r = pm_image_open_flags(&img, tmp, "qcow2", PM_IMG_WRITABLE | PM_IMG_NO_FLUSH, diag);
	unlink(tmp);
	if (r < 0)
		return r;
	if (!img->files_rw || pm_image_readonly_reason(img)) {
		snprintf(diag->error, sizeof(diag->error), "the snapshot overlay in %.400s is not writable: %s", dir,
			 pm_image_readonly_reason(img) ? pm_image_readonly_reason(img) : "read-only");
		pm_image_close(img);
		return -EROFS;
	}
	*out = img;
	return 0;
}
