//! The `grpc.health.v1.Health/Check` call of `grpc_health_check`: the request (a hand-encoded
//! `HealthCheckRequest` in a gRPC length-prefixed frame, with Envoy's headers) and the
//! classification of the response as Envoy's `GrpcActiveHealthCheckSession` does it: healthy
//! only with HTTP 200, a gRPC content type, exactly one `HealthCheckResponse` whose status is
//! `SERVING`, and trailers with `grpc-status: 0`. A reset stream or connection is a network
//! failure; any other answer fails the check (and the host at once).

use std::time::Duration;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use legate_config::model::GrpcHealthCheck;

use super::probe::add_headers;
use super::Outcome;

/// The path of the health check method.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: i32 = 1;
/// Most response bytes buffered while waiting for a whole message.
const MAX_BUFFERED: usize = 1 << 20;
/// Largest value of a `grpc-timeout` header (8 digits).
const MAX_TIMEOUT_VALUE: u64 = 99_999_999;

/// The `HealthCheckRequest` message (`string service = 1`, absent when empty) in a gRPC frame.
pub(crate) fn request_frame(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a); // field 1, wire type 2 (length-delimited)
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0); // not compressed
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `status` of a `HealthCheckResponse` (`enum ServingStatus status = 1`; 0 when absent,
/// the last occurrence wins, unknown fields are skipped). `None` if the message is malformed.
pub(crate) fn response_status(mut msg: &[u8]) -> Option<i32> {
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return None;
        }
        match wire_type {
            0 => {
                let v = varint(&mut msg)?;
                if field == 1 {
                    // An int32 enum: the low 32 bits of the varint.
                    status = v as u32 as i32;
                }
            }
            1 | 5 => {
                let n = if wire_type == 1 { 8 } else { 4 };
                msg = msg.get(n..)?;
            }
            2 => {
                let n = usize::try_from(varint(&mut msg)?).ok()?;
                msg = msg.get(n..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

/// Envoy's `grpc-timeout` value for the check's timeout: milliseconds, or a coarser unit when
/// that needs more than 8 digits.
pub(crate) fn grpc_timeout(timeout: Duration) -> String {
    let mut value = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    for (unit, divisor) in [('m', 1000), ('S', 60), ('M', 60)] {
        if value <= MAX_TIMEOUT_VALUE {
            return format!("{value}{unit}");
        }
        value /= divisor;
    }
    format!("{}H", value.min(MAX_TIMEOUT_VALUE))
}

/// The check's request: `POST /grpc.health.v1.Health/Check` to `authority` with Envoy's headers
/// (`content-type: application/grpc`, `te: trailers`, `user-agent: Envoy/HC`, the
/// `initial_metadata`, `grpc-timeout`). `None` if the authority or a header cannot be sent.
pub(crate) fn request(hc: &GrpcHealthCheck, scheme: &str, authority: &str, timeout: Duration) -> Option<http::Request<RequestBody>> {
    let uri = format!("{scheme}://{authority}{CHECK_PATH}");
    let mut request = http::Request::post(uri).body(RequestBody(Some(request_frame(&hc.service_name)))).ok()?;
    *request.version_mut() = http::Version::HTTP_2;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static("Envoy/HC"));
    add_headers(headers, &hc.initial_metadata)?;
    headers.insert("grpc-timeout", HeaderValue::from_str(&grpc_timeout(timeout)).ok()?);
    Some(request)
}

/// The body of an HTTP/2 health check request: at most one data frame, of a size not announced
/// (Envoy sends no `content-length`).
#[derive(Default)]
pub(crate) struct RequestBody(pub(crate) Option<Bytes>);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// Reads the response and classifies it.
pub(crate) async fn outcome(response: http::Response<Incoming>) -> Outcome {
    let failed = Outcome::Failed { retriable: false };
    // A non-200 or trailers-only response carries no message: the check fails either way.
    if response.status() != http::StatusCode::OK || !is_grpc(response.headers()) {
        return failed;
    }
    let mut body = response.into_body();
    let mut reply = Reply::default();
    loop {
        match body.frame().await {
            // The stream ended without trailers (Envoy: "unexpected stream end").
            None => return failed,
            Some(Err(_)) => return Outcome::Network,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if reply.push(&data).is_none() {
                        return failed;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return reply.finish(&trailers);
                    }
                }
            },
        }
    }
}

/// Envoy's `hasGrpcContentType`: `application/grpc`, optionally followed by `+...` or `;...`.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.strip_prefix(b"application/grpc").is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
    })
}

/// The response messages received so far.
#[derive(Default)]
pub(crate) struct Reply {
    buf: BytesMut,
    status: Option<i32>,
}

