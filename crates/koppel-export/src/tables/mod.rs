//! Statistical disclosure control of tables, modelled on τ-ARGUS.
//!
//! A table has d dimensions with categories; its *extended* form adds a
//! `Total` to every dimension, so it holds every margin over every subset
//! of dimensions. For each cell it counts distinct contributors (a person
//! or an organisation: contributions of one contributor are merged first)
//! and sums each magnitude measure.
//!
//! 1. **Primary suppression**: the threshold rule on contributors, the
//!    dominance (n, k) rule and the p% rule on every measure.
//! 2. **Secondary suppression** by the hypercube method (GHMITER): for each
//!    primary cell, a hypercube of 2^d cells — one alternative coordinate
//!    per dimension — all suppressed. An alternating perturbation of its
//!    corners keeps every additive relation true, so the primary cell can
//!    move by as much as the corners allow; a hypercube qualifies when
//!    every corner holds at least the required protection in every
//!    quantity, and the cheapest wins (fewest new suppressions, then the
//!    least suppressed contributors, then the lowest coordinates).
//! 3. **Audit** ([`audit`]): linear programs bound every primary cell
//!    given all published cells and relations; a cell whose interval does
//!    not reach the protection on both sides gets another hypercube. If
//!    rounds run out the table fails — an unprotected pattern is never
//!    returned.

mod audit;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use audit::{AuditFailure, AuditMethod, AuditReport, audit};

/// The rules for tables, with safe defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TableRules {
    /// A cell with fewer contributors (and more than zero) is unsafe.
    pub threshold: u64,
    /// Whether empty cells are unsafe too.
    pub zeros_unsafe: bool,
    /// Unsafe when the n largest contributions exceed k% of the total.
    pub dominance: Option<DominanceRule>,
    /// Unsafe when the total minus the two largest contributions is less
    /// than p% of the largest.
    pub p_percent: Option<f64>,
    /// The interval a researcher can derive for a primary cell must reach
    /// this percentage of its value below and above it.
    pub protection_pct: f64,
}

impl Default for TableRules {
    fn default() -> Self {
        TableRules {
            threshold: 10,
            zeros_unsafe: false,
            dominance: Some(DominanceRule { n: 2, k: 85.0 }),
            p_percent: Some(10.0),
            protection_pct: 30.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DominanceRule {
    pub n: usize,
    pub k: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    pub name: String,
    pub categories: Vec<String>,
}

pub struct TableInput {
    pub name: String,
    pub dimensions: Vec<Dimension>,
    pub measures: Vec<String>,
    pub contributions: Vec<Contribution>,
}

/// One unit's contribution to a cell (no totals in `coords`).
pub struct Contribution {
    pub coords: Vec<u32>,
    pub contributor: u64,
    pub values: Vec<f64>,
}

/// Status of a cell, as in τ-ARGUS's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    Safe,
    Empty,
    PrimaryThreshold,
    PrimaryDominance,
    PrimaryPPercent,
    Secondary,
}

impl CellStatus {
    pub fn code(&self) -> &'static str {
        match self {
            CellStatus::Safe => "safe",
            CellStatus::Empty => "empty",
            CellStatus::PrimaryThreshold => "primary_threshold",
            CellStatus::PrimaryDominance => "primary_dominance",
            CellStatus::PrimaryPPercent => "primary_p_percent",
            CellStatus::Secondary => "secondary",
        }
    }

    pub fn is_primary(self) -> bool {
        matches!(
            self,
            CellStatus::PrimaryThreshold
                | CellStatus::PrimaryDominance
                | CellStatus::PrimaryPPercent
        )
    }

    pub fn is_suppressed(self) -> bool {
        self.is_primary() || self == CellStatus::Secondary
    }
}

/// A cell of the extended table: `None` is the dimension's total.
#[derive(Debug, Clone)]
pub struct Cell {
    pub coords: Vec<Option<u32>>,
    pub contributors: u64,
    pub rows: u64,
    pub sums: Vec<f64>,
    pub status: CellStatus,
}

#[derive(Debug, Clone)]
pub struct ProtectedTable {
    pub name: String,
    pub dimensions: Vec<Dimension>,
    pub measures: Vec<String>,
    /// Row-major over the dimensions, each dimension's total last.
    pub cells: Vec<Cell>,
    pub audit: AuditReport,
}

#[derive(Debug, Error)]
pub enum TableError {
    #[error("needs 1 to 5 dimensions")]
    Shape,
    #[error("a contribution has {found} coordinates or values where {expected} are declared")]
    Contribution { expected: usize, found: usize },
    #[error("a contribution lies outside the categories of dimension {0}")]
    OutOfRange(String),
    #[error("{0} cells: too large a table")]
    TooLarge(u128),
    #[error(
        "secondary suppression could not protect {count} primary cells (first: cell {coords:?}, quantity {quantity}: value {value} derivable within [{lower}, {upper}]); the table is not released"
    )]
    Unprotected {
        count: usize,
        coords: Vec<Option<u32>>,
        quantity: usize,
        value: f64,
        lower: f64,
        upper: f64,
    },
}

