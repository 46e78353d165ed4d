//! Test support shared by the workspace's tests and benchmarks.
//!
//! **Job:** turn a folder of raw contract deliveries (as the synth crate or
//! a test writes them) into the stage-2 Parquet files the linking stage
//! reads, through the real ingest and stage-2 code, with fixed test keys.
//! The TTP computes stage 1 itself here (`allow_raw`), which a pipeline may
//! permit. **Input:** raw delivery files. **Output:** stage-2 Parquet, and
//! the pseudonyms a test expects to find in the models.
//!
//! Never for real data: the keys are constants.
//!
//! [`attack`] is the independent attacker on a written release: the
//! re-identification risk per party that holds part of the data, and the
//! relationships a researcher can still recover, from the files alone.

pub mod attack;

use std::path::{Path, PathBuf};

use koppel_contract::files::manifest_path;
use koppel_contract::{IdentifierMode, IdentifierType};
use koppel_ingest::{DeliveryManifest, SpecSet};
use koppel_pseudonymise::{
    KeyMaterial, Pseudonymiser, Stage, Stage2Transform, pseudonymise_staged,
};

/// The project's source specs (as compiled in; a test of the files on
/// disk against them is in koppel-ingest).
pub fn specs() -> SpecSet {
    SpecSet::contract().unwrap()
}

/// The repository's root, for tests that read its files.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn stage1() -> Pseudonymiser {
    Pseudonymiser::new(
        Stage::Stage1,
        &KeyMaterial::from_bytes([0x51; 32]),
        "stage1-test",
        1,
    )
}

pub fn stage2() -> Pseudonymiser {
    Pseudonymiser::new(
        Stage::Stage2,
        &KeyMaterial::from_bytes([0x52; 32]),
        "stage2-test",
        1,
    )
}

fn rows_of(file: &Path) -> u64 {
    if file.extension().unwrap() == "parquet" {
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(file).unwrap())
                .unwrap();
        use parquet::file::reader::FileReader;
        reader.metadata().file_metadata().num_rows() as u64
    } else {
        std::fs::read_to_string(file).unwrap().lines().count() as u64 - 1
    }
}

/// Stages every delivery in `raw` into `out` as stage-2 Parquet.
pub fn stage_raw(raw: &Path, out: &Path) -> Vec<PathBuf> {
    let specs = specs();
    std::fs::create_dir_all(out).unwrap();
    let mut written = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.')
                && (name.ends_with(".csv") || name.ends_with(".parquet"))
                && !name.ends_with(".manifest.yaml")
        })
        .collect();
    files.sort();
    for file in files {
        let spec = specs.for_file(&file).unwrap();
        let name = specs.delivery_name(&file).unwrap();
        let period = name.period.clone();
        DeliveryManifest::describe(
            &file,
            &spec.source,
            &period,
            rows_of(&file),
            IdentifierMode::Raw,
        )
        .unwrap()
        .write(&manifest_path(&file))
        .unwrap();
        let transform = Stage2Transform::new(&spec.source, stage2())
            .unwrap()
            .allow_raw(stage1())
            .unwrap();
        let output = out.join(name.stage2_name());
        pseudonymise_staged(&file, spec, &transform, &output).unwrap();
        written.push(output);
    }
    written
}

/// The stage-2 pseudonym of a raw identifier, as the linked models hold it.
fn p2_of(kind: IdentifierType, raw: &str) -> Vec<u8> {
    let p1 = stage1().pseudonym_of_raw(kind, raw.as_bytes()).unwrap();
    stage2().pseudonym(kind, &p1).to_vec()
}

/// The stage-2 pseudonym of a raw citizen number.
pub fn person_p2(bsn: &str) -> Vec<u8> {
    p2_of(IdentifierType::Bsn, bsn)
}

/// The stage-2 pseudonym of a raw KvK number.
pub fn org_p2(kvk: &str) -> Vec<u8> {
    p2_of(IdentifierType::Kvk, kvk)
}
