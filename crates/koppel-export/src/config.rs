//! What the disclosure control of one release applies: every rule and
//! threshold, with safe defaults. The pipeline file embeds this as its
//! `disclosure:` section; `koppel export --disclosure FILE` reads it on its
//! own. Unknown fields are errors, so a misspelt rule never silently falls
//! back to a default.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ExportError;
use crate::tables::TableRules;

/// The whole disclosure-control configuration of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DisclosureConfig {
    pub person: PersonRules,
    pub organisation: OrganisationRules,
    /// Rules for the aggregated tables (threshold, dominance, p%, protection).
    pub table_rules: TableRules,
    pub tables: Vec<TableSpec>,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        DisclosureConfig {
            person: PersonRules::default(),
            organisation: OrganisationRules::default(),
            table_rules: TableRules::default(),
            tables: default_tables(),
        }
    }
}

impl DisclosureConfig {
    /// Reads a YAML file; errors name the file, line and column.
    pub fn from_file(path: &Path) -> Result<Self, ExportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExportError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|e| match e {
            ExportError::Config { message, .. } => ExportError::Config {
                file: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    pub fn from_yaml(text: &str) -> Result<Self, ExportError> {
        let config: DisclosureConfig = serde_yaml::from_str(text).map_err(|e| {
            let message = match e.location() {
                Some(at) => format!("line {}, column {}: {e}", at.line(), at.column()),
                None => e.to_string(),
            };
            ExportError::Config {
                file: "<disclosure>".into(),
                message,
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and cross-references.
    pub fn validate(&self) -> Result<(), ExportError> {
        let bad = |message: String| ExportError::Config {
            file: "<disclosure>".into(),
            message,
        };
        if self.person.k < 2 {
            return Err(bad(format!(
                "person.k is {}; k-anonymity needs k ≥ 2",
                self.person.k
            )));
        }
        if !(0.0..=100.0).contains(&self.person.max_suppression_pct)
            || !(0.0..=100.0).contains(&self.person.max_variable_suppression_pct)
        {
            return Err(bad(
                "person.max_suppression_pct and max_variable_suppression_pct must lie in 0–100"
                    .into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &self.person.variables {
            if !seen.insert(v.column.as_str()) {
                return Err(bad(format!("variable {} is declared twice", v.column)));
            }
            if matches!(
                v.column.as_str(),
                "person_id" | "year" | "person_p2" | "org_p2"
            ) {
                return Err(bad(format!(
                    "variable {}: the person ID and the year are always released; pseudonyms never",
                    v.column
                )));
            }
            v.hierarchy.validate(&v.column).map_err(bad)?;
            let levels = v.hierarchy.levels();
            if v.min_level >= levels || v.max_level.is_some_and(|m| m >= levels || m < v.min_level)
            {
                return Err(bad(format!(
                    "variable {}: levels {}–{} outside its hierarchy's 0–{}",
                    v.column,
                    v.min_level,
                    v.max_level.map_or("last".into(), |m| m.to_string()),
                    levels - 1
                )));
            }
            if !(v.weight.is_finite() && v.weight > 0.0) {
                return Err(bad(format!("variable {} needs a weight above 0", v.column)));
            }
        }
        let mut recipients = self.person.recipients.clone();
        recipients.sort();
        recipients.dedup();
        if recipients.len() != self.person.recipients.len() {
            return Err(bad("a recipient is declared twice".into()));
        }
        for l in &self.person.l_diversity {
            if l.l < 2 {
                return Err(bad(format!("l-diversity of {} needs l ≥ 2", l.column)));
            }
        }
        if self.organisation.k < 1 || self.organisation.min_persons < 1 {
            return Err(bad(
                "organisation.k and organisation.min_persons must be ≥ 1".into(),
            ));
        }
        for (column, banding) in &self.organisation.banded {
            banding.validate(column).map_err(bad)?;
        }
        let mut names = std::collections::BTreeSet::new();
        for table in &self.tables {
            if !names.insert(table.name.as_str()) {
                return Err(bad(format!("table {} is declared twice", table.name)));
            }
            if table.name.is_empty()
                || !table
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(format!(
                    "table name {:?} must be letters, digits, _ or - (it names files)",
                    table.name
                )));
            }
            if table.dimensions.is_empty() || table.dimensions.len() > 5 {
                return Err(bad(format!("table {} needs 1 to 5 dimensions", table.name)));
            }
            for d in &table.dimensions {
                if table.model == TableModel::Person {
                    // A person table counts the person file's rows by the
                    // values the file releases: a dimension is a released
                    // variable (or the year), tabulated as released.
                    let released = d.column == "year"
                        || self.person.variables.iter().any(|v| v.column == d.column);
                    if !released {
                        return Err(bad(format!(
                            "table {}: dimension {} is not a variable of the person file; a person table counts the file's rows by their released values (add it to person.variables or leave it out of the table)",
                            table.name, d.column
                        )));
                    }
                    if d.hierarchy.is_some() || d.level != 0 {
                        return Err(bad(format!(
                            "table {}: dimension {} has a hierarchy, but a person table tabulates the person file's column as released (the person rules choose its level)",
                            table.name, d.column
                        )));
                    }
                }
                if let Some(h) = &d.hierarchy {
                    h.validate(&d.column).map_err(bad)?;
                    if d.level >= h.levels() {
                        return Err(bad(format!(
                            "table {}: dimension {} has no level {} (its hierarchy has {})",
                            table.name,
                            d.column,
                            d.level,
                            h.levels()
                        )));
                    }
                }
            }
            let mut measures = std::collections::BTreeSet::new();
            for m in &table.measures {
                if !measures.insert(m.column()) {
                    return Err(bad(format!(
                        "table {}: measure {} is declared twice",
                        table.name,
                        m.column()
                    )));
                }
                if let Some(max) = m.max_per_contributor()
                    && !(max.is_finite() && max > 0.0)
                {
                    return Err(bad(format!(
                        "table {}: measure {} needs a max_per_contributor above 0",
                        table.name,
                        m.column()
                    )));
                }
            }
            if let Some(ratio) = &table.ratio {
                for side in [&ratio.numerator, &ratio.denominator] {
                    if !measures.contains(side.as_str()) {
                        return Err(bad(format!(
                            "table {}: ratio uses {side}, which is not among its measures",
                            table.name
                        )));
                    }
                }
                if !(ratio.scale.is_finite() && ratio.scale > 0.0) {
                    return Err(bad(format!(
                        "table {}: the ratio's scale must be above 0",
                        table.name
                    )));
                }
                if let Some(max) = ratio.max
                    && !(max.is_finite() && max > 0.0)
                {
                    return Err(bad(format!(
                        "table {}: the ratio's max must be above 0",
                        table.name
                    )));
                }
            }
        }
        if self.table_rules.threshold < 1 {
            return Err(bad("table_rules.threshold must be ≥ 1".into()));
        }
        let mut sensitive = std::collections::BTreeSet::new();
        for s in &self.table_rules.sensitive {
            if !sensitive.insert(s.column.as_str()) {
                return Err(bad(format!(
                    "table_rules.sensitive: {} is declared twice",
                    s.column
                )));
            }
            if s.categories.is_empty() {
                return Err(bad(format!(
                    "table_rules.sensitive: {} names no sensitive category",
                    s.column
                )));
            }
        }
        Ok(())
    }
}

/// Person microdata: the variables released, who may receive them, and
/// the protection against each recipient (docs/disclosure-control.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PersonRules {
    /// Every recipient finds at least k persons (or, against the
    /// population, k persons of the workforce) sharing what it knows of
    /// any released person.
    pub k: u32,
    /// Target share of the released variables' values known as linked
    /// that may be null in the release (locally suppressed, generalised
    /// away, or in rows not released); the search takes the least loss
    /// within it. When nothing stays within it (small data), the closest
    /// node is released and the disclosure report says the target was
    /// missed — or, with `strict_suppression`, the release fails.
    pub max_suppression_pct: f64,
    /// The same target per variable: no released variable loses more of
    /// its known values (so that no study variable is kept for too few
    /// rows).
    pub max_variable_suppression_pct: f64,
    /// Fail the release when the suppression target cannot be met.
    pub strict_suppression: bool,
    /// Who may receive the release. Each is protected against with the
    /// columns it knows (from each column's source); the safe default is
    /// every partner, an employer and an outsider.
    pub recipients: Vec<Recipient>,
    /// What is protected as one: a person's rows of all years together
    /// (`person`, with one research ID per person), or each row on its own
    /// with research IDs that differ per year, so that years cannot be
    /// linked (`year`: cross-sections).
    pub unit: ProtectionUnit,
    /// Research IDs differ per release (`per_release`), or stay the same
    /// across the pipeline's releases (`stable_panel`), which lets
    /// researchers link releases and is recorded as such.
    pub research_ids: ResearchIds,
    /// The variables the release carries, with how far each may be
    /// coarsened (data minimisation: only these are released).
    pub variables: Vec<ReleasedVariable>,
    /// Distinct l-diversity of sensitive attributes within every class.
    pub l_diversity: Vec<LDiversity>,
}

impl Default for PersonRules {
    fn default() -> Self {
        PersonRules {
            k: 10,
            max_suppression_pct: 10.0,
            max_variable_suppression_pct: 10.0,
            strict_suppression: false,
            recipients: Recipient::ALL.to_vec(),
            unit: ProtectionUnit::Person,
            research_ids: ResearchIds::PerRelease,
            variables: default_variables(),
            l_diversity: Vec::new(),
        }
    }
}

/// A party that may receive the release: an attacker model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The pension fund: the payroll of the whole sector.
    Pfzw,
    /// The absence service: absence episodes.
    Vernet,
    /// The health insurer: insured list, care claims, and the staff survey
    /// it runs (so it knows who responded).
    Izz,
    /// The job-classification body: a table of functions, no persons.
    Fwg,
    /// An employer: its own staff's employment, and which rows are its staff
    /// where `org_id` is released.
    Employer,
    /// Anyone who knows a person's age, sex, region and sector.
    Outsider,
}

impl Recipient {
    pub const ALL: [Recipient; 6] = [
        Recipient::Pfzw,
        Recipient::Vernet,
        Recipient::Izz,
        Recipient::Fwg,
        Recipient::Employer,
        Recipient::Outsider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Pfzw => "pfzw",
            Recipient::Vernet => "vernet",
            Recipient::Izz => "izz",
            Recipient::Fwg => "fwg",
            Recipient::Employer => "employer",
            Recipient::Outsider => "outsider",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionUnit {
    Person,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResearchIds {
    PerRelease,
    StablePanel,
}

/// A released variable of the person file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleasedVariable {
    /// A person-model column, `organisation_size` (size class of the main
    /// employer, from the organisation model) or `org_id` (the employer's
    /// research ID).
    pub column: String,
    /// How it is coarsened; default `categorical` (the value, or null).
    #[serde(default = "categorical")]
    pub hierarchy: Hierarchy,
    /// The most detailed level it may be released at (0: as linked).
    #[serde(default)]
    pub min_level: usize,
    /// The coarsest level the search may choose; default the last, which
    /// withholds the variable.
    #[serde(default)]
    pub max_level: Option<usize>,
    /// What losing detail of it costs against the others (default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

impl ReleasedVariable {
    pub fn max_level(&self) -> usize {
        self.max_level
            .unwrap_or(self.hierarchy.levels() - 1)
            .min(self.hierarchy.levels() - 1)
    }
}

fn categorical() -> Hierarchy {
    Hierarchy::Categorical
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LDiversity {
    pub column: String,
    pub l: u32,
}

/// A generalisation hierarchy: level 0 is the value itself (or its first
/// classification), each next level coarser, and the last level suppresses
/// the value (null) — every hierarchy ends there, so the lattice always has
/// a safe top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Hierarchy {
    /// Value → suppressed. For categories such as sex or sector.
    Categorical,
    /// Integer → bands of each width in turn (`[5, 10]`: exact, 5-year
    /// band, 10-year band), → suppressed. Bands are aligned to multiples of
    /// the width (25–29, 20–29).
    Bands { widths: Vec<u32> },
    /// Number → classes by lower bounds, one list per level (`[[0, 50,
    /// 200, 1000], [0, 200]]`), → suppressed. Level 0 is already classed.
    Classes { levels: Vec<Vec<i64>> },
    /// Number (also a fraction) → exact, then steps of each width in turn
    /// (`[0.5, 1, 2]`), aligned to multiples of the width, lower bound
    /// included (`2.5-3`), → suppressed.
    Steps { widths: Vec<f64> },
    /// Postcode4 → postcode2 region → province → part of the country
    /// (CBS landsdeel: Noord, Oost, West, Zuid) → suppressed.
    Postcode,
    /// Categories → groups of them, one map per level (value → group at
    /// level 1, value → group at level 2, …) → suppressed. Every value
    /// must have a group at every level, and groups must nest.
    Groups {
        levels: Vec<std::collections::BTreeMap<String, String>>,
    },
    /// FWG function code → band of its FWG level (`level_column`, bands of
    /// `width` levels) → suppressed.
    FwgLevelBand { level_column: String, width: u32 },
}

impl Hierarchy {
    /// Number of levels, the suppressed top included.
    pub fn levels(&self) -> usize {
        match self {
            Hierarchy::Categorical => 2,
            Hierarchy::Bands { widths } => widths.len() + 2,
            Hierarchy::Classes { levels } => levels.len() + 1,
            Hierarchy::Steps { widths } => widths.len() + 2,
            Hierarchy::Postcode => 5,
            Hierarchy::Groups { levels } => levels.len() + 2,
            Hierarchy::FwgLevelBand { .. } => 3,
        }
    }

    fn validate(&self, column: &str) -> Result<(), String> {
        match self {
            Hierarchy::Bands { widths } => {
                if widths.is_empty() || widths.iter().any(|w| *w < 2) {
                    return Err(format!("{column}: band widths must be ≥ 2"));
                }
                if widths.windows(2).any(|w| w[1] % w[0] != 0) {
                    return Err(format!(
                        "{column}: each band width must be a multiple of the one before, so bands nest"
                    ));
                }
            }
            Hierarchy::Classes { levels } => {
                if levels.is_empty() {
                    return Err(format!("{column}: classes need at least one level"));
                }
                for bounds in levels {
                    if bounds.is_empty() || bounds.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("{column}: class bounds must be increasing"));
                    }
                }
                for pair in levels.windows(2) {
                    if !pair[1].iter().all(|b| pair[0].contains(b)) || pair[1][0] != pair[0][0] {
                        return Err(format!(
                            "{column}: each level's bounds must be a subset of the level before, so classes nest"
                        ));
                    }
                }
            }
            Hierarchy::Steps { widths } => {
                if widths.is_empty() || widths.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
                    return Err(format!("{column}: step widths must be positive"));
                }
                if widths.windows(2).any(|w| {
                    let r = w[1] / w[0];
                    (r - r.round()).abs() > 1e-9 || r < 2.0 - 1e-9
                }) {
                    return Err(format!(
                        "{column}: each step width must be a multiple of the one before, so steps nest"
                    ));
                }
            }
            Hierarchy::Groups { levels } => {
                if levels.is_empty() {
                    return Err(format!("{column}: groups need at least one level"));
                }
                for pair in levels.windows(2) {
                    // Nesting: values in one group below share a group above.
                    let mut above: std::collections::BTreeMap<&str, &str> = Default::default();
                    for (value, group) in &pair[0] {
                        let Some(up) = pair[1].get(value) else {
                            return Err(format!(
                                "{column}: a value grouped at one level has no group at the next"
                            ));
                        };
                        if *above.entry(group.as_str()).or_insert(up.as_str()) != up.as_str() {
                            return Err(format!("{column}: groups must nest from level to level"));
                        }
                    }
                }
            }
            Hierarchy::FwgLevelBand { width, .. } if *width < 2 => {
                return Err(format!("{column}: FWG level bands must be ≥ 2 wide"));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Organisation data: minimum size, suppression of thin statistics, and
/// banding of figures that are public elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OrganisationRules {
    /// Organisations with fewer persons in the year are left out.
    pub min_persons: u64,
    /// A statistic that rests on fewer persons is suppressed (null, with a
    /// status code).
    pub k: u64,
    /// Columns released only banded or rounded; never exact. The annual
    /// report's figures are public, so exact values would name the
    /// organisation; headcount and FTE sit close to them.
    pub banded: std::collections::BTreeMap<String, Banding>,
}

impl Default for OrganisationRules {
    fn default() -> Self {
        let classes = |bounds: &[f64]| Banding::Classes {
            bounds: bounds.to_vec(),
        };
        let banded = [
            (
                "headcount",
                classes(&[0.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]),
            ),
            ("fte", Banding::Round { to: 25.0 }),
            ("n_irregularity_share", Banding::Round { to: 5.0 }),
            ("n_izz_insured", Banding::Round { to: 5.0 }),
            ("n_fwg", Banding::Round { to: 5.0 }),
            ("absence_days", Banding::Round { to: 100.0 }),
            ("available_days", Banding::Round { to: 1000.0 }),
            // Exact ratios and means of whole numbers give the whole
            // numbers back (a share of 7/43 names the headcount, an
            // exact absence percentage beside the rounded days gives the
            // days): every one is rounded.
            ("absence_pct", Banding::Round { to: 0.1 }),
            ("mean_age", Banding::Round { to: 0.1 }),
            ("episode_frequency", Banding::Round { to: 0.01 }),
            ("mean_physical_load", Banding::Round { to: 0.01 }),
            ("mean_mental_load", Banding::Round { to: 0.01 }),
            ("mean_injury_risk", Banding::Round { to: 0.01 }),
            ("temporary_share", Banding::Round { to: 0.01 }),
            ("on_call_share", Banding::Round { to: 0.01 }),
            ("mean_irregularity_share", Banding::Round { to: 0.01 }),
            ("inflow_rate", Banding::Round { to: 0.01 }),
            ("outflow_rate", Banding::Round { to: 0.01 }),
            ("izz_coverage", Banding::Round { to: 0.01 }),
            ("ggz_share_insured", Banding::Round { to: 0.01 }),
            ("physio_share_insured", Banding::Round { to: 0.01 }),
            ("adverse_conditions_share", Banding::Round { to: 0.01 }),
            (
                "revenue_keur",
                classes(&[
                    0.0, 5_000.0, 10_000.0, 25_000.0, 50_000.0, 100_000.0, 250_000.0, 500_000.0,
                ]),
            ),
            (
                "personnel_cost_keur",
                classes(&[
                    0.0, 5_000.0, 10_000.0, 25_000.0, 50_000.0, 100_000.0, 250_000.0, 500_000.0,
                ]),
            ),
            ("overhead_pct", Banding::Round { to: 5.0 }),
            (
                "annual_report_fte",
                classes(&[0.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0]),
            ),
            (
                "result_keur",
                classes(&[-1e12, -1_000.0, -100.0, 0.0, 100.0, 1_000.0, 10_000.0]),
            ),
        ]
        .into_iter()
        .map(|(c, b)| (c.to_owned(), b))
        .collect();
        OrganisationRules {
            min_persons: 10,
            k: 10,
            banded,
        }
    }
}

/// How a number is coarsened for release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum Banding {
    /// Released as the label of its class (`"100–250"`, `"≥ 5000"`).
    Classes { bounds: Vec<f64> },
    /// Rounded to the nearest multiple.
    Round { to: f64 },
}

impl Banding {
    fn validate(&self, column: &str) -> Result<(), String> {
        match self {
            Banding::Classes { bounds } => {
                if bounds.is_empty() || bounds.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!("{column}: class bounds must be increasing"));
                }
            }
            Banding::Round { to } => {
                if !(to.is_finite() && *to > 0.0) {
                    return Err(format!("{column}: rounding base must be positive"));
                }
            }
        }
        Ok(())
    }
}

/// `v` rounded to the nearest multiple of `to`. A fractional base that is
/// one over a whole number (0.1, 0.01) divides by that number instead of
/// multiplying by the base, so a share reads 0.29, not
/// 0.29000000000000004.
pub fn round_to(v: f64, to: f64) -> f64 {
    let per_unit = 1.0 / to;
    if to < 1.0 && (per_unit - per_unit.round()).abs() < 1e-9 {
        (v * per_unit.round()).round() / per_unit.round()
    } else {
        (v / to).round() * to
    }
}

/// Which model a table is tabulated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableModel {
    /// Rows are respondent-years; contributors are persons.
    Person,
    /// Rows are organisation-years; contributors are organisations.
    Organisation,
}

impl TableModel {
    /// The released count column: rows of the model (a respondent counts
    /// once per year in a cell), because those add up along every margin
    /// — distinct persons over two years do not, and a margin that is not
    /// the sum of its cells cannot be audited as one.
    pub fn count_column(self) -> &'static str {
        match self {
            TableModel::Person => "person_years",
            TableModel::Organisation => "organisation_years",
        }
    }
}

/// A declared table: counts of rows per cell, with all margins, and
/// optional magnitude sums and a ratio of two of them. A person table
/// counts the rows of the released person file by their released values;
/// an organisation table counts organisation-years of the model
/// (docs/disclosure-control.md, "Tables").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    #[serde(default)]
    pub label: String,
    pub model: TableModel,
    /// Only rows where this boolean column is true (for example
    /// `izz_insured`). A person table selects on the value the person file
    /// releases (a row whose flag the file leaves null is not selected);
    /// on a column the file does not carry it selects on the model's value,
    /// and its counts are then audited jointly with the file's.
    #[serde(default)]
    pub only_where: Option<String>,
    /// Dimensions; a row whose value is unknown (or suppressed in the person
    /// file) is counted in an `Unknown` category.
    pub dimensions: Vec<TableDimension>,
    /// Numeric columns summed per cell (magnitude measures: dominance and
    /// p% rules apply): a column name, or `{column, max_per_contributor}`.
    #[serde(default)]
    pub measures: Vec<TableMeasure>,
    #[serde(default)]
    pub ratio: Option<Ratio>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableDimension {
    pub column: String,
    /// Classify the column first (for example headcount in size classes);
    /// organisation tables only: a person table takes the column as the
    /// person file releases it.
    #[serde(default)]
    pub hierarchy: Option<Hierarchy>,
    #[serde(default)]
    pub level: usize,
}

/// A measure of a table: a numeric column summed per cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum TableMeasure {
    /// The column's name; its documented maximum, if it has one
    /// ([`documented_maximum`]), bounds it.
    Column(String),
    /// The column with the most one row can hold.
    Bounded(BoundedMeasure),
}

/// A measure with a known maximum per row: what anyone knows of it (366
/// days in a year, a share of at most 1), given to the audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundedMeasure {
    pub column: String,
    /// The most one row of the model (a contributor in one year) can
    /// contribute; the audit knows every cell's sum is at most this times
    /// its rows. Default: the column's documented maximum.
    #[serde(default)]
    pub max_per_contributor: Option<f64>,
}

impl TableMeasure {
    pub fn column(&self) -> &str {
        match self {
            TableMeasure::Column(c) => c,
            TableMeasure::Bounded(b) => &b.column,
        }
    }

