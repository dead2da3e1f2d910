/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Rich output of a session: the display() builtin, matplotlib's figures
 * and the value of a final bare expression, kept as display items for
 * the RESULT (pyexec_protocol.h). The formatting follows IPython's rules
 * and is Python (display_py below, compiled once in the zygote); keeping
 * the items within the session's cap is C, here. Runs in the zygote
 * (set-up) and in each session helper.
 *
 * The cap held here is the honest helper's courtesy: a clear marker in
 * place of what did not fit. User code can write any bytes to its
 * connection, so the worker checks every item again (pyexec_display.c).
 */
#include "helper_python_int.h"   /* Python.h first, as CPython asks */

#include <stdio.h>
#include <string.h>

#include "helper_stream.h"
#include "pyexec_protocol.h"

static struct {
    PyObject *ns;               /* the display code's globals */
    PyObject *display;          /* the builtin */
    PyObject *flush;            /* displays and closes open figures */
    PyObject *split;            /* source -> (body, final expression) */
    pyexec_capture_t *out;      /* stdout, for the items' offsets */
    size_t max;                 /* PyExecMaxDisplay */
    unsigned char *buf;         /* the items, as the RESULT carries them */
    size_t len, cap;
    size_t used;                /* bytes of kept items, headers included */
    uint32_t count;
    size_t counted;             /* bytes of stdout counted so far ... */
    uint32_t chars;             /* ... and the code points in them */
} D;

/* Code points of stdout written so far; counted on from where the last
 * item left off, so that many items cost one pass over stdout. */
static uint32_t stdout_chars(void)
{
    const pyexec_capture_t *o = D.out;

    for (; D.counted < o->len; D.counted++) {
        if (((unsigned char)o->buf[D.counted] & 0xc0) != 0x80) {
            D.chars++;
        }
    }
    return D.chars;
}

static void put_item(const char *json, size_t len)
{
    size_t need = D.len + PYEXEC_DISPLAY_ITEM_HDR_LEN + len;

    if (need > D.cap) {
        size_t ncap = D.cap ? D.cap : 4096;

        while (ncap < need) {
            ncap *= 2;
        }
        /* the memory guard ends the session should this fail */
        D.buf = PyMem_RawRealloc(D.buf, ncap);
        D.cap = ncap;
    }
    pyexec_display_item_encode(D.buf + D.len, stdout_chars(), (uint32_t)len);
    memcpy(D.buf + D.len + PYEXEC_DISPLAY_ITEM_HDR_LEN, json, len);
    pyexec_stream_put_item(PYEXEC_OUTPUT_DISPLAY, D.buf + D.len,
                           PYEXEC_DISPLAY_ITEM_HDR_LEN + len);
    D.len = need;
    D.count++;
}

/* A MIME type as a marker may quote it: the characters types are made
 * of, at most 64, or "output". */
static void safe_mime(const char *what, char *out, size_t outlen)
{
    size_t n = 0;

    for (const char *p = what; *p && n + 1 < outlen && n < 64; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || strchr("/+.-_", *p))) {
            n = 0;
            break;
        }
        out[n++] = *p;
    }
    if (n == 0) {
        snprintf(out, outlen, "output");
        return;
    }
    out[n] = '\0';
}

/* _emit(json, what): keep one item, or a marker in its place; returns
 * whether it was kept. json is the item's compact JSON; what names its
 * richest MIME type, for the marker. */
static PyObject *display_emit(PyObject *self, PyObject *args)
{
    const char *json, *what;
    Py_ssize_t len;
    char mime[72], marker[PYEXEC_DISPLAY_MARKER_MAX];
    size_t need;
    int n;

    (void)self;
    if (!PyArg_ParseTuple(args, "s#s:_emit", &json, &len, &what)) {
        return NULL;
    }
    if (D.count >= PYEXEC_DISPLAY_ITEMS_MAX) {
        Py_RETURN_FALSE;
    }
    need = PYEXEC_DISPLAY_ITEM_HDR_LEN + (size_t)len;
    if (D.count + 1 < PYEXEC_DISPLAY_ITEMS_MAX && need <= D.max - D.used
        && D.used <= D.max) {
        put_item(json, (size_t)len);
        D.used += need;
        Py_RETURN_TRUE;
    }
    safe_mime(what, mime, sizeof(mime));
    if (D.count + 1 >= PYEXEC_DISPLAY_ITEMS_MAX) {
        n = snprintf(marker, sizeof(marker),
                     "{\"data\":{\"text/plain\":\"[display dropped: more "
                     "than %d items in one run]\"},\"metadata\":"
                     "{\"dropped\":true}}", PYEXEC_DISPLAY_ITEMS_MAX - 1);
    }
    else {
        n = snprintf(marker, sizeof(marker),
                     "{\"data\":{\"text/plain\":\"[display dropped: %s of "
                     "%zu bytes; more than the %zu bytes left of "
                     "PyExecMaxDisplay]\"},\"metadata\":{\"dropped\":true}}",
                     mime, (size_t)len, D.max - D.used);
    }
    put_item(marker, (size_t)n);
    Py_RETURN_FALSE;
}

