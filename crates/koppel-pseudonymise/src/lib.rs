//! Koppel's pseudonymisation stage: keyed pseudonyms, key custody and sealed
//! deliveries.

mod keystore;
mod pseudonym;
pub mod seal;
mod secret;

pub use keystore::{
    KdfParams, KeyInfo, KeyPurpose, KeyStatus, KeyStore, KeyStoreError, PartnerKeys, Unlock,
    read_kek_file,
};
pub use pseudonym::{
    KeyedHash, META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE, PSEUDONYM_BYTES, Pseudonymiser,
    RESEARCH_ID_BYTES, Stage, research_prefix,
};
pub use secret::KeyMaterial;