impl Reply {
    /// Takes response data; `None` when the response cannot be a valid reply (a bad frame
    /// header, a compressed or malformed message, a second message, too much data).
    pub(crate) fn push(&mut self, data: &[u8]) -> Option<()> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= 5 {
            let flags = self.buf[0];
            if flags & !1 != 0 {
                return None;
            }
            let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
            if len > MAX_BUFFERED {
                return None;
            }
            if self.buf.len() < 5 + len {
                break;
            }
            self.buf.advance(5);
            let message = self.buf.split_to(len);
            if len == 0 {
                continue;
            }
            if self.status.is_some() || flags != 0 {
                return None;
            }
            self.status = Some(response_status(&message)?);
        }
        Some(())
    }

    /// The outcome once the trailers arrived: success with `grpc-status: 0` and a `SERVING`
    /// message.
    pub(crate) fn finish(&self, trailers: &HeaderMap) -> Outcome {
        let ok = trailers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            == Some(0);
        if ok && self.status == Some(SERVING) {
            Outcome::Success
        } else {
            Outcome::Failed { retriable: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flags: u8, msg: &[u8]) -> Vec<u8> {
        let mut f = vec![flags];
        f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        f.extend_from_slice(msg);
        f
    }

    fn trailers(status: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_str(status).unwrap());
        h
    }

    #[test]
    fn requests_are_framed_protobufs() {
        assert_eq!(&request_frame("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(&request_frame("films")[..], &[0, 0, 0, 0, 7, 0x0a, 5, b'f', b'i', b'l', b'm', b's']);
        let long = "x".repeat(200);
        let f = request_frame(&long);
        assert_eq!(&f[..8], &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn response_status_is_field_one() {
        assert_eq!(response_status(&[]), Some(0));
        assert_eq!(response_status(&[0x08, 1]), Some(1));
        assert_eq!(response_status(&[0x08, 2]), Some(2));
        // Last occurrence wins; unknown fields of every wire type are skipped.
        assert_eq!(response_status(&[0x08, 2, 0x08, 1]), Some(1));
        assert_eq!(response_status(&[0x12, 2, b'a', b'b', 0x08, 1, 0x1d, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0, 0, 0, 0]), Some(1));
        // Truncated or malformed messages.
        assert_eq!(response_status(&[0x08]), None);
        assert_eq!(response_status(&[0x12, 5, b'a']), None);
        assert_eq!(response_status(&[0x0b]), None);
        assert_eq!(response_status(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    #[test]
    fn timeouts_use_the_finest_unit_that_fits() {
        assert_eq!(grpc_timeout(Duration::from_secs(1)), "1000m");
        assert_eq!(grpc_timeout(Duration::from_millis(99_999_999)), "99999999m");
        assert_eq!(grpc_timeout(Duration::from_millis(100_000_000)), "100000S");
        assert_eq!(grpc_timeout(Duration::from_secs(100_000_000 * 60)), "1666666H");
    }

    #[test]
    fn only_serving_with_status_zero_succeeds() {
        let failed = Outcome::Failed { retriable: false };
        let mut r = Reply::default();
        r.push(&frame(0, &[0x08, 1])).unwrap();
        assert_eq!(r.finish(&trailers("0")), Outcome::Success);
        assert_eq!(r.finish(&trailers("14")), failed);
        assert_eq!(r.finish(&HeaderMap::new()), failed);
        for status in [0u8, 2, 3] {
            let mut r = Reply::default();
            r.push(&frame(0, &[0x08, status])).unwrap();
            assert_eq!(r.finish(&trailers("0")), failed, "status {status}");
        }
        // No message at all (an empty frame is skipped).
        let mut r = Reply::default();
        r.push(&frame(0, &[])).unwrap();
        assert_eq!(r.finish(&trailers("0")), failed);
    }

    #[test]
    fn frames_may_arrive_in_pieces() {
        let f = frame(0, &[0x08, 1]);
        let mut r = Reply::default();
        for b in &f {
            r.push(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(r.finish(&trailers("0")), Outcome::Success);
    }

    #[test]
    fn bad_frames_fail_the_check() {
        assert!(Reply::default().push(&frame(1, &[0x08, 1])).is_none(), "compressed");
        assert!(Reply::default().push(&frame(2, &[0x08, 1])).is_none(), "bad flags");
        assert!(Reply::default().push(&frame(0, &[0x08])).is_none(), "malformed");
        let two = [frame(0, &[0x08, 1]), frame(0, &[0x08, 1])].concat();
        assert!(Reply::default().push(&two).is_none(), "two messages");
        assert!(Reply::default().push(&[0, 0xff, 0xff, 0xff, 0xff]).is_none(), "too long");
    }

    #[test]
    fn content_types() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            is_grpc(&h)
        };
        assert!(with("application/grpc") && with("application/grpc+proto") && with("application/grpc;x=1"));
        assert!(!with("application/grpcx") && !with("application/json") && !is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn requests_carry_envoys_headers() {
        let hc = GrpcHealthCheck { service_name: "s".into(), ..Default::default() };
        let r = request(&hc, "http", "films", Duration::from_secs(2)).unwrap();
        assert_eq!(r.uri(), "http://films/grpc.health.v1.Health/Check");
        assert_eq!(r.method(), http::Method::POST);
        let h = r.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["user-agent"], "Envoy/HC");
        assert_eq!(h["grpc-timeout"], "2000m");
        assert!(h.get("content-length").is_none());
        assert_eq!(r.body().0.as_deref(), Some(&[0, 0, 0, 0, 3, 0x0a, 1, b's'][..]));
        assert!(request(&hc, "http", "a b", Duration::from_secs(1)).is_none());
    }
}
