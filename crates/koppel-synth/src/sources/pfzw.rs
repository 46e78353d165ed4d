//! PFZW payroll months: one row per person × employer × month with salary.
//!
//! Rows are grouped by employer, then person, then month, as a pension fund
//! receives them per employer. A month in which employment starts or ends
//! pays a pro-rated wage. On-call work has a contract-hours figure that
//! varies from month to month with the hours actually worked; the
//! irregularity allowance varies with the rota and is zero in some months.
//!
//! This is the hot path at sector scale (about 18 million rows a year), so
//! the fields of a row that do not change between months are formatted once
//! per employment and copied.

use super::{Target, Written};
use crate::SynthError;
use crate::calendar::{civil_from_days, dec31, jan1, month_first, month_last};
use crate::defects::{DefectKind, Plan};
use crate::fmt::{cents, push_date_iso, push_fixed, push_padded, push_period, push_uint};
use crate::ident::corrupt_bsn;
use crate::model::{Contract, Model, OPEN, Sex};
use crate::sector::Sector;
use crate::sink::CsvSink;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(crate) const HEADER: [&str; 14] = [
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
];
const DELIMITER: u8 = b';';
const DECIMAL: u8 = b',';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    BsnElevenTest,
    BsnZeros,
    KvkNineDigits,
    KvkLetters,
    SectorMissing,
    SexUnknown,
    HoursAbove60,
    BirthDateFeb31,
    TooYoung,
    WageNotDecimal,
    FwgCodeLetter,
}

impl DefectKind for Defect {
    fn rule(self) -> &'static str {
        match self {
            Defect::BsnElevenTest | Defect::BsnZeros => "invalid_bsn",
            Defect::KvkNineDigits | Defect::KvkLetters => "invalid_kvk",
            Defect::SectorMissing => "required",
            Defect::SexUnknown => "not_in_enum",
            Defect::HoursAbove60 => "out_of_range",
            Defect::BirthDateFeb31 => "invalid_date",
            Defect::TooYoung => "too_young",
            Defect::WageNotDecimal => "invalid_decimal",
            Defect::FwgCodeLetter => "invalid_code",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Defect::BsnElevenTest | Defect::BsnZeros => "bsn",
            Defect::KvkNineDigits | Defect::KvkLetters => "employer_kvk",
            Defect::SectorMissing => "sector",
            Defect::SexUnknown => "sex",
            Defect::HoursAbove60 => "hours_per_week",
            Defect::BirthDateFeb31 | Defect::TooYoung => "birth_date",
            Defect::WageNotDecimal => "gross_monthly_wage",
            Defect::FwgCodeLetter => "fwg_function_code",
        }
    }
}

pub(crate) const PLAN: [(Defect, u32); 11] = [
    (Defect::BsnElevenTest, 3),
    (Defect::BsnZeros, 2),
    (Defect::KvkNineDigits, 1),
    (Defect::KvkLetters, 1),
    (Defect::SectorMissing, 2),
    (Defect::SexUnknown, 2),
    (Defect::HoursAbove60, 2),
    (Defect::BirthDateFeb31, 2),
    (Defect::TooYoung, 2),
    (Defect::WageNotDecimal, 1),
    (Defect::FwgCodeLetter, 1),
];

/// One payroll row with typed values; used for defect rows (copies of the
/// next good row with one field broken) and to check the fast path.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub bsn: u32,
    pub kvk: u32,
    pub year: i32,
    pub month: u32,
    pub birth: i32,
    pub sex: Sex,
    pub postcode: u16,
    pub contract: Contract,
    pub hours_centi: u32,
    pub wage_cents: i64,
    pub ort_cents: i64,
    pub fwg_code: Option<u16>,
    pub sector: Sector,
    pub start: i32,
    pub end: i32,
}

