/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Session ids (UUIDv4 from the kernel's CSPRNG). Core: runs in httpd's
 * workers, which make and parse ids, and in the unit tests and fuzzers.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "pyexec_id.h"

int pyexec_id_generate(pyexec_id_t *id)
{
    size_t got = 0;

    while (got < sizeof(id->b)) {
        ssize_t n = getrandom(id->b + got, sizeof(id->b) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        got += (size_t)n;
    }
    id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40);   /* version 4 */
    id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return 0;
}

void pyexec_id_format(const pyexec_id_t *id, char *out)
{
    static const char hex[] = "0123456789abcdef";
    int i, o = 0;

    for (i = 0; i < PYEXEC_ID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[id->b[i] >> 4];
        out[o++] = hex[id->b[i] & 0x0f];
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int pyexec_id_parse(const char *s, size_t len, pyexec_id_t *id)
{
    size_t i;
    int o = 0;

    if (!s || len != PYEXEC_ID_STRLEN) {
        return -1;
    }
    for (i = 0; i < len;) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return -1;
            }
            i++;
            continue;
        }
        hi = hexval(s[i]);
        lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        id->b[o++] = (uint8_t)((hi << 4) | lo);
        i += 2;
    }
    return 0;
}

int pyexec_route_valid(const char *s, size_t len)
{
    size_t i;

    if (!s || len < 1 || len > PYEXEC_ROUTE_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

int pyexec_id_parse_routed(const char *s, size_t len, pyexec_id_t *id,
                           char *route)
{
    size_t rlen;

    route[0] = '\0';
    if (!s || len < PYEXEC_ID_STRLEN) {
        return -1;
    }
    if (len == PYEXEC_ID_STRLEN) {
        return pyexec_id_parse(s, len, id);
    }
    rlen = len - PYEXEC_ID_STRLEN - 1;
    if (s[PYEXEC_ID_STRLEN] != '.'
        || !pyexec_route_valid(s + PYEXEC_ID_STRLEN + 1, rlen)
        || pyexec_id_parse(s, PYEXEC_ID_STRLEN, id) != 0) {
        return -1;
    }
    memcpy(route, s + PYEXEC_ID_STRLEN + 1, rlen);
    route[rlen] = '\0';
    return 0;
}

void pyexec_id_format_routed(const pyexec_id_t *id, const char *route,
                             char *out)
{
    size_t rlen = route ? strlen(route) : 0;

    pyexec_id_format(id, out);
    if (rlen > 0 && rlen <= PYEXEC_ROUTE_MAX) {
        out[PYEXEC_ID_STRLEN] = '.';
        memcpy(out + PYEXEC_ID_STRLEN + 1, route, rlen + 1);
    }
}

/* One character of text as a URL carries it: itself, or what a %XX
 * escape stands for. Advances *i past it; never past a NUL. */
static int url_char(const char *s, size_t *i)
{
    if (s[*i] == '%' && hexval(s[*i + 1]) >= 0 && hexval(s[*i + 2]) >= 0) {
        int c = (hexval(s[*i + 1]) << 4) | hexval(s[*i + 2]);

        *i += 3;
        return c;
    }
    return s[*i] ? (unsigned char)s[(*i)++] : 0;
}

/* The length of the id-shaped text at s, 0 if there is none there; its
 * first hex digits, in lower case, to prefix. */
static size_t id_at(const char *s, char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    int k, n = 0;

    for (k = 0; k < PYEXEC_ID_STRLEN; k++) {
        int c = url_char(s, &i), v = c > 0 && c < 128 ? hexval((char)c) : -1;

        if (k == 8 || k == 13 || k == 18 || k == 23) {
            if (c != '-') {
                return 0;
            }
        }
        else if (v < 0) {
            return 0;
        }
        else if (n < PYEXEC_ID_PREFIX_LEN) {
            prefix[n++] = hex[v];
        }
    }
    return i;
}

size_t pyexec_id_redact(const char *s, char *out)
{
    const size_t mark = sizeof(PYEXEC_ID_REDACTED) - 1;
    size_t n = 0;

    while (*s) {
        char prefix[PYEXEC_ID_PREFIX_LEN], ignored[PYEXEC_ID_PREFIX_LEN];
        size_t len = id_at(s, prefix), k;

        if (!len) {
            *out++ = *s++;
            continue;
        }
        /* Runs may overlap ("...-aaaa" + an id reads as an id that ends
         * early): everything any run covers goes, or an id's tail would
         * stay. */
        for (k = 1; k < len; k++) {
            size_t more = id_at(s + k, ignored);

            if (k + more > len) {
                len = k + more;
            }
        }
        memcpy(out, prefix, PYEXEC_ID_PREFIX_LEN);
        memcpy(out + PYEXEC_ID_PREFIX_LEN, PYEXEC_ID_REDACTED, mark);
        out += PYEXEC_ID_PREFIX_LEN + mark;
        s += len;
        n++;
    }
    *out = '\0';
    return n;
}

int pyexec_id_equal(const pyexec_id_t *a, const pyexec_id_t *b)
{
    return memcmp(a->b, b->b, PYEXEC_ID_BYTES) == 0;
}

int pyexec_id_is_zero(const pyexec_id_t *id)
{
    static const pyexec_id_t zero;

    return pyexec_id_equal(id, &zero);
}

uint32_t pyexec_id_hash(const pyexec_id_t *id)
{
    return (uint32_t)id->b[0] | ((uint32_t)id->b[1] << 8)
           | ((uint32_t)id->b[2] << 16) | ((uint32_t)id->b[3] << 24);
}
