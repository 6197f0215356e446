//! JSON the way Envoy's admin prints protos: pretty with a one-space indent, doubles without a
//! fractional part printed as integers.

use serde::Serialize;
use serde_json::Value;

/// A double as proto3 JSON prints it (`1` rather than `1.0`).
pub fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// Pretty-prints with Envoy's one-space indent and a final newline.
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b" "),
    );
    if v.serialize(&mut ser).is_err() {
        return "{}\n".into();
    }
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}
