/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The embedded CPython of a session helper: the interpreter's start-up
 * (in the zygote, once), the session's namespace (in each helper, after
 * fork) and one execution. Runs in the zygote, in each session helper,
 * and in pyexec-helper --run.
 *
 * What users may import and call is helper_policy.c's; the output
 * capture is helper_capture.c's; the memory guard helper_memory.c's.
 */
#include "helper_python_int.h"   /* Python.h first, as CPython asks */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_python.h"
#include "pyexec_io.h"

#define USER_FILENAME "<stdin>"

/* --- the session ----------------------------------------------------- */

static struct {
    PyObject *globals;          /* the session's __main__ namespace */
    PyObject *builtins;         /* curated copy users see */
    PyObject *stdin_obj;        /* always at EOF */
    PyObject *stringio;         /* io.StringIO, for a run's own stdin */
    PyObject *loop;             /* event loop for top-level await */
    pyexec_capture_t *out;
    pyexec_capture_t *err;
} S;

int pyexec_py_fail(char *err, size_t err_len, const char *what)
{
    PyObject *t, *v, *tb, *s = NULL;

    PyErr_Fetch(&t, &v, &tb);
    if (v) {
        s = PyObject_Str(v);
    }
    snprintf(err, err_len, "%s: %s", what,
             s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "unknown error");
    Py_XDECREF(s);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return -1;
}

int pyexec_py_init(const char *allow, char *err, size_t err_len)
{
    PyPreConfig pre;
    PyConfig cfg;
    PyStatus st;
    PyObject *gc;

    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st)) {
        snprintf(err, err_len, "Py_PreInitialize: %s",
                 st.err_msg ? st.err_msg : "failed");
        return -1;
    }
    PyConfig_InitIsolatedConfig(&cfg);
    /* the helper owns its signals: Python must not install handlers
     * that user code could then use against the process */
    cfg.install_signal_handlers = 0;
    cfg.site_import = 0;
    cfg.write_bytecode = 0;
    cfg.faulthandler = 0;
    cfg.configure_c_stdio = 0;
    cfg.parse_argv = 0;
    cfg.user_site_directory = 0;
    st = PyConfig_SetString(&cfg, &cfg.program_name, L"pyexec-helper");
#ifdef PYEXEC_PYTHON_HOME
    if (!PyStatus_Exception(st)) {
        st = PyConfig_SetString(&cfg, &cfg.home, PYEXEC_PYTHON_HOME);
    }
#endif
    if (!PyStatus_Exception(st)) {
        st = Py_InitializeFromConfig(&cfg);
    }
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st)) {
        snprintf(err, err_len, "Py_InitializeFromConfig: %s",
                 st.err_msg ? st.err_msg : "failed");
        return -1;
    }
    if (pyexec_capture_ready() != 0) {
        return pyexec_py_fail(err, err_len, "capture type");
    }
    if (pyexec_policy_preload(allow, err, err_len) != 0
        || pyexec_display_init(err, err_len) != 0) {
        return -1;
    }
    /* move everything loaded so far out of the collector's reach: the
     * GC then never writes to these pages, and forked helpers share
     * them instead of copying */
    gc = PyImport_ImportModule("gc");
    if (gc) {
        PyObject *r = PyObject_CallMethod(gc, "collect", NULL);
        Py_XDECREF(r);
        r = PyObject_CallMethod(gc, "freeze", NULL);
        Py_XDECREF(r);
        Py_DECREF(gc);
    }
    PyErr_Clear();
    pyexec_policy_collect_paths();
    return 0;
}

void pyexec_py_before_fork(void)
{
    PyOS_BeforeFork();
}

void pyexec_py_after_fork_parent(void)
{
    PyOS_AfterFork_Parent();
}

void pyexec_py_after_fork_child(void)
{
    PyOS_AfterFork_Child();
}

