//! `koppel`: the command line of the Koppel linkage system.
//!
//! Only argument parsing, wiring and presentation live here; every piece of
//! domain logic is in a library crate (`koppel-ingest`,
//! `koppel-pseudonymise`, `koppel-synth`, `koppel-join`, `koppel-export`,
//! `koppel-pipeline`, `koppel-ledger`).

mod custody;
mod defaults;

// DataFusion's hash tables and Arrow buffers churn through many mid-sized
// allocations; mimalloc returns memory to the system where glibc's malloc
// fragments, which keeps the linking stage's peak RSS down.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in the C enum of mimalloc
/// 2 and 3; libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 500 ms instead of mimalloc
/// 3's default of 1000 ms (mimalloc 2's was 10 ms, which the first
/// measurements wrongly assumed). Against the default, in alternating
/// full-scale runs, speed did not differ beyond the machine's noise and
/// peak RSS was about 200 MB lower (2.5 against 2.7 GB of the 3 GB
/// budget); see docs/performance.md. `MIMALLOC_PURGE_DELAY` in the
/// environment decides when set.
fn tune_allocator() {
    set_purge_delay(500);
}

/// While an export runs, freed memory stays 10 s. Its disclosure engine
/// evaluates node after node, each allocating and freeing buffers of tens
/// of megabytes, which mimalloc then hands out again instead of asking
/// the system for more. At 1.5 million workers, in alternating runs, the
/// engine took 14.9 s against 16.5 s, for about 200 MB more peak RSS in
/// the export (2.0–2.1 GB; docs/performance.md). Linking keeps 500 ms: it
/// gained nothing from a longer delay, and its peak is its backbone.
fn tune_allocator_for_export() {
    set_purge_delay(10_000);
}

fn set_purge_delay(ms: std::ffi::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc allows this at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
    }
}

mod demo;
mod export;
mod link;
mod operate;

