//! The IZZ staff survey "Monitor Gezond werken in de zorg", as Parquet.
//!
//! About one in ten persons employed in the year responds. The scales follow
//! the model: workload with the function's mental load and the employer's
//! irregular work, emotional exhaustion with workload, mental strain and —
//! above all — the absence the respondent actually had that year; intention
//! to leave with exhaustion and, strongly, with actually leaving the sector
//! between the spring fieldwork and the end of the next year. Climate scales
//! share an organisation effect. Every scale is missing for a few percent of
//! respondents.

use super::{Target, Written};
use crate::SynthError;
use crate::calendar::{days_from_civil, dec31, jan1};
use crate::defects::{DefectKind, Plan};
use crate::fmt::push_padded;
use crate::ident::corrupt_bsn;
use crate::model::{Model, OPEN};
use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::Rng;
use rand::distr::Distribution;
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;
use std::fs::File;
use std::sync::Arc;

const RESPONSE_RATE: f64 = 0.10;
const BATCH_ROWS: usize = 32_768;
/// Share of respondents without a score on any one scale.
const ITEM_NONRESPONSE: f64 = 0.03;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    BsnElevenTest,
    WorkloadAbove5,
    YearMissing,
}

impl DefectKind for Defect {
    fn rule(self) -> &'static str {
        match self {
            Defect::BsnElevenTest => "invalid_bsn",
            Defect::WorkloadAbove5 => "out_of_range",
            Defect::YearMissing => "required",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Defect::BsnElevenTest => "bsn",
            Defect::WorkloadAbove5 => "workload",
            Defect::YearMissing => "year",
        }
    }
}

pub(crate) const PLAN: [(Defect, u32); 3] = [
    (Defect::BsnElevenTest, 2),
    (Defect::WorkloadAbove5, 2),
    (Defect::YearMissing, 1),
];

fn schema() -> Arc<Schema> {
    let scale = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("bsn", DataType::Utf8, false),
        // Nullable although required: the survey platform exports every
        // answer column as optional, and the rule is the TTP's to enforce.
        Field::new("jaar", DataType::Int32, true),
        scale("werkdruk"),
        scale("emotionele_uitputting"),
        scale("bevlogenheid"),
        scale("empowering_leiderschap"),
        scale("leerklimaat"),
        scale("organisatieklimaat"),
        Field::new("verzuim_zelfgerapporteerd", DataType::Boolean, true),
        Field::new("verzuim_werkgerelateerd", DataType::Boolean, true),
        scale("vertrekintentie"),
    ]))
}

/// One respondent's answers.
#[derive(Debug, Clone)]
struct Response {
    /// Written as nine digits.
    bsn: u32,
    year: Option<i32>,
    workload: Option<f64>,
    exhaustion: Option<f64>,
    engagement: Option<f64>,
    leadership: Option<f64>,
    learning: Option<f64>,
    climate: Option<f64>,
    absent: Option<bool>,
    work_related: Option<bool>,
    intention_to_leave: Option<f64>,
}

/// Scale scores are item means; two decimals is what the platform exports.
fn score(value: f64, low: f64, high: f64) -> f64 {
    (value.clamp(low, high) * 100.0).round() / 100.0
}

fn respond(model: &Model, person: u32, year: i32, rng: &mut ChaCha8Rng) -> Response {
    let p = &model.persons[person as usize];
    // The employment of the survey: the last one that year.
    let (from, to) = (jan1(year), dec31(year));
    let spell = model
        .person_spells
        .get(person as usize)
        .iter()
        .map(|&s| &model.spells[s as usize])
        .filter(|s| s.overlaps(from, to))
        .max_by_key(|s| s.start)
        .expect("respondents are employed in the year");
    let org = &model.orgs[spell.org as usize];
    let function = &model.fwg[spell.fwg as usize];
    let absence_days = f64::from(model.absence_days(person as usize, year));
    // Fielded in spring: leaving after that and before the end of next year
    // is what the intention scale anticipates.
    let leaves_soon = p.exit_day != OPEN
        && p.exit_day >= days_from_civil(year, 4, 1)
        && p.exit_day <= dec31(year + 1);
    let noise = |rng: &mut ChaCha8Rng, sd: f64| Normal::new(0.0, sd).expect("sd").sample(rng);

    let workload = 2.9
        + 0.25 * (f64::from(function.mental_load) - 3.0)
        + 0.4 * (org.irregularity - 0.5)
        + noise(rng, 0.6);
    let exhaustion = 2.2
        + 0.35 * (workload - 2.9)
        + 0.45 * (1.0 + absence_days / 7.0).ln()
        + 0.3 * (f64::from(p.mental) - 1.0)
        + noise(rng, 0.5);
    let engagement = 4.4 - 0.45 * (exhaustion - 2.2) + noise(rng, 0.7);
    let leadership = 3.5 + org.climate + noise(rng, 0.6);
    let learning = 3.6 + 0.6 * org.climate + noise(rng, 0.6);
    let climate = 3.3 + org.climate - 0.4 * (org.absence_factor - 1.0) + noise(rng, 0.6);
    let intention = 1.9 + if leaves_soon { 1.2 } else { 0.0 } + 0.35 * (exhaustion - 2.2)
        - 0.2 * (engagement - 4.4)
        + noise(rng, 0.6);
    let was_absent = absence_days > 0.0;
    let reports_absence = rng.random_bool(if was_absent { 0.92 } else { 0.04 });
    let work_related =
        rng.random_bool((0.25 + 0.06 * f64::from(function.adverse_conditions)).min(0.9));

    let mut answered = |value: f64, low: f64, high: f64| {
        (!rng.random_bool(ITEM_NONRESPONSE)).then(|| score(value, low, high))
    };
    let workload = answered(workload, 1.0, 5.0);
    let exhaustion = answered(exhaustion, 1.0, 5.0);
    let engagement = answered(engagement, 0.0, 6.0);
    let leadership = answered(leadership, 1.0, 5.0);
    let learning = answered(learning, 1.0, 5.0);
    let climate = answered(climate, 1.0, 5.0);
    let intention_to_leave = answered(intention, 1.0, 5.0);
    let absent = (!rng.random_bool(ITEM_NONRESPONSE)).then_some(reports_absence);
    // Only asked of those who report absence.
    let work_related = (absent == Some(true)).then_some(work_related);
    Response {
        bsn: p.bsn,
        year: Some(year),
        workload,
        exhaustion,
        engagement,
        leadership,
        learning,
        climate,
        absent,
        work_related,
        intention_to_leave,
    }
}

