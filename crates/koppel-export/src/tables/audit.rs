//! The audit: what can a researcher derive about a suppressed cell?
//!
//! Every suppressed cell is an unknown; every published cell is fixed;
//! every additive relation (categories sum to their total) of every table
//! must hold. What the reader knows besides the tables bounds the
//! unknowns: every count and sum is ≥ 0; a cell's interval from a released
//! file (its rows' classes, its count) where the table is made from that
//! file's rows; a measure's known maximum per row times the cell's rows;
//! a ratio's known maximum (absence days at most the available days).
//! For each primary cell and each quantity (row count, each measure's
//! sum), two linear programs give the lowest and highest value it can
//! take. Relations only tie suppressed cells that share one, so the
//! programs are solved per connected component of suppressed cells.
//!
//! Linked tables ([`super::Link`]) are audited as one system: a cell they
//! share is one unknown (or one published value), and the relations of
//! all of them hold together.
//!
//! Most cells need no program: a *hypercube* of suppressed cells around a
//! primary cell — one alternative coordinate per dimension, all 2^d
//! corners suppressed — admits the alternating perturbation that keeps
//! every relation true, so the cell can move up and down by as much as
//! every corner has room to move the other way within its bounds. That is
//! a proof of a lower bound on the interval, as long as no corner is
//! shared with another table (whose relations the perturbation would
//! break); the audit searches the suppressed cells for such hypercubes
//! first and solves the linear programs only for what no hypercube proves
//! (or for everything, with [`AuditMethod::LinearPrograms`]).

use std::collections::{BTreeMap, HashMap};

use microlp::{ComparisonOp, Error as LpError, OptimizationDirection, Problem, Variable};
use serde::Serialize;

use super::{
    Cell, Dimension, Link, Measure, ProtectedTable, RatioBound, Rooms, Shape, TableError,
    TableRules, quantities, requirement, rooms,
};

/// One primary cell and quantity whose derivable interval is too narrow.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFailure {
    /// The table (of a linked set) the cell was checked in.
    pub table: String,
    #[serde(skip)]
    pub table_index: usize,
    #[serde(skip)]
    pub cell: usize,
    pub coords: Vec<Option<u32>>,
    /// 0 is the row count; 1.. the measures in order.
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
    /// Cells shared by two or more linked tables (counted once).
    pub shared_cells: u64,
    /// The tightest protection found, as a multiple of the required one
    /// (≥ 1 passes; null when nothing needed protection). Where a
    /// hypercube proved a cell, its figure is a lower bound.
    pub tightest_protection: Option<f64>,
    pub failures: Vec<AuditFailure>,
}

/// One table as the audit reads it.
pub(super) struct View<'a> {
    pub name: &'a str,
    pub shape: Shape,
    pub dimensions: &'a [Dimension],
    pub cells: &'a [Cell],
    pub measures: &'a [Measure],
    pub ratio: Option<RatioBound>,
    pub public: &'a [bool],
    pub link: Option<&'a Link>,
}

/// Audits suppression patterns of tables given as [`super::protect`] and
/// [`super::protect_linked`] return them: linked tables (the same
/// population, dimensions with the same keys) are audited as one system.
pub fn audit(
    tables: &[&ProtectedTable],
    rules: &TableRules,
    method: AuditMethod,
) -> Result<AuditReport, TableError> {
    let shapes: Vec<Shape> = tables
        .iter()
        .map(|t| Shape::new(t.dimensions.iter().map(|d| d.categories.len()).collect()))
        .collect::<Result<_, _>>()?;
    for (t, shape) in tables.iter().zip(&shapes) {
        let w = t.measures.len() + 1;
        if t.cells.len() != shape.size
            || t.public.len() != w
            || t.cells
                .iter()
                .any(|c| c.known.len() != w || c.sums.len() + 1 != w)
            || t.ratio
                .is_some_and(|r| r.numerator + 1 >= w || r.denominator + 1 >= w)
        {
            return Err(TableError::Shape);
        }
    }
    let views: Vec<View<'_>> = tables
        .iter()
        .zip(shapes)
        .map(|(t, shape)| View {
            name: &t.name,
            shape,
            dimensions: &t.dimensions,
            cells: &t.cells,
            measures: &t.measures,
            ratio: t.ratio,
            public: &t.public,
            link: t.link.as_ref(),
        })
        .collect();
    let links = Links::new(&views);
    Ok(audit_system(&views, &links, rules, method).report)
}

