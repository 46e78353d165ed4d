//! IZZ, the collective health insurer for care workers: who was insured in a
//! year, and their claims per care type.
//!
//! Membership is a person-level trait (about 30% of the workforce, fewer
//! among 25–35 year olds). Which care types a person used in a year comes
//! from the model, because the same flags drive leaving the sector; claim
//! counts and costs are drawn here.

use super::{Target, Written};
use crate::SynthError;
use crate::defects::{DefectKind, Plan};
use crate::fmt::{cents, push_fixed, push_padded, push_uint};
use crate::ident::corrupt_bsn;
use crate::model::{Model, care};
use crate::sink::CsvSink;
use rand::distr::Distribution;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal};

pub(crate) const INSURED_HEADER: [&str; 2] = ["bsn", "jaar"];
pub(crate) const CARE_USE_HEADER: [&str; 5] = ["bsn", "jaar", "zorgsoort", "declaraties", "kosten"];
const DELIMITER: u8 = b',';
const DECIMAL: u8 = b'.';

/// Persons insured with IZZ in `year` (members employed in the sector at
/// some point of the year), ordered by BSN as the insurer's extract is.
pub(crate) fn insured_in(model: &Model, year: i32) -> Vec<u32> {
    let mut insured: Vec<u32> = model
        .persons_employed_in(year)
        .into_iter()
        .filter(|&p| model.persons[p as usize].izz_member)
        .collect();
    insured.sort_by_key(|&p| model.persons[p as usize].bsn);
    insured
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsuredDefect {
    BsnElevenTest,
    YearNotInteger,
}

impl DefectKind for InsuredDefect {
    fn rule(self) -> &'static str {
        match self {
            InsuredDefect::BsnElevenTest => "invalid_bsn",
            InsuredDefect::YearNotInteger => "invalid_integer",
        }
    }

    fn column(self) -> &'static str {
        match self {
            InsuredDefect::BsnElevenTest => "bsn",
            InsuredDefect::YearNotInteger => "year",
        }
    }
}

pub(crate) const INSURED_PLAN: [(InsuredDefect, u32); 2] = [
    (InsuredDefect::BsnElevenTest, 1),
    (InsuredDefect::YearNotInteger, 1),
];

fn push_bsn(buf: &mut Vec<u8>, bsn: u32, corrupt: bool, rng: &mut ChaCha8Rng) {
    let bsn = if corrupt { corrupt_bsn(bsn, rng) } else { bsn };
    push_padded(buf, u64::from(bsn), 9);
}

/// `2024` → `20x4`: a year a spreadsheet mangled.
fn push_mangled_year(buf: &mut Vec<u8>, year: i32) {
    let mut digits = Vec::with_capacity(4);
    push_padded(&mut digits, year as u64, 4);
    digits[2] = b'x';
    buf.extend_from_slice(&digits);
}

