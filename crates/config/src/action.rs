//! Route actions: `RouteAction` (forwarding), `RedirectAction` and `DirectResponseAction`.

use std::time::Duration;

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::headers::mutations;
use crate::matcher::regex;
use crate::model::{
    ClusterTarget, ForwardAction, HashPolicy, HashSource, HostRewrite, MaxStreamDuration, PathRedirect,
    RedirectAction, RegexMatcher, RouteAction, WeightedCluster,
};
use crate::proto;
use crate::reader::{header_chars, non_empty, required, Obj};
use crate::route::RouteContext;

/// Default `RouteAction.timeout`.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

fn check_cluster(name: &str, path: &str, ctx: &RouteContext<'_>, kind: &str) -> Result<()> {
    match ctx.clusters {
        Some(known) if !known.contains(name) => Err(ConfigError::invalid(
            path,
            format!("unknown {kind}cluster '{name}'"),
        )),
        _ => Ok(()),
    }
}

/// Reads a `RegexMatchAndSubstitute`.
fn regex_rewrite(v: &Value, path: &str) -> Result<(RegexMatcher, String)> {
    let mut o = Obj::new(v, path, proto::REGEX_MATCH_AND_SUBSTITUTE)?;
    let pattern_path = o.at("pattern");
    let pattern = regex(
        o.take("pattern").ok_or_else(|| required(&pattern_path))?,
        &pattern_path,
    )?;
    let substitution = o.string("substitution")?;
    o.finish()?;
    Ok((pattern, substitution))
}

/// Reads a `RouteAction` (`route:`).
pub(crate) fn forward(v: &Value, path: &str, ctx: &RouteContext<'_>) -> Result<ForwardAction> {
    let mut o = Obj::new(v, path, proto::ROUTE_ACTION)?;
    let specifiers = [
        "cluster",
        "cluster_header",
        "weighted_clusters",
        "cluster_specifier_plugin",
        "inline_cluster_specifier_plugin",
    ];
    let target = match o.oneof(&specifiers)? {
        Some("cluster") => {
            let p = o.at("cluster");
            let name = o.string("cluster")?;
            non_empty(&name, &p)?;
            check_cluster(&name, &p, ctx, "")?;
            ClusterTarget::Cluster(name)
        }
        Some("cluster_header") => {
            let p = o.at("cluster_header");
            let header = o.string("cluster_header")?;
            non_empty(&header, &p)?;
            header_chars(&header, &p)?;
            ClusterTarget::ClusterHeader(header.to_ascii_lowercase())
        }
        Some("weighted_clusters") => {
            let p = o.at("weighted_clusters");
            ClusterTarget::Weighted(weighted_clusters(
                o.take("weighted_clusters").unwrap_or(&Value::Null),
                &p,
                ctx,
            )?)
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "one of cluster, cluster_header, weighted_clusters is required",
            ))
        }
    };

    let prefix_rewrite = o.str("prefix_rewrite")?.filter(|s| !s.is_empty());
    let regex_path = o.at("regex_rewrite");
    let regex_rewrite = o
        .take("regex_rewrite")
        .map(|r| regex_rewrite(r, &regex_path))
        .transpose()?;
    if prefix_rewrite.is_some() && regex_rewrite.is_some() {
        return Err(ConfigError::invalid(
            regex_path,
            "Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy",
        ));
    }

    let host_specifiers = [
        "host_rewrite_literal",
        "auto_host_rewrite",
        "host_rewrite_header",
        "host_rewrite_path_regex",
        "host_rewrite",
    ];
    let host_rewrite = match o.oneof(&host_specifiers)? {
        None => HostRewrite::None,
        Some("host_rewrite_literal") => {
            let p = o.at("host_rewrite_literal");
            let host = o.string("host_rewrite_literal")?;
            header_chars(&host, &p)?;
            HostRewrite::Literal(host)
        }
        Some("auto_host_rewrite") => {
            if o.bool("auto_host_rewrite")?.unwrap_or(false) {
                HostRewrite::Auto
            } else {
                HostRewrite::None
            }
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
    };

    let timeout = o.timeout("timeout", Some(DEFAULT_ROUTE_TIMEOUT))?;
    let idle_timeout = o.duration("idle_timeout")?;
    let max_stream_duration = match o.obj("max_stream_duration", proto::MAX_STREAM_DURATION)? {
        Some(mut m) => {
            let limits = MaxStreamDuration {
                max_stream_duration: m.duration("max_stream_duration")?,
                grpc_timeout_header_max: m.duration("grpc_timeout_header_max")?,
                grpc_timeout_header_offset: m.duration("grpc_timeout_header_offset")?,
            };
            m.finish()?;
            Some(limits)
        }
        None => None,
    };
    let mut hash_policy = Vec::new();
    for (h, p) in o.array("hash_policy")? {
        if let Some(policy) = hash_policy_entry(h, &p)? {
            hash_policy.push(policy);
        }
    }
    let retry_path = o.at("retry_policy");
    // A route's retry_policy replaces its virtual host's (Envoy does not merge them).
    let retry_policy = match o.take("retry_policy") {
        Some(r) => Some(crate::retry::retry_policy(r, &retry_path)?),
        None => ctx.retry_policy.clone(),
    };
    o.finish()?;
    Ok(ForwardAction {
        target,
        prefix_rewrite,
        regex_rewrite,
        host_rewrite,
        timeout,
        idle_timeout,
        max_stream_duration,
        hash_policy,
        retry_policy,
        retry_buffer_limit: ctx.buffer_limit,
        attempt_count: ctx.attempt_count,
    })
}

