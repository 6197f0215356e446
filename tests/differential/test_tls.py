"""TLS termination, ALPN and HTTP/2 over TLS: curl against Envoy and Legate on the same
certificates (a CA and a leaf made with openssl at test time), and the ssl.* stats after; TLS to
upstreams (a Python TLS server) with the right CA, another CA and no verification."""
import base64
import hashlib
import http.server
import json
import ssl
import subprocess
import threading
import time

import pytest

import harness
from harness import show

IDS = ["envoy", "legate"]


@pytest.fixture(scope="module")
def tls_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls.yaml"), dict(values, cert=f"{pki}/server.pem", key=f"{pki}/server.key"))


def cert_sha256(pem, colons=False):
    """Hex SHA-256 of a PEM certificate's DER (Envoy's verify_certificate_hash)."""
    with open(pem) as f:
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper() if colons else digest


def spki_sha256(pem):
    """Base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo (verify_certificate_spki)."""
    key = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", pem], capture_output=True, check=True, timeout=30)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=key.stdout,
                         capture_output=True, check=True, timeout=30)
    return base64.b64encode(hashlib.sha256(der.stdout).digest()).decode()


@pytest.fixture(scope="module")
def mtls_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls_mtls.yaml"),
                     dict(values, cert=f"{pki}/server.pem", key=f"{pki}/server.key", ca=f"{pki}/ca.pem"))


def curl(proxy, pki, *args, path="/films/tls"):
    """(exit code, "<http version> <status>", body) of curl against the proxy's listener."""
    port = proxy.listener_port
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"localhost:{port}:127.0.0.1",
         "--cacert", f"{pki}/ca.pem", "-w", "\n%{http_version} %{response_code}", *args,
         f"https://localhost:{port}{path}"],
        capture_output=True, text=True, timeout=20)
    body, _, meta = out.stdout.rpartition("\n")
    return out.returncode, meta, body


def upstream_view(result):
    """What the echo upstream saw: method, path and the headers that depend on TLS."""
    code, meta, body = result
    if code != 0:
        return code, meta
    seen = json.loads(body)
    h = seen["headers"]
    return code, meta, seen["path"], h.get("x-forwarded-proto"), h.get("x-envoy-expected-rq-timeout-ms")


@pytest.mark.parametrize("args", [["--http1.1"], ["--http2"], ["--http1.1", "--tls-max", "1.2"],
                                  ["--http2", "--tlsv1.3"]], ids=["h1", "h2", "h1-tls12", "h2-tls13"])
def test_https_request(tls_pair, pki, args):
    e, l = tls_pair.both(lambda p: upstream_view(curl(p, pki, *args)))
    assert e[0] == 0, show("Envoy (harness check)", e, None)
    assert l == e, show(f"curl {' '.join(args)}", e, l)


def test_untrusted_server_certificate_is_refused_by_the_client(tls_pair, pki):
    def run(p):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve",
                              f"localhost:{p.listener_port}:127.0.0.1", f"https://localhost:{p.listener_port}/"],
                             capture_output=True, text=True, timeout=20)
        return out.returncode
    e, l = tls_pair.both(run)
    assert e == l == 60, show("curl exit code without --cacert (60 = peer certificate not trusted)", e, l)


def test_plain_http_on_a_tls_port_gets_no_http_response(tls_pair):
    def run(p):
        with p.connect() as c:
            c.send(harness.request_bytes("GET", "/films/x"))
            try:
                c.read_response()
                return "got a response"
            except (EOFError, ConnectionError, OSError):
                return "closed"
    e, l = tls_pair.both(run)
    assert l == e == "closed", show("plain HTTP to the TLS port", e, l)


@pytest.mark.parametrize("client", ["none", "signed"])
def test_mutual_tls(mtls_pair, pki, client):
    args = [] if client == "none" else ["--cert", f"{pki}/client.pem", "--key", f"{pki}/client.key"]
    # Success and status; curl's exit code on a refused handshake (55 or 56) depends on timing.
    e, l = mtls_pair.both(lambda p: (lambda r: (r[0] == 0, r[1]))(curl(p, pki, "--http1.1", *args)))
    assert e[0] == (client == "signed"), show("Envoy (harness check)", e, None)
    assert l == e, show(f"mTLS with client certificate: {client}", e, l)


