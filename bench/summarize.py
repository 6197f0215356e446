"""Summarises bench/run.sh rows: medians per proxy (over ROUNDS) and the Legate/Envoy ratios.

Input lines: name rps cpu_ticks clk_tck requests p99 idle_kb load_kb non2xx socket_errors user_ticks

CPU is the proxy's utime+stime; it is also split into user space (utime) and kernel (stime,
mostly the loopback TCP path of the proxy's socket calls), since the kernel part is much the same
for every proxy on this bench and bounds how low any proxy's total can go.
"""
import statistics
import sys

rows = {}
for line in sys.stdin:
    name, rps, ticks, tck, reqs, p99, idle, load, non2xx, sockerr, user_ticks = line.split()
    per_req = 1e6 / int(tck) / int(reqs)
    cpu_us = int(ticks) * per_req
    user_us = int(user_ticks) * per_req
    rows.setdefault(name, []).append(
        (float(rps), cpu_us, p99, int(idle), int(load), int(non2xx), sockerr, user_us, cpu_us - user_us))

header = ("proxy", "req/s", "CPU us/req", "user", "kernel", "p99", "idle RSS MiB", "load RSS MiB", "non-2xx")
print("%-8s %9s %11s %7s %7s %9s %13s %13s %8s" % header)
agg = {}
for name, rs in rows.items():
    rps = statistics.median(r[0] for r in rs)
    cpu = statistics.median(r[1] for r in rs)
    user = statistics.median(r[7] for r in rs)
    kernel = statistics.median(r[8] for r in rs)
    idle = statistics.median(r[3] for r in rs) / 1024
    load = statistics.median(r[4] for r in rs) / 1024
    non2xx = sum(r[5] for r in rs)
    agg[name] = (cpu, idle, load, rps, user, kernel)
    print("%-8s %9.0f %11.2f %7.2f %7.2f %9s %13.1f %13.1f %8d"
          % (name, rps, cpu, user, kernel, rs[-1][2], idle, load, non2xx))
    for r in rs:
        if r[6] != "none":
            print("  %s: %s" % (name, r[6]))
if "legate" in agg and "envoy" in agg:
    lg, en = agg["legate"], agg["envoy"]
    print("ratio legate/envoy: CPU us/req %.3f (user %.3f, kernel %.3f), idle RSS %.3f, load RSS %.3f, req/s %.2f"
          % (lg[0] / en[0], lg[4] / en[4], lg[5] / en[5], lg[1] / en[1], lg[2] / en[2], lg[3] / en[3]))
    for other in ("nginx", "haproxy"):
        if other in agg:
            o = agg[other]
            print("ratio %s/envoy: CPU us/req %.3f (user %.3f, kernel %.3f); legate/%s CPU us/req %.3f"
                  % (other, o[0] / en[0], o[4] / en[4], o[5] / en[5], other, lg[0] / o[0]))
    # The kernel part is the loopback TCP path, the same for every proxy: the lowest one measured
    # bounds from below the CPU ratio that any proxy can reach on this machine.
    floor_name = min(agg, key=lambda n: agg[n][5])
    print("kernel floor: %.2f us/req (%s) = %.3f of envoy's CPU us/req: no proxy's ratio goes below it here"
          % (agg[floor_name][5], floor_name, agg[floor_name][5] / en[0]))
