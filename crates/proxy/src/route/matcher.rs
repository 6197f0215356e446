//! Route matching: the request view, path specifiers, header and query-parameter matchers, all
//! compiled once from the model so that matching a request allocates nothing.

use http::{HeaderMap, HeaderName};
use legate_config::model::{HeaderMatchSpec, HeaderMatcher, PathMatch, QueryParameterMatcher, RouteMatch};
use legate_upstream::string_match::StrMatcher;

/// The request facts route matching looks at.
pub struct RequestView<'a> {
    /// `:authority` (Host) as received. Virtual-host selection lower-cases it (port kept, like
    /// Envoy's default); `:authority` header matchers and redirect locations see it as received,
    /// as Envoy does. Empty means absent.
    pub authority: &'a str,
    /// Path and query as received (`:path`).
    pub path: &'a str,
    /// Method.
    pub method: &'a http::Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// `http` or `https`: the scheme Envoy would put in `x-forwarded-proto`.
    pub scheme: &'a str,
    /// Whether the request is internal (Envoy's `x-envoy-internal: true`), for
    /// `require_tls: EXTERNAL_ONLY`.
    pub is_internal: bool,
}

impl RequestView<'_> {
    /// The path without query string or fragment.
    pub fn path_only(&self) -> &str {
        path_without_query(self.path)
    }

    /// The query string (without `?`): everything after the first `?`, like Envoy's parser.
    pub fn query(&self) -> Option<&str> {
        query_of(self.path)
    }
}

/// `path` without query and fragment (Envoy's `removeQueryAndFragment`).
pub(crate) fn path_without_query(path: &str) -> &str {
    let end = path.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(path.len());
    &path[..end]
}

/// Everything after the first `?` (Envoy's `parseQueryString` input).
pub(crate) fn query_of(path: &str) -> Option<&str> {
    path.find('?').map(|i| &path[i + 1..])
}

/// The first value of query parameter `name`, not percent-decoded (Envoy matches and hashes the
/// raw value: `?q=a%20b` matches `exact: "a%20b"`, not `"a b"` — verified against Envoy 1.40).
/// A parameter without `=` has the empty value.
pub(crate) fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|param| {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        (key == name).then_some(value)
    })
}

/// Where a header matcher reads its value.
#[derive(Debug, Clone)]
enum Target {
    /// `:path` (with the query string).
    Path,
    /// `:method`.
    Method,
    /// `:authority` or `host` (both find the Host header in Envoy — verified against Envoy 1.40).
    Authority,
    /// `:scheme`.
    Scheme,
    /// A regular header.
    Header(HeaderName),
    /// A pseudo-header Legate never has (`:protocol`...): always missing.
    Absent,
}

/// What a header matcher tests.
#[derive(Debug, Clone)]
enum Test {
    Present(bool),
    Str(StrMatcher),
    Range { start: i64, end: i64 },
}

/// A compiled `HeaderMatcher`.
#[derive(Debug, Clone)]
pub(crate) struct HeaderCheck {
    target: Target,
    test: Test,
    invert: bool,
    treat_missing_as_empty: bool,
}

impl HeaderCheck {
    /// Compiles `m`; a matcher without specifier tests presence, like Envoy.
    pub(crate) fn new(m: &HeaderMatcher) -> Self {
        let target = match m.name.as_str() {
            ":path" => Target::Path,
            ":method" => Target::Method,
            ":authority" | "host" => Target::Authority,
            ":scheme" => Target::Scheme,
            name => HeaderName::from_bytes(name.as_bytes()).map_or(Target::Absent, Target::Header),
        };
        let test = match &m.spec {
            None => Test::Present(true),
            Some(HeaderMatchSpec::Present(p)) => Test::Present(*p),
            Some(HeaderMatchSpec::String(s)) => Test::Str(StrMatcher::new(s)),
            Some(HeaderMatchSpec::Range { start, end }) => Test::Range {
                start: *start,
                end: *end,
            },
        };
        Self {
            target,
            test,
            invert: m.invert_match,
            treat_missing_as_empty: m.treat_missing_header_as_empty,
        }
    }

