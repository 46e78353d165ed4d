//! Issue 21, the tables: everything released is protected together. On a
//! synthetic sector, staged, linked and exported:
//!
//! - every published count of a person table is recomputed from
//!   `persons.parquet` alone (a person table counts the released rows by
//!   their released values, so it publishes nothing the file does not);
//!   sums the file does not carry lie within what the file says of them;
//! - no released table (Parquet or CSV) tells a primary from a secondary
//!   suppression;
//! - no table publishes a zero beside a sensitive category in a group that
//!   is not empty (class disclosure);
//! - the release's linkage report carries no count from 1 to 9;
//! - two organisation tables that share a margin suppress it alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use koppel_export::config::TableModel;
use koppel_export::{DisclosureConfig, ExportOptions, LeakGuard, export};
use koppel_pseudonymise::{KeyMaterial, Pseudonymiser, Stage};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const PERSONS: usize = 12_000;

use crate::util::{Sector, linked_sector};

/// One synthetic sector, staged and linked once for every test here.
fn sector() -> &'static Sector {
    static SECTOR: OnceLock<Sector> = OnceLock::new();
    SECTOR.get_or_init(|| linked_sector(PERSONS, 21))
}

fn release_of(linked: &Path, name: &str, config: &DisclosureConfig) -> PathBuf {
    let research = Pseudonymiser::new(
        Stage::Research,
        &KeyMaterial::from_bytes([0x7b; 32]),
        "tables-test",
        1,
    );
    let out = sector().root.join(name);
    export(
        linked,
        &out,
        ExportOptions {
            config,
            research: &research,
            release_name: name.into(),
            pipeline: "preventieplan".into(),
            pipeline_version: "test".into(),
            guard: LeakGuard::new(),
            attachments: Vec::new(),
            interrupt_before_commit: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    out
}

/// The default release, and one with two linked organisation tables and a
/// class-disclosure trap.
fn default_release() -> &'static PathBuf {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    RELEASE.get_or_init(|| release_of(&sector().linked, "default", &DisclosureConfig::default()))
}

fn one(path: &Path) -> RecordBatch {
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn text(array: &ArrayRef, row: usize) -> Option<String> {
    array
        .is_valid(row)
        .then(|| arrow::util::display::array_value_to_string(array, row).unwrap())
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("disclosure-report.json")).unwrap())
        .unwrap()
}

/// A released table's cells: labels → (count, sums by column, status).
type Cells = HashMap<Vec<String>, (Option<i64>, BTreeMap<String, Option<f64>>, String)>;

fn cells(dir: &Path, name: &str, dims: &[String], count: &str) -> Cells {
    let t = one(&dir.join(format!("table-{name}.parquet")));
    let counts = t
        .column_by_name(count)
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    let status = t.column_by_name("status").unwrap().as_string::<i32>();
    let sums: Vec<(String, &arrow::array::Float64Array)> = t
        .schema()
        .fields()
        .iter()
        .zip(t.columns())
        .filter(|(f, _)| f.name().ends_with("_sum"))
        .map(|(f, a)| (f.name().clone(), a.as_primitive()))
        .collect();
    (0..t.num_rows())
        .map(|r| {
            let key = dims
                .iter()
                .map(|d| text(t.column_by_name(d).unwrap(), r).unwrap())
                .collect();
            let s = sums
                .iter()
                .map(|(n, a)| (n.clone(), a.is_valid(r).then(|| a.value(r))))
                .collect();
            (
                key,
                (
                    counts.is_valid(r).then(|| counts.value(r)),
                    s,
                    status.value(r).to_owned(),
                ),
            )
        })
        .collect()
}

/// Every key a row adds to: its labels and every margin over them.
fn margins(labels: &[String]) -> Vec<Vec<String>> {
    (0..1usize << labels.len())
        .map(|mask| {
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if mask & (1 << i) != 0 {
                        "Total".to_owned()
                    } else {
                        l.clone()
                    }
                })
                .collect()
        })
        .collect()
}

/// The interval a released class label of days says: `8-<43`, `183+`,
/// `0-<1`; `None` for a null.
fn class_interval(label: Option<&str>, max: f64) -> (f64, f64) {
    let Some(label) = label else {
        return (0.0, max);
    };
    if let Some(lo) = label.strip_suffix('+') {
        return (lo.parse().unwrap(), max);
    }
    if let Some(hi) = label.strip_prefix('<') {
        return (0.0, hi.parse().unwrap());
    }
    let (lo, hi) = label.split_once('-').unwrap();
    let hi = hi.trim_start_matches('<');
    (lo.parse().unwrap(), hi.parse().unwrap())
}

