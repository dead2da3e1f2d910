"""The escape suite: hostile Python against the OS confinement of helpers.

Every payload runs twice: against a server with the Python-level import
hook (the default) and against one with `PyExecTestNoImportHook On`, so
that the OS layers (namespaces, Landlock, seccomp, rlimits) are shown to
hold on their own. The import hook is not a boundary: most payloads start
from a route around it (`random._os`, `typing.sys`, `print.__self__`, ...)
so that they reach the kernel in both configurations.

A payload is judged by its effect on the host, never by an error string:

- no file appears in a world-writable directory it tries to write to;
- a planted secret (readable by www-data without the sandbox) never shows
  up in the response, and is left unchanged (content, mode, mtime, name);
- a TCP listener on 127.0.0.1 and unix stream, datagram and abstract
  listeners on the host see nothing;
- the httpd parent and the supervisor keep their pids, no process other
  than apache2/pyexec-helper appears under httpd, helpers have no children;
- a canary session in its own helper keeps its value, and that value never
  shows up in another session's response;
- a fresh session still prints 1; the error log never receives the
  payload's text; the host environment and httpd's command line stay
  unseen.

The contract outcomes the limits promise (timeout, memory, crash) are
checked for the few payloads whose purpose is to defeat those limits.
"""
import contextlib
import os
import re
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from . import pyhttpd
from .conftest import Client, start
from .pyhttpd import wait_for

# Planted in this process's environment before any server starts: httpd
# (and so anything that inherits its environment) gets it.
ENV_CANARY = os.environ.setdefault("PYEXEC_TEST_ENV_CANARY",
                                   "envcanary-" + uuid.uuid4().hex)

ALLOWED_COMMS = {"apache2", "httpd", "pyexec-helper"}

CONFIGS = {
    "hook": {"PyExecSpareHelpers": 4, "PyExecMaxSessions": 500},
    "nohook": {"PyExecSpareHelpers": 4, "PyExecMaxSessions": 500,
               "PyExecTestNoImportHook": "On"},
}


# --- the host side: planted secret, marker directory, listeners -----------

class Listener:
    """A bounded listener in a thread that counts whatever reaches it."""

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.hits = []
        self.stopping = threading.Event()
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                if self.kind == "stream":
                    conn, peer = self.sock.accept()
                    conn.settimeout(0.2)
                    try:
                        data = conn.recv(200)
                    except OSError:
                        data = b""
                    conn.close()
                    self.hits.append((peer, data))
                else:
                    data, peer = self.sock.recvfrom(4096)
                    self.hits.append((peer, data))
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


class World:
    """Temporary host state a payload must not be able to touch."""

    def __init__(self, parent=None, netns=contextlib.nullcontext):
        """For a container (test_container.py): parent, a directory it
        sees at the same path, and netns, a context manager entering the
        network namespace its listeners belong in. The host's /tmp and
        network by default."""
        self.root = tempfile.mkdtemp(prefix="pyexec-escape-", dir=parent)
        os.chmod(self.root, 0o755)
        # world-writable: www-data could write here but for the sandbox
        self.wdir = os.path.join(self.root, "w")
        os.mkdir(self.wdir)
        os.chmod(self.wdir, 0o1777)
        # the secret: readable by anyone but for the sandbox
        self.sdir = os.path.join(self.root, "s")
        os.mkdir(self.sdir)
        os.chmod(self.sdir, 0o755)
        self.secret_path = os.path.join(self.sdir, "secret.txt")
        self.secret = "secret-" + uuid.uuid4().hex
        with open(self.secret_path, "w") as f:
            f.write(self.secret + "\n")
        os.chmod(self.secret_path, 0o644)
        self.secret_stat = self._secret_state()
        # listeners
        self.udir = os.path.join(self.root, "u")
        os.mkdir(self.udir)
        os.chmod(self.udir, 0o1777)
        with netns():
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", 0))
            tcp.listen(16)
            self.port = tcp.getsockname()[1]
            self.unix_path = os.path.join(self.udir, "stream.sock")
            us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            us.bind(self.unix_path)
            us.listen(16)
            os.chmod(self.unix_path, 0o777)
            self.dgram_path = os.path.join(self.udir, "dgram.sock")
            ud = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ud.bind(self.dgram_path)
            os.chmod(self.dgram_path, 0o777)
            self.abstract = "pyexec-escape-" + uuid.uuid4().hex[:12]
            ad = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ad.bind("\0" + self.abstract + "-dgram")
            ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ab.bind("\0" + self.abstract + "-stream")
            ab.listen(16)
        self.listeners = {
            "tcp 127.0.0.1:%d" % self.port: Listener(tcp, "stream"),
            "unix stream " + self.unix_path: Listener(us, "stream"),
            "unix dgram " + self.dgram_path: Listener(ud, "dgram"),
            "abstract dgram @%s-dgram" % self.abstract: Listener(ad, "dgram"),
            "abstract stream @%s-stream" % self.abstract:
                Listener(ab, "stream"),
        }
        self.listener_files = sorted(os.listdir(self.udir))

    def _secret_state(self):
        st = os.lstat(self.secret_path)
        with open(self.secret_path) as f:
            content = f.read()
        return (content, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_mtime_ns, st.st_ino, sorted(os.listdir(self.sdir)))

    def problems(self):
        """Host effects seen so far, as readable strings; [] if none."""
        out = []
        left = sorted(os.listdir(self.wdir))
        if left:
            out.append("files appeared in the world-writable dir: %r" % left)
        try:
            now = self._secret_state()
        except OSError as e:
            now = ("<gone: %s>" % e,)
        if now != self.secret_stat:
            out.append("the secret file changed: %r -> %r"
                       % (self.secret_stat, now))
        if sorted(os.listdir(self.udir)) != self.listener_files:
            out.append("the listener dir changed: %r"
                       % sorted(os.listdir(self.udir)))
        for name, lst in self.listeners.items():
            if lst.hits:
                out.append("%s was reached: %r" % (name, lst.hits[:3]))
        return out

    def reset(self):
        """After a reported effect: clean up so the next payload is judged
        on its own."""
        for name in os.listdir(self.wdir):
            p = os.path.join(self.wdir, name)
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    os.rmdir(p)
                else:
                    os.unlink(p)
            except OSError:
                subprocess.run(["rm", "-rf", p])
        for lst in self.listeners.values():
            lst.hits.clear()
        if os.path.exists(self.secret_path):
            os.chmod(self.secret_path, 0o644)
        self.secret_stat = self._secret_state()

    def close(self):
        for lst in self.listeners.values():
            lst.stop()
        subprocess.run(["rm", "-rf", self.root])


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


# --- the server side ----------------------------------------------------

class Server:
    def __init__(self, name, h):
        self.name = name
        self.h = h
        self.client = Client(h)
        self.main_pid = h.main_pid()
        self.supervisor = wait_for(h.supervisor_pid)
        assert self.supervisor, h.read_log()
        self.new_canary()

    def seen_pid(self, pid):
        """pid as httpd's processes see it (a container's differ)."""
        return pid

    def new_canary(self):
        self.canary_value = "alive-" + uuid.uuid4().hex
        self.canary = self.client.run("canary = %r" % self.canary_value)["id"]

    def log_size(self):
        try:
            return os.path.getsize(self.h.error_log)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.h.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def server(request, world):
    h = start(request, directives=CONFIGS[request.param])
    return Server(request.param, h)


# --- payloads -------------------------------------------------------------

# Prepended to every payload: report each attempt without stopping at the
# first refusal, and walk the class tree without any import.
PRELUDE = r'''
def attempt(what, fn, *a, **k):
    try:
        r = fn(*a, **k)
        print(what, '->', repr(r)[:600])
        return r
    except BaseException as e:
        print(what, '!!', type(e).__name__, str(e)[:300])

def all_subclasses():
    seen, todo, out = set(), [object], []
    while todo:
        c = todo.pop()
        try:
            kids = type.__subclasses__(c)
        except TypeError:
            continue
        for k in kids:
            if id(k) not in seen:
                seen.add(id(k))
                out.append(k)
                todo.append(k)
    return out

def subclass(name):
    for c in all_subclasses():
        if c.__name__ == name:
            return c
    raise LookupError(name)
'''

# Answers forged by user code: a RESULT frame (pyexec_protocol.h) written
# to every connected socket of the helper, its worker's among them.
FORGE = "import random\nos = random._os\n" + r'''
import struct

def result_frame(out):
    payload = struct.pack('<IIIIQQII', 0, 0, len(out), 0, 1000, 0, 0, 0) + out
    return struct.pack('<IHHII', 0x58455950, @PROTO@, 3, 0,
                       len(payload)) + payload

def write_all(fd, data):
    import time
    give_up = time.monotonic() + 0.5     # a connection nobody reads
    while data and time.monotonic() < give_up:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            time.sleep(0.001)

def forge_all(frame):
    for fd in range(64):
        try:
            if os.fstat(fd).st_mode & 0o170000 == 0o140000:
                write_all(fd, frame)
        except OSError:
            pass
'''

# Routes around the import hook to the real modules (they work with the
# hook on as well as off).
OS = "import random\nos = random._os\n"
SYS = "import typing\nsys = typing.sys\n"
SOCKET = "import asyncio\nsocket = asyncio.base_events.socket\n"
SIGNAL = "import asyncio\nsignal = asyncio.unix_events.signal\n"

# What a payload that got hold of an `open`-like function tries with it.
USE_BUILTINS = r'''
def use_builtins(tag, b):
    get = b.get if isinstance(b, dict) else (lambda n: getattr(b, n, None))
    attempt(tag + ' read secret', lambda: get('open')('@SECRET@').read())
    attempt(tag + ' read passwd', lambda: get('open')('/etc/passwd').read())
    attempt(tag + ' write marker',
            lambda: get('open')('@MARKER@', 'w').write('@TOKEN@'))
    attempt(tag + ' import os',
            lambda: get('__import__')('os').mkdir('@MARKER@'))
    attempt(tag + ' os.system',
            lambda: get('__import__')('os').system('touch @MARKER@'))
'''

