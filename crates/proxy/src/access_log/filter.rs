//! Access log filters: status code, duration, response flags, health checks, and/or.

use std::time::Duration;

use legate_config::access_log::AccessLogFilter;

use super::LogRecord;

/// Whether the stream recorded in `rec`, which lasted `duration`, passes `filter`.
pub(super) fn passes(filter: &AccessLogFilter, rec: &LogRecord, duration: Duration) -> bool {
    match filter {
        AccessLogFilter::StatusCode(c) => c.matches(u64::from(rec.response_code)),
        AccessLogFilter::Duration(c) => c.matches(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
        AccessLogFilter::ResponseFlag(flags) if flags.is_empty() => !rec.flags.is_empty(),
        AccessLogFilter::ResponseFlag(flags) => flags.iter().any(|f| rec.flags.contains(f)),
        // Only Envoy's health_check HTTP filter marks a stream as a health check; Legate has no
        // such filter, so no stream is one.
        AccessLogFilter::NotHealthCheck => true,
        AccessLogFilter::And(all) => all.iter().all(|f| passes(f, rec, duration)),
        AccessLogFilter::Or(any) => any.iter().any(|f| passes(f, rec, duration)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use legate_config::access_log::{Comparison, ComparisonOp};

    use super::*;

    #[test]
    fn filters_combine() {
        let logs = super::super::formatter::tests::logs(&["x"]);
        let mut rec = logs.record(Instant::now(), http::Version::HTTP_11, "1.2.3.4:5".parse().unwrap(), "1.2.3.4:6".parse().unwrap());
        rec.capture_response(503, &http::HeaderMap::new());
        let status = |op, value| AccessLogFilter::StatusCode(Comparison { op, value });
        let slow = AccessLogFilter::Duration(Comparison { op: ComparisonOp::Ge, value: 100 });
        let d = Duration::from_millis(20);
        assert!(passes(&status(ComparisonOp::Ge, 500), &rec, d));
        assert!(!passes(&status(ComparisonOp::Eq, 200), &rec, d));
        assert!(!passes(&slow, &rec, d));
        assert!(passes(&slow, &rec, Duration::from_millis(150)));
        let any_flag = AccessLogFilter::ResponseFlag(vec![]);
        let uf = AccessLogFilter::ResponseFlag(vec!["UF".into(), "UH".into()]);
        assert!(!passes(&any_flag, &rec, d));
        rec.flag("UH");
        assert!(passes(&any_flag, &rec, d) && passes(&uf, &rec, d));
        assert!(!passes(&AccessLogFilter::ResponseFlag(vec!["NR".into()]), &rec, d));
        let and = AccessLogFilter::And(vec![uf.clone(), slow.clone()]);
        let or = AccessLogFilter::Or(vec![uf, slow]);
        assert!(!passes(&and, &rec, d) && passes(&or, &rec, d));
        assert!(passes(&AccessLogFilter::NotHealthCheck, &rec, d));
    }
}
