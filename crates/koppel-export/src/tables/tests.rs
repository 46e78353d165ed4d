use super::*;
use proptest::prelude::*;

fn dims(sizes: &[usize]) -> Vec<Dimension> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Dimension {
            name: format!("d{i}"),
            categories: (0..*n).map(|c| format!("c{c}")).collect(),
            sensitive: vec![],
        })
        .collect()
}

/// `count` contributors of value 1 each in the cell, numbered from `first`.
fn people(coords: &[u32], count: u64, first: u64) -> Vec<Contribution> {
    (0..count)
        .map(|i| Contribution {
            coords: coords.to_vec(),
            contributor: first + i,
            values: vec![],
        })
        .collect()
}

fn input(name: &str, dimensions: Vec<Dimension>, contributions: Vec<Contribution>) -> TableInput {
    TableInput {
        name: name.into(),
        dimensions,
        measures: vec![],
        ratio: None,
        contributions,
        counted: Vec::new(),
        known: None,
        link: None,
    }
}

fn counts_table(grid: &[&[u64]]) -> TableInput {
    let mut contributions = Vec::new();
    let mut next = 0;
    for (r, row) in grid.iter().enumerate() {
        for (c, &n) in row.iter().enumerate() {
            contributions.extend(people(&[r as u32, c as u32], n, next));
            next += n;
        }
    }
    input("t", dims(&[grid.len(), grid[0].len()]), contributions)
}

fn cell<'a>(t: &'a ProtectedTable, coords: &[Option<u32>]) -> &'a Cell {
    t.cells.iter().find(|c| c.coords == coords).unwrap()
}

fn lp_audit(tables: &[&ProtectedTable], rules: &TableRules) -> AuditReport {
    audit(tables, rules, AuditMethod::LinearPrograms).unwrap()
}

#[test]
fn a_small_cell_is_suppressed_with_a_hypercube_and_the_audit_passes() {
    let input = counts_table(&[&[20, 30, 25], &[3, 40, 22], &[15, 18, 50]]);
    let t = protect(&input, &TableRules::default()).unwrap();
    assert_eq!(t.cells.len(), 16);
    assert_eq!(
        cell(&t, &[Some(1), Some(0)]).status,
        CellStatus::PrimaryThreshold
    );
    assert_eq!(cell(&t, &[Some(1), Some(0)]).contributors, 3);
    assert_eq!(cell(&t, &[None, None]).contributors, 223);
    assert_eq!(cell(&t, &[Some(1), None]).contributors, 65);
    let secondary = t
        .cells
        .iter()
        .filter(|c| c.status == CellStatus::Secondary)
        .count();
    assert!(secondary >= 3, "a 2-D hypercube has three more corners");
    assert!(t.audit.failures.is_empty());
    assert_eq!(t.audit.proven_by_hypercube, 1, "the hypercube proves it");
    // And linear programs alone agree.
    let lp = lp_audit(&[&t], &TableRules::default());
    assert!(lp.failures.is_empty() && lp.lps_solved >= 2 && lp.proven_by_hypercube == 0);
    // The cheapest hypercube takes the smallest safe corners — row 0 and
    // column 2: 20 + 22 + 25 — not the margins.
    for corner in [[Some(0), Some(0)], [Some(1), Some(2)], [Some(0), Some(2)]] {
        assert_eq!(
            cell(&t, &corner).status,
            CellStatus::Secondary,
            "{corner:?}"
        );
    }
    assert_eq!(secondary, 3);
    assert_eq!(cell(&t, &[None, None]).status, CellStatus::Safe);
}

