//! Linking a synthetic sector: the models must recover the relationships
//! the synth crate planted (docs/synth.md), which a wrong join destroys;
//! the output must be byte-identical across runs and thread counts; and
//! `koppel link` must work from the command line.

use crate::util::koppel_command;
use koppel_testkit as support;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use koppel_join::{LinkConfig, link};
use koppel_synth::{SynthConfig, synthesise};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Large enough that the planted effects stand clear of sampling noise
/// among the survey's ~10% respondents: the smallest group, respondents
/// with GGZ claims, is about 320 here (at 60,000 persons, with about 160,
/// the GGZ effect drowned in noise). `KOPPEL_TEST_PERSONS` overrides it.
const PERSONS: usize = 120_000;

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A column of every batch as optional f64 (booleans as 0/1).
fn column(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    let mut values = Vec::new();
    for batch in batches {
        let c = batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("{name}"));
        let c = match c.data_type() {
            DataType::Boolean => cast(&cast(c, &DataType::Int64).unwrap(), &DataType::Float64),
            _ => cast(c, &DataType::Float64),
        }
        .unwrap();
        let c = c.as_primitive::<Float64Type>();
        values.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))));
    }
    values
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    sxy / (sxx * syy).sqrt()
}

fn rate(values: impl Iterator<Item = f64>) -> (f64, usize) {
    let v: Vec<f64> = values.collect();
    (v.iter().sum::<f64>() / v.len() as f64, v.len())
}

struct Sector {
    _dir: tempfile::TempDir,
    staged: PathBuf,
    root: PathBuf,
}