# What a payload that got hold of `os` or `posix` tries with it.
USE_OS = r'''
def use_os(tag, o):
    RD = getattr(o, 'O_RDONLY', 0)
    WR = getattr(o, 'O_WRONLY', 1) | getattr(o, 'O_CREAT', 0o100)
    def read(path):
        fd = o.open(path, RD)
        try:
            return o.read(fd, 4096)
        finally:
            o.close(fd)
    attempt(tag + ' read secret', read, '@SECRET@')
    attempt(tag + ' read passwd', read, '/etc/passwd')
    attempt(tag + ' creat marker', lambda: o.open('@MARKER@', WR, 0o666))
    attempt(tag + ' mkdir marker', o.mkdir, '@MARKER@')
    attempt(tag + ' listdir secret dir', o.listdir, '@SDIR@')
    attempt(tag + ' chmod secret', o.chmod, '@SECRET@', 0o777)
    attempt(tag + ' system', getattr(o, 'system', None), 'touch @MARKER@')
'''


# Imports a standard library module by its file path, through the real
# __import__ (around the hook). The sandbox refuses to list directories the
# zygote did not list already, so PathFinder alone misses e.g. http.client.
STDLIB = r'''
import importlib as _il, typing as _ty
class ByPath:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        be = _il._bootstrap_external
        base = '/usr/lib/python3.11/' + fullname.replace('.', '/')
        for p, pkg in ((base + '/__init__.py', True), (base + '.py', False)):
            try:
                be._path_stat(p)
            except OSError:
                continue
            return be.spec_from_file_location(
                fullname, p, submodule_search_locations=[base] if pkg else None)
        return None
_ty.sys.meta_path.append(ByPath)
def stdlib_import(name):
    print.__self__.__import__(name)
    return _ty.sys.modules[name]
def module_from_spec(spec):
    return _il._bootstrap.module_from_spec(spec)
'''


class P:
    def __init__(self, pid, code, expect=None, passwd=False, forbid=(),
                 quiet_after=False):
        self.id = pid
        self.code = code
        # what must not appear in the response: an attempt that succeeded
        self.forbid = forbid
        # the payload answered for its helper and goes on: no helper may
        # still be burning CPU a moment after the answer
        self.quiet_after = quiet_after
        # an outcome the contract promises: "timeout", "memory", "crash",
        # or a tuple of acceptable ones
        self.expect = expect
        # targets /etc/passwd: "root:" must not appear at all
        self.passwd = passwd

    def __repr__(self):
        return self.id


