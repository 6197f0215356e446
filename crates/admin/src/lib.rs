//! Envoy-compatible admin endpoints: `/ready`, `/stats`, `/stats/prometheus`, `/clusters`,
//! `/listeners`, `/config_dump`, `/server_info`, `/memory`, `/logging`, `/quitquitquit`, ...
//!
//! Bodies, status codes and content types follow Envoy 1.40 (checked against the real binary).
//! The admin crate knows nothing of the data plane's types: the binary hands it a
//! [`ClusterSource`], the bootstrap as JSON and the facts `/server_info` shows.

mod clusters;
pub mod config_dump;
mod handlers;
mod help;
mod json;
mod logging;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use legate_stats::{GaugeMode, Store};
use tokio::sync::Notify;

pub use clusters::{ClusterSnapshot, ClusterSource, HostSnapshot, OutlierSnapshot, Thresholds};
pub use logging::{LogLevelSetter, LEVELS as LOG_LEVELS, LOGGERS};

/// What `POST /drain_listeners` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainRequest {
    /// `?graceful`: drain gracefully before closing listeners.
    pub graceful: bool,
    /// `?skip_exit`: drain connections but keep listening.
    pub skip_exit: bool,
    /// `?inboundonly`: only inbound listeners.
    pub inbound_only: bool,
}

/// Starts a listener drain (`POST /drain_listeners`).
pub type DrainHook = Box<dyn Fn(DrainRequest) + Send + Sync>;

/// The body of `/certs`: Envoy's `{"certificates": [...]}` for every TLS context.
pub type CertificatesHook = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Facts about this process shown by `/server_info`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Version string (Envoy's `<sha>/<version>/<status>/<build type>/<tls>` shape).
    pub version: String,
    /// `hot_restart_version` (`disabled` without hot restart).
    pub hot_restart_version: String,
    /// The node as Envoy shows it: `{"id": .., "cluster": .., ...}`.
    pub node: serde_json::Value,
    /// Command line options in Envoy's `command_line_options` shape.
    pub command_line_options: serde_json::Value,
    /// Process start (uptime is measured from it).
    pub started: Instant,
    /// Initial level of every logger (Envoy's names: `info`, `warning`, ...).
    pub log_level: String,
}

/// Everything the admin endpoints read or change.
pub struct AdminState {
    /// Stats.
    pub store: Store,
    /// The bootstrap as JSON (proto field names), for `/config_dump`.
    pub bootstrap: serde_json::Value,
    /// Cluster membership.
    pub clusters: Box<dyn ClusterSource>,
    /// Server facts.
    pub info: ServerInfo,
    loggers: logging::Loggers,
    drain: Option<DrainHook>,
    /// `/certs`; without it the list is empty (no TLS context).
    certificates: Option<CertificatesHook>,
    loaded_at: String,
    live: AtomicBool,
    failing_health_checks: Arc<AtomicBool>,
    listeners: Mutex<Vec<(String, SocketAddr)>>,
    shutdown: Notify,
    shutdown_flag: AtomicBool,
}

impl AdminState {
    /// New state; the server is `INITIALIZING` until [`AdminState::set_live`].
    pub fn new(
        store: Store,
        bootstrap: serde_json::Value,
        clusters: Box<dyn ClusterSource>,
        info: ServerInfo,
        set_log_level: LogLevelSetter,
    ) -> Self {
        let loggers = logging::Loggers::new(&info.log_level, set_log_level);
        Self {
            store,
            bootstrap,
            clusters,
            info,
            loggers,
            drain: None,
            certificates: None,
            loaded_at: now_rfc3339(),
            live: AtomicBool::new(false),
            failing_health_checks: Arc::default(),
            listeners: Mutex::new(Vec::new()),
            shutdown: Notify::new(),
            shutdown_flag: AtomicBool::new(false),
        }
    }