use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use koppel_contract::IdentifierMode;
use koppel_ingest::{
    DeliveryReader, DeliverySummary, ReadOptions, RejectReportFormat, RejectReportWriter,
    SourceSpec, SpecSet,
};
use koppel_synth::{SynthConfig, SynthEvent, synthesise_with_progress};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "koppel",
    version,
    about = "Link partner extracts into disclosure-controlled research data sets",
    long_about = "Koppel is run by a trusted third party to validate, pseudonymise and link \
                  sensitive extracts from care-sector data partners into research data sets."
)]
struct Cli {
    /// More log output: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log line format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write realistic synthetic partner deliveries, exactly as the delivery
    /// contract describes them.
    Synth(SynthArgs),
    /// Check delivery files against the delivery contract: what partners run
    /// before sending and the operator runs on arrival. Exits non-zero when a
    /// delivery fails.
    Validate(ValidateArgs),
    /// Key custody: the TTP's encrypted key store.
    #[command(subcommand)]
    Keys(custody::KeysCommand),
    /// Partner tooling: pseudonymise and seal a delivery before it leaves.
    #[command(subcommand)]
    Partner(custody::PartnerCommand),
    /// Verify and decrypt sealed deliveries into the TTP's staging area.
    Unseal(custody::UnsealArgs),
    /// Stage 2 at the TTP: staged deliveries (stage-1 pseudonyms) become
    /// Parquet files with the project's stage-2 pseudonyms only.
    Pseudonymise(custody::PseudonymiseArgs),
    /// Link the stage-2 sources into the person and organisation research
    /// models, with a linkage report.
    Link(link::LinkArgs),
    /// Disclosure control and the research release: k-anonymous person
    /// file, organisation file, protected tables, codebook and manifest.
    Export(export::ExportArgs),
    /// Run a pipeline: unseal and verify every expected delivery, stage 2,
    /// link, disclosure control, release and run report, recorded in the
    /// run ledger and the audit trail.
    Run(operate::RunArgs),
    /// The whole chain on a synthetic sector in one command: synthesise,
    /// play the partners with the demo keys, run the pipeline, verify the
    /// release.
    Demo(demo::DemoArgs),
    /// The scheduled service: admits sealed deliveries as they arrive and
    /// runs each pipeline when its schedule is due and its deliveries are in.
    Daemon(operate::DaemonArgs),
    /// Pipeline files: check one, or print their JSON Schema.
    #[command(subcommand)]
    Pipeline(operate::PipelineCommand),
    /// The run ledger's runs.
    #[command(subcommand)]
    Runs(operate::RunsCommand),
    /// The run ledger's deliveries.
    #[command(subcommand)]
    Deliveries(operate::DeliveriesCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(operate::AuditCommand),
}

#[derive(Args)]
struct SynthArgs {
    /// Directory to write the deliveries into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Workforce size in the first year.
    #[arg(long, default_value_t = 2000)]
    persons: usize,
    /// Number of organisations (default: derived from --persons).
    #[arg(long)]
    orgs: Option<usize>,
    /// Years to cover, as `2023..2024` or a single `2024`.
    #[arg(long, default_value = "2023..2024", value_parser = parse_years)]
    years: RangeInclusive<i32>,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Plant the documented defects (see docs/synth.md) in the last year's files.
    #[arg(long)]
    defects: bool,
    /// Write only these sources (repeatable); their content is unchanged.
    #[arg(long = "only", value_name = "SOURCE")]
    only: Vec<String>,
}

#[derive(Args)]
struct ValidateArgs {
    /// Delivery files (CSV or Parquet).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Source name (default: taken from the file name, e.g. `pfzw_dienstverbanden_2024.csv`).
    #[arg(long, conflicts_with = "spec")]
    source: Option<String>,
    /// A source spec file to validate against instead of the project's specs.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Directory of source specs (default: pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
    /// Identifier mode the delivery must have (default: as its header shows).
    #[arg(long, value_enum)]
    identifier_mode: Option<ModeArg>,
    /// Refuse a delivery without a `<file>.manifest.yaml`.
    #[arg(long)]
    require_manifest: bool,
    /// Write the rejected rows (line, column, rule) to this file; `.json`
    /// gives JSON, anything else CSV. Only with a single file.
    #[arg(long, value_name = "FILE", conflicts_with = "reject_dir")]
    rejects: Option<PathBuf>,
    /// Write one reject report per delivery, `<delivery>.rejects.csv`, here.
    #[arg(long, value_name = "DIR")]
    reject_dir: Option<PathBuf>,
    /// Print the summaries as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Raw,
    P1,
}

fn parse_years(s: &str) -> Result<RangeInclusive<i32>, String> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let year = |t: &str| {
        t.trim()
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| format!("{t:?} is not a year between 2000 and 2100"))
    };
    let (a, b) = (year(a)?, year(b)?);
    if a > b {
        return Err(format!("{a} is after {b}"));
    }
    Ok(a..=b)
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Runs(_) | Command::Deliveries(_) | Command::Pipeline(_)
    ) {
        end_quietly_on_closed_pipe();
    }
    init_logging(cli.verbose, cli.log_format);
    let result = match cli.command {
        Command::Synth(args) => synth(args),
        Command::Validate(args) => validate(args),
        Command::Keys(command) => custody::keys(command),
        Command::Partner(command) => custody::partner(command),
        Command::Unseal(args) => custody::unseal(args),
        Command::Pseudonymise(args) => custody::pseudonymise(args),
        Command::Link(args) => link::run(args),
        Command::Export(args) => export::run(args),
        Command::Run(args) => operate::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Daemon(args) => operate::daemon(args),
        Command::Pipeline(command) => operate::pipeline(command),
        Command::Runs(command) => operate::runs(command),
        Command::Deliveries(command) => operate::deliveries(command),
        Command::Audit(command) => operate::audit(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Listings end quietly when their reader goes away (`koppel runs list |
/// head`), as other command-line tools do, instead of panicking on a
/// closed pipe. Only for read-only listings: a run must never die halfway
/// because its output was piped into `head`.
fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal before any thread
    // starts; nothing in these read-only commands relies on SIGPIPE being
    // ignored.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    use tracing_subscriber::{Layer, filter, layer::SubscriberExt, util::SubscriberInitExt};
    let wanted =
        filter::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter::EnvFilter::new(level));
    // The libraries that handle the data log values from it below warn
    // level: DataFusion's debug lines print join filters with the
    // pseudonyms they hold. They never log below warn, whatever -v or
    // RUST_LOG ask for.
    let data_crates = filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::WARN
            || !DATA_CRATES.iter().any(|c| meta.target().starts_with(c))
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(wanted).with_filter(data_crates))
        .init();
}

