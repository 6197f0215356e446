//! Envoy-compatible admin endpoints: `/ready`, `/stats`, `/stats/prometheus`, `/clusters`,
//! `/listeners`, `/config_dump`, `/server_info`, `/memory`, `/logging`, `/quitquitquit`, ...
//!
//! The admin crate knows nothing of the data plane's types: the binary hands it a
//! [`ClusterSource`] and the facts it shows.

mod clusters;
mod config_dump;
mod handlers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use legate_stats::Store;
use tokio::sync::Notify;

pub use clusters::{ClusterSnapshot, ClusterSource, HostSnapshot};

/// Changes the log level; returns false for an unknown level.
pub type LogLevelSetter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Facts about this process shown by `/server_info`.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Version string (Envoy's `<sha>/<version>/<status>/<type>/<tls>` shape).
    pub version: String,
    /// Node id.
    pub node_id: String,
    /// Node cluster.
    pub node_cluster: String,
    /// Command line options, as JSON.
    pub command_line_options: serde_json::Value,
}

/// Everything the admin endpoints read or change.
pub struct AdminState {
    /// Stats.
    pub store: Store,
    /// The bootstrap as JSON (snake_case keys), for `/config_dump`.
    pub config: serde_json::Value,
    /// Cluster membership.
    pub clusters: Box<dyn ClusterSource>,
    /// Server facts.
    pub info: ServerInfo,
    /// Changes the log level (`POST /logging`).
    pub set_log_level: LogLevelSetter,
    started: Instant,
    loaded_at: String,
    live: AtomicBool,
    failing_health_checks: AtomicBool,
    listeners: Mutex<Vec<(String, SocketAddr)>>,
    shutdown: Notify,
    shutdown_flag: AtomicBool,
}

impl AdminState {
    /// New state; the server is initializing until [`AdminState::set_live`].
    pub fn new(
        store: Store,
        config: serde_json::Value,
        clusters: Box<dyn ClusterSource>,
        info: ServerInfo,
        set_log_level: LogLevelSetter,
    ) -> Self {
        Self {
            store,
            config,
            clusters,
            info,
            set_log_level,
            started: Instant::now(),
            loaded_at: now_rfc3339(),
            live: AtomicBool::new(false),
            failing_health_checks: AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
            shutdown: Notify::new(),
            shutdown_flag: AtomicBool::new(false),
        }
    }

    /// Records the bound listeners (name, address) for `/listeners`.
    pub fn set_listeners(&self, listeners: Vec<(String, SocketAddr)>) {
        *self.listeners.lock().unwrap_or_else(|e| e.into_inner()) = listeners;
    }

    /// Marks initialization complete.
    pub fn set_live(&self) {
        self.live.store(true, Ordering::Release);
    }

    /// Envoy's server state name: `LIVE`, `DRAINING` or `INITIALIZING`.
    pub fn state(&self) -> &'static str {
        if !self.live.load(Ordering::Acquire) {
            "INITIALIZING"
        } else if self.failing_health_checks.load(Ordering::Acquire) {
            "DRAINING"
        } else {
            "LIVE"
        }
    }

    /// Resolves once `/quitquitquit` was requested.
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

    fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The current UTC time as RFC 3339 (`2026-11-22T17:35:44Z`).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Serves the admin API on `listener` forever; each connection runs in its own task.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AdminState>) {
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
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handlers::handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

#[cfg(test)]
mod tests;
