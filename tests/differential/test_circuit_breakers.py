"""Circuit breakers: max_requests (a silent upstream holds the one request allowed: the next
overflows at once, 503 UO, while other clusters keep serving), max_connections (requests wait
for the one connection; tcp_proxy sessions over it are closed), a retry budget and the
remaining_* gauges; the gauges and counters Envoy keeps."""
import contextlib
import json
import socket
import threading
import time

import pytest

import harness
from harness import show


@pytest.fixture(scope="module")
def blackhole_port():
    """A port whose connects never complete: a listener that never accepts, its backlog full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fillers.append(c)
    yield port
    for s in fillers + [listener]:
        s.close()


@pytest.fixture(scope="module")
def cb_pair(make_pair, values, blackhole_port):
    return make_pair(harness.load_template("circuit_breakers.yaml"), dict(values, blackhole_port=blackhole_port))


def overflow_run(p):
    hanging = threading.Thread(target=lambda: p.get("/slow/hang"), daemon=True)
    hanging.start()
    deadline = time.time() + 5
    while p.stats().get("cluster.slow.upstream_rq_active") != 1 and time.time() < deadline:
        time.sleep(0.02)
    start = time.time()
    r = p.get("/slow/second")
    quick = time.time() - start < 1
    s = p.stats()
    other = p.get("/films/ok").status
    hanging.join(timeout=5)
    return {
        "status": r.status, "body": r.body, "vhost header": r.header("x-vhost-resp"), "quick": quick,
        "overloaded header": r.header("x-envoy-overloaded"),
        "other cluster": other,
        "rq_open while full": s.get("cluster.slow.circuit_breakers.default.rq_open"),
        "overflow stats": {k: v for k, v in s.items() if k.startswith("cluster.slow.") and "overflow" in k and v},
        "upstream_rq_503": s.get("cluster.slow.upstream_rq_503"),
        "rq_open after": p.stats().get("cluster.slow.circuit_breakers.default.rq_open"),
    }


def test_max_requests_overflow(cb_pair):
    e, l = cb_pair.both(overflow_run)
    assert e["status"] == 503 and e["quick"], show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def cb_stats(s, cluster):
    """The circuit-breaker gauges and the overflow/pending counters of `cluster`."""
    keep = ("circuit_breakers.default.", "overflow", "upstream_rq_pending_total", "upstream_cx_total")
    prefix = f"cluster.{cluster}."
    return {k[len(prefix):]: v for k, v in s.items()
            if k.startswith(prefix) and any(x in k for x in keep) and "remaining_cx_pools" not in k}


def in_thread(fn):
    """Starts fn() in a thread; returns (thread, result dict filled with 'r' when done)."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
    t.start()
    return t, out


def slow_get(p, path, ms):
    return p.get(path, headers=[("x-echo-delay-ms", str(ms))])


def max_connections_run(p):
    # One connection allowed: the second request waits for the first one's connection.
    t, first = in_thread(lambda: slow_get(p, "/onecx/first", 800))
    time.sleep(0.3)
    during = cb_stats(p.stats(), "onecx")
    start = time.time()
    second = p.get("/onecx/second")
    waited = time.time() - start
    t.join(timeout=5)
    return {
        "statuses": (first["r"].status, second.status),
        "second waited for the first": 0.2 < waited < 1.5,
        "during": during,
        "after": cb_stats(p.stats(), "onecx"),
        "upstream_cx_active": p.stats().get("cluster.onecx.upstream_cx_active"),
    }


def test_max_connections_queues_requests(cb_pair):
    e, l = cb_pair.both(max_connections_run)
    assert e["statuses"] == (200, 200) and e["second waited for the first"], show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def pending_overflow_run(p):
    # One connection and one pending request allowed: a third request overflows at once.
    t1, first = in_thread(lambda: slow_get(p, "/onepending/first", 1000))
    time.sleep(0.3)
    t2, second = in_thread(lambda: p.get("/onepending/second"))
    time.sleep(0.3)
    during = cb_stats(p.stats(), "onepending")
    start = time.time()
    third = p.get("/onepending/third")
    quick = time.time() - start < 0.5
    t1.join(timeout=5)
    t2.join(timeout=5)
    return {
        "statuses": (first["r"].status, second["r"].status, third.status),
        "third": (third.body, third.header("x-envoy-overloaded"), quick),
        "during": during,
        "after": cb_stats(p.stats(), "onepending"),
        "other cluster": p.get("/films/ok").status,
    }