static PyMethodDef display_methods[] = {
    {"_emit", display_emit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}
};

/* IPython's formatter rules, in short: _repr_mimebundle_ first, then
 * each _repr_*_ method for what it did not give, text/plain (the repr)
 * always; binary types as base64, JSON types as JSON values. matplotlib
 * figures are PNG at their own size and dpi; pandas Series get the
 * HTML table DataFrames have. A formatter that raises is reported on
 * stderr and left out, as IPython does; MemoryError is not caught: it
 * ends the session like any other allocation. */
static const char display_py[] =
    "import base64 as _b64, io as _io, json as _json, sys as _sys\n"
    "import traceback as _tb, ast as _ast\n"
    "_REPRS = (('image/png', '_repr_png_'), ('image/jpeg', '_repr_jpeg_'),\n"
    "          ('image/svg+xml', '_repr_svg_'), ('text/html', '_repr_html_'),\n"
    "          ('text/markdown', '_repr_markdown_'),\n"
    "          ('text/latex', '_repr_latex_'),\n"
    "          ('application/json', '_repr_json_'),\n"
    "          ('application/pdf', '_repr_pdf_'),\n"
    "          ('application/javascript', '_repr_javascript_'))\n"
    "_RICH = [m for m, _ in _REPRS]\n"
    "_plt = _sys.modules.get('matplotlib.pyplot')\n"
    "_pd = _sys.modules.get('pandas')\n"
    "if _plt is not None:\n"
    "    from matplotlib.figure import Figure as _Figure\n"
    "    from matplotlib._pylab_helpers import Gcf as _Gcf\n"
    "def _is_json(mime):\n"
    "    return mime == 'application/json' or mime.endswith('+json')\n"
    "def _is_binary(mime):\n"
    "    return mime == 'application/pdf' or (mime.startswith('image/')\n"
    "                                         and mime != 'image/svg+xml')\n"
    "def _warn(obj, what, e):\n"
    "    if isinstance(e, MemoryError):\n"
    "        raise e\n"
    "    lines = _tb.format_exception(type(e), e, e.__traceback__.tb_next)\n"
    "    _sys.stderr.write('%s of %s raised; left out:\\n%s'\n"
    "                      % (what, type(obj).__name__, ''.join(lines)))\n"
    "def _method(obj, name):\n"
    "    if isinstance(obj, type):\n"
    "        return None\n"
    "    try:\n"
    "        m = getattr(obj, name, None)\n"
    "    except Exception:\n"
    "        return None\n"
    "    return m if callable(m) else None\n"
    "def _value(mime, v):\n"
    "    if _is_json(mime):\n"
    "        if isinstance(v, (str, bytes)):\n"
    "            v = _json.loads(v)\n"
    "        return v\n"
    "    if isinstance(v, (bytes, bytearray, memoryview)):\n"
    "        v = bytes(v)\n"
    "        if _is_binary(mime):\n"
    "            return _b64.b64encode(v).decode('ascii')\n"
    "        return v.decode('utf-8', 'replace')\n"
    "    if isinstance(v, str):\n"
    "        return v\n"
    "    raise TypeError('%s data must be str or bytes, not %s'\n"
    "                    % (mime, type(v).__name__))\n"
    "def _png_size(png):\n"
    "    return int.from_bytes(png[16:20], 'big'), int.from_bytes(png[20:24], 'big')\n"
    "_shown = set()\n"
    "def _figure(fig, data, md):\n"
    "    _shown.add(id(fig))\n"
    "    b = _io.BytesIO()\n"
    "    fig.savefig(b, format='png')\n"
    "    png = b.getvalue()\n"
    "    data['image/png'] = png\n"
    "    w, h = _png_size(png)\n"
    "    md['image/png'] = {'width': w, 'height': h}\n"
    "def _bundle(obj, include, exclude):\n"
    "    data, md = {}, {}\n"
    "    m = _method(obj, '_repr_mimebundle_')\n"
    "    if m is not None:\n"
    "        try:\n"
    "            r = m(include=include, exclude=exclude)\n"
    "        except Exception as e:\n"
    "            _warn(obj, '_repr_mimebundle_', e)\n"
    "            r = None\n"
    "        if isinstance(r, tuple) and len(r) == 2:\n"
    "            r, rmd = r\n"
    "            if isinstance(rmd, dict):\n"
    "                md.update(rmd)\n"
    "        if isinstance(r, dict):\n"
    "            data.update(r)\n"
    "    for mime, name in _REPRS:\n"
    "        if mime in data:\n"
    "            continue\n"
    "        m = _method(obj, name)\n"
    "        if m is None:\n"
    "            continue\n"
    "        try:\n"
    "            r = m()\n"
    "        except Exception as e:\n"
    "            _warn(obj, name, e)\n"
    "            continue\n"
    "        if isinstance(r, tuple) and len(r) == 2:\n"
    "            r, rmd = r\n"
    "            if isinstance(rmd, dict):\n"
    "                md[mime] = rmd\n"
    "        if r is not None:\n"
    "            data[mime] = r\n"
    "    try:\n"
    "        if _plt is not None and isinstance(obj, _Figure) and 'image/png' not in data:\n"
    "            _figure(obj, data, md)\n"
    "        if _pd is not None and isinstance(obj, _pd.Series) and 'text/html' not in data:\n"
    "            data['text/html'] = obj.to_frame()._repr_html_()\n"
    "    except Exception as e:\n"
    "        _warn(obj, 'rendering', e)\n"
    "    if 'text/plain' not in data:\n"
    "        try:\n"
    "            data['text/plain'] = repr(obj)\n"
    "        except Exception as e:\n"
    "            _warn(obj, '__repr__', e)\n"
    "            data['text/plain'] = object.__repr__(obj)\n"
    "    return data, md\n"
    "def _publish(obj, data, md, include, exclude):\n"
    "    out = {}\n"
    "    for mime, v in data.items():\n"
    "        if not isinstance(mime, str):\n"
    "            continue\n"
    "        if mime != 'text/plain' and (include is not None and mime not in include\n"
    "                                     or exclude is not None and mime in exclude):\n"
    "            continue\n"
    "        try:\n"
    "            out[mime] = _value(mime, v)\n"
    "        except Exception as e:\n"
    "            _warn(obj, mime, e)\n"
    "    if 'text/plain' not in out:\n"
    "        out['text/plain'] = object.__repr__(obj) if not isinstance(obj, dict) else ''\n"
    "    try:\n"
    "        text = _json.dumps({'data': out, 'metadata': md}, ensure_ascii=False,\n"
    "                           separators=(',', ':'), allow_nan=False)\n"
    "    except (TypeError, ValueError) as e:\n"
    "        _warn(obj, 'metadata', e)\n"
    "        out = {k: v for k, v in out.items() if not _is_json(k)}\n"
    "        text = _json.dumps({'data': out, 'metadata': {}}, ensure_ascii=False,\n"
    "                           separators=(',', ':'))\n"
    "    what = next((m for m in _RICH if m in out), 'text/plain')\n"
    "    _emit(text, what)\n"
    "def display(*objs, include=None, exclude=None, metadata=None,\n"
    "            transient=None, display_id=None, raw=False, clear=False,\n"
    "            **kwargs):\n"
    "    '''Show each object as a notebook would: an image, a table, HTML,\n"
    "    or its text form, in the answer's \"display\" list.'''\n"
    "    for obj in objs:\n"
    "        if raw:\n"
    "            if not isinstance(obj, dict):\n"
    "                raise TypeError('display(raw=True) takes dicts of MIME '\n"
    "                                'type to data')\n"
    "            data, md = dict(obj), {}\n"
    "        else:\n"
    "            data, md = _bundle(obj, include, exclude)\n"
    "        if isinstance(metadata, dict):\n"
    "            md.update(metadata)\n"
    "        _publish(obj, data, md, include, exclude)\n"
    "def _flush():\n"
    "    if _plt is None:\n"
    "        return\n"
    "    if not _Gcf.figs:\n"
    "        _shown.clear()\n"
    "        return\n"
    "    try:\n"
    "        for manager in _Gcf.get_all_fig_managers():\n"
    "            if id(manager.canvas.figure) not in _shown:\n"
    "                display(manager.canvas.figure)\n"
    "    finally:\n"
    "        _shown.clear()\n"
    "        _plt.close('all')\n"
    "def _show(*args, **kwargs):\n"
    "    '''Display every open figure, then close it (the inline backend's\n"
    "    show).'''\n"
    "    _flush()\n"
    "if _plt is not None:\n"
    "    _plt.show = _show\n"
    "_FLAGS = _ast.PyCF_ONLY_AST | _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT\n"
    "def _quiet(source, node):\n"
    "    line = source.splitlines()[node.end_lineno - 1] if source else ''\n"
    "    return line.encode()[node.end_col_offset:].lstrip().startswith(b';')\n"
    "def _split(source):\n"
    "    tree = compile(source, '<stdin>', 'exec', _FLAGS, dont_inherit=True)\n"
    "    flags = _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT\n"
    "    last = tree.body[-1] if tree.body else None\n"
    "    if not isinstance(last, _ast.Expr) or _quiet(source, last):\n"
    "        return compile(tree, '<stdin>', 'exec', flags, dont_inherit=True), None\n"
    "    body = _ast.Module(tree.body[:-1], [])\n"
    "    expr = _ast.Expression(last.value)\n"
    "    return (compile(body, '<stdin>', 'exec', flags, dont_inherit=True),\n"
    "            compile(expr, '<stdin>', 'eval', flags, dont_inherit=True))\n";

