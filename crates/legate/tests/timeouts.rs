//! Request and stream timeouts against the real binary: slow clients that dribble a request
//! body, and an upstream that stalls in the middle of its response body.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Routes `/a` (timeout 0) with request_timeout 0.6 s, stream_idle_timeout 0.3 s and
/// max_stream_duration 1 s on the HCM.
fn timeouts_config(upstream: SocketAddr) -> String {
    two_cluster_config(upstream, upstream).replace("route: {cluster: a}", "route: {cluster: a, timeout: 0s}").replace(
        "stat_prefix: ingress_http\n",
        "stat_prefix: ingress_http\n          request_timeout: 0.6s\n          stream_idle_timeout: 0.3s\n          common_http_protocol_options: {max_stream_duration: 1s}\n",
    )
}

/// Sends a POST announcing `len` body bytes, then `pieces` one every `gap`; returns the response.
fn dribble(legate: &Legate, len: usize, pieces: usize, gap: Duration) -> Response {
    let s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(format!("POST /a/echo-body HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n").as_bytes()).unwrap();
    for _ in 0..pieces {
        thread::sleep(gap);
        if w.write_all(b"x").is_err() {
            break;
        }
    }
    read_response(&mut BufReader::new(s)).unwrap()
}

#[test]
fn request_timeout_answers_408_to_a_client_that_never_finishes_its_body() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&timeouts_config(a.addr), &[]);
    let start = Instant::now();
    // One byte every 0.1 s keeps the stream busy (no idle timeout) but never completes it.
    let resp = dribble(&legate, 100, 9, Duration::from_millis(100));
    let elapsed = start.elapsed();
    assert_eq!(resp.status, 408);
    assert_eq!(resp.text(), "request timeout");
    assert!(elapsed >= Duration::from_millis(550) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_timeout"), Some(1));
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_idle_timeout"), Some(0));
}

#[test]
fn a_body_dribbled_within_the_request_timeout_is_forwarded() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&timeouts_config(a.addr), &[]);
    // Gaps of 0.1 s stay under the idle timeout; the body is complete after 0.4 s.
    let resp = dribble(&legate, 4, 4, Duration::from_millis(100));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "xxxx");
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_timeout"), Some(0));
}

#[test]
fn idle_timeout_before_the_request_is_complete_answers_408() {
    let a = Upstream::start("alpha");
    let legate = Legate::start(&timeouts_config(a.addr), &[]);
    let resp = dribble(&legate, 10, 0, Duration::ZERO);
    assert_eq!(resp.status, 408);
    assert_eq!(resp.text(), "stream timeout");
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_idle_timeout"), Some(1));
}

/// An upstream that sends response headers and one chunk, then dribbles a chunk every 0.2 s
/// (never idle for the 0.3 s stream idle timeout) without ever ending the body.
fn endless_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut w = s;
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
                while w.write_all(b"1\r\n.\r\n").is_ok() {
                    thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    addr
}

/// Sends `request` and reads until the connection closes: what came back and how long it took.
fn read_until_closed(legate: &Legate, request: &[u8]) -> (String, Duration) {
    let start = Instant::now();
    let s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.try_clone().unwrap().write_all(request).unwrap();
    let mut received = Vec::new();
    let _ = BufReader::new(s).read_to_end(&mut received);
    (String::from_utf8_lossy(&received).into_owned(), start.elapsed())
}

#[test]
fn max_stream_duration_resets_a_streaming_response() {
    let legate = Legate::start(&timeouts_config(endless_upstream()), &[]);
    let (text, elapsed) = read_until_closed(&legate, b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("hello") && !text.ends_with("0\r\n\r\n"), "the body must be cut off: {text}");
    assert!(elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(2), "{elapsed:?}");
    legate.wait_stat("http.ingress_http.downstream_rq_max_duration_reached", 1);
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_idle_timeout"), Some(0));
}

#[test]
fn request_timeout_stops_once_the_response_has_started() {
    let legate = Legate::start(&timeouts_config(endless_upstream()), &[]);
    // The upstream answers at once; the request body never arrives: the duration limit ends it.
    let (text, elapsed) = read_until_closed(&legate, b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("hello"), "{text}");
    assert!(elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    legate.wait_stat("http.ingress_http.downstream_rq_max_duration_reached", 1);
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_timeout"), Some(0));
}

/// An HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn idle_http2_connections_are_drained_with_goaway() {
    let a = Upstream::start("alpha");
    let config = timeouts_config(a.addr).replace("max_stream_duration: 1s}", "max_stream_duration: 1s, idle_timeout: 0.4s}");
    let legate = Legate::start(&config, &[]);
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut block = Vec::new();
    for (k, v) in [(":method", "GET"), (":scheme", "http"), (":path", "/a"), (":authority", "x")] {
        block.extend_from_slice(&[0, k.len() as u8]);
        block.extend_from_slice(k.as_bytes());
        block.push(v.len() as u8);
        block.extend_from_slice(v.as_bytes());
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(4, 0, 0, &[]));
    out.extend(h2_frame(1, 5, 1, &block));
    s.write_all(&out).unwrap();
    let mut answered = None;
    let mut goaways = Vec::new();
    loop {
        let mut head = [0u8; 9];
        if s.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).unwrap();
        match (head[3], head[4] & 1) {
            (1, _) => answered = Some(Instant::now()),
            (4, 0) => s.write_all(&h2_frame(4, 1, 0, &[])).unwrap(),
            (6, 0) => s.write_all(&h2_frame(6, 1, 0, &payload)).unwrap(),
            (7, _) => goaways.push((u32::from_be_bytes(payload[..4].try_into().unwrap()), answered.unwrap().elapsed())),
            _ => {}
        }
    }
    // The drain starts after 0.4 s without streams; the last GOAWAY names stream 1.
    assert_eq!(goaways.first().map(|g| g.0), Some(0x7fff_ffff), "{goaways:?}");
    assert_eq!(goaways.last().map(|g| g.0), Some(1), "{goaways:?}");
    let idle = goaways[0].1;
    assert!(idle >= Duration::from_millis(350) && idle < Duration::from_millis(1500), "{idle:?}");
    legate.wait_stat("http.ingress_http.downstream_cx_idle_timeout", 1);
}

/// An upstream that answers its first request at once and never answers any later one.
fn answers_once_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let answered = answered.clone();
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                loop {
                    let mut head = String::new();
                    while !head.ends_with("\r\n\r\n") {
                        if r.read_line(&mut head).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    if answered.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        // Stalls, holding the connection, until Legate gives up on it.
                        let _ = r.read(&mut [0; 1]);
                        return;
                    }
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                }
            });
        }
    });
    addr
}

#[test]
fn a_keep_alive_connections_later_request_times_out_at_its_own_deadline() {
    // Route /b has a 0.5 s timeout. The first request's timer is kept for the second, still set
    // for the first's deadline, which comes 0.3 s into the second's wait: not its timeout.
    let a = Upstream::start("alpha");
    let legate = Legate::start(&two_cluster_config(a.addr, answers_once_upstream()), &[]);
    let (mut w, mut r) = keep_alive(legate.listener);
    w.write_all(b"GET /b/1 HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let first = read_response(&mut r).unwrap();
    assert_eq!((first.status, first.text()), (200, "ok".to_string()));
    thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    w.write_all(b"GET /b/2 HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let second = read_response(&mut r).unwrap();
    let elapsed = start.elapsed();
    assert_eq!((second.status, second.text()), (504, "upstream request timeout".to_string()));
    assert!(elapsed >= Duration::from_millis(480) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(legate.stat("cluster.b.upstream_rq_timeout"), Some(1));
}
