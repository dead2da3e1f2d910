/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The session table (pyexec_registry.h). Core: laid out by httpd's
 * parent, then changed by the workers and the supervisor, always under
 * the registry lock and only through these functions.
 */
#include <string.h>

#include "pyexec_registry.h"

#define PYEXEC_REG_MAGIC 0x47455259u  /* "YREG" */

static size_t buckets_for(uint32_t nslots)
{
    size_t n = 16;

    /* at most half full, so chains stay short */
    while (n < (size_t)nslots * 2) {
        n <<= 1;
    }
    return n;
}

static int32_t *buckets(pyexec_registry_t *reg)
{
    return (int32_t *)(reg + 1);
}

static pyexec_slot_t *slots(pyexec_registry_t *reg)
{
    size_t off = sizeof(*reg) + reg->nbuckets * sizeof(int32_t);

    /* keep slots 8-byte aligned */
    off = (off + 7) & ~(size_t)7;
    return (pyexec_slot_t *)((char *)reg + off);
}

size_t pyexec_registry_size(uint32_t nslots)
{
    size_t off = sizeof(pyexec_registry_t) + buckets_for(nslots) * sizeof(int32_t);

    off = (off + 7) & ~(size_t)7;
    return off + (size_t)nslots * sizeof(pyexec_slot_t);
}

/* The writable slot idx, for this file's functions only. */
static pyexec_slot_t *slot_at(pyexec_registry_t *reg, int32_t idx)
{
    if (idx < 0 || (uint32_t)idx >= reg->nslots) {
        return NULL;
    }
    return &slots(reg)[idx];
}

const pyexec_slot_t *pyexec_reg_slot(const pyexec_registry_t *reg,
                                     int32_t idx)
{
    return slot_at((pyexec_registry_t *)reg, idx);
}

static void set_state(pyexec_registry_t *reg, pyexec_slot_t *s,
                      pyexec_slot_state_t st)
{
    reg->count[s->state]--;
    s->state = st;
    reg->count[st]++;
}

static void rebuild_lists(pyexec_registry_t *reg)
{
    uint32_t i;
    pyexec_slot_t *sl = slots(reg);

    for (i = 0; i < reg->nbuckets; i++) {
        buckets(reg)[i] = PYEXEC_REG_NONE;
    }
    memset(reg->count, 0, sizeof(reg->count));
    reg->helpers_failing = 0;
    reg->free_head = PYEXEC_REG_NONE;
    reg->spare_head = PYEXEC_REG_NONE;
    /* push in reverse so that low slots are handed out first */
    for (i = reg->nslots; i-- > 0;) {
        sl[i].state = PYEXEC_SLOT_FREE;
        sl[i].pid = 0;
        sl[i].inflight = 0;
        sl[i].deadline = 0;
        sl[i].kill_reason = PYEXEC_END_NONE;
        sl[i].hnext = PYEXEC_REG_NONE;
        memset(&sl[i].id, 0, sizeof(sl[i].id));
        sl[i].next = reg->free_head;
        reg->free_head = (int32_t)i;
    }
    reg->count[PYEXEC_SLOT_FREE] = reg->nslots;
}

pyexec_registry_t *pyexec_registry_init(void *mem, uint32_t nslots)
{
    pyexec_registry_t *reg = mem;

    memset(mem, 0, pyexec_registry_size(nslots));
    reg->magic = PYEXEC_REG_MAGIC;
    reg->nslots = nslots;
    reg->nbuckets = (uint32_t)buckets_for(nslots);
    rebuild_lists(reg);
    return reg;
}

pyexec_registry_t *pyexec_registry_attach(void *mem)
{
    pyexec_registry_t *reg = mem;

    if (!reg || reg->magic != PYEXEC_REG_MAGIC) {
        return NULL;
    }
    return reg;
}

void pyexec_reg_reset(pyexec_registry_t *reg)
{
    uint32_t i;
    pyexec_slot_t *sl = slots(reg);

    for (i = 0; i < reg->nslots; i++) {
        if (sl[i].state == PYEXEC_SLOT_LIVE) {
            reg->stats.sessions_ended[PYEXEC_END_EVICTED]++;
        }
        if (sl[i].state != PYEXEC_SLOT_FREE) {
            sl[i].ended_gen = sl[i].gen;
            sl[i].ended_reason = PYEXEC_END_EVICTED;
        }
    }
    rebuild_lists(reg);
}

/* --- hash of live sessions ------------------------------------------ */

static int32_t *bucket_of(pyexec_registry_t *reg, const pyexec_id_t *id)
{
    return &buckets(reg)[pyexec_id_hash(id) & (reg->nbuckets - 1)];
}

