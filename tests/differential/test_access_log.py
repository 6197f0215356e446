"""HCM access logs: the same requests through Envoy 1.40 and Legate, each writing Envoy's default
format, a custom text format and a JSON format (with filters) to its own files; the lines are
compared after masking what differs run to run (start time, durations, request id, ports).
"""
import json
import os
import re
import time

import pytest

from harness import load_template, request_bytes, show

LOG_DIR = "/tmp"
FLUSH_ARGS = ("--file-flush-interval-msec", "50")

CUSTOM = ("%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% "
          "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_HOST% "
          "%UPSTREAM_CLUSTER% %ROUTE_NAME% [%UPSTREAM_TRANSPORT_FAILURE_REASON%] %REQ(:AUTHORITY)% "
          "%REQ(USER-AGENT):5% %REQ(X-FORWARDED-FOR)% %RESP(X-ROUTE-RESP)% %RESP(CONTENT-TYPE)% "
          "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% "
          "%HOSTNAME% %START_TIME(%Y)%\\n")

ACCESS_LOG = f"""          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {LOG_DIR}/diff-al-{{admin_port}}-default.log
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {LOG_DIR}/diff-al-{{admin_port}}-custom.log
              log_format: {{text_format_source: {{inline_string: "{CUSTOM}"}}}}
          - name: envoy.access_loggers.file
            filter:
              or_filter:
                filters:
                - status_code_filter: {{comparison: {{op: GE, value: {{default_value: 500, runtime_key: al.min}}}}}}
                - and_filter:
                    filters:
                    - not_health_check_filter: {{}}
                    - response_flag_filter: {{flags: [NR]}}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {LOG_DIR}/diff-al-{{admin_port}}-json.log
              json_format:
                code: "%RESPONSE_CODE%"
                flags: "%RESPONSE_FLAGS%"
                sent: "%BYTES_SENT%"
                received: "%BYTES_RECEIVED%"
                duration: "%DURATION%"
                upstream: {{host: "%UPSTREAM_HOST%", cluster: "%UPSTREAM_CLUSTER%"}}
                missing: "%REQ(X-NOT-THERE)%"
                mixed: "code=%RESPONSE_CODE% ua=%REQ(USER-AGENT)% none=%REQ(X-NOT-THERE)%"
                start: "%START_TIME%"
                literal: 7
"""

# (id, method, path, headers, body)
REQUESTS = [
    ("via-upstream", "GET", "/films/1", [("user-agent", "diff-client/1.0")], b""),
    ("request-body", "POST", "/films/upload", [], b"hello world"),
    ("no-route", "GET", "/nowhere", [], b""),
    ("connect-refused", "GET", "/closed", [], b""),
    ("route-timeout", "GET", "/slow", [], b""),
    ("no-healthy-upstream", "GET", "/empty", [], b""),
    ("cluster-not-found", "GET", "/by-header", [("x-cluster", "nope")], b""),
    ("upstream-reset", "GET", "/films/reset", [("x-echo-reset", "1")], b""),
    ("direct-response", "GET", "/direct", [], b""),
    ("redirect", "GET", "/old/page", [], b""),
    ("path-and-host-rewrite", "GET", "/v1/item?x=1", [], b""),
    ("redirect-with-query", "GET", "/old/q?a=1", [], b""),
]
IDS = [r[0] for r in REQUESTS]

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_TIMES = re.compile(r'^(\[TIME\] "[^"]*" \d+ \S+ \d+ \d+) \d+ (?:\d+|-) ')


def log_path(proxy, kind):
    return f"{LOG_DIR}/diff-al-{proxy.admin_port}-{kind}.log"


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        lines = read_lines(path)
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.02)


def wait_logged(p, base, n):
    """Waits until `p` has written `n` lines past `base` to its unfiltered logs (the default and
    custom formats, which each proxy flushes on its own)."""
    for kind in ("default", "custom"):
        wait_lines(log_path(p, kind), base[(p.kind, kind)] + n)


def mask(line, proxy):
    line = TIME.sub("TIME", line)
    line = UUID.sub("UUID", line)
    line = line.replace(f":{proxy.listener_port}", ":LISTENER")
    line = re.sub(r"127\.0\.0\.1:\d{4,5} 127\.0\.0\.1 ", "127.0.0.1:PORT 127.0.0.1 ", line)
    return line


def mask_default(line, proxy):
    line = mask(line, proxy)
    # %DURATION% and %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% (a number or `-` on both sides).
    return DEFAULT_TIMES.sub(lambda m: m.group(1) + " D " + ("-" if m.group(0).rstrip().endswith(" -") else "N") + " ", line)


