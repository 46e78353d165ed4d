//! Crate-level tests: determinism, conformance to the delivery contract,
//! realistic marginals, the planted relationships and the planted defects.
//!
//! The contract checks below are written from the contract text, not from
//! the writers' constants, so that a writer drifting from the contract fails
//! here.

use crate::ident::{bsn_text_is_valid, kvk_text_is_valid};
use crate::model::{Model, ModelParams, OPEN, care};
use crate::{SOURCES, SynthConfig, SynthError, SynthSummary, synthesise};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type};
use chrono::{Datelike, NaiveDate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const YEARS: std::ops::RangeInclusive<i32> = 2023..=2024;

fn config(persons: usize, seed: u64) -> SynthConfig {
    SynthConfig::new(persons, YEARS, seed)
}

fn run(config: &SynthConfig) -> (tempfile::TempDir, SynthSummary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = synthesise(config, dir.path()).expect("synthesis succeeds");
    (dir, summary)
}

/// The deliveries in a directory: everything but the synthetic-data marker.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("output dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != crate::SYNTHETIC_MARKER)
        .collect();
    names.sort();
    names
}

#[test]
fn synthetic_output_is_marked_as_such() {
    let (dir, _) = run(&config(300, 5));
    assert!(dir.path().join(crate::SYNTHETIC_MARKER).exists());
}

// ---------------------------------------------------------------------------
// The contract, as the tests read it.

struct SourceSpec {
    name: &'static str,
    delimiter: char,
    header: &'static [&'static str],
}

const PFZW: SourceSpec = SourceSpec {
    name: "pfzw_dienstverbanden",
    delimiter: ';',
    header: &[
        "BSN",
        "WERKGEVER_KVK",
        "PERIODE",
        "GEBOORTEDATUM",
        "GESLACHT",
        "POSTCODE4",
        "CONTRACTSOORT",
        "UREN_PER_WEEK",
        "BRUTO_MAANDLOON",
        "ORT_BEDRAG",
        "FWG_FUNCTIECODE",
        "BRANCHE",
        "DATUM_IN_DIENST",
        "DATUM_UIT_DIENST",
    ],
};
const VERNET: SourceSpec = SourceSpec {
    name: "vernet_verzuimmeldingen",
    delimiter: ';',
    header: &[
        "BSN",
        "KVK_NUMMER",
        "ZIEKMELDING",
        "HERSTELMELDING",
        "VERZUIMPERCENTAGE",
    ],
};
const INSURED: SourceSpec = SourceSpec {
    name: "izz_verzekerden",
    delimiter: ',',
    header: &["bsn", "jaar"],
};
const CARE_USE: SourceSpec = SourceSpec {
    name: "izz_zorggebruik",
    delimiter: ',',
    header: &["bsn", "jaar", "zorgsoort", "declaraties", "kosten"],
};
const FWG: SourceSpec = SourceSpec {
    name: "fwg_functiekenmerken",
    delimiter: ';',
    header: &[
        "FUNCTIECODE",
        "FUNCTIENAAM",
        "FWG_NIVEAU",
        "FYSIEKE_BELASTING",
        "PSYCHISCHE_BELASTING",
        "RISICO_LETSEL",
        "BEZWARENDE_OMSTANDIGHEDEN",
        "ONREGELMATIG",
    ],
};
const INTRAKOOP: SourceSpec = SourceSpec {
    name: "intrakoop_jaarverslagen",
    delimiter: ';',
    header: &[
        "KVK",
        "BOEKJAAR",
        "OMZET_KEUR",
        "PERSONEELSKOSTEN_KEUR",
        "OVERHEAD_PCT",
        "FTE",
        "LOCATIES",
        "RESULTAAT_KEUR",
    ],
};
const CSV_SOURCES: [&SourceSpec; 6] = [&PFZW, &VERNET, &INSURED, &CARE_USE, &FWG, &INTRAKOOP];

const MONITOR_COLUMNS: [(&str, DataType); 11] = [
    ("bsn", DataType::Utf8),
    ("jaar", DataType::Int32),
    ("werkdruk", DataType::Float64),
    ("emotionele_uitputting", DataType::Float64),
    ("bevlogenheid", DataType::Float64),
    ("empowering_leiderschap", DataType::Float64),
    ("leerklimaat", DataType::Float64),
    ("organisatieklimaat", DataType::Float64),
    ("verzuim_zelfgerapporteerd", DataType::Boolean),
    ("verzuim_werkgerelateerd", DataType::Boolean),
    ("vertrekintentie", DataType::Float64),
];

/// The planted defects the documentation promises, per source:
/// (rule, column, count).
/// (rule, column, count)
type PlannedDefects = &'static [(&'static str, &'static str, u64)];

const DEFECT_PLAN: [(&str, PlannedDefects); 7] = [
    (
        "pfzw_dienstverbanden",
        &[
            ("invalid_bsn", "bsn", 5),
            ("invalid_code", "fwg_function_code", 1),
            ("invalid_date", "birth_date", 2),
            ("invalid_decimal", "gross_monthly_wage", 1),
            ("invalid_kvk", "employer_kvk", 2),
            ("not_in_enum", "sex", 2),
            ("out_of_range", "hours_per_week", 2),
            ("required", "sector", 2),
            ("too_young", "birth_date", 2),
        ],
    ),
    (
        "vernet_verzuimmeldingen",
        &[
            ("date_order", "recovered_on", 2),
            ("invalid_bsn", "bsn", 2),
            ("invalid_date", "sick_from", 1),
            ("out_of_range", "absence_pct", 2),
        ],
    ),
    (
        "izz_verzekerden",
        &[("invalid_bsn", "bsn", 1), ("invalid_integer", "year", 1)],
    ),
    (
        "izz_zorggebruik",
        &[
            ("not_in_enum", "care_type", 2),
            ("out_of_range", "claims", 1),
        ],
    ),
    (
        "izz_monitor",
        &[
            ("invalid_bsn", "bsn", 2),
            ("out_of_range", "workload", 2),
            ("required", "year", 1),
        ],
    ),
    (
        "fwg_functiekenmerken",
        &[("duplicate", "fwg_function_code", 1)],
    ),
    (
        "intrakoop_jaarverslagen",
        &[
            ("invalid_kvk", "employer_kvk", 1),
            ("out_of_range", "overhead_pct", 1),
        ],
    ),
];

