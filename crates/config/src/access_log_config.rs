//! Reading `access_log` entries (`envoy.config.accesslog.v3.AccessLog`) and their filters,
//! file/stdout/stderr logger configs and `SubstitutionFormatString`s.

use serde_json::Value;

use crate::access_log::{
    parse_format, AccessLog, AccessLogFilter, AccessLogSink, Comparison, ComparisonOp, JsonField,
    LogFormat, DEFAULT_FORMAT, RESPONSE_FLAG_NAMES,
};
use crate::error::{ConfigError, Result};
use crate::hcm::unknown_or_unsupported;
use crate::reader::Kind::{self, *};
use crate::reader::{as_array, describe, join, non_empty, required, Obj};

/// Fields of `envoy.config.accesslog.v3.AccessLog`.
const ACCESS_LOG: &[(&str, Kind)] = &[("name", Str), ("filter", Msg), ("typed_config", Oneof)];
/// Fields of `envoy.config.accesslog.v3.AccessLogFilter`.
const FILTER: &[(&str, Kind)] = &[
    ("status_code_filter", Oneof),
    ("duration_filter", Oneof),
    ("not_health_check_filter", Oneof),
    ("traceable_filter", Oneof),
    ("runtime_filter", Oneof),
    ("and_filter", Oneof),
    ("or_filter", Oneof),
    ("header_filter", Oneof),
    ("response_flag_filter", Oneof),
    ("grpc_status_filter", Oneof),
    ("extension_filter", Oneof),
    ("metadata_filter", Oneof),
    ("log_type_filter", Oneof),
];
/// Fields of `StatusCodeFilter` and `DurationFilter`.
const COMPARISON_HOLDER: &[(&str, Kind)] = &[("comparison", Msg)];
/// Fields of `ComparisonFilter`.
const COMPARISON: &[(&str, Kind)] = &[("op", Enum("EQ")), ("value", Msg)];
/// Fields of `envoy.config.core.v3.RuntimeUInt32`.
const RUNTIME_UINT32: &[(&str, Kind)] = &[("default_value", Num), ("runtime_key", Str)];
/// Fields of `ResponseFlagFilter`.
const RESPONSE_FLAG_FILTER: &[(&str, Kind)] = &[("flags", Rep)];
/// Fields of `AndFilter` / `OrFilter`.
const FILTER_LIST: &[(&str, Kind)] = &[("filters", Rep)];
/// Fields of `FileAccessLog`.
const FILE_ACCESS_LOG: &[(&str, Kind)] = &[
    ("path", Str),
    ("format", Oneof),
    ("json_format", Oneof),
    ("typed_json_format", Oneof),
    ("log_format", Oneof),
];
/// Fields of `StdoutAccessLog` / `StderrAccessLog`.
const STREAM_ACCESS_LOG: &[(&str, Kind)] = &[("log_format", Oneof)];
/// Fields of `envoy.config.core.v3.SubstitutionFormatString`.
const SUBSTITUTION_FORMAT_STRING: &[(&str, Kind)] = &[
    ("text_format", Oneof),
    ("json_format", Oneof),
    ("text_format_source", Oneof),
    ("omit_empty_values", Bool),
    ("content_type", Str),
    ("formatters", Rep),
    ("json_format_options", Msg),
];
/// Fields of `envoy.config.core.v3.DataSource`.
const DATA_SOURCE: &[(&str, Kind)] = &[
    ("filename", Oneof),
    ("inline_bytes", Oneof),
    ("inline_string", Oneof),
    ("environment_variable", Oneof),
    ("watched_directory", Msg),
];

const FILE_TYPE: &str = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
const STDOUT_TYPE: &str = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
const STDERR_TYPE: &str = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

/// Reads the `access_log` list of `o`.
pub(crate) fn access_logs(o: &mut Obj<'_>) -> Result<Vec<AccessLog>> {
    o.array("access_log")?.into_iter().map(|(v, p)| access_log(v, &p)).collect()
}