@pytest.fixture(scope="module")
def logs(make_pair, values):
    """Runs every request through both proxies, one at a time, and returns their log lines."""
    template = load_template("front_proxy.yaml").replace(
        "          use_remote_address: true\n", "          use_remote_address: true\n" + ACCESS_LOG)
    pair = make_pair(template, values, FLUSH_ARGS)
    # The proxies opened (created) their files at startup; anything already there is skipped.
    base = {(p.kind, kind): len(read_lines(log_path(p, kind))) for p in pair for kind in ("default", "custom", "json")}
    for i, (_, method, path, headers, body) in enumerate(REQUESTS):
        for p in pair:
            p.request(method, path, headers=headers, body=body)
            wait_logged(p, base, i + 1)
    # The filtered JSON log may trail the others by one flush.
    time.sleep(0.3)
    out = {}
    for p in pair:
        out[p.kind] = {kind: read_lines(log_path(p, kind))[base[(p.kind, kind)]:] for kind in ("default", "custom", "json")}
        out[p.kind]["proxy"] = p
        for kind in ("default", "custom", "json"):
            os.unlink(log_path(p, kind))
    return out


def test_every_request_is_logged(logs):
    for kind in ("default", "custom"):
        assert len(logs["envoy"][kind]) == len(REQUESTS), show(kind, logs["envoy"][kind], None)
        assert len(logs["legate"][kind]) == len(REQUESTS), show(kind, logs["envoy"][kind], logs["legate"][kind])


@pytest.mark.parametrize("index", range(len(REQUESTS)), ids=IDS)
def test_default_format_line(logs, index):
    e = mask_default(logs["envoy"]["default"][index], logs["envoy"]["proxy"])
    l = mask_default(logs["legate"]["default"][index], logs["legate"]["proxy"])
    assert l == e, show("default format", e, l)


@pytest.mark.parametrize("index", range(len(REQUESTS)), ids=IDS)
def test_custom_format_line(logs, index):
    e = mask(logs["envoy"]["custom"][index], logs["envoy"]["proxy"])
    l = mask(logs["legate"]["custom"][index], logs["legate"]["proxy"])
    assert l == e, show("custom format", e, l)


def test_filtered_json_lines(logs):
    def norm(lines):
        out = []
        for line in lines:
            obj = json.loads(line)
            assert isinstance(obj["duration"], int)
            obj["duration"] = "D"
            assert TIME.fullmatch(obj["start"])
            obj["start"] = "TIME"
            out.append(obj)
        return out
    e, l = norm(logs["envoy"]["json"]), norm(logs["legate"]["json"])
    assert len(e) >= 5, show("Envoy itself (harness check)", e, None)
    assert l == e, show("json lines", e, l)


def test_json_text_is_envoys(logs):
    """Key order, separators and number/null typing are Envoy's, byte for byte once masked."""
    def masked(line):
        line = TIME.sub("TIME", line)
        return re.sub(r'"duration":\d+', '"duration":D', line)
    e = [masked(x) for x in logs["envoy"]["json"]]
    l = [masked(x) for x in logs["legate"]["json"]]
    assert l == e, show("json text", e, l)


TCP_FORMAT = ("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS% %PROTOCOL% "
              "%RESPONSE_CODE% %REQ(:METHOD)% %RESPONSE_CODE_DETAILS% [%UPSTREAM_TRANSPORT_FAILURE_REASON%] "
              "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %ROUTE_NAME%\\n")

TCP_TEMPLATE = f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: {{target}}
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {LOG_DIR}/diff-al-{{admin_port}}-default.log
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {LOG_DIR}/diff-al-{{admin_port}}-custom.log
              log_format: {{text_format_source: {{inline_string: "{TCP_FORMAT}"}}}}
  clusters:
  - name: films
    connect_timeout: 1s
    load_assignment:
      cluster_name: films
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {{films_port}}}}}}}}}}]}}]
  - name: closed
    connect_timeout: 1s
    load_assignment:
      cluster_name: closed
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {{closed_port}}}}}}}}}}]}}]
  - name: empty
    connect_timeout: 1s
    load_assignment: {{cluster_name: empty, endpoints: []}}
