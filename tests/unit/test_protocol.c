/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

#include <stdint.h>
#include <string.h>

#include "pyexec_protocol.h"
#include "test_suites.h"

/* --- frame header ---------------------------------------------------- */

/* The exact bytes matter: the helper and the module may be built by
 * different compilers, and only this layout is the contract. */
START_TEST(test_hdr_encode_layout)
{
    static const unsigned char want[PYEXEC_FRAME_HDR_LEN] = {
        'P', 'Y', 'E', 'X',         /* magic, little endian */
        PYEXEC_PROTO_VERSION, 0x00, /* version */
        0x03, 0x02,                 /* type */
        0x07, 0x06, 0x05, 0x04,     /* flags */
        0x0b, 0x0a, 0x09, 0x08      /* length */
    };
    unsigned char out[PYEXEC_FRAME_HDR_LEN];

    memset(out, 0xee, sizeof(out));
    pyexec_frame_encode_hdr(out, 0x0203, 0x04050607u, 0x08090a0bu);
    ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(test_hdr_round_trip)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_RESULT, PYEXEC_EXEC_WANT_STARTED,
                            1234);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 4096, &hdr),
                     PYEXEC_FRAME_OK);
    ck_assert_uint_eq(hdr.magic, PYEXEC_PROTO_MAGIC);
    ck_assert_uint_eq(hdr.version, PYEXEC_PROTO_VERSION);
    ck_assert_uint_eq(hdr.type, PYEXEC_MSG_RESULT);
    ck_assert_uint_eq(hdr.flags, PYEXEC_EXEC_WANT_STARTED);
    ck_assert_uint_eq(hdr.length, 1234);
}
END_TEST

/* All-ones fields catch sign extension and truncation in the decoder. */
START_TEST(test_hdr_round_trip_extremes)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, 0xffff, 0xffffffffu, 0);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 0, &hdr),
                     PYEXEC_FRAME_OK);
    ck_assert_uint_eq(hdr.type, 0xffff);
    ck_assert_uint_eq(hdr.flags, 0xffffffffu);
    ck_assert_uint_eq(hdr.length, 0);
}
END_TEST

START_TEST(test_hdr_short)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, PYEXEC_FRAME_HDR_LEN - 1,
                                             4096, &hdr),
                     PYEXEC_FRAME_SHORT);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, 0, 4096, &hdr),
                     PYEXEC_FRAME_SHORT);
}
END_TEST

/* A datagram may carry more than the header; the extra bytes are the
 * payload and must not upset the header decode. */
START_TEST(test_hdr_longer_input)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN + 8];
    pyexec_frame_hdr_t hdr;

    memset(raw, 0xaa, sizeof(raw));
    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_KILL, 0, 8);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 16, &hdr),
                     PYEXEC_FRAME_OK);
    ck_assert_uint_eq(hdr.length, 8);
}
END_TEST

START_TEST(test_hdr_bad_magic)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;
    int i;

    /* any single corrupted magic byte must be caught */
    for (i = 0; i < 4; i++) {
        pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
        raw[i] ^= 0x20;
        ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 4096, &hdr),
                         PYEXEC_FRAME_BAD_MAGIC);
    }
}
END_TEST

START_TEST(test_hdr_bad_version)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
    raw[4] = PYEXEC_PROTO_VERSION + 1;
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 4096, &hdr),
                     PYEXEC_FRAME_BAD_VERSION);

    /* the high byte counts too */
    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0);
    raw[5] = 1;
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 4096, &hdr),
                     PYEXEC_FRAME_BAD_VERSION);
}
END_TEST

START_TEST(test_hdr_length_limit)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 100);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 100, &hdr),
                     PYEXEC_FRAME_OK);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 99, &hdr),
                     PYEXEC_FRAME_TOO_LARGE);
}
END_TEST

/* A caller's generous limit must never lift the global cap: a peer
 * could otherwise make us allocate 4 GiB. */
