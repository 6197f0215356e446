//! `Cluster.health_checks`: active HTTP, TCP and gRPC health checks.

use std::time::Duration;

use serde_json::Value;

use crate::action::base64_decode;
use crate::error::{ConfigError, Result};
use crate::headers::{headers_to_add, headers_to_remove};
use crate::model::{
    FormatPart, GrpcHealthCheck, HealthCheck, HealthCheckHeader, HealthChecker, HttpHealthCheck,
    TcpHealthCheck,
};
use crate::proto;
use crate::reader::{as_array, non_empty, required, Obj};

const DEFAULT_NO_TRAFFIC_INTERVAL: Duration = Duration::from_secs(60);
const METHODS: &[(&str, i64)] = &[
    ("METHOD_UNSPECIFIED", 0),
    ("GET", 1),
    ("HEAD", 2),
    ("POST", 3),
    ("PUT", 4),
    ("DELETE", 5),
    ("CONNECT", 6),
    ("OPTIONS", 7),
    ("TRACE", 8),
    ("PATCH", 9),
];

/// Reads `health_checks` (the field at `path`); Legate runs at most one health check per cluster.
pub(crate) fn health_checks(v: Option<&Value>, path: &str) -> Result<Option<HealthCheck>> {
    let Some(v) = v else { return Ok(None) };
    let items = as_array(v, path)?;
    match items.as_slice() {
        [] => Ok(None),
        [(hc, p)] => health_check(hc, p).map(Some),
        [_, (_, p), ..] => Err(ConfigError::unsupported_value(
            p.clone(),
            "more than one health check per cluster",
        )),
    }
}

/// A `Duration` that protoc-gen-validate requires to be greater than 0 when set.
fn positive(o: &mut Obj<'_>, name: &'static str) -> Result<Option<Duration>> {
    let p = o.at(name);
    match o.duration(name)? {
        Some(d) if d.is_zero() => Err(ConfigError::invalid(p, "value must be greater than 0s")),
        other => Ok(other),
    }
}

fn health_check(v: &Value, path: &str) -> Result<HealthCheck> {
    let mut o = Obj::new(v, path, proto::HEALTH_CHECK)?;
    let timeout = positive(&mut o, "timeout")?.ok_or_else(|| required(&o.at("timeout")))?;
    let interval = positive(&mut o, "interval")?.ok_or_else(|| required(&o.at("interval")))?;
    let initial_jitter = o.duration("initial_jitter")?.unwrap_or_default();
    let interval_jitter = o.duration("interval_jitter")?.unwrap_or_default();
    let interval_jitter_percent = o.u32("interval_jitter_percent")?.unwrap_or(0);
    let unhealthy_threshold = o
        .u32("unhealthy_threshold")?
        .ok_or_else(|| required(&o.at("unhealthy_threshold")))?;
    let healthy_threshold = o
        .u32("healthy_threshold")?
        .ok_or_else(|| required(&o.at("healthy_threshold")))?;
    let alt_port_path = o.at("alt_port");
    let alt_port = match o.u32("alt_port")? {
        None | Some(0) => None,
        Some(p) => Some(u16::try_from(p).map_err(|_| {
            ConfigError::invalid(alt_port_path, format!("port {p} is out of range"))
        })?),
    };
    let reuse_connection = o.bool("reuse_connection")?.unwrap_or(true);
    let no_traffic_interval =
        positive(&mut o, "no_traffic_interval")?.unwrap_or(DEFAULT_NO_TRAFFIC_INTERVAL);
    let no_traffic_healthy_interval =
        positive(&mut o, "no_traffic_healthy_interval")?.unwrap_or(no_traffic_interval);
    let unhealthy_interval = positive(&mut o, "unhealthy_interval")?.unwrap_or(interval);
    let unhealthy_edge_interval =
        positive(&mut o, "unhealthy_edge_interval")?.unwrap_or(unhealthy_interval);
    let healthy_edge_interval = positive(&mut o, "healthy_edge_interval")?.unwrap_or(interval);

    let kinds = [
        "http_health_check",
        "tcp_health_check",
        "grpc_health_check",
        "custom_health_check",
    ];
    let checker = match o.oneof(&kinds)? {
        Some("http_health_check") => {
            let p = o.at("http_health_check");
            let v = o.take("http_health_check");
            HealthChecker::Http(http_health_check(v.unwrap_or(&Value::Null), &p)?)
        }
        Some("tcp_health_check") => {
            let p = o.at("tcp_health_check");
            let v = o.take("tcp_health_check");
            HealthChecker::Tcp(tcp_health_check(v.unwrap_or(&Value::Null), &p)?)
        }
        Some("grpc_health_check") => {
            let p = o.at("grpc_health_check");
            let v = o.take("grpc_health_check");
            HealthChecker::Grpc(grpc_health_check(v.unwrap_or(&Value::Null), &p)?)
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "health_checker is required (http_health_check, tcp_health_check or grpc_health_check)",
            ))
        }
    };
    o.finish()?;
    Ok(HealthCheck {
        timeout,
        interval,
        initial_jitter,
        interval_jitter,
        interval_jitter_percent,
        unhealthy_threshold,
        healthy_threshold,
        alt_port,
        reuse_connection,
        no_traffic_interval,
        no_traffic_healthy_interval,
        unhealthy_interval,
        unhealthy_edge_interval,
        healthy_edge_interval,
        checker,
    })
}

