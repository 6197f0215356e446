"""HTTP/1.1 upgrades through Envoy and Legate: with upgrade_configs websocket, the 101 and then
bytes both ways over the spliced connections; an upgrade type that is not configured reaches the
upstream as a plain request."""
import socket
import threading

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


def test_unconfigured_upgrade_type_reaches_upstream_as_plain_request(wpair):
    def run(p):
        r = p.get("/films/u", headers=[("connection", "upgrade"), ("upgrade", "h2c")])
        h = r.upstream()["headers"]
        return r.status, h.get("upgrade"), h.get("connection")
    e, l = wpair.both(run)
    assert l == e, show("upgrade: h2c (not configured)", e, l)


def test_upgrade_stats(wpair):
    e, l = wpair.both(lambda p: p.stats().get("http.ingress_http.downstream_cx_upgrades_total"))
    assert l == e, show("downstream_cx_upgrades_total", e, l)
