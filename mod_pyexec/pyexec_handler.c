/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <ap_expr.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "pyexec_private.h"
#include "pyexec_handler.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_request.h"
#include "pyexec_supervisor.h"

#define MSG_TIMEOUT  "Execution timeout. Session terminated."
#define MSG_MEMORY   "Memory limit exceeded. Session terminated."
#define MSG_CRASH    "Interpreter crashed. Session terminated."
#define MSG_DELETED  "Session deleted during the execution."
#define MSG_UNKNOWN  "Unknown session id: the session does not exist, has " \
                     "expired or was terminated. Send no id to start a new one."

/* How long a new session may wait for the supervisor to ready a
 * helper when every spare is taken. */
#define SPARE_WAIT_US        (10 * 1000 * 1000)
/* Sending the request and receiving the answer's bytes, once the
 * helper has finished, never takes long; this only bounds a broken
 * peer. */
#define IO_SLACK_US          (5 * 1000 * 1000)
/* Time for the supervisor to reap a helper that hung up on us. */
#define REAP_WAIT_US         (2 * 1000 * 1000)
#define SPIN_US              100

typedef enum {
    OUTCOME_OK = 0,
    OUTCOME_TIMEOUT,
    OUTCOME_MEMORY,
    OUTCOME_DIED,
    OUTCOME_BUSY,               /* never got its turn; session untouched */
    OUTCOME_LOCAL,              /* this worker failed; session untouched */
    OUTCOME_TOO_LARGE,          /* above the session's PyExecMaxCode */
} outcome_t;

typedef struct {
    outcome_t outcome;
    pyexec_end_reason_t died_why;
    unsigned char *payload;     /* RESULT payload, malloc()ed */
    pyexec_result_t res;
    int64_t exec_usec;
} run_t;

/* --- answers --------------------------------------------------------- */

/* body: malloc()ed JSON, freed here; NULL when building it failed */
static int send_body(request_rec *r, int status, char *body)
{
    if (!body) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only) {
        ap_rwrite(body, (int)strlen(body), r);
    }
    free(body);
    return OK;
}

static int send_json(request_rec *r, int status, const char *id,
                     const char *out, size_t out_len,
                     const char *err, size_t err_len, const char *error)
{
    return send_body(r, status, pyexec_response_json(id, out, out_len, err,
                                                     err_len, error));
}

static int send_error(request_rec *r, int status, const char *error)
{
    apr_table_setn(r->notes, "pyexec-outcome", "rejected");
    return send_json(r, status, NULL, NULL, 0, NULL, 0, error);
}

static void set_server_timing(request_rec *r, int64_t usec)
{
    apr_table_setn(r->headers_out, "Server-Timing",
                   apr_psprintf(r->pool, "exec;dur=%.3f", usec / 1000.0));
    apr_table_setn(r->notes, "pyexec-exec-ms",
                   apr_psprintf(r->pool, "%.3f", usec / 1000.0));
}

/* --- the request ----------------------------------------------------- */

static int is_json_type(const char *ct)
{
    const char *semi;
    size_t n;

    if (!ct) {
        return 0;
    }
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    semi = strchr(ct, ';');
    n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
        n--;
    }
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) {
        return 1;
    }
    /* application/<something>+json */
    return n > 17 && !strncasecmp(ct, "application/", 12)
           && !strncasecmp(ct + n - 5, "+json", 5);
}

/* Read the whole body, refusing anything above limit. Returns OK or
 * an HTTP status, with the reason in *why. Reads through the input
 * filters, so chunked bodies, Expect: 100-continue and httpd's own read
 * timeout (Timeout, mod_reqtimeout) apply. */
static int read_body(request_rec *r, apr_size_t limit, char **buf,
                     apr_size_t *len, const char **why)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_bucket_brigade *bb;
    apr_size_t cap = 16384, got = 0;
    apr_off_t declared = 0;
    int seen_eos = 0;
    char *b;

    *why = NULL;
    if (cl && (!ap_parse_strict_length(&declared, cl) || declared < 0)) {
        *why = "Invalid Content-Length.";
        return HTTP_BAD_REQUEST;
    }
    if (declared > (apr_off_t)limit) {
        *why = apr_psprintf(r->pool, "Request body is %" APR_OFF_T_FMT
                            " bytes; the limit is %" APR_SIZE_T_FMT ".",
                            declared, limit);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (declared > 0) {
        cap = (apr_size_t)declared + 1;
    }
    b = apr_palloc(r->pool, cap);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!seen_eos) {
        apr_bucket *e;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         HUGE_STRING_LEN);

        if (rv != APR_SUCCESS) {
            int status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);

            *why = status == HTTP_REQUEST_TIME_OUT
                   ? "The request body arrived too slowly."
                   : "Could not read the request body.";
            return status;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                continue;
            }
            rv = apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                *why = "Could not read the request body.";
                return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
            }
            if (got + n > limit) {
                *why = apr_psprintf(r->pool, "Request body is larger than "
                                    "the limit of %" APR_SIZE_T_FMT " bytes.",
                                    limit);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            if (got + n > cap) {
                char *nb;

                while (cap < got + n) {
                    cap *= 2;
                }
                nb = apr_palloc(r->pool, cap);
                memcpy(nb, b, got);
                b = nb;
            }
            memcpy(b + got, data, n);
            got += n;
        }
        apr_brigade_cleanup(bb);
    }
    *buf = b;
    *len = got;
    return OK;
}

