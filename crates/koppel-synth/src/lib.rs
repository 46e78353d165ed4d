//! # koppel-synth — realistic, deterministic synthetic partner deliveries
//!
//! Koppel's trusted third party links sensitive extracts from Dutch care
//! sector data partners. Real extracts cannot leave the partners, so every
//! stage of the pipeline is developed, tested and benchmarked on synthetic
//! deliveries made here: files that follow the delivery contract
//! (`shared/contract/README.md`) to the letter and carry the relationships the
//! research questions are about.
//!
//! **Input**: a [`SynthConfig`] — workforce size, number of organisations,
//! the years to deliver, a seed, whether to plant defects, and optionally a
//! subset of sources to write.
//!
//! **Output**: in the output directory, one file per source per year,
//! `<source>_<YYYY>.csv` (the survey as `izz_monitor_<YYYY>.parquet`) plus
//! the FWG reference table once, `fwg_functiekenmerken_<last year>.csv`; and
//! a [`SynthSummary`] listing the files, their row counts and the defects
//! planted in them.
//!
//! **How**: a population model (organisations, persons, employments, absence
//! episodes, care use; see `docs/synth.md`) is simulated in full from the
//! seed, then each file is written from the model with its own random stream.
//! The same configuration gives byte-identical files, and a file's content
//! does not depend on which other files were written.

mod absence;
mod calendar;
mod defects;
mod error;
mod fmt;
mod fwg;
mod ident;
mod model;
mod rng;
mod sector;
mod sink;
mod sources;

#[cfg(test)]
mod tests;

pub use error::SynthError;

use model::{Model, ModelParams};
use serde::Serialize;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// Canonical names of the seven sources, in the order they are written.
pub const SOURCES: [&str; 7] = [
    sources::PFZW,
    sources::VERNET,
    sources::IZZ_VERZEKERDEN,
    sources::IZZ_ZORGGEBRUIK,
    sources::IZZ_MONITOR,
    sources::FWG,
    sources::INTRAKOOP,
];

/// A marker file written beside every synthetic delivery set. Tools that
/// warn about demo keys on real data look for it; it is a dot-file, so
/// `dir/*` globs over the deliveries do not pick it up.
pub const SYNTHETIC_MARKER: &str = ".koppel-synthetic";

/// Largest workforce the generator accepts: persons, joiners and employments
/// are indexed with 32 bits.
const MAX_PERSONS: usize = 200_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Workforce size on 1 January of the first year (for example 2000 in
    /// tests, 1,500,000 at sector scale).
    pub persons: usize,
    /// Number of organisations; `None` derives it from `persons` (one per
    /// 150, at least 8).
    pub orgs: Option<usize>,
    /// Years to deliver, for example `2023..=2024`.
    pub years: RangeInclusive<i32>,
    pub seed: u64,
    /// Plant the documented defects in the last year's files.
    pub defects: bool,
    /// When not empty, write only these sources (canonical names, see
    /// [`SOURCES`]); the content of what is written does not change.
    pub only: Vec<String>,
}

impl SynthConfig {
    /// A configuration with derived organisation count, no defects and all
    /// sources.
    pub fn new(persons: usize, years: RangeInclusive<i32>, seed: u64) -> Self {
        SynthConfig {
            persons,
            orgs: None,
            years,
            seed,
            defects: false,
            only: Vec::new(),
        }
    }

    fn organisation_count(&self) -> usize {
        self.orgs.unwrap_or((self.persons / 150).max(8))
    }

    fn validate(&self) -> Result<(), SynthError> {
        if self.persons == 0 {
            return Err(SynthError::NoPersons);
        }
        if self.persons > MAX_PERSONS {
            return Err(SynthError::TooManyPersons {
                persons: self.persons,
                max: MAX_PERSONS,
            });
        }
        if self.orgs == Some(0) {
            return Err(SynthError::NoOrganisations);
        }
        let (start, end) = (*self.years.start(), *self.years.end());
        if start > end {
            return Err(SynthError::EmptyYearRange { start, end });
        }
        for year in [start, end] {
            if !(2000..=2100).contains(&year) {
                return Err(SynthError::YearOutOfRange(year));
            }
        }
        for name in &self.only {
            if !SOURCES.contains(&name.as_str()) {
                return Err(SynthError::UnknownSource {
                    name: name.clone(),
                    known: SOURCES.join(", "),
                });
            }
        }
        Ok(())
    }

    fn wants(&self, source: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == source)
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    pub files: Vec<WrittenFile>,
    pub defects: Vec<PlantedDefect>,
}

/// One delivered file.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenFile {
    /// Canonical source name.
    pub source: String,
    /// Delivery period: the year, `YYYY`.
    pub period: String,
    pub path: PathBuf,
    /// Data rows, without the header, including planted defect rows.
    pub rows: u64,
}

/// Rows planted with one defect kind in one file.
#[derive(Debug, Clone, Serialize)]
pub struct PlantedDefect {
    pub source: String,
    pub file: PathBuf,
    /// Rule code shared with the ingest crate, e.g. `invalid_bsn`.
    pub rule: String,
    /// Canonical column name, e.g. `bsn`.
    pub column: String,
    pub count: u64,
}

/// Progress reports for long runs.
#[derive(Debug)]
pub enum SynthEvent<'a> {
    /// The population model is simulated.
    ModelReady {
        persons: usize,
        organisations: usize,
        employments: usize,
        absence_episodes: usize,
    },
    /// A file is about to be written.
    FileStarted { source: &'a str, period: &'a str },
    /// A file is complete.
    FileWritten(&'a WrittenFile),
}

/// Generates the deliveries described by `config` into `out_dir` (created if
/// missing).
pub fn synthesise(config: &SynthConfig, out_dir: &Path) -> Result<SynthSummary, SynthError> {
    synthesise_with_progress(config, out_dir, &mut |_| {})
}

/// [`synthesise`], reporting progress to `progress`.
pub fn synthesise_with_progress(
    config: &SynthConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(SynthEvent<'_>),
) -> Result<SynthSummary, SynthError> {
    config.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| SynthError::io(out_dir, e))?;
    let marker = out_dir.join(SYNTHETIC_MARKER);
    std::fs::write(
        &marker,
        "Synthetic deliveries made by `koppel synth`: no real person is in them.\n",
    )
    .map_err(|e| SynthError::io(&marker, e))?;
    let model = Model::build(&ModelParams {
        persons: config.persons,
        orgs: config.organisation_count(),
        first_year: *config.years.start(),
        last_year: *config.years.end(),
        seed: config.seed,
    });
    progress(SynthEvent::ModelReady {
        persons: model.persons.len(),
        organisations: model.orgs.len(),
        employments: model.spells.len(),
        absence_episodes: model.episodes.len(),
    });

    let mut summary = SynthSummary {
        files: Vec::new(),
        defects: Vec::new(),
    };
    for source in SOURCES {
        if !config.wants(source) {
            continue;
        }
        let periods: Vec<i32> = if source == sources::FWG {
            vec![model.last_year]
        } else {
            config.years.clone().collect()
        };
        for year in periods {
            let period = year.to_string();
            progress(SynthEvent::FileStarted {
                source,
                period: &period,
            });
            // Defects go into the last year's file of each source only, so
            // earlier years stay clean reference deliveries.
            let plant = config.defects && year == model.last_year;
            let written = sources::write(source, &model, year, plant, out_dir)?;
            progress(SynthEvent::FileWritten(&written.file));
            summary.files.push(written.file);
            summary.defects.extend(written.defects);
        }
    }
    Ok(summary)
}
