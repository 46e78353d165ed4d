//! The binary outside the repository, as a partner has it after
//! `cargo install --path crates/koppel`: `koppel validate` and `koppel
//! partner prepare` from an empty directory, with the source specs built
//! in, and a spec folder on disk still taking precedence. (`koppel demo`
//! from an empty directory is the shared demo of `pipeline.rs`.)

use std::path::{Path, PathBuf};
use std::process::Output;

use koppel_synth::{SynthConfig, synthesise};

use crate::util::{PASSPHRASE, demo_keys, koppel_command, text};

fn in_dir(dir: &Path, args: &[&str]) -> Output {
    koppel_command()
        .args(args)
        .current_dir(dir)
        .env("KOPPEL_PARTNER_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("koppel runs")
}

/// A partner's extract, written where a partner keeps it.
fn extract(dir: &Path) -> PathBuf {
    let mut config = SynthConfig::new(300, 2024..=2024, 3);
    config.only = vec!["vernet_verzuimmeldingen".to_owned()];
    let summary = synthesise(&config, dir).unwrap();
    summary
        .files
        .iter()
        .find(|f| f.source == "vernet_verzuimmeldingen")
        .unwrap()
        .path
        .clone()
}

#[test]
fn validate_and_prepare_work_without_a_checkout() {
    let partner = tempfile::tempdir().unwrap();
    let data = partner.path().join("data");
    let file = extract(&data);
    let cwd = partner.path().join("empty");
    std::fs::create_dir_all(&cwd).unwrap();

    let out = in_dir(&cwd, &["validate", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("vernet_verzuimmeldingen"),
        "{}",
        text(&out)
    );

    // The partner's key file, private as Koppel requires.
    let (_, partners) = demo_keys(&partner.path().join("keys"));
    let keys = partners.join("vernet.keys.yaml");
    let out = in_dir(
        &cwd,
        &[
            "partner",
            "prepare",
            "--input",
            file.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "--out",
            "outbox",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let sealed: Vec<_> = std::fs::read_dir(cwd.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(sealed, vec!["vernet_verzuimmeldingen_2024.csv.sealed"]);

    // A spec folder on disk overrides the built-in specs: an empty one
    // knows no source at all.
    let no_specs = partner.path().join("no-specs");
    std::fs::create_dir_all(&no_specs).unwrap();
    let out = in_dir(
        &cwd,
        &[
            "validate",
            "--specs",
            no_specs.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
}