/* One token from the client's bucket; 0 when it is empty, with the
 * wait for the next one in *retry. */
static int rate_allowed(request_rec *r, int64_t *retry)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    int ok;

    if (pyexec_lock() != APR_SUCCESS) {
        return 1;               /* fail open: the limit is not a lock */
    }
    ok = pyexec_ratelimit_take(pyexec_state.rl, r->useragent_ip,
                               pyexec_now_usec(), c->rate_limit,
                               (uint32_t)c->rate_burst, retry);
    if (!ok) {
        pyexec_state.reg->stats.rate_limited++;
    }
    pyexec_unlock();
    return ok;
}

/* --- sessions -------------------------------------------------------- */

typedef struct {
    int32_t idx;
    uint32_t gen;
    uint32_t ahead;             /* requests queued before ours */
    uint32_t ticket;            /* our place in the session's queue */
    int64_t timeout;            /* the session's limits (its slot's) */
    uint32_t max_output;
    uint32_t max_code;
    uint8_t token[PYEXEC_TOKEN_LEN];    /* the helper wants it in EXEC */
    char id[PYEXEC_ID_STRLEN + 1];
} session_ref_t;

/* Under the registry lock: count a request in on slot s (so that idle
 * expiry leaves the session alone and the next request queues behind
 * it), and note in ref what it needs of the slot. */
static void count_in(pyexec_slot_t *s, session_ref_t *ref, int64_t now)
{
    ref->gen = s->gen;
    s->inflight++;
    pyexec_state.reg->running++;
    ref->ahead = s->inflight - 1;
    ref->ticket = s->next_ticket++;
    memcpy(ref->token, s->token, PYEXEC_TOKEN_LEN);
    ref->timeout = s->timeout;
    ref->max_output = s->max_output;
    ref->max_code = s->max_code;
    /* backstop for the supervisor, should this worker vanish */
    s->deadline = now + (int64_t)s->inflight * s->timeout;
}

/* Existing session. */
static int attach_session(const pyexec_id_t *id, session_ref_t *ref)
{
    if (pyexec_lock() != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ref->idx = pyexec_reg_lookup(pyexec_state.reg, id);
    if (ref->idx == PYEXEC_REG_NONE) {
        pyexec_unlock();
        return HTTP_NOT_FOUND;
    }
    count_in(pyexec_reg_slot(pyexec_state.reg, ref->idx), ref,
             pyexec_now_usec());
    pyexec_unlock();
    pyexec_id_format(id, ref->id);
    return OK;
}

/* New session: bind a spare helper to a fresh random id. */
static int new_session(request_rec *r, session_ref_t *ref)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_id_t id;
    int64_t give_up = pyexec_now_usec() + SPARE_WAIT_US;
    int woke = 0, failing;

    if (pyexec_id_generate(&id) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                      PYEXEC_LOGNO(00301) "no randomness for a session id");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (;;) {
        pyexec_claim_t cl;
        int64_t now = pyexec_now_usec();

        if (pyexec_lock() != APR_SUCCESS) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        cl = pyexec_reg_claim(pyexec_state.reg, &id,
                              (uint32_t)c->max_sessions, now,
                              pyexec_wallclock_usec(), &ref->idx);
        if (cl == PYEXEC_CLAIM_OK) {
            /* a claimed slot has nothing in flight: ahead is 0 */
            count_in(pyexec_reg_slot(pyexec_state.reg, ref->idx), ref, now);
        }
        failing = pyexec_state.reg->helpers_failing;
        pyexec_unlock();

        switch (cl) {
        case PYEXEC_CLAIM_OK:
            pyexec_id_format(&id, ref->id);
            /* a spare was used up: have the supervisor replace it now */
            pyexec_supervisor_wake();
            return OK;
        case PYEXEC_CLAIM_FULL:
            return HTTP_SERVICE_UNAVAILABLE;
        case PYEXEC_CLAIM_DUPLICATE:
            pyexec_id_generate(&id);
            continue;
        case PYEXEC_CLAIM_NO_SPARE:
            break;
        }
        if (!woke) {
            pyexec_supervisor_wake();
            woke = 1;
        }
        if (failing || now > give_up) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          PYEXEC_LOGNO(00302) "no helper %s; see the "
                          "supervisor's messages", failing
                          ? "can start" : "became ready in time");
            return HTTP_GATEWAY_TIME_OUT;
        }
        apr_sleep(2000);
    }
}

