//! Envoy's default tag extraction for the stat names Legate emits.
//!
//! Each extractor removes its tag value (and the separating dot) from the name and records
//! `envoy.<tag>`; tags come out in Envoy's order: response code, HTTP prefix, then the scope tags.

/// Splits `name` into (tag-extracted name, tags).
pub fn extract(name: &str) -> (String, Vec<(String, String)>) {
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut parts: Vec<&str> = name.split('.').collect();
    let mut scope_tags = Vec::new();

    // Scope tags at the front: cluster.<name>, listener.<address>, tcp.<prefix>.
    if parts.len() > 2 {
        match parts[0] {
            "cluster" => {
                scope_tags.push(("envoy.cluster_name".to_string(), parts[1].to_string()));
                parts.remove(1);
            }
            "tcp" => {
                scope_tags.push(("envoy.tcp_prefix".to_string(), parts[1].to_string()));
                parts.remove(1);
            }
            "listener" => {
                // A listener address is `ip_port` with dots inside, e.g. 0.0.0.0_8080 or [::]_80.
                if let Some(end) = listener_address_end(&parts) {
                    let addr = parts[1..=end].join(".");
                    scope_tags.push(("envoy.listener_address".to_string(), addr));
                    parts.drain(1..=end);
                }
            }
            _ => {}
        }
    }
    // http.<prefix> at the front or after the listener scope.
    let http_at = match parts.first() {
        Some(&"http") => Some(0),
        Some(&"listener") => parts.iter().position(|p| *p == "http").filter(|i| *i + 2 < parts.len() + 1),
        _ => None,
    };
    let mut http_tag = None;
    if let Some(i) = http_at {
        if i + 2 < parts.len() {
            http_tag = Some(("envoy.http_conn_manager_prefix".to_string(), parts[i + 1].to_string()));
            parts.remove(i + 1);
        }
    }
    // worker_<n> segments.
    if let Some(i) = parts.iter().position(|p| p.strip_prefix("worker_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))) {
        if i + 1 < parts.len() {
            scope_tags.push(("envoy.worker_id".to_string(), parts[i]["worker_".len()..].to_string()));
            parts[i] = "worker";
        }
    }
    let mut last = parts.pop().unwrap_or_default().to_string();
    // Response codes: `..._rq_200` and `..._rq_2xx`.
    if let Some(pos) = last.rfind("_rq_") {
        let code = &last[pos + 4..];
        let b = code.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_digit) {
            tags.push(("envoy.response_code".to_string(), code.to_string()));
            last.truncate(pos + 3);
        } else if b.len() == 3 && b[0].is_ascii_digit() && &code[1..] == "xx" {
            tags.push(("envoy.response_code_class".to_string(), code[..1].to_string()));
            last.replace_range(pos + 4.., "xx");
        }
    }
    tags.extend(http_tag);
    tags.extend(scope_tags);
    parts.push(&last);
    let extracted = parts.join(".");
    (extracted, tags)
}

/// Index of the last name segment belonging to a listener address starting at index 1.
fn listener_address_end(parts: &[&str]) -> Option<usize> {
    // Join segments until one contains `_<port>`; all characters must be address characters.
    let is_addr_char = |c: char| c.is_ascii_hexdigit() || matches!(c, '_' | '[' | ']' | ':');
    for (end, seg) in parts.iter().enumerate().take(parts.len().saturating_sub(1)).skip(1) {
        if !seg.chars().all(is_addr_char) || seg.is_empty() {
            return None;
        }
        if let Some((_, port)) = seg.rsplit_once('_') {
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                return Some(end);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, want_name: &str, want_tags: &[(&str, &str)]) {
        let (n, t) = extract(name);
        assert_eq!(n, want_name, "{name}");
        let t: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(t, want_tags, "{name}");
    }

    #[test]
    fn envoy_examples() {
        check("cluster.film.upstream_rq_total", "cluster.upstream_rq_total", &[("envoy.cluster_name", "film")]);
        check(
            "cluster.film.upstream_rq_200",
            "cluster.upstream_rq",
            &[("envoy.response_code", "200"), ("envoy.cluster_name", "film")],
        );
        check(
            "cluster.film.upstream_rq_2xx",
            "cluster.upstream_rq_xx",
            &[("envoy.response_code_class", "2"), ("envoy.cluster_name", "film")],
        );
        check(
            "http.ingress_http.downstream_rq_4xx",
            "http.downstream_rq_xx",
            &[("envoy.response_code_class", "4"), ("envoy.http_conn_manager_prefix", "ingress_http")],
        );
        check(
            "listener.0.0.0.0_8080.downstream_cx_total",
            "listener.downstream_cx_total",
            &[("envoy.listener_address", "0.0.0.0_8080")],
        );
        check(
            "listener.127.0.0.1_8080.http.ingress_http.downstream_rq_2xx",
            "listener.http.downstream_rq_xx",
            &[
                ("envoy.response_code_class", "2"),
                ("envoy.http_conn_manager_prefix", "ingress_http"),
                ("envoy.listener_address", "127.0.0.1_8080"),
            ],
        );
        check(
            "listener.[__1]_80.worker_1.downstream_cx_total",
            "listener.worker.downstream_cx_total",
            &[("envoy.listener_address", "[__1]_80"), ("envoy.worker_id", "1")],
        );
        check("listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", &[]);
        check("server.live", "server.live", &[]);
        check("cluster_manager.active_clusters", "cluster_manager.active_clusters", &[]);
        check("http.ingress_http.no_route", "http.no_route", &[("envoy.http_conn_manager_prefix", "ingress_http")]);
        check("tcp.db.downstream_cx_total", "tcp.downstream_cx_total", &[("envoy.tcp_prefix", "db")]);
    }
}
