//! Intrakoop annual-report figures: one row per organisation × financial year.
//!
//! Personnel costs follow the organisation's own payroll in the model
//! (wages and expected irregularity allowance, plus holiday pay, year-end
//! bonus, employer charges and hired staff); revenue follows from the
//! sector's typical personnel-cost share, the result from a margin around
//! break-even. Amounts are in thousands of euros. The KvK number is written
//! as the number it is in the annual-report spreadsheet, so without leading
//! zeros; the contract's left-padding makes it whole again.

use super::pfzw::{ORT_EXPECTATION, month_fraction, months_employed};
use super::{Target, Written};
use crate::SynthError;
use crate::calendar::{days_in_year, dec31, jan1};
use crate::defects::{DefectKind, Plan};
use crate::fmt::{push_fixed, push_padded, push_uint};
use crate::model::{FULL_TIME_HOURS, Model};
use crate::sink::CsvSink;
use rand::Rng;
use rand::distr::Distribution;
use rand_distr::Normal;

pub(crate) const HEADER: [&str; 8] = [
    "KVK",
    "BOEKJAAR",
    "OMZET_KEUR",
    "PERSONEELSKOSTEN_KEUR",
    "OVERHEAD_PCT",
    "FTE",
    "LOCATIES",
    "RESULTAAT_KEUR",
];
const DELIMITER: u8 = b';';
const DECIMAL: u8 = b',';
/// Holiday pay (8%) and year-end bonus (8.33%) on top of twelve monthly
/// wages, then employer social charges and pension contributions.
const WAGE_TO_PERSONNEL_COST: f64 = 1.08 * 1.0833 * 1.28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    KvkNineDigits,
    OverheadAbove100,
}

impl DefectKind for Defect {
    fn rule(self) -> &'static str {
        match self {
            Defect::KvkNineDigits => "invalid_kvk",
            Defect::OverheadAbove100 => "out_of_range",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Defect::KvkNineDigits => "employer_kvk",
            Defect::OverheadAbove100 => "overhead_pct",
        }
    }
}

pub(crate) const PLAN: [(Defect, u32); 2] =
    [(Defect::KvkNineDigits, 1), (Defect::OverheadAbove100, 1)];

/// Payroll totals of one organisation in one year.
#[derive(Default, Clone, Copy)]
struct Payroll {
    /// Gross wages plus expected irregularity allowance, euros.
    wages: f64,
    fte: f64,
}

fn payroll_by_org(model: &Model, year: i32) -> Vec<Payroll> {
    let mut totals = vec![Payroll::default(); model.orgs.len()];
    let days = f64::from(days_in_year(year));
    let (from, to) = (jan1(year), dec31(year));
    for spell in model.spells.iter().filter(|s| s.overlaps(from, to)) {
        let full_time = model.full_time_wage(spell, year);
        let hours = f64::from(spell.hours_centi) / 100.0;
        let mut wages = 0.0;
        for month in months_employed(year, spell.start, spell.end) {
            wages += full_time * hours / FULL_TIME_HOURS
                * month_fraction(year, month, spell.start, spell.end);
        }
        let ort = if spell.ort_share > 0.0 {
            f64::from(spell.ort_share) * ORT_EXPECTATION
        } else {
            0.0
        };
        let employed_days = f64::from(spell.end.min(to) - spell.start.max(from) + 1);
        let total = &mut totals[spell.org as usize];
        total.wages += wages * (1.0 + ort);
        // On-call work counts at its usual monthly level, which is the mean
        // of what the payroll pays out.
        total.fte += hours / FULL_TIME_HOURS * employed_days / days;
    }
    totals
}

/// Thousands of euros with one decimal, in tenths.
fn keur_tenths(euros: f64) -> i64 {
    (euros / 100.0).round() as i64
}

pub(crate) fn write(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let year = target.year;
    let payroll = payroll_by_org(model, year);
    let mut orgs: Vec<usize> = (0..model.orgs.len())
        .filter(|&o| payroll[o].fte > 0.0)
        .collect();
    orgs.sort_by_key(|&o| model.orgs[o].kvk);
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        Plan::spread(&PLAN, orgs.len() as u64, 0, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut rng = target.rng();
    let mut sink = CsvSink::create(&target.path, DELIMITER, &HEADER)?;
    for (good, &o) in orgs.iter().enumerate() {
        let org = &model.orgs[o];
        let personnel = payroll[o].wages * WAGE_TO_PERSONNEL_COST * (1.0 + org.external_share);
        let share = (org.personnel_share * rng.random_range(0.97..1.03)).min(0.95);
        let revenue = personnel / share;
        let margin: f64 = Normal::new(0.015, 0.03).expect("sd").sample(&mut rng);
        let result = revenue * margin;
        let overhead_tenths = ((org.overhead_pct + rng.random_range(-1.0..1.0)).clamp(0.0, 100.0)
            * 10.0)
            .round() as i64;
        let overhead = (!rng.random_bool(0.05)).then_some(overhead_tenths);
        let locations = (!rng.random_bool(0.04)).then_some(org.locations);
        let result = (!rng.random_bool(0.02)).then_some(keur_tenths(result));
        let fte_hundredths = (payroll[o].fte * 100.0).round() as i64;

        let write_row = |buf: &mut Vec<u8>, defect: Option<Defect>| {
            if defect == Some(Defect::KvkNineDigits) {
                buf.push(b'1');
                push_padded(buf, u64::from(org.kvk), 8);
            } else {
                push_uint(buf, u64::from(org.kvk));
            }
            buf.push(DELIMITER);
            push_uint(buf, year as u64);
            buf.push(DELIMITER);
            push_fixed(buf, keur_tenths(revenue), 1, DECIMAL);
            buf.push(DELIMITER);
            push_fixed(buf, keur_tenths(personnel), 1, DECIMAL);
            buf.push(DELIMITER);
            if defect == Some(Defect::OverheadAbove100) {
                push_fixed(buf, 1200, 1, DECIMAL);
            } else if let Some(tenths) = overhead {
                push_fixed(buf, tenths, 1, DECIMAL);
            }
            buf.push(DELIMITER);
            push_fixed(buf, fte_hundredths, 2, DECIMAL);
            buf.push(DELIMITER);
            if let Some(locations) = locations {
                push_uint(buf, u64::from(locations));
            }
            buf.push(DELIMITER);
            if let Some(tenths) = result {
                push_fixed(buf, tenths, 1, DECIMAL);
            }
        };
        while let Some(defect) = plan.due(good as u64) {
            write_row(sink.line(), Some(defect));
            sink.end_row()?;
        }
        write_row(sink.line(), None);
        sink.end_row()?;
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}