pub(crate) fn write_insured(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let year = target.year;
    let insured = insured_in(model, year);
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        Plan::spread(&INSURED_PLAN, insured.len() as u64, 0, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut sink = CsvSink::create(&target.path, DELIMITER, &INSURED_HEADER)?;
    for (good, &p) in insured.iter().enumerate() {
        let bsn = model.persons[p as usize].bsn;
        while let Some(defect) = plan.due(good as u64) {
            let buf = sink.line();
            push_bsn(
                buf,
                bsn,
                defect == InsuredDefect::BsnElevenTest,
                &mut defect_rng,
            );
            buf.push(DELIMITER);
            if defect == InsuredDefect::YearNotInteger {
                push_mangled_year(buf, year);
            } else {
                push_uint(buf, year as u64);
            }
            sink.end_row()?;
        }
        let buf = sink.line();
        push_bsn(buf, bsn, false, &mut defect_rng);
        buf.push(DELIMITER);
        push_uint(buf, year as u64);
        sink.end_row()?;
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CareUseDefect {
    CareTypeUnknown,
    ClaimsZero,
}

impl DefectKind for CareUseDefect {
    fn rule(self) -> &'static str {
        match self {
            CareUseDefect::CareTypeUnknown => "not_in_enum",
            CareUseDefect::ClaimsZero => "out_of_range",
        }
    }

    fn column(self) -> &'static str {
        match self {
            CareUseDefect::CareTypeUnknown => "care_type",
            CareUseDefect::ClaimsZero => "claims",
        }
    }
}

pub(crate) const CARE_USE_PLAN: [(CareUseDefect, u32); 2] = [
    (CareUseDefect::CareTypeUnknown, 2),
    (CareUseDefect::ClaimsZero, 1),
];

/// Claims and cost (cents) of one care type for one person-year. Heavy users
/// of mental-health care and physiotherapy have ten or more claims.
fn draw_claims(rng: &mut ChaCha8Rng, care_type: u8, flags: u8) -> (u64, i64) {
    let exp = |mean: f64| Exp::new(1.0 / mean).expect("rate");
    let lognormal = |median: f64, sigma: f64| LogNormal::new(median.ln(), sigma).expect("sigma");
    let mut tail = |mean: f64| exp(mean).sample(rng).floor() as u64;
    let (claims, per_claim_median, sigma) = match care_type {
        care::GGZ if flags & care::GGZ_HEAVY != 0 => ((10 + tail(10.0)).min(60), 105.0, 0.25),
        care::GGZ => ((1 + tail(3.0)).min(9), 105.0, 0.25),
        care::FYSIO if flags & care::FYSIO_HEAVY != 0 => ((10 + tail(8.0)).min(45), 38.0, 0.15),
        care::FYSIO => ((1 + tail(3.0)).min(9), 38.0, 0.15),
        care::HUISARTS => ((1 + tail(3.0)).min(30), 13.0, 0.4),
        care::MSZ => ((1 + tail(1.2)).min(15), 700.0, 1.1),
        _ => ((1 + tail(6.0)).min(80), 22.0, 0.9),
    };
    let per_claim = lognormal(per_claim_median, sigma);
    let cost: f64 = (0..claims).map(|_| per_claim.sample(rng)).sum();
    (claims, cents(cost))
}

pub(crate) fn write_care_use(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let year = target.year;
    let insured = insured_in(model, year);
    let rows_of = |p: u32| {
        let flags = model.care(p as usize, year);
        care::TYPES.iter().filter(move |(bit, _)| flags & bit != 0)
    };
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        let good_rows: u64 = insured.iter().map(|&p| rows_of(p).count() as u64).sum();
        Plan::spread(&CARE_USE_PLAN, good_rows, 0, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut rng = target.rng();
    let mut sink = CsvSink::create(&target.path, DELIMITER, &CARE_USE_HEADER)?;
    let mut good: u64 = 0;
    for &p in &insured {
        let bsn = model.persons[p as usize].bsn;
        let flags = model.care(p as usize, year);
        for &(bit, name) in rows_of(p) {
            let (claims, cost) = draw_claims(&mut rng, bit, flags);
            while let Some(defect) = plan.due(good) {
                let buf = sink.line();
                push_padded(buf, u64::from(bsn), 9);
                buf.push(DELIMITER);
                push_uint(buf, year as u64);
                buf.push(DELIMITER);
                if defect == CareUseDefect::CareTypeUnknown {
                    buf.extend_from_slice(b"TANDARTS");
                } else {
                    buf.extend_from_slice(name.as_bytes());
                }
                buf.push(DELIMITER);
                push_uint(
                    buf,
                    if defect == CareUseDefect::ClaimsZero {
                        0
                    } else {
                        claims
                    },
                );
                buf.push(DELIMITER);
                push_fixed(buf, cost, 2, DECIMAL);
                sink.end_row()?;
            }
            let buf = sink.line();
            push_padded(buf, u64::from(bsn), 9);
            buf.push(DELIMITER);
            push_uint(buf, year as u64);
            buf.push(DELIMITER);
            buf.extend_from_slice(name.as_bytes());
            buf.push(DELIMITER);
            push_uint(buf, claims);
            buf.push(DELIMITER);
            push_fixed(buf, cost, 2, DECIMAL);
            sink.end_row()?;
            good += 1;
        }
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}
