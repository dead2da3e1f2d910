"""The stack phase of scripts/dev bench (`python3 -m bench --only stack`
alone): issue 14's data stack, `PyExecAllowModules numpy pandas
matplotlib` (Debian's python3-numpy, -pandas and -matplotlib, which the
zygote preloads), against the same server without it. Each of the two
starts one httpd for idle sessions and one for new sessions, and
measures:

  start    httpd's start until its SPARES warm spares are ready
  memory   at rest, from /proc/<pid>/smaps_rollup: the zygote's PSS, a
           spare helper's PSS and private memory; with IDLE idle sessions:
           PSS per session helper (spares included, as the memory phase
           counts it) and the whole tree's growth per session
  runs     `x += 1; print(x)` on one session, one request at a time
  import   `import numpy, pandas, matplotlib.pyplot` as a new session's
           first run: the time inside the run and the round trip (with the
           stack only; without it the import is refused)
  figure   a new session's first run draws a small figure and savefigs it
           as PNG to a BytesIO; then the same run again in that session
  new      new sessions while the spares last (1 connection), then
           sustained (wrk, 8 connections), and the CPU seconds of httpd's
           processes per new session (/proc/<pid>/stat)

and, for reference, the same import in a fresh /usr/bin/python3: what the
preload saves each session. About 40 s at the default --seconds 10.
"""
import importlib.util
import os
import subprocess
import sys
import time

import requests

from bench.balancer import host_cpu, spares_full
from bench.bench import (latency_summary, log, smaps, start_httpd, tree,
                         tree_memory, while_spares_last, wrk)
from bench.stats import percentile

MODULES = ("numpy", "pandas", "matplotlib")
SPARES = 8
IDLE = 200          # as the memory phase (issue 5's "200 idle")
RUNS = 200          # warm runs, one at a time
FRESH = 5           # new sessions that time the import
FIGURES = 3         # new sessions that draw a figure, twice each
COLD = 3            # fresh interpreters that import the stack
IMPORT = ("import time\n"
          "t = time.perf_counter()\n"
          "import numpy, pandas, matplotlib.pyplot\n"
          "print(time.perf_counter() - t)")
FIGURE_PX = (288, 216)
FIGURE = ("import io, time\n"
          "t = time.perf_counter()\n"
          "import matplotlib.pyplot as plt\n"
          "fig, ax = plt.subplots(figsize=(4, 3), dpi=72)\n"
          "ax.plot([1, 3, 2, 4], marker='o'); ax.set_title('a figure')\n"
          "b = io.BytesIO(); fig.savefig(b, format='png'); plt.close(fig)\n"
          "print(time.perf_counter() - t, len(b.getvalue()))")


def installed():
    return all(importlib.util.find_spec(m) for m in MODULES)


def phase_stack(seconds):
    if not installed():
        log("stack: python3-numpy, python3-pandas and python3-matplotlib "
            "are not all installed")
        return None
    run_s = max(2, int(round(seconds * 0.4)))
    res = {"modules": list(MODULES), "spares": SPARES, "idle": IDLE,
           "runs": RUNS, "run_s": run_s}
    for name, allow in (("plain", None), ("stack", " ".join(MODULES))):
        res[name] = measure(name, allow, run_s)
    log("stack: the same import in %d fresh interpreters" % COLD)
    res["cold_import_s"] = [cold_import() for _ in range(COLD)]
    return res


def directives(allow, **d):
    d["PyExecSpareHelpers"] = SPARES
    if allow:
        d["PyExecAllowModules"] = allow
    return d


