//! Reading list-valued headers, shared by the connection manager and the upstream pools.

use http::header::{HeaderMap, HeaderName};

/// The comma-separated tokens of every `name` header, trimmed (values that are not visible
/// ASCII are skipped). The `connection` header is read this way on both sides of the proxy.
pub fn header_tokens<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim)
}

#[cfg(test)]
mod tests {
    use http::header::{HeaderValue, CONNECTION};

    use super::*;

    #[test]
    fn tokens_of_every_value_trimmed() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive , Upgrade"));
        h.append(CONNECTION, HeaderValue::from_static("x-hop"));
        h.append(CONNECTION, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_eq!(header_tokens(&h, &CONNECTION).collect::<Vec<_>>(), ["keep-alive", "Upgrade", "x-hop"]);
        assert_eq!(header_tokens(&HeaderMap::new(), &CONNECTION).count(), 0);
    }
}
