//! The run ledger: deliveries received, pipeline runs with their stages, and
//! the releases they wrote, in one SQLite database.
//!
//! Input: facts reported by the daemon and the CLI (delivery ids, names,
//! hashes, counts, statuses, caller-supplied timestamps). Output: the
//! database file and typed records for `koppel runs`, `koppel deliveries`
//! and a restarting daemon.
//!
//! The database is opened in WAL mode with foreign keys on and a busy
//! timeout, so the CLI can read while the daemon writes. Every write is one
//! `BEGIN IMMEDIATE` transaction: checks and the write it guards cannot be
//! interleaved with another process. `PRAGMA user_version` holds the schema
//! version and `PRAGMA application_id` marks the file as a Koppel ledger;
//! a ledger written by a newer program is refused rather than guessed at.
//!
//! Timestamps are stored as RFC 3339 UTC with whole seconds (sub-seconds
//! are dropped), so text order is time order.
//!
//! # Deliveries, replays and rejections
//!
//! - `deliveries` holds every delivery that was *registered*: its id and
//!   the SHA-256 of its sealed file are both unique there. Its status is
//!   `registered`, later `consumed` (a run used it) or `rejected` (it was
//!   registered, then failed, e.g. at ingest).
//! - `rejected_deliveries` holds attempts that never became a registered
//!   delivery: bad files ([`Ledger::reject_delivery`], status `rejected`)
//!   and replays the caller chose to record ([`Ledger::record_replay`],
//!   status `replayed`). It has its own autoincrement key, so one delivery
//!   id may appear there many times.
//!
//! A new delivery is a **replay** when its SHA-256 or its id is already
//! registered; [`Ledger::register_delivery`] then inserts nothing and
//! returns [`Registration::Replayed`] with the original record. This
//! includes the same file registered again after a crash (the daemon
//! restarted and found it in its inbox): [`DeliveryRecord::is_same_file`]
//! tells the caller that the id, SHA-256 and path all match, so it can
//! carry on with the original record instead of reporting a replay.
//!
//! A **rejection never blocks a later correct delivery** with the same id:
//! rows in `rejected_deliveries` are not consulted, and a registered
//! delivery whose status became `rejected` is moved to
//! `rejected_deliveries` when a *different* file (other SHA-256) arrives
//! under its id. The same bad file sent again is still a replay.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;
use thiserror::Error;

use crate::time;

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i32 = 1;

/// `PRAGMA application_id` of a Koppel ledger ("KOPL").
const APPLICATION_ID: i32 = 0x4b4f_504c;

/// How long a write waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Error text of a run that [`Ledger::abandon_running`] closed.
pub const ABANDONED_ERROR: &str = "the process stopped during the run";

/// Schema migrations: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &["
CREATE TABLE deliveries (
    id       TEXT PRIMARY KEY NOT NULL,
    source   TEXT NOT NULL,
    period   TEXT NOT NULL,
    partner  TEXT,
    sha256   TEXT NOT NULL UNIQUE,
    path     TEXT NOT NULL,
    received TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('registered', 'rejected', 'consumed')),
    reason   TEXT
);
CREATE TABLE rejected_deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL,
    source      TEXT NOT NULL,
    period      TEXT NOT NULL,
    partner     TEXT,
    sha256      TEXT NOT NULL,
    path        TEXT NOT NULL,
    received    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('rejected', 'replayed')),
    reason      TEXT NOT NULL
);
CREATE TABLE runs (
    id       INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    period   TEXT NOT NULL,
    started  TEXT NOT NULL,
    finished TEXT,
    status   TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    error    TEXT,
    key_ids  TEXT NOT NULL,
    inputs   TEXT NOT NULL
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, status, period);
CREATE TABLE run_stages (
    run_id  INTEGER NOT NULL REFERENCES runs (id),
    stage   TEXT NOT NULL,
    started TEXT NOT NULL,
    wall_ms INTEGER NOT NULL,
    counts  TEXT NOT NULL,
    PRIMARY KEY (run_id, stage)
);
CREATE TABLE releases (
    run_id          INTEGER PRIMARY KEY NOT NULL REFERENCES runs (id),
    path            TEXT NOT NULL,
    release_id      TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    created         TEXT NOT NULL
);
"];

#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("{}: {what}", path.display())]
    Database {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: there is no run ledger at this path", path.display())]
    Missing { path: PathBuf },
    #[error("{}: not a Koppel run ledger ({what})", path.display())]
    NotALedger { path: PathBuf, what: String },
    #[error(
        "{}: the run ledger has schema version {found}, newer than version {known} that this \
         program knows; use the koppel release that wrote it, or a newer one",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i32,
        known: i32,
    },
    #[error("{}: no delivery with id {id:?} is registered", path.display())]
    UnknownDelivery { path: PathBuf, id: String },
    #[error("{}: there is no run {run}", path.display())]
    UnknownRun { path: PathBuf, run: RunId },
    #[error("{}: run {run} is {status}, not running, so {what}", path.display())]
    RunNotRunning {
        path: PathBuf,
        run: RunId,
        status: RunStatus,
        what: &'static str,
    },
    #[error("{}: run {run} already has a stage {stage:?}", path.display())]
    DuplicateStage {
        path: PathBuf,
        run: RunId,
        stage: String,
    },
    #[error("{}: run {run} already has a release", path.display())]
    DuplicateRelease { path: PathBuf, run: RunId },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("{}: the ledger holds an unreadable value: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
}

