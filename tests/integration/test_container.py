"""The container image (Dockerfile, docker/): built with the real
Dockerfile by a dockerd of the suite's own (container.py), run with the
shipped seccomp profile and with Docker's default one.

- With docker/seccomp.json: the contract basics answer on the published
  port, the limits come from the environment, every sandbox layer the
  host can give is active (none unavailable), the image's HEALTHCHECK
  turns healthy, and a subset of the escape suite runs against the
  container, judged by effect inside it: its files in a directory the
  container shares with the host, its listeners on the container's own
  loopback and in its abstract socket namespace.
- With Docker's defaults: 503 at once, the log line names the profile,
  and no code runs.
- docker/seccomp.json is Docker's default profile (Debian 12's docker.io)
  plus exactly the calls the sandbox needs: made again from Debian's copy
  of that default, it is the committed file.

It starts a dockerd and builds an image (about 4 minutes the first time,
less than one with the build tree's cache), so it runs only as root and
when asked: scripts/dev test sets PYEXEC_TEST_CONTAINER=1 in its normal
pass, and .ci/run sets it to `require`, where a machine that cannot run
Docker fails rather than skips.
"""
import glob
import json
import os
import shutil
import sys
import tempfile
import time

import pytest
import requests

from . import container, pyhttpd, test_escape
from .conftest import Client, start
from .container import Container, Dockerd, PROFILE, Unavailable
from .pyhttpd import wait_for
from .test_debian import run

MODE = os.environ.get("PYEXEC_TEST_CONTAINER", "")

pytestmark = pytest.mark.skipif(
    MODE not in ("1", "require"),
    reason="set PYEXEC_TEST_CONTAINER=1 (scripts/dev test does in its "
           "normal pass)")

# every limit the suite does not test is the image's default
CODE_SIZE = 16 * 1024
SANDBOXED_ENV = {
    # one client (the docker-proxy) makes every request, many at once
    "PYEXEC_RATE_LIMIT": "off",
    "PYEXEC_MAX_CLIENT_SESSIONS": "off",
    "PYEXEC_MAX_CODE_SIZE": "16K",
    # the status page through the published port (the docker-proxy
    # connects from the bridge's side)
    "PYEXEC_STATUS_FROM": "127.0.0.1 172.16.0.0/12",
    "PYEXEC_TEST_ENV_CANARY": test_escape.ENV_CANARY,
}

# the escape suite's payloads that aim at what a container changes: its
# PID 1 is httpd, its loopback and abstract sockets are the container's,
# its files are the image's
ESCAPES = [
    "builtins_subclasses_wrap_close", "os_random",
    "imp_extension_loader_ctypes", "read_o_path_dirfd", "read_proc_httpd",
    "env_environ", "env_proc_environ", "proc_os_system_popen", "proc_fork_bomb",
    "sig_kill_parent_and_httpd", "sig_kill_every_pid",
    "fd_inherited_scan_and_write", "net_tcp_create_connection",
    "net_unix_stream_connect", "net_abstract_dgram_sendto",
    "net_supervisor_control_socket_forgery", "write_open_variants",
    "write_symlink_link", "write_proc_and_dev", "res_c_loop_timeout",
    "res_memory_caught", "res_kernel_socket_buffers",
    "xsess_reach_other_helpers",
]
PAYLOADS = {p.id: p for p in test_escape.PAYLOADS}

NAMESPACE_LAYERS = {"mountns", "userns", "netns", "pidns", "ipcns",
                    "utsns"}


# --- the profile ------------------------------------------------------------