static void hash_unlink(pyexec_registry_t *reg, int32_t idx)
{
    pyexec_slot_t *sl = slots(reg);
    int32_t *link = bucket_of(reg, &sl[idx].id);

    while (*link != PYEXEC_REG_NONE) {
        if (*link == idx) {
            *link = sl[idx].hnext;
            sl[idx].hnext = PYEXEC_REG_NONE;
            return;
        }
        link = &sl[*link].hnext;
    }
}

int32_t pyexec_reg_lookup(pyexec_registry_t *reg, const pyexec_id_t *id)
{
    pyexec_slot_t *sl = slots(reg);
    int32_t idx = *bucket_of(reg, id);

    while (idx != PYEXEC_REG_NONE) {
        if (sl[idx].state == PYEXEC_SLOT_LIVE
            && pyexec_id_equal(&sl[idx].id, id)) {
            return idx;
        }
        idx = sl[idx].hnext;
    }
    return PYEXEC_REG_NONE;
}

/* --- singly linked index lists -------------------------------------- */

static int32_t list_pop(pyexec_registry_t *reg, int32_t *head)
{
    int32_t idx = *head;

    if (idx != PYEXEC_REG_NONE) {
        *head = slots(reg)[idx].next;
        slots(reg)[idx].next = PYEXEC_REG_NONE;
    }
    return idx;
}

static void list_push(pyexec_registry_t *reg, int32_t *head, int32_t idx)
{
    slots(reg)[idx].next = *head;
    *head = idx;
}

static void list_remove(pyexec_registry_t *reg, int32_t *head, int32_t idx)
{
    int32_t *link = head;

    while (*link != PYEXEC_REG_NONE) {
        if (*link == idx) {
            *link = slots(reg)[idx].next;
            slots(reg)[idx].next = PYEXEC_REG_NONE;
            return;
        }
        link = &slots(reg)[*link].next;
    }
}

/* --- supervisor side ------------------------------------------------ */

int32_t pyexec_reg_spawn_begin(pyexec_registry_t *reg, int64_t now,
                               const pyexec_slot_limits_t *limits,
                               const uint8_t token[PYEXEC_TOKEN_LEN])
{
    int32_t idx = list_pop(reg, &reg->free_head);
    pyexec_slot_t *s;

    if (idx == PYEXEC_REG_NONE) {
        return idx;
    }
    s = &slots(reg)[idx];
    s->gen++;
    s->pid = 0;
    s->kill_reason = PYEXEC_END_NONE;
    s->inflight = 0;
    s->next_ticket = 0;         /* what a new helper expects first */
    s->deadline = 0;
    s->executions = 0;
    s->mem_bytes = 0;
    s->client = 0;
    s->busy_since = 0;
    s->busy_total = 0;
    s->spawned_at = now;
    s->limits = *limits;
    memcpy(s->token, token, PYEXEC_TOKEN_LEN);
    memset(&s->id, 0, sizeof(s->id));
    set_state(reg, s, PYEXEC_SLOT_SPAWNING);
    reg->stats.helpers_spawned++;
    return idx;
}

int pyexec_reg_spawn_pid(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                         int32_t pid)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (!s || s->gen != gen || pid <= 0) {
        return -1;
    }
    /* the helper's own READY may overtake the zygote's report */
    if (s->pid == pid && s->state != PYEXEC_SLOT_FREE) {
        return 0;
    }
    if (s->state != PYEXEC_SLOT_SPAWNING || s->pid != 0) {
        return -1;
    }
    s->pid = pid;
    return 0;
}

int pyexec_reg_spawn_ready(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                           int32_t pid)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (!s || s->gen != gen || s->state != PYEXEC_SLOT_SPAWNING || pid <= 0
        || (s->pid != 0 && s->pid != pid)) {
        return -1;
    }
    s->pid = pid;
    set_state(reg, s, PYEXEC_SLOT_SPARE);
    list_push(reg, &reg->spare_head, idx);
    return 0;
}

int32_t pyexec_reg_find_pid(pyexec_registry_t *reg, int32_t pid)
{
    uint32_t i;
    pyexec_slot_t *sl = slots(reg);

    if (pid <= 0) {
        return PYEXEC_REG_NONE;
    }
    for (i = 0; i < reg->nslots; i++) {
        if (sl[i].pid == pid && sl[i].state != PYEXEC_SLOT_FREE) {
            return (int32_t)i;
        }
    }
    return PYEXEC_REG_NONE;
}

