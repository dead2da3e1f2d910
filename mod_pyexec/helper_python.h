/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The embedded interpreter of a session helper: start-up in the zygote,
 * the per-session environment after fork, and one execution.
 */
#ifndef HELPER_PYTHON_H
#define HELPER_PYTHON_H

#include <stddef.h>
#include <stdint.h>

#include "pyexec_protocol.h"   /* PYEXEC_EXIT_* */

/* Start the interpreter and import what sessions commonly use, so that
 * forked helpers inherit it warm; allow (NULL or "numpy,scipy") names
 * installed packages to import as well (PyExecAllowModules). 0 on
 * success; a package that cannot be imported is reported on stderr and
 * left out. */
int pyexec_py_init(const char *allow, char *err, size_t err_len);

/* Around fork(): keep the interpreter's locks and at-fork hooks right. */
void pyexec_py_before_fork(void);
void pyexec_py_after_fork_parent(void);
void pyexec_py_after_fork_child(void);

/* Build the session's globals, builtins and output capture. blocked is
 * a list of module names; without import_hook (tests of the OS layers
 * only) __import__ and open stay as CPython has them. */
int pyexec_py_session_setup(const char *const *blocked, size_t nblocked,
                            size_t max_output, size_t max_display,
                            int import_hook, char *err, size_t err_len);

/* Directories the interpreter may read from once confined: its library
 * (sys.path), the shared libraries it links, time zone data. Computed in
 * pyexec_py_init(); NULL-terminated. */
const char *const *pyexec_py_library_paths(void);

/* From here on any failed allocation ends the helper with
 * PYEXEC_EXIT_MEMORY: a MemoryError that user code catches must still
 * end the session, as the contract says. */
void pyexec_py_arm_memory_guard(void);

typedef struct {
    int memory_exceeded;        /* MemoryError escaped the user's code */
    const char *out;            /* valid until the next execution */
    size_t out_len;
    int out_cut;
    const char *err;
    size_t err_len;
    int err_cut;
    uint64_t exec_usec;
    uint64_t mem_bytes;         /* malloc'd plus Python's arenas, after */
    const unsigned char *display;   /* display items (pyexec_protocol.h) */
    size_t display_len;
    uint32_t display_count;
} pyexec_py_result_t;

/* Run one piece of source (UTF-8, NUL terminated) in the session, with
 * stdin_len bytes of UTF-8 as what it reads from stdin (then EOF); with
 * display_result, the value of a final bare expression is displayed. */
void pyexec_py_exec(const char *code, const char *stdin_text,
                    size_t stdin_len, int display_result,
                    pyexec_py_result_t *res);

#endif /* HELPER_PYTHON_H */
