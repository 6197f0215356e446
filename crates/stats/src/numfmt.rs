//! The number formats Envoy's admin output uses, reproduced digit for digit (also used by
//! the admin crate).
//!
//! - [`shortest`]: `fmt::format("{}", double)` (text quantiles): shortest round-trip digits,
//!   fixed notation for decimal exponents in `[-4, 16)`, otherwise `1.5e+20`.
//! - [`json_number`]: `std::to_chars(double)` (JSON numbers): shortest round-trip digits in
//!   whichever of fixed or scientific notation is shorter (fixed on a tie): `3e+05`, `1800000`.
//! - [`general`]: printf `%.{p}g` (bucket bounds `{:g}`, Prometheus `{:.32g}`).

/// Shortest round-trip decimal digits of a finite, non-zero `v`'s magnitude and the decimal
/// exponent of the first digit (`1.5` → ("15", 0)).
fn shortest_digits(v: f64) -> (String, i32) {
    let s = format!("{:e}", v.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

/// Fixed notation of `digits` × 10^(exp − len + 1).
fn fixed(digits: &str, exp: i32) -> String {
    let n = digits.len() as i32;
    if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{int}.{frac}")
    }
}

/// Scientific notation with C's exponent style (`e+05`, `e-07`, `e+123`).
fn scientific(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() {
        first.to_string()
    } else {
        format!("{first}.{rest}")
    };
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("nan".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "inf" } else { "-inf" }.into())
    } else if v == 0.0 {
        Some(if v.is_sign_negative() { "-0" } else { "0" }.into())
    } else {
        None
    }
}

fn signed(v: f64, body: String) -> String {
    if v < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

/// `fmt::format("{}", v)`.
pub fn shortest(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (digits, exp) = shortest_digits(v);
    let body = if (-4..16).contains(&exp) {
        fixed(&digits, exp)
    } else {
        scientific(&digits, exp)
    };
    signed(v, body)
}

/// `std::to_chars(buf, end, v)` (JSON numbers; NaN must be handled by the caller).
pub fn json_number(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (digits, exp) = shortest_digits(v);
    let (f, s) = (fixed(&digits, exp), scientific(&digits, exp));
    signed(v, if s.len() < f.len() { s } else { f })
}

/// printf's `%.{precision}g`.
pub fn general(v: f64, precision: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let p = precision.max(1);
    let s = format!("{:.*e}", p - 1, v.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mantissa.replace('.', "");
    let body = if exp < -4 || exp >= p as i32 {
        let d = digits.trim_end_matches('0');
        scientific(if d.is_empty() { "0" } else { d }, exp)
    } else {
        let f = fixed(&digits, exp);
        if f.contains('.') {
            f.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            f
        }
    };
    signed(v, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_default_matches_envoy_text() {
        assert_eq!(shortest(0.0), "0");
        assert_eq!(shortest(1.0166666666666666), "1.0166666666666666");
        assert_eq!(shortest(22.5), "22.5");
        assert_eq!(shortest(3600000.0), "3600000");
        assert_eq!(shortest(1e16), "1e+16");
        assert_eq!(shortest(0.0001), "0.0001");
        assert_eq!(shortest(0.00001), "1e-05");
        assert_eq!(shortest(f64::NAN), "nan");
        assert_eq!(shortest(-1.0), "-1");
    }

    #[test]
    fn to_chars_matches_envoy_json() {
        assert_eq!(json_number(300000.0), "3e+05");
        assert_eq!(json_number(600000.0), "6e+05");
        assert_eq!(json_number(1800000.0), "1800000");
        assert_eq!(json_number(60000.0), "60000");
        assert_eq!(json_number(10000.0), "10000");
        assert_eq!(json_number(100000.0), "1e+05");
        assert_eq!(json_number(99.5), "99.5");
        assert_eq!(json_number(0.5), "0.5");
        assert_eq!(json_number(1.0833333333333333), "1.0833333333333333");
        assert_eq!(json_number(0.0), "0");
    }

    #[test]
    fn printf_g() {
        assert_eq!(general(0.5, 32), "0.5");
        assert_eq!(general(3600000.0, 32), "3600000");
        assert_eq!(general(1800000.0, 6), "1.8e+06");
        assert_eq!(general(300000.0, 6), "300000");
        assert_eq!(
            general(5.238095238095238, 32),
            "5.238095238095238137532305700006"
        );
        assert_eq!(
            general(24.049689440993788, 32),
            "24.049689440993788025480171199888"
        );
        assert_eq!(general(0.0, 32), "0");
        assert_eq!(general(1.1, 6), "1.1");
        assert_eq!(general(99.5, 6), "99.5");
    }
}
