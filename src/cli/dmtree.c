/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dmsetup ls --tree: the devices and what they are built on, drawn as lvm2's dmsetup draws them.
 * The tree is libdm's dependency tree: a root whose children are the devices no other device uses
 * (in the order the devices are listed, by name), each device's children its dependencies in the
 * order the device mapper lists them, devices that are not device-mapper devices as leaves shown by
 * number only; -o inverted walks it from the leaves up. */
#include "dmtree.h"
#include "../node.h"
#include "../util.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_DEPTH 100

enum { T_DEVICE, T_BLKDEVNAME, T_TABLE, T_STATUS, T_ACTIVE, T_RW, T_OPEN, T_UUID, T_COMPACT, T_TRUNCATE,
       T_INVERTED, T_N };

struct symbols {
	const char *empty_2, *branch_2, *vert_2, *last_2, *single_3, *first_3;
};
static const struct symbols sym_ascii = { "  ", "|-", "| ", "`-", "---", "-+-" };
static const struct symbols sym_utf = { "  ", "\u251c\u2500", "\u2502 ", "\u2514\u2500", "\u2500\u2500\u2500",
					"\u2500\u252c\u2500" };
static const struct symbols sym_vt100 = { "  ",
					  "\033(0\017tq\033(B",
					  "\033(0\017x\033(B ",
					  "\033(0\017mq\033(B",
					  "\033(0\017qqq\033(B",
					  "\033(0\017qwq\033(B" };

/* a list of node indexes, in the order they were linked */
struct list {
	size_t *v, n, cap;
};

struct tnode {
	dev_t dev;
	bool exists;            /* a device-mapper device (else a leaf shown by number) */
	struct pm_dm_info info;
	struct list uses, used_by;
};

struct tree {
	struct pm_dm *dm;
	const struct pm_dm_name *devs;   /* the device mapper's devices */
	size_t ndevs;
	struct tnode *n;        /* n[0] is the root */
	size_t nn, cap;
	int rc;
	/* drawing */
	bool sw[T_N];
	const struct symbols *sym;
	int width[MAX_DEPTH + 2], more[MAX_DEPTH + 2];
	int termwidth, cur_x;
	unsigned char last_char;
};

static bool linked(const struct list *l, size_t x)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == x)
			return true;
	return false;
}

static int list_add(struct list *l, size_t x)
{
	if (pm_grow(&l->v, l->n + 1, &l->cap, sizeof(*l->v)) < 0)
		return -ENOMEM;
	l->v[l->n++] = x;
	return 0;
}

static void list_del(struct list *l, size_t x)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == x) {
			memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
			l->n--;
			return;
		}
}

static int link_nodes(struct tree *t, size_t parent, size_t child)
{
	if (linked(&t->n[parent].uses, child))
		return 0;
	if (list_add(&t->n[parent].uses, child) < 0 || list_add(&t->n[child].used_by, parent) < 0)
		return -ENOMEM;
	return 0;
}

static void unlink_nodes(struct tree *t, size_t parent, size_t child)
{
	if (!linked(&t->n[parent].uses, child))
		return;
	list_del(&t->n[parent].uses, child);
	list_del(&t->n[child].used_by, parent);
}

/* how many children a node has: what it uses (devices at the bottom: none), or inverted what uses
 * it (devices at the top: none) */
static size_t children(const struct tree *t, size_t x, bool inverted)
{
	if (inverted)
		return linked(&t->n[0].uses, x) ? 0 : t->n[x].used_by.n;
	return linked(&t->n[x].uses, 0) ? 0 : t->n[x].uses.n;
}

static const struct pm_dm_name *dm_device(const struct tree *t, dev_t dev)
{
	for (size_t i = 0; i < t->ndevs; i++)
		if (t->devs[i].dev == dev)
			return &t->devs[i];
	return NULL;
}

/* Add dev under parent (libdm's _add_dev): a new node goes to the top until something uses it, and to
 * the bottom when it uses nothing; its dependencies are added under it. */
