//! Pipeline files: what one linkage project is.
//!
//! **Input:** a pipeline file (`pipelines/<name>.yaml`) and the directory
//! of source specs it refers to. **Output:** a typed, checked
//! [`PipelineSpec`] — the sources and periods a run expects, the identifier
//! mode per source, the key ids per purpose, the reference date, the
//! disclosure rules and tables, the release destination, the retention of
//! staged data and the schedule. Errors name the file, line and column and
//! say what was expected.
//!
//! Running a pipeline (unseal, stage 2, link, export, ledger) builds on this
//! and comes with the pipeline issue's next steps.

mod spec;

pub use spec::{
    KeyIds, PipelineError, PipelineSpec, ReleaseSpec, RetentionSpec, ScheduleSpec, SourceEntry,
};
