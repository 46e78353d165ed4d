//! Errors of the generator.

use std::path::PathBuf;

/// Why synthesis failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// `persons` was 0: there is no workforce to simulate.
    #[error("invalid configuration: persons must be at least 1")]
    NoPersons,
    /// `orgs` was `Some(0)`.
    #[error("invalid configuration: orgs must be at least 1 when given")]
    NoOrganisations,
    /// The workforce would not fit the generator's 32-bit indexes.
    #[error("invalid configuration: {persons} persons is more than the supported {max}")]
    TooManyPersons { persons: usize, max: usize },
    /// The year range holds no year.
    #[error("invalid configuration: empty year range {start}..={end}")]
    EmptyYearRange { start: i32, end: i32 },
    /// A year outside what the delivery contract accepts (`jaar` 2000–2100).
    #[error("invalid configuration: year {0} is outside 2000..=2100")]
    YearOutOfRange(i32),
    /// A name in `only` that is not one of the seven sources.
    #[error("invalid configuration: unknown source {name:?} (known: {known})")]
    UnknownSource { name: String, known: String },
    /// Creating, writing or flushing an output file or directory failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Building a record batch for the survey failed.
    #[error("arrow error while writing {path}: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// The Parquet writer failed.
    #[error("parquet error while writing {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl SynthError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        SynthError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
