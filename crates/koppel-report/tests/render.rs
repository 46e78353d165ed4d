//! The page as text: deterministic, escaped, self-contained, every chart
//! well-formed, every number readable in a table.

use std::collections::BTreeMap;

use koppel_report::{
    CoverageRow, OverlapRow, QuasiIdentifierRow, RejectRow, RunReport, SourceRow, TableRow,
    render_html,
};

/// Every inline `<svg>…</svg>` of the page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end =
            rest[start..].find("</svg>").expect("every <svg> is closed") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Parses every chart as XML (stricter than HTML) and returns the texts of
/// its `<text>` elements, as a browser would show them.
fn chart_texts(html: &str) -> Vec<Vec<String>> {
    svgs(html)
        .into_iter()
        .map(|svg| {
            let doc = roxmltree::Document::parse(svg)
                .unwrap_or_else(|e| panic!("chart is not well-formed XML: {e}\n{svg}"));
            doc.descendants()
                .filter(|n| n.has_tag_name("text"))
                .map(|n| n.text().unwrap_or_default().trim().to_string())
                .collect()
        })
        .collect()
}

/// The tag names the page writes. A tag outside this list means text got
/// into the markup unescaped.
const TAGS: &[&str] = &[
    "!DOCTYPE",
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "main",
    "footer",
    "nav",
    "ol",
    "ul",
    "li",
    "a",
    "section",
    "div",
    "p",
    "h1",
    "h2",
    "h3",
    "span",
    "strong",
    "figure",
    "figcaption",
    "table",
    "caption",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "svg",
    "rect",
    "text",
    "circle",
    "line",
    "polyline",
    "polygon",
];

fn tag_names(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let name: String = rest
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        names.push(name);
    }
    names
}

fn assert_only_known_tags(html: &str) {
    // The stylesheet is the one place with text that is not markup; it is
    // a constant of this crate and holds no `<`.
    for name in tag_names(html) {
        assert!(
            TAGS.contains(&name.as_str()),
            "unexpected tag <{name}>: unescaped text in the page?"
        );
    }
}

fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for needle in [
        "http://",
        "https://",
        "<script",
        "<link",
        "@import",
        "url(",
        "src=",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "xlink:",
        "//cdn",
        "javascript:",
    ] {
        assert!(
            !lower.contains(needle),
            "page refers outside itself: {needle}"
        );
    }
    // Links only to sections of the page itself.
    for (i, _) in lower.match_indices("href=") {
        assert!(
            lower[i..].starts_with("href=\"#"),
            "external link: {}",
            &html[i..i + 40]
        );
    }
}

fn assert_no_bad_numbers(html: &str) {
    for bad in ["NaN", "inf%", "Infinity", "-0.0%"] {
        assert!(!html.contains(bad), "page shows {bad}");
    }
}

#[test]
fn same_report_gives_the_same_bytes() {
    let report = RunReport::example();
    let first = render_html(&report);
    let second = render_html(&report.clone());
    assert_eq!(first, second);
    // Through JSON and back, as a run that keeps its report would.
    let json = serde_json::to_string(&report).unwrap();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert_eq!(render_html(&back), first);
}

#[test]
fn example_page_is_complete_and_self_contained() {
    let html = render_html(&RunReport::example());
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.ends_with("</html>\n"));
    assert_self_contained(&html);
    assert_only_known_tags(&html);
    assert_no_bad_numbers(&html);
    for id in [
        "linkage",
        "rejects",
        "coverage",
        "overlap",
        "person",
        "organisation",
        "tables",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        assert!(html.contains(&format!("<a href=\"#{id}\">")), "{id}");
    }
    // Headline figures.
    assert!(html.contains("<h1>Release preventieplan-2024-r2</h1>"));
    assert!(html.contains("<p class=\"value\">337,255</p>"));
    assert!(html.contains("<p class=\"value\">11 <span class=\"of\">/ 10</span></p>"));
    assert!(html.contains("k met"));
    assert!(html.contains("647 cells · 76 suppressed (11.7%)"));
}

#[test]
fn every_chart_is_well_formed_svg_with_text() {
    let html = render_html(&RunReport::example());
    let texts = chart_texts(&html);
    // Linkage, rejects, coverage, overlap, person rows, quasi-identifiers,
    // organisation statistics, tables.
    assert_eq!(texts.len(), 8);
    for svg in svgs(&html) {
        assert!(svg.starts_with("<svg class=\"chart\" viewBox=\"0 0 960 "));
        assert!(svg.contains("<title>"));
        assert!(svg.contains("<rect"));
    }
    // plotters writes its labels as <text> without any font engine.
    let linkage = &texts[0];
    for source in [
        "pfzw_dienstverbanden",
        "izz_monitor",
        "intrakoop_jaarverslagen",
    ] {
        assert!(linkage.iter().any(|t| t == source), "{source}: {linkage:?}");
    }
    assert!(linkage.iter().any(|t| t == "100%"));
    assert!(linkage.iter().any(|t| t == "89.8%"));
    let coverage = &texts[2];
    assert!(
        coverage
            .iter()
            .any(|t| t == "Verpleeg- & verzorgingshuizen")
    );
    assert!(coverage.iter().any(|t| t == "<25"));
    let overlap = &texts[3];
    assert!(overlap.iter().any(|t| t == "328,933"));
}

