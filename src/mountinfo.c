/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mountinfo.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

/* the next space-separated field, NUL-terminated in place; NULL when there is none */
static char *field(char **p)
{
	char *s = *p, *e;

	if (!s || !*s)
		return NULL;
	e = strchr(s, ' ');
	if (e) {
		*e = 0;
		*p = e + 1;
	} else {
		*p = NULL;
	}
	return s;
}

/* mountinfo writes space, tab, newline and backslash as \ooo: decoded in place */
static char *unescape(char *s)
{
	char *o = s;

	for (const char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	return s;
}

/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
int pm_mountinfo_parse(char *line, struct pm_mount *m)
{
	char *p = line, *id, *parent, *mm, *root, *target, *f;
	unsigned maj, min;
	char c;

	line[strcspn(line, "\n")] = 0;
	if (!(id = field(&p)) || !(parent = field(&p)) || !(mm = field(&p)) || !(root = field(&p)) ||
	    !(target = field(&p)) || !field(&p))
		return -EINVAL;
	while ((f = field(&p)) && strcmp(f, "-"))
		; /* the optional fields */
	if (!f || !(m->fstype = field(&p)) || !(m->source = field(&p)))
		return -EINVAL;
	if (sscanf(id, "%d%c", &m->id, &c) != 1 || sscanf(parent, "%d%c", &m->parent, &c) != 1 ||
	    sscanf(mm, "%u:%u%c", &maj, &min, &c) != 2)
		return -EINVAL;
	m->dev = makedev(maj, min);
	m->root = unescape(root);
	m->target = unescape(target);
	unescape((char *)m->source);
	return 0;
}

int pm_mountinfo_each(int (*fn)(const struct pm_mount *m, void *arg), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		struct pm_mount m;
		if (pm_mountinfo_parse(line, &m) == 0)
			r = fn(&m, arg);
	}
	fclose(f);
	return r;
}