#[test]
fn the_audit_catches_a_pattern_without_secondary_suppression() {
    let input = counts_table(&[&[20, 30, 25], &[3, 40, 22], &[15, 18, 50]]);
    let rules = TableRules::default();
    let mut t = protect(&input, &rules).unwrap();
    for c in &mut t.cells {
        if c.status == CellStatus::Secondary {
            c.status = CellStatus::Safe;
        }
    }
    for method in [
        AuditMethod::HypercubesThenLinearPrograms,
        AuditMethod::LinearPrograms,
    ] {
        let report = audit(&[&t], &rules, method).unwrap();
        assert!(!report.failures.is_empty());
        assert_eq!(report.proven_by_hypercube, 0);
        let f = &report.failures[0];
        assert_eq!(f.coords, [Some(1), Some(0)]);
        // The row total minus the published cells gives it exactly.
        assert!((f.lower - 3.0).abs() < 1e-6 && (f.upper - 3.0).abs() < 1e-6);
    }
}

#[test]
fn a_hypercube_with_one_published_corner_proves_nothing_and_the_programs_decide() {
    let input = counts_table(&[&[20, 30, 25], &[3, 40, 22], &[15, 18, 50]]);
    let rules = TableRules::default();
    let mut t = protect(&input, &rules).unwrap();
    // Publish the corner diagonal to the primary cell: the other two
    // secondaries are then alone in their column and row, so they — and
    // through them the primary cell — are exact.
    let diagonal = t
        .cells
        .iter()
        .position(|c| {
            c.status == CellStatus::Secondary && c.coords[0] != Some(1) && c.coords[1] != Some(0)
        })
        .unwrap();
    t.cells[diagonal].status = CellStatus::Safe;
    let report = audit(&[&t], &rules, AuditMethod::HypercubesThenLinearPrograms).unwrap();
    assert_eq!(report.proven_by_hypercube, 0);
    assert!(report.lps_solved >= 2);
    assert!(!report.failures.is_empty());
}

#[test]
fn a_person_in_two_categories_counts_once_for_the_threshold_and_twice_in_the_rows() {
    // Twelve persons appear in both categories (two years, say): the total
    // has twelve distinct persons but 24 rows, and the rows add up.
    let mut contributions = Vec::new();
    for c in 0..2u32 {
        contributions.extend(people(&[c, 0], 12, 0));
        contributions.extend(people(&[c, 1], 4 + 10 * c as u64, 100 + 100 * c as u64));
        contributions.extend(people(&[c, 2], 30, 300 + 100 * c as u64));
    }
    let t = protect(
        &input("t", dims(&[2, 3]), contributions),
        &TableRules::default(),
    )
    .unwrap();
    let margin = cell(&t, &[None, Some(0)]);
    assert_eq!((margin.contributors, margin.rows), (12, 24));
    assert_eq!(
        cell(&t, &[Some(0), Some(1)]).status,
        CellStatus::PrimaryThreshold
    );
    assert!(t.audit.failures.is_empty());
    assert!(t.audit.cells_checked >= 1);
}

#[test]
fn dominance_and_p_percent_apply_per_contributor() {
    let mut contributions = Vec::new();
    // Cell 0: 900 and eleven of 5: the top two hold 95% (dominance), and
    // without dominance the rest (50) is under 10% of the largest (p%).
    for i in 0..12u64 {
        let v = if i == 0 { 900.0 } else { 5.0 };
        contributions.push(Contribution {
            coords: vec![0],
            contributor: i,
            values: vec![v],
        });
    }
    // Cell 1: the two largest hold 80% of 1,000 and the rest is 20% of
    // the largest (400): p% (10) passes, dominance (2,85) passes.
    for (i, v) in [400.0, 400.0]
        .into_iter()
        .chain(std::iter::repeat_n(20.0, 10))
        .enumerate()
    {
        contributions.push(Contribution {
            coords: vec![1],
            contributor: 100 + i as u64,
            values: vec![v],
        });
    }
    // Cell 2: 500, 460 and ten of 4: the top two hold 96% (dominance);
    // without dominance the rest (40) is under 10% of 500 (p%).
    for (i, v) in [500.0, 460.0]
        .into_iter()
        .chain(std::iter::repeat_n(4.0, 10))
        .enumerate()
    {
        contributions.push(Contribution {
            coords: vec![2],
            contributor: 200 + i as u64,
            values: vec![v],
        });
    }
    // A contributor split over two rows of one cell is one contributor.
    contributions.push(Contribution {
        coords: vec![1],
        contributor: 100,
        values: vec![0.0],
    });
    let mut input = input("m", dims(&[3]), contributions);
    input.measures = vec!["cost".into()];
    let t = protect(&input, &TableRules::default()).unwrap();
    assert_eq!(t.cells[0].status, CellStatus::PrimaryDominance);
    assert_eq!(t.cells[1].status, CellStatus::Safe);
    assert_eq!(t.cells[1].contributors, 12);
    assert_eq!(t.cells[1].rows, 13);
    assert_eq!(t.cells[2].status, CellStatus::PrimaryDominance);
    let no_dominance = TableRules {
        dominance: None,
        ..TableRules::default()
    };
    let t = protect(&input, &no_dominance).unwrap();
    assert_eq!(t.cells[0].status, CellStatus::PrimaryPPercent);
    assert_eq!(t.cells[2].status, CellStatus::PrimaryPPercent);
    assert!(t.audit.failures.is_empty());
}

