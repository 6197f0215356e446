"""Request and stream timeouts through Envoy 1.40 and Legate (configs/timeouts.yaml): HCM
request_timeout, stream_idle_timeout and max_stream_duration, route idle_timeout and
max_stream_duration with grpc-timeout handling, and the HCM idle_timeout of HTTP/1 and HTTP/2 connections. Both proxies are driven at once (each case waits
for a timer); statuses, bodies, timing, access log fields and counters are compared.
"""
import contextlib
import os
import re
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import load_template, request_bytes, show

GRPC = [("content-type", "application/grpc"), ("te", "trailers")]
GRPC_BODY = b"\0\0\0\0\0"
# Seconds around the configured timer: a little early (timer granularity), later under load.
EARLY, LATE = 0.05, 0.45


def on_time(elapsed, expected):
    return expected - EARLY <= elapsed <= expected + LATE

# (id, method, path, headers, body, expected seconds): each request completes at once.
CASES = [
    ("hcm-stream-idle", "GET", "/hcm-idle", [], b"", 0.7),
    ("route-idle-overrides-hcm", "GET", "/route-idle", [], b"", 0.2),
    ("route-idle-zero-disables", "GET", "/no-idle", [], b"", 1.0),
    ("route-msd-replaces-route-timeout", "GET", "/msd", [], b"", 0.3),
    ("route-msd-zero-disables-hcm", "GET", "/nomsd", [], b"", 1.3),
    ("grpc-timeout-less-offset", "POST", "/grpc", GRPC + [("grpc-timeout", "200m")], GRPC_BODY, 0.15),
    ("grpc-timeout-capped", "POST", "/grpc", GRPC + [("grpc-timeout", "5S")], GRPC_BODY, 0.35),
    ("grpc-without-timeout", "POST", "/grpc", GRPC, GRPC_BODY, 0.7),
    ("grpc-timeout-uncapped", "POST", "/echo-msd", GRPC + [("grpc-timeout", "5S")], GRPC_BODY, 0.0),
]

# (id, path, expected seconds): the request announces 10 body bytes and sends 3.
INCOMPLETE = [
    ("request-timeout", "/echo", 0.5),
    ("msd-before-request-complete", "/msd", 0.3),
    ("request-timeout-before-idle", "/hcm-idle", 0.5),
]


