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
//!   The sample is the population: every person in the data counts as
//!   known to be there, the strict model for partners who know who is in
//!   the data. A variable no declared attacker knows is no quasi-identifier
//!   and is released as it is.
//! - **Local suppression until no attacker finds anyone at risk.** For
//!   every at-risk person the attacker's next known variable (cheapest
//!   first: lowest weight) is suppressed in all the person's rows, classes
//!   are recounted, and attackers take turns until a whole round changes
//!   nothing. A person with nothing left to suppress and still at risk is
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
//!   keeping one exact. A node whose suppressed share exceeds the cap is
//!   not acceptable. The search starts at the minimum levels and takes the
//!   best single-variable step while it lowers the cost (greedy, as ARX's
//!   top-down heuristics for lattices too large to enumerate), evaluating
//!   a step's candidates in parallel.

mod profiles;
mod search;
mod suppress;

use serde::Serialize;
use thiserror::Error;

pub use search::protect;

/// An unknown or suppressed value.
pub const NULL: u32 = u32::MAX;

/// A released variable with its generalisation levels.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    /// `levels[l][row]`: the row's code at level `l`; level 0 is the most
    /// detailed. A hierarchy is a function of level 0: two rows with the
    /// same level-0 code have the same code at every level.
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
    /// The normalised height of a level: 0 for level 0, 1 for the last.
    fn height(&self, level: usize) -> f64 {
        if self.levels.len() > 1 {
            level as f64 / (self.levels.len() - 1) as f64
        } else {
            0.0
        }
    }
}

/// A party that may receive the release and the variables it knows of
/// every person in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attacker {
    pub name: String,
    /// Indices into [`Microdata::variables`].
    pub knows: Vec<usize>,
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
}

#[derive(Debug, Clone)]
pub struct Params {
    pub k: usize,
    /// Share of quasi-identifier values known as linked that may be null
    /// in the release — locally suppressed, generalised away or in rows
    /// not released (0.1 = 10%).
    pub max_suppression: f64,
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
            if let Some(l) = v.levels.iter().find(|l| l.len() != rows) {
                return Err(bad(format!(
                    "a level has {} codes for {rows} rows",
                    l.len()
                )));
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
