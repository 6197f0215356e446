"""Summarises bench/run.sh rounds: medians per proxy and the Legate/Envoy ratios."""
import statistics
import sys

rows = {}
for line in sys.stdin:
    name, rps, cpu, p99, idle, load = line.split()
    rows.setdefault(name, []).append((float(rps), float(cpu), p99, int(idle), int(load)))

header = ("proxy", "req/s", "CPU us/req", "p99", "idle RSS MiB", "load RSS MiB")
print("%-8s %9s %11s %9s %13s %13s" % header)
agg = {}
for name, rs in rows.items():
    cpu = statistics.median(r[1] for r in rs)
    rps = statistics.median(r[0] for r in rs)
    idle = statistics.median(r[3] for r in rs) / 1024
    load = statistics.median(r[4] for r in rs) / 1024
    agg[name] = (cpu, idle)
    print("%-8s %9.0f %11.2f %9s %13.1f %13.1f" % (name, rps, cpu, rs[-1][2], idle, load))
if "legate" in agg and "envoy" in agg:
    print("ratio legate/envoy: CPU per request %.3f, idle RSS %.3f"
          % (agg["legate"][0] / agg["envoy"][0], agg["legate"][1] / agg["envoy"][1]))