PAYLOADS = [
    # --- recovering the real builtins ----------------------------------
    P("builtins_print_self", USE_BUILTINS + r'''
b = print.__self__
print(type(b), b.__name__)
use_builtins('print.__self__', b)
use_builtins('print.__self__.__dict__', b.__dict__)
''', passwd=True),
    P("builtins_subclasses_wrap_close", r'''
g = ().__class__.__base__.__subclasses__()
wc = [c for c in g if c.__name__ == '_wrap_close'][0]
gl = wc.__init__.__globals__
print(gl['__name__'])
attempt('read secret', lambda: gl['read'](gl['open']('@SECRET@', gl['O_RDONLY']), 200))
attempt('read passwd', lambda: gl['read'](gl['open']('/etc/passwd', gl['O_RDONLY']), 200))
attempt('creat', lambda: gl['open']('@MARKER@', gl['O_WRONLY'] | gl['O_CREAT'], 0o666))
attempt('system', gl['system'], 'touch @MARKER@; cat @SECRET@')
attempt('popen', lambda: gl['popen']('cat @SECRET@').read())
''', passwd=True),
    P("builtins_catch_warnings_module", USE_BUILTINS + USE_OS + r'''
cw = subclass('catch_warnings')
m = cw()._module
print(m.__name__)
b = m.__builtins__
use_builtins('warnings.__builtins__', b)
imp = b['__import__'] if isinstance(b, dict) else b.__import__
use_os('warnings->os', imp('os'))
''', passwd=True),
    P("builtins_reduce_ex_globals", USE_BUILTINS + r'''
fn = ().__reduce_ex__(2)[0]
print(fn.__module__, fn.__name__)
g = fn.__globals__
use_builtins('copyreg.__builtins__', g['__builtins__'])
r = (lambda: 0).__reduce_ex__
attempt('function reduce', r, 2)
''', passwd=True),
    P("builtins_help_license_site_printer", USE_BUILTINS + USE_OS + SYS + r'''
b = print.__self__
for name in ('help', 'license', 'credits', 'copyright', 'exit', 'quit'):
    obj = getattr(b, name, None)
    print(name, type(obj))
    call = getattr(type(obj), '__call__', None)
    g = getattr(call, '__globals__', None)
    if g:
        use_os(name + ' globals os', g['os'])
    if obj is not None and hasattr(obj, '_Printer__filenames'):
        obj._Printer__filenames = ['@SECRET@', '/etc/passwd']
        attempt(name + ' printer', repr, obj)
# site is not imported: load it and _sitebuiltins (license's _Printer) from
# their source
import importlib
pf = subclass('PathFinder')
mods = {}
for name in ('site', '_sitebuiltins'):
    spec = pf.find_spec(name)
    if spec is not None:
        mods[name] = importlib._bootstrap.module_from_spec(spec)
        attempt('exec ' + name, spec.loader.exec_module, mods[name])
sb = mods.get('_sitebuiltins')
pr = attempt('_Printer', getattr(sb, '_Printer', None), 'leak', '',
             ['@SECRET@', '/etc/passwd'], [])
attempt('printer repr', repr, pr)
attempt('printer call', pr)
if 'site' in mods:
    use_os('site.os', getattr(mods['site'], 'os', None))
''', passwd=True),
    P("builtins_type_print_module", USE_BUILTINS + r'''
name = type(print).__module__
print(name, type(print).__qualname__)
attempt('__import__ builtins', lambda: use_builtins('imported', __import__(name)))
attempt('__import__ via fromlist', lambda: use_builtins(
    'fromlist', __import__(name, fromlist=['open'])))
mod = type(__import__('random'))
attempt('module type', lambda: mod(name).__dict__)
attempt('exec builtins', exec, 'import builtins; builtins.open("@SECRET@")')
''', passwd=True),
    P("builtins_stdlib_module_globals", USE_BUILTINS + r'''
import json, random, functools
use_builtins('json.__builtins__', json.__builtins__)
use_builtins('random.seed globals', random.seed.__globals__['__builtins__'])
use_builtins('functools globals',
             functools.total_ordering.__globals__['__builtins__'])
use_builtins('Random.__init__',
             random.Random.__init__.__globals__['__builtins__'])
''', passwd=True),
    P("builtins_patch_import", OS + r'''
real = print.__self__.__import__
b = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__
attempt('patch __import__', b.__setitem__, '__import__', real)
attempt('patch open', b.__setitem__, 'open', print.__self__.open)
def go():
    import os as o2
    import posix
    print('imported', o2, posix)
    attempt('read secret', lambda: open('@SECRET@').read())
    attempt('write marker', lambda: open('@MARKER@', 'w').write('x'))
    attempt('mkdir', posix.mkdir, '@MARKER@')
attempt('after patch', go)
'''),
    P("builtins_shim_getattr_self", USE_BUILTINS + USE_OS + r'''
import importlib, io, codecs
real_importlib = importlib.__getattr__.__self__
print(type(real_importlib), real_importlib)
o = attempt('real import_module', real_importlib.import_module, 'os')
use_os('import_module os', o)
real_io = io.__getattr__.__self__
attempt('real io.open', lambda: real_io.open('@SECRET@').read())
attempt('real io.FileIO', lambda: real_io.FileIO('@SECRET@').read())
attempt('real io.open_code', lambda: real_io.open_code('@SECRET@').read())
attempt('real io write', lambda: real_io.open('@MARKER@', 'w'))
real_codecs = codecs.__getattr__.__self__
attempt('real codecs.open', lambda: real_codecs.open('@SECRET@').read())
'''),

    # --- os through allowed modules ------------------------------------
    P("os_random", OS + USE_OS + r'''
use_os('random._os', os)
attempt('environ', dict, os.environ)
'''),
    P("os_asyncio_base_events_fork", r'''
import asyncio
os = asyncio.base_events.os
pid = attempt('fork', os.fork)
if pid == 0:
    try:
        os.mkdir('@MARKER@')
    finally:
        os._exit(0)
attempt('open creat', os.open, '@MARKER@', os.O_CREAT | os.O_WRONLY, 0o644)
'''),
    P("os_typing_sys_modules", SYS + USE_OS + r'''
for name in ('os', 'posix', '_io', 'builtins', '_posixsubprocess', '_socket'):
    print(name, name in sys.modules)
use_os('sys.modules posix', sys.modules['posix'])
use_os('sys.modules os', sys.modules['os'])
bi = sys.modules['builtins']
attempt('builtins open', lambda: bi.open('@SECRET@').read())
''', passwd=True),
    P("os_uuid_command", r'''
import uuid
os = uuid.os
attempt('ifconfig getnode', getattr(uuid, '_ifconfig_getnode', None))
attempt('ip getnode', getattr(uuid, '_ip_getnode', None))
attempt('arp getnode', getattr(uuid, '_arp_getnode', None))
attempt('command stdout', getattr(uuid, '_get_command_stdout', None),
        'sh', '-c', 'touch @MARKER@; cat @SECRET@')
attempt('getnode', uuid.getnode)
attempt('mkdir', os.mkdir, '@MARKER@')
'''),
    P("os_platform_popen", r'''
import platform
attempt('platform.os', lambda: platform.os.mkdir('@MARKER@'))
attempt('uname', platform.uname)
attempt('architecture', platform.architecture)
attempt('_syscmd_file', getattr(platform, '_syscmd_file', None), '@SECRET@')
attempt('libc_ver', platform.libc_ver, '@SECRET@')
attempt('freedesktop', getattr(platform, 'freedesktop_os_release', None))
'''),
    P("os_importlib_bootstrap_external", USE_OS + r'''
import importlib
be = importlib._bootstrap_external
print(be.__name__)
use_os('_bootstrap_external._os', be._os)
attempt('_write_atomic', be._write_atomic, '@MARKER@', b'@TOKEN@')
attempt('_path_stat', be._path_stat, '@SECRET@')
'''),
    P("os_misc_module_attributes", USE_OS + r'''
import logging, fnmatch, shlex, inspect, zoneinfo, bz2, lzma, calendar
for mod in (logging, fnmatch, inspect, bz2, lzma):
    o = getattr(mod, 'os', None)
    print(mod.__name__, o)
    if o is not None:
        use_os(mod.__name__ + '.os', o)
use_os('zoneinfo._tzpath.os', zoneinfo._tzpath.os)
attempt('calendar.sys', lambda: calendar.sys.modules['posix'].mkdir('@MARKER@'))
'''),

    # --- importer classes ----------------------------------------------
    P("imp_builtin_importer_posix", USE_OS + r'''
bi = subclass('BuiltinImporter')
posix = attempt('load_module posix', bi.load_module, 'posix')
use_os('BuiltinImporter posix', posix)
import importlib.machinery as m
spec = attempt('find_spec posix', bi.find_spec, 'posix')
p2 = attempt('create_module', bi.create_module, spec)
use_os('create_module posix', p2)
ps = attempt('load _posixsubprocess', bi.load_module, '_posixsubprocess')
print(ps)
'''),
    P("imp_frozen_importer_os", USE_OS + r'''
import importlib
fi = subclass('FrozenImporter')
spec = fi.find_spec('os')
print(spec)
mod = importlib._bootstrap.module_from_spec(spec)
attempt('exec frozen os', spec.loader.exec_module, mod)
use_os('FrozenImporter os', mod)
'''),
    P("imp_pathfinder_subprocess", r'''
import importlib
pf = subclass('PathFinder')
spec = pf.find_spec('subprocess')
sp = importlib._bootstrap.module_from_spec(spec)
attempt('exec subprocess', spec.loader.exec_module, sp)
attempt('run', lambda: sp.run(['/bin/sh', '-c', 'touch @MARKER@']))
attempt('check_output', sp.check_output, ['cat', '@SECRET@'])
attempt('getoutput', getattr(sp, 'getoutput', None), 'cat @SECRET@')
attempt('Popen shell', lambda: sp.Popen('id > @MARKER@', shell=True).wait())
'''),
    P("imp_imp_create_builtin", USE_OS + r'''
import importlib
_imp = importlib._bootstrap._imp
print(_imp)
ModuleSpec = importlib._bootstrap.ModuleSpec
posix = attempt('create_builtin', _imp.create_builtin, ModuleSpec('posix', None))
use_os('_imp posix', posix)
attempt('init_frozen os', getattr(_imp, 'init_frozen', None), 'os')
attempt('get_frozen_object', getattr(_imp, 'get_frozen_object', None), 'os')
'''),
    P("imp_loader_get_data", USE_OS + r'''
import random, json
loader = random.__loader__
print(type(loader).__mro__)
g = type(loader).get_data.__globals__       # importlib._bootstrap_external
print(g['__name__'])
use_os('loader globals _os', g['_os'])
bs = g['_bootstrap']
attempt('_bootstrap._builtin_from_name', lambda: use_os(
    '_bootstrap posix', bs._builtin_from_name('posix')))
attempt('__loader__ of __main__', lambda: __loader__)
attempt('get_data secret', loader.get_data, '@SECRET@')
attempt('get_data passwd', loader.get_data, '/etc/passwd')
attempt('spec loader', json.__spec__.loader.get_data, '@SECRET@')
fl = subclass('FileLoader')
attempt('FileLoader.get_data', fl.get_data, loader, '@SECRET@')
attempt('set_data', getattr(loader, 'set_data', None), '@MARKER@', b'@TOKEN@')
attempt('_cache_bytecode', getattr(loader, '_cache_bytecode', None),
        '@SECRET@', '@MARKER@', b'@TOKEN@')
''', passwd=True),
    P("imp_spec_from_file_location", r'''
import importlib, importlib.machinery
sfl = importlib.machinery.SourceFileLoader('leak', '@SECRET@')
spec = importlib._bootstrap_external.spec_from_file_location(
    'leak', '@SECRET@', loader=sfl)
mod = importlib._bootstrap.module_from_spec(spec)
attempt('exec secret as module', spec.loader.exec_module, mod)
attempt('get_source', sfl.get_source, 'leak')
p = importlib.machinery.SourceFileLoader('pw', '/etc/passwd')
attempt('passwd source', p.get_source, 'pw')
''', passwd=True),
    P("imp_zipimporter", SYS + r'''
zi = subclass('zipimporter')
attempt('zipimporter secret', zi, '@SECRET@')
attempt('zipimporter passwd', zi, '/etc/passwd')
attempt('zipimporter dir', zi, '@SDIR@/x.zip/inner')
attempt('sys.path_hooks', lambda: [h('@SDIR@') for h in sys.path_hooks])
attempt('path_importer_cache', lambda: [k for k in sys.path_importer_cache])
''', passwd=True),
    P("imp_extension_loader_ctypes", r'''
import importlib, importlib.machinery
pf = subclass('PathFinder')
spec = pf.find_spec('_ctypes')
print(spec)
if spec is not None:
    loader = importlib.machinery.ExtensionFileLoader('_ctypes', spec.origin)
    mod = attempt('load _ctypes', loader.load_module)
    if mod is not None:
        attempt('dlopen', mod.dlopen, None)
spec = pf.find_spec('ctypes')
if spec is not None:
    ctypes = importlib._bootstrap.module_from_spec(spec)
    attempt('exec ctypes', spec.loader.exec_module, ctypes)
    libc = attempt('CDLL', getattr(ctypes, 'CDLL', None), None)
    if libc is not None:
        attempt('libc.system', libc.system, b'touch @MARKER@')
        attempt('libc.mkdir', libc.mkdir, b'@MARKER@', 0o777)
'''),

    # --- frames and tracebacks -----------------------------------------
    P("frame_traceback_f_back", USE_BUILTINS + r'''
import copy
class X:
    def __deepcopy__(self, memo):
        raise RuntimeError('up')
tb = None
try:
    copy.deepcopy(X())
except RuntimeError as e:
    tb = e.__traceback__
while tb is not None:
    f = tb.tb_frame
    print('frame', f.f_code.co_filename, f.f_code.co_name)
    use_builtins('f_builtins ' + f.f_code.co_name, f.f_builtins)
    g = f.f_globals
    if 'os' in g:
        attempt('f_globals os', g['os'].mkdir, '@MARKER@')
    b = f.f_back
    while b is not None:
        print('  back', b.f_code.co_filename)
        b = b.f_back
    tb = tb.tb_next
''', passwd=True),
    P("frame_sys_getframe_from_callback", USE_BUILTINS + SYS + r'''
import json
frames = []
def hook(d):
    f = sys._getframe(0)
    while f is not None:
        frames.append(f)
        f = f.f_back
    return d
json.loads('{"a": 1}', object_hook=hook)
for f in frames:
    print(f.f_code.co_filename, f.f_code.co_name)
    use_builtins('frame ' + f.f_code.co_name, f.f_builtins)
attempt('_getframe(1)', sys._getframe, 1)
''', passwd=True),
    P("frame_generator_gi_frame", USE_BUILTINS + USE_OS + OS + r'''
import json
g = json.encoder.JSONEncoder().iterencode({'a': [1, 2]})
print(type(g))
f = getattr(g, 'gi_frame', None)
if f is not None:
    use_builtins('gi_frame', f.f_globals['__builtins__'])
w = os.walk('/')
next(w, None)
wf = w.gi_frame
use_os('walk gi_frame', wf.f_globals['sys'].modules['posix'])
'''),
    P("frame_coroutine_cr_frame", USE_BUILTINS + r'''
import asyncio
c = asyncio.sleep(0)
f = c.cr_frame
print(f.f_code.co_filename, f.f_code.co_name)
use_builtins('cr_frame', f.f_globals['__builtins__'])
c.close()
q = asyncio.Queue()
c2 = q.get()
use_builtins('queue cr_frame', c2.cr_frame.f_globals['__builtins__'])
c2.close()
async def agen():
    yield 1
ag = agen()
print('ag_frame', ag.ag_frame.f_builtins is print.__self__.__dict__)
''', passwd=True),
    P("frame_exception_in_stdlib", USE_BUILTINS + r'''
import json
try:
    json.loads('{')
except Exception as e:
    tb = e.__traceback__
    while tb:
        f = tb.tb_frame
        print(f.f_code.co_filename, sorted(f.f_locals)[:5])
        use_builtins('tb ' + f.f_code.co_name, f.f_globals['__builtins__'])
        tb = tb.tb_next
''', passwd=True),

    # --- the garbage collector -----------------------------------------
    P("gc_get_objects_modules", USE_OS + USE_BUILTINS + r'''
import gc
mods = {}
for o in gc.get_objects():
    if type(o) is type(gc):
        mods[o.__name__] = o
print(sorted(mods)[:20], len(mods))
for name in ('posix', 'os'):
    if name in mods:
        use_os('gc ' + name, mods[name])
if 'builtins' in mods:
    use_builtins('gc builtins', mods['builtins'])
'''),
    P("gc_get_referrers_builtins", USE_BUILTINS + r'''
import gc
for o in gc.get_referrers(print):
    if isinstance(o, dict) and '__import__' in o:
        print('dict with', len(o), 'keys')
        use_builtins('referrer', o)
'''),

    # --- reading files without open ------------------------------------
    P("read_fileio_subclasses", r'''
fio = subclass('FileIO')
print(fio, fio.__module__)
attempt('FileIO secret', lambda: fio('@SECRET@').read())
attempt('FileIO passwd', lambda: fio('/etc/passwd').read())
attempt('FileIO write', lambda: fio('@MARKER@', 'w').write(b'@TOKEN@'))
bw = subclass('BufferedReader')
attempt('BufferedReader', lambda: bw(fio('@SECRET@')).read())
tw = subclass('TextIOWrapper')
attempt('TextIOWrapper', lambda: tw(bw(fio('@SECRET@'))).read())
''', passwd=True),
    P("read_io_module", r'''
import io
attempt('io.FileIO', lambda: io.FileIO('@SECRET@').read())
attempt('io.open', lambda: io.open('@SECRET@').read())
attempt('io.open_code', lambda: io.open_code('@SECRET@').read())
attempt('io.open write', lambda: io.open('@MARKER@', 'w'))
attempt('io.FileIO passwd', lambda: io.FileIO('/etc/passwd').read())
attempt('text_encoding', io.text_encoding, None)
''', passwd=True),
    P("read_linecache", r'''
import traceback
lc = traceback.linecache
attempt('getlines secret', lc.getlines, '@SECRET@')
attempt('getline passwd', lc.getline, '/etc/passwd', 1)
attempt('updatecache', lc.updatecache, '@SECRET@')
attempt('lazycache', lc.lazycache, '@SECRET@', {'__loader__': None})
attempt('checkcache', lc.checkcache)
print(list(lc.cache)[:10])
''', passwd=True),
    P("read_codecs_open", r'''
import codecs
attempt('codecs.open', lambda: codecs.open('@SECRET@').read())
attempt('codecs.open passwd', lambda: codecs.open('/etc/passwd').read())
attempt('codecs.open write', lambda: codecs.open('@MARKER@', 'w'))
attempt('StreamReader', lambda: codecs.getreader('utf-8')(
    subclass('FileIO')('@SECRET@')).read())
attempt('EncodedFile', lambda: codecs.EncodedFile(
    subclass('FileIO')('@SECRET@'), 'utf-8').read())
''', passwd=True),
    P("read_traceback_names_host_file", r'''
import traceback
for path in ('@SECRET@', '/etc/passwd'):
    try:
        exec(compile('1/0', path, 'exec'))
    except ZeroDivisionError:
        print(traceback.format_exc())
    try:
        exec(compile('\n\n\n\n\n1/0', path, 'exec'))
    except ZeroDivisionError:
        s = traceback.StackSummary.extract(
            traceback.walk_tb(traceback.sys.exc_info()[2]), lookup_lines=True)
        print([f.line for f in s])
raise RuntimeError('uncaught, with a host file in the stack') from None
''', passwd=True),
    P("read_pathlib", r'''
import importlib
pf = subclass('PathFinder')
spec = pf.find_spec('pathlib')
pl = importlib._bootstrap.module_from_spec(spec)
attempt('exec pathlib', spec.loader.exec_module, pl)
Path = pl.Path
attempt('read_text', Path('@SECRET@').read_text)
attempt('read_bytes passwd', Path('/etc/passwd').read_bytes)
attempt('iterdir', lambda: list(Path('@SDIR@').iterdir()))
attempt('glob', lambda: list(Path('/etc').glob('*')))
attempt('touch', Path('@MARKER@').touch)
attempt('write_text', Path('@MARKER@').write_text, '@TOKEN@')
attempt('chmod', Path('@SECRET@').chmod, 0o777)
attempt('rename', Path('@SECRET@').rename, '@MARKER@')
''', passwd=True),
    P("read_sqlite3", r'''
import sqlite3
attempt('ro uri secret', lambda: sqlite3.connect(
    'file:@SECRET@?mode=ro', uri=True).execute('select 1').fetchall())
attempt('create marker', lambda: sqlite3.connect('@MARKER@').execute(
    'create table t(x)'))
db = sqlite3.connect(':memory:')
attempt('attach marker', db.execute, "attach database '@MARKER@' as x")
attempt('attach then write', db.execute, 'create table x.t(y)')
attempt('readfile', db.execute, "select readfile('@SECRET@')")
attempt('enable ext', db.enable_load_extension, True)
attempt('load ext', db.load_extension, '/usr/lib/x86_64-linux-gnu/libc.so.6')
attempt('vacuum into', db.execute, "vacuum into '@MARKER@'")
'''),
    P("read_zoneinfo_tzpath", r'''
import zoneinfo
attempt('traversal key', zoneinfo.ZoneInfo, '../../..@SECRET@')
attempt('reset_tzpath', zoneinfo.reset_tzpath, ['@SDIR@'])
attempt('ZoneInfo secret', zoneinfo.ZoneInfo, 'secret.txt')
attempt('no_cache secret', zoneinfo.ZoneInfo.no_cache, 'secret.txt')
attempt('reset_tzpath /etc', zoneinfo.reset_tzpath, ['/etc'])
attempt('ZoneInfo passwd', zoneinfo.ZoneInfo, 'passwd')
attempt('available', lambda: sorted(zoneinfo.available_timezones())[:5])
''', passwd=True),
    P("read_o_path_dirfd", OS + r'''
fd = attempt('O_PATH secret dir', os.open, '@SDIR@', os.O_PATH)
if fd is not None:
    attempt('openat secret', lambda: os.read(os.open(
        'secret.txt', os.O_RDONLY, dir_fd=fd), 200))
    attempt('listdir fd', os.listdir, fd)
    attempt('/proc/self/fd reopen', lambda: os.read(os.open(
        '/proc/self/fd/%d/secret.txt' % fd, os.O_RDONLY), 200))
    attempt('mkdir at', os.mkdir, 'x', dir_fd=fd)
d = attempt('O_DIRECTORY', os.open, '@SDIR@', os.O_RDONLY | os.O_DIRECTORY)
r = attempt('O_PATH root', os.open, '/', os.O_PATH)
if r is not None:
    attempt('openat etc/passwd', lambda: os.read(os.open(
        'etc/passwd', os.O_RDONLY, dir_fd=r), 200))
    attempt('chdir fd', os.fchdir, r)
attempt('chdir', os.chdir, '@SDIR@')
attempt('relative read', lambda: os.read(os.open('secret.txt', os.O_RDONLY), 99))
attempt('scandir', lambda: [e.name for e in os.scandir('@SDIR@')])
''', passwd=True),
    P("read_proc_self", OS + r'''
for p in ('/proc/self/environ', '/proc/self/cmdline', '/proc/self/maps',
          '/proc/self/mountinfo', '/proc/self/status', '/proc/self/fd',
          '/proc/self/cwd/etc/passwd', '/proc/self/root@SECRET@'):
    attempt('read ' + p, lambda p=p: os.read(os.open(p, os.O_RDONLY), 300))
attempt('readlink exe', os.readlink, '/proc/self/exe')
attempt('listdir fd', os.listdir, '/proc/self/fd')
attempt('listdir /proc', lambda: os.listdir('/proc')[:20])
''', passwd=True),
    P("read_proc_httpd", OS + r'''
for pid in (1, @HTTPD@, @SUPERVISOR@, os.getppid()):
    for what in ('cmdline', 'environ', 'status', 'maps', 'mem', 'stat'):
        p = '/proc/%d/%s' % (pid, what)
        attempt('read ' + p, lambda p=p: os.read(os.open(p, os.O_RDONLY), 500))
    for link in ('exe', 'cwd', 'root', 'fd/0', 'fd/2'):
        p = '/proc/%d/%s' % (pid, link)
        attempt('readlink ' + p, os.readlink, p)
    attempt('listdir fd', os.listdir, '/proc/%d/fd' % pid)
    attempt('conf via cwd', lambda pid=pid: os.read(os.open(
        '/proc/%d/root/etc/passwd' % pid, os.O_RDONLY), 200))
''', passwd=True),
    P("read_pwd_spwd_grp", SYS + r'''
import pwd, grp
attempt('getpwall', lambda: [':'.join(map(str, e)) for e in pwd.getpwall()])
attempt('getpwnam root', lambda: ':'.join(map(str, pwd.getpwnam('root'))))
attempt('getpwuid 0', lambda: ':'.join(map(str, pwd.getpwuid(0))))
attempt('getgrall', lambda: [':'.join(map(str, e)) for e in grp.getgrall()])
sp = sys.modules.get('spwd') or attempt(
    'load spwd', subclass('BuiltinImporter').load_module, 'spwd')
if sp is not None:
    attempt('getspall', lambda: [':'.join(map(str, e)) for e in sp.getspall()])
''', passwd=True),

    # --- code objects, exec, encodings ---------------------------------
    P("exec_utf7_coding_cookie", r'''
hidden = (b"# -*- coding: utf-7 -*-\n"
          b"x = 1 #+AAo-import os+AAo-"
          b"print(os.read(os.open('@SECRET@', 0), 200))+AAo-"
          b"os.mkdir('@MARKER@')\n")
attempt('exec utf-7 bytes', exec, hidden)
attempt('compile utf-7', lambda: exec(compile(hidden, '<x>', 'exec'),
                                     {'__builtins__': print.__self__}))
plain = ('import os\nos.mkdir("@MARKER@")\n'
         'print(os.read(os.open("@SECRET@", 0), 200))\n').encode('utf-7')
attempt('exec encoded', exec, b'# coding: utf-7\n' + plain)
attempt('exec real builtins', exec, b'# coding: utf-7\n' + plain,
        {'__builtins__': print.__self__})
'''),
    P("exec_nfkc_identifiers", OS + r'''
tries = [
    "import \uff4f\uff53\n\uff4f\uff53.mkdir('@MARKER@')",
    "print(\uff4f\uff50\uff45\uff4e('@SECRET@').read())",
    "__\uff49\uff4d\uff50\uff4f\uff52\uff54__('os').mkdir('@MARKER@')",
    "print(print.__\uff53\uff45\uff4c\uff46__.\uff4f\uff50\uff45\uff4e('@SECRET@').read())",
    "from \uff4f\uff53 import system\nsystem('touch @MARKER@')",
    "import \uff50\uff4f\uff53\uff49\uff58 as p\np.mkdir('@MARKER@')",
    "print(getattr(print, '__\uff53\uff45\uff4c\uff46__'))",
    "\u1d52s = random._os\n\u1d52s.mkdir('@MARKER@')",
]
for t in tries:
    attempt(repr(t[:40]), exec, t)
'''),
    P("exec_real_builtins_globals", r'''
src = ('import os, posix\n'
       'print(os.read(os.open("@SECRET@", os.O_RDONLY), 200))\n'
       'os.mkdir("@MARKER@")\n')
attempt('exec with real builtins', exec, src, {'__builtins__': print.__self__})
attempt('eval', eval, '__import__("posix").mkdir("@MARKER@")',
        {'__builtins__': print.__self__})
import ast
tree = ast.parse('__import__("posix").mkdir("@MARKER@")')
attempt('exec ast', exec, compile(tree, '<ast>', 'exec'),
        {'__builtins__': print.__self__.__dict__})
'''),
    P("exec_marshal_code", r'''
import importlib
marshal = importlib._bootstrap_external.marshal
code = compile('import posix\nposix.mkdir("@MARKER@")\n'
               'print(posix.read(posix.open("@SECRET@", 0), 200))',
               '<m>', 'exec')
blob = marshal.dumps(code)
attempt('loads+exec', exec, marshal.loads(blob),
        {'__builtins__': print.__self__})
attempt('marshal dump to file', lambda: marshal.dump(code, subclass('FileIO')(
    '@MARKER@', 'w')))
'''),
    P("exec_pickle_reduce", r'''
import pickle, copyreg
attempt('pickle os.system', pickle.loads,
        b"cos\nsystem\n(S'touch @MARKER@'\ntR.")
attempt('pickle posix.mkdir', pickle.loads,
        b"cposix\nmkdir\n(S'@MARKER@'\ntR.")
attempt('pickle builtins.open', lambda: pickle.loads(
    b"cbuiltins\nopen\n(S'@SECRET@'\ntR.").read())
attempt('pickle eval', pickle.loads,
        b"cbuiltins\neval\n(S'__import__(\"os\").mkdir(\"@MARKER@\")'\ntR.")
'''),

    # --- ctypes ---------------------------------------------------------
    P("ctypes_via_sys_modules_and_import", SYS + r'''
attempt('import ctypes', lambda: __import__('ctypes'))
attempt('real import ctypes', lambda: print.__self__.__import__('ctypes'))
c = sys.modules.get('ctypes') or sys.modules.get('_ctypes')
print('preloaded', c)
ct = attempt('import via real import',
             print.__self__.__import__, 'ctypes.util')
if ct is not None:
    ctypes = sys.modules['ctypes']
    libc = attempt('CDLL libc', ctypes.CDLL, 'libc.so.6')
    if libc is not None:
        attempt('system', libc.system, b'touch @MARKER@')
'''),

    # --- processes -------------------------------------------------------
    P("proc_posixsubprocess_fork_exec", SYS + OS + r'''
ps = sys.modules['_posixsubprocess']
low = [os.pipe() for _ in range(2)]     # fork_exec wants its pipe above 2
r, w = os.pipe()
args = ([b'/bin/sh', b'-c', b'touch @MARKER@; cat @SECRET@'], [b'/bin/sh'],
        True, (w,), None, None, -1, -1, -1, w, -1, -1, r, w,
        True, False, -1, None, None, None, -1, None, True)
pid = attempt('fork_exec', ps.fork_exec, *args)
attempt('fork_exec no vfork', ps.fork_exec, *(args[:-1] + (False,)))
os.close(w)
os.set_blocking(r, False)
attempt('read child', os.read, r, 200)
'''),
    P("proc_os_system_popen", OS + r'''
attempt('system', os.system, 'touch @MARKER@')
attempt('popen', lambda: os.popen('cat @SECRET@').read())
attempt('spawnv', os.spawnv, os.P_WAIT, '/bin/sh', ['sh', '-c', 'touch @MARKER@'])
attempt('spawnlp', os.spawnlp, os.P_NOWAIT, 'touch', 'touch', '@MARKER@')
'''),
    P("proc_os_fork", OS + r'''
pid = attempt('fork', os.fork)
if pid == 0:
    try:
        os.mkdir('@MARKER@')
    finally:
        os._exit(0)
attempt('forkpty', os.forkpty)
attempt('register_at_fork', os.register_at_fork,
        after_in_child=lambda: os.mkdir('@MARKER@'))
pid = attempt('fork again', os.fork)
if pid == 0:
    os._exit(0)
'''),
    P("proc_posix_spawn", OS + r'''
attempt('posix_spawn', os.posix_spawn, '/bin/sh',
        ['sh', '-c', 'touch @MARKER@'], {})
attempt('posix_spawnp', os.posix_spawnp, 'touch', ['touch', '@MARKER@'], {})
attempt('posix_spawn setsid', os.posix_spawn, '/bin/sh',
        ['sh', '-c', 'touch @MARKER@'], {}, setsid=True)
'''),
    P("proc_asyncio_subprocess", r'''
import asyncio
async def main():
    p = await asyncio.create_subprocess_shell('touch @MARKER@')
    return await p.wait()
attempt('create_subprocess_shell', asyncio.run, main())
async def main2():
    p = await asyncio.create_subprocess_exec('/bin/touch', '@MARKER@')
    return await p.wait()
attempt('create_subprocess_exec', asyncio.run, main2())
'''),
    P("proc_multiprocessing", STDLIB + r'''
import random
mp = attempt('import multiprocessing', stdlib_import, 'multiprocessing')
attempt('import context', stdlib_import, 'multiprocessing.context')
def child():
    random._os.mkdir('@MARKER@')
p = attempt('Process', lambda: mp.get_context('fork').Process(target=child))
if p is not None:
    attempt('start', p.start)
    attempt('join', p.join, 1)
attempt('Pool', lambda: mp.get_context('fork').Pool(2))
'''),
    P("proc_fork_bomb", OS + SYS + r'''
ok = err = 0
for i in range(5000):
    try:
        pid = os.fork()
    except OSError:
        err += 1
        continue
    if pid == 0:
        try:
            os.mkdir('@MARKER@')
        finally:
            os._exit(0)
    ok += 1
th = sys.modules['_thread']
terr = 0
for i in range(2000):
    try:
        th.start_new_thread(os.mkdir, ('@MARKER@',))
    except RuntimeError:
        terr += 1
print('forks', ok, 'refused', err, 'threads refused', terr)
'''),
    P("proc_execv_killed", OS + r'''
print('before exec', flush=True)
attempt('execve', os.execv, '/bin/sh', ['sh', '-c', 'touch @MARKER@'])
'''),
    P("proc_setsid_setuid", OS + r'''
attempt('setsid', os.setsid)
attempt('setpgid', os.setpgid, 0, 0)
attempt('setuid 0', os.setuid, 0)
attempt('setresuid', os.setresuid, 0, 0, 0)
attempt('setgroups', os.setgroups, [0])
attempt('setgid', os.setgid, 0)
attempt('umask', os.umask, 0)
attempt('getresuid', os.getresuid)
attempt('fork after setsid', os.fork)
attempt('unshare', getattr(os, 'unshare', None), 0)
attempt('chroot', os.chroot, '/')
'''),

    # --- threads ---------------------------------------------------------
    P("thread_start_new_thread", SYS + OS + r'''
th = sys.modules['_thread']
attempt('start_new_thread', th.start_new_thread, os.mkdir, ('@MARKER@',))
import time
time.sleep(0.2)
'''),
    P("thread_threading_executor", SYS + OS + r'''
threading = sys.modules.get('threading') or print.__self__.__import__(
    'threading')
t = threading.Thread(target=os.mkdir, args=('@MARKER@',))
attempt('Thread.start', t.start)
import concurrent.futures, asyncio
ex = concurrent.futures.ThreadPoolExecutor(2)
attempt('submit', lambda: ex.submit(os.mkdir, '@MARKER@').result(1))
attempt('to_thread', asyncio.run, asyncio.to_thread(os.mkdir, '@MARKER@'))
attempt('Timer', lambda: threading.Timer(0.01, os.mkdir, ('@MARKER@',)).start())
import time
time.sleep(0.2)
'''),

    # --- signals ---------------------------------------------------------
    P("sig_sigxcpu_ignored_cpu_loop", SIGNAL + r'''
for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
          signal.SIGALRM, signal.SIGUSR1):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))
while True:
    try:
        pass
    except BaseException:
        pass
''', expect="timeout"),
    P("sig_alarm_games", SIGNAL + OS + r'''
def handler(*a):
    os.mkdir('@MARKER@')
attempt('SIGALRM handler', signal.signal, signal.SIGALRM, handler)
attempt('alarm', signal.alarm, 1)
attempt('setitimer', signal.setitimer, signal.ITIMER_REAL, 0.05)
attempt('setitimer prof', signal.setitimer, signal.ITIMER_PROF, 0.05)
attempt('SIGCHLD', signal.signal, signal.SIGCHLD, handler)
attempt('raise SIGUSR1 handled', lambda: (
    signal.signal(signal.SIGUSR1, lambda *a: print('usr1')),
    signal.raise_signal(signal.SIGUSR1)))
attempt('set_wakeup_fd', signal.set_wakeup_fd, 0)
import time
time.sleep(0.3)
'''),
    P("sig_kill_parent_and_httpd", OS + SIGNAL + r'''
print('pid', os.getpid(), 'ppid', os.getppid(), 'pgrp', os.getpgrp())
for target in (os.getppid(), @HTTPD@, @SUPERVISOR@, -@HTTPD@, 0, -1):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
        attempt('kill(%d, %d)' % (target, sig), os.kill, target, sig)
attempt('killpg 0', os.killpg, 0, signal.SIGKILL)
attempt('killpg pgrp', os.killpg, os.getpgrp(), signal.SIGKILL)
attempt('killpg httpd', os.killpg, @HTTPD@, signal.SIGKILL)
attempt('pidfd_open', getattr(os, 'pidfd_open', None), @HTTPD@)
'''),
    P("sig_fsetown_sigio", OS + SYS + SOCKET + r'''
fcntl = sys.modules['fcntl']
F_SETSIG = getattr(fcntl, 'F_SETSIG', 10)
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902
import struct
me = int(os.readlink('/proc/self'))
for target in (@HTTPD@, @SUPERVISOR@, -@HTTPD@, me - 1, me + 1, 0, 1):
    a, b = socket.socketpair()
    attempt('F_SETOWN %d' % target, fcntl.fcntl, a.fileno(), fcntl.F_SETOWN,
            target)
    attempt('F_SETSIG KILL', fcntl.fcntl, a.fileno(), F_SETSIG, 9)
    attempt('O_ASYNC', fcntl.fcntl, a.fileno(), fcntl.F_SETFL,
            fcntl.fcntl(a.fileno(), fcntl.F_GETFL) | os.O_ASYNC)
    attempt('FIOSETOWN %d' % target, fcntl.ioctl, b.fileno(), FIOSETOWN,
            struct.pack('i', target))
    attempt('SIOCSPGRP %d' % target, fcntl.ioctl, b.fileno(), SIOCSPGRP,
            struct.pack('i', target))
    attempt('F_SETSIG b', fcntl.fcntl, b.fileno(), F_SETSIG, 9)
    attempt('O_ASYNC b', fcntl.fcntl, b.fileno(), fcntl.F_SETFL,
            fcntl.fcntl(b.fileno(), fcntl.F_GETFL) | os.O_ASYNC)
    attempt('trigger', b.send, b'x')
    attempt('trigger back', a.send, b'y')
    attempt('F_GETOWN', fcntl.fcntl, a.fileno(), fcntl.F_GETOWN)
    a.close(); b.close()
'''),
    P("sig_kill_every_pid", OS + r'''
me = int(os.readlink('/proc/self'))
print('outer pid', me)
refused = 0
for pid in range(2, 70000):
    if pid == me:
        continue
    try:
        os.kill(pid, 9)
    except OSError:
        refused += 1
print('refused', refused)
'''),
    P("sig_kill_self_pid1", OS + r'''
print('pid in namespace', os.getpid(), flush=True)
os.kill(1, 9)
'''),

    # --- environment -----------------------------------------------------
    P("env_environ", OS + SYS + r'''
print(dict(os.environ))
print(dict(getattr(os, 'environb', {})))
print(sys.modules['posix'].environ)
for k in ('PATH', 'HOME', 'PYEXEC_TEST_ENV_CANARY', 'APACHE_RUN_USER'):
    print(k, os.getenv(k))
print(sys.argv, sys.orig_argv, sys.executable, sys.flags)
attempt('confstr', os.confstr, 'CS_PATH')
attempt('uname', os.uname)
'''),
    P("env_proc_environ", OS + r'''
for p in ('/proc/self/environ', '/proc/1/environ', '/proc/@HTTPD@/environ',
          '/proc/@SUPERVISOR@/environ', '/proc/%s/environ' % os.readlink(
              '/proc/self')):
    attempt('read ' + p, lambda p=p: os.read(os.open(p, os.O_RDONLY), 4096))
'''),

    # --- inherited descriptors -------------------------------------------
    P("fd_inherited_scan_and_write", OS + SOCKET + r'''
found = []
for fd in range(0, 65):
    try:
        st = os.fstat(fd)
    except OSError:
        continue
    info = [fd, oct(st.st_mode)]
    try:
        s = socket.socket(fileno=fd)
        try:
            info.append(s.getsockname())
            info.append(s.getpeername())
        except OSError as e:
            info.append(str(e))
        s.detach()
    except OSError as e:
        info.append(str(e))
    found.append(info)
print(found, flush=True)
for fd in range(0, 65):
    try:
        os.set_blocking(fd, False)
        print('read', fd, os.read(fd, 200))
    except OSError as e:
        pass
for fd in range(0, 65):
    try:
        os.write(fd, b'@TOKEN@ written to an inherited descriptor\n')
    except OSError:
        pass
'''),
    P("fd_dup_to_stdio", OS + r'''
attempt('dup2 0->2', os.dup2, 0, 2)
attempt('write 2', os.write, 2, b'@TOKEN@ on stderr\n')
attempt('fsync', os.fsync, 2)
attempt('open /dev/stderr', lambda: os.open('/dev/stderr', os.O_WRONLY))
attempt('open /dev/tty', lambda: os.open('/dev/tty', os.O_RDWR))
attempt('open /dev/console', lambda: os.open('/dev/console', os.O_WRONLY))
attempt('open /dev/kmsg', lambda: os.open('/dev/kmsg', os.O_WRONLY))
'''),
    P("fd_exhaustion_and_rlimits", OS + SYS + r'''
fds = []
try:
    while True:
        fds.extend(os.pipe())
except OSError as e:
    print('pipes', len(fds), e)
for fd in fds:
    os.close(fd)
attempt('eventfd', getattr(os, 'eventfd', None), 0)
attempt('memfd_create', getattr(os, 'memfd_create', None), 'x')
r = sys.modules.get('resource') or attempt(
    'load resource', lambda: print.__self__.__import__('resource'))
if r is not None:
    attempt('getrlimit AS', r.getrlimit, r.RLIMIT_AS)
    attempt('raise AS', r.setrlimit, r.RLIMIT_AS, (-1, -1))
    attempt('raise NPROC', r.setrlimit, r.RLIMIT_NPROC, (100, 100))
    attempt('prlimit httpd', r.prlimit, @HTTPD@, r.RLIMIT_NOFILE, (1, 1))
'''),

    # --- network ---------------------------------------------------------
    P("net_tcp_create_connection", SOCKET + r'''
for host in ('127.0.0.1', 'localhost', '::1', '0.0.0.0'):
    attempt('connect ' + host, socket.create_connection, (host, @PORT@), 1)
attempt('raw socket', socket.socket, socket.AF_INET, socket.SOCK_STREAM)
attempt('udp sendto', lambda: socket.socket(
    socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', @PORT@)))
attempt('packet', socket.socket, 17, 3, 0)
attempt('netlink', socket.socket, 16, 3, 0)
attempt('if_nameindex', socket.if_nameindex)
attempt('getaddrinfo', socket.getaddrinfo, 'example.com', 80)
'''),
    P("net_asyncio_open_connection", r'''
import asyncio
async def go():
    return await asyncio.wait_for(
        asyncio.open_connection('127.0.0.1', @PORT@), 1)
attempt('open_connection', asyncio.run, go())
async def go2():
    return await asyncio.wait_for(
        asyncio.open_unix_connection('@UNIX@'), 1)
attempt('open_unix_connection', asyncio.run, go2())
async def go3():
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=('127.0.0.1', @PORT@))
attempt('datagram endpoint', asyncio.run, go3())
'''),
    P("net_urllib_http_client", STDLIB + r'''
hc = attempt('import http.client', stdlib_import, 'http.client')
ur = attempt('import urllib.request', stdlib_import, 'urllib.request')
attempt('urlopen', getattr(ur, 'urlopen', None), 'http://127.0.0.1:@PORT@/',
        None, 1)
attempt('http.client', lambda: hc.HTTPConnection(
    '127.0.0.1', @PORT@, timeout=1).request('GET', '/'))
attempt('urlopen file', lambda: ur.urlopen('file://@SECRET@').read())
attempt('urlopen file passwd', lambda: ur.urlopen(
    'file:///etc/passwd').read())
''', passwd=True),
    P("net_unix_stream_connect", SOCKET + r'''
attempt('unix connect', lambda: socket.socket(socket.AF_UNIX).connect('@UNIX@'))
attempt('abstract connect', lambda: socket.socket(socket.AF_UNIX).connect(
    '\0@ABSTRACT@-stream'))
a, b = socket.socketpair()
attempt('socketpair stream sendto path', a.sendto, b'x', '@UNIX@')
attempt('socketpair stream connect', a.connect, '@UNIX@')
'''),
    P("net_unix_dgram_sendto_socketpair", SOCKET + r'''
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
attempt('sendto host dgram socket', a.sendto, b'@TOKEN@ escaped', '@DGRAM@')
attempt('sendmsg host dgram socket', a.sendmsg, [b'@TOKEN@ again'], [], 0,
        '@DGRAM@')
'''),
    P("net_unix_dgram_pass_fds", SOCKET + OS + r'''
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = [0, 1, 2, a.fileno()]
fds = [f for f in fds if attempt('fstat %d' % f, os.fstat, f) is not None]
attempt('sendmsg SCM_RIGHTS', socket.send_fds, a, [b'@TOKEN@ fds'], fds,
        address='@DGRAM@')
'''),
    P("net_abstract_dgram_sendto", SOCKET + r'''
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
attempt('abstract sendto', a.sendto, b'@TOKEN@', '\0@ABSTRACT@-dgram')
attempt('abstract bind', a.bind, '\0@ABSTRACT@-mine')
attempt('autobind', a.bind, '')
'''),
    P("net_supervisor_control_socket_forgery", OS + SOCKET + r'''
import struct, time
me = None
for fd in range(32):
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        continue
    try:
        n = s.getsockname()
        if isinstance(n, str) and n.endswith('.sock'):
            me = n
    except OSError:
        pass
    s.detach()
print('my socket', me)
if me:
    d = me.rsplit('/', 1)[0]
    live = [(s, g) for s in range(0, 520) for g in range(0, 40)
            if os.path.exists('%s/h%d-%d.sock' % (d, s, g))
            and '%s/h%d-%d.sock' % (d, s, g) != me]
    print('other sessions', len(live))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    hdr = struct.pack('<IHHII', 0x58455950, @PROTO@, 11, 0, 16)
    for s, g in live:
        attempt('kill slot %d gen %d' % (s, g), a.sendto,
                hdr + struct.pack('<IIiI', s, g, 0, 5), d + '/supervisor.sock')
    time.sleep(0.3)
'''),
    P("proto_forged_answer_frames", SOCKET + r'''
import struct
conns = []
for fd in range(32):
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        continue
    try:
        if s.getsockname() in ('', b'') and s.type == socket.SOCK_STREAM:
            conns.append(s)
            continue
    except OSError:
        pass
    s.detach()
print('connections', [c.fileno() for c in conns], flush=True)
out = b'@TOKEN@ forged stdout'
result = struct.pack('<IIIIQQII', 1, 0, len(out), 0, 0, 0, 0, 0) + out
hdr = struct.pack('<IHHII', 0x58455950, @PROTO@, 3, 0, len(result))
huge = struct.pack('<IHHII', 0x58455950, @PROTO@, 3, 0, 0xfffffff0)
for c in conns:
    attempt('forged result', c.sendall, hdr + result)
    attempt('huge frame', c.sendall, huge + b'x' * 4096)
    c.detach()
'''),
    # issue 12: the limits hold against the code they limit
    P("proto_forged_answer_then_spin", FORGE + r'''
forge_all(result_frame(b'@TOKEN@ forged\\n'))
while True:
    pass
''', quiet_after=True),
    P("proto_forged_answer_beyond_caps", FORGE + r'''
forge_all(result_frame(b'A' * (3 << 19)))
import time
time.sleep(1)
''', expect="crash"),
    P("proto_forged_answer_then_more", FORGE + r'''
forge_all(result_frame(b'ok\\n') + b'z' * 200000)
''', expect="crash"),
    P("res_kernel_socket_buffers", SOCKET + r'''
pairs, total = [], 0
for i in range(40):
    try:
        a, b = socket.socketpair()
    except OSError as e:
        print('socketpair', i, '!!', e)
        break
    for opt in ('SO_SNDBUF', 'SO_RCVBUF', 'SO_SNDBUFFORCE', 'SO_RCVBUFFORCE'):
        attempt('setsockopt ' + opt, a.setsockopt, socket.SOL_SOCKET,
                getattr(socket, opt, 32), 64 << 20)
    a.setblocking(False)
    while True:
        try:
            total += a.send(b'x' * 65536)
        except OSError:
            break
    pairs.append(b)
    a.close()
print('queued %d' % total)
''', forbid=(r"setsockopt \S+ ->", r"queued \d{8,}")),
    P("res_kernel_pipes_and_memfd", OS + r'''
import importlib
fcntl = attempt('fcntl', importlib.import_module, 'fcntl')
r, w = os.pipe()
if fcntl:
    attempt('F_SETPIPE_SZ', fcntl.fcntl, w, 1031, 1 << 20)
attempt('memfd_create', os.memfd_create, 'm')
attempt('splice', getattr(os, 'splice', None), r, w, 10)
''', forbid=(r"F_SETPIPE_SZ ->", r"memfd_create ->", r"splice ->")),
    P("net_syslog", r'''
import syslog
attempt('openlog', syslog.openlog, '@TOKEN@')
attempt('syslog', syslog.syslog, syslog.LOG_ERR, '@TOKEN@ via syslog')
'''),

    # --- writes ----------------------------------------------------------
    P("write_open_variants", OS + r'''
attempt('builtin open', lambda: open('@MARKER@', 'w'))
attempt('real open', lambda: print.__self__.open('@MARKER@', 'w').write('x'))
attempt('real open append secret', lambda: print.__self__.open(
    '@SECRET@', 'a').write('@TOKEN@'))
attempt('real open x', lambda: print.__self__.open('@MARKER@', 'x'))
for flags in (os.O_WRONLY | os.O_CREAT, os.O_RDWR | os.O_CREAT | os.O_EXCL,
              os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    attempt('os.open %o' % flags, os.open, '@MARKER@', flags, 0o666)
for flags in (os.O_WRONLY | os.O_APPEND, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
    fd = attempt('secret %o' % flags, os.open, '@SECRET@', flags)
    if fd is not None:
        attempt('write secret', os.write, fd, b'@TOKEN@')
attempt('O_TMPFILE', os.open, '@WDIR@', os.O_TMPFILE | os.O_WRONLY, 0o600)
'''),
    P("write_mkdir_mkfifo_mknod", OS + r'''
attempt('mkdir', os.mkdir, '@MARKER@')
attempt('makedirs', os.makedirs, '@MARKER@/a/b')
attempt('mkfifo', os.mkfifo, '@MARKER@')
attempt('mknod', os.mknod, '@MARKER@', 0o600 | 0o100000)
attempt('mknod dev', os.mknod, '@MARKER@', 0o600 | 0o20000, os.makedev(1, 3))
attempt('socket bind', lambda: __import__('asyncio').base_events.socket.socket(
    1, 2).bind('@MARKER@'))
'''),
    P("write_symlink_link", OS + r'''
attempt('symlink', os.symlink, '@SECRET@', '@MARKER@')
attempt('symlink dir', os.symlink, '/', '@MARKER@')
attempt('link', os.link, '@SECRET@', '@MARKER@')
attempt('link follow', os.link, '@SECRET@', '@MARKER@',
        follow_symlinks=False)
'''),
    P("write_rename_unlink_secret", OS + r'''
attempt('rename', os.rename, '@SECRET@', '@MARKER@')
attempt('replace', os.replace, '@SECRET@', '@SDIR@/moved.txt')
attempt('unlink', os.unlink, '@SECRET@')
attempt('remove', os.remove, '@SECRET@')
attempt('rmdir', os.rmdir, '@SDIR@')
attempt('removedirs', os.removedirs, '@SDIR@')
attempt('rename dir', os.rename, '@SDIR@', '@MARKER@')
'''),
    P("write_chmod_chown_utime_secret", OS + r'''
attempt('chmod', os.chmod, '@SECRET@', 0o777)
attempt('chmod 0', os.chmod, '@SECRET@', 0)
attempt('chown', os.chown, '@SECRET@', 33, 33)
attempt('lchown', os.lchown, '@SECRET@', 33, 33)
attempt('utime', os.utime, '@SECRET@', (0, 0))
attempt('truncate', os.truncate, '@SECRET@', 0)
attempt('setxattr', os.setxattr, '@SECRET@', 'user.x', b'@TOKEN@')
attempt('chmod dir', os.chmod, '@SDIR@', 0o777)
attempt('chmod wdir', os.chmod, '@WDIR@', 0o700)
'''),
    P("write_stdlib_writers", SYS + STDLIB + r'''
import logging
zipfile = stdlib_import('zipfile')
attempt('FileHandler', logging.FileHandler, '@MARKER@')
attempt('basicConfig', logging.basicConfig, filename='@MARKER@', force=True)
attempt('zipfile', zipfile.ZipFile, '@MARKER@', 'w')
import bz2, lzma
gzip = stdlib_import('gzip')
attempt('bz2', bz2.open, '@MARKER@', 'wb')
attempt('lzma', lzma.open, '@MARKER@', 'wb')
attempt('gzip', gzip.open, '@MARKER@', 'wb')
attempt('gzip read secret', lambda: gzip.open('@SECRET@').read())
dbm = attempt('import dbm', stdlib_import, 'dbm')
attempt('dbm', getattr(dbm, 'open', None), '@MARKER@', 'c')
shelve = attempt('import shelve', stdlib_import, 'shelve')
attempt('shelve', getattr(shelve, 'open', None), '@MARKER@')
tf = attempt('import tempfile', stdlib_import, 'tempfile')
attempt('mkstemp', getattr(tf, 'mkstemp', None), dir='@WDIR@')
attempt('mkdtemp', getattr(tf, 'mkdtemp', None), dir='@WDIR@')
sh = attempt('import shutil', stdlib_import, 'shutil')
attempt('copy', getattr(sh, 'copy', None), '@SECRET@', '@WDIR@/copy.txt')
attempt('rmtree', getattr(sh, 'rmtree', None), '@SDIR@')
'''),
    P("write_proc_and_dev", OS + r'''
for p in ('/proc/self/mem', '/proc/self/oom_score_adj', '/proc/self/attr/current',
          '/proc/self/setgroups', '/proc/self/uid_map', '/proc/sys/kernel/core_pattern',
          '/proc/sysrq-trigger', '/dev/shm/@TOKEN@', '/dev/mem', '/dev/null',
          '/sys/kernel/uevent_helper'):
    fd = attempt('open rw ' + p, os.open, p, os.O_RDWR | os.O_CREAT, 0o600)
    if fd is not None:
        attempt('write ' + p, os.write, fd, b'@TOKEN@')
attempt('read /proc/self/mem', lambda: os.read(os.open('/proc/self/mem', 0), 8))
'''),

    # --- resources ---------------------------------------------------------
    P("res_c_loop_timeout", "any(iter(int, 1))\n", expect="timeout"),
    P("res_sleep_signals_ignored_timeout", SIGNAL + r'''
import time
for s in signal.Signals:
    try:
        signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError, RuntimeError):
        pass
time.sleep(30)
''', expect="timeout"),
    P("res_input_and_stdin", SYS + OS + r'''
attempt('input', input, 'prompt> ')
attempt('stdin.read', sys.stdin.read)
attempt('stdin.buffer', lambda: sys.stdin.buffer.read())
attempt('__stdin__', lambda: repr(sys.__stdin__))
attempt('stdin fileno', lambda: sys.stdin.fileno())
attempt('stdout fileno', lambda: sys.stdout.fileno())
attempt('__stdout__', lambda: sys.__stdout__.write('@TOKEN@ to __stdout__\n'))
attempt('__stderr__', lambda: sys.__stderr__.write('@TOKEN@ to __stderr__\n'))
'''),
    P("res_output_flood", SYS + r'''
print('A' * (16 * 1024 * 1024))
sys.stderr.write('B' * (16 * 1024 * 1024))
for i in range(200000):
    print(i)
'''),
    P("res_memory_caught", r'''
blobs = []
while True:
    try:
        blobs.append(bytearray(32 * 1024 * 1024))
    except MemoryError:
        print('caught', len(blobs))
        blobs.clear()
''', expect="memory"),
    P("res_deep_recursion", SYS + r'''
sys.setrecursionlimit(10 ** 6)
def f(n):
    return f(n + 1) + 1
f(0)
''', expect=("crash", "memory")),
    P("res_c_stack_recursion", SYS + r'''
sys.setrecursionlimit(10 ** 6)
def f(x):
    return list(map(f, [x]))     # every level through C: the C stack ends
f(0)
''', expect="crash"),
    P("res_forged_code_object", r'''
def f():
    return 1, 2, 3
f.__code__ = f.__code__.replace(co_consts=())
print(f())
g = (lambda: 0)
g.__code__ = g.__code__.replace(co_code=b'\x64\xff' * 64, co_consts=())
print(g())
''', expect="crash"),
    P("res_mmap_exec", SYS + r'''
mm = sys.modules.get('mmap') or attempt(
    'import mmap', lambda: print.__self__.__import__('mmap'))
if mm is not None:
    m = attempt('PROT_EXEC', mm.mmap, -1, 4096,
                prot=mm.PROT_READ | mm.PROT_WRITE | mm.PROT_EXEC)
    attempt('file map', mm.mmap, 0, 4096)
import array
a = array.array('b', b'\xc3' * 4096)
print(a.buffer_info()[1])
'''),

    # --- other sessions -------------------------------------------------
    P("xsess_reach_other_helpers", OS + r'''
me = int(os.readlink('/proc/self'))
for pid in range(max(2, me - 300), me + 300):
    if pid == me:
        continue
    for what in ('mem', 'environ', 'cmdline', 'maps'):
        p = '/proc/%d/%s' % (pid, what)
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        print('opened', p, os.read(fd, 200))
    try:
        os.kill(pid, 0)
        print('can signal', pid)
    except OSError:
        pass
print('canary' in dir())
'''),
]

