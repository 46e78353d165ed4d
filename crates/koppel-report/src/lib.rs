//! The run report: one self-contained HTML page per research release.
//!
//! Every pipeline run writes `report.html` beside the release. Its reader is
//! the person who answers for the release, or the researcher who receives
//! it: they should see at a glance how well the sources linked, whom the
//! data covers, what was rejected and what disclosure control took away.
//!
//! - **Input:** a [`RunReport`], plain counts gathered from ingest, linking
//!   and export (serialisable, so a run can also keep it as JSON). It never
//!   holds a pseudonym, identifier or key material.
//! - **Output:** [`render_html`] gives the page as a string. It is one file
//!   with nothing to fetch: inline CSS, inline SVG charts drawn with
//!   plotters, no scripts, fonts, images or links outside the page. Every
//!   chart has a plain HTML table beside it with the exact numbers.
//!
//! The output is deterministic: the same report gives the same bytes (no
//! clock, no random ids, ordered maps only), so a release can be checked
//! by hash and rebuilt to the byte.
//!
//! This crate depends on no other koppel crate, so it builds on its own and
//! fast; the pipeline maps its stage reports into [`RunReport`].

mod charts;
mod example;
mod fmt;
mod model;
mod page;

pub use model::{
    CoverageRow, OrganisationSummary, OverlapRow, PersonSummary, QuasiIdentifierRow, RecipientRow,
    RejectRow, RunReport, SourceRow, TableRow,
};

/// Renders the report as one self-contained HTML page.
///
/// Never fails: empty lists and zero denominators give a sentence in place
/// of a chart, and text from the input is escaped wherever it appears.
pub fn render_html(report: &RunReport) -> String {
    page::render(report)
}
