"""Streams that end early, counted as Envoy counts them: a client that goes away while its
request waits, in the middle of its request body or of the response body; an upstream that
cuts its response body short. Compared: the HTTP connection manager's counters (resets,
responses, connection closes by side and with active requests) and the cluster's (connection
closes by side, with active requests, protocol errors)."""
import socket
import threading
import time

import pytest

import harness
from harness import show

HCM = "http.ingress_http."
WATCHED = (HCM, "cluster.films.", "cluster.slow.", "cluster.ratings.")


class TruncatingServer:
    """An upstream that answers `content-length: 1000` with 10 bytes of body and closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"y" * 10)
                    time.sleep(0.1)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def truncating():
    server = TruncatingServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def reset_pair(make_pair, values, truncating):
    # The "ratings" cluster is the truncating upstream here; "films" echoes, "slow" is silent.
    return make_pair(harness.load_template("front_proxy.yaml"), dict(values, ratings_port=truncating.port))


def counted(p, action):
    """What `action(p)` changed in the watched counters and gauges. Legate closes at once where
    Envoy delays the close of a reset HTTP/1 stream's connection by its delayed_close_timeout
    (README, known differences): that counter is left out."""
    busy = (HCM + "downstream_cx_active", HCM + "downstream_rq_active", "cluster.films.upstream_rq_active",
            "cluster.slow.upstream_rq_active", "cluster.ratings.upstream_rq_active")
    changed = harness.counted(p, action, WATCHED, busy)
    return {k: v for k, v in changed.items() if not k.endswith("delayed_close_timeout")}


def request_then_leave(p, path, seconds):
    """Sends a GET for `path` and closes the connection `seconds` later, answered or not."""
    with p.connect() as c:
        c.send(harness.request_bytes("GET", path, close=False))
        time.sleep(seconds)


def client_gone_while_waiting(p):
    request_then_leave(p, "/slow/wait", 0.3)


def client_gone_mid_request_body(p):
    with p.connect() as c:
        c.send(b"POST /films/upload HTTP/1.1\r\nhost: example.com\r\ncontent-length: 100000\r\n\r\n" + b"x" * 10)
        time.sleep(0.3)


def client_gone_mid_response_body(p):
    with p.connect() as c:
        c.send(harness.request_bytes("GET", "/films/big", headers=[("x-echo-body-bytes", "50000000")], close=False))
        c.sock.recv(1000)


def upstream_cuts_response_body(p):
    request_then_leave(p, "/ratings/cut", 0.4)


def keep_alive_then_client_closes(p):
    with p.connect() as c:
        c.send(harness.request_bytes("GET", "/films/one", close=False))
        c.read_response()


def connection_close_request(p):
    with p.connect() as c:
        c.send(harness.request_bytes("GET", "/films/two", close=True))
        c.read_response()
        c.is_closed()


@pytest.mark.parametrize("action", [
    client_gone_while_waiting,
    client_gone_mid_request_body,
    client_gone_mid_response_body,
    upstream_cuts_response_body,
    keep_alive_then_client_closes,
    connection_close_request,
], ids=lambda f: f.__name__)
def test_counted_like_envoy(reset_pair, action):
    e, l = reset_pair.both(lambda p: counted(p, action))
    assert e.get(HCM + "downstream_rq_total") == 1, show("Envoy (harness check)", e, None)
    assert l == e, show(action.__name__, e, l)
