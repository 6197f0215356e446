//! Route table tests: virtual-host precedence, route order, match kinds through the table.

use super::*;
use legate_config::model::{
    HeaderMatchSpec, HeaderMatcher, PathMatch, QueryParameterMatcher, RegexMatcher, RequireTls, RouteMatch,
    StringMatch, StringMatcher,
};

pub(super) fn forward(target: ClusterTarget) -> RouteAction {
    RouteAction::Forward(Box::new(ForwardAction {
        target,
        prefix_rewrite: None,
        regex_rewrite: None,
        host_rewrite: HostRewrite::None,
        timeout: Some(Duration::from_secs(15)),
        idle_timeout: None,
        max_stream_duration: None,
        hash_policy: vec![],
        retry_policy: None,
        retry_buffer_limit: None,
        attempt_count: legate_config::model::AttemptCount::default(),
    }))
}

pub(super) fn to(cluster: &str) -> RouteAction {
    forward(ClusterTarget::Cluster(cluster.into()))
}

pub(super) fn route(path: PathMatch, action: RouteAction) -> Route {
    Route {
        name: String::new(),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: false,
        },
        action,
        headers: Default::default(),
    }
}

pub(super) fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

pub(super) fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
        headers: Default::default(),
        require_tls: RequireTls::None,
    }
}

pub(super) fn table(vhosts: Vec<VirtualHost>) -> RouteTable {
    RouteTable::new(&RouteConfiguration {
        name: "r".into(),
        virtual_hosts: vhosts,
        headers: Default::default(),
    })
}

pub(super) fn view<'a>(authority: &'a str, path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
    RequestView {
        authority,
        path,
        method: &http::Method::GET,
        headers,
        scheme: "http",
        is_internal: false,
    }
}

/// The name of the virtual host and route serving the request, as "vhost/route".
fn served(t: &RouteTable, authority: &str, path: &str, headers: &HeaderMap) -> Option<String> {
    let m = t.route(&view(authority, path, headers))?;
    Some(format!("{}/{}", m.virtual_host().name, m.name()))
}

fn named(name: &str, path: PathMatch) -> Route {
    Route {
        name: name.into(),
        ..route(path, to("c"))
    }
}

fn catch_all(name: &str, domains: &[&str]) -> VirtualHost {
    vhost(name, domains, vec![named("r", prefix("/"))])
}

#[test]
fn domains_follow_envoy_precedence() {
    // Expectations verified against Envoy 1.40 with the same domains.
    let t = table(vec![
        catch_all("exact", &["h.example", "api.foo.com", "Host:8080"]),
        catch_all("suf", &["*.foo.com"]),
        catch_all("sufbar", &["*-bar.foo.com"]),
        catch_all("pre", &["foo.*"]),
        catch_all("longpre", &["foo.bar.*"]),
        catch_all("any", &["*"]),
    ]);
    let h = HeaderMap::new();
    let vh = |authority: &str| served(&t, authority, "/", &h).map(|s| s.split('/').next().unwrap().to_string());
    for (authority, want) in [
        ("h.example", "exact"),
        ("H.EXAMPLE", "exact"),
        ("host:8080", "exact"),
        ("h.example:8080", "any"),
        ("api.foo.com", "exact"),
        ("x.foo.com", "suf"),
        ("x-bar.foo.com", "sufbar"),
        ("-bar.foo.com", "suf"),
        (".foo.com", "any"),
        ("foo.com", "pre"),
        ("foo.bar.baz", "longpre"),
        ("foo.", "any"),
        ("foo.x.foo.com", "suf"),
        ("", "any"),
        ("other", "any"),
    ] {
        assert_eq!(vh(authority).as_deref(), Some(want), "{authority:?}");
    }
    assert_eq!(t.virtual_host("X.FOO.COM").map(|v| v.name.as_str()), Some("suf"));
}

