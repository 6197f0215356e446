//! Renders a [`LogRecord`] with a text or JSON format, as Envoy does: missing values are `-` in
//! text and `null` in JSON, where a lone command keeps its type (numbers stay numbers) and keys
//! are sorted.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use http::HeaderValue;
use legate_config::access_log::{Command, FormatToken, HeaderLookup, JsonField, LogFormat};

use super::time::format_time;
use super::LogRecord;

/// A record being rendered at the end of its stream.
pub(super) struct Eval<'a> {
    /// The record.
    pub rec: &'a LogRecord,
    /// The stream's total duration.
    pub duration: Duration,
}

/// A command's value.
#[derive(Debug, PartialEq)]
enum Val<'a> {
    Missing,
    Str(Cow<'a, str>),
    Num(u64),
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn header<'a>(names: &[String], values: &'a [Option<HeaderValue>], lookup: &HeaderLookup) -> Val<'a> {
    let find = |name: &str| {
        let i = names.iter().position(|n| n == name)?;
        values.get(i)?.as_ref()
    };
    match find(&lookup.main).or_else(|| lookup.alt.as_deref().and_then(find)) {
        Some(v) => Val::Str(String::from_utf8_lossy(v.as_bytes())),
        None => Val::Missing,
    }
}

fn opt_str(v: Option<&str>) -> Val<'_> {
    v.map_or(Val::Missing, |s| Val::Str(Cow::Borrowed(s)))
}

impl Eval<'_> {
    fn value(&self, op: &Command) -> Val<'_> {
        let r = self.rec;
        let logs = &r.logs;
        match op {
            Command::StartTime(fmt) => Val::Str(Cow::Owned(format_time(r.start_time, fmt.as_deref()))),
            Command::Req(l) => header(&logs.request_headers, &r.request_headers, l),
            Command::Resp(l) => header(&logs.response_headers, &r.response_headers, l),
            Command::Trailer(l) => header(&logs.trailers, &r.trailers, l),
            Command::ResponseCode => Val::Num(u64::from(r.response_code)),
            Command::ResponseFlags => Val::Str(Cow::Owned(r.flags.short_names())),
            Command::ResponseCodeDetails => opt_str(r.details.as_deref()),
            Command::BytesReceived => Val::Num(r.bytes_received()),
            Command::BytesSent => Val::Num(r.bytes_sent),
            Command::Duration => Val::Num(ms(self.duration)),
            Command::RequestDuration => r.request_duration().map_or(Val::Missing, |d| Val::Num(ms(d))),
            Command::ResponseDuration => r.response_started.map_or(Val::Missing, |d| Val::Num(ms(d))),
            Command::UpstreamHost => r.upstream_host.map_or(Val::Missing, |a| Val::Str(Cow::Owned(a.to_string()))),
            Command::UpstreamCluster => opt_str(r.upstream_cluster.as_deref()),
            Command::UpstreamTransportFailureReason => opt_str(r.transport_failure.as_deref()),
            Command::DownstreamRemoteAddress => Val::Str(Cow::Owned(r.downstream_remote.to_string())),
            Command::DownstreamRemoteAddressWithoutPort => Val::Str(Cow::Owned(r.downstream_remote.ip().to_string())),
            Command::DownstreamLocalAddress => Val::Str(Cow::Owned(r.downstream_local.to_string())),
            Command::Protocol => opt_str(r.protocol),
            Command::RouteName => opt_str(r.route_name.as_deref()),
            Command::Hostname => Val::Str(Cow::Borrowed(&logs.hostname)),
        }
    }

    /// The value of a command token, truncated to `max_len` bytes (at a char boundary).
    fn token_value(&self, op: &Command, max_len: Option<usize>) -> Val<'_> {
        match (self.value(op), max_len) {
            (Val::Str(s), Some(n)) if s.len() > n => {
                let mut cut = n;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                Val::Str(Cow::Owned(s[..cut].to_string()))
            }
            (v, _) => v,
        }
    }

    /// Renders tokens as text; a missing value is `-` (nothing with `omit_empty`).
    fn text(&self, tokens: &[FormatToken], omit_empty: bool, out: &mut String) {
        for t in tokens {
            match t {
                FormatToken::Literal(s) => out.push_str(s),
                FormatToken::Command { op, max_len } => match self.token_value(op, *max_len) {
                    Val::Missing if omit_empty => {}
                    Val::Missing => out.push('-'),
                    Val::Str(s) => out.push_str(&s),
                    Val::Num(n) => {
                        let _ = write!(out, "{n}");
                    }
                },
            }
        }
    }
}

/// Renders one log line (JSON lines end with a newline; text formats carry their own).
pub(super) fn render(format: &LogFormat, e: &Eval<'_>) -> String {
    let mut out = String::with_capacity(256);
    match format {
        LogFormat::Text { tokens, omit_empty_values } => e.text(tokens, *omit_empty_values, &mut out),
        LogFormat::Json { fields, omit_empty_values } => {
            json_object(fields, e, *omit_empty_values, &mut out);
            out.push('\n');
        }
    }
    out
}

