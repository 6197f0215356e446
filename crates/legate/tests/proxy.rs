//! End-to-end tests of the `legate` binary: routing, local replies, HTTP/1 strictness, streaming,
//! connection reuse and stats, against real upstream sockets on loopback.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

#[test]
fn routes_by_prefix_to_two_clusters_and_counts_stats() {
    let a = Upstream::start("alpha");
    let b = Upstream::start("beta");
    let legate = Legate::start(&two_cluster_config(a.addr, b.addr), &[]);
    let ra = request(legate.listener, "GET /a/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(ra.status, 200);
    assert_eq!(ra.header("x-upstream"), Some("alpha"));
    assert!(ra.header("x-envoy-upstream-service-time").is_some());
    assert!(ra.header("server").is_some());
    let rb = request(legate.listener, "GET /b/2?q=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(rb.header("x-upstream"), Some("beta"));
    assert_eq!(rb.text(), "beta GET /b/2?q=1 HTTP/1.1");
    let nr = request(legate.listener, "GET /zzz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(nr.status, 404);
    assert!(nr.body.is_empty());
    assert_eq!(legate.stat("cluster.a.upstream_rq_total"), Some(1));
    assert_eq!(legate.stat("cluster.b.upstream_rq_2xx"), Some(1));
    assert_eq!(legate.stat("http.ingress_http.no_route"), Some(1));
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_total"), Some(3));
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_4xx"), Some(1));
}

#[test]
fn upstream_receives_forwarding_headers_and_timeout_hint() {
    let a = Upstream::start("alpha");
    let b = Upstream::start("beta");
    let legate = Legate::start(&two_cluster_config(a.addr, b.addr), &[]);
    request(legate.listener, "GET /b HTTP/1.1\r\nhost: x\r\nx-envoy-retry-on: 5xx\r\nconnection: close\r\n\r\n");
    let head = b.requests.lock().unwrap().last().unwrap().to_ascii_lowercase();
    assert!(head.contains("x-forwarded-proto: http"), "{head}");
    assert!(head.contains("x-envoy-expected-rq-timeout-ms: 500"), "{head}");
    assert!(head.contains("x-request-id: "), "{head}");
    assert!(!head.contains("x-envoy-retry-on"), "external x-envoy headers are stripped: {head}");
    assert!(head.contains("host: x"), "{head}");
}

#[test]
fn keep_alive_requests_reuse_one_upstream_connection() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &["--concurrency", "1"]);
    let (mut w, mut r) = keep_alive(legate.listener);
    for i in 0..20 {
        w.write_all(format!("GET /a/{i} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
        let resp = read_response(&mut r).unwrap();
        assert_eq!(resp.status, 200);
    }
    assert_eq!(a.connections.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(legate.stat("cluster.a.upstream_cx_total"), Some(1));
}

#[test]
fn unreachable_upstream_gets_envoy_503_body() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let legate = Legate::start(&two_cluster_config(closed, closed), &[]);
    let resp = request(legate.listener, "GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(resp.status, 503);
    assert!(
        resp.text().starts_with("upstream connect error or disconnect/reset before headers. reset reason: "),
        "{}",
        resp.text()
    );
    assert_eq!(legate.stat("cluster.a.upstream_cx_connect_fail"), Some(1));
}

#[test]
fn slow_upstream_times_out_with_504() {
    let addr = silent_upstream();
    let legate = Legate::start(&two_cluster_config(addr, addr), &[]);
    let resp = request(legate.listener, "GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(resp.status, 504);
    assert_eq!(resp.text(), "upstream request timeout");
    assert_eq!(legate.stat("cluster.b.upstream_rq_timeout"), Some(1));
}

#[test]
fn malformed_requests_get_envoy_statuses_and_the_listener_keeps_serving() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &[]);
    let cases = [
        ("GET /a HTTP/1.0\r\nhost: x\r\n\r\n", 426),
        ("GET /a HTTP/1.1\r\n\r\n", 400),
        ("POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", 400),
        ("POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("GET /a HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n", 400),
        ("BLAH\r\n\r\n", 400),
    ];
    for (raw, want) in cases {
        let resp = request(legate.listener, raw);
        assert_eq!(resp.status, want, "request {raw:?}");
    }
    let big = format!("GET /a HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "v".repeat(70 * 1024));
    assert_eq!(request(legate.listener, &big).status, 431);
    let ok = request(legate.listener, "GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(ok.status, 200);
}

#[test]
fn large_bodies_stream_both_ways_intact() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &[]);
    let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /a/echo-body HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n")
        .unwrap();
    for chunk in body.chunks(64 * 1024) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
        s.write_all(chunk).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let resp = read_response(&mut BufReader::new(&raw[..])).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), body.len());
    assert!(resp.body == body, "echoed body differs");
}

#[test]
fn expect_100_continue_is_answered_and_not_forwarded() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &[]);
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /a/echo-body HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 100 Continue"), "{:?}", String::from_utf8_lossy(&buf));
    s.write_all(b"hello").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("200 OK") && text.ends_with("hello"), "{text}");
    let head = a.requests.lock().unwrap().last().unwrap().to_ascii_lowercase();
    assert!(!head.contains("expect:"), "{head}");
}

