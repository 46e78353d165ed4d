//! The row rules of the delivery contract and the identifier checks.
//!
//! Identifier checks write the canonical form into a caller's buffer rather
//! than returning a `String`: they run once per identifier on every row of
//! the largest deliveries.

use std::fmt;

use serde::Serialize;

/// A rule a row can break. The snake_case code is what reject reports and
/// summaries show, and what the synthetic data's defect plan names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A required field is empty.
    Required,
    /// Not a valid citizen service number (format, 11-test, all zeros).
    InvalidBsn,
    /// Not a valid Chamber of Commerce number.
    InvalidKvk,
    /// A `_P1` column that is not 64 lowercase hexadecimal characters.
    InvalidPseudonym,
    InvalidInteger,
    InvalidDecimal,
    /// Not in the source's date layout, or a day that does not exist.
    InvalidDate,
    InvalidMonth,
    InvalidBool,
    /// Not exactly the declared number of digits.
    InvalidCode,
    NotInEnum,
    OutOfRange,
    /// Younger than the contract's minimum working age.
    TooYoung,
    /// A date earlier than the date it must follow.
    DateOrder,
    /// A value that must be unique was seen on an earlier row.
    Duplicate,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::Required,
        Rule::InvalidBsn,
        Rule::InvalidKvk,
        Rule::InvalidPseudonym,
        Rule::InvalidInteger,
        Rule::InvalidDecimal,
        Rule::InvalidDate,
        Rule::InvalidMonth,
        Rule::InvalidBool,
        Rule::InvalidCode,
        Rule::NotInEnum,
        Rule::OutOfRange,
        Rule::TooYoung,
        Rule::DateOrder,
        Rule::Duplicate,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::InvalidBsn => "invalid_bsn",
            Rule::InvalidKvk => "invalid_kvk",
            Rule::InvalidPseudonym => "invalid_pseudonym",
            Rule::InvalidInteger => "invalid_integer",
            Rule::InvalidDecimal => "invalid_decimal",
            Rule::InvalidDate => "invalid_date",
            Rule::InvalidMonth => "invalid_month",
            Rule::InvalidBool => "invalid_bool",
            Rule::InvalidCode => "invalid_code",
            Rule::NotInEnum => "not_in_enum",
            Rule::OutOfRange => "out_of_range",
            Rule::TooYoung => "too_young",
            Rule::DateOrder => "date_order",
            Rule::Duplicate => "duplicate",
        }
    }

    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    /// What the rule means, for people reading a summary.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Required => "required field is empty",
            Rule::InvalidBsn => "not a valid BSN (9 digits after padding, 11-test, not all zeros)",
            Rule::InvalidKvk => "not a valid KvK number (8 digits after padding, not all zeros)",
            Rule::InvalidPseudonym => "not a stage-1 pseudonym (64 lowercase hex characters)",
            Rule::InvalidInteger => "not a whole number",
            Rule::InvalidDecimal => "not a decimal number in the source's notation",
            Rule::InvalidDate => "not an existing date in the source's date format",
            Rule::InvalidMonth => "not an existing month in the source's month format",
            Rule::InvalidBool => "not one of the source's two boolean values",
            Rule::InvalidCode => "not a code of the required number of digits",
            Rule::NotInEnum => "not one of the allowed values",
            Rule::OutOfRange => "outside the allowed range",
            Rule::TooYoung => "person younger than the minimum age at the period",
            Rule::DateOrder => "date lies before the date it must follow",
            Rule::Duplicate => "value must be unique but occurs on an earlier row",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Canonicalises and checks a BSN: strips spaces, dots and dashes, left-pads
/// to 9 digits, applies the 11-test and refuses all zeros. On success `out`
/// holds the 9 canonical digits.
#[inline]
pub fn canonical_bsn(field: &[u8], out: &mut [u8; 9]) -> bool {
    if !canonical_digits(field, b" .-", out) {
        return false;
    }
    let mut sum: i32 = 0;
    for (i, &d) in out[..8].iter().enumerate() {
        sum += (9 - i as i32) * (d - b'0') as i32;
    }
    sum -= (out[8] - b'0') as i32;
    sum % 11 == 0 && out.iter().any(|&d| d != b'0')
}

/// Canonicalises and checks a KvK number: strips spaces, left-pads to 8
/// digits, refuses all zeros.
#[inline]
pub fn canonical_kvk(field: &[u8], out: &mut [u8; 8]) -> bool {
    canonical_digits(field, b" ", out) && out.iter().any(|&d| d != b'0')
}

/// Copies the digits of `field`, skipping `strip` bytes, right-aligned into
/// `out` with leading zeros. Fails on any other byte, on no digits at all, or
/// on more digits than `out` holds.
#[inline]
fn canonical_digits<const N: usize>(field: &[u8], strip: &[u8], out: &mut [u8; N]) -> bool {
    let mut n = 0;
    for &b in field {
        if b.is_ascii_digit() {
            n += 1;
        } else if !strip.contains(&b) {
            return false;
        }
    }
    if n == 0 || n > N {
        return false;
    }
    out.fill(b'0');
    let mut at = N - n;
    for &b in field {
        if b.is_ascii_digit() {
            out[at] = b;
            at += 1;
        }
    }
    true
}

