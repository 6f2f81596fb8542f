/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Output helpers shared by the applets. */
#ifndef PARTMAP_CLI_COMMON_H
#define PARTMAP_CLI_COMMON_H

#include <stdio.h>

struct pm_image;
struct pm_image_diag;

/* A JSON string literal. */
void cli_json_str(FILE *f, const char *s);
/* For the servers (FUSE front ends): request buffers of up to 1 MiB stay in malloc's heap instead of
 * an mmap and munmap (and fresh zeroed pages) per request; at most 64 MiB of freed heap is kept. */
void cli_malloc_for_serving(void);
/* The image object of --json: format, sizes, read-only reason, chain. */
void cli_image_json(FILE *f, const struct pm_image *img);
/* The warnings of an image open, each as "PROG: warning: ..." on stderr. */
void cli_image_warnings(const char *prog, const struct pm_image_diag *d);

#endif
