//! Source specifications: the delivery contract of one source, as YAML.
//!
//! A spec says how a partner writes its file (CSV dialect or Parquet), which
//! partner header maps to which canonical column, each column's type and
//! rules, and the row rules that span columns. Specs are checked completely
//! when they are loaded, so a broken spec never reaches a delivery: every
//! problem is reported with the spec file, line and column.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use koppel_contract::DeliveryFileName;
use serde::Deserialize;

use crate::error::SpecError;

/// Fraction of rejected rows above which a delivery fails, unless the spec
/// says otherwise.
pub const DEFAULT_MAX_REJECT_FRACTION: f64 = 0.01;

/// One source of the delivery contract.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Canonical source name, e.g. `pfzw_dienstverbanden`. Delivery files are
    /// named `<source>_<period>.<ext>`.
    pub source: String,
    /// The partner that delivers it.
    pub partner: String,
    /// What one row is.
    #[serde(default)]
    pub description: String,
    pub format: FormatSpec,
    #[serde(default = "default_max_reject_fraction")]
    pub max_reject_fraction: f64,
    pub columns: Vec<ColumnSpec>,
    /// Rules that span several columns of a row.
    #[serde(default)]
    pub row_rules: Vec<RowRule>,
    /// Partner headers that may be present and are dropped unread.
    #[serde(default)]
    pub ignored_columns: Vec<String>,
}

fn default_max_reject_fraction() -> f64 {
    DEFAULT_MAX_REJECT_FRACTION
}

/// How the partner writes its file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawFormat")]
pub enum FormatSpec {
    Csv(CsvDialect),
    Parquet,
}

/// The CSV dialect of one partner.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub decimal_separator: u8,
    pub date_format: DatePattern,
    pub month_format: DatePattern,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    kind: FileKind,
    delimiter: Option<String>,
    decimal_separator: Option<String>,
    date_format: Option<String>,
    month_format: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum FileKind {
    Csv,
    Parquet,
}

fn single_ascii(what: &str, s: &str) -> Result<u8, String> {
    let unescaped = if s == "\\t" { "\t" } else { s };
    match unescaped.as_bytes() {
        [b] if b.is_ascii() && *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(format!(
            "{what} must be a single ASCII character other than a quote or line break, got {s:?}"
        )),
    }
}

impl TryFrom<RawFormat> for FormatSpec {
    type Error = String;

    fn try_from(raw: RawFormat) -> Result<Self, String> {
        match raw.kind {
            FileKind::Parquet => {
                if raw.delimiter.is_some()
                    || raw.decimal_separator.is_some()
                    || raw.date_format.is_some()
                    || raw.month_format.is_some()
                {
                    return Err(
                        "a parquet format takes no delimiter, decimal_separator, date_format or month_format"
                            .into(),
                    );
                }
                Ok(FormatSpec::Parquet)
            }
            FileKind::Csv => {
                let delimiter = single_ascii(
                    "delimiter",
                    raw.delimiter
                        .as_deref()
                        .ok_or("a csv format needs a delimiter")?,
                )?;
                let decimal_separator = single_ascii(
                    "decimal_separator",
                    raw.decimal_separator.as_deref().unwrap_or("."),
                )?;
                if decimal_separator != b'.' && decimal_separator != b',' {
                    return Err("decimal_separator must be \".\" or \",\"".into());
                }
                if decimal_separator == delimiter {
                    return Err("decimal_separator and delimiter must differ".into());
                }
                let date_format =
                    DatePattern::parse(raw.date_format.as_deref().unwrap_or("YYYY-MM-DD"), true)?;
                let month_format =
                    DatePattern::parse(raw.month_format.as_deref().unwrap_or("YYYYMM"), false)?;
                Ok(FormatSpec::Csv(CsvDialect {
                    delimiter,
                    decimal_separator,
                    date_format,
                    month_format,
                }))
            }
        }
    }
}

/// A fixed-width date layout such as `YYYY-MM-DD`, `DD-MM-YYYY` or `YYYYMM`.
///
/// Partners write dates in one fixed layout each; parsing positionally is an
/// order of magnitude faster than a general strftime parser on the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePattern {
    text: String,
    year_at: usize,
    month_at: usize,
    day_at: Option<usize>,
    /// Every byte that is not part of a field, with its position.
    literals: Vec<(usize, u8)>,
    len: usize,
}

