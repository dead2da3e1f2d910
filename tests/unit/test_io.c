/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <poll.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyexec_io.h"
#include "test_suites.h"

/* Long enough never to fire on a loaded machine; tests that want a
 * timeout use their own short deadline. */
#define SLACK_US  (10 * 1000 * 1000)

static int sv[2];

static void setup_pair(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void teardown_pair(void)
{
    if (sv[0] >= 0) {
        close(sv[0]);
    }
    if (sv[1] >= 0) {
        close(sv[1]);
    }
}

static void close_end(int i)
{
    close(sv[i]);
    sv[i] = -1;
}

static int64_t deadline_in(int64_t usec)
{
    return pyexec_now_usec() + usec;
}

/* Bytes as a broken or hostile peer might send them. */
static void write_raw(int fd, const void *buf, size_t len)
{
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
}

static int readable_now(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* --- clocks ---------------------------------------------------------- */

START_TEST(test_clocks)
{
    int64_t a = pyexec_now_usec(), b, wall;
    struct timespec nap = { 0, 20 * 1000 * 1000 };

    nanosleep(&nap, NULL);
    b = pyexec_now_usec();
    ck_assert(b - a >= 20000);
    ck_assert(b - a < SLACK_US);

    /* within a few seconds of time(2): microseconds, not ms or ns */
    wall = pyexec_wallclock_usec();
    ck_assert(wall / 1000000 - (int64_t)time(NULL) <= 2);
    ck_assert((int64_t)time(NULL) - wall / 1000000 <= 2);
}
END_TEST

/* --- frames that arrive whole ---------------------------------------- */

/* Leave a freed block of n bytes full of non-zero garbage, so that the
 * next malloc() of that size is not zeroed memory that would hide a
 * missing terminator. The volatile keeps the compiler from dropping
 * the whole dance as dead code. */
static void dirty_heap(size_t n)
{
    static void *volatile block;

    block = malloc(n);
    ck_assert_ptr_nonnull(block);
    memset(block, 0x5a, n);
    free(block);
}

#define TEXT "print('hello, world')"

START_TEST(test_round_trip)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload = NULL;

    dirty_heap(sizeof(TEXT) + 1);
    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_EXEC,
                                          PYEXEC_EXEC_WANT_STARTED,
                                          TEXT, sizeof(TEXT) - 1,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_uint_eq(hdr.type, PYEXEC_MSG_EXEC);
    ck_assert_uint_eq(hdr.flags, PYEXEC_EXEC_WANT_STARTED);
    ck_assert_uint_eq(hdr.length, sizeof(TEXT) - 1);
    ck_assert_ptr_nonnull(payload);
    ck_assert_mem_eq(payload, TEXT, sizeof(TEXT) - 1);
    /* text payloads are used as C strings straight away */
    ck_assert_int_eq(payload[sizeof(TEXT) - 1], '\0');
    ck_assert_str_eq((char *)payload, TEXT);
    pyexec_io_free(payload);
}
END_TEST

START_TEST(test_round_trip_empty)
{
    pyexec_frame_hdr_t hdr;
    static unsigned char stale[1];
    unsigned char *payload = stale;

    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_STARTED, 0, NULL,
                                          0, 0), PYEXEC_IO_OK);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload, 0),
                     PYEXEC_IO_OK);
    ck_assert_uint_eq(hdr.type, PYEXEC_MSG_STARTED);
    ck_assert_uint_eq(hdr.length, 0);
    ck_assert_ptr_null(payload);
}
END_TEST

/* Frames share one stream: reading one must take exactly its bytes. */
START_TEST(test_back_to_back)
{
    static const char *const texts[] = { "first", "", "third frame" };
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;
    int i;

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(pyexec_io_send_frame(sv[0], (uint16_t)(100 + i),
                                              (uint32_t)i, texts[i],
                                              strlen(texts[i]), 0),
                         PYEXEC_IO_OK);
    }
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                              deadline_in(SLACK_US)),
                         PYEXEC_IO_OK);
        ck_assert_uint_eq(hdr.type, 100 + i);
        ck_assert_uint_eq(hdr.flags, (uint32_t)i);
        ck_assert_uint_eq(hdr.length, strlen(texts[i]));
        if (hdr.length) {
            ck_assert_str_eq((char *)payload, texts[i]);
        }
        pyexec_io_free(payload);
    }
    ck_assert(!readable_now(sv[1]));
}
END_TEST