/// Addressing of the extended table.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Categories per dimension; coordinate `cats[i]` is the total.
    pub cats: Vec<usize>,
    stride: Vec<usize>,
    pub size: usize,
}

impl Shape {
    pub fn new(cats: Vec<usize>) -> Result<Self, TableError> {
        // A dimension without categories (nothing in the data had a value
        // for it) is allowed: its only coordinate is the total, and the
        // table is empty.
        if cats.is_empty() || cats.len() > 5 {
            return Err(TableError::Shape);
        }
        let size: u128 = cats.iter().map(|c| *c as u128 + 1).product();
        if size > 5_000_000 {
            return Err(TableError::TooLarge(size));
        }
        let mut stride = vec![1; cats.len()];
        for i in (0..cats.len() - 1).rev() {
            stride[i] = stride[i + 1] * (cats[i + 1] + 1);
        }
        Ok(Shape {
            cats,
            stride,
            size: size as usize,
        })
    }

    pub fn dims(&self) -> usize {
        self.cats.len()
    }

    pub fn index(&self, coords: &[usize]) -> usize {
        coords.iter().zip(&self.stride).map(|(c, s)| c * s).sum()
    }

    pub fn coords(&self, mut index: usize) -> Vec<usize> {
        self.stride
            .iter()
            .map(|s| {
                let c = index / s;
                index %= s;
                c
            })
            .collect()
    }

    pub fn is_total(&self, dim: usize, coord: usize) -> bool {
        coord == self.cats[dim]
    }

    /// Every additive relation: for a dimension and fixed other coordinates,
    /// the member cells (categories then the total, last).
    pub fn relations(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for dim in 0..self.dims() {
            for index in 0..self.size {
                let coords = self.coords(index);
                if coords[dim] != 0 {
                    continue;
                }
                let members = (0..=self.cats[dim])
                    .map(|c| index + c * self.stride[dim])
                    .collect();
                out.push(members);
            }
        }
        out
    }
}

/// Aggregated extended table before suppression.
struct Tabulated {
    contributors: Vec<u64>,
    rows: Vec<u64>,
    /// `sums[cell * m + q]`
    sums: Vec<f64>,
    /// `top[(cell * m + q) * n + j]`: the j-th largest contribution.
    top: Vec<f64>,
    top_n: usize,
}

