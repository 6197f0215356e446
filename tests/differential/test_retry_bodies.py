"""Retries of requests with bodies (replayed from a buffer bounded by per_request_buffer_limit_bytes),
virtual-host retry policies, the retry headers of internal clients, the gRPC / retriable-headers /
envoy-ratelimited conditions and x-envoy-attempt-count, through Envoy and Legate."""
import hashlib
import json

import pytest

import harness
from harness import show
from upstreams import FirstRequestFails, threaded_http_server


class _FirstFails(FirstRequestFails):
    """The first request for each path fails (how depends on the path's first segment); later
    ones answer 200 with what the upstream received: body length and MD5, x-envoy-* headers."""

    def _body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", 0)))

    def _reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self._body()
        first = self.first_time()
        kind = self.path.split("/")[1]
        if first and kind == "grpc":
            return self._reply(200, [("content-type", "application/grpc"), ("grpc-status", "14")])
        if first and kind == "rl":
            return self._reply(503, [("x-envoy-ratelimited", "true")], b"limited")
        if first and kind == "rh":
            return self._reply(200, [("x-please-retry", "yes")], b"please retry")
        if first:
            return self._reply(503, body=b"down")
        seen = {"len": len(body), "md5": hashlib.md5(body).hexdigest(),
                "envoy": sorted(k.lower() for k in self.headers if k.lower().startswith("x-envoy-")
                                and k.lower() not in ("x-envoy-expected-rq-timeout-ms", "x-envoy-internal")),
                "attempt": self.headers.get("x-envoy-attempt-count")}
        self._reply(200, [("content-type", "application/json")], json.dumps(seen).encode())

    do_GET = do_POST = do_PUT = _handle


@pytest.fixture(scope="module")
def upstream():
    with threaded_http_server(_FirstFails) as port:
        yield port


@pytest.fixture(scope="module")
def rpair(make_pair, upstream):
    return make_pair(harness.load_template("retry_bodies.yaml"), {"flap_port": upstream})


BODY = bytes(range(256)) * 400  # 100 KiB


def outcome(r):
    return r.status, (r.json() if r.header("content-type") == "application/json" else r.body)


def chunked(data, size=4096):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_a_retried_post_sends_the_whole_body_again(rpair):
    e, l = rpair.both(lambda p: outcome(p.request("POST", f"/flap/{p.kind}/cl", body=BODY)))
    assert e[0] == 200 and e[1]["md5"] == hashlib.md5(BODY).hexdigest(), show("Envoy (harness check)", e, None)
    assert l == e, show("POST 100 KiB, first attempt 503", e, l)


def test_a_retried_chunked_body_is_replayed(rpair):
    def run(p):
        raw = harness.request_bytes("POST", f"/flap/{p.kind}/chunked", headers=[("transfer-encoding", "chunked")],
                                    body=chunked(BODY))
        return outcome(p.raw(raw, "POST"))
    e, l = rpair.both(run)
    assert e[0] == 200 and e[1]["len"] == len(BODY), show("Envoy (harness check)", e, None)
    assert l == e, show("chunked POST, first attempt 503", e, l)


@pytest.mark.parametrize("route", ["limited", "vhostlimit"])
def test_a_body_past_the_buffer_limit_is_not_retried(rpair, route):
    size = 4096 if route == "limited" else 250000

    def run(p):
        before = p.stats()
        r = p.request("POST", f"/{route}/{p.kind}", body=(BODY * 3)[:size])
        after = p.stats()
        delta = {n: after.get(f"cluster.limited.{n}", 0) - before.get(f"cluster.limited.{n}", 0)
                 for n in ("retry_or_shadow_abandoned", "upstream_rq_retry", "upstream_rq_503")}
        return r.status, r.body, delta
    e, l = rpair.both(run)
    assert e[0] == 503, show("Envoy (harness check)", e, None)
    assert l == e, show(f"POST of {size} bytes past the buffer limit", e, l)


def test_a_body_within_the_route_limit_is_retried(rpair):
    e, l = rpair.both(lambda p: outcome(p.request("POST", f"/limited/{p.kind}/small", body=BODY[:1000])))
    assert e[0] == 200, show("Envoy (harness check)", e, None)
    assert l == e, show("POST of 1000 bytes under a 1024-byte limit", e, l)


