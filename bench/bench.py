"""scripts/dev bench: mod_pyexec against httpd itself and a Jupyter kernel.

Starts real httpd instances with the module (tests/integration/pyhttpd.py,
as the tests do) and measures, in one run on this machine:

  ceiling      the same httpd serving a 48-byte static JSON file
  warm         POST /execute of `x += 1; print(x)` on existing sessions
  new          POST /execute of `print(1)` without an id: a new session each
  stream       streamed runs (Accept: text/event-stream): the delay from a
               print in the helper to its event at the client, with and
               without flush; plain against streamed `x += 1; print(x)`,
               req/s, latency and CPU per request (stream.py)
  peer         a warm ipykernel running the same code, and its start time
  memory       PSS per idle session with 200 idle sessions; the whole tree;
               1,000 live sessions all answering
  stack        the same server with and without `PyExecAllowModules numpy
               pandas matplotlib`: PSS of the zygote, a spare and an idle
               session, new-session rate, the stack's import and a first
               figure inside a session (stack.py)
  limits       timeout and memory-limit answers while the warm load runs
  flat         worker, supervisor and helper memory across 100,000 requests
  balancer     two backends behind a front (README, "Many hosts"): warm and
               new-session rates straight to one backend and through the
               front, the spread, the front's CPU and memory (balancer.py)

Throughput is wrk at 8 connections (8 threads, one connection each, so that
each warm connection has a session of its own); latency is wrk at one
connection; ceiling and warm alternate over 3 rounds, each reported by its
median run. Ratios to the ceiling are the numbers to read: absolute ones on
a shared machine drift from run to run. Writes results.json, results.md and
latency.png (gnuplot) into the output directory. A benchmark, not a test:
it reports targets met or missed and never fails on a number.

`--only` runs some of the phases (warm: ceiling, warm, limits and flat;
new; stream; memory; stack; peer; balancer), e.g. `--only balancer`.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import requests

from bench.stats import percentile
from tests.integration import pyhttpd

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = pyhttpd.REPO

LUA = os.path.join(HERE, "wrk.lua")
ROUNDS = 3
STATIC_BODY = b'{"id":"0b7c2c5e-3f0e-4a52","stdout":"benchmark"}'
assert len(STATIC_BODY) == 48
PHASES = ("warm", "new", "stream", "memory", "stack", "peer", "balancer")


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# -- load generation ---------------------------------------------------------

def wrk(url, mode, connections, seconds, ids=()):
    """One wrk run; returns its BENCH_JSON summary plus requests/s."""
    env = dict(os.environ, BENCH_IDS=",".join(ids))
    cmd = ["wrk", "-t", str(connections), "-c", str(connections),
           "-d", "%ds" % seconds, "--timeout", "10s", "-s", LUA, url,
           "--", mode]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("BENCH_JSON ")][-1]
    r = json.loads(line[len("BENCH_JSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["failed"] = sum(r["errors"].values())
    r["p50_us"] = dict(r["percentiles_us"])[50]
    r["p99_us"] = dict(r["percentiles_us"])[99]
    return r


def post(url, body, timeout=30):
    t0 = time.perf_counter()
    r = requests.post(url, json=body, timeout=timeout)
    return r, time.perf_counter() - t0




# -- the process tree and its memory ------------------------------------------

def tree(httpd):
    """{'parent', 'workers', 'supervisor', 'zygote', 'helpers'} pids, from
    one look at the process table (pyhttpd's lookups)."""
    t = pyhttpd.process_table()
    return {"parent": httpd.main_pid(), "workers": httpd.worker_pids(t),
            "supervisor": httpd.supervisor_pid(t),
            "zygote": httpd.zygote_pid(t),
            "helpers": httpd.session_helper_pids(t)}


def smaps(pid):
    """{'pss', 'rss', 'private'} in KiB from smaps_rollup; 'private' is
    Private_Clean + Private_Dirty, the pages this process alone maps."""
    r = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Rss"):
                    r[k.lower()] = int(v.split()[0])
                elif k in ("Private_Clean", "Private_Dirty"):
                    r["private"] = r.get("private", 0) + int(v.split()[0])
    except OSError:
        pass
    return r


def tree_memory(httpd):
    t = tree(httpd)
    pids = [t["parent"], t["supervisor"], t["zygote"]] + t["workers"] + t["helpers"]
    pss = sum(smaps(p).get("pss", 0) for p in pids if p)
    helpers = [smaps(p).get("pss", 0) for p in t["helpers"]]
    return {"tree_pss_kib": pss, "helpers": len(helpers),
            "helpers_pss_kib": sum(helpers),
            "zygote_pss_kib": smaps(t["zygote"]).get("pss", 0) if t["zygote"] else 0}


# -- the phases ------------------------------------------------------------------

def start_httpd(directives, extra=""):
    # one client (this one) makes thousands of sessions
    base = {"PyExecRateLimit": "off", "PyExecMaxClientSessions": "off"}
    base.update(directives)
    h = pyhttpd.Httpd(directives=base, extra_conf=extra, loglevel="warn")
    h.start()
    h.wait_spares(int(directives.get("PyExecSpareHelpers", 1)))
    return h


def phase_ceiling_and_warm(seconds, docroot):
    extra = ('Alias "/bench" "%s"\n<Directory "%s">\n  Require all granted\n'
             '</Directory>\n' % (docroot, docroot))
    h = start_httpd({"PyExecSpareHelpers": 8, "PyExecMaxSessions": 64}, extra)
    try:
        static = h.url + "/bench/static.json"
        execute = h.url + "/execute"
        assert requests.get(static).content == STATIC_BODY
        ids = []
        for _ in range(8):
            r, _ = post(execute, {"code": "x = 0"})
            ids.append(r.json()["id"])
        # warm-up: both paths, both sides of the cache
        wrk(static, "static", 8, 2)
        wrk(execute, "warm", 8, 2, ids)
        res = {}
        before = flat_snapshot(h)
        # A shared machine's speed drifts by more than the differences
        # measured here: the ceiling and the warm runs alternate, and each
        # is reported by its median run.
        for conns in (8, 1):
            runs = {"ceiling": [], "warm": []}
            for rnd in range(ROUNDS):
                log("round %d/%d, %d connection(s): ceiling, then warm, "
                    "%ds each" % (rnd + 1, ROUNDS, conns, seconds))
                runs["ceiling"].append(wrk(static, "static", conns, seconds))
                runs["warm"].append(wrk(execute, "warm", conns, seconds, ids))
            if conns == 8:
                res["rounds_c8_ratio"] = [w["rps"] / c["rps"] for c, w in
                                          zip(runs["ceiling"], runs["warm"])]
            else:
                res["rounds_c1_p50_ratio"] = [
                    w["p50_us"] / c["p50_us"]
                    for c, w in zip(runs["ceiling"], runs["warm"])]
            for kind, rs in runs.items():
                key = "rps" if conns == 8 else "p50_us"
                rs.sort(key=lambda x: x[key])
                med = dict(rs[len(rs) // 2])
                med["rounds"] = [x[key] for x in rs]
                res["%s_c%d" % (kind, conns)] = med

        log("limits under load: 8 warm connections, timeout and memory answers")
        res["limits"] = phase_limits(h, execute, ids, seconds)

        log("memory across >= 100,000 requests")
        res["flat"] = phase_flat(h, execute, ids, before)
        return res
    finally:
        h.stop()
        h.cleanup()


def phase_limits(h, execute, ids, seconds):
    result = {}
    load = threading.Thread(target=lambda: result.setdefault(
        "load", wrk(execute, "warm", 8, seconds + 6, ids)))
    load.start()
    time.sleep(1.5)
    timeouts, memory = [], []
    for _ in range(2):
        r, dt = post(execute, {"code": "while True: pass"})
        assert r.json().get("error", "").startswith("Execution timeout"), r.text
        timeouts.append(dt)
        r, dt = post(execute, {"code": "x = bytearray(200 * 1024 * 1024)"})
        assert r.json().get("error", "").startswith("Memory limit"), r.text
        memory.append(dt)
    load.join()
    return {"timeout_s": timeouts, "memory_s": memory,
            "load_rps": result["load"]["rps"]}


def flat_snapshot(h):
    t = tree(h)
    return {
        "workers_rss_kib": sum(smaps(p).get("rss", 0) for p in t["workers"]),
        "supervisor_rss_kib": smaps(t["supervisor"]).get("rss", 0),
        "helpers_rss_kib": sum(smaps(p).get("rss", 0) for p in t["helpers"]),
        "helpers": len(t["helpers"]),
    }


def phase_flat(h, execute, ids, before):
    done = 0
    rounds = 0
    while done < 100000 and rounds < 20:
        done += wrk(execute, "warm", 8, 5, ids)["requests"]
        rounds += 1
    after = flat_snapshot(h)
    return {"requests": done, "before": before, "after": after,
            "delta_kib": {k: after[k] - before[k] for k in before
                          if k.endswith("_kib")}}


def phase_new(seconds):
    res = {}
    spares = 32
    h = start_httpd({"PyExecSpareHelpers": spares, "PyExecMaxSessions": 4000,
                     "PyExecSessionIdleTimeout": 2})
    try:
        execute = h.url + "/execute"
        time.sleep(1)
        log("new sessions while %d warm spares last, 1 connection" % spares)
        res["spares_c1"] = while_spares_last(execute, spares - 4)
        time.sleep(3)
        log("new sessions sustained, 8 connections, %ds" % seconds)
        res["sustained_c8"] = wrk(execute, "new", 8, seconds)
        time.sleep(3)
        log("new sessions sustained, 1 connection, %ds" % seconds)
        res["sustained_c1"] = wrk(execute, "new", 1, seconds)
        return res
    finally:
        h.stop()
        h.cleanup()


def while_spares_last(execute, n):
    """n new sessions (`print(1)`) one after another, as many as there are
    warm spares or fewer: their latency."""
    s = requests.Session()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.post(execute, json={"code": "print(1)"}, timeout=30)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200 and r.json()["stdout"] == "1\n", r.text
    return latency_summary(lat)


def latency_summary(seconds):
    """requests, p50_us and p99_us of latencies measured in seconds."""
    return {"requests": len(seconds),
            "p50_us": percentile(seconds, 50) * 1e6,
            "p99_us": percentile(seconds, 99) * 1e6}


def phase_memory():
    res = {}
    h = start_httpd({"PyExecSpareHelpers": 4, "PyExecMaxSessions": 1100,
                     "PyExecSessionIdleTimeout": 3600})
    try:
        execute = h.url + "/execute"
        s = requests.Session()
        base = tree_memory(h)
        ids = []
        log("memory: 200 idle sessions")
        for i in range(200):
            r = s.post(execute, json={"code": "x = %d" % i}, timeout=30)
            ids.append(r.json()["id"])
        time.sleep(2)
        m = tree_memory(h)
        res["base"] = base
        res["idle_200"] = m
        res["pss_per_session_kib"] = m["helpers_pss_kib"] / m["helpers"]
        res["tree_pss_per_session_kib"] = (
            (m["tree_pss_kib"] - base["tree_pss_kib"]) / 200.0)
        log("1,000 live sessions")
        t0 = time.perf_counter()
        for i in range(200, 1000):
            r = s.post(execute, json={"code": "x = %d" % i}, timeout=30)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        created = time.perf_counter() - t0
        ok = 0
        for i, sid in enumerate(ids):
            r = s.post(execute, json={"code": "print(x)", "id": sid}, timeout=30)
            ok += r.status_code == 200 and r.json().get("stdout") == "%d\n" % i
        m = tree_memory(h)
        res["live_1000"] = {"answering": ok, "create_800_s": created,
                            "tree_pss_kib": m["tree_pss_kib"],
                            "helpers": m["helpers"],
                            "pss_per_session_kib": m["helpers_pss_kib"] / m["helpers"]}
        return res
    finally:
        h.stop()
        h.cleanup()


def phase_peer():
    try:
        import jupyter_client  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError:
        log("peer: python3-ipykernel / python3-jupyter-client not installed")
        return None
    log("peer: ipykernel start and warm round trips")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    out = subprocess.run([sys.executable, "-m", "bench.peer_ipykernel",
                          "1000"], capture_output=True, text=True, check=True,
                         env=env, cwd=REPO).stdout
    return json.loads(out)


# -- report ------------------------------------------------------------------------

def targets(r):
    """(target, measured, met) of the phases that ran."""
    rows = []
    warm, new = "warm_c8" in r, r.get("new")
    if warm:
        c8, w8 = r["ceiling_c8"], r["warm_c8"]
        c1, w1 = r["ceiling_c1"], r["warm_c1"]
        rows += [
            ("warm throughput ≥ 0.7 × ceiling (8 conn.)",
             "%.2f ×" % (w8["rps"] / c8["rps"]), w8["rps"] / c8["rps"] >= 0.7),
            ("warm p50 ≤ 1.5 × ceiling's (1 conn.)",
             "%.2f ×" % (w1["p50_us"] / c1["p50_us"]),
             w1["p50_us"] / c1["p50_us"] <= 1.5)]
    if new:
        rows += [
            ("new session p50 ≤ 5 ms while spares last (1 conn.)",
             "%.2f ms" % (new["spares_c1"]["p50_us"] / 1000),
             new["spares_c1"]["p50_us"] <= 5000),
            ("new sessions sustained ≥ 150/s",
             "%.0f/s" % new["sustained_c8"]["rps"],
             new["sustained_c8"]["rps"] >= 150
             and new["sustained_c8"]["failed"] == 0)]
    peer = r.get("peer")
    if peer and warm and new:
        rt = peer["rtt_us"]["p50"] / w1["p50_us"]
        st = peer["kernel_start_s"] * 1e6 / new["spares_c1"]["p50_us"]
        rows += [("warm round trip ≥ 5 × faster than ipykernel's", "%.0f ×" % rt, rt >= 5),
                 ("session start ≥ 100 × faster than a kernel start", "%.0f ×" % st, st >= 100)]
    mem = r.get("memory")
    if mem:
        rows += [
            ("≤ 3 MiB PSS per idle session (200 idle)",
             "%.2f MiB" % (mem["pss_per_session_kib"] / 1024),
             mem["pss_per_session_kib"] <= 3 * 1024),
            ("1,000 live sessions all answering",
             "%d / 1000" % mem["live_1000"]["answering"],
             mem["live_1000"]["answering"] == 1000)]
    if r.get("stack"):
        from bench import stack
        rows += stack.targets(r["stack"])
    if not warm:
        return rows
    lim, flat = r["limits"], r["flat"]
    rows += [
        ("timeout answer in 2.0–2.2 s under load",
         "%.2f–%.2f s" % (min(lim["timeout_s"]), max(lim["timeout_s"])),
         all(2.0 <= t <= 2.2 for t in lim["timeout_s"])),
        ("memory answer ≤ 0.3 s under load",
         "%.0f ms max" % (max(lim["memory_s"]) * 1000),
         max(lim["memory_s"]) <= 0.3),
    ]
    grow = flat["delta_kib"]
    worst = max(grow.values())
    rows.append(("memory flat across %d requests (worker, supervisor, helpers)"
                 % flat["requests"],
                 ", ".join("%s %+d KiB" % (k.replace("_rss_kib", ""), v)
                           for k, v in grow.items()),
                 worst <= 1024 and flat["requests"] >= 100000))
    return rows


def markdown(r):
    """results.md: the sections of the phases that ran."""
    L = []
    L.append("Run %s on %s (%d cores, %s), httpd %s, %s."
             % (r["when"], r["machine"]["host"], r["machine"]["cores"],
                r["machine"]["cpu"], r["machine"]["httpd"], r["machine"]["kernel"]))
    if "warm_c8" in r:
        L += single_host_table(r)
    elif r.get("new"):
        new = r["new"]
        L.append("")
        L.append("New sessions: %.0f/s sustained at 8 connections; p50 %.3f ms "
                 "while warm spares last."
                 % (new["sustained_c8"]["rps"], new["spares_c1"]["p50_us"] / 1000))
    mem = r.get("memory")
    if mem:
        L.append("")
        L.append("Memory: %.2f MiB PSS per idle session (200 idle sessions; %d helpers "
                 "counted, spares included); the whole tree (httpd, workers, supervisor, "
                 "zygote, helpers) %.1f MiB with 200 sessions, %.1f MiB with 1,000 "
                 "(%.2f MiB per session); %d of 1,000 live sessions answered."
                 % (mem["pss_per_session_kib"] / 1024, mem["idle_200"]["helpers"],
                    mem["idle_200"]["tree_pss_kib"] / 1024,
                    mem["live_1000"]["tree_pss_kib"] / 1024,
                    mem["live_1000"]["pss_per_session_kib"] / 1024,
                    mem["live_1000"]["answering"]))
    if r["targets"]:
        L.append("")
        L.append("| target | measured | met |")
        L.append("|---|---|---|")
        for name, value, ok in r["targets"]:
            L.append("| %s | %s | %s |" % (name, value, "yes" if ok else "**no**"))
    if r.get("stream"):
        from bench import stream
        L += stream.markdown(r["stream"])
    if r.get("stack"):
        from bench import stack
        L += stack.markdown(r["stack"])
    if r.get("balancer"):
        from bench import balancer
        L += balancer.markdown(r["balancer"])
    return "\n".join(L) + "\n"


def single_host_table(r):
    """The ceiling, warm, new and peer rows, against the ceiling."""
    c8, w8, c1, w1 = r["ceiling_c8"], r["warm_c8"], r["ceiling_c1"], r["warm_c1"]
    new = r.get("new")
    L = [""]
    L.append("| | req/s (8 conn.) | × ceiling | p50 (1 conn.) | p99 (1 conn.) | p50 × ceiling |")
    L.append("|---|---|---|---|---|---|")

    def row(name, t, l):
        L.append("| %s | %s | %s | %s | %s | %s |" % (
            name, "%.0f" % t["rps"] if t else "—",
            "%.2f" % (t["rps"] / c8["rps"]) if t else "—",
            "%.3f ms" % (l["p50_us"] / 1000), "%.3f ms" % (l["p99_us"] / 1000),
            "%.2f" % (l["p50_us"] / c1["p50_us"])))
    row("ceiling: 48-byte static file", c8, c1)
    row("warm session: `x += 1; print(x)`", w8, w1)
    if new:
        row("new session: `print(1)`, sustained", new["sustained_c8"], new["sustained_c1"])
        L.append("| new session while warm spares last | — | — | %.3f ms | %.3f ms | %.2f |" % (
            new["spares_c1"]["p50_us"] / 1000, new["spares_c1"]["p99_us"] / 1000,
            new["spares_c1"]["p50_us"] / c1["p50_us"]))
    peer = r.get("peer")
    if peer:
        L.append("| ipykernel (warm), same code | — | — | %.3f ms | %.3f ms | %.2f |" % (
            peer["rtt_us"]["p50"] / 1000, peer["rtt_us"]["p99"] / 1000,
            peer["rtt_us"]["p50"] / c1["p50_us"]))
        if new:
            L.append("")
            L.append("ipykernel start (median of 3): %.0f ms; a new session here: %.2f ms."
                     % (peer["kernel_start_s"] * 1000, new["spares_c1"]["p50_us"] / 1000))
    L.append("")
    L.append("Ceiling and warm rows: the median of %d alternating runs of each; "
             "warm ÷ ceiling per round: %s req/s at 8 connections, %s p50 at 1."
             % (len(r["rounds_c8_ratio"]),
                ", ".join("%.2f" % x for x in r["rounds_c8_ratio"]),
                ", ".join("%.2f" % x for x in r["rounds_c1_p50_ratio"])))
    return L


def plot(r, outdir):
    if "warm_c1" not in r or not r.get("new"):
        return None
    series = [("ceiling (static file)", r["ceiling_c1"]["percentiles_us"]),
              ("warm session", r["warm_c1"]["percentiles_us"]),
              ("new session", r["new"]["sustained_c1"]["percentiles_us"])]
    if r.get("peer"):
        series.append(("ipykernel (warm)", r["peer"]["percentiles_us"]))
    files = []
    for i, (name, pts) in enumerate(series):
        path = os.path.join(outdir, "latency-%d.dat" % i)
        with open(path, "w") as f:
            for p, us in pts:
                f.write("%g %g\n" % (p, us / 1000.0))
        files.append((path, name))
    png = os.path.join(outdir, "latency.png")
    plots = ", ".join("'%s' using 1:2 with linespoints lw 2 title '%s'" % (p, n)
                      for p, n in files)
    script = """
set terminal pngcairo size 900,500 font ",11" noenhanced
set output '{png}'
set title "Latency at one connection (wrk; ipykernel via jupyter_client)"
set xlabel "percentile"
set ylabel "latency (ms, log scale)"
set logscale y
set grid
set key top left
set xrange [0:100]
plot {plots}
""".format(png=png, plots=plots)
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        return png
    log("gnuplot not installed: no plot")
    return None


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = [l.split(":", 1)[1].strip() for l in f
                   if l.startswith("model name")][0]
    except (OSError, IndexError):
        pass
    h = pyhttpd.Httpd()
    v = subprocess.run([h.httpd, "-v"], capture_output=True, text=True).stdout
    shutil.rmtree(h.root, ignore_errors=True)
    return {"host": platform.node(), "cores": os.cpu_count(), "cpu": cpu,
            "kernel": "Linux " + platform.release(),
            "httpd": v.split("/")[1].split()[0] if "/" in v else "?"}


def phase_list(text):
    """--only's value: phase names, separated by commas."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = set(names) - set(PHASES)
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            "phases are %s, not %s" % (", ".join(PHASES), text))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--only", type=phase_list, default=list(PHASES),
                    metavar="PHASE[,PHASE...]",
                    help="run only these phases: %s (default: all)"
                    % ", ".join(PHASES))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    docroot = tempfile.mkdtemp(prefix="pyexec-bench-")
    os.chmod(docroot, 0o755)
    with open(os.path.join(docroot, "static.json"), "wb") as f:
        f.write(STATIC_BODY)
    os.chmod(os.path.join(docroot, "static.json"), 0o644)
    try:
        r = {"when": datetime.datetime.now(datetime.timezone.utc)
             .strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
             "phases": args.only}
        if "warm" in args.only:
            r.update(phase_ceiling_and_warm(args.seconds, docroot))
        if "new" in args.only:
            r["new"] = phase_new(args.seconds)
        if "stream" in args.only:
            from bench import stream
            r["stream"] = stream.phase_stream(args.seconds)
        if "memory" in args.only:
            r["memory"] = phase_memory()
        if "stack" in args.only:
            from bench import stack
            r["stack"] = stack.phase_stack(args.seconds)
        if "peer" in args.only:
            r["peer"] = phase_peer()
        if "balancer" in args.only:
            # balancer.py uses this module's load and memory helpers
            from bench import balancer
            r["balancer"] = balancer.phase_balancer(args.seconds)
            r["balancer"]["summary"] = balancer.summary(r["balancer"])
        r["targets"] = targets(r)
    finally:
        shutil.rmtree(docroot, ignore_errors=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(r, f, indent=1)
    md = markdown(r)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    png = plot(r, args.out)
    sys.stdout.write(md)
    log("wrote %s/results.json, results.md%s" % (
        args.out, ", latency.png" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
