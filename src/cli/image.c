/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image applet: `image info IMG [--json]` (like qemu-img info), `image raw IMG OUT` (the virtual
 * disk as a raw file, sparse where the image is unallocated or zero), `image convert -O qcow2 IMG
 * OUT` (the same into a new qcow2, zero clusters left unallocated), `image check`, `image create`. */
#include "applets.h"
#include "common.h"
#include "../image/image.h"
#include "../par.h"
#include "../util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)
#define ZERO_GRAIN 4096u   /* the smallest run of zeros left as a hole */
#define COPY_THREADS 4u    /* at most, and no more than the processors */

static void usage(FILE *f)
{
	fprintf(f, "usage: partmap image info [--format FMT] [--json] IMAGE\n"
		   "       partmap image raw [-p] [--format FMT] IMAGE OUTPUT\n"
		   "       partmap image convert -O qcow2 [-p] [-o cluster_size=N] [--format FMT] IMAGE OUTPUT\n"
		   "       partmap image check [-r leaks] [--format FMT] IMAGE\n"
		   "       partmap image create -f qcow2 [-b BACKING [-F FMT]] [-o cluster_size=N] FILE [SIZE]\n"
		   "       partmap image --help | --version\n"
		   "  info             the format, virtual size, bytes on disk, cluster size, subformat,\n"
		   "                   whether it can be written in place, and the backing chain\n"
		   "  raw              write the virtual disk to OUTPUT (a new file, sparse where it reads\n"
		   "                   as zeros), like qemu-img convert -O raw\n"
		   "  convert          write the virtual disk to OUTPUT, a new qcow2 (-O raw: as raw does);\n"
		   "                   clusters that read as zeros are not allocated (qemu-img convert)\n"
		   "  -p               show the progress on a terminal, as qemu-img does: (NN.NN/100%%)\n"
		   "  check            check a qcow2's references against its refcounts (qemu-img check);\n"
		   "                   -r leaks repairs leaked clusters\n"
		   "  create           a new qcow2, blank or over BACKING (qemu-img create)\n"
		   "  -f, --format FMT read IMAGE as FMT: raw, qcow2, vmdk, vhd (vpc), vhdx, vdi;\n"
		   "                   default: detected by its magic\n"
		   "  --json           info as one JSON object\n"
		   "  --help           print this help\n"
		   "  --version        print the version\n"
		   "exit status: 0 done, 1 usage error, an image that cannot be opened or read, or a write error;\n"
		   "  check (as qemu-img check): 0 no errors, 2 corruptions, 3 leaked clusters only, 63 no check for\n"
		   "  the format, 1 not completed; with -r leaks, the state after the repair\n"
		   "see also: man partmap-image\n");
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
	return pm_pwrite_all(fd, p, n, off);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

struct copy {
	struct pm_image *img;
	const char *in, *out;
	int fd;                   /* the raw output, or -1 */
	struct pm_image *dst;     /* the image output (convert -O qcow2), or NULL */
	uint32_t grain;           /* dst: its cluster size, the unit left unallocated when zero */
	bool regular;
	uint64_t size;
	uint64_t next;            /* the next chunk to copy (atomic) */
	int failed;               /* set once by the first worker that fails (atomic) */
	FILE *progress;           /* -p on a terminal: where the progress goes, else NULL */
	uint64_t done;            /* bytes copied (atomic) */
	pthread_mutex_t plock;
	double shown;             /* the percentage printed last (under plock) */
};

/* qemu-img's progress line: "    (NN.NN/100%)" and a carriage return, again each time it grew by at
 * least 1% (qemu's min_skip for convert), and at 100% a newline. */
static void progress(struct copy *c, uint64_t add)
{
	uint64_t done = __atomic_add_fetch(&c->done, add, __ATOMIC_RELAXED);
	double pct = c->size ? (double)done * 100.0 / (double)c->size : 100.0;

	if (!c->progress)
		return;
	pthread_mutex_lock(&c->plock);
	if (pct >= c->shown + 1.0 || (pct >= 100.0 && c->shown < 100.0) || add == 0) {
		c->shown = pct;
		fprintf(c->progress, "    (%3.2f/100%%)\r", (double)(uint64_t)(pct * 100.0) / 100.0);
		fflush(c->progress);
	}
	pthread_mutex_unlock(&c->plock);
}

/* The data bytes [off, off+n) of buf to the image output: the pieces of each cluster that are not
 * all zeros, joined into one write per run (a fresh image reads as zeros: nothing else to do). */
static int write_image(struct copy *c, const uint8_t *buf, uint64_t off, size_t n)
{
	size_t s = 0;

	while (s < n) {
		size_t run = 0;
		/* skip zero pieces, then take the non-zero ones that follow */
		for (;;) {
			uint64_t at = off + s + run;
			size_t piece = (size_t)(c->grain - at % c->grain);
			if (piece > n - s - run)
				piece = n - s - run;
			bool z = all_zero(buf + s + run, piece);
			if (z && run)
				break;
			if (z)
				s += piece;
			else
				run += piece;
			if (s + run >= n)
				break;
		}
		if (run) {
			int r = pm_image_write(c->dst, off + s, buf + s, run);
			if (r < 0)
				return r;
		}
		s += run;
	}
	return 0;
}

/* Copy [off, off+len) of the virtual disk: data read and written, zeros left as holes in a regular
 * file (in ZERO_GRAIN steps, as qemu-img convert does) or written to a device; to an image output,
 * clusters that read as zeros are not written at all. */
static int copy_range(struct copy *c, uint8_t *buf, const uint8_t *zeros, uint64_t off, uint64_t len)
{
	int r;

	while (len) {
		uint64_t n;
		int k = pm_image_extent(c->img, off, len, &n);
		if (k < 0) {
			fprintf(stderr, "image: %s: cannot map byte %" PRIu64 ": %s\n", c->in, off, strerror(-k));
			return k;
		}
		if (k == PM_IMG_ZERO) {
			for (uint64_t done = 0; !c->dst && !c->regular && done < n; done += COPY_CHUNK) {
				size_t w = n - done < COPY_CHUNK ? (size_t)(n - done) : COPY_CHUNK;
				if ((r = write_all(c->fd, zeros, w, off + done)) < 0)
					goto write_error;
			}
		} else {
			if ((r = pm_image_read(c->img, off, buf, (size_t)n)) < 0) {
				fprintf(stderr, "image: %s: cannot read byte %" PRIu64 ": %s\n", c->in, off, strerror(-r));
				return r;
			}
			if (c->dst) {
				if ((r = write_image(c, buf, off, (size_t)n)) < 0)
					goto write_error;
			}
			for (size_t s = 0, e; !c->dst && s < n; s = e) {
				bool z = c->regular && all_zero(buf + s, n - s < ZERO_GRAIN ? n - s : ZERO_GRAIN);
				for (e = s; e < n; e += ZERO_GRAIN) {
					size_t g = n - e < ZERO_GRAIN ? n - e : ZERO_GRAIN;
					if (c->regular && all_zero(buf + e, g) != z)
						break;
				}
				if (e > n)
					e = n;
				if (!z && (r = write_all(c->fd, buf + s, e - s, off + s)) < 0)
					goto write_error;
			}
		}
		off += n;
		len -= n;
	}
	return 0;
write_error:
	fprintf(stderr, "image: %s: write: %s\n", c->out, strerror(-r));
	return r;
}

/* A worker: takes chunks in turn until none is left or one worker failed. */
static void *copy_worker(void *arg)
{
	struct copy *c = arg;
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK), *zeros = calloc(1, COPY_CHUNK);

	if (!buf || !zeros) {
		__atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	while (!__atomic_load_n(&c->failed, __ATOMIC_RELAXED)) {
		uint64_t off = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED) * COPY_CHUNK;
		if (off >= c->size)
			break;
		uint64_t len = c->size - off < COPY_CHUNK ? c->size - off : COPY_CHUNK;
		if (copy_range(c, buf, zeros, off, len) < 0)
			__atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
		else
			progress(c, len);
	}
	return NULL;
}

