//! Properties of the engine on random data, each checked by a naive
//! recount written apart from the engine's own.

use std::collections::HashMap;

use koppel_disclosure::{
    Attacker, DisclosureError, Microdata, NULL, Params, Population, Protection, Reference,
    Sensitive, Variable, protect,
};
use proptest::prelude::*;

/// A variable whose level 1 merges codes in pairs and whose last level
/// suppresses: a hierarchy as export builds them.
fn variable(name: &str, codes: Vec<u32>) -> Variable {
    let pairs = codes
        .iter()
        .map(|&c| if c == NULL { NULL } else { c / 2 })
        .collect();
    let top = vec![NULL; codes.len()];
    levels(name, vec![codes, pairs, top])
}

/// A variable with its levels given as codes per row.
fn levels(name: &str, rows: Vec<Vec<u32>>) -> Variable {
    Variable::from_rows(name, rows).unwrap()
}

fn attacker(name: &str, knows: Vec<usize>) -> Attacker {
    Attacker {
        name: name.into(),
        knows,
        reference: Reference::Sample,
    }
}

/// The released code of variable `v` in `row`.
fn released(data: &Microdata, p: &Protection, v: usize, row: usize) -> u32 {
    if p.suppressed[v][row] {
        NULL
    } else {
        data.variables[v].code(p.levels[v], row)
    }
}

/// Units per class for one attacker, counted from the released rows: a
/// unit is the sorted list of its rows' known values.
fn naive_classes(
    data: &Microdata,
    p: &Protection,
    attacker: &Attacker,
) -> Vec<(Vec<Vec<u32>>, u64)> {
    let mut rows_of: HashMap<u32, Vec<Vec<u32>>> = HashMap::new();
    for row in 0..data.units.len() {
        if p.dropped[row] {
            continue;
        }
        let values = attacker
            .knows
            .iter()
            .map(|&v| released(data, p, v, row))
            .collect();
        rows_of.entry(data.units[row]).or_default().push(values);
    }
    let mut classes: HashMap<Vec<Vec<u32>>, u64> = HashMap::new();
    for (_, mut rows) in rows_of {
        rows.sort();
        *classes.entry(rows).or_default() += 1;
    }
    classes.into_iter().collect()
}

