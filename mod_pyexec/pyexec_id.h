/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Session ids. An id is a capability: whoever holds it can run code in
 * that session, so ids are 122 random bits from the kernel's CSPRNG laid
 * out as a UUIDv4. No httpd or APR headers here.
 */
#ifndef PYEXEC_ID_H
#define PYEXEC_ID_H

#include <stddef.h>
#include <stdint.h>

#define PYEXEC_ID_BYTES   16
#define PYEXEC_ID_STRLEN  36   /* without the NUL */

typedef struct {
    uint8_t b[PYEXEC_ID_BYTES];
} pyexec_id_t;

/* Fill id with a fresh random UUIDv4. Returns 0, or -1 if the kernel
 * would not give randomness (never falls back to a weak source). */
int pyexec_id_generate(pyexec_id_t *id);

/* Canonical lower-case text form; out must hold PYEXEC_ID_STRLEN + 1. */
void pyexec_id_format(const pyexec_id_t *id, char *out);

/* Accepts exactly the 8-4-4-4-12 hex layout, either case, with nothing
 * around it. Returns 0 on success, -1 on anything else. */
int pyexec_id_parse(const char *s, size_t len, pyexec_id_t *id);

/* Many hosts (PyExecRoute): a session id as clients see it is the UUID,
 * then a dot and the route of the host that holds the session, the
 * form mod_proxy_balancer's stickiness reads ("the part after the dot").
 * A route is 1 to PYEXEC_ROUTE_MAX of [A-Za-z0-9_-]; it is no secret,
 * so it may travel where the id may not (a cookie, a URL). */
#define PYEXEC_ROUTE_MAX      32
#define PYEXEC_ID_TEXT_MAX    (PYEXEC_ID_STRLEN + 1 + PYEXEC_ROUTE_MAX)

/* 1 if s[0..len) is a route. */
int pyexec_route_valid(const char *s, size_t len);

/* "<uuid>" or "<uuid>.<route>": route (PYEXEC_ROUTE_MAX + 1 bytes)
 * gets the route, or "" when there is none. 0, or -1 as
 * pyexec_id_parse. */
int pyexec_id_parse_routed(const char *s, size_t len, pyexec_id_t *id,
                           char *route);

/* The text form with ".<route>" after it unless route is NULL or "";
 * out must hold PYEXEC_ID_TEXT_MAX + 1. */
void pyexec_id_format_routed(const pyexec_id_t *id, const char *route,
                             char *out);

/* What a log line or a note may carry of an id: its first 8 hex digits,
 * 32 of its 122 random bits (the other 90 keep it unguessable), and in
 * a request line that prefix and PYEXEC_ID_REDACTED. */
#define PYEXEC_ID_PREFIX_LEN  8
#define PYEXEC_ID_REDACTED    "..."

/* s with every run shaped like an id (the 8-4-4-4-12 layout, either
 * case, each character as itself or %-escaped) replaced by its prefix,
 * in lower case, and PYEXEC_ID_REDACTED; the rest copied. out must hold
 * strlen(s) + 1: the result is never longer. Returns how many runs were
 * replaced. */
size_t pyexec_id_redact(const char *s, char *out);

int pyexec_id_equal(const pyexec_id_t *a, const pyexec_id_t *b);
int pyexec_id_is_zero(const pyexec_id_t *id);

/* Bucket hash; ids are random, so their own bits are a fine hash. */
uint32_t pyexec_id_hash(const pyexec_id_t *id);

#endif /* PYEXEC_ID_H */