fn corrupt(response: &Response, defect: Defect, rng: &mut ChaCha8Rng) -> Response {
    let mut bad = response.clone();
    match defect {
        Defect::BsnElevenTest => {
            bad.bsn = corrupt_bsn(response.bsn, rng);
        }
        Defect::WorkloadAbove5 => bad.workload = Some(7.0),
        Defect::YearMissing => bad.year = None,
    }
    bad
}

struct Batch {
    bsn: StringBuilder,
    digits: Vec<u8>,
    year: Int32Builder,
    scales: [Float64Builder; 7],
    absent: BooleanBuilder,
    work_related: BooleanBuilder,
    rows: usize,
}

impl Batch {
    fn new() -> Self {
        Batch {
            bsn: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 9),
            digits: Vec::with_capacity(9),
            year: Int32Builder::with_capacity(BATCH_ROWS),
            scales: std::array::from_fn(|_| Float64Builder::with_capacity(BATCH_ROWS)),
            absent: BooleanBuilder::with_capacity(BATCH_ROWS),
            work_related: BooleanBuilder::with_capacity(BATCH_ROWS),
            rows: 0,
        }
    }

    fn push(&mut self, r: &Response) {
        self.digits.clear();
        push_padded(&mut self.digits, u64::from(r.bsn), 9);
        self.bsn
            .append_value(std::str::from_utf8(&self.digits).unwrap_or_default());
        self.year.append_option(r.year);
        let values = [
            r.workload,
            r.exhaustion,
            r.engagement,
            r.leadership,
            r.learning,
            r.climate,
            r.intention_to_leave,
        ];
        for (builder, value) in self.scales.iter_mut().zip(values) {
            builder.append_option(value);
        }
        self.absent.append_option(r.absent);
        self.work_related.append_option(r.work_related);
        self.rows += 1;
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch, arrow::error::ArrowError> {
        let [
            workload,
            exhaustion,
            engagement,
            leadership,
            learning,
            climate,
            intention,
        ] = &mut self.scales;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.bsn.finish()),
            Arc::new(self.year.finish()),
            Arc::new(workload.finish()),
            Arc::new(exhaustion.finish()),
            Arc::new(engagement.finish()),
            Arc::new(leadership.finish()),
            Arc::new(learning.finish()),
            Arc::new(climate.finish()),
            Arc::new(self.absent.finish()),
            Arc::new(self.work_related.finish()),
            Arc::new(intention.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema.clone(), columns)
    }
}

/// Respondents of `year`, in the order the platform lists them (by BSN).
pub(crate) fn respondents(model: &Model, year: i32, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let mut respondents: Vec<u32> = model
        .persons_employed_in(year)
        .into_iter()
        .filter(|_| rng.random_bool(RESPONSE_RATE))
        .collect();
    respondents.sort_by_key(|&p| model.persons[p as usize].bsn);
    respondents
}

pub(crate) fn write(target: Target<'_>) -> Result<Written, SynthError> {
    let model = target.model;
    let year = target.year;
    let path = target.path.clone();
    let arrow_error = |source| SynthError::Arrow {
        path: path.clone(),
        source,
    };
    let parquet_error = |source| SynthError::Parquet {
        path: path.clone(),
        source,
    };
    let mut rng = target.rng();
    let respondents = respondents(model, year, &mut rng);
    let mut defect_rng = target.defect_rng();
    let mut plan = if target.plant_defects {
        Plan::spread(&PLAN, respondents.len() as u64, 0, &mut defect_rng)
    } else {
        Plan::none()
    };

    let schema = schema();
    let partial = crate::sink::partial_path(&path);
    let file = File::create(&partial).map_err(|e| SynthError::io(&partial, e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(parquet_error)?;
    let mut batch = Batch::new();
    let mut rows: u64 = 0;
    for (good, &person) in respondents.iter().enumerate() {
        let response = respond(model, person, year, &mut rng);
        while let Some(defect) = plan.due(good as u64) {
            batch.push(&corrupt(&response, defect, &mut defect_rng));
            rows += 1;
        }
        batch.push(&response);
        rows += 1;
        if batch.rows >= BATCH_ROWS {
            let record_batch = batch.finish(&schema).map_err(arrow_error)?;
            writer.write(&record_batch).map_err(parquet_error)?;
        }
    }
    if batch.rows > 0 {
        let record_batch = batch.finish(&schema).map_err(arrow_error)?;
        writer.write(&record_batch).map_err(parquet_error)?;
    }
    writer.close().map_err(parquet_error)?;
    std::fs::rename(&partial, &path).map_err(|e| SynthError::io(&path, e))?;
    Ok(target.finish(rows, &plan))
}