fn data_strategy() -> impl Strategy<Value = (Microdata, Vec<Attacker>, usize)> {
    (20usize..160, 1usize..4, 2usize..6)
        .prop_flat_map(|(rows, variables, k)| {
            let codes = proptest::collection::vec(
                proptest::collection::vec(prop_oneof![9 => 0u32..6, 1 => Just(NULL)], rows),
                variables,
            );
            let units = proptest::collection::vec(0u32..(rows as u32 * 2 / 3).max(1), rows);
            let years = proptest::collection::vec(0u32..2, rows);
            let attackers = proptest::collection::vec(
                proptest::collection::vec(any::<bool>(), variables),
                1..4,
            );
            (codes, units, years, attackers, Just(k))
        })
        .prop_map(|(codes, units, years, attackers, k)| {
            let mut vars = vec![Variable {
                suppressible: false,
                ..levels("year", vec![years])
            }];
            for (i, c) in codes.into_iter().enumerate() {
                vars.push(variable(&format!("v{i}"), c));
            }
            let attackers = attackers
                .into_iter()
                .enumerate()
                .map(|(i, knows)| Attacker {
                    name: format!("a{i}"),
                    reference: Reference::Sample,
                    knows: std::iter::once(0)
                        .chain(
                            knows
                                .iter()
                                .enumerate()
                                .filter(|(_, k)| **k)
                                .map(|(v, _)| v + 1),
                        )
                        .collect(),
                })
                .collect();
            (
                Microdata {
                    variables: vars,
                    units,
                    sensitive: vec![],
                    population: None,
                },
                attackers,
                k,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every attacker's released classes hold at least k units, counted
    /// naively; a unit's rows are released or left out together.
    #[test]
    fn no_attacker_finds_a_class_below_k((data, attackers, k) in data_strategy()) {
        let params = Params { k, max_suppression: 1.0, max_variable_suppression: 1.0, strict: true };
        let p = protect(&data, &attackers, &params).unwrap();
        for a in &attackers {
            for (_, units) in naive_classes(&data, &p, a) {
                prop_assert!(units >= k as u64, "attacker {} finds a class of {units}", a.name);
            }
        }
        let mut dropped: HashMap<u32, bool> = HashMap::new();
        for (row, &unit) in data.units.iter().enumerate() {
            let d = dropped.entry(unit).or_insert(p.dropped[row]);
            prop_assert_eq!(*d, p.dropped[row], "a unit's rows are released together");
        }
        // The outcome's figures agree with the rows.
        let nulls: u64 = p.variables.iter().filter(|v| v.quasi_identifier).map(|v| v.values_suppressed).sum();
        let known: u64 = p.variables.iter().filter(|v| v.quasi_identifier).map(|v| v.values_known).sum();
        if known > 0 {
            prop_assert!((nulls as f64 / known as f64 - p.values_suppressed_share).abs() < 1e-9);
        }
    }

    /// Variables no attacker knows are released at their minimum level
    /// and never suppressed; the year is never suppressed.
    #[test]
    fn only_quasi_identifiers_are_touched((data, attackers, k) in data_strategy()) {
        let p = protect(&data, &attackers, &Params { k, max_suppression: 1.0, max_variable_suppression: 1.0, strict: true }).unwrap();
        for (v, variable) in data.variables.iter().enumerate() {
            let known = attackers.iter().any(|a| a.knows.contains(&v));
            if !known || !variable.suppressible {
                prop_assert!(!p.suppressed[v].iter().any(|s| *s), "{} suppressed", variable.name);
            }
            if !known {
                prop_assert_eq!(p.levels[v], variable.min_level);
            }
        }
    }

    /// The same input gives the same output.
    #[test]
    fn protection_is_deterministic((data, attackers, k) in data_strategy()) {
        let params = Params { k, max_suppression: 1.0, max_variable_suppression: 1.0, strict: true };
        let a = protect(&data, &attackers, &params).unwrap();
        let b = protect(&data, &attackers, &params).unwrap();
        prop_assert_eq!(a.levels, b.levels);
        prop_assert_eq!(a.suppressed, b.suppressed);
        prop_assert_eq!(a.dropped, b.dropped);
    }
}

fn one_level(name: &str, codes: Vec<u32>) -> Variable {
    levels(name, vec![codes])
}

/// Each of a person's two rows is in a class of ten, but the pair of them
/// is unique: the person is at risk, and protecting rows one by one (as
/// k-anonymity per year does) would miss it.
#[test]
fn a_persons_rows_are_protected_together() {
    // 10 persons with (year 0, a) and (year 1, a); 9 with (0, b), (1, b);
    // person 99 has (0, a) and (1, b).
    let (mut year, mut value, mut unit) = (vec![], vec![], vec![]);
    for p in 0..10 {
        year.extend([0, 1]);
        value.extend([0, 0]);
        unit.extend([p, p]);
    }
    for p in 10..19 {
        year.extend([0, 1]);
        value.extend([1, 1]);
        unit.extend([p, p]);
    }
    year.extend([0, 1]);
    value.extend([0, 1]);
    unit.extend([99, 99]);
    let data = Microdata {
        variables: vec![
            Variable {
                suppressible: false,
                ..one_level("year", year)
            },
            one_level("value", value),
        ],
        units: unit,
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("partner", vec![0, 1])];
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 10,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    let a = &p.attackers[0];
    // Person 99 and the nine b-persons (a class of 9) are at risk.
    assert_eq!(a.units_at_risk_before, 10);
    assert_eq!(a.units_at_risk_after, 0);
    // Row by row nothing is below 10 in year 0 for value a (11 rows).
    for (_, units) in naive_classes(&data, &p, &attackers[0]) {
        assert!(units >= 10);
    }
    // The ten safe persons keep their values.
    assert!((0..20).all(|r| !p.suppressed[1][r]));
}

/// Unit per row: the same data protected as cross-sections finds nobody at
/// risk in year 0 for value a.
#[test]
fn one_unit_per_row_protects_rows() {
    let year = vec![0; 12];
    let value = [vec![0; 11], vec![1]].concat();
    let data = Microdata {
        variables: vec![
            Variable {
                suppressible: false,
                ..one_level("year", year)
            },
            one_level("value", value),
        ],
        units: (0..12).collect(),
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("partner", vec![0, 1])];
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 10,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.attackers[0].units_at_risk_before, 1);
    // The lone b row is suppressed; it joins no class of 10 (null is its
    // own value), so it is left out.
    assert_eq!(p.rows_dropped, 1);
    assert!(p.dropped[11] && !p.dropped[0]);
}

/// An attacker who does not know a variable does not make it a
/// quasi-identifier, and a variable only one attacker knows is protected
/// against that one.
#[test]
fn each_attacker_is_protected_against_with_its_own_columns() {
    // 30 rows; `care` is unique per row, `age` has classes of 10.
    let data = Microdata {
        variables: vec![
            one_level("age", (0..30).map(|r| r / 10).collect()),
            levels(
                "care",
                vec![
                    (0..30).collect(),
                    (0..30).map(|r| r / 10).collect(),
                    vec![NULL; 30],
                ],
            ),
            one_level("survey", (0..30).collect()),
        ],
        units: (0..30).collect(),
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("payroll", vec![0]), attacker("insurer", vec![1])];
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 10,
            max_suppression: 0.5,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.levels, [0, 1, 0], "care is banded, survey untouched");
    assert_eq!(p.attackers[1].units_at_risk_before, 30);
    assert_eq!(p.attackers[0].units_at_risk_before, 0);
    assert!(!p.variables[2].quasi_identifier);
    assert_eq!(p.information_loss, (0.5f64 * 0.5 / 2.0).sqrt());
}

/// The search prefers two variables coarsened over one dropped: a node
/// that loses one variable entirely costs more than one that halves two.
#[test]
fn the_search_keeps_every_variable_at_a_useful_level() {
    // 64 rows; a and b each exact have 4 values; together 16 combos
    // (classes of 4); halved each has 2 values: 4 combos of 16.
    let a: Vec<u32> = (0..64).map(|r| r % 4).collect();
    let b: Vec<u32> = (0..64).map(|r| (r / 4) % 4).collect();
    let three = |codes: Vec<u32>, name: &str| variable(name, codes);
    let data = Microdata {
        variables: vec![three(a, "a"), three(b, "b")],
        units: (0..64).collect(),
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("x", vec![0, 1])];
    // With a cap of 10%, suppressing instead of coarsening is ruled out.
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 10,
            max_suppression: 0.1,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.levels, [1, 1]);
    assert_eq!(p.values_suppressed_share, 0.0);
}

