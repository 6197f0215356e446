//! One health check over the network: HTTP/1.1 (`http_health_check`) or TCP
//! (`tcp_health_check`), with the connection kept between checks when `reuse_connection` allows.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use legate_config::model::{AppendAction, HealthCheck, HealthChecker, HttpHealthCheck, TcpHealthCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Outcome;
use crate::host::Host;

/// Most bytes a TCP check buffers while looking for its `receive` payloads.
const MAX_TCP_RECEIVE: usize = 1 << 20;

/// The connection a session keeps between checks.
#[derive(Default)]
pub(crate) enum Probe {
    /// No connection.
    #[default]
    Idle,
    /// An HTTP/1.1 connection ready for the next check.
    Http(SendRequest<Empty<Bytes>>),
    /// A TCP connection (checks with `receive` payloads).
    Tcp(TcpStream),
}

impl Probe {
    /// Drops the kept connection (after a timeout, as Envoy closes it).
    pub fn reset(&mut self) {
        *self = Probe::Idle;
    }

    /// Runs one check of `host`. `cluster` is the default Host header of HTTP checks.
    pub async fn check(&mut self, hc: &HealthCheck, cluster: &str, host: &Host) -> Outcome {
        let addr = SocketAddr::new(host.address.ip(), hc.alt_port.unwrap_or(host.address.port()));
        match &hc.checker {
            HealthChecker::Http(http) => {
                let authority = if http.host.is_empty() { cluster } else { &http.host };
                self.http(addr, http, authority, hc.reuse_connection).await
            }
            HealthChecker::Tcp(tcp) => self.tcp(addr, tcp, hc.reuse_connection).await,
        }
    }

    async fn http(&mut self, addr: SocketAddr, hc: &HttpHealthCheck, authority: &str, reuse: bool) -> Outcome {
        let mut sender = match std::mem::take(self) {
            Probe::Http(s) if !s.is_closed() => s,
            _ => match http_connect(addr).await {
                Some(s) => s,
                None => return Outcome::Network,
            },
        };
        if sender.ready().await.is_err() {
            return Outcome::Network;
        }
        let request = http::Request::builder().method(hc.method.as_str()).uri(hc.path.as_str()).body(Empty::new());
        let (Ok(mut request), Some(headers)) = (request, request_headers(hc, authority)) else {
            return Outcome::Failed { retriable: false };
        };
        *request.headers_mut() = headers;
        let Ok(response) = sender.send_request(request).await else { return Outcome::Network };
        let status = response.status().as_u16();
        let close = response
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Outcome::Network;
            }
        }
        if reuse && !close {
            *self = Probe::Http(sender);
        }
        let within = |ranges: &[(u16, u16)]| ranges.iter().any(|(start, end)| (*start..*end).contains(&status));
        if within(&hc.expected_statuses) {
            Outcome::Success
        } else {
            Outcome::Failed { retriable: within(&hc.retriable_statuses) }
        }
    }

    async fn tcp(&mut self, addr: SocketAddr, hc: &TcpHealthCheck, reuse: bool) -> Outcome {
        let mut stream = match std::mem::take(self) {
            Probe::Tcp(s) => s,
            _ => match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(_) => return Outcome::Network,
            },
        };
        if !hc.send.is_empty() && stream.write_all(&hc.send).await.is_err() {
            return Outcome::Network;
        }
        if hc.receive.is_empty() {
            // A connect-only check: Envoy closes the connection after each one.
            return Outcome::Success;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !payloads_match(&hc.receive, &buf) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Outcome::Network,
                Ok(n) if buf.len() + n > MAX_TCP_RECEIVE => return Outcome::Failed { retriable: false },
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if reuse {
            *self = Probe::Tcp(stream);
        }
        Outcome::Success
    }
}

/// Envoy's health check request headers: `host` and `user-agent: Envoy/HC`, then
/// `request_headers_to_remove`, then `request_headers_to_add` as Envoy's `HeaderParser` applies
/// them: every entry is decided against the headers left after the removals, then the
/// overwrites are applied, then the additions. `None` if a value cannot be sent.
pub(super) fn request_headers(hc: &HttpHealthCheck, authority: &str) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_str(authority).ok()?);
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static("Envoy/HC"));
    for name in &hc.request_headers_to_remove {
        headers.remove(name.as_str());
    }
    let (mut add, mut overwrite) = (Vec::new(), Vec::new());
    for h in &hc.request_headers_to_add {
        if h.value.is_empty() && !h.keep_empty_value {
            continue;
        }
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_str(&h.value).ok()?;
        let present = headers.contains_key(&name);
        match h.append_action {
            AppendAction::AppendIfExistsOrAdd => add.push((name, value)),
            AppendAction::AddIfAbsent if !present => add.push((name, value)),
            AppendAction::OverwriteIfExistsOrAdd => overwrite.push((name, value)),
            AppendAction::OverwriteIfExists if present => overwrite.push((name, value)),
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists => {}
        }
    }
    for (name, value) in overwrite {
        headers.insert(name, value);
    }
    for (name, value) in add {
        headers.append(name, value);
    }
    Some(headers)
}

async fn http_connect(addr: SocketAddr) -> Option<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

/// Envoy's `TcpHealthCheckMatcher::match`: every payload occurs in `buf`, in order, each after
/// the end of the previous one.
pub(crate) fn payloads_match(payloads: &[Vec<u8>], buf: &[u8]) -> bool {
    let mut from = 0;
    for p in payloads {
        let Some(at) = buf.get(from..).and_then(|rest| rest.windows(p.len().max(1)).position(|w| w == p.as_slice()))
        else {
            return false;
        };
        from += at + p.len();
    }
    true
}