    /// Whether the request satisfies this matcher.
    ///
    /// Envoy 1.40 tests each value of a repeated header on its own and matches when any value
    /// does (`x-v: 1` + `x-v: 2` matches `exact: "1"` and `exact: "2"` but not `exact: "1,2"`),
    /// then applies `invert_match` — verified against Envoy 1.40. A missing header never matches
    /// a value test, inverted or not, unless `treat_missing_header_as_empty`; for
    /// `present_match` it counts as absent (so inverted presence matches it).
    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        match &self.target {
            Target::Path => self.single(Some(req.path.as_bytes())),
            Target::Method => self.single(Some(req.method.as_str().as_bytes())),
            Target::Authority => self.single((!req.authority.is_empty()).then_some(req.authority.as_bytes())),
            Target::Scheme => self.single(Some(req.scheme.as_bytes())),
            Target::Absent => self.single(None),
            Target::Header(name) => {
                let mut values = req.headers.get_all(name).iter().peekable();
                if values.peek().is_none() {
                    return self.missing();
                }
                let any = match &self.test {
                    Test::Present(p) => *p,
                    _ => values.any(|v| self.test_value(v.as_bytes())),
                };
                any != self.invert
            }
        }
    }

    fn single(&self, value: Option<&[u8]>) -> bool {
        match value {
            None => self.missing(),
            Some(v) => {
                let matched = match &self.test {
                    Test::Present(p) => *p,
                    _ => self.test_value(v),
                };
                matched != self.invert
            }
        }
    }

    fn missing(&self) -> bool {
        match &self.test {
            Test::Present(p) => (self.treat_missing_as_empty == *p) != self.invert,
            _ if self.treat_missing_as_empty => self.test_value(b"") != self.invert,
            _ => false,
        }
    }

    fn test_value(&self, value: &[u8]) -> bool {
        match &self.test {
            Test::Present(p) => *p,
            Test::Str(s) => s.matches(value),
            // absl::SimpleAtoi: surrounding whitespace and a sign are accepted (" 42 ", "+41"
            // match [40, 43) — verified against Envoy 1.40).
            Test::Range { start, end } => std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim_matches(|c: char| c.is_ascii_whitespace()).parse::<i64>().ok())
                .is_some_and(|n| n >= *start && n < *end),
        }
    }
}

/// A compiled `QueryParameterMatcher`.
#[derive(Debug, Clone)]
pub(crate) struct QueryCheck {
    name: String,
    test: Option<StrMatcher>,
}

impl QueryCheck {
    /// Compiles `m`.
    pub(crate) fn new(m: &QueryParameterMatcher) -> Self {
        Self {
            name: m.name.clone(),
            test: m.string_match.as_ref().map(StrMatcher::new),
        }
    }

    /// Whether the first occurrence of the parameter exists and satisfies the matcher.
    pub(crate) fn matches(&self, query: Option<&str>) -> bool {
        match query.and_then(|q| query_param(q, &self.name)) {
            None => false,
            Some(v) => self.test.as_ref().is_none_or(|t| t.matches(v.as_bytes())),
        }
    }
}

/// A compiled path specifier.
#[derive(Debug, Clone)]
enum PathSpec {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
    Separated(String),
}

/// A compiled route `match`.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMatch {
    path: PathSpec,
    case_sensitive: bool,
    headers: Vec<HeaderCheck>,
    query: Vec<QueryCheck>,
    grpc: bool,
}

impl CompiledMatch {
    /// Compiles `m`.
    pub(crate) fn new(m: &RouteMatch) -> Self {
        let path = match &m.path {
            PathMatch::Prefix(p) => PathSpec::Prefix(p.clone()),
            PathMatch::Path(p) => PathSpec::Exact(p.clone()),
            PathMatch::Regex(r) => PathSpec::Regex(r.full.clone()),
            PathMatch::PathSeparatedPrefix(p) => PathSpec::Separated(p.clone()),
        };
        Self {
            path,
            case_sensitive: m.case_sensitive,
            headers: m.headers.iter().map(HeaderCheck::new).collect(),
            query: m.query_parameters.iter().map(QueryCheck::new).collect(),
            grpc: m.grpc,
        }
    }

    /// Whether the request matches. `path` is the path without query and fragment, `query` the
    /// query string. Path specifiers ignore the query (verified against Envoy 1.40 for `path`,
    /// `safe_regex` and `path_separated_prefix`); `case_sensitive: false` does not apply to
    /// regexes, like Envoy.
    pub(crate) fn matches(&self, req: &RequestView<'_>, path: &str, query: Option<&str>) -> bool {
        self.path_matches(path)
            && (!self.grpc || crate::grpc::is_grpc(req.headers))
            && self.headers.iter().all(|h| h.matches(req))
            && self.query.iter().all(|q| q.matches(query))
    }

    fn path_matches(&self, path: &str) -> bool {
        let starts = |prefix: &str| {
            let (p, b) = (path.as_bytes(), prefix.as_bytes());
            p.len() >= b.len() && self.eq(&p[..b.len()], b)
        };
        match &self.path {
            PathSpec::Prefix(p) => starts(p),
            PathSpec::Exact(p) => self.eq(path.as_bytes(), p.as_bytes()),
            PathSpec::Regex(r) => r.is_match(path),
            PathSpec::Separated(p) => starts(p) && matches!(path.as_bytes().get(p.len()), None | Some(b'/')),
        }
    }

