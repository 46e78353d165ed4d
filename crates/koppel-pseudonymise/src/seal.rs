//! Sealed deliveries: the authenticated-encryption container in which a
//! partner's (already pseudonymised) delivery travels to the TTP.
//!
//! **Job.** [`seal`] turns a manifest (opaque bytes, in practice the YAML
//! delivery manifest) plus a content stream into one sealed file;
//! [`unseal`] verifies such a file and gives the manifest and the content
//! back; [`UnsealReader`] gives the content as a verified stream instead, so
//! the TTP parses a delivery as it decrypts it. [`read_header`] reads only
//! the public header, so the TTP can look up the transport key by id and
//! version before it decrypts.
//!
//! **Inputs.** A 32-byte transport key ([`KeyMaterial`]) shared by one
//! partner and the TTP, the key's id and version (written into the header in
//! clear), a chunk size, the manifest and the content.
//!
//! **Outputs.** A byte stream laid out as specified in
//! `docs/formats/sealed-delivery.md`: a fixed header, then the payload
//! `manifest length (u32 BE) ‖ manifest ‖ content` cut into chunks, each
//! sealed with AES-256-GCM in the STREAM construction (`aead-stream`'s
//! `StreamBE32`: 7-byte nonce prefix ‖ 32-bit big-endian chunk counter ‖
//! last-chunk flag byte). The complete header is the associated data of every
//! chunk.
//!
//! **Why this shape.**
//! - Each file gets a fresh content key, HMAC-SHA256(transport key, label ‖
//!   random salt), so a key is only ever used with one random nonce prefix
//!   and the GCM nonce-collision and 2^32-chunk bounds hold per file, however
//!   many files a partner seals with the same transport key.
//! - STREAM's counter and last-chunk flag make reordering, duplicating,
//!   dropping chunks and truncating at a chunk boundary fail authentication,
//!   which plain per-chunk GCM would not.
//! - Memory is bounded by one chunk (at most 16 MiB plus a tag) and the
//!   manifest (at most 1 MiB); the content is never held whole.
//!
//! **The one thing callers must get right.** [`unseal`] streams verified
//! chunks to `content_out` as it goes. Every chunk written is authentic, but
//! until [`unseal`] returns `Ok` the *sequence* is not: the file may still
//! turn out truncated or tampered further on. **On `Err`, everything written
//! to `content_out` must be discarded** (write to a temporary file, rename it
//! into place only on `Ok`).
//!
//! Replay (the same delivery unsealed twice) is not detected here: the
//! manifest carries a delivery id and the caller keeps track of the ids it
//! has accepted.

use std::io::{self, ErrorKind, Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32, NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::{Aes256Gcm, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::secret::KeyMaterial;

/// First eight bytes of every sealed delivery.
pub const MAGIC: [u8; 8] = *b"KOPPELSD";
/// The only format version this module writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Plaintext bytes per chunk unless the caller chooses otherwise (1 MiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Smallest allowed chunk size (4 KiB): below it the 16-byte tag per chunk
/// becomes noticeable overhead, and the first chunk always holds the
/// 4-byte manifest length.
pub const MIN_CHUNK_SIZE: u32 = 4 << 10;
/// Largest allowed chunk size (16 MiB): the reader holds one chunk in memory,
/// so this bounds the memory an untrusted header can make it allocate.
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;
/// Largest allowed manifest (1 MiB); the reader holds it in memory.
pub const MAX_MANIFEST_LEN: u32 = 1 << 20;
/// Largest allowed key id, in bytes of UTF-8.
pub const MAX_KEY_ID_LEN: usize = 64;
/// Bytes of random salt in the header (input to the content-key derivation).
pub const SALT_LEN: usize = 32;
/// Bytes of random nonce prefix in the header (the STREAM nonce).
pub const NONCE_PREFIX_LEN: usize = 7;
/// Bytes of GCM tag after every chunk.
pub const TAG_LEN: usize = 16;

/// Domain-separation label of the content-key derivation, exact bytes
/// (ASCII, no terminator). A change here is a new format version.
const KDF_LABEL: &[u8] = b"koppel sealed delivery v1";

/// Header bytes besides the key id: magic 8, version 1, key id length 1,
/// key version 4, salt 32, nonce prefix 7, chunk size 4.
const HEADER_FIXED_LEN: usize = 8 + 1 + 1 + 4 + SALT_LEN + NONCE_PREFIX_LEN + 4;

/// What went wrong while sealing or unsealing.
///
/// None of the messages contains key material or plaintext.
#[derive(thiserror::Error, Debug)]
pub enum SealError {
    /// The input does not start with [`MAGIC`]: not a sealed delivery.
    #[error("not a sealed delivery (the file does not start with the magic bytes KOPPELSD)")]
    NotSealed,
    /// The header declares a format version this build cannot read.
    #[error(
        "unsupported sealed-delivery format version {0} (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u8),
    /// A header field is out of range. The header is not yet authenticated
    /// when this is reported, so it means "corrupt or forged", never more.
    #[error("bad sealed-delivery header: {0}")]
    BadHeader(String),
    /// An argument to [`seal`] is out of range (key id, chunk size); nothing
    /// was written.
    #[error("invalid seal argument: {0}")]
    InvalidArgument(String),
    /// A chunk failed authentication. AES-GCM cannot tell a wrong key from
    /// tampering, so this covers: wrong key (or wrong key version), any
    /// modified byte in header, chunk or tag, chunks reordered, duplicated or
    /// removed, a file cut inside a chunk, or bytes appended after the end.
    #[error(
        "sealed delivery failed authentication: wrong key, or the file was modified, \
         reordered, cut inside a chunk or extended"
    )]
    Authentication,
    /// The input ended before the final chunk: inside the header, exactly at
    /// a chunk boundary, or with fewer bytes left than one tag.
    #[error("sealed delivery is truncated: the input ends before the final chunk")]
    Truncated,
    /// An authentic final chunk was found, followed by more bytes. Reported
    /// only when provable (see `unseal`); other appended data is reported as
    /// [`SealError::Authentication`].
    #[error("sealed delivery has trailing data after its final chunk")]
    TrailingData,
    /// The manifest is longer than [`MAX_MANIFEST_LEN`] (the declared or
    /// given length is carried).
    #[error("manifest of {0} bytes exceeds the limit of {MAX_MANIFEST_LEN} bytes")]
    ManifestTooLarge(u64),
    /// The payload authenticated but is not `manifest length ‖ manifest ‖
    /// content` (it ends before the manifest is complete). Only a faulty
    /// sealer produces this.
    #[error("malformed sealed payload: {0}")]
    MalformedPayload(String),
    /// More than 2^32 chunks: the STREAM counter would wrap.
    #[error("payload too large: more than 2^32 chunks at this chunk size")]
    PayloadTooLarge,
    /// The operating system could not supply random salt and nonce.
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The public header of a sealed delivery.
///
/// Not authenticated on its own: [`read_header`] only checks that the fields
/// are well-formed. It becomes authentic once the first chunk verifies under
/// the key it names (it is the associated data of every chunk), so use it
/// only to pick a key before [`unseal`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealHeader {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u8,
    /// Which transport key sealed the file, e.g. `transport-pfzw`.
    pub key_id: String,
    /// Which version of that key.
    pub key_version: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    salt: [u8; SALT_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl SealHeader {
    /// The per-file random salt of the content-key derivation (public).
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The per-file random STREAM nonce prefix (public).
    pub fn nonce_prefix(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.nonce_prefix
    }

    /// Length of the encoded header in bytes (57 + key id length).
    pub fn encoded_len(&self) -> usize {
        HEADER_FIXED_LEN + self.key_id.len()
    }

    /// The exact header bytes, which are also the associated data of every
    /// chunk, after checking the fields (the message names the offending
    /// field). The encoding is canonical, so re-encoding a header that
    /// [`read_header`] accepted gives back the bytes it read.
    fn encode(&self) -> Result<Vec<u8>, String> {
        self.check()?;
        let key_id_len =
            u8::try_from(self.key_id.len()).map_err(|_| "key id too long".to_owned())?;
        let mut h = Vec::with_capacity(self.encoded_len());
        h.extend_from_slice(&MAGIC);
        h.push(self.version);
        h.push(key_id_len);
        h.extend_from_slice(self.key_id.as_bytes());
        h.extend_from_slice(&self.key_version.to_be_bytes());
        h.extend_from_slice(&self.salt);
        h.extend_from_slice(&self.nonce_prefix);
        h.extend_from_slice(&self.chunk_size.to_be_bytes());
        Ok(h)
    }

    /// Field checks shared by the writer and the reader.
    fn check(&self) -> Result<(), String> {
        check_key_id(&self.key_id)?;
        check_chunk_size(self.chunk_size)
    }
}

fn check_key_id(key_id: &str) -> Result<(), String> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(format!(
            "key id must be 1 to {MAX_KEY_ID_LEN} bytes of UTF-8, got {} bytes",
            key_id.len()
        ));
    }
    // Key ids end up in logs and audit trails; control characters there
    // would allow forged log lines from an unauthenticated header.
    if key_id.chars().any(char::is_control) {
        return Err("key id contains a control character".to_owned());
    }
    Ok(())
}

