//! `RegexMatcher`, `StringMatcher`, `HeaderMatcher` and `QueryParameterMatcher`.

use serde_json::{json, Value};

use crate::error::{ConfigError, Result};
use crate::model::{
    HeaderMatchSpec, HeaderMatcher, QueryParameterMatcher, RegexMatcher, StringMatch, StringMatcher,
};
use crate::proto;
use crate::reader::{header_chars, non_empty, required, Obj};

/// Compiles a regex with a path-named error.
pub(crate) fn compile(source: &str, path: &str) -> Result<RegexMatcher> {
    non_empty(source, path)?;
    RegexMatcher::new(source).map_err(|e| {
        let msg = e.to_string();
        let last = msg
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_string();
        ConfigError::invalid(path, format!("invalid regex {source:?}: {last}"))
    })
}

/// Reads a `RegexMatcher` message.
pub(crate) fn regex(v: &Value, path: &str) -> Result<RegexMatcher> {
    let mut o = Obj::new(v, path, proto::REGEX_MATCHER)?;
    // The deprecated engine selector: `google_re2: {}` is the default engine.
    if let Some(engine) = o.take("google_re2") {
        if *engine != json!({}) {
            return Err(ConfigError::unsupported(o.at("google_re2")));
        }
    }
    let regex_path = o.at("regex");
    let source = o.string("regex")?;
    let compiled = compile(&source, &regex_path)?;
    o.finish()?;
    Ok(compiled)
}

/// Reads a `StringMatcher`.
pub(crate) fn string_matcher(v: &Value, path: &str) -> Result<StringMatcher> {
    let mut o = Obj::new(v, path, proto::STRING_MATCHER)?;
    let pattern = match o.oneof(&[
        "exact",
        "prefix",
        "suffix",
        "safe_regex",
        "contains",
        "custom",
    ])? {
        Some("exact") => StringMatch::Exact(o.string("exact")?),
        Some(name @ ("prefix" | "suffix" | "contains")) => {
            let s = o.string(name)?;
            non_empty(&s, &o.at(name))?;
            match name {
                "prefix" => StringMatch::Prefix(s),
                "suffix" => StringMatch::Suffix(s),
                _ => StringMatch::Contains(s),
            }
        }
        Some("safe_regex") => {
            let p = o.at("safe_regex");
            StringMatch::Regex(regex(o.take("safe_regex").unwrap_or(&Value::Null), &p)?)
        }
        Some(_) => return Err(ConfigError::unsupported(o.at("custom"))),
        None => {
            return Err(ConfigError::invalid(
                path,
                "one of exact, prefix, suffix, contains, safe_regex is required",
            ))
        }
    };
    let ignore_case = o.bool("ignore_case")?.unwrap_or(false);
    o.finish()?;
    Ok(StringMatcher {
        pattern,
        ignore_case,
    })
}

/// Reads a `HeaderMatcher`.
pub(crate) fn header_matcher(v: &Value, path: &str) -> Result<HeaderMatcher> {
    let mut o = Obj::new(v, path, proto::HEADER_MATCHER)?;
    let name_path = o.at("name");
    let name = o.string("name")?;
    non_empty(&name, &name_path)?;
    header_chars(&name, &name_path)?;
    let which = o.oneof(&[
        "exact_match",
        "safe_regex_match",
        "range_match",
        "present_match",
        "prefix_match",
        "suffix_match",
        "contains_match",
        "string_match",
    ])?;
    let plain = |pattern| {
        Some(HeaderMatchSpec::String(StringMatcher {
            pattern,
            ignore_case: false,
        }))
    };
    let spec = match which {
        None => None,
        Some("exact_match") => plain(StringMatch::Exact(o.string("exact_match")?)),
        Some(field @ ("prefix_match" | "suffix_match" | "contains_match")) => {
            let s = o.string(field)?;
            non_empty(&s, &o.at(field))?;
            plain(match field {
                "prefix_match" => StringMatch::Prefix(s),
                "suffix_match" => StringMatch::Suffix(s),
                _ => StringMatch::Contains(s),
            })
        }
        Some("safe_regex_match") => {
            let p = o.at("safe_regex_match");
            plain(StringMatch::Regex(regex(
                o.take("safe_regex_match").unwrap_or(&Value::Null),
                &p,
            )?))
        }
        Some("present_match") => Some(HeaderMatchSpec::Present(
            o.bool("present_match")?.unwrap_or(false),
        )),
        Some("range_match") => {
            let mut r = o
                .obj("range_match", proto::INT64_RANGE)?
                .ok_or_else(|| required(path))?;
            let start = r.i64("start")?.unwrap_or(0);
            let end = r.i64("end")?.unwrap_or(0);
            r.finish()?;
            Some(HeaderMatchSpec::Range { start, end })
        }
        Some(_) => {
            let p = o.at("string_match");
            Some(HeaderMatchSpec::String(string_matcher(
                o.take("string_match").unwrap_or(&Value::Null),
                &p,
            )?))
        }
    };
    let invert_match = o.bool("invert_match")?.unwrap_or(false);
    let treat_missing_header_as_empty = o.bool("treat_missing_header_as_empty")?.unwrap_or(false);
    o.finish()?;
    Ok(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        spec,
        invert_match,
        treat_missing_header_as_empty,
    })
}

