/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The wire format spoken between httpd workers, the supervisor, the
 * zygote and the session helpers.  Every message is one frame: a fixed
 * 16 byte header followed by `length` payload bytes.  All integers are
 * little endian so that a frame means the same thing to every side,
 * whatever compiler built it.
 *
 * This file must not include httpd or APR headers: the helper and the
 * unit tests link it without them.
 */
#ifndef PYEXEC_PROTOCOL_H
#define PYEXEC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PYEXEC_PROTO_MAGIC     0x58455950u   /* "PYEX" read as LE */
#define PYEXEC_PROTO_VERSION   4
#define PYEXEC_FRAME_HDR_LEN   16

/* No frame on any channel may carry more than this; a larger length is
 * treated as a protocol violation, never as an allocation request. */
#define PYEXEC_FRAME_MAX_PAYLOAD (64u * 1024u * 1024u)

typedef enum {
    /* worker -> helper */
    PYEXEC_MSG_EXEC     = 1,    /* payload: pyexec_exec_fixed, the
                                   run's stdin, then UTF-8 source */
    /* helper -> worker */
    PYEXEC_MSG_STARTED  = 2,    /* no payload: execution has begun */
    PYEXEC_MSG_RESULT   = 3,    /* payload: pyexec_result_t + stdout + stderr
                                   + display items */
    PYEXEC_MSG_SKIPPED  = 4,    /* no payload: not run, and never will be
                                   (its turn passed while it was missing) */
    PYEXEC_MSG_OUTPUT   = 5,    /* flags: PYEXEC_OUTPUT_*; payload: text
                                   as written, or one display item: a
                                   streamed run's output so far, before
                                   its RESULT */
    /* worker -> supervisor (datagrams) */
    PYEXEC_MSG_WAKE     = 10,   /* spares were taken, refill */
    PYEXEC_MSG_KILL     = 11,   /* payload: pyexec_slot_msg_t */
    /* supervisor -> zygote */
    PYEXEC_MSG_SPAWN    = 20,   /* payload: pyexec_spawn_t + block list */
    PYEXEC_MSG_LOGFD    = 24,   /* no payload; httpd's error log rides
                                   along (also parent -> supervisor) */
    /* zygote -> supervisor */
    PYEXEC_MSG_SPAWNED  = 21,   /* payload: pyexec_slot_msg_t (pid set) */
    /* new helper -> supervisor */
    PYEXEC_MSG_READY    = 22,   /* payload: pyexec_slot_msg_t (pid set) */
    PYEXEC_MSG_REFUSED  = 23,   /* payload: pyexec_slot_msg_t + reason text:
                                   the helper will not serve */
} pyexec_msg_type_t;

/* EXEC flags */
#define PYEXEC_EXEC_WANT_STARTED 0x1u  /* queued behind another request:
                                          tell me when mine begins */
#define PYEXEC_EXEC_PASS         0x2u  /* run nothing, only give up this
                                          ticket's turn: answered SKIPPED */
#define PYEXEC_EXEC_DISPLAY_RESULT 0x4u /* display the value of a final
                                          bare expression, as a notebook */
#define PYEXEC_EXEC_STREAM       0x8u  /* send OUTPUT frames as the code
                                          writes */

/* OUTPUT kinds (its frame's flags) */
#define PYEXEC_OUTPUT_STDOUT  1u
#define PYEXEC_OUTPUT_STDERR  2u
#define PYEXEC_OUTPUT_DISPLAY 3u

typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t flags;
    uint32_t length;
} pyexec_frame_hdr_t;

typedef enum {
    PYEXEC_FRAME_OK = 0,
    PYEXEC_FRAME_SHORT,       /* fewer than PYEXEC_FRAME_HDR_LEN bytes */
    PYEXEC_FRAME_BAD_MAGIC,
    PYEXEC_FRAME_BAD_VERSION,
    PYEXEC_FRAME_TOO_LARGE,   /* length above the caller's limit */
} pyexec_frame_status_t;

