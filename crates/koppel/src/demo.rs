//! `koppel demo`: the whole chain on a synthetic sector, in one command.
//!
//! It plays every party with the published demo keys: the partners
//! (synthesise their extracts, prepare and seal each delivery) and the TTP
//! (run the project's pipeline over the inbox, verify the release). The
//! folder it writes shows the layout an operator has:
//! `partners/` (the partners' own extracts, synthetic), `inbox/` (sealed
//! deliveries), `state/` (run ledger, audit trail, run folders) and
//! `releases/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use koppel_join::LinkConfig;
use koppel_pipeline::{PipelineSpec, RunSettings, StateDir};
use koppel_pseudonymise::{KeyStore, PartnerKeys, Unlock, prepare_delivery};
use koppel_synth::SynthConfig;
use zeroize::Zeroizing;

/// The passphrase of everything in keys-example/, published on purpose.
const DEMO_PASSPHRASE: &str = "koppel-demo-passphrase";
/// Marks a folder `koppel demo` wrote, so a second demo may replace it.
const DEMO_MARKER: &str = ".koppel-demo";

#[derive(Args)]
pub struct DemoArgs {
    /// Workforce size of the synthetic sector.
    #[arg(long, default_value_t = 20_000)]
    persons: usize,
    /// Folder to write everything into; a previous demo there is replaced.
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Seed of the synthetic sector: the same seed gives the same release.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The pipeline to run (default: pipelines/preventieplan.yaml if it
    /// exists here, else the project pipeline built into koppel).
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Directory of source specs (default: pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
    /// The demo key store and partner key files (default: keys-example/ if
    /// it exists here, else the demo keys built into koppel).
    #[arg(long)]
    keys: Option<PathBuf>,
}

/// Empties `out` if a previous demo wrote it; refuses anything else.
fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_none();
        if !empty {
            if !out.join(DEMO_MARKER).exists() {
                bail!(
                    "{} exists and was not written by `koppel demo`; choose another --out",
                    out.display()
                );
            }
            std::fs::remove_dir_all(out)
                .with_context(|| format!("cannot remove the previous demo in {}", out.display()))?;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join(DEMO_MARKER), "written by koppel demo\n")
        .with_context(|| format!("cannot write in {}", out.display()))?;
    Ok(())
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let specs = crate::load_specs(&args.specs)?;
    let (text, name) = crate::defaults::pipeline_text(args.pipeline.as_deref())?;
    let pipeline = PipelineSpec::from_yaml(&text, &name, &specs)?;
    prepare_out(&args.out)?;
    let partners_dir = args.out.join("partners");
    let keys_dir = args.out.join("keys");
    let inbox = args.out.join("inbox");
    for dir in [&partners_dir, &keys_dir, &inbox] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Key files must be private to their owner and git does not keep
    // modes: the demo works on private copies.
    crate::defaults::install_demo_keys(args.keys.as_deref(), &keys_dir)?;

    // The partners: their extracts.
    let years = pipeline
        .periods()
        .iter()
        .map(|p| p.parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .context("the demo synthesises whole years; the pipeline's periods must be years")?;
    let (Some(&first), Some(&last)) = (years.iter().min(), years.iter().max()) else {
        bail!("the pipeline expects no periods");
    };
    eprintln!(
        "synthesising a sector of {} workers, {first}–{last}",
        args.persons
    );
    let mut config = SynthConfig::new(args.persons, first..=last, args.seed);
    config.only = pipeline.sources.keys().cloned().collect();
    let summary = koppel_synth::synthesise(&config, &partners_dir)?;

    // Each partner prepares and seals what the pipeline expects of it.
    let expected = pipeline.expected_deliveries();
    let mut sealed = 0;
    for file in &summary.files {
        if !expected.contains(&(file.source.clone(), file.period.clone())) {
            continue;
        }
        let spec = specs
            .get(&file.source)
            .with_context(|| format!("no source spec for {}", file.source))?;
        let partner = pipeline.sources[&file.source].partner.to_ascii_lowercase();
        let key_file = keys_dir.join(format!("{partner}.keys.yaml"));
        let keys = PartnerKeys::open(&key_file, DEMO_PASSPHRASE)?;
        let prepared = prepare_delivery(&file.path, spec, &keys, &inbox, &file.period, true)
            .with_context(|| format!("{partner} could not prepare {}", file.path.display()))?;
        eprintln!(
            "{partner:>10} sealed {} {} ({} rows) → {}",
            file.source,
            file.period,
            prepared.manifest.rows,
            prepared.sealed.display()
        );
        sealed += 1;
    }

    // The TTP.
    let store_file = keys_dir.join(crate::defaults::DEMO_STORE_FILE);
    let store = KeyStore::open(
        &store_file,
        &Unlock::Passphrase(Zeroizing::new(DEMO_PASSPHRASE.to_owned())),
    )?;
    if !store.is_demo() {
        bail!(
            "{} is not a demo key store; the demo only runs with demo keys",
            store_file.display()
        );
    }
    let state = StateDir::new(args.out.join("state"));
    let outcome = crate::operate::run_with_progress(
        &RunSettings {
            pipeline: &pipeline,
            specs: &specs,
            store: &store,
            inbox: inbox.clone(),
            release_dir: args.out.join("releases"),
            state: &state,
            link: LinkConfig::default(),
        },
        "operator:demo",
    )?;
    crate::operate::print_outcome(&outcome);
    let verified = verify_release(&outcome.release_dir)?;
    println!();
    println!(
        "demo done in {:.0} s: {sealed} deliveries sealed, linked and released; {verified} release files verified against SHA256SUMS",
        started.elapsed().as_secs_f64()
    );
    println!("look at:");
    let release = outcome.release_dir.display();
    println!("  {release}/report.html        the run report (open in a browser)");
    println!("  {release}/codebook.md        every variable of the release");
    println!("  {release}/persons.parquet    the person file, as researchers get it");
    println!("  {}  the audit trail", state.audit_path().display());
    println!("  koppel runs list --state {}", state.root().display());
    Ok(ExitCode::SUCCESS)
}

/// Checks every file named in the release's SHA256SUMS, as a researcher
/// would with `sha256sum -c`; returns how many.
fn verify_release(dir: &Path) -> Result<usize> {
    let sums = dir.join(koppel_contract::files::release::SHA256SUMS_FILE);
    let text = std::fs::read_to_string(&sums)
        .with_context(|| format!("cannot read {}", sums.display()))?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (expected, name) = line
            .split_once("  ")
            .with_context(|| format!("{}: malformed line {line:?}", sums.display()))?;
        let (actual, _) = koppel_export::release::sha256_file(&dir.join(name))?;
        if actual != expected {
            bail!("{}: {name} does not match its checksum", sums.display());
        }
        n += 1;
    }
    Ok(n)
}