def test_the_profile_is_dockers_default_plus_the_sandbox_calls(tmp_path):
    """Made again from Debian's copy of Docker's default profile (the
    docker.io under test), docker/seccomp.json is the committed file, and
    what it adds is exactly the list the issue names."""
    pkg = "golang-github-docker-docker-dev"
    run(["apt-get", "download", pkg], cwd=tmp_path)
    deb = glob.glob(str(tmp_path / (pkg + "_*.deb")))
    assert len(deb) == 1, os.listdir(tmp_path)
    run(["dpkg-deb", "-x", deb[0], str(tmp_path / "x")])
    default = tmp_path / "x" / ("usr/share/gocode/src/github.com/docker/"
                                "docker/profiles/seccomp/default.json")
    made = run([sys.executable, os.path.join(pyhttpd.REPO, "docker",
                                             "seccomp.py"), str(default)])
    with open(PROFILE) as f:
        committed = f.read()
    assert made.stdout == committed, \
        "docker/seccomp.json is stale: python3 docker/seccomp.py " \
        "DEFAULT.json > docker/seccomp.json"

    base = json.loads(default.read_text())
    ours = json.loads(committed)
    assert {k: v for k, v in ours.items() if k != "syscalls"} == \
        {k: v for k, v in base.items() if k != "syscalls"}
    assert ours["syscalls"][:len(base["syscalls"])] == base["syscalls"]
    added = ours["syscalls"][len(base["syscalls"]):]
    names = {n for rule in added for n in rule["names"]}
    assert names == {"unshare", "clone", "mount", "umount2", "pivot_root",
                     "sethostname", "landlock_create_ruleset",
                     "landlock_add_rule", "landlock_restrict_self"}
    for rule in added:
        assert rule["action"] == "SCMP_ACT_ALLOW"
        assert "includes" not in rule        # no capability asked for
    # namespaces by flag, never a cgroup one; unshare never a time one
    # (clone's low byte is the exit signal: no time namespace by clone)
    by_name = {n: rule for rule in added for n in rule["names"]}
    mask = {n: by_name[n]["args"][0]["value"] for n in ("unshare", "clone")}
    NEWNS, NEWCGROUP, NEWUTS, NEWIPC = 0x20000, 0x2000000, 0x4000000, \
        0x8000000
    NEWUSER, NEWPID, NEWNET, NEWTIME = 0x10000000, 0x20000000, \
        0x40000000, 0x80
    assert mask["unshare"] == NEWPID | NEWCGROUP | NEWTIME
    assert mask["clone"] == NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWNET
    # what sandbox_linux.c asks for passes the masks
    assert not mask["unshare"] & (NEWUSER | NEWNET | NEWIPC | NEWUTS | NEWNS)
    assert not mask["clone"] & (NEWPID | NEWNS)


# --- Docker -------------------------------------------------------------

@pytest.fixture(scope="module")
def dockerd():
    def unavailable(why):
        msg = "Docker cannot run here: " + why
        if MODE == "require":
            pytest.fail(msg + " (PYEXEC_TEST_CONTAINER=require)")
        pytest.skip(msg)
    if os.geteuid() != 0:
        unavailable("the suite starts a dockerd of its own: run as root")
    if not os.path.exists(container.DOCKERD):
        unavailable("no %s (Debian's docker.io; scripts/dev test installs "
                    "it)" % container.DOCKERD)
    d = Dockerd(container.state_dir())
    other = container.other_dockerd(d.data_root)
    if other:
        unavailable("a dockerd runs already (pid %d); the suite starts its "
                    "own and would fight it over docker0 and iptables: "
                    "stop it (systemctl stop docker.socket docker) or set "
                    "PYEXEC_TEST_CONTAINER=0" % other)
    try:
        d.start()
    except Unavailable as e:
        d.stop()
        unavailable(str(e))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def image(dockerd):
    started = time.monotonic()
    container.ensure_base(dockerd)
    container.build_image(dockerd)
    sys.stderr.write("\n[container] base image and build: %.0f s\n"
                     % (time.monotonic() - started))
    return container.IMAGE


