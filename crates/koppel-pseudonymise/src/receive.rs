//! The TTP side of a sealed delivery: check it, then read it.
//!
//! Input: a sealed file and the TTP's key store (for the partner's transport
//! key). A run calls [`open_delivery`], which reads only the header and the
//! manifest and checks them; stage 2 then reads the content through
//! [`SealedDelivery::open`], decrypted as it is parsed, and the stream that
//! reaches the authenticated end — every chunk verified, the content's
//! checksum the manifest's, the sealed file hashed on the way — proves a
//! [`VerifiedDelivery`]: one pass over the file, nothing written.
//! [`verify_delivery`] does the same pass without a consumer (the daemon
//! admits deliveries as they arrive). An operator's `koppel unseal` calls
//! [`unseal_delivery`], which writes `<staging>/<file>`, its
//! `<file>.manifest.yaml` and one line in the staging area's delivery
//! register; nothing appears under the delivery's own name unless the whole
//! file authenticated, its checksum matched its manifest and its delivery
//! id was new.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::hashing::{HashingReader, HashingWriter};
use koppel_contract::IdentifierMode;
use koppel_contract::files::manifest_path;
use koppel_ingest::{DeliveryManifest, IngestError, SpecSet};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::keystore::{KeyInfo, KeyPurpose, KeyStatus, KeyStore, KeyStoreError};
use crate::seal::{self, SealError};
use crate::secret::KeyMaterial;

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

/// A sealed delivery whose header and manifest checked out: sealed with a
/// transport key the store holds and may still use, its manifest (authentic:
/// it came out of the first verified chunks) in line with that key and the
/// contract. The content is not read yet: [`open`] streams it, verifying as
/// it goes, and a stream read to its end proves a [`VerifiedDelivery`].
///
/// [`open`]: SealedDelivery::open
#[derive(Debug, Clone)]
pub struct SealedDelivery {
    pub sealed: PathBuf,
    pub manifest: DeliveryManifest,
    pub transport_key: (String, u32),
    /// Size of the sealed file when its header was read.
    pub sealed_len: u64,
    manifest_bytes: Vec<u8>,
}

/// A sealed delivery that verified end to end: every chunk authentic, the
/// content's SHA-256 the one in its manifest, the manifest's claims in line
/// with the key that sealed it. Only a [`DeliveryStream`] read to its end
/// makes one, so no plaintext copy of a delivery (stage-1 pseudonyms) has
/// to land on disk to verify it.
#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    pub delivery: SealedDelivery,
    /// SHA-256 of the sealed file as read: the delivery's identity in the
    /// run ledger.
    pub sealed_sha256: String,
    /// Bytes of content (the plaintext delivery file).
    pub content_len: u64,
}

/// Reads a sealed delivery's header and manifest and checks them, reading
/// no further than the chunks that hold the manifest and writing nothing.
///
/// `specs` ties each source to its partner: a transport key opens only
/// deliveries its own partner may send. Replays are the caller's to detect
/// (by delivery id or sealed SHA-256).
pub fn open_delivery(
    sealed: &Path,
    store: &KeyStore,
    specs: &SpecSet,
) -> Result<SealedDelivery, ReceiveError> {
    let file = File::open(sealed).map_err(io_err(sealed))?;
    let sealed_len = file.metadata().map_err(io_err(sealed))?.len();
    let mut input = BufReader::new(file);
    let header = seal::read_header(&mut input).map_err(seal_err(sealed))?;
    let (info, key) = transport_key(sealed, &header, store)?;
    let reader = seal::UnsealReader::new(&header, input, &key).map_err(seal_err(sealed))?;
    drop(key);
    let manifest_bytes = reader.into_manifest();
    let manifest = check_manifest(sealed, &info, specs, &manifest_bytes)?;
    Ok(SealedDelivery {
        sealed: sealed.to_owned(),
        manifest,
        transport_key: (info.id, info.version),
        sealed_len,
        manifest_bytes,
    })
}

/// Verifies one sealed delivery without writing anything: its header and
/// manifest, then the whole file read once, hashing the sealed bytes and
/// decrypting and hashing the content.
pub fn verify_delivery(
    sealed: &Path,
    store: &KeyStore,
    specs: &SpecSet,
) -> Result<VerifiedDelivery, ReceiveError> {
    open_delivery(sealed, store, specs)?.open(store)?.finish()
}

