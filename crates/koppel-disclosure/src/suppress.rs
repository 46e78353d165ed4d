//! Classes per attacker, and local suppression over profiles until no
//! attacker finds a unit at risk.

use crate::NULL;
use crate::population::{PopulationBase, Projection};
use std::hash::Hasher;

use crate::profiles::{FxHasher, FxMap, PAD, Profiles, sort_rows};

/// An attacker as the suppression sees it: profile columns, not variables.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The attacker's population base among those the rules hold (only
    /// for a population-based attacker).
    pub index: usize,
    /// Profile columns (quasi-identifier positions) the attacker knows.
    pub knows: Vec<usize>,
    /// The same columns in the order local suppression nulls them:
    /// suppressible ones only, cheapest first.
    pub order: Vec<usize>,
    /// The variable of each profile column.
    pub variables: Vec<usize>,
    /// Counted against the population (k-map) rather than the sample.
    pub population: bool,
}

/// Requirements on every class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub k: u64,
    /// `l` of each sensitive attribute (profile column `quasi + i`).
    pub l: &'a [usize],
    /// Number of quasi-identifier columns in a profile row.
    pub quasi: usize,
    /// The node's level of every variable.
    pub node: &'a [usize],
    /// The population bases the views point into, at or below `node`.
    pub population: &'a [PopulationBase],
    /// What nulling a value of each profile column costs, before the
    /// column's own suppression so far is charged.
    pub price: &'a [f64],
    /// The share of its values a column may lose ([`crate::Params::max_variable_suppression`]):
    /// a column past it is nulled only when no other can be.
    pub cap: f64,
}

/// Suppression applied to the profiles.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// Bit c: quasi-identifier column c is suppressed in all the profile's rows.
    pub mask: Vec<u64>,
    pub dropped: Vec<bool>,
    /// Values nulled because of each attacker (units × rows).
    pub values_by_attacker: Vec<u64>,
}

/// One attacker's classes over the profiles still released.
pub(crate) struct Classes {
    /// Class of each profile; `u32::MAX` for a dropped one.
    pub of_profile: Vec<u32>,
    pub units: Vec<u64>,
    /// Whether each class meets l.
    pub diverse: Vec<bool>,
}

impl Classes {
    /// Sample classes: at risk below k units or when not l-diverse.
    pub fn at_risk(&self, profile: usize, k: u64) -> bool {
        let c = self.of_profile[profile];
        c != u32::MAX && (self.units[c as usize] < k || !self.diverse[c as usize])
    }

    pub fn units_of(&self, profile: usize) -> u64 {
        self.units[self.of_profile[profile] as usize]
    }
}

/// Counts the attacker's classes: a profile's key is its rows restricted to
/// the known columns, suppressed columns null, rows sorted again (nulling
/// can change their order).
pub(crate) fn classes(
    profiles: &Profiles,
    suppression: &Suppression,
    view: &View,
    rules: Rules<'_>,
) -> Classes {
    classes_in(
        profiles,
        suppression,
        view,
        rules,
        &mut ClassScratch::default(),
    )
}

/// Buffers [`classes_in`] reuses from call to call: local suppression
/// counts classes many times per node, and fresh buffers of that size
/// cost more in zeroed pages than the counting.
#[derive(Default)]
pub(crate) struct ClassScratch {
    /// Every profile's key, `stride` codes each.
    keys: Vec<u32>,
    /// An open-addressing table of class representatives (profile
    /// indices; `u32::MAX` empty), found by their key's hash.
    slots: Vec<u32>,
}

