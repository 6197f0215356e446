"""auto_config (HttpProtocolOptions): the upstream protocol is chosen per connection by ALPN.
An nginx upstream over TLS selects h2 on one port and only http/1.1 on the other; the responses
(nginx echoes the protocol it served) and the upstream_cx_* counts match Envoy's. --mode
validate refuses auto_config without TLS, HTTP/3 without an alternate protocols cache, as Envoy."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import harness
from upstreams import free_port
from conftest import check_binaries
from harness import show
from test_cli import validate

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def nginx(pki):
    """(h2 port, http/1.1 port) of an nginx answering with the protocol of the request."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx not installed")
    h2, h1 = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="diff-nginx-") as d:
        tls = f"ssl_certificate {pki}/server.pem; ssl_certificate_key {pki}/server.key;"
        reply = 'location / { return 200 "$server_protocol"; }'
        temp = " ".join(f"{k}_temp_path {d}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = (f"daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n"
                f"events {{}}\nhttp {{ access_log off; {temp}\n"
                f"server {{ listen 127.0.0.1:{h2} ssl http2; {tls} {reply} }}\n"
                f"server {{ listen 127.0.0.1:{h1} ssl; {tls} {reply} }}\n}}\n")
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(conf)
        proc = subprocess.Popen([NGINX, "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", h1), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield h2, h1
        finally:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def auto_pair(make_pair, values, nginx):
    return make_pair(harness.load_template("auto_config.yaml"), dict(values, h2_port=nginx[0], h1_port=nginx[1]))


@pytest.mark.parametrize("path,protocol", [("/h2/a", "HTTP/2.0"), ("/h2/b", "HTTP/2.0"), ("/h1/a", "HTTP/1.1"),
                                           ("/h1/b", "HTTP/1.1")])
def test_the_protocol_is_the_one_alpn_selected(auto_pair, path, protocol):
    e, l = auto_pair.both(lambda p: (lambda r: (r.status, r.body.decode()))(p.get(path)))
    assert e == (200, protocol), show("Envoy (harness check)", e, None)
    assert l == e, show(f"GET {path} to an auto_config cluster", e, l)


@pytest.mark.parametrize("name", [f"cluster.{c}.{s}" for c in ("auto_h2", "auto_h1")
                                  for s in ("upstream_cx_total", "upstream_cx_http1_total", "upstream_cx_http2_total",
                                            "upstream_rq_total", "ssl.handshake")])
def test_connection_counts_after_the_requests_above(auto_pair, name):
    e, l = auto_pair.both(lambda p: p.stats().get(name))
    assert l == e, show(name, e, l)


def cluster_config(options, tls):
    socket_yaml = ("    transport_socket: {name: envoy.transport_sockets.tls, typed_config: "
                   "{'@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext}}\n"
                   if tls else "")
    return ("static_resources:\n  clusters:\n  - name: c\n    connect_timeout: 1s\n" + socket_yaml +
            "    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
            "        '@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
            f"        auto_config: {options}\n")


@pytest.mark.parametrize("options,tls,accepted", [("{}", True, True), ("{http_protocol_options: {}}", True, True),
                                                  ("{}", False, False), ("{http3_protocol_options: {}}", True, False)],
                         ids=["tls", "tls-h1-options", "no-tls", "h3-without-cache"])
def test_validate(options, tls, accepted):
    check_binaries()
    text = cluster_config(options, tls)
    (ec, eo), (lc, lo) = validate(harness.ENVOY_BIN, text), validate(harness.LEGATE_BIN, text)
    assert (ec == 0) == accepted, show("Envoy (harness check)", eo[-500:], None)
    assert lc == ec, show("exit code", (ec, eo[-300:]), (lc, lo[-300:]))
