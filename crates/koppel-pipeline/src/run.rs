//! One pipeline run: from the sealed deliveries in an inbox to a research
//! release, with every step in the run ledger and the audit trail.
//!
//! A run begins in the ledger before anything is opened, so that whatever
//! stops it — a missing, tampered or replayed delivery, a source that
//! fails validation, a linking or disclosure failure — is the recorded
//! failure of a run, naming the delivery and what failed. Each run works in
//! a folder of its own under the state directory, so a rerun after a
//! failure needs no clean-up; the release itself appears only when every
//! check passed (koppel-export writes it atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use koppel_contract::files::release::REPORT_FILE;
use koppel_contract::sources::stage2_file_name;
use koppel_export::release::sha256_file;
use koppel_export::{Attachment, DisclosureReport, ExportOptions, LeakGuard};
use koppel_ingest::{DeliveryManifest, DeliverySummary, SpecSet};
use koppel_join::{LinkConfig, LinkageReport};
use koppel_ledger::{
    AuditEvent, AuditTrail, DeliveryStatus, Ledger, NewDelivery, Registration, ReleaseRecord,
    RunId, RunStatus, StageRecord,
};
use koppel_pseudonymise::{
    KeyInfo, KeyPurpose, KeyStore, Pseudonymiser, ReceiveError, SealedDelivery, Stage,
    Stage2Transform, VerifiedDelivery, open_delivery, pseudonymise_sealed, verify_delivery,
};
use serde::Serialize;
use tracing::{info, info_span, warn};

use crate::error::RunError;
use crate::report::run_report;
use crate::spec::PipelineSpec;
use crate::state::StateDir;

/// The run's own summary (with wall times), in the run folder only.
pub const SUMMARY_FILE: &str = "summary.json";

/// The ledger and the audit trail a run writes to.
pub struct Records<'a> {
    pub ledger: &'a mut Ledger,
    pub audit: &'a mut AuditTrail,
    /// Who runs it, for the audit trail: `operator:<name>` or `daemon`.
    pub actor: String,
}

impl Records<'_> {
    pub(crate) fn audit(
        &mut self,
        action: &str,
        subject: &str,
        details: serde_json::Value,
    ) -> Result<(), RunError> {
        self.audit.append(&AuditEvent {
            time: now(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            details,
        })?;
        Ok(())
    }
}

/// What a run needs besides its records.
pub struct RunSettings<'a> {
    pub pipeline: &'a PipelineSpec,
    pub specs: &'a SpecSet,
    pub store: &'a KeyStore,
    /// Where partners' sealed deliveries arrive.
    pub inbox: PathBuf,
    /// Where the run's release folder is made.
    pub release_dir: PathBuf,
    pub state: &'a StateDir,
    /// Memory limit and parallelism of the linking stage.
    pub link: LinkConfig,
}

/// The stages of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStage {
    /// Unseal and verify every expected delivery; register it.
    Receive,
    /// Validate each staged delivery and replace its stage-1 pseudonyms by
    /// the project's stage-2 pseudonyms.
    Pseudonymise,
    /// Link the sources into the person and organisation models.
    Link,
    /// Disclosure control and the release.
    Export,
}

impl RunStage {
    pub const ALL: [RunStage; 4] = [
        RunStage::Receive,
        RunStage::Pseudonymise,
        RunStage::Link,
        RunStage::Export,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStage::Receive => "receive",
            RunStage::Pseudonymise => "pseudonymise",
            RunStage::Link => "link",
            RunStage::Export => "export",
        }
    }
}

/// Progress, for a progress bar; the same facts go to tracing.
#[derive(Debug)]
pub enum RunEvent<'a> {
    Started {
        run: RunId,
        period: &'a str,
    },
    StageStarted {
        stage: RunStage,
        /// How many steps the stage has (deliveries), or 0 when it is one
        /// step.
        steps: u64,
    },
    Step {
        stage: RunStage,
        /// What was just done, e.g. `pfzw_dienstverbanden 2024`.
        what: &'a str,
    },
    StageFinished {
        stage: RunStage,
        wall: Duration,
    },
}

/// One delivery as the run used it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryOutcome {
    pub source: String,
    pub period: String,
    pub partner: String,
    pub delivery_id: String,
    pub sealed: PathBuf,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Rejected rows by column and rule.
    pub rejects: Vec<RejectCount>,
    /// The delivery as received (header and manifest checked); stage 2
    /// reads the sealed file through it (not in the summary).
    #[serde(skip)]
    pub received: SealedDelivery,
}