// ---------------------------------------------------------------------------
// Reading the files back.

struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    lines: Vec<String>,
}

fn read_csv(path: &Path, delimiter: char) -> Csv {
    let bytes = std::fs::read(path).expect("file exists");
    assert!(
        !bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "no BOM in {path:?}"
    );
    assert!(!bytes.contains(&b'\r'), "LF line ends in {path:?}");
    assert!(bytes.ends_with(b"\n"), "{path:?} ends with a line end");
    let text = String::from_utf8(bytes).expect("UTF-8");
    // The generated data never needs quoting; the contract's quoting is
    // exercised by the ingest crate's own fixtures.
    assert!(!text.contains('"'), "nothing quoted in {path:?}");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header_line = lines.remove(0);
    let split = |line: &str| -> Vec<String> { line.split(delimiter).map(str::to_string).collect() };
    let header = split(&header_line);
    let rows: Vec<Vec<String>> = lines.iter().map(|l| split(l)).collect();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "field count in {path:?}: {row:?}");
    }
    Csv {
        header,
        rows,
        lines,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct MonitorRow {
    bsn: String,
    year: Option<i32>,
    /// werkdruk, emotionele_uitputting, bevlogenheid, empowering_leiderschap,
    /// leerklimaat, organisatieklimaat, vertrekintentie
    scales: [Option<f64>; 7],
    absent: Option<bool>,
    work_related: Option<bool>,
}

fn read_monitor(path: &Path) -> Vec<MonitorRow> {
    let file = std::fs::File::open(path).expect("parquet file");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let schema = builder.schema().clone();
    for (field, (name, data_type)) in schema.fields().iter().zip(MONITOR_COLUMNS.iter()) {
        assert_eq!(field.name(), name);
        assert_eq!(field.data_type(), data_type);
    }
    assert_eq!(schema.fields().len(), MONITOR_COLUMNS.len());
    let compression = builder.metadata().row_group(0).column(0).compression();
    assert_eq!(compression, parquet::basic::Compression::SNAPPY);
    let reader = builder.build().expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let bsn = batch.column(0).as_string::<i32>();
        let year = batch.column(1).as_primitive::<Int32Type>();
        let scale_columns =
            [2, 3, 4, 5, 6, 7, 10].map(|i| batch.column(i).as_primitive::<Float64Type>());
        let absent = batch.column(8).as_boolean();
        let work_related = batch.column(9).as_boolean();
        for i in 0..batch.num_rows() {
            let scales = std::array::from_fn(|s| {
                let column = scale_columns[s];
                column.is_valid(i).then(|| column.value(i))
            });
            rows.push(MonitorRow {
                bsn: bsn.value(i).to_string(),
                year: year.is_valid(i).then(|| year.value(i)),
                scales,
                absent: absent.is_valid(i).then(|| absent.value(i)),
                work_related: work_related.is_valid(i).then(|| work_related.value(i)),
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Contract rules, per field.

type Violation = (&'static str, &'static str);

fn date_iso(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn date_dmy(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%d-%m-%Y").ok()
}

fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn decimal(text: &str, separator: char) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once(separator) {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    text.replace(separator, ".").parse().ok()
}

struct Rules {
    violations: Vec<Violation>,
}

impl Rules {
    fn new() -> Self {
        Rules {
            violations: Vec::new(),
        }
    }

    fn flag(&mut self, rule: &'static str, column: &'static str) {
        self.violations.push((rule, column));
    }

    /// Whether a required field is present; flags it when not.
    fn present(&mut self, text: &str, required: bool, column: &'static str) -> bool {
        if text.is_empty() {
            if required {
                self.flag("required", column);
            }
            return false;
        }
        true
    }

    fn bsn(&mut self, text: &str, column: &'static str) {
        if self.present(text, true, column) && !bsn_text_is_valid(text) {
            self.flag("invalid_bsn", column);
        }
    }

    fn kvk(&mut self, text: &str, column: &'static str) {
        if self.present(text, true, column) && !kvk_text_is_valid(text) {
            self.flag("invalid_kvk", column);
        }
    }

    fn enumeration(&mut self, text: &str, allowed: &[&str], column: &'static str) {
        if self.present(text, true, column) && !allowed.contains(&text) {
            self.flag("not_in_enum", column);
        }
    }

    fn date(
        &mut self,
        text: &str,
        parse: fn(&str) -> Option<NaiveDate>,
        required: bool,
        column: &'static str,
    ) -> Option<NaiveDate> {
        if !self.present(text, required, column) {
            return None;
        }
        let date = parse(text);
        if date.is_none() {
            self.flag("invalid_date", column);
        }
        date
    }

    #[allow(clippy::too_many_arguments)]
    fn number(
        &mut self,
        text: &str,
        parse: impl Fn(&str) -> Option<f64>,
        rule_if_unparsable: &'static str,
        required: bool,
        range: (f64, f64),
        column: &'static str,
    ) -> Option<f64> {
        if !self.present(text, required, column) {
            return None;
        }
        let Some(value) = parse(text) else {
            self.flag(rule_if_unparsable, column);
            return None;
        };
        if value < range.0 || value > range.1 {
            self.flag("out_of_range", column);
        }
        Some(value)
    }

    fn integer(
        &mut self,
        text: &str,
        required: bool,
        range: (f64, f64),
        column: &'static str,
    ) -> Option<f64> {
        self.number(
            text,
            |t| integer(t).map(|v| v as f64),
            "invalid_integer",
            required,
            range,
            column,
        )
    }

    fn decimal(
        &mut self,
        text: &str,
        separator: char,
        required: bool,
        range: (f64, f64),
        column: &'static str,
    ) -> Option<f64> {
        self.number(
            text,
            |t| decimal(t, separator),
            "invalid_decimal",
            required,
            range,
            column,
        )
    }
}

const ANY: (f64, f64) = (f64::MIN, f64::MAX);
const NON_NEGATIVE: (f64, f64) = (0.0, f64::MAX);
const SECTORS: [&str; 8] = ["VVT", "ZKH", "GGZ", "GHZ", "JZ", "SW", "KO", "HA"];

fn fourteenth_birthday(birth: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(birth.year() + 14, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(birth.year() + 14, 3, 1))
        .expect("valid date")
}

fn period_end(period: &str) -> Option<NaiveDate> {
    if period.len() != 6 {
        return None;
    }
    let year: i32 = period[..4].parse().ok()?;
    let month: u32 = period[4..].parse().ok()?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next?.pred_opt()
}

fn check_pfzw(f: &[String]) -> Vec<Violation> {
    let mut r = Rules::new();
    r.bsn(&f[0], "bsn");
    r.kvk(&f[1], "employer_kvk");
    let period = if r.present(&f[2], true, "period") {
        let end = period_end(&f[2]);
        if end.is_none() {
            r.flag("invalid_date", "period");
        }
        end
    } else {
        None
    };
    let birth = r.date(&f[3], date_iso, true, "birth_date");
    if let (Some(birth), Some(period)) = (birth, period)
        && fourteenth_birthday(birth) > period
    {
        r.flag("too_young", "birth_date");
    }
    r.enumeration(&f[4], &["M", "V", "X"], "sex");
    r.integer(&f[5], false, (1000.0, 9999.0), "postcode4");
    r.enumeration(&f[6], &["VAST", "TIJDELIJK", "OPROEP"], "contract_type");
    r.decimal(&f[7], ',', true, (0.0, 60.0), "hours_per_week");
    r.decimal(&f[8], ',', true, NON_NEGATIVE, "gross_monthly_wage");
    r.decimal(&f[9], ',', true, NON_NEGATIVE, "irregularity_allowance");
    let four_digits = f[10].len() == 4 && f[10].bytes().all(|b| b.is_ascii_digit());
    if !f[10].is_empty() && !four_digits {
        r.flag("invalid_code", "fwg_function_code");
    }
    r.enumeration(&f[11], &SECTORS, "sector");
    let start = r.date(&f[12], date_iso, true, "employment_start");
    let end = r.date(&f[13], date_iso, false, "employment_end");
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        r.flag("date_order", "employment_end");
    }
    r.violations
}

fn check_vernet(f: &[String]) -> Vec<Violation> {
    let mut r = Rules::new();
    r.bsn(&f[0], "bsn");
    r.kvk(&f[1], "employer_kvk");
    let sick_from = r.date(&f[2], date_dmy, true, "sick_from");
    let recovered_on = r.date(&f[3], date_dmy, false, "recovered_on");
    if let (Some(from), Some(to)) = (sick_from, recovered_on)
        && to < from
    {
        r.flag("date_order", "recovered_on");
    }
    r.integer(&f[4], true, (1.0, 100.0), "absence_pct");
    r.violations
}

fn check_insured(f: &[String]) -> Vec<Violation> {
    let mut r = Rules::new();
    r.bsn(&f[0], "bsn");
    r.integer(&f[1], true, (2000.0, 2100.0), "year");
    r.violations
}

fn check_care_use(f: &[String]) -> Vec<Violation> {
    let mut r = Rules::new();
    r.bsn(&f[0], "bsn");
    r.integer(&f[1], true, ANY, "year");
    r.enumeration(
        &f[2],
        &["GGZ", "FYSIO", "HUISARTS", "MSZ", "FARMACIE"],
        "care_type",
    );
    r.integer(&f[3], true, (1.0, f64::MAX), "claims");
    r.decimal(&f[4], '.', true, NON_NEGATIVE, "cost_eur");
    r.violations
}

fn check_fwg(f: &[String], seen: &mut HashSet<String>) -> Vec<Violation> {
    let mut r = Rules::new();
    if r.present(&f[0], true, "fwg_function_code") {
        if !(f[0].len() == 4 && f[0].bytes().all(|b| b.is_ascii_digit())) {
            r.flag("invalid_code", "fwg_function_code");
        } else if !seen.insert(f[0].clone()) {
            r.flag("duplicate", "fwg_function_code");
        }
    }
    r.present(&f[1], true, "function_title");
    r.integer(&f[2], true, (10.0, 80.0), "fwg_level");
    r.integer(&f[3], true, (1.0, 5.0), "physical_load");
    r.integer(&f[4], true, (1.0, 5.0), "mental_load");
    r.integer(&f[5], true, (1.0, 5.0), "injury_risk");
    r.integer(&f[6], true, (0.0, 5.0), "adverse_conditions");
    r.enumeration(&f[7], &["J", "N"], "irregular_hours");
    r.violations
}

fn check_intrakoop(f: &[String]) -> Vec<Violation> {
    let mut r = Rules::new();
    r.kvk(&f[0], "employer_kvk");
    r.integer(&f[1], true, ANY, "year");
    r.decimal(&f[2], ',', true, NON_NEGATIVE, "revenue_keur");
    r.decimal(&f[3], ',', true, NON_NEGATIVE, "personnel_cost_keur");
    r.decimal(&f[4], ',', false, (0.0, 100.0), "overhead_pct");
    r.decimal(&f[5], ',', true, NON_NEGATIVE, "fte");
    r.integer(&f[6], false, (1.0, f64::MAX), "locations");
    r.decimal(&f[7], ',', false, ANY, "result_keur");
    r.violations
}

fn check_monitor(row: &MonitorRow) -> Vec<Violation> {
    let mut r = Rules::new();
    r.bsn(&row.bsn, "bsn");
    if row.year.is_none() {
        r.flag("required", "year");
    }
    let ranges: [(&str, f64, f64); 7] = [
        ("workload", 1.0, 5.0),
        ("emotional_exhaustion", 1.0, 5.0),
        ("engagement", 0.0, 6.0),
        ("empowering_leadership", 1.0, 5.0),
        ("learning_climate", 1.0, 5.0),
        ("organisational_climate", 1.0, 5.0),
        ("intention_to_leave", 1.0, 5.0),
    ];
    for (value, (column, low, high)) in row.scales.iter().zip(ranges) {
        if let Some(v) = value
            && (*v < low || *v > high)
        {
            r.flag("out_of_range", column);
        }
    }
    r.violations
}

/// Violations of every data row of a file, in file order.
fn file_violations(path: &Path, source: &str) -> Vec<Vec<Violation>> {
    if source == "izz_monitor" {
        return read_monitor(path).iter().map(check_monitor).collect();
    }
    let spec = CSV_SOURCES
        .iter()
        .find(|s| s.name == source)
        .expect("known source");
    let csv = read_csv(path, spec.delimiter);
    let mut seen = HashSet::new();
    csv.rows
        .iter()
        .map(|row| match source {
            "pfzw_dienstverbanden" => check_pfzw(row),
            "vernet_verzuimmeldingen" => check_vernet(row),
            "izz_verzekerden" => check_insured(row),
            "izz_zorggebruik" => check_care_use(row),
            "fwg_functiekenmerken" => check_fwg(row, &mut seen),
            "intrakoop_jaarverslagen" => check_intrakoop(row),
            other => panic!("unexpected source {other}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Determinism and configuration.

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let mut cfg = config(1200, 7);
    cfg.defects = true;
    let (a, summary_a) = run(&cfg);
    let (b, summary_b) = run(&cfg);
    let names = file_names(a.path());
    assert_eq!(names, file_names(b.path()));
    assert_eq!(names.len(), 13);
    for name in &names {
        let left = std::fs::read(a.path().join(name)).expect("file");
        let right = std::fs::read(b.path().join(name)).expect("file");
        assert!(left == right, "{name} differs between identical runs");
    }
    let listing = |summary: &SynthSummary| -> Vec<String> {
        summary
            .defects
            .iter()
            .map(|d| {
                let name = d.file.file_name().expect("name").to_string_lossy();
                format!("{} {name} {} {} {}", d.source, d.rule, d.column, d.count)
            })
            .collect()
    };
    assert_eq!(listing(&summary_a), listing(&summary_b));

    cfg.seed = 8;
    let (c, _) = run(&cfg);
    for name in &names {
        if name.starts_with("fwg_") {
            continue; // the reference table does not depend on the seed
        }
        let left = std::fs::read(a.path().join(name)).expect("file");
        let other = std::fs::read(c.path().join(name)).expect("file");
        assert!(left != other, "{name} does not change with the seed");
    }
}

#[test]
fn only_writes_the_named_sources_with_unchanged_content() {
    let mut cfg = config(1000, 11);
    cfg.defects = true;
    let (full, _) = run(&cfg);
    cfg.only = vec!["pfzw_dienstverbanden".into(), "izz_monitor".into()];
    let (subset, summary) = run(&cfg);
    let names = file_names(subset.path());
    assert_eq!(
        names,
        [
            "izz_monitor_2023.parquet",
            "izz_monitor_2024.parquet",
            "pfzw_dienstverbanden_2023.csv",
            "pfzw_dienstverbanden_2024.csv",
        ]
    );
    for name in &names {
        let left = std::fs::read(full.path().join(name)).expect("file");
        let right = std::fs::read(subset.path().join(name)).expect("file");
        assert!(left == right, "{name} changes when written alone");
    }
    assert!(
        summary
            .defects
            .iter()
            .all(|d| d.source == "pfzw_dienstverbanden" || d.source == "izz_monitor")
    );
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refuse = |cfg: SynthConfig| synthesise(&cfg, dir.path()).expect_err("refused");
    assert!(matches!(refuse(config(0, 1)), SynthError::NoPersons));
    let mut empty = config(10, 1);
    empty.years = std::ops::RangeInclusive::new(2024, 2023);
    assert!(matches!(refuse(empty), SynthError::EmptyYearRange { .. }));
    let mut unknown = config(10, 1);
    unknown.only = vec!["pfzw".into()];
    let err = refuse(unknown);
    assert!(matches!(err, SynthError::UnknownSource { .. }));
    assert!(err.to_string().contains("pfzw_dienstverbanden"));
    let mut no_orgs = config(10, 1);
    no_orgs.orgs = Some(0);
    assert!(matches!(refuse(no_orgs), SynthError::NoOrganisations));
    assert!(file_names(dir.path()).is_empty(), "nothing written");
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").expect("write");
    let err = synthesise(&config(10, 1), &blocker.join("out")).expect_err("cannot create");
    assert!(matches!(err, SynthError::Io { .. }));
    assert!(err.to_string().contains("not-a-directory"), "{err}");
}

#[test]
fn tiny_and_single_year_configurations_work() {
    let mut cfg = SynthConfig::new(3, 2024..=2024, 5);
    cfg.defects = true;
    let (dir, summary) = run(&cfg);
    assert_eq!(summary.files.len(), 7);
    assert_eq!(file_names(dir.path()).len(), 7);
    for file in &summary.files {
        assert!(file.path.exists());
        assert_eq!(file.period, "2024");
    }
}

// ---------------------------------------------------------------------------
// Contract conformance of a clean delivery.

#[test]
fn clean_delivery_follows_the_contract() {
    let (dir, summary) = run(&config(1500, 3));
    assert!(summary.defects.is_empty());
    let expected_names: Vec<String> = {
        let mut names = vec!["fwg_functiekenmerken_2024.csv".to_string()];
        for year in YEARS {
            for source in SOURCES.iter().filter(|s| **s != "fwg_functiekenmerken") {
                let ext = if *source == "izz_monitor" {
                    "parquet"
                } else {
                    "csv"
                };
                names.push(format!("{source}_{year}.{ext}"));
            }
        }
        names.sort();
        names
    };
    assert_eq!(file_names(dir.path()), expected_names);

    for file in &summary.files {
        let violations = file_violations(&file.path, &file.source);
        assert_eq!(violations.len() as u64, file.rows, "{:?}", file.path);
        assert!(file.rows > 0, "{:?} is empty", file.path);
        for (i, v) in violations.iter().enumerate() {
            assert!(v.is_empty(), "{:?} row {i}: {v:?}", file.path);
        }
        if file.source != "izz_monitor" {
            let spec = CSV_SOURCES
                .iter()
                .find(|s| s.name == file.source)
                .expect("spec");
            let csv = read_csv(&file.path, spec.delimiter);
            assert_eq!(csv.header, spec.header, "{:?}", file.path);
            if file.source != "fwg_functiekenmerken" {
                let year = file.period.as_str();
                let year_column = match file.source.as_str() {
                    "izz_verzekerden" | "izz_zorggebruik" | "intrakoop_jaarverslagen" => Some(1),
                    _ => None,
                };
                if let Some(c) = year_column {
                    assert!(csv.rows.iter().all(|r| r[c] == year));
                }
            }
        }
    }
}

#[test]
fn payroll_rows_are_consistent_employment_months() {
    let (dir, _) = run(&config(1500, 4));
    let table = read_csv(&dir.path().join("fwg_functiekenmerken_2024.csv"), ';');
    let codes: HashSet<String> = table.rows.iter().map(|r| r[0].clone()).collect();
    let mut birth_of: HashMap<String, String> = HashMap::new();
    let mut sector_of: HashMap<String, String> = HashMap::new();
    let mut keys = HashSet::new();
    let (mut rows, mut no_code, mut no_postcode) = (0usize, 0usize, 0usize);
    for year in YEARS {
        let csv = read_csv(
            &dir.path().join(format!("pfzw_dienstverbanden_{year}.csv")),
            ';',
        );
        for r in &csv.rows {
            rows += 1;
            assert!(
                r[2].starts_with(&year.to_string()),
                "period in its year's file"
            );
            let period_end = period_end(&r[2]).expect("period");
            let period_start = period_end.with_day(1).expect("first");
            let birth = date_iso(&r[3]).expect("birth");
            let age = period_end.year() - birth.year();
            assert!((17..=67).contains(&age), "working age: {r:?}");
            let start = date_iso(&r[12]).expect("start");
            assert!(start <= period_end, "started by the period: {r:?}");
            if let Some(end) = date_iso(&r[13]) {
                assert!(end >= start && end >= period_start, "{r:?}");
            }
            assert!(r[10].is_empty() || codes.contains(&r[10]), "known FWG code");
            no_code += r[10].is_empty() as usize;
            no_postcode += r[5].is_empty() as usize;
            // One birth date per person, one sector per employer.
            assert_eq!(birth_of.entry(r[0].clone()).or_insert(r[3].clone()), &r[3]);
            assert_eq!(
                sector_of.entry(r[1].clone()).or_insert(r[11].clone()),
                &r[11]
            );
            assert!(keys.insert((r[0].clone(), r[1].clone(), r[2].clone(), r[12].clone())));
        }
    }
    let share = |n: usize| n as f64 / rows as f64;
    assert!(
        (0.005..0.04).contains(&share(no_code)),
        "FWG code missing {}",
        share(no_code)
    );
    assert!(
        (0.001..0.03).contains(&share(no_postcode)),
        "postcode missing {}",
        share(no_postcode)
    );
}

#[test]
fn identifiers_are_valid_and_unique() {
    let model = Model::build(&ModelParams {
        persons: 20_000,
        orgs: 150,
        first_year: 2023,
        last_year: 2024,
        seed: 9,
    });
    let bsns: HashSet<u32> = model.persons.iter().map(|p| p.bsn).collect();
    assert_eq!(bsns.len(), model.persons.len());
    assert!(
        model
            .persons
            .iter()
            .all(|p| crate::ident::bsn_is_valid(p.bsn))
    );
    let kvks: HashSet<u32> = model.orgs.iter().map(|o| o.kvk).collect();
    assert_eq!(kvks.len(), model.orgs.len());
    assert!(model.orgs.iter().all(|o| (1..100_000_000).contains(&o.kvk)));
    let sectors: HashSet<&str> = model.orgs.iter().map(|o| o.sector.code()).collect();
    assert_eq!(sectors.len(), 8, "every sector present");
}

#[test]
fn absence_files_follow_the_year_of_the_sick_report() {
    let (dir, _) = run(&config(1500, 5));
    let reference = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
    let mut running = 0;
    for year in YEARS {
        let csv = read_csv(
            &dir.path()
                .join(format!("vernet_verzuimmeldingen_{year}.csv")),
            ';',
        );
        let mut previous = None;
        for r in &csv.rows {
            let from = date_dmy(&r[2]).expect("sick_from");
            if year == 2023 {
                assert!(from.year() <= 2023, "{r:?}");
                if from.year() < 2023 {
                    // Carried over: still absent on 1 January.
                    let to = date_dmy(&r[3]);
                    assert!(
                        to.is_none_or(|to| to > NaiveDate::from_ymd_opt(2023, 1, 1).expect("d"))
                    );
                }
            } else {
                assert_eq!(from.year(), year, "{r:?}");
            }
            assert!(previous.is_none_or(|p| p <= from), "ordered by sick report");
            previous = Some(from);
            match date_dmy(&r[3]) {
                Some(to) => assert!(to >= from && to <= reference),
                None => running += 1,
            }
        }
    }
    assert!(running > 0, "some episodes still run on the reference date");
}

// ---------------------------------------------------------------------------
// Realism.

struct Observed {
    /// (bsn, kvk, start) → (end, sector)
    employments: HashMap<(String, String, NaiveDate), Option<NaiveDate>>,
    persons_by_year: HashMap<i32, HashSet<String>>,
    january: HashMap<i32, HashSet<String>>,
    birth: HashMap<String, NaiveDate>,
    rows: usize,
    flexible_rows: usize,
    women: usize,
    men: usize,
}

fn observe_payroll(dir: &Path) -> Observed {
    let mut o = Observed {
        employments: HashMap::new(),
        persons_by_year: HashMap::new(),
        january: HashMap::new(),
        birth: HashMap::new(),
        rows: 0,
        flexible_rows: 0,
        women: 0,
        men: 0,
    };
    for year in YEARS {
        let csv = read_csv(&dir.join(format!("pfzw_dienstverbanden_{year}.csv")), ';');
        for r in csv.rows {
            let start = date_iso(&r[12]).expect("start");
            o.employments
                .insert((r[0].clone(), r[1].clone(), start), date_iso(&r[13]));
            o.persons_by_year
                .entry(year)
                .or_default()
                .insert(r[0].clone());
            if r[2].ends_with("01") {
                o.january.entry(year).or_default().insert(r[0].clone());
            }
            o.birth
                .insert(r[0].clone(), date_iso(&r[3]).expect("birth"));
            o.rows += 1;
            o.flexible_rows += (r[6] != "VAST") as usize;
            o.women += (r[4] == "V") as usize;
            o.men += (r[4] == "M") as usize;
        }
    }
    o
}

fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    on.year() - birth.year() - i32::from((on.month(), on.day()) < (birth.month(), birth.day()))
}

/// Absence percentage per year computed from the files as a later stage
/// would: absence days × percentage over employed days.
fn absence_pct(dir: &Path, observed: &Observed) -> BTreeMap<i32, f64> {
    let reference = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
    let mut absent: BTreeMap<i32, f64> = BTreeMap::new();
    for year in YEARS {
        let csv = read_csv(
            &dir.join(format!("vernet_verzuimmeldingen_{year}.csv")),
            ';',
        );
        for r in csv.rows {
            let from = date_dmy(&r[2]).expect("from");
            let to = date_dmy(&r[3]).unwrap_or(reference.succ_opt().expect("day"));
            let pct: f64 = r[4].parse().expect("pct");
            for y in YEARS {
                let a = from.max(NaiveDate::from_ymd_opt(y, 1, 1).expect("d"));
                let b = to.min(NaiveDate::from_ymd_opt(y + 1, 1, 1).expect("d"));
                let days = (b - a).num_days().max(0) as f64;
                *absent.entry(y).or_default() += days * pct / 100.0;
            }
        }
    }
    let mut available: BTreeMap<i32, f64> = BTreeMap::new();
    for ((_, _, start), end) in &observed.employments {
        for y in YEARS {
            let a = (*start).max(NaiveDate::from_ymd_opt(y, 1, 1).expect("d"));
            let b = end
                .unwrap_or(reference)
                .min(NaiveDate::from_ymd_opt(y, 12, 31).expect("d"));
            *available.entry(y).or_default() += ((b - a).num_days() + 1).max(0) as f64;
        }
    }
    absent
        .iter()
        .map(|(y, a)| (*y, 100.0 * a / available[y]))
        .collect()
}

#[test]
fn marginals_are_realistic() {
    let (dir, _) = run(&config(5000, 21));
    let dir = dir.path();
    let o = observe_payroll(dir);

    for (year, pct) in absence_pct(dir, &o) {
        assert!((5.0..10.0).contains(&pct), "absence {year}: {pct:.2}%");
    }
    let flexible = o.flexible_rows as f64 / o.rows as f64;
    assert!(
        (0.10..0.25).contains(&flexible),
        "flexible share {flexible:.3}"
    );
    let women = o.women as f64 / o.rows as f64;
    let men = o.men as f64 / o.rows as f64;
    assert!(
        (0.80..0.88).contains(&women) && (0.11..0.19).contains(&men),
        "{women} {men}"
    );

    // Leaving the sector: employed in January 2023, no payroll in 2024.
    let jan = &o.january[&2023];
    let next = &o.persons_by_year[&2024];
    let left = jan.iter().filter(|b| !next.contains(*b)).count() as f64 / jan.len() as f64;
    assert!((0.06..0.15).contains(&left), "outflow {left:.3}");
    let joined = next
        .iter()
        .filter(|b| !o.persons_by_year[&2023].contains(*b))
        .count() as f64
        / o.january[&2024].len() as f64;
    assert!((0.08..0.16).contains(&joined), "inflow {joined:.3}");

    // IZZ coverage, lower among 25–35 year olds.
    let insured: HashSet<String> = read_csv(&dir.join("izz_verzekerden_2023.csv"), ',')
        .rows
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let workers = &o.persons_by_year[&2023];
    assert!(
        insured.iter().all(|b| workers.contains(b)),
        "insured are workers"
    );
    let coverage = insured.len() as f64 / workers.len() as f64;
    assert!(
        (0.20..0.40).contains(&coverage),
        "IZZ coverage {coverage:.3}"
    );
    let mid = NaiveDate::from_ymd_opt(2023, 7, 1).expect("date");
    let (mut young, mut young_insured, mut rest, mut rest_insured) = (0, 0, 0, 0);
    for b in workers {
        let age = age_on(o.birth[b], mid);
        if (25..=35).contains(&age) {
            young += 1;
            young_insured += insured.contains(b) as usize;
        } else {
            rest += 1;
            rest_insured += insured.contains(b) as usize;
        }
    }
    let young_rate = young_insured as f64 / young as f64;
    let rest_rate = rest_insured as f64 / rest as f64;
    assert!(
        young_rate < rest_rate - 0.08,
        "25–35: {young_rate:.3} vs {rest_rate:.3}"
    );

    // Care use only for the insured; claims at least one.
    let care = read_csv(&dir.join("izz_zorggebruik_2023.csv"), ',');
    assert!(care.rows.iter().all(|r| insured.contains(&r[0])));
    let users: HashSet<&String> = care.rows.iter().map(|r| &r[0]).collect();
    assert!(users.len() as f64 > 0.7 * insured.len() as f64);

    // About one in ten workers answers the survey.
    let respondents = read_monitor(&dir.join("izz_monitor_2023.parquet"));
    let rate = respondents.len() as f64 / workers.len() as f64;
    assert!((0.08..0.12).contains(&rate), "response {rate:.3}");
    assert!(respondents.iter().all(|r| workers.contains(&r.bsn)));
    let missing = respondents.iter().filter(|r| r.scales[0].is_none()).count();
    assert!(
        missing > 0 && missing < respondents.len() / 10,
        "some item non-response"
    );
}

#[test]
fn sector_absence_ordering_and_organisation_effects() {
    let model = Model::build(&ModelParams {
        persons: 30_000,
        orgs: 200,
        first_year: 2023,
        last_year: 2024,
        seed: 13,
    });
    let year = 2023;
    let (from, to) = (crate::calendar::jan1(year), crate::calendar::dec31(year));
    let n = model.orgs.len();
    let (mut absent, mut available, mut flexible, mut heads) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for (s, spell) in model.spells.iter().enumerate() {
        if !spell.overlaps(from, to) {
            continue;
        }
        let o = spell.org as usize;
        available[o] += f64::from(spell.end.min(to) - spell.start.max(from) + 1);
        heads[o] += 1.0;
        if spell.contract != crate::model::Contract::Vast {
            flexible[o] += 1.0;
        }
        for e in model.spell_episodes(s) {
            let end = e.recovered_on.min(model.reference_day + 1).min(to + 1);
            absent[o] += f64::from((end - e.sick_from.max(from)).max(0)) * f64::from(e.pct) / 100.0;
        }
    }
    let mut by_sector: HashMap<&str, (f64, f64)> = HashMap::new();
    for o in 0..n {
        let entry = by_sector.entry(model.orgs[o].sector.code()).or_default();
        entry.0 += absent[o];
        entry.1 += available[o];
    }
    let pct = |s: &str| 100.0 * by_sector[s].0 / by_sector[s].1;
    for high in ["VVT", "GHZ"] {
        for low in ["GGZ", "ZKH"] {
            assert!(
                pct(high) > pct(low),
                "{high} {:.2} vs {low} {:.2}",
                pct(high),
                pct(low)
            );
        }
    }
    let total = 100.0 * absent.iter().sum::<f64>() / available.iter().sum::<f64>();
    assert!((6.5..8.5).contains(&total), "sector absence {total:.2}");

    // Within a sector, organisations with more flexible contracts have more
    // absence.
    let orgs: Vec<usize> = (0..n)
        .filter(|&o| model.orgs[o].sector.code() == "VVT" && heads[o] >= 50.0)
        .collect();
    let xs: Vec<f64> = orgs.iter().map(|&o| flexible[o] / heads[o]).collect();
    let ys: Vec<f64> = orgs.iter().map(|&o| absent[o] / available[o]).collect();
    let r = correlation(&xs, &ys);
    assert!(
        orgs.len() >= 15 && r > 0.2,
        "{} VVT orgs, r = {r:.3}",
        orgs.len()
    );
}

fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>().sqrt();
    let sy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum::<f64>().sqrt();
    cov / (sx * sy)
}

#[test]
fn leaving_follows_age_care_use_and_conditions() {
    let model = Model::build(&ModelParams {
        persons: 40_000,
        orgs: 260,
        first_year: 2023,
        last_year: 2024,
        seed: 17,
    });
    let jan1 = crate::calendar::jan1(2023);
    let dec31 = crate::calendar::dec31(2023);
    // Employed on 1 January 2023 → did they leave the sector in 2023?
    let mut groups: HashMap<&str, (f64, f64)> = HashMap::new();
    for (p, person) in model.persons.iter().enumerate() {
        let Some(spell) = model
            .person_spells
            .get(p)
            .iter()
            .map(|&s| &model.spells[s as usize])
            .find(|s| s.start <= jan1 && s.end >= jan1)
        else {
            continue;
        };
        let left = person.exit_day != OPEN && person.exit_day <= dec31;
        let age = crate::calendar::age_years(person.birth, jan1);
        let flags = model.care(p, 2023);
        let adverse = model.fwg[spell.fwg as usize].adverse_conditions;
        let mut count = |group: &'static str| {
            let entry = groups.entry(group).or_default();
            entry.0 += f64::from(u8::from(left));
            entry.1 += 1.0;
        };
        count("all");
        if (25.0..36.0).contains(&age) {
            count("25-35");
        } else if (36.0..55.0).contains(&age) {
            count("36-54");
        }
        if flags & (care::GGZ_HEAVY | care::FYSIO_HEAVY) != 0 {
            count("heavy ggz/fysio");
        } else if flags & (care::GGZ | care::FYSIO) == 0 {
            count("no ggz/fysio");
        }
        if adverse >= 3 {
            count("adverse");
        } else if adverse <= 1 {
            count("benign");
        }
    }
    let rate = |g: &str| groups[g].0 / groups[g].1;
    assert!(
        (0.08..0.13).contains(&rate("all")),
        "exit rate {:.3}",
        rate("all")
    );
    assert!(
        rate("25-35") > 1.4 * rate("36-54"),
        "{:.3} vs {:.3}",
        rate("25-35"),
        rate("36-54")
    );
    assert!(rate("heavy ggz/fysio") > 1.3 * rate("no ggz/fysio"));
    assert!(rate("adverse") > rate("benign"));
}

#[test]
fn survey_reflects_absence_and_leaving() {
    let (dir, _) = run(&config(12_000, 19));
    let dir = dir.path();
    let o = observe_payroll(dir);
    let reference = NaiveDate::from_ymd_opt(2024, 12, 31).expect("date");
    let mut absence_days: HashMap<String, i64> = HashMap::new();
    let csv = read_csv(&dir.join("vernet_verzuimmeldingen_2023.csv"), ';');
    for r in csv.rows {
        let from = date_dmy(&r[2])
            .expect("from")
            .max(NaiveDate::from_ymd_opt(2023, 1, 1).expect("d"));
        let to = date_dmy(&r[3])
            .unwrap_or(reference)
            .min(NaiveDate::from_ymd_opt(2024, 1, 1).expect("d"));
        *absence_days.entry(r[0].clone()).or_default() += (to - from).num_days().max(0);
    }
    let respondents = read_monitor(&dir.join("izz_monitor_2023.parquet"));
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len() as f64;
    let exhaustion = |long: bool| {
        mean(
            respondents
                .iter()
                .filter(|r| (absence_days.get(&r.bsn).copied().unwrap_or(0) >= 30) == long)
                .filter_map(|r| r.scales[1])
                .collect(),
        )
    };
    assert!(
        exhaustion(true) > exhaustion(false) + 0.3,
        "{} vs {}",
        exhaustion(true),
        exhaustion(false)
    );
    let in_2024 = &o.persons_by_year[&2024];
    let intention = |leaves: bool| {
        mean(
            respondents
                .iter()
                .filter(|r| in_2024.contains(&r.bsn) != leaves)
                .filter_map(|r| r.scales[6])
                .collect(),
        )
    };
    assert!(
        intention(true) > intention(false) + 0.4,
        "{} vs {}",
        intention(true),
        intention(false)
    );
    let reported = |absent: bool| {
        let group: Vec<&MonitorRow> = respondents
            .iter()
            .filter(|r| absence_days.contains_key(&r.bsn) == absent)
            .collect();
        group.iter().filter(|r| r.absent == Some(true)).count() as f64 / group.len() as f64
    };
    assert!(reported(true) > 0.8 && reported(false) < 0.1);
    assert!(
        respondents
            .iter()
            .all(|r| r.absent == Some(true) || r.work_related.is_none())
    );
}

#[test]
fn annual_reports_follow_the_payroll() {
    let (dir, _) = run(&config(3000, 23));
    let dir = dir.path();
    let payroll = read_csv(&dir.join("pfzw_dienstverbanden_2023.csv"), ';');
    let mut wages: HashMap<u32, f64> = HashMap::new();
    for r in &payroll.rows {
        let kvk: u32 = r[1].parse().expect("kvk");
        *wages.entry(kvk).or_default() +=
            decimal(&r[8], ',').expect("wage") + decimal(&r[9], ',').expect("ort");
    }
    let reports = read_csv(&dir.join("intrakoop_jaarverslagen_2023.csv"), ';');
    assert_eq!(reports.rows.len(), wages.len(), "one row per employer");
    let mut previous = 0u32;
    for r in &reports.rows {
        let kvk: u32 = r[0].parse().expect("kvk");
        assert!(kvk > previous, "ordered by KvK");
        previous = kvk;
        let personnel = decimal(&r[3], ',').expect("personnel") * 1000.0;
        let ratio = personnel / wages[&kvk];
        assert!(
            (1.2..2.2).contains(&ratio),
            "personnel costs {ratio:.2}× gross payroll"
        );
        let revenue = decimal(&r[2], ',').expect("revenue") * 1000.0;
        assert!(revenue > personnel);
    }
}

// ---------------------------------------------------------------------------
// Defects.

#[test]
fn planted_defects_are_exact_isolated_and_documented() {
    let mut cfg = config(1500, 29);
    let (clean_dir, _) = run(&cfg);
    cfg.defects = true;
    let (_dir, summary) = run(&cfg);

    // The summary is the documented plan, in the last year's files only.
    for (source, plan) in DEFECT_PLAN {
        let mut reported: Vec<(&str, &str, u64)> = summary
            .defects
            .iter()
            .filter(|d| d.source == source)
            .map(|d| (d.rule.as_str(), d.column.as_str(), d.count))
            .collect();
        reported.sort();
        assert_eq!(reported, plan.to_vec(), "{source}");
    }
    for defect in &summary.defects {
        let name = defect.file.file_name().expect("name").to_string_lossy();
        assert!(name.contains("2024"), "{name}");
    }

    for file in &summary.files {
        let violations = file_violations(&file.path, &file.source);
        let mut found: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut defect_lines = Vec::new();
        for (i, v) in violations.iter().enumerate() {
            assert!(
                v.len() <= 1,
                "{:?} row {i} breaks more than one rule: {v:?}",
                file.path
            );
            if let Some(&violation) = v.first() {
                *found.entry(violation).or_default() += 1;
                defect_lines.push(i);
            }
        }
        let expected: BTreeMap<(&str, &str), u64> = summary
            .defects
            .iter()
            .filter(|d| d.file == file.path)
            .map(|d| ((d.rule.as_str(), d.column.as_str()), d.count))
            .collect();
        assert_eq!(found, expected, "{:?}", file.path);
        if let (Some(first), Some(last)) = (defect_lines.first(), defect_lines.last()) {
            let rows = violations.len();
            assert!(*first < rows * 9 / 10 && *last > 0, "spread over the file");
        }

        // Removing the defect rows gives back the clean delivery.
        let clean_path = clean_dir.path().join(file.path.file_name().expect("name"));
        let defect_set: HashSet<usize> = defect_lines.iter().copied().collect();
        if file.source == "izz_monitor" {
            let good: Vec<MonitorRow> = read_monitor(&file.path)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !defect_set.contains(i))
                .map(|(_, r)| r)
                .collect();
            assert!(good == read_monitor(&clean_path), "{:?}", file.path);
            continue;
        }
        let spec = CSV_SOURCES
            .iter()
            .find(|s| s.name == file.source)
            .expect("spec");
        let csv = read_csv(&file.path, spec.delimiter);
        let good: Vec<&String> = csv
            .lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !defect_set.contains(i))
            .map(|(_, l)| l)
            .collect();
        let clean = read_csv(&clean_path, spec.delimiter);
        assert!(
            good.iter().copied().eq(clean.lines.iter()),
            "{:?}",
            file.path
        );

        // Each defect row is the next good row with one field broken.
        if file.source != "fwg_functiekenmerken" {
            for &i in &defect_lines {
                let next = (i + 1..csv.rows.len())
                    .find(|j| !defect_set.contains(j))
                    .expect("defects precede a good row");
                let differing = csv.rows[i]
                    .iter()
                    .zip(&csv.rows[next])
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(differing, 1, "{:?}: {:?}", file.path, csv.rows[i]);
            }
        }
    }
}

#[test]
fn summary_lists_every_file_with_its_row_count() {
    let mut cfg = config(800, 31);
    cfg.defects = true;
    let (dir, summary) = run(&cfg);
    let listed: Vec<PathBuf> = summary.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(listed.len(), file_names(dir.path()).len());
    for file in &summary.files {
        let rows = if file.source == "izz_monitor" {
            read_monitor(&file.path).len()
        } else {
            std::fs::read_to_string(&file.path)
                .expect("csv")
                .lines()
                .count()
                - 1
        };
        assert_eq!(rows as u64, file.rows, "{:?}", file.path);
    }
    let json = serde_json::to_value(&summary).expect("serialisable");
    assert!(json["files"].as_array().is_some_and(|f| f.len() == 13));
}
