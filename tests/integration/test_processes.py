"""The process tree: supervisor loss, httpd restarts, nothing left behind."""
import os
import signal
import subprocess
import time

import pytest

from . import pyhttpd
from .conftest import Client, start
from .pyhttpd import alive, remaining, wait_for


@pytest.fixture
def own(request):
    return start(request, directives={"PyExecSpareHelpers": 2})


def test_helpers_are_children_of_the_supervisor(own):
    sup = wait_for(own.supervisor_pid)
    assert sup
    # zygote + 2 spares at least
    assert wait_for(lambda: len(own.helper_pids()) >= 3)


def test_timeout_helper_is_killed_from_outside(request):
    """The helper process of a timed-out session no longer exists."""
    h = start(request, directives={"PyExecSpareHelpers": 1})
    c = Client(h)
    spare = wait_for(h.session_helper_pids)
    assert len(spare) == 1
    sid = c.run("x = 1")["id"]          # takes that spare
    body = c.run("while True:\n    try:\n        pass\n"
                 "    except BaseException:\n        pass", sid)
    assert body["error"] == "Execution timeout. Session terminated."
    assert wait_for(lambda: not alive(spare[0]), timeout=2)
    # the worker's KILL was taken as a worker's (not ignored as forged)
    assert "PYX00232" not in h.read_log()


def test_supervisor_killed_mid_run(own):
    c = Client(own)
    sid = c.run("x = 1")["id"]
    other = c.run("y = 2")["id"]
    sup = wait_for(own.supervisor_pid)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(Client(own).run,
                        "import time\ntime.sleep(1.5)\nprint('done')", sid)
        time.sleep(0.3)
        os.kill(sup, signal.SIGKILL)
        body = fut.result(timeout=10)
    # the in-flight execution ends with an error, not a hang or a 5xx
    assert "error" in body
    # its helpers died with it; httpd started a new supervisor
    assert wait_for(lambda: own.supervisor_pid() not in (None, sup))
    for s in (sid, other):
        assert c.post({"code": "print(x)", "id": s}).status_code == 404
    # new sessions work again
    assert wait_for(lambda: c.post({"code": "print('back')"}).status_code
                    == 200)
    assert c.run("print('back')")["stdout"] == "back\n"
    assert "PYX00202" in own.read_log()


def test_zygote_killed_is_replaced(own):
    c = Client(own)
    sid = c.run("z = 1")["id"]
    zygote = wait_for(own.zygote_pid)
    os.kill(zygote, signal.SIGKILL)
    # existing sessions are not the zygote's: they live on
    assert c.run("print(z)", sid)["stdout"] == "1\n"
    for _ in range(6):
        assert c.run("print('new')")["stdout"] == "new\n"


def test_restart_keeps_serving(own):
    c = Client(own)
    sid = c.run("kept = 1")["id"]
    own.signal("restart")
    own.wait_spares(1)
    assert wait_for(lambda: c.post({"code": "print('after')"}).status_code
                    == 200)
    assert c.run("print('after')")["stdout"] == "after\n"
    # a hard restart ends sessions
    assert c.post({"code": "print(kept)", "id": sid}).status_code == 404


def test_graceful_restart_keeps_sessions(own):
    """-k graceful keeps the supervisor, its helpers and the session
    table: a variable set before is read after, in the same helper."""
    c = Client(own)
    sid = c.run("kept = 'before'")["id"]
    sup = wait_for(own.supervisor_pid)
    helpers = set(own.helper_pids())
    own.signal("graceful")
    own.wait_spares(1)
    assert c.run("print(kept)", sid)["stdout"] == "before\n"
    assert own.supervisor_pid() == sup
    # the session's helper is the one it had
    assert helpers & set(own.helper_pids())
    assert "PYX00107" in own.read_log()
    # and twice in a row
    own.signal("graceful")
    own.wait_spares(1)
    assert c.run("kept += ', after'\nprint(kept)", sid)["stdout"] \
        == "before, after\n"


