"""A real httpd with mod_pyexec, on a generated configuration.

Modelled on httpd's own test/pyhttpd: every instance gets its own server
root (config, logs, pid file, runtime dir) in a fresh temporary
directory, listens on a free loopback port (or on a given address, in a
given network namespace: tests/integration/hosts.py makes hosts of
them), and is stopped by whoever started it. Also the one place for
finding an instance's processes (its workers, the supervisor, the
zygote, the session helpers) and for waiting on a condition.

Used by the integration tests (`from . import pyhttpd`), the benchmark
(`from tests.integration import pyhttpd`, run as `python3 -m bench`
from the top of the tree) and `scripts/dev serve`, which runs this file.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _proto_version():
    """PYEXEC_PROTO_VERSION, for tests that forge frames: a frame refused
    for its version would prove nothing about what they test."""
    with open(os.path.join(REPO, "mod_pyexec", "pyexec_protocol.h")) as f:
        for line in f:
            if line.startswith("#define PYEXEC_PROTO_VERSION"):
                return int(line.split()[2])
    raise RuntimeError("no PYEXEC_PROTO_VERSION")


PROTO_VERSION = _proto_version()


def _apxs(var):
    return subprocess.run(["apxs", "-q", var], check=True,
                          capture_output=True, text=True).stdout.strip()


HTDOCS = os.path.join(REPO, "htdocs")


def httpd_moddir():
    """Where httpd's own modules are (apxs's LIBEXECDIR)."""
    return _apxs("LIBEXECDIR")


def wait_for(pred, timeout=10, step=0.05):
    """pred()'s first true value within timeout seconds, or its last
    (false) one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# -- processes ------------------------------------------------------------

class Proc:
    """What /proc says of one process."""

    def __init__(self, pid, ppid, comm, state, nspid_depth):
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.state = state
        self.nspid_depth = nspid_depth  # 1 in the host's pid namespace


def proc_info(pid):
    """A Proc for pid, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/%d/status" % pid) as f:
            nspid = [l for l in f if l.startswith("NSpid:")]
    except OSError:
        return None
    # the name in parentheses may hold anything: parse after its last ')'
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 1:].split()
    depth = len(nspid[0].split()) - 1 if nspid else 1
    return Proc(pid, int(fields[1]), comm, fields[0], depth)


def process_table():
    """{pid: Proc} of every process on the machine."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = proc_info(int(name))
            if p:
                table[p.pid] = p
    return table


def children(pid, table=None):
    """Pids of pid's children."""
    table = table if table is not None else process_table()
    return sorted(p.pid for p in table.values() if p.ppid == pid)


def descendants(pid, table=None):
    """Pids of pid's children, their children, and so on."""
    table = table if table is not None else process_table()
    out, todo = [], [pid]
    while todo:
        for k in children(todo.pop(), table):
            out.append(k)
            todo.append(k)
    return out


def alive(pid):
    """Whether pid exists and is not a zombie."""
    p = proc_info(pid)
    return p is not None and p.state != "Z"


def remaining(pids):
    """Those of pids that still exist, zombies included (not yet reaped
    is not gone)."""
    return [p for p in pids if os.path.exists("/proc/%d" % p)]


