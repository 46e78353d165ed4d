//! The utility-driven search over generalisation levels, and the outcome.

use rayon::prelude::*;

use crate::population::PopulationBase;
use crate::profiles::{Profiles, Units};
use crate::suppress::{Rules, Suppression, View, class_sizes, classes, suppress};
use crate::{
    Attacker, AttackerOutcome, DisclosureError, Microdata, NULL, Params, Protection, Reference,
    SearchStep, VariableOutcome, code_count,
};

/// How far a step's floor must lie above the node reached for the step to
/// be left unevaluated: well past the rounding of summing the same losses
/// in another order, far below any difference between nodes.
const FLOOR_MARGIN: f64 = 1e-9;

/// Everything the search knows of the data, fixed for all nodes.
struct Problem<'a> {
    data: &'a Microdata,
    params: &'a Params,
    /// Quasi-identifier variables: profile column c is `quasi[c]`.
    quasi: Vec<usize>,
    units: Units,
    views: Vec<View>,
    l: Vec<usize>,
    /// Per quasi-identifier column, the values known as linked, and per
    /// level how many of them the level itself leaves null: what a node
    /// loses before any suppression ([`Problem::floor`]).
    known: Vec<u64>,
    null_at: Vec<Vec<u64>>,
}

/// The population reduced once per distinct set of variables that
/// population-based attackers know (an employer and the pension fund know
/// the same columns: one base): few distinct persons for an attacker who
/// knows little.
struct Bases {
    bases: Vec<PopulationBase>,
    /// Per attacker (all of them, in order), its base.
    of_attacker: Vec<Option<usize>>,
}

impl Bases {
    fn new(data: &Microdata, attackers: &[Attacker]) -> Bases {
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let mut of_attacker = Vec::new();
        for a in attackers {
            if a.reference != Reference::Population {
                of_attacker.push(None);
                continue;
            }
            let mut knows = a.knows.clone();
            knows.sort_unstable();
            knows.dedup();
            let i = sets.iter().position(|s| *s == knows).unwrap_or_else(|| {
                sets.push(knows);
                sets.len() - 1
            });
            of_attacker.push(Some(i));
        }
        let bases = sets
            .iter()
            .map(|knows| {
                let reader = Attacker {
                    name: String::new(),
                    knows: knows.clone(),
                    reference: Reference::Population,
                };
                PopulationBase::new(data, std::slice::from_ref(&reader))
                    .expect("validated: a population-based attacker has a population")
            })
            .collect();
        Bases { bases, of_attacker }
    }
}

/// A node after local suppression.
struct Evaluation {
    levels: Vec<usize>,
    profiles: Profiles,
    suppression: Suppression,
    tally: Tally,
    cost: f64,
    share: f64,
}

/// What a node's evaluation keeps for scoring, per quasi-identifier
/// column: values known as linked, null in the release, summed loss.
#[derive(Debug, Clone)]
struct Tally {
    known: Vec<u64>,
    null: Vec<u64>,
    loss: Vec<f64>,
}

impl Evaluation {
    fn acceptable(&self, params: &Params) -> bool {
        let t = &self.tally;
        self.share <= params.max_suppression + 1e-12
            && (0..t.known.len()).all(|c| {
                t.known[c] == 0
                    || t.null[c] as f64 / t.known[c] as f64
                        <= params.max_variable_suppression + 1e-12
            })
    }
}

