/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * sys.stdout and sys.stderr of a session: written by user code, read by
 * the helper after each run (helper_python.c). Runs in each session
 * helper (and in pyexec-helper --run).
 */
#include "helper_python_int.h"   /* Python.h first, as CPython asks */

#include <string.h>

#include "helper_stream.h"


/* Longest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_floor(const char *s, size_t n)
{
    size_t i = n;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
    }
    if (i > 0) {
        unsigned char lead = (unsigned char)s[i - 1];
        size_t want = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
        if (n - (i - 1) < want) {
            return i - 1;
        }
    }
    return n;
}

void pyexec_capture_append(pyexec_capture_t *c, const char *s, size_t n)
{
    if (c->cut || n == 0) {
        return;
    }
    if (n > c->limit - c->len) {
        n = utf8_floor(s, c->limit - c->len);
        c->cut = 1;
    }
    if (c->len + n > c->cap) {
        size_t ncap = c->cap ? c->cap : 4096;
        char *nb;

        while (ncap < c->len + n) {
            ncap *= 2;
        }
        if (ncap > c->limit) {
            ncap = c->limit;
        }
        nb = PyMem_RawRealloc(c->buf, ncap);
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    /* exactly what was kept, so that a streamed run's events add up to
     * its answer */
    pyexec_stream_put(c->kind, s, n);
}

static PyObject *capture_write(pyexec_capture_t *self, PyObject *arg)
{
    const char *s;
    Py_ssize_t n;

    if (!PyUnicode_Check(arg)) {
        return PyErr_Format(PyExc_TypeError,
                            "write() argument must be str, not %.100s",
                            Py_TYPE(arg)->tp_name);
    }
    s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s) {
        pyexec_capture_append(self, s, (size_t)n);
    }
    else {
        /* lone surrogates: show them escaped rather than fail the print */
        PyObject *b;

        PyErr_Clear();
        b = PyUnicode_AsEncodedString(arg, "utf-8", "backslashreplace");
        if (!b) {
            return NULL;
        }
        pyexec_capture_append(self, PyBytes_AS_STRING(b),
                              (size_t)PyBytes_GET_SIZE(b));
        Py_DECREF(b);
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *capture_false(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
    Py_RETURN_FALSE;
}

static PyObject *capture_true(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
    Py_RETURN_TRUE;
}

static PyObject *capture_get_encoding(PyObject *self, void *closure)
{
    (void)self; (void)closure;
    return PyUnicode_FromString("utf-8");
}

static PyObject *capture_get_closed(PyObject *self, void *closure)
{
    (void)self; (void)closure;
    Py_RETURN_FALSE;
}

static PyObject *capture_flush(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
    pyexec_stream_flush();
    Py_RETURN_NONE;
}

static PyMethodDef capture_methods[] = {
    {"write", (PyCFunction)capture_write, METH_O, NULL},
    {"flush", capture_flush, METH_NOARGS, NULL},
    {"isatty", capture_false, METH_NOARGS, NULL},
    {"readable", capture_false, METH_NOARGS, NULL},
    {"seekable", capture_false, METH_NOARGS, NULL},
    {"writable", capture_true, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef capture_getset[] = {
    {"encoding", capture_get_encoding, NULL, NULL, NULL},
    {"closed", capture_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject capture_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "OutputCapture",
    .tp_basicsize = sizeof(pyexec_capture_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = capture_methods,
    .tp_getset = capture_getset,
};

pyexec_capture_t *pyexec_capture_new(size_t limit, int kind)
{
    pyexec_capture_t *c = PyObject_New(pyexec_capture_t, &capture_type);

    if (c) {
        c->buf = NULL;
        c->len = c->cap = 0;
        c->limit = limit;
        c->cut = 0;
        c->kind = kind;
    }
    return c;
}

int pyexec_capture_ready(void)
{
    return PyType_Ready(&capture_type);
}

void pyexec_capture_reset(pyexec_capture_t *c)
{
    c->len = 0;
    c->cut = 0;
}