@pytest.fixture(scope="module")
def san_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls_san.yaml"),
                     dict(values, cert=f"{pki}/server.pem", key=f"{pki}/server.key", ca=f"{pki}/ca.pem"))


@pytest.fixture(scope="module")
def pins_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls_pins.yaml"),
                     dict(values, cert=f"{pki}/server.pem", key=f"{pki}/server.key",
                          client_hash=cert_sha256(f"{pki}/client.pem", colons=True), a_spki=spki_sha256(f"{pki}/a.pem")))


def with_client_cert(pair, pki, client):
    args = [] if client == "none" else ["--cert", f"{pki}/{client}.pem", "--key", f"{pki}/{client}.key"]
    return pair.both(lambda p: (lambda r: (r[0] == 0, r[1]))(curl(p, pki, "--http1.1", *args)))


@pytest.mark.parametrize("client", ["wild", "spiffe", "client", "none"])
def test_client_certificate_san_matchers(san_pair, pki, client):
    """*.legate.test matches the DNS exact api.legate.test; the URI prefix ignores case; a
    client.test certificate matches nothing; SAN matchers make a certificate mandatory."""
    e, l = with_client_cert(san_pair, pki, client)
    assert e[0] == (client in ("wild", "spiffe")), show("Envoy (harness check)", e, None)
    assert l == e, show(f"SAN matchers, client certificate: {client}", e, l)


@pytest.mark.parametrize("client", ["client", "a", "b", "none"])
def test_client_certificate_pins_without_a_ca(pins_pair, pki, client):
    """client.pem is pinned by its hash, a.pem by its key; b.pem matches neither."""
    e, l = with_client_cert(pins_pair, pki, client)
    assert e[0] == (client in ("client", "a")), show("Envoy (harness check)", e, None)
    assert l == e, show(f"pinned client certificates, client certificate: {client}", e, l)


SSL_STATS = ["handshake", "connection_error", "no_certificate", "fail_verify_no_cert", "fail_verify_error",
             "fail_verify_san", "fail_verify_cert_hash", "versions.TLSv1.2", "versions.TLSv1.3"]


@pytest.mark.parametrize("name", SSL_STATS)
def test_ssl_stats_after_the_requests_above(tls_pair, mtls_pair, san_pair, pins_pair, name):
    """Runs last in this module (pytest keeps file order): counts the handshakes made above."""
    for pair in (tls_pair, mtls_pair, san_pair, pins_pair):
        e, l = pair.both(lambda p: p.stats().get(f"{p.listener_stat}.ssl.{name}"))
        assert l == e, show(f"listener ssl.{name}", e, l)


def test_hcm_counts_tls_connections(tls_pair, pki):
    """Two HTTPS requests on their own connections: the connection manager counts two TLS
    connections, none left active (Envoy also counts connections whose handshake never ends,
    such as the harness's readiness probe: README, known differences)."""
    keys = ("downstream_cx_total", "downstream_cx_ssl_total", "downstream_cx_ssl_active", "downstream_cx_active")

    def two_requests(p):
        for _ in range(2):
            assert curl(p, pki, "--http1.1")[0] == 0
    busy = ("http.ingress_https.downstream_cx_active", "http.ingress_https.downstream_rq_active")
    e, l = tls_pair.both(lambda p: {k: v for k, v in harness.counted(p, two_requests, ("http.ingress_https.",), busy).items()
                                    if k.endswith(keys)})
    assert e == {"http.ingress_https.downstream_cx_total": 2, "http.ingress_https.downstream_cx_ssl_total": 2}, \
        show("Envoy itself (harness check)", e, None)
    assert l == e, show("connection manager TLS connection counts", e, l)


class _TlsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"tls-upstream {self.path} sni={getattr(self.connection, 'sni', None)}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tls_upstream(pki):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TlsHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{pki}/server.pem", f"{pki}/server.key")
    ctx.sni_callback = lambda sock, name, _: setattr(sock, "sni", name)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def up_pair(make_pair, values, pki, tls_upstream):
    return make_pair(harness.load_template("tls_upstream.yaml"),
                     dict(values, tls_port=tls_upstream, ca=f"{pki}/ca.pem", other_ca=f"{pki}/other.pem",
                          server_spki=spki_sha256(f"{pki}/server.pem"), ca_hash=cert_sha256(f"{pki}/ca.pem")))