def test_graceful_restart_new_settings_apply_to_new_sessions(own):
    """A session keeps the limits it started with; the spares are
    replaced, so a session started after the reload has the new ones."""
    c = Client(own)
    old = c.run("import time")["id"]
    own.directives["PyExecTimeout"] = "1"
    own.write_config()
    own.signal("graceful")
    own.wait_spares(1)
    nap = "time.sleep(1.4)\nprint('awake')"
    assert c.run(nap, old)["stdout"] == "awake\n"
    new = c.run("import time")["id"]
    assert c.run(nap, new)["error"] == "Execution timeout. Session terminated."
    assert c.run("print('still here')", old)["stdout"] == "still here\n"


def test_graceful_restart_can_shrink_the_table_but_not_grow_it(own):
    """PyExecMaxSessions sizes the shared table. A graceful restart that
    lowers it keeps the sessions; one that raises it cannot keep the old
    table, and says so."""
    c = Client(own)
    sid = c.run("x = 1")["id"]
    limit = int(own.directives.get("PyExecMaxSessions", 100))
    own.directives["PyExecMaxSessions"] = str(limit // 2)
    own.write_config()
    own.signal("graceful")
    own.wait_spares(1)
    assert c.run("print(x)", sid)["stdout"] == "1\n"
    own.directives["PyExecMaxSessions"] = str(limit * 2)
    own.write_config()
    own.signal("graceful")
    own.wait_spares(1)
    assert wait_for(lambda: c.post({"code": "print(1)"}).status_code == 200)
    assert c.post({"code": "print(x)", "id": sid}).status_code == 404
    assert "PYX00105" in own.read_log()


def ipc_objects():
    """System V shared memory and semaphores, and POSIX shared memory."""
    found = set()
    for kind in ("shm", "sem"):
        with open("/proc/sysvipc/" + kind) as f:
            found |= {(kind, line.split()[1]) for line in list(f)[1:]}
    return found | {("posix", n) for n in os.listdir("/dev/shm")}


def test_stop_leaves_no_process_behind(request):
    before = ipc_objects()
    h = start(request, directives={"PyExecSpareHelpers": 3})
    c = Client(h)
    for _ in range(3):
        c.run("x = 1")
    sup = wait_for(h.supervisor_pid)
    pids = [sup] + h.helper_pids()
    assert len(pids) >= 5
    h.signal("stop")

    assert wait_for(lambda: not remaining(pids), timeout=10), remaining(pids)
    assert not [f for f in os.listdir(h.sockdir) if f.endswith(".sock")]
    # nor a shared memory segment or semaphore of its own
    assert ipc_objects() <= before, ipc_objects() - before


def test_graceful_restart_after_log_rotation_moves_the_kept_processes_log(own):
    """Log rotation renames the error log and reloads (a graceful
    restart): the kept supervisor and zygote must write to the new file,
    not on into the rotated one."""
    import socket as pysocket
    import struct
    c = Client(own)
    sid = c.run("x = 1")["id"]
    sup = wait_for(own.supervisor_pid)
    zygote = wait_for(own.zygote_pid)
    rotated = own.error_log + ".1"
    os.rename(own.error_log, rotated)
    own.signal("graceful")
    own.wait_spares(1)
    assert c.run("print(x)", sid)["stdout"] == "1\n"     # kept

    def log_target(pid):
        return os.readlink("/proc/%d/fd/2" % pid)
    assert wait_for(lambda: log_target(sup) == own.error_log), \
        log_target(sup)
    assert wait_for(lambda: log_target(zygote) == own.error_log), \
        log_target(zygote)
    # and what the supervisor logs lands there
    with pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM) as s:
        body = struct.pack("<IIiI", 0, 1, 0, 2)
        s.sendto(struct.pack("<IHHII", 0x58455950, pyhttpd.PROTO_VERSION,
                             11, 0, len(body)) + body,
                 os.path.join(own.sockdir, "supervisor.sock"))
    assert wait_for(lambda: "PYX00232" in own.read_log())
    with open(rotated) as f:
        assert "PYX00232" not in f.read()


def test_graceful_stop_leaves_no_process_behind(own):
    """-k graceful-stop does not reclaim other children: the supervisor
    ends with httpd's parent all the same."""
    c = Client(own)
    c.run("x = 1")
    main = own.main_pid()
    sup = wait_for(own.supervisor_pid)
    pids = [main, sup] + own.helper_pids()
    own.signal("graceful-stop", wait=False)
    assert wait_for(lambda: not remaining(pids), timeout=15), remaining(pids)
    assert not [f for f in os.listdir(own.sockdir) if f.endswith(".sock")]