fn check_chunk_size(chunk_size: u32) -> Result<(), String> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(format!(
            "chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE} bytes"
        ));
    }
    Ok(())
}

/// Seals `manifest` and everything read from `content` into `out`. Returns
/// the number of bytes written.
///
/// `chunk_size` is the number of plaintext bytes per chunk,
/// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]; use [`DEFAULT_CHUNK_SIZE`] unless
/// there is a reason not to. `key_id` is 1..=64 bytes of UTF-8 without
/// control characters. Arguments are checked before anything is written.
///
/// `out` is written chunk by chunk and flushed at the end; wrap it in a
/// `BufWriter` only if it is slow with writes of one chunk. If this returns
/// `Err` after writing started (an I/O error on `content` or `out`), `out`
/// holds an incomplete file that must be deleted; it would not unseal
/// anyway (it has no final chunk).
pub fn seal(
    manifest: &[u8],
    content: impl Read,
    out: impl Write,
    key: &KeyMaterial,
    key_id: &str,
    key_version: u32,
    chunk_size: u32,
) -> Result<u64, SealError> {
    let manifest_len = u32::try_from(manifest.len())
        .ok()
        .filter(|&len| len <= MAX_MANIFEST_LEN)
        .ok_or(SealError::ManifestTooLarge(manifest.len() as u64))?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
    getrandom::fill(&mut salt).map_err(SealError::Random)?;
    getrandom::fill(&mut nonce_prefix).map_err(SealError::Random)?;
    let header = SealHeader {
        version: FORMAT_VERSION,
        key_id: key_id.to_owned(),
        key_version,
        chunk_size,
        salt,
        nonce_prefix,
    };
    let length_prefix = manifest_len.to_be_bytes();
    let payload = length_prefix.as_slice().chain(manifest).chain(content);
    seal_payload(&header, payload, out, key)
}

