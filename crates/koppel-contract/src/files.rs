//! The names of the files one stage writes and another reads. A name
//! changed here changes for writer and reader together.

use std::path::{Path, PathBuf};

/// Beside a delivery: `<delivery file>.manifest.yaml`.
pub const MANIFEST_SUFFIX: &str = ".manifest.yaml";
/// A sealed delivery: `<delivery file>.sealed`.
pub const SEALED_SUFFIX: &str = ".sealed";

/// The manifest that belongs to a delivery file.
pub fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(MANIFEST_SUFFIX);
    PathBuf::from(name)
}

/// Linking's output folder (`koppel link`), read by export.
pub mod linked {
    pub const PERSON_MODEL_FILE: &str = "person_model.parquet";
    /// Everyone on the payroll, per year: the population the disclosure
    /// engine measures risk against. Read by export, never released.
    pub const WORKFORCE_MODEL_FILE: &str = "workforce_model.parquet";
    pub const ORGANISATION_MODEL_FILE: &str = "organisation_model.parquet";
    pub const LINKAGE_REPORT_FILE: &str = "linkage-report.json";
}

/// A research release (`koppel export`, `koppel run`), as researchers and
/// the release's `SHA256SUMS` see it.
pub mod release {
    pub const PERSON_FILE: &str = "persons.parquet";
    pub const ORGANISATION_FILE: &str = "organisations.parquet";
    pub const CODEBOOK_JSON: &str = "codebook.json";
    pub const CODEBOOK_MD: &str = "codebook.md";
    pub const DISCLOSURE_JSON: &str = "disclosure-report.json";
    pub const DISCLOSURE_MD: &str = "disclosure-report.md";
    pub const MANIFEST_FILE: &str = "manifest.json";
    pub const SHA256SUMS_FILE: &str = "SHA256SUMS";
    /// The run report a pipeline run attaches to its release.
    pub const REPORT_FILE: &str = "report.html";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_sits_beside_its_delivery() {
        assert_eq!(
            manifest_path(Path::new("in/pfzw_dienstverbanden_2024.csv")),
            Path::new("in/pfzw_dienstverbanden_2024.csv.manifest.yaml")
        );
    }
}
