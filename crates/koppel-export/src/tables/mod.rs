//! Statistical disclosure control of tables, modelled on τ-ARGUS.
//!
//! A table has d dimensions with categories; its *extended* form adds a
//! `Total` to every dimension, so it holds every margin over every subset
//! of dimensions. For each cell it counts distinct contributors (a person
//! or an organisation: contributions of one contributor are merged first),
//! rows, and sums each magnitude measure.
//!
//! 1. **Primary suppression**: the threshold rule on contributors, the
//!    dominance (n, k) rule and the p% rule on every measure, and class
//!    disclosure: a zero beside a sensitive category in a group that is
//!    not empty (everyone in the group falls in the sensitive category).
//! 2. **Secondary suppression** by the hypercube method (GHMITER): for each
//!    primary cell, a hypercube of 2^d cells — one alternative coordinate
//!    per dimension — all suppressed. An alternating perturbation of its
//!    corners keeps every additive relation true, so the primary cell can
//!    move by as much as the corners allow within what a reader knows of
//!    them (never below zero, never above a known maximum); a hypercube
//!    qualifies when every corner has the room the protection needs in
//!    every quantity, and the cheapest wins (fewest new suppressions, then
//!    the least suppressed contributors, then the lowest coordinates).
//! 3. **Audit** ([`audit`]): linear programs bound every primary cell
//!    given all published cells and relations, what a reader knows of each
//!    cell beforehand (from a released file) and the known maxima; a cell
//!    whose interval does not reach the protection on both sides gets
//!    another hypercube. If rounds run out the table fails — an
//!    unprotected pattern is never returned.
//!
//! Tables over the same rows ([`Link`]) share cells: the margins over
//! their common dimensions are one quantity. [`protect_linked`] protects
//! them as one set — a shared cell is suppressed in every table or in
//! none, and one audit covers all cells and relations of all tables.

mod audit;

use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// this percentage of its value below and above it (or as far as what
    /// the released files already tell, where that is less).
    pub protection_pct: f64,
    /// Dimensions with sensitive categories (class disclosure): in every
    /// table with such a dimension, a group (a cell with the dimension at
    /// its total) whose rows all fall in sensitive categories — a zero in
    /// every other category — would tell something of every member; that
    /// zero is unsafe and suppressed with its protection.
    pub sensitive: Vec<SensitiveColumn>,
}

impl Default for TableRules {
    fn default() -> Self {
        TableRules {
            threshold: 10,
            zeros_unsafe: false,
            dominance: Some(DominanceRule { n: 2, k: 85.0 }),
            p_percent: Some(10.0),
            protection_pct: 30.0,
            sensitive: [
                "ggz_any",
                "physio_any",
                "gp_any",
                "hospital_any",
                "pharmacy_any",
                "long_term_absence",
            ]
            .into_iter()
            .map(|c| SensitiveColumn {
                column: c.into(),
                categories: flag_true(),
            })
            .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DominanceRule {
    pub n: usize,
    pub k: f64,
}

/// A dimension whose categories tell something sensitive about everyone
/// in them (care use, long-term absence).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensitiveColumn {
    pub column: String,
    /// The sensitive categories, as labelled in the table; default
    /// `["true"]` (a flag).
    #[serde(default = "flag_true")]
    pub categories: Vec<String>,
}

fn flag_true() -> Vec<String> {
    vec!["true".into()]
}

#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    pub name: String,
    pub categories: Vec<String>,
    /// Indices of the sensitive categories (class disclosure); empty when
    /// the dimension is not sensitive.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<u32>,
}

/// A magnitude measure: summed per cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    pub name: String,
    /// The most one row can contribute, as anyone knows (366 days, a share
    /// of 1): every cell's sum is at most this times its rows. In a
    /// protected table, the bound the audit applied (raised to the largest
    /// row where the data exceed it, so that it never assumes what the
    /// data break).
    pub max_per_row: Option<f64>,
}

impl From<&str> for Measure {
    fn from(name: &str) -> Self {
        Measure {
            name: name.into(),
            max_per_row: None,
        }
    }
}

