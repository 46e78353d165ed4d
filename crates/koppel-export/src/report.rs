//! The disclosure report: every rule and threshold applied, the k reached,
//! and what was suppressed per variable and rule — as JSON for machines
//! and Markdown for the people who answer for the release.

use std::fmt::Write;

use serde::Serialize;

use crate::config::{DisclosureConfig, Hierarchy};
use crate::organisation::OrganisationDisclosure;
use crate::person::PersonDisclosure;
use crate::tabulate::{LinkageDisclosure, TableDisclosure};

#[derive(Debug, Clone, Serialize)]
pub struct DisclosureReport {
    pub release_id: String,
    /// The configuration as applied, defaults filled in.
    pub rules: DisclosureConfig,
    pub person: PersonDisclosure,
    pub organisation: OrganisationDisclosure,
    pub tables: Vec<TableDisclosure>,
    /// The release's copy of the linkage report.
    pub linkage_report: LinkageDisclosure,
}

/// The quantities a table's audit took jointly with its file, named by
/// the file: the person file for person tables, the organisation file for
/// organisation tables.
pub(crate) fn audited_with_file(t: &TableDisclosure) -> String {
    let named = |file: &str, v: &[String]| {
        v.iter()
            .map(|x| format!("`{x}` ({file})"))
            .collect::<Vec<_>>()
    };
    let all: Vec<String> = named("`persons.parquet`", &t.audited_with_person_file)
        .into_iter()
        .chain(named(
            "`organisations.parquet`",
            &t.audited_with_organisation_file,
        ))
        .collect();
    if all.is_empty() {
        "—".to_owned()
    } else {
        all.join(", ")
    }
}

/// A level of a hierarchy in words.
pub fn hierarchy_name(h: &Hierarchy, level: usize) -> String {
    if level + 1 == h.levels() {
        return "suppressed".into();
    }
    match (h, level) {
        (_, 0) => match h {
            Hierarchy::Classes { levels } => format!("classes from {:?}", levels[0]),
            _ => "as linked".into(),
        },
        (Hierarchy::Bands { widths }, l) => format!("{}-wide bands", widths[l - 1]),
        (Hierarchy::Classes { levels }, l) => format!("classes from {:?}", levels[l]),
        (Hierarchy::Steps { widths }, l) => {
            format!("steps of {}", crate::hierarchy::number_label(widths[l - 1]))
        }
        (Hierarchy::Postcode, 1) => "postcode2 region".into(),
        (Hierarchy::Postcode, 2) => "province".into(),
        (Hierarchy::Postcode, _) => "part of the country".into(),
        (Hierarchy::Groups { .. }, l) => format!("groups (level {l})"),
        (Hierarchy::FwgLevelBand { width, .. }, _) => format!("FWG level bands of {width}"),
        (Hierarchy::Categorical, _) => "suppressed".into(),
    }
}

