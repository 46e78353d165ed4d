//! Typed column builders: one per canonical column, turning partner fields
//! into an Arrow array and telling which field broke which rule.
//!
//! The CSV path feeds them bytes, the Parquet path typed values; both end in
//! the same checks, so a rule means the same thing whatever the format.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, DictionaryArray, FixedSizeBinaryBuilder,
    Float64Builder, Int32Builder, Int64Builder, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type};
use koppel_contract::civil;

use crate::rules::{Rule, canonical_bsn, canonical_kvk, decode_pseudonym};
use crate::spec::{ColumnKind, ColumnSpec, CsvDialect, DatePattern, IdentifierType};

pub(crate) use koppel_contract::IdentifierMode;
pub(crate) use koppel_contract::meta::{
    META_IDENTIFIER, META_IDENTIFIER_MODE, META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE,
    PSEUDONYM_BYTES,
};

/// The canonical Arrow field of a column.
pub fn canonical_field(col: &ColumnSpec, mode: IdentifierMode) -> Field {
    let (name, data_type) = match (&col.kind, mode) {
        (ColumnKind::Identifier(_), IdentifierMode::PrePseudonymised) => (
            format!("{}_p1", col.name),
            DataType::FixedSizeBinary(PSEUDONYM_BYTES as i32),
        ),
        (ColumnKind::Identifier(_), IdentifierMode::Raw) => (col.name.clone(), DataType::Utf8),
        (ColumnKind::Integer { .. }, _) => (col.name.clone(), DataType::Int64),
        (ColumnKind::Decimal { .. }, _) => (col.name.clone(), DataType::Float64),
        (ColumnKind::Date | ColumnKind::Month, _) => (col.name.clone(), DataType::Date32),
        (ColumnKind::Enum { .. }, _) => (
            col.name.clone(),
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        ),
        (ColumnKind::Bool { .. }, _) => (col.name.clone(), DataType::Boolean),
        (ColumnKind::Code { .. } | ColumnKind::Text, _) => (col.name.clone(), DataType::Utf8),
    };
    let field = Field::new(name, data_type, !col.required);
    match col.identifier() {
        Some(t) => field.with_metadata(
            [
                (META_IDENTIFIER.to_owned(), t.as_str().to_owned()),
                (META_IDENTIFIER_MODE.to_owned(), mode.as_str().to_owned()),
            ]
            .into(),
        ),
        None => field,
    }
}

/// The textual notation of one source, for the fields that arrive as text.
#[derive(Debug, Clone)]
pub(crate) struct Notation {
    pub decimal_separator: u8,
    pub date: DatePattern,
    pub month: DatePattern,
}

impl Notation {
    pub fn of(dialect: Option<&CsvDialect>) -> Notation {
        match dialect {
            Some(d) => Notation {
                decimal_separator: d.decimal_separator,
                date: d.date_format.clone(),
                month: d.month_format.clone(),
            },
            // Parquet delivers typed values; text fallbacks use ISO notation.
            None => Notation {
                decimal_separator: b'.',
                date: DatePattern::parse("YYYY-MM-DD", true).expect("built-in pattern"),
                month: DatePattern::parse("YYYYMM", false).expect("built-in pattern"),
            },
        }
    }
}

