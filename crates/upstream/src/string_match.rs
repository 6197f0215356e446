//! A compiled `StringMatcher` (exact, prefix, suffix, contains, safe_regex; `ignore_case`),
//! shared by route matching in the proxy and certificate SAN matching in TLS contexts.

use legate_config::model::{StringMatch, StringMatcher};

/// A compiled `StringMatcher`, working on bytes (header values need not be UTF-8).
#[derive(Debug, Clone)]
pub struct StrMatcher {
    kind: StrKind,
    ignore_case: bool,
}

#[derive(Debug, Clone)]
enum StrKind {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(Box<[u8]>),
    Regex(regex::Regex),
}

impl StrMatcher {
    /// Compiles `m`.
    pub fn new(m: &StringMatcher) -> Self {
        let bytes = |s: &str| s.as_bytes().to_vec().into_boxed_slice();
        let kind = match &m.pattern {
            StringMatch::Exact(s) => StrKind::Exact(bytes(s)),
            StringMatch::Prefix(s) => StrKind::Prefix(bytes(s)),
            StringMatch::Suffix(s) => StrKind::Suffix(bytes(s)),
            StringMatch::Contains(s) => StrKind::Contains(bytes(s)),
            StringMatch::Regex(r) => StrKind::Regex(r.full.clone()),
        };
        Self {
            kind,
            ignore_case: m.ignore_case,
        }
    }

    /// Whether `value` satisfies the matcher (regexes need UTF-8 and match the whole value).
    pub fn matches(&self, value: &[u8]) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match &self.kind {
            StrKind::Exact(p) => eq(value, p),
            StrKind::Prefix(p) => value.len() >= p.len() && eq(&value[..p.len()], p),
            StrKind::Suffix(p) => value.len() >= p.len() && eq(&value[value.len() - p.len()..], p),
            StrKind::Contains(p) => p.is_empty() || value.windows(p.len()).any(|w| eq(w, p)),
            StrKind::Regex(r) => std::str::from_utf8(value).is_ok_and(|v| r.is_match(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::RegexMatcher;

    #[test]
    fn string_matchers() {
        let sm = |p: StringMatch, ic| {
            StrMatcher::new(&StringMatcher {
                pattern: p,
                ignore_case: ic,
            })
        };
        assert!(sm(StringMatch::Exact("Abc".into()), true).matches(b"aBC"));
        assert!(!sm(StringMatch::Exact("Abc".into()), false).matches(b"aBC"));
        assert!(sm(StringMatch::Prefix("ab".into()), true).matches(b"ABc"));
        assert!(!sm(StringMatch::Prefix("abcd".into()), false).matches(b"abc"));
        assert!(sm(StringMatch::Suffix("BC".into()), true).matches(b"abc"));
        assert!(sm(StringMatch::Contains("X-y".into()), true).matches(b"aax-Ybb"));
        assert!(!sm(StringMatch::Contains("zz".into()), false).matches(b"z"));
        assert!(sm(StringMatch::Contains(String::new()), false).matches(b""));
        let re = sm(StringMatch::Regex(RegexMatcher::new("a.c").unwrap()), false);
        assert!(re.matches(b"abc") && !re.matches(b"xabc") && !re.matches(&[0xff, b'a']));
    }
}
