//! Disclosure control and the research release.
//!
//! Input: the linking stage's output directory (`person_model.parquet`,
//! `organisation_model.parquet`, `linkage-report.json`, stage-2 pseudonyms
//! only), a [`DisclosureConfig`], the release's research-ID key, and a
//! [`LeakGuard`] holding every identifier the run has seen. Output: a
//! release directory — person and organisation files and the declared
//! tables as Parquet (tables also as CSV), `codebook.md`/`.json`,
//! `disclosure-report.json`/`.md`, `linkage-report.json`, `manifest.json`
//! and `SHA256SUMS` — or nothing at all.
//!
//! Nothing reaches a researcher unless this crate let it through: the
//! person file is k-anonymous over its quasi-identifiers, organisations
//! are released only when large enough and with thin statistics
//! suppressed, tables carry primary and audited secondary suppression,
//! and every output file passes the leak guard before the release is
//! renamed into place.

pub mod codebook;
pub mod config;
pub mod error;
pub mod guard;
pub mod hierarchy;
pub mod inputs;
pub mod organisation;
pub mod person;
pub mod provenance;
pub mod release;
pub mod report;
pub mod tables;
pub mod tabulate;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use koppel_contract::files::linked::LINKAGE_REPORT_FILE;
use koppel_pseudonymise::Pseudonymiser;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{debug, info};

pub use config::DisclosureConfig;
pub use error::ExportError;
pub use guard::LeakGuard;
pub use inputs::LinkedModels;
pub use koppel_disclosure::Reference;
pub use report::DisclosureReport;

use codebook::{Codebook, ColumnNotes, describe_file};
use release::{ReleaseFile, ReleaseTarget, sha256_file, write_csv, write_json, write_parquet};

use koppel_contract::files::release::{
    CODEBOOK_JSON, CODEBOOK_MD, DISCLOSURE_JSON, DISCLOSURE_MD, MANIFEST_FILE, ORGANISATION_FILE,
    PERSON_FILE, SHA256SUMS_FILE,
};

/// Who the release is for and which keys made it.
pub struct ExportOptions<'a> {
    pub config: &'a DisclosureConfig,
    /// The release key's research-ID pseudonymiser (stage `Research`);
    /// the person file's IDs come from a key derived from it for
    /// `release_name` unless the rules ask for stable panel IDs.
    pub research: &'a Pseudonymiser,
    /// The release's name (a run's `<pipeline>_<period>_run-<n>`, or the
    /// release folder's name): research IDs differ between names and
    /// repeat for the same name.
    pub release_name: String,
    pub pipeline: String,
    pub pipeline_version: String,
    /// Identifiers and pseudonyms seen upstream; the export adds the
    /// stage-2 pseudonyms of the models itself.
    pub guard: LeakGuard,
    /// Further files of the release made from its disclosure report (the
    /// run report page): written before the leak guard reads the release
    /// back, and listed in the manifest like every other file.
    pub attachments: Vec<Attachment<'a>>,
    /// Stop after everything is written and checked, just before the
    /// rename — to prove that an interrupted release leaves nothing.
    #[doc(hidden)]
    pub interrupt_before_commit: bool,
}

/// A file the caller adds to the release, rendered once the disclosure
/// report is known.
pub struct Attachment<'a> {
    /// A plain file name, not one the release writes itself.
    pub name: String,
    pub render: RenderAttachment<'a>,
}

/// Renders an attachment's bytes from the release's disclosure report.
pub type RenderAttachment<'a> = Box<dyn Fn(&DisclosureReport) -> Vec<u8> + 'a>;

/// A key named in the release: purpose, id and version, never material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyLabel {
    pub purpose: String,
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub name: String,
    pub sha256: String,
}

/// `manifest.json`: what the release is, what it was made from, and the
/// checksum of every file.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryManifest {
    pub release_id: String,
    pub pipeline: String,
    pub pipeline_version: String,
    pub keys: Vec<KeyLabel>,
    pub inputs: Vec<InputFile>,
    pub disclosure: BTreeMap<String, serde_json::Value>,
    pub files: Vec<ReleaseFile>,
}

#[derive(Debug)]
pub struct ExportOutcome {
    pub release_dir: PathBuf,
    pub release_id: String,
    pub manifest: DeliveryManifest,
    pub report: DisclosureReport,
}

