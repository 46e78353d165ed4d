//! Partner → TTP end to end through the `koppel` binary: a synthetic sector
//! is pseudonymised and sealed by each partner, unsealed by the TTP, and
//! every file and log line is scanned for raw identifiers and pseudonyms
//! where they must not be. Tamper, replay, wrong-key and wrong-passphrase
//! cases fail cleanly.

use crate::util::{PASSPHRASE, demo_keys, koppel_command, repo};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow::array::{Array, AsArray};
use koppel_pseudonymise::{PartnerKeys, Pseudonymiser, Stage};

fn koppel(args: &[&str]) -> Output {
    koppel_command()
        .args(args)
        .env("KOPPEL_SPECS", repo().join("pipelines/sources"))
        .env("KOPPEL_PASSPHRASE", PASSPHRASE)
        .env("KOPPEL_PARTNER_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_LOG")
        .output()
        .expect("koppel runs")
}

fn ok(out: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn partner_of(file: &str) -> &'static str {
    ["pfzw", "vernet", "izz", "fwg", "intrakoop"]
        .into_iter()
        .find(|p| file.starts_with(p))
        .unwrap()
}

fn deliveries(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Every value in the identifier columns of the raw deliveries, as written
/// and in canonical form.
fn raw_identifiers(dir: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut add = |v: &str| {
        let v = v.trim();
        if v.is_empty() {
            return;
        }
        ids.insert(v.to_owned());
        let width = if v.len() <= 8 { 8 } else { 9 };
        ids.insert(format!("{v:0>width$}"));
    };
    for file in deliveries(dir) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".parquet") {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&file).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let bsn = batch.column_by_name("bsn").unwrap().as_string::<i32>();
                for i in 0..bsn.len() {
                    if bsn.is_valid(i) {
                        add(bsn.value(i));
                    }
                }
            }
            continue;
        }
        let delimiter = if name.starts_with("izz") { b',' } else { b';' };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_path(&file)
            .unwrap();
        let headers = reader.headers().unwrap().clone();
        let columns: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                ["BSN", "WERKGEVER_KVK", "KVK_NUMMER", "KVK"].contains(&h.to_uppercase().as_str())
            })
            .map(|(i, _)| i)
            .collect();
        for record in reader.records() {
            let record = record.unwrap();
            for &c in &columns {
                add(&record[c]);
            }
        }
    }
    ids
}

/// The alphanumeric tokens of a file; Parquet files by their string values.
fn tokens(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(b"PAR1") {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            for column in batch.columns() {
                if let Some(strings) = column.as_string_opt::<i32>() {
                    out.extend(strings.iter().flatten().map(str::to_owned));
                }
            }
        }
        return out;
    }
    text_tokens(&String::from_utf8_lossy(&bytes))
}

