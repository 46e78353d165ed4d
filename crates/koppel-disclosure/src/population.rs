//! The population for k-map: reduced once to its distinct rows over the
//! variables that population-based attackers know, at their minimum
//! levels, with a count each. A key at any node is counted by lifting
//! those codes (levels nest from the minimum up), never by rereading the
//! population's rows.

use crate::profiles::FxMap;
use crate::{Attacker, Microdata, NULL, Reference, lift};

/// The variables of one projection of the population, and the keys wanted
/// of it with their counts.
pub(crate) type Projection = (Vec<usize>, FxMap<Vec<u32>, u64>);

#[derive(Debug)]
pub(crate) struct PopulationBase {
    /// Position of each variable in a base row, if the base holds it.
    position: Vec<Option<usize>>,
    width: usize,
    /// `codes[b * width + i]`: the minimum-level code of variable `i`.
    codes: Vec<u32>,
    counts: Vec<u64>,
    /// `lift[v][l][c]`: the level-l code of minimum-level code c.
    lift: Vec<Vec<Vec<u32>>>,
}

impl PopulationBase {
    /// The base of the population for the population-based attackers;
    /// `None` when there are none. `validate` has checked shapes.
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
        let mut position = vec![None; data.variables.len()];
        let mut lift_maps = vec![Vec::new(); data.variables.len()];
        for (i, &v) in vars.iter().enumerate() {
            position[v] = Some(i);
            let var = &data.variables[v];
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
        let rows = columns.first().map_or(0, |(c, _)| c.len());
        let width = vars.len();
        let mut index: FxMap<Vec<u32>, u32> = FxMap::default();
        let mut codes = Vec::new();
        let mut counts = Vec::new();
        let mut key = vec![0u32; width];
        for row in 0..rows {
            for (i, (c, min)) in columns.iter().enumerate() {
                key[i] = lift(min, c[row]);
            }
            match index.get(key.as_slice()) {
                Some(&b) => counts[b as usize] += 1,
                None => {
                    index.insert(key.clone(), counts.len() as u32);
                    codes.extend_from_slice(&key);
                    counts.push(1u64);
                }
            }
        }
        Some(PopulationBase {
            position,
            width,
            codes,
            counts,
            lift: lift_maps,
        })
    }

    /// Counts, in one pass over the population, the wanted keys of several
    /// projections at once: each group is the variables of one
    /// projection (their levels in `node`) and the keys wanted of it, whose
    /// counts are added to.
    pub fn count_wanted(&self, groups: &mut [Projection], node: &[usize]) {
        let at: Vec<Vec<(usize, &[u32])>> = groups
            .iter()
            .map(|(vars, _)| {
                vars.iter()
                    .map(|&v| {
                        (
                            self.position[v].expect("a population variable"),
                            self.lift[v][node[v]].as_slice(),
                        )
                    })
                    .collect()
            })
            .collect();
        let mut keys: Vec<Vec<u32>> = groups.iter().map(|(vars, _)| vec![0; vars.len()]).collect();
        for (b, &count) in self.counts.iter().enumerate() {
            let row = &self.codes[b * self.width..(b + 1) * self.width];
            for ((key, columns), (_, wanted)) in keys.iter_mut().zip(&at).zip(groups.iter_mut()) {
                for (k, (i, map)) in key.iter_mut().zip(columns) {
                    *k = lift(map, row[*i]);
                }
                if let Some(n) = wanted.get_mut(key.as_slice()) {
                    *n += count;
                }
            }
        }
    }
}
