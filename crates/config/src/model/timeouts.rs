//! A route's stream timeouts in the internal model.

use std::time::Duration;

/// `RouteAction.max_stream_duration`. Its presence alone turns the route `timeout` off (Envoy's
/// "new timeouts"): the stream's duration limit replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaxStreamDuration {
    /// `max_stream_duration`: `None` when unset (the HCM's limit applies), zero disables the
    /// HCM's limit for this route.
    pub max_stream_duration: Option<Duration>,
    /// `grpc_timeout_header_max`: when set, a request's `grpc-timeout` header is the limit,
    /// capped at this value (zero: no cap). Unset: the header is ignored.
    pub grpc_timeout_header_max: Option<Duration>,
    /// `grpc_timeout_header_offset`, subtracted from the `grpc-timeout` header's limit.
    pub grpc_timeout_header_offset: Option<Duration>,
}
