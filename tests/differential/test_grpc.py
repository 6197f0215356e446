"""gRPC through Envoy and Legate with a real grpcio server and client (generic handlers on raw
bytes, so no generated code): unary, server streaming (10k messages), client streaming, bidi,
status and trailing metadata pass-through, UNAVAILABLE for an unreachable upstream, and one
multiplexed upstream connection for many calls."""
import concurrent.futures

import grpc
import pytest

import harness
from harness import show

SERVICE = "legate.test.Echo"


def _unary(request, context):
    if request == b"fail":
        context.set_trailing_metadata((("x-detail", "bad input"),))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request said fail")
    context.set_trailing_metadata((("x-served-by", "grpcio"),))
    return b"echo:" + request


def _server_stream(request, context):
    n = int(request.decode())
    for i in range(n):
        yield b"m%d" % i


def _client_stream(request_iterator, context):
    return b"%d" % sum(len(r) for r in request_iterator)


def _bidi(request_iterator, context):
    for r in request_iterator:
        yield r.upper()


@pytest.fixture(scope="module")
def grpc_server():
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


@pytest.fixture(scope="module")
def gpair(make_pair, values, grpc_server):
    return make_pair(harness.load_template("grpc.yaml"), dict(values, grpc_port=grpc_server))


def call(proxy, kind, arg, timeout=20, service=SERVICE):
    """Runs one call through the proxy; returns (status code name, details, result, trailers)."""
    with grpc.insecure_channel(f"127.0.0.1:{proxy.listener_port}") as ch:
        method = f"/{service}/{kind}"
        stub = {"Unary": ch.unary_unary, "ServerStream": ch.unary_stream,
                "ClientStream": ch.stream_unary, "Bidi": ch.stream_stream}[kind](method)
        try:
            if kind == "Unary":
                result, c = stub.with_call(arg, timeout=timeout)
                return "OK", "", result, dict(c.trailing_metadata() or ())
            if kind == "ClientStream":
                result, c = stub.with_call(iter(arg), timeout=timeout)
                return "OK", "", result, {}
            it = stub(arg if kind == "ServerStream" else iter(arg), timeout=timeout)
            items = list(it)
            return "OK", "", (len(items), items[:2], items[-1:]), {}
        except grpc.RpcError as e:
            # date and the service time vary between the two proxies' answers: compare presence.
            volatile = ("date", "x-envoy-upstream-service-time")
            trailers = {k: ("<present>" if k in volatile else v)
                        for k, v in (e.trailing_metadata() or ()) if not k.startswith("grpc-")}
            return e.code().name, e.details(), None, trailers


def test_unary(gpair):
    e, l = gpair.both(lambda p: call(p, "Unary", b"hi"))
    assert e[:3] == ("OK", "", b"echo:hi"), show("Envoy (harness check)", e, None)
    assert l == e, show("unary call", e, l)


def test_error_status_and_trailers_pass_through(gpair):
    e, l = gpair.both(lambda p: call(p, "Unary", b"fail"))
    assert e[0] == "INVALID_ARGUMENT", show("Envoy (harness check)", e, None)
    assert l == e, show("server error status", e, l)


def test_server_streaming_10k_messages(gpair):
    e, l = gpair.both(lambda p: call(p, "ServerStream", b"10000"))
    assert e[2][0] == 10000, show("Envoy (harness check)", e, None)
    assert l == e, show("server streaming", e, l)


def test_client_streaming(gpair):
    e, l = gpair.both(lambda p: call(p, "ClientStream", [b"ab", b"cde", b"f" * 1000]))
    assert l == e == ("OK", "", b"1005", {}), show("client streaming", e, l)


def test_bidi_streaming(gpair):
    msgs = [b"one", b"two", b"three"] * 100
    e, l = gpair.both(lambda p: call(p, "Bidi", msgs))
    assert e[2][0] == 300, show("Envoy (harness check)", e, None)
    assert l == e, show("bidi streaming", e, l)


def test_unreachable_upstream_is_unavailable(gpair):
    e, l = gpair.both(lambda p: call(p, "Unary", b"x", service="dead.Service")[:2])
    assert e[0] == "UNAVAILABLE", show("Envoy (harness check)", e, None)
    assert l == e, show("call to a refused upstream", e, l)


def test_non_grpc_request_does_not_match_grpc_routes(gpair):
    e, l = gpair.both(lambda p: p.get(f"/{SERVICE}/Unary").status)
    assert l == e == 404, show("plain HTTP/1 GET on a grpc-only route", e, l)


def test_calls_share_one_multiplexed_upstream_connection(gpair):
    def run(p):
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda i: call(p, "Unary", b"%d" % i)[0], range(40)))
        s = p.stats()
        return results.count("OK"), s.get("cluster.grpc_backend.upstream_cx_http2_total")
    e, l = gpair.both(run)
    assert e == (40, 1), show("Envoy (harness check)", e, None)
    assert l == e, show("(calls OK, upstream HTTP/2 connections)", e, l)


def test_a_cancelled_stream_is_counted_as_a_reset(gpair):
    """The client cancels a server stream after a few messages (RST_STREAM CANCEL): the proxy
    resets the upstream stream and counts the reset both ways."""
    def cancel(p):
        with grpc.insecure_channel(f"127.0.0.1:{p.listener_port}") as ch:
            stream = ch.unary_stream(f"/{SERVICE}/ServerStream")(b"1000000", timeout=20)
            got = [next(stream) for _ in range(10)]
            stream.cancel()
            assert got[-1] == b"m9"
    watched = ("http.ingress_grpc.", "cluster.grpc_backend.")
    busy = ("http.ingress_grpc.downstream_cx_active", "http.ingress_grpc.downstream_rq_active",
            "cluster.grpc_backend.upstream_rq_active")
    # Legate has no HTTP/2 codec stats (cluster.<name>.http2.*; README, known differences).
    e, l = gpair.both(lambda p: {k: v for k, v in harness.counted(p, cancel, watched, busy).items()
                                 if ".http2." not in k})
    assert e.get("http.ingress_grpc.downstream_rq_rx_reset") == 1, show("Envoy (harness check)", e, None)
    assert l == e, show("cancelled server stream", e, l)
