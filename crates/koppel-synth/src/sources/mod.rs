//! One writer per source. Each reads the population model and draws any
//! row-level detail from its own stream, `<source>/<year>`; defect positions
//! come from `<source>/<year>/defects`.

mod fwg_table;
mod intrakoop;
mod izz;
mod monitor;
mod pfzw;
mod vernet;

use crate::model::Model;
use crate::{PlantedDefect, SynthError, WrittenFile};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

pub(crate) const PFZW: &str = "pfzw_dienstverbanden";
pub(crate) const VERNET: &str = "vernet_verzuimmeldingen";
pub(crate) const IZZ_VERZEKERDEN: &str = "izz_verzekerden";
pub(crate) const IZZ_ZORGGEBRUIK: &str = "izz_zorggebruik";
pub(crate) const IZZ_MONITOR: &str = "izz_monitor";
pub(crate) const FWG: &str = "fwg_functiekenmerken";
pub(crate) const INTRAKOOP: &str = "intrakoop_jaarverslagen";

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

pub(crate) fn file_name(source: &str, year: i32) -> String {
    let extension = if source == IZZ_MONITOR {
        "parquet"
    } else {
        "csv"
    };
    format!("{source}_{year}.{extension}")
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
