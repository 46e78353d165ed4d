//! A hand-made sector of four persons and two organisations, whose model
//! rows are worked out by hand below. Every number here was computed on
//! paper from the deliveries in this file and the definitions in
//! docs/linking.md; a wrong join, a wrong clip or a wrong resolution of a
//! duplicate changes one of them.

use koppel_testkit as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use koppel_join::{LinkConfig, link};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

// Persons (valid citizen numbers) and organisations.
const A: &str = "111222333";
const B: &str = "222333443";
const C: &str = "333444553";
const D: &str = "444555663";
const X: &str = "10000001";
const Y: &str = "10000002";

const PAYROLL_HEADER: &str = "BSN;WERKGEVER_KVK;PERIODE;GEBOORTEDATUM;GESLACHT;POSTCODE4;CONTRACTSOORT;UREN_PER_WEEK;BRUTO_MAANDLOON;ORT_BEDRAG;FWG_FUNCTIECODE;BRANCHE;DATUM_IN_DIENST;DATUM_UIT_DIENST";

#[allow(clippy::too_many_arguments)]
fn months(
    bsn: &str,
    kvk: &str,
    year: i32,
    months: std::ops::RangeInclusive<u32>,
    rest_before: &str,
    contract: &str,
    hours: &str,
    wage: &str,
    ort: &str,
    rest_after: &str,
) -> String {
    months
        .map(|m| {
            format!("{bsn};{kvk};{year}{m:02};{rest_before};{contract};{hours};{wage};{ort};{rest_after}\n")
        })
        .collect()
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn survey(dir: &Path, year: i32, rows: &[(&str, f64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("bsn", DataType::Utf8, false),
        Field::new("jaar", DataType::Int32, true),
        Field::new("werkdruk", DataType::Float64, true),
        Field::new("emotionele_uitputting", DataType::Float64, true),
        Field::new("bevlogenheid", DataType::Float64, true),
        Field::new("empowering_leiderschap", DataType::Float64, true),
        Field::new("leerklimaat", DataType::Float64, true),
        Field::new("organisatieklimaat", DataType::Float64, true),
        Field::new("verzuim_zelfgerapporteerd", DataType::Boolean, true),
        Field::new("verzuim_werkgerelateerd", DataType::Boolean, true),
        Field::new("vertrekintentie", DataType::Float64, true),
    ]));
    let n = rows.len();
    let scale = |v: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![v; n])) };
    let workload: ArrayRef = Arc::new(Float64Array::from(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(vec![year; n])),
            workload,
            scale(2.5),
            scale(4.0),
            scale(3.5),
            scale(3.0),
            scale(3.25),
            Arc::new(BooleanArray::from(vec![true; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            scale(2.0),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join(format!("izz_monitor_{year}.parquet"))).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn deliveries(dir: &Path) {
    // A: all year at X both years; the May 2023 month delivered twice.
    let a_rest = "1990-06-15;V;3511";
    let a_after = "0101;VVT;2015-03-01;";
    let mut p2023 = String::from(PAYROLL_HEADER) + "\n";
    p2023 += &months(
        A,
        X,
        2023,
        1..=12,
        a_rest,
        "VAST",
        "36",
        "3000",
        "300",
        a_after,
    );
    p2023 += &months(
        A,
        X,
        2023,
        5..=5,
        a_rest,
        "VAST",
        "36",
        "3000",
        "300",
        a_after,
    );
    // B: temporary at Y until 30 June, then on call at X from 1 September;
    // gone from the sector in 2024.
    p2023 += &months(
        B,
        Y,
        2023,
        1..=6,
        "1998-01-01;M;1012",
        "TIJDELIJK",
        "24",
        "2000",
        "0",
        "0202;GGZ;2022-09-01;2023-06-30",
    );
    p2023 += &months(
        B,
        X,
        2023,
        9..=12,
        "1998-01-01;M;1012",
        "OPROEP",
        "12",
        "800",
        "100",
        "0101;VVT;2023-09-01;",
    );
    // D: all year at X without a function code; leaves X on 31 March 2024.
    p2023 += &months(
        D,
        X,
        2023,
        1..=12,
        "1970-02-02;V;3512",
        "VAST",
        "36",
        "3500",
        "0",
        ";VVT;2010-01-01;2024-03-31",
    );
    write(dir, "pfzw_dienstverbanden_2023.csv", &p2023);
    let mut p2024 = String::from(PAYROLL_HEADER) + "\n";
    p2024 += &months(
        A,
        X,
        2024,
        1..=12,
        a_rest,
        "VAST",
        "36",
        "3000",
        "300",
        a_after,
    );
    p2024 += &months(
        D,
        X,
        2024,
        1..=3,
        "1970-02-02;V;3512",
        "VAST",
        "36",
        "3500",
        "0",
        ";VVT;2010-01-01;2024-03-31",
    );
    write(dir, "pfzw_dienstverbanden_2024.csv", &p2024);

    // A: 10 days at 100% in March; 1 Dec 20 – 10 Jan at 50% across the
    // year end. B: open since 15 November 2023 at X, full time.
    write(
        dir,
        "vernet_verzuimmeldingen_2023.csv",
        &format!(
            "BSN;KVK_NUMMER;ZIEKMELDING;HERSTELMELDING;VERZUIMPERCENTAGE\n\
             {A};{X};01-03-2023;11-03-2023;100\n\
             {A};{X};20-12-2023;10-01-2024;50\n\
             {B};{X};15-11-2023;;100\n"
        ),
    );

    write(
        dir,
        "izz_verzekerden_2023.csv",
        &format!("bsn,jaar\n{A},2023\n{D},2023\n"),
    );
    write(
        dir,
        "izz_verzekerden_2024.csv",
        &format!("bsn,jaar\n{C},2024\n"),
    );
    write(
        dir,
        "izz_zorggebruik_2023.csv",
        &format!("bsn,jaar,zorgsoort,declaraties,kosten\n{A},2023,GGZ,3,450.50\n"),
    );
    write(
        dir,
        "izz_zorggebruik_2024.csv",
        &format!("bsn,jaar,zorgsoort,declaraties,kosten\n{C},2024,FYSIO,6,300.00\n"),
    );

    survey(dir, 2023, &[(A, 3.0), (B, 4.0)]);
    // C answered twice in 2024: the answer set first in scale order stays.
    survey(dir, 2024, &[(A, 3.5), (C, 4.5), (C, 2.0)]);

    write(
        dir,
        "fwg_functiekenmerken_2024.csv",
        "FUNCTIECODE;FUNCTIENAAM;FWG_NIVEAU;FYSIEKE_BELASTING;PSYCHISCHE_BELASTING;RISICO_LETSEL;BEZWARENDE_OMSTANDIGHEDEN;ONREGELMATIG\n\
         0101;Verzorgende;30;4;3;2;2;J\n\
         0202;Ambulant begeleider;50;1;4;1;0;N\n",
    );
    let ar_header =
        "KVK;BOEKJAAR;OMZET_KEUR;PERSONEELSKOSTEN_KEUR;OVERHEAD_PCT;FTE;LOCATIES;RESULTAAT_KEUR\n";
    write(
        dir,
        "intrakoop_jaarverslagen_2023.csv",
        &format!("{ar_header}{X};2023;12000;9000;12,5;150;3;300\n"),
    );
    // Two reports for X in 2024: the one with the higher revenue stays.
    write(
        dir,
        "intrakoop_jaarverslagen_2024.csv",
        &format!("{ar_header}{X};2024;12500;9400;12;152;3;-50\n{X};2024;100;90;10;1;1;0\n"),
    );
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}
use Cell::*;

fn read_rows(path: &Path) -> Vec<BTreeMap<String, Cell>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for row in 0..batch.num_rows() {
            let mut cells = BTreeMap::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                cells.insert(field.name().clone(), cell(column, row));
            }
            rows.push(cells);
        }
    }
    rows
}

