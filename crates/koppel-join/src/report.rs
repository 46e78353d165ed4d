//! The linkage report: how well each source links to the payroll
//! backbone, what duplicates were found and how they were resolved, how
//! each source covers the sector by sector and age band, and how the
//! sources overlap. Counts only; never a pseudonym.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::inputs::{LinkKey, Source, StagedSources};
use crate::{LinkError, one_row};

#[derive(Debug, Clone, Serialize)]
pub struct LinkageReport {
    /// The stage-2 key of every pseudonym linked on (labels only).
    pub key: LinkKey,
    pub reference_date: String,
    pub payroll_years: Vec<i32>,
    pub model_years: Vec<i32>,
    pub person_model_rows: u64,
    /// Persons × years on the payroll (`workforce_model.parquet`).
    pub workforce_model_rows: u64,
    pub organisation_model_rows: u64,
    pub sources: Vec<SourceLinkage>,
    /// Per model year, sector and age band of the payroll population: how
    /// many persons each person-level source holds.
    pub coverage: Vec<CoverageCell>,
    /// Per model year: how many persons appear in each combination of
    /// person-level sources.
    pub overlap: Vec<OverlapCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceLinkage {
    pub source: String,
    pub periods: Vec<String>,
    pub rows_in: u64,
    /// Distinct persons (organisations for annual reports, function codes
    /// for FWG).
    pub distinct_pseudonyms: u64,
    /// What `linked` and `not_linked` count.
    pub unit: String,
    pub linked: u64,
    pub not_linked: u64,
    pub duplicates: u64,
    pub duplicate_resolution: String,
    /// Source-specific counts, by name.
    pub details: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageCell {
    pub year: i32,
    pub sector: String,
    pub age_band: String,
    pub payroll_persons: u64,
    pub absence_persons: u64,
    pub izz_insured_persons: u64,
    pub care_use_persons: u64,
    pub survey_persons: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverlapCell {
    pub year: i32,
    /// Sources the persons appear in, in a fixed order.
    pub sources: Vec<String>,
    pub persons: u64,
}

pub(crate) struct Frame {
    pub reference_date: NaiveDate,
    pub payroll_years: Vec<i32>,
    pub model_years: Vec<i32>,
    pub person_model_rows: u64,
    pub workforce_model_rows: u64,
    pub organisation_model_rows: u64,
}

/// The bits of the overlap mask, in report order.
const OVERLAP_SOURCES: [&str; 5] = [
    "pfzw_dienstverbanden",
    "vernet_verzuimmeldingen",
    "izz_verzekerden",
    "izz_zorggebruik",
    "izz_monitor",
];

pub(crate) async fn build(
    ctx: &SessionContext,
    sources: &StagedSources,
    frame: Frame,
) -> Result<LinkageReport, LinkError> {
    let periods = |s: Source| sources.files[&s].keys().cloned().collect::<Vec<_>>();
    let mut report = Vec::new();

    // Person-years per source and linked to the same year's payroll, over
    // the model years; distinct persons per source.
    let bit = |b: u32, extra: &str| {
        format!("CAST(sum(CASE WHEN mask & {b} <> 0 {extra} THEN 1 ELSE 0 END) AS BIGINT)")
    };
    let mut columns = Vec::new();
    for b in [1, 2, 4, 8, 16] {
        columns.push(format!("{} AS in_{b}", bit(b, "")));
        columns.push(format!("{} AS linked_{b}", bit(b, "AND mask & 1 <> 0")));
    }
    columns.push(format!("{} AS claims_only", bit(8, "AND mask & 4 = 0")));
    let [
        py_rows,
        _,
        absence_years,
        absence_linked,
        listed,
        listed_linked,
        claim_years,
        claims_linked,
        survey_years,
        survey_linked,
        claim_only,
    ] = counts(
        ctx,
        &format!(
            "SELECT {} FROM presence WHERE year IN (SELECT y.year FROM years y)",
            columns.join(", ")
        ),
    )
    .await?;
    let person_bits: Vec<String> = [1, 2, 4, 8, 16]
        .iter()
        .map(|b| format!("CAST(sum(CASE WHEN m & {b} <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS p_{b}"))
        .collect();
    let [
        persons,
        absence_persons,
        listed_persons,
        claim_persons,
        survey_persons,
    ] = counts(
        ctx,
        &format!(
            "SELECT {} FROM (SELECT person, bit_or(mask) AS m FROM presence GROUP BY person)",
            person_bits.join(", ")
        ),
    )
    .await?;

    let [rows, duplicates, orgs] = counts(
        ctx,
        "SELECT CAST(sum(payroll_rows) AS BIGINT) AS payroll_rows,
            CAST(sum(duplicate_rows) AS BIGINT) AS duplicate_rows,
            (SELECT COUNT(*) FROM (SELECT DISTINCT org FROM pe)) AS orgs
        FROM pe",
    )
    .await?;
    report.push(SourceLinkage {
        source: Source::Payroll.contract_name().into(),
        periods: periods(Source::Payroll),
        rows_in: rows,
        distinct_pseudonyms: persons,
        unit: "person-years (the payroll is the backbone)".into(),
        linked: py_rows,
        not_linked: 0,
        duplicates,
        duplicate_resolution: "a month delivered more than once for one person and employer counts once; its hours, wages and allowances are averaged over the duplicate rows".into(),
        details: vec![("organisations".into(), orgs)],
    });

    let [rows, after_reference, episodes, episodes_at_employer] = counts(
        ctx,
        &format!(
            "SELECT COUNT(*) AS reports,
                CAST(sum(CASE WHEN arrow_cast(sick_from, 'Int32') > {} THEN 1 ELSE 0 END) AS BIGINT) AS late,
                (SELECT COUNT(*) FROM episodes) AS episodes,
                (SELECT COUNT(*) FROM employment_absence a
                    WHERE EXISTS (SELECT 1 FROM pe WHERE pe.person = a.person AND pe.org = a.org AND pe.year = a.year)) AS at_employer
            FROM absence",
            crate::day_of(frame.reference_date)
        ),
    )
    .await?;
    report.push(SourceLinkage {
        source: Source::Absence.contract_name().into(),
        periods: periods(Source::Absence),
        rows_in: rows,
        distinct_pseudonyms: absence_persons,
        unit: "person-years with absence, found on the same year's payroll".into(),
        linked: absence_linked,
        not_linked: absence_years - absence_linked,
        duplicates: (rows - after_reference).saturating_sub(episodes),
        duplicate_resolution: "reports of one person and employer with the same first sick day are one episode, with the longest duration and highest percentage reported".into(),
        details: vec![
            ("episodes".into(), episodes),
            ("reported_after_reference_date".into(), after_reference),
            ("person_employer_years_with_absence_at_a_payroll_employer".into(), episodes_at_employer),
        ],
    });

    let [rows, keys] = counts(
        ctx,
        "SELECT COUNT(*) AS n, (SELECT COUNT(*) FROM (SELECT DISTINCT person, year FROM insured)) AS k FROM insured",
    )
    .await?;
    report.push(person_year_source(
        Source::Insured,
        periods(Source::Insured),
        [rows, listed_persons, listed, listed_linked],
        keys,
        "a person listed twice for a year is insured once",
        vec![("person_years_insured_by_claims_only".into(), claim_only)],
    ));

    let [rows, keys] = counts(
        ctx,
        "SELECT COUNT(*) AS n, (SELECT CAST(sum(care_types) AS BIGINT) FROM care_years) AS k FROM care_use",
    )
    .await?;
    report.push(person_year_source(
        Source::CareUse,
        periods(Source::CareUse),
        [rows, claim_persons, claim_years, claims_linked],
        keys,
        "a care type delivered twice for one person and year keeps its largest claim count and cost",
        vec![],
    ));

    let [rows] = counts(ctx, "SELECT COUNT(*) AS n FROM survey").await?;
    report.push(person_year_source(
        Source::Survey,
        periods(Source::Survey),
        [rows, survey_persons, survey_years, survey_linked],
        survey_years,
        "of two answer sets of one respondent in one year the first in scale order is kept",
        vec![],
    ));

    let [rows, codes, used, missing, without_code] = counts(
        ctx,
        "SELECT COUNT(*), COUNT(DISTINCT fwg_function_code),
            (SELECT COUNT(*) FROM fwg_codes f WHERE f.fwg_function_code IN
                (SELECT fwg_function_code FROM pe WHERE fwg_function_code IS NOT NULL)) AS used,
            (SELECT COUNT(DISTINCT fwg_function_code) FROM pe WHERE fwg_function_code IS NOT NULL
                AND fwg_function_code NOT IN (SELECT fwg_function_code FROM fwg_codes)) AS missing,
            (SELECT COUNT(*) FROM py WHERE fwg_function_code IS NULL) AS without_code
        FROM fwg",
    )
    .await?;
    report.push(SourceLinkage {
        source: Source::JobCharacteristics.contract_name().into(),
        periods: sources.files[&Source::JobCharacteristics]
            .keys()
            .next_back()
            .cloned()
            .into_iter()
            .collect(),
        rows_in: rows,
        distinct_pseudonyms: codes,
        unit: "function codes; linked: used on the payroll, not linked: used on the payroll but missing from the table".into(),
        linked: used,
        not_linked: missing,
        duplicates: rows.saturating_sub(codes),
        duplicate_resolution: "only the latest FWG delivery is used; within it codes are unique (checked at ingest)".into(),
        details: vec![("payroll_person_years_without_function_code".into(), without_code)],
    });

    let [rows, orgs, keys, linked, payroll_org_years] = counts(
        ctx,
        "SELECT COUNT(*), COUNT(DISTINCT org),
            (SELECT COUNT(*) FROM annual_report_years) AS org_years,
            (SELECT COUNT(*) FROM annual_report_years r
                WHERE EXISTS (SELECT 1 FROM pe WHERE pe.org = r.org AND pe.year = r.year)) AS linked,
            (SELECT COUNT(*) FROM (SELECT DISTINCT org, year FROM pe)) AS payroll_org_years
        FROM annual_reports",
    )
    .await?;
    report.push(SourceLinkage {
        source: Source::AnnualReports.contract_name().into(),
        periods: periods(Source::AnnualReports),
        rows_in: rows,
        distinct_pseudonyms: orgs,
        unit: "organisation-years with payroll that year".into(),
        linked,
        not_linked: keys.saturating_sub(linked),
        duplicates: rows.saturating_sub(keys),
        duplicate_resolution:
            "of two reports of one organisation and year the one with the highest revenue is kept"
                .into(),
        details: vec![(
            "payroll_organisation_years_without_report".into(),
            payroll_org_years.saturating_sub(linked),
        )],
    });

    Ok(LinkageReport {
        key: sources.key.clone(),
        reference_date: frame.reference_date.to_string(),
        payroll_years: frame.payroll_years,
        model_years: frame.model_years,
        person_model_rows: frame.person_model_rows,
        workforce_model_rows: frame.workforce_model_rows,
        organisation_model_rows: frame.organisation_model_rows,
        sources: report,
        coverage: coverage(ctx).await?,
        overlap: overlap(ctx).await?,
    })
}

fn person_year_source(
    source: Source,
    periods: Vec<String>,
    [rows, persons, keys, linked]: [u64; 4],
    distinct_rows: u64,
    resolution: &str,
    details: Vec<(String, u64)>,
) -> SourceLinkage {
    SourceLinkage {
        source: source.contract_name().into(),
        periods,
        rows_in: rows,
        distinct_pseudonyms: persons,
        unit: "person-years found on the payroll of the same year".into(),
        linked,
        not_linked: keys.saturating_sub(linked),
        duplicates: rows.saturating_sub(distinct_rows),
        duplicate_resolution: resolution.into(),
        details,
    }
}

async fn counts<const N: usize>(ctx: &SessionContext, sql: &str) -> Result<[u64; N], LinkError> {
    let values = one_row(ctx, sql).await?;
    values
        .try_into()
        .map_err(|_| LinkError::Plan(format!("expected {N} counts from: {sql}")))
}

/// The age bands of the coverage table.
pub const AGE_BANDS: &str = "CASE WHEN p.age < 25 THEN '<25' WHEN p.age < 35 THEN '25-34'
    WHEN p.age < 45 THEN '35-44' WHEN p.age < 55 THEN '45-54' ELSE '55+' END";

async fn coverage(ctx: &SessionContext) -> Result<Vec<CoverageCell>, LinkError> {
    let sql = format!(
        "SELECT p.year, p.sector, {AGE_BANDS} AS age_band, COUNT(*) AS persons,
            CAST(sum(CASE WHEN p.mask & 2 <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS absence,
            CAST(sum(CASE WHEN p.mask & 12 <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS insured,
            CAST(sum(CASE WHEN p.mask & 8 <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS claims,
            CAST(sum(CASE WHEN p.mask & 16 <> 0 THEN 1 ELSE 0 END) AS BIGINT) AS survey
        FROM presence p
        WHERE p.mask & 1 <> 0
        GROUP BY p.year, p.sector, {AGE_BANDS}
        ORDER BY 1, 2, 3"
    );
    let mut cells = Vec::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let year = batch.column(0).as_primitive::<Int32Type>();
        let sector = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8)?;
        let sector = sector.as_string::<i32>();
        let band = arrow::compute::cast(batch.column(2), &arrow::datatypes::DataType::Utf8)?;
        let band = band.as_string::<i32>();
        let n = |i: usize, row: usize| {
            let c = batch.column(i).as_primitive::<Int64Type>();
            if c.is_null(row) {
                0
            } else {
                c.value(row) as u64
            }
        };
        for row in 0..batch.num_rows() {
            cells.push(CoverageCell {
                year: year.value(row),
                sector: sector.value(row).to_owned(),
                age_band: band.value(row).to_owned(),
                payroll_persons: n(3, row),
                absence_persons: n(4, row),
                izz_insured_persons: n(5, row),
                care_use_persons: n(6, row),
                survey_persons: n(7, row),
            });
        }
    }
    Ok(cells)
}

async fn overlap(ctx: &SessionContext) -> Result<Vec<OverlapCell>, LinkError> {
    let sql = "SELECT year, mask, COUNT(*) AS persons FROM presence
        WHERE year IN (SELECT y.year FROM years y)
        GROUP BY year, mask ORDER BY year, mask";
    let mut cells = Vec::new();
    for batch in ctx.sql(sql).await?.collect().await? {
        let year = batch.column(0).as_primitive::<Int32Type>();
        let mask = batch.column(1).as_primitive::<Int64Type>();
        let persons = batch.column(2).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let mask = mask.value(row);
            cells.push(OverlapCell {
                year: year.value(row),
                sources: OVERLAP_SOURCES
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| mask & (1 << bit) != 0)
                    .map(|(_, s)| (*s).to_owned())
                    .collect(),
                persons: persons.value(row) as u64,
            });
        }
    }
    Ok(cells)
}
