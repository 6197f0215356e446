//! The error type of the configuration loader.

/// Why a configuration was refused. Every variant's `Display` is `<path>: <message>`, where the
/// path is a file name, `--config-yaml`, or a field path such as
/// `static_resources.clusters[1].outlier_detection`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither a configuration file nor inline YAML was given.
    #[error(
        "At least one of --config-path or --config-yaml or Options::configProto() should be non-empty"
    )]
    NoConfig,
    /// The configuration file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file name.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML or JSON text is malformed.
    #[error("{origin}: line {line} column {column}: {message}")]
    Syntax {
        /// The file name or `--config-yaml`.
        origin: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A field (or value) Envoy accepts but Legate does not implement.
    #[error("{path}: {what}")]
    NotSupported {
        /// Field path.
        path: String,
        /// Text ending in "not supported by legate".
        what: String,
    },
    /// A field that does not exist in Envoy's v3 API for this message.
    #[error("{path}: unknown field")]
    UnknownField {
        /// Field path.
        path: String,
    },
    /// A value Envoy would refuse too (wrong type, out of range, inconsistent...).
    #[error("{path}: {message}")]
    Invalid {
        /// Field path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The path the error is about (file, `--config-yaml` or field path); empty for `NoConfig`.
    pub fn path(&self) -> &str {
        match self {
            ConfigError::NoConfig => "",
            ConfigError::Io { path, .. }
            | ConfigError::NotSupported { path, .. }
            | ConfigError::UnknownField { path }
            | ConfigError::Invalid { path, .. } => path,
            ConfigError::Syntax { origin, .. } => origin,
        }
    }

    /// `path: not supported by legate`.
    pub(crate) fn unsupported(path: impl Into<String>) -> Self {
        ConfigError::NotSupported {
            path: path.into(),
            what: "not supported by legate".into(),
        }
    }

    /// `path: <what> is not supported by legate`.
    pub(crate) fn unsupported_value(path: impl Into<String>, what: impl std::fmt::Display) -> Self {
        ConfigError::NotSupported {
            path: path.into(),
            what: format!("{what} is not supported by legate"),
        }
    }

    /// `path: message`.
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub(crate) type Result<T> = std::result::Result<T, ConfigError>;