#[test]
fn person_tables_count_the_released_rows_and_nothing_else() {
    let dir = default_release();
    let persons = one(&dir.join("persons.parquet"));
    let config = DisclosureConfig::default();
    let report = report(dir);
    let mut checked = 0;
    let mut sums_checked = 0;
    for spec in config
        .tables
        .iter()
        .filter(|s| s.model == TableModel::Person)
    {
        let dims: Vec<String> = spec.dimensions.iter().map(|d| d.column.clone()).collect();
        let table = cells(dir, &spec.name, &dims, "person_years");
        // Recomputed from the file alone: its labels, `Unknown` for a null,
        // rows selected by the flag as the file shows it.
        let mut counts: HashMap<Vec<String>, i64> = HashMap::new();
        let mut bounds: HashMap<(Vec<String>, String), (f64, f64)> = HashMap::new();
        for r in 0..persons.num_rows() {
            if let Some(flag) = &spec.only_where
                && text(persons.column_by_name(flag).unwrap(), r).as_deref() != Some("true")
            {
                continue;
            }
            let labels: Vec<String> = dims
                .iter()
                .map(|d| {
                    text(persons.column_by_name(d).unwrap(), r).unwrap_or_else(|| "Unknown".into())
                })
                .collect();
            for key in margins(&labels) {
                *counts.entry(key.clone()).or_default() += 1;
                for m in &spec.measures {
                    if m.column() != "absence_days" {
                        continue;
                    }
                    let label = text(persons.column_by_name("absence_days").unwrap(), r);
                    let (lo, hi) = class_interval(label.as_deref(), 366.0);
                    let b = bounds
                        .entry((key.clone(), "absence_days_sum".into()))
                        .or_default();
                    b.0 += lo;
                    b.1 += hi;
                }
            }
        }
        let mut published = 0;
        for (key, (count, sums, status)) in &table {
            let Some(count) = count else {
                assert_eq!(status, "suppressed", "{}: {key:?}", spec.name);
                continue;
            };
            assert_eq!(
                *count,
                counts.get(key).copied().unwrap_or(0),
                "{}: {key:?} is not the file's count",
                spec.name
            );
            published += 1;
            for (name, sum) in sums {
                if let (Some(sum), Some((lo, hi))) = (sum, bounds.get(&(key.clone(), name.clone())))
                {
                    assert!(
                        *sum >= lo - 1e-6 && *sum <= hi + 1e-6,
                        "{}: {key:?} {name} {sum} outside what the file says, [{lo}, {hi}]",
                        spec.name
                    );
                    sums_checked += 1;
                }
            }
        }
        // Every row of the file that the table selects is in it: the grand
        // total, where published, is the file's.
        let total = vec!["Total".to_owned(); dims.len()];
        if let Some((Some(n), _, _)) = table.get(&total) {
            assert_eq!(*n, counts[&total], "{}", spec.name);
        }
        assert!(published > 0, "{}: nothing published", spec.name);
        checked += published;
        // The report says which quantities the file publishes and which
        // were audited with it.
        let t = report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == spec.name.as_str())
            .unwrap();
        assert_eq!(t["rows_from"], "persons.parquet");
        assert!(
            t["public"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("person_years")),
            "{}",
            spec.name
        );
        for m in &spec.measures {
            let column = format!("{}_sum", m.column());
            let place = if persons
                .column_by_name(m.column())
                .is_some_and(|a| a.data_type().is_numeric())
            {
                "public"
            } else {
                "audited_with_person_file"
            };
            assert!(
                t["public"]
                    .as_array()
                    .unwrap()
                    .contains(&column.clone().into())
                    || t[place]
                        .as_array()
                        .unwrap()
                        .contains(&column.clone().into()),
                "{}: {column}",
                spec.name
            );
        }
        if spec.name == "absence_days_by_sector_contract" {
            assert!(t["max_per_contributor"]["absence_days"].as_f64().unwrap() >= 366.0);
        }
    }
    assert!(checked > 50, "only {checked} cells checked");
    assert!(sums_checked > 0, "no absence sum checked against the file");
}