fn access_log(v: &Value, path: &str) -> Result<AccessLog> {
    let mut o = Obj::new(v, path, ACCESS_LOG)?;
    let name = o.string("name")?;
    let filter = match o.take("filter") {
        Some(f) => Some(filter(f, &o.at("filter"))?),
        None => None,
    };
    let config_path = o.at("typed_config");
    let Some(config) = o.take("typed_config") else {
        return Err(ConfigError::invalid(
            config_path,
            format!("Didn't find a registered implementation for '{name}' with type URL: ''"),
        ));
    };
    let (_, url) = Obj::any(config, &config_path, &[])?;
    let (sink, format) = match url {
        FILE_TYPE => {
            let (mut c, _) = Obj::any(config, &config_path, FILE_ACCESS_LOG)?;
            let p = c.at("path");
            let file = c.string("path")?;
            non_empty(&file, &p)?;
            let format = file_format(&mut c)?;
            c.finish()?;
            (AccessLogSink::File(file), format)
        }
        STDOUT_TYPE | STDERR_TYPE => {
            let (mut s, _) = Obj::any(config, &config_path, STREAM_ACCESS_LOG)?;
            let format = match s.take("log_format") {
                Some(f) => substitution_format(f, &s.at("log_format"))?,
                None => default_format()?,
            };
            s.finish()?;
            let sink = if url == STDOUT_TYPE { AccessLogSink::Stdout } else { AccessLogSink::Stderr };
            (sink, format)
        }
        other if other.starts_with("type.googleapis.com/envoy.extensions.access_loggers.") => {
            return Err(ConfigError::unsupported_value(config_path, format!("access logger '{name}' ({other})")))
        }
        other => return Err(unknown_or_unsupported(config_path, "access log", &name, other)),
    };
    o.finish()?;
    Ok(AccessLog { name, filter, sink, format })
}

fn default_format() -> Result<LogFormat> {
    Ok(LogFormat::Text { tokens: parse_format(DEFAULT_FORMAT, "")?, omit_empty_values: false })
}

/// The format of a `FileAccessLog`: `format`, `json_format`, `log_format` or the default.
fn file_format(c: &mut Obj<'_>) -> Result<LogFormat> {
    match c.oneof(&["format", "json_format", "typed_json_format", "log_format"])? {
        Some("format") => {
            let p = c.at("format");
            let text = c.string("format")?;
            Ok(LogFormat::Text { tokens: parse_format(&text, &p)?, omit_empty_values: false })
        }
        Some("json_format") => {
            let p = c.at("json_format");
            let fields = json_fields(c.take("json_format").unwrap_or(&Value::Null), &p)?;
            Ok(LogFormat::Json { fields, omit_empty_values: false })
        }
        Some("log_format") => {
            let p = c.at("log_format");
            substitution_format(c.take("log_format").unwrap_or(&Value::Null), &p)
        }
        Some(other) => Err(ConfigError::unsupported(c.at(other))),
        None => default_format(),
    }
}

/// Reads a `SubstitutionFormatString`.
fn substitution_format(v: &Value, path: &str) -> Result<LogFormat> {
    let mut o = Obj::new(v, path, SUBSTITUTION_FORMAT_STRING)?;
    let omit_empty_values = o.bool("omit_empty_values")?.unwrap_or(false);
    let format = match o.oneof(&["text_format", "json_format", "text_format_source"])? {
        Some("text_format") => {
            let p = o.at("text_format");
            let text = o.string("text_format")?;
            LogFormat::Text { tokens: parse_format(&text, &p)?, omit_empty_values }
        }
        Some("json_format") => {
            let p = o.at("json_format");
            let fields = json_fields(o.take("json_format").unwrap_or(&Value::Null), &p)?;
            LogFormat::Json { fields, omit_empty_values }
        }
        Some(_) => {
            let p = o.at("text_format_source");
            let mut d = Obj::new(o.take("text_format_source").unwrap_or(&Value::Null), &p, DATA_SOURCE)?;
            let inline = d.at("inline_string");
            let Some(text) = d.str("inline_string")? else {
                return match d.oneof(&["filename", "inline_bytes", "environment_variable"])? {
                    Some(other) => Err(ConfigError::unsupported(d.at(other))),
                    None => Err(required(&p)),
                };
            };
            d.finish()?;
            LogFormat::Text { tokens: parse_format(&text, &inline)?, omit_empty_values }
        }
        None => return Err(ConfigError::invalid(path, "one of text_format, json_format, text_format_source is required")),
    };
    o.finish()?;
    Ok(format)
}

/// Reads a `json_format` Struct.
fn json_fields(v: &Value, path: &str) -> Result<Vec<(String, JsonField)>> {
    let Value::Object(map) = v else {
        return Err(ConfigError::invalid(path, format!("expected an object, got {}", describe(v))));
    };
    map.iter()
        .map(|(k, v)| {
            let p = join(path, k);
            let field = match v {
                Value::String(s) => JsonField::Format(parse_format(s, &p)?),
                Value::Object(_) => JsonField::Object(json_fields(v, &p)?),
                Value::Array(_) => return Err(ConfigError::unsupported_value(p, "a list in json_format")),
                other => JsonField::Literal(other.clone()),
            };
            Ok((k.clone(), field))
        })
        .collect()
}

