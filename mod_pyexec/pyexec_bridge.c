/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * A worker's end of a session (as mod_fcgid's fcgid_bridge.c is of an
 * application). Runs in httpd's worker processes, as User, on many
 * threads at once; what it keeps per process is the connections to
 * helpers (below), behind a thread mutex.
 *
 * One run, in the order pyexec_bridge_run() takes it:
 *   attach_session / new_session   count the request in on the session's
 *                                  slot under the registry lock, taking
 *                                  its ticket and limits (or bind a spare
 *                                  helper to a fresh id and wake the
 *                                  supervisor to replace it)
 *   run_code                       EXEC on a kept or new connection to the
 *                                  helper, STARTED when queued behind
 *                                  others, then RESULT within the deadline
 *   detach_session                 count the request out; a run past its
 *                                  limit ends the session and has the
 *                                  supervisor SIGKILL the helper
 *   wait_for_reason                a helper that hung up: why it ended, as
 *                                  the supervisor recorded when it reaped it
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_strings.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "pyexec_private.h"
#include "pyexec_bridge.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_request.h"
#include "pyexec_state.h"
#include "pyexec_supervisor.h"

/* How long a new session may wait for the supervisor to ready a
 * helper when every spare is taken. */
#define SPARE_WAIT_US        (10 * 1000 * 1000)
/* Sending the request and receiving the answer's bytes, once the
 * helper has finished, never takes long; this only bounds a broken
 * peer. */
#define IO_SLACK_US          (5 * 1000 * 1000)
/* A streamed run's frames are read past its deadline by no more than
 * this: a RESULT that came in time may wait behind its last frames */
#define STREAM_GRACE_US      (100 * 1000)
/* Time for the supervisor to reap a helper that hung up on us. */
#define REAP_WAIT_US         (2 * 1000 * 1000)
#define SPIN_US              100

/* A request's hold on its session, from count-in to count-out. */
typedef struct {
    int32_t idx;
    pyexec_reg_ticket_t t;      /* what it took from the slot */
} session_ref_t;

/* The helper's RESULT, malloc()ed by pyexec_io_recv_frame(). */
typedef struct {
    unsigned char *payload;
    pyexec_result_t res;
    const char *broken;         /* what the helper sent that no honest
                                   helper sends: the session ends */
    /* a streamed run: what has come so far, held against the caps */
    const pyexec_stream_sink_t *sink;
    int sink_gone;              /* the client left: the run goes on */
    int streamed;               /* some output came: the run began */
    uint64_t out_bytes, err_bytes, display_bytes;
    uint32_t out_chars, display_count, last_offset;
} answer_t;

/* One OUTPUT frame of a streamed run: within what the session's caps
 * let an honest helper send, passed on to the sink. 0, or -1 with
 * ans->broken set. */
