//! `koppel link`: the linking stage on its own, from stage-2 Parquet to
//! the two research models and the linkage report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Args;
use koppel_join::{LinkConfig, link};

#[derive(Args)]
pub struct LinkArgs {
    /// Folder of stage-2 Parquet files, as `koppel pseudonymise` writes them.
    #[arg(long)]
    staged: PathBuf,
    /// Folder to write the models and the linkage report into; must not
    /// exist or be empty. It appears only when linking succeeded.
    #[arg(long)]
    out: PathBuf,
    /// The extracts' reference date (YYYY-MM-DD): open absence episodes
    /// run to it. Default: 31 December of the latest payroll year.
    #[arg(long, value_parser = parse_date)]
    reference_date: Option<NaiveDate>,
    /// Memory for joins and aggregations before they spill to disk, in MiB.
    #[arg(long, default_value_t = 1536)]
    memory_limit_mib: usize,
    /// Folder for spill files and intermediates (default: inside the
    /// output's temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Parallelism (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("{s:?} is not a YYYY-MM-DD date: {e}"))
}

pub fn run(args: LinkArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let config = LinkConfig {
        reference_date: args.reference_date,
        memory_limit: args.memory_limit_mib << 20,
        work_dir: args.work_dir,
        target_partitions: args.threads,
    };
    let bar = crate::spinner(format!("linking {}", args.staged.display()));
    let outcome = link(&args.staged, &args.out, &config);
    bar.finish_and_clear();
    let outcome = outcome.with_context(|| format!("linking {} failed", args.staged.display()))?;
    let report = &outcome.report;
    println!(
        "{:<26} {:>12} {:>12} {:>12} {:>12} {:>10}  linked counts",
        "source", "rows", "distinct", "linked", "not linked", "duplicates"
    );
    for s in &report.sources {
        println!(
            "{:<26} {:>12} {:>12} {:>12} {:>12} {:>10}  {}",
            s.source,
            s.rows_in,
            s.distinct_pseudonyms,
            s.linked,
            s.not_linked,
            s.duplicates,
            s.unit
        );
    }
    println!(
        "person model: {} rows → {}",
        report.person_model_rows,
        outcome.person_model.display()
    );
    println!(
        "workforce model: {} rows → {} (the k-map population; never released)",
        report.workforce_model_rows,
        outcome.workforce_model.display()
    );
    println!(
        "organisation model: {} rows → {}",
        report.organisation_model_rows,
        outcome.organisation_model.display()
    );
    println!(
        "linkage report → {} (reference date {}, stage-2 key {} v{})",
        outcome.report_path.display(),
        report.reference_date,
        report.key.key_id,
        report.key.key_version
    );
    println!("linked in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