/// A status string that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} status {value:?}; expected one of: {expected}")]
pub struct StatusParseError {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every status, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The status as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StatusParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(StatusParseError {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

status_enum!(
    /// Where a delivery stands. `registered`, `consumed` and `rejected`
    /// occur in `deliveries`; `rejected` and `replayed` in
    /// `rejected_deliveries` (see the module documentation).
    DeliveryStatus, "delivery", {
        Registered => "registered",
        Rejected => "rejected",
        Replayed => "replayed",
        Consumed => "consumed",
    }
);

status_enum!(
    /// Where a run stands. Only `running` runs take stages and can be
    /// finished.
    RunStatus, "run", {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Abandoned => "abandoned",
    }
);

/// A run's number in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(RunId)
    }
}

/// A delivery as the caller saw it arrive (from its sealed file and
/// manifest). For a file whose manifest could not be read, pass the file
/// name as `id` and `-` for unknown fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub source: String,
    pub period: String,
    pub partner: Option<String>,
    /// SHA-256 of the sealed file, 64 hex digits.
    pub sha256: String,
    pub path: PathBuf,
    pub received: DateTime<Utc>,
}

/// A delivery as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub source: String,
    pub period: String,
    pub partner: Option<String>,
    pub sha256: String,
    pub path: PathBuf,
    #[serde(serialize_with = "time::serialize")]
    pub received: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
}

impl DeliveryRecord {
    /// True when `new` is this very file again (same id, SHA-256 and path):
    /// a re-registration after a crash rather than a partner's replay.
    pub fn is_same_file(&self, new: &NewDelivery) -> bool {
        self.id == new.id && self.sha256.eq_ignore_ascii_case(&new.sha256) && self.path == new.path
    }
}

/// The outcome of [`Ledger::register_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The delivery is new and now registered.
    Registered,
    /// Its id or SHA-256 was already registered; nothing was written.
    /// `original` is the registered delivery it collides with (check
    /// [`DeliveryRecord::is_same_file`] to recognise a re-registration
    /// after a crash).
    Replayed { original: DeliveryRecord },
}

/// Which deliveries [`Ledger::deliveries`] lists; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub source: Option<String>,
    pub period: Option<String>,
    pub status: Option<DeliveryStatus>,
}

/// One finished stage of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRecord {
    pub stage: String,
    #[serde(serialize_with = "time::serialize")]
    pub started: DateTime<Utc>,
    pub wall_ms: u64,
    /// A JSON object of counts (rows read, rejected, written, ...).
    pub counts: serde_json::Value,
}

/// The release a run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseRecord {
    pub path: PathBuf,
    pub release_id: String,
    pub manifest_sha256: String,
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
}

/// A run without its stages, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub id: RunId,
    pub pipeline: String,
    pub period: String,
    #[serde(serialize_with = "time::serialize")]
    pub started: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub finished: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub error: Option<String>,
    /// Keys the run used, as `id:version`.
    pub key_ids: Vec<String>,
    /// Delivery ids the run read.
    pub inputs: Vec<String>,
}

/// A run with its stages (in the order they started) and its release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    pub stages: Vec<StageRecord>,
    pub release: Option<ReleaseRecord>,
}

/// The run ledger. One connection; share the file, not the value, between
/// processes.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

const DELIVERY_COLUMNS: &str =
    "id, source, period, partner, sha256, path, received, status, reason";
const RUN_COLUMNS: &str = "id, pipeline, period, started, finished, status, error, key_ids, inputs";

