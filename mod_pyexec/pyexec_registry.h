/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The session registry: a fixed table of helper slots that lives in
 * shared memory and is used by every httpd worker and by the supervisor.
 * Lists and hash chains are linked by slot index, never by pointer,
 * because each process maps the segment at its own address.
 *
 * This file is the table's only writer: others read slots and counters
 * (under the lock, or for a guess without it) but change them only
 * through the functions below, so that the invariants the unit tests
 * check (tests/unit/test_registry.c) hold for every write.
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
#include "pyexec_protocol.h"    /* PYEXEC_TOKEN_LEN */

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

/* The limits a helper is started with and its session keeps, whatever
 * a graceful restart brings meanwhile. */
typedef struct {
    int64_t  timeout;       /* usec per execution */
    uint32_t max_output;    /* bytes per stream */
    uint32_t max_code;      /* bytes of source */
    uint32_t conf_gen;      /* the published settings they come from */
    uint32_t max_display;   /* bytes of display items per run */
} pyexec_slot_limits_t;

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
    uint8_t  token[PYEXEC_TOKEN_LEN];  /* what an EXEC to it must carry */
    pyexec_slot_limits_t limits;
    uint64_t mem_bytes;     /* heap in use after the last execution */
    uint64_t client;        /* who made the session: a hash of its
                               address (PyExecMaxClientSessions) */
    int64_t  busy_since;    /* monotonic usec: the first request now in
                               flight was counted in (if inflight > 0) */
    int64_t  busy_total;    /* usec with requests in flight before that:
                               the CPU time its helper may have used */
} pyexec_slot_t;

typedef struct {
    uint64_t sessions_created;
    uint64_t sessions_ended[PYEXEC_END_NREASONS];
    uint64_t executions;
    uint64_t helpers_spawned;
    uint64_t rejected_full;
    uint64_t rate_limited;
    uint64_t rejected_client;   /* PyExecMaxClientSessions reached */
    uint64_t rejected_queue;    /* PyExecMaxQueue reached */
    uint64_t evicted_lru;       /* ended for a new one (PyExecEvictIdle) */
    uint64_t cpu_overruns;      /* helpers killed for CPU used outside
                                   their runs */
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
    uint32_t running;           /* requests counted in and not yet out,
                                   recounted by each full sweep: it only
                                   steers workers' spinning */
    int64_t  last_sweep;        /* monotonic usec of the supervisor's last
                                   scan: it is alive (the health check) */
    pyexec_reg_stats_t stats;
    /* int32_t buckets[nbuckets]; pyexec_slot_t slots[nslots]; follow */
} pyexec_registry_t;

/* Bytes of shared memory a table of nslots needs. */
size_t pyexec_registry_size(uint32_t nslots);

/* Lay out a fresh table in mem (at least pyexec_registry_size bytes). */
pyexec_registry_t *pyexec_registry_init(void *mem, uint32_t nslots);

/* Use a table another process laid out; NULL if mem holds none. */
pyexec_registry_t *pyexec_registry_attach(void *mem);

/* Slot idx to read (NULL if out of range): it changes only through the
 * functions below. */
const pyexec_slot_t *pyexec_reg_slot(const pyexec_registry_t *reg,
                                     int32_t idx);

/* Forget every helper (a new supervisor starts with none). Generations
 * keep counting so that nothing addressed to an old helper matches. */
void pyexec_reg_reset(pyexec_registry_t *reg);

/* --- supervisor side ------------------------------------------------ */

/* Take a free slot for a helper about to be spawned, with the limits its
 * session will keep and the secret an EXEC to it must carry. */
int32_t pyexec_reg_spawn_begin(pyexec_registry_t *reg, int64_t now,
                               const pyexec_slot_limits_t *limits,
                               const uint8_t token[PYEXEC_TOKEN_LEN]);
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
/* The zygote is gone: spawns it was asked for and never reported a pid
 * for will never start. Frees them; returns how many. */
uint32_t pyexec_reg_drop_unstarted(pyexec_registry_t *reg);

/* Whether new helpers start: a helper became ready confined by these
 * layers (PYEXEC_LAYER_*; returns 1 if they differ from the last one's),
 * or helpers keep failing to start (workers then stop waiting for
 * spares). Both show on the status page. */
int pyexec_reg_spawn_healthy(pyexec_registry_t *reg, uint32_t layers);
void pyexec_reg_spawn_failing(pyexec_registry_t *reg);

/* What the supervisor's scan ends (every SCAN_INTERVAL_MS). */
typedef struct {
    int64_t idle_timeout;       /* a session idle this long: IDLE */
    int64_t deadline_slack;     /* a run this far past its deadline (its
                                   worker gone, or it would have): TIMEOUT */
    int64_t spawn_timeout;      /* a spawn not ready this long after it
                                   began: SPAWN_FAILED */
    uint32_t conf_gen;          /* a spare made with other settings:
                                   EVICTED */
} pyexec_sweep_t;

/* One scan of the table, whose time goes in last_sweep: ends what the
 * policy says and puts in pids the helpers to SIGKILL, those just ended
 * and those ended earlier whose kill may have been lost (a dying slot
 * with a pid). Returns how many; at most max, the rest wait for the
 * next scan. A scan that saw every
 * slot also sets `running` from the live slots (see count_in). */
size_t pyexec_reg_sweep(pyexec_registry_t *reg, int64_t now,
                        const pyexec_sweep_t *policy, int32_t *pids,
                        size_t max);