static int add_dev(struct tree *t, size_t parent, dev_t dev)
{
	size_t x;
	bool fresh = false;
	_cleanup_free_ dev_t *deps = NULL;
	size_t ndeps = 0;
	int r;

	for (x = 1; x < t->nn; x++)
		if (t->n[x].dev == dev)
			break;
	if (x == t->nn) {
		struct tnode node = { .dev = dev };
		const struct pm_dm_name *d = dm_device(t, dev);
		if (d) {
			struct pm_dm_ref ref = { .name = d->name };
			if (pm_dm_info(t->dm, &ref, &node.info) == 0 && pm_dm_deps(t->dm, &ref, &deps, &ndeps) == 0)
				node.exists = true;
			else
				t->rc = 1; /* gone meanwhile: shown as a leaf, and said in the exit status */
		}
		if (pm_grow(&t->n, t->nn + 1, &t->cap, sizeof(*t->n)) < 0)
			return -ENOMEM;
		t->n[t->nn++] = node;
		fresh = true;
	}
	/* a node already under something is not put at the top again */
	if (parent == 0) {
		if (children(t, x, true))
			return 0;
	} else {
		unlink_nodes(t, 0, x);
	}
	unlink_nodes(t, parent, 0);
	if ((r = link_nodes(t, parent, x)) < 0)
		return r;
	if (!fresh)
		return 0;
	if (!t->n[x].exists || !ndeps)
		return link_nodes(t, x, 0);
	for (size_t i = 0; i < ndeps; i++)
		if ((r = add_dev(t, x, deps[i])) < 0)
			return r;
	return 0;
}

/* ---- drawing: at most termwidth columns, the rest cut to "..." (UTF-8 counted by characters) ---- */

static void out_char(struct tree *t, unsigned char c)
{
	t->cur_x += (c & 0xc0) != 0x80;
	if (!t->sw[T_TRUNCATE]) {
		putchar(c);
		return;
	}
	if (t->cur_x <= t->termwidth)
		putchar(c);
	if (t->cur_x == t->termwidth + 1 && (c & 0xc0) != 0x80) {
		if (t->last_char || (c & 0x80)) {
			fputs("...", stdout);
		} else {
			/* one more fits when the line ends here */
			t->last_char = c;
			t->cur_x--;
		}
	}
}

static void out_str(struct tree *t, const char *s)
{
	while (*s)
		out_char(t, (unsigned char)*s++);
}

static void out_uint(struct tree *t, unsigned v)
{
	char b[16];

	snprintf(b, sizeof(b), "%u", v);
	out_str(t, b);
}

static void out_newline(struct tree *t)
{
	if (t->last_char && t->cur_x == t->termwidth)
		putchar(t->last_char);
	t->last_char = 0;
	putchar('\n');
	t->cur_x = 1;
}

static void out_prefix(struct tree *t, unsigned depth)
{
	for (unsigned d = 0; d < depth; d++) {
		for (int x = t->width[d] + 1; x > 0; x--)
			out_char(t, ' ');
		if (d == depth - 1)
			out_str(t, t->more[depth] ? t->sym->branch_2 : t->sym->last_2);
		else
			out_str(t, t->more[d + 1] ? t->sym->vert_2 : t->sym->empty_2);
	}
}

static bool print_attributes(const struct tree *t)
{
	return t->sw[T_ACTIVE] || t->sw[T_RW] || t->sw[T_OPEN] || t->sw[T_UUID];
}

static bool compact(const struct tree *t)
{
	return t->sw[T_COMPACT] && !print_attributes(t) && !t->sw[T_TABLE] && !t->sw[T_STATUS];
}

static void attributes(struct tree *t, const struct tnode *x)
{
	int n = 0;

	if (!x->exists)
		return;
	if (t->sw[T_ACTIVE]) {
		out_str(t, n++ ? ", " : " [");
		out_str(t, x->info.suspended ? "SUSPENDED" : "ACTIVE");
	}
	if (t->sw[T_RW]) {
		out_str(t, n++ ? ", " : " [");
		out_str(t, x->info.read_only ? "RO" : "RW");
	}
	if (t->sw[T_OPEN]) {
		out_str(t, n++ ? ", " : " [");
		out_uint(t, (unsigned)(x->info.open_count > 0 ? x->info.open_count : 0));
	}
	if (t->sw[T_UUID]) {
		out_str(t, n++ ? ", " : " [");
		out_str(t, x->info.uuid);
	}
	if (n)
		out_char(t, ']');
}

static void draw_node(struct tree *t, size_t xi, unsigned depth, bool last, bool has_children)
{
	const struct tnode *x = &t->n[xi];
	const char *name = x->exists ? x->info.name : "";
	char kname[256];

	if (depth + 2 > MAX_DEPTH)
		return;
	if (!*name && !t->sw[T_DEVICE] && !t->sw[T_BLKDEVNAME])
		return;
	t->more[depth] = !last;
	t->width[depth] = 0;
	bool first_on_line = t->cur_x == 1;
	if (!compact(t) || first_on_line)
		out_prefix(t, depth);
	int offset = t->cur_x;
	if (compact(t) && !first_on_line)
		out_str(t, t->more[depth] ? t->sym->first_3 : t->sym->single_3);
	out_str(t, name);
	if (t->sw[T_BLKDEVNAME] && pm_dev_kernel_name(x->dev, kname, sizeof(kname)) == 0) {
		out_str(t, " <");
		out_str(t, kname);
		out_char(t, '>');
	}
	if (t->sw[T_DEVICE]) {
		out_str(t, " (");
		out_uint(t, major(x->dev));
		out_char(t, ':');
		out_uint(t, minor(x->dev));
		out_char(t, ')');
	}
	if (print_attributes(t))
		attributes(t, x);
	if (compact(t))
		t->width[depth] = t->cur_x - offset;
	if (!compact(t) || !has_children)
		out_newline(t);
	if (t->sw[T_TABLE] || t->sw[T_STATUS])
		t->more[depth + 1] = has_children; /* lvm2 draws no targets under a node (yet) */
}

