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
use crate::{Attacker, Microdata, NULL, Reference, code_count, lift};

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
    /// Per base column: whether local suppression may null it (a column
    /// it may not is never a wildcard).
    suppressible: Vec<bool>,
    /// The base as packed rows, for counting a key by lookups; `None`
    /// when the rows do not pack or a person's rows are not told apart by
    /// the columns never suppressed.
    index: Option<PackedIndex>,
}

/// The population's rows packed into one integer each (a bit field per
/// column), counted per row and per pair of a person's rows. A key with
/// suppressed columns is counted by summing the lookups of every value
/// those columns can take — exact when a person's rows differ in a column
/// that is never suppressed (the year), so no person matches one key
/// twice.
#[derive(Debug, Clone)]
struct PackedIndex {
    /// Bit offset and width of each base column.
    shift: Vec<u32>,
    bits: Vec<u32>,
    /// The codes each base column holds in the population (null as the
    /// all-ones field), for wildcards.
    domain: Vec<Vec<u128>>,
    /// Persons holding a row.
    rows: FxMap<u128, u64>,
    /// Persons holding a pair of distinct rows (smaller first).
    pairs: FxMap<(u128, u128), u64>,
    /// `rows` and `pairs` again as plain lists, for the passes: reading
    /// every entry of a hash map walks its control bytes and empty
    /// buckets, a list is read straight through.
    row_list: Vec<(u128, u64)>,
    pair_list: Vec<(u128, u128, u64)>,
}

/// The values a key's column stands for in the packed index.
#[derive(Clone, Copy)]
enum Values<'a> {
    One(u128),
    /// Codes to pack (those under a lifted code).
    Codes(&'a [u32]),
    /// Packed fields (every code of a suppressed column).
    Packed(&'a [u128]),
}

/// A set of packed rows as 2^16 bits: no false negatives, few false
/// positives for the few dozen rows a pass looks for.
struct RowFilter {
    bits: Vec<u64>,
}

impl RowFilter {
    const BITS: u32 = 16;

    fn new() -> RowFilter {
        RowFilter {
            bits: vec![0; (1 << Self::BITS) / 64],
        }
    }

    fn slot(row: u128) -> usize {
        let folded = (row as u64) ^ ((row >> 64) as u64);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::BITS)) as usize
    }

    fn insert(&mut self, row: u128) {
        let s = Self::slot(row);
        self.bits[s / 64] |= 1 << (s % 64);
    }

    fn may_hold(&self, row: u128) -> bool {
        let s = Self::slot(row);
        self.bits[s / 64] & (1 << (s % 64)) != 0
    }
}

/// The most lookups a key may take before it is counted by a pass instead.
const MOST_LOOKUPS: usize = 512;

