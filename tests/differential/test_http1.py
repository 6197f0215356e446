"""HTTP/1 codec strictness and connection handling, with raw bytes on the wire.

For each malformed request: the status (and Envoy's, as a harness check), the body, that the
connection is closed afterwards, and that the listener keeps serving.
"""
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from harness import request_bytes, show

BIG = b"v" * (70 * 1024)
# (id, raw request, Envoy 1.40's status)
MALFORMED = [
    ("http-1.0", b"GET /films HTTP/1.0\r\nhost: x\r\n\r\n", 426),
    ("missing-host", b"GET /films HTTP/1.1\r\n\r\n", 400),
    ("invalid-header-name", b"GET /films HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n", 400),
    ("bad-request-line", b"BLAH\r\n\r\n", 400),
    ("bad-version", b"GET /films HTTP/9.9\r\nhost: x\r\n\r\n", 426),
    ("headers-over-60KiB", b"GET /films HTTP/1.1\r\nhost: x\r\nx-big: " + BIG + b"\r\n\r\n", 431),
    ("two-content-lengths", b"POST /films HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", 400),
    ("two-equal-content-lengths", b"POST /films HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nab", 400),
    ("content-length-and-chunked",
     b"POST /films HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("transfer-encoding-gzip", b"POST /films HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n", 501),
    ("transfer-encoding-gzip-chunked",
     b"POST /films HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("bad-chunk-size", b"POST /films HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", 400),
    ("negative-content-length", b"POST /films HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n", 400),
    # Envoy's HTTP/1 codec knows http-parser's methods only, spelled exactly (found by fuzzing).
    ("unknown-method", b"FOO /films HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("lower-case-method", b"get /films HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("m-search-method", b"M-SEARCH /films HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("unknown-method-http-1.0", b"FOO /films HTTP/1.0\r\nhost: x\r\n\r\n", 400),
    # Request targets and Host values Envoy's codec refuses (found by the same fuzz).
    ("relative-target", b"GET films HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("asterisk-target-not-options", b"GET * HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("authority-target-not-connect", b"GET x:80 HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("ftp-absolute-target", b"GET ftp://x/films HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("connect-without-port", b"CONNECT x HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("connect-port-out-of-range", b"CONNECT x:99999 HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("host-with-brace", b"GET /films HTTP/1.1\r\nhost: x{y\r\n\r\n", 400),
    ("host-with-space", b"GET /films HTTP/1.1\r\nhost: x y\r\n\r\n", 400),
    ("host-non-ascii", b"GET /films HTTP/1.1\r\nhost: x\xd8\r\n\r\n", 400),
    ("relative-target-http-1.0", b"GET films HTTP/1.0\r\nhost: x\r\n\r\n", 400),
    # Envoy's path normalization refuses a fragment (also found by the fuzz).
    ("fragment", b"GET /films/a#f HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("fragment-in-query", b"GET /films/a?q=1#f HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("fragment-absolute-form", b"GET http://x/films/a#f HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    ("fragment-http-1.0", b"GET /films/a#f HTTP/1.0\r\nhost: x\r\n\r\n", 426),
]
IDS = [m[0] for m in MALFORMED]
CASES = [m[1:] for m in MALFORMED]


def _exchange(p, raw):
    """Sends `raw` on a fresh connection (no connection: close); returns (response or None,
    whether the proxy closed the connection afterwards)."""
    with p.connect() as c:
        c.send(raw)
        try:
            resp = c.read_response()
        except (EOFError, ConnectionResetError):
            return None, True
        return resp, c.is_closed()


@pytest.fixture(scope="module")
def malformed(pair):
    """{raw: ((envoy response, closed), (legate response, closed))} for every MALFORMED case.

    All exchanges run at once: telling a close apart from an idle connection takes waiting out
    Envoy's delayed_close_timeout (1 s) on every one of them."""
    jobs = [(raw, p) for raw, _ in CASES for p in pair]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: _exchange(job[1], job[0]), jobs))
    out = {}
    for (raw, p), result in zip(jobs, results):
        out.setdefault(raw, {})[p.kind] = result
    return {raw: (r["envoy"], r["legate"]) for raw, r in out.items()}


def exchange(malformed, raw):
    return malformed[raw]


@pytest.mark.parametrize("raw,status", CASES, ids=IDS)
def test_malformed_status(malformed, raw, status):
    (e, _), (l, _) = exchange(malformed, raw)
    assert e is not None and e.status == status, show("Envoy itself (harness check)", e, None)
    assert l is not None and l.status == e.status, show("status", e.status, l and l.status)


@pytest.mark.parametrize("raw,status", CASES, ids=IDS)
def test_malformed_body(malformed, raw, status):
    (e, _), (l, _) = exchange(malformed, raw)
    assert l is not None and l.body == e.body, show("body", e.body, l and l.body)


@pytest.mark.parametrize("raw,status", CASES, ids=IDS)
def test_malformed_header_names(malformed, raw, status):
    (e, _), (l, _) = exchange(malformed, raw)
    assert l is not None and l.header_names() == e.header_names(), show("header names", e.headers, l and l.headers)


@pytest.mark.parametrize("raw,status", CASES, ids=IDS)
def test_malformed_closes_connection(malformed, raw, status):
    (_, ec), (_, lc) = exchange(malformed, raw)
    assert ec, "Envoy kept the connection open (harness check)"
    assert lc == ec, show("connection closed after the error", ec, lc)


def test_listener_serves_after_malformed(pair, malformed):
    """After every malformed request above, the listener still serves new connections."""
    e, l = pair.both(lambda p: [p.get("/films/after").status for _ in range(3)])
    assert e == l == [200] * 3, show("statuses after the malformed requests", e, l)


def test_known_methods_beyond_the_common_ones_are_proxied(pair):
    """Methods of Envoy's HTTP/1 codec's list reach the upstream as sent."""
    def methods(p):
        out = []
        for method in ("PURGE", "MSEARCH", "PROPFIND", "SOURCE"):
            with p.connect() as c:
                c.send(request_bytes(method, "/films/m"))
                r = c.read_response()
                out.append((method, r.status, r.upstream()["method"]))
        return out
    e, l = pair.both(methods)
    assert l == e, show("methods proxied", e, l)
    assert [s for _, s, _ in e] == [200] * 4, show("Envoy itself (harness check)", e, None)


def test_keep_alive_serves_several_requests(pair):
    def three(p):
        with p.connect() as c:
            out = []
            for i in range(3):
                c.send(request_bytes("GET", f"/films/ka{i}", close=False))
                r = c.read_response()
                out.append((r.status, r.upstream()["path"]))
            return out
    e, l = pair.both(three)
    assert l == e == [(200, f"/films/ka{i}") for i in range(3)], show("keep-alive responses", e, l)


def test_pipelined_requests(pair):
    def pipelined(p):
        with p.connect() as c:
            c.send(request_bytes("GET", "/films/p1", close=False) + request_bytes("GET", "/ratings/p2", close=False))
            return [(r.status, r.upstream()["path"]) for r in (c.read_response(), c.read_response())]
    e, l = pair.both(pipelined)
    assert l == e, show("pipelined responses", e, l)


def test_upstream_connection_reuse(pair, servers):
    """Sequential requests on separate downstream connections share one pooled upstream connection."""
    def distinct_upstream_ports(p):
        tag = f"/films/reuse-{p.kind}"
        for _ in range(5):
            assert p.get(tag).status == 200
        return len(set(servers["films"].peer_ports(tag)))
    e, l = pair.both(distinct_upstream_ports)
    assert l == e, show("distinct upstream connections for 5 sequential requests", e, l)


def test_expect_100_continue(pair):
    """Expect: 100-continue: the proxy answers 100 itself, then forwards the body (without Expect)."""
    body = b"hello-100"

    def run(p):
        with p.connect() as c:
            head = request_bytes("POST", "/films/expect", headers=[("expect", "100-continue"),
                                                                    ("content-length", str(len(body)))])
            c.send(head)
            c.sock.settimeout(3)
            try:
                first = c.sock.recv(4096)
            except socket.timeout:
                first = b""
            c.sock.settimeout(10)
            got_continue = first.startswith(b"HTTP/1.1 100")
            c.buf += first
            c.send(body)
            r = c.read_response()
            up = r.upstream()
            return got_continue, r.interim, r.status, up["body_len"], up["headers"].get("expect")
    e, l = pair.both(run)
    assert e[0] and e[2] == 200, show("Envoy (harness check)", e, None)
    assert l == e, show("(100 before body, interim statuses, status, body length upstream, expect upstream)", e, l)


def test_slow_client_request_body(pair):
    """A body trickling in over several writes arrives whole."""
    def run(p):
        with p.connect() as c:
            c.send(request_bytes("POST", "/films/trickle", headers=[("content-length", "30")]))
            for i in range(3):
                time.sleep(0.05)
                c.send(b"0123456789")
            r = c.read_response()
            return r.status, r.upstream()["body_len"]
    e, l = pair.both(run)
    assert l == e == (200, 30), show("(status, upstream body length)", e, l)


@pytest.mark.parametrize("raw,status", [c for c in CASES if c[1] in (400, 501) and b"HTTP/1.1" in c[0]],
                         ids=[i for i, c in zip(IDS, CASES) if c[1] in (400, 501) and b"HTTP/1.1" in c[0]])
def test_malformed_after_a_served_request(pair, raw, status):
    """On a keep-alive connection: a good request is answered, then the malformed one gets
    Envoy's reply and the connection closes."""
    def run(p):
        with p.connect() as c:
            c.send(request_bytes("GET", "/films/first", close=False))
            first = c.read_response()
            c.send(raw)
            try:
                second = c.read_response()
            except (EOFError, ConnectionResetError):
                return first.status, None
            return first.status, second.status, second.body, second.header_names(), c.is_closed()
    e, l = pair.both(run)
    assert e[:2] == (200, status), show("Envoy (harness check)", e, None)
    assert l == e, show("good request, then a malformed one on the same connection", e, l)


def test_malformed_pipelined_behind_a_request_in_flight(pair):
    """A malformed request pipelined right behind a good one still waiting for its upstream."""
    def run(p):
        with p.connect() as c:
            c.send(request_bytes("GET", "/films/slow", headers=[("x-echo-delay-ms", "200")], close=False)
                   + b"POST /films HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n")
            out = []
            for _ in range(2):
                try:
                    out.append(c.read_response().status)
                except (EOFError, ConnectionResetError):
                    out.append(None)
            return out
    e, l = pair.both(run)
    assert e == [200, 501], show("Envoy (harness check)", e, None)
    assert l == e, show("statuses of a good request and a malformed one pipelined behind it", e, l)


def test_client_half_close_after_a_request(pair):
    """The client sends a complete request, then shuts down its sending side: the end is read
    before the (delayed) response comes, which ends the stream without an answer."""
    def run(p):
        with p.connect() as c:
            c.send(request_bytes("GET", "/films/half-close", headers=[("x-echo-delay-ms", "300")], close=False))
            c.sock.shutdown(socket.SHUT_WR)
            try:
                return c.read_response().status
            except (EOFError, ConnectionResetError):
                return None
    e, l = pair.both(run)
    assert e is None, show("Envoy (harness check)", e, None)
    assert l == e, show("response after the client's half-close", e, l)


def test_fragment_counted_like_envoy(pair):
    """A target with a fragment: failed path normalization, not a protocol error. Legate closes at
    once where Envoy waits its delayed_close_timeout (README, known differences)."""
    def fragment(p):
        with p.connect() as c:
            c.send(b"GET /films/a#f HTTP/1.1\r\nhost: x\r\nx-request-id: r\r\n\r\n")
            c.read_response()
            c.is_closed()
    busy = ("http.ingress_http.downstream_cx_active", "http.ingress_http.downstream_rq_active")
    e, l = pair.both(lambda p: {k: v for k, v in harness.counted(p, fragment, ("http.ingress_http.",), busy).items()
                                if not k.endswith("delayed_close_timeout")})
    assert e.get("http.ingress_http.downstream_rq_failed_path_normalization") == 1, show("Envoy itself (harness check)", e, None)
    assert l == e, show("counted", e, l)
