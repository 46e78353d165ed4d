//! Errors of the ingest stage.
//!
//! A file-level problem stops the delivery: the message names the file, the
//! line (and column where there is one) and the rule that was broken. No
//! message ever carries a field's value, so no identifier can leak through an
//! error.

use std::path::PathBuf;

use thiserror::Error;

/// A source spec that cannot be used.
#[derive(Debug, Error)]
pub enum SpecError {
    #[error("{}: cannot read spec", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: invalid source spec: {message}", path.display(), location(*line, *column))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("source {source_name} is specified twice: {} and {}", first.display(), second.display())]
    DuplicateSource {
        source_name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// A delivery that cannot be read at all.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("{}: cannot read", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the file is empty (no header row)", path.display())]
    Empty { path: PathBuf },
    #[error("{}: the file has a header row but no data rows", path.display())]
    HeaderOnly { path: PathBuf },
    #[error("{}:1: required column {header} is missing from the header", path.display())]
    MissingColumn { path: PathBuf, header: String },
    #[error("{}:1:{field}: unknown column {header:?} (not in the source spec and not listed as ignored)", path.display())]
    UnknownColumn {
        path: PathBuf,
        header: String,
        field: usize,
    },
    #[error("{}:1:{field}: column {header:?} appears more than once in the header", path.display())]
    DuplicateHeader {
        path: PathBuf,
        header: String,
        field: usize,
    },
    #[error("{}:1: both {header} and {header}_P1 are present; a column is either raw or pre-pseudonymised", path.display())]
    AmbiguousIdentifier { path: PathBuf, header: String },
    #[error("{}:1: identifier columns mix raw and pre-pseudonymised (_P1) modes", path.display())]
    MixedIdentifierModes { path: PathBuf },
    #[error("{}:1: identifier mode is {found}, but {expected} was expected for this source", path.display())]
    IdentifierModeMismatch {
        path: PathBuf,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "{}:1: the header parses to a single column, but the source is delimited by {expected:?}{}",
        path.display(),
        found.map(|c| format!("; the file appears to use {c:?}")).unwrap_or_default()
    )]
    WrongDelimiter {
        path: PathBuf,
        expected: char,
        found: Option<char>,
    },
    #[error("{}:{line}:{field}: invalid UTF-8", path.display())]
    InvalidUtf8 {
        path: PathBuf,
        line: u64,
        field: usize,
    },
    #[error("{}:{line}:{field}: NUL byte in field", path.display())]
    NulByte {
        path: PathBuf,
        line: u64,
        field: usize,
    },
    #[error("{}:{line}: ragged row: {found} fields where the header has {expected}", path.display())]
    RaggedRow {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("{}:{line}: a quoted field opened on this line is never closed", path.display())]
    UnterminatedQuote { path: PathBuf, line: u64 },
    #[error("{}:{line}: record exceeds the size limit of {limit} bytes (an unterminated quote?)", path.display())]
    RecordTooLarge {
        path: PathBuf,
        line: u64,
        limit: usize,
    },
    #[error("{}:{line}:{field}: field exceeds the size limit of {limit} bytes", path.display())]
    FieldTooLarge {
        path: PathBuf,
        line: u64,
        field: usize,
        limit: usize,
    },
    #[error("{}:{line}: malformed CSV: {message}", path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: not a readable Parquet file: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: Parquet column {column} is missing", path.display())]
    ParquetMissingColumn { path: PathBuf, column: String },
    #[error("{}: Parquet column {column} has type {found}, expected {expected}", path.display())]
    ParquetColumnType {
        path: PathBuf,
        column: String,
        expected: &'static str,
        found: String,
    },
    #[error("{}: unreadable delivery manifest: {message}", path.display())]
    ManifestInvalid { path: PathBuf, message: String },
    #[error("{}: SHA-256 does not match the delivery manifest (file altered or truncated in transit)", path.display())]
    ManifestChecksum { path: PathBuf },
    #[error("{}: the delivery manifest announces {expected} rows, the file has {found}", path.display())]
    ManifestRowCount {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}: the delivery manifest is for source {found}, not {expected}", path.display())]
    ManifestSource {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{}: the delivery manifest declares identifier mode {declared}, the file is {found}", path.display())]
    ManifestIdentifierMode {
        path: PathBuf,
        declared: &'static str,
        found: &'static str,
    },
    #[error("{}: building Arrow data", path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },
}
