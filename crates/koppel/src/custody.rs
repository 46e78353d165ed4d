//! `koppel keys`, `koppel partner prepare` and `koppel unseal`: argument
//! parsing, passphrase handling and presentation around koppel-pseudonymise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use koppel_contract::DeliveryFileName;
use koppel_pseudonymise::{
    KdfParams, KeyPurpose, KeyStore, PartnerKeys, Pseudonymiser, Stage, Stage2Transform, Unlock,
    prepare_delivery, pseudonymise_staged, unseal_delivery,
};
use tracing::{info, warn};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct StoreArgs {
    /// The key store file.
    #[arg(long, env = "KOPPEL_KEYSTORE")]
    store: PathBuf,
    /// Unlock with this 32-byte key-encryption-key file instead of a passphrase.
    #[arg(long, conflicts_with = "passphrase_file")]
    kek_file: Option<PathBuf>,
    /// Read the store passphrase from this file (default: $KOPPEL_PASSPHRASE, or a prompt).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

impl StoreArgs {
    /// A store unlocked the usual way: $KOPPEL_PASSPHRASE or a prompt.
    pub fn for_file(store: PathBuf) -> Self {
        StoreArgs {
            store,
            kek_file: None,
            passphrase_file: None,
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new, empty key store.
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Mark the store as a demo store whose passphrase is public; Koppel
        /// then warns whenever its keys touch data that is not synthetic.
        #[arg(long)]
        demo: bool,
    },
    /// Add a new key (version 1).
    Generate {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id, e.g. `stage2-preventieplan` or `transport-pfzw`.
        id: String,
        #[arg(long, value_parser = parse_purpose)]
        purpose: KeyPurpose,
        /// The partner a transport key belongs to.
        #[arg(long)]
        partner: Option<String>,
        /// The linkage project a stage-1, stage-2 or release key belongs to.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show ids, purposes, versions, status and fingerprints — never material.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Add the next version of a key; older versions stay usable until retired.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Retire one version of a key: it is kept to read old data, never used for new.
    Retire {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        version: u32,
    },
    /// Write what one partner needs (its stage-1 and transport keys) to a file
    /// of its own, sealed with a passphrase ($KOPPEL_PARTNER_PASSPHRASE or a prompt).
    ExportPartnerKey {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        partner: String,
        /// Id of the project's stage-1 key.
        #[arg(long)]
        stage1: String,
        /// Id of the partner's transport key.
        #[arg(long)]
        transport: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum PartnerCommand {
    /// Validate a delivery, replace its identifiers by stage-1 pseudonyms,
    /// write its manifest and seal it for the TTP. Raw identifiers never
    /// reach the output directory.
    Prepare(PrepareArgs),
}

#[derive(Args)]
pub struct PrepareArgs {
    /// Source name (default: from the file name).
    #[arg(long)]
    source: Option<String>,
    /// The delivery file with raw identifiers.
    #[arg(long)]
    input: PathBuf,
    /// The partner key file from `koppel keys export-partner-key`
    /// (passphrase: $KOPPEL_PARTNER_PASSPHRASE or a prompt).
    #[arg(long)]
    keys: PathBuf,
    /// Directory for the sealed delivery.
    #[arg(long)]
    out: PathBuf,
    /// Delivery period (default: from the file name, `<source>_<period>.<ext>`).
    #[arg(long)]
    period: Option<String>,
    /// Directory of source specs (default: pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
}

#[derive(Args)]
pub struct UnsealArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The TTP's staging area.
    #[arg(long)]
    staging: PathBuf,
    /// Sealed deliveries.
    #[arg(required = true)]
    sealed: Vec<PathBuf>,
    /// Directory of source specs: which partner delivers which source (default:
    /// pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
}

#[derive(Args)]
pub struct PseudonymiseArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The project's stage-2 key (its active version is used).
    #[arg(long)]
    key: String,
    /// The staging area `koppel unseal` filled.
    #[arg(long)]
    staging: PathBuf,
    /// Directory for the stage-2 Parquet files, one per delivery.
    #[arg(long)]
    out: PathBuf,
    /// Directory of source specs (default: pipelines/sources
    /// if it exists here, else the contract's specs built into koppel).
    #[arg(long, env = "KOPPEL_SPECS")]
    specs: Option<PathBuf>,
}

fn parse_purpose(s: &str) -> Result<KeyPurpose, String> {
    s.parse()
}

fn passphrase(
    env: &str,
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> Result<Zeroizing<String>> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        );
        return Ok(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ));
    }
    if let Ok(value) = std::env::var(env) {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passphrase: set {env}, pass a passphrase file, or run on a terminal to be prompted"
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(prompt)?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("Repeat: ")?);
        if first != second {
            bail!("the passphrases differ");
        }
    }
    Ok(first)
}

