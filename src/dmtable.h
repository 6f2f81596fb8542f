/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Device-mapper tables as text, the way dmsetup reads and prints them ("<start> <length> <target>
 * <params>" a line). Library rules: -errno returns, no printing; parameters may hold a crypt key, so
 * every copy is wiped before it is freed. */
#ifndef PARTMAP_DMTABLE_H
#define PARTMAP_DMTABLE_H

#include "dm.h"

struct pm_dm_table {
	struct pm_dm_target *t;   /* params owned */
	size_t n, cap;
	bool secure;              /* a crypt target: load with DM_SECURE_DATA_FLAG */
};

enum pm_dm_table_error {
	PM_DMT_SYNTAX = 1,        /* not "<start> <length> <target> [params]" */
	PM_DMT_TYPE_LONG,         /* a target name of 16 characters or more */
	PM_DMT_GAP,               /* a target does not start where the previous one ended */
	PM_DMT_ZERO_LENGTH,
	PM_DMT_TOO_LONG,          /* ends past the last sector a 64-bit number can name */
	PM_DMT_EMPTY,             /* no target at all */
};

/* Where and why a table was refused. */
struct pm_dm_table_err {
	enum pm_dm_table_error kind;
	unsigned line;            /* 1-based */
	uint64_t start, prev_end; /* PM_DMT_GAP */
	char text[96];            /* the line (PM_DMT_SYNTAX, cut short) or the target name */
};

/* Parse TEXT: lines separated by newlines; blank lines and '#' comments skipped; a parameter that is
 * the path of a block device becomes its major:minor. 0, -EINVAL with *err filled, or -ENOMEM; on
 * failure TB is left empty (and every copy made wiped). */
int pm_dm_table_parse(const char *text, struct pm_dm_table *tb, struct pm_dm_table_err *err);
/* Wipe and free the parameters; TB is left empty. */
void pm_dm_table_free(struct pm_dm_table *tb);

/* One target as dmsetup prints it, "<start> <length> <type> <params>", into a new string; unless
 * SHOW_KEYS, a crypt key is printed as zeros of its length (a keyring reference ":..." is kept).
 * NULL when out of memory. */
char *pm_dm_target_format(const struct pm_dm_target *t, bool show_keys);

#endif
