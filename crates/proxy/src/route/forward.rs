//! What a forwarding route does besides matching: weighted cluster choice, path rewrites and
//! Envoy's request hash for `RING_HASH` / `MAGLEV`.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, COOKIE, HOST};
use legate_config::model::{HashPolicy, HashSource, PathMatch, WeightedCluster};
use xxhash_rust::xxh64::xxh64;

use super::matcher::{path_without_query, query_of, query_param};

/// Picks a weighted cluster the way Envoy does: `random % total`, then the first cluster whose
/// cumulative weight interval `[begin, end)` holds that value. `None` when all weights are 0.
pub(crate) fn pick_weighted(clusters: &[WeightedCluster], total: u64, random: u64) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let selected = random % total;
    let mut end = 0u64;
    clusters.iter().position(|c| {
        end += u64::from(c.weight);
        selected < end
    })
}

/// The path after `prefix_rewrite`: Envoy replaces as many bytes as the route's path specifier
/// names (the prefix or exact path as configured; the whole path for regexes) and keeps the
/// rest, query included. `None` when there is nothing to rewrite.
pub(crate) fn prefix_rewrite(spec: &PathMatch, rewrite: &str, path_and_query: &str) -> Option<String> {
    if rewrite.is_empty() {
        return None;
    }
    let matched = match spec {
        PathMatch::Prefix(p) | PathMatch::Path(p) | PathMatch::PathSeparatedPrefix(p) => p.len(),
        PathMatch::Regex(_) => path_without_query(path_and_query).len(),
    };
    let rest = path_and_query.get(matched..)?;
    let mut out = String::with_capacity(rewrite.len() + rest.len());
    out.push_str(rewrite);
    out.push_str(rest);
    Some(out)
}

/// The path after `regex_rewrite`: every match in the path (query and fragment excluded) is
/// replaced, then the query is re-appended. `replacement` is in the regex crate's syntax
/// (see [`super::redirect::regex_replacement`]).
pub(crate) fn regex_rewrite(re: &regex::Regex, replacement: &str, path_and_query: &str) -> String {
    let path = path_without_query(path_and_query);
    let new_path = re.replace_all(path, replacement);
    let rest = &path_and_query[path.len()..];
    let mut out = String::with_capacity(new_path.len() + rest.len());
    out.push_str(&new_path);
    out.push_str(rest);
    out
}

/// A compiled hash policy.
#[derive(Debug, Clone)]
pub(crate) struct HashStep {
    source: Source,
    terminal: bool,
}

#[derive(Debug, Clone)]
enum Source {
    Header(HeaderName),
    Path,
    Cookie(String),
    ClientIp,
    Query(String),
    /// A header name Legate cannot look up (`:method`...): never produces a value.
    Never,
}

impl HashStep {
    /// Compiles one `hash_policy` entry.
    pub(crate) fn new(p: &HashPolicy) -> Self {
        let source = match &p.source {
            HashSource::Header(h) => match h.to_ascii_lowercase().as_str() {
                ":authority" | "host" => Source::Header(HOST),
                ":path" => Source::Path,
                name => HeaderName::from_bytes(name.as_bytes()).map_or(Source::Never, Source::Header),
            },
            HashSource::Cookie(c) => Source::Cookie(c.clone()),
            HashSource::SourceIp => Source::ClientIp,
            HashSource::QueryParameter(q) => Source::Query(q.clone()),
        };
        Self {
            source,
            terminal: p.terminal,
        }
    }

    fn evaluate(&self, headers: &HeaderMap, client: IpAddr, path_and_query: &str) -> Option<u64> {
        match &self.source {
            Source::Header(name) => header_hash(headers, name),
            Source::Path => Some(xxh64(path_and_query.as_bytes(), 0)),
            Source::Cookie(name) => cookie(headers, name).filter(|v| !v.is_empty()).map(|v| xxh64(v, 0)),
            Source::ClientIp => Some(source_ip_hash(client)),
            Source::Query(name) => query_of(path_and_query)
                .and_then(|q| query_param(q, name))
                .map(|v| xxh64(v.as_bytes(), 0)),
            Source::Never => None,
        }
    }
}

/// Envoy's `HashPolicyImpl::generateHash`: each policy that yields a value is folded in as
/// `rotl(hash, 1) ^ value`; a terminal policy stops the walk once any hash exists.
pub(crate) fn compute_hash(
    steps: &[HashStep],
    headers: &HeaderMap,
    client: IpAddr,
    path_and_query: &str,
) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for step in steps {
        if let Some(value) = step.evaluate(headers, client, path_and_query) {
            hash = Some(hash.map_or(0, |h| h.rotate_left(1)) ^ value);
        }
        if step.terminal && hash.is_some() {
            break;
        }
    }
    hash
}

