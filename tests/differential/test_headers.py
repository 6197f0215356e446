"""Headers: what the upstream receives (forwarding, x-envoy-*, mutations, rewrites) and what
the client receives (server, upstream service time, added/removed response headers).
"""
import re

import pytest

from harness import show

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Sent by an external client; every one must be stripped or replaced before the upstream.
EXTERNAL_X_ENVOY = [
    ("x-envoy-retry-on", "5xx"),
    ("x-envoy-max-retries", "3"),
    ("x-envoy-upstream-rq-timeout-ms", "100"),
    ("x-envoy-upstream-rq-per-try-timeout-ms", "100"),
    ("x-envoy-original-path", "/forged"),
    ("x-envoy-internal", "true"),
    ("x-envoy-expected-rq-timeout-ms", "1"),
    ("x-envoy-external-address", "6.6.6.6"),
    ("x-envoy-downstream-service-cluster", "forged"),
    ("x-envoy-hedge-on-per-try-timeout", "true"),
    ("x-envoy-retry-grpc-on", "cancelled"),
]
HOP_BY_HOP = [("connection", "close, x-hop"), ("x-hop", "1"), ("keep-alive", "timeout=5"),
              ("proxy-connection", "keep-alive"), ("upgrade", "foo"), ("te", "trailers")]
MUTATION_INPUT = [("x-drop-me", "1"), ("x-vhost-drop", "1"), ("x-kept", "1")]


def upstream_headers(p, path="/films/h", headers=(), host="example.com"):
    return p.get(path, host, headers).upstream()["headers"]


@pytest.fixture(scope="module")
def seen(pair):
    """Headers the films upstream received for one request carrying every probe header."""
    probe = EXTERNAL_X_ENVOY + MUTATION_INPUT + [("x-forwarded-for", "1.2.3.4"), ("x-request-id", "mine")]
    return pair.both(lambda p: upstream_headers(p, headers=probe))


@pytest.mark.parametrize("name", ["host", "x-forwarded-for", "x-forwarded-proto", "x-envoy-external-address",
                                  "x-envoy-expected-rq-timeout-ms", "x-vhost", "x-route", "x-config", "x-kept",
                                  "x-envoy-internal", "content-length", "transfer-encoding"])
def test_upstream_header_value(seen, name):
    e, l = seen
    assert l.get(name) == e.get(name), show(f"upstream saw {name}", e.get(name), l.get(name))


@pytest.mark.parametrize("name", [h for h, _ in EXTERNAL_X_ENVOY])
def test_external_x_envoy_header_not_forwarded(seen, name):
    e, l = seen
    sent = dict(EXTERNAL_X_ENVOY)[name]
    assert (l.get(name) == sent) == (e.get(name) == sent), show(f"client's {name}: {sent} reached upstream as", e.get(name), l.get(name))


@pytest.mark.parametrize("name", ["x-drop-me", "x-vhost-drop"])
def test_request_headers_to_remove(seen, name):
    e, l = seen
    assert name not in e and name not in l, show(f"{name} reaches upstream", e.get(name), l.get(name))


def test_upstream_header_names(seen):
    """The full set of header names the upstream sees (x-echo-* knobs excluded)."""
    e, l = seen
    en, ln = sorted(k for k in e if not k.startswith("x-echo")), sorted(k for k in l if not k.startswith("x-echo"))
    assert ln == en, show("upstream header names", en, ln)


def test_request_id_is_a_fresh_uuid(seen):
    e, l = seen
    assert UUID4.match(e["x-request-id"]), show("Envoy's x-request-id (harness check)", e["x-request-id"], None)
    assert UUID4.match(l.get("x-request-id", "")), show("x-request-id shape (UUID v4)", e["x-request-id"], l.get("x-request-id"))


def test_request_id_generated_when_absent(pair):
    e, l = pair.both(lambda p: upstream_headers(p).get("x-request-id", ""))
    assert UUID4.match(e) and UUID4.match(l), show("x-request-id", e, l)


@pytest.mark.parametrize("path,value", [("/films/t", "3000"), ("/ratings/t", "15000"), ("/notimeout", None)])
def test_expected_rq_timeout(pair, path, value):
    e, l = pair.both(lambda p: upstream_headers(p, path).get("x-envoy-expected-rq-timeout-ms"))
    assert e == value, show("Envoy (harness check)", e, None)
    assert l == e, show(f"{path}: x-envoy-expected-rq-timeout-ms", e, l)


