//! The TTP side of a sealed delivery: verify, decrypt into the staging
//! area, and refuse replays.
//!
//! Input: a sealed file, the TTP's key store (for the partner's transport
//! key), a staging directory. Output: `<staging>/<file>` and its
//! `<file>.manifest.yaml`, and one line in the staging area's delivery
//! register. Nothing appears under the delivery's own name unless the whole
//! file authenticated, its checksum matched its manifest and its delivery id
//! was new.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::hashing::HashingWriter;
use koppel_ingest::{DeliveryManifest, IdentifierMode, IngestError, SpecSet, manifest_path};
use thiserror::Error;

use crate::keystore::{KeyPurpose, KeyStatus, KeyStore, KeyStoreError};
use crate::seal::{self, SealError};

/// File in the staging directory listing every delivery id received.
pub const REGISTER_FILE: &str = "delivery-register.tsv";

#[derive(Debug, Error)]
pub enum ReceiveError {
    #[error("{}: cannot read or write", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a valid sealed delivery", path.display())]
    Seal {
        path: PathBuf,
        #[source]
        source: SealError,
    },
    #[error("{}: sealed with key {key_id} v{key_version}, which this key store cannot provide", path.display())]
    Key {
        path: PathBuf,
        key_id: String,
        key_version: u32,
        #[source]
        source: Box<KeyStoreError>,
    },
    #[error("{}: sealed with key {key_id}, which is a {purpose} key, not a transport key", path.display())]
    NotTransportKey {
        path: PathBuf,
        key_id: String,
        purpose: KeyPurpose,
    },
    #[error("{}: the manifest inside the seal is invalid", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: IngestError,
    },
    #[error("{}: {what}", path.display())]
    Refused { path: PathBuf, what: String },
    #[error("{}: delivery {delivery_id} was already received (replay); nothing was written", path.display())]
    Replay { path: PathBuf, delivery_id: String },
    #[error("{}: the content does not match the SHA-256 in its manifest", path.display())]
    Checksum { path: PathBuf },
}

/// What `unseal_delivery` staged.
#[derive(Debug, Clone)]
pub struct ReceivedDelivery {
    pub staged: PathBuf,
    pub manifest: DeliveryManifest,
    pub transport_key: (String, u32),
}

