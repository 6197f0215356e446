//! Local replies: responses Legate generates itself, with Envoy's bodies and response flags.

use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

use legate_config::access_log::RESPONSE_FLAG_NAMES;

use crate::body::{ProxyBody, StreamGuard};

/// Envoy's response flags (`%RESPONSE_FLAGS%`), as a set; the bit of a flag is its index in
/// Envoy's order ([`RESPONSE_FLAG_NAMES`]), which is also the order they are printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    /// `NR`: no route.
    pub const NO_ROUTE: &'static str = "NR";
    /// `NC`: no cluster.
    pub const NO_CLUSTER: &'static str = "NC";
    /// `UH`: no healthy upstream.
    pub const NO_HEALTHY_UPSTREAM: &'static str = "UH";
    /// `UT`: upstream request timeout.
    pub const UPSTREAM_REQUEST_TIMEOUT: &'static str = "UT";
    /// `UC`: upstream connection termination.
    pub const UPSTREAM_CONNECTION_TERMINATION: &'static str = "UC";
    /// `UO`: upstream overflow (a circuit breaker is open).
    pub const UPSTREAM_OVERFLOW: &'static str = "UO";
    /// `URX`: upstream retry (or connect attempt) limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: &'static str = "URX";
    /// `DPE`: downstream protocol error.
    pub const DOWNSTREAM_PROTOCOL_ERROR: &'static str = "DPE";
    /// `SI`: stream idle timeout.
    pub const STREAM_IDLE_TIMEOUT: &'static str = "SI";
    /// `DC`: downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: &'static str = "DC";

    /// Adds the flag with Envoy short name `name` (unknown names are ignored).
    pub fn set(&mut self, name: &str) {
        if let Some(i) = RESPONSE_FLAG_NAMES.iter().position(|n| *n == name) {
            self.0 |= 1 << i;
        }
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the flag named `name` is set.
    pub fn contains(self, name: &str) -> bool {
        RESPONSE_FLAG_NAMES.iter().position(|n| *n == name).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Envoy's rendering: short names joined by `,`, `-` when none.
    pub fn short_names(self) -> String {
        if self.0 == 0 {
            return "-".to_string();
        }
        let names: Vec<&str> =
            RESPONSE_FLAG_NAMES.iter().enumerate().filter(|(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n).collect();
        names.join(",")
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
    h.insert(CONTENT_LENGTH, crate::decimal::decimal_value(len as u64));
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
    fn flags_print_in_envoy_order() {
        let mut f = ResponseFlags::default();
        assert_eq!(f.short_names(), "-");
        assert!(f.is_empty());
        f.set(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION);
        f.set(ResponseFlags::NO_HEALTHY_UPSTREAM);
        f.set("bogus");
        assert_eq!(f.short_names(), "UH,UC");
        assert!(f.contains("UC") && !f.contains("NR"));
    }
}
