//! Pipelines: what one linkage project is, and running it.
//!
//! **Input:** a pipeline file (`pipelines/<name>.yaml`), the directory of
//! source specs it refers to, the TTP's key store, an inbox of sealed
//! deliveries and a state directory. **Output:** a typed, checked
//! [`PipelineSpec`] (sources and periods a run expects, identifier mode per
//! source, key ids per purpose, reference date, disclosure rules and
//! tables, release destination, retention of staged data, schedule); and
//! per run ([`run_pipeline`]) a research release with its `report.html`, a
//! run folder, and the run's deliveries, stages, counts and release in the
//! run ledger and the audit trail.
//!
//! The stages themselves live in their crates (koppel-pseudonymise,
//! koppel-join, koppel-export); this crate orders them, names what failed,
//! and records what happened.

mod daemon;
mod error;
mod report;
mod run;
mod spec;
mod state;

pub use daemon::{DaemonSettings, DaemonSummary, REFUSED_FOLDER, run_daemon};
pub use error::RunError;
pub use run::{
    DeliveryOutcome, Records, RejectCount, RunEvent, RunOutcome, RunSettings, RunStage,
    SUMMARY_FILE, StageTiming, run_pipeline, sealed_name,
};
pub use spec::{
    KeyIds, PipelineError, PipelineSpec, ReleaseSpec, RetentionSpec, ScheduleSpec, SourceEntry,
    parse_cron,
};
pub use state::{Purged, StateDir};

/// The JSON Schema of pipeline files, for editors that validate and
/// complete YAML (for example with a `# yaml-language-server: $schema=`
/// line).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PipelineSpec);
    serde_json::to_string_pretty(&schema).expect("a schema serialises")
}
