//! The population for k-map, reduced to its distinct *persons*: each
//! population unit's rows over the variables that population-based
//! attackers know, sorted, with a count per distinct set of rows. A key at
//! any node is counted by lifting those codes (levels nest from the
//! minimum up), never by rereading the population's rows; and the search
//! keeps the base coarsened to its current node, which has far fewer
//! distinct persons than the minimum levels.
//!
//! A released person with m rows is matched by a population person that
//! holds m distinct rows equal to them on the attacker's known variables
//! (suppressed variables left out of the key: they match any value), each
//! population person counted once per key.

use crate::profiles::{FxMap, sort_rows};
use crate::{Attacker, Microdata, NULL, Reference, lift};

/// The variables of one projection of the population, and the keys wanted
/// of it with their counts: a key is a released person's rows restricted
/// to those variables, sorted, concatenated.
pub(crate) type Projection = (Vec<usize>, FxMap<Vec<u32>, u64>);

#[derive(Debug, Clone)]
pub(crate) struct PopulationBase {
    /// The variables a base row holds, and each variable's position there.
    vars: Vec<usize>,
    position: Vec<Option<usize>>,
    /// The level each variable's codes are at (the minimum, or the node
    /// the base was coarsened to).
    at: Vec<usize>,
    /// Rows of distinct person `u`:
    /// `codes[starts[u] * width..starts[u + 1] * width]`, sorted.
    codes: Vec<u32>,
    starts: Vec<u32>,
    /// Population persons with that set of rows.
    counts: Vec<u64>,
    /// `lift[v][l][c]`: the level-l code of code c (at level `at[v]`).
    lift: Vec<Vec<Vec<u32>>>,
}

impl PopulationBase {
    /// The base of the population for the population-based attackers
    /// among `attackers`; `None` when there are none. `validate` has
    /// checked shapes.
    pub fn new(data: &Microdata, attackers: &[Attacker]) -> Option<PopulationBase> {
        let population = data.population.as_ref()?;
        let mut vars: Vec<usize> = attackers
            .iter()
            .filter(|a| a.reference == Reference::Population)
            .flat_map(|a| a.knows.iter().copied())
            .collect();
        if vars.is_empty() {
            return None;
        }
        vars.sort_unstable();
        vars.dedup();
        let width = vars.len();
        let rows = population.rows();
        // Population rows grouped by person.
        let mut order: Vec<u32> = (0..rows as u32).collect();
        if let Some(units) = &population.units {
            order.sort_by_key(|&r| (units[r as usize], r));
        }
        let same_person = |a: u32, b: u32| match &population.units {
            Some(units) => units[a as usize] == units[b as usize],
            None => false,
        };
        let columns: Vec<(&[u32], &[u32])> = vars
            .iter()
            .map(|&v| {
                let var = &data.variables[v];
                (
                    population.codes[v].as_deref().expect("validated"),
                    var.levels[var.min_level].as_slice(),
                )
            })
            .collect();
        let mut reducer = Reducer::default();
        let mut key: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let mut j = i + 1;
            while j < order.len() && same_person(order[i], order[j]) {
                j += 1;
            }
            key.clear();
            for &row in &order[i..j] {
                key.extend(columns.iter().map(|(c, min)| lift(min, c[row as usize])));
            }
            reducer.add(&mut key, width, 1);
            i = j;
        }
        let mut at = vec![0; data.variables.len()];
        let mut position = vec![None; data.variables.len()];
        let mut lift_maps = vec![Vec::new(); data.variables.len()];
        for (i, &v) in vars.iter().enumerate() {
            position[v] = Some(i);
            let var = &data.variables[v];
            at[v] = var.min_level;
            let min = &var.levels[var.min_level];
            let size = min
                .iter()
                .filter(|&&c| c != NULL)
                .map(|&c| c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut maps = vec![vec![NULL; size]; var.levels.len()];
            for (l, map) in maps.iter_mut().enumerate().skip(var.min_level) {
                for (c0, &cm) in min.iter().enumerate() {
                    if cm != NULL {
                        map[cm as usize] = var.levels[l][c0];
                    }
                }
            }
            lift_maps[v] = maps;
        }
        let (codes, starts, counts) = reducer.finish();
        Some(PopulationBase {
            vars,
            position,
            at,
            codes,
            starts,
            counts,
            lift: lift_maps,
        })
    }

    fn width(&self) -> usize {
        self.vars.len()
    }

    /// Whether the base holds variable `v`.
    pub fn holds(&self, v: usize) -> bool {
        self.position[v].is_some()
    }