int pyexec_py_session_setup(const char *const *blocked, size_t nblocked,
                            size_t max_output, size_t max_display,
                            int import_hook, char *err, size_t err_len)
{
    PyObject *bmod, *io;
    PyObject *main_name = PyUnicode_FromString("__main__");

    if (!main_name) {
        return pyexec_py_fail(err, err_len, "__main__");
    }
    bmod = PyImport_ImportModule("builtins");
    if (!bmod) {
        return pyexec_py_fail(err, err_len, "builtins");
    }
    S.builtins = PyDict_Copy(PyModule_GetDict(bmod));
    Py_DECREF(bmod);
    if (!S.builtins) {
        return pyexec_py_fail(err, err_len, "builtins copy");
    }
    if (pyexec_policy_apply(S.builtins, blocked, nblocked, import_hook, err,
                            err_len) != 0) {
        return -1;
    }

    S.globals = PyDict_New();
    if (!S.globals
        || PyDict_SetItemString(S.globals, "__name__", main_name) != 0
        || PyDict_SetItemString(S.globals, "__builtins__", S.builtins) != 0
        || PyDict_SetItemString(S.globals, "__doc__", Py_None) != 0
        || PyDict_SetItemString(S.globals, "__package__", Py_None) != 0
        || PyDict_SetItemString(S.globals, "__spec__", Py_None) != 0) {
        return pyexec_py_fail(err, err_len, "globals");
    }
    Py_DECREF(main_name);

    /* input() reads a line from here and gets EOF at once */
    io = PyImport_ImportModule("io");
    if (!io) {
        return pyexec_py_fail(err, err_len, "io");
    }
    S.stdin_obj = PyObject_CallMethod(io, "StringIO", NULL);
    S.stringio = PyObject_GetAttrString(io, "StringIO");
    Py_DECREF(io);
    S.out = pyexec_capture_new(max_output, PYEXEC_OUTPUT_STDOUT);
    S.err = pyexec_capture_new(max_output, PYEXEC_OUTPUT_STDERR);
    if (!S.stdin_obj || !S.stringio || !S.out || !S.err) {
        return pyexec_py_fail(err, err_len, "streams");
    }
    if (pyexec_display_session(S.builtins, S.out, max_display) != 0) {
        return pyexec_py_fail(err, err_len, "display");
    }
    return 0;
}

/* --- one execution --------------------------------------------------- */

static PyObject *run_coroutine(PyObject *coro)
{
    PyObject *r;

    if (!S.loop) {
        PyObject *asyncio = PyImport_ImportModule("asyncio");

        if (!asyncio) {
            Py_DECREF(coro);
            return NULL;
        }
        S.loop = PyObject_CallMethod(asyncio, "new_event_loop", NULL);
        Py_DECREF(asyncio);
        if (!S.loop) {
            Py_DECREF(coro);
            return NULL;
        }
    }
    r = PyObject_CallMethod(S.loop, "run_until_complete", "O", coro);
    Py_DECREF(coro);
    return r;
}

/* The traceback from the user's first frame on: frames of the
 * machinery that ran it (the event loop for top-level await) are not
 * the user's. */
static PyObject *user_traceback(PyObject *tb)
{
    while (tb && tb != Py_None && PyTraceBack_Check(tb)) {
        PyTracebackObject *t = (PyTracebackObject *)tb;
        PyCodeObject *co = PyFrame_GetCode(t->tb_frame);
        int mine = PyUnicode_CompareWithASCIIString(co->co_filename,
                                                    USER_FILENAME) == 0;

        Py_DECREF(co);
        if (mine) {
            return tb;
        }
        tb = (PyObject *)t->tb_next;
    }
    return NULL;
}

static void print_exit_message(PyObject *value)
{
    PyObject *code = PyObject_GetAttrString(value, "code");

    if (!code) {
        PyErr_Clear();
        return;
    }
    /* as the interpreter does for a script: None and ints print
     * nothing, anything else is written to stderr */
    if (code != Py_None && !PyLong_Check(code)) {
        PyObject *s = PyObject_Str(code);
        if (s) {
            const char *u;
            Py_ssize_t n;

            u = PyUnicode_AsUTF8AndSize(s, &n);
            if (u) {
                pyexec_capture_append(S.err, u, (size_t)n);
                pyexec_capture_append(S.err, "\n", 1);
            }
            Py_DECREF(s);
        }
        PyErr_Clear();
    }
    Py_DECREF(code);
}

