//! `Cluster.outlier_detection`.

use std::time::Duration;

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::OutlierDetection;
use crate::proto;
use crate::reader::Obj;

/// Reads `outlier_detection` (at `path`).
pub(crate) fn outlier_detection(v: &Value, path: &str) -> Result<OutlierDetection> {
    let mut o = Obj::new(v, path, proto::OUTLIER_DETECTION)?;
    let percent = |o: &mut Obj<'_>, name: &'static str, default: u32| -> Result<u32> {
        let p = o.at(name);
        match o.u32(name)? {
            Some(n) if n > 100 => Err(ConfigError::invalid(
                p,
                "value must be less than or equal to 100",
            )),
            n => Ok(n.unwrap_or(default)),
        }
    };
    let max_ejection_percent = percent(&mut o, "max_ejection_percent", 10)?;
    let enforcing_consecutive_5xx = percent(&mut o, "enforcing_consecutive_5xx", 100)?;
    let enforcing_success_rate = percent(&mut o, "enforcing_success_rate", 100)?;
    let enforcing_consecutive_gateway_failure =
        percent(&mut o, "enforcing_consecutive_gateway_failure", 0)?;
    let enforcing_consecutive_local_origin_failure =
        percent(&mut o, "enforcing_consecutive_local_origin_failure", 100)?;
    let enforcing_local_origin_success_rate =
        percent(&mut o, "enforcing_local_origin_success_rate", 100)?;
    let failure_percentage_threshold = percent(&mut o, "failure_percentage_threshold", 85)?;
    let enforcing_failure_percentage = percent(&mut o, "enforcing_failure_percentage", 0)?;
    let enforcing_failure_percentage_local_origin =
        percent(&mut o, "enforcing_failure_percentage_local_origin", 0)?;
    let positive = |o: &mut Obj<'_>, name: &'static str, default: u64| -> Result<Duration> {
        let p = o.at(name);
        match o.duration(name)? {
            Some(d) if d.is_zero() => Err(ConfigError::invalid(p, "value must be greater than 0s")),
            d => Ok(d.unwrap_or(Duration::from_secs(default))),
        }
    };
    let interval = positive(&mut o, "interval", 10)?;
    let base_ejection_time = positive(&mut o, "base_ejection_time", 30)?;
    let max_path = o.at("max_ejection_time");
    let max_ejection_time = positive(&mut o, "max_ejection_time", 300)?;
    if base_ejection_time > max_ejection_time {
        return Err(ConfigError::invalid(
            max_path,
            "base_ejection_time must be less than or equal to max_ejection_time",
        ));
    }
    let count = |o: &mut Obj<'_>, name: &'static str, default: u32| -> Result<u32> {
        Ok(o.u32(name)?.unwrap_or(default))
    };
    let out = OutlierDetection {
        consecutive_5xx: count(&mut o, "consecutive_5xx", 5)?,
        interval,
        base_ejection_time,
        max_ejection_percent,
        enforcing_consecutive_5xx,
        enforcing_success_rate,
        success_rate_minimum_hosts: count(&mut o, "success_rate_minimum_hosts", 5)?,
        success_rate_request_volume: count(&mut o, "success_rate_request_volume", 100)?,
        success_rate_stdev_factor: count(&mut o, "success_rate_stdev_factor", 1900)?,
        consecutive_gateway_failure: count(&mut o, "consecutive_gateway_failure", 5)?,
        enforcing_consecutive_gateway_failure,
        split_external_local_origin_errors: o
            .bool("split_external_local_origin_errors")?
            .unwrap_or(false),
        consecutive_local_origin_failure: count(&mut o, "consecutive_local_origin_failure", 5)?,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        failure_percentage_threshold,
        enforcing_failure_percentage,
        enforcing_failure_percentage_local_origin,
        failure_percentage_minimum_hosts: count(&mut o, "failure_percentage_minimum_hosts", 5)?,
        failure_percentage_request_volume: count(&mut o, "failure_percentage_request_volume", 50)?,
        max_ejection_time,
        max_ejection_time_jitter: o.duration("max_ejection_time_jitter")?.unwrap_or_default(),
        successful_active_health_check_uneject_host: o
            .bool("successful_active_health_check_uneject_host")?
            .unwrap_or(true),
        always_eject_one_host: o.bool("always_eject_one_host")?.unwrap_or(false),
    };
    o.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<OutlierDetection> {
        outlier_detection(&v, "c.outlier_detection")
    }

    #[test]
    fn defaults_and_fields() {
        let d = parse(json!({})).unwrap();
        assert_eq!(
            (
                d.consecutive_5xx,
                d.consecutive_gateway_failure,
                d.consecutive_local_origin_failure
            ),
            (5, 5, 5)
        );
        assert_eq!(
            (d.interval, d.base_ejection_time, d.max_ejection_time),
            (
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(300)
            )
        );
        assert_eq!(
            (
                d.max_ejection_percent,
                d.enforcing_consecutive_5xx,
                d.enforcing_consecutive_gateway_failure
            ),
            (10, 100, 0)
        );
        assert_eq!(
            (
                d.enforcing_success_rate,
                d.success_rate_minimum_hosts,
                d.success_rate_request_volume,
                d.success_rate_stdev_factor
            ),
            (100, 5, 100, 1900)
        );
        assert_eq!(
            (
                d.failure_percentage_threshold,
                d.enforcing_failure_percentage,
                d.failure_percentage_minimum_hosts,
                d.failure_percentage_request_volume
            ),
            (85, 0, 5, 50)
        );
        assert!(
            d.successful_active_health_check_uneject_host
                && !d.split_external_local_origin_errors
                && !d.always_eject_one_host
        );
        let d = parse(json!({"consecutive_5xx": 3, "interval": "1s", "base_ejection_time": "2s", "max_ejection_percent": 50,
            "split_external_local_origin_errors": true, "consecutive_local_origin_failure": 2, "max_ejection_time_jitter": "0.5s",
            "enforcing_consecutive_gateway_failure": 100, "always_eject_one_host": true}))
        .unwrap();
        assert_eq!(
            (
                d.consecutive_5xx,
                d.max_ejection_percent,
                d.consecutive_local_origin_failure
            ),
            (3, 50, 2)
        );
        assert_eq!(
            (d.interval, d.base_ejection_time),
            (Duration::from_secs(1), Duration::from_secs(2))
        );
        assert_eq!(d.max_ejection_time_jitter, Duration::from_millis(500));
        assert!(d.split_external_local_origin_errors && d.always_eject_one_host);
        assert_eq!(d.enforcing_consecutive_gateway_failure, 100);
    }

    #[test]
    fn errors() {
        let e = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"max_ejection_percent": 101})),
            "c.outlier_detection.max_ejection_percent: value must be less than or equal to 100"
        );
        assert_eq!(
            e(json!({"enforcing_success_rate": 101})),
            "c.outlier_detection.enforcing_success_rate: value must be less than or equal to 100"
        );
        assert_eq!(
            e(json!({"interval": "0s"})),
            "c.outlier_detection.interval: value must be greater than 0s"
        );
        assert_eq!(
            e(json!({"detect_degraded_hosts": true})),
            "c.outlier_detection.detect_degraded_hosts: not supported by legate"
        );
        assert_eq!(
            e(json!({"monitors": [{}]})),
            "c.outlier_detection.monitors: not supported by legate"
        );
        assert_eq!(
            e(json!({"bogus": 1})),
            "c.outlier_detection.bogus: unknown field"
        );
    }
}
