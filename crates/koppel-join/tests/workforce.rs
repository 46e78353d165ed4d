//! The workforce model on a synthetic sector: one row per payroll
//! person-year, counted here straight from the staged payroll; the person
//! model's columns but the survey's, declared alike; a respondent on the
//! payroll the same in both models; and every file of the output the same
//! bytes at another thread count and memory limit.

use koppel_testkit as support;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter, take};
use arrow::datatypes::{Date32Type, Int32Type};
use chrono::{DateTime, Datelike};
use koppel_contract::files::linked::{
    LINKAGE_REPORT_FILE, ORGANISATION_MODEL_FILE, PERSON_MODEL_FILE, WORKFORCE_MODEL_FILE,
};
use koppel_join::{LinkConfig, SURVEY_SCALES, link};
use koppel_synth::{SynthConfig, synthesise};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Enough for a few hundred respondents a year (about one in ten answers
/// the survey), small enough to synthesise and link in seconds.
const PERSONS: usize = 4_000;

/// A whole Parquet file as one batch, with the file's schema (the
/// builder's: the reader's own drops the schema's metadata).
fn read(path: &Path) -> RecordBatch {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// (pseudonym, year) of every row.
fn keys(batch: &RecordBatch) -> Vec<(Vec<u8>, i32)> {
    let persons = batch
        .column_by_name("person_p2")
        .unwrap()
        .as_fixed_size_binary();
    let years = batch
        .column_by_name("year")
        .unwrap()
        .as_primitive::<Int32Type>();
    (0..batch.num_rows())
        .map(|i| (persons.value(i).to_vec(), years.value(i)))
        .collect()
}

/// Distinct person × year of the staged payroll, read without linking.
fn payroll_person_years(staged: &Path) -> BTreeSet<(Vec<u8>, i32)> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(staged).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("pfzw_dienstverbanden_") {
            continue;
        }
        let batch = read(&path);
        let persons = batch
            .column_by_name("bsn_p2")
            .unwrap()
            .as_fixed_size_binary();
        let periods = batch
            .column_by_name("period")
            .unwrap()
            .as_primitive::<Date32Type>();
        for i in 0..batch.num_rows() {
            let day = DateTime::from_timestamp(i64::from(periods.value(i)) * 86_400, 0).unwrap();
            found.insert((persons.value(i).to_vec(), day.year()));
        }
    }
    found
}

#[test]
fn workforce_model_is_the_payroll_population_with_the_person_models_columns() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    synthesise(&SynthConfig::new(PERSONS, 2023..=2024, 11), &raw).unwrap();
    let staged = dir.path().join("staged");
    support::stage_raw(&raw, &staged);
    let out = dir.path().join("linked");
    let outcome = link(&staged, &out, &LinkConfig::default()).unwrap();

    let people = read(&outcome.person_model);
    let workforce = read(&outcome.workforce_model);

    // One row per payroll person-year, in pseudonym and year order.
    let expected = payroll_person_years(&staged);
    let rows = keys(&workforce);
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert_eq!(rows.len(), expected.len());
    assert!(rows.iter().eq(expected.iter()));
    assert_eq!(outcome.report.workforce_model_rows, rows.len() as u64);

    // The person model's columns but `on_payroll` and the survey's, in its
    // order and declared alike (type, nullability, key labels).
    let people_schema = people.schema();
    let shared: Vec<_> = people_schema
        .fields()
        .iter()
        .filter(|f| f.name() != "on_payroll" && !SURVEY_SCALES.contains(&f.name().as_str()))
        .collect();
    let workforce_schema = workforce.schema();
    let fields: Vec<_> = workforce_schema.fields().iter().collect();
    assert_eq!(fields, shared);
    assert_eq!(
        workforce_schema
            .metadata()
            .get("koppel.model")
            .map(String::as_str),
        Some("workforce"),
        "the model is named in the file: {:?}",
        workforce_schema.metadata()
    );

    // Every respondent on the payroll has their workforce row's values;
    // a respondent off the payroll has no workforce row.
    let on_payroll = people
        .column_by_name("on_payroll")
        .unwrap()
        .as_boolean()
        .clone();
    let position: HashMap<(Vec<u8>, i32), u32> = rows
        .iter()
        .enumerate()
        .map(|(i, key)| (key.clone(), i as u32))
        .collect();
    let mut matching = Vec::new();
    for (i, key) in keys(&people).into_iter().enumerate() {
        assert_eq!(
            position.contains_key(&key),
            on_payroll.value(i),
            "respondent row {i}: on the payroll exactly when in the workforce model"
        );
        if let Some(&j) = position.get(&key) {
            matching.push(j);
        }
    }
    let respondents_on_payroll = on_payroll.true_count();
    assert!(
        respondents_on_payroll > 300,
        "{respondents_on_payroll} respondents on the payroll: too few to compare"
    );
    let matching = UInt32Array::from(matching);
    for field in &shared {
        let name = field.name();
        let person_values = filter(people.column_by_name(name).unwrap(), &on_payroll).unwrap();
        let workforce_values =
            take(workforce.column_by_name(name).unwrap(), &matching, None).unwrap();
        assert!(
            person_values.as_ref() == workforce_values.as_ref(),
            "{name}: a respondent's value differs between the person and the workforce model"
        );
    }
    // The comparison covers values that vary, not only nulls and zeros.
    for name in ["org_p2", "age", "absence_days", "left_sector", "ggz_claims"] {
        let column = workforce.column_by_name(name).unwrap();
        assert!(column.null_count() < column.len(), "{name} all null");
    }

    // Same inputs, one thread and a quarter of the memory: every file the
    // same bytes, and the folder holds what it should.
    let again = dir.path().join("linked-again");
    let config = LinkConfig {
        target_partitions: Some(1),
        memory_limit: 256 << 20,
        ..LinkConfig::default()
    };
    link(&staged, &again, &config).unwrap();
    let listing = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let files = listing(&out);
    assert_eq!(
        files,
        [
            LINKAGE_REPORT_FILE,
            ORGANISATION_MODEL_FILE,
            PERSON_MODEL_FILE,
            WORKFORCE_MODEL_FILE,
        ]
        .map(str::to_owned)
        .into()
    );
    assert_eq!(listing(&again), files);
    for file in &files {
        assert!(
            std::fs::read(out.join(file)).unwrap() == std::fs::read(again.join(file)).unwrap(),
            "{file} differs between runs"
        );
    }
}