static void report_exception(pyexec_py_result_t *res)
{
    PyObject *type, *value, *tb, *utb;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (!value) {
        goto cleanup;
    }
    if (PyErr_GivenExceptionMatches(type, PyExc_SystemExit)) {
        print_exit_message(value);
        goto cleanup;
    }
    if (PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
        res->memory_exceeded = 1;
        goto cleanup;
    }
    utb = user_traceback(tb);
    PyException_SetTraceback(value, utb ? utb : Py_None);
    PySys_SetObject("stderr", (PyObject *)S.err);
    PyErr_Display(type, value, utb);
    PyErr_Clear();
cleanup:
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* --- compiled code, kept for the next run of the same source ---------- */

/* Sessions run the same cell again and again; compiling it is most of
 * what a short run costs. A code object is immutable and compiling the
 * same text with the same flags and file name gives an equal one, so a
 * small cache per helper changes nothing but the time. */
#define CODE_CACHE_SLOTS      8
#define CODE_CACHE_MAX_SOURCE 8192

typedef struct {
    char *source;
    size_t len;
    int display_result;
    PyObject *code;             /* a code object; with display_result, a
                                   (body, final expression) tuple */
} code_cache_entry_t;

static code_cache_entry_t code_cache[CODE_CACHE_SLOTS];

/* A new reference to the cached code of this source, moved to the front;
 * NULL if there is none. */
static PyObject *code_cache_get(const char *source, size_t len,
                                int display_result)
{
    for (int i = 0; i < CODE_CACHE_SLOTS; i++) {
        if (code_cache[i].code && code_cache[i].len == len
            && code_cache[i].display_result == display_result
            && memcmp(code_cache[i].source, source, len) == 0) {
            code_cache_entry_t hit = code_cache[i];

            memmove(&code_cache[1], &code_cache[0],
                    (size_t)i * sizeof(code_cache_entry_t));
            code_cache[0] = hit;
            Py_INCREF(hit.code);
            return hit.code;
        }
    }
    return NULL;
}

static void code_cache_put(const char *source, size_t len,
                           int display_result, PyObject *code)
{
    code_cache_entry_t *last = &code_cache[CODE_CACHE_SLOTS - 1];
    char *copy;

    if (len > CODE_CACHE_MAX_SOURCE || !(copy = malloc(len))) {
        return;
    }
    memcpy(copy, source, len);
    free(last->source);
    Py_XDECREF(last->code);
    memmove(&code_cache[1], &code_cache[0],
            (CODE_CACHE_SLOTS - 1) * sizeof(code_cache_entry_t));
    code_cache[0].source = copy;
    code_cache[0].len = len;
    code_cache[0].display_result = display_result;
    code_cache[0].code = code;
    Py_INCREF(code);
}

/* The source compiled, from the cache if it was run before: a code
 * object, or with display_result a (body, final expression) tuple. */
static PyObject *compiled(const char *code, size_t code_len,
                          int display_result)
{
    PyCompilerFlags cf = _PyCompilerFlags_INIT;
    PyObject *co = code_cache_get(code, code_len, display_result);

    if (co) {
        return co;
    }
    if (display_result) {
        PyObject *src = PyUnicode_DecodeUTF8(code, (Py_ssize_t)code_len,
                                             "surrogateescape");

        co = src ? pyexec_display_split(src) : NULL;
        Py_XDECREF(src);
        /* _split is within the user's reach (display.__globals__): what
         * it gives is used only if it is what ours gives */
        if (co && !(PyTuple_CheckExact(co) && PyTuple_GET_SIZE(co) == 2
                    && PyCode_Check(PyTuple_GET_ITEM(co, 0))
                    && (PyTuple_GET_ITEM(co, 1) == Py_None
                        || PyCode_Check(PyTuple_GET_ITEM(co, 1))))) {
            Py_DECREF(co);
            PyErr_SetString(PyExc_TypeError, "display: the split of the "
                            "source is not (code, code or None)");
            co = NULL;
        }
    }
    else {
        cf.cf_flags = PyCF_ALLOW_TOP_LEVEL_AWAIT | PyCF_IGNORE_COOKIE
                      | PyCF_SOURCE_IS_UTF8;
        co = Py_CompileStringExFlags(code, USER_FILENAME, Py_file_input,
                                     &cf, -1);
    }
    if (co) {
        code_cache_put(code, code_len, display_result, co);
    }
    return co;
}

/* Evaluate one code object in the session; top-level await runs on the
 * session's loop. */
static PyObject *evaluate(PyObject *co)
{
    PyObject *r = PyEval_EvalCode(co, S.globals, S.globals);

    if (r && (((PyCodeObject *)co)->co_flags & CO_COROUTINE)) {
        r = run_coroutine(r);
    }
    return r;
}

/* What the run reads from stdin: the request's text, then EOF; without
 * any, EOF at once. A new reference. */
static PyObject *run_stdin(const char *text, size_t len)
{
    PyObject *s, *f;

    if (!text || len == 0) {
        Py_INCREF(S.stdin_obj);
        return S.stdin_obj;
    }
    s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "replace");
    f = s ? PyObject_CallOneArg(S.stringio, s) : NULL;
    Py_XDECREF(s);
    if (!f) {
        PyErr_Clear();
        Py_INCREF(S.stdin_obj);
        return S.stdin_obj;
    }
    return f;
}

