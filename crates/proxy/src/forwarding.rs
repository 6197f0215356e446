//! Envoy's connection-manager request header mutations: hop-by-hop removal, x-forwarded-for /
//! x-forwarded-proto, internal/external classification, x-envoy-* sanitizing, x-request-id.
//!
//! Mirrors `ConnectionManagerUtility::mutateRequestHeaders` of Envoy.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use legate_config::model::InternalAddressConfig;
use legate_upstream::headers::header_tokens;

/// Header names Envoy strips or sets, pre-built.
pub mod names {
    use http::header::HeaderName;
    /// `x-forwarded-for`.
    pub const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    /// `x-forwarded-proto`.
    pub const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
    /// `x-request-id`.
    pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    /// `x-envoy-internal`.
    pub const ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
    /// `x-envoy-external-address`.
    pub const ENVOY_EXTERNAL_ADDRESS: HeaderName = HeaderName::from_static("x-envoy-external-address");
    /// `x-envoy-expected-rq-timeout-ms`.
    pub const EXPECTED_RQ_TIMEOUT: HeaderName = HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
    /// `x-envoy-upstream-service-time`.
    pub const UPSTREAM_SERVICE_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
    /// `x-envoy-overloaded`: on local replies to requests a circuit breaker dropped.
    pub const OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
    /// `x-envoy-original-path`.
    pub const ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
    /// `x-envoy-upstream-rq-timeout-ms`.
    pub const UPSTREAM_RQ_TIMEOUT: HeaderName = HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
    /// `keep-alive`.
    pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    /// `proxy-connection`.
    pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
}

/// Headers removed from requests that are not internal (Envoy's list).
const EXTERNAL_STRIPPED: [&str; 15] = [
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-original-url",
    "x-envoy-original-path",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-force-trace",
    "x-envoy-ip-tags",
];

/// Headers additionally removed from edge requests.
const EDGE_STRIPPED: [&str; 3] =
    ["x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"];

/// The connection facts header mutation depends on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The downstream peer address.
    pub remote: SocketAddr,
    /// Our local address of the connection.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The HCM options header mutation depends on.
#[derive(Debug, Clone)]
pub struct ForwardingPolicy {
    /// `use_remote_address`.
    pub use_remote_address: bool,
    /// `xff_num_trusted_hops`.
    pub xff_num_trusted_hops: u32,
    /// `internal_address_config`.
    pub internal: InternalAddressConfig,
    /// `generate_request_id`.
    pub generate_request_id: bool,
    /// `preserve_external_request_id`.
    pub preserve_external_request_id: bool,
    /// This machine's address, appended to x-forwarded-for for loopback peers (Envoy's
    /// "local address": the first non-loopback interface address).
    pub local_address: IpAddr,
}

/// Outcome of request mutation.
#[derive(Debug, Clone, Copy)]
pub struct Classified {
    /// The trusted client address (for logging and hashing).
    pub client: IpAddr,
    /// Whether the request counts as internal.
    pub internal: bool,
    /// Whether the request is an edge request (external and use_remote_address).
    pub edge: bool,
}

/// Which of the names header mutation looks at a request carries, from one pass over its
/// names (cheaper than a hashed lookup of each).
#[derive(Debug, Clone, Copy, Default)]
struct PresentNames {
    /// A hop-by-hop header (`connection`, `upgrade`, `keep-alive`, `proxy-connection`,
    /// `transfer-encoding`, `te`).
    hop_by_hop: bool,
    /// An `x-envoy-*` header.
    envoy: bool,
    /// `x-forwarded-for`.
    xff: bool,
    /// `x-forwarded-proto`.
    xfp: bool,
    /// `x-request-id`.
    request_id: bool,
}

impl PresentNames {
    fn of(headers: &HeaderMap) -> Self {
        let mut p = Self::default();
        for name in headers.keys() {
            let n = name.as_str();
            p.envoy |= n.starts_with("x-envoy-");
            p.hop_by_hop |= matches!(n, "connection" | "upgrade" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te");
            p.xff |= *name == names::XFF;
            p.xfp |= *name == names::XFP;
            p.request_id |= *name == names::REQUEST_ID;
        }
        p
    }
}

impl ForwardingPolicy {
    fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal.cidr_ranges.iter().any(|r| r.contains(ip))
    }

