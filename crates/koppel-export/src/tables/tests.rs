use super::*;
use proptest::prelude::*;

fn dims(sizes: &[usize]) -> Vec<Dimension> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, n)| Dimension {
            name: format!("d{i}"),
            categories: (0..*n).map(|c| format!("c{c}")).collect(),
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

fn counts_table(grid: &[&[u64]]) -> TableInput {
    let mut contributions = Vec::new();
    let mut next = 0;
    for (r, row) in grid.iter().enumerate() {
        for (c, &n) in row.iter().enumerate() {
            contributions.extend(people(&[r as u32, c as u32], n, next));
            next += n;
        }
    }
    TableInput {
        name: "t".into(),
        dimensions: dims(&[grid.len(), grid[0].len()]),
        measures: vec![],
        contributions,
    }
}

fn cell<'a>(t: &'a ProtectedTable, coords: &[Option<u32>]) -> &'a Cell {
    t.cells.iter().find(|c| c.coords == coords).unwrap()
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
    let lp = audit(
        &t.dimensions,
        &t.cells,
        &TableRules::default(),
        AuditMethod::LinearPrograms,
    )
    .unwrap();
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
        let report = audit(&t.dimensions, &t.cells, &rules, method).unwrap();
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
    let report = audit(
        &t.dimensions,
        &t.cells,
        &rules,
        AuditMethod::HypercubesThenLinearPrograms,
    )
    .unwrap();
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
    let input = TableInput {
        name: "t".into(),
        dimensions: dims(&[2, 3]),
        measures: vec![],
        contributions,
    };
    let t = protect(&input, &TableRules::default()).unwrap();
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
    let input = TableInput {
        name: "m".into(),
        dimensions: dims(&[3]),
        measures: vec!["cost".into()],
        contributions,
    };
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn secondary_suppression_always_passes_an_independent_audit((sizes, counts) in random_table()) {
        let mut contributions = Vec::new();
        let mut next = 0;
        for (coords, n) in &counts {
            for i in 0..*n {
                // Every third row belongs to someone who is also in an
                // earlier cell (a person in two years, two age bands):
                // distinct contributors then no longer add up along the
                // margins, the published row counts still must.
                let contributor = if i % 3 == 2 && next > 0 { i % next } else { next + i };
                contributions.push(Contribution {
                    coords: coords.clone(),
                    contributor,
                    values: vec![(i % 7 + 1) as f64],
                });
            }
            next += n;
        }
        let input = TableInput { name: "p".into(), dimensions: dims(&sizes), measures: vec!["v".into()], contributions };
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
        let report = audit(&t.dimensions, &t.cells, &rules, AuditMethod::LinearPrograms).unwrap();
        prop_assert!(report.failures.is_empty(), "{:?}", report.failures);
        // What a hypercube proves is never more than the programs allow:
        // the shortcut is sound.
        let suppressed: Vec<bool> = t.cells.iter().map(|c| c.status.is_suppressed()).collect();
        let members: Vec<usize> = (0..t.cells.len()).filter(|&c| suppressed[c]).collect();
        let relations: Vec<Vec<usize>> =
            shape.relations().into_iter().filter(|r| r.iter().any(|&c| suppressed[c])).collect();
        let relations: Vec<&Vec<usize>> = relations.iter().collect();
        let var_of = |cell: usize| members.binary_search(&cell).ok();
        let quantities = quantities(&t.cells);
        for &p in members.iter().filter(|&&c| t.cells[c].status.is_primary()) {
            let proofs = audit::hypercube_bounds(&shape, p, &suppressed, &quantities);
            for (q, values) in quantities.iter().enumerate() {
                let (down, up) = proofs[q];
                let lower = audit::bound(&members, &relations, values, &var_of, p, microlp::OptimizationDirection::Minimize);
                let upper = audit::bound(&members, &relations, values, &var_of, p, microlp::OptimizationDirection::Maximize);
                let tol = 1e-6 * values[p].max(1.0);
                prop_assert!(values[p] - down >= lower - tol, "cell {p} q {q}: hypercube says down {down}, LP lower {lower}");
                prop_assert!(values[p] + up <= upper + tol, "cell {p} q {q}: hypercube says up {up}, LP upper {upper}");
            }
        }
        // And the plain argument: no relation holds exactly one suppressed
        // cell (it would be its total minus the others).
        for r in shape.relations() {
            let n = r.iter().filter(|&&c| t.cells[c].status.is_suppressed()).count();
            prop_assert!(n != 1);
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
    let lp = audit(&t.dimensions, &t.cells, &rules, AuditMethod::LinearPrograms).unwrap();
    assert!(lp.failures.is_empty(), "{:?}", lp.failures);
}

#[test]
fn a_dimension_without_categories_gives_an_empty_table_not_an_error() {
    // One year of data: nobody can have left by the next, so "left the
    // sector" has no category at all and no row has a place in the table.
    let input = TableInput {
        name: "t".into(),
        dimensions: dims(&[3, 0]),
        measures: vec![],
        contributions: vec![],
    };
    let t = protect(&input, &TableRules::default()).unwrap();
    assert_eq!(t.cells.len(), 4);
    assert!(
        t.cells
            .iter()
            .all(|c| c.status == CellStatus::Empty && c.rows == 0)
    );
    assert!(t.cells.iter().all(|c| c.coords[1].is_none()));
}
