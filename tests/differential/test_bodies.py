"""Large bodies stream through both ways with identical bytes (5 MiB each way)."""
import hashlib

import pytest

from harness import request_bytes, show
from upstreams import pattern_bytes

SIZE = 5 * 1024 * 1024
BODY = pattern_bytes(SIZE)
DIGEST = hashlib.sha256(BODY).hexdigest()


def chunked(data, step=100_000):
    out = [b"%x\r\n" % len(data[i:i + step]) + data[i:i + step] + b"\r\n" for i in range(0, len(data), step)]
    return b"".join(out) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_body_5mib(pair, framing):
    if framing == "chunked":
        raw = request_bytes("POST", "/films/up", headers=[("transfer-encoding", "chunked")]) + chunked(BODY)
    else:
        raw = request_bytes("POST", "/films/up", body=BODY)

    def run(p):
        r = p.raw(raw, timeout=30)
        up = r.upstream()
        return r.status, up["body_len"], up["body_sha256"]
    e, l = pair.both(run)
    assert e == (200, SIZE, DIGEST), show("Envoy (harness check)", e, None)
    assert l == e, show("(status, bytes upstream, sha256 upstream)", e, l)


def test_request_body_framing_upstream(pair):
    """How a chunked request body is framed towards the upstream."""
    raw = request_bytes("POST", "/films/framing", headers=[("transfer-encoding", "chunked")]) + chunked(b"abc" * 10)
    e, l = pair.both(lambda p: {k: v for k, v in p.raw(raw).upstream()["headers"].items()
                                if k in ("content-length", "transfer-encoding")})
    assert l == e, show("upstream framing headers", e, l)


def test_response_body_5mib_streamed(pair):
    def run(p):
        r = p.request("GET", "/films/down", headers=[("x-echo-body-bytes", str(SIZE))], timeout=30)
        return r.status, len(r.body), hashlib.sha256(r.body).hexdigest(), r.header("transfer-encoding")
    e, l = pair.both(run)
    assert e[:3] == (200, SIZE, DIGEST), show("Envoy (harness check)", e, None)
    assert l == e, show("(status, bytes, sha256, transfer-encoding)", e, l)


def test_upload_and_download_together(pair):
    raw = request_bytes("POST", "/films/both", headers=[("x-echo-body-bytes", str(SIZE))], body=BODY)

    def run(p):
        r = p.raw(raw, timeout=30)
        return r.status, hashlib.sha256(r.body).hexdigest()
    e, l = pair.both(run)
    assert l == e == (200, DIGEST), show("(status, downloaded sha256)", e, l)
