//! Issue 21: a release stays anonymous against the parties who already hold
//! the data, verified from the written files alone and, for the parties who
//! do not know who responded, from the linked population. The attacks are
//! re-run by `koppel_testkit::attack`, which shares no code with the
//! disclosure engine; its module documentation is the attack model.
//!
//! The releases are the default demo's (20,000 workers), made by the binary
//! in an empty directory as an operator would: `koppel demo` (which keeps
//! no linked folder), then the demo's deliveries through `koppel unseal`,
//! `pseudonymise` and `link` one by one, so that the test holds the linked
//! folder — its workforce model is the population — and `koppel export`
//! from it with the default rules (the demo pipeline's).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use koppel_testkit::attack::{
    self, ATTACKERS, Counted, DEFAULT_K, MAX_SHARE_AT_RISK, Population, Reference, Release, Value,
};

use crate::util::{PASSPHRASE, koppel_command, text};

/// The demo keys' names for stage 2 and research IDs.
const STAGE2_KEY: &str = "stage2-preventieplan";
const RELEASE_KEY: &str = "release-preventieplan";

fn koppel_in(dir: &Path, args: &[&str]) -> Output {
    koppel_command()
        .args(args)
        .current_dir(dir)
        .env("KOPPEL_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("koppel runs")
}

fn ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed:\n{}", text(out));
}

fn path_text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// The default-size demo and its deliveries linked by hand, once for every
/// test here.
struct Operated {
    dir: tempfile::TempDir,
    /// `koppel demo --out demo`.
    demo: PathBuf,
    store: String,
    staging: String,
    staged: String,
    /// `koppel link`'s folder: the models the releases are made from.
    linked: PathBuf,
}

fn operated() -> &'static Operated {
    static OPERATED: OnceLock<Operated> = OnceLock::new();
    OPERATED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| path_text(&dir.path().join(name));
        ok(
            &koppel_in(dir.path(), &["demo", "--out", "demo"]),
            "koppel demo",
        );
        let demo = dir.path().join("demo");
        let store = path_text(&demo.join("keys/ttp.keystore.yaml"));
        let staging = at("staging");
        let mut unseal = vec!["unseal", "--store", &store, "--staging", &staging];
        let sealed: Vec<String> = files(&demo.join("inbox"))
            .iter()
            .map(|p| path_text(p))
            .collect();
        unseal.extend(sealed.iter().map(String::as_str));
        ok(&koppel_in(dir.path(), &unseal), "koppel unseal");
        let staged = at("staged");
        ok(
            &koppel_in(
                dir.path(),
                &[
                    "pseudonymise",
                    "--store",
                    &store,
                    "--key",
                    STAGE2_KEY,
                    "--staging",
                    &staging,
                    "--out",
                    &staged,
                ],
            ),
            "koppel pseudonymise",
        );
        let linked = at("linked");
        ok(
            &koppel_in(dir.path(), &["link", "--staged", &staged, "--out", &linked]),
            "koppel link",
        );
        Operated {
            demo,
            store,
            staging,
            staged,
            linked: PathBuf::from(linked),
            dir,
        }
    })
}

/// `koppel export` of the linked folder into `out` (under the operated
/// folder), with the default rules; `name` is `--release-name`.
fn export(out: &str, name: Option<&str>) -> PathBuf {
    let o = operated();
    let out = o.dir.path().join(out);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let (linked, out_text) = (path_text(&o.linked), path_text(&out));
    let mut args = vec![
        "export",
        "--store",
        &o.store,
        "--release-key",
        RELEASE_KEY,
        "--linked",
        &linked,
        "--staged",
        &o.staged,
        "--staging",
        &o.staging,
        "--out",
        &out_text,
    ];
    if let Some(name) = name {
        args.extend(["--release-name", name]);
    }
    ok(
        &koppel_in(o.dir.path(), &args),
        &format!("koppel export into {out_text}"),
    );
    out
}

/// The release the demo's pipeline run wrote.
fn demo_release() -> PathBuf {
    let releases: Vec<PathBuf> = std::fs::read_dir(operated().demo.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(releases.len(), 1, "the demo makes one release");
    releases.into_iter().next().unwrap()
}

/// `release-a`: exported from the test's own linked folder.
fn release_a() -> &'static Path {
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    RELEASE.get_or_init(|| export("one/release-a", None))
}

