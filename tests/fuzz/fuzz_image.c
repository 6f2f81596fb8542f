/* libFuzzer target for one image format (FUZZ_FORMAT), built once per format. The input is the image
 * file (in a memfd, opened by its /proc path). Checks the layer's promises: no crash, no read outside
 * the virtual disk, a refused open leaves nothing open, reads of any range either succeed or fail
 * with an error; and the partition engine on top of the virtual disk keeps its own promises. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk.h"
#include "image/image.h"
#include "ptable.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT "qcow2"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The writer's promise on any image it agrees to write, however damaged: what a write that
 * succeeded put there reads back (a write that lands on the image's own tables, or a table written
 * back over the data, would break it). Two writes, at the start and at a place the input picks, of
 * bytes the input picks; the image opened writable, unsynced (nothing to make durable in a memfd). */
static void write_back(const char *path, uint64_t vsize, const uint8_t *data, size_t size)
{
	static uint8_t out[8192], in[8192];
	struct pm_image *img = NULL;
	struct pm_image_diag diag;
	uint64_t at[2] = { 0, 0 };

	if (vsize < 1024 || pm_image_open_flags(&img, path, FUZZ_FORMAT, PM_IMG_WRITABLE | PM_IMG_NO_FLUSH, &diag) < 0)
		return;
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(size ? data[i % size] ^ (i >> 9) : i);
	if (size >= 8)
		at[1] = (((uint64_t)data[size - 1] << 24 | (uint64_t)data[size - 2] << 16 | (uint64_t)data[size - 3] << 8 |
			  data[size - 4]) * 512) % vsize;
	for (int k = 0; k < 2; k++) {
		size_t n = vsize - at[k] < sizeof(out) ? (size_t)(vsize - at[k]) : sizeof(out);
		if (pm_image_write(img, at[k], out, n) < 0)
			continue;
		if (pm_image_read(img, at[k], in, n) == 0 && memcmp(in, out, n))
			abort();
	}
	pm_image_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[65536];
	struct pm_image *img = NULL;
	struct pm_image_diag diag;
	char path[64];
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (pm_image_open(&img, path, FUZZ_FORMAT, &diag) < 0) {
		if (img)
			abort();
		close(fd);
		return 0;
	}
	uint64_t vsize = pm_image_size(img);
	/* the start, the end, and the extents from the start */
	size_t n = vsize < sizeof(buf) ? (size_t)vsize : sizeof(buf);
	(void)pm_image_read(img, 0, buf, n);
	(void)pm_image_read(img, vsize - n, buf, n);
	if (pm_image_read(img, vsize, buf, 1) != -34 /* ERANGE */)
		abort();
	uint64_t off = 0, len;
	for (int i = 0; i < 64 && off < vsize; i++) {
		int k = pm_image_extent(img, off, vsize - off, &len);
		if (k < 0)
			break;
		if (len == 0 || len > vsize - off)
			abort();
		off += len;
	}
	struct pm_disk d;
	struct pm_table t;
	struct pm_opts o = { 0 };
	pm_disk_from_image(&d, img);
	if (pm_probe(&d, &o, &t) == PM_FOUND)
		for (size_t i = 0; i < t.nparts; i++)
			if (t.parts[i].start + t.parts[i].size > pm_disk_sectors(&d))
				abort();
	pm_table_free(&t);
	pm_disk_close(&d);
	pm_image_close(img);
	write_back(path, vsize, data, size);
	close(fd);
	return 0;
}