/// [`classes`] in buffers the caller reuses.
pub(crate) fn classes_in(
    profiles: &Profiles,
    suppression: &Suppression,
    view: &View,
    rules: Rules<'_>,
    scratch: &mut ClassScratch,
) -> Classes {
    let keys = &mut scratch.keys;
    let n = profiles.len();
    let width = view.knows.len();
    let stride = profiles.rows_per * width;
    keys.clear();
    keys.resize(n * stride, PAD);
    for p in 0..n {
        let key = &mut keys[p * stride..(p + 1) * stride];
        let mut filled = 0;
        for slot in 0..profiles.rows_per {
            if !profiles.has_row(p, slot) {
                continue;
            }
            for (i, &c) in view.knows.iter().enumerate() {
                key[filled * width + i] = if suppression.mask[p] & (1 << c) != 0 {
                    NULL
                } else {
                    profiles.code(p, slot, c)
                };
            }
            filled += 1;
        }
        if filled > 1 && width > 0 {
            sort_rows(&mut key[..filled * width], width);
        }
    }
    let slots = &mut scratch.slots;
    let capacity = (2 * n).next_power_of_two().max(16);
    slots.clear();
    slots.resize(capacity, u32::MAX);
    let mut of_profile = vec![u32::MAX; n];
    let mut units: Vec<u64> = Vec::new();
    // Distinct sensitive codes per class and attribute, up to l.
    let mut distinct: Vec<Vec<Vec<u32>>> = Vec::new();
    for p in 0..n {
        if suppression.dropped[p] {
            continue;
        }
        let key = &keys[p * stride..(p + 1) * stride];
        let mut hasher = FxHasher::default();
        key.iter().for_each(|&x| hasher.write_usize(x as usize));
        let mut slot = hasher.finish() as usize & (capacity - 1);
        let c = loop {
            match slots[slot] {
                u32::MAX => {
                    slots[slot] = p as u32;
                    units.push(0);
                    distinct.push(vec![Vec::new(); rules.l.len()]);
                    break (units.len() - 1) as u32;
                }
                r if &keys[r as usize * stride..(r as usize + 1) * stride] == key => {
                    break of_profile[r as usize];
                }
                _ => slot = (slot + 1) & (capacity - 1),
            }
        };
        units[c as usize] += profiles.units[p];
        for (i, &l) in rules.l.iter().enumerate() {
            let seen = &mut distinct[c as usize][i];
            for slot in 0..profiles.rows_per {
                if seen.len() >= l || !profiles.has_row(p, slot) {
                    continue;
                }
                let code = profiles.code(p, slot, rules.quasi + i);
                if !seen.contains(&code) {
                    seen.push(code);
                }
            }
        }
        of_profile[p] = c;
    }
    let diverse = distinct
        .iter()
        .map(|d| d.iter().zip(rules.l).all(|(s, &l)| s.len() >= l))
        .collect();
    Classes {
        of_profile,
        units,
        diverse,
    }
}

/// Population counts per key, for one attacker and one set of suppressed
/// columns (the keys asked for so far): kept for the rest of the node's
/// evaluation.
pub(crate) type CountCache = FxMap<u64, FxMap<Vec<u32>, u64>>;

/// Population counts (k-map) of the given profiles, each with its own
/// suppression: suppressed columns match any value, so profiles are
/// grouped by which of the attacker's columns they have suppressed. A
/// profile's key is its rows on the other known columns, sorted.
pub(crate) fn population_counts(
    profiles: &Profiles,
    suppression: &Suppression,
    view: &View,
    rules: Rules<'_>,
    wanted: &[usize],
    cache: &mut CountCache,
) -> Vec<u64> {
    let masked: Vec<(usize, u64)> = wanted.iter().map(|&p| (p, suppression.mask[p])).collect();
    population_counts_masked(profiles, view, rules, &masked, cache)
}