START_TEST(test_hdr_global_cap)
{
    unsigned char raw[PYEXEC_FRAME_HDR_LEN];
    pyexec_frame_hdr_t hdr;

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, PYEXEC_FRAME_MAX_PAYLOAD);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 0xffffffffu,
                                             &hdr),
                     PYEXEC_FRAME_OK);

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0,
                            PYEXEC_FRAME_MAX_PAYLOAD + 1);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 0xffffffffu,
                                             &hdr),
                     PYEXEC_FRAME_TOO_LARGE);

    pyexec_frame_encode_hdr(raw, PYEXEC_MSG_EXEC, 0, 0xffffffffu);
    ck_assert_int_eq(pyexec_frame_decode_hdr(raw, sizeof(raw), 0xffffffffu,
                                             &hdr),
                     PYEXEC_FRAME_TOO_LARGE);
}
END_TEST

/* These strings end up in error logs; each status needs its own. */
START_TEST(test_hdr_status_str)
{
    const char *s[5];
    int i, j;

    s[0] = pyexec_frame_status_str(PYEXEC_FRAME_OK);
    s[1] = pyexec_frame_status_str(PYEXEC_FRAME_SHORT);
    s[2] = pyexec_frame_status_str(PYEXEC_FRAME_BAD_MAGIC);
    s[3] = pyexec_frame_status_str(PYEXEC_FRAME_BAD_VERSION);
    s[4] = pyexec_frame_status_str(PYEXEC_FRAME_TOO_LARGE);
    for (i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(s[i]);
        ck_assert_str_ne(s[i], "");
        for (j = 0; j < i; j++) {
            ck_assert_str_ne(s[i], s[j]);
        }
    }
    ck_assert_str_eq(pyexec_frame_status_str((pyexec_frame_status_t)99),
                     "unknown frame status");
}
END_TEST

/* --- RESULT payload -------------------------------------------------- */

START_TEST(test_result_encode_layout)
{
    static const unsigned char want[PYEXEC_RESULT_FIXED_LEN] = {
        0x01, 0x00, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x00,
        0x04, 0x03, 0x02, 0x01,
        0x08, 0x07, 0x06, 0x05,
        0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09,
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
        0x1c, 0x1b, 0x1a, 0x19,
        0x02, 0x01, 0x00, 0x00
    };
    pyexec_result_t res = {
        .status = PYEXEC_EXEC_MEMORY,
        .flags = PYEXEC_RESULT_STDOUT_CUT | PYEXEC_RESULT_STDERR_CUT,
        .stdout_len = 0x01020304u,
        .stderr_len = 0x05060708u,
        .exec_usec = 0x090a0b0c0d0e0f10ull,
        .mem_bytes = 0x1112131415161718ull,
        .display_len = 0x191a1b1cu,
        .display_count = 0x102,
    };
    unsigned char out[PYEXEC_RESULT_FIXED_LEN];

    pyexec_result_encode(out, &res);
    ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(test_result_round_trip)
{
    unsigned char buf[PYEXEC_RESULT_FIXED_LEN + 5 + 3];
    pyexec_result_t in = {
        .status = PYEXEC_EXEC_OK,
        .flags = PYEXEC_RESULT_STDERR_CUT,
        .stdout_len = 5,
        .stderr_len = 3,
        /* above 32 bits, so a truncated decode shows */
        .exec_usec = 0x123456789abcull,
        .mem_bytes = 0x7fedcba987ull,
    };
    pyexec_result_t out;

    pyexec_result_encode(buf, &in);
    memcpy(buf + PYEXEC_RESULT_FIXED_LEN, "helloerr", 8);
    memset(&out, 0xff, sizeof(out));
    ck_assert_int_eq(pyexec_result_decode(buf, sizeof(buf), &out), 0);
    ck_assert_uint_eq(out.status, PYEXEC_EXEC_OK);
    ck_assert_uint_eq(out.flags, PYEXEC_RESULT_STDERR_CUT);
    ck_assert_uint_eq(out.stdout_len, 5);
    ck_assert_uint_eq(out.stderr_len, 3);
    ck_assert(out.exec_usec == 0x123456789abcull);
    ck_assert(out.mem_bytes == 0x7fedcba987ull);
}
END_TEST

START_TEST(test_result_empty_streams)
{
    unsigned char buf[PYEXEC_RESULT_FIXED_LEN];
    pyexec_result_t in = { .status = PYEXEC_EXEC_INTERNAL };
    pyexec_result_t out;

    pyexec_result_encode(buf, &in);
    ck_assert_int_eq(pyexec_result_decode(buf, sizeof(buf), &out), 0);
    ck_assert_uint_eq(out.status, PYEXEC_EXEC_INTERNAL);
    ck_assert_uint_eq(out.stdout_len, 0);
    ck_assert_uint_eq(out.stderr_len, 0);
}
END_TEST

START_TEST(test_result_too_short)
{
    unsigned char buf[PYEXEC_RESULT_FIXED_LEN];
    pyexec_result_t in = { 0 };
    pyexec_result_t out;

    pyexec_result_encode(buf, &in);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN - 1,
                                          &out), -1);
    ck_assert_int_eq(pyexec_result_decode(buf, 0, &out), -1);
}
END_TEST