/// Which cells of linked tables are one: `var_of[table][cell]` is the
/// cell's variable, `instances[var]` every (table, cell) that holds it.
pub(super) struct Links {
    pub var_of: Vec<Vec<usize>>,
    pub instances: Vec<Vec<(usize, usize)>>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    parent[a.max(b)] = a.min(b);
}

impl Links {
    pub(super) fn new(views: &[View<'_>]) -> Links {
        let mut offsets = Vec::with_capacity(views.len());
        let mut total = 0;
        for v in views {
            offsets.push(total);
            total += v.cells.len();
        }
        let mut parent: Vec<usize> = (0..total).collect();
        let key = |v: &View<'_>| {
            v.link
                .filter(|l| l.dimensions.len() == v.dimensions.len())
                .map(|l| l.population.clone())
        };
        for a in 0..views.len() {
            for b in a + 1..views.len() {
                let (va, vb) = (&views[a], &views[b]);
                let (Some(pa), Some(pb)) = (key(va), key(vb)) else {
                    continue;
                };
                if pa != pb {
                    continue;
                }
                // Shared cells matter only for a quantity both tables
                // hide: what a released file publishes in both (a person
                // table's counts) a reader has anyway.
                let hidden_in_both = |q_a: usize, q_b: usize| !va.public[q_a] && !vb.public[q_b];
                let mut common = hidden_in_both(0, 0);
                for (i, m) in va.measures.iter().enumerate() {
                    if let Some(j) = vb.measures.iter().position(|n| n.name == m.name) {
                        common |= hidden_in_both(i + 1, j + 1);
                    }
                }
                if !common {
                    continue;
                }
                let (la, lb) = (va.link.expect("keyed"), vb.link.expect("keyed"));
                // Common dimensions: the same key and the same categories.
                let mut pairs: Vec<(usize, usize)> = Vec::new();
                for (i, k) in la.dimensions.iter().enumerate() {
                    if la.dimensions[..i].contains(k) {
                        continue;
                    }
                    if let Some(j) = lb.dimensions.iter().position(|x| x == k)
                        && va.dimensions[i].categories == vb.dimensions[j].categories
                    {
                        pairs.push((i, j));
                    }
                }
                let mut coords_b = vec![0usize; vb.shape.dims()];
                'cells: for ca in 0..va.cells.len() {
                    let coords = va.shape.coords(ca);
                    for (i, &c) in coords.iter().enumerate() {
                        if !va.shape.is_total(i, c) && !pairs.iter().any(|&(x, _)| x == i) {
                            continue 'cells;
                        }
                    }
                    for (j, slot) in coords_b.iter_mut().enumerate() {
                        *slot = vb.shape.cats[j];
                    }
                    for &(i, j) in &pairs {
                        coords_b[j] = if va.shape.is_total(i, coords[i]) {
                            vb.shape.cats[j]
                        } else {
                            coords[i]
                        };
                    }
                    let cb = vb.shape.index(&coords_b);
                    union(&mut parent, offsets[a] + ca, offsets[b] + cb);
                }
            }
        }
        let mut id_of_root: HashMap<usize, usize> = HashMap::new();
        let mut var_of = Vec::with_capacity(views.len());
        let mut instances: Vec<Vec<(usize, usize)>> = Vec::new();
        for (t, v) in views.iter().enumerate() {
            let mut vars = Vec::with_capacity(v.cells.len());
            for c in 0..v.cells.len() {
                let root = find(&mut parent, offsets[t] + c);
                let next = id_of_root.len();
                let id = *id_of_root.entry(root).or_insert(next);
                if id == instances.len() {
                    instances.push(Vec::new());
                }
                instances[id].push((t, c));
                vars.push(id);
            }
            var_of.push(vars);
        }
        Links { var_of, instances }
    }
}