void pyexec_frame_encode_hdr(unsigned char out[PYEXEC_FRAME_HDR_LEN],
                             uint16_t type, uint32_t flags, uint32_t length);

pyexec_frame_status_t pyexec_frame_decode_hdr(const unsigned char *in,
                                              size_t inlen,
                                              uint32_t max_payload,
                                              pyexec_frame_hdr_t *hdr);

const char *pyexec_frame_status_str(pyexec_frame_status_t st);

/* Exit status of a helper that ran out of memory, and of one that
 * could not set itself up: the supervisor tells them from crashes. */
#define PYEXEC_EXIT_MEMORY   86
#define PYEXEC_EXIT_SETUP    87

/* How an execution ended, as the helper reports it. */
typedef enum {
    PYEXEC_EXEC_OK       = 0,   /* ran; an exception is in stderr */
    PYEXEC_EXEC_MEMORY   = 1,   /* memory limit hit; helper exits */
    PYEXEC_EXEC_INTERNAL = 2,   /* the helper itself failed */
} pyexec_exec_status_t;

#define PYEXEC_RESULT_STDOUT_CUT 0x1u
#define PYEXEC_RESULT_STDERR_CUT 0x2u

/* Fixed part of a RESULT payload; stdout, stderr, then the display
 * items follow. */
typedef struct {
    uint32_t status;        /* pyexec_exec_status_t */
    uint32_t flags;         /* PYEXEC_RESULT_* */
    uint32_t stdout_len;
    uint32_t stderr_len;
    uint64_t exec_usec;     /* time spent compiling and running */
    uint64_t mem_bytes;     /* heap the session holds after the run */
    uint32_t display_len;   /* bytes of display items */
    uint32_t display_count; /* how many */
} pyexec_result_t;
#define PYEXEC_RESULT_FIXED_LEN 40

/* The longest note a helper appends to a stream it cut at max_output
 * ("[output truncated: ...]"). */
#define PYEXEC_RESULT_MARKER_MAX 80

void pyexec_result_encode(unsigned char out[PYEXEC_RESULT_FIXED_LEN],
                          const pyexec_result_t *res);
/* Checks that the lengths add up to payload_len exactly. Returns 0 on
 * success, -1 on a malformed payload. */
int pyexec_result_decode(const unsigned char *payload, size_t payload_len,
                         pyexec_result_t *res);

/* Whether a decoded RESULT is one an honest helper of a session with
 * this output cap could send: each stream within the cap (and its
 * marker), a status a helper reports. Its bytes may come from user
 * code, which can write to the helper's connection as well as it. */
int pyexec_result_within(const pyexec_result_t *res, uint32_t max_output,
                         uint32_t max_display);

/* Rich output (display(), figures) travels as display items after
 * stderr: each an 8 byte header (where it fell in stdout, in code
 * points; its length) and a JSON object {"data": {...}, "metadata":
 * {...}} in the shape of Jupyter's display_data. An honest helper keeps
 * the items' bytes, headers included, within the session's max_display;
 * an item that would not fit is replaced by a marker of at most
 * PYEXEC_DISPLAY_MARKER_MAX bytes, which the cap does not count, and a
 * run has at most PYEXEC_DISPLAY_ITEMS_MAX items of either kind. */
#define PYEXEC_DISPLAY_ITEM_HDR_LEN 8
#define PYEXEC_DISPLAY_ITEMS_MAX    256
#define PYEXEC_DISPLAY_MARKER_MAX   256

typedef struct {
    uint32_t stdout_offset;     /* code points of stdout written before */
    uint32_t len;               /* bytes of JSON after the header */
    const unsigned char *json;
} pyexec_display_item_t;

void pyexec_display_item_encode(unsigned char out[PYEXEC_DISPLAY_ITEM_HDR_LEN],
                                uint32_t stdout_offset, uint32_t len);