    /// Applies Envoy's request header mutations in place.
    pub fn mutate(&self, headers: &mut HeaderMap, peer: &Peer) -> Classified {
        // One pass over the names decides which removals and lookups are needed at all: most
        // requests carry neither hop-by-hop nor x-envoy-* headers, nor x-forwarded-*.
        let mut present = PresentNames::of(headers);
        if present.hop_by_hop {
            remove_hop_by_hop(headers);
            // `connection` may have nominated any of the others.
            present = PresentNames::of(headers);
        }
        if present.envoy {
            headers.remove(&names::ENVOY_INTERNAL);
        }

        let proto = if peer.tls { "https" } else { "http" };
        let final_remote: Option<IpAddr>;
        let single_xff: bool;
        if self.use_remote_address {
            single_xff = !present.xff;
            let mut trusted = None;
            if self.xff_num_trusted_hops > 0 && present.xff {
                trusted = last_xff_address(headers, self.xff_num_trusted_hops - 1).0;
            }
            final_remote = Some(trusted.unwrap_or(peer.remote.ip()));
            let appended = if peer.remote.ip().is_loopback() { self.local_address } else { peer.remote.ip() };
            append_xff(headers, appended, present.xff);
            headers.insert(names::XFP, HeaderValue::from_static(proto));
        } else {
            let (addr, single) = if present.xff { last_xff_address(headers, self.xff_num_trusted_hops) } else { (None, false) };
            final_remote = addr;
            single_xff = single;
            if !present.xfp {
                headers.insert(names::XFP, HeaderValue::from_static(proto));
            }
        }
        let internal = single_xff && final_remote.is_some_and(|ip| self.is_internal(ip));
        let client = final_remote.unwrap_or(peer.remote.ip());
        let edge = !internal && self.use_remote_address;
        if internal {
            headers.insert(names::ENVOY_INTERNAL, HeaderValue::from_static("true"));
        } else if present.envoy && headers.keys().any(|k| k.as_str().starts_with("x-envoy-")) {
            if edge {
                for h in EDGE_STRIPPED {
                    headers.remove(h);
                }
            }
            for h in EXTERNAL_STRIPPED {
                headers.remove(h);
            }
        }
        if edge {
            if let Ok(v) = HeaderValue::from_str(&client.to_string()) {
                headers.insert(names::ENVOY_EXTERNAL_ADDRESS, v);
            }
        }
        if self.generate_request_id && ((edge && !self.preserve_external_request_id) || !present.request_id)
        {
            headers.insert(names::REQUEST_ID, new_request_id());
        }
        Classified { client, internal, edge }
    }
}

/// The first non-loopback IPv4 address of this machine's interfaces (127.0.0.1 if none), as
/// Envoy's `Network::Utility::getLocalAddress` picks it.
pub fn machine_local_address() -> IpAddr {
    let mut found = None;
    let mut ifaddrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free with freeifaddrs; we only read it in between.
    unsafe {
        if libc::getifaddrs(&mut ifaddrs) == 0 {
            let mut cur = ifaddrs;
            while !cur.is_null() && found.is_none() {
                let addr = (*cur).ifa_addr;
                if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                    let sin = &*(addr as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    if !ip.is_loopback() {
                        found = Some(IpAddr::V4(ip));
                    }
                }
                cur = (*cur).ifa_next;
            }
            libc::freeifaddrs(ifaddrs);
        }
    }
    found.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// Removes the hop-by-hop request headers and those the `Connection` header nominates, as
/// Envoy's HTTP/1 codec does; `te: trailers` is the one `te` value that is forwarded.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let nominated: Vec<HeaderName> = header_tokens(headers, &http::header::CONNECTION)
        .filter_map(|token| HeaderName::from_bytes(token.to_ascii_lowercase().as_bytes()).ok())
        .filter(|name| *name != http::header::TE)
        .collect();
    for name in nominated {
        headers.remove(name);
    }
    headers.remove(http::header::CONNECTION);
    headers.remove(http::header::UPGRADE);
    headers.remove(&names::KEEP_ALIVE);
    headers.remove(&names::PROXY_CONNECTION);
    headers.remove(http::header::TRANSFER_ENCODING);
    let te_trailers = {
        let mut values = headers.get_all(http::header::TE).iter();
        matches!((values.next(), values.next()), (Some(v), None) if v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"trailers"))
    };
    if !te_trailers {
        headers.remove(http::header::TE);
    }
}

/// A fresh UUIDv4 header value.
pub fn new_request_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let s = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).expect("a UUID is a valid header value")
}

/// Appends `ip` to x-forwarded-for (`a, b`), creating it if absent (`present` says whether
/// the request has one).
fn append_xff(headers: &mut HeaderMap, ip: IpAddr, present: bool) {
    let ip = ip.to_string();
    let existing = if present { headers.get(&names::XFF).and_then(|v| v.to_str().ok()) } else { None };
    let joined = match existing {
        Some(existing) if !existing.is_empty() => format!("{existing},{ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&joined) {
        headers.insert(names::XFF, v);
    }
}

/// Envoy's `getLastAddressFromXFF`: the address `skip` entries from the right, and whether XFF
/// holds a single address.
fn last_xff_address(headers: &HeaderMap, skip: u32) -> (Option<IpAddr>, bool) {
    let Some(value) = headers.get(&names::XFF).and_then(|v| v.to_str().ok()) else {
        return (None, false);
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let single = parts.len() == 1;
    let skip = skip as usize;
    if skip >= parts.len() {
        return (None, single);
    }
    let candidate = parts[parts.len() - 1 - skip];
    (candidate.parse().ok(), single)
}

/// Hop-by-hop headers of responses.
const RESPONSE_HOP_BY_HOP: [HeaderName; 5] = [
    http::header::CONNECTION,
    http::header::TRANSFER_ENCODING,
    names::KEEP_ALIVE,
    names::PROXY_CONNECTION,
    http::header::UPGRADE,
];

/// Removes hop-by-hop headers from an upstream response before it goes downstream. One pass
/// over the names finds those present (usually `connection` alone, or none); only those are
/// removed.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    let mut present = [false; 5];
    for name in headers.keys() {
        if let Some(i) = RESPONSE_HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
        }
    }
    for (name, _) in RESPONSE_HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
}

