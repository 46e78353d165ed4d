//! Koppel's ingest stage: reads a partner's delivery file and validates it
//! against the delivery contract.
//!
//! **Input:** a delivery file (CSV in the partner's dialect, or Parquet), its
//! [`SourceSpec`] from `pipelines/sources/*.yaml`, and optionally the
//! partner's delivery manifest beside it.
//!
//! **Output:** a stream of Arrow [`RecordBatch`](arrow::array::RecordBatch)es
//! in the canonical schema (typed columns, canonical names, identifiers in
//! canonical form or as 32-byte stage-1 pseudonyms), the rejected rows with
//! line, column and rule, and a [`DeliverySummary`] with the verdict.
//!
//! Memory is bounded by the batch size, whatever the file size. File-level
//! problems end the read with an [`IngestError`] naming file, line and field;
//! row-level problems reject the row and are counted. No error message and
//! no reject report ever holds an identifier's value.

mod batch;
mod columns;
mod csv_source;
mod delivery;
mod error;
mod header;
mod manifest;
mod parquet_source;
mod report;
mod rules;
mod spec;

pub use columns::canonical_field;
pub use csv_source::{CsvRecords, MAX_FIELD_BYTES, MAX_RECORD_BYTES};
pub use delivery::{DEFAULT_BATCH_SIZE, DeliveryReader, ReadOptions, validate_file};
pub use error::{IngestError, SpecError};
pub use manifest::{DeliveryManifest, KeyLabel};
pub use report::{
    DeliverySummary, Reject, RejectReportFormat, RejectReportWriter, RejectSink, RuleCount, Verdict,
};
pub use rules::{Rule, canonical_bsn, canonical_kvk, decode_pseudonym};
pub use spec::{
    ColumnKind, ColumnSpec, CsvDialect, DEFAULT_MAX_REJECT_FRACTION, DatePattern, FormatSpec,
    RowRule, SourceSpec, SpecSet,
};
