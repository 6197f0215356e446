//! Helpers shared by the demo-services integration tests.

use std::net::SocketAddr;

use serde_json::Value;

/// Sends one raw HTTP/1.1 request (`connection: close`) and returns the status and JSON body.
pub async fn call(method: &str, addr: SocketAddr, path: &str, body: Option<&str>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    (status, serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap())
}