#[test]
fn tables_hold_the_exact_numbers() {
    let html = render_html(&RunReport::example());
    for cell in [
        // Sources.
        "<td class=\"n\">19,402,118</td>",
        "<td class=\"n\">19,400,914</td>",
        "<td class=\"n\">2,689,574</td>",
        "<td class=\"n\">89.8%</td>",
        // Rejects and their total.
        "<td class=\"code\">invalid_bsn</td><td class=\"n\">612</td>",
        "<td colspan=\"4\">Total</td><td class=\"n\">2,784</td>",
        // Coverage, latest year: per sector, in all, and per age band.
        "<td>Verpleeg- &amp; verzorgingshuizen</td><td class=\"n\">486,000</td>",
        "<td>All sectors</td><td class=\"n\">1,357,000</td>",
        "<td>&lt;25</td><td class=\"n\">58,320</td><td class=\"n\">29,102</td><td class=\"n pct\">49.9%</td>",
        // Overlap.
        "<td class=\"n\">328,933</td>",
        // Person file.
        "<td class=\"n\">321,540</td>",
        "<td class=\"n\">1 of 3</td>",
        // Organisation statistics.
        "<td class=\"code\">ggz_share_insured</td><td class=\"n\">212</td><td class=\"n\">5.9%</td>",
        // Tables.
        "<td class=\"n\">216</td><td class=\"n\">171</td>",
    ] {
        assert!(html.contains(cell), "missing {cell}");
    }
    // The earlier year is there too, folded away.
    assert!(html.contains("<details><summary>Coverage in 2023</summary>"));
}

/// A report whose every text field tries to break out of the markup.
fn hostile() -> RunReport {
    let evil = r#"Verpleeg- & verzorgingshuizen <VVT> "q" 'a' </svg><script>x()</script>"#;
    let mut r = RunReport::example();
    r.release_id = format!("r1 {evil}");
    r.pipeline = evil.into();
    r.keys = vec![evil.into()];
    r.sources[0].name = evil.into();
    r.sources[0].unit = evil.into();
    r.rejects[0].rule = evil.into();
    r.rejects[0].column = evil.into();
    for c in &mut r.coverage {
        if c.sector == "Ziekenhuizen" {
            c.sector = evil.into();
        }
    }
    let latest = r.coverage.iter().position(|c| c.year == 2024).unwrap();
    r.coverage[latest].age_band = "<&>".into();
    let latest = r.overlap.iter().position(|o| o.year == 2024).unwrap();
    r.overlap[latest].sources = vec![evil.into(), "izz_monitor".into()];
    r.person.quasi_identifiers[0].column = evil.into();
    r.person.quasi_identifiers[0].level_name = evil.into();
    r.person.columns_withheld = vec![evil.into()];
    r.organisation.suppressed.insert(evil.into(), 3);
    r.tables[0].label = evil.into();
    r.tables[0].name = evil.into();
    r.tables[0].status.insert(evil.into(), 1);
    r
}

