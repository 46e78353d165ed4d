//! A realistic run of the Preventieplan pipeline over a care sector of
//! about 1.6 million employees, for tests, screenshots and documentation.
//!
//! The numbers are made up but shaped like the sector: big nursing-home
//! and hospital sectors, few under-25s insured with IZZ, a survey that
//! reaches about one employee in nine. They come from fixed formulas, not
//! a random generator, so the example is the same on every machine.

use std::collections::BTreeMap;

use crate::model::{
    CoverageRow, OrganisationSummary, OverlapRow, PersonSummary, QuasiIdentifierRow, RecipientRow,
    RejectRow, RunReport, SourceRow, TableRow,
};

/// Sector, payroll persons in 2024, and how much younger than average its
/// staff is (shifts persons from the oldest to the youngest band).
const SECTORS: [(&str, f64, f64); 8] = [
    ("Verpleeg- & verzorgingshuizen", 486_000.0, 0.00),
    ("Ziekenhuizen", 318_000.0, 0.02),
    ("Gehandicaptenzorg", 184_000.0, 0.01),
    ("Kinderopvang", 112_000.0, 0.08),
    ("GGZ", 96_000.0, -0.01),
    ("Sociaal werk", 71_000.0, 0.00),
    ("Huisartsenzorg", 46_000.0, -0.02),
    ("Jeugdzorg", 44_000.0, 0.03),
];

/// Age band, its share of a sector, and the share of its persons with
/// absence, insured with IZZ, and responding to the survey.
const BANDS: [(&str, f64, f64, f64, f64); 5] = [
    ("<25", 0.12, 0.52, 0.27, 0.06),
    ("25-34", 0.22, 0.47, 0.49, 0.09),
    ("35-44", 0.20, 0.44, 0.58, 0.11),
    ("45-54", 0.21, 0.43, 0.64, 0.13),
    ("55+", 0.25, 0.46, 0.69, 0.12),
];

/// The person-level sources in the order the linkage report names them.
const PAYROLL: &str = "pfzw_dienstverbanden";
const ABSENCE: &str = "vernet_verzuimmeldingen";
const INSURED: &str = "izz_verzekerden";
const CLAIMS: &str = "izz_zorggebruik";
const SURVEY: &str = "izz_monitor";

impl RunReport {
    /// A complete, realistic report (see the module documentation of
    /// `example.rs`): every section has something to show.
    pub fn example() -> RunReport {
        RunReport {
            pipeline: "preventieplan".into(),
            pipeline_version: "1.3.0".into(),
            period: "2023-2024".into(),
            release_id: "preventieplan-2024-r2".into(),
            reference_date: "2024-12-31".into(),
            keys: vec![
                "stage2-preventieplan v1".into(),
                "release-preventieplan v2".into(),
            ],
            sources: sources(),
            rejects: rejects(),
            coverage: coverage(),
            overlap: overlap(),
            person: person(),
            organisation: organisation(),
            tables: tables(),
        }
    }
}

fn sources() -> Vec<SourceRow> {
    let years = || vec!["2023".to_string(), "2024".to_string()];
    let row = |name: &str, rows_read: u64, rejected: u64, unit: &str, linked, not_linked, dups| {
        SourceRow {
            name: name.into(),
            periods: years(),
            rows_read,
            rows_accepted: rows_read - rejected,
            rows_rejected: rejected,
            unit: unit.into(),
            linked,
            not_linked,
            duplicates: dups,
        }
    };
    let same_year = "person-years found on the payroll of the same year";
    let mut fwg = row(
        "fwg_functiekenmerken",
        1_236,
        0,
        "function codes; linked: used on the payroll, not linked: used on the payroll but missing from the table",
        1_152,
        14,
        0,
    );
    fwg.periods = vec!["2024".into()];
    vec![
        row(
            PAYROLL,
            19_402_118,
            1_204,
            "person-years (the payroll is the backbone)",
            2_689_574,
            0,
            3_311,
        ),
        row(
            ABSENCE,
            1_712_406,
            873,
            "person-years with absence, found on the same year's payroll",
            1_221_040,
            18_230,
            22_118,
        ),
        row(INSURED, 1_502_993, 95, same_year, 1_417_332, 61_027, 1_118),
        row(CLAIMS, 4_880_512, 0, same_year, 1_160_220, 55_400, 2_004),
        row(SURVEY, 342_871, 612, same_year, 329_870, 7_385, 4_950),
        fwg,
        row(
            "intrakoop_jaarverslagen",
            4_210,
            0,
            "organisation-years with payroll that year",
            3_640,
            412,
            38,
        ),
    ]
}

