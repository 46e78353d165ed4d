//! The research release on a synthetic sector, from raw deliveries through
//! staging, linking and export: k-anonymity recomputed on the written
//! Parquet, organisation and table rules checked on the files, the leak
//! guard catching planted identifiers, an interrupted release leaving
//! nothing, byte-identical releases, a manifest that `sha256sum -c`
//! accepts, and — with Python — the files opened by pyarrow and DuckDB.

use koppel_testkit as support;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use koppel_export::{DisclosureConfig, ExportError, ExportOptions, LeakGuard, export};
use koppel_ingest::{DeliveryReader, ReadOptions};
use koppel_pseudonymise::{KeyMaterial, Pseudonymiser, Stage};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const PERSONS: usize = 30_000;

use crate::util::{Sector, linked_sector};

/// One synthetic sector, staged and linked once for every test here.
fn sector() -> &'static Sector {
    static SECTOR: OnceLock<Sector> = OnceLock::new();
    SECTOR.get_or_init(|| linked_sector(PERSONS, 11))
}

fn research() -> Pseudonymiser {
    Pseudonymiser::new(
        Stage::Research,
        &KeyMaterial::from_bytes([0x5a; 32]),
        "release-test",
        1,
    )
}

/// A guard that knows every raw identifier, stage-1 and stage-2 pseudonym
/// of the sector, as the pipeline's guard does.
fn guard(sector: &Sector) -> LeakGuard {
    let mut guard = LeakGuard::new();
    let specs = support::specs();
    let stage1 = support::stage1();
    for entry in std::fs::read_dir(&sector.raw).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .extension()
            .is_some_and(|e| e == "csv" || e == "parquet")
        {
            continue;
        }
        let Some(spec) = specs.for_file(&path) else {
            continue;
        };
        let mut reader = DeliveryReader::open(&path, spec, ReadOptions::default()).unwrap();
        while let Some(batch) = reader.next_batch().unwrap() {
            guard.insert_identifier_columns(&batch);
            // Their stage-1 pseudonyms, as the partners would send them.
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Some(kind) = field.metadata().get(koppel_contract::meta::META_IDENTIFIER) {
                    let kind = match kind.as_str() {
                        "bsn" => koppel_contract::IdentifierType::Bsn,
                        _ => koppel_contract::IdentifierType::Kvk,
                    };
                    let column = arrow::compute::cast(column, &DataType::Utf8).unwrap();
                    let text = column.as_string::<i32>();
                    for v in text.iter().flatten() {
                        guard.insert(&stage1.p1_hex(kind, v));
                    }
                }
            }
        }
    }
    for entry in std::fs::read_dir(&sector.staged).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            for batch in read(&path) {
                guard.insert_identifier_columns(&batch);
            }
        }
    }
    guard
}

fn options<'a>(
    config: &'a DisclosureConfig,
    research: &'a Pseudonymiser,
    guard: LeakGuard,
) -> ExportOptions<'a> {
    ExportOptions {
        config,
        research,
        release_name: "release".into(),
        pipeline: "preventieplan".into(),
        pipeline_version: "test".into(),
        guard,
        attachments: Vec::new(),
        interrupt_before_commit: false,
    }
}

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn one(path: &Path) -> RecordBatch {
    let batches = read(path);
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn text(array: &ArrayRef, row: usize) -> Option<String> {
    array
        .is_valid(row)
        .then(|| arrow::util::display::array_value_to_string(array, row).unwrap())
}

/// The default release, made once.
fn release() -> &'static PathBuf {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let sector = sector();
        let out = sector.root.join("release");
        let config = DisclosureConfig::default();
        let research = research();
        export(
            &sector.linked,
            &out,
            options(&config, &research, guard(sector)),
        )
        .unwrap();
        out
    })
}

