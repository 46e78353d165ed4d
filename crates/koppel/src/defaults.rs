//! What the binary carries so it works without a checkout: the contract's
//! source specs (in `koppel-contract`), the project pipeline and the demo
//! keys. Files on disk override each: an explicit flag (or its variable)
//! first, then the project's file relative to the working directory (so
//! edits in a checkout take effect), and only then the compiled-in copy.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use koppel_ingest::SpecSet;
use tracing::info;

/// The project pipeline (`pipelines/preventieplan.yaml`) as built.
pub const PROJECT_PIPELINE: &str = include_str!("../../../pipelines/preventieplan.yaml");
pub const PROJECT_PIPELINE_PATH: &str = "pipelines/preventieplan.yaml";
/// Where the project's source specs are in a checkout.
pub const SPECS_DIR: &str = "pipelines/sources";
/// Where the demo keys are in a checkout.
pub const DEMO_KEYS_DIR: &str = "keys-example";

/// The demo key store and partner key files (`keys-example/`), public by
/// design (published passphrase).
pub const DEMO_KEYSTORE: &str = include_str!("../../../keys-example/demo.keystore.yaml");
pub const DEMO_PARTNER_KEYS: [(&str, &str); 5] = [
    (
        "fwg",
        include_str!("../../../keys-example/partners/fwg.keys.yaml"),
    ),
    (
        "intrakoop",
        include_str!("../../../keys-example/partners/intrakoop.keys.yaml"),
    ),
    (
        "izz",
        include_str!("../../../keys-example/partners/izz.keys.yaml"),
    ),
    (
        "pfzw",
        include_str!("../../../keys-example/partners/pfzw.keys.yaml"),
    ),
    (
        "vernet",
        include_str!("../../../keys-example/partners/vernet.keys.yaml"),
    ),
];

/// Where a default came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Disk(PathBuf),
    Embedded,
}

/// The explicit path, else the project's path if it exists here, else
/// the compiled-in copy.
fn choose(explicit: Option<&Path>, project: &str) -> Origin {
    match explicit {
        Some(path) => Origin::Disk(path.to_owned()),
        None if Path::new(project).exists() => Origin::Disk(PathBuf::from(project)),
        None => Origin::Embedded,
    }
}

/// The source specs: `--specs`/`KOPPEL_SPECS`, else `pipelines/sources`
/// here, else the contract's specs compiled in.
pub fn source_specs(explicit: Option<&Path>) -> Result<SpecSet> {
    match choose(explicit, SPECS_DIR) {
        Origin::Disk(dir) => SpecSet::load_dir(&dir)
            .with_context(|| format!("cannot load the source specs from {}", dir.display())),
        Origin::Embedded => {
            info!("source specs: the contract's, compiled in");
            SpecSet::contract().context("the compiled-in source specs do not load")
        }
    }
}

/// The pipeline file's text and the name to use for it in messages.
pub fn pipeline_text(explicit: Option<&Path>) -> Result<(String, String)> {
    match choose(explicit, PROJECT_PIPELINE_PATH) {
        Origin::Disk(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((text, path.display().to_string()))
        }
        Origin::Embedded => {
            info!("pipeline: the project's, compiled in");
            Ok((
                PROJECT_PIPELINE.to_owned(),
                format!("<embedded>/{PROJECT_PIPELINE_PATH}"),
            ))
        }
    }
}

/// The TTP's demo key store, as [`install_demo_keys`] names it.
pub const DEMO_STORE_FILE: &str = "ttp.keystore.yaml";

/// Writes the demo keys (the key store as [`DEMO_STORE_FILE`], partner key
/// files as `<partner>.keys.yaml`) from `explicit`, the checkout's
/// `keys-example/` or the compiled-in copies into `to`, each readable by
/// its owner only (Koppel refuses key files others can read).
pub fn install_demo_keys(explicit: Option<&Path>, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    match choose(explicit, DEMO_KEYS_DIR) {
        Origin::Disk(dir) => {
            let read = |p: PathBuf| {
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
            };
            files.push((
                to.join(DEMO_STORE_FILE),
                read(dir.join("demo.keystore.yaml"))?,
            ));
            for (partner, _) in DEMO_PARTNER_KEYS {
                let name = format!("{partner}.keys.yaml");
                files.push((to.join(&name), read(dir.join("partners").join(&name))?));
            }
        }
        Origin::Embedded => {
            info!("demo keys: compiled in");
            files.push((to.join(DEMO_STORE_FILE), DEMO_KEYSTORE.into()));
            for (partner, text) in DEMO_PARTNER_KEYS {
                files.push((to.join(format!("{partner}.keys.yaml")), text.into()));
            }
        }
    }
    for (path, bytes) in files {
        koppel_contract::fsx::write_atomic(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    /// The compiled-in copies are the checkout's files, byte for byte, and
    /// every partner key file of keys-example/ is among them.
    #[test]
    fn embedded_defaults_are_the_project_s_files() {
        assert_eq!(
            std::fs::read_to_string(repo(PROJECT_PIPELINE_PATH)).unwrap(),
            PROJECT_PIPELINE
        );
        assert_eq!(
            std::fs::read_to_string(repo("keys-example/demo.keystore.yaml")).unwrap(),
            DEMO_KEYSTORE
        );
        let mut on_disk: Vec<String> = std::fs::read_dir(repo("keys-example/partners"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = DEMO_PARTNER_KEYS
            .iter()
            .map(|(p, _)| format!("{p}.keys.yaml"))
            .collect();
        assert_eq!(on_disk, embedded);
        for (partner, text) in DEMO_PARTNER_KEYS {
            let disk = repo(&format!("keys-example/partners/{partner}.keys.yaml"));
            assert_eq!(std::fs::read_to_string(disk).unwrap(), text, "{partner}");
        }
    }

    #[test]
    fn an_explicit_path_wins() {
        assert_eq!(
            choose(Some(Path::new("/x/specs")), SPECS_DIR),
            Origin::Disk(PathBuf::from("/x/specs"))
        );
        assert_eq!(
            choose(None, "/surely/not/here/pipelines/sources"),
            Origin::Embedded
        );
    }
}