/* Binary payloads (RESULT carries stdout and stderr) pass unchanged. */
START_TEST(test_binary_payload)
{
    unsigned char data[256];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;
    int i;

    for (i = 0; i < 256; i++) {
        data[i] = (unsigned char)i;
    }
    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_RESULT, 0, data,
                                          sizeof(data), 0), PYEXEC_IO_OK);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], sizeof(data), &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_uint_eq(hdr.length, sizeof(data));
    ck_assert_mem_eq(payload, data, sizeof(data));
    pyexec_io_free(payload);
}
END_TEST

/* Far more than a socket buffer holds, so both sides go through
 * partial writes, partial reads and waits. */
START_TEST(test_large_payload)
{
    size_t len = 8u * 1024u * 1024u + 3;
    unsigned char *data = malloc(len);
    pyexec_frame_hdr_t hdr;
    unsigned char *payload = NULL;
    size_t i;
    pid_t pid;
    int status;

    ck_assert_ptr_nonnull(data);
    for (i = 0; i < len; i++) {
        data[i] = (unsigned char)(i * 2654435761u >> 24);
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[1]);
        _exit(pyexec_io_send_frame(sv[0], PYEXEC_MSG_RESULT, 7, data, len,
                                   deadline_in(SLACK_US)) == PYEXEC_IO_OK
              ? 0 : 1);
    }
    close_end(0);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], (uint32_t)len, &hdr,
                                          &payload, deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(hdr.length, len);
    ck_assert_uint_eq(hdr.flags, 7);
    ck_assert(memcmp(payload, data, len) == 0);
    ck_assert_int_eq(payload[len], '\0');
    pyexec_io_free(payload);
    free(data);
}
END_TEST

/* --- peers that go away ---------------------------------------------- */

START_TEST(test_eof_before_frame)
{
    pyexec_frame_hdr_t hdr;
    static unsigned char stale[1];
    unsigned char *payload = stale;

    /* between frames is not inside one: a kept connection the helper
     * closed while idle, which the worker may retry on a new one */
    close_end(0);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_CLOSED);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_close_after_a_frame)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_STARTED, 0, NULL,
                                          0, deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    close_end(0);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_CLOSED);
}
END_TEST

START_TEST(test_eof_mid_header)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_RESULT, 0, 4);
    write_raw(sv[0], raw, 7);
    close_end(0);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_EOF);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_eof_mid_payload)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_RESULT, 0, 10);
    write_raw(sv[0], raw, sizeof(raw));
    write_raw(sv[0], "abcd", 4);
    close_end(0);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_EOF);
    /* a half frame is never handed out as if it were whole */
    ck_assert_ptr_null(payload);
}
END_TEST

/* A helper killed mid-request must show as EOF, not kill httpd's
 * worker with SIGPIPE (which would fail this test as a signal). */
START_TEST(test_send_to_closed_peer)
{
    close_end(1);
    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_EXEC, 0, "x", 1,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_EOF);
}
END_TEST

/* --- deadlines ------------------------------------------------------- */

START_TEST(test_recv_timeout)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;
    int64_t start = pyexec_now_usec(), deadline = start + 50000;

    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline),
                     PYEXEC_IO_TIMEOUT);
    /* not a moment before the deadline, and not forever either */
    ck_assert(pyexec_now_usec() >= deadline);
    ck_assert(pyexec_now_usec() - start < SLACK_US);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_recv_timeout_mid_payload)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;
    int64_t deadline;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_RESULT, 0, 100);
    write_raw(sv[0], raw, sizeof(raw));
    write_raw(sv[0], "partial", 7);
    deadline = deadline_in(50000);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline),
                     PYEXEC_IO_TIMEOUT);
    ck_assert(pyexec_now_usec() >= deadline);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_recv_deadline_passed)
{
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    /* already late and nothing to read: answer at once */
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          pyexec_now_usec() - 1),
                     PYEXEC_IO_TIMEOUT);
}
END_TEST

/* A peer that stops reading must not hold the writer past its
 * deadline. */