def test_max_connections_with_pending_overflow(cb_pair):
    e, l = cb_pair.both(pending_overflow_run)
    assert e["statuses"] == (200, 200, 503), show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def connect_failure_run(p):
    # The second request waits for the first one's connection, which times out: both fail with
    # the connect failure (Envoy purges the pending requests), no second connect is tried.
    t, first = in_thread(lambda: p.get("/blackhole/first"))
    time.sleep(0.1)
    start = time.time()
    second = p.get("/blackhole/second")
    waited = time.time() - start
    t.join(timeout=5)
    s = p.stats()
    keep = ("connect", "pending", "overflow", "upstream_cx_total", "circuit_breakers.default.cx_open")
    return {
        "replies": [(r.status, r.body) for r in (first["r"], second)],
        "second failed with the first connect": waited < 0.75,
        "stats": {k: v for k, v in s.items() if k.startswith("cluster.blackhole.") and any(x in k for x in keep)},
    }


def test_connect_failure_fails_the_waiting_requests(cb_pair):
    e, l = cb_pair.both(connect_failure_run)
    assert e["stats"]["cluster.blackhole.upstream_cx_connect_timeout"] == 1, show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def retry_budget_run(p):
    before = cb_stats(p.stats(), "budget")
    # Two requests fail together: the budget (min_retry_concurrency 1, 25% of 2 requests is 0)
    # lets one retry back off at a time, the other overflows and returns its 503.
    threads = [in_thread(lambda: p.get("/budget/fail", headers=[("x-echo-status", "503")])) for _ in range(2)]
    for t, _ in threads:
        t.join(timeout=5)
    s = p.stats()
    after = cb_stats(s, "budget")
    cx = after.pop("circuit_breakers.default.remaining_cx") + s["cluster.budget.upstream_cx_active"]
    # How many connections the retries took is the retry code's business, not the budget's.
    for k in ("upstream_cx_total", "upstream_rq_pending_total"):
        after.pop(k)
    return {
        "statuses": sorted(out["r"].status for _, out in threads),
        "before": before,
        "after": after,
        "remaining_cx + upstream_cx_active": cx,
        "retries": s.get("cluster.budget.upstream_rq_retry"),
    }


def test_retry_budget(cb_pair):
    e, l = cb_pair.both(retry_budget_run)
    assert e["after"]["upstream_rq_retry_overflow"] == 1, show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def test_track_remaining_gauge_names(cb_pair):
    """Envoy also publishes remaining_cx_pools (max_connection_pools), which Legate refuses."""
    def names(p):
        return sorted(k for k in p.stats() if k.startswith("cluster.budget.circuit_breakers.default.remaining"))
    e, l = cb_pair.both(names)
    assert l == e, show("remaining gauges", e, l)


@pytest.fixture(scope="module")
def tcp_pair(make_pair, values):
    return make_pair(harness.load_template("tcp_circuit_breakers.yaml"), values)


def tcp_cx_stats(s):
    """The circuit breakers and overflow/pending counters of the tcp_proxy's cluster (a session
    is one upstream request there, as in Envoy's TCP pool)."""
    return cb_stats(s, "onecx")


def tcp_overflow_run(p):
    with p.connect() as first:
        first.send(harness.request_bytes("GET", "/tcp/first", close=False))
        first_status = first.read_response().status
        with p.connect() as second:
            second.send(harness.request_bytes("GET", "/tcp/second"))
            second_closed = second.is_closed(timeout=2)
        during = tcp_cx_stats(p.stats())
        first.send(harness.request_bytes("GET", "/tcp/again", close=False))
        again = first.read_response().status
    deadline = time.time() + 3
    while p.stats().get("cluster.onecx.upstream_cx_active") and time.time() < deadline:
        time.sleep(0.05)
    s = p.stats()
    return {
        "first": (first_status, again),
        "second closed without an answer": second_closed,
        "during": during,
        "after": tcp_cx_stats(s),
        "tcp stats": {k: v for k, v in s.items() if k.startswith("tcp.onecx_tcp.") and "bytes" not in k and v},
    }


def test_tcp_proxy_max_connections(tcp_pair):
    e, l = tcp_pair.both(tcp_overflow_run)
    assert e["second closed without an answer"], show("Envoy (harness check)", e, None)
    for k in e:
        assert l[k] == e[k], show(k, e[k], l[k])


def test_clusters_show_the_configured_thresholds(cb_pair):
    """/clusters (text and JSON) shows each priority's limits; with a retry budget, max_retries is
    the budget's current limit."""
    def thresholds(p):
        text = sorted(line for line in p.admin("/clusters")[1].splitlines() if "_priority::" in line)
        statuses = json.loads(p.admin("/clusters?format=json")[1])["cluster_statuses"]
        return text + sorted(f"{c['name']}: {c['circuit_breakers']}" for c in statuses)
    e, l = cb_pair.both(thresholds)
    assert "slow::high_priority::max_requests::7" in e, show("Envoy (harness check)", e, None)
    assert l == e, show("/clusters thresholds", e, l)
