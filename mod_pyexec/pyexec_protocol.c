/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Frames (pyexec_protocol.h). Core: runs in every process that speaks
 * them, httpd's parent (LOGFD), its workers, the supervisor, the zygote
 * and the session helpers.
 */
#include <stdio.h>
#include <string.h>

#include "pyexec_protocol.h"

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8)
           | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

void pyexec_frame_encode_hdr(unsigned char out[PYEXEC_FRAME_HDR_LEN],
                             uint16_t type, uint32_t flags, uint32_t length)
{
    put_u32(out, PYEXEC_PROTO_MAGIC);
    put_u16(out + 4, PYEXEC_PROTO_VERSION);
    put_u16(out + 6, type);
    put_u32(out + 8, flags);
    put_u32(out + 12, length);
}

pyexec_frame_status_t pyexec_frame_decode_hdr(const unsigned char *in,
                                              size_t inlen,
                                              uint32_t max_payload,
                                              pyexec_frame_hdr_t *hdr)
{
    if (inlen < PYEXEC_FRAME_HDR_LEN) {
        return PYEXEC_FRAME_SHORT;
    }
    hdr->magic = get_u32(in);
    hdr->version = get_u16(in + 4);
    hdr->type = get_u16(in + 6);
    hdr->flags = get_u32(in + 8);
    hdr->length = get_u32(in + 12);
    if (hdr->magic != PYEXEC_PROTO_MAGIC) {
        return PYEXEC_FRAME_BAD_MAGIC;
    }
    if (hdr->version != PYEXEC_PROTO_VERSION) {
        return PYEXEC_FRAME_BAD_VERSION;
    }
    if (max_payload > PYEXEC_FRAME_MAX_PAYLOAD) {
        max_payload = PYEXEC_FRAME_MAX_PAYLOAD;
    }
    if (hdr->length > max_payload) {
        return PYEXEC_FRAME_TOO_LARGE;
    }
    return PYEXEC_FRAME_OK;
}

const char *pyexec_frame_status_str(pyexec_frame_status_t st)
{
    switch (st) {
    case PYEXEC_FRAME_OK:          return "ok";
    case PYEXEC_FRAME_SHORT:       return "short frame header";
    case PYEXEC_FRAME_BAD_MAGIC:   return "bad frame magic";
    case PYEXEC_FRAME_BAD_VERSION: return "unsupported protocol version";
    case PYEXEC_FRAME_TOO_LARGE:   return "frame payload too large";
    }
    return "unknown frame status";
}

void pyexec_result_encode(unsigned char out[PYEXEC_RESULT_FIXED_LEN],
                          const pyexec_result_t *res)
{
    put_u32(out, res->status);
    put_u32(out + 4, res->flags);
    put_u32(out + 8, res->stdout_len);
    put_u32(out + 12, res->stderr_len);
    put_u64(out + 16, res->exec_usec);
    put_u64(out + 24, res->mem_bytes);
    put_u32(out + 32, res->display_len);
    put_u32(out + 36, res->display_count);
}

int pyexec_result_decode(const unsigned char *payload, size_t payload_len,
                         pyexec_result_t *res)
{
    uint64_t want;

    if (payload_len < PYEXEC_RESULT_FIXED_LEN) {
        return -1;
    }
    res->status = get_u32(payload);
    res->flags = get_u32(payload + 4);
    res->stdout_len = get_u32(payload + 8);
    res->stderr_len = get_u32(payload + 12);
    res->exec_usec = get_u64(payload + 16);
    res->mem_bytes = get_u64(payload + 24);
    res->display_len = get_u32(payload + 32);
    res->display_count = get_u32(payload + 36);
    /* 64 bit sum: three 32 bit lengths cannot wrap it */
    want = (uint64_t)PYEXEC_RESULT_FIXED_LEN + res->stdout_len
           + res->stderr_len + res->display_len;
    if (want != payload_len) {
        return -1;
    }
    return 0;
}

int pyexec_result_within(const pyexec_result_t *res, uint32_t max_output,
                         uint32_t max_display)
{
    uint64_t cap = (uint64_t)max_output + PYEXEC_RESULT_MARKER_MAX;
    uint64_t dcap = (uint64_t)max_display
                    + (uint64_t)PYEXEC_DISPLAY_ITEMS_MAX
                      * (PYEXEC_DISPLAY_ITEM_HDR_LEN
                         + PYEXEC_DISPLAY_MARKER_MAX);

    return res->stdout_len <= cap && res->stderr_len <= cap
           && res->display_len <= dcap
           && res->display_count <= PYEXEC_DISPLAY_ITEMS_MAX
           && (res->status == PYEXEC_EXEC_OK
               || res->status == PYEXEC_EXEC_MEMORY);
}

void pyexec_display_item_encode(unsigned char out[PYEXEC_DISPLAY_ITEM_HDR_LEN],
                                uint32_t stdout_offset, uint32_t len)
{
    put_u32(out, stdout_offset);
    put_u32(out + 4, len);
}

int pyexec_display_item_next(const unsigned char *section, size_t len,
                             size_t *pos, pyexec_display_item_t *item)
{
    size_t left;

    if (*pos >= len) {
        return 0;
    }
    left = len - *pos;
    if (left < PYEXEC_DISPLAY_ITEM_HDR_LEN) {
        return -1;
    }
    item->stdout_offset = get_u32(section + *pos);
    item->len = get_u32(section + *pos + 4);
    if (item->len > left - PYEXEC_DISPLAY_ITEM_HDR_LEN) {
        return -1;
    }
    item->json = section + *pos + PYEXEC_DISPLAY_ITEM_HDR_LEN;
    *pos += PYEXEC_DISPLAY_ITEM_HDR_LEN + item->len;
    return 1;
}

