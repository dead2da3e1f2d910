/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * A session helper: one process per session, forked by the zygote and
 * made a child of the supervisor. Runs as PyExecUser (by default httpd's
 * User), confined by pyexec_sandbox_apply() before it reads any byte a
 * worker sends.
 *
 * Its life: set up the session (helper_python.c), confine itself, tell
 * the supervisor READY (or REFUSED), then serve: accept workers'
 * connections on its listening socket, read EXEC requests carrying its
 * token, run them one at a time in ticket order, answer STARTED when
 * asked, then RESULT. The worker's side of this is pyexec_bridge.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper_main.h"
#include "helper_python.h"
#include "helper_sandbox.h"
#include "helper_stream.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"

/* --- one execution, answered on conn --------------------------------- */

/* Constant time: the comparison must not tell how much was right. */
static int token_ok(const unsigned char *got, const uint8_t *want)
{
    unsigned char diff = 0;

    for (int i = 0; i < PYEXEC_TOKEN_LEN; i++) {
        diff |= (unsigned char)(got[i] ^ want[i]);
    }
    return diff == 0;
}

/* A request read from a connection and not yet run. */
typedef struct {
    unsigned char *payload;     /* pyexec_exec_fixed_t, stdin, the source */
    uint32_t flags;
    uint32_t ticket;
    uint32_t stdin_len;
} request_t;

/* One EXEC read from conn. Returns whether it is a request to run;
 * anything else is dropped unanswered. */
static int read_request(int conn, const pyexec_spawn_t *sp, request_t *rq)
{
    pyexec_frame_hdr_t hdr;
    pyexec_exec_fixed_t fixed;
    pyexec_io_status_t st;

    /* the worker writes the whole request at once; a stall is a broken
     * peer and must not wedge the session */
    st = pyexec_io_recv_frame(conn, sp->max_code + PYEXEC_EXEC_FIXED_LEN,
                              &hdr, &rq->payload,
                              pyexec_now_usec() + 5000000);
    if (st == PYEXEC_IO_ERROR && errno == ENOMEM) {
        _exit(PYEXEC_EXIT_MEMORY);
    }
    /* only whoever read our token from httpd's shared memory may run
     * code here */
    if (st != PYEXEC_IO_OK || hdr.type != PYEXEC_MSG_EXEC
        || pyexec_exec_decode(rq->payload, hdr.length, &fixed) != 0
        || !token_ok(fixed.token, sp->token)) {
        pyexec_io_free(rq->payload);
        rq->payload = NULL;
        return 0;
    }
    rq->flags = hdr.flags;
    rq->ticket = fixed.ticket;
    rq->stdin_len = fixed.stdin_len;
    return 1;
}

/* Run a request read by read_request (its payload is freed) and answer
 * it on conn. Returns whether conn may carry the next one: not after
 * anything that went wrong. */