int pyexec_display_init(char *err, size_t err_len)
{
    PyObject *mod, *ns, *bmod, *fn, *r;

    mod = PyModule_New("_pyexec_display");
    if (!mod) {
        return pyexec_py_fail(err, err_len, "display module");
    }
    ns = PyModule_GetDict(mod);
    bmod = PyImport_ImportModule("builtins");
    if (!bmod || PyDict_SetItemString(ns, "__builtins__", bmod) != 0) {
        Py_XDECREF(bmod);
        Py_DECREF(mod);
        return pyexec_py_fail(err, err_len, "display builtins");
    }
    Py_DECREF(bmod);
    fn = PyCFunction_New(&display_methods[0], NULL);
    if (!fn || PyDict_SetItemString(ns, "_emit", fn) != 0) {
        Py_XDECREF(fn);
        Py_DECREF(mod);
        return pyexec_py_fail(err, err_len, "display _emit");
    }
    Py_DECREF(fn);
    r = PyRun_String(display_py, Py_file_input, ns, ns);
    if (!r) {
        Py_DECREF(mod);
        return pyexec_py_fail(err, err_len, "display set-up");
    }
    Py_DECREF(r);
    D.display = PyDict_GetItemString(ns, "display");
    D.flush = PyDict_GetItemString(ns, "_flush");
    D.split = PyDict_GetItemString(ns, "_split");
    Py_XINCREF(D.display);
    Py_XINCREF(D.flush);
    Py_XINCREF(D.split);
    D.ns = ns;
    Py_INCREF(ns);
    /* the module itself lives on in its functions' globals; it is in no
     * sys.modules, so nobody imports it */
    Py_DECREF(mod);
    if (!D.display || !D.flush || !D.split) {
        snprintf(err, err_len, "display set-up: functions missing");
        return -1;
    }
    return 0;
}

