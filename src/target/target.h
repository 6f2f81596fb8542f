/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Device-mapper targets in userspace, and a table that composes them into one virtual block device
 * (vdev.h). A target type parses and validates its table line as the kernel's constructor does (same
 * rules, same messages), then serves I/O for its range of the table from its sources: the devices its
 * line names. Library rules: -errno returns, no printing, no global mutable state.
 *
 * Units: tables count 512-byte sectors (begin, len); I/O calls take bytes relative to the target's
 * start, whole sectors (off and len multiples of 512), and never cross the target's end or a
 * boundary the target's max_io() gives. Every call may come from several threads at once. */
#ifndef PARTMAP_TARGET_H
#define PARTMAP_TARGET_H

#include "../dm.h"
#include "../vdev/vdev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PM_SECTOR 512u
#define PM_TARGET_ERROR_LEN 256

struct pm_target;
struct pm_dtab;

/* A device a table refers to. Opened once per table however many targets name it. */
struct pm_source {
	dev_t dev;                /* as tables print it */
	char name[32];            /* "major:minor" */
	struct pm_vdev *vdev;     /* I/O goes here */
	void *owner_data;         /* the environment's (what close_source needs) */
};

/* What the table's owner provides: how a device named in a table is found and opened, and where
 * events go. The userspace device mapper resolves its own devices to themselves (no loop device in
 * between); pm_target_env_default() opens block devices. */
struct pm_target_env {
	/* name: a path or "major:minor"; fill src->dev, src->name and src->vdev. -errno on failure
	 * (-ENODEV/-ENOENT when there is no such device). */
	int (*open_source)(void *arg, const char *name, bool read_only, struct pm_source *src);
	void (*close_source)(void *arg, struct pm_source *src);
	/* dm_table_event(): the device's event number goes up, waiters wake; NULL: ignored */
	void (*event)(void *arg);
	/* Call fn for every target of every live table of the owner (snapshot-origin finds the
	 * snapshots of its origin so); fn returns non-zero to stop, which is returned. The owner holds
	 * its lock during the walk: fn must not call back into the owner. NULL: only this table. */
	int (*each_target)(void *arg, int (*fn)(struct pm_target *ti, void *fnarg), void *fnarg);
	void *arg;
};

/* Block devices by path or major:minor, opened O_RDWR (O_RDONLY for read-only tables) and
 * O_CLOEXEC; anything that is not a block device is refused (-ENOTBLK), as the kernel does. */
const struct pm_target_env *pm_target_env_default(void);

struct pm_target_type {
	const char *name;
	uint32_t version[3];      /* for `dmsetup targets` */
	/* Its I/O is mostly the processor's work (a cipher), not a remapping and a copy: its requests
	 * run at normal priority where others may run ahead of user tasks (pm_udm_hooks.io_class). */
	bool cpu_bound;
	/* Parse argv[0..argc) (the words after the target name), check them with the kernel's rules
	 * and open the sources with pm_target_source(). On failure: pm_target_fail() with the kernel's
	 * message, everything released (dtr is not called). */
	int (*ctr)(struct pm_target *ti, unsigned argc, char **argv);
	void (*dtr)(struct pm_target *ti);
	int (*read)(struct pm_target *ti, uint64_t off, void *buf, size_t len);
	/* NULL: writes fail with -EIO */
	int (*write)(struct pm_target *ti, uint64_t off, const void *buf, size_t len);
	/* Make completed writes durable. NULL: the table flushes every source once. */
	int (*flush)(struct pm_target *ti);
	/* NULL: discards fail with -EOPNOTSUPP */
	int (*discard)(struct pm_target *ti, uint64_t off, uint64_t len);
	/* The status text after "<start> <len> <type> ": INFO (dmsetup status) or TABLE (dmsetup table,
	 * keys in full: dmsetup hides them). NULL: empty. */
	void (*status)(struct pm_target *ti, bool table, char *buf, size_t len);
	/* `dmsetup message`: 0, or -EINVAL with ti->error set. NULL: -EINVAL. */
	int (*message)(struct pm_target *ti, unsigned argc, char **argv, char *reply, size_t reply_len);
	/* Before the table stops serving (suspend, swap, remove): release what is held back (delay). */
	void (*presuspend)(struct pm_target *ti);
	/* After the table became live or was resumed. */
	void (*resume)(struct pm_target *ti);
	/* Bytes from off (relative to the target) that one call may cover (a stripe chunk's rest); NULL:
	 * no limit. */
	uint64_t (*max_io)(struct pm_target *ti, uint64_t off);
	/* The optimal I/O size in bytes that the target sets itself, as the kernel's io_hints do
	 * (striped, raid); NULL: its devices' (pm_dtab_io_opt). */
	uint32_t (*io_opt)(const struct pm_target *ti);
};