fn http_health_check(v: &Value, path: &str) -> Result<HttpHealthCheck> {
    let mut o = Obj::new(v, path, proto::HTTP_HEALTH_CHECK)?;
    let host = o.string("host")?;
    let path_path = o.at("path");
    let request_path = o.string("path")?;
    non_empty(&request_path, &path_path)?;
    if request_path.contains(['\0', '\r', '\n', ' ']) {
        return Err(ConfigError::invalid(
            path_path,
            format!("{request_path:?} is not a valid request path"),
        ));
    }
    if host.contains(['\0', '\r', '\n']) {
        return Err(ConfigError::invalid(
            o.at("host"),
            format!("{host:?} contains a NUL, CR or LF character"),
        ));
    }
    let method_path = o.at("method");
    let method = match o.enumeration("method", METHODS)? {
        None | Some("METHOD_UNSPECIFIED") => "GET",
        Some("CONNECT") => {
            return Err(ConfigError::invalid(
                method_path,
                "value must not be in list [CONNECT]",
            ))
        }
        Some(m) => m,
    };
    let expected = statuses(&mut o, "expected_statuses", "expected")?;
    let expected_statuses = if expected.is_empty() {
        vec![(200, 201)]
    } else {
        expected
    };
    let retriable_statuses = statuses(&mut o, "retriable_statuses", "retriable")?;
    let request_headers_to_add = literal_headers(&mut o, "request_headers_to_add")?;
    let request_headers_to_remove = headers_to_remove(&mut o, "request_headers_to_remove")?;
    let codec_path = o.at("codec_client_type");
    let http2 = match o.enumeration(
        "codec_client_type",
        &[("HTTP1", 0), ("HTTP2", 1), ("HTTP3", 2)],
    )? {
        None | Some("HTTP1") => false,
        Some("HTTP2") => true,
        Some(c) => {
            return Err(ConfigError::unsupported_value(
                codec_path,
                format!("codec_client_type {c}"),
            ))
        }
    };
    o.finish()?;
    Ok(HttpHealthCheck {
        host,
        path: request_path,
        method: method.to_string(),
        expected_statuses,
        retriable_statuses,
        request_headers_to_add,
        request_headers_to_remove,
        http2,
    })
}

fn grpc_health_check(v: &Value, path: &str) -> Result<GrpcHealthCheck> {
    let mut o = Obj::new(v, path, proto::GRPC_HEALTH_CHECK)?;
    let service_name = o.string("service_name")?;
    let authority = o.string("authority")?;
    if authority.contains(['\0', '\r', '\n']) {
        return Err(ConfigError::invalid(
            o.at("authority"),
            format!("{authority:?} contains a NUL, CR or LF character"),
        ));
    }
    let initial_metadata = literal_headers(&mut o, "initial_metadata")?;
    o.finish()?;
    Ok(GrpcHealthCheck {
        service_name,
        authority,
        initial_metadata,
    })
}

