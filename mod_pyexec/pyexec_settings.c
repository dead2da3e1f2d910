/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Runs in httpd's parent (publish) and in the supervisor (take); see
 * pyexec_settings.h for the sequence lock between them.
 */
#include <stddef.h>
#include <string.h>

#include "pyexec_settings.h"

int pyexec_settings_block(pyexec_settings_t *s, const char *name)
{
    size_t l = strlen(name) + 1;

    if (l > sizeof(s->blocked) - s->names_len
        || s->names_count >= PYEXEC_SPAWN_NAMES_COUNT_MAX) {
        return -1;
    }
    memcpy(s->blocked + s->names_len, name, l);
    s->names_len += (uint32_t)l;
    s->names_count++;
    return 0;
}

void pyexec_settings_publish(pyexec_settings_t *live,
                             const pyexec_settings_t *s)
{
    /* everything after gen */
    const size_t body = offsetof(pyexec_settings_t, spare_helpers);

    _Static_assert(offsetof(pyexec_settings_t, gen) == 0
                   && offsetof(pyexec_settings_t, spare_helpers)
                      == sizeof(uint32_t),
                   "gen comes first, alone");
    uint32_t gen = __atomic_load_n(&live->gen, __ATOMIC_RELAXED);

    /* odd while the body changes */
    __atomic_store_n(&live->gen, gen + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy((char *)live + body, (const char *)s + body, sizeof(*s) - body);
    __atomic_store_n(&live->gen, gen + 2, __ATOMIC_RELEASE);
}

int pyexec_settings_take(const pyexec_settings_t *live, uint32_t have,
                         pyexec_settings_t *out)
{
    uint32_t before = __atomic_load_n(&live->gen, __ATOMIC_ACQUIRE);

    if (before == have || (before & 1)) {
        return 0;               /* nothing new, or being written */
    }
    memcpy(out, live, sizeof(*out));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&live->gen, __ATOMIC_RELAXED) != before) {
        return 0;               /* torn: again next time round */
    }
    out->gen = before;
    return 1;
}