class EndlessServer:
    """Answers every request with 200 and a chunked body that never ends: one chunk every 0.1 s."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn):
        with conn, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
            for _ in range(100):
                time.sleep(0.1)
                conn.sendall(b"1\r\n.\r\n")

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def proxies(make_pair, values):
    endless = EndlessServer()
    pair = make_pair(load_template("timeouts.yaml"), dict(values, endless_port=endless.port),
                     ("--file-flush-interval-msec", "50"))
    yield pair
    endless.close()
    for p in pair:
        if os.path.exists(log_path(p)):
            os.unlink(log_path(p))


def log_path(proxy):
    return f"/tmp/diff-timeouts-{proxy.admin_port}.log"


def log_lines(proxy):
    if not os.path.exists(log_path(proxy)):
        return []
    with open(log_path(proxy)) as f:
        return f.read().splitlines()


def on_both(pair, fn):
    """(fn(envoy), fn(legate)) run concurrently, each with its elapsed seconds."""
    def timed(p):
        start = time.monotonic()
        result = fn(p)
        return time.monotonic() - start, result
    with ThreadPoolExecutor(2) as ex:
        return tuple(ex.map(timed, (pair.envoy, pair.legate)))


def last_log_line(proxy, count_before):
    deadline = time.time() + 3
    while time.time() < deadline:
        lines = log_lines(proxy)
        if len(lines) > count_before:
            return lines[count_before]
        time.sleep(0.02)
    return None


def compare(pair, send, expected):
    before = {p.kind: len(log_lines(p)) for p in pair}
    (te, e), (tl, l) = on_both(pair, send)
    if e.upstream() is not None:
        # Forwarded: what the upstream saw of the timeouts.
        seen = [{k: v for k, v in r.upstream()["headers"].items() if "timeout" in k} for r in (e, l)]
        assert e.status == l.status and seen[0] == seen[1], show("forwarded timeout headers", *seen)
    else:
        assert (e.status, e.body) == (l.status, l.body), show("response", e, l)
    for name in ("content-type", "grpc-status", "grpc-message", "connection"):
        assert e.header(name) == l.header(name), show(name, e, l)
    assert on_time(te, expected), f"envoy took {te:.2f}s, expected {expected}s"
    assert on_time(tl, expected), f"legate took {tl:.2f}s, expected {expected}s"
    logs = [last_log_line(p, before[p.kind]) for p in pair]
    assert logs[0] == logs[1], show("access log", *logs)
    return e, l


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_stream_timeouts(proxies, case):
    _, method, path, headers, body, expected = case
    compare(proxies, lambda p: p.request(method, path, headers=headers, body=body), expected)


@pytest.mark.parametrize("case", INCOMPLETE, ids=[c[0] for c in INCOMPLETE])
def test_incomplete_request(proxies, case):
    _, path, expected = case

    def dribble(p):
        c = p.connect()
        c.send(request_bytes("POST", path, headers=[("content-length", "10")], close=False) + b"abc")
        response = c.read_response()
        response.conn = c
        return response
    e, l = compare(proxies, dribble, expected)
    assert e.status == 408 and e.header("connection") == "close"
    for r in (e, l):
        with r.conn:
            assert r.conn.is_closed(), "the connection must be closed after the 408"


def test_request_body_data_keeps_the_stream_active(proxies):
    # /route-idle has a 0.2 s idle timeout: a body byte every 0.1 s keeps it away until the
    # request is complete (0.4 s, within the 0.5 s request timeout); then the silent upstream
    # lets it fire: 504.
    def dribble(p):
        with p.connect() as c:
            c.send(request_bytes("POST", "/route-idle", headers=[("content-length", "4")]))
            for _ in range(4):
                time.sleep(0.1)
                c.send(b"x")
            return c.read_response()
    e, _ = compare(proxies, dribble, 0.6)
    assert (e.status, e.body) == (504, b"stream timeout")


def test_max_stream_duration_resets_a_streaming_response(proxies):
    def stream(p):
        with p.connect() as c:
            c.send(request_bytes("GET", "/stream"))
            return c.read_to_eof()
    before = {p.kind: len(log_lines(p)) for p in proxies}
    (te, e), (tl, l) = on_both(proxies, stream)
    for data in (e, l):
        assert data.startswith(b"HTTP/1.1 200") and b"hello" in data, data
        assert not data.endswith(b"0\r\n\r\n"), f"the body must be cut off: {data!r}"
    assert on_time(te, 0.4) and on_time(tl, 0.4), (te, tl)
    logs = [last_log_line(p, before[p.kind]) for p in proxies]
    assert logs[0] == logs[1] == "/stream 200 - max_duration_timeout - -", show("access log", *logs)


def test_request_timeout_stops_once_the_response_has_started(proxies):
    # The upstream answers at once and the request body never comes: the HCM's 1 s duration
    # limit resets the stream, the 0.5 s request timeout does not fire. (Envoy closes the
    # connection a delayed_close_timeout later, so the closing time is not compared.)
    def stream(p):
        with p.connect() as c:
            c.send(request_bytes("POST", "/endless", headers=[("content-length", "10")], close=False))
            return c.read_to_eof()
    before = {p.kind: len(log_lines(p)) for p in proxies}
    timeouts = [p.stats()["http.ingress_http.downstream_rq_timeout"] for p in proxies]
    (_, e), (_, l) = on_both(proxies, stream)
    for data in (e, l):
        assert data.startswith(b"HTTP/1.1 200") and not data.endswith(b"0\r\n\r\n"), data
    logs = [last_log_line(p, before[p.kind]) for p in proxies]
    assert logs[0] == logs[1] == "/endless 200 - max_duration_timeout - -", show("access log", *logs)
    assert [p.stats()["http.ingress_http.downstream_rq_timeout"] for p in proxies] == timeouts


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def h2_first_goaway(port, path):
    """Sends one h2c GET (HPACK literals), then waits for the first GOAWAY frame:
    (seconds after the response headers, last stream id, error code)."""
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", path), (b":authority", b"example.com")]
    block = b"".join(b"\0" + bytes([len(k)]) + k + bytes([len(v)]) + v for k, v in fields)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) + h2_frame(1, 5, 1, block))
        buf, answered = b"", None
        while True:
            chunk = s.recv(65536)
            assert chunk, "closed before GOAWAY"
            buf += chunk
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n = int.from_bytes(buf[:3], "big")
                ftype, flags, payload, buf = buf[3], buf[4], buf[9:9 + n], buf[9 + n:]
                if ftype == 4 and not flags & 1:
                    s.sendall(h2_frame(4, 1, 0))
                elif ftype == 1:
                    answered = time.monotonic()
                elif ftype == 7:
                    last, code = struct.unpack(">II", payload[:8])
                    return time.monotonic() - answered, last & 0x7FFFFFFF, code


def test_http2_idle_connection_is_drained(proxies):
    # Legate then sends the final GOAWAY after a PING round trip, Envoy after its 5 s
    # drain_timeout (README, known differences): only the drain's start is compared.
    before = [p.stats().get("http.ingress_http.downstream_cx_idle_timeout") for p in proxies]
    (_, e), (_, l) = on_both(proxies, lambda p: h2_first_goaway(p.listener_port, b"/echo"))
    assert e[1:] == l[1:] == (2**31 - 1, 0), show("first GOAWAY", e, l)
    assert on_time(e[0], 0.5) and on_time(l[0], 0.5), show("idle", e, l)
    after = [p.stats().get("http.ingress_http.downstream_cx_idle_timeout") for p in proxies]
    assert [a - b for a, b in zip(after, before)] == [1, 1], (before, after)


def h1_idle_close(port, request):
    """Sends `request` (may be empty) on a new HTTP/1 connection and reads until the proxy
    closes it: (seconds from the last byte received, or from the connect, to the close;
    the bytes received)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        buf, last = b"", time.monotonic()
        while chunk := s.recv(65536):
            buf, last = buf + chunk, time.monotonic()
        return time.monotonic() - last, buf