/// Per base column, the codes at the base's level under each code at the
/// node's (for columns the node has coarsened), null last.
pub(crate) struct Lifting {
    under: Vec<Option<Vec<Vec<u32>>>>,
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
            let size = code_count(min);
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
        let suppressible = vars
            .iter()
            .map(|&v| data.variables[v].suppressible)
            .collect();
        Some(PopulationBase::indexed(PopulationBase {
            vars,
            position,
            at,
            codes,
            starts,
            counts,
            lift: lift_maps,
            suppressible,
            index: None,
        }))
    }

    /// The base with its packed index built, where it can be.
    fn indexed(mut self) -> PopulationBase {
        self.index = PackedIndex::build(&self);
        self
    }

    /// A copy without the packed index, to be coarsened later (which
    /// builds its own): the index is as large as the rows again.
    pub fn unindexed(&self) -> PopulationBase {
        PopulationBase {
            vars: self.vars.clone(),
            position: self.position.clone(),
            at: self.at.clone(),
            codes: self.codes.clone(),
            starts: self.starts.clone(),
            counts: self.counts.clone(),
            lift: self.lift.clone(),
            suppressible: self.suppressible.clone(),
            index: None,
        }
    }

    /// The rows of distinct person `u`, `width` codes each.
    fn rows_of(&self, u: usize) -> &[u32] {
        let width = self.width();
        &self.codes[self.starts[u] as usize * width..self.starts[u + 1] as usize * width]
    }

    /// What counting at `node` needs to expand a node's code into the
    /// base's codes under it.
    pub fn lifting(&self, node: &[usize]) -> Lifting {
        Lifting {
            under: self
                .vars
                .iter()
                .map(|&v| {
                    (node[v] > self.at[v]).then(|| {
                        let map = &self.lift[v][node[v]];
                        let size = code_count(map);
                        // Slot `size` holds the codes under null.
                        let mut under = vec![Vec::new(); size + 1];
                        under[size].push(NULL);
                        for (c, &up) in map.iter().enumerate() {
                            let slot = if up == NULL { size } else { up as usize };
                            under[slot].push(c as u32);
                        }
                        under
                    })
                })
                .collect(),
        }
    }

    /// The population count of one key (a person's rows on `vars`, at
    /// `node`, sorted) by lookups in the packed index; `None` when the
    /// index cannot answer it exactly or cheaply.
    pub fn count_indexed(
        &self,
        vars: &[usize],
        key: &[u32],
        node: &[usize],
        lifting: &Lifting,
    ) -> Option<u64> {
        let index = self.index.as_ref()?;
        let w = vars.len();
        if w == 0 {
            return None;
        }
        let m = key.len() / w;
        if !(1..=2).contains(&m) {
            return None;
        }
        // The packed rows a key row stands for: one value per column,
        // except where the node lifts a code (the codes under it) or the
        // column is suppressed (every code the population holds). Built
        // in place, a column at a time; most columns add one value.
        let mut lists: [Vec<u128>; 2] = [Vec::new(), Vec::new()];
        for (r, list) in lists.iter_mut().enumerate().take(m) {
            let row = &key[r * w..(r + 1) * w];
            list.push(0);
            let mut j = 0;
            for (i, &v) in self.vars.iter().enumerate() {
                let shift = index.shift[i];
                let field = |code: u32| pack_field(code, index.bits[i]) << shift;
                let values = if j < w && vars[j] == v {
                    let y = row[j];
                    j += 1;
                    debug_assert!(node[v] >= self.at[v]);
                    match &lifting.under[i] {
                        None => Values::One(field(y)),
                        Some(under) => {
                            let slot = if y == NULL {
                                under.len() - 1
                            } else {
                                y as usize
                            };
                            match under.get(slot)?.as_slice() {
                                [one] => Values::One(field(*one)),
                                codes => Values::Codes(codes),
                            }
                        }
                    }
                } else {
                    // Suppressed: any value the population holds.
                    if !self.suppressible[i] {
                        return None;
                    }
                    Values::Packed(&index.domain[i])
                };
                let many = match values {
                    Values::One(x) => {
                        list.iter_mut().for_each(|a| *a |= x);
                        continue;
                    }
                    Values::Codes(c) => c.len(),
                    Values::Packed(p) => p.len(),
                };
                // A column never suppressed must stay one value, or a
                // person could match through two of its rows.
                if !self.suppressible[i] {
                    return None;
                }
                if many == 0 {
                    return Some(0);
                }
                if list.len() * many > MOST_LOOKUPS {
                    return None;
                }
                let before = std::mem::take(list);
                list.reserve(before.len() * many);
                for a in before {
                    match values {
                        Values::Codes(c) => list.extend(c.iter().map(|&y| a | field(y))),
                        Values::Packed(p) => list.extend(p.iter().map(|&b| a | b)),
                        Values::One(_) => unreachable!("handled above"),
                    }
                }
            }
            if j != w {
                return None;
            }
        }
        let lists = &lists[..m];
        match lists {
            [one] => Some(one.iter().filter_map(|r| index.rows.get(r)).sum()),
            [a, b] => {
                if a.len() * b.len() > MOST_LOOKUPS {
                    return None;
                }
                Some(
                    a.iter()
                        .flat_map(|&x| b.iter().map(move |&y| (x.min(y), x.max(y))))
                        .filter_map(|pair| index.pairs.get(&pair))
                        .sum(),
                )
            }
            _ => None,
        }
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
            let rows =
                &self.codes[self.starts[u] as usize * width..self.starts[u + 1] as usize * width];
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
            let size = code_count(from);
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
        PopulationBase::indexed(PopulationBase {
            vars: self.vars.clone(),
            position: self.position.clone(),
            at,
            codes,
            starts,
            counts,
            lift: lift_maps,
            suppressible: self.suppressible.clone(),
            index: None,
        })
    }

    /// [`PopulationBase::count_wanted`] over the packed index: one pass over
    /// its distinct rows (keys of one row) and pairs (keys of two), each
    /// lifted to `node` and cleared where a column is not in the key, as
    /// integers. False, counting nothing, where the index cannot: then
    /// `count_wanted` must.
    pub fn count_packed(&self, groups: &mut [Projection], node: &[usize]) -> bool {
        let Some(index) = self.index.as_ref() else {
            return false;
        };
        let width = self.width();
        // Lifted columns: base field → node field, in the same layout.
        let mut lifted: Vec<(usize, Vec<u128>)> = Vec::new();
        for (i, &v) in self.vars.iter().enumerate() {
            if node[v] == self.at[v] {
                continue;
            }
            if !self.suppressible[i] {
                // Two rows of a person could become one key.
                return false;
            }
            let map = &self.lift[v][node[v]];
            let null = (1u128 << index.bits[i]) - 1;
            if map.iter().any(|&c| c != NULL && u128::from(c) >= null) {
                return false;
            }
            let mut table: Vec<u128> = map.iter().map(|&c| pack_field(c, index.bits[i])).collect();
            table.resize(null as usize + 1, null);
            table[null as usize] = null;
            lifted.push((i, table));
        }
        let field_mask = |i: usize| ((1u128 << index.bits[i]) - 1) << index.shift[i];
        let lift_row = |row: u128| -> u128 {
            let mut out = row;
            for (i, table) in &lifted {
                let field = (row >> index.shift[*i]) & ((1u128 << index.bits[*i]) - 1);
                out = (out & !field_mask(*i)) | (table[field as usize] << index.shift[*i]);
            }
            out
        };
        struct Packed {
            keep: u128,
            rows: FxMap<u128, u64>,
            pairs: FxMap<(u128, u128), u64>,
            /// The wanted rows (and pairs' rows) in a bit filter: most
            /// population rows miss every key, and a bit tells so for
            /// less than a hash lookup.
            filter: RowFilter,
        }
        let mut packed: Vec<Packed> = Vec::with_capacity(groups.len());
        for (vars, wanted) in groups.iter() {
            let w = vars.len();
            if w == 0 {
                return false;
            }
            let columns: Option<Vec<usize>> = vars.iter().map(|&v| self.position[v]).collect();
            let Some(columns) = columns else {
                return false;
            };
            let keep = columns.iter().fold(0u128, |k, &i| k | field_mask(i));
            let mut group = Packed {
                keep,
                rows: FxMap::default(),
                pairs: FxMap::default(),
                filter: RowFilter::new(),
            };
            for key in wanted.keys() {
                let pack = |r: usize| -> Option<u128> {
                    let mut out = 0u128;
                    for (j, &i) in columns.iter().enumerate() {
                        let code = key[r * w + j];
                        if code != NULL && u128::from(code) >= (1u128 << index.bits[i]) - 1 {
                            return None;
                        }
                        out |= pack_field(code, index.bits[i]) << index.shift[i];
                    }
                    Some(out)
                };
                match key.len() / w {
                    1 => match pack(0) {
                        Some(r) => {
                            group.filter.insert(r);
                            group.rows.insert(r, 0);
                        }
                        None => return false,
                    },
                    2 => match (pack(0), pack(1)) {
                        (Some(a), Some(b)) => {
                            group.filter.insert(a);
                            group.filter.insert(b);
                            group.pairs.insert((a.min(b), a.max(b)), 0);
                        }
                        _ => return false,
                    },
                    _ => return false,
                }
            }
            packed.push(group);
        }
        let _ = width;
        if packed.iter().any(|g| !g.rows.is_empty()) {
            for &(row, count) in &index.row_list {
                let row = lift_row(row);
                for g in packed.iter_mut().filter(|g| !g.rows.is_empty()) {
                    let x = row & g.keep;
                    if g.filter.may_hold(x)
                        && let Some(n) = g.rows.get_mut(&x)
                    {
                        *n += count;
                    }
                }
            }
        }
        if packed.iter().any(|g| !g.pairs.is_empty()) {
            for &(a, b, count) in &index.pair_list {
                let (a, b) = (lift_row(a), lift_row(b));
                for g in packed.iter_mut().filter(|g| !g.pairs.is_empty()) {
                    let (x, y) = (a & g.keep, b & g.keep);
                    if g.filter.may_hold(x)
                        && g.filter.may_hold(y)
                        && let Some(n) = g.pairs.get_mut(&(x.min(y), x.max(y)))
                    {
                        *n += count;
                    }
                }
            }
        }
        // Back to the callers' keys.
        for ((vars, wanted), g) in groups.iter_mut().zip(&packed) {
            let w = vars.len();
            let columns: Vec<usize> = vars
                .iter()
                .map(|&v| self.position[v].expect("checked"))
                .collect();
            for (key, n) in wanted.iter_mut() {
                let pack = |r: usize| -> u128 {
                    columns.iter().enumerate().fold(0u128, |out, (j, &i)| {
                        out | pack_field(key[r * w + j], index.bits[i]) << index.shift[i]
                    })
                };
                *n += match key.len() / w {
                    1 => g.rows[&pack(0)],
                    _ => {
                        let (a, b) = (pack(0), pack(1));
                        g.pairs[&(a.min(b), a.max(b))]
                    }
                };
            }
        }
        true
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
                    .map(|k| {
                        if vars.is_empty() {
                            1
                        } else {
                            k.len() / vars.len()
                        }
                    })
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
            let rows =
                &self.codes[self.starts[u] as usize * width..self.starts[u + 1] as usize * width];
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
                        let repeated = n > m
                            && seen
                                .chunks_exact(key.len().max(1))
                                .any(|s| s == key.as_slice());
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

impl PackedIndex {
    fn build(base: &PopulationBase) -> Option<PackedIndex> {
        let width = base.width();
        if width == 0 {
            return None;
        }
        // Field widths: codes 0..top and null (the all-ones field).
        let mut top = vec![0u32; width];
        for row in base.codes.chunks_exact(width) {
            for (t, &c) in top.iter_mut().zip(row) {
                if c != NULL {
                    *t = (*t).max(c + 1);
                }
            }
        }
        let bits: Vec<u32> = top
            .iter()
            .map(|&t| (64 - u64::from(t).leading_zeros()).max(1))
            .collect();
        if bits.iter().sum::<u32>() > 128 {
            return None;
        }
        let mut shift = Vec::with_capacity(width);
        let mut at = 0;
        for &b in &bits {
            shift.push(at);
            at += b;
        }
        let fixed: Vec<usize> = (0..width).filter(|&i| !base.suppressible[i]).collect();
        let pack = |row: &[u32]| -> u128 {
            row.iter()
                .enumerate()
                .map(|(i, &c)| pack_field(c, bits[i]) << shift[i])
                .fold(0, |a, b| a | b)
        };
        // Codes held per column (slot `top`: null).
        let mut held: Vec<Vec<bool>> = top.iter().map(|&t| vec![false; t as usize + 1]).collect();
        let mut rows: FxMap<u128, u64> = FxMap::default();
        let mut pairs: FxMap<(u128, u128), u64> = FxMap::default();
        let mut packed: Vec<u128> = Vec::new();
        for (u, &count) in base.counts.iter().enumerate() {
            let person = base.rows_of(u);
            let n = person.len() / width;
            // A person's rows must differ in a column never suppressed,
            // or one key could match two of them.
            for a in 0..n {
                for b in a + 1..n {
                    let (ra, rb) = (
                        &person[a * width..(a + 1) * width],
                        &person[b * width..(b + 1) * width],
                    );
                    if fixed.iter().all(|&i| ra[i] == rb[i]) {
                        return None;
                    }
                }
            }
            packed.clear();
            packed.extend(person.chunks_exact(width).map(pack));
            for row in person.chunks_exact(width) {
                for (i, seen) in held.iter_mut().enumerate() {
                    let slot = if row[i] == NULL {
                        top[i] as usize
                    } else {
                        row[i] as usize
                    };
                    seen[slot] = true;
                }
            }
            for (a, &x) in packed.iter().enumerate() {
                *rows.entry(x).or_default() += count;
                for &y in &packed[a + 1..] {
                    *pairs.entry((x.min(y), x.max(y))).or_default() += count;
                }
            }
        }
        let domain = held
            .iter()
            .enumerate()
            .map(|(i, seen)| {
                seen.iter()
                    .enumerate()
                    .filter(|(_, h)| **h)
                    .map(|(c, _)| {
                        let code = if c == top[i] as usize { NULL } else { c as u32 };
                        pack_field(code, bits[i]) << shift[i]
                    })
                    .collect()
            })
            .collect();
        // In key order, so that the lists do not depend on the maps'
        // iteration order (the passes' sums do not either way).
        let mut row_list: Vec<(u128, u64)> = rows.iter().map(|(&r, &n)| (r, n)).collect();
        row_list.sort_unstable();
        let mut pair_list: Vec<(u128, u128, u64)> =
            pairs.iter().map(|(&(a, b), &n)| (a, b, n)).collect();
        pair_list.sort_unstable();
        Some(PackedIndex {
            shift,
            bits,
            domain,
            rows,
            pairs,
            row_list,
            pair_list,
        })
    }
}

/// A code as its bit field (null: all ones).
fn pack_field(code: u32, bits: u32) -> u128 {
    if code == NULL {
        (1u128 << bits) - 1
    } else {
        u128::from(code)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Population, Variable};

    /// A small generator, so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % u64::from(n.max(1))) as u32
        }
    }

    /// A population of panel persons (one row per year) over a year and
    /// three variables with nested levels (codes, pairs, withheld).
    fn panel(rng: &mut Rng) -> (Microdata, Attacker) {
        let persons = 60 + rng.below(60);
        let (mut year, mut units) = (Vec::new(), Vec::new());
        let mut values: Vec<Vec<u32>> = vec![Vec::new(); 3];
        for u in 0..persons {
            for y in 0..1 + rng.below(3) {
                year.push(y);
                units.push(u);
                for (i, v) in values.iter_mut().enumerate() {
                    v.push(if rng.below(10) == 0 {
                        NULL
                    } else {
                        rng.below(3 + i as u32 * 2)
                    });
                }
            }
        }
        let nested = |name: &str, codes: Vec<u32>| {
            let pairs = codes
                .iter()
                .map(|&c| if c == NULL { NULL } else { c / 2 })
                .collect();
            let top = vec![NULL; codes.len()];
            Variable::from_rows(name, vec![codes, pairs, top]).unwrap()
        };
        let mut variables = vec![Variable {
            suppressible: false,
            ..Variable::from_rows("year", vec![year.clone()]).unwrap()
        }];
        for (i, v) in values.iter().enumerate() {
            variables.push(nested(&format!("v{i}"), v.clone()));
        }
        let data = Microdata {
            population: Some(Population {
                codes: variables.iter().map(|v| Some(v.codes.clone())).collect(),
                units: Some(units.clone()),
            }),
            variables,
            units,
            sensitive: vec![],
        };
        let attacker = Attacker {
            name: "a".into(),
            knows: vec![0, 1, 2, 3],
            reference: Reference::Population,
        };
        (data, attacker)
    }

    /// Counting by pass (`count_wanted`, the reference), by packed pass
    /// and by lookups gives the same count for every key, at the base's
    /// node and at nodes above it, with columns left out (suppressed).
    #[test]
    fn packed_and_indexed_counts_equal_the_pass() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (data, attacker) = panel(&mut rng);
            let base = PopulationBase::new(&data, std::slice::from_ref(&attacker)).unwrap();
            assert!(base.index.is_some(), "a panel packs");
            let start: Vec<usize> = (0..4)
                .map(|v| if v == 0 { 0 } else { rng.below(2) as usize })
                .collect();
            let base = base.coarsen(&start);
            let mut node = start.clone();
            for level in node.iter_mut().skip(1) {
                *level += rng.below(3 - *level as u32) as usize;
            }
            let lifting = base.lifting(&node);
            // Keys: persons' rows (one or two of them) at the node, with a
            // random set of variables left out.
            let population = data.population.as_ref().unwrap();
            let units = population.units.as_ref().unwrap();
            let mut groups: Vec<Projection> = Vec::new();
            for _ in 0..8 {
                let vars: Vec<usize> = std::iter::once(0)
                    .chain((1..4).filter(|_| rng.below(2) == 0))
                    .collect();
                let mut wanted: FxMap<Vec<u32>, u64> = FxMap::default();
                for _ in 0..20 {
                    let r = rng.below(units.len() as u32) as usize;
                    let rows: Vec<usize> = (0..units.len())
                        .filter(|&q| units[q] == units[r])
                        .take(1 + rng.below(2) as usize)
                        .collect();
                    let mut key: Vec<u32> = Vec::new();
                    for &q in &rows {
                        key.extend(vars.iter().map(|&v| data.variables[v].code(node[v], q)));
                    }
                    sort_rows(&mut key, vars.len());
                    wanted.insert(key, 0);
                }
                groups.push((vars, wanted));
            }
            let mut reference = groups.clone();
            base.count_wanted(&mut reference, &node);
            let mut packed = groups.clone();
            assert!(base.count_packed(&mut packed, &node));
            for ((vars, want), (_, got)) in reference.iter().zip(&packed) {
                for (key, n) in want {
                    assert_eq!(
                        got[key], *n,
                        "seed {seed}: packed count of {key:?} on {vars:?}"
                    );
                    if let Some(m) = base.count_indexed(vars, key, &node, &lifting) {
                        assert_eq!(m, *n, "seed {seed}: indexed count of {key:?} on {vars:?}");
                    }
                    assert!(*n >= 1, "seed {seed}: a person's own key counts it");
                }
            }
        }
    }
}