fn rejects() -> Vec<RejectRow> {
    let r = |source: &str, period: &str, column: &str, rule: &str, rows| RejectRow {
        source: source.into(),
        period: period.into(),
        column: column.into(),
        rule: rule.into(),
        rows,
    };
    vec![
        r(PAYROLL, "2023", "bsn", "invalid_bsn", 612),
        r(PAYROLL, "2024", "bsn", "invalid_bsn", 498),
        r(PAYROLL, "2024", "end_date", "date_order", 94),
        r(ABSENCE, "2023", "sick_from", "invalid_date", 301),
        r(ABSENCE, "2024", "absence_pct", "out_of_range", 412),
        r(ABSENCE, "2024", "bsn", "invalid_bsn", 160),
        r(INSURED, "2024", "bsn", "invalid_bsn", 95),
        r(SURVEY, "2023", "birth_year", "too_young", 344),
        r(SURVEY, "2024", "birth_year", "too_young", 268),
    ]
}

fn share(n: f64, s: f64) -> u64 {
    (n * s.clamp(0.0, 1.0)).round() as u64
}

fn coverage() -> Vec<CoverageRow> {
    let mut rows = Vec::new();
    for (year, growth) in [(2023, 0.982), (2024, 1.0)] {
        for (si, &(sector, persons, young)) in SECTORS.iter().enumerate() {
            // Childcare staff are rarely insured with IZZ: it is a care
            // sector insurer, and the coverage chart should show such gaps.
            let izz_factor = if sector == "Kinderopvang" { 0.35 } else { 1.0 };
            let sector_tilt = (si as f64 - 3.5) * 0.006;
            for (bi, &(band, band_share, absence, insured, survey)) in BANDS.iter().enumerate() {
                let tilt = match bi {
                    0 => young,
                    4 => -young,
                    _ => 0.0,
                };
                let n = persons * growth * (band_share + tilt);
                let payroll = n.round() as u64;
                let insured_share = insured * izz_factor + sector_tilt;
                rows.push(CoverageRow {
                    year,
                    sector: sector.into(),
                    age_band: band.into(),
                    payroll_persons: payroll,
                    absence_persons: share(n, absence + sector_tilt),
                    izz_insured_persons: share(n, insured_share),
                    care_use_persons: share(n, insured_share * 0.83),
                    survey_persons: share(n, survey + sector_tilt / 2.0),
                });
            }
        }
    }
    rows
}

fn overlap() -> Vec<OverlapRow> {
    let combos: [(&[&str], u64); 14] = [
        (&[PAYROLL, ABSENCE, INSURED, CLAIMS], 328_933),
        (&[PAYROLL, INSURED, CLAIMS], 304_217),
        (&[PAYROLL], 260_496),
        (&[PAYROLL, ABSENCE], 246_445),
        (&[PAYROLL, ABSENCE, INSURED, CLAIMS, SURVEY], 54_323),
        (&[PAYROLL, INSURED], 50_498),
        (&[PAYROLL, ABSENCE, INSURED], 43_338),
        (&[PAYROLL, INSURED, CLAIMS, SURVEY], 39_364),
        (&[PAYROLL, ABSENCE, SURVEY], 12_275),
        (&[PAYROLL, SURVEY], 11_771),
        (&[INSURED, CLAIMS], 9_852),
        (&[PAYROLL, ABSENCE, INSURED, SURVEY], 5_568),
        (&[SURVEY], 2_954),
        (&[INSURED, CLAIMS, SURVEY], 1_147),
    ];
    let mut rows = Vec::new();
    for (year, growth) in [(2023, 0.982), (2024, 1.0)] {
        for (sources, persons) in combos {
            rows.push(OverlapRow {
                year,
                sources: sources.iter().map(|s| s.to_string()).collect(),
                persons: (persons as f64 * growth).round() as u64,
            });
        }
    }
    rows
}

