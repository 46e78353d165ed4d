use std::path::PathBuf;

use thiserror::Error;

/// Everything that stops a release. None of these messages carries a value
/// from the data: identifiers never reach an error. A wrapped error is the
/// `source`, not part of the message, so a chain printed with `{:#}` says
/// each thing once.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error("column {column}: {message}")]
    Column { column: String, message: String },
    #[error("{} already exists and is not empty; a release is never written over another", path.display())]
    OutputExists { path: PathBuf },
    #[error("k-anonymity")]
    KAnonymity(#[from] crate::kanon::KAnonymityError),
    #[error("table {table}")]
    Table {
        table: String,
        #[source]
        source: crate::tables::TableError,
    },
    #[error("identifier leak guard: {file}, column {column}: {what}; the release was not written")]
    Leak {
        file: String,
        column: String,
        what: String,
    },
    #[error("reading a staged delivery for the leak guard")]
    Ingest(#[from] koppel_ingest::IngestError),
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{context}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl ExportError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ExportError {
        let path = path.into();
        move |source| ExportError::Io { path, source }
    }

    pub(crate) fn arrow(
        context: impl Into<String>,
    ) -> impl FnOnce(arrow::error::ArrowError) -> ExportError {
        let context = context.into();
        move |source| ExportError::Arrow { context, source }
    }

    pub(crate) fn parquet(
        context: impl Into<String>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> ExportError {
        let context = context.into();
        move |source| ExportError::Parquet { context, source }
    }
}
