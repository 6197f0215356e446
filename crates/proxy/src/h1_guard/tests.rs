use super::*;

/// Feeds `input` in pieces of `step` bytes; returns what the codec saw and the first rejection.
fn scan(input: &[u8], step: usize) -> (Vec<u8>, Option<u16>) {
    let mut scanner = RequestScanner::new(64 * 1024);
    let mut out = BytesMut::new();
    let mut refused = None;
    for piece in input.chunks(step) {
        if let Some(r) = scanner.feed(piece, &mut out) {
            refused.get_or_insert(r.status.as_u16());
        }
    }
    scanner.finish(&mut out);
    (out.to_vec(), refused)
}

fn every_split(input: &[u8]) -> impl Iterator<Item = (Vec<u8>, Option<u16>)> + '_ {
    (1..=input.len()).map(move |step| scan(input, step))
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
fn envoys_framing_rules() {
    let cases: [(&[u8], u16); 5] = [
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n", 400),
        (b"BLAH\r\n\r\n", 400),
    ];
    for (input, status) in cases {
        assert_eq!(scan(input, input.len()), (Vec::new(), Some(status)), "{}", String::from_utf8_lossy(input));
    }
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

#[tokio::test]
async fn the_reply_is_written_when_the_codec_shuts_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (client, server) = tokio::io::duplex(1024);
    let mut guard = RequestGuard::new(server, 4096, |r: Rejection| format!("HTTP/1.1 {}\r\n\r\n", r.status.as_u16()).into_bytes());
    let (mut client_read, mut client_write) = tokio::io::split(client);
    client_write.write_all(b"GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(guard.read(&mut buf).await.unwrap(), 0, "the codec sees the end of the stream");
    guard.shutdown().await.unwrap();
    let mut reply = Vec::new();
    client_read.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"HTTP/1.1 501\r\n\r\n");
}