/// Envoy's header hash: all values of the header, sorted bytewise, hashed with xxHash64 chained
/// through the seed (so one value hashes as `xxh64(value, 0)` and the order of values does not
/// matter). `None` when the header is absent.
fn header_hash(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(xxh64(first.as_bytes(), 0));
    };
    let mut all: Vec<&[u8]> = vec![first.as_bytes(), second.as_bytes()];
    all.extend(values.map(http::HeaderValue::as_bytes));
    all.sort_unstable();
    Some(all.iter().fold(0, |seed, v| xxh64(v, seed)))
}

/// xxHash64 of the textual client IP (`10.0.0.1`, `::1`), formatted without allocating.
fn source_ip_hash(ip: IpAddr) -> u64 {
    struct Buf {
        bytes: [u8; 64],
        len: usize,
    }
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            self.bytes
                .get_mut(self.len..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut buf = Buf { bytes: [0; 64], len: 0 };
    // An IP address is at most 45 characters: this cannot fail.
    let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{ip}"));
    xxh64(&buf.bytes[..buf.len], 0)
}

/// The value of cookie `name` in the `Cookie` header(s), parsed like Envoy: `;`-separated
/// pairs, leading spaces ignored, pairs without `=` skipped, one pair of surrounding double
/// quotes removed; the first pair with that name wins.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get_all(COOKIE).iter().find_map(|header| {
        header.as_bytes().split(|b| *b == b';').find_map(|pair| {
            let start = pair.iter().position(|b| *b != b' ')?;
            let eq = pair.iter().position(|b| *b == b'=')?;
            let key = pair.get(start..eq).unwrap_or_default();
            if key != name.as_bytes() {
                return None;
            }
            let value = &pair[eq + 1..];
            Some(match value {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::{HeaderMutations, RegexMatcher};

    fn wc(name: &str, weight: u32) -> WeightedCluster {
        WeightedCluster {
            name: name.into(),
            weight,
            headers: HeaderMutations::default(),
        }
    }

    fn step(source: HashSource, terminal: bool) -> HashStep {
        HashStep::new(&HashPolicy { source, terminal })
    }

    #[test]
    fn weighted_intervals_follow_configuration_order() {
        let clusters = [wc("a", 1), wc("zero", 0), wc("b", 3)];
        let picks: Vec<_> = (0..8).map(|r| pick_weighted(&clusters, 4, r)).collect();
        assert_eq!(
            picks,
            [Some(0), Some(2), Some(2), Some(2), Some(0), Some(2), Some(2), Some(2)]
        );
        assert_eq!(pick_weighted(&clusters, 4, u64::MAX), Some(2));
        assert_eq!(pick_weighted(&[wc("z", 0)], 0, 5), None);
    }

    #[test]
    fn prefix_rewrites_keep_the_rest_and_the_query() {
        let prefix = PathMatch::Prefix("/api".into());
        assert_eq!(
            prefix_rewrite(&prefix, "/v2", "/api/users?id=1").as_deref(),
            Some("/v2/users?id=1")
        );
        assert_eq!(prefix_rewrite(&prefix, "/", "/api?x").as_deref(), Some("/?x"));
        assert_eq!(prefix_rewrite(&prefix, "", "/api/x"), None);
        // Case-insensitive matches replace the same number of bytes (verified against Envoy
        // 1.40: `/ci/x?q=1` on prefix `/CI` with prefix_rewrite `/ci2` becomes `/ci2/x?q=1`).
        assert_eq!(
            prefix_rewrite(&PathMatch::Prefix("/CI".into()), "/ci2", "/ci/x?q=1").as_deref(),
            Some("/ci2/x?q=1")
        );
        assert_eq!(
            prefix_rewrite(&PathMatch::Path("/a".into()), "/b", "/a?q").as_deref(),
            Some("/b?q")
        );
        let re = PathMatch::Regex(RegexMatcher::new("/r/.*").unwrap());
        assert_eq!(prefix_rewrite(&re, "/whole", "/r/x?q=1").as_deref(), Some("/whole?q=1"));
        assert_eq!(
            prefix_rewrite(&prefix, "/v2", "/é"),
            None,
            "never slices inside a character"
        );
    }

    #[test]
    fn regex_rewrites_apply_to_the_path_only() {
        // Verified against Envoy 1.40: pattern ^/rx/([a-z]+)/(.*)$, substitution /x/\2/\1,
        // request /rx/abc/def/g?q=1 reaches the upstream as /x/def/g/abc?q=1.
        let re = regex::Regex::new("^/rx/([a-z]+)/(.*)$").unwrap();
        assert_eq!(
            regex_rewrite(&re, "/x/${2}/${1}", "/rx/abc/def/g?q=1"),
            "/x/def/g/abc?q=1"
        );
        let all = regex::Regex::new("a").unwrap();
        assert_eq!(regex_rewrite(&all, "b", "/aa/a?a=a"), "/bb/b?a=a");
    }

    #[test]
    fn header_hash_is_xxh64_and_order_independent() {
        let mut h = HeaderMap::new();
        h.insert("x-user", "alice".parse().unwrap());
        let one = [step(HashSource::Header("x-user".into()), false)];
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(compute_hash(&one, &h, ip, "/"), Some(xxh64(b"alice", 0)));
        let mut ab = HeaderMap::new();
        ab.append("x-user", "b".parse().unwrap());
        ab.append("x-user", "a".parse().unwrap());
        let mut ba = HeaderMap::new();
        ba.append("x-user", "a".parse().unwrap());
        ba.append("x-user", "b".parse().unwrap());
        let want = xxh64(b"b", xxh64(b"a", 0));
        assert_eq!(compute_hash(&one, &ab, ip, "/"), Some(want));
        assert_eq!(compute_hash(&one, &ba, ip, "/"), Some(want));
        assert_eq!(compute_hash(&one, &HeaderMap::new(), ip, "/"), None);
    }

    #[test]
    fn policies_fold_with_rotate_xor_and_terminal_stops() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "1".parse().unwrap());
        h.insert("x-b", "2".parse().unwrap());
        let ip: IpAddr = "::1".parse().unwrap();
        let (a, b) = (xxh64(b"1", 0), xxh64(b"2", 0));
        let two = [
            step(HashSource::Header("x-a".into()), false),
            step(HashSource::Header("x-b".into()), false),
        ];
        assert_eq!(compute_hash(&two, &h, ip, "/"), Some(a.rotate_left(1) ^ b));
        let dup = [
            step(HashSource::Header("x-a".into()), false),
            step(HashSource::Header("x-a".into()), false),
        ];
        assert_ne!(compute_hash(&dup, &h, ip, "/"), Some(0), "duplicates do not cancel out");
        let terminal_first = [
            step(HashSource::Header("x-a".into()), true),
            step(HashSource::Header("x-b".into()), false),
        ];
        assert_eq!(compute_hash(&terminal_first, &h, ip, "/"), Some(a));
        // A terminal policy without a value stops the walk once an earlier policy hashed.
        let terminal_missing = [
            step(HashSource::Header("x-a".into()), false),
            step(HashSource::Header("x-none".into()), true),
            step(HashSource::Header("x-b".into()), false),
        ];
        assert_eq!(compute_hash(&terminal_missing, &h, ip, "/"), Some(a));
        let skip_missing = [
            step(HashSource::Header("x-none".into()), true),
            step(HashSource::Header("x-b".into()), false),
        ];
        assert_eq!(compute_hash(&skip_missing, &h, ip, "/"), Some(b));
    }

    #[test]
    fn source_ip_query_cookie_and_pseudo_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; session=\"abc\"".parse().unwrap());
        h.append(COOKIE, "session=later; empty=".parse().unwrap());
        h.insert(HOST, "svc".parse().unwrap());
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let hash = |s: HashSource, pq: &str, ip| compute_hash(&[step(s, false)], &h, ip, pq);
        assert_eq!(hash(HashSource::SourceIp, "/", v4), Some(xxh64(b"10.1.2.3", 0)));
        assert_eq!(hash(HashSource::SourceIp, "/", v6), Some(xxh64(b"2001:db8::1", 0)));
        assert_eq!(
            hash(HashSource::QueryParameter("u".into()), "/p?x=1&u=a%20b&u=z", v4),
            Some(xxh64(b"a%20b", 0))
        );
        assert_eq!(
            hash(HashSource::QueryParameter("u".into()), "/p?u", v4),
            Some(xxh64(b"", 0))
        );
        assert_eq!(hash(HashSource::QueryParameter("u".into()), "/p", v4), None);
        assert_eq!(
            hash(HashSource::Cookie("session".into()), "/", v4),
            Some(xxh64(b"abc", 0))
        );
        assert_eq!(
            hash(HashSource::Cookie("empty".into()), "/", v4),
            None,
            "empty cookies do not hash"
        );
        assert_eq!(hash(HashSource::Cookie("none".into()), "/", v4), None);
        assert_eq!(
            hash(HashSource::Header(":authority".into()), "/", v4),
            Some(xxh64(b"svc", 0))
        );
        assert_eq!(
            hash(HashSource::Header(":path".into()), "/p?q", v4),
            Some(xxh64(b"/p?q", 0))
        );
        assert_eq!(hash(HashSource::Header(":method".into()), "/", v4), None);
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "  a=1;b;=x; c=\"q\"; d=\"; e=x=y".parse().unwrap());
        let c = |n: &str| cookie(&h, n).map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(c("a").as_deref(), Some("1"));
        assert_eq!(c("b"), None);
        assert_eq!(c("").as_deref(), Some("x"));
        assert_eq!(c("c").as_deref(), Some("q"));
        assert_eq!(c("d").as_deref(), Some("\""));
        assert_eq!(c("e").as_deref(), Some("x=y"));
    }
}