    /// Shares the flag `POST /healthcheck/fail` sets with the data plane (which then closes
    /// connections after their current response, as Envoy does).
    pub fn with_health_check_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.failing_health_checks = flag;
        self
    }

    /// Makes `/certs` list what `hook` returns (Envoy's JSON: `{"certificates": [...]}`).
    pub fn with_certificates(mut self, hook: CertificatesHook) -> Self {
        self.certificates = Some(hook);
        self
    }

    /// Enables `POST /drain_listeners`, which calls `hook`.
    pub fn with_drain_listeners(mut self, hook: DrainHook) -> Self {
        self.drain = Some(hook);
        self
    }

    /// Records the bound listeners (name, address) for `/listeners`.
    pub fn set_listeners(&self, listeners: Vec<(String, SocketAddr)>) {
        *self.listeners.lock().unwrap_or_else(|e| e.into_inner()) = listeners;
    }

    /// Marks initialization complete.
    pub fn set_live(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Whether `POST /healthcheck/fail` is in force (Envoy's health-check filter answers 503).
    pub fn failing_health_checks(&self) -> bool {
        self.failing_health_checks.load(Ordering::Acquire)
    }

    /// Envoy's server state name: `LIVE`, `DRAINING` or `INITIALIZING`.
    pub fn state(&self) -> &'static str {
        if !self.live.load(Ordering::Acquire) {
            "INITIALIZING"
        } else if self.failing_health_checks() {
            "DRAINING"
        } else {
            "LIVE"
        }
    }

    /// Resolves once `/quitquitquit` was answered.
    pub async fn shutdown_requested(&self) {
        loop {
            let notified = self.shutdown.notified();
            if self.shutdown_flag.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn request_shutdown(&self) {
        self.shutdown_flag.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    fn set_failing(&self, failing: bool) {
        self.failing_health_checks.store(failing, Ordering::Release);
        if self.live.load(Ordering::Acquire) {
            self.store
                .gauge("server.live", GaugeMode::NeverImport)
                .set(u64::from(!failing));
        }
    }

    fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The current UTC time as RFC 3339 with milliseconds (`2026-11-22T17:35:44.123Z`).
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(i64::try_from(now.as_secs()).unwrap_or(i64::MAX), Some(now.subsec_millis()))
}

/// A time in seconds since the Unix epoch as RFC 3339 in UTC, with milliseconds when given
/// (`2026-11-22T17:35:44.123Z`, `2026-11-22T17:35:44Z`), as protobuf's JSON writes timestamps.
pub fn rfc3339(unix_secs: i64, millis: Option<u32>) -> String {
    let (days, rem) = (unix_secs.div_euclid(86_400), unix_secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let fraction = millis.map(|ms| format!(".{ms:03}")).unwrap_or_default();
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RE2-style wording for a regex error (`missing ): (`), as Envoy's messages quote RE2.
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let detail = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim());
    let re2 = match detail {
        "unclosed group" => "missing )",
        "unopened group" => "unexpected )",
        "unclosed character class" => "missing ]",
        "repetition operator missing expression" => "missing argument to repetition operator",
        other => other,
    };
    let pattern = match e {
        regex::Error::Syntax(s) => s
            .lines()
            .nth(1)
            .map(str::trim)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    format!("{re2}: {pattern}")
}

/// Serves the admin API on `listener` forever; each connection runs in its own task, and a
/// failed connection never affects the others. `/quitquitquit` resolves
/// [`AdminState::shutdown_requested`] once its answer was written.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AdminState>) {
    let stats = Arc::new(AdminHttpStats::new(&state.store));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = state.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            stats.cx_total.inc();
            stats.cx_active.inc();
            let quit = Arc::new(AtomicBool::new(false));
            let (svc_state, svc_quit, svc_stats) = (state.clone(), quit.clone(), stats.clone());
            let svc = service_fn(move |req| {
                let (state, quit, stats) = (svc_state.clone(), svc_quit.clone(), svc_stats.clone());
                async move {
                    stats.rq_total.inc();
                    stats.rq_http1_total.inc();
                    let (reply, wants_quit) = handlers::handle(&state, req).await;
                    stats.record(reply.status().as_u16());
                    if wants_quit {
                        quit.store(true, Ordering::Release);
                    }
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            let result = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            if let Err(e) = result {
                tracing::debug!("admin connection: {e}");
            }
            stats.cx_active.dec();
            if quit.load(Ordering::Acquire) {
                state.request_shutdown();
            }
        });
    }
}

/// The admin listener's own connection manager stats, `http.admin.*`, as Envoy keeps them.
struct AdminHttpStats {
    cx_total: legate_stats::Counter,
    cx_active: legate_stats::Gauge,
    rq_total: legate_stats::Counter,
    rq_http1_total: legate_stats::Counter,
    rq_completed: legate_stats::Counter,
    classes: [legate_stats::Counter; 5],
}

impl AdminHttpStats {
    fn new(store: &Store) -> Self {
        let c = |n: &str| store.counter(&format!("http.admin.{n}"));
        Self {
            cx_total: c("downstream_cx_total"),
            cx_active: store.gauge("http.admin.downstream_cx_active", GaugeMode::Accumulate),
            rq_total: c("downstream_rq_total"),
            rq_http1_total: c("downstream_rq_http1_total"),
            rq_completed: c("downstream_rq_completed"),
            classes: [1, 2, 3, 4, 5].map(|k| c(&format!("downstream_rq_{k}xx"))),
        }
    }

    fn record(&self, status: u16) {
        self.rq_completed.inc();
        if let Some(class) = self.classes.get(usize::from(status / 100).wrapping_sub(1)) {
            class.inc();
        }
    }
}

#[cfg(test)]
mod tests;