pyexec_end_reason_t pyexec_reg_reaped(pyexec_registry_t *reg, int32_t idx,
                                      pyexec_end_reason_t reason)
{
    pyexec_slot_t *s = slot_at(reg, idx);
    pyexec_end_reason_t why;

    if (!s || s->state == PYEXEC_SLOT_FREE) {
        return PYEXEC_END_NONE;
    }
    why = s->kill_reason != PYEXEC_END_NONE
          ? (pyexec_end_reason_t)s->kill_reason : reason;
    switch (s->state) {
    case PYEXEC_SLOT_LIVE:
        hash_unlink(reg, idx);
        reg->stats.sessions_ended[why]++;
        break;
    case PYEXEC_SLOT_SPARE:
        list_remove(reg, &reg->spare_head, idx);
        break;
    default:
        break;
    }
    s->ended_gen = s->gen;
    s->ended_reason = why;
    s->pid = 0;
    s->inflight = 0;
    s->deadline = 0;
    memset(&s->id, 0, sizeof(s->id));
    set_state(reg, s, PYEXEC_SLOT_FREE);
    list_push(reg, &reg->free_head, idx);
    return why;
}

uint32_t pyexec_reg_drop_unstarted(pyexec_registry_t *reg)
{
    uint32_t i, n = 0;
    pyexec_slot_t *sl = slots(reg);

    for (i = 0; i < reg->nslots; i++) {
        if (sl[i].state == PYEXEC_SLOT_SPAWNING && sl[i].pid == 0) {
            pyexec_reg_end(reg, (int32_t)i, sl[i].gen,
                           PYEXEC_END_SPAWN_FAILED);
            n++;
        }
    }
    return n;
}

int pyexec_reg_spawn_healthy(pyexec_registry_t *reg, uint32_t layers)
{
    int changed = reg->sandbox_layers != layers;

    reg->helpers_failing = 0;
    reg->sandbox_layers = layers;
    return changed;
}

void pyexec_reg_spawn_failing(pyexec_registry_t *reg)
{
    reg->helpers_failing = 1;
}

size_t pyexec_reg_sweep(pyexec_registry_t *reg, int64_t now,
                        const pyexec_sweep_t *policy, int32_t *pids,
                        size_t max)
{
    pyexec_slot_t *sl = slots(reg);
    uint32_t i, running = 0;
    size_t n = 0;

    reg->last_sweep = now;
    for (i = 0; i < reg->nslots && n < max; i++) {
        pyexec_slot_t *s = &sl[i];
        int32_t pid = 0;

        if (s->state == PYEXEC_SLOT_LIVE) {
            running += s->inflight;
        }
        if (s->state == PYEXEC_SLOT_LIVE && s->inflight == 0
            && now - s->last_use > policy->idle_timeout) {
            pid = pyexec_reg_end(reg, (int32_t)i, s->gen, PYEXEC_END_IDLE);
        }
        else if (s->state == PYEXEC_SLOT_LIVE && s->inflight > 0
                 && s->deadline
                 && now > s->deadline + policy->deadline_slack) {
            pid = pyexec_reg_end(reg, (int32_t)i, s->gen,
                                 PYEXEC_END_TIMEOUT);
        }
        else if (s->state == PYEXEC_SLOT_SPAWNING
                 && now - s->spawned_at > policy->spawn_timeout) {
            pid = pyexec_reg_end(reg, (int32_t)i, s->gen,
                                 PYEXEC_END_SPAWN_FAILED);
        }
        else if (s->state == PYEXEC_SLOT_SPARE
                 && s->limits.conf_gen != policy->conf_gen) {
            /* made with settings older than the supervisor's: live
             * sessions keep what they started with, spares are made
             * anew. One that was starting when they changed goes once
             * it is ready. */
            pid = pyexec_reg_end(reg, (int32_t)i, s->gen,
                                 PYEXEC_END_EVICTED);
        }
        else if (s->state == PYEXEC_SLOT_DYING && s->pid > 0) {
            /* ended by a worker whose KILL may never have reached the
             * supervisor (datagrams can be dropped): still its unreaped
             * child, so signalling it again is safe */
            pid = s->pid;
        }
        if (pid > 0) {
            pids[n++] = pid;
        }
    }
    /* Workers count runs in and out themselves; one whose process died
     * mid-request never counts out. Counted out later, a run of a
     * session ended meanwhile leaves the count low for a moment, never
     * high. */
    if (i == reg->nslots) {
        reg->running = running;
    }
    return n;
}

