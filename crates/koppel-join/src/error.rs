use std::path::PathBuf;

use thiserror::Error;

/// Why linking failed. No variant carries a pseudonym or data value: the
/// messages name files, columns and sources only.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error(
        "{}: not a staged source (expected <source>_<period>.parquet for one of the contract's sources)",
        path.display()
    )]
    UnknownInput { path: PathBuf },
    #[error("{}: no staged delivery of {sources}", dir.display())]
    MissingSources { dir: PathBuf, sources: String },
    #[error(
        "{}: column {column} is an identifier that is not a stage-2 pseudonym; only `koppel pseudonymise` output can be linked",
        path.display()
    )]
    NotStage2 { path: PathBuf, column: String },
    #[error(
        "{}: pseudonyms made with stage-2 key {found}, but {} uses {expected}; sources pseudonymised under different keys cannot be linked",
        path.display(),
        first.display()
    )]
    KeyMismatch {
        path: PathBuf,
        found: String,
        expected: String,
        first: PathBuf,
    },
    #[error("{}: no column {column}, which linking needs", path.display())]
    MissingColumn { path: PathBuf, column: String },
    #[error("the payroll holds no rows: there is no backbone to link to")]
    EmptyBackbone,
    #[error("{} already exists and is not empty; linking never overwrites a result", path.display())]
    OutputExists { path: PathBuf },
    #[error("linking plan failed: {0}")]
    Plan(String),
}

impl From<datafusion::error::DataFusionError> for LinkError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        LinkError::Plan(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for LinkError {
    fn from(e: arrow::error::ArrowError) -> Self {
        LinkError::Plan(e.to_string())
    }
}
