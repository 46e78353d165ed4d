//! Vernet absence episodes: one row per sickness-absence episode.
//!
//! Episodes are filed under the year of their sick report (`ZIEKMELDING`);
//! an episode running into a later year keeps its later recovery date, and
//! one still running on the reference date (31 December of the last year)
//! has no recovery date. The first year's file also holds the episodes that
//! began earlier and were still running on its 1 January, as an extract
//! that starts in that year would: without them the first year would lack
//! most of its long-term absence.

use super::{Target, Written};
use crate::SynthError;
use crate::calendar::{civil_from_days, dec31, jan1};
use crate::defects::{DefectKind, Plan};
use crate::fmt::{push_date_dmy, push_padded, push_uint};
use crate::ident::corrupt_bsn;
use crate::model::{Episode, Model, OPEN};
use crate::sink::CsvSink;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(crate) const HEADER: [&str; 5] = [
    "BSN",
    "KVK_NUMMER",
    "ZIEKMELDING",
    "HERSTELMELDING",
    "VERZUIMPERCENTAGE",
];
const DELIMITER: u8 = b';';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    BsnElevenTest,
    RecoveredBeforeSick,
    PctOutOfRange,
    SickFromFeb31,
}

impl DefectKind for Defect {
    fn rule(self) -> &'static str {
        match self {
            Defect::BsnElevenTest => "invalid_bsn",
            Defect::RecoveredBeforeSick => "date_order",
            Defect::PctOutOfRange => "out_of_range",
            Defect::SickFromFeb31 => "invalid_date",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Defect::BsnElevenTest => "bsn",
            Defect::RecoveredBeforeSick => "recovered_on",
            Defect::PctOutOfRange => "absence_pct",
            Defect::SickFromFeb31 => "sick_from",
        }
    }
}

pub(crate) const PLAN: [(Defect, u32); 4] = [
    (Defect::BsnElevenTest, 2),
    (Defect::RecoveredBeforeSick, 2),
    (Defect::PctOutOfRange, 2),
    (Defect::SickFromFeb31, 1),
];

/// The episodes of the year's file, in order of sick report.
pub(crate) fn episodes_in_file(model: &Model, year: i32) -> Vec<u32> {
    let (from, to) = (jan1(year), dec31(year));
    let carry_over = year == model.first_year;
    let mut keyed: Vec<(i32, u32)> = model
        .episodes
        .iter()
        .enumerate()
        .filter(|(_, e)| (e.sick_from >= from || carry_over) && e.sick_from <= to)
        .map(|(i, e)| (e.sick_from, i as u32))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, e)| e).collect()
}

fn write_row(
    buf: &mut Vec<u8>,
    model: &Model,
    episode: &Episode,
    defect: Option<Defect>,
    rng: &mut ChaCha8Rng,
) {
    let spell = &model.spells[episode.spell as usize];
    let bsn = model.persons[spell.person as usize].bsn;
    if defect == Some(Defect::BsnElevenTest) {
        push_padded(buf, u64::from(corrupt_bsn(bsn, rng)), 9);
    } else {
        push_padded(buf, u64::from(bsn), 9);
    }
    buf.push(DELIMITER);
    push_padded(buf, u64::from(model.orgs[spell.org as usize].kvk), 8);
    buf.push(DELIMITER);
    if defect == Some(Defect::SickFromFeb31) {
        buf.extend_from_slice(b"31-02-");
        push_padded(buf, civil_from_days(episode.sick_from).0 as u64, 4);
    } else {
        push_date_dmy(buf, episode.sick_from);
    }
    buf.push(DELIMITER);
    if defect == Some(Defect::RecoveredBeforeSick) {
        push_date_dmy(buf, episode.sick_from - rng.random_range(1..=30));
    } else if episode.recovered_on != OPEN {
        push_date_dmy(buf, episode.recovered_on);
    }
    buf.push(DELIMITER);
    if defect == Some(Defect::PctOutOfRange) {
        let pct = if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(101..=150)
        };
        push_uint(buf, pct);
    } else {
        push_uint(buf, u64::from(episode.pct));
    }
}

pub(crate) fn write(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let episodes = episodes_in_file(model, target.year);
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        Plan::spread(&PLAN, episodes.len() as u64, 0, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut sink = CsvSink::create(&target.path, DELIMITER, &HEADER)?;
    for (good, &e) in episodes.iter().enumerate() {
        let episode = &model.episodes[e as usize];
        while let Some(defect) = plan.due(good as u64) {
            write_row(sink.line(), model, episode, Some(defect), &mut defect_rng);
            sink.end_row()?;
        }
        write_row(sink.line(), model, episode, None, &mut defect_rng);
        sink.end_row()?;
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}
