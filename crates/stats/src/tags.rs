//! Envoy's default tag extraction (`source/common/config/well_known_names.cc` in Envoy 1.40).
//!
//! Every extractor looks at the full flat name and contributes one tag plus a range of
//! characters to remove; the tag-extracted name is the flat name without all those ranges.
//! Extractors run in Envoy's order: first those without a leading-token prefix, then those keyed
//! by the name's first token (regex extractors before token-pattern extractors), which fixes the
//! order of the tags (`{envoy_response_code="200",envoy_cluster_name="film"}`). When two
//! extractors share a tag name, only the first match counts.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

/// Matches a value with no dots.
const TAG_VALUE: &str = r"[^\.]+";
/// An IPv4 or bracketed IPv6 address (with `_` for `:`) and a port after an underscore.
const ADDRESS: &str =
    r"(?:(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[[a-fA-F_0-9]+\])_[0-9]+)";
const CIPHER: &str = r"[0-9A-Za-z_-]+";
const TLS_VERSION: &str = r"TLSv[0-9]\.[0-9]";
const ROUTE_CONFIG_NAME: &str = r"[0-9A-Za-z_\-./]+";
const SCOPED_ROUTE_CONFIG_NAME: &str = r"[0-9A-Za-z_\-.]+";
const LISTENER_OR_CLUSTER_WITH_NAME: &str = r"(?:listener|cluster)\..*?";
const WORD: &str = "[0-9A-Za-z_]";

/// (tag name, regex with placeholders, required substring, value that must not match).
const REGEX_EXTRACTORS: &[(&str, &str, &str, &str)] = &[
    ("envoy.response_code", r"_rq(_([0-9]{3}))$", "_rq_", ""),
    ("envoy.response_code_class", r"_rq_(([0-9]))xx$", "_rq_", ""),
    (
        "envoy.dynamo_partition_id",
        r"^http\.<T>\.dynamodb\.table\.<T>\.capacity\.<T>(\.__partition_id=(<W>{7}))$",
        ".dynamodb.table.",
        "",
    ),
    (
        "envoy.dynamo_operation",
        r"^http\.<T>\.dynamodb.(?:operation|table\.<T>\.capacity)(\.(<T>))(?:\.|$)",
        ".dynamodb.",
        "",
    ),
    (
        "envoy.dynamo_table",
        r"^http\.<T>\.dynamodb.(?:table|error)\.((<T>)\.)",
        ".dynamodb.",
        "",
    ),
    (
        "envoy.ssl_cipher",
        r"^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$",
        ".ssl.ciphers.",
        "",
    ),
    (
        "envoy.ssl_curve",
        r"^<LC>\.ssl\.curves(\.(<CIPHER>))$",
        ".ssl.curves.",
        "",
    ),
    (
        "envoy.ssl_sigalg",
        r"^<LC>\.ssl\.sigalgs(\.(<CIPHER>))$",
        ".ssl.sigalgs.",
        "",
    ),
    (
        "envoy.ssl_version",
        r"^<LC>\.ssl\.versions(\.(<TLS>))$",
        ".ssl.versions.",
        "",
    ),
    (
        "cipher_suite",
        r"^cluster\.<T>\.ssl\.ciphers(\.(<CIPHER>))$",
        ".ssl.ciphers.",
        "",
    ),
    (
        "envoy.http_conn_manager_prefix",
        r"^listener\..*?\.http\.((<T>)\.)",
        ".http.",
        "",
    ),
    (
        "envoy.worker_id",
        r"^(?:listener\.(?:<ADDRESS>|<T>)|server|listener_manager|thread_local_cluster_manager)\.worker_(([0-9]+)\.)",
        "",
        "",
    ),
    (
        "envoy.listener_address",
        r"^listener\.((<ADDRESS>|<T>)\.)",
        "",
        "admin",
    ),
    (
        "envoy.rds_route_config",
        r"^http\.<T>\.rds\.((<ROUTE>)\.)<W>+?$",
        ".rds.",
        "",
    ),
    (
        "envoy.scoped_rds_config",
        r"^http\.<T>\.scoped_rds\.((<SCOPED>)\.)<W>+?$",
        ".scoped_rds.",
        "",
    ),
    (
        "envoy.rbac_policy_name",
        r"^http\.<T>\.rbac\.(?:<T>\.)?policy\.((<T>)\.)(allowed|shadow_allowed|denied|shadow_denied)$",
        "",
        "",
    ),
    (
        "envoy.rbac_http_prefix",
        r"^http\.<T>\.rbac\.((<T>)\.).*?",
        "",
        "policy",
    ),
    (
        "envoy.proxy_protocol_prefix",
        r"^proxy_proto\.((<T>)\.).+$",
        "",
        "versions",
    ),
    (
        "envoy.proxy_protocol_version",
        r"^proxy_proto\.((?:<T>\.)?versions\.v([0-9])\.)<W>+$",
        "",
        "",
    ),
    (
        "envoy.tls_certificate",
        r"^<LC>\.ssl\.certificate\.((<T>)\.).*$",
        ".ssl.certificate",
        "",
    ),
    ("envoy.xds_resource_name", r"^sds\.((<T>)\.).+", "", ""),
    (
        "envoy.health_check_name",
        r"^cluster\.<T>\.health_check(\.name\.(<T>))\..+",
        ".health_check.name.",
        "",
    ),
];

