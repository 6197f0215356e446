//! `Address`, `SocketAddress` and `CidrRange`.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::CidrRange;
use crate::proto;
use crate::reader::{non_empty, required, Obj};

/// A `SocketAddress` as written: the address text (IP or DNS name) and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketAddress {
    /// `address`.
    pub address: String,
    /// `port_value`.
    pub port: u16,
    /// Path of the `address` field, for later errors.
    pub address_path: String,
}

/// Reads an `Address` that must hold a TCP `socket_address`.
pub(crate) fn socket_address(v: &Value, path: &str) -> Result<SocketAddress> {
    let mut addr = Obj::new(v, path, proto::ADDRESS)?;
    let Some(mut s) = addr.obj("socket_address", proto::SOCKET_ADDRESS)? else {
        if addr.is_set("pipe") || addr.is_set("envoy_internal_address") {
            addr.finish()?;
        }
        return Err(ConfigError::invalid(path, "socket_address is required"));
    };
    addr.finish()?;
    let address_path = s.at("address");
    let address = s.string("address")?;
    non_empty(&address, &address_path)?;
    let port_path = s.at("port_value");
    let port = s.u32("port_value")?.unwrap_or(0);
    let port = u16::try_from(port).map_err(|_| {
        ConfigError::invalid(port_path, "value must be less than or equal to 65535")
    })?;
    if let Some(protocol) = s.enumeration("protocol", &[("TCP", 0), ("UDP", 1)])? {
        if protocol != "TCP" {
            return Err(ConfigError::unsupported_value(
                s.at("protocol"),
                "protocol UDP",
            ));
        }
    }
    s.finish()?;
    Ok(SocketAddress {
        address,
        port,
        address_path,
    })
}

/// Parses an IP literal with Envoy's error text.
pub(crate) fn ip(text: &str, path: &str) -> Result<IpAddr> {
    text.parse()
        .map_err(|_| ConfigError::invalid(path, format!("malformed IP address: {text}")))
}

/// Reads an `Address` whose socket address must be an IP literal.
pub(crate) fn ip_socket_address(v: &Value, path: &str) -> Result<SocketAddr> {
    let sa = socket_address(v, path)?;
    Ok(SocketAddr::new(ip(&sa.address, &sa.address_path)?, sa.port))
}

/// Reads a `CidrRange`.
pub(crate) fn cidr_range(v: &Value, path: &str) -> Result<CidrRange> {
    let mut o = Obj::new(v, path, proto::CIDR_RANGE)?;
    let prefix_path = o.at("address_prefix");
    let prefix = o
        .str("address_prefix")?
        .ok_or_else(|| required(&prefix_path))?;
    let address = ip(&prefix, &prefix_path)?;
    let len_path = o.at("prefix_len");
    let prefix_len = o.u32("prefix_len")?.unwrap_or(0);
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(ConfigError::invalid(
            len_path,
            format!("prefix_len {prefix_len} is too large for {prefix}"),
        ));
    }
    o.finish()?;
    Ok(CidrRange {
        address,
        prefix_len: prefix_len as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn socket_addresses() {
        let v =
            json!({"socket_address": {"address": "::1", "port_value": "8080", "protocol": "TCP"}});
        assert_eq!(
            ip_socket_address(&v, "a").unwrap(),
            "[::1]:8080".parse().unwrap()
        );
        let v = json!({"socket_address": {"address": "localhost", "port_value": 1}});
        assert_eq!(
            ip_socket_address(&v, "a").unwrap_err().to_string(),
            "a.socket_address.address: malformed IP address: localhost"
        );
        let v = json!({"socket_address": {"address": "1.2.3.4", "port_value": 70000}});
        assert!(ip_socket_address(&v, "a")
            .unwrap_err()
            .to_string()
            .starts_with("a.socket_address.port_value:"));
        let v = json!({"socket_address": {"address": "1.2.3.4", "protocol": "UDP"}});
        assert_eq!(
            ip_socket_address(&v, "a").unwrap_err().to_string(),
            "a.socket_address.protocol: protocol UDP is not supported by legate"
        );
        let v = json!({"pipe": {"path": "/x"}});
        assert_eq!(
            ip_socket_address(&v, "a").unwrap_err().to_string(),
            "a.pipe: not supported by legate"
        );
        let v = json!({"socket_address": {"address": "1.2.3.4", "named_port": "http"}});
        assert_eq!(
            ip_socket_address(&v, "a").unwrap_err().to_string(),
            "a.socket_address.named_port: not supported by legate"
        );
    }

    #[test]
    fn cidr_ranges() {
        let v = json!({"address_prefix": "10.0.0.0", "prefix_len": 8});
        let c = cidr_range(&v, "c").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(cidr_range(
            &json!({"address_prefix": "10.0.0.0", "prefix_len": 33}),
            "c"
        )
        .is_err());
        assert!(cidr_range(&json!({"prefix_len": 3}), "c").is_err());
    }
}
