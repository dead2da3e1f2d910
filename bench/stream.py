"""The stream phase of scripts/dev bench (`python3 -m bench --only stream`
alone): issue 15's streamed runs, POST /execute with Accept:
text/event-stream, read as a client reads them, by the Server-Sent Events
parser of the tests (tests/integration/sse.py). One httpd, and measures:

  clock    that the helper's CLOCK_MONOTONIC is this process's, which the
           delays below rest on: the helper is in a pid namespace of its
           own, not a time namespace (/proc/<pid>/ns/time is this
           process's); and a value the helper prints falls between the
           client's clock just before it sent the request and just after
           the answer came (a raw socket, nothing between the clock and
           the syscall), for every one of CLOCK_RUNS runs
  delay    a run prints time.monotonic_ns() LINES times, GAP_MS apart; a
           line's delay is the client's time.monotonic_ns() when the event
           that carries it is parsed, minus the printed value: from the
           print in the helper to its event at the client, with
           print(..., flush=True), and without flush (sent by the helper's
           1 ms coalescing timer) while the code sleeps and while it
           computes; the variants alternate over DELAY_ROUNDS rounds
  cost     `x += 1; print(x)` on existing sessions, plain and streamed
           (the same request with the Accept header, read to its last
           event), alternating over 3 rounds (wrk at 8 connections, then
           at 1), each by its median run; the CPU of httpd's processes
           (workers, supervisor, helpers) per request at 8 connections

About 35 s at the default --seconds 10 (wrk runs of --seconds / 5).
"""
import json
import os
import re
import socket
import time

import requests

from bench.balancer import host_cpu
from bench.bench import ROUNDS, log, start_httpd, tree, wrk
from bench.stats import percentile
from tests.integration.sse import Stream

SESSIONS = 8            # one per wrk connection, as in the warm phase
CLOCK_RUNS = 50
LINES = 100             # lines a delay run prints
GAP_MS = 3              # between them: longer than the 1 ms coalescing
DELAY_ROUNDS = 5
CLOCK = "import time\nprint(time.monotonic_ns())"
WAIT = {
    "sleep": "time.sleep(%g)" % (GAP_MS / 1000),
    "compute": ("t = time.monotonic_ns()\n"
                "    while time.monotonic_ns() - t < %d: pass"
                % (GAP_MS * 1000000)),
}
# (name, print's flush, what the code does until the next print)
VARIANTS = (("flush", True, "sleep"), ("coalesced_sleep", False, "sleep"),
            ("coalesced_compute", False, "compute"))


def delay_code(flush, wait):
    return ("import time\n"
            "for i in range(%d):\n"
            "    print(time.monotonic_ns()%s)\n"
            "    %s\n" % (LINES, ", flush=True" if flush else "", WAIT[wait]))