fn text_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The foundation of the TTP's promise, checked end to end: partners
/// prepare every source of a synthetic sector, the TTP unseals them, the
/// staged data validate in pre-pseudonymised mode and carry the stage-1
/// pseudonyms of the demo project key, and no raw identifier appears in any
/// file or log line — nor any pseudonym in a log line or the register.
#[test]
fn sector_goes_from_partners_to_the_ttp_without_a_raw_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let (store, partners) = demo_keys(dir.path());
    let raw = dir.path().join("raw");
    ok(
        &koppel(&[
            "synth",
            "--out",
            raw.to_str().unwrap(),
            "--persons",
            "400",
            "--years",
            "2024",
            "--seed",
            "11",
        ]),
        "synth",
    );
    let raw_ids = raw_identifiers(&raw);
    assert!(raw_ids.len() > 400, "{}", raw_ids.len());

    let sealed = dir.path().join("sealed");
    let mut logs = String::new();
    for file in deliveries(&raw) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let keys = partners.join(format!("{}.keys.yaml", partner_of(&name)));
        logs += &ok(
            &koppel(&[
                "-vv",
                "partner",
                "prepare",
                "--input",
                file.to_str().unwrap(),
                "--keys",
                keys.to_str().unwrap(),
                "--out",
                sealed.to_str().unwrap(),
            ]),
            &format!("prepare {name}"),
        );
    }
    assert!(
        !logs.contains("DEMO keys"),
        "synthetic data must not trigger the demo warning:\n{logs}"
    );
    let sealed_files: Vec<String> = deliveries(&sealed)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(sealed_files.len(), 7);
    assert!(
        all_files(&sealed).len() == 7,
        "no temporary file is left behind"
    );

    let staging = dir.path().join("staging");
    let mut args = vec![
        "-vv",
        "unseal",
        "--store",
        store.to_str().unwrap(),
        "--staging",
        staging.to_str().unwrap(),
    ];
    args.extend(sealed_files.iter().map(String::as_str));
    logs += &ok(&koppel(&args), "unseal");

    // The staged deliveries are contract deliveries in `_P1` mode, whole.
    let staged: Vec<String> = deliveries(&staging)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".csv") || p.ends_with(".parquet"))
        .collect();
    assert_eq!(staged.len(), 7);
    let mut args = vec!["validate", "--json", "--require-manifest"];
    args.extend(staged.iter().map(String::as_str));
    let out = koppel(&args);
    let summaries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in summaries.as_array().unwrap() {
        assert_eq!(s["rows_rejected"], 0, "{s}");
        assert_eq!(s["manifest_verified"], true, "{s}");
        if s["source"] != "fwg_functiekenmerken" {
            assert_eq!(s["identifier_mode"], "p1", "{s}");
        }
        let raw_file = raw.join(Path::new(s["file"].as_str().unwrap()).file_name().unwrap());
        let raw_rows = if raw_file.extension().unwrap() == "parquet" {
            s["rows_read"].as_u64().unwrap()
        } else {
            std::fs::read_to_string(&raw_file).unwrap().lines().count() as u64 - 1
        };
        assert_eq!(s["rows_read"].as_u64().unwrap(), raw_rows, "{s}");
    }

    // They carry the stage-1 pseudonyms of the project key.
    let keys = PartnerKeys::open(&partners.join("izz.keys.yaml"), PASSPHRASE).unwrap();
    let (info, key) = &keys.stage1;
    let p1 = Pseudonymiser::new(Stage::Stage1, key, &info.id, info.version);
    let staged_izz = std::fs::read_to_string(staging.join("izz_verzekerden_2024.csv")).unwrap();
    let raw_izz = std::fs::read_to_string(raw.join("izz_verzekerden_2024.csv")).unwrap();
    let first_bsn = raw_izz.lines().nth(1).unwrap().split(',').next().unwrap();
    let expected = p1.p1_hex(
        koppel_contract::IdentifierType::Bsn,
        &format!("{first_bsn:0>9}"),
    );
    assert_eq!(
        staged_izz
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap(),
        expected
    );
    assert!(staged_izz.starts_with("bsn_P1,jaar\n"));

    // No raw identifier anywhere the partners' tools or the TTP wrote.
    let mut pseudonyms = HashSet::new();
    for dir in [&sealed, &staging] {
        for file in all_files(dir) {
            for token in tokens(&file) {
                assert!(
                    !raw_ids.contains(&token),
                    "raw identifier in {}",
                    file.display()
                );
                let data = file
                    .extension()
                    .is_some_and(|e| e == "csv" || e == "parquet");
                if data && token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                    pseudonyms.insert(token);
                }
            }
        }
    }
    assert!(pseudonyms.len() > 400, "{}", pseudonyms.len());
    // Logs hold neither raw identifiers nor pseudonyms; nor do the register
    // and the manifests, which are read by operators.
    let register =
        std::fs::read_to_string(staging.join(koppel_pseudonymise::REGISTER_FILE)).unwrap();
    let mut watched = logs.clone();
    watched += &register;
    for manifest in all_files(&staging)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".manifest.yaml"))
    {
        watched += &std::fs::read_to_string(manifest).unwrap();
    }
    for token in text_tokens(&watched) {
        assert!(
            !raw_ids.contains(&token),
            "raw identifier in logs, register or manifests"
        );
        assert!(
            !pseudonyms.contains(&token),
            "a pseudonym appears in logs, register or manifests"
        );
    }
    assert_eq!(register.lines().count(), 7);

    // Stage 2: what linking reads holds P2 only — no raw identifier, no P1.
    let p2 = dir.path().join("p2");
    logs += &ok(
        &koppel(&[
            "-vv",
            "pseudonymise",
            "--store",
            store.to_str().unwrap(),
            "--key",
            "stage2-preventieplan",
            "--staging",
            staging.to_str().unwrap(),
            "--out",
            p2.to_str().unwrap(),
        ]),
        "pseudonymise",
    );
    let outputs = deliveries(&p2);
    assert_eq!(outputs.len(), 7);
    assert_eq!(all_files(&p2).len(), 7, "no temporary file is left behind");
    let mut p2_values = 0;
    for file in &outputs {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Some(binary) = column.as_fixed_size_binary_opt() {
                    assert!(field.name().ends_with("_p2"), "{}", field.name());
                    assert_eq!(
                        field.metadata()[koppel_contract::meta::META_KEY_ID],
                        "stage2-preventieplan"
                    );
                    for i in 0..binary.len() {
                        assert!(
                            !pseudonyms.contains(&hex::encode(binary.value(i))),
                            "P1 in stage-2 output"
                        );
                        p2_values += 1;
                    }
                }
                if let Some(strings) = column.as_string_opt::<i32>() {
                    for v in strings.iter().flatten() {
                        assert!(
                            !raw_ids.contains(v) && !pseudonyms.contains(v),
                            "identifier in stage-2 output"
                        );
                    }
                }
            }
        }
    }
    assert!(p2_values > 1000, "{p2_values}");

    // Linking: the models carry stage-2 pseudonyms only; the report and
    // the logs no identifier or pseudonym at all.
    let linked = dir.path().join("linked");
    logs += &ok(
        &koppel(&[
            "-vv",
            "link",
            "--staged",
            p2.to_str().unwrap(),
            "--out",
            linked.to_str().unwrap(),
        ]),
        "link",
    );
    let mut linked_p2 = HashSet::new();
    for file in [
        "person_model.parquet",
        "workforce_model.parquet",
        "organisation_model.parquet",
    ] {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(linked.join(file)).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Some(binary) = column.as_fixed_size_binary_opt() {
                    assert!(field.name().ends_with("_p2"), "{}", field.name());
                    for i in 0..binary.len() {
                        if binary.is_valid(i) {
                            let value = hex::encode(binary.value(i));
                            assert!(!pseudonyms.contains(&value), "P1 in {file}");
                            linked_p2.insert(value);
                        }
                    }
                }
                if let Some(strings) = column.as_string_opt::<i32>() {
                    for v in strings.iter().flatten() {
                        assert!(!raw_ids.contains(v), "raw identifier in {file}");
                    }
                }
            }
        }
    }
    assert!(linked_p2.len() > 20, "{}", linked_p2.len());
    let report = std::fs::read_to_string(linked.join("linkage-report.json")).unwrap();
    for token in text_tokens(&(report + &logs)) {
        assert!(
            !raw_ids.contains(&token)
                && !pseudonyms.contains(&token)
                && !linked_p2.contains(&token),
            "identifier or pseudonym in the linkage report or logs"
        );
    }

    // The research release, with the leak guard fed from the staging area
    // and the stage-2 files: no identifier or pseudonym of any stage in
    // any file of it, and its checksums verify.
    let release = dir.path().join("release");
    let export_log = ok(
        &koppel(&[
            "-vv",
            "export",
            "--store",
            store.to_str().unwrap(),
            "--release-key",
            "release-preventieplan",
            "--linked",
            linked.to_str().unwrap(),
            "--staged",
            p2.to_str().unwrap(),
            "--staging",
            staging.to_str().unwrap(),
            "--out",
            release.to_str().unwrap(),
        ]),
        "export",
    );
    assert!(export_log.contains("release R-"), "{export_log}");
    logs += &export_log;
    let check = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&release)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let files = all_files(&release);
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        for token in tokens(&file) {
            assert!(
                !raw_ids.contains(&token)
                    && !pseudonyms.contains(&token)
                    && !linked_p2.contains(&token),
                "identifier or pseudonym in {}",
                file.display()
            );
        }
    }

    for token in text_tokens(&logs) {
        assert!(
            !raw_ids.contains(&token) && !pseudonyms.contains(&token),
            "identifier in logs"
        );
    }
}