impl<'a> Problem<'a> {
    /// `bases` are the population bases of `attackers` (indices into the
    /// list the evaluations are given).
    fn new(
        data: &'a Microdata,
        attackers: &[Attacker],
        bases: &[Option<usize>],
        params: &'a Params,
    ) -> Problem<'a> {
        let quasi = data.quasi_identifiers(attackers);
        let column = |v: usize| quasi.binary_search(&v).expect("a quasi-identifier");
        let views = attackers
            .iter()
            .enumerate()
            .map(|(index, a)| {
                let mut knows: Vec<usize> = a.knows.iter().map(|&v| column(v)).collect();
                knows.sort_unstable();
                knows.dedup();
                // The columns suppression may null; which first is
                // decided as it goes (`prices`, `suppress`).
                let order: Vec<usize> = knows
                    .iter()
                    .copied()
                    .filter(|&c| data.variables[quasi[c]].suppressible)
                    .collect();
                View {
                    index: bases[index].unwrap_or(usize::MAX),
                    knows,
                    order,
                    variables: quasi.clone(),
                    population: a.reference == Reference::Population,
                }
            })
            .collect();
        let (mut known, mut null_at) = (Vec::new(), Vec::new());
        for &v in &quasi {
            let var = &data.variables[v];
            let rows = || (0..var.codes.len()).filter(|&r| var.codes[r] != NULL);
            known.push(rows().count() as u64);
            null_at.push(
                (0..var.levels.len())
                    .map(|l| rows().filter(|&r| var.code(l, r) == NULL).count() as u64)
                    .collect(),
            );
        }
        Problem {
            data,
            params,
            units: Units::new(&data.units),
            quasi,
            views,
            l: data.sensitive.iter().map(|s| s.l).collect(),
            known,
            null_at,
        }
    }

    /// The tally of the node `levels` with nothing suppressed: a floor
    /// under its evaluation's, column by column, as suppression only adds
    /// nulls and loss. Counted without evaluating the node.
    fn floor(&self, levels: &[usize]) -> Tally {
        let (mut null, mut loss) = (Vec::new(), Vec::new());
        for (c, &v) in self.quasi.iter().enumerate() {
            let level = levels[v];
            let n = self.null_at[c][level];
            null.push(n);
            loss.push(n as f64 + (self.known[c] - n) as f64 * self.data.variables[v].height(level));
        }
        Tally {
            known: self.known.clone(),
            null,
            loss,
        }
    }

    fn rules<'r>(
        &'r self,
        node: &'r [usize],
        price: &'r [f64],
        population: &'r [PopulationBase],
    ) -> Rules<'r> {
        Rules {
            k: self.params.k as u64,
            l: &self.l,
            quasi: self.quasi.len(),
            node,
            population,
            price,
            cap: self.params.max_variable_suppression,
        }
    }

    /// What nulling a value of each quasi-identifier costs at this node: a
    /// value that separates little (two categories) helps little when
    /// nulled, so the price is the weight per bit of the variable's
    /// categories at its level (weight ÷ log2(categories + 1)).
    fn prices(&self, levels: &[usize]) -> Vec<f64> {
        self.quasi
            .iter()
            .map(|&v| {
                let var = &self.data.variables[v];
                let categories = code_count(&var.levels[levels[v]]);
                var.weight / ((categories + 1) as f64).log2().max(1e-9)
            })
            .collect()
    }

    /// Local suppression at the node `levels`, the population counted in
    /// `population` (bases at or below those levels).
    fn evaluate(&self, levels: &[usize], population: &[PopulationBase]) -> Evaluation {
        let profiles = Profiles::build(self.data, &self.quasi, &self.units, levels);
        let price = self.prices(levels);
        let suppression = suppress(
            &profiles,
            &self.views,
            self.rules(levels, &price, population),
        );
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
            tally: Tally { known, null, loss },
            cost,
            share,
        }
    }

    /// Units at risk for each attacker with every variable at its minimum
    /// level and nothing suppressed: the release as the pipeline would let
    /// it out without protection.
    fn risk_before(&self, population: &[PopulationBase]) -> Vec<u64> {
        let levels: Vec<usize> = self.data.variables.iter().map(|v| v.min_level).collect();
        let profiles = Profiles::build(self.data, &self.quasi, &self.units, &levels);
        let none = Suppression {
            mask: vec![0; profiles.len()],
            dropped: vec![false; profiles.len()],
            values_by_attacker: vec![0; self.views.len()],
        };
        let price = self.prices(&levels);
        let rules = self.rules(&levels, &price, population);
        self.views
            .iter()
            .map(|view| exposure(&profiles, &none, view, rules).at_risk)
            .collect()
    }
}

/// One attacker's classes over the released profiles, counted from scratch.
struct Exposure {
    /// Units in classes below k or not l-diverse.
    at_risk: u64,
    /// The smallest class (`u64::MAX` when nothing is released).
    smallest: u64,
    released: u64,
}