/* The item at *pos of a display section of len bytes; *pos moves past
 * it. 1 when an item was read, 0 at the end, -1 if the section is
 * malformed (an item running past its end). */
int pyexec_display_item_next(const unsigned char *section, size_t len,
                             size_t *pos, pyexec_display_item_t *item);

/* The longest reason a REFUSED carries after its slot message. */
#define PYEXEC_REFUSED_TEXT_MAX 512

/* KILL, SPAWNED and READY all name one helper. */
typedef struct {
    uint32_t slot;
    uint32_t gen;
    int32_t  pid;
    uint32_t reason;        /* pyexec_end_reason_t, for KILL */
} pyexec_slot_msg_t;
#define PYEXEC_SLOT_MSG_LEN 16

void pyexec_slot_msg_encode(unsigned char out[PYEXEC_SLOT_MSG_LEN],
                            const pyexec_slot_msg_t *m);
int pyexec_slot_msg_decode(const unsigned char *in, size_t len,
                           pyexec_slot_msg_t *m);

/* What the zygote needs to shape one new helper. The block list follows
 * as NUL-separated module names. */
/* SPAWN flags */
#define PYEXEC_SPAWN_REQUIRE_SANDBOX 0x1u /* refuse to serve without every
                                             layer the host can give */
#define PYEXEC_SPAWN_NO_IMPORT_HOOK  0x2u /* tests only: leave __import__
                                             and open as CPython has them */
#define PYEXEC_SPAWN_SKIP_SECCOMP    0x4u /* tests only: act as a host */
#define PYEXEC_SPAWN_SKIP_LANDLOCK   0x8u /* without these layers */

typedef struct {
    uint32_t slot;
    uint32_t gen;
    uint64_t memory_limit;  /* bytes above the helper's own baseline */
    uint32_t max_output;    /* bytes per stream */
    uint32_t cpu_seconds;   /* RLIMIT_CPU backstop */
    uint32_t max_code;      /* largest EXEC payload accepted */
    uint32_t flags;         /* PYEXEC_SPAWN_* */
    uint8_t token[16];      /* an EXEC must carry it: the helper's socket
                               alone does not authenticate a caller */
    uint32_t max_display;   /* bytes of display items per run */
} pyexec_spawn_t;
#define PYEXEC_SPAWN_FIXED_LEN 52
#define PYEXEC_TOKEN_LEN       16

/* What precedes the source in an EXEC. The ticket is the request's place
 * in its session's queue, taken under the registry lock when the worker
 * counted itself in: a helper runs requests in ticket order, not in the
 * order their frames happen to reach it, so that a request whose worker
 * was told "nothing ahead of you" (and started its clock on sending) is
 * never run after one that came later. */
typedef struct {
    uint8_t token[PYEXEC_TOKEN_LEN];
    uint32_t ticket;
    uint32_t stdin_len;     /* bytes of stdin after this, before the
                               source; code and stdin together stay
                               within the session's max_code */
} pyexec_exec_fixed_t;
#define PYEXEC_EXEC_FIXED_LEN  24

void pyexec_exec_encode(unsigned char out[PYEXEC_EXEC_FIXED_LEN],
                        const pyexec_exec_fixed_t *e);
/* len is the whole EXEC payload's: a stdin_len past its end is
 * refused (-1). */
int pyexec_exec_decode(const unsigned char *in, size_t len,
                       pyexec_exec_fixed_t *e);

/* Whether ticket a comes before b (tickets wrap around). */
#define PYEXEC_TICKET_BEFORE(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)

/* A SPAWN payload (the fixed part and the block list) is at most this
 * long; a whole SPAWN frame at most PYEXEC_SPAWN_FRAME_MAX. */
