//! A small HTTP/1.1 JSON server and client shared by the demo services.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1024 * 1024;

/// A request as the handlers see it: fully read, with the query decoded.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl Request {
    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A response of the demo services.
pub type Reply = Response<Full<Bytes>>;

/// A JSON reply with `status`.
pub fn json_reply(status: StatusCode, value: &Value) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

/// A JSON error reply: `{"error": message}`.
pub fn error_reply(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

/// The machine's hostname, as the seed's services print it.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Serves `handler` on `listener` until `shutdown` resolves. `/health` is answered here.
pub async fn serve<H, F>(listener: TcpListener, service: &'static str, handler: H, shutdown: impl Future<Output = ()>)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let handler = Arc::new(handler);
    let host: Arc<str> = hostname().into();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{service}: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let host = host.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let handler = handler.clone();
                let host = host.clone();
                async move {
                    let method = req.method().clone();
                    let target = req.uri().to_string();
                    let reply = handle(req, service, &*handler).await;
                    tracing::info!("{service} on {host}: {method} {target} -> {}", reply.status().as_u16());
                    Ok::<_, Infallible>(reply)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn handle<H, F>(req: http::Request<Incoming>, service: &str, handler: &H) -> Reply
where
    H: Fn(Request) -> F,
    F: Future<Output = Reply>,
{
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/health" {
        return json_reply(StatusCode::OK, &json!({ "status": "ok", "service": service }));
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error_reply(StatusCode::PAYLOAD_TOO_LARGE, "request body too large or broken"),
    };
    let query = parts.uri.query().map(parse_query).unwrap_or_default();
    handler(Request { method: parts.method, path: parts.uri.path().to_string(), query, body }).await
}

/// Parses `a=1&b=x%20y` with `+` as space and percent-decoding.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// POSTs a JSON `body` to `url` (`http://host:port/path`) and returns the status and body.
pub async fn post_json(url: &str, body: &Value) -> Result<(StatusCode, Bytes), String> {
    request_json(Method::POST, url, Some(body)).await
}

/// Sends `method` to `url` (`http://host:port/path?query`) with an optional JSON `body` and
/// returns the status and body. One connection per request.
pub async fn request_json(method: Method, url: &str, body: Option<&Value>) -> Result<(StatusCode, Bytes), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("unsupported URL {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = TcpStream::connect(authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {authority}: {e}"))?;
    tokio::spawn(conn);
    let mut req = http::Request::builder().method(method).uri(path).header(http::header::HOST, authority);
    let payload = match body {
        Some(b) => {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let req = req.body(Full::new(payload)).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("request to {url}: {e}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, bytes))
}

/// Logs `info` and above to stderr (the services' request log).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt().with_target(false).with_writer(std::io::stderr).try_init();
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn termination() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded() {
        assert_eq!(
            parse_query("name=Anand%20X&x=a+b&flag&bad=%zz&end=%4"),
            vec![
                ("name".into(), "Anand X".into()),
                ("x".into(), "a b".into()),
                ("flag".into(), "".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into())
            ]
        );
    }
}
