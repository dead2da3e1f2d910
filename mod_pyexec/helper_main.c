/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * pyexec-helper: the only program that runs Python.
 *
 *   pyexec-helper --zygote --channel FD [--allow numpy,...]
 *       Started by the supervisor. Initialises the interpreter once, then
 *       forks one session helper per SPAWN message it reads on FD; each
 *       SPAWN carries the helper's listening socket, bound by the
 *       supervisor, so helpers need no access to the socket directory. Each
 *       helper is made a child of the supervisor (CLONE_PARENT), so the
 *       supervisor reaps it, knows its exit status and can kill it
 *       without any pid reuse race.
 *
 *   pyexec-helper --run [--block a,b,...] [--max-output N]
 *       Runs standard input as one execution of a fresh session and
 *       writes its stdout and stderr: for tests and debugging.
 *
 * This file runs in the zygote (its own process, started by the
 * supervisor as PyExecUser, by default httpd's User) and for --run; each
 * session helper forked from the zygote goes on in helper_serve.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper_main.h"
#include "helper_python.h"
#include "helper_sandbox.h"
#include "pyexec_defaults.h"
#include "pyexec_io.h"
#include "pyexec_protocol.h"

#ifdef PYEXEC_SANITIZERS
/* The helper starts with an empty environment, so its sanitizer options
 * live here. A failed allocation must reach our memory guard rather than
 * abort, freed memory must come back within the session's limit, and a
 * report goes to stderr (httpd's error log) while it is still open. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:detect_leaks=0:"
           "quarantine_size_mb=4:malloc_context_size=10";
}
#endif
void pyexec_helper_die(int code, const char *fmt, const char *arg)
{
    fprintf(stderr, "pyexec-helper[%d]: ", (int)getpid());
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    _exit(code);
}

/* --- the zygote ------------------------------------------------------ */

static size_t split_names(char *buf, size_t len, const char **out,
                          size_t max)
{
    size_t n = 0, i = 0;

    while (i < len && n < max) {
        size_t l = strnlen(buf + i, len - i);
        if (l == len - i) {
            break;              /* last name not terminated: ignore */
        }
        if (l > 0) {
            out[n++] = buf + i;
        }
        i += l + 1;
    }
    return n;
}

static void send_spawned(int chan, const pyexec_spawn_t *sp, int32_t pid)
{
    unsigned char msg[PYEXEC_FRAME_HDR_LEN + PYEXEC_SLOT_MSG_LEN];
    pyexec_slot_msg_t m;

    m.slot = sp->slot;
    m.gen = sp->gen;
    m.pid = pid;
    m.reason = 0;
    pyexec_frame_encode_hdr(msg, PYEXEC_MSG_SPAWNED, 0, PYEXEC_SLOT_MSG_LEN);
    pyexec_slot_msg_encode(msg + PYEXEC_FRAME_HDR_LEN, &m);
    send(chan, msg, sizeof(msg), MSG_NOSIGNAL);
}

static int zygote_main(int chan, const char *allow)
{
    static unsigned char buf[PYEXEC_SPAWN_FRAME_MAX + 1];
    static const char *names[PYEXEC_SPAWN_NAMES_COUNT_MAX];
    char err[256];
    uint32_t ns_layers;

    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1) {
        return 0;               /* the supervisor is gone already */
    }
    if (chdir("/") != 0) {
        return PYEXEC_EXIT_SETUP;
    }
    umask(077);
    /* before the interpreter: a user namespace wants one thread */
    ns_layers = pyexec_sandbox_zygote(err, sizeof(err));
    if (err[0]) {
        fprintf(stderr, "pyexec-helper[%d]: namespaces incomplete (layers "
                "0x%x): %s\n", (int)getpid(), ns_layers, err);
    }
    if (pyexec_py_init(allow, err, sizeof(err)) != 0) {
        pyexec_helper_die(PYEXEC_EXIT_SETUP, "interpreter start-up failed: %s",
                          err);
    }
    pyexec_sandbox_zygote_root(pyexec_py_library_paths(), err, sizeof(err));
    if (err[0]) {
        fprintf(stderr, "pyexec-helper[%d]: no private filesystem view: %s\n",
                (int)getpid(), err);
    }

    for (;;) {
        int lfd;
        /* a SPAWN and the listening socket that rides with it */
        ssize_t n = pyexec_io_recv_fd(chan, buf, PYEXEC_SPAWN_FRAME_MAX,
                                      &lfd);
        pyexec_frame_hdr_t hdr;
        pyexec_spawn_t sp;
        size_t nnames;
        pid_t pid;
        uint32_t layers;

        if (n == 0) {
            return 0;           /* the supervisor is gone */
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return PYEXEC_EXIT_SETUP;
        }
        if (pyexec_frame_decode_hdr(buf, (size_t)n, PYEXEC_SPAWN_MAX_PAYLOAD,
                                    &hdr)
            == PYEXEC_FRAME_OK && hdr.type == PYEXEC_MSG_LOGFD && lfd >= 0) {
            /* httpd reopened its error log (a graceful restart after a
             * log rotation): ours, and so new helpers', follows */
            dup2(lfd, 2);
            close(lfd);
            continue;
        }
        if (pyexec_frame_decode_hdr(buf, (size_t)n, PYEXEC_SPAWN_MAX_PAYLOAD,
                                    &hdr)
            != PYEXEC_FRAME_OK
            || hdr.type != PYEXEC_MSG_SPAWN
            || hdr.length != (size_t)n - PYEXEC_FRAME_HDR_LEN
            || pyexec_spawn_decode(buf + PYEXEC_FRAME_HDR_LEN, hdr.length,
                                   &sp) != 0
            || lfd < 0) {
            if (lfd >= 0) {
                close(lfd);
            }
            continue;
        }
        nnames = split_names((char *)buf + PYEXEC_FRAME_HDR_LEN
                             + PYEXEC_SPAWN_FIXED_LEN,
                             hdr.length - PYEXEC_SPAWN_FIXED_LEN,
                             names, sizeof(names) / sizeof(names[0]));

        pyexec_py_before_fork();
        pid = pyexec_sandbox_fork(&layers);
        if (pid == 0) {
            pyexec_helper_serve(chan, lfd, &sp, names, nnames, layers);
            _exit(PYEXEC_EXIT_SETUP);       /* not reached */
        }
        close(lfd);
        pyexec_py_after_fork_parent();
        send_spawned(chan, &sp, pid > 0 ? (int32_t)pid : -errno);
    }
}