START_TEST(test_send_timeout)
{
    size_t len = 16u * 1024u * 1024u;
    unsigned char *data = calloc(1, len);
    int64_t deadline;

    ck_assert_ptr_nonnull(data);
    deadline = deadline_in(100000);
    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_RESULT, 0, data,
                                          len, deadline),
                     PYEXEC_IO_TIMEOUT);
    ck_assert(pyexec_now_usec() >= deadline);
    free(data);
}
END_TEST

/* --- protocol violations --------------------------------------------- */

START_TEST(test_bad_magic)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    static unsigned char stale[1];
    unsigned char *payload = stale;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
    memcpy(raw, "HTTP", 4);
    write_raw(sv[0], raw, sizeof(raw));
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_PROTOCOL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_bad_version)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
    raw[4] = PYEXEC_PROTO_VERSION + 1;
    write_raw(sv[0], raw, sizeof(raw));
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 1024, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_PROTOCOL);
    ck_assert_ptr_null(payload);
}
END_TEST

START_TEST(test_length_above_max)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    /* exactly the limit is fine ... */
    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_EXEC, 0,
                                          "0123456789", 10, 0),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 10, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    pyexec_io_free(payload);

    /* ... one more byte is refused before anything is read or allocated */
    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 11);
    write_raw(sv[0], raw, sizeof(raw));
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 10, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_PROTOCOL);
    ck_assert_ptr_null(payload);
}
END_TEST

/* A peer must not be able to make us allocate gigabytes, whatever limit
 * the caller passes. */
START_TEST(test_length_above_global_max)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    unsigned char *payload;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_RESULT, 0, 0xfffffff0u);
    write_raw(sv[0], raw, sizeof(raw));
    ck_assert_int_eq(pyexec_io_recv_frame(sv[1], 0xffffffffu, &hdr, &payload,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_PROTOCOL);
    ck_assert_ptr_null(payload);
}
END_TEST

/* The sender refuses what every receiver would, without putting half a
 * frame on the wire. */
START_TEST(test_send_too_large)
{
    static const char data[1];

    ck_assert_int_eq(pyexec_io_send_frame(sv[0], PYEXEC_MSG_EXEC, 0, data,
                                          (size_t)PYEXEC_FRAME_MAX_PAYLOAD + 1,
                                          deadline_in(SLACK_US)),
                     PYEXEC_IO_PROTOCOL);
    ck_assert(!readable_now(sv[1]));
}
END_TEST

/* --- read_full ------------------------------------------------------- */

START_TEST(test_read_full_bad_fd)
{
    char buf[4];
    int fd = sv[1];

    /* a descriptor gone bad is an error, not a hang or a false EOF */
    close_end(1);
    ck_assert_int_eq(pyexec_io_read_full(fd, buf, sizeof(buf),
                                         deadline_in(SLACK_US)),
                     PYEXEC_IO_ERROR);
}
END_TEST

/* --- one system call per small message --------------------------- */

/* On a SOCK_SEQPACKET pair every send() is a record of its own, so the
 * number of records received is the number of system calls that sent
 * them: a small frame must be one, whatever its iovecs, so that the
 * reader wakes up once and finds the whole frame there. */
START_TEST(test_small_writev_is_one_send)
{
    int sp[2];
    char a[] = "head", b[] = "token", c[] = "code";
    char buf[64];
    struct iovec iov[3] = {{a, 4}, {b, 5}, {c, 4}};

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
    ck_assert_int_eq(pyexec_io_writev_full(sp[0], iov, 3,
                                           deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT), 13);
    ck_assert_int_eq(memcmp(buf, "headtokencode", 13), 0);
    ck_assert_int_eq(recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    close(sp[0]);
    close(sp[1]);
}
END_TEST

/* Above the gather size the pieces go out as they are, all of them. */
START_TEST(test_large_writev_is_whole)
{
    size_t big = PYEXEC_IO_GATHER_MAX + 1000;
    char *a = malloc(big), *back = malloc(big + 10);
    struct iovec iov[2] = {{a, big}, {"tail", 4}};
    pid_t pid;
    int status;

    for (size_t i = 0; i < big; i++) {
        a[i] = (char)(i * 7);
    }
    pid = fork();
    if (pid == 0) {
        _exit(pyexec_io_writev_full(sv[0], iov, 2, deadline_in(SLACK_US)));
    }
    ck_assert_int_eq(pyexec_io_read_full(sv[1], back, big + 4,
                                         deadline_in(SLACK_US)),
                     PYEXEC_IO_OK);
    ck_assert_int_eq(memcmp(back, a, big), 0);
    ck_assert_int_eq(memcmp(back + big, "tail", 4), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == PYEXEC_IO_OK);
    free(a);
    free(back);
}
END_TEST

/* --- spinning for an answer -------------------------------------------- */

/* Whether addr lies in a mapping of its own (not malloc's heap): the
 * mapping that holds it starts within a page of it. */
static int own_mapping(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    uintptr_t a = (uintptr_t)addr, lo, hi;
    int own = -1;

    ck_assert_ptr_nonnull(f);
    while (own < 0 && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2
            && a >= lo && a < hi) {
            own = a - lo < 4096;
        }
    }
    fclose(f);
    return own == 1;
}