/// Writes a row field by field, breaking the field `defect` names.
pub(crate) fn write_row(
    buf: &mut Vec<u8>,
    row: &Row,
    defect: Option<Defect>,
    rng: &mut ChaCha8Rng,
) {
    let d = DELIMITER;
    match defect {
        Some(Defect::BsnElevenTest) => push_padded(buf, u64::from(corrupt_bsn(row.bsn, rng)), 9),
        Some(Defect::BsnZeros) => buf.extend_from_slice(b"000000000"),
        _ => push_padded(buf, u64::from(row.bsn), 9),
    }
    buf.push(d);
    match defect {
        Some(Defect::KvkNineDigits) => {
            buf.push(b'1');
            push_padded(buf, u64::from(row.kvk), 8);
        }
        Some(Defect::KvkLetters) => {
            buf.extend_from_slice(b"KVK");
            push_padded(buf, u64::from(row.kvk % 100_000), 5);
        }
        _ => push_padded(buf, u64::from(row.kvk), 8),
    }
    buf.push(d);
    push_period(buf, row.year, row.month);
    buf.push(d);
    match defect {
        Some(Defect::BirthDateFeb31) => {
            let (year, _, _) = civil_from_days(row.birth);
            push_padded(buf, year as u64, 4);
            buf.extend_from_slice(if rng.random_bool(0.5) {
                b"-02-31"
            } else {
                b"-02-30"
            });
        }
        Some(Defect::TooYoung) => {
            // Ten years old in the period: a real date, clearly under 14.
            let day = rng.random_range(1..=28);
            let birth = crate::calendar::days_from_civil(row.year - 10, row.month, day);
            push_date_iso(buf, birth);
        }
        _ => push_date_iso(buf, row.birth),
    }
    buf.push(d);
    match defect {
        Some(Defect::SexUnknown) => buf.push(b'Q'),
        _ => buf.extend_from_slice(row.sex.code().as_bytes()),
    }
    buf.push(d);
    if row.postcode != 0 {
        push_uint(buf, u64::from(row.postcode));
    }
    buf.push(d);
    buf.extend_from_slice(row.contract.code().as_bytes());
    buf.push(d);
    match defect {
        Some(Defect::HoursAbove60) => {
            push_fixed(buf, rng.random_range(6001..=9900), 2, DECIMAL);
        }
        _ => push_fixed(buf, i64::from(row.hours_centi), 2, DECIMAL),
    }
    buf.push(d);
    match defect {
        Some(Defect::WageNotDecimal) => push_fixed(buf, row.wage_cents, 2, b'x'),
        _ => push_fixed(buf, row.wage_cents, 2, DECIMAL),
    }
    buf.push(d);
    push_fixed(buf, row.ort_cents, 2, DECIMAL);
    buf.push(d);
    match (defect, row.fwg_code) {
        (Some(Defect::FwgCodeLetter), code) => {
            let mut digits = Vec::with_capacity(4);
            push_padded(&mut digits, u64::from(code.unwrap_or(1234)), 4);
            digits[2] = b'A';
            buf.extend_from_slice(&digits);
        }
        (_, Some(code)) => push_padded(buf, u64::from(code), 4),
        (_, None) => {}
    }
    buf.push(d);
    if defect != Some(Defect::SectorMissing) {
        buf.extend_from_slice(row.sector.code().as_bytes());
    }
    buf.push(d);
    push_date_iso(buf, row.start);
    buf.push(d);
    if row.end != OPEN {
        push_date_iso(buf, row.end);
    }
}

/// The employments with a payroll row in `year`, in file order: by employer,
/// then person, then start.
pub(crate) fn employments_in_year(model: &Model, year: i32) -> Vec<u32> {
    let (from, to) = (jan1(year), dec31(year));
    let mut keyed: Vec<(u32, u32, i32, u32)> = model
        .spells
        .iter()
        .enumerate()
        .filter(|(_, s)| s.overlaps(from, to))
        .map(|(i, s)| (s.org, s.person, s.start, i as u32))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|k| k.3).collect()
}

/// Months (1–12) of `year` in which an employment from `start` to `end` has
/// at least one day.
pub(crate) fn months_employed(year: i32, start: i32, end: i32) -> std::ops::RangeInclusive<u32> {
    let first = if start < jan1(year) {
        1
    } else {
        civil_from_days(start).1
    };
    let last = if end > dec31(year) {
        12
    } else {
        civil_from_days(end).1
    };
    first..=last
}

/// The share of the month's days employed: first and last months pay pro rata.
pub(crate) fn month_fraction(year: i32, month: u32, start: i32, end: i32) -> f64 {
    let (first, last) = (month_first(year, month), month_last(year, month));
    let days = f64::from(end.min(last) - start.max(first) + 1);
    days / f64::from(last - first + 1)
}

/// Expected irregularity allowance as a share of the wage, given the draw in
/// [`draw_ort`]: zero one month in ten, otherwise 0.6–1.4 times the share.
pub(crate) const ORT_EXPECTATION: f64 = 0.9;

