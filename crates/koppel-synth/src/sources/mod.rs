//! One writer per source. Each reads the population model and draws any
//! row-level detail from its own stream, `<source>/<year>`; defect positions
//! come from `<source>/<year>/defects`.

mod fwg_table;
mod intrakoop;
mod izz;
mod monitor;
mod pfzw;
mod vernet;

use koppel_contract::{DeliveryFileName, Source};

use crate::model::Model;
use crate::{PlantedDefect, SynthError, WrittenFile};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

// The contract's source names (koppel-contract), as the writers match on them.
pub(crate) const PFZW: &str = Source::Payroll.contract_name();
pub(crate) const VERNET: &str = Source::Absence.contract_name();
pub(crate) const IZZ_VERZEKERDEN: &str = Source::Insured.contract_name();
pub(crate) const IZZ_ZORGGEBRUIK: &str = Source::CareUse.contract_name();
pub(crate) const IZZ_MONITOR: &str = Source::Survey.contract_name();
pub(crate) const FWG: &str = Source::JobCharacteristics.contract_name();
pub(crate) const INTRAKOOP: &str = Source::AnnualReports.contract_name();

pub(crate) struct Written {
    pub file: WrittenFile,
    pub defects: Vec<PlantedDefect>,
}

/// Everything a writer needs to know about the file it writes.
pub(crate) struct Target<'a> {
    pub source: &'static str,
    pub year: i32,
    pub path: PathBuf,
    pub model: &'a Model,
    pub plant_defects: bool,
}

impl Target<'_> {
    pub(crate) fn rng(&self) -> ChaCha8Rng {
        crate::rng::stream(self.model.seed, &format!("{}/{}", self.source, self.year))
    }

    pub(crate) fn defect_rng(&self) -> ChaCha8Rng {
        crate::rng::stream(
            self.model.seed,
            &format!("{}/{}/defects", self.source, self.year),
        )
    }

    pub(crate) fn finish<K: crate::defects::DefectKind>(
        self,
        rows: u64,
        plan: &crate::defects::Plan<K>,
    ) -> Written {
        let defects = plan.summary(self.source, &self.path);
        Written {
            file: WrittenFile {
                source: self.source.to_string(),
                period: self.year.to_string(),
                path: self.path,
                rows,
            },
            defects,
        }
    }
}

/// `<source>_<year>.<csv|parquet>`, in the format the contract gives the
/// source.
pub(crate) fn file_name(source: &str, year: i32) -> String {
    let format = Source::from_contract_name(source)
        .expect("source names are validated before writing")
        .format();
    DeliveryFileName {
        source: source.to_owned(),
        period: year.to_string(),
        format,
        sealed: false,
    }
    .to_string()
}

pub(crate) fn write(
    source: &'static str,
    model: &Model,
    year: i32,
    plant_defects: bool,
    out_dir: &Path,
) -> Result<Written, SynthError> {
    let target = Target {
        source,
        year,
        path: out_dir.join(file_name(source, year)),
        model,
        plant_defects,
    };
    match source {
        PFZW => pfzw::write(target),
        VERNET => vernet::write(target),
        IZZ_VERZEKERDEN => izz::write_insured(target),
        IZZ_ZORGGEBRUIK => izz::write_care_use(target),
        IZZ_MONITOR => monitor::write(target),
        FWG => fwg_table::write(target),
        INTRAKOOP => intrakoop::write(target),
        other => unreachable!("source names are validated before writing: {other}"),
    }
}