/* Run the copy with one worker per processor it may run on (at most COPY_THREADS): reads,
 * decompression and writes of different chunks overlap. 0, or 1 when a worker failed (it said why). */
static int run_copy(struct copy *c, bool want_progress)
{
	pthread_t th[COPY_THREADS];
	unsigned nth = 0, ncpu = pm_cpus();

	/* -p: on a terminal only (stdout, as qemu-img, else stderr) */
	c->progress = !want_progress ? NULL : isatty(STDOUT_FILENO) ? stdout : isatty(STDERR_FILENO) ? stderr : NULL;
	pthread_mutex_init(&c->plock, NULL);
	progress(c, 0);
	while (nth < COPY_THREADS && nth < ncpu &&
	       pthread_create(&th[nth], NULL, copy_worker, c) == 0)
		nth++;
	if (nth == 0)
		copy_worker(c);
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (c->progress)
		fputc('\n', c->progress);
	pthread_mutex_destroy(&c->plock);
	return c->failed ? 1 : 0;
}

/* Never write over the image, or one of its layers, being read: 1 (with a message) when OUT is one. */
static int is_input(struct pm_image *img, const char *out)
{
	struct stat ist, ost;
	struct pm_image_layer l[PM_IMG_MAX_CHAIN];
	unsigned nl = pm_image_layers(img, l, PM_IMG_MAX_CHAIN);

	if (stat(out, &ost) < 0)
		return 0;
	for (unsigned i = 0; i < nl; i++) {
		if (stat(l[i].path, &ist) == 0 && ist.st_dev == ost.st_dev && ist.st_ino == ost.st_ino) {
			fprintf(stderr, "image: %s: is the image %s itself: not overwritten\n", out, l[i].path);
			return 1;
		}
	}
	return 0;
}

