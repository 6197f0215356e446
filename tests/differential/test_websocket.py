"""HTTP/1.1 upgrades through Envoy and Legate: with upgrade_configs websocket, the 101 and then
bytes both ways over the spliced connections; an upgrade of a type that is not configured is
refused with 403 once a route matches (h2c is no upgrade: it reaches the upstream as a plain
request)."""
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from harness import show


def _serve_upgrade(conn):
    """Answers the upgrade with 101, then upper-cases every byte until the client closes."""
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
        seen = "upgrade: websocket" in head and "upgrade" in head.split("connection:", 1)[-1]
        if not seen:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        rest = data.split(b"\r\n\r\n", 1)[1]
        if rest:
            conn.sendall(rest.upper())
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                return
            conn.sendall(chunk.upper())


@pytest.fixture(scope="module")
def ws_server():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=_serve_upgrade, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    yield s.getsockname()[1]
    s.close()


@pytest.fixture(scope="module")
def wpair(make_pair, values, ws_server):
    return make_pair(harness.load_template("websocket.yaml"), dict(values, ws_port=ws_server))


def upgrade_session(proxy):
    """(status, upgrade header, echoed frames) of a websocket-style upgrade through the proxy."""
    with proxy.connect() as c:
        c.send(b"GET /ws/chat HTTP/1.1\r\nhost: example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
               b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        r = c.read_response()
        echoed = []
        if r.status == 101:
            for msg in (b"hello", b"x" * 100000):
                c.send(msg)
                echoed.append(c._exactly(len(msg)) == msg.upper())
        return r.status, (r.header("upgrade") or "").lower(), echoed


def test_websocket_upgrade_and_bytes_both_ways(wpair):
    e, l = wpair.both(upgrade_session)
    assert e == (101, "websocket", [True, True]), show("Envoy (harness check)", e, None)
    assert l == e, show("upgrade", e, l)


def test_h2c_upgrade_reaches_upstream_as_plain_request(wpair):
    def run(p):
        r = p.get("/films/u", headers=[("connection", "upgrade"), ("upgrade", "h2c")])
        h = r.upstream()["headers"]
        return r.status, h.get("upgrade"), h.get("connection")
    e, l = wpair.both(run)
    assert l == e, show("upgrade: h2c (not configured)", e, l)


def test_upgrade_stats(wpair):
    e, l = wpair.both(lambda p: p.stats().get("http.ingress_http.downstream_cx_upgrades_total"))
    assert l == e, show("downstream_cx_upgrades_total", e, l)


def _upgrade(raw):
    return (b"%s HTTP/1.1\r\nhost: x\r\nconnection: %s\r\nupgrade: %s\r\n" % raw[:3]) + raw[3]


# (id, pair, (method + target, connection, upgrade, rest of head and body), Envoy 1.40's status)
REFUSED_UPGRADES = [
    ("other-type", "wpair", (b"GET /films/a", b"upgrade", b"foo", b"\r\n"), 403),
    ("token-among-others", "wpair", (b"GET /films/a", b"keep-alive, Upgrade", b"foo", b"\r\n"), 403),
    ("two-types", "wpair", (b"GET /films/a", b"upgrade", b"foo, websocket", b"\r\n"), 403),
    ("empty-type", "wpair", (b"GET /films/a", b"upgrade", b"", b"\r\n"), 403),
    ("with-a-body", "wpair", (b"POST /films/a", b"upgrade", b"foo", b"content-length: 3\r\n\r\nabc"), 403),
    ("websocket-not-configured", "pair", (b"GET /films/a", b"upgrade", b"websocket", b"\r\n"), 403),
    ("direct-response-route", "pair", (b"GET /direct", b"upgrade", b"websocket", b"\r\n"), 403),
    ("redirect-route", "pair", (b"GET /old/a", b"upgrade", b"websocket", b"\r\n"), 403),
    ("no-route", "pair", (b"GET /a", b"upgrade\r\nhost: nowhere.example", b"websocket", b"\r\n"), 404),
]


def _exchange(p, raw):
    """(status, header names, body, closed afterwards) of `raw` on a fresh connection."""
    with p.connect() as c:
        c.send(raw)
        r = c.read_response()
        return r.status, r.header_names(), r.body, c.is_closed()


@pytest.fixture(scope="module")
def refused_upgrades(request):
    """{id: (envoy, legate)} for every REFUSED_UPGRADES case, run at once (telling a close apart
    from an idle connection waits out Envoy's delayed_close_timeout)."""
    jobs = [(case_id, p, _upgrade(raw)) for case_id, fixture, raw, _ in REFUSED_UPGRADES
            for p in request.getfixturevalue(fixture)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: _exchange(job[1], job[2]), jobs))
    out = {}
    for (case_id, p, _), result in zip(jobs, results):
        out.setdefault(case_id, {})[p.kind] = result
    return {case_id: (r["envoy"], r["legate"]) for case_id, r in out.items()}


@pytest.mark.parametrize("case_id,status", [(c[0], c[3]) for c in REFUSED_UPGRADES], ids=[c[0] for c in REFUSED_UPGRADES])
def test_refused_upgrade_answered_like_envoy(refused_upgrades, case_id, status):
    e, l = refused_upgrades[case_id]
    assert e[0] == status and e[3], show("Envoy itself (harness check)", e, None)
    assert l == e, show("(status, header names, body, closed)", e, l)


def test_refused_upgrades_counted_like_envoy(wpair):
    def refused(p):
        with p.connect() as c:
            c.send(_upgrade((b"GET /films/a", b"upgrade", b"foo", b"\r\n")))
            c.read_response()
    keep = ("downstream_rq_ws_on_non_ws_route", "downstream_rq_4xx", "downstream_rq_total", "downstream_cx_upgrades_total")
    busy = ("http.ingress_http.downstream_cx_active", "http.ingress_http.downstream_rq_active")
    e, l = wpair.both(lambda p: {k: v for k, v in harness.counted(p, refused, ("http.ingress_http.",), busy).items()
                                 if k.endswith(keep)})
    assert e.get("http.ingress_http.downstream_rq_ws_on_non_ws_route") == 1, show("Envoy itself (harness check)", e, None)
    assert l == e, show("counted", e, l)
