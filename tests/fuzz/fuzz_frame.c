/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * libFuzzer target: every decoder of the framing shared by workers, the
 * supervisor, the zygote and the helpers, and a whole frame read over a
 * socket pair, as the worker reads a helper's answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyexec_io.h"
#include "pyexec_protocol.h"
#include "pyexec_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pyexec_frame_hdr_t hdr;
    pyexec_result_t res;
    pyexec_slot_msg_t m;
    pyexec_spawn_t sp;
    unsigned char *payload = NULL;
    int sv[2];

    if (pyexec_frame_decode_hdr(data, size, 1 << 20, &hdr) == PYEXEC_FRAME_OK
        && hdr.length > (1u << 20)) {
        abort();
    }
    if (size >= PYEXEC_FRAME_HDR_LEN) {
        const uint8_t *p = data + PYEXEC_FRAME_HDR_LEN;
        size_t n = size - PYEXEC_FRAME_HDR_LEN;

        if (pyexec_result_decode(p, n, &res) == 0
            && (uint64_t)PYEXEC_RESULT_FIXED_LEN + res.stdout_len
               + res.stderr_len + res.display_len != n) {
            abort();
        }
        if (pyexec_result_decode(p, n, &res) == 0) {
            /* the display section as the worker checks it: every item
             * inside it, whatever the lengths say */
            const unsigned char *sec = p + PYEXEC_RESULT_FIXED_LEN
                                       + res.stdout_len + res.stderr_len;
            pyexec_display_item_t it;
            size_t pos = 0;
            const char *why;

            while (pyexec_display_item_next(sec, res.display_len, &pos, &it)
                   == 1) {
                if (it.json < sec || it.json + it.len > sec + res.display_len) {
                    abort();
                }
            }
            pyexec_answer_display_check(sec, res.display_len,
                                        res.display_count,
                                        (const char *)p
                                        + PYEXEC_RESULT_FIXED_LEN,
                                        res.stdout_len, &why);
        }
        pyexec_slot_msg_decode(p, n, &m);
        pyexec_spawn_decode(p, n, &sp);
    }
    /* the same bytes from a peer: a frame or a clean refusal, never more
     * than the limit allocated */
    if (size <= 65536 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        if (write(sv[0], data, size) == (ssize_t)size) {
            shutdown(sv[0], SHUT_WR);
            if (pyexec_io_recv_frame(sv[1], 4096, &hdr, &payload,
                                     pyexec_now_usec() + 1000000)
                == PYEXEC_IO_OK
                && (hdr.length > 4096 || (hdr.length && !payload))) {
                abort();
            }
            pyexec_io_free(payload);
        }
        close(sv[0]);
        close(sv[1]);
    }
    return 0;
}