/// Builds the release from a linking output directory: read the models,
/// protect every file against the declared recipients, write them, read
/// them back through the leak guard, list them in the manifest, and only
/// then rename the release into place.
pub fn export(
    linked: &Path,
    out: &Path,
    mut options: ExportOptions<'_>,
) -> Result<ExportOutcome, ExportError> {
    let config = options.config;
    config.validate()?;
    let target = ReleaseTarget::new(out)?;
    let step = Instant::now();
    let models = LinkedModels::read(linked, config, &mut options.guard)?;
    debug!(ms = elapsed_ms(step), "linking output read");
    let keys = vec![
        models.stage2.clone(),
        KeyLabel {
            purpose: "release".into(),
            id: options.research.key_id().to_owned(),
            version: options.research.key_version().to_string(),
        },
    ];
    let release_id = release_id(&models.files, config, &options, &keys);
    info!(release = %release_id, "building release");

    let protected = protect_release(&models, &options)?;
    let report = DisclosureReport {
        release_id: release_id.clone(),
        rules: config.clone(),
        person: protected.persons.disclosure.clone(),
        organisation: protected.organisations.disclosure.clone(),
        tables: protected
            .tables
            .iter()
            .map(|t| t.disclosure.clone())
            .collect(),
        linkage_report: protected.linkage_disclosure.clone(),
    };
    let step = Instant::now();
    write_files(&target, &protected, &report, &release_id, &keys, &options)?;
    debug!(ms = elapsed_ms(step), "release files written");
    let names = read_back(&target, &mut options.guard)?;
    let manifest = write_manifest(
        &target,
        &names,
        &protected,
        &report,
        models.files,
        keys,
        &options,
    )?;

    if options.interrupt_before_commit {
        return Err(ExportError::Io {
            path: out.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted before the release was renamed into place",
            ),
        });
    }
    let release_dir = target.commit()?;
    info!(release = %release_id, path = %release_dir.display(), "release written");
    Ok(ExportOutcome {
        release_dir,
        release_id,
        manifest,
        report,
    })
}

fn elapsed_ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Everything the release holds, protected.
struct ProtectedRelease {
    organisations: organisation::OrganisationRelease,
    persons: person::PersonRelease,
    tables: Vec<tabulate::ReleasedTable>,
    linkage: serde_json::Value,
    linkage_disclosure: tabulate::LinkageDisclosure,
}

