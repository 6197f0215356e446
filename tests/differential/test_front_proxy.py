"""Differential tests: each sends the same traffic through Envoy and Legate and compares."""
import json
import re
import shutil
import subprocess

import pytest

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def both(pair, fn):
    envoy, legate = pair
    return fn(envoy), fn(legate)


def upstream(resp):
    """Which echo server answered and the request it saw."""
    status, _, body = resp
    return status, json.loads(body) if body.startswith(b"{") else None


@pytest.mark.parametrize("path,host,extra,want", [
    ("/films/1", "example.com", "", "films"),
    ("/ratings?x=1", "example.com", "", "ratings"),
    ("/exact", "example.com", "", "ratings"),
    ("/exact/no", "example.com", "", None),
    ("/re/42", "example.com", "", "ratings"),
    ("/re/4x", "example.com", "", None),
    ("/hdr", "example.com", "x-pick: ratings\r\n", "ratings"),
    ("/hdr", "example.com", "x-pick: films\r\n", None),
    ("/q?pick=ratings", "example.com", "", "ratings"),
    ("/films", "api.example.com", "", "ratings"),
    ("/films", "a.internal.test", "", "ratings"),
    ("/films", "static.anything", "", "ratings"),
    ("/films", "api.example.com:8080", "", "films"),
    ("/nowhere", "example.com", "", None),
])
def test_routing_matches_envoy(pair, path, host, extra, want):
    e, l = both(pair, lambda p: p.get(path, host, extra))
    assert e[0] == l[0], f"status envoy={e[0]} legate={l[0]}"
    got = [upstream(r)[1]["server"] if upstream(r)[1] else None for r in (e, l)]
    assert got[0] == got[1] == want, f"routed envoy={got[0]} legate={got[1]}"


def test_no_route_is_an_empty_404(pair):
    e, l = both(pair, lambda p: p.get("/nowhere"))
    assert (e[0], e[2]) == (l[0], l[2]) == (404, b"")


def test_forwarded_headers(pair):
    def seen(p):
        r = p.get("/films/h", extra="x-envoy-retry-on: 5xx\r\nx-drop-me: 1\r\nx-request-id: mine\r\n")
        return upstream(r)[1]["headers"]
    e, l = both(pair, seen)
    for name in ["x-forwarded-proto", "x-forwarded-for", "x-envoy-expected-rq-timeout-ms",
                 "x-envoy-external-address", "x-vhost", "host"]:
        assert e.get(name) == l.get(name), f"{name}: envoy={e.get(name)!r} legate={l.get(name)!r}"
    for name in ["x-envoy-retry-on", "x-drop-me"]:
        assert name not in e and name not in l, f"{name} must be stripped"
    assert UUID.match(e["x-request-id"]) and UUID.match(l["x-request-id"]), (e["x-request-id"], l["x-request-id"])
    assert l["x-request-id"] != "mine", "an edge request gets a fresh x-request-id"


def test_rewrites(pair):
    e, l = both(pair, lambda p: upstream(p.get("/v1/items?x=1"))[1])
    assert e["path"] == l["path"] == "/v2/items?x=1"
    assert e["headers"]["host"] == l["headers"]["host"] == "films.internal"
    assert e["headers"].get("x-envoy-original-path") == l["headers"].get("x-envoy-original-path") == "/v1/items?x=1"


def test_response_headers(pair):
    e, l = both(pair, lambda p: p.get("/films/1"))
    for resp in (e, l):
        assert resp[1].get("x-global") == "yes"
        assert "x-envoy-upstream-service-time" in resp[1]
        assert "server" in resp[1]
    assert e[1]["server"] == l[1]["server"] == "envoy"


def test_direct_response_and_redirects(pair):
    e, l = both(pair, lambda p: p.get("/direct"))
    assert (e[0], e[2]) == (l[0], l[2]) == (418, b"teapot")
    e, l = both(pair, lambda p: p.get("/old/x?q=1"))
    assert (e[0], e[1].get("location")) == (l[0], l[1].get("location")), (e[:2], l[:2])
    e, l = both(pair, lambda p: p.get("/secure/x"))
    assert (e[0], e[1].get("location")) == (l[0], l[1].get("location")), (e[:2], l[:2])


def test_unreachable_upstream_503_body(pair):
    e, l = both(pair, lambda p: p.get("/closed"))
    assert e[0] == l[0] == 503
    assert e[2] == l[2], f"body envoy={e[2]!r} legate={l[2]!r}"


