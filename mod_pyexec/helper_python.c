/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * The embedded CPython of a session helper.
 *
 * What users see of the restrictions is shaped here: an __import__ that
 * refuses the blocked modules with a clear PermissionError, `open`
 * refused the same way, stdout and stderr captured up to a cap. None of
 * this is a security boundary (CPython cannot be confined from inside);
 * the boundary is the OS sandbox applied in helper_sandbox.h. Everything
 * here is C so that no frame of ours shows up in a user's traceback.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#ifdef PYEXEC_SANITIZERS
/* sanitizer/allocator_interface.h, which not every toolchain ships */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper_python.h"
#include "pyexec_io.h"

#define USER_FILENAME "<stdin>"

/* --- memory guard ---------------------------------------------------- */

static PyMemAllocatorEx orig_alloc[3];
static PyObjectArenaAllocator orig_arena;

static void out_of_memory(void)
{
    _exit(PYEXEC_EXIT_MEMORY);
}

static void *guard_malloc(void *ctx, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->malloc(a->ctx, size);

    if (!p) {
        out_of_memory();
    }
    return p;
}

static void *guard_calloc(void *ctx, size_t nelem, size_t elsize)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->calloc(a->ctx, nelem, elsize);

    if (!p && nelem && elsize) {
        out_of_memory();
    }
    return p;
}

static void *guard_realloc(void *ctx, void *ptr, size_t size)
{
    PyMemAllocatorEx *a = ctx;
    void *p = a->realloc(a->ctx, ptr, size);

    if (!p && size) {
        out_of_memory();
    }
    return p;
}

static void guard_free(void *ctx, void *ptr)
{
    PyMemAllocatorEx *a = ctx;

    a->free(a->ctx, ptr);
}

/* Python's arenas are mapped directly, outside malloc's books: counted
 * here for the memory a session reports (GET of a session). */
static size_t arena_bytes;

static void *guard_arena_alloc(void *ctx, size_t size)
{
    void *p = orig_arena.alloc(orig_arena.ctx, size);

    (void)ctx;
    if (!p) {
        out_of_memory();
    }
    arena_bytes += size;
    return p;
}

static void guard_arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    orig_arena.free(orig_arena.ctx, ptr, size);
    arena_bytes -= size;
}

void pyexec_py_arm_memory_guard(void)
{
    static const PyMemAllocatorDomain domains[3] = {
        PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ
    };
    PyObjectArenaAllocator arena;

    for (int i = 0; i < 3; i++) {
        PyMemAllocatorEx hook;

        PyMem_GetAllocator(domains[i], &orig_alloc[i]);
        hook.ctx = &orig_alloc[i];
        hook.malloc = guard_malloc;
        hook.calloc = guard_calloc;
        hook.realloc = guard_realloc;
        hook.free = guard_free;
        PyMem_SetAllocator(domains[i], &hook);
    }
    PyObject_GetArenaAllocator(&orig_arena);
    arena.ctx = NULL;
    arena.alloc = guard_arena_alloc;
    arena.free = guard_arena_free;
    PyObject_SetArenaAllocator(&arena);
}

