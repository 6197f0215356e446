//! `RouteAction.retry_policy` (and the `x-envoy-retry-on` header values, which share its
//! condition names).

use std::time::Duration;

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::matcher::header_matcher;
use crate::model::{HeaderMatcher, RetryOn, RetryPolicy};
use crate::proto;
use crate::reader::Obj;

/// `@type` of the previous-hosts retry host predicate.
const PREVIOUS_HOSTS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/// Sets the condition named `cond` in `on`; `false` when Legate does not know it. Envoy reads
/// the HTTP and the gRPC conditions from one list (`retry_on`) or from two headers
/// (`x-envoy-retry-on`, `x-envoy-retry-grpc-on`).
fn set_condition(on: &mut RetryOn, cond: &str) -> bool {
    let flag = match cond {
        "5xx" => &mut on.server_error,
        "gateway-error" => &mut on.gateway_error,
        "reset" => &mut on.reset,
        "connect-failure" => &mut on.connect_failure,
        "retriable-4xx" => &mut on.retriable_4xx,
        "refused-stream" => &mut on.refused_stream,
        "retriable-status-codes" => &mut on.retriable_status_codes,
        "retriable-headers" => &mut on.retriable_headers,
        "envoy-ratelimited" => &mut on.envoy_ratelimited,
        "cancelled" => &mut on.grpc_cancelled,
        "deadline-exceeded" => &mut on.grpc_deadline_exceeded,
        "resource-exhausted" => &mut on.grpc_resource_exhausted,
        "internal" => &mut on.grpc_internal,
        "unavailable" => &mut on.grpc_unavailable,
        _ => return false,
    };
    *flag = true;
    true
}

/// Parses a `retry_on` list (`5xx,connect-failure,unavailable`); a condition Legate does not
/// implement is an error naming it.
pub fn parse_retry_on(list: &str) -> std::result::Result<RetryOn, String> {
    let mut on = RetryOn::default();
    for cond in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if !set_condition(&mut on, cond) {
            return Err(cond.to_string());
        }
    }
    Ok(on)
}

/// The gRPC conditions, which Envoy reads from `x-envoy-retry-grpc-on` but not from
/// `x-envoy-retry-on`.
const GRPC_CONDITIONS: [&str; 5] = ["cancelled", "deadline-exceeded", "resource-exhausted", "internal", "unavailable"];

/// Parses the value of an `x-envoy-retry-on` request header (HTTP conditions) or, with
/// `grpc`, of `x-envoy-retry-grpc-on` (gRPC conditions): as in Envoy, names that do not
/// belong there are skipped.
pub fn parse_retry_on_header(list: &str, grpc: bool) -> RetryOn {
    let mut on = RetryOn::default();
    for cond in list.split(',').map(str::trim) {
        if GRPC_CONDITIONS.contains(&cond) == grpc {
            set_condition(&mut on, cond);
        }
    }
    on
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
    let retriable_headers = matchers(&mut o, "retriable_headers")?;
    let retriable_request_headers = matchers(&mut o, "retriable_request_headers")?;
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
        retriable_headers,
        retriable_request_headers,
        base_interval,
        max_interval,
        previous_hosts,
        host_selection_retry_max_attempts,
    })
}

/// Reads a list of `HeaderMatcher`s.
fn matchers(o: &mut Obj<'_>, name: &'static str) -> Result<Vec<HeaderMatcher>> {
    o.array(name)?.into_iter().map(|(m, p)| header_matcher(m, &p)).collect()
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
        assert_eq!(
            e(json!({"retry_on": "5xx,reset-before-request"})),
            "r.retry_on: retry_on condition 'reset-before-request' is not supported by legate"
        );
        assert_eq!(e(json!({"retry_on": "5xx", "retry_priority": {"name": "x"}})), "r.retry_priority: not supported by legate");
    }

    #[test]
    fn reads_grpc_conditions_and_header_matchers() {
        let p = retry_policy(
            &json!({"retry_on": "unavailable,cancelled,retriable-headers", "retriable_headers": [{"name": "x-retry"}],
                "retriable_request_headers": [{"name": ":method", "string_match": {"exact": "GET"}}]}),
            "r",
        )
        .unwrap();
        assert!(p.retry_on.grpc_unavailable && p.retry_on.grpc_cancelled && p.retry_on.retriable_headers);
        assert!(p.retry_on.grpc_status(14) && p.retry_on.grpc_status(1) && !p.retry_on.grpc_status(4));
        assert_eq!(p.retriable_headers[0].name, "x-retry");
        assert_eq!(p.retriable_request_headers[0].name, ":method");
    }

    #[test]
    fn header_values_skip_unknown_names() {
        let on = parse_retry_on_header("5xx, bogus ,deadline-exceeded", false);
        assert!(on.server_error && !on.grpc_deadline_exceeded && !on.reset);
        let on = parse_retry_on_header("5xx,deadline-exceeded", true);
        assert!(!on.server_error && on.grpc_deadline_exceeded);
        assert!(!parse_retry_on_header("bogus", false).any());
    }
}
