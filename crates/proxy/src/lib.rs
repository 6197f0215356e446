//! Legate's data plane: listeners bound once per worker (SO_REUSEPORT), the HTTP connection
//! manager and the router.

pub mod access_log;
pub mod body;
pub mod chain;
pub mod conn;
pub mod conn_state;
pub mod decimal;
pub mod drain;
pub mod forwarding;
pub mod grpc;
pub mod h1_guard;
pub mod hcm;
pub mod listener;
pub mod local_reply;
pub mod retry;
pub mod route;
pub mod router;
pub mod sniff;
pub mod stats;
pub mod tcp_proxy;
pub mod timeouts;
pub mod timer_slot;
pub mod tls;
pub mod upgrade;
pub mod validate;
pub mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;

use legate_config::model::Bootstrap;
use legate_stats::Store;
use legate_upstream::ClusterManager;
use tokio::sync::watch;

use crate::listener::{bind_reuseport, ListenerRuntime};

/// Errors starting the data plane.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listener could not be bound.
    #[error("cannot bind listener '{name}' to {address}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address.
        address: std::net::SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// Invalid configuration reaching the data plane.
    #[error("{0}")]
    Config(String),
    /// A worker thread or runtime could not be started.
    #[error("cannot start worker: {0}")]
    Runtime(std::io::Error),
}

/// The running data plane: worker threads serving all listeners.
pub struct DataPlane {
    listeners: Vec<Arc<ListenerRuntime>>,
    workers: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    stop_listening: Arc<watch::Sender<bool>>,
    store: Store,
}

/// Stops every listener of the data plane from accepting (`/drain_listeners`); open connections
/// are served until they close.
#[derive(Clone)]
pub struct ListenerSwitch {
    stop: Arc<watch::Sender<bool>>,
    store: Store,
}

impl ListenerSwitch {
    /// Closes the listening sockets of every worker.
    pub fn stop_listening(&self) {
        if !self.stop.send_replace(true) {
            use legate_stats::GaugeMode;
            let active = self.store.gauge("listener_manager.total_listeners_active", GaugeMode::NeverImport);
            active.set(0);
            self.store.counter("listener_manager.listener_stopped").inc();
        }
    }
}

impl DataPlane {
    /// Instantiates the listeners of `bootstrap`, binds `concurrency` sockets per listener and
    /// starts one worker thread per socket set. Access log files are flushed at least every
    /// `flush_interval`; `drain` decides when responses close their connections.
    pub fn start(
        bootstrap: &Bootstrap,
        clusters: &Arc<ClusterManager>,
        store: &Store,
        concurrency: usize,
        flush_interval: std::time::Duration,
        drain: Arc<drain::DrainManager>,
    ) -> Result<Self, ProxyError> {
        let concurrency = concurrency.max(1);
        let mut listeners = Vec::with_capacity(bootstrap.listeners.len());
        for l in &bootstrap.listeners {
            listeners.push(Arc::new(ListenerRuntime::new(l, clusters, store, flush_interval)?));
        }
        // sockets[worker][listener]
        let mut sockets: Vec<Vec<std::net::TcpListener>> = (0..concurrency).map(|_| Vec::new()).collect();
        for l in &mut listeners {
            let mut address = l.config.address;
            for worker_sockets in sockets.iter_mut() {
                let socket = bind_reuseport(address).map_err(|source| ProxyError::Bind {
                    name: l.config.name.clone(),
                    address,
                    source,
                })?;
                // Port 0: every worker binds the port the first socket got.
                if address.port() == 0 {
                    if let Ok(bound) = socket.local_addr() {
                        address = bound;
                    }
                }
                worker_sockets.push(socket);
            }
            if address != l.config.address {
                let rt = Arc::get_mut(l).expect("listener runtime not yet shared");
                rt.config.address = address;
            }
        }
        let (shutdown, rx) = watch::channel(false);
        let (stop_listening, stop_rx) = watch::channel(false);
        let mut workers = Vec::with_capacity(concurrency);
        for (index, worker_sockets) in sockets.into_iter().enumerate() {
            workers.push(worker::spawn_worker(index, listeners.clone(), worker_sockets, rx.clone(), stop_rx.clone(), drain.clone())?);
            // Workers share the cluster manager: each has every cluster from its start.
            clusters.worker_started(index);
        }
        store_listener_gauges(store, listeners.len());
        Ok(Self { listeners, workers, shutdown, stop_listening: Arc::new(stop_listening), store: store.clone() })
    }

    /// The bound listeners (name, address), with port 0 resolved.
    pub fn listener_addresses(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.listeners.iter().map(|l| (l.config.name.clone(), l.config.address)).collect()
    }

    /// A handle that stops the listeners from accepting.
    pub fn listener_switch(&self) -> ListenerSwitch {
        ListenerSwitch { stop: self.stop_listening.clone(), store: self.store.clone() }
    }

    /// Stops accepting and joins the workers.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// `listener_manager.*` gauges and counters for statically configured listeners, once the
/// workers have started.
fn store_listener_gauges(store: &Store, count: usize) {
    use legate_stats::GaugeMode;
    let count = count as u64;
    store.counter("listener_manager.listener_added").add(count);
    store.counter("listener_manager.listener_create_success").add(count);
    store.gauge("listener_manager.total_listeners_active", GaugeMode::NeverImport).set(count);
    store.gauge("listener_manager.total_listeners_warming", GaugeMode::NeverImport).set(0);
    store.gauge("listener_manager.total_listeners_draining", GaugeMode::NeverImport).set(0);
    // Static listeners only (no LDS): none is ever updated, modified or removed, and no filter
    // chain drains; a listener that cannot be created stops the start. `/drain_listeners`
    // counts `listener_stopped`.
    for name in ["listener_create_failure", "listener_in_place_updated", "listener_modified", "listener_removed", "listener_stopped"] {
        store.counter(&format!("listener_manager.{name}"));
    }
    store.gauge("listener_manager.total_filter_chains_draining", GaugeMode::NeverImport).set(0);
    store.gauge("listener_manager.workers_started", GaugeMode::NeverImport).set(1);
}
