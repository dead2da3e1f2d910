"""Many hosts (README, "Many hosts"): backends with PyExecRoute behind a
front running mod_proxy_balancer on the shipped pyexec-balancer.conf,
each host a real httpd (hosts.py; in network namespaces of their own
when run as root).

Which host holds a session is judged by effect: a variable set in it
keeps its value, the route in its id names the host, and each backend's
PyExecExecutions counts exactly the runs sent to it.
"""
import base64
import collections
import ctypes
import json
import os
import random
import re
import signal
import struct
import sys
import tempfile
import time
import uuid
from http.client import HTTPConnection
from http.cookiejar import DefaultCookiePolicy

import pytest
import requests

from . import hosts
from .conftest import Client, start
from .pyhttpd import wait_for
from .test_sessions import UUID4

SESSIONS = 20        # per way of carrying the route (the numbers)
REQUESTS = 50        # per session, after the one that created it
# a new id: <uuid>.<the PyExecRoute of its host>
ROUTED_ID = re.compile(UUID4.pattern.rstrip("$")
                       + r"\.(?P<route>[A-Za-z0-9_-]{1,32})$")
ROUTE_COOKIE = "PYEXEC_ROUTE=.%s; Path=/; HttpOnly; SameSite=Strict"


# What the front tests add: a log of every copy of the query, and a rule
# that refuses a request before the front's fixups (which is where the
# front itself takes the id out of the query). The backends take more
# code than the front reads (the front then cannot route by the body).
FRONT_EXTRA = """
LogFormat "%r|%q|%U|%{QUERY_STRING}e|%>s" queries
CustomLog "logs/queries_log" queries
<Location "/execute">
    <If "%{QUERY_STRING} =~ /refuse/">
        Require all denied
    </If>
</Location>
"""
BACKEND_CODE_MAX = "1M"
# the most the front reads of a body to find its id: its PyExecMaxCodeSize
# (the default, 64 KiB) as JSON escapes may grow it (pyexec_request.h)
FRONT_BODY_MAX = 64 * 1024 * 6 + 4096


@pytest.fixture(scope="module")
def cluster(request):
    return _cluster(request, hosts.Cluster(
        directives={"PyExecMaxCodeSize": BACKEND_CODE_MAX},
        front_extra=FRONT_EXTRA))


@pytest.fixture(scope="module")
def stock(request):
    """The same hosts behind a front without mod_pyexec: what a stock
    mod_proxy_balancer does with the cookie and ?route= alone."""
    return _cluster(request, hosts.Cluster(front_role=False))


def _cluster(request, c):
    try:
        c.start()
    except Exception as e:
        logs = _logs(c)
        c.cleanup()
        pytest.fail("cluster did not start: %s\n%s" % (e, logs))
    def fin():
        c.stop()
        reports = [h.url for h in c.hosts() if h.sanitizer_reports()]
        if reports or request.session.testsfailed:
            sys.stderr.write(_logs(c))
        c.cleanup()
        if reports:
            pytest.fail("sanitizer reports in the error logs of %s"
                        % reports)
    request.addfinalizer(fin)
    return c


def _logs(c):
    return "".join("\n--- error log of %s ---\n%s\n"
                   % (h.url, h.read_log()[-5000:]) for h in c.hosts())


# -- talking to hosts -----------------------------------------------------

def no_cookies():
    """A client that keeps no cookie: the route travels some other way."""
    http = requests.Session()
    http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return http


def post(http, base, code, sid=None, params=None):
    body = {"code": code}
    if sid is not None:
        body["id"] = sid
    return http.post(base + "/execute", json=body, params=params, timeout=60)


def run(http, base, code, sid=None, params=None):
    """A run that must succeed: its answer."""
    r = post(http, base, code, sid, params)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    out = r.json()
    assert "error" not in out, out
    if sid is not None:
        assert out["id"] == sid, out
    return out


def look(http, base, sid):
    return http.get(base + "/execute", headers={"PyExec-Session": sid},
                    timeout=30)


def delete(http, base, sid, params=None):
    return http.delete(base + "/execute", headers={"PyExec-Session": sid},
                       params=params, timeout=30)


def route_of(sid):
    m = ROUTED_ID.match(sid)
    assert m, "not a routed session id: %r" % sid
    return m["route"]


def new_route(http, base, params=None):
    return route_of(run(http, base, "pass", params=params)["id"])


