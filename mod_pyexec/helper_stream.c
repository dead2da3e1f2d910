/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Output as it is written, for a streamed run (PYEXEC_EXEC_STREAM): what
 * the capture keeps of stdout and stderr, and each display item, also go
 * to the worker in OUTPUT frames while the run goes on. Runs in each
 * session helper, in its one thread and in its SIGALRM handler.
 *
 * Writes are coalesced: a piece waits in the buffer, and a one-shot
 * timer sends what waits STREAM_COALESCE_US after the first of them,
 * whatever the code does meanwhile (computes, sleeps), so that print()'s
 * text and its newline travel as one. flush() sends at once. The handler only
 * ever sends without blocking, and leaves the buffer alone while the
 * run's own path is in here (stream_busy); it then tries again shortly.
 *
 * Nothing here is a limit: the capture has cut the text at the session's
 * cap already, and the worker checks every frame against the caps
 * anyway (pyexec_bridge.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "helper_stream.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"

#define STREAM_BUF        65536         /* frames waiting to go out */
#define STREAM_FRAME_MAX  16384         /* payload of one OUTPUT frame */
#define STREAM_COALESCE_US 1000

static struct {
    int fd;                     /* the run's connection; -1: not streaming */
    unsigned char buf[STREAM_BUF];
    size_t len;                 /* bytes of frames in buf ... */
    size_t sent;                /* ... of which sent */
    size_t open_at;             /* header of the frame still growing */
    int open_kind;              /* its kind; 0: none */
    int broken;                 /* a send failed: the run goes on unheard */
    int armed;
} T = { .fd = -1 };

static volatile sig_atomic_t stream_busy;

/* The handler shares T with the run's path on one thread: the flag is
 * the whole lock, and the compiler must not move T's stores across it */
static void enter(void)
{
    stream_busy = 1;
    atomic_signal_fence(memory_order_seq_cst);
}

static void leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    stream_busy = 0;
}

static void arm(int64_t usec)
{
    struct itimerval it;

    memset(&it, 0, sizeof(it));
    it.it_value.tv_sec = (time_t)(usec / 1000000);
    it.it_value.tv_usec = (suseconds_t)(usec % 1000000);
    setitimer(ITIMER_REAL, &it, NULL);
    T.armed = usec > 0;
}

/* The growing frame is closed: its header tells its final length. An
 * empty one is taken back: the worker refuses empty frames. */
static void close_frame(void)
{
    if (T.open_kind && T.len == T.open_at + PYEXEC_FRAME_HDR_LEN) {
        T.len = T.open_at;
        T.open_kind = 0;
    }
    if (T.open_kind) {
        pyexec_frame_encode_hdr(T.buf + T.open_at, PYEXEC_MSG_OUTPUT,
                                (uint32_t)T.open_kind,
                                (uint32_t)(T.len - T.open_at
                                           - PYEXEC_FRAME_HDR_LEN));
        T.open_kind = 0;
    }
}

/* Send what the buffer holds, without blocking (wait: 0) or until it is
 * all out. Whole frames only: the growing one is closed first. */
static void send_buffered(int wait)
{
    close_frame();
    while (!T.broken && T.sent < T.len) {
        ssize_t n = send(T.fd, T.buf + T.sent, T.len - T.sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            T.sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait) {
            /* the worker reads as its client does; the run's deadline,
             * held from outside, bounds how long this may take. The
             * timer would only interrupt the wait, over and over */
            pyexec_io_status_t st;

            arm(0);
            st = pyexec_io_writev_full(
                T.fd, &(struct iovec){ T.buf + T.sent, T.len - T.sent }, 1,
                pyexec_now_usec() + 60000000);

            if (st == PYEXEC_IO_OK) {
                T.sent = T.len;
                continue;
            }
            T.broken = 1;       /* part of a frame may be out: no more */
            break;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;             /* later, from the timer or the next put */
        }
        T.broken = 1;
    }
    if (T.sent == T.len) {
        T.sent = T.len = 0;
    }
}

static void on_alarm(int sig)
{
    int saved = errno;

    (void)sig;
    T.armed = 0;
    if (T.fd >= 0) {
        if (stream_busy) {
            arm(500);           /* the run is in here: shortly */
        }
        else {
            enter();
            send_buffered(0);
            if (T.len) {
                arm(STREAM_COALESCE_US);
            }
            leave();
        }
    }
    errno = saved;
}