/// [`population_counts`] of profiles under the given masks (a profile's
/// own, or one it would have after another suppression).
pub(crate) fn population_counts_masked(
    profiles: &Profiles,
    view: &View,
    rules: Rules<'_>,
    wanted: &[(usize, u64)],
    cache: &mut CountCache,
) -> Vec<u64> {
    let base = &rules.population[view.index];
    let known: u64 = view.knows.iter().map(|&c| 1u64 << c).sum();
    // Per mask, the attacker's columns it leaves and their variables:
    // few masks, many keys.
    let mut shapes: FxMap<u64, (Vec<usize>, Vec<usize>)> = FxMap::default();
    for &(_, mask) in wanted {
        shapes.entry(mask & known).or_insert_with(|| {
            let columns: Vec<usize> = view
                .knows
                .iter()
                .copied()
                .filter(|&c| mask & (1 << c) == 0)
                .collect();
            let vars = columns.iter().map(|&c| view.variable(c)).collect();
            (columns, vars)
        });
    }
    // A profile's key, written into a buffer reused for every key: only
    // keys not counted before are copied (into the cache).
    let key_into = |key: &mut Vec<u32>, p: usize, columns: &[usize]| {
        key.clear();
        for slot in (0..profiles.rows_per).filter(|&slot| profiles.has_row(p, slot)) {
            key.extend(columns.iter().map(|&c| profiles.code(p, slot, c)));
        }
        if !columns.is_empty() && key.len() > columns.len() {
            sort_rows(key, columns.len());
        }
    };
    // Masks already counted for this node are looked up; the rest are
    // counted together in one pass, for the keys wanted only.
    let mut pending: FxMap<u64, FxMap<Vec<u32>, u64>> = FxMap::default();
    let mut counts = vec![0u64; wanted.len()];
    let mut later: Vec<(usize, u64, Vec<u32>)> = Vec::new();
    let lifting = base.lifting(rules.node);
    let mut key = Vec::new();
    for (i, &(p, mask)) in wanted.iter().enumerate() {
        let mask = mask & known;
        let (columns, vars) = &shapes[&mask];
        key_into(&mut key, p, columns);
        let counted = cache.entry(mask).or_default();
        if let Some(&n) = counted.get(key.as_slice()) {
            counts[i] = n;
            continue;
        }
        // Most keys are counted by a few lookups; the others wait for a
        // pass over the population.
        match base.count_indexed(vars, &key, rules.node, &lifting) {
            Some(n) => {
                counts[i] = n;
                counted.insert(key.clone(), n);
            }
            None => {
                pending.entry(mask).or_default().insert(key.clone(), 0);
                later.push((i, mask, key.clone()));
            }
        }
    }
    if !pending.is_empty() {
        let mut masks: Vec<u64> = pending.keys().copied().collect();
        masks.sort_unstable();
        let mut groups: Vec<Projection> = masks
            .iter()
            .map(|m| {
                let vars = shapes[m].1.clone();
                (vars, pending.remove(m).expect("a pending mask"))
            })
            .collect();
        if !base.count_packed(&mut groups, rules.node) {
            base.count_wanted(&mut groups, rules.node);
        }
        for (m, (_, counted)) in masks.into_iter().zip(groups) {
            cache.entry(m).or_default().extend(counted);
        }
    }
    for (i, mask, k) in later {
        counts[i] = cache[&mask][&k];
    }
    counts
}

/// Sample class sizes the given profiles would have with another column
/// suppressed (`(profile, column)`), everything else as it is: the
/// profile's units plus those of the class its new key already names.
/// A floor: others suppressed in the same round may join it.
fn sample_sizes_after(
    profiles: &Profiles,
    suppression: &Suppression,
    view: &View,
    wanted: &[(usize, usize)],
) -> Vec<u64> {
    let width = view.knows.len();
    // Keys written into one reused buffer; only distinct asked keys are
    // copied (into the map).
    let key_into = |key: &mut Vec<u32>, p: usize, mask: u64| {
        key.clear();
        for slot in (0..profiles.rows_per).filter(|&slot| profiles.has_row(p, slot)) {
            key.extend(view.knows.iter().map(|&c| {
                if mask & (1 << c) != 0 {
                    NULL
                } else {
                    profiles.code(p, slot, c)
                }
            }));
        }
        if width > 0 && key.len() > width {
            sort_rows(key, width);
        }
    };
    let mut key = Vec::new();
    let mut after: FxMap<Vec<u32>, u64> = FxMap::default();
    for &(p, c) in wanted {
        key_into(&mut key, p, suppression.mask[p] | 1 << c);
        if !after.contains_key(key.as_slice()) {
            after.insert(key.clone(), 0);
        }
    }
    for p in 0..profiles.len() {
        if suppression.dropped[p] {
            continue;
        }
        key_into(&mut key, p, suppression.mask[p]);
        if let Some(n) = after.get_mut(key.as_slice()) {
            *n += profiles.units[p];
        }
    }
    wanted
        .iter()
        .map(|&(p, c)| {
            key_into(&mut key, p, suppression.mask[p] | 1 << c);
            after[key.as_slice()] + profiles.units[p]
        })
        .collect()
}