static int run_request(int conn, request_t *rq)
{
    static const char marker_fmt[] =
        "\n[output truncated: more than %u bytes]\n";
    unsigned char hbuf[PYEXEC_FRAME_HDR_LEN], fixed[PYEXEC_RESULT_FIXED_LEN];
    char out_marker[PYEXEC_RESULT_MARKER_MAX];
    char err_marker[PYEXEC_RESULT_MARKER_MAX];
    pyexec_py_result_t res;
    pyexec_result_t wire;
    struct iovec iov[7];
    pyexec_io_status_t st;
    size_t out_mlen = 0, err_mlen = 0;

    /* a request that waited behind others: if whoever sent it gave up
     * waiting, nobody hears STARTED, and nobody would bound the run */
    if ((rq->flags & PYEXEC_EXEC_WANT_STARTED)
        && pyexec_io_send_frame(conn, PYEXEC_MSG_STARTED, 0, NULL, 0,
                                pyexec_now_usec() + 1000000)
           != PYEXEC_IO_OK) {
        pyexec_io_free(rq->payload);
        rq->payload = NULL;
        return 0;
    }
    if (rq->flags & PYEXEC_EXEC_STREAM) {
        pyexec_stream_begin(conn);
    }
    /* the source last: the frame's spare byte ends it with a NUL */
    pyexec_py_exec((const char *)rq->payload + PYEXEC_EXEC_FIXED_LEN
                   + rq->stdin_len,
                   (const char *)rq->payload + PYEXEC_EXEC_FIXED_LEN,
                   rq->stdin_len,
                   (rq->flags & PYEXEC_EXEC_DISPLAY_RESULT) != 0, &res);
    pyexec_io_free(rq->payload);
    rq->payload = NULL;
    /* what is still coalescing goes out before the answer; a worker
     * that stopped reading has the connection closed, not answered */
    if (!pyexec_stream_end() && !res.memory_exceeded) {
        return 0;
    }

    if (res.out_cut) {
        out_mlen = (size_t)snprintf(out_marker, sizeof(out_marker),
                                    marker_fmt, (unsigned)res.out_len);
    }
    if (res.err_cut) {
        err_mlen = (size_t)snprintf(err_marker, sizeof(err_marker),
                                    marker_fmt, (unsigned)res.err_len);
    }
    memset(&wire, 0, sizeof(wire));
    wire.status = res.memory_exceeded ? PYEXEC_EXEC_MEMORY : PYEXEC_EXEC_OK;
    wire.flags = (res.out_cut ? PYEXEC_RESULT_STDOUT_CUT : 0)
                 | (res.err_cut ? PYEXEC_RESULT_STDERR_CUT : 0);
    wire.stdout_len = (uint32_t)(res.out_len + out_mlen);
    wire.stderr_len = (uint32_t)(res.err_len + err_mlen);
    wire.exec_usec = res.exec_usec;
    wire.mem_bytes = res.mem_bytes;
    wire.display_len = (uint32_t)res.display_len;
    wire.display_count = res.display_count;
    pyexec_result_encode(fixed, &wire);
    pyexec_frame_encode_hdr(hbuf, PYEXEC_MSG_RESULT, 0,
                            PYEXEC_RESULT_FIXED_LEN + wire.stdout_len
                            + wire.stderr_len + wire.display_len);
    iov[0].iov_base = hbuf;
    iov[0].iov_len = sizeof(hbuf);
    iov[1].iov_base = fixed;
    iov[1].iov_len = sizeof(fixed);
    iov[2].iov_base = (void *)res.out;
    iov[2].iov_len = res.out_len;
    iov[3].iov_base = out_marker;
    iov[3].iov_len = out_mlen;
    iov[4].iov_base = (void *)res.err;
    iov[4].iov_len = res.err_len;
    iov[5].iov_base = err_marker;
    iov[5].iov_len = err_mlen;
    iov[6].iov_base = (void *)res.display;
    iov[6].iov_len = res.display_len;
    st = pyexec_io_writev_full(conn, iov, 7, pyexec_now_usec() + 5000000);

    if (res.memory_exceeded) {
        _exit(PYEXEC_EXIT_MEMORY);
    }
    return st == PYEXEC_IO_OK;
}

/* Workers keep their connection to a helper for the session's next
 * request (pyexec_bridge.c), which spares both sides a socket, a
 * connect, an accept and two closes per request. To take a new one past
 * HELPER_KEEP_CONNS, the helper closes the idle one used longest ago.
 * That never loses or repeats a run: a request that reaches a connection
 * just as it is closed was never read, and its worker, seeing the
 * connection closed before any answer, sends it again on a new one.
 *
 * Requests run in the order of their tickets (pyexec_protocol.h), which
 * is the order in which their workers counted themselves in, whatever
 * order their frames arrive in. A ticket that does not arrive within
 * TURN_WAIT_US is passed over: its worker gave up before sending, or
 * died. Should it arrive after all, it is answered SKIPPED, unrun, as the
 * requests after it may have changed the session meanwhile. */