@pytest.mark.parametrize("path", ["/ok/a", "/noverify/b", "/sanok/c", "/pinok/d"])
def test_tls_upstream_request(up_pair, path):
    e, l = up_pair.both(lambda p: (lambda r: (r.status, r.body))(p.get(path)))
    assert e[0] == 200, show("Envoy (harness check)", e, None)
    assert l == e, show(f"GET {path} over TLS to the upstream", e, l)


@pytest.mark.parametrize("path", ["/badca/c", "/sanbad/e", "/pinbad/f"])
def test_tls_upstream_with_a_refused_certificate(up_pair, path):
    """An untrusted chain, no SAN matching, a pin not matching: 503 and the same body."""
    e, l = up_pair.both(lambda p: (lambda r: (r.status, r.body.decode()))(p.get(path)))
    assert e[0] == 503, show("Envoy (harness check)", e, None)
    assert l == e, show(f"GET {path}: refused upstream certificate", e, l)


@pytest.mark.parametrize("path,host", [("/auto/a", "localhost"), ("/auto/b", "LOCALHOST:443"), ("/auto/c", "other.test"),
                                       ("/auto/d", "127.0.0.1:443"), ("/autorw/e", "other.test"),
                                       ("/auto/f", "localhost")])
def test_tls_upstream_auto_sni_and_san_validation(up_pair, path, host):
    """The server name is the request's host (after host rewrite, without the port, none for an
    address) and must be one of the certificate's SANs; connections are not shared across names."""
    e, l = up_pair.both(lambda p: (lambda r: (r.status, r.body.decode()))(p.get(path, host=host)))
    assert l == e, show(f"GET {path} with host {host} to an auto_sni cluster", e, l)


@pytest.mark.parametrize("name", ["cluster.tls_ok.ssl.handshake", "cluster.tls_noverify.ssl.handshake",
                                  "cluster.tls_badca.upstream_cx_connect_fail", "cluster.tls_badca.ssl.fail_verify_error",
                                  "cluster.tls_badca.upstream_rq_503", "cluster.tls_san_ok.ssl.handshake",
                                  "cluster.tls_pin_ok.ssl.handshake"]
                         + [f"cluster.{c}.ssl.{s}" for c in ("tls_san_bad", "tls_pin_bad")
                            for s in ("fail_verify_san", "fail_verify_cert_hash", "fail_verify_error", "connection_error")]
                         + [f"cluster.tls_auto.{s}" for s in ("ssl.handshake", "ssl.fail_verify_san", "upstream_cx_total")])
def test_tls_upstream_stats(up_pair, name):
    e, l = up_pair.both(lambda p: p.stats().get(name))
    assert l == e, show(name, e, l)


@pytest.fixture(scope="module")
def sni_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls_sni.yaml"), dict(values, pki=pki))


def sni_get(proxy, pki, name):
    port = proxy.listener_port
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve", f"{name}:{port}:127.0.0.1",
                          "--cacert", f"{pki}/ca.pem", f"https://{name}:{port}/"],
                         capture_output=True, text=True, timeout=20)
    return out.returncode, out.stdout


@pytest.mark.parametrize("name", ["a.test", "x.b.test", "y.x.b.test", "other.test"])
def test_sni_selects_the_filter_chain_and_its_certificate(sni_pair, pki, name):
    e, l = sni_pair.both(lambda p: sni_get(p, pki, name))
    assert l == e, show(f"https://{name}", e, l)


def test_plain_http_goes_to_the_raw_buffer_chain(sni_pair):
    e, l = sni_pair.both(lambda p: (lambda r: (r.status, r.body))(p.get("/")))
    assert e == (200, b"plain"), show("Envoy (harness check)", e, None)
    assert l == e, show("plain HTTP on the SNI listener", e, l)


@pytest.fixture(scope="module")
def multi_pair(make_pair, values, pki):
    return make_pair(harness.load_template("tls_multi.yaml"), dict(values, pki=pki))


def served_certificate(proxy, sni, rsa_only):
    """The subject CN of the certificate the listener serves to openssl s_client."""
    args = ["-servername", sni] if sni else ["-noservername"]
    if rsa_only:
        args += ["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"]
    hello = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.listener_port}", *args],
                           input=b"", capture_output=True, timeout=20)
    cert = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=hello.stdout, capture_output=True, timeout=20)
    return cert.stdout.decode().strip() or "no certificate"


@pytest.mark.parametrize("sni,rsa_only", [("a.test", False), ("a.test", True), ("x.r.test", False), ("x.b.test", False),
                                          ("x.b.test", True), ("none.test", False), (None, False), (None, True)])