/// Content-Length plus chunked gets Envoy's 400 and a close: nothing reaches the upstream, and
/// nothing can be smuggled behind it.
#[test]
fn content_length_with_chunked_is_refused() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &[]);
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /a/echo-body HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "one response, then close: {text}");
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n") && text.ends_with("Bad Request"), "{text}");
    assert!(a.requests.lock().unwrap().is_empty(), "nothing forwarded");
}

/// A good request, then a refused one on the same keep-alive connection: the first is answered,
/// then Envoy's 501 closes the connection.
#[test]
fn a_refused_request_after_a_good_one_on_a_keep_alive_connection() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, a.addr), &[]);
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /a/first HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut raw = vec![0u8; 4096];
    let n = s.read(&mut raw).unwrap();
    raw.truncate(n);
    s.write_all(b"POST /a/second HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n").unwrap();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> = text.match_indices("HTTP/1.1 ").map(|(i, _)| &text[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "501"], "{text}");
    assert!(text.ends_with("Not Implemented"), "{text}");
    assert_eq!(a.requests.lock().unwrap().len(), 1);
}

fn timeouts_config(addr: std::net::SocketAddr) -> String {
    two_cluster_config(addr, addr).replace("timeout: 0.5s", "timeout: 0s").replace(
        "stat_prefix: ingress_http\n",
        "stat_prefix: ingress_http\n          stream_idle_timeout: 0.3s\n          common_http_protocol_options: {idle_timeout: 0.4s}\n",
    )
}

#[test]
fn stream_idle_timeout_answers_504_when_the_upstream_stalls() {
    let addr = silent_upstream();
    let legate = Legate::start(&timeouts_config(addr), &[]);
    let start = std::time::Instant::now();
    let resp = request(legate.listener, "GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(resp.status, 504);
    assert_eq!(resp.text(), "stream timeout");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_idle_timeout"), Some(1));
}

#[test]
fn idle_connections_are_closed_or_drained_after_idle_timeout() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&timeouts_config(a.addr), &[]);
    // Without any request: closed when the idle timeout (0.4 s) expires.
    let mut silent = TcpStream::connect(legate.listener).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = std::time::Instant::now();
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300), "closed too early: {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(4), "not closed: {:?}", start.elapsed());
    // After a request, as in Envoy: drained; the next response closes the connection.
    let (mut w, mut r) = keep_alive(legate.listener);
    w.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let first = read_response(&mut r).unwrap();
    assert_eq!((first.status, first.header("connection")), (200, None));
    std::thread::sleep(Duration::from_millis(700));
    w.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let second = read_response(&mut r).unwrap();
    assert_eq!((second.status, second.header("connection")), (200, Some("close")));
    rest.clear();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(legate.stat("http.ingress_http.downstream_cx_idle_timeout"), Some(2));
}
