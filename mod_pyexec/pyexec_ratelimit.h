/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Per-client token buckets in shared memory (PyExecRateLimit). A fixed
 * table, open addressing on a hash of the client's address; when every
 * probed entry is taken, the one idle longest is reused, so a flood of
 * new addresses costs old, quiet clients their history and nothing else.
 *
 * Callers hold the registry mutex. No httpd or APR headers here.
 */
#ifndef PYEXEC_RATELIMIT_H
#define PYEXEC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define PYEXEC_RL_KEY_MAX 48    /* an IPv6 address in text fits */

typedef struct pyexec_ratelimit_t pyexec_ratelimit_t;

size_t pyexec_ratelimit_size(uint32_t nentries);
pyexec_ratelimit_t *pyexec_ratelimit_init(void *mem, uint32_t nentries);

/* Take one token for `key`. rate is tokens per second (> 0), burst the
 * bucket's size (>= 1). Returns 1 if allowed; 0 if not, with the wait
 * until the next token in *retry_usec. */
int pyexec_ratelimit_take(pyexec_ratelimit_t *rl, const char *key,
                          int64_t now_usec, double rate, uint32_t burst,
                          int64_t *retry_usec);

#endif /* PYEXEC_RATELIMIT_H */