/// (tag name, token pattern): `$` is the value, `*` any one token, `**` any number of tokens.
const TOKEN_EXTRACTORS: &[(&str, &str)] = &[
    (
        "envoy.mongo_callsite",
        "mongo.*.collection.*.callsite.$.query.**",
    ),
    ("envoy.mongo_collection", "mongo.*.collection.$.**.query.*"),
    ("envoy.mongo_cmd", "mongo.*.cmd.$.**"),
    ("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**"),
    ("envoy.http_user_agent", "http.*.user_agent.$.**"),
    ("envoy.virtual_cluster", "vhost.*.vcluster.$.**"),
    ("envoy.fault_downstream_cluster", "http.*.fault.$.**"),
    ("envoy.grpc_bridge_service", "cluster.*.grpc.$.**"),
    ("envoy.tcp_prefix", "tcp.$.**"),
    ("envoy.udp_prefix", "udp.$.**"),
    ("envoy.clientssl_prefix", "auth.clientssl.$.**"),
    ("envoy.ratelimit_prefix", "ratelimit.$.**"),
    ("envoy.cluster_name", "cluster.$.**"),
    ("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**"),
    ("envoy.ext_authz_prefix", "http.*.ext_authz.$.**"),
    ("envoy.http_conn_manager_prefix", "http.$.**"),
    ("envoy.virtual_host", "vhost.$.**"),
    ("envoy.mongo_prefix", "mongo.$.**"),
    ("envoy.route", "vhost.*.route.$.**"),
    ("envoy.thrift_prefix", "thrift.$.**"),
    ("envoy.redis_prefix", "redis.$.**"),
    (
        "envoy.local_http_ratelimit_prefix",
        "$.http_local_rate_limit.**",
    ),
    (
        "envoy.local_network_ratelimit_prefix",
        "local_rate_limit.$.**",
    ),
    (
        "envoy.local_listener_ratelimit_prefix",
        "listener_local_ratelimit.$.**",
    ),
    ("envoy.dns_filter_prefix", "dns_filter.$.**"),
    ("envoy.connection_limit_prefix", "connection_limit.$.**"),
    ("envoy.rbac_prefix", "$.rbac.**"),
    ("envoy.google_grpc_client_prefix", "grpc.$.**"),
];

enum Matcher {
    Regex {
        re: Regex,
        substr: &'static str,
        negative: &'static str,
    },
    Tokens {
        tokens: Vec<&'static str>,
        value_index: usize,
    },
}

struct Extractor {
    name: &'static str,
    /// The first token of names this extractor can match ("" = any).
    prefix: &'static str,
    matcher: Matcher,
}

/// Envoy's `extractRegexPrefix`: the leading literal token of a `^token\.` regex.
fn regex_prefix(regex: &'static str) -> &'static str {
    let Some(rest) = regex.strip_prefix('^') else {
        return "";
    };
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len());
    if end > 0 && rest[end..].starts_with(r"\.") {
        &rest[..end]
    } else {
        ""
    }
}

fn expand(regex: &str) -> String {
    regex
        .replace("<ADDRESS>", ADDRESS)
        .replace("<CIPHER>", CIPHER)
        .replace("<TLS>", TLS_VERSION)
        .replace("<ROUTE>", ROUTE_CONFIG_NAME)
        .replace("<SCOPED>", SCOPED_ROUTE_CONFIG_NAME)
        .replace("<LC>", LISTENER_OR_CLUSTER_WITH_NAME)
        .replace("<T>", TAG_VALUE)
        .replace("<W>", WORD)
}

