"""Replies the proxy makes itself: no route, no healthy upstream, connect failures, timeouts,
upstream resets, direct responses and redirects. Status, body, content-type, header names and
connection handling are each compared separately.
"""
import re

import pytest

from harness import show

# (id, path, headers, Envoy 1.40's status, Envoy 1.40's body)
LOCAL = [
    ("no-route", "/nowhere", [], 404, b""),
    ("no-healthy-upstream", "/empty", [], 503, b"no healthy upstream"),
    ("connect-refused", "/closed", [], 503,
     b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"),
    ("upstream-reset-before-headers", "/films/reset", [("x-echo-reset", "1")], 503,
     b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"),
    ("route-timeout-silent-upstream", "/slow", [], 504, b"upstream request timeout"),
    ("route-timeout-slow-echo", "/delay", [("x-echo-delay-ms", "1500")], 504, b"upstream request timeout"),
    ("cluster-not-found", "/by-header", [("x-cluster", "nope")], 503, b""),
    ("direct-response", "/direct", [], 418, b"teapot"),
    ("direct-response-no-body", "/direct-empty", [], 503, b""),
]
IDS = [c[0] for c in LOCAL]
CASES = [c[1:] for c in LOCAL]

_cache = {}


def replies(pair, path, headers):
    """One request per proxy per case, shared by the comparisons below (timeouts are slow)."""
    key = (id(pair), path, tuple(headers))
    if key not in _cache:
        _cache[key] = pair.both(lambda p: p.get(path, headers=headers))
    return _cache[key]


@pytest.mark.parametrize("path,headers,status,body", CASES, ids=IDS)
def test_local_reply_status(pair, path, headers, status, body):
    e, l = replies(pair, path, headers)
    assert e.status == status, show("Envoy itself (harness check)", e, None)
    assert l.status == e.status, show(f"GET {path} status", e.status, l.status)


@pytest.mark.parametrize("path,headers,status,body", CASES, ids=IDS)
def test_local_reply_body(pair, path, headers, status, body):
    e, l = replies(pair, path, headers)
    assert e.body == body, show("Envoy itself (harness check)", e.body, None)
    assert l.body == e.body, show(f"GET {path} body", e.body, l.body)


@pytest.mark.parametrize("path,headers,status,body", CASES, ids=IDS)
def test_local_reply_content_type(pair, path, headers, status, body):
    e, l = replies(pair, path, headers)
    assert l.header("content-type") == e.header("content-type"), show(
        f"GET {path} content-type", e.header("content-type"), l.header("content-type"))


@pytest.mark.parametrize("path,headers,status,body", CASES, ids=IDS)
def test_local_reply_header_names(pair, path, headers, status, body):
    """Same header names (values of date/server may differ; mutations are compared elsewhere)."""
    e, l = replies(pair, path, headers)
    assert l.header_names() == e.header_names(), show(f"GET {path} header names", e.headers, l.headers)


@pytest.mark.parametrize("path,headers,status,body", CASES, ids=IDS)
def test_local_reply_added_headers(pair, path, headers, status, body):
    """response_headers_to_add of the route config / virtual host apply to local replies too."""
    e, l = replies(pair, path, headers)
    for name in ("x-global", "x-vhost-resp", "x-route-resp"):
        assert l.header(name) == e.header(name), show(f"GET {path} {name}", e.header(name), l.header(name))


# (id, path, Envoy's status, Envoy's location)
REDIRECTS = [
    ("prefix-rewrite-302", "/old/x?q=1", 302, "http://example.com/new/x?q=1"),
    ("https-301", "/secure/a?b", 301, "https://example.com/secure/a?b"),
    ("host-301", "/moved/x", 301, "http://new.example.com/moved/x"),
    ("path-strip-query-308", "/landing/x?y=1", 308, "http://example.com/welcome"),
    ("port-303", "/other-port/z", 303, "http://example.com:8443/other-port/z"),
]


@pytest.mark.parametrize("path,status,location", [r[1:] for r in REDIRECTS], ids=[r[0] for r in REDIRECTS])
def test_redirect(pair, path, status, location):
    e, l = pair.both(lambda p: p.get(path))
    assert (e.status, e.header("location")) == (status, location), show("Envoy (harness check)", e, None)
    assert (l.status, l.header("location")) == (e.status, e.header("location")), show(
        f"GET {path} status+location", (e.status, e.header("location")), (l.status, l.header("location")))
    assert l.body == e.body, show("redirect body", e.body, l.body)
    assert l.header_names() == e.header_names(), show("redirect header names", e.headers, l.headers)


def test_redirect_keeps_request_port(pair):
    """A Host with a port: https_redirect drops it (Envoy rewrites the default port)."""
    e, l = pair.both(lambda p: p.get("/secure/p", host="example.com:8080"))
    assert (l.status, l.header("location")) == (e.status, e.header("location")), show(
        "status+location", (e.status, e.header("location")), (l.status, l.header("location")))


def test_local_reply_has_no_upstream_service_time(pair):
    e, l = pair.both(lambda p: p.get("/nowhere").header("x-envoy-upstream-service-time"))
    assert e is None and l is None, show("x-envoy-upstream-service-time on a 404", e, l)


def test_local_reply_server_header_shape(pair):
    e, l = pair.both(lambda p: p.get("/nowhere").header("server"))
    assert e and l and re.fullmatch(r"[\w.-]+", l), show("server header", e, l)


def test_upstream_reset_connection_accounting(make_pair, values):
    """An upstream that closes while a request waits for its headers: Envoy counts a remote
    destroy with an active request."""
    import harness
    pair = make_pair(harness.load_template("front_proxy.yaml"), values)
    names = ["upstream_cx_destroy", "upstream_cx_destroy_remote", "upstream_cx_destroy_local",
             "upstream_cx_destroy_with_active_rq", "upstream_cx_destroy_remote_with_active_rq",
             "upstream_cx_destroy_local_with_active_rq"]

    def run(p):
        status = p.get("/films/reset-accounting", headers=[("x-echo-reset", "1")]).status
        import time
        time.sleep(0.3)
        s = p.stats()
        return status, {n: s.get(f"cluster.films.{n}") for n in names}
    e, l = pair.both(run)
    assert e[0] == 503, show("Envoy (harness check)", e, None)
    assert l == e, show("(status, connection destroy counters) after an upstream reset", e, l)
