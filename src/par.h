/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A few helper threads that take parts of one request's work (crypt's cipher calls, striped's stripes) so
 * that a large request is not held to one core: the caller runs parts too, and takes back every part
 * no helper has started, so a busy machine costs no more than a wake-up. */
#ifndef PARTMAP_PAR_H
#define PARTMAP_PAR_H

struct pm_par;

/* The CPUs this process may run on (its affinity: taskset, a container's cpuset; else all online),
 * at least 1. */
unsigned pm_cpus(void);

/* The number of helpers worth starting here: pm_cpus() but one, at most 7 (0 on one CPU). */
unsigned pm_par_helpers(void);

/* a pool of `helpers` threads (0 to 64), started at the first run that has parts to share; they
 * block every signal. -errno */
int pm_par_new(unsigned helpers, struct pm_par **out);

/* stop and join the helpers (no pm_par_run may be running); NULL is ignored */
void pm_par_free(struct pm_par *p);

/* fn(arg, i) for each i in [0, n), on the caller's thread and the helpers', returning when all have
 * ended: the first negative result, or 0. p NULL: all on the caller's thread. */
int pm_par_run(struct pm_par *p, unsigned n, int (*fn)(void *arg, unsigned i), void *arg);

#endif