/* The worker slices stdout and stderr out of the payload by these
 * lengths; one byte too many or too few must be refused. */
START_TEST(test_result_lengths_must_add_up)
{
    unsigned char buf[PYEXEC_RESULT_FIXED_LEN + 16];
    pyexec_result_t in = { .stdout_len = 5, .stderr_len = 3 };
    pyexec_result_t out;

    memset(buf, 'x', sizeof(buf));
    pyexec_result_encode(buf, &in);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN + 8,
                                          &out), 0);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN + 7,
                                          &out), -1);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN + 9,
                                          &out), -1);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN,
                                          &out), -1);
}
END_TEST

/* Lengths chosen so that a 32 bit sum wraps to exactly the payload
 * size: only a wide sum rejects them. */
START_TEST(test_result_lengths_no_wrap)
{
    unsigned char buf[PYEXEC_RESULT_FIXED_LEN + 32];
    pyexec_result_t in = { .stdout_len = 0xffffffffu, .stderr_len = 33 };
    pyexec_result_t out;

    memset(buf, 0, sizeof(buf));
    pyexec_result_encode(buf, &in);
    /* (24 + 0xffffffff + 33) mod 2^32 == 56 == sizeof(buf) */
    ck_assert_int_eq(pyexec_result_decode(buf, sizeof(buf), &out), -1);

    in.stdout_len = 0x80000000u;
    in.stderr_len = 0x80000000u;
    pyexec_result_encode(buf, &in);
    ck_assert_int_eq(pyexec_result_decode(buf, PYEXEC_RESULT_FIXED_LEN,
                                          &out), -1);
}
END_TEST

/* What a worker takes from a helper: each stream within the session's
 * cap and the truncation note, a status a helper reports. */
START_TEST(test_result_within_caps)
{
    pyexec_result_t r = { .status = PYEXEC_EXEC_OK };
    uint32_t cap = 1024;

    r.stdout_len = cap + PYEXEC_RESULT_MARKER_MAX;
    r.stderr_len = cap + PYEXEC_RESULT_MARKER_MAX;
    ck_assert(pyexec_result_within(&r, cap, 0));
    r.stdout_len++;
    ck_assert(!pyexec_result_within(&r, cap, 0));
    r.stdout_len = 0;
    r.stderr_len++;
    ck_assert(!pyexec_result_within(&r, cap, 0));
    r.stderr_len = 0;
    r.status = PYEXEC_EXEC_MEMORY;
    ck_assert(pyexec_result_within(&r, cap, 0));
    r.status = PYEXEC_EXEC_INTERNAL;
    ck_assert(!pyexec_result_within(&r, cap, 0));
    r.status = 77;
    ck_assert(!pyexec_result_within(&r, cap, 0));
    /* a cap near the top of uint32 does not wrap */
    r.status = PYEXEC_EXEC_OK;
    r.stdout_len = 0xffffffffu;
    ck_assert(pyexec_result_within(&r, 0xffffffffu, 0));
    /* display items: the cap, plus a marker's room for each item */
    r.stdout_len = 0;
    r.display_len = 4096 + PYEXEC_DISPLAY_ITEMS_MAX
                    * (PYEXEC_DISPLAY_ITEM_HDR_LEN + PYEXEC_DISPLAY_MARKER_MAX);
    r.display_count = PYEXEC_DISPLAY_ITEMS_MAX;
    ck_assert(pyexec_result_within(&r, cap, 4096));
    r.display_len++;
    ck_assert(!pyexec_result_within(&r, cap, 4096));
    r.display_len = 0;
    r.display_count++;
    ck_assert(!pyexec_result_within(&r, cap, 4096));
}
END_TEST

