//! Route table tests: domain precedence, route order, cluster choice, rewrites, redirects, hashing.

use super::*;
use legate_config::model::{
    ForwardAction, HashPolicy, PathRedirect, RedirectAction, RegexMatcher, RouteMatch, WeightedCluster,
};

fn forward(target: ClusterTarget) -> RouteAction {
    RouteAction::Forward(Box::new(ForwardAction {
        target,
        prefix_rewrite: None,
        regex_rewrite: None,
        host_rewrite: HostRewrite::None,
        timeout: None,
        hash_policy: vec![],
    }))
}

fn route(path: PathMatch, action: RouteAction) -> Route {
    Route {
        name: String::new(),
        matcher: RouteMatch { path, case_sensitive: true, headers: vec![], query_parameters: vec![] },
        action,
        headers: Default::default(),
    }
}

fn to(cluster: &str) -> RouteAction {
    forward(ClusterTarget::Cluster(cluster.into()))
}

fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
        headers: Default::default(),
        require_tls: RequireTls::None,
    }
}

fn table(vhosts: Vec<VirtualHost>) -> RouteTable {
    RouteTable::new(&RouteConfiguration { name: "r".into(), virtual_hosts: vhosts, headers: Default::default() })
}

fn cluster_for(t: &RouteTable, authority: &str, path: &str) -> Option<String> {
    let h = HeaderMap::new();
    let v = RequestView { authority, path, method: &http::Method::GET, headers: &h, scheme: "http", is_internal: false };
    let mut m = t.route(&v)?;
    m.select_cluster(&h, 0).map(str::to_string)
}

#[test]
fn domains_follow_envoy_precedence() {
    let t = table(vec![
        vhost("any", &["*"], vec![route(PathMatch::Prefix("/".into()), to("any"))]),
        vhost("pre", &["api.*"], vec![route(PathMatch::Prefix("/".into()), to("pre"))]),
        vhost("suf", &["*.example.com"], vec![route(PathMatch::Prefix("/".into()), to("suf"))]),
        vhost("longsuf", &["*.a.example.com"], vec![route(PathMatch::Prefix("/".into()), to("longsuf"))]),
        vhost("exact", &["api.example.com", "host:8080"], vec![route(PathMatch::Prefix("/".into()), to("exact"))]),
    ]);
    assert_eq!(cluster_for(&t, "api.example.com", "/").as_deref(), Some("exact"));
    assert_eq!(cluster_for(&t, "x.a.example.com", "/").as_deref(), Some("longsuf"));
    assert_eq!(cluster_for(&t, "b.example.com", "/").as_deref(), Some("suf"));
    assert_eq!(cluster_for(&t, "api.other", "/").as_deref(), Some("pre"));
    assert_eq!(cluster_for(&t, "host:8080", "/").as_deref(), Some("exact"));
    assert_eq!(cluster_for(&t, "host", "/").as_deref(), Some("any"), "port is not stripped");
    assert_eq!(cluster_for(&t, "example.com", "/").as_deref(), Some("any"), "wildcard needs a non-empty match");
}

#[test]
fn first_matching_route_wins_and_query_is_ignored() {
    let t = table(vec![vhost(
        "b",
        &["*"],
        vec![
            route(PathMatch::Path("/films".into()), to("exact")),
            route(PathMatch::Prefix("/films".into()), to("films")),
            route(PathMatch::Regex(RegexMatcher::new("/r/[0-9]+").unwrap()), to("re")),
        ],
    )]);
    assert_eq!(cluster_for(&t, "h", "/films?name=x").as_deref(), Some("exact"));
    assert_eq!(cluster_for(&t, "h", "/films/1").as_deref(), Some("films"));
    assert_eq!(cluster_for(&t, "h", "/r/12?x").as_deref(), Some("re"));
    assert_eq!(cluster_for(&t, "h", "/nope"), None);
}

#[test]
fn weighted_clusters_split_by_weight() {
    let w = |name: &str, weight| WeightedCluster { name: name.into(), weight, headers: Default::default() };
    let t = table(vec![vhost(
        "b",
        &["*"],
        vec![route(PathMatch::Prefix("/".into()), forward(ClusterTarget::Weighted(vec![w("a", 1), w("b", 3)])))],
    )]);
    let h = HeaderMap::new();
    let v = RequestView { authority: "h", path: "/", method: &http::Method::GET, headers: &h, scheme: "http", is_internal: false };
    let picks: Vec<_> = (0..4).map(|r| t.route(&v).unwrap().select_cluster(&h, r).unwrap().to_string()).collect();
    assert_eq!(picks, ["a", "b", "b", "b"]);
}