/// Reads `weighted_clusters`.
fn weighted_clusters(
    v: &Value,
    path: &str,
    ctx: &RouteContext<'_>,
) -> Result<Vec<WeightedCluster>> {
    let mut o = Obj::new(v, path, proto::WEIGHTED_CLUSTER)?;
    let clusters_path = o.at("clusters");
    let mut out = Vec::new();
    let mut sum: u64 = 0;
    for (c, p) in o.array("clusters")? {
        let mut w = Obj::new(c, &p, proto::CLUSTER_WEIGHT)?;
        if w.is_set("cluster_header") {
            return Err(ConfigError::unsupported(w.at("cluster_header")));
        }
        let name_path = w.at("name");
        let name = w.string("name")?;
        non_empty(&name, &name_path)?;
        check_cluster(&name, &name_path, ctx, "weighted ")?;
        let weight = w.u32("weight")?.unwrap_or(0);
        sum += u64::from(weight);
        let headers = mutations(&mut w)?;
        w.finish()?;
        out.push(WeightedCluster {
            name,
            weight,
            headers,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::invalid(
            clusters_path,
            "value must contain at least 1 item(s)",
        ));
    }
    // Deprecated; Envoy 1.40 ignores it and uses the sum of the weights.
    o.u32("total_weight")?;
    if sum == 0 {
        return Err(ConfigError::invalid(
            clusters_path,
            "Sum of weights in the weighted_cluster must be greater than 0.",
        ));
    }
    if sum > u64::from(u32::MAX) {
        return Err(ConfigError::invalid(
            clusters_path,
            format!(
                "The sum of weights of all weighted clusters exceeds {}",
                u32::MAX
            ),
        ));
    }
    o.finish()?;
    Ok(out)
}

/// Reads one `hash_policy` entry; `None` for a policy that never produces a hash.
fn hash_policy_entry(v: &Value, path: &str) -> Result<Option<HashPolicy>> {
    let mut o = Obj::new(v, path, proto::HASH_POLICY)?;
    let which = o.oneof(&[
        "header",
        "cookie",
        "connection_properties",
        "query_parameter",
        "filter_state",
    ])?;
    let source = match which {
        Some("header") => {
            let p = o.at("header");
            let mut h = o
                .obj("header", proto::HASH_POLICY_HEADER)?
                .ok_or_else(|| required(&p))?;
            let name_path = h.at("header_name");
            let name = h.string("header_name")?;
            non_empty(&name, &name_path)?;
            header_chars(&name, &name_path)?;
            h.finish()?;
            Some(HashSource::Header(name.to_ascii_lowercase()))
        }
        Some("cookie") => {
            let p = o.at("cookie");
            let mut c = o
                .obj("cookie", proto::HASH_POLICY_COOKIE)?
                .ok_or_else(|| required(&p))?;
            let name_path = c.at("name");
            let name = c.string("name")?;
            non_empty(&name, &name_path)?;
            c.finish()?;
            Some(HashSource::Cookie(name))
        }
        Some("connection_properties") => {
            let p = o.at("connection_properties");
            let mut c = o
                .obj(
                    "connection_properties",
                    proto::HASH_POLICY_CONNECTION_PROPERTIES,
                )?
                .ok_or_else(|| required(&p))?;
            let source_ip = c.bool("source_ip")?.unwrap_or(false);
            c.finish()?;
            // Like Envoy, `source_ip: false` configures nothing to hash.
            source_ip.then_some(HashSource::SourceIp)
        }
        Some("query_parameter") => {
            let p = o.at("query_parameter");
            let mut q = o
                .obj("query_parameter", proto::HASH_POLICY_QUERY_PARAMETER)?
                .ok_or_else(|| required(&p))?;
            let name_path = q.at("name");
            let name = q.string("name")?;
            non_empty(&name, &name_path)?;
            q.finish()?;
            Some(HashSource::QueryParameter(name))
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "one of header, cookie, connection_properties, query_parameter is required",
            ))
        }
    };
    let terminal = o.bool("terminal")?.unwrap_or(false);
    o.finish()?;
    Ok(source.map(|source| HashPolicy { source, terminal }))
}