int pyexec_stream_setup(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGALRM, &sa, NULL);
}

void pyexec_stream_begin(int fd)
{
    enter();
    T.len = T.sent = 0;
    T.open_kind = 0;
    T.broken = 0;
    T.fd = fd;
    leave();
}

int pyexec_stream_end(void)
{
    int ok;

    if (T.fd < 0) {
        return 1;
    }
    enter();
    arm(0);
    send_buffered(1);
    ok = !T.broken;
    T.fd = -1;
    leave();
    return ok;
}

void pyexec_stream_put(int kind, const void *data, size_t n)
{
    const unsigned char *p = data;

    if (T.fd < 0 || T.broken) {
        return;
    }
    enter();
    while (n > 0) {
        size_t room, k;

        /* a new frame when the kind changes, the growing one is full, or
         * its header may already be on its way */
        if (T.open_kind != kind
            || T.len - T.open_at - PYEXEC_FRAME_HDR_LEN >= STREAM_FRAME_MAX
            || T.sent > T.open_at) {
            close_frame();
            if (STREAM_BUF - T.len < PYEXEC_FRAME_HDR_LEN + 1) {
                send_buffered(1);
                if (T.broken) {
                    break;
                }
            }
            T.open_at = T.len;
            T.open_kind = kind;
            T.len += PYEXEC_FRAME_HDR_LEN;
        }
        room = STREAM_BUF - T.len;
        k = STREAM_FRAME_MAX - (T.len - T.open_at - PYEXEC_FRAME_HDR_LEN);
        k = k < room ? k : room;
        k = k < n ? k : n;
        /* a frame is an event of its own: it ends between characters,
         * or the client would see each half repaired */
        while (k < n && k > 0 && (p[k] & 0xc0) == 0x80) {
            k--;
        }
        if (k == 0) {
            close_frame();
            send_buffered(1);
            if (T.broken) {
                break;
            }
            continue;
        }
        memcpy(T.buf + T.len, p, k);
        T.len += k;
        p += k;
        n -= k;
        if (T.len == STREAM_BUF) {
            send_buffered(1);
            if (T.broken) {
                break;
            }
        }
    }
    if (T.len && !T.armed) {
        arm(STREAM_COALESCE_US);
    }
    leave();
}

void pyexec_stream_put_item(int kind, const void *data, size_t n)
{
    /* a display item is one frame of its own, never split, and goes out
     * at once: it is never small enough for coalescing to pay */
    if (T.fd < 0 || T.broken) {
        return;
    }
    enter();
    close_frame();
    if (STREAM_BUF - T.len < PYEXEC_FRAME_HDR_LEN + n) {
        send_buffered(1);
    }
    if (!T.broken && PYEXEC_FRAME_HDR_LEN + n <= STREAM_BUF - T.len) {
        pyexec_frame_encode_hdr(T.buf + T.len, PYEXEC_MSG_OUTPUT,
                                (uint32_t)kind, (uint32_t)n);
        memcpy(T.buf + T.len + PYEXEC_FRAME_HDR_LEN, data, n);
        T.len += PYEXEC_FRAME_HDR_LEN + n;
        send_buffered(0);
        if (T.len && !T.armed) {
            arm(STREAM_COALESCE_US);
        }
    }
    else if (!T.broken) {
        /* larger than the buffer (which is empty now): straight out */
        unsigned char hdr[PYEXEC_FRAME_HDR_LEN];
        struct iovec iov[2];

        pyexec_frame_encode_hdr(hdr, PYEXEC_MSG_OUTPUT, (uint32_t)kind,
                                (uint32_t)n);
        iov[0].iov_base = hdr;
        iov[0].iov_len = sizeof(hdr);
        iov[1].iov_base = (void *)data;
        iov[1].iov_len = n;
        if (pyexec_io_writev_full(T.fd, iov, 2, pyexec_now_usec() + 60000000)
            != PYEXEC_IO_OK) {
            T.broken = 1;
        }
    }
    leave();
}

void pyexec_stream_flush(void)
{
    if (T.fd < 0) {
        return;
    }
    enter();
    send_buffered(0);
    leave();
}
