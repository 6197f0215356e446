//! The route table: virtual-host selection by authority, first-match route selection, and what a
//! matched route does (cluster choice, rewrites, redirects, hashing, header mutations), with
//! Envoy 1.40's semantics.
//!
//! Everything is compiled once in [`RouteTable::new`]; matching a request allocates nothing
//! (except lower-casing an authority that has upper-case letters).
//!
//! Suggested use by the router, in Envoy's order:
//! 1. [`RouteTable::tls_redirect`] (Envoy checks `require_tls` before any route) → 301.
//! 2. [`RouteTable::route`]; `None` → 404 (`NR`).
//! 3. Direct response ([`RouteMatchResult::direct_response`], plus
//!    [`RouteMatchResult::direct_response_location`]) or redirect ([`RouteMatchResult::redirect`]),
//!    each followed by [`RouteMatchResult::apply_response_mutations`].
//! 4. [`RouteMatchResult::select_cluster`] (`None` → 503 `NC`), [`RouteMatchResult::compute_hash`].
//! 5. [`RouteMatchResult::apply_request_mutations`], then the host rewrite
//!    ([`RouteMatchResult::apply_host_rewrite`]), then the path rewrite
//!    ([`RouteMatchResult::apply_path_rewrite`]).

mod forward;
mod headers;
mod matcher;
mod redirect;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use legate_config::model::{
    ClusterTarget, ForwardAction, HostRewrite, PathRedirect, RedirectAction, Route, RouteAction,
    RouteConfiguration, VirtualHost,
};

pub use headers::FormatContext;
pub use matcher::RequestView;

use forward::HashStep;
use headers::LevelMutations;
use matcher::{CompiledMatch, HeaderCheck};

/// `x-envoy-original-path`: the path before a rewrite, added to the upstream request.
pub const ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
/// `x-envoy-original-host`: the Host before a host rewrite, added to the upstream request.
pub const ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-envoy-original-host");

/// FNV-1a for the domain maps: domains are short, and their keys come from the configuration,
/// so a request cannot provoke collisions.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type DomainMap = HashMap<String, usize, BuildHasherDefault<Fnv>>;

/// A compiled, immutable route configuration.
pub struct RouteTable {
    config: RouteConfiguration,
    global: LevelMutations,
    /// Parallel to `config.virtual_hosts`.
    vhosts: Vec<VhostEntry>,
    exact: DomainMap,
    /// `*.foo.com` / `*-bar.foo.com`: (suffix length, suffix → vhost), longest first.
    suffixes: Vec<(usize, DomainMap)>,
    /// `foo.*`: (prefix length, prefix → vhost), longest first.
    prefixes: Vec<(usize, DomainMap)>,
    default: Option<usize>,
}

struct VhostEntry {
    mutations: LevelMutations,
    /// Parallel to the virtual host's `routes`.
    routes: Vec<RouteEntry>,
}

struct RouteEntry {
    matcher: CompiledMatch,
    mutations: LevelMutations,
    /// Parallel to the weighted clusters, if any.
    weighted: Vec<LevelMutations>,
    total_weight: u64,
    cluster_header: Option<HeaderName>,
    /// `regex_rewrite` substitution in the regex crate's syntax.
    regex_replacement: Option<String>,
    hash: Vec<HashStep>,
    /// The retry policy's `retriable_headers`, tested on responses.
    retriable_headers: Vec<HeaderCheck>,
    /// The retry policy's `retriable_request_headers`.
    retriable_request_headers: Vec<HeaderCheck>,
}

