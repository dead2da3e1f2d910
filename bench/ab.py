"""Two builds side by side on the warm path: `python3 -m bench.ab
BUILD_A BUILD_B [--rounds N] [--seconds S]`, e.g. the build of a commit
before a change and of the one after it, each built in a worktree of its
own (PYEXEC_BUILD_DIR=<worktree>/build scripts/dev build there).

Whole `--only warm` runs of each build, alternated, put minutes between
the two builds' numbers; on a shared machine other work comes and goes
within that time. Here both httpds run at once, each with SESSIONS warm
sessions, and wrk's runs of `x += 1; print(x)` (as the warm phase's)
alternate between them every S seconds, A then B in odd rounds, B then A
in even ones: at 8 connections (req/s, and the CPU of each httpd's
processes per request), then at 1 (p50). Prints each round's B ÷ A and
the medians, as JSON on the last line. Not part of
`scripts/dev bench`: it compares builds, not this one against anything.
"""
import argparse
import json
import os
import sys

import requests

from bench.balancer import host_cpu
from bench.bench import log, wrk
from bench.stats import percentile
from tests.integration import pyhttpd

SESSIONS = 8


def start(build):
    h = pyhttpd.Httpd(build_dir=build, loglevel="warn", directives={
        "PyExecRateLimit": "off", "PyExecMaxClientSessions": "off",
        "PyExecSpareHelpers": SESSIONS, "PyExecMaxSessions": 64})
    h.start()
    h.wait_spares(SESSIONS)
    http = requests.Session()
    ids = [http.post(h.url + "/execute", json={"code": "x = 0"},
                     timeout=30).json()["id"] for _ in range(SESSIONS)]
    return h, ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=3)
    args = ap.parse_args()
    builds = [os.path.abspath(args.a), os.path.abspath(args.b)]
    servers = []
    try:
        for b in builds:
            servers.append(start(b))
        for h, ids in servers:                  # warm-up
            wrk(h.url + "/execute", "warm", SESSIONS, 1, ids)
        res = {"a": builds[0], "b": builds[1], "rounds": args.rounds,
               "seconds": args.seconds}
        for conns, keys in ((SESSIONS, ("rps", "cpu_ms")), (1, ("p50_us",))):
            got = {k: ([], []) for k in keys}
            for rnd in range(args.rounds):
                order = (0, 1) if rnd % 2 == 0 else (1, 0)
                for i in order:
                    h, ids = servers[i]
                    cpu = host_cpu(h)
                    r = wrk(h.url + "/execute", "warm", conns, args.seconds,
                            ids)
                    r["cpu_ms"] = 1000 * (host_cpu(h) - cpu) / r["requests"]
                    for k in keys:
                        got[k][i].append(r[k])
                log("%d conn., round %d/%d: %s" % (
                    conns, rnd + 1, args.rounds, ", ".join(
                        "%s A %.3f, B %.3f, B/A %.3f" % (
                            k, a[-1], b[-1], b[-1] / a[-1])
                        for k, (a, b) in got.items())))
            for k, (a, b) in got.items():
                ratios = [y / x for x, y in zip(a, b)]
                res["%s_c%d" % (k, conns)] = {
                    "a": a, "b": b, "b_over_a": ratios,
                    "a_median": percentile(a, 50),
                    "b_median": percentile(b, 50),
                    "b_over_a_median": percentile(ratios, 50)}
    finally:
        for h, _ in servers:
            h.stop()
            h.cleanup()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