fn unlock(args: &StoreArgs, confirm: bool) -> Result<Unlock> {
    Ok(match &args.kek_file {
        Some(path) => Unlock::KekFile(path.clone()),
        None => Unlock::Passphrase(passphrase(
            "KOPPEL_PASSPHRASE",
            args.passphrase_file.as_deref(),
            "Key store passphrase: ",
            confirm,
        )?),
    })
}

pub(crate) fn open_store(args: &StoreArgs) -> Result<KeyStore> {
    let store = KeyStore::open(&args.store, &unlock(args, false)?)?;
    if store.is_demo() {
        warn!(store = %args.store.display(), "this is a DEMO key store with a public passphrase");
    }
    Ok(store)
}

fn demo_warning(what: &str) {
    eprintln!(
        "\n!!! WARNING: {what} uses DEMO keys, whose passphrase is published.\n\
         !!! Anyone can reverse these pseudonyms. Never use demo keys on real data.\n"
    );
}

pub fn keys(command: KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Init { store, demo } => {
            let kdf = if demo {
                KdfParams::demo()
            } else {
                KdfParams::recommended()
            };
            KeyStore::create(&store.store, &unlock(&store, true)?, kdf, demo)?;
            println!(
                "created key store {}{}",
                store.store.display(),
                if demo { " (demo)" } else { "" }
            );
        }
        KeysCommand::Generate {
            store,
            id,
            purpose,
            partner,
            project,
        } => {
            let mut ks = open_store(&store)?;
            let info = ks.generate(&id, purpose, partner.as_deref(), project.as_deref())?;
            ks.save()?;
            info!(id = %info.id, purpose = %info.purpose, version = info.version, "key generated");
            println!(
                "generated {} v{} ({}), fingerprint {}",
                info.id, info.version, info.purpose, info.fingerprint
            );
        }
        KeysCommand::List { store, json } => {
            let ks = open_store(&store)?;
            let keys = ks.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "{:<28} {:<10} {:>7}  {:<8} {:<12} {:<16} {:<16} created",
                    "id", "purpose", "version", "status", "partner", "project", "fingerprint"
                );
                for k in keys {
                    println!(
                        "{:<28} {:<10} {:>7}  {:<8} {:<12} {:<16} {:<16} {}",
                        k.id,
                        k.purpose.to_string(),
                        k.version,
                        k.status.to_string(),
                        k.partner.as_deref().unwrap_or("-"),
                        k.project.as_deref().unwrap_or("-"),
                        k.fingerprint,
                        k.created
                    );
                }
            }
        }
        KeysCommand::Rotate { store, id } => {
            let mut ks = open_store(&store)?;
            let info = ks.rotate(&id)?;
            ks.save()?;
            println!(
                "{} is now at v{}; earlier versions stay usable until retired",
                info.id, info.version
            );
        }
        KeysCommand::Retire { store, id, version } => {
            let mut ks = open_store(&store)?;
            let info = ks.retire(&id, version)?;
            ks.save()?;
            println!("retired {} v{}", info.id, info.version);
        }
        KeysCommand::ExportPartnerKey {
            store,
            partner,
            stage1,
            transport,
            out,
        } => {
            let ks = open_store(&store)?;
            let pass = passphrase(
                "KOPPEL_PARTNER_PASSPHRASE",
                None,
                &format!("Passphrase for {partner}'s key file: "),
                true,
            )?;
            let kdf = if ks.is_demo() {
                KdfParams::demo()
            } else {
                KdfParams::recommended()
            };
            ks.export_partner_keys(&partner, &stage1, &transport, &out, &pass, kdf)?;
            println!(
                "wrote {partner}'s keys to {}; hand it over with its passphrase on a separate channel",
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn partner(command: PartnerCommand) -> Result<ExitCode> {
    let PartnerCommand::Prepare(args) = command;
    let specs = crate::load_specs(&args.specs)?;
    let spec = match &args.source {
        Some(name) => specs
            .get(name)
            .with_context(|| format!("unknown source {name}"))?,
        None => specs.for_file(&args.input).with_context(|| {
            format!(
                "{}: cannot tell the source from the file name; pass --source",
                args.input.display()
            )
        })?,
    };
    let period = match &args.period {
        Some(p) => p.clone(),
        None => DeliveryFileName::of_path(&args.input, [spec.source.as_str()])
            .map(|name| name.period)
            .with_context(|| {
                format!(
                    "{}: cannot tell the period from the file name; pass --period",
                    args.input.display()
                )
            })?,
    };
    let pass = passphrase(
        "KOPPEL_PARTNER_PASSPHRASE",
        None,
        "Partner key file passphrase: ",
        false,
    )?;
    let keys = PartnerKeys::open(&args.keys, &pass)?;
    drop(pass);
    let synthetic = args
        .input
        .parent()
        .is_some_and(|dir| dir.join(koppel_synth::SYNTHETIC_MARKER).exists());
    if keys.demo && !synthetic {
        demo_warning(&format!("preparing {}", args.input.display()));
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let prepared = prepare_delivery(&args.input, spec, &keys, &args.out, &period, synthetic)?;
    let m = &prepared.manifest;
    info!(
        source = %m.source,
        period = %m.period,
        rows = m.rows,
        rejected = prepared.summary.rows_rejected,
        sealed = %prepared.sealed.display(),
        "delivery prepared"
    );
    println!(
        "{}  {} rows pseudonymised ({} rejected), sealed with {} v{} → {}",
        args.input.display(),
        m.rows,
        prepared.summary.rows_rejected,
        keys.transport.0.id,
        keys.transport.0.version,
        prepared.sealed.display()
    );
    // What the TTP's messages and ledger will name this delivery by.
    println!(
        "delivery id {}, content sha256 {}",
        m.delivery_id.as_deref().unwrap_or("-"),
        m.sha256
    );
    Ok(ExitCode::SUCCESS)
}

pub fn unseal(args: UnsealArgs) -> Result<ExitCode> {
    let specs = crate::load_specs(&args.specs)?;
    let store = open_store(&args.store)?;
    let mut failures = 0;
    for sealed in &args.sealed {
        match unseal_delivery(sealed, &store, &specs, &args.staging) {
            Ok(received) => {
                let m = &received.manifest;
                if store.is_demo() && !m.synthetic {
                    demo_warning(&format!("the delivery {}", sealed.display()));
                }
                info!(
                    source = %m.source,
                    period = %m.period,
                    partner = m.partner.as_deref().unwrap_or("-"),
                    rows = m.rows,
                    transport_key = %received.transport_key.0,
                    "delivery staged"
                );
                println!(
                    "{}  {} {} from {}: {} rows staged as {}",
                    sealed.display(),
                    m.source,
                    m.period,
                    m.partner.as_deref().unwrap_or("?"),
                    m.rows,
                    received.staged.display()
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("error: {:#}", anyhow::Error::from(e));
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Stage 2 over every staged delivery: what linking reads.
pub fn pseudonymise(args: PseudonymiseArgs) -> Result<ExitCode> {
    let specs = crate::load_specs(&args.specs)?;
    let store = open_store(&args.store)?;
    let (info, key) = store.key(&args.key, None)?;
    if info.purpose != KeyPurpose::Stage2 {
        bail!("{} is a {} key, not a stage-2 key", info.id, info.purpose);
    }
    let stage2 = Pseudonymiser::new(Stage::Stage2, &key, &info.id, info.version);
    drop(key);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut staged: Vec<PathBuf> = std::fs::read_dir(&args.staging)
        .with_context(|| format!("cannot read {}", args.staging.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| koppel_contract::files::manifest_path(p).exists())
        .collect();
    staged.sort();
    if staged.is_empty() {
        bail!(
            "{} holds no staged delivery (a file with a .manifest.yaml beside it)",
            args.staging.display()
        );
    }
    let mut failures = 0;
    for file in &staged {
        let result = specs
            .delivery_name(file)
            .and_then(|name| Some((specs.get(&name.source)?, name)))
            .with_context(|| format!("{}: no source spec matches the file name", file.display()))
            .and_then(|(spec, name)| {
                let transform = Stage2Transform::new(&spec.source, stage2.clone())?;
                let output = args.out.join(name.stage2_name());
                Ok(pseudonymise_staged(file, spec, &transform, &output)?)
            });
        match result {
            Ok(done) => {
                info!(source = %done.summary.source, rows = done.summary.rows_accepted, output = %done.output.display(), "stage 2 written");
                println!(
                    "{}  {} rows → {} (stage 2, {} v{})",
                    file.display(),
                    done.summary.rows_accepted,
                    done.output.display(),
                    info.id,
                    info.version
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