#[test]
fn l_diversity_holds_in_every_class() {
    // Classes of 10 by age; within the first, everyone has the same
    // diagnosis: l = 2 fails there, and the class is protected by
    // generalising age into one class.
    let age: Vec<u32> = (0..30).map(|r| r / 10).collect();
    let diagnosis: Vec<u32> = (0..30).map(|r| if r < 10 { 0 } else { r % 2 }).collect();
    let data = Microdata {
        variables: vec![levels("age", vec![age, vec![0; 30], vec![NULL; 30]])],
        units: (0..30).collect(),
        sensitive: vec![Sensitive {
            name: "diagnosis".into(),
            codes: diagnosis,
            l: 2,
        }],
        population: None,
    };
    let attackers = [attacker("x", vec![0])];
    // Under a cap of 20% the class cannot simply be left out (a third of
    // the rows).
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 5,
            max_suppression: 0.2,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.levels, [1]);
    assert_eq!(p.attackers[0].units_at_risk_before, 10);
}

#[test]
fn a_cap_no_node_meets_is_an_error_naming_the_variables() {
    let data = Microdata {
        variables: vec![one_level("postcode", (0..20).collect())],
        units: (0..20).collect(),
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("x", vec![0])];
    let err = protect(
        &data,
        &attackers,
        &Params {
            k: 5,
            max_suppression: 0.1,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap_err();
    match &err {
        DisclosureError::SuppressionCap { needed, detail, .. } => {
            assert_eq!(*needed, 100.0);
            assert!(detail.contains("postcode 100.0%"), "{detail}");
        }
        other => panic!("{other}"),
    }
    // Not strict: the closest node is released, still safe, and flagged.
    let p = protect(
        &data,
        &attackers,
        &Params {
            k: 5,
            max_suppression: 0.1,
            max_variable_suppression: 1.0,
            strict: false,
        },
    )
    .unwrap();
    assert!(!p.suppression_target_met);
    assert_eq!(p.attackers[0].units_at_risk_after, 0);
    // Twenty unique postcodes: all suppressed, then a class of twenty.
    assert!(p.suppressed[0].iter().all(|s| *s));
    assert_eq!(p.rows_dropped, 0);
}

#[test]
fn bad_input_is_an_error() {
    let data = Microdata {
        variables: vec![one_level("v", vec![0, 1])],
        units: vec![0, 1, 2],
        sensitive: vec![],
        population: None,
    };
    let attackers = [attacker("x", vec![3])];
    let params = Params {
        k: 2,
        max_suppression: 1.0,
        max_variable_suppression: 1.0,
        strict: true,
    };
    assert!(matches!(
        protect(&data, &attackers, &params),
        Err(DisclosureError::Variable { .. })
    ));
    let data = Microdata {
        variables: vec![one_level("v", vec![0, 1, 2])],
        ..data
    };
    assert!(matches!(
        protect(&data, &attackers, &params),
        Err(DisclosureError::UnknownVariable { index: 3, .. })
    ));
    assert_eq!(
        protect(
            &data,
            &[],
            &Params {
                k: 1,
                max_suppression: 1.0,
                max_variable_suppression: 1.0,
                strict: true
            }
        )
        .unwrap_err(),
        DisclosureError::K(1)
    );
}

/// Random data with a population: the released rows plus as many again.
fn population_strategy() -> impl Strategy<Value = (Microdata, Vec<Attacker>, usize)> {
    (data_strategy(), any::<u64>()).prop_map(|((mut data, attackers, k), seed)| {
        let rows = data.units.len();
        let mut state = seed | 1;
        let mut next = move |n: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(n)) as u32
        };
        let codes = data
            .variables
            .iter()
            .enumerate()
            .map(|(v, var)| {
                let categories = var.levels[0].len().max(1) as u32;
                let extra: Vec<u32> = (0..rows * 3)
                    .map(|_| if v == 0 { next(2) } else { next(categories) })
                    .collect();
                Some([var.codes.clone(), extra].concat())
            })
            .collect();
        // The sample's persons keep their rows; the extra rows belong to
        // new persons of one to three rows each.
        let first = data.units.iter().max().map_or(0, |u| u + 1);
        let mut units = data.units.clone();
        units.extend((0..rows * 3).map(|_| first + next(rows as u32 * 2)));
        data.population = Some(Population {
            codes,
            units: Some(units),
        });
        // Every other attacker counts in the population.
        let attackers = attackers
            .into_iter()
            .enumerate()
            .map(|(i, a)| Attacker {
                reference: if i % 2 == 0 {
                    Reference::Population
                } else {
                    Reference::Sample
                },
                ..a
            })
            .collect();
        (data, attackers, k)
    })
}

