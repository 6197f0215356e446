//! Logging: tracing with a level that /logging can change at run time.

use std::sync::OnceLock;

use tracing_subscriber::{layer::SubscriberExt, reload, util::SubscriberInitExt, EnvFilter, Registry};

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber at `level` (a tracing directive).
pub fn install(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    if tracing_subscriber::registry().with(layer).with(fmt).try_init().is_ok() {
        let _ = HANDLE.set(handle);
    }
}

/// Changes the global level; returns false for an unknown level.
pub fn set_level(level: &str) -> bool {
    let directive = match level {
        "trace" | "debug" | "info" | "error" | "off" => level,
        "warning" | "warn" => "warn",
        "critical" => "error",
        _ => return false,
    };
    match (HANDLE.get(), EnvFilter::try_new(directive)) {
        (Some(h), Ok(f)) => h.reload(f).is_ok(),
        _ => false,
    }
}
