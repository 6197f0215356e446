//! One health check over the network: HTTP/1.1 or HTTP/2 (`http_health_check`), TCP
//! (`tcp_health_check`) or gRPC (`grpc_health_check`, HTTP/2), over the cluster's TLS when it
//! has a transport socket, with the connection kept between checks when `reuse_connection`
//! allows.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use legate_config::model::{AppendAction, HealthCheck, HealthCheckHeader, HealthChecker, HttpHealthCheck, TcpHealthCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::grpc::{self, RequestBody};
use super::Outcome;
use crate::cluster::Cluster;
use crate::host::Host;
use crate::connect::UpstreamStream;
use crate::tls::UpstreamTlsConnector;

/// Most bytes a TCP check buffers while looking for its `receive` payloads.
const MAX_TCP_RECEIVE: usize = 1 << 20;

/// The connection a session keeps between checks.
#[derive(Default)]
pub(crate) enum Probe {
    /// No connection.
    #[default]
    Idle,
    /// An HTTP/1.1 connection ready for the next check.
    Http1(http1::SendRequest<Empty<Bytes>>),
    /// An HTTP/2 connection (gRPC checks and HTTP checks with `codec_client_type: HTTP2`).
    Http2(http2::SendRequest<RequestBody>),
    /// A TCP connection (checks with `receive` payloads).
    Tcp(UpstreamStream),
}

/// Where and how a check connects.
struct Target<'a> {
    addr: SocketAddr,
    tls: Option<&'a UpstreamTlsConnector>,
}

impl Target<'_> {
    /// A new connection, with the cluster's TLS handshake when it has a transport socket.
    async fn connect(&self) -> Option<UpstreamStream> {
        let tcp = TcpStream::connect(self.addr).await.ok()?;
        let _ = tcp.set_nodelay(true);
        match self.tls {
            None => Some(UpstreamStream::Plain(tcp)),
            Some(tls) => tls.health_check_handshake(tcp).await.ok().map(|s| UpstreamStream::Tls(Box::new(s))),
        }
    }

    /// The `:scheme` of HTTP/2 requests: `https` over TLS (Envoy's `setUpstreamScheme`).
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

impl Probe {
    /// After a timed-out check: Envoy resets only the stream of a gRPC check that reuses its
    /// connection and closes the connection of every other check.
    pub fn on_timeout(&mut self, hc: &HealthCheck) {
        if !(matches!(hc.checker, HealthChecker::Grpc(_)) && hc.reuse_connection) {
            *self = Probe::Idle;
        }
    }

    /// Runs one check of `host`, a member of `cluster` (whose name is the default authority).
    pub async fn check(&mut self, hc: &HealthCheck, cluster: &Cluster, host: &Host) -> Outcome {
        let target = Target {
            addr: SocketAddr::new(host.address.ip(), hc.alt_port.unwrap_or(host.address.port())),
            tls: cluster.tls.as_ref(),
        };
        let name = cluster.config.name.as_str();
        match &hc.checker {
            HealthChecker::Http(http) => {
                let authority = if http.host.is_empty() { name } else { &http.host };
                self.http(&target, http, authority, hc.reuse_connection).await
            }
            HealthChecker::Tcp(tcp) => self.tcp(&target, tcp, hc.reuse_connection).await,
            HealthChecker::Grpc(g) => {
                let authority = if g.authority.is_empty() { name } else { &g.authority };
                let Some(request) = grpc::request(g, target.scheme(), authority, hc.timeout) else {
                    return Outcome::Failed { retriable: false };
                };
                let outcome = match self.http2(&target, request).await {
                    Ok(response) => grpc::outcome(response).await,
                    Err(outcome) => outcome,
                };
                if !hc.reuse_connection {
                    *self = Probe::Idle;
                }
                outcome
            }
        }
    }

