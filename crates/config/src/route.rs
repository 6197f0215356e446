//! `RouteConfiguration`, `VirtualHost`, `Route` and `RouteMatch`.

use std::collections::HashSet;

use serde_json::Value;

use crate::action;
use crate::error::{ConfigError, Result};
use crate::headers::mutations;
use crate::matcher::{header_matcher, query_parameter_matcher, regex};
use crate::model::{
    AttemptCount, PathMatch, RetryPolicy, RequireTls, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
};
use crate::proto;
use crate::reader::{non_empty, required, Obj};

/// What route parsing needs from the rest of the configuration.
pub(crate) struct RouteContext<'c> {
    /// Known cluster names, when `validate_clusters` is on.
    pub clusters: Option<&'c HashSet<String>>,
    /// `max_direct_response_body_size_bytes` (default 4096).
    pub max_direct_response_body: usize,
    /// The virtual host's `retry_policy`, for routes without their own.
    pub retry_policy: Option<RetryPolicy>,
    /// `per_request_buffer_limit_bytes` of the route, else of its virtual host.
    pub buffer_limit: Option<u32>,
    /// The virtual host's `include_request_attempt_count` and
    /// `include_attempt_count_in_response`.
    pub attempt_count: AttemptCount,
}

/// Reads an inline `RouteConfiguration`; `clusters` are the statically defined cluster names.
pub(crate) fn route_configuration(
    v: &Value,
    path: &str,
    clusters: &HashSet<String>,
) -> Result<RouteConfiguration> {
    let mut o = Obj::new(v, path, proto::ROUTE_CONFIGURATION)?;
    let name = o.string("name")?;
    // Envoy defaults validate_clusters to true for statically defined route tables.
    let validate = o.bool("validate_clusters")?.unwrap_or(true);
    let max_body = o
        .u32("max_direct_response_body_size_bytes")?
        .unwrap_or(4096);
    let ctx = RouteContext {
        clusters: validate.then_some(clusters),
        max_direct_response_body: max_body as usize,
        retry_policy: None,
        buffer_limit: None,
        attempt_count: AttemptCount::default(),
    };
    let headers = mutations(&mut o)?;

    let mut virtual_hosts = Vec::new();
    let mut seen_domains: HashSet<String> = HashSet::new();
    let mut wildcard_seen = false;
    for (vh, vh_path) in o.array("virtual_hosts")? {
        let (host, domain_paths) = virtual_host(vh, &vh_path, &ctx)?;
        for (domain, domain_path) in host.domains.iter().zip(domain_paths) {
            if domain == "*" {
                if wildcard_seen {
                    return Err(ConfigError::invalid(
                        domain_path,
                        format!("Only a single wildcard domain is permitted in route {name}"),
                    ));
                }
                wildcard_seen = true;
            } else if !seen_domains.insert(domain.clone()) {
                return Err(ConfigError::invalid(
                    domain_path,
                    format!(
                        "Only unique values for domains are permitted. Duplicate entry of domain {domain} in route {name}"
                    ),
                ));
            }
        }
        virtual_hosts.push(host);
    }
    o.finish()?;
    Ok(RouteConfiguration {
        name,
        virtual_hosts,
        headers,
    })
}

/// Reads a `VirtualHost`; also returns the path of each domain.
fn virtual_host(
    v: &Value,
    path: &str,
    ctx: &RouteContext<'_>,
) -> Result<(VirtualHost, Vec<String>)> {
    let mut o = Obj::new(v, path, proto::VIRTUAL_HOST)?;
    let name_path = o.at("name");
    let name = o.string("name")?;
    non_empty(&name, &name_path)?;
    let domains_path = o.at("domains");
    let mut domains = Vec::new();
    let mut domain_paths = Vec::new();
    for (domain, p) in o.strings("domains")? {
        non_empty(&domain, &p)?;
        domains.push(domain.to_ascii_lowercase());
        domain_paths.push(p);
    }
    if domains.is_empty() {
        return Err(ConfigError::invalid(
            domains_path,
            "value must contain at least 1 item(s)",
        ));
    }
    let require_tls = match o.enumeration(
        "require_tls",
        &[("NONE", 0), ("EXTERNAL_ONLY", 1), ("ALL", 2)],
    )? {
        Some("EXTERNAL_ONLY") => RequireTls::ExternalOnly,
        Some("ALL") => RequireTls::All,
        _ => RequireTls::None,
    };
    let headers = mutations(&mut o)?;
    let retry_path = o.at("retry_policy");
    let retry_policy = o.take("retry_policy").map(|r| crate::retry::retry_policy(r, &retry_path)).transpose()?;
    let ctx = RouteContext {
        clusters: ctx.clusters,
        max_direct_response_body: ctx.max_direct_response_body,
        retry_policy,
        buffer_limit: o.u32("per_request_buffer_limit_bytes")?,
        attempt_count: AttemptCount {
            request: o.bool("include_request_attempt_count")?.unwrap_or(false),
            response: o.bool("include_attempt_count_in_response")?.unwrap_or(false),
        },
    };
    let routes = o
        .array("routes")?
        .into_iter()
        .map(|(r, p)| route(r, &p, &ctx))
        .collect::<Result<Vec<_>>>()?;
    o.finish()?;
    Ok((
        VirtualHost {
            name,
            domains,
            routes,
            headers,
            require_tls,
        },
        domain_paths,
    ))
}