impl SealedDelivery {
    /// The content, decrypted as it is read. The stream checks that the
    /// sealed file still holds the delivery whose header and manifest were
    /// checked (the same key, the same manifest), every chunk authentic,
    /// and at its end the content's SHA-256; a `read` that finds otherwise
    /// fails (the error carries a [`ReceiveError`] or [`SealError`]), so a
    /// consumer must keep nothing it made of a stream that did not end with
    /// `Ok(0)`. The stream hashes the sealed bytes as it reads them, so the
    /// pass that consumes the content also yields the [`VerifiedDelivery`]
    /// (see [`DeliveryStream::verification`]).
    pub fn open(&self, store: &KeyStore) -> Result<DeliveryStream, ReceiveError> {
        let sealed = self.sealed.as_path();
        let file = File::open(sealed).map_err(io_err(sealed))?;
        let mut input = HashingReader::new(BufReader::with_capacity(1 << 20, file));
        let header = seal::read_header(&mut input).map_err(seal_err(sealed))?;
        if (header.key_id.as_str(), header.key_version)
            != (self.transport_key.0.as_str(), self.transport_key.1)
        {
            return Err(changed(sealed));
        }
        let (_, key) = transport_key(sealed, &header, store)?;
        let reader = seal::UnsealReader::new(&header, input, &key).map_err(seal_err(sealed))?;
        drop(key);
        if reader.manifest() != self.manifest_bytes.as_slice() {
            return Err(changed(sealed));
        }
        Ok(DeliveryStream {
            delivery: self.clone(),
            reader,
            content: Sha256::new(),
            content_len: 0,
            ended: false,
            verification: Verification::default(),
        })
    }
}

fn changed(sealed: &Path) -> ReceiveError {
    ReceiveError::Refused {
        path: sealed.to_owned(),
        what: "the sealed file changed after it was received".into(),
    }
}

/// The content of a sealed delivery, decrypted as it is read (see
/// [`SealedDelivery::open`]).
pub struct DeliveryStream {
    delivery: SealedDelivery,
    reader: seal::UnsealReader<HashingReader<BufReader<File>>>,
    content: Sha256,
    content_len: u64,
    /// The authenticated end was reached (whether or not it checked out).
    ended: bool,
    verification: Verification,
}

/// What a [`DeliveryStream`] proves once read to its end, for a consumer
/// that hands the stream on (as ingest takes it): set when a `read`
/// returned `Ok(0)` after the final chunk verified, the input ended and
/// the content's checksum matched — never otherwise.
#[derive(Clone, Default)]
pub struct Verification(Arc<OnceLock<VerifiedDelivery>>);

impl Verification {
    pub fn verified(&self) -> Option<&VerifiedDelivery> {
        self.0.get()
    }
}

impl DeliveryStream {
    /// A handle on what this stream will have proved when it ends.
    pub fn verification(&self) -> Verification {
        self.verification.clone()
    }

    /// Reads what is left of the content (verifying it, copying nothing)
    /// and returns what the whole stream proved.
    pub fn finish(mut self) -> Result<VerifiedDelivery, ReceiveError> {
        let sealed = self.delivery.sealed.clone();
        while !self.ended {
            match self.reader.next_content().map_err(seal_err(&sealed))? {
                Some(piece) => {
                    self.content.update(piece);
                    self.content_len += piece.len() as u64;
                }
                None => self.conclude()?,
            }
        }
        self.verification
            .verified()
            .cloned()
            .ok_or(ReceiveError::Checksum { path: sealed })
    }

    /// At the authenticated end: the sealed file's hash and the content's
    /// checksum.
    fn conclude(&mut self) -> Result<(), ReceiveError> {
        self.ended = true;
        let sealed = self.delivery.sealed.as_path();
        // The final chunk verified only because the input ended right after
        // it, so the hash covers the whole file.
        let sealed_sha256 = self.reader.get_mut().finish().map_err(io_err(sealed))?;
        let content = hex::encode(std::mem::take(&mut self.content).finalize());
        if content != self.delivery.manifest.sha256 {
            return Err(ReceiveError::Checksum {
                path: sealed.to_owned(),
            });
        }
        let verified = VerifiedDelivery {
            delivery: self.delivery.clone(),
            sealed_sha256,
            content_len: self.content_len,
        };
        self.verification
            .0
            .set(verified)
            .expect("a stream ends once");
        Ok(())
    }
}

