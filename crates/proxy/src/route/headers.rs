//! Header mutations (`*_headers_to_add` / `*_headers_to_remove`) with Envoy's append actions and
//! substitution formatters, compiled once per level.
//!
//! Envoy's order, verified against Envoy 1.40: levels run most specific first (weighted cluster,
//! route, virtual host, route configuration), so with `OVERWRITE_IF_EXISTS_OR_ADD` the route
//! configuration's value wins and appended values come out route, vhost, global. Within one
//! level: removals first; then every value is formatted and every presence test is made against
//! the headers as they stand; then all overwrites are applied, then all appends (so
//! `[x: a (append), x: b (overwrite)]` yields `x: b`, `x: a`, and two `ADD_IF_ABSENT` entries
//! for the same absent name both add).

use std::fmt::Write as _;
use std::net::SocketAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use legate_config::model::{AppendAction, FormatPart, HeaderMutations, HeaderValueOption};

/// Values the substitution formatters draw on.
#[derive(Debug, Clone, Copy)]
pub struct FormatContext<'a> {
    /// Downstream peer (`%DOWNSTREAM_REMOTE_ADDRESS%`).
    pub downstream_remote: SocketAddr,
    /// Local address of the downstream connection (`%DOWNSTREAM_LOCAL_ADDRESS%`).
    pub downstream_local: SocketAddr,
    /// `%PROTOCOL%`: `HTTP/1.1`, `HTTP/2`.
    pub protocol: &'a str,
    /// `%HOSTNAME%`: this machine's hostname.
    pub hostname: &'a str,
    /// `%UPSTREAM_REMOTE_ADDRESS%`: the upstream host, once chosen (empty before).
    pub upstream_remote: Option<SocketAddr>,
}

/// One formatter piece, with `%REQ()%` names resolved.
#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    DownstreamRemote,
    DownstreamRemoteNoPort,
    DownstreamLocal,
    DownstreamLocalNoPort,
    DownstreamLocalPort,
    Hostname,
    Protocol,
    Request(HeaderName),
    /// `%REQ(:path)%` and other pseudo-headers the header map does not hold: empty.
    Empty,
    UpstreamRemote,
}

#[derive(Debug, Clone)]
enum Value {
    /// Precomputed; `None` when empty and not kept.
    Static(Option<HeaderValue>),
    Dynamic(Vec<Part>),
}

#[derive(Debug, Clone)]
struct AddEntry {
    name: HeaderName,
    value: Value,
    action: AppendAction,
    keep_empty: bool,
}

/// The compiled mutations of one level for one direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct MutationSet {
    remove: Vec<HeaderName>,
    add: Vec<AddEntry>,
    reads_request: bool,
}

/// The compiled mutations of one level (route, virtual host, route configuration, weighted
/// cluster) for both directions.
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelMutations {
    /// `request_headers_to_*`.
    pub(crate) request: MutationSet,
    /// `response_headers_to_*`.
    pub(crate) response: MutationSet,
}

impl LevelMutations {
    /// Compiles one level of the model. Entries whose name or literal value is not a valid
    /// header are dropped (the config parser refuses them already).
    pub(crate) fn new(m: &HeaderMutations) -> Self {
        Self {
            request: MutationSet::new(&m.request_headers_to_add, &m.request_headers_to_remove),
            response: MutationSet::new(&m.response_headers_to_add, &m.response_headers_to_remove),
        }
    }
}

impl MutationSet {
    fn new(add: &[HeaderValueOption], remove: &[String]) -> Self {
        let remove = remove
            .iter()
            .filter_map(|r| HeaderName::from_bytes(r.as_bytes()).ok())
            .collect();
        let add: Vec<AddEntry> = add.iter().filter_map(compile_entry).collect();
        let reads_request = add.iter().any(|e| match &e.value {
            Value::Dynamic(parts) => parts.iter().any(|p| matches!(p, Part::Request(_))),
            Value::Static(_) => false,
        });
        Self {
            remove,
            add,
            reads_request,
        }
    }

    /// Whether this set does nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Whether a formatter reads request headers (`%REQ()%`).
    pub(crate) fn reads_request(&self) -> bool {
        self.reads_request
    }

