//! The page: headline figures, then one section per stage, each a chart
//! with the table that holds its exact numbers.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::style::RGBColor;

use crate::charts::{
    self, AMBER, BLUE, BarRow, Generalisation, HeatPanels, RED, Scale, TEAL, Upset,
};
use crate::fmt::{cmp_age_band, decimal, esc, int, pct, pct_of, share, total};
use crate::model::{CoverageRow, OverlapRow, RunReport, TableRow};

const STYLE: &str = include_str!("report.css");

/// Combinations of sources shown in the overlap chart; the table has all.
const UPSET_TOP: usize = 12;
/// Reject bars shown; the table has all.
const REJECT_TOP: usize = 15;

pub fn render(r: &RunReport) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let title = if r.release_id.is_empty() {
        "Run report".to_string()
    } else {
        format!("Run report — release {}", r.release_id)
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    masthead(&mut out, r);
    out.push_str("<main class=\"wrap\">\n");
    headline(&mut out, r);
    contents(&mut out);
    linkage(&mut out, r);
    rejects(&mut out, r);
    coverage(&mut out, &r.coverage);
    overlap(&mut out, &r.overlap);
    person(&mut out, r);
    organisation(&mut out, r);
    tables(&mut out, &r.tables);
    out.push_str("</main>\n");
    footer(&mut out, r);
    out.push_str("</body>\n</html>\n");
    out
}

/// A value, or a dash where the run left it empty, so no line reads blank.
fn or_dash(s: &str) -> String {
    if s.trim().is_empty() {
        "–".into()
    } else {
        esc(s)
    }
}

fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The chart, or a sentence saying why there is none.
fn figure(out: &mut String, svg: Option<String>, caption: &str, none: &str) {
    match svg {
        Some(svg) => {
            let _ = write!(
                out,
                "<figure>\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
                esc(caption)
            );
        }
        None => {
            let _ = writeln!(out, "<p class=\"empty\">{}</p>", esc(none));
        }
    }
}

fn legend(out: &mut String, items: &[(String, RGBColor)]) {
    out.push_str("<ul class=\"legend\">");
    for (label, color) in items {
        let _ = write!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            hex(*color),
            esc(label)
        );
    }
    out.push_str("</ul>\n");
}

fn section_start(out: &mut String, id: &str, number: usize, title: &str, lede: &str) {
    let _ = write!(
        out,
        "<section id=\"{id}\">\n<h2><span class=\"num\">{number}</span>{}</h2>\n<p class=\"lede\">{}</p>\n",
        esc(title),
        esc(lede)
    );
}

const SECTIONS: [(&str, &str); 7] = [
    ("linkage", "Linkage per source"),
    ("rejects", "Rejected rows"),
    ("coverage", "Coverage by sector and age band"),
    ("overlap", "Source overlap"),
    ("person", "Person file: k-anonymity"),
    ("organisation", "Organisation file"),
    ("tables", "Tables"),
];

fn section(out: &mut String, id: &str, lede: &str) {
    let (i, (_, title)) = SECTIONS
        .iter()
        .enumerate()
        .find(|(_, (s, _))| *s == id)
        .expect("every section is listed in SECTIONS");
    section_start(out, id, i + 1, title, lede);
}

fn masthead(out: &mut String, r: &RunReport) {
    let _ = write!(
        out,
        "<header class=\"masthead\">\n<div class=\"wrap\">\n<p class=\"eyebrow\">Koppel · run report</p>\n\
         <h1>Release {}</h1>\n<p class=\"meta\">Pipeline <strong>{}</strong> {} · period {} · reference date {}</p>\n</div>\n</header>\n",
        or_dash(&r.release_id),
        or_dash(&r.pipeline),
        or_dash(&r.pipeline_version),
        or_dash(&r.period),
        or_dash(&r.reference_date),
    );
}

/// Cells suppressed in a table: every primary rule and secondary.
fn suppressed_cells(t: &TableRow) -> u64 {
    total(
        t.status
            .iter()
            .filter(|(s, _)| s.starts_with("primary") || s.as_str() == "secondary")
            .map(|(_, n)| *n),
    )
}

fn k_met(r: &RunReport) -> Option<bool> {
    (r.person.rows_released > 0).then_some(r.person.smallest_class >= u64::from(r.person.k))
}

