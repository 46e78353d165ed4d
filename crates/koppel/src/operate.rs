//! The operator's commands: `koppel run`, `koppel pipeline check|schema`,
//! `koppel runs`, `koppel deliveries` and `koppel audit verify`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use koppel_join::LinkConfig;
use koppel_ledger::{AuditTrail, DeliveryFilter, DeliveryStatus, Ledger, RunId};
use koppel_pipeline::{
    PipelineSpec, Records, RunEvent, RunOutcome, RunSettings, RunStage, StateDir, run_pipeline,
};

use crate::custody::{StoreArgs, open_store};

/// Where the ledger, the audit trail and the run folders live.
#[derive(Args, Clone)]
pub struct StateArgs {
    /// The operator's state directory: run ledger, audit trail, run folders.
    #[arg(long = "state", env = "KOPPEL_STATE", default_value = "koppel-state")]
    pub state: PathBuf,
}

/// What `run` and `daemon` share: where deliveries arrive and releases go,
/// the state and keys, and the linking stage's resources.
#[derive(Args)]
pub struct OperateArgs {
    /// Folder where partners' sealed deliveries arrive.
    #[arg(long)]
    pub inbox: PathBuf,
    /// Folder under which releases are written (default: the pipeline's
    /// `release.destination`).
    #[arg(long)]
    pub release_dir: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Directory of source specs (default: pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    pub specs: Option<PathBuf>,
    /// Memory for the linking stage's joins before they spill, in MiB.
    #[arg(long, default_value_t = 1536)]
    pub memory_limit_mib: usize,
    /// Parallelism of the linking stage (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl OperateArgs {
    fn link_config(&self) -> LinkConfig {
        LinkConfig {
            memory_limit: self.memory_limit_mib << 20,
            target_partitions: self.threads,
            ..LinkConfig::default()
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// The pipeline file, e.g. pipelines/preventieplan.yaml.
    pub pipeline: PathBuf,
    #[command(flatten)]
    pub operate: OperateArgs,
}

#[derive(Args)]
pub struct DaemonArgs {
    /// Folder of pipeline files (*.yaml); every one needs a schedule.
    #[arg(long)]
    pub pipelines: PathBuf,
    /// Seconds between looks at the inbox and the schedules.
    #[arg(long, default_value_t = 10)]
    pub poll_seconds: u64,
    #[command(flatten)]
    pub operate: OperateArgs,
}

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Check a pipeline file without running it: syntax, source specs,
    /// disclosure rules and hierarchies, schedule, and with --store the keys.
    Check {
        file: PathBuf,
        /// Also check that the key store holds the pipeline's keys, with
        /// the right purposes.
        #[arg(long, env = "KOPPEL_KEYSTORE")]
        store: Option<PathBuf>,
        /// Directory of source specs (default: pipelines/sources if it
        /// exists here, else the contract's specs built into koppel).
        #[arg(long, env = "KOPPEL_SPECS")]
        specs: Option<PathBuf>,
    },
    /// Print the JSON Schema of pipeline files, for editors.
    Schema,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Every run, oldest first.
    List {
        #[command(flatten)]
        state: StateArgs,
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One run with its stages, counts and release.
    Show {
        #[command(flatten)]
        state: StateArgs,
        id: RunId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DeliveriesCommand {
    /// Deliveries received, rejected and replayed.
    List {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        period: Option<String>,
        /// registered, consumed, rejected or replayed.
        #[arg(long)]
        status: Option<DeliveryStatus>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chain; exits non-zero naming the first
    /// edited, removed, inserted or reordered line.
    Verify {
        #[command(flatten)]
        state: StateArgs,
        /// The trail file (default: audit.jsonl in the state directory).
        #[arg(long)]
        trail: Option<PathBuf>,
    },
}

/// Who runs a command, for the audit trail.
pub fn operator() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("operator:{name}")
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let o = &args.operate;
    let specs = crate::load_specs(&o.specs)?;
    let pipeline = PipelineSpec::from_file(&args.pipeline, &specs)?;
    let store = open_store(&o.store)?;
    let release_dir = o
        .release_dir
        .clone()
        .unwrap_or_else(|| pipeline.release.destination.clone());
    let state = StateDir::new(&o.state.state);
    let outcome = run_with_progress(
        &RunSettings {
            pipeline: &pipeline,
            specs: &specs,
            store: &store,
            inbox: o.inbox.clone(),
            release_dir,
            state: &state,
            link: o.link_config(),
        },
        &operator(),
    )?;
    print_outcome(&outcome);
    Ok(ExitCode::SUCCESS)
}

/// Opens the records, runs the pipeline with a progress display, and
/// returns what it did.
pub fn run_with_progress(settings: &RunSettings<'_>, actor: &str) -> Result<RunOutcome> {
    let (mut ledger, mut audit) = settings.state.open_records()?;
    let mut records = Records {
        ledger: &mut ledger,
        audit: &mut audit,
        actor: actor.to_owned(),
    };
    let bar = ProgressBar::hidden();
    let interactive = std::io::stderr().is_terminal();
    let mut observe = |event: RunEvent<'_>| match event {
        RunEvent::Started { run, period } => {
            eprintln!("run {run}: {} {period}", settings.pipeline.pipeline);
        }
        RunEvent::StageStarted { stage, steps } => {
            // Every stage sets it, so the daemon's next run after an
            // export (failed or not) links with linking's.
            if stage == RunStage::Export {
                crate::tune_allocator_for_export();
            } else {
                crate::tune_allocator();
            }
            if !interactive {
                return;
            }
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.reset();
            if steps > 0 {
                bar.set_length(steps);
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>13} [{bar:30}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
            } else {
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>13} {spinner} [{elapsed}]")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_prefix(stage.as_str());
        }
        RunEvent::Step { what, .. } => {
            bar.set_message(what.to_owned());
            bar.inc(1);
        }
        RunEvent::StageFinished { stage, wall } => {
            bar.disable_steady_tick();
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            eprintln!("{:>13} done in {:.1} s", stage.as_str(), wall.as_secs_f64());
        }
    };
    let outcome = run_pipeline(settings, &mut records, &mut observe);
    bar.finish_and_clear();
    Ok(outcome?)
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

pub fn print_outcome(o: &RunOutcome) {
    println!();
    println!(
        "{:<26} {:>7} {:>11} {:>9} {:>11} {:>8}",
        "delivery", "period", "rows", "rejected", "accepted", ""
    );
    for d in &o.deliveries {
        println!(
            "{:<26} {:>7} {:>11} {:>9} {:>11}",
            d.source, d.period, d.rows_read, d.rows_rejected, d.rows_accepted
        );
        for r in &d.rejects {
            println!("{:>30} {:<20} {} rows", r.rule, r.column, r.rows);
        }
    }
    println!();
    println!("{:<26} {:>12} {:>12}  of", "linkage", "linked", "rate");
    for s in &o.linkage.sources {
        println!(
            "{:<26} {:>12} {:>12}  {}",
            s.source,
            s.linked,
            percent(s.linked, s.linked + s.not_linked),
            s.unit
        );
    }
    println!();
    crate::export::print_disclosure(&o.disclosure);
    println!();
    let total: u64 = o.stages.iter().map(|s| s.wall_ms).sum();
    let stages: Vec<String> = o
        .stages
        .iter()
        .map(|s| format!("{} {:.1} s", s.stage.as_str(), s.wall_ms as f64 / 1000.0))
        .collect();
    println!(
        "wall time: {} (total {:.1} s)",
        stages.join(", "),
        total as f64 / 1000.0
    );
    println!("release {} → {}", o.release_id, o.release_dir.display());
    println!(
        "report: {}",
        o.release_dir
            .join(koppel_contract::files::release::REPORT_FILE)
            .display()
    );
    println!(
        "verify with: (cd {} && sha256sum -c SHA256SUMS)",
        o.release_dir.display()
    );
}

pub fn daemon(args: DaemonArgs) -> Result<ExitCode> {
    let o = &args.operate;
    let specs = crate::load_specs(&o.specs)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.pipelines)
        .with_context(|| format!("cannot read {}", args.pipelines.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let pipelines = files
        .iter()
        .map(|f| PipelineSpec::from_file(f, &specs))
        .collect::<Result<Vec<_>, _>>()?;
    if pipelines.is_empty() {
        bail!("{} holds no pipeline file", args.pipelines.display());
    }
    let store = open_store(&o.store)?;
    for p in &pipelines {
        p.check_keys(&store)?;
    }
    let settings = koppel_pipeline::DaemonSettings {
        pipelines,
        specs: &specs,
        store: &store,
        inbox: o.inbox.clone(),
        release_dir: o.release_dir.clone(),
        state: StateDir::new(&o.state.state),
        link: o.link_config(),
        poll: Duration::from_secs(args.poll_seconds.max(1)),
    };
    // One worker: the service does one thing at a time, and the linking
    // stage brings its own thread pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    eprintln!(
        "koppel daemon: watching {} every {} s for {} pipeline(s); stop with SIGTERM or Ctrl-C",
        o.inbox.display(),
        args.poll_seconds.max(1),
        settings.pipelines.len()
    );
    let summary = runtime.block_on(koppel_pipeline::run_daemon(
        settings,
        "daemon",
        std::future::pending(),
    ))?;
    eprintln!(
        "koppel daemon stopped: {} deliveries admitted, {} refused, {} runs succeeded, {} failed",
        summary.deliveries_admitted,
        summary.deliveries_refused,
        summary.runs_succeeded,
        summary.runs_failed
    );
    Ok(ExitCode::SUCCESS)
}

pub fn pipeline(command: PipelineCommand) -> Result<ExitCode> {
    match command {
        PipelineCommand::Check { file, store, specs } => {
            let specs = crate::load_specs(&specs)?;
            let pipeline = PipelineSpec::from_file(&file, &specs)?;
            if let Some(store) = store {
                let store = open_store(&StoreArgs::for_file(store))?;
                let keys = pipeline.check_keys(&store)?;
                for k in keys {
                    println!("key {} v{} ({}) found", k.id, k.version, k.purpose);
                }
            }
            println!(
                "{}: pipeline {} version {} is valid: {} sources, {} deliveries a run ({}), {} tables{}",
                file.display(),
                pipeline.pipeline,
                pipeline.version,
                pipeline.sources.len(),
                pipeline.expected_deliveries().len(),
                pipeline.period_label(),
                pipeline.disclosure.tables.len(),
                match &pipeline.schedule {
                    Some(s) => format!(", runs at cron {:?} (UTC)", s.cron),
                    None => String::new(),
                }
            );
        }
        PipelineCommand::Schema => {
            println!("{}", koppel_pipeline::json_schema());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_ledger(state: &StateArgs) -> Result<Ledger> {
    let path = StateDir::new(&state.state).ledger_path();
    if !path.exists() {
        bail!(
            "{} does not exist: no run has been recorded in {} (pass --state or set KOPPEL_STATE)",
            path.display(),
            state.state.display()
        );
    }
    Ok(Ledger::open_existing(&path)?)
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn runs(command: RunsCommand) -> Result<ExitCode> {
    match command {
        RunsCommand::List {
            state,
            pipeline,
            json,
        } => {
            let ledger = open_ledger(&state)?;
            let runs = ledger.runs(pipeline.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:>5}  {:<16} {:<11} {:<10} {:<19} {:<19} error",
                "run", "pipeline", "period", "status", "started (UTC)", "finished (UTC)"
            );
            for r in runs {
                println!(
                    "{:>5}  {:<16} {:<11} {:<10} {:<19} {:<19} {}",
                    r.id,
                    r.pipeline,
                    r.period,
                    r.status.as_str(),
                    time(&r.started),
                    r.finished.as_ref().map(time).unwrap_or_default(),
                    r.error.as_deref().unwrap_or("")
                );
            }
        }
        RunsCommand::Show { state, id, json } => {
            let ledger = open_ledger(&state)?;
            let Some(run) = ledger.run(id)? else {
                bail!("no run {id} in {}", ledger.path().display());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
                return Ok(ExitCode::SUCCESS);
            }
            let r = &run.run;
            println!("run {}: {} {}", r.id, r.pipeline, r.period);
            println!("status:   {}", r.status.as_str());
            println!("started:  {} UTC", time(&r.started));
            if let Some(f) = &r.finished {
                println!("finished: {} UTC", time(f));
            }
            if let Some(e) = &r.error {
                println!("error:    {e}");
            }
            println!("keys:     {}", r.key_ids.join(", "));
            println!("inputs:   {} deliveries", r.inputs.len());
            for id in &r.inputs {
                match ledger.delivery(id)? {
                    Some(d) => println!(
                        "          {id}  {} {} from {} ({})",
                        d.source,
                        d.period,
                        d.partner.as_deref().unwrap_or("?"),
                        d.status.as_str()
                    ),
                    None => println!("          {id}"),
                }
            }
            for s in &run.stages {
                println!(
                    "stage {:<13} {:>8.1} s  {}",
                    s.stage,
                    s.wall_ms as f64 / 1000.0,
                    s.counts
                );
            }
            if let Some(release) = &run.release {
                println!(
                    "release:  {} → {} (manifest sha256 {})",
                    release.release_id,
                    release.path.display(),
                    release.manifest_sha256
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn deliveries(command: DeliveriesCommand) -> Result<ExitCode> {
    let DeliveriesCommand::List {
        state,
        source,
        period,
        status,
        json,
    } = command;
    let ledger = open_ledger(&state)?;
    let list = ledger.deliveries(&DeliveryFilter {
        source,
        period,
        status,
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32}  {:<24} {:<7} {:<10} {:<10} {:<19} file",
        "delivery id", "source", "period", "partner", "status", "received (UTC)"
    );
    for d in list {
        println!(
            "{:<32}  {:<24} {:<7} {:<10} {:<10} {:<19} {}{}",
            d.id,
            d.source,
            d.period,
            d.partner.as_deref().unwrap_or("-"),
            d.status.as_str(),
            time(&d.received),
            d.path.display(),
            d.reason.map(|r| format!("  ({r})")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(command: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Verify { state, trail } = command;
    let path = trail.unwrap_or_else(|| StateDir::new(&state.state).audit_path());
    let report = AuditTrail::verify(&path)
        .with_context(|| format!("the audit trail {} does not verify", path.display()))?;
    println!(
        "{}: {} entries, hash chain intact; last hash {}",
        path.display(),
        report.entries,
        report.last_hash
    );
    println!("keep the last hash elsewhere: it proves later that nothing before it changed");
    Ok(ExitCode::SUCCESS)
}
