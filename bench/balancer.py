"""The balancer phase of scripts/dev bench (`python3 -m bench --only
balancer` alone): README's "Many hosts", two backends behind a front
httpd with mod_proxy_balancer and PyExecFront, as tests/integration/
hosts.py starts them (in network namespaces of their own when root).

Measures, in one start of the cluster:

  warm     `x += 1; print(x)` on existing sessions of h1, straight to h1
           and through the front (the id in the body alone, so that the
           front role reads it), alternating, at 8 and at 1 connection;
           at 8 also through the front on sessions spread over both hosts
  new      `print(1)` without an id, straight to h1 and through the front
           (which spreads them over h1 and h2), alternating; how many new
           ids named each route
  cost     CPU seconds of the front's processes (parent and children) and
           of each backend's per 1,000 requests, from /proc/<pid>/stat;
           the front's RSS and PSS; PSS per session on each backend with
           sessions made through the front

The hosts, wrk and this process share this machine's cores: what is
measured per host is what one host gets while the others compete with it.
"""
import os
import time
import xml.etree.ElementTree as ET

import requests

from bench.bench import ROUNDS, log, smaps, tree_memory, wrk
from bench.stats import percentile
from tests.integration import hosts, pyhttpd

ROUTES = ("h1", "h2")
CONNECTIONS = 8          # wrk threads x 1 connection, one session each
SPREAD_SESSIONS = 20     # made through the front one after another
MEMORY_SESSIONS = 30     # made on each backend, then weighed
NEW_ROUNDS = 2
DIRECTIVES = {
    "PyExecRateLimit": "off", "PyExecMaxClientSessions": "off",
    "PyExecSpareHelpers": 8, "PyExecMaxSessions": 2000,
    # long enough for the warm sessions and the weighing, short enough that
    # the sessions of the new-session runs do not pile up
    "PyExecSessionIdleTimeout": 10,
}


# -- CPU of a host's processes ------------------------------------------------

def _cpu_ticks(pid):
    """utime + stime + cutime + cstime: a process and its reaped children
    (a session helper that ended is in its supervisor's cutime)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11:15])


def host_pids(h):
    main = h.main_pid()
    return [main] + pyhttpd.descendants(main) if main else []


def host_cpu(h):
    """CPU seconds used by an httpd's parent and everything below it."""
    return (sum(_cpu_ticks(p) for p in host_pids(h))
            / os.sysconf("SC_CLK_TCK"))


def machine_cpu():
    """CPU seconds this machine's CPUs have been busy (/proc/stat: user,
    nice, system, irq, softirq; not idle, iowait or steal)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:8]]
    return (t[0] + t[1] + t[2] + t[5] + t[6]) / os.sysconf("SC_CLK_TCK")


def measured(cluster, run):
    """run()'s wrk result with 'cpu_s': CPU seconds that each host (front,
    h1, h2) used during it, and the same per 1,000 requests; 'busy', the
    share of the machine's CPUs busy meanwhile (anyone's work)."""
    t0, m0 = time.monotonic(), machine_cpu()
    before = {n: host_cpu(h) for n, h in _named(cluster)}
    r = run()
    cpu = {n: host_cpu(h) - before[n] for n, h in _named(cluster)}
    r["busy"] = ((machine_cpu() - m0) / (time.monotonic() - t0)
                 / os.cpu_count())
    r["cpu_s"] = cpu
    r["cpu_s_per_1000"] = {n: 1000.0 * c / max(r["requests"], 1)
                           for n, c in cpu.items()}
    return r


def _named(cluster):
    return [("front", cluster.front)] + list(cluster.backends.items())


def host_memory(h):
    """RSS and PSS (KiB) of an httpd's parent and children."""
    m = [smaps(p) for p in host_pids(h)]
    return {"processes": len(m), "rss_kib": sum(x.get("rss", 0) for x in m),
            "pss_kib": sum(x.get("pss", 0) for x in m)}


# -- the phase ----------------------------------------------------------------------