#[test]
fn no_default_virtual_host_means_no_route() {
    let t = table(vec![catch_all("only", &["a.com"])]);
    let h = HeaderMap::new();
    assert!(served(&t, "b.com", "/", &h).is_none());
    assert!(served(&t, "", "/", &h).is_none());
    assert!(served(&t, "a.com", "/", &h).is_some());
    // Only a default virtual host: every authority, even none, reaches it.
    let t = table(vec![catch_all("d", &["*"])]);
    assert!(served(&t, "", "/", &h).is_some());
    assert!(table(vec![]).route(&view("a", "/", &h)).is_none());
}

#[test]
fn first_matching_route_wins() {
    let t = table(vec![vhost(
        "v",
        &["*"],
        vec![
            named("exact", PathMatch::Path("/api".into())),
            named("sep", PathMatch::PathSeparatedPrefix("/api".into())),
            named("regex", PathMatch::Regex(RegexMatcher::new("/v[0-9]+/.*").unwrap())),
            named("prefix", prefix("/api")),
            named("root", prefix("/")),
        ],
    )]);
    let h = HeaderMap::new();
    for (path, want) in [
        ("/api", "exact"),
        ("/api?x=1", "exact"),
        ("/api/x", "sep"),
        ("/api?x=/", "exact"),
        ("/apix", "prefix"),
        ("/v2/x?y", "regex"),
        ("/V2/x", "root"),
        ("/", "root"),
    ] {
        assert_eq!(
            served(&t, "h", path, &h).as_deref(),
            Some(&*format!("v/{want}")),
            "{path}"
        );
    }
}

#[test]
fn case_insensitive_routes() {
    let mut r = named("ci", prefix("/Films"));
    r.matcher.case_sensitive = false;
    let t = table(vec![vhost("v", &["*"], vec![r])]);
    let h = HeaderMap::new();
    assert!(served(&t, "h", "/fILMs/1", &h).is_some());
    assert!(served(&t, "h", "/fil", &h).is_none());
}

fn with_headers(name: &str, headers: Vec<HeaderMatcher>) -> Route {
    let mut r = named(name, prefix("/"));
    r.matcher.headers = headers;
    r
}

fn hm(name: &str, spec: Option<HeaderMatchSpec>, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        spec,
        invert_match: invert,
        treat_missing_header_as_empty: false,
    }
}

fn exact(v: &str) -> Option<HeaderMatchSpec> {
    Some(HeaderMatchSpec::String(StringMatcher {
        pattern: StringMatch::Exact(v.into()),
        ignore_case: false,
    }))
}

#[test]
fn header_matchers_through_the_table() {
    let t = table(vec![vhost(
        "v",
        &["*"],
        vec![
            with_headers(
                "both",
                vec![hm("x-a", exact("1"), false), hm(":method", exact("POST"), false)],
            ),
            with_headers("not-beta", vec![hm("x-env", exact("beta"), true)]),
            with_headers(
                "range",
                vec![hm("x-n", Some(HeaderMatchSpec::Range { start: 10, end: 20 }), false)],
            ),
            with_headers(
                "absent",
                vec![hm("x-debug", Some(HeaderMatchSpec::Present(false)), false)],
            ),
            named("fallback", prefix("/")),
        ],
    )]);
    let mut h = HeaderMap::new();
    h.insert("x-a", "1".parse().unwrap());
    h.insert("x-env", "beta".parse().unwrap());
    h.insert("x-debug", "1".parse().unwrap());
    assert_eq!(
        served(&t, "h", "/", &h).as_deref(),
        Some("v/fallback"),
        "GET is not POST; beta; debug present"
    );
    let post = RequestView {
        method: &http::Method::POST,
        ..view("h", "/", &h)
    };
    assert_eq!(t.route(&post).map(|m| m.name()), Some("both"));
    h.insert("x-env", "prod".parse().unwrap());
    assert_eq!(served(&t, "h", "/", &h).as_deref(), Some("v/not-beta"));
    h.remove("x-env");
    assert_eq!(
        served(&t, "h", "/", &h).as_deref(),
        Some("v/fallback"),
        "inverted exact needs the header"
    );
    h.insert("x-n", "15".parse().unwrap());
    assert_eq!(served(&t, "h", "/", &h).as_deref(), Some("v/range"));
    h.remove("x-n");
    h.remove("x-debug");
    assert_eq!(served(&t, "h", "/", &h).as_deref(), Some("v/absent"));
}