static int take_output(answer_t *ans, const pyexec_slot_limits_t *lim,
                       const pyexec_frame_hdr_t *hdr,
                       const unsigned char *data)
{
    pyexec_display_item_t item;
    size_t pos = 0;
    uint32_t offset = 0;
    int rc = 0;

    ans->streamed = 1;
    if (!ans->sink) {
        ans->broken = "output it was not asked to stream";
        return -1;
    }
    /* an honest helper never sends an empty frame: empty ones would be
     * events that cost nothing against the caps */
    if (hdr->length == 0) {
        ans->broken = "an empty output frame";
        return -1;
    }
    switch (hdr->flags) {
    case PYEXEC_OUTPUT_STDOUT:
        ans->out_bytes += hdr->length;
        for (uint32_t i = 0; i < hdr->length; i++) {
            ans->out_chars += (data[i] & 0xc0) != 0x80;
        }
        rc = ans->out_bytes <= lim->max_output ? 0 : -1;
        break;
    case PYEXEC_OUTPUT_STDERR:
        ans->err_bytes += hdr->length;
        rc = ans->err_bytes <= lim->max_output ? 0 : -1;
        break;
    case PYEXEC_OUTPUT_DISPLAY:
        ans->display_bytes += hdr->length;
        if (pyexec_display_item_next(data, hdr->length, &pos, &item) != 1
            || pos != hdr->length
            || ++ans->display_count > PYEXEC_DISPLAY_ITEMS_MAX
            || ans->display_bytes > (uint64_t)lim->max_display
                                    + PYEXEC_DISPLAY_ITEMS_MAX
                                      * (PYEXEC_DISPLAY_ITEM_HDR_LEN
                                         + PYEXEC_DISPLAY_MARKER_MAX)
            || item.stdout_offset < ans->last_offset
            || item.stdout_offset > ans->out_chars
            || !pyexec_answer_display_item_ok(&item)) {
            ans->broken = "a malformed streamed display item";
            return -1;
        }
        ans->last_offset = offset = item.stdout_offset;
        data = item.json;
        break;
    default:
        rc = -1;
    }
    if (rc != 0) {
        ans->broken = "streamed output beyond the session's caps";
        return -1;
    }
    if (!ans->sink_gone
        && ans->sink->output(ans->sink->ctx, hdr->flags, data,
                             hdr->flags == PYEXEC_OUTPUT_DISPLAY ? item.len
                             : hdr->length, offset) != 0) {
        ans->sink_gone = 1;
    }
    return 0;
}

/* The RESULT, after any OUTPUT frames of a streamed run. */
static pyexec_io_status_t recv_answer(int fd, const pyexec_slot_limits_t *lim,
                                      uint32_t max_payload,
                                      pyexec_frame_hdr_t *hdr, answer_t *ans,
                                      int64_t deadline)
{
    for (;;) {
        pyexec_io_status_t st;

        /* frames that keep coming must not keep the worker past the run's
         * time: a frame waiting is read at once, without a look at the
         * clock, so look here */
        if (ans->streamed && pyexec_now_usec() > deadline + STREAM_GRACE_US) {
            return PYEXEC_IO_TIMEOUT;
        }
        /* the client hears what came, once nothing more waits */
        if (ans->streamed && !ans->sink_gone && pyexec_io_pending(fd) == 0
            && ans->sink->flush(ans->sink->ctx) != 0) {
            ans->sink_gone = 1;
        }
        st = pyexec_io_recv_frame(fd, max_payload, hdr, &ans->payload,
                                  deadline);
        if (st != PYEXEC_IO_OK || hdr->type != PYEXEC_MSG_OUTPUT) {
            return st;
        }
        st = take_output(ans, lim, hdr, ans->payload) == 0
             ? PYEXEC_IO_OK : PYEXEC_IO_PROTOCOL;
        pyexec_io_free(ans->payload);
        ans->payload = NULL;
        if (st != PYEXEC_IO_OK) {
            return st;
        }
    }
}

/* --- finding the session --------------------------------------------- */

/* An existing session. */
static int attach_session(const pyexec_id_t *id, session_ref_t *ref,
                          pyexec_run_t *run)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_registry_t *reg = pyexec_state.shared.reg;
    int rc = -1;

    if (pyexec_lock() != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ref->idx = pyexec_reg_lookup(reg, id);
    if (ref->idx != PYEXEC_REG_NONE) {
        rc = pyexec_reg_count_in(reg, ref->idx, pyexec_now_usec(),
                                 (uint32_t)c->max_queue, &ref->t);
        if (rc > 0) {
            /* its own limit, which a graceful restart may not share */
            run->retry_usec = pyexec_reg_slot(reg, ref->idx)->limits.timeout;
        }
    }
    pyexec_unlock();
    if (rc < 0) {
        return HTTP_NOT_FOUND;
    }
    pyexec_id_format_routed(id, c->route, run->id);
    if (rc > 0) {
        /* PyExecMaxQueue: a worker thread each is what waiting costs,
         * and every client's requests need them. The run ahead ends
         * within its limit, and makes room. */
        ref->idx = PYEXEC_REG_NONE;
        run->outcome = PYEXEC_RUN_BUSY;
    }
    return OK;
}

