use std::path::PathBuf;

use thiserror::Error;

/// Why linking failed. No variant carries a pseudonym or data value: the
/// messages name files, columns and sources only. A wrapped error is the
/// `source`, not part of the message, so a chain printed with `{:#}` says
/// each thing once.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file that could not be read or written.
    #[error("{}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{}: the path is not UTF-8", path.display())]
    NonUtf8Path { path: PathBuf },
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
    /// A linking step that failed on its own terms (no error beneath).
    #[error("linking plan failed: {0}")]
    Plan(String),
    /// DataFusion failed planning or running a linking query (boxed: the
    /// error is large, and every `?` on a query returns it).
    #[error("linking plan failed")]
    DataFusion(#[source] Box<datafusion::error::DataFusionError>),
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A task of the linking run that panicked or was cancelled.
    #[error("{context}")]
    Task {
        context: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl LinkError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LinkError {
        let path = path.into();
        move |source| LinkError::Io { path, source }
    }

    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> LinkError {
        let path = path.into();
        move |source| LinkError::Parquet { path, source }
    }
}

impl From<datafusion::error::DataFusionError> for LinkError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        LinkError::DataFusion(Box::new(e))
    }
}

impl From<arrow::error::ArrowError> for LinkError {
    fn from(source: arrow::error::ArrowError) -> Self {
        LinkError::Arrow {
            context: "linking plan failed".into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::{LinkConfig, Source, link};

    /// Every staged source present by name, one of them not Parquet: the
    /// error names the file and keeps the Parquet reader's error beneath.
    #[test]
    fn a_corrupt_staged_file_keeps_the_parquet_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        for source in Source::ALL {
            let name = format!("{}_2024.parquet", source.contract_name());
            std::fs::write(staged.join(name), b"not a parquet file at all").unwrap();
        }
        let error = link(&staged, &dir.path().join("linked"), &LinkConfig::default())
            .expect_err("a corrupt file does not link");
        let LinkError::Parquet { path, .. } = &error else {
            panic!("another error: {error:?}");
        };
        assert!(path.starts_with(&staged), "{}", path.display());
        assert!(error.to_string().contains("_2024.parquet"), "{error}");
        let source = error.source().expect("the Parquet error is kept");
        assert!(
            source
                .downcast_ref::<parquet::errors::ParquetError>()
                .is_some(),
            "{source:?}"
        );
        assert!(!dir.path().join("linked").exists());
    }

    #[test]
    fn a_missing_staged_folder_keeps_the_io_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("nowhere");
        let error = link(&staged, &dir.path().join("linked"), &LinkConfig::default())
            .expect_err("there is nothing to link");
        assert!(
            matches!(&error, LinkError::Io { path, .. } if *path == staged),
            "{error:?}"
        );
        assert!(error.to_string().contains("nowhere"), "{error}");
        let source = error
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io error is kept");
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn datafusion_and_arrow_errors_are_kept_as_sources() {
        let error = LinkError::from(datafusion::error::DataFusionError::Plan(
            "no such table".into(),
        ));
        assert_eq!(error.to_string(), "linking plan failed");
        let source = error.source().expect("kept");
        assert!(
            source
                .downcast_ref::<Box<datafusion::error::DataFusionError>>()
                .is_some(),
            "{source:?}"
        );
        assert_eq!(source.to_string(), "Error during planning: no such table");
        let error = LinkError::from(arrow::error::ArrowError::ComputeError("overflow".into()));
        assert!(error.source().is_some());
    }
}
