//! Koppel's disclosure-control engine: protects person microdata against
//! declared attackers, each knowing its own set of variables.
//!
//! Input: [`Microdata`] — every released variable as plain codes per row
//! and generalisation level ([`NULL`] for unknown), the unit (person) of
//! every row, optional sensitive attributes — a list of [`Attacker`]s, each
//! naming the variables it knows, and [`Params`] (k, the suppression cap).
//! Output: a [`Protection`] — the level chosen per variable, the values
//! locally suppressed, the rows that cannot be released, and per attacker
//! and variable what that cost and achieved. No Arrow, no DataFusion, no
//! file: `koppel-export` adapts the models to it and writes the release.
//!
//! The model, as ARX and sdcMicro state it, with the person as unit:
//!
//! - **Classes per attacker.** Attacker A sees a person as the set of its
//!   rows (all years) restricted to the variables A knows, at the released
//!   level; a suppressed or unknown value is a value of its own (as `GROUP
//!   BY` treats null). Persons with equal sets form a class; a person is
//!   at risk for A when its class holds fewer than k persons (or, with
//!   l-diversity, fewer than l distinct values of a sensitive attribute).
//!   With [`Reference::Sample`] the sample is the population: every
//!   person in the data counts as known to be there, the strict model for
//!   partners who know who is in the data. With [`Reference::Population`]
//!   (k-map) a person is at risk when fewer than k persons of the
//!   population hold rows with its values, one distinct row for each of
//!   its rows. A variable no declared attacker knows is no
//!   quasi-identifier and is released as it is.
//! - **Local suppression until no attacker finds anyone at risk.** For
//!   every at-risk person one of the attacker's known variables is
//!   suppressed in all the person's rows — the cheapest that alone lifts
//!   its class to k, else the one that lifts it most; cheapest by weight
//!   per bit of the categories it has at its level (so a two-valued flag
//!   is not nulled before a postcode region), raised with the share of
//!   values the variable has lost — classes are recounted, and attackers
//!   take turns until a whole round changes nothing. A person with nothing left to suppress and still at risk is
//!   not released. Suppression only adds nulls and removals, so the loop
//!   ends; when it ends, every attacker's classes are safe by construction,
//!   and [`protect`] recounts them from scratch before returning.
//! - **Utility-driven search.** Each variable moves between its minimum and
//!   maximum level. A node (a level per variable) costs the weighted
//!   root-mean-square of the variables' information loss *after* local
//!   suppression: a value generalised to level l of L costs l/(L−1), a
//!   suppressed value or an unreleased row 1. The square charges one
//!   variable lost entirely more than the same loss spread over several, so
//!   the search prefers keeping every study variable at a useful level over
//!   keeping one exact. A node whose suppressed share exceeds the target
//!   is not acceptable; when no node is, the closest one is released (the
//!   risk is the same: none) and the outcome says the target was missed —
//!   small data cannot be protected cheaply — unless `strict` asks for an
//!   error. The search starts at the minimum levels and takes the
//!   best single-variable step while it lowers the cost (greedy, as ARX's
//!   top-down heuristics for lattices too large to enumerate), evaluating
//!   a step's candidates in parallel, then steps back down where a lower
//!   level has become acceptable and cheaper.

mod population;
mod profiles;
mod search;
mod suppress;

use serde::Serialize;
use thiserror::Error;

pub use search::protect;

/// An unknown or suppressed value.
pub const NULL: u32 = u32::MAX;

/// Not yet seen, in the nesting check.
const PENDING: u32 = NULL - 1;

/// A released variable with its generalisation hierarchy.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    /// The level-0 code of every row: the most detailed value, [`NULL`]
    /// when unknown.
    pub codes: Vec<u32>,
    /// `levels[l][c]`: the level-l code of level-0 code `c` (the hierarchy
    /// is a function of the value); `levels[0]` is the identity. Levels
    /// from the minimum up nest: values that share a code at one level
    /// share it at every higher level.
    pub levels: Vec<Vec<u32>>,
    /// The search's range of levels (inclusive).
    pub min_level: usize,
    pub max_level: usize,
    /// What losing detail of this variable costs against the others.
    pub weight: f64,
    /// Whether local suppression may null single values (not for the year,
    /// which every attacker knows and the study needs in every row).
    pub suppressible: bool,
}

