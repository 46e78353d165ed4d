//! Key custody: the TTP's encrypted key store and the partner key file.
//!
//! The TTP keeps every key Koppel uses in one **key store**, a YAML file whose
//! metadata (ids, purposes, versions, status, fingerprints) is readable by a
//! person and whose key material is encrypted. It is unlocked with a
//! passphrase (stretched with argon2id) or with a 32-byte **KEK file**; either
//! way the result is the key-encryption key (KEK), from which separate
//! subkeys are derived for wrapping key material (AES-256-GCM), for the
//! store's MAC (HMAC-SHA256 over everything in the file) and for a check
//! value that tells a wrong passphrase apart from a tampered store.
//!
//! In: a path and an [`Unlock`]. Out: a [`KeyStore`] that lists keys
//! ([`KeyInfo`], never material), generates, rotates and retires them, hands
//! out one key's material on request ([`KeyStore::key`]) and saves itself
//! atomically. A partner gets its own small **partner key file**
//! ([`KeyStore::export_partner_keys`], read back with [`PartnerKeys::open`]):
//! its stage-1 linkage key and its transport key, sealed with a passphrase
//! of its own.
//!
//! Memory: an open store holds the wrapping and MAC subkeys (zeroized on
//! drop), never decrypted material. Material is decrypted only inside
//! [`KeyStore::key`] and handed out as [`KeyMaterial`], which zeroizes
//! itself; the caller decides how long it lives. [`PartnerKeys`] holds its
//! two keys decrypted, as `KeyMaterial`, because a partner tool needs both
//! for its whole run.
//!
//! Changes made with `generate`, `rotate` and `retire` live in memory until
//! [`KeyStore::save`]. The file format is specified in
//! `docs/formats/keystore.md`; the constants and encoders below are that
//! specification in code, so change both together.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::SystemTime;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::secret::KeyMaterial;

/// Length of the argon2id salt, in bytes.
const SALT_LEN: usize = 16;
/// Length of an AES-GCM nonce, in bytes (96 bits).
const NONCE_LEN: usize = 12;
/// Length of key material, of the KEK and of every subkey, in bytes.
const KEY_LEN: usize = 32;
/// Length of a wrapped key: 32 bytes of ciphertext and a 16-byte GCM tag.
const WRAPPED_LEN: usize = KEY_LEN + 16;
/// The most a KEK file may hold: 64 hex characters and a CR LF.
const KEK_FILE_MAX: usize = 2 * KEY_LEN + 2;

/// Upper limits for KDF parameters read from a file. A file is read before
/// it can be authenticated, so without limits an altered file could make
/// `open` allocate terabytes or run for days.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

/// A name (key id, partner, project): what it may contain and how long.
const MAX_NAME_LEN: usize = 64;

/// The two file kinds this module reads and writes, each with its own
/// derivation labels so a subkey of one can never serve the other.
struct FileKind {
    format: &'static str,
    /// How errors call the file.
    noun: &'static str,
    wrap_label: &'static [u8],
    mac_label: &'static [u8],
    check_label: &'static [u8],
    check_value_label: &'static [u8],
    /// First lines of the file; YAML comments, not covered by the MAC.
    header: &'static str,
}

const STORE: FileKind = FileKind {
    format: "koppel-keystore/1",
    noun: "key store",
    wrap_label: b"koppel-keystore/1 wrap",
    mac_label: b"koppel-keystore/1 mac",
    check_label: b"koppel-keystore/1 check",
    check_value_label: b"koppel-keystore/1 check value",
    header: "# Koppel key store (koppel-keystore/1), see docs/formats/keystore.md.\n\
             # Key material is encrypted. Do not edit: the mac covers every field,\n\
             # so any change makes the store refuse to open.\n",
};

const PARTNER: FileKind = FileKind {
    format: "koppel-partner-keys/1",
    noun: "partner key file",
    wrap_label: b"koppel-partner-keys/1 wrap",
    mac_label: b"koppel-partner-keys/1 mac",
    check_label: b"koppel-partner-keys/1 check",
    check_value_label: b"koppel-partner-keys/1 check value",
    header: "# Koppel partner key file (koppel-partner-keys/1), see docs/formats/keystore.md.\n\
             # Key material is encrypted. Do not edit: the mac covers every field.\n",
};

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// What a key is for. Each purpose is a separate key hierarchy: a key is
/// never used for two purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// K1, the linkage key shared by the partners of one project:
    /// P1 = HMAC-SHA256(K1, type ‖ 0x00 ‖ canonical identifier).
    Stage1,
    /// The TTP's own key per linkage project (stage-2 pseudonyms).
    Stage2,
    /// The research-ID key of one release.
    Release,
    /// Per partner: seals deliveries between that partner and the TTP.
    Transport,
}

impl KeyPurpose {
    /// The snake_case name, as in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Stage1 => "stage1",
            KeyPurpose::Stage2 => "stage2",
            KeyPurpose::Release => "release",
            KeyPurpose::Transport => "transport",
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyPurpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stage1" => Ok(KeyPurpose::Stage1),
            "stage2" => Ok(KeyPurpose::Stage2),
            "release" => Ok(KeyPurpose::Release),
            "transport" => Ok(KeyPurpose::Transport),
            other => Err(format!(
                "unknown key purpose {other:?}; expected stage1, stage2, release or transport"
            )),
        }
    }
}

/// Whether a key version is still used to make new pseudonyms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// In use; the highest active version is the default.
    Active,
    /// Kept only to read old data; returned only when asked for by version.
    Retired,
}

impl KeyStatus {
    /// The snake_case name, as in files.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about one key version except its material: safe to list, log
/// and write into manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub purpose: KeyPurpose,
    pub version: u32,
    pub status: KeyStatus,
    /// Creation time, RFC 3339 UTC to the second (`2025-03-01T09:30:00Z`).
    pub created: String,
    pub partner: Option<String>,
    pub project: Option<String>,
    /// [`KeyMaterial::fingerprint`] of the material: tells keys apart.
    pub fingerprint: String,
}

/// How to obtain the key-encryption key of a key store.
pub enum Unlock {
    /// A passphrase, stretched with argon2id.
    Passphrase(Zeroizing<String>),
    /// A file holding the KEK itself (see [`read_kek_file`]), for unattended
    /// runs where the file lives on protected storage.
    KekFile(PathBuf),
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Zeroizing's own Debug would print the passphrase.
            Unlock::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Unlock::KekFile(path) => f.debug_tuple("KekFile").field(path).finish(),
        }
    }
}