/// Parses a header as a u64 (for x-envoy-upstream-rq-timeout-ms).
pub fn header_u64(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::CidrRange;

    fn peer(remote: &str) -> Peer {
        Peer { remote: remote.parse().unwrap(), local: "10.0.0.1:8080".parse().unwrap(), tls: false }
    }

    fn policy(use_remote: bool, internal: &[&str]) -> ForwardingPolicy {
        ForwardingPolicy {
            use_remote_address: use_remote,
            xff_num_trusted_hops: 0,
            internal: InternalAddressConfig {
                unix_sockets: false,
                cidr_ranges: internal
                    .iter()
                    .map(|c| {
                        let (a, l) = c.split_once('/').unwrap();
                        CidrRange { address: a.parse().unwrap(), prefix_len: l.parse().unwrap() }
                    })
                    .collect(),
            },
            generate_request_id: true,
            preserve_external_request_id: false,
            local_address: "10.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn edge_request_gets_xff_external_address_and_fresh_request_id() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("client-chosen"));
        h.insert("x-envoy-retry-on", HeaderValue::from_static("5xx"));
        h.insert("x-envoy-downstream-service-node", HeaderValue::from_static("n"));
        let c = policy(true, &[]).mutate(&mut h, &peer("203.0.113.9:5555"));
        assert!(c.edge && !c.internal);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-envoy-external-address"], "203.0.113.9");
        assert_ne!(h["x-request-id"], "client-chosen");
        assert!(!h.contains_key("x-envoy-retry-on"));
        assert!(!h.contains_key("x-envoy-downstream-service-node"));
    }

    #[test]
    fn loopback_peer_appends_local_address() {
        let mut h = HeaderMap::new();
        policy(true, &[]).mutate(&mut h, &peer("127.0.0.1:4000"));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
    }

    #[test]
    fn internal_request_keeps_request_id_and_envoy_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert("x-envoy-retry-on", HeaderValue::from_static("5xx"));
        let c = policy(true, &["10.0.0.0/8"]).mutate(&mut h, &peer("10.1.2.3:1"));
        assert!(c.internal && !c.edge);
        assert_eq!(h["x-request-id"], "abc");
        assert_eq!(h["x-envoy-internal"], "true");
        assert!(h.contains_key("x-envoy-retry-on"));
        assert!(!h.contains_key("x-envoy-external-address"));
    }

    #[test]
    fn without_remote_address_xff_is_trusted_and_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let c = policy(false, &["10.0.0.0/8"]).mutate(&mut h, &peer("192.0.2.1:1"));
        assert!(c.internal);
        assert_eq!(h["x-forwarded-for"], "10.9.9.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(c.client, "10.9.9.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for n in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"] {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static("x"));
        }
        policy(false, &[]).mutate(&mut h, &peer("192.0.2.1:1"));
        assert_eq!(h.len(), 2, "only xfp and x-request-id remain: {h:?}");
    }

    #[test]
    fn connection_nominated_headers_are_removed_and_te_trailers_kept() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, X-Hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        policy(false, &[]).mutate(&mut h, &peer("192.0.2.1:1"));
        assert!(!h.contains_key("x-hop") && !h.contains_key("connection"));
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["x-kept"], "1");
    }

    #[test]
    fn trusted_hops_pick_the_client_from_xff() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.7, 10.0.0.2"));
        let mut p = policy(true, &[]);
        p.xff_num_trusted_hops = 1;
        let c = p.mutate(&mut h, &peer("192.0.2.1:1"));
        assert_eq!(c.client, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(h["x-forwarded-for"], "198.51.100.7, 10.0.0.2,192.0.2.1");
    }

    #[test]
    fn headers_nominated_by_connection_are_gone_before_they_are_read() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("x-forwarded-for, x-request-id, x-forwarded-proto"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-request-id", HeaderValue::from_static("from-the-client"));
        let c = policy(false, &["10.0.0.0/8"]).mutate(&mut h, &peer("192.0.2.1:1"));
        assert_eq!(c.client, "192.0.2.1".parse::<IpAddr>().unwrap(), "the nominated XFF was not read");
        assert!(!c.internal);
        assert!(!h.contains_key("x-forwarded-for"));
        assert_eq!(h["x-forwarded-proto"], "http", "set again after its removal");
        assert_ne!(h["x-request-id"], "from-the-client", "generated again after its removal");
    }

    #[test]
    fn response_hop_by_hop_headers_are_removed_and_the_rest_kept() {
        let mut h = HeaderMap::new();
        for (n, v) in [("connection", "keep-alive"), ("keep-alive", "timeout=5"), ("content-length", "5"), ("server", "nginx")] {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        clean_response_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "server"]);
        let mut h = HeaderMap::new();
        for n in ["transfer-encoding", "proxy-connection", "upgrade"] {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static("x"));
        }
        clean_response_headers(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }
}
