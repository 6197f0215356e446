//! The route table: virtual-host selection by authority, first-match route selection, and what a
//! matched route does (cluster choice, rewrites, redirects, hashing, header mutations).

mod headers;
mod matcher;
mod redirect;

use std::collections::HashMap;
use std::net::IpAddr;

use http::HeaderMap;
use legate_config::model::{
    ClusterTarget, HashSource, HeaderMutations, HostRewrite, PathMatch, RequireTls, Route, RouteAction,
    RouteConfiguration, VirtualHost,
};

pub use headers::{FormatContext, Side};
pub use matcher::RequestView;

/// A compiled, immutable route configuration.
pub struct RouteTable {
    config: RouteConfiguration,
    exact: HashMap<String, usize>,
    /// (suffix after `*`, vhost index), longest first.
    suffixes: Vec<(String, usize)>,
    /// (prefix before `*`, vhost index), longest first.
    prefixes: Vec<(String, usize)>,
    default: Option<usize>,
}

impl RouteTable {
    /// Compiles `config`.
    pub fn new(config: &RouteConfiguration) -> Self {
        let mut exact = HashMap::new();
        let mut suffixes = Vec::new();
        let mut prefixes = Vec::new();
        let mut default = None;
        for (i, vh) in config.virtual_hosts.iter().enumerate() {
            for d in &vh.domains {
                let d = d.to_ascii_lowercase();
                if d == "*" {
                    default.get_or_insert(i);
                } else if let Some(s) = d.strip_prefix('*') {
                    suffixes.push((s.to_string(), i));
                } else if let Some(p) = d.strip_suffix('*') {
                    prefixes.push((p.to_string(), i));
                } else {
                    exact.entry(d).or_insert(i);
                }
            }
        }
        // Longest wildcard first; stable sort keeps config order among equal lengths.
        suffixes.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Self { config: config.clone(), exact, suffixes, prefixes, default }
    }

    fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let i = self
            .exact
            .get(authority)
            .copied()
            .or_else(|| {
                self.suffixes
                    .iter()
                    .find(|(s, _)| authority.len() > s.len() && authority.ends_with(s.as_str()))
                    .map(|(_, i)| *i)
            })
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| authority.len() > p.len() && authority.starts_with(p.as_str()))
                    .map(|(_, i)| *i)
            })
            .or(self.default)?;
        self.config.virtual_hosts.get(i)
    }

    /// Selects the virtual host and the first matching route; `None` means no route (404 NR).
    pub fn route<'a>(&'a self, req: &RequestView<'_>) -> Option<RouteMatchResult<'a>> {
        let vhost = self.virtual_host(req.authority)?;
        let path = req.path_only();
        let query = req.query();
        vhost.routes.iter().find_map(|route| {
            let m = &route.matcher;
            let matched_len = matcher::match_path(&m.path, m.case_sensitive, path)?;
            if !m.headers.iter().all(|h| matcher::header_matches(h, req)) {
                return None;
            }
            if !m.query_parameters.iter().all(|q| matcher::query_matches(q, query)) {
                return None;
            }
            Some(RouteMatchResult { config: &self.config, vhost, route, matched_len, weighted: None })
        })
    }
}

/// A matched route for one request.
pub struct RouteMatchResult<'a> {
    config: &'a RouteConfiguration,
    vhost: &'a VirtualHost,
    route: &'a Route,
    matched_len: usize,
    /// Index of the chosen weighted cluster, once selected.
    weighted: Option<usize>,
}