fn k_pill(r: &RunReport) -> &'static str {
    match k_met(r) {
        Some(true) => "<span class=\"pill ok\">k met</span>",
        Some(false) => "<span class=\"pill bad\">k not met</span>",
        None => "<span class=\"pill\">nothing released</span>",
    }
}

/// A headline value that is a name: smaller, so long ids wrap at hyphens
/// instead of mid-word.
fn text(s: &str) -> String {
    format!("<p class=\"value text\">{}</p>", or_dash(s))
}

/// A headline value that is a figure (already escaped).
fn number(html: &str) -> String {
    format!("<p class=\"value\">{html}</p>")
}

fn headline(out: &mut String, r: &RunReport) {
    let p = &r.person;
    let cells = total(r.tables.iter().map(|t| t.cells));
    let suppressed = total(r.tables.iter().map(suppressed_cells));
    let k_reached = if p.rows_released > 0 {
        int(p.smallest_class)
    } else {
        "–".into()
    };
    let cards = [
        (
            "Release".to_string(),
            text(&r.release_id),
            format!("period {}", or_dash(&r.period)),
        ),
        (
            "Pipeline".to_string(),
            text(&r.pipeline),
            format!("version {}", or_dash(&r.pipeline_version)),
        ),
        (
            "Reference date".to_string(),
            number(&or_dash(&r.reference_date)),
            "open absence runs to this day".to_string(),
        ),
        (
            "Person rows released".to_string(),
            number(&int(p.rows_released)),
            format!("of {} in · one per respondent and year", int(p.rows_in)),
        ),
        (
            "k reached / asked".to_string(),
            number(&format!(
                "{k_reached} <span class=\"of\">/ {}</span>",
                int(u64::from(p.k))
            )),
            k_pill(r).to_string(),
        ),
        (
            "Tables".to_string(),
            number(&int(r.tables.len() as u64)),
            format!(
                "{} cells · {} suppressed ({})",
                int(cells),
                int(suppressed),
                pct_of(suppressed, cells)
            ),
        ),
    ];
    out.push_str("<section class=\"headline\" aria-label=\"Headline figures\">\n");
    for (label, value, sub) in cards {
        let _ = writeln!(
            out,
            "<div class=\"card\"><p class=\"label\">{}</p>{value}<p class=\"sub\">{sub}</p></div>",
            esc(&label)
        );
    }
    out.push_str("</section>\n");
}

fn contents(out: &mut String) {
    out.push_str("<nav class=\"toc\" aria-label=\"Contents\"><ol>");
    for (id, title) in SECTIONS {
        let _ = write!(out, "<li><a href=\"#{id}\">{}</a></li>", esc(title));
    }
    out.push_str("</ol></nav>\n");
}