def executions(cluster):
    return {r: int(b.status_auto()["PyExecExecutions"])
            for r, b in cluster.backends.items()}


def assert_json_error(r, status):
    """An error in the API's form: that status, JSON with an "error",
    never an HTML page."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        (r.headers.get("Content-Type"), r.text[:500])
    assert "<html" not in r.text.lower()
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


def one_on_each(http, cluster):
    """{route: id} of a session on each host, made through the front,
    with v set to its host's route."""
    got = {}
    for _ in range(4 * len(cluster.routes)):
        sid = run(http, cluster.url, "pass")["id"]
        if route_of(sid) in got:
            delete(http, cluster.url, sid)
            continue
        got[route_of(sid)] = sid
        run(http, cluster.url, "v = %r" % route_of(sid), sid)
        if len(got) == len(cluster.routes):
            return got
    pytest.fail("new sessions did not reach every host: %s" % got)


def assert_keeps(http, cluster, sessions):
    for route, sid in sessions.items():
        assert run(http, cluster.url, "print(v)", sid)["stdout"] == \
            route + "\n"


# -- the roles --------------------------------------------------------------

def test_the_front_runs_no_code(cluster):
    """PyExecFront: no supervisor and no helper on the front; each
    backend has its own."""
    assert cluster.front.supervisor_pid() is None
    assert cluster.front.helper_pids() == []
    # its status page says what it is, and has no table to show
    status = cluster.front.status_auto()
    assert status == {"PyExecFront": "balancer://pyexec"}, status
    for b in cluster.backends.values():
        assert b.supervisor_pid() and b.zygote_pid()


def test_a_backend_routes_its_new_sessions(cluster):
    """PyExecRoute h1: ids <uuid>.h1, and the route cookie on the answer
    that created the session only."""
    http = no_cookies()
    base = cluster.backend("h1").url
    r = post(http, base, "x = 1")
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    assert route_of(sid) == "h1"
    assert r.headers.get("Set-Cookie") == ROUTE_COOKIE % "h1"
    for r, status in ((post(http, base, "x += 1", sid), 200),
                      (look(http, base, sid), 200),
                      (delete(http, base, sid), 204)):
        assert r.status_code == status, r.text
        assert "Set-Cookie" not in r.headers


def test_a_plain_uuid_is_still_an_id(cluster):
    """An id without a route is looked up (unknown: 404), not refused as
    malformed or as another host's."""
    r = post(no_cookies(), cluster.backend("h1").url, "pass",
             str(uuid.uuid4()))
    assert_json_error(r, 404)


# -- stickiness -------------------------------------------------------------

def _clients(cluster, way):
    """SESSIONS new sessions through the front, each with how its later
    requests carry the route: [(client, id, query parameters)]."""
    shared = no_cookies()
    out = []
    for _ in range(SESSIONS):
        http = requests.Session() if way == "cookie" else shared
        sid = run(http, cluster.url, "n = 0")["id"]
        route = route_of(sid)
        if way == "cookie":
            assert http.cookies.get("PYEXEC_ROUTE") == "." + route
        else:
            assert not http.cookies
        out.append((http, sid, {"route": "." + route}
                    if way == "query" else None))
    return out


@pytest.mark.parametrize("front,way", [
    ("module", "cookie"), ("module", "query"), ("module", "body"),
    ("stock", "cookie"), ("stock", "query")])
def test_sessions_stay_on_their_host(request, front, way):
    """20 sessions, 50 requests each, shuffled: every one answered by
    the host in its id, with its counter where it left it; both hosts got
    new sessions. Ways: a cookie jar; ?route=.<name> and no cookie; the
    id in the body alone (the front role). Through the front with the
    module, and through a stock one (cookie and query: the body needs
    the module)."""
    cluster = request.getfixturevalue("cluster" if front == "module"
                                      else "stock")
    before = executions(cluster)
    t0 = time.monotonic()
    clients = _clients(cluster, way)
    placed = collections.Counter(route_of(sid) for _, sid, _ in clients)
    assert set(placed) == set(cluster.routes), placed
    for k in range(1, REQUESTS + 1):
        # in a new order each round: a balancer taking turns between the
        # hosts would otherwise meet each session where it was made
        random.shuffle(clients)
        for http, sid, params in clients:
            out = run(http, cluster.url, "n += 1\nprint(n)", sid, params)
            assert out["stdout"] == "%d\n" % k, (sid, out)
    took = time.monotonic() - t0
    after = executions(cluster)
    assert {r: after[r] - before[r] for r in cluster.routes} == \
        {r: placed[r] * (REQUESTS + 1) for r in cluster.routes}
    for http, sid, params in clients:
        assert delete(http, cluster.url, sid, params).status_code == 204
    sys.stderr.write("\n%s: %d requests in %.1f s\n"
                     % (way, SESSIONS * (REQUESTS + 1), took))


