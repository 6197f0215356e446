//! Route table tests for what a matched route does: cluster choice, rewrites, redirects, direct
//! responses, header mutations across levels and hashing.

use super::tests::{forward, prefix, route, table, to, vhost, view};
use super::*;
use legate_config::model::{
    AppendAction, FormatPart, HashPolicy, HashSource, HeaderMutations, HeaderValueFormat, HeaderValueOption, PathMatch,
    PathRedirect, RedirectAction, RegexMatcher, WeightedCluster,
};

fn one_route(r: Route) -> RouteTable {
    table(vec![vhost("v", &["*"], vec![r])])
}

fn with_forward(path: PathMatch, f: impl FnOnce(&mut ForwardAction)) -> Route {
    let mut action = to("c");
    if let RouteAction::Forward(fw) = &mut action {
        f(fw);
    }
    route(path, action)
}

fn wc(name: &str, weight: u32) -> WeightedCluster {
    WeightedCluster {
        name: name.into(),
        weight,
        headers: HeaderMutations::default(),
    }
}

#[test]
fn single_and_header_clusters() {
    let h = HeaderMap::new();
    let t = one_route(route(prefix("/"), to("backend")));
    let mut m = t.route(&view("h", "/", &h)).unwrap();
    assert_eq!(m.select_cluster(&h, 7), Some("backend"));
    assert_eq!(m.timeout(), Some(Duration::from_secs(15)));
    assert_eq!(m.selected_weighted_cluster(), None);

    let t = one_route(route(
        prefix("/"),
        forward(ClusterTarget::ClusterHeader("X-Cluster".into())),
    ));
    let mut req = HeaderMap::new();
    let mut m = t.route(&view("h", "/", &req)).unwrap();
    assert_eq!(m.select_cluster(&req, 0), None, "missing header: Envoy answers 503 NC");
    req.insert("x-cluster", "".parse().unwrap());
    assert_eq!(m.select_cluster(&req, 0), None, "empty header: 503 NC");
    req.insert("x-cluster", "blue".parse().unwrap());
    req.append("x-cluster", "green".parse().unwrap());
    assert_eq!(m.select_cluster(&req, 0), Some("blue"), "first value only");

    let t = one_route(route(
        prefix("/"),
        RouteAction::DirectResponse {
            status: 200,
            body: None,
        },
    ));
    let mut m = t.route(&view("h", "/", &h)).unwrap();
    assert_eq!(m.select_cluster(&h, 0), None);
    assert_eq!(m.timeout(), None);
}