/* The reason the supervisor recorded for a helper that hung up. */
static pyexec_end_reason_t wait_for_reason(const session_ref_t *ref)
{
    int64_t give_up = pyexec_now_usec() + REAP_WAIT_US;
    pyexec_end_reason_t why = PYEXEC_END_NONE;
    int32_t pid = 0;

    while (why == PYEXEC_END_NONE) {
        if (pyexec_lock() != APR_SUCCESS) {
            return PYEXEC_END_CRASH;
        }
        {
            pyexec_slot_t *s = pyexec_reg_slot(pyexec_state.reg, ref->idx);

            if (s->ended_gen == ref->gen) {
                why = (pyexec_end_reason_t)s->ended_reason;
            }
            else if (s->gen != ref->gen) {
                /* reaped and reused already: we missed the record */
                why = PYEXEC_END_CRASH;
            }
            else if (pyexec_now_usec() > give_up) {
                pid = pyexec_reg_end(pyexec_state.reg, ref->idx, ref->gen,
                                     PYEXEC_END_CRASH);
                why = PYEXEC_END_CRASH;
            }
        }
        pyexec_unlock();
        if (why == PYEXEC_END_NONE) {
            apr_sleep(1000);
        }
    }
    if (pid > 0) {
        pyexec_supervisor_kill(ref->idx, ref->gen, PYEXEC_END_CRASH);
    }
    return why;
}

static int connect_helper(const session_ref_t *ref)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (pyexec_helper_sockpath(sa.sun_path, sizeof(sa.sun_path),
                               pyexec_state.sockdir, (uint32_t)ref->idx,
                               ref->gen) < 0) {
        return -1;
    }
    /* non-blocking from the start: every read and write is bounded by a
     * deadline, and a helper whose backlog is full (EAGAIN) must not hold
     * this thread with no deadline at all */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Whether to wait for a short run's answer on the CPU rather than asleep.
 * Sleeping costs a wake-up when the answer comes, which on a virtual
 * machine is an interrupt to another CPU (tens of microseconds, as much
 * as a whole static request); spinning costs a CPU, which is free only
 * while most of them are idle. So: only while fewer runs are in progress
 * than half the CPUs, and for no longer than a short run takes. */
static int spin_worthwhile(void)
{
    static long ncpu;

    if (ncpu == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ncpu = n > 0 ? n : 1;
    }
    return (long)pyexec_state.reg->running * 2 <= ncpu;
}

/* --- connections kept for a session's next request ------------------- */

/* One idle connection per helper slot and process, at most KEPT_MAX open
 * (a worker process's descriptors are for clients first). The helper's
 * side of this is in helper_main.c. */
#define KEPT_MAX 128

typedef struct {
    int fd;
    uint32_t gen;
} kept_conn_t;

static kept_conn_t *kept;
static uint32_t kept_slots;
static int kept_open;
static apr_thread_mutex_t *kept_lock;

static apr_status_t kept_close_all(void *unused)
{
    (void)unused;
    for (uint32_t i = 0; kept && i < kept_slots; i++) {
        if (kept[i].fd >= 0) {
            close(kept[i].fd);
            kept[i].fd = -1;
        }
    }
    kept_open = 0;
    return APR_SUCCESS;
}

void pyexec_handler_child_init(apr_pool_t *p, server_rec *s)
{
    (void)s;
    if (!pyexec_state.reg
        || apr_thread_mutex_create(&kept_lock, APR_THREAD_MUTEX_DEFAULT, p)
           != APR_SUCCESS) {
        return;                 /* no keeping: a connection per request */
    }
    kept_slots = pyexec_state.reg->nslots;
    kept = apr_palloc(p, kept_slots * sizeof(*kept));
    for (uint32_t i = 0; i < kept_slots; i++) {
        kept[i].fd = -1;
    }
    apr_pool_cleanup_register(p, NULL, kept_close_all,
                              apr_pool_cleanup_null);
}