impl Read for DeliveryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        let n = self.reader.read(buf)?;
        if n > 0 {
            self.content.update(&buf[..n]);
            self.content_len += n as u64;
        } else {
            self.conclude().map_err(io::Error::other)?;
        }
        Ok(n)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReceiveError + use<> {
    let path = path.to_owned();
    move |source| ReceiveError::Io { path, source }
}

fn seal_err(path: &Path) -> impl FnOnce(SealError) -> ReceiveError + use<> {
    let path = path.to_owned();
    move |source| ReceiveError::Seal { path, source }
}

/// The transport key the header names, if the store holds it and it may
/// still open deliveries.
fn transport_key(
    sealed: &Path,
    header: &seal::SealHeader,
    store: &KeyStore,
) -> Result<(KeyInfo, KeyMaterial), ReceiveError> {
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
    Ok((info, key))
}

/// Parses the manifest that came out of the seal and checks its claims: a
/// delivery id, a plain file name, the partner of the key that sealed it,
/// a source that partner may deliver, stage-1 pseudonyms.
fn check_manifest(
    sealed: &Path,
    info: &KeyInfo,
    specs: &SpecSet,
    manifest_bytes: &[u8],
) -> Result<DeliveryManifest, ReceiveError> {
    let refuse = |what: &str| ReceiveError::Refused {
        path: sealed.to_owned(),
        what: what.to_owned(),
    };
    let text =
        std::str::from_utf8(manifest_bytes).map_err(|_| refuse("the manifest is not UTF-8"))?;
    let manifest =
        DeliveryManifest::parse(text, sealed).map_err(|source| ReceiveError::Manifest {
            path: sealed.to_owned(),
            source,
        })?;
    manifest
        .delivery_id
        .as_ref()
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| refuse("the manifest has no valid delivery id"))?;
    let file_name = manifest
        .file
        .as_ref()
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
    Ok(manifest)
}

