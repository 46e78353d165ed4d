//! The partner side: validate a delivery, replace every identifier by its
//! stage-1 pseudonym, describe it in a manifest, and seal it for the TTP.
//!
//! Input: a delivery file with raw identifiers, its source spec, and the
//! partner's keys. Output: one sealed file `<delivery>.sealed` in the output
//! directory. The pseudonymised content is the same delivery in the same
//! dialect, with `<HEADER>_P1` columns in place of identifier columns, so the
//! TTP validates it against the same contract. Raw identifiers are read, never
//! written: the only file written besides the sealed one is a temporary file
//! of the pseudonymised content, removed when sealing ends.

use koppel_contract::fsx::{Existing, persist};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::hashing::HashingWriter;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchReader, StringArray,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema};
use csv::ByteRecord;
use koppel_contract::{IdentifierMode, IdentifierType};
use koppel_ingest::{
    CsvRecords, DeliveryManifest, DeliveryReader, DeliverySummary, FormatSpec, IngestError,
    KeyLabel, ReadOptions, Reject, RejectSink, SourceSpec,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use thiserror::Error;

use crate::keystore::{KeyInfo, PartnerKeys};
use crate::pseudonym::{Pseudonymiser, Stage};
use crate::seal::{self, DEFAULT_CHUNK_SIZE, SealError};
use koppel_contract::meta::{META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE};

/// Why a delivery was not prepared. No variant carries a field value.
#[derive(Debug, Error)]
pub enum PrepareError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{}: the delivery failed validation and was not sealed: {reason}", path.display())]
    Rejected {
        path: PathBuf,
        reason: String,
        summary: Box<DeliverySummary>,
    },
    #[error("{}: the delivery's identifiers are already pseudonymised; prepare takes raw identifiers", path.display())]
    AlreadyPseudonymised { path: PathBuf },
    #[error("{}: source {source_name} is delivered by {expected}, but these are {partner}'s keys", path.display())]
    WrongPartner {
        path: PathBuf,
        source_name: String,
        expected: String,
        partner: String,
    },
    #[error("{}: cannot write", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot rewrite the Parquet delivery: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: sealing failed", path.display())]
    Seal {
        path: PathBuf,
        #[source]
        source: SealError,
    },
    #[error("{}: line {line} passed validation but its identifier could not be canonicalised", path.display())]
    Inconsistent { path: PathBuf, line: u64 },
    #[error("{} already exists; a sealed delivery is never overwritten", path.display())]
    Exists { path: PathBuf },
    #[error("cannot draw a random delivery id")]
    Random,
}

/// What `prepare_delivery` made.
#[derive(Debug, Clone)]
pub struct PreparedDelivery {
    pub sealed: PathBuf,
    pub manifest: DeliveryManifest,
    pub summary: DeliverySummary,
}

/// Collects the lines of rejected rows, so the rewrite can leave them out;
/// values are never kept.
#[derive(Clone, Default)]
struct RejectedLines(Arc<Mutex<HashSet<u64>>>);

impl RejectSink for RejectedLines {
    fn reject(&mut self, r: &Reject) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.line);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Validates, pseudonymises and seals one delivery. `period` is the