#[test]
fn query_parameter_matchers_through_the_table() {
    let mut r = named("q", prefix("/search"));
    r.matcher.query_parameters = vec![
        QueryParameterMatcher {
            name: "lang".into(),
            string_match: Some(StringMatcher {
                pattern: StringMatch::Prefix("EN".into()),
                ignore_case: true,
            }),
        },
        QueryParameterMatcher {
            name: "debug".into(),
            string_match: None,
        },
    ];
    let t = table(vec![vhost("v", &["*"], vec![r, named("other", prefix("/"))])]);
    let h = HeaderMap::new();
    assert_eq!(served(&t, "h", "/search?lang=en-GB&debug", &h).as_deref(), Some("v/q"));
    assert_eq!(served(&t, "h", "/search?debug=0&lang=en", &h).as_deref(), Some("v/q"));
    assert_eq!(
        served(&t, "h", "/search?lang=fr&debug&lang=en", &h).as_deref(),
        Some("v/other")
    );
    assert_eq!(served(&t, "h", "/search?lang=en", &h).as_deref(), Some("v/other"));
    assert_eq!(served(&t, "h", "/search", &h).as_deref(), Some("v/other"));
}

#[test]
fn require_tls_redirects_before_routes() {
    let mut secure = vhost(
        "s",
        &["secure.local:8080", "secure.local"],
        vec![named("r", PathMatch::Path("/only".into()))],
    );
    secure.require_tls = RequireTls::All;
    let mut ext = catch_all("e", &["ext.local"]);
    ext.require_tls = RequireTls::ExternalOnly;
    let t = table(vec![secure, ext, catch_all("any", &["*"])]);
    let h = HeaderMap::new();
    // Verified against Envoy 1.40: the Host is kept as received, port included.
    assert_eq!(
        t.tls_redirect(&view("secure.local:8080", "/p?x=1", &h)).as_deref(),
        Some("https://secure.local:8080/p?x=1")
    );
    assert!(
        t.route(&view("secure.local:8080", "/p?x=1", &h)).is_none(),
        "no route, yet Envoy redirects"
    );
    let m = t.route(&view("Secure.Local", "/only", &h)).unwrap();
    assert_eq!(
        m.tls_redirect(&view("Secure.Local", "/only", &h)).as_deref(),
        Some("https://Secure.Local/only")
    );
    let tls = RequestView {
        scheme: "https",
        ..view("secure.local", "/only", &h)
    };
    assert_eq!(t.tls_redirect(&tls), None);
    assert!(t.tls_redirect(&view("ext.local", "/", &h)).is_some());
    let internal = RequestView {
        is_internal: true,
        ..view("ext.local", "/", &h)
    };
    assert_eq!(t.tls_redirect(&internal), None);
    assert_eq!(t.tls_redirect(&view("plain", "/", &h)), None);
}

#[test]
fn table_is_send_and_sync_and_survives_odd_input() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteTable>();
    let t = table(vec![
        catch_all("suf", &["*.é.com"]),
        catch_all("pre", &["é*"]),
        vhost(
            "v",
            &["*"],
            vec![named("sep", PathMatch::PathSeparatedPrefix("/é".into()))],
        ),
    ]);
    let h = HeaderMap::new();
    for authority in ["", "é", "xé.com", ".é.com", "ééé", "a:b:c", "[::1]:80", "\u{7f}"] {
        for path in ["", "?", "#", "/é", "/é/", "é", "/%ff?%%&&=&"] {
            let _ = t.route(&view(authority, path, &h));
            let _ = t.tls_redirect(&view(authority, path, &h));
        }
    }
    assert_eq!(
        served(&t, "aé.com", "/", &h),
        None,
        "no route matches `/` in the default vhost"
    );
}