def test_http1_idle_connection_is_closed(proxies):
    # Without any request: closed when idle (0.5 s). After a response, the idle timeout starts
    # a drain: closed after drain_timeout (5 s) and delayed_close_timeout (1 s) more.
    before = [p.stats().get("http.ingress_http.downstream_cx_idle_timeout") for p in proxies]
    get = request_bytes("GET", "/echo", close=False)
    (_, e), (_, l) = on_both(proxies, lambda p: h1_idle_close(p.listener_port, get))
    assert e[1].startswith(b"HTTP/1.1 200") and l[1].startswith(b"HTTP/1.1 200"), show("response", e[1], l[1])
    assert on_time(e[0], 6.5) and on_time(l[0], 6.5), show("idle after the response", e[0], l[0])
    (_, e), (_, l) = on_both(proxies, lambda p: h1_idle_close(p.listener_port, b""))
    assert e[1] == l[1] == b"", show("bytes", e[1], l[1])
    assert on_time(e[0], 0.5) and on_time(l[0], 0.5), show("idle without a request", e[0], l[0])
    after = [p.stats().get("http.ingress_http.downstream_cx_idle_timeout") for p in proxies]
    assert [a - b for a, b in zip(after, before)] == [2, 2], (before, after)


def h1_request_after_idle(port, request):
    """Sends `request` twice on one connection, the second 1 s after the first response:
    (the second response's head, whether the proxy closed the connection after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        heads = []
        for wait in (0, 1.0):
            time.sleep(wait)
            s.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, body = buf.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += s.recv(65536)
            heads.append(head.lower())
        return b"connection: close" in heads[1], b"connection: close" in heads[0], s.recv(65536) == b""


def test_http1_request_while_draining_closes_the_connection(proxies):
    get = request_bytes("GET", "/echo", close=False)
    (_, e), (_, l) = on_both(proxies, lambda p: h1_request_after_idle(p.listener_port, get))
    assert e == l == (True, False, True), show("connection: close (second, first), closed", e, l)


def test_timeout_counters(proxies):
    # Runs after the cases above (file order): the counters they moved must agree.
    names = ["downstream_rq_timeout", "downstream_rq_idle_timeout", "downstream_rq_max_duration_reached",
             "downstream_rq_total", "downstream_rq_2xx", "downstream_rq_4xx", "downstream_rq_5xx"]
    e, l = (p.stats() for p in proxies)
    for n in names:
        key = f"http.ingress_http.{n}"
        assert e.get(key) == l.get(key), f"{key}: envoy {e.get(key)}, legate {l.get(key)}"
    assert e["http.ingress_http.downstream_rq_max_duration_reached"] > 0
