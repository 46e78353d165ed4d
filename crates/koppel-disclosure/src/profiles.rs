//! Units reduced to *profiles*: the distinct sets of rows (quasi-identifier
//! codes at one node's levels, and sensitive codes) that persons have.
//! Local suppression treats equal profiles alike, so it runs on profiles
//! with a count each instead of on persons, and exactly: the key of a
//! profile is its codes, compared in full, never a hash of them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::{Microdata, NULL, lift};

/// An empty row slot of a unit with fewer rows than the most.
pub(crate) const PAD: u32 = NULL - 1;

/// FxHash (rustc's): keys here are runs of small integers.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Which rows belong to which unit.
pub(crate) struct Units {
    /// Rows ordered by unit.
    order: Vec<u32>,
    /// Rows of unit u: `order[starts[u]..starts[u + 1]]`.
    starts: Vec<u32>,
    /// Dense unit of every row.
    pub of_row: Vec<u32>,
    /// The most rows any unit has.
    pub max_rows: usize,
}

impl Units {
    pub fn new(units: &[u32]) -> Units {
        let mut order: Vec<u32> = (0..units.len() as u32).collect();
        order.sort_by_key(|&r| (units[r as usize], r));
        let mut starts = Vec::new();
        let mut of_row = vec![0u32; units.len()];
        let mut max_rows = 0;
        let mut previous = None;
        for (i, &r) in order.iter().enumerate() {
            if previous != Some(units[r as usize]) {
                if let Some(&s) = starts.last() {
                    max_rows = max_rows.max(i - s as usize);
                }
                starts.push(i as u32);
                previous = Some(units[r as usize]);
            }
            of_row[r as usize] = (starts.len() - 1) as u32;
        }
        if let Some(&s) = starts.last() {
            max_rows = max_rows.max(order.len() - s as usize);
        }
        starts.push(order.len() as u32);
        Units {
            order,
            starts,
            of_row,
            max_rows,
        }
    }

    pub fn count(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn rows(&self, unit: usize) -> &[u32] {
        &self.order[self.starts[unit] as usize..self.starts[unit + 1] as usize]
    }
}

/// Distinct unit profiles at one node.
pub(crate) struct Profiles {
    /// Row slots per profile (the most rows of any unit).
    pub rows_per: usize,
    /// Codes per row slot: the quasi-identifiers, then sensitive codes.
    pub width: usize,
    /// `codes[(p * rows_per + slot) * width + column]`; absent slots PAD.
    pub codes: Vec<u32>,
    /// Units per profile.
    pub units: Vec<u64>,
    /// Profile of every unit.
    pub of_unit: Vec<u32>,
}

impl Profiles {
    /// Profiles of every unit with quasi-identifier `quasi[c]` at level
    /// `node[quasi[c]]`. A unit's rows are sorted, so that a profile is a
    /// set of rows and not an order of them.
    pub fn build(data: &Microdata, quasi: &[usize], units: &Units, node: &[usize]) -> Profiles {
        let width = quasi.len() + data.sensitive.len();
        let rows_per = units.max_rows.max(1);
        let stride = rows_per * width;
        // (level-0 codes, map to the node's level); sensitive codes as they are.
        let columns: Vec<(&[u32], Option<&[u32]>)> = quasi
            .iter()
            .map(|&v| {
                let var = &data.variables[v];
                (var.codes.as_slice(), Some(var.levels[node[v]].as_slice()))
            })
            .chain(data.sensitive.iter().map(|s| (s.codes.as_slice(), None)))
            .collect();
        let mut arena = vec![PAD; units.count() * stride];
        for (u, slot) in arena
            .chunks_exact_mut(stride.max(1))
            .enumerate()
            .take(units.count())
        {
            let rows = units.rows(u);
            for (r, &row) in rows.iter().enumerate() {
                for (c, (codes, map)) in columns.iter().enumerate() {
                    let code = codes[row as usize];
                    slot[r * width + c] = match map {
                        Some(map) => lift(map, code),
                        None => code,
                    };
                }
            }
            if rows.len() > 1 && width > 0 {
                sort_rows(&mut slot[..rows.len() * width], width);
            }
        }
        let mut index: FxMap<&[u32], u32> = FxMap::default();
        let mut codes = Vec::new();
        let mut counts = Vec::new();
        let mut of_unit = Vec::with_capacity(units.count());
        for u in 0..units.count() {
            let key = &arena[u * stride..(u + 1) * stride];
            let next = counts.len() as u32;
            let p = *index.entry(key).or_insert(next);
            if p == next {
                codes.extend_from_slice(key);
                counts.push(0);
            }
            counts[p as usize] += 1;
            of_unit.push(p);
        }
        Profiles {
            rows_per,
            width,
            codes,
            units: counts,
            of_unit,
        }
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Code of `column` in row slot `slot` of profile `p`.
    pub fn code(&self, p: usize, slot: usize, column: usize) -> u32 {
        self.codes[(p * self.rows_per + slot) * self.width + column]
    }

    /// Whether row slot `slot` of profile `p` holds a row.
    pub fn has_row(&self, p: usize, slot: usize) -> bool {
        // A real row never has PAD in its first column; with no columns
        // at all, every unit is one empty profile.
        slot < self.rows_per && (self.width == 0 || self.code(p, slot, 0) != PAD)
    }
}

/// Sorts consecutive rows of `width` codes lexicographically, in place.
pub(crate) fn sort_rows(rows: &mut [u32], width: usize) {
    // Two rows (a person of two years), the common case: one comparison,
    // no copies.
    if rows.len() == 2 * width {
        let (a, b) = rows.split_at_mut(width);
        if *b < *a {
            a.swap_with_slice(b);
        }
        return;
    }
    let mut chunks: Vec<Vec<u32>> = rows.chunks_exact(width).map(<[u32]>::to_vec).collect();
    chunks.sort_unstable();
    for (i, c) in chunks.iter().enumerate() {
        rows[i * width..(i + 1) * width].copy_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Variable;

    #[test]
    fn rows_sort_as_slices_do() {
        for rows in [
            vec![3, 1, 2, 9],
            vec![2, 9, 3, 1],
            vec![2, 9, 2, 9],
            vec![5, 0, 1, 7, 1, 2],
            vec![1, 7, 5, 0, 1, 2],
        ] {
            let mut naive: Vec<Vec<u32>> = rows.chunks(2).map(<[u32]>::to_vec).collect();
            naive.sort();
            let mut sorted = rows.clone();
            sort_rows(&mut sorted, 2);
            assert_eq!(sorted, naive.concat(), "{rows:?}");
        }
    }

    fn variable(codes: Vec<u32>) -> Variable {
        Variable::from_rows("v", vec![codes]).unwrap()
    }

    #[test]
    fn units_group_rows_and_profiles_ignore_row_order() {
        // Units 7 and 9 have the same two rows in another order; unit 8
        // has one row.
        let data = Microdata {
            variables: vec![variable(vec![1, 2, 5, 2, 1])],
            units: vec![7, 7, 8, 9, 9],
            sensitive: vec![],
            population: None,
        };
        let units = Units::new(&data.units);
        assert_eq!(units.count(), 3);
        assert_eq!(units.max_rows, 2);
        assert_eq!(units.rows(2), [3, 4]);
        let p = Profiles::build(&data, &[0], &units, &[0]);
        assert_eq!(p.len(), 2);
        assert_eq!(p.of_unit, [0, 1, 0]);
        assert_eq!(p.units, [2, 1]);
        assert!(p.has_row(1, 0) && !p.has_row(1, 1));
    }
}
