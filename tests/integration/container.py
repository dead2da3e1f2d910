"""Docker for the container suite (test_container.py): a dockerd of the
tests' own, the debian:bookworm-slim its Dockerfile starts from, the
image built from the real Dockerfile, and containers of it.

Docker Hub is not reachable here, so debian:bookworm-slim is a stand-in
made with `debootstrap --variant=minbase` and `docker import`, with the
host's apt sources (Debian's image has the same three suites). The
tarball is made once and kept in the build tree ($BUILD/docker/), as is
the dockerd's data root, so that a second run reuses the base image and
the build cache; the dockerd has its own exec root, pid file and socket
and is stopped when the suite ends.
"""
import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import time

from . import pyhttpd
from .pyhttpd import wait_for

DOCKER = "/usr/bin/docker"      # docker.io's client, of the same version
DOCKERD = "/usr/sbin/dockerd"
COMPOSE = "/usr/bin/docker-compose"     # Debian's, Compose v1
BASE = "debian:bookworm-slim"
IMAGE = "mod-pyexec:test"
PROFILE = os.path.join(pyhttpd.REPO, "docker", "seccomp.json")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CLONE_NEWNET = 0x40000000


class Unavailable(Exception):
    """Docker cannot run on this machine; why, for the skip message."""


def state_dir():
    return os.path.join(pyhttpd.build_dir_default(), "docker")


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def other_dockerd(data_root):
    """The pid of a dockerd already running, or None: a second one would
    fight it over docker0 and the iptables chains. One of the suite's own
    left by a killed run (same data root) is ended instead."""
    for p in pyhttpd.process_table().values():
        if p.comm != "dockerd":
            continue
        if data_root in _cmdline(p.pid):
            with contextlib.suppress(OSError):
                os.kill(p.pid, 15)
            wait_for(lambda: not pyhttpd.alive(p.pid), timeout=30)
            continue
        return p.pid
    return None


SYSCTLS = ("/proc/sys/net/ipv4/ip_forward",
           "/proc/sys/net/bridge/bridge-nf-call-iptables",
           "/proc/sys/net/bridge/bridge-nf-call-ip6tables")