def median_run(runs, key):
    rs = sorted(runs, key=lambda x: x[key])
    med = dict(rs[len(rs) // 2])
    med["rounds"] = [x[key] for x in runs]
    med["cpu_rounds"] = [x["cpu_s_per_1000"] for x in runs]
    med["busy_rounds"] = [x["busy"] for x in runs]
    return med


def spares_full(b, n=DIRECTIVES["PyExecSpareHelpers"]):
    """Wait until b has n spare helpers ready (each run of new sessions
    starts with them)."""
    pyhttpd.wait_for(lambda: int(b.status_auto()["PyExecHelpersSpare"]) >= n,
                     timeout=30, step=0.2)


def new_sessions(url, n):
    """n new sessions (`x = 0`) made one after another: their ids."""
    http = requests.Session()
    out = []
    for _ in range(n):
        r = http.post(url, json={"code": "x = 0"}, timeout=30)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        out.append(r.json()["id"])
    return out


def route_counts(ids):
    counts = {}
    for sid in ids:
        route = sid.rpartition(".")[2] if "." in sid else ""
        counts[route] = counts.get(route, 0) + 1
    return counts


def phase_balancer(seconds):
    run_s = max(2, int(round(seconds * 0.4)))
    cluster = hosts.Cluster(ROUTES, directives=DIRECTIVES)
    log("balancer: starting %s behind a front (%s)" % (
        " and ".join(ROUTES),
        "network namespaces" if hosts.netns_wanted() else "loopback ports"))
    cluster.start()
    try:
        for b in cluster.backends.values():
            spares_full(b)
        return _measure(cluster, run_s)
    finally:
        cluster.stop()
        cluster.cleanup()


def _measure(cluster, run_s):
    res = {"netns": cluster.netns, "routes": list(ROUTES), "run_s": run_s}
    front = cluster.url + "/execute"
    direct = cluster.backend("h1").url + "/execute"
    on_h1 = new_sessions(direct, CONNECTIONS)
    spread = new_sessions(front, CONNECTIONS)
    res["warm_spread_routes"] = route_counts(spread)
    ways = {"direct": (direct, on_h1), "front": (front, on_h1),
            "front_spread": (front, spread)}
    for url, ids in ways.values():      # warm-up: every path and session
        wrk(url, "warm", CONNECTIONS, 2, ids)

    for conns, names in ((CONNECTIONS, ("direct", "front", "front_spread")),
                         (1, ("direct", "front"))):
        runs = {n: [] for n in names}
        for rnd in range(ROUNDS):
            log("balancer: round %d/%d, %d connection(s): %s, %ds each" % (
                rnd + 1, ROUNDS, conns, ", then ".join(names), run_s))
            for n in names:
                url, ids = ways[n]
                runs[n].append(measured(cluster, lambda: wrk(
                    url, "warm", conns, run_s, ids[:conns])))
        key = "rps" if conns > 1 else "p50_us"
        for n in names:
            res["warm_%s_c%d" % (n, conns)] = median_run(runs[n], key)
        res["rounds_c%d_ratio" % conns] = [
            f[key] / d[key] for d, f in zip(runs["direct"], runs["front"])]

    log("balancer: %d new sessions through the front, one after another"
        % SPREAD_SESSIONS)
    res["sequential_routes"] = route_counts(
        new_sessions(front, SPREAD_SESSIONS))
    res["balancer_members"] = members(cluster)
    log("balancer: %d sessions on each host, weighed" % MEMORY_SESSIONS)
    res["memory"] = {r: _weigh(b) for r, b in cluster.backends.items()}

    runs = {"direct": [], "front": []}
    for rnd in range(NEW_ROUNDS):
        for n, url in (("direct", direct), ("front", front)):
            for b in cluster.backends.values():
                spares_full(b)
            log("balancer: round %d/%d, new sessions %s, %d connections, %ds"
                % (rnd + 1, NEW_ROUNDS, n, CONNECTIONS, run_s))
            runs[n].append(measured(cluster, lambda: wrk(
                url, "new", CONNECTIONS, run_s)))
    for n in runs:
        res["new_%s" % n] = median_run(runs[n], "rps")
    res["new_front_routes"] = {}
    for r in runs["front"]:
        for route, k in r["routes"].items():
            res["new_front_routes"][route] = \
                res["new_front_routes"].get(route, 0) + k
    res["front_memory"] = host_memory(cluster.front)
    return res


def _weigh(b):
    """PSS per session on a backend with MEMORY_SESSIONS more idle
    sessions: helpers' PSS per helper (spares included, as the memory
    phase counts it) and the growth of its whole tree per session."""
    base = tree_memory(b)
    new_sessions(b.url + "/execute", MEMORY_SESSIONS)
    time.sleep(1)
    m = tree_memory(b)
    return {
        "sessions_live": int(b.status_auto()["PyExecSessionsLive"]),
        "helpers": m["helpers"],
        "pss_per_helper_kib": m["helpers_pss_kib"] / max(m["helpers"], 1),
        "tree_pss_kib": m["tree_pss_kib"],
        "tree_pss_per_session_kib":
            (m["tree_pss_kib"] - base["tree_pss_kib"]) / MEMORY_SESSIONS,
    }


def members(cluster):
    """{route: {busy, lbstatus, elected}} from the front's balancer-manager
    (its XML view): how bybusyness will choose the next new session."""
    status, text = cluster.front.local_request(
        "/balancer-manager?b=%s&xml=1" % hosts.BALANCER,
        headers=hosts.MANAGER_HEADERS)
    if status != 200:
        return {}
    out = {}
    for w in ET.fromstring(text).iterfind(".//httpd:worker", hosts.XML_NS):
        out[w.findtext("httpd:route", "", hosts.XML_NS)] = {
            k: int(w.findtext("httpd:" + k, "0", hosts.XML_NS))
            for k in ("busy", "lbstatus", "elected")}
    return out


# -- what it comes to ---------------------------------------------------------------

def _median(values):
    return percentile(values, 50)


def _cpu_ms(run, host):
    """Median over a way's rounds of host's CPU ms per request."""
    return _median([c[host] for c in run["cpu_rounds"]])


def summary(res):
    """The derived numbers: the front's cost, the spread, and what they
    imply for capacity."""
    d8, f8 = res["warm_direct_c8"], res["warm_front_c8"]
    d1, f1 = res["warm_direct_c1"], res["warm_front_c1"]
    nd, nf = res["new_direct"], res["new_front"]
    spread = res["new_front_routes"]
    counted = [spread.get(r, 0) for r in res["routes"]]
    front_ms = _cpu_ms(f8, "front")         # per warm request
    h1_ms = _cpu_ms(d8, "h1")
    new_h1_ms = _cpu_ms(nd, "h1")
    mem = res["memory"]
    s = {
        "warm_ratio_c8": _median(res["rounds_c8_ratio"]),
        "warm_p50_ratio_c1": _median(res["rounds_c1_ratio"]),
        "added_ms_p50_c1": (f1["p50_us"] - d1["p50_us"]) / 1000,
        "added_ms_mean_c8": (f8["latency_us"]["mean"]
                             - d8["latency_us"]["mean"]) / 1000,
        "new_ratio": nf["rps"] / nd["rps"],
        "front_cpu_ms_per_warm_request": front_ms,
        "front_cpu_ms_per_new_session": _cpu_ms(nf, "front"),
        "backend_cpu_ms_per_warm_request": h1_ms,
        "backend_cpu_ms_per_new_session": new_h1_ms,
        "new_front_shares": {r: spread.get(r, 0) / max(sum(counted), 1)
                             for r in res["routes"]},
        "new_front_max_min": (max(counted) / min(counted)
                              if min(counted) else None),
        "pss_per_session_kib": _median([m["pss_per_helper_kib"]
                                        for m in mem.values()]),
        "tree_pss_per_session_kib": _median(
            [m["tree_pss_per_session_kib"] for m in mem.values()]),
    }
    # one core's worth of each, from the CPU each request costs
    s["front_warm_rps_per_core"] = 1000.0 / front_ms if front_ms else None
    s["host_warm_rps_per_core"] = 1000.0 / h1_ms if h1_ms else None
    s["host_new_per_s_per_core"] = 1000.0 / new_h1_ms if new_h1_ms else None
    return s


def markdown(res):
    s = res["summary"]
    d8, f8, fs8 = (res["warm_%s_c8" % n]
                   for n in ("direct", "front", "front_spread"))
    d1, f1 = res["warm_direct_c1"], res["warm_front_c1"]
    nd, nf = res["new_direct"], res["new_front"]
    L = ["", "### Many hosts: two backends behind a front", ""]
    L.append("%s; the front, h1, h2 and wrk on the same cores (machine "
             "busy: the share of its CPUs busy during the runs, anyone's "
             "work). Runs of %d s, the median of %d alternating rounds (new "
             "sessions: %d); CPU from /proc/<pid>/stat in 10 ms ticks."
             % ("Each host in a network namespace of its own" if res["netns"]
                else "Hosts on loopback ports", res["run_s"], ROUNDS,
                NEW_ROUNDS))
    L.append("")
    L.append("| | req/s (8 conn.) | p50 / p99 (8 conn.) | p50 / p99 (1 conn.) "
             "| CPU s per 1,000: front | h1 + h2 | machine busy |")
    L.append("|---|---|---|---|---|---|---|")

    def ms(us):
        return "%.3f ms" % (us / 1000)

    def cpu(run, host):
        return "%.3f" % (_cpu_ms(run, host))

    def row(name, t, l):
        L.append("| %s | %.0f | %s / %s | %s | %s | %s | %s |" % (
            name, t["rps"], ms(t["p50_us"]), ms(t["p99_us"]),
            "%s / %s" % (ms(l["p50_us"]), ms(l["p99_us"])) if l else "—",
            cpu(t, "front"),
            "%.3f" % (_cpu_ms(t, "h1") + _cpu_ms(t, "h2")),
            "%.0f %%" % (100 * _median(t["busy_rounds"]))))
    row("warm, straight to h1", d8, d1)
    row("warm, through the front (h1's sessions)", f8, f1)
    row("warm, through the front (sessions on h1 and h2)", fs8, None)
    row("new session, straight to h1", nd, None)
    row("new session, through the front (h1 and h2)", nf, None)
    L.append("")
    L.append("The front's cost: warm through ÷ straight %.2f × req/s at 8 "
             "connections (per round: %s), p50 %.2f × at one (per round: %s), "
             "+%.3f ms p50 per request at one connection, +%.3f ms mean at 8; "
             "new sessions through ÷ straight %.2f ×."
             % (s["warm_ratio_c8"],
                ", ".join("%.2f" % x for x in res["rounds_c8_ratio"]),
                s["warm_p50_ratio_c1"],
                ", ".join("%.2f" % x for x in res["rounds_c1_ratio"]),
                s["added_ms_p50_c1"], s["added_ms_mean_c8"], s["new_ratio"]))
    L.append("")
    spread = res["new_front_routes"]
    L.append("Spread of new sessions through the front: %s under wrk's 8 "
             "connections (max ÷ min %s); %s of %d made one after another "
             "after the warm runs (bybusyness breaks ties by lbstatus, which "
             "every request moves, sticky ones included; the front's "
             "balancer-manager then: %s)."
             % (", ".join("%s %d (%.0f %%)" % (r, spread.get(r, 0),
                                               100 * s["new_front_shares"][r])
                          for r in res["routes"]),
                "%.2f" % s["new_front_max_min"] if s["new_front_max_min"]
                else "—",
                ", ".join("%s %d" % (r, res["sequential_routes"].get(r, 0))
                          for r in res["routes"]), SPREAD_SESSIONS,
                "; ".join("%s busy %d, lbstatus %d, elected %d" % (
                    r, m["busy"], m["lbstatus"], m["elected"])
                    for r, m in sorted(res["balancer_members"].items()))))
    L.append("")
    fm = res["front_memory"]
    mem = res["memory"]
    L.append("Memory: the front %.1f MiB RSS, %.1f MiB PSS (%d processes, "
             "after the runs); per backend with %d more idle sessions, PSS "
             "per session helper %s; whole tree's growth per session %s."
             % (fm["rss_kib"] / 1024, fm["pss_kib"] / 1024, fm["processes"],
                MEMORY_SESSIONS,
                ", ".join("%s %.2f MiB (%d live)" % (
                    r, m["pss_per_helper_kib"] / 1024, m["sessions_live"])
                    for r, m in mem.items()),
                ", ".join("%s %.2f MiB" % (
                    r, m["tree_pss_per_session_kib"] / 1024)
                    for r, m in mem.items())))
    L.append("")
    L.append("Capacity from CPU per request (one core's worth): the front "
             "%.0f warm req/s; a host %.0f warm req/s and %.0f new sessions/s."
             % (s["front_warm_rps_per_core"] or 0,
                s["host_warm_rps_per_core"] or 0,
                s["host_new_per_s_per_core"] or 0))
    return L
