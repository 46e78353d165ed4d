//! `koppel export`: disclosure control and the research release, from the
//! linking stage's models to a release directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use koppel_export::{DisclosureConfig, ExportOptions, LeakGuard, export};
use koppel_pseudonymise::{KeyPurpose, Pseudonymiser, Stage};

use crate::custody::{StoreArgs, open_store};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The release's research-ID key (purpose `release`).
    #[arg(long)]
    release_key: String,
    /// The folder `koppel link` wrote.
    #[arg(long)]
    linked: PathBuf,
    /// The release directory; must not exist or be empty. It appears only
    /// when every check passed.
    #[arg(long)]
    out: PathBuf,
    /// Disclosure-control rules (YAML); default: the built-in safe defaults.
    #[arg(long)]
    disclosure: Option<PathBuf>,
    /// Folder of stage-2 Parquet files (`koppel pseudonymise --out`): their
    /// pseudonyms feed the leak guard.
    #[arg(long)]
    staged: Option<PathBuf>,
    /// The stage-1 staging area (`koppel unseal --staging`): its
    /// identifiers and stage-1 pseudonyms feed the leak guard.
    #[arg(long)]
    staging: Option<PathBuf>,
    /// Directory of source specs (to read the staging area; default:
    /// pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
    /// The release's name: research IDs are derived from the release key
    /// and this name, so releases under different names cannot be joined
    /// on their IDs (default: the name of the --out folder).
    #[arg(long)]
    release_name: Option<String>,
    /// Pipeline name recorded in the release.
    #[arg(long, default_value = "preventieplan")]
    pipeline: String,
    /// Pipeline version recorded in the release.
    #[arg(long, default_value = "1")]
    pipeline_version: String,
}

/// Feeds the guard from every identifier column the upstream stages left.
fn fill_guard(args: &ExportArgs, guard: &mut LeakGuard) -> Result<()> {
    if let Some(dir) = &args.staged {
        guard.insert_parquet_dir(dir)?;
    }
    if let Some(dir) = &args.staging {
        guard.insert_staging_dir(dir, &crate::load_specs(&args.specs)?)?;
    }
    Ok(())
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let config = match &args.disclosure {
        Some(path) => DisclosureConfig::from_file(path)?,
        None => DisclosureConfig::default(),
    };
    let store = open_store(&args.store)?;
    let (info, key) = store.key(&args.release_key, None)?;
    if info.purpose != KeyPurpose::Release {
        bail!("{} is a {} key, not a release key", info.id, info.purpose);
    }
    let research = Pseudonymiser::new(Stage::Research, &key, &info.id, info.version);
    drop(key);
    let mut guard = LeakGuard::new();
    fill_guard(&args, &mut guard)?;
    let bar = crate::spinner(format!("releasing {}", args.linked.display()));
    crate::tune_allocator_for_export();
    let outcome = export(
        &args.linked,
        &args.out,
        ExportOptions {
            config: &config,
            research: &research,
            release_name: args.release_name.clone().unwrap_or_else(|| {
                args.out
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            pipeline: args.pipeline.clone(),
            pipeline_version: args.pipeline_version.clone(),
            guard,
            attachments: Vec::new(),
            interrupt_before_commit: false,
        },
    );
    bar.finish_and_clear();
    let outcome =
        outcome.with_context(|| format!("no release was written to {}", args.out.display()))?;
    println!(
        "release {} → {}",
        outcome.release_id,
        outcome.release_dir.display()
    );
    print_disclosure(&outcome.report);
    println!(
        "verify with: (cd {} && sha256sum -c SHA256SUMS)",
        outcome.release_dir.display()
    );
    println!("{:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// What disclosure control did, for `koppel export` and a pipeline run's
/// summary.
pub fn print_disclosure(r: &koppel_export::DisclosureReport) {
    let p = &r.person;
    println!(
        "persons: {} of {} rows released, smallest class any recipient finds {} (k {}), {} rows with a value suppressed, {} left out, {:.1}% of values null (cap {}%)",
        p.rows_released,
        p.rows_in,
        p.smallest_class,
        p.k,
        p.rows_locally_suppressed,
        p.rows_dropped,
        p.values_suppressed_pct,
        p.max_suppression_pct
    );
    for r in &p.recipients {
        println!(
            "  recipient {:<9} knows {:>2} variables: {:>5.1}% of persons at risk unprotected, {} after; smallest class {}",
            r.recipient.as_str(),
            r.knows.len(),
            r.at_risk_before_pct,
            r.at_risk_after,
            r.smallest_class
        );
    }
    for q in &p.quasi_identifiers {
        println!(
            "  {:<20} {:<28} {} values suppressed",
            q.column,
            koppel_export::report::hierarchy_name(&q.hierarchy, q.level),
            q.values_suppressed
        );
    }
    let org = &r.organisation;
    let suppressed: u64 = org.suppressed.values().sum();
    println!(
        "organisations: {} of {} released ({} below {} persons); {} statistics suppressed",
        org.rows_released, org.rows_in, org.rows_left_out, org.min_persons, suppressed
    );
    for t in &r.tables {
        let status: Vec<String> = t.status.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "table {}: {} cells ({})",
            t.name,
            t.cells,
            status.join(", ")
        );
    }
}