impl Ledger {
    /// Opens the ledger at `path`, creating the file and schema if missing
    /// and upgrading an older schema.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Self::open_flags(path, true)
    }

    /// Opens an existing ledger; a missing file is [`LedgerError::Missing`]
    /// instead of a new, empty ledger (for read-only commands).
    pub fn open_existing(path: &Path) -> Result<Ledger, LedgerError> {
        if !path.is_file() {
            return Err(LedgerError::Missing {
                path: path.to_owned(),
            });
        }
        Self::open_flags(path, false)
    }

    fn open_flags(path: &Path, create: bool) -> Result<Ledger, LedgerError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let err = db_err(path, "cannot open the run ledger");
        let mut conn = Connection::open_with_flags(path, flags).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(&err)?;
        // Returns the mode in force; a file system without shared memory
        // keeps the rollback journal, which is slower but still correct.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;

        let (version, app) = schema_marks(&conn).map_err(&err)?;
        if version != SCHEMA_VERSION || app != APPLICATION_ID {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            // Checked again under the write lock: another process may have
            // created the schema meanwhile.
            let (version, app) = schema_marks(&tx).map_err(&err)?;
            if version == 0 {
                let objects: i64 = tx
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .map_err(&err)?;
                if objects > 0 || (app != 0 && app != APPLICATION_ID) {
                    return Err(LedgerError::NotALedger {
                        path: path.to_owned(),
                        what: "it is an SQLite database with other tables".into(),
                    });
                }
            } else if app != APPLICATION_ID {
                return Err(LedgerError::NotALedger {
                    path: path.to_owned(),
                    what: format!("application id {app:#x}"),
                });
            }
            if version > SCHEMA_VERSION {
                return Err(LedgerError::NewerSchema {
                    path: path.to_owned(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            if version < 0 {
                return Err(LedgerError::NotALedger {
                    path: path.to_owned(),
                    what: format!("schema version {version}"),
                });
            }
            let upgrade = db_err(path, "cannot create or upgrade the ledger schema");
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(&upgrade)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(&upgrade)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(&upgrade)?;
            tx.commit().map_err(&upgrade)?;
        }
        Ok(Ledger {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, what: &'static str) -> Result<(Transaction<'_>, &Path), LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(&self.path, what))?;
        Ok((tx, &self.path))
    }

    // ---- deliveries ----

    /// Registers a new delivery, or reports a replay without writing (see
    /// the module documentation).
    pub fn register_delivery(&mut self, new: &NewDelivery) -> Result<Registration, LedgerError> {
        const WHAT: &str = "cannot register a delivery";
        let sha256 = checked_sha256(&self.path, &new.sha256)?;
        let file = utf8_path(&self.path, &new.path)?.to_owned();
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);

        let by_sha = select_delivery(&tx, path, "sha256", &sha256)?;
        if let Some(original) = by_sha {
            return Ok(Registration::Replayed { original });
        }
        if let Some(original) = select_delivery(&tx, path, "id", &new.id)? {
            if original.status != DeliveryStatus::Rejected {
                return Ok(Registration::Replayed { original });
            }
            // A different file under the id of a rejected delivery: the
            // rejected one moves aside.
            tx.execute(
                "INSERT INTO rejected_deliveries
                   (delivery_id, source, period, partner, sha256, path, received, status, reason)
                 SELECT id, source, period, partner, sha256, path, received, 'rejected',
                        coalesce(reason, 'rejected after registration')
                 FROM deliveries WHERE id = ?1",
                [&new.id],
            )
            .map_err(&err)?;
            tx.execute("DELETE FROM deliveries WHERE id = ?1", [&new.id])
                .map_err(&err)?;
        }
        tx.execute(
            "INSERT INTO deliveries
               (id, source, period, partner, sha256, path, received, status, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'registered', NULL)",
            rusqlite::params![
                new.id,
                new.source,
                new.period,
                new.partner,
                sha256,
                file,
                time::format(&new.received),
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Registration::Registered)
    }

    /// Records a delivery that was refused before registration (bad seal,
    /// checksum, manifest, ...). It does not block a later delivery with
    /// the same id.
    pub fn reject_delivery(&mut self, new: &NewDelivery, reason: &str) -> Result<(), LedgerError> {
        self.insert_refused(new, DeliveryStatus::Rejected, reason)
    }

    /// Records a replay that [`Ledger::register_delivery`] reported, for
    /// `koppel deliveries list` (the caller decides: a re-registration after
    /// a crash is usually not worth recording).
    pub fn record_replay(
        &mut self,
        new: &NewDelivery,
        original: &DeliveryRecord,
    ) -> Result<(), LedgerError> {
        let same = if original.sha256.eq_ignore_ascii_case(&new.sha256) {
            "same SHA-256"
        } else {
            "same delivery id"
        };
        let reason = format!("replay of delivery {} ({same})", original.id);
        self.insert_refused(new, DeliveryStatus::Replayed, &reason)
    }

    fn insert_refused(
        &mut self,
        new: &NewDelivery,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot record a refused delivery";
        let sha256 = checked_sha256(&self.path, &new.sha256)?;
        let file = utf8_path(&self.path, &new.path)?.to_owned();
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        tx.execute(
            "INSERT INTO rejected_deliveries
               (delivery_id, source, period, partner, sha256, path, received, status, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                new.id,
                new.source,
                new.period,
                new.partner,
                sha256,
                file,
                time::format(&new.received),
                status.as_str(),
                reason,
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Sets a registered delivery's status (`consumed` once a run used it,
    /// `rejected` with a reason when it failed after registration, or back
    /// to `registered`). `replayed` only describes refused attempts and is
    /// refused here.
    pub fn set_delivery_status(
        &mut self,
        id: &str,
        status: DeliveryStatus,
        reason: Option<&str>,
    ) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot change a delivery's status";
        if status == DeliveryStatus::Replayed {
            return Err(LedgerError::Invalid {
                path: self.path.clone(),
                what: format!(
                    "delivery {id:?} cannot be set to replayed: a replay is never registered"
                ),
            });
        }
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        let changed = tx
            .execute(
                "UPDATE deliveries SET status = ?2, reason = ?3 WHERE id = ?1",
                rusqlite::params![id, status.as_str(), reason],
            )
            .map_err(&err)?;
        if changed == 0 {
            return Err(LedgerError::UnknownDelivery {
                path: path.to_owned(),
                id: id.to_owned(),
            });
        }
        tx.commit().map_err(&err)
    }

    /// The registered delivery with this id.
    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, LedgerError> {
        select_delivery(&self.conn, &self.path, "id", id)
    }

    /// Registered and refused deliveries matching `filter`, ordered by
    /// time received, then id (a delivery before the attempts that were
    /// refused at the same second, attempts in the order recorded).
    pub fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, LedgerError> {
        let err = db_err(&self.path, "cannot list deliveries");
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM (
                 SELECT {DELIVERY_COLUMNS}, 0 AS tbl, 0 AS seq FROM deliveries
                 UNION ALL
                 SELECT delivery_id AS id, source, period, partner, sha256, path, received,
                        status, reason, 1 AS tbl, seq FROM rejected_deliveries
             )
             WHERE (?1 IS NULL OR source = ?1)
               AND (?2 IS NULL OR period = ?2)
               AND (?3 IS NULL OR status = ?3)
             ORDER BY received, id, tbl, seq"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&err)?;
        let rows = stmt
            .query_map(
                rusqlite::params![
                    filter.source,
                    filter.period,
                    filter.status.map(DeliveryStatus::as_str)
                ],
                RawDelivery::from_row,
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(&err)?.into_record(&self.path)?);
        }
        Ok(out)
    }

    // ---- runs ----

    /// Starts a run (status `running`). `key_ids` are `id:version` labels of
    /// the keys it uses, `inputs` the delivery ids it reads.
    pub fn begin_run(
        &mut self,
        pipeline: &str,
        period: &str,
        key_ids: &[String],
        inputs: &[String],
        started: DateTime<Utc>,
    ) -> Result<RunId, LedgerError> {
        const WHAT: &str = "cannot record the start of a run";
        let key_ids = to_json(key_ids);
        let inputs = to_json(inputs);
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        tx.execute(
            "INSERT INTO runs (pipeline, period, started, finished, status, error, key_ids, inputs)
             VALUES (?1, ?2, ?3, NULL, 'running', NULL, ?4, ?5)",
            rusqlite::params![pipeline, period, time::format(&started), key_ids, inputs],
        )
        .map_err(&err)?;
        let id = RunId(tx.last_insert_rowid());
        tx.commit().map_err(&err)?;
        Ok(id)
    }

    /// Sets the delivery ids a running run reads, once it has received
    /// them (a run begins before its deliveries are opened, so that a
    /// delivery refused on the way is a failure of a recorded run).
    pub fn set_run_inputs(&mut self, run: RunId, inputs: &[String]) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot record the inputs of a run";
        let inputs = to_json(inputs);
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        let status = run_status(&tx, path, run)?;
        if status != RunStatus::Running {
            return Err(LedgerError::RunNotRunning {
                path: path.to_owned(),
                run,
                status,
                what: "its inputs are fixed",
            });
        }
        tx.execute(
            "UPDATE runs SET inputs = ?2 WHERE id = ?1",
            rusqlite::params![run.0, inputs],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Records a finished stage of a running run.
    pub fn record_stage(&mut self, run: RunId, stage: &StageRecord) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot record a run stage";
        if !stage.counts.is_object() {
            return Err(LedgerError::Invalid {
                path: self.path.clone(),
                what: format!(
                    "stage {:?} of run {run}: counts must be a JSON object",
                    stage.stage
                ),
            });
        }
        let wall_ms = i64::try_from(stage.wall_ms).map_err(|_| LedgerError::Invalid {
            path: self.path.clone(),
            what: format!("stage {:?} of run {run}: wall_ms is too large", stage.stage),
        })?;
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        let status = run_status(&tx, path, run)?;
        if status != RunStatus::Running {
            return Err(LedgerError::RunNotRunning {
                path: path.to_owned(),
                run,
                status,
                what: "it takes no more stages",
            });
        }
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM run_stages WHERE run_id = ?1 AND stage = ?2)",
                rusqlite::params![run.0, stage.stage],
                |r| r.get(0),
            )
            .map_err(&err)?;
        if exists {
            return Err(LedgerError::DuplicateStage {
                path: path.to_owned(),
                run,
                stage: stage.stage.clone(),
            });
        }
        tx.execute(
            "INSERT INTO run_stages (run_id, stage, started, wall_ms, counts)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                run.0,
                stage.stage,
                time::format(&stage.started),
                wall_ms,
                stage.counts.to_string(),
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Ends a running run with `status` (not `running`) and, for a failure,
    /// its error text (counts and names only, never a value from the data).
    pub fn finish_run(
        &mut self,
        run: RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot record the end of a run";
        if status == RunStatus::Running {
            return Err(LedgerError::Invalid {
                path: self.path.clone(),
                what: format!("run {run} cannot finish with status running"),
            });
        }
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        let current = run_status(&tx, path, run)?;
        if current != RunStatus::Running {
            return Err(LedgerError::RunNotRunning {
                path: path.to_owned(),
                run,
                status: current,
                what: "it cannot be finished again",
            });
        }
        tx.execute(
            "UPDATE runs SET status = ?2, error = ?3, finished = ?4 WHERE id = ?1",
            rusqlite::params![run.0, status.as_str(), error, time::format(&finished)],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Records the release a run wrote (one per run).
    pub fn record_release(
        &mut self,
        run: RunId,
        release: &ReleaseRecord,
    ) -> Result<(), LedgerError> {
        const WHAT: &str = "cannot record a release";
        let file = utf8_path(&self.path, &release.path)?.to_owned();
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        run_status(&tx, path, run)?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM releases WHERE run_id = ?1)",
                [run.0],
                |r| r.get(0),
            )
            .map_err(&err)?;
        if exists {
            return Err(LedgerError::DuplicateRelease {
                path: path.to_owned(),
                run,
            });
        }
        tx.execute(
            "INSERT INTO releases (run_id, path, release_id, manifest_sha256, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                run.0,
                file,
                release.release_id,
                release.manifest_sha256,
                time::format(&release.created),
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Runs, oldest first, of one pipeline or of all.
    pub fn runs(&self, pipeline: Option<&str>) -> Result<Vec<RunSummary>, LedgerError> {
        let err = db_err(&self.path, "cannot list runs");
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR pipeline = ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&err)?;
        let rows = stmt.query_map([pipeline], RawRun::from_row).map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(&err)?.into_summary(&self.path)?);
        }
        Ok(out)
    }

    /// One run with its stages and release.
    pub fn run(&self, id: RunId) -> Result<Option<RunDetail>, LedgerError> {
        let err = db_err(&self.path, "cannot read a run");
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        let Some(raw) = self
            .conn
            .query_row(&sql, [id.0], RawRun::from_row)
            .optional()
            .map_err(&err)?
        else {
            return Ok(None);
        };
        let run = raw.into_summary(&self.path)?;

        let mut stmt = self
            .conn
            .prepare(
                "SELECT stage, started, wall_ms, counts FROM run_stages
                 WHERE run_id = ?1 ORDER BY started, rowid",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([id.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(&err)?;
        let mut stages = Vec::new();
        for row in rows {
            let (stage, started, wall_ms, counts) = row.map_err(&err)?;
            let at = |what: &str| format!("stage {stage:?} of run {id}: {what}");
            stages.push(StageRecord {
                started: parse_time(&self.path, &started, || at("started"))?,
                wall_ms: u64::try_from(wall_ms).map_err(|_| corrupt(&self.path, at("wall_ms")))?,
                counts: serde_json::from_str(&counts)
                    .map_err(|_| corrupt(&self.path, at("counts are not JSON")))?,
                stage,
            });
        }

        let release = self
            .conn
            .query_row(
                "SELECT path, release_id, manifest_sha256, created FROM releases WHERE run_id = ?1",
                [id.0],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(&err)?
            .map(|(path, release_id, manifest_sha256, created)| {
                Ok::<_, LedgerError>(ReleaseRecord {
                    path: PathBuf::from(path),
                    release_id,
                    manifest_sha256,
                    created: parse_time(&self.path, &created, || {
                        format!("release of run {id}: created")
                    })?,
                })
            })
            .transpose()?;
        Ok(Some(RunDetail {
            run,
            stages,
            release,
        }))
    }

    /// Periods for which `pipeline` has a succeeded run, so a restarted
    /// daemon does not run them again.
    pub fn succeeded_periods(&self, pipeline: &str) -> Result<BTreeSet<String>, LedgerError> {
        let err = db_err(&self.path, "cannot list succeeded periods");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT period FROM runs WHERE pipeline = ?1 AND status = 'succeeded'",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([pipeline], |r| r.get::<_, String>(0))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    /// Marks every run still `running` as `abandoned` (finished at `now`,
    /// error [`ABANDONED_ERROR`]) and returns how many there were. Call it
    /// at daemon start, while no other process can be running a pipeline.
    pub fn abandon_running(&mut self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        const WHAT: &str = "cannot close abandoned runs";
        let (tx, path) = self.write(WHAT)?;
        let err = db_err(path, WHAT);
        let n = tx
            .execute(
                "UPDATE runs SET status = 'abandoned', finished = ?1, error = ?2
                 WHERE status = 'running'",
                rusqlite::params![time::format(&now), ABANDONED_ERROR],
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n)
    }
}

fn db_err<'a>(path: &'a Path, what: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError + 'a {
    move |source| LedgerError::Database {
        path: path.to_owned(),
        what,
        source,
    }
}

fn corrupt(path: &Path, what: String) -> LedgerError {
    LedgerError::Corrupt {
        path: path.to_owned(),
        what,
    }
}

fn parse_time(
    path: &Path,
    text: &str,
    field: impl FnOnce() -> String,
) -> Result<DateTime<Utc>, LedgerError> {
    time::parse(text).ok_or_else(|| corrupt(path, format!("{} is not an RFC 3339 time", field())))
}

fn schema_marks(conn: &Connection) -> rusqlite::Result<(i32, i32)> {
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    Ok((version, app))
}

fn checked_sha256(path: &Path, sha256: &str) -> Result<String, LedgerError> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha256.to_ascii_lowercase())
    } else {
        Err(LedgerError::Invalid {
            path: path.to_owned(),
            what: "a delivery's sha256 must be 64 hex digits".into(),
        })
    }
}

fn utf8_path<'a>(db: &Path, file: &'a Path) -> Result<&'a str, LedgerError> {
    file.to_str().ok_or_else(|| LedgerError::Invalid {
        path: db.to_owned(),
        what: format!("{} is not a UTF-8 path", file.display()),
    })
}

