//! The router filter: route selection, direct responses, redirects and forwarding to a cluster,
//! with Envoy's local replies when that fails.

use std::time::{Duration, Instant};

use http::header::{HeaderValue, EXPECT, HOST, LOCATION};
use http::request::Parts;
use http::{Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use legate_config::model::{RetryPolicy, RouteAction};
use legate_upstream::{LbContext, RequestBody, RequestResult, UpstreamBody, UpstreamError};

use crate::body::{ms_since, BodyTimer, LastAttempt, ProxyBody, StreamGuard, UpstreamCompletion};
use crate::decimal::decimal_value;
use crate::forwarding::{clean_response_headers, header_u64, names, Classified, Peer};
use crate::hcm::Hcm;
use crate::local_reply::{local_reply, text_reply, ResponseFlags};
use crate::retry::{Attempt, Replay, RetryHeaders, RetryState};
use crate::route::{FormatContext, RequestView};
use crate::timeouts::{self, Expiry, StreamDeadlines, StreamLimits, TrackedBody};
use crate::worker::WorkerContext;

/// What the router needs to know about the request besides its headers and body.
pub struct RouteContext<'a> {
    /// The connection manager handling the request.
    pub hcm: &'a Hcm,
    /// The worker the request runs on.
    pub worker: &'a WorkerContext,
    /// Connection addresses.
    pub peer: Peer,
    /// Internal/external classification of the request.
    pub classified: Classified,
    /// Path and query as received.
    pub path_and_query: String,
    /// Whether this is an HTTP/1.1 upgrade (WebSocket...), and whether `upgrade_configs`
    /// allows it.
    pub upgrade: UpgradeRequest,
    /// When the request was received (its stream's deadlines count from then).
    pub start: Instant,
}

/// What the request asks of an HTTP/1.1 upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// Not an upgrade request.
    None,
    /// An upgrade of a type `upgrade_configs` enables.
    Allowed,
    /// An upgrade of another type: Envoy answers 403 (`upgrade_failed`) once a route matches.
    Refused,
}

/// `%RESPONSE_CODE_DETAILS%` of direct responses and redirects.
const DIRECT_RESPONSE: &str = "direct_response";

/// `%RESPONSE_CODE_DETAILS%` of a refused upgrade.
const UPGRADE_FAILED: &str = "upgrade_failed";

/// `x-envoy-attempt-count`: which attempt an upstream request is, or how many a response took.
const ATTEMPT_COUNT: http::header::HeaderName = http::header::HeaderName::from_static("x-envoy-attempt-count");

/// Body of Envoy's reply when the upstream could not be reached.
const RESET_PREFIX: &str = "upstream connect error or disconnect/reset before headers. reset reason: ";