/* This slot's kept connection, if it still leads to the same helper. */
static int kept_take(const session_ref_t *ref)
{
    kept_conn_t *k;
    int fd = -1;

    if (!kept || ref->idx < 0 || (uint32_t)ref->idx >= kept_slots
        || apr_thread_mutex_lock(kept_lock) != APR_SUCCESS) {
        return -1;
    }
    k = &kept[ref->idx];
    if (k->fd >= 0) {
        if (k->gen == ref->gen) {
            fd = k->fd;
        }
        else {
            close(k->fd);       /* its helper is gone */
        }
        k->fd = -1;
        kept_open--;
    }
    apr_thread_mutex_unlock(kept_lock);
    return fd;
}

/* Close what leads to helpers that have gone since (read without the
 * registry lock: a wrong guess costs one reconnect, nothing more). */
static void kept_sweep(void)
{
    for (uint32_t i = 0; i < kept_slots; i++) {
        if (kept[i].fd >= 0
            && pyexec_reg_slot(pyexec_state.reg, (int32_t)i)->gen
               != kept[i].gen) {
            close(kept[i].fd);
            kept[i].fd = -1;
            kept_open--;
        }
    }
}

static void kept_put(const session_ref_t *ref, int fd)
{
    if (kept && ref->idx >= 0 && (uint32_t)ref->idx < kept_slots
        && apr_thread_mutex_lock(kept_lock) == APR_SUCCESS) {
        kept_conn_t *k = &kept[ref->idx];

        if (k->fd < 0 && kept_open >= KEPT_MAX) {
            kept_sweep();
        }
        if (k->fd < 0 && kept_open < KEPT_MAX) {
            k->fd = fd;
            k->gen = ref->gen;
            kept_open++;
            fd = -1;
        }
        apr_thread_mutex_unlock(kept_lock);
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* We stop waiting for our turn. The helper may be sending STARTED at
 * this very moment: shutting the connection down first makes a STARTED
 * not yet sent fail, and the helper then skips our request; one already
 * sent is in our buffer. In that case the run has begun with nobody left
 * to bound it, and it is treated as out of time. */
static outcome_t give_up_waiting(int fd)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload = NULL;
    int begun;

    shutdown(fd, SHUT_RDWR);
    begun = pyexec_io_recv_frame(fd, 0, &hdr, &payload, pyexec_now_usec())
            == PYEXEC_IO_OK && hdr.type == PYEXEC_MSG_STARTED;
    free(payload);
    close(fd);
    return begun ? OUTCOME_TIMEOUT : OUTCOME_BUSY;
}

/* Whether the helper of ref still takes connections: after a request
 * met two connections closed unread, that tells a helper making room
 * for others (alive: "busy, nothing was run") from one that died. */
static int helper_listening(const session_ref_t *ref)
{
    int fd = connect_helper(ref);

    if (fd >= 0) {
        close(fd);
        return 1;
    }
    return errno == EAGAIN;
}

/* Send the code, wait for the answer within the deadline. */
static void run_code(request_rec *r, const session_ref_t *ref,
                     const char *code, size_t code_len, run_t *run)
{
    uint32_t max_payload = PYEXEC_RESULT_FIXED_LEN
                           + 2 * (ref->max_output + 256);
    pyexec_frame_hdr_t hdr;
    pyexec_exec_fixed_t fixed;
    pyexec_io_status_t st;
    unsigned char ehdr[PYEXEC_FRAME_HDR_LEN], efixed[PYEXEC_EXEC_FIXED_LEN];
    struct iovec iov[3];
    int64_t start, deadline;
    int fd, retried = 0, unsent, started;

    memset(run, 0, sizeof(*run));
    /* With runs of this session ahead of ours, ask to be told when ours
     * begins: our clock must not include theirs. With none, the helper
     * starts on it at once (our ticket is its turn), and waiting for that
     * news would cost a wake-up of this thread on every request. */
    memcpy(fixed.token, ref->token, PYEXEC_TOKEN_LEN);
    fixed.ticket = ref->ticket;
    pyexec_exec_encode(efixed, &fixed);
    if (code_len > ref->max_code) {
        /* The session was started before a graceful restart raised
         * PyExecMaxCode: its helper would refuse this. Our turn is taken
         * all the same, and is handed back so that the next request
         * does not wait for it. */
        pyexec_frame_encode_hdr(ehdr, PYEXEC_MSG_EXEC, PYEXEC_EXEC_PASS,
                                PYEXEC_EXEC_FIXED_LEN);
        code_len = 0;
        run->outcome = OUTCOME_TOO_LARGE;
    }
    else {
        pyexec_frame_encode_hdr(ehdr, PYEXEC_MSG_EXEC,
                                ref->ahead ? PYEXEC_EXEC_WANT_STARTED : 0,
                                (uint32_t)(PYEXEC_EXEC_FIXED_LEN + code_len));
    }
    iov[0].iov_base = ehdr;
    iov[0].iov_len = sizeof(ehdr);
    iov[1].iov_base = efixed;
    iov[1].iov_len = sizeof(efixed);
    iov[2].iov_base = (void *)code;
    iov[2].iov_len = code_len;

    start = pyexec_now_usec();
    fd = kept_take(ref);
again:
    started = 0;
    if (fd < 0) {
        fd = connect_helper(ref);
    }
    if (fd < 0 && errno == EAGAIN) {
        /* so many requests queued for this session that its backlog is
         * full: as busy as a session gets */
        run->outcome = OUTCOME_BUSY;
        return;
    }
    if (fd < 0) {
        /* the helper's socket gone or refusing: the helper is; anything
         * else is this worker's trouble, not the session's */
        run->outcome = (errno == ENOENT || errno == ECONNREFUSED)
                       ? OUTCOME_DIED : OUTCOME_LOCAL;
        ap_log_rerror(APLOG_MARK, run->outcome == OUTCOME_LOCAL
                      ? APLOG_ERR : APLOG_DEBUG, errno, r,
                      PYEXEC_LOGNO(00305) "cannot reach the helper of "
                      "slot %d", (int)ref->idx);
        return;
    }
    st = pyexec_io_writev_full(fd, iov, 3, start + IO_SLACK_US);
    /* a helper reads a request whole or not at all: if sending failed,
     * nothing ran */
    unsent = st != PYEXEC_IO_OK;
    if (st == PYEXEC_IO_OK && ref->ahead) {
        /* each run ahead ends within its deadline (or is killed) */
        st = pyexec_io_recv_frame(fd, 0, &hdr, &run->payload,
                                  start + (int64_t)(ref->ahead + 1)
                                  * (ref->timeout + IO_SLACK_US));
        if (st == PYEXEC_IO_TIMEOUT) {
            run->outcome = give_up_waiting(fd);
            return;
        }
        if (st == PYEXEC_IO_OK) {
            started = hdr.type == PYEXEC_MSG_STARTED;
            if (!started && hdr.type != PYEXEC_MSG_SKIPPED) {
                st = PYEXEC_IO_PROTOCOL;
            }
        }
        start = pyexec_now_usec();
    }
    deadline = start + ref->timeout;
    if (st == PYEXEC_IO_OK && (started || !ref->ahead)) {
        if (spin_worthwhile()) {
            pyexec_io_spin_readable(fd, SPIN_US);
        }
        st = pyexec_io_recv_frame(fd, max_payload, &hdr, &run->payload,
                                  deadline);
    }
    /* A connection the helper closed while our request waited on it
     * unread (it keeps a few; helper_main.c) ends before any answer:
     * send the request once more on a new connection. Its ticket is
     * unchanged, so it keeps its turn, and a helper that did run it
     * would answer SKIPPED rather than run it twice. */
    if (!started && (unsent || st == PYEXEC_IO_CLOSED)) {
        close(fd);
        fd = -1;
        if (!retried) {
            retried = 1;
            goto again;
        }
        run->outcome = helper_listening(ref) ? OUTCOME_BUSY : OUTCOME_DIED;
        return;
    }
    run->exec_usec = pyexec_now_usec() - start;

    if (st == PYEXEC_IO_TIMEOUT) {
        close(fd);
        run->outcome = OUTCOME_TIMEOUT;
        run->exec_usec = ref->timeout;
        return;
    }
    if (st == PYEXEC_IO_OK && hdr.type == PYEXEC_MSG_SKIPPED) {
        /* our turn passed before the request arrived (TURN_WAIT_US in
         * helper_main.c), or we passed it on: nothing ran */
        kept_put(ref, fd);
        if (run->outcome != OUTCOME_TOO_LARGE) {
            run->outcome = OUTCOME_BUSY;
        }
        return;
    }
    if (st != PYEXEC_IO_OK || hdr.type != PYEXEC_MSG_RESULT
        || pyexec_result_decode(run->payload, hdr.length, &run->res) != 0) {
        if (st == PYEXEC_IO_PROTOCOL || st == PYEXEC_IO_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          PYEXEC_LOGNO(00303) "helper of slot %d sent a "
                          "malformed answer", (int)ref->idx);
        }
        close(fd);
        free(run->payload);
        run->payload = NULL;
        run->outcome = OUTCOME_DIED;
        return;
    }
    run->exec_usec = (int64_t)run->res.exec_usec;
    if (run->res.status == PYEXEC_EXEC_MEMORY) {
        close(fd);              /* the helper is on its way out */
        run->outcome = OUTCOME_MEMORY;
        return;
    }
    kept_put(ref, fd);
    run->outcome = OUTCOME_OK;
}

