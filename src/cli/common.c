/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "common.h"
#include "../image/image.h"

#include <inttypes.h>
#include <malloc.h>

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void cli_image_json(FILE *f, const struct pm_image *img)
{
	struct pm_image_layer l[PM_IMG_MAX_CHAIN];
	unsigned n = pm_image_layers(img, l, PM_IMG_MAX_CHAIN);
	const char *ro = pm_image_readonly_reason(img);

	fprintf(f, "{\"format\":\"%s\",\"virtual_size\":%" PRIu64 ",\"cluster_size\":%" PRIu32 ",\"subformat\":",
		l[0].format, l[0].virtual_size, l[0].cluster_size);
	if (l[0].subformat)
		cli_json_str(f, l[0].subformat);
	else
		fputs("null", f);
	fprintf(f, ",\"allocated\":%" PRIu64 ",\"read_only\":", pm_image_allocated(img));
	if (ro)
		cli_json_str(f, ro);
	else
		fputs("null", f);
	fputs(",\"chain\":[", f);
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, "%s{\"format\":\"%s\",\"path\":", i ? "," : "", l[i].format);
		cli_json_str(f, l[i].path);
		fprintf(f, ",\"virtual_size\":%" PRIu64 ",\"cluster_size\":%" PRIu32 "}", l[i].virtual_size,
			l[i].cluster_size);
	}
	fputs("]}", f);
}

void cli_image_warnings(const char *prog, const struct pm_image_diag *d)
{
	for (unsigned i = 0; i < d->nwarnings; i++)
		fprintf(stderr, "%s: warning: %s\n", prog, d->warnings[i]);
}

void cli_malloc_for_serving(void)
{
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