    /// Applies the set to `headers`. `%REQ()%` reads `request`, or `headers` themselves when
    /// `None` (the request direction, where Envoy formats against the live request headers, so a
    /// level sees what more specific levels added — verified against Envoy 1.40).
    pub(crate) fn apply(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>, request: Option<&HeaderMap>) {
        for name in &self.remove {
            headers.remove(name);
        }
        if let [entry] = self.add.as_slice() {
            // One entry: nothing of this level can interfere, no need to stage it.
            let source = request.unwrap_or(headers);
            if let Some((value, overwrite)) = entry.resolve(headers, ctx, source) {
                if overwrite {
                    headers.insert(entry.name.clone(), value);
                } else {
                    headers.append(entry.name.clone(), value);
                }
            }
            return;
        }
        if self.add.is_empty() {
            return;
        }
        // (entry, value, overwrite): formatted and tested before anything of this level changes.
        let mut pending: Vec<(&HeaderName, HeaderValue, bool)> = Vec::with_capacity(self.add.len());
        {
            let current: &HeaderMap = headers;
            let source = request.unwrap_or(current);
            for entry in &self.add {
                if let Some((value, overwrite)) = entry.resolve(current, ctx, source) {
                    pending.push((&entry.name, value, overwrite));
                }
            }
        }
        for (name, value, _) in pending.iter().filter(|p| p.2) {
            headers.insert((*name).clone(), value.clone());
        }
        for (name, value, _) in pending.into_iter().filter(|p| !p.2) {
            headers.append(name.clone(), value);
        }
    }
}

impl AddEntry {
    /// The value to set and whether it overwrites, or `None` when the entry adds nothing: empty
    /// and not kept, not a valid header value (a substitution may produce one: it is skipped),
    /// or ruled out by its append action given the headers as they stand.
    fn resolve(&self, current: &HeaderMap, ctx: &FormatContext<'_>, source: &HeaderMap) -> Option<(HeaderValue, bool)> {
        let value = match &self.value {
            Value::Static(v) => v.clone()?,
            Value::Dynamic(parts) => {
                let bytes = render(parts, ctx, source);
                if bytes.is_empty() && !self.keep_empty {
                    return None;
                }
                HeaderValue::from_bytes(&bytes).ok()?
            }
        };
        let exists = || current.contains_key(&self.name);
        let overwrite = match self.action {
            AppendAction::AppendIfExistsOrAdd => false,
            AppendAction::AddIfAbsent => {
                if exists() {
                    return None;
                }
                false
            }
            AppendAction::OverwriteIfExists => {
                if !exists() {
                    return None;
                }
                true
            }
            AppendAction::OverwriteIfExistsOrAdd => true,
        };
        Some((value, overwrite))
    }
}

fn compile_entry(opt: &HeaderValueOption) -> Option<AddEntry> {
    let name = HeaderName::from_bytes(opt.key.as_bytes()).ok()?;
    let parts: Vec<Part> = opt
        .value
        .parts
        .iter()
        .map(|p| match p {
            FormatPart::Literal(s) => Part::Literal(s.clone()),
            FormatPart::DownstreamRemoteAddress => Part::DownstreamRemote,
            FormatPart::DownstreamRemoteAddressWithoutPort => Part::DownstreamRemoteNoPort,
            FormatPart::DownstreamLocalAddress => Part::DownstreamLocal,
            FormatPart::DownstreamLocalAddressWithoutPort => Part::DownstreamLocalNoPort,
            FormatPart::DownstreamLocalPort => Part::DownstreamLocalPort,
            FormatPart::Hostname => Part::Hostname,
            FormatPart::Protocol => Part::Protocol,
            FormatPart::RequestHeader(h) => match h.as_str() {
                ":authority" => Part::Request(HOST),
                _ => HeaderName::from_bytes(h.as_bytes()).map_or(Part::Empty, Part::Request),
            },
            FormatPart::UpstreamRemoteAddress => Part::UpstreamRemote,
        })
        .collect();
    let value = if parts.iter().all(|p| matches!(p, Part::Literal(_))) {
        let text: String = parts
            .iter()
            .filter_map(|p| {
                if let Part::Literal(s) = p {
                    Some(s.as_str())
                } else {
                    None
                }
            })
            .collect();
        if text.is_empty() && !opt.keep_empty_value {
            Value::Static(None)
        } else {
            Value::Static(Some(HeaderValue::from_str(&text).ok()?))
        }
    } else {
        Value::Dynamic(parts)
    };
    Some(AddEntry {
        name,
        value,
        action: opt.append_action,
        keep_empty: opt.keep_empty_value,
    })
}