#[test]
fn zeros_are_safe_unless_configured() {
    let input = counts_table(&[&[20, 0, 25], &[30, 40, 22], &[15, 18, 50]]);
    let t = protect(&input, &TableRules::default()).unwrap();
    assert_eq!(cell(&t, &[Some(0), Some(1)]).status, CellStatus::Empty);
    assert!(t.cells.iter().all(|c| !c.status.is_suppressed()));
    let rules = TableRules {
        zeros_unsafe: true,
        ..TableRules::default()
    };
    let t = protect(&input, &rules).unwrap();
    assert_eq!(
        cell(&t, &[Some(0), Some(1)]).status,
        CellStatus::PrimaryThreshold
    );
    assert!(t.audit.failures.is_empty());
    assert!(
        t.cells
            .iter()
            .filter(|c| c.status == CellStatus::Secondary)
            .count()
            >= 3
    );
}

/// Released tables say `safe`, `empty` or `suppressed`: never which
/// suppressed cells were unsafe themselves.
#[test]
fn the_released_status_never_tells_primary_from_secondary() {
    for status in [
        CellStatus::Safe,
        CellStatus::Empty,
        CellStatus::PrimaryThreshold,
        CellStatus::PrimaryDominance,
        CellStatus::PrimaryPPercent,
        CellStatus::PrimaryClass,
        CellStatus::Secondary,
    ] {
        let code = status.released_code();
        assert!(["safe", "empty", "suppressed"].contains(&code), "{code}");
        assert_eq!(code == "suppressed", status.is_suppressed());
    }
    let t = protect(
        &counts_table(&[&[20, 30, 25], &[3, 40, 22], &[15, 18, 50]]),
        &TableRules::default(),
    )
    .unwrap();
    let codes: std::collections::BTreeSet<&str> =
        t.cells.iter().map(|c| c.status.released_code()).collect();
    assert_eq!(codes, ["safe", "suppressed"].into_iter().collect());
}

