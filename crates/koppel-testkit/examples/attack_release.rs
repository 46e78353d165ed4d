//! The independent attacker on one release directory, from its files alone
//! and, for the parties who do not know who responded, the linked folder
//! it was made from (the attack model is in `koppel_testkit::attack`).
//!
//! `cargo run --release -p koppel-testkit --example attack_release -- RELEASE [--linked DIR] [--k 10]`
//!
//! Prints per attacker where its persons were counted, the persons, those
//! at risk and their share, what it would find in the release alone, and
//! the columns it is assumed to know; then the null share of every released
//! variable and the planted relationships. `--linked` is the folder
//! `koppel link` wrote for this release (its workforce model is the
//! population); without it the population attackers are counted in the
//! release and flagged "(sample: no population given)", which overstates
//! their risk. `--k` applies only when the manifest declares no k. Exit
//! code 1 when any attacker finds more than 1% of persons at risk (for the
//! benchmark script), 2 when the release cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use koppel_testkit::attack::{
    self, Counted, DEFAULT_K, MAX_SHARE_AT_RISK, Population, Release, Trend, Utility,
};

const USAGE: &str = "usage: attack_release RELEASE-DIR [--linked LINKED-DIR] [--k K]";

struct Arguments {
    release: PathBuf,
    linked: Option<PathBuf>,
    k: usize,
}

fn arguments() -> Result<Arguments, String> {
    let mut release = None;
    let mut linked = None;
    let mut k = DEFAULT_K;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--k" => {
                k = args
                    .next()
                    .and_then(|k| k.parse().ok())
                    .filter(|&k| k > 0)
                    .ok_or("--k needs a whole number above 0")?;
            }
            "--linked" => {
                linked = Some(PathBuf::from(
                    args.next().ok_or("--linked needs the linked folder")?,
                ));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if release.is_none() && !arg.starts_with("--") => release = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}\n{USAGE}")),
        }
    }
    Ok(Arguments {
        release: release.ok_or(USAGE)?,
        linked,
        k,
    })
}

fn main() -> ExitCode {
    let args = match arguments() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args.release, args.linked.as_deref(), args.k) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("attack_release: {error}");
            ExitCode::from(2)
        }
    }
}

/// Prints the findings; true when every attacker stays within the threshold.
fn run(dir: &Path, linked: Option<&Path>, fallback_k: usize) -> Result<bool, attack::AttackError> {
    let release = Release::open(dir)?;
    let k = release.k_or(fallback_k);
    let k_from = if release.declared_k.is_some() {
        "manifest.json"
    } else {
        "--k"
    };
    println!("release {}: k = {k} ({k_from})", dir.display());
    for gap in release.provenance_gaps() {
        println!("provenance gap (no attacker assumed to know it): {gap}");
    }
    let population = match linked {
        Some(linked) => {
            let population = Population::from_linked(linked, &release)?;
            println!(
                "population: {} rows of {} persons from {}",
                population.rows,
                population.person_count(),
                linked.display()
            );
            for (column, why) in &population.missing {
                println!("  not in the population: {column} ({why})");
            }
            Some(population)
        }
        None => None,
    };
    println!();
    println!(
        "{:<9} {:<11} {:>8} {:>8} {:>7}  {:>15}  columns assumed known",
        "attacker", "counted in", "persons", "at risk", "share", "release alone"
    );
    let attacks = release.attack_all(k, population.as_ref())?;
    for attack in &attacks {
        let e = &attack.exposure;
        let counted = match &attack.counted {
            Counted::SampleInstead(_) => "sample (!)".to_owned(),
            c => c.to_string(),
        };
        println!(
            "{:<9} {:<11} {:>8} {:>8} {:>6.2}%  {:>6} ({:>5.2}%)  {}",
            attack.attacker.name,
            counted,
            e.persons,
            e.at_risk,
            e.share() * 100.0,
            attack.in_release.at_risk,
            attack.in_release.share() * 100.0,
            attack.known.join(", ")
        );
        match &attack.counted {
            Counted::Population => println!(
                "{:<21} k-map: {} persons, {} of them below k in the population (fewest matching persons: {}){}{}",
                "",
                e.persons,
                e.below_k_in_population,
                e.smallest_population_count
                    .map_or("-".to_owned(), |n| n.to_string()),
                match e.below_k_in_population - e.at_risk {
                    0 => String::new(),
                    lifted => format!(", {lifted} of them in a class of k in the release"),
                },
                if e.persons_unmatched > 0 || e.rows_unmatched > 0 {
                    format!(
                        "; {} released persons match no population person, {} released rows no population row (population, labels or persons not the release's?)",
                        e.persons_unmatched, e.rows_unmatched
                    )
                } else {
                    String::new()
                }
            ),
            Counted::SampleInstead(why) => println!("{:<21} (sample: {why})", ""),
            Counted::Sample => {}
        }
    }
    let failing: Vec<&str> = attacks
        .iter()
        .filter(|a| a.fails())
        .map(|a| a.attacker.name)
        .collect();
    println!();
    print_utility(&attack::utility(&release)?);
    println!();
    if failing.is_empty() {
        println!(
            "every attacker at or below {:.0}% at risk",
            MAX_SHARE_AT_RISK * 100.0
        );
    } else {
        println!(
            "above {:.0}% at risk: {}",
            MAX_SHARE_AT_RISK * 100.0,
            failing.join(", ")
        );
    }
    Ok(failing.is_empty())
}

fn print_utility(utility: &Utility) {
    println!("null share per released variable (suppressed, withheld or unknown as linked):");
    for s in &utility.suppression {
        println!(
            "  {:<22} {:>7.2}%  ({} of {}){}",
            s.column,
            s.share() * 100.0,
            s.nulls,
            s.rows,
            if s.withheld() { "  withheld" } else { "" }
        );
    }
    println!("planted relationships, from the released files:");
    println!("  (a) leaving the employer, {}", utility.young_leavers);
    println!("  (b) leaving the employer, {}", utility.ggz_leavers);
    print_trend(&utility.absence_by_temporary_share);
}

fn print_trend(trend: &Trend) {
    print!("  (c) organisations' absence % by temporary share: ");
    if let Some(missing) = &trend.missing {
        println!("not measurable ({missing})");
        return;
    }
    let figure = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.3}"));
    println!(
        "{} organisation-years, correlation {}, slope {}",
        trend.pairs,
        figure(trend.correlation),
        figure(trend.slope)
    );
    for group in &trend.groups {
        println!(
            "    temporary share {:<14} {:>5} org-years, mean absence {:.2}%",
            group.temporary_share, group.organisation_years, group.mean_absence_pct
        );
    }
}