/// delivery period the manifest declares (for example `2024`).
pub fn prepare_delivery(
    input: &Path,
    spec: &SourceSpec,
    keys: &PartnerKeys,
    out_dir: &Path,
    period: &str,
    synthetic: bool,
) -> Result<PreparedDelivery, PrepareError> {
    let file_name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}_{period}", spec.source));
    // The TTP refuses a source sealed by another partner's key; say so
    // here, before anything is read or written.
    if !spec.partner.eq_ignore_ascii_case(&keys.partner) {
        return Err(PrepareError::WrongPartner {
            path: input.to_owned(),
            source_name: spec.source.clone(),
            expected: spec.partner.clone(),
            partner: keys.partner.clone(),
        });
    }
    let sealed_path = out_dir.join(format!("{file_name}.sealed"));
    if sealed_path.exists() {
        return Err(PrepareError::Exists { path: sealed_path });
    }

    // 1. Validate exactly as `koppel validate` does, remembering which lines
    //    were rejected.
    let rejected = RejectedLines::default();
    let options = ReadOptions {
        reject_sink: Some(Box::new(rejected.clone())),
        verify_manifest: false,
        ..ReadOptions::default()
    };
    let reader = DeliveryReader::open(input, spec, options)?;
    if reader.identifier_mode() == IdentifierMode::PrePseudonymised {
        return Err(PrepareError::AlreadyPseudonymised {
            path: input.to_owned(),
        });
    }
    let summary = reader.finish()?;
    if let koppel_ingest::Verdict::Failed { reason } = &summary.verdict {
        return Err(PrepareError::Rejected {
            path: input.to_owned(),
            reason: reason.clone(),
            summary: Box::new(summary),
        });
    }
    let rejected = std::mem::take(&mut *rejected.0.lock().unwrap_or_else(|e| e.into_inner()));

    // 2. Rewrite with stage-1 pseudonyms into a temporary file beside the
    //    output; it holds no raw identifier and is removed on every path.
    let (stage1_info, stage1_key) = &keys.stage1;
    let p1 = Pseudonymiser::new(
        Stage::Stage1,
        stage1_key,
        &stage1_info.id,
        stage1_info.version,
    );
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PrepareError::Io { path, source }
    };
    let mut content = tempfile::Builder::new()
        .prefix(".koppel-prepare-")
        .tempfile_in(out_dir)
        .map_err(io_err(out_dir))?;
    let (rows, sha256) = {
        let mut writer =
            HashingWriter::new(BufWriter::with_capacity(1 << 20, content.as_file_mut()));
        let rows = match &spec.format {
            FormatSpec::Csv(dialect) => {
                rewrite_csv(input, spec, dialect.delimiter, &p1, &rejected, &mut writer)?
            }
            FormatSpec::Parquet => rewrite_parquet(input, spec, &p1, &rejected, &mut writer)?,
        };
        (rows, writer.finish().map_err(io_err(out_dir))?)
    };

    // 3. The manifest travels inside the seal.
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| PrepareError::Random)?;
    let manifest = DeliveryManifest {
        source: spec.source.clone(),
        period: period.to_owned(),
        rows,
        sha256,
        identifier_mode: IdentifierMode::PrePseudonymised,
        delivery_id: Some(hex::encode(id)),
        partner: Some(keys.partner.clone()),
        file: Some(file_name),
        keys: vec![key_label(stage1_info)],
        rejected_rows: Some(summary.rows_rejected),
        synthetic,
    };

    // 4. Seal into a temporary name and move it into place only when whole.
    let (transport_info, transport_key) = &keys.transport;
    let file = content.as_file_mut();
    file.seek(SeekFrom::Start(0)).map_err(io_err(out_dir))?;
    let mut sealed_tmp = tempfile::Builder::new()
        .prefix(".koppel-sealing-")
        .tempfile_in(out_dir)
        .map_err(io_err(out_dir))?;
    seal::seal(
        manifest.to_yaml().as_bytes(),
        io::BufReader::with_capacity(1 << 20, file),
        BufWriter::with_capacity(1 << 20, sealed_tmp.as_file_mut()),
        transport_key,
        &transport_info.id,
        transport_info.version,
        DEFAULT_CHUNK_SIZE,
    )
    .map_err(|source| PrepareError::Seal {
        path: sealed_path.clone(),
        source,
    })?;
    persist(sealed_tmp, &sealed_path, Existing::Refuse).map_err(io_err(&sealed_path))?;
    Ok(PreparedDelivery {
        sealed: sealed_path,
        manifest,
        summary,
    })
}

fn key_label(info: &KeyInfo) -> KeyLabel {
    KeyLabel {
        purpose: info.purpose.to_string(),
        id: info.id.clone(),
        version: info.version,
        fingerprint: info.fingerprint.clone(),
    }
}

/// Field positions of the spec's columns, in file order. Columns the spec
/// lists as ignored are dropped here: whatever they hold never leaves.
fn kept_fields(spec: &SourceSpec, header: &[String]) -> Vec<usize> {
    (0..header.len())
        .filter(|&i| {
            spec.columns
                .iter()
                .any(|c| c.header.eq_ignore_ascii_case(header[i].trim()))
        })
        .collect()
}

/// Field positions of the identifier columns, with their types.
fn identifier_fields(spec: &SourceSpec, header: &[String]) -> Vec<(usize, IdentifierType)> {
    spec.columns
        .iter()
        .filter_map(|c| {
            let kind = c.identifier()?;
            let at = header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(&c.header))?;
            Some((at, kind))
        })
        .collect()
}