impl Variable {
    /// A variable with one level-0 code per row and the levels of its
    /// hierarchy given as codes per row (each a function of level 0):
    /// the form tests and small callers find easiest.
    pub fn from_rows(name: &str, rows: Vec<Vec<u32>>) -> Result<Variable, DisclosureError> {
        let codes = rows.first().cloned().unwrap_or_default();
        let categories = code_count(&codes);
        let mut levels = vec![vec![NULL; categories]; rows.len()];
        for (l, level) in rows.iter().enumerate() {
            if level.len() != codes.len() {
                return Err(DisclosureError::Variable {
                    name: name.into(),
                    message: format!(
                        "level {l} has {} codes for {} rows",
                        level.len(),
                        codes.len()
                    ),
                });
            }
            for (&c0, &c) in codes.iter().zip(level) {
                if c0 == NULL {
                    continue;
                }
                let slot = &mut levels[l][c0 as usize];
                if *slot != NULL && *slot != c {
                    return Err(DisclosureError::Variable {
                        name: name.into(),
                        message: format!("level {l} is not a function of level 0"),
                    });
                }
                *slot = c;
            }
        }
        Ok(Variable {
            name: name.into(),
            codes,
            levels,
            min_level: 0,
            max_level: rows.len().saturating_sub(1),
            weight: 1.0,
            suppressible: true,
        })
    }

    /// The code of `row` at `level`.
    pub fn code(&self, level: usize, row: usize) -> u32 {
        lift(&self.levels[level], self.codes[row])
    }

    /// The normalised height of a level: 0 for level 0, 1 for the last.
    fn height(&self, level: usize) -> f64 {
        if self.levels.len() > 1 {
            level as f64 / (self.levels.len() - 1) as f64
        } else {
            0.0
        }
    }
}

/// How many codes a list of codes spans (the largest plus one; nulls
/// left out): the size of a dictionary indexed by them.
pub(crate) fn code_count(codes: &[u32]) -> usize {
    codes
        .iter()
        .filter(|&&c| c != NULL)
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0)
}

/// A level-0 code through a level's map.
pub(crate) fn lift(map: &[u32], code: u32) -> u32 {
    if code == NULL {
        NULL
    } else {
        map[code as usize]
    }
}

/// Whom an attacker's classes are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// The released rows: for an attacker who knows who is in the data
    /// (the sample is the population).
    Sample,
    /// The population ([`Microdata::population`]): for an attacker who
    /// does not know who is in the data, a released person is at risk
    /// when fewer than k persons of the population share its values
    /// (k-map): a person of m released rows is matched by a population
    /// person holding m distinct rows with its values. Suppressed values
    /// match any value. The sample class is a floor (the sample is part of
    /// the population).
    Population,
}

/// The population the released rows are drawn from: for every variable
/// the level-0 code of each population row, in the same code dictionary as
/// the released rows, or `None` where the population does not hold it
/// (survey answers exist for respondents only). It must include the
/// released rows' persons.
#[derive(Debug, Clone, Default)]
pub struct Population {
    pub codes: Vec<Option<Vec<u32>>>,
    /// The person of every population row, so that a released person with
    /// several rows (years) is matched by a population person with as many;
    /// `None`: every row a person of its own.
    pub units: Option<Vec<u32>>,
}

impl Population {
    /// Rows in the population.
    pub fn rows(&self) -> usize {
        self.codes
            .iter()
            .flatten()
            .map(Vec::len)
            .next()
            .or_else(|| self.units.as_ref().map(Vec::len))
            .unwrap_or(0)
    }
}

/// A party that may receive the release and the variables it knows of
/// every person in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attacker {
    pub name: String,
    /// Indices into [`Microdata::variables`].
    pub knows: Vec<usize>,
    pub reference: Reference,
}

/// A sensitive attribute: every class must hold at least `l` distinct
/// codes of it (distinct l-diversity; null is a code).
#[derive(Debug, Clone)]
pub struct Sensitive {
    pub name: String,
    pub codes: Vec<u32>,
    pub l: usize,
}