fn draw_ort(rng: &mut ChaCha8Rng, wage_cents: i64, share: f32) -> i64 {
    if share <= 0.0 || rng.random_bool(0.1) {
        return 0;
    }
    let factor = f64::from(share) * rng.random_range(0.6..1.4);
    (wage_cents as f64 * factor).round() as i64
}

/// Weekly hours of an on-call worker in one month: around the usual level.
fn draw_oncall_hours(rng: &mut ChaCha8Rng, typical_centi: u16) -> u32 {
    let hours = f64::from(typical_centi) * rng.random_range(0.2..1.8);
    (hours.round() as u32).max(50)
}

pub(crate) fn write(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let year = target.year;
    let spells = employments_in_year(model, year);
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        let good_rows: u64 = spells
            .iter()
            .map(|&s| {
                let spell = &model.spells[s as usize];
                months_employed(year, spell.start, spell.end).count() as u64
            })
            .sum();
        Plan::spread(&PLAN, good_rows, 0, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut rng = target.rng();
    let mut sink = CsvSink::create(&target.path, DELIMITER, &HEADER)?;
    let mut head = Vec::with_capacity(32);
    let mut middle = Vec::with_capacity(64);
    let mut tail = Vec::with_capacity(64);
    let mut whole = Vec::with_capacity(160);
    let mut good: u64 = 0;
    for &s in &spells {
        let spell = &model.spells[s as usize];
        let person = &model.persons[spell.person as usize];
        let org = &model.orgs[spell.org as usize];
        let fwg_code = person
            .fwg_reported
            .then(|| model.fwg[spell.fwg as usize].code);
        let template = Row {
            bsn: person.bsn,
            kvk: org.kvk,
            year,
            month: 1,
            birth: person.birth,
            sex: person.sex,
            postcode: person.postcode,
            contract: spell.contract,
            hours_centi: u32::from(spell.hours_centi),
            wage_cents: 0,
            ort_cents: 0,
            fwg_code,
            sector: org.sector,
            start: spell.start,
            end: spell.end,
        };
        // Split the formatted row around the fields that vary by month. (A
        // row written without a defect draws nothing from the defect stream.)
        whole.clear();
        write_row(&mut whole, &template, None, &mut defect_rng);
        let fields: Vec<&[u8]> = whole.split(|&b| b == DELIMITER).collect();
        head.clear();
        head.extend_from_slice(fields[0]);
        head.push(DELIMITER);
        head.extend_from_slice(fields[1]);
        head.push(DELIMITER);
        middle.clear();
        for field in &fields[3..7] {
            middle.push(DELIMITER);
            middle.extend_from_slice(field);
        }
        middle.push(DELIMITER);
        tail.clear();
        for field in &fields[10..] {
            tail.push(DELIMITER);
            tail.extend_from_slice(field);
        }

        let full_time = model.full_time_wage(spell, year);
        let oncall = spell.contract == Contract::Oproep;
        for month in months_employed(year, spell.start, spell.end) {
            let hours_centi = if oncall {
                draw_oncall_hours(&mut rng, spell.hours_centi)
            } else {
                u32::from(spell.hours_centi)
            };
            let fraction = month_fraction(year, month, spell.start, spell.end);
            let wage_cents = if fraction >= 1.0 {
                model.monthly_wage_cents(full_time, hours_centi)
            } else {
                cents(full_time * f64::from(hours_centi) / 3600.0 * fraction)
            };
            let ort_cents = draw_ort(&mut rng, wage_cents, spell.ort_share);
            while let Some(defect) = plan.due(good) {
                let row = Row {
                    month,
                    hours_centi,
                    wage_cents,
                    ort_cents,
                    ..template.clone()
                };
                write_row(sink.line(), &row, Some(defect), &mut defect_rng);
                sink.end_row()?;
            }
            let buf = sink.line();
            buf.extend_from_slice(&head);
            push_period(buf, year, month);
            buf.extend_from_slice(&middle);
            push_fixed(buf, i64::from(hours_centi), 2, DECIMAL);
            buf.push(DELIMITER);
            push_fixed(buf, wage_cents, 2, DECIMAL);
            buf.push(DELIMITER);
            push_fixed(buf, ort_cents, 2, DECIMAL);
            buf.extend_from_slice(&tail);
            sink.end_row()?;
            good += 1;
        }
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}