impl DatePattern {
    /// Parses a layout made of `YYYY`, `MM`, `DD` and literal separators.
    pub fn parse(text: &str, with_day: bool) -> Result<Self, String> {
        let b = text.as_bytes();
        let (mut year_at, mut month_at, mut day_at) = (None, None, None);
        let mut literals = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i..].starts_with(b"YYYY") {
                if year_at.replace(i).is_some() {
                    return Err(format!("date format {text:?} has YYYY twice"));
                }
                i += 4;
            } else if b[i..].starts_with(b"MM") {
                if month_at.replace(i).is_some() {
                    return Err(format!("date format {text:?} has MM twice"));
                }
                i += 2;
            } else if b[i..].starts_with(b"DD") {
                if day_at.replace(i).is_some() {
                    return Err(format!("date format {text:?} has DD twice"));
                }
                i += 2;
            } else if b[i].is_ascii() && !b[i].is_ascii_alphanumeric() {
                literals.push((i, b[i]));
                i += 1;
            } else {
                return Err(format!(
                    "date format {text:?}: only YYYY, MM, DD and separators are allowed"
                ));
            }
        }
        let (Some(year_at), Some(month_at)) = (year_at, month_at) else {
            return Err(format!("date format {text:?} needs YYYY and MM"));
        };
        if with_day != day_at.is_some() {
            return Err(if with_day {
                format!("date format {text:?} needs DD")
            } else {
                format!("month format {text:?} must not have DD")
            });
        }
        Ok(DatePattern {
            text: text.to_owned(),
            year_at,
            month_at,
            day_at,
            literals,
            len: b.len(),
        })
    }

    /// The layout as written in the spec.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Splits a field into (year, month, day); day is 1 for month layouts.
    /// Returns `None` when the field does not follow the layout; whether the
    /// date exists is the caller's question.
    #[inline]
    pub fn split(&self, field: &[u8]) -> Option<(i32, u32, u32)> {
        if field.len() != self.len {
            return None;
        }
        for &(at, byte) in &self.literals {
            if field[at] != byte {
                return None;
            }
        }
        let year = digits(&field[self.year_at..self.year_at + 4])?;
        let month = digits(&field[self.month_at..self.month_at + 2])?;
        let day = match self.day_at {
            Some(at) => digits(&field[at..at + 2])?,
            None => 1,
        };
        Some((year as i32, month, day))
    }
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

pub use koppel_contract::IdentifierType;

/// One column: partner header, canonical name, type and rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawColumn")]
pub struct ColumnSpec {
    /// The partner's header (matched case-insensitively, trimmed).
    pub header: String,
    /// Canonical snake_case name used by the rest of the pipeline.
    pub name: String,
    pub kind: ColumnKind,
    pub required: bool,
    /// No two accepted rows may share a value (for reference tables).
    pub unique: bool,
}

impl ColumnSpec {
    /// The identifier type, when this column holds an identifier.
    pub fn identifier(&self) -> Option<IdentifierType> {
        match self.kind {
            ColumnKind::Identifier(t) => Some(t),
            _ => None,
        }
    }
}

/// The type of a column, with the rules that belong to the type.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    Identifier(IdentifierType),
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Decimal {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A calendar date, Arrow Date32.
    Date,
    /// A calendar month, Arrow Date32 of its first day.
    Month,
    Enum {
        values: Vec<String>,
    },
    /// In CSV written as `true_value` / `false_value`; native in Parquet.
    Bool {
        true_value: String,
        false_value: String,
    },
    /// A code of exactly this many ASCII digits (leading zeros matter).
    Code {
        digits: u8,
    },
    Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    header: String,
    name: String,
    #[serde(rename = "type")]
    kind: RawKind,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    min: Option<f64>,
    max: Option<f64>,
    values: Option<Vec<String>>,
    true_value: Option<String>,
    false_value: Option<String>,
    digits: Option<u8>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Bsn,
    Kvk,
    Integer,
    Decimal,
    Date,
    Month,
    Enum,
    Bool,
    Code,
    Text,
}

fn whole(what: &str, v: f64) -> Result<i64, String> {
    if v.fract() != 0.0 || !v.is_finite() || v.abs() > 9.0e15 {
        return Err(format!(
            "{what} of an integer column must be a whole number, got {v}"
        ));
    }
    Ok(v as i64)
}

impl TryFrom<RawColumn> for ColumnSpec {
    type Error = String;