#[test]
fn released_tables_never_tell_primary_from_secondary() {
    let dir = default_release();
    let allowed: BTreeSet<&str> = ["safe", "empty", "suppressed"].into();
    let mut seen = BTreeSet::new();
    for spec in &DisclosureConfig::default().tables {
        let t = one(&dir.join(format!("table-{}.parquet", spec.name)));
        let status = t.column_by_name("status").unwrap().as_string::<i32>();
        for s in status.iter().flatten() {
            assert!(allowed.contains(s), "{}: status {s}", spec.name);
            seen.insert(s.to_owned());
        }
        let csv = std::fs::read_to_string(dir.join(format!("table-{}.csv", spec.name))).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = header.iter().position(|h| *h == "status").unwrap();
        for line in lines {
            let s = line.split(',').nth(at).unwrap();
            assert!(allowed.contains(s), "{}.csv: status {s}", spec.name);
        }
        for word in ["primary", "secondary", "dominance", "threshold"] {
            assert!(
                !csv.contains(word),
                "{}.csv names a reason: {word}",
                spec.name
            );
        }
    }
    assert!(seen.contains("suppressed"), "something is suppressed");
    // The codebook says the same.
    let codebook: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("codebook.json")).unwrap()).unwrap();
    for file in codebook["files"].as_array().unwrap() {
        if !file["file"].as_str().unwrap().starts_with("table-") {
            continue;
        }
        let status = file["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "status")
            .unwrap();
        assert_eq!(
            status["categories"],
            serde_json::json!(["safe", "empty", "suppressed"])
        );
    }
}

/// The joint release: a second organisation table over the first one's
/// sector margin, and a table whose groups are all in a sensitive
/// category — everyone who left the sector left the employer.
fn joint_release() -> &'static PathBuf {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let config = DisclosureConfig::from_yaml(
            "
table_rules:
  sensitive:
    - {column: left_employer, categories: ['true']}
    - {column: ggz_any}
tables:
  - name: absence_by_sector_size
    model: organisation
    dimensions: [{column: year}, {column: sector}, {column: headcount, hierarchy: {kind: classes, levels: [[0, 100, 500, 2500]]}}]
    measures: [absence_days, available_days]
    ratio: {name: absence_pct, numerator: absence_days, denominator: available_days, scale: 100, max: 100}
  - name: absence_by_sector
    model: organisation
    dimensions: [{column: year}, {column: sector}]
    measures: [absence_days, {column: available_days}]
  - name: employer_by_sector_leaving
    model: person
    dimensions: [{column: left_sector}, {column: left_employer}]
",
        )
        .unwrap();
        release_of(&sector().linked, "joint", &config)
    })
}

#[test]
fn organisation_tables_sharing_a_margin_are_protected_as_one() {
    let dir = joint_release();
    let by_size = cells(
        dir,
        "absence_by_sector_size",
        &["year".into(), "sector".into(), "headcount".into()],
        "organisation_years",
    );
    let by_sector = cells(
        dir,
        "absence_by_sector",
        &["year".into(), "sector".into()],
        "organisation_years",
    );
    let mut shared = 0;
    for (key, (count, sums, status)) in &by_sector {
        let mut wide = key.clone();
        wide.push("Total".into());
        let (other_count, other_sums, other_status) = &by_size[&wide];
        // Suppressed in both or in neither, and the same numbers.
        assert_eq!(
            status == "suppressed",
            other_status == "suppressed",
            "{key:?}"
        );
        assert_eq!(count, other_count, "{key:?}");
        assert_eq!(sums["absence_days_sum"], other_sums["absence_days_sum"]);
        shared += 1;
    }
    assert!(shared > 4);
    assert!(
        by_sector.values().any(|c| c.2 == "suppressed"),
        "the sector table suppresses something, so the test means something"
    );
    let report = report(dir);
    let t = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "absence_by_sector")
        .unwrap();
    assert_eq!(
        t["linked_with"],
        serde_json::json!(["absence_by_sector_size"])
    );
    assert!(t["audit"]["shared_cells"].as_u64().unwrap() > 4);
    assert!(t["audit"]["failures"].as_array().unwrap().is_empty());
}