static void walk(struct tree *t, size_t xi, unsigned depth)
{
	bool inv = t->sw[T_INVERTED];
	const struct list *l = inv ? &t->n[xi].used_by : &t->n[xi].uses;

	for (size_t i = 0; i < l->n; i++) {
		size_t c = l->v[i];
		bool has = children(t, c, inv) > 0;
		draw_node(t, c, depth, i + 1 == l->n, has);
		if (has)
			walk(t, c, depth + 1);
	}
}

/* the tree options: each a name or a prefix of one (lvm2 compares only the given length) */
static int parse_options(struct tree *t, const char *opts)
{
	static const struct {
		const char *name;
		int sw;                 /* -1: a symbol set, -2: nodevice, -3: notrunc */
		const struct symbols *sym;
	} names[] = {
		{ "device", T_DEVICE, NULL },	  { "blkdevname", T_BLKDEVNAME, NULL }, { "nodevice", -2, NULL },
		{ "status", T_STATUS, NULL },	  { "table", T_TABLE, NULL },		{ "active", T_ACTIVE, NULL },
		{ "open", T_OPEN, NULL },	  { "uuid", T_UUID, NULL },		{ "rw", T_RW, NULL },
		{ "utf", -1, &sym_utf },	  { "vt100", -1, &sym_vt100 },		{ "ascii", -1, &sym_ascii },
		{ "inverted", T_INVERTED, NULL }, { "compact", T_COMPACT, NULL },	{ "notrunc", -3, NULL },
	};
	const char *p = opts;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		size_t k;
		for (k = 0; k < ARRAY_SIZE(names); k++)
			if (!strncmp(p, names[k].name, len))
				break;
		if (k == ARRAY_SIZE(names)) {
			fprintf(stderr, "Tree options not recognised: %s.\n", p);
			return -1;
		}
		if (names[k].sw >= 0)
			t->sw[names[k].sw] = true;
		else if (names[k].sw == -1)
			t->sym = names[k].sym;
		else if (names[k].sw == -2)
			t->sw[T_DEVICE] = false;
		else
			t->sw[T_TRUNCATE] = false;
		if (!p[len])
			break;
		p += len + 1;
	}
	return 0;
}

/* lvm2 draws with UTF-8 lines when the locale's character set is UTF-8 */
static bool utf8_locale(void)
{
	bool utf8 = false;
	const char *old = setlocale(LC_CTYPE, NULL);
	_cleanup_free_ char *saved = old ? strdup(old) : NULL;

	if (setlocale(LC_CTYPE, ""))
		utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	setlocale(LC_CTYPE, saved ? saved : "C");
	return utf8;
}

int dmsetup_tree(struct pm_dm *dm, const struct pm_dm_name *devs, size_t ndevs, const char *opts)
{
	struct tree t = { .dm = dm, .devs = devs, .ndevs = ndevs, .termwidth = 80, .cur_x = 1 };
	struct winsize ws;
	int r = 0;

	t.sym = utf8_locale() ? &sym_utf : &sym_ascii;
	t.sw[T_DEVICE] = t.sw[T_TRUNCATE] = true;
	if (parse_options(&t, opts) < 0)
		return 1;
	if (t.sym != &sym_vt100 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 3)
		t.termwidth = ws.ws_col - 3;
	if (!ndevs) {
		printf("No devices found\n");
		return 0;
	}
	if (!(t.n = calloc(1, sizeof(*t.n))))
		return 1;
	t.nn = t.cap = 1;
	for (size_t i = 0; i < ndevs && r == 0; i++)
		r = add_dev(&t, 0, devs[i].dev);
	if (r < 0) {
		fprintf(stderr, "dmsetup: %s\n", strerror(-r));
		t.rc = 1;
	}
	walk(&t, 0, 0);
	for (size_t i = 0; i < t.nn; i++) {
		free(t.n[i].uses.v);
		free(t.n[i].used_by.v);
	}
	free(t.n);
	return t.rc;
}