/// Hypercubes searched per primary cell before the audit falls back to
/// linear programs.
const HYPERCUBE_SEARCH_LIMIT: usize = 20_000;

/// The best protection single hypercubes of `usable` cells (suppressed
/// and in no other table) prove for cell `p`, per quantity: (how far
/// down, how far up). Every corner, and p itself, must have room for the
/// move within its bounds ([`Rooms`]).
pub(super) fn hypercube_bounds(
    shape: &Shape,
    p: usize,
    usable: &[bool],
    quantities: &[Vec<f64>],
    rooms: &Rooms,
) -> Vec<(f64, f64)> {
    let d = shape.dims();
    let pc = shape.coords(p);
    let mut best = vec![(0.0f64, 0.0f64); quantities.len()];
    // A corner that differs from p in one dimension only must itself be
    // suppressed, so the alternatives per dimension are the usable cells
    // on p's lines.
    let mut coords = pc.clone();
    let mut alts: Vec<Vec<usize>> = Vec::with_capacity(d);
    for i in 0..d {
        let mut line = Vec::new();
        for a in (0..=shape.cats[i]).filter(|&a| a != pc[i]) {
            coords[i] = a;
            if usable[shape.index(&coords)] {
                line.push(a);
            }
        }
        coords[i] = pc[i];
        if line.is_empty() {
            return best;
        }
        alts.push(line);
    }
    let room = |q: usize, cell: usize| {
        let v = quantities[q][cell];
        (
            (v - rooms.lo[q][cell]).max(0.0),
            (rooms.hi[q][cell] - v).max(0.0),
        )
    };
    let own: Vec<(f64, f64)> = (0..quantities.len()).map(|q| room(q, p)).collect();
    let mut choice = vec![0usize; d];
    let mut searched = 0usize;
    let mut down = vec![0.0f64; quantities.len()];
    let mut up = vec![0.0f64; quantities.len()];
    'combos: loop {
        searched += 1;
        for (q, (own_down, own_up)) in own.iter().enumerate() {
            down[q] = *own_down;
            up[q] = *own_up;
        }
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
            if !usable[cell] {
                complete = false;
                break;
            }
            // Raising p lowers the corners of sign -1 and raises those of
            // sign +1; lowering p the reverse. None may leave its bounds.
            for q in 0..quantities.len() {
                let (room_down, room_up) = room(q, cell);
                if sign < 0 {
                    up[q] = up[q].min(room_down);
                    down[q] = down[q].min(room_up);
                } else {
                    up[q] = up[q].min(room_up);
                    down[q] = down[q].min(room_down);
                }
            }
        }
        if complete {
            for q in 0..quantities.len() {
                best[q].0 = best[q].0.max(down[q]);
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

/// A variable's value and bounds in one quantity.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    value: f64,
    lb: f64,
    ub: f64,
}

/// `x[a] ≤ factor × x[b]` for one variable: a known maximum tying two
/// quantities of a cell that are both unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Coupling {
    a: usize,
    b: usize,
    factor: f64,
}

/// One interval the audit established, for tests.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct Interval {
    pub table: usize,
    pub cell: usize,
    pub quantity: usize,
    pub lower: f64,
    pub upper: f64,
    pub proven_by_hypercube: bool,
}

pub(super) struct Outcome {
    pub report: AuditReport,
    #[cfg_attr(not(test), allow(dead_code))]
    pub intervals: Vec<Interval>,
}

/// The system of linked tables: global quantities (rows, then measures by
/// name), each variable's bounds per quantity, and the couplings.
struct System<'a> {
    views: &'a [View<'a>],
    links: &'a Links,
    /// `quantity_of[table][local quantity]`: the global quantity.
    quantity_of: Vec<Vec<usize>>,
    /// `bounds[var][quantity]`, `None` where no table of the variable has
    /// the quantity.
    bounds: Vec<Vec<Option<Bounds>>>,
    couplings: Vec<Vec<Coupling>>,
    /// The programs' quantity groups: quantities tied by a coupling.
    group_of: Vec<usize>,
    suppressed: Vec<bool>,
    primary: Vec<bool>,
}

