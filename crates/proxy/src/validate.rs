//! HTTP/1 request validation beyond what the codec enforces, with Envoy's status codes:
//! 426 for HTTP/1.0, 400 for a missing Host; and the rules the request guard (`h1_guard`)
//! applies to heads before the codec: 400 for duplicate or invalid Content-Length or
//! Content-Length with Transfer-Encoding, 501 for a Transfer-Encoding other than chunked, 400
//! (`path_normalization_failed`) for a target with a fragment.

use http::header::HOST;
use http::{Request, StatusCode, Version};

/// A rejected request: the status, Envoy's body text and Envoy's `%RESPONSE_CODE_DETAILS%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Status to answer with.
    pub status: StatusCode,
    /// Body text.
    pub body: &'static str,
    /// Response code details; Envoy's codec rejects every case but a missing Host and a path
    /// with a fragment with the `DPE` flag and before the request headers exist (verified
    /// against Envoy 1.40).
    pub details: &'static str,
}

impl Rejection {
    /// A head the HTTP/1 codec cannot parse.
    pub const CODEC_ERROR: Self = Self::new(StatusCode::BAD_REQUEST, "Bad Request", "http1.codec_error");
    /// Content-Length together with Transfer-Encoding.
    pub(crate) const LENGTH_AND_CHUNKED: Self =
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", "http1.content_length_and_chunked_not_allowed");
    /// A `Host` header with a character Envoy does not take in an authority.
    pub(crate) const INVALID_AUTHORITY: Self = Self::new(StatusCode::BAD_REQUEST, "Bad Request", "http.invalid_authority");
    /// A request target with a fragment (`#`): Envoy's path normalization refuses it after the
    /// codec, with the request headers known and no flag.
    pub(crate) const PATH_WITH_FRAGMENT: Self = Self::new(StatusCode::BAD_REQUEST, "", PATH_NORMALIZATION_FAILED);
    /// A Transfer-Encoding other than `chunked`.
    pub(crate) const TRANSFER_ENCODING: Self =
        Self::new(StatusCode::NOT_IMPLEMENTED, "Not Implemented", "http1.invalid_transfer_encoding");

    const fn new(status: StatusCode, body: &'static str, details: &'static str) -> Self {
        Self { status, body, details }
    }

    /// Whether Envoy's codec rejected the request (flag `DPE`, no request headers logged).
    pub fn is_codec_error(&self) -> bool {
        self.details != MISSING_HOST && self.details != PATH_NORMALIZATION_FAILED
    }
}

/// Details of the rejections Envoy makes after the codec (headers known, no flag).
const MISSING_HOST: &str = "missing_host_header";
const PATH_NORMALIZATION_FAILED: &str = "path_normalization_failed";

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
    None
}

/// How a valid HTTP/1.1 request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The body framing of a request head with these headers (`None`: no body), or Envoy's
/// rejection: one `Transfer-Encoding`, exactly `chunked`, and no `Content-Length` with it; at
/// most one `Content-Length`, a decimal number.
pub fn body_framing<'h>(headers: impl Iterator<Item = (&'h str, &'h [u8])>) -> Result<Option<BodyFraming>, Rejection> {
    let (mut length, mut lengths, mut chunked) = (None, 0, false);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !trim(value).eq_ignore_ascii_case(b"chunked") {
                return Err(Rejection::TRANSFER_ENCODING);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let digits = trim(value);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Rejection::CODEC_ERROR);
            }
            length = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u64>().ok());
            if length.is_none() {
                return Err(Rejection::CODEC_ERROR);
            }
        }
    }
    match (chunked, lengths, length) {
        (true, 0, _) => Ok(Some(BodyFraming::Chunked)),
        (true, _, _) => Err(Rejection::LENGTH_AND_CHUNKED),
        (false, 0, _) => Ok(None),
        (false, 1, Some(n)) => Ok(Some(BodyFraming::Length(n))),
        _ => Err(Rejection::CODEC_ERROR),
    }
}

/// `v` without surrounding spaces and tabs.
fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
    &v[start..end]
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
    }

    fn framing(headers: &[(&'static str, &'static str)]) -> Result<Option<BodyFraming>, u16> {
        body_framing(headers.iter().map(|(n, v)| (*n, v.as_bytes()))).map_err(|r| r.status.as_u16())
    }

    #[test]
    fn body_framing_follows_envoy() {
        assert_eq!(framing(&[("Host", "a")]), Ok(None));
        assert_eq!(framing(&[("Content-Length", " 12 ")]), Ok(Some(BodyFraming::Length(12))));
        assert_eq!(framing(&[("transfer-encoding", "Chunked")]), Ok(Some(BodyFraming::Chunked)));
        assert_eq!(framing(&[("content-length", "2"), ("content-length", "2")]), Err(400));
        assert_eq!(framing(&[("content-length", "-1")]), Err(400));
        assert_eq!(framing(&[("content-length", "99999999999999999999999")]), Err(400));
        assert_eq!(framing(&[("content-length", "3"), ("transfer-encoding", "chunked")]), Err(400));
        assert_eq!(framing(&[("transfer-encoding", "gzip")]), Err(501));
        assert_eq!(framing(&[("transfer-encoding", "gzip, chunked")]), Err(501));
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
    fn oversized_header_blocks_get_431() {
        let r = req().header("x-big", "v".repeat(100)).body(()).unwrap();
        assert_eq!(check_header_size(&r, 1024), None);
        assert_eq!(check_header_size(&r, 50).unwrap().status, 431);
    }
}