/// Cost parameters of argon2id (version 0x13, 32-byte output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// For real stores and partner files: 64 MiB, 3 passes, 1 lane
    /// (RFC 9106's second recommended option).
    pub fn recommended() -> Self {
        KdfParams {
            m_cost_kib: 65536,
            t_cost: 3,
            p_cost: 1,
        }
    }

    /// Fast and weak: for the demo store, whose passphrase is public
    /// anyway, and for tests. Never for real keys.
    pub fn demo() -> Self {
        KdfParams {
            m_cost_kib: 8192,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Argon2 parameters, or why these are out of range.
    fn argon2(&self) -> Result<Params, String> {
        if self.p_cost == 0 || self.p_cost > MAX_P_COST {
            return Err(format!(
                "p_cost {} is outside 1..={MAX_P_COST}",
                self.p_cost
            ));
        }
        if self.t_cost == 0 || self.t_cost > MAX_T_COST {
            return Err(format!(
                "t_cost {} is outside 1..={MAX_T_COST}",
                self.t_cost
            ));
        }
        let min_m = 8 * self.p_cost;
        if self.m_cost_kib < min_m || self.m_cost_kib > MAX_M_COST_KIB {
            return Err(format!(
                "m_cost_kib {} is outside {min_m}..={MAX_M_COST_KIB}",
                self.m_cost_kib
            ));
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| e.to_string())
    }
}

/// Why a key-custody operation failed. No variant carries key bytes or a
/// passphrase.
#[derive(thiserror::Error, Debug)]
pub enum KeyStoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: mode {mode:04o} lets group or others read or write this key file; \
         make it private to its owner with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{}{}: unreadable {what}: {message}", path.display(), location(*line, *column))]
    Invalid {
        path: PathBuf,
        what: &'static str,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{}: unsupported {what} format {found:?}; this version of Koppel reads {expected}", path.display())]
    UnsupportedFormat {
        path: PathBuf,
        what: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{}: wrong {secret}: it does not unlock this {what}", path.display())]
    WrongPassphrase {
        path: PathBuf,
        what: &'static str,
        /// "passphrase" or "KEK file".
        secret: &'static str,
    },
    #[error("{}: this {what} is unlocked with {needs}, but {given} was given", path.display())]
    UnlockMismatch {
        path: PathBuf,
        what: &'static str,
        needs: &'static str,
        given: &'static str,
    },
    #[error(
        "{}: the {what} has been tampered with or is corrupt ({reason}); restore it from a backup",
        path.display()
    )]
    Tampered {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("no key with id {id:?}")]
    UnknownKey { id: String },
    #[error("key {id:?} has no version {version}")]
    UnknownVersion { id: String, version: u32 },
    #[error(
        "key {id:?} has no active version (all are retired); \
         ask for a version explicitly to read old data"
    )]
    Retired { id: String },
    #[error("a key with id {id:?} already exists; rotate it to add a version")]
    KeyExists { id: String },
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    FileExists { path: PathBuf },
    #[error(
        "{}: changed on disk since it was opened (saved by another process?); \
         reopen it and repeat the change",
        path.display()
    )]
    Conflict { path: PathBuf },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid KDF parameters: {0}")]
    InvalidKdf(String),
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("key {id:?} has purpose {found}, expected {expected}")]
    WrongPurpose {
        id: String,
        expected: KeyPurpose,
        found: KeyPurpose,
    },
    #[error("transport key {id:?} needs a partner")]
    PartnerRequired { id: String },
    #[error("key {id:?} belongs to partner {found}, not to {partner:?}")]
    PartnerMismatch {
        id: String,
        partner: String,
        found: String,
    },
    #[error("{}: not a KEK file: {reason}", path.display())]
    KekFile { path: PathBuf, reason: &'static str },
    #[error("the operating system's random number generator failed: {0}")]
    Random(#[source] getrandom::Error),
    #[error("key derivation (argon2id) failed: {0}")]
    Kdf(String),
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

type Result<T, E = KeyStoreError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// On-disk documents (serde) and their decoded, in-memory counterparts
// ---------------------------------------------------------------------------

/// Reads only `format`, ignoring the rest, so a file of another format or
/// version gets "unsupported format" rather than a list of unknown fields.
#[derive(Deserialize)]
struct FormatProbe {
    format: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreDoc {
    format: String,
    demo: bool,
    kek: KekDoc,
    check: String,
    keys: Vec<KeyDoc>,
    mac: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerDoc {
    format: String,
    partner: String,
    demo: bool,
    kek: KekDoc,
    check: String,
    stage1: KeyDoc,
    transport: KeyDoc,
    mac: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum KekDoc {
    Argon2id {
        salt: String,
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
    },
    File,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    id: String,
    purpose: KeyPurpose,
    version: u32,
    status: KeyStatus,
    created: String,
    partner: Option<String>,
    project: Option<String>,
    fingerprint: String,
    nonce: String,
    ciphertext: String,
}

/// Where the KEK comes from, decoded.
#[derive(Clone, Debug)]
enum Kek {
    Argon2id {
        salt: [u8; SALT_LEN],
        params: KdfParams,
    },
    File,
}

impl Kek {
    fn to_doc(&self) -> KekDoc {
        match self {
            Kek::Argon2id { salt, params } => KekDoc::Argon2id {
                salt: BASE64.encode(salt),
                m_cost_kib: params.m_cost_kib,
                t_cost: params.t_cost,
                p_cost: params.p_cost,
            },
            Kek::File => KekDoc::File,
        }
    }

    fn from_doc(doc: &KekDoc, kind: &FileKind, path: &Path) -> Result<Self> {
        match doc {
            KekDoc::File => Ok(Kek::File),
            KekDoc::Argon2id {
                salt,
                m_cost_kib,
                t_cost,
                p_cost,
            } => {
                let params = KdfParams {
                    m_cost_kib: *m_cost_kib,
                    t_cost: *t_cost,
                    p_cost: *p_cost,
                };
                params.argon2().map_err(|message| KeyStoreError::Invalid {
                    path: path.to_owned(),
                    what: kind.noun,
                    line: None,
                    column: None,
                    message: format!("kek: {message}"),
                })?;
                let salt = decode_fixed::<SALT_LEN>(salt, Encoding::Base64)
                    .map_err(|why| tampered(kind, path, format!("kek.salt {why}")))?;
                Ok(Kek::Argon2id { salt, params })
            }
        }
    }

    fn secret_name(&self) -> &'static str {
        match self {
            Kek::Argon2id { .. } => "passphrase",
            Kek::File => "KEK file",
        }
    }
}

/// One key version as stored: metadata in the clear, material wrapped.
#[derive(Clone)]
struct Sealed {
    info: KeyInfo,
    nonce: [u8; NONCE_LEN],
    /// AES-256-GCM ciphertext of the 32 material bytes followed by the tag.
    wrapped: [u8; WRAPPED_LEN],
}

impl Sealed {
    fn to_doc(&self) -> KeyDoc {
        let info = &self.info;
        KeyDoc {
            id: info.id.clone(),
            purpose: info.purpose,
            version: info.version,
            status: info.status,
            created: info.created.clone(),
            partner: info.partner.clone(),
            project: info.project.clone(),
            fingerprint: info.fingerprint.clone(),
            nonce: BASE64.encode(&self.nonce),
            ciphertext: BASE64.encode(&self.wrapped),
        }
    }

    fn from_doc(doc: KeyDoc, field: &str, kind: &FileKind, path: &Path) -> Result<Self> {
        let nonce = decode_fixed::<NONCE_LEN>(&doc.nonce, Encoding::Base64)
            .map_err(|why| tampered(kind, path, format!("{field}.nonce {why}")))?;
        let wrapped = decode_fixed::<WRAPPED_LEN>(&doc.ciphertext, Encoding::Base64)
            .map_err(|why| tampered(kind, path, format!("{field}.ciphertext {why}")))?;
        Ok(Sealed {
            info: KeyInfo {
                id: doc.id,
                purpose: doc.purpose,
                version: doc.version,
                status: doc.status,
                created: doc.created,
                partner: doc.partner,
                project: doc.project,
                fingerprint: doc.fingerprint,
            },
            nonce,
            wrapped,
        })
    }
}

// ---------------------------------------------------------------------------
// The key store
// ---------------------------------------------------------------------------

/// The TTP's key store, unlocked. See the module documentation.
pub struct KeyStore {
    path: PathBuf,
    demo: bool,
    kek: Kek,
    /// The public check value, written back unchanged on save.
    check: [u8; KEY_LEN],
    /// Sorted by id, then version.
    keys: Vec<Sealed>,
    wrap_key: Zeroizing<[u8; KEY_LEN]>,
    mac_key: Zeroizing<[u8; KEY_LEN]>,
    /// SHA-256 of the file as last read or written, to notice another
    /// process saving in between (which would otherwise lose its keys).
    /// A Mutex rather than a Cell keeps the store `Sync`.
    on_disk: Mutex<[u8; 32]>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let i = &k.info;
                format!("{} v{} ({}, {})", i.id, i.version, i.purpose, i.status)
            })
            .collect();
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .field("demo", &self.demo)
            .field("unlock", &self.kek.secret_name())
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// New empty store; refuses to overwrite an existing file. `demo` marks a
    /// store whose passphrase is public. With [`Unlock::KekFile`] the `kdf`
    /// parameters are not used. The file is written at once (mode 0600).
    pub fn create(path: &Path, unlock: &Unlock, kdf: KdfParams, demo: bool) -> Result<Self> {
        // Fail before the (slow) KDF when the answer is already known; the
        // exclusive create below closes the race.
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyStoreError::FileExists {
                path: path.to_owned(),
            });
        }
        let kek = match unlock {
            Unlock::Passphrase(_) => {
                kdf.argon2().map_err(KeyStoreError::InvalidKdf)?;
                Kek::Argon2id {
                    salt: random_bytes()?,
                    params: kdf,
                }
            }
            Unlock::KekFile(_) => Kek::File,
        };
        let root = derive_kek(&STORE, path, &kek, unlock)?;
        let sub = Subkeys::derive(&STORE, &root);
        let store = KeyStore {
            path: path.to_owned(),
            demo,
            kek,
            check: sub.check_value(&STORE),
            keys: Vec::new(),
            wrap_key: sub.wrap,
            mac_key: sub.mac,
            on_disk: Mutex::new([0; 32]),
        };
        let bytes = store.render()?;
        write_new_private(path, &bytes)?;
        store.set_on_disk(sha256(&bytes));
        Ok(store)
    }

    /// Opens and authenticates a store. Order of checks: file permissions
    /// (before anything is read), format, passphrase/KEK (check value), then
    /// the MAC over the whole content.
    pub fn open(path: &Path, unlock: &Unlock) -> Result<Self> {
        let mut file = open_private(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(path))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| KeyStoreError::Invalid {
            path: path.to_owned(),
            what: STORE.noun,
            line: None,
            column: None,
            message: format!("not UTF-8 text: {e}"),
        })?;
        let doc: StoreDoc = parse_doc(text, &STORE, path)?;

        let kek = Kek::from_doc(&doc.kek, &STORE, path)?;
        let stored_check = decode_fixed::<KEY_LEN>(&doc.check, Encoding::Hex)
            .map_err(|why| tampered(&STORE, path, format!("check {why}")))?;
        let mac = decode_fixed::<KEY_LEN>(&doc.mac, Encoding::Hex)
            .map_err(|why| tampered(&STORE, path, format!("mac {why}")))?;
        let mut keys = Vec::with_capacity(doc.keys.len());
        for (i, key) in doc.keys.into_iter().enumerate() {
            keys.push(Sealed::from_doc(key, &format!("keys[{i}]"), &STORE, path)?);
        }

        let root = derive_kek(&STORE, path, &kek, unlock)?;
        let sub = Subkeys::derive(&STORE, &root);
        drop(root);
        sub.verify_check(&STORE, path, &kek, &stored_check)?;
        let input = store_mac_input(doc.demo, &kek, &stored_check, &keys);
        verify_mac(&sub.mac[..], &input, &mac)
            .map_err(|()| tampered(&STORE, path, "the mac does not match the content".into()))?;

        // Authentic from here on; what remains would be a bug in a writer.
        keys.sort_by(|a, b| (&a.info.id, a.info.version).cmp(&(&b.info.id, b.info.version)));
        if let Some(w) = keys
            .windows(2)
            .find(|w| w[0].info.id == w[1].info.id && w[0].info.version == w[1].info.version)
        {
            return Err(KeyStoreError::Invalid {
                path: path.to_owned(),
                what: STORE.noun,
                line: None,
                column: None,
                message: format!(
                    "key {:?} version {} appears twice",
                    w[0].info.id, w[0].info.version
                ),
            });
        }

        Ok(KeyStore {
            path: path.to_owned(),
            demo: doc.demo,
            kek,
            check: stored_check,
            keys,
            wrap_key: sub.wrap,
            mac_key: sub.mac,
            on_disk: Mutex::new(sha256(&bytes)),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a demo store, whose passphrase is public: its keys
    /// must never touch real data.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// Every key version, sorted by id then version. Never material.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys.iter().map(|k| k.info.clone()).collect()
    }

    /// Generates version 1 of a new key. A transport key needs a partner.
    pub fn generate(
        &mut self,
        id: &str,
        purpose: KeyPurpose,
        partner: Option<&str>,
        project: Option<&str>,
    ) -> Result<KeyInfo> {
        check_name("key id", id)?;
        if let Some(p) = partner {
            check_name("partner", p)?;
        }
        if let Some(p) = project {
            check_name("project", p)?;
        }
        if purpose == KeyPurpose::Transport && partner.is_none() {
            return Err(KeyStoreError::PartnerRequired { id: id.to_owned() });
        }
        if self.keys.iter().any(|k| k.info.id == id) {
            return Err(KeyStoreError::KeyExists { id: id.to_owned() });
        }
        self.add_version(
            id,
            purpose,
            1,
            partner.map(str::to_owned),
            project.map(str::to_owned),
        )
    }

    /// Adds version n+1 of a key (same purpose, partner and project), active.
    /// Older versions keep their status, so old and new pseudonyms can be
    /// made side by side during a migration; retire them when it is done.
    pub fn rotate(&mut self, id: &str) -> Result<KeyInfo> {
        let latest = self
            .keys
            .iter()
            .filter(|k| k.info.id == id)
            .max_by_key(|k| k.info.version)
            .ok_or_else(|| KeyStoreError::UnknownKey { id: id.to_owned() })?;
        let info = latest.info.clone();
        let version = info
            .version
            .checked_add(1)
            .ok_or_else(|| KeyStoreError::UnknownVersion {
                id: id.to_owned(),
                version: u32::MAX,
            })?;
        self.add_version(id, info.purpose, version, info.partner, info.project)
    }

    /// Marks one version retired: no longer the default, still readable by
    /// explicit version. Retiring a retired version changes nothing.
    pub fn retire(&mut self, id: &str, version: u32) -> Result<KeyInfo> {
        let idx = self.find(id, version)?;
        let key = &mut self.keys[idx];
        key.info.status = KeyStatus::Retired;
        Ok(key.info.clone())
    }

    /// The key with this id: a given version, or the highest active version.
    /// Retired keys are only returned when a version is asked for explicitly
    /// (to read old data); [`KeyStoreError::Retired`] otherwise. Decrypts the
    /// material now and checks it against the stored fingerprint.
    pub fn key(&self, id: &str, version: Option<u32>) -> Result<(KeyInfo, KeyMaterial)> {
        let idx = match version {
            Some(v) => self.find(id, v)?,
            None => {
                let mut versions = self
                    .keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.info.id == id)
                    .peekable();
                if versions.peek().is_none() {
                    return Err(KeyStoreError::UnknownKey { id: id.to_owned() });
                }
                versions
                    .filter(|(_, k)| k.info.status == KeyStatus::Active)
                    .max_by_key(|(_, k)| k.info.version)
                    .map(|(i, _)| i)
                    .ok_or_else(|| KeyStoreError::Retired { id: id.to_owned() })?
            }
        };
        let sealed = &self.keys[idx];
        let material = unwrap_key(&STORE, &self.path, &self.wrap_key, sealed)?;
        Ok((sealed.info.clone(), material))
    }

    /// Writes the store atomically: a temporary file (mode 0600) in the same
    /// directory, synced, then renamed over the old one. Refuses when the
    /// file changed on disk since this store read or wrote it.
    pub fn save(&self) -> Result<()> {
        let expected = *self.on_disk.lock().unwrap_or_else(|p| p.into_inner());
        match fs::read(&self.path) {
            Ok(current) if sha256(&current) != expected => {
                return Err(KeyStoreError::Conflict {
                    path: self.path.clone(),
                });
            }
            // A store deleted meanwhile is simply written again.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        let bytes = self.render()?;
        replace_private(&self.path, &bytes)?;
        self.set_on_disk(sha256(&bytes));
        Ok(())
    }

    /// What a partner needs: the current (highest active) version of its
    /// stage-1 key and of its transport key, in a file of its own sealed
    /// with `passphrase` (argon2id + AES-256-GCM), mode 0600. Refuses to
    /// overwrite `out`. After a rotation, export again.
    pub fn export_partner_keys(
        &self,
        partner: &str,
        stage1_id: &str,
        transport_id: &str,
        out: &Path,
        passphrase: &str,
        kdf: KdfParams,
    ) -> Result<()> {
        check_name("partner", partner)?;
        if passphrase.is_empty() {
            return Err(KeyStoreError::EmptyPassphrase);
        }
        kdf.argon2().map_err(KeyStoreError::InvalidKdf)?;
        let (stage1_info, stage1) = self.key(stage1_id, None)?;
        let (transport_info, transport) = self.key(transport_id, None)?;
        expect_purpose(&stage1_info, KeyPurpose::Stage1)?;
        expect_purpose(&transport_info, KeyPurpose::Transport)?;
        for info in [&stage1_info, &transport_info] {
            // A stage-1 key is usually shared (no partner); if it names one,
            // it must be this one. A transport key always names one.
            let required = info.purpose == KeyPurpose::Transport;
            match &info.partner {
                Some(p) if p == partner => {}
                None if !required => {}
                other => {
                    return Err(KeyStoreError::PartnerMismatch {
                        id: info.id.clone(),
                        partner: partner.to_owned(),
                        found: other.clone().unwrap_or_else(|| "none".into()),
                    });
                }
            }
        }
        if fs::symlink_metadata(out).is_ok() {
            return Err(KeyStoreError::FileExists {
                path: out.to_owned(),
            });
        }

        let kek = Kek::Argon2id {
            salt: random_bytes()?,
            params: kdf,
        };
        let root = derive_kek(
            &PARTNER,
            out,
            &kek,
            &Unlock::Passphrase(Zeroizing::new(passphrase.to_owned())),
        )?;
        let sub = Subkeys::derive(&PARTNER, &root);
        drop(root);
        let stage1 = wrap_key(&PARTNER, &sub.wrap, stage1_info, &stage1)?;
        let transport = wrap_key(&PARTNER, &sub.wrap, transport_info, &transport)?;
        let check = sub.check_value(&PARTNER);
        let input = partner_mac_input(partner, self.demo, &kek, &check, &stage1, &transport);
        let doc = PartnerDoc {
            format: PARTNER.format.to_owned(),
            partner: partner.to_owned(),
            demo: self.demo,
            kek: kek.to_doc(),
            check: hex::encode(check),
            stage1: stage1.to_doc(),
            transport: transport.to_doc(),
            mac: hex::encode(compute_mac(&sub.mac[..], &input)),
        };
        let bytes = render_doc(&doc, &PARTNER, out)?;
        write_new_private(out, &bytes)
    }

    fn find(&self, id: &str, version: u32) -> Result<usize> {
        let mut known = false;
        for (i, k) in self.keys.iter().enumerate() {
            if k.info.id == id {
                known = true;
                if k.info.version == version {
                    return Ok(i);
                }
            }
        }
        Err(if known {
            KeyStoreError::UnknownVersion {
                id: id.to_owned(),
                version,
            }
        } else {
            KeyStoreError::UnknownKey { id: id.to_owned() }
        })
    }

    fn add_version(
        &mut self,
        id: &str,
        purpose: KeyPurpose,
        version: u32,
        partner: Option<String>,
        project: Option<String>,
    ) -> Result<KeyInfo> {
        let material = KeyMaterial::generate().map_err(KeyStoreError::Random)?;
        let info = KeyInfo {
            id: id.to_owned(),
            purpose,
            version,
            status: KeyStatus::Active,
            created: now_rfc3339(),
            partner,
            project,
            fingerprint: material.fingerprint(),
        };
        let sealed = wrap_key(&STORE, &self.wrap_key, info.clone(), &material)?;
        let at = self
            .keys
            .partition_point(|k| (k.info.id.as_str(), k.info.version) < (id, version));
        self.keys.insert(at, sealed);
        Ok(info)
    }

    fn render(&self) -> Result<Vec<u8>> {
        let input = store_mac_input(self.demo, &self.kek, &self.check, &self.keys);
        let doc = StoreDoc {
            format: STORE.format.to_owned(),
            demo: self.demo,
            kek: self.kek.to_doc(),
            check: hex::encode(self.check),
            keys: self.keys.iter().map(Sealed::to_doc).collect(),
            mac: hex::encode(compute_mac(&self.mac_key[..], &input)),
        };
        render_doc(&doc, &STORE, &self.path)
    }

    fn set_on_disk(&self, digest: [u8; 32]) {
        *self.on_disk.lock().unwrap_or_else(|p| p.into_inner()) = digest;
    }
}

// ---------------------------------------------------------------------------
// The partner key file
// ---------------------------------------------------------------------------

/// A partner's keys, decrypted: its stage-1 linkage key and its transport
/// key, each with its [`KeyInfo`] so pseudonyms and deliveries can be
/// labelled with key id and version. `Debug` shows no material.
#[derive(Debug)]
pub struct PartnerKeys {
    pub partner: String,
    pub stage1: (KeyInfo, KeyMaterial),
    pub transport: (KeyInfo, KeyMaterial),
    /// Exported from a demo store: never for real data.
    pub demo: bool,
}

impl PartnerKeys {
    /// Opens and authenticates a partner key file written by
    /// [`KeyStore::export_partner_keys`]. Same check order as
    /// [`KeyStore::open`].
    pub fn open(path: &Path, passphrase: &str) -> Result<Self> {
        let mut file = open_private(path)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io_err(path))?;
        let doc: PartnerDoc = parse_doc(&text, &PARTNER, path)?;

        let kek = Kek::from_doc(&doc.kek, &PARTNER, path)?;
        if let Kek::File = kek {
            return Err(tampered(
                &PARTNER,
                path,
                "kek.kind: partner key files are always sealed with a passphrase".into(),
            ));
        }
        let stored_check = decode_fixed::<KEY_LEN>(&doc.check, Encoding::Hex)
            .map_err(|why| tampered(&PARTNER, path, format!("check {why}")))?;
        let mac = decode_fixed::<KEY_LEN>(&doc.mac, Encoding::Hex)
            .map_err(|why| tampered(&PARTNER, path, format!("mac {why}")))?;
        let stage1 = Sealed::from_doc(doc.stage1, "stage1", &PARTNER, path)?;
        let transport = Sealed::from_doc(doc.transport, "transport", &PARTNER, path)?;

        let unlock = Unlock::Passphrase(Zeroizing::new(passphrase.to_owned()));
        let root = derive_kek(&PARTNER, path, &kek, &unlock)?;
        let sub = Subkeys::derive(&PARTNER, &root);
        drop(root);
        sub.verify_check(&PARTNER, path, &kek, &stored_check)?;
        let input = partner_mac_input(
            &doc.partner,
            doc.demo,
            &kek,
            &stored_check,
            &stage1,
            &transport,
        );
        verify_mac(&sub.mac[..], &input, &mac)
            .map_err(|()| tampered(&PARTNER, path, "the mac does not match the content".into()))?;

        // Authentic; these hold for every file this module writes.
        let consistent = stage1.info.purpose == KeyPurpose::Stage1
            && transport.info.purpose == KeyPurpose::Transport
            && transport.info.partner.as_deref() == Some(doc.partner.as_str());
        if !consistent {
            return Err(KeyStoreError::Invalid {
                path: path.to_owned(),
                what: PARTNER.noun,
                line: None,
                column: None,
                message: "stage1/transport keys do not match their roles or the partner".into(),
            });
        }
        let stage1_material = unwrap_key(&PARTNER, path, &sub.wrap, &stage1)?;
        let transport_material = unwrap_key(&PARTNER, path, &sub.wrap, &transport)?;
        Ok(PartnerKeys {
            partner: doc.partner,
            stage1: (stage1.info, stage1_material),
            transport: (transport.info, transport_material),
            demo: doc.demo,
        })
    }
}