fn tabulate(shape: &Shape, input: &TableInput, top_n: usize) -> Result<Tabulated, TableError> {
    let d = shape.dims();
    let m = input.measures.len();
    // Merge contributions per contributor in each base cell.
    let mut entries: HashMap<(usize, u64), usize> = HashMap::new();
    let mut entry_rows: Vec<u64> = Vec::new();
    let mut entry_values: Vec<f64> = Vec::new();
    let mut coords = vec![0usize; d];
    for c in &input.contributions {
        if c.coords.len() != d || c.values.len() != m {
            return Err(TableError::Contribution {
                expected: d,
                found: c.coords.len(),
            });
        }
        for (i, &x) in c.coords.iter().enumerate() {
            if x as usize >= shape.cats[i] {
                return Err(TableError::OutOfRange(input.dimensions[i].name.clone()));
            }
            coords[i] = x as usize;
        }
        let key = (shape.index(&coords), c.contributor);
        let next = entry_rows.len();
        let e = *entries.entry(key).or_insert(next);
        if e == next {
            entry_rows.push(0);
            entry_values.extend(std::iter::repeat_n(0.0, m));
        }
        entry_rows[e] += 1;
        for (q, v) in c.values.iter().enumerate() {
            entry_values[e * m + q] += v.max(0.0);
        }
    }
    // Spread every merged contribution over the 2^d cells that hold it,
    // merging again per contributor (one person in two categories is one
    // contributor to their total). Contributor by contributor, as each has
    // only a few cells: no table of every (cell, contributor) pair. Sums
    // are added in the same order as a (cell, contributor) sort would:
    // per cell by contributor, per contributor by base cell.
    let mut order: Vec<(u64, usize, usize)> = entries
        .iter()
        .map(|(&(base, contributor), &e)| (contributor, base, e))
        .collect();
    order.sort_unstable();
    let mut t = Tabulated {
        contributors: vec![0; shape.size],
        rows: vec![0; shape.size],
        sums: vec![0.0; shape.size * m],
        top: vec![0.0; shape.size * m * top_n],
        top_n,
    };
    let mut cells: Vec<(usize, usize)> = Vec::new();
    let mut values = vec![0.0; m];
    for one in order.chunk_by(|a, b| a.0 == b.0) {
        cells.clear();
        for &(_, base, e) in one {
            let base_coords = shape.coords(base);
            for mask in 0..(1usize << d) {
                for i in 0..d {
                    coords[i] = if mask & (1 << i) != 0 {
                        shape.cats[i]
                    } else {
                        base_coords[i]
                    };
                }
                cells.push((shape.index(&coords), e));
            }
        }
        // Stable: a cell's entries stay in base-cell order.
        cells.sort_by_key(|&(cell, _)| cell);
        for group in cells.chunk_by(|a, b| a.0 == b.0) {
            let cell = group[0].0;
            values.fill(0.0);
            for &(_, e) in group {
                t.rows[cell] += entry_rows[e];
                for (q, v) in values.iter_mut().enumerate() {
                    *v += entry_values[e * m + q];
                }
            }
            t.contributors[cell] += 1;
            for (q, &v) in values.iter().enumerate() {
                t.sums[cell * m + q] += v;
                let top = &mut t.top[(cell * m + q) * top_n..(cell * m + q + 1) * top_n];
                if let Some(pos) = top.iter().position(|x| v > *x) {
                    top[pos..].rotate_right(1);
                    top[pos] = v;
                }
            }
        }
    }
    Ok(t)
}

fn primary_status(t: &Tabulated, cell: usize, m: usize, rules: &TableRules) -> CellStatus {
    let n = t.contributors[cell];
    if n == 0 {
        return if rules.zeros_unsafe {
            CellStatus::PrimaryThreshold
        } else {
            CellStatus::Empty
        };
    }
    if n < rules.threshold {
        return CellStatus::PrimaryThreshold;
    }
    for q in 0..m {
        let total = t.sums[cell * m + q];
        if total <= 0.0 {
            continue;
        }
        let top = &t.top[(cell * m + q) * t.top_n..(cell * m + q + 1) * t.top_n];
        if let Some(d) = &rules.dominance {
            let largest: f64 = top.iter().take(d.n).sum();
            if largest > d.k / 100.0 * total {
                return CellStatus::PrimaryDominance;
            }
        }
        if let Some(p) = rules.p_percent {
            let rest = total - top[0] - top[1];
            if rest < p / 100.0 * top[0] {
                return CellStatus::PrimaryPPercent;
            }
        }
    }
    CellStatus::Safe
}

/// The quantities the audit and the hypercubes protect: the row count and
/// each measure's sum, per cell. These are what a table publishes, and
/// they are additive; the distinct contributor count (for the threshold
/// rule) is not — one person in two categories is one contributor to
/// their total — so it is used for primary suppression only.
pub(crate) fn quantities(cells: &[Cell]) -> Vec<Vec<f64>> {
    let m = cells.first().map_or(0, |c| c.sums.len());
    let mut out = vec![cells.iter().map(|c| c.rows as f64).collect::<Vec<_>>()];
    for q in 0..m {
        out.push(cells.iter().map(|c| c.sums[q]).collect());
    }
    out
}

/// Required protection of a primary cell per quantity: (below, above).
pub(crate) fn required(value: f64, quantity: usize, rules: &TableRules) -> (f64, f64) {
    if value <= 0.0 {
        // An unsafe empty cell: it must be able to hold a threshold's worth.
        let above = if quantity == 0 {
            rules.threshold as f64
        } else {
            0.0
        };
        return (0.0, above);
    }
    let e = rules.protection_pct / 100.0 * value;
    (e, e)
}