fn sector() -> Sector {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let persons = std::env::var("KOPPEL_TEST_PERSONS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(PERSONS);
    synthesise(&SynthConfig::new(persons, 2023..=2024, 7), &raw).unwrap();
    let staged = dir.path().join("staged");
    support::stage_raw(&raw, &staged);
    Sector {
        root: dir.path().to_owned(),
        _dir: dir,
        staged,
    }
}

#[test]
fn synthetic_sector_links_with_its_planted_relationships_intact() {
    let sector = sector();
    let out = sector.root.join("linked");
    let outcome = link(&sector.staged, &out, &LinkConfig::default()).unwrap();

    // Organisation model: absence percentage rises with the temporary
    // share and the irregularity allowance (organisations of 20 or more,
    // where a percentage means something).
    let orgs = read(&outcome.organisation_model);
    let year = column(&orgs, "year");
    let headcount = column(&orgs, "headcount");
    let absence = column(&orgs, "absence_pct");
    let temporary = column(&orgs, "temporary_share");
    let irregularity = column(&orgs, "mean_irregularity_share");
    let rows: Vec<usize> = (0..year.len())
        .filter(|&i| year[i] == Some(2023.0) && headcount[i].unwrap() >= 20.0)
        .collect();
    assert!(rows.len() > 50, "{} organisations", rows.len());
    let r_temporary = pearson(
        &rows
            .iter()
            .map(|&i| (temporary[i].unwrap(), absence[i].unwrap()))
            .collect::<Vec<_>>(),
    );
    let r_irregularity = pearson(
        &rows
            .iter()
            .map(|&i| (irregularity[i].unwrap(), absence[i].unwrap()))
            .collect::<Vec<_>>(),
    );
    eprintln!(
        "r(absence, temporary) = {r_temporary:.3}, r(absence, irregularity) = {r_irregularity:.3}"
    );
    assert!(
        r_temporary > 0.15,
        "r(absence, temporary) = {r_temporary:.3}"
    );
    assert!(
        r_irregularity > 0.15,
        "r(absence, irregularity) = {r_irregularity:.3}"
    );
    let mean_absence = rows.iter().map(|&i| absence[i].unwrap()).sum::<f64>() / rows.len() as f64;
    assert!(
        (4.0..10.0).contains(&mean_absence),
        "absence {mean_absence:.2}%"
    );

    // Person model: 25–34 year olds leave the sector more often than the
    // other respondents under 60 (over 60, retirement dominates leaving);
    // respondents with GGZ claims leave more often than insured ones
    // without.
    let people = read(&outcome.person_model);
    let year = column(&people, "year");
    let age = column(&people, "age");
    let left = column(&people, "left_sector");
    let ggz = column(&people, "ggz_any");
    let in_2023 = |i: &usize| year[*i] == Some(2023.0) && left[*i].is_some();
    let idx: Vec<usize> = (0..year.len()).filter(in_2023).collect();
    let (young, n_young) = rate(
        idx.iter()
            .filter(|&&i| (25.0..35.0).contains(&age[i].unwrap()))
            .map(|&i| left[i].unwrap()),
    );
    let (others, n_others) = rate(
        idx.iter()
            .filter(|&&i| !(25.0..35.0).contains(&age[i].unwrap()) && age[i].unwrap() < 60.0)
            .map(|&i| left[i].unwrap()),
    );
    eprintln!(
        "left the sector: 25-34 {young:.3} (n {n_young}), others under 60 {others:.3} (n {n_others})"
    );
    assert!(young > others * 1.25, "25-34 {young:.3} vs {others:.3}");
    let (with_ggz, n_with) = rate(
        idx.iter()
            .filter(|&&i| ggz[i] == Some(1.0))
            .map(|&i| left[i].unwrap()),
    );
    let (without_ggz, n_without) = rate(
        idx.iter()
            .filter(|&&i| ggz[i] == Some(0.0))
            .map(|&i| left[i].unwrap()),
    );
    eprintln!(
        "left the sector: GGZ {with_ggz:.3} (n {n_with}), insured without {without_ggz:.3} (n {n_without})"
    );
    let ggz_claims = column(&people, "ggz_claims");
    let (heavy, n_heavy) = rate(
        idx.iter()
            .filter(|&&i| ggz_claims[i].unwrap_or(0.0) >= 10.0)
            .map(|&i| left[i].unwrap()),
    );
    eprintln!("left the sector: GGZ heavy {heavy:.3} (n {n_heavy})");
    assert!(
        with_ggz > without_ggz * 1.2,
        "GGZ {with_ggz:.3} vs {without_ggz:.3}"
    );
    // Outcomes only where the next year is delivered.
    assert!(
        (0..year.len()).all(|i| year[i] != Some(2024.0) || left[i].is_none()),
        "no outcome for the last year"
    );

    // The linkage report shows IZZ's under-coverage of young workers.
    let report = &outcome.report;
    let coverage = |band: &str| {
        let cells = report
            .coverage
            .iter()
            .filter(|c| c.year == 2023 && c.age_band == band);
        let (insured, all) = cells.fold((0, 0), |(i, a), c| {
            (i + c.izz_insured_persons, a + c.payroll_persons)
        });
        insured as f64 / all as f64
    };
    assert!(coverage("25-34") < coverage("45-54") * 0.7);
    let survey = report
        .sources
        .iter()
        .find(|s| s.source == "izz_monitor")
        .unwrap();
    assert_eq!(
        survey.not_linked, 0,
        "every synthetic respondent works in the sector"
    );
    let payroll_rows: u64 = column(&orgs, "headcount")
        .iter()
        .map(|h| h.unwrap() as u64)
        .sum();
    assert!(payroll_rows > PERSONS as u64, "{payroll_rows}");

    // Same inputs, other thread count and memory limit: identical bytes.
    let again = sector.root.join("linked-again");
    let config = LinkConfig {
        target_partitions: Some(1),
        memory_limit: 256 << 20,
        ..LinkConfig::default()
    };
    let second = link(&sector.staged, &again, &config).unwrap();
    for (a, b) in [
        (&outcome.person_model, &second.person_model),
        (&outcome.workforce_model, &second.workforce_model),
        (&outcome.organisation_model, &second.organisation_model),
        (&outcome.report_path, &second.report_path),
    ] {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{} differs between runs",
            a.display()
        );
    }

    // The command line: the same result, a summary without pseudonyms,
    // and a refusal to overwrite.
    let cli_out = sector.root.join("linked-cli");
    let run = |out: &Path| {
        koppel_command()
            .args(["link", "--staged"])
            .arg(&sector.staged)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let output = run(&cli_out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("person model:") && stdout.contains("izz_monitor"),
        "{stdout}"
    );
    assert!(
        std::fs::read(cli_out.join(koppel_contract::files::linked::PERSON_MODEL_FILE)).unwrap()
            == std::fs::read(&outcome.person_model).unwrap()
    );
    let again = run(&cli_out);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
