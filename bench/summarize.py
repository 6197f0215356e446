"""Summarises bench/run.sh rows: medians per proxy (over ROUNDS) and the Legate/Envoy ratios.

Input lines: name rps cpu_ticks clk_tck requests p99 idle_kb load_kb non2xx socket_errors
"""
import statistics
import sys

rows = {}
for line in sys.stdin:
    name, rps, ticks, tck, reqs, p99, idle, load, non2xx, sockerr = line.split()
    cpu_us = int(ticks) / int(tck) * 1e6 / int(reqs)
    rows.setdefault(name, []).append(
        (float(rps), cpu_us, p99, int(idle), int(load), int(non2xx), sockerr))

header = ("proxy", "req/s", "CPU us/req", "p99", "idle RSS MiB", "load RSS MiB", "non-2xx")
print("%-8s %9s %11s %9s %13s %13s %8s" % header)
agg = {}
for name, rs in rows.items():
    rps = statistics.median(r[0] for r in rs)
    cpu = statistics.median(r[1] for r in rs)
    idle = statistics.median(r[3] for r in rs) / 1024
    load = statistics.median(r[4] for r in rs) / 1024
    non2xx = sum(r[5] for r in rs)
    agg[name] = (cpu, idle, load, rps)
    print("%-8s %9.0f %11.2f %9s %13.1f %13.1f %8d" % (name, rps, cpu, rs[-1][2], idle, load, non2xx))
    for r in rs:
        if r[6] != "none":
            print("  %s: %s" % (name, r[6]))
if "legate" in agg and "envoy" in agg:
    lg, en = agg["legate"], agg["envoy"]
    print("ratio legate/envoy: CPU us/req %.3f, idle RSS %.3f, load RSS %.3f, req/s %.2f"
          % (lg[0] / en[0], lg[1] / en[1], lg[2] / en[2], lg[3] / en[3]))