/// Verifies and decrypts one sealed delivery into `staging`: what an
/// operator's `koppel unseal` does (a run never stages plaintext; it reads
/// the sealed file through [`SealedDelivery::open`]).
pub fn unseal_delivery(
    sealed: &Path,
    store: &KeyStore,
    specs: &SpecSet,
    staging: &Path,
) -> Result<ReceivedDelivery, ReceiveError> {
    std::fs::create_dir_all(staging).map_err(io_err(staging))?;
    let mut input = BufReader::with_capacity(1 << 20, File::open(sealed).map_err(io_err(sealed))?);
    let header = seal::read_header(&mut input).map_err(seal_err(sealed))?;
    let (info, key) = transport_key(sealed, &header, store)?;

    // Decrypt into a temporary file: a chunk is written only once verified,
    // but the file as a whole counts only after the last chunk verified.
    let mut content = tempfile::Builder::new()
        .prefix(".koppel-unseal-")
        .tempfile_in(staging)
        .map_err(io_err(staging))?;
    let (manifest_bytes, sha256) = {
        let mut writer =
            HashingWriter::new(BufWriter::with_capacity(1 << 20, content.as_file_mut()));
        let manifest = seal::unseal_after_header(&header, &mut input, &key, &mut writer)
            .map_err(seal_err(sealed))?;
        (manifest, writer.finish().map_err(io_err(staging))?)
    };
    drop(key);
    let manifest = check_manifest(sealed, &info, specs, &manifest_bytes)?;
    let delivery_id = manifest.delivery_id.clone().unwrap_or_default();
    let file_name = manifest.file.clone().unwrap_or_default();
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
    koppel_contract::fsx::persist(content, &staged, koppel_contract::fsx::Existing::Refuse)
        .map_err(|e| ReceiveError::Refused {
            path: sealed.to_owned(),
            what: format!(
                "cannot stage {}: {} (a delivery of the same name is already staged?)",
                staged.display(),
                e
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

/// Sealed deliveries for tests: a key store with IZZ's transport key and
/// the project's source specs.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    use koppel_contract::IdentifierMode;
    use koppel_ingest::{DeliveryManifest, SpecSet};
    use zeroize::Zeroizing;

    use crate::keystore::{KdfParams, KeyPurpose, KeyStore, Unlock};
    use crate::seal;

    pub struct Sealed {
        pub dir: tempfile::TempDir,
        pub store: KeyStore,
        pub specs: SpecSet,
        pub sealed: PathBuf,
        pub manifest: DeliveryManifest,
    }

    /// `izz_verzekerden_2024.csv` (header `bsn_P1,jaar`, then `body`)
    /// sealed by IZZ in 4 KiB chunks, so that even small files have several.
    pub fn izz_delivery(body: &str, rows: u64) -> Sealed {
        let dir = tempfile::tempdir().unwrap();
        let unlock = Unlock::Passphrase(Zeroizing::new("test".to_owned()));
        let mut store = KeyStore::create(
            &dir.path().join("keys.yaml"),
            &unlock,
            KdfParams::demo(),
            false,
        )
        .unwrap();
        store
            .generate("transport-izz", KeyPurpose::Transport, Some("IZZ"), None)
            .unwrap();
        let specs = SpecSet::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/sources"),
        )
        .unwrap();
        let content = dir.path().join("izz_verzekerden_2024.csv");
        std::fs::write(&content, format!("bsn_P1,jaar\n{body}")).unwrap();
        let mut manifest = DeliveryManifest::describe(
            &content,
            "izz_verzekerden",
            "2024",
            rows,
            IdentifierMode::PrePseudonymised,
        )
        .unwrap();
        manifest.delivery_id = Some("0123456789abcdef0123456789abcdef".into());
        manifest.partner = Some("IZZ".into());
        manifest.file = Some("izz_verzekerden_2024.csv".into());
        let sealed = dir.path().join("izz_verzekerden_2024.csv.sealed");
        let delivery = Sealed {
            dir,
            store,
            specs,
            sealed,
            manifest,
        };
        delivery.seal(&std::fs::read(&content).unwrap());
        delivery
    }

    impl Sealed {
        /// Seals `content` under the delivery's manifest, replacing the
        /// sealed file: an authentic file whose content may not be the one
        /// the manifest describes.
        pub fn seal(&self, content: &[u8]) {
            let (_, key) = self.store.key("transport-izz", None).unwrap();
            let mut out = Vec::new();
            seal::seal(
                self.manifest.to_yaml().as_bytes(),
                content,
                &mut out,
                &key,
                "transport-izz",
                1,
                seal::MIN_CHUNK_SIZE,
            )
            .unwrap();
            std::fs::write(&self.sealed, out).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::test_support::izz_delivery;
    use super::*;
    use crate::seal;

    const P1: &str = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";

    fn body(rows: usize) -> String {
        format!("{P1},2024\n").repeat(rows)
    }

    fn flip_byte(path: &Path, at: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at as usize] ^= 1;
        std::fs::write(path, bytes).unwrap();
    }

    fn seal_error(error: io::Error) -> SealError {
        SealError::from_io(error)
    }

    #[test]
    fn a_verified_delivery_reads_back_exactly_and_leaves_nothing_behind() {
        let d = izz_delivery(&body(300), 300);
        let before: Vec<_> = std::fs::read_dir(d.dir.path()).unwrap().collect();
        let verified = verify_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        let after: Vec<_> = std::fs::read_dir(d.dir.path()).unwrap().collect();
        assert_eq!(before.len(), after.len(), "verifying writes nothing");
        let expected = format!("bsn_P1,jaar\n{}", body(300));
        assert_eq!(verified.content_len, expected.len() as u64);
        assert!(verified.content_len > 4 * seal::MIN_CHUNK_SIZE as u64);
        assert_eq!(
            verified.sealed_sha256,
            koppel_contract::digest::sha256_file(&d.sealed)
                .unwrap()
                .sha256
        );
        assert_eq!(verified.delivery.manifest, d.manifest);
        assert_eq!(
            verified.delivery.transport_key,
            ("transport-izz".to_owned(), 1)
        );
        assert_eq!(
            verified.delivery.sealed_len,
            std::fs::metadata(&d.sealed).unwrap().len()
        );
        let mut content = String::new();
        verified
            .delivery
            .open(&d.store)
            .unwrap()
            .read_to_string(&mut content)
            .unwrap();
        assert_eq!(content, expected);
    }

    #[test]
    fn the_stream_that_reads_the_content_also_verifies_the_file() {
        let d = izz_delivery(&body(300), 300);
        let opened = open_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        assert_eq!(opened.manifest, d.manifest);

        let mut stream = opened.open(&d.store).unwrap();
        let proof = stream.verification();
        let mut first = [0u8; 100];
        stream.read_exact(&mut first).unwrap();
        assert_eq!(
            stream.read(&mut []).unwrap(),
            0,
            "an empty read ends nothing"
        );
        drop(stream);
        assert!(proof.verified().is_none(), "not read to the end: no proof");

        let mut stream = opened.open(&d.store).unwrap();
        let proof = stream.verification();
        let mut content = Vec::new();
        stream.read_to_end(&mut content).unwrap();
        let verified = proof.verified().expect("read to its end");
        let alone = verify_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        assert_eq!(verified.sealed_sha256, alone.sealed_sha256);
        assert_eq!(verified.content_len, content.len() as u64);
        assert_eq!(verified.content_len, alone.content_len);

        // A chunk modified after the header was read: the stream fails and
        // proves nothing, though the header and manifest still check out.
        flip_byte(&d.sealed, 9_000);
        open_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        let mut stream = opened.open(&d.store).unwrap();
        let proof = stream.verification();
        let err = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
        assert!(matches!(seal_error(err), SealError::Authentication));
        assert!(proof.verified().is_none());

        // Authentic, but not the content the manifest describes.
        d.seal(body(300).as_bytes());
        let mut stream = opened.open(&d.store).unwrap();
        let proof = stream.verification();
        assert!(std::io::copy(&mut stream, &mut std::io::sink()).is_err());
        assert!(proof.verified().is_none());
    }

    #[test]
    fn verification_refuses_a_tampered_file_and_a_wrong_checksum() {
        let d = izz_delivery(&body(300), 300);
        flip_byte(&d.sealed, 9_000);
        let err = verify_delivery(&d.sealed, &d.store, &d.specs).unwrap_err();
        assert!(
            matches!(
                err,
                ReceiveError::Seal {
                    source: SealError::Authentication,
                    ..
                }
            ),
            "{err}"
        );
        // Authentic, but not the content the manifest describes.
        d.seal(body(300).as_bytes());
        let err = verify_delivery(&d.sealed, &d.store, &d.specs).unwrap_err();
        assert!(matches!(err, ReceiveError::Checksum { .. }), "{err}");
    }

    #[test]
    fn the_stream_fails_when_the_sealed_file_changed_after_verification() {
        let d = izz_delivery(&body(300), 300);
        let verified = verify_delivery(&d.sealed, &d.store, &d.specs).unwrap();

        // A modified chunk fails as the stream reaches it.
        flip_byte(&d.sealed, 9_000);
        let mut stream = verified.delivery.open(&d.store).unwrap();
        let err = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
        assert!(matches!(seal_error(err), SealError::Authentication));

        // Another authentic content under the same manifest: every chunk
        // verifies, the checksum at the end does not.
        let mut other = std::fs::read(d.dir.path().join("izz_verzekerden_2024.csv")).unwrap();
        other[20] = b'0';
        d.seal(&other);
        let mut stream = verified.delivery.open(&d.store).unwrap();
        let err = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_err();
        let inner = err.into_inner().unwrap();
        assert!(
            matches!(
                inner.downcast_ref::<ReceiveError>(),
                Some(ReceiveError::Checksum { .. })
            ),
            "{inner}"
        );

        // Another manifest: refused before any content is read.
        let mut d = d;
        d.manifest.rows = 301;
        d.seal(&other);
        let err = verified.delivery.open(&d.store).err().unwrap();
        assert!(
            err.to_string().contains("changed after it was received"),
            "{err}"
        );
    }

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
