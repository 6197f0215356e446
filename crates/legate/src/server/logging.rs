//! Logging: tracing with levels that `/logging` can change at run time.
//!
//! Envoy has one logger per component; Legate maps the loggers that name one of its crates onto
//! that crate's tracing target and keeps a global level for everything else.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::{layer::SubscriberExt, reload, util::SubscriberInitExt, EnvFilter, Registry};

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The global level and the per-target overrides currently in force.
static LEVELS: Mutex<Option<Levels>> = Mutex::new(None);

struct Levels {
    global: &'static str,
    targets: BTreeMap<&'static str, &'static str>,
}

impl Levels {
    fn directive(&self) -> String {
        let mut out = self.global.to_string();
        for (target, level) in &self.targets {
            out.push_str(&format!(",{target}={level}"));
        }
        out
    }
}

/// Installs the global subscriber at `level` (a tracing directive).
pub fn install(level: &'static str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    if tracing_subscriber::registry().with(layer).with(fmt).try_init().is_ok() {
        let _ = HANDLE.set(handle);
        *LEVELS.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Levels { global: level, targets: BTreeMap::new() });
    }
}

/// The tracing target an Envoy logger name stands for, when Legate has one.
fn target_of(logger: &str) -> Option<&'static str> {
    Some(match logger {
        "admin" => "legate_admin",
        "config" => "legate_config",
        "upstream" | "pool" | "hc" | "health_checker" => "legate_upstream",
        "dns" => "legate_upstream::dns",
        "http" | "http2" | "router" | "connection" | "conn_handler" => "legate_proxy",
        "main" => "legate",
        _ => return None,
    })
}

/// Maps an Envoy level name onto a tracing level.
fn directive_of(level: &str) -> Option<&'static str> {
    Some(match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" => "warn",
        "error" | "critical" => "error",
        "off" => "off",
        _ => return None,
    })
}

/// Applies a `/logging` change: every logger (`None`) or one Envoy logger.
pub fn set_level(logger: Option<&str>, level: &str) {
    let Some(directive) = directive_of(level) else { return };
    let mut guard = LEVELS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(levels) = guard.as_mut() else { return };
    match logger {
        None => {
            levels.global = directive;
            levels.targets.clear();
        }
        Some(name) => match target_of(name) {
            Some(target) => {
                levels.targets.insert(target, directive);
            }
            None => return,
        },
    }
    if let (Some(handle), Ok(filter)) = (HANDLE.get(), EnvFilter::try_new(levels.directive())) {
        let _ = handle.reload(filter);
    }
}