/// Reads an `AccessLogFilter`.
fn filter(v: &Value, path: &str) -> Result<AccessLogFilter> {
    let mut o = Obj::new(v, path, FILTER)?;
    let names = FILTER.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    let Some(which) = o.oneof(&names)? else {
        return Err(ConfigError::invalid(path, "one of the filter types is required"));
    };
    let p = o.at(which);
    let f = match which {
        "status_code_filter" => AccessLogFilter::StatusCode(comparison(o.take("status_code_filter"), &p)?),
        "duration_filter" => AccessLogFilter::Duration(comparison(o.take("duration_filter"), &p)?),
        "not_health_check_filter" => {
            Obj::new(o.take("not_health_check_filter").unwrap_or(&Value::Null), &p, &[])?.finish()?;
            AccessLogFilter::NotHealthCheck
        }
        "response_flag_filter" => {
            let mut r = Obj::new(o.take("response_flag_filter").unwrap_or(&Value::Null), &p, RESPONSE_FLAG_FILTER)?;
            let mut flags = Vec::new();
            for (flag, fp) in r.strings("flags")? {
                if !RESPONSE_FLAG_NAMES.contains(&flag.as_str()) {
                    return Err(ConfigError::invalid(fp, format!("value must be in list {RESPONSE_FLAG_NAMES:?}")));
                }
                flags.push(flag);
            }
            r.finish()?;
            AccessLogFilter::ResponseFlag(flags)
        }
        "and_filter" | "or_filter" => {
            let inner = o.take(if which == "and_filter" { "and_filter" } else { "or_filter" });
            let mut l = Obj::new(inner.unwrap_or(&Value::Null), &p, FILTER_LIST)?;
            let lp = l.at("filters");
            let items = match l.take("filters") {
                Some(v) => as_array(v, &lp)?,
                None => Vec::new(),
            };
            if items.len() < 2 {
                return Err(ConfigError::invalid(lp, "value must contain at least 2 item(s)"));
            }
            let filters = items.into_iter().map(|(v, p)| filter(v, &p)).collect::<Result<Vec<_>>>()?;
            l.finish()?;
            if which == "and_filter" { AccessLogFilter::And(filters) } else { AccessLogFilter::Or(filters) }
        }
        other => return Err(ConfigError::unsupported(o.at(other))),
    };
    o.finish()?;
    Ok(f)
}