/// Decodes a stage-1 pseudonym: exactly 64 lowercase hexadecimal characters.
#[inline]
pub fn decode_pseudonym(field: &[u8], out: &mut [u8; 32]) -> bool {
    if field.len() != 64 {
        return false;
    }
    // Every pseudonym of every row passes here: a table lookup per digit
    // and one check at the end rather than a branch per digit.
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(field.chunks_exact(2)) {
        let (hi, lo) = (HEX_DIGIT[pair[0] as usize], HEX_DIGIT[pair[1] as usize]);
        invalid |= hi | lo;
        *byte = hi << 4 | lo;
    }
    invalid & NOT_HEX == 0
}

const NOT_HEX: u8 = 0x80;

/// The value of each lower-case hexadecimal digit; [`NOT_HEX`] for every
/// other byte (upper case included: the contract writes lower case).
static HEX_DIGIT: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        table[b'a' as usize + c] = 10 + c as u8;
        c += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn bsn(s: &str) -> Option<String> {
        let mut out = [0; 9];
        canonical_bsn(s.as_bytes(), &mut out).then(|| String::from_utf8(out.to_vec()).unwrap())
    }

    fn kvk(s: &str) -> Option<String> {
        let mut out = [0; 8];
        canonical_kvk(s.as_bytes(), &mut out).then(|| String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn bsn_examples_from_the_contract() {
        // The contract's test-vector BSNs pass the 11-test.
        assert_eq!(bsn("111222333").as_deref(), Some("111222333"));
        assert_eq!(bsn("123456782").as_deref(), Some("123456782"));
        // Spaces, dots and dashes are stripped; short numbers are padded.
        assert_eq!(bsn("1234.56.782").as_deref(), Some("123456782"));
        assert_eq!(bsn(" 123-456-782 ").as_deref(), Some("123456782"));
        assert_eq!(bsn("12345672").as_deref(), Some("012345672"));
    }

    #[test]
    fn bsn_failures() {
        assert_eq!(bsn("123456789"), None, "fails the 11-test");
        assert_eq!(
            bsn("000000000"),
            None,
            "all zeros passes the 11-test but is refused"
        );
        assert_eq!(bsn("0"), None);
        assert_eq!(bsn(""), None);
        assert_eq!(bsn("1234567820"), None, "ten digits");
        assert_eq!(bsn("12345678a"), None);
        assert_eq!(bsn("123_456_782"), None, "underscore is not a separator");
        assert_eq!(bsn("..."), None);
    }

    #[test]
    fn kvk_rules() {
        assert_eq!(kvk("12345678").as_deref(), Some("12345678"));
        assert_eq!(kvk("1").as_deref(), Some("00000001"));
        assert_eq!(kvk("1234 5678").as_deref(), Some("12345678"));
        assert_eq!(kvk("00000000"), None);
        assert_eq!(kvk("123456789"), None);
        assert_eq!(kvk("1234-5678"), None, "only spaces are stripped");
        assert_eq!(kvk("abcdefgh"), None);
    }

    #[test]
    fn contract_test_vectors_are_valid_pseudonyms() {
        let mut out = [0; 32];
        for p1 in [
            "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692",
            "3060646ddecbb903b9266ad783672de902328ebe860f258877e5727bb0683b86",
            "59494f8f69781f6532fb74ea4e650d5ea89b51278dcd83ec6b321772cbc0f24f",
            "2ab8c6021b03c459b0c499c8282d4f2acace10cf24f63ccfb7d7ae9d80de1e0d",
        ] {
            assert!(decode_pseudonym(p1.as_bytes(), &mut out), "{p1}");
            assert_eq!(hex::encode(out), p1);
        }
    }

    #[test]
    fn pseudonym_format() {
        let mut out = [0; 32];
        let p1 = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
        assert!(decode_pseudonym(p1.as_bytes(), &mut out));
        assert_eq!(out[0], 0xf8);
        assert_eq!(out[31], 0x92);
        assert!(!decode_pseudonym(p1.to_uppercase().as_bytes(), &mut out));
        assert!(!decode_pseudonym(&p1.as_bytes()[..63], &mut out));
        assert!(!decode_pseudonym(format!("{p1}0").as_bytes(), &mut out));
        assert!(!decode_pseudonym(p1.replace('f', "g").as_bytes(), &mut out));
    }

    #[test]
    fn every_byte_but_a_lower_case_hex_digit_is_refused_in_every_place() {
        let p1 = b"f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
        let mut out = [0; 32];
        for at in 0..64 {
            for b in 0..=255u8 {
                let mut field = *p1;
                field[at] = b;
                let hex_digit = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                assert_eq!(
                    decode_pseudonym(&field, &mut out),
                    hex_digit,
                    "byte {b:#04x} at {at}"
                );
                if hex_digit {
                    assert_eq!(hex::encode(out).as_bytes(), field);
                }
            }
        }
    }

    #[test]
    fn rule_codes_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_code(r.code()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
    }
}
