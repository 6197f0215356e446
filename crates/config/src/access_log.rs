//! Access log model (`access_log` of the HTTP connection manager) and the parser of Envoy's
//! substitution format strings (`%START_TIME%`, `%REQ(X?Y):N%`...).

use crate::error::{ConfigError, Result};

/// Envoy's default access log format, used when a logger has no `log_format`.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// One configured access logger.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// `name` (e.g. `envoy.access_loggers.file`).
    pub name: String,
    /// `filter`: which streams are logged (all when `None`).
    pub filter: Option<AccessLogFilter>,
    /// Where lines go.
    pub sink: AccessLogSink,
    /// How a line is formatted.
    pub format: LogFormat,
}

/// Destination of an access logger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccessLogSink {
    /// `envoy.access_loggers.file`: the file at `path` (appended to).
    File(String),
    /// `envoy.access_loggers.stdout`.
    Stdout,
    /// `envoy.access_loggers.stderr`.
    Stderr,
}

/// A log line format.
#[derive(Debug, Clone, PartialEq)]
pub enum LogFormat {
    /// A text format; `omit_empty_values` prints missing values as nothing instead of `-`.
    Text {
        /// The parsed format.
        tokens: Vec<FormatToken>,
        /// `omit_empty_values`.
        omit_empty_values: bool,
    },
    /// A `json_format`: one JSON object per line.
    Json {
        /// The object's fields in configuration order.
        fields: Vec<(String, JsonField)>,
        /// `omit_empty_values`: fields whose value is missing are left out.
        omit_empty_values: bool,
    },
}

/// A value of a `json_format` field.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonField {
    /// A string with substitution commands: a lone command keeps its type (numbers stay
    /// numbers), anything else is a string.
    Format(Vec<FormatToken>),
    /// A nested object.
    Object(Vec<(String, JsonField)>),
    /// A number, bool or null copied as is.
    Literal(serde_json::Value),
}

/// A piece of a format string.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatToken {
    /// Literal text.
    Literal(String),
    /// A command operator, truncated to `max_len` characters when given.
    Command {
        /// The operator.
        op: Command,
        /// `:N` truncation.
        max_len: Option<usize>,
    },
}

/// A header lookup: `X` or `X?Y` (the alternative when `X` is absent), names lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLookup {
    /// The header looked up first.
    pub main: String,
    /// The header used when `main` is absent.
    pub alt: Option<String>,
}

/// The supported command operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `%START_TIME%` or `%START_TIME(fmt)%`.
    StartTime(Option<String>),
    /// `%REQ(X?Y)%`.
    Req(HeaderLookup),
    /// `%RESP(X?Y)%`.
    Resp(HeaderLookup),
    /// `%TRAILER(X?Y)%`.
    Trailer(HeaderLookup),
    /// `%RESPONSE_CODE%`.
    ResponseCode,
    /// `%RESPONSE_FLAGS%`.
    ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%`.
    ResponseCodeDetails,
    /// `%BYTES_RECEIVED%`.
    BytesReceived,
    /// `%BYTES_SENT%`.
    BytesSent,
    /// `%DURATION%`.
    Duration,
    /// `%REQUEST_DURATION%`.
    RequestDuration,
    /// `%RESPONSE_DURATION%`.
    ResponseDuration,
    /// `%UPSTREAM_HOST%`.
    UpstreamHost,
    /// `%UPSTREAM_CLUSTER%`.
    UpstreamCluster,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    UpstreamTransportFailureReason,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`.
    DownstreamRemoteAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    DownstreamLocalAddress,
    /// `%PROTOCOL%`.
    Protocol,
    /// `%ROUTE_NAME%`.
    RouteName,
    /// `%HOSTNAME%`.
    Hostname,
}

/// A stream filter (`access_log[].filter`).
#[derive(Debug, Clone, PartialEq)]
pub enum AccessLogFilter {
    /// `status_code_filter`.
    StatusCode(Comparison),
    /// `duration_filter` (milliseconds).
    Duration(Comparison),
    /// `response_flag_filter`: any of these flags (any flag at all when empty).
    ResponseFlag(Vec<String>),
    /// `not_health_check_filter`.
    NotHealthCheck,
    /// `and_filter`.
    And(Vec<AccessLogFilter>),
    /// `or_filter`.
    Or(Vec<AccessLogFilter>),
}

/// A `ComparisonFilter` with its runtime default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// The operator.
    pub op: ComparisonOp,
    /// `value.default_value`.
    pub value: u64,
}

/// `ComparisonFilter.Op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparisonOp {
    /// `EQ`.
    Eq,
    /// `GE`.
    Ge,
    /// `LE`.
    Le,
    /// `NE`.
    Ne,
}

impl Comparison {
    /// Whether `actual` passes the comparison.
    pub fn matches(&self, actual: u64) -> bool {
        match self.op {
            ComparisonOp::Eq => actual == self.value,
            ComparisonOp::Ge => actual >= self.value,
            ComparisonOp::Le => actual <= self.value,
            ComparisonOp::Ne => actual != self.value,
        }
    }
}