fn cell(column: &ArrayRef, row: usize) -> Cell {
    use arrow::array::AsArray;
    use arrow::compute::cast;
    if column.is_null(row) {
        return Null;
    }
    match column.data_type() {
        DataType::Boolean => Bool(column.as_boolean().value(row)),
        DataType::Float32 | DataType::Float64 => {
            let c = cast(column, &DataType::Float64).unwrap();
            Float(c.as_primitive::<arrow::datatypes::Float64Type>().value(row))
        }
        DataType::FixedSizeBinary(_) => Bytes(column.as_fixed_size_binary().value(row).to_vec()),
        t if t.is_integer() => {
            let c = cast(column, &DataType::Int64).unwrap();
            Int(c.as_primitive::<arrow::datatypes::Int64Type>().value(row))
        }
        _ => {
            let c = cast(column, &DataType::Utf8).unwrap();
            Text(c.as_string::<i32>().value(row).to_owned())
        }
    }
}

fn text(s: &str) -> Cell {
    Text(s.to_owned())
}

fn check(what: &str, row: &BTreeMap<String, Cell>, expected: &[(&str, Cell)]) {
    for (column, want) in expected {
        let got = row
            .get(*column)
            .unwrap_or_else(|| panic!("{what}: no column {column}"));
        let same = match (got, want) {
            (Float(g), Float(w)) => (g - w).abs() < 1e-9,
            (Float(g), Int(w)) => (g - *w as f64).abs() < 1e-9,
            _ => got == want,
        };
        assert!(same, "{what}: {column} is {got:?}, expected {want:?}");
    }
}

