//! `HeaderValueOption`, header removal lists and header value substitution formats.

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::{
    AppendAction, FormatPart, HeaderMutations, HeaderValueFormat, HeaderValueOption,
};
use crate::proto;
use crate::reader::{header_chars, non_empty, required, Obj};

/// `header_append_action` values.
const APPEND_ACTIONS: &[(&str, i64)] = &[
    ("APPEND_IF_EXISTS_OR_ADD", 0),
    ("ADD_IF_ABSENT", 1),
    ("OVERWRITE_IF_EXISTS_OR_ADD", 2),
    ("OVERWRITE_IF_EXISTS", 3),
];

/// Envoy refuses to add or remove `:`-pseudo headers and `host` through header lists.
fn modifiable(name: &str) -> bool {
    !name.starts_with(':') && !name.eq_ignore_ascii_case("host")
}

/// Parses a header value with Envoy substitution commands (`%DOWNSTREAM_REMOTE_ADDRESS%`,
/// `%REQ(x-foo)%`, `%%`...).
pub(crate) fn format(text: &str, path: &str) -> Result<HeaderValueFormat> {
    let bad = |pos: usize| {
        ConfigError::invalid(
            path,
            format!(
                "Incorrect configuration: {text}. Couldn't find valid command at position {pos}"
            ),
        )
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or('\0');
        if c != '%' {
            literal.push(c);
            i += c.len_utf8();
            continue;
        }
        if rest[1..].starts_with('%') {
            literal.push('%');
            i += 2;
            continue;
        }
        // %NAME%, %NAME(arg)%, %NAME(arg):len%
        let found = crate::operator::operator(&rest[1..]).ok_or_else(|| bad(i))?;
        let (name, arg, max_len) = (found.name, found.arg, found.max_len.is_some());
        let token = &rest[..1 + found.len];
        let part = match (name, arg, max_len) {
            (_, _, true) => None,
            ("DOWNSTREAM_REMOTE_ADDRESS", None, _) => Some(FormatPart::DownstreamRemoteAddress),
            ("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", None, _) => {
                Some(FormatPart::DownstreamRemoteAddressWithoutPort)
            }
            ("DOWNSTREAM_LOCAL_ADDRESS", None, _) => Some(FormatPart::DownstreamLocalAddress),
            ("DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", None, _) => {
                Some(FormatPart::DownstreamLocalAddressWithoutPort)
            }
            ("DOWNSTREAM_LOCAL_PORT", None, _) => Some(FormatPart::DownstreamLocalPort),
            ("HOSTNAME", None, _) => Some(FormatPart::Hostname),
            ("PROTOCOL", None, _) => Some(FormatPart::Protocol),
            ("UPSTREAM_REMOTE_ADDRESS", None, _) => Some(FormatPart::UpstreamRemoteAddress),
            ("REQ", Some(h), _) if !h.is_empty() && !h.contains('?') => {
                Some(FormatPart::RequestHeader(h.to_ascii_lowercase()))
            }
            _ => None,
        };
        let Some(part) = part else {
            return Err(ConfigError::NotSupported {
                path: path.to_string(),
                what: format!("unsupported substitution {token} (not supported by legate)"),
            });
        };
        if !literal.is_empty() {
            parts.push(FormatPart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
        i += token.len();
    }
    if !literal.is_empty() {
        parts.push(FormatPart::Literal(literal));
    }
    Ok(HeaderValueFormat { parts })
}

/// Reads a `HeaderValueOption`.
pub(crate) fn header_value_option(v: &Value, path: &str) -> Result<HeaderValueOption> {
    let mut o = Obj::new(v, path, proto::HEADER_VALUE_OPTION)?;
    let header_path = o.at("header");
    let mut h = o
        .obj("header", proto::HEADER_VALUE)?
        .ok_or_else(|| required(&header_path))?;
    let key_path = h.at("key");
    let key = h.string("key")?;
    non_empty(&key, &key_path)?;
    header_chars(&key, &key_path)?;
    if !modifiable(&key) {
        return Err(ConfigError::invalid(
            key_path,
            ":-prefixed or host headers may not be modified",
        ));
    }
    let value_path = h.at("value");
    let value = h.string("value")?;
    header_chars(&value, &value_path)?;
    let value = format(&value, &value_path)?;
    h.finish()?;

    let append_path = o.at("append");
    let append = o.bool("append")?;
    let action = match o
        .enumeration("append_action", APPEND_ACTIONS)?
        .unwrap_or("APPEND_IF_EXISTS_OR_ADD")
    {
        "ADD_IF_ABSENT" => AppendAction::AddIfAbsent,
        "OVERWRITE_IF_EXISTS_OR_ADD" => AppendAction::OverwriteIfExistsOrAdd,
        "OVERWRITE_IF_EXISTS" => AppendAction::OverwriteIfExists,
        _ => AppendAction::AppendIfExistsOrAdd,
    };
    let append_action = match append {
        None => action,
        Some(_) if action != AppendAction::AppendIfExistsOrAdd => {
            return Err(ConfigError::invalid(
                append_path,
                "Both append and append_action are set and it's not allowed",
            ));
        }
        Some(true) => AppendAction::AppendIfExistsOrAdd,
        Some(false) => AppendAction::OverwriteIfExistsOrAdd,
    };
    let keep_empty_value = o.bool("keep_empty_value")?.unwrap_or(false);
    o.finish()?;
    Ok(HeaderValueOption {
        key: key.to_ascii_lowercase(),
        value,
        append_action,
        keep_empty_value,
    })
}

/// Reads a repeated `HeaderValueOption` field.
pub(crate) fn headers_to_add(o: &mut Obj<'_>, name: &'static str) -> Result<Vec<HeaderValueOption>> {
    o.array(name)?
        .into_iter()
        .map(|(v, p)| header_value_option(v, &p))
        .collect()
}

/// Reads a repeated header-name field of headers to remove (lower-cased).
pub(crate) fn headers_to_remove(o: &mut Obj<'_>, name: &'static str) -> Result<Vec<String>> {
    o.strings(name)?
        .into_iter()
        .map(|(h, p)| {
            non_empty(&h, &p)?;
            header_chars(&h, &p)?;
            if !modifiable(&h) {
                return Err(ConfigError::invalid(
                    p,
                    ":-prefixed or host headers may not be removed",
                ));
            }
            Ok(h.to_ascii_lowercase())
        })
        .collect()
}

/// Takes the four header manipulation fields of a route, virtual host, route configuration or
/// weighted cluster.
pub(crate) fn mutations(o: &mut Obj<'_>) -> Result<HeaderMutations> {
    Ok(HeaderMutations {
        request_headers_to_add: headers_to_add(o, "request_headers_to_add")?,
        request_headers_to_remove: headers_to_remove(o, "request_headers_to_remove")?,
        response_headers_to_add: headers_to_add(o, "response_headers_to_add")?,
        response_headers_to_remove: headers_to_remove(o, "response_headers_to_remove")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(s: &str) -> FormatPart {
        FormatPart::Literal(s.to_string())
    }

    #[test]
    fn substitution_formats() {
        let f = format(
            "a%%b %DOWNSTREAM_REMOTE_ADDRESS% x %REQ(X-Foo)%%HOSTNAME%",
            "p",
        )
        .unwrap();
        assert_eq!(
            f.parts,
            vec![
                lit("a%b "),
                FormatPart::DownstreamRemoteAddress,
                lit(" x "),
                FormatPart::RequestHeader("x-foo".into()),
                FormatPart::Hostname
            ]
        );
        assert_eq!(format("", "p").unwrap().parts, vec![]);
        assert_eq!(
            format("%FOO%", "r.value").unwrap_err().to_string(),
            "r.value: unsupported substitution %FOO% (not supported by legate)"
        );
        assert_eq!(
            format("%REQ(a):10%", "v").unwrap_err().to_string(),
            "v: unsupported substitution %REQ(a):10% (not supported by legate)"
        );
        assert!(format("%REQ(a?b)%", "v").is_err());
        assert_eq!(
            format("100%", "v").unwrap_err().to_string(),
            "v: Incorrect configuration: 100%. Couldn't find valid command at position 3"
        );
        assert!(format("%REQ(x-a)", "v")
            .unwrap_err()
            .to_string()
            .contains("position 0"));
    }

    #[test]
    fn header_value_options() {
        let h = header_value_option(
            &json!({"header": {"key": "X-A", "value": "v"}, "append": false}),
            "h",
        )
        .unwrap();
        assert_eq!(h.key, "x-a");
        assert_eq!(h.append_action, AppendAction::OverwriteIfExistsOrAdd);
        assert!(!h.keep_empty_value);
        let h = header_value_option(&json!({"header": {"key": "x", "value": "v"}}), "h").unwrap();
        assert_eq!(h.append_action, AppendAction::AppendIfExistsOrAdd);
        let h = header_value_option(
            &json!({"header": {"key": "x", "value": ""}, "append_action": "ADD_IF_ABSENT", "keep_empty_value": true}),
            "h",
        )
        .unwrap();
        assert_eq!(h.append_action, AppendAction::AddIfAbsent);
        assert!(h.keep_empty_value);
        let err = header_value_option(
            &json!({"header": {"key": "x", "value": "v"}, "append": true, "append_action": "ADD_IF_ABSENT"}),
            "h",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.append: Both append and append_action are set and it's not allowed"
        );
        let err = header_value_option(&json!({"header": {"key": "Host", "value": "v"}}), "h")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.header.key: :-prefixed or host headers may not be modified"
        );
        let err = header_value_option(&json!({"header": {"key": "x", "raw_value": "YQ=="}}), "h")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "h.header.raw_value: not supported by legate"
        );
        assert!(header_value_option(&json!({"append": true}), "h").is_err());
    }

    #[test]
    fn removal_lists() {
        let v = json!({"request_headers_to_remove": ["X-A"], "response_headers_to_remove": [":status"]});
        let mut o = Obj::new(&v, "r", proto::ROUTE).unwrap();
        let err = mutations(&mut o).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.response_headers_to_remove[0]: :-prefixed or host headers may not be removed"
        );
    }
}
