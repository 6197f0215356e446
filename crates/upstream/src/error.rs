//! Upstream failures, classified the way Envoy 1.40 reports them: the reset reason of the local
//! reply body, the response flag, the status code and the response code details.

use std::net::SocketAddr;

/// Why an upstream request failed before response headers arrived, or why the cluster manager
/// could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be established (refused, unreachable...).
    #[error("connect to {addr} failed: {source}")]
    ConnectFailure {
        /// Upstream address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// A circuit breaker is open (`max_requests`, `max_pending_requests`): the request is not
    /// sent (flag UO).
    #[error("circuit breaker overflow")]
    Overflow,
    /// The connection did not complete within the cluster's `connect_timeout`.
    #[error("connect timeout")]
    ConnectTimeout,
    /// The TLS handshake with the upstream failed (certificate not verified, no common
    /// protocol...).
    #[error("upstream TLS handshake failed: {detail}")]
    Tls {
        /// What rustls reported.
        detail: String,
    },
    /// The upstream closed or reset the connection before sending complete response headers.
    #[error("upstream connection terminated before response headers: {detail}")]
    Reset {
        /// What the HTTP/1 codec reported.
        detail: String,
    },
    /// The upstream sent something that is not valid HTTP/1.
    #[error("upstream protocol error: {detail}")]
    Protocol {
        /// What the HTTP/1 codec reported.
        detail: String,
    },
    /// The cluster configuration cannot be used (Envoy refuses it at startup too).
    #[error("{0}")]
    InvalidConfig(String),
}

impl UpstreamError {
    /// Envoy's reset reason, as it appears after `reset reason: ` in the local reply body
    /// (`upstream connect error or disconnect/reset before headers. reset reason: ...`).
    /// Verified against Envoy 1.40: a refused connection reads `remote connection failure`
    /// (the transport failure reason is not part of the body).
    pub fn reset_reason(&self) -> String {
        match self {
            Self::ConnectFailure { .. } => "remote connection failure".into(),
            Self::ConnectTimeout => "connection timeout".into(),
            Self::Tls { .. } => "remote connection failure".into(),
            Self::Overflow => "overflow".into(),
            Self::Reset { .. } => "connection termination".into(),
            Self::Protocol { .. } => "protocol error".into(),
            Self::InvalidConfig(_) => "local reset".into(),
        }
    }

    /// Envoy's response flag: `UF` (connect failure or timeout), `UC` (connection terminated),
    /// `UPE` (upstream protocol error).
    pub fn response_flag(&self) -> &'static str {
        match self {
            Self::ConnectFailure { .. } | Self::ConnectTimeout | Self::Tls { .. } => "UF",
            Self::Reset { .. } | Self::InvalidConfig(_) => "UC",
            Self::Protocol { .. } => "UPE",
            Self::Overflow => "UO",
        }
    }

    /// Status of the local reply Envoy sends: 502 for a protocol error, 503 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Protocol { .. } => 502,
            _ => 503,
        }
    }

    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`: `delayed connect error: Connection refused` for a
    /// failed connect, `None` otherwise.
    pub fn transport_failure_reason(&self) -> Option<String> {
        match self {
            Self::ConnectFailure { source, .. } => Some(format!("delayed connect error: {}", os_error_text(source))),
            Self::Tls { detail } => Some(format!("TLS_error:|{detail}:TLS_error_end")),
            _ => None,
        }
    }

    /// `%RESPONSE_CODE_DETAILS%`, e.g.
    /// `upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}`.
    pub fn response_code_details(&self) -> String {
        let reason = self.reset_reason().replace(' ', "_");
        match self.transport_failure_reason() {
            Some(t) => format!("upstream_reset_before_response_started{{{reason}|{}}}", t.replace(' ', "_")),
            None => format!("upstream_reset_before_response_started{{{reason}}}"),
        }
    }

    /// Whether the failure happened while connecting (no request reached the upstream).
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, Self::ConnectFailure { .. } | Self::ConnectTimeout | Self::Tls { .. })
    }
}

/// A failure every request waiting on one connection reports: each gets an equal
/// [`UpstreamError`] from [`SharedError::to_error`].
#[derive(Debug, Clone)]
pub(crate) enum SharedError {
    /// [`UpstreamError::ConnectFailure`]: the address, and the OS error's kind and text.
    ConnectFailure { addr: SocketAddr, kind: std::io::ErrorKind, text: String },
    /// [`UpstreamError::ConnectTimeout`].
    ConnectTimeout,
    /// [`UpstreamError::Tls`].
    Tls(String),
    /// [`UpstreamError::Protocol`].
    Protocol(String),
    /// Any other failure, as [`UpstreamError::Reset`].
    Reset(String),
}

impl SharedError {
    /// The shareable form of `e`.
    pub(crate) fn new(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::ConnectFailure { addr, source } => {
                Self::ConnectFailure { addr: *addr, kind: source.kind(), text: os_error_text(source) }
            }
            UpstreamError::ConnectTimeout => Self::ConnectTimeout,
            UpstreamError::Tls { detail } => Self::Tls(detail.clone()),
            UpstreamError::Protocol { .. } => Self::Protocol(e.to_string()),
            _ => Self::Reset(e.to_string()),
        }
    }

    /// An error equal to the one shared.
    pub(crate) fn to_error(&self) -> UpstreamError {
        match self {
            Self::ConnectFailure { addr, kind, text } => {
                UpstreamError::ConnectFailure { addr: *addr, source: std::io::Error::new(*kind, text.clone()) }
            }
            Self::ConnectTimeout => UpstreamError::ConnectTimeout,
            Self::Tls(detail) => UpstreamError::Tls { detail: detail.clone() },
            Self::Protocol(detail) => UpstreamError::Protocol { detail: detail.clone() },
            Self::Reset(detail) => UpstreamError::Reset { detail: detail.clone() },
        }
    }
}

/// The OS error text without Rust's ` (os error N)` suffix, as `strerror` gives it.
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connection_reads_like_envoy() {
        let e = UpstreamError::ConnectFailure {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(e.reset_reason(), "remote connection failure");
        assert_eq!(e.response_flag(), "UF");
        assert_eq!(e.status_code(), 503);
        let refused = UpstreamError::ConnectFailure {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::net::TcpStream::connect("127.0.0.1:1").unwrap_err(),
        };
        assert_eq!(refused.transport_failure_reason().as_deref(), Some("delayed connect error: Connection refused"));
        assert_eq!(
            refused.response_code_details(),
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}"
        );
        let shared = SharedError::new(&refused).to_error();
        assert_eq!(shared.transport_failure_reason(), refused.transport_failure_reason());
        assert_eq!(shared.response_flag(), "UF");
    }

    #[test]
    fn other_failures_read_like_envoy() {
        assert_eq!(UpstreamError::ConnectTimeout.reset_reason(), "connection timeout");
        assert_eq!(
            UpstreamError::ConnectTimeout.response_code_details(),
            "upstream_reset_before_response_started{connection_timeout}"
        );
        let reset = UpstreamError::Reset { detail: "closed".into() };
        assert_eq!((reset.reset_reason().as_str(), reset.response_flag(), reset.status_code()), ("connection termination", "UC", 503));
        let proto = UpstreamError::Protocol { detail: "bad".into() };
        assert_eq!((proto.reset_reason().as_str(), proto.response_flag(), proto.status_code()), ("protocol error", "UPE", 502));
    }
}