int64_t pyexec_reg_busy_usec(const pyexec_registry_t *reg, int32_t idx,
                             uint32_t gen, int64_t now)
{
    const pyexec_slot_t *s = pyexec_reg_slot(reg, idx);

    if (!s || s->gen != gen || (s->state != PYEXEC_SLOT_SPARE
                                && s->state != PYEXEC_SLOT_LIVE)) {
        return -1;
    }
    if (s->state == PYEXEC_SLOT_LIVE && s->inflight > 0
        && now > s->busy_since) {
        return s->busy_total + (now - s->busy_since);
    }
    return s->busy_total;
}

int32_t pyexec_reg_end_overrun(pyexec_registry_t *reg, int32_t idx,
                               uint32_t gen)
{
    int32_t pid = pyexec_reg_end(reg, idx, gen, PYEXEC_END_TIMEOUT);

    if (pid > 0) {
        reg->stats.cpu_overruns++;
    }
    return pid;
}

/* --- worker side ---------------------------------------------------- */

/* The live session used longest ago with nothing in flight. */
static int32_t least_recent_idle(pyexec_registry_t *reg)
{
    pyexec_slot_t *sl = slots(reg);
    int32_t best = PYEXEC_REG_NONE;

    for (uint32_t i = 0; i < reg->nslots; i++) {
        if (sl[i].state == PYEXEC_SLOT_LIVE && sl[i].inflight == 0
            && (best == PYEXEC_REG_NONE
                || sl[i].last_use < sl[best].last_use)) {
            best = (int32_t)i;
        }
    }
    return best;
}

static uint32_t client_live(pyexec_registry_t *reg, uint64_t client)
{
    pyexec_slot_t *sl = slots(reg);
    uint32_t n = 0;

    for (uint32_t i = 0; i < reg->nslots; i++) {
        n += sl[i].state == PYEXEC_SLOT_LIVE && sl[i].client == client;
    }
    return n;
}

pyexec_claim_t pyexec_reg_claim(pyexec_registry_t *reg, const pyexec_id_t *id,
                                int64_t now_mono, int64_t now_wall,
                                pyexec_claim_req_t *cr)
{
    int32_t idx, *bucket;
    pyexec_slot_t *s;

    cr->evicted_pid = 0;
    /* before any eviction: a client at its own cap makes no room for
     * itself at others' cost */
    if (cr->max_per_client
        && client_live(reg, cr->client) >= cr->max_per_client) {
        reg->stats.rejected_client++;
        return PYEXEC_CLAIM_CLIENT_FULL;
    }
    if (reg->count[PYEXEC_SLOT_LIVE] >= cr->max_live) {
        int32_t lru = cr->evict_idle ? least_recent_idle(reg)
                                     : PYEXEC_REG_NONE;

        if (lru == PYEXEC_REG_NONE
            || reg->count[PYEXEC_SLOT_LIVE] > cr->max_live) {
            reg->stats.rejected_full++;
            return PYEXEC_CLAIM_FULL;
        }
        if (reg->spare_head == PYEXEC_REG_NONE) {
            /* ending a session now would not start this one any sooner */
            return PYEXEC_CLAIM_NO_SPARE;
        }
        s = &slots(reg)[lru];
        cr->evicted_idx = lru;
        cr->evicted_gen = s->gen;
        cr->evicted_idle = now_mono - s->last_use;
        cr->evicted_pid = pyexec_reg_end(reg, lru, s->gen,
                                         PYEXEC_END_EVICTED);
        reg->stats.evicted_lru++;
    }
    if (pyexec_reg_lookup(reg, id) != PYEXEC_REG_NONE) {
        return PYEXEC_CLAIM_DUPLICATE;
    }
    idx = list_pop(reg, &reg->spare_head);
    if (idx == PYEXEC_REG_NONE) {
        return PYEXEC_CLAIM_NO_SPARE;
    }
    s = &slots(reg)[idx];
    s->id = *id;
    s->client = cr->client;
    s->created = now_wall;
    s->last_use = now_mono;
    s->inflight = 0;
    s->deadline = 0;
    s->executions = 0;
    bucket = bucket_of(reg, id);
    s->hnext = *bucket;
    *bucket = idx;
    set_state(reg, s, PYEXEC_SLOT_LIVE);
    reg->stats.sessions_created++;
    cr->idx = idx;
    return PYEXEC_CLAIM_OK;
}

int64_t pyexec_reg_next_expiry(const pyexec_registry_t *reg, int64_t now,
                               int64_t idle_timeout, int64_t busy_left,
                               const uint64_t *client)
{
    int64_t best = -1;

    for (uint32_t i = 0; i < reg->nslots; i++) {
        const pyexec_slot_t *s = pyexec_reg_slot(reg, (int32_t)i);
        int64_t left;

        if (s->state != PYEXEC_SLOT_LIVE
            || (client && s->client != *client)) {
            continue;
        }
        left = s->inflight ? busy_left : s->last_use + idle_timeout - now;
        if (left < 0) {
            left = 0;           /* the next scan ends it */
        }
        if (best < 0 || left < best) {
            best = left;
        }
    }
    return best < 0 ? 0 : best;
}