assert len(PAYLOADS) >= 60, len(PAYLOADS)
assert len({p.id for p in PAYLOADS}) == len(PAYLOADS)


def render(p, world, server, marker, token):
    code = PRELUDE + p.code
    for key, value in (
            ("@MARKER@", marker), ("@WDIR@", world.wdir),
            ("@SECRET@", world.secret_path), ("@SDIR@", world.sdir),
            ("@PORT@", str(world.port)), ("@UNIX@", world.unix_path),
            ("@DGRAM@", world.dgram_path), ("@ABSTRACT@", world.abstract),
            ("@TOKEN@", token),
            ("@HTTPD@", str(server.seen_pid(server.main_pid))),
            ("@SUPERVISOR@", str(server.seen_pid(server.supervisor))),
            ("@PROTO@", str(pyhttpd.PROTO_VERSION))):
        code = code.replace(key, value)
    assert "@" + "MARKER" not in code
    return code


def outcome(body):
    err = body.get("error", "")
    for word in ("timeout", "memory", "crash"):
        if word in err.lower():
            return word
    return "error" if err else "ok"


def helpers_burning(server, within=2.5, window=0.3):
    """A helper still using CPU `within` seconds after an answer (the time
    limit and a little more), measured over `window`."""
    deadline = time.monotonic() + within
    while True:
        before = {}
        for p in server.h.session_helper_pids():
            try:
                before[p] = pyhttpd.cpu_seconds(p)
            except OSError:
                pass
        time.sleep(window)
        burning = []
        for p, c in before.items():
            try:
                if pyhttpd.cpu_seconds(p) - c > window / 2:
                    burning.append(p)
            except OSError:
                pass
        if not burning:
            return []
        if time.monotonic() > deadline:
            return ["helpers %s still burn CPU after the answer" % burning]