/// The rows to protect.
#[derive(Debug, Clone)]
pub struct Microdata {
    pub variables: Vec<Variable>,
    /// The unit (person) of every row: a unit's rows are protected
    /// together. One unit per row gives row-level (cross-sectional)
    /// protection.
    pub units: Vec<u32>,
    pub sensitive: Vec<Sensitive>,
    /// Needed by attackers with [`Reference::Population`].
    pub population: Option<Population>,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub k: usize,
    /// The target: share of quasi-identifier values known as linked that
    /// may be null in the release — locally suppressed, generalised away or
    /// in rows not released (0.1 = 10%). Nodes within it are preferred;
    /// when none is, the closest is released and
    /// [`Protection::suppression_target_met`] is false.
    pub max_suppression: f64,
    /// The same target for each variable on its own: no variable may lose
    /// more of its known values (1.0: no such limit).
    pub max_variable_suppression: f64,
    /// Fail instead of releasing a node beyond the target.
    pub strict: bool,
}

/// What protection did to one variable.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariableOutcome {
    pub name: String,
    pub levels: usize,
    pub level: usize,
    /// Whether some declared attacker knows it (a quasi-identifier).
    pub quasi_identifier: bool,
    /// Values known as linked, over every row.
    pub values_known: u64,
    /// Of those, null in the release: suppressed locally, generalised
    /// away, or in a row not released.
    pub values_suppressed: u64,
    /// Mean loss over known values: height of the level, 1 if suppressed.
    pub information_loss: f64,
}

/// One attacker's risk before protection (level 0, nothing suppressed)
/// and after.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackerOutcome {
    pub name: String,
    /// Names of the variables it knows.
    pub knows: Vec<String>,
    pub units: u64,
    /// Units in classes below k (or not l-diverse) with every variable as
    /// linked, at level 0.
    pub units_at_risk_before: u64,
    /// Units released in classes below k after protection (0 unless the
    /// internal check fails, which is an error instead).
    pub units_at_risk_after: u64,
    /// Units released.
    pub units_released: u64,
    /// The smallest class of released units.
    pub smallest_class: u64,
    /// Values local suppression nulled because of this attacker.
    pub values_suppressed: u64,
}

/// The outcome of [`protect`].
#[derive(Debug, Clone)]
pub struct Protection {
    /// Level chosen per variable.
    pub levels: Vec<usize>,
    /// `suppressed[v][row]`: locally suppressed (beyond the level).
    pub suppressed: Vec<Vec<bool>>,
    /// Rows not released: their unit stayed at risk with nothing left to
    /// suppress.
    pub dropped: Vec<bool>,
    pub variables: Vec<VariableOutcome>,
    pub attackers: Vec<AttackerOutcome>,
    /// The cost the search minimised (weighted root-mean-square loss).
    pub information_loss: f64,
    /// Share of quasi-identifier values null in the release.
    pub values_suppressed_share: f64,
    /// Whether that share is within [`Params::max_suppression`], and every
    /// variable's within [`Params::max_variable_suppression`].
    pub suppression_target_met: bool,
    pub units_dropped: u64,
    pub rows_dropped: u64,
    pub nodes_evaluated: usize,
    /// The search's path: the node after each step, with its cost.
    pub path: Vec<SearchStep>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchStep {
    pub levels: Vec<usize>,
    pub information_loss: f64,
    pub values_suppressed_share: f64,
}

#[derive(Debug, Error, PartialEq)]
pub enum DisclosureError {
    #[error("k is {0}; protection needs k ≥ 2")]
    K(usize),
    #[error("variable {name}: {message}")]
    Variable { name: String, message: String },
    #[error("{0} rows but {1} units given")]
    Units(usize, usize),
    #[error("attacker {attacker} knows variable {index}, which does not exist")]
    UnknownVariable { attacker: String, index: usize },
    #[error("{0} quasi-identifiers; at most 64 can be suppressed locally")]
    TooManyVariables(usize),
    #[error(
        "no generalisation within the declared levels protects every attacker with at most {cap:.1}% of quasi-identifier values suppressed: the best found needs {needed:.1}% ({detail})"
    )]
    SuppressionCap {
        cap: f64,
        needed: f64,
        detail: String,
    },
    #[error(
        "attacker {attacker} is counted against the population, but {}",
        match variable { Some(v) => format!("the population does not hold {v}"), None => "no population is given".into() }
    )]
    NoPopulation {
        attacker: String,
        variable: Option<String>,
    },
    #[error("the population's columns do not match the variables (length or codes)")]
    PopulationShape,
    #[error("internal check failed: attacker {attacker} finds a released class of {size} units")]
    Unsafe { attacker: String, size: u64 },
}