int pyexec_reg_count_in(pyexec_registry_t *reg, int32_t idx, int64_t now,
                        uint32_t max_ahead, pyexec_reg_ticket_t *t)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (!s || s->state != PYEXEC_SLOT_LIVE) {
        return -1;
    }
    if (s->inflight > max_ahead) {
        reg->stats.rejected_queue++;
        return 1;
    }
    if (s->inflight == 0) {
        s->busy_since = now;
    }
    s->inflight++;
    reg->running++;
    t->gen = s->gen;
    t->ahead = s->inflight - 1;
    t->ticket = s->next_ticket++;
    t->limits = s->limits;
    memcpy(t->token, s->token, PYEXEC_TOKEN_LEN);
    /* each run counted in ends within its own limit, or is killed */
    s->deadline = now + (int64_t)s->inflight * s->limits.timeout;
    return 0;
}

int32_t pyexec_reg_count_out(pyexec_registry_t *reg, int32_t idx,
                             uint32_t gen, int64_t now,
                             const uint64_t *mem_bytes,
                             pyexec_end_reason_t end)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (s && s->gen == gen) {
        if (s->inflight > 0) {
            s->inflight--;
            if (s->inflight == 0 && now > s->busy_since) {
                s->busy_total += now - s->busy_since;
            }
        }
        if (s->inflight == 0) {
            s->deadline = 0;
        }
        s->last_use = now;
        s->executions++;
        if (mem_bytes) {
            s->mem_bytes = *mem_bytes;
        }
    }
    reg->stats.executions++;
    if (reg->running > 0) {
        reg->running--;
    }
    /* gone from lookups before the worker answers, so the next request
     * for this id is told it no longer exists */
    return end != PYEXEC_END_NONE ? pyexec_reg_end(reg, idx, gen, end) : 0;
}

pyexec_end_reason_t pyexec_reg_end_reason(pyexec_registry_t *reg,
                                          int32_t idx, uint32_t gen)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (!s) {
        return PYEXEC_END_CRASH;
    }
    if (s->ended_gen == gen) {
        return (pyexec_end_reason_t)s->ended_reason;
    }
    /* reaped and reused already: its record is gone */
    return s->gen != gen ? PYEXEC_END_CRASH : PYEXEC_END_NONE;
}

void pyexec_reg_count_rate_limited(pyexec_registry_t *reg)
{
    reg->stats.rate_limited++;
}

int32_t pyexec_reg_end(pyexec_registry_t *reg, int32_t idx, uint32_t gen,
                       pyexec_end_reason_t reason)
{
    pyexec_slot_t *s = slot_at(reg, idx);

    if (!s || s->gen != gen) {
        return 0;
    }
    switch (s->state) {
    case PYEXEC_SLOT_LIVE:
        hash_unlink(reg, idx);
        reg->stats.sessions_ended[reason]++;
        break;
    case PYEXEC_SLOT_SPARE:
        list_remove(reg, &reg->spare_head, idx);
        break;
    case PYEXEC_SLOT_SPAWNING:
        if (s->pid == 0) {
            /* no process to kill or reap yet: free the slot now; the
             * zygote's late report carries a stale generation and the
             * supervisor kills whatever it names */
            s->kill_reason = reason;
            pyexec_reg_reaped(reg, idx, reason);
            return 0;
        }
        break;
    default:
        /* already dying or free: the first reason stands */
        return 0;
    }
    if (s->kill_reason == PYEXEC_END_NONE) {
        s->kill_reason = reason;
    }
    memset(&s->id, 0, sizeof(s->id));
    set_state(reg, s, PYEXEC_SLOT_DYING);
    return s->pid;
}

const char *pyexec_slot_state_name(pyexec_slot_state_t st)
{
    static const char *const names[] = {
        "free", "spawning", "spare", "live", "dying"
    };

    return (unsigned)st < PYEXEC_SLOT_NSTATES ? names[st] : "unknown";
}

const char *pyexec_end_reason_name(pyexec_end_reason_t r)
{
    static const char *const names[] = {
        "none", "idle", "timeout", "memory", "crash", "deleted", "evicted",
        "spawn-failed"
    };

    return (unsigned)r < PYEXEC_END_NREASONS ? names[r] : "unknown";
}