void pyexec_py_exec(const char *code, const char *stdin_text,
                    size_t stdin_len, int display_result,
                    pyexec_py_result_t *res)
{
    PyObject *co, *r = NULL, *in;
    int64_t t0 = pyexec_now_usec();
    size_t code_len = strlen(code);

    memset(res, 0, sizeof(*res));
    pyexec_capture_reset(S.out);
    pyexec_capture_reset(S.err);
    pyexec_display_reset();
    /* user code may have replaced them through some back door */
    PySys_SetObject("stdout", (PyObject *)S.out);
    PySys_SetObject("stderr", (PyObject *)S.err);
    in = run_stdin(stdin_text, stdin_len);
    PySys_SetObject("stdin", in);
    Py_DECREF(in);

    co = compiled(code, code_len, display_result);
    if (co && PyTuple_Check(co)) {
        PyObject *expr = PyTuple_GET_ITEM(co, 1);

        r = evaluate(PyTuple_GET_ITEM(co, 0));
        if (r && expr != Py_None) {
            Py_DECREF(r);
            r = evaluate(expr);
            if (r && pyexec_display_value(r) != 0) {
                Py_CLEAR(r);
            }
        }
    }
    else if (co) {
        r = evaluate(co);
    }
    Py_XDECREF(co);
    if (!r) {
        report_exception(res);
    }
    Py_XDECREF(r);
    /* figures still open are shown, as a notebook's inline backend does,
     * whether or not the run ended in an exception */
    if (!res->memory_exceeded && pyexec_display_flush() != 0) {
        report_exception(res);
    }

    /* the run's stdin is the run's: the next one starts at EOF again */
    PySys_SetObject("stdin", S.stdin_obj);

    res->exec_usec = (uint64_t)(pyexec_now_usec() - t0);
    res->mem_bytes = pyexec_py_heap_in_use();
    res->out = S.out->buf;
    res->out_len = S.out->len;
    res->out_cut = S.out->cut;
    res->err = S.err->buf;
    res->err_len = S.err->len;
    res->err_cut = S.err->cut;
    res->display = pyexec_display_items(&res->display_len,
                                        &res->display_count);
}
