"""One host of many (issue 13): PyExecRoute's ids and cookie, the 421 for
another host's session, and the health check a balancer asks.

The hosts together, behind a real front, are test_balancer.py's; here
one backend is enough to pin down what it does alone.
"""
import os
import re
import signal
import time

import pytest
import requests

from . import pyhttpd

HEALTH = '<Location "/pyexec-health">\n    SetHandler pyexec-health\n</Location>\n'
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def routed(request):
    from .conftest import start
    return start(request, directives={"PyExecRoute": "h1",
                                      "PyExecSpareHelpers": 2},
                 extra_conf=HEALTH)


@pytest.fixture(scope="module")
def plain(request):
    from .conftest import start
    return start(request, directives={"PyExecSpareHelpers": 1},
                 extra_conf=HEALTH)


def post(server, body, **kw):
    return requests.post(server.url + "/execute", json=body, timeout=30, **kw)


def executions(server):
    return int(server.status_auto()["PyExecExecutions"])


# --- ids and the cookie ----------------------------------------------------

def test_new_ids_carry_the_route(routed):
    r = post(routed, {"code": "x = 41"})
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    assert re.fullmatch(UUID + r"\.h1", sid), sid
    # the same id goes on naming the same session
    r = post(routed, {"code": "x += 1; print(x)", "id": sid})
    assert r.json() == {"id": sid, "stdout": "42\n"}


def test_route_cookie_only_when_a_session_starts(routed):
    r = post(routed, {"code": "pass"})
    cookie = r.headers.get("Set-Cookie")
    assert cookie == "PYEXEC_ROUTE=.h1; Path=/; HttpOnly; SameSite=Strict"
    # the route only: nothing of the id, which is a bearer secret
    assert r.json()["id"].split(".")[0] not in cookie
    assert r.json()["id"][:8] not in cookie
    r = post(routed, {"code": "pass", "id": r.json()["id"]})
    assert r.status_code == 200
    assert "Set-Cookie" not in r.headers
    # a refusal starts nothing, so it routes nothing
    r = requests.post(routed.url + "/execute", data="{",
                      headers={"Content-Type": "application/json"},
                      timeout=30)
    assert r.status_code == 400
    assert "Set-Cookie" not in r.headers


def test_plain_uuid_still_names_the_session(routed):
    sid = post(routed, {"code": "y = 7"}).json()["id"]
    r = post(routed, {"code": "print(y)", "id": sid.split(".")[0]})
    assert r.status_code == 200, r.text
    assert r.json()["stdout"] == "7\n"
    assert r.json()["id"] == sid


def test_get_and_delete_with_routed_ids(routed):
    sid = post(routed, {"code": "pass"}).json()["id"]
    r = requests.get(routed.url + "/execute",
                     headers={"PyExec-Session": sid}, timeout=30)
    assert r.status_code == 200 and r.json()["id"] == sid
    r = requests.get(routed.url + "/execute", params={"id": sid}, timeout=30)
    assert r.status_code == 200 and r.json()["id"] == sid
    r = requests.delete(routed.url + "/execute",
                        headers={"PyExec-Session": sid}, timeout=30)
    assert r.status_code == 204
    assert post(routed, {"code": "pass", "id": sid}).status_code == 404


# --- another host's session: 421 -------------------------------------------

def test_other_hosts_route_is_misdirected_and_runs_nothing(routed, tmp_path):
    sid = post(routed, {"code": "n = 1"}).json()["id"]
    other = sid.split(".")[0] + ".h2"
    before = executions(routed)
    r = post(routed, {"code": "n = 1000", "id": other})
    assert r.status_code == 421
    assert r.headers["Content-Type"] == "application/json"
    err = r.json()["error"]
    assert '"h2"' in err and '"h1"' in err, err
    assert "id" not in r.json()
    # nothing ran: not in the session, not anywhere on the host
    assert executions(routed) == before
    r = post(routed, {"code": "print(n)", "id": sid})
    assert r.json()["stdout"] == "1\n"
    # looking and ending are misdirected too, and end nothing
    for method in ("GET", "DELETE"):
        r = requests.request(method, routed.url + "/execute",
                             headers={"PyExec-Session": other}, timeout=30)
        assert r.status_code == 421, (method, r.text)
    assert post(routed, {"code": "print(n)", "id": sid}).json()["stdout"] \
        == "1\n"


def test_host_without_route_keeps_plain_ids(plain):
    r = post(plain, {"code": "z = 3"})
    sid = r.json()["id"]
    assert re.fullmatch(UUID, sid), sid
    assert "Set-Cookie" not in r.headers
    # an id with a route belongs to some host with routes, not this one
    r = post(plain, {"code": "z = 4", "id": sid + ".h1"})
    assert r.status_code == 421, r.text
    assert post(plain, {"code": "print(z)", "id": sid}).json()["stdout"] \
        == "3\n"


def test_bad_routes_refused_at_start(tmp_path):
    for bad in ("h.1", "a" * 33, "h;1"):
        h = pyhttpd.Httpd(directives={"PyExecRoute": bad})
        try:
            r = h.check_config()
            assert r.returncode != 0
            assert "PyExecRoute" in r.stderr + r.stdout
        finally:
            h.cleanup()