enum Out {
    Utf8(StringBuilder),
    Pseudonym(FixedSizeBinaryBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Enum(Int32Builder, Arc<StringArray>, Option<Vec<u64>>),
    Bool(BooleanBuilder),
}

pub(crate) struct ColumnBuilder {
    kind: ColumnKind,
    required: bool,
    notation: Arc<Notation>,
    out: Out,
}

impl ColumnBuilder {
    pub fn new(
        col: &ColumnSpec,
        mode: IdentifierMode,
        notation: Arc<Notation>,
        capacity: usize,
    ) -> Self {
        let out = match (&col.kind, mode) {
            (ColumnKind::Identifier(_), IdentifierMode::PrePseudonymised) => Out::Pseudonym(
                FixedSizeBinaryBuilder::with_capacity(capacity, PSEUDONYM_BYTES as i32),
            ),
            (ColumnKind::Identifier(t), IdentifierMode::Raw) => {
                Out::Utf8(StringBuilder::with_capacity(capacity, capacity * t.width()))
            }
            (ColumnKind::Code { digits }, _) => Out::Utf8(StringBuilder::with_capacity(
                capacity,
                capacity * *digits as usize,
            )),
            (ColumnKind::Text, _) => {
                Out::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            (ColumnKind::Integer { .. }, _) => Out::Int(Int64Builder::with_capacity(capacity)),
            (ColumnKind::Decimal { .. }, _) => Out::Float(Float64Builder::with_capacity(capacity)),
            (ColumnKind::Date | ColumnKind::Month, _) => {
                Out::Date(Date32Builder::with_capacity(capacity))
            }
            (ColumnKind::Enum { values }, _) => Out::Enum(
                Int32Builder::with_capacity(capacity),
                Arc::new(StringArray::from_iter_values(values)),
                values.iter().map(|v| short_code(v.as_bytes())).collect(),
            ),
            (ColumnKind::Bool { .. }, _) => Out::Bool(BooleanBuilder::with_capacity(capacity)),
        };
        ColumnBuilder {
            kind: col.kind.clone(),
            required: col.required,
            notation,
            out,
        }
    }

    fn push_null(&mut self) {
        match &mut self.out {
            Out::Utf8(b) => b.append_null(),
            Out::Pseudonym(b) => b.append_null(),
            Out::Int(b) => b.append_null(),
            Out::Float(b) => b.append_null(),
            Out::Date(b) => b.append_null(),
            Out::Enum(b, ..) => b.append_null(),
            Out::Bool(b) => b.append_null(),
        }
    }

    /// A missing value: null, or a `required` reject.
    pub fn push_missing(&mut self) -> Result<(), Rule> {
        self.push_null();
        if self.required {
            Err(Rule::Required)
        } else {
            Ok(())
        }
    }

    /// Parses one field as written in a text file. On a broken rule a null
    /// takes the row's place, so the arrays stay aligned until the row is
    /// filtered out.
    #[inline]
    pub fn push_text(&mut self, field: &[u8]) -> Result<(), Rule> {
        // Identifier canonicalisation does its own stripping; a pseudonym must
        // be exact; every other value ignores surrounding white space.
        let trimmed = field.trim_ascii();
        if trimmed.is_empty() {
            return self.push_missing();
        }
        let result = self.parse_text(field, trimmed);
        if result.is_err() {
            self.push_null();
        }
        result
    }

    #[inline]
    fn parse_text(&mut self, field: &[u8], trimmed: &[u8]) -> Result<(), Rule> {
        let notation = &*self.notation;
        match (&self.kind, &mut self.out) {
            (ColumnKind::Identifier(IdentifierType::Bsn), Out::Utf8(b)) => {
                let mut canon = [0u8; 9];
                if !canonical_bsn(field, &mut canon) {
                    return Err(Rule::InvalidBsn);
                }
                b.append_value(ascii(&canon));
            }
            (ColumnKind::Identifier(IdentifierType::Kvk), Out::Utf8(b)) => {
                let mut canon = [0u8; 8];
                if !canonical_kvk(field, &mut canon) {
                    return Err(Rule::InvalidKvk);
                }
                b.append_value(ascii(&canon));
            }
            (ColumnKind::Identifier(_), Out::Pseudonym(b)) => {
                let mut bytes = [0u8; 32];
                if !decode_pseudonym(field, &mut bytes) {
                    return Err(Rule::InvalidPseudonym);
                }
                b.append_value(bytes).map_err(|_| Rule::InvalidPseudonym)?;
            }
            (ColumnKind::Integer { min, max }, Out::Int(b)) => {
                let v = parse_integer(trimmed).ok_or(Rule::InvalidInteger)?;
                check_range(v, *min, *max)?;
                b.append_value(v);
            }
            (ColumnKind::Decimal { min, max }, Out::Float(b)) => {
                let v = parse_decimal(trimmed, notation.decimal_separator)
                    .ok_or(Rule::InvalidDecimal)?;
                check_range(v, *min, *max)?;
                b.append_value(v);
            }
            (ColumnKind::Date, Out::Date(b)) => {
                b.append_value(date32(&notation.date, trimmed).ok_or(Rule::InvalidDate)?);
            }
            (ColumnKind::Month, Out::Date(b)) => {
                b.append_value(date32(&notation.month, trimmed).ok_or(Rule::InvalidMonth)?);
            }
            (ColumnKind::Enum { values }, Out::Enum(b, _, codes)) => {
                // Contract codes are short: one integer comparison each
                // instead of a string comparison per value per row.
                let key = match codes {
                    Some(codes) => {
                        short_code(trimmed).and_then(|c| codes.iter().position(|&v| v == c))
                    }
                    None => values.iter().position(|v| v.as_bytes() == trimmed),
                }
                .ok_or(Rule::NotInEnum)?;
                b.append_value(key as i32);
            }
            (
                ColumnKind::Bool {
                    true_value,
                    false_value,
                },
                Out::Bool(b),
            ) => {
                if trimmed == true_value.as_bytes() {
                    b.append_value(true);
                } else if trimmed == false_value.as_bytes() {
                    b.append_value(false);
                } else {
                    return Err(Rule::InvalidBool);
                }
            }
            (ColumnKind::Code { digits }, Out::Utf8(b)) => {
                if trimmed.len() != *digits as usize || !trimmed.iter().all(u8::is_ascii_digit) {
                    return Err(Rule::InvalidCode);
                }
                b.append_value(ascii(trimmed));
            }
            (ColumnKind::Text, Out::Utf8(b)) => {
                // Records were checked for UTF-8 as a whole before parsing.
                b.append_value(std::str::from_utf8(field).unwrap_or("\u{FFFD}"));
            }
            _ => unreachable!("builder output always matches its column kind"),
        }
        Ok(())
    }

    /// A typed integer from Parquet.
    pub fn push_i64(&mut self, v: i64) -> Result<(), Rule> {
        let result = match (&self.kind, &mut self.out) {
            (ColumnKind::Integer { min, max }, Out::Int(b)) => {
                check_range(v, *min, *max).map(|()| b.append_value(v))
            }
            (ColumnKind::Decimal { .. }, _) => return self.push_f64(v as f64),
            _ => unreachable!("integers are only read into numeric columns"),
        };
        if result.is_err() {
            self.push_null();
        }
        result
    }

    /// A typed float from Parquet.
    pub fn push_f64(&mut self, v: f64) -> Result<(), Rule> {
        let result = match (&self.kind, &mut self.out) {
            (ColumnKind::Decimal { min, max }, Out::Float(b)) => {
                if v.is_finite() {
                    check_range(v, *min, *max).map(|()| b.append_value(v))
                } else {
                    Err(Rule::InvalidDecimal)
                }
            }
            _ => unreachable!("floats are only read into decimal columns"),
        };
        if result.is_err() {
            self.push_null();
        }
        result
    }

    /// A typed boolean from Parquet.
    pub fn push_bool(&mut self, v: bool) {
        match &mut self.out {
            Out::Bool(b) => b.append_value(v),
            _ => unreachable!("booleans are only read into bool columns"),
        }
    }

    /// A typed date (days since the epoch) from Parquet.
    pub fn push_date32(&mut self, v: i32) {
        match &mut self.out {
            Out::Date(b) => b.append_value(v),
            _ => unreachable!("dates are only read into date columns"),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.out {
            Out::Utf8(b) => Arc::new(b.finish()),
            Out::Pseudonym(b) => Arc::new(b.finish()),
            Out::Int(b) => Arc::new(b.finish()),
            Out::Float(b) => Arc::new(b.finish()),
            Out::Date(b) => Arc::new(b.finish()),
            Out::Bool(b) => Arc::new(b.finish()),
            Out::Enum(keys, values, _) => Arc::new(
                DictionaryArray::<Int32Type>::try_new(keys.finish(), values.clone())
                    .expect("keys index into the spec's values"),
            ),
        }
    }
}

/// A text of at most 7 bytes as one integer: its bytes and, in the last
/// byte, its length (so "V" and "V\0" differ).
fn short_code(b: &[u8]) -> Option<u64> {
    if b.len() > 7 {
        return None;
    }
    let mut word = [0u8; 8];
    word[..b.len()].copy_from_slice(b);
    word[7] = b.len() as u8;
    Some(u64::from_le_bytes(word))
}

fn ascii(b: &[u8]) -> &str {
    // Callers pass only bytes they checked to be ASCII digits.
    std::str::from_utf8(b).unwrap_or_default()
}

fn check_range<T: PartialOrd>(v: T, min: Option<T>, max: Option<T>) -> Result<(), Rule> {
    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
        Err(Rule::OutOfRange)
    } else {
        Ok(())
    }
}

/// `[+-]?[0-9]{1,18}`: anything longer cannot be a count or amount here.
#[inline]
pub(crate) fn parse_integer(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
    }
    Some(if neg { -v } else { v })
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `[+-]?[0-9]+(SEP[0-9]+)?` with the source's decimal separator. A dot in a
/// decimal-comma source is refused rather than guessed at: it is a thousands
/// separator in Dutch notation.
#[inline]
pub(crate) fn parse_decimal(b: &[u8], separator: u8) -> Option<f64> {
    let (neg, body) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (int_part, frac_part) = match memchr::memchr(separator, body) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    if int_part.is_empty() || frac_part.is_some_and(<[u8]>::is_empty) {
        return None;
    }
    let frac = frac_part.unwrap_or_default();
    let mut mantissa: u64 = 0;
    let n_digits = int_part.len() + frac.len();
    for &c in int_part.iter().chain(frac) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        if n_digits <= 15 {
            mantissa = mantissa * 10 + d as u64;
        }
    }
    let v = if n_digits <= 15 {
        // Below 2^53 both operands are exact in f64, so the one IEEE division
        // is correctly rounded: the same result as a full decimal parser.
        mantissa as f64 / POW10[frac.len()]
    } else {
        let mut s = String::with_capacity(n_digits + 1);
        s.push_str(std::str::from_utf8(int_part).ok()?);
        s.push('.');
        s.push_str(std::str::from_utf8(frac).ok()?);
        s.parse::<f64>().ok().filter(|v| v.is_finite())?
    };
    Some(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a date in the given layout, if it exists.
#[inline]
pub(crate) fn date32(pattern: &DatePattern, b: &[u8]) -> Option<i32> {
    let (y, m, d) = pattern.split(b)?;
    if !(1..=12).contains(&m) || d == 0 || d > civil::days_in_month(y, m) {
        return None;
    }
    i32::try_from(civil::days_from_civil(y, m, d)).ok()
}

/// (year, month, day) of a Date32 value.
#[inline]
pub(crate) fn ymd(days: i32) -> Option<(i32, u32, u32)> {
    Some(civil::civil_from_days(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-42"), Some(-42));
        assert_eq!(parse_integer(b"+7"), Some(7));
        assert_eq!(
            parse_integer(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"-",
            b"1.0",
            b"1,0",
            b"1e3",
            b"12 3",
            b"0x10",
            b"1234567890123456789",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimals_in_both_notations() {
        assert_eq!(parse_decimal(b"1234,56", b','), Some(1234.56));
        assert_eq!(parse_decimal(b"-0,5", b','), Some(-0.5));
        assert_eq!(parse_decimal(b"36", b','), Some(36.0));
        assert_eq!(parse_decimal(b"1234.56", b'.'), Some(1234.56));
        assert_eq!(parse_decimal(b"0.1", b'.'), Some(0.1));
        assert_eq!(
            parse_decimal(b"1234567890123456789.5", b'.'),
            Some(1234567890123456789.5)
        );
        for bad in [
            &b"1.234,56"[..],
            b"1234.56",
            b",5",
            b"5,",
            b"",
            b"-",
            b"NaN",
            b"inf",
            b"1e5",
            b"12x5",
            b"1,2,3",
        ] {
            assert_eq!(parse_decimal(bad, b','), None, "{bad:?}");
        }
    }

    #[test]
    fn enum_values_match_exactly_short_or_long() {
        let keys = |values: &[&str], inputs: &[&[u8]]| {
            let spec = ColumnSpec {
                header: "X".into(),
                name: "x".into(),
                kind: ColumnKind::Enum {
                    values: values.iter().map(|v| v.to_string()).collect(),
                },
                required: false,
                unique: false,
            };
            let mut b =
                ColumnBuilder::new(&spec, IdentifierMode::Raw, Arc::new(Notation::of(None)), 8);
            inputs
                .iter()
                .map(|&input| {
                    b.push_text(input).ok()?;
                    let Out::Enum(keys, ..) = &b.out else {
                        unreachable!()
                    };
                    keys.values_slice().last().copied()
                })
                .collect::<Vec<Option<i32>>>()
        };
        let inputs: [&[u8]; 8] = [
            b"V",
            b" M ",
            b"X",
            b"V\0",
            b"VV",
            b"v",
            b"ONBEKEND",
            b"ONBEKEN",
        ];
        // Every value of 7 bytes or less (compared as integers), and a list
        // with a longer one (compared as strings): the same answers.
        assert_eq!(
            keys(&["V", "M", "ONBEKEN"], &inputs),
            [Some(0), Some(1), None, None, None, None, None, Some(2)]
        );
        assert_eq!(
            keys(&["V", "M", "ONBEKEND"], &inputs),
            [Some(0), Some(1), None, None, None, None, Some(2), None]
        );
        assert_eq!(short_code(b"V"), short_code(b"V"));
        assert_ne!(short_code(b"V"), short_code(b"V\0"));
        assert_eq!(short_code(b"12345678"), None);
    }

    #[test]
    fn dates_exist_or_are_refused() {
        let p = DatePattern::parse("YYYY-MM-DD", true).unwrap();
        assert_eq!(date32(&p, b"1970-01-01"), Some(0));
        assert_eq!(date32(&p, b"2024-02-29"), Some(19782));
        assert_eq!(date32(&p, b"2023-02-29"), None);
        assert_eq!(date32(&p, b"2024-02-31"), None);
        assert_eq!(date32(&p, b"2024-13-01"), None);
        assert_eq!(date32(&p, b"2024-00-10"), None);
        assert_eq!(ymd(19782), Some((2024, 2, 29)));
        let m = DatePattern::parse("YYYYMM", false).unwrap();
        assert_eq!(date32(&m, b"202402"), date32(&p, b"2024-02-01"));
        assert_eq!(date32(&m, b"202413"), None);
    }
}