    fn try_from(raw: RawColumn) -> Result<Self, String> {
        let name = raw.name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("column name {name:?} must be snake_case ASCII"));
        }
        if raw.header.trim().is_empty() {
            return Err(format!("column {name}: header is empty"));
        }
        let numeric = matches!(raw.kind, RawKind::Integer | RawKind::Decimal);
        if !numeric && (raw.min.is_some() || raw.max.is_some()) {
            return Err(format!(
                "column {name}: min/max only apply to integer and decimal columns"
            ));
        }
        if raw.kind != RawKind::Enum && raw.values.is_some() {
            return Err(format!("column {name}: values only apply to enum columns"));
        }
        if raw.kind != RawKind::Bool && (raw.true_value.is_some() || raw.false_value.is_some()) {
            return Err(format!(
                "column {name}: true_value/false_value only apply to bool columns"
            ));
        }
        if raw.kind != RawKind::Code && raw.digits.is_some() {
            return Err(format!(
                "column {name}: digits only applies to code columns"
            ));
        }
        if let (Some(min), Some(max)) = (raw.min, raw.max)
            && min > max
        {
            return Err(format!("column {name}: min {min} is above max {max}"));
        }
        if raw.unique && matches!(raw.kind, RawKind::Decimal | RawKind::Enum | RawKind::Bool) {
            return Err(format!(
                "column {name}: unique does not apply to decimal, enum or bool columns"
            ));
        }
        let kind = match raw.kind {
            RawKind::Bsn => ColumnKind::Identifier(IdentifierType::Bsn),
            RawKind::Kvk => ColumnKind::Identifier(IdentifierType::Kvk),
            RawKind::Integer => ColumnKind::Integer {
                min: raw.min.map(|v| whole("min", v)).transpose()?,
                max: raw.max.map(|v| whole("max", v)).transpose()?,
            },
            RawKind::Decimal => ColumnKind::Decimal {
                min: raw.min,
                max: raw.max,
            },
            RawKind::Date => ColumnKind::Date,
            RawKind::Month => ColumnKind::Month,
            RawKind::Enum => {
                let values = raw
                    .values
                    .ok_or_else(|| format!("column {name}: an enum needs values"))?;
                if values.is_empty() {
                    return Err(format!("column {name}: an enum needs at least one value"));
                }
                let mut seen = HashSet::new();
                for v in &values {
                    if v.is_empty() || !seen.insert(v.as_str()) {
                        return Err(format!(
                            "column {name}: enum values must be non-empty and distinct"
                        ));
                    }
                }
                ColumnKind::Enum { values }
            }
            RawKind::Bool => {
                let true_value = raw.true_value.unwrap_or_else(|| "true".into());
                let false_value = raw.false_value.unwrap_or_else(|| "false".into());
                if true_value == false_value || true_value.is_empty() || false_value.is_empty() {
                    return Err(format!(
                        "column {name}: true_value and false_value must differ"
                    ));
                }
                ColumnKind::Bool {
                    true_value,
                    false_value,
                }
            }
            RawKind::Code => {
                let digits = raw
                    .digits
                    .ok_or_else(|| format!("column {name}: a code needs digits"))?;
                if digits == 0 || digits > 32 {
                    return Err(format!("column {name}: digits must be 1..=32"));
                }
                ColumnKind::Code { digits }
            }
            RawKind::Text => ColumnKind::Text,
        };
        Ok(ColumnSpec {
            header: raw.header.trim().to_owned(),
            name,
            kind,
            required: raw.required,
            unique: raw.unique,
        })
    }
}

