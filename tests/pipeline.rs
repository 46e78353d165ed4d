//! The operator's pipeline end to end, through the `koppel` binary:
//! `koppel demo` on a small synthetic sector, then `koppel run` over copies
//! of its inbox with a tampered, a replayed, a missing and a failing
//! delivery — each a clear failure with no release — a rerun after the fix,
//! byte-identical releases, and the audit trail verifying until edited.

use crate::util::{PASSPHRASE, koppel_command, repo, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use koppel_ingest::DeliveryManifest;
use koppel_pseudonymise::{PartnerKeys, seal};

const PERSONS: &str = "2000";

fn koppel(args: &[&str]) -> Output {
    koppel_command()
        .args(args)
        .current_dir(repo())
        .env("KOPPEL_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("koppel runs")
}

fn ok(out: &Output, what: &str) -> String {
    let t = text(out);
    assert!(out.status.success(), "{what} failed:\n{t}");
    t
}

fn failed(out: &Output, what: &str) -> String {
    let t = text(out);
    assert!(!out.status.success(), "{what} should have failed:\n{t}");
    t
}

/// One demo per test binary: its inbox, keys and first release are the
/// fixtures every test copies. It runs in an empty temporary directory, as
/// after `cargo install`: no checkout to find the pipeline, the source
/// specs or the demo keys in, so it proves the built-in defaults.
struct Demo {
    _dir: tempfile::TempDir,
    out: PathBuf,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let result = koppel_command()
            .args(["demo", "--persons", PERSONS, "--out", "demo"])
            .current_dir(dir.path())
            .env("KOPPEL_PASSPHRASE", PASSPHRASE)
            .output()
            .expect("koppel runs");
        ok(&result, "koppel demo in an empty directory");
        let out = dir.path().join("demo");
        Demo { _dir: dir, out }
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// A fresh operator's corner: a copy of the demo's inbox, an empty state
/// directory and release folder.
struct Operator {
    dir: tempfile::TempDir,
}

impl Operator {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        for f in files(&demo().out.join("inbox")) {
            std::fs::copy(&f, inbox.join(f.file_name().unwrap())).unwrap();
        }
        Operator { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn inbox(&self, file: &str) -> PathBuf {
        self.path("inbox").join(file)
    }

    fn run_in(&self, inbox: &str) -> Output {
        koppel(&[
            "run",
            "pipelines/preventieplan.yaml",
            "--inbox",
            self.path(inbox).to_str().unwrap(),
            "--release-dir",
            self.path("releases").to_str().unwrap(),
            "--state",
            self.path("state").to_str().unwrap(),
            "--store",
            demo().out.join("keys/ttp.keystore.yaml").to_str().unwrap(),
        ])
    }

    fn run(&self) -> Output {
        self.run_in("inbox")
    }

    fn releases(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.path("releases")) {
            Ok(entries) => {
                let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
                dirs.sort();
                dirs
            }
            Err(_) => Vec::new(),
        }
    }

    fn state(&self, args: &[&str]) -> String {
        let state = self.path("state");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--state", state.to_str().unwrap()]);
        ok(&koppel(&all), &args.join(" "))
    }
}

fn sha256sum_check(release: &Path) {
    let sums = std::fs::read_to_string(release.join("SHA256SUMS")).unwrap();
    let mut names = Vec::new();
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").unwrap();
        let (actual, _) = koppel_export::release::sha256_file(&release.join(name)).unwrap();
        assert_eq!(actual, sum, "{name}");
        names.push(name.to_owned());
    }
    for expected in [
        "persons.parquet",
        "organisations.parquet",
        "report.html",
        "codebook.md",
        "manifest.json",
        "disclosure-report.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in SHA256SUMS"
        );
    }
}

#[test]
fn the_demo_writes_a_release_that_verifies_with_its_report_and_records() {
    let out = &demo().out;
    let releases: Vec<PathBuf> = files_or_dirs(&out.join("releases"));
    assert_eq!(releases.len(), 1, "{releases:?}");
    let release = &releases[0];
    sha256sum_check(release);
    let report = std::fs::read_to_string(release.join("report.html")).unwrap();
    assert!(report.contains("<svg"), "the report has charts");
    assert!(!report.contains("<script"), "the report runs no scripts");
    // The operator's copy of the report beside the run's summary.
    let run_dir = out.join("state/runs/preventieplan/run-1");
    assert_eq!(
        std::fs::read(run_dir.join("report.html")).unwrap(),
        report.as_bytes()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["deliveries"].as_array().unwrap().len(), 13);

    let state = out.join("state");
    let state = state.to_str().unwrap();
    let runs = ok(&koppel(&["runs", "list", "--state", state]), "runs list");
    assert!(runs.contains("succeeded"), "{runs}");
    let show = ok(
        &koppel(&["runs", "show", "1", "--state", state]),
        "runs show",
    );
    for stage in ["receive", "pseudonymise", "link", "export"] {
        assert!(show.contains(&format!("stage {stage}")), "{show}");
    }
    // The leak guard learnt both pseudonym layers while stage 2 ran: at
    // least a stage-1 and a stage-2 fingerprint for every person and
    // employer on the payroll.
    // The run staged nothing in clear; the operator unseals the payroll to
    // count its identifiers.
    let unsealed = tempfile::tempdir().unwrap();
    let store = out.join("keys/ttp.keystore.yaml");
    let inbox = out.join("inbox");
    ok(
        &koppel(&[
            "unseal",
            "--store",
            store.to_str().unwrap(),
            "--staging",
            unsealed.path().to_str().unwrap(),
            inbox
                .join("pfzw_dienstverbanden_2023.csv.sealed")
                .to_str()
                .unwrap(),
            inbox
                .join("pfzw_dienstverbanden_2024.csv.sealed")
                .to_str()
                .unwrap(),
        ]),
        "unseal the payroll",
    );
    let mut payroll_ids = std::collections::HashSet::new();
    for year in ["2023", "2024"] {
        let staged = unsealed
            .path()
            .join(format!("pfzw_dienstverbanden_{year}.csv"));
        for line in std::fs::read_to_string(staged).unwrap().lines().skip(1) {
            let mut fields = line.split(';');
            payroll_ids.insert(fields.next().unwrap().to_owned());
            payroll_ids.insert(fields.next().unwrap().to_owned());
        }
    }
    assert!(!run_dir.join("staging").exists());
    for file in walk(&out.join("state")) {
        let bytes = std::fs::read(&file).unwrap();
        let found = bytes
            .split(|b| !b.is_ascii_hexdigit())
            .filter(|run| run.len() == 64)
            .any(|run| payroll_ids.contains(std::str::from_utf8(run).unwrap()));
        assert!(!found, "{} holds a stage-1 pseudonym", file.display());
    }
    let fingerprints: usize = show
        .split("\"leak_guard_fingerprints\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no leak guard count in {show}"));
    assert!(
        fingerprints >= 2 * payroll_ids.len(),
        "{fingerprints} fingerprints for {} payroll identifiers",
        payroll_ids.len()
    );
    assert!(show.contains("release:"), "{show}");
    let deliveries = ok(
        &koppel(&[
            "deliveries",
            "list",
            "--state",
            state,
            "--status",
            "consumed",
        ]),
        "deliveries list",
    );
    assert_eq!(deliveries.lines().count(), 1 + 13, "{deliveries}");
    ok(
        &koppel(&["audit", "verify", "--state", state]),
        "audit verify",
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn files_or_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all
}

/// The research IDs of a release's person file.
fn person_ids(release: &Path) -> std::collections::BTreeSet<String> {
    use arrow::array::AsArray;
    let file =
        std::fs::File::open(release.join(koppel_contract::files::release::PERSON_FILE)).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch
            .column_by_name("person_id")
            .unwrap()
            .as_string::<i32>();
        ids.extend(column.iter().flatten().map(str::to_owned));
    }
    ids
}