/// Crates (by target prefix) that see record values and may log them.
const DATA_CRATES: &[&str] = &[
    "datafusion",
    "arrow",
    "parquet",
    "object_store",
    "sqlparser",
];

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
    );
    if std::io::stderr().is_terminal() {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    bar
}

fn synth(args: SynthArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let config = SynthConfig {
        persons: args.persons,
        orgs: args.orgs,
        years: args.years,
        seed: args.seed,
        defects: args.defects,
        only: args.only,
    };
    let started = Instant::now();
    let bar = spinner(format!("modelling {} persons", config.persons));
    let summary = synthesise_with_progress(&config, &args.out, &mut |event| match event {
        SynthEvent::ModelReady {
            persons,
            organisations,
            employments,
            absence_episodes,
        } => info!(
            persons,
            organisations, employments, absence_episodes, "population model ready"
        ),
        SynthEvent::FileStarted { source, period } => {
            bar.set_message(format!("writing {source} {period}"))
        }
        SynthEvent::FileWritten(file) => {
            info!(path = %file.path.display(), rows = file.rows, "written")
        }
    })?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let rows: u64 = summary.files.iter().map(|f| f.rows).sum();
    for f in &summary.files {
        println!("{:>12} rows  {}", group(f.rows), f.path.display());
    }
    println!(
        "{:>12} rows in {} files, {:.1} s ({} rows/s)",
        group(rows),
        summary.files.len(),
        elapsed.as_secs_f64(),
        group((rows as f64 / elapsed.as_secs_f64().max(1e-9)) as u64)
    );
    if !summary.defects.is_empty() {
        println!("planted defects (see docs/synth.md):");
        for d in &summary.defects {
            println!(
                "{:>6}  {:<34} {:<22} {}",
                d.count,
                d.file
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                d.column,
                d.rule
            );
        }
    }
    info!(
        files = summary.files.len(),
        rows,
        seconds = elapsed.as_secs_f64(),
        "synthesis done"
    );
    Ok(ExitCode::SUCCESS)
}