/* Who is asking, for PyExecMaxClientSessions: the address httpd (or
 * mod_remoteip) says the request came from. An IPv6 client has a /64
 * to pick addresses from, so that is one client. */
static uint64_t client_key(const request_rec *r)
{
    const apr_sockaddr_t *sa = r->useragent_addr;
    const unsigned char *b;
    size_t n;
    uint64_t h = 14695981039346656037ull;

    if (!sa) {
        return 0;
    }
    b = (const unsigned char *)sa->ipaddr_ptr;
    n = (size_t)sa->ipaddr_len;
#if APR_HAVE_IPV6
    if (sa->family == AF_INET6) {
        static const unsigned char v4mapped[12] = {
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
        };

        if (n == 16 && !memcmp(b, v4mapped, sizeof(v4mapped))) {
            b += 12;
            n = 4;
        }
        else if (n > 8) {
            n = 8;
        }
    }
#endif
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }
    return h;
}

/* A new session: bind a spare helper to a fresh random id. */
static int new_session(request_rec *r, session_ref_t *ref, pyexec_run_t *run)
{
    const pyexec_conf_t *c = &pyexec_state.conf;
    pyexec_registry_t *reg = pyexec_state.shared.reg;
    pyexec_claim_req_t cr;
    pyexec_id_t id;
    int64_t give_up = pyexec_now_usec() + SPARE_WAIT_US;
    int woke = 0, failing;

    if (pyexec_id_generate(&id) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                      PYEXEC_LOGNO(00301) "no randomness for a session id");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(&cr, 0, sizeof(cr));
    cr.max_live = (uint32_t)c->max_sessions;
    cr.max_per_client = (uint32_t)c->max_client_sessions;
    cr.client = client_key(r);
    cr.evict_idle = c->evict_idle;
    for (;;) {
        pyexec_claim_t cl;
        int64_t now = pyexec_now_usec();

        if (pyexec_lock() != APR_SUCCESS) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        cl = pyexec_reg_claim(reg, &id, now, pyexec_wallclock_usec(), &cr);
        /* a claimed slot has nothing in flight: ahead is 0; and being
         * live, it cannot refuse the count */
        if (cl == PYEXEC_CLAIM_OK) {
            ref->idx = cr.idx;
            if (pyexec_reg_count_in(reg, ref->idx, now, 0, &ref->t) != 0) {
                pyexec_unlock();
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        else if (cl == PYEXEC_CLAIM_FULL || cl == PYEXEC_CLAIM_CLIENT_FULL) {
            int full = cl == PYEXEC_CLAIM_FULL;

            run->retry_usec = pyexec_reg_next_expiry(
                reg, now, c->idle_timeout,
                full && c->evict_idle ? c->timeout : c->idle_timeout,
                full ? NULL : &cr.client);
        }
        failing = reg->helpers_failing;
        pyexec_unlock();

        if (cr.evicted_pid > 0) {
            pyexec_supervisor_kill(cr.evicted_idx, cr.evicted_gen,
                                   PYEXEC_END_EVICTED);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          PYEXEC_LOGNO(00306) "every session was live: "
                          "ended the one idle longest (slot %d, idle "
                          "%" APR_INT64_T_FMT " s) for a new one "
                          "(PyExecEvictIdle)", (int)cr.evicted_idx,
                          cr.evicted_idle / 1000000);
            cr.evicted_pid = 0;
        }
        switch (cl) {
        case PYEXEC_CLAIM_OK:
            pyexec_id_format_routed(&id, c->route, run->id);
            /* a spare was used up: have the supervisor replace it now */
            pyexec_supervisor_wake();
            return OK;
        case PYEXEC_CLAIM_FULL:
            return HTTP_SERVICE_UNAVAILABLE;
        case PYEXEC_CLAIM_CLIENT_FULL:
            return HTTP_TOO_MANY_REQUESTS;
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
    pyexec_registry_t *reg = pyexec_state.shared.reg;
    int64_t give_up = pyexec_now_usec() + REAP_WAIT_US;
    pyexec_end_reason_t why = PYEXEC_END_NONE;
    int32_t pid = 0;

    while (why == PYEXEC_END_NONE) {
        if (pyexec_lock() != APR_SUCCESS) {
            return PYEXEC_END_CRASH;
        }
        why = pyexec_reg_end_reason(reg, ref->idx, ref->t.gen);
        if (why == PYEXEC_END_NONE && pyexec_now_usec() > give_up) {
            pid = pyexec_reg_end(reg, ref->idx, ref->t.gen,
                                 PYEXEC_END_CRASH);
            why = PYEXEC_END_CRASH;
        }
        pyexec_unlock();
        if (why == PYEXEC_END_NONE) {
            apr_sleep(1000);
        }
    }
    if (pid > 0) {
        pyexec_supervisor_kill(ref->idx, ref->t.gen, PYEXEC_END_CRASH);
    }
    return why;
}

/* --- talking to the helper ------------------------------------------- */

static int connect_helper(const session_ref_t *ref)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (pyexec_helper_sockpath(sa.sun_path, sizeof(sa.sun_path),
                               pyexec_state.sockdir, (uint32_t)ref->idx,
                               ref->t.gen) < 0) {
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
    return (long)pyexec_state.shared.reg->running * 2 <= ncpu;
}

/* --- connections kept for a session's next request ------------------- */

/* One idle connection per helper slot and process, at most KEPT_MAX open
 * (a worker process's descriptors are for clients first). The helper's
 * side of this is in helper_serve.c. */
#define KEPT_MAX 128

typedef struct {
    int fd;
    uint32_t gen;
} kept_conn_t;

static kept_conn_t *kept;
static uint32_t kept_slots;
static int kept_open;
/* Plain pthread objects, never destroyed: prefork's SIGTERM handler runs
 * the child's pool cleanups on whatever the main thread was doing, even
 * holding this lock, so nothing at exit may wait for it. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static int kept_closable = 1;   /* no sweeper may still be in there */

static apr_status_t kept_close_all(void *unused)
{
    (void)unused;
    if (!kept_closable) {
        return APR_SUCCESS;     /* exit closes them */
    }
    for (uint32_t i = 0; kept && i < kept_slots; i++) {
        if (kept[i].fd >= 0) {
            close(kept[i].fd);
            kept[i].fd = -1;
        }
    }
    kept_open = 0;
    return APR_SUCCESS;
}

/* Close what leads to helpers that have gone since (read without the
 * registry lock: a wrong guess costs one reconnect, nothing more), and
 * what holds unread bytes: whatever a helper queued on an idle
 * connection stays in this process's socket buffers until it is read or
 * closed, and a helper that is gone is read by nobody. */
static void kept_sweep(void)
{
    for (uint32_t i = 0; i < kept_slots; i++) {
        if (kept[i].fd >= 0
            && (__atomic_load_n(&pyexec_reg_slot(pyexec_state.shared.reg,
                                                 (int32_t)i)->gen,
                                 __ATOMIC_RELAXED) != kept[i].gen
                || pyexec_io_pending(kept[i].fd) != 0)) {
            close(kept[i].fd);
            kept[i].fd = -1;
            kept_open--;
        }
    }
}

/* A thread per worker process sweeps once a second, traffic or not: a
 * process that serves nothing for a while would otherwise hold what
 * helpers left in its kept connections until its next request. */
static pthread_t sweeper;
static pthread_cond_t sweeper_wake = PTHREAD_COND_INITIALIZER;
static volatile sig_atomic_t sweeper_stop;

static void *sweeper_loop(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&kept_lock);
    while (!sweeper_stop) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&sweeper_wake, &kept_lock, &until);
        if (!sweeper_stop && kept_open > 0) {
            kept_sweep();
        }
    }
    pthread_mutex_unlock(&kept_lock);
    return NULL;
}

