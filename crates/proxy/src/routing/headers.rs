//! Header mutations (`*_headers_to_add` / `*_headers_to_remove`) with Envoy's append actions and
//! substitution formatters.

use std::net::SocketAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use legate_config::model::{AppendAction, FormatPart, HeaderMutations, HeaderValueOption};

/// Values the substitution formatters draw on.
#[derive(Debug, Clone, Copy)]
pub struct FormatContext<'a> {
    /// Downstream peer.
    pub downstream_remote: SocketAddr,
    /// Local address of the downstream connection.
    pub downstream_local: SocketAddr,
    /// `HTTP/1.1`, `HTTP/2`.
    pub protocol: &'a str,
    /// This machine's hostname.
    pub hostname: &'a str,
    /// Upstream host, once chosen.
    pub upstream_remote: Option<SocketAddr>,
}

/// Evaluates a header value format. `request` supplies `%REQ(...)%`.
pub fn evaluate(parts: &[FormatPart], ctx: &FormatContext<'_>, request: &HeaderMap) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            FormatPart::Literal(s) => out.push_str(s),
            FormatPart::DownstreamRemoteAddress => out.push_str(&ctx.downstream_remote.to_string()),
            FormatPart::DownstreamRemoteAddressWithoutPort => out.push_str(&ctx.downstream_remote.ip().to_string()),
            FormatPart::DownstreamLocalAddress => out.push_str(&ctx.downstream_local.to_string()),
            FormatPart::DownstreamLocalAddressWithoutPort => out.push_str(&ctx.downstream_local.ip().to_string()),
            FormatPart::DownstreamLocalPort => out.push_str(&ctx.downstream_local.port().to_string()),
            FormatPart::Hostname => out.push_str(ctx.hostname),
            FormatPart::Protocol => out.push_str(ctx.protocol),
            FormatPart::RequestHeader(name) => {
                if let Some(v) = request.get(name.as_str()).and_then(|v| v.to_str().ok()) {
                    out.push_str(v);
                }
            }
            FormatPart::UpstreamRemoteAddress => {
                if let Some(a) = ctx.upstream_remote {
                    out.push_str(&a.to_string());
                }
            }
        }
    }
    out
}

/// Applies one header addition with its append action.
fn add(headers: &mut HeaderMap, opt: &HeaderValueOption, value: String) {
    if value.is_empty() && !opt.keep_empty_value {
        return;
    }
    let (Ok(name), Ok(value)) = (HeaderName::from_bytes(opt.key.as_bytes()), HeaderValue::from_str(&value)) else {
        tracing::debug!(header = %opt.key, "skipping a header whose name or value is invalid");
        return;
    };
    match opt.append_action {
        AppendAction::AppendIfExistsOrAdd => {
            headers.append(name, value);
        }
        AppendAction::AddIfAbsent => {
            if !headers.contains_key(&name) {
                headers.insert(name, value);
            }
        }
        AppendAction::OverwriteIfExistsOrAdd => {
            headers.insert(name, value);
        }
        AppendAction::OverwriteIfExists => {
            if headers.contains_key(&name) {
                headers.insert(name, value);
            }
        }
    }
}

/// Which side of the exchange a mutation set applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Request headers.
    Request,
    /// Response headers.
    Response,
}