fn to_json(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

fn run_status(tx: &Connection, path: &Path, run: RunId) -> Result<RunStatus, LedgerError> {
    let status: Option<String> = tx
        .query_row("SELECT status FROM runs WHERE id = ?1", [run.0], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err(path, "cannot read a run"))?;
    let status = status.ok_or_else(|| LedgerError::UnknownRun {
        path: path.to_owned(),
        run,
    })?;
    status
        .parse()
        .map_err(|e: StatusParseError| corrupt(path, format!("run {run}: {e}")))
}

fn select_delivery(
    conn: &Connection,
    path: &Path,
    column: &'static str,
    value: &str,
) -> Result<Option<DeliveryRecord>, LedgerError> {
    let err = db_err(path, "cannot read a delivery");
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {column} = ?1");
    conn.query_row(&sql, [value], RawDelivery::from_row)
        .optional()
        .map_err(err)?
        .map(|raw| raw.into_record(path))
        .transpose()
}

/// A `deliveries` row as stored, before its text is checked.
struct RawDelivery {
    id: String,
    source: String,
    period: String,
    partner: Option<String>,
    sha256: String,
    path: String,
    received: String,
    status: String,
    reason: Option<String>,
}

impl RawDelivery {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawDelivery {
            id: r.get(0)?,
            source: r.get(1)?,
            period: r.get(2)?,
            partner: r.get(3)?,
            sha256: r.get(4)?,
            path: r.get(5)?,
            received: r.get(6)?,
            status: r.get(7)?,
            reason: r.get(8)?,
        })
    }

    fn into_record(self, db: &Path) -> Result<DeliveryRecord, LedgerError> {
        let id = self.id;
        Ok(DeliveryRecord {
            received: parse_time(db, &self.received, || format!("delivery {id:?}: received"))?,
            status: self
                .status
                .parse()
                .map_err(|e: StatusParseError| corrupt(db, format!("delivery {id:?}: {e}")))?,
            id,
            source: self.source,
            period: self.period,
            partner: self.partner,
            sha256: self.sha256,
            path: PathBuf::from(self.path),
            reason: self.reason,
        })
    }
}

