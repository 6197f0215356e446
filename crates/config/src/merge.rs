//! Key normalisation (proto3-JSON camelCase to snake_case) and protobuf `MergeFrom`-style
//! merging of `--config-yaml` over the file.

use serde_json::{Map, Value};

/// Fields whose values are free-form `Struct`s or maps keyed by user data: their keys are left
/// alone.
const OPAQUE: &[&str] = &[
    "filter_metadata",
    "typed_filter_metadata",
    "static_layer",
    "metadata",
];

/// `connectTimeout` → `connect_timeout`; other keys unchanged.
fn snake_case(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first = chars.next()?;
    let camel = first.is_ascii_lowercase()
        && key.chars().all(|c| c.is_ascii_alphanumeric())
        && key.chars().any(|c| c.is_ascii_uppercase());
    if !camel {
        return None;
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Rewrites every camelCase object key to snake_case, recursively (not inside opaque fields).
pub(crate) fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let key = snake_case(&key).unwrap_or(key);
                let v = if OPAQUE.contains(&key.as_str()) {
                    v
                } else {
                    normalize(v)
                };
                out.insert(key, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// Merges `overlay` into `base` like protobuf `MergeFrom`: objects merge recursively, lists
/// concatenate, scalars replace, `null` (unset) changes nothing.
pub(crate) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (key, v) in o {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(&key) {
                    Some(existing) if !existing.is_null() => merge(existing, v),
                    _ => {
                        b.insert(key, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => b.extend(o),
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn camel_case_keys_become_snake_case() {
        let v = normalize(json!({
            "staticResources": {"clusters": [{"connectTimeout": "1s", "http2ProtocolOptions": {}}]},
            "@type": "x",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {}},
            "metadata": {"filter_metadata": {"myKey": 1}},
        }));
        assert_eq!(
            v,
            json!({
                "static_resources": {"clusters": [{"connect_timeout": "1s", "http2_protocol_options": {}}]},
                "@type": "x",
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {}},
                "metadata": {"filter_metadata": {"myKey": 1}},
            })
        );
    }

    #[test]
    fn merge_semantics() {
        let mut base = json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
            "static_resources": {"clusters": [{"name": "a"}]},
            "node": {"id": "x"},
        });
        merge(
            &mut base,
            json!({
                "admin": {"address": {"socket_address": {"port_value": 9902}}},
                "static_resources": {"clusters": [{"name": "b"}]},
                "node": {"id": "y", "cluster": null},
            }),
        );
        assert_eq!(
            base,
            json!({
                "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9902}}},
                "static_resources": {"clusters": [{"name": "a"}, {"name": "b"}]},
                "node": {"id": "y"},
            })
        );
    }
}