/* --- output capture -------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    char *buf;
    size_t len;
    size_t cap;
    size_t limit;
    int cut;
} capture_t;

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

static void capture_append(capture_t *c, const char *s, size_t n)
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
}

static PyObject *capture_write(capture_t *self, PyObject *arg)
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
        capture_append(self, s, (size_t)n);
    }
    else {
        /* lone surrogates: show them escaped rather than fail the print */
        PyObject *b;

        PyErr_Clear();
        b = PyUnicode_AsEncodedString(arg, "utf-8", "backslashreplace");
        if (!b) {
            return NULL;
        }
        capture_append(self, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
        Py_DECREF(b);
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *capture_none(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
    Py_RETURN_NONE;
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

static PyMethodDef capture_methods[] = {
    {"write", (PyCFunction)capture_write, METH_O, NULL},
    {"flush", capture_none, METH_NOARGS, NULL},
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
    .tp_basicsize = sizeof(capture_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = capture_methods,
    .tp_getset = capture_getset,
};

static capture_t *capture_new(size_t limit)
{
    capture_t *c = PyObject_New(capture_t, &capture_type);

    if (c) {
        c->buf = NULL;
        c->len = c->cap = 0;
        c->limit = limit;
        c->cut = 0;
    }
    return c;
}

/* --- the session ----------------------------------------------------- */

static struct {
    PyObject *globals;          /* the session's __main__ namespace */
    PyObject *builtins;         /* curated copy users see */
    PyObject *real_import;      /* builtins.__import__ */
    PyObject *shims;            /* module name -> restricted stand-in */
    PyObject *stdin_obj;        /* always at EOF */
    PyObject *loop;             /* event loop for top-level await */
    capture_t *out;
    capture_t *err;
    char **blocked;
    size_t nblocked;
} S;

static int is_blocked(const char *name, size_t len)
{
    for (size_t i = 0; i < S.nblocked; i++) {
        size_t blen = strlen(S.blocked[i]);

        if (len >= blen && memcmp(name, S.blocked[i], blen) == 0
            && (len == blen || name[blen] == '.')) {
            return 1;
        }
    }
    return 0;
}

static PyObject *refuse_import(PyObject *name)
{
    return PyErr_Format(PyExc_PermissionError,
                        "Importing '%U' is restricted.", name);
}

/* Checks `name` and each `name.item` of a fromlist. Returns 0 if the
 * import may go ahead, -1 with PermissionError set if not. */
static int check_import(PyObject *name, PyObject *fromlist)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(name, &len);

    if (!s) {
        return -1;
    }
    if (is_blocked(s, (size_t)len)) {
        refuse_import(name);
        return -1;
    }
    if (fromlist && fromlist != Py_None) {
        PyObject *it = PyObject_GetIter(fromlist), *item;

        if (!it) {
            return -1;
        }
        while ((item = PyIter_Next(it)) != NULL) {
            if (PyUnicode_Check(item)) {
                PyObject *full = PyUnicode_FromFormat("%U.%U", name, item);
                const char *fs;
                Py_ssize_t flen;

                if (!full) {
                    Py_DECREF(item);
                    Py_DECREF(it);
                    return -1;
                }
                fs = PyUnicode_AsUTF8AndSize(full, &flen);
                if (fs && is_blocked(fs, (size_t)flen)) {
                    refuse_import(full);
                    Py_DECREF(full);
                    Py_DECREF(item);
                    Py_DECREF(it);
                    return -1;
                }
                Py_DECREF(full);
            }
            Py_DECREF(item);
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    return 0;
}

/* A module with a stand-in is handed out as the stand-in. */
static PyObject *maybe_shim(PyObject *module)
{
    PyObject *name, *shim;

    if (!PyModule_Check(module)) {
        return module;
    }
    name = PyModule_GetNameObject(module);
    if (!name) {
        PyErr_Clear();
        return module;
    }
    shim = PyDict_GetItemWithError(S.shims, name);
    Py_DECREF(name);
    if (!shim) {
        return module;
    }
    Py_INCREF(shim);
    Py_DECREF(module);
    return shim;
}

static PyObject *guarded_import(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "globals", "locals", "fromlist",
                             "level", NULL};
    PyObject *name, *globals = NULL, *locals = NULL, *fromlist = NULL;
    int level = 0;
    PyObject *mod;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|OOOi:__import__", kwlist,
                                     &name, &globals, &locals, &fromlist,
                                     &level)) {
        return NULL;
    }
    if (level == 0 && check_import(name, fromlist) != 0) {
        return NULL;
    }
    mod = PyObject_Call(S.real_import, args, kw);
    if (!mod) {
        return NULL;
    }
    return maybe_shim(mod);
}

/* importlib.import_module(name, package=None), checked */
static PyObject *guarded_import_module(PyObject *real, PyObject *args,
                                       PyObject *kw)
{
    static char *kwlist[] = {"name", "package", NULL};
    PyObject *name, *package = Py_None, *fn, *mod;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|O:import_module", kwlist,
                                     &name, &package)) {
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(name) == 0 || PyUnicode_READ_CHAR(name, 0) != '.') {
        if (check_import(name, NULL) != 0) {
            return NULL;
        }
    }
    fn = PyObject_GetAttrString(real, "import_module");
    if (!fn) {
        return NULL;
    }
    mod = PyObject_Call(fn, args, kw);
    Py_DECREF(fn);
    return mod ? maybe_shim(mod) : NULL;
}

