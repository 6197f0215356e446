"""Active health checking and outlier detection: Envoy 1.40 and Legate against the same
upstreams, whose health endpoint and traffic answer statuses the test sets."""
import http.server
import threading
import time

import pytest

import harness
import upstreams as ups
from harness import show


class StatusServer:
    """HTTP/1.1 upstream: GET /healthz answers `hc_status`, anything else `status`, body = name."""

    def __init__(self, name, hc_status=200, status=200):
        self.name, self.hc_status, self.status = name, hc_status, status
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                code = outer.hc_status if self.path == "/healthz" else outer.status
                body = outer.name.encode()
                self.send_response(code)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def setup(make_pair):
    servers = {n: StatusServer(n) for n in ("good", "bad", "od_good", "od_bad")}
    servers["bad"].hc_status = 503
    servers["od_bad"].status = 500
    values = {f"{n}_port": s.port for n, s in servers.items()}
    values["closed_port"] = ups.closed_port()
    try:
        yield make_pair(harness.load_template("health.yaml"), values), servers, values
    finally:
        for s in servers.values():
            s.close()


def flags(p, cluster, port):
    prefix = f"{cluster}::127.0.0.1:{port}::health_flags::"
    return next((line[len(prefix):] for line in p.admin("/clusters")[1].splitlines() if line.startswith(prefix)), None)


def wait_flags(pair, cluster, port, want, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pair.both(lambda p: flags(p, cluster, port))
        if got == (want, want):
            return got
        time.sleep(0.05)
    return pair.both(lambda p: flags(p, cluster, port))


def test_first_round_flags_and_stats(setup):
    pair, _, values = setup
    for port, want in [(values["good_port"], "healthy"), (values["bad_port"], "/failed_active_hc"),
                       (values["closed_port"], "/failed_active_hc")]:
        e, l = pair.both(lambda p: flags(p, "hc", port))
        assert e == l == want, show(f"hc host {port}", e, l)
    names = [f"cluster.hc.health_check.{n}" for n in
             ("attempt", "success", "failure", "network_failure", "passive_failure", "verify_cluster", "healthy", "degraded")]
    e, l = pair.both(lambda p: {n: p.stats().get(n) is not None for n in names})
    assert e == l and all(e.values()), show("health_check stats exist", e, l)
    for stat in ("cluster.hc.health_check.healthy", "cluster.hc.membership_healthy", "cluster.hc.membership_total"):
        e, l = pair.both(lambda p: p.stats()[stat])
        assert e == l, show(stat, e, l)


def test_panic_mode_and_recovery(setup):
    pair, servers, values = setup
    # 1 of 3 healthy (33% < 50%): panic mode, every request counts lb_healthy_panic.
    before = pair.both(lambda p: p.stats()["cluster.hc.lb_healthy_panic"])
    pair.both(lambda p: p.get("/hc"))
    after = pair.both(lambda p: p.stats()["cluster.hc.lb_healthy_panic"])
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1), show("lb_healthy_panic", *after)
    # The bad host recovers: 2 of 3 healthy, no panic, traffic only to the healthy hosts.
    servers["bad"].hc_status = 200
    e, l = wait_flags(pair, "hc", values["bad_port"], "healthy")
    assert e == l == "healthy", show("recovered", e, l)
    e, l = pair.both(lambda p: sorted({p.get("/hc").body.decode() for _ in range(12)}))
    assert e == l == ["bad", "good"], show("healthy hosts answer", e, l)
    # A non-200 status fails a host at the next check (no unhealthy_threshold for it).
    servers["bad"].hc_status = 500
    e, l = wait_flags(pair, "hc", values["bad_port"], "/failed_active_hc", timeout=1)
    assert e == l == "/failed_active_hc", show("failed at once", e, l)


def test_outlier_consecutive_5xx(setup):
    pair, _, values = setup
    for p in pair:
        for _ in range(6):
            p.get("/od")
    e, l = wait_flags(pair, "od", values["od_bad_port"], "/failed_outlier_check")
    assert e == l == "/failed_outlier_check", show("ejected", e, l)
    prefix = "cluster.od.outlier_detection."
    e, l = pair.both(lambda p: {k: v for k, v in p.stats().items() if k.startswith(prefix) and v})
    assert e == l, show("outlier stats", e, l)
    e, l = pair.both(lambda p: sorted({p.get("/od").body.decode() for _ in range(6)}))
    assert e == l == ["od_good"], show("ejected host gets no traffic", e, l)
    e, l = pair.both(lambda p: [x for x in p.admin("/clusters")[1].splitlines() if x.startswith("od::outlier::")])
    assert e == l, show("outlier lines", e, l)