    /// Equal-length comparison. The last bytes are compared first: route lists tend to share
    /// leading bytes (`/api/...`), and this rejects most candidates without a full comparison.
    fn eq(&self, a: &[u8], b: &[u8]) -> bool {
        if self.case_sensitive {
            // A byte loop beats a memcmp call for the short strings routes hold.
            a.len() == b.len() && a.last() == b.last() && a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a.last().map(u8::to_ascii_lowercase) == b.last().map(u8::to_ascii_lowercase) && a.eq_ignore_ascii_case(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::{RegexMatcher, StringMatch, StringMatcher};

    fn view<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            authority: "MiXeD.example",
            path,
            method: &http::Method::GET,
            headers,
            scheme: "http",
            is_internal: false,
        }
    }

    fn m(path: PathMatch, case_sensitive: bool) -> CompiledMatch {
        CompiledMatch::new(&RouteMatch {
            path,
            case_sensitive,
            headers: vec![],
            query_parameters: vec![],
            grpc: false,
        })
    }

    fn hm(name: &str, spec: Option<HeaderMatchSpec>, invert: bool, treat_missing: bool) -> HeaderCheck {
        HeaderCheck::new(&HeaderMatcher {
            name: name.into(),
            spec,
            invert_match: invert,
            treat_missing_header_as_empty: treat_missing,
        })
    }

    fn s(pattern: StringMatch, ignore_case: bool) -> Option<HeaderMatchSpec> {
        Some(HeaderMatchSpec::String(StringMatcher { pattern, ignore_case }))
    }

    #[test]
    fn path_specifiers() {
        let h = HeaderMap::new();
        let v = view("/", &h);
        let ok = |c: &CompiledMatch, p: &str| c.matches(&v, path_without_query(p), query_of(p));
        let prefix = m(PathMatch::Prefix("/Films".into()), true);
        assert!(ok(&prefix, "/Films/1?x") && !ok(&prefix, "/films/1"));
        let ci = m(PathMatch::Prefix("/Films".into()), false);
        assert!(ok(&ci, "/fILMS") && !ok(&ci, "/fil"));
        let exact = m(PathMatch::Path("/a".into()), true);
        assert!(ok(&exact, "/a?b=1") && ok(&exact, "/a#frag") && !ok(&exact, "/ab"));
        let re = m(PathMatch::Regex(RegexMatcher::new("/v[0-9]+/.*").unwrap()), false);
        assert!(
            ok(&re, "/v1/x?y=z") && !ok(&re, "/x/v1/x") && !ok(&re, "/V1/x"),
            "full match, case kept"
        );
        let sep = m(PathMatch::PathSeparatedPrefix("/api".into()), true);
        assert!(ok(&sep, "/api") && ok(&sep, "/api/x") && ok(&sep, "/api?q") && !ok(&sep, "/apix"));
        let sep_ci = m(PathMatch::PathSeparatedPrefix("/API".into()), false);
        assert!(ok(&sep_ci, "/api/v1"));
        // Multi-byte paths never panic on slicing.
        assert!(!ok(&m(PathMatch::Prefix("/é".into()), false), "/e"));
        assert!(ok(&m(PathMatch::Prefix("/é".into()), false), "/é/x"));
    }

    #[test]
    fn query_splitting() {
        let h = HeaderMap::new();
        let v = view("/p?a=1&b#frag", &h);
        assert_eq!(v.path_only(), "/p");
        assert_eq!(v.query(), Some("a=1&b#frag"));
        assert_eq!(query_param("a=1&b&a=2", "a"), Some("1"));
        assert_eq!(query_param("a=1&b&a=2", "b"), Some(""));
        assert_eq!(query_param("x=a=b", "x"), Some("a=b"));
        assert_eq!(query_param("", "x"), None);
    }

    #[test]
    fn pseudo_headers_and_authority_case() {
        let h = HeaderMap::new();
        let v = view("/pq?x=1", &h);
        let exact = |name: &str, val: &str| hm(name, s(StringMatch::Exact(val.into()), false), false, false);
        // `:path` includes the query; `:authority` keeps the received case (verified against
        // Envoy 1.40); `host` finds the authority too.
        assert!(exact(":path", "/pq?x=1").matches(&v));
        assert!(exact(":authority", "MiXeD.example").matches(&v));
        assert!(hm("host", None, false, false).matches(&v));
        assert!(exact(":method", "GET").matches(&v));
        assert!(exact(":scheme", "http").matches(&v));
        assert!(!hm(":protocol", None, false, false).matches(&v));
        let no_host = RequestView {
            authority: "",
            ..view("/", &h)
        };
        assert!(!hm(":authority", None, false, false).matches(&no_host));
    }

    #[test]
    fn repeated_headers_match_per_value() {
        // Verified against Envoy 1.40 with `x-v: 1` and `x-v: 2` sent as two header lines.
        let mut h = HeaderMap::new();
        h.append("x-v", "1".parse().unwrap());
        h.append("x-v", "2".parse().unwrap());
        let v = view("/", &h);
        let exact = |val: &str, invert| hm("x-v", s(StringMatch::Exact(val.into()), false), invert, false);
        assert!(exact("1", false).matches(&v));
        assert!(exact("2", false).matches(&v));
        assert!(!exact("1,2", false).matches(&v));
        assert!(!exact("1", true).matches(&v), "inverted: some value matched");
        assert!(exact("3", true).matches(&v));
        let re = hm(
            "x-v",
            s(StringMatch::Regex(RegexMatcher::new("1,2").unwrap()), false),
            false,
            false,
        );
        assert!(!re.matches(&v));
        assert!(hm("x-v", Some(HeaderMatchSpec::Range { start: 2, end: 3 }), false, false).matches(&v));
        // One header line holding "1,2" is a single value.
        let mut one = HeaderMap::new();
        one.insert("x-v", "1,2".parse().unwrap());
        assert!(exact("1,2", false).matches(&view("/", &one)));
        assert!(exact("1", true).matches(&view("/", &one)));
    }

    #[test]
    fn missing_headers_invert_present_and_treat_as_empty() {
        let h = HeaderMap::new();
        let v = view("/", &h);
        let exact_a = |invert, treat| hm("x-none", s(StringMatch::Exact("a".into()), false), invert, treat);
        // Verified against Envoy 1.40: a missing header fails a value test even inverted...
        assert!(!exact_a(false, false).matches(&v));
        assert!(!exact_a(true, false).matches(&v));
        // ...unless treated as empty.
        assert!(exact_a(true, true).matches(&v));
        assert!(hm("x-none", s(StringMatch::Exact(String::new()), false), false, true).matches(&v));
        // present_match: true + treat_missing_header_as_empty matches a missing header, and
        // present_match: true + invert_match matches it (both verified against Envoy 1.40).
        let present = |p, invert, treat| hm("x-none", Some(HeaderMatchSpec::Present(p)), invert, treat);
        assert!(present(true, false, true).matches(&v));
        assert!(present(true, true, false).matches(&v));
        assert!(!present(true, false, false).matches(&v));
        assert!(present(false, false, false).matches(&v));
        assert!(!hm("x-none", None, false, false).matches(&v));
    }

    #[test]
    fn range_parsing() {
        let mut h = HeaderMap::new();
        let r = hm("x-n", Some(HeaderMatchSpec::Range { start: 40, end: 43 }), false, false);
        for (value, want) in [
            (" 42 ", true),
            ("+41", true),
            ("43", false),
            ("-1", false),
            ("4x", false),
            ("", false),
        ] {
            h.insert("x-n", value.parse().unwrap());
            assert_eq!(r.matches(&view("/", &h)), want, "{value:?}");
        }
        h.insert("x-n", http::HeaderValue::from_bytes(&[0xff]).unwrap());
        assert!(!r.matches(&view("/", &h)));
    }

    #[test]
    fn query_parameters() {
        let exact = |val: &str| {
            QueryCheck::new(&QueryParameterMatcher {
                name: "q".into(),
                string_match: Some(StringMatcher {
                    pattern: StringMatch::Exact(val.into()),
                    ignore_case: false,
                }),
            })
        };
        assert!(exact("Anand").matches(Some("x=1&q=Anand&q=B")));
        assert!(!exact("Anand").matches(Some("q=B&q=Anand")), "first occurrence only");
        assert!(!exact("Anand").matches(None));
        // Not decoded (verified against Envoy 1.40).
        assert!(exact("a%20b").matches(Some("q=a%20b")));
        assert!(!exact("a b").matches(Some("q=a%20b")));
        let present = QueryCheck::new(&QueryParameterMatcher {
            name: "debug".into(),
            string_match: None,
        });
        assert!(present.matches(Some("debug")) && present.matches(Some("a&debug=0")));
        assert!(!present.matches(Some("debugx=1")) && !present.matches(None));
    }
}