/// A group whose rows all fall in the sensitive category: the zero beside
/// it says so of everyone in it.
#[test]
fn a_zero_beside_a_sensitive_category_is_unsafe_and_protected() {
    // Sector 0: nobody without GGZ care, 15 with. Sector 1: 20 and 12.
    // Sector 2: 0 and 0 (an empty group says nothing).
    let grid: &[&[u64]] = &[&[0, 15], &[20, 12], &[0, 0], &[25, 30]];
    let mut plain = counts_table(grid);
    let t = protect(&plain, &TableRules::default()).unwrap();
    assert_eq!(cell(&t, &[Some(0), Some(0)]).status, CellStatus::Empty);
    assert!(t.cells.iter().all(|c| !c.status.is_suppressed()));
    // Column 1 is the sensitive category.
    plain.dimensions[1].sensitive = vec![1];
    let rules = TableRules::default();
    let t = protect(&plain, &rules).unwrap();
    let zero = cell(&t, &[Some(0), Some(0)]);
    assert_eq!(zero.status, CellStatus::PrimaryClass);
    assert_eq!(
        cell(&t, &[Some(2), Some(0)]).status,
        CellStatus::Empty,
        "an empty group tells nothing"
    );
    // The group's sensitive count or its margin goes with it: a reader
    // can no longer tell that nobody in sector 0 is without care.
    assert!(
        cell(&t, &[Some(0), Some(1)]).status.is_suppressed()
            || cell(&t, &[Some(0), None]).status.is_suppressed()
    );
    let report = lp_audit(&[&t], &rules);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // The zero cell can hold a threshold's worth for all a reader knows.
    let views = [t.view_for_tests()];
    let links = audit::Links::new(&views);
    let out = audit::audit_system(&views, &links, &rules, AuditMethod::LinearPrograms);
    let zero_index = t
        .cells
        .iter()
        .position(|c| c.coords == [Some(0), Some(0)])
        .unwrap();
    let interval = out
        .intervals
        .iter()
        .find(|i| i.cell == zero_index && i.quantity == 0)
        .unwrap();
    assert!(interval.upper >= 10.0 - 1e-6, "{interval:?}");
    // Left published, the zero is caught by the audit.
    let mut open = t.clone();
    for c in &mut open.cells {
        if c.status == CellStatus::Secondary {
            c.status = CellStatus::Safe;
        }
    }
    assert!(!lp_audit(&[&open], &rules).failures.is_empty());
}

impl ProtectedTable {
    fn view_for_tests(&self) -> audit::View<'_> {
        let shape =
            Shape::new(self.dimensions.iter().map(|d| d.categories.len()).collect()).unwrap();
        audit::View {
            name: &self.name,
            shape,
            dimensions: &self.dimensions,
            cells: &self.cells,
            measures: &self.measures,
            ratio: self.ratio,
            public: &self.public,
            link: self.link.as_ref(),
        }
    }
}

/// Absence days: a person-year holds at most 366. The rows are public (a
/// person table: the file gives every count); the days are not.
fn absence_table(max: Option<f64>) -> TableInput {
    let mut contributions = Vec::new();
    let mut known = Vec::new();
    // Category 0: three persons of 300 days; category 1: ten of 360.
    for (c, n, days) in [(0u32, 3u64, 300.0), (1, 10, 360.0)] {
        for i in 0..n {
            contributions.push(Contribution {
                coords: vec![c],
                contributor: c as u64 * 100 + i,
                values: vec![days],
            });
            known.push(KnownRow {
                coords: vec![c],
                bounds: vec![(1.0, 1.0), (0.0, max.unwrap_or(f64::INFINITY))],
            });
        }
    }
    TableInput {
        name: "absence".into(),
        dimensions: dims(&[2]),
        measures: vec![Measure {
            name: "absence_days".into(),
            max_per_row: max,
        }],
        ratio: None,
        contributions,
        counted: Vec::new(),
        known: Some(known),
        link: None,
    }
}

#[test]
fn a_known_maximum_pins_what_the_audit_without_it_passes() {
    let rules = TableRules::default();
    let free = protect(&absence_table(None), &rules).unwrap();
    assert_eq!(free.public, [true, false], "counts public, days not");
    assert_eq!(free.cells[0].status, CellStatus::PrimaryThreshold);
    // Without the bound, the cheapest pattern suppresses the other
    // category and publishes the total: 900 of 4,500 days could be
    // anywhere in [0, 4500].
    assert_eq!(free.cells[1].status, CellStatus::Secondary);
    assert_eq!(free.cells[2].status, CellStatus::Safe);
    assert!(lp_audit(&[&free], &rules).failures.is_empty());
    // With it, the other category holds at most 10 × 366 = 3,660, so the
    // small one at least 4,500 − 3,660 = 840: within 30% of 900.
    let bounded_input = absence_table(Some(366.0));
    let mut pinned = protect(&bounded_input, &rules).unwrap();
    for (c, f) in pinned.cells.iter_mut().zip(&free.cells) {
        c.status = f.status;
    }
    let report = lp_audit(&[&pinned], &rules);
    let f = report
        .failures
        .iter()
        .find(|f| f.quantity == 1)
        .expect("the bound pins the days");
    assert!((f.lower - 840.0).abs() < 1e-3, "{f:?}");
    // Protection with the bound suppresses the total instead.
    let bounded = protect(&bounded_input, &rules).unwrap();
    assert!(bounded.cells[2].status.is_suppressed());
    assert!(lp_audit(&[&bounded], &rules).failures.is_empty());
    assert_eq!(bounded.measures[0].max_per_row, Some(366.0));
}