#[test]
fn weighted_distribution() {
    let t = one_route(route(
        prefix("/"),
        forward(ClusterTarget::Weighted(vec![wc("a", 20), wc("b", 0), wc("c", 80)])),
    ));
    let h = HeaderMap::new();
    let mut m = t.route(&view("h", "/", &h)).unwrap();
    // Deterministic: every residue of the total weight once.
    let mut counts = HashMap::new();
    for r in 0..100u64 {
        *counts.entry(m.select_cluster(&h, r).unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        (counts.get("a"), counts.get("b"), counts.get("c")),
        (Some(&20), None, Some(&80))
    );
    assert_eq!(m.select_cluster(&h, 19), Some("a"));
    assert_eq!(m.selected_weighted_cluster(), Some(0));
    assert_eq!(m.select_cluster(&h, 20), Some("c"));
    assert_eq!(m.selected_weighted_cluster(), Some(2));
    // Random values: within a few percent of the weights.
    let mut a = 0;
    for _ in 0..20_000 {
        if m.select_cluster(&h, rand::random::<u64>()) == Some("a") {
            a += 1;
        }
    }
    assert!((3_400..4_600).contains(&a), "{a} of 20000 for weight 20%");
}

#[test]
fn path_rewrites_through_the_table() {
    let h = HeaderMap::new();
    let t = one_route(with_forward(prefix("/api"), |f| f.prefix_rewrite = Some("/v2".into())));
    let m = t.route(&view("h", "/api/users?id=1", &h)).unwrap();
    assert_eq!(m.rewritten_path("/api/users?id=1").as_deref(), Some("/v2/users?id=1"));
    let mut up = HeaderMap::new();
    assert_eq!(
        m.apply_path_rewrite(&mut up, "/api/users?id=1").as_deref(),
        Some("/v2/users?id=1")
    );
    assert_eq!(up[&ORIGINAL_PATH], "/api/users?id=1");

    // Verified against Envoy 1.40: a rewrite that changes nothing still sends the original path.
    let t = one_route(with_forward(prefix("/same"), |f| {
        f.prefix_rewrite = Some("/same".into())
    }));
    let m = t.route(&view("h", "/same/x?q=1", &h)).unwrap();
    let mut up = HeaderMap::new();
    assert_eq!(
        m.apply_path_rewrite(&mut up, "/same/x?q=1").as_deref(),
        Some("/same/x?q=1")
    );
    assert_eq!(up[&ORIGINAL_PATH], "/same/x?q=1");

    let t = one_route(with_forward(
        PathMatch::Regex(RegexMatcher::new("/rx/([a-z]+)/(.*)").unwrap()),
        |f| {
            f.regex_rewrite = Some((RegexMatcher::new("^/rx/([a-z]+)/(.*)$").unwrap(), r"/x/\2/\1".into()));
        },
    ));
    let m = t.route(&view("h", "/rx/abc/def/g?q=1", &h)).unwrap();
    assert_eq!(
        m.rewritten_path("/rx/abc/def/g?q=1").as_deref(),
        Some("/x/def/g/abc?q=1")
    );

    let t = one_route(route(prefix("/"), to("c")));
    let m = t.route(&view("h", "/x", &h)).unwrap();
    let mut up = HeaderMap::new();
    assert_eq!(m.apply_path_rewrite(&mut up, "/x"), None);
    assert!(up.is_empty());
}

#[test]
fn host_rewrites() {
    let h = HeaderMap::new();
    let t = one_route(with_forward(prefix("/"), |f| {
        f.host_rewrite = HostRewrite::Literal("rewritten.example".into())
    }));
    let m = t.route(&view("h", "/", &h)).unwrap();
    assert_eq!(m.host_rewrite(), &HostRewrite::Literal("rewritten.example".into()));
    assert_eq!(m.rewritten_host("ignored"), Some("rewritten.example"));
    // Verified against Envoy 1.40: Host rewritten, the old one in x-envoy-original-host.
    let mut up = HeaderMap::new();
    up.insert(HOST, "orig.example".parse().unwrap());
    assert!(m.apply_host_rewrite(&mut up, ""));
    assert_eq!(up[HOST], "rewritten.example");
    assert_eq!(up[&ORIGINAL_HOST], "orig.example");
    assert!(!up.contains_key("x-forwarded-host"));

    let t = one_route(with_forward(prefix("/"), |f| f.host_rewrite = HostRewrite::Auto));
    let m = t.route(&view("h", "/", &h)).unwrap();
    assert_eq!(m.rewritten_host("api.internal"), Some("api.internal"));
    let mut up = HeaderMap::new();
    assert!(!m.apply_host_rewrite(&mut up, ""), "no hostname, no rewrite");
    assert!(m.apply_host_rewrite(&mut up, "api.internal"));
    assert_eq!(up[HOST], "api.internal");
    assert!(!up.contains_key(&ORIGINAL_HOST), "no previous Host to keep");

    let t = one_route(route(prefix("/"), to("c")));
    let m = t.route(&view("h", "/", &h)).unwrap();
    assert_eq!(m.host_rewrite(), &HostRewrite::None);
    assert_eq!(m.rewritten_host("x"), None);
}

#[test]
fn redirects_and_direct_responses_through_the_table() {
    let h = HeaderMap::new();
    let redirect = RedirectAction {
        path: Some(PathRedirect::PrefixRewrite("/np".into())),
        strip_query: true,
        status: 307,
        ..Default::default()
    };
    let t = table(vec![vhost(
        "v",
        &["*"],
        vec![
            route(prefix("/redir-prefix"), RouteAction::Redirect(redirect)),
            route(
                prefix("/dr301"),
                RouteAction::DirectResponse {
                    status: 301,
                    body: None,
                },
            ),
            route(
                prefix("/dr"),
                RouteAction::DirectResponse {
                    status: 418,
                    body: Some("teapot".into()),
                },
            ),
        ],
    )]);
    // Verified against Envoy 1.40.
    let v = view("H.Example", "/redir-prefix/rest?a=1", &h);
    let m = t.route(&v).unwrap();
    assert_eq!(m.redirect(&v), (307, "http://H.Example/np/rest".to_string()));
    assert_eq!(m.direct_response(), None);
    let v = view("localhost:38571", "/dr301?x=1", &h);
    let m = t.route(&v).unwrap();
    assert_eq!(m.direct_response(), Some((301, None)));
    assert_eq!(
        m.direct_response_location(&v).as_deref(),
        Some("http://localhost:38571/dr301?x=1")
    );
    let v = view("h", "/dr", &h);
    let m = t.route(&v).unwrap();
    assert_eq!(m.direct_response(), Some((418, Some("teapot"))));
    assert_eq!(m.direct_response_location(&v), None);
    assert_eq!(m.redirect(&v), (301, String::new()));
}

fn add(key: &str, value: &str, action: AppendAction) -> HeaderValueOption {
    let parts = if let Some(h) = value.strip_prefix("%REQ(").and_then(|v| v.strip_suffix(")%")) {
        vec![FormatPart::RequestHeader(h.into())]
    } else {
        vec![FormatPart::Literal(value.into())]
    };
    HeaderValueOption {
        key: key.into(),
        value: HeaderValueFormat { parts },
        append_action: action,
        keep_empty_value: false,
    }
}

fn level(req: Vec<HeaderValueOption>, resp: Vec<HeaderValueOption>) -> HeaderMutations {
    HeaderMutations {
        request_headers_to_add: req,
        response_headers_to_add: resp,
        ..Default::default()
    }
}

fn ctx() -> FormatContext<'static> {
    FormatContext {
        downstream_remote: "10.0.0.9:4000".parse().unwrap(),
        downstream_local: "10.0.0.1:8080".parse().unwrap(),
        protocol: "HTTP/1.1",
        hostname: "box",
        upstream_remote: None,
    }
}