START_TEST(test_display_items_walk)
{
    unsigned char buf[64];
    pyexec_display_item_t it;
    size_t pos = 0;

    pyexec_display_item_encode(buf, 7, 2);
    memcpy(buf + 8, "{}", 2);
    pyexec_display_item_encode(buf + 10, 0x01020304u, 3);
    memcpy(buf + 18, "abc", 3);
    ck_assert_uint_eq(buf[0], 7);
    ck_assert_uint_eq(buf[4], 2);
    ck_assert_int_eq(pyexec_display_item_next(buf, 21, &pos, &it), 1);
    ck_assert_uint_eq(it.stdout_offset, 7);
    ck_assert_uint_eq(it.len, 2);
    ck_assert_ptr_eq(it.json, buf + 8);
    ck_assert_int_eq(pyexec_display_item_next(buf, 21, &pos, &it), 1);
    ck_assert_uint_eq(it.stdout_offset, 0x01020304u);
    ck_assert_mem_eq(it.json, "abc", 3);
    ck_assert_int_eq(pyexec_display_item_next(buf, 21, &pos, &it), 0);
    /* an item running past the end, a header cut short */
    pos = 0;
    ck_assert_int_eq(pyexec_display_item_next(buf, 20, &pos, &it), 1);
    ck_assert_int_eq(pyexec_display_item_next(buf, 20, &pos, &it), -1);
    pos = 0;
    ck_assert_int_eq(pyexec_display_item_next(buf, 5, &pos, &it), -1);
    /* a length that would wrap */
    pyexec_display_item_encode(buf, 0, 0xfffffff8u);
    pos = 0;
    ck_assert_int_eq(pyexec_display_item_next(buf, 21, &pos, &it), -1);
}
END_TEST

/* --- slot messages --------------------------------------------------- */