#[test]
fn recipients_who_know_who_responded_find_no_class_below_k() {
    let dir = release();
    let people = one(&dir.join(koppel_contract::files::release::PERSON_FILE));
    let config = DisclosureConfig::default();
    let k = config.person.k as usize;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("disclosure-report.json")).unwrap())
            .unwrap();
    let ids = people.column_by_name("person_id").unwrap();
    let mut smallest = usize::MAX;
    for recipient in report["person"]["recipients"].as_array().unwrap() {
        if recipient["reference"] != "sample" {
            continue;
        }
        // The person is the unit: the set of its rows on what it knows.
        let columns: Vec<&str> = recipient["knows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let arrays: Vec<&ArrayRef> = columns
            .iter()
            .map(|c| {
                people
                    .column_by_name(c)
                    .unwrap_or_else(|| panic!("{c} missing"))
            })
            .collect();
        let mut rows_of: HashMap<String, Vec<Vec<Option<String>>>> = HashMap::new();
        for row in 0..people.num_rows() {
            let key = arrays.iter().map(|a| text(a, row)).collect();
            rows_of
                .entry(text(ids, row).unwrap())
                .or_default()
                .push(key);
        }
        let mut classes: HashMap<Vec<Vec<Option<String>>>, usize> = HashMap::new();
        for (_, mut rows) in rows_of {
            rows.sort();
            *classes.entry(rows).or_default() += 1;
        }
        let least = classes.values().copied().min().unwrap();
        assert!(
            least >= k,
            "{}: a class of {least} persons",
            recipient["recipient"]
        );
        assert!(classes.len() > 1, "not everything generalised away");
        smallest = smallest.min(least);
    }
    assert!(smallest < usize::MAX, "the insurer is declared by default");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("disclosure-report.json")).unwrap())
            .unwrap();
    assert!(report["person"]["smallest_class"].as_u64().unwrap() as usize >= k);
    assert_eq!(
        report["person"]["rows_released"].as_u64().unwrap() as usize,
        people.num_rows()
    );
    // Every null of a quasi-identifier in the file is accounted for: unknown
    // as linked, or suppressed (locally or with the whole column).
    for q in report["person"]["quasi_identifiers"].as_array().unwrap() {
        let column = q["column"].as_str().unwrap();
        let nulls = people.column_by_name(column).unwrap().null_count() as u64;
        assert_eq!(
            nulls,
            q["values_suppressed"].as_u64().unwrap() + q["values_missing"].as_u64().unwrap(),
            "{column}"
        );
    }
    // Every respondent-year is either released or counted as left out.
    let model = one(&sector()
        .linked
        .join(koppel_contract::files::linked::PERSON_MODEL_FILE));
    assert_eq!(
        people.num_rows() as u64 + report["person"]["rows_dropped"].as_u64().unwrap(),
        model.num_rows() as u64
    );
    // No exact identifiers or pseudonyms travel: research IDs only.
    let ids = people
        .column_by_name("person_id")
        .unwrap()
        .as_string::<i32>();
    assert!(
        ids.iter()
            .flatten()
            .all(|id| id.starts_with("P-") && id.len() == 28)
    );
    assert!(people.column_by_name("person_p2").is_none());
    assert!(people.column_by_name("postcode4").unwrap().data_type() == &DataType::Utf8);
}

#[test]
fn organisation_file_leaves_out_small_organisations_and_bands_public_figures() {
    let dir = release();
    let orgs = one(&dir.join(koppel_contract::files::release::ORGANISATION_FILE));
    let model = one(&sector()
        .linked
        .join(koppel_contract::files::linked::ORGANISATION_MODEL_FILE));
    let headcount = model
        .column_by_name("headcount")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    let large = headcount.iter().flatten().filter(|h| *h >= 10).count();
    assert_eq!(orgs.num_rows(), large);
    assert!(
        large < model.num_rows(),
        "the synthetic sector has small organisations"
    );
    for column in [
        "revenue_keur",
        "personnel_cost_keur",
        "annual_report_fte",
        "result_keur",
        "headcount",
    ] {
        assert_eq!(
            orgs.column_by_name(column).unwrap().data_type(),
            &DataType::Utf8,
            "{column} is banded"
        );
    }
    // A statistic on fewer than k persons is null with its status.
    let n = orgs.column_by_name("n_izz_insured").unwrap();
    let share = orgs.column_by_name("ggz_share_insured").unwrap();
    let status = orgs
        .column_by_name("ggz_share_insured_status")
        .unwrap()
        .as_string::<i32>();
    let mut suppressed = 0;
    for row in 0..orgs.num_rows() {
        if status.value(row) == "primary_threshold" {
            suppressed += 1;
            assert!(share.is_null(row));
        } else if status.value(row) == "safe" {
            assert!(share.is_valid(row));
            // Rounded to 5: the unrounded count was at least 10.
            let n = n.as_primitive::<arrow::datatypes::Float64Type>().value(row);
            assert!(n >= 10.0, "safe share resting on about {n}");
        }
    }
    assert!(
        suppressed > 0,
        "some organisations have fewer than 10 IZZ members"
    );
}