/// Routes the request and forwards it or answers locally.
///
/// A function returning an `async move` block, not an `async fn`: the block uses its arguments
/// where they are captured, where an `async fn` keeps a second copy of each in its state (and
/// this future is moved whole with every request).
pub fn route_and_forward<'a>(
    ctx: RouteContext<'a>,
    mut parts: Parts,
    body: Incoming,
    mut guard: StreamGuard,
) -> impl std::future::Future<Output = Response<ProxyBody>> + 'a {
    async move {
        let hcm = ctx.hcm;
        let stats = &hcm.stats;
        // The table lower-cases for virtual-host selection; Location headers keep the case as sent.
        let authority = parts.headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let scheme = if ctx.peer.tls { "https" } else { "http" };
        let view = RequestView {
            authority,
            path: &ctx.path_and_query,
            method: &parts.method,
            headers: &parts.headers,
            scheme,
            is_internal: ctx.classified.internal,
        };
        let format_ctx = FormatContext {
            downstream_remote: ctx.peer.remote,
            downstream_local: ctx.peer.local,
            protocol: protocol_name(parts.version),
            hostname: &hcm.hostname,
            upstream_remote: None,
        };
        if ctx.upgrade == UpgradeRequest::Refused {
            // Envoy refuses the upgrade once a route (or require_tls's redirect) matches, before
            // the route acts; without a route the request gets its 404 (NR) below.
            let route = match hcm.routes.tls_redirect(&view) {
                Some(_) => Some(None),
                None => hcm.routes.route(&view).map(Some),
            };
            if let Some(mut route) = route {
                stats.downstream_rq_ws_on_non_ws_route.inc();
                if let Some(log) = guard.log() {
                    if let Some(matched) = route.as_mut() {
                        log.route(matched.name());
                        // The route's cluster is known (and logged) once the route is.
                        let cluster = matched.select_cluster(&parts.headers, rand::random::<u64>());
                        if let Some(cluster) = cluster.and_then(|name| hcm.clusters.get(name)) {
                            log.cluster(&cluster.config.name);
                        }
                    }
                    log.details(UPGRADE_FAILED);
                }
                let mut resp = local_reply(StatusCode::FORBIDDEN, "", Some(guard));
                // Only a forwarding route's response header mutations apply (as in Envoy 1.40).
                if let Some(matched) = route.filter(|m| matches!(m.action(), RouteAction::Forward(_))) {
                    matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &parts.headers);
                }
                return resp;
            }
        }
        // require_tls answers before route matching, as Envoy does (even when no route matches).
        if let Some(location) = hcm.routes.tls_redirect(&view) {
            stats.rq_redirect.inc();
            if let Some(log) = guard.log() {
                log.details(DIRECT_RESPONSE);
            }
            let mut resp = local_reply(StatusCode::MOVED_PERMANENTLY, "", Some(guard));
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(LOCATION, v);
            }
            return resp;
        }
        let Some(mut matched) = hcm.routes.route(&view) else {
            stats.no_route.inc();
            if let Some(log) = guard.log() {
                log.fail(Some(ResponseFlags::NO_ROUTE), "route_not_found");
            }
            return local_reply(StatusCode::NOT_FOUND, "", Some(guard));
        };
        if let Some(log) = guard.log() {
            log.route(matched.name());
            if !matches!(matched.action(), RouteAction::Forward(_)) {
                log.details(DIRECT_RESPONSE);
            }
        }
        let forward = match matched.action() {
            RouteAction::DirectResponse { status, body } => {
                stats.rq_direct_response.inc();
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
                let mut resp = text_reply(status, body.clone().unwrap_or_default(), Some(guard));
                if let Some(location) = matched.direct_response_location(&view).and_then(|l| HeaderValue::from_str(&l).ok()) {
                    resp.headers_mut().insert(LOCATION, location);
                }
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &parts.headers);
                return resp;
            }
            RouteAction::Redirect(_) => {
                // Envoy counts redirect routes as direct responses.
                stats.rq_direct_response.inc();
                let (status, location) = matched.redirect(&view);
                if let (Some(path), Some(log)) = (matched.redirect_rewritten_path(&view), guard.log()) {
                    // Envoy rewrites the request in place, keeping the old path in
                    // x-envoy-original-path (verified against Envoy 1.40).
                    let mut headers = parts.headers.clone();
                    if let Ok(original) = HeaderValue::from_str(&ctx.path_and_query) {
                        headers.insert(names::ORIGINAL_PATH, original);
                    }
                    log.capture_request(&parts.method, &path, &headers, false);
                }
                let mut resp = local_reply(StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY), "", Some(guard));
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &parts.headers);
                return resp;
            }
            RouteAction::Forward(forward) => forward,
        };
        stats.rq_total.inc();
        // Envoy decides whether a request may be retried on the headers as received.
        let request_retriable = matched.retriable_request(&view);

        // Local replies from here on carry the route's response header mutations, as in Envoy.
        // No cluster selected (a weighted or header-named one may be missing), or none by that name.
        let cluster = matched.select_cluster(&parts.headers, rand::random::<u64>()).and_then(|name| hcm.clusters.get(name).cloned());
        let Some(cluster) = cluster else {
            stats.no_cluster.inc();
            if let Some(log) = guard.log() {
                log.fail(Some(ResponseFlags::NO_CLUSTER), "cluster_not_found");
            }
            let mut resp = local_reply(StatusCode::SERVICE_UNAVAILABLE, "", Some(guard));
            matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &parts.headers);
            return resp;
        };
        let hash = matched.compute_hash(&parts.headers, ctx.classified.client, &ctx.path_and_query);
        if let Some(log) = guard.log() {
            log.cluster(&cluster.config.name);
        }
        let Some(host) = cluster.choose_host(&LbContext { hash }) else {
            cluster.stats.record_response(503, ctx.classified.internal);
            if let Some(log) = guard.log() {
                log.fail(Some(ResponseFlags::NO_HEALTHY_UPSTREAM), "no_healthy_upstream");
            }
            let mut resp = local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream", Some(guard));
            matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &parts.headers);
            return resp;
        };

        // Envoy's order: header mutations, then the host rewrite (x-envoy-original-host), then the
        // path rewrite (x-envoy-original-path whenever a rewrite is configured). Without a path
        // rewrite the downstream URI is reused as is.
        matched.apply_request_mutations(&mut parts.headers, &format_ctx);
        matched.apply_host_rewrite(&mut parts.headers, &host.hostname);
        let new_path = matched.apply_path_rewrite(&mut parts.headers, &ctx.path_and_query);

        // Timeout: the route's, or x-envoy-upstream-rq-timeout-ms from internal clients.
        let mut timeout = timeouts::route_timeout(forward);
        let max_duration = timeouts::max_stream_duration(hcm.config.max_stream_duration, forward.max_stream_duration, &mut parts.headers);
        let grpc = crate::grpc::is_grpc(&parts.headers);
        // One pass over the names: most requests carry neither x-envoy-* headers nor `expect`, and
        // each removal is a hashed lookup.
        let (envoy_headers, expect) = parts
            .headers
            .keys()
            .fold((false, false), |(envoy, expect), k| (envoy || k.as_str().starts_with("x-envoy-"), expect || *k == EXPECT));
        if envoy_headers {
            if ctx.classified.internal {
                if let Some(ms) = header_u64(&parts.headers, &names::UPSTREAM_RQ_TIMEOUT) {
                    timeout = if ms == 0 { None } else { Some(Duration::from_millis(ms)) };
                }
            }
            parts.headers.remove(&names::UPSTREAM_RQ_TIMEOUT);
        }
        // The per-try timeout bounds every attempt, the first included, body or not: the policy's,
        // or x-envoy-upstream-rq-per-try-timeout-ms; ignored when not below the route timeout.
        let per_try = per_try_timeout(forward.retry_policy.as_ref(), envoy_headers.then_some(&mut parts.headers), timeout);
        if let Some(t) = per_try.or(timeout) {
            parts.headers.insert(names::EXPECTED_RQ_TIMEOUT, decimal_value(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        }
        // The retry headers are all x-envoy-*: without them or a policy, nothing is retried.
        let mut retry = match envoy_headers || forward.retry_policy.is_some() {
            true => RetryState::new(forward.retry_policy.as_ref(), &mut parts.headers, request_retriable),
            false => None,
        };
        if forward.attempt_count.request {
            parts.headers.insert(ATTEMPT_COUNT, decimal_value(1));
        }
        // 100-continue is answered by our codec; the upstream sees a plain request.
        if expect {
            parts.headers.remove(EXPECT);
        }
        // The upstream request's target in origin form: the rewritten path, or the received one
        // (an absolute-form or HTTP/2 target keeps its path and query, already parsed).
        if new_path.is_some() || parts.uri.authority().is_some() {
            let received = parts.uri.path_and_query().filter(|pq| new_path.is_none() && pq.as_str() == ctx.path_and_query);
            parts.uri = match received.cloned() {
                Some(pq) => Uri::from(pq),
                None => {
                    let path = new_path.as_deref().unwrap_or(&ctx.path_and_query);
                    let Ok(uri) = path.parse::<Uri>() else {
                        return local_reply(StatusCode::BAD_REQUEST, "Bad Request", Some(guard));
                    };
                    uri
                }
            };
        }
        if let Some(log) = guard.log() {
            log.capture_request(&parts.method, new_path.as_deref().unwrap_or(&ctx.path_and_query), &parts.headers, false);
            log.host(host.address);
        }
        let downstream_version = parts.version;
        let downstream_upgrade =
            if ctx.upgrade == UpgradeRequest::Allowed { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };
        parts.version = http::Version::HTTP_11;
        // Response mutations may read request headers (%REQ()%); keep them only when needed.
        let request_headers_for_response =
            if matched.response_mutations_read_request() { parts.headers.clone() } else { http::HeaderMap::new() };
        // One clock read: the request body's progress and the upstream request's limits count from
        // the same instant.
        let now = tokio::time::Instant::now();
        // The progress also records a body the codec rejects (bad chunk size...): that is the
        // client's fault, 400 rather than 503.
        let (body, progress) = TrackedBody::new(body, now);
        let on_error = |e: hyper::Error| -> legate_upstream::BoxError { e.into() };
        let stream_deadlines = |progress| {
            let start = tokio::time::Instant::from_std(ctx.start);
            StreamDeadlines::new(start, hcm.config.request_timeout, max_duration, progress, stats.clone())
        };
        let limits = StreamLimits::new(stream_deadlines(progress.clone()), timeout, timeouts::idle_timeout(hcm.config.stream_idle_timeout, forward.idle_timeout), now);
        let upstream_body: RequestBody = match guard.log() {
            Some(log) => log.track_request_body(body).map_err(on_error).boxed_unsync(),
            // A request without a body sends an empty one: no allocation, nothing to poll.
            None if http_body::Body::is_end_stream(&body) => RequestBody::default(),
            None => body.map_err(on_error).boxed_unsync(),
        };
        let cstats = &cluster.stats;
        // A request that may be retried keeps what rebuilds it: its head, and a copy of its body
        // up to the route's buffer limit (never above the listener's).
        let template = retry.as_ref().map(|_| (parts.method.clone(), parts.uri.clone(), parts.headers.clone()));
        let (replay, upstream_body) = match &retry {
            Some(_) if !http_body::Body::is_end_stream(&upstream_body) => {
                let limit = forward.retry_buffer_limit.map_or(hcm.buffer_limit, |l| l.min(hcm.buffer_limit));
                let (replay, first) = Replay::new(upstream_body, limit as usize, cstats.retry_or_shadow_abandoned.clone());
                (Some(replay), first.boxed())
            }
            _ => (None, upstream_body),
        };
        let upstream_req = http::Request::from_parts(parts, upstream_body);

        // upstream_rq_total and the host's rq_total are counted by the pool once the request is
        // written to a connection (a connect failure counts neither, as in Envoy).
        // The attempt in flight: released when dropped, even if the client goes away meanwhile.
        let Some(admitted) = cluster.admit_request(&host) else {
            // The max_requests circuit breaker is open: 503 with flag UO, nothing sent.
            cstats.record_response(503, ctx.classified.internal);
            let mut resp = text_reply(StatusCode::SERVICE_UNAVAILABLE, format!("{RESET_PREFIX}overflow"), Some(guard));
            resp.headers_mut().insert(names::OVERLOADED, HeaderValue::from_static("true"));
            matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
            return resp;
        };
        let mut active = Some(admitted);
        let mut up_start = Instant::now();
        // Waiting for response headers is bounded by the route timeout, the stream idle timeout and
        // the connection manager's deadlines: one timer serves the header wait of every attempt and,
        // re-armed, the body.
        let idle = limits.idle();
        let mut timer = limits.timer(guard.timers());
        // The attempt's future is large: pinned in place, not moved into `await_attempt`.
        let mut outcome = {
            let send = std::pin::pin!(ctx.worker.pool.send(&cluster, &host, upstream_req, downstream_version));
            await_attempt(send, timer.as_mut(), &limits, per_try).await
        };
        let internal = ctx.classified.internal;
        let mut host = host;
        let mut attempts = 1u32;
        if let (Some(retry), Some((method, uri, headers))) = (retry.as_mut(), &template) {
            let policy = retry.policy;
            let mut tried = vec![host.address];
            let mut retries = 0;
            // A body that went past the buffer limit cannot be sent again: Envoy then gives up
            // retrying (retry_or_shadow_abandoned, counted by the replay buffer).
            while retry.retriable(&outcome, |h| matched.retriable_response(h)) && replay.as_ref().is_none_or(Replay::replayable) {
                if !retry.take_retry() {
                    cstats.upstream_rq_retry_limit_exceeded.inc();
                    if let Some(log) = guard.log() {
                        log.flag(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
                    }
                    break;
                }
                let Some(backoff) = cluster.admit_retry() else {
                    break;
                };
                if matches!(outcome, Attempt::PerTryTimeout) {
                    cstats.upstream_rq_per_try_timeout.inc();
                }
                crate::retry::account_retried(&cluster, &host, &outcome);
                active = None;
                retries += 1;
                cstats.upstream_rq_retry.inc();
                cstats.upstream_rq_retry_backoff_exponential.inc();
                let pause = tokio::time::sleep(crate::retry::backoff(policy, retries));
                if let Some(sleep) = timer.as_mut() {
                    tokio::select! {
                        biased;
                        expiry = limits.expiry(sleep) => {
                            outcome = Attempt::Timeout(expiry);
                            break;
                        }
                        () = pause => {}
                    }
                } else {
                    pause.await;
                }
                drop(backoff);
                host = next_host(&cluster, hash, policy, &tried).unwrap_or(host);
                tried.push(host.address);
                if let Some(log) = guard.log() {
                    log.host(host.address);
                }
                let mut headers = headers.clone();
                matched.apply_host_rewrite(&mut headers, &host.hostname);
                if forward.attempt_count.request {
                    headers.insert(ATTEMPT_COUNT, decimal_value(u64::from(retries) + 1));
                }
                let body = match &replay {
                    None => RequestBody::default(),
                    Some(replay) => match replay.next_attempt() {
                        Some(body) => body.boxed(),
                        // The body went past the limit during the back-off: send nothing more.
                        None => {
                            outcome = Attempt::Done(Err(UpstreamError::Reset { detail: "request body exceeded the retry buffer".into() }));
                            break;
                        }
                    },
                };
                let mut req = http::Request::new(body);
                *req.method_mut() = method.clone();
                *req.uri_mut() = uri.clone();
                *req.headers_mut() = headers;
                active = cluster.admit_request(&host);
                if active.is_none() {
                    outcome = Attempt::Done(Err(UpstreamError::Overflow));
                    break;
                }
                up_start = Instant::now();
                outcome = {
                    let send = std::pin::pin!(ctx.worker.pool.send(&cluster, &host, req, downstream_version));
                    await_attempt(send, timer.as_mut(), &limits, per_try).await
                };
            }
            attempts += retries;
            if retries > 0 && matches!(&outcome, Attempt::Done(Ok(r)) if r.status().as_u16() < 500) {
                cstats.upstream_rq_retry_success.inc();
            }
        }
        let per_try_final = matches!(outcome, Attempt::PerTryTimeout);
        if per_try_final {
            cstats.upstream_rq_per_try_timeout.inc();
        }
        let result = match outcome {
            Attempt::Done(r) => Ok(r),
            Attempt::Timeout(expiry) => Err(expiry),
            Attempt::PerTryTimeout => Err(Expiry::Route),
        };
        let mut completion = |success| {
            let attempt = match active.take() {
                Some(admitted) => LastAttempt::Active(admitted),
                None => LastAttempt::Ended { cluster: cluster.clone(), host: host.clone() },
            };
            UpstreamCompletion { attempt, start: up_start, success, internal }
        };
        match result {
            Err(expiry @ (Expiry::Request | Expiry::MaxDuration)) => {
                guard.set_upstream(completion(false));
                let mut resp = limits.stream.reply(expiry, grpc, guard);
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
                resp
            }
            Err(Expiry::Idle) => {
                stats.downstream_rq_idle_timeout.inc();
                guard.set_upstream(completion(false));
                if let Some(log) = guard.log() {
                    log.fail(Some(ResponseFlags::STREAM_IDLE_TIMEOUT), "stream_idle_timeout");
                }
                // Verified against Envoy 1.40: "stream timeout", 504 while awaiting the upstream,
                // 408 while the request is incomplete.
                let mut resp = local_reply(progress.timeout_status(), "stream timeout", Some(guard));
                progress.close_if_incomplete(&mut resp);
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
                resp
            }
            Err(Expiry::Route) => {
                cluster.outlier_result(&host, RequestResult::Timeout);
                if !per_try_final {
                    cstats.upstream_rq_timeout.inc();
                }
                host.stats.rq_timeout.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                cstats.record_response(504, internal);
                guard.set_upstream(completion(false));
                if let Some(log) = guard.log() {
                    log.fail(Some(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT), "response_timeout");
                }
                let mut resp = local_reply(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout", Some(guard));
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
                resp
            }
            // The client went away in the middle of its request: nothing is answered (the stream
            // is reset, as in Envoy).
            Ok(Err(_)) if progress.client_gone() => {
                guard.set_upstream(completion(false));
                drop(guard);
                let mut resp = local_reply(StatusCode::BAD_REQUEST, "", None);
                resp.extensions_mut().insert(crate::body::ClientGone);
                resp
            }
            Ok(Err(_)) if progress.failed() => {
                guard.set_upstream(completion(false));
                let mut resp = local_reply(StatusCode::BAD_REQUEST, "Bad Request", Some(guard));
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
                resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
            Ok(Err(err)) => {
                let result = match err {
                    UpstreamError::ConnectFailure { .. } | UpstreamError::ConnectTimeout => RequestResult::ConnectFailed,
                    _ => RequestResult::Reset,
                };
                cluster.outlier_result(&host, result);
                cstats.record_response(503, internal);
                guard.set_upstream(completion(false));
                if let Some(log) = guard.log() {
                    log.fail(Some(err.response_flag()), err.response_code_details());
                    log.transport_failure(err.transport_failure_reason());
                }
                let body = format!("{RESET_PREFIX}{}", err.reset_reason());
                let mut resp = text_reply(StatusCode::SERVICE_UNAVAILABLE, body, Some(guard));
                if matches!(err, UpstreamError::Overflow) {
                    resp.headers_mut().insert(names::OVERLOADED, HeaderValue::from_static("true"));
                }
                matched.apply_response_mutations(resp.headers_mut(), &format_ctx, &request_headers_for_response);
                resp
            }
            Ok(Ok(mut resp)) => {
                let upgraded = match downstream_upgrade {
                    Some(downstream) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                        let upstream = hyper::upgrade::on(&mut resp);
                        tokio::spawn(crate::upgrade::splice(downstream, upstream, hcm.stats.clone()));
                        resp.headers().get(http::header::UPGRADE).cloned()
                    }
                    _ => None,
                };
                let (mut rparts, rbody) = resp.into_parts();
                let status = rparts.status.as_u16();
                cluster.outlier_result(&host, RequestResult::Response(status));
                cstats.record_response(status, internal);
                guard.set_upstream(completion(status < 500));
                if let Some(log) = guard.log() {
                    log.response_started();
                    log.details("via_upstream");
                }
                clean_response_headers(&mut rparts.headers);
                if let Some(protocol) = upgraded {
                    rparts.headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
                    rparts.headers.insert(http::header::UPGRADE, protocol);
                }
                rparts.headers.insert(names::UPSTREAM_SERVICE_TIME, decimal_value(ms_since(up_start)));
                if forward.attempt_count.response {
                    rparts.headers.insert(ATTEMPT_COUNT, decimal_value(u64::from(attempts)));
                }
                let response_ctx = FormatContext { upstream_remote: Some(host.address), ..format_ctx };
                matched.apply_response_mutations(&mut rparts.headers, &response_ctx, &request_headers_for_response);
                let body_timer = timer.map(|sleep| {
                    let idle = idle.map(|i| (i, stats.downstream_rq_idle_timeout.clone()));
                    BodyTimer::new(sleep, timeout.map(|t| up_start + t), idle, stream_deadlines(progress).response_started())
                });
                rparts.version = http::Version::HTTP_11;
                Response::from_parts(rparts, ProxyBody::upstream(rbody, body_timer, guard))
            }
        }
    }
}

/// Waits for an attempt's response headers, bounded by the stream's `limits` (on their `timer`)
/// and the policy's per-try timeout.
async fn await_attempt(
    send: impl std::future::Future<Output = Result<http::Response<UpstreamBody>, UpstreamError>>,
    timer: Option<&mut std::pin::Pin<Box<tokio::time::Sleep>>>,
    limits: &StreamLimits,
    per_try: Option<Duration>,
) -> Attempt {
    let per_try = async {
        match per_try {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let expiry = async {
        match timer {
            Some(sleep) => limits.expiry(sleep).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        r = send => Attempt::Done(r),
        expiry = expiry => Attempt::Timeout(expiry),
        () = per_try => Attempt::PerTryTimeout,
    }
}

/// The host of a retry: with the previous-hosts predicate, up to
/// `host_selection_retry_max_attempts` picks avoid the hosts already tried.
fn next_host(cluster: &legate_upstream::Cluster, hash: Option<u64>, policy: &RetryPolicy, tried: &[std::net::SocketAddr]) -> Option<std::sync::Arc<legate_upstream::Host>> {
    let mut pick = cluster.choose_host(&LbContext { hash })?;
    if policy.previous_hosts {
        for _ in 0..policy.host_selection_retry_max_attempts {
            if !tried.contains(&pick.address) {
                break;
            }
            pick = cluster.choose_host(&LbContext { hash })?;
        }
    }
    Some(pick)
}

/// The per-try timeout of a request: `x-envoy-upstream-rq-per-try-timeout-ms` (consumed from
/// `headers`, given when the request has x-envoy-* headers), else the retry policy's; none when
/// it is not below the route timeout, as in Envoy.
fn per_try_timeout(policy: Option<&RetryPolicy>, headers: Option<&mut http::HeaderMap>, route: Option<Duration>) -> Option<Duration> {
    let mut per_try = policy.and_then(|p| p.per_try_timeout);
    let header = headers.and_then(|h| h.remove(RetryHeaders::PER_TRY_TIMEOUT));
    if let Some(ms) = header.and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()) {
        per_try = (ms > 0).then(|| Duration::from_millis(ms));
    }
    per_try.filter(|p| route.is_none_or(|r| *p < r))
}

/// Envoy's `%PROTOCOL%` names.
pub(crate) fn protocol_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
