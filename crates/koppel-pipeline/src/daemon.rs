//! Scheduled operation: a service that admits sealed deliveries as they
//! arrive and runs each pipeline when its schedule is due and every
//! delivery it expects is in.
//!
//! Everything it decides rests on the run ledger and a small schedule file
//! in the state directory, never on memory alone, so a restart loses
//! nothing: a delivery that arrived while the service was down is admitted
//! at the first look, a period that succeeded is never run again, and a run
//! cut short by a crash is marked abandoned (its release, written
//! atomically, never half exists).
//!
//! The loop is a tokio task woken by an interval and by SIGTERM/SIGINT.
//! Admitting and running are blocking work done in place on the runtime's
//! worker (`block_in_place`): a signal that arrives meanwhile is taken when
//! the work ends, so a running run finishes before the service stops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use koppel_ingest::SpecSet;
use koppel_join::LinkConfig;
use koppel_ledger::{DeliveryFilter, DeliveryStatus};
use koppel_pseudonymise::KeyStore;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::RunError;
use crate::run::{Arrival, Records, RunSettings, admit, now, run_pipeline, sealed_name};
use crate::spec::{PipelineSpec, parse_cron};
use crate::state::StateDir;

/// Where refused deliveries are moved, inside the inbox, so that they are
/// not looked at again and never stand beside a good delivery.
pub const REFUSED_FOLDER: &str = "refused";
const SCHEDULE_FILE: &str = "schedule.json";

pub struct DaemonSettings<'a> {
    pub pipelines: Vec<PipelineSpec>,
    pub specs: &'a SpecSet,
    pub store: &'a KeyStore,
    pub inbox: PathBuf,
    /// Where releases go; `None`: each pipeline's `release.destination`.
    pub release_dir: Option<PathBuf>,
    pub state: StateDir,
    pub link: LinkConfig,
    /// How often the inbox and the schedules are looked at.
    pub poll: Duration,
}

/// Per pipeline: the last schedule tick taken, and whether a run is still
/// owed for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Due {
    /// RFC 3339, UTC (chrono's serde support would rebuild Arrow).
    last_tick: Option<String>,
    pending: bool,
}