/// A known bound between two measures of every cell: `numerator ≤ max ×
/// denominator` (absence days at most the available days). Indices are
/// into the measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioBound {
    pub numerator: usize,
    pub denominator: usize,
    pub max: f64,
}

/// Which rows a table counts, for linking tables that share cells: tables
/// with the same `population` count the same rows, and a dimension with
/// the same key (column and classification) in two of them classifies
/// those rows alike, so the margins over their common dimensions are the
/// same cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Link {
    pub population: String,
    /// One key per dimension.
    pub dimensions: Vec<String>,
}

/// What a reader knows of one row before reading the table (from a
/// released file): the cell it falls in, and per quantity (rows, then
/// each measure) the interval its contribution lies in. A cell's known
/// interval is the sum over the rows in it.
#[derive(Debug, Clone)]
pub struct KnownRow {
    pub coords: Vec<u32>,
    pub bounds: Vec<(f64, f64)>,
}

pub struct TableInput {
    pub name: String,
    pub dimensions: Vec<Dimension>,
    pub measures: Vec<Measure>,
    pub ratio: Option<RatioBound>,
    pub contributions: Vec<Contribution>,
    /// Contributors given by count, for tables made from counts; only in
    /// tables without measures.
    pub counted: Vec<CountedUnits>,
    /// Every row a reader can see, with what it knows of it; `None` when
    /// nothing released says anything per row (each cell is then only
    /// known to be ≥ 0 and within the measures' maxima).
    pub known: Option<Vec<KnownRow>>,
    pub link: Option<Link>,
}

/// One unit's contribution to a cell (no totals in `coords`): one row.
pub struct Contribution {
    pub coords: Vec<u32>,
    pub contributor: u64,
    pub values: Vec<f64>,
}

/// `units` contributors to one base cell, one row each, given by their
/// number: each contributes to no other base cell of the table. A table
/// made from counts (the linkage report's coverage) would otherwise need
/// one [`Contribution`] per person — a million and a half per year.
pub struct CountedUnits {
    pub coords: Vec<u32>,
    pub units: u64,
}

/// Status of a cell. The released table says only `safe`, `empty` or
/// `suppressed` ([`CellStatus::released_code`]): which suppressed cells are
/// primary would tell a reader where the small cells are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    Safe,
    Empty,
    PrimaryThreshold,
    PrimaryDominance,
    PrimaryPPercent,
    /// A zero beside a sensitive category (class disclosure).
    PrimaryClass,
    Secondary,
}

/// The released status of a suppressed cell.
pub const SUPPRESSED: &str = "suppressed";