/* Count us out; end the session if this run ended it. */
static void detach_session(const session_ref_t *ref, run_t *run)
{
    pyexec_end_reason_t end = PYEXEC_END_NONE;
    int32_t pid = 0;

    if (run->outcome == OUTCOME_TIMEOUT) {
        end = PYEXEC_END_TIMEOUT;
    }
    else if (run->outcome == OUTCOME_MEMORY) {
        end = PYEXEC_END_MEMORY;
    }
    if (pyexec_lock() == APR_SUCCESS) {
        pyexec_slot_t *s = pyexec_reg_slot(pyexec_state.reg, ref->idx);

        if (s->gen == ref->gen) {
            if (s->inflight > 0) {
                s->inflight--;
            }
            if (s->inflight == 0) {
                s->deadline = 0;
            }
            s->last_use = pyexec_now_usec();
            s->executions++;
            if (run->outcome == OUTCOME_OK) {
                s->mem_bytes = run->res.mem_bytes;
            }
        }
        pyexec_state.reg->stats.executions++;
        if (pyexec_state.reg->running > 0) {
            pyexec_state.reg->running--;
        }
        if (end != PYEXEC_END_NONE) {
            /* gone from lookups before we answer, so the next request
             * for this id is told it no longer exists */
            pid = pyexec_reg_end(pyexec_state.reg, ref->idx, ref->gen, end);
        }
        pyexec_unlock();
    }
    if (end != PYEXEC_END_NONE && pid > 0) {
        pyexec_supervisor_kill(ref->idx, ref->gen, end);
    }
    if (run->outcome == OUTCOME_DIED) {
        run->died_why = wait_for_reason(ref);
    }
}