/// The project's source specs, for every command that reads deliveries.
fn load_specs(dir: &Option<PathBuf>) -> Result<SpecSet> {
    defaults::source_specs(dir.as_deref())
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    if args.rejects.is_some() && args.files.len() > 1 {
        bail!("--rejects takes a single delivery; use --reject-dir for several");
    }
    let single_spec = match (&args.spec, &args.source) {
        (Some(path), _) => Some(SourceSpec::from_path(path)?),
        _ => None,
    };
    let spec_set = if single_spec.is_none() {
        Some(load_specs(&args.specs)?)
    } else {
        None
    };
    if let Some(dir) = &args.reject_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut summaries = Vec::new();
    let mut failures = 0usize;
    for file in &args.files {
        let spec = match (&single_spec, &spec_set, &args.source) {
            (Some(spec), _, _) => spec,
            (None, Some(set), Some(name)) => set.get(name).with_context(|| {
                format!(
                    "unknown source {name}; known sources: {}",
                    set.names().join(", ")
                )
            })?,
            (None, Some(set), None) => set.for_file(file).with_context(|| {
                format!(
                    "{}: cannot tell the source from the file name; pass --source (one of: {})",
                    file.display(),
                    set.names().join(", ")
                )
            })?,
            (None, None, _) => {
                unreachable!("a spec set is loaded whenever no single spec is given")
            }
        };
        match validate_one(file, spec, &args) {
            Ok(summary) => {
                if !summary.accepted() {
                    failures += 1;
                }
                if !args.json {
                    print_summary(&summary);
                }
                summaries.push(summary);
            }
            Err(e) => {
                failures += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn validate_one(file: &Path, spec: &SourceSpec, args: &ValidateArgs) -> Result<DeliverySummary> {
    let report_path = match (&args.rejects, &args.reject_dir) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(dir)) => {
            let name = file.file_name().context("delivery path has no file name")?;
            Some(dir.join(format!("{}.rejects.csv", name.to_string_lossy())))
        }
        (None, None) => None,
    };
    let reject_sink = match &report_path {
        Some(p) => Some(Box::new(
            RejectReportWriter::create(p, RejectReportFormat::for_path(p))
                .with_context(|| format!("cannot write reject report {}", p.display()))?,
        ) as Box<dyn koppel_ingest::RejectSink>),
        None => None,
    };
    let options = ReadOptions {
        identifier_mode: args.identifier_mode.map(|m| match m {
            ModeArg::Raw => IdentifierMode::Raw,
            ModeArg::P1 => IdentifierMode::PrePseudonymised,
        }),
        require_manifest: args.require_manifest,
        reject_sink,
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    // A delivery that cannot be read leaves no half-written reject report.
    let summary = match read_delivery(file, spec, options, size) {
        Ok(summary) => summary,
        Err(e) => {
            if let Some(p) = &report_path {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.into());
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    info!(
        source = %summary.source,
        rows = summary.rows_read,
        rejected = summary.rows_rejected,
        seconds = elapsed,
        rows_per_second = summary.rows_read as f64 / elapsed.max(1e-9),
        "validated"
    );
    if let Some(p) = report_path {
        info!(report = %p.display(), "reject report written");
    }
    Ok(summary)
}

/// Reads a whole delivery, with a progress bar for large files.
fn read_delivery(
    file: &Path,
    spec: &SourceSpec,
    options: ReadOptions,
    size: u64,
) -> Result<DeliverySummary, koppel_ingest::IngestError> {
    let mut reader = DeliveryReader::open(file, spec, options)?;
    let bar = if size > 16 << 20 && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(spec.source.clone());
        bar
    } else {
        ProgressBar::hidden()
    };
    while reader.next_batch()?.is_some() {
        if let (bytes, 0) = reader.progress() {
            bar.set_position(bytes);
        }
    }
    bar.finish_and_clear();
    reader.finish()
}

fn print_summary(s: &DeliverySummary) {
    println!(
        "{}  ({}, {}{}{})",
        s.file.display(),
        s.source,
        s.format,
        s.identifier_mode
            .map_or_else(String::new, |m| format!(", identifiers {}", m.as_str())),
        if s.manifest_verified {
            ", manifest verified"
        } else {
            ""
        }
    );
    println!("  rows read   {:>12}", group(s.rows_read));
    println!("  accepted    {:>12}", group(s.rows_accepted));
    println!(
        "  rejected    {:>12}  ({:.3}%, limit {:.2}%)",
        group(s.rows_rejected),
        100.0 * s.reject_fraction(),
        100.0 * s.max_reject_fraction
    );
    for v in &s.violations {
        println!(
            "    {:<24} {:<18} {:>8}   {}",
            v.column,
            v.rule.code(),
            group(v.count),
            v.rule.describe()
        );
    }
    match &s.verdict {
        koppel_ingest::Verdict::Accepted => println!("  verdict     ACCEPTED\n"),
        koppel_ingest::Verdict::Failed { reason } => println!("  verdict     FAILED: {reason}\n"),
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hard-coded option number must be the purge delay: before tuning
    /// it reads mimalloc 3's default of 1000 ms, after it 500, and 10 s
    /// while an export runs.
    #[test]
    fn allocator_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one integer option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000);
        tune_allocator();
        assert_eq!(get(), 500);
        tune_allocator_for_export();
        assert_eq!(get(), 10_000);
        tune_allocator();
        assert_eq!(get(), 500);
    }

    #[test]
    fn years_parse() {
        assert_eq!(parse_years("2023..2024"), Ok(2023..=2024));
        assert_eq!(parse_years("2024"), Ok(2024..=2024));
        assert!(parse_years("2024..2023").is_err());
        assert!(parse_years("1999").is_err());
        assert!(parse_years("x..2024").is_err());
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(18_000_000), "18,000,000");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