/// Reads a KEK file: exactly 32 raw bytes, or 64 hex characters optionally
/// followed by one newline (LF or CR LF). Like a key store, it must not be
/// readable or writable by group or others.
pub fn read_kek_file(path: &Path) -> Result<KeyMaterial> {
    let file = open_private(path)?;
    // Room for one byte more than allowed, so an oversized file is noticed
    // without reading it whole; the capacity is never exceeded, so the
    // secret bytes are not left behind by a reallocation.
    let limit = KEK_FILE_MAX + 1;
    let mut buf = Zeroizing::new(Vec::with_capacity(limit + 1));
    file.take(limit as u64)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    let bad = |reason| KeyStoreError::KekFile {
        path: path.to_owned(),
        reason,
    };
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if buf.len() == KEY_LEN {
        key.copy_from_slice(&buf);
    } else {
        let text = buf
            .strip_suffix(b"\r\n")
            .or_else(|| buf.strip_suffix(b"\n"))
            .unwrap_or(&buf);
        if text.len() != 2 * KEY_LEN {
            return Err(bad("expected 32 raw bytes or 64 hex characters"));
        }
        hex::decode_to_slice(text, &mut key[..])
            .map_err(|_| bad("expected 32 raw bytes or 64 hex characters"))?;
    }
    Ok(KeyMaterial::from_bytes(*key))
}

