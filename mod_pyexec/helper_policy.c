/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * What user code may import, read and call, as users see it. Runs in the
 * zygote (preloads, the readable paths) and in each session helper (its
 * builtins, the import hook).
 *
 * None of this is a security boundary: CPython cannot be confined from
 * inside, and `random._os` is `os`. The boundary is the OS sandbox
 * (helper_sandbox.h); this layer gives clear messages:
 * "PermissionError: Importing 'os' is restricted." Everything here is C
 * so that no frame of ours shows up in a user's traceback.
 */
#include "helper_python_int.h"   /* Python.h first, as CPython asks */

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper_python.h"

static struct {
    PyObject *real_import;      /* builtins.__import__ */
    PyObject *shims;            /* module name -> restricted stand-in */
    char **blocked;
    size_t nblocked;
} P;

/* --- the import hook ------------------------------------------------- */

static int is_blocked(const char *name, size_t len)
{
    for (size_t i = 0; i < P.nblocked; i++) {
        size_t blen = strlen(P.blocked[i]);

        if (len >= blen && memcmp(name, P.blocked[i], blen) == 0
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
    shim = PyDict_GetItemWithError(P.shims, name);
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
    mod = PyObject_Call(P.real_import, args, kw);
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

/* --- refused calls and stand-ins for modules ------------------------- */

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
    rc = PyDict_SetItemString(P.shims, modname, shim);
cleanup:
    Py_XDECREF(shim);
    Py_DECREF(real);
    return rc;
}

int pyexec_policy_apply(PyObject *builtins, const char *const *blocked,
                        size_t nblocked, int import_hook, char *err,
                        size_t err_len)
{
    static const char *const io_refused[] = {"open", "open_code", "FileIO",
                                             NULL};
    static const char *const codecs_refused[] = {"open", NULL};
    PyObject *name;

    P.blocked = PyMem_RawCalloc(nblocked + 1, sizeof(char *));
    if (!P.blocked) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nblocked; i++) {
        P.blocked[i] = strdup(blocked[i]);
    }
    P.nblocked = nblocked;

    P.real_import = PyDict_GetItemString(builtins, "__import__");
    Py_XINCREF(P.real_import);
    P.shims = PyDict_New();
    if (!P.real_import || !P.shims) {
        return pyexec_py_fail(err, err_len, "builtins copy");
    }
    if (import_hook
        && (set_fn(builtins, "__import__", &import_def, NULL) != 0
            || set_refuser(builtins, "open") != 0)) {
        return pyexec_py_fail(err, err_len, "import hook");
    }
    if (set_fn(builtins, "exit", &exit_def, NULL) != 0
        || set_fn(builtins, "quit", &exit_def, NULL) != 0) {
        return pyexec_py_fail(err, err_len, "builtins");
    }
    name = PyUnicode_FromString("breakpoint");
    if (name) {
        /* breakpoint() would start pdb on a stdin that is always empty */
        if (PyDict_DelItem(builtins, name) != 0) {
            PyErr_Clear();
        }
        Py_DECREF(name);
    }
    if (import_hook
        && (add_shim("io", io_refused, 0) != 0
            || add_shim("codecs", codecs_refused, 0) != 0
            || add_shim("importlib", NULL, 1) != 0)) {
        return pyexec_py_fail(err, err_len, "module stand-ins");
    }
    return 0;
}

/* --- preloads: what every helper starts with ------------------------- */

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

/* PyExecAllowModules: installed packages beyond the standard library.
 * The zygote imports them once: their extension modules could not be
 * loaded later (the sandbox refuses executable memory), and every helper
 * then starts with them loaded. The site directories are on sys.path only
 * meanwhile, so that nothing else installed there becomes importable;
 * the packages' own directories stay readable for what they load lazily.
 * BLAS libraries would start a thread per CPU; a helper has one. */
static const char preload_allowed_py[] =
    "import importlib, sys\n"
    "dirs, failed, extra, mpl_config = [], [], [], None\n"
    "try:\n"
    "    if 'matplotlib' in names.split(','):\n"
    "        import os, tempfile\n"
    "        mpl_config = os.environ['MPLCONFIGDIR'] = tempfile.mkdtemp(prefix='pyexec-mpl-')\n"
    "        os.environ['MPLBACKEND'] = 'agg'\n"
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
    /* matplotlib: the Agg backend and what a first figure loads (C
     * extensions, the font manager) now, with a config directory of its
     * own that is gone again before the sandbox: a session has no home
     * and no thread to rebuild a font cache with */
    "    if 'matplotlib' in sys.modules:\n"
    "        import io, os, shutil, tempfile\n"
    "        import matplotlib\n"
    "        matplotlib.use('agg')\n"
    "        import matplotlib.pyplot as plt\n"
    "        import matplotlib.backends.backend_agg, matplotlib.backends.backend_svg\n"
    "        from matplotlib import font_manager\n"
    "        fig = plt.figure(figsize=(1, 1))\n"
    "        fig.add_subplot().plot([0, 1])\n"
    "        fig.text(0.5, 0.5, '$x^2$')\n"
    "        for fmt in ('png', 'svg'):\n"
    "            fig.savefig(io.BytesIO(), format=fmt)\n"
    "        plt.close('all')\n"
    "        dirs.append(matplotlib.get_data_path())\n"
    "        dirs.append(os.path.dirname(font_manager.findfont('DejaVu Sans')))\n"
    "    if mpl_config:\n"
    "        shutil.rmtree(mpl_config, ignore_errors=True)\n"
    /* every package the preloads pulled in from the site directories
     * (PIL, dateutil, ...): its files stay readable for what it loads
     * lazily */
    "    import os\n"
    "    for m in list(sys.modules.values()):\n"
    "        f = getattr(m, '__file__', None) or ''\n"
    "        for sd in extra:\n"
    "            if f.startswith(sd + '/'):\n"
    "                p = os.path.join(sd, f[len(sd) + 1:].split('/')[0])\n"
    "                if os.path.isdir(p) and p not in dirs:\n"
    "                    dirs.append(p)\n"
    "except Exception as e:\n"
    "    failed.append('%s (%s: %s)' % (names, type(e).__name__, e))\n"
    "finally:\n"
    "    for d in extra:\n"
    "        sys.path.remove(d)\n";


#define MAX_PACKAGE_DIRS 48
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
        return pyexec_py_fail(err, err_len, "PyExecAllowModules");
    }
    r = PyUnicode_FromString(allow);
    if (!r || PyDict_SetItemString(ns, "names", r) != 0) {
        Py_XDECREF(r);
        Py_DECREF(ns);
        return pyexec_py_fail(err, err_len, "PyExecAllowModules");
    }
    Py_DECREF(r);
    r = PyRun_String(preload_allowed_py, Py_file_input, ns, ns);
    if (!r) {
        Py_DECREF(ns);
        return pyexec_py_fail(err, err_len, "PyExecAllowModules");
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

int pyexec_policy_preload(const char *allow, char *err, size_t err_len)
{
    for (const char *const *m = preload; *m; m++) {
        PyObject *mod = PyImport_ImportModule(*m);
        if (!mod) {
            return pyexec_py_fail(err, err_len, *m);
        }
        Py_DECREF(mod);
    }
    if (allow && *allow && preload_allowed(allow, err, err_len) != 0) {
        return -1;
    }
    return 0;
}

/* --- what the sandbox leaves readable -------------------------------- */

#define MAX_LIBRARY_PATHS 64
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

/* sys.path, the directory of libpython (and so of the libraries the
 * extension modules link), time zone data, and allowed packages. */
void pyexec_policy_collect_paths(void)
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