/* --- --run ----------------------------------------------------------- */

static int run_stdin(const char *blocklist, size_t max_output)
{
    static const char *const defaults[] = { PYEXEC_DEFAULT_BLOCKED_MODULES };
    const char *names[PYEXEC_SPAWN_NAMES_COUNT_MAX];
    size_t nnames = 0, len = 0, cap = 65536;
    char *src = malloc(cap), *list = NULL, err[256];
    pyexec_py_result_t res;
    ssize_t n;

    if (!src) {
        return 1;
    }
    while ((n = read(0, src + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            src = realloc(src, cap);
            if (!src) {
                return 1;
            }
        }
    }
    src[len] = '\0';
    if (blocklist) {
        char *save = NULL, *tok;

        list = strdup(blocklist);
        for (tok = strtok_r(list, ",", &save);
             tok && nnames < PYEXEC_SPAWN_NAMES_COUNT_MAX;
             tok = strtok_r(NULL, ",", &save)) {
            names[nnames++] = tok;
        }
    }
    else {
        for (; nnames < sizeof(defaults) / sizeof(defaults[0]); nnames++) {
            names[nnames] = defaults[nnames];
        }
    }
    if (chdir("/") != 0 || pyexec_py_init(NULL, err, sizeof(err)) != 0
        || pyexec_py_session_setup(names, nnames, max_output,
                                   PYEXEC_DEFAULT_MAX_DISPLAY, 1, err,
                                   sizeof(err)) != 0) {
        pyexec_helper_die(PYEXEC_EXIT_SETUP, "%s", err);
    }
    /* display items have no place on a terminal: the text is all */
    pyexec_py_exec(src, NULL, 0, 0, &res);
    if (res.out_len && write(1, res.out, res.out_len) < 0) {
        return 1;
    }
    if (res.err_len && write(2, res.err, res.err_len) < 0) {
        return 1;
    }
    free(src);
    free(list);
    return res.memory_exceeded ? PYEXEC_EXIT_MEMORY : 0;
}

int main(int argc, char **argv)
{
    int chan = -1, zygote = 0, run = 0;
    const char *block = NULL, *allow = NULL;
    size_t max_output = PYEXEC_DEFAULT_MAX_OUTPUT;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--zygote")) {
            zygote = 1;
        }
        else if (!strcmp(argv[i], "--run")) {
            run = 1;
        }
        else if (!strcmp(argv[i], "--channel") && i + 1 < argc) {
            chan = atoi(argv[++i]);
        }
        else if (!strcmp(argv[i], "--allow") && i + 1 < argc) {
            allow = argv[++i];
        }
        else if (!strcmp(argv[i], "--block") && i + 1 < argc) {
            block = argv[++i];
        }
        else if (!strcmp(argv[i], "--max-output") && i + 1 < argc) {
            max_output = (size_t)strtoul(argv[++i], NULL, 10);
        }
        else if (!strcmp(argv[i], "--version")) {
            printf("pyexec-helper %s\n", PYEXEC_VERSION);
            return 0;
        }
        else {
            fprintf(stderr, "usage: pyexec-helper --zygote --channel FD "
                    "[--allow a,b] | --run [--block a,b] [--max-output N]\n");
            return 2;
        }
    }
    if (run) {
        return run_stdin(block, max_output);
    }
    if (!zygote || chan < 0) {
        fprintf(stderr, "pyexec-helper: started by the supervisor only "
                "(see --run for manual use)\n");
        return 2;
    }
    return zygote_main(chan, allow);
}
