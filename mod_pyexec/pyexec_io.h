/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Plain POSIX descriptor helpers shared by every process of the module:
 * whole-frame reads and writes with an optional monotonic deadline,
 * payload buffers, descriptor passing, clocks. No httpd or APR headers.
 */
#ifndef PYEXEC_IO_H
#define PYEXEC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pyexec_protocol.h"

/* Monotonic clock in microseconds. */
int64_t pyexec_now_usec(void);
/* Wall clock in microseconds (for timestamps people read). */
int64_t pyexec_wallclock_usec(void);

/* Read a small file (a /proc entry) into buf, NUL terminated. Returns
 * the bytes read, or -1. */
ssize_t pyexec_read_small_file(const char *path, char *buf, size_t len);

/* Make fd non-blocking: 0, or -1 (errno). */
int pyexec_io_set_nonblock(int fd);

typedef enum {
    PYEXEC_IO_OK = 0,
    PYEXEC_IO_EOF,        /* peer closed before a whole frame arrived */
    PYEXEC_IO_CLOSED,     /* ... and before any byte of it (recv_frame) */
    PYEXEC_IO_TIMEOUT,    /* deadline passed */
    PYEXEC_IO_ERROR,      /* errno says why */
    PYEXEC_IO_PROTOCOL,   /* a frame that breaks the protocol */
} pyexec_io_status_t;

/* Read exactly len bytes. deadline_usec is on pyexec_now_usec()'s clock;
 * 0 waits forever. */
pyexec_io_status_t pyexec_io_read_full(int fd, void *buf, size_t len,
                                       int64_t deadline_usec);

/* Poll fd without sleeping for up to usec microseconds, until it is
 * readable (1) or the time is up (0). */
int pyexec_io_spin_readable(int fd, int64_t usec);

/* Bytes received on fd and not read yet (FIONREAD), or -1 with errno
 * set; callers treat -1 as "something there": not idle. */
long pyexec_io_pending(int fd);

/* Messages up to this size are sent with a single system call. */
#define PYEXEC_IO_GATHER_MAX (32 * 1024)

/* Write every byte of the iovecs; never raises SIGPIPE, never blocks
 * past the deadline. */
pyexec_io_status_t pyexec_io_writev_full(int fd, struct iovec *iov, int iovcnt,
                                         int64_t deadline_usec);

/* Send one frame (header + payload). */
pyexec_io_status_t pyexec_io_send_frame(int fd, uint16_t type, uint32_t flags,
                                        const void *payload, size_t len,
                                        int64_t deadline_usec);

/* Buffers for frame payloads, freed with pyexec_io_free(). Large ones
 * are mapped directly rather than taken from malloc: freeing such a block
 * would make glibc raise its mmap threshold to the block's size and keep
 * blocks that large in the freeing thread's arena from then on, so that
 * every thread of an httpd worker that once carried a 1 MB answer would
 * hold that much for good. Mapped, it goes back to the system at once. */
#define PYEXEC_IO_MAP_MIN (64 * 1024)
void *pyexec_io_alloc(size_t len);
void pyexec_io_free(void *p);

/* Read one frame header, then its payload into a buffer of
 * pyexec_io_alloc() the caller frees with pyexec_io_free() (NULL when
 * length is 0). The buffer has one byte more than the payload, set to
 * NUL, so text payloads are C strings. */
pyexec_io_status_t pyexec_io_recv_frame(int fd, uint32_t max_payload,
                                        pyexec_frame_hdr_t *hdr,
                                        unsigned char **payload,
                                        int64_t deadline_usec);

/* One message with a descriptor riding along (SCM_RIGHTS), on a
 * datagram or seqpacket socket: 0 if sent whole, -1 (errno) if not. */
int pyexec_io_send_fd(int sock, const void *msg, size_t len, int fd);

/* Receive one such message; *fd is the descriptor (close-on-exec) or -1
 * if none came. Returns recvmsg()'s result. */
ssize_t pyexec_io_recv_fd(int sock, void *buf, size_t len, int *fd);

#endif /* PYEXEC_IO_H */