@pytest.mark.parametrize("raw,name", [
    (b"GET /films HTTP/1.0\r\nhost: x\r\n\r\n", "http/1.0"),
    (b"GET /films HTTP/1.1\r\n\r\n", "missing host"),
    (b"GET /films HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n", "invalid header name"),
    (b"BLAH\r\n\r\n", "bad request line"),
    (b"GET /films HTTP/1.1\r\nhost: x\r\nx-big: " + b"v" * (70 * 1024) + b"\r\n\r\n", "headers over 60 KiB"),
    (b"POST /films HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "unsupported coding"),
    (b"POST /films HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", "conflicting lengths"),
])
def test_malformed_requests(pair, raw, name):
    e, l = both(pair, lambda p: p.raw(raw)[0])
    assert e == l, f"{name}: envoy={e} legate={l}"
    after = both(pair, lambda p: p.get("/films/ok")[0])
    assert after == (200, 200), "the listener keeps serving"


def test_counters_after_fixed_traffic(pair):
    def run(p):
        before = p.stats()
        for _ in range(3):
            p.get("/films/c")
        p.get("/nowhere")
        p.get("/closed")
        after = p.stats()
        names = ["cluster.films.upstream_rq_total", "cluster.films.upstream_rq_2xx", "cluster.films.upstream_rq_200",
                 "http.ingress_http.downstream_rq_total", "http.ingress_http.downstream_rq_2xx",
                 "http.ingress_http.downstream_rq_4xx", "http.ingress_http.downstream_rq_5xx",
                 "http.ingress_http.no_route", "cluster.closed.upstream_cx_connect_fail",
                 "cluster.closed.upstream_rq_503", f"listener.127.0.0.1_{p.listener_port}.downstream_cx_total"]
        deltas = {n.replace(str(p.listener_port), "PORT"): after.get(n, 0) - before.get(n, 0) for n in names}
        return deltas, after.get("cluster.films.membership_total")
    e, l = both(pair, run)
    assert e == l


def test_prometheus_output(pair):
    e, l = both(pair, lambda p: p.admin("/stats/prometheus")[1])
    pattern = re.compile(r'^envoy_cluster_upstream_rq_total\{envoy_cluster_name="films"\} (\d+)$', re.M)
    assert pattern.search(e) and pattern.search(l)
    assert pattern.search(e).group(1) == pattern.search(l).group(1)
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=l.encode(), capture_output=True, timeout=30)
        problems = [line for line in check.stdout.decode().splitlines() + check.stderr.decode().splitlines()
                    if line.lower().startswith("error")]
        assert not problems, problems


def test_admin_endpoints(pair):
    for p in pair:
        assert p.admin("/ready") == (200, "LIVE\n")
        assert p.admin("/healthcheck/fail")[0] == 405
    e, l = both(pair, lambda p: [line for line in p.admin("/clusters")[1].splitlines()
                                 if line.startswith("films::") and "::health_flags::" in line])
    assert [x.split("::")[-1] for x in e] == [x.split("::")[-1] for x in l] == ["healthy"]
    e, l = both(pair, lambda p: p.admin("/listeners")[1].split("::")[0])
    assert e == l == "front"


def test_health_check_fail_drains(pair):
    # Runs last in this module: it leaves both proxies failing health checks.
    for p in pair:
        assert p.admin("/healthcheck/fail", method="POST")[0] == 200
        status, body = p.admin("/ready")
        assert status == 503 and body.strip() == "DRAINING", (p.kind, status, body)


def test_absolute_form_routes_by_its_authority(pair):
    raw = b"GET http://api.example.com/films?x=1 HTTP/1.1\r\nhost: other.example\r\nconnection: close\r\n\r\n"
    e, l = both(pair, lambda p: upstream(p.raw(raw)))
    assert e[0] == l[0] == 200
    assert e[1]["server"] == l[1]["server"] == "ratings"
    assert e[1]["path"] == l[1]["path"], (e[1]["path"], l[1]["path"])
    assert e[1]["headers"]["host"] == l[1]["headers"]["host"], (e[1]["headers"]["host"], l[1]["headers"]["host"])


def test_large_bodies_stream_intact(pair):
    body = bytes(i % 251 for i in range(5 * 1024 * 1024))
    raw = (b"POST /films/up HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    e, l = both(pair, lambda p: upstream(p.raw(raw, timeout=20)))
    assert e[0] == l[0] == 200
    assert e[1]["body_len"] == l[1]["body_len"] == len(body)
