/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The session registry: a fixed table of helper slots that lives in
 * shared memory and is read and written by every httpd worker and by
 * the supervisor. Lists and hash chains are linked by slot index, never
 * by pointer, because each process maps the segment at its own address.
 *
 * No function here locks: callers hold the registry's global mutex.
 * No httpd or APR headers here either, so the unit tests drive the
 * table directly in ordinary memory.
 */
#ifndef PYEXEC_REGISTRY_H
#define PYEXEC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "pyexec_id.h"

#define PYEXEC_REG_NONE (-1)

typedef enum {
    PYEXEC_SLOT_FREE = 0,   /* no helper */
    PYEXEC_SLOT_SPAWNING,   /* the zygote was asked for a helper */
    PYEXEC_SLOT_SPARE,      /* helper ready, no session yet */
    PYEXEC_SLOT_LIVE,       /* helper bound to a session */
    PYEXEC_SLOT_DYING,      /* session ended, helper not yet reaped */
    PYEXEC_SLOT_NSTATES
} pyexec_slot_state_t;

/* Why a helper (and with it a session) ended. */
typedef enum {
    PYEXEC_END_NONE = 0,
    PYEXEC_END_IDLE,        /* idle longer than PyExecSessionIdleTimeout */
    PYEXEC_END_TIMEOUT,     /* an execution ran past PyExecTimeout */
    PYEXEC_END_MEMORY,      /* PyExecMemoryLimit exceeded */
    PYEXEC_END_CRASH,       /* the interpreter died by itself */
    PYEXEC_END_DELETED,     /* ended on request */
    PYEXEC_END_EVICTED,     /* ended to make room or by a restart */
    PYEXEC_END_SPAWN_FAILED,/* never became ready */
    PYEXEC_END_NREASONS
} pyexec_end_reason_t;

typedef struct {
    pyexec_id_t id;         /* valid in LIVE only */
    uint32_t gen;           /* bumped every time the slot gets a helper */
    int32_t  pid;
    uint32_t state;         /* pyexec_slot_state_t */
    uint32_t kill_reason;   /* why somebody asked for this helper's death */
    int32_t  next;          /* free list or spare list */
    int32_t  hnext;         /* hash chain (LIVE only) */
    uint32_t inflight;      /* requests sent to or queued at the helper */
    uint32_t ended_gen;     /* the last generation that ended here ... */
    uint32_t ended_reason;  /* ... and why */
    uint32_t next_ticket;   /* the next request's place in the queue */
    int64_t  created;       /* wall clock, usec: when the session began */
    int64_t  last_use;      /* monotonic usec */
    int64_t  deadline;      /* monotonic usec; 0 while nothing runs */
    int64_t  spawned_at;    /* monotonic usec */
    uint64_t executions;
    uint8_t  token[16];     /* what an EXEC to this helper must carry */
    /* limits the helper was started with, which its session keeps */
    int64_t  timeout;       /* usec per execution */
    uint32_t max_output;    /* bytes per stream */
    uint32_t max_code;      /* bytes of source */
    uint64_t mem_bytes;     /* heap in use after the last execution */
    uint32_t conf_gen;      /* the settings its helper was made with */
    uint32_t pad_;
} pyexec_slot_t;

typedef struct {
    uint64_t sessions_created;
    uint64_t sessions_ended[PYEXEC_END_NREASONS];
    uint64_t executions;
    uint64_t helpers_spawned;
    uint64_t rejected_full;
    uint64_t rate_limited;
} pyexec_reg_stats_t;

typedef struct {
    uint32_t magic;
    uint32_t nslots;
    uint32_t nbuckets;      /* power of two */
    int32_t  free_head;
    int32_t  spare_head;
    uint32_t count[PYEXEC_SLOT_NSTATES];
    uint32_t sandbox_layers;    /* PYEXEC_LAYER_* the last helper reported */
    uint32_t helpers_failing;   /* new helpers keep failing to start */
    uint32_t running;           /* requests between attach and detach */
    pyexec_reg_stats_t stats;
    /* int32_t buckets[nbuckets]; pyexec_slot_t slots[nslots]; follow */
} pyexec_registry_t;

/* Bytes of shared memory a table of nslots needs. */
size_t pyexec_registry_size(uint32_t nslots);

/* Lay out a fresh table in mem (at least pyexec_registry_size bytes). */
pyexec_registry_t *pyexec_registry_init(void *mem, uint32_t nslots);

/* Use a table another process laid out; NULL if mem holds none. */
pyexec_registry_t *pyexec_registry_attach(void *mem);

pyexec_slot_t *pyexec_reg_slot(pyexec_registry_t *reg, int32_t idx);

/* Forget every helper (a new supervisor starts with none). Generations
 * keep counting so that nothing addressed to an old helper matches. */
void pyexec_reg_reset(pyexec_registry_t *reg);

/* --- supervisor side ------------------------------------------------ */

/* Take a free slot for a helper about to be spawned. */
int32_t pyexec_reg_spawn_begin(pyexec_registry_t *reg, int64_t now);
/* The zygote reported the pid. 0 on success (also when the helper's
 * READY came first with the same pid), -1 if stale. */
int pyexec_reg_spawn_pid(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                         int32_t pid);
/* The helper is listening: it becomes a spare. */
int pyexec_reg_spawn_ready(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                           int32_t pid);
/* Index of the slot whose helper has this pid, or PYEXEC_REG_NONE. */
int32_t pyexec_reg_find_pid(pyexec_registry_t *reg, int32_t pid);
/* The helper in idx was reaped; `reason` applies unless somebody had
 * already asked for its death. The slot becomes free. Returns the
 * reason recorded. */
pyexec_end_reason_t pyexec_reg_reaped(pyexec_registry_t *reg, int32_t idx,
                                      pyexec_end_reason_t reason);

/* --- worker side ---------------------------------------------------- */

typedef enum {
    PYEXEC_CLAIM_OK = 0,
    PYEXEC_CLAIM_FULL,      /* PyExecMaxSessions live already */
    PYEXEC_CLAIM_NO_SPARE,  /* room, but no ready helper yet */
    PYEXEC_CLAIM_DUPLICATE, /* the id is already live (never in practice) */
} pyexec_claim_t;

/* Bind a spare helper to a new session id. */
pyexec_claim_t pyexec_reg_claim(pyexec_registry_t *reg, const pyexec_id_t *id,
                                uint32_t max_live, int64_t now_mono,
                                int64_t now_wall, int32_t *idx_out);

/* The live slot of a session, or PYEXEC_REG_NONE. */
int32_t pyexec_reg_lookup(pyexec_registry_t *reg, const pyexec_id_t *id);

/* End the session in idx if it still is generation gen: it disappears
 * from lookups at once and the slot waits for its helper to be reaped.
 * A spawn whose pid is not known yet is freed at once. Returns the
 * helper's pid to kill, or 0 if there is nothing to do. */
int32_t pyexec_reg_end(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                       pyexec_end_reason_t reason);

const char *pyexec_slot_state_name(pyexec_slot_state_t st);
const char *pyexec_end_reason_name(pyexec_end_reason_t r);

#endif /* PYEXEC_REGISTRY_H */