int pyexec_display_session(PyObject *builtins, pyexec_capture_t *out,
                           size_t max_display)
{
    D.out = out;
    D.max = max_display;
    /* display.__globals__ is within the user's reach: its builtins are
     * the session's, with their refusals, not the real ones. (Like every
     * module's globals it holds modules the import hook would refuse:
     * this layer is not a boundary, helper_policy.c) */
    if (PyDict_SetItemString(D.ns, "__builtins__", builtins) != 0) {
        return -1;
    }
    return PyDict_SetItemString(builtins, "display", D.display);
}

void pyexec_display_reset(void)
{
    D.len = 0;
    D.used = 0;
    D.count = 0;
    D.counted = 0;
    D.chars = 0;
}

PyObject *pyexec_display_split(PyObject *source)
{
    return PyObject_CallOneArg(D.split, source);
}

int pyexec_display_value(PyObject *value)
{
    PyObject *r;

    if (value == Py_None) {
        return 0;
    }
    r = PyObject_CallOneArg(D.display, value);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int pyexec_display_flush(void)
{
    PyObject *r = PyObject_CallNoArgs(D.flush);

    Py_XDECREF(r);
    return r ? 0 : -1;
}

const unsigned char *pyexec_display_items(size_t *len, uint32_t *count)
{
    *len = D.len;
    *count = D.count;
    return D.buf;
}
