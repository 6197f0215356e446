//! `RouteAction.retry_policy` (and the `x-envoy-retry-on` header values, which share its
//! condition names).

use std::time::Duration;

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::{RetryOn, RetryPolicy};
use crate::proto;
use crate::reader::Obj;

/// `@type` of the previous-hosts retry host predicate.
const PREVIOUS_HOSTS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/// Parses a `retry_on` list (`5xx,connect-failure`); unknown conditions are errors.
pub fn parse_retry_on(list: &str) -> std::result::Result<RetryOn, String> {
    let mut on = RetryOn::default();
    for cond in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match cond {
            "5xx" => on.server_error = true,
            "gateway-error" => on.gateway_error = true,
            "reset" => on.reset = true,
            "connect-failure" => on.connect_failure = true,
            "retriable-4xx" => on.retriable_4xx = true,
            "refused-stream" => on.refused_stream = true,
            "retriable-status-codes" => on.retriable_status_codes = true,
            other => return Err(other.to_string()),
        }
    }
    Ok(on)
}

/// Reads a `RetryPolicy`.
pub(crate) fn retry_policy(v: &Value, path: &str) -> Result<RetryPolicy> {
    let mut o = Obj::new(v, path, proto::RETRY_POLICY)?;
    let on_path = o.at("retry_on");
    let retry_on = parse_retry_on(&o.string("retry_on")?)
        .map_err(|c| ConfigError::unsupported_value(on_path, format!("retry_on condition '{c}'")))?;
    let num_retries = o.u32("num_retries")?.unwrap_or(1);
    let per_try_timeout = o.duration("per_try_timeout")?.filter(|d| !d.is_zero());
    let retriable_status_codes = o
        .array("retriable_status_codes")?
        .into_iter()
        .map(|(c, p)| {
            let code = crate::reader::as_u32(c, &p)?;
            u16::try_from(code).map_err(|_| ConfigError::invalid(p, "not an HTTP status code"))
        })
        .collect::<Result<_>>()?;
    let (mut base_interval, mut max_interval) = (Duration::from_millis(25), None);
    if let Some(mut b) = o.obj("retry_back_off", proto::RETRY_BACK_OFF)? {
        let base_path = b.at("base_interval");
        base_interval = b.duration("base_interval")?.ok_or_else(|| crate::reader::required(&base_path))?;
        if base_interval < Duration::from_millis(1) {
            return Err(ConfigError::invalid(base_path, "value must be greater than or equal to 1ms"));
        }
        max_interval = b.duration("max_interval")?;
        b.finish()?;
    }
    let max_interval = max_interval.unwrap_or(base_interval * 10);
    let mut previous_hosts = false;
    for (p, pp) in o.array("retry_host_predicate")? {
        let mut pred = Obj::new(p, pp, proto::TYPED_EXTENSION_CONFIG)?;
        let name = pred.string("name")?;
        let url = pred.take("typed_config").and_then(|t| t.get("@type")).and_then(Value::as_str).unwrap_or("");
        if url != PREVIOUS_HOSTS_TYPE && name != "envoy.retry_host_predicates.previous_hosts" {
            return Err(ConfigError::unsupported_value(pred.at("name"), format!("retry host predicate '{name}'")));
        }
        pred.finish()?;
        previous_hosts = true;
    }
    let attempts_path = o.at("host_selection_retry_max_attempts");
    let host_selection_retry_max_attempts = match o.i64("host_selection_retry_max_attempts")? {
        None => 1,
        Some(n) if (0..=100).contains(&n) => n.max(1) as u32,
        Some(n) => return Err(ConfigError::invalid(attempts_path, format!("{n} is outside [0, 100]"))),
    };
    o.finish()?;
    Ok(RetryPolicy {
        retry_on,
        num_retries,
        per_try_timeout,
        retriable_status_codes,
        base_interval,
        max_interval,
        previous_hosts,
        host_selection_retry_max_attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_policy() {
        let p = retry_policy(
            &json!({"retry_on": "5xx, retriable-status-codes", "num_retries": 3, "per_try_timeout": "0.25s",
                "retriable_status_codes": [418], "retry_back_off": {"base_interval": "0.01s"},
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}], "host_selection_retry_max_attempts": 3}),
            "r",
        )
        .unwrap();
        assert!(p.retry_on.server_error && p.retry_on.retriable_status_codes && !p.retry_on.reset);
        assert_eq!((p.num_retries, p.per_try_timeout), (3, Some(Duration::from_millis(250))));
        assert_eq!((p.base_interval, p.max_interval), (Duration::from_millis(10), Duration::from_millis(100)));
        assert!(p.previous_hosts);
        assert_eq!(p.host_selection_retry_max_attempts, 3);
    }

    #[test]
    fn refuses_what_legate_does_not_do() {
        let e = |v: Value| retry_policy(&v, "r").unwrap_err().to_string();
        assert_eq!(e(json!({"retry_on": "5xx,cancelled"})), "r.retry_on: retry_on condition 'cancelled' is not supported by legate");
        assert_eq!(e(json!({"retry_on": "5xx", "retriable_headers": [{"name": "x"}]})), "r.retriable_headers: not supported by legate");
    }
}