    /// Sends `request` over the kept HTTP/2 connection (opening one if needed); the connection
    /// stays kept while the response is read, so that a timeout resets only the stream.
    async fn http2(&mut self, target: &Target<'_>, request: http::Request<RequestBody>) -> Result<http::Response<Incoming>, Outcome> {
        let mut sender = match self {
            Probe::Http2(s) if !s.is_closed() => s.clone(),
            _ => {
                *self = Probe::Idle;
                let stream = target.connect().await.ok_or(Outcome::Network)?;
                let mut builder = http2::Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new());
                let (sender, conn) = builder.handshake(TokioIo::new(stream)).await.map_err(|_| Outcome::Network)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                *self = Probe::Http2(sender.clone());
                sender
            }
        };
        if sender.ready().await.is_err() {
            *self = Probe::Idle;
            return Err(Outcome::Network);
        }
        sender.send_request(request).await.map_err(|_| Outcome::Network)
    }

    async fn http(&mut self, target: &Target<'_>, hc: &HttpHealthCheck, authority: &str, reuse: bool) -> Outcome {
        let failed = Outcome::Failed { retriable: false };
        let Some(mut headers) = request_headers(hc, authority) else { return failed };
        let (response, close) = if hc.http2 {
            headers.remove(http::header::HOST);
            let uri = format!("{}://{authority}{}", target.scheme(), hc.path);
            let Ok(mut request) = http::Request::builder().method(hc.method.as_str()).uri(uri).body(RequestBody::default()) else {
                return failed;
            };
            *request.headers_mut() = headers;
            let response = match self.http2(target, request).await {
                Ok(r) => r,
                Err(outcome) => return outcome,
            };
            (response, false)
        } else {
            let mut sender = match std::mem::take(self) {
                Probe::Http1(s) if !s.is_closed() => s,
                _ => match http1_connect(target).await {
                    Some(s) => s,
                    None => return Outcome::Network,
                },
            };
            if sender.ready().await.is_err() {
                return Outcome::Network;
            }
            let Ok(mut request) = http::Request::builder().method(hc.method.as_str()).uri(hc.path.as_str()).body(Empty::new()) else {
                return failed;
            };
            *request.headers_mut() = headers;
            let Ok(response) = sender.send_request(request).await else { return Outcome::Network };
            let close = response
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            *self = Probe::Http1(sender);
            (response, close)
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                *self = Probe::Idle;
                return Outcome::Network;
            }
        }
        if !reuse || close {
            *self = Probe::Idle;
        }
        let within = |ranges: &[(u16, u16)]| ranges.iter().any(|(start, end)| (*start..*end).contains(&status));
        if within(&hc.expected_statuses) {
            Outcome::Success
        } else {
            Outcome::Failed { retriable: within(&hc.retriable_statuses) }
        }
    }

    async fn tcp(&mut self, target: &Target<'_>, hc: &TcpHealthCheck, reuse: bool) -> Outcome {
        let mut stream = match std::mem::take(self) {
            Probe::Tcp(s) => s,
            _ => match target.connect().await {
                Some(s) => s,
                None => return Outcome::Network,
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
    add_headers(&mut headers, &hc.request_headers_to_add)?;
    Some(headers)
}

/// Applies `add` to `headers` as Envoy's `HeaderParser` does: every entry is decided against
/// the headers present before, then the overwrites are applied, then the additions. `None` if a
/// value cannot be sent.
pub(super) fn add_headers(headers: &mut HeaderMap, add: &[HealthCheckHeader]) -> Option<()> {
    let (mut appends, mut overwrites) = (Vec::new(), Vec::new());
    for h in add {
        if h.value.is_empty() && !h.keep_empty_value {
            continue;
        }
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_str(&h.value).ok()?;
        let present = headers.contains_key(&name);
        match h.append_action {
            AppendAction::AppendIfExistsOrAdd => appends.push((name, value)),
            AppendAction::AddIfAbsent if !present => appends.push((name, value)),
            AppendAction::OverwriteIfExistsOrAdd => overwrites.push((name, value)),
            AppendAction::OverwriteIfExists if present => overwrites.push((name, value)),
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists => {}
        }
    }
    for (name, value) in overwrites {
        headers.insert(name, value);
    }
    for (name, value) in appends {
        headers.append(name, value);
    }
    Some(())
}

async fn http1_connect(target: &Target<'_>) -> Option<http1::SendRequest<Empty<Bytes>>> {
    let stream = target.connect().await?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
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
