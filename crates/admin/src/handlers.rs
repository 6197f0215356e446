//! Request dispatch for the admin API, with Envoy 1.40's bodies, statuses and content types.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use legate_stats::{BucketMode, StatType, StatsQuery};
use regex::Regex;
use serde_json::{json, Value};

use crate::config_dump::{self, DumpQuery};
use crate::json::pretty;
use crate::{clusters, help, regex_error, AdminState, DrainRequest};

type Reply = Response<Full<Bytes>>;

const TEXT: &str = "text/plain; charset=UTF-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=UTF-8";

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::SERVER, HeaderValue::from_static("envoy"));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    reply(status, TEXT, body)
}

fn json_reply(v: &Value) -> Reply {
    reply(StatusCode::OK, JSON, pretty(v))
}

/// Query parameters in order, the first of each name only (Envoy keeps a map).
fn params(query: Option<&str>, decode_values: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for p in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let (k, v) = if decode_values {
            (decode(k), decode(v))
        } else {
            (k.to_string(), v.to_string())
        };
        if !out.iter().any(|(n, _)| *n == k) {
            out.push((k, v));
        }
    }
    out
}

/// Percent-decoding as Envoy does it (`+` stays `+`).
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
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn compile(filter: Option<&str>) -> Result<Option<Regex>, Box<Reply>> {
    match filter.map(Regex::new) {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(e)) => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("Invalid re2 regex: {}", regex_error(&e)),
        ))),
    }
}

/// Handles one admin request; the flag asks for shutdown once the reply was written.
pub(crate) async fn handle(state: &AdminState, req: Request<Incoming>) -> (Reply, bool) {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let ps = params(query.as_deref(), true);
    let param = |k: &str| get(&ps, k);
    let with_drain = state.drain.is_some();
    let Some(endpoint) = help::endpoints(with_drain).find(|e| e.path == path) else {
        return (
            text(
                StatusCode::NOT_FOUND,
                format!("invalid path. {}", help::help_text(with_drain)),
            ),
            false,
        );
    };
    if endpoint.post && req.method() != Method::POST {
        let body = format!("Method {} not allowed, POST required.", req.method());
        return (text(StatusCode::METHOD_NOT_ALLOWED, body), false);
    }
    let r = match path.as_str() {
        "/" => reply(StatusCode::OK, HTML, help::home_html(with_drain)),
        "/help" => text(StatusCode::OK, help::help_text(with_drain)),
        "/ready" => {
            let s = state.state();
            let code = if s == "LIVE" {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(code, format!("{s}\n"))
        }
        "/healthcheck/fail" | "/healthcheck/ok" => {
            state.set_failing(path == "/healthcheck/fail");
            text(StatusCode::OK, "OK\n")
        }
        "/quitquitquit" => {
            let mut r = text(StatusCode::OK, "OK\n");
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return (r, true);
        }
        "/reset_counters" => {
            state.store.reset_counters();
            text(StatusCode::OK, "OK\n")
        }
        "/drain_listeners" => match &state.drain {
            Some(hook) => {
                hook(DrainRequest {
                    graceful: param("graceful").is_some(),
                    skip_exit: param("skip_exit").is_some(),
                    inbound_only: param("inboundonly").is_some(),
                });
                text(StatusCode::OK, "OK\n")
            }
            None => text(
                StatusCode::NOT_FOUND,
                format!("invalid path. {}", help::help_text(false)),
            ),
        },
        "/stats" | "/stats/prometheus" => stats(state, &path, &ps),
        "/clusters" => match compile(param("filter")) {
            Err(r) => *r,
            Ok(filter) => {
                let snapshot = clusters::filtered(state.clusters.clusters(), filter.as_ref());
                match param("format") {
                    Some("json") => json_reply(&clusters::json(&snapshot)),
                    _ => text(StatusCode::OK, clusters::text(&snapshot)),
                }
            }
        },
        "/listeners" => listeners(state, param("format")),
        "/config_dump" => {
            let q = DumpQuery {
                resource: param("resource"),
                mask: param("mask"),
                name_regex: param("name_regex"),
            };
            match config_dump::render(&state.bootstrap, &state.loaded_at, &q) {
                Ok(v) => json_reply(&v),
                Err(e) => {
                    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                    reply(status, "text/plain", e.body)
                }
            }
        }
        "/server_info" => json_reply(&server_info(state)),
        "/memory" => json_reply(&memory()),
        "/logging" => {
            let (ok, body) = state.loggers.handle(&params(query.as_deref(), false));
            text(
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                },
                body,
            )
        }
        "/runtime" => json_reply(&json!({"entries": {}, "layers": []})),
        "/certs" => json_reply(&state.certificates.as_ref().map_or_else(|| json!({"certificates": []}), |hook| hook())),
        "/hot_restart_version" => text(StatusCode::OK, state.info.hot_restart_version.clone()),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("invalid path. {}", help::help_text(with_drain)),
        ),
    };
    (r, false)
}

