//! Envoy's command operators, `%NAME%`, `%NAME(arg)%` and `%NAME(arg):N%`, as they appear in
//! header values and access log formats: one lexer for both.

/// One command operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator<'a> {
    /// `NAME` (upper case, digits, `_`).
    pub(crate) name: &'a str,
    /// The text between the parentheses, if any.
    pub(crate) arg: Option<&'a str>,
    /// The digits of `:N`, if any (at least one).
    pub(crate) max_len: Option<&'a str>,
    /// How much of `body` the operator spans, closing `%` included.
    pub(crate) len: usize,
}

/// The operator at the start of `body`, the text after an opening `%`; `None` when `body` does
/// not hold a well-formed one.
pub(crate) fn operator(body: &str) -> Option<Operator<'_>> {
    let name_len = body.bytes().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_').count();
    if name_len == 0 {
        return None;
    }
    let mut j = name_len;
    let mut arg = None;
    if body[j..].starts_with('(') {
        let close = body[j..].find(')')? + j;
        arg = Some(&body[j + 1..close]);
        j = close + 1;
    }
    let mut max_len = None;
    if body[j..].starts_with(':') {
        let digits = body[j + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        max_len = Some(&body[j + 1..j + 1 + digits]);
        j += 1 + digits;
    }
    body[j..].starts_with('%').then_some(Operator { name: &body[..name_len], arg, max_len, len: j + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(operator("HOSTNAME% x"), Some(Operator { name: "HOSTNAME", arg: None, max_len: None, len: 9 }));
        assert_eq!(
            operator("REQ(X-Y):10%"),
            Some(Operator { name: "REQ", arg: Some("X-Y"), max_len: Some("10"), len: 12 })
        );
        for bad in ["", "lower%", "REQ(x%", "REQ(x):%", "REQ(x)", "A:1"] {
            assert_eq!(operator(bad), None, "{bad}");
        }
    }
}