fn values<'h>(h: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    h.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
}

/// The configuration of the Envoy 1.40 run these expectations were observed from.
fn leveled_table(weighted: bool) -> RouteTable {
    use AppendAction::{AppendIfExistsOrAdd as Append, OverwriteIfExistsOrAdd as Overwrite};
    let mut r = route(prefix("/mut"), to("c"));
    if weighted {
        let mut w = wc("w", 1);
        w.headers = level(
            vec![
                add("x-order", "weighted", Append),
                add("x-level", "weighted", Overwrite),
            ],
            vec![],
        );
        r.action = forward(ClusterTarget::Weighted(vec![w]));
    }
    r.headers = level(
        vec![
            add("x-level", "route", Overwrite),
            add("x-order", "route", Append),
            add("x-route-added", "r", Append),
        ],
        vec![add("x-resp-level", "route", Overwrite)],
    );
    r.headers.request_headers_to_remove = vec!["x-remove-me".into()];
    let mut vh = vhost("v", &["*"], vec![r]);
    vh.headers = level(
        vec![add("x-level", "vhost", Overwrite), add("x-order", "vhost", Append)],
        vec![add("x-resp-level", "vhost", Overwrite)],
    );
    RouteTable::new(&RouteConfiguration {
        name: "rc".into(),
        virtual_hosts: vec![vh],
        headers: level(
            vec![
                add("x-level", "global", Overwrite),
                add("x-order", "global", Append),
                add("x-req-copy", "%REQ(x-route-added)%", Append),
            ],
            vec![
                add("x-resp-level", "global", Overwrite),
                add("x-multi-req", "%REQ(x-multi)%", Append),
            ],
        ),
    })
}

