//! Koppel's pseudonymisation stage: keyed pseudonyms, key custody and sealed
//! deliveries.

mod hashing;
mod keystore;
mod partner;
mod pseudonym;
mod receive;
pub mod seal;
mod secret;
mod stage2;
mod staged;

pub use keystore::{
    KdfParams, KeyInfo, KeyPurpose, KeyStatus, KeyStore, KeyStoreError, PartnerKeys, Unlock,
    read_kek_file,
};
pub use partner::{PrepareError, PreparedDelivery, prepare_delivery};
pub use pseudonym::{KeyedHash, Pseudonymiser, RESEARCH_ID_BYTES, Stage, research_prefix};
pub use receive::{
    DeliveryStream, REGISTER_FILE, ReceiveError, ReceivedDelivery, SealedDelivery, Verification,
    VerifiedDelivery, open_delivery, unseal_delivery, verify_delivery,
};
pub use secret::KeyMaterial;
pub use stage2::{Stage2Error, Stage2Transform};
pub use staged::{PseudonymisedDelivery, StagedError, pseudonymise_sealed, pseudonymise_staged};
