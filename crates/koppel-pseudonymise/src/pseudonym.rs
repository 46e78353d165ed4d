//! Keyed pseudonyms in three layers, each HMAC-SHA256 under its own key:
//!
//! - **stage 1** (at the partner, key K1 of one linkage project):
//!   `P1 = HMAC(K1, type ‖ 0x00 ‖ canonical identifier)`, exactly as the
//!   delivery contract specifies;
//! - **stage 2** (at the TTP, key K2 of one linkage project):
//!   `P2 = HMAC(K2, type ‖ 0x00 ‖ P1)` over the 32 raw bytes of P1, so
//!   different projects get unlinkable pseudonyms for the same person;
//! - **research IDs** (per release, key KR):
//!   `HMAC(KR, type ‖ 0x00 ‖ P2)` cut to 128 bits, base32, with a prefix per
//!   identifier type — what researchers see.
//!
//! The type (`bsn`, `kvk`) is part of every input, so a citizen number and an
//! employer number with the same digits never share a pseudonym.
//!
//! The HMAC key schedule runs once per key: a keyed state is cloned per
//! value. Columns are hashed batch-wise over Arrow arrays, on all cores for
//! large arrays.

use std::collections::HashMap;

use arrow::array::{Array, FixedSizeBinaryArray, StringArray};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::datatypes::{DataType, Field};
use hmac::{Hmac, KeyInit, Mac};
use koppel_contract::IdentifierType;
use koppel_contract::meta::META_IDENTIFIER;
use koppel_ingest::{canonical_bsn, canonical_kvk};
use rayon::prelude::*;
use sha2::Sha256;

use crate::secret::KeyMaterial;

/// Bits of a research ID.
pub const RESEARCH_ID_BYTES: usize = 16;
/// Below this many values a column is hashed on one thread: spreading small
/// batches over threads costs more than it saves.
/// Ingest's 8,192-row batches are hashed on two threads.
const PARALLEL_FROM: usize = 4 * 1024;

use koppel_contract::meta::{META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE, PSEUDONYM_BYTES};

/// An HMAC-SHA256 whose key schedule has been computed once.
#[derive(Clone)]
pub struct KeyedHash {
    state: Hmac<Sha256>,
}

impl KeyedHash {
    /// HMAC accepts keys of any length; Koppel's keys are 32 bytes, the RFC
    /// test vectors use others.
    pub fn new(key: &[u8]) -> Self {
        KeyedHash {
            state: <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length"),
        }
    }

    /// HMAC over the concatenation of `parts`.
    #[inline]
    pub fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.state.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Which layer a pseudonym belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Stage1,
    Stage2,
    Research,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Stage1 => "p1",
            Stage::Stage2 => "p2",
            Stage::Research => "research_id",
        }
    }
}

