//! `%START_TIME%` rendering in UTC: Envoy's default `%Y-%m-%dT%H:%M:%E3SZ` and the strftime
//! conversions the config parser accepts (plus Envoy's `%E<n>S`, `%<n>f`, `%f`, `%s`).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Envoy's default START_TIME format.
const DEFAULT: &str = "%Y-%m-%dT%H:%M:%E3SZ";
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Year, month (1-12), day (1-31) of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Formats `t` (UTC) with `fmt` (Envoy's default when `None`).
pub(super) fn format_time(t: SystemTime, fmt: Option<&str>) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let nanos = since.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let (hour, minute, second) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cumulative[(month - 1) as usize] + day + u32::from(month > 2 && is_leap(year));
    let frac = |digits: usize| format!("{nanos:09}")[..digits.clamp(1, 9)].to_string();
    let mut out = String::with_capacity(32);
    let mut chars = fmt.unwrap_or(DEFAULT).chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year}"),
            Some('y') => write!(out, "{:02}", year.rem_euclid(100)),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('e') => write!(out, "{day:2}"),
            Some('j') => write!(out, "{yday:03}"),
            Some('H') => write!(out, "{hour:02}"),
            Some('M') => write!(out, "{minute:02}"),
            Some('S') => write!(out, "{second:02}"),
            Some('T') => write!(out, "{hour:02}:{minute:02}:{second:02}"),
            Some('F') => write!(out, "{year}-{month:02}-{day:02}"),
            Some('b') => write!(out, "{}", MONTHS[(month - 1) as usize]),
            Some('a') => write!(out, "{}", DAYS[days.rem_euclid(7) as usize]),
            Some('z') => write!(out, "+0000"),
            Some('Z') => write!(out, "UTC"),
            Some('s') => write!(out, "{secs}"),
            Some('f') => write!(out, "{}", frac(9)),
            Some('%') => write!(out, "%"),
            Some('E') => {
                let digits = chars.next().and_then(|d| d.to_digit(10)).unwrap_or(0) as usize;
                chars.next(); // 'S'
                if digits == 0 {
                    write!(out, "{second:02}")
                } else {
                    write!(out, "{second:02}.{}", frac(digits))
                }
            }
            Some(d) if d.is_ascii_digit() => {
                let digits = d.to_digit(10).unwrap_or(9) as usize;
                chars.next(); // 'f'
                write!(out, "{}", frac(digits))
            }
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn matches_envoy_output() {
        // Rendered by Envoy 1.40 for the same instant (2026-11-29T12:49:09.008927Z).
        let t = UNIX_EPOCH + Duration::new(1_795_956_549, 8_927_000);
        assert_eq!(format_time(t, None), "2026-11-29T12:49:09.008Z");
        assert_eq!(
            format_time(t, Some("%Y-%m-%d %H:%M:%S.%3f|%s|%E3S|%f|%e|%j|%b %a %z %Z")),
            "2026-11-29 12:49:09.008|1795956549|09.008|008927000|29|333|Nov Sun +0000 UTC"
        );
    }

    #[test]
    fn leap_years_and_epoch() {
        assert_eq!(format_time(UNIX_EPOCH, Some("%F %T %a %j")), "1970-01-01 00:00:00 Thu 001");
        let t = UNIX_EPOCH + Duration::from_secs(951_825_600); // 2000-02-29T12:00:00Z
        assert_eq!(format_time(t, Some("%F %j %y %e")), "2000-02-29 060 00 29");
        let t = UNIX_EPOCH + Duration::from_secs(1_704_067_199); // 2023-12-31T23:59:59Z
        assert_eq!(format_time(t, Some("%F %T %j %E0S")), "2023-12-31 23:59:59 365 59");
    }
}