#define PYEXEC_SPAWN_MAX_PAYLOAD 65536u
#define PYEXEC_SPAWN_FRAME_MAX   (PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_MAX_PAYLOAD)
/* What is left of a SPAWN payload for the NUL-separated block list, and
 * how many names the zygote takes from it. */
#define PYEXEC_SPAWN_NAMES_MAX   (PYEXEC_SPAWN_MAX_PAYLOAD - PYEXEC_SPAWN_FIXED_LEN)
#define PYEXEC_SPAWN_NAMES_COUNT_MAX 1024

void pyexec_spawn_encode(unsigned char out[PYEXEC_SPAWN_FIXED_LEN],
                         const pyexec_spawn_t *sp);
int pyexec_spawn_decode(const unsigned char *in, size_t len,
                        pyexec_spawn_t *sp);

/* The whole SPAWN frame for one helper: header, sp, then names_len bytes
 * of NUL-separated module names. Returns the frame's length, or 0 if it
 * would not fit in cap or in PYEXEC_SPAWN_FRAME_MAX. */
size_t pyexec_spawn_frame(unsigned char *out, size_t cap,
                          const pyexec_spawn_t *sp, const char *names,
                          size_t names_len);

/* Confinement layers a helper reports in its READY message (in the
 * `reason` field), so that the module can log and show them. */
#define PYEXEC_LAYER_RLIMITS     0x001u  /* AS, CPU, CORE, FSIZE, NPROC, NOFILE */
#define PYEXEC_LAYER_NO_NEW_PRIVS 0x002u
#define PYEXEC_LAYER_SECCOMP     0x004u  /* system call allow-list */
#define PYEXEC_LAYER_LANDLOCK    0x008u  /* read-only stdlib, nothing else */
#define PYEXEC_LAYER_USERNS      0x010u
#define PYEXEC_LAYER_NETNS       0x020u  /* no network interface at all */
#define PYEXEC_LAYER_IPCNS       0x040u
#define PYEXEC_LAYER_UTSNS       0x080u
#define PYEXEC_LAYER_PIDNS       0x100u  /* sees no other process */
#define PYEXEC_LAYER_UNPRIVILEGED 0x200u /* not root, no capabilities */
#define PYEXEC_LAYER_LANDLOCK_NET 0x400u /* TCP bind/connect refused */
#define PYEXEC_LAYER_LANDLOCK_SCOPE 0x800u /* no signals or abstract
                                              sockets out of the sandbox */
#define PYEXEC_LAYER_MOUNTNS     0x1000u /* a read-only tree holding only
                                            the Python library */
#define PYEXEC_LAYERS_ALL        0x1fffu
/* Either confines the filesystem: one is enough for the required set. */
#define PYEXEC_LAYERS_FS         (PYEXEC_LAYER_LANDLOCK | PYEXEC_LAYER_MOUNTNS)
/* What PyExecRequireSandbox On insists on: the layers that stop file
 * access (Landlock or the mount namespace), network access, new
 * processes, signals to others and privilege. */
#define PYEXEC_LAYERS_REQUIRED   (PYEXEC_LAYER_RLIMITS \
                                  | PYEXEC_LAYER_NO_NEW_PRIVS \
                                  | PYEXEC_LAYER_SECCOMP \
                                  | PYEXEC_LAYERS_FS \
                                  | PYEXEC_LAYER_NETNS \
                                  | PYEXEC_LAYER_PIDNS \
                                  | PYEXEC_LAYER_UNPRIVILEGED)

/* "seccomp landlock netns ..." for logs and the status page. */
void pyexec_layers_format(uint32_t layers, char *buf, size_t len);

/* Socket path of one helper: "<dir>/h<slot>-<gen>.sock". Returns the
 * length written, or -1 if it does not fit (sun_path is small). */
int pyexec_helper_sockpath(char *buf, size_t buflen, const char *dir,
                           uint32_t slot, uint32_t gen);

#endif /* PYEXEC_PROTOCOL_H */
