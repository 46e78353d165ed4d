//! The contract's identifier types and the two modes they arrive in.

use std::fmt;

/// The two identifier types of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierType {
    /// Citizen service number (burgerservicenummer).
    Bsn,
    /// Chamber of Commerce number of an employer.
    Kvk,
}

impl IdentifierType {
    /// The type's name as hashed into the stage-1 pseudonym.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Bsn => "bsn",
            IdentifierType::Kvk => "kvk",
        }
    }

    /// Digits of the canonical form.
    pub fn width(self) -> usize {
        match self {
            IdentifierType::Bsn => 9,
            IdentifierType::Kvk => 8,
        }
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a source delivers its identifiers (contract, "Identifiers").
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierMode {
    /// The identifier itself; the TTP pseudonymises it.
    Raw,
    /// Stage-1 pseudonyms made by the partner, in `<HEADER>_P1` columns.
    #[serde(rename = "p1")]
    PrePseudonymised,
}

impl IdentifierMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierMode::Raw => "raw",
            IdentifierMode::PrePseudonymised => "p1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contract_s() {
        assert_eq!(IdentifierType::Bsn.to_string(), "bsn");
        assert_eq!(IdentifierType::Kvk.as_str(), "kvk");
        assert_eq!(
            (IdentifierType::Bsn.width(), IdentifierType::Kvk.width()),
            (9, 8)
        );
        assert_eq!(IdentifierMode::PrePseudonymised.as_str(), "p1");
        let mode: IdentifierMode = serde_json::from_str("\"p1\"").unwrap();
        assert_eq!(mode, IdentifierMode::PrePseudonymised);
    }
}
