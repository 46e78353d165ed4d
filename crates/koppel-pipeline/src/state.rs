//! The operator's state directory: the run ledger, the audit trail, and a
//! folder per run.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use koppel_ledger::{AuditTrail, Ledger, RunId, RunStatus};
use serde::Serialize;

use crate::error::RunError;

/// `<state>/ledger.sqlite`, `<state>/audit.jsonl` and
/// `<state>/runs/<pipeline>/run-<id>/` (staged data, the run report and
/// summary).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Folders of staged data a retention sweep removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Purged {
    pub runs: Vec<RunId>,
}

/// Subfolders of a run folder that hold pseudonymised data; the report
/// and summary stay.
const STAGED_FOLDERS: [&str; 3] = ["staging", "stage2", "linked"];

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.root.join("ledger.sqlite")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    pub fn run_dir(&self, pipeline: &str, run: RunId) -> PathBuf {
        self.root
            .join("runs")
            .join(pipeline)
            .join(format!("run-{run}"))
    }

    /// Creates the directory, readable by its owner only: it holds
    /// pseudonymised data.
    pub fn create(&self) -> Result<(), RunError> {
        std::fs::create_dir_all(self.root.join("runs")).map_err(RunError::io(&self.root))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
                .map_err(RunError::io(&self.root))?;
        }
        Ok(())
    }

    /// Creates the directory if needed and opens the ledger and the audit
    /// trail (which stays locked for this process while it is open).
    pub fn open_records(&self) -> Result<(Ledger, AuditTrail), RunError> {
        self.create()?;
        let ledger = Ledger::open(&self.ledger_path())?;
        let audit = AuditTrail::open(&self.audit_path())?;
        Ok((ledger, audit))
    }

    /// Removes the staged data of every finished run of `pipeline` that
    /// ended more than `days` days before `now`; the ledger, the audit
    /// trail and each run's report and summary stay.
    pub fn purge_expired(
        &self,
        ledger: &Ledger,
        pipeline: &str,
        days: u32,
        now: DateTime<Utc>,
    ) -> Result<Purged, RunError> {
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let mut purged = Purged::default();
        for run in ledger.runs(Some(pipeline))? {
            let expired = run.status != RunStatus::Running
                && run.finished.is_some_and(|finished| finished <= cutoff);
            if !expired {
                continue;
            }
            let dir = self.run_dir(pipeline, run.id);
            let mut removed = false;
            for folder in STAGED_FOLDERS {
                let path = dir.join(folder);
                if path.exists() {
                    std::fs::remove_dir_all(&path).map_err(RunError::io(&path))?;
                    removed = true;
                }
            }
            if removed {
                purged.runs.push(run.id);
            }
        }
        Ok(purged)
    }
}