#[test]
fn a_rerun_gives_the_same_bytes_and_another_run_other_research_ids() {
    let op = Operator::new();
    ok(&op.run(), "first run");
    ok(&op.run(), "second run over the same deliveries");
    let releases = op.releases();
    assert_eq!(releases.len(), 2);
    // Run 1 again, in another state directory (the demo's): the same
    // release, byte for byte.
    let demo_release = &files_or_dirs(&demo().out.join("releases"))[0];
    assert_eq!(
        demo_release.file_name(),
        releases[0].file_name(),
        "both are run 1"
    );
    let (a, d) = (files(&releases[0]), files(demo_release));
    assert_eq!(a.len(), d.len());
    for (x, y) in a.iter().zip(&d) {
        assert_eq!(x.file_name(), y.file_name());
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs between two makings of run 1",
            x.file_name().unwrap().to_string_lossy()
        );
    }
    // Run 2 is another release of the same data: the same persons under
    // research IDs that share nothing with run 1's (docs/pseudonymisation.md).
    let (one, two) = (person_ids(&releases[0]), person_ids(&releases[1]));
    assert_eq!(one.len(), two.len());
    assert!(!one.is_empty());
    assert_eq!(one.intersection(&two).count(), 0, "research IDs shared");
}

#[test]
fn a_tampered_delivery_fails_the_run_and_a_rerun_after_the_fix_succeeds() {
    let op = Operator::new();
    let name = "vernet_verzuimmeldingen_2024.csv.sealed";
    let original = std::fs::read(op.inbox(name)).unwrap();
    let mut tampered = original.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    std::fs::write(op.inbox(name), &tampered).unwrap();

    let t = failed(&op.run(), "a run with a tampered delivery");
    assert!(t.contains(name), "the error names the delivery:\n{t}");
    assert!(t.contains("not a valid sealed delivery"), "{t}");
    assert!(op.releases().is_empty(), "no release after a failure");
    let runs = op.state(&["runs", "list"]);
    assert!(runs.contains("failed"), "{runs}");
    let rejected = op.state(&["deliveries", "list", "--status", "rejected"]);
    assert!(rejected.contains(name), "{rejected}");
    op.state(&["audit", "verify"]);

    // The partner sends it again, intact: no clean-up needed.
    std::fs::write(op.inbox(name), &original).unwrap();
    ok(&op.run(), "the rerun after the fix");
    assert_eq!(op.releases().len(), 1);
    let runs = op.state(&["runs", "list"]);
    assert!(
        runs.contains("failed") && runs.contains("succeeded"),
        "{runs}"
    );
}