class HostNetwork:
    """What dockerd changes in the host's network and does not undo when
    it stops: its iptables chains and the FORWARD policy (DROP), IP
    forwarding, br_netfilter's hooks (which then put every bridge's
    frames through iptables: the balancer suite's hosts would no longer
    reach each other), docker0. Taken before it starts, put back after."""

    def __init__(self):
        self.tables = {t: self._save(t) for t in ("iptables", "ip6tables")}
        self.sysctls = {}
        for path in SYSCTLS:
            with contextlib.suppress(OSError), open(path) as f:
                self.sysctls[path] = f.read().strip()
        self.docker0 = os.path.exists("/sys/class/net/docker0")

    @staticmethod
    def _save(tool):
        r = subprocess.run([tool + "-save"], capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else None

    def restore(self):
        for tool, saved in self.tables.items():
            if saved is None:
                continue
            before = set(re.findall(r"^\*(\w+)", saved, re.M))
            now = set(re.findall(r"^\*(\w+)", self._save(tool) or "",
                                 re.M))
            for table in now - before:      # made by dockerd: empty it
                for flag in ("-F", "-X"):
                    subprocess.run([tool, "-t", table, flag],
                                   capture_output=True)
            subprocess.run([tool + "-restore"], input=saved, text=True,
                           capture_output=True)
        for path in SYSCTLS:
            # a hook br_netfilter added (its default is on) goes off
            value = self.sysctls.get(path, "0")
            with contextlib.suppress(OSError), open(path, "w") as f:
                f.write(value)
        if not self.docker0:
            subprocess.run(["ip", "link", "del", "docker0"],
                           capture_output=True)


class Dockerd:
    def __init__(self, state):
        self.state = state
        self.data_root = os.path.join(state, "data")
        # short: containerd's sockets live under it
        self.exec_root = tempfile.mkdtemp(prefix="pyx-dockerd-")
        self.sock = os.path.join(self.exec_root, "docker.sock")
        self.log_path = os.path.join(state, "dockerd.log")
        self.proc = None
        self.host = None

    def start(self, timeout=60):
        os.makedirs(self.data_root, exist_ok=True)
        # not the host's /etc/docker/daemon.json (mirrors, userns-remap,
        # iptables off): Docker's defaults, as a user's fresh install
        config = os.path.join(self.state, "daemon.json")
        with open(config, "w") as f:
            f.write("{}\n")
        self.host = HostNetwork()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [DOCKERD, "--config-file", config,
                 "--data-root", self.data_root,
                 "--exec-root", self.exec_root,
                 "--pidfile", os.path.join(self.exec_root, "dockerd.pid"),
                 "--host", "unix://" + self.sock],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable("dockerd exited (%d):\n%s"
                                  % (self.proc.returncode,
                                     tail(self.log_path)))
            try:
                if self.docker("version", check=False,
                               timeout=10).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.3)
        raise Unavailable("dockerd did not answer in %d s:\n%s"
                          % (timeout, tail(self.log_path)))

    def docker(self, *args, check=True, timeout=120, tool=DOCKER, env=None,
               **kw):
        """docker (or tool, e.g. docker-compose) ARGS, talking to this
        dockerd."""
        env = dict(os.environ, DOCKER_HOST="unix://" + self.sock,
                   DOCKER_BUILDKIT="0",
                   DOCKER_CONFIG=os.path.join(self.state, "config"),
                   **(env or {}))
        r = subprocess.run([tool] + list(args), capture_output=True,
                           text=True, env=env, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError("%s %s: %d\n%s\n%s" % (
                os.path.basename(tool), " ".join(args[:3]), r.returncode,
                r.stdout[-4000:], r.stderr[-4000:]))
        return r

    def stop(self):
        if self.proc and self.proc.poll() is None:
            left = self.docker("ps", "-aq", check=False).stdout.split()
            if left:
                self.docker("rm", "-f", *left, check=False)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.host:
            self.host.restore()
            self.host = None
        shutil.rmtree(self.exec_root, ignore_errors=True)


# -- the base image and the image ------------------------------------------

def host_mirror():
    """The Debian mirror this host's apt uses (deb822 or one-line)."""
    for path in ("/etc/apt/sources.list.d/debian.sources",
                 "/etc/apt/sources.list"):
        try:
            with open(path) as f:
                for line in f:
                    # "deb [signed-by=...] URI suite ..." has options first
                    w = re.sub(r"\[[^]]*\]", " ", line).split()
                    if w[:1] == ["URIs:"] and len(w) > 1:
                        return w[1]
                    if w[:1] == ["deb"] and len(w) > 2:
                        return w[1]
        except OSError:
            continue
    return DEFAULT_MIRROR


def base_tarball(state):
    """A minimal bookworm root as a tar, made once."""
    path = os.path.join(state, "bookworm-minbase.tar")
    if os.path.exists(path):
        return path
    os.makedirs(state, exist_ok=True)
    root = tempfile.mkdtemp(prefix="bookworm-", dir=state)
    try:
        r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm",
                            root, host_mirror()], capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, "debootstrap:\n" + r.stdout[-3000:] + \
            r.stderr[-3000:]
        # the suites Debian's image has (bookworm, -updates, -security)
        sources = "/etc/apt/sources.list.d/debian.sources"
        if os.path.exists(sources):
            shutil.copy(sources, os.path.join(root, sources.lstrip("/")))
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, "etc/apt/sources.list"))
        for d in ("var/lib/apt/lists", "var/cache/apt/archives"):
            subprocess.run(["find", os.path.join(root, d), "-type", "f",
                            "-delete"], check=True)
        subprocess.run(["tar", "-C", root, "-cf", path + ".part", "."],
                       check=True)
        os.rename(path + ".part", path)
    finally:
        subprocess.run(["rm", "-rf", root])
    return path


