/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Frame I/O, descriptor passing, clocks (pyexec_io.h). Core: runs in every
 * process of the module: httpd's parent, its workers, the supervisor, the
 * zygote and the session helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pyexec_io.h"

int64_t pyexec_now_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pyexec_wallclock_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

ssize_t pyexec_read_small_file(const char *path, char *buf, size_t len)
{
    ssize_t n;
    int fd;

    if (len == 0) {
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    return n;
}

/* Each buffer starts with this, so that pyexec_io_free() knows how it
 * was made; 16 bytes keep the payload as aligned as malloc's. */
typedef struct {
    size_t size;                /* of the whole mapping; 0: malloc()ed */
    size_t pad_;
} io_buf_t;

void *pyexec_io_alloc(size_t len)
{
    size_t total = sizeof(io_buf_t) + len;
    io_buf_t *b;

    if (total < len) {
        errno = ENOMEM;
        return NULL;
    }
    if (total < PYEXEC_IO_MAP_MIN) {
        b = malloc(total);
        if (!b) {
            return NULL;
        }
        b->size = 0;
        return b + 1;
    }
    b = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (b == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    b->size = total;
    return b + 1;
}

void pyexec_io_free(void *p)
{
    io_buf_t *b;

    if (!p) {
        return;
    }
    b = (io_buf_t *)p - 1;
    if (b->size) {
        munmap(b, b->size);
    }
    else {
        free(b);
    }
}

int pyexec_io_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Wait until fd is ready for `events` or the deadline passes. */
static pyexec_io_status_t wait_fd(int fd, short events, int64_t deadline_usec)
{
    struct pollfd pfd;
    int timeout_ms, rc;

    for (;;) {
        if (deadline_usec) {
            int64_t left = deadline_usec - pyexec_now_usec();
            if (left <= 0) {
                return PYEXEC_IO_TIMEOUT;
            }
            /* round up so we never spin on a sub-millisecond remainder */
            timeout_ms = (int)((left + 999) / 1000);
        }
        else {
            timeout_ms = -1;
        }
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, timeout_ms);
        if (rc > 0) {
            return PYEXEC_IO_OK;
        }
        if (rc < 0 && errno != EINTR) {
            return PYEXEC_IO_ERROR;
        }
    }
}

int pyexec_io_spin_readable(int fd, int64_t usec)
{
    int64_t until = pyexec_now_usec() + usec;
    struct pollfd pfd;

    do {
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 0) != 0) {
            return 1;           /* readable, hung up, or an error to read */
        }
    } while (pyexec_now_usec() < until);
    return 0;
}

long pyexec_io_pending(int fd)
{
    int n = 0;

    if (ioctl(fd, FIONREAD, &n) != 0) {
        return -1;
    }
    return n;
}

/* Read exactly len bytes; *got says how many came, whatever the end. */
static pyexec_io_status_t read_counted(int fd, unsigned char *p, size_t len,
                                       int64_t deadline_usec, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = recv(fd, p + *got, len - *got, MSG_DONTWAIT);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        if (n == 0) {
            return PYEXEC_IO_EOF;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == ECONNRESET) {
            return PYEXEC_IO_EOF;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return PYEXEC_IO_ERROR;
        }
        pyexec_io_status_t st = wait_fd(fd, POLLIN, deadline_usec);
        if (st != PYEXEC_IO_OK) {
            return st;
        }
    }
    return PYEXEC_IO_OK;
}

pyexec_io_status_t pyexec_io_read_full(int fd, void *buf, size_t len,
                                       int64_t deadline_usec)
{
    size_t got;

    return read_counted(fd, buf, len, deadline_usec, &got);
}

/* Every byte of buf, with send(): it never raises SIGPIPE, never blocks
 * past the deadline, and can name no destination, so the helper's system
 * call filter may allow it (sendmsg() and writev() are not). */
static pyexec_io_status_t send_full(int fd, const char *p, size_t left,
                                    int64_t deadline_usec)
{
    while (left > 0) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n >= 0) {
            p += n;
            left -= (size_t)n;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET) {
            return PYEXEC_IO_EOF;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return PYEXEC_IO_ERROR;
        }
        pyexec_io_status_t st = wait_fd(fd, POLLOUT, deadline_usec);
        if (st != PYEXEC_IO_OK) {
            return st;
        }
    }
    return PYEXEC_IO_OK;
}

