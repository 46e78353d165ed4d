//! The disclosure report: every rule and threshold applied, the k reached,
//! and what was suppressed per variable and rule — as JSON for machines
//! and Markdown for the people who answer for the release.

use std::fmt::Write;

use serde::Serialize;

use crate::config::{DisclosureConfig, Hierarchy};
use crate::organisation::OrganisationDisclosure;
use crate::person::PersonDisclosure;
use crate::tabulate::TableDisclosure;

#[derive(Debug, Clone, Serialize)]
pub struct DisclosureReport {
    pub release_id: String,
    /// The configuration as applied, defaults filled in.
    pub rules: DisclosureConfig,
    pub person: PersonDisclosure,
    pub organisation: OrganisationDisclosure,
    pub tables: Vec<TableDisclosure>,
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
        (Hierarchy::Postcode, 1) => "postcode2 region".into(),
        (Hierarchy::Postcode, _) => "province".into(),
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
        let _ = writeln!(
            md,
            "k-anonymity with k = {} over the quasi-identifiers below, classes formed within each year and null counted as a value of its own. The least generalisation was searched over a lattice of {} nodes ({} evaluated) under a cap of {}% of rows locally suppressed.\n",
            p.k, p.lattice_size, p.nodes_evaluated, p.max_suppression_pct
        );
        let _ = writeln!(
            md,
            "- rows in: {}; released: {}",
            p.rows_in, p.rows_released
        );
        let _ = writeln!(
            md,
            "- rows with every quasi-identifier suppressed: {}; rows left out (too few to form a safe class even when suppressed): {}",
            p.rows_locally_suppressed, p.rows_dropped
        );
        let _ = writeln!(
            md,
            "- **k reached: {}** over {} classes",
            p.smallest_class, p.classes
        );
        let _ = writeln!(
            md,
            "- rows whose employer is not identified (organisation not released): {}",
            p.organisation_ids_withheld
        );
        if !p.columns_withheld.is_empty() {
            let _ = writeln!(
                md,
                "- columns withheld so they cannot undo a generalisation: {}",
                p.columns_withheld.join(", ")
            );
        }
        for l in &p.l_diversity {
            let _ = writeln!(md, "- distinct l-diversity of `{}`: l = {}", l.column, l.l);
        }
        let _ = writeln!(
            md,
            "\n| quasi-identifier | generalisation | level | categories | values suppressed | values unknown |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for q in &p.quasi_identifiers {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} of {} | {} | {} | {} |",
                q.column,
                hierarchy_name(&q.hierarchy, q.level),
                q.level,
                q.levels - 1,
                q.categories,
                q.values_suppressed,
                q.values_missing
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
        let _ = writeln!(
            md,
            "Primary suppression: threshold {} contributors{}; dominance {}; p% {}. Secondary suppression protects every primary cell to ±{}% of its value against the published cells and margins; the audit below solved the linear programs that bound each suppressed cell.\n",
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
            r.protection_pct
        );
        let _ = writeln!(
            md,
            "| table | cells | status counts | rows tabulated | rows without category | audit |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for t in &self.tables {
            let status: Vec<String> = t.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} cells checked, {} linear programs |",
                t.name,
                t.cells,
                status.join(", "),
                t.rows_tabulated,
                t.rows_without_category,
                t.audit.cells_checked,
                t.audit.lps_solved
            );
        }
        md
    }
}