// ---------------------------------------------------------------------------
// Key derivation, wrapping and the MAC
// ---------------------------------------------------------------------------

/// The KEK: argon2id of the passphrase, or the KEK file's bytes.
fn derive_kek(kind: &FileKind, path: &Path, kek: &Kek, unlock: &Unlock) -> Result<KeyMaterial> {
    let mismatch = |needs, given| KeyStoreError::UnlockMismatch {
        path: path.to_owned(),
        what: kind.noun,
        needs,
        given,
    };
    match (kek, unlock) {
        (Kek::Argon2id { salt, params }, Unlock::Passphrase(passphrase)) => {
            if passphrase.is_empty() {
                return Err(KeyStoreError::EmptyPassphrase);
            }
            let params = params.argon2().map_err(KeyStoreError::InvalidKdf)?;
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(passphrase.as_bytes(), salt, &mut out[..])
                .map_err(|e| KeyStoreError::Kdf(e.to_string()))?;
            Ok(KeyMaterial::from_bytes(*out))
        }
        (Kek::File, Unlock::KekFile(file)) => read_kek_file(file),
        (Kek::Argon2id { .. }, Unlock::KekFile(_)) => Err(mismatch("a passphrase", "a KEK file")),
        (Kek::File, Unlock::Passphrase(_)) => Err(mismatch("a KEK file", "a passphrase")),
    }
}

/// The subkeys derived from one KEK. The KEK itself is used for nothing
/// but these derivations.
struct Subkeys {
    wrap: Zeroizing<[u8; KEY_LEN]>,
    mac: Zeroizing<[u8; KEY_LEN]>,
    check: Zeroizing<[u8; KEY_LEN]>,
}

impl Subkeys {
    fn derive(kind: &FileKind, kek: &KeyMaterial) -> Self {
        let mut sub = Subkeys {
            wrap: Zeroizing::new([0u8; KEY_LEN]),
            mac: Zeroizing::new([0u8; KEY_LEN]),
            check: Zeroizing::new([0u8; KEY_LEN]),
        };
        hmac_into(kek.expose(), &[kind.wrap_label], &mut sub.wrap);
        hmac_into(kek.expose(), &[kind.mac_label], &mut sub.mac);
        hmac_into(kek.expose(), &[kind.check_label], &mut sub.check);
        sub
    }

    /// The public check value: HMAC(check subkey, check value label).
    fn check_value(&self, kind: &FileKind) -> [u8; KEY_LEN] {
        compute_mac(&self.check[..], kind.check_value_label)
    }

