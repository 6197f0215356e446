"""Circuit breakers: with max_requests 1 and one request hanging on a silent upstream, the next
request overflows at once (503, flag UO) while other clusters keep serving; the gauges and
counters Envoy keeps."""
import threading
import time

import pytest

import harness
from harness import show


@pytest.fixture(scope="module")
def cb_pair(make_pair, values):
    return make_pair(harness.load_template("circuit_breakers.yaml"), values)


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