def cpu_seconds(pid):
    """User plus system CPU time pid has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HELPER_COMM = "pyexec-helper"

# mod_reqtimeout as Debian configures it: 20 s for the first byte of a
# request, then at least 500 bytes/s up to 40 s in all for the request
# line and headers; 10 s for the body's first byte, then 500 bytes/s
REQUEST_READ_TIMEOUT = ("header=20-40,MinRate=500 "
                        "body=10,MinRate=500")


LOOPBACK = "127.0.0.1"

# every sandbox layer, by the name the status page and the log give it
# (pyexec_layers_format() in pyexec_protocol.c)
SANDBOX_LAYERS = ("seccomp", "landlock", "landlock-net", "landlock-scope",
                  "mountns", "userns", "netns", "pidns", "ipcns", "utsns",
                  "no-new-privs", "unprivileged", "rlimits")


def curl_request(run, url, data=None, headers=None, timeout=10):
    """(status, body) of a GET of url, or a POST of the string data, made
    by curl where run(argv) runs it and returns its output: in a network
    namespace, or a container, whose loopback is its own."""
    cmd = ["curl", "-sS", "-m", str(timeout), "-w", "\n%{http_code}"]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    if data is not None:
        cmd += ["--data-raw", data]
    body, _, status = run(cmd + [url]).rpartition("\n")
    return int(status), body


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def build_dir_default():
    return os.path.abspath(os.environ.get("PYEXEC_BUILD_DIR")
                           or os.path.join(REPO, "build"))


def sanitized_build(build_dir=None):
    """Was the module in build_dir built with AddressSanitizer?"""
    path = os.path.join(build_dir or build_dir_default(), ".libs",
                        "mod_pyexec.so")
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class HttpdBase:
    """What the tests see of any httpd with mod_pyexec, given its
    parent's pid (main_pid()) and a loopback client (local_request()):
    its status page and its processes (its workers, the supervisor, the
    zygote, the session helpers). An Httpd here, or httpd as PID 1 of a
    container (tests/integration/container.py)."""

    def main_pid(self):
        raise NotImplementedError

    def local_request(self, path, data=None, headers=None, timeout=10):
        raise NotImplementedError

    def command_line_marker(self):
        """A string on httpd's command line that code must never learn."""
        raise NotImplementedError

    def status_auto(self):
        """mod_pyexec's lines of /server-status?auto, as a dict (every test
        server enables the status page for loopback clients)."""
        status, text = self.local_request("/server-status?auto")
        if status != 200:
            raise RuntimeError("/server-status?auto: %d" % status)
        return dict(line.split(": ", 1) for line in text.splitlines()
                    if line.startswith("PyExec"))

    def reported_status(self, timeout=15):
        """status_auto() once a helper has told the supervisor its sandbox
        layers (before, PyExecSandbox says none and PyExecSandboxUnavailable
        unknown: a helper's socket, which wait_spares() sees, exists
        before the helper is ready)."""
        return wait_for(lambda: (lambda s: s if s["PyExecSandboxUnavailable"]
                                 != "unknown" else None)(self.status_auto()),
                        timeout=timeout)

    def supervisor_pid(self, table=None):
        """The httpd parent's child that parents the helpers, or None."""
        table = table if table is not None else process_table()
        for pid in children(self.main_pid(), table):
            if any(table[k].comm == HELPER_COMM for k in children(pid, table)):
                return pid
        return None

    def worker_pids(self, table=None):
        """The MPM's children: every child of the parent but the
        supervisor."""
        table = table if table is not None else process_table()
        sup = self.supervisor_pid(table)
        return [p for p in children(self.main_pid(), table) if p != sup]

    def helper_pids(self, table=None):
        """The zygote and every session helper: the supervisor's
        children."""
        table = table if table is not None else process_table()
        sup = self.supervisor_pid(table)
        return children(sup, table) if sup else []

    def session_helper_pids(self, table=None):
        """Session helpers only: each has a pid namespace of its own, the
        zygote shares httpd's."""
        table = table if table is not None else process_table()
        return [p for p in self.helper_pids(table)
                if table[p].nspid_depth > self._depth(table)]

    def zygote_pid(self, table=None):
        """The helper that is in the supervisor's pid namespace."""
        table = table if table is not None else process_table()
        for p in self.helper_pids(table):
            if table[p].nspid_depth == self._depth(table):
                return p
        return None

    def _depth(self, table):
        """How deep httpd's own pid namespace is: 1 on the host, 2 in a
        container; a session helper is one deeper."""
        main = table.get(self.main_pid())
        return main.nspid_depth if main else 1


