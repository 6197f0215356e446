//! Envoy v3 bootstrap loading for Legate.
//!
//! [`load`] reads `-c` / `--config-yaml` like Envoy does (YAML or JSON, proto3-JSON camelCase
//! keys accepted, `--config-yaml` merged over the file with protobuf `MergeFrom` semantics) and
//! converts the result into [`model::Bootstrap`]. Anything Legate cannot honour is refused with a
//! [`ConfigError`] naming the field path: fields Envoy knows but Legate does not implement are
//! "not supported by legate", fields Envoy does not know are "unknown field", and invalid values
//! get Envoy's own wording where practical.

#![warn(missing_docs)]

pub mod access_log;
pub mod model;

mod access_log_config;
mod action;
mod address;
mod bootstrap;
mod cluster;
mod endpoint;
mod error;
mod hcm;
mod health;
mod headers;
mod known_types;
mod listener;
mod matcher;
mod merge;
mod operator;
mod outlier;
mod proto;
mod reader;
mod route;
mod source;
pub mod retry;
mod tcp_proxy;
pub mod tls;
mod upstream;

use std::path::Path;

use serde_json::{Map, Value};

pub use error::ConfigError;
pub use hcm::DEFAULT_SERVER_NAME;

use source::{parse_text, Format};

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The internal model every other crate consumes.
    pub bootstrap: model::Bootstrap,
    /// The merged configuration as JSON with snake_case keys, for `/config_dump`.
    pub raw: Value,
}

/// Loads the configuration from a file (`-c`), inline YAML (`--config-yaml`), or both (the YAML
/// is merged over the file). Empty arguments count as absent, like Envoy.
pub fn load(
    config_path: Option<&Path>,
    config_yaml: Option<&str>,
) -> Result<LoadedConfig, ConfigError> {
    let path = config_path.filter(|p| !p.as_os_str().is_empty());
    let yaml = config_yaml.filter(|y| !y.trim().is_empty());
    if path.is_none() && yaml.is_none() {
        return Err(ConfigError::NoConfig);
    }
    let mut merged = match path {
        Some(p) => {
            let name = p.display().to_string();
            if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pb" | "pb_text")
            ) {
                return Err(ConfigError::unsupported_value(
                    name,
                    "a protobuf binary or text configuration file",
                ));
            }
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
                path: name.clone(),
                source,
            })?;
            merge::normalize(parse_text(&text, &name, Format::for_path(p))?)
        }
        None => Value::Object(Map::new()),
    };
    if let Some(y) = yaml {
        merge::merge(
            &mut merged,
            merge::normalize(parse_text(y, "--config-yaml", Format::Auto)?),
        );
    }
    convert(merged)
}

/// Parses one configuration text (YAML or JSON) as a bootstrap.
pub fn parse_str(text: &str) -> Result<LoadedConfig, ConfigError> {
    convert(merge::normalize(parse_text(text, "config", Format::Auto)?))
}

fn convert(raw: Value) -> Result<LoadedConfig, ConfigError> {
    Ok(LoadedConfig {
        bootstrap: bootstrap::bootstrap(&raw)?,
        raw,
    })
}

#[cfg(test)]
mod tests;