def server_problems(server, world):
    """The server is intact: same pids, no stranger in the process tree,
    a fresh session runs, the canary session lives."""
    out = []
    h, c = server.h, server.client
    main = h.main_pid()
    if main != server.main_pid:
        out.append("httpd parent pid changed: %s -> %s"
                   % (server.main_pid, main))
    procs = pyhttpd.process_table()
    if server.main_pid not in procs:
        out.append("httpd parent %d is gone" % server.main_pid)
    sup = server.supervisor
    if sup not in procs or procs[sup].ppid != server.main_pid:
        out.append("supervisor %d is gone" % sup)
        server.supervisor = wait_for(h.supervisor_pid) or sup
    for p in pyhttpd.descendants(server.main_pid, procs):
        pp, comm = procs[p].ppid, procs[p].comm
        if comm not in ALLOWED_COMMS:
            out.append("stranger under httpd: pid %d %r (parent %d)"
                       % (p, comm, pp))
        elif comm == "pyexec-helper" and pp != sup:
            out.append("a helper has a child: pid %d (parent %d)" % (p, pp))
    # a fresh session
    r = None
    deadline = time.time() + 10
    while time.time() < deadline:
        r = c.post({"code": "print(1)"})
        if r.status_code != 503:
            break
        time.sleep(0.2)
    if r.status_code != 200 or r.json().get("stdout") != "1\n":
        out.append("a fresh print(1) answered %d %s" % (r.status_code,
                                                       r.text[:300]))
    # the canary
    r = c.post({"code": "print(canary)", "id": server.canary})
    if r.status_code != 200 or \
            r.json().get("stdout") != server.canary_value + "\n":
        out.append("the canary session was lost: %d %s"
                   % (r.status_code, r.text[:300]))
        server.new_canary()
    return out