impl Due {
    fn last_tick(&self) -> Option<DateTime<Utc>> {
        self.last_tick
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What the service did, for its caller and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DaemonSummary {
    pub deliveries_admitted: u64,
    pub deliveries_refused: u64,
    pub runs_succeeded: u64,
    pub runs_failed: u64,
    pub runs_abandoned_at_start: u64,
}

/// Runs the service until `shutdown` completes or SIGTERM/SIGINT arrives.
/// Call inside a multi-threaded tokio runtime.
pub async fn run_daemon(
    settings: DaemonSettings<'_>,
    actor: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<DaemonSummary, RunError> {
    for p in &settings.pipelines {
        if p.schedule.is_none() {
            return Err(RunError::Daemon(format!(
                "pipeline {} has no schedule; the service only runs scheduled pipelines",
                p.pipeline
            )));
        }
    }
    let (mut ledger, mut audit) = settings.state.open_records()?;
    let mut records = Records {
        ledger: &mut ledger,
        audit: &mut audit,
        actor: actor.to_owned(),
    };
    let abandoned = records.ledger.abandon_running(now())?;
    let mut service = Service {
        settings: &settings,
        due: load_due(&settings.state)?,
        seen: HashMap::new(),
        sighted: HashMap::new(),
        waiting_for: HashMap::new(),
        failed_with: HashMap::new(),
        summary: DaemonSummary {
            runs_abandoned_at_start: abandoned as u64,
            ..DaemonSummary::default()
        },
    };
    records.audit(
        "daemon.started",
        "daemon",
        serde_json::json!({
            "pipelines": settings.pipelines.iter().map(|p| &p.pipeline).collect::<Vec<_>>(),
            "inbox": settings.inbox,
            "runs_abandoned": abandoned,
        }),
    )?;
    info!(
        pipelines = settings.pipelines.len(),
        abandoned, "service started"
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::io("SIGTERM"))?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(RunError::io("SIGINT"))?;
    let mut tick = tokio::time::interval(settings.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let reason = loop {
        tokio::select! {
            _ = tick.tick() => {
                tokio::task::block_in_place(|| service.look(&mut records))?;
            }
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = &mut shutdown => break "shutdown",
        }
    };
    info!(reason, "service stopping");
    records.audit(
        "daemon.stopped",
        "daemon",
        serde_json::json!({"reason": reason, "summary": service.summary}),
    )?;
    Ok(service.summary)
}

struct Service<'a> {
    settings: &'a DaemonSettings<'a>,
    due: BTreeMap<String, Due>,
    /// Inbox files already looked at, by path, with the size and time they
    /// had; a file that changes is looked at again.
    seen: HashMap<PathBuf, (u64, SystemTime)>,
    /// Files seen once, with the size and time they had then.
    sighted: HashMap<PathBuf, (u64, SystemTime)>,
    /// What each pending pipeline waits for, to log only changes.
    waiting_for: HashMap<String, Vec<String>>,
    /// The deliveries a failed run had, so the same inputs are not tried
    /// again until something changes or the next tick.
    failed_with: HashMap<String, BTreeSet<String>>,
    summary: DaemonSummary,
}

impl Service<'_> {
    fn look(&mut self, records: &mut Records<'_>) -> Result<(), RunError> {
        self.admit_arrivals(records)?;
        let pipelines = self.settings.pipelines.clone();
        for pipeline in &pipelines {
            self.consider(pipeline, records)?;
        }
        Ok(())
    }

    /// Admits every sealed delivery in the inbox not looked at yet: verify,
    /// register, or refuse and move aside.
    fn admit_arrivals(&mut self, records: &mut Records<'_>) -> Result<(), RunError> {
        let inbox = &self.settings.inbox;
        let mut candidates = Vec::new();
        for entry in std::fs::read_dir(inbox).map_err(RunError::io(inbox))? {
            let entry = entry.map_err(RunError::io(inbox))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sealed") || name.starts_with('.') || !path.is_file() {
                continue;
            }
            let meta = entry.metadata().map_err(RunError::io(&path))?;
            let stamp = (meta.len(), meta.modified().map_err(RunError::io(&path))?);
            match self.seen.get(&path) {
                Some(seen) if *seen == stamp => continue,
                _ => {}
            }
            // Taken only once it looked the same twice in a row: a file
            // still being written is not refused for being incomplete.
            if self.sighted.insert(path.clone(), stamp) != Some(stamp) {
                continue;
            }
            candidates.push((path, name, stamp));
        }
        candidates.sort();
        for (path, name, stamp) in candidates {
            self.sighted.remove(&path);
            self.seen.insert(path.clone(), stamp);
            let Some((source, period)) = sealed_name(&name, self.settings.specs) else {
                self.refuse(
                    &path,
                    records,
                    "the file name is not <source>_<period>.<csv|parquet>.sealed",
                )?;
                continue;
            };
            let arrival = Arrival {
                source,
                period,
                sealed: path.clone(),
            };
            let expected_partner = self
                .settings
                .pipelines
                .iter()
                .find_map(|p| p.sources.get(&arrival.source))
                .map(|s| s.partner.clone());
            let outcome = admit(
                &arrival,
                expected_partner.as_deref(),
                self.settings.store,
                self.settings.specs,
                records,
            );
            match outcome {
                Ok(d) => {
                    self.summary.deliveries_admitted += 1;
                    info!(source = %d.source, period = %d.period, delivery = %d.delivery_id, "delivery admitted");
                }
                Err(e) => {
                    self.summary.deliveries_refused += 1;
                    warn!(file = %name, error = %crate::run::chain(&e), "delivery refused");
                    self.move_aside(&path)?;
                }
            }
        }
        Ok(())
    }

    /// Refuses a file that is not a delivery at all.
    fn refuse(
        &mut self,
        path: &Path,
        records: &mut Records<'_>,
        what: &str,
    ) -> Result<(), RunError> {
        self.summary.deliveries_refused += 1;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        warn!(file = %name, what, "delivery refused");
        let sha256 = koppel_contract::digest::sha256_file(path)
            .map_err(RunError::io(path))?
            .sha256;
        records.ledger.reject_delivery(
            &koppel_ledger::NewDelivery {
                id: name.clone(),
                source: "-".into(),
                period: "-".into(),
                partner: None,
                sha256: sha256.clone(),
                path: path.to_owned(),
                received: now(),
            },
            what,
        )?;
        records.audit(
            "delivery.rejected",
            &name,
            serde_json::json!({"reason": what, "sha256": sha256}),
        )?;
        self.move_aside(path)
    }

    fn move_aside(&mut self, path: &Path) -> Result<(), RunError> {
        let folder = self.settings.inbox.join(REFUSED_FOLDER);
        std::fs::create_dir_all(&folder).map_err(RunError::io(&folder))?;
        let name = path.file_name().expect("an inbox file has a name");
        let mut target = folder.join(name);
        let mut n = 1;
        while target.exists() {
            target = folder.join(format!("{}.{n}", name.to_string_lossy()));
            n += 1;
        }
        std::fs::rename(path, &target).map_err(RunError::io(path))?;
        self.seen.remove(path);
        Ok(())
    }

    /// Starts a run of `pipeline` if its schedule is due, its period not
    /// done, and every delivery it expects admitted.
    fn consider(
        &mut self,
        pipeline: &PipelineSpec,
        records: &mut Records<'_>,
    ) -> Result<(), RunError> {
        let name = pipeline.pipeline.clone();
        let period = pipeline.period_label();
        let cron = parse_cron(&pipeline.schedule.as_ref().expect("checked at start").cron)
            .map_err(RunError::Daemon)?;
        let due = self.due.entry(name.clone()).or_default();
        if records.ledger.succeeded_periods(&name)?.contains(&period) {
            if due.pending {
                due.pending = false;
                save_due(&self.settings.state, &self.due)?;
            }
            return Ok(());
        }
        let now = now();
        if let Ok(tick) = cron.find_previous_occurrence(&now, true)
            && due.last_tick().is_none_or(|last| last < tick)
        {
            due.last_tick = Some(tick.to_rfc3339());
            due.pending = true;
            self.failed_with.remove(&name);
            save_due(&self.settings.state, &self.due)?;
            info!(pipeline = %name, tick = %tick, "schedule due");
            records.audit(
                "schedule.due",
                &name,
                serde_json::json!({"period": period, "tick": tick.to_rfc3339()}),
            )?;
        }
        if !self.due[&name].pending {
            return Ok(());
        }

        // Every expected delivery admitted (registered, not yet used).
        let registered = records.ledger.deliveries(&DeliveryFilter {
            status: Some(DeliveryStatus::Registered),
            ..DeliveryFilter::default()
        })?;
        let mut inputs = BTreeSet::new();
        let mut missing = Vec::new();
        for (source, period) in pipeline.expected_deliveries() {
            let here = registered
                .iter()
                .filter(|d| d.source == source && d.period == period && d.path.exists())
                .max_by_key(|d| d.received);
            match here {
                Some(d) => {
                    inputs.insert(d.id.clone());
                }
                None => missing.push(format!("{source} {period}")),
            }
        }
        if !missing.is_empty() {
            if self.waiting_for.get(&name) != Some(&missing) {
                info!(pipeline = %name, missing = %missing.join(", "), "waiting for deliveries");
                self.waiting_for.insert(name, missing);
            }
            return Ok(());
        }
        self.waiting_for.remove(&name);
        if self.failed_with.get(&name) == Some(&inputs) {
            return Ok(());
        }

        let settings = RunSettings {
            pipeline,
            specs: self.settings.specs,
            store: self.settings.store,
            inbox: self.settings.inbox.clone(),
            release_dir: self
                .settings
                .release_dir
                .clone()
                .unwrap_or_else(|| pipeline.release.destination.clone()),
            state: &self.settings.state,
            link: self.settings.link.clone(),
        };
        match run_pipeline(&settings, records, &mut |_| {}) {
            Ok(outcome) => {
                self.summary.runs_succeeded += 1;
                info!(pipeline = %name, run = outcome.run.0, release = %outcome.release_dir.display(), "scheduled run succeeded");
                let due = self.due.get_mut(&name).expect("entry made above");
                due.pending = false;
                save_due(&self.settings.state, &self.due)?;
            }
            Err(e) => {
                self.summary.runs_failed += 1;
                warn!(pipeline = %name, error = %crate::run::chain(&e), "scheduled run failed; waiting for a new delivery or the next tick");
                self.failed_with.insert(name, inputs);
            }
        }
        Ok(())
    }
}

fn load_due(state: &StateDir) -> Result<BTreeMap<String, Due>, RunError> {
    let path = state.root().join(SCHEDULE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| RunError::Daemon(format!("{}: not a schedule file: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(RunError::Io { path, source: e }),
    }
}

/// Written to a temporary file and renamed, so a crash leaves the old or
/// the new schedule, never half of one.
fn save_due(state: &StateDir, due: &BTreeMap<String, Due>) -> Result<(), RunError> {
    let path = state.root().join(SCHEDULE_FILE);
    let text = serde_json::to_vec_pretty(due).expect("the schedule serialises");
    koppel_contract::fsx::write_atomic(&path, &text).map_err(RunError::io(&path))
}