fn rewrite_csv(
    input: &Path,
    spec: &SourceSpec,
    delimiter: u8,
    p1: &Pseudonymiser,
    rejected: &HashSet<u64>,
    out: &mut impl Write,
) -> Result<u64, PrepareError> {
    let (mut records, header) = CsvRecords::open(input, delimiter)?;
    let identifiers = identifier_fields(spec, &header);
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let write_err = |e: csv::Error| PrepareError::Io {
        path: input.to_owned(),
        source: io::Error::other(e.to_string()),
    };
    let kept = kept_fields(spec, &header);
    let renamed: Vec<String> = kept
        .iter()
        .map(|&i| {
            let h = header[i].trim();
            if identifiers.iter().any(|(at, _)| *at == i) {
                format!("{h}_P1")
            } else {
                h.to_owned()
            }
        })
        .collect();
    writer.write_record(&renamed).map_err(write_err)?;

    let mut record = ByteRecord::new();
    let mut output = ByteRecord::new();
    let mut hex = [0u8; 64];
    let mut rows = 0u64;
    while let Some(line) = records.next_record(&mut record)? {
        if rejected.contains(&line) {
            continue;
        }
        output.clear();
        for (i, field) in kept.iter().map(|&i| (i, &record[i])) {
            match identifiers.iter().find(|(at, _)| *at == i) {
                Some(&(_, kind)) if !field.trim_ascii().is_empty() => {
                    let digest =
                        p1.pseudonym_of_raw(kind, field)
                            .ok_or(PrepareError::Inconsistent {
                                path: input.to_owned(),
                                line,
                            })?;
                    hex::encode_to_slice(digest, &mut hex).expect("64 hex characters for 32 bytes");
                    output.push_field(&hex);
                }
                _ => output.push_field(field),
            }
        }
        writer.write_byte_record(&output).map_err(write_err)?;
        rows += 1;
    }
    writer.flush().map_err(|source| PrepareError::Io {
        path: input.to_owned(),
        source,
    })?;
    Ok(rows)
}