    /// The same population with every variable lifted to its level in
    /// `node` (at or above the base's own): persons that become equal are
    /// counted together, so later passes read fewer of them.
    pub fn coarsen(&self, node: &[usize]) -> PopulationBase {
        let width = self.width();
        let maps: Vec<&[u32]> = self
            .vars
            .iter()
            .map(|&v| self.lift[v][node[v]].as_slice())
            .collect();
        let mut reducer = Reducer::default();
        let mut key: Vec<u32> = Vec::new();
        for (u, &count) in self.counts.iter().enumerate() {
            key.clear();
            let rows = &self.codes[self.starts[u] as usize * width..self.starts[u + 1] as usize * width];
            for row in rows.chunks_exact(width.max(1)) {
                key.extend(row.iter().zip(&maps).map(|(&c, map)| lift(map, c)));
            }
            reducer.add(&mut key, width, count);
        }
        let (codes, starts, counts) = reducer.finish();
        let mut at = self.at.clone();
        let mut lift_maps = vec![Vec::new(); self.lift.len()];
        for &v in &self.vars {
            at[v] = node[v];
            let from = &self.lift[v][node[v]];
            let size = from
                .iter()
                .filter(|&&c| c != NULL)
                .map(|&c| c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut levels = vec![Vec::new(); self.lift[v].len()];
            for (l, map) in levels.iter_mut().enumerate().skip(node[v]) {
                *map = vec![NULL; size];
                for (c, &up) in from.iter().enumerate() {
                    if up != NULL {
                        map[up as usize] = self.lift[v][l][c];
                    }
                }
            }
            lift_maps[v] = levels;
        }
        PopulationBase {
            vars: self.vars.clone(),
            position: self.position.clone(),
            at,
            codes,
            starts,
            counts,
            lift: lift_maps,
        }
    }

    /// Counts, in one pass over the population, the wanted keys of several
    /// projections at once: each group is the variables of one
    /// projection (their levels in `node`, at or above the base's) and the
    /// keys wanted of it, whose counts are added to.
    pub fn count_wanted(&self, groups: &mut [Projection], node: &[usize]) {
        let width = self.width();
        struct Group<'m> {
            columns: Vec<(usize, &'m [u32])>,
            /// Row counts of the keys wanted, ascending.
            sizes: Vec<usize>,
        }
        let plan: Vec<Group<'_>> = groups
            .iter()
            .map(|(vars, wanted)| {
                let mut sizes: Vec<usize> = wanted
                    .keys()
                    .map(|k| if vars.is_empty() { 1 } else { k.len() / vars.len() })
                    .collect();
                sizes.sort_unstable();
                sizes.dedup();
                Group {
                    columns: vars
                        .iter()
                        .map(|&v| {
                            debug_assert!(node[v] >= self.at[v], "a level below the base's");
                            (
                                self.position[v].expect("a population variable"),
                                self.lift[v][node[v]].as_slice(),
                            )
                        })
                        .collect(),
                    sizes,
                }
            })
            .collect();
        let mut projected: Vec<u32> = Vec::new();
        let mut key: Vec<u32> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        let mut pick: Vec<usize> = Vec::new();
        for (u, &count) in self.counts.iter().enumerate() {
            let rows = &self.codes[self.starts[u] as usize * width..self.starts[u + 1] as usize * width];
            let n = rows.len().checked_div(width).unwrap_or(1);
            for (group, (_, wanted)) in plan.iter().zip(groups.iter_mut()) {
                let w = group.columns.len();
                projected.clear();
                for row in 0..n {
                    projected.extend(
                        group
                            .columns
                            .iter()
                            .map(|(i, map)| lift(map, rows[row * width + i])),
                    );
                }
                for &m in &group.sizes {
                    if m > n {
                        break;
                    }
                    // Every m distinct rows of this person, as a sorted key;
                    // a key this person gives twice counts once.
                    seen.clear();
                    pick.clear();
                    pick.extend(0..m);
                    loop {
                        key.clear();
                        for &r in &pick {
                            key.extend_from_slice(&projected[r * w..(r + 1) * w]);
                        }
                        if m > 1 && w > 0 {
                            sort_rows(&mut key, w);
                        }
                        let repeated = n > m && seen.chunks_exact(key.len().max(1)).any(|s| s == key.as_slice());
                        if !repeated {
                            if let Some(c) = wanted.get_mut(key.as_slice()) {
                                *c += count;
                            }
                            if n > m {
                                seen.extend_from_slice(&key);
                            }
                        }
                        if !next_combination(&mut pick, n) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// The next m-subset of 0..n in lexicographic order; false after the last.
fn next_combination(pick: &mut [usize], n: usize) -> bool {
    let m = pick.len();
    for i in (0..m).rev() {
        if pick[i] < n - m + i {
            pick[i] += 1;
            for j in i + 1..m {
                pick[j] = pick[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// Distinct persons (sorted sets of rows) with a count each.
#[derive(Default)]
struct Reducer {
    index: FxMap<Vec<u32>, u32>,
    codes: Vec<u32>,
    /// First row of each person; the end of the last is pushed by `finish`.
    starts: Vec<u32>,
    rows: u32,
    counts: Vec<u64>,
}

impl Reducer {
    /// Adds `count` persons with these rows (sorted here, in place).
    fn add(&mut self, rows: &mut [u32], width: usize, count: u64) {
        if width > 0 && rows.len() > width {
            sort_rows(rows, width);
        }
        match self.index.get(&*rows) {
            Some(&u) => self.counts[u as usize] += count,
            None => {
                self.index.insert(rows.to_vec(), self.counts.len() as u32);
                self.starts.push(self.rows);
                self.rows += (rows.len() / width.max(1)) as u32;
                self.codes.extend_from_slice(rows);
                self.counts.push(count);
            }
        }
    }

    fn finish(mut self) -> (Vec<u32>, Vec<u32>, Vec<u64>) {
        self.starts.push(self.rows);
        (self.codes, self.starts, self.counts)
    }
}
