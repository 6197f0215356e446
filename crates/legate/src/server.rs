//! Process wiring: the main thread runs admin and discovery on a single-threaded runtime; worker
//! threads run the data plane.

pub mod logging;
mod server_stats;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use legate_config::LoadedConfig;
use legate_stats::Store;
use legate_proxy::drain::{DrainManager, DrainStrategy};
use legate_upstream::ClusterManager;

use crate::cli::{Cli, Mode};

/// Runs the proxy until SIGTERM/SIGINT or POST /quitquitquit.
pub fn run(cli: &Cli, loaded: LoadedConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(cli, loaded))
}

async fn serve(cli: &Cli, loaded: LoadedConfig) -> anyhow::Result<()> {
    let LoadedConfig { mut bootstrap, raw } = loaded;
    if let Some(node) = &cli.service_node {
        bootstrap.node.id = node.clone();
    }
    if let Some(cluster) = &cli.service_cluster {
        bootstrap.node.cluster = cluster.clone();
    }
    let concurrency = cli
        .concurrency
        .filter(|c| *c > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let store = Store::new();
    let server_stats = server_stats::ServerStats::new(&store, concurrency);

    let clusters = ClusterManager::new(&bootstrap.clusters, &store).context("initializing clusters")?;
    let admin = match &bootstrap.admin {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin.address)
                .await
                .with_context(|| format!("cannot bind admin address {}", admin.address))?,
        ),
        None => None,
    };
    let switch: Arc<OnceLock<legate_proxy::ListenerSwitch>> = Arc::default();
    let strategy = match cli.drain_strategy {
        crate::cli::DrainStrategyArg::Gradual => DrainStrategy::Gradual,
        crate::cli::DrainStrategyArg::Immediate => DrainStrategy::Immediate,
    };
    let health_check_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = Arc::new(DrainManager::new(Duration::from_secs(cli.drain_time_s), strategy, health_check_failed.clone()));
    let control = DrainControl { drain: drain.clone(), switch: switch.clone() };
    let state = admin_state(cli, &bootstrap, raw, &store, &clusters, concurrency, control);
    let state = state.with_health_check_flag(health_check_failed);
    let state = Arc::new(state);
    if let Some(listener) = admin {
        tokio::spawn(legate_admin::serve(listener, state.clone()));
    }

    clusters.start();
    clusters.wait_initialized().await;
    let data_plane = legate_proxy::DataPlane::start(
        &bootstrap,
        &clusters,
        &store,
        concurrency,
        Duration::from_millis(u64::from(cli.file_flush_interval_msec)),
        drain,
    )?;
    let _ = switch.set(data_plane.listener_switch());
    state.set_listeners(data_plane.listener_addresses());
    state.set_live();
    server_stats.set_live();
    if cli.mode == Mode::InitOnly {
        data_plane.shutdown();
        return Ok(());
    }
    tracing::info!("all listeners started; {} worker(s)", concurrency);

    let ticker = tokio::spawn(server_stats.run(Duration::from_secs(1)));
    // Envoy's stats flush: every `stats_flush_interval` histograms close an interval (the first
    // quantile of each pair in `/stats`).
    let flusher = {
        let (store, every) = (store.clone(), bootstrap.stats_flush_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                store.flush_histograms();
            }
        })
    };
    wait_for_shutdown(&state).await;
    ticker.abort();
    flusher.abort();
    tracing::info!("shutting down");
    data_plane.shutdown();
    Ok(())
}

/// Builds the admin state for this process.
fn admin_state(
    cli: &Cli,
    bootstrap: &legate_config::model::Bootstrap,
    raw: serde_json::Value,
    store: &Store,
    clusters: &Arc<ClusterManager>,
    concurrency: usize,
    drain: DrainControl,
) -> legate_admin::AdminState {
    let info = legate_admin::ServerInfo {
        version: crate::cli::VERSION_LINE.to_string(),
        hot_restart_version: "disabled".to_string(),
        node: serde_json::json!({
            "id": bootstrap.node.id,
            "cluster": bootstrap.node.cluster,
            "user_agent_name": "legate",
        }),
        started: std::time::Instant::now(),
        log_level: cli.log_level.envoy_name().to_string(),
        command_line_options: serde_json::json!({
            "concurrency": concurrency,
            "config_path": cli.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "config_yaml": cli.config_yaml.clone().unwrap_or_default(),
            "log_level": cli.log_level.directive(),
            "service_cluster": cli.service_cluster.clone().unwrap_or_default(),
            "service_node": cli.service_node.clone().unwrap_or_default(),
            "mode": format!("{:?}", cli.mode),
            "base_id": cli.base_id.unwrap_or(0).to_string(),
            "use_dynamic_base_id": cli.use_dynamic_base_id,
            "drain_time": format!("{}s", cli.drain_time_s),
            "drain_strategy": match cli.drain_strategy {
                crate::cli::DrainStrategyArg::Gradual => "Gradual",
                crate::cli::DrainStrategyArg::Immediate => "Immediate",
            },
            "disable_hot_restart": true,
        }),
    };
    legate_admin::AdminState::new(
        store.clone(),
        raw,
        Box::new(ClusterView(clusters.clone())),
        info,
        Box::new(logging::set_level),
    )
    .with_drain_listeners(Box::new(move |request| drain.drain_listeners(request)))
    .with_certificates(Box::new(certificates_json))
}