#[test]
fn tables_publish_no_unsafe_cell_and_margins_add_up() {
    let dir = release();
    let config = DisclosureConfig::default();
    let mut margins_checked = 0;
    for spec in &config.tables {
        let table = one(&dir.join(format!("table-{}.parquet", spec.name)));
        assert!(dir.join(format!("table-{}.csv", spec.name)).is_file());
        let counts = table
            .column_by_name(spec.model.count_column())
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        let status = table.column_by_name("status").unwrap().as_string::<i32>();
        let dims: Vec<&StringArray> = spec
            .dimensions
            .iter()
            .map(|d| table.column_by_name(&d.column).unwrap().as_string::<i32>())
            .collect();
        let mut cells: HashMap<Vec<&str>, Option<i64>> = HashMap::new();
        for row in 0..table.num_rows() {
            let published = counts.is_valid(row);
            assert_eq!(
                published,
                matches!(status.value(row), "safe" | "empty"),
                "{}: status {} vs value",
                spec.name,
                status.value(row)
            );
            if published {
                let c = counts.value(row);
                assert!(
                    c == 0 || c >= config.table_rules.threshold as i64,
                    "{}: a published cell of {c}",
                    spec.name
                );
            }
            cells.insert(
                dims.iter().map(|d| d.value(row)).collect(),
                published.then(|| counts.value(row)),
            );
        }
        // Where a margin and all its children are published, they agree.
        let mut checked = 0;
        for (key, total) in &cells {
            for (i, _) in key.iter().enumerate().filter(|(_, v)| **v == "Total") {
                let children: Vec<Option<i64>> = cells
                    .iter()
                    .filter(|(k, _)| {
                        k[i] != "Total" && k.iter().enumerate().all(|(j, v)| j == i || *v == key[j])
                    })
                    .map(|(_, v)| *v)
                    .collect();
                if let (Some(total), true) = (total, children.iter().all(Option::is_some)) {
                    assert_eq!(
                        *total,
                        children.iter().map(|c| c.unwrap()).sum::<i64>(),
                        "{}",
                        spec.name
                    );
                    checked += 1;
                }
            }
        }
        // Sparse cost measures can be dominated in every row (a few
        // claimants among many insured), so not every table has a margin
        // with all its cells published — but every table publishes.
        assert!(
            (0..table.num_rows()).any(|r| status.value(r) == "safe"),
            "{}: nothing published",
            spec.name
        );
        margins_checked += checked;
    }
    assert!(
        margins_checked > 0,
        "no margin could be checked in any table"
    );
}

#[test]
fn manifest_verifies_with_sha256sum() {
    let dir = release();
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in [
        "persons.parquet",
        "organisations.parquet",
        "codebook.md",
        "codebook.json",
        "disclosure-report.json",
        "disclosure-report.md",
        "linkage-report.json",
    ] {
        assert!(listed.contains(&name), "{name} not in the manifest");
    }
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("  manifest.json\n"));
    // Key labels travel, key material never does.
    let meta = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(dir.join("persons.parquet")).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let kv: HashMap<String, String> = meta
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        kv["koppel.release_id"],
        manifest["release_id"].as_str().unwrap()
    );
    assert!(kv["koppel.keys"].contains("release-test"));
    assert!(kv["koppel.disclosure"].contains("\"k\":10"));
    // Tampering is detected.
    let copy = sector().root.join("tampered");
    copy_dir(dir, &copy);
    let mut md = std::fs::read_to_string(copy.join("codebook.md")).unwrap();
    md.push('x');
    std::fs::write(copy.join("codebook.md"), md).unwrap();
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&copy)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn same_inputs_and_keys_give_a_byte_identical_release() {
    let sector = sector();
    let first = release();
    let again = sector.root.join("release-again");
    let config = DisclosureConfig::default();
    let research = research();
    export(
        &sector.linked,
        &again,
        options(&config, &research, LeakGuard::new()),
    )
    .unwrap();
    let mut names: Vec<_> = std::fs::read_dir(first)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        assert_eq!(
            std::fs::read(first.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap(),
            "{name:?} differs"
        );
    }
}

/// A linked folder whose person model carries one extra column.
fn linked_with_extra_column(name: &str, values: impl Fn(usize) -> Option<String>) -> PathBuf {
    let sector = sector();
    let dir = sector.root.join(format!("linked-{name}"));
    copy_dir(&sector.linked, &dir);
    let path = dir.join(koppel_contract::files::linked::PERSON_MODEL_FILE);
    let batch = one(&path);
    let extra: StringArray = (0..batch.num_rows()).map(values).collect();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(name, DataType::Utf8, true));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(extra));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    dir
}