/* Payload buffers of PYEXEC_IO_MAP_MIN and more are each a mapping of
 * their own that pyexec_io_free() gives back at once (smaller ones come
 * from malloc, whose blocks may sit anywhere). */
START_TEST(test_payload_buffers)
{
    static const size_t sizes[] = { 1, 100, PYEXEC_IO_MAP_MIN - 64,
                                    PYEXEC_IO_MAP_MIN, 3 * 1024 * 1024 };
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = pyexec_io_alloc(sizes[i]);

        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        memset(p, 0xab, sizes[i]);
        if (sizes[i] < PYEXEC_IO_MAP_MIN) {
            pyexec_io_free(p);
            continue;
        }
        ck_assert(own_mapping(p));
        pyexec_io_free(p);
        /* gone from the address space, not kept by malloc */
        ck_assert(!own_mapping(p));
    }
    pyexec_io_free(NULL);
    ck_assert_ptr_null(pyexec_io_alloc(SIZE_MAX - 8));
}
END_TEST

START_TEST(test_spin_sees_data)
{
    ck_assert_int_eq(write(sv[0], "x", 1), 1);
    ck_assert_int_eq(pyexec_io_spin_readable(sv[1], 1000), 1);
}
END_TEST

START_TEST(test_spin_sees_hangup)
{
    close_end(0);
    ck_assert_int_eq(pyexec_io_spin_readable(sv[1], 1000), 1);
}
END_TEST

START_TEST(test_spin_gives_up_in_time)
{
    int64_t t0 = pyexec_now_usec();

    ck_assert_int_eq(pyexec_io_spin_readable(sv[1], 2000), 0);
    ck_assert(pyexec_now_usec() - t0 >= 2000);
    ck_assert(pyexec_now_usec() - t0 < 1000000);
}
END_TEST

Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc;

    tc = tcase_create("clocks");
    tcase_add_test(tc, test_clocks);
    suite_add_tcase(s, tc);

    tc = tcase_create("frames");
    tcase_add_checked_fixture(tc, setup_pair, teardown_pair);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_round_trip_empty);
    tcase_add_test(tc, test_back_to_back);
    tcase_add_test(tc, test_binary_payload);
    tcase_add_test(tc, test_large_payload);
    tcase_add_test(tc, test_payload_buffers);
    tcase_add_test(tc, test_eof_before_frame);
    tcase_add_test(tc, test_close_after_a_frame);
    tcase_add_test(tc, test_eof_mid_header);
    tcase_add_test(tc, test_eof_mid_payload);
    tcase_add_test(tc, test_send_to_closed_peer);
    tcase_add_test(tc, test_recv_timeout);
    tcase_add_test(tc, test_recv_timeout_mid_payload);
    tcase_add_test(tc, test_recv_deadline_passed);
    tcase_add_test(tc, test_send_timeout);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_bad_version);
    tcase_add_test(tc, test_length_above_max);
    tcase_add_test(tc, test_length_above_global_max);
    tcase_add_test(tc, test_send_too_large);
    tcase_add_test(tc, test_read_full_bad_fd);
    tcase_add_test(tc, test_small_writev_is_one_send);
    tcase_add_test(tc, test_large_writev_is_whole);
    tcase_add_test(tc, test_spin_sees_data);
    tcase_add_test(tc, test_spin_sees_hangup);
    tcase_add_test(tc, test_spin_gives_up_in_time);
    suite_add_tcase(s, tc);

    return s;
}