#[test]
fn every_declared_attacker_finds_at_most_one_percent_at_risk_in_the_demo_releases() {
    // The demo's own release (its linked folder is not kept; linking the
    // same deliveries again gives the same models: every released row must
    // find its own row in them), and one exported from the linked folder.
    let mut problems = Vec::new();
    let mut figures = Vec::new();
    for dir in [demo_release(), release_a().to_owned()] {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let release = Release::open(&dir).unwrap();
        // Every released column must say where it came from, or no attacker
        // would be assumed to know it and the check would pass by omission.
        let gaps = release.provenance_gaps();
        assert!(
            gaps.is_empty(),
            "{name}: person-file columns without a known source:\n  {}",
            gaps.join("\n  ")
        );
        // A release may not pass by declaring a smaller k than the documented one.
        let k = release.k_or(DEFAULT_K);
        assert!(k >= DEFAULT_K, "{name}: the manifest declares k = {k}");
        let population = Population::from_linked(&operated().linked, &release).unwrap();
        let attacks = release.attack_all(k, Some(&population)).unwrap();
        let reported = release.reported_recipients().unwrap();
        figures.push(format!(
            "{name}: k = {k}, population {} rows",
            population.rows
        ));
        for attack in &attacks {
            let a = attack.attacker;
            figures.push(format!("  {attack}"));
            // What the engine says it protected against must be what this
            // model derives from provenance, or one of the two is wrong.
            match reported.get(a.name) {
                None => problems.push(format!("{name}: the report has no recipient {}", a.name)),
                Some((reference, knows)) => {
                    let theirs: BTreeSet<&str> = knows.iter().map(String::as_str).collect();
                    let ours: BTreeSet<&str> = attack.known.iter().map(String::as_str).collect();
                    if theirs != ours {
                        problems.push(format!(
                            "{name}: {} knows {ours:?} here, {theirs:?} in the report",
                            a.name
                        ));
                    }
                    let expected = match a.reference {
                        Reference::Sample => "sample",
                        Reference::Population => "population",
                    };
                    // FWG knows only the year: where it is counted is moot.
                    if reference != expected && a.name != "fwg" {
                        problems.push(format!(
                            "{name}: {} is counted in the {expected} here, in the {reference} in the report",
                            a.name
                        ));
                    }
                }
            }
            if a.reference == Reference::Population && attack.counted != Counted::Population {
                problems.push(format!(
                    "{name}: {} was not counted in the population ({})",
                    a.name, attack.counted
                ));
            }
            if attack.exposure.rows_unmatched > 0 {
                problems.push(format!(
                    "{name}: {}: {} released rows match no population row: the population or its labels are not the release's",
                    a.name, attack.exposure.rows_unmatched
                ));
            }
            if attack.exposure.persons_unmatched > 0 {
                problems.push(format!(
                    "{name}: {}: {} released persons match no population person: the population's persons are not the release's",
                    a.name, attack.exposure.persons_unmatched
                ));
            }
            if attack.fails() {
                problems.push(format!(
                    "{name}: {} finds more than {:.0}% of persons at risk at k = {k}",
                    a.name,
                    MAX_SHARE_AT_RISK * 100.0
                ));
            }
        }
    }
    // The figures, for `--nocapture` and for a failure.
    println!("{}", figures.join("\n"));
    assert!(
        problems.is_empty(),
        "{}\n\nfigures:\n{}",
        problems.join("\n"),
        figures.join("\n")
    );
    assert_eq!(ATTACKERS.len(), 6);
}

/// The province of a postcode is a table, not a rule: the attacker's copy
/// must be the engine's, or the population would be labelled otherwise
/// than the release (which `rows_unmatched` would also catch, but only for
/// postcodes in the data).
#[test]
fn the_attackers_postcode_regions_are_the_engines() {
    use koppel_export::hierarchy;
    for postcode in 0..=9999 {
        let ours = attack::province(postcode);
        assert_eq!(ours, hierarchy::province(postcode), "postcode {postcode}");
        if let Some(province) = ours {
            assert_eq!(
                attack::landsdeel(province),
                hierarchy::landsdeel(province),
                "{province}"
            );
        }
    }
}