def measure(name, allow, run_s):
    out = {}
    log("stack (%s): at rest, then %d idle sessions" % (name, IDLE))
    t0 = time.perf_counter()
    h = start_httpd(directives(allow, PyExecMaxSessions=IDLE + 50,
                               PyExecSessionIdleTimeout=3600))
    try:
        # the supervisor binds a helper's socket before the helper is
        # ready: the status page's count says when the spares are warm
        spares_full(h, SPARES)
        out["start_s"] = time.perf_counter() - t0
        time.sleep(1)
        out["rest"] = at_rest(h)
        execute = h.url + "/execute"
        http = requests.Session()
        ids = [run(http, execute, "x = %d" % i)[0]["id"] for i in range(IDLE)]
        time.sleep(2)
        m = tree_memory(h)
        out["idle"] = dict(m, pss_per_session_kib=m["helpers_pss_kib"]
                           / m["helpers"],
                           tree_growth_per_session_kib=(
                               m["tree_pss_kib"] - out["rest"]["tree_pss_kib"])
                           / IDLE)
        lat = [run(http, execute, "x += 1; print(x)", ids[0])[1]
               for _ in range(RUNS)]
        out["warm_c1"] = latency_summary(lat)
        if allow:
            log("stack (%s): the import and a figure in new sessions" % name)
            spares_full(h, SPARES)      # FRESH + FIGURES of them
            out["import"] = [timed(http, execute, IMPORT)
                             for _ in range(FRESH)]
            out["figure"] = [figures(http, execute) for _ in range(FIGURES)]
    finally:
        h.stop()
        h.cleanup()
    log("stack (%s): new sessions, %ds at 8 connections" % (name, run_s))
    h = start_httpd(directives(allow, PyExecMaxSessions=4000,
                               PyExecSessionIdleTimeout=2))
    try:
        execute = h.url + "/execute"
        spares_full(h, SPARES)
        out["spares_c1"] = while_spares_last(execute, SPARES - 2)
        spares_full(h, SPARES)
        cpu = host_cpu(h)
        out["new_c8"] = wrk(execute, "new", 8, run_s)
        out["new_c8"]["cpu_ms_per_session"] = (
            1000 * (host_cpu(h) - cpu) / max(out["new_c8"]["requests"], 1))
    finally:
        h.stop()
        h.cleanup()
    return out


def at_rest(h):
    """The zygote's and the spares' memory (KiB) with no session."""
    t = tree(h)
    spares = [smaps(p) for p in t["helpers"]]

    def mean(k):
        return sum(s.get(k, 0) for s in spares) / max(len(spares), 1)
    return {"zygote": smaps(t["zygote"]), "spares": len(spares),
            "spare_pss_kib": mean("pss"), "spare_rss_kib": mean("rss"),
            "spare_private_kib": mean("private"),
            "tree_pss_kib": tree_memory(h)["tree_pss_kib"]}


def run(http, execute, code, sid=None):
    """(answer, round trip in s) of one run that must not fail."""
    body = {"code": code}
    if sid:
        body["id"] = sid
    t0 = time.perf_counter()
    r = http.post(execute, json=body, timeout=30)
    dt = time.perf_counter() - t0
    a = r.json()
    assert r.status_code == 200 and "error" not in a and "stderr" not in a, \
        r.text[:500]
    return a, dt


def timed(http, execute, code, sid=None):
    """A run that prints its own time first: {'id', 'run_s', 'rtt_s',
    'stdout'}."""
    a, dt = run(http, execute, code, sid)
    return {"id": a["id"], "run_s": float(a["stdout"].split()[0]),
            "rtt_s": dt, "stdout": a["stdout"]}


def figures(http, execute):
    """The figure as a new session's first run, then again in it."""
    first = timed(http, execute, FIGURE)
    again = timed(http, execute, FIGURE, first["id"])
    return {"first": first, "again": again,
            "png_bytes": int(first["stdout"].split()[1])}


def cold_import():
    out = subprocess.run([sys.executable, "-c", IMPORT], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, MPLBACKEND="Agg"))
    return float(out.stdout)


# -- what it comes to ---------------------------------------------------------------

def _median(values):
    return percentile(values, 50)


def targets(res):
    worst = max(x["run_s"] for x in res["stack"]["import"])
    return [("`import numpy, pandas, matplotlib.pyplot` in a session < 10 ms",
             "%.2f ms max" % (worst * 1000), worst < 0.010)]