fn linkage(out: &mut String, r: &RunReport) {
    section(
        out,
        "linkage",
        "The share of each source's units found on the payroll backbone. What a unit is differs per source: the table names it under the source.",
    );
    let rows: Vec<BarRow> = r
        .sources
        .iter()
        .filter_map(|s| {
            let p = share(s.linked, s.linked.saturating_add(s.not_linked))?;
            Some(BarRow {
                label: s.name.clone(),
                segments: vec![(p, BLUE)],
                note: pct(p),
            })
        })
        .collect();
    figure(
        out,
        charts::bars("Share of units linked per source", &rows, Scale::Percent),
        "Share of units linked to the payroll, per source.",
        if r.sources.is_empty() {
            "No sources were recorded for this run."
        } else {
            "No source has units to link, so there is no share to show."
        },
    );
    if r.sources.is_empty() {
        out.push_str("</section>\n");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Source</th><th>Periods</th><th class=\"n\">Rows read</th>\
         <th class=\"n\">Accepted</th><th class=\"n\">Rejected</th><th class=\"n\">Linked</th><th class=\"n\">Not linked</th>\
         <th class=\"n\">Linked %</th><th class=\"n\">Duplicates</th></tr></thead>\n<tbody>\n",
    );
    for s in &r.sources {
        let _ = writeln!(
            out,
            "<tr><td><span class=\"code\">{}</span><span class=\"unit\">{}</span></td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.name),
            esc(&s.unit),
            esc(&s.periods.join(", ")),
            int(s.rows_read),
            int(s.rows_accepted),
            int(s.rows_rejected),
            int(s.linked),
            int(s.not_linked),
            pct_of(s.linked, s.linked.saturating_add(s.not_linked)),
            int(s.duplicates),
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn rejects(out: &mut String, r: &RunReport) {
    section(
        out,
        "rejects",
        "Rows refused at ingest, by the rule they broke. A rejected row is counted, never silently dropped.",
    );
    let all = total(r.rejects.iter().map(|x| x.rows));
    if all == 0 {
        out.push_str("<p class=\"empty good\">No rows were rejected.</p>\n</section>\n");
        return;
    }
    let mut by_rule: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for x in &r.rejects {
        let n = by_rule.entry((&x.source, &x.rule)).or_default();
        *n = n.saturating_add(x.rows);
    }
    let mut ranked: Vec<((&str, &str), u64)> = by_rule.into_iter().filter(|e| e.1 > 0).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown = ranked.len().min(REJECT_TOP);
    let rows: Vec<BarRow> = ranked[..shown]
        .iter()
        .map(|((source, rule), n)| BarRow {
            label: format!("{source} · {rule}"),
            segments: vec![(*n as f64, AMBER)],
            note: int(*n),
        })
        .collect();
    let caption = if shown < ranked.len() {
        format!(
            "Rejected rows per source and rule: the {shown} largest of {} shown.",
            ranked.len()
        )
    } else {
        "Rejected rows per source and rule.".to_string()
    };
    figure(
        out,
        charts::bars("Rejected rows per source and rule", &rows, Scale::Count),
        &caption,
        "The chart could not be drawn; the table below has the numbers.",
    );
    let mut list: Vec<_> = r.rejects.iter().collect();
    list.sort_by(|a, b| {
        (&a.source, &a.period, &a.column, &a.rule).cmp(&(&b.source, &b.period, &b.column, &b.rule))
    });
    out.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Source</th><th>Period</th><th>Column</th><th>Rule</th><th class=\"n\">Rows</th></tr></thead>\n<tbody>\n",
    );
    for x in list {
        let _ = writeln!(
            out,
            "<tr><td class=\"code\">{}</td><td>{}</td><td class=\"code\">{}</td><td class=\"code\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&x.source),
            esc(&x.period),
            esc(&x.column),
            esc(&x.rule),
            int(x.rows)
        );
    }
    let _ = write!(
        out,
        "</tbody>\n<tfoot><tr><td colspan=\"4\">Total</td><td class=\"n\">{}</td></tr></tfoot>\n</table></div>\n</section>\n",
        int(all)
    );
}

/// Reads one source's count from a coverage row.
type Count = fn(&CoverageRow) -> u64;

/// The person-level sources of the coverage table, with their counts.
const COVERAGE_SOURCES: [(&str, Count); 4] = [
    ("Absence", |c| c.absence_persons),
    ("Insured with IZZ", |c| c.izz_insured_persons),
    ("Care use (claims)", |c| c.care_use_persons),
    ("Survey", |c| c.survey_persons),
];

/// Adds a coverage row's counts into a cell.
fn add(cell: &mut CoverageRow, c: &CoverageRow) {
    cell.payroll_persons = cell.payroll_persons.saturating_add(c.payroll_persons);
    cell.absence_persons = cell.absence_persons.saturating_add(c.absence_persons);
    cell.izz_insured_persons = cell
        .izz_insured_persons
        .saturating_add(c.izz_insured_persons);
    cell.care_use_persons = cell.care_use_persons.saturating_add(c.care_use_persons);
    cell.survey_persons = cell.survey_persons.saturating_add(c.survey_persons);
}

fn coverage(out: &mut String, rows: &[CoverageRow]) {
    section(
        out,
        "coverage",
        "Of the persons on the payroll, the share each person-level source holds, per sector and age band. Gaps here are gaps in what the release can say about that group.",
    );
    let Some(latest) = rows.iter().map(|c| c.year).max() else {
        out.push_str(
            "<p class=\"empty\">No coverage figures were recorded for this run.</p>\n</section>\n",
        );
        return;
    };
    let current: Vec<&CoverageRow> = rows.iter().filter(|c| c.year == latest).collect();

    let mut sector_size: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &current {
        let n = sector_size.entry(&c.sector).or_default();
        *n = n.saturating_add(c.payroll_persons);
    }
    let mut sectors: Vec<(&str, u64)> = sector_size.into_iter().collect();
    sectors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let sectors: Vec<&str> = sectors.into_iter().map(|s| s.0).collect();
    let mut bands: Vec<&str> = current.iter().map(|c| c.age_band.as_str()).collect();
    bands.sort_by(|a, b| cmp_age_band(a, b));
    bands.dedup();

    // Several rows for one cell would be an upstream error; adding them up
    // keeps the page truthful about what it was given.
    let mut cells: BTreeMap<(&str, &str), CoverageRow> = BTreeMap::new();
    for c in &current {
        add(cells.entry((&c.sector, &c.age_band)).or_default(), c);
    }
    let heat = HeatPanels {
        rows: sectors.iter().map(|s| s.to_string()).collect(),
        columns: bands.iter().map(|b| b.to_string()).collect(),
        panels: COVERAGE_SOURCES
            .iter()
            .map(|(name, count)| {
                let grid = sectors
                    .iter()
                    .map(|s| {
                        bands
                            .iter()
                            .map(|b| {
                                cells
                                    .get(&(*s, *b))
                                    .and_then(|c| share(count(c), c.payroll_persons))
                            })
                            .collect()
                    })
                    .collect();
                (name.to_string(), grid)
            })
            .collect(),
    };
    figure(
        out,
        charts::heat_panels(&format!("Coverage by sector and age band, {latest}"), &heat),
        &format!(
            "Share of payroll persons (%) present in each source, {latest}, by sector (rows, largest first) and age band (columns). A dash: no payroll persons in the cell."
        ),
        "The chart could not be drawn; the table below has the numbers.",
    );
    legend(
        out,
        &[0.0, 25.0, 50.0, 75.0, 100.0].map(|p| (format!("{p:.0}%"), charts::heat_color(p))),
    );
    sector_table(out, latest, &sectors, &cells);
    let _ = writeln!(
        out,
        "<details><summary>Per sector and age band, {latest}</summary>"
    );
    coverage_table(out, latest, &sectors, &bands, &cells);
    out.push_str("</details>\n");

    let mut earlier: Vec<i32> = rows
        .iter()
        .map(|c| c.year)
        .filter(|y| *y != latest)
        .collect();
    earlier.sort_unstable();
    earlier.dedup();
    for year in earlier.into_iter().rev() {
        let mut cells: BTreeMap<(&str, &str), CoverageRow> = BTreeMap::new();
        for c in rows.iter().filter(|c| c.year == year) {
            add(cells.entry((&c.sector, &c.age_band)).or_default(), c);
        }
        let mut s: Vec<&str> = sectors.clone();
        for (sector, _) in cells.keys() {
            if !s.contains(sector) {
                s.push(sector);
            }
        }
        let mut b: Vec<&str> = cells.keys().map(|k| k.1).collect();
        b.sort_by(|x, y| cmp_age_band(x, y));
        b.dedup();
        let _ = writeln!(out, "<details><summary>Coverage in {year}</summary>");
        coverage_table(out, year, &s, &b, &cells);
        out.push_str("</details>\n");
    }
    out.push_str("</section>\n");
}

/// The counts and shares of one coverage cell (or sum of cells).
fn coverage_cells(out: &mut String, c: &CoverageRow) {
    let _ = write!(out, "<td class=\"n\">{}</td>", int(c.payroll_persons));
    for (_, count) in COVERAGE_SOURCES {
        let _ = write!(
            out,
            "<td class=\"n\">{}</td><td class=\"n pct\">{}</td>",
            int(count(c)),
            pct_of(count(c), c.payroll_persons)
        );
    }
}

fn coverage_head(out: &mut String, caption: &str, first: &str) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table class=\"coverage\">\n<caption>{}</caption>\n\
         <thead><tr>{first}<th class=\"n\">Payroll</th>",
        esc(caption)
    );
    for (name, _) in COVERAGE_SOURCES {
        let _ = write!(out, "<th class=\"n\" colspan=\"2\">{}</th>", esc(name));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
}

/// Coverage per sector over all age bands, with the sector-wide total.
fn sector_table(
    out: &mut String,
    year: i32,
    sectors: &[&str],
    cells: &BTreeMap<(&str, &str), CoverageRow>,
) {
    coverage_head(
        out,
        &format!("Persons per sector, {year}"),
        "<th>Sector</th>",
    );
    let mut all = CoverageRow::default();
    for sector in sectors {
        let mut sum = CoverageRow::default();
        for c in cells
            .iter()
            .filter(|((s, _), _)| s == sector)
            .map(|(_, c)| c)
        {
            add(&mut sum, c);
        }
        add(&mut all, &sum);
        let _ = write!(out, "<tr><td>{}</td>", esc(sector));
        coverage_cells(out, &sum);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><td>All sectors</td>");
    coverage_cells(out, &all);
    out.push_str("</tr></tfoot>\n</table></div>\n");
}

fn coverage_table(
    out: &mut String,
    year: i32,
    sectors: &[&str],
    bands: &[&str],
    cells: &BTreeMap<(&str, &str), CoverageRow>,
) {
    coverage_head(
        out,
        &format!("Persons per sector and age band, {year}"),
        "<th>Sector</th><th>Age band</th>",
    );
    for sector in sectors {
        let present: Vec<&&str> = bands
            .iter()
            .filter(|b| cells.contains_key(&(*sector, **b)))
            .collect();
        for (i, band) in present.iter().enumerate() {
            let c = &cells[&(*sector, **band)];
            out.push_str("<tr>");
            if i == 0 {
                let _ = write!(
                    out,
                    "<th scope=\"rowgroup\" rowspan=\"{}\">{}</th>",
                    present.len(),
                    esc(sector)
                );
            }
            let _ = write!(out, "<td>{}</td>", esc(band));
            coverage_cells(out, c);
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody>\n</table></div>\n");
}

fn overlap(out: &mut String, rows: &[OverlapRow]) {
    section(
        out,
        "overlap",
        "Persons by the exact combination of person-level sources they appear in. Each person counts once, in one combination.",
    );
    let Some(latest) = rows.iter().map(|o| o.year).max() else {
        out.push_str(
            "<p class=\"empty\">No source overlap was recorded for this run.</p>\n</section>\n",
        );
        return;
    };
    let year_rows: Vec<&OverlapRow> = rows.iter().filter(|o| o.year == latest).collect();
    // Sources in order of first appearance: the order the linkage report
    // gives them in, which is also the order of the chart's rows.
    let mut sources: Vec<&str> = Vec::new();
    for s in year_rows.iter().flat_map(|o| &o.sources) {
        if !sources.contains(&s.as_str()) {
            sources.push(s);
        }
    }
    // A combination is the set of its sources' positions, so the same set
    // listed in another order or twice is still one combination.
    let mut combos: BTreeMap<Vec<usize>, u64> = BTreeMap::new();
    for o in &year_rows {
        let mut key: Vec<usize> = o
            .sources
            .iter()
            .filter_map(|s| sources.iter().position(|x| x == s))
            .collect();
        key.sort_unstable();
        key.dedup();
        let n = combos.entry(key).or_default();
        *n = n.saturating_add(o.persons);
    }
    let mut ranked: Vec<(Vec<usize>, u64)> = combos.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let persons = total(ranked.iter().map(|c| c.1));
    let shown = ranked.len().min(UPSET_TOP);
    let data = Upset {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        combinations: ranked[..shown]
            .iter()
            .map(|(k, n)| ((0..sources.len()).map(|i| k.contains(&i)).collect(), *n))
            .collect(),
    };
    let caption = if shown < ranked.len() {
        format!(
            "Persons per combination of sources, {latest}: the {shown} largest of {} combinations; a filled dot marks a source the persons are in.",
            ranked.len()
        )
    } else {
        format!(
            "Persons per combination of sources, {latest}; a filled dot marks a source the persons are in."
        )
    };
    figure(
        out,
        charts::upset(&format!("Source overlap, {latest}"), &data),
        &caption,
        "No persons were recorded in any source, so there is no overlap to show.",
    );
    let _ = write!(
        out,
        "<div class=\"scroll\"><table>\n<caption>Persons per combination of sources, {latest}</caption>\n\
         <thead><tr><th>Sources</th><th class=\"n\">Persons</th><th class=\"n\">Share</th></tr></thead>\n<tbody>\n"
    );
    for (k, n) in &ranked {
        let names = if k.is_empty() {
            "(none)".to_string()
        } else {
            k.iter()
                .map(|&i| esc(sources[i]))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"code\">{names}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            int(*n),
            pct_of(*n, persons)
        );
    }
    let _ = write!(
        out,
        "</tbody>\n<tfoot><tr><td>All persons</td><td class=\"n\">{}</td><td class=\"n\"></td></tr></tfoot>\n</table></div>\n</section>\n",
        int(persons)
    );
}

fn person(out: &mut String, r: &RunReport) {
    let p = &r.person;
    section(
        out,
        "person",
        "Every declared recipient — each partner, an employer, an outsider — finds at least k persons sharing what it already knows of any released person: among the respondents for the insurer, who knows who responded; among the whole workforce for the others. Variables are coarsened as far as needed; persons who still stand out lose single values; persons who stand out even then are left out.",
    );
    let (verdict, class) = match k_met(r) {
        Some(true) => ("k met", "ok"),
        Some(false) => ("k NOT met", "bad"),
        None => ("nothing released", "none"),
    };
    let reached = if p.rows_released > 0 {
        int(p.smallest_class)
    } else {
        "–".into()
    };
    let suppressed_pct = share(p.rows_locally_suppressed, p.rows_in);
    let _ = write!(
        out,
        "<div class=\"kbox {class}\">\n\
         <div><p class=\"label\">k asked</p><p class=\"big\">{}</p></div>\n\
         <div><p class=\"label\">k reached (smallest class)</p><p class=\"big\">{reached}</p></div>\n\
         <div><p class=\"label\">verdict</p><p class=\"big verdict\">{verdict}</p></div>\n\
         <div><p class=\"label\">rows locally suppressed</p><p class=\"big\">{}</p><p class=\"sub\">cap {}%</p></div>\n\
         <div><p class=\"label\">information loss</p><p class=\"big\">{}</p><p class=\"sub\">0 as linked, 1 all suppressed</p></div>\n\
         </div>\n",
        int(u64::from(p.k)),
        suppressed_pct.map_or("–".into(), pct),
        decimal(p.max_suppression_pct),
        decimal(p.information_loss),
    );

    let intact = p.rows_released.saturating_sub(p.rows_locally_suppressed);
    let parts = [
        ("Released as generalised", intact, BLUE),
        (
            "Released, quasi-identifiers suppressed",
            p.rows_locally_suppressed,
            AMBER,
        ),
        ("Left out", p.rows_dropped, RED),
    ];
    let rows_chart = (p.rows_in > 0).then(|| BarRow {
        label: "Person rows".into(),
        segments: parts
            .iter()
            .map(|(_, n, c)| (share(*n, p.rows_in).unwrap_or(0.0), *c))
            .collect(),
        note: int(p.rows_in),
    });
    figure(
        out,
        rows_chart
            .and_then(|row| charts::bars("What became of the person rows", &[row], Scale::Percent)),
        "What became of the person rows, in percent of the rows in.",
        "No person rows came in.",
    );
    if p.rows_in > 0 {
        legend(
            out,
            &parts.map(|(label, n, c)| {
                (format!("{label}: {} ({})", int(n), pct_of(n, p.rows_in)), c)
            }),
        );
    }

    let _ = writeln!(
        out,
        "<h3>Quasi-identifiers</h3>\n<p class=\"lede\">The generalisation chosen for each quasi-identifier (blue steps; amber where the last step suppresses the variable entirely) and the values it lost.</p>"
    );
    let gen_rows: Vec<Generalisation> = p
        .quasi_identifiers
        .iter()
        .map(|q| Generalisation {
            column: q.column.clone(),
            level: q.level,
            levels: q.levels,
            level_name: q.level_name.clone(),
            values_suppressed: q.values_suppressed,
        })
        .collect();
    figure(
        out,
        charts::generalisation("Generalisation per quasi-identifier", &gen_rows),
        "Generalisation steps taken of those available, and values suppressed, per quasi-identifier.",
        "No quasi-identifiers were declared.",
    );
    if !p.quasi_identifiers.is_empty() {
        out.push_str(
            "<div class=\"scroll\"><table>\n<thead><tr><th>Quasi-identifier</th><th>Released as</th><th class=\"n\">Step</th>\
             <th class=\"n\">Values suppressed</th><th class=\"n\">Values unknown as linked</th></tr></thead>\n<tbody>\n",
        );
        for q in &p.quasi_identifiers {
            let _ = writeln!(
                out,
                "<tr><td class=\"code\">{}</td><td>{}</td><td class=\"n\">{} of {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&q.column),
                or_dash(&q.level_name),
                int(q.level as u64),
                int(q.levels.saturating_sub(1) as u64),
                int(q.values_suppressed),
                int(q.values_missing)
            );
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
    if !p.recipients.is_empty() {
        out.push_str(
            "<h3>Risk per recipient</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th>Recipient</th><th>Assumed to know</th><th>Counted in</th>\
             <th class=\"n\">Persons</th><th class=\"n\">At risk unprotected</th><th class=\"n\">At risk released</th><th class=\"n\">Smallest class</th></tr></thead>\n<tbody>\n",
        );
        for r in &p.recipients {
            let knows: Vec<String> = r
                .knows
                .iter()
                .map(|k| format!("<span class=\"code\">{}</span>", esc(k)))
                .collect();
            let _ = writeln!(
                out,
                "<tr><td>{} <span class=\"sub\">({})</span></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} ({})</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&r.recipient),
                esc(&r.assumption),
                if knows.is_empty() {
                    "–".to_owned()
                } else {
                    knows.join(", ")
                },
                esc(&r.counted_in),
                int(r.persons),
                int(r.at_risk_before),
                pct_of(r.at_risk_before, r.persons),
                int(r.at_risk_after),
                int(r.smallest_class)
            );
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
    if p.columns_withheld.is_empty() {
        out.push_str("<p>No columns were withheld.</p>\n");
    } else {
        let list: Vec<String> = p
            .columns_withheld
            .iter()
            .map(|c| format!("<span class=\"code\">{}</span>", esc(c)))
            .collect();
        let _ = writeln!(
            out,
            "<p>Model columns the release did not ask for, and so not released: {}.</p>",
            list.join(", ")
        );
    }
    out.push_str("</section>\n");
}

fn organisation(out: &mut String, r: &RunReport) {
    let o = &r.organisation;
    section(
        out,
        "organisation",
        "One row per organisation and year. Small organisations are left out; a statistic resting on too few persons is suppressed.",
    );
    let _ = write!(
        out,
        "<ul class=\"facts\">\n<li><span class=\"label\">Organisation-years in</span> {}</li>\n\
         <li><span class=\"label\">released</span> {}</li>\n\
         <li><span class=\"label\">left out (fewer than {} persons)</span> {}</li>\n\
         <li><span class=\"label\">statistics need at least</span> {} persons</li>\n</ul>\n",
        int(o.rows_in),
        int(o.rows_released),
        int(o.min_persons),
        int(o.rows_left_out),
        int(o.k),
    );
    if o.suppressed.is_empty() {
        out.push_str(
            "<p class=\"empty\">No organisation statistics were recorded.</p>\n</section>\n",
        );
        return;
    }
    let mut ranked: Vec<(&String, &u64)> = o.suppressed.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    if ranked.iter().all(|(_, n)| **n == 0) {
        out.push_str("<p class=\"empty good\">No organisation statistic was suppressed.</p>\n");
    } else {
        let rows: Vec<BarRow> = ranked
            .iter()
            .map(|(name, n)| BarRow {
                label: name.to_string(),
                segments: vec![(**n as f64, TEAL)],
                note: format!("{} ({})", int(**n), pct_of(**n, o.rows_released)),
            })
            .collect();
        figure(
            out,
            charts::bars("Values suppressed per statistic", &rows, Scale::Count),
            "Values suppressed per statistic, with their share of the organisation-years released.",
            "The chart could not be drawn; the table below has the numbers.",
        );
    }
    out.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Statistic</th><th class=\"n\">Values suppressed</th><th class=\"n\">Of released</th></tr></thead>\n<tbody>\n",
    );
    for (name, n) in &o.suppressed {
        let _ = writeln!(
            out,
            "<tr><td class=\"code\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(name),
            int(*n),
            pct_of(*n, o.rows_released)
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

/// Status codes in reading order (released, then by rule), with a name
/// for people and a colour.
const STATUS_ORDER: [(&str, &str, RGBColor); 6] = [
    ("safe", "safe", RGBColor(0x4e, 0x9a, 0x6f)),
    ("empty", "empty", RGBColor(0xc9, 0xd1, 0xda)),
    ("primary_threshold", "threshold", RGBColor(0xe0, 0x8a, 0x3c)),
    ("primary_dominance", "dominance", RGBColor(0xc0, 0x4a, 0x3a)),
    ("primary_p_percent", "p%", RGBColor(0x8b, 0x5f, 0xbf)),
    ("secondary", "secondary", RGBColor(0xe9, 0xc4, 0x6a)),
];
/// Colours for status codes this version does not know.
const STATUS_SPARE: [RGBColor; 3] = [
    RGBColor(0x5b, 0x8f, 0xd9),
    RGBColor(0x6b, 0xb5, 0xb0),
    RGBColor(0x8a, 0x8f, 0x98),
];

fn tables(out: &mut String, list: &[TableRow]) {
    section(
        out,
        "tables",
        "Cells per table by status: safe, empty, suppressed by a primary rule (threshold, dominance, p%), or suppressed to protect those (secondary).",
    );
    if list.is_empty() {
        out.push_str("<p class=\"empty\">No tables were released.</p>\n</section>\n");
        return;
    }
    // (code, name for people, colour) of every status present.
    let mut statuses: Vec<(String, String, RGBColor)> = STATUS_ORDER
        .iter()
        .filter(|(code, _, _)| list.iter().any(|t| t.status.contains_key(*code)))
        .map(|(code, name, color)| (code.to_string(), name.to_string(), *color))
        .collect();
    let mut unknown: Vec<&String> = list
        .iter()
        .flat_map(|t| t.status.keys())
        .filter(|s| !STATUS_ORDER.iter().any(|(code, _, _)| code == s))
        .collect();
    unknown.sort();
    unknown.dedup();
    for (i, code) in unknown.into_iter().enumerate() {
        let color = STATUS_SPARE[i % STATUS_SPARE.len()];
        statuses.push((code.clone(), code.clone(), color));
    }
    let label = |t: &TableRow| {
        if t.label.trim().is_empty() {
            t.name.clone()
        } else {
            t.label.clone()
        }
    };
    let rows: Vec<BarRow> = list
        .iter()
        .map(|t| {
            let counted = total(t.status.values().copied());
            BarRow {
                label: label(t),
                segments: statuses
                    .iter()
                    .map(|(s, _, c)| {
                        let n = t.status.get(s).copied().unwrap_or(0);
                        (share(n, counted).unwrap_or(0.0), *c)
                    })
                    .collect(),
                note: format!("{} cells", int(t.cells)),
            }
        })
        .collect();
    figure(
        out,
        charts::bars("Cells per status per table", &rows, Scale::Percent),
        "Cells per status, in percent of each table's cells (margins included).",
        "The chart could not be drawn; the table below has the numbers.",
    );
    legend(
        out,
        &statuses
            .iter()
            .map(|(code, name, color)| {
                let label = if code == name {
                    code.clone()
                } else {
                    format!("{name} ({code})")
                };
                (label, *color)
            })
            .collect::<Vec<_>>(),
    );
    out.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Table</th><th class=\"n\">Cells</th>",
    );
    for (_, name, _) in &statuses {
        let _ = write!(out, "<th class=\"n\">{}</th>", esc(name));
    }
    out.push_str("<th class=\"n\">Suppressed</th></tr></thead>\n<tbody>\n");
    for t in list {
        let _ = write!(
            out,
            "<tr><td>{}<span class=\"unit code\">{}</span></td><td class=\"n\">{}</td>",
            esc(&label(t)),
            esc(&t.name),
            int(t.cells)
        );
        for (s, _, _) in &statuses {
            let _ = write!(
                out,
                "<td class=\"n\">{}</td>",
                int(t.status.get(s).copied().unwrap_or(0))
            );
        }
        let n = suppressed_cells(t);
        let _ = writeln!(
            out,
            "<td class=\"n\">{} <span class=\"pct\">{}</span></td></tr>",
            int(n),
            pct_of(n, t.cells)
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn footer(out: &mut String, r: &RunReport) {
    let keys = if r.keys.is_empty() {
        "–".to_string()
    } else {
        r.keys
            .iter()
            .map(|k| format!("<span class=\"code\">{}</span>", esc(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        out,
        "<footer>\n<div class=\"wrap\">\n<p>Keys: {keys}.</p>\n\
         <p>This report holds counts only: no pseudonyms, identifiers or key material. \
         Written by koppel-report for release {}.</p>\n</div>\n</footer>\n",
        or_dash(&r.release_id)
    );
}
