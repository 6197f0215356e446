"""Draining through Envoy and Legate: while /healthcheck/fail is in force every response closes its
connection (HTTP/1 `connection: close`, HTTP/2 GOAWAY), and /drain_listeners?graceful starts a
drain sequence that stops the listeners after --drain-time-s."""
import socket
import subprocess
import time

import pytest

import harness
from harness import request_bytes, show


def keep_alive_exchange(p, path):
    """A keep-alive request: (status, connection header). (Envoy keeps reading during its
    delayed close, so a client that ignores `connection: close` may get more answers; Legate
    closes at once. Clients must not send more after `connection: close`, so no test does.)"""
    with p.connect() as c:
        c.send(request_bytes("GET", path, close=False))
        r = c.read_response()
        return r.status, r.header("connection")


def test_failed_health_check_closes_connections(make_pair, values):
    pair = make_pair(harness.load_template("front_proxy.yaml"), values)

    def run(p):
        before = keep_alive_exchange(p, "/films/before")
        p.admin("/healthcheck/fail", method="POST")
        during = keep_alive_exchange(p, "/films/during")
        p.admin("/healthcheck/ok", method="POST")
        after = keep_alive_exchange(p, "/films/after")
        closes = p.stats().get("http.ingress_http.downstream_cx_drain_close")
        return before, during, after, closes
    e, l = pair.both(run)
    assert e[1] == (200, "close") and e[0] == (200, None), show("Envoy (harness check)", e, None)
    assert l == e, show("(before, during /healthcheck/fail, after, downstream_cx_drain_close)", e, l)


def h2_two_requests(p, path):
    """Two sequential requests over one h2c connection (nghttp); whether the proxy sent GOAWAY (and how many 200s)."""
    url = f"http://127.0.0.1:{p.listener_port}{path}"
    r = subprocess.run(["nghttp", "-v", "-n", url, url + "2"], capture_output=True, text=True, timeout=20)
    return "recv GOAWAY" in r.stdout, r.stdout.count(":status: 200")


def test_failed_health_check_sends_goaway_on_http2(make_pair, values):
    pair = make_pair(harness.load_template("front_proxy.yaml"), values)

    def run(p):
        p.admin("/healthcheck/fail", method="POST")
        return h2_two_requests(p, "/films/h2")
    e, l = pair.both(run)
    assert e[0], show("Envoy (harness check)", e, None)
    assert l == e, show("(GOAWAY received, 200 responses) over h2c while health checks fail", e, l)


def test_graceful_drain_closes_connections_then_stops_listeners(make_pair, values):
    pair = make_pair(harness.load_template("front_proxy.yaml"), values,
                     ["--drain-time-s", "1", "--drain-strategy", "immediate"])

    def run(p):
        p.admin("/drain_listeners?graceful", method="POST")
        during = keep_alive_exchange(p, "/films/draining")
        time.sleep(2.5)
        try:
            socket.create_connection(("127.0.0.1", p.listener_port), timeout=2).close()
            listening = True
        except OSError:
            listening = False
        return during, listening, p.stats().get("listener_manager.listener_stopped")
    e, l = pair.both(run)
    assert e[0] == (200, "close") and not e[1], show("Envoy (harness check)", e, None)
    assert l == e, show("(responses while draining, still listening after the drain time, listener_stopped)", e, l)