def markdown(res):
    p, s = res["plain"], res["stack"]
    L = ["", "### The data stack: `PyExecAllowModules %s`"
         % " ".join(res["modules"]), ""]
    L.append("Without and with the stack, each on an httpd of its own with "
             "%d spares; PSS from /proc/<pid>/smaps_rollup; new sessions "
             "sustained for %d s."
             % (res["spares"], res["run_s"]))
    L.append("")
    L.append("| | without the stack | with the stack | with ÷ without |")
    L.append("|---|---|---|---|")

    def mib(kib, digits=1):
        return "%.*f MiB" % (digits, kib / 1024)

    def ms(s_, digits=2):
        return "%.*f ms" % (digits, s_ * 1000)

    def row(name, get, fmt):
        a, b = get(p), get(s)
        L.append("| %s | %s | %s | %.2f |" % (name, fmt(a), fmt(b),
                                              b / a if a else float("nan")))
    row("httpd's start until %d spares are ready" % res["spares"],
        lambda m: m["start_s"], lambda v: ms(v, 0))
    row("the whole tree's PSS, at rest", lambda m: m["rest"]["tree_pss_kib"],
        mib)
    row("the zygote's RSS, at rest",
        lambda m: m["rest"]["zygote"]["rss"], mib)
    row("the zygote's PSS, at rest", lambda m: m["rest"]["zygote"]["pss"], mib)
    row("a spare helper's PSS, at rest",
        lambda m: m["rest"]["spare_pss_kib"], mib)
    row("a spare helper's private memory, at rest",
        lambda m: m["rest"]["spare_private_kib"], mib)
    row("PSS per session helper, %d idle sessions (spares included)"
        % res["idle"], lambda m: m["idle"]["pss_per_session_kib"],
        lambda v: mib(v, 2))
    row("the whole tree's growth per idle session",
        lambda m: m["idle"]["tree_growth_per_session_kib"],
        lambda v: mib(v, 2))
    row("the whole tree with %d idle sessions" % res["idle"],
        lambda m: m["idle"]["tree_pss_kib"], mib)
    row("a run of `x += 1; print(x)`, p50 (%d one at a time, from Python)"
        % res["runs"],
        lambda m: m["warm_c1"]["p50_us"] / 1e6, lambda v: ms(v, 3))
    row("new session while spares last, p50 (1 conn.)",
        lambda m: m["spares_c1"]["p50_us"] / 1e6, ms)
    row("new sessions sustained (8 conn.)", lambda m: m["new_c8"]["rps"],
        lambda v: "%.0f/s" % v)
    row("CPU of httpd's processes per new session",
        lambda m: m["new_c8"]["cpu_ms_per_session"], lambda v: "%.1f ms" % v)

    def only(name, runs):
        L.append("| %s | — | %s / %s | — |" % (
            name, ms(_median([x["run_s"] for x in runs])),
            ms(_median([x["rtt_s"] for x in runs]))))
    only("`import numpy, pandas, matplotlib.pyplot` as a new session's first "
         "run: in the run / round trip", s["import"])
    only("a first figure, %d×%d PNG to a BytesIO, as a new session's first "
         "run: in the run / round trip" % FIGURE_PX,
         [f["first"] for f in s["figure"]])
    only("the same figure again in that session",
         [f["again"] for f in s["figure"]])
    L.append("")
    L.append("Import and figures: medians of %d and %d new sessions (the "
             "import %.2f ms at most). The same import in a fresh "
             "/usr/bin/python3: %.0f ms (median of %d), what the zygote "
             "pays once and a session not at all. Failed requests "
             "while new sessions were sustained: %d without the stack, %d "
             "with it."
             % (len(s["import"]), len(s["figure"]),
                1000 * max(x["run_s"] for x in s["import"]),
                1000 * _median(res["cold_import_s"]),
                len(res["cold_import_s"]),
                p["new_c8"]["failed"], s["new_c8"]["failed"]))
    return L