/* Takes no lock (see kept_lock) and waits for the sweeper only briefly:
 * one that cannot finish leaves the descriptors to the exit. */
static apr_status_t sweeper_join(void *unused)
{
    struct timespec until;

    (void)unused;
    sweeper_stop = 1;
    pthread_cond_signal(&sweeper_wake);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(sweeper, NULL, &until) != 0) {
        kept_closable = 0;
    }
    return APR_SUCCESS;
}

void pyexec_bridge_child_init(apr_pool_t *p, server_rec *s)
{
    sigset_t all, old;
    int rc;

    if (!pyexec_state.shared.reg) {
        return;                 /* no keeping: a connection per request */
    }
    kept_slots = pyexec_state.shared.reg->nslots;
    kept = apr_palloc(p, kept_slots * sizeof(*kept));
    for (uint32_t i = 0; i < kept_slots; i++) {
        kept[i].fd = -1;
    }
    apr_pool_cleanup_register(p, NULL, kept_close_all,
                              apr_pool_cleanup_null);
    /* with every signal blocked, which it inherits: prefork delivers its
     * SIGTERM and SIGUSR1 to whichever thread does not block them, and
     * they are the main thread's */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&sweeper, NULL, sweeper_loop, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        /* registered after kept_close_all, so run before it */
        apr_pool_cleanup_register(p, NULL, sweeper_join,
                                  apr_pool_cleanup_null);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rc, s,
                     PYEXEC_LOGNO(00307) "no sweeper thread: kept "
                     "connections are swept only when they are many");
    }
}