#[test]
fn a_maximum_the_data_exceed_is_raised_not_trusted() {
    let mut input = absence_table(Some(200.0));
    for k in input.known.as_mut().unwrap() {
        k.bounds[1].1 = 400.0;
    }
    let t = protect(&input, &TableRules::default()).unwrap();
    assert_eq!(t.measures[0].max_per_row, Some(360.0));
    assert!(lp_audit(&[&t], &TableRules::default()).failures.is_empty());
}

/// Two tables of the same persons: sector × contract and sector × age.
/// They share the sector margin (and the grand total).
fn linked_pair(grid_b: &[&[u64]], split: &[&[u64]]) -> [TableInput; 2] {
    // grid_b[a][b]: persons in sector a, contract b; `split[a]` spreads
    // sector a's persons over age bands in order.
    let mut t1 = Vec::new();
    let mut t2 = Vec::new();
    let mut next = 0u64;
    for (a, row) in grid_b.iter().enumerate() {
        let mut persons = Vec::new();
        for (b, &n) in row.iter().enumerate() {
            for _ in 0..n {
                t1.push(Contribution {
                    coords: vec![a as u32, b as u32],
                    contributor: next,
                    values: vec![],
                });
                persons.push(next);
                next += 1;
            }
        }
        let mut it = persons.into_iter();
        for (c, &n) in split[a].iter().enumerate() {
            for p in it.by_ref().take(n as usize) {
                t2.push(Contribution {
                    coords: vec![a as u32, c as u32],
                    contributor: p,
                    values: vec![],
                });
            }
        }
        assert!(it.next().is_none(), "split covers the sector");
    }
    let link = |second: &str| Link {
        population: "persons".into(),
        dimensions: vec!["sector".into(), second.into()],
    };
    let mut a = input("by_contract", dims(&[grid_b.len(), grid_b[0].len()]), t1);
    a.dimensions[0].name = "sector".into();
    a.link = Some(link("contract"));
    let mut b = input("by_age", dims(&[split.len(), split[0].len()]), t2);
    b.dimensions[0].name = "sector".into();
    b.link = Some(link("age"));
    [a, b]
}

#[test]
fn tables_sharing_a_margin_are_audited_and_protected_together() {
    // Sector 2 has one person on contract 1: in sector × contract it is
    // protected with cells whose sum the sector margin gives — and the
    // sector × age table publishes sector 2's margin. Alone each table
    // passes its audit; together the one person is exact.
    let contract: &[&[u64]] = &[&[0, 10, 0], &[17, 22, 38], &[12, 1, 18]];
    let age: &[&[u64]] = &[&[3, 2, 5], &[17, 30, 30], &[9, 1, 21]];
    let [a, b] = linked_pair(contract, age);
    let rules = TableRules::default();
    let alone_a = protect(&TableInput { link: None, ..a }, &rules).unwrap();
    let alone_b = protect(&TableInput { link: None, ..b }, &rules).unwrap();
    assert!(lp_audit(&[&alone_a], &rules).failures.is_empty());
    assert!(lp_audit(&[&alone_b], &rules).failures.is_empty());
    // The same patterns, known to count the same persons.
    let [a, b] = linked_pair(contract, age);
    let link_a = a.link.clone();
    let link_b = b.link.clone();
    let (mut joint_a, mut joint_b) = (alone_a.clone(), alone_b.clone());
    joint_a.link = link_a;
    joint_b.link = link_b;
    let report = lp_audit(&[&joint_a, &joint_b], &rules);
    assert!(
        report.shared_cells >= 4,
        "three sectors and the grand total"
    );
    let f = report
        .failures
        .iter()
        .find(|f| f.table == "by_contract" && f.coords == [Some(2), Some(1)])
        .unwrap_or_else(|| panic!("not caught: {:?}", report.failures));
    assert!(f.upper - f.lower < 1e-6, "pinned: {f:?}");
    // Protected as one set: the shared margin is suppressed in both
    // tables or in neither, and the joint audit passes.
    let set = protect_linked(&[a, b], &rules).unwrap();
    assert_eq!(set[0].linked_with, ["by_age"]);
    for s in 0..3 {
        let in_a = cell(&set[0], &[Some(s), None]).status.is_suppressed();
        let in_b = cell(&set[1], &[Some(s), None]).status.is_suppressed();
        assert_eq!(in_a, in_b, "sector {s}");
    }
    let report = lp_audit(&[&set[0], &set[1]], &rules);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(set[0].audit.failures.is_empty());
}