/// Reads a `RedirectAction`.
pub(crate) fn redirect(v: &Value, path: &str) -> Result<RedirectAction> {
    let mut o = Obj::new(v, path, proto::REDIRECT_ACTION)?;
    let scheme = match o.oneof(&["https_redirect", "scheme_redirect"])? {
        Some("https_redirect") => o
            .bool("https_redirect")?
            .unwrap_or(false)
            .then(|| "https".to_string()),
        Some(_) => o.str("scheme_redirect")?.filter(|s| !s.is_empty()),
        None => None,
    };
    let host_path = o.at("host_redirect");
    let host = o.str("host_redirect")?.filter(|s| !s.is_empty());
    if let Some(h) = &host {
        header_chars(h, &host_path)?;
    }
    let port_path = o.at("port_redirect");
    let port = match o.u32("port_redirect")?.unwrap_or(0) {
        0 => None,
        p => Some(u16::try_from(p).map_err(|_| {
            ConfigError::invalid(port_path, "value must be less than or equal to 65535")
        })?),
    };
    let path_redirect = match o.oneof(&[
        "path_redirect",
        "prefix_rewrite",
        "regex_rewrite",
        "path_rewrite",
    ])? {
        Some(name @ ("path_redirect" | "prefix_rewrite")) => {
            let p = o.at(name);
            let value = o.string(name)?;
            header_chars(&value, &p)?;
            match name {
                "path_redirect" => (!value.is_empty()).then_some(PathRedirect::Path(value)),
                _ => Some(PathRedirect::PrefixRewrite(value)),
            }
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => None,
    };
    let codes = [
        ("MOVED_PERMANENTLY", 0),
        ("FOUND", 1),
        ("SEE_OTHER", 2),
        ("TEMPORARY_REDIRECT", 3),
        ("PERMANENT_REDIRECT", 4),
    ];
    let status = match o
        .enumeration("response_code", &codes)?
        .unwrap_or("MOVED_PERMANENTLY")
    {
        "FOUND" => 302,
        "SEE_OTHER" => 303,
        "TEMPORARY_REDIRECT" => 307,
        "PERMANENT_REDIRECT" => 308,
        _ => 301,
    };
    let strip_query = o.bool("strip_query")?.unwrap_or(false);
    o.finish()?;
    Ok(RedirectAction {
        scheme,
        host,
        port,
        path: path_redirect,
        status,
        strip_query,
    })
}

/// Reads a `DirectResponseAction`.
pub(crate) fn direct_response(
    v: &Value,
    path: &str,
    ctx: &RouteContext<'_>,
) -> Result<RouteAction> {
    let mut o = Obj::new(v, path, proto::DIRECT_RESPONSE_ACTION)?;
    let status_path = o.at("status");
    let status = o.u32("status")?.unwrap_or(0);
    if !(200..600).contains(&status) {
        return Err(ConfigError::invalid(
            status_path,
            "value must be inside range [200, 600)",
        ));
    }
    let body_path = o.at("body");
    let body = o
        .take("body")
        .map(|b| data_source(b, &body_path))
        .transpose()?;
    if let Some(b) = &body {
        if b.len() > ctx.max_direct_response_body {
            return Err(ConfigError::invalid(
                body_path,
                format!(
                    "response body size is {} bytes; maximum is {}",
                    b.len(),
                    ctx.max_direct_response_body
                ),
            ));
        }
    }
    o.finish()?;
    Ok(RouteAction::DirectResponse {
        status: status as u16,
        body,
    })
}

/// Reads a `DataSource` as text (files are read now, like Envoy does at load time).
pub(crate) fn data_source(v: &Value, path: &str) -> Result<String> {
    let mut o = Obj::new(v, path, proto::DATA_SOURCE)?;
    let which = o.oneof(&[
        "filename",
        "inline_bytes",
        "inline_string",
        "environment_variable",
    ])?;
    let text =
        match which {
            Some("inline_string") => o.string("inline_string")?,
            Some("inline_bytes") => {
                let p = o.at("inline_bytes");
                let encoded = o.string("inline_bytes")?;
                let bytes = base64_decode(&encoded)
                    .ok_or_else(|| ConfigError::invalid(&p, "invalid base64 data"))?;
                String::from_utf8(bytes)
                    .map_err(|_| ConfigError::unsupported_value(&p, "a non-UTF-8 body"))?
            }
            Some("filename") => {
                let p = o.at("filename");
                let file = o.string("filename")?;
                non_empty(&file, &p)?;
                let bytes = std::fs::read(&file).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        ConfigError::invalid(&p, format!("file {file} does not exist"))
                    } else {
                        ConfigError::invalid(&p, format!("unable to read file {file}: {e}"))
                    }
                })?;
                String::from_utf8(bytes)
                    .map_err(|_| ConfigError::unsupported_value(&p, "a non-UTF-8 body"))?
            }
            Some(_) => {
                let p = o.at("environment_variable");
                let var = o.string("environment_variable")?;
                non_empty(&var, &p)?;
                std::env::var(&var).map_err(|_| {
                    ConfigError::invalid(&p, format!("Environment variable doesn't exist: {var}"))
                })?
            }
            None => return Err(ConfigError::invalid(
                path,
                "one of filename, inline_bytes, inline_string, environment_variable is required",
            )),
        };
    o.finish()?;
    Ok(text)
}