#[test]
fn mutation_levels_run_most_specific_first() {
    // Verified against Envoy 1.40: x-level ends "global", x-order is "route, vhost, global",
    // the global level's %REQ(x-route-added)% sees the route level's header, x-remove-me is gone,
    // and the response's %REQ(x-multi)% is the first value.
    let t = leveled_table(false);
    let mut req = HeaderMap::new();
    req.insert("x-remove-me", "1".parse().unwrap());
    req.append("x-multi", "m1".parse().unwrap());
    req.append("x-multi", "m2".parse().unwrap());
    let m = t.route(&view("h", "/mut", &req)).unwrap();
    m.apply_request_mutations(&mut req, &ctx());
    assert_eq!(values(&req, "x-level"), ["global"]);
    assert_eq!(values(&req, "x-order"), ["route", "vhost", "global"]);
    assert_eq!(values(&req, "x-req-copy"), ["r"]);
    assert!(!req.contains_key("x-remove-me"));
    assert!(m.has_response_mutations() && m.response_mutations_read_request());
    let mut resp = HeaderMap::new();
    m.apply_response_mutations(&mut resp, &ctx(), &req);
    assert_eq!(values(&resp, "x-resp-level"), ["global"]);
    assert_eq!(values(&resp, "x-multi-req"), ["m1"]);
}

#[test]
fn weighted_cluster_level_comes_first_once_chosen() {
    let t = leveled_table(true);
    let mut req = HeaderMap::new();
    let mut m = t.route(&view("h", "/mut", &req)).unwrap();
    m.apply_request_mutations(&mut req, &ctx());
    assert_eq!(
        values(&req, "x-order"),
        ["route", "vhost", "global"],
        "no weighted level before the pick"
    );
    let mut req = HeaderMap::new();
    assert_eq!(m.select_cluster(&req, 0), Some("w"));
    m.apply_request_mutations(&mut req, &ctx());
    assert_eq!(values(&req, "x-order"), ["weighted", "route", "vhost", "global"]);
    assert_eq!(values(&req, "x-level"), ["global"]);
}

#[test]
fn routes_without_mutations() {
    let t = one_route(route(prefix("/"), to("c")));
    let mut req = HeaderMap::new();
    req.insert("x-a", "1".parse().unwrap());
    let m = t.route(&view("h", "/", &req)).unwrap();
    assert!(!m.has_response_mutations() && !m.response_mutations_read_request());
    m.apply_request_mutations(&mut req, &ctx());
    assert_eq!(req.len(), 1);
}

#[test]
fn hashing_through_the_table_is_stable() {
    let policies = vec![
        HashPolicy {
            source: HashSource::Header("x-user".into()),
            terminal: true,
        },
        HashPolicy {
            source: HashSource::SourceIp,
            terminal: false,
        },
    ];
    let t = one_route(with_forward(prefix("/"), |f| f.hash_policy = policies));
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let mut h = HeaderMap::new();
    let m = t.route(&view("h", "/", &h)).unwrap();
    let ip_only = m.compute_hash(&h, ip, "/");
    assert_eq!(ip_only, Some(xxhash_rust::xxh64::xxh64(b"192.0.2.7", 0)));
    h.insert("x-user", "alice".parse().unwrap());
    let user = m.compute_hash(&h, ip, "/");
    assert_eq!(
        user,
        Some(xxhash_rust::xxh64::xxh64(b"alice", 0)),
        "terminal: the IP is not folded in"
    );
    assert_eq!(
        m.compute_hash(&h, "::1".parse().unwrap(), "/other"),
        user,
        "same input, same hash"
    );
    let t = one_route(route(prefix("/"), to("c")));
    assert_eq!(t.route(&view("h", "/", &h)).unwrap().compute_hash(&h, ip, "/"), None);
}
