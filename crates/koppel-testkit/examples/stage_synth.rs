//! Benchmark input: a synthetic sector, staged as the linking stage reads
//! it (stage-2 Parquet), through the real ingest and stage-2 code.
//!
//! `cargo run --release -p koppel-testkit --example stage_synth -- PERSONS DIR`
//! writes `DIR/raw` (synth, 2023–2024, seed 7) and `DIR/staged`; both are
//! skipped when already complete.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let persons: usize = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: stage_synth PERSONS DIR");
    let dir = PathBuf::from(args.next().expect("usage: stage_synth PERSONS DIR"));
    let raw = dir.join("raw");
    let staged = dir.join("staged");
    let done = |d: &PathBuf| d.join(".complete").exists();
    if !done(&raw) {
        let started = Instant::now();
        let _ = std::fs::remove_dir_all(&raw);
        let config = koppel_synth::SynthConfig::new(persons, 2023..=2024, 7);
        let summary = koppel_synth::synthesise(&config, &raw).expect("synth");
        let rows: u64 = summary.files.iter().map(|f| f.rows).sum();
        std::fs::write(raw.join(".complete"), "").unwrap();
        eprintln!(
            "synth: {persons} persons, {rows} rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if !done(&staged) {
        let started = Instant::now();
        let _ = std::fs::remove_dir_all(&staged);
        let files = koppel_testkit::stage_raw(&raw, &staged);
        std::fs::write(staged.join(".complete"), "").unwrap();
        eprintln!(
            "staged {} deliveries in {:.1} s",
            files.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