impl CellStatus {
    /// The reason, as the disclosure report counts it.
    pub fn code(&self) -> &'static str {
        match self {
            CellStatus::Safe => "safe",
            CellStatus::Empty => "empty",
            CellStatus::PrimaryThreshold => "primary_threshold",
            CellStatus::PrimaryDominance => "primary_dominance",
            CellStatus::PrimaryPPercent => "primary_p_percent",
            CellStatus::PrimaryClass => "primary_class",
            CellStatus::Secondary => "secondary",
        }
    }

    /// What the released table says: `safe`, `empty` or `suppressed`.
    pub fn released_code(&self) -> &'static str {
        if self.is_suppressed() {
            SUPPRESSED
        } else {
            self.code()
        }
    }

    pub fn is_primary(self) -> bool {
        matches!(
            self,
            CellStatus::PrimaryThreshold
                | CellStatus::PrimaryDominance
                | CellStatus::PrimaryPPercent
                | CellStatus::PrimaryClass
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
    /// Per quantity (rows, then each measure): the interval a reader knows
    /// the cell lies in before reading the table; `(0, ∞)` without a file.
    pub known: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct ProtectedTable {
    pub name: String,
    pub dimensions: Vec<Dimension>,
    pub measures: Vec<Measure>,
    pub ratio: Option<RatioBound>,
    pub link: Option<Link>,
    /// Per quantity: whether a released file publishes every cell of it
    /// exactly. Such a quantity is audited as the table alone (it hides
    /// its small cells from a reader of the table; the file publishes
    /// them anyway); the others are audited with what the file tells.
    pub public: Vec<bool>,
    /// Row-major over the dimensions, each dimension's total last.
    pub cells: Vec<Cell>,
    /// The audit of the set of linked tables this one belongs to.
    pub audit: AuditReport,
    /// The other tables it was protected and audited with.
    pub linked_with: Vec<String>,
}

#[derive(Debug, Error)]
pub enum TableError {
    #[error("needs 1 to 5 dimensions")]
    Shape,
    #[error("a contribution has {found} coordinates or values where {expected} are declared")]
    Contribution { expected: usize, found: usize },
    #[error("contributors given by count in a table with measures")]
    CountedWithMeasures,
    #[error("a contribution lies outside the categories of dimension {0}")]
    OutOfRange(String),
    #[error("a known row has {found} coordinates or bounds where {expected} are declared")]
    Known { expected: usize, found: usize },
    #[error("a ratio bound names measure {0}, which the table does not have")]
    Ratio(usize),
    #[error("{0} cells: too large a table")]
    TooLarge(u128),
    #[error(
        "secondary suppression could not protect {count} primary cells (first: table {table}, cell {coords:?}, quantity {quantity}: value {value} derivable within [{lower}, {upper}]); the table is not released"
    )]
    Unprotected {
        table: String,
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

    /// Every cell a base cell counts in — itself and each margin over it
    /// (any subset of its coordinates replaced by the total), 2^d cells in
    /// the order of that subset as a bit mask.
    pub fn for_each_margin(&self, base: usize, mut f: impl FnMut(usize)) {
        let base_coords = self.coords(base);
        for mask in 0..(1usize << self.dims()) {
            let cell = base_coords
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let c = if mask & (1 << i) != 0 {
                        self.cats[i]
                    } else {
                        c
                    };
                    c * self.stride[i]
                })
                .sum();
            f(cell);
        }
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
    /// `known[cell * (m + 1) + q]`: what a reader knows of quantity q
    /// (rows, then measures) of the cell.
    known: Vec<(f64, f64)>,
    /// Per measure: the largest contribution of one row.
    row_max: Vec<f64>,
}

