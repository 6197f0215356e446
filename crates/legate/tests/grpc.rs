//! gRPC through the real binary with tonic on both sides: an in-process tonic server behind the
//! HTTP/2 cluster of `tests/differential/configs/grpc.yaml` (the same bootstrap the grpcio
//! differential test runs against Envoy) and a tonic client on Legate's h2c listener. Unary,
//! server streaming (10k messages), client streaming, bidi ping-pong, error statuses, metadata
//! and trailers, UNAVAILABLE for a dead upstream, and one multiplexed upstream connection.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use http_body_util::BodyExt;
use support::*;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::body::Body;
use tonic::codec::Streaming;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;
use tower::service_fn;

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(string, tag = "2")]
    text: String,
}

fn msg(seq: u64, text: &str) -> Msg {
    Msg { seq, text: text.to_string() }
}

const TRAILER: &str = "x-upstream-trailer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_call_carries_request_metadata_and_response_trailers() {
    run(async |t| {
        let mut req = Request::new(msg(7, "hello"));
        req.metadata_mut().insert("x-client-meta", "from-tonic".parse().unwrap());
        let resp = t.client.unary("/test.Echo/Unary", req).await.unwrap();
        // The server echoes the text and reports the metadata it received in `text`.
        assert_eq!(resp.get_ref(), &msg(7, "echo:hello meta:from-tonic"));
        // The server sends this only in the trailers frame after the message.
        assert_eq!(resp.metadata().get(TRAILER).unwrap(), "yes");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_streaming_delivers_10k_messages_in_order() {
    run(async |t| {
        let mut stream = t.client.server_streaming("/test.Echo/ServerStream", msg(10_000, "")).await.unwrap().into_inner();
        let mut next = 0;
        while let Some(m) = stream.message().await.unwrap() {
            assert_eq!(m, msg(next, &format!("item-{next}")));
            next += 1;
        }
        assert_eq!(next, 10_000);
        let trailers = stream.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers.get(TRAILER).unwrap(), "yes");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_streaming_sums_1000_messages() {
    run(async |t| {
        let requests = tokio_stream::iter((0..1000).map(|i| msg(i, "x")));
        let resp = t.client.client_streaming("/test.Echo/ClientStream", requests).await.unwrap();
        assert_eq!(resp.into_inner(), msg((0..1000).sum(), "count:1000"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_ping_pong_streams_each_message_without_buffering() {
    run(async |t| {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(msg(0, "ping")).await.unwrap();
        let mut responses = t.client.bidi("/test.Echo/Bidi", ReceiverStream::new(rx)).await.unwrap().into_inner();
        // Each request is sent only after the previous answer arrived: a proxy that buffered
        // either direction would stall here.
        for i in 0..100 {
            let m = responses.message().await.unwrap().expect("an answer per ping");
            assert_eq!(m, msg(i, "pong"));
            if i < 99 {
                tx.send(msg(i + 1, "ping")).await.unwrap();
            }
        }
        drop(tx);
        assert_eq!(responses.message().await.unwrap(), None);
        assert_eq!(responses.trailers().await.unwrap().expect("trailers").get(TRAILER).unwrap(), "yes");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_status_passes_through_with_code_message_and_metadata() {
    run(async |t| {
        let status = t.client.unary("/test.Echo/Unary", Request::new(msg(0, "fail"))).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "quota exceeded: 42 calls");
        assert_eq!(status.metadata().get("x-retry-after").unwrap(), "3");
        // A method the server does not know: its UNIMPLEMENTED comes through too.
        let status = t.client.unary("/test.Echo/Nope", Request::new(msg(0, ""))).await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_is_unavailable() {
    run(async |t| {
        // grpc.yaml routes /dead.Service/ to a cluster on a closed port.
        let status = t.client.unary("/dead.Service/Call", Request::new(msg(0, ""))).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().starts_with("upstream connect error"), "{status:?}");
        assert_eq!(t.legate.stat("cluster.dead.upstream_cx_connect_fail"), Some(1));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_upstream_connection() {
    run(async |t| {
        let calls = (0..20).map(|i| {
            let mut client = t.client.clone();
            tokio::spawn(async move { client.unary("/test.Echo/Unary", Request::new(msg(i, "c"))).await.unwrap() })
        });
        for (i, call) in calls.collect::<Vec<_>>().into_iter().enumerate() {
            assert_eq!(call.await.unwrap().into_inner(), msg(i as u64, "echo:c meta:-"));
        }
        assert_eq!(t.legate.stat("cluster.grpc_backend.upstream_rq_total"), Some(20));
        assert_eq!(t.legate.stat("cluster.grpc_backend.upstream_cx_total"), Some(1));
        assert_eq!(t.accepted.load(Ordering::Relaxed), 1);
    })
    .await
}

// ---- helpers ----

/// The tonic server, Legate in front of it and a client connected to Legate.
struct Setup {
    legate: Legate,
    client: Client,
    /// Connections the server accepted.
    accepted: Arc<AtomicUsize>,
}

/// Runs a test on a fresh [`Setup`]; fails it if it takes longer than 20 s.
async fn run(test: impl AsyncFnOnce(&mut Setup)) {
    let run = async { test(&mut setup().await).await };
    tokio::time::timeout(Duration::from_secs(20), run).await.expect("test timed out");
}

async fn setup() -> Setup {
    let (server, accepted) = start_server().await;
    let config = include_str!("../../../tests/differential/configs/grpc.yaml")
        .replace("{grpc_port}", &server.port().to_string())
        .replace("{closed_port}", &free_port().to_string());
    let legate = tokio::task::spawn_blocking(move || Legate::start(&config, &[])).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", legate.listener)).unwrap().connect().await.unwrap();
    Setup { legate, client: Client(tonic::client::Grpc::new(channel)), accepted }
}

/// The upstream: a tonic server on 127.0.0.1:0 serving `test.Echo`.
async fn start_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let incoming = TcpListenerStream::new(listener).map(move |conn| {
        counter.fetch_add(1, Ordering::Relaxed);
        conn
    });
    let svc = service_fn(|req: http::Request<Body>| async move { Ok::<_, Infallible>(route(req).await) });
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(svc, incoming));
    (addr, accepted)
}

type Codec = ProstCodec<Msg, Msg>;

/// Dispatches one call to its method and adds the `x-upstream-trailer: yes` trailer.
async fn route(req: http::Request<Body>) -> http::Response<Body> {
    let mut grpc = tonic::server::Grpc::new(Codec::default());
    let resp = match req.uri().path() {
        "/test.Echo/Unary" => grpc.unary(service_fn(unary), req).await,
        "/test.Echo/ServerStream" => grpc.server_streaming(service_fn(server_stream), req).await,
        "/test.Echo/ClientStream" => grpc.client_streaming(service_fn(client_stream), req).await,
        "/test.Echo/Bidi" => grpc.streaming(service_fn(bidi), req).await,
        _ => Status::unimplemented("no such method").into_http(),
    };
    resp.map(|body| {
        Body::new(body.map_frame(|frame| match frame.into_trailers() {
            Ok(mut trailers) => {
                trailers.insert(TRAILER, "yes".parse().unwrap());
                http_body::Frame::trailers(trailers)
            }
            Err(frame) => frame,
        }))
    })
}

async fn unary(req: Request<Msg>) -> Reply<Msg> {
    let meta = req.metadata().get("x-client-meta").map_or("-".into(), |v| v.to_str().unwrap().to_string());
    let m = req.into_inner();
    if m.text == "fail" {
        let mut trailers = tonic::metadata::MetadataMap::new();
        trailers.insert("x-retry-after", "3".parse().unwrap());
        return Err(Status::with_metadata(Code::ResourceExhausted, "quota exceeded: 42 calls", trailers));
    }
    Ok(Response::new(msg(m.seq, &format!("echo:{} meta:{meta}", m.text))))
}

async fn server_stream(req: Request<Msg>) -> Reply<impl Stream<Item = Result<Msg, Status>>> {
    let n = req.into_inner().seq;
    Ok(Response::new(tokio_stream::iter((0..n).map(|i| Ok(msg(i, &format!("item-{i}")))))))
}

async fn client_stream(req: Request<Streaming<Msg>>) -> Reply<Msg> {
    let (mut sum, mut count, mut stream) = (0, 0, req.into_inner());
    while let Some(m) = stream.message().await? {
        sum += m.seq;
        count += 1;
    }
    Ok(Response::new(msg(sum, &format!("count:{count}"))))
}

async fn bidi(req: Request<Streaming<Msg>>) -> Reply<impl Stream<Item = Result<Msg, Status>>> {
    Ok(Response::new(req.into_inner().map(|m| m.map(|m| msg(m.seq, "pong")))))
}

/// A tonic client on Legate's listener (h2c, one HTTP/2 connection for all clones).
#[derive(Clone)]
struct Client(tonic::client::Grpc<Channel>);

type Reply<T> = Result<Response<T>, Status>;

impl Client {
    async fn unary(&mut self, path: &'static str, req: Request<Msg>) -> Reply<Msg> {
        self.ready().await;
        self.0.unary(req, PathAndQuery::from_static(path), Codec::default()).await
    }

    async fn server_streaming(&mut self, path: &'static str, m: Msg) -> Reply<Streaming<Msg>> {
        self.ready().await;
        self.0.server_streaming(Request::new(m), PathAndQuery::from_static(path), Codec::default()).await
    }

    async fn client_streaming<S: Stream<Item = Msg> + Send + 'static>(&mut self, path: &'static str, s: S) -> Reply<Msg> {
        self.ready().await;
        self.0.client_streaming(Request::new(s), PathAndQuery::from_static(path), Codec::default()).await
    }

    async fn bidi<S: Stream<Item = Msg> + Send + 'static>(&mut self, path: &'static str, s: S) -> Reply<Streaming<Msg>> {
        self.ready().await;
        self.0.streaming(Request::new(s), PathAndQuery::from_static(path), Codec::default()).await
    }

    async fn ready(&mut self) {
        self.0.ready().await.expect("channel ready");
    }
}