/* The run time the helper of gen in idx may have used since it became
 * ready, in usec up to now: as long as its session had requests in
 * flight, as its workers counted them in and out. A helper has one
 * thread, so an honest one never uses more; one that does is running
 * code nobody is waiting for (user code that answered for its helper
 * and went on). -1 if idx no longer holds that helper, spare or live. */
int64_t pyexec_reg_busy_usec(const pyexec_registry_t *reg, int32_t idx,
                             uint32_t gen, int64_t now);

/* End the session of gen in idx as a timeout because its helper used
 * CPU beyond its runs, and count it. Returns the pid to kill, or 0. */
int32_t pyexec_reg_end_overrun(pyexec_registry_t *reg, int32_t idx,
                               uint32_t gen);

/* --- worker side ---------------------------------------------------- */

typedef enum {
    PYEXEC_CLAIM_OK = 0,
    PYEXEC_CLAIM_FULL,      /* PyExecMaxSessions live already */
    PYEXEC_CLAIM_NO_SPARE,  /* room, but no ready helper yet */
    PYEXEC_CLAIM_DUPLICATE, /* the id is already live (never in practice) */
    PYEXEC_CLAIM_CLIENT_FULL,   /* this client has its
                                   PyExecMaxClientSessions live already */
} pyexec_claim_t;

/* A new session's request for a helper, and what it did. */
typedef struct {
    uint32_t max_live;          /* PyExecMaxSessions */
    uint32_t max_per_client;    /* PyExecMaxClientSessions; 0: no cap */
    uint64_t client;            /* who asks: a hash of its address */
    int evict_idle;             /* PyExecEvictIdle: at max_live, end the
                                   idle session used longest ago */
    /* out */
    int32_t idx;                /* the slot claimed */
    int32_t evicted_idx;        /* a session ended to make room, if */
    uint32_t evicted_gen;       /* evicted_pid > 0: the supervisor must */
    int32_t evicted_pid;        /* kill its helper */
    int64_t evicted_idle;       /* usec it had been idle */
} pyexec_claim_req_t;

/* Bind a spare helper to a new session id. */
pyexec_claim_t pyexec_reg_claim(pyexec_registry_t *reg, const pyexec_id_t *id,
                                int64_t now_mono, int64_t now_wall,
                                pyexec_claim_req_t *cr);

/* In how many usec from now the first live session (of client, unless
 * NULL) would end by idle expiry if nobody used it again: what a client
 * refused for want of room may be told to wait. A session in use counts
 * busy_left from now (a whole idle timeout; with eviction, as an idle
 * one ends at once, its run's limit). 0 if there are none. */
int64_t pyexec_reg_next_expiry(const pyexec_registry_t *reg, int64_t now,
                               int64_t idle_timeout, int64_t busy_left,
                               const uint64_t *client);

/* The live slot of a session, or PYEXEC_REG_NONE. */
int32_t pyexec_reg_lookup(pyexec_registry_t *reg, const pyexec_id_t *id);

/* What a worker takes from a session's slot for one request. */
typedef struct {
    uint32_t gen;               /* of the helper it was counted in on */
    uint32_t ahead;             /* requests counted in before this one */
    uint32_t ticket;            /* its place in the session's queue */
    pyexec_slot_limits_t limits;
    uint8_t token[PYEXEC_TOKEN_LEN];
} pyexec_reg_ticket_t;

/* Count a request in on the live slot idx: idle expiry leaves the session
 * alone, the next request queues behind it, and the supervisor's
 * backstop deadline covers every run counted in. 0; -1 if idx holds no
 * live session; 1 (and counted on the status page) if max_ahead
 * requests are counted in already (PyExecMaxQueue, plus the one
 * running). Every request counted in (0) is counted out. */
int pyexec_reg_count_in(pyexec_registry_t *reg, int32_t idx, int64_t now,
                        uint32_t max_ahead, pyexec_reg_ticket_t *t);

/* The request counted in with gen on idx is over. It ran (the session's
 * memory is then *mem_bytes, unless NULL) or not; end is the reason it
 * ended the session, or PYEXEC_END_NONE. Returns the pid to kill when
 * it ended the session, else 0. */
int32_t pyexec_reg_count_out(pyexec_registry_t *reg, int32_t idx,
                             uint32_t gen, int64_t now,
                             const uint64_t *mem_bytes,
                             pyexec_end_reason_t end);

/* Why the helper of gen in idx ended: PYEXEC_END_NONE while it has not
 * been reaped, PYEXEC_END_CRASH if the slot has moved on without a
 * record of it. */
pyexec_end_reason_t pyexec_reg_end_reason(pyexec_registry_t *reg,
                                          int32_t idx, uint32_t gen);

/* A request refused by PyExecRateLimit, for the status page. */
void pyexec_reg_count_rate_limited(pyexec_registry_t *reg);

/* End the session in idx if it still is generation gen: it disappears
 * from lookups at once and the slot waits for its helper to be reaped.
 * A spawn whose pid is not known yet is freed at once. Returns the
 * helper's pid to kill, or 0 if there is nothing to do. */
int32_t pyexec_reg_end(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                       pyexec_end_reason_t reason);

const char *pyexec_slot_state_name(pyexec_slot_state_t st);
const char *pyexec_end_reason_name(pyexec_end_reason_t r);

#endif /* PYEXEC_REGISTRY_H */
