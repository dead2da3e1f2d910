"""Sessions: persistence, isolation, ordering, expiry, capacity."""
import concurrent.futures
import re
import time
import uuid

import pytest

from .conftest import Client, start
from .pyhttpd import wait_for

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                   r"-[0-9a-f]{12}$")


def test_new_ids_are_random_uuid4(client):
    ids = {client.run("pass")["id"] for _ in range(20)}
    assert len(ids) == 20
    for i in ids:
        assert UUID4.match(i), i


def test_variables_persist(client):
    sid = client.run("x = 5")["id"]
    assert client.run("x += 1\nprint(x)", sid)["stdout"] == "6\n"
    assert client.run("print(x * 2)", sid)["stdout"] == "12\n"


def test_functions_classes_imports_generators_persist(client):
    sid = client.session()
    client.run("import math\n"
               "def area(r):\n    return math.pi * r * r\n"
               "class Counter:\n"
               "    def __init__(self):\n        self.n = 0\n"
               "    def inc(self):\n        self.n += 1\n        return self.n\n"
               "c = Counter()\n"
               "def gen():\n    i = 0\n    while True:\n"
               "        yield i\n        i += 1\n"
               "g = gen()\n"
               "it = iter([10, 20, 30])\n"
               "sq = lambda v: v * v", sid)
    body = client.run("print(round(area(1), 5), c.inc(), c.inc(), next(g), "
                      "next(g), next(it), sq(4), math.floor(2.5))", sid)
    assert body["stdout"] == "3.14159 1 2 0 1 10 16 2\n"
    body = client.run("print(next(g), next(it), c.inc())", sid)
    assert body["stdout"] == "2 20 3\n"


def test_sessions_are_isolated(client):
    a = client.run("secret = 'a'")["id"]
    b = client.run("secret = 'b'")["id"]
    assert client.run("print(secret)", a)["stdout"] == "a\n"
    assert client.run("print(secret)", b)["stdout"] == "b\n"
    c = client.session()
    assert "NameError" in client.run("print(secret)", c)["stderr"]


def test_module_state_is_isolated(client):
    a = client.session()
    b = client.session()
    client.run("import json\njson.marker = 1", a)
    body = client.run("import json\nprint(hasattr(json, 'marker'))", b)
    assert body["stdout"] == "False\n"


def test_random_state_differs_between_sessions(client):
    outs = {client.run("import random\nprint(random.random())")["stdout"]
            for _ in range(5)}
    assert len(outs) == 5


def test_uppercase_id_is_the_same_session(client):
    sid = client.run("v = 3")["id"]
    assert client.run("print(v)", sid.upper())["stdout"] == "3\n"


def test_unknown_id_is_404(client):
    r = client.post({"code": "print(1)", "id": str(uuid.uuid4())})
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert list(r.json()) == ["error"]


def test_requests_for_one_session_run_one_after_the_other(client):
    sid = client.run("log = []")["id"]
    code = ("import time\nlog.append(('start', time.monotonic()))\n"
            "time.sleep(0.3)\nlog.append(('end', time.monotonic()))")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(Client(client.httpd).run, code, sid)
                for _ in range(4)]
        for f in futs:
            assert "error" not in f.result()
    body = client.run("print([k for k, _ in log])\n"
                      "print(all(log[i][1] <= log[i + 1][1] "
                      "for i in range(len(log) - 1)))", sid)
    assert body["stdout"] == str(["start", "end"] * 4) + "\nTrue\n"


def test_queued_request_gets_its_own_full_timeout(client):
    """A request waiting behind another is timed from when it starts."""
    sid = client.session()
    first = "import time\ntime.sleep(1.5)\nprint('first')"
    second = "import time\ntime.sleep(1.0)\nprint('second')"
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        f1 = ex.submit(Client(client.httpd).run, first, sid)
        time.sleep(0.2)
        f2 = ex.submit(Client(client.httpd).run, second, sid)
        assert f1.result()["stdout"] == "first\n"
        assert f2.result()["stdout"] == "second\n"


def test_many_sessions_in_parallel(client):
    def one(i):
        c = Client(client.httpd)
        sid = c.run("n = %d" % i)["id"]
        for _ in range(3):
            c.run("n += 1", sid)
        return i, sid, c.run("print(n)", sid)["stdout"]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, range(40)))
    assert len({sid for _, sid, _ in results}) == 40
    for i, _, out in results:
        assert out == "%d\n" % (i + 3)


@pytest.fixture(scope="module")
def small(request):
    """Two sessions at most, expiring after one idle second."""
    return start(request, directives={
        "PyExecMaxSessions": 2,
        "PyExecSpareHelpers": 1,
        "PyExecSessionIdleTimeout": 1,
    })


def test_idle_sessions_expire(small):
    c = Client(small)
    sid = c.run("x = 1")["id"]
    assert c.run("print(x)", sid)["stdout"] == "1\n"
    time.sleep(2.0)
    assert c.post({"code": "print(x)", "id": sid}).status_code == 404