@pytest.fixture(scope="module")
def shared():
    """A host directory the containers see at the same path: the escape
    world's files live in it."""
    path = tempfile.mkdtemp(prefix="pyexec-ctr-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def running(request, c):
    c.start()

    def fin():
        if request.session.testsfailed:
            sys.stderr.write("\n--- docker logs %s ---\n%s\n"
                             % (c.name, c.logs()[-6000:]))
        c.remove()
    request.addfinalizer(fin)
    c.wait_ready()
    return c


@pytest.fixture(scope="module")
def sandboxed(request, dockerd, image, shared):
    """With the shipped profile, and nothing else added."""
    return running(request, Container(dockerd,
                                      "pyexec-profile-%d" % os.getpid(),
                                      seccomp=PROFILE, env=SANDBOXED_ENV,
                                      volumes=[shared]))


@pytest.fixture(scope="module")
def defaults(request, dockerd, image):
    """Docker's default seccomp profile; no module allowed, so that the
    entry point runs without PYEXEC_WITH_MODULES."""
    return running(request, Container(dockerd,
                                      "pyexec-defaults-%d" % os.getpid(),
                                      env={"PYEXEC_ALLOW_MODULES": ""}))


@pytest.fixture(scope="module")
def client(sandboxed):
    return Client(sandboxed)


# --- with the profile -------------------------------------------------------

def test_the_page_is_served_at_the_root(sandboxed):
    r = requests.get(sandboxed.url + "/", timeout=10)
    assert r.status_code == 200
    assert "<title>Run Python" in r.text
    # the headers docs/web-page.md counts on (mod_headers is enabled)
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert "frame-ancestors 'self'" in \
        r.headers.get("Content-Security-Policy", "")
    assert r.headers.get("Cache-Control") == "no-cache"
    r = requests.get(sandboxed.url + "/openapi.json", timeout=10)
    assert r.status_code == 200 and "/execute" in r.json()["paths"]


def test_the_contract_basics_answer(client):
    assert client.run("print(1 + 1)")["stdout"] == "2\n"
    sid = client.run("x = 41")["id"]
    assert client.run("print(x + 1)", sid=sid)["stdout"] == "42\n"
    body = client.run("import os")
    assert "PermissionError: Importing 'os' is restricted." in \
        body["stderr"] and "stdout" not in body, body
    body = client.run("print('out')\n1/0")
    assert body["stdout"] == "out\n", body
    assert body["stderr"].rstrip().endswith("ZeroDivisionError: division "
                                            "by zero"), body
    assert test_escape.outcome(client.run("while True: pass")) == "timeout"
    assert test_escape.outcome(client.run("x = bytearray(300 << 20)")) \
        == "memory"
    r = client.session_delete(sid)
    assert r.status_code in (200, 204)
    assert client.post({"code": "print(x)", "id": sid}).status_code == 404


def test_the_data_stack_is_allowed_by_default(client):
    r = client.post({"code": "import numpy, pandas\n"
                             "print(int(numpy.arange(4).sum()))\n"
                             "pandas.DataFrame({'a': [1, 2]})",
                     "display_result": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stdout"] == "6\n", body
    assert any("text/html" in d.get("data", {})
               for d in body.get("display", [])), body


def test_limits_come_from_the_environment(client):
    """PYEXEC_MAX_CODE_SIZE=16K (the image's default is 64K)."""
    fits = "x = 1\n" + "#" * (CODE_SIZE - 100)
    assert client.post({"code": fits}).status_code == 200
    r = client.post({"code": "x = 1\n" + "#" * (CODE_SIZE + 100)})
    assert r.status_code == 413, r.text


def apparmor_denies_mount(c):
    """Docker's docker-default AppArmor profile denies mount(): where the
    host confines containers with it, the mount namespace layer cannot
    hold (Landlock stands in for it)."""
    return c.inspect("{{.AppArmorProfile}}") not in ("", "unconfined")


def expected_namespaces(c):
    return NAMESPACE_LAYERS - ({"mountns"} if apparmor_denies_mount(c)
                               else set())


def test_every_layer_is_active(request, sandboxed):
    """The layers the container's helpers hold are those this host's own
    helpers hold: all of them, namespaces included, with no capability
    added."""
    on_host = set(start(request).reported_status()["PyExecSandbox"].split())
    inside = set(sandboxed.reported_status()["PyExecSandbox"].split())
    assert expected_namespaces(sandboxed) <= inside, inside
    assert inside == on_host - (NAMESPACE_LAYERS
                                - expected_namespaces(sandboxed)), \
        (inside, on_host)
    logs = sandboxed.error_log_text()
    said = [l for l in logs.splitlines() if "PYX00231" in l]
    assert said, logs[-3000:]
    unavailable = said[-1].split("unavailable on this host: ")[1]
    assert not NAMESPACE_LAYERS & set(unavailable.replace(";", " ").split()) \
        or apparmor_denies_mount(sandboxed), said[-1]
    assert "seccomp.json" not in said[-1]
    assert "PYX00233" not in logs
    # and the status page names as unavailable only what the host lacks
    # too (none here; the mount namespace where AppArmor denies mount)
    lacking = set(sandboxed.status_auto()["PyExecSandboxUnavailable"]
                  .split()) - {"none"}
    assert lacking == set(pyhttpd.SANDBOX_LAYERS) - inside, lacking
    assert not lacking & expected_namespaces(sandboxed), lacking
    assert_no_privilege_added(sandboxed)


def assert_no_privilege_added(c):
    caps = c.inspect("{{.HostConfig.CapAdd}} {{.HostConfig.Privileged}}")
    assert caps in ("[] false", "<no value> false"), caps


def test_the_status_page_is_for_whom_the_environment_says(sandboxed,
                                                         defaults):
    """PYEXEC_STATUS_FROM opens /server-status to the published port's
    clients; by default only the container's loopback may read it."""
    r = requests.get(sandboxed.url + "/server-status?auto", timeout=10)
    assert r.status_code == 200 and "PyExecSandbox: " in r.text, r.text
    r = requests.get(defaults.url + "/server-status?auto", timeout=10)
    assert r.status_code == 403, r.text
    assert defaults.local_request("/server-status?auto")[0] == 200


def test_the_healthcheck_turns_healthy(sandboxed):
    assert requests.get(sandboxed.url + "/", timeout=10).status_code == 200
    assert wait_for(lambda: sandboxed.inspect("{{.State.Health.Status}}")
                    == "healthy", timeout=60, step=0.5), \
        sandboxed.inspect("{{json .State.Health}}")
    # the checks themselves stay out of the access log; requests do not
    logs = sandboxed.logs()
    assert '"GET / HTTP/1.1" 200' in logs
    assert "/pyexec-health" not in logs, logs[-3000:]


def test_the_compose_file_runs_with_every_layer(dockerd, image):
    """compose.yaml as the README runs it, from the top of the tree (with
    Debian's docker-compose, Compose v1: v2 is not packaged here): the
    profile is found, the helpers hold every namespace, code runs."""
    project = "pyxcompose%d" % os.getpid()
    port = pyhttpd.free_port()

    def compose(*args, **kw):
        return dockerd.docker("-p", project, *args, tool=container.COMPOSE,
                              env={"PYEXEC_PORT": str(port)},
                              cwd=pyhttpd.REPO, **kw)
    try:
        compose("up", "-d", "--build", timeout=900)
        cid = compose("ps", "-q", "pyexec").stdout.strip()
        assert cid
        c = Container(dockerd, cid, port=port)
        c.wait_ready()
        assert Client(c).run("print(6 * 7)")["stdout"] == "42\n"
        assert expected_namespaces(c) <= \
            set(c.reported_status()["PyExecSandbox"].split())
        assert_no_privilege_added(c)
    finally:
        compose("down", "--rmi", "local", check=False, timeout=120)


# --- the escape subset, judged inside the container ------------------------

class ContainerServer(test_escape.Server):
    """The escape suite's view of a server, for a container: its error
    log is `docker logs`, its pids as payloads see them are the
    container's."""

    def seen_pid(self, pid):
        return self.h.ns_pid(pid)

    def log_size(self):
        return len(self.h.error_log_text())

    def log_since(self, offset):
        return self.h.error_log_text()[offset:]


@pytest.fixture(scope="module")
def world(sandboxed, shared):
    w = test_escape.World(parent=shared, netns=sandboxed.netns)
    yield w
    w.close()


@pytest.fixture(scope="module")
def cserver(sandboxed, world):
    return ContainerServer("container", sandboxed)


def test_the_judge_sees_effects_inside_the_container(sandboxed, world):
    """Each effect the escape subset is judged by is one a process in the
    container (here root, by docker exec) could have: the world is
    reachable from inside, so an escape would show."""
    assert world.problems() == []
    probe = r'''
import os, socket, sys
w, secret, port, unix, dgram, ab = sys.argv[1:]
open(os.path.join(w, "marker"), "w").write("x")
os.chmod(secret, 0o600)
for addr, fam, kind in (
        (("127.0.0.1", int(port)), socket.AF_INET, socket.SOCK_STREAM),
        (unix, socket.AF_UNIX, socket.SOCK_STREAM),
        (dgram, socket.AF_UNIX, socket.SOCK_DGRAM),
        ("\0" + ab + "-dgram", socket.AF_UNIX, socket.SOCK_DGRAM),
        ("\0" + ab + "-stream", socket.AF_UNIX, socket.SOCK_STREAM)):
    s = socket.socket(fam, kind)
    s.connect(addr)
    s.send(b"x")
    s.close()
'''
    sandboxed.exec("python3", "-c", probe, world.wdir, world.secret_path,
                   str(world.port), world.unix_path, world.dgram_path,
                   world.abstract)
    wait_for(lambda: all(lst.hits for lst in world.listeners.values()),
             timeout=5)
    seen = "\n".join(world.problems())
    world.reset()
    assert "world-writable" in seen and "secret file changed" in seen
    for name in world.listeners:
        assert name in seen
    assert world.problems() == []


@pytest.mark.parametrize("payload_id", ESCAPES)
def test_escape_in_the_container(cserver, world, payload_id):
    test_escape.assert_no_escape(cserver, world, PAYLOADS[payload_id])


# --- with Docker's defaults -------------------------------------------------

def test_under_dockers_defaults_no_code_runs(defaults):
    """503 at once with Retry-After, the refusal names the profile, and
    no code ran: no session was made, no execution counted."""
    code = "print('ran')"
    c = Client(defaults)
    # once the first helpers have refused (a moment after start), every
    # request is refused without waiting
    assert wait_for(lambda: defaults.status_auto()["PyExecHelpersFailing"]
                    == "yes", timeout=30, step=0.2), defaults.logs()[-3000:]
    started = time.monotonic()
    r = c.post({"code": code})
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After")
    assert "ran" not in r.text and "error" in r.json()
    # at once: well inside the 2 s time limit a run would have had
    assert took < 2, took
    logs = defaults.error_log_text()
    refusals = [l for l in logs.splitlines() if "PYX00233" in l]
    assert refusals, logs[-3000:]
    assert "--security-opt seccomp=" in refusals[0] \
        and "seccomp.json" in refusals[0], refusals[0]
    status = defaults.status_auto()
    assert status["PyExecExecutions"] == "0", status
    assert status["PyExecSessionsCreated"] == "0", status
    assert status["PyExecSessionsLive"] == "0", status
    assert not NAMESPACE_LAYERS & set(status["PyExecSandbox"].split())
    r = requests.get(defaults.url + "/pyexec-health", timeout=10)
    assert r.status_code == 503


def test_docker_stop_ends_httpd_and_every_helper(sandboxed):
    """SIGTERM to PID 1 stops httpd, its supervisor and its helpers at
    once (well before Docker's 10 s SIGKILL), exit status 0. Last: it
    stops the container the tests above used."""
    pids = [sandboxed.main_pid()] + pyhttpd.descendants(
        sandboxed.main_pid())
    assert len(pids) > 3
    started = time.monotonic()
    sandboxed.d.docker("stop", sandboxed.name, timeout=60)
    took = time.monotonic() - started
    assert sandboxed.inspect("{{.State.ExitCode}}") == "0"
    assert took < 8, took
    assert pyhttpd.remaining(pids) == []
