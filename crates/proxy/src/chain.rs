//! Filter chain selection (`filter_chain_match` on `server_names` and `transport_protocol`) and
//! the TLS inspector that supplies them: it reads the ClientHello from the socket without
//! consuming it, so the chosen chain can still terminate TLS or pass the bytes through.

use std::time::Duration;

use legate_config::model::FilterChainMatch;
use tokio::net::TcpStream;

/// Envoy's default `listener_filters_timeout`.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest ClientHello the inspector reads.
const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// What the TLS inspector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// `tls` or `raw_buffer`.
    pub transport: &'static str,
    /// The SNI of the ClientHello, lower-cased.
    pub sni: Option<String>,
}

/// Peeks at the first bytes: a TLS handshake record is parsed as a ClientHello for its SNI.
/// `None` when the peer closed or sent nothing within the timeout.
pub async fn inspect(stream: &TcpStream) -> Option<Inspected> {
    tokio::time::timeout(INSPECT_TIMEOUT, inspect_now(stream)).await.ok().flatten()
}

async fn inspect_now(stream: &TcpStream) -> Option<Inspected> {
    let mut buf = vec![0u8; MAX_CLIENT_HELLO];
    let mut last = 0;
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if buf[0] != 0x16 {
            return Some(Inspected { transport: "raw_buffer", sni: None });
        }
        match client_hello_sni(&buf[..n]) {
            Hello::Complete(sni) => return Some(Inspected { transport: "tls", sni }),
            Hello::Invalid => return Some(Inspected { transport: "tls", sni: None }),
            Hello::Partial if n == buf.len() => return Some(Inspected { transport: "tls", sni: None }),
            Hello::Partial => {
                // Peeking again returns at once with the same bytes: wait for more to arrive.
                if n == last {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                last = n;
            }
        }
    }
}

enum Hello {
    Complete(Option<String>),
    Partial,
    Invalid,
}

fn client_hello_sni(bytes: &[u8]) -> Hello {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rd = bytes;
    while !rd.is_empty() {
        if acceptor.read_tls(&mut rd).is_err() {
            return Hello::Invalid;
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Hello::Complete(accepted.client_hello().server_name().map(str::to_ascii_lowercase)),
        Ok(None) => Hello::Partial,
        Err(_) => Hello::Invalid,
    }
}

/// Envoy's filter chain precedence over `items`.
pub fn select<'a, T>(items: &'a [T], matcher: impl Fn(&T) -> &FilterChainMatch, sni: Option<&str>, transport: &str) -> Option<&'a T> {
    // server_names: exact, then the longest matching wildcard, then chains without names.
    let exact: Vec<&T> = items.iter().filter(|c| sni.is_some_and(|s| matcher(c).server_names.iter().any(|n| n == s))).collect();
    let candidates = if !exact.is_empty() {
        exact
    } else {
        let wildcard_len = |c: &T| {
            let sni = sni?;
            matcher(c)
                .server_names
                .iter()
                .filter_map(|n| n.strip_prefix('*'))
                .filter(|suffix| sni.ends_with(suffix) && sni.len() > suffix.len())
                .map(str::len)
                .max()
        };
        let best = items.iter().filter_map(wildcard_len).max();
        match best {
            Some(len) => items.iter().filter(|c| wildcard_len(c) == Some(len)).collect(),
            None => items.iter().filter(|c| matcher(c).server_names.is_empty()).collect(),
        }
    };
    candidates
        .iter()
        .find(|c| matcher(c).transport_protocol.as_deref() == Some(transport))
        .or_else(|| candidates.iter().find(|c| matcher(c).transport_protocol.is_none()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(names: &[&str], tp: Option<&str>) -> FilterChainMatch {
        FilterChainMatch { server_names: names.iter().map(|s| s.to_string()).collect(), transport_protocol: tp.map(String::from) }
    }

    #[test]
    fn envoy_precedence() {
        let chains = [
            m(&["a.example.com"], None),
            m(&["*.example.com"], None),
            m(&["*.b.example.com"], None),
            m(&[], Some("tls")),
            m(&[], Some("raw_buffer")),
        ];
        let pick = |sni: Option<&str>, t: &str| select(&chains, |c| c, sni, t).map(|c| chains.iter().position(|x| x == c).unwrap());
        assert_eq!(pick(Some("a.example.com"), "tls"), Some(0));
        assert_eq!(pick(Some("x.example.com"), "tls"), Some(1));
        assert_eq!(pick(Some("x.b.example.com"), "tls"), Some(2), "longest wildcard wins");
        assert_eq!(pick(Some("other.test"), "tls"), Some(3));
        assert_eq!(pick(None, "raw_buffer"), Some(4));
        assert_eq!(pick(Some("example.com"), "tls"), Some(3), "a wildcard needs a label before the suffix");
        let only_names = [m(&["a.test"], None)];
        assert_eq!(select(&only_names, |c| c, Some("z.test"), "tls"), None);
    }

    #[test]
    fn client_hello_parsing() {
        assert!(matches!(client_hello_sni(&[0x16, 3, 1, 0, 200, 1, 0]), Hello::Partial));
        assert!(matches!(client_hello_sni(b"\x16\x03\x01\x00\x05hello"), Hello::Invalid));
    }
}
