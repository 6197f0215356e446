use super::*;

/// Feeds `input` in pieces of `step` bytes; returns what the codec saw and the first rejection.
/// With `in_place`, each piece first goes through [`RequestScanner::accept_in_place`] and only
/// the rest through `feed`, as [`RequestGuard`] reads.
fn scan_with(input: &[u8], step: usize, in_place: bool) -> (Vec<u8>, Option<u16>) {
    let mut scanner = RequestScanner::new(64 * 1024);
    let mut out = BytesMut::new();
    let mut refused = None;
    for piece in input.chunks(step) {
        let kept = if in_place { scanner.accept_in_place(piece) } else { 0 };
        out.extend_from_slice(&piece[..kept]);
        if let Some(r) = scanner.feed(&piece[kept..], &mut out) {
            refused.get_or_insert(r.status.as_u16());
        }
    }
    scanner.finish(&mut out);
    (out.to_vec(), refused)
}

/// [`scan_with`] through `feed` alone.
fn scan(input: &[u8], step: usize) -> (Vec<u8>, Option<u16>) {
    scan_with(input, step, false)
}

/// Every read size, through `feed` alone and through `accept_in_place` first.
fn every_split(input: &[u8]) -> impl Iterator<Item = (Vec<u8>, Option<u16>)> + '_ {
    (1..=input.len()).flat_map(move |step| [scan_with(input, step, false), scan_with(input, step, true)])
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n";

#[test]
fn valid_requests_pass_unchanged_whatever_the_read_sizes() {
    let chunked = b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\n";
    let length = b"PUT /l HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n\r\n\r\n\r";
    let input = [GET, &chunked[..], &length[..], GET].concat();
    for (seen, refused) in every_split(&input) {
        assert_eq!(refused, None);
        assert_eq!(seen, input);
    }
}

#[test]
fn a_refused_head_is_withheld_after_the_valid_ones() {
    let bad = b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nab";
    let input = [GET, &bad[..], GET].concat();
    for (seen, refused) in every_split(&input) {
        assert_eq!(refused, Some(400));
        assert_eq!(seen, GET);
    }
}

#[test]
fn whole_heads_and_their_bodies_stay_in_place() {
    let length = b"PUT /l HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc";
    let mut scanner = RequestScanner::new(64 * 1024);
    let input = [GET, &length[..], GET].concat();
    assert_eq!(scanner.accept_in_place(&input), input.len());
    // A partial head stops it: feed collects it.
    let mut scanner = RequestScanner::new(64 * 1024);
    assert_eq!(scanner.accept_in_place(&[GET, &GET[..10]].concat()), GET.len());
    let mut out = BytesMut::new();
    assert_eq!(scanner.feed(&GET[..10], &mut out).map(|r| r.status), None);
    assert!(out.is_empty());
    // So does a refused head: feed refuses it.
    let bad = b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nab";
    let mut scanner = RequestScanner::new(64 * 1024);
    assert_eq!(scanner.accept_in_place(&[GET, &bad[..]].concat()), GET.len());
    assert_eq!(scanner.feed(bad, &mut out).map(|r| r.status.as_u16()), Some(400));
}

#[test]
fn envoys_framing_rules() {
    let cases: [(&[u8], u16); 5] = [
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n", 400),
        (b"BLAH\r\n\r\n", 400),
    ];
    for (input, status) in cases {
        for in_place in [false, true] {
            assert_eq!(scan_with(input, input.len(), in_place), (Vec::new(), Some(status)), "{}", String::from_utf8_lossy(input));
        }
    }
}

