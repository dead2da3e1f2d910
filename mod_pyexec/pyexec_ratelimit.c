/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * PyExecRateLimit's token buckets, a table in shared memory. Core: laid
 * out by httpd's parent, used by its workers under the registry lock.
 */
#include <string.h>

#include "pyexec_ratelimit.h"

#define PROBES 8

typedef struct {
    char key[PYEXEC_RL_KEY_MAX];    /* "" when unused */
    double tokens;
    int64_t last;                   /* when tokens was computed */
} rl_entry_t;

struct pyexec_ratelimit_t {
    uint32_t nentries;              /* power of two */
    uint32_t pad_;
    rl_entry_t entries[];
};

static uint32_t pow2(uint32_t n)
{
    uint32_t p = 16;

    while (p < n) {
        p <<= 1;
    }
    return p;
}

size_t pyexec_ratelimit_size(uint32_t nentries)
{
    return sizeof(pyexec_ratelimit_t) + pow2(nentries) * sizeof(rl_entry_t);
}

pyexec_ratelimit_t *pyexec_ratelimit_init(void *mem, uint32_t nentries)
{
    pyexec_ratelimit_t *rl = mem;

    memset(mem, 0, pyexec_ratelimit_size(nentries));
    rl->nentries = pow2(nentries);
    return rl;
}

/* FNV-1a: addresses are not adversarial enough to need more, and an
 * attacker who collides buckets only evicts itself. */
static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

int pyexec_ratelimit_take(pyexec_ratelimit_t *rl, const char *key,
                          int64_t now_usec, double rate, uint32_t burst,
                          int64_t *retry_usec)
{
    char k[PYEXEC_RL_KEY_MAX];
    uint32_t h, i, mask = rl->nentries - 1;
    rl_entry_t *e = NULL, *empty = NULL, *lru = NULL;

    /* a key too long for the table is cut, never overflows it */
    strncpy(k, key, sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    h = hash(k);
    for (i = 0; i < PROBES && !e; i++) {
        rl_entry_t *c = &rl->entries[(h + i) & mask];

        if (c->key[0] == '\0') {
            if (!empty) {
                empty = c;
            }
        }
        else if (!strcmp(c->key, k)) {
            e = c;
        }
        else if (!lru || c->last < lru->last) {
            lru = c;
        }
    }
    if (!e) {
        /* a new client starts with a full bucket */
        e = empty ? empty : lru;
        memcpy(e->key, k, sizeof(k));
        e->tokens = burst;
        e->last = now_usec;
    }
    if (now_usec > e->last) {
        e->tokens += (double)(now_usec - e->last) * rate / 1e6;
        if (e->tokens > burst) {
            e->tokens = burst;
        }
        e->last = now_usec;
    }
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        *retry_usec = 0;
        return 1;
    }
    *retry_usec = (int64_t)((1.0 - e->tokens) * 1e6 / rate) + 1;
    return 0;
}