impl View {
    /// The variable behind profile column `c`.
    fn variable(&self, c: usize) -> usize {
        self.variables[c]
    }
}

/// The class size an attacker sees for every released profile: the
/// sample class, or for a population-based attacker the population count
/// (at least the sample class: the sample is part of the population).
/// `None` for dropped profiles.
pub(crate) fn class_sizes(
    profiles: &Profiles,
    suppression: &Suppression,
    view: &View,
    rules: Rules<'_>,
    classes: &Classes,
) -> Vec<Option<u64>> {
    let n = profiles.len();
    let mut sizes: Vec<Option<u64>> = (0..n)
        .map(|p| (!suppression.dropped[p]).then(|| classes.units_of(p)))
        .collect();
    if view.population {
        let released: Vec<usize> = (0..n).filter(|&p| !suppression.dropped[p]).collect();
        let counts = population_counts(
            profiles,
            suppression,
            view,
            rules,
            &released,
            &mut CountCache::default(),
        );
        for (&p, count) in released.iter().zip(counts) {
            sizes[p] = sizes[p].map(|s| s.max(count));
        }
    }
    sizes
}

/// Local suppression aims below the per-variable cap by this factor: a
/// person's last suppressible column may still have to be taken past it.
const AIM: f64 = 0.95;

/// How many of a person's cheapest columns local suppression compares.
const LOOKAHEAD: usize = 64;

/// Whether nulling column `c` of profile `p` changes anything: some row
/// holds a value there.
fn holds_value(profiles: &Profiles, p: usize, c: usize) -> bool {
    (0..profiles.rows_per)
        .any(|slot| profiles.has_row(p, slot) && profiles.code(p, slot, c) != NULL)
}

fn values_in(profiles: &Profiles, p: usize, c: usize) -> u64 {
    let rows = (0..profiles.rows_per)
        .filter(|&slot| profiles.has_row(p, slot) && profiles.code(p, slot, c) != NULL)
        .count() as u64;
    rows * profiles.units[p]
}

