/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/*
 * Defaults shared by the module's configuration and the helper.
 * No httpd or APR headers here.
 */
#ifndef PYEXEC_DEFAULTS_H
#define PYEXEC_DEFAULTS_H

#define PYEXEC_DEFAULT_TIMEOUT_MS        2000
#define PYEXEC_DEFAULT_MEMORY_LIMIT      (100u * 1024u * 1024u)
#define PYEXEC_DEFAULT_MAX_OUTPUT        (1024u * 1024u)
#define PYEXEC_DEFAULT_MAX_DISPLAY       (4u * 1024u * 1024u)
#define PYEXEC_DEFAULT_MAX_CODE          (64u * 1024u)
#define PYEXEC_DEFAULT_MAX_SESSIONS      100
#define PYEXEC_DEFAULT_SPARE_HELPERS     4
#define PYEXEC_DEFAULT_MAX_CLIENT_SESSIONS 10
#define PYEXEC_DEFAULT_MAX_QUEUE         4
#define PYEXEC_DEFAULT_IDLE_TIMEOUT_S    600

/*
 * Modules user code may not import (a name also blocks its submodules).
 * The first seven are the contract; the rest are the C modules and
 * neighbours that do the same work under another name.
 */
#define PYEXEC_DEFAULT_BLOCKED_MODULES \
    "os", "sys", "socket", "subprocess", "shutil", "pathlib", "threading", \
    "posix", "nt", "posixpath", "ntpath", "genericpath", "_socket", \
    "_posixsubprocess", "_thread", "_io", "ctypes", "_ctypes", \
    "multiprocessing", "_multiprocessing", "_posixshmem", "signal", \
    "_signal", "fcntl", "mmap", "pty", "resource", "select", "selectors", \
    "tempfile", "glob", "fileinput", "linecache", "builtins", "marshal", \
    "_imp", "importlib._bootstrap", "importlib._bootstrap_external", \
    "zipimport", "faulthandler", "sysconfig", "site"

#endif /* PYEXEC_DEFAULTS_H */