/// Reads a `Route`.
fn route(v: &Value, path: &str, ctx: &RouteContext<'_>) -> Result<Route> {
    let mut o = Obj::new(v, path, proto::ROUTE)?;
    let name = o.string("name")?;
    let match_path = o.at("match");
    let matcher = route_match(
        o.take("match").ok_or_else(|| required(&match_path))?,
        &match_path,
    )?;
    // The route's buffer limit replaces its virtual host's.
    let route_limit = o.u32("per_request_buffer_limit_bytes")?;
    let ctx = &RouteContext {
        clusters: ctx.clusters,
        max_direct_response_body: ctx.max_direct_response_body,
        retry_policy: ctx.retry_policy.clone(),
        buffer_limit: route_limit.or(ctx.buffer_limit),
        attempt_count: ctx.attempt_count,
    };
    let action = match o.oneof(&[
        "route",
        "redirect",
        "direct_response",
        "filter_action",
        "non_forwarding_action",
    ])? {
        Some("route") => {
            let p = o.at("route");
            RouteAction::Forward(Box::new(action::forward(
                o.take("route").unwrap_or(&Value::Null),
                &p,
                ctx,
            )?))
        }
        Some("redirect") => {
            let p = o.at("redirect");
            RouteAction::Redirect(action::redirect(
                o.take("redirect").unwrap_or(&Value::Null),
                &p,
            )?)
        }
        Some("direct_response") => {
            let p = o.at("direct_response");
            action::direct_response(o.take("direct_response").unwrap_or(&Value::Null), &p, ctx)?
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "one of route, redirect, direct_response is required",
            ))
        }
    };
    let headers = mutations(&mut o)?;
    o.finish()?;
    Ok(Route {
        name,
        matcher,
        action,
        headers,
    })
}

