//! Envoy-compatible command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Version string in Envoy's shape: `<build>/<version>/<status>/<type>/<tls>`.
pub const VERSION_LINE: &str = concat!("legate/", env!("CARGO_PKG_VERSION"), "/Clean/RELEASE/rustls");

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Load the config and serve (default).
    Serve,
    /// Validate the config and exit.
    Validate,
    /// Initialise everything (bind listeners, resolve DNS) and exit.
    #[value(name = "init_only")]
    InitOnly,
}

/// `--drain-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrainStrategyArg {
    /// Connections close with a probability growing over the drain time.
    Gradual,
    /// Every connection closes as soon as draining starts.
    Immediate,
}

/// Log levels Envoy accepts for `-l`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info
    Info,
    /// warning
    #[value(alias = "warn")]
    Warning,
    /// error
    Error,
    /// critical (mapped to error)
    Critical,
    /// off
    Off,
}

impl LogLevel {
    /// The tracing filter directive of the level.
    pub fn directive(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warn",
            Self::Error | Self::Critical => "error",
            Self::Off => "off",
        }
    }

    /// Envoy's name of the level, as `/logging` and `/server_info` show it.
    pub fn envoy_name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
            Self::Off => "off",
        }
    }
}

/// Legate: an Envoy-compatible L7 proxy. Takes Envoy's flags and Envoy v3 bootstrap configs.
#[derive(Debug, Parser)]
#[command(name = "legate", about, long_about = None)]
pub struct Cli {
    /// Optional subcommand; without one Legate runs the given config like Envoy.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Path to the Envoy v3 bootstrap (YAML or JSON).
    #[arg(short = 'c', long = "config-path")]
    pub config_path: Option<PathBuf>,
    /// Bootstrap YAML merged over the file (protobuf merge semantics).
    #[arg(long = "config-yaml")]
    pub config_yaml: Option<String>,
    /// serve | validate | init_only.
    #[arg(long, value_enum, default_value = "serve")]
    pub mode: Mode,
    /// Number of worker threads (default: number of cores).
    #[arg(long, global = true)]
    pub concurrency: Option<usize>,
    /// Log level.
    #[arg(short = 'l', long = "log-level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,
    /// Node id (overrides `node.id`).
    #[arg(long = "service-node")]
    pub service_node: Option<String>,
    /// Node cluster (overrides `node.cluster`).
    #[arg(long = "service-cluster")]
    pub service_cluster: Option<String>,
    /// Hot-restart base id; Legate has no shared-memory hot restart, so the id is only checked.
    #[arg(long = "base-id")]
    pub base_id: Option<u32>,
    /// Accepted for Envoy compatibility: Legate has no shared-memory region to collide on.
    #[arg(long = "use-dynamic-base-id")]
    pub use_dynamic_base_id: bool,
    /// Accepted for Envoy compatibility: Legate has no hot-restart shared memory to disable.
    #[arg(long = "disable-hot-restart")]
    pub disable_hot_restart: bool,
    /// Longest time access log lines stay buffered, in milliseconds (Envoy's default 10000;
    /// Legate also flushes whenever a log's queue runs dry).
    #[arg(long = "file-flush-interval-msec", default_value_t = 10_000)]
    pub file_flush_interval_msec: u32,
    /// How long a drain sequence (`POST /drain_listeners?graceful`) lasts before the listeners
    /// stop, in seconds (Envoy's default 600).
    #[arg(long = "drain-time-s", default_value_t = 600)]
    pub drain_time_s: u64,
    /// gradual (more and more connections close over the drain time) or immediate.
    #[arg(long = "drain-strategy", value_enum, default_value = "gradual")]
    pub drain_strategy: DrainStrategyArg,
    /// Print the version in Envoy's format and exit.
    #[arg(long)]
    pub version: bool,
}

/// Subcommands beyond Envoy's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the seed's front-proxy system on loopback: proxy on 8080 (admin 9901) in front of
    /// in-process film-service (5000) and rating-service (6000).
    Demo,
}