#define HELPER_KEEP_CONNS 8     /* idle connections kept open */
#define HELPER_MAX_CONNS 16     /* of the 32 descriptors RLIMIT_NOFILE leaves:
                                   room to find a missing turn while a
                                   request waits on every kept one */
#define TURN_WAIT_US 200000
/* A connection that says nothing this long after it was accepted is not
 * a worker's: it may be closed to make room like an idle one. */
#define SILENT_US 1000000

typedef struct {
    int fd;
    uint64_t last;              /* when it last carried a request; 0: never,
                                   its first is on the way */
    int64_t accepted_at;        /* monotonic usec */
    request_t rq;               /* read, waiting for its turn, if payload */
} conn_t;

typedef struct {
    conn_t c[HELPER_MAX_CONNS];
    int n;
    uint64_t clock;
    uint32_t turn;              /* the ticket to run next */
    int64_t gap_since;          /* waiting for a missing turn since */
} conns_t;

static void conns_drop(conns_t *cs, int i)
{
    close(cs->c[i].fd);
    pyexec_io_free(cs->c[i].rq.payload);
    cs->n--;
    cs->c[i] = cs->c[cs->n];
}

/* Room for one more connection: none needed below the number kept; at
 * it, the idle connection used longest ago is closed. One that has
 * carried nothing yet is not idle: a worker connected to send a request,
 * and closing it would only make it connect again. With a request
 * waiting or on its way on every one, more are taken up to the hard
 * limit, as one of those may be the turn that is missing. */
static int conns_make_room(conns_t *cs)
{
    int64_t now = pyexec_now_usec();
    int oldest = -1;

    if (cs->n < HELPER_KEEP_CONNS) {
        return 1;
    }
    for (int i = 0; i < cs->n; i++) {
        const conn_t *c = &cs->c[i];

        /* never-used ones count as the oldest once they are silent */
        if (!c->rq.payload
            && (c->last || now - c->accepted_at > SILENT_US)
            && (oldest < 0 || c->last < cs->c[oldest].last)
            && !pyexec_io_spin_readable(c->fd, 0)) {
            oldest = i;
        }
    }
    if (oldest >= 0) {
        conns_drop(cs, oldest);
        return 1;
    }
    return cs->n < HELPER_MAX_CONNS;
}

/* Everything waiting in the backlog, as far as there is room. */
static void conns_accept(conns_t *cs, int lfd)
{
    while (conns_make_room(cs)) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN) {
                _exit(PYEXEC_EXIT_SETUP);
            }
            return;
        }
        memset(&cs->c[cs->n], 0, sizeof(cs->c[cs->n]));
        cs->c[cs->n].fd = c;
        cs->c[cs->n].accepted_at = pyexec_now_usec();
        cs->n++;
    }
}

/* A request sent without WANT_STARTED was sent by a worker that found no
 * other request of this session counted in: every earlier ticket has
 * been answered or given up. Its turn has come, whatever the turn says
 * (a worker that took a ticket and died before sending leaves a gap that
 * must not cost the next request TURN_WAIT_US of its time limit). */
static void catch_up(conns_t *cs)
{
    for (int i = 0; i < cs->n; i++) {
        const request_t *rq = &cs->c[i].rq;

        if (rq->payload && !(rq->flags & PYEXEC_EXEC_WANT_STARTED)
            && PYEXEC_TICKET_BEFORE(cs->turn, rq->ticket)) {
            cs->turn = rq->ticket;
        }
    }
}

/* Answer SKIPPED to requests whose turn has passed. */
static void skip_late(conns_t *cs)
{
    /* descending, so that a drop moves a visited one into place */
    for (int i = cs->n - 1; i >= 0; i--) {
        request_t *rq = &cs->c[i].rq;

        if (rq->payload && PYEXEC_TICKET_BEFORE(rq->ticket, cs->turn)) {
            pyexec_io_free(rq->payload);
            rq->payload = NULL;
            cs->c[i].last = ++cs->clock;
            if (pyexec_io_send_frame(cs->c[i].fd, PYEXEC_MSG_SKIPPED, 0,
                                     NULL, 0, pyexec_now_usec() + 100000)
                != PYEXEC_IO_OK) {
                conns_drop(cs, i);
            }
        }
    }
}

