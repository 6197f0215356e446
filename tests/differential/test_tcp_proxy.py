"""tcp_proxy accounting: each session is one upstream request of the cluster (pending while it
connects, active while its connection lives: upstream_rq_total, upstream_rq_active, the host's
rq_total), its connection's close is counted as local or remote by who ended it
(upstream_cx_destroy_*_with_active_rq), failed connect attempts eject the pending request and
exhaust max_connect_attempts at the cluster; the idle timeout closes locally."""
import time

import pytest

import harness
import upstreams as ups
from harness import show


def settle(p):
    """/stats once the cluster has no connection and no session left (the readiness probe's
    own session included)."""
    deadline = time.time() + 5
    while time.time() < deadline:
        s = p.stats()
        if not s.get("cluster.target.upstream_cx_active") and not s.get("cluster.target.upstream_rq_active"):
            return s
        time.sleep(0.05)
    return p.stats()


def delta(before, after):
    """The cluster's and tcp_proxy's counters and gauges that changed (bytes and times left out:
    they differ by design)."""
    return {k: after[k] - before.get(k, 0) for k in after
            if k.startswith(("cluster.target.", "tcp.plain_tcp.")) and after[k] != before.get(k, 0)
            and "bytes" not in k}


def host_line(p, stat):
    """The value of the host's `stat` in /clusters."""
    for line in p.admin("/clusters")[1].splitlines():
        parts = line.split("::")
        if parts[0] == "target" and len(parts) == 4 and parts[2] == stat:
            return int(parts[3])
    return None


@pytest.fixture(scope="module")
def echo_pair(make_pair, servers):
    return make_pair(harness.load_template("tcp_proxy.yaml"),
                     {"target_port": servers["films"].port, "attempts": 1, "idle_timeout": "3600s"})


def test_a_session_is_an_upstream_request_while_its_connection_lives(echo_pair):
    def run(p):
        before = settle(p)
        with p.connect() as c:
            c.send(harness.request_bytes("GET", "/tcp/one", close=False))
            status = c.read_response().status
            during = p.stats()
            active = (during.get("cluster.target.upstream_rq_active"), during.get("cluster.target.upstream_cx_active"),
                      host_line(p, "rq_active"))
        return {"status": status, "active during": active, "counted": delta(before, settle(p)),
                "host rq_total": host_line(p, "rq_total") > 0, "host rq_active after": host_line(p, "rq_active")}
    e, l = echo_pair.both(run)
    assert e["active during"] == (1, 1, 1), show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def test_who_closes_first_decides_local_or_remote(echo_pair):
    """The client closing first makes the upstream's end of stream the close (remote); the
    upstream closing first (connection: close) leaves the close to the proxy (local)."""
    def run(p):
        out = {}
        before = settle(p)
        with p.connect() as c:
            c.send(harness.request_bytes("GET", "/tcp/client-closes", close=False))
            c.read_response()
        after = settle(p)
        out["client closes first"] = delta(before, after)
        with p.connect() as c:
            c.send(harness.request_bytes("GET", "/tcp/server-closes", close=True))
            c.read_response()
            out["client sees the upstream's end"] = c.is_closed()
        out["upstream closes first"] = delta(after, settle(p))
        return out
    e, l = echo_pair.both(run)
    assert e["client closes first"].get("cluster.target.upstream_cx_destroy_remote_with_active_rq") == 1, \
        show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def test_failed_connect_attempts(make_pair):
    pair = make_pair(harness.load_template("tcp_proxy.yaml"),
                     {"target_port": ups.closed_port(), "attempts": 3, "idle_timeout": "3600s"})

    def run(p):
        before = settle(p)
        with p.connect() as c:
            closed = c.is_closed()
        return {"closed": closed, "counted": delta(before, settle(p))}
    e, l = pair.both(run)
    assert e["counted"].get("cluster.target.upstream_rq_pending_failure_eject") == 3, show("Envoy (harness check)", e, None)
    assert l == e, show("three refused attempts", e, l)


def test_idle_timeout_closes_locally(make_pair, servers):
    pair = make_pair(harness.load_template("tcp_proxy.yaml"),
                     {"target_port": servers["films"].port, "attempts": 1, "idle_timeout": "0.3s"})

    def run(p):
        before = settle(p)
        with p.connect() as c:
            c.send(harness.request_bytes("GET", "/tcp/idle", close=False))
            c.read_response()
            closed = c.is_closed(timeout=3)
        return {"closed by the proxy": closed, "counted": delta(before, settle(p))}
    e, l = pair.both(run)
    assert e["counted"].get("tcp.plain_tcp.idle_timeout") == 1, show("Envoy (harness check)", e, None)
    assert l == e, show("idle session", e, l)