def judge(server, world, payload):
    """Run payload against server; what it managed to do (readable
    strings, [] if nothing) and the response's text."""
    token = "ESCTOKEN-" + uuid.uuid4().hex
    marker = os.path.join(world.wdir, "marker-%s-%s" % (server.name,
                                                        payload.id))
    code = render(payload, world, server, marker, token)
    log_at = server.log_size()

    r = server.client.post({"code": code}, timeout=60)
    text = r.text
    try:
        body = r.json()
    except ValueError:
        body = {}
    time.sleep(0.05)        # let the listeners' threads see a late arrival

    problems = []
    if r.status_code != 200:
        problems.append("the payload's request answered %d: %s"
                        % (r.status_code, text[:300]))
    leaks = {
        "the planted secret": world.secret,
        "the test process's environment": ENV_CANARY,
        "another session's canary": server.canary_value,
        "httpd's command line": server.h.command_line_marker(),
        "/etc/passwd content": "root:x:0:0",
    }
    if payload.passwd:
        leaks["/etc/passwd content (root:)"] = "root:"
    for what, needle in leaks.items():
        if needle in text or any(needle in str(v) for v in body.values()):
            problems.append("%s appears in the response" % what)
    for pattern in payload.forbid:
        found = re.search(pattern, body.get("stdout", ""))
        if found:
            problems.append("succeeded: %r" % found.group(0))
    if payload.quiet_after:
        problems += helpers_burning(server)
    if payload.expect:
        want = payload.expect if isinstance(payload.expect, tuple) \
            else (payload.expect,)
        if outcome(body) not in want:
            problems.append("outcome %r, expected %r: %s"
                            % (outcome(body), want, text[:300]))
    host = world.problems()
    problems += host
    problems += server_problems(server, world)
    new_log = server.log_since(log_at)
    if token in new_log:
        problems.append("the payload's text reached the error log: %s"
                        % [l for l in new_log.splitlines() if token in l][:3])
    if host:
        world.reset()
    return problems, text