/// Candidate alternatives per dimension for a hypercube around `p`: the
/// total and the categories, largest first, at most `limit`.
fn alternatives(shape: &Shape, p: &[usize], counts: &[f64], limit: usize) -> Vec<Vec<usize>> {
    (0..shape.dims())
        .map(|i| {
            let mut alts: Vec<usize> = (0..=shape.cats[i]).filter(|&c| c != p[i]).collect();
            let mut coords = p.to_vec();
            alts.sort_by(|&a, &b| {
                coords[i] = a;
                let va = counts[shape.index(&coords)];
                coords[i] = b;
                let vb = counts[shape.index(&coords)];
                vb.total_cmp(&va).then(a.cmp(&b))
            });
            alts.truncate(limit);
            alts.sort_unstable();
            alts
        })
        .collect()
}

/// Which way a hypercube must let a primary cell move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sides {
    down: bool,
    up: bool,
}

const BOTH: Sides = Sides {
    down: true,
    up: true,
};
const DOWN: Sides = Sides {
    down: true,
    up: false,
};
const UP: Sides = Sides {
    down: false,
    up: true,
};

/// The cheapest qualifying hypercube around primary cell `p` that is not
/// in `used`, as the list of its corner cells. It must protect the cell on
/// the given sides: one hypercube often cannot do both (a small cell whose
/// neighbours are small too), two can.
fn best_hypercube(
    shape: &Shape,
    p: usize,
    quantities: &[Vec<f64>],
    suppressed: &[bool],
    used: &HashSet<Vec<usize>>,
    rules: &TableRules,
    sides: Sides,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let d = shape.dims();
    let pc = shape.coords(p);
    // Keep the search bounded on wide tables: per dimension at most as
    // many alternatives as keep the product near 20,000.
    let limit = ((20_000f64).powf(1.0 / d as f64).floor() as usize).max(2);
    let alts = alternatives(shape, &pc, &quantities[0], limit);
    let needs: Vec<(f64, f64)> = quantities
        .iter()
        .enumerate()
        .map(|(q, v)| required(v[p], q, rules))
        .collect();
    // ((new suppressions, their cost, alternatives), corners)
    type Candidate = ((usize, u64, Vec<usize>), Vec<usize>);
    let mut best: Option<Candidate> = None;
    let mut choice = vec![0usize; d];
    let mut corners = Vec::with_capacity(1 << d);
    let mut coords = vec![0usize; d];
    'candidates: loop {
        let alt: Vec<usize> = (0..d).map(|i| alts[i][choice[i]]).collect();
        if !used.contains(&alt) {
            corners.clear();
            let mut ok = true;
            let mut new = 0usize;
            let mut cost = 0u64;
            for mask in 0..(1usize << d) {
                let mut sign = 1i32;
                for i in 0..d {
                    if mask & (1 << i) != 0 {
                        coords[i] = alt[i];
                        // Two categories of a relation move in opposite
                        // directions; a category and its total together.
                        if !shape.is_total(i, pc[i]) && !shape.is_total(i, alt[i]) {
                            sign = -sign;
                        }
                    } else {
                        coords[i] = pc[i];
                    }
                }
                let cell = shape.index(&coords);
                corners.push(cell);
                if cell == p {
                    continue;
                }
                for (q, (below, above)) in needs.iter().enumerate() {
                    // Raising p lowers the corners of sign -1; lowering p
                    // lowers the corners of sign +1.
                    let need = match (sign < 0, sides.up, sides.down) {
                        (true, true, _) => *above,
                        (false, _, true) => *below,
                        _ => 0.0,
                    };
                    if quantities[q][cell] + 1e-9 < need {
                        ok = false;
                    }
                }
                if !ok {
                    break;
                }
                if !suppressed[cell] {
                    new += 1;
                    cost += quantities[0][cell] as u64;
                }
            }
            if ok {
                let key = (new, cost, alt.clone());
                if best.as_ref().is_none_or(|(b, _)| key < *b) {
                    best = Some((key, corners.clone()));
                }
            }
        }
        // Next combination.
        for i in (0..d).rev() {
            choice[i] += 1;
            if choice[i] < alts[i].len() {
                continue 'candidates;
            }
            choice[i] = 0;
        }
        break;
    }
    best.map(|((_, _, alt), corners)| (alt, corners))
}

/// Rounds of "audit, then another hypercube for every failing cell".
const MAX_ROUNDS: usize = 8;