def ensure_base(d):
    if d.docker("image", "inspect", BASE, check=False).returncode == 0:
        return
    d.docker("import", "-c", 'CMD ["bash"]', base_tarball(d.state), BASE,
             timeout=600)


def build_image(d):
    """The image from the Dockerfile at the top of the tree, as a user
    builds it (with Docker's classic builder: no BuildKit feature is
    used)."""
    r = d.docker("build", "-t", IMAGE, pyhttpd.REPO, timeout=1800)
    return r.stdout


# -- a container -------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


class Container(pyhttpd.HttpdBase):
    """One container of the image, its port 80 published on a free
    loopback port. seccomp: the profile's path, or None for Docker's
    default; volumes: host directories it sees at the same path. With a
    port, one started otherwise (by docker-compose), named by its id."""

    def __init__(self, d, name, seccomp=None, env=None, volumes=(),
                 port=None):
        self.d = d
        self.name = name
        self.seccomp = seccomp
        self.env = dict(env or {})
        self.volumes = list(volumes)
        self.port = port or pyhttpd.free_port()
        self.url = "http://%s:%d" % (pyhttpd.LOOPBACK, self.port)
        # on httpd's command line (the entry point passes its arguments
        # on): what a payload must not learn
        self.cmdline_canary = "PYEXEC_CANARY_" + os.urandom(8).hex()
        self._pid = None

    def start(self):
        args = ["run", "-d", "--name", self.name,
                "-p", "%s:%d:80" % (pyhttpd.LOOPBACK, self.port)]
        if self.seccomp:
            args += ["--security-opt", "seccomp=" + self.seccomp]
        for k, v in sorted(self.env.items()):
            args += ["-e", "%s=%s" % (k, v)]
        for v in self.volumes:
            args += ["-v", "%s:%s" % (v, v)]
        self.d.docker(*(args + [IMAGE, "-D" + self.cmdline_canary]))

    def command_line_marker(self):
        return self.cmdline_canary

    def wait_ready(self, timeout=60):
        """Until httpd answers on the published port (any status)."""
        import requests

        def answers():
            try:
                requests.get(self.url + "/pyexec-health", timeout=2)
                return True
            except requests.RequestException:
                return False
        if not wait_for(answers, timeout=timeout, step=0.2):
            raise AssertionError("%s does not answer:\n%s"
                                 % (self.name, self.logs()[-5000:]))

    def inspect(self, fmt):
        return self.d.docker("inspect", "-f", fmt, self.name).stdout.strip()

    def main_pid(self):
        """httpd, PID 1 in the container, as the host sees it."""
        if self._pid is None:
            self._pid = int(self.inspect("{{.State.Pid}}")) or None
        return self._pid

    def logs(self):
        """What httpd wrote to the container's stdout (the access log)
        and stderr (the error log)."""
        r = self.d.docker("logs", self.name, check=False)
        return r.stdout + r.stderr

    read_log = logs

    def error_log_text(self):
        return self.d.docker("logs", self.name, check=False).stderr

    def ns_pid(self, pid):
        """pid as the container's processes see it."""
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[2])
        raise AssertionError("no NSpid for %d" % pid)

    def exec(self, *cmd, user=None, check=True, timeout=30):
        args = ["exec"] + (["-u", user] if user else []) + [self.name]
        return self.d.docker(*(args + list(cmd)), check=check,
                             timeout=timeout)

    def local_request(self, path, data=None, headers=None, timeout=10):
        """(status, body) from a client on the container's loopback: the
        operators' pages answer no other."""
        return pyhttpd.curl_request(
            lambda argv: self.exec(*argv, timeout=timeout + 10).stdout,
            "http://localhost" + path, data, headers, timeout)

    @contextlib.contextmanager
    def netns(self):
        """This thread in the container's network namespace: sockets made
        here are on its loopback, in its abstract namespace."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/proc/%d/ns/net" % self.main_pid(), os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)

    def remove(self):
        self.d.docker("rm", "-f", self.name, check=False)
