//! Upstream failures, classified the way Envoy reports them (reset reason, response flag).

/// Why an upstream request failed before response headers arrived.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be established.
    #[error("connect to {addr} failed: {source}")]
    ConnectFailure {
        /// Upstream address.
        addr: std::net::SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The connection did not complete within `connect_timeout`.
    #[error("connect to {addr} timed out")]
    ConnectTimeout {
        /// Upstream address.
        addr: std::net::SocketAddr,
    },
    /// The upstream closed or reset the connection before sending response headers.
    #[error("upstream connection terminated: {0}")]
    Reset(String),
    /// The upstream sent something that is not valid HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// Envoy's reset reason text, as it appears after `reset reason: ` in the 503 body.
    pub fn reset_reason(&self) -> String {
        match self {
            // Envoy 1.40 reports a refused connect as just "remote connection failure".
            Self::ConnectFailure { .. } => "remote connection failure".into(),
            Self::ConnectTimeout { .. } => "connection timeout".into(),
            Self::Reset(_) => "connection termination".into(),
            Self::Protocol(_) => "protocol error".into(),
        }
    }

    /// Envoy's response flag for the failure.
    pub fn response_flag(&self) -> &'static str {
        match self {
            Self::ConnectFailure { .. } | Self::ConnectTimeout { .. } => "UF",
            Self::Reset(_) | Self::Protocol(_) => "UC",
        }
    }

    /// Whether the failure happened while connecting.
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, Self::ConnectFailure { .. } | Self::ConnectTimeout { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connection_reads_like_envoy() {
        let e = UpstreamError::ConnectFailure {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from_raw_os_error(libc_econnrefused()),
        };
        assert_eq!(e.reset_reason(), "remote connection failure");
        assert_eq!(e.response_flag(), "UF");
    }

    fn libc_econnrefused() -> i32 {
        111
    }
}