    /// The declared maximum per row, if any.
    pub fn max_per_contributor(&self) -> Option<f64> {
        match self {
            TableMeasure::Column(_) => None,
            TableMeasure::Bounded(b) => b.max_per_contributor,
        }
    }

    /// The maximum the audit assumes: the declared one, else the
    /// documented one.
    pub fn maximum(&self, model: TableModel) -> Option<f64> {
        self.max_per_contributor()
            .or_else(|| documented_maximum(model, self.column()))
    }
}

impl From<&str> for TableMeasure {
    fn from(column: &str) -> Self {
        TableMeasure::Column(column.to_owned())
    }
}

impl From<String> for TableMeasure {
    fn from(column: String) -> Self {
        TableMeasure::Column(column)
    }
}

/// The most one row of a model holds of a column, where the codebook's
/// definition fixes it: weighted absence days of a person-year lie inside
/// the year (366), shares lie in [0, 1]. An organisation's sums have no
/// such bound.
pub fn documented_maximum(model: TableModel, column: &str) -> Option<f64> {
    match (model, column) {
        (TableModel::Person, "absence_days") => Some(366.0),
        (TableModel::Person, "irregularity_share") => Some(1.0),
        (
            TableModel::Organisation,
            "temporary_share"
            | "on_call_share"
            | "mean_irregularity_share"
            | "izz_coverage"
            | "ggz_share_insured"
            | "physio_share_insured"
            | "adverse_conditions_share",
        ) => Some(1.0),
        _ => None,
    }
}

/// A published ratio of two measures, times `scale` (100 for a percentage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    pub name: String,
    pub numerator: String,
    pub denominator: String,
    #[serde(default = "one")]
    pub scale: f64,
    /// The most the ratio can be (100 for a percentage of days absent of
    /// days available): the audit knows every cell's numerator is at most
    /// `max / scale` times its denominator.
    #[serde(default)]
    pub max: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// Sectors → zorg (care) and welzijn (welfare), as the sector's own
/// statistics group them.
pub fn sector_groups() -> Hierarchy {
    let group = |s: &str| match s {
        "JZ" | "SW" | "KO" => "welzijn",
        _ => "zorg",
    };
    Hierarchy::Groups {
        levels: vec![
            koppel_contract::codes::SECTOR
                .values
                .iter()
                .map(|s| (s.to_string(), group(s).to_owned()))
                .collect(),
        ],
    }
}

/// Contracts → permanent and flexible (temporary and on call).
pub fn contract_groups() -> Hierarchy {
    Hierarchy::Groups {
        levels: vec![
            koppel_contract::codes::CONTRACT_TYPE
                .values
                .iter()
                .map(|c| {
                    let group = if *c == "VAST" { "vast" } else { "flexibel" };
                    (c.to_string(), group.to_owned())
                })
                .collect(),
        ],
    }
}

/// The person file the preventieplan project asks for: what its study
/// questions need (leaving by age, sector, region, contract, job level and
/// employer size; absence; GGZ and physiotherapy use; four survey scales)
/// and no more. Each starts at its most detailed useful level: 5-year age
/// bands, provinces, FWG level bands; exact values never. Hours, payroll
/// months and the other care types are left out; a release asks for them
/// in its `variables`.
/// Study variables weigh 2, outcomes 3 (lost last).
fn default_variables() -> Vec<ReleasedVariable> {
    let v = |column: &str, hierarchy: Hierarchy, min_level: usize, weight: f64| ReleasedVariable {
        column: column.into(),
        hierarchy,
        min_level,
        max_level: None,
        weight,
    };
    let classes = |levels: &[&[i64]]| Hierarchy::Classes {
        levels: levels.iter().map(|l| l.to_vec()).collect(),
    };
    let scale = || Hierarchy::Steps {
        widths: vec![0.5, 1.0, 2.0],
    };
    vec![
        v(
            "age",
            Hierarchy::Bands {
                widths: vec![5, 10],
            },
            1,
            2.0,
        ),
        v("sex", Hierarchy::Categorical, 0, 2.0),
        v("sector", sector_groups(), 0, 2.0),
        v("postcode4", Hierarchy::Postcode, 2, 2.0),
        v("contract_type", contract_groups(), 0, 2.0),
        v(
            "fwg_function_code",
            Hierarchy::FwgLevelBand {
                level_column: "fwg_level".into(),
                width: 10,
            },
            1,
            2.0,
        ),
        v(
            "organisation_size",
            classes(&[&[0, 50, 100, 250, 500, 1000, 2500], &[0, 100, 500, 2500]]),
            0,
            2.0,
        ),
        v("left_employer", Hierarchy::Categorical, 0, 3.0),
        v("left_sector", Hierarchy::Categorical, 0, 3.0),
        v(
            "absence_days",
            classes(&[&[0, 1, 8, 43, 183], &[0, 1, 43]]),
            0,
            2.0,
        ),
        v(
            "absence_episodes",
            classes(&[&[0, 1, 2, 3, 5], &[0, 1, 3]]),
            0,
            1.0,
        ),
        v("long_term_absence", Hierarchy::Categorical, 0, 2.0),
        v("izz_insured", Hierarchy::Categorical, 0, 1.0),
        v("ggz_any", Hierarchy::Categorical, 0, 3.0),
        v("physio_any", Hierarchy::Categorical, 0, 2.0),
        v("workload", scale(), 1, 1.0),
        v("emotional_exhaustion", scale(), 1, 1.0),
        v("engagement", scale(), 1, 1.0),
        v("intention_to_leave", scale(), 1, 1.0),
    ]
}

fn dim(column: &str) -> TableDimension {
    TableDimension {
        column: column.into(),
        hierarchy: None,
        level: 0,
    }
}

fn size_class() -> TableDimension {
    TableDimension {
        column: "headcount".into(),
        hierarchy: Some(Hierarchy::Classes {
            levels: vec![vec![0, 100, 500, 2500]],
        }),
        level: 0,
    }
}

/// The five tables the preventieplan project asks for. The person tables
/// count the person file's rows by its released columns (age in the bands
/// the file has, sector and contract as released); their care-cost and
/// absence-day sums are not in the file and are audited jointly with it.
pub fn default_tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: "leavers_by_sector_age_contract".into(),
            label:
                "Respondents who left the sector the next year, by sector, age band and contract"
                    .into(),
            model: TableModel::Person,
            only_where: None,
            dimensions: vec![
                dim("sector"),
                dim("age"),
                dim("contract_type"),
                dim("left_sector"),
            ],
            measures: vec![],
            ratio: None,
        },
        TableSpec {
            name: "absence_by_sector_size".into(),
            label: "Absence percentage by sector and organisation size (organisations)".into(),
            model: TableModel::Organisation,
            only_where: None,
            dimensions: vec![dim("year"), dim("sector"), size_class()],
            measures: vec!["absence_days".into(), "available_days".into()],
            ratio: Some(Ratio {
                name: "absence_pct".into(),
                numerator: "absence_days".into(),
                denominator: "available_days".into(),
                scale: 100.0,
                max: Some(100.0),
            }),
        },
        TableSpec {
            name: "ggz_use_by_sector_age".into(),
            label: "Insured respondents with GGZ claims, by sector and age band".into(),
            model: TableModel::Person,
            only_where: Some("izz_insured".into()),
            dimensions: vec![dim("sector"), dim("age"), dim("ggz_any")],
            measures: vec![],
            ratio: None,
        },
        TableSpec {
            name: "absence_days_by_sector_contract".into(),
            label: "Weighted absence days of respondents by year, sector and contract (off the payroll: Unknown)".into(),
            model: TableModel::Person,
            only_where: None,
            dimensions: vec![dim("year"), dim("sector"), dim("contract_type")],
            measures: vec![TableMeasure::Bounded(BoundedMeasure {
                column: "absence_days".into(),
                max_per_contributor: Some(366.0),
            })],
            ratio: None,
        },
        TableSpec {
            name: "care_cost_by_sector_age".into(),
            label: "Care costs (GGZ, physiotherapy) of insured respondents by sector and age band"
                .into(),
            model: TableModel::Person,
            only_where: Some("izz_insured".into()),
            dimensions: vec![dim("sector"), dim("age")],
            measures: vec!["ggz_cost_eur".into(), "physio_cost_eur".into()],
            ratio: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_a_fraction_reads_as_written() {
        assert_eq!(round_to(0.2937, 0.01).to_string(), "0.29");
        assert_eq!(round_to(6.349, 0.1).to_string(), "6.3");
        assert_eq!(round_to(1234.0, 100.0), 1200.0);
        assert_eq!(round_to(1250.0, 100.0), 1300.0);
        assert_eq!(round_to(12.4, 5.0), 10.0);
        // Not one over a whole number: the multiple, as before.
        assert!((round_to(1.0, 0.3) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn defaults_are_valid_and_survive_a_yaml_round_trip() {
        let config = DisclosureConfig::default();
        config.validate().unwrap();
        let yaml = serde_yaml::to_string(&config).unwrap();
        assert_eq!(DisclosureConfig::from_yaml(&yaml).unwrap(), config);
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        assert_eq!(
            DisclosureConfig::from_yaml("{}").unwrap(),
            DisclosureConfig::default()
        );
    }

    #[test]
    fn a_misspelt_rule_is_an_error_with_its_place() {
        let err = DisclosureConfig::from_yaml("person:\n  k: 5\n  kk: 3\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("kk"), "{text}");
    }

    #[test]
    fn unsafe_values_are_refused() {
        assert!(DisclosureConfig::from_yaml("person:\n  k: 1\n").is_err());
        let bands = "person:\n  variables:\n    - column: age\n      hierarchy: {kind: bands, widths: [5, 7]}\n";
        assert!(
            DisclosureConfig::from_yaml(bands)
                .unwrap_err()
                .to_string()
                .contains("multiple")
        );
    }
}