/// A `runs` row as stored, before its text is checked.
struct RawRun {
    id: i64,
    pipeline: String,
    period: String,
    started: String,
    finished: Option<String>,
    status: String,
    error: Option<String>,
    key_ids: String,
    inputs: String,
}

impl RawRun {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRun {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            period: r.get(2)?,
            started: r.get(3)?,
            finished: r.get(4)?,
            status: r.get(5)?,
            error: r.get(6)?,
            key_ids: r.get(7)?,
            inputs: r.get(8)?,
        })
    }

    fn into_summary(self, db: &Path) -> Result<RunSummary, LedgerError> {
        let id = RunId(self.id);
        let list = |text: &str, field: &str| {
            serde_json::from_str::<Vec<String>>(text).map_err(|_| {
                corrupt(
                    db,
                    format!("run {id}: {field} is not a JSON array of strings"),
                )
            })
        };
        Ok(RunSummary {
            id,
            started: parse_time(db, &self.started, || format!("run {id}: started"))?,
            finished: self
                .finished
                .as_deref()
                .map(|t| parse_time(db, t, || format!("run {id}: finished")))
                .transpose()?,
            status: self
                .status
                .parse()
                .map_err(|e: StatusParseError| corrupt(db, format!("run {id}: {e}")))?,
            key_ids: list(&self.key_ids, "key_ids")?,
            inputs: list(&self.inputs, "inputs")?,
            pipeline: self.pipeline,
            period: self.period,
            error: self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, hour, minute, 0).unwrap()
    }

    fn sha(digit: char) -> String {
        digit.to_string().repeat(64)
    }

    fn new_delivery(id: &str, sha_digit: char, received: DateTime<Utc>) -> NewDelivery {
        NewDelivery {
            id: id.to_owned(),
            source: "payroll".to_owned(),
            period: "2024".to_owned(),
            partner: Some("acme".to_owned()),
            sha256: sha(sha_digit),
            path: PathBuf::from(format!("/inbox/{id}-{sha_digit}.sealed")),
            received,
        }
    }

    fn record(new: &NewDelivery, status: DeliveryStatus, reason: Option<&str>) -> DeliveryRecord {
        DeliveryRecord {
            id: new.id.clone(),
            source: new.source.clone(),
            period: new.period.clone(),
            partner: new.partner.clone(),
            sha256: new.sha256.to_ascii_lowercase(),
            path: new.path.clone(),
            received: new.received,
            status,
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_run_gets_its_inputs_once_received_and_keeps_them_after() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let run = ledger
            .begin_run("p", "2024", &["k:1".to_owned()], &[], at(9, 0))
            .unwrap();
        let inputs = vec!["a".repeat(32), "b".repeat(32)];
        ledger.set_run_inputs(run, &inputs).unwrap();
        assert_eq!(ledger.run(run).unwrap().unwrap().run.inputs, inputs);
        ledger
            .finish_run(run, RunStatus::Succeeded, None, at(9, 5))
            .unwrap();
        assert!(matches!(
            ledger.set_run_inputs(run, &[]),
            Err(LedgerError::RunNotRunning { .. })
        ));
        assert!(matches!(
            ledger.set_run_inputs(RunId(99), &[]),
            Err(LedgerError::UnknownRun { .. })
        ));
    }

    fn temp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        (dir, path)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn open_creates_the_schema_and_reopen_keeps_the_data() {
        let (_dir, path) = temp();
        assert!(matches!(
            Ledger::open_existing(&path),
            Err(LedgerError::Missing { .. })
        ));
        let d1 = new_delivery("D-1", 'a', at(10, 0));
        {
            let mut ledger = Ledger::open(&path).unwrap();
            let (version, app) = schema_marks(&ledger.conn).unwrap();
            assert_eq!((version, app), (SCHEMA_VERSION, APPLICATION_ID));
            let mode: String = ledger
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let fk: bool = ledger
                .conn
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap();
            assert!(fk);
            assert_eq!(
                ledger.register_delivery(&d1).unwrap(),
                Registration::Registered
            );
            ledger
                .begin_run("annual", "2024", &[], &strings(&["D-1"]), at(11, 0))
                .unwrap();
        }
        let ledger = Ledger::open_existing(&path).unwrap();
        assert_eq!(
            ledger.delivery("D-1").unwrap(),
            Some(record(&d1, DeliveryStatus::Registered, None))
        );
        let runs = ledger.runs(None).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].inputs, strings(&["D-1"]));
        assert_eq!(runs[0].status, RunStatus::Running);
    }

    #[test]
    fn a_known_id_or_sha256_is_a_replay_and_is_not_inserted() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let d1 = new_delivery("D-1", 'a', at(10, 0));
        let original = record(&d1, DeliveryStatus::Registered, None);
        assert_eq!(
            ledger.register_delivery(&d1).unwrap(),
            Registration::Registered
        );

        // Same id, other file.
        let same_id = new_delivery("D-1", 'b', at(11, 0));
        let Registration::Replayed { original: o } = ledger.register_delivery(&same_id).unwrap()
        else {
            panic!("same id must be a replay");
        };
        assert_eq!(o, original);
        assert!(!o.is_same_file(&same_id));

        // Other id, same bytes (hash in capitals).
        let mut same_sha = new_delivery("D-2", 'a', at(12, 0));
        same_sha.sha256 = same_sha.sha256.to_ascii_uppercase();
        let Registration::Replayed { original: o } = ledger.register_delivery(&same_sha).unwrap()
        else {
            panic!("same sha256 must be a replay");
        };
        assert_eq!(o, original);
        assert!(!o.is_same_file(&same_sha));

        // The very same file again, as after a crash.
        let again = ledger.register_delivery(&d1).unwrap();
        let Registration::Replayed { original: o } = again else {
            panic!("re-registration must be reported");
        };
        assert!(o.is_same_file(&d1));

        assert_eq!(
            ledger.deliveries(&DeliveryFilter::default()).unwrap(),
            vec![original.clone()]
        );

        ledger.record_replay(&same_id, &o).unwrap();
        let replays = ledger
            .deliveries(&DeliveryFilter {
                status: Some(DeliveryStatus::Replayed),
                ..DeliveryFilter::default()
            })
            .unwrap();
        assert_eq!(
            replays,
            vec![record(
                &same_id,
                DeliveryStatus::Replayed,
                Some("replay of delivery D-1 (same delivery id)")
            )]
        );
    }

    #[test]
    fn a_rejected_delivery_does_not_block_a_correct_redelivery() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let bad = new_delivery("D-1", 'a', at(10, 0));
        ledger.reject_delivery(&bad, "checksum mismatch").unwrap();
        let good = new_delivery("D-1", 'b', at(11, 0));
        assert_eq!(
            ledger.register_delivery(&good).unwrap(),
            Registration::Registered
        );
        assert_eq!(
            ledger.deliveries(&DeliveryFilter::default()).unwrap(),
            vec![
                record(&bad, DeliveryStatus::Rejected, Some("checksum mismatch")),
                record(&good, DeliveryStatus::Registered, None),
            ]
        );

        // Registered, then failed at ingest: a new file under its id replaces it.
        ledger
            .set_delivery_status("D-1", DeliveryStatus::Rejected, Some("ingest refused"))
            .unwrap();
        // The same bad file again is still a replay.
        assert!(matches!(
            ledger.register_delivery(&good).unwrap(),
            Registration::Replayed { .. }
        ));
        let fixed = new_delivery("D-1", 'c', at(12, 0));
        assert_eq!(
            ledger.register_delivery(&fixed).unwrap(),
            Registration::Registered
        );
        assert_eq!(
            ledger.delivery("D-1").unwrap(),
            Some(record(&fixed, DeliveryStatus::Registered, None))
        );
        let rejected = ledger
            .deliveries(&DeliveryFilter {
                status: Some(DeliveryStatus::Rejected),
                ..DeliveryFilter::default()
            })
            .unwrap();
        assert_eq!(
            rejected,
            vec![
                record(&bad, DeliveryStatus::Rejected, Some("checksum mismatch")),
                record(&good, DeliveryStatus::Rejected, Some("ingest refused")),
            ]
        );

        ledger
            .set_delivery_status("D-1", DeliveryStatus::Consumed, None)
            .unwrap();
        assert_eq!(
            ledger.delivery("D-1").unwrap().unwrap().status,
            DeliveryStatus::Consumed
        );
        assert!(matches!(
            ledger.set_delivery_status("D-9", DeliveryStatus::Consumed, None),
            Err(LedgerError::UnknownDelivery { .. })
        ));
        assert!(matches!(
            ledger.set_delivery_status("D-1", DeliveryStatus::Replayed, None),
            Err(LedgerError::Invalid { .. })
        ));
    }

    #[test]
    fn deliveries_filter_and_order() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let mut later = new_delivery("D-1", 'a', at(12, 0));
        later.source = "absence".to_owned();
        let mut other_period = new_delivery("D-3", 'c', at(10, 0));
        other_period.period = "2023".to_owned();
        let first = new_delivery("D-2", 'b', at(10, 0));
        for d in [&later, &other_period, &first] {
            ledger.register_delivery(d).unwrap();
        }
        let ids = |f: DeliveryFilter| -> Vec<String> {
            ledger
                .deliveries(&f)
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect()
        };
        assert_eq!(ids(DeliveryFilter::default()), ["D-2", "D-3", "D-1"]);
        assert_eq!(
            ids(DeliveryFilter {
                source: Some("payroll".into()),
                period: Some("2024".into()),
                status: Some(DeliveryStatus::Registered),
            }),
            ["D-2"]
        );
        assert!(
            ids(DeliveryFilter {
                status: Some(DeliveryStatus::Consumed),
                ..DeliveryFilter::default()
            })
            .is_empty()
        );
    }

    #[test]
    fn a_run_with_stages_and_release_reads_back_whole() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let started = at(9, 0) + chrono::Duration::milliseconds(750);
        let run = ledger
            .begin_run(
                "annual",
                "2024",
                &strings(&["stage2:3", "research:1"]),
                &strings(&["D-1", "D-2"]),
                started,
            )
            .unwrap();
        let ingest = StageRecord {
            stage: "ingest".into(),
            started: at(9, 0),
            wall_ms: 1200,
            counts: json!({"rows_read": 100, "rows_rejected": 2}),
        };
        let link = StageRecord {
            stage: "link".into(),
            started: at(9, 5),
            wall_ms: 4000,
            counts: json!({"persons": 40}),
        };
        ledger.record_stage(run, &link).unwrap();
        ledger.record_stage(run, &ingest).unwrap();
        assert!(matches!(
            ledger.record_stage(run, &ingest),
            Err(LedgerError::DuplicateStage { .. })
        ));
        let bad_counts = StageRecord {
            counts: json!([1, 2]),
            stage: "export".into(),
            ..ingest.clone()
        };
        assert!(matches!(
            ledger.record_stage(run, &bad_counts),
            Err(LedgerError::Invalid { .. })
        ));
        let release = ReleaseRecord {
            path: PathBuf::from("/releases/annual-2024"),
            release_id: "R-0123456789abcdef".into(),
            manifest_sha256: sha('e'),
            created: at(9, 30),
        };
        ledger.record_release(run, &release).unwrap();
        assert!(matches!(
            ledger.record_release(run, &release),
            Err(LedgerError::DuplicateRelease { .. })
        ));
        ledger
            .finish_run(run, RunStatus::Succeeded, None, at(9, 31))
            .unwrap();
        assert!(matches!(
            ledger.finish_run(run, RunStatus::Failed, Some("late"), at(9, 32)),
            Err(LedgerError::RunNotRunning {
                status: RunStatus::Succeeded,
                ..
            })
        ));
        let late = StageRecord {
            stage: "export".into(),
            ..ingest.clone()
        };
        assert!(matches!(
            ledger.record_stage(run, &late),
            Err(LedgerError::RunNotRunning { .. })
        ));
        assert!(matches!(
            ledger.record_stage(RunId(99), &late),
            Err(LedgerError::UnknownRun { .. })
        ));

        let detail = ledger.run(run).unwrap().unwrap();
        let summary = RunSummary {
            id: run,
            pipeline: "annual".into(),
            period: "2024".into(),
            started: at(9, 0),
            finished: Some(at(9, 31)),
            status: RunStatus::Succeeded,
            error: None,
            key_ids: strings(&["stage2:3", "research:1"]),
            inputs: strings(&["D-1", "D-2"]),
        };
        assert_eq!(
            detail,
            RunDetail {
                run: summary.clone(),
                stages: vec![ingest, link],
                release: Some(release),
            }
        );
        assert_eq!(ledger.runs(Some("annual")).unwrap(), vec![summary]);
        assert!(ledger.runs(Some("monthly")).unwrap().is_empty());
        assert_eq!(ledger.run(RunId(99)).unwrap(), None);

        let text = serde_json::to_value(&detail).unwrap();
        assert_eq!(text["status"], "succeeded");
        assert_eq!(text["started"], "2025-03-01T09:00:00Z");
        assert_eq!(text["stages"][0]["counts"]["rows_read"], 100);
        assert_eq!(text["release"]["created"], "2025-03-01T09:30:00Z");
    }

    #[test]
    fn runs_left_running_by_a_crash_are_abandoned() {
        let (_dir, path) = temp();
        let (crashed, done) = {
            let mut ledger = Ledger::open(&path).unwrap();
            let done = ledger
                .begin_run("annual", "2023", &[], &[], at(8, 0))
                .unwrap();
            ledger
                .finish_run(done, RunStatus::Succeeded, None, at(8, 30))
                .unwrap();
            let crashed = ledger
                .begin_run("annual", "2024", &[], &[], at(9, 0))
                .unwrap();
            (crashed, done)
            // Dropped without finishing: the process "stopped".
        };
        let mut ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.abandon_running(at(12, 0)).unwrap(), 1);
        let run = ledger.run(crashed).unwrap().unwrap().run;
        assert_eq!(run.status, RunStatus::Abandoned);
        assert_eq!(run.error.as_deref(), Some(ABANDONED_ERROR));
        assert_eq!(run.finished, Some(at(12, 0)));
        let run = ledger.run(done).unwrap().unwrap().run;
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.finished, Some(at(8, 30)));
        assert_eq!(ledger.abandon_running(at(13, 0)).unwrap(), 0);
    }

    #[test]
    fn succeeded_periods_only_counts_succeeded_runs_of_the_pipeline() {
        let (_dir, path) = temp();
        let mut ledger = Ledger::open(&path).unwrap();
        let plan = [
            ("annual", "2021", Some(RunStatus::Failed)),
            ("annual", "2022", Some(RunStatus::Succeeded)),
            ("annual", "2022", Some(RunStatus::Succeeded)),
            ("annual", "2023", Some(RunStatus::Abandoned)),
            ("annual", "2024", None),
            ("annual", "2020", Some(RunStatus::Succeeded)),
            ("monthly", "2019", Some(RunStatus::Succeeded)),
        ];
        for (pipeline, period, status) in plan {
            let run = ledger
                .begin_run(pipeline, period, &[], &[], at(9, 0))
                .unwrap();
            if let Some(status) = status {
                ledger.finish_run(run, status, None, at(10, 0)).unwrap();
            }
        }
        let periods = ledger.succeeded_periods("annual").unwrap();
        assert_eq!(
            periods,
            BTreeSet::from(["2020".to_owned(), "2022".to_owned()])
        );
        assert!(ledger.succeeded_periods("weekly").unwrap().is_empty());
    }

    #[test]
    fn a_ledger_from_a_newer_schema_or_another_program_is_refused() {
        let (dir, path) = temp();
        drop(Ledger::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Ledger::open(&path).unwrap_err();
        assert!(
            matches!(err, LedgerError::NewerSchema { found, known, .. }
                if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err}"
        );
        assert!(err.to_string().contains("ledger.sqlite"), "{err}");

        let foreign = dir.path().join("other.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        assert!(matches!(
            Ledger::open(&foreign),
            Err(LedgerError::NotALedger { .. })
        ));

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, vec![b'x'; 4096]).unwrap();
        assert!(matches!(
            Ledger::open(&text),
            Err(LedgerError::Database { .. })
        ));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>().unwrap(), *s);
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown run status \"done\"; expected one of: running succeeded failed abandoned "
        );
        assert_eq!("42".parse::<RunId>().unwrap(), RunId(42));
    }
}
