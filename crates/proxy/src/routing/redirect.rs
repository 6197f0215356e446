//! Redirect locations and rewrite substitutions.

use legate_config::model::{PathRedirect, RedirectAction};

use super::RequestView;

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

fn port_of(host: &str) -> Option<&str> {
    let stripped = strip_port(host);
    (stripped.len() < host.len()).then(|| &host[stripped.len() + 1..])
}

/// Converts an Envoy/RE2 substitution (`\1`) into the regex crate's syntax (`${1}`).
pub fn regex_replacement(substitution: &str) -> String {
    let mut out = String::with_capacity(substitution.len());
    let mut chars = substitution.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str("${");
                    out.push(*d);
                    out.push('}');
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Envoy's redirect: (status, location).
pub fn location(r: &RedirectAction, req: &RequestView<'_>, matched_len: usize) -> (u16, String) {
    let scheme = r.scheme.as_deref().unwrap_or(req.scheme);
    let original_host = req.authority;
    let mut host = r.host.clone().unwrap_or_else(|| original_host.to_string());
    if let Some(port) = r.port {
        host = format!("{}:{port}", strip_port(&host));
    } else if r.host.is_none() && scheme != req.scheme {
        // Switching scheme drops the old scheme's default port, as Envoy does.
        let default = if req.scheme == "https" { "443" } else { "80" };
        if port_of(&host) == Some(default) {
            host = strip_port(&host).to_string();
        }
    } else if r.host.is_some() {
        if let Some(p) = port_of(original_host) {
            if port_of(&host).is_none() {
                let default = if scheme == "https" { "443" } else { "80" };
                if p != default {
                    host = format!("{host}:{p}");
                }
            }
        }
    }
    let path_only = req.path_only();
    let query = req.query().map(|q| format!("?{q}")).unwrap_or_default();
    let (path, query) = match &r.path {
        Some(PathRedirect::Path(p)) => match p.split_once('?') {
            Some((p, q)) => (p.to_string(), format!("?{q}")),
            None => (p.clone(), query),
        },
        Some(PathRedirect::PrefixRewrite(prefix)) => {
            let rest = path_only.get(matched_len.min(path_only.len())..).unwrap_or("");
            (format!("{prefix}{rest}"), query)
        }
        None => (path_only.to_string(), query),
    };
    let query = if r.strip_query { String::new() } else { query };
    (r.status, format!("{scheme}://{host}{path}{query}"))
}
