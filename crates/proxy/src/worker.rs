//! Worker threads: each runs a single-threaded tokio runtime and accepts on its own
//! SO_REUSEPORT socket of every listener, as Envoy's workers do; connections never move between
//! workers, and each worker has its own upstream connection pool.

use std::sync::Arc;
use std::thread::JoinHandle;

use legate_upstream::UpstreamPools;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conn::serve_connection;
use crate::drain::DrainManager;
use crate::listener::ListenerRuntime;
use crate::stats::WorkerListenerStats;
use crate::ProxyError;

/// Per-worker state shared by all connections of the worker.
pub struct WorkerContext {
    /// Worker index (0-based), as in `worker_<n>` stats.
    pub index: usize,
    /// The worker's upstream connection pools.
    pub pool: UpstreamPools,
    /// Whether responses close their connections because the server drains.
    pub drain: Arc<DrainManager>,
}

/// Starts one worker thread serving `sockets` (one per listener, same order as `listeners`).
pub fn spawn_worker(
    index: usize,
    listeners: Vec<Arc<ListenerRuntime>>,
    sockets: Vec<std::net::TcpListener>,
    shutdown: watch::Receiver<bool>,
    stop_listening: watch::Receiver<bool>,
    drain: Arc<DrainManager>,
) -> Result<JoinHandle<()>, ProxyError> {
    debug_assert_eq!(listeners.len(), sockets.len(), "one socket per listener");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProxyError::Runtime)?;
    std::thread::Builder::new()
        .name(format!("wrk:worker_{index}"))
        .spawn(move || {
            runtime.block_on(run_worker(index, listeners, sockets, shutdown, stop_listening, drain));
        })
        .map_err(ProxyError::Runtime)
}

async fn run_worker(
    index: usize,
    listeners: Vec<Arc<ListenerRuntime>>,
    sockets: Vec<std::net::TcpListener>,
    mut shutdown: watch::Receiver<bool>,
    stop_listening: watch::Receiver<bool>,
    drain: Arc<DrainManager>,
) {
    let worker = Arc::new(WorkerContext { index, pool: UpstreamPools::new(), drain });
    for (listener, socket) in listeners.into_iter().zip(sockets) {
        let socket = match TcpListener::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(listener = %listener.config.name, "cannot register listener socket: {e}");
                continue;
            }
        };
        let wstats = WorkerListenerStats::new(&listener.store, &listener.scope, index);
        tokio::spawn(accept_loop(listener, socket, worker.clone(), wstats, stop_listening.clone()));
    }
    tokio::spawn(timer_tick());
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// How often [`timer_tick`] fires.
const TIMER_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps a timer at most [`TIMER_TICK`] ahead on the worker's runtime.
///
/// tokio's time driver wakes the I/O driver (a write to its eventfd, and a wake-up of its epoll)
/// whenever a timer is set to expire before the earliest expiry the driver knew when it last
/// parked, even when the timer is set from the driver's own thread, which is then running and
/// does not need waking. Without an earlier timer, every request's route timeout (15 s by
/// default) would be that earliest expiry: a system call per request for nothing. With this
/// tick, only timers shorter than [`TIMER_TICK`] still do it.
async fn timer_tick() {
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

async fn accept_loop(
    listener: Arc<ListenerRuntime>,
    socket: TcpListener,
    worker: Arc<WorkerContext>,
    wstats: WorkerListenerStats,
    mut stop_listening: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = socket.accept() => r,
            // Listeners stopped (`/drain_listeners`): the socket closes, connections go on.
            _ = stop_listening.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                listener.stats.downstream_cx_total.inc();
                listener.stats.downstream_cx_active.inc();
                listener.stats.server_total_connections.inc();
                wstats.downstream_cx_total.inc();
                wstats.downstream_cx_active.inc();
                let listener = listener.clone();
                let worker = worker.clone();
                let wstats = wstats.clone();
                tokio::spawn(async move {
                    let start = std::time::Instant::now();
                    serve_connection(&listener, worker, stream, remote).await;
                    listener.stats.downstream_cx_active.dec();
                    listener.stats.server_total_connections.dec();
                    listener.stats.downstream_cx_destroy.inc();
                    listener.stats.downstream_cx_length_ms.record(crate::body::ms_since(start));
                    wstats.downstream_cx_active.dec();
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(listener = %listener.config.name, "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