/* `self` is the name shown in the message. */
static PyObject *refuse_call(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)args; (void)kw;
    return PyErr_Format(PyExc_PermissionError, "Using '%U' is restricted.",
                        self);
}

static PyObject *raise_exit(PyObject *self, PyObject *args)
{
    PyObject *code = Py_None;

    (void)self;
    if (!PyArg_UnpackTuple(args, "exit", 0, 1, &code)) {
        return NULL;
    }
    PyErr_SetObject(PyExc_SystemExit, code);
    return NULL;
}

/* Module-level __getattr__ of a stand-in: `self` is the real module. */
static PyObject *shim_getattr(PyObject *real, PyObject *name)
{
    return PyObject_GetAttr(real, name);
}

static PyObject *shim_dir(PyObject *real, PyObject *unused)
{
    (void)unused;
    return PyObject_Dir(real);
}

static PyMethodDef import_def = {
    "__import__", (PyCFunction)(void (*)(void))guarded_import,
    METH_VARARGS | METH_KEYWORDS, NULL
};
static PyMethodDef import_module_def = {
    "import_module", (PyCFunction)(void (*)(void))guarded_import_module,
    METH_VARARGS | METH_KEYWORDS, NULL
};
static PyMethodDef refuse_def = {
    "restricted", (PyCFunction)(void (*)(void))refuse_call,
    METH_VARARGS | METH_KEYWORDS, NULL
};
static PyMethodDef exit_def = {"exit", raise_exit, METH_VARARGS, NULL};
static PyMethodDef shim_getattr_def = {"__getattr__", shim_getattr, METH_O, NULL};
static PyMethodDef shim_dir_def = {"__dir__", shim_dir, METH_NOARGS, NULL};

static int set_fn(PyObject *dict, const char *key, PyMethodDef *def,
                  PyObject *self)
{
    PyObject *fn = PyCFunction_NewEx(def, self, NULL);
    int rc;

    if (!fn) {
        return -1;
    }
    rc = PyDict_SetItemString(dict, key, fn);
    Py_DECREF(fn);
    return rc;
}

static int set_refuser(PyObject *dict, const char *key)
{
    PyObject *name = PyUnicode_FromString(key);
    int rc;

    if (!name) {
        return -1;
    }
    rc = set_fn(dict, key, &refuse_def, name);
    Py_DECREF(name);
    return rc;
}

/* A stand-in for module `modname` that refuses the attributes in
 * `refused` and forwards everything else to the real module. */
static int add_shim(const char *modname, const char *const *refused,
                    int with_import_module)
{
    PyObject *real = PyImport_ImportModule(modname);
    PyObject *shim = NULL, *d;
    int rc = -1;

    if (!real) {
        /* a module this build lacks needs no stand-in */
        PyErr_Clear();
        return 0;
    }
    shim = PyModule_New(modname);
    if (!shim) {
        goto cleanup;
    }
    d = PyModule_GetDict(shim);
    if (set_fn(d, "__getattr__", &shim_getattr_def, real) != 0
        || set_fn(d, "__dir__", &shim_dir_def, real) != 0) {
        goto cleanup;
    }
    for (; refused && *refused; refused++) {
        if (set_refuser(d, *refused) != 0) {
            goto cleanup;
        }
    }
    if (with_import_module) {
        if (set_fn(d, "import_module", &import_module_def, real) != 0
            || set_fn(d, "__import__", &import_def, NULL) != 0) {
            goto cleanup;
        }
    }
    rc = PyDict_SetItemString(S.shims, modname, shim);
cleanup:
    Py_XDECREF(shim);
    Py_DECREF(real);
    return rc;
}

static int fail_py(char *err, size_t err_len, const char *what)
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

/* Modules sessions commonly use: imported once in the zygote, so every
 * helper starts with them loaded. */