def test_the_virtual_host_policy_applies_to_routes_without_one(rpair):
    e, l = rpair.both(lambda p: outcome(p.request("POST", f"/vh/{p.kind}", host="vh.example", body=b"abc")))
    assert e[0] == 200 and e[1]["attempt"] == "2", show("Envoy (harness check)", e, None)
    assert l == e, show("route without retry_policy in a vhost with one", e, l)


def test_a_route_policy_replaces_the_virtual_hosts(rpair):
    e, l = rpair.both(lambda p: outcome(p.get(f"/own/{p.kind}", host="vh.example")))
    assert e[0] == 503, show("Envoy (harness check)", e, None)
    assert l == e, show("route retry_on connect-failure in a vhost retrying 5xx", e, l)


def test_attempt_count_in_the_response(rpair):
    e, l = rpair.both(lambda p: p.get(f"/count/{p.kind}", host="vh.example").header("x-envoy-attempt-count"))
    assert e == "2", show("Envoy (harness check)", e, None)
    assert l == e, show("x-envoy-attempt-count after one retry", e, l)


@pytest.mark.parametrize("headers", [
    [("x-envoy-retry-on", "5xx")],
    [("x-envoy-retry-on", "retriable-status-codes"), ("x-envoy-retriable-status-codes", "503")],
    [("x-envoy-retry-on", "gateway-error"), ("x-envoy-max-retries", "0")],
    [("x-envoy-retry-on", "bogus")],
    [("x-envoy-max-retries", "3")],
], ids=["retry-on", "status-codes", "max-retries-0", "unknown", "max-retries-only"])
def test_retry_headers_of_internal_clients(rpair, headers):
    tag = "-".join(v for _, v in headers)
    e, l = rpair.both(lambda p: outcome(p.request("POST", f"/hdr/{p.kind}/{tag}", headers=headers, body=b"xyz")))
    assert l == e, show(f"route without retry_policy, request headers {headers}", e, l)


def test_grpc_unavailable_is_retried(rpair):
    e, l = rpair.both(lambda p: outcome(p.get(f"/grpc/{p.kind}")))
    assert e[0] == 200 and e[1] != b"", show("Envoy (harness check)", e, None)
    assert l == e, show("retry_on unavailable, first answer grpc-status 14", e, l)


def test_a_rate_limited_response_is_not_retried_on_5xx(rpair):
    e, l = rpair.both(lambda p: outcome(p.get(f"/rl/{p.kind}")))
    assert e == (503, b"limited"), show("Envoy (harness check)", e, None)
    assert l == e, show("503 with x-envoy-ratelimited, retry_on 5xx", e, l)


def test_retriable_headers(rpair):
    e, l = rpair.both(lambda p: outcome(p.get(f"/rh/{p.kind}")))
    assert e[0] == 200 and isinstance(e[1], dict), show("Envoy (harness check)", e, None)
    assert l == e, show("retry_on retriable-headers", e, l)


@pytest.mark.parametrize("idempotent", [True, False])
def test_retriable_request_headers(rpair, idempotent):
    headers = [("x-idempotent", "1")] if idempotent else []
    e, l = rpair.both(lambda p: outcome(p.get(f"/rrh/{p.kind}/{idempotent}", headers=headers)))
    assert l == e, show(f"retriable_request_headers, request has x-idempotent: {idempotent}", e, l)


STATS = ["cluster.body.upstream_rq_retry", "cluster.body.upstream_rq_retry_success",
         "cluster.body.upstream_rq_retry_backoff_exponential", "cluster.headers.upstream_rq_retry",
         "cluster.headers.upstream_rq_retry_limit_exceeded", "cluster.grpc.upstream_rq_retry",
         "cluster.vhost.upstream_rq_retry", "cluster.ratelimited.upstream_rq_retry",
         "cluster.request_headers.upstream_rq_retry"]


@pytest.mark.parametrize("name", STATS)
def test_retry_stats(rpair, name):
    e, l = rpair.both(lambda p: p.stats().get(name))
    assert l == e, show(name, e, l)
