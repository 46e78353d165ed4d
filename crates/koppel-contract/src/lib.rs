//! The delivery contract's vocabulary and the small utilities every Koppel
//! stage shares.
//!
//! **Why a crate of its own:** the names the stages hand each other — the
//! contract's sources and their file names, the field metadata that labels
//! identifier and pseudonym columns, the enumerations, the names of the
//! model and release files — must mean the same thing in ingest, stage 2,
//! linking, export and the binary. Written out in each, they drifted (a
//! delivery file name was parsed four ways). Here each is defined once, and
//! every stage depends on this crate (it depends on no other Koppel crate
//! and on nothing heavier than `sha2` and `tempfile`).
//!
//! **Input/output:** none of its own; it is a library of names and small,
//! tested functions:
//! - [`sources`]: the contract's seven sources and the delivery file name
//!   `<source>_<period>.<csv|parquet>[.sealed]`;
//! - [`meta`]: Arrow field metadata keys and the pseudonym width;
//! - [`IdentifierType`] and [`IdentifierMode`];
//! - [`codes`]: the contract's enumerations (sex, sector, contract type);
//! - [`specs`]: the project's source specs, compiled in;
//! - [`files`]: the names of the files stages write for each other;
//! - [`fsx`]: atomic write-and-rename of files and directories, with the
//!   fsyncs that make a rename survive a crash;
//! - [`digest`]: the SHA-256 of a file; [`csv`]: quoting a CSV field;
//!   [`civil`]: civil-calendar day numbers.

pub mod civil;
pub mod codes;
pub mod csv;
pub mod digest;
pub mod files;
pub mod fsx;
mod identifier;
pub mod meta;
pub mod sources;
pub mod specs;

pub use identifier::{IdentifierMode, IdentifierType};
pub use sources::{DeliveryFileName, DeliveryFormat, Source};
