//! Stage 2 over a received delivery: the TTP's hand-over from what
//! partners sealed (stage-1 pseudonyms) to the linking stage (stage-2
//! pseudonyms only).
//!
//! Input: a verified sealed delivery (a run: decrypted as it is read) or a
//! staged file with its manifest (an operator's `koppel unseal` and
//! `koppel pseudonymise`), its source spec, and the project's
//! `Stage2Transform`. Output: one Parquet file of canonical
//! columns in which every identifier is a labelled P2 column. The file
//! appears only when the delivery passed validation; no P1 and no raw
//! identifier is in it.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use koppel_contract::meta::META_IDENTIFIER;
use koppel_ingest::{
    DeliveryReader, DeliverySummary, IngestError, ReadOptions, SourceSpec, Verdict,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use thiserror::Error;

use crate::keystore::KeyStore;
use crate::receive::{ReceiveError, SealedDelivery, VerifiedDelivery};
use crate::stage2::{Stage2Error, Stage2Transform};

#[derive(Debug, Error)]
pub enum StagedError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{}: the staged delivery failed validation: {reason}", path.display())]
    Rejected { path: PathBuf, reason: String },
    #[error("{}: stage 2 failed", path.display())]
    Stage2 {
        path: PathBuf,
        #[source]
        source: Stage2Error,
    },
    #[error(transparent)]
    Sealed(Box<ReceiveError>),
    #[error("{}: cannot write Parquet: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// What `pseudonymise_staged` wrote.
#[derive(Debug, Clone)]
pub struct PseudonymisedDelivery {
    pub output: PathBuf,
    pub summary: DeliverySummary,
}

/// Reads a staged delivery (its manifest must be beside it and is
/// verified), applies stage 2 batch by batch, and writes `output`: what an
/// operator's `koppel pseudonymise` does over a staging folder.
pub fn pseudonymise_staged(
    staged: &Path,
    spec: &SourceSpec,
    transform: &Stage2Transform,
    output: &Path,
) -> Result<PseudonymisedDelivery, StagedError> {
    let options = ReadOptions {
        require_manifest: true,
        ..ReadOptions::default()
    };
    let reader = DeliveryReader::open(staged, spec, options)?;
    write_stage2(reader, staged, transform, output, &mut |_| {}, &|| Ok(()))
}

/// Stage 2 straight from a sealed delivery whose header and manifest
/// checked out: the content is decrypted as it is parsed, so no plaintext
/// copy of it is ever written, and the same pass verifies the whole file
/// (returned beside what was written). `inspect` sees every batch read
/// (the stage-1 layer) and every batch written (the stage-2 layer): the
/// run's leak guard learns the pseudonyms of both here. Should the sealed
/// file fail to verify anywhere, or its content not be read to the
/// authenticated end, nothing is written.
pub fn pseudonymise_sealed(
    delivery: &SealedDelivery,
    store: &KeyStore,
    spec: &SourceSpec,
    transform: &Stage2Transform,
    output: &Path,
    inspect: &mut dyn FnMut(&RecordBatch),
) -> Result<(PseudonymisedDelivery, VerifiedDelivery), StagedError> {
    let content = delivery
        .open(store)
        .map_err(|e| StagedError::Sealed(Box::new(e)))?;
    let verification = content.verification();
    let reader = DeliveryReader::from_stream(
        &delivery.sealed,
        Box::new(content),
        delivery.manifest.clone(),
        spec,
        ReadOptions::default(),
    )?;
    let ended = || match verification.verified() {
        Some(_) => Ok(()),
        None => Err(StagedError::Sealed(Box::new(ReceiveError::Refused {
            path: delivery.sealed.clone(),
            what: "the content was not read to its authenticated end".into(),
        }))),
    };
    let written = write_stage2(reader, &delivery.sealed, transform, output, inspect, &ended)?;
    let verified = verification
        .verified()
        .cloned()
        .expect("write_stage2 checked the end");
    Ok((written, verified))
}

/// Applies stage 2 to every batch `reader` gives and writes `output`, which
/// appears only when the delivery was read to its end and accepted and
/// `ended` — the source's last word, a sealed stream's verification —
/// agrees.
fn write_stage2(
    mut reader: DeliveryReader,
    name: &Path,
    transform: &Stage2Transform,
    output: &Path,
    inspect: &mut dyn FnMut(&RecordBatch),
    ended: &dyn Fn() -> Result<(), StagedError>,
) -> Result<PseudonymisedDelivery, StagedError> {
    let write_err = |message: String| StagedError::Write {
        path: output.to_owned(),
        message,
    };
    let dir = output.parent().unwrap_or(Path::new("."));
    let mut partial = tempfile::Builder::new()
        .prefix(".koppel-stage2-")
        .tempfile_in(dir)
        .map_err(|e| write_err(e.to_string()))?;
    let stage2_err = |source| StagedError::Stage2 {
        path: name.to_owned(),
        source,
    };
    // The output schema is what stage 2 makes of the canonical schema.
    let schema = transform
        .apply(&RecordBatch::new_empty(reader.schema()))
        .map_err(stage2_err)?
        .schema();
    let mut properties =
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default()));
    // A dictionary costs a hash per value, and pays only where values
    // repeat across rows of different persons. Amounts (wages, hours) are
    // mostly distinct across persons — interning them was the largest part
    // of writing — and pseudonyms are 32 random bytes for which min/max
    // statistics serve no query either. The runs of one person's rows are
    // compressed by ZSTD all the same.
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        if field.metadata().contains_key(META_IDENTIFIER) {
            properties = properties
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_statistics_enabled(column, EnabledStatistics::None);
        } else if field.data_type() == &DataType::Float64 {
            properties = properties.set_column_dictionary_enabled(column, false);
        }
    }
    let mut writer = ArrowWriter::try_new(partial.as_file_mut(), schema, Some(properties.build()))
        .map_err(|e| write_err(e.to_string()))?;
    while let Some(batch) = reader.next_batch()? {
        inspect(&batch);
        let batch = transform.apply(&batch).map_err(stage2_err)?;
        inspect(&batch);
        writer.write(&batch).map_err(|e| write_err(e.to_string()))?;
    }
    // Only an accepted delivery is handed on; the partial file is removed
    // when it is dropped on any other path.
    let summary = reader.finish()?;
    if let Verdict::Failed { reason } = &summary.verdict {
        return Err(StagedError::Rejected {
            path: name.to_owned(),
            reason: reason.clone(),
        });
    }
    ended()?;
    writer.close().map_err(|e| write_err(e.to_string()))?;
    koppel_contract::fsx::persist(partial, output, koppel_contract::fsx::Existing::Replace)
        .map_err(|e| write_err(e.to_string()))?;
    Ok(PseudonymisedDelivery {
        output: output.to_owned(),
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::{Pseudonymiser, Stage};
    use crate::secret::KeyMaterial;
    use koppel_contract::IdentifierMode;
    use koppel_contract::files::manifest_path;
    use koppel_ingest::DeliveryManifest;

    const SPEC: &str = "source: izz_verzekerden\npartner: IZZ\nformat: {kind: csv, delimiter: ','}\ncolumns:\n  - {header: bsn, name: bsn, type: bsn, required: true}\n  - {header: jaar, name: year, type: integer, required: true}\n";

    fn transform() -> Stage2Transform {
        Stage2Transform::new(
            "izz_verzekerden",
            Pseudonymiser::new(
                Stage::Stage2,
                &KeyMaterial::from_bytes([3; 32]),
                "stage2-x",
                1,
            ),
        )
        .unwrap()
    }

    fn stage(dir: &Path, body: &str, rows: u64) -> PathBuf {
        let file = dir.join("izz_verzekerden_2024.csv");
        std::fs::write(&file, format!("bsn_P1,jaar\n{body}")).unwrap();
        DeliveryManifest::describe(
            &file,
            "izz_verzekerden",
            "2024",
            rows,
            IdentifierMode::PrePseudonymised,
        )
        .unwrap()
        .write(&manifest_path(&file))
        .unwrap();
        file
    }

    #[test]
    fn a_sealed_delivery_is_pseudonymised_as_it_is_decrypted() {
        let p1 = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
        let body = format!("{p1},2024\n{p1},2023\n{p1},2022\n").repeat(100);
        let d = crate::receive::test_support::izz_delivery(&body, 300);
        let opened = crate::receive::open_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        let spec = d.specs.get("izz_verzekerden").unwrap();
        let output = d.dir.path().join("out.parquet");
        let mut seen = Vec::new();
        let (done, verified) = pseudonymise_sealed(
            &opened,
            &d.store,
            spec,
            &transform(),
            &output,
            &mut |batch| seen.push((batch.schema().field(0).name().clone(), batch.num_rows())),
        )
        .unwrap();
        assert_eq!(done.summary.rows_accepted, 300);
        // The one pass verified the file as `verify_delivery` does.
        let alone = crate::receive::verify_delivery(&d.sealed, &d.store, &d.specs).unwrap();
        assert_eq!(verified.sealed_sha256, alone.sealed_sha256);
        assert_eq!(verified.content_len, alone.content_len);
        assert_eq!(verified.delivery.manifest, alone.delivery.manifest);
        assert_eq!(
            seen,
            [("bsn_p1".to_owned(), 300), ("bsn_p2".to_owned(), 300)],
            "the stage-1 batch, then the stage-2 batch made of it"
        );
        let written: usize =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(&output).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(written, 300);

        // The sealed file modified after it verified: the stream fails in
        // the middle, and nothing is written.
        let mut bytes = std::fs::read(&d.sealed).unwrap();
        let at = bytes.len() - 5_000;
        bytes[at] ^= 1;
        std::fs::write(&d.sealed, bytes).unwrap();
        let failed = d.dir.path().join("failed.parquet");
        let err = pseudonymise_sealed(&opened, &d.store, spec, &transform(), &failed, &mut |_| {})
            .unwrap_err();
        assert!(
            format!("{:?}", err).contains("Authentication"),
            "{err}: the authentication failure is in the chain"
        );
        assert!(!failed.exists());
        let leftovers = std::fs::read_dir(d.dir.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".koppel")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn accepted_delivery_becomes_p2_parquet_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SourceSpec::from_yaml(SPEC, Path::new("s.yaml")).unwrap();
        let p1 = "f80ce1cdf1a48876ab00530de42b5ef61e90658b86720874e31a39dc5a516692";
        let staged = stage(dir.path(), &format!("{p1},2024\n{p1},2023\n"), 2);
        let output = dir.path().join("out.parquet");
        let done = pseudonymise_staged(&staged, &spec, &transform(), &output).unwrap();
        assert_eq!(done.summary.rows_accepted, 2);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&output).unwrap(),
        )
        .unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["bsn_p2", "year"]);
        // No pseudonym sits in the footer as a column's min or max.
        let chunk = reader.metadata().row_group(0);
        assert!(chunk.column(0).statistics().is_none(), "bsn_p2");
        assert!(chunk.column(1).statistics().is_some(), "year");

        // Half the rows broken: the delivery fails and no output appears.
        let staged = stage(dir.path(), &format!("{p1},2024\nnot-a-pseudonym,2024\n"), 2);
        let failed = dir.path().join("failed.parquet");
        let err = pseudonymise_staged(&staged, &spec, &transform(), &failed).unwrap_err();
        assert!(matches!(err, StagedError::Rejected { .. }), "{err}");
        assert!(!failed.exists());
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".koppel")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
