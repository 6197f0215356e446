//! Redirect locations (Envoy's `Http::Utility::newUri`), the `require_tls` redirect and the RE2
//! substitution syntax of `regex_rewrite`.

use legate_config::model::{PathMatch, PathRedirect, RedirectAction, RequireTls};

use super::forward::prefix_rewrite;
use super::RequestView;

/// Converts an RE2 substitution (`\1`, `\\`) into the regex crate's syntax (`${1}`, `\`), with
/// `$` escaped. An unknown escape keeps its backslash.
pub(crate) fn regex_replacement(substitution: &str) -> String {
    let mut out = String::with_capacity(substitution.len() + 8);
    let mut chars = substitution.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str("${");
                    out.push(d);
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

/// Envoy's `processRequestHost`: the request's host, without its port when a port redirect is
/// configured or when the scheme changes away from the port's default scheme (`:80` leaving
/// http, `:443` leaving https). IPv6 literals keep their brackets.
fn request_host<'a>(host: &'a str, request_scheme: &str, new_scheme: &str, port_redirect: bool) -> &'a str {
    let port_start = if host.starts_with('[') {
        host.rfind("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    let Some(i) = port_start else { return host };
    let port = &host[i..];
    let mut remove = port_redirect;
    if new_scheme != request_scheme {
        remove |= request_scheme.eq_ignore_ascii_case("https") && port == ":443";
        remove |= request_scheme.eq_ignore_ascii_case("http") && port == ":80";
    }
    if remove {
        &host[..i]
    } else {
        host
    }
}

/// The `location` of a `redirect` route, built like Envoy: scheme from `scheme_redirect` /
/// `https_redirect` or the request; `host_redirect` verbatim (the request's port is not carried
/// over), else the request host per [`request_host`]; `:port_redirect`; the path from
/// `path_redirect` (whose own query wins over the request's and survives `strip_query`), or the
/// request path after `prefix_rewrite`; then `strip_query`.
pub(crate) fn location(r: &RedirectAction, spec: &PathMatch, req: &RequestView<'_>) -> String {
    let scheme = r.scheme.as_deref().filter(|s| !s.is_empty()).unwrap_or(req.scheme);
    let host = match r.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h,
        None => request_host(req.authority, req.scheme, scheme, r.port.is_some()),
    };
    let mut path_has_query = false;
    let rewritten;
    let path: &str = match &r.path {
        Some(PathRedirect::Path(p)) if !p.is_empty() => {
            path_has_query = p.contains('?');
            if path_has_query {
                p
            } else {
                rewritten = match req.path.find('?') {
                    Some(q) => format!("{p}{}", &req.path[q..]),
                    None => p.clone(),
                };
                &rewritten
            }
        }
        Some(PathRedirect::PrefixRewrite(prefix)) => match prefix_rewrite(spec, prefix, req.path) {
            Some(p) => {
                rewritten = p;
                &rewritten
            }
            None => req.path,
        },
        _ => req.path,
    };
    let path = if r.strip_query && !path_has_query {
        &path[..path.find('?').unwrap_or(path.len())]
    } else {
        path
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    match r.port {
        Some(port) => format!("{scheme}://{host}:{port}{slash}{path}"),
        None => format!("{scheme}://{host}{slash}{path}"),
    }
}

/// The `location` Envoy adds to a `direct_response` answered with 201 or a 3xx status: the
/// request URL unchanged (`scheme://host/path?query`).
pub(crate) fn direct_response_location(status: u16, req: &RequestView<'_>) -> Option<String> {
    if status != 201 && !(300..400).contains(&status) {
        return None;
    }
    let slash = if req.path.starts_with('/') { "" } else { "/" };
    Some(format!("{}://{}{slash}{}", req.scheme, req.authority, req.path))
}

/// The 301 location for a virtual host's `require_tls`, or `None` when the request may proceed:
/// `https://` + the Host as received (port kept) + the path and query (Envoy's
/// `createSslRedirectPath`).
pub(crate) fn tls_redirect(requirement: RequireTls, req: &RequestView<'_>) -> Option<String> {
    let plain = req.scheme != "https";
    let needed = match requirement {
        RequireTls::None => false,
        RequireTls::All => plain,
        RequireTls::ExternalOnly => plain && !req.is_internal,
    };
    needed.then(|| format!("https://{}{}", req.authority, req.path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn view<'a>(authority: &'a str, path: &'a str, scheme: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            authority,
            path,
            method: &http::Method::GET,
            headers,
            scheme,
            is_internal: false,
        }
    }

    fn redirect(f: impl FnOnce(&mut RedirectAction)) -> RedirectAction {
        let mut r = RedirectAction {
            status: 301,
            ..Default::default()
        };
        f(&mut r);
        r
    }

    #[test]
    fn substitutions() {
        assert_eq!(regex_replacement(r"/x/\2/\1"), "/x/${2}/${1}");
        assert_eq!(regex_replacement(r"a\\b$c\q"), r"a\b$$c\q");
        assert_eq!(regex_replacement(r"\0"), "${0}");
        assert_eq!(regex_replacement("end\\"), "end\\");
    }

    #[test]
    fn request_host_ports() {
        assert_eq!(request_host("h:80", "http", "https", false), "h");
        assert_eq!(request_host("h:443", "https", "http", false), "h");
        assert_eq!(request_host("h:443", "http", "https", false), "h:443");
        assert_eq!(request_host("h:80", "http", "http", false), "h:80");
        assert_eq!(request_host("h:8080", "http", "https", false), "h:8080");
        assert_eq!(request_host("h:8080", "http", "http", true), "h");
        assert_eq!(request_host("[::1]:80", "http", "https", false), "[::1]");
        assert_eq!(request_host("[::1]", "http", "https", true), "[::1]");
        assert_eq!(request_host("h", "http", "https", true), "h");
    }

    /// Every expectation here was observed from Envoy 1.40 with the same route and request.
    #[test]
    fn locations_match_envoy() {
        let h = HeaderMap::new();
        let exact = |p: &str| PathMatch::Path(p.into());
        let host_redirect = redirect(|r| r.host = Some("other.example".into()));
        assert_eq!(
            location(
                &host_redirect,
                &exact("/redir-host"),
                &view("h.example:8080", "/redir-host?a=1", "http", &h)
            ),
            "http://other.example/redir-host?a=1"
        );
        assert_eq!(
            location(
                &host_redirect,
                &exact("/redir-host"),
                &view("h.example:80", "/redir-host", "http", &h)
            ),
            "http://other.example/redir-host"
        );
        let https = redirect(|r| r.scheme = Some("https".into()));
        assert_eq!(
            location(
                &https,
                &exact("/redir-https"),
                &view("h.example:80", "/redir-https?a=1", "http", &h)
            ),
            "https://h.example/redir-https?a=1"
        );
        assert_eq!(
            location(
                &https,
                &exact("/redir-https"),
                &view("h.example:8080", "/redir-https", "http", &h)
            ),
            "https://h.example:8080/redir-https"
        );
        let port = redirect(|r| r.port = Some(9443));
        assert_eq!(
            location(
                &port,
                &exact("/redir-port"),
                &view("h.example:8080", "/redir-port?a=1", "http", &h)
            ),
            "http://h.example:9443/redir-port?a=1"
        );
        assert_eq!(
            location(
                &port,
                &exact("/redir-port"),
                &view("h.example", "/redir-port", "http", &h)
            ),
            "http://h.example:9443/redir-port"
        );
        let prefix = redirect(|r| {
            r.path = Some(PathRedirect::PrefixRewrite("/np".into()));
            r.strip_query = true;
            r.status = 307;
        });
        assert_eq!(
            location(
                &prefix,
                &PathMatch::Prefix("/redir-prefix".into()),
                &view("H.Example", "/redir-prefix/rest?a=1", "http", &h)
            ),
            "http://H.Example/np/rest"
        );
        let path = redirect(|r| r.path = Some(PathRedirect::Path("/p2".into())));
        assert_eq!(
            location(
                &path,
                &exact("/redir-path"),
                &view("localhost:38571", "/redir-path?a=1", "http", &h)
            ),
            "http://localhost:38571/p2?a=1"
        );
        let path_query = redirect(|r| {
            r.path = Some(PathRedirect::Path("/p3?z=1".into()));
            r.strip_query = true;
        });
        assert_eq!(
            location(
                &path_query,
                &exact("/redir-pathq"),
                &view("localhost:38571", "/redir-pathq?a=1", "http", &h)
            ),
            "http://localhost:38571/p3?z=1"
        );
    }

    #[test]
    fn more_locations() {
        let h = HeaderMap::new();
        let all = redirect(|r| {
            r.scheme = Some("https".into());
            r.host = Some("new.example".into());
            r.port = Some(8443);
            r.path = Some(PathRedirect::Path("relative".into()));
            r.strip_query = true;
        });
        assert_eq!(
            location(
                &all,
                &PathMatch::Prefix("/".into()),
                &view("old:80", "/x?y", "http", &h)
            ),
            "https://new.example:8443/relative"
        );
        let regex_route = PathMatch::Regex(legate_config::model::RegexMatcher::new("/r/.*").unwrap());
        let prefix = redirect(|r| r.path = Some(PathRedirect::PrefixRewrite("/whole".into())));
        assert_eq!(
            location(&prefix, &regex_route, &view("a", "/r/x?q", "http", &h)),
            "http://a/whole?q"
        );
        let https_from_https = redirect(|r| r.scheme = Some("https".into()));
        assert_eq!(
            location(&https_from_https, &regex_route, &view("a:443", "/r", "https", &h)),
            "https://a:443/r"
        );
        let to_http = redirect(|r| r.scheme = Some("http".into()));
        assert_eq!(
            location(&to_http, &regex_route, &view("a:443", "/r", "https", &h)),
            "http://a/r"
        );
    }

    #[test]
    fn tls_and_direct_response_locations() {
        let h = HeaderMap::new();
        // Verified against Envoy 1.40: require_tls ALL keeps the Host as received, port included.
        let v = view("secure.local:8080", "/p?x=1", "http", &h);
        assert_eq!(
            tls_redirect(RequireTls::All, &v).as_deref(),
            Some("https://secure.local:8080/p?x=1")
        );
        assert_eq!(
            tls_redirect(RequireTls::All, &view("Secure.Local", "/p?x=1", "http", &h)).as_deref(),
            Some("https://Secure.Local/p?x=1")
        );
        assert_eq!(tls_redirect(RequireTls::None, &v), None);
        assert_eq!(tls_redirect(RequireTls::All, &view("s", "/", "https", &h)), None);
        assert!(tls_redirect(RequireTls::ExternalOnly, &v).is_some());
        let internal = RequestView {
            is_internal: true,
            ..view("s", "/", "http", &h)
        };
        assert_eq!(tls_redirect(RequireTls::ExternalOnly, &internal), None);
        // Verified against Envoy 1.40: direct_response {status: 301} answers with the request URL.
        let dr = view("localhost:38571", "/dr301?x=1", "http", &h);
        assert_eq!(
            direct_response_location(301, &dr).as_deref(),
            Some("http://localhost:38571/dr301?x=1")
        );
        assert_eq!(
            direct_response_location(201, &dr).as_deref(),
            Some("http://localhost:38571/dr301?x=1")
        );
        assert_eq!(direct_response_location(200, &dr), None);
        assert_eq!(direct_response_location(404, &dr), None);
    }
}
