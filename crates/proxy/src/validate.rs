//! HTTP/1 request validation beyond what the codec enforces, with Envoy's status codes:
//! 426 for HTTP/1.0, 400 for a missing Host, duplicate Content-Length or Content-Length with
//! Transfer-Encoding, 501 for a Transfer-Encoding other than chunked.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Request, StatusCode, Version};

/// A rejected request: the status, Envoy's body text and Envoy's `%RESPONSE_CODE_DETAILS%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Status to answer with.
    pub status: StatusCode,
    /// Body text.
    pub body: &'static str,
    /// Response code details; Envoy's codec rejects every case but a missing Host with the
    /// `DPE` flag and before the request headers exist (verified against Envoy 1.40).
    pub details: &'static str,
}

impl Rejection {
    const fn new(status: StatusCode, body: &'static str, details: &'static str) -> Self {
        Self { status, body, details }
    }

    /// Whether Envoy's codec rejected the request (flag `DPE`, no request headers logged).
    pub fn is_codec_error(&self) -> bool {
        self.details != MISSING_HOST
    }
}

/// Details of the one rejection Envoy makes after the codec (headers known, no flag).
const MISSING_HOST: &str = "missing_host_header";

/// Checks a request against `max_request_headers_kb` (as `max_header_bytes`): names plus values
/// of all headers, like Envoy's accounting. Oversized heads get 431.
pub fn check_header_size<B>(req: &Request<B>, max_header_bytes: usize) -> Option<Rejection> {
    let size: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    (size > max_header_bytes)
        .then(|| Rejection::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request Header Fields Too Large", "http1.headers_too_large"))
}

/// Checks an HTTP/1.x request; `None` means it may proceed.
pub fn check_http1<B>(req: &Request<B>) -> Option<Rejection> {
    match req.version() {
        Version::HTTP_11 => {}
        Version::HTTP_10 | Version::HTTP_09 => {
            return Some(Rejection::new(StatusCode::UPGRADE_REQUIRED, "Upgrade Required", "low_version"));
        }
        _ => return None,
    }
    let headers = req.headers();
    if !headers.contains_key(HOST) && req.uri().authority().is_none() {
        // Envoy answers a missing Host with an empty 400.
        return Some(Rejection::new(StatusCode::BAD_REQUEST, "", MISSING_HOST));
    }
    let mut te_values = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    let has_te = te_values.peek().is_some();
    if has_te {
        for v in te_values {
            let Ok(v) = v.to_str() else {
                return Some(Rejection::new(StatusCode::BAD_REQUEST, "Bad Request", "http1.invalid_transfer_encoding"));
            };
            if !v.trim().eq_ignore_ascii_case("chunked") {
                return Some(Rejection::new(StatusCode::NOT_IMPLEMENTED, "Not Implemented", "http1.invalid_transfer_encoding"));
            }
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return Some(Rejection::new(StatusCode::BAD_REQUEST, "Bad Request", "http1.content_length_and_chunked_not_allowed"));
        }
    }
    let cl = headers.get_all(CONTENT_LENGTH);
    let mut it = cl.iter();
    if let (Some(_), Some(_)) = (it.next(), it.next()) {
        return Some(Rejection::new(StatusCode::BAD_REQUEST, "Bad Request", "http1.codec_error"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> http::request::Builder {
        Request::builder().uri("/x").header("host", "a")
    }

    #[test]
    fn accepts_a_plain_request() {
        assert_eq!(check_http1(&req().body(()).unwrap()), None);
        let chunked = req().header("transfer-encoding", "chunked").body(()).unwrap();
        assert_eq!(check_http1(&chunked), None);
    }

    #[test]
    fn rejects_http10_with_426() {
        let r = req().version(Version::HTTP_10).body(()).unwrap();
        assert_eq!(check_http1(&r).unwrap().status, 426);
    }

    #[test]
    fn rejects_missing_host() {
        let r = Request::builder().uri("/x").body(()).unwrap();
        assert_eq!(check_http1(&r).unwrap().status, 400);
        let absolute = Request::builder().uri("http://a/x").body(()).unwrap();
        assert_eq!(check_http1(&absolute), None);
    }

    #[test]
    fn rejects_length_and_encoding_conflicts() {
        let both = req().header("content-length", "3").header("transfer-encoding", "chunked").body(()).unwrap();
        assert_eq!(check_http1(&both).unwrap().status, 400);
        let two = req().header("content-length", "3").header("content-length", "3").body(()).unwrap();
        assert_eq!(check_http1(&two).unwrap().status, 400);
    }

    #[test]
    fn oversized_header_blocks_get_431() {
        let r = req().header("x-big", "v".repeat(100)).body(()).unwrap();
        assert_eq!(check_header_size(&r, 1024), None);
        assert_eq!(check_header_size(&r, 50).unwrap().status, 431);
    }

    #[test]
    fn rejects_unknown_transfer_encoding_with_501() {
        let gz = req().header("transfer-encoding", "gzip, chunked").body(()).unwrap();
        assert_eq!(check_http1(&gz).unwrap().status, 501);
    }
}