def test_new_sessions_are_balanced_whatever_the_cookie(cluster):
    """A new session ignores the PYEXEC_ROUTE cookie the client holds
    from its last one: both hosts still get new sessions."""
    http = requests.Session()
    routes = [new_route(http, cluster.url) for _ in range(8)]
    assert http.cookies.get("PYEXEC_ROUTE")
    assert set(routes) == set(cluster.routes), routes


def test_an_explicit_route_places_a_new_session(cluster):
    http = no_cookies()
    for route in cluster.routes:
        assert {new_route(http, cluster.url, {"route": "." + route})
                for _ in range(4)} == {route}


def test_the_id_wins_over_a_stale_cookie(cluster):
    """A cookie naming another host does not move a session: the front
    routes by the id."""
    sessions = one_on_each(no_cookies(), cluster)
    for route, sid in sessions.items():
        other = next(r for r in cluster.routes if r != route)
        http = requests.Session()
        http.cookies.set("PYEXEC_ROUTE", "." + other)
        r = post(http, cluster.url, "print(v)", sid)
        assert "PYEXEC_ROUTE=." + other in r.request.headers.get("Cookie", "")
        assert r.status_code == 200, r.text
        assert r.json()["stdout"] == route + "\n"


def test_backends_see_the_client_not_the_front(cluster):
    """mod_remoteip on the backends: the client's own address (per-client
    limits count clients, not the front)."""
    if not cluster.netns:
        pytest.skip("loopback hosts: the client and the front are both "
                    "127.0.0.1")
    sid = run(no_cookies(), cluster.url, "pass")["id"]
    b = cluster.backend(route_of(sid))
    line = wait_for(lambda: [l for l in b.read_access_log().splitlines()
                             if "POST /execute" in l and sid[:8] in l],
                    timeout=5)
    assert line and line[0].split()[0] == cluster.client_address, line


# -- a request for the wrong host -----------------------------------------

def test_a_misrouted_request_runs_nothing(cluster):
    """Straight to the wrong backend: 421 JSON for POST, GET and DELETE;
    that host ran nothing and made no session; the session is intact."""
    http = no_cookies()
    h1, h2 = cluster.backend("h1"), cluster.backend("h2")
    sid = run(http, h1.url, "n = 5")["id"]
    assert route_of(sid) == "h1"
    before = h2.status_auto()
    refusal = assert_json_error(post(http, h2.url, "n += 100", sid), 421)
    assert "h1" in refusal["error"] and "h2" in refusal["error"], refusal
    assert_json_error(look(http, h2.url, sid), 421)
    assert_json_error(delete(http, h2.url, sid), 421)
    assert_json_error(http.delete(h2.url + "/execute", params={"id": sid},
                                  timeout=30), 421)
    after = h2.status_auto()
    for key in ("PyExecExecutions", "PyExecSessionsCreated",
                "PyExecSessionsLive", "PyExecSessionsEndedDeleted"):
        assert after[key] == before[key], key
    state = look(http, h1.url, sid)
    assert state.status_code == 200 and state.json()["executions"] == 1, \
        state.text
    assert run(http, h1.url, "print(n)", sid)["stdout"] == "5\n"
    assert run(http, cluster.url, "print(n)", sid)["stdout"] == "5\n"


# -- what only the front's module does ----------------------------------------

def test_ids_stay_out_of_the_fronts_logs(cluster):
    """Whatever becomes of the request on the front, refused before its
    fixups or proxied, no copy of its query that the front logs holds the
    id; the backend gets it in the PyExec-Session header."""
    http = no_cookies()
    sids = list(one_on_each(http, cluster).values())
    for sid in sids:
        r = http.get(cluster.url + "/execute", timeout=30,
                     params={"id": sid, "refuse": "1"})
        assert r.status_code == 403, r.text
        r = http.get(cluster.url + "/execute", params={"id": sid}, timeout=30)
        assert r.status_code == 200 and r.json()["id"] == sid, r.text
    log_path = os.path.join(cluster.front.root, "logs", "queries_log")
    text = wait_for(lambda: (lambda t: t if t.count("\n") >= 4 else None)(
        open(log_path).read()), timeout=10)
    assert text, "nothing logged"
    for sid in sids:
        assert sid.split(".")[0] not in text, text
        assert sid[:8] in text             # the prefix, as everywhere
        b = cluster.backend(route_of(sid))
        assert sid.split(".")[0] not in b.read_access_log()