/// The organisation file, the person file against every declared
/// recipient, the tables from the released rows, protected together, and
/// the linkage report's copy through the table rules.
fn protect_release(
    models: &LinkedModels,
    options: &ExportOptions<'_>,
) -> Result<ProtectedRelease, ExportError> {
    let config = options.config;
    let started = Instant::now();
    let organisations =
        organisation::release_organisations(&models.orgs, &config.organisation, options.research)?;
    let headcounts = organisation::headcounts(&models.orgs)?;
    let persons = person::release_persons(
        &person::PersonInputs {
            people: &models.people,
            workforce: models.workforce.as_ref(),
            headcounts: &headcounts,
            released_orgs: &organisations.released,
        },
        &config.person,
        options.research,
        &options.release_name,
    )?;
    info!(
        rows = persons.batch.num_rows(),
        k_reached = persons.disclosure.smallest_class,
        elapsed_ms = elapsed_ms(started),
        "person file anonymised"
    );
    // Person tables count the released person file's rows; organisation
    // tables the organisation model's; tables that share cells are
    // protected together.
    let step = Instant::now();
    let mut person_file = tabulate::PersonFile {
        batch: &persons.batch,
        levels: persons
            .disclosure
            .quasi_identifiers
            .iter()
            .map(|q| (q.column.clone(), (q.hierarchy.clone(), q.level)))
            .collect(),
        categories: &persons.categories,
        model_rows: None,
    };
    if tabulate::needs_model_rows(&config.tables, &person_file) {
        person_file.model_rows = Some(persons.model_rows.clone());
    }
    let tables = tabulate::release_tables(
        &config.tables,
        &models.people,
        &models.orgs,
        &person_file,
        &organisations,
        &config.table_rules,
    )?;
    for t in &tables {
        info!(table = %t.disclosure.name, cells = t.disclosure.cells, "table protected");
    }
    // The linkage report stays with the TTP (in the linking output); the
    // release carries a copy whose counts went through the table rules.
    let path = &models.report_path;
    let text = std::fs::read_to_string(path).map_err(ExportError::io(path))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ExportError::Input {
        path: path.clone(),
        message: format!(
            "not a linkage report (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    let (linkage, linkage_disclosure) =
        tabulate::protect_linkage_report(&value, &config.table_rules).map_err(|source| {
            ExportError::Table {
                table: format!("{LINKAGE_REPORT_FILE} coverage"),
                source: Box::new(source),
            }
        })?;
    debug!(ms = elapsed_ms(step), "tables and linkage report protected");
    Ok(ProtectedRelease {
        organisations,
        persons,
        tables,
        linkage,
        linkage_disclosure,
    })
}

/// Writes every file of the release (all but the manifest and checksums)
/// into the release's temporary folder.
fn write_files(
    target: &ReleaseTarget,
    protected: &ProtectedRelease,
    report: &DisclosureReport,
    release_id: &str,
    keys: &[KeyLabel],
    options: &ExportOptions<'_>,
) -> Result<(), ExportError> {
    let config = options.config;
    let keys_json = serde_json::to_string(keys).expect("keys serialise");
    let metadata = |disclosure: serde_json::Value| -> BTreeMap<String, String> {
        [
            ("koppel.release_id", release_id.to_owned()),
            ("koppel.pipeline", options.pipeline.clone()),
            ("koppel.pipeline_version", options.pipeline_version.clone()),
            ("koppel.keys", keys_json.clone()),
            ("koppel.disclosure", disclosure.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    let persons = &protected.persons;
    let person_meta = serde_json::json!({
        "k": config.person.k,
        "k_reached": persons.disclosure.smallest_class,
        "max_suppression_pct": config.person.max_suppression_pct,
        "unit": config.person.unit,
        "research_ids": config.person.research_ids,
        "recipients": config.person.recipients,
        "variables": persons.disclosure.quasi_identifiers.iter()
            .map(|q| serde_json::json!({"column": q.column, "level": q.level, "levels": q.levels}))
            .collect::<Vec<_>>(),
        "l_diversity": config.person.l_diversity,
    });
    write_parquet(
        &target.file(PERSON_FILE),
        &persons.batch,
        &metadata(person_meta),
    )?;
    let org_meta = serde_json::json!({
        "min_persons": config.organisation.min_persons,
        "k": config.organisation.k,
        "banded": config.organisation.banded,
    });
    write_parquet(
        &target.file(ORGANISATION_FILE),
        &protected.organisations.batch,
        &metadata(org_meta),
    )?;
    let rules_meta = serde_json::to_value(&config.table_rules).expect("rules serialise");
    for t in &protected.tables {
        let name = &t.disclosure.name;
        write_parquet(
            &target.file(&format!("table-{name}.parquet")),
            &t.batch,
            &metadata(rules_meta.clone()),
        )?;
        write_csv(&target.file(&format!("table-{name}.csv")), &t.batch)?;
    }
    write_json(&target.file(LINKAGE_REPORT_FILE), &protected.linkage)?;

    let codebook = build_codebook(
        release_id,
        persons,
        &protected.organisations,
        &protected.tables,
    );
    write_json(&target.file(CODEBOOK_JSON), &codebook)?;
    std::fs::write(target.file(CODEBOOK_MD), codebook.to_markdown())
        .map_err(ExportError::io(target.file(CODEBOOK_MD)))?;
    write_json(&target.file(DISCLOSURE_JSON), report)?;
    std::fs::write(target.file(DISCLOSURE_MD), report.to_markdown())
        .map_err(ExportError::io(target.file(DISCLOSURE_MD)))?;

    for attachment in &options.attachments {
        let name = &attachment.name;
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !name.starts_with('.');
        if !plain || target.file(name).exists() || name == MANIFEST_FILE || name == SHA256SUMS_FILE
        {
            return Err(ExportError::Input {
                path: target.file(name),
                message: "an attachment needs a plain file name of its own".into(),
            });
        }
        let bytes = (attachment.render)(report);
        std::fs::write(target.file(name), bytes).map_err(ExportError::io(target.file(name)))?;
    }
    Ok(())
}

/// The leak guard reads back every file as a researcher would; the
/// release's file names, sorted.
fn read_back(target: &ReleaseTarget, guard: &mut LeakGuard) -> Result<Vec<String>, ExportError> {
    let mut names: Vec<String> = std::fs::read_dir(target.path())
        .map_err(ExportError::io(target.path()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(ExportError::io(target.path()))?;
    names.sort();
    for name in &names {
        let path = target.file(name);
        if name.ends_with(".parquet") {
            guard.scan_parquet(&path, name)?;
        } else if let Some(stem) = name.strip_suffix(".csv") {
            // Which columns hold floats, from the Parquet twin the CSV was
            // written beside.
            let twin = target.file(&format!("{stem}.parquet"));
            let floats: Vec<String> = match File::open(&twin) {
                Ok(file) => ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(ExportError::parquet(format!("reading {stem}.parquet")))?
                    .schema()
                    .fields()
                    .iter()
                    .filter(|f| f.data_type().is_floating())
                    .map(|f| f.name().clone())
                    .collect(),
                Err(_) => Vec::new(),
            };
            guard.scan_csv(&path, name, &floats)?;
        } else {
            guard.scan_text(&path, name)?;
        }
    }
    info!(
        files = names.len(),
        fingerprints = guard.len(),
        "leak guard passed"
    );
    Ok(names)
}

/// `manifest.json` and `SHA256SUMS` over the files read back.
fn write_manifest(
    target: &ReleaseTarget,
    names: &[String],
    protected: &ProtectedRelease,
    report: &DisclosureReport,
    inputs: Vec<InputFile>,
    keys: Vec<KeyLabel>,
    options: &ExportOptions<'_>,
) -> Result<DeliveryManifest, ExportError> {
    let config = options.config;
    let rows: HashMap<String, u64> = [
        (
            PERSON_FILE.to_owned(),
            protected.persons.batch.num_rows() as u64,
        ),
        (
            ORGANISATION_FILE.to_owned(),
            protected.organisations.batch.num_rows() as u64,
        ),
    ]
    .into_iter()
    .chain(protected.tables.iter().map(|t| {
        (
            format!("table-{}.parquet", t.disclosure.name),
            t.batch.num_rows() as u64,
        )
    }))
    .collect();
    let mut files = Vec::new();
    for name in names {
        let (sha256, bytes) = sha256_file(&target.file(name))?;
        files.push(ReleaseFile {
            name: name.clone(),
            bytes,
            sha256,
            rows: rows.get(name).copied(),
        });
    }
    let manifest = DeliveryManifest {
        release_id: report.release_id.clone(),
        pipeline: options.pipeline.clone(),
        pipeline_version: options.pipeline_version.clone(),
        keys,
        inputs,
        disclosure: [
            ("k".to_owned(), serde_json::json!(config.person.k)),
            (
                "k_reached".to_owned(),
                serde_json::json!(report.person.smallest_class),
            ),
            (
                "organisation_min_persons".to_owned(),
                serde_json::json!(config.organisation.min_persons),
            ),
            (
                "table_threshold".to_owned(),
                serde_json::json!(config.table_rules.threshold),
            ),
        ]
        .into_iter()
        .collect(),
        files,
    };
    write_json(&target.file(MANIFEST_FILE), &manifest)?;
    let (sha, bytes) = sha256_file(&target.file(MANIFEST_FILE))?;
    let mut sums = manifest.files.clone();
    sums.push(ReleaseFile {
        name: MANIFEST_FILE.into(),
        bytes,
        sha256: sha,
        rows: None,
    });
    sums.sort_by(|a, b| a.name.cmp(&b.name));
    release::write_sha256sums(&target.file(SHA256SUMS_FILE), &sums)?;
    Ok(manifest)
}

/// The release id is a digest of what the release was made from — inputs,
/// rules, pipeline, the release's name and keys — so the same inputs give
/// the same id (and the same bytes), and a release under another name
/// another id.
fn release_id(
    inputs: &[InputFile],
    config: &DisclosureConfig,
    options: &ExportOptions<'_>,
    keys: &[KeyLabel],
) -> String {
    let mut h = Sha256::new();
    for i in inputs {
        h.update(i.name.as_bytes());
        h.update([0]);
        h.update(i.sha256.as_bytes());
        h.update([0]);
    }
    h.update(serde_json::to_vec(config).expect("config serialises"));
    h.update([0]);
    h.update(options.pipeline.as_bytes());
    h.update([0]);
    h.update(options.pipeline_version.as_bytes());
    h.update([0]);
    h.update(options.release_name.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(keys).expect("keys serialise"));
    format!("R-{}", &hex::encode(h.finalize())[..16])
}

fn build_codebook(
    release_id: &str,
    person: &person::PersonRelease,
    orgs: &organisation::OrganisationRelease,
    tables: &[tabulate::ReleasedTable],
) -> Codebook {
    let mut notes: HashMap<String, ColumnNotes> = HashMap::new();
    for q in &person.disclosure.quasi_identifiers {
        notes.insert(
            q.column.clone(),
            ColumnNotes {
                categories: person
                    .categories
                    .get(&q.column)
                    .cloned()
                    .unwrap_or_default(),
                generalisation: Some(format!(
                    "level {} of {} ({}); known to {}",
                    q.level,
                    q.levels - 1,
                    report::hierarchy_name(&q.hierarchy, q.level),
                    if q.known_by.is_empty() {
                        "no declared recipient".to_owned()
                    } else {
                        q.known_by
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )),
                suppressed: q.values_suppressed,
                derivation: None,
            },
        );
    }
    let mut files = vec![describe_file(
        PERSON_FILE,
        "One row per survey respondent and year, protected against every declared recipient (disclosure-report.md)",
        &person.batch,
        &mut notes,
    )];
    let mut notes: HashMap<String, ColumnNotes> = HashMap::new();
    for (column, count) in &orgs.disclosure.suppressed {
        notes.entry(column.clone()).or_default().suppressed = *count;
    }
    for (column, banding) in &orgs.disclosure.banded {
        let n = notes.entry(column.clone()).or_default();
        n.generalisation = Some(match banding {
            config::Banding::Round { to } => format!("rounded to the nearest {to}"),
            config::Banding::Classes { .. } => {
                "classes: lower bound included, upper bound excluded".into()
            }
        });
        n.categories = orgs.categories.get(column).cloned().unwrap_or_default();
    }
    files.push(describe_file(
        ORGANISATION_FILE,
        "One row per organisation and year with at least the minimum number of persons",
        &orgs.batch,
        &mut notes,
    ));
    for t in tables {
        let mut notes: HashMap<String, ColumnNotes> = HashMap::new();
        for (name, categories) in &t.categories {
            let mut categories = categories.clone();
            categories.push(tabulate::TOTAL.into());
            notes.insert(
                name.clone(),
                ColumnNotes {
                    categories,
                    derivation: Some(format!(
                        "Dimension of the table; `{}` is the margin, `{}` holds rows whose value is unknown or suppressed",
                        tabulate::TOTAL,
                        tabulate::UNKNOWN
                    )),
                    ..Default::default()
                },
            );
        }
        for (column, rows) in [
            (
                "person_years",
                "Rows of the person file in the cell, by their released values: a respondent counts once per year it falls in the cell, so margins are the sums of their cells",
            ),
            (
                "organisation_years",
                "Rows of the organisation model in the cell: an organisation counts once per year it falls in the cell, so margins are the sums of their cells",
            ),
        ] {
            notes.insert(
                column.into(),
                ColumnNotes {
                    derivation: Some(format!("{rows}; null when suppressed")),
                    ..Default::default()
                },
            );
        }
        for measure in &t.disclosure.measures {
            let whence = if t.disclosure.model == config::TableModel::Person {
                "over the person file's rows in the cell (from the model where the file does not carry the measure as a number)"
            } else {
                "over the organisation-years in the cell"
            };
            notes.insert(
                format!("{measure}_sum"),
                ColumnNotes {
                    derivation: Some(format!("Sum of {measure} {whence}; null when suppressed")),
                    ..Default::default()
                },
            );
        }
        notes.insert(
            "status".into(),
            ColumnNotes {
                categories: ["safe", "empty", tables::SUPPRESSED]
                    .map(String::from)
                    .to_vec(),
                derivation: Some(
                    "Disclosure status of the cell: safe (published), empty (no rows; published as 0) or suppressed (its numbers are null). Whether a suppressed cell was unsafe itself or suppressed to protect another is not said; the disclosure report counts the reasons per table".into(),
                ),
                ..Default::default()
            },
        );
        files.push(describe_file(
            &format!("table-{}.parquet", t.disclosure.name),
            &t.disclosure.label,
            &t.batch,
            &mut notes,
        ));
    }
    Codebook {
        release_id: release_id.into(),
        files,
    }
}
