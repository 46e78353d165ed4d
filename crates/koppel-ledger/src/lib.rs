//! The operator's record of what Koppel did: a run ledger and an audit
//! trail.
//!
//! **Input:** facts the other stages report through this API — deliveries
//! received (id, source, period, partner, SHA-256, path), rejected or
//! replayed, pipeline runs with their stages, counts, key ids and releases,
//! and audit events (actor, action, subject, details). Timestamps always
//! come from the caller, so results are deterministic under test.
//!
//! **Output:**
//! - [`Ledger`]: an embedded SQLite database (`deliveries`,
//!   `rejected_deliveries`, `runs`, `run_stages`, `releases`) that answers
//!   "which deliveries do we hold", "what did run N do" and "which periods
//!   are done", for `koppel runs`, `koppel deliveries` and a restarting
//!   daemon.
//! - [`AuditTrail`]: an append-only JSON-lines file in which every line
//!   carries the SHA-256 of the line before it, anchored by a `.head`
//!   sidecar, so that [`AuditTrail::verify`] detects an edited, removed,
//!   inserted, reordered or truncated line and names it.
//!
//! Errors are [`LedgerError`] and [`AuditError`]; each names the file (and
//! for the audit trail the line) and what is wrong.
//!
//! Nothing here ever holds an identifier, a pseudonym or key bytes: the API
//! takes ids, names, hashes, counts and statuses only, and callers must keep
//! it that way for the free-form `details` and `counts` objects.

pub mod audit;
pub mod ledger;
mod time;

pub use audit::{
    AuditEntry, AuditError, AuditEvent, AuditTrail, GENESIS_HASH, VerifyReport, head_path,
};
pub use ledger::{
    ABANDONED_ERROR, DeliveryFilter, DeliveryRecord, DeliveryStatus, Ledger, LedgerError,
    NewDelivery, Registration, ReleaseRecord, RunDetail, RunId, RunStatus, RunSummary,
    SCHEMA_VERSION, StageRecord, StatusParseError,
};
