//! The audit: what can a researcher derive about a suppressed cell?
//!
//! Every suppressed cell is an unknown ≥ 0; every published cell is fixed;
//! every additive relation (categories sum to their total) must hold. For
//! each primary cell and each quantity (contributor count, each measure's
//! sum), two linear programs give the lowest and highest value it can
//! take. Relations only tie suppressed cells that share one, so the
//! programs are solved per connected component of suppressed cells.
//!
//! Most cells need no program: a *hypercube* of suppressed cells around a
//! primary cell — one alternative coordinate per dimension, all 2^d
//! corners suppressed — admits the alternating perturbation that keeps
//! every relation true, so the cell can move up by as much as its
//! opposite-sign corners hold and down by as much as its same-sign corners
//! hold. That is a proof of a lower bound on the interval; the audit
//! searches the suppressed cells for such hypercubes first and solves the
//! linear programs only for what no hypercube proves (or for everything,
//! with [`AuditMethod::LinearPrograms`]).

use microlp::{ComparisonOp, Error as LpError, OptimizationDirection, Problem};
use serde::Serialize;

use super::{Cell, Dimension, Shape, TableError, TableRules, quantities, required};

/// One primary cell and quantity whose derivable interval is too narrow.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFailure {
    #[serde(skip)]
    pub cell: usize,
    pub coords: Vec<Option<u32>>,
    /// 0 is the contributor count; 1.. the measures in order.
    pub quantity: usize,
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
    pub required_lower: f64,
    pub required_upper: f64,
}

/// How the audit establishes each interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMethod {
    /// A hypercube of suppressed cells where one proves the protection,
    /// linear programs for the rest.
    HypercubesThenLinearPrograms,
    /// Linear programs for every primary cell and quantity.
    LinearPrograms,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Primary cells checked.
    pub cells_checked: u64,
    /// Cell-quantities whose protection a hypercube of suppressed cells
    /// proves, without a linear program.
    pub proven_by_hypercube: u64,
    pub lps_solved: u64,
    /// Connected components of suppressed cells.
    pub components: u64,
    /// The tightest protection found, as a multiple of the required one
    /// (≥ 1 passes; null when nothing needed protection). Where a
    /// hypercube proved a cell, its figure is a lower bound.
    pub tightest_protection: Option<f64>,
    pub failures: Vec<AuditFailure>,
}

/// Audits a suppression pattern given as cells in the extended table's
/// row-major order (as [`super::protect`] returns them).
pub fn audit(
    dimensions: &[Dimension],
    cells: &[Cell],
    rules: &TableRules,
    method: AuditMethod,
) -> Result<AuditReport, TableError> {
    let shape = Shape::new(dimensions.iter().map(|d| d.categories.len()).collect())?;
    if cells.len() != shape.size {
        return Err(TableError::Shape);
    }
    Ok(audit_cells(&shape, cells, rules, method))
}

/// Hypercubes searched per primary cell before the audit falls back to
/// linear programs.
const HYPERCUBE_SEARCH_LIMIT: usize = 20_000;

/// The best protection single hypercubes of suppressed cells prove for
/// primary cell `p`, per quantity: (how far down, how far up).
pub(super) fn hypercube_bounds(
    shape: &Shape,
    p: usize,
    suppressed: &[bool],
    quantities: &[Vec<f64>],
) -> Vec<(f64, f64)> {
    let d = shape.dims();
    let pc = shape.coords(p);
    let mut best = vec![(0.0f64, 0.0f64); quantities.len()];
    // A corner that differs from p in one dimension only must itself be
    // suppressed, so the alternatives per dimension are the suppressed
    // cells on p's lines.
    let mut coords = pc.clone();
    let mut alts: Vec<Vec<usize>> = Vec::with_capacity(d);
    for i in 0..d {
        let mut line = Vec::new();
        for a in (0..=shape.cats[i]).filter(|&a| a != pc[i]) {
            coords[i] = a;
            if suppressed[shape.index(&coords)] {
                line.push(a);
            }
        }
        coords[i] = pc[i];
        if line.is_empty() {
            return best;
        }
        alts.push(line);
    }
    let mut choice = vec![0usize; d];
    let mut searched = 0usize;
    let mut down = vec![0.0f64; quantities.len()];
    let mut up = vec![0.0f64; quantities.len()];
    'combos: loop {
        searched += 1;
        down.iter_mut().for_each(|x| *x = f64::INFINITY);
        up.iter_mut().for_each(|x| *x = f64::INFINITY);
        let mut complete = true;
        for mask in 1..(1usize << d) {
            let mut sign = 1i32;
            for i in 0..d {
                if mask & (1 << i) != 0 {
                    let a = alts[i][choice[i]];
                    coords[i] = a;
                    if !shape.is_total(i, pc[i]) && !shape.is_total(i, a) {
                        sign = -sign;
                    }
                } else {
                    coords[i] = pc[i];
                }
            }
            let cell = shape.index(&coords);
            if !suppressed[cell] {
                complete = false;
                break;
            }
            // Raising p lowers the corners of sign -1, lowering p lowers
            // those of sign +1; none may go below zero.
            for (q, values) in quantities.iter().enumerate() {
                let slot = if sign < 0 { &mut up[q] } else { &mut down[q] };
                *slot = slot.min(values[cell]);
            }
        }
        if complete {
            for (q, values) in quantities.iter().enumerate() {
                best[q].0 = best[q].0.max(down[q].min(values[p]));
                best[q].1 = best[q].1.max(up[q]);
            }
        }
        if searched >= HYPERCUBE_SEARCH_LIMIT {
            break;
        }
        for i in (0..d).rev() {
            choice[i] += 1;
            if choice[i] < alts[i].len() {
                continue 'combos;
            }
            choice[i] = 0;
        }
        break;
    }
    best
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

