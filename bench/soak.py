#!/usr/bin/env python3
"""Helper of bench/soak.sh.

  soak.py upstream PORT NAME     HTTP/1.1 keep-alive server on 127.0.0.1:PORT answering every
                                 request 200 "NAME"; starts in ~50 ms and dies cleanly on SIGKILL.
  soak.py report RSS_BOUND_PCT RSS_BOUND_MIB WORK NAME...
                                 reads WORK/NAME.{wrk,rss,stats,access.log,kills},
                                 prints the figures side by side and each proxy's verdict; exits 1
                                 if the first NAME (Legate) failed.
"""
import asyncio
import re
import sys


def upstream(port, name):
    body = (name + "\n").encode()
    ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    ok_close = ok.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
                if m:
                    await reader.readexactly(int(m.group(1)))
                close = b"\r\nconnection: close" in lower
                writer.write(ok_close if close else ok)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- report ---------------------------------------------------------------------------------------

STATS = [
    "upstream_rq_total",
    "upstream_rq_2xx",
    "upstream_rq_5xx",
    "upstream_rq_retry",
    "upstream_rq_retry_success",
    "upstream_rq_retry_overflow",
    "upstream_rq_retry_limit_exceeded",
    "upstream_cx_total",
    "upstream_cx_connect_fail",
    "upstream_cx_destroy_remote",
    "upstream_cx_destroy_with_active_rq",
    "upstream_cx_destroy_local_with_active_rq",
    "upstream_cx_destroy_remote_with_active_rq",
    "upstream_rq_rx_reset",
    "upstream_rq_pending_failure_eject",
    "lb_healthy_panic",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_enforced_consecutive_gateway_failure",
    "outlier_detection.ejections_enforced_consecutive_5xx",
    "outlier_detection.ejections_active",
    "health_check.attempt",
    "health_check.success",
    "health_check.failure",
    "health_check.network_failure",
    "health_check.healthy",
    "membership_healthy",
]


def wrk_figures(text):
    f = {"requests": 0, "rps": "?", "p99": "?", "non2xx": 0, "sockerr": "none", "max": "?"}
    if m := re.search(r"(\d+) requests in", text):
        f["requests"] = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+(\S+)", text):
        f["rps"] = m.group(1)
    if m := re.search(r"^\s+99%\s+(\S+)", text, re.M):
        f["p99"] = m.group(1)
    if m := re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", text, re.M):
        f["max"] = m.group(1)
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        f["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors:\s*(.*)", text):
        f["sockerr"] = m.group(1).strip()
    return f


def sockerr_total(s):
    return sum(int(n) for n in re.findall(r"\d+", s)) if s != "none" else 0