#[test]
fn rewrites_keep_the_query() {
    let mut action = ForwardAction {
        target: ClusterTarget::Cluster("c".into()),
        prefix_rewrite: Some("/v2".into()),
        regex_rewrite: None,
        host_rewrite: HostRewrite::Literal("new.host".into()),
        timeout: None,
        hash_policy: vec![],
    };
    let t = table(vec![vhost("b", &["*"], vec![route(PathMatch::Prefix("/api".into()), RouteAction::Forward(Box::new(action.clone())))])]);
    let h = HeaderMap::new();
    let v = RequestView { authority: "h", path: "/api/x?q=1", method: &http::Method::GET, headers: &h, scheme: "http", is_internal: false };
    let m = t.route(&v).unwrap();
    assert_eq!(m.rewritten_path("/api/x?q=1").as_deref(), Some("/v2/x?q=1"));
    assert_eq!(m.rewritten_host("ignored"), Some("new.host"));

    action.prefix_rewrite = None;
    action.regex_rewrite = Some((RegexMatcher::new("^/api/([a-z]+)").unwrap(), "/\\1/index".into()));
    action.host_rewrite = HostRewrite::Auto;
    let t = table(vec![vhost("b", &["*"], vec![route(PathMatch::Prefix("/api".into()), RouteAction::Forward(Box::new(action)))])]);
    let m = t.route(&v).unwrap();
    assert_eq!(m.rewritten_path("/api/x?q=1").as_deref(), Some("/x/index?q=1"));
    assert_eq!(m.rewritten_host("film-service"), Some("film-service"));
    assert_eq!(m.rewritten_host(""), None);
}

#[test]
fn redirects_build_envoy_locations() {
    let redirect = |r: RedirectAction, authority: &str, path: &str| {
        let t = table(vec![vhost("b", &["*"], vec![route(PathMatch::Prefix("/old".into()), RouteAction::Redirect(r))])]);
        let h = HeaderMap::new();
        let v = RequestView { authority, path, method: &http::Method::GET, headers: &h, scheme: "http", is_internal: false };
        t.route(&v).unwrap().redirect(&v)
    };
    let https = RedirectAction { scheme: Some("https".into()), status: 301, ..Default::default() };
    assert_eq!(redirect(https.clone(), "a.com:80", "/old/x?q"), (301, "https://a.com/old/x?q".into()));
    assert_eq!(redirect(https, "a.com:8080", "/old"), (301, "https://a.com:8080/old".into()));
    let prefix = RedirectAction { path: Some(PathRedirect::PrefixRewrite("/new".into())), status: 302, strip_query: true, ..Default::default() };
    assert_eq!(redirect(prefix, "a.com", "/old/x?q=1"), (302, "http://a.com/new/x".into()));
    let host = RedirectAction { host: Some("b.com".into()), port: Some(9000), path: Some(PathRedirect::Path("/p?z=1".into())), status: 307, ..Default::default() };
    assert_eq!(redirect(host, "a.com", "/old?q=1"), (307, "http://b.com:9000/p?z=1".into()));
}

#[test]
fn require_tls_redirects_plain_requests() {
    let mut vh = vhost("b", &["*"], vec![route(PathMatch::Prefix("/".into()), to("c"))]);
    vh.require_tls = RequireTls::ExternalOnly;
    let t = table(vec![vh]);
    let h = HeaderMap::new();
    let mut v = RequestView { authority: "a.com:8080", path: "/x?y", method: &http::Method::GET, headers: &h, scheme: "http", is_internal: false };
    assert_eq!(t.route(&v).unwrap().tls_redirect(&v).as_deref(), Some("https://a.com/x?y"));
    v.is_internal = true;
    assert_eq!(t.route(&v).unwrap().tls_redirect(&v), None);
}

#[test]
fn hashing_is_stable_and_uses_policies() {
    let mut action = ForwardAction {
        target: ClusterTarget::Cluster("c".into()),
        prefix_rewrite: None,
        regex_rewrite: None,
        host_rewrite: HostRewrite::None,
        timeout: None,
        hash_policy: vec![
            HashPolicy { source: HashSource::Header("x-user".into()), terminal: true },
            HashPolicy { source: HashSource::SourceIp, terminal: false },
        ],
    };
    let t = table(vec![vhost("b", &["*"], vec![route(PathMatch::Prefix("/".into()), RouteAction::Forward(Box::new(action.clone())))])]);
    let mut h = HeaderMap::new();
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let hash = |h: &HeaderMap, t: &RouteTable| {
        let v = RequestView { authority: "a", path: "/", method: &http::Method::GET, headers: h, scheme: "http", is_internal: false };
        t.route(&v).unwrap().compute_hash(h, ip, "/")
    };
    let by_ip = hash(&h, &t).unwrap();
    assert_eq!(by_ip, xxhash_rust::xxh64::xxh64(b"10.0.0.1", 0));
    h.insert("x-user", "alice".parse().unwrap());
    assert_eq!(hash(&h, &t), Some(xxhash_rust::xxh64::xxh64(b"alice", 0)), "terminal policy stops");
    action.hash_policy = vec![HashPolicy { source: HashSource::Cookie("sid".into()), terminal: false }];
    let t = table(vec![vhost("b", &["*"], vec![route(PathMatch::Prefix("/".into()), RouteAction::Forward(Box::new(action)))])]);
    h.insert("cookie", "a=1; sid=xyz".parse().unwrap());
    assert_eq!(hash(&h, &t), Some(xxhash_rust::xxh64::xxh64(b"xyz", 0)));
}