impl RouteEntry {
    fn new(route: &Route) -> Self {
        let mut entry = Self {
            matcher: CompiledMatch::new(&route.matcher),
            mutations: LevelMutations::new(&route.headers),
            weighted: Vec::new(),
            total_weight: 0,
            cluster_header: None,
            regex_replacement: None,
            hash: Vec::new(),
            retriable_headers: Vec::new(),
            retriable_request_headers: Vec::new(),
        };
        if let RouteAction::Forward(f) = &route.action {
            match &f.target {
                ClusterTarget::Weighted(w) => {
                    entry.weighted = w.iter().map(|c| LevelMutations::new(&c.headers)).collect();
                    entry.total_weight = w.iter().map(|c| u64::from(c.weight)).sum();
                }
                ClusterTarget::ClusterHeader(h) => {
                    entry.cluster_header = HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok();
                }
                ClusterTarget::Cluster(_) => {}
            }
            entry.regex_replacement = f.regex_rewrite.as_ref().map(|(_, s)| redirect::regex_replacement(s));
            entry.hash = f.hash_policy.iter().map(HashStep::new).collect();
            if let Some(retry) = &f.retry_policy {
                entry.retriable_headers = retry.retriable_headers.iter().map(HeaderCheck::new).collect();
                entry.retriable_request_headers = retry.retriable_request_headers.iter().map(HeaderCheck::new).collect();
            }
        }
        entry
    }
}

/// Registers `value` under `key` in the (length → map) list kept longest first; the first
/// registration of a key wins (the config parser refuses duplicates anyway).
fn add_wildcard(list: &mut Vec<(usize, DomainMap)>, key: &str, value: usize) {
    let len = key.len();
    let pos = match list.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(pos) => pos,
        Err(pos) => {
            list.insert(pos, (len, DomainMap::default()));
            pos
        }
    };
    list[pos].1.entry(key.to_string()).or_insert(value);
}

impl RouteTable {
    /// Compiles `config`.
    pub fn new(config: &RouteConfiguration) -> Self {
        let mut table = Self {
            config: config.clone(),
            global: LevelMutations::new(&config.headers),
            vhosts: Vec::with_capacity(config.virtual_hosts.len()),
            exact: DomainMap::default(),
            suffixes: Vec::new(),
            prefixes: Vec::new(),
            default: None,
        };
        for (i, vh) in config.virtual_hosts.iter().enumerate() {
            table.vhosts.push(VhostEntry {
                mutations: LevelMutations::new(&vh.headers),
                routes: vh.routes.iter().map(RouteEntry::new).collect(),
            });
            for domain in &vh.domains {
                let d = domain.to_ascii_lowercase();
                if d == "*" {
                    table.default.get_or_insert(i);
                } else if let Some(suffix) = d.strip_prefix('*') {
                    add_wildcard(&mut table.suffixes, suffix, i);
                } else if let Some(prefix) = d.strip_suffix('*') {
                    add_wildcard(&mut table.prefixes, prefix, i);
                } else {
                    table.exact.entry(d).or_insert(i);
                }
            }
        }
        table
    }

    /// The configuration this table was compiled from.
    pub fn config(&self) -> &RouteConfiguration {
        &self.config
    }