@pytest.mark.parametrize("name", [h for h, _ in HOP_BY_HOP])
def test_hop_by_hop_request_headers(pair, name):
    e, l = pair.both(lambda p: upstream_headers(p, headers=HOP_BY_HOP))
    assert l.get(name) == e.get(name), show(f"{name} forwarded as", e.get(name), l.get(name))


def test_forwarded_for_without_client_header(pair):
    e, l = pair.both(lambda p: upstream_headers(p).get("x-forwarded-for"))
    assert e and l == e, show("x-forwarded-for", e, l)


def test_forwarded_proto_from_client_is_overwritten(pair):
    e, l = pair.both(lambda p: upstream_headers(p, headers=[("x-forwarded-proto", "https")]).get("x-forwarded-proto"))
    assert l == e, show("x-forwarded-proto", e, l)


def test_prefix_rewrite_and_host_rewrite(pair):
    e, l = pair.both(lambda p: p.get("/v1/items?x=1").upstream())
    assert e["server"] == l["server"] == "films", show("cluster", e["server"], l["server"])
    assert l["path"] == e["path"] == "/v2/items?x=1", show("rewritten path", e["path"], l["path"])
    for name in ("host", "x-envoy-original-path", "x-envoy-original-host", "x-forwarded-host"):
        assert l["headers"].get(name) == e["headers"].get(name), show(name, e["headers"].get(name), l["headers"].get(name))


def test_regex_rewrite(pair):
    e, l = pair.both(lambda p: p.get("/rx/123").upstream())
    assert l["path"] == e["path"] == "/id/123", show("regex_rewrite path", e["path"], l["path"])
    ep, lp = e["headers"].get("x-envoy-original-path"), l["headers"].get("x-envoy-original-path")
    assert lp == ep, show("x-envoy-original-path", ep, lp)


@pytest.fixture(scope="module")
def proxied(pair):
    """One proxied 200 whose upstream adds server, x-secret, x-upstream-drop and x-keep."""
    knobs = [("x-echo-header", "server=upstream-server"), ("x-echo-header", "x-secret=1"),
             ("x-echo-header", "x-upstream-drop=1"), ("x-echo-header", "x-keep=1")]
    return pair.both(lambda p: p.get("/films/resp", headers=knobs))


@pytest.mark.parametrize("name", ["x-global", "x-vhost-resp", "x-route-resp", "x-keep", "x-echo-server",
                                  "content-type", "connection"])
def test_response_header_value(proxied, name):
    e, l = proxied
    assert l.header(name) == e.header(name), show(f"response {name}", e.header(name), l.header(name))


@pytest.mark.parametrize("name", ["x-secret", "x-upstream-drop"])
def test_response_headers_to_remove(proxied, name):
    e, l = proxied
    assert e.header(name) is None and l.header(name) is None, show(f"response {name}", e.header(name), l.header(name))


def test_server_header_overwritten(proxied):
    """server_header_transformation OVERWRITE (default): the upstream's server header is replaced."""
    e, l = proxied
    assert e.header("server") != "upstream-server", show("Envoy (harness check)", e.header("server"), None)
    assert l.header("server") and l.header("server") != "upstream-server", show("server", e.header("server"), l.header("server"))


def test_upstream_service_time(proxied):
    e, l = proxied
    ev, lv = e.header("x-envoy-upstream-service-time"), l.header("x-envoy-upstream-service-time")
    assert ev and ev.isdigit() and lv and lv.isdigit(), show("x-envoy-upstream-service-time", ev, lv)


def test_upstream_service_time_counts_the_wait(pair):
    e, l = pair.both(lambda p: p.get("/films/d", headers=[("x-echo-delay-ms", "300")]).header("x-envoy-upstream-service-time"))
    assert int(e) >= 300 and int(l) >= 300, show("x-envoy-upstream-service-time after a 300 ms upstream", e, l)


def test_date_header(proxied):
    e, l = proxied
    pattern = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (\w{3}) \d{4} \d\d:\d\d:\d\d GMT$")
    assert pattern.match(e.header("date") or "") and pattern.match(l.header("date") or ""), show(
        "date", e.header("date"), l.header("date"))


def test_response_header_names(proxied):
    e, l = proxied
    assert l.header_names() == e.header_names(), show("response header names", e.headers, l.headers)