/// Reads the `comparison` of a status code or duration filter.
fn comparison(v: Option<&Value>, path: &str) -> Result<Comparison> {
    let mut holder = Obj::new(v.unwrap_or(&Value::Null), path, COMPARISON_HOLDER)?;
    let cp = holder.at("comparison");
    let Some(mut c) = holder.obj("comparison", COMPARISON)? else {
        return Err(required(&cp));
    };
    let op = match c.enumeration("op", &[("EQ", 0), ("GE", 1), ("LE", 2), ("NE", 3)])? {
        Some("GE") => ComparisonOp::Ge,
        Some("LE") => ComparisonOp::Le,
        Some("NE") => ComparisonOp::Ne,
        _ => ComparisonOp::Eq,
    };
    let vp = c.at("value");
    let Some(mut r) = c.obj("value", RUNTIME_UINT32)? else {
        return Err(required(&vp));
    };
    let value = u64::from(r.u32("default_value")?.unwrap_or(0));
    // There is no runtime layer in Legate: the default value is the value, as in an Envoy
    // without runtime overrides.
    r.str("runtime_key")?;
    r.finish()?;
    c.finish()?;
    holder.finish()?;
    Ok(Comparison { op, value })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::access_log::{FormatToken, HeaderLookup};

    fn read(v: Value) -> Result<Vec<AccessLog>> {
        let wrapper = json!({ "access_log": v });
        let mut o = Obj::new(&wrapper, "f", &[("access_log", Rep)])?;
        access_logs(&mut o)
    }

    fn file(extra: Value) -> Value {
        let mut c = json!({"@type": FILE_TYPE, "path": "/tmp/a.log"});
        if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
            c.extend(e);
        }
        json!([{"name": "envoy.access_loggers.file", "typed_config": c}])
    }

    #[test]
    fn file_logger_formats() {
        let l = read(file(json!({}))).unwrap();
        assert_eq!(l[0].sink, AccessLogSink::File("/tmp/a.log".into()));
        assert_eq!(l[0].format, default_format().unwrap());
        let text = |l: &[AccessLog]| match &l[0].format {
            LogFormat::Text { tokens, omit_empty_values } => (tokens.clone(), *omit_empty_values),
            other => panic!("{other:?}"),
        };
        let lit = |s: &str| vec![FormatToken::Literal(s.into())];
        assert_eq!(text(&read(file(json!({"format": "a"}))).unwrap()), (lit("a"), false));
        let inline = json!({"log_format": {"text_format_source": {"inline_string": "b"}, "omit_empty_values": true}});
        assert_eq!(text(&read(file(inline)).unwrap()), (lit("b"), true));
        assert_eq!(text(&read(file(json!({"log_format": {"text_format": "c"}}))).unwrap()), (lit("c"), false));
        let j = read(file(json!({"json_format": {"a": "%REQ(x)%", "n": {"b": 1}}}))).unwrap();
        let LogFormat::Json { fields, .. } = &j[0].format else { panic!() };
        assert_eq!(fields[0].0, "a");
        assert!(matches!(&fields[0].1, JsonField::Format(t) if t == &vec![FormatToken::Command {
            op: crate::access_log::Command::Req(HeaderLookup { main: "x".into(), alt: None }), max_len: None }]));
        assert_eq!(fields[1].1, JsonField::Object(vec![("b".into(), JsonField::Literal(json!(1)))]));
    }

    #[test]
    fn stream_loggers_and_filters() {
        let l = read(json!([{"name": "o", "typed_config": {"@type": STDOUT_TYPE},
            "filter": {"and_filter": {"filters": [
                {"status_code_filter": {"comparison": {"op": "GE", "value": {"default_value": 500, "runtime_key": "k"}}}},
                {"or_filter": {"filters": [{"not_health_check_filter": {}}, {"response_flag_filter": {"flags": ["UF"]}}]}},
                {"duration_filter": {"comparison": {"value": {"default_value": 10}}}}]}}},
            {"name": "e", "typed_config": {"@type": STDERR_TYPE, "log_format": {"text_format": "x"}}}]))
        .unwrap();
        assert_eq!(l[0].sink, AccessLogSink::Stdout);
        assert_eq!(l[1].sink, AccessLogSink::Stderr);
        assert_eq!(
            l[0].filter,
            Some(AccessLogFilter::And(vec![
                AccessLogFilter::StatusCode(Comparison { op: ComparisonOp::Ge, value: 500 }),
                AccessLogFilter::Or(vec![AccessLogFilter::NotHealthCheck, AccessLogFilter::ResponseFlag(vec!["UF".into()])]),
                AccessLogFilter::Duration(Comparison { op: ComparisonOp::Eq, value: 10 }),
            ]))
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let e = |v: Value| read(v).unwrap_err().to_string();
        assert_eq!(e(file(json!({"path": ""}))), "f.access_log[0].typed_config.path: value length must be at least 1 characters");
        assert_eq!(e(file(json!({"typed_json_format": {}}))), "f.access_log[0].typed_config.typed_json_format: not supported by legate");
        assert_eq!(
            e(file(json!({"log_format": {"text_format_source": {"filename": "/x"}}}))),
            "f.access_log[0].typed_config.log_format.text_format_source.filename: not supported by legate"
        );
        assert_eq!(
            e(file(json!({"log_format": {"text_format": "x", "formatters": [{}]}}))),
            "f.access_log[0].typed_config.log_format.formatters: not supported by legate"
        );
        assert_eq!(e(file(json!({"json_format": {"a": [1]}}))), "f.access_log[0].typed_config.json_format.a: a list in json_format is not supported by legate");
        assert_eq!(e(file(json!({"format": "%WAT%"}))), "f.access_log[0].typed_config.format: Not supported field in StreamInfo: WAT");
        let with_filter = |f: Value| json!([{"name": "o", "filter": f, "typed_config": {"@type": STDOUT_TYPE}}]);
        assert_eq!(e(with_filter(json!({"header_filter": {}}))), "f.access_log[0].filter.header_filter: not supported by legate");
        assert_eq!(
            e(with_filter(json!({"or_filter": {"filters": [{"not_health_check_filter": {}}]}}))),
            "f.access_log[0].filter.or_filter.filters: value must contain at least 2 item(s)"
        );
        assert!(e(with_filter(json!({"response_flag_filter": {"flags": ["XX"]}})))
            .starts_with("f.access_log[0].filter.response_flag_filter.flags[0]: value must be in list [\"LH\""));
        assert_eq!(e(with_filter(json!({"status_code_filter": {}}))), "f.access_log[0].filter.status_code_filter.comparison: value is required");
        assert_eq!(
            e(json!([{"name": "g", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"}}])),
            "f.access_log[0].typed_config: access logger 'g' (type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig) is not supported by legate"
        );
        assert_eq!(e(json!([{"name": "x", "typed_config": {"@type": "type.googleapis.com/foo.Bar"}}])), "f.access_log[0].typed_config: could not find @type 'type.googleapis.com/foo.Bar'");
        assert_eq!(e(json!([{"name": "x", "typed_config": {"@type": STDOUT_TYPE, "path": "/x"}}])), "f.access_log[0].typed_config.path: unknown field");
    }
}