/* This slot's kept connection, if it still leads to the same helper and
 * has nothing unread. Anything a helper sends on an idle connection was
 * written by user code (an honest one answers requests only): -2. */
static int kept_take(const session_ref_t *ref)
{
    kept_conn_t *k;
    int fd = -1;

    if (!kept || ref->idx < 0 || (uint32_t)ref->idx >= kept_slots
        || pthread_mutex_lock(&kept_lock) != 0) {
        return -1;
    }
    k = &kept[ref->idx];
    if (k->fd >= 0) {
        if (k->gen == ref->t.gen && pyexec_io_pending(k->fd) == 0) {
            fd = k->fd;
        }
        else {
            if (k->gen == ref->t.gen) {
                fd = -2;
            }
            close(k->fd);       /* its helper is gone, or lied */
        }
        k->fd = -1;
        kept_open--;
    }
    pthread_mutex_unlock(&kept_lock);
    return fd;
}

static void kept_put(const session_ref_t *ref, int fd)
{
    if (kept && ref->idx >= 0 && (uint32_t)ref->idx < kept_slots
        && pthread_mutex_lock(&kept_lock) == 0) {
        kept_conn_t *k = &kept[ref->idx];

        if (k->fd < 0 && kept_open >= KEPT_MAX) {
            kept_sweep();
        }
        if (k->fd < 0 && kept_open < KEPT_MAX) {
            k->fd = fd;
            k->gen = ref->t.gen;
            kept_open++;
            fd = -1;
        }
        pthread_mutex_unlock(&kept_lock);
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
static pyexec_outcome_t give_up_waiting(int fd)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload = NULL;
    int begun;

    shutdown(fd, SHUT_RDWR);
    begun = pyexec_io_recv_frame(fd, 0, &hdr, &payload, pyexec_now_usec())
            == PYEXEC_IO_OK && hdr.type == PYEXEC_MSG_STARTED;
    pyexec_io_free(payload);
    close(fd);
    return begun ? PYEXEC_RUN_TIMEOUT : PYEXEC_RUN_BUSY;
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
                     const pyexec_request_t *req, pyexec_run_t *run,
                     answer_t *ans)
{
    const pyexec_slot_limits_t *lim = &ref->t.limits;
    uint32_t max_payload = PYEXEC_RESULT_FIXED_LEN
                           + 2 * (lim->max_output + PYEXEC_RESULT_MARKER_MAX)
                           + lim->max_display
                           + PYEXEC_DISPLAY_ITEMS_MAX
                             * (PYEXEC_DISPLAY_ITEM_HDR_LEN
                                + PYEXEC_DISPLAY_MARKER_MAX);
    pyexec_frame_hdr_t hdr;
    pyexec_exec_fixed_t fixed;
    pyexec_io_status_t st;
    unsigned char ehdr[PYEXEC_FRAME_HDR_LEN], efixed[PYEXEC_EXEC_FIXED_LEN];
    struct iovec iov[4];
    uint32_t flags = (req->display_result ? PYEXEC_EXEC_DISPLAY_RESULT : 0)
                     | (ans->sink ? PYEXEC_EXEC_STREAM : 0);
    size_t code_len = req->code_len, stdin_len = req->stdin_len;
    int64_t start, deadline;
    int fd, retried = 0, unsent, started;

    /* With runs of this session ahead of ours, ask to be told when ours
     * begins: our clock must not include theirs. With none, the helper
     * starts on it at once (our ticket is its turn), and waiting for that
     * news would cost a wake-up of this thread on every request. */
    memcpy(fixed.token, ref->t.token, PYEXEC_TOKEN_LEN);
    fixed.ticket = ref->t.ticket;
    if (code_len + stdin_len > lim->max_code) {
        /* The session was started before a graceful restart raised
         * PyExecMaxCode: its helper would refuse this. Our turn is taken
         * all the same, and is handed back so that the next request
         * does not wait for it. */
        pyexec_frame_encode_hdr(ehdr, PYEXEC_MSG_EXEC, PYEXEC_EXEC_PASS,
                                PYEXEC_EXEC_FIXED_LEN);
        code_len = stdin_len = 0;
        run->outcome = PYEXEC_RUN_TOO_LARGE;
    }
    else {
        pyexec_frame_encode_hdr(ehdr, PYEXEC_MSG_EXEC, flags
                                | (ref->t.ahead ? PYEXEC_EXEC_WANT_STARTED
                                                : 0),
                                (uint32_t)(PYEXEC_EXEC_FIXED_LEN + stdin_len
                                           + code_len));
    }
    fixed.stdin_len = (uint32_t)stdin_len;
    pyexec_exec_encode(efixed, &fixed);
    iov[0].iov_base = ehdr;
    iov[0].iov_len = sizeof(ehdr);
    iov[1].iov_base = efixed;
    iov[1].iov_len = sizeof(efixed);
    iov[2].iov_base = req->stdin_text;
    iov[2].iov_len = stdin_len;
    iov[3].iov_base = req->code;
    iov[3].iov_len = code_len;

    start = pyexec_now_usec();
    fd = kept_take(ref);
    if (fd == -2) {
        ans->broken = "bytes on an idle connection";
        goto broken;
    }
again:
    started = 0;
    if (fd < 0) {
        fd = connect_helper(ref);
    }
    if (fd < 0 && errno == EAGAIN) {
        /* so many requests queued for this session that its backlog is
         * full: as busy as a session gets */
        run->outcome = PYEXEC_RUN_BUSY;
        return;
    }
    if (fd < 0) {
        /* the helper's socket gone or refusing: the helper is; anything
         * else is this worker's trouble, not the session's */
        run->outcome = (errno == ENOENT || errno == ECONNREFUSED)
                       ? PYEXEC_RUN_DIED : PYEXEC_RUN_LOCAL;
        ap_log_rerror(APLOG_MARK, run->outcome == PYEXEC_RUN_LOCAL
                      ? APLOG_ERR : APLOG_DEBUG, errno, r,
                      PYEXEC_LOGNO(00305) "cannot reach the helper of "
                      "slot %d", (int)ref->idx);
        return;
    }
    st = pyexec_io_writev_full(fd, iov, 4, start + IO_SLACK_US);
    /* a helper reads a request whole or not at all: if sending failed,
     * nothing ran */
    unsent = st != PYEXEC_IO_OK;
    if (st == PYEXEC_IO_OK && ref->t.ahead) {
        /* each run ahead ends within its deadline (or is killed) */
        st = pyexec_io_recv_frame(fd, 0, &hdr, &ans->payload,
                                  start + (int64_t)(ref->t.ahead + 1)
                                  * (lim->timeout + IO_SLACK_US));
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
    deadline = start + lim->timeout;
    if (st == PYEXEC_IO_OK && (started || !ref->t.ahead)) {
        if (spin_worthwhile()) {
            pyexec_io_spin_readable(fd, SPIN_US);
        }
        st = recv_answer(fd, lim, max_payload, &hdr, ans, deadline);
    }
    /* A connection the helper closed while our request waited on it
     * unread (it keeps a few; helper_serve.c) ends before any answer:
     * send the request once more on a new connection. Its ticket is
     * unchanged, so it keeps its turn, and a helper that did run it
     * would answer SKIPPED rather than run it twice. */
    if (!started && !ans->streamed && (unsent || st == PYEXEC_IO_CLOSED)) {
        close(fd);
        fd = -1;
        if (!retried) {
            retried = 1;
            goto again;
        }
        run->outcome = helper_listening(ref) ? PYEXEC_RUN_BUSY
                                             : PYEXEC_RUN_DIED;
        return;
    }
    run->exec_usec = pyexec_now_usec() - start;

    if (st == PYEXEC_IO_TIMEOUT) {
        close(fd);
        run->outcome = PYEXEC_RUN_TIMEOUT;
        run->exec_usec = lim->timeout;
        return;
    }
    if (st == PYEXEC_IO_OK && hdr.type == PYEXEC_MSG_SKIPPED
        && ans->streamed) {
        /* output, then "never ran": no honest helper says both */
        ans->broken = "SKIPPED after streamed output";
        st = PYEXEC_IO_PROTOCOL;
    }
    if (st == PYEXEC_IO_OK && hdr.type == PYEXEC_MSG_SKIPPED) {
        /* our turn passed before the request arrived (TURN_WAIT_US in
         * helper_serve.c), or we passed it on: nothing ran */
        kept_put(ref, fd);
        if (run->outcome != PYEXEC_RUN_TOO_LARGE) {
            run->outcome = PYEXEC_RUN_BUSY;
        }
        return;
    }
    if (st != PYEXEC_IO_OK || hdr.type != PYEXEC_MSG_RESULT
        || pyexec_result_decode(ans->payload, hdr.length, &ans->res) != 0) {
        if (!ans->broken
            && (st == PYEXEC_IO_PROTOCOL || st == PYEXEC_IO_OK)) {
            ans->broken = "a malformed or oversized answer";
        }
        close(fd);
        fd = -1;
        pyexec_io_free(ans->payload);
        ans->payload = NULL;
        run->outcome = PYEXEC_RUN_DIED;
        if (ans->broken) {
            goto broken;
        }
        return;
    }
    /* The answer's bytes may be user code's (it can write to the
     * helper's connection too): only what an honest helper could send
     * within the session's caps is taken, and nothing after it. Whether
     * the run is over is not the answer's to say either: the supervisor
     * holds the helper's CPU time against this request's time in flight
     * (pyexec_supervisor_cpu.c). */
    if (!pyexec_result_within(&ans->res, lim->max_output,
                              lim->max_display)) {
        ans->broken = "an answer beyond the session's caps";
    }
    else if (pyexec_answer_display_check(
                 ans->payload + PYEXEC_RESULT_FIXED_LEN + ans->res.stdout_len
                 + ans->res.stderr_len, ans->res.display_len,
                 ans->res.display_count, (const char *)ans->payload
                 + PYEXEC_RESULT_FIXED_LEN, ans->res.stdout_len,
                 &ans->broken) != 0) {
        /* broken says what */
    }
    else if (pyexec_io_pending(fd) != 0) {
        ans->broken = "more after its answer";
    }
    if (ans->broken) {
        close(fd);
        fd = -1;
        pyexec_io_free(ans->payload);
        ans->payload = NULL;
        goto broken;
    }
    /* the helper's own figure, unless it claims more than we saw */
    if ((int64_t)ans->res.exec_usec < run->exec_usec) {
        run->exec_usec = (int64_t)ans->res.exec_usec;
    }
    if (ans->res.status == PYEXEC_EXEC_MEMORY) {
        close(fd);              /* the helper is on its way out */
        run->outcome = PYEXEC_RUN_MEMORY;
        return;
    }
    kept_put(ref, fd);
    run->outcome = PYEXEC_RUN_OK;
    return;

broken:
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  PYEXEC_LOGNO(00303) "helper of slot %d sent %s; its "
                  "session ends as a crash", (int)ref->idx, ans->broken);
    run->outcome = PYEXEC_RUN_DIED;
}

/* --- counting out ---------------------------------------------------- */

/* Count us out; end the session if this run ended it. */
static void detach_session(const session_ref_t *ref, pyexec_run_t *run,
                           const answer_t *ans)
{
    pyexec_end_reason_t end = PYEXEC_END_NONE;
    int32_t pid = 0;

    if (run->outcome == PYEXEC_RUN_TIMEOUT) {
        end = PYEXEC_END_TIMEOUT;
    }
    else if (run->outcome == PYEXEC_RUN_MEMORY) {
        end = PYEXEC_END_MEMORY;
    }
    else if (ans->broken) {
        end = PYEXEC_END_CRASH;
    }
    if (pyexec_lock() == APR_SUCCESS) {
        pid = pyexec_reg_count_out(pyexec_state.shared.reg, ref->idx,
                                   ref->t.gen, pyexec_now_usec(),
                                   run->outcome == PYEXEC_RUN_OK
                                   ? &ans->res.mem_bytes : NULL, end);
        pyexec_unlock();
    }
    if (end != PYEXEC_END_NONE && pid > 0) {
        pyexec_supervisor_kill(ref->idx, ref->t.gen, end);
    }
    if (ans->broken) {
        run->died_why = PYEXEC_END_CRASH;
    }
    else if (run->outcome == PYEXEC_RUN_DIED) {
        run->died_why = wait_for_reason(ref);
    }
}

static apr_status_t free_payload(void *payload)
{
    pyexec_io_free(payload);
    return APR_SUCCESS;
}

int pyexec_bridge_run(request_rec *r, const pyexec_request_t *req,
                      const pyexec_stream_sink_t *sink, pyexec_run_t *run)
{
    session_ref_t ref;
    answer_t ans;
    int rc;

    memset(run, 0, sizeof(*run));
    memset(&ans, 0, sizeof(ans));
    rc = req->has_id ? attach_session(&req->id, &ref, run)
                     : new_session(r, &ref, run);
    if (rc != OK || run->outcome == PYEXEC_RUN_BUSY) {
        return rc;              /* nothing counted in */
    }
    run->max_code = ref.t.limits.max_code;
    ans.sink = sink;
    if (sink) {
        sink->start(sink->ctx, run);
    }
    run_code(r, &ref, req, run, &ans);
    detach_session(&ref, run, &ans);
    if (ans.payload) {
        apr_pool_cleanup_register(r->pool, ans.payload, free_payload,
                                  apr_pool_cleanup_null);
    }
    if (run->outcome == PYEXEC_RUN_OK) {
        run->out = (const char *)ans.payload + PYEXEC_RESULT_FIXED_LEN;
        run->out_len = ans.res.stdout_len;
        run->err = run->out + ans.res.stdout_len;
        run->err_len = ans.res.stderr_len;
        run->display = (const unsigned char *)run->err + ans.res.stderr_len;
        run->display_len = ans.res.display_len;
    }
    return OK;
}

const char *pyexec_outcome_name(const pyexec_run_t *run)
{
    switch (run->outcome) {
    case PYEXEC_RUN_OK:      return "ok";
    case PYEXEC_RUN_TIMEOUT: return "timeout";
    case PYEXEC_RUN_MEMORY:  return "memory";
    case PYEXEC_RUN_DIED:    return pyexec_end_reason_name(run->died_why);
    case PYEXEC_RUN_BUSY:    return "busy";
    case PYEXEC_RUN_LOCAL:   return "error";
    case PYEXEC_RUN_TOO_LARGE: return "too-large";
    }
    return "unknown";
}
