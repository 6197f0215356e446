#!/usr/bin/env python3
"""Black-box fuzzing of a running Legate: mutated HTTP/1 requests, random HTTP/2 frames and
random admin queries, sent from many threads over loopback for DURATION seconds.

It starts the binary itself (LEGATE_BIN, default target/debug/legate: a debug build keeps the
debug_assert! invariants on) with fuzz/blackbox.yaml in front of two small upstreams of its own
(threaded http.server on 127.0.0.1 and 127.0.0.2), and fails (exit 1) if Legate panics (its log
says "panicked"), exits, stops answering a plain request (checked every 5 s), or leaves an admin
request without a response.

    python3 fuzz/blackbox.py [DURATION=300] [SEED=1]
"""
import http.server
import os
import random
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The differential suite's port picker: ports below the ephemeral range, none handed out twice.
sys.path.insert(0, os.path.join(ROOT, "tests", "differential"))
from upstreams import free_port  # noqa: E402
DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 300
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
THREADS = 16




# --- upstreams ---------------------------------------------------------------------------------

class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers by path: chunked with trailers, connection: close, 503, a malformed response, or
    200 echoing the start of the request body."""
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        n = int(self.headers.get("content-length") or 0)
        if n > 1 << 20:
            self.close_connection = True
            return
        body = self.rfile.read(n) if n else b""
        path = self.path
        if "chunk" in path:
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")
        elif "close" in path:
            self.send_response(200)
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"bye")
            self.close_connection = True
        elif "five" in path:
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()
        elif "bad" in path:
            self.wfile.write(b"HTTP/1.1 2x0 OK\r\nfoo bar\r\n\r\n")
            self.close_connection = True
        else:
            out = b"ok " + body[:100]
            self.send_response(200)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # the proxy went away mid-response: expected under fuzzing


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a request the upstream cannot read is the fuzzer's doing, not Legate's


# --- HTTP/1 -------------------------------------------------------------------------------------

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /direct HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 1.2.3.4\r\nx-request-id: abc\r\n\r\n",
    b"GET /redirect?q=1 HTTP/1.1\r\nHost: a:80\r\n\r\n",
    b"GET /re/abc/def HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /rw/x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /hash HTTP/1.1\r\nHost: a\r\nx-k: 1\r\ncookie: c=5; d=6\r\n\r\n",
    b"GET /chunk HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
    b"GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /five HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /bad HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a.b/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
]
TOKENS = [b"\r\n", b"\n", b"\r", b":", b" ", b"\t", b"\x00", b"\xff", b"chunked", b"%00", b"/../", b"?", b"#",
          b"Content-Length: 99999999999999999999\r\n", b"Transfer-Encoding: chunked\r\n", b"Host: b\r\n",
          b"ffffffffffffffff\r\n", b"x" * 70000, b"Upgrade: h2c\r\n", b"Connection: close\r\n", b"-1",
          b"\x80\x81", b"Content-Length: 0\r\n"]


def mutate(r, data):
    data = bytearray(data)
    for _ in range(r.randint(1, 6)):
        op, pos = r.randrange(5), r.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = r.randrange(256)
        elif op == 1:
            data[pos:pos] = r.choice(TOKENS)
        elif op == 2:
            del data[pos:pos + r.randint(1, 8)]
        elif op == 3:
            data[pos:pos] = data[pos:pos + r.randint(1, 30)] * r.randint(1, 4)
        else:
            data[pos:pos] = r.choice(SEEDS)
    return bytes(data)


def exchange(port, r, data):
    """Sends `data` (whole or in small pieces, sometimes half-closing) and reads until the
    proxy closes or goes quiet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            if r.random() < 0.3:
                sent = 0
                while sent < len(data):
                    piece = r.randint(1, 64)
                    s.sendall(data[sent:sent + piece])
                    sent += piece
            else:
                s.sendall(data)
            if r.random() < 0.2:
                s.shutdown(socket.SHUT_WR)
            s.settimeout(0.3)
            while s.recv(65536):
                pass
    except OSError:
        pass


def http1_case(port, r):
    exchange(port, r, mutate(r, r.choice(SEEDS)))


# --- HTTP/2 -------------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER_BLOCKS = [b"\x82\x86\x84\x41\x01a", b"\x83\x86\x84\x41\x01a"]  # GET / and POST / on authority a


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def random_frame(r):
    kind = r.choice([0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, r.randrange(256)])
    flags = r.choice([0, 1, 4, 5, 8, 0x20, 0x25, r.randrange(256)])
    stream = r.choice([0, 1, 3, 5, 2, 0x7fffffff, r.randrange(1 << 31)])
    payload = r.choice([
        lambda: r.choice(HEADER_BLOCKS),
        lambda: struct.pack(">I", r.randrange(1 << 32)),
        lambda: bytes(r.randrange(256) for _ in range(r.randrange(40))),
        lambda: struct.pack(">HI", r.randrange(8), r.choice([0, 1, 65535, 1 << 31, r.randrange(1 << 32)])),
        lambda: b"\x00" * r.choice([0, 1, 5, 8, 16384, 20000]),
    ])()
    return frame(kind, flags, stream, payload)


