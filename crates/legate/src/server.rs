//! Process wiring: the main thread runs admin and discovery on a single-threaded runtime; worker
//! threads run the data plane.

pub mod logging;
mod server_stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use legate_config::LoadedConfig;
use legate_stats::Store;
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
    let state = crate::server::admin_state(cli, &bootstrap, raw, &store, &clusters, concurrency);
    if let Some(listener) = admin {
        tokio::spawn(legate_admin::serve(listener, state.clone()));
    }

    clusters.start();
    clusters.wait_initialized().await;
    let data_plane = legate_proxy::DataPlane::start(&bootstrap, &clusters, &store, concurrency)?;
    state.set_listeners(data_plane.listener_addresses());
    state.set_live();
    server_stats.set_live();
    if cli.mode == Mode::InitOnly {
        data_plane.shutdown();
        return Ok(());
    }
    tracing::info!("all listeners started; {} worker(s)", concurrency);

    let ticker = tokio::spawn(server_stats.run(Duration::from_secs(1)));
    wait_for_shutdown(&state).await;
    ticker.abort();
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
) -> Arc<legate_admin::AdminState> {
    let _ = (cli, bootstrap, raw, store, clusters, concurrency);
    unimplemented!("wired once the admin crate lands")
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