fn find<'a>(
    rows: &'a [BTreeMap<String, Cell>],
    key: &str,
    id: &[u8],
    year: i64,
) -> &'a BTreeMap<String, Cell> {
    let matching: Vec<_> = rows
        .iter()
        .filter(|r| r[key] == Bytes(id.to_vec()) && r["year"] == Int(year))
        .collect();
    assert_eq!(matching.len(), 1, "one row for {key} in {year}");
    matching[0]
}

const NO_CARE: [&str; 4] = ["gp", "hospital", "pharmacy", "physio"];

#[test]
fn hand_made_sector_links_to_the_rows_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    deliveries(&raw);
    let staged = dir.path().join("staged");
    support::stage_raw(&raw, &staged);
    let out = dir.path().join("linked");
    let outcome = link(&staged, &out, &LinkConfig::default()).unwrap();

    // The person model: one row per respondent × year, C once in 2024.
    let people = read_rows(&outcome.person_model);
    assert_eq!(people.len(), 4);
    let (a, b, c, x, y) = (
        support::person_p2(A),
        support::person_p2(B),
        support::person_p2(C),
        support::org_p2(X),
        support::org_p2(Y),
    );

    let a2023 = find(&people, "person_p2", &a, 2023);
    check(
        "A 2023",
        a2023,
        &[
            ("on_payroll", Bool(true)),
            ("org_p2", Bytes(x.clone())),
            ("sector", text("VVT")),
            ("age", Int(32)),
            ("sex", text("V")),
            ("postcode4", Int(3511)),
            ("contract_type", text("VAST")),
            ("hours_per_week", Float(36.0)),
            ("months_employed", Int(12)),
            ("irregularity_share", Float(0.1)),
            ("fwg_function_code", text("0101")),
            ("fwg_level", Int(30)),
            ("physical_load", Int(4)),
            ("mental_load", Int(3)),
            ("injury_risk", Int(2)),
            ("adverse_conditions", Int(2)),
            ("irregular_hours", Bool(true)),
            // March: 10 days at 100%; 20–31 December: 12 days at 50%.
            ("absence_episodes", Int(2)),
            ("absence_days", Float(16.0)),
            ("longest_episode_days", Int(21)),
            ("long_term_absence", Bool(false)),
            ("izz_insured", Bool(true)),
            ("ggz_any", Bool(true)),
            ("ggz_claims", Int(3)),
            ("ggz_cost_eur", Float(450.5)),
            ("physio_any", Bool(false)),
            ("physio_claims", Int(0)),
            ("physio_cost_eur", Float(0.0)),
            ("left_employer", Bool(false)),
            ("left_sector", Bool(false)),
            ("workload", Float(3.0)),
            ("engagement", Float(4.0)),
            ("self_reported_absence", Bool(true)),
        ],
    );

    check(
        "A 2024",
        find(&people, "person_p2", &a, 2024),
        &[
            ("age", Int(33)),
            ("months_employed", Int(12)),
            // 1–9 January of the year-end episode at 50%.
            ("absence_episodes", Int(0)),
            ("absence_days", Float(4.5)),
            ("longest_episode_days", Int(21)),
            // Not on IZZ's list in 2024: unknown care use, not "none".
            ("izz_insured", Bool(false)),
            ("ggz_any", Null),
            ("ggz_claims", Null),
            // 2025 is not delivered.
            ("left_employer", Null),
            ("left_sector", Null),
            ("workload", Float(3.5)),
        ],
    );

    check(
        "B 2023",
        find(&people, "person_p2", &b, 2023),
        &[
            // Six months at Y outweigh four at X.
            ("org_p2", Bytes(y.clone())),
            ("sector", text("GGZ")),
            ("age", Int(25)),
            ("sex", text("M")),
            ("postcode4", Int(1012)),
            ("contract_type", text("TIJDELIJK")),
            // (24 × 6 + 12 × 4) / 10 months.
            ("hours_per_week", Float(19.2)),
            ("months_employed", Int(10)),
            // 4 × 100 / (6 × 2000 + 4 × 800).
            ("irregularity_share", Float(400.0 / 15200.0)),
            ("fwg_function_code", text("0202")),
            ("fwg_level", Int(50)),
            ("irregular_hours", Bool(false)),
            // Open since 15 November: 47 days in 2023; runs to the
            // reference date 31 December 2024: 47 + 366 = 413 days in all.
            ("absence_episodes", Int(1)),
            ("absence_days", Float(47.0)),
            ("longest_episode_days", Int(413)),
            ("long_term_absence", Bool(true)),
            ("izz_insured", Bool(false)),
            ("ggz_any", Null),
            ("left_employer", Bool(true)),
            ("left_sector", Bool(true)),
            ("workload", Float(4.0)),
        ],
    );

    let mut c_expected = vec![
        ("on_payroll", Bool(false)),
        ("org_p2", Null),
        ("sector", Null),
        ("age", Null),
        ("months_employed", Null),
        ("absence_episodes", Null),
        ("absence_days", Null),
        ("left_employer", Null),
        ("left_sector", Null),
        ("izz_insured", Bool(true)),
        ("physio_any", Bool(true)),
        ("physio_claims", Int(6)),
        ("physio_cost_eur", Float(300.0)),
        ("ggz_any", Bool(false)),
        // The answer set with the lower workload comes first.
        ("workload", Float(2.0)),
    ];
    for care in NO_CARE.iter().filter(|c| **c != "physio") {
        c_expected.push((Box::leak(format!("{care}_claims").into_boxed_str()), Int(0)));
    }
    check("C 2024", find(&people, "person_p2", &c, 2024), &c_expected);

    // The workforce model: everyone on the payroll, per year — A and D in
    // both years, B in 2023; C (not on the payroll) is not in it.
    let workforce = read_rows(&outcome.workforce_model);
    let d = support::person_p2(D);
    let keys: Vec<(Cell, Cell)> = workforce
        .iter()
        .map(|r| (r["person_p2"].clone(), r["year"].clone()))
        .collect();
    let mut in_order = vec![
        (Bytes(a.clone()), Int(2023)),
        (Bytes(a.clone()), Int(2024)),
        (Bytes(b.clone()), Int(2023)),
        (Bytes(d.clone()), Int(2023)),
        (Bytes(d.clone()), Int(2024)),
    ];
    in_order.sort_by(|x, y| match (x, y) {
        ((Bytes(p), Int(s)), (Bytes(q), Int(t))) => (p, s).cmp(&(q, t)),
        _ => unreachable!(),
    });
    assert_eq!(keys, in_order, "one row per payroll person-year, sorted");
    // A respondent on the payroll has the person model's values there; the
    // workforce model has no survey columns and no `on_payroll`.
    let surveyed = ["on_payroll", "workload", "engagement", "intention_to_leave"];
    for (id, year) in [(&a, 2023), (&a, 2024), (&b, 2023)] {
        let person = find(&people, "person_p2", id, year);
        let worker = find(&workforce, "person_p2", id, year);
        for column in surveyed {
            assert!(!worker.contains_key(column), "{column}");
        }
        let shared: BTreeMap<_, _> = person
            .iter()
            .filter(|(k, _)| worker.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(&shared, worker, "{year}");
    }
    // D answered no survey: 52 on 1 January 2023, all year at X without a
    // function code, insured in 2023 only, leaves X on 31 March 2024.
    check(
        "D 2023",
        find(&workforce, "person_p2", &d, 2023),
        &[
            ("org_p2", Bytes(x.clone())),
            ("sector", text("VVT")),
            ("age", Int(52)),
            ("sex", text("V")),
            ("postcode4", Int(3512)),
            ("contract_type", text("VAST")),
            ("hours_per_week", Float(36.0)),
            ("months_employed", Int(12)),
            ("irregularity_share", Float(0.0)),
            ("fwg_function_code", Null),
            ("fwg_level", Null),
            ("absence_episodes", Int(0)),
            ("absence_days", Float(0.0)),
            ("longest_episode_days", Int(0)),
            ("long_term_absence", Bool(false)),
            ("izz_insured", Bool(true)),
            ("ggz_any", Bool(false)),
            ("ggz_claims", Int(0)),
            ("ggz_cost_eur", Float(0.0)),
            ("left_employer", Bool(false)),
            ("left_sector", Bool(false)),
        ],
    );
    check(
        "D 2024",
        find(&workforce, "person_p2", &d, 2024),
        &[
            ("age", Int(53)),
            ("months_employed", Int(3)),
            ("izz_insured", Bool(false)),
            ("ggz_any", Null),
            ("physio_claims", Null),
            ("left_employer", Null),
            ("left_sector", Null),
        ],
    );

    // The organisation model: X in both years, Y in 2023.
    let orgs = read_rows(&outcome.organisation_model);
    assert_eq!(orgs.len(), 3);
    check(
        "X 2023",
        find(&orgs, "org_p2", &x, 2023),
        &[
            ("sector", text("VVT")),
            ("headcount", Int(3)),
            // (36 × 12 + 12 × 4 + 36 × 12) hour-months / 12 / 36.
            ("fte", Float(912.0 / 432.0)),
            // 32, 25 and 52 on 1 January.
            ("mean_age", Float(109.0 / 3.0)),
            ("temporary_share", Float(0.0)),
            ("on_call_share", Float(1.0 / 3.0)),
            // A 0.1, B 0.125, D 0.
            ("mean_irregularity_share", Float(0.075)),
            ("n_irregularity_share", Int(3)),
            // B joined in September; nobody's employment at X ended in 2023.
            ("inflow_rate", Float(1.0 / 3.0)),
            ("outflow_rate", Float(0.0)),
            // Weighted days: A 10 + 6, B 47 = 63. Available days: A's 13
            // rows of 396 days count as 12 months (396 × 12/13 = 365.5,
            // rounded 366), B 122 (September–December), D 365.
            ("absence_pct", Float(6300.0 / 853.0)),
            ("absence_days", Float(63.0)),
            ("available_days", Int(853)),
            ("episode_frequency", Float(1.0)),
            ("izz_coverage", Float(2.0 / 3.0)),
            ("n_izz_insured", Int(2)),
            ("ggz_share_insured", Float(0.5)),
            ("physio_share_insured", Float(0.0)),
            // A and B in function 0101; D without a code.
            ("mean_physical_load", Float(4.0)),
            ("mean_mental_load", Float(3.0)),
            ("mean_injury_risk", Float(2.0)),
            ("adverse_conditions_share", Float(1.0)),
            ("n_fwg", Int(2)),
            ("annual_report", Bool(true)),
            ("revenue_keur", Float(12000.0)),
            ("personnel_cost_keur", Float(9000.0)),
            ("overhead_pct", Float(12.5)),
            ("annual_report_fte", Float(150.0)),
            ("result_keur", Float(300.0)),
        ],
    );
    check(
        "Y 2023",
        find(&orgs, "org_p2", &y, 2023),
        &[
            ("headcount", Int(1)),
            ("fte", Float(144.0 / 432.0)),
            ("mean_age", Float(25.0)),
            ("temporary_share", Float(1.0)),
            ("on_call_share", Float(0.0)),
            ("mean_irregularity_share", Float(0.0)),
            ("inflow_rate", Float(0.0)),
            ("outflow_rate", Float(1.0)),
            // B's absence was reported by X, not Y; 181 days available.
            ("absence_pct", Float(0.0)),
            ("episode_frequency", Float(0.0)),
            ("izz_coverage", Float(0.0)),
            ("n_izz_insured", Int(0)),
            ("ggz_share_insured", Null),
            ("mean_physical_load", Float(1.0)),
            ("adverse_conditions_share", Float(0.0)),
            ("n_fwg", Int(1)),
            ("annual_report", Bool(false)),
            ("revenue_keur", Null),
        ],
    );
    check(
        "X 2024",
        find(&orgs, "org_p2", &x, 2024),
        &[
            ("headcount", Int(2)),
            // (36 × 12 + 36 × 3) / 12 / 36.
            ("fte", Float(1.25)),
            ("mean_age", Float(43.0)),
            ("mean_irregularity_share", Float(0.05)),
            ("inflow_rate", Float(0.0)),
            ("outflow_rate", Float(0.5)),
            // A's 9 January days at 50%; B's open episode no longer counts
            // at X, where B is no longer employed. 366 + 91 days available.
            ("absence_pct", Float(450.0 / 457.0)),
            ("episode_frequency", Float(0.0)),
            ("izz_coverage", Float(0.0)),
            ("n_fwg", Int(1)),
            ("revenue_keur", Float(12500.0)),
            ("result_keur", Float(-50.0)),
        ],
    );

    // The linkage report counts what was found and resolved.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&outcome.report_path).unwrap()).unwrap();
    let source = |name: &str| {
        report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == name)
            .unwrap()
            .clone()
    };
    let payroll = source("pfzw_dienstverbanden");
    assert_eq!(payroll["rows_in"], 12 + 1 + 6 + 4 + 12 + 12 + 3);
    assert_eq!(payroll["distinct_pseudonyms"], 3);
    assert_eq!(payroll["duplicates"], 1);
    let survey = source("izz_monitor");
    assert_eq!(survey["rows_in"], 5);
    assert_eq!(survey["duplicates"], 1);
    assert_eq!(
        survey["linked"], 3,
        "A twice and B; C is not on the payroll"
    );
    assert_eq!(survey["not_linked"], 1);
    let reports = source("intrakoop_jaarverslagen");
    assert_eq!(reports["duplicates"], 1);
    assert_eq!(reports["linked"], 2);
    let absence = source("vernet_verzuimmeldingen");
    assert_eq!(absence["rows_in"], 3);
    assert_eq!(absence["linked"], 3, "A in both years and B in 2023");
    assert_eq!(absence["not_linked"], 1, "B's open episode in 2024");
    assert_eq!(report["reference_date"], "2024-12-31");
    assert_eq!(report["person_model_rows"], 4);
    assert_eq!(report["workforce_model_rows"], 5);
    // Overlap in 2024: A on the payroll with an episode and a survey; C in
    // IZZ's lists and the survey only; D on the payroll only.
    let overlap_2024: Vec<(Vec<String>, u64)> = report["overlap"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["year"] == 2024)
        .map(|o| {
            (
                serde_json::from_value(o["sources"].clone()).unwrap(),
                o["persons"].as_u64().unwrap(),
            )
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        overlap_2024,
        vec![
            (strings(&["pfzw_dienstverbanden"]), 1),
            (strings(&["vernet_verzuimmeldingen"]), 1),
            (
                strings(&[
                    "pfzw_dienstverbanden",
                    "vernet_verzuimmeldingen",
                    "izz_monitor"
                ]),
                1
            ),
            (
                strings(&["izz_verzekerden", "izz_zorggebruik", "izz_monitor"]),
                1
            ),
        ]
    );
}

