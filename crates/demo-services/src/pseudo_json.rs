//! Parsing request bodies that are JSON or the seed's single-quoted pseudo-JSON
//! (`{'name': 'Anand', 'language': 'English'}`).

use serde_json::{Map, Value};

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `body` as a JSON object, accepting single-quoted strings as the seed's curl commands send.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError("body is not UTF-8".into()))?;
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_json::from_str(&requote(text)?).map_err(|e| BodyError(format!("malformed JSON body: {e}")))?,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(BodyError("body must be a JSON object".into())),
    }
}

/// Rewrites single-quoted strings as double-quoted JSON strings.
fn requote(text: &str) -> Result<String, BodyError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                out.push('"');
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some('"') => out.push_str("\\\""),
                        Some('\\') => {
                            out.push('\\');
                            match chars.next() {
                                Some('\'') => {
                                    out.pop();
                                    out.push('\'');
                                }
                                Some(n) => out.push(n),
                                None => return Err(BodyError("unterminated string".into())),
                            }
                        }
                        Some(n) => out.push(n),
                        None => return Err(BodyError("unterminated string".into())),
                    }
                }
                out.push('"');
            }
            '"' => {
                out.push('"');
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            out.push('\\');
                            out.extend(chars.next());
                        }
                        Some(n) => out.push(n),
                        None => return Err(BodyError("unterminated string".into())),
                    }
                }
                out.push('"');
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A required string field of `obj`.
pub fn required_str(obj: &Map<String, Value>, field: &str) -> Result<String, BodyError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(BodyError(format!("field '{field}' must be a non-empty string"))),
        None => Err(BodyError(format!("missing field '{field}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_single_quoted_body() {
        let obj = parse_object(b"{\n    'name': 'Anand',\n    'language': 'English'\n  }").unwrap();
        assert_eq!(obj["name"], "Anand");
        assert_eq!(obj["language"], "English");
    }

    #[test]
    fn accepts_json_and_quotes_inside_strings() {
        assert_eq!(parse_object(br#"{"name": "It's"}"#).unwrap()["name"], "It's");
        assert_eq!(parse_object(br#"{'name': 'say "hi"'}"#).unwrap()["name"], "say \"hi\"");
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert!(parse_object(b"{'name': 'x'").is_err());
        assert!(parse_object(b"[1,2]").is_err());
        assert!(parse_object(b"\xff").is_err());
        assert!(parse_object(b"{'name: 1}").is_err());
    }

    #[test]
    fn required_fields_are_checked() {
        let obj = parse_object(b"{'name': ''}").unwrap();
        assert!(required_str(&obj, "name").is_err());
        assert!(required_str(&obj, "language").is_err());
    }
}