def test_stop_after_a_graceful_restart_leaves_no_process_behind(own):
    """The supervisor kept over a graceful restart still ends with
    httpd."""
    c = Client(own)
    c.run("x = 1")
    own.signal("graceful")
    own.wait_spares(1)
    c.run("y = 2")
    sup = wait_for(own.supervisor_pid)
    pids = [sup] + own.helper_pids()
    own.signal("stop")
    assert wait_for(lambda: not remaining(pids), timeout=10), remaining(pids)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_helpers_run_unprivileged_when_httpd_starts_as_root(client):
    import pwd
    body = client.run("import random\nprint(random._os.getuid(), "
                      "random._os.getgid())")
    uid, gid = map(int, body["stdout"].split())
    assert uid == pwd.getpwnam("www-data").pw_uid
    assert uid != 0 and gid != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_works_started_as_an_ordinary_user(httpd):
    """The whole service, started by `nobody` instead of root."""
    script = r"""
import requests
from tests.integration import pyhttpd
h = pyhttpd.Httpd(build_dir=%r)
try:
    h.start(); h.wait_spares(1)
    r = requests.post(h.url + "/execute", timeout=10,
                      json={"code": "import random\nprint(random._os.getuid())"})
    print(r.status_code, r.json()["stdout"].strip())
    r = requests.post(h.url + "/execute", timeout=10,
                      json={"code": "while True: pass"})
    print(r.json()["error"])
finally:
    h.stop(); h.cleanup()
""" % httpd.build_dir
    import pwd
    r = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3",
                        "-c", script], capture_output=True, text=True,
                       cwd=pyhttpd.REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "200 %d" % pwd.getpwnam("nobody").pw_uid
    assert lines[1] == "Execution timeout. Session terminated."


def test_per_module_loglevel(request):
    """LogLevel pyexec:debug shows what the default level hides."""
    quiet = start(request, loglevel="warn")
    loud = start(request, loglevel="warn pyexec:debug")
    for h in (quiet, loud):
        Client(h).run("while True: pass")
    time.sleep(0.5)
    assert "PYX00230" in loud.read_log()
    assert "PYX00230" not in quiet.read_log()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_helpers_as_their_own_user(request):
    """PyExecUser: helpers run as another user than the workers; the
    supervisor keeps just enough to signal them and nothing of root."""
    import pwd
    import grp
    h = start(request, directives={"PyExecUser": "nobody",
                                   "PyExecGroup": "nogroup",
                                   "PyExecSpareHelpers": 2})
    c = Client(h)
    body = c.run("import random\nprint(random._os.getuid(), "
                 "random._os.getgid())")
    uid, gid = map(int, body["stdout"].split())
    assert uid == pwd.getpwnam("nobody").pw_uid
    assert gid == grp.getgrnam("nogroup").gr_gid
    # the spare that replaces the one taken is judged once it is ready: a
    # helper still setting itself up holds its user namespace's
    # capabilities until it confines itself, before it reads any request
    assert wait_for(lambda: (lambda st: st["PyExecHelpersStarting"] == "0"
                             and st["PyExecHelpersSpare"] == "2")(
                                 h.status_auto()))
    for pid in h.session_helper_pids():
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        assert "\nUid:\t%d\t" % uid in status
        assert "\nCapEff:\t0000000000000000" in status
    # the supervisor: www-data, with CAP_KILL, CAP_SETGID, CAP_SETUID only
    sup = h.supervisor_pid()
    with open("/proc/%d/status" % sup) as f:
        status = f.read()
    assert "\nUid:\t%d\t" % pwd.getpwnam("www-data").pw_uid in status
    assert "\nCapEff:\t00000000000000e0" in status
    # it can still end them from outside
    sid = c.session()
    assert c.run("while True: pass", sid)["error"] == \
        "Execution timeout. Session terminated."
    assert c.post({"code": "1", "id": sid}).status_code == 404
    assert c.run("print('next')")["stdout"] == "next\n"