/// Local suppression: attackers take turns nulling, for every unit at risk,
/// its next known column, until a whole round changes nothing.
pub(crate) fn suppress(profiles: &Profiles, views: &[View], rules: Rules<'_>) -> Suppression {
    let n = profiles.len();
    let mut s = Suppression {
        mask: vec![0; n],
        dropped: vec![false; n],
        values_by_attacker: vec![0; views.len()],
    };
    // Population counts only grow as values are suppressed (a suppressed
    // value matches any), so a profile found safe in the population stays
    // safe for that attacker: it is not counted again.
    let mut safe_in_population = vec![vec![false; n]; views.len()];
    // Values per column, and how many of them are nulled so far: the
    // next value to null is the cheapest, its price raised as its column
    // loses values, so that suppression spreads over the variables
    // instead of emptying one.
    let columns = rules.price.len();
    let mut present = vec![0u64; columns];
    for p in 0..n {
        for (c, slot) in present.iter_mut().enumerate() {
            *slot += values_in(profiles, p, c);
        }
    }
    let mut nulled = vec![0u64; columns];
    let mut caches: Vec<CountCache> = views.iter().map(|_| CountCache::default()).collect();
    let mut scratch = ClassScratch::default();
    loop {
        let mut changed = false;
        for (a, view) in views.iter().enumerate() {
            // An attacker who knows what an earlier one knows, counted
            // the same way, finds the same classes (an employer and the
            // pension fund): protected once.
            if views[..a].iter().any(|w| {
                w.knows == view.knows && w.population == view.population && w.index == view.index
            }) {
                continue;
            }
            loop {
                let classes = classes_in(profiles, &s, view, rules, &mut scratch);
                let mut at_risk: Vec<usize> =
                    (0..n).filter(|&p| classes.at_risk(p, rules.k)).collect();
                if view.population {
                    let known_safe = &mut safe_in_population[a];
                    // l-diversity is a property of the released classes;
                    // only the k part is counted in the population.
                    let (diverse, rest): (Vec<usize>, Vec<usize>) = at_risk
                        .into_iter()
                        .partition(|&p| classes.diverse[classes.of_profile[p] as usize]);
                    let unknown: Vec<usize> = diverse
                        .iter()
                        .copied()
                        .filter(|&p| !known_safe[p])
                        .collect();
                    let counts =
                        population_counts(profiles, &s, view, rules, &unknown, &mut caches[a]);
                    for (&p, count) in unknown.iter().zip(counts) {
                        known_safe[p] = count >= rules.k;
                    }
                    at_risk = rest;
                    at_risk.extend(diverse.into_iter().filter(|&p| !known_safe[p]));
                    at_risk.sort_unstable();
                }
                if at_risk.is_empty() {
                    break;
                }
                // Persons with nothing left to suppress are left out only
                // once no one else at risk can take a step: those steps
                // may still grow the class they are in.
                let mut exhausted = Vec::new();
                let mut stepped = false;
                // What nulling a value of each column costs now; raised as
                // the column loses values, within the round too, so that
                // persons at risk together do not all empty one column.
                let charge = |nulled: &[u64], c: usize| {
                    let lost = if present[c] > 0 {
                        nulled[c] as f64 / present[c] as f64
                    } else {
                        0.0
                    };
                    let over = if lost >= rules.cap * AIM { 1000.0 } else { 1.0 };
                    rules.price[c] * (1.0 + 10.0 * lost) * over
                };
                // Each person's candidates, cheapest first; of the
                // cheapest few, the first that alone lifts its class to k
                // is taken (a value nulled that leaves the person at risk
                // costs twice), else the one that lifts it most.
                let candidates: Vec<Vec<usize>> = at_risk
                    .iter()
                    .map(|&p| {
                        let mut c: Vec<usize> = view
                            .order
                            .iter()
                            .copied()
                            .filter(|&c| s.mask[p] & (1 << c) == 0 && holds_value(profiles, p, c))
                            .collect();
                        c.sort_by(|&x, &y| {
                            charge(&nulled, x)
                                .total_cmp(&charge(&nulled, y))
                                .then(x.cmp(&y))
                        });
                        c
                    })
                    .collect();
                let asked: Vec<(usize, usize)> = at_risk
                    .iter()
                    .zip(&candidates)
                    .filter(|(_, c)| c.len() > 1)
                    .flat_map(|(&p, c)| c.iter().take(LOOKAHEAD).map(move |&c| (p, c)))
                    .collect();
                let sizes: Vec<u64> = if asked.is_empty() {
                    Vec::new()
                } else if view.population {
                    let masked: Vec<(usize, u64)> = asked
                        .iter()
                        .map(|&(p, c)| (p, s.mask[p] | 1 << c))
                        .collect();
                    population_counts_masked(profiles, view, rules, &masked, &mut caches[a])
                } else {
                    sample_sizes_after(profiles, &s, view, &asked)
                };
                let mut size_of: FxMap<(usize, usize), u64> = FxMap::default();
                size_of.extend(asked.into_iter().zip(sizes));
                for (p, mut candidates) in at_risk.into_iter().zip(candidates) {
                    candidates.sort_by(|&x, &y| {
                        charge(&nulled, x)
                            .total_cmp(&charge(&nulled, y))
                            .then(x.cmp(&y))
                    });
                    let size = |c: usize| size_of.get(&(p, c)).copied();
                    let next = candidates
                        .iter()
                        .copied()
                        .find(|&c| size(c).is_some_and(|n| n >= rules.k))
                        .or_else(|| {
                            // None lifts it to k: the one that lifts it
                            // most, the cheaper of equals.
                            candidates
                                .iter()
                                .copied()
                                .reduce(|best, c| if size(c) > size(best) { c } else { best })
                        });
                    match next {
                        Some(c) => {
                            s.mask[p] |= 1 << c;
                            let values = values_in(profiles, p, c);
                            s.values_by_attacker[a] += values;
                            nulled[c] += values;
                            stepped = true;
                        }
                        None => exhausted.push(p),
                    }
                }
                if !stepped {
                    for p in exhausted {
                        s.dropped[p] = true;
                    }
                }
                changed = true;
            }
        }
        if !changed {
            return s;
        }
    }
}
