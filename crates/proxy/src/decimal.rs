//! Decimal header values (`x-envoy-upstream-service-time`, `x-envoy-expected-rq-timeout-ms`,
//! `x-envoy-attempt-count`, `content-length`) without `fmt` and, for the small numbers most of
//! them carry, without an allocation.

use std::sync::OnceLock;

use http::HeaderValue;

/// Numbers below this come from a table built once.
const TABLE_SIZE: u64 = 1024;

/// A header value holding `n` in decimal.
pub fn decimal_value(n: u64) -> HeaderValue {
    if n < TABLE_SIZE {
        return table()[n as usize].clone();
    }
    // Larger values are mostly a route's timeout, the same on every request: each worker
    // thread keeps the last one it made and clones it (a shared buffer) while it repeats.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((m, value)) if *m == n => value.clone(),
        _ => {
            let mut buf = itoa::Buffer::new();
            let value = HeaderValue::from_str(buf.format(n)).expect("decimal digits are a valid header value");
            *last = Some((n, value.clone()));
            value
        }
    })
}

/// The values of 0..TABLE_SIZE: static slices of one string built (and kept) once, so a clone
/// is a copy of a pointer and a length.
fn table() -> &'static [HeaderValue] {
    static TABLE: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut digits = String::new();
        let mut ends = Vec::with_capacity(TABLE_SIZE as usize);
        for n in 0..TABLE_SIZE {
            digits.push_str(itoa::Buffer::new().format(n));
            ends.push(digits.len());
        }
        let digits: &'static str = Box::leak(digits.into_boxed_str());
        let mut start = 0;
        ends.into_iter()
            .map(|end| {
                let value = HeaderValue::from_static(&digits[start..end]);
                start = end;
                value
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_reads_back() {
        for n in (0..2100).chain([15_000, 999_999, u64::MAX]) {
            // Twice: made, then from the last-value cache.
            assert_eq!(decimal_value(n).to_str().unwrap(), n.to_string(), "{n}");
            assert_eq!(decimal_value(n).to_str().unwrap(), n.to_string(), "{n}");
        }
    }
}
