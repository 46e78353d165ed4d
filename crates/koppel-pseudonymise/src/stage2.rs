//! The TTP's stage 2 over ingested batches: every identifier column becomes
//! a project pseudonym column (`<name>_p2`), labelled with its key.
//!
//! Input: a canonical record batch from koppel-ingest, with identifier
//! columns either as stage-1 pseudonyms (`<name>_p1`, the normal case) or raw
//! (`<name>`, only where the pipeline allows the TTP to compute P1 itself).
//! Output: the same batch with each identifier column replaced by its
//! stage-2 pseudonym column; no raw identifier and no P1 remains.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use koppel_contract::IdentifierType;
use koppel_contract::meta::{META_IDENTIFIER, META_IDENTIFIER_MODE};
use thiserror::Error;
use tracing::warn;

use crate::pseudonym::{Pseudonymiser, Stage};

#[derive(Debug, Error)]
pub enum Stage2Error {
    #[error(
        "source {source_name} delivered raw identifiers in column {column}, and the pipeline does not allow the TTP to compute stage-1 pseudonyms for it"
    )]
    RawNotAllowed { source_name: String, column: String },
    #[error("column {column}: {problem}")]
    Column { column: String, problem: String },
    #[error("a {0:?} pseudonymiser was given where a {1:?} one is needed")]
    WrongStage(Stage, Stage),
}

/// Stage 2 for one source of one linkage project.
#[derive(Debug, Clone)]
pub struct Stage2Transform {
    source: String,
    stage2: Pseudonymiser,
    /// Present only when the pipeline lets the TTP hash raw identifiers of
    /// this source itself.
    raw_allowed: Option<Pseudonymiser>,
}

impl Stage2Transform {
    pub fn new(source: &str, stage2: Pseudonymiser) -> Result<Self, Stage2Error> {
        if stage2.stage() != Stage::Stage2 {
            return Err(Stage2Error::WrongStage(stage2.stage(), Stage::Stage2));
        }
        Ok(Stage2Transform {
            source: source.to_owned(),
            stage2,
            raw_allowed: None,
        })
    }