def test_max_sessions_gives_503_with_retry_after(small):
    c = Client(small)
    time.sleep(1.5)             # let earlier sessions expire
    a = c.run("pass")["id"]
    b = c.run("pass")["id"]
    r = c.post({"code": "pass"})
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    assert "error" in r.json()
    # existing sessions still work
    assert c.run("print(1)", a)["stdout"] == "1\n"
    assert c.run("print(2)", b)["stdout"] == "2\n"
    # room comes back once they expire
    time.sleep(2.0)
    assert c.post({"code": "pass"}).status_code == 200


def test_session_created_in_one_child_served_by_another(request):
    """With two MPM children, a session works from both."""
    h = start(request, servers=2, threads=2, extra_conf=(
        'LogFormat "%P %{pyexec-session}n" pidlog\n'
        'CustomLog "logs/pid_log" pidlog\nKeepAlive Off\n'))
    c = Client(h)
    sid = c.run("hits = 0")["id"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda _: Client(h).run("hits += 1", sid), range(40)))
    assert c.run("print(hits)", sid)["stdout"] == "40\n"
    import os
    with open(os.path.join(h.root, "logs", "pid_log")) as f:
        pids = {line.split()[0] for line in f if sid[:8] in line}
    assert len(pids) >= 2, pids


@pytest.fixture(scope="module")
def quick(request):
    """One-second executions, to exercise queues and mass timeouts."""
    return start(request, directives={"PyExecTimeout": 1,
                                      "PyExecSpareHelpers": 4,
                                      "PyExecMaxQueue": 16})


def test_a_long_queue_gets_every_run_its_own_full_time(quick):
    """Eight requests for one session at once, each 0.6 s of a 1 s limit:
    all run, in turn, none is charged for the runs ahead of it."""
    c = Client(quick)
    sid = c.run("runs = 0")["id"]
    code = "import time\ntime.sleep(0.6)\nruns += 1\nprint('ok')"
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        bodies = list(ex.map(lambda _: Client(quick).run(code, sid),
                             range(8)))
    assert [b.get("stdout") for b in bodies] == ["ok\n"] * 8, bodies
    assert c.run("print(runs)", sid)["stdout"] == "8\n"


def test_the_first_of_two_requests_runs_first(quick):
    """A request sent while nothing runs in its session starts its clock
    at once; one sent just after it waits for it (and is told when its
    own run begins). Arriving together on two connections, the first must
    still run first, or its clock would count the other's run: twice
    0.6 s of a 1 s limit, both must finish."""
    c = Client(quick)
    sid = c.run("pass")["id"]
    code = "import time\ntime.sleep(0.6)\nprint('ok')"
    clients = [Client(quick), Client(quick)]
    for _ in range(8):
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            runs = list(ex.map(lambda cl: cl.run(code, sid), clients))
        assert [r.get("stdout") for r in runs] == ["ok\n", "ok\n"], runs


def test_mass_timeouts_leave_no_helper_running(quick):
    """Many executions timing out at the same moment: every one of their
    helpers is killed, even if the supervisor's queue overflows."""
    c = Client(quick)
    sids = [c.session() for _ in range(40)]
    assert len(quick.session_helper_pids()) >= 40
    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        bodies = list(ex.map(
            lambda s: Client(quick).run("import time\ntime.sleep(1000)", s),
            sids))
    assert all(b.get("error") == "Execution timeout. Session terminated."
               for b in bodies)
    # left: the spares (4), the queue test's session, a spawn or two
    assert wait_for(lambda: len(quick.session_helper_pids()) <= 7,
                    timeout=5), quick.session_helper_pids()


def test_more_worker_processes_than_a_helper_keeps_connections(request):
    """Each worker process keeps a connection to a session's helper for
    the next request; a helper keeps at most 8 and closes the one idle
    longest. Twelve prefork children taking turns on one session make it
    close kept connections under them, again and again: every request
    must still run, and run exactly once."""
    h = start(request, mpm="prefork", servers=12,
              directives={"PyExecMaxQueue": 16}, extra_conf=(
        'LogFormat "%P %{pyexec-session}n" pidlog\n'
        'CustomLog "logs/pid_log" pidlog\n'))
    c = Client(h)
    sid = c.run("n = 0")["id"]

    def burst(_):
        mine = Client(h)            # keep-alive: one child per client
        return [mine.run("n += 1", sid) for _ in range(10)]

    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            for bodies in ex.map(burst, range(12)):
                assert all(set(b) == {"id"} for b in bodies), bodies
    assert c.run("print(n)", sid)["stdout"] == "360\n"
    import os
    with open(os.path.join(h.root, "logs", "pid_log")) as f:
        pids = {line.split()[0] for line in f if sid[:8] in line}
    assert len(pids) > 8, pids      # more than the helper keeps