#[test]
fn text_is_escaped_in_html_and_in_charts() {
    let report = hostile();
    let html = render_html(&report);
    assert!(!html.contains("<VVT>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("</svg><script"));
    assert!(html.contains("Verpleeg- &amp; verzorgingshuizen &lt;VVT&gt;"));
    assert_only_known_tags(&html);
    assert_self_contained(&html);
    let texts = chart_texts(&html);
    assert_eq!(texts.len(), 8);
    // Wherever a chart shows one of those labels (cut to fit), the XML
    // parser gives back the original text: escaped once, not twice.
    let start = "Verpleeg- & verzorgingshuizen <";
    let shown: usize = texts
        .iter()
        .map(|t| t.iter().filter(|s| s.contains(start)).count())
        .sum();
    // Linkage, coverage, overlap, quasi-identifiers, organisation, tables.
    assert!(shown >= 6, "hostile label shown in {shown} chart texts");
    // Cut labels are cut on characters, before escaping.
    assert!(texts[1].iter().any(|t| {
        t.starts_with("pfzw_dienstverbanden · Verpleeg- & verzorging")
            && t.ends_with('…')
            && t.chars().count() == 52
    }));
    assert!(texts[2].iter().any(|t| t == "<&>"));
    assert!(
        texts[2]
            .iter()
            .any(|t| t == r#"Verpleeg- & verzorgingshuizen <VVT> "q"…"#)
    );
    // The chart titles (for screen readers) are escaped too.
    assert!(html.contains("<title>Coverage by sector and age band, 2024</title>"));
    assert!(html.contains("<title>Run report — release r1 Verpleeg- &amp;"));
}

#[test]
fn empty_report_renders_sentences_not_charts() {
    let html = render_html(&RunReport::default());
    assert_self_contained(&html);
    assert_only_known_tags(&html);
    assert_no_bad_numbers(&html);
    assert!(svgs(&html).is_empty());
    for sentence in [
        "No sources were recorded for this run.",
        "No rows were rejected.",
        "No coverage figures were recorded for this run.",
        "No source overlap was recorded for this run.",
        "No person rows came in.",
        "No quasi-identifiers were declared.",
        "No organisation statistics were recorded.",
        "No tables were released.",
        "nothing released",
    ] {
        assert!(html.contains(sentence), "missing: {sentence}");
    }
    assert!(html.contains("<h1>Release –</h1>"));
}

#[test]
fn zero_denominators_give_dashes_not_nan() {
    let mut r = RunReport {
        sources: vec![SourceRow {
            name: "izz_monitor".into(),
            ..SourceRow::default()
        }],
        rejects: vec![RejectRow {
            source: "izz_monitor".into(),
            rows: 0,
            ..RejectRow::default()
        }],
        coverage: vec![CoverageRow {
            year: 2024,
            sector: "GGZ".into(),
            age_band: "<25".into(),
            ..CoverageRow::default()
        }],
        overlap: vec![OverlapRow {
            year: 2024,
            sources: vec![],
            persons: 0,
        }],
        tables: vec![TableRow {
            name: "t".into(),
            label: String::new(),
            cells: 0,
            status: BTreeMap::new(),
        }],
        ..RunReport::default()
    };
    r.person.quasi_identifiers = vec![QuasiIdentifierRow {
        column: "age".into(),
        level_name: String::new(),
        level: 0,
        levels: 0,
        values_suppressed: 0,
        values_missing: 0,
    }];
    r.organisation.suppressed.insert("absence_pct".into(), 0);
    let html = render_html(&r);
    assert_no_bad_numbers(&html);
    assert_only_known_tags(&html);
    for svg in svgs(&html) {
        roxmltree::Document::parse(svg).expect("well-formed");
    }
    assert!(html.contains("No source has units to link"));
    assert!(html.contains("No rows were rejected."));
    assert!(html.contains("No organisation statistic was suppressed."));
    // The coverage cell has no payroll persons: a dash, in chart and table.
    assert!(html.contains("<td class=\"n pct\">–</td>"));
    assert!(chart_texts(&html).iter().flatten().any(|t| t == "–"));
}

#[test]
fn k_not_met_is_shown_as_such() {
    let mut r = RunReport::example();
    r.person.smallest_class = 7;
    let html = render_html(&r);
    assert!(html.contains("<span class=\"pill bad\">k not met</span>"));
    assert!(html.contains("<div class=\"kbox bad\">"));
    assert!(html.contains("k NOT met"));
}

#[test]
fn long_lists_are_cut_in_charts_but_not_in_tables() {
    let mut r = RunReport::example();
    r.rejects = (0..20)
        .map(|i| RejectRow {
            source: "vernet_verzuimmeldingen".into(),
            period: "2024".into(),
            column: format!("column_{i:02}"),
            rule: format!("rule_{i:02}"),
            rows: 100 + i,
        })
        .collect();
    let html = render_html(&r);
    assert!(html.contains("the 15 largest of 20 shown"));
    assert!(html.contains("<td class=\"code\">rule_00</td>"));
    assert!(html.contains("the 12 largest of 14 combinations"));
    let rejects = &chart_texts(&html)[1];
    assert!(
        rejects
            .iter()
            .any(|t| t == "vernet_verzuimmeldingen · rule_19")
    );
    assert!(
        !rejects
            .iter()
            .any(|t| t == "vernet_verzuimmeldingen · rule_00")
    );
}

#[test]
fn overlap_combinations_are_sets() {
    let mut r = RunReport::example();
    r.overlap = vec![
        OverlapRow {
            year: 2024,
            sources: vec!["a".into(), "b".into()],
            persons: 5,
        },
        OverlapRow {
            year: 2024,
            sources: vec!["b".into(), "a".into(), "a".into()],
            persons: 7,
        },
        OverlapRow {
            year: 2023,
            sources: vec!["a".into()],
            persons: 100,
        },
    ];
    let html = render_html(&r);
    assert!(html.contains("<td class=\"code\">a + b</td><td class=\"n\">12</td>"));
    assert!(!html.contains("<td class=\"n\">100</td><td class=\"n\">"));
}

/// The release's leak guard fails any text line holding a 9-digit number
/// that passes the citizen number's 11-test. The page writes every count
/// with thousands separators, so no count can look like one.
#[test]
fn numbers_never_form_nine_digit_tokens() {
    let mut r = RunReport::example();
    r.sources[0].rows_read = 123_456_782;
    r.sources[0].rows_accepted = 111_222_333;
    r.person.k = 123_456_789;
    r.person.smallest_class = 987_654_321;
    r.person.rows_in = 100_000_000;
    r.person.rows_released = 999_999_999;
    r.overlap[20].persons = 200_000_017;
    r.organisation
        .suppressed
        .insert("absence_pct".into(), 345_678_912);
    let html = render_html(&r);
    assert!(html.contains("123,456,782"));
    assert!(html.contains("200,000,017"));
    let longest = html
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest < 9, "a run of {longest} digits in the page");
}
