//! End to end through the `koppel` binary: synthesise a sector, validate
//! every delivery, and check that planted defects are rejected exactly and
//! that broken files fail cleanly.

use crate::util::{koppel_command, repo};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use koppel_ingest::{ReadOptions, SpecSet, validate_file};
use koppel_synth::{SynthConfig, synthesise};

fn koppel(args: &[&str]) -> Output {
    koppel_command()
        .args(args)
        .env("KOPPEL_SPECS", repo().join("pipelines/sources"))
        .output()
        .expect("koppel runs")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The foundation issue's acceptance check: `koppel synth --persons 2000
/// --seed 7` then `koppel validate` on every file accepts all of them with
/// zero rejects.
#[test]
fn synthetic_sector_validates_without_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let synth = koppel(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--persons",
        "2000",
        "--seed",
        "7",
    ]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );

    let files = files_in(&out);
    // Seven sources, two years each, and one FWG reference table.
    assert_eq!(files.len(), 13, "{files:?}");
    let mut args = vec!["validate", "--json"];
    args.extend(files.iter().map(String::as_str));
    let validate = koppel(&args);
    let stderr = String::from_utf8_lossy(&validate.stderr);
    assert!(validate.status.success(), "{stderr}");
    let summaries: serde_json::Value = serde_json::from_slice(&validate.stdout).unwrap();
    let summaries = summaries.as_array().unwrap();
    assert_eq!(summaries.len(), 13);
    let mut sources = std::collections::BTreeSet::new();
    for s in summaries {
        assert_eq!(s["rows_rejected"], 0, "{s}");
        assert_eq!(s["verdict"]["status"], "accepted", "{s}");
        assert!(s["rows_read"].as_u64().unwrap() > 0, "{s}");
        sources.insert(s["source"].as_str().unwrap().to_owned());
    }
    assert_eq!(sources.len(), 7);
}

/// With `--defects`, validation rejects exactly the planted rows: per file,
/// column and rule, the counts ingest finds equal the plan synth documents,
/// and the plan itself is the one docs/synth.md publishes.
#[test]
fn planted_defects_are_rejected_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        defects: true,
        ..SynthConfig::new(2000, 2023..=2024, 7)
    };
    let summary = synthesise(&config, dir.path()).unwrap();
    let specs = SpecSet::load_dir(&repo().join("pipelines/sources")).unwrap();

    let mut planted: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for d in &summary.defects {
        let file = d.file.file_name().unwrap().to_string_lossy().into_owned();
        *planted
            .entry((file, d.column.clone(), d.rule.clone()))
            .or_default() += d.count;
    }
    let mut found: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut rejected_rows = 0;
    for written in &summary.files {
        let spec = specs.for_file(&written.path).unwrap();
        let result = validate_file(&written.path, spec, ReadOptions::default()).unwrap();
        assert_eq!(result.rows_read, written.rows, "{}", written.path.display());
        assert_eq!(
            result.rows_read,
            result.rows_accepted + result.rows_rejected
        );
        rejected_rows += result.rows_rejected;
        let file = written
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for v in result.violations {
            found.insert((file.clone(), v.column, v.rule.code().to_owned()), v.count);
        }
    }
    assert_eq!(found, planted, "rejects found vs. defects planted");
    // Each planted row breaks exactly one rule.
    assert_eq!(rejected_rows, planted.values().sum::<u64>());

    // The published plan (docs/synth.md), per source, independent of synth's
    // own account of what it planted.
    let mut per_source: BTreeMap<String, u64> = BTreeMap::new();
    for ((file, _, _), n) in &found {
        let source = specs.for_file(Path::new(file)).unwrap().source.clone();
        *per_source.entry(source).or_default() += n;
    }
    let expected: BTreeMap<String, u64> = EXPECTED_DEFECTS_PER_SOURCE
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    assert_eq!(per_source, expected);
}

/// Defect rows per source in the last year's files, as docs/synth.md lists.
const EXPECTED_DEFECTS_PER_SOURCE: [(&str, u64); 7] = [
    ("fwg_functiekenmerken", 1),
    ("intrakoop_jaarverslagen", 2),
    ("izz_monitor", 5),
    ("izz_verzekerden", 2),
    ("izz_zorggebruik", 3),
    ("pfzw_dienstverbanden", 19),
    ("vernet_verzuimmeldingen", 7),
];

#[test]
fn validate_fails_a_delivery_with_defects_and_writes_a_clean_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let synth = koppel(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--persons",
        "300",
        "--years",
        "2024",
        "--seed",
        "3",
        "--defects",
        "--only",
        "fwg_functiekenmerken",
        "--only",
        "izz_verzekerden",
    ]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );

    // FWG's reference table allows no rejects: one duplicate fails it.
    let fwg = out.join("fwg_functiekenmerken_2024.csv");
    let report = dir.path().join("fwg.rejects.json");
    let v = koppel(&[
        "validate",
        fwg.to_str().unwrap(),
        "--rejects",
        report.to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&v.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
    let rejects: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(rejects.as_array().unwrap().len(), 1);
    assert_eq!(rejects[0]["rule"], "duplicate");

    // Rejected identifiers are reported without their value.
    let izz = out.join("izz_verzekerden_2024.csv");
    let report = dir.path().join("izz.rejects.csv");
    koppel(&[
        "validate",
        izz.to_str().unwrap(),
        "--rejects",
        report.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&report).unwrap();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[1] == "bsn" {
            assert_eq!(
                fields[3], "",
                "identifier value leaked into the report: {line}"
            );
        }
    }
    assert!(text.lines().count() > 1, "{text}");
}

/// Every file-level problem gives one clear error and a non-zero exit,
/// never a panic.
#[test]
fn broken_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        ("izz_verzekerden_empty.csv", b"", "is empty"),
        (
            "izz_verzekerden_semicolon.csv",
            b"bsn;jaar\n111222333;2024\n",
            "delimited by ','",
        ),
        (
            "izz_verzekerden_ragged.csv",
            b"bsn,jaar\n111222333,2024,1\n",
            "ragged row",
        ),
        (
            "izz_monitor_notparquet.parquet",
            b"bsn,jaar\n",
            "not a readable Parquet file",
        ),
    ];
    for (name, bytes, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let v = koppel(&["validate", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&v.stderr);
        assert_eq!(v.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expect),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let v = koppel(&[
        "validate",
        dir.path().join("unknown_source.csv").to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stderr).contains("cannot tell the source"));
}