impl<'a> RouteMatchResult<'a> {
    /// The route's action.
    pub fn action(&self) -> &'a RouteAction {
        &self.route.action
    }

    /// The route's name.
    pub fn name(&self) -> &'a str {
        &self.route.name
    }

    /// The 301 location when the virtual host requires TLS and this request is plain text.
    pub fn tls_redirect(&self, req: &RequestView<'_>) -> Option<String> {
        let needed = match self.vhost.require_tls {
            RequireTls::None => false,
            RequireTls::All => req.scheme != "https",
            RequireTls::ExternalOnly => req.scheme != "https" && !req.is_internal,
        };
        needed.then(|| format!("https://{}{}", redirect::strip_port(req.authority), req.path))
    }

    /// Status and location of a `redirect` route.
    pub fn redirect(&self, req: &RequestView<'_>) -> (u16, String) {
        match &self.route.action {
            RouteAction::Redirect(r) => redirect::location(r, req, self.matched_len),
            _ => (301, String::new()),
        }
    }

    /// Chooses the cluster: the configured one, the one a header names, or a weighted pick
    /// driven by `random`. `None` when a cluster header is missing or empty.
    pub fn select_cluster<'h>(&mut self, headers: &'h HeaderMap, random: u64) -> Option<&'h str>
    where
        'a: 'h,
    {
        let RouteAction::Forward(f) = &self.route.action else { return None };
        match &f.target {
            ClusterTarget::Cluster(name) => Some(name),
            ClusterTarget::ClusterHeader(h) => {
                headers.get(h.as_str()).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
            }
            ClusterTarget::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
                if total == 0 {
                    return None;
                }
                let mut pick = random % total;
                for (i, c) in clusters.iter().enumerate() {
                    if pick < u64::from(c.weight) {
                        self.weighted = Some(i);
                        return Some(&c.name);
                    }
                    pick -= u64::from(c.weight);
                }
                None
            }
        }
    }

    /// The path (with query) after prefix_rewrite / regex_rewrite; `None` when not rewritten.
    pub fn rewritten_path(&self, path_and_query: &str) -> Option<String> {
        let RouteAction::Forward(f) = &self.route.action else { return None };
        let (path, query) = match path_and_query.find('?') {
            Some(i) => (&path_and_query[..i], &path_and_query[i..]),
            None => (path_and_query, ""),
        };
        if let Some(prefix) = &f.prefix_rewrite {
            let replaced_len = match &self.route.matcher.path {
                PathMatch::Prefix(_) | PathMatch::PathSeparatedPrefix(_) => self.matched_len.min(path.len()),
                _ => path.len(),
            };
            return Some(format!("{prefix}{}{query}", &path[replaced_len..]));
        }
        if let Some((re, substitution)) = &f.regex_rewrite {
            let replacement = redirect::regex_replacement(substitution);
            let new_path = re.unanchored().replace_all(path, replacement.as_str());
            return Some(format!("{new_path}{query}"));
        }
        None
    }

    /// The new Host for the chosen upstream host (`hostname` of the host, for auto rewrite).
    pub fn rewritten_host<'h>(&self, host_hostname: &'h str) -> Option<&'h str>
    where
        'a: 'h,
    {
        let RouteAction::Forward(f) = &self.route.action else { return None };
        match &f.host_rewrite {
            HostRewrite::None => None,
            HostRewrite::Literal(h) => Some(h.as_str()),
            HostRewrite::Auto => (!host_hostname.is_empty()).then_some(host_hostname),
        }
    }

    /// Envoy's hash of the request for RING_HASH / MAGLEV from the route's hash policies.
    pub fn compute_hash(&self, headers: &HeaderMap, client: IpAddr, path_and_query: &str) -> Option<u64> {
        let RouteAction::Forward(f) = &self.route.action else { return None };
        let mut hash: Option<u64> = None;
        for policy in &f.hash_policy {
            let value: Option<String> = match &policy.source {
                HashSource::Header(name) => {
                    let mut vals = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).peekable();
                    vals.peek().is_some().then(|| vals.collect::<Vec<_>>().join(","))
                }
                HashSource::Cookie(name) => cookie(headers, name),
                HashSource::SourceIp => Some(client.to_string()),
                HashSource::QueryParameter(name) => path_and_query.split_once('?').and_then(|(_, q)| {
                    q.split('&').find_map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k == name).then(|| v.to_string())
                    })
                }),
            };
            if let Some(v) = value {
                let h = xxhash_rust::xxh64::xxh64(v.as_bytes(), 0);
                hash = Some(match hash {
                    Some(prev) => prev.rotate_left(1) ^ h,
                    None => h,
                });
                if policy.terminal {
                    break;
                }
            }
        }
        hash
    }

    /// Mutation levels, most specific first: weighted cluster (if chosen), route, virtual host,
    /// route configuration. Without a weighted cluster the route level stands in twice, so the
    /// first slot is skipped.
    fn levels(&self) -> ([&'a HeaderMutations; 4], usize) {
        let route = &self.route.headers;
        let weighted = match (self.weighted, &self.route.action) {
            (Some(i), RouteAction::Forward(f)) => match &f.target {
                ClusterTarget::Weighted(w) => w.get(i).map(|c| &c.headers),
                _ => None,
            },
            _ => None,
        };
        let levels = [weighted.unwrap_or(route), route, &self.vhost.headers, &self.config.headers];
        (levels, if weighted.is_some() { 0 } else { 1 })
    }

    /// Applies request header mutations of all levels (weighted cluster, route, vhost, global).
    pub fn apply_request_mutations(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>) {
        let (levels, first) = self.levels();
        headers::apply(&levels[first..], Side::Request, headers, ctx, None);
    }

    /// Applies response header mutations; `request` supplies `%REQ()%`.
    pub fn apply_response_mutations(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>, request: &HeaderMap) {
        let (levels, first) = self.levels();
        headers::apply(&levels[first..], Side::Response, headers, ctx, Some(request));
    }

    /// Whether any level has response mutations (the router then keeps request headers).
    pub fn has_response_mutations(&self) -> bool {
        let (levels, first) = self.levels();
        levels[first..].iter().any(|l| !l.response_headers_to_add.is_empty() || !l.response_headers_to_remove.is_empty())
    }
}

/// The value of cookie `name` from the Cookie header(s).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == name).then(|| val.trim_matches('"').to_string())
        })
    })
}

#[cfg(test)]
mod tests;