/// Population persons holding, for every released row of a person, a
/// distinct row of their own that matches it on the attacker's columns (a
/// suppressed value matches any).
fn naive_population_count(
    data: &Microdata,
    p: &Protection,
    attacker: &Attacker,
    released_rows: &[usize],
) -> u64 {
    let population = data.population.as_ref().unwrap();
    let units = population.units.as_ref().unwrap();
    let mut persons: HashMap<u32, Vec<usize>> = HashMap::new();
    for (q, &u) in units.iter().enumerate() {
        persons.entry(u).or_default().push(q);
    }
    let matches = |row: usize, q: usize| {
        attacker.knows.iter().all(|&v| {
            if p.suppressed[v][row] {
                return true;
            }
            let var = &data.variables[v];
            let code = population.codes[v].as_ref().unwrap()[q];
            let lifted = if code == NULL {
                NULL
            } else {
                var.levels[p.levels[v]][code as usize]
            };
            lifted == released(data, p, v, row)
        })
    };
    // Whether released rows[i..] can be paired with distinct unused rows.
    fn pair(
        rows: &[usize],
        theirs: &[usize],
        used: &mut Vec<bool>,
        matches: &dyn Fn(usize, usize) -> bool,
    ) -> bool {
        let Some((&row, rest)) = rows.split_first() else {
            return true;
        };
        for (i, &q) in theirs.iter().enumerate() {
            if !used[i] && matches(row, q) {
                used[i] = true;
                let ok = pair(rest, theirs, used, matches);
                used[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    persons
        .values()
        .filter(|theirs| {
            theirs.len() >= released_rows.len()
                && pair(
                    released_rows,
                    theirs,
                    &mut vec![false; theirs.len()],
                    &matches,
                )
        })
        .count() as u64
}

/// k-map: a population-based attacker finds every released person in at
/// least k population persons (each holding rows that match all the
/// person's rows), or in a sample class of k.
fn population_attackers_find_k(
    data: &Microdata,
    attackers: &[Attacker],
    k: usize,
) -> Result<(), TestCaseError> {
    let p = protect(
        data,
        attackers,
        &Params {
            k,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    let mut rows_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (row, &unit) in data.units.iter().enumerate() {
        rows_of.entry(unit).or_default().push(row);
    }
    for a in attackers {
        let sample: HashMap<Vec<Vec<u32>>, u64> = naive_classes(data, &p, a).into_iter().collect();
        for rows in rows_of.values() {
            if p.dropped[rows[0]] {
                continue;
            }
            let mut key: Vec<Vec<u32>> = rows
                .iter()
                .map(|&r| a.knows.iter().map(|&v| released(data, &p, v, r)).collect())
                .collect();
            key.sort();
            let in_sample = sample[&key];
            match a.reference {
                Reference::Population => {
                    let n = naive_population_count(data, &p, a, rows);
                    prop_assert!(
                        n.max(in_sample) >= k as u64,
                        "{}: {n} in the population",
                        a.name
                    );
                }
                _ => prop_assert!(in_sample >= k as u64, "{}: a class of {in_sample}", a.name),
            }
        }
    }
    Ok(())
}

/// The population strategy with every person's rows in distinct years
/// (its first row year 0, its second year 1, …), as in a real panel: the
/// engine then counts most keys by lookups in a packed index instead of
/// passes, which must give the same counts.
fn distinct_years_strategy() -> impl Strategy<Value = (Microdata, Vec<Attacker>, usize)> {
    population_strategy().prop_map(|(mut data, attackers, k)| {
        let population = data.population.as_mut().unwrap();
        let units = population.units.clone().unwrap();
        let mut seen: HashMap<u32, u32> = HashMap::new();
        let years: Vec<u32> = units
            .iter()
            .map(|&u| {
                let y = seen.entry(u).or_default();
                *y += 1;
                *y - 1
            })
            .collect();
        let rows = data.units.len();
        population.codes[0] = Some(years.clone());
        data.variables[0] = Variable {
            suppressible: false,
            ..levels("year", vec![years[..rows].to_vec()])
        };
        // The year's dictionary must cover the population's years too.
        let most = years.iter().max().map_or(0, |y| y + 1) as usize;
        data.variables[0].levels = vec![(0..most as u32).collect()];
        (data, attackers, k)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn population_attackers_find_k_in_the_population((data, attackers, k) in population_strategy()) {
        population_attackers_find_k(&data, &attackers, k)?;
    }

    #[test]
    fn population_attackers_find_k_in_a_panel_population((data, attackers, k) in distinct_years_strategy()) {
        population_attackers_find_k(&data, &attackers, k)?;
    }
}

/// A lone respondent is safe from an attacker who does not know who
/// responded when ten persons of the population share its values; an
/// attacker who knows who responded finds it.
#[test]
fn the_population_protects_respondents_from_attackers_who_do_not_know_them() {
    // Sample: 10 rows of value 0, 1 row of value 1. Population: the
    // sample plus 9 more persons of value 1.
    let value: Vec<u32> = [vec![0; 10], vec![1]].concat();
    let data = Microdata {
        variables: vec![one_level("value", value.clone())],
        units: (0..11).collect(),
        sensitive: vec![],
        population: Some(Population {
            codes: vec![Some([value, vec![1; 9]].concat())],
            units: None,
        }),
    };
    let outsider = Attacker {
        reference: Reference::Population,
        ..attacker("outsider", vec![0])
    };
    let p = protect(
        &data,
        std::slice::from_ref(&outsider),
        &Params {
            k: 10,
            max_suppression: 0.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.attackers[0].units_at_risk_before, 0);
    assert!(!p.suppressed[0][10] && !p.dropped[10]);
    assert_eq!(p.attackers[0].smallest_class, 10);
    // The insurer knows who responded: the lone row is at risk.
    let p = protect(
        &data,
        &[attacker("insurer", vec![0])],
        &Params {
            k: 10,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert_eq!(p.attackers[0].units_at_risk_before, 1);
    assert!(p.dropped[10]);
    // A population that lacks a variable the attacker knows is an error.
    let mut thin = data.clone();
    thin.population = Some(Population {
        codes: vec![None],
        units: None,
    });
    assert!(matches!(
        protect(
            &thin,
            &[outsider],
            &Params {
                k: 10,
                max_suppression: 1.0,
                max_variable_suppression: 1.0,
                strict: true
            }
        ),
        Err(DisclosureError::NoPopulation { .. })
    ));
}

/// A person surveyed in both years is matched by population persons who
/// hold both of its rows: safe when ten do, although it is alone in the
/// release and although each of its rows alone is common; at risk when
/// the population has its rows only in different persons.
#[test]
fn a_person_of_two_rows_is_counted_among_population_persons_with_both() {
    // Sample: persons 0..10 with one row (year 0, value 0); person 10 with
    // two rows: (year 0, value 1) and (year 1, value 2).
    let year: Vec<u32> = [vec![0; 10], vec![0, 1]].concat();
    let value: Vec<u32> = [vec![0; 10], vec![1, 2]].concat();
    let units: Vec<u32> = [(0..10).collect::<Vec<u32>>(), vec![10, 10]].concat();
    let outsider = Attacker {
        reference: Reference::Population,
        ..attacker("outsider", vec![0, 1])
    };
    let params = Params {
        k: 10,
        max_suppression: 1.0,
        max_variable_suppression: 1.0,
        strict: true,
    };
    // Nine more persons with both rows.
    let both = |extra_year: Vec<u32>, extra_value: Vec<u32>, extra_units: Vec<u32>| Microdata {
        variables: vec![
            Variable {
                suppressible: false,
                ..one_level("year", year.clone())
            },
            variable("value", value.clone()),
        ],
        units: units.clone(),
        sensitive: vec![],
        population: Some(Population {
            codes: vec![
                Some([year.clone(), extra_year].concat()),
                Some([value.clone(), extra_value].concat()),
            ],
            units: Some([units.clone(), extra_units].concat()),
        }),
    };
    let nine_with_both = both(
        [0, 1].repeat(9),
        [1, 2].repeat(9),
        (100..109).flat_map(|u| [u, u]).collect(),
    );
    let p = protect(&nine_with_both, std::slice::from_ref(&outsider), &params).unwrap();
    assert_eq!(p.attackers[0].units_at_risk_before, 0);
    assert!(!p.suppressed[1][10] && !p.suppressed[1][11] && !p.dropped[10]);
    assert_eq!(p.levels[1], 0);
    // The same rows, held by eighteen persons with one row each: every
    // row is common, the combination is in the release alone.
    let apart = both([0, 1].repeat(9), [1, 2].repeat(9), (100..118).collect());
    let p = protect(&apart, std::slice::from_ref(&outsider), &params).unwrap();
    assert_eq!(p.attackers[0].units_at_risk_before, 1);
    assert!(p.suppressed[1][10] || p.dropped[10] || p.levels[1] > 0);
}

#[test]
fn levels_that_do_not_nest_are_an_error() {
    // Level 1 puts 0 and 1 together, level 2 apart: the population could
    // not be counted from level 1 up.
    let v = Variable {
        min_level: 1,
        ..levels("v", vec![vec![0, 1, 2], vec![0, 0, 1], vec![0, 1, 1]])
    };
    let data = Microdata {
        variables: vec![v],
        units: vec![0, 1, 2],
        sensitive: vec![],
        population: None,
    };
    let err = protect(
        &data,
        &[attacker("x", vec![0])],
        &Params {
            k: 2,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not nest"), "{err}");
}

/// Local suppression compares the class each candidate would give: a
/// person whose cheapest nulls do not lift it to k takes the one column
/// that does, not the cheapest that does not.
#[test]
fn a_person_whose_cheapest_nulls_do_not_lift_it_takes_the_one_that_does() {
    // Sample: 20 persons of (0,0,0,0,0) and one of (1,1,1,1,1). The
    // population adds 12 workers of (1,1,1,0,1): only nulling the fourth
    // column puts the lone person among ten.
    let width = 5;
    let mut sample: Vec<Vec<u32>> = vec![Vec::new(); width];
    for _ in 0..20 {
        sample.iter_mut().for_each(|v| v.push(0));
    }
    sample.iter_mut().for_each(|v| v.push(1));
    let lone = 20;
    let population: Vec<Option<Vec<u32>>> = sample
        .iter()
        .enumerate()
        .map(|(c, v)| {
            let extra = if c == 3 { 0 } else { 1 };
            Some([v.clone(), vec![extra; 12]].concat())
        })
        .collect();
    let data = Microdata {
        variables: sample
            .into_iter()
            .enumerate()
            .map(|(c, codes)| one_level(&format!("v{c}"), codes))
            .collect(),
        units: (0..21).collect(),
        sensitive: vec![],
        population: Some(Population {
            codes: population,
            units: None,
        }),
    };
    let outsider = Attacker {
        reference: Reference::Population,
        ..attacker("outsider", (0..width).collect())
    };
    let p = protect(
        &data,
        &[outsider],
        &Params {
            k: 10,
            max_suppression: 1.0,
            max_variable_suppression: 1.0,
            strict: true,
        },
    )
    .unwrap();
    assert!(!p.dropped[lone]);
    let nulled: Vec<usize> = (0..width).filter(|&c| p.suppressed[c][lone]).collect();
    assert_eq!(nulled, vec![3]);
    assert_eq!(p.attackers[0].units_at_risk_after, 0);
    assert!((0..lone).all(|r| (0..width).all(|c| !p.suppressed[c][r])));
}
