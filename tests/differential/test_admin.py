"""Admin endpoints: /ready, health-check fail/ok, method checks, /listeners, /clusters."""
import pytest

import harness
from harness import show


def test_ready_is_live(pair):
    e, l = pair.both(lambda p: p.admin("/ready"))
    assert e == (200, "LIVE\n"), show("Envoy (harness check)", e, None)
    assert l == e, show("/ready", e, l)


@pytest.mark.parametrize("path", ["/healthcheck/fail", "/healthcheck/ok", "/quitquitquit", "/reset_counters",
                                  "/drain_listeners", "/logging?level=info"])
def test_get_on_post_only_endpoint_is_405(pair, path):
    """GET must not act: 405 with Envoy's body (and the proxy keeps running)."""
    e, l = pair.both(lambda p: p.admin(path))
    assert e[0] == 405, show("Envoy (harness check)", e, None)
    assert l == e, show(f"GET {path}", e, l)
    assert pair.legate.proc.poll() is None, "Legate exited after a GET of a POST-only endpoint"


@pytest.mark.parametrize("path", ["/nope", "/stats/nope"])
def test_unknown_endpoint_status(pair, path):
    e, l = pair.both(lambda p: p.admin(path)[0])
    assert l == e, show(f"GET {path} status", e, l)


@pytest.mark.parametrize("path,content_type", [("/stats", "text/plain"), ("/stats/prometheus", "text/plain"),
                                               ("/clusters", "text/plain"), ("/ready", "text/plain"),
                                               ("/stats?format=json", "application/json"),
                                               ("/clusters?format=json", "application/json")])
def test_admin_content_type(pair, path, content_type):
    import urllib.request

    def ct(p):
        with urllib.request.urlopen(f"http://127.0.0.1:{p.admin_port}{path}", timeout=10) as r:
            return r.headers.get("content-type", "").split(";")[0]
    e, l = pair.both(ct)
    assert e == content_type, show("Envoy (harness check)", e, None)
    assert l == e, show(f"{path} content-type", e, l)


def test_listeners(pair):
    e, l = pair.both(lambda p: p.admin("/listeners")[1].replace(str(p.listener_port), "PORT"))
    assert l == e, show("/listeners", e, l)


def test_clusters_lists_static_hosts(pair, values):
    want = f"films::127.0.0.1:{values['films_port']}::health_flags::healthy"
    e, l = pair.both(lambda p: want in p.admin("/clusters")[1].splitlines())
    assert e and l, show(f"{want!r} in /clusters", e, l)


def test_healthcheck_fail_then_ok(make_pair, values):
    """POST /healthcheck/fail: /ready answers 503 DRAINING; POST /healthcheck/ok restores LIVE.
    Uses its own pair so the failed state cannot leak into other tests."""
    pair = make_pair(harness.load_template("front_proxy.yaml"), values)

    def run(p):
        fail = p.admin("/healthcheck/fail", method="POST")
        ready_failed = p.admin("/ready")
        serving = p.get("/films/hc").status
        ok = p.admin("/healthcheck/ok", method="POST")
        ready_ok = p.admin("/ready")
        return fail, ready_failed, serving, ok, ready_ok
    e, l = pair.both(run)
    assert e[1][0] == 503 and e[4] == (200, "LIVE\n"), show("Envoy (harness check)", e, None)
    for i, what in enumerate(["POST /healthcheck/fail", "/ready after fail", "proxying after fail",
                              "POST /healthcheck/ok", "/ready after ok"]):
        assert l[i] == e[i], show(what, e[i], l[i])