#[test]
fn no_zero_is_published_beside_a_sensitive_category() {
    let dir = joint_release();
    let dims = vec!["left_sector".to_owned(), "left_employer".to_owned()];
    let table = cells(dir, "employer_by_sector_leaving", &dims, "person_years");
    // The trap is set: in the file, everyone who left the sector left
    // the employer, and there are such persons.
    let persons = one(&dir.join("persons.parquet"));
    let mut leavers = 0;
    for r in 0..persons.num_rows() {
        let sector = text(persons.column_by_name("left_sector").unwrap(), r);
        let employer = text(persons.column_by_name("left_employer").unwrap(), r);
        if sector.as_deref() == Some("true") {
            assert_ne!(employer.as_deref(), Some("false"));
            leavers += 1;
        }
    }
    assert!(leavers >= 10, "{leavers} leavers: the trap needs a group");
    let get = |a: &str, b: &str| &table[&vec![a.to_owned(), b.to_owned()]];
    let zero = get("true", "false");
    assert_eq!(
        zero.2, "suppressed",
        "the zero beside `left_employer = true`"
    );
    assert!(
        get("true", "true").2 == "suppressed" || get("true", "Total").2 == "suppressed",
        "the group's sensitive count or its margin goes with it"
    );
    // And in every table of both releases: no group of a sensitive
    // dimension publishes zeros in all its other categories beside a
    // published non-zero (its margin or a sensitive count).
    let mut groups = 0;
    for dir in [default_release(), dir] {
        let report = report(dir);
        let sensitive: Vec<(String, Vec<String>)> = report["rules"]["table_rules"]["sensitive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["column"].as_str().unwrap().to_owned(),
                    s["categories"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_owned())
                        .collect(),
                )
            })
            .collect();
        for t in report["tables"].as_array().unwrap() {
            let dims: Vec<String> = t["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            let count = if t["model"] == "person" {
                "person_years"
            } else {
                "organisation_years"
            };
            let name = t["name"].as_str().unwrap();
            let table = cells(dir, name, &dims, count);
            for (i, dim) in dims.iter().enumerate() {
                let Some((_, flagged)) = sensitive.iter().find(|(c, _)| c == dim) else {
                    continue;
                };
                let categories: BTreeSet<&String> = table.keys().map(|k| &k[i]).collect();
                for key in table.keys().filter(|k| k[i] == "Total") {
                    let at = |c: &str| {
                        let mut k = key.clone();
                        k[i] = c.to_owned();
                        table.get(&k).and_then(|c| c.0)
                    };
                    let others_zero = categories
                        .iter()
                        .filter(|c| **c != "Total" && !flagged.contains(c))
                        .all(|c| at(c) == Some(0));
                    let something = at("Total").is_some_and(|n| n > 0)
                        || flagged.iter().any(|c| at(c).is_some_and(|n| n > 0));
                    assert!(
                        !(others_zero && something),
                        "{name}: {key:?} says everyone is in {dim} = {flagged:?}"
                    );
                    groups += 1;
                }
            }
        }
    }
    assert!(groups > 10, "{groups} groups checked");
}

/// Every count under a key that is not a year.
fn counts_in(value: &serde_json::Value, key: Option<&str>, out: &mut Vec<(String, u64)>) {
    match value {
        serde_json::Value::Number(n) => {
            if !key.is_some_and(|k| ["year", "payroll_years", "model_years"].contains(&k))
                && let Some(v) = n.as_u64()
            {
                out.push((key.unwrap_or("").to_owned(), v));
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| counts_in(x, key, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| counts_in(v, Some(k), out)),
        _ => {}
    }
}

#[test]
fn the_released_linkage_report_carries_no_small_count() {
    // The linking output with a count of 3 planted in the sources and in
    // the coverage.
    let planted = sector().root.join("linked-planted");
    std::fs::create_dir_all(&planted).unwrap();
    for entry in std::fs::read_dir(&sector().linked).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, planted.join(path.file_name().unwrap())).unwrap();
    }
    let report_path = planted.join(koppel_contract::files::linked::LINKAGE_REPORT_FILE);
    let mut full: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    full["sources"][0]["duplicates"] = 3.into();
    let cell = &mut full["coverage"][0];
    assert!(cell["payroll_persons"].as_u64().unwrap() >= 3);
    cell["survey_persons"] = 3.into();
    let written = serde_json::to_string_pretty(&full).unwrap();
    std::fs::write(&report_path, &written).unwrap();
    let dir = release_of(&planted, "linkage", &DisclosureConfig::default());
    let released_text =
        std::fs::read_to_string(dir.join(koppel_contract::files::linked::LINKAGE_REPORT_FILE))
            .unwrap();
    let released: serde_json::Value = serde_json::from_str(&released_text).unwrap();
    assert_eq!(
        released["sources"][0]["duplicates"],
        serde_json::Value::Null
    );
    assert_eq!(
        released["coverage"][0]["survey_persons"],
        serde_json::Value::Null
    );
    let mut counts = Vec::new();
    counts_in(&released, None, &mut counts);
    assert!(counts.len() > 20);
    for (key, v) in counts {
        assert!(v == 0 || v >= 10, "{key}: {v} in the release");
    }
    assert!(released.get("overlap").is_none());
    assert!(
        released["disclosure_control"]
            .as_str()
            .unwrap()
            .contains("TTP")
    );
    // The full report stays where linking wrote it.
    assert_eq!(std::fs::read_to_string(&report_path).unwrap(), written);
    // And the disclosure report accounts for it.
    let linkage = &report(&dir)["linkage_report"];
    assert!(linkage["counts_withheld"].as_u64().unwrap() >= 1);
    assert!(linkage["coverage_suppressed"].as_u64().unwrap() >= 1);
    assert!(linkage["audit"]["failures"].as_array().unwrap().is_empty());
}
