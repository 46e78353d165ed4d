//! Pseudonymisation and sealing throughput, measured in one run so the
//! ratios are meaningful on a noisy machine. Run through `bench/pseudonymise.sh`.
//!
//! (a) the raw HMAC-SHA256 rate of this CPU on 9-digit inputs with a
//!     precomputed key state, one core;
//! (b) Koppel's stage-1 rate over Arrow columns of raw BSNs, including
//!     canonicalisation, in pipeline-sized batches on one core, and on one
//!     large column using all cores;
//! (c) sealing and unsealing throughput, one core.

use std::hint::black_box;
use std::time::Instant;

use arrow::array::{Array, StringArray, StringBuilder};
use hmac::{Hmac, KeyInit, Mac};
use koppel_contract::IdentifierType;
use koppel_ingest::canonical_bsn;
use koppel_pseudonymise::{KeyMaterial, Pseudonymiser, Stage, seal};
use sha2::Sha256;

const BATCH: usize = 8192;

fn main() {
    let values: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    let seal_mib: usize = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let key = KeyMaterial::from_bytes([7; 32]);

    // Valid BSNs as partners write them: 9 digits, some with separators.
    let raw: Vec<String> = (0..values as u64)
        .map(|i| {
            let mut digits = [0u8; 9];
            let mut n = 100_000_000 + i * 7 % 800_000_000;
            for d in digits[..8].iter_mut().rev() {
                *d = (n % 10) as u8;
                n /= 10;
            }
            let sum: i32 = digits[..8]
                .iter()
                .enumerate()
                .map(|(k, d)| (9 - k as i32) * *d as i32)
                .sum();
            digits[8] = (sum % 11) as u8 % 10;
            let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            if i % 10 == 0 {
                format!("{}.{}.{}", &s[..4], &s[4..6], &s[6..])
            } else {
                s
            }
        })
        .collect();
    let canonical: Vec<String> = raw
        .iter()
        .map(|r| {
            let mut c = [0u8; 9];
            canonical_bsn(r.as_bytes(), &mut c);
            String::from_utf8(c.to_vec()).expect("digits")
        })
        .collect();

    // (a) the floor: pre-keyed HMAC, cloned per value, on one core.
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("any key length");
    let started = Instant::now();
    for c in &canonical {
        let mut mac = keyed.clone();
        mac.update(b"bsn\0");
        mac.update(c.as_bytes());
        black_box(mac.finalize().into_bytes());
    }
    let raw_rate = values as f64 / started.elapsed().as_secs_f64();

    // (a2) the same loop on every core: what this machine's cores can give
    // together (virtual cores may share one physical core's SHA unit).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in canonical.chunks(values.div_ceil(cores)) {
            let keyed = keyed.clone();
            scope.spawn(move || {
                for c in part {
                    let mut mac = keyed.clone();
                    mac.update(b"bsn\0");
                    mac.update(c.as_bytes());
                    black_box(mac.finalize().into_bytes());
                }
            });
        }
    });
    let raw_all_rate = values as f64 / started.elapsed().as_secs_f64();

    // (b1) Koppel, one core: canonicalise each batch into an Arrow column as
    // ingest does, then hash it.
    let p1 = Pseudonymiser::new(Stage::Stage1, &key, "bench", 1);
    let batches: Vec<StringArray> = raw
        .chunks(BATCH)
        .map(|c| StringArray::from_iter_values(c.iter()))
        .collect();
    let started = Instant::now();
    for batch in &batches {
        let mut builder = StringBuilder::with_capacity(batch.len(), batch.len() * 9);
        let mut c = [0u8; 9];
        for v in batch.iter().flatten() {
            if canonical_bsn(v.as_bytes(), &mut c) {
                builder.append_value(std::str::from_utf8(&c).expect("digits"));
            } else {
                builder.append_null();
            }
        }
        black_box(p1.hash_canonical(IdentifierType::Bsn, &builder.finish()));
    }
    let koppel_rate = values as f64 / started.elapsed().as_secs_f64();

    // (b2) Koppel on one large column: all cores.
    let big = StringArray::from_iter_values(canonical.iter());
    let started = Instant::now();
    black_box(p1.hash_canonical(IdentifierType::Bsn, &big));
    let parallel_rate = values as f64 / started.elapsed().as_secs_f64();

    // (c) sealing and unsealing, in memory. Output buffers are touched
    // first (with a non-zero fill: zeroed memory is mapped lazily), so page
    // faults of fresh memory are not counted as crypto.
    let content = vec![0x5au8; seal_mib << 20];
    let mut sealed = vec![1u8; content.len() + (content.len() >> 10)];
    sealed.clear();
    let started = Instant::now();
    seal::seal(
        b"bench",
        &content[..],
        &mut sealed,
        &key,
        "bench",
        1,
        seal::DEFAULT_CHUNK_SIZE,
    )
    .expect("seal");
    let seal_rate = content.len() as f64 / started.elapsed().as_secs_f64();
    let mut opened = vec![1u8; content.len()];
    opened.clear();
    let started = Instant::now();
    seal::unseal(&sealed[..], &key, &mut opened).expect("unseal");
    let unseal_rate = content.len() as f64 / started.elapsed().as_secs_f64();
    assert!(opened == content);

    println!("values: {values}, cores: {cores}, seal input: {seal_mib} MiB");
    println!(
        "(a)  raw HMAC-SHA256, 9-digit inputs, 1 core      {:>8.2} M values/s",
        raw_rate / 1e6
    );
    println!(
        "(a2) raw HMAC-SHA256, {cores} cores                     {:>8.2} M values/s  = {:.2}× (a)",
        raw_all_rate / 1e6,
        raw_all_rate / raw_rate
    );
    println!(
        "(b1) Koppel stage 1 incl. canonicalisation, 1 core {:>8.2} M values/s  = {:.0}% of (a)",
        koppel_rate / 1e6,
        100.0 * koppel_rate / raw_rate
    );
    println!(
        "(b2) Koppel stage 1, one large column, {cores} cores     {:>8.2} M values/s  = {:.2}× (a), {:.0}% of (a2)",
        parallel_rate / 1e6,
        parallel_rate / raw_rate,
        100.0 * parallel_rate / raw_all_rate
    );
    println!(
        "(c)  seal, 1 core                                 {:>8.2} GB/s",
        seal_rate / 1e9
    );
    println!(
        "(c)  unseal, 1 core                               {:>8.2} GB/s",
        unseal_rate / 1e9
    );
}
