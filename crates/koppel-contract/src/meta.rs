//! Arrow field metadata that labels identifier and pseudonym columns, so
//! every later stage can tell a raw identifier, a stage-1 and a stage-2
//! pseudonym apart (and refuse what it must not see) without guessing
//! from column names.

/// Set on every identifier column: its [`IdentifierType`](crate::IdentifierType)
/// (`bsn` or `kvk`).
pub const META_IDENTIFIER: &str = "koppel.identifier";
/// Set on every identifier column: the [`IdentifierMode`](crate::IdentifierMode)
/// it was delivered in (`raw` or `p1`).
pub const META_IDENTIFIER_MODE: &str = "koppel.identifier_mode";
/// The pseudonym layer of a column (`p1`, `p2`, `research`), with the key
/// that made it, so old and new pseudonyms can be told apart while a key is
/// being replaced.
pub const META_PSEUDONYM_STAGE: &str = "koppel.pseudonym";
pub const META_KEY_ID: &str = "koppel.key_id";
pub const META_KEY_VERSION: &str = "koppel.key_version";

/// Bytes of every stage-1 and stage-2 pseudonym (an HMAC-SHA256 output).
pub const PSEUDONYM_BYTES: usize = 32;