def rss_verdict(samples, pct, mib):
    """Max of the last quarter of samples vs max of the first quarter."""
    if len(samples) < 4:
        return None
    q = max(1, len(samples) // 4)
    first, last = max(samples[:q]), max(samples[-q:])
    bound = max(first * pct / 100, mib * 1024)
    return first, last, bound, last - first <= bound


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def report(pct, mib, work, names):
    pct, mib = float(pct), float(mib)
    rows, verdicts, stats, kill_logs = {}, {}, {}, {}
    for name in names:
        w = wrk_figures(read(f"{work}/{name}.wrk"))
        rss = [int(x.split()[1]) for x in read(f"{work}/{name}.rss").split("\n") if x.strip()]
        # "0 DC" lines are requests wrk abandoned when it stopped (end of warm-up and of the run).
        logged = [l for l in read(f"{work}/{name}.access.log").splitlines() if l.strip()]
        dc = [l for l in logged if l.split()[1:3] == ["0", "DC"]]
        failed_log = [l for l in logged if l not in dc]
        st = {}
        for line in read(f"{work}/{name}.stats").splitlines():
            k, _, v = line.partition(": ")
            if k.startswith("cluster.backend."):
                st[k[len("cluster.backend."):]] = v.strip()
        stats[name] = st
        v = rss_verdict(rss, pct, mib)
        problems = []
        if w["requests"] == 0:
            problems.append("wrk completed no requests")
        if w["non2xx"]:
            problems.append(f"{w['non2xx']} non-2xx responses")
        if sockerr_total(w["sockerr"]):
            problems.append(f"socket errors: {w['sockerr']}")
        if v is None:
            problems.append("too few RSS samples")
        elif not v[3]:
            problems.append(f"RSS grew {(v[1] - v[0]) / 1024:.1f} MiB (bound {v[2] / 1024:.1f} MiB)")
        kill_logs[name] = read(f"{work}/{name}.kills").splitlines()
        problems += [k.split(" ", 1)[1] for k in kill_logs[name] if "not running" in k]
        rows[name] = (w, rss, v, failed_log, dc)
        verdicts[name] = problems

    mb = lambda kb: f"{kb / 1024:.1f}"
    col = max(18, *(len(n) + 2 for n in names))
    line = lambda label, vals: print(f"{label:<68}" + "".join(f"{x:>{col}}" for x in vals))
    line("", names)
    line("requests", [rows[n][0]["requests"] for n in names])
    line("req/s", [rows[n][0]["rps"] for n in names])
    line("latency p99 / max", [f"{rows[n][0]['p99']}/{rows[n][0]['max']}" for n in names])
    line("non-2xx", [rows[n][0]["non2xx"] for n in names])
    line("socket errors", [sockerr_total(rows[n][0]["sockerr"]) for n in names])
    line("access log: failed or flagged requests", [len(rows[n][3]) for n in names])
    line("access log: 0 DC (abandoned by wrk as it stopped)", [len(rows[n][4]) for n in names])
    line("RSS MiB first", [mb(rows[n][1][0]) if rows[n][1] else "?" for n in names])
    line("RSS MiB max", [mb(max(rows[n][1])) if rows[n][1] else "?" for n in names])
    line("RSS MiB last", [mb(rows[n][1][-1]) if rows[n][1] else "?" for n in names])
    line("RSS MiB max of first / last quarter", [f"{mb(rows[n][2][0])}/{mb(rows[n][2][1])}" if rows[n][2] else "?" for n in names])
    line("RSS samples", [len(rows[n][1]) for n in names])
    print("cluster.backend. counters at the end:")
    for s in STATS:
        if any(s in stats[n] for n in names):
            line(f"  {s}", [stats[n].get(s, "-") for n in names])

    for name in names:
        kills = kill_logs[name]
        print(f"{name}: {sum(1 for k in kills if ' kill ' in k)} kills, {sum(1 for k in kills if ' start ' in k)} restarts")
    for name in names:
        problems = verdicts[name]
        print(f"{name}: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}")
        failed_log = rows[name][3]
        if failed_log:
            # Failed requests (by start time) merged with the kill/restart times, truncated.
            # Failed requests merged with the kill/restart events of the 5 s before each.
            def secs(t):
                h, m, sec = t[11:-1].split(":")
                return int(h) * 3600 + int(m) * 60 + float(sec)
            times = [secs(l.split(" ", 1)[0]) for l in failed_log]
            events = [k for k in kill_logs[name] if any(0 <= t - secs(k.split(" ", 1)[0]) <= 5 for t in times)]
            timeline = sorted([(l.split(" ", 1)[0], "request " + l.split(" ", 1)[1]) for l in failed_log]
                              + [(k.split(" ", 1)[0], "event   " + k.split(" ", 1)[1]) for k in events])
            print(f"  {name}: {len(failed_log)} failed or flagged requests (time, code, flags, upstream host, "
                  "duration, details, failure reason) and the kill/restart events before them, first 60 lines:")
            for t, what in timeline[:60]:
                print(f"    {t} {what}")
    return 1 if verdicts[names[0]] else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "upstream":
        upstream(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 6 and sys.argv[1] == "report":
        sys.exit(report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
