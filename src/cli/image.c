/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image applet: `image info IMG [--json]` (like qemu-img info) and `image raw IMG OUT` (the
 * virtual disk as a raw file, sparse where the image is unallocated or zero). */
#include "applets.h"
#include "common.h"
#include "../image/image.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)
#define ZERO_GRAIN 4096u   /* the smallest run of zeros left as a hole */

static void usage(FILE *f)
{
	fprintf(f, "usage: partmap image info [--format FMT] [--json] IMAGE\n"
		   "       partmap image raw [--format FMT] IMAGE OUTPUT\n"
		   "formats: raw, qcow2, vmdk, vhd (vpc), vhdx, vdi; detected by their magic unless --format\n"
		   "exit status: 0 done, 1 usage error, an image that cannot be opened or read, or a write error\n");
}

static void human(FILE *f, uint64_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		fprintf(f, "%" PRIu64 " B", n);
	else
		fprintf(f, "%.3g %s", v, units[u]);
}

static int info(struct pm_image *img, const char *path, bool json)
{
	struct pm_image_layer l[PM_IMG_MAX_CHAIN];
	unsigned n = pm_image_layers(img, l, PM_IMG_MAX_CHAIN);
	const char *ro = pm_image_readonly_reason(img);

	if (json) {
		cli_image_json(stdout, img);
		putchar('\n');
		return 0;
	}
	printf("image: %s\nfile format: %s\n", path, l[0].format);
	printf("virtual size: ");
	human(stdout, l[0].virtual_size);
	printf(" (%" PRIu64 " bytes)\ndisk size: ", l[0].virtual_size);
	human(stdout, pm_image_allocated(img));
	putchar('\n');
	if (l[0].cluster_size)
		printf("cluster_size: %" PRIu32 "\n", l[0].cluster_size);
	if (l[0].subformat)
		printf("subformat: %s\n", l[0].subformat);
	printf("writable in place: %s\n", ro ? ro : "yes");
	if (n > 1) {
		printf("backing file: %s (format %s)\nbacking chain:\n", l[1].path, l[1].format);
		for (unsigned i = 0; i < n; i++)
			printf("  %u: %s (%s, %" PRIu64 " bytes)\n", i, l[i].path, l[i].format, l[i].virtual_size);
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static int to_raw(struct pm_image *img, const char *in, const char *out)
{
	struct stat ist, ost;
	uint64_t size = pm_image_size(img), off = 0;
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK), *zeros = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (!buf)
		return -ENOMEM;
	fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0 || fstat(fd, &ost) < 0) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	/* never write over the image, or one of its layers, being read */
	struct pm_image_layer l[PM_IMG_MAX_CHAIN];
	unsigned nl = pm_image_layers(img, l, PM_IMG_MAX_CHAIN);
	for (unsigned i = 0; i < nl; i++) {
		if (stat(l[i].path, &ist) == 0 && ist.st_dev == ost.st_dev && ist.st_ino == ost.st_ino) {
			fprintf(stderr, "image: %s: is the image %s itself: not overwritten\n", out, l[i].path);
			return 1;
		}
	}
	(void)in;
	bool regular = S_ISREG(ost.st_mode);
	if (regular && ftruncate(fd, 0) < 0) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	while (off < size) {
		uint64_t len;
		int k = pm_image_extent(img, off, size - off, &len);
		if (k < 0) {
			fprintf(stderr, "image: %s: cannot map byte %" PRIu64 ": %s\n", in, off, strerror(-k));
			return 1;
		}
		for (uint64_t done = 0; done < len;) {
			size_t n = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
			if (k == PM_IMG_DATA) {
				r = pm_image_read(img, off + done, buf, n);
				if (r < 0) {
					fprintf(stderr, "image: %s: cannot read byte %" PRIu64 ": %s\n", in, off + done,
						strerror(-r));
					return 1;
				}
			}
			/* a regular file keeps a hole where the disk reads as zeros (in ZERO_GRAIN steps, as
			 * qemu-img convert does); a device is written whole */
			if (k == PM_IMG_ZERO && !regular) {
				if (!zeros && !(zeros = calloc(1, COPY_CHUNK)))
					return 1;
				r = write_all(fd, zeros, n, off + done);
			} else if (k == PM_IMG_DATA) {
				r = 0;
				for (size_t s = 0, e; s < n && r == 0; s = e) {
					bool z = regular && all_zero(buf + s, n - s < ZERO_GRAIN ? n - s : ZERO_GRAIN);
					for (e = s; e < n; e += ZERO_GRAIN) {
						size_t g = n - e < ZERO_GRAIN ? n - e : ZERO_GRAIN;
						if (regular && all_zero(buf + e, g) != z)
							break;
					}
					if (e > n)
						e = n;
					if (!z)
						r = write_all(fd, buf + s, e - s, off + done + s);
				}
			}
			if (r < 0) {
				fprintf(stderr, "image: %s: write: %s\n", out, strerror(-r));
				return 1;
			}
			done += n;
		}
		off += len;
	}
	if (regular && ftruncate(fd, (off_t)size) < 0) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	if (fsync(fd) < 0 && errno != EINVAL) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	return 0;
}

int image_main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_FORMAT, OPT_HELP };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL, *cmd;
	bool json = false;
	int c;

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
		case OPT_FORMAT: format = optarg; break;
		case OPT_JSON: json = true; break;
		case OPT_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	bool is_info = !strcmp(cmd, "info"), is_raw = !strcmp(cmd, "raw");
	if ((!is_info && !is_raw) || argc - optind != (is_info ? 1 : 2)) {
		usage(stderr);
		return 1;
	}
	struct pm_image_diag diag;
	_cleanup_image_ struct pm_image *img = NULL;
	int r = pm_image_open(&img, argv[optind], format, &diag);
	cli_image_warnings("image", &diag);
	if (r < 0) {
		fprintf(stderr, "image: %s\n", diag.error[0] ? diag.error : strerror(-r));
		return 1;
	}
	if (is_info)
		return info(img, argv[optind], json);
	return to_raw(img, argv[optind], argv[optind + 1]) ? 1 : 0;
}
