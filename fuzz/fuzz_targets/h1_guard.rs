//! The HTTP/1 request guard judges a byte stream the same however it is split into reads, and
//! what it releases to the codec is a prefix of what it received, in order.
//!
//! Input: one byte choosing the read size (1 to 17 bytes), then the stream.
#![no_main]
use bytes::BytesMut;
use legate_proxy::h1_guard::RequestScanner;
use libfuzzer_sys::fuzz_target;

/// Large enough that no head here reaches it (past it, the guard stops judging by design).
const MAX_HEAD: usize = 1 << 20;

/// Feeds `input` in reads of `read_size` bytes; returns what the codec saw and the verdict.
fn scan(input: &[u8], read_size: usize) -> (BytesMut, Option<String>) {
    let mut scanner = RequestScanner::new(MAX_HEAD);
    let mut seen = BytesMut::new();
    for read in input.chunks(read_size) {
        if let Some(rejection) = scanner.feed(read, &mut seen) {
            return (seen, Some(format!("{rejection:?}")));
        }
    }
    scanner.finish(&mut seen);
    (seen, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = scan(input, input.len().max(1));
    let pieces = scan(input, usize::from(split) % 17 + 1);
    assert!(input.starts_with(&whole.0), "released bytes are not a prefix of the input");
    assert_eq!(whole, pieces, "the verdict depends on how the input was split");
});