    /// Wrong passphrase or KEK file, told apart from tampering: only the
    /// right KEK reproduces the stored check value. Constant-time.
    fn verify_check(&self, kind: &FileKind, path: &Path, kek: &Kek, stored: &[u8]) -> Result<()> {
        verify_mac(&self.check[..], kind.check_value_label, stored).map_err(|()| {
            KeyStoreError::WrongPassphrase {
                path: path.to_owned(),
                what: kind.noun,
                secret: kek.secret_name(),
            }
        })
    }
}

fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// HMAC-SHA256(key, parts concatenated) into `out`, wiping the temporary.
fn hmac_into(key: &[u8], parts: &[&[u8]], out: &mut [u8; KEY_LEN]) {
    let mut mac = new_hmac(key);
    for part in parts {
        mac.update(part);
    }
    let mut tag = mac.finalize().into_bytes();
    out.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
}

fn compute_mac(key: &[u8], input: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    hmac_into(key, &[input], &mut out);
    out
}

fn verify_mac(key: &[u8], input: &[u8], tag: &[u8]) -> std::result::Result<(), ()> {
    let mut mac = new_hmac(key);
    mac.update(input);
    mac.verify_slice(tag).map_err(|_| ())
}

/// AES-256-GCM of the material under the wrapping key, fresh random nonce,
/// the key's identity as AAD.
fn wrap_key(
    kind: &FileKind,
    wrap_key: &[u8; KEY_LEN],
    info: KeyInfo,
    material: &KeyMaterial,
) -> Result<Sealed> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
    let aad = key_aad(kind, &info);
    let cipher = Aes256Gcm::new(wrap_key.into());
    // Capacity for material and tag, so encrypting in place never
    // reallocates and leaves a copy of the plaintext behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
    buf.extend_from_slice(material.expose());
    cipher
        .encrypt_in_place(&Nonce::<Aes256Gcm>::from(nonce_bytes), &aad, &mut *buf)
        // GCM refuses only plaintexts over 64 GiB and AAD over 2^61 bytes.
        .expect("AES-GCM encrypts 32 bytes with short AAD");
    let mut wrapped = [0u8; WRAPPED_LEN];
    // GCM output is plaintext length plus the 16-byte tag: 48 bytes.
    wrapped.copy_from_slice(&buf);
    Ok(Sealed {
        info,
        nonce: nonce_bytes,
        wrapped,
    })
}

/// Decrypts one key and checks it against its fingerprint. A failure is
/// tampering: the MAC already proved the file authentic, so the wrapped
/// key or its metadata was changed after the MAC was made, in memory or by
/// someone holding the KEK.
fn unwrap_key(
    kind: &FileKind,
    path: &Path,
    wrap_key: &[u8; KEY_LEN],
    sealed: &Sealed,
) -> Result<KeyMaterial> {
    let info = &sealed.info;
    let aad = key_aad(kind, info);
    let cipher = Aes256Gcm::new(wrap_key.into());
    let mut buf = Zeroizing::new(sealed.wrapped.to_vec());
    cipher
        .decrypt_in_place(&Nonce::<Aes256Gcm>::from(sealed.nonce), &aad, &mut *buf)
        .map_err(|_| {
            tampered(
                kind,
                path,
                format!("key {:?} v{} does not decrypt", info.id, info.version),
            )
        })?;
    let mut bytes = [0u8; KEY_LEN];
    // 48 bytes in, minus the 16-byte tag: always 32.
    bytes.copy_from_slice(&buf);
    let material = KeyMaterial::from_bytes(bytes);
    bytes.zeroize();
    if material.fingerprint() != info.fingerprint {
        return Err(tampered(
            kind,
            path,
            format!(
                "key {:?} v{} does not match its fingerprint",
                info.id, info.version
            ),
        ));
    }
    Ok(material)
}

// ---------------------------------------------------------------------------
// Canonical encoding (AAD and MAC input)
// ---------------------------------------------------------------------------

/// The length-prefixed encoding of docs/formats/keystore.md: strings and
/// byte strings as u64 big-endian length then bytes, integers as u32
/// big-endian, booleans and absent/present options as one byte 0 or 1.
#[derive(Default)]
struct Canon(Vec<u8>);

impl Canon {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u64).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn u32(&mut self, n: u32) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    fn flag(&mut self, b: bool) -> &mut Self {
        self.0.push(u8::from(b));
        self
    }
    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.flag(false),
            Some(s) => self.flag(true).str(s),
        }
    }
    fn kek(&mut self, kek: &Kek) -> &mut Self {
        match kek {
            Kek::Argon2id { salt, params } => self
                .str("argon2id")
                .bytes(salt)
                .u32(params.m_cost_kib)
                .u32(params.t_cost)
                .u32(params.p_cost),
            Kek::File => self.str("file"),
        }
    }
    /// Every field of a stored key, in file order.
    fn key(&mut self, k: &Sealed) -> &mut Self {
        let i = &k.info;
        self.str(&i.id)
            .str(i.purpose.as_str())
            .u32(i.version)
            .str(i.status.as_str())
            .str(&i.created)
            .opt(i.partner.as_deref())
            .opt(i.project.as_deref())
            .str(&i.fingerprint)
            .bytes(&k.nonce)
            .bytes(&k.wrapped)
    }
}

/// AAD of a wrapped key: the identity that must never change (status may,
/// so it is left to the MAC).
fn key_aad(kind: &FileKind, info: &KeyInfo) -> Vec<u8> {
    let mut c = Canon::default();
    c.str(kind.format)
        .str(&info.id)
        .str(info.purpose.as_str())
        .u32(info.version)
        .opt(info.partner.as_deref())
        .opt(info.project.as_deref());
    c.0
}

fn store_mac_input(demo: bool, kek: &Kek, check: &[u8], keys: &[Sealed]) -> Vec<u8> {
    let mut c = Canon::default();
    c.str(STORE.format).flag(demo).kek(kek).bytes(check);
    c.0.extend_from_slice(&(keys.len() as u64).to_be_bytes());
    for k in keys {
        c.key(k);
    }
    c.0
}

fn partner_mac_input(
    partner: &str,
    demo: bool,
    kek: &Kek,
    check: &[u8],
    stage1: &Sealed,
    transport: &Sealed,
) -> Vec<u8> {
    let mut c = Canon::default();
    c.str(PARTNER.format)
        .str(partner)
        .flag(demo)
        .kek(kek)
        .bytes(check)
        .key(stage1)
        .key(transport);
    c.0
}

// ---------------------------------------------------------------------------
// Parsing, rendering and files
// ---------------------------------------------------------------------------

fn parse_doc<T: serde::de::DeserializeOwned>(
    text: &str,
    kind: &FileKind,
    path: &Path,
) -> Result<T> {
    let invalid = |e: serde_yaml::Error| {
        let loc = e.location().map(|l| (l.line(), l.column()));
        let mut message = e.to_string();
        // The message repeats the location we report in front.
        if loc.is_some()
            && let Some(at) = message.rfind(" at line ")
        {
            message.truncate(at);
        }
        KeyStoreError::Invalid {
            path: path.to_owned(),
            what: kind.noun,
            line: loc.map(|l| l.0),
            column: loc.map(|l| l.1),
            message,
        }
    };
    let probe: FormatProbe = serde_yaml::from_str(text).map_err(invalid)?;
    match probe.format {
        Some(f) if f == kind.format => {}
        found => {
            return Err(KeyStoreError::UnsupportedFormat {
                path: path.to_owned(),
                what: kind.noun,
                found: found.unwrap_or_else(|| "(none)".into()),
                expected: kind.format,
            });
        }
    }
    serde_yaml::from_str(text).map_err(invalid)
}

fn render_doc<T: Serialize>(doc: &T, kind: &FileKind, path: &Path) -> Result<Vec<u8>> {
    let yaml = serde_yaml::to_string(doc).map_err(|e| KeyStoreError::Invalid {
        path: path.to_owned(),
        what: kind.noun,
        line: None,
        column: None,
        message: format!("cannot serialise: {e}"),
    })?;
    Ok(format!("{}{yaml}", kind.header).into_bytes())
}

#[derive(Clone, Copy)]
enum Encoding {
    Base64,
    Hex,
}

/// Decodes a fixed-length binary field; the error says what is wrong with
/// it (never its value).
fn decode_fixed<const N: usize>(text: &str, enc: Encoding) -> std::result::Result<[u8; N], String> {
    let bytes = match enc {
        Encoding::Base64 => BASE64
            .decode(text.as_bytes())
            .map_err(|_| "is not base64")?,
        Encoding::Hex => hex::decode(text).map_err(|_| "is not hex")?,
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("has {} bytes, expected {N}", b.len()))
}

