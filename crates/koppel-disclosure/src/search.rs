//! The utility-driven search over generalisation levels, and the outcome.

use rayon::prelude::*;

use crate::population::PopulationBase;
use crate::profiles::{Profiles, Units};
use crate::suppress::{Rules, Suppression, View, class_sizes, classes, suppress};
use crate::{
    Attacker, AttackerOutcome, DisclosureError, Microdata, NULL, Params, Protection, Reference,
    SearchStep, VariableOutcome,
};

/// Everything the search knows of the data, fixed for all nodes.
struct Problem<'a> {
    data: &'a Microdata,
    params: &'a Params,
    /// Quasi-identifier variables: profile column c is `quasi[c]`.
    quasi: Vec<usize>,
    units: Units,
    views: Vec<View>,
    l: Vec<usize>,
    population: Option<PopulationBase>,
}

/// A node after local suppression.
struct Evaluation {
    levels: Vec<usize>,
    profiles: Profiles,
    suppression: Suppression,
    /// Per quasi-identifier column: values known as linked, null in the
    /// release, summed loss.
    known: Vec<u64>,
    null: Vec<u64>,
    loss: Vec<f64>,
    cost: f64,
    share: f64,
}

impl Evaluation {
    fn acceptable(&self, params: &Params) -> bool {
        self.share <= params.max_suppression + 1e-12
    }

    /// What the search minimises: the cost of an acceptable node, and for
    /// one that is not, 2 + its suppressed share, so that every acceptable
    /// node ranks first and the others by how close they come.
    fn objective(&self, params: &Params) -> f64 {
        if self.acceptable(params) {
            self.cost
        } else {
            2.0 + self.share
        }
    }
}

impl<'a> Problem<'a> {
    fn new(data: &'a Microdata, attackers: &[Attacker], params: &'a Params) -> Problem<'a> {
        let quasi = data.quasi_identifiers(attackers);
        let column = |v: usize| quasi.binary_search(&v).expect("a quasi-identifier");
        let views = attackers
            .iter()
            .map(|a| {
                let mut knows: Vec<usize> = a.knows.iter().map(|&v| column(v)).collect();
                knows.sort_unstable();
                knows.dedup();
                let mut order: Vec<usize> = knows
                    .iter()
                    .copied()
                    .filter(|&c| data.variables[quasi[c]].suppressible)
                    .collect();
                order.sort_by(|&x, &y| {
                    let (wx, wy) = (
                        data.variables[quasi[x]].weight,
                        data.variables[quasi[y]].weight,
                    );
                    wx.total_cmp(&wy).then(x.cmp(&y))
                });
                View {
                    knows,
                    order,
                    variables: quasi.clone(),
                    population: a.reference == Reference::Population,
                }
            })
            .collect();
        Problem {
            data,
            params,
            units: Units::new(&data.units),
            quasi,
            views,
            l: data.sensitive.iter().map(|s| s.l).collect(),
            population: PopulationBase::new(data, attackers),
        }
    }

    fn rules<'r>(&'r self, node: &'r [usize]) -> Rules<'r> {
        Rules {
            k: self.params.k as u64,
            l: &self.l,
            quasi: self.quasi.len(),
            node,
            population: self.population.as_ref(),
        }
    }

    fn evaluate(&self, levels: &[usize]) -> Evaluation {
        let profiles = Profiles::build(self.data, &self.quasi, &self.units, levels);
        let suppression = suppress(&profiles, &self.views, self.rules(levels));
        let q = self.quasi.len();
        let (mut known, mut null, mut loss) = (vec![0u64; q], vec![0u64; q], vec![0f64; q]);
        for (row, &unit) in self.units.of_row.iter().enumerate() {
            let p = profiles.of_unit[unit as usize] as usize;
            let dropped = suppression.dropped[p];
            for (c, &v) in self.quasi.iter().enumerate() {
                let variable = &self.data.variables[v];
                if variable.codes[row] == NULL {
                    continue;
                }
                known[c] += 1;
                if dropped
                    || suppression.mask[p] & (1 << c) != 0
                    || variable.code(levels[v], row) == NULL
                {
                    null[c] += 1;
                    loss[c] += 1.0;
                } else {
                    loss[c] += variable.height(levels[v]);
                }
            }
        }
        let (mut weighted, mut weights) = (0.0, 0.0);
        for (c, &v) in self.quasi.iter().enumerate() {
            if known[c] > 0 {
                let w = self.data.variables[v].weight;
                let mean = loss[c] / known[c] as f64;
                weighted += w * mean * mean;
                weights += w;
            }
        }
        let cost = if weights > 0.0 {
            (weighted / weights).sqrt()
        } else {
            0.0
        };
        let all_known: u64 = known.iter().sum();
        let share = if all_known > 0 {
            null.iter().sum::<u64>() as f64 / all_known as f64
        } else {
            0.0
        };
        Evaluation {
            levels: levels.to_vec(),
            profiles,
            suppression,
            known,
            null,
            loss,
            cost,
            share,
        }
    }

    /// Units at risk for each attacker with every variable at its minimum
    /// level and nothing suppressed: the release as the pipeline would let
    /// it out without protection.
    fn risk_before(&self) -> Vec<u64> {
        let levels: Vec<usize> = self.data.variables.iter().map(|v| v.min_level).collect();
        let profiles = Profiles::build(self.data, &self.quasi, &self.units, &levels);
        let none = Suppression {
            mask: vec![0; profiles.len()],
            dropped: vec![false; profiles.len()],
            values_by_attacker: vec![0; self.views.len()],
        };
        let rules = self.rules(&levels);
        self.views
            .iter()
            .map(|view| {
                let classes = classes(&profiles, &none, view, rules);
                let sizes = class_sizes(&profiles, &none, view, rules, &classes);
                (0..profiles.len())
                    .filter(|&p| {
                        sizes[p].is_some_and(|s| s < rules.k)
                            || !classes.diverse[classes.of_profile[p] as usize]
                    })
                    .map(|p| profiles.units[p])
                    .sum()
            })
            .collect()
    }
}