impl<'a> System<'a> {
    fn new(views: &'a [View<'a>], links: &'a Links) -> System<'a> {
        let mut names: Vec<String> = Vec::new();
        let mut global = |name: String| match names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                names.push(name);
                names.len() - 1
            }
        };
        let quantity_of: Vec<Vec<usize>> = views
            .iter()
            .map(|v| {
                std::iter::once(global("\u{0}rows".into()))
                    .chain(v.measures.iter().map(|m| global(m.name.clone())))
                    .collect()
            })
            .collect();
        let n_quantities = names.len();
        let mut parent: Vec<usize> = (0..n_quantities).collect();
        for (t, v) in views.iter().enumerate() {
            let q = &quantity_of[t];
            for (i, m) in v.measures.iter().enumerate() {
                if m.max_per_row.is_some() && !v.public[0] && !v.public[i + 1] {
                    union(&mut parent, q[0], q[i + 1]);
                }
            }
            if let Some(r) = v.ratio
                && !v.public[r.numerator + 1]
                && !v.public[r.denominator + 1]
            {
                union(&mut parent, q[r.numerator + 1], q[r.denominator + 1]);
            }
        }
        let group_of = (0..n_quantities).map(|q| find(&mut parent, q)).collect();
        let n_vars = links.instances.len();
        let mut bounds: Vec<Vec<Option<Bounds>>> = vec![vec![None; n_quantities]; n_vars];
        let mut couplings: Vec<Vec<Coupling>> = vec![Vec::new(); n_vars];
        let mut suppressed = vec![true; n_vars];
        let mut primary = vec![false; n_vars];
        for (var, instances) in links.instances.iter().enumerate() {
            for &(t, c) in instances {
                let v = &views[t];
                let cell = &v.cells[c];
                suppressed[var] &= cell.status.is_suppressed();
                primary[var] |= cell.status.is_primary();
                let value = |q: usize| {
                    if q == 0 {
                        cell.rows as f64
                    } else {
                        cell.sums[q - 1]
                    }
                };
                for q in 0..=v.measures.len() {
                    let (mut lb, mut ub) = if v.public[q] {
                        (0.0, f64::INFINITY)
                    } else {
                        (cell.known[q].0.max(0.0), cell.known[q].1)
                    };
                    if q > 0
                        && let Some(max) = v.measures[q - 1].max_per_row
                    {
                        if v.public[0] || v.public[q] {
                            ub = ub.min(max * cell.rows as f64);
                        } else {
                            couplings[var].push(Coupling {
                                a: quantity_of[t][q],
                                b: quantity_of[t][0],
                                factor: max,
                            });
                        }
                    }
                    if let Some(r) = v.ratio {
                        let (n, d) = (r.numerator + 1, r.denominator + 1);
                        let tied = !v.public[n] && !v.public[d];
                        if q == n && !tied {
                            ub = ub.min(r.max * value(d));
                        } else if q == d && !tied && r.max > 0.0 {
                            lb = lb.max(value(n) / r.max);
                        } else if q == n {
                            couplings[var].push(Coupling {
                                a: quantity_of[t][n],
                                b: quantity_of[t][d],
                                factor: r.max,
                            });
                        }
                    }
                    let slot = &mut bounds[var][quantity_of[t][q]];
                    *slot = Some(match *slot {
                        None => Bounds {
                            value: value(q),
                            lb,
                            ub,
                        },
                        Some(b) => Bounds {
                            value: b.value,
                            lb: b.lb.max(lb),
                            ub: b.ub.min(ub),
                        },
                    });
                }
            }
            couplings[var].sort_by(|x, y| {
                (x.a, x.b)
                    .cmp(&(y.a, y.b))
                    .then(x.factor.total_cmp(&y.factor))
            });
            couplings[var].dedup();
        }
        System {
            views,
            links,
            quantity_of,
            bounds,
            couplings,
            group_of,
            suppressed,
            primary,
        }
    }

    /// The lowest or highest value of `target` in quantity `quantity`
    /// consistent with everything published. An infeasible or failed
    /// program counts as an exact disclosure (the interval collapses to
    /// the value), so it fails the audit rather than passing it.
    fn bound(
        &self,
        members: &[usize],
        relations: &[(usize, &Vec<usize>)],
        target: usize,
        quantity: usize,
        direction: OptimizationDirection,
    ) -> f64 {
        let group = self.group_of[quantity];
        let in_group: Vec<usize> = (0..self.group_of.len())
            .filter(|&q| self.group_of[q] == group)
            .collect();
        let value = self.bounds[target][quantity].map_or(0.0, |b| b.value);
        let mut problem = Problem::new(direction);
        let mut index: HashMap<(usize, usize), Variable> = HashMap::new();
        for &v in members {
            for &q in &in_group {
                if let Some(b) = self.bounds[v][q] {
                    // A hair of slack: sums added in another order differ
                    // in the last bits, and a program made infeasible by
                    // that would count as a disclosure.
                    let eps = 1e-7 * b.value.abs().max(1.0);
                    let objective = if v == target && q == quantity {
                        1.0
                    } else {
                        0.0
                    };
                    let var = problem.add_var(objective, ((b.lb - eps).max(0.0), b.ub + eps));
                    index.insert((v, q), var);
                }
            }
        }
        for &(t, relation) in relations {
            let view = &self.views[t];
            let total = *relation.last().expect("relations have a total");
            for (local, &q) in self.quantity_of[t].iter().enumerate() {
                if self.group_of[q] != group {
                    continue;
                }
                let mut terms: BTreeMap<Variable, f64> = BTreeMap::new();
                let mut rhs = 0.0;
                for &c in relation {
                    let coef = if c == total { -1.0 } else { 1.0 };
                    let var = self.links.var_of[t][c];
                    match index.get(&(var, q)) {
                        Some(&x) => *terms.entry(x).or_insert(0.0) += coef,
                        None => {
                            let cell = &view.cells[c];
                            let v = if local == 0 {
                                cell.rows as f64
                            } else {
                                cell.sums[local - 1]
                            };
                            rhs -= coef * v;
                        }
                    }
                }
                let terms: Vec<(Variable, f64)> =
                    terms.into_iter().filter(|(_, c)| *c != 0.0).collect();
                if !terms.is_empty() {
                    problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, rhs);
                }
            }
        }
        for &v in members {
            for c in &self.couplings[v] {
                if let (Some(&a), Some(&b)) = (index.get(&(v, c.a)), index.get(&(v, c.b))) {
                    problem.add_constraint(&[(a, 1.0), (b, -c.factor)][..], ComparisonOp::Le, 0.0);
                }
            }
        }
        match problem.solve().map(|o| o.into_solution()) {
            Ok(Ok(solution)) => solution.objective(),
            Err(LpError::Unbounded) if direction == OptimizationDirection::Maximize => {
                f64::INFINITY
            }
            _ => value,
        }
    }
}

