//! Finding the stage-2 sources in a staging folder and checking that they
//! can be linked at all: every identifier must be a stage-2 pseudonym, and
//! all of them must come from one stage-2 key, or equal persons would not
//! meet.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use koppel_contract::DeliveryFileName;
use koppel_contract::meta::{META_IDENTIFIER, META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use crate::LinkError;

pub use koppel_contract::Source;

/// What linking knows of each contract source: the name of its table in
/// the linking SQL and the canonical columns the plans read.
pub trait LinkedSource {
    fn table(self) -> &'static str;
    fn required_columns(self) -> &'static [&'static str];
}

impl LinkedSource for Source {
    /// The table name in the linking SQL.
    fn table(self) -> &'static str {
        match self {
            Source::Payroll => "payroll",
            Source::Absence => "absence",
            Source::Insured => "insured",
            Source::CareUse => "care_use",
            Source::Survey => "survey",
            Source::JobCharacteristics => "fwg",
            Source::AnnualReports => "annual_reports",
        }
    }

    /// The canonical columns the linking plans read from this source.
    fn required_columns(self) -> &'static [&'static str] {
        match self {
            Source::Payroll => &[
                "bsn_p2",
                "employer_kvk_p2",
                "period",
                "birth_date",
                "sex",
                "postcode4",
                "contract_type",
                "hours_per_week",
                "gross_monthly_wage",
                "irregularity_allowance",
                "fwg_function_code",
                "sector",
                "employment_start",
                "employment_end",
            ],
            Source::Absence => &[
                "bsn_p2",
                "employer_kvk_p2",
                "sick_from",
                "recovered_on",
                "absence_pct",
            ],
            Source::Insured => &["bsn_p2", "year"],
            Source::CareUse => &["bsn_p2", "year", "care_type", "claims", "cost_eur"],
            Source::Survey => &[
                "bsn_p2",
                "year",
                "workload",
                "emotional_exhaustion",
                "engagement",
                "empowering_leadership",
                "learning_climate",
                "organisational_climate",
                "self_reported_absence",
                "work_related_absence",
                "intention_to_leave",
            ],
            Source::JobCharacteristics => &[
                "fwg_function_code",
                "function_title",
                "fwg_level",
                "physical_load",
                "mental_load",
                "injury_risk",
                "adverse_conditions",
                "irregular_hours",
            ],
            Source::AnnualReports => &[
                "employer_kvk_p2",
                "year",
                "revenue_keur",
                "personnel_cost_keur",
                "overhead_pct",
                "fte",
                "result_keur",
            ],
        }
    }
}

/// The stage-2 key every pseudonym column of the inputs was made with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkKey {
    pub key_id: String,
    pub key_version: String,
}

/// The staged, stage-2 pseudonymised deliveries found in a folder: per
/// source the files by period.
#[derive(Debug, Clone)]
pub struct StagedSources {
    pub files: BTreeMap<Source, BTreeMap<String, PathBuf>>,
    pub key: LinkKey,
}

impl StagedSources {
    /// Reads `<source>_<period>.parquet` files (as `koppel pseudonymise`
    /// writes them) from `dir`. Every source must be present, and every
    /// identifier column in them must be a stage-2 pseudonym of one key.
    pub fn discover(dir: &Path) -> Result<StagedSources, LinkError> {
        let io = |e: std::io::Error| LinkError::Io {
            path: dir.to_owned(),
            source: e,
        };
        let mut files: BTreeMap<Source, BTreeMap<String, PathBuf>> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
                continue;
            }
            let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Some((source, parsed)) = DeliveryFileName::parse_contract(name) else {
                return Err(LinkError::UnknownInput { path });
            };
            let period = parsed.period;
            files
                .entry(source)
                .or_default()
                .insert(period.to_owned(), path);
        }
        let missing: Vec<&str> = Source::ALL
            .into_iter()
            .filter(|s| !files.contains_key(s))
            .map(Source::contract_name)
            .collect();
        if !missing.is_empty() {
            return Err(LinkError::MissingSources {
                dir: dir.to_owned(),
                sources: missing.join(", "),
            });
        }
        let mut key: Option<(LinkKey, PathBuf)> = None;
        for (source, path) in files
            .iter()
            .flat_map(|(s, f)| f.values().map(move |p| (*s, p)))
        {
            let schema = schema_of(path)?;
            let keys = stage2_keys(path, &schema)?;
            if let Some(column) = source
                .required_columns()
                .iter()
                .find(|c| schema.field_with_name(c).is_err())
            {
                return Err(LinkError::MissingColumn {
                    path: path.clone(),
                    column: (*column).to_owned(),
                });
            }
            for found in keys {
                match &key {
                    None => key = Some((found, path.clone())),
                    Some((expected, first)) if *expected != found => {
                        return Err(LinkError::KeyMismatch {
                            path: path.clone(),
                            found: format!("{} v{}", found.key_id, found.key_version),
                            expected: format!("{} v{}", expected.key_id, expected.key_version),
                            first: first.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        let key = key
            .map(|(k, _)| k)
            .ok_or_else(|| LinkError::MissingSources {
                dir: dir.to_owned(),
                sources: "any stage-2 pseudonym column".into(),
            })?;
        Ok(StagedSources { files, key })
    }

    pub fn paths(&self, source: Source) -> Vec<&Path> {
        self.files[&source].values().map(PathBuf::as_path).collect()
    }

    /// The latest delivery of a reference source that is replaced whole
    /// rather than added to (the FWG table).
    pub fn latest(&self, source: Source) -> &Path {
        self.files[&source]
            .values()
            .next_back()
            .expect("discover() guarantees every source has a file")
    }
}

fn schema_of(path: &Path) -> Result<SchemaRef, LinkError> {
    let file = File::open(path).map_err(|e| LinkError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let metadata =
        ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| LinkError::Parquet {
            path: path.to_owned(),
            source: e,
        })?;
    Ok(metadata.schema().clone())
}

/// The key labels of every identifier column; an identifier column that is
/// not a stage-2 pseudonym is refused, so raw numbers and stage-1
/// pseudonyms can never enter the models.
fn stage2_keys(path: &Path, schema: &SchemaRef) -> Result<Vec<LinkKey>, LinkError> {
    let mut keys = Vec::new();
    for field in schema.fields() {
        let metadata = field.metadata();
        let is_identifier = metadata.contains_key(META_IDENTIFIER)
            || field.name().ends_with("_p1")
            || field.name() == "bsn"
            || field.name() == "employer_kvk";
        if !is_identifier {
            continue;
        }
        let stage = metadata.get(META_PSEUDONYM_STAGE).map(String::as_str);
        if stage != Some("p2") || !field.name().ends_with("_p2") {
            return Err(LinkError::NotStage2 {
                path: path.to_owned(),
                column: field.name().clone(),
            });
        }
        keys.push(LinkKey {
            key_id: metadata.get(META_KEY_ID).cloned().unwrap_or_default(),
            key_version: metadata.get(META_KEY_VERSION).cloned().unwrap_or_default(),
        });
    }
    Ok(keys)
}