static const char *outcome_name(const run_t *run)
{
    switch (run->outcome) {
    case OUTCOME_OK:      return "ok";
    case OUTCOME_TIMEOUT: return "timeout";
    case OUTCOME_MEMORY:  return "memory";
    case OUTCOME_DIED:    return pyexec_end_reason_name(run->died_why);
    case OUTCOME_BUSY:    return "busy";
    case OUTCOME_LOCAL:   return "error";
    case OUTCOME_TOO_LARGE: return "too-large";
    }
    return "unknown";
}

/* --- the session resource: GET and DELETE ?id=<id> -------------------- */

/* Under the registry lock. */
static void slot_info(const pyexec_slot_t *s, const char *id,
                      int64_t now_mono, int64_t now_wall,
                      pyexec_session_info_t *info)
{
    info->id = id;
    info->created_usec = s->created;
    info->last_used_usec = now_wall - (now_mono - s->last_use);
    info->executions = s->executions;
    info->memory_bytes = s->mem_bytes;
    info->running = s->inflight > 0;
    info->timeout_usec = s->timeout;
    info->max_output = s->max_output;
    info->max_code = s->max_code;
}

/* The id is the capability: whoever has it may look at or end its
 * session, and nothing lists the others. */
static int session_resource(request_rec *r)
{
    pyexec_session_info_t info;
    pyexec_id_t id;
    const char *arg = NULL, *p;
    char idtext[PYEXEC_ID_STRLEN + 1];
    int32_t idx, pid = 0;
    uint32_t gen = 0;

    for (p = r->args; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1
                                                   : NULL) {
        if (!strncmp(p, "id=", 3)) {
            arg = p + 3;
            break;
        }
    }
    if (!arg || pyexec_id_parse(arg, strcspn(arg, "&"), &id) != 0) {
        return send_error(r, HTTP_BAD_REQUEST, "The query must be "
                          "?id=<session id>, a UUID as returned by POST.");
    }
    pyexec_id_format(&id, idtext);
    apr_table_setn(r->notes, "pyexec-session", apr_pstrdup(r->pool, idtext));
    if (pyexec_lock() != APR_SUCCESS) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "Internal error; see the server's error log.");
    }
    idx = pyexec_reg_lookup(pyexec_state.reg, &id);
    if (idx != PYEXEC_REG_NONE) {
        pyexec_slot_t *s = pyexec_reg_slot(pyexec_state.reg, idx);

        gen = s->gen;
        slot_info(s, idtext, pyexec_now_usec(), pyexec_wallclock_usec(),
                  &info);
        if (r->method_number == M_DELETE) {
            /* gone from lookups now; a run in progress ends with it */
            pid = pyexec_reg_end(pyexec_state.reg, idx, gen,
                                 PYEXEC_END_DELETED);
        }
    }
    pyexec_unlock();
    if (idx == PYEXEC_REG_NONE) {
        return send_error(r, HTTP_NOT_FOUND, MSG_UNKNOWN);
    }
    if (r->method_number == M_DELETE) {
        if (pid > 0) {
            pyexec_supervisor_kill(idx, gen, PYEXEC_END_DELETED);
        }
        apr_table_setn(r->notes, "pyexec-outcome", "deleted");
        r->status = HTTP_NO_CONTENT;
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        return OK;
    }
    apr_table_setn(r->notes, "pyexec-outcome", "info");
    return send_body(r, HTTP_OK, pyexec_session_json(&info));
}