    /// Envoy's virtual-host selection: exact domain, then the longest matching suffix wildcard
    /// (`*.foo.com`, `*-bar.foo.com`; the `*` stands for at least one character), then the
    /// longest prefix wildcard (`foo.*`), then `*`. Case-insensitive; the port is part of the
    /// authority (`h.example:8080` does not match domain `h.example`).
    fn select_vhost(&self, authority: &str) -> Option<usize> {
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return self.default;
        }
        let lowered;
        let host = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = authority.to_ascii_lowercase();
            lowered.as_str()
        } else {
            authority
        };
        if let Some(&i) = self.exact.get(host) {
            return Some(i);
        }
        let suffix = self
            .suffixes
            .iter()
            .filter(|(len, _)| *len < host.len())
            .find_map(|(len, map)| host.get(host.len() - len..).and_then(|s| map.get(s)).copied());
        let prefix = || {
            self.prefixes
                .iter()
                .filter(|(len, _)| *len < host.len())
                .find_map(|(len, map)| host.get(..*len).and_then(|p| map.get(p)).copied())
        };
        suffix.or_else(prefix).or(self.default)
    }

    /// The virtual host serving `authority`, if any.
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        self.config.virtual_hosts.get(self.select_vhost(authority)?)
    }

    /// The 301 `location` when the selected virtual host's `require_tls` refuses this plain-text
    /// request (`ALL`, or `EXTERNAL_ONLY` for external requests). Envoy checks this before
    /// matching routes, so it applies even when no route would match.
    pub fn tls_redirect(&self, req: &RequestView<'_>) -> Option<String> {
        redirect::tls_redirect(self.virtual_host(req.authority)?.require_tls, req)
    }

    /// Selects the virtual host, then the first route whose match accepts the request.
    /// `None` means no virtual host or no route: Envoy answers 404 with flag `NR`.
    pub fn route<'a>(&'a self, req: &RequestView<'_>) -> Option<RouteMatchResult<'a>> {
        let index = self.select_vhost(req.authority)?;
        let (vhost, compiled) = (self.config.virtual_hosts.get(index)?, self.vhosts.get(index)?);
        let path = matcher::path_without_query(req.path);
        let query = matcher::query_of(req.path);
        let (route, entry) = vhost
            .routes
            .iter()
            .zip(&compiled.routes)
            .find(|(_, entry)| entry.matcher.matches(req, path, query))?;
        Some(RouteMatchResult {
            table: self,
            vhost,
            vhost_entry: compiled,
            route,
            entry,
            weighted: None,
        })
    }
}

/// A matched route for one request.
pub struct RouteMatchResult<'a> {
    table: &'a RouteTable,
    vhost: &'a VirtualHost,
    vhost_entry: &'a VhostEntry,
    route: &'a Route,
    entry: &'a RouteEntry,
    /// Index of the chosen weighted cluster, once selected.
    weighted: Option<usize>,
}