/// Seals an already framed payload under a header whose salt and nonce
/// prefix are given. Split from [`seal`] so tests can pin the worked example
/// in the format document and build authentic but malformed payloads.
fn seal_payload(
    header: &SealHeader,
    mut payload: impl Read,
    mut out: impl Write,
    key: &KeyMaterial,
) -> Result<u64, SealError> {
    let aad = header.encode().map_err(SealError::InvalidArgument)?;
    let content_key = derive_content_key(key, &header.salt);
    let aead = Aes256Gcm::new((&*content_key).into());
    let mut encryptor = EncryptorBE32::<Aes256Gcm>::from_aead(aead, (&header.nonce_prefix).into());

    out.write_all(&aad)?;
    let mut written = aad.len() as u64;

    let chunk = header.chunk_size as usize;
    // One buffer for the whole file, sized for a chunk plus its tag, so
    // in-place encryption never reallocates. Zeroized on drop: it held
    // plaintext.
    let mut buf = Zeroizing::new(Vec::with_capacity(chunk + TAG_LEN));
    loop {
        // After the previous round the buffer holds chunk + tag bytes;
        // shrinking it costs nothing, only the first round zero-fills.
        buf.resize(chunk, 0);
        let n = read_full(&mut payload, &mut buf)?;
        buf.truncate(n);
        if n < chunk {
            // A short read means the payload has ended: this is the final
            // chunk, possibly empty. A full chunk is never final, which is
            // what lets a reader recognise the final chunk by its length.
            encryptor
                .encrypt_last_in_place(&aad, &mut *buf)
                .map_err(|_| SealError::PayloadTooLarge)?;
            out.write_all(&buf)?;
            written += buf.len() as u64;
            break;
        }
        // The only failure here is the counter reaching 2^32 - 1 (the
        // encryptor keeps that value for the final chunk); a chunk is far
        // below GCM's per-message limit.
        encryptor
            .encrypt_next_in_place(&aad, &mut *buf)
            .map_err(|_| SealError::PayloadTooLarge)?;
        out.write_all(&buf)?;
        written += buf.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// Reads and checks only the header, so the TTP can look up the right key by
/// id and version before decrypting. Leaves `input` positioned at the first
/// chunk (pass it on to [`unseal_after_header`]).
///
/// Checks, in this order: magic ([`SealError::NotSealed`]), version
/// ([`SealError::UnsupportedVersion`]), key id length and text, chunk size
/// ([`SealError::BadHeader`]); the input ending inside the header is
/// [`SealError::Truncated`]. The header is not authenticated yet.
pub fn read_header(input: &mut impl Read) -> Result<SealHeader, SealError> {
    let mut magic = [0u8; 8];
    let n = read_full(input, &mut magic)?;
    if magic[..n] != MAGIC[..n] {
        return Err(SealError::NotSealed);
    }
    if n < MAGIC.len() {
        return Err(SealError::Truncated);
    }

    let mut byte = [0u8; 1];
    read_exact_or_truncated(input, &mut byte)?;
    let version = byte[0];
    // Checked before anything else is read: a later version may lay out the
    // rest of its header differently.
    if version != FORMAT_VERSION {
        return Err(SealError::UnsupportedVersion(version));
    }

    read_exact_or_truncated(input, &mut byte)?;
    let key_id_len = usize::from(byte[0]);
    if key_id_len == 0 || key_id_len > MAX_KEY_ID_LEN {
        return Err(SealError::BadHeader(format!(
            "key id length {key_id_len} is outside 1..={MAX_KEY_ID_LEN}"
        )));
    }
    let mut key_id = vec![0u8; key_id_len];
    read_exact_or_truncated(input, &mut key_id)?;
    let key_id = String::from_utf8(key_id)
        .map_err(|_| SealError::BadHeader("key id is not UTF-8".to_owned()))?;

    let mut word = [0u8; 4];
    read_exact_or_truncated(input, &mut word)?;
    let key_version = u32::from_be_bytes(word);
    let mut salt = [0u8; SALT_LEN];
    read_exact_or_truncated(input, &mut salt)?;
    let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
    read_exact_or_truncated(input, &mut nonce_prefix)?;
    read_exact_or_truncated(input, &mut word)?;
    let chunk_size = u32::from_be_bytes(word);

    let header = SealHeader {
        version,
        key_id,
        key_version,
        chunk_size,
        salt,
        nonce_prefix,
    };
    header.check().map_err(SealError::BadHeader)?;
    Ok(header)
}

/// Verifies and decrypts: returns the header and the manifest bytes, and
/// streams the content to `content_out`.
///
/// **On `Err`, whatever was written to `content_out` must be discarded by
/// the caller.** Each chunk is written only after it verified, but a later
/// chunk may still fail, and only `Ok` means the content is complete and
/// untouched. `Ok` is returned only after the final chunk verified and the
/// input ended right after it; `content_out` has then been flushed.
///
/// The caller must still check that `header.key_id` / `header.key_version`
/// are the ones it meant to accept, and reject a delivery id (inside the
/// manifest) it has seen before: this function does not detect replay.
pub fn unseal(
    mut input: impl Read,
    key: &KeyMaterial,
    content_out: impl Write,
) -> Result<(SealHeader, Vec<u8>), SealError> {
    let header = read_header(&mut input)?;
    let manifest = unseal_after_header(&header, input, key, content_out)?;
    Ok((header, manifest))
}

/// [`unseal`] for an input whose header was already consumed by
/// [`read_header`]: `input` must be positioned at the first chunk, as
/// `read_header` leaves it. Lets the TTP read the header from a
/// non-seekable stream, pick the key, and go on. Returns the manifest; the
/// same contract on `content_out` as for [`unseal`] applies.
pub fn unseal_after_header(
    header: &SealHeader,
    input: impl Read,
    key: &KeyMaterial,
    mut content_out: impl Write,
) -> Result<Vec<u8>, SealError> {
    let mut reader = UnsealReader::new(header, input, key)?;
    while let Some(piece) = reader.next_content()? {
        content_out.write_all(piece)?;
    }
    content_out.flush()?;
    Ok(reader.into_manifest())
}

/// The content of a sealed delivery as a stream: [`Read`] hands out the
/// content chunk by chunk, each only after its tag verified, so a consumer
/// (the TTP's ingest) can parse a delivery as it is decrypted and no
/// plaintext copy is ever written. The manifest is read when the reader is
/// made.
///
/// The caution of [`unseal`] holds here too: every byte read is authentic,
/// but the *sequence* is complete and untouched only once `read` returned
/// `Ok(0)` (the final chunk verified and the input ended right after it);
/// a consumer must discard what it made of the content on any error. The
/// error of a failing `read` carries the [`SealError`]
/// ([`SealError::from_io`] takes it back out). After an error the reader
/// stays failed.
pub struct UnsealReader<R> {
    input: R,
    header: SealHeader,
    aad: Vec<u8>,
    content_key: Zeroizing<[u8; 32]>,
    /// `None` once the final chunk was taken, or after a failure.
    decryptor: Option<DecryptorBE32<Aes256Gcm>>,
    failed: bool,
    /// Plaintext of the current chunk (zeroized on drop); `buf[pos..]` has
    /// not been handed out yet.
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    /// The decryptor counts chunks too, but privately; this copy is needed
    /// to diagnose a failure at a given position.
    position: u32,
    manifest: Vec<u8>,
}

impl<R: Read> UnsealReader<R> {
    /// Starts decrypting after the header (`input` positioned at the first
    /// chunk, as [`read_header`] leaves it) and reads the manifest.
    pub fn new(header: &SealHeader, input: R, key: &KeyMaterial) -> Result<Self, SealError> {
        // The public fields may have been edited since `read_header`; the
        // header is re-checked and re-encoded (the encoding is canonical),
        // and any difference from the sealed header fails authentication.
        if header.version != FORMAT_VERSION {
            return Err(SealError::UnsupportedVersion(header.version));
        }
        let aad = header.encode().map_err(SealError::BadHeader)?;
        let content_key = derive_content_key(key, &header.salt);
        let aead = Aes256Gcm::new((&*content_key).into());
        let decryptor = DecryptorBE32::<Aes256Gcm>::from_aead(aead, (&header.nonce_prefix).into());
        let unit = header.chunk_size as usize + TAG_LEN;
        let mut reader = UnsealReader {
            input,
            header: header.clone(),
            aad,
            content_key,
            decryptor: Some(decryptor),
            failed: false,
            buf: Zeroizing::new(Vec::with_capacity(unit)),
            pos: 0,
            position: 0,
            manifest: Vec::new(),
        };
        // The payload is `manifest length (u32 BE) ‖ manifest ‖ content`.
        let mut length = [0u8; 4];
        if reader.fill(&mut length)? < length.len() {
            return Err(SealError::MalformedPayload(
                "payload is shorter than the 4-byte manifest length".to_owned(),
            ));
        }
        let declared = u32::from_be_bytes(length);
        if declared > MAX_MANIFEST_LEN {
            return Err(SealError::ManifestTooLarge(u64::from(declared)));
        }
        let mut manifest = vec![0u8; declared as usize];
        let got = reader.fill(&mut manifest)?;
        if got < manifest.len() {
            return Err(SealError::MalformedPayload(format!(
                "payload ends inside the manifest ({got} of {declared} bytes)"
            )));
        }
        reader.manifest = manifest;
        Ok(reader)
    }

    /// The manifest's bytes (authentic: they came out of verified chunks).
    pub fn manifest(&self) -> &[u8] {
        &self.manifest
    }

    pub fn into_manifest(self) -> Vec<u8> {
        self.manifest
    }

    /// The input, for what wraps it (a hash of the sealed bytes). Reading
    /// from it directly desynchronises the chunks: later reads fail.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// The next piece of verified content (the rest of a chunk); `None` at
    /// the authenticated end.
    pub fn next_content(&mut self) -> Result<Option<&[u8]>, SealError> {
        while self.pos == self.buf.len() {
            if !self.next_chunk()? {
                return Ok(None);
            }
        }
        let start = self.pos;
        self.pos = self.buf.len();
        Ok(Some(&self.buf[start..]))
    }

    /// Fills `out` from the payload as far as it goes; the bytes taken.
    fn fill(&mut self, out: &mut [u8]) -> Result<usize, SealError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pos == self.buf.len() && !self.next_chunk()? {
                break;
            }
            let n = (out.len() - filled).min(self.buf.len() - self.pos);
            out[filled..filled + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
        Ok(filled)
    }

    /// Reads and verifies the next chunk into `buf`; `false` once the final
    /// chunk was taken.
    fn next_chunk(&mut self) -> Result<bool, SealError> {
        if self.failed {
            return Err(SealError::Io(io::Error::other(
                "the sealed delivery already failed to verify",
            )));
        }
        let result = self.decrypt_next();
        if result.is_err() {
            self.failed = true;
            self.decryptor = None;
            self.buf.clear();
            self.pos = 0;
        }
        result
    }

    fn decrypt_next(&mut self) -> Result<bool, SealError> {
        let Some(decryptor) = self.decryptor.as_mut() else {
            return Ok(false);
        };
        let unit = self.header.chunk_size as usize + TAG_LEN;
        self.buf.resize(unit, 0);
        self.pos = 0;
        let n = read_full(&mut self.input, &mut self.buf)?;
        self.buf.truncate(n);
        if n == unit {
            // A full-size unit is never the final chunk (the final chunk
            // holds fewer than chunk-size bytes), so it must verify as a
            // non-final chunk at this position.
            if self.position == u32::MAX {
                return Err(SealError::PayloadTooLarge);
            }
            if decryptor
                .decrypt_next_in_place(&self.aad, &mut *self.buf)
                .is_err()
            {
                return Err(self.diagnose());
            }
            self.position += 1;
            return Ok(true);
        }
        // The input has ended: what is left must be the final chunk.
        if n < TAG_LEN {
            // Nothing left (the file ends at a chunk boundary, so the final
            // chunk is missing) or less than a tag.
            return Err(SealError::Truncated);
        }
        let decryptor = self.decryptor.take().expect("checked above");
        if decryptor
            .decrypt_last_in_place(&self.aad, &mut *self.buf)
            .is_err()
        {
            return Err(self.diagnose());
        }
        Ok(true)
    }

    fn diagnose(&self) -> SealError {
        diagnose_failure(
            &self.content_key,
            &self.header,
            &self.aad,
            self.position,
            &self.buf,
        )
    }
}

impl<R: Read> Read for UnsealReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.buf.len() {
            match self.next_chunk() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(SealError::Io(e)) => return Err(e),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl SealError {
    /// The [`SealError`] an [`UnsealReader`]'s `read` failed with (plain
    /// I/O errors become [`SealError::Io`]).
    pub fn from_io(error: io::Error) -> SealError {
        if error.get_ref().is_some_and(|e| e.is::<SealError>()) {
            match error.into_inner().map(|e| e.downcast::<SealError>()) {
                Some(Ok(seal)) => *seal,
                _ => unreachable!("checked to hold a SealError"),
            }
        } else {
            SealError::Io(error)
        }
    }
}

/// Names the error for a chunk that failed to verify at `position`.
///
/// Appended bytes merge with the final chunk and in general cannot be told
/// apart from tampering: that is [`SealError::Authentication`]. One case is
/// provable at the cost of one 16-byte verification: when the payload was an
/// exact multiple of the chunk size, the final chunk is a bare tag, and if
/// the unit at hand starts with a tag that verifies as the (empty) final
/// chunk, the writer ended the file there and the rest was appended.
fn diagnose_failure(
    content_key: &[u8; 32],
    header: &SealHeader,
    aad: &[u8],
    position: u32,
    unit: &[u8],
) -> SealError {
    if unit.len() > TAG_LEN {
        let stream = StreamBE32::<Aes256Gcm>::from_aead(
            Aes256Gcm::new(content_key.into()),
            (&header.nonce_prefix).into(),
        );
        let mut probe = unit[..TAG_LEN].to_vec();
        if stream
            .decrypt_in_place(position, true, aad, &mut probe)
            .is_ok()
        {
            return SealError::TrailingData;
        }
    }
    SealError::Authentication
}

/// content key = HMAC-SHA256(transport key, "koppel sealed delivery v1" ‖ salt).
///
/// A fresh key per file means the random 56-bit nonce prefix never has to be
/// unique across files: it is used exactly once under its key.
fn derive_content_key(key: &KeyMaterial, salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; 32]> {
    // HMAC is defined for keys of any length; a 32-byte key cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose())
        .expect("HMAC accepts keys of any length");
    mac.update(KDF_LABEL);
    mac.update(salt);
    let mut tag = mac.finalize().into_bytes();
    let mut content_key = Zeroizing::new([0u8; 32]);
    content_key.copy_from_slice(&tag);
    tag.as_mut_slice().zeroize();
    content_key
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
/// Unlike `read_exact`, a short input is not an error: for the chunk loop
/// it is how the final chunk is found.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `read_exact` for header fields: the input ending early is
/// [`SealError::Truncated`], not an I/O error.
fn read_exact_or_truncated(input: &mut impl Read, buf: &mut [u8]) -> Result<(), SealError> {
    if read_full(input, buf)? < buf.len() {
        return Err(SealError::Truncated);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyMaterial {
        KeyMaterial::from_bytes(std::array::from_fn(|i| i as u8))
    }

    /// Deterministic, non-repeating test bytes.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
            .collect()
    }

    fn seal_vec(manifest: &[u8], content: &[u8], chunk_size: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let n = seal(
            manifest,
            content,
            &mut out,
            &key(),
            "transport-pfzw",
            3,
            chunk_size,
        )
        .unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    fn unseal_vec(
        sealed: &[u8],
        key: &KeyMaterial,
    ) -> Result<(SealHeader, Vec<u8>, Vec<u8>), SealError> {
        let mut content = Vec::new();
        let (header, manifest) = unseal(sealed, key, &mut content)?;
        Ok((header, manifest, content))
    }

    fn payload_len(manifest: &[u8], content: &[u8]) -> usize {
        4 + manifest.len() + content.len()
    }

    /// Sealed size from the format rules: header, then every chunk plus a
    /// tag, with floor(n / C) full chunks and one final chunk.
    fn expected_sealed_len(key_id: &str, payload: usize, chunk_size: u32) -> usize {
        let c = chunk_size as usize;
        HEADER_FIXED_LEN + key_id.len() + payload + TAG_LEN * (payload / c + 1)
    }

    fn round_trip(manifest: &[u8], content: &[u8], chunk_size: u32) -> Vec<u8> {
        let sealed = seal_vec(manifest, content, chunk_size);
        assert_eq!(
            sealed.len(),
            expected_sealed_len("transport-pfzw", payload_len(manifest, content), chunk_size)
        );
        let (header, m, c) = unseal_vec(&sealed, &key()).unwrap();
        assert_eq!(header.key_id, "transport-pfzw");
        assert_eq!(header.key_version, 3);
        assert_eq!(header.chunk_size, chunk_size);
        assert_eq!(header.version, FORMAT_VERSION);
        assert_eq!(m, manifest);
        assert!(
            c == content,
            "content differs ({} vs {} bytes)",
            c.len(),
            content.len()
        );
        sealed
    }

    /// Byte ranges of the chunks (ciphertext + tag) of a sealed file.
    fn chunk_ranges(sealed: &[u8]) -> Vec<std::ops::Range<usize>> {
        let header = read_header(&mut &sealed[..]).unwrap();
        let unit = header.chunk_size as usize + TAG_LEN;
        let mut ranges = Vec::new();
        let mut at = header.encoded_len();
        loop {
            let end = (at + unit).min(sealed.len());
            ranges.push(at..end);
            if end - at < unit {
                return ranges;
            }
            at = end;
        }
    }

    fn kind(result: &Result<(SealHeader, Vec<u8>, Vec<u8>), SealError>) -> &'static str {
        match result {
            Ok(_) => "Ok",
            Err(SealError::NotSealed) => "NotSealed",
            Err(SealError::UnsupportedVersion(_)) => "UnsupportedVersion",
            Err(SealError::BadHeader(_)) => "BadHeader",
            Err(SealError::InvalidArgument(_)) => "InvalidArgument",
            Err(SealError::Authentication) => "Authentication",
            Err(SealError::Truncated) => "Truncated",
            Err(SealError::TrailingData) => "TrailingData",
            Err(SealError::ManifestTooLarge(_)) => "ManifestTooLarge",
            Err(SealError::MalformedPayload(_)) => "MalformedPayload",
            Err(SealError::PayloadTooLarge) => "PayloadTooLarge",
            Err(SealError::Random(_)) => "Random",
            Err(SealError::Io(_)) => "Io",
        }
    }

    fn fixed_header(key_id: &str, chunk_size: u32) -> SealHeader {
        SealHeader {
            version: FORMAT_VERSION,
            key_id: key_id.to_owned(),
            key_version: 1,
            chunk_size,
            salt: std::array::from_fn(|i| 0x40 + i as u8),
            nonce_prefix: std::array::from_fn(|i| 0xa0 + i as u8),
        }
    }

    /// Three chunks at 4 KiB: two full, one short final chunk.
    fn small_sealed() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let manifest = b"delivery_id: d-0001\nsource: pfzw_dienstverbanden\n".to_vec();
        let content = pattern(2 * 4096 + 300, 7);
        let sealed = seal_vec(&manifest, &content, MIN_CHUNK_SIZE);
        (sealed, manifest, content)
    }

    #[test]
    fn round_trip_empty_content_and_empty_manifest() {
        round_trip(b"delivery_id: x\n", b"", DEFAULT_CHUNK_SIZE);
        round_trip(b"", b"", MIN_CHUNK_SIZE);
        round_trip(b"", b"some content", MIN_CHUNK_SIZE);
    }

    #[test]
    fn round_trip_content_smaller_than_a_chunk() {
        let sealed = round_trip(b"m", &pattern(1000, 1), MIN_CHUNK_SIZE);
        assert_eq!(chunk_ranges(&sealed).len(), 1);
    }

    #[test]
    fn round_trip_payload_at_exact_multiples_of_the_chunk_size() {
        let manifest = b"delivery_id: exact\n";
        for chunks in 1..=3 {
            for delta in [-1i64, 0, 1] {
                let payload = chunks * 4096 + delta;
                let content = pattern((payload as usize) - 4 - manifest.len(), 2);
                let sealed = round_trip(manifest, &content, MIN_CHUNK_SIZE);
                let ranges = chunk_ranges(&sealed);
                let last = ranges.last().unwrap().clone();
                if delta == 0 {
                    // Exact multiple: the final chunk is empty, a bare tag.
                    assert_eq!(ranges.len(), chunks as usize + 1);
                    assert_eq!(last.len(), TAG_LEN);
                } else {
                    assert!(last.len() > TAG_LEN);
                }
            }
        }
    }

    #[test]
    fn round_trip_several_chunks_default_size() {
        let content = pattern(3 * (1 << 20) + 12345, 3);
        let sealed = round_trip(b"delivery_id: big\n", &content, DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_ranges(&sealed).len(), 4);
    }

    #[test]
    fn round_trip_many_small_chunks() {
        let content = pattern(600_000, 4);
        let sealed = round_trip(b"delivery_id: many\n", &content, MIN_CHUNK_SIZE);
        assert_eq!(chunk_ranges(&sealed).len(), 600_000 / 4096 + 1);
    }

    #[test]
    fn round_trip_largest_chunk_size() {
        round_trip(b"m", &pattern(70_000, 5), MAX_CHUNK_SIZE);
    }

    #[test]
    fn round_trip_manifest_at_and_near_the_limit() {
        let content = pattern(10_000, 6);
        for len in [MAX_MANIFEST_LEN as usize - 1, MAX_MANIFEST_LEN as usize] {
            round_trip(&pattern(len, 9), &content, MIN_CHUNK_SIZE);
        }
        // Manifest spanning the default chunk: content starts in chunk 1.
        round_trip(
            &pattern(MAX_MANIFEST_LEN as usize, 9),
            &content,
            DEFAULT_CHUNK_SIZE,
        );
    }

    #[test]
    fn seal_rejects_a_manifest_over_the_limit_and_writes_nothing() {
        let mut out = Vec::new();
        let manifest = vec![b'x'; MAX_MANIFEST_LEN as usize + 1];
        let err = seal(
            &manifest,
            &b""[..],
            &mut out,
            &key(),
            "k",
            1,
            DEFAULT_CHUNK_SIZE,
        )
        .unwrap_err();
        assert!(
            matches!(err, SealError::ManifestTooLarge(n) if n == u64::from(MAX_MANIFEST_LEN) + 1),
            "{err}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn seal_checks_key_id_and_chunk_size_before_writing() {
        let long_id = "k".repeat(MAX_KEY_ID_LEN + 1);
        let bad = [
            ("k", MIN_CHUNK_SIZE - 1),
            ("k", MAX_CHUNK_SIZE + 1),
            ("k", 0),
            ("", DEFAULT_CHUNK_SIZE),
            (long_id.as_str(), DEFAULT_CHUNK_SIZE),
            ("transport\npfzw", DEFAULT_CHUNK_SIZE),
            ("transport\u{85}pfzw", DEFAULT_CHUNK_SIZE),
        ];
        for (key_id, chunk_size) in bad {
            let mut out = Vec::new();
            let err = seal(b"m", &b"c"[..], &mut out, &key(), key_id, 1, chunk_size).unwrap_err();
            assert!(
                matches!(err, SealError::InvalidArgument(_)),
                "{key_id:?} {chunk_size}: {err}"
            );
            assert!(out.is_empty());
        }
        // The extremes that are allowed, including multi-byte UTF-8.
        let max_id = "é".repeat(MAX_KEY_ID_LEN / 2);
        let mut out = Vec::new();
        seal(
            b"m",
            &b"c"[..],
            &mut out,
            &key(),
            &max_id,
            u32::MAX,
            MIN_CHUNK_SIZE,
        )
        .unwrap();
        let (header, _, content) = unseal_vec(&out, &key()).unwrap();
        assert_eq!(
            (
                header.key_id.as_str(),
                header.key_version,
                content.as_slice()
            ),
            (max_id.as_str(), u32::MAX, &b"c"[..])
        );
    }

    #[test]
    fn read_header_gives_id_and_version_and_stops_at_the_first_chunk() {
        let (sealed, manifest, content) = small_sealed();
        let mut input = &sealed[..];
        let header = read_header(&mut input).unwrap();
        assert_eq!(header.key_id, "transport-pfzw");
        assert_eq!(header.key_version, 3);
        assert_eq!(header.chunk_size, MIN_CHUNK_SIZE);
        assert_eq!(
            header.encoded_len(),
            HEADER_FIXED_LEN + "transport-pfzw".len()
        );
        assert_eq!(input.len(), sealed.len() - header.encoded_len());
        assert_eq!(header.encode().unwrap(), sealed[..header.encoded_len()]);

        // Go on from where read_header stopped, as a TTP reading a pipe would.
        let mut out = Vec::new();
        let m = unseal_after_header(&header, input, &key(), &mut out).unwrap();
        assert_eq!((m, out), (manifest, content));
    }

    #[test]
    fn unseal_after_header_with_an_edited_header_fails() {
        let (sealed, _, _) = small_sealed();
        let mut input = &sealed[..];
        let header = read_header(&mut input).unwrap();
        let mut edited = header.clone();
        edited.key_version += 1;
        let r = unseal_after_header(&edited, input, &key(), io::sink());
        assert!(matches!(r, Err(SealError::Authentication)));
        let mut edited = header.clone();
        edited.key_id = String::new();
        assert!(matches!(
            unseal_after_header(&edited, input, &key(), io::sink()),
            Err(SealError::BadHeader(_))
        ));
        let mut edited = header;
        edited.version = 2;
        assert!(matches!(
            unseal_after_header(&edited, input, &key(), io::sink()),
            Err(SealError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn two_seals_of_the_same_input_differ() {
        let a = seal_vec(b"m", b"same content", MIN_CHUNK_SIZE);
        let b = seal_vec(b"m", b"same content", MIN_CHUNK_SIZE);
        assert_ne!(a, b);
        let ha = read_header(&mut &a[..]).unwrap();
        let hb = read_header(&mut &b[..]).unwrap();
        assert_ne!(ha.salt(), hb.salt());
        assert_ne!(ha.nonce_prefix(), hb.nonce_prefix());
        assert_ne!(a[ha.encoded_len()..], b[hb.encoded_len()..]);
    }

    #[test]
    fn content_keys_depend_on_key_and_salt() {
        let salt_a = [1u8; SALT_LEN];
        let salt_b = [2u8; SALT_LEN];
        let other = KeyMaterial::from_bytes([9; 32]);
        let k = derive_content_key(&key(), &salt_a);
        assert_ne!(*k, *derive_content_key(&key(), &salt_b));
        assert_ne!(*k, *derive_content_key(&other, &salt_a));
        assert_ne!(&*k, key().expose());
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let (sealed, _, _) = small_sealed();
        let mut content = Vec::new();
        let r = unseal(
            &sealed[..],
            &KeyMaterial::from_bytes([0x55; 32]),
            &mut content,
        );
        assert!(matches!(r, Err(SealError::Authentication)), "{r:?}");
        assert!(
            content.is_empty(),
            "nothing may be written before a chunk verifies"
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (sealed, _, _) = small_sealed();
        let header_len = read_header(&mut &sealed[..]).unwrap().encoded_len();
        let key_id_end = 10 + "transport-pfzw".len();
        for pos in 0..sealed.len() {
            for mask in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[pos] ^= mask;
                let got = kind(&unseal_vec(&bad, &key()));
                let allowed: &[&str] = match pos {
                    0..8 => &["NotSealed"],
                    8 => &["UnsupportedVersion"],
                    // Key id length: the rest of the header shifts, so
                    // depending on where it lands any of these.
                    9 => &["BadHeader", "Authentication", "Truncated"],
                    // Key id bytes: invalid UTF-8 or control character, or
                    // another id that the tag then rejects.
                    p if p < key_id_end => &["BadHeader", "Authentication"],
                    // Chunk size: out of range, or a different chunking.
                    p if p >= header_len - 4 && p < header_len => {
                        &["BadHeader", "Authentication", "Truncated"]
                    }
                    _ => &["Authentication"],
                };
                assert!(
                    allowed.contains(&got),
                    "flip {mask:#04x} at byte {pos}: {got}"
                );
            }
        }
    }

    #[test]
    fn truncation_at_every_length_is_detected() {
        let (sealed, _, _) = small_sealed();
        let header_len = read_header(&mut &sealed[..]).unwrap().encoded_len();
        let boundaries: Vec<usize> = chunk_ranges(&sealed).iter().map(|r| r.start).collect();
        for len in 0..sealed.len() {
            let r = unseal_vec(&sealed[..len], &key());
            let got = kind(&r);
            let want: &[&str] = if len < header_len || boundaries.contains(&len) {
                &["Truncated"]
            } else {
                // Cut inside a chunk: fewer bytes than a tag left is
                // structurally truncated, otherwise the tag fails.
                &["Truncated", "Authentication"]
            };
            assert!(want.contains(&got), "truncated to {len}: {got}");
        }
    }

    #[test]
    fn dropping_the_final_chunk_is_truncation() {
        // Short final chunk.
        let (sealed, _, _) = small_sealed();
        let last = chunk_ranges(&sealed).pop().unwrap();
        assert!(matches!(
            unseal_vec(&sealed[..last.start], &key()),
            Err(SealError::Truncated)
        ));
        // Empty final chunk (payload an exact multiple of the chunk size).
        let sealed = seal_vec(b"", &pattern(2 * 4096 - 4, 1), MIN_CHUNK_SIZE);
        let last = chunk_ranges(&sealed).pop().unwrap();
        assert_eq!(last.len(), TAG_LEN);
        assert!(matches!(
            unseal_vec(&sealed[..last.start], &key()),
            Err(SealError::Truncated)
        ));
    }

    #[test]
    fn dropping_swapping_or_duplicating_chunks_fails() {
        let (sealed, _, _) = small_sealed();
        let ranges = chunk_ranges(&sealed);
        assert_eq!(ranges.len(), 3);
        let header = &sealed[..ranges[0].start];
        let part = |i: usize| &sealed[ranges[i].clone()];

        let cases: Vec<(&str, Vec<&[u8]>)> = vec![
            ("drop first", vec![header, part(1), part(2)]),
            ("drop middle", vec![header, part(0), part(2)]),
            ("swap first two", vec![header, part(1), part(0), part(2)]),
            (
                "duplicate first",
                vec![header, part(0), part(0), part(1), part(2)],
            ),
            (
                "duplicate middle",
                vec![header, part(0), part(1), part(1), part(2)],
            ),
            (
                "duplicate final",
                vec![header, part(0), part(1), part(2), part(2)],
            ),
            // Final chunk moved before a full one: it is short, so the
            // reader takes bytes from the next chunk with it.
            (
                "final moved forward",
                vec![header, part(0), part(2), part(1)],
            ),
        ];
        for (name, parts) in cases {
            let mut content = Vec::new();
            let r = unseal(&parts.concat()[..], &key(), &mut content);
            assert!(matches!(r, Err(SealError::Authentication)), "{name}: {r:?}");
        }
    }

    #[test]
    fn never_writes_content_that_did_not_verify() {
        let (sealed, manifest, content) = small_sealed();
        let ranges = chunk_ranges(&sealed);
        let mut bad = sealed.clone();
        bad[ranges[1].start + 10] ^= 1;
        let mut out = Vec::new();
        let r = unseal(&bad[..], &key(), &mut out);
        assert!(matches!(r, Err(SealError::Authentication)));
        // Only chunk 0 verified: its content part was written, nothing more.
        let chunk0_content = 4096 - 4 - manifest.len();
        assert_eq!(out, content[..chunk0_content]);
    }

    #[test]
    fn appended_bytes_are_detected() {
        let (sealed, _, _) = small_sealed();
        for extra in [1usize, 15, 16, 17, 4096, 4096 + 16, 3 * 4096] {
            let mut bad = sealed.clone();
            bad.extend(pattern(extra, 0x33));
            let r = unseal_vec(&bad, &key());
            assert!(
                matches!(r, Err(SealError::Authentication)),
                "{extra} bytes appended: {}",
                kind(&r)
            );
            // Zero padding, as some transports add.
            let mut bad = sealed.clone();
            bad.resize(sealed.len() + extra, 0);
            assert!(matches!(
                unseal_vec(&bad, &key()),
                Err(SealError::Authentication)
            ));
        }
    }

    #[test]
    fn appended_bytes_after_an_empty_final_chunk_are_trailing_data() {
        let sealed = seal_vec(b"", &pattern(2 * 4096 - 4, 1), MIN_CHUNK_SIZE);
        for extra in [1usize, 100, 4096, 4096 + 16, 3 * 4096 + 5] {
            let mut bad = sealed.clone();
            bad.extend(pattern(extra, 0x44));
            let r = unseal_vec(&bad, &key());
            assert!(
                matches!(r, Err(SealError::TrailingData)),
                "{extra} bytes appended: {}",
                kind(&r)
            );
        }
    }

    #[test]
    fn header_field_edits_are_detected() {
        let (sealed, _, _) = small_sealed();
        let header_len = read_header(&mut &sealed[..]).unwrap().encoded_len();
        let id_len = "transport-pfzw".len();
        let chunk_at = header_len - 4;
        let key_version_at = 10 + id_len;
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut bad = sealed.clone();
            f(&mut bad);
            unseal_vec(&bad, &key())
        };

        assert!(matches!(
            edit(&|b| b[..8].copy_from_slice(b"KOPPELSE")),
            Err(SealError::NotSealed)
        ));
        for v in [0u8, 2, 255] {
            assert!(matches!(edit(&|b| b[8] = v), Err(SealError::UnsupportedVersion(x)) if x == v));
        }
        assert!(matches!(edit(&|b| b[9] = 0), Err(SealError::BadHeader(_))));
        assert!(matches!(edit(&|b| b[9] = 65), Err(SealError::BadHeader(_))));
        assert!(matches!(
            edit(&|b| b[10] = 0xff),
            Err(SealError::BadHeader(_))
        ));
        assert!(matches!(
            edit(&|b| b[10] = b'\t'),
            Err(SealError::BadHeader(_))
        ));
        // Another well-formed key id, as if relabelled to another partner.
        assert!(matches!(
            edit(&|b| b[10..10 + 9].copy_from_slice(b"transpor2")),
            Err(SealError::Authentication)
        ));
        assert!(matches!(
            edit(&|b| b[key_version_at..key_version_at + 4].copy_from_slice(&4u32.to_be_bytes())),
            Err(SealError::Authentication)
        ));
        for size in [MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1, 0, u32::MAX] {
            let r = edit(&|b| b[chunk_at..chunk_at + 4].copy_from_slice(&size.to_be_bytes()));
            assert!(
                matches!(r, Err(SealError::BadHeader(_))),
                "chunk size {size}: {}",
                kind(&r)
            );
        }
        for size in [MIN_CHUNK_SIZE + 1, 8192, DEFAULT_CHUNK_SIZE] {
            let r = edit(&|b| b[chunk_at..chunk_at + 4].copy_from_slice(&size.to_be_bytes()));
            assert!(
                matches!(r, Err(SealError::Authentication)),
                "chunk size {size}: {}",
                kind(&r)
            );
        }
    }

    #[test]
    fn inputs_that_are_not_sealed_deliveries() {
        let not_sealed: [&[u8]; 4] = [
            b"PK\x03\x04 a zip file",
            b"BSN;KVK\n1;2\n",
            b"K0",
            b"\0\0\0\0\0\0\0\0\0\0",
        ];
        for input in not_sealed {
            assert!(
                matches!(unseal_vec(input, &key()), Err(SealError::NotSealed)),
                "{input:?}"
            );
        }
        for input in [&b""[..], b"KOPP", b"KOPPELSD", b"KOPPELSD\x01"] {
            assert!(
                matches!(unseal_vec(input, &key()), Err(SealError::Truncated)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn manifest_length_over_the_limit_is_rejected_after_authentication() {
        let header = fixed_header("transport-pfzw", MIN_CHUNK_SIZE);
        let mut payload = (MAX_MANIFEST_LEN + 1).to_be_bytes().to_vec();
        payload.extend(pattern(5000, 1));
        let mut sealed = Vec::new();
        seal_payload(&header, &payload[..], &mut sealed, &key()).unwrap();
        let r = unseal_vec(&sealed, &key());
        assert!(
            matches!(r, Err(SealError::ManifestTooLarge(n)) if n == u64::from(MAX_MANIFEST_LEN) + 1),
            "{}",
            kind(&r)
        );
        let mut payload = u32::MAX.to_be_bytes().to_vec();
        payload.extend(pattern(5000, 1));
        let mut sealed = Vec::new();
        seal_payload(&header, &payload[..], &mut sealed, &key()).unwrap();
        assert!(matches!(
            unseal_vec(&sealed, &key()),
            Err(SealError::ManifestTooLarge(_))
        ));
    }

    #[test]
    fn authentic_but_malformed_payloads_are_rejected() {
        let header = fixed_header("transport-pfzw", MIN_CHUNK_SIZE);
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0, 0, 0]];
        // Declares a 100-byte manifest but carries 99 bytes.
        let mut short = 100u32.to_be_bytes().to_vec();
        short.extend(pattern(99, 2));
        cases.push(short);
        // Declares a manifest longer than one chunk, ends inside it.
        let mut short = 9000u32.to_be_bytes().to_vec();
        short.extend(pattern(5000, 2));
        cases.push(short);
        for payload in cases {
            let mut sealed = Vec::new();
            seal_payload(&header, &payload[..], &mut sealed, &key()).unwrap();
            let r = unseal_vec(&sealed, &key());
            assert!(
                matches!(r, Err(SealError::MalformedPayload(_))),
                "{} bytes: {}",
                payload.len(),
                kind(&r)
            );
        }
    }

    /// Hands out at most 7 bytes per call and reports `Interrupted` every
    /// third call, as pipes and sockets may.
    struct Dribble<R> {
        inner: R,
        calls: usize,
    }

    impl<R: Read> Read for Dribble<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::Error::new(ErrorKind::Interrupted, "try again"));
            }
            let n = buf.len().min(self.calls % 7 + 1);
            self.inner.read(&mut buf[..n])
        }
    }

    #[test]
    fn short_reads_and_interrupts_are_handled() {
        let manifest = b"delivery_id: dribble\n";
        let content = pattern(3 * 4096 + 77, 8);
        let mut sealed = Vec::new();
        let source = Dribble {
            inner: &content[..],
            calls: 0,
        };
        seal(
            manifest,
            source,
            &mut sealed,
            &key(),
            "k",
            1,
            MIN_CHUNK_SIZE,
        )
        .unwrap();
        let mut out = Vec::new();
        let (_, m) = unseal(
            Dribble {
                inner: &sealed[..],
                calls: 0,
            },
            &key(),
            &mut out,
        )
        .unwrap();
        assert_eq!((m.as_slice(), out), (&manifest[..], content));
    }

    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_are_reported_as_io() {
        let err = seal(b"m", Failing, Vec::new(), &key(), "k", 1, MIN_CHUNK_SIZE).unwrap_err();
        assert!(matches!(err, SealError::Io(_)), "{err}");
        let err = seal(b"m", &b"c"[..], Failing, &key(), "k", 1, MIN_CHUNK_SIZE).unwrap_err();
        assert!(matches!(err, SealError::Io(_)), "{err}");
        assert!(matches!(
            unseal(Failing, &key(), Vec::new()),
            Err(SealError::Io(_))
        ));
        let (sealed, _, _) = small_sealed();
        assert!(matches!(
            unseal(&sealed[..], &key(), Failing),
            Err(SealError::Io(_))
        ));
    }

    #[test]
    fn seal_and_unseal_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery.koppelsd");
        let content = pattern(50_000, 10);
        let written = seal(
            b"delivery_id: file\n",
            &content[..],
            std::fs::File::create(&path).unwrap(),
            &key(),
            "transport-pfzw",
            2,
            MIN_CHUNK_SIZE,
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), written);
        let mut out = Vec::new();
        let (header, manifest) =
            unseal(std::fs::File::open(&path).unwrap(), &key(), &mut out).unwrap();
        assert_eq!(
            (header.key_version, manifest.as_slice(), out),
            (2, &b"delivery_id: file\n"[..], content)
        );
    }

    #[test]
    fn errors_read_well_and_show_no_secrets() {
        let msg = SealError::ManifestTooLarge(2_000_000).to_string();
        assert!(msg.contains("2000000") && msg.contains("1048576"), "{msg}");
        assert!(
            SealError::UnsupportedVersion(9)
                .to_string()
                .contains("version 9")
        );
        assert!(SealError::Authentication.to_string().contains("wrong key"));
    }

    // ---- The worked example in docs/formats/sealed-delivery.md ----

    const DOC: &str = include_str!("../../../docs/formats/sealed-delivery.md");

    /// `xxd`-like dump: offset, then up to 16 bytes in hex.
    fn hexdump(bytes: &[u8], base: usize) -> String {
        bytes
            .chunks(16)
            .enumerate()
            .map(|(i, row)| {
                let cells: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                format!("{:04x}  {}\n", base + 16 * i, cells.join(" "))
            })
            .collect()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(Sha256::digest(bytes))
    }

    /// The first example: one short final chunk.
    fn example_one() -> (SealHeader, Vec<u8>, Vec<u8>) {
        let header = fixed_header("transport-pfzw", MIN_CHUNK_SIZE);
        let manifest = b"delivery_id: 7f3c9a12\n";
        let content = b"hello, TTP\n";
        let mut payload = (manifest.len() as u32).to_be_bytes().to_vec();
        payload.extend_from_slice(manifest);
        payload.extend_from_slice(content);
        let mut sealed = Vec::new();
        seal_payload(&header, &payload[..], &mut sealed, &key()).unwrap();
        (header, payload, sealed)
    }

    /// The second example: two full chunks and an empty final chunk.
    fn example_two() -> (Vec<u8>, Vec<u8>) {
        let header = fixed_header("transport-pfzw", MIN_CHUNK_SIZE);
        let manifest = b"delivery_id: 2\n";
        let content: Vec<u8> = (0..8192 - 4 - manifest.len()).map(|i| i as u8).collect();
        let mut payload = (manifest.len() as u32).to_be_bytes().to_vec();
        payload.extend_from_slice(manifest);
        payload.extend_from_slice(&content);
        let mut sealed = Vec::new();
        seal_payload(&header, &payload[..], &mut sealed, &key()).unwrap();
        (content, sealed)
    }

    #[test]
    fn worked_example_one_matches_the_format_document() {
        let (header, payload, sealed) = example_one();
        let header_len = header.encoded_len();
        assert_eq!(header_len, 71);
        let content_key = derive_content_key(&key(), &header.salt);
        let expected_key = "a9959081906003dc76ba181782a5bed5e1a5203cb3a84db103c5e80f3a8518f9";
        let expected_sha = "802a8a28cdad9d1f0db0a76cf5b5d8deb5b0cd1a3d319e2020777f39aabba592";
        assert_eq!(hex::encode(*content_key), expected_key);
        assert_eq!(sha256_hex(&sealed), expected_sha);
        assert_eq!(sealed.len(), header_len + payload.len() + TAG_LEN);

        let header_dump = hexdump(&sealed[..header_len], 0);
        let payload_dump = hexdump(&payload, 0);
        let chunk_dump = hexdump(&sealed[header_len..], header_len);
        for (what, text) in [
            ("header", &header_dump),
            ("payload", &payload_dump),
            ("chunk", &chunk_dump),
            ("content key", &hex::encode(*content_key)),
            ("sha", &expected_sha.to_owned()),
        ] {
            assert!(
                DOC.contains(text.as_str()),
                "the document lacks the {what}:\n{text}"
            );
        }
        // And the example unseals.
        let (h, m, c) = unseal_vec(&sealed, &key()).unwrap();
        assert_eq!(
            (h, m.as_slice(), c.as_slice()),
            (
                header,
                &b"delivery_id: 7f3c9a12\n"[..],
                &b"hello, TTP\n"[..]
            )
        );
    }

    #[test]
    fn worked_example_two_matches_the_format_document() {
        let (content, sealed) = example_two();
        assert_eq!(sealed.len(), 71 + 4096 + 16 + 4096 + 16 + 16);
        let ranges = chunk_ranges(&sealed);
        let tags: Vec<String> = ranges
            .iter()
            .map(|r| hex::encode(&sealed[r.end - TAG_LEN..r.end]))
            .collect();
        let expected_tags = [
            "d45d20ffdde303eb95704a7feb28731c",
            "2e82c32c94a05721672f5277067ab059",
            "bfbc54d05b47fd9d1e249dcdb16f3cc6",
        ];
        assert_eq!(tags, expected_tags);
        let expected_sha = "f48c1a6e29dee2ee1874dc6eab6cd55e5fa52ed4742d7e6aaa92527343e5164b";
        assert_eq!(sha256_hex(&sealed), expected_sha);
        for text in tags.iter().chain([&expected_sha.to_owned()]) {
            assert!(DOC.contains(text.as_str()), "the document lacks {text}");
        }
        let (_, m, c) = unseal_vec(&sealed, &key()).unwrap();
        assert_eq!((m.as_slice(), c), (&b"delivery_id: 2\n"[..], content));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn random_content_round_trips(
                manifest in proptest::collection::vec(any::<u8>(), 0..300),
                content in proptest::collection::vec(any::<u8>(), 0..20_000),
                chunk_size in MIN_CHUNK_SIZE..=3 * MIN_CHUNK_SIZE,
            ) {
                let mut sealed = Vec::new();
                seal(&manifest, &content[..], &mut sealed, &key(), "transport-izz", 7, chunk_size).unwrap();
                let mut out = Vec::new();
                let (header, m) = unseal(&sealed[..], &key(), &mut out).unwrap();
                prop_assert_eq!(header.chunk_size, chunk_size);
                prop_assert_eq!(m, manifest);
                prop_assert_eq!(out, content);
            }

            #[test]
            fn any_single_byte_corruption_is_detected(
                content in proptest::collection::vec(any::<u8>(), 0..12_000),
                position in any::<prop::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let mut sealed = Vec::new();
                seal(b"delivery_id: p\n", &content[..], &mut sealed, &key(), "transport-izz", 7, MIN_CHUNK_SIZE).unwrap();
                let at = position.index(sealed.len());
                sealed[at] ^= flip;
                let r = unseal(&sealed[..], &key(), io::sink());
                prop_assert!(r.is_err(), "corruption at {} of {} went unnoticed", at, sealed.len());
            }
        }
    }
}
