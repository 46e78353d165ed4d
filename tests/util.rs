//! Helpers every end-to-end module uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The passphrase of the demo keys (keys-example/), published on purpose.
pub const PASSPHRASE: &str = "koppel-demo-passphrase";

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `koppel` binary under test, with none of the operator's settings
/// from the environment (log filter, state, key store, spec folder).
pub fn koppel_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_koppel"));
    for var in [
        "RUST_LOG",
        "KOPPEL_STATE",
        "KOPPEL_KEYSTORE",
        "KOPPEL_SPECS",
        "KOPPEL_PASSPHRASE",
        "KOPPEL_PARTNER_PASSPHRASE",
    ] {
        command.env_remove(var);
    }
    command
}

/// What a command printed, stdout then stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies the demo keys (keys-example/) into `dir` with mode 0600: git does
/// not keep modes, and Koppel refuses key files others can read. Returns
/// the key store and the folder of partner key files.
pub fn demo_keys(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let private = |path: &Path| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap()
    };
    let store = dir.join("demo.keystore.yaml");
    let partners = dir.join("partners");
    std::fs::create_dir_all(&partners).unwrap();
    std::fs::copy(repo().join("keys-example/demo.keystore.yaml"), &store).unwrap();
    private(&store);
    for entry in std::fs::read_dir(repo().join("keys-example/partners")).unwrap() {
        let from = entry.unwrap().path();
        let to = partners.join(from.file_name().unwrap());
        std::fs::copy(&from, &to).unwrap();
        private(&to);
    }
    (store, partners)
}

/// A synthetic sector in a temporary folder: raw deliveries, staged
/// (stage 2 with the test keys) and linked.
pub struct Sector {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub raw: PathBuf,
    pub staged: PathBuf,
    pub linked: PathBuf,
}

/// Synthesises `persons` workers (2023–2024, `seed`), stages and links them;
/// a module keeps its sector in a `OnceLock` to make it once.
pub fn linked_sector(persons: usize, seed: u64) -> Sector {
    use koppel_join::{LinkConfig, link};
    use koppel_synth::{SynthConfig, synthesise};
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    synthesise(&SynthConfig::new(persons, 2023..=2024, seed), &raw).unwrap();
    let staged = dir.path().join("staged");
    koppel_testkit::stage_raw(&raw, &staged);
    let linked = dir.path().join("linked");
    link(&staged, &linked, &LinkConfig::default()).unwrap();
    Sector {
        root: dir.path().to_owned(),
        _dir: dir,
        raw,
        staged,
        linked,
    }
}
