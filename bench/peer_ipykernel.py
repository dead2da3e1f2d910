"""The peer of scripts/dev bench: a warm ipykernel, over its own protocol.

Prints one JSON object: the kernel's start time (start_new_kernel until
it answers kernel_info, median of a few starts) and the round trip of
`x += 1; print(x)` (execute_request until the kernel is idle again, the
stdout message received), the same code the module's warm benchmark runs.
Run with Debian's python3-ipykernel and python3-jupyter-client.
"""
import json
import statistics
import sys
import time

from jupyter_client.manager import start_new_kernel

from bench.stats import PERCENTILES, percentile




def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3")
        starts.append(time.perf_counter() - t0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        out = []
        kc.execute_interactive("x = 0", timeout=30)
        for _ in range(50):             # warm-up, as the module's sessions are
            kc.execute_interactive("x += 1; print(x)", timeout=30,
                                   output_hook=lambda m: None)
        rtt = []
        for _ in range(runs):
            got = []

            def hook(msg):
                if msg["msg_type"] == "stream":
                    got.append(msg["content"]["text"])

            t0 = time.perf_counter()
            reply = kc.execute_interactive("x += 1; print(x)", timeout=30,
                                           output_hook=hook)
            rtt.append(time.perf_counter() - t0)
            if reply["content"]["status"] != "ok" or not got:
                raise SystemExit("kernel answered %r" % (reply["content"],))
            out.append(got[0])
        json.dump({
            "kernel_start_s": statistics.median(starts),
            "kernel_starts_s": starts,
            "runs": runs,
            "rtt_us": {
                "p50": percentile(rtt, 50) * 1e6,
                "p99": percentile(rtt, 99) * 1e6,
                "mean": statistics.fmean(rtt) * 1e6,
            },
            "percentiles_us": [[p, percentile(rtt, p) * 1e6]
                               for p in PERCENTILES],
        }, sys.stdout)
        sys.stdout.write("\n")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