START_TEST(test_slot_msg_layout)
{
    static const unsigned char want[PYEXEC_SLOT_MSG_LEN] = {
        0x07, 0x00, 0x00, 0x00,
        0x2a, 0x00, 0x00, 0x01,
        0x39, 0x30, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x00
    };
    pyexec_slot_msg_t m = {
        .slot = 7, .gen = 0x0100002au, .pid = 12345, .reason = 5
    };
    unsigned char out[PYEXEC_SLOT_MSG_LEN];

    pyexec_slot_msg_encode(out, &m);
    ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(test_slot_msg_round_trip)
{
    unsigned char buf[PYEXEC_SLOT_MSG_LEN];
    pyexec_slot_msg_t in = {
        .slot = 0xfffffffeu, .gen = 0xdeadbeefu, .pid = 4194304, .reason = 3
    };
    pyexec_slot_msg_t out;

    pyexec_slot_msg_encode(buf, &in);
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(pyexec_slot_msg_decode(buf, sizeof(buf), &out), 0);
    ck_assert_uint_eq(out.slot, in.slot);
    ck_assert_uint_eq(out.gen, in.gen);
    ck_assert_int_eq(out.pid, in.pid);
    ck_assert_uint_eq(out.reason, in.reason);
}
END_TEST

/* The zygote reports a failed fork as pid -1; the sign must survive. */
START_TEST(test_slot_msg_negative_pid)
{
    unsigned char buf[PYEXEC_SLOT_MSG_LEN];
    pyexec_slot_msg_t in = { .slot = 1, .gen = 2, .pid = -1 };
    pyexec_slot_msg_t out;

    pyexec_slot_msg_encode(buf, &in);
    ck_assert_int_eq(pyexec_slot_msg_decode(buf, sizeof(buf), &out), 0);
    ck_assert_int_eq(out.pid, -1);
}
END_TEST

START_TEST(test_slot_msg_exact_length)
{
    unsigned char buf[PYEXEC_SLOT_MSG_LEN + 1];
    pyexec_slot_msg_t in = { .slot = 1 };
    pyexec_slot_msg_t out;

    memset(buf, 0, sizeof(buf));
    pyexec_slot_msg_encode(buf, &in);
    ck_assert_int_eq(pyexec_slot_msg_decode(buf, PYEXEC_SLOT_MSG_LEN - 1,
                                            &out), -1);
    ck_assert_int_eq(pyexec_slot_msg_decode(buf, PYEXEC_SLOT_MSG_LEN + 1,
                                            &out), -1);
    ck_assert_int_eq(pyexec_slot_msg_decode(buf, 0, &out), -1);
}
END_TEST

/* --- SPAWN ----------------------------------------------------------- */

START_TEST(test_spawn_layout)
{
    static const unsigned char want[PYEXEC_SPAWN_FIXED_LEN] = {
        0x03, 0x00, 0x00, 0x00,                             /* slot */
        0x09, 0x00, 0x00, 0x00,                             /* gen */
        0x00, 0x00, 0x40, 0x06, 0x01, 0x00, 0x00, 0x00,     /* memory */
        0x00, 0x00, 0x10, 0x00,                             /* max_output */
        0x05, 0x00, 0x00, 0x00,                             /* cpu */
        0x00, 0x00, 0x01, 0x00,                             /* max_code */
        0x01, 0x00, 0x00, 0x80,                             /* flags */
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, /* token */
        0x00, 0x00, 0x40, 0x00                              /* max_display */
    };
    pyexec_spawn_t sp = {
        .slot = 3, .gen = 9, .memory_limit = 0x106400000ull,
        .max_output = 0x100000u, .cpu_seconds = 5, .max_code = 0x10000u,
        .flags = 0x80000001u, .max_display = 0x400000u,
        .token = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    };
    unsigned char out[PYEXEC_SPAWN_FIXED_LEN];

    pyexec_spawn_encode(out, &sp);
    ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(test_spawn_round_trip)
{
    unsigned char buf[PYEXEC_SPAWN_FIXED_LEN];
    pyexec_spawn_t in = {
        .slot = 99, .gen = 0xfffffff0u,
        /* above 4 GiB, so a 32 bit field would lose it */
        .memory_limit = 6ull * 1024 * 1024 * 1024 + 17,
        .max_output = 1024u * 1024u, .cpu_seconds = 7,
        .max_code = 65536, .flags = 0xa5a5a5a5u, .max_display = 0x5a5a5a5au,
        .token = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                  0xff},
    };
    pyexec_spawn_t out;

    pyexec_spawn_encode(buf, &in);
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(pyexec_spawn_decode(buf, sizeof(buf), &out), 0);
    ck_assert_uint_eq(out.slot, in.slot);
    ck_assert_uint_eq(out.gen, in.gen);
    ck_assert(out.memory_limit == in.memory_limit);
    ck_assert_uint_eq(out.max_output, in.max_output);
    ck_assert_uint_eq(out.cpu_seconds, in.cpu_seconds);
    ck_assert_uint_eq(out.max_code, in.max_code);
    ck_assert_uint_eq(out.flags, in.flags);
    ck_assert_mem_eq(out.token, in.token, sizeof(in.token));
    ck_assert_uint_eq(out.max_display, in.max_display);
}
END_TEST

/* The block list rides after the fixed part, so a longer buffer is
 * normal and a shorter one is not. */
START_TEST(test_spawn_lengths)
{
    unsigned char buf[PYEXEC_SPAWN_FIXED_LEN + 12];
    pyexec_spawn_t in = { .slot = 4, .gen = 5 };
    pyexec_spawn_t out;

    pyexec_spawn_encode(buf, &in);
    memcpy(buf + PYEXEC_SPAWN_FIXED_LEN, "os\0sys\0ctypes", 12);
    ck_assert_int_eq(pyexec_spawn_decode(buf, sizeof(buf), &out), 0);
    ck_assert_uint_eq(out.slot, 4);
    ck_assert_uint_eq(out.gen, 5);
    ck_assert_int_eq(pyexec_spawn_decode(buf, PYEXEC_SPAWN_FIXED_LEN - 1,
                                         &out), -1);
    ck_assert_int_eq(pyexec_spawn_decode(buf, 0, &out), -1);
}
END_TEST

/* A whole SPAWN frame: what the zygote reads (helper_main.c) is what the
 * supervisor built, and nothing bigger than the zygote reads is built. */
START_TEST(test_spawn_frame)
{
    static unsigned char buf[PYEXEC_SPAWN_FRAME_MAX + 8];
    static char names[PYEXEC_SPAWN_NAMES_MAX + 1];
    pyexec_spawn_t in = { .slot = 7, .gen = 70, .max_code = 123,
                          .token = {9, 8, 7} };
    pyexec_spawn_t out;
    pyexec_frame_hdr_t hdr;
    size_t len;

    len = pyexec_spawn_frame(buf, sizeof(buf), &in, "os\0sys\0", 7);
    ck_assert_uint_eq(len, PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN + 7);
    ck_assert_int_eq(pyexec_frame_decode_hdr(buf, len,
                                             PYEXEC_SPAWN_MAX_PAYLOAD, &hdr),
                     PYEXEC_FRAME_OK);
    ck_assert_uint_eq(hdr.type, PYEXEC_MSG_SPAWN);
    ck_assert_uint_eq(hdr.length, len - PYEXEC_FRAME_HDR_LEN);
    ck_assert_int_eq(pyexec_spawn_decode(buf + PYEXEC_FRAME_HDR_LEN,
                                         hdr.length, &out), 0);
    ck_assert_uint_eq(out.slot, 7);
    ck_assert_uint_eq(out.gen, 70);
    ck_assert_uint_eq(out.max_code, 123);
    ck_assert_mem_eq(out.token, in.token, PYEXEC_TOKEN_LEN);
    ck_assert_mem_eq(buf + PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN,
                     "os\0sys\0", 7);

    /* no block list at all */
    ck_assert_uint_eq(pyexec_spawn_frame(buf, sizeof(buf), &in, NULL, 0),
                      PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN);
    /* the longest list fills the largest frame exactly */
    memset(names, 'a', sizeof(names));
    ck_assert_uint_eq(pyexec_spawn_frame(buf, sizeof(buf), &in, names,
                                         PYEXEC_SPAWN_NAMES_MAX),
                      PYEXEC_SPAWN_FRAME_MAX);
    ck_assert_uint_eq(pyexec_spawn_frame(buf, sizeof(buf), &in, names,
                                         PYEXEC_SPAWN_NAMES_MAX + 1), 0);
    /* nor past the caller's buffer, which may be exactly big enough */
    ck_assert_uint_eq(pyexec_spawn_frame(buf, PYEXEC_FRAME_HDR_LEN
                                         + PYEXEC_SPAWN_FIXED_LEN + 6, &in,
                                         "os\0sys\0", 7), 0);
    ck_assert_uint_eq(pyexec_spawn_frame(buf, PYEXEC_FRAME_HDR_LEN
                                         + PYEXEC_SPAWN_FIXED_LEN + 7, &in,
                                         "os\0sys\0", 7),
                      PYEXEC_FRAME_HDR_LEN + PYEXEC_SPAWN_FIXED_LEN + 7);
}
END_TEST

/* --- EXEC fixed part -------------------------------------------------- */

START_TEST(test_exec_layout_and_round_trip)
{
    static const unsigned char want[PYEXEC_EXEC_FIXED_LEN] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, /* token */
        0x04, 0x03, 0x02, 0x81,                               /* ticket */
        0x03, 0x00, 0x00, 0x00                                /* stdin */
    };
    pyexec_exec_fixed_t in = {
        .token = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
        .ticket = 0x81020304u, .stdin_len = 3,
    }, out;
    unsigned char buf[PYEXEC_EXEC_FIXED_LEN + 5];

    pyexec_exec_encode(buf, &in);
    ck_assert_mem_eq(buf, want, sizeof(want));
    /* the source follows: a longer payload is the normal case */
    memcpy(buf + PYEXEC_EXEC_FIXED_LEN, "x = 1", 5);
    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(pyexec_exec_decode(buf, sizeof(buf), &out), 0);
    ck_assert_mem_eq(out.token, in.token, sizeof(in.token));
    ck_assert_uint_eq(out.ticket, in.ticket);
    ck_assert_uint_eq(out.stdin_len, 3);
    ck_assert_int_eq(pyexec_exec_decode(buf, PYEXEC_EXEC_FIXED_LEN - 1,
                                        &out), -1);
    /* stdin may be all the rest, never more */
    ck_assert_int_eq(pyexec_exec_decode(buf, PYEXEC_EXEC_FIXED_LEN + 3,
                                        &out), 0);
    ck_assert_int_eq(pyexec_exec_decode(buf, PYEXEC_EXEC_FIXED_LEN + 2,
                                        &out), -1);
    in.stdin_len = 0xffffffffu;
    pyexec_exec_encode(buf, &in);
    ck_assert_int_eq(pyexec_exec_decode(buf, sizeof(buf), &out), -1);
}
END_TEST