/// A rule that spans columns of one row, written as a one-key map such as
/// `- not_before: { column: recovered_on, reference: sick_from }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRowRule")]
pub enum RowRule {
    /// The person is at least `years` old at `at`: for a month column, on the
    /// last day of that month; for a date column, on that day.
    MinAge {
        birth_date: String,
        at: String,
        years: u32,
    },
    /// `column` is not earlier than `reference` when both are present.
    NotBefore { column: String, reference: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRowRule {
    min_age: Option<RawMinAge>,
    not_before: Option<RawNotBefore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMinAge {
    birth_date: String,
    at: String,
    years: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotBefore {
    column: String,
    reference: String,
}

impl TryFrom<RawRowRule> for RowRule {
    type Error = String;

    fn try_from(raw: RawRowRule) -> Result<Self, String> {
        match (raw.min_age, raw.not_before) {
            (Some(m), None) => Ok(RowRule::MinAge {
                birth_date: m.birth_date,
                at: m.at,
                years: m.years,
            }),
            (None, Some(n)) => Ok(RowRule::NotBefore {
                column: n.column,
                reference: n.reference,
            }),
            _ => Err("a row rule is exactly one of min_age or not_before".into()),
        }
    }
}

/// Where in the spec text a checked-after-parsing problem lies. The YAML
/// parser knows positions only for what it rejects itself; problems found in
/// a column or in the format are traced back to the line that declares it.
fn locate(text: &str, message: &str) -> Option<(usize, usize)> {
    let needle = if let Some(rest) = message.strip_prefix("column ") {
        let name = rest.split([':', ' ']).next()?;
        format!("name: {name}")
    } else if message.contains("format")
        || message.contains("delimiter")
        || message.contains("decimal_separator")
    {
        "format:".to_owned()
    } else if message.contains("row rule")
        || message.contains("min_age")
        || message.contains("not_before")
    {
        "row_rules:".to_owned()
    } else {
        return None;
    };
    text.lines().enumerate().find_map(|(i, line)| {
        let at = line.find(&needle)?;
        let end = at + needle.len();
        let boundary = line[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        boundary.then_some((i + 1, at + 1))
    })
}

impl SourceSpec {
    /// Reads and checks a spec file.
    pub fn from_path(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and checks a spec; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self, SpecError> {
        let spec: SourceSpec = serde_yaml::from_str(text).map_err(|e| {
            let message = e.to_string();
            let parsed = e.location().map(|l| (l.line(), l.column()));
            let (line, column) = match parsed {
                Some((1, 1)) | None => locate(text, &message).or(parsed),
                known => known,
            }
            .unzip();
            SpecError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                message,
            }
        })?;
        spec.check().map_err(|message| {
            let (line, column) = locate(text, &message).unzip();
            SpecError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                message,
            }
        })?;
        Ok(spec)
    }

    /// The column with this canonical name.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The CSV dialect, when the source is delivered as CSV.
    pub fn csv_dialect(&self) -> Option<&CsvDialect> {
        match &self.format {
            FormatSpec::Csv(d) => Some(d),
            FormatSpec::Parquet => None,
        }
    }

    /// Checks what no single column can: names unique, rules pointing at
    /// columns of the right type.
    fn check(&self) -> Result<(), String> {
        if self.source.is_empty()
            || !self
                .source
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "source name {:?} must be snake_case ASCII",
                self.source
            ));
        }
        if !(0.0..=1.0).contains(&self.max_reject_fraction) {
            return Err(format!(
                "max_reject_fraction must be between 0 and 1, got {}",
                self.max_reject_fraction
            ));
        }
        if self.columns.is_empty() {
            return Err("a source needs at least one column".into());
        }
        let mut names = HashSet::new();
        let mut headers = HashSet::new();
        for c in &self.columns {
            if !names.insert(c.name.as_str()) {
                return Err(format!("column name {} appears twice", c.name));
            }
            if !headers.insert(c.header.to_lowercase()) {
                return Err(format!("header {} appears twice", c.header));
            }
        }
        for h in &self.ignored_columns {
            if !headers.insert(h.trim().to_lowercase()) {
                return Err(format!(
                    "ignored column {h} is also a column or listed twice"
                ));
            }
        }
        let date_like = |name: &str, what: &str, months_ok: bool| -> Result<(), String> {
            match self.column(name).map(|c| &c.kind) {
                Some(ColumnKind::Date) => Ok(()),
                Some(ColumnKind::Month) if months_ok => Ok(()),
                Some(_) => Err(format!("{what} column {name} is not a date column")),
                None => Err(format!(
                    "{what} column {name} is not a column of this source"
                )),
            }
        };
        for rule in &self.row_rules {
            match rule {
                RowRule::MinAge { birth_date, at, .. } => {
                    date_like(birth_date, "min_age birth_date", false)?;
                    date_like(at, "min_age at", true)?;
                }
                RowRule::NotBefore { column, reference } => {
                    date_like(column, "not_before", false)?;
                    date_like(reference, "not_before reference", false)?;
                }
            }
        }
        Ok(())
    }
}

/// All source specs of a project, by source name.
#[derive(Debug, Clone, Default)]
pub struct SpecSet {
    specs: Vec<(PathBuf, SourceSpec)>,
}

impl SpecSet {
    /// Loads every `*.yaml` spec in a directory, in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Self, SpecError> {
        let entries = std::fs::read_dir(dir).map_err(|source| SpecError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SpecError::Io {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut set = SpecSet::default();
        for path in paths {
            set.add(path.clone(), SourceSpec::from_path(&path)?)?;
        }
        Ok(set)
    }

    /// The contract's source specs as this build of Koppel carries them
    /// (`pipelines/sources/*.yaml`, compiled in), so `koppel validate` and
    /// `koppel partner prepare` work without a checkout. Each spec is
    /// named `<embedded>/<file>` in errors.
    pub fn contract() -> Result<Self, SpecError> {
        let mut set = SpecSet::default();
        for (file, text) in koppel_contract::specs::SOURCE_SPECS {
            let path = Path::new("<embedded>").join(file);
            set.add(path.clone(), SourceSpec::from_yaml(text, &path)?)?;
        }
        Ok(set)
    }

    fn add(&mut self, path: PathBuf, spec: SourceSpec) -> Result<(), SpecError> {
        if let Some((other, _)) = self.specs.iter().find(|(_, s)| s.source == spec.source) {
            return Err(SpecError::DuplicateSource {
                source_name: spec.source,
                first: other.clone(),
                second: path,
            });
        }
        self.specs.push((path, spec));
        Ok(())
    }

    pub fn get(&self, source: &str) -> Option<&SourceSpec> {
        self.specs
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.source == source)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SourceSpec> {
        self.specs.iter().map(|(_, s)| s)
    }

    pub fn names(&self) -> Vec<&str> {
        self.iter().map(|s| s.source.as_str()).collect()
    }

    /// The file's name taken apart against these specs' sources
    /// (`<source>_<period>.<csv|parquet>[.sealed]`, see
    /// [`DeliveryFileName`]).
    pub fn delivery_name(&self, file: &Path) -> Option<DeliveryFileName> {
        DeliveryFileName::of_path(file, self.iter().map(|s| s.source.as_str()))
    }

    /// The spec of the source a delivery file is named for, as in
    /// `pfzw_dienstverbanden_2024.csv`.
    pub fn for_file(&self, file: &Path) -> Option<&SourceSpec> {
        self.get(&self.delivery_name(file)?.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SourceSpec, SpecError> {
        SourceSpec::from_yaml(yaml, Path::new("t.yaml"))
    }

    const MINIMAL: &str = "source: s\npartner: P\nformat: {kind: csv, delimiter: ';'}\ncolumns:\n  - {header: BSN, name: bsn, type: bsn, required: true}\n";

    #[test]
    fn minimal_spec_parses_with_defaults() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.max_reject_fraction, DEFAULT_MAX_REJECT_FRACTION);
        let d = s.csv_dialect().unwrap();
        assert_eq!(d.delimiter, b';');
        assert_eq!(d.decimal_separator, b'.');
        assert_eq!(d.date_format.as_str(), "YYYY-MM-DD");
        assert_eq!(s.columns[0].identifier(), Some(IdentifierType::Bsn));
    }

    #[test]
    fn unknown_field_is_reported_with_line_and_column() {
        let yaml = MINIMAL.replace("required: true}", "required: true, colour: red}");
        match parse(&yaml).unwrap_err() {
            SpecError::Invalid {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!(line, Some(5));
                assert!(column.is_some());
                assert!(message.contains("colour"), "{message}");
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn type_rules_are_checked_where_they_are_written() {
        let bad = [
            (
                "type: bsn, required: true}",
                "type: bsn, min: 3}",
                "min/max",
            ),
            ("type: bsn, required: true}", "type: enum}", "needs values"),
            ("type: bsn, required: true}", "type: code}", "needs digits"),
            (
                "type: bsn, required: true}",
                "type: integer, min: 1.5}",
                "whole",
            ),
            (
                "type: bsn, required: true}",
                "type: decimal, min: 5, max: 1}",
                "above max",
            ),
            (
                "type: bsn, required: true}",
                "type: enum, values: [A, A]}",
                "distinct",
            ),
            ("delimiter: ';'", "delimiter: ';;'", "single ASCII"),
            (
                "delimiter: ';'",
                "delimiter: ';', date_format: DD-MM",
                "needs YYYY",
            ),
            (
                "delimiter: ';'",
                "delimiter: ',', decimal_separator: ','",
                "differ",
            ),
        ];
        for (from, to, expect) in bad {
            let yaml = MINIMAL.replace(from, to);
            let err = parse(&yaml).unwrap_err().to_string();
            assert!(err.contains(expect), "{to}: {err}");
            let expected_line = if to.contains("type:") {
                "t.yaml:5:"
            } else {
                "t.yaml:3:"
            };
            assert!(err.contains(expected_line), "{to}: {err}");
        }
    }

    #[test]
    fn row_rules_must_point_at_date_columns() {
        let yaml =
            format!("{MINIMAL}row_rules:\n  - not_before: {{column: bsn, reference: nope}}\n");
        let err = parse(&yaml).unwrap_err().to_string();
        assert!(err.contains("not a date column"), "{err}");
        assert!(err.contains("t.yaml:6:"), "{err}");
        let yaml = format!("{MINIMAL}row_rules:\n  - {{}}\n");
        let err = parse(&yaml).unwrap_err().to_string();
        assert!(err.contains("exactly one of"), "{err}");
    }

    #[test]
    fn date_patterns_split_positionally() {
        let ymd = DatePattern::parse("YYYY-MM-DD", true).unwrap();
        assert_eq!(ymd.split(b"2024-02-29"), Some((2024, 2, 29)));
        assert_eq!(ymd.split(b"2024/02/29"), None);
        assert_eq!(ymd.split(b"2024-2-29"), None);
        let dmy = DatePattern::parse("DD-MM-YYYY", true).unwrap();
        assert_eq!(dmy.split(b"31-12-2023"), Some((2023, 12, 31)));
        assert_eq!(dmy.split(b"3a-12-2023"), None);
        let ym = DatePattern::parse("YYYYMM", false).unwrap();
        assert_eq!(ym.split(b"202401"), Some((2024, 1, 1)));
        assert!(DatePattern::parse("YYYYMMDD", false).is_err());
        assert!(DatePattern::parse("YY-MM-DD", true).is_err());
    }

    #[test]
    fn spec_set_finds_source_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), MINIMAL).unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            MINIMAL.replace("source: s", "source: s_long"),
        )
        .unwrap();
        let set = SpecSet::load_dir(dir.path()).unwrap();
        assert_eq!(set.names(), ["s", "s_long"]);
        assert_eq!(
            set.for_file(Path::new("x/s_long_2024.csv")).unwrap().source,
            "s_long"
        );
        assert_eq!(set.for_file(Path::new("s_2024.csv")).unwrap().source, "s");
        assert!(set.for_file(Path::new("sx_2024.csv")).is_none());
        std::fs::write(dir.path().join("c.yaml"), MINIMAL).unwrap();
        assert!(matches!(
            SpecSet::load_dir(dir.path()),
            Err(SpecError::DuplicateSource { .. })
        ));
    }