static const char *const preload[] = {
    "asyncio", "base64", "bisect", "calendar", "collections", "copy",
    "csv", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "hashlib", "heapq", "io", "itertools", "json", "math",
    "operator", "pprint", "random", "re", "statistics", "string",
    "struct", "textwrap", "time", "traceback", "typing", "unicodedata",
    "uuid", "codecs", "importlib", "contextvars", "queue", "zoneinfo",
    "bz2", "lzma", "zlib", "sqlite3", "array", "binascii", "cmath",
    "difflib", "fnmatch", "html", "ipaddress", "numbers", "secrets",
    "shlex", "urllib.parse", "xml.etree.ElementTree",
    /* C extensions the sandbox could not load later: it refuses
     * executable memory once user code runs */
    "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp",
    "_codecs_kr", "_codecs_tw", "_multibytecodec", "_lsprof",
    NULL
};

#define MAX_LIBRARY_PATHS 32
static const char *library_paths[MAX_LIBRARY_PATHS + 1];

const char *const *pyexec_py_library_paths(void)
{
    return library_paths;
}

static void add_library_path(size_t *n, const char *path)
{
    struct stat st;

    if (*n < MAX_LIBRARY_PATHS && stat(path, &st) == 0) {
        for (size_t i = 0; i < *n; i++) {
            if (!strcmp(library_paths[i], path)) {
                return;
            }
        }
        library_paths[(*n)++] = strdup(path);
    }
}

/* PyExecAllowModules: installed packages beyond the standard library.
 * The zygote imports them once: their extension modules could not be
 * loaded later (the sandbox refuses executable memory), and every helper
 * then starts with them loaded. The site directories are on sys.path only
 * meanwhile, so that nothing else installed there becomes importable;
 * the packages' own directories stay readable for what they load lazily.
 * BLAS libraries would start a thread per CPU; a helper has one. */
static const char preload_allowed_py[] =
    "import importlib, sys\n"
    "dirs, failed, extra = [], [], []\n"
    "try:\n"
    "    import site\n"
    "    extra = [d for d in site.getsitepackages() if d not in sys.path]\n"
    "    sys.path.extend(extra)\n"
    "    for name in names.split(','):\n"
    "        try:\n"
    "            m = importlib.import_module(name)\n"
    "        except Exception as e:\n"
    "            failed.append('%s (%s: %s)' % (name, type(e).__name__, e))\n"
    "            continue\n"
    /* a package's own directory, for what it loads lazily; a single-file
     * module is loaded already and needs none (its directory is the
     * whole site directory) */
    "        dirs.extend(getattr(m, '__path__', None) or [])\n"
    "except Exception as e:\n"
    "    failed.append('%s (%s: %s)' % (names, type(e).__name__, e))\n"
    "finally:\n"
    "    for d in extra:\n"
    "        sys.path.remove(d)\n";

/* The heap the session holds, from the allocator's own books (no system
 * call). AddressSanitizer's allocator keeps no mallinfo, but counts. */
static uint64_t heap_in_use(void)
{
#ifdef PYEXEC_SANITIZERS
    return (uint64_t)(__sanitizer_get_current_allocated_bytes()
                      + arena_bytes);
#else
    struct mallinfo2 mi = mallinfo2();

    return (uint64_t)(mi.uordblks + mi.hblkhd + arena_bytes);
#endif
}

#define MAX_PACKAGE_DIRS 16
static char *package_dirs[MAX_PACKAGE_DIRS + 1];