fn person() -> PersonSummary {
    let q = |column: &str, level_name: &str, level, levels, values_suppressed, values_missing| {
        QuasiIdentifierRow {
            column: column.into(),
            level_name: level_name.into(),
            level,
            levels,
            values_suppressed,
            values_missing,
        }
    };
    PersonSummary {
        k: 10,
        smallest_class: 11,
        rows_in: 337_255,
        rows_released: 337_255,
        rows_locally_suppressed: 10_118,
        rows_dropped: 0,
        max_suppression_pct: 5.0,
        information_loss: 0.3571,
        quasi_identifiers: vec![
            q("age", "5-year bands", 1, 4, 10_118, 0),
            q("sex", "as linked", 0, 2, 10_118, 0),
            q("postcode4", "suppressed", 3, 4, 321_540, 15_715),
            q("sector", "as linked", 0, 2, 9_984, 15_715),
            q("fwg_function_code", "suppressed", 2, 3, 305_006, 32_249),
            q("organisation_size", "size classes", 0, 3, 9_984, 15_715),
            q("contract_type", "as linked", 0, 2, 9_984, 15_715),
        ],
        columns_withheld: vec!["fwg_level".into()],
        recipients: vec![
            RecipientRow {
                recipient: "pfzw".into(),
                assumption: "delivered the payroll".into(),
                counted_in: "workforce (k-map)".into(),
                knows: vec!["year".into(), "age".into(), "sex".into()],
                persons: 331_000,
                at_risk_before: 106_000,
                at_risk_after: 0,
                smallest_class: 10,
            },
            RecipientRow {
                recipient: "izz".into(),
                assumption: "runs the survey: knows who responded".into(),
                counted_in: "released persons".into(),
                knows: vec!["year".into(), "ggz_any".into()],
                persons: 331_000,
                at_risk_before: 3_100,
                at_risk_after: 0,
                smallest_class: 10,
            },
        ],
    }
}

fn organisation() -> OrganisationSummary {
    let suppressed: BTreeMap<String, u64> = [
        ("absence_pct", 41),
        ("episode_frequency", 41),
        ("ggz_share_insured", 212),
        ("izz_coverage", 0),
        ("mean_irregularity_share", 17),
        ("mean_mental_load", 64),
        ("mean_physical_load", 64),
        ("physio_share_insured", 212),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    OrganisationSummary {
        min_persons: 10,
        k: 10,
        rows_in: 3_912,
        rows_released: 3_604,
        rows_left_out: 308,
        suppressed,
    }
}

fn tables() -> Vec<TableRow> {
    let t = |name: &str, label: &str, status: &[(&str, u64)]| TableRow {
        name: name.into(),
        label: label.into(),
        cells: status.iter().map(|(_, n)| n).sum(),
        status: status.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
    };
    vec![
        t(
            "leavers_sector_age_contract",
            "Leavers by sector × age band × contract",
            &[
                ("safe", 171),
                ("primary_threshold", 9),
                ("secondary", 14),
                ("empty", 22),
            ],
        ),
        t(
            "absence_year_sector_size",
            "Absence percentage by year × sector × organisation size",
            &[
                ("safe", 148),
                ("primary_dominance", 6),
                ("primary_p_percent", 3),
                ("primary_threshold", 4),
                ("secondary", 19),
                ("empty", 8),
            ],
        ),
        t(
            "ggz_use_sector_age",
            "GGZ use of insured respondents by sector × age band",
            &[("safe", 49), ("primary_threshold", 2), ("secondary", 3)],
        ),
        t(
            "absence_days_year_sector_contract",
            "Absence days by year × sector × contract",
            &[("safe", 135)],
        ),
        t(
            "care_costs_sector_age",
            "GGZ and physiotherapy costs by sector × age band",
            &[
                ("safe", 38),
                ("primary_dominance", 4),
                ("primary_threshold", 2),
                ("secondary", 10),
            ],
        ),
    ]
}