void pyexec_slot_msg_encode(unsigned char out[PYEXEC_SLOT_MSG_LEN],
                            const pyexec_slot_msg_t *m)
{
    put_u32(out, m->slot);
    put_u32(out + 4, m->gen);
    put_u32(out + 8, (uint32_t)m->pid);
    put_u32(out + 12, m->reason);
}

int pyexec_slot_msg_decode(const unsigned char *in, size_t len,
                           pyexec_slot_msg_t *m)
{
    if (len != PYEXEC_SLOT_MSG_LEN) {
        return -1;
    }
    m->slot = get_u32(in);
    m->gen = get_u32(in + 4);
    m->pid = (int32_t)get_u32(in + 8);
    m->reason = get_u32(in + 12);
    return 0;
}

void pyexec_spawn_encode(unsigned char out[PYEXEC_SPAWN_FIXED_LEN],
                         const pyexec_spawn_t *sp)
{
    put_u32(out, sp->slot);
    put_u32(out + 4, sp->gen);
    put_u64(out + 8, sp->memory_limit);
    put_u32(out + 16, sp->max_output);
    put_u32(out + 20, sp->cpu_seconds);
    put_u32(out + 24, sp->max_code);
    put_u32(out + 28, sp->flags);
    memcpy(out + 32, sp->token, sizeof(sp->token));
    put_u32(out + 48, sp->max_display);
}

int pyexec_spawn_decode(const unsigned char *in, size_t len,
                        pyexec_spawn_t *sp)
{
    if (len < PYEXEC_SPAWN_FIXED_LEN) {
        return -1;
    }
    sp->slot = get_u32(in);
    sp->gen = get_u32(in + 4);
    sp->memory_limit = get_u64(in + 8);
    sp->max_output = get_u32(in + 16);
    sp->cpu_seconds = get_u32(in + 20);
    sp->max_code = get_u32(in + 24);
    sp->flags = get_u32(in + 28);
    memcpy(sp->token, in + 32, sizeof(sp->token));
    sp->max_display = get_u32(in + 48);
    return 0;
}

size_t pyexec_spawn_frame(unsigned char *out, size_t cap,
                          const pyexec_spawn_t *sp, const char *names,
                          size_t names_len)
{
    size_t len = PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN + names_len;

    if (names_len > PYEXEC_SPAWN_NAMES_MAX || len > cap) {
        return 0;
    }
    pyexec_frame_encode_hdr(out, PYEXEC_MSG_SPAWN, 0,
                            (uint32_t)(len - PYEXEC_FRAME_HDR_LEN));
    pyexec_spawn_encode(out + PYEXEC_FRAME_HDR_LEN, sp);
    if (names_len) {
        memcpy(out + PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN, names,
               names_len);
    }
    return len;
}

void pyexec_exec_encode(unsigned char out[PYEXEC_EXEC_FIXED_LEN],
                        const pyexec_exec_fixed_t *e)
{
    memcpy(out, e->token, PYEXEC_TOKEN_LEN);
    put_u32(out + PYEXEC_TOKEN_LEN, e->ticket);
    put_u32(out + PYEXEC_TOKEN_LEN + 4, e->stdin_len);
}

int pyexec_exec_decode(const unsigned char *in, size_t len,
                       pyexec_exec_fixed_t *e)
{
    if (len < PYEXEC_EXEC_FIXED_LEN) {
        return -1;
    }
    memcpy(e->token, in, PYEXEC_TOKEN_LEN);
    e->ticket = get_u32(in + PYEXEC_TOKEN_LEN);
    e->stdin_len = get_u32(in + PYEXEC_TOKEN_LEN + 4);
    return e->stdin_len <= len - PYEXEC_EXEC_FIXED_LEN ? 0 : -1;
}

int pyexec_helper_sockpath(char *buf, size_t buflen, const char *dir,
                           uint32_t slot, uint32_t gen)
{
    int n = snprintf(buf, buflen, "%s/h%u-%u.sock", dir, slot, gen);

    if (n < 0 || (size_t)n >= buflen) {
        return -1;
    }
    return n;
}

void pyexec_layers_format(uint32_t layers, char *buf, size_t len)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {PYEXEC_LAYER_SECCOMP, "seccomp"},
        {PYEXEC_LAYER_LANDLOCK, "landlock"},
        {PYEXEC_LAYER_LANDLOCK_NET, "landlock-net"},
        {PYEXEC_LAYER_LANDLOCK_SCOPE, "landlock-scope"},
        {PYEXEC_LAYER_MOUNTNS, "mountns"},
        {PYEXEC_LAYER_USERNS, "userns"},
        {PYEXEC_LAYER_NETNS, "netns"},
        {PYEXEC_LAYER_PIDNS, "pidns"},
        {PYEXEC_LAYER_IPCNS, "ipcns"},
        {PYEXEC_LAYER_UTSNS, "utsns"},
        {PYEXEC_LAYER_NO_NEW_PRIVS, "no-new-privs"},
        {PYEXEC_LAYER_UNPRIVILEGED, "unprivileged"},
        {PYEXEC_LAYER_RLIMITS, "rlimits"},
    };
    size_t used = 0, i;

    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int n;

        if (!(layers & names[i].bit)) {
            continue;
        }
        n = snprintf(buf + used, len - used, "%s%s", used ? " " : "",
                     names[i].name);
        if (n < 0 || (size_t)n >= len - used) {
            break;
        }
        used += (size_t)n;
    }
    if (used == 0) {
        snprintf(buf, len, "none");
    }
}