static int to_raw(struct pm_image *img, const char *in, const char *out, bool want_progress)
{
	struct stat ost;
	struct copy c = { .img = img, .in = in, .out = out, .size = pm_image_size(img) };

	if (is_input(img, out))
		return 1;
	c.fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (c.fd < 0 || fstat(c.fd, &ost) < 0) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	_cleanup_close_ int fd = c.fd;
	c.regular = S_ISREG(ost.st_mode);
	/* emptied, then its full size at once: all holes, which the data then fills */
	if (c.regular && (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)c.size) < 0)) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	if (run_copy(&c, want_progress))
		return 1;
	/* like cp and qemu-img convert: written, not synced; close() reports what it can */
	fd = -1;
	if (close(c.fd) < 0) {
		fprintf(stderr, "image: %s: %s\n", out, strerror(errno));
		return 1;
	}
	return 0;
}

/* convert -O qcow2: a blank qcow2 of the virtual size, written through partmap's qcow2 writer without
 * syncs (qemu-img convert's cache=unsafe: the file is worth nothing until complete; like cp, it is
 * written, not synced, at the end). */
static int to_qcow2(struct pm_image *img, const char *in, const char *out, uint32_t cluster_size,
		    bool want_progress)
{
	struct copy c = { .img = img, .in = in, .out = out, .fd = -1, .size = pm_image_size(img) };
	struct pm_image_create_opts o = { .size = c.size, .cluster_size = cluster_size };
	struct pm_image_diag diag;
	_cleanup_image_ struct pm_image *dst = NULL;
	struct pm_image_layer l;
	int r;

	if (is_input(img, out))
		return 1;
	if (c.size == 0) {
		fprintf(stderr, "image: %s: the virtual disk is empty\n", in);
		return 1;
	}
	r = pm_image_create(out, "qcow2", &o, &diag);
	if (r == 0)
		r = pm_image_open_flags(&dst, out, "qcow2", PM_IMG_WRITABLE | PM_IMG_NO_FLUSH, &diag);
	if (r < 0) {
		fprintf(stderr, "image: %s\n", diag.error[0] ? diag.error : strerror(-r));
		return r == -EBUSY ? PM_EXIT_LOCKED : 1;
	}
	pm_image_layers(dst, &l, 1);
	c.dst = dst;
	c.grain = l.cluster_size;
	/* (a size that is not a multiple of 512 is rounded up by qcow2: the rest reads as zeros) */
	return run_copy(&c, want_progress);
}