/// The first value of parameter `k`.
fn get<'a>(ps: &'a [(String, String)], k: &str) -> Option<&'a str> {
    ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn stats(state: &AdminState, path: &str, ps: &[(String, String)]) -> Reply {
    let param = |k: &str| get(ps, k);
    let filter = match compile(param("filter")) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let stat_type = match param("type").map(StatType::parse) {
        None => StatType::All,
        Some(Some(t)) => t,
        Some(None) => return text(StatusCode::BAD_REQUEST, "invalid &type= param"),
    };
    let histogram_buckets = match param("histogram_buckets").map(BucketMode::parse) {
        None => BucketMode::Unset,
        Some(Some(m)) => m,
        Some(None) => {
            let usage = "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary|prometheusnative)\n";
            return text(StatusCode::BAD_REQUEST, usage);
        }
    };
    let q = StatsQuery {
        filter,
        invert_filter: param("invert_filter").is_some(),
        used_only: param("usedonly").is_some(),
        stat_type,
        histogram_buckets,
    };
    let format = if path == "/stats/prometheus" {
        Some("prometheus")
    } else {
        param("format")
    };
    match format {
        None | Some("text") => text(
            StatusCode::OK,
            legate_stats::render_text_with(&state.store, &q),
        ),
        Some("json") => reply(
            StatusCode::OK,
            JSON,
            legate_stats::render_json_with(&state.store, &q),
        ),
        Some("prometheus") => match legate_stats::render_prometheus_with(&state.store, &q) {
            Ok(body) => text(StatusCode::OK, body),
            Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
        },
        Some("html" | "active-html") => {
            let body = legate_stats::render_text_with(&state.store, &q);
            let escaped = body
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let page = format!(
                "<!DOCTYPE html>\n<html lang='en'>\n<head>\n  <title>Envoy Admin</title>\n</head>\n<body>\n<pre>\n{escaped}</pre>\n</body>\n</html>\n"
            );
            reply(StatusCode::OK, HTML, page)
        }
        Some(_) => text(
            StatusCode::BAD_REQUEST,
            "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n",
        ),
    }
}

fn listeners(state: &AdminState, format: Option<&str>) -> Reply {
    let ls = state.listeners();
    if format == Some("json") {
        if ls.is_empty() {
            return json_reply(&json!({}));
        }
        let statuses: Vec<Value> = ls
            .iter()
            .map(|(n, a)| {
                json!({"name": n, "local_address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}})
            })
            .collect();
        return json_reply(&json!({ "listener_statuses": statuses }));
    }
    text(
        StatusCode::OK,
        ls.iter()
            .map(|(n, a)| format!("{n}::{a}\n"))
            .collect::<String>(),
    )
}

fn server_info(state: &AdminState) -> Value {
    let uptime = format!("{}s", state.info.started.elapsed().as_secs());
    json!({
        "version": state.info.version,
        "state": state.state(),
        "uptime_current_epoch": uptime,
        "uptime_all_epochs": uptime,
        "hot_restart_version": state.info.hot_restart_version,
        "command_line_options": state.info.command_line_options,
        "node": state.info.node,
    })
}

/// `/memory` from glibc's allocator statistics and the resident set size.
fn memory() -> Value {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    let mapped = info.hblkhd as u64;
    let (allocated, heap) = (info.uordblks as u64 + mapped, info.arena as u64 + mapped);
    let physical = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        // SAFETY: sysconf has no preconditions.
        .map_or(0, |pages| {
            pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
        });
    json!({
        "allocated": allocated.to_string(),
        "heap_size": heap.to_string(),
        "pageheap_unmapped": "0",
        "pageheap_free": heap.saturating_sub(allocated).to_string(),
        "total_thread_cache": "0",
        "total_physical_bytes": physical.to_string(),
    })
}
