//! What ingest tells about a delivery: rejected rows, counts per rule and
//! column, and the verdict.
//!
//! Every rejected row is counted; each reject can also stream to a report
//! file, so a delivery with millions of bad rows is reported in full without
//! holding them in memory. A reject names line, column and rule; it carries
//! the offending value only for columns that are not identifiers.

use koppel_contract::csv::quote_field;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::columns::IdentifierMode;
use crate::rules::Rule;

/// One broken rule on one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// Line where the row starts (CSV), or the 1-based row number (Parquet).
    pub line: u64,
    /// Canonical column name.
    pub column: String,
    pub rule: Rule,
    /// The offending value, never for identifier columns. Truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Longest value a reject report repeats.
pub const MAX_REPORTED_VALUE_CHARS: usize = 64;

pub(crate) fn reportable_value(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(MAX_REPORTED_VALUE_CHARS).collect();
    if text.chars().count() > MAX_REPORTED_VALUE_CHARS {
        out.push('…');
    }
    out
}

/// Where rejects stream to as they are found.
pub trait RejectSink: Send {
    fn reject(&mut self, reject: &Reject) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// Report file layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReportFormat {
    /// `line,column,rule,value` with a header row.
    Csv,
    /// A JSON array of `{line, column, rule, value?}` objects.
    Json,
}

impl RejectReportFormat {
    /// By file extension: `.json` is JSON, anything else CSV.
    pub fn for_path(path: &Path) -> Self {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            RejectReportFormat::Json
        } else {
            RejectReportFormat::Csv
        }
    }
}

/// A reject report written to a file as rejects arrive.
pub struct RejectReportWriter<W: Write + Send> {
    format: RejectReportFormat,
    out: W,
    written: u64,
}

impl RejectReportWriter<BufWriter<File>> {
    pub fn create(path: &Path, format: RejectReportFormat) -> io::Result<Self> {
        Self::new(BufWriter::new(File::create(path)?), format)
    }
}

impl<W: Write + Send> RejectReportWriter<W> {
    pub fn new(mut out: W, format: RejectReportFormat) -> io::Result<Self> {
        match format {
            RejectReportFormat::Csv => out.write_all(b"line,column,rule,value\n")?,
            RejectReportFormat::Json => out.write_all(b"[")?,
        }
        Ok(RejectReportWriter {
            format,
            out,
            written: 0,
        })
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RejectSink for RejectReportWriter<W> {
    fn reject(&mut self, r: &Reject) -> io::Result<()> {
        match self.format {
            RejectReportFormat::Csv => {
                let value = quote_field(r.value.as_deref().unwrap_or(""));
                writeln!(self.out, "{},{},{},{}", r.line, r.column, r.rule, value)?;
            }
            RejectReportFormat::Json => {
                if self.written > 0 {
                    self.out.write_all(b",")?;
                }
                self.out.write_all(b"\n")?;
                serde_json::to_writer(&mut self.out, r)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.format == RejectReportFormat::Json {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()
    }
}

/// How many times one rule was broken in one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub column: String,
    pub rule: Rule,
    pub count: u64,
}

/// Whether the delivery may go on to the next stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    /// Too many rows were rejected.
    Failed {
        reason: String,
    },
}

/// What ingest found in one delivery file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverySummary {
    pub file: PathBuf,
    pub source: String,
    pub format: &'static str,
    /// How the identifiers arrived; `None` for a source without identifiers.
    pub identifier_mode: Option<IdentifierMode>,
    /// Data rows, not counting the header.
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub max_reject_fraction: f64,
    /// Broken rules, by column then rule. A row that breaks two rules counts
    /// once in `rows_rejected` and once under each rule.
    pub violations: Vec<RuleCount>,
    /// A delivery manifest was present and its checksum, source, mode and
    /// row count matched.
    pub manifest_verified: bool,
    pub verdict: Verdict,
}

impl DeliverySummary {
    pub fn reject_fraction(&self) -> f64 {
        if self.rows_read == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_read as f64
        }
    }

    pub fn accepted(&self) -> bool {
        self.verdict == Verdict::Accepted
    }

    /// Violations of one rule in one column.
    pub fn count(&self, column: &str, rule: Rule) -> u64 {
        self.violations
            .iter()
            .find(|v| v.column == column && v.rule == rule)
            .map_or(0, |v| v.count)
    }
}

/// Counts rejects and streams them to the sink.
pub(crate) struct RejectLog {
    counts: BTreeMap<(String, Rule), u64>,
    rows_rejected: u64,
    sink: Option<Box<dyn RejectSink>>,
}

impl RejectLog {
    pub fn new(sink: Option<Box<dyn RejectSink>>) -> Self {
        RejectLog {
            counts: BTreeMap::new(),
            rows_rejected: 0,
            sink,
        }
    }

    pub fn reject(&mut self, r: Reject) -> io::Result<()> {
        if let Some(sink) = &mut self.sink {
            sink.reject(&r)?;
        }
        *self.counts.entry((r.column, r.rule)).or_default() += 1;
        Ok(())
    }

    pub fn rows_rejected(&mut self, n: u64) {
        self.rows_rejected += n;
    }

    pub fn total_rows_rejected(&self) -> u64 {
        self.rows_rejected
    }

    pub fn finish(&mut self) -> io::Result<Vec<RuleCount>> {
        if let Some(sink) = &mut self.sink {
            sink.finish()?;
        }
        Ok(self
            .counts
            .iter()
            .map(|((column, rule), &count)| RuleCount {
                column: column.clone(),
                rule: *rule,
                count,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(value: Option<&str>) -> Reject {
        Reject {
            line: 7,
            column: "hours_per_week".into(),
            rule: Rule::OutOfRange,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn csv_report_quotes_values() {
        let mut w = RejectReportWriter::new(Vec::new(), RejectReportFormat::Csv).unwrap();
        w.reject(&reject(Some("75,00"))).unwrap();
        w.reject(&reject(None)).unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(
            text,
            "line,column,rule,value\n7,hours_per_week,out_of_range,\"75,00\"\n7,hours_per_week,out_of_range,\n"
        );
    }

    #[test]
    fn json_report_is_one_array() {
        let mut w = RejectReportWriter::new(Vec::new(), RejectReportFormat::Json).unwrap();
        w.reject(&reject(Some("x"))).unwrap();
        w.reject(&reject(None)).unwrap();
        w.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.into_inner()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["rule"], "out_of_range");
        assert!(v[1].get("value").is_none());
    }

    #[test]
    fn reported_values_are_truncated() {
        let long = "a".repeat(200);
        let v = reportable_value(long.as_bytes());
        assert_eq!(v.chars().count(), MAX_REPORTED_VALUE_CHARS + 1);
    }
}