/* Tickets count up for the life of a session and may wrap. */
START_TEST(test_ticket_order_wraps)
{
    ck_assert(PYEXEC_TICKET_BEFORE(0u, 1u));
    ck_assert(!PYEXEC_TICKET_BEFORE(1u, 0u));
    ck_assert(!PYEXEC_TICKET_BEFORE(7u, 7u));
    ck_assert(PYEXEC_TICKET_BEFORE(0xffffffffu, 0u));
    ck_assert(PYEXEC_TICKET_BEFORE(0xfffffff0u, 5u));
    ck_assert(!PYEXEC_TICKET_BEFORE(5u, 0xfffffff0u));
}
END_TEST

/* --- helper socket path ---------------------------------------------- */

START_TEST(test_sockpath_format)
{
    char buf[108];

    ck_assert_int_eq(pyexec_helper_sockpath(buf, sizeof(buf), "/run/pyexec",
                                            3, 17),
                     (int)strlen("/run/pyexec/h3-17.sock"));
    ck_assert_str_eq(buf, "/run/pyexec/h3-17.sock");

    /* slot and gen are unsigned on the wire; so are they here */
    ck_assert_int_eq(pyexec_helper_sockpath(buf, sizeof(buf), "/d",
                                            0xffffffffu, 0x80000000u),
                     (int)strlen("/d/h4294967295-2147483648.sock"));
    ck_assert_str_eq(buf, "/d/h4294967295-2147483648.sock");
}
END_TEST