def h2_case(port, r):
    data = PREFACE + frame(4, 0, 0, b"")
    if r.random() < 0.5:
        data += frame(1, 5, 1, HEADER_BLOCKS[0])
    for _ in range(r.randint(1, 8)):
        data += random_frame(r)
    if r.random() < 0.3:
        i = r.randrange(len(data))
        data = data[:i] + bytes([r.randrange(256)]) + data[i + 1:]
    exchange(port, r, data)


# --- admin --------------------------------------------------------------------------------------

ADMIN_PATHS = ["/stats", "/stats/prometheus", "/clusters", "/listeners", "/config_dump", "/server_info", "/memory",
               "/logging", "/ready", "/help", "/", "/runtime", "/certs", "/hot_restart_version", "/healthcheck/ok",
               "/stats/recentlookups", "/reset_counters"]
ADMIN_KEYS = ["filter", "format", "usedonly", "type", "level", "resource", "mask", "name_regex", "include_eds",
              "histogram_buckets", "paths", "inboundonly", "hidden", "text_readouts", "x", ""]
ADMIN_VALUES = ["json", "prometheus", "text", "html", "", "(", "[a-", ".*", "\\", "a{99999999}", "cluster.*", "debug",
                "upstream:trace", "dynamic_active_clusters", "cumulative", "disjoint", "detailed", "none", "%ff", "%",
                "true", "1", "\x00", "a" * 5000, "(a*)*b", "\u00e9"]


def admin_case(port, r):
    """One admin request; fails the run when it gets no HTTP response."""
    pairs = [f"{r.choice(ADMIN_KEYS)}={r.choice(ADMIN_VALUES)}" if r.random() < 0.8 else r.choice(ADMIN_KEYS)
             for _ in range(r.randint(0, 3))]
    query = "&".join(pairs)
    if r.random() < 0.5:
        query = urllib.parse.quote(query, safe="=&")
    method = r.choice(["GET", "GET", "POST", "HEAD", "PUT"])
    req = f"{method} {r.choice(ADMIN_PATHS)}?{query} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req.encode("utf-8", "surrogateescape"))
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"admin gave no response to {req[:200]!r}")


# --- run ----------------------------------------------------------------------------------------

def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /direct HTTP/1.1\r\nHost: a\r\n\r\n")
            return s.recv(1000).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def main():
    binary = os.environ.get("LEGATE_BIN", os.path.join(ROOT, "target/debug/legate"))
    upstream_port, port, admin_port = free_port(), free_port(), free_port()
    for address in ("127.0.0.1", "127.0.0.2"):
        server = Server((address, upstream_port), Upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(os.path.join(ROOT, "fuzz/blackbox.yaml")) as f:
        config = f.read()
    for name, value in (("{port}", port), ("{admin_port}", admin_port), ("{upstream_port}", upstream_port)):
        config = config.replace(name, str(value))
    work = tempfile.mkdtemp(prefix="legate-blackbox.")
    config_path, log_path = os.path.join(work, "legate.yaml"), os.path.join(work, "legate.log")
    with open(config_path, "w") as f:
        f.write(config)
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "-c", config_path, "--concurrency", "2", "-l", "warning"], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "RUST_BACKTRACE": "1"})
    failure = None
    try:
        for _ in range(100):
            if healthy(port):
                break
            time.sleep(0.1)
        else:
            failure = "Legate did not start"
        deadline = time.time() + DURATION
        counts = {"http1": 0, "h2": 0, "admin": 0}
        errors = []

        def worker(seed):
            r = random.Random(seed)
            cases = [("http1", http1_case, port), ("h2", h2_case, port), ("admin", admin_case, admin_port)]
            while time.time() < deadline and not errors:
                name, case, case_port = r.choices(cases, weights=[6, 3, 1])[0]
                try:
                    case(case_port, r)
                except (AssertionError, OSError) as e:
                    errors.append(f"{name}: {e}")
                counts[name] += 1

        threads = [threading.Thread(target=worker, args=(SEED * 1000 + i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        while not failure and any(t.is_alive() for t in threads):
            time.sleep(5)
            if proc.poll() is not None:
                failure = f"Legate exited with {proc.returncode}"
            elif not healthy(port):
                failure = "Legate stopped answering a plain request"
        for t in threads:
            t.join()
        failure = failure or (errors[0] if errors else None)
        print("cases:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        log.close()
    with open(log_path) as f:
        text = f.read()
    if "panicked" in text:
        failure = failure or "Legate panicked"
        print(text[text.index("panicked") - 200:][:3000])
    if failure:
        print("FAILED:", failure, "(log:", log_path + ")")
        sys.exit(1)
    print("ok: no panic, Legate served throughout")


if __name__ == "__main__":
    main()
