/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The settings httpd's parent publishes for the supervisor, in shared
 * memory. The parent writes them at every start and graceful restart
 * (pyexec_settings_publish); the supervisor, which a graceful restart
 * keeps, takes up each new set (pyexec_settings_take) and makes new
 * helpers with it. Values a session is created with are copied into its
 * slot, so a session keeps the limits it started with.
 *
 * Not under the registry lock, which a stuck worker could hold and so
 * stall a restart: a sequence lock. gen is odd while the parent writes
 * and changes when it is done; the reader copies and checks that gen was
 * the same even number before and after.
 *
 * No httpd or APR headers: the unit tests drive it in plain memory.
 */
#ifndef PYEXEC_SETTINGS_H
#define PYEXEC_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "pyexec_protocol.h"

typedef struct {
    uint32_t gen;               /* the sequence: odd while written */
    uint32_t spare_helpers;
    uint32_t max_sessions;
    uint32_t names_len;         /* bytes of blocked[] in use */
    uint32_t names_count;       /* names in it */
    uint32_t pad_;
    int64_t  idle_timeout;      /* usec */
    int64_t  timeout;           /* usec, per execution */
    pyexec_spawn_t spawn;       /* what every new helper gets; slot, gen
                                   and token are its own */
    char blocked[PYEXEC_SPAWN_NAMES_MAX];   /* NUL-separated names */
} pyexec_settings_t;

/* Add a module name to s's block list; -1 if the list is full (in bytes,
 * or PYEXEC_SPAWN_NAMES_COUNT_MAX names). */
int pyexec_settings_block(pyexec_settings_t *s, const char *name);

/* Write s (all of it but gen) into live for the supervisor. The only
 * writer is httpd's parent, one generation at a time. */
void pyexec_settings_publish(pyexec_settings_t *live,
                             const pyexec_settings_t *s);

/* Take up new settings: if live holds another generation than have,
 * copy it into out and return 1 (out->gen is then that generation).
 * Return 0 if nothing is new, or if the parent is writing just now (try
 * again later); out is scratch space then, possibly overwritten. */
int pyexec_settings_take(const pyexec_settings_t *live, uint32_t have,
                         pyexec_settings_t *out);

#endif /* PYEXEC_SETTINGS_H */
