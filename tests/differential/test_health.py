"""Active health checking and outlier detection: Envoy 1.40 and Legate against the same
upstreams, whose health endpoint and traffic answer statuses the test sets; gRPC health checks
(a grpcio server whose grpc.health.v1.Health/Check answers the serving status the test sets, over
h2c and TLS) and TCP checks over TLS."""
import concurrent.futures
import http.server
import threading
import time

import grpc
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


class HealthServicer:
    """grpc.health.v1.Health/Check on raw bytes: answers HealthCheckResponse{status} (aborts with
    NOT_FOUND when status is "abort"); records every request and its metadata."""

    def __init__(self, tls_files=None):
        self.status, self.requests = 1, []
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(self.check)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": handler}),))
        if tls_files:
            with open(tls_files[0], "rb") as c, open(tls_files[1], "rb") as k:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def check(self, request, context):
        self.requests.append((request, tuple(sorted(context.invocation_metadata()))))
        if self.status == "abort":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such service")
        return bytes([0x08, self.status])

    def close(self):
        self.server.stop(grace=None)


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


def until_no_healthy_upstream(p, path, timeout=3):
    """(status, body) of the first answer to `path` that is "no healthy upstream", or the last."""
    deadline = time.time() + timeout
    while True:
        r = p.get(path)
        if r.body == b"no healthy upstream" or time.time() > deadline:
            return r.status, r.body
        time.sleep(0.02)


@pytest.fixture(scope="module")
def grpc_setup(make_pair, pki):
    plain = HealthServicer()
    tls = HealthServicer((f"{pki}/server.pem", f"{pki}/server.key"))
    silent = ups.SilentServer()
    values = {"grpc_port": plain.port, "grpc_tls_port": tls.port, "silent_port": silent.port, "ca": f"{pki}/ca.pem"}
    try:
        yield make_pair(harness.load_template("health_grpc.yaml"), values), plain, tls, silent
    finally:
        plain.close()
        tls.close()
        silent.close()


def test_grpc_first_round_and_tls(grpc_setup):
    pair, plain, tls, _ = grpc_setup
    for cluster, port, want in [("grpc", plain.port, "healthy"), ("grpc_tls", tls.port, "healthy"),
                                ("grpc_tls_no_alpn", tls.port, "/failed_active_hc"),
                                ("tcp_tls", tls.port, "healthy"), ("tcp_tls", plain.port, "/failed_active_hc"),
                                ("http2_hc", plain.port, "healthy"), ("http2_hc", tls.port, "/failed_active_hc")]:
        e, l = wait_flags(pair, cluster, port, want)
        assert e == l == want, show(f"{cluster} host {port}", e, l)
    e, l = pair.both(lambda p: {n: p.stats()[f"cluster.{n}.ssl.handshake"] > 0 for n in ("grpc_tls", "tcp_tls")})
    assert e == l == {"grpc_tls": True, "tcp_tls": True}, show("health checks did TLS handshakes", e, l)
    e, l = pair.both(lambda p: p.stats()["cluster.tcp_tls.ssl.connection_error"] > 0)
    assert e == l is True, show("the plain host fails the handshake", e, l)
    # Both proxies send the same request: the service name, :authority, the metadata, Envoy/HC.
    volatile = ("grpc-accept-encoding", "grpc-timeout")
    distinct = {(r, tuple(m for m in md if m[0] not in volatile)) for r, md in plain.requests if r}
    assert len(distinct) == 1, f"requests differ: {distinct}"
    (request, metadata), = distinct
    assert request == b"\x0a\x05films" and ("x-check", "1") in metadata, distinct
    assert {r for r, _ in tls.requests} == {b"\x0a\x03tls"}


@pytest.mark.parametrize("status", [2, 0, 3, "abort"], ids=["NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN", "NOT_FOUND"])
def test_grpc_not_serving_ejects_at_once_and_serving_readmits(grpc_setup, status):
    pair, plain, _, _ = grpc_setup
    before = pair.both(lambda p: p.stats()["cluster.grpc.health_check.network_failure"])
    plain.status = status
    # One failed check ejects (no unhealthy_threshold for an answered check).
    e, l = wait_flags(pair, "grpc", plain.port, "/failed_active_hc", timeout=1)
    assert e == l == "/failed_active_hc", show("ejected", e, l)
    for stat in ("membership_healthy", "health_check.healthy"):
        e, l = pair.both(lambda p: p.stats()[f"cluster.grpc.{stat}"])
        assert e == l == 0, show(stat, e, l)
    # Envoy's workers may route to the host for up to a second after the ejection shows.
    e, l = pair.both(lambda p: until_no_healthy_upstream(p, "/g"))
    assert e == l == (503, b"no healthy upstream"), show("no healthy upstream", e, l)
    after = pair.both(lambda p: p.stats()["cluster.grpc.health_check.network_failure"])
    assert after == before, show("answered checks are no network failures", *after)
    plain.status = 1
    e, l = wait_flags(pair, "grpc", plain.port, "healthy")
    assert e == l == "healthy", show("readmitted", e, l)
    for stat in ("membership_healthy", "health_check.healthy"):
        e, l = pair.both(lambda p: p.stats()[f"cluster.grpc.{stat}"])
        assert e == l == 1, show(stat, e, l)



def timeouts_counted(p, cluster, within=3.0):
    """(at least 3 health check failures, each also a network failure) of `cluster`, read until
    both hold or `within` seconds pass: the two counters are not read at one instant, and a check
    may time out between the two reads."""
    deadline = time.time() + within
    while True:
        s = p.stats()
        failure, network = (s[f"cluster.{cluster}.health_check.{n}"] for n in ("failure", "network_failure"))
        if (failure >= 3 and failure == network) or time.time() > deadline:
            return failure >= 3, failure == network
        time.sleep(0.05)


def test_grpc_timeouts_are_network_failures_on_one_kept_connection(grpc_setup):
    pair, _, _, silent = grpc_setup
    e, l = wait_flags(pair, "grpc_silent", silent.port, "/failed_active_hc/active_hc_timeout")
    assert e == l == "/failed_active_hc/active_hc_timeout", show("timed out", e, l)
    time.sleep(1)
    e, l = pair.both(lambda p: timeouts_counted(p, "grpc_silent"))
    assert e == l == (True, True), show("several timeouts, all network failures", e, l)
    # A timed-out gRPC check resets its stream and keeps the connection: one per proxy.
    assert silent.accepted == 2, silent.accepted