/// Hashes identifiers into one layer of pseudonyms under one key.
#[derive(Clone)]
pub struct Pseudonymiser {
    hash: KeyedHash,
    stage: Stage,
    key_id: String,
    key_version: u32,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymiser")
            .field("stage", &self.stage)
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl Pseudonymiser {
    pub fn new(stage: Stage, key: &KeyMaterial, key_id: &str, key_version: u32) -> Self {
        Pseudonymiser {
            hash: KeyedHash::new(key.expose()),
            stage,
            key_id: key_id.to_owned(),
            key_version,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// A pseudonymiser of the same layer under a key derived from this
    /// one for `context`: `K' = HMAC(K, "koppel.derive" ‖ 0x00 ‖ context)`.
    /// Research IDs per release use it with the release's name, so that
    /// two releases cannot be joined on their IDs while a rerun of the same
    /// release gives the same IDs. The derived key is zeroized once its
    /// schedule is computed; the label (id, version) stays the parent's.
    pub fn derive(&self, context: &str) -> Pseudonymiser {
        let mut key = self
            .hash
            .digest(&[b"koppel.derive", &[0], context.as_bytes()]);
        let hash = KeyedHash::new(&key);
        zeroize::Zeroize::zeroize(&mut key);
        Pseudonymiser {
            hash,
            stage: self.stage,
            key_id: self.key_id.clone(),
            key_version: self.key_version,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// One pseudonym: HMAC(key, type ‖ 0x00 ‖ input). For stage 1 the input
    /// is the canonical identifier's ASCII digits; for stage 2 and research
    /// IDs, the 32 bytes of the previous layer.
    #[inline]
    pub fn pseudonym(&self, kind: IdentifierType, input: &[u8]) -> [u8; 32] {
        self.hash.digest(&[kind.as_str().as_bytes(), &[0], input])
    }

    /// Stage 1 of an identifier as a partner writes it: canonicalised by the
    /// contract's rules (ingest's checks), then hashed. `None` when it is not
    /// a valid identifier of that type.
    #[inline]
    pub fn pseudonym_of_raw(&self, kind: IdentifierType, raw: &[u8]) -> Option<[u8; 32]> {
        match kind {
            IdentifierType::Bsn => {
                let mut canon = [0u8; 9];
                canonical_bsn(raw, &mut canon).then(|| self.pseudonym(kind, &canon))
            }
            IdentifierType::Kvk => {
                let mut canon = [0u8; 8];
                canonical_kvk(raw, &mut canon).then(|| self.pseudonym(kind, &canon))
            }
        }
    }

    /// Stage 1 as the contract writes it: 64 lowercase hex characters.
    pub fn p1_hex(&self, kind: IdentifierType, canonical: &str) -> String {
        hex::encode(self.pseudonym(kind, canonical.as_bytes()))
    }

    /// Pseudonymises a column of canonical identifiers (ingest's raw mode)
    /// into 32-byte pseudonyms; nulls stay null.
    pub fn hash_canonical(
        &self,
        kind: IdentifierType,
        values: &StringArray,
    ) -> FixedSizeBinaryArray {
        self.hash_column(kind, values.len(), values.nulls(), |i| {
            values.value(i).as_bytes()
        })
    }

    /// Pseudonymises a column of pseudonyms of the previous layer.
    pub fn hash_pseudonyms(
        &self,
        kind: IdentifierType,
        values: &FixedSizeBinaryArray,
    ) -> FixedSizeBinaryArray {
        self.hash_column(kind, values.len(), values.nulls(), |i| values.value(i))
    }

    fn hash_column<'a>(
        &self,
        kind: IdentifierType,
        len: usize,
        nulls: Option<&NullBuffer>,
        value: impl Fn(usize) -> &'a [u8] + Sync,
    ) -> FixedSizeBinaryArray {
        let mut out = vec![0u8; len * PSEUDONYM_BYTES];
        let fill = |start: usize, chunk: &mut [u8]| {
            // Deliveries come grouped by person (a payroll has a row per
            // month): a value equal to the one before it takes that one's
            // pseudonym instead of being hashed again.
            let mut previous: Option<(&[u8], [u8; 32])> = None;
            for (k, slot) in chunk.chunks_exact_mut(PSEUDONYM_BYTES).enumerate() {
                let i = start + k;
                if nulls.is_none_or(|n| n.is_valid(i)) {
                    let input = value(i);
                    let pseudonym = match previous {
                        Some((last, pseudonym)) if last == input => pseudonym,
                        _ => self.pseudonym(kind, input),
                    };
                    slot.copy_from_slice(&pseudonym);
                    previous = Some((input, pseudonym));
                }
            }
        };
        if len >= PARALLEL_FROM {
            let rows_per_task = PARALLEL_FROM / 2;
            out.par_chunks_mut(rows_per_task * PSEUDONYM_BYTES)
                .enumerate()
                .for_each(|(t, chunk)| fill(t * rows_per_task, chunk));
        } else {
            fill(0, &mut out);
        }
        FixedSizeBinaryArray::try_new(
            PSEUDONYM_BYTES as i32,
            Buffer::from_vec(out),
            nulls.cloned(),
        )
        .expect("buffer length is len × 32 and nulls have len")
    }

    /// Research IDs for a column of stage-2 pseudonyms: `P-` (persons) or
    /// `O-` (organisations) and 26 base32 characters.
    pub fn research_ids(&self, kind: IdentifierType, p2: &FixedSizeBinaryArray) -> StringArray {
        let prefix = research_prefix(kind);
        let mut text = String::with_capacity(2 + 26);
        let ids: Vec<Option<String>> = (0..p2.len())
            .map(|i| {
                p2.is_valid(i).then(|| {
                    let digest = self.pseudonym(kind, p2.value(i));
                    text.clear();
                    text.push_str(prefix);
                    data_encoding::BASE32_NOPAD
                        .encode_append(&digest[..RESEARCH_ID_BYTES], &mut text);
                    text.clone()
                })
            })
            .collect();
        StringArray::from(ids)
    }

    /// The field of a pseudonym column this pseudonymiser writes, labelled
    /// with identifier type, layer, key id and key version.
    pub fn field(&self, name: &str, kind: IdentifierType, nullable: bool) -> Field {
        let data_type = match self.stage {
            Stage::Research => DataType::Utf8,
            Stage::Stage1 | Stage::Stage2 => DataType::FixedSizeBinary(PSEUDONYM_BYTES as i32),
        };
        let metadata: HashMap<String, String> = [
            (META_IDENTIFIER.to_owned(), kind.as_str().to_owned()),
            (
                META_PSEUDONYM_STAGE.to_owned(),
                self.stage.as_str().to_owned(),
            ),
            (META_KEY_ID.to_owned(), self.key_id.clone()),
            (META_KEY_VERSION.to_owned(), self.key_version.to_string()),
        ]
        .into();
        Field::new(name, data_type, nullable).with_metadata(metadata)
    }
}

pub fn research_prefix(kind: IdentifierType) -> &'static str {
    match kind {
        IdentifierType::Bsn => "P-",
        IdentifierType::Kvk => "O-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract_k1() -> KeyMaterial {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        KeyMaterial::from_bytes(k)
    }

    /// RFC 4231 HMAC-SHA256 test cases 1–4, 6 and 7 through `KeyedHash`,
    /// the path every pseudonym takes (case 5 is a truncated output).
    #[test]
    fn rfc4231_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                (1u8..=25).collect(),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            let h = KeyedHash::new(&key);
            assert_eq!(hex::encode(h.digest(&[&data])), expected);
            // Split input gives the same digest: parts are concatenated.
            let (a, b) = data.split_at(data.len() / 2);
            assert_eq!(hex::encode(h.digest(&[a, b])), expected);
        }
    }

    #[test]
    fn contract_p1_vectors() {
        let p = Pseudonymiser::new(Stage::Stage1, &contract_k1(), "k1", 1);
        let vectors = [
            (
                IdentifierType::Bsn,
                "111222333",
                "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692",
            ),
            (
                IdentifierType::Bsn,
                "123456782",
                "3060646ddecbb903b9266ad783672de902328ebe860f258877e5727bb0683b86",
            ),
            (
                IdentifierType::Kvk,
                "12345678",
                "59494f8f69781f6532fb74ea4e650d5ea89b51278dcd83ec6b321772cbc0f24f",
            ),
            (
                IdentifierType::Kvk,
                "00000001",
                "2ab8c6021b03c459b0c499c8282d4f2acace10cf24f63ccfb7d7ae9d80de1e0d",
            ),
        ];
        for (kind, canonical, p1) in vectors {
            assert_eq!(p.p1_hex(kind, canonical), p1);
        }
        // Raw forms canonicalise to the same pseudonyms; invalid ones give none.
        let raw = p
            .pseudonym_of_raw(IdentifierType::Bsn, b"1234.56.782")
            .unwrap();
        assert_eq!(hex::encode(raw), vectors[1].2);
        let raw = p.pseudonym_of_raw(IdentifierType::Kvk, b"1").unwrap();
        assert_eq!(hex::encode(raw), vectors[3].2);
        assert_eq!(p.pseudonym_of_raw(IdentifierType::Bsn, b"123456789"), None);
        // The column path gives the same bytes, for small and parallel sizes.
        for n in [4, PARALLEL_FROM + 3] {
            let values: Vec<&str> = (0..n).map(|i| vectors[i % 2].1).collect();
            let column = p.hash_canonical(IdentifierType::Bsn, &StringArray::from(values));
            for i in 0..n {
                assert_eq!(
                    hex::encode(column.value(i)),
                    vectors[i % 2].2,
                    "row {i} of {n}"
                );
            }
        }
    }

    #[test]
    fn nulls_stay_null() {
        let p = Pseudonymiser::new(Stage::Stage1, &contract_k1(), "k1", 1);
        let column = p.hash_canonical(
            IdentifierType::Bsn,
            &StringArray::from(vec![Some("111222333"), None]),
        );
        assert!(column.is_valid(0) && column.is_null(1));
    }

    #[test]
    fn a_repeated_value_gets_the_same_pseudonym_as_if_hashed_alone() {
        let p = Pseudonymiser::new(Stage::Stage2, &contract_k1(), "k2", 1);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        // Runs of repeats, a null inside a run, and (past PARALLEL_FROM) a
        // run across the boundary of two parallel tasks.
        let mut values = vec![
            Some(a),
            Some(a),
            Some(b),
            None,
            Some(b),
            Some(a),
            None,
            Some(a),
        ];
        values.extend((0..PARALLEL_FROM).map(|i| Some(if i % 7 < 5 { a } else { b })));
        let column = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            values.iter().map(|v| v.as_ref()),
            32,
        )
        .unwrap();
        let hashed = p.hash_pseudonyms(IdentifierType::Bsn, &column);
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => assert_eq!(
                    hashed.value(i),
                    p.pseudonym(IdentifierType::Bsn, v),
                    "row {i}"
                ),
                None => assert!(hashed.is_null(i), "row {i}"),
            }
        }
    }

    #[test]
    fn stage2_and_research_ids_depend_on_project_and_release() {
        let p1 = Pseudonymiser::new(Stage::Stage1, &contract_k1(), "k1", 1).hash_canonical(
            IdentifierType::Bsn,
            &StringArray::from(vec!["111222333", "123456782"]),
        );
        let project_a =
            Pseudonymiser::new(Stage::Stage2, &KeyMaterial::from_bytes([7; 32]), "k2-a", 1);
        let project_b =
            Pseudonymiser::new(Stage::Stage2, &KeyMaterial::from_bytes([8; 32]), "k2-b", 1);
        let a = project_a.hash_pseudonyms(IdentifierType::Bsn, &p1);
        let b = project_b.hash_pseudonyms(IdentifierType::Bsn, &p1);
        assert_ne!(a.value(0), b.value(0), "projects are unlinkable");
        assert_ne!(a.value(0), p1.value(0));
        assert_eq!(
            a,
            project_a.hash_pseudonyms(IdentifierType::Bsn, &p1),
            "stable for the same inputs"
        );
        // The type is part of the input: the same bytes as kvk differ.
        assert_ne!(
            a.value(0),
            project_a.hash_pseudonyms(IdentifierType::Kvk, &p1).value(0)
        );

        let release_1 =
            Pseudonymiser::new(Stage::Research, &KeyMaterial::from_bytes([9; 32]), "r1", 1);
        let release_2 =
            Pseudonymiser::new(Stage::Research, &KeyMaterial::from_bytes([10; 32]), "r2", 1);
        let r1 = release_1.research_ids(IdentifierType::Bsn, &a);
        let r2 = release_2.research_ids(IdentifierType::Bsn, &a);
        assert_ne!(
            r1.value(0),
            r2.value(0),
            "releases are unlinkable unless they share a key"
        );
        assert_eq!(r1, release_1.research_ids(IdentifierType::Bsn, &a));
        assert_ne!(r1.value(0), r1.value(1));
        assert!(
            r1.value(0).starts_with("P-") && r1.value(0).len() == 28,
            "{}",
            r1.value(0)
        );
        let org = release_1.research_ids(IdentifierType::Kvk, &a);
        assert!(org.value(0).starts_with("O-"));

        // Per-release keys: K' = HMAC(K, "koppel.derive" ‖ 0 ‖ name), as
        // docs/pseudonymisation.md states; another name, other IDs; the
        // same name, the same IDs.
        let derived = release_1.derive("preventieplan_2023-2024_run-1");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[9; 32]).unwrap();
        mac.update(b"koppel.derive\0preventieplan_2023-2024_run-1");
        let expected_key: [u8; 32] = mac.finalize().into_bytes().into();
        let by_hand = Pseudonymiser::new(
            Stage::Research,
            &KeyMaterial::from_bytes(expected_key),
            "r1",
            1,
        );
        let d1 = derived.research_ids(IdentifierType::Bsn, &a);
        assert_eq!(d1, by_hand.research_ids(IdentifierType::Bsn, &a));
        assert_ne!(d1.value(0), r1.value(0));
        assert_ne!(
            d1.value(0),
            release_1
                .derive("preventieplan_2023-2024_run-2")
                .research_ids(IdentifierType::Bsn, &a)
                .value(0)
        );
        assert_eq!(derived.key_id(), "r1");
    }

    #[test]
    fn fields_carry_key_labels() {
        let p = Pseudonymiser::new(Stage::Stage2, &contract_k1(), "stage2-preventieplan", 3);
        let f = p.field("person_p2", IdentifierType::Bsn, false);
        assert_eq!(f.data_type(), &DataType::FixedSizeBinary(32));
        assert_eq!(f.metadata()[META_KEY_ID], "stage2-preventieplan");
        assert_eq!(f.metadata()[META_KEY_VERSION], "3");
        assert_eq!(f.metadata()[META_PSEUDONYM_STAGE], "p2");
        assert!(!format!("{p:?}").contains("state"));
    }
}