/// Reads the `HeaderValueOption` list `name` as headers with literal values.
fn literal_headers(o: &mut Obj<'_>, name: &'static str) -> Result<Vec<HealthCheckHeader>> {
    let path = o.at(name);
    headers_to_add(o, name)?
        .into_iter()
        .enumerate()
        .map(|(i, h)| literal_header(h, &crate::reader::index(&path, i)))
        .collect()
}

/// A health check header with a literal value that HTTP can carry.
fn literal_header(h: crate::model::HeaderValueOption, path: &str) -> Result<HealthCheckHeader> {
    let mut value = String::new();
    for part in h.value.parts {
        match part {
            FormatPart::Literal(text) => value.push_str(&text),
            _ => {
                return Err(ConfigError::unsupported_value(
                    format!("{path}.header.value"),
                    "a substitution in a health check header",
                ))
            }
        }
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !h.key.bytes().all(tchar) {
        return Err(ConfigError::invalid(
            format!("{path}.header.key"),
            format!("{:?} is not a valid header name", h.key),
        ));
    }
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(ConfigError::invalid(
            format!("{path}.header.value"),
            format!("{value:?} contains a control character"),
        ));
    }
    Ok(HealthCheckHeader {
        name: h.key,
        value,
        append_action: h.append_action,
        keep_empty_value: h.keep_empty_value,
    })
}

/// Reads a list of `Int64Range` status ranges with Envoy's checks.
fn statuses(o: &mut Obj<'_>, name: &'static str, what: &str) -> Result<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for (v, p) in o.array(name)? {
        let mut r = Obj::new(v, &p, proto::INT64_RANGE)?;
        let start = r.i64("start")?.unwrap_or(0);
        let end = r.i64("end")?.unwrap_or(0);
        r.finish()?;
        let invalid = |m: String| {
            Err(ConfigError::invalid(
                &p,
                format!("Invalid http {what} status range: {m}"),
            ))
        };
        if start < 100 {
            return invalid(format!("expecting start >= 100, but found start={start}"));
        }
        if end > 600 {
            return invalid(format!("expecting end <= 600, but found end={end}"));
        }
        if start >= end {
            return invalid(format!(
                "expecting start < end, but found start={start} and end={end}"
            ));
        }
        // 100 <= start < end <= 600: both fit in u16.
        out.push((start as u16, end as u16));
    }
    Ok(out)
}

fn tcp_health_check(v: &Value, path: &str) -> Result<TcpHealthCheck> {
    let mut o = Obj::new(v, path, proto::TCP_HEALTH_CHECK)?;
    let send_path = o.at("send");
    let send = match o.take("send") {
        Some(s) => payload(s, &send_path)?,
        None => Vec::new(),
    };
    let receive = o
        .array("receive")?
        .into_iter()
        .map(|(v, p)| payload(v, &p))
        .collect::<Result<_>>()?;
    o.finish()?;
    Ok(TcpHealthCheck { send, receive })
}

/// Reads a `Payload`: `text` is hex, `binary` is base64 (protobuf JSON bytes).
fn payload(v: &Value, path: &str) -> Result<Vec<u8>> {
    let mut o = Obj::new(v, path, proto::PAYLOAD)?;
    let bytes = match o.oneof(&["text", "binary"])? {
        Some("text") => {
            let p = o.at("text");
            let text = o.string("text")?;
            non_empty(&text, &p)?;
            hex_decode(&text)
                .ok_or_else(|| ConfigError::invalid(p, format!("invalid hex string '{text}'")))?
        }
        Some(_) => {
            let p = o.at("binary");
            let text = o.string("binary")?;
            let bytes = base64_decode(&text)
                .ok_or_else(|| ConfigError::invalid(&p, "invalid base64 data"))?;
            if bytes.is_empty() {
                return Err(ConfigError::invalid(
                    p,
                    "value length must be at least 1 bytes",
                ));
            }
            bytes
        }
        None => {
            return Err(ConfigError::invalid(
                path,
                "payload is required (text or binary)",
            ))
        }
    };
    o.finish()?;
    Ok(bytes)
}

/// Decodes hex text (either case); `None` when it is not whole bytes of hex digits.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests;