/// Reads a `QueryParameterMatcher`.
pub(crate) fn query_parameter_matcher(v: &Value, path: &str) -> Result<QueryParameterMatcher> {
    let mut o = Obj::new(v, path, proto::QUERY_PARAMETER_MATCHER)?;
    let name_path = o.at("name");
    let name = o.string("name")?;
    non_empty(&name, &name_path)?;
    if name.len() > 1024 {
        return Err(ConfigError::invalid(
            name_path,
            "value length must be at most 1024 characters",
        ));
    }
    let string_match = match o.oneof(&["string_match", "present_match"])? {
        Some("string_match") => {
            let p = o.at("string_match");
            Some(string_matcher(
                o.take("string_match").unwrap_or(&Value::Null),
                &p,
            )?)
        }
        Some(_) => {
            if !o.bool("present_match")?.unwrap_or(false) {
                return Err(ConfigError::unsupported_value(
                    o.at("present_match"),
                    "present_match: false",
                ));
            }
            None
        }
        None => None,
    };
    o.finish()?;
    Ok(QueryParameterMatcher { name, string_match })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matchers() {
        let m = string_matcher(&json!({"prefix": "/a", "ignore_case": true}), "s").unwrap();
        assert_eq!(
            m,
            StringMatcher {
                pattern: StringMatch::Prefix("/a".into()),
                ignore_case: true
            }
        );
        let m = string_matcher(
            &json!({"safe_regex": {"regex": "a+", "google_re2": {}}}),
            "s",
        )
        .unwrap();
        let StringMatch::Regex(r) = m.pattern else {
            panic!()
        };
        assert!(r.is_full_match("aaa") && !r.is_full_match("aab"));
        assert!(string_matcher(&json!({}), "s").is_err());
        assert!(string_matcher(&json!({"prefix": ""}), "s").is_err());
        assert!(string_matcher(&json!({"exact": "a", "prefix": "b"}), "s").is_err());
        let err = string_matcher(&json!({"safe_regex": {"regex": "(("}}), "s")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.safe_regex.regex: invalid regex \"((\""),
            "{err}"
        );
        let err = string_matcher(&json!({"custom": {}}), "s")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "s.custom: not supported by legate");
    }

    #[test]
    fn header_matchers() {
        let m = header_matcher(
            &json!({"name": "X-A", "exact_match": "v", "invert_match": true}),
            "h",
        )
        .unwrap();
        assert_eq!(m.name, "x-a");
        assert!(m.invert_match);
        assert_eq!(
            m.spec,
            Some(HeaderMatchSpec::String(StringMatcher {
                pattern: StringMatch::Exact("v".into()),
                ignore_case: false
            }))
        );
        let m = header_matcher(&json!({"name": ":method"}), "h").unwrap();
        assert_eq!(m.spec, None);
        let m = header_matcher(
            &json!({"name": "n", "range_match": {"start": "1", "end": 10}}),
            "h",
        )
        .unwrap();
        assert_eq!(m.spec, Some(HeaderMatchSpec::Range { start: 1, end: 10 }));
        let m = header_matcher(&json!({"name": "n", "present_match": true}), "h").unwrap();
        assert_eq!(m.spec, Some(HeaderMatchSpec::Present(true)));
        let m = header_matcher(
            &json!({"name": "n", "string_match": {"suffix": "z"}, "treat_missing_header_as_empty": true}),
            "h",
        )
        .unwrap();
        assert!(m.treat_missing_header_as_empty);
        assert!(header_matcher(&json!({"exact_match": "v"}), "h").is_err());
    }

    #[test]
    fn query_parameter_matchers() {
        let m = query_parameter_matcher(&json!({"name": "q", "present_match": true}), "q").unwrap();
        assert_eq!(m.string_match, None);
        let m = query_parameter_matcher(&json!({"name": "q", "string_match": {"exact": "1"}}), "q")
            .unwrap();
        assert!(m.string_match.is_some());
        assert!(
            query_parameter_matcher(&json!({"name": "q", "present_match": false}), "q").is_err()
        );
    }
}