def test_a_route_in_the_path_is_refused(cluster):
    """mod_proxy_balancer looks for route= in the path first, where it
    would beat the id's: the front refuses it, in JSON, running nothing."""
    http = no_cookies()
    sessions = one_on_each(http, cluster)
    before = executions(cluster)
    for route, sid in sessions.items():
        other = next(r for r in cluster.routes if r != route)
        r = http.post(cluster.url + "/execute/route=." + other,
                      json={"code": "v = 'moved'", "id": sid}, timeout=30)
        assert_json_error(r, 400)
    assert executions(cluster) == before
    for route, sid in sessions.items():
        assert run(http, cluster.url, "print(v)", sid)["stdout"] \
            == route + "\n"


def test_a_body_the_front_cannot_read_keeps_its_cookie(cluster):
    """A body longer than the front reads (the backends take more code
    than the front's PyExecMaxCodeSize) carries no route the front can
    see: the cookie still routes it, every time."""
    code = "n += 1\n" + "#" * (400 * 1024) + "\nprint(n)"
    for route in cluster.routes:
        http = requests.Session()
        sid = run(http, cluster.url, "n = 0", params={"route": "." + route})
        sid = sid["id"]
        assert route_of(sid) == route
        for k in range(1, 5):
            out = run(http, cluster.url, code, sid)
            assert out["stdout"] == "%d\n" % k, out


def test_a_body_crossing_the_fronts_limit_in_one_read_arrives_whole(
        cluster):
    """The front's last read of a body that goes on past its limit may
    bring several pieces at once, the first already over the limit. The
    body still reaches the backend byte for byte and no child of the
    front dies. (The front once grew its copy to the limit and copied
    everything read into it there, kilobytes past the end: bodies came
    out spliced, workers crashed.) The body is chunked, so the front
    reads it (one with a longer Content-Length it leaves alone), and the
    client stops short of the limit and then sends the rest at once: the
    front's next read takes two full buffers of it."""
    rng = random.Random(16)
    host, port = cluster.url.split("//")[1].rsplit(":", 1)
    shape = json.dumps({"code": 's = "%s"\nprint(len(s), sum(map(ord, s)))'})
    for short in (100, 1000, 2000, 3000, 4000):
        # letters, digits, + and /: nothing JSON or Python escapes
        size = FRONT_BODY_MAX + 16 * 1024 - len(shape) + 2
        text = base64.b64encode(rng.randbytes(size)).decode()[:size]
        body = shape.replace("%s", text, 1).encode()
        conn = HTTPConnection(host, int(port), timeout=60)
        try:
            conn.putrequest("POST", "/execute")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for part in (body[:FRONT_BODY_MAX - short],
                         body[FRONT_BODY_MAX - short:]):
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                time.sleep(0.2)
            conn.send(b"0\r\n\r\n")
            r = conn.getresponse()
            answer = r.read().decode()
        finally:
            conn.close()
        assert r.status == 200, (short, r.status, answer[:300])
        assert json.loads(answer)["stdout"] == "%d %d\n" % (
            len(text), sum(map(ord, text))), (short, answer[:300])
    assert "exit signal" not in cluster.front.read_log()


class Created:
    """The names created in a directory while the block runs (inotify:
    a file made and removed again at once is seen all the same)."""
    IN_CREATE, IN_NONBLOCK = 0x100, 0o4000

    def __init__(self, path):
        self.path = path
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = -1

    def __enter__(self):
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        assert self.libc.inotify_add_watch(
            self.fd, self.path.encode(), self.IN_CREATE) >= 0
        return self

    def names(self):
        names = []
        while True:
            try:
                events = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            while events:
                length = struct.unpack_from("iIII", events)[3]
                names.append(events[16:16 + length].rstrip(b"\0").decode())
                events = events[16 + length:]

    def __exit__(self, *exc):
        os.close(self.fd)


