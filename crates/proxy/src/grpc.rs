//! gRPC awareness of the connection manager: which requests are gRPC, and Envoy's gRPC form of
//! local replies (HTTP 200 with `grpc-status` and `grpc-message`, no body) so that gRPC clients
//! see a gRPC error such as 14 UNAVAILABLE instead of a bare 503.

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::ProxyBody;

/// Whether `headers` carry a gRPC content type (`application/grpc`, `application/grpc+proto`...).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16
            && v[..16].eq_ignore_ascii_case(b"application/grpc")
            && matches!(v.get(16), None | Some(b'+' | b';'))
    })
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`.
pub fn grpc_status_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 13, // INTERNAL
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        404 => 12, // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,    // UNKNOWN
    }
}

/// Rewrites a local reply for a gRPC client: status 200, `content-type: application/grpc`,
/// `grpc-status` from the HTTP status and `grpc-message` from the body text (percent-encoded).
/// A response streamed from the upstream is returned unchanged.
pub fn to_grpc_reply(resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let status = grpc_status_for(resp.status());
    grpc_reply(resp, status)
}

/// Rewrites a local reply for a gRPC client as [`to_grpc_reply`] does, with the given
/// `grpc-status`.
pub fn grpc_reply(resp: Response<ProxyBody>, status: u8) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    let (body, text) = match body.take_local_text() {
        Ok(local) => local,
        Err(upstream) => return Response::from_parts(parts, upstream),
    };
    let message = text.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    parts.status = StatusCode::OK;
    let h = &mut parts.headers;
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.remove(CONTENT_LENGTH);
    h.insert("grpc-status", HeaderValue::from(u16::from(status)));
    if !message.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&percent_encode(&message)) {
            h.insert("grpc-message", v);
        }
    }
    Response::from_parts(parts, body)
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII and `%` are escaped.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_grpc_content_types() {
        let mut h = HeaderMap::new();
        for (ct, grpc) in [("application/grpc", true), ("application/grpc+proto", true), ("Application/GRPC", true),
            ("application/grpc-web", false), ("application/json", false)] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), grpc, "{ct}");
        }
    }

    #[test]
    fn status_mapping_and_message() {
        assert_eq!(grpc_status_for(StatusCode::SERVICE_UNAVAILABLE), 14);
        assert_eq!(grpc_status_for(StatusCode::NOT_FOUND), 12);
        assert_eq!(grpc_status_for(StatusCode::GATEWAY_TIMEOUT), 14);
        let r = to_grpc_reply(crate::local_reply::local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream", None));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["grpc-status"], "14");
        assert_eq!(r.headers()["grpc-message"], "no healthy upstream");
        assert_eq!(percent_encode("a%b\n"), "a%25b%0A");
    }
}
