//! Key material: 32 secret bytes that are zeroized when dropped and never
//! printed.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 bytes of secret key material.
///
/// There is no `Display`, and `Debug` shows only that it is redacted, so a
/// key cannot reach a log line or an error message by accident.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct KeyMaterial([u8; 32]);

impl KeyMaterial {
    /// Fresh random key material from the operating system.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(KeyMaterial(bytes))
    }

    /// Takes ownership of the bytes; the caller should zeroize its copy.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyMaterial(bytes)
    }

    /// The secret bytes, for keying a primitive. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public fingerprint to tell keys apart in listings and audit logs:
    /// 16 hex characters of HMAC-SHA256(key, "koppel key fingerprint").
    /// It reveals nothing usable about the key.
    pub fn fingerprint(&self) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"koppel key fingerprint");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_material() {
        let k = KeyMaterial::from_bytes([0xAB; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    }

    #[test]
    fn fingerprints_differ_and_are_stable() {
        let a = KeyMaterial::from_bytes([1; 32]);
        let b = KeyMaterial::from_bytes([2; 32]);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert!(KeyMaterial::generate().unwrap() != KeyMaterial::generate().unwrap());
    }
}