def test_front_and_route_together_refused():
    h = pyhttpd.Httpd(directives={"PyExecRoute": "h1",
                                  "PyExecFront": "balancer://pyexec"})
    try:
        with pytest.raises(RuntimeError):
            h.start(timeout=5)
        assert "PYX00109" in h.read_log()
    finally:
        h.stop()
        h.cleanup()


# --- the health check --------------------------------------------------------

def health(server, query=""):
    r = requests.get(server.url + "/pyexec-health" + query, timeout=10)
    assert r.headers["Content-Type"] == "application/json"
    return r.status_code, r.json()


def test_health_ok(routed):
    routed.wait_spares(1)
    st, body = health(routed)
    assert st == 200, body
    assert body["status"] == "ok" and body["route"] == "h1"
    assert body["can_start"] is True and "error" not in body
    assert body["max_sessions"] > body["sessions"] >= 0
    assert health(routed, "?sessions=keep") == (st, body)


def test_health_503_when_the_table_is_full(request):
    from .conftest import start
    h = start(request, directives={"PyExecMaxSessions": 2,
                                   "PyExecSpareHelpers": 1},
              extra_conf=HEALTH)
    assert health(h)[0] == 200
    for _ in range(2):
        assert post(h, {"code": "pass"}).status_code == 200
    # as the check says, so it is: no new session starts
    assert post(h, {"code": "pass"}).status_code == 503
    st, body = health(h)
    assert st == 503, body
    assert body["status"] == "unavailable" and "full" in body["error"]
    assert body["can_start"] is False
    # the balancer's question: keep this host, its sessions still run
    st, body = health(h, "?sessions=keep")
    assert st == 200, body
    assert body["can_start"] is False and "full" in body["error"]


def test_health_503_while_the_supervisor_is_stopped(request):
    from .conftest import start
    h = start(request, directives={"PyExecSpareHelpers": 1},
              extra_conf=HEALTH)
    assert health(h)[0] == 200
    sup = h.supervisor_pid()
    os.kill(sup, signal.SIGSTOP)
    try:
        st, body = pyhttpd.wait_for(lambda: (lambda x: x if x[0] == 503
                                             else None)(health(h)),
                                    timeout=10) or health(h)
        assert st == 503, body
        assert "supervisor" in body["error"]
        # a host that cannot serve is not kept either
        assert health(h, "?sessions=keep")[0] == 503
    finally:
        os.kill(sup, signal.SIGCONT)
    assert pyhttpd.wait_for(lambda: health(h)[0] == 200, timeout=10)


def test_health_503_when_no_interpreter_can_start():
    """A helper that never comes up (as when the sandbox is refused and
    every helper exits): the check says so, and no session starts."""
    h = pyhttpd.Httpd(directives={"PyExecHelper": "/bin/false"},
                      extra_conf=HEALTH)
    try:
        h.start()
        st, body = pyhttpd.wait_for(
            lambda: (lambda x: x if x[0] == 503 and "fail" in
                     x[1].get("error", "") else None)(health(h)),
            timeout=15) or health(h)
        assert st == 503, body
        assert body["status"] == "unavailable"
        assert "fail to start" in body["error"], body
        # with no session to keep, the balancer drops it too
        assert health(h, "?sessions=keep")[0] == 503
        assert h.status_auto()["PyExecHelpersFailing"] == "yes"
        assert post(h, {"code": "pass"}).status_code == 503
    finally:
        h.stop()
        h.cleanup()


def test_answers_are_as_the_openapi_document_says(routed):
    """The 421 and the routed ids are the API's documented answers."""
    import json as _json
    from .test_openapi import SPEC_PATH, check
    with open(SPEC_PATH) as f:
        spec = _json.load(f)
    r = post(routed, {"code": "pass"})
    check(spec, "POST", r)
    other = r.json()["id"].split(".")[0] + ".h9"
    check(spec, "POST", post(routed, {"code": "pass", "id": other}))
    for method in ("GET", "DELETE"):
        check(spec, method, requests.request(
            method, routed.url + "/execute", timeout=30,
            headers={"PyExec-Session": other}))
    check(spec, "GET", requests.get(routed.url + "/execute", timeout=30,
                                    headers={"PyExec-Session": r.json()["id"]}))


def test_dev_serve_honours_pyexec_route():
    """`PYEXEC_ROUTE=h5 scripts/dev serve`: a dev host that can stand
    behind a balancer by hand."""
    import subprocess
    port = pyhttpd.free_port()
    env = dict(os.environ, PYEXEC_ROUTE="h5", PYEXEC_PORT=str(port),
               PYEXEC_BUILD_DIR=pyhttpd.build_dir_default())
    proc = subprocess.Popen([os.path.join(pyhttpd.REPO, "scripts", "dev"),
                             "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    try:
        def answers():
            try:
                return requests.get(url + "/pyexec-health", timeout=2)
            except requests.ConnectionError:
                return None
        assert pyhttpd.wait_for(lambda: answers() is not None
                                and answers().status_code == 200,
                                timeout=120), "scripts/dev serve never answered"
        assert answers().json()["route"] == "h5"
        r = requests.post(url + "/execute", json={"code": "print(1)"},
                          timeout=30)
        assert r.json()["id"].endswith(".h5"), r.text
        assert r.headers["Set-Cookie"].startswith("PYEXEC_ROUTE=.h5;")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
