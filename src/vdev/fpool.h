/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The threads that answer a FUSE session's requests: few while they keep busy on the processors,
 * more while some block or processors idle with requests waiting (the rules in fpool.c).
 * Library rules: -errno returns, no printing. */
#ifndef PARTMAP_FPOOL_H
#define PARTMAP_FPOOL_H

#include <stdbool.h>

struct fuse_session;

/* Answer se's requests until the session ends (fuse_session_exit, the mount gone; with signals, also
 * SIGINT, SIGTERM and SIGHUP through libfuse's handlers), with at most max_threads threads besides
 * the caller's, which watches them; with huge, requests are received in huge-page buffers where
 * that is safe (fpool.c; the session's max_write must be 1 MiB at most). 0, or -EIO when the
 * session failed or no thread could start. */
int pm_fpool_run(struct fuse_session *se, unsigned max_threads, bool signals, bool huge);

#endif