/// Applies `levels` in order (most specific first, like Envoy): for each level removals, then
/// additions. `request` is the request header snapshot `%REQ()%` reads.
pub fn apply(
    levels: &[&HeaderMutations],
    side: Side,
    headers: &mut HeaderMap,
    ctx: &FormatContext<'_>,
    request: Option<&HeaderMap>,
) {
    if levels.iter().all(|l| match side {
        Side::Request => l.request_headers_to_add.is_empty() && l.request_headers_to_remove.is_empty(),
        Side::Response => l.response_headers_to_add.is_empty() && l.response_headers_to_remove.is_empty(),
    }) {
        return;
    }
    // %REQ()% on the request side sees the headers as they were before this mutation pass.
    let snapshot;
    let request = match (side, request) {
        (_, Some(r)) => r,
        (Side::Request, None) => {
            snapshot = headers.clone();
            &snapshot
        }
        (Side::Response, None) => {
            snapshot = HeaderMap::new();
            &snapshot
        }
    };
    for level in levels {
        let (adds, removes) = match side {
            Side::Request => (&level.request_headers_to_add, &level.request_headers_to_remove),
            Side::Response => (&level.response_headers_to_add, &level.response_headers_to_remove),
        };
        for r in removes {
            headers.remove(r.as_str());
        }
        for opt in adds {
            let value = evaluate(&opt.value.parts, ctx, request);
            add(headers, opt, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::HeaderValueFormat;

    fn ctx() -> FormatContext<'static> {
        FormatContext {
            downstream_remote: "10.0.0.9:4000".parse().unwrap(),
            downstream_local: "10.0.0.1:8080".parse().unwrap(),
            protocol: "HTTP/1.1",
            hostname: "box",
            upstream_remote: None,
        }
    }

    fn opt(key: &str, parts: Vec<FormatPart>, action: AppendAction) -> HeaderValueOption {
        HeaderValueOption { key: key.into(), value: HeaderValueFormat { parts }, append_action: action, keep_empty_value: false }
    }

    #[test]
    fn append_actions() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "old".parse().unwrap());
        let lit = |s: &str| vec![FormatPart::Literal(s.into())];
        let m = HeaderMutations {
            request_headers_to_add: vec![
                opt("x-a", lit("appended"), AppendAction::AppendIfExistsOrAdd),
                opt("x-b", lit("added"), AppendAction::AddIfAbsent),
                opt("x-a", lit("ignored"), AppendAction::AddIfAbsent),
                opt("x-c", lit("nope"), AppendAction::OverwriteIfExists),
                opt("x-d", vec![FormatPart::DownstreamRemoteAddressWithoutPort, FormatPart::Literal("/".into()), FormatPart::Protocol], AppendAction::OverwriteIfExistsOrAdd),
                opt("x-e", lit(""), AppendAction::OverwriteIfExistsOrAdd),
            ],
            request_headers_to_remove: vec!["x-gone".into()],
            ..Default::default()
        };
        h.insert("x-gone", "1".parse().unwrap());
        apply(&[&m], Side::Request, &mut h, &ctx(), None);
        let all: Vec<_> = h.get_all("x-a").iter().collect();
        assert_eq!(all, ["old", "appended"]);
        assert_eq!(h["x-b"], "added");
        assert!(!h.contains_key("x-c"));
        assert_eq!(h["x-d"], "10.0.0.9/HTTP/1.1");
        assert!(!h.contains_key("x-e"), "empty values are dropped unless keep_empty_value");
        assert!(!h.contains_key("x-gone"));
    }

    #[test]
    fn later_levels_win_for_overwrites_and_req_reads_request() {
        let mut req = HeaderMap::new();
        req.insert("x-user", "alice".parse().unwrap());
        let route = HeaderMutations {
            response_headers_to_add: vec![opt("x-who", vec![FormatPart::RequestHeader("x-user".into())], AppendAction::OverwriteIfExistsOrAdd)],
            ..Default::default()
        };
        let global = HeaderMutations {
            response_headers_to_add: vec![opt("x-level", vec![FormatPart::Literal("global".into())], AppendAction::OverwriteIfExistsOrAdd)],
            ..Default::default()
        };
        let vhost = HeaderMutations {
            response_headers_to_add: vec![opt("x-level", vec![FormatPart::Literal("vhost".into())], AppendAction::OverwriteIfExistsOrAdd)],
            ..Default::default()
        };
        let mut resp = HeaderMap::new();
        apply(&[&route, &vhost, &global], Side::Response, &mut resp, &ctx(), Some(&req));
        assert_eq!(resp["x-who"], "alice");
        assert_eq!(resp["x-level"], "global");
    }
}
