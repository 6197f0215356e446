//! Request dispatch for the admin API.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use regex::Regex;
use serde_json::json;

use crate::{clusters, config_dump, AdminState};

type Reply = Response<Full<Bytes>>;

/// Endpoints with their help text; `true` marks POST-only ones.
const ENDPOINTS: &[(&str, &str, bool)] = &[
    ("/", "Admin home page", false),
    ("/certs", "print certs on machine", false),
    ("/clusters", "upstream cluster status", false),
    ("/config_dump", "dump current Envoy configs", false),
    ("/healthcheck/fail", "cause the server to fail health checks", true),
    ("/healthcheck/ok", "cause the server to pass health checks", true),
    ("/help", "print out list of admin commands", false),
    ("/listeners", "print listener info", false),
    ("/logging", "query/change logging levels", true),
    ("/memory", "print current allocation/heap usage", false),
    ("/quitquitquit", "exit the server", true),
    ("/ready", "print server state, return 200 if LIVE, otherwise return 503", false),
    ("/runtime", "print runtime values", false),
    ("/server_info", "print server version/status information", false),
    ("/stats", "print server stats", false),
    ("/stats/prometheus", "print server stats in prometheus format", false),
];

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, max-age=0"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(status, "text/plain; charset=UTF-8", body)
}

fn json_reply(v: &serde_json::Value) -> Reply {
    reply(StatusCode::OK, "application/json", serde_json::to_string_pretty(v).unwrap_or_default())
}

fn help() -> String {
    let mut s = String::from("admin commands are:\n");
    for (path, desc, post) in ENDPOINTS {
        s.push_str(&format!("  {path}{}: {desc}\n", if *post { " (POST)" } else { "" }));
    }
    s
}

fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%').then(|| b.get(i + 1..i + 3)).flatten();
        match hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Handles one admin request.
pub async fn handle(state: &AdminState, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let params = params(req.uri().query());
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let endpoint = ENDPOINTS.iter().find(|(p, _, _)| *p == path);
    let Some((_, _, post_only)) = endpoint else {
        return text(StatusCode::NOT_FOUND, format!("invalid path. {}", help()));
    };
    if *post_only && req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, format!("Method {} not allowed, POST required.", req.method()));
    }
    match path.as_str() {
        "/" | "/help" => text(StatusCode::OK, help()),
        "/ready" => {
            let s = state.state();
            let code = if s == "LIVE" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            text(code, format!("{s}\n"))
        }
        "/healthcheck/fail" => {
            state.failing_health_checks.store(true, std::sync::atomic::Ordering::Release);
            text(StatusCode::OK, "OK\n")
        }
        "/healthcheck/ok" => {
            state.failing_health_checks.store(false, std::sync::atomic::Ordering::Release);
            text(StatusCode::OK, "OK\n")
        }
        "/quitquitquit" => {
            state.request_shutdown();
            text(StatusCode::OK, "OK\n")
        }
        "/stats" | "/stats/prometheus" => stats(state, &path, param("format"), param("filter"), param("usedonly").is_some()),
        "/clusters" => {
            let snapshot = state.clusters.clusters();
            match param("format") {
                Some("json") => json_reply(&clusters::json(&snapshot)),
                _ => text(StatusCode::OK, clusters::text(&snapshot)),
            }
        }
        "/listeners" => {
            let ls = state.listeners();
            match param("format") {
                Some("json") => json_reply(&json!({"listener_statuses": ls.iter().map(|(n, a)| json!({
                    "name": n,
                    "local_address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}
                })).collect::<Vec<_>>()})),
                _ => text(StatusCode::OK, ls.iter().map(|(n, a)| format!("{n}::{a}\n")).collect::<String>()),
            }
        }
        "/config_dump" => {
            if param("resource").is_some() || param("mask").is_some() || param("name_regex").is_some() {
                return text(StatusCode::BAD_REQUEST, "config_dump filtering (resource, mask, name_regex) is not supported by legate\n");
            }
            json_reply(&config_dump::dump(&state.config, &state.loaded_at))
        }
        "/server_info" => {
            let uptime = format!("{}s", state.started.elapsed().as_secs());
            json_reply(&json!({
                "version": state.info.version,
                "state": state.state(),
                "uptime_current_epoch": uptime,
                "uptime_all_epochs": uptime,
                "hot_restart_version": "disabled",
                "command_line_options": state.info.command_line_options,
                "node": {"id": state.info.node_id, "cluster": state.info.node_cluster},
            }))
        }
        "/memory" => {
            let (allocated, heap, physical) = memory();
            json_reply(&json!({
                "allocated": allocated.to_string(),
                "heap_size": heap.to_string(),
                "pageheap_unmapped": "0",
                "pageheap_free": heap.saturating_sub(allocated).to_string(),
                "total_thread_cache": "0",
                "total_physical_bytes": physical.to_string(),
            }))
        }
        "/logging" => {
            let level = param("level");
            match level {
                Some(l) if (state.set_log_level)(l) => text(StatusCode::OK, format!("active loggers:\n  legate: {l}\n")),
                Some(l) => text(StatusCode::NOT_FOUND, format!("error: unknown logger level {l}\n")),
                None => text(StatusCode::OK, "usage: /logging?level=<trace|debug|info|warning|error|critical|off>\n"),
            }
        }
        "/runtime" => json_reply(&json!({"entries": {}, "layers": []})),
        "/certs" => json_reply(&json!({"certificates": []})),
        _ => text(StatusCode::NOT_FOUND, format!("invalid path. {}", help())),
    }
}

fn stats(state: &AdminState, path: &str, format: Option<&str>, filter: Option<&str>, used_only: bool) -> Reply {
    let filter = match filter.map(Regex::new) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("Invalid regex: {e}\n")),
    };
    let f = filter.as_ref();
    match (path, format) {
        ("/stats/prometheus", _) | (_, Some("prometheus")) => {
            reply(StatusCode::OK, "text/plain; charset=UTF-8", legate_stats::render_prometheus(&state.store, f, used_only))
        }
        (_, Some("json")) => reply(StatusCode::OK, "application/json", legate_stats::render_json(&state.store, f, used_only)),
        (_, None | Some("text")) => text(StatusCode::OK, legate_stats::render_text(&state.store, f, used_only)),
        (_, Some(other)) => text(StatusCode::BAD_REQUEST, format!("usage: /stats?format=(json|prometheus|text); unknown format {other}\n")),
    }
}

/// (allocated, heap, resident) bytes: glibc's mallinfo2 and /proc/self/statm.
fn memory() -> (u64, u64, u64) {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    let mapped = info.hblkhd as u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        // SAFETY: sysconf has no preconditions.
        .map_or(0, |pages| pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64);
    (info.uordblks as u64 + mapped, info.arena as u64 + mapped, rss)
}
