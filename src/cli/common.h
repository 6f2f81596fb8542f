/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Output helpers shared by the applets. */
#ifndef PARTMAP_CLI_COMMON_H
#define PARTMAP_CLI_COMMON_H

#include <stdio.h>

struct pm_image;
struct pm_image_diag;

/* A JSON string literal. */
void cli_json_str(FILE *f, const char *s);
/* The image object of --json: format, sizes, read-only reason, chain. */
void cli_image_json(FILE *f, const struct pm_image *img);
/* The warnings of an image open, each as "PROG: warning: ..." on stderr. */
void cli_image_warnings(const char *prog, const struct pm_image_diag *d);

#endif