def phase_stream(seconds):
    run_s = max(2, seconds // 5)
    res = {"sessions": SESSIONS, "lines": LINES, "gap_ms": GAP_MS,
           "delay_rounds": DELAY_ROUNDS, "run_s": run_s}
    h = start_httpd({"PyExecSpareHelpers": SESSIONS + 2,
                     "PyExecMaxSessions": 64})
    try:
        execute = h.url + "/execute"
        http = requests.Session()
        ids = []
        for _ in range(SESSIONS):
            r = http.post(execute, json={"code": "x = 0"}, timeout=30)
            ids.append(r.json()["id"])
        log("stream: the helper's clock against this one")
        res["clock"] = clock_check(h, ids[0])
        log("stream: print to event, %d rounds of %d lines, %d ms apart"
            % (DELAY_ROUNDS, LINES, GAP_MS))
        res["delay"] = delays(h, ids[0])
        res["cost"] = cost(h, execute, ids, run_s)
        return res
    finally:
        h.stop()
        h.cleanup()


# -- the clock ----------------------------------------------------------------------

def clock_check(h, sid):
    """The helper's monotonic clock against this process's: whether the
    session helpers share this time namespace, and the bounds that
    CLOCK_RUNS round trips put on any offset between the two clocks
    (printed - received <= offset <= printed - sent, in ns)."""
    def ns(pid):
        try:
            return os.readlink("/proc/%d/ns/time" % pid)
        except OSError:
            return None
    mine = ns(os.getpid())
    helpers = tree(h)["helpers"]
    same = [ns(p) == mine for p in helpers]
    body = json.dumps({"code": CLOCK, "id": sid}).encode()
    request = (b"POST /execute HTTP/1.1\r\nHost: %s\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n"
               b"\r\n%s" % (h.address.encode(), len(body), body))
    lows, highs = [], []
    with socket.create_connection((h.address, h.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(CLOCK_RUNS):
            sent, received, answer = round_trip(sock, request)
            printed = int(answer["stdout"])
            lows.append(printed - received)
            highs.append(printed - sent)
    return {"time_ns": mine, "helpers": len(helpers),
            "helpers_same_time_ns": sum(same), "runs": CLOCK_RUNS,
            "printed_within_round_trip": sum(lo <= 0 <= hi for lo, hi
                                             in zip(lows, highs)),
            "offset_min_ns": max(lows), "offset_max_ns": min(highs)}


def round_trip(sock, request):
    """(sent, received, answer) of one plain request on a kept
    connection, the clock read just before the send and just after the
    answer's last byte."""
    sent = time.monotonic_ns()
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < n:
        body += sock.recv(65536)
    received = time.monotonic_ns()
    return sent, received, json.loads(body)


# -- print to event -----------------------------------------------------------------

def delays(h, sid):
    """Per variant: the delay of every printed line (µs) and how many
    stdout events carried them."""
    stream_run(h, delay_code(True, "sleep"), sid)      # warm the cell cache
    out = {name: {"delays_us": [], "events": 0} for name, _, _ in VARIANTS}
    for _ in range(DELAY_ROUNDS):
        for name, flush, wait in VARIANTS:
            got = stream_run(h, delay_code(flush, wait), sid)
            out[name]["delays_us"] += got["delays_us"]
            out[name]["events"] += got["events"]
    for v in out.values():
        d = v.pop("delays_us")
        v.update(lines=len(d), p50_us=percentile(d, 50),
                 p90_us=percentile(d, 90), p99_us=percentile(d, 99),
                 max_us=max(d), min_us=min(d))
    return out


def stream_run(h, code, sid):
    """One streamed run: each stdout line's delay, from the value it
    printed to this process's clock when its event was parsed."""
    s = Stream(h.port, {"code": code, "id": sid})
    delays_us, events, last = [], 0, None
    try:
        assert s.status == 200, s.status
        for ev in s:
            at = time.monotonic_ns()
            last = ev
            if ev.name == "stdout":
                events += 1
                delays_us += [(at - int(line)) / 1000.0
                              for line in ev.json()["text"].splitlines()]
    finally:
        s.close()
    a = last.json()
    assert last.name == "result" and "error" not in a and "stderr" not in a, a
    assert len(delays_us) == LINES == len(a["stdout"].splitlines()), a
    return {"delays_us": delays_us, "events": events}


# -- what streaming costs -----------------------------------------------------------

def cost(h, execute, ids, run_s):
    """Plain and streamed `x += 1; print(x)` alternating, at 8 and at 1
    connection; each by its median run."""
    wrk(execute, "warm", SESSIONS, 1, ids)              # warm-up, both ways
    wrk(execute, "stream", SESSIONS, 1, ids)
    res = {}
    for conns in (SESSIONS, 1):
        runs = {"plain": [], "streamed": []}
        for rnd in range(ROUNDS):
            log("stream: round %d/%d, %d connection(s): plain, then "
                "streamed, %ds each" % (rnd + 1, ROUNDS, conns, run_s))
            for kind, mode in (("plain", "warm"), ("streamed", "stream")):
                cpu = host_cpu(h)
                r = wrk(execute, mode, conns, run_s, ids)
                r["cpu_ms_per_request"] = (1000 * (host_cpu(h) - cpu)
                                           / max(r["requests"], 1))
                runs[kind].append(r)
        key = "rps" if conns > 1 else "p50_us"
        res["ratio_c%d" % conns] = [s[key] / p[key] for p, s in
                                    zip(runs["plain"], runs["streamed"])]
        for kind, rs in runs.items():
            med = dict(sorted(rs, key=lambda x: x[key])[len(rs) // 2])
            med["rounds"] = [x[key] for x in rs]
            med["cpu_rounds"] = [x["cpu_ms_per_request"] for x in rs]
            res["%s_c%d" % (kind, conns)] = med
    return res


# -- report -------------------------------------------------------------------------

def markdown(res):
    c, d, k = res["clock"], res["delay"], res["cost"]
    L = ["", "### Streamed runs: `Accept: text/event-stream` (issue 15)", ""]
    L.append("From a `print` in the helper to its event at the client (a "
             "Server-Sent Events parser in Python, tests/integration/sse.py):"
             " a run prints `time.monotonic_ns()` %d times, %d ms apart; "
             "%d runs of each kind, alternating."
             % (res["lines"], res["gap_ms"], res["delay_rounds"]))
    L.append("")
    L.append("| print → its event | p50 | p90 | p99 | max | lines / events |")
    L.append("|---|---|---|---|---|---|")
    names = {"flush": "`print(t, flush=True)`, then sleep",
             "coalesced_sleep": "`print(t)`, then sleep (coalescing timer)",
             "coalesced_compute": "`print(t)`, then compute (coalescing "
                                  "timer)"}
    for name, _, _ in VARIANTS:
        v = d[name]
        L.append("| %s | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %d / %d |" % (
            names[name], v["p50_us"] / 1000, v["p90_us"] / 1000,
            v["p99_us"] / 1000, v["max_us"] / 1000, v["lines"], v["events"]))
    L.append("")
    L.append("The clocks: %d of %d session helpers in this process's time "
             "namespace; in %d of %d round trips the helper's "
             "`time.monotonic_ns()` fell between the client's before and "
             "after, which bounds any offset between the two clocks to "
             "%+.3f … %+.3f ms."
             % (c["helpers_same_time_ns"], c["helpers"],
                c["printed_within_round_trip"], c["runs"],
                c["offset_min_ns"] / 1e6, c["offset_max_ns"] / 1e6))
    L.append("")
    L.append("What streaming costs: `x += 1; print(x)` on %d sessions, plain "
             "and streamed (read to its `result` event), wrk for %d s, the "
             "median of %d alternating runs of each:"
             % (res["sessions"], res["run_s"], len(k["ratio_c1"])))
    L.append("")
    L.append("| | plain | streamed | streamed ÷ plain |")
    L.append("|---|---|---|---|")
    n = res["sessions"]
    p8, s8 = k["plain_c%d" % n], k["streamed_c%d" % n]
    p1, s1 = k["plain_c1"], k["streamed_c1"]

    def row(name, a, b, fmt):
        L.append("| %s | %s | %s | %.2f |" % (name, fmt(a), fmt(b), b / a))

    def ms(us):
        return "%.3f ms" % (us / 1000)
    row("req/s (%d conn.)" % n, p8["rps"], s8["rps"], lambda v: "%.0f" % v)
    row("p50 (%d conn.)" % n, p8["p50_us"], s8["p50_us"], ms)
    row("p50 (1 conn.)", p1["p50_us"], s1["p50_us"], ms)
    row("p99 (1 conn.)", p1["p99_us"], s1["p99_us"], ms)
    row("CPU of httpd's processes per request (%d conn.)" % n,
        p8["cpu_ms_per_request"], s8["cpu_ms_per_request"],
        lambda v: "%.3f ms" % v)
    L.append("")
    L.append("Streamed ÷ plain per round: %s req/s at %d connections, %s p50 "
             "at 1. Failed requests: %d plain, %d streamed."
             % (", ".join("%.2f" % x for x in k["ratio_c%d" % n]), n,
                ", ".join("%.2f" % x for x in k["ratio_c1"]),
                p8["failed"] + p1["failed"], s8["failed"] + s1["failed"]))
    return L