#[test]
fn a_replayed_delivery_fails_the_run() {
    let op = Operator::new();
    ok(&op.run(), "the first run");
    // The same sealed files arrive again in another folder: the ledger has
    // seen their delivery ids.
    let again = op.path("inbox-again");
    std::fs::create_dir_all(&again).unwrap();
    for f in files(&op.path("inbox")) {
        std::fs::copy(&f, again.join(f.file_name().unwrap())).unwrap();
    }
    let t = failed(&op.run_in("inbox-again"), "a run over replayed deliveries");
    assert!(t.contains("replay"), "{t}");
    assert!(
        t.contains("inbox-again"),
        "the error names the delivery:\n{t}"
    );
    assert_eq!(op.releases().len(), 1, "no second release");
    // Refused on its header and manifest, before stage 2 read a byte of it.
    let show = op.state(&["runs", "show", "2"]);
    assert!(show.contains("status:   failed"), "{show}");
    assert!(!show.contains("stage receive"), "{show}");
    let replayed = op.state(&["deliveries", "list", "--status", "replayed"]);
    assert_eq!(replayed.lines().count(), 2, "{replayed}");
}

#[test]
fn a_missing_delivery_fails_the_run_naming_it() {
    let op = Operator::new();
    std::fs::remove_file(op.inbox("pfzw_dienstverbanden_2024.csv.sealed")).unwrap();
    let t = failed(&op.run(), "a run with a delivery missing");
    assert!(
        t.contains("missing deliveries: pfzw_dienstverbanden 2024"),
        "{t}"
    );
    assert!(op.releases().is_empty());
    assert!(op.state(&["runs", "list"]).contains("failed"));
}

#[test]
fn a_delivery_that_fails_at_the_ttp_fails_the_run_naming_it() {
    let op = Operator::new();
    // IZZ seals a delivery whose manifest claims one row more than the
    // file holds: the seal and checksum are fine, the TTP's own reading is
    // not.
    let name = "izz_verzekerden_2024.csv.sealed";
    let keys = PartnerKeys::open(&demo().out.join("keys/izz.keys.yaml"), PASSPHRASE).unwrap();
    let mut content = Vec::new();
    let (_, manifest) = seal::unseal(
        std::fs::File::open(op.inbox(name)).unwrap(),
        &keys.transport.1,
        &mut content,
    )
    .unwrap();
    let mut manifest =
        DeliveryManifest::parse(std::str::from_utf8(&manifest).unwrap(), Path::new(name)).unwrap();
    manifest.rows += 1;
    manifest.delivery_id = Some("0123456789abcdef0123456789abcdef".into());
    let mut sealed = Vec::new();
    seal::seal(
        manifest.to_yaml().as_bytes(),
        content.as_slice(),
        &mut sealed,
        &keys.transport.1,
        &keys.transport.0.id,
        keys.transport.0.version,
        seal::DEFAULT_CHUNK_SIZE,
    )
    .unwrap();
    std::fs::write(op.inbox(name), sealed).unwrap();

    let t = failed(&op.run(), "a run with a failing source");
    assert!(t.contains(name), "the error names the delivery:\n{t}");
    assert!(t.contains("failed at the TTP"), "{t}");
    assert!(t.contains("row"), "the error says what failed:\n{t}");
    assert!(op.releases().is_empty());
    let show = op.state(&["runs", "show", "1"]);
    assert!(show.contains("status:   failed"), "{show}");
    assert!(show.contains("stage receive"), "{show}");
    assert!(!show.contains("stage link"), "{show}");
}