/// Delivery ids in a staging area's register.
fn ids_in(file: &File, path: &Path) -> Result<Vec<String>, ReceiveError> {
    let mut ids = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| ReceiveError::Io {
            path: path.to_owned(),
            source,
        })?;
        if let Some(id) = line
            .split('\t')
            .next()
            .filter(|id| !id.is_empty() && !id.starts_with('#'))
        {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Verifies and decrypts one sealed delivery into `staging`.
///
/// `specs` ties each source to its partner: a transport key opens only
/// deliveries its own partner may send.
pub fn unseal_delivery(
    sealed: &Path,
    store: &KeyStore,
    specs: &SpecSet,
    staging: &Path,
) -> Result<ReceivedDelivery, ReceiveError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ReceiveError::Io { path, source }
    };
    let seal_err = |source| ReceiveError::Seal {
        path: sealed.to_owned(),
        source,
    };
    std::fs::create_dir_all(staging).map_err(io_err(staging))?;
    let mut input = BufReader::with_capacity(1 << 20, File::open(sealed).map_err(io_err(sealed))?);
    let header = seal::read_header(&mut input).map_err(seal_err)?;
    let (info, key) = store
        .key(&header.key_id, Some(header.key_version))
        .map_err(|source| ReceiveError::Key {
            path: sealed.to_owned(),
            key_id: header.key_id.clone(),
            key_version: header.key_version,
            source: Box::new(source),
        })?;
    if info.purpose != KeyPurpose::Transport {
        return Err(ReceiveError::NotTransportKey {
            path: sealed.to_owned(),
            key_id: info.id,
            purpose: info.purpose,
        });
    }
    if info.status == KeyStatus::Retired {
        return Err(ReceiveError::Refused {
            path: sealed.to_owned(),
            what: format!(
                "sealed with {} v{}, which is retired: new deliveries must use the current transport key",
                info.id, info.version
            ),
        });
    }

    // Decrypt into a temporary file: a chunk is written only once verified,
    // but the file as a whole counts only after the last chunk verified.
    let mut content = tempfile::Builder::new()
        .prefix(".koppel-unseal-")
        .tempfile_in(staging)
        .map_err(io_err(staging))?;
    let (manifest_bytes, sha256) = {
        let mut writer =
            HashingWriter::new(BufWriter::with_capacity(1 << 20, content.as_file_mut()));
        let manifest =
            seal::unseal_after_header(&header, &mut input, &key, &mut writer).map_err(seal_err)?;
        (manifest, writer.finish().map_err(io_err(staging))?)
    };
    drop(key);

    let text = String::from_utf8(manifest_bytes).map_err(|_| ReceiveError::Refused {
        path: sealed.to_owned(),
        what: "the manifest is not UTF-8".into(),
    })?;
    let manifest =
        DeliveryManifest::parse(&text, sealed).map_err(|source| ReceiveError::Manifest {
            path: sealed.to_owned(),
            source,
        })?;
    let refuse = |what: &str| ReceiveError::Refused {
        path: sealed.to_owned(),
        what: what.to_owned(),
    };
    let delivery_id = manifest
        .delivery_id
        .clone()
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| refuse("the manifest has no valid delivery id"))?;
    let file_name = manifest
        .file
        .clone()
        .filter(|f| safe_file_name(f))
        .ok_or_else(|| refuse("the manifest names no plain file name for the content"))?;
    // The seal proves who sealed (the transport key's partner); the manifest
    // only claims. The claim must agree with the key and the contract.
    let key_partner = info.partner.as_deref().unwrap_or_default();
    if manifest.partner.as_deref() != Some(key_partner) {
        return Err(refuse(
            "the manifest names another partner than the one whose key sealed it",
        ));
    }
    let spec = specs
        .get(&manifest.source)
        .ok_or_else(|| refuse("the manifest names a source the TTP has no spec for"))?;
    if !spec.partner.eq_ignore_ascii_case(key_partner) {
        return Err(refuse(&format!(
            "partner {key_partner} may not deliver source {} (delivered by {})",
            manifest.source, spec.partner
        )));
    }
    if !file_name.starts_with(&manifest.source) {
        return Err(refuse(
            "the content's file name does not start with its source name",
        ));
    }
    if manifest.identifier_mode != IdentifierMode::PrePseudonymised {
        return Err(refuse(
            "a sealed delivery must carry stage-1 pseudonyms, not raw identifiers",
        ));
    }
    if sha256 != manifest.sha256 {
        return Err(ReceiveError::Checksum {
            path: sealed.to_owned(),
        });
    }
    // The register is locked from the replay check until the delivery id is
    // recorded, so two unseals of the same delivery cannot both pass.
    let register_path = staging.join(REGISTER_FILE);
    let mut register = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&register_path)
        .map_err(io_err(&register_path))?;
    register.lock().map_err(io_err(&register_path))?;
    if ids_in(&register, &register_path)?.contains(&delivery_id) {
        return Err(ReceiveError::Replay {
            path: sealed.to_owned(),
            delivery_id,
        });
    }

    let staged = staging.join(&file_name);
    content.as_file().sync_all().map_err(io_err(&staged))?;
    content
        .persist_noclobber(&staged)
        .map_err(|e| ReceiveError::Refused {
            path: sealed.to_owned(),
            what: format!(
                "cannot stage {}: {} (a delivery of the same name is already staged?)",
                staged.display(),
                e.error
            ),
        })?;
    let manifest_file = manifest_path(&staged);
    std::fs::write(&manifest_file, manifest.to_yaml()).map_err(io_err(&manifest_file))?;

    writeln!(
        register,
        "{delivery_id}\t{}\t{}\t{}\t{}\t{file_name}\t{}",
        manifest.source,
        manifest.period,
        manifest.partner.as_deref().unwrap_or("-"),
        manifest.sha256,
        chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .format("%Y-%m-%dT%H:%M:%SZ"),
    )
    .map_err(io_err(&register_path))?;
    register.sync_all().map_err(io_err(&register_path))?;
    Ok(ReceivedDelivery {
        staged,
        manifest,
        transport_key: (info.id, info.version),
    })
}

/// A name without directories, so a manifest cannot steer a write outside
/// the staging area.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name != REGISTER_FILE
}

#[cfg(test)]
mod tests {
    use super::safe_file_name;

    #[test]
    fn manifest_file_names_stay_in_staging() {
        assert!(safe_file_name("pfzw_dienstverbanden_2024.csv"));
        for bad in [
            "",
            "../x.csv",
            "a/b.csv",
            "..",
            ".hidden",
            "a\\b",
            "delivery-register.tsv",
        ] {
            assert!(!safe_file_name(bad), "{bad}");
        }
    }
}
