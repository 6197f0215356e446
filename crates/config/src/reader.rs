//! A small path-tracking reader over the JSON value tree.
//!
//! [`Obj`] hands out an object's fields one by one and, when finished, classifies whatever was
//! not taken: a field of the Envoy proto that Legate does not implement is "not supported by
//! legate" (unless it is set to its proto3 default), anything else is an "unknown field".
//! Scalar readers follow protobuf's JSON mapping as Envoy configures it: integers and doubles may
//! be strings, booleans may be `"true"`/`"false"`, enum names are case-insensitive (numbers are
//! accepted too), durations are `"1.5s"` or `{seconds, nanos}`, and `null` means "unset".

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{ConfigError, Result};

/// How a proto field behaves when it was left over (not taken by the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A message field: any value (even `{}`) changes behaviour.
    Msg,
    /// A repeated field: `[]` equals unset.
    Rep,
    /// A map field: `{}` equals unset.
    Map,
    /// A member of a oneof: setting it selects it, so no value equals unset.
    Oneof,
    /// A plain proto3 bool: `false` equals unset.
    Bool,
    /// A plain proto3 number: `0` equals unset.
    Num,
    /// A plain proto3 string or bytes: `""` equals unset.
    Str,
    /// A plain proto3 enum: its zero value (named here) equals unset.
    Enum(&'static str),
}

/// The field list of one proto message.
pub(crate) type Fields = &'static [(&'static str, Kind)];

/// `path.name` (or `name` at the root).
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A short rendering of a value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    let mut s = match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    };
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Error for a missing required field (protoc-gen-validate's wording).
pub(crate) fn required(path: &str) -> ConfigError {
    ConfigError::invalid(path, "value is required")
}

/// Checks protoc-gen-validate's `min_len: 1`.
pub(crate) fn non_empty(s: &str, path: &str) -> Result<()> {
    if s.is_empty() {
        Err(ConfigError::invalid(
            path,
            "value length must be at least 1 characters",
        ))
    } else {
        Ok(())
    }
}

/// Refuses NUL, CR and LF, like Envoy's non-strict header name/value rules.
pub(crate) fn header_chars(s: &str, path: &str) -> Result<()> {
    if s.contains(['\0', '\r', '\n']) {
        Err(ConfigError::invalid(
            path,
            format!("{s:?} contains a NUL, CR or LF character"),
        ))
    } else {
        Ok(())
    }
}

/// A string value.
pub(crate) fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(ConfigError::invalid(
            path,
            format!("expected a string, got {}", describe(other)),
        )),
    }
}

/// A bool value (`true`, `false`, or those words as strings).
pub(crate) fn as_bool(v: &Value, path: &str) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(ConfigError::invalid(
            path,
            format!("expected a bool, got {}", describe(other)),
        )),
    }
}

fn as_integer(v: &Value, path: &str) -> Result<i128> {
    let parsed = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.parse::<i128>().ok().or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                .map(|f| f as i128)
        }),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ConfigError::invalid(path, format!("expected an integer, got {}", describe(v)))
    })
}

fn ranged<T: TryFrom<i128>>(v: &Value, path: &str, type_name: &str) -> Result<T> {
    let n = as_integer(v, path)?;
    T::try_from(n)
        .map_err(|_| ConfigError::invalid(path, format!("value {n} out of range for {type_name}")))
}

/// A `uint32` value.
pub(crate) fn as_u32(v: &Value, path: &str) -> Result<u32> {
    ranged(v, path, "uint32")
}

/// A `uint64` value.
pub(crate) fn as_u64(v: &Value, path: &str) -> Result<u64> {
    ranged(v, path, "uint64")
}

/// An `int64` value.
pub(crate) fn as_i64(v: &Value, path: &str) -> Result<i64> {
    ranged(v, path, "int64")
}

/// A `double` value.
pub(crate) fn as_f64(v: &Value, path: &str) -> Result<f64> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ConfigError::invalid(path, format!("expected a number, got {}", describe(v)))
    })
}

/// Largest duration protobuf allows (10000 years).
const MAX_DURATION_SECS: u64 = 315_576_000_000;

/// Parses protobuf's JSON duration text (`"1s"`, `"0.25s"`, `"-3.000000001s"`).
/// Returns (negative, seconds, nanos).
fn parse_duration_text(s: &str) -> Option<(bool, u64, u32)> {
    let body = s.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = int.parse().ok()?;
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse().ok()?
        }
        Some(_) => return None,
    };
    Some((negative, secs, nanos))
}