#[test]
fn audit_verify_passes_on_a_real_trail_and_fails_on_an_edited_one() {
    let op = Operator::new();
    ok(&op.run(), "a run");
    op.state(&["audit", "verify"]);
    let trail = op.path("state/audit.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.lines().count() >= 15, "{text}");
    // Someone hides that a key was used.
    let edited = text.replacen("\"action\":\"key.used\"", "\"action\":\"key.seen\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&trail, edited).unwrap();
    let state = op.path("state");
    let t = failed(
        &koppel(&["audit", "verify", "--state", state.to_str().unwrap()]),
        "audit verify on an edited trail",
    );
    assert!(t.contains("line"), "the error names the line:\n{t}");
}

#[test]
fn pipeline_check_and_schema() {
    let t = ok(
        &koppel(&["pipeline", "check", "pipelines/preventieplan.yaml"]),
        "pipeline check",
    );
    assert!(t.contains("is valid"), "{t}");
    let store = demo().out.join("keys/ttp.keystore.yaml");
    let t = ok(
        &koppel(&[
            "pipeline",
            "check",
            "pipelines/preventieplan.yaml",
            "--store",
            store.to_str().unwrap(),
        ]),
        "pipeline check with keys",
    );
    assert!(
        t.contains("key release-preventieplan v1 (release) found"),
        "{t}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(repo().join("pipelines/preventieplan.yaml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("max_suppression_pct", "max_suppresion_pct"),
    )
    .unwrap();
    let t = failed(
        &koppel(&["pipeline", "check", bad.to_str().unwrap()]),
        "pipeline check of a misspelt field",
    );
    assert!(t.contains("bad.yaml"), "{t}");
    assert!(
        t.contains("line 33, column 5: disclosure.person: unknown field"),
        "{t}"
    );
    assert!(!t.contains("at line"), "the place is said once:\n{t}");
    assert!(t.contains("max_suppresion_pct"), "{t}");

    let schema = ok(&koppel(&["pipeline", "schema"]), "pipeline schema");
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(schema["title"], "PipelineSpec");
    assert_eq!(schema["additionalProperties"], false);
    for field in ["sources", "keys", "release", "disclosure", "schedule"] {
        assert!(schema["properties"][field].is_object(), "{field}");
    }
}

/// A service's corner: a pipelines folder with the project's pipeline (due
/// at once: the last 06:00 on the 2nd of a month has passed), an inbox, a
/// state directory and a release folder.
struct Service {
    dir: tempfile::TempDir,
}

impl Service {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
        std::fs::copy(
            repo().join("pipelines/preventieplan.yaml"),
            dir.path().join("pipelines/preventieplan.yaml"),
        )
        .unwrap();
        Service { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state_arg(&self) -> String {
        self.path("state").to_str().unwrap().to_owned()
    }

    fn start(&self) -> std::process::Child {
        koppel_command()
            .args([
                "daemon",
                "--pipelines",
                self.path("pipelines").to_str().unwrap(),
                "--inbox",
                self.path("inbox").to_str().unwrap(),
                "--state",
                self.path("state").to_str().unwrap(),
                "--release-dir",
                self.path("releases").to_str().unwrap(),
                "--store",
                demo().out.join("keys/ttp.keystore.yaml").to_str().unwrap(),
                "--poll-seconds",
                "1",
            ])
            .current_dir(repo())
            .env("KOPPEL_PASSPHRASE", PASSPHRASE)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// SIGTERM, then the service's own account of what it did.
    fn stop(child: std::process::Child) -> String {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let out = child.wait_with_output().unwrap();
        let t = text(&out);
        assert!(
            out.status.success(),
            "the daemon stops cleanly on SIGTERM:\n{t}"
        );
        assert!(t.contains("koppel daemon stopped"), "{t}");
        t
    }

    /// Partners upload under a temporary name and rename when done.
    fn deliver(&self, files: &[PathBuf]) {
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let part = self.path("inbox").join(format!(".{name}.part"));
            std::fs::copy(f, &part).unwrap();
            std::fs::rename(&part, self.path("inbox").join(&name)).unwrap();
        }
    }

    fn deliveries(&self, status: &str) -> usize {
        let out = koppel(&[
            "deliveries",
            "list",
            "--state",
            &self.state_arg(),
            "--status",
            status,
        ]);
        if !out.status.success() {
            return 0;
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .count()
            .saturating_sub(1)
    }

    fn trail(&self) -> String {
        std::fs::read_to_string(self.path("state/audit.jsonl")).unwrap()
    }
}

fn wait_for(what: &str, done: &dyn Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The scheduled service: start, deliveries arrive, stop, more arrive
/// while it is down, restart, it runs once; a further restart runs nothing.
#[test]
fn the_daemon_survives_restarts_without_losing_a_delivery_or_running_twice() {
    let service = Service::new();
    let sealed = files(&demo().out.join("inbox"));
    assert_eq!(sealed.len(), 13);
    let (first, rest) = sealed.split_at(6);

    let daemon = service.start();
    service.deliver(first);
    wait_for("6 deliveries admitted", &|| {
        service.deliveries("registered") == 6
    });
    Service::stop(daemon);

    // These arrive while the service is down.
    service.deliver(rest);
    let daemon = service.start();
    wait_for("a succeeded run", &|| service.deliveries("consumed") == 13);
    let t = Service::stop(daemon);
    assert!(t.contains("1 runs succeeded"), "{t}");

    let daemon = service.start();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let t = Service::stop(daemon);
    assert!(
        t.contains("0 runs succeeded, 0 failed"),
        "a finished period is not run again:\n{t}"
    );

    let state = service.state_arg();
    let runs = ok(&koppel(&["runs", "list", "--state", &state]), "runs list");
    assert_eq!(runs.lines().count(), 2, "exactly one run:\n{runs}");
    assert!(runs.contains("succeeded"), "{runs}");
    let release_dirs = files_or_dirs(&service.path("releases"));
    assert_eq!(release_dirs.len(), 1);
    sha256sum_check(&release_dirs[0]);
    ok(
        &koppel(&["audit", "verify", "--state", &state]),
        "audit verify",
    );
    let trail = service.trail();
    assert_eq!(trail.matches("\"action\":\"daemon.started\"").count(), 3);
    assert_eq!(
        trail.matches("\"action\":\"delivery.registered\"").count(),
        13
    );
    assert_eq!(trail.matches("\"action\":\"run.succeeded\"").count(), 1);
}

#[test]
fn the_daemon_moves_a_tampered_delivery_aside_and_records_it() {
    let service = Service::new();
    let inbox = service.path("inbox");
    let name = "fwg_functiekenmerken_2024.csv.sealed";
    let mut bytes = std::fs::read(demo().out.join("inbox").join(name)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(inbox.join(name), bytes).unwrap();
    std::fs::write(inbox.join("notes.txt.sealed"), b"not a delivery").unwrap();

    let daemon = service.start();
    let refused = inbox.join(koppel_pipeline::REFUSED_FOLDER);
    wait_for("the bad files moved aside", &|| {
        refused.join(name).exists() && refused.join("notes.txt.sealed").exists()
    });
    let t = Service::stop(daemon);
    assert!(t.contains("2 refused"), "{t}");
    assert!(!inbox.join(name).exists());
    let state = service.state_arg();
    let rejected = ok(
        &koppel(&[
            "deliveries",
            "list",
            "--state",
            &state,
            "--status",
            "rejected",
        ]),
        "deliveries list",
    );
    assert!(rejected.contains(name), "{rejected}");
    assert!(rejected.contains("notes.txt.sealed"), "{rejected}");
    let trail = service.trail();
    assert_eq!(
        trail.matches("\"action\":\"delivery.rejected\"").count(),
        2,
        "{trail}"
    );
    ok(
        &koppel(&["audit", "verify", "--state", &state]),
        "audit verify",
    );
}

/// SIGTERM while a scheduled run is working: the run finishes, its release
/// is complete, and the service stops cleanly.
#[test]
fn sigterm_during_a_run_lets_the_run_finish() {
    let service = Service::new();
    service.deliver(&files(&demo().out.join("inbox")));
    let daemon = service.start();
    let state = service.state_arg();
    wait_for("a run to start", &|| {
        let out = koppel(&["runs", "list", "--state", &state]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("running")
    });
    let t = Service::stop(daemon);
    assert!(
        t.contains("1 runs succeeded"),
        "the run finished before the stop:\n{t}"
    );
    let runs = ok(&koppel(&["runs", "list", "--state", &state]), "runs list");
    assert!(
        runs.contains("succeeded") && !runs.contains("running"),
        "{runs}"
    );
    let release_dirs = files_or_dirs(&service.path("releases"));
    assert_eq!(release_dirs.len(), 1);
    sha256sum_check(&release_dirs[0]);
}