#[test]
fn tables_that_share_only_what_a_file_publishes_are_not_linked() {
    // Two person tables over the same rows: their counts are the file's
    // (public), so their shared margins need no joint protection; a
    // measure the file does not publish, in both, does.
    let pair = |with_measure: bool| {
        let [mut a, mut b] = linked_pair(
            &[&[4, 20, 30], &[25, 30, 22]],
            &[&[20, 20, 14], &[30, 27, 20]],
        );
        for t in [&mut a, &mut b] {
            t.known = Some(
                t.contributions
                    .iter()
                    .map(|c| KnownRow {
                        coords: c.coords.clone(),
                        bounds: if with_measure {
                            vec![(1.0, 1.0), (0.0, 10.0)]
                        } else {
                            vec![(1.0, 1.0)]
                        },
                    })
                    .collect(),
            );
            if with_measure {
                t.measures = vec![Measure {
                    name: "days".into(),
                    max_per_row: Some(10.0),
                }];
                for c in &mut t.contributions {
                    c.values = vec![(c.contributor % 10) as f64];
                }
            }
        }
        protect_linked(&[a, b], &TableRules::default()).unwrap()
    };
    let counts = pair(false);
    assert!(counts[0].public[0] && counts[0].linked_with.is_empty());
    let days = pair(true);
    assert_eq!(days[0].public, [true, false]);
    assert_eq!(days[0].linked_with, ["by_age"]);
    assert!(
        lp_audit(&[&days[0], &days[1]], &TableRules::default())
            .failures
            .is_empty()
    );
}

/// Tables of 1 to 4 dimensions with sparse small cells.
fn random_table() -> impl Strategy<Value = (Vec<usize>, Vec<(Vec<u32>, u64)>)> {
    proptest::collection::vec(2usize..5, 1..5).prop_flat_map(|sizes| {
        let cells: usize = sizes.iter().product();
        let sizes2 = sizes.clone();
        proptest::collection::vec(
            prop_oneof![8 => 10u64..60, 1 => 1u64..10, 1 => Just(0u64)],
            cells,
        )
        .prop_map(move |counts| {
            let mut out = Vec::new();
            for (i, n) in counts.into_iter().enumerate() {
                let mut rest = i;
                let mut coords = vec![0u32; sizes2.len()];
                for d in (0..sizes2.len()).rev() {
                    coords[d] = (rest % sizes2[d]) as u32;
                    rest /= sizes2[d];
                }
                out.push((coords, n));
            }
            (sizes.clone(), out)
        })
    })
}