def test_the_front_writes_no_body_to_disk(cluster):
    """A front that read a body gives the same bytes back to mod_proxy,
    which would then no longer trust their length and spool every body
    over 16 KiB to a temporary file; the front has it stream them from
    memory instead. A body longer than the front reads, by its
    Content-Length, is not read at all. Judged by effect: no file
    appears in the temporary directory while bodies of every size go
    through, each arriving whole."""
    http = requests.Session()
    sid = run(http, cluster.url, "n = 0")["id"]
    with Created(tempfile.gettempdir()) as created:
        for size in (20 * 1024, 100 * 1024, FRONT_BODY_MAX - 1024,
                     FRONT_BODY_MAX + 1024, 900 * 1024):
            text = "x" * size
            out = run(http, cluster.url,
                      's = "%s"\nprint(len(s))' % text, sid)
            assert out["stdout"] == "%d\n" % size, (size, out)
        spooled = [n for n in created.names() if n.startswith("modproxy")]
    assert spooled == []


def test_a_body_longer_than_any_backend_takes_is_refused_unsent(cluster):
    """A client that declares a body longer than the backend takes, and
    waits for 100 Continue before it sends it (as curl does for large
    bodies), gets the backend's 413 without sending a byte: the front
    does not ask for a body it could not route by. (It once read such
    bodies whole, spooled to a temporary file, before the backend saw
    the request.)"""
    host, port = cluster.url.split("//")[1].rsplit(":", 1)
    declared = 64 * 1024 * 1024
    conn = HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/execute")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(declared))
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        # a 100 Continue here would be skipped, and the wait for the
        # final answer time out
        r = conn.getresponse()
        answer = r.read().decode()
    finally:
        conn.close()
    assert r.status == 413, (r.status, answer[:300])
    assert str(declared) in json.loads(answer)["error"]


def test_looking_and_ending_through_the_front(cluster):
    """GET and DELETE of a session reach its host by the id alone, in
    the header or in ?id= (each asked three times in a row: taking turns
    between hosts cannot pass)."""
    http = no_cookies()
    for route, sid in one_on_each(http, cluster).items():
        for _ in range(3):
            for r in (look(http, cluster.url, sid),
                      http.get(cluster.url + "/execute", params={"id": sid},
                               timeout=30)):
                assert r.status_code == 200 and r.json()["id"] == sid, r.text
        r = http.delete(cluster.url + "/execute", params={"id": sid},
                        timeout=30)
        assert r.status_code == 204, r.text
        assert_json_error(look(http, cluster.url, sid), 404)


# -- health -----------------------------------------------------------------

def health(base, keep=False):
    """The health check: the strict question (can a session start
    here?), or with keep the shipped front's (should the balancer keep
    this host?)."""
    return requests.get(base + "/pyexec-health",
                        params={"sessions": "keep"} if keep else None,
                        timeout=10)


def health_turning(base, status, timeout):
    """The first answer of base's health check with that status within
    timeout seconds, or None. (A Response is false when it is an error:
    wait_for gets a list.)"""
    found = wait_for(lambda: [r for r in [health(base)]
                              if r.status_code == status], timeout, step=0.2)
    return found[0] if found else None


def assert_healthy(r):
    assert r is not None, "no healthy answer in time"
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/json")
    assert r.json()["status"] == "ok", r.text


def assert_unavailable(r):
    body = assert_json_error(r, 503)
    assert body["status"] == "unavailable", body


def test_a_healthy_backend_says_so(cluster):
    for b in cluster.backends.values():
        assert_healthy(health(b.url))


@pytest.fixture(scope="module")
def small(request):
    """A host of its own with room for two sessions."""
    return start(request, directives={"PyExecMaxSessions": 2},
                 extra_conf=hosts.HEALTH_CONF)


def test_health_with_the_table_full(small):
    c = Client(small)
    assert_healthy(health(small.url))
    a, b = c.session(), c.session()
    try:
        assert_unavailable(health(small.url))
        # full but holding sessions: the balancer keeps it, for them
        r = health(small.url, keep=True)
        assert_healthy(r)
        assert r.json()["can_start"] is False, r.text
        assert c.session_delete(a).status_code == 204
        assert_healthy(health_turning(small.url, 200, timeout=5))
    finally:
        c.session_delete(a)
        c.session_delete(b)