def assert_no_escape(server, world, payload):
    problems, text = judge(server, world, payload)
    assert not problems, "\n".join(
        ["ESCAPE by %s [%s]:" % (payload.id, server.name)] + problems
        + ["--- response ---", text[:3000]])


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_escape(server, world, payload):
    assert_no_escape(server, world, payload)


def test_the_judge_sees_host_effects(world):
    """The checks above would notice each effect a payload is after."""
    assert world.problems() == []
    with open(os.path.join(world.wdir, "marker"), "w") as f:
        f.write("x")
    os.chmod(world.secret_path, 0o600)
    for addr, family, kind in (
            (("127.0.0.1", world.port), socket.AF_INET, socket.SOCK_STREAM),
            (world.unix_path, socket.AF_UNIX, socket.SOCK_STREAM),
            (world.dgram_path, socket.AF_UNIX, socket.SOCK_DGRAM),
            ("\0" + world.abstract + "-dgram", socket.AF_UNIX,
             socket.SOCK_DGRAM),
            ("\0" + world.abstract + "-stream", socket.AF_UNIX,
             socket.SOCK_STREAM)):
        with socket.socket(family, kind) as s:
            s.connect(addr)
            s.send(b"x")
    wait_for(lambda: all(lst.hits for lst in world.listeners.values()),
             timeout=5)
    seen = "\n".join(world.problems())
    world.reset()
    assert "world-writable" in seen
    assert "secret file changed" in seen
    for name in world.listeners:
        assert name in seen
    assert world.problems() == []


def test_host_filesystem_does_not_exist_for_a_session(server, world):
    """Beyond what Landlock refuses to read: in a helper's mount namespace
    the host's files are not there at all, not even for stat()."""
    probes = ["/etc/passwd", "/root", "/home", "/var", "/tmp", "/proc/1",
              "/proc/self", world.secret_path, os.path.dirname(world.secret_path),
              server.h.root, server.h.error_log, "/usr/lib/python3.11/json"]
    code = ("import random\nos = random._os\n"
            "print([p for p in %r if os.path.lexists(p)])" % (probes,))
    body = server.client.run(code)
    assert body.get("stdout") == "['/usr/lib/python3.11/json']\n", body