/* sun_path is small: a path that does not fit must fail rather than be
 * cut short into some other helper's name. */
START_TEST(test_sockpath_fit)
{
    char buf[64];
    const char *want = "/tmp/h1-2.sock";
    int n = (int)strlen(want);

    ck_assert_int_eq(pyexec_helper_sockpath(buf, (size_t)n + 1, "/tmp", 1, 2),
                     n);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(pyexec_helper_sockpath(buf, (size_t)n, "/tmp", 1, 2), -1);
    ck_assert_int_eq(pyexec_helper_sockpath(buf, 1, "/tmp", 1, 2), -1);
}
END_TEST

Suite *protocol_suite(void)
{
    Suite *s = suite_create("protocol");
    TCase *tc;

    tc = tcase_create("frame header");
    tcase_add_test(tc, test_hdr_encode_layout);
    tcase_add_test(tc, test_hdr_round_trip);
    tcase_add_test(tc, test_hdr_round_trip_extremes);
    tcase_add_test(tc, test_hdr_short);
    tcase_add_test(tc, test_hdr_longer_input);
    tcase_add_test(tc, test_hdr_bad_magic);
    tcase_add_test(tc, test_hdr_bad_version);
    tcase_add_test(tc, test_hdr_length_limit);
    tcase_add_test(tc, test_hdr_global_cap);
    tcase_add_test(tc, test_hdr_status_str);
    suite_add_tcase(s, tc);

    tc = tcase_create("result");
    tcase_add_test(tc, test_result_encode_layout);
    tcase_add_test(tc, test_result_round_trip);
    tcase_add_test(tc, test_result_empty_streams);
    tcase_add_test(tc, test_result_too_short);
    tcase_add_test(tc, test_result_lengths_must_add_up);
    tcase_add_test(tc, test_result_lengths_no_wrap);
    tcase_add_test(tc, test_result_within_caps);
    tcase_add_test(tc, test_display_items_walk);
    suite_add_tcase(s, tc);

    tc = tcase_create("slot message");
    tcase_add_test(tc, test_slot_msg_layout);
    tcase_add_test(tc, test_slot_msg_round_trip);
    tcase_add_test(tc, test_slot_msg_negative_pid);
    tcase_add_test(tc, test_slot_msg_exact_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("spawn");
    tcase_add_test(tc, test_spawn_layout);
    tcase_add_test(tc, test_spawn_round_trip);
    tcase_add_test(tc, test_spawn_lengths);
    tcase_add_test(tc, test_spawn_frame);
    suite_add_tcase(s, tc);

    tc = tcase_create("exec");
    tcase_add_test(tc, test_exec_layout_and_round_trip);
    tcase_add_test(tc, test_ticket_order_wraps);
    suite_add_tcase(s, tc);

    tc = tcase_create("sockpath");
    tcase_add_test(tc, test_sockpath_format);
    tcase_add_test(tc, test_sockpath_fit);
    suite_add_tcase(s, tc);

    return s;
}