fn json_object(fields: &[(String, JsonField)], e: &Eval<'_>, omit_empty: bool, out: &mut String) {
    let mut sorted: Vec<&(String, JsonField)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    let mut first = true;
    for (key, field) in sorted {
        let mut value = String::new();
        match field {
            JsonField::Object(inner) => json_object(inner, e, omit_empty, &mut value),
            JsonField::Literal(v) => value.push_str(&v.to_string()),
            JsonField::Format(tokens) => match &tokens[..] {
                [FormatToken::Command { op, max_len }] => match e.token_value(op, *max_len) {
                    Val::Missing if omit_empty => continue,
                    Val::Missing => value.push_str("null"),
                    Val::Num(n) => {
                        let _ = write!(value, "{n}");
                    }
                    Val::Str(s) => json_string(&s, &mut value),
                },
                _ => {
                    let mut text = String::new();
                    e.text(tokens, omit_empty, &mut text);
                    json_string(&text, &mut value);
                }
            },
        }
        if !first {
            out.push(',');
        }
        first = false;
        json_string(key, out);
        out.push(':');
        out.push_str(&value);
    }
    out.push('}');
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;
    use std::time::{Instant, UNIX_EPOCH};

    use legate_config::access_log::parse_format;
    use legate_stats::Store;

    use super::super::AccessLogs;
    use super::*;

    pub(crate) fn logs(formats: &[&str]) -> Arc<AccessLogs> {
        let dir = std::env::temp_dir().join(format!("legate-fmt-{}", std::process::id()));
        let configs: Vec<_> = formats
            .iter()
            .map(|f| legate_config::access_log::AccessLog {
                name: "t".into(),
                filter: None,
                sink: legate_config::access_log::AccessLogSink::File(dir.to_string_lossy().into_owned()),
                format: LogFormat::Text { tokens: parse_format(f, "p").unwrap(), omit_empty_values: false },
            })
            .collect();
        AccessLogs::new(&configs, "box", &Store::new(), Duration::from_secs(1)).unwrap().unwrap()
    }

    fn text(format: &str, fill: impl FnOnce(&mut LogRecord)) -> String {
        let l = logs(&[format]);
        let mut r = l.record(Instant::now(), http::Version::HTTP_11, "10.0.0.1:5000".parse().unwrap(), "127.0.0.1:80".parse().unwrap());
        r.start_time = UNIX_EPOCH + Duration::from_millis(1_795_956_549_008);
        fill(&mut r);
        let e = Eval { rec: &r, duration: Duration::from_millis(12) };
        render(&l.loggers[0].format, &e)
    }

    #[test]
    fn default_format_line() {
        let line = text(legate_config::access_log::DEFAULT_FORMAT, |r| {
            let mut h = http::HeaderMap::new();
            h.insert("host", "example.com".parse().unwrap());
            h.insert("user-agent", "curl/8".parse().unwrap());
            r.capture_request(&http::Method::GET, "/x?y", &h, true);
            let mut resp = http::HeaderMap::new();
            resp.insert("x-envoy-upstream-service-time", "3".parse().unwrap());
            r.capture_response(200, &resp);
            r.sent(5);
            r.host("127.0.0.1:8000".parse().unwrap());
        });
        assert_eq!(
            line,
            "[2026-11-29T12:49:09.008Z] \"GET /x?y HTTP/1.1\" 200 - 0 5 12 3 \"-\" \"curl/8\" \"-\" \"example.com\" \"127.0.0.1:8000\"\n"
        );
    }

    #[test]
    fn alternatives_truncation_and_flags() {
        let line = text("%REQ(X-A?X-B)% %REQ(X-B):2% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_TRANSPORT_FAILURE_REASON% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %HOSTNAME% %ROUTE_NAME%", |r| {
            let mut h = http::HeaderMap::new();
            h.insert("x-b", "héllo".parse::<HeaderValue>().unwrap_or(HeaderValue::from_static("hello")));
            r.capture_request(&http::Method::GET, "/", &h, true);
            r.fail(Some("UF"), "upstream_reset_before_response_started{x}");
            r.transport_failure(Some("delayed connect error: Connection refused".into()));
            r.route("r1");
        });
        assert_eq!(line, "héllo h UF upstream_reset_before_response_started{x} delayed_connect_error:_Connection_refused 10.0.0.1 box r1");
    }

    #[test]
    fn json_types_nulls_and_sorting() {
        let l = logs(&["x"]);
        let r = l.record(Instant::now(), http::Version::HTTP_2, "10.0.0.1:5000".parse().unwrap(), "127.0.0.1:80".parse().unwrap());
        let t = |s: &str| JsonField::Format(parse_format(s, "p").unwrap());
        let fields = vec![
            ("zeta".to_string(), t("%RESPONSE_CODE%")),
            ("alpha".to_string(), t("%REQ(X-MISSING)%")),
            ("mixed".to_string(), t("c=%RESPONSE_CODE% %REQ(X)%")),
            ("nested".to_string(), JsonField::Object(vec![("p".into(), t("%PROTOCOL%")), ("n".into(), JsonField::Literal(5.into()))])),
            ("quote".to_string(), t("a\"b")),
        ];
        let e = Eval { rec: &r, duration: Duration::ZERO };
        let line = render(&LogFormat::Json { fields: fields.clone(), omit_empty_values: false }, &e);
        assert_eq!(line, "{\"alpha\":null,\"mixed\":\"c=0 -\",\"nested\":{\"n\":5,\"p\":\"HTTP/2\"},\"quote\":\"a\\\"b\",\"zeta\":0}\n");
        let omitted = render(&LogFormat::Json { fields, omit_empty_values: true }, &e);
        assert_eq!(omitted, "{\"mixed\":\"c=0 \",\"nested\":{\"n\":5,\"p\":\"HTTP/2\"},\"quote\":\"a\\\"b\",\"zeta\":0}\n");
    }
}