#[test]
fn the_leak_guard_stops_a_planted_identifier() {
    let sector = sector();
    // The planted column is asked for, as a careless release might; no
    // recipient is known to hold it, so it goes out as linked.
    let asking_for = |column: &str| {
        let mut config = DisclosureConfig::default();
        config
            .person
            .variables
            .push(koppel_export::config::ReleasedVariable {
                column: column.into(),
                hierarchy: koppel_export::config::Hierarchy::Categorical,
                min_level: 0,
                max_level: Some(0),
                weight: 1.0,
            });
        config
    };
    let config = asking_for("note");
    let research = research();
    // A citizen number of the sector, as a note on one row.
    let bsn = first_bsn(sector);
    let planted = linked_with_extra_column("note", |row| (row == 7).then(|| format!("see {bsn}")));
    let parent = sector.root.join("leak");
    let out = parent.join("release");
    let err = export(&planted, &out, options(&config, &research, guard(sector))).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ExportError::Leak { .. }), "{message}");
    assert!(
        message.contains("persons.parquet") && message.contains("note"),
        "{message}"
    );
    assert!(
        !message.contains(&bsn),
        "the value never reaches the message"
    );
    assert!(!out.exists());
    // A 9-digit number that passes the 11-test, known or not.
    let planted =
        linked_with_extra_column("code", |row| (row == 3).then(|| "111222333".to_owned()));
    let code = asking_for("code");
    let err = export(&planted, &out, options(&code, &research, LeakGuard::new())).unwrap_err();
    assert!(err.to_string().contains("11-test"), "{err}");
    // A stage-2 pseudonym in hexadecimal, in the copied linkage report.
    let dir = sector.root.join("linked-report");
    copy_dir(&sector.linked, &dir);
    let p2 = one(&dir.join(koppel_contract::files::linked::PERSON_MODEL_FILE));
    let p2 = hex::encode(
        p2.column_by_name("person_p2")
            .unwrap()
            .as_fixed_size_binary()
            .value(0),
    );
    let report =
        std::fs::read_to_string(dir.join(koppel_contract::files::linked::LINKAGE_REPORT_FILE))
            .unwrap();
    std::fs::write(
        dir.join(koppel_contract::files::linked::LINKAGE_REPORT_FILE),
        report.replacen('{', &format!("{{\"x\": \"{p2}\","), 1),
    )
    .unwrap();
    let plain = DisclosureConfig::default();
    let err = export(&dir, &out, options(&plain, &research, LeakGuard::new())).unwrap_err();
    assert!(err.to_string().contains("linkage-report.json"), "{err}");
    assert!(!out.exists());
    assert_no_temporary_release(&parent);
}

fn first_bsn(sector: &Sector) -> String {
    let path = std::fs::read_dir(&sector.raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("izz_verzekerden")
                && p.extension().is_some_and(|e| e == "csv")
        })
        .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let bsn = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(bsn.len(), 9);
    bsn
}

fn assert_no_temporary_release(parent: &Path) {
    let left: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".koppel-release-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_interrupted_release_leaves_no_directory() {
    let sector = sector();
    let config = DisclosureConfig::default();
    let research = research();
    // A parent of its own: other tests build releases beside theirs.
    let parent = sector.root.join("interrupted");
    let out = parent.join("release");
    let mut opts = options(&config, &research, LeakGuard::new());
    opts.interrupt_before_commit = true;
    assert!(export(&sector.linked, &out, opts).is_err());
    assert!(!out.exists());
    assert_no_temporary_release(&parent);
    // And a release is never written over another.
    let err = export(
        &sector.linked,
        release(),
        options(&config, &research, LeakGuard::new()),
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::OutputExists { .. }), "{err}");
}

/// Researchers open the release with pyarrow and DuckDB, no extra steps.
/// Needs a Python with both (`KOPPEL_PYTHON`, as `.ci/run` sets up);
/// without one the test says so and passes, unless `KOPPEL_REQUIRE_PYTHON`
/// is set, as in CI.
#[test]
fn researchers_open_the_release_in_pyarrow_and_duckdb() {
    let python = std::env::var("KOPPEL_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import pyarrow, duckdb"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("KOPPEL_REQUIRE_PYTHON").is_none(),
            "KOPPEL_REQUIRE_PYTHON is set but {python} has no pyarrow and duckdb"
        );
        eprintln!("skipped: {python} has no pyarrow and duckdb (set KOPPEL_PYTHON)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/open_release.py");
    let k = DisclosureConfig::default().person.k.to_string();
    let out = Command::new(&python)
        .arg(script)
        .arg(release())
        .arg(k)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