/* Run whatever requests have their turn; returns with none left that
 * can run now. */
static void run_turns(conns_t *cs)
{
    for (;;) {
        int next = -1;

        catch_up(cs);
        skip_late(cs);
        /* chosen after the drops above, which move connections about */
        for (int i = 0; i < cs->n; i++) {
            const request_t *rq = &cs->c[i].rq;

            if (rq->payload && (next < 0 || PYEXEC_TICKET_BEFORE(
                                    rq->ticket, cs->c[next].rq.ticket))) {
                next = i;
            }
        }
        if (next < 0) {
            cs->gap_since = 0;
            return;
        }
        if (cs->c[next].rq.ticket != cs->turn) {
            int64_t now = pyexec_now_usec();

            if (!cs->gap_since) {
                cs->gap_since = now;
            }
            if (now - cs->gap_since < TURN_WAIT_US) {
                return;
            }
            cs->turn = cs->c[next].rq.ticket;
        }
        cs->gap_since = 0;
        cs->turn++;
        cs->c[next].last = ++cs->clock;
        if (cs->c[next].rq.flags & PYEXEC_EXEC_PASS) {
            continue;       /* its turn is used up: SKIPPED, next round */
        }
        if (!run_request(cs->c[next].fd, &cs->c[next].rq)) {
            conns_drop(cs, next);
        }
    }
}

static void serve_forever(int lfd, const pyexec_spawn_t *sp)
    __attribute__((noreturn));

static void serve_forever(int lfd, const pyexec_spawn_t *sp)
{
    struct pollfd pfd[1 + HELPER_MAX_CONNS];
    int which[HELPER_MAX_CONNS];
    conns_t cs;

    memset(&cs, 0, sizeof(cs));
    for (;;) {
        int np = 0, timeout = -1, ready;

        /* a connection whose request waits for its turn has nothing more
         * to say until it is answered */
        for (int i = 0; i < cs.n; i++) {
            if (cs.c[i].rq.payload) {
                continue;
            }
            pfd[np].fd = cs.c[i].fd;
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            which[np++] = i;
        }
        /* With every place taken, a pending connection would make
         * poll() return at once, over and over: leave the backlog be and
         * look again when a silent connection may have become closable */
        pfd[np].fd = cs.n < HELPER_MAX_CONNS ? lfd : -1;
        pfd[np].events = POLLIN;
        pfd[np].revents = 0;
        if (cs.n >= HELPER_MAX_CONNS) {
            timeout = SILENT_US / 1000;
            if (conns_make_room(&cs)) {
                continue;       /* one was closed: poll the backlog too */
            }
        }
        if (cs.gap_since) {
            int64_t left = cs.gap_since + TURN_WAIT_US - pyexec_now_usec();
            int ms = left > 0 ? (int)((left + 999) / 1000) : 0;

            timeout = timeout < 0 || ms < timeout ? ms : timeout;
        }
        ready = poll(pfd, (nfds_t)np + 1, timeout);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(PYEXEC_EXIT_SETUP);
        }
        /* descending, so that a drop leaves the indexes still to visit
         * alone */
        for (int k = np - 1; k >= 0; k--) {
            if (pfd[k].revents
                && !read_request(cs.c[which[k]].fd, sp, &cs.c[which[k]].rq)) {
                /* also the normal end: the worker closed it (EOF) */
                conns_drop(&cs, which[k]);
            }
        }
        if (pfd[np].revents) {
            conns_accept(&cs, lfd);
        }
        run_turns(&cs);
    }
}
/* --- a session helper, freshly forked from the zygote ---------------- */