fn prepare_one(dir: &Path, partners: &Path) -> PathBuf {
    let raw = dir.join("raw");
    ok(
        &koppel(&[
            "synth",
            "--out",
            raw.to_str().unwrap(),
            "--persons",
            "200",
            "--years",
            "2024",
            "--only",
            "izz_verzekerden",
        ]),
        "synth",
    );
    let sealed = dir.join("sealed");
    ok(
        &koppel(&[
            "partner",
            "prepare",
            "--input",
            raw.join("izz_verzekerden_2024.csv").to_str().unwrap(),
            "--keys",
            partners.join("izz.keys.yaml").to_str().unwrap(),
            "--out",
            sealed.to_str().unwrap(),
        ]),
        "prepare",
    );
    sealed.join("izz_verzekerden_2024.csv.sealed")
}

fn unseal(store: &Path, staging: &Path, sealed: &Path) -> Output {
    koppel(&[
        "unseal",
        "--store",
        store.to_str().unwrap(),
        "--staging",
        staging.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ])
}

fn fails(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.to_lowercase().contains(&expect.to_lowercase()),
        "expected {expect:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn staged_deliveries(staging: &Path) -> usize {
    if !staging.exists() {
        return 0;
    }
    all_files(staging)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".csv"))
        .count()
}

#[test]
fn replay_tamper_and_wrong_keys_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (store, partners) = demo_keys(dir.path());
    let sealed = prepare_one(dir.path(), &partners);

    // Replay: the same delivery twice.
    let staging = dir.path().join("staging");
    ok(&unseal(&store, &staging, &sealed), "first unseal");
    let staged = std::fs::read(staging.join("izz_verzekerden_2024.csv")).unwrap();
    fails(&unseal(&store, &staging, &sealed), "replay");
    assert_eq!(
        std::fs::read(staging.join("izz_verzekerden_2024.csv")).unwrap(),
        staged
    );
    // A replay is refused even when the staged file has been moved on.
    std::fs::remove_file(staging.join("izz_verzekerden_2024.csv")).unwrap();
    fails(&unseal(&store, &staging, &sealed), "replay");

    // Two unseals of one delivery at the same time: exactly one stages it.
    let racing = dir.path().join("staging-race");
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| unseal(&store, &racing, &sealed).status.success()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let register =
        std::fs::read_to_string(racing.join(koppel_pseudonymise::REGISTER_FILE)).unwrap();
    assert_eq!(register.lines().count(), 1);

    // Tampering: a flipped bit, a truncation, appended bytes.
    let bytes = std::fs::read(&sealed).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    cases.push(("flipped", flipped));
    cases.push(("truncated", bytes[..bytes.len() - 10].to_vec()));
    let mut appended = bytes.clone();
    appended.extend_from_slice(b"extra");
    cases.push(("appended", appended));
    let mut header = bytes.clone();
    header[9] ^= 0x01; // the key id length
    cases.push(("header", header));
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.sealed"));
        std::fs::write(&path, bytes).unwrap();
        let fresh = dir.path().join(format!("staging-{name}"));
        fails(
            &unseal(&store, &fresh, &path),
            "not a valid sealed delivery",
        );
        assert_eq!(
            staged_deliveries(&fresh),
            0,
            "{name}: nothing may be staged"
        );
    }

    // A partner cannot deliver another partner's source. Prepare refuses
    // Vernet's keys on IZZ data outright ...
    let raw_izz = dir.path().join("raw/izz_verzekerden_2024.csv");
    let vernet_out = dir.path().join("sealed-by-vernet");
    fails(
        &koppel(&[
            "partner",
            "prepare",
            "--input",
            raw_izz.to_str().unwrap(),
            "--keys",
            partners.join("vernet.keys.yaml").to_str().unwrap(),
            "--out",
            vernet_out.to_str().unwrap(),
        ]),
        "is delivered by IZZ, but these are vernet's keys",
    );
    assert!(!vernet_out.join("izz_verzekerden_2024.csv.sealed").exists());
    // ... and the TTP refuses it even when a sound seal says so: IZZ's
    // delivery, resealed by Vernet as its own.
    let izz = PartnerKeys::open(&partners.join("izz.keys.yaml"), PASSPHRASE).unwrap();
    let vernet = PartnerKeys::open(&partners.join("vernet.keys.yaml"), PASSPHRASE).unwrap();
    let mut content = Vec::new();
    let (_, manifest) = koppel_pseudonymise::seal::unseal(
        std::fs::File::open(&sealed).unwrap(),
        &izz.transport.1,
        &mut content,
    )
    .unwrap();
    let manifest = String::from_utf8(manifest)
        .unwrap()
        .replace("partner: izz", "partner: vernet");
    std::fs::create_dir_all(&vernet_out).unwrap();
    let mut resealed = Vec::new();
    koppel_pseudonymise::seal::seal(
        manifest.as_bytes(),
        content.as_slice(),
        &mut resealed,
        &vernet.transport.1,
        &vernet.transport.0.id,
        vernet.transport.0.version,
        koppel_pseudonymise::seal::DEFAULT_CHUNK_SIZE,
    )
    .unwrap();
    std::fs::write(vernet_out.join("izz_verzekerden_2024.csv.sealed"), resealed).unwrap();
    let fresh = dir.path().join("staging-vernet");
    fails(
        &unseal(
            &store,
            &fresh,
            &vernet_out.join("izz_verzekerden_2024.csv.sealed"),
        ),
        "may not deliver source izz_verzekerden",
    );
    assert_eq!(staged_deliveries(&fresh), 0);

    // A retired transport key opens nothing new.
    let retired_store = dir.path().join("retired.keystore.yaml");
    std::fs::copy(&store, &retired_store).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&retired_store, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ok(
        &koppel(&[
            "keys",
            "retire",
            "--store",
            retired_store.to_str().unwrap(),
            "transport-izz",
            "--version",
            "1",
        ]),
        "retire",
    );
    let fresh = dir.path().join("staging-retired");
    fails(&unseal(&retired_store, &fresh, &sealed), "retired");
    assert_eq!(staged_deliveries(&fresh), 0);

    // Wrong key: a store with its own transport-izz key of the same id.
    use std::os::unix::fs::PermissionsExt;
    let other = dir.path().join("other.keystore.yaml");
    ok(
        &koppel(&["keys", "init", "--store", other.to_str().unwrap(), "--demo"]),
        "init",
    );
    ok(
        &koppel(&[
            "keys",
            "generate",
            "--store",
            other.to_str().unwrap(),
            "transport-izz",
            "--purpose",
            "transport",
            "--partner",
            "izz",
        ]),
        "generate",
    );
    let fresh = dir.path().join("staging-wrong-key");
    fails(
        &unseal(&other, &fresh, &sealed),
        "not a valid sealed delivery",
    );
    assert_eq!(staged_deliveries(&fresh), 0);
    // …and a store without that key at all.
    let empty = dir.path().join("empty.keystore.yaml");
    ok(
        &koppel(&["keys", "init", "--store", empty.to_str().unwrap(), "--demo"]),
        "init",
    );
    fails(&unseal(&empty, &fresh, &sealed), "cannot provide");

    // Wrong passphrases, and a store others can read.
    let out = koppel_command()
        .args(["keys", "list", "--store", store.to_str().unwrap()])
        .env("KOPPEL_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    fails(&out, "passphrase");
    let out = koppel_command()
        .args([
            "partner",
            "prepare",
            "--input",
            dir.path()
                .join("raw/izz_verzekerden_2024.csv")
                .to_str()
                .unwrap(),
            "--keys",
            partners.join("izz.keys.yaml").to_str().unwrap(),
            "--out",
            dir.path().join("sealed-again").to_str().unwrap(),
        ])
        .env("KOPPEL_SPECS", repo().join("pipelines/sources"))
        .env("KOPPEL_PARTNER_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    fails(&out, "passphrase");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    fails(
        &koppel(&["keys", "list", "--store", store.to_str().unwrap()]),
        "chmod 600",
    );
}

#[test]
fn key_listing_shows_no_material_and_rotation_keeps_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_keys(dir.path());
    let s = store.to_str().unwrap();
    ok(
        &koppel(&["keys", "rotate", "--store", s, "stage2-preventieplan"]),
        "rotate",
    );
    ok(
        &koppel(&[
            "keys",
            "retire",
            "--store",
            s,
            "stage2-preventieplan",
            "--version",
            "1",
        ]),
        "retire",
    );
    let out = koppel(&["keys", "list", "--store", s, "--json"]);
    let text = ok(&out, "list");
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage2: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == "stage2-preventieplan")
        .map(|k| {
            (
                k["version"].as_u64().unwrap(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stage2,
        [(1, "retired".to_owned()), (2, "active".to_owned())]
    );
    // The listing has no ciphertext, nonce or material field.
    let store_text = std::fs::read_to_string(&store).unwrap();
    for line in store_text
        .lines()
        .filter(|l| l.contains("ciphertext:") || l.contains("nonce:"))
    {
        let value = line.split(':').nth(1).unwrap().trim();
        assert!(!text.contains(value), "listing shows {value}");
    }
    assert!(
        text.contains("DEMO key store"),
        "a demo store announces itself"
    );
}