static int preload_allowed(const char *allow, char *err, size_t err_len)
{
    PyObject *ns, *r, *dirs, *failed;
    size_t n = 0;

    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("MKL_NUM_THREADS", "1", 1);
    ns = PyDict_New();
    if (!ns || PyDict_SetItemString(ns, "__builtins__",
                                    PyEval_GetBuiltins()) != 0) {
        Py_XDECREF(ns);
        return fail_py(err, err_len, "PyExecAllowModules");
    }
    r = PyUnicode_FromString(allow);
    if (!r || PyDict_SetItemString(ns, "names", r) != 0) {
        Py_XDECREF(r);
        Py_DECREF(ns);
        return fail_py(err, err_len, "PyExecAllowModules");
    }
    Py_DECREF(r);
    r = PyRun_String(preload_allowed_py, Py_file_input, ns, ns);
    if (!r) {
        Py_DECREF(ns);
        return fail_py(err, err_len, "PyExecAllowModules");
    }
    Py_DECREF(r);
    dirs = PyDict_GetItemString(ns, "dirs");        /* borrowed */
    failed = PyDict_GetItemString(ns, "failed");
    for (Py_ssize_t i = 0; dirs && i < PyList_Size(dirs); i++) {
        const char *d = PyUnicode_AsUTF8(PyList_GET_ITEM(dirs, i));

        if (d && d[0] == '/' && n == MAX_PACKAGE_DIRS) {
            fprintf(stderr, "pyexec-helper[%d]: PyExecAllowModules: more "
                    "than %d package directories; %s and later ones stay "
                    "unreadable\n", (int)getpid(), MAX_PACKAGE_DIRS, d);
            break;
        }
        if (d && d[0] == '/') {
            package_dirs[n++] = strdup(d);
        }
    }
    for (Py_ssize_t i = 0; failed && i < PyList_Size(failed); i++) {
        const char *f = PyUnicode_AsUTF8(PyList_GET_ITEM(failed, i));
        fprintf(stderr, "pyexec-helper[%d]: PyExecAllowModules: cannot "
                "import %s; left out\n", (int)getpid(), f ? f : "?");
    }
    PyErr_Clear();
    Py_DECREF(ns);
    return 0;
}

/* sys.path, the directory of libpython (and so of the libraries the
 * extension modules link), time zone data, and allowed packages. */
static void collect_library_paths(void)
{
    PyObject *path = PySys_GetObject("path");    /* borrowed */
    Dl_info info;
    size_t n = 0;

    if (path && PyList_Check(path)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(path); i++) {
            PyObject *item = PyList_GET_ITEM(path, i);
            const char *p = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item)
                                                  : NULL;
            if (p && p[0] == '/') {
                add_library_path(&n, p);
            }
        }
        PyErr_Clear();
    }
    if (dladdr((void *)Py_Initialize, &info) && info.dli_fname) {
        char real[PATH_MAX], *slash;

        if (realpath(info.dli_fname, real) && (slash = strrchr(real, '/'))) {
            *slash = '\0';
            add_library_path(&n, real);
        }
    }
    add_library_path(&n, "/usr/share/zoneinfo");
    for (char **d = package_dirs; *d; d++) {
        add_library_path(&n, *d);
    }
    library_paths[n] = NULL;
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
    if (PyType_Ready(&capture_type) != 0) {
        return fail_py(err, err_len, "capture type");
    }
    for (const char *const *m = preload; *m; m++) {
        PyObject *mod = PyImport_ImportModule(*m);
        if (!mod) {
            return fail_py(err, err_len, *m);
        }
        Py_DECREF(mod);
    }
    if (allow && *allow && preload_allowed(allow, err, err_len) != 0) {
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
    collect_library_paths();
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
                            size_t max_output, int import_hook,
                            char *err, size_t err_len)
{
    static const char *const io_refused[] = {"open", "open_code", "FileIO",
                                             NULL};
    static const char *const codecs_refused[] = {"open", NULL};
    PyObject *bmod, *io, *exitname;
    PyObject *main_name = PyUnicode_FromString("__main__");

    if (!main_name) {
        return fail_py(err, err_len, "__main__");
    }

    S.blocked = PyMem_RawCalloc(nblocked + 1, sizeof(char *));
    if (!S.blocked) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nblocked; i++) {
        S.blocked[i] = strdup(blocked[i]);
    }
    S.nblocked = nblocked;

    bmod = PyImport_ImportModule("builtins");
    if (!bmod) {
        return fail_py(err, err_len, "builtins");
    }
    S.real_import = PyObject_GetAttrString(bmod, "__import__");
    S.builtins = PyDict_Copy(PyModule_GetDict(bmod));
    Py_DECREF(bmod);
    S.shims = PyDict_New();
    if (!S.real_import || !S.builtins || !S.shims) {
        return fail_py(err, err_len, "builtins copy");
    }
    if (import_hook
        && (set_fn(S.builtins, "__import__", &import_def, NULL) != 0
            || set_refuser(S.builtins, "open") != 0)) {
        return fail_py(err, err_len, "import hook");
    }
    if (set_fn(S.builtins, "exit", &exit_def, NULL) != 0
        || set_fn(S.builtins, "quit", &exit_def, NULL) != 0) {
        return fail_py(err, err_len, "builtins");
    }
    exitname = PyUnicode_FromString("breakpoint");
    if (exitname) {
        /* breakpoint() would start pdb on a stdin that is always empty */
        if (PyDict_DelItem(S.builtins, exitname) != 0) {
            PyErr_Clear();
        }
        Py_DECREF(exitname);
    }
    if (import_hook
        && (add_shim("io", io_refused, 0) != 0
            || add_shim("codecs", codecs_refused, 0) != 0
            || add_shim("importlib", NULL, 1) != 0)) {
        return fail_py(err, err_len, "module stand-ins");
    }

    S.globals = PyDict_New();
    if (!S.globals
        || PyDict_SetItemString(S.globals, "__name__", main_name) != 0
        || PyDict_SetItemString(S.globals, "__builtins__", S.builtins) != 0
        || PyDict_SetItemString(S.globals, "__doc__", Py_None) != 0
        || PyDict_SetItemString(S.globals, "__package__", Py_None) != 0
        || PyDict_SetItemString(S.globals, "__spec__", Py_None) != 0) {
        return fail_py(err, err_len, "globals");
    }
    Py_DECREF(main_name);

    /* input() reads a line from here and gets EOF at once */
    io = PyImport_ImportModule("io");
    if (!io) {
        return fail_py(err, err_len, "io");
    }
    S.stdin_obj = PyObject_CallMethod(io, "StringIO", NULL);
    Py_DECREF(io);
    S.out = capture_new(max_output);
    S.err = capture_new(max_output);
    if (!S.stdin_obj || !S.out || !S.err) {
        return fail_py(err, err_len, "streams");
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
                capture_append(S.err, u, (size_t)n);
                capture_append(S.err, "\n", 1);
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
    PyObject *code;
} code_cache_entry_t;

