//! Turning configuration text (YAML or JSON) into a JSON value tree.

use serde_json::Value;

use crate::error::{ConfigError, Result};

/// Text format of a configuration source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON only (`.json` files).
    Json,
    /// YAML only (`.yaml` / `.yml` files).
    Yaml,
    /// JSON if it parses as JSON, YAML otherwise.
    Auto,
}

impl Format {
    /// The format Envoy would use for a file with this name.
    pub(crate) fn for_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("yaml") | Some("yml") => Format::Yaml,
            _ => Format::Auto,
        }
    }
}

fn json(text: &str, origin: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        let mut message = e.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        ConfigError::Syntax {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

fn yaml(text: &str, origin: &str) -> Result<Value> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        let location = e.location();
        let inner = e.without_snippet().to_string();
        let mut message = inner.lines().next().unwrap_or_default().to_string();
        // The location is reported separately.
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        ConfigError::Syntax {
            origin: origin.to_string(),
            line: location.map(|l| l.line() as usize).unwrap_or(0),
            column: location.map(|l| l.column() as usize).unwrap_or(0),
            message,
        }
    })
}

/// Parses configuration text. An empty document is refused like Envoy does.
pub(crate) fn parse_text(text: &str, origin: &str, format: Format) -> Result<Value> {
    let value = match format {
        Format::Json => json(text, origin)?,
        Format::Yaml => yaml(text, origin)?,
        Format::Auto => match json(text, origin) {
            Ok(v) => v,
            Err(_) => yaml(text, origin)?,
        },
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Err(ConfigError::invalid(
            origin,
            "Unable to convert YAML as JSON: empty document",
        )),
        other => Err(ConfigError::invalid(
            origin,
            format!(
                "expected a mapping at the top level, got {}",
                crate::reader::describe(&other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json() {
        let v = parse_text("a: {b: 1}\nc: [x, 'y']\n", "f", Format::Auto).unwrap();
        assert_eq!(v, serde_json::json!({"a": {"b": 1}, "c": ["x", "y"]}));
        let v = parse_text("{\"a\": 1}", "f", Format::Json).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn anchors_are_resolved() {
        let v = parse_text("x: &t {a: 1}\ny: *t\n", "f", Format::Yaml).unwrap();
        assert_eq!(v["y"], serde_json::json!({"a": 1}));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse_text("a:\n  b: [1, 2\nc: 3\n", "envoy.yaml", Format::Yaml).unwrap_err();
        let ConfigError::Syntax { line, column, .. } = &err else {
            panic!("{err}")
        };
        assert!(*line > 0 && *column > 0, "{err}");
        assert!(err.to_string().starts_with("envoy.yaml: line "), "{err}");
        let err = parse_text("{\"a\": }", "x.json", Format::Json).unwrap_err();
        assert!(
            err.to_string().starts_with("x.json: line 1 column 7"),
            "{err}"
        );
    }

    #[test]
    fn empty_documents_are_refused() {
        assert!(parse_text("", "f", Format::Auto).is_err());
        assert!(parse_text("# only a comment\n", "f", Format::Yaml).is_err());
    }
}
