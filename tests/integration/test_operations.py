"""What operators see and use: mod_status's section, the access log
notes, and the session resource (GET and DELETE ?id=; the
PyExec-Session header and ids kept out of logs are test_ids_redacted.py)."""
import datetime
import os
import re
import time

import pytest
import requests

from . import pyhttpd
from .conftest import Client, start
from .pyhttpd import wait_for


@pytest.fixture
def own(request):
    return start(request, directives={"PyExecSpareHelpers": 2})


# --- GET and DELETE of a session -------------------------------------------

def test_get_tells_a_sessions_state(client):
    t0 = datetime.datetime.now(datetime.timezone.utc)
    sid = client.run("x = 1")["id"]
    client.run("big = bytearray(30_000_000)", sid)
    r = client.session_get(sid)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["id"] == sid
    assert body["executions"] == 2
    assert body["running"] is False
    # the 30 MB it holds, and not wildly more
    assert 30_000_000 <= body["memory_bytes"] < 80_000_000
    created = datetime.datetime.fromisoformat(
        body["created"].replace("Z", "+00:00"))
    last = datetime.datetime.fromisoformat(
        body["last_used"].replace("Z", "+00:00"))
    slack = datetime.timedelta(seconds=2)
    assert t0 - slack <= created <= last <= t0 + datetime.timedelta(
        seconds=30)
    assert body["limits"] == {"timeout_s": 2.0,
                              "max_output_bytes": 1048576,
                              "max_display_bytes": 4194304,
                              "max_code_bytes": 65536}
    # looking does not count as using
    assert client.session_get(sid).json()["last_used"] == body["last_used"]


def test_get_shows_a_session_running(client):
    import threading
    sid = client.run("import time")["id"]
    t = threading.Thread(target=client.run, args=("time.sleep(0.8)", sid))
    t.start()
    try:
        assert wait_for(lambda: client.session_get(sid).json()["running"],
                        timeout=5)
    finally:
        t.join()
    assert client.session_get(sid).json()["running"] is False


def test_delete_ends_the_session_and_its_helper_at_once(own):
    c = Client(own)
    sid = c.run("x = 1")["id"]
    assert wait_for(lambda: own.status_auto()["PyExecHelpersSpare"] == "2",
                    timeout=5)
    before = set(own.helper_pids())
    r = c.session_delete(sid)
    assert r.status_code == 204 and r.content == b""
    assert c.post({"code": "print(x)", "id": sid}).status_code == 404
    assert c.session_get(sid).status_code == 404
    assert c.session_delete(sid).status_code == 404
    # its helper process is gone within a moment
    gone = wait_for(lambda: before - set(own.helper_pids()), timeout=5)
    assert len(gone) == 1
    assert not pyhttpd.remaining(gone)
    assert own.status_auto()["PyExecSessionsEndedDeleted"] == "1"


def test_delete_during_a_run_ends_it(client):
    import threading
    sid = client.run("import time")["id"]
    out = {}
    t = threading.Thread(target=lambda: out.update(
        client.run("time.sleep(5)\nprint('finished')", sid)))
    t.start()
    assert wait_for(lambda: client.session_get(sid).json()["running"],
                    timeout=5)
    started = time.monotonic()
    assert client.session_delete(sid).status_code == 204
    t.join(10)
    assert time.monotonic() - started < 3
    assert out["error"] == "Session deleted during the execution."
    assert "stdout" not in out


@pytest.mark.parametrize("query", ["", "?id=", "?id=nope",
                                   "?id=0b7c2c5e-3f0e-4a52",
                                   "?session=0b7c2c5e-3f0e-4a52-9a1e-1f2a3b4c5d6e"])
def test_session_resource_needs_a_valid_id(client, query):
    for method in ("GET", "DELETE"):
        r = requests.request(method, client.url + query, timeout=10)
        if query == "":
            assert r.status_code == 405
            assert r.headers["Allow"] == "POST, GET, DELETE"
        else:
            assert r.status_code == 400, (method, query, r.text)
        assert "error" in r.json()


def test_unknown_ids_are_404_and_nothing_lists_sessions(client):
    import uuid
    sid = client.run("x = 1")["id"]
    other = str(uuid.uuid4())
    assert client.session_get(other).status_code == 404
    assert client.session_delete(other).status_code == 404
    # the session list is not anywhere to be found
    for path in ("", "?id=*", "?list=1", "/sessions"):
        r = requests.get(client.url + path, timeout=10)
        assert sid not in r.text


# --- mod_status ------------------------------------------------------------