"""


@pytest.mark.parametrize("target", ["films", "closed", "empty", "nope"])
def test_tcp_proxy_session_line(make_pair, values, target):
    """One TCP session through tcp_proxy (an HTTP request to the echo server, a refused
    connect, no host, no such cluster): the default and custom lines match once masked."""
    pair = make_pair(TCP_TEMPLATE, dict(values, target=target), FLUSH_ARGS)
    lines = {}
    for p in pair:
        # The harness's readiness probe (a connect and close) is a session too: its lines come
        # first, however late the proxy writes them.
        base = {kind: len(wait_lines(log_path(p, kind), 1)) for kind in ("default", "custom")}
        with p.connect() as c:
            c.send(b"GET /films/tcp HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n\r\n")
            c.read_to_eof()
        got = {kind: wait_lines(log_path(p, kind), base[kind] + 1)[base[kind]:] for kind in ("default", "custom")}
        lines[p.kind] = {"default": [mask_default(x, p) for x in got["default"]],
                         "custom": [mask(x, p) for x in got["custom"]]}
        for kind in ("default", "custom"):
            os.unlink(log_path(p, kind))
    assert len(lines["envoy"]["custom"]) == 1, show("Envoy itself (harness check)", lines["envoy"], None)
    if target == "films":
        assert re.match(r"127\.0\.0\.1:\d+ films [1-9]\d* [1-9]\d* - ", lines["envoy"]["custom"][0]), lines["envoy"]
    assert lines["legate"] == lines["envoy"], show(f"tcp_proxy to {target}", lines["envoy"], lines["legate"])


# (id, raw request) refused before routing; Envoy 1.40 logs each one.
REJECTED = [
    ("http10", b"GET /films/1 HTTP/1.0\r\nhost: example.com\r\n\r\n"),
    ("missing-host", b"GET /films/1 HTTP/1.1\r\nuser-agent: x\r\n\r\n"),
    ("transfer-encoding-gzip", b"POST /films/1 HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("length-and-chunked", b"POST /films/1 HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("headers-too-large", b"GET /films/1 HTTP/1.1\r\nhost: a\r\nx-big: " + b"a" * 70000 + b"\r\n\r\n"),
    ("unknown-method", b"FOO /films/1 HTTP/1.1\r\nhost: a\r\n\r\n"),
    ("invalid-host", b"GET /films/1 HTTP/1.1\r\nhost: a{b\r\n\r\n"),
    ("upgrade-refused", b"GET /films/1 HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"),
    ("fragment", b"GET /films/1?q=1#frag HTTP/1.1\r\nhost: a\r\nuser-agent: ua\r\nx-request-id: rid\r\n\r\n"),
]


@pytest.fixture(scope="module")
def rejected_logs(make_pair, values):
    template = load_template("front_proxy.yaml").replace(
        "          use_remote_address: true\n", "          use_remote_address: true\n" + ACCESS_LOG)
    pair = make_pair(template, values, FLUSH_ARGS)
    base = {(p.kind, kind): len(read_lines(log_path(p, kind))) for p in pair for kind in ("default", "custom")}
    for i, (_, raw) in enumerate(REJECTED):
        for p in pair:
            p.raw(raw)
            wait_logged(p, base, i + 1)
    out = {}
    for p in pair:
        out[p.kind] = {kind: read_lines(log_path(p, kind))[base[(p.kind, kind)]:] for kind in ("default", "custom")}
        out[p.kind]["proxy"] = p
    return out


@pytest.mark.parametrize("index", range(len(REJECTED)), ids=[r[0] for r in REJECTED])
def test_rejected_request_lines(rejected_logs, index):
    e, l = rejected_logs["envoy"], rejected_logs["legate"]
    assert len(e["default"]) == len(REJECTED), show("Envoy itself (harness check)", e["default"], None)
    assert len(l["default"]) == len(REJECTED), show("lines", e["default"], l["default"])
    for kind, masker in (("default", mask_default), ("custom", mask)):
        el, ll = masker(e[kind][index], e["proxy"]), masker(l[kind][index], l["proxy"])
        assert ll == el, show(f"{kind} format", el, ll)


def test_client_disconnect_while_waiting_for_the_upstream(make_pair, values):
    """The client goes away while the upstream is still working: Envoy logs response code 0,
    flag DC, details downstream_remote_disconnect, and resets the upstream request."""
    template = load_template("front_proxy.yaml").replace(
        "          use_remote_address: true\n", "          use_remote_address: true\n" + ACCESS_LOG)
    pair = make_pair(template, values, FLUSH_ARGS)

    def run(p):
        path = log_path(p, "custom")
        base = len(read_lines(path))
        with p.connect() as c:
            c.send(request_bytes("GET", "/films/dc", headers=[("x-echo-delay-ms", "1500")], close=False))
            time.sleep(0.3)
        wait_lines(path, base + 1)
        line = read_lines(path)[base]
        return line.split(" ")[4:7]
    e, l = pair.both(run)
    assert e == ["0", "DC", "downstream_remote_disconnect"], show("Envoy (harness check)", e, None)
    assert l == e, show("code, flags, details of a request whose client went away", e, l)
