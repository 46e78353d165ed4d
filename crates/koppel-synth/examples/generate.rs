//! Generates a delivery set and reports throughput.
//!
//! `cargo run --release -p koppel-synth --example generate -- PERSONS FIRST LAST OUT_DIR [SEED] [--defects] [--only SOURCE]...`

use koppel_synth::{SynthConfig, SynthEvent, synthesise_with_progress};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: generate PERSONS FIRST_YEAR LAST_YEAR OUT_DIR [SEED] [--defects] [--only SOURCE]...";
    let persons: usize = args.next().ok_or(usage)?.parse()?;
    let first: i32 = args.next().ok_or(usage)?.parse()?;
    let last: i32 = args.next().ok_or(usage)?.parse()?;
    let out_dir = PathBuf::from(args.next().ok_or(usage)?);
    let mut config = SynthConfig::new(persons, first..=last, 42);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--defects" => config.defects = true,
            "--only" => config.only.push(args.next().ok_or(usage)?),
            seed => config.seed = seed.parse()?,
        }
    }
    let started = Instant::now();
    let mut file_started = Instant::now();
    let summary = synthesise_with_progress(&config, &out_dir, &mut |event| match event {
        SynthEvent::ModelReady {
            persons,
            organisations,
            employments,
            absence_episodes,
        } => {
            eprintln!(
                "model: {persons} persons, {organisations} organisations, {employments} employments, \
                 {absence_episodes} absence episodes in {:.2?}",
                started.elapsed()
            );
        }
        SynthEvent::FileStarted { .. } => file_started = Instant::now(),
        SynthEvent::FileWritten(file) => {
            let seconds = file_started.elapsed().as_secs_f64();
            eprintln!(
                "{:>12} rows in {seconds:>7.2}s ({:>10.0} rows/s)  {}",
                file.rows,
                file.rows as f64 / seconds,
                file.path.display()
            );
        }
    })?;
    eprintln!("total {:.2?}", started.elapsed());
    for defect in &summary.defects {
        eprintln!(
            "defect {:<24} {:<18} {:<20} {}",
            defect.source, defect.rule, defect.column, defect.count
        );
    }
    Ok(())
}