class Httpd(HttpdBase):
    """One httpd instance. Use as a context manager or call start/stop."""

    def __init__(self, build_dir=None, port=None, mpm="event", servers=2,
                 threads=25, directives=None, extra_conf="", loglevel="info",
                 timeout=30, execute_location=True, address=LOOPBACK,
                 netns=None, extra_modules=(), load_pyexec=True):
        self.build_dir = os.path.abspath(build_dir or build_dir_default())
        self.port = port or free_port()
        # a host of its own: its commands run in that network namespace,
        # where it listens on address (and on the namespace's loopback)
        self.address = address
        self.netns = netns
        # more of httpd's modules by name, e.g. "proxy_http"
        self.extra_modules = tuple(extra_modules)
        # False: a stock httpd without mod_pyexec (a plain balancer front)
        self.load_pyexec = load_pyexec
        self.mpm = mpm
        self.servers = servers
        self.threads = threads
        self.directives = dict(directives or {})
        self.extra_conf = extra_conf
        self.loglevel = loglevel
        self.timeout = timeout
        self.execute_location = execute_location
        self.httpd = os.environ.get("HTTPD") or os.path.join(
            _apxs("SBINDIR"), _apxs("PROGNAME"))
        self.moddir = httpd_moddir()
        # /tmp, not the build tree: when httpd starts as root its workers
        # run as www-data and must reach the sockets and htdocs
        self.root = tempfile.mkdtemp(prefix="pyexec-httpd-")
        os.chmod(self.root, 0o755)
        self.htdocs = HTDOCS
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.address, self.port)

    @property
    def error_log(self):
        return os.path.join(self.root, "logs", "error_log")

    @property
    def pid_file(self):
        return os.path.join(self.root, "httpd.pid")

    def command_line_marker(self):
        return self.root + "/conf"

    @property
    def sockdir(self):
        return os.path.join(self.root, "run", "pyexec")

    def module_path(self):
        return os.path.join(self.build_dir, ".libs", "mod_pyexec.so")

    def helper_path(self):
        return os.path.join(self.build_dir, "pyexec-helper")

    def config_text(self):
        d = {
            "PyExecHelper": self.helper_path(),
            "PyExecSocketDir": self.sockdir,
        }
        d.update(self.directives)
        lines = []
        for k, v in d.items():
            if v is None:
                continue
            lines.append("%s %s" % (k, v))
        pyexec = "\n".join(lines)
        user = ""
        if os.geteuid() == 0:
            user = "User www-data\nGroup www-data\n"
        mpm_conf = """
StartServers {servers}
ServerLimit {servers}
MinSpareThreads 1
MaxSpareThreads {maxspare}
ThreadsPerChild {threads}
ThreadLimit {threads}
MaxRequestWorkers {workers}
""".format(servers=self.servers, threads=self.threads,
           maxspare=self.servers * self.threads,
           workers=self.servers * self.threads)
        if self.mpm == "prefork":
            mpm_conf = """
StartServers {servers}
MinSpareServers 1
MaxSpareServers {servers}
ServerLimit {servers}
MaxRequestWorkers {servers}
""".format(servers=self.servers)
        return """# generated by tests/integration/pyhttpd.py
ServerRoot "{root}"
ServerName 127.0.0.1
{listen}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}/run"
ErrorLog "{root}/logs/error_log"
LogLevel {loglevel}
LogFormat "%h %t \\"%r\\" %>s %b %{{pyexec-session}}n %{{pyexec-outcome}}n %{{pyexec-exec-ms}}n" pyexec
CustomLog "{root}/logs/access_log" pyexec
{user}
LoadModule mpm_{mpm}_module {moddir}/mod_mpm_{mpm}.so
LoadModule authz_core_module {moddir}/mod_authz_core.so
LoadModule mime_module {moddir}/mod_mime.so
LoadModule dir_module {moddir}/mod_dir.so
LoadModule alias_module {moddir}/mod_alias.so
LoadModule authz_host_module {moddir}/mod_authz_host.so
LoadModule status_module {moddir}/mod_status.so
LoadModule reqtimeout_module {moddir}/mod_reqtimeout.so
{extra_modules}{load_module}
TypesConfig /etc/mime.types
# operators' view, mod_pyexec's section included: loopback clients only
<Location "/server-status">
    SetHandler server-status
    Require ip 127.0.0.1 ::1
</Location>
{mpm_conf}
Timeout {timeout}
# slow clients cut off as Debian's default mods-available/reqtimeout.conf does
RequestReadTimeout {reqtimeout}
KeepAlive On
DocumentRoot "{htdocs}"
DirectoryIndex index.html
<Directory "{htdocs}">
    Require all granted
</Directory>
{pyexec}
{location}
{extra}
""".format(root=self.root, listen=self.listen_conf(), user=user,
           mpm=self.mpm, extra_modules=self.extra_modules_conf(),
           moddir=self.moddir,
           load_module=("LoadModule pyexec_module %s" % self.module_path()
                        if self.load_pyexec else ""),
           mpm_conf=mpm_conf, htdocs=self.htdocs,
           pyexec=pyexec if self.load_pyexec else "",
           extra=self.extra_conf, loglevel=self.loglevel,
           location=('<Location "/execute">\n    SetHandler pyexec\n'
                     '</Location>' if self.execute_location
                     and self.load_pyexec else ""),
           timeout=self.timeout, reqtimeout=REQUEST_READ_TIMEOUT)

    def listen_conf(self):
        """Listen on the address; on another one also on the loopback, for
        the pages that answer loopback clients only (local_request)."""
        lines = ["Listen %s:%d" % (self.address, self.port)]
        if self.address != LOOPBACK:
            lines.append("Listen %s:%d" % (LOOPBACK, self.port))
        return "\n".join(lines)

    def extra_modules_conf(self):
        return "".join("LoadModule %s_module %s/mod_%s.so\n"
                       % (m, self.moddir, m) for m in self.extra_modules)

    def write_config(self):
        for sub in ("conf", "logs", "run"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        os.chmod(os.path.join(self.root, "run"), 0o755)
        path = os.path.join(self.root, "conf", "httpd.conf")
        with open(path, "w") as f:
            f.write(self.config_text())
        return path

    def in_netns(self, cmd):
        """cmd, to be run in this instance's network namespace if any."""
        return ["ip", "netns", "exec", self.netns] + cmd if self.netns else cmd

    def _cmd(self, *args):
        return self.in_netns([self.httpd, "-d", self.root, "-f",
                              os.path.join(self.root, "conf", "httpd.conf")]
                             + list(args))

    def check_config(self):
        """httpd -t on the generated config (with the sanitizer's runtime
        first, as start() has it: without it an ASan build's httpd stops
        before it reads a line)."""
        self.write_config()
        return subprocess.run(self._cmd("-t"), capture_output=True, text=True,
                              env=self.environment())

    def sanitized(self):
        """Was the module built with AddressSanitizer?"""
        return sanitized_build(self.build_dir)

    def environment(self):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if self.sanitized():
            # httpd itself is not instrumented: its module is, so the ASan
            # runtime must be loaded first
            libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                                     capture_output=True,
                                     text=True).stdout.strip()
            env["LD_PRELOAD"] = libasan
            env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=1:"
                                   "allocator_may_return_null=1")
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                       "ERROR: LeakSanitizer", "UndefinedBehaviorSanitizer")

    def sanitizer_reports(self):
        log = self.read_log()
        return [m for m in self.SANITIZER_MARKS if m in log]

    def start(self, foreground=False, timeout=15):
        self.write_config()
        env = self.environment()
        if foreground:
            self.proc = subprocess.Popen(self._cmd("-DFOREGROUND"), env=env)
        else:
            r = subprocess.run(self._cmd("-k", "start"), env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("httpd failed to start: %s%s\n%s" % (
                    r.stdout, r.stderr, self.read_log()))
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection((self.address, self.port),
                                              0.5):
                    return
            except OSError:
                if self.proc and self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("httpd did not listen on %s:%d:\n%s" % (
            self.address, self.port, self.read_log()))

    def wait_spares(self, n=1, timeout=15):
        """Wait until at least n helper sockets exist (spares are warm)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socks = [f for f in os.listdir(self.sockdir)
                         if f.startswith("h") and f.endswith(".sock")]
            except OSError:
                socks = []
            if len(socks) >= n:
                return
            time.sleep(0.05)
        raise RuntimeError("no warm helpers after %ss:\n%s" % (
            timeout, self.read_log()))

    def main_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def local_request(self, path, data=None, headers=None, timeout=10):
        """(status, body) of a GET of path, or a POST of the string data,
        from a loopback client: the operators' pages answer no other. In
        a network namespace, its loopback is its own, so the request is
        made from inside it (by curl)."""
        url = "http://%s:%d%s" % (LOOPBACK, self.port, path)
        if not self.netns:
            import requests
            r = requests.request("GET" if data is None else "POST", url,
                                 data=data, headers=headers or {},
                                 timeout=timeout)
            return r.status_code, r.text

        def run(argv):
            r = subprocess.run(self.in_netns(argv), capture_output=True,
                               text=True, timeout=timeout + 5)
            if r.returncode != 0:
                raise RuntimeError("curl %s: %s" % (url, r.stderr))
            return r.stdout
        return curl_request(run, url, data, headers, timeout)

    def signal(self, action, wait=True, timeout=15):
        old = self.main_pid()
        r = subprocess.run(self._cmd("-k", action), capture_output=True,
                           text=True, env=self.environment())
        if r.returncode != 0:
            raise RuntimeError("httpd -k %s: %s%s" % (action, r.stdout,
                                                      r.stderr))
        if action == "stop":
            self._wait_gone(old, timeout)
        elif wait:
            time.sleep(0.5)
            self.wait_ready(timeout)

    def _wait_gone(self, pid, timeout):
        deadline = time.time() + timeout
        while pid and time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.proc = None
        elif self.main_pid():
            try:
                self.signal("stop")
            except RuntimeError:
                pass

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def read_access_log(self):
        try:
            with open(os.path.join(self.root, "logs", "access_log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def read_log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def serve(argv=None):
    ap = argparse.ArgumentParser(description="Run httpd with mod_pyexec in "
                                 "the foreground until Ctrl-C.")
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--port", type=int,
                    default=int(os.environ.get("PYEXEC_PORT", "5000")))
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started this one is "
                    "gone (for test runners: a crashed one must not leave "
                    "an httpd behind)")
    ap.add_argument("--directive", action="append", default=[],
                    metavar="NAME=VALUE",
                    help="a mod_pyexec directive for the generated config, "
                    "e.g. PyExecMaxClientSessions=off (repeatable)")
    args = ap.parse_args(argv)
    directives = dict(d.split("=", 1) for d in args.directive)
    # a dev host can stand behind a balancer (PYEXEC_ROUTE): its check too
    h = Httpd(build_dir=args.build_dir, port=args.port, directives=directives,
              extra_conf='<Location "/pyexec-health">\n'
                         '    SetHandler pyexec-health\n</Location>\n')
    until_stopped = stopper(args.exit_with_parent)
    try:
        h.start(foreground=True)
        print("mod_pyexec: UI at %s/  API at %s/execute  (Ctrl-C stops)"
              % (h.url, h.url), flush=True)
        print("error log: %s" % h.error_log, flush=True)
        until_stopped(lambda: h.proc.poll() is None)
    finally:
        h.stop()
        h.cleanup()
    return 0


def stopper(exit_with_parent):
    """For a server run in the foreground: a function that returns on
    SIGINT or SIGTERM, when alive() turns false, or (exit_with_parent)
    when the process that started this one is gone."""
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    parent = os.getppid()

    def until_stopped(alive=lambda: True):
        while (not stopping and alive()
               and not (exit_with_parent and os.getppid() != parent)):
            time.sleep(0.2)
    return until_stopped


if __name__ == "__main__":
    sys.exit(serve())