static void print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
}

static int check(const char *path, const char *format, const char *repair)
{
	struct pm_image_diag diag;
	_cleanup_image_ struct pm_image *img = NULL;
	bool fix = repair != NULL;
	int r;

	if (fix && strcmp(repair, "leaks")) {
		fprintf(stderr, "image: check -r %s: partmap repairs leaked clusters only (-r leaks)\n", repair);
		return 1;
	}
	r = pm_image_open_flags(&img, path, format, fix ? PM_IMG_WRITABLE : 0, &diag);
	cli_image_warnings("image", &diag);
	if (r < 0) {
		fprintf(stderr, "image: %s\n", diag.error[0] ? diag.error : strerror(-r));
		return r == -EBUSY ? PM_EXIT_LOCKED : 1;
	}
	struct pm_image_check res = { .report = print_line };
	r = pm_image_check(img, fix, &res);
	if (r == -ENOTSUP) {
		fprintf(stderr, "image: %s: %s images have no check\n", path, pm_image_format(img));
		return 63;
	}
	if (r == -EROFS) {
		fprintf(stderr, "image: %s: not repaired: %s\n", path, pm_image_readonly_reason(img));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "image: %s: check not completed: %s\n", path, strerror(-r));
		return 1;
	}
	if (res.leaks_fixed)
		printf("The following inconsistencies were found and repaired:\n\n    %" PRIu64 " leaked clusters\n"
		       "    0 corruptions\n\nDouble checking the fixed image now...\n", res.leaks_fixed);
	if (res.corruptions)
		printf("\n%" PRIu64 " errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n", res.corruptions);
	if (res.leaks)
		printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n", res.leaks);
	if (!res.corruptions && !res.leaks)
		printf("No errors were found on the image.\n");
	printf("%" PRIu64 "/%" PRIu64 " clusters of the file in use\n", res.allocated, res.clusters);
	return res.corruptions ? 2 : res.leaks ? 3 : 0;
}

/* qemu-img's sizes: a number with an optional k, M, G, T, P, E suffix (powers of 1024) */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned shift = 0;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	case 'T': case 't': shift = 40; break;
	case 'P': case 'p': shift = 50; break;
	case 'E': case 'e': shift = 60; break;
	default: return -1;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The image read by info, raw and convert; NULL when it cannot be opened (said why). */
static struct pm_image *open_input(const char *path, const char *format)
{
	struct pm_image_diag diag;
	struct pm_image *img = NULL;
	int r = pm_image_open(&img, path, format, &diag);

	cli_image_warnings("image", &diag);
	if (r < 0)
		fprintf(stderr, "image: %s\n", diag.error[0] ? diag.error : strerror(-r));
	return r < 0 ? NULL : img;
}

/* -o cluster_size=N (the one option understood): 0, or -1 with a message */
static int parse_cluster_option(const char *cmd, const char *arg, uint32_t *cluster_size)
{
	uint64_t v;

	if (strncmp(arg, "cluster_size=", 13) || parse_size(arg + 13, &v) < 0) {
		fprintf(stderr, "image: %s: -o %s: only cluster_size=N is understood\n", cmd, arg);
		return -1;
	}
	*cluster_size = v > UINT32_MAX ? 0 : (uint32_t)v;
	if (!*cluster_size) {
		fprintf(stderr, "image: %s: cluster size %s out of range\n", cmd, arg + 13);
		return -1;
	}
	return 0;
}