/// Decodes standard or URL-safe base64, padding optional (protobuf JSON `bytes`).
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AppendAction;
    use serde_json::json;
    use std::collections::HashSet;

    fn ctx(clusters: &HashSet<String>) -> RouteContext<'_> {
        RouteContext {
            clusters: Some(clusters),
            max_direct_response_body: 4096,
            retry_policy: None,
            buffer_limit: None,
            attempt_count: crate::model::AttemptCount::default(),
        }
    }

    fn known() -> HashSet<String> {
        ["a", "b"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stream_timeouts() {
        let k = known();
        let f = forward(
            &json!({"cluster": "a", "idle_timeout": "0s",
                    "max_stream_duration": {"max_stream_duration": "2s", "grpc_timeout_header_max": "0s",
                                            "grpc_timeout_header_offset": "0.1s"}}),
            "r",
            &ctx(&k),
        )
        .unwrap();
        assert_eq!(f.idle_timeout, Some(Duration::ZERO));
        let limits = f.max_stream_duration.unwrap();
        assert_eq!(limits.max_stream_duration, Some(Duration::from_secs(2)));
        assert_eq!(limits.grpc_timeout_header_max, Some(Duration::ZERO));
        assert_eq!(limits.grpc_timeout_header_offset, Some(Duration::from_millis(100)));
        let f = forward(&json!({"cluster": "a", "idle_timeout": "3s", "max_stream_duration": {}}), "r", &ctx(&k)).unwrap();
        assert_eq!(f.idle_timeout, Some(Duration::from_secs(3)));
        assert_eq!(f.max_stream_duration, Some(MaxStreamDuration::default()));
        let err = forward(&json!({"cluster": "a", "max_stream_duration": {"wat": 1}}), "r", &ctx(&k)).unwrap_err();
        assert_eq!(err.to_string(), "r.max_stream_duration.wat: unknown field");
        let err = forward(&json!({"cluster": "a", "max_grpc_timeout": "1s"}), "r", &ctx(&k)).unwrap_err();
        assert_eq!(err.to_string(), "r.max_grpc_timeout: not supported by legate");
    }

    #[test]
    fn forward_actions() {
        let k = known();
        let f = forward(
            &json!({"cluster": "a", "prefix_rewrite": "/x", "host_rewrite_literal": "h", "timeout": "0s",
                    "hash_policy": [{"header": {"header_name": "X-U"}, "terminal": true},
                                    {"cookie": {"name": "c"}},
                                    {"connection_properties": {"source_ip": true}},
                                    {"connection_properties": {"source_ip": false}},
                                    {"query_parameter": {"name": "q"}}]}),
            "r",
            &ctx(&k),
        )
        .unwrap();
        assert_eq!(f.target, ClusterTarget::Cluster("a".into()));
        assert_eq!(f.prefix_rewrite.as_deref(), Some("/x"));
        assert_eq!(f.host_rewrite, HostRewrite::Literal("h".into()));
        assert_eq!(f.timeout, None);
        assert_eq!(
            f.hash_policy,
            vec![
                HashPolicy {
                    source: HashSource::Header("x-u".into()),
                    terminal: true
                },
                HashPolicy {
                    source: HashSource::Cookie("c".into()),
                    terminal: false
                },
                HashPolicy {
                    source: HashSource::SourceIp,
                    terminal: false
                },
                HashPolicy {
                    source: HashSource::QueryParameter("q".into()),
                    terminal: false
                },
            ]
        );
        let f = forward(
            &json!({"cluster": "b", "auto_host_rewrite": true, "timeout": "2.5s",
                    "regex_rewrite": {"pattern": {"regex": "^/v1/(.*)"}, "substitution": "/\\1"}}),
            "r",
            &ctx(&k),
        )
        .unwrap();
        assert_eq!(f.host_rewrite, HostRewrite::Auto);
        assert_eq!(f.timeout, Some(Duration::from_millis(2500)));
        assert_eq!((f.idle_timeout, f.max_stream_duration), (None, None));
        assert_eq!(f.regex_rewrite.unwrap().1, "/\\1");
        let err = forward(
            &json!({"cluster": "a", "hash_policy": [{"cookie": {"name": "c", "ttl": "1s"}}]}),
            "r",
            &ctx(&k),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "r.hash_policy[0].cookie.ttl: not supported by legate"
        );
        let err = forward(
            &json!({"cluster": "a", "host_rewrite_header": "x"}),
            "r",
            &ctx(&k),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "r.host_rewrite_header: not supported by legate"
        );
        let err = forward(
            &json!({"cluster": "a", "prefix_rewrite": "/", "regex_rewrite": {"pattern": {"regex": "a"}}}),
            "r",
            &ctx(&k),
        );
        assert!(err.unwrap_err().to_string().contains("Specify only one of"));
        let err = forward(&json!({"cluster": "a", "timeout": "abc"}), "r", &ctx(&k));
        assert_eq!(
            err.unwrap_err().to_string(),
            "r.timeout: invalid duration \"abc\""
        );
    }

    #[test]
    fn weighted() {
        let k = known();
        let f = forward(
            &json!({"weighted_clusters": {"total_weight": 100, "clusters": [
                {"name": "a", "weight": 30, "request_headers_to_add": [{"header": {"key": "x", "value": "1"}, "append": false}]},
                {"name": "b", "weight": 70}]}}),
            "r",
            &ctx(&k),
        )
        .unwrap();
        let ClusterTarget::Weighted(w) = f.target else {
            panic!()
        };
        assert_eq!((w[0].weight, w[1].weight), (30, 70));
        assert_eq!(
            w[0].headers.request_headers_to_add[0].append_action,
            AppendAction::OverwriteIfExistsOrAdd
        );
        let err = forward(
            &json!({"weighted_clusters": {"clusters": [{"name": "zz", "weight": 1}]}}),
            "r",
            &ctx(&k),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "r.weighted_clusters.clusters[0].name: unknown weighted cluster 'zz'"
        );
        let err = forward(
            &json!({"weighted_clusters": {"clusters": [{"name": "a", "weight": 0}]}}),
            "r",
            &ctx(&k),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("must be greater than 0"));
        let err = forward(
            &json!({"weighted_clusters": {"clusters": []}}),
            "r",
            &ctx(&k),
        );
        assert!(err.is_err());
    }

    #[test]
    fn redirects() {
        let r = redirect(&json!({"https_redirect": true, "port_redirect": 8443, "response_code": "PERMANENT_REDIRECT"}), "r")
            .unwrap();
        assert_eq!(r.scheme.as_deref(), Some("https"));
        assert_eq!(r.port, Some(8443));
        assert_eq!(r.status, 308);
        let r = redirect(
            &json!({"host_redirect": "h", "prefix_rewrite": "/new", "strip_query": true}),
            "r",
        )
        .unwrap();
        assert_eq!(r.path, Some(PathRedirect::PrefixRewrite("/new".into())));
        assert_eq!(r.status, 301);
        assert!(r.strip_query);
        let r = redirect(
            &json!({"scheme_redirect": "http", "path_redirect": "/p", "response_code": 1}),
            "r",
        )
        .unwrap();
        assert_eq!((r.scheme.as_deref(), r.status), (Some("http"), 302));
        assert_eq!(r.path, Some(PathRedirect::Path("/p".into())));
        assert!(redirect(&json!({"regex_rewrite": {}}), "r").is_err());
        assert!(redirect(&json!({"port_redirect": 70000}), "r").is_err());
    }

    #[test]
    fn direct_responses() {
        let k = known();
        let d = direct_response(
            &json!({"status": 404, "body": {"inline_string": "nope"}}),
            "d",
            &ctx(&k),
        )
        .unwrap();
        assert_eq!(
            d,
            RouteAction::DirectResponse {
                status: 404,
                body: Some("nope".into())
            }
        );
        let d = direct_response(
            &json!({"status": 200, "body": {"inline_bytes": "aGVsbG8="}}),
            "d",
            &ctx(&k),
        )
        .unwrap();
        assert_eq!(
            d,
            RouteAction::DirectResponse {
                status: 200,
                body: Some("hello".into())
            }
        );
        let d = direct_response(&json!({"status": 204}), "d", &ctx(&k)).unwrap();
        assert_eq!(
            d,
            RouteAction::DirectResponse {
                status: 204,
                body: None
            }
        );
        let err = direct_response(&json!({"status": 600}), "d", &ctx(&k)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.status: value must be inside range [200, 600)"
        );
        let err = direct_response(
            &json!({"status": 200, "body": {"filename": "/nonexistent/x"}}),
            "d",
            &ctx(&k),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "d.body.filename: file /nonexistent/x does not exist"
        );
        let big = "x".repeat(5000);
        let err = direct_response(
            &json!({"status": 200, "body": {"inline_string": big}}),
            "d",
            &ctx(&k),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "d.body: response body size is 5000 bytes; maximum is 4096"
        );
        let dir = std::env::temp_dir().join(format!("legate-config-body-{}", std::process::id()));
        std::fs::write(&dir, "from file").unwrap();
        let d = direct_response(
            &json!({"status": 200, "body": {"filename": dir.to_str().unwrap()}}),
            "d",
            &ctx(&k),
        );
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            d.unwrap(),
            RouteAction::DirectResponse {
                status: 200,
                body: Some("from file".into())
            }
        );
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a*b").is_none());
    }
}