impl DeliveryOutcome {
    fn received(delivery: SealedDelivery) -> DeliveryOutcome {
        let m = &delivery.manifest;
        DeliveryOutcome {
            source: m.source.clone(),
            period: m.period.clone(),
            partner: m.partner.clone().unwrap_or_default(),
            delivery_id: m.delivery_id.clone().unwrap_or_default(),
            sealed: delivery.sealed.clone(),
            rows_read: m.rows,
            rows_accepted: 0,
            rows_rejected: 0,
            rejects: Vec::new(),
            received: delivery,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectCount {
    pub column: String,
    pub rule: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageTiming {
    pub stage: RunStage,
    pub wall_ms: u64,
}

/// What a successful run did.
#[derive(Debug, Serialize)]
pub struct RunOutcome {
    pub run: RunId,
    pub pipeline: String,
    pub period: String,
    pub release_id: String,
    pub release_dir: PathBuf,
    /// The run's folder: its report and summary.
    pub run_dir: PathBuf,
    pub deliveries: Vec<DeliveryOutcome>,
    pub linkage: LinkageReport,
    pub disclosure: DisclosureReport,
    pub stages: Vec<StageTiming>,
}

/// A sealed delivery found in the inbox, with the source and period its
/// file name gives.
pub(crate) struct Arrival {
    pub source: String,
    pub period: String,
    pub sealed: PathBuf,
}

/// Runs `settings.pipeline` once over the deliveries in the inbox.
///
/// On failure the run is recorded as failed (error text in the ledger and
/// the audit trail) and no release exists; the error names the delivery or
/// stage that failed.
pub fn run_pipeline(
    settings: &RunSettings<'_>,
    records: &mut Records<'_>,
    observe: &mut dyn FnMut(RunEvent<'_>),
) -> Result<RunOutcome, RunError> {
    let pipeline = settings.pipeline;
    let period = pipeline.period_label();
    let (stage2_info, stage2) = project_key(
        settings.store,
        &pipeline.keys.stage2,
        KeyPurpose::Stage2,
        Stage::Stage2,
    )?;
    let (release_info, research) = project_key(
        settings.store,
        &pipeline.keys.release,
        KeyPurpose::Release,
        Stage::Research,
    )?;
    let key_ids = vec![
        format!("{}:{}", stage2_info.id, stage2_info.version),
        format!("{}:{}", release_info.id, release_info.version),
    ];
    settings.state.create()?;
    let run = records
        .ledger
        .begin_run(&pipeline.pipeline, &period, &key_ids, &[], now())?;
    let span = info_span!("run", pipeline = %pipeline.pipeline, run = run.0, period = %period);
    let _entered = span.enter();
    let purged = settings.state.purge_expired(
        records.ledger,
        &pipeline.pipeline,
        pipeline.retention.staged_days,
        now(),
    )?;
    if !purged.runs.is_empty() {
        info!(runs = ?purged.runs, "staged data past retention removed");
        records.audit(
            "retention.purged",
            &pipeline.pipeline,
            serde_json::json!({"runs": purged.runs, "staged_days": pipeline.retention.staged_days}),
        )?;
    }
    records.audit(
        "run.started",
        &run_subject(&pipeline.pipeline, run),
        serde_json::json!({"period": period, "keys": key_ids, "inbox": settings.inbox}),
    )?;
    info!("run started");
    observe(RunEvent::Started {
        run,
        period: &period,
    });
    let run_dir = settings.state.run_dir(&pipeline.pipeline, run);
    let attempt = Attempt {
        settings,
        run,
        period: &period,
        run_dir: &run_dir,
        stage2: &stage2,
        stage2_info: &stage2_info,
        research: &research,
        release_info: &release_info,
    };
    match attempt.go(records, observe) {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            let text = format!("{:#}", chain(&error));
            warn!(error = %text, "run failed");
            // The failure is recorded even when recording more fails; the
            // first error is the one the operator needs.
            let _ = records
                .ledger
                .finish_run(run, RunStatus::Failed, Some(&text), now());
            let _ = records.audit(
                "run.failed",
                &run_subject(&pipeline.pipeline, run),
                serde_json::json!({"period": period, "error": text}),
            );
            Err(RunError::Failed {
                run,
                source: Box::new(error),
            })
        }
    }
}

/// An error with its chain of causes, `: `-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> impl std::fmt::Display + '_ {
    struct Chain<'a>(&'a dyn std::error::Error);
    impl std::fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)?;
            let mut next = self.0.source();
            while let Some(e) = next {
                write!(f, ": {e}")?;
                next = e.source();
            }
            Ok(())
        }
    }
    Chain(error)
}