def test_status_auto_counts_what_happened(own):
    c = Client(own)
    assert wait_for(lambda: own.status_auto()["PyExecHelpersSpare"] == "2",
                    timeout=5)
    a = c.run("x = 1")["id"]
    b = c.run("y = 1")["id"]
    c.run("x += 1", a)
    c.session_delete(b)
    t = c.run("while True: pass")          # ends by timeout
    m = c.run("b = bytearray(10**10)")     # ends by memory
    assert "Session terminated" in t["error"] and "Memory" in m["error"]
    s = wait_for(lambda: (lambda s: s if s["PyExecSessionsEndedTimeout"]
                          == "1" else None)(own.status_auto()), timeout=5)
    assert s["PyExecSessionsLive"] == "1"
    assert s["PyExecSessionsCreated"] == "4"
    assert s["PyExecExecutions"] == "5"
    assert s["PyExecSessionsEndedDeleted"] == "1"
    assert s["PyExecSessionsEndedMemory"] == "1"
    assert s["PyExecSessionsEndedIdle"] == "0"
    assert s["PyExecSessionsEndedCrash"] == "0"
    assert s["PyExecSessionsEndedEvicted"] == "0"
    assert s["PyExecHelpersBusy"] == "0"
    assert int(s["PyExecHelpersSpawned"]) >= 6
    assert s["PyExecRateLimited"] == "0"
    assert "seccomp" in s["PyExecSandbox"] and "netns" in s["PyExecSandbox"]
    # together the two lines name every layer, each once
    held = s["PyExecSandbox"].split()
    lacking = s["PyExecSandboxUnavailable"].split()
    assert lacking == ["none"] or not set(held) & set(lacking), s
    assert len(set(held) | set(lacking) - {"none"}) == len(pyhttpd.SANDBOX_LAYERS), s
    assert s["PyExecSessionsMax"] == "100"


def test_status_shows_a_busy_helper(own):
    import threading
    c = Client(own)
    sid = c.run("import time")["id"]
    t = threading.Thread(target=c.run, args=("time.sleep(1)", sid))
    t.start()
    try:
        assert wait_for(lambda: own.status_auto()["PyExecHelpersBusy"] == "1",
                        timeout=5)
    finally:
        t.join()


def test_status_counts_rate_limited_requests(request):
    h = start(request, directives={"PyExecRateLimit": "1/m 1"})
    c = Client(h)
    assert c.post({"code": "print(1)"}).status_code == 200
    assert c.post({"code": "print(1)"}).status_code == 429
    assert h.status_auto()["PyExecRateLimited"] == "1"


def test_status_html_has_a_section(own):
    Client(own).run("x = 1")
    r = requests.get(own.url + "/server-status", timeout=10)
    assert r.status_code == 200
    html = r.text
    assert "<h2>mod_pyexec</h2>" in html
    m = re.search(r"<th scope=\"row\">Live sessions</th><td>(\d+) of at "
                  r"most (\d+)</td>", html)
    assert m and m.groups() == ("1", "100")
    assert "Sessions ended: timeout" in html
    assert "seccomp" in html


# --- the access log ---------------------------------------------------------

def test_access_log_notes(own):
    c = Client(own)
    sid = c.run("x = 1")["id"]
    c.session_get(sid)
    c.run("while True: pass", sid)
    c.session_get(sid)
    prefix = sid[:8]            # what the note may carry of an id

    def logged():
        # httpd writes an access-log line after the answer has gone out
        found = [l for l in own.read_access_log().splitlines()
                 if "/execute" in l and prefix in l]
        return found if len(found) >= 4 else None
    lines = wait_for(logged, timeout=5)
    assert lines, own.read_access_log()
    ok, info, timeout, gone = lines[:4]
    assert re.search(r" %s ok \d+\.\d{3}$" % prefix, ok), ok
    assert re.search(r" %s timeout 2000\.000$" % prefix, timeout), timeout
    assert re.search(r" %s info -$" % prefix, info), info
    assert re.search(r" 404 \d+ %s rejected -$" % prefix, gone), gone
    assert sid not in own.read_access_log()


# --- an operator's listing ----------------------------------------------------

def test_a_listing_only_where_an_operator_puts_one(request):
    h = start(request, extra_conf="""
<Location "/admin/sessions">
    SetHandler pyexec-sessions
    Require ip 127.0.0.1
</Location>
<Location "/closed/sessions">
    SetHandler pyexec-sessions
    Require all denied
</Location>
""")
    c = Client(h)
    a = c.run("x = 1")["id"]
    b = c.run("y = 2")["id"]
    c.run("x += 1", a)
    assert c.session_delete(b).status_code == 204
    r = requests.get(h.url + "/admin/sessions", timeout=10)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    sessions = r.json()["sessions"]
    assert [s["id"] for s in sessions] == [a]
    assert sessions[0]["executions"] == 2
    assert sessions[0] == c.session_get(a).json()
    # its access control is the operator's <Location>
    r = requests.get(h.url + "/closed/sessions", timeout=10)
    assert r.status_code == 403 and a not in r.text
    r = requests.post(h.url + "/admin/sessions", timeout=10)
    assert r.status_code == 405 and a not in r.text
    # and without one, no URL lists anything
    assert requests.get(h.url + "/pyexec-sessions",
                        timeout=10).status_code == 404


# --- the standard Mutex directive ----------------------------------------------

def test_the_mutex_directive_configures_the_registry_lock(request):
    """flock keeps its lock file (fcntl unlinks it at once), which shows
    where the lock went."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="pyexec-mutex-")
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    os.chmod(d, 0o755)          # the workers reopen it as User
    h = start(request, extra_conf="Mutex flock:%s pyexec-registry\n" % d)
    c = Client(h)
    sid = c.run("x = 1")["id"]
    assert c.run("print(x)", sid)["stdout"] == "1\n"
    locks = [n for n in os.listdir(d) if n.startswith("pyexec-registry")]
    assert locks, os.listdir(d)
