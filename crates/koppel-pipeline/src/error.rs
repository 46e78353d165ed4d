use std::path::PathBuf;

use koppel_ledger::RunId;
use koppel_pseudonymise::KeyPurpose;
use thiserror::Error;

/// Why a run stopped. Messages name the delivery (its sealed file) and the
/// rule or stage that failed, never a value from the data; wrapped errors
/// are the `source`.
#[derive(Debug, Error)]
pub enum RunError {
    #[error("run {run} failed")]
    Failed {
        run: RunId,
        #[source]
        source: Box<RunError>,
    },
    #[error("{}: missing deliveries: {}", inbox.display(), missing.join(", "))]
    Missing {
        inbox: PathBuf,
        missing: Vec<String>,
    },
    #[error("{source_name} {period}: more than one delivery in the inbox ({}); remove all but one", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        source_name: String,
        period: String,
        files: Vec<PathBuf>,
    },
    /// The receive error names the sealed file already.
    #[error("delivery refused")]
    Delivery {
        sealed: PathBuf,
        #[source]
        source: Box<koppel_pseudonymise::ReceiveError>,
    },
    #[error("{}: refused: {what}", sealed.display())]
    Mismatch { sealed: PathBuf, what: String },
    #[error("{}: delivery {delivery_id} was already received as {} on {received} (replay); a delivery is accepted once — ask the partner for a new one", sealed.display(), original_path.display())]
    Replay {
        sealed: PathBuf,
        delivery_id: String,
        original_path: PathBuf,
        received: String,
    },
    #[error("{}: the delivery failed at the TTP", sealed.display())]
    Source {
        sealed: PathBuf,
        #[source]
        source: Box<koppel_pseudonymise::StagedError>,
    },
    #[error("key {id} is a {found} key, not a {expected} key")]
    KeyPurpose {
        id: String,
        found: KeyPurpose,
        expected: KeyPurpose,
    },
    #[error("key store")]
    Key(#[from] koppel_pseudonymise::KeyStoreError),
    #[error("stage 2")]
    Stage2(#[from] koppel_pseudonymise::Stage2Error),
    #[error("linking")]
    Link(#[from] koppel_join::LinkError),
    #[error("disclosure control and release")]
    Export(#[from] koppel_export::ExportError),
    #[error("run ledger")]
    Ledger(#[from] koppel_ledger::LedgerError),
    #[error("audit trail")]
    Audit(#[from] koppel_ledger::AuditError),
    #[error("service: {0}")]
    Daemon(String),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.into();
        move |source| RunError::Io { path, source }
    }
}
