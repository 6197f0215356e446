"""Retries (route retry_policy) through Envoy and Legate: a flapping upstream retried on 5xx, a
refused host skipped with the previous-hosts predicate, per-try timeouts, and the retry stats."""
import time

import pytest

import harness
from harness import show
from upstreams import FirstRequestFails, threaded_http_server


class _Flap(FirstRequestFails):
    """The first request for each path answers 503, later ones 200."""

    def do_GET(self):
        status, body = (503, b"flap down") if self.first_time() else (200, b"flap up")
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def flap():
    with threaded_http_server(_Flap) as port:
        yield port


@pytest.fixture(scope="module")
def rpair(make_pair, values, flap):
    return make_pair(harness.load_template("retries.yaml"), dict(values, flap_port=flap))


def test_flapping_upstream_is_retried(rpair):
    e, l = rpair.both(lambda p: (lambda r: (r.status, r.body))(p.get(f"/flap/{p.kind}")))
    assert e == (200, b"flap up"), show("Envoy (harness check)", e, None)
    assert l == e, show("GET through a flapping upstream", e, l)


def test_max_retries_circuit_breaker(rpair):
    def run(p):
        r = p.get(f"/capped/{p.kind}")
        s = p.stats()
        return (r.status, s.get("cluster.capped.upstream_rq_retry_overflow"), s.get("cluster.capped.upstream_rq_retry"),
                s.get("cluster.capped.circuit_breakers.default.rq_retry_open"))
    e, l = rpair.both(run)
    assert e[0] == 503, show("Envoy (harness check)", e, None)
    assert l == e, show("(status, retry_overflow, retry, rq_retry_open) with max_retries 0", e, l)


def test_no_retry_when_the_condition_does_not_match(rpair):
    e, l = rpair.both(lambda p: p.get(f"/once/{p.kind}").status)
    assert l == e == 503, show("503 with retry_on connect-failure only", e, l)


def test_refused_host_is_skipped(rpair):
    e, l = rpair.both(lambda p: [p.get(f"/mixed/{i}").status for i in range(6)])
    assert l == e == [200] * 6, show("a refused host next to a good one", e, l)


def test_per_try_timeout(rpair):
    def run(p):
        start = time.time()
        r = p.get("/pertry/x")
        return r.status, r.body, round(time.time() - start, 1) < 1.5
    e, l = rpair.both(run)
    assert e[0] == 504, show("Envoy (harness check)", e, None)
    assert l == e, show("per-try timeouts", e, l)


STATS = ["cluster.flap.upstream_rq_retry", "cluster.flap.upstream_rq_retry_success",
         "cluster.flap.upstream_rq_503", "cluster.flap.upstream_rq_200",
         "cluster.slow.upstream_rq_per_try_timeout", "cluster.slow.upstream_rq_retry",
         "cluster.slow.upstream_rq_timeout", "cluster.slow.upstream_rq_retry_limit_exceeded",
         "cluster.mixed.upstream_rq_200"]


@pytest.mark.parametrize("name", STATS)
def test_retry_stats(rpair, name):
    e, l = rpair.both(lambda p: p.stats().get(name))
    assert l == e, show(name, e, l)


def test_retried_attempts_response_codes(rpair):
    names = ["cluster.mixed.upstream_rq_503", "cluster.slow.upstream_rq_504", "cluster.flap.upstream_rq_completed"]
    e, l = rpair.both(lambda p: [p.stats().get(n) for n in names])
    assert l == e, show(str(names), e, l)