static EXTRACTORS: LazyLock<Vec<Extractor>> = LazyLock::new(|| {
    let regexes = REGEX_EXTRACTORS
        .iter()
        .map(|(name, regex, substr, negative)| Extractor {
            name,
            prefix: regex_prefix(regex),
            matcher: Matcher::Regex {
                re: Regex::new(&expand(regex)).expect("built-in tag regex"),
                substr,
                negative,
            },
        });
    let tokens = TOKEN_EXTRACTORS.iter().map(|(name, pattern)| {
        let tokens: Vec<&'static str> = pattern.split('.').collect();
        let first = tokens[0];
        let value_index = tokens.iter().position(|t| *t == "$").unwrap_or(0);
        Extractor {
            name,
            prefix: if matches!(first, "$" | "*" | "**") {
                ""
            } else {
                first
            },
            matcher: Matcher::Tokens {
                tokens,
                value_index,
            },
        }
    });
    let all: Vec<Extractor> = regexes.chain(tokens).collect();
    // Envoy runs the prefix-less extractors first, then those keyed by the first token.
    let (mut ordered, keyed): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| e.prefix.is_empty());
    ordered.extend(keyed);
    ordered
});

/// Names that more than one extractor produces (only the first match of each counts).
static SHARED_NAMES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    let mut seen = HashSet::new();
    EXTRACTORS
        .iter()
        .filter(|e| !seen.insert(e.name))
        .map(|e| e.name)
        .collect()
});

impl Extractor {
    /// The tag value and the byte range to remove, when this extractor matches `name`.
    fn extract<'n>(&self, name: &'n str, tokens: &[&'n str]) -> Option<(&'n str, usize, usize)> {
        match &self.matcher {
            Matcher::Regex {
                re,
                substr,
                negative,
            } => {
                if !substr.is_empty() && !name.contains(substr) {
                    return None;
                }
                let caps = re.captures(name)?;
                let remove = caps.get(1).filter(|m| !m.as_str().is_empty())?;
                let value = caps
                    .get(2)
                    .filter(|m| !m.as_str().is_empty())
                    .unwrap_or(remove);
                if !negative.is_empty() && value.as_str() == *negative {
                    return None;
                }
                Some((value.as_str(), remove.start(), remove.end()))
            }
            Matcher::Tokens {
                tokens: pattern,
                value_index,
            } => {
                let (mut start, mut index) = (0, tokens.len());
                if !search(
                    pattern,
                    *value_index,
                    tokens,
                    0,
                    0,
                    0,
                    &mut start,
                    &mut index,
                ) {
                    return None;
                }
                let value = tokens[index];
                let mut end = start + value.len();
                if index + 1 < tokens.len() {
                    end += 1; // the dot before the next token
                } else {
                    start = start.saturating_sub(1); // the dot before the last token
                }
                Some((value, start, end))
            }
        }
    }
}

/// Envoy's `TagExtractorTokensImpl::searchTags`.
#[allow(clippy::too_many_arguments)]
fn search(
    pattern: &[&str],
    value_index: usize,
    input: &[&str],
    mut ii: usize,
    mut pi: usize,
    mut ci: usize,
    start: &mut usize,
    matched: &mut usize,
) -> bool {
    while ii < input.len() && pi < pattern.len() {
        if pi == value_index {
            *start = ci;
            *matched = ii;
        } else {
            let expected = pattern[pi];
            if expected == "**" {
                if pi == pattern.len() - 1 {
                    return true;
                }
                pi += 1;
                while ii < input.len() {
                    if search(pattern, value_index, input, ii, pi, ci, start, matched) {
                        return true;
                    }
                    ci += input[ii].len() + 1;
                    ii += 1;
                }
                return false;
            }
            if expected != "*" && expected != input[ii] {
                return false;
            }
            ci += input[ii].len() + 1;
        }
        ii += 1;
        pi += 1;
    }
    pi == pattern.len() && ii == input.len()
}

/// Splits `name` into (tag-extracted name, tags in Envoy's order).
pub fn extract(name: &str) -> (String, Vec<(String, String)>) {
    let tokens: Vec<&str> = name.split('.').collect();
    let first = if name.contains('.') { tokens[0] } else { "" };
    let mut tags = Vec::new();
    let mut removed: Vec<(usize, usize)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for e in EXTRACTORS
        .iter()
        .filter(|e| e.prefix.is_empty() || e.prefix == first)
    {
        let shared = SHARED_NAMES.contains(e.name);
        if shared && seen.contains(&e.name) {
            continue;
        }
        if let Some((value, start, end)) = e.extract(name, &tokens) {
            tags.push((e.name.to_string(), value.to_string()));
            removed.push((start, end));
            if shared {
                seen.push(e.name);
            }
        }
    }
    let extracted = name
        .char_indices()
        .filter(|(i, _)| !removed.iter().any(|(s, e)| s <= i && i < e))
        .map(|(_, c)| c)
        .collect();
    (extracted, tags)
}

#[cfg(test)]
mod tests;