/// Reads a `RouteMatch`.
fn route_match(v: &Value, path: &str) -> Result<RouteMatch> {
    let mut o = Obj::new(v, path, proto::ROUTE_MATCH)?;
    let specifiers = [
        "prefix",
        "path",
        "safe_regex",
        "connect_matcher",
        "path_separated_prefix",
        "path_match_policy",
    ];
    let path_match = match o.oneof(&specifiers)? {
        Some("prefix") => PathMatch::Prefix(o.string("prefix")?),
        Some("path") => PathMatch::Path(o.string("path")?),
        Some("safe_regex") => {
            let p = o.at("safe_regex");
            PathMatch::Regex(regex(o.take("safe_regex").unwrap_or(&Value::Null), &p)?)
        }
        Some("path_separated_prefix") => {
            let p = o.at("path_separated_prefix");
            let prefix = o.string("path_separated_prefix")?;
            let valid = prefix.len() >= 2 && !prefix.contains(['?', '#']) && !prefix.ends_with('/');
            if !valid {
                return Err(ConfigError::invalid(
                    p,
                    "value does not match regex pattern \"^[^?#]+[^?#/]$\"",
                ));
            }
            PathMatch::PathSeparatedPrefix(prefix)
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "one of prefix, path, safe_regex, path_separated_prefix is required",
            ))
        }
    };
    let case_sensitive = o.bool("case_sensitive")?.unwrap_or(true);
    let headers = o
        .array("headers")?
        .into_iter()
        .map(|(h, p)| header_matcher(h, &p))
        .collect::<Result<_>>()?;
    let query_parameters = o
        .array("query_parameters")?
        .into_iter()
        .map(|(q, p)| query_parameter_matcher(q, &p))
        .collect::<Result<_>>()?;
    let grpc = match o.obj("grpc", proto::GRPC_ROUTE_MATCH_OPTIONS)? {
        Some(g) => {
            g.finish()?;
            true
        }
        None => false,
    };
    o.finish()?;
    Ok(RouteMatch {
        path: path_match,
        case_sensitive,
        headers,
        query_parameters,
        grpc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterTarget, HeaderMatchSpec};
    use serde_json::json;

    fn clusters() -> HashSet<String> {
        ["a", "b"].iter().map(|s| s.to_string()).collect()
    }

    fn rc(v: Value) -> Result<RouteConfiguration> {
        route_configuration(&v, "rc", &clusters())
    }

    #[test]
    fn basic_route_table() {
        let c = rc(json!({
            "name": "local",
            "virtual_hosts": [{
                "name": "vh", "domains": ["Example.com", "*"], "require_tls": "ALL",
                "routes": [
                    {"match": {"prefix": "/a", "case_sensitive": false, "headers": [{"name": "x", "present_match": true}]},
                     "route": {"cluster": "a"}},
                    {"match": {"path_separated_prefix": "/api"}, "route": {"cluster_header": "X-Cluster"}},
                    {"match": {"safe_regex": {"regex": "/r/\\d+"}}, "route": {"cluster": "b"}},
                ],
            }],
            "response_headers_to_add": [{"header": {"key": "x-served-by", "value": "%HOSTNAME%"}}],
        }))
        .unwrap();
        assert_eq!(c.name, "local");
        let vh = &c.virtual_hosts[0];
        assert_eq!(vh.domains, vec!["example.com", "*"]);
        assert_eq!(vh.require_tls, RequireTls::All);
        assert!(!vh.routes[0].matcher.case_sensitive);
        assert_eq!(
            vh.routes[0].matcher.headers[0].spec,
            Some(HeaderMatchSpec::Present(true))
        );
        assert_eq!(
            vh.routes[1].matcher.path,
            PathMatch::PathSeparatedPrefix("/api".into())
        );
        let RouteAction::Forward(f) = &vh.routes[1].action else {
            panic!()
        };
        assert_eq!(f.target, ClusterTarget::ClusterHeader("x-cluster".into()));
        assert_eq!(f.timeout, Some(std::time::Duration::from_secs(15)));
        let PathMatch::Regex(r) = &vh.routes[2].matcher.path else {
            panic!()
        };
        assert!(r.is_full_match("/r/12"));
        assert_eq!(c.headers.response_headers_to_add.len(), 1);
    }

    #[test]
    fn unknown_clusters_are_refused_unless_validation_is_off() {
        let table = |validate: Option<bool>| {
            let mut v = json!({"virtual_hosts": [{"name": "v", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "nope"}}]}]});
            if let Some(b) = validate {
                v["validate_clusters"] = json!(b);
            }
            rc(v)
        };
        assert_eq!(
            table(None).unwrap_err().to_string(),
            "rc.virtual_hosts[0].routes[0].route.cluster: unknown cluster 'nope'"
        );
        assert!(table(Some(false)).is_ok());
    }

    #[test]
    fn domain_rules() {
        let err = rc(json!({"name": "r", "virtual_hosts": [
            {"name": "a", "domains": ["x.com"]}, {"name": "b", "domains": ["X.com"]}]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rc.virtual_hosts[1].domains[0]: Only unique values for domains are permitted. \
             Duplicate entry of domain x.com in route r"
        );
        let err = rc(json!({"name": "r", "virtual_hosts": [{"name": "a", "domains": ["*", "*"]}]}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rc.virtual_hosts[0].domains[1]: Only a single wildcard domain is permitted in route r"
        );
        let err = rc(json!({"virtual_hosts": [{"name": "a", "domains": []}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rc.virtual_hosts[0].domains: value must contain at least 1 item(s)"
        );
        let err = rc(json!({"virtual_hosts": [{"domains": ["a"]}]})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rc.virtual_hosts[0].name: value length must be at least 1 characters"
        );
    }

    #[test]
    fn route_errors_name_their_path() {
        let one = |r: Value| {
            rc(json!({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [r]}]}))
        };
        let e = |r: Value| one(r).unwrap_err().to_string();
        assert_eq!(
            e(json!({"route": {"cluster": "a"}})),
            "rc.virtual_hosts[0].routes[0].match: value is required"
        );
        assert_eq!(
            e(json!({"match": {"prefix": "/"}})),
            "rc.virtual_hosts[0].routes[0]: one of route, redirect, direct_response is required"
        );
        assert_eq!(
            e(json!({"match": {"prefix": "/", "grpc": {"x": 1}}, "route": {"cluster": "a"}})),
            "rc.virtual_hosts[0].routes[0].match.grpc.x: unknown field"
        );
        assert_eq!(
            e(
                json!({"match": {"prefix": "/"}, "route": {"cluster": "a"}, "typed_per_filter_config": {"x": {}}})
            ),
            "rc.virtual_hosts[0].routes[0].typed_per_filter_config: not supported by legate"
        );
        assert_eq!(
            e(json!({"match": {"prefix": "/"}, "route": {"cluster": "a", "retry_policy": {"retry_on": "5xx", "retry_priority": {"name": "x"}}}})),
            "rc.virtual_hosts[0].routes[0].route.retry_policy.retry_priority: not supported by legate"
        );
        assert_eq!(
            e(json!({"match": {"prefix": "/"}, "route": {"cluster": "a"}, "bogus": 1})),
            "rc.virtual_hosts[0].routes[0].bogus: unknown field"
        );
        assert!(
            e(json!({"match": {"path_separated_prefix": "/a/"}, "route": {"cluster": "a"}}))
                .contains("regex")
        );
        assert!(
            e(json!({"match": {"prefix": "/", "path": "/x"}, "route": {"cluster": "a"}}))
                .contains("only one of")
        );
        assert!(one(json!({"match": {"prefix": "/"}, "route": {"cluster": "a"}, "typed_per_filter_config": {}})).is_ok());
    }
}