    fn project_specs() -> SpecSet {
        SpecSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/sources"))
            .unwrap()
    }

    /// The enumerations ingest enforces (the YAML specs) are the ones the
    /// contract crate defines, which linking codes as integers.
    #[test]
    fn spec_enumerations_are_the_contract_s() {
        for set in [project_specs(), SpecSet::contract().unwrap()] {
            for e in koppel_contract::codes::ALL {
                let spec = set.get(e.source).unwrap();
                match &spec.column(e.column).unwrap().kind {
                    ColumnKind::Enum { values } => assert_eq!(values, e.values, "{}", e.column),
                    other => panic!("{} is no enumeration: {other:?}", e.column),
                }
            }
        }
    }

    /// The specs compiled into the binary are the project's, source by
    /// source and column by column, and cover the contract's sources.
    #[test]
    fn embedded_specs_are_the_project_s() {
        let disk = project_specs();
        let embedded = SpecSet::contract().unwrap();
        assert_eq!(disk.names(), embedded.names());
        for spec in disk.iter() {
            assert_eq!(Some(spec), embedded.get(&spec.source));
        }
        for source in koppel_contract::Source::ALL {
            assert!(embedded.get(source.contract_name()).is_some(), "{source}");
        }
        let file = Path::new("inbox/izz_monitor_2024.parquet.sealed");
        assert_eq!(embedded.for_file(file).unwrap().source, "izz_monitor");
        assert_eq!(embedded.delivery_name(file).unwrap().period, "2024");
    }
}
