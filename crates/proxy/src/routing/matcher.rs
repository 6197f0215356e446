//! Route matching primitives: paths, string matchers, header and query-parameter matchers.

use http::HeaderMap;
use legate_config::model::{HeaderMatchSpec, HeaderMatcher, PathMatch, QueryParameterMatcher, StringMatch, StringMatcher};

/// The request facts route matching looks at.
pub struct RequestView<'a> {
    /// `:authority` (Host), lower-cased.
    pub authority: &'a str,
    /// Path and query as received.
    pub path: &'a str,
    /// Method.
    pub method: &'a http::Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Whether the request is internal (for require_tls EXTERNAL_ONLY).
    pub is_internal: bool,
}

impl RequestView<'_> {
    /// The path without query string or fragment.
    pub fn path_only(&self) -> &str {
        let end = self.path.find(['?', '#']).unwrap_or(self.path.len());
        &self.path[..end]
    }

    /// The query string (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        let q = &self.path[self.path.find('?')? + 1..];
        Some(q.split('#').next().unwrap_or(""))
    }

    /// A header's value as matchers see it: multiple values joined with `,`; pseudo-headers
    /// resolved from the request.
    pub fn header_value(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match name {
            ":path" => return Some(Cow::Borrowed(self.path)),
            ":method" => return Some(Cow::Borrowed(self.method.as_str())),
            ":authority" | "host" => return Some(Cow::Borrowed(self.authority)),
            ":scheme" => return Some(Cow::Borrowed(self.scheme)),
            _ => {}
        }
        let mut values = self.headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for v in values {
                    joined.push(',');
                    joined.push_str(v);
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

/// Length of the path prefix the path specifier matched, or `None` when it does not match.
pub fn match_path(spec: &PathMatch, case_sensitive: bool, path: &str) -> Option<usize> {
    let starts = |prefix: &str| {
        if case_sensitive {
            path.starts_with(prefix)
        } else {
            path.len() >= prefix.len()
                && path.is_char_boundary(prefix.len())
                && path[..prefix.len()].eq_ignore_ascii_case(prefix)
        }
    };
    match spec {
        PathMatch::Prefix(p) => starts(p).then_some(p.len()),
        PathMatch::Path(p) => {
            let eq = if case_sensitive { path == p } else { path.eq_ignore_ascii_case(p) };
            eq.then_some(p.len())
        }
        PathMatch::Regex(r) => r.is_full_match(path).then_some(path.len()),
        PathMatch::PathSeparatedPrefix(p) => {
            (starts(p) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')).then_some(p.len())
        }
    }
}

/// Whether `value` satisfies a string matcher.
pub fn string_matches(m: &StringMatcher, value: &str) -> bool {
    let fold = |s: &str| if m.ignore_case { s.to_ascii_lowercase() } else { s.to_string() };
    match &m.pattern {
        StringMatch::Exact(p) => {
            if m.ignore_case {
                value.eq_ignore_ascii_case(p)
            } else {
                value == p
            }
        }
        StringMatch::Prefix(p) => fold(value).starts_with(&fold(p)),
        StringMatch::Suffix(p) => fold(value).ends_with(&fold(p)),
        StringMatch::Contains(p) => fold(value).contains(&fold(p)),
        StringMatch::Regex(r) => r.is_full_match(value),
    }
}

/// Whether a header matcher matches the request.
pub fn header_matches(m: &HeaderMatcher, req: &RequestView<'_>) -> bool {
    let value = req.header_value(&m.name);
    let value = match (value, m.treat_missing_header_as_empty) {
        (Some(v), _) => Some(v),
        (None, true) => Some(std::borrow::Cow::Borrowed("")),
        (None, false) => None,
    };
    let matched = match (&m.spec, &value) {
        (None, v) => v.is_some(),
        (Some(HeaderMatchSpec::Present(want)), v) => v.is_some() == *want,
        (Some(_), None) => return false,
        (Some(HeaderMatchSpec::String(s)), Some(v)) => string_matches(s, v),
        (Some(HeaderMatchSpec::Range { start, end }), Some(v)) => {
            v.trim().parse::<i64>().is_ok_and(|n| n >= *start && n < *end)
        }
    };
    matched != m.invert_match
}

/// Whether a query-parameter matcher matches `query` (first occurrence of the name counts).
pub fn query_matches(m: &QueryParameterMatcher, query: Option<&str>) -> bool {
    let value = query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == m.name).then_some(v)
        })
    });
    match (&m.string_match, value) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(s), Some(v)) => string_matches(s, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::RegexMatcher;

    fn view<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView { authority: "a.com", path, method: &http::Method::GET, headers, scheme: "http", is_internal: false }
    }

    #[test]
    fn paths() {
        assert_eq!(match_path(&PathMatch::Prefix("/films".into()), true, "/films/1"), Some(6));
        assert_eq!(match_path(&PathMatch::Prefix("/Films".into()), true, "/films"), None);
        assert_eq!(match_path(&PathMatch::Prefix("/Films".into()), false, "/films"), Some(6));
        assert_eq!(match_path(&PathMatch::Path("/a".into()), true, "/a"), Some(2));
        assert_eq!(match_path(&PathMatch::Path("/a".into()), true, "/ab"), None);
        let re = PathMatch::Regex(RegexMatcher::new("/v[0-9]+/.*").unwrap());
        assert!(match_path(&re, true, "/v1/x").is_some());
        assert!(match_path(&re, true, "/x/v1/x").is_none(), "full match only");
        let sep = PathMatch::PathSeparatedPrefix("/api".into());
        assert!(match_path(&sep, true, "/api").is_some() && match_path(&sep, true, "/api/x").is_some());
        assert!(match_path(&sep, true, "/apix").is_none());
    }

    #[test]
    fn view_splits_query() {
        let h = HeaderMap::new();
        let v = view("/p?a=1&b#frag", &h);
        assert_eq!(v.path_only(), "/p");
        assert_eq!(v.query(), Some("a=1&b"));
    }

    #[test]
    fn headers_join_values_and_handle_invert_present_range() {
        let mut h = HeaderMap::new();
        h.append("x-v", "1".parse().unwrap());
        h.append("x-v", "2".parse().unwrap());
        h.insert("x-n", "42".parse().unwrap());
        let v = view("/", &h);
        let exact = |name: &str, val: &str, invert| HeaderMatcher {
            name: name.into(),
            spec: Some(HeaderMatchSpec::String(StringMatcher { pattern: StringMatch::Exact(val.into()), ignore_case: false })),
            invert_match: invert,
            treat_missing_header_as_empty: false,
        };
        assert!(header_matches(&exact("x-v", "1,2", false), &v));
        assert!(!header_matches(&exact("x-v", "1", false), &v));
        assert!(header_matches(&exact("x-v", "1", true), &v));
        assert!(header_matches(&exact(":method", "GET", false), &v));
        assert!(!header_matches(&exact("x-missing", "", false), &v));
        let range = HeaderMatcher {
            name: "x-n".into(),
            spec: Some(HeaderMatchSpec::Range { start: 40, end: 43 }),
            invert_match: false,
            treat_missing_header_as_empty: false,
        };
        assert!(header_matches(&range, &v));
        let absent = HeaderMatcher { name: "x-none".into(), spec: Some(HeaderMatchSpec::Present(false)), invert_match: false, treat_missing_header_as_empty: false };
        assert!(header_matches(&absent, &v));
    }

    #[test]
    fn query_parameters() {
        let m = QueryParameterMatcher {
            name: "name".into(),
            string_match: Some(StringMatcher { pattern: StringMatch::Exact("Anand".into()), ignore_case: false }),
        };
        assert!(query_matches(&m, Some("x=1&name=Anand&name=B")));
        assert!(!query_matches(&m, Some("name=B&name=Anand")));
        assert!(!query_matches(&m, None));
        let present = QueryParameterMatcher { name: "debug".into(), string_match: None };
        assert!(query_matches(&present, Some("debug")));
    }
}
