//! Local replies: responses Legate generates itself, with Envoy's bodies and response flags.

use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::{ProxyBody, StreamGuard};

/// Why a local reply was sent, with its Envoy response flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFlag {
    /// `NR`: no route.
    NoRoute,
    /// `NC`: no cluster.
    NoCluster,
    /// `UH`: no healthy upstream.
    NoHealthyUpstream,
    /// `UF`: upstream connection failure.
    UpstreamConnectionFailure,
    /// `UT`: upstream request timeout.
    UpstreamRequestTimeout,
    /// `UC`: upstream connection termination.
    UpstreamConnectionTermination,
    /// `DPE`: downstream protocol error.
    DownstreamProtocolError,
    /// `SI`: stream idle timeout.
    StreamIdleTimeout,
    /// No flag (direct responses, redirects).
    None,
}

impl ResponseFlag {
    /// Envoy's short name of the flag (`-` for none).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::NoRoute => "NR",
            Self::NoCluster => "NC",
            Self::NoHealthyUpstream => "UH",
            Self::UpstreamConnectionFailure => "UF",
            Self::UpstreamRequestTimeout => "UT",
            Self::UpstreamConnectionTermination => "UC",
            Self::DownstreamProtocolError => "DPE",
            Self::StreamIdleTimeout => "SI",
            Self::None => "-",
        }
    }
}

/// Builds a local reply with a text body (empty bodies carry no content-type, like Envoy).
pub fn local_reply(status: StatusCode, body: &'static str, guard: Option<StreamGuard>) -> Response<ProxyBody> {
    text_reply(status, body.to_string(), guard)
}

/// Builds a local reply with an owned text body.
pub fn text_reply(status: StatusCode, body: String, guard: Option<StreamGuard>) -> Response<ProxyBody> {
    let len = body.len();
    let mut resp = Response::new(ProxyBody::full(body, guard));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if len > 0 {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// A protocol-error reply that also closes the connection (HTTP/1).
pub fn protocol_error(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = local_reply(status, body, None);
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_local_reply_has_no_content_type() {
        let r = local_reply(StatusCode::NOT_FOUND, "", None);
        assert_eq!(r.status(), 404);
        assert!(r.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(r.headers()[CONTENT_LENGTH], "0");
    }

    #[test]
    fn protocol_errors_close_the_connection() {
        let r = protocol_error(StatusCode::BAD_REQUEST, "Bad Request");
        assert_eq!(r.headers()[CONNECTION], "close");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(r.headers()[CONTENT_LENGTH], "11");
    }

    #[test]
    fn flags_have_envoy_short_names() {
        assert_eq!(ResponseFlag::NoRoute.short_name(), "NR");
        assert_eq!(ResponseFlag::UpstreamRequestTimeout.short_name(), "UT");
        assert_eq!(ResponseFlag::None.short_name(), "-");
    }
}