/// Envoy's response flag short names, in Envoy's order.
pub const RESPONSE_FLAG_NAMES: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
    "UDO",
];

/// Parses a substitution format string. Unknown operators get Envoy's error; known operators
/// Legate does not implement are "not supported by legate".
pub fn parse_format(text: &str, path: &str) -> Result<Vec<FormatToken>> {
    let bad = |pos: usize| {
        ConfigError::invalid(
            path,
            format!("Incorrect configuration: {text}. Couldn't find valid command at position {pos}"),
        )
    };
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        if c != '%' {
            literal.push(c);
            i += c.len_utf8();
            continue;
        }
        let body = &text[i + 1..];
        if body.starts_with('%') {
            literal.push('%');
            i += 2;
            continue;
        }
        let found = crate::operator::operator(body).ok_or_else(|| bad(i))?;
        let max_len = found.max_len.map(|n| n.parse::<usize>().map_err(|_| bad(i))).transpose()?;
        let op = command(found.name, found.arg, max_len.is_some(), path)?;
        if !literal.is_empty() {
            tokens.push(FormatToken::Literal(std::mem::take(&mut literal)));
        }
        tokens.push(FormatToken::Command { op, max_len });
        i += 1 + found.len;
    }
    if !literal.is_empty() {
        tokens.push(FormatToken::Literal(literal));
    }
    Ok(tokens)
}

/// Operators Envoy knows that Legate does not implement (refused as not supported).
const KNOWN_UNSUPPORTED: &[&str] = &[
    "REQ_WITHOUT_QUERY",
    "DYNAMIC_METADATA",
    "FILTER_STATE",
    "UPSTREAM_LOCAL_ADDRESS",
    "UPSTREAM_REMOTE_ADDRESS",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "CONNECTION_ID",
    "STREAM_ID",
    "REQUESTED_SERVER_NAME",
    "DOWNSTREAM_LOCAL_PORT",
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
    "DOWNSTREAM_PEER_SUBJECT",
    "REQUEST_HEADERS_BYTES",
    "RESPONSE_HEADERS_BYTES",
    "RESPONSE_TRAILERS_BYTES",
    "ROUTE_METADATA",
    "UPSTREAM_METADATA",
    "CONNECTION_TERMINATION_DETAILS",
    "GRPC_STATUS",
    "GRPC_STATUS_NUMBER",
    "ACCESS_LOG_TYPE",
    "UPSTREAM_WIRE_BYTES_SENT",
    "UPSTREAM_WIRE_BYTES_RECEIVED",
    "DOWNSTREAM_WIRE_BYTES_SENT",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    "START_TIME_LOCAL",
    "EMIT_TIME",
    "TRACE_ID",
    "VIRTUAL_CLUSTER_NAME",
    "UNIQUE_ID",
    "ENVIRONMENT",
    "CEL",
    "METADATA",
    "RESPONSE_FLAGS_LONG",
    "UPSTREAM_PROTOCOL",
    "CUSTOM_FLAGS",
    "COMMON_DURATION",
];

fn header_lookup(name: &str, arg: Option<&str>, path: &str) -> Result<HeaderLookup> {
    let Some(arg) = arg.filter(|a| !a.is_empty()) else {
        return Err(ConfigError::invalid(path, format!("{name} requires parameters")));
    };
    let (main, alt) = match arg.split_once('?') {
        Some((m, a)) => (m, Some(a)),
        None => (arg, None),
    };
    if alt.is_some_and(|a| a.contains('?')) {
        return Err(ConfigError::invalid(
            path,
            format!("More than 1 alternative header specified in token: {arg}"),
        ));
    }
    if main.is_empty() || alt.is_some_and(str::is_empty) {
        return Err(ConfigError::invalid(
            path,
            format!("Invalid header configuration. Format string contains empty or invalid header in %{name}({arg})%"),
        ));
    }
    Ok(HeaderLookup { main: main.to_ascii_lowercase(), alt: alt.map(str::to_ascii_lowercase) })
}