/// Formats `parts`. Unavailable values are empty, as in Envoy's header formatters.
fn render(parts: &[Part], ctx: &FormatContext<'_>, request: &HeaderMap) -> Vec<u8> {
    struct Bytes(Vec<u8>);
    impl std::fmt::Write for Bytes {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let mut out = Bytes(Vec::with_capacity(32));
    for p in parts {
        // Writing to a Vec cannot fail.
        let _ = match p {
            Part::Literal(s) => out.write_str(s),
            Part::DownstreamRemote => write!(out, "{}", ctx.downstream_remote),
            Part::DownstreamRemoteNoPort => write!(out, "{}", ctx.downstream_remote.ip()),
            Part::DownstreamLocal => write!(out, "{}", ctx.downstream_local),
            Part::DownstreamLocalNoPort => write!(out, "{}", ctx.downstream_local.ip()),
            Part::DownstreamLocalPort => write!(out, "{}", ctx.downstream_local.port()),
            Part::Hostname => out.write_str(ctx.hostname),
            Part::Protocol => out.write_str(ctx.protocol),
            // The first value only (verified against Envoy 1.40).
            Part::Request(name) => {
                if let Some(v) = request.get(name) {
                    out.0.extend_from_slice(v.as_bytes());
                }
                Ok(())
            }
            Part::Empty => Ok(()),
            Part::UpstreamRemote => match ctx.upstream_remote {
                Some(a) => write!(out, "{a}"),
                None => Ok(()),
            },
        };
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::HeaderValueFormat;

    fn ctx() -> FormatContext<'static> {
        FormatContext {
            downstream_remote: "10.0.0.9:4000".parse().unwrap(),
            downstream_local: "[::1]:8080".parse().unwrap(),
            protocol: "HTTP/1.1",
            hostname: "box",
            upstream_remote: None,
        }
    }

    fn opt(key: &str, parts: Vec<FormatPart>, action: AppendAction) -> HeaderValueOption {
        HeaderValueOption {
            key: key.into(),
            value: HeaderValueFormat { parts },
            append_action: action,
            keep_empty_value: false,
        }
    }

    fn lit(s: &str) -> Vec<FormatPart> {
        vec![FormatPart::Literal(s.into())]
    }

    fn request_set(add: Vec<HeaderValueOption>, remove: &[&str]) -> MutationSet {
        MutationSet::new(&add, &remove.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn values<'h>(h: &'h HeaderMap, name: &str) -> Vec<&'h str> {
        h.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn append_actions() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "old".parse().unwrap());
        h.insert("x-o", "old".parse().unwrap());
        h.insert("x-gone", "1".parse().unwrap());
        let set = request_set(
            vec![
                opt("x-a", lit("appended"), AppendAction::AppendIfExistsOrAdd),
                opt("x-b", lit("added"), AppendAction::AddIfAbsent),
                opt("x-a", lit("ignored"), AppendAction::AddIfAbsent),
                opt("x-c", lit("nope"), AppendAction::OverwriteIfExists),
                opt("x-o", lit("new"), AppendAction::OverwriteIfExists),
                opt("x-gone", lit("back"), AppendAction::AddIfAbsent),
                opt("x-e", lit(""), AppendAction::OverwriteIfExistsOrAdd),
            ],
            &["x-gone"],
        );
        set.apply(&mut h, &ctx(), None);
        assert_eq!(values(&h, "x-a"), ["old", "appended"]);
        assert_eq!(values(&h, "x-b"), ["added"]);
        assert!(!h.contains_key("x-c"));
        assert_eq!(values(&h, "x-o"), ["new"]);
        assert_eq!(values(&h, "x-gone"), ["back"], "removal happens before additions");
        assert!(
            !h.contains_key("x-e"),
            "empty values are dropped unless keep_empty_value"
        );
    }

    #[test]
    fn keep_empty_value() {
        let mut h = HeaderMap::new();
        let mut e = opt("x-e", lit(""), AppendAction::AppendIfExistsOrAdd);
        e.keep_empty_value = true;
        let mut d = opt(
            "x-d",
            vec![FormatPart::RequestHeader("x-missing".into())],
            AppendAction::AppendIfExistsOrAdd,
        );
        d.keep_empty_value = true;
        let skipped = opt(
            "x-s",
            vec![FormatPart::RequestHeader("x-missing".into())],
            AppendAction::AppendIfExistsOrAdd,
        );
        request_set(vec![e, d, skipped], &[]).apply(&mut h, &ctx(), None);
        assert_eq!(values(&h, "x-e"), [""]);
        assert_eq!(values(&h, "x-d"), [""]);
        assert!(!h.contains_key("x-s"));
    }

    #[test]
    fn within_a_level_overwrites_come_before_appends() {
        // Verified against Envoy 1.40: [x-within: a (append), x-within: b (overwrite)] reaches
        // the upstream as `x-within: b`, `x-within: a`; two ADD_IF_ABSENT entries both add.
        let mut h = HeaderMap::new();
        request_set(
            vec![
                opt("x-within", lit("a"), AppendAction::AppendIfExistsOrAdd),
                opt("x-within", lit("b"), AppendAction::OverwriteIfExistsOrAdd),
                opt("x-absent", lit("one"), AppendAction::AddIfAbsent),
                opt("x-absent", lit("two"), AppendAction::AddIfAbsent),
            ],
            &[],
        )
        .apply(&mut h, &ctx(), None);
        assert_eq!(values(&h, "x-within"), ["b", "a"]);
        assert_eq!(values(&h, "x-absent"), ["one", "two"]);
    }

    #[test]
    fn formatters() {
        let mut req = HeaderMap::new();
        req.append("x-multi", "m1".parse().unwrap());
        req.append("x-multi", "m2".parse().unwrap());
        req.insert(HOST, "svc.local".parse().unwrap());
        let part = |p: FormatPart| {
            opt(
                "x-out",
                vec![FormatPart::Literal("<".into()), p, FormatPart::Literal(">".into())],
                AppendAction::AppendIfExistsOrAdd,
            )
        };
        let cases = [
            (FormatPart::DownstreamRemoteAddress, "<10.0.0.9:4000>"),
            (FormatPart::DownstreamRemoteAddressWithoutPort, "<10.0.0.9>"),
            (FormatPart::DownstreamLocalAddress, "<[::1]:8080>"),
            (FormatPart::DownstreamLocalAddressWithoutPort, "<::1>"),
            (FormatPart::DownstreamLocalPort, "<8080>"),
            (FormatPart::Hostname, "<box>"),
            (FormatPart::Protocol, "<HTTP/1.1>"),
            (FormatPart::RequestHeader("x-multi".into()), "<m1>"),
            (FormatPart::RequestHeader(":authority".into()), "<svc.local>"),
            (FormatPart::RequestHeader(":path".into()), "<>"),
            (FormatPart::UpstreamRemoteAddress, "<>"),
        ];
        for (p, want) in cases {
            let mut resp = HeaderMap::new();
            request_set(vec![part(p.clone())], &[]).apply(&mut resp, &ctx(), Some(&req));
            assert_eq!(values(&resp, "x-out"), [want], "{p:?}");
        }
        let mut resp = HeaderMap::new();
        let up = FormatContext {
            upstream_remote: Some("10.1.1.1:80".parse().unwrap()),
            ..ctx()
        };
        request_set(vec![part(FormatPart::UpstreamRemoteAddress)], &[]).apply(&mut resp, &up, Some(&req));
        assert_eq!(values(&resp, "x-out"), ["<10.1.1.1:80>"]);
    }

    #[test]
    fn req_reads_live_headers_before_the_level_changes_them() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "orig".parse().unwrap());
        request_set(
            vec![
                opt("x-a", lit("new"), AppendAction::OverwriteIfExistsOrAdd),
                opt(
                    "x-copy",
                    vec![FormatPart::RequestHeader("x-a".into())],
                    AppendAction::AppendIfExistsOrAdd,
                ),
            ],
            &[],
        )
        .apply(&mut h, &ctx(), None);
        assert_eq!(values(&h, "x-a"), ["new"]);
        assert_eq!(values(&h, "x-copy"), ["orig"]);
        // The next level sees the previous level's result.
        request_set(
            vec![opt(
                "x-copy2",
                vec![FormatPart::RequestHeader("x-a".into())],
                AppendAction::AppendIfExistsOrAdd,
            )],
            &[],
        )
        .apply(&mut h, &ctx(), None);
        assert_eq!(values(&h, "x-copy2"), ["new"]);
    }

    #[test]
    fn invalid_values_are_skipped_without_panicking() {
        let mut req = HeaderMap::new();
        req.insert("x-bin", HeaderValue::from_bytes(b"a\xffb").unwrap());
        let mut h = HeaderMap::new();
        let set = request_set(
            vec![
                opt("x-bad", lit("line\nbreak"), AppendAction::AppendIfExistsOrAdd),
                opt("bad name", lit("v"), AppendAction::AppendIfExistsOrAdd),
                opt(
                    "x-bin",
                    vec![FormatPart::RequestHeader("x-bin".into())],
                    AppendAction::AppendIfExistsOrAdd,
                ),
                opt("x-ok", lit("fine"), AppendAction::AppendIfExistsOrAdd),
            ],
            &["bad name"],
        );
        set.apply(&mut h, &ctx(), Some(&req));
        assert!(!h.contains_key("x-bad"));
        assert_eq!(
            h.get("x-bin").unwrap().as_bytes(),
            b"a\xffb",
            "opaque bytes are copied as they are"
        );
        assert_eq!(values(&h, "x-ok"), ["fine"]);
        assert!(set.reads_request() && !request_set(vec![], &[]).reads_request());
        assert!(request_set(vec![], &[]).is_empty());
    }
}
