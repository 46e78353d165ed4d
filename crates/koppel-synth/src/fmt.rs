//! Hand-rolled field formatting into a line buffer.
//!
//! The payroll file alone is tens of millions of rows at sector scale; going
//! through `format!` per field would allocate for every value, so numbers and
//! dates are written straight into the byte buffer.

use crate::calendar::civil_from_days;

/// Fixed-width, zero-padded decimal digits (BSN: 9, KvK: 8, FWG code: 4).
#[inline]
pub(crate) fn push_padded(buf: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = buf.len();
    buf.resize(start + width, b'0');
    let mut i = start + width;
    while value > 0 && i > start {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[inline]
pub(crate) fn push_uint(buf: &mut Vec<u8>, value: u64) {
    let mut digits = itoa::Buffer::new();
    buf.extend_from_slice(digits.format(value).as_bytes());
}

/// A fixed-point amount given in units of 10^-`scale` (cents for scale 2),
/// written with `separator` as the decimal mark: `123456` → `1234,56`.
#[inline]
pub(crate) fn push_fixed(buf: &mut Vec<u8>, value: i64, scale: u32, separator: u8) {
    if value < 0 {
        buf.push(b'-');
    }
    let magnitude = value.unsigned_abs();
    let unit = 10u64.pow(scale);
    push_uint(buf, magnitude / unit);
    if scale > 0 {
        buf.push(separator);
        push_padded(buf, magnitude % unit, scale as usize);
    }
}

/// `YYYY-MM-DD`
#[inline]
pub(crate) fn push_date_iso(buf: &mut Vec<u8>, day: i32) {
    let (y, m, d) = civil_from_days(day);
    push_padded(buf, y as u64, 4);
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(d), 2);
}

/// `DD-MM-YYYY`
#[inline]
pub(crate) fn push_date_dmy(buf: &mut Vec<u8>, day: i32) {
    let (y, m, d) = civil_from_days(day);
    push_padded(buf, u64::from(d), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, y as u64, 4);
}

/// `YYYYMM`
#[inline]
pub(crate) fn push_period(buf: &mut Vec<u8>, year: i32, month: u32) {
    push_padded(buf, year as u64, 4);
    push_padded(buf, u64::from(month), 2);
}

/// Free text, quoted only when it holds the delimiter, a quote or a line
/// break (quotes doubled inside), as the contract's CSV dialect allows.
pub(crate) fn push_text(buf: &mut Vec<u8>, text: &str, delimiter: u8) {
    let needs_quotes = text
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if !needs_quotes {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    buf.push(b'"');
    for byte in text.bytes() {
        if byte == b'"' {
            buf.push(b'"');
        }
        buf.push(byte);
    }
    buf.push(b'"');
}

/// Rounds a non-negative euro amount to cents.
#[inline]
pub(crate) fn cents(euros: f64) -> i64 {
    (euros * 100.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).expect("ascii")
    }

    #[test]
    fn formats_fields() {
        assert_eq!(text(|b| push_padded(b, 12_345, 9)), "000012345");
        assert_eq!(text(|b| push_padded(b, 0, 4)), "0000");
        assert_eq!(text(|b| push_fixed(b, 123_456, 2, b',')), "1234,56");
        assert_eq!(text(|b| push_fixed(b, 5, 2, b'.')), "0.05");
        assert_eq!(text(|b| push_fixed(b, -1_230, 1, b',')), "-123,0");
        assert_eq!(text(|b| push_fixed(b, 7, 0, b',')), "7");
        let day = days_from_civil(2024, 2, 9);
        assert_eq!(text(|b| push_date_iso(b, day)), "2024-02-09");
        assert_eq!(text(|b| push_date_dmy(b, day)), "09-02-2024");
        assert_eq!(text(|b| push_period(b, 2024, 3)), "202403");
        assert_eq!(text(|b| push_text(b, "a;b", b';')), "\"a;b\"");
        assert_eq!(text(|b| push_text(b, "a \"b\"", b';')), "\"a \"\"b\"\"\"");
        assert_eq!(text(|b| push_text(b, "Diëtist", b';')), "Diëtist");
    }
}