// The synthetic sector plants the relationships (docs/synth.md); each is
// its own test, so a release that keeps one and loses the other says which.
// (b), GGZ users leave more, is not asserted: at 20,000 workers it does not
// hold even in the linked model (a few hundred insured respondents use GGZ
// care); `attack_release` still prints it.

/// (a) 25–34-year-olds leave more. At demo scale the release carries age in
/// 10-year bands (`20-29`, `30-39`): no band boundary falls at 25 or 35, so
/// the contrast is the bands that overlap 25–34 (20–39) against the bands
/// wholly outside them and under 60 (the sector plants retirement exits
/// from 60 on; docs/synth.md compares with "other ages under 60" too). The
/// 20–24 and 35–39-year-olds in the group dilute the effect but cannot
/// reverse it; with 5-year bands the group is 25–34 exactly.
#[test]
fn workers_aged_25_to_34_leave_more_in_the_demo_release() {
    let release = Release::open(&demo_release()).unwrap();
    let young = attack::utility(&release).unwrap().young_leavers;
    println!("(a) {young}");
    assert!(
        young.group_leaves_more(),
        "planted in the synthetic sector, not recoverable from the release: {young}"
    );
}

/// (c) Organisations' absence rises with their temporary-contract share.
#[test]
fn absence_rises_with_the_temporary_share_in_the_demo_release() {
    let release = Release::open(&demo_release()).unwrap();
    let trend = attack::utility(&release)
        .unwrap()
        .absence_by_temporary_share;
    println!("(c) {trend:?}");
    assert!(
        trend.rises(),
        "planted in the synthetic sector, not recoverable from the release: {trend:?}"
    );
}

/// The distinct values of `column`; empty when the release has no such
/// column (`org_id` is released only when asked for).
fn ids(release: &Path, column: &str) -> HashSet<Value> {
    let release = Release::open(release).unwrap();
    if release.persons.column_by_name(column).is_none() {
        return HashSet::new();
    }
    attack::distinct_values(&release.persons, column).unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Every file of `a` and `b`, byte for byte; the differences named.
fn compare_files(a: &Path, b: &Path, what: &str, problems: &mut Vec<String>) {
    let names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let (in_a, in_b) = (files(a), files(b));
    if names(&in_a) != names(&in_b) {
        problems.push(format!(
            "{what} has other files: {:?} vs {:?}",
            names(&in_a),
            names(&in_b)
        ));
        return;
    }
    for (x, y) in in_a.iter().zip(&in_b) {
        if std::fs::read(x).unwrap() != std::fs::read(y).unwrap() {
            problems.push(format!(
                "{} differs: {what}",
                x.file_name().unwrap().to_string_lossy()
            ));
        }
    }
}

#[test]
fn two_releases_share_no_person_id() {
    // The linked demo exported as release-a and release-b (two releases of
    // the same data with the same keys), as release-a again under another
    // parent, and under another folder name with --release-name release-a
    // (the same release each time).
    let a = release_a();
    let b = export("one/release-b", None);
    let a_again = export("two/release-a", None);
    let a_named = export("three/elsewhere", Some("release-a"));

    let mut problems = Vec::new();
    // Research IDs are compared, never printed.
    for column in ["person_id", "org_id"] {
        let (in_a, in_b) = (ids(a, column), ids(&b, column));
        if column == "person_id" {
            assert!(!in_a.is_empty(), "release-a has no {column}");
        }
        let shared = in_a.intersection(&in_b).count();
        if shared > 0 {
            problems.push(format!(
                "{shared} of release-a's {} {column}s ({:.1}%) are also in release-b",
                in_a.len(),
                shared as f64 * 100.0 / in_a.len() as f64
            ));
        }
    }
    // The release's name decides its research IDs, not where it is written.
    compare_files(a, &a_again, "release-a under another parent", &mut problems);
    compare_files(
        a,
        &a_named,
        "release-a written as three/elsewhere with --release-name release-a",
        &mut problems,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