fn tabulate(shape: &Shape, input: &TableInput, top_n: usize) -> Result<Tabulated, TableError> {
    let d = shape.dims();
    let m = input.measures.len();
    // Merge contributions per contributor in each base cell.
    let mut entries: HashMap<(usize, u64), usize> = HashMap::new();
    let mut entry_rows: Vec<u64> = Vec::new();
    let mut entry_values: Vec<f64> = Vec::new();
    let mut row_max = vec![0.0f64; m];
    let mut coords = vec![0usize; d];
    let base = |shape: &Shape, c: &[u32], coords: &mut [usize]| -> Result<usize, TableError> {
        for (i, &x) in c.iter().enumerate() {
            if x as usize >= shape.cats[i] {
                return Err(TableError::OutOfRange(input.dimensions[i].name.clone()));
            }
            coords[i] = x as usize;
        }
        Ok(shape.index(coords))
    };
    if m > 0 && !input.counted.is_empty() {
        return Err(TableError::CountedWithMeasures);
    }
    for c in &input.contributions {
        if c.coords.len() != d || c.values.len() != m {
            return Err(TableError::Contribution {
                expected: d,
                found: c.coords.len(),
            });
        }
        let key = (base(shape, &c.coords, &mut coords)?, c.contributor);
        let next = entry_rows.len();
        let e = *entries.entry(key).or_insert(next);
        if e == next {
            entry_rows.push(0);
            entry_values.extend(std::iter::repeat_n(0.0, m));
        }
        entry_rows[e] += 1;
        for (q, v) in c.values.iter().enumerate() {
            entry_values[e * m + q] += v.max(0.0);
            row_max[q] = row_max[q].max(*v);
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
        known: Vec::new(),
        row_max,
    };
    let mut cells: Vec<(usize, usize)> = Vec::new();
    let mut values = vec![0.0; m];
    for one in order.chunk_by(|a, b| a.0 == b.0) {
        cells.clear();
        for &(_, base, e) in one {
            shape.for_each_margin(base, |cell| cells.push((cell, e)));
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
    // Counted contributors: each in one base cell, so in each of its
    // margins once.
    for c in &input.counted {
        if c.coords.len() != d {
            return Err(TableError::Contribution {
                expected: d,
                found: c.coords.len(),
            });
        }
        let base = base(shape, &c.coords, &mut coords)?;
        shape.for_each_margin(base, |cell| {
            t.rows[cell] += c.units;
            t.contributors[cell] += c.units;
        });
    }
    // What a reader knows: summed per base cell, then spread to margins.
    let w = m + 1;
    t.known = match &input.known {
        None => vec![(0.0, f64::INFINITY); shape.size * w],
        Some(rows) => {
            let mut per_base: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
            for r in rows {
                if r.coords.len() != d || r.bounds.len() != w {
                    return Err(TableError::Known {
                        expected: d,
                        found: r.coords.len(),
                    });
                }
                let b = base(shape, &r.coords, &mut coords)?;
                let slot = per_base.entry(b).or_insert_with(|| vec![(0.0, 0.0); w]);
                for (s, &(lo, hi)) in slot.iter_mut().zip(&r.bounds) {
                    s.0 += lo.max(0.0);
                    s.1 += hi.max(0.0);
                }
            }
            let mut known = vec![(0.0, 0.0); shape.size * w];
            for (b, bounds) in per_base {
                shape.for_each_margin(b, |cell| {
                    for (q, &(lo, hi)) in bounds.iter().enumerate() {
                        known[cell * w + q].0 += lo;
                        known[cell * w + q].1 += hi;
                    }
                });
            }
            known
        }
    };
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

/// Class disclosure: in every group along a sensitive dimension (the
/// other coordinates fixed, totals included) that holds rows, when every
/// row is in a sensitive category, the zeros of the other categories would
/// tell that of every member — they become primary. A zero beside only
/// zeros tells nothing.
fn class_disclosure(shape: &Shape, dims: &[Dimension], rows: &[u64], status: &mut [CellStatus]) {
    for (i, dim) in dims.iter().enumerate() {
        let cats = shape.cats[i];
        if dim.sensitive.is_empty() || dim.sensitive.len() >= cats {
            continue;
        }
        let sensitive: Vec<bool> = (0..cats)
            .map(|c| dim.sensitive.contains(&(c as u32)))
            .collect();
        for margin in 0..shape.size {
            let mut coords = shape.coords(margin);
            if !shape.is_total(i, coords[i]) || rows[margin] == 0 {
                continue;
            }
            let others: u64 = (0..cats)
                .filter(|&c| !sensitive[c])
                .map(|c| {
                    coords[i] = c;
                    rows[shape.index(&coords)]
                })
                .sum();
            if others > 0 {
                continue;
            }
            for c in (0..cats).filter(|&c| !sensitive[c]) {
                coords[i] = c;
                let cell = shape.index(&coords);
                if !status[cell].is_primary() {
                    status[cell] = CellStatus::PrimaryClass;
                }
            }
        }
    }
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

/// [`required`], limited to what a reader knows of the cell beforehand:
/// the table need not hide more than the released files leave open. A
/// quantity the files publish exactly is audited as the table alone.
pub(crate) fn requirement(
    cell: &Cell,
    quantity: usize,
    public: bool,
    rules: &TableRules,
) -> (f64, f64) {
    let value = if quantity == 0 {
        cell.rows as f64
    } else {
        cell.sums[quantity - 1]
    };
    let (below, above) = required(value, quantity, rules);
    if public {
        return (below, above);
    }
    let (lo, hi) = cell.known[quantity];
    (
        below.min((value - lo).max(0.0)),
        above.min((hi - value).max(0.0)),
    )
}

/// How far each cell can move down and up in each quantity while staying
/// within what a reader knows: per quantity and cell, the lowest and
/// highest value (the other quantities of the cell as they are). A
/// hypercube's perturbation moves one quantity at a time, so these bound
/// it.
pub(crate) struct Rooms {
    pub lo: Vec<Vec<f64>>,
    pub hi: Vec<Vec<f64>>,
}

pub(crate) fn rooms(
    cells: &[Cell],
    measures: &[Measure],
    ratio: Option<RatioBound>,
    public: &[bool],
) -> Rooms {
    let w = measures.len() + 1;
    let mut lo = vec![vec![0.0; cells.len()]; w];
    let mut hi = vec![vec![f64::INFINITY; cells.len()]; w];
    for (c, cell) in cells.iter().enumerate() {
        for q in 0..w {
            if !public[q] {
                lo[q][c] = cell.known[q].0.max(0.0);
                hi[q][c] = cell.known[q].1;
            }
        }
        for (q, m) in measures.iter().enumerate() {
            if let Some(max) = m.max_per_row {
                hi[q + 1][c] = hi[q + 1][c].min(max * cell.rows as f64);
            }
        }
        if let Some(r) = ratio {
            let (n, d) = (r.numerator + 1, r.denominator + 1);
            hi[n][c] = hi[n][c].min(r.max * cell.sums[r.denominator]);
            if r.max > 0.0 {
                lo[d][c] = lo[d][c].max(cell.sums[r.numerator] / r.max);
            }
        }
    }
    Rooms { lo, hi }
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

/// The cheapest qualifying hypercube around cell `p` that is not in
/// `used`, as the list of its corner cells. It must protect the cell on
/// the given sides by `needs` (per quantity: below, above): raising p
/// lowers the corners of opposite sign and raises those of the same sign,
/// lowering it does the reverse, and every corner must have that room. One
/// hypercube often cannot do both sides (a small cell whose neighbours are
/// small too), two can.
#[allow(clippy::too_many_arguments)]
fn best_hypercube(
    shape: &Shape,
    p: usize,
    quantities: &[Vec<f64>],
    rooms: &Rooms,
    needs: &[(f64, f64)],
    suppressed: &[bool],
    used: &HashSet<Vec<usize>>,
    sides: Sides,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let d = shape.dims();
    let pc = shape.coords(p);
    // Keep the search bounded on wide tables: per dimension at most as
    // many alternatives as keep the product near 20,000.
    let limit = ((20_000f64).powf(1.0 / d as f64).floor() as usize).max(2);
    let alts = alternatives(shape, &pc, &quantities[0], limit);
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
                    let value = quantities[q][cell];
                    let room_down = value - rooms.lo[q][cell];
                    let room_up = rooms.hi[q][cell] - value;
                    // Raising p: corners of sign -1 go down, of sign +1 up;
                    // lowering p: the reverse.
                    let (for_up, for_down) = if sign < 0 {
                        (room_down, room_up)
                    } else {
                        (room_up, room_down)
                    };
                    if (sides.up && for_up + 1e-9 < *above)
                        || (sides.down && for_down + 1e-9 < *below)
                    {
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

/// Rounds of "audit, then more suppression for every failing cell".
const MAX_ROUNDS: usize = 8;
/// From this round on, a failing cell's lines and their lines are
/// suppressed instead of another hypercube.
const ESCALATE_LINES: usize = 4;
/// From this round on, the failing cell's whole table.
const ESCALATE_TABLE: usize = 6;

/// One table while its set is protected.
struct Work {
    name: String,
    shape: Shape,
    dimensions: Vec<Dimension>,
    measures: Vec<Measure>,
    ratio: Option<RatioBound>,
    link: Option<Link>,
    public: Vec<bool>,
    cells: Vec<Cell>,
    quantities: Vec<Vec<f64>>,
    rooms: Rooms,
    suppressed: Vec<bool>,
    used: HashMap<usize, HashSet<Vec<usize>>>,
}

impl Work {
    /// Tabulates a table and applies the primary rules.
    fn new(input: &TableInput, rules: &TableRules) -> Result<Work, TableError> {
        let shape = Shape::new(
            input
                .dimensions
                .iter()
                .map(|d| d.categories.len())
                .collect(),
        )?;
        let m = input.measures.len();
        if let Some(r) = input.ratio
            && (r.numerator >= m || r.denominator >= m)
        {
            return Err(TableError::Ratio(r.numerator.max(r.denominator)));
        }
        let top_n = rules.dominance.as_ref().map_or(2, |d| d.n.max(2));
        let t = tabulate(&shape, input, top_n)?;
        let w = m + 1;
        let mut status: Vec<CellStatus> = (0..shape.size)
            .map(|cell| primary_status(&t, cell, m, rules))
            .collect();
        class_disclosure(&shape, &input.dimensions, &t.rows, &mut status);
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
                status: status[cell],
                known: t.known[cell * w..(cell + 1) * w].to_vec(),
            })
            .collect();
        // A quantity is public when what a reader knows fixes every cell.
        let public: Vec<bool> = (0..w)
            .map(|q| {
                input.known.is_some()
                    && cells.iter().all(|c| {
                        let (lo, hi) = c.known[q];
                        hi.is_finite() && hi - lo <= 1e-9 * hi.abs().max(1.0)
                    })
            })
            .collect();
        // The maxima the audit applies: as declared, raised to the data
        // where a row exceeds them (an assumption the data break would
        // make the programs infeasible, not the release safer).
        let measures: Vec<Measure> = input
            .measures
            .iter()
            .zip(&t.row_max)
            .map(|(m, &largest)| Measure {
                name: m.name.clone(),
                max_per_row: m.max_per_row.map(|max| max.max(largest)),
            })
            .collect();
        let ratio = input.ratio.map(|r| {
            let mut max = r.max;
            for c in &cells {
                let (n, d) = (c.sums[r.numerator], c.sums[r.denominator]);
                if n > max * d {
                    max = if d > 0.0 { n / d } else { f64::INFINITY };
                }
            }
            RatioBound { max, ..r }
        });
        let ratio = ratio.filter(|r| r.max.is_finite());
        // Where the file gives a cell's rows (or the ratio's other side),
        // a maximum bounds the cell before the table is read: per base
        // cell, and a margin is the sum of what its base cells allow.
        let folds = (public[0] && measures.iter().any(|m| m.max_per_row.is_some()))
            || ratio.is_some_and(|r| public[r.numerator + 1] || public[r.denominator + 1]);
        if folds {
            let is_base = |c: &Cell| c.coords.iter().all(Option::is_some);
            for c in cells.iter_mut().filter(|c| is_base(c)) {
                for (q, m) in measures.iter().enumerate() {
                    if let (Some(max), true) = (m.max_per_row, public[0]) {
                        c.known[q + 1].1 = c.known[q + 1].1.min(max * c.rows as f64);
                    }
                }
                if let Some(r) = ratio {
                    let (n, d) = (r.numerator, r.denominator);
                    if public[d + 1] {
                        c.known[n + 1].1 = c.known[n + 1].1.min(r.max * c.sums[d]);
                    }
                    if public[n + 1] && r.max > 0.0 {
                        c.known[d + 1].0 = c.known[d + 1].0.max(c.sums[n] / r.max);
                    }
                }
            }
            let mut known = vec![vec![(0.0, 0.0); w]; shape.size];
            for (b, cell) in cells.iter().enumerate().filter(|(_, c)| is_base(c)) {
                shape.for_each_margin(b, |target| {
                    for (q, &(lo, hi)) in cell.known.iter().enumerate() {
                        known[target][q].0 += lo;
                        known[target][q].1 += hi;
                    }
                });
            }
            for (c, k) in cells.iter_mut().zip(known) {
                c.known = k;
            }
        }
        let rooms = rooms(&cells, &measures, ratio, &public);
        let suppressed = cells.iter().map(|c| c.status.is_suppressed()).collect();
        Ok(Work {
            name: input.name.clone(),
            quantities: quantities(&cells),
            shape,
            dimensions: input.dimensions.clone(),
            measures,
            ratio,
            link: input.link.clone(),
            public,
            cells,
            rooms,
            suppressed,
            used: HashMap::new(),
        })
    }

    /// Suppresses a hypercube around `p` that protects it on `sides`
    /// (one per side if no single one does); failing that, every cell on
    /// its lines, and the audit decides.
    fn protect_cell(&mut self, p: usize, sides: Sides, rules: &TableRules) {
        // What the file leaves open is all there is to hide.
        let needs: Vec<(f64, f64)> = (0..self.quantities.len())
            .map(|q| requirement(&self.cells[p], q, self.public[q], rules))
            .collect();
        let take = |work: &mut Work, sides: Sides| {
            let used = work.used.entry(p).or_default();
            match best_hypercube(
                &work.shape,
                p,
                &work.quantities,
                &work.rooms,
                &needs,
                &work.suppressed,
                used,
                sides,
            ) {
                Some((alt, corners)) => {
                    used.insert(alt);
                    for c in corners {
                        work.suppressed[c] = true;
                    }
                    true
                }
                None => false,
            }
        };
        if take(self, sides) {
            return;
        }
        if sides == BOTH {
            // One hypercube per side; both must exist.
            let down = take(self, DOWN);
            let up = take(self, UP);
            if down && up {
                return;
            }
        }
        suppress_relations_of(&self.shape, p, &mut self.suppressed);
    }

    fn mark_secondary(&mut self) {
        for (c, cell) in self.cells.iter_mut().enumerate() {
            if self.suppressed[c] && !cell.status.is_primary() {
                cell.status = CellStatus::Secondary;
            }
        }
    }

    fn view(&self) -> audit::View<'_> {
        audit::View {
            name: &self.name,
            shape: self.shape.clone(),
            dimensions: &self.dimensions,
            cells: &self.cells,
            measures: &self.measures,
            ratio: self.ratio,
            public: &self.public,
            link: self.link.as_ref(),
        }
    }
}

/// Tabulates, suppresses and audits a table on its own.
pub fn protect(input: &TableInput, rules: &TableRules) -> Result<ProtectedTable, TableError> {
    let mut out = protect_linked(std::slice::from_ref(input), rules)?;
    Ok(out.remove(0))
}

/// Tabulates, suppresses and audits tables together: tables that share
/// cells ([`Link`]) are protected as one set, with one audit over all
/// their cells and relations; tables that share none are independent.
pub fn protect_linked(
    inputs: &[TableInput],
    rules: &TableRules,
) -> Result<Vec<ProtectedTable>, TableError> {
    let works: Vec<Work> = inputs
        .iter()
        .map(|i| Work::new(i, rules))
        .collect::<Result<_, _>>()?;
    // Sets of tables that share cells, each protected and audited on its
    // own (in the order of their first table).
    let links = audit::Links::new(&works.iter().map(Work::view).collect::<Vec<_>>());
    let mut set_of: Vec<usize> = (0..works.len()).collect();
    for instances in &links.instances {
        for pair in instances.windows(2) {
            let (a, b) = (pair[0].0, pair[1].0);
            let (ra, rb) = (set_of[a], set_of[b]);
            if ra != rb {
                let (keep, merge) = (ra.min(rb), ra.max(rb));
                set_of
                    .iter_mut()
                    .filter(|s| **s == merge)
                    .for_each(|s| *s = keep);
            }
        }
    }
    let mut slots: Vec<Option<Work>> = works.into_iter().map(Some).collect();
    let mut out: Vec<Option<ProtectedTable>> = (0..slots.len()).map(|_| None).collect();
    for set in 0..slots.len() {
        let members: Vec<usize> = (0..slots.len()).filter(|&t| set_of[t] == set).collect();
        if members.is_empty() {
            continue;
        }
        let works: Vec<Work> = members
            .iter()
            .map(|&t| slots[t].take().expect("each table in one set"))
            .collect();
        for (t, table) in members.into_iter().zip(protect_set(works, rules)?) {
            out[t] = Some(table);
        }
    }
    Ok(out
        .into_iter()
        .map(|t| t.expect("every table protected"))
        .collect())
}

/// Protects one set of tables that share cells (or one table alone).
fn protect_set(
    mut works: Vec<Work>,
    rules: &TableRules,
) -> Result<Vec<ProtectedTable>, TableError> {
    let links = audit::Links::new(&works.iter().map(Work::view).collect::<Vec<_>>());
    for work in &mut works {
        let primaries: Vec<usize> = (0..work.cells.len())
            .filter(|&c| work.cells[c].status.is_primary())
            .collect();
        for p in primaries {
            work.protect_cell(p, BOTH, rules);
        }
    }
    let mut report;
    let mut round = 0;
    loop {
        make_consistent(&mut works, &links, rules);
        for work in &mut works {
            work.mark_secondary();
        }
        let views: Vec<audit::View<'_>> = works.iter().map(Work::view).collect();
        report = audit::audit_system(
            &views,
            &links,
            rules,
            AuditMethod::HypercubesThenLinearPrograms,
        )
        .report;
        drop(views);
        if report.failures.is_empty() {
            break;
        }
        round += 1;
        if round == MAX_ROUNDS {
            let f = &report.failures[0];
            return Err(TableError::Unprotected {
                table: f.table.clone(),
                count: report.failures.len(),
                coords: f.coords.clone(),
                quantity: f.quantity,
                value: f.value,
                lower: f.lower,
                upper: f.upper,
            });
        }
        // Per failing cell (in every table that holds it), the sides on
        // which some quantity falls short.
        let mut failing: BTreeMap<(usize, usize), Sides> = BTreeMap::new();
        for f in &report.failures {
            let tol = 1e-6 * f.value.abs().max(1.0);
            let var = links.var_of[f.table_index][f.cell];
            for &(t, c) in &links.instances[var] {
                let s = failing.entry((t, c)).or_insert(Sides {
                    down: false,
                    up: false,
                });
                s.down |= f.lower > f.required_lower + tol;
                s.up |= f.upper < f.required_upper - tol;
            }
        }
        // Another hypercube first; when rounds go by, the cell's lines
        // and theirs; at last the whole table, whose every cell is then
        // free within what a reader knows of it beforehand — which the
        // requirement never exceeds.
        for ((t, p), sides) in failing {
            let work = &mut works[t];
            if round >= ESCALATE_TABLE {
                work.suppressed.iter_mut().for_each(|s| *s = true);
            } else if round >= ESCALATE_LINES {
                let shape = work.shape.clone();
                let pc = shape.coords(p);
                for i in 0..shape.dims() {
                    let mut coords = pc.clone();
                    for c in 0..=shape.cats[i] {
                        coords[i] = c;
                        suppress_relations_of(&shape, shape.index(&coords), &mut work.suppressed);
                    }
                }
            } else {
                let sides = if sides.down || sides.up { sides } else { BOTH };
                work.protect_cell(p, sides, rules);
            }
        }
    }
    // Which tables each was protected with: those it shares a cell with.
    let mut partners: Vec<std::collections::BTreeSet<usize>> =
        vec![Default::default(); works.len()];
    for instances in &links.instances {
        for &(a, _) in instances {
            for &(b, _) in instances {
                if a != b {
                    partners[a].insert(b);
                }
            }
        }
    }
    let names: Vec<String> = works.iter().map(|w| w.name.clone()).collect();
    Ok(works
        .into_iter()
        .zip(partners)
        .map(|(w, partners)| ProtectedTable {
            name: w.name,
            dimensions: w.dimensions,
            measures: w.measures,
            ratio: w.ratio,
            link: w.link,
            public: w.public,
            cells: w.cells,
            audit: report.clone(),
            linked_with: partners.into_iter().map(|t| names[t].clone()).collect(),
        })
        .collect())
}

/// A cell shared by linked tables is one quantity: suppressed in one, it
/// is suppressed in all, and protected there like a primary cell (else
/// the other table's relations would give it back). Repeated until no
/// table suppresses a shared cell the others publish.
fn make_consistent(works: &mut [Work], links: &audit::Links, rules: &TableRules) {
    loop {
        let mut forced = Vec::new();
        for instances in links.instances.iter().filter(|i| i.len() > 1) {
            let any = instances.iter().any(|&(t, c)| works[t].suppressed[c]);
            if any {
                for &(t, c) in instances {
                    if !works[t].suppressed[c] {
                        works[t].suppressed[c] = true;
                        forced.push((t, c));
                    }
                }
            }
        }
        if forced.is_empty() {
            return;
        }
        for (t, c) in forced {
            works[t].protect_cell(c, BOTH, rules);
        }
    }
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

#[cfg(test)]
mod tests;