/// The wall clock, as the ledger and the audit trail record it.
pub(crate) fn now() -> DateTime<Utc> {
    std::time::SystemTime::now().into()
}

pub(crate) fn run_subject(pipeline: &str, run: RunId) -> String {
    format!("{pipeline}/run-{run}")
}

/// The active version of a project key, checked for its purpose.
fn project_key(
    store: &KeyStore,
    id: &str,
    purpose: KeyPurpose,
    stage: Stage,
) -> Result<(KeyInfo, Pseudonymiser), RunError> {
    let (info, key) = store.key(id, None)?;
    if info.purpose != purpose {
        return Err(RunError::KeyPurpose {
            id: info.id,
            found: info.purpose,
            expected: purpose,
        });
    }
    let pseudonymiser = Pseudonymiser::new(stage, &key, &info.id, info.version);
    drop(key);
    Ok((info, pseudonymiser))
}

struct Attempt<'a> {
    settings: &'a RunSettings<'a>,
    run: RunId,
    period: &'a str,
    run_dir: &'a Path,
    stage2: &'a Pseudonymiser,
    stage2_info: &'a KeyInfo,
    research: &'a Pseudonymiser,
    release_info: &'a KeyInfo,
}

impl Attempt<'_> {
    fn go(
        &self,
        records: &mut Records<'_>,
        observe: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<RunOutcome, RunError> {
        let settings = self.settings;
        let pipeline = settings.pipeline;
        let stage2_dir = self.run_dir.join("stage2");
        let linked_dir = self.run_dir.join("linked");
        let mut timings = Vec::new();

        // Receive: each delivery's header and manifest checked against its
        // file name, the pipeline and the ledger. The rest of each file is
        // verified by stage 2's pass over it, which decrypts the content as
        // it parses it; only then is the delivery registered.
        let arrivals = find_arrivals(settings)?;
        let (started, clock) = self.stage_start(RunStage::Receive, arrivals.len(), observe);
        let mut deliveries = Vec::new();
        for arrival in &arrivals {
            let _span = info_span!("delivery", source = %arrival.source, period = %arrival.period)
                .entered();
            deliveries.push(self.receive(arrival, records)?);
            observe(RunEvent::Step {
                stage: RunStage::Receive,
                what: &format!("{} {}", arrival.source, arrival.period),
            });
        }
        self.stage_end(
            RunStage::Receive,
            started,
            clock,
            serde_json::json!({"deliveries": deliveries.len()}),
            records,
            &mut timings,
            observe,
        )?;

        // Pseudonymise (stage 2), which also verifies each sealed file in
        // full and validates each delivery again.
        let (started, clock) = self.stage_start(RunStage::Pseudonymise, deliveries.len(), observe);
        records.audit(
            "key.used",
            &format!("{}:{}", self.stage2_info.id, self.stage2_info.version),
            serde_json::json!({"purpose": "stage2", "run": self.run}),
        )?;
        std::fs::create_dir_all(&stage2_dir).map_err(RunError::io(&stage2_dir))?;
        let mut guard = LeakGuard::new();
        let results = self.pseudonymise_all(&deliveries, &stage2_dir, &mut guard, observe);
        let ids = self.register_all(&arrivals, &mut deliveries, results, records)?;
        let rows: u64 = deliveries.iter().map(|d| d.rows_accepted).sum();
        let rejected: u64 = deliveries.iter().map(|d| d.rows_rejected).sum();
        self.stage_end(
            RunStage::Pseudonymise,
            started,
            clock,
            serde_json::json!({
                "rows": rows,
                "rows_rejected": rejected,
                "leak_guard_fingerprints": guard.distinct(),
            }),
            records,
            &mut timings,
            observe,
        )?;

        // Link.
        let (started, clock) = self.stage_start(RunStage::Link, 0, observe);
        let mut link_config = settings.link.clone();
        link_config.reference_date = pipeline.reference_date();
        let linked = {
            let _span = info_span!("link").entered();
            koppel_join::link(&stage2_dir, &linked_dir, &link_config)?
        };
        self.stage_end(
            RunStage::Link,
            started,
            clock,
            serde_json::json!({
                "person_model_rows": linked.report.person_model_rows,
                "workforce_model_rows": linked.report.workforce_model_rows,
                "organisation_model_rows": linked.report.organisation_model_rows,
            }),
            records,
            &mut timings,
            observe,
        )?;

        // Export.
        let (started, clock) = self.stage_start(RunStage::Export, 0, observe);
        records.audit(
            "key.used",
            &format!("{}:{}", self.release_info.id, self.release_info.version),
            serde_json::json!({"purpose": "release", "run": self.run}),
        )?;
        let release_dir = settings.release_dir.join(format!(
            "{}_{}_run-{}",
            pipeline.pipeline, self.period, self.run
        ));
        let linkage = linked.report.clone();
        let key_labels = [
            format!(
                "{} v{} (stage 2)",
                self.stage2_info.id, self.stage2_info.version
            ),
            format!(
                "{} v{} (research ids)",
                self.release_info.id, self.release_info.version
            ),
        ];
        let report_inputs = (&deliveries, &linkage, &key_labels);
        let exported = {
            let _span = info_span!("export").entered();
            koppel_export::export(
                &linked_dir,
                &release_dir,
                ExportOptions {
                    config: &pipeline.disclosure,
                    research: self.research,
                    release_name: release_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    pipeline: pipeline.pipeline.clone(),
                    pipeline_version: pipeline.version.clone(),
                    guard,
                    attachments: vec![Attachment {
                        name: REPORT_FILE.into(),
                        render: Box::new(|disclosure: &DisclosureReport| {
                            let (deliveries, linkage, keys) = report_inputs;
                            koppel_report::render_html(&run_report(
                                pipeline,
                                self.period,
                                keys,
                                deliveries,
                                linkage,
                                disclosure,
                            ))
                            .into_bytes()
                        }),
                    }],
                    interrupt_before_commit: false,
                },
            )?
        };
        let d = &exported.report;
        let export_counts = serde_json::json!({
            "person_rows_released": d.person.rows_released,
            "person_rows_locally_suppressed": d.person.rows_locally_suppressed,
            "person_rows_dropped": d.person.rows_dropped,
            "k_reached": d.person.smallest_class,
            "organisation_rows_released": d.organisation.rows_released,
            "tables": d.tables.len(),
        });
        self.stage_end(
            RunStage::Export,
            started,
            clock,
            export_counts,
            records,
            &mut timings,
            observe,
        )?;

        // The operator's copy of the report, and the run's summary.
        let report_copy = self.run_dir.join(REPORT_FILE);
        std::fs::copy(exported.release_dir.join(REPORT_FILE), &report_copy)
            .map_err(RunError::io(&report_copy))?;
        let (manifest_sha256, _) = sha256_file(
            &exported
                .release_dir
                .join(koppel_contract::files::release::MANIFEST_FILE),
        )?;
        records.ledger.record_release(
            self.run,
            &ReleaseRecord {
                path: exported.release_dir.clone(),
                release_id: exported.release_id.clone(),
                manifest_sha256: manifest_sha256.clone(),
                created: now(),
            },
        )?;
        for id in &ids {
            records
                .ledger
                .set_delivery_status(id, DeliveryStatus::Consumed, None)?;
        }
        records.audit(
            "release.written",
            &exported.release_dir.display().to_string(),
            serde_json::json!({
                "run": self.run,
                "release_id": exported.release_id,
                "manifest_sha256": manifest_sha256,
                "k_reached": d.person.smallest_class,
            }),
        )?;
        let outcome = RunOutcome {
            run: self.run,
            pipeline: pipeline.pipeline.clone(),
            period: self.period.to_owned(),
            release_id: exported.release_id,
            release_dir: exported.release_dir,
            run_dir: self.run_dir.to_owned(),
            deliveries,
            linkage,
            disclosure: exported.report,
            stages: timings,
        };
        let summary = self.run_dir.join(SUMMARY_FILE);
        let json = serde_json::to_vec_pretty(&outcome).expect("the outcome serialises");
        std::fs::write(&summary, json).map_err(RunError::io(&summary))?;
        records
            .ledger
            .finish_run(self.run, RunStatus::Succeeded, None, now())?;
        records.audit(
            "run.succeeded",
            &run_subject(&pipeline.pipeline, self.run),
            serde_json::json!({"period": self.period, "release_id": outcome.release_id}),
        )?;
        info!(release = %outcome.release_dir.display(), "run succeeded");
        Ok(outcome)
    }

    fn stage_start(
        &self,
        stage: RunStage,
        steps: usize,
        observe: &mut dyn FnMut(RunEvent<'_>),
    ) -> (DateTime<Utc>, Instant) {
        info!(stage = stage.as_str(), "stage started");
        observe(RunEvent::StageStarted {
            stage,
            steps: steps as u64,
        });
        (now(), Instant::now())
    }

    #[allow(clippy::too_many_arguments)]
    fn stage_end(
        &self,
        stage: RunStage,
        started: DateTime<Utc>,
        clock: Instant,
        counts: serde_json::Value,
        records: &mut Records<'_>,
        timings: &mut Vec<StageTiming>,
        observe: &mut dyn FnMut(RunEvent<'_>),
    ) -> Result<(), RunError> {
        let wall = clock.elapsed();
        let wall_ms = wall.as_millis() as u64;
        records.ledger.record_stage(
            self.run,
            &StageRecord {
                stage: stage.as_str().to_owned(),
                started,
                wall_ms,
                counts: counts.clone(),
            },
        )?;
        info!(stage = stage.as_str(), wall_ms, counts = %counts, "stage finished");
        timings.push(StageTiming { stage, wall_ms });
        observe(RunEvent::StageFinished { stage, wall });
        Ok(())
    }

    /// Checks one delivery's header and manifest (reading only the chunks
    /// that hold the manifest) against its file name, the pipeline and the
    /// ledger; a refusal is recorded as [`admit`] records it. A delivery id
    /// the ledger holds for another file, or as rejected, goes through
    /// [`admit`] itself now, so a replay is refused before stage 2 starts.
    fn receive(
        &self,
        arrival: &Arrival,
        records: &mut Records<'_>,
    ) -> Result<DeliveryOutcome, RunError> {
        let settings = self.settings;
        let expected_partner = &settings.pipeline.sources[&arrival.source].partner;
        let opened = match open_delivery(&arrival.sealed, settings.store, settings.specs) {
            Ok(opened) => opened,
            Err(error) => return Err(refuse_unverified(arrival, error, records)?),
        };
        let manifest = &opened.manifest;
        if let Some(what) = claims_mismatch(arrival, manifest, Some(expected_partner)) {
            let sha256 = sealed_sha256(arrival)?;
            return Err(refuse_claims(arrival, manifest, &sha256, what, records)?);
        }
        let id = manifest.delivery_id.as_deref().unwrap_or_default();
        if let Some(known) = records.ledger.delivery(id)?
            && (known.path != arrival.sealed || known.status == DeliveryStatus::Rejected)
        {
            return admit(
                arrival,
                Some(expected_partner),
                settings.store,
                settings.specs,
                records,
            );
        }
        Ok(DeliveryOutcome::received(opened))
    }

    /// Registers the deliveries in order once stage 2 is over, each with the
    /// verification its stage-2 pass proved, and fills in their row counts.
    /// Should stage 2 have failed, a delivery it did not read to the end is
    /// admitted as a run without stage 2 would (read once more in full), so
    /// the ledger holds what it held before: a tampered file recorded as
    /// rejected and named in the error, the others registered. Otherwise
    /// the first failure in delivery order is the run's.
    /// Returns the delivery ids, the run's inputs.
    fn register_all(
        &self,
        arrivals: &[Arrival],
        deliveries: &mut [DeliveryOutcome],
        results: Vec<Option<Result<(DeliverySummary, VerifiedDelivery), RunError>>>,
        records: &mut Records<'_>,
    ) -> Result<Vec<String>, RunError> {
        let settings = self.settings;
        let mut failure = None;
        for ((arrival, delivery), result) in arrivals.iter().zip(deliveries.iter_mut()).zip(results)
        {
            match result {
                Some(Ok((summary, verified))) => {
                    register(arrival, &verified, records)?;
                    delivery.rows_read = summary.rows_read;
                    delivery.rows_accepted = summary.rows_accepted;
                    delivery.rows_rejected = summary.rows_rejected;
                    delivery.rejects = summary
                        .violations
                        .iter()
                        .map(|v| RejectCount {
                            column: v.column.clone(),
                            rule: v.rule.to_string(),
                            rows: v.count,
                        })
                        .collect();
                }
                unfinished => {
                    let expected_partner = &settings.pipeline.sources[&arrival.source].partner;
                    admit(
                        arrival,
                        Some(expected_partner),
                        settings.store,
                        settings.specs,
                        records,
                    )?;
                    if let Some(Err(error)) = unfinished {
                        failure.get_or_insert(error);
                    }
                }
            }
        }
        let ids: Vec<String> = deliveries.iter().map(|d| d.delivery_id.clone()).collect();
        records.ledger.set_run_inputs(self.run, &ids)?;
        match failure {
            Some(error) => Err(error),
            None => Ok(ids),
        }
    }

    /// Stage 2 over every delivery, several at a time: ingest parses a
    /// file on one core, so the two payroll years run side by side. Each
    /// worker fills a fork of the leak guard with the pseudonyms of both
    /// layers as they pass. The first failing delivery stops the stage: the
    /// deliveries not yet started stay `None`.
    #[allow(clippy::type_complexity)]
    fn pseudonymise_all(
        &self,
        deliveries: &[DeliveryOutcome],
        out: &Path,
        guard: &mut LeakGuard,
        observe: &mut dyn FnMut(RunEvent<'_>),
    ) -> Vec<Option<Result<(DeliverySummary, VerifiedDelivery), RunError>>> {
        let sizes: Vec<u64> = deliveries.iter().map(|d| d.received.sealed_len).collect();
        let parent = tracing::Span::current();
        let (results, forks) = largest_first(
            &sizes,
            || guard.fork(),
            |fork, i| {
                let delivery = &deliveries[i];
                let _span = info_span!(parent: &parent, "delivery",
                    source = %delivery.source, period = %delivery.period)
                .entered();
                self.pseudonymise(delivery, out, fork)
            },
            |i, result| {
                if let Ok((summary, _)) = result {
                    info!(source = %deliveries[i].source, period = %deliveries[i].period,
                        rows = summary.rows_read, rejected = summary.rows_rejected, "stage 2 written");
                    observe(RunEvent::Step {
                        stage: RunStage::Pseudonymise,
                        what: &format!("{} {}", deliveries[i].source, deliveries[i].period),
                    });
                }
            },
        );
        for fork in forks {
            guard.absorb(fork);
        }
        results
    }

    fn pseudonymise(
        &self,
        delivery: &DeliveryOutcome,
        out: &Path,
        guard: &mut LeakGuard,
    ) -> Result<(DeliverySummary, VerifiedDelivery), RunError> {
        let spec = self
            .settings
            .specs
            .get(&delivery.source)
            .expect("pipeline sources are checked against the specs");
        let transform = Stage2Transform::new(&spec.source, self.stage2.clone())?;
        let output = out.join(stage2_file_name(&delivery.source, &delivery.period));
        let (done, verified) = pseudonymise_sealed(
            &delivery.received,
            self.settings.store,
            spec,
            &transform,
            &output,
            &mut |batch| {
                guard.insert_identifier_columns(batch);
            },
        )
        .map_err(|e| RunError::Source {
            sealed: delivery.sealed.clone(),
            source: Box::new(e),
        })?;
        Ok((done.summary, verified))
    }
}

/// Runs `work` over the items `0..sizes.len()` on one thread per core (no
/// more threads than items), largest first, so that what starts last is
/// small. Each worker carries a state made by `state` on the calling thread
/// and handed back at the end; `done` sees each result as it arrives, on
/// the calling thread. No item starts after one failed; those stay
/// `None`.
fn largest_first<S: Send, T: Send, E: Send>(
    sizes: &[u64],
    state: impl Fn() -> S,
    work: impl Fn(&mut S, usize) -> Result<T, E> + Sync,
    mut done: impl FnMut(usize, &Result<T, E>),
) -> (Vec<Option<Result<T, E>>>, Vec<S>) {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, sizes.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<Option<Result<T, E>>> = sizes.iter().map(|_| None).collect();
    let mut states = Vec::with_capacity(workers);
    std::thread::scope(|scope| {
        let (sender, finished) = std::sync::mpsc::channel();
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let mut state = state();
                let (sender, order, next, failed, work) =
                    (sender.clone(), &order, &next, &failed, &work);
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let result = work(&mut state, i);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if sender.send((i, result)).is_err() {
                            break;
                        }
                    }
                    state
                })
            })
            .collect();
        drop(sender);
        for (i, result) in finished {
            done(i, &result);
            results[i] = Some(result);
        }
        for handle in handles {
            match handle.join() {
                Ok(state) => states.push(state),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    (results, states)
}

/// Verifies one sealed delivery (writing nothing) and registers it in the
/// ledger; a delivery refused here is recorded as rejected or replayed, in
/// the ledger and the audit trail. `expected_partner` is the partner the
/// pipeline expects the source from, when a pipeline is known.
pub(crate) fn admit(
    arrival: &Arrival,
    expected_partner: Option<&str>,
    store: &KeyStore,
    specs: &SpecSet,
    records: &mut Records<'_>,
) -> Result<DeliveryOutcome, RunError> {
    let verified = verify_delivery(&arrival.sealed, store, specs);
    admit_verified(arrival, verified, expected_partner, records)
}

/// [`admit`] for a delivery already verified (or refused by verification).
pub(crate) fn admit_verified(
    arrival: &Arrival,
    verified: Result<VerifiedDelivery, ReceiveError>,
    expected_partner: Option<&str>,
    records: &mut Records<'_>,
) -> Result<DeliveryOutcome, RunError> {
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => return Err(refuse_unverified(arrival, error, records)?),
    };
    let manifest = &verified.delivery.manifest;
    if let Some(what) = claims_mismatch(arrival, manifest, expected_partner) {
        let sha256 = &verified.sealed_sha256;
        return Err(refuse_claims(arrival, manifest, sha256, what, records)?);
    }
    register(arrival, &verified, records)?;
    Ok(DeliveryOutcome::received(verified.delivery))
}

/// Records a delivery that failed verification as rejected (ledger and
/// audit trail) and gives the error that names it.
fn refuse_unverified(
    arrival: &Arrival,
    error: ReceiveError,
    records: &mut Records<'_>,
) -> Result<RunError, RunError> {
    // Verification may have stopped before the end of the file; the ledger
    // keeps the whole file's hash.
    let sha256 = sealed_sha256(arrival)?;
    let file_name = arrival
        .sealed
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reason = format!("{:#}", chain(&error));
    let refused = NewDelivery {
        id: file_name.clone(),
        source: arrival.source.clone(),
        period: arrival.period.clone(),
        partner: None,
        sha256: sha256.clone(),
        path: arrival.sealed.clone(),
        received: now(),
    };
    records.ledger.reject_delivery(&refused, &reason)?;
    records.audit(
        "delivery.rejected",
        &file_name,
        serde_json::json!({"source": arrival.source, "period": arrival.period, "sha256": sha256, "reason": reason}),
    )?;
    Ok(RunError::Delivery {
        sealed: arrival.sealed.clone(),
        source: Box::new(error),
    })
}

/// What an authentic manifest claims that its file name or the pipeline
/// contradicts, if anything.
fn claims_mismatch(
    arrival: &Arrival,
    m: &DeliveryManifest,
    expected_partner: Option<&str>,
) -> Option<String> {
    let partner = m.partner.as_deref().unwrap_or_default();
    if m.source != arrival.source || m.period != arrival.period {
        Some(format!(
            "its manifest says {} {}, its file name {} {}",
            m.source, m.period, arrival.source, arrival.period
        ))
    } else {
        expected_partner
            .filter(|e| !partner.eq_ignore_ascii_case(e))
            .map(|expected| {
                format!(
                    "sealed by {partner}, but the pipeline expects {} from {expected}",
                    arrival.source
                )
            })
    }
}

/// Records a delivery whose claims were contradicted as rejected and gives
/// the error that names it.
fn refuse_claims(
    arrival: &Arrival,
    m: &DeliveryManifest,
    sha256: &str,
    what: String,
    records: &mut Records<'_>,
) -> Result<RunError, RunError> {
    let new = new_delivery(arrival, m, sha256);
    records.ledger.reject_delivery(&new, &what)?;
    records.audit(
        "delivery.rejected",
        &new.id,
        serde_json::json!({"source": arrival.source, "period": arrival.period, "sha256": sha256, "reason": what}),
    )?;
    Ok(RunError::Mismatch {
        sealed: arrival.sealed.clone(),
        what,
    })
}

fn new_delivery(arrival: &Arrival, m: &DeliveryManifest, sha256: &str) -> NewDelivery {
    NewDelivery {
        id: m.delivery_id.clone().unwrap_or_default(),
        source: arrival.source.clone(),
        period: arrival.period.clone(),
        partner: Some(m.partner.clone().unwrap_or_default()),
        sha256: sha256.to_owned(),
        path: arrival.sealed.clone(),
        received: now(),
    }
}

/// Registers a delivery that verified in full: new, or the very file the
/// ledger already holds under its id (a rerun). Another file under a known
/// id is a replay, and a file rejected before stays rejected.
fn register(
    arrival: &Arrival,
    verified: &VerifiedDelivery,
    records: &mut Records<'_>,
) -> Result<(), RunError> {
    let sha256 = &verified.sealed_sha256;
    let m = &verified.delivery.manifest;
    let new = new_delivery(arrival, m, sha256);
    let delivery_id = new.id.clone();
    let partner = new.partner.clone().unwrap_or_default();
    match records.ledger.register_delivery(&new)? {
        Registration::Registered => {
            let key = &verified.delivery.transport_key;
            records.audit(
                "delivery.registered",
                &delivery_id,
                serde_json::json!({
                    "source": m.source, "period": m.period, "partner": partner,
                    "sha256": sha256, "rows": m.rows,
                    "transport_key": format!("{}:{}", key.0, key.1),
                }),
            )?;
        }
        Registration::Replayed { original } if original.is_same_file(&new) => {
            if original.status == DeliveryStatus::Rejected {
                return Err(RunError::Mismatch {
                    sealed: arrival.sealed.clone(),
                    what: format!(
                        "delivery {delivery_id} was rejected before ({}); ask {partner} for a new delivery",
                        original.reason.as_deref().unwrap_or("no reason recorded")
                    ),
                });
            }
        }
        Registration::Replayed { original } => {
            records.ledger.record_replay(&new, &original)?;
            records.audit(
                "delivery.replayed",
                &delivery_id,
                serde_json::json!({
                    "source": m.source, "period": m.period, "sha256": sha256,
                    "original": original.id, "original_path": original.path,
                }),
            )?;
            return Err(RunError::Replay {
                sealed: arrival.sealed.clone(),
                delivery_id,
                original_path: original.path,
                received: original.received.format("%Y-%m-%d %H:%M UTC").to_string(),
            });
        }
    }
    info!(delivery = %delivery_id, rows = m.rows, "delivery received");
    Ok(())
}

/// Finds the sealed delivery of every expected (source, period) in the
/// inbox: `<source>_<period>.<csv|parquet>.sealed`. Deliveries for other
/// pipelines or periods are left alone.
fn find_arrivals(settings: &RunSettings<'_>) -> Result<Vec<Arrival>, RunError> {
    let inbox = &settings.inbox;
    let mut found: BTreeMap<(String, String), Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(inbox).map_err(RunError::io(inbox))? {
        let path = entry.map_err(RunError::io(inbox))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((source, period)) = sealed_name(name, settings.specs) else {
            continue;
        };
        found.entry((source, period)).or_default().push(path);
    }
    let mut arrivals = Vec::new();
    let mut missing = Vec::new();
    for (source, period) in settings.pipeline.expected_deliveries() {
        match found.remove(&(source.clone(), period.clone())) {
            None => missing.push(format!("{source} {period}")),
            Some(mut paths) if paths.len() > 1 => {
                paths.sort();
                return Err(RunError::Ambiguous {
                    source_name: source,
                    period,
                    files: paths,
                });
            }
            Some(mut paths) => arrivals.push(Arrival {
                source,
                period,
                sealed: paths.pop().expect("one path"),
            }),
        }
    }
    if !missing.is_empty() {
        return Err(RunError::Missing {
            inbox: inbox.clone(),
            missing,
        });
    }
    Ok(arrivals)
}

/// The SHA-256 of an arrival's whole sealed file, as the ledger keeps it.
fn sealed_sha256(arrival: &Arrival) -> Result<String, RunError> {
    Ok(koppel_contract::digest::sha256_file(&arrival.sealed)
        .map_err(RunError::io(&arrival.sealed))?
        .sha256)
}

/// `pfzw_dienstverbanden_2024.csv.sealed` → (`pfzw_dienstverbanden`, `2024`).
pub fn sealed_name(name: &str, specs: &SpecSet) -> Option<(String, String)> {
    let parsed = specs.delivery_name(Path::new(name))?;
    parsed.sealed.then_some((parsed.source, parsed.period))
}
