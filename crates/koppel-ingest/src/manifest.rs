//! Delivery manifests: `<file>.manifest.yaml`, written by the partner tool
//! beside each delivery so the TTP can prove the file arrived whole.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::IngestError;
use crate::columns::IdentifierMode;
use koppel_contract::digest::sha256_file;

/// What the partner says it sent.
///
/// The first five fields are what any partner tool writes; the optional ones
/// are filled by `koppel partner prepare` and travel inside the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryManifest {
    pub source: String,
    pub period: String,
    /// Data rows, not counting the header.
    pub rows: u64,
    /// Lowercase hexadecimal SHA-256 of the delivery file's bytes.
    pub sha256: String,
    pub identifier_mode: IdentifierMode,
    /// Unique per delivery (128 random bits, hex): the TTP refuses a
    /// delivery id it has seen before, so a sealed file cannot be replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// File name of the delivery inside a sealed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Keys the pseudonyms in the file were made with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyLabel>,
    /// Rows the partner's own validation rejected and left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_rows: Option<u64>,
    /// Made by `koppel synth`: demo keys are acceptable for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

/// Which key made the pseudonyms of a delivery: public facts, no material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLabel {
    pub purpose: String,
    pub id: String,
    pub version: u32,
    pub fingerprint: String,
}

impl DeliveryManifest {
    /// Describes a delivery file as the partner tool does.
    pub fn describe(
        file: &Path,
        source: &str,
        period: &str,
        rows: u64,
        identifier_mode: IdentifierMode,
    ) -> io::Result<Self> {
        Ok(DeliveryManifest {
            source: source.to_owned(),
            period: period.to_owned(),
            rows,
            sha256: sha256_file(file)?.sha256,
            identifier_mode,
            delivery_id: None,
            partner: None,
            file: None,
            keys: Vec::new(),
            rejected_rows: None,
            synthetic: false,
        })
    }

    pub fn load(path: &Path) -> Result<Self, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a manifest's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, IngestError> {
        let path = origin;
        let manifest: DeliveryManifest =
            serde_yaml::from_str(text).map_err(|e| IngestError::ManifestInvalid {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if manifest.sha256.len() != 64
            || !manifest
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(IngestError::ManifestInvalid {
                path: path.to_owned(),
                message: "sha256 must be 64 lowercase hexadecimal characters".into(),
            });
        }
        Ok(manifest)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a manifest always serialises")
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_yaml())
    }

    /// The manifest is for this source.
    pub fn verify_source(&self, file: &Path, source: &str) -> Result<(), IngestError> {
        if self.source != source {
            return Err(IngestError::ManifestSource {
                path: file.to_owned(),
                expected: source.to_owned(),
                found: self.source.clone(),
            });
        }
        Ok(())
    }

    /// The file's content has the manifest's SHA-256.
    pub fn verify_checksum(&self, file: &Path) -> Result<(), IngestError> {
        let actual = sha256_file(file)
            .map(|d| d.sha256)
            .map_err(|source| IngestError::Io {
                path: file.to_owned(),
                source,
            })?;
        if actual != self.sha256 {
            return Err(IngestError::ManifestChecksum {
                path: file.to_owned(),
            });
        }
        Ok(())
    }
}