#[test]
fn methods_envoys_http1_codec_does_not_know_are_refused() {
    for method in ["FOO", "get", "Get", "GETX", "M-SEARCH", "QUERY", "PRI", "X-CUSTOM"] {
        for version in ["HTTP/1.1", "HTTP/1.0"] {
            let input = format!("{method} / {version}\r\nhost: x\r\n\r\n");
            for (seen, refused) in every_split(input.as_bytes()) {
                assert_eq!((seen.as_slice(), refused), (&b""[..], Some(400)), "{input}");
            }
        }
    }
    for method in ["GET", "MSEARCH", "PURGE", "PROPFIND", "SOURCE", "LINK"] {
        let input = format!("{method} / HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(scan(input.as_bytes(), 5), (input.clone().into_bytes(), None));
    }
}

#[test]
fn a_target_with_a_fragment_is_refused_with_its_request_kept_for_the_log() {
    let input = b"POST /a?q=1#f HTTP/1.1\r\nhost: x\r\nx-request-id: r\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nab";
    for (seen, refused) in every_split(input) {
        assert_eq!((seen.as_slice(), refused), (&b""[..], Some(400)));
    }
    let mut scanner = RequestScanner::new(4096);
    let rejection = scanner.feed(input, &mut BytesMut::new()).expect("refused");
    assert_eq!((rejection, rejection.is_codec_error()), (Rejection::PATH_WITH_FRAGMENT, false));
    let stand_in = scanner.stand_in(rejection);
    assert_eq!(
        String::from_utf8(stand_in.clone()).unwrap(),
        format!("{REFUSED_METHOD} /4 HTTP/1.1\r\n{REFUSED_REQUEST}: POST /a?q=1#f\r\nhost: x\r\nx-request-id: r\r\n\r\n")
    );
    let req = http::Request::builder()
        .method(REFUSED_METHOD)
        .uri("/4")
        .header(REFUSED_REQUEST, "POST /a?q=1#f")
        .body(())
        .unwrap();
    assert_eq!(refused(&req), Some(Rejection::PATH_WITH_FRAGMENT));
    assert_eq!(refused_request(&req), Some((http::Method::POST, "/a?q=1#f")));
    // HTTP/1.0 goes to the codec, and the connection manager answers 426 first, as Envoy does.
    let http10 = b"GET /a#f HTTP/1.0\r\nhost: x\r\n\r\n";
    assert_eq!(scan(http10, 3), (http10.to_vec(), None));
}

#[test]
fn a_codec_error_stand_in_names_the_rejection_only() {
    let mut scanner = RequestScanner::new(4096);
    let rejection = scanner.feed(b"FOO /a HTTP/1.1\r\nhost: x\r\nuser-agent: u\r\n\r\n", &mut BytesMut::new()).expect("refused");
    assert_eq!(scanner.stand_in(rejection), format!("{REFUSED_METHOD} /0 HTTP/1.1\r\nhost: refused\r\n\r\n").into_bytes());
}

#[test]
fn request_targets_and_hosts_envoys_http1_codec_refuses() {
    let refused = [
        "GET films HTTP/1.1\r\nhost: x",
        "GET * HTTP/1.1\r\nhost: x",
        "GET x:80 HTTP/1.1\r\nhost: x",
        "GET ftp://x/a HTTP/1.1\r\nhost: x",
        "CONNECT x HTTP/1.1\r\nhost: x",
        "CONNECT :443 HTTP/1.1\r\nhost: x",
        "CONNECT x:99999 HTTP/1.1\r\nhost: x",
        "CONNECT x{y:443 HTTP/1.1\r\nhost: x",
        "GET / HTTP/1.1\r\nhost: x{y",
        "GET / HTTP/1.1\r\nhost: x/y",
        "GET / HTTP/1.1\r\nhost: x\u{e9}",
        "GET films HTTP/1.0\r\nhost: x",
    ];
    for head in refused {
        let input = format!("{head}\r\n\r\n").into_bytes();
        assert_eq!(scan(&input, input.len()), (Vec::new(), Some(400)), "{head}");
    }
    let accepted = [
        "OPTIONS * HTTP/1.1\r\nhost: x",
        "GET HTTP://x/a HTTP/1.1\r\nhost: x",
        "GET https://[::1]:8443/a HTTP/1.1\r\nhost: x",
        "GET / HTTP/1.1\r\nhost: [::1]:80",
        "GET / HTTP/1.1\r\nhost: a_b%20c@d",
        "GET / HTTP/1.1\r\nhost: ",
    ];
    for head in accepted {
        let input = format!("{head}\r\n\r\n").into_bytes();
        assert_eq!(scan(&input, input.len()), (input.clone(), None), "{head}");
    }
    // CONNECT's authority form leaves HTTP/1 framing: it passes to the codec.
    let connect = b"CONNECT [::1]:443 HTTP/1.1\r\nhost: x\r\n\r\n";
    assert_eq!(scan(connect, connect.len()), (connect.to_vec(), None));
}

#[test]
fn what_the_guard_does_not_follow_goes_to_the_codec() {
    // A malformed chunk, an upgrade and a partial head at the end of the stream.
    let bad_chunk = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
    let upgrade = b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n\x81\x05hello";
    let partial = b"GET /a HTTP/1.1\r\nhost";
    for input in [&bad_chunk[..], &upgrade[..], &partial[..], &[GET, &bad_chunk[..], GET].concat()[..]] {
        for (seen, refused) in every_split(input) {
            assert_eq!((seen.as_slice(), refused), (input, None));
        }
    }
}

#[test]
fn empty_lines_before_a_request_line_end_no_head() {
    // Found by fuzzing: read whole, the leading empty line looked like the end of a head and the
    // unfinished head was judged (400); read a byte at a time, it went to the codec at the end.
    let unfinished = b"\n\r\no\xff";
    for (seen, refused) in every_split(unfinished) {
        assert_eq!((seen.as_slice(), refused), (&unfinished[..], None));
    }
    // Empty lines before whole heads do not change their verdicts.
    let bad = b"\r\n\r\nPOST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n";
    for (seen, refused) in every_split(bad) {
        assert_eq!((seen.as_slice(), refused), (&b""[..], Some(501)));
    }
    let good = [&b"\r\n"[..], GET, b"\n", GET].concat();
    for (seen, refused) in every_split(&good) {
        assert_eq!((seen, refused), (good.clone(), None));
    }
}

#[tokio::test]
async fn a_refused_head_becomes_the_last_request_the_codec_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(1024);
    let mut guard = RequestGuard::new(server, 4096);
    client.write_all(&[GET, b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n", GET].concat()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"\r\n\r\n") || seen.len() <= GET.len() {
        let n = guard.read(&mut buf).await.unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
    let stand_in = &seen[GET.len()..];
    let mut headers = [httparse::EMPTY_HEADER; 4];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(stand_in).unwrap();
    let http_req = http::Request::builder().method(req.method.unwrap()).uri(req.path.unwrap()).body(()).unwrap();
    assert_eq!(refused(&http_req).map(|r| r.status.as_u16()), Some(501));
    let more = tokio::time::timeout(std::time::Duration::from_millis(50), guard.read(&mut buf)).await;
    assert!(more.is_err(), "nothing after the stand-in");
}

#[test]
fn a_client_cannot_send_the_stand_in_method() {
    let forged = format!("{REFUSED_METHOD} /1 HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(scan(forged.as_bytes(), 7), (Vec::new(), Some(400)));
    assert_eq!(scan_with(forged.as_bytes(), forged.len(), true), (Vec::new(), Some(400)));
}

#[tokio::test]
async fn the_codec_reads_every_accepted_byte_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = vec![b'x'; 40_000];
    let post = [&b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 40000\r\n\r\n"[..], &body].concat();
    let input = [GET, &post[..], GET, &post[..]].concat();
    let (mut client, server) = tokio::io::duplex(777);
    let mut guard = RequestGuard::new(server, 4096);
    let writer = {
        let input = input.clone();
        tokio::spawn(async move {
            for piece in input.chunks(333) {
                client.write_all(piece).await.unwrap();
            }
            client.shutdown().await.unwrap();
            client
        })
    };
    let mut seen = Vec::new();
    guard.read_to_end(&mut seen).await.unwrap();
    drop(writer.await.unwrap());
    assert_eq!(seen, input);
}
