/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Private to the embedded interpreter's files, which all run in the
 * zygote and in each session helper (pyexec-helper), never in httpd:
 *   helper_python.c    start-up, the session's namespace, one execution
 *   helper_policy.c    what user code may import, read and call: the
 *                      import hook, refused calls, preloads, readable paths
 *   helper_capture.c   stdout and stderr, captured up to a cap
 *   helper_memory.c    the memory guard and the heap a session holds
 *   helper_display.c   rich output: display(), figures, the final value
 */
#ifndef HELPER_PYTHON_INT_H
#define HELPER_PYTHON_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>

/* The current Python exception as "what: message" in err; returns -1. */
int pyexec_py_fail(char *err, size_t err_len, const char *what);

/* --- helper_policy.c ------------------------------------------------- */

/* In the zygote: import what sessions commonly use, and the installed
 * packages allow names (NULL or "numpy,scipy"), so that every helper is
 * forked with them loaded; then note what the sandbox must leave
 * readable. 0, or -1 with err set. */
int pyexec_policy_preload(const char *allow, char *err, size_t err_len);
void pyexec_policy_collect_paths(void);

/* In a new helper: shape the builtins its user code sees (a copy, which
 * this changes): __import__ refusing the blocked modules, open and a few
 * module functions refused, exit() ending the run. Without import_hook
 * (tests of the OS layers only) __import__ and open stay as they are. */
int pyexec_policy_apply(PyObject *builtins, const char *const *blocked,
                        size_t nblocked, int import_hook, char *err,
                        size_t err_len);

/* --- helper_capture.c ------------------------------------------------ */

/* A file-like object that keeps what is written to it, up to limit bytes
 * (cut on a character boundary). */
typedef struct {
    PyObject_HEAD
    char *buf;
    size_t len;
    size_t cap;
    size_t limit;
    int cut;                    /* something was left out */
    int kind;                   /* PYEXEC_OUTPUT_STDOUT or _STDERR, for a
                                   streamed run (helper_stream.h) */
} pyexec_capture_t;

int pyexec_capture_ready(void);         /* PyType_Ready, once */
pyexec_capture_t *pyexec_capture_new(size_t limit, int kind);
void pyexec_capture_reset(pyexec_capture_t *c);
void pyexec_capture_append(pyexec_capture_t *c, const char *s, size_t n);

/* --- helper_display.c ------------------------------------------------ */

/* In the zygote, after the preloads: build display() and patch
 * matplotlib's show (if preloaded). 0, or -1 with err set. */
int pyexec_display_init(char *err, size_t err_len);

/* In a new helper: display() into its builtins; items' offsets count
 * out's code points; at most max_display bytes of items per run. */
int pyexec_display_session(PyObject *builtins, pyexec_capture_t *out,
                           size_t max_display);

/* Before each run: no items yet. */
void pyexec_display_reset(void);

/* (body, final expression or None), compiled from a str source, for a
 * run that displays its final value; NULL with an exception set (a
 * SyntaxError, as compiling the whole would give). */
PyObject *pyexec_display_split(PyObject *source);

/* Display a final expression's value (nothing for None); after a run,
 * display and close the figures still open. 0, or -1 with an exception
 * set. */
int pyexec_display_value(PyObject *value);
int pyexec_display_flush(void);

/* The run's items, as the RESULT carries them; valid until the next. */
const unsigned char *pyexec_display_items(size_t *len, uint32_t *count);

/* --- helper_memory.c ------------------------------------------------- */

/* malloc'd bytes plus Python's arenas, from the allocators' own books. */
uint64_t pyexec_py_heap_in_use(void);

#endif /* HELPER_PYTHON_INT_H */