fn tampered(kind: &FileKind, path: &Path, reason: String) -> KeyStoreError {
    KeyStoreError::Tampered {
        path: path.to_owned(),
        what: kind.noun,
        reason,
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(KeyStoreError::Random)?;
    Ok(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn now_rfc3339() -> String {
    // From SystemTime rather than Utc::now(), so chrono's `clock` feature
    // is not needed.
    chrono::DateTime::<chrono::Utc>::from(SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Ids, partner and project names end up in file names, column labels and
/// audit logs: ASCII letters, digits, `-`, `_`, `.`, starting with a letter
/// or digit, at most 64 characters.
fn check_name(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some("is empty")
    } else if value.len() > MAX_NAME_LEN {
        Some("is longer than 64 characters")
    } else if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must start with a letter or digit")
    } else if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("may only hold ASCII letters, digits, '-', '_' and '.'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(KeyStoreError::InvalidName {
            what,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn expect_purpose(info: &KeyInfo, expected: KeyPurpose) -> Result<()> {
    if info.purpose == expected {
        Ok(())
    } else {
        Err(KeyStoreError::WrongPurpose {
            id: info.id.clone(),
            expected,
            found: info.purpose,
        })
    }
}

/// Opens a key file for reading after checking, on the open handle (so the
/// file checked is the file read), that group and others have no access.
fn open_private(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(io_err(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(io_err(path))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyStoreError::Permissions {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(file)
}

/// Opens a new file, mode 0600, failing if it exists.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // The umask can only take bits away; set 0600 exactly anyway, so the
    // owner can always read the file back.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn write_all_synced(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes a file that must not exist yet.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = create_private(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            KeyStoreError::FileExists {
                path: path.to_owned(),
            }
        } else {
            io_err(path)(e)
        }
    })?;
    write_all_synced(file, bytes).map_err(|e| {
        // Leave no half-written key file behind.
        let _ = fs::remove_file(path);
        io_err(path)(e)
    })
}

/// Replaces a file atomically, private to its owner
/// (`koppel_contract::fsx::write_atomic`: temporary file beside it, fsync,
/// rename, fsync of the directory).
fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    koppel_contract::fsx::write_atomic(path, bytes).map_err(io_err(path))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use serde_yaml::Value;

    const PASS: &str = "correct horse battery staple";

    fn pass(p: &str) -> Unlock {
        Unlock::Passphrase(Zeroizing::new(p.to_owned()))
    }

    fn new_store(dir: &Path) -> (PathBuf, KeyStore) {
        let path = dir.join("keys.yaml");
        let store = KeyStore::create(&path, &pass(PASS), KdfParams::demo(), false).unwrap();
        (path, store)
    }

    /// A store with one key of each purpose, saved.
    fn filled_store(dir: &Path) -> (PathBuf, KeyStore) {
        let (path, mut store) = new_store(dir);
        store
            .generate("k1-sick", KeyPurpose::Stage1, None, Some("sick"))
            .unwrap();
        store
            .generate("k2-sick", KeyPurpose::Stage2, None, Some("sick"))
            .unwrap();
        store
            .generate("rel-2025-1", KeyPurpose::Release, None, Some("sick"))
            .unwrap();
        store
            .generate("tr-pfzw", KeyPurpose::Transport, Some("pfzw"), None)
            .unwrap();
        store.save().unwrap();
        (path, store)
    }

    fn materials(store: &KeyStore) -> Vec<(KeyInfo, KeyMaterial)> {
        store
            .list()
            .iter()
            .map(|i| store.key(&i.id, Some(i.version)).unwrap())
            .collect()
    }

    /// Edits the YAML document as a value and writes it back in place (the
    /// file keeps its mode).
    fn tamper(path: &Path, edit: impl FnOnce(&mut Value)) {
        let mut doc: Value = serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        edit(&mut doc);
        fs::write(path, serde_yaml::to_string(&doc).unwrap()).unwrap();
    }

    fn assert_tampered(path: &Path) {
        match KeyStore::open(path, &pass(PASS)) {
            Err(KeyStoreError::Tampered { .. }) => {}
            other => panic!("expected Tampered, got {other:?}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn reopen_gives_same_material_and_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = filled_store(dir.path());
        let before = materials(&store);
        assert_eq!(before.len(), 4);
        let purposes: Vec<_> = before.iter().map(|(i, _)| i.purpose).collect();
        assert_eq!(
            purposes,
            [
                KeyPurpose::Stage1,
                KeyPurpose::Stage2,
                KeyPurpose::Release,
                KeyPurpose::Transport
            ]
        );
        let reopened = KeyStore::open(&path, &pass(PASS)).unwrap();
        assert_eq!(reopened.list(), store.list());
        let after = materials(&reopened);
        for ((i1, m1), (i2, m2)) in before.iter().zip(&after) {
            assert_eq!(i1, i2);
            assert_eq!(m1, m2);
            assert_eq!(m1.fingerprint(), i2.fingerprint);
        }
        assert!(!reopened.is_demo());
        let created = &after[0].0.created;
        assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    }

    #[test]
    fn wrong_passphrase_is_not_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        match KeyStore::open(&path, &pass("wrong horse")) {
            Err(KeyStoreError::WrongPassphrase { secret, .. }) => assert_eq!(secret, "passphrase"),
            other => panic!("expected WrongPassphrase, got {other:?}"),
        }
    }

    #[test]
    fn kek_file_unlocks_and_a_wrong_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let kek = dir.path().join("kek.bin");
        fs::write(&kek, [7u8; 32]).unwrap();
        fs::set_permissions(&kek, fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("keys.yaml");
        let unlock = Unlock::KekFile(kek.clone());
        let mut store = KeyStore::create(&path, &unlock, KdfParams::demo(), false).unwrap();
        store
            .generate("k2", KeyPurpose::Stage2, None, Some("p"))
            .unwrap();
        store.save().unwrap();
        let (_, m) = store.key("k2", None).unwrap();

        let reopened = KeyStore::open(&path, &unlock).unwrap();
        assert_eq!(reopened.key("k2", None).unwrap().1, m);

        // The same KEK as 64 hex characters and a newline.
        let hex_kek = dir.path().join("kek.hex");
        fs::write(&hex_kek, format!("{}\n", hex::encode([7u8; 32]))).unwrap();
        fs::set_permissions(&hex_kek, fs::Permissions::from_mode(0o600)).unwrap();
        KeyStore::open(&path, &Unlock::KekFile(hex_kek)).unwrap();

        let other = dir.path().join("other.bin");
        fs::write(&other, [8u8; 32]).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        match KeyStore::open(&path, &Unlock::KekFile(other)) {
            Err(KeyStoreError::WrongPassphrase { secret, .. }) => assert_eq!(secret, "KEK file"),
            other => panic!("expected WrongPassphrase, got {other:?}"),
        }
        assert!(matches!(
            KeyStore::open(&path, &pass(PASS)),
            Err(KeyStoreError::UnlockMismatch { .. })
        ));
    }

    #[test]
    fn kek_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let p = dir.path().join(name);
            fs::write(&p, bytes).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let crlf = write("crlf", format!("{}\r\n", "ab".repeat(32)).as_bytes(), 0o600);
        assert_eq!(read_kek_file(&crlf).unwrap().expose(), &[0xab; 32]);
        let open = write("open", &[1u8; 32], 0o640);
        assert!(matches!(
            read_kek_file(&open),
            Err(KeyStoreError::Permissions { .. })
        ));
        for (name, bytes) in [
            ("short", &b"abc"[..]),
            ("long", &[0u8; 200][..]),
            ("nothex", "zz".repeat(32).as_bytes()),
        ] {
            let p = write(name, bytes, 0o600);
            let err = read_kek_file(&p).unwrap_err();
            assert!(
                matches!(err, KeyStoreError::KekFile { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn changed_ciphertext_byte_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            let ct = &mut doc["keys"][1]["ciphertext"];
            let mut bytes = BASE64.decode(ct.as_str().unwrap().as_bytes()).unwrap();
            bytes[5] ^= 0x01;
            *ct = Value::String(BASE64.encode(&bytes));
        });
        assert_tampered(&path);
    }

    #[test]
    fn reviving_a_retired_key_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = filled_store(dir.path());
        store.retire("k2-sick", 1).unwrap();
        store.save().unwrap();
        KeyStore::open(&path, &pass(PASS)).unwrap();
        tamper(&path, |doc| {
            let key = &mut doc["keys"][1];
            assert_eq!(key["id"].as_str(), Some("k2-sick"));
            assert_eq!(key["status"].as_str(), Some("retired"));
            key["status"] = Value::String("active".into());
        });
        assert_tampered(&path);
    }

    #[test]
    fn changed_purpose_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            doc["keys"][1]["purpose"] = Value::String("release".into());
        });
        assert_tampered(&path);
    }

    #[test]
    fn deleted_key_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            if let Value::Sequence(keys) = &mut doc["keys"] {
                keys.remove(2);
            }
        });
        assert_tampered(&path);
    }

    #[test]
    fn flipped_demo_flag_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| doc["demo"] = Value::Bool(true));
        assert_tampered(&path);
    }

    #[test]
    fn changed_mac_is_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            let mac = doc["mac"].as_str().unwrap().to_owned();
            let first = if mac.starts_with('0') { "1" } else { "0" };
            doc["mac"] = Value::String(format!("{first}{}", &mac[1..]));
        });
        assert_tampered(&path);
    }

    #[test]
    fn swapped_or_reordered_keys_are_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            if let Value::Sequence(keys) = &mut doc["keys"] {
                keys.swap(0, 1);
            }
        });
        assert_tampered(&path);
    }

    #[test]
    fn aad_binds_key_identity() {
        // The MAC normally catches edits first; this exercises the second
        // line of defence, the GCM tag over the key's identity.
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = filled_store(dir.path());
        store.keys[1].info.purpose = KeyPurpose::Release;
        assert!(matches!(
            store.key("k2-sick", Some(1)),
            Err(KeyStoreError::Tampered { .. })
        ));
        let nonce = store.keys[0].nonce;
        store.keys[2].nonce = nonce;
        assert!(matches!(
            store.key("rel-2025-1", Some(1)),
            Err(KeyStoreError::Tampered { .. })
        ));
    }

    #[test]
    fn open_store_is_refused_before_the_passphrase_is_tried() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        for m in [0o644, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(m)).unwrap();
            // A wrong passphrase: had it been tried, the error would say so.
            let err = KeyStore::open(&path, &pass("wrong")).unwrap_err();
            assert!(matches!(err, KeyStoreError::Permissions { .. }), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn rotate_retire_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = filled_store(dir.path());
        let (_, v1) = store.key("k2-sick", None).unwrap();
        let info2 = store.rotate("k2-sick").unwrap();
        assert_eq!(info2.version, 2);
        assert_eq!(info2.purpose, KeyPurpose::Stage2);
        assert_eq!(info2.project.as_deref(), Some("sick"));
        assert_eq!(info2.status, KeyStatus::Active);

        let (cur, v2) = store.key("k2-sick", None).unwrap();
        assert_eq!(cur.version, 2);
        assert_ne!(v1, v2);
        let (old, v1_again) = store.key("k2-sick", Some(1)).unwrap();
        assert_eq!(old.status, KeyStatus::Active);
        assert_eq!(v1_again, v1);

        store.retire("k2-sick", 1).unwrap();
        store.save().unwrap();
        let store = KeyStore::open(&path, &pass(PASS)).unwrap();
        let (old, v1_after) = store.key("k2-sick", Some(1)).unwrap();
        assert_eq!(old.status, KeyStatus::Retired);
        assert_eq!(v1_after, v1);
        let listed: Vec<_> = store
            .list()
            .into_iter()
            .filter(|i| i.id == "k2-sick")
            .map(|i| (i.version, i.status))
            .collect();
        assert_eq!(listed, [(1, KeyStatus::Retired), (2, KeyStatus::Active)]);
        assert_eq!(store.key("k2-sick", None).unwrap().0.version, 2);
        assert!(matches!(
            store.key("k2-sick", Some(3)),
            Err(KeyStoreError::UnknownVersion { version: 3, .. })
        ));
        assert!(matches!(
            store.key("nope", None),
            Err(KeyStoreError::UnknownKey { .. })
        ));
    }

    #[test]
    fn retiring_the_only_active_version_leaves_no_default() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = filled_store(dir.path());
        store.retire("rel-2025-1", 1).unwrap();
        assert!(matches!(
            store.key("rel-2025-1", None),
            Err(KeyStoreError::Retired { .. })
        ));
        assert!(store.key("rel-2025-1", Some(1)).is_ok());
    }

    #[test]
    fn list_is_sorted_by_id_then_version() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = new_store(dir.path());
        store.generate("b", KeyPurpose::Stage2, None, None).unwrap();
        store.generate("a", KeyPurpose::Stage2, None, None).unwrap();
        store.rotate("b").unwrap();
        store.rotate("a").unwrap();
        let order: Vec<_> = store
            .list()
            .into_iter()
            .map(|i| (i.id, i.version))
            .collect();
        assert_eq!(
            order,
            [
                ("a".into(), 1),
                ("a".into(), 2),
                ("b".into(), 1),
                ("b".into(), 2)
            ]
        );
    }

    #[test]
    fn generate_rules() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = filled_store(dir.path());
        assert!(matches!(
            store.generate("k1-sick", KeyPurpose::Stage1, None, None),
            Err(KeyStoreError::KeyExists { .. })
        ));
        assert!(matches!(
            store.generate("tr-x", KeyPurpose::Transport, None, None),
            Err(KeyStoreError::PartnerRequired { .. })
        ));
        for bad in ["", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(
                matches!(
                    store.generate(bad, KeyPurpose::Stage2, None, None),
                    Err(KeyStoreError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn create_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.yaml");
        fs::write(&path, "precious").unwrap();
        assert!(matches!(
            KeyStore::create(&path, &pass(PASS), KdfParams::demo(), false),
            Err(KeyStoreError::FileExists { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[test]
    fn files_are_written_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut store) = new_store(dir.path());
        assert_eq!(mode(&path), 0o600);
        store
            .generate("k2", KeyPurpose::Stage2, None, None)
            .unwrap();
        store.save().unwrap();
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn save_refuses_when_another_process_saved_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        let mut a = KeyStore::open(&path, &pass(PASS)).unwrap();
        let mut b = KeyStore::open(&path, &pass(PASS)).unwrap();
        a.generate("from-a", KeyPurpose::Stage2, None, None)
            .unwrap();
        a.save().unwrap();
        b.generate("from-b", KeyPurpose::Stage2, None, None)
            .unwrap();
        assert!(matches!(b.save(), Err(KeyStoreError::Conflict { .. })));
        // `a` may go on saving: it wrote the current file itself.
        a.rotate("from-a").unwrap();
        a.save().unwrap();
    }

    #[test]
    fn demo_flag_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.yaml");
        KeyStore::create(&path, &pass("demo"), KdfParams::demo(), true).unwrap();
        assert!(KeyStore::open(&path, &pass("demo")).unwrap().is_demo());
    }

    #[test]
    fn partner_keys_export_and_open() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut store) = filled_store(dir.path());
        store.rotate("k1-sick").unwrap();
        let out = dir.path().join("pfzw.keys.yaml");
        store
            .export_partner_keys(
                "pfzw",
                "k1-sick",
                "tr-pfzw",
                &out,
                "partner secret",
                KdfParams::demo(),
            )
            .unwrap();
        assert_eq!(mode(&out), 0o600);

        let keys = PartnerKeys::open(&out, "partner secret").unwrap();
        let (s1_info, s1) = store.key("k1-sick", None).unwrap();
        let (tr_info, tr) = store.key("tr-pfzw", None).unwrap();
        assert_eq!(keys.partner, "pfzw");
        assert!(!keys.demo);
        assert_eq!(keys.stage1.0, s1_info);
        assert_eq!(keys.stage1.0.version, 2);
        assert_eq!(keys.stage1.1, s1);
        assert_eq!(keys.stage1.1.fingerprint(), s1_info.fingerprint);
        assert_eq!(keys.transport.0, tr_info);
        assert_eq!(keys.transport.1, tr);
        assert_eq!(keys.transport.1.fingerprint(), tr_info.fingerprint);

        match PartnerKeys::open(&out, "wrong") {
            Err(KeyStoreError::WrongPassphrase { .. }) => {}
            other => panic!("expected WrongPassphrase, got {other:?}"),
        }
        assert!(matches!(
            store.export_partner_keys("pfzw", "k1-sick", "tr-pfzw", &out, "x", KdfParams::demo()),
            Err(KeyStoreError::FileExists { .. })
        ));
    }

    #[test]
    fn partner_export_checks_purposes_and_partner() {
        let dir = tempfile::tempdir().unwrap();
        let (_, store) = filled_store(dir.path());
        let out = dir.path().join("p.yaml");
        let export = |partner: &str, s1: &str, tr: &str| {
            store.export_partner_keys(partner, s1, tr, &out, "pw", KdfParams::demo())
        };
        assert!(matches!(
            export("pfzw", "k2-sick", "tr-pfzw"),
            Err(KeyStoreError::WrongPurpose { .. })
        ));
        assert!(matches!(
            export("pfzw", "k1-sick", "k1-sick"),
            Err(KeyStoreError::WrongPurpose { .. })
        ));
        assert!(matches!(
            export("vernet", "k1-sick", "tr-pfzw"),
            Err(KeyStoreError::PartnerMismatch { .. })
        ));
        assert!(!out.exists());
    }

    #[test]
    fn tampered_partner_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (_, store) = filled_store(dir.path());
        let out = dir.path().join("p.yaml");
        store
            .export_partner_keys("pfzw", "k1-sick", "tr-pfzw", &out, "pw", KdfParams::demo())
            .unwrap();
        tamper(&out, |doc| {
            doc["stage1"]["version"] = Value::Number(7.into())
        });
        assert!(matches!(
            PartnerKeys::open(&out, "pw"),
            Err(KeyStoreError::Tampered { .. })
        ));
        fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            PartnerKeys::open(&out, "pw"),
            Err(KeyStoreError::Permissions { .. })
        ));
    }

    #[test]
    fn files_never_contain_raw_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = filled_store(dir.path());
        let out = dir.path().join("p.yaml");
        store
            .export_partner_keys("pfzw", "k1-sick", "tr-pfzw", &out, "pw", KdfParams::demo())
            .unwrap();
        let secrets: Vec<KeyMaterial> = materials(&store).into_iter().map(|(_, m)| m).collect();
        for file in [&path, &out] {
            let text = fs::read_to_string(file).unwrap();
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            let mut strings = Vec::new();
            collect_strings(&doc, &mut strings);
            for m in &secrets {
                let raw = m.expose();
                for encoded in [
                    hex::encode(raw),
                    hex::encode_upper(raw),
                    BASE64.encode(raw),
                    data_encoding::BASE64_NOPAD.encode(raw),
                    data_encoding::BASE64URL_NOPAD.encode(raw),
                ] {
                    assert!(!text.contains(&encoded), "{}", file.display());
                }
                // Also inside any binary field, at any offset.
                for s in &strings {
                    for decoded in [BASE64.decode(s.as_bytes()).ok(), hex::decode(s).ok()]
                        .into_iter()
                        .flatten()
                    {
                        assert!(!decoded.windows(KEY_LEN).any(|w| w == raw));
                    }
                }
            }
        }
    }

    fn collect_strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Sequence(items) => items.iter().for_each(|i| collect_strings(i, out)),
            Value::Mapping(m) => m.iter().for_each(|(_, i)| collect_strings(i, out)),
            _ => {}
        }
    }

    #[test]
    fn debug_shows_no_material() {
        let dir = tempfile::tempdir().unwrap();
        let (_, store) = filled_store(dir.path());
        let out = dir.path().join("p.yaml");
        store
            .export_partner_keys("pfzw", "k1-sick", "tr-pfzw", &out, "pw", KdfParams::demo())
            .unwrap();
        let partner = PartnerKeys::open(&out, "pw").unwrap();
        let shown = format!("{store:?}\n{partner:?}\n{:?}", pass(PASS));
        assert!(!shown.contains(PASS));
        for (_, m) in materials(&store) {
            let raw = m.expose();
            assert!(!shown.contains(&hex::encode(raw)));
            assert!(!shown.contains(&BASE64.encode(raw)));
            // Debug of a byte array prints decimal numbers.
            assert!(!shown.contains(&format!("{:?}", &raw[..4])));
        }
        assert!(shown.contains("k1-sick v1"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn unreadable_yaml_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            text.replace("demo: false", "demo: false\nsurprise: 1"),
        )
        .unwrap();
        let err = KeyStore::open(&path, &pass(PASS)).unwrap_err();
        match &err {
            KeyStoreError::Invalid { line, column, .. } => {
                assert!(line.is_some() && column.is_some(), "{err}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let shown = err.to_string();
        assert!(shown.contains("keys.yaml:"), "{shown}");
        assert!(shown.contains("surprise"), "{shown}");
    }

    #[test]
    fn other_formats_are_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = filled_store(dir.path());
        let text = fs::read_to_string(&path).unwrap();
        fs::write(
            &path,
            text.replace("koppel-keystore/1", "koppel-keystore/2"),
        )
        .unwrap();
        assert!(matches!(
            KeyStore::open(&path, &pass(PASS)),
            Err(KeyStoreError::UnsupportedFormat { .. })
        ));
        // A partner key file is not a key store, nor the other way round.
        let out = dir.path().join("p.yaml");
        store
            .export_partner_keys("pfzw", "k1-sick", "tr-pfzw", &out, "pw", KdfParams::demo())
            .unwrap();
        assert!(matches!(
            KeyStore::open(&out, &pass("pw")),
            Err(KeyStoreError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn kdf_parameters_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.yaml");
        let huge = KdfParams {
            m_cost_kib: u32::MAX,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(matches!(
            KeyStore::create(&path, &pass(PASS), huge, false),
            Err(KeyStoreError::InvalidKdf(_))
        ));
        assert!(KdfParams::recommended().argon2().is_ok());
        let (path, _) = filled_store(dir.path());
        tamper(&path, |doc| {
            doc["kek"]["m_cost_kib"] = Value::Number(u64::from(u32::MAX).into());
        });
        assert!(matches!(
            KeyStore::open(&path, &pass(PASS)),
            Err(KeyStoreError::Invalid { .. })
        ));
    }

    // Known-answer vectors, computed independently (Python's hmac/hashlib)
    // from the encoding in docs/formats/keystore.md. They pin the format:
    // if one fails, the code no longer writes what the doc specifies.

    #[test]
    fn subkey_derivation_matches_the_spec() {
        let kek = KeyMaterial::from_bytes(std::array::from_fn(|i| i as u8));
        let cases = [
            (
                &STORE,
                "2cb0c799bc2987f43a7ad3ab0537aafa2b10eacc7d4c340d662d76b77951ffaf",
                "0eac06e2ed1a4cccacd2919d439b677f98d24ff9a2ae01e78302a08f97b35859",
                "e1c4030425ee4041b05a42c719268b14a58ee419c3d1f03f6a51eab76a56212d",
                "62e67bd03ccc59d507c87730bfa7302a926b3a1b4f27809ebb04a93954d16438",
            ),
            (
                &PARTNER,
                "e8c20b6077160ea04377232d1e6fbb30a42518a22b3f1253cfae177d1aef1cba",
                "e55394e1f1a297d101b00bac5d57f1d534627d4b0c294bfb01a9d619ef286888",
                "ffab0c7af7019bae5542e2ed8507bc53c8091cead9fe18cc80b096729e0e6311",
                "c4f4cad1fc1eca4a37d78be0f80ec25bb515ed5a73a3107e55c6262980ac70ae",
            ),
        ];
        for (kind, wrap, mac, check, value) in cases {
            let sub = Subkeys::derive(kind, &kek);
            assert_eq!(hex::encode(*sub.wrap), wrap, "{}", kind.format);
            assert_eq!(hex::encode(*sub.mac), mac, "{}", kind.format);
            assert_eq!(hex::encode(*sub.check), check, "{}", kind.format);
            assert_eq!(hex::encode(sub.check_value(kind)), value, "{}", kind.format);
        }
    }

    #[test]
    fn mac_input_and_aad_match_the_spec() {
        let key = Sealed {
            info: KeyInfo {
                id: "k1-sick".into(),
                purpose: KeyPurpose::Stage1,
                version: 2,
                status: KeyStatus::Retired,
                created: "2025-03-01T09:30:00Z".into(),
                partner: None,
                project: Some("sick".into()),
                fingerprint: "0123456789abcdef".into(),
            },
            nonce: [0x33; NONCE_LEN],
            wrapped: [0x44; WRAPPED_LEN],
        };
        let kek = Kek::Argon2id {
            salt: [0x11; SALT_LEN],
            params: KdfParams::demo(),
        };
        let input = store_mac_input(false, &kek, &[0x22; KEY_LEN], std::slice::from_ref(&key));
        assert_eq!(input.len(), 316);
        assert_eq!(
            hex::encode(compute_mac(&[0x55; KEY_LEN], &input)),
            "3b268e8917d9ac4a725b4496bf0243ffe055dc0df8b5b79ac823e61de23c9e9d"
        );
        assert_eq!(
            hex::encode(key_aad(&STORE, &key.info)),
            "00000000000000116b6f7070656c2d6b657973746f72652f31\
             00000000000000076b312d7369636b\
             0000000000000006737461676531\
             00000002\
             00\
             01000000000000000473\
             69636b"
        );
    }

    #[test]
    fn argon2id_kek_matches_the_reference_implementation() {
        // From the reference implementation's CLI (Debian's `argon2`):
        // printf 'koppel demo' | argon2 koppel-demo-salt -id -v 13 -m 13 -t 1 -p 1 -l 32 -r
        let kek = Kek::Argon2id {
            salt: *b"koppel-demo-salt",
            params: KdfParams::demo(),
        };
        let root = derive_kek(&STORE, Path::new("x"), &kek, &pass("koppel demo")).unwrap();
        assert_eq!(
            hex::encode(root.expose()),
            "9f56e5879684533cfa1ffbc0fab90e4e15c9cb915df5b2ca12a58d5633c2c9df"
        );
    }

    #[test]
    fn purposes_parse_and_print() {
        for p in [
            KeyPurpose::Stage1,
            KeyPurpose::Stage2,
            KeyPurpose::Release,
            KeyPurpose::Transport,
        ] {
            assert_eq!(p.to_string().parse::<KeyPurpose>(), Ok(p));
        }
        assert!("stage3".parse::<KeyPurpose>().is_err());
    }
}