/// Protects `data` against every attacker: see the crate documentation
/// for the model. Deterministic: the same input gives the same output.
pub fn protect(
    data: &Microdata,
    attackers: &[Attacker],
    params: &Params,
) -> Result<Protection, DisclosureError> {
    data.validate(attackers, params)?;
    let problem = Problem::new(data, attackers, params);
    let mut levels: Vec<usize> = data.variables.iter().map(|v| v.min_level).collect();
    let mut current = problem.evaluate(&levels);
    let mut nodes = 1;
    let mut path = Vec::new();
    loop {
        let candidates: Vec<Vec<usize>> = problem
            .quasi
            .iter()
            .filter(|&&v| levels[v] < data.variables[v].max_level)
            .map(|&v| {
                let mut next = levels.clone();
                next[v] += 1;
                next
            })
            .collect();
        if candidates.is_empty() {
            break;
        }
        let evaluated: Vec<Evaluation> = candidates
            .par_iter()
            .map(|node| problem.evaluate(node))
            .collect();
        nodes += evaluated.len();
        let best = evaluated
            .into_iter()
            .min_by(|a, b| {
                a.objective(params)
                    .total_cmp(&b.objective(params))
                    .then(a.cost.total_cmp(&b.cost))
            })
            .expect("at least one candidate");
        // An unacceptable node is left whatever the step costs: suppression
        // can sit on a plateau (several steps each leave it unchanged)
        // until two variables are coarsened together. Every step raises a
        // level, so this ends.
        if !current.acceptable(params) || best.objective(params) < current.objective(params) - 1e-12
        {
            levels.clone_from(&best.levels);
            current = best;
            path.push(SearchStep {
                levels: levels.clone(),
                information_loss: current.cost,
                values_suppressed_share: current.share,
            });
        } else {
            break;
        }
    }
    if !current.acceptable(params) {
        let detail = problem
            .quasi
            .iter()
            .enumerate()
            .filter(|&(c, _)| current.known[c] > 0)
            .map(|(c, &v)| {
                format!(
                    "{} {:.1}%",
                    data.variables[v].name,
                    100.0 * current.null[c] as f64 / current.known[c] as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DisclosureError::SuppressionCap {
            cap: 100.0 * params.max_suppression,
            needed: 100.0 * current.share,
            detail,
        });
    }
    outcome(&problem, attackers, current, nodes, path)
}

/// Maps the chosen node back to rows and recounts every attacker's classes
/// from scratch: the check that the release is what the model promises.
fn outcome(
    problem: &Problem<'_>,
    attackers: &[Attacker],
    chosen: Evaluation,
    nodes_evaluated: usize,
    path: Vec<SearchStep>,
) -> Result<Protection, DisclosureError> {
    let data = problem.data;
    let rows = data.rows();
    let profiles = &chosen.profiles;
    let s = &chosen.suppression;
    let profile_of_row = |row: usize| profiles.of_unit[problem.units.of_row[row] as usize] as usize;
    let dropped: Vec<bool> = (0..rows).map(|r| s.dropped[profile_of_row(r)]).collect();
    let mut suppressed = vec![vec![false; rows]; data.variables.len()];
    for (c, &v) in problem.quasi.iter().enumerate() {
        for (r, cell) in suppressed[v].iter_mut().enumerate() {
            *cell = s.mask[profile_of_row(r)] & (1 << c) != 0;
        }
    }

    let before = problem.risk_before();
    let mut outcomes = Vec::new();
    for ((attacker, view), before) in attackers.iter().zip(&problem.views).zip(before) {
        let rules = problem.rules(&chosen.levels);
        let classes = classes(profiles, s, view, rules);
        let sizes = class_sizes(profiles, s, view, rules, &classes);
        let mut at_risk = 0;
        let mut smallest = u64::MAX;
        let mut released = 0;
        for (p, size) in sizes.iter().enumerate() {
            let Some(size) = *size else { continue };
            released += profiles.units[p];
            smallest = smallest.min(size);
            if size < rules.k || !classes.diverse[classes.of_profile[p] as usize] {
                at_risk += profiles.units[p];
            }
        }
        if at_risk > 0 {
            return Err(DisclosureError::Unsafe {
                attacker: attacker.name.clone(),
                size: smallest,
            });
        }
        outcomes.push(AttackerOutcome {
            name: attacker.name.clone(),
            knows: view
                .knows
                .iter()
                .map(|&c| data.variables[problem.quasi[c]].name.clone())
                .collect(),
            units: problem.units.count() as u64,
            units_at_risk_before: before,
            units_at_risk_after: at_risk,
            units_released: released,
            smallest_class: if released == 0 { 0 } else { smallest },
            values_suppressed: s.values_by_attacker[outcomes.len()],
        });
    }

    let variables = data
        .variables
        .iter()
        .enumerate()
        .map(|(v, variable)| {
            let level = chosen.levels[v];
            match problem.quasi.binary_search(&v) {
                Ok(c) => VariableOutcome {
                    name: variable.name.clone(),
                    levels: variable.levels.len(),
                    level,
                    quasi_identifier: true,
                    values_known: chosen.known[c],
                    values_suppressed: chosen.null[c],
                    information_loss: if chosen.known[c] > 0 {
                        chosen.loss[c] / chosen.known[c] as f64
                    } else {
                        0.0
                    },
                },
                Err(_) => {
                    // Not a quasi-identifier: released at its minimum level
                    // in every released row.
                    let (mut known, mut null, mut loss) = (0u64, 0u64, 0f64);
                    for (r, &dropped) in dropped.iter().enumerate() {
                        if variable.codes[r] == NULL {
                            continue;
                        }
                        known += 1;
                        if dropped || variable.code(level, r) == NULL {
                            null += 1;
                            loss += 1.0;
                        } else {
                            loss += variable.height(level);
                        }
                    }
                    VariableOutcome {
                        name: variable.name.clone(),
                        levels: variable.levels.len(),
                        level,
                        quasi_identifier: false,
                        values_known: known,
                        values_suppressed: null,
                        information_loss: if known > 0 { loss / known as f64 } else { 0.0 },
                    }
                }
            }
        })
        .collect();
    let units_dropped = (0..profiles.len())
        .filter(|&p| s.dropped[p])
        .map(|p| profiles.units[p])
        .sum();
    Ok(Protection {
        levels: chosen.levels.clone(),
        rows_dropped: dropped.iter().filter(|d| **d).count() as u64,
        dropped,
        suppressed,
        variables,
        attackers: outcomes,
        information_loss: chosen.cost,
        values_suppressed_share: chosen.share,
        units_dropped,
        nodes_evaluated,
        path,
    })
}
