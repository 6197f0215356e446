#!/usr/bin/env python3
"""Differential fuzzing against real Envoy: the mutated HTTP/1 requests of blackbox.py, each sent
to Legate and to Envoy 1.40 (both on fuzz/blackbox.yaml, in front of the same upstreams), and
the first line of each answer compared.

Prints every kind of difference (Legate's status line, Envoy's) with its count and the shortest
request that showed it, most frequent first. Exits 1 when there is any with --fail.

    python3 fuzz/differential.py [DURATION=120] [SEED=1] [--fail]

LEGATE_BIN defaults to target/debug/legate, ENVOY_BIN to .venv/bin/envoy.
"""
import collections
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blackbox import ROOT, SEEDS, Server, Upstream, free_port, mutate  # noqa: E402

# Answers that depend on the upstream's behaviour, not on the proxy's parsing.
SKIP = (b"/close", b"/bad", b"/five", b"/ws")


def first_line(port, data):
    """The first line of the answer to `data`, or <closed> / <silent>."""
    out = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(data)
            s.settimeout(0.4)
            while b"\r\n" not in out:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
    except socket.timeout:
        pass
    except OSError as e:
        return "<" + type(e).__name__ + ">"
    if not out:
        return "<closed or silent>"
    return out.split(b"\r\n")[0][:40].decode("latin1")


def start(cmd, config, work, name):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(config)
    log = open(os.path.join(work, name + ".log"), "w")
    return subprocess.Popen(cmd + ["-c", path, "--concurrency", "1", "-l", "error"], stdout=log, stderr=subprocess.STDOUT)


def main():
    args = [a for a in sys.argv[1:] if a != "--fail"]
    duration = float(args[0]) if args else 120
    seed = int(args[1]) if len(args) > 1 else 1
    legate_bin = os.environ.get("LEGATE_BIN", os.path.join(ROOT, "target/debug/legate"))
    envoy_bin = os.environ.get("ENVOY_BIN", os.path.join(ROOT, ".venv/bin/envoy"))
    upstream_port = free_port()
    for address in ("127.0.0.1", "127.0.0.2"):
        server = Server((address, upstream_port), Upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(os.path.join(ROOT, "fuzz/blackbox.yaml")) as f:
        template = f.read().replace("{upstream_port}", str(upstream_port))
    work = tempfile.mkdtemp(prefix="legate-differential.")
    ports = {}
    procs = []
    for name, cmd in (("legate", [legate_bin]), ("envoy", [envoy_bin, "--use-dynamic-base-id"])):
        ports[name] = free_port()
        config = template.replace("{port}", str(ports[name])).replace("{admin_port}", str(free_port()))
        procs.append(start(cmd, config, work, name))
    try:
        for name, port in ports.items():
            for _ in range(100):
                if first_line(port, b"GET /direct HTTP/1.1\r\nHost: a\r\n\r\n").startswith("HTTP/1.1 200"):
                    break
                time.sleep(0.1)
            else:
                sys.exit(f"{name} did not start (logs in {work})")
        deadline = time.time() + duration
        differences = collections.defaultdict(list)
        counted = [0]

        def worker(worker_seed):
            r = random.Random(worker_seed)
            while time.time() < deadline:
                data = mutate(r, r.choice(SEEDS))
                if any(s in data for s in SKIP):
                    continue
                legate, envoy = first_line(ports["legate"], data), first_line(ports["envoy"], data)
                counted[0] += 1
                if legate != envoy:
                    differences[(legate, envoy)].append(data)

        threads = [threading.Thread(target=worker, args=(seed * 1000 + i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    print(f"requests: {counted[0]}, kinds of difference: {len(differences)}")
    for (legate, envoy), examples in sorted(differences.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(examples):6d}  legate {legate!r:44} envoy {envoy!r}\n        e.g. {min(examples, key=len)[:200]!r}")
    if differences and "--fail" in sys.argv:
        sys.exit(1)


if __name__ == "__main__":
    main()