void pyexec_helper_serve(int chan, int lfd, const pyexec_spawn_t *sp,
                         const char *const *blocked, size_t nblocked,
                         uint32_t layers)
{
    char err[PYEXEC_REFUSED_TEXT_MAX];
    int keep[3];
    pyexec_sandbox_opts_t opts;
    pyexec_slot_msg_t ready;
    unsigned char msg[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN];

    pyexec_py_after_fork_child();
    /* die with the supervisor, whatever happens to it; should it be gone
     * already, the READY below fails and we leave */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    setsid();
    /* a worker that hangs up early must cost a write error, not us */
    signal(SIGPIPE, SIG_IGN);
    if (pyexec_stream_setup() != 0) {
        pyexec_helper_die(PYEXEC_EXIT_SETUP, "SIGALRM: %s", strerror(errno));
    }
    /* the backlog is emptied until accept() finds nothing (serve_forever) */
    if (pyexec_io_set_nonblock(lfd) != 0) {
        pyexec_helper_die(PYEXEC_EXIT_SETUP, "listening socket: %s",
                          strerror(errno));
    }

    if (pyexec_py_session_setup(blocked, nblocked, sp->max_output,
                                sp->max_display, !(sp->flags & PYEXEC_SPAWN_NO_IMPORT_HOOK),
                                err, sizeof(err)) != 0) {
        pyexec_helper_die(PYEXEC_EXIT_SETUP, "session setup: %s", err);
    }

    /* stderr (httpd's error log) stays open until the sandbox holds, so
     * that a refusal can be told */
    keep[0] = lfd;
    keep[1] = chan;
    keep[2] = 2;
    memset(&opts, 0, sizeof(opts));
    opts.memory_limit = sp->memory_limit;
    opts.cpu_seconds = sp->cpu_seconds;
    opts.listen_fd = lfd;
    opts.keep_fds = keep;
    opts.nkeep = 3;
    opts.read_paths = pyexec_py_library_paths();
    opts.required = (sp->flags & PYEXEC_SPAWN_REQUIRE_SANDBOX)
                    ? PYEXEC_LAYERS_REQUIRED : 0;
    opts.skip = ((sp->flags & PYEXEC_SPAWN_SKIP_SECCOMP)
                 ? PYEXEC_LAYER_SECCOMP : 0)
                | ((sp->flags & PYEXEC_SPAWN_SKIP_LANDLOCK)
                   ? PYEXEC_LAYER_LANDLOCK : 0);
    ready.pid = (int32_t)pyexec_sandbox_outer_pid();
    ready.slot = sp->slot;
    ready.gen = sp->gen;
    if (pyexec_sandbox_apply(&opts, &layers, err, sizeof(err)) != 0) {
        /* RLIMIT_FSIZE is 0 by now, so the error log cannot be written:
         * the supervisor logs it for us */
        unsigned char out[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN
                          + PYEXEC_REFUSED_TEXT_MAX];
        size_t tlen = strnlen(err, PYEXEC_REFUSED_TEXT_MAX);

        ready.reason = layers;
        pyexec_frame_encode_hdr(out, PYEXEC_MSG_REFUSED, 0,
                                (uint32_t)(PYEXEC_SLOT_MSG_LEN + tlen));
        pyexec_slot_msg_encode(out + PYEXEC_FRAME_HDR_LEN, &ready);
        memcpy(out + PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN, err, tlen);
        send(chan, out, PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN + tlen,
             MSG_NOSIGNAL);
        _exit(PYEXEC_EXIT_SETUP);
    }
    close(2);

    ready.reason = layers;
    pyexec_frame_encode_hdr(msg, PYEXEC_MSG_READY, 0, PYEXEC_SLOT_MSG_LEN);
    pyexec_slot_msg_encode(msg + PYEXEC_FRAME_HDR_LEN, &ready);
    if (send(chan, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg)) {
        _exit(PYEXEC_EXIT_SETUP);
    }
    /* from here on the helper talks only to whoever connects to it */
    close(chan);
    pyexec_py_arm_memory_guard();

    serve_forever(lfd, sp);
}