static code_cache_entry_t code_cache[CODE_CACHE_SLOTS];

/* A new reference to the cached code of this source, moved to the front;
 * NULL if there is none. */
static PyObject *code_cache_get(const char *source, size_t len)
{
    for (int i = 0; i < CODE_CACHE_SLOTS; i++) {
        if (code_cache[i].code && code_cache[i].len == len
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

static void code_cache_put(const char *source, size_t len, PyObject *code)
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
    code_cache[0].code = code;
    Py_INCREF(code);
}

void pyexec_py_exec(const char *code, pyexec_py_result_t *res)
{
    PyCompilerFlags cf = _PyCompilerFlags_INIT;
    PyObject *co, *r = NULL;
    int64_t t0 = pyexec_now_usec();
    size_t code_len = strlen(code);

    memset(res, 0, sizeof(*res));
    S.out->len = 0;
    S.out->cut = 0;
    S.err->len = 0;
    S.err->cut = 0;
    /* user code may have replaced them through some back door */
    PySys_SetObject("stdout", (PyObject *)S.out);
    PySys_SetObject("stderr", (PyObject *)S.err);
    PySys_SetObject("stdin", S.stdin_obj);

    cf.cf_flags = PyCF_ALLOW_TOP_LEVEL_AWAIT | PyCF_IGNORE_COOKIE
                  | PyCF_SOURCE_IS_UTF8;
    co = code_cache_get(code, code_len);
    if (!co) {
        co = Py_CompileStringExFlags(code, USER_FILENAME, Py_file_input,
                                     &cf, -1);
        if (co) {
            code_cache_put(code, code_len, co);
        }
    }
    if (co) {
        r = PyEval_EvalCode(co, S.globals, S.globals);
        if (r && (((PyCodeObject *)co)->co_flags & CO_COROUTINE)) {
            r = run_coroutine(r);
        }
        Py_DECREF(co);
    }
    if (!r) {
        report_exception(res);
    }
    Py_XDECREF(r);

    res->exec_usec = (uint64_t)(pyexec_now_usec() - t0);
    res->mem_bytes = heap_in_use();
    res->out = S.out->buf;
    res->out_len = S.out->len;
    res->out_cut = S.out->cut;
    res->err = S.err->buf;
    res->err_len = S.err->len;
    res->err_cut = S.err->cut;
}