/* --- an operator's listing: SetHandler pyexec-sessions ----------------- */

/* Every live session, ids included. Nothing serves this unless an
 * operator puts the handler in a <Location> of its own, which is where
 * its access control goes: ids are capabilities. */
int pyexec_sessions_handler(request_rec *r)
{
    pyexec_session_info_t *infos;
    char (*ids)[PYEXEC_ID_STRLEN + 1];
    pyexec_registry_t *reg = pyexec_state.reg;
    size_t n = 0;
    int64_t now_mono, now_wall;

    if (!r->handler || strcmp(r->handler, PYEXEC_SESSIONS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return send_error(r, HTTP_METHOD_NOT_ALLOWED,
                          "Method not allowed: GET lists the sessions.");
    }
    if (!reg) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "The Python execution service is not running.");
    }
    infos = apr_pcalloc(r->pool, reg->nslots * sizeof(*infos));
    ids = apr_pcalloc(r->pool, reg->nslots * sizeof(*ids));
    if (pyexec_lock() != APR_SUCCESS) {
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "Internal error; see the server's error log.");
    }
    now_mono = pyexec_now_usec();
    now_wall = pyexec_wallclock_usec();
    for (uint32_t i = 0; i < reg->nslots; i++) {
        const pyexec_slot_t *s = pyexec_reg_slot(reg, (int32_t)i);

        if (s->state == PYEXEC_SLOT_LIVE) {
            pyexec_id_format(&s->id, ids[n]);
            slot_info(s, ids[n], now_mono, now_wall, &infos[n]);
            n++;
        }
    }
    pyexec_unlock();
    return send_body(r, HTTP_OK, pyexec_session_list_json(infos, n));
}

/* The endpoint names no file, so the directory and file walk (a stat
 * and an .htaccess probe per path component) would be wasted on every
 * request. map_to_storage could skip it, but by then httpd has set the
 * request's configuration back to the server's; translate_name, run
 * first, still sees the <Location> configuration found for the URI. So
 * translate_name notes a URI that SetHandler pyexec covers and declines
 * (mod_rewrite, mod_alias or the core map it as usual), and
 * map_to_storage skips the walk only if the URI is still that one: a
 * request rewritten to another URI gets the walk, and with it its
 * <Directory> rules. What governs access to the endpoint is <Location>,
 * which httpd walks again after this, for the same URI, so the handler
 * is still ours. */
#define PYEXEC_NOTE_NO_WALK "pyexec-no-walk"

int pyexec_translate_name(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *handler, *err = NULL;

    if (!d || !d->expr_handler || !r->uri) {
        return DECLINED;
    }
    handler = ap_expr_str_exec(r, d->expr_handler, &err);
    if (!err && handler && !strcmp(handler, PYEXEC_HANDLER)) {
        apr_table_setn(r->notes, PYEXEC_NOTE_NO_WALK, r->uri);
    }
    return DECLINED;
}

int pyexec_map_to_storage(request_rec *r)
{
    const char *uri = apr_table_get(r->notes, PYEXEC_NOTE_NO_WALK);

    if (uri && r->uri && !strcmp(uri, r->uri)) {
        return OK;
    }
    return DECLINED;
}

