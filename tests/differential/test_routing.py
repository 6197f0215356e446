"""Routing: which virtual host, route and cluster a request reaches, compared Envoy vs Legate.

Each case also states what Envoy 1.40 does (`want`), which guards the harness itself: if Envoy
stops matching it, the case is wrong, not Legate.
"""
import pytest

from harness import show

# (id, path, host, headers, want): want = name of the echo server that answers, or a status code
# for a local reply.
CASES = [
    ("prefix", "/films/1", "example.com", [], "films"),
    ("prefix-query", "/ratings?x=1", "example.com", [], "ratings"),
    ("path-exact", "/exact", "example.com", [], "ratings"),
    ("path-exact-longer", "/exact/no", "example.com", [], 404),
    ("path-exact-with-query", "/exact?a=b", "example.com", [], "ratings"),
    ("regex", "/re/42", "example.com", [], "ratings"),
    ("regex-full-match-only", "/re/4x", "example.com", [], 404),
    ("regex-ignores-query", "/re/7?z=1", "example.com", [], "ratings"),
    ("header-exact", "/hdr", "example.com", [("x-pick", "ratings")], "ratings"),
    ("header-exact-miss", "/hdr", "example.com", [("x-pick", "films")], 404),
    ("header-absent", "/hdr", "example.com", [], 404),
    ("header-present", "/hdr-present", "example.com", [("x-pick", "")], "ratings"),
    ("header-present-miss", "/hdr-present", "example.com", [], 404),
    ("header-invert", "/hdr-invert", "example.com", [("x-pick", "ratings")], "ratings"),
    ("header-invert-miss", "/hdr-invert", "example.com", [("x-pick", "films")], 404),
    ("query-exact", "/q?pick=ratings", "example.com", [], "ratings"),
    ("query-exact-miss", "/q?pick=films", "example.com", [], 404),
    ("query-present", "/qp?a=1&flag", "example.com", [], "ratings"),
    ("query-present-miss", "/qp?a=1", "example.com", [], 404),
    ("prefix-case-insensitive", "/NoCase/x", "example.com", [], "ratings"),
    ("prefix-case-sensitive", "/FILMS", "example.com", [], 404),
    ("no-route", "/nowhere", "example.com", [], 404),
    ("domain-exact", "/films", "api.example.com", [], "ratings"),
    ("domain-exact-uppercase", "/films", "API.Example.COM", [], "ratings"),
    ("domain-suffix-wildcard", "/films", "a.internal.test", [], "ratings"),
    ("domain-suffix-wildcard-deep", "/films", "a.b.internal.test", [], "ratings"),
    ("domain-suffix-needs-label", "/films", "internal.test", [], "films"),
    ("domain-prefix-wildcard", "/films", "static.anything", [], "ratings"),
    ("domain-port-not-stripped", "/films", "api.example.com:8080", [], "films"),
    ("domain-with-port", "/films", "port.example.com:8080", [], "ratings"),
    ("domain-with-port-miss", "/films", "port.example.com", [], "films"),
    ("domain-catch-all", "/films", "anything.else", [], "films"),
    ("cluster-header", "/by-header", "example.com", [("x-cluster", "ratings")], "ratings"),
    ("cluster-header-other", "/by-header", "example.com", [("x-cluster", "films")], "films"),
    ("cluster-header-unknown", "/by-header", "example.com", [("x-cluster", "nope")], 503),
    ("cluster-header-missing", "/by-header", "example.com", [], 503),
]


def where(resp):
    """The echo server that answered, or the status of a local reply."""
    up = resp.upstream()
    return up["server"] if up else resp.status


@pytest.mark.parametrize("path,host,headers,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route(pair, path, host, headers, want):
    e, l = pair.both(lambda p: p.get(path, host, headers))
    assert where(e) == want, show(f"Envoy itself did not answer {want!r}: the case is wrong", e, None)
    assert where(l) == where(e), show(f"GET {path} host={host} {headers}: routed to", where(e), where(l))
    assert l.status == e.status, show("status", e.status, l.status)


@pytest.mark.parametrize("path,host,headers,want", [c[1:] for c in CASES if isinstance(c[4], str)],
                         ids=[c[0] for c in CASES if isinstance(c[4], str)])
def test_upstream_path(pair, path, host, headers, want):
    """The :path the upstream receives is the request's, untouched when no rewrite applies."""
    e, l = pair.both(lambda p: p.get(path, host, headers).upstream()["path"])
    assert e == l == path, show("upstream path", e, l)


def test_weighted_clusters_reach_both(pair):
    """weighted_clusters 50/50: 40 requests reach both clusters, on both proxies."""
    def spread(p):
        seen = {}
        for _ in range(40):
            name = where(p.get("/weighted"))
            seen[name] = seen.get(name, 0) + 1
        return seen
    e, l = pair.both(spread)
    assert set(e) == {"films", "ratings"}, show("Envoy's spread (harness check)", e, None)
    assert set(l) == set(e), show("clusters reached by 40 weighted requests", e, l)


def test_absolute_form_routes_by_authority(pair):
    """`GET http://api.example.com/films` routes by the URI's authority, not the Host header."""
    raw = b"GET http://api.example.com/films?x=1 HTTP/1.1\r\nhost: other.example\r\nconnection: close\r\n\r\n"
    e, l = pair.both(lambda p: p.raw(raw))
    assert where(e) == "ratings", show("Envoy (harness check)", where(e), None)
    assert where(l) == where(e), show("absolute-form routed to", where(e), where(l))
    eu, lu = e.upstream(), l.upstream()
    assert lu["path"] == eu["path"], show("upstream path", eu["path"], lu["path"])
    assert lu["headers"]["host"] == eu["headers"]["host"], show("upstream host", eu["headers"]["host"], lu["headers"]["host"])


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_methods_are_forwarded(pair, method):
    e, l = pair.both(lambda p: p.request(method, "/films/m", body=b"x" if method in ("POST", "PUT", "PATCH") else b""))
    assert (e.status, l.status) == (200, 200), show(f"{method} status", e.status, l.status)
    if method != "HEAD":
        assert e.upstream()["method"] == l.upstream()["method"] == method, show(
            "method seen upstream", e.upstream()["method"], l.upstream()["method"])
    else:
        assert e.body == l.body == b"", show("HEAD body", e.body, l.body)
        # The echo body's length depends on the request (ids, addresses): compare presence.
        assert (l.header("content-length") is None) == (e.header("content-length") is None), show(
            "HEAD content-length", e.header("content-length"), l.header("content-length"))