/* convert [-f FMT] -O qcow2|raw [-p] [-o cluster_size=N] IMAGE OUTPUT (qemu-img convert's syntax) */
static int convert(int argc, char **argv)
{
	enum { OPT_FORMAT = 256, OPT_HELP };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = NULL, *ofmt = NULL;
	uint32_t cluster_size = 0;
	bool want_progress = false;
	int c;

	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:O:o:p", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
		case OPT_FORMAT: format = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'p': want_progress = true; break;
		case 'o':
			if (parse_cluster_option("convert", optarg, &cluster_size) < 0)
				return 1;
			break;
		case OPT_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!ofmt || argc - optind != 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(ofmt, "qcow2") && strcmp(ofmt, "raw")) {
		fprintf(stderr, "image: convert: -O %s: partmap writes qcow2 and raw\n", ofmt);
		return 1;
	}
	if (cluster_size && strcmp(ofmt, "qcow2")) {
		fprintf(stderr, "image: convert: -o cluster_size goes with -O qcow2\n");
		return 1;
	}
	_cleanup_image_ struct pm_image *img = open_input(argv[optind], format);
	if (!img)
		return 1;
	if (!strcmp(ofmt, "raw"))
		return to_raw(img, argv[optind], argv[optind + 1], want_progress);
	return to_qcow2(img, argv[optind], argv[optind + 1], cluster_size, want_progress);
}

static int create(int argc, char **argv)
{
	const char *fmt = NULL, *backing = NULL, *bfmt = NULL;
	struct pm_image_create_opts o = { 0 };
	int c;

	optind = 2;
	opterr = 0;
	while ((c = getopt(argc, argv, "f:b:F:o:q")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'q': break;
		case 'o':
			if (parse_cluster_option("create", optarg, &o.cluster_size) < 0)
				return 1;
			break;
		default: usage(stderr); return 1;
		}
	}
	if (!fmt || argc - optind < 1 || argc - optind > 2 || (bfmt && !backing)) {
		usage(stderr);
		return 1;
	}
	if (argc - optind == 2 && parse_size(argv[optind + 1], &o.size) < 0) {
		fprintf(stderr, "image: create: %s: not a size\n", argv[optind + 1]);
		return 1;
	}
	if (argc - optind == 1 && !backing) {
		fprintf(stderr, "image: create: a SIZE is needed without a backing file\n");
		return 1;
	}
	o.backing = backing;
	o.backing_fmt = bfmt;
	struct pm_image_diag diag;
	int r = pm_image_create(argv[optind], fmt, &o, &diag);
	if (r < 0) {
		fprintf(stderr, "image: create: %s\n", diag.error[0] ? diag.error : strerror(-r));
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
	if (!strcmp(cmd, "--version")) {
		printf("image (partmap) %s\n", PARTMAP_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "create"))
		return create(argc, argv);
	if (!strcmp(cmd, "convert"))
		return convert(argc, argv);
	const char *repair = NULL;
	bool want_progress = false;
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:r:p", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': repair = optarg; break;
		case 'p': want_progress = true; break;
		case 'f':
		case OPT_FORMAT: format = optarg; break;
		case OPT_JSON: json = true; break;
		case OPT_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	bool is_info = !strcmp(cmd, "info"), is_raw = !strcmp(cmd, "raw"), is_check = !strcmp(cmd, "check");
	if ((!is_info && !is_raw && !is_check) || argc - optind != (is_raw ? 2 : 1) || (repair && !is_check) ||
	    (want_progress && !is_raw)) {
		usage(stderr);
		return 1;
	}
	if (is_check)
		return check(argv[optind], format, repair);
	_cleanup_image_ struct pm_image *img = open_input(argv[optind], format);
	if (!img)
		return 1;
	if (is_info)
		return info(img, argv[optind], json);
	return to_raw(img, argv[optind], argv[optind + 1], want_progress) ? 1 : 0;
}