def test_several_certificates_chosen_by_server_name_and_key_type(multi_pair, sni, rsa_only):
    e, l = multi_pair.both(lambda p: served_certificate(p, sni, rsa_only))
    assert "no certificate" not in e or (sni, rsa_only) == ("x.b.test", True), show("Envoy (harness check)", e, None)
    assert l == e, show(f"certificate for SNI {sni}, {'RSA-only' if rsa_only else 'any'} client", e, l)


@pytest.fixture(scope="module")
def expiry_pki(tmp_path_factory):
    """A leaf valid 30 days, signed by a CA valid 400 days; and a CA valid 10 days."""
    d = str(tmp_path_factory.mktemp("expiry"))
    from conftest import openssl
    for name, days in (("long-ca", "400"), ("short-ca", "10")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                f"{name}.key", "-out", f"{name}.pem", "-days", days, "-subj", f"/CN={name}", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
            "-out", "leaf.csr", "-subj", "/CN=localhost", cwd=d)
    with open(f"{d}/leaf.ext", "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "long-ca.pem", "-CAkey", "long-ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "30", "-extfile", "leaf.ext", cwd=d)
    for first, second in (("long-ca", "short-ca"), ("short-ca", "long-ca")):
        with open(f"{d}/{first}+{second}.pem", "w") as out:
            out.write(open(f"{d}/{first}.pem").read() + open(f"{d}/{second}.pem").read())
    # The proxies start at least a second after the certificates: 29 and 9 whole days remain
    # (in the second they were made, 30 and 10).
    time.sleep(1.1)
    return d


def days_until_first_cert_expiring(pair):
    return pair.both(lambda p: p.stats().get("server.days_until_first_cert_expiring"))


@pytest.mark.parametrize("template,ca", [("tls.yaml", None), ("tls_mtls.yaml", "long-ca+short-ca"),
                                         ("tls_mtls.yaml", "short-ca+long-ca")])
def test_days_until_first_cert_expiring(make_pair, values, expiry_pki, template, ca):
    """The leaf of each certificate chain and every CA of trusted_ca count, as in Envoy."""
    d = expiry_pki
    subs = dict(values, cert=f"{d}/leaf.pem", key=f"{d}/leaf.key", ca=f"{d}/{ca}.pem" if ca else "")
    pair = make_pair(harness.load_template(template), subs)
    e, l = days_until_first_cert_expiring(pair)
    assert e in (9, 29), show("Envoy itself (harness check)", e, None)
    assert l == e, show("server.days_until_first_cert_expiring", e, l)


def test_days_until_first_cert_expiring_counts_clusters(make_pair, values, expiry_pki, tls_upstream, pki):
    """The clusters' TLS contexts count too: one cluster trusts the 400-day CA, another the
    10-day one."""
    d = expiry_pki
    pair = make_pair(harness.load_template("tls_upstream.yaml"),
                     dict(values, tls_port=tls_upstream, ca=f"{d}/long-ca.pem", other_ca=f"{d}/short-ca.pem",
                          server_spki=spki_sha256(f"{pki}/server.pem"), ca_hash=cert_sha256(f"{pki}/ca.pem")))
    e, l = days_until_first_cert_expiring(pair)
    assert e == 9, show("Envoy itself (harness check)", e, None)
    assert l == e, show("server.days_until_first_cert_expiring", e, l)


def test_days_until_first_cert_expiring_without_certificates(pair):
    assert days_until_first_cert_expiring(pair) == (2**32 - 1, 2**32 - 1)


def certs(p):
    """/certs as JSON, its contexts in a stable order (Envoy keeps them in a hash set)."""
    listed = json.loads(p.admin("/certs")[1])["certificates"]
    return sorted(listed, key=lambda c: json.dumps(c, sort_keys=True))


@pytest.mark.parametrize("fixture", ["pair", "tls_pair", "mtls_pair", "san_pair", "up_pair"])
def test_admin_certs(request, fixture):
    """Every TLS context (listeners and clusters) with its trusted CAs and chain leaves: path,
    serial number, SANs, validity and days until expiration."""
    e, l = request.getfixturevalue(fixture).both(certs)
    assert fixture == "pair" or e, show("Envoy itself (harness check)", e, None)
    assert l == e, show("/certs", json.dumps(e, indent=1), json.dumps(l, indent=1))