    /// Lets the TTP compute P1 itself for this source, with the project's
    /// stage-1 key. Every batch that needs it is recorded in the audit log.
    pub fn allow_raw(mut self, stage1: Pseudonymiser) -> Result<Self, Stage2Error> {
        if stage1.stage() != Stage::Stage1 {
            return Err(Stage2Error::WrongStage(stage1.stage(), Stage::Stage1));
        }
        self.raw_allowed = Some(stage1);
        Ok(self)
    }

    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, Stage2Error> {
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            let Some(kind) = field.metadata().get(META_IDENTIFIER) else {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
                continue;
            };
            let kind = match kind.as_str() {
                "bsn" => IdentifierType::Bsn,
                "kvk" => IdentifierType::Kvk,
                other => {
                    return Err(Stage2Error::Column {
                        column: field.name().clone(),
                        problem: format!("unknown identifier type {other}"),
                    });
                }
            };
            let mode = field
                .metadata()
                .get(META_IDENTIFIER_MODE)
                .map(String::as_str);
            let base = field.name().strip_suffix("_p1").unwrap_or(field.name());
            let p1 = match (mode, column.data_type()) {
                (Some("p1"), DataType::FixedSizeBinary(32)) => {
                    column.as_fixed_size_binary().clone()
                }
                (Some("raw"), DataType::Utf8) => {
                    let stage1 =
                        self.raw_allowed
                            .as_ref()
                            .ok_or_else(|| Stage2Error::RawNotAllowed {
                                source_name: self.source.clone(),
                                column: field.name().clone(),
                            })?;
                    warn!(
                        audit = true,
                        source = %self.source,
                        column = %field.name(),
                        rows = column.len(),
                        key_id = stage1.key_id(),
                        key_version = stage1.key_version(),
                        "TTP computed stage-1 pseudonyms itself (raw delivery allowed by the pipeline)"
                    );
                    stage1.hash_canonical(kind, column.as_string::<i32>())
                }
                (mode, data_type) => {
                    return Err(Stage2Error::Column {
                        column: field.name().clone(),
                        problem: format!(
                            "identifier mode {mode:?} with type {data_type} is not an ingest output"
                        ),
                    });
                }
            };
            let p2 = self.stage2.hash_pseudonyms(kind, &p1);
            fields.push(
                self.stage2
                    .field(&format!("{base}_p2"), kind, field.is_nullable()),
            );
            columns.push(Arc::new(p2));
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        RecordBatch::try_new(schema, columns).map_err(|e| Stage2Error::Column {
            column: "*".into(),
            problem: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::KeyMaterial;
    use arrow::array::{Array, Int64Array, StringArray};
    use koppel_contract::IdentifierMode;
    use koppel_ingest::{ColumnKind, ColumnSpec, canonical_field};

    fn bsn_column() -> ColumnSpec {
        ColumnSpec {
            header: "BSN".into(),
            name: "bsn".into(),
            kind: ColumnKind::Identifier(IdentifierType::Bsn),
            required: true,
            unique: false,
        }
    }

    fn batch(mode: IdentifierMode, ids: ArrayRef) -> RecordBatch {
        let year = ColumnSpec {
            header: "jaar".into(),
            name: "year".into(),
            kind: ColumnKind::Integer {
                min: None,
                max: None,
            },
            required: true,
            unique: false,
        };
        let schema = Schema::new(vec![
            canonical_field(&bsn_column(), mode),
            canonical_field(&year, mode),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![ids, Arc::new(Int64Array::from(vec![2024, 2024]))],
        )
        .unwrap()
    }

    fn keys() -> (Pseudonymiser, Pseudonymiser) {
        (
            Pseudonymiser::new(
                Stage::Stage1,
                &KeyMaterial::from_bytes([1; 32]),
                "stage1-x",
                1,
            ),
            Pseudonymiser::new(
                Stage::Stage2,
                &KeyMaterial::from_bytes([2; 32]),
                "stage2-x",
                4,
            ),
        )
    }

    #[test]
    fn p1_columns_become_labelled_p2_columns() {
        let (stage1, stage2) = keys();
        let raw = StringArray::from(vec!["111222333", "123456782"]);
        let p1 = stage1.hash_canonical(IdentifierType::Bsn, &raw);
        let out = Stage2Transform::new("izz_verzekerden", stage2.clone())
            .unwrap()
            .apply(&batch(
                IdentifierMode::PrePseudonymised,
                Arc::new(p1.clone()),
            ))
            .unwrap();
        let schema = out.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["bsn_p2", "year"]);
        let field = out.schema().field(0).clone();
        assert_eq!(
            field.metadata()[koppel_contract::meta::META_KEY_ID],
            "stage2-x"
        );
        assert_eq!(
            field.metadata()[koppel_contract::meta::META_KEY_VERSION],
            "4"
        );
        let p2 = out.column(0).as_fixed_size_binary();
        assert_eq!(p2, &stage2.hash_pseudonyms(IdentifierType::Bsn, &p1));
        assert_ne!(p2.value(0), p1.value(0));
    }

    #[test]
    fn raw_identifiers_need_explicit_permission() {
        let (stage1, stage2) = keys();
        let raw: ArrayRef = Arc::new(StringArray::from(vec!["111222333", "123456782"]));
        let transform = Stage2Transform::new("izz_verzekerden", stage2.clone()).unwrap();
        let err = transform
            .apply(&batch(IdentifierMode::Raw, raw.clone()))
            .unwrap_err();
        assert!(matches!(err, Stage2Error::RawNotAllowed { .. }), "{err}");
        assert!(!err.to_string().contains("111222333"));

        let allowed = transform.allow_raw(stage1.clone()).unwrap();
        let from_raw = allowed.apply(&batch(IdentifierMode::Raw, raw)).unwrap();
        // The same P2 as when the partner made P1: the two routes agree.
        let p1 = stage1.hash_canonical(
            IdentifierType::Bsn,
            &StringArray::from(vec!["111222333", "123456782"]),
        );
        let from_p1 = Stage2Transform::new("izz_verzekerden", stage2)
            .unwrap()
            .apply(&batch(IdentifierMode::PrePseudonymised, Arc::new(p1)))
            .unwrap();
        assert_eq!(from_raw.column(0).as_ref(), from_p1.column(0).as_ref());
        assert!(from_raw.column(0).is_valid(1));
    }

    #[test]
    fn stages_cannot_be_swapped() {
        let (stage1, stage2) = keys();
        assert!(Stage2Transform::new("s", stage1.clone()).is_err());
        assert!(
            Stage2Transform::new("s", stage2.clone())
                .unwrap()
                .allow_raw(stage2)
                .is_err()
        );
    }
}
