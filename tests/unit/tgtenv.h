/* A target environment for unit tests: device names ("7:0", or any word) mapped to regular files,
 * opened as vdevs, with events counted. */
#ifndef PARTMAP_TEST_TGTENV_H
#define PARTMAP_TEST_TGTENV_H

#include "target/target.h"

#include <pthread.h>

#define TGTENV_MAX 16

struct tgtenv {
	struct pm_target_env env;
	struct {
		char name[32];
		char path[256];
		dev_t dev;
		bool made;        /* a file of tgtenv_file's: removed by tgtenv_cleanup */
		struct pm_vdev *vdev; /* tgtenv_add_vdev's: served by this (another table) */
	} dev[TGTENV_MAX];
	unsigned n;
	unsigned events;
	unsigned opens;           /* sources open now */
	/* the live tables each_target walks (tgtenv_live) */
	pthread_mutex_t lock;
	struct pm_dtab *live[TGTENV_MAX];
	unsigned nlive;
};

/* An environment with no devices yet. */
void tgtenv_init(struct tgtenv *e);
/* Name a file as a device ("major:minor" names give that number; others a made-up one). */
void tgtenv_add(struct tgtenv *e, const char *name, const char *path);
/* A new temporary file of size bytes filled by fill(i) for each byte i (NULL: zeros), named as a device; the
 * path is written to path (256 bytes). */
void tgtenv_file(struct tgtenv *e, const char *name, uint64_t size, uint8_t (*fill)(uint64_t i), char *path);
/* Build a table from text (as dmsetup reads it) in this environment: 0 or -errno, err filled. */
int tgtenv_build(struct tgtenv *e, const char *text, bool read_only, struct pm_dtab **out, char *err, size_t len);
/* len bytes of a file from off (asserts they are there). */
void tgtenv_pread(const char *path, uint64_t off, void *buf, size_t len);
/* Target i's status text, INFO or TABLE (malloc'd; NULL when there is none). */
char *tgtenv_status(struct pm_dtab *tb, bool table, size_t i);
/* Build text, which must be refused: true when it is, with nothing built and nothing left open
 * (err then holds the message). */
bool tgtenv_refused(struct tgtenv *e, const char *text, char *err, size_t len);
/* Name a vdev as a device (another table's, as the server hands a table its own devices); the vdev
 * must outlive the tables that use it. */
void tgtenv_add_vdev(struct tgtenv *e, const char *name, struct pm_vdev *v);
/* A table becomes live (each_target walks it; resumed) or stops being live (before it is freed). */
void tgtenv_live(struct tgtenv *e, struct pm_dtab *tb);
void tgtenv_unlive(struct tgtenv *e, struct pm_dtab *tb);
/* Remove the files made by tgtenv_file. */
void tgtenv_cleanup(struct tgtenv *e);

/* Two fillers for tgtenv_file whose bytes differ from each other's and from sector to sector. */
uint8_t tgtenv_fill_a(uint64_t i);
uint8_t tgtenv_fill_b(uint64_t i);
/* len bytes written to a file at off (asserts they are). */
void tgtenv_pwrite(const char *path, uint64_t off, const void *buf, size_t len);

#endif