impl<'a> RouteMatchResult<'a> {
    /// The matched route.
    pub fn route(&self) -> &'a Route {
        self.route
    }

    /// The route's action.
    pub fn action(&self) -> &'a RouteAction {
        &self.route.action
    }

    /// The route's name (may be empty).
    pub fn name(&self) -> &'a str {
        &self.route.name
    }

    /// The virtual host the route belongs to.
    pub fn virtual_host(&self) -> &'a VirtualHost {
        self.vhost
    }

    fn forward(&self) -> Option<&'a ForwardAction> {
        match &self.route.action {
            RouteAction::Forward(f) => Some(f),
            _ => None,
        }
    }

    /// The upstream timeout of a forwarding route (`None`: disabled or not a forwarding route).
    pub fn timeout(&self) -> Option<Duration> {
        self.forward().and_then(|f| f.timeout)
    }

    /// The 301 location when the virtual host requires TLS and this request is plain text
    /// (see [`RouteTable::tls_redirect`], which also covers requests no route matches).
    pub fn tls_redirect(&self, req: &RequestView<'_>) -> Option<String> {
        redirect::tls_redirect(self.vhost.require_tls, req)
    }

    /// Status and `location` of a `redirect` route, built like Envoy's `newUri`; `(301, "")`
    /// for other routes.
    pub fn redirect(&self, req: &RequestView<'_>) -> (u16, String) {
        match &self.route.action {
            RouteAction::Redirect(r) => (r.status, redirect::location(r, &self.route.matcher.path, req)),
            _ => (301, String::new()),
        }
    }

    /// The request path a `redirect` with `prefix_rewrite` leaves behind: Envoy's `newUri`
    /// rewrites the request's `:path` in place (visible to access logs), other redirects do not.
    pub fn redirect_rewritten_path(&self, req: &RequestView<'_>) -> Option<String> {
        match &self.route.action {
            RouteAction::Redirect(RedirectAction { path: Some(PathRedirect::PrefixRewrite(prefix)), .. }) => {
                forward::prefix_rewrite(&self.route.matcher.path, prefix, req.path)
            }
            _ => None,
        }
    }

    /// Status and body of a `direct_response` route.
    pub fn direct_response(&self) -> Option<(u16, Option<&'a str>)> {
        match &self.route.action {
            RouteAction::DirectResponse { status, body } => Some((*status, body.as_deref())),
            _ => None,
        }
    }

    /// The `location` Envoy adds to a `direct_response` whose status is 201 or 3xx: the request
    /// URL (verified against Envoy 1.40). `None` otherwise.
    pub fn direct_response_location(&self, req: &RequestView<'_>) -> Option<String> {
        let (status, _) = self.direct_response()?;
        redirect::direct_response_location(status, req)
    }

    /// Chooses the cluster: the configured one; the first value of the `cluster_header`; or a
    /// weighted pick, `random % total weight` over the clusters in order, like Envoy. `None`
    /// when the cluster header is missing or empty (Envoy then answers 503 with flag `NC`,
    /// verified against Envoy 1.40) or for non-forwarding routes. A weighted pick is remembered
    /// for the weighted cluster's header mutations.
    pub fn select_cluster<'h>(&mut self, headers: &'h HeaderMap, random: u64) -> Option<&'h str>
    where
        'a: 'h,
    {
        let f = self.forward()?;
        match &f.target {
            ClusterTarget::Cluster(name) => Some(name),
            ClusterTarget::ClusterHeader(_) => {
                let name = self.entry.cluster_header.as_ref()?;
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
            }
            ClusterTarget::Weighted(clusters) => {
                let i = forward::pick_weighted(clusters, self.entry.total_weight, random)?;
                self.weighted = Some(i);
                clusters.get(i).map(|c| c.name.as_str())
            }
        }
    }

    /// The weighted cluster chosen by [`Self::select_cluster`], if any.
    pub fn selected_weighted_cluster(&self) -> Option<usize> {
        self.weighted
    }

    /// The path (with query) after `prefix_rewrite` / `regex_rewrite`; `None` when the route
    /// configures no rewrite. `Some` even when the result equals the original: Envoy then still
    /// sends `x-envoy-original-path` (verified against Envoy 1.40), see
    /// [`Self::apply_path_rewrite`].
    pub fn rewritten_path(&self, path_and_query: &str) -> Option<String> {
        let f = self.forward()?;
        if let Some(prefix) = f.prefix_rewrite.as_deref().filter(|p| !p.is_empty()) {
            return forward::prefix_rewrite(&self.route.matcher.path, prefix, path_and_query);
        }
        let (re, _) = f.regex_rewrite.as_ref()?;
        let replacement = self.entry.regex_replacement.as_deref().unwrap_or_default();
        Some(forward::regex_rewrite(re.unanchored(), replacement, path_and_query))
    }

    /// Applies the path rewrite like Envoy: when a rewrite is configured, sets
    /// `x-envoy-original-path` to `path_and_query` and returns the new path for the upstream
    /// request line. `None`: keep the path.
    pub fn apply_path_rewrite(&self, headers: &mut HeaderMap, path_and_query: &str) -> Option<String> {
        let new_path = self.rewritten_path(path_and_query)?;
        if let Ok(original) = HeaderValue::from_str(path_and_query) {
            headers.insert(ORIGINAL_PATH, original);
        }
        Some(new_path)
    }

    /// The route's host rewrite setting (`Auto` needs the chosen upstream host's hostname).
    pub fn host_rewrite(&self) -> &'a HostRewrite {
        static NONE: HostRewrite = HostRewrite::None;
        self.forward().map_or(&NONE, |f| &f.host_rewrite)
    }

    /// The new Host for the chosen upstream host: the literal, or for `auto_host_rewrite` the
    /// host's `hostname` (no rewrite when it is empty, like Envoy).
    pub fn rewritten_host<'h>(&self, host_hostname: &'h str) -> Option<&'h str>
    where
        'a: 'h,
    {
        match self.host_rewrite() {
            HostRewrite::None => None,
            HostRewrite::Literal(h) => Some(h.as_str()).filter(|h| !h.is_empty()),
            HostRewrite::Auto => Some(host_hostname).filter(|h| !h.is_empty()),
        }
    }

    /// Applies the host rewrite like Envoy's `updateAuthority`: the previous non-empty Host goes
    /// to `x-envoy-original-host` (verified against Envoy 1.40; no `x-forwarded-host`, as
    /// `append_x_forwarded_host` is not supported) and Host becomes the new value. Returns
    /// whether Host changed.
    pub fn apply_host_rewrite(&self, headers: &mut HeaderMap, host_hostname: &str) -> bool {
        let Some(new_host) = self.rewritten_host(host_hostname) else {
            return false;
        };
        let Ok(value) = HeaderValue::from_str(new_host) else {
            return false;
        };
        if let Some(old) = headers.get(HOST).filter(|v| !v.is_empty()).cloned() {
            headers.insert(ORIGINAL_HOST, old);
        }
        headers.insert(HOST, value);
        true
    }

    /// Envoy's request hash for `RING_HASH` / `MAGLEV` from the route's hash policies (`None` when
    /// no policy yields a value). `client` is the downstream address Envoy would use (after
    /// XFF processing); `path_and_query` the request path as received.
    pub fn compute_hash(&self, headers: &HeaderMap, client: IpAddr, path_and_query: &str) -> Option<u64> {
        forward::compute_hash(&self.entry.hash, headers, client, path_and_query)
    }

    /// Mutation levels, most specific first: weighted cluster (once chosen), route, virtual host,
    /// route configuration.
    fn levels(&self) -> impl Iterator<Item = &'a LevelMutations> {
        let weighted = self.weighted.and_then(|i| self.entry.weighted.get(i));
        weighted
            .into_iter()
            .chain([&self.entry.mutations, &self.vhost_entry.mutations, &self.table.global])
    }

    /// Applies the request header mutations of all levels (weighted cluster, route, virtual
    /// host, route configuration), removals before additions in each level. `%REQ()%` reads the
    /// request headers as the previous levels left them, like Envoy.
    pub fn apply_request_mutations(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>) {
        for level in self.levels() {
            if !level.request.is_empty() {
                level.request.apply(headers, ctx, None);
            }
        }
    }

    /// Applies the response header mutations of all levels; `request` supplies `%REQ()%` (the
    /// request headers as sent upstream).
    pub fn apply_response_mutations(&self, headers: &mut HeaderMap, ctx: &FormatContext<'_>, request: &HeaderMap) {
        for level in self.levels() {
            if !level.response.is_empty() {
                level.response.apply(headers, ctx, Some(request));
            }
        }
    }

    /// Whether any level has response mutations.
    pub fn has_response_mutations(&self) -> bool {
        self.levels().any(|l| !l.response.is_empty())
    }

    /// Whether the request matches the retry policy's `retriable_request_headers` (true when
    /// there are none).
    pub fn retriable_request(&self, req: &RequestView<'_>) -> bool {
        let checks = &self.entry.retriable_request_headers;
        checks.is_empty() || checks.iter().any(|c| c.matches(req))
    }

    /// Whether response headers match one of the retry policy's `retriable_headers`.
    pub fn retriable_response(&self, headers: &HeaderMap) -> bool {
        let view = RequestView {
            authority: "",
            path: "",
            method: &http::Method::GET,
            headers,
            scheme: "",
            is_internal: false,
        };
        self.entry.retriable_headers.iter().any(|c| c.matches(&view))
    }

    /// Whether a response mutation reads request headers (`%REQ()%`): only then does
    /// [`Self::apply_response_mutations`] need the real request headers.
    pub fn response_mutations_read_request(&self) -> bool {
        self.levels().any(|l| l.response.reads_request())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_actions;