def stopped_supervisor(h):
    """SIGSTOP h's supervisor; a function that SIGCONTs it."""
    pid = h.supervisor_pid()
    assert pid
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def test_health_with_the_supervisor_stopped(small):
    """No heartbeat from the supervisor for over ~2 s: unavailable, to
    the balancer too (it cannot serve its sessions either); it goes on:
    healthy again."""
    assert_healthy(health(small.url))
    resume = stopped_supervisor(small)
    try:
        r = health_turning(small.url, 503, timeout=10)
        assert r is not None, "still healthy with the supervisor stopped"
        assert_unavailable(r)
        assert_unavailable(health(small.url, keep=True))
    finally:
        resume()
    r = health_turning(small.url, 200, timeout=10)
    assert r is not None, "not healthy again with the supervisor going on"
    assert_healthy(r)


def test_the_health_check_follows_a_backend_that_cannot_start_sessions(
        cluster):
    """A backend whose supervisor is stopped fails the front's health
    check and gets no new session; going on, it is back."""
    resume = stopped_supervisor(cluster.backend("h2"))
    try:
        cluster.wait_member("h2", up=False, timeout=20)
        http = no_cookies()
        assert {new_route(http, cluster.url) for _ in range(4)} == {"h1"}
    finally:
        resume()
    cluster.wait_member("h2", up=True, timeout=20)


# -- drain, stop, start -----------------------------------------------------

def test_a_drained_backend_keeps_its_sessions(cluster):
    http = no_cookies()
    sessions = one_on_each(http, cluster)
    cluster.set_drain("h2", True)
    try:
        assert {new_route(http, cluster.url) for _ in range(6)} == {"h1"}
        assert_keeps(http, cluster, sessions)
    finally:
        cluster.set_drain("h2", False)
    assert "h2" in {new_route(http, cluster.url) for _ in range(6)}
    assert_keeps(http, cluster, sessions)


def assert_host_down_error(r, sid):
    """The front's own error for a session whose host is down: 503 JSON,
    about that session if about any, never another host's answer."""
    body = assert_json_error(r, 503)
    assert body.get("id", sid) == sid, body
    assert "stdout" not in body, body


def test_a_stopped_backend(cluster):
    """h2 stopped: its sessions get a clear 503 JSON error through the
    front, h1's keep their variables, new sessions all go to h1, the
    health check marks h2 down; started again, it is marked up and gets
    new sessions (its old ones are gone: 404 from h2 itself)."""
    http = no_cookies()
    sessions = one_on_each(http, cluster)
    cluster.stop_backend("h2")
    try:
        assert_host_down_error(post(http, cluster.url, "print(v)",
                                    sessions["h2"]), sessions["h2"])
        cluster.wait_member("h2", up=False)
        assert_host_down_error(post(http, cluster.url, "print(v)",
                                    sessions["h2"]), sessions["h2"])
        assert_keeps(http, cluster, {"h1": sessions["h1"]})
        assert {new_route(http, cluster.url) for _ in range(6)} == {"h1"}
    finally:
        cluster.start_backend("h2")
    cluster.wait_member("h2", up=True)
    assert_json_error(post(http, cluster.url, "print(v)", sessions["h2"]),
                      404)
    assert "h2" in {new_route(http, cluster.url) for _ in range(6)}
    assert_keeps(http, cluster, {"h1": sessions["h1"]})


@pytest.mark.parametrize("front", ["module", "stock"])
def test_streamed_runs_through_the_front(request, front):
    """Accept: text/event-stream through mod_proxy_balancer on the shipped
    config: the events arrive as they are sent, not when the run ends,
    the session sticks (by the id in the body with the module, by
    ?route= on a stock front), and the result is the plain answer."""
    from urllib.parse import urlsplit
    from .sse import Stream
    cluster = request.getfixturevalue("cluster" if front == "module"
                                      else "stock")
    http = no_cookies()
    sid = run(http, cluster.url, "n = 41")["id"]
    where = urlsplit(cluster.url)
    path = "/execute" + ("" if front == "module"
                         else "?route=." + route_of(sid))
    s = Stream(where.port, {"code": "import time\nprint('early')\n"
                                    "time.sleep(0.6)\nn += 1\nprint(n)",
                            "id": sid}, host=where.hostname, path=path)
    assert s.status == 200, s.response.read()[:300]
    events = s.events()
    first = next(e for e in events if e.name == "stdout")
    assert first.json() == {"text": "early\n"}
    assert events[-1].name == "result"
    assert events[-1].json() == {"id": sid, "stdout": "early\n42\n"}
    assert events[-1].at - first.at > 0.5, events
