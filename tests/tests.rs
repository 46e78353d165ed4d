//! Koppel's end-to-end tests, in one test binary (ripgrep's `tests.rs`
//! pattern): each file below is a module, so the workspace links one
//! executable for them instead of one per file, each with all of
//! DataFusion in it.
//!
//! Shared helpers are in `util.rs`; staging raw deliveries as stage-2
//! Parquet is the `koppel-testkit` crate's.

mod util;

mod anywhere;
mod attacks;
mod custody;
mod end_to_end;
mod linking;
mod pipeline;
mod release;
mod tables;
