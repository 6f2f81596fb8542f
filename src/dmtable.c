/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "dmtable.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The parameters with every block-device path replaced by major:minor. Sized once (each path starts
 * with '/', and "major:minor" takes at most 21 characters), so no key is left behind by a realloc. */
static char *resolve_params(const char *params)
{
	size_t slashes = 0, len = 0, cap;
	_cleanup_free_ char *copy = NULL;
	char *out, *tok, *save = NULL;

	for (const char *c = params; *c; c++)
		slashes += *c == '/';
	cap = strlen(params) + 1 + slashes * 24;
	out = malloc(cap);
	copy = strdup(params);
	if (!out || !copy) {
		free(out);
		return NULL;
	}
	out[0] = 0;
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char rep[32];
		struct stat st;
		const char *w = tok;

		if (tok[0] == '/' && stat(tok, &st) == 0 && S_ISBLK(st.st_mode)) {
			snprintf(rep, sizeof(rep), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
			w = rep;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "", w);
	}
	explicit_bzero(copy, strlen(params));
	return out;
}

static int refuse(struct pm_dm_table *tb, struct pm_dm_table_err *err, enum pm_dm_table_error kind, unsigned line,
		  const char *text)
{
	pm_dm_table_free(tb);
	err->kind = kind;
	err->line = line;
	pm_strlcpy(err->text, text ? text : "", sizeof(err->text));
	return -EINVAL;
}

/* one target line (trimmed, not blank, not a comment) added to TB */
static int parse_line(char *s, unsigned lineno, uint64_t *next, struct pm_dm_table *tb, struct pm_dm_table_err *err)
{
	unsigned long long start, length;
	char type[64];
	int off = 0;
	struct pm_dm_target *t;

	if (sscanf(s, "%llu %llu %63s %n", &start, &length, type, &off) < 3 || !isdigit((unsigned char)s[0]))
		return refuse(tb, err, PM_DMT_SYNTAX, lineno, s);
	if (strlen(type) >= sizeof(t->type))
		return refuse(tb, err, PM_DMT_TYPE_LONG, lineno, type);
	if (start != *next) {
		err->start = start;
		err->prev_end = *next;
		return refuse(tb, err, PM_DMT_GAP, lineno, type);
	}
	if (!length)
		return refuse(tb, err, PM_DMT_ZERO_LENGTH, lineno, type);
	if (length > UINT64_MAX - start)
		return refuse(tb, err, PM_DMT_TOO_LONG, lineno, type);
	*next = start + length;
	if (pm_grow(&tb->t, tb->n, &tb->cap, sizeof(*tb->t)) < 0)
		return -ENOMEM;
	t = &tb->t[tb->n];
	memset(t, 0, sizeof(*t));
	t->start = start;
	t->length = length;
	memcpy(t->type, type, strlen(type) + 1);
	t->params = resolve_params(off ? s + off : "");
	if (!t->params)
		return -ENOMEM;
	tb->n++;
	if (!strcmp(type, "crypt"))
		tb->secure = true;
	return 0;
}

int pm_dm_table_parse(const char *text, struct pm_dm_table *tb, struct pm_dm_table_err *err)
{
	uint64_t next = 0;
	unsigned lineno = 0;

	memset(tb, 0, sizeof(*tb));
	memset(err, 0, sizeof(*err));
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char *line = strndup(p, l), *s, *t;
		int r;

		p += l + (e ? 1 : 0);
		lineno++;
		if (!line) {
			pm_dm_table_free(tb);
			return -ENOMEM;
		}
		for (s = line; isspace((unsigned char)*s); s++)
			;
		for (t = s + strlen(s); t > s && isspace((unsigned char)t[-1]);)
			*--t = 0;
		r = *s && *s != '#' ? parse_line(s, lineno, &next, tb, err) : 0;
		explicit_bzero(line, l);
		free(line);
		if (r < 0) {
			pm_dm_table_free(tb);
			return r;
		}
	}
	if (!tb->n)
		return refuse(tb, err, PM_DMT_EMPTY, lineno, NULL);
	return 0;
}

void pm_dm_table_free(struct pm_dm_table *tb)
{
	pm_dm_targets_free(tb->t, tb->n);
	memset(tb, 0, sizeof(*tb));
}

char *pm_dm_target_format(const struct pm_dm_target *t, bool show_keys)
{
	char *out = NULL;

	if (asprintf(&out, "%" PRIu64 " %" PRIu64 " %s %s", t->start, t->length, t->type, t->params ? t->params : "") < 0)
		return NULL;
	if (!show_keys && !strcmp(t->type, "crypt")) {
		/* "<start> <length> crypt <cipher> <key> ...": the key as zeros, unless a keyring entry */
		char *p = out;
		for (int field = 0; field < 4 && *p; field++) {
			while (*p && *p != ' ')
				p++;
			while (*p == ' ')
				p++;
		}
		if (*p != ':')
			for (; *p && *p != ' '; p++)
				*p = '0';
	}
	return out;
}