fn command(name: &str, arg: Option<&str>, truncated: bool, path: &str) -> Result<Command> {
    let plain = |c: Command| match (arg, truncated) {
        (None, false) => Ok(c),
        _ => Err(ConfigError::invalid(path, format!("{name} does not take any parameters or length"))),
    };
    match name {
        "START_TIME" => {
            if truncated {
                return Err(ConfigError::invalid(path, "START_TIME does not allow length to be specified."));
            }
            let fmt = arg.filter(|a| !a.is_empty()).map(str::to_string);
            if let Some(f) = &fmt {
                check_time_format(f, path)?;
            }
            Ok(Command::StartTime(fmt))
        }
        "REQ" => Ok(Command::Req(header_lookup(name, arg, path)?)),
        "RESP" => Ok(Command::Resp(header_lookup(name, arg, path)?)),
        "TRAILER" => Ok(Command::Trailer(header_lookup(name, arg, path)?)),
        "RESPONSE_CODE" => plain(Command::ResponseCode),
        "RESPONSE_FLAGS" => plain(Command::ResponseFlags),
        "RESPONSE_CODE_DETAILS" => plain(Command::ResponseCodeDetails),
        "BYTES_RECEIVED" => plain(Command::BytesReceived),
        "BYTES_SENT" => plain(Command::BytesSent),
        "DURATION" => plain(Command::Duration),
        "REQUEST_DURATION" => plain(Command::RequestDuration),
        "RESPONSE_DURATION" => plain(Command::ResponseDuration),
        "UPSTREAM_HOST" => plain(Command::UpstreamHost),
        "UPSTREAM_CLUSTER" => plain(Command::UpstreamCluster),
        "UPSTREAM_TRANSPORT_FAILURE_REASON" => plain(Command::UpstreamTransportFailureReason),
        "DOWNSTREAM_REMOTE_ADDRESS" => plain(Command::DownstreamRemoteAddress),
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => plain(Command::DownstreamRemoteAddressWithoutPort),
        "DOWNSTREAM_LOCAL_ADDRESS" => plain(Command::DownstreamLocalAddress),
        "PROTOCOL" => plain(Command::Protocol),
        "ROUTE_NAME" => plain(Command::RouteName),
        "HOSTNAME" => plain(Command::Hostname),
        other if KNOWN_UNSUPPORTED.contains(&other) => {
            Err(ConfigError::unsupported_value(path, format!("access log operator %{other}%")))
        }
        other => Err(ConfigError::invalid(path, format!("Not supported field in StreamInfo: {other}"))),
    }
}

/// Checks a `%START_TIME(...)%` format: the strftime conversions Legate renders.
fn check_time_format(f: &str, path: &str) -> Result<()> {
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let spec = match chars.next() {
            Some('E') => match (chars.next(), chars.next()) {
                (Some(d), Some('S')) if d.is_ascii_digit() => continue,
                _ => None,
            },
            Some(d) if d.is_ascii_digit() => match chars.next() {
                Some('f') => continue,
                _ => None,
            },
            Some(s) => Some(s),
            None => None,
        };
        match spec {
            Some('Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'y' | 'j' | 'e' | 'b' | 'a' | 'z' | 'Z' | 's' | 'f' | 'T' | 'F' | '%') => {}
            other => {
                return Err(ConfigError::unsupported_value(
                    path,
                    format!("START_TIME conversion %{}", other.map(String::from).unwrap_or_default()),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(op: Command) -> FormatToken {
        FormatToken::Command { op, max_len: None }
    }

    #[test]
    fn parses_the_default_format() {
        let t = parse_format(DEFAULT_FORMAT, "p").unwrap();
        assert_eq!(t[0], FormatToken::Literal("[".into()));
        assert_eq!(t[1], cmd(Command::StartTime(None)));
        assert!(t.contains(&cmd(Command::Req(HeaderLookup {
            main: "x-envoy-original-path".into(),
            alt: Some(":path".into())
        }))));
        assert_eq!(t.last(), Some(&FormatToken::Literal("\"\n".into())));
    }

    #[test]
    fn truncation_percent_and_time_formats() {
        let t = parse_format("%REQ(X-Foo):3% 100%% %START_TIME(%Y/%m %3f %E3S)%", "p").unwrap();
        assert_eq!(
            t,
            vec![
                FormatToken::Command {
                    op: Command::Req(HeaderLookup { main: "x-foo".into(), alt: None }),
                    max_len: Some(3)
                },
                FormatToken::Literal(" 100% ".into()),
                cmd(Command::StartTime(Some("%Y/%m %3f %E3S".into()))),
            ]
        );
    }

    #[test]
    fn errors() {
        let e = |s: &str| parse_format(s, "p").unwrap_err().to_string();
        assert_eq!(e("%WAT%"), "p: Not supported field in StreamInfo: WAT");
        assert_eq!(e("a %DURATION"), "p: Incorrect configuration: a %DURATION. Couldn't find valid command at position 2");
        assert_eq!(e("%FILTER_STATE(x)%"), "p: access log operator %FILTER_STATE% is not supported by legate");
        assert_eq!(e("%START_TIME(%c)%"), "p: START_TIME conversion %c is not supported by legate");
        assert_eq!(e("%REQ()%"), "p: REQ requires parameters");
        assert_eq!(e("%REQ(a?b?c)%"), "p: More than 1 alternative header specified in token: a?b?c");
        assert_eq!(e("%DURATION(x)%"), "p: DURATION does not take any parameters or length");
        assert_eq!(e("%UPSTREAM_HOST:3%"), "p: UPSTREAM_HOST does not take any parameters or length");
        assert_eq!(e("%START_TIME:3%"), "p: START_TIME does not allow length to be specified.");
    }

    #[test]
    fn comparisons() {
        let c = |op, value| Comparison { op, value };
        assert!(c(ComparisonOp::Ge, 400).matches(404));
        assert!(!c(ComparisonOp::Ge, 400).matches(200));
        assert!(c(ComparisonOp::Le, 10).matches(10));
        assert!(c(ComparisonOp::Eq, 200).matches(200));
        assert!(c(ComparisonOp::Ne, 200).matches(201));
    }
}