impl Microdata {
    pub fn rows(&self) -> usize {
        self.units.len()
    }

    pub(crate) fn validate(
        &self,
        attackers: &[Attacker],
        params: &Params,
    ) -> Result<(), DisclosureError> {
        if params.k < 2 {
            return Err(DisclosureError::K(params.k));
        }
        let rows = self.rows();
        for v in &self.variables {
            let bad = |message: String| DisclosureError::Variable {
                name: v.name.clone(),
                message,
            };
            if v.levels.is_empty() {
                return Err(bad("has no levels".into()));
            }
            if v.codes.len() != rows {
                return Err(bad(format!("{} codes for {rows} rows", v.codes.len())));
            }
            let categories = v.levels[0].len();
            if v.levels.iter().any(|l| l.len() != categories) {
                return Err(bad("levels of unequal length".into()));
            }
            if v.codes
                .iter()
                .any(|&c| c != NULL && c as usize >= categories)
            {
                return Err(bad(format!("a code beyond its {categories} categories")));
            }
            if v.min_level > v.max_level || v.max_level >= v.levels.len() {
                return Err(bad(format!(
                    "levels {}–{} outside its {} levels",
                    v.min_level,
                    v.max_level,
                    v.levels.len()
                )));
            }
            if !(v.weight.is_finite() && v.weight > 0.0) {
                return Err(bad("needs a weight above 0".into()));
            }
            // Nesting from the minimum level up: the population is
            // counted on codes at the minimum level and lifted from there.
            for l in v.min_level + 1..v.levels.len() {
                let mut above: Vec<u32> = Vec::new();
                for (c0, &c) in v.levels[v.min_level].iter().enumerate() {
                    if c == NULL {
                        continue;
                    }
                    if above.len() <= c as usize {
                        above.resize(c as usize + 1, PENDING);
                    }
                    let up = v.levels[l][c0];
                    if above[c as usize] == PENDING {
                        above[c as usize] = up;
                    } else if above[c as usize] != up {
                        return Err(bad(format!(
                            "level {l} does not nest over level {}",
                            v.min_level
                        )));
                    }
                }
            }
        }
        for s in &self.sensitive {
            if s.codes.len() != rows {
                return Err(DisclosureError::Variable {
                    name: s.name.clone(),
                    message: format!("{} codes for {rows} rows", s.codes.len()),
                });
            }
        }
        for a in attackers {
            if let Some(&index) = a.knows.iter().find(|&&i| i >= self.variables.len()) {
                return Err(DisclosureError::UnknownVariable {
                    attacker: a.name.clone(),
                    index,
                });
            }
            if a.reference == Reference::Population {
                let population =
                    self.population
                        .as_ref()
                        .ok_or_else(|| DisclosureError::NoPopulation {
                            attacker: a.name.clone(),
                            variable: None,
                        })?;
                if population.codes.len() != self.variables.len() {
                    return Err(DisclosureError::PopulationShape);
                }
                let length = population.codes.iter().flatten().map(Vec::len).next();
                if let (Some(units), Some(length)) = (&population.units, length)
                    && units.len() != length
                {
                    return Err(DisclosureError::PopulationShape);
                }
                for &v in &a.knows {
                    let codes = population.codes[v].as_ref().ok_or_else(|| {
                        DisclosureError::NoPopulation {
                            attacker: a.name.clone(),
                            variable: Some(self.variables[v].name.clone()),
                        }
                    })?;
                    let categories = self.variables[v].levels[0].len();
                    if Some(codes.len()) != length
                        || codes.iter().any(|&c| c != NULL && c as usize >= categories)
                    {
                        return Err(DisclosureError::PopulationShape);
                    }
                }
            }
        }
        let quasi = self.quasi_identifiers(attackers).len();
        if quasi > 64 {
            return Err(DisclosureError::TooManyVariables(quasi));
        }
        Ok(())
    }

    /// Variables some attacker knows, in index order.
    pub(crate) fn quasi_identifiers(&self, attackers: &[Attacker]) -> Vec<usize> {
        let mut q: Vec<usize> = attackers
            .iter()
            .flat_map(|a| a.knows.iter().copied())
            .collect();
        q.sort_unstable();
        q.dedup();
        q
    }
}