pub(super) fn audit_system(
    views: &[View<'_>],
    links: &Links,
    rules: &TableRules,
    method: AuditMethod,
) -> Outcome {
    let system = System::new(views, links);
    let n_vars = links.instances.len();
    let mut report = AuditReport {
        shared_cells: links.instances.iter().filter(|i| i.len() > 1).count() as u64,
        ..AuditReport::default()
    };
    let mut intervals = Vec::new();
    let all_relations: Vec<Vec<Vec<usize>>> = views.iter().map(|v| v.shape.relations()).collect();
    // Components of suppressed variables, tied by relations of any table.
    let mut parent: Vec<usize> = (0..n_vars).collect();
    let mut touching: Vec<(usize, usize)> = Vec::new();
    for (t, relations) in all_relations.iter().enumerate() {
        for (r, relation) in relations.iter().enumerate() {
            let mut first = None;
            for &c in relation {
                let var = links.var_of[t][c];
                if !system.suppressed[var] {
                    continue;
                }
                match first {
                    None => first = Some(var),
                    Some(f) => union(&mut parent, f, var),
                }
            }
            if first.is_some() {
                touching.push((t, r));
            }
        }
    }
    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for var in (0..n_vars).filter(|&v| system.suppressed[v]) {
        components
            .entry(find(&mut parent, var))
            .or_default()
            .push(var);
    }
    let mut relations_of: BTreeMap<usize, Vec<(usize, &Vec<usize>)>> = BTreeMap::new();
    for &(t, r) in &touching {
        let relation = &all_relations[t][r];
        let var = relation
            .iter()
            .map(|&c| links.var_of[t][c])
            .find(|&v| system.suppressed[v])
            .expect("touching relations hold a suppressed cell");
        relations_of
            .entry(find(&mut parent, var))
            .or_default()
            .push((t, relation));
    }
    report.components = components.len() as u64;
    // Per table: the quantities, the rooms a hypercube's corners have,
    // and which cells a hypercube may use (suppressed, in no other table).
    let tables: Vec<(Vec<Vec<f64>>, Rooms, Vec<bool>)> = views
        .iter()
        .enumerate()
        .map(|(t, v)| {
            let usable = (0..v.cells.len())
                .map(|c| {
                    let var = links.var_of[t][c];
                    system.suppressed[var] && links.instances[var].len() == 1
                })
                .collect();
            (
                quantities(v.cells),
                rooms(v.cells, v.measures, v.ratio, v.public),
                usable,
            )
        })
        .collect();
    let mut check = |report: &mut AuditReport,
                     var: usize,
                     proofs: Option<&Vec<(f64, f64)>>,
                     interval: &mut dyn FnMut(usize, usize) -> (f64, f64)| {
        // Every quantity of the variable, once, in the first table that
        // has it.
        let mut seen = Vec::new();
        for &(t, c) in &links.instances[var] {
            let view = &views[t];
            for q in 0..=view.measures.len() {
                let global = system.quantity_of[t][q];
                if seen.contains(&global) {
                    continue;
                }
                seen.push(global);
                let cell = &view.cells[c];
                let value = if q == 0 {
                    cell.rows as f64
                } else {
                    cell.sums[q - 1]
                };
                let (below, above) = requirement(cell, q, view.public[q], rules);
                let tol = 1e-6 * value.abs().max(1.0);
                let proven = proofs.map(|p| p[q]).filter(|&(down, up)| {
                    down + tol >= below && up + tol >= above && (below > 0.0 || above > 0.0)
                });
                let (lower, upper) = match proven {
                    Some((down, up)) => {
                        report.proven_by_hypercube += 1;
                        (value - down, value + up)
                    }
                    None if below <= 0.0 && above <= 0.0 => (value, value),
                    None => interval(var, global),
                };
                intervals.push(Interval {
                    table: t,
                    cell: c,
                    quantity: q,
                    lower,
                    upper,
                    proven_by_hypercube: proven.is_some(),
                });
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
                        table: view.name.to_owned(),
                        table_index: t,
                        cell: c,
                        coords: cell.coords.clone(),
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
    };
    // A primary cell one linked table publishes is known exactly.
    for var in (0..n_vars).filter(|&v| system.primary[v] && !system.suppressed[v]) {
        report.cells_checked += 1;
        let mut exact = |_: usize, q: usize| {
            let v = system.bounds[var][q].map_or(0.0, |b| b.value);
            (v, v)
        };
        check(&mut report, var, None, &mut exact);
    }
    let empty = Vec::new();
    for (root, members) in &components {
        let primaries: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&v| system.primary[v])
            .collect();
        if primaries.is_empty() {
            continue;
        }
        report.cells_checked += primaries.len() as u64;
        let relations = relations_of.get(root).unwrap_or(&empty);
        for &p in &primaries {
            let proofs = match (method, links.instances[p].as_slice()) {
                (AuditMethod::HypercubesThenLinearPrograms, &[(t, c)]) => {
                    let (quantities, rooms, usable) = &tables[t];
                    Some(hypercube_bounds(
                        &views[t].shape,
                        c,
                        usable,
                        quantities,
                        rooms,
                    ))
                }
                _ => None,
            };
            let mut lps = 0u64;
            let mut interval = |var: usize, q: usize| {
                lps += 2;
                (
                    system.bound(members, relations, var, q, OptimizationDirection::Minimize),
                    system.bound(members, relations, var, q, OptimizationDirection::Maximize),
                )
            };
            check(&mut report, p, proofs.as_ref(), &mut interval);
            report.lps_solved += lps;
        }
    }
    Outcome { report, intervals }
}