/// A non-negative `google.protobuf.Duration`.
pub(crate) fn as_duration(v: &Value, path: &str) -> Result<Duration> {
    let bad = || ConfigError::invalid(path, format!("invalid duration {}", describe(v)));
    let (negative, secs, nanos) = match v {
        Value::String(s) => parse_duration_text(s).ok_or_else(bad)?,
        Value::Object(map) => {
            for key in map.keys() {
                if key != "seconds" && key != "nanos" {
                    return Err(ConfigError::UnknownField {
                        path: join(path, key),
                    });
                }
            }
            let secs = match map.get("seconds").filter(|v| !v.is_null()) {
                Some(s) => as_i64(s, &join(path, "seconds"))?,
                None => 0,
            };
            let nanos = match map.get("nanos").filter(|v| !v.is_null()) {
                Some(n) => ranged::<i32>(n, &join(path, "nanos"), "int32")?,
                None => 0,
            };
            if !(-999_999_999..=999_999_999).contains(&nanos) {
                return Err(bad());
            }
            (
                secs < 0 || nanos < 0,
                secs.unsigned_abs(),
                nanos.unsigned_abs(),
            )
        }
        _ => return Err(bad()),
    };
    if secs > MAX_DURATION_SECS {
        return Err(ConfigError::invalid(
            path,
            format!("duration {} is too large", describe(v)),
        ));
    }
    if negative && (secs > 0 || nanos > 0) {
        return Err(ConfigError::invalid(
            path,
            format!(
                "invalid duration {}: expected a positive duration",
                describe(v)
            ),
        ));
    }
    Ok(Duration::new(secs, nanos))
}

/// An enum value given by name (case-insensitive) or number; returns the canonical name.
pub(crate) fn as_enum(
    v: &Value,
    path: &str,
    table: &[(&'static str, i64)],
) -> Result<&'static str> {
    let found = match v {
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => table.iter().find(|(_, num)| *num == n),
            Err(_) => table.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)),
        },
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| table.iter().find(|(_, num)| *num == n)),
        _ => None,
    };
    found
        .map(|(name, _)| *name)
        .ok_or_else(|| ConfigError::invalid(path, format!("unknown enum value {}", describe(v))))
}

/// A list; `null` elements are refused.
pub(crate) fn as_array<'a>(v: &'a Value, path: &str) -> Result<Vec<(&'a Value, String)>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = index(path, i);
                if item.is_null() {
                    Err(ConfigError::invalid(p, "null is not allowed in a list"))
                } else {
                    Ok((item, p))
                }
            })
            .collect(),
        other => Err(ConfigError::invalid(
            path,
            format!("expected a list, got {}", describe(other)),
        )),
    }
}

