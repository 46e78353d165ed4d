//! What the run report shows, gathered from the stages' own reports.
//! Only counts and labels: the page goes into the release and passes the
//! leak guard like every other file. No wall times, so the same inputs
//! give the same page.

use std::collections::BTreeMap;

use koppel_export::DisclosureReport;
use koppel_join::LinkageReport;
use koppel_report::{
    CoverageRow, OrganisationSummary, OverlapRow, PersonSummary, QuasiIdentifierRow, RecipientRow,
    RejectRow, RunReport, SourceRow, TableRow,
};

use crate::run::DeliveryOutcome;
use crate::spec::PipelineSpec;

pub(crate) fn run_report(
    pipeline: &PipelineSpec,
    period: &str,
    keys: &[String],
    deliveries: &[DeliveryOutcome],
    linkage: &LinkageReport,
    disclosure: &DisclosureReport,
) -> RunReport {
    // Rows per source over its periods, from what stage 2 read.
    let mut read: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for d in deliveries {
        let e = read.entry(d.source.as_str()).or_default();
        e.0 += d.rows_read;
        e.1 += d.rows_accepted;
        e.2 += d.rows_rejected;
    }
    let sources = linkage
        .sources
        .iter()
        .map(|s| {
            let (rows_read, rows_accepted, rows_rejected) =
                read.get(s.source.as_str()).copied().unwrap_or_default();
            SourceRow {
                name: s.source.clone(),
                periods: s.periods.clone(),
                rows_read,
                rows_accepted,
                rows_rejected,
                unit: s.unit.clone(),
                linked: s.linked,
                not_linked: s.not_linked,
                duplicates: s.duplicates,
            }
        })
        .collect();
    let rejects = deliveries
        .iter()
        .flat_map(|d| {
            d.rejects.iter().map(|r| RejectRow {
                source: d.source.clone(),
                period: d.period.clone(),
                column: r.column.clone(),
                rule: r.rule.clone(),
                rows: r.rows,
            })
        })
        .collect();
    let coverage = linkage
        .coverage
        .iter()
        .map(|c| CoverageRow {
            year: c.year,
            sector: c.sector.clone(),
            age_band: c.age_band.clone(),
            payroll_persons: c.payroll_persons,
            absence_persons: c.absence_persons,
            izz_insured_persons: c.izz_insured_persons,
            care_use_persons: c.care_use_persons,
            survey_persons: c.survey_persons,
        })
        .collect();
    let overlap = linkage
        .overlap
        .iter()
        .map(|o| OverlapRow {
            year: o.year,
            sources: o.sources.clone(),
            persons: o.persons,
        })
        .collect();
    let p = &disclosure.person;
    let person = PersonSummary {
        k: p.k,
        smallest_class: p.smallest_class,
        rows_in: p.rows_in,
        rows_released: p.rows_released,
        rows_locally_suppressed: p.rows_locally_suppressed,
        rows_dropped: p.rows_dropped,
        max_suppression_pct: p.max_suppression_pct,
        information_loss: p.information_loss,
        quasi_identifiers: p
            .quasi_identifiers
            .iter()
            .map(|q| QuasiIdentifierRow {
                column: q.column.clone(),
                level_name: koppel_export::report::hierarchy_name(&q.hierarchy, q.level),
                level: q.level,
                levels: q.levels,
                values_suppressed: q.values_suppressed,
                values_missing: q.values_missing,
            })
            .collect(),
        columns_withheld: p.columns_withheld.clone(),
        recipients: p
            .recipients
            .iter()
            .map(|r| RecipientRow {
                recipient: r.recipient.as_str().into(),
                assumption: r.assumption.into(),
                counted_in: match r.reference {
                    koppel_export::Reference::Sample => "released persons".into(),
                    koppel_export::Reference::Population => "workforce (k-map)".into(),
                },
                knows: r.knows.clone(),
                persons: r.persons,
                at_risk_before: r.at_risk_before,
                at_risk_after: r.at_risk_after,
                smallest_class: r.smallest_class,
            })
            .collect(),
    };
    let o = &disclosure.organisation;
    let organisation = OrganisationSummary {
        min_persons: o.min_persons,
        k: o.k,
        rows_in: o.rows_in,
        rows_released: o.rows_released,
        rows_left_out: o.rows_left_out,
        suppressed: o.suppressed.clone(),
    };
    let tables = disclosure
        .tables
        .iter()
        .map(|t| TableRow {
            name: t.name.clone(),
            label: t.label.clone(),
            cells: t.cells,
            status: t.status.clone(),
        })
        .collect();
    RunReport {
        pipeline: pipeline.pipeline.clone(),
        pipeline_version: pipeline.version.clone(),
        period: period.to_owned(),
        release_id: disclosure.release_id.clone(),
        reference_date: linkage.reference_date.clone(),
        keys: keys.to_vec(),
        sources,
        rejects,
        coverage,
        overlap,
        person,
        organisation,
        tables,
    }
}