/// Writes a stand-in annual-reports file without the revenue column, so
/// that planning fails midway, after the backbone was built.
fn break_annual_reports(staged: &Path) {
    let schema = Arc::new(Schema::new(vec![Field::new("year", DataType::Int32, true)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![2023]))]).unwrap();
    for year in [2023, 2024] {
        let file =
            std::fs::File::create(staged.join(format!("intrakoop_jaarverslagen_{year}.parquet")))
                .unwrap();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}

#[test]
fn refusals_and_failures_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir(&raw).unwrap();
    deliveries(&raw);
    let staged = dir.path().join("staged");
    support::stage_raw(&raw, &staged);
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let leftovers = || std::fs::read_dir(&results).unwrap().count();

    // A missing source is named.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    for entry in std::fs::read_dir(&staged).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().contains("izz_monitor") {
            std::fs::copy(&path, partial.join(path.file_name().unwrap())).unwrap();
        }
    }
    let err = link(&partial, &results.join("a"), &LinkConfig::default()).unwrap_err();
    assert!(err.to_string().contains("izz_monitor"), "{err}");
    assert_eq!(leftovers(), 0);

    // A source under another stage-2 key cannot be linked.
    let other_key = dir.path().join("other-key");
    let transform = koppel_pseudonymise::Stage2Transform::new(
        "izz_monitor",
        koppel_pseudonymise::Pseudonymiser::new(
            koppel_pseudonymise::Stage::Stage2,
            &koppel_pseudonymise::KeyMaterial::from_bytes([9; 32]),
            "stage2-test",
            2,
        ),
    )
    .unwrap()
    .allow_raw(support::stage1())
    .unwrap();
    std::fs::create_dir(&other_key).unwrap();
    for entry in std::fs::read_dir(&partial).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, other_key.join(path.file_name().unwrap())).unwrap();
    }
    let specs = support::specs();
    let survey = raw.join("izz_monitor_2023.parquet");
    koppel_pseudonymise::pseudonymise_staged(
        &survey,
        specs.for_file(&survey).unwrap(),
        &transform,
        &other_key.join("izz_monitor_2023.parquet"),
    )
    .unwrap();
    let err = link(&other_key, &results.join("b"), &LinkConfig::default()).unwrap_err();
    assert!(err.to_string().contains("stage2-test v2"), "{err}");
    assert_eq!(leftovers(), 0);

    // A raw or stage-1 identifier column is refused.
    let stage1 = dir.path().join("stage1");
    std::fs::create_dir(&stage1).unwrap();
    for entry in std::fs::read_dir(&staged).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, stage1.join(path.file_name().unwrap())).unwrap();
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("bsn", DataType::Utf8, false),
        Field::new("year", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![A])),
            Arc::new(Int32Array::from(vec![2023])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(stage1.join("izz_verzekerden_2023.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let err = link(&stage1, &results.join("c"), &LinkConfig::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("not a stage-2 pseudonym"), "{message}");
    assert!(
        !message.contains(A),
        "the error names the column, not a value"
    );
    assert_eq!(leftovers(), 0);

    // A source without a column the plans need is named with the column.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for entry in std::fs::read_dir(&staged).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, broken.join(path.file_name().unwrap())).unwrap();
    }
    break_annual_reports(&broken);
    let err = link(&broken, &results.join("d"), &LinkConfig::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("intrakoop_jaarverslagen_2023.parquet")
            && message.contains("employer_kvk_p2"),
        "{message}"
    );
    assert_eq!(leftovers(), 0);

    // A failure after the output's temporary folder was made (here: an
    // unusable work folder) leaves neither a result nor that folder.
    let config = LinkConfig {
        work_dir: Some(dir.path().join("no-such-folder")),
        ..LinkConfig::default()
    };
    let err = link(&staged, &results.join("e"), &config).unwrap_err();
    assert!(err.to_string().contains("results"), "{err}");
    assert_eq!(leftovers(), 0, "no output and no temporary folder");
}