/// Whether a left-over value equals the proto3 default of a field of this kind.
fn is_default(kind: Kind, v: &Value) -> bool {
    match (kind, v) {
        (_, Value::Null) => true,
        (Kind::Rep, Value::Array(a)) => a.is_empty(),
        (Kind::Map, Value::Object(m)) => m.is_empty(),
        (Kind::Bool, v) => matches!(v, Value::Bool(false)) || v.as_str() == Some("false"),
        (Kind::Num, Value::Number(n)) => n.as_f64() == Some(0.0),
        (Kind::Num, Value::String(s)) => s.parse::<f64>().ok() == Some(0.0),
        (Kind::Str, Value::String(s)) => s.is_empty(),
        (Kind::Enum(zero), Value::String(s)) => s.eq_ignore_ascii_case(zero) || s == "0",
        (Kind::Enum(_), Value::Number(n)) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// An object being read field by field.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    fields: Fields,
    taken: Vec<&'a str>,
}

impl<'a> Obj<'a> {
    /// Starts reading `v`, which must be an object of the message described by `fields`.
    pub(crate) fn new(v: &'a Value, path: impl Into<String>, fields: Fields) -> Result<Self> {
        let path = path.into();
        match v {
            Value::Object(map) => Ok(Obj {
                map,
                path,
                fields,
                taken: Vec::new(),
            }),
            other => Err(ConfigError::invalid(
                path,
                format!("expected an object, got {}", describe(other)),
            )),
        }
    }

    /// Starts reading an `Any` (`typed_config`): returns the reader and the `@type` URL.
    pub(crate) fn any(
        v: &'a Value,
        path: impl Into<String>,
        fields: Fields,
    ) -> Result<(Self, &'a str)> {
        let mut o = Obj::new(v, path, fields)?;
        o.taken.push("@type");
        let url = match o.map.get("@type") {
            Some(t) => as_str(t, &o.at("@type"))?,
            None => {
                return Err(ConfigError::invalid(
                    o.path.clone(),
                    "Any JSON doesn't have '@type'",
                ))
            }
        };
        Ok((o, url))
    }

    /// This object's path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Path of a field of this object.
    pub(crate) fn at(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// Whether `name` is present with a non-null value (does not take it).
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }

    /// Takes a field: its value unless absent or `null`.
    pub(crate) fn take(&mut self, name: &'static str) -> Option<&'a Value> {
        debug_assert!(
            self.fields.iter().any(|(n, _)| *n == name),
            "{name} not in proto field list"
        );
        self.taken.push(name);
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Takes a string field.
    pub(crate) fn str(&mut self, name: &'static str) -> Result<Option<String>> {
        self.take(name)
            .map(|v| as_str(v, &self.at(name)).map(str::to_string))
            .transpose()
    }

    /// Takes a string field, `""` when unset.
    pub(crate) fn string(&mut self, name: &'static str) -> Result<String> {
        Ok(self.str(name)?.unwrap_or_default())
    }

    /// Takes a bool (or `BoolValue`) field.
    pub(crate) fn bool(&mut self, name: &'static str) -> Result<Option<bool>> {
        self.take(name)
            .map(|v| as_bool(v, &self.at(name)))
            .transpose()
    }

    /// Takes a `uint32` (or `UInt32Value`) field.
    pub(crate) fn u32(&mut self, name: &'static str) -> Result<Option<u32>> {
        self.take(name)
            .map(|v| as_u32(v, &self.at(name)))
            .transpose()
    }

    /// Takes a `uint64` (or `UInt64Value`) field.
    pub(crate) fn u64(&mut self, name: &'static str) -> Result<Option<u64>> {
        self.take(name)
            .map(|v| as_u64(v, &self.at(name)))
            .transpose()
    }

    /// Takes an `int64` field.
    pub(crate) fn i64(&mut self, name: &'static str) -> Result<Option<i64>> {
        self.take(name)
            .map(|v| as_i64(v, &self.at(name)))
            .transpose()
    }

    /// Takes a `double` field.
    pub(crate) fn f64(&mut self, name: &'static str) -> Result<Option<f64>> {
        self.take(name)
            .map(|v| as_f64(v, &self.at(name)))
            .transpose()
    }

    /// Takes a `Duration` field.
    pub(crate) fn duration(&mut self, name: &'static str) -> Result<Option<Duration>> {
        self.take(name)
            .map(|v| as_duration(v, &self.at(name)))
            .transpose()
    }

    /// Takes a `Duration` field where 0 means "disabled": unset gives `default`.
    pub(crate) fn timeout(
        &mut self,
        name: &'static str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>> {
        Ok(match self.duration(name)? {
            None => default,
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        })
    }

    /// Takes an enum field; returns its canonical name.
    pub(crate) fn enumeration(
        &mut self,
        name: &'static str,
        table: &[(&'static str, i64)],
    ) -> Result<Option<&'static str>> {
        self.take(name)
            .map(|v| as_enum(v, &self.at(name), table))
            .transpose()
    }

    /// Takes a message field.
    pub(crate) fn obj(&mut self, name: &'static str, fields: Fields) -> Result<Option<Obj<'a>>> {
        let path = self.at(name);
        self.take(name)
            .map(|v| Obj::new(v, path, fields))
            .transpose()
    }

    /// Takes a repeated field (empty when unset).
    pub(crate) fn array(&mut self, name: &'static str) -> Result<Vec<(&'a Value, String)>> {
        let path = self.at(name);
        Ok(match self.take(name) {
            Some(v) => as_array(v, &path)?,
            None => Vec::new(),
        })
    }

    /// Takes a repeated string field: (value, path) pairs.
    pub(crate) fn strings(&mut self, name: &'static str) -> Result<Vec<(String, String)>> {
        self.array(name)?
            .into_iter()
            .map(|(v, p)| as_str(v, &p).map(|s| (s.to_string(), p)))
            .collect()
    }

    /// Which member of a oneof is set (`None` if none); refuses two members at once.
    pub(crate) fn oneof(&self, names: &[&'static str]) -> Result<Option<&'static str>> {
        let mut set = names.iter().filter(|n| self.is_set(n));
        let first = set.next().copied();
        if let Some(second) = set.next() {
            return Err(ConfigError::invalid(
                self.at(second),
                format!(
                    "only one of {} may be set (also set: {})",
                    names.join(", "),
                    first.unwrap_or_default()
                ),
            ));
        }
        Ok(first)
    }

    /// Ends reading: refuses any field not taken, as unknown or as not supported.
    pub(crate) fn finish(self) -> Result<()> {
        for (key, value) in self.map {
            if self.taken.contains(&key.as_str()) {
                continue;
            }
            let path = join(&self.path, key);
            match self.fields.iter().find(|(n, _)| *n == key) {
                None => return Err(ConfigError::UnknownField { path }),
                Some((_, kind)) if !is_default(*kind, value) => {
                    return Err(ConfigError::unsupported(path))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const F: Fields = &[
        ("a", Kind::Str),
        ("b", Kind::Msg),
        ("c", Kind::Enum("AUTO")),
        ("d", Kind::Rep),
    ];

    #[test]
    fn durations() {
        let d = |v: Value| as_duration(&v, "x");
        assert_eq!(d(json!("0.25s")).unwrap(), Duration::from_millis(250));
        assert_eq!(d(json!("5s")).unwrap(), Duration::from_secs(5));
        assert_eq!(d(json!("1.000000001s")).unwrap(), Duration::new(1, 1));
        assert_eq!(
            d(json!({"seconds": 2, "nanos": 5})).unwrap(),
            Duration::new(2, 5)
        );
        assert_eq!(d(json!("0s")).unwrap(), Duration::ZERO);
        assert_eq!(
            d(json!("abc")).unwrap_err().to_string(),
            "x: invalid duration \"abc\""
        );
        assert!(d(json!("1ms")).is_err());
        assert!(d(json!("1.0000000001s")).is_err());
        assert!(d(json!(5)).is_err());
        assert!(d(json!("-1s"))
            .unwrap_err()
            .to_string()
            .contains("positive"));
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(as_u32(&json!("5000"), "p").unwrap(), 5000);
        assert_eq!(as_u32(&json!(5000.0), "p").unwrap(), 5000);
        assert!(as_u32(&json!(5000.5), "p").is_err());
        assert_eq!(
            as_u32(&json!(-1), "p").unwrap_err().to_string(),
            "p: value -1 out of range for uint32"
        );
        assert!(as_bool(&json!("true"), "b").unwrap());
        assert!(as_bool(&json!(1), "b").is_err());
        assert_eq!(
            as_str(&json!(123), "n").unwrap_err().to_string(),
            "n: expected a string, got 123"
        );
        assert_eq!(as_f64(&json!("50"), "f").unwrap(), 50.0);
    }

    #[test]
    fn enums() {
        let t = &[("AUTO", 0), ("HTTP1", 1)];
        assert_eq!(as_enum(&json!("http1"), "e", t).unwrap(), "HTTP1");
        assert_eq!(as_enum(&json!(1), "e", t).unwrap(), "HTTP1");
        assert_eq!(as_enum(&json!("1"), "e", t).unwrap(), "HTTP1");
        assert_eq!(
            as_enum(&json!("FOO"), "e", t).unwrap_err().to_string(),
            "e: unknown enum value \"FOO\""
        );
    }

    #[test]
    fn leftovers_are_classified() {
        let v = json!({"a": "x", "b": {}});
        let mut o = Obj::new(&v, "root", F).unwrap();
        o.str("a").unwrap();
        assert_eq!(
            o.finish().unwrap_err().to_string(),
            "root.b: not supported by legate"
        );

        let v = json!({"zz": 1});
        let o = Obj::new(&v, "root", F).unwrap();
        assert_eq!(
            o.finish().unwrap_err().to_string(),
            "root.zz: unknown field"
        );

        let v = json!({"a": "", "b": null, "c": "auto", "d": []});
        Obj::new(&v, "root", F).unwrap().finish().unwrap();
    }

    #[test]
    fn oneof_conflicts() {
        let v = json!({"a": "x", "b": {}});
        let o = Obj::new(&v, "r", F).unwrap();
        let err = o.oneof(&["a", "b"]).unwrap_err().to_string();
        assert!(err.starts_with("r.b: only one of a, b may be set"), "{err}");
    }
}