fn rewrite_parquet(
    input: &Path,
    spec: &SourceSpec,
    p1: &Pseudonymiser,
    rejected: &HashSet<u64>,
    out: &mut (impl Write + Send),
) -> Result<u64, PrepareError> {
    let parquet_err = |message: String| PrepareError::Parquet {
        path: input.to_owned(),
        message,
    };
    let file = File::open(input).map_err(|source| PrepareError::Io {
        path: input.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| parquet_err(e.to_string()))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let identifiers = identifier_fields(spec, &names);
    let kept = kept_fields(spec, &names);
    // Identifier columns become `<name>_P1`, labelled with the stage-1 key;
    // ignored columns are left out.
    let out_schema = Arc::new(Schema::new(
        kept.iter()
            .map(|&i| {
                let f = schema.field(i);
                if identifiers.iter().any(|(at, _)| *at == i) {
                    Field::new(format!("{}_P1", f.name()), DataType::Utf8, f.is_nullable())
                        .with_metadata(
                            [
                                (META_PSEUDONYM_STAGE.to_owned(), "p1".to_owned()),
                                (META_KEY_ID.to_owned(), p1.key_id().to_owned()),
                                (META_KEY_VERSION.to_owned(), p1.key_version().to_string()),
                            ]
                            .into(),
                        )
                } else {
                    f.clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(out, out_schema.clone(), Some(properties))
        .map_err(|e| parquet_err(e.to_string()))?;
    let mut first_row = 1u64;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(e.to_string()))?;
        let n = batch.num_rows() as u64;
        let keep = BooleanArray::from_iter(
            (first_row..first_row + n).map(|r| Some(!rejected.contains(&r))),
        );
        first_row += n;
        let batch = filter_record_batch(&batch, &keep).map_err(|e| parquet_err(e.to_string()))?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for &(at, kind) in &identifiers {
            let text =
                cast(&columns[at], &DataType::Utf8).map_err(|e| parquet_err(e.to_string()))?;
            let text = text.as_string::<i32>();
            let mut pseudonyms = Vec::with_capacity(text.len());
            for i in 0..text.len() {
                if text.is_null(i) {
                    pseudonyms.push(None);
                    continue;
                }
                let digest = p1.pseudonym_of_raw(kind, text.value(i).as_bytes());
                let digest = digest.ok_or_else(|| {
                    parquet_err("a validated identifier did not canonicalise".into())
                })?;
                pseudonyms.push(Some(hex::encode(digest)));
            }
            columns[at] = Arc::new(StringArray::from(pseudonyms));
        }
        let columns: Vec<ArrayRef> = kept.iter().map(|&i| columns[i].clone()).collect();
        let batch = RecordBatch::try_new(out_schema.clone(), columns)
            .map_err(|e| parquet_err(e.to_string()))?;
        rows += batch.num_rows() as u64;
        writer
            .write(&batch)
            .map_err(|e| parquet_err(e.to_string()))?;
    }
    writer.close().map_err(|e| parquet_err(e.to_string()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{KeyPurpose, KeyStatus};
    use crate::secret::KeyMaterial;
    use sha2::{Digest, Sha256};

    fn info(id: &str, purpose: KeyPurpose) -> KeyInfo {
        KeyInfo {
            id: id.into(),
            purpose,
            version: 1,
            status: KeyStatus::Active,
            created: "2026-11-23T00:00:00Z".into(),
            partner: Some("izz".into()),
            project: None,
            fingerprint: "0000000000000000".into(),
        }
    }

    fn keys() -> PartnerKeys {
        PartnerKeys {
            partner: "izz".into(),
            stage1: (
                info("stage1-x", KeyPurpose::Stage1),
                KeyMaterial::from_bytes([1; 32]),
            ),
            transport: (
                info("transport-izz", KeyPurpose::Transport),
                KeyMaterial::from_bytes([2; 32]),
            ),
            demo: true,
        }
    }

    const SPEC: &str = "source: izz_verzekerden\npartner: IZZ\nformat: {kind: csv, delimiter: ','}\ncolumns:\n  - {header: bsn, name: bsn, type: bsn, required: true}\n  - {header: jaar, name: year, type: integer, required: true}\nignored_columns: [notitie]\n";

    #[test]
    fn prepared_content_has_pseudonyms_and_no_ignored_or_rejected_data() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SourceSpec::from_yaml(SPEC, Path::new("spec.yaml")).unwrap();
        let input = dir.path().join("izz_verzekerden_2024.csv");
        // 150 good rows and one bad one: under the 1% reject limit.
        let mut text = String::from("jaar,notitie,bsn\n");
        for _ in 0..150 {
            text.push_str("2024,belde over 123456782,111222333\n");
        }
        text.push_str("2024,x,123456789\n");
        std::fs::write(&input, text).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let prepared = prepare_delivery(&input, &spec, &keys(), &out, "2024", true).unwrap();
        assert_eq!(prepared.manifest.rows, 150);
        assert_eq!(prepared.manifest.rejected_rows, Some(1));
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "only the sealed file remains"
        );

        let mut content = Vec::new();
        let (_, manifest) = seal::unseal(
            File::open(&prepared.sealed).unwrap(),
            &KeyMaterial::from_bytes([2; 32]),
            &mut content,
        )
        .unwrap();
        let content = String::from_utf8(content).unwrap();
        let p1 = Pseudonymiser::new(
            Stage::Stage1,
            &KeyMaterial::from_bytes([1; 32]),
            "stage1-x",
            1,
        )
        .p1_hex(IdentifierType::Bsn, "111222333");
        assert!(
            content.starts_with(&format!("jaar,bsn_P1\n2024,{p1}\n")),
            "{content}"
        );
        assert_eq!(content.lines().count(), 151);
        for secret in ["notitie", "belde", "123456782", "111222333", "123456789"] {
            assert!(
                !content.contains(secret),
                "{secret} reached the sealed content"
            );
        }
        let manifest =
            DeliveryManifest::parse(std::str::from_utf8(&manifest).unwrap(), Path::new("m"))
                .unwrap();
        assert_eq!(manifest, prepared.manifest);
        assert_eq!(
            manifest.sha256,
            hex::encode(Sha256::digest(content.as_bytes()))
        );

        // A second prepare never overwrites the sealed delivery.
        let again = prepare_delivery(&input, &spec, &keys(), &out, "2024", true).unwrap_err();
        assert!(matches!(again, PrepareError::Exists { .. }), "{again}");
    }
}