struct pm_target {
	const struct pm_target_type *type;
	struct pm_dtab *table;
	uint64_t begin, len;      /* sectors */
	bool read_only;           /* the table was loaded read-only */
	unsigned block_size;      /* the logical block size it needs (crypt sector_size); 0 = 512 */
	void *priv;
	char error[PM_TARGET_ERROR_LEN]; /* the constructor's or a message's failure, the kernel's words */
	struct pm_source **used;  /* the devices it opened (pm_target_source), each once */
	size_t nused, used_cap;
};

/* The registry: by name, and every type present (fills out, at most max; returns how many). */
const struct pm_target_type *pm_target_type_find(const char *name);
size_t pm_target_type_list(const struct pm_target_type **out, size_t max);

/* For constructors: open a device named in the table (see pm_target_env). -errno with ti->error set
 * ("Device lookup failed" as the kernel says). */
int pm_target_source(struct pm_target *ti, const char *name, struct pm_source **out);
/* Set ti->error and return err. */
int pm_target_fail(struct pm_target *ti, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* dm_table_event() for the table's device. */
void pm_target_event(struct pm_target *ti);
/* The environment the table was built with (each_target for snapshot-origin). */
const struct pm_target_env *pm_target_env(const struct pm_target *ti);
/* Parse a decimal number the way the kernel's constructors do (sscanf "%llu%c": digits only, no sign,
 * no trailing characters): 0 or -EINVAL. */
int pm_target_u64(const char *s, uint64_t *v);

/* ---- a table ---- */

struct pm_dtab {
	struct pm_target *t;
	size_t n;
	uint64_t sectors;         /* the table's length */
	bool read_only;
	unsigned block_size;      /* the largest a target needs (512 at least) */
	bool cpu_bound;           /* a target's type is (pm_target_type.cpu_bound) */
	struct pm_source **src;   /* the devices it refers to, each once */
	size_t nsrc, src_cap;
	const struct pm_target_env *env;
};

/* Build a table from targets as pm_dm_table_parse() gives them (contiguous from 0): each line's
 * parameters split into words as the kernel's dm_split_args does, its type looked up, its constructor
 * run. On failure *out is NULL and err (when not NULL) holds "<type>: <message>" as the kernel logs
 * it; every target built so far is destroyed. -EINVAL for a bad table, -ENOMEM, -errno from a
 * source. */
int pm_dtab_build(struct pm_dtab **out, const struct pm_dm_target *t, size_t n, bool read_only,
		   const struct pm_target_env *env, char *err, size_t err_len);
void pm_dtab_free(struct pm_dtab *tb);

/* I/O on the whole table: off and len bytes, whole sectors, inside the table; split at target and
 * max_io boundaries. */
int pm_dtab_read(struct pm_dtab *tb, uint64_t off, void *buf, size_t len);
int pm_dtab_write(struct pm_dtab *tb, uint64_t off, const void *buf, size_t len);
int pm_dtab_flush(struct pm_dtab *tb);
/* The table's optimal I/O size in bytes, as the kernel stacks it when a table goes live: each
 * target's own (pm_target_type.io_opt) or else the least common multiple of its devices' (dev_io_opt),
 * then the least common multiple over the targets, zeros left out; 32 bits, as the kernel keeps it. */
uint32_t pm_dtab_io_opt(const struct pm_dtab *tb, uint32_t (*dev_io_opt)(void *arg, const struct pm_source *src),
			void *arg);
int pm_dtab_discard(struct pm_dtab *tb, uint64_t off, uint64_t len);
void pm_dtab_presuspend(struct pm_dtab *tb);
void pm_dtab_resume(struct pm_dtab *tb);
/* The table as a vdev (not owning it). */
void pm_dtab_vdev(struct pm_dtab *tb, struct pm_vdev *v);

/* Each target's status text (INFO or TABLE) as pm_dm_target entries (params malloc'd; free with
 * pm_dm_targets_free). */
int pm_dtab_status(struct pm_dtab *tb, bool table, struct pm_dm_target **out, size_t *n);
/* `dmsetup message` to the target at sector: the message split into words. err as for build. */
int pm_dtab_message(struct pm_dtab *tb, uint64_t sector, const char *msg, char *reply, size_t reply_len,
		     char *err, size_t err_len);

/* Split a parameter string into words as the kernel's dm_split_args (white space separates, a
 * backslash escapes the next character). *argv is one allocation holding the words; free() it. */
int pm_split_args(const char *params, unsigned *argc, char ***argv);

#endif