/// `/certs`: every TLS context's trusted CAs and chain leaves, in Envoy's JSON
/// (`admin.v3.Certificates`).
fn certificates_json() -> serde_json::Value {
    use legate_upstream::tls::{days_until, CertificateFacts, CertificateRegistry, SubjectAltName};
    let now = std::time::SystemTime::now();
    let details = |certs: &[CertificateFacts]| -> Vec<serde_json::Value> {
        certs
            .iter()
            .map(|c| {
                let names: Vec<serde_json::Value> = c
                    .subject_alt_names
                    .iter()
                    .map(|name| match name {
                        SubjectAltName::Dns(dns) => serde_json::json!({"dns": dns}),
                        SubjectAltName::Uri(uri) => serde_json::json!({"uri": uri}),
                        SubjectAltName::IpAddress(ip) => serde_json::json!({"ip_address": ip.to_string()}),
                    })
                    .collect();
                serde_json::json!({
                    "path": c.path,
                    "serial_number": c.serial_number,
                    "subject_alt_names": names,
                    "days_until_expiration": days_until(c.expiration_time, now).to_string(),
                    "valid_from": legate_admin::rfc3339(c.valid_from, None),
                    "expiration_time": legate_admin::rfc3339(c.expiration_time, None),
                })
            })
            .collect()
    };
    let contexts: Vec<serde_json::Value> = CertificateRegistry::global()
        .contexts()
        .iter()
        .map(|c| serde_json::json!({"ca_cert": details(&c.ca_cert), "cert_chain": details(&c.cert_chain)}))
        .collect();
    serde_json::json!({ "certificates": contexts })
}

/// What `POST /drain_listeners` acts on: the drain manager and the listeners (known once the
/// data plane runs).
struct DrainControl {
    drain: Arc<DrainManager>,
    switch: Arc<OnceLock<legate_proxy::ListenerSwitch>>,
}

impl DrainControl {
    /// `POST /drain_listeners`, as Envoy's admin does it: `graceful` starts the drain sequence
    /// (connections close after their responses, gradually over `--drain-time-s`) and stops
    /// the listeners when it ends, unless `skip_exit`; without `graceful` the listeners stop
    /// at once.
    fn drain_listeners(&self, request: legate_admin::DrainRequest) {
        let stop = {
            let switch = self.switch.clone();
            move || {
                if let Some(switch) = switch.get() {
                    switch.stop_listening();
                }
            }
        };
        if !request.graceful {
            stop();
        } else if self.drain.start_draining() && !request.skip_exit {
            let drain_time = self.drain.drain_time();
            std::thread::spawn(move || {
                std::thread::sleep(drain_time);
                stop();
            });
        }
    }
}

/// Presents the cluster manager to the admin API.
struct ClusterView(Arc<ClusterManager>);

impl legate_admin::ClusterSource for ClusterView {
    fn clusters(&self) -> Vec<legate_admin::ClusterSnapshot> {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .clusters()
            .map(|c| legate_admin::ClusterSnapshot {
                name: c.config.name.clone(),
                observability_name: c.config.stat_name().to_string(),
                added_via_api: false,
                hosts: c
                    .hosts()
                    .hosts
                    .iter()
                    .map(|h| legate_admin::HostSnapshot {
                        address: h.address,
                        hostname: h.hostname.clone(),
                        weight: h.weight,
                        priority: h.priority,
                        health_flags: h.health_flags(),
                        cx_total: h.stats.cx_total.load(Relaxed),
                        cx_active: h.stats.cx_active.load(Relaxed),
                        cx_connect_fail: h.stats.cx_connect_fail.load(Relaxed),
                        rq_total: h.stats.rq_total.load(Relaxed),
                        rq_active: h.stats.rq_active.load(Relaxed),
                        rq_success: h.stats.rq_success.load(Relaxed),
                        rq_error: h.stats.rq_error.load(Relaxed),
                        rq_timeout: h.stats.rq_timeout.load(Relaxed),
                        success_rate: h.outlier_success_rates().0,
                        local_origin_success_rate: h.outlier_success_rates().1,
                        ..Default::default()
                    })
                    .collect(),
                circuit_breakers: [
                    thresholds(&c.config.circuit_breakers, c.retry_limit()),
                    thresholds(&c.config.circuit_breakers_high, u64::from(c.config.circuit_breakers_high.max_retries)),
                ],
                outlier: c.outlier_success_rate_numbers().map(|[external, local]| legate_admin::OutlierSnapshot {
                    success_rate_average: external.0,
                    success_rate_ejection_threshold: external.1,
                    local_origin_success_rate_average: local.0,
                    local_origin_success_rate_ejection_threshold: local.1,
                }),
                ..Default::default()
            })
            .collect()
    }
}

/// One priority's thresholds as the admin API shows them, `max_retries` being the current
/// retry limit.
fn thresholds(t: &legate_config::model::CircuitBreakerThresholds, max_retries: u64) -> legate_admin::Thresholds {
    legate_admin::Thresholds {
        max_connections: u64::from(t.max_connections),
        max_pending_requests: u64::from(t.max_pending_requests),
        max_requests: u64::from(t.max_requests),
        max_retries,
    }
}

/// Resolves on SIGTERM, SIGINT or an admin-triggered shutdown.
async fn wait_for_shutdown(state: &legate_admin::AdminState) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = sigterm => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = state.shutdown_requested() => {}
    }
}