impl DisclosureReport {
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let p = &self.person;
        let _ = writeln!(md, "# Disclosure report — release {}\n", self.release_id);
        let _ = writeln!(md, "## Person file\n");
        let unit = match p.unit {
            crate::config::ProtectionUnit::Person => {
                "a person's rows of all years are protected together"
            }
            crate::config::ProtectionUnit::Year => {
                "each row is protected on its own, with research IDs that differ per year"
            }
        };
        let ids = match p.research_ids {
            crate::config::ResearchIds::PerRelease => {
                "research IDs are derived for this release and differ from every other release's"
            }
            crate::config::ResearchIds::StablePanel => {
                "research IDs are STABLE across this pipeline's releases (stable panel): releases can be linked on them"
            }
        };
        let population = match p.population_rows {
            Some(n) => format!(
                "k-map against the workforce ({n} rows) for recipients who do not know who responded"
            ),
            None => "every recipient counted in the released rows (no workforce model)".into(),
        };
        let _ = writeln!(
            md,
            "Every declared recipient finds at least k = {} persons sharing what it knows of any released person; {unit}; {ids}; {population}. The search took {} steps ({} nodes evaluated) and leaves {:.1}% of the released variables' known values null (cap {}%).\n",
            p.k,
            p.search.len(),
            p.nodes_evaluated,
            p.values_suppressed_pct,
            p.max_suppression_pct
        );
        if !p.suppression_target_met {
            let _ = writeln!(
                md,
                "**The suppression target of {}% was not met: no generalisation within the allowed levels protects every recipient with less, so the closest was released ({:.1}%). Every recipient still finds no class below k. Release fewer variables, allow coarser levels, or release to fewer recipients.**\n",
                p.max_suppression_pct, p.values_suppressed_pct
            );
        }
        let _ = writeln!(
            md,
            "- rows in: {} ({} persons); released: {} ({} persons)",
            p.rows_in, p.persons_in, p.rows_released, p.persons_released
        );
        let _ = writeln!(
            md,
            "- rows with a value suppressed locally: {}; rows left out (at risk with nothing left to suppress): {}",
            p.rows_locally_suppressed, p.rows_dropped
        );
        let _ = writeln!(
            md,
            "- **smallest class any recipient finds: {}**; information loss {:.3} (0 as linked, 1 all withheld)",
            p.smallest_class, p.information_loss
        );
        let _ = writeln!(
            md,
            "- rows whose employer is not identified (organisation not released): {}",
            p.organisation_ids_withheld
        );
        for l in &p.l_diversity {
            let _ = writeln!(md, "- distinct l-diversity of `{}`: l = {}", l.column, l.l);
        }
        let _ = writeln!(md, "\n### Risk per recipient\n");
        let _ = writeln!(
            md,
            "| recipient | assumed to know | counted in | persons | at risk before | at risk after | smallest class | values suppressed on its account |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for r in &p.recipients {
            let reference = match r.reference {
                koppel_disclosure::Reference::Sample => "released persons",
                koppel_disclosure::Reference::Population => "workforce (k-map)",
            };
            let knows = if r.knows.is_empty() {
                "nothing released".to_owned()
            } else {
                r.knows
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} | {} | {} ({:.1}%) | {} | {} | {} |",
                r.recipient.as_str(),
                r.assumption,
                knows,
                reference,
                r.persons,
                r.at_risk_before,
                r.at_risk_before_pct,
                r.at_risk_after,
                r.smallest_class,
                r.values_suppressed
            );
        }
        let _ = writeln!(md, "\n### Variables\n");
        let _ = writeln!(
            md,
            "| variable | released as | level (allowed) | categories | known by | values suppressed | values unknown | information loss |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for q in &p.quasi_identifiers {
            let known: Vec<&str> = q.known_by.iter().map(|r| r.as_str()).collect();
            let _ = writeln!(
                md,
                "| `{}` | {} | {} ({}–{}) | {} | {} | {} | {} | {:.3} |",
                q.column,
                hierarchy_name(&q.hierarchy, q.level),
                q.level,
                q.min_level,
                q.max_level,
                q.categories,
                if known.is_empty() {
                    "nobody".into()
                } else {
                    known.join(", ")
                },
                q.values_suppressed,
                q.values_missing,
                q.information_loss
            );
        }
        if !p.columns_withheld.is_empty() {
            let _ = writeln!(
                md,
                "\nModel columns not requested, so not released: {}.",
                p.columns_withheld.join(", ")
            );
        }

        let o = &self.organisation;
        let _ = writeln!(md, "\n## Organisation file\n");
        let _ = writeln!(
            md,
            "Organisations with fewer than {} persons in the year are left out; a statistic resting on fewer than {} persons is null with status `primary_threshold`.\n",
            o.min_persons, o.k
        );
        let _ = writeln!(
            md,
            "- organisation-years in: {}; released: {}; left out: {}",
            o.rows_in, o.rows_released, o.rows_left_out
        );
        let _ = writeln!(md, "\n| statistic | values suppressed |\n|---|---|");
        for (column, n) in &o.suppressed {
            let _ = writeln!(md, "| `{column}` | {n} |");
        }
        let _ = writeln!(md, "\n| column | released as |\n|---|---|");
        for (column, banding) in &o.banded {
            let how = match banding {
                crate::config::Banding::Round { to } => format!("rounded to {to}"),
                crate::config::Banding::Classes { bounds } => format!("classes from {bounds:?}"),
            };
            let _ = writeln!(md, "| `{column}` | {how} |");
        }

        let r = &self.rules.table_rules;
        let _ = writeln!(md, "\n## Tables\n");
        let sensitive: Vec<String> = r
            .sensitive
            .iter()
            .map(|s| format!("`{}`", s.column))
            .collect();
        let _ = writeln!(
            md,
            "Person tables count the rows of `persons.parquet` by their released values (`Unknown` where the file has a null): every count in them can be computed from the file, so they publish nothing the file does not. Measures the file does not carry exactly are summed from the model over the same rows and audited jointly with the file. Organisation tables count organisation-years of the model and are audited jointly with what `organisations.parquet` tells of each row (rounded, banded, withheld or left out); tables over the same rows that share dimensions are protected and audited as one set.\n"
        );
        let _ = writeln!(
            md,
            "Primary suppression: threshold {} contributors{}; dominance {}; p% {}; class disclosure (a zero beside a sensitive category in a group that is not empty) on {}. Secondary suppression protects every primary cell to ±{}% of its value (or as far as the released files leave it open) against the published cells and margins of every linked table, non-negativity and the known maxima; the audit below solved the linear programs that bound each suppressed cell. Released tables mark a cell `safe`, `empty` or `suppressed`; the reasons are counted here only.\n",
            r.threshold,
            if r.zeros_unsafe {
                " (zeros unsafe)"
            } else {
                ""
            },
            r.dominance
                .as_ref()
                .map_or("off".into(), |d| format!("({}, {})", d.n, d.k)),
            r.p_percent.map_or("off".into(), |p| format!("{p}%")),
            if sensitive.is_empty() {
                "no dimension".into()
            } else {
                sensitive.join(", ")
            },
            r.protection_pct
        );
        let _ = writeln!(
            md,
            "| table | rows from | cells | status counts | rows tabulated | rows in `Unknown` | audited as the table alone (public in its file) | audited with its file | known maxima | linked with | audit |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
        let list = |v: &[String]| {
            if v.is_empty() {
                "—".to_owned()
            } else {
                v.iter()
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        for t in &self.tables {
            let status: Vec<String> = t.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let mut maxima: Vec<String> = t
                .max_per_contributor
                .iter()
                .map(|(m, x)| format!("`{m}` ≤ {x} per row"))
                .collect();
            if let Some(r) = &t.ratio_bound {
                maxima.push(format!(
                    "`{}` ≤ {} × `{}`",
                    r.numerator, r.factor, r.denominator
                ));
            }
            let _ = writeln!(
                md,
                "| `{}` | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} cells checked, {} linear programs{} |",
                t.name,
                t.rows_from,
                t.cells,
                status.join(", "),
                t.rows_tabulated,
                t.rows_without_category,
                list(&t.public),
                audited_with_file(t),
                if maxima.is_empty() {
                    "—".into()
                } else {
                    maxima.join(", ")
                },
                list(&t.linked_with),
                t.audit.cells_checked,
                t.audit.lps_solved,
                if t.audit.failures.is_empty() {
                    ""
                } else {
                    ", FAILED"
                }
            );
        }
        let l = &self.linkage_report;
        let _ = writeln!(md, "\n## Linkage report\n");
        let _ = writeln!(
            md,
            "The full linkage report stays with the TTP. The release's `linkage-report.json` is a copy whose coverage (year × sector × age band) follows the table rules: {} of {} coverage counts in {} cells suppressed ({} linear programs, {} cells checked). Of its {} other counts, {} from 1 to {} are withheld and the rest rounded to a multiple of {}.{}\n",
            l.coverage_suppressed,
            l.coverage_counts,
            l.coverage_cells,
            l.audit.lps_solved,
            l.audit.cells_checked,
            l.counts,
            l.counts_withheld,
            l.threshold.saturating_sub(1),
            l.rounded_to,
            if l.overlap_withheld {
                " The overlap of the sources per year is not released."
            } else {
                ""
            }
        );
        md
    }
}