pyexec_io_status_t pyexec_io_writev_full(int fd, struct iovec *iov, int iovcnt,
                                         int64_t deadline_usec)
{
    char gather[PYEXEC_IO_GATHER_MAX];
    size_t total = 0;
    int i;

    for (i = 0; i < iovcnt; i++) {
        total += iov[i].iov_len;
    }
    /* A small message goes out in one send(): the reader then wakes up
     * once, with the whole frame there, not once per piece. */
    if (total <= sizeof(gather)) {
        char *p = gather;

        for (i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len) {
                memcpy(p, iov[i].iov_base, iov[i].iov_len);
                p += iov[i].iov_len;
            }
        }
        return send_full(fd, gather, total, deadline_usec);
    }
    for (i = 0; i < iovcnt; i++) {
        pyexec_io_status_t st = send_full(fd, iov[i].iov_base,
                                          iov[i].iov_len, deadline_usec);
        if (st != PYEXEC_IO_OK) {
            return st;
        }
    }
    return PYEXEC_IO_OK;
}

pyexec_io_status_t pyexec_io_send_frame(int fd, uint16_t type, uint32_t flags,
                                        const void *payload, size_t len,
                                        int64_t deadline_usec)
{
    unsigned char hdr[PYEXEC_FRAME_HDR_LEN];
    struct iovec iov[2];

    if (len > PYEXEC_FRAME_MAX_PAYLOAD) {
        return PYEXEC_IO_PROTOCOL;
    }
    pyexec_frame_encode_hdr(hdr, type, flags, (uint32_t)len);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof(hdr);
    iov[1].iov_base = (void *)payload;
    iov[1].iov_len = len;
    return pyexec_io_writev_full(fd, iov, len ? 2 : 1, deadline_usec);
}

pyexec_io_status_t pyexec_io_recv_frame(int fd, uint32_t max_payload,
                                        pyexec_frame_hdr_t *hdr,
                                        unsigned char **payload,
                                        int64_t deadline_usec)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_io_status_t st;
    unsigned char *buf = NULL;
    size_t got;

    *payload = NULL;
    st = read_counted(fd, raw, sizeof(raw), deadline_usec, &got);
    if (st == PYEXEC_IO_EOF && got == 0) {
        /* a kept connection closed between frames, not inside one */
        return PYEXEC_IO_CLOSED;
    }
    if (st != PYEXEC_IO_OK) {
        return st;
    }
    if (pyexec_frame_decode_hdr(raw, sizeof(raw), max_payload, hdr)
        != PYEXEC_FRAME_OK) {
        return PYEXEC_IO_PROTOCOL;
    }
    if (hdr->length == 0) {
        return PYEXEC_IO_OK;
    }
    /* one spare byte: text payloads come back NUL terminated */
    buf = pyexec_io_alloc((size_t)hdr->length + 1);
    if (!buf) {
        errno = ENOMEM;
        return PYEXEC_IO_ERROR;
    }
    st = pyexec_io_read_full(fd, buf, hdr->length, deadline_usec);
    if (st != PYEXEC_IO_OK) {
        pyexec_io_free(buf);
        return st;
    }
    buf[hdr->length] = '\0';
    *payload = buf;
    return PYEXEC_IO_OK;
}

int pyexec_io_send_fd(int sock, const void *msg, size_t len, int fd)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {(void *)msg, len};
    struct msghdr mh;
    struct cmsghdr *cm;

    memset(&mh, 0, sizeof(mh));
    memset(&control, 0, sizeof(control));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.space;
    mh.msg_controllen = sizeof(control.space);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

ssize_t pyexec_io_recv_fd(int sock, void *buf, size_t len, int *fd)
{
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {buf, len};
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t n;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.space;
    mh.msg_controllen = sizeof(control.space);
    *fd = -1;
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
         cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS
            && cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(fd, CMSG_DATA(cm), sizeof(int));
        }
    }
    return n;
}
