//! Classes per attacker, and local suppression over profiles until no
//! attacker finds a unit at risk.

use crate::NULL;
use crate::profiles::{FxMap, PAD, Profiles, sort_rows};

/// An attacker as the suppression sees it: profile columns, not variables.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Profile columns (quasi-identifier positions) the attacker knows.
    pub knows: Vec<usize>,
    /// The same columns in the order local suppression nulls them:
    /// suppressible ones only, cheapest (lowest weight) first.
    pub order: Vec<usize>,
}

/// Requirements on every class.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub k: u64,
    /// `l` of each sensitive attribute (profile column `quasi + i`).
    pub l: &'a [usize],
    /// Number of quasi-identifier columns in a profile row.
    pub quasi: usize,
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
    /// Whether each class meets k and l.
    pub safe: Vec<bool>,
}

impl Classes {
    pub fn at_risk(&self, profile: usize) -> bool {
        let c = self.of_profile[profile];
        c != u32::MAX && !self.safe[c as usize]
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
    let n = profiles.len();
    let width = view.knows.len();
    let stride = profiles.rows_per * width;
    let mut keys = vec![PAD; n * stride];
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
    let mut index: FxMap<&[u32], u32> = FxMap::default();
    let mut of_profile = vec![u32::MAX; n];
    let mut units: Vec<u64> = Vec::new();
    // Distinct sensitive codes per class and attribute, up to l.
    let mut distinct: Vec<Vec<Vec<u32>>> = Vec::new();
    for p in 0..n {
        if suppression.dropped[p] {
            continue;
        }
        let key = &keys[p * stride..(p + 1) * stride];
        let next = units.len() as u32;
        let c = *index.entry(key).or_insert(next);
        if c == next {
            units.push(0);
            distinct.push(vec![Vec::new(); rules.l.len()]);
        }
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
    let safe = units
        .iter()
        .zip(&distinct)
        .map(|(&u, d)| u >= rules.k && d.iter().zip(rules.l).all(|(s, &l)| s.len() >= l))
        .collect();
    Classes {
        of_profile,
        units,
        safe,
    }
}

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
    loop {
        let mut changed = false;
        for (a, view) in views.iter().enumerate() {
            loop {
                let classes = classes(profiles, &s, view, rules);
                let mut stepped = false;
                for p in 0..n {
                    if !classes.at_risk(p) {
                        continue;
                    }
                    stepped = true;
                    let next = view
                        .order
                        .iter()
                        .copied()
                        .find(|&c| s.mask[p] & (1 << c) == 0 && holds_value(profiles, p, c));
                    match next {
                        Some(c) => {
                            s.mask[p] |= 1 << c;
                            s.values_by_attacker[a] += values_in(profiles, p, c);
                        }
                        None => s.dropped[p] = true,
                    }
                }
                if !stepped {
                    break;
                }
                changed = true;
            }
        }
        if !changed {
            return s;
        }
    }
}