/// Tabulates, suppresses and audits a table.
pub fn protect(input: &TableInput, rules: &TableRules) -> Result<ProtectedTable, TableError> {
    let shape = Shape::new(
        input
            .dimensions
            .iter()
            .map(|d| d.categories.len())
            .collect(),
    )?;
    let m = input.measures.len();
    let top_n = rules.dominance.as_ref().map_or(2, |d| d.n.max(2));
    let t = tabulate(&shape, input, top_n)?;
    let mut cells: Vec<Cell> = (0..shape.size)
        .map(|cell| Cell {
            coords: shape
                .coords(cell)
                .iter()
                .enumerate()
                .map(|(i, &c)| (!shape.is_total(i, c)).then_some(c as u32))
                .collect(),
            contributors: t.contributors[cell],
            rows: t.rows[cell],
            sums: t.sums[cell * m..(cell + 1) * m].to_vec(),
            status: primary_status(&t, cell, m, rules),
        })
        .collect();
    let quantities = quantities(&cells);
    let primaries: Vec<usize> = (0..shape.size)
        .filter(|&c| cells[c].status.is_primary())
        .collect();
    let mut suppressed: Vec<bool> = cells.iter().map(|c| c.status.is_suppressed()).collect();
    let mut used: HashMap<usize, HashSet<Vec<usize>>> = HashMap::new();

    let mut add_hypercube = |p: usize, sides: Sides, suppressed: &mut Vec<bool>| -> bool {
        let used = used.entry(p).or_default();
        let mut take = |sides: Sides, suppressed: &mut Vec<bool>| match best_hypercube(
            &shape,
            p,
            &quantities,
            suppressed,
            used,
            rules,
            sides,
        ) {
            Some((alt, corners)) => {
                used.insert(alt);
                for c in corners {
                    suppressed[c] = true;
                }
                true
            }
            None => false,
        };
        if take(sides, suppressed) {
            return true;
        }
        if sides != BOTH {
            return false;
        }
        // One hypercube per side; both must exist.
        let down = take(DOWN, suppressed);
        let up = take(UP, suppressed);
        down && up
    };
    for &p in &primaries {
        if !add_hypercube(p, BOTH, &mut suppressed) {
            // No hypercube qualifies: suppress every relation through p.
            suppress_relations_of(&shape, p, &mut suppressed);
        }
    }
    let mut report = AuditReport::default();
    for round in 0.. {
        for (c, cell) in cells.iter_mut().enumerate() {
            if suppressed[c] && !cell.status.is_primary() {
                cell.status = CellStatus::Secondary;
            }
        }
        report = audit_shape(&shape, &cells, rules);
        if report.failures.is_empty() {
            break;
        }
        if round + 1 == MAX_ROUNDS {
            let f = &report.failures[0];
            return Err(TableError::Unprotected {
                count: report.failures.len(),
                coords: f.coords.clone(),
                quantity: f.quantity,
                value: f.value,
                lower: f.lower,
                upper: f.upper,
            });
        }
        // Per failing cell, the sides on which some quantity falls short.
        let mut failing: std::collections::BTreeMap<usize, Sides> = Default::default();
        for f in &report.failures {
            let tol = 1e-6 * f.value.abs().max(1.0);
            let s = failing.entry(f.cell).or_insert(Sides {
                down: false,
                up: false,
            });
            s.down |= f.lower > f.required_lower + tol;
            s.up |= f.upper < f.required_upper - tol;
        }
        for (p, sides) in failing {
            let sides = if sides.down || sides.up { sides } else { BOTH };
            if !add_hypercube(p, sides, &mut suppressed) {
                suppress_relations_of(&shape, p, &mut suppressed);
            }
        }
    }
    Ok(ProtectedTable {
        name: input.name.clone(),
        dimensions: input.dimensions.clone(),
        measures: input.measures.clone(),
        cells,
        audit: report,
    })
}

/// The fallback: every cell sharing a relation with `p`.
fn suppress_relations_of(shape: &Shape, p: usize, suppressed: &mut [bool]) {
    let pc = shape.coords(p);
    for i in 0..shape.dims() {
        let mut coords = pc.clone();
        for c in 0..=shape.cats[i] {
            coords[i] = c;
            suppressed[shape.index(&coords)] = true;
        }
    }
}

fn audit_shape(shape: &Shape, cells: &[Cell], rules: &TableRules) -> AuditReport {
    audit::audit_cells(
        shape,
        cells,
        rules,
        AuditMethod::HypercubesThenLinearPrograms,
    )
}

#[cfg(test)]
mod tests;