pub(super) fn audit_cells(
    shape: &Shape,
    cells: &[Cell],
    rules: &TableRules,
    method: AuditMethod,
) -> AuditReport {
    let suppressed: Vec<bool> = cells.iter().map(|c| c.status.is_suppressed()).collect();
    let relations: Vec<Vec<usize>> = shape
        .relations()
        .into_iter()
        .filter(|r| r.iter().any(|&c| suppressed[c]))
        .collect();
    let mut parent: Vec<usize> = (0..cells.len()).collect();
    for r in &relations {
        let mut first = None;
        for &c in r.iter().filter(|&&c| suppressed[c]) {
            match first {
                None => first = Some(c),
                Some(f) => {
                    let (a, b) = (find(&mut parent, f), find(&mut parent, c));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut components: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for c in (0..cells.len()).filter(|&c| suppressed[c]) {
        let root = find(&mut parent, c);
        components.entry(root).or_default().push(c);
    }
    let quantities = quantities(cells);
    let mut report = AuditReport {
        components: components.len() as u64,
        ..AuditReport::default()
    };
    for members in components.values() {
        let primaries: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&c| cells[c].status.is_primary())
            .collect();
        if primaries.is_empty() {
            continue;
        }
        report.cells_checked += primaries.len() as u64;
        let var_of = |cell: usize| members.binary_search(&cell).ok();
        let rels: Vec<&Vec<usize>> = relations
            .iter()
            .filter(|r| r.iter().any(|&c| var_of(c).is_some()))
            .collect();
        for &p in &primaries {
            let proofs = match method {
                AuditMethod::HypercubesThenLinearPrograms => {
                    hypercube_bounds(shape, p, &suppressed, &quantities)
                }
                AuditMethod::LinearPrograms => vec![(0.0, 0.0); quantities.len()],
            };
            for (q, values) in quantities.iter().enumerate() {
                let value = values[p];
                let (below, above) = required(value, q, rules);
                let (down, up) = proofs[q];
                let tol = 1e-6 * value.abs().max(1.0);
                let [lower, upper] = if down + tol >= below && up + tol >= above {
                    report.proven_by_hypercube += 1;
                    [value - down, value + up]
                } else {
                    let mut bounds = [0.0f64; 2];
                    for (i, direction) in [
                        OptimizationDirection::Minimize,
                        OptimizationDirection::Maximize,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        report.lps_solved += 1;
                        bounds[i] = bound(members, &rels, values, &var_of, p, direction);
                    }
                    bounds
                };
                let ok = lower <= value - below + tol && upper >= value + above - tol;
                let ratio = [
                    (below > 0.0).then(|| (value - lower) / below),
                    (above > 0.0).then(|| (upper - value) / above),
                ]
                .into_iter()
                .flatten()
                .fold(f64::INFINITY, f64::min);
                if ratio.is_finite() {
                    report.tightest_protection = Some(
                        report
                            .tightest_protection
                            .map_or(ratio, |t: f64| t.min(ratio)),
                    );
                }
                if !ok {
                    report.failures.push(AuditFailure {
                        cell: p,
                        coords: cells[p].coords.clone(),
                        quantity: q,
                        value,
                        lower,
                        upper,
                        required_lower: value - below,
                        required_upper: value + above,
                    });
                }
            }
        }
    }
    report
}

/// The lowest or highest value of cell `target` consistent with the
/// published cells. An infeasible or failed program counts as an exact
/// disclosure (the interval collapses to the value), so it fails the audit
/// rather than passing it.
pub(super) fn bound(
    members: &[usize],
    relations: &[&Vec<usize>],
    values: &[f64],
    var_of: &dyn Fn(usize) -> Option<usize>,
    target: usize,
    direction: OptimizationDirection,
) -> f64 {
    let mut problem = Problem::new(direction);
    let vars: Vec<_> = members
        .iter()
        .map(|&c| problem.add_var(if c == target { 1.0 } else { 0.0 }, (0.0, f64::INFINITY)))
        .collect();
    for r in relations {
        let total = *r.last().expect("relations have a total");
        let mut terms = Vec::with_capacity(r.len());
        let mut rhs = 0.0;
        for &c in r.iter() {
            let coef = if c == total { -1.0 } else { 1.0 };
            match var_of(c) {
                Some(v) => terms.push((vars[v], coef)),
                None => rhs -= coef * values[c],
            }
        }
        problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, rhs);
    }
    match problem.solve().map(|o| o.into_solution()) {
        Ok(Ok(solution)) => solution.objective(),
        Err(LpError::Unbounded) if direction == OptimizationDirection::Maximize => f64::INFINITY,
        _ => values[target],
    }
}