/// Every primary cell's hypercube proof never claims more room than the
/// programs find, for the given pattern.
fn hypercubes_are_sound(t: &ProtectedTable, rules: &TableRules) -> Result<(), TestCaseError> {
    let view = t.view_for_tests();
    let views = [view];
    let links = audit::Links::new(&views);
    let lp = audit::audit_system(&views, &links, rules, AuditMethod::LinearPrograms);
    let quantities = quantities(&t.cells);
    let rooms = rooms(&t.cells, &t.measures, t.ratio, &t.public);
    let usable: Vec<bool> = t.cells.iter().map(|c| c.status.is_suppressed()).collect();
    for i in lp
        .intervals
        .iter()
        .filter(|i| i.table == 0 && !i.proven_by_hypercube)
    {
        let values = &quantities[i.quantity];
        if (i.upper - i.lower).abs() < 1e-12 && i.lower == values[i.cell] {
            continue; // nothing to protect: not solved
        }
        let proofs = audit::hypercube_bounds(&views[0].shape, i.cell, &usable, &quantities, &rooms);
        let (down, up) = proofs[i.quantity];
        let tol = 1e-6 * values[i.cell].max(1.0);
        prop_assert!(
            values[i.cell] - down >= i.lower - tol,
            "cell {} q {}: hypercube says down {down}, LP lower {}",
            i.cell,
            i.quantity,
            i.lower
        );
        prop_assert!(
            values[i.cell] + up <= i.upper + tol,
            "cell {} q {}: hypercube says up {up}, LP upper {}",
            i.cell,
            i.quantity,
            i.upper
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn secondary_suppression_always_passes_an_independent_audit(
        (sizes, counts) in random_table(),
        max in prop_oneof![Just(None), Just(Some(7.0)), Just(Some(9.0))],
        file in any::<bool>(),
    ) {
        let mut contributions = Vec::new();
        let mut known = Vec::new();
        let mut next = 0;
        for (coords, n) in &counts {
            for i in 0..*n {
                // Every third row belongs to someone who is also in an
                // earlier cell (a person in two years, two age bands):
                // distinct contributors then no longer add up along the
                // margins, the published row counts still must.
                let contributor = if i % 3 == 2 && next > 0 { i % next } else { next + i };
                let v = (i % 7 + 1) as f64;
                contributions.push(Contribution {
                    coords: coords.clone(),
                    contributor,
                    values: vec![v],
                });
                // A file that publishes the rows and a class of each value.
                known.push(KnownRow {
                    coords: coords.clone(),
                    bounds: vec![(1.0, 1.0), ((v - 2.0).max(0.0), v + 1.0)],
                });
            }
            next += n;
        }
        let input = TableInput {
            name: "p".into(),
            dimensions: dims(&sizes),
            measures: vec![Measure { name: "v".into(), max_per_row: max }],
            ratio: None,
            contributions,
            counted: Vec::new(),
            known: file.then_some(known),
            link: None,
        };
        let rules = TableRules { dominance: None, p_percent: None, ..TableRules::default() };
        let t = protect(&input, &rules).unwrap();
        let shape = Shape::new(sizes.clone()).unwrap();
        for (i, c) in t.cells.iter().enumerate() {
            // Status follows the rules.
            let expect_primary = c.contributors > 0 && c.contributors < rules.threshold;
            prop_assert_eq!(c.status.is_primary(), expect_primary);
            if c.contributors == 0 {
                prop_assert!(c.status == CellStatus::Empty || c.status == CellStatus::Secondary);
            }
            // Totals are the sums of their children.
            let coords = shape.coords(i);
            for d in 0..sizes.len() {
                if shape.is_total(d, coords[d]) {
                    let mut child = coords.clone();
                    let mut sum = 0;
                    for k in 0..sizes[d] {
                        child[d] = k;
                        sum += t.cells[shape.index(&child)].rows;
                    }
                    prop_assert_eq!(sum, c.rows);
                }
            }
        }
        // An independent audit of the returned pattern.
        let report = lp_audit(&[&t], &rules);
        prop_assert!(report.failures.is_empty(), "{:?}", report.failures);
        // What a hypercube proves is never more than the programs allow:
        // the shortcut is sound, within bounds too.
        hypercubes_are_sound(&t, &rules)?;
        // And the plain argument: without a file, no relation holds
        // exactly one suppressed cell (it would be its total minus the
        // others).
        if !file {
            for r in shape.relations() {
                let n = r.iter().filter(|&&c| t.cells[c].status.is_suppressed()).count();
                prop_assert!(n != 1);
            }
        }
    }

    #[test]
    fn linked_tables_always_pass_their_joint_audit(
        rows in proptest::collection::vec((0u32..3, 0u32..3, 0u32..3, 1u64..12), 4..14),
    ) {
        // Groups of persons with a sector, a contract and an age band:
        // two tables of the same persons, sharing the sector margin.
        let (mut t1, mut t2) = (Vec::new(), Vec::new());
        let mut next = 0u64;
        for &(a, b, c, n) in &rows {
            for _ in 0..n {
                t1.push(Contribution { coords: vec![a, b], contributor: next, values: vec![] });
                t2.push(Contribution { coords: vec![a, c], contributor: next, values: vec![] });
                next += 1;
            }
        }
        let link = |second: &str| Some(Link {
            population: "persons".into(),
            dimensions: vec!["sector".into(), second.into()],
        });
        let mut a = input("a", dims(&[3, 3]), t1);
        a.link = link("contract");
        let mut b = input("b", dims(&[3, 3]), t2);
        b.link = link("age");
        let rules = TableRules::default();
        let set = protect_linked(&[a, b], &rules).unwrap();
        let report = lp_audit(&[&set[0], &set[1]], &rules);
        prop_assert!(report.failures.is_empty(), "{:?}", report.failures);
        for s in (0..3).map(Some).chain([None]) {
            prop_assert_eq!(
                cell(&set[0], &[s, None]).status.is_suppressed(),
                cell(&set[1], &[s, None]).status.is_suppressed()
            );
        }
    }
}

#[test]
fn a_column_of_small_cells_and_its_small_margin_are_all_protected() {
    // Column 0 is small everywhere, its margin (7) included: no hypercube
    // lets the margin move down, so its protection comes from its own
    // lines and from cells beyond them, and the programs must agree.
    let input = counts_table(&[&[2, 40, 35], &[2, 30, 25], &[2, 28, 50], &[1, 45, 33]]);
    let rules = TableRules::default();
    let t = protect(&input, &rules).unwrap();
    assert_eq!(
        cell(&t, &[None, Some(0)]).status,
        CellStatus::PrimaryThreshold
    );
    let lp = lp_audit(&[&t], &rules);
    assert!(lp.failures.is_empty(), "{:?}", lp.failures);
}

#[test]
fn a_dimension_without_categories_gives_an_empty_table_not_an_error() {
    // One year of data: nobody can have left by the next, so "left the
    // sector" has no category at all and no row has a place in the table.
    let t = protect(&input("t", dims(&[3, 0]), vec![]), &TableRules::default()).unwrap();
    assert_eq!(t.cells.len(), 4);
    assert!(
        t.cells
            .iter()
            .all(|c| c.status == CellStatus::Empty && c.rows == 0)
    );
    assert!(t.cells.iter().all(|c| c.coords[1].is_none()));
}

#[test]
fn counted_contributors_tabulate_as_one_contribution_each() {
    let grid: &[&[u64]] = &[&[20, 30, 0], &[3, 40, 22], &[15, 1, 50]];
    let each = counts_table(grid);
    let mut counted = input("t", dims(&[3, 3]), Vec::new());
    for (r, row) in grid.iter().enumerate() {
        for (c, &units) in row.iter().enumerate() {
            counted.counted.push(CountedUnits {
                coords: vec![r as u32, c as u32],
                units,
            });
        }
    }
    let (a, b) = (
        protect(&each, &TableRules::default()).unwrap(),
        protect(&counted, &TableRules::default()).unwrap(),
    );
    let view = |t: &ProtectedTable| {
        t.cells
            .iter()
            .map(|c| (c.coords.clone(), c.contributors, c.rows, c.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(view(&a), view(&b));
    assert_eq!(cell(&b, &[None, None]).contributors, 181);

    // Counts carry no values: a table with measures refuses them.
    let mut with_measure = absence_table(None);
    with_measure.counted.push(CountedUnits {
        coords: vec![0],
        units: 5,
    });
    assert!(matches!(
        protect(&with_measure, &TableRules::default()),
        Err(TableError::CountedWithMeasures)
    ));
}
