//! The report's input: plain counts gathered from the stages of one run.
//!
//! Counts only. Nothing here may hold a pseudonym, an identifier or key
//! material: the report travels with the research release.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything the run report shows about one pipeline run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Name of the pipeline that ran, e.g. `preventieplan`.
    pub pipeline: String,
    /// Version of the pipeline definition, so a release can be traced back
    /// to the rules that made it.
    pub pipeline_version: String,
    /// The data period the release covers, e.g. `2023-2024`.
    pub period: String,
    /// The research release this report belongs to.
    pub release_id: String,
    /// The extracts' reference date (ISO 8601): open absence episodes run to
    /// it, so it changes the numbers and belongs on the page.
    pub reference_date: String,
    /// Labels of the keys used, e.g. `stage2-preventieplan v1`. Never key
    /// material: a reader needs to know which key, not the key.
    pub keys: Vec<String>,
    /// One row per source as delivered and linked.
    pub sources: Vec<SourceRow>,
    /// Rejected rows per source, period, column and rule.
    pub rejects: Vec<RejectRow>,
    /// Presence of the payroll population in the person-level sources.
    pub coverage: Vec<CoverageRow>,
    /// Persons per combination of person-level sources.
    pub overlap: Vec<OverlapRow>,
    /// Disclosure control of the person file.
    pub person: PersonSummary,
    /// Disclosure control of the organisation file.
    pub organisation: OrganisationSummary,
    /// Disclosure control of the released tables.
    pub tables: Vec<TableRow>,
}

/// One source: what came in at ingest and what linked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// The source's contract name, e.g. `vernet_verzuimmeldingen`.
    pub name: String,
    /// The delivery periods read, e.g. `["2023", "2024"]`.
    pub periods: Vec<String>,
    /// Rows read from the delivery files; `rows_accepted + rows_rejected`.
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// What `linked`, `not_linked` and `duplicates` count. It differs per
    /// source (person-years, function codes, organisation-years), so a
    /// share is only meaningful together with it.
    pub unit: String,
    /// Units found on the payroll backbone.
    pub linked: u64,
    /// Units not found on the payroll backbone.
    pub not_linked: u64,
    /// Rows that duplicated another and were resolved at linking.
    pub duplicates: u64,
}

/// Rows rejected by one rule in one column of one delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RejectRow {
    pub source: String,
    pub period: String,
    pub column: String,
    /// The rule's code, e.g. `bsn_11_test`, as in the reject reports.
    pub rule: String,
    pub rows: u64,
}

/// One year × sector × age band of the payroll population, and how many of
/// its persons each person-level source holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub year: i32,
    pub sector: String,
    /// e.g. `<25`, `25-34`, `55+`; sorted by their lower bound on the page.
    pub age_band: String,
    /// The denominator: persons on the payroll in the cell.
    pub payroll_persons: u64,
    pub absence_persons: u64,
    pub izz_insured_persons: u64,
    /// Persons with at least one care claim.
    pub care_use_persons: u64,
    pub survey_persons: u64,
}

/// Persons found in exactly this combination of person-level sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OverlapRow {
    pub year: i32,
    /// The sources the persons are in (and in no other person-level source).
    pub sources: Vec<String>,
    pub persons: u64,
}

/// Disclosure control of the person file (k-anonymity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonSummary {
    /// The k asked for.
    pub k: u32,
    /// The k reached: the smallest class of released rows within a year;
    /// 0 when no row was released.
    pub smallest_class: u64,
    pub rows_in: u64,
    /// Rows in the person file, including locally suppressed ones.
    pub rows_released: u64,
    /// Released rows whose quasi-identifiers were all set to null.
    pub rows_locally_suppressed: u64,
    /// Rows left out: too few to form a safe all-null class.
    pub rows_dropped: u64,
    /// The cap on locally suppressed rows, in percent of `rows_in`.
    pub max_suppression_pct: f64,
    /// Weighted mean normalised generalisation height, 0 (as linked) to 1
    /// (everything suppressed).
    pub information_loss: f64,
    pub quasi_identifiers: Vec<QuasiIdentifierRow>,
    /// Person-model columns the release did not ask for.
    pub columns_withheld: Vec<String>,
    /// The risk per declared recipient.
    #[serde(default)]
    pub recipients: Vec<RecipientRow>,
}

/// One declared recipient: what it is assumed to know, and the risk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecipientRow {
    pub recipient: String,
    pub assumption: String,
    /// `released persons` or `workforce (k-map)`.
    pub counted_in: String,
    /// Released variables it knows.
    pub knows: Vec<String>,
    pub persons: u64,
    pub at_risk_before: u64,
    pub at_risk_after: u64,
    pub smallest_class: u64,
}

/// The generalisation chosen for one quasi-identifier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuasiIdentifierRow {
    pub column: String,
    /// The level in words, e.g. `5-year bands` or `suppressed`.
    pub level_name: String,
    /// 0 is the value as linked; `levels - 1` suppresses it entirely.
    pub level: usize,
    /// Levels of the hierarchy, the final all-suppressed one included.
    pub levels: usize,
    /// Values known as linked that are null in the release.
    pub values_suppressed: u64,
    /// Values already unknown as linked: not a loss of the release.
    pub values_missing: u64,
}

/// Disclosure control of the organisation file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganisationSummary {
    /// Organisation-years with fewer persons are left out.
    pub min_persons: u64,
    /// A statistic resting on fewer persons is suppressed.
    pub k: u64,
    pub rows_in: u64,
    pub rows_released: u64,
    pub rows_left_out: u64,
    /// Values suppressed per statistic (column name).
    pub suppressed: BTreeMap<String, u64>,
}

/// Disclosure control of one released table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    /// The table's file name stem.
    pub name: String,
    /// The table's title for people.
    pub label: String,
    /// Cells including margins.
    pub cells: u64,
    /// Cells per τ-ARGUS status code: `safe`, `empty`,
    /// `primary_threshold`, `primary_dominance`, `primary_p_percent`,
    /// `secondary`.
    pub status: BTreeMap<String, u64>,
}
