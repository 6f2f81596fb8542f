/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "names.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *pm_default_delim(const char *base)
{
	size_t l = strlen(base);
	return l && isdigit((unsigned char)base[l - 1]) ? "p" : "";
}

int pm_part_name(char *buf, size_t len, const char *base, const char *delim, unsigned num)
{
	int n = snprintf(buf, len, "%s%s%u", base, delim, num);

	if (n < 0 || (size_t)n >= len || n >= PM_NAME_MAX)
		return -ENAMETOOLONG;
	for (char *p = buf; *p; p++)
		if (*p == '/')
			*p = '!';
	return 0;
}

int pm_base_from_path(char *buf, size_t len, const char *path)
{
	size_t l = strlen(path);
	const char *s;

	while (l > 1 && path[l - 1] == '/')
		l--;
	s = path + l;
	while (s > path && s[-1] != '/')
		s--;
	if ((size_t)(path + l - s) >= len)
		return -ENAMETOOLONG;
	memcpy(buf, s, (size_t)(path + l - s));
	buf[path + l - s] = 0;
	return buf[0] ? 0 : -EINVAL;
}

int pm_dm_name_of(dev_t rdev, char *buf, size_t len)
{
	char path[96];
	int r;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/name", major(rdev), minor(rdev));
	r = pm_read_line(path, buf, len);
	if (r < 0)
		return r;
	return buf[0] ? 0 : -ENOENT;
}

bool pm_dm_name_valid(const char *name)
{
	return name && name[0] && strlen(name) < PM_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..") && strcmp(name, "control");
}

/* One component from s: "--" is a '-', a '-' before anything else ends it (a '-' at the very end
 * stays). Unescaped in place; returns where the next one starts. */
static char *lvm_component(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '-' && s[1]) {
			if (s[1] != '-')
				break;
			s++;
		}
		*o++ = *s++;
	}
	char *next = *s ? s + 1 : s;
	*o = 0;
	return next;
}

void pm_lvm_name_split(char *name, char **vg, char **lv, char **layer)
{
	*vg = name;
	*lv = lvm_component(*vg);
	*layer = lvm_component(*lv);
	lvm_component(*layer);
}