def test_require_sandbox_refuses_to_run_unconfined(request):
    """A host without a required layer (simulated with the tests-only
    PyExecTestSkipLayers): helpers refuse to start, /execute answers 503
    at once, and the error log says why."""
    h = pyhttpd_start_without_waiting(request, {
        "PyExecTestSkipLayers": "seccomp", "PyExecRequireSandbox": "On"})
    c = Client(h)
    assert wait_for(lambda: "refusing to serve" in h.read_log(), timeout=10)
    assert wait_for(lambda: "required but missing: seccomp" in h.read_log(),
                    timeout=5)
    time.sleep(1)               # a few failures: workers stop waiting
    t0 = time.monotonic()
    r = c.post({"code": "print(1)"})
    assert r.status_code == 503
    assert "Retry-After" in r.headers
    assert time.monotonic() - t0 < 5
    assert "error" in r.json()
    # and it stays that way: no unconfined helper ever serves
    assert c.post({"code": "print(1)"}).status_code == 503


def test_without_require_sandbox_missing_layers_are_reported(request):
    h = start(request, directives={"PyExecTestSkipLayers": "seccomp",
                                   "PyExecRequireSandbox": "Off"})
    assert Client(h).run("print(1)")["stdout"] == "1\n"
    assert wait_for(lambda: "PYX00231" in h.read_log())
    line = [l for l in h.read_log().splitlines() if "PYX00231" in l][-1]
    assert "unavailable on this host: seccomp" in line
    assert "[pyexec:warn]" in line


def pyhttpd_start_without_waiting(request, directives):
    """Like conftest.start, for a server whose helpers never get ready."""
    h = pyhttpd.Httpd(directives=directives)
    h.start()

    def fin():
        h.stop()
        h.cleanup()
    request.addfinalizer(fin)
    return h


def test_helper_sockets_need_the_token(client, httpd):
    """Another program that can reach the socket directory (anything
    running as httpd's User: a CGI script, PHP) cannot run code in a
    session by connecting to its helper: EXEC must carry the helper's
    token, which only httpd's shared memory holds."""
    import socket as pysocket
    import struct
    sid = client.run("x = 'real'")["id"]
    code = b"x = 'forged'"
    forged = 0
    for name in os.listdir(httpd.sockdir):
        if not (name.startswith("h") and name.endswith(".sock")):
            continue
        for token in (b"\0" * 16, os.urandom(16), b""):
            # ticket 1: the session's next turn, as it has run once
            body = token + struct.pack("<I", 1) + code
            frame = struct.pack("<IHHII", 0x58455950, pyhttpd.PROTO_VERSION,
                                1, 1, len(body)) + body
            with pysocket.socket(pysocket.AF_UNIX,
                                 pysocket.SOCK_STREAM) as s:
                s.settimeout(5)
                try:
                    s.connect(os.path.join(httpd.sockdir, name))
                    s.sendall(frame)
                    answer = s.recv(64)
                except OSError:
                    answer = b""
            forged += 1
            assert answer == b"", (name, answer)
    assert forged >= 3
    assert client.run("print(x)", sid)["stdout"] == "real\n"


def test_supervisor_ignores_kills_from_outside_httpd(client, httpd):
    """A program that can reach the supervisor's socket but is not one of
    httpd's workers cannot end sessions with forged KILL datagrams."""
    import socket as pysocket
    import struct
    sid = client.run("kept = 1")["id"]
    sent = 0
    with pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM) as s:
        for name in os.listdir(httpd.sockdir):
            if not (name.startswith("h") and name.endswith(".sock")):
                continue
            slot, gen = map(int, name[1:-5].split("-"))
            body = struct.pack("<IIiI", slot, gen, 0, 2)     # timeout
            s.sendto(struct.pack("<IHHII", 0x58455950,
                                 pyhttpd.PROTO_VERSION, 11, 0,
                                 len(body)) + body,
                     os.path.join(httpd.sockdir, "supervisor.sock"))
            sent += 1
    assert sent >= 1
    assert wait_for(lambda: "PYX00232" in httpd.read_log(), timeout=5)
    assert client.run("print(kept)", sid)["stdout"] == "1\n"