int pyexec_handler(request_rec *r)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_request_t req;
    session_ref_t ref;
    run_t run;
    const char *why;
    char *body = NULL;
    apr_size_t body_len = 0;
    int64_t retry = 0;
    int rc;

    if (!r->handler || strcmp(r->handler, PYEXEC_HANDLER)) {
        return DECLINED;
    }
    if (!pyexec_state.reg || pyexec_state.ctl_fd < 0) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                          "The Python execution service is not running.");
    }
    if ((r->method_number == M_GET || r->method_number == M_DELETE)
        && r->args) {
        return session_resource(r);
    }
    if (r->method_number != M_POST) {
        apr_table_setn(r->headers_out, "Allow", "POST, GET, DELETE");
        return send_error(r, HTTP_METHOD_NOT_ALLOWED,
                          "Method not allowed: POST a JSON object such as "
                          "{\"code\": \"print(1)\"} to run code; GET or "
                          "DELETE ?id=<session id> to see or end a "
                          "session.");
    }
    if (c->rate_limit > 0 && !rate_allowed(r, &retry)) {
        apr_table_setn(r->headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    (retry + 999999) / 1000000));
        return send_error(r, HTTP_TOO_MANY_REQUESTS, apr_psprintf(r->pool,
                          "Too many requests from your address: the limit "
                          "is %g per second. Try again in %.1f s.",
                          c->rate_limit, retry / 1e6));
    }
    if (!is_json_type(apr_table_get(r->headers_in, "Content-Type"))) {
        return send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "Content-Type must be application/json.");
    }
    /* JSON escapes may take six bytes per source byte */
    rc = read_body(r, (apr_size_t)c->max_code * 6 + 4096, &body, &body_len,
                   &why);
    if (rc != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            r->connection->keepalive = AP_CONN_CLOSE;
        }
        return why ? send_error(r, rc, why) : rc;
    }
    if (pyexec_request_parse(body, body_len, (size_t)c->max_code, &req) != 0) {
        return send_error(r, req.status, req.error);
    }

    rc = req.has_id ? attach_session(&req.id, &ref)
                    : new_session(r, &ref);
    if (rc != OK) {
        pyexec_request_clear(&req);
        switch (rc) {
        case HTTP_NOT_FOUND:
            return send_error(r, rc, MSG_UNKNOWN);
        case HTTP_SERVICE_UNAVAILABLE:
            apr_table_setn(r->headers_out, "Retry-After", "5");
            return send_error(r, rc, apr_psprintf(r->pool,
                              "Too many sessions: at most %d may be live at "
                              "once. Try again later.", c->max_sessions));
        case HTTP_GATEWAY_TIME_OUT:
            apr_table_setn(r->headers_out, "Retry-After", "5");
            return send_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "No Python interpreter became available in "
                              "time. Try again later.");
        default:
            return send_error(r, HTTP_INTERNAL_SERVER_ERROR,
                              "Internal error; see the server's error log.");
        }
    }
    apr_table_setn(r->notes, "pyexec-session", apr_pstrdup(r->pool, ref.id));

    run_code(r, &ref, req.code, req.code_len, &run);
    pyexec_request_clear(&req);
    detach_session(&ref, &run);

    apr_table_setn(r->notes, "pyexec-outcome", outcome_name(&run));
    set_server_timing(r, run.exec_usec);
    switch (run.outcome) {
    case OUTCOME_OK: {
        const char *out = (const char *)run.payload + PYEXEC_RESULT_FIXED_LEN;
        rc = send_json(r, HTTP_OK, ref.id, out, run.res.stdout_len,
                       out + run.res.stdout_len, run.res.stderr_len, NULL);
        break;
    }
    case OUTCOME_TIMEOUT:
        rc = send_json(r, HTTP_OK, ref.id, NULL, 0, NULL, 0, MSG_TIMEOUT);
        break;
    case OUTCOME_MEMORY:
        rc = send_json(r, HTTP_OK, ref.id, NULL, 0, NULL, 0, MSG_MEMORY);
        break;
    case OUTCOME_BUSY:
        apr_table_setn(r->headers_out, "Retry-After", "2");
        rc = send_json(r, HTTP_SERVICE_UNAVAILABLE, ref.id, NULL, 0, NULL, 0,
                       "The session is busy with earlier requests; nothing "
                       "was run. Try again later.");
        break;
    case OUTCOME_TOO_LARGE:
        rc = send_json(r, HTTP_REQUEST_ENTITY_TOO_LARGE, ref.id, NULL, 0,
                       NULL, 0, apr_psprintf(r->pool, "Code too large for "
                       "this session: it was started with a limit of %u "
                       "bytes. Nothing was run.", ref.max_code));
        break;
    case OUTCOME_LOCAL:
        rc = send_json(r, HTTP_INTERNAL_SERVER_ERROR, ref.id, NULL, 0, NULL,
                       0, "Internal error; nothing was run. See the "
                       "server's error log.");
        break;
    case OUTCOME_DIED:
        rc = send_json(r, HTTP_OK, ref.id, NULL, 0, NULL, 0,
                       run.died_why == PYEXEC_END_MEMORY ? MSG_MEMORY
                       : run.died_why == PYEXEC_END_TIMEOUT ? MSG_TIMEOUT
                       : run.died_why == PYEXEC_END_DELETED ? MSG_DELETED
                       : MSG_CRASH);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      PYEXEC_LOGNO(00304) "session %s ended during an "
                      "execution: %s", ref.id,
                      pyexec_end_reason_name(run.died_why));
        break;
    }
    free(run.payload);
    return rc;
}