fn exposure(profiles: &Profiles, s: &Suppression, view: &View, rules: Rules<'_>) -> Exposure {
    let classes = classes(profiles, s, view, rules);
    let sizes = class_sizes(profiles, s, view, rules, &classes);
    let mut e = Exposure {
        at_risk: 0,
        smallest: u64::MAX,
        released: 0,
    };
    for (p, size) in sizes.iter().enumerate() {
        let Some(size) = *size else { continue };
        e.released += profiles.units[p];
        e.smallest = e.smallest.min(size);
        if size < rules.k || !classes.diverse[classes.of_profile[p] as usize] {
            e.at_risk += profiles.units[p];
        }
    }
    e
}

/// Attackers that share a variable the search can change (or suppress)
/// are protected together; attackers without such a variable in common are
/// independent — generalising or suppressing one's variables changes
/// nothing the other sees — so the search evaluates a step only in the
/// block its variable belongs to. (Leaving a person out couples blocks a
/// little: the final node is evaluated whole, and that evaluation is the
/// one released and checked.)
fn blocks(data: &Microdata, attackers: &[Attacker]) -> Vec<Vec<usize>> {
    let changeable = |v: usize| {
        data.variables[v].suppressible || data.variables[v].min_level < data.variables[v].max_level
    };
    let mut parent: Vec<usize> = (0..attackers.len()).collect();
    fn root(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    let mut owner: Vec<Option<usize>> = vec![None; data.variables.len()];
    for (a, attacker) in attackers.iter().enumerate() {
        for &v in attacker.knows.iter().filter(|&&v| changeable(v)) {
            match owner[v] {
                None => owner[v] = Some(a),
                Some(b) => {
                    let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: Vec<Option<usize>> = vec![None; attackers.len()];
    for a in 0..attackers.len() {
        let r = root(&mut parent, a);
        let g = *index[r].get_or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(a);
    }
    groups
}

/// A node's standing: its cost, its null share, and how far variables
/// exceed their own cap (summed).
#[derive(Debug, Clone, Copy)]
struct Score {
    cost: f64,
    share: f64,
    excess: f64,
}

impl Score {
    fn acceptable(&self, params: &Params) -> bool {
        self.share <= params.max_suppression + 1e-12 && self.excess <= 1e-12
    }

    /// What the search ranks nodes by: the cost of an acceptable node, and
    /// for one that is not, 2 + its null share + the variables' excess
    /// over their cap, so that every acceptable node ranks first and the
    /// others by how close they come.
    fn objective(&self, params: &Params) -> f64 {
        if self.acceptable(params) {
            self.cost
        } else {
            2.0 + self.share + self.excess
        }
    }
}

/// The score of a node from its blocks' evaluations, each variable counted
/// once.
fn combine(data: &Microdata, params: &Params, parts: &[(&Problem<'_>, &Tally)]) -> Score {
    let mut seen = vec![false; data.variables.len()];
    let (mut weighted, mut weights, mut known, mut null) = (0.0, 0.0, 0u64, 0u64);
    let mut excess = 0.0;
    for (problem, evaluation) in parts {
        for (c, &v) in problem.quasi.iter().enumerate() {
            if seen[v] {
                continue;
            }
            seen[v] = true;
            known += evaluation.known[c];
            null += evaluation.null[c];
            if evaluation.known[c] > 0 {
                let w = data.variables[v].weight;
                let mean = evaluation.loss[c] / evaluation.known[c] as f64;
                weighted += w * mean * mean;
                weights += w;
                let share = evaluation.null[c] as f64 / evaluation.known[c] as f64;
                excess += (share - params.max_variable_suppression).max(0.0);
            }
        }
    }
    Score {
        cost: if weights > 0.0 {
            (weighted / weights).sqrt()
        } else {
            0.0
        },
        share: if known > 0 {
            null as f64 / known as f64
        } else {
            0.0
        },
        excess,
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
    let Bases {
        bases: mut population,
        of_attacker,
    } = Bases::new(data, attackers);
    let whole = Problem::new(data, attackers, &of_attacker, params);
    // Before protection, counted while the bases are at the minimum
    // levels; from here on they follow the search's node.
    let before = whole.risk_before(&population);
    // Kept for the search's refinement, which steps back down.
    let minimum: Vec<PopulationBase> = population.iter().map(PopulationBase::unindexed).collect();

    let groups = blocks(data, attackers);
    let block_attackers: Vec<Vec<Attacker>> = groups
        .iter()
        .map(|g| g.iter().map(|&a| attackers[a].clone()).collect())
        .collect();
    let block_bases: Vec<Vec<Option<usize>>> = groups
        .iter()
        .map(|g| g.iter().map(|&a| of_attacker[a]).collect())
        .collect();
    let problems: Vec<Problem<'_>> = block_attackers
        .iter()
        .zip(&block_bases)
        .map(|(a, b)| Problem::new(data, a, b, params))
        .collect();
    let block_of: Vec<Option<usize>> = (0..data.variables.len())
        .map(|v| {
            problems
                .iter()
                .position(|p| p.quasi.binary_search(&v).is_ok())
        })
        .collect();

    let mut levels: Vec<usize> = data.variables.iter().map(|v| v.min_level).collect();
    let mut current: Vec<Tally> = problems
        .par_iter()
        .map(|p| p.evaluate(&levels, &population).tally)
        .collect();
    let score = |tallies: &[&Tally]| {
        let parts: Vec<(&Problem<'_>, &Tally)> =
            problems.iter().zip(tallies.iter().copied()).collect();
        combine(data, params, &parts)
    };
    let mut now = score(&current.iter().collect::<Vec<_>>());
    let mut nodes = problems.len();
    let mut path = Vec::new();
    let mut fewest = (now.objective(params), levels.clone());
    // A step's evaluation stays valid while its block's node is unchanged:
    // blocks share no variable, so a step elsewhere changes nothing it saw.
    let mut steps: Vec<Option<Tally>> = vec![None; data.variables.len()];
    loop {
        // A step whose floor already costs more than the acceptable node
        // reached cannot be taken (the ascent stops rather than take it,
        // and any step that improves is cheaper): not evaluated.
        let cannot_win = |v: usize, b: usize| {
            if !now.acceptable(params) || steps[v].is_some() {
                return false;
            }
            let mut next = levels.clone();
            next[v] += 1;
            let floor = problems[b].floor(&next);
            let mut parts: Vec<&Tally> = current.iter().collect();
            parts[b] = &floor;
            score(&parts).cost >= now.objective(params) + FLOOR_MARGIN
        };
        let candidates: Vec<(usize, usize)> = (0..data.variables.len())
            .filter(|&v| levels[v] < data.variables[v].max_level)
            .filter_map(|v| block_of[v].map(|b| (v, b)))
            .filter(|&(v, b)| !cannot_win(v, b))
            .collect();
        if candidates.is_empty() {
            break;
        }
        let fresh: Vec<(usize, Tally)> = candidates
            .par_iter()
            .filter(|&&(v, _)| steps[v].is_none())
            .map(|&(v, b)| {
                let mut next = levels.clone();
                next[v] += 1;
                (v, problems[b].evaluate(&next, &population).tally)
            })
            .collect();
        nodes += fresh.len();
        for (v, tally) in fresh {
            steps[v] = Some(tally);
        }
        let scored: Vec<Score> = candidates
            .iter()
            .map(|&(v, b)| {
                let mut parts: Vec<&Tally> = current.iter().collect();
                parts[b] = steps[v].as_ref().expect("evaluated");
                score(&parts)
            })
            .collect();
        let best = (0..candidates.len())
            .min_by(|&x, &y| {
                scored[x]
                    .objective(params)
                    .total_cmp(&scored[y].objective(params))
                    .then(scored[x].cost.total_cmp(&scored[y].cost))
            })
            .expect("at least one candidate");
        // An unacceptable node is left whatever the step costs: suppression
        // can sit on a plateau (several steps each leave it unchanged)
        // until two variables are coarsened together. Every step raises a
        // level, so this ends.
        if now.acceptable(params) && scored[best].objective(params) >= now.objective(params) - 1e-12
        {
            break;
        }
        let (v, b) = candidates[best];
        levels[v] += 1;
        current[b] = steps[v].take().expect("evaluated");
        for (w, step) in steps.iter_mut().enumerate() {
            if block_of[w] == Some(b) {
                *step = None;
            }
        }
        // The population bases that hold the variable follow the node.
        population = population
            .into_iter()
            .map(|base| {
                if base.holds(v) {
                    base.coarsen(&levels)
                } else {
                    base
                }
            })
            .collect();
        now = scored[best];
        record(&mut path, &mut fewest, &levels, now, params);
    }

    // The ascent cannot undo a step that later steps made unnecessary
    // (a variable coarsened before another's suppression spread). From the
    // node reached, each variable is tried one level lower; the best lower
    // node that is acceptable and costs less is taken, until none is.
    // Candidates are counted in the population coarsened to one level
    // below the node (each lifts from there).
    while now.acceptable(params) {
        let down: Vec<(usize, usize)> = (0..data.variables.len())
            .filter(|&v| levels[v] > data.variables[v].min_level)
            .filter_map(|v| block_of[v].map(|b| (v, b)))
            .collect();
        if down.is_empty() {
            break;
        }
        let mut lower = levels.clone();
        for &(v, _) in &down {
            lower[v] -= 1;
        }
        let floor: Vec<PopulationBase> = minimum.iter().map(|b| b.coarsen(&lower)).collect();
        let tried: Vec<(usize, usize, Tally)> = down
            .par_iter()
            .map(|&(v, b)| {
                let mut next = levels.clone();
                next[v] -= 1;
                (v, b, problems[b].evaluate(&next, &floor).tally)
            })
            .collect();
        nodes += tried.len();
        let better = tried
            .into_iter()
            .map(|(v, b, tally)| {
                let mut parts: Vec<&Tally> = current.iter().collect();
                parts[b] = &tally;
                let score = score(&parts);
                (v, b, tally, score)
            })
            .filter(|(_, _, _, s)| {
                s.acceptable(params) && s.objective(params) < now.objective(params) - 1e-12
            })
            .min_by(|x, y| x.3.objective(params).total_cmp(&y.3.objective(params)));
        let Some((v, b, tally, score)) = better else {
            break;
        };
        levels[v] -= 1;
        current[b] = tally;
        now = score;
        population = minimum.iter().map(|base| base.coarsen(&levels)).collect();
        record(&mut path, &mut fewest, &levels, now, params);
    }

    // The chosen node, evaluated with every attacker together. When no
    // node met the suppression target, the one that came closest is
    // released (every attacker still finds no class below k) and the
    // outcome says so; `Params::strict` makes that an error instead.
    let mut chosen = whole.evaluate(&levels, &population);
    nodes += 1;
    if !chosen.acceptable(params) && fewest.1 != levels {
        // Below the bases' node: counted from the population again.
        let lower = Bases::new(data, attackers).bases;
        let closest = whole.evaluate(&fewest.1, &lower);
        nodes += 1;
        let rank = |e: &Evaluation| combine(data, params, &[(&whole, &e.tally)]).objective(params);
        if rank(&closest) < rank(&chosen) {
            chosen = closest;
            population = lower;
        }
    }
    if !chosen.acceptable(params) && params.strict {
        let detail = whole
            .quasi
            .iter()
            .enumerate()
            .filter(|&(c, _)| chosen.tally.known[c] > 0 && chosen.tally.null[c] > 0)
            .map(|(c, &v)| {
                format!(
                    "{} {:.1}%",
                    data.variables[v].name,
                    100.0 * chosen.tally.null[c] as f64 / chosen.tally.known[c] as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DisclosureError::SuppressionCap {
            cap: 100.0 * params.max_suppression,
            needed: 100.0 * chosen.share,
            detail,
        });
    }
    outcome(&whole, attackers, chosen, &population, before, nodes, path)
}

/// A step taken: onto the search's path, and the closest node so far.
fn record(
    path: &mut Vec<SearchStep>,
    fewest: &mut (f64, Vec<usize>),
    levels: &[usize],
    now: Score,
    params: &Params,
) {
    if now.objective(params) < fewest.0 {
        *fewest = (now.objective(params), levels.to_vec());
    }
    path.push(SearchStep {
        levels: levels.to_vec(),
        information_loss: now.cost,
        values_suppressed_share: now.share,
    });
}

/// Maps the chosen node back to rows and recounts every attacker's classes
/// from scratch: the check that the release is what the model promises.
fn outcome(
    problem: &Problem<'_>,
    attackers: &[Attacker],
    chosen: Evaluation,
    population: &[PopulationBase],
    before: Vec<u64>,
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

    let mut outcomes = Vec::new();
    for ((attacker, view), before) in attackers.iter().zip(&problem.views).zip(before) {
        let price = problem.prices(&chosen.levels);
        let rules = problem.rules(&chosen.levels, &price, population);
        let Exposure {
            at_risk,
            smallest,
            released,
        } = exposure(profiles, s, view, rules);
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
                    values_known: chosen.tally.known[c],
                    values_suppressed: chosen.tally.null[c],
                    information_loss: if chosen.tally.known[c] > 0 {
                        chosen.tally.loss[c] / chosen.tally.known[c] as f64
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
        suppression_target_met: chosen.acceptable(problem.params),
        units_dropped,
        nodes_evaluated,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Population, Variable};

    /// The search leaves a step unevaluated when its floor costs more than
    /// the node reached: exact only if no evaluation ever comes in under
    /// its floor. Every node of a small lattice, two recipients (one
    /// counted in the population), suppression at work.
    #[test]
    fn no_node_is_evaluated_below_its_floor() {
        let rows = 300;
        let mut state = 7u64;
        let mut next = |n: u32| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % u64::from(n)) as u32
        };
        // Three variables, each with a finer level, pairs merged, and all
        // suppressed; one in ten values unknown.
        let mut variable = |name: &str, categories: u32| {
            let codes: Vec<u32> = (0..rows)
                .map(|_| {
                    if next(10) == 0 {
                        NULL
                    } else {
                        next(categories)
                    }
                })
                .collect();
            let pairs = codes
                .iter()
                .map(|&c| if c == NULL { NULL } else { c / 2 })
                .collect();
            Variable::from_rows(name, vec![codes, pairs, vec![NULL; rows]]).unwrap()
        };
        let variables = vec![variable("a", 8), variable("b", 6), variable("c", 4)];
        let population = variables
            .iter()
            .map(|v| Some([v.codes.clone(), v.codes.clone()].concat()))
            .collect();
        let data = Microdata {
            variables,
            units: (0..rows as u32).collect(),
            sensitive: vec![],
            population: Some(Population {
                codes: population,
                units: None,
            }),
        };
        let attackers = vec![
            Attacker {
                name: "partner".into(),
                knows: vec![0, 1, 2],
                reference: Reference::Sample,
            },
            Attacker {
                name: "outsider".into(),
                knows: vec![0, 2],
                reference: Reference::Population,
            },
        ];
        let params = Params {
            k: 5,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: false,
        };
        let Bases { bases, of_attacker } = Bases::new(&data, &attackers);
        let problem = Problem::new(&data, &attackers, &of_attacker, &params);
        let mut suppressed_somewhere = false;
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    let levels = [a, b, c];
                    let bases: Vec<PopulationBase> =
                        bases.iter().map(|base| base.coarsen(&levels)).collect();
                    let evaluation = problem.evaluate(&levels, &bases);
                    let floor = problem.floor(&levels);
                    let t = &evaluation.tally;
                    assert_eq!(floor.known, t.known);
                    for q in 0..t.known.len() {
                        assert!(floor.null[q] <= t.null[q], "{levels:?} column {q}");
                        assert!(floor.loss[q] <= t.loss[q] + 1e-9, "{levels:?} column {q}");
                    }
                    suppressed_somewhere |= floor.null != t.null;
                }
            }
        }
        assert!(suppressed_somewhere, "local suppression was never at work");
    }
}
