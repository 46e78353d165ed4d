use std::path::PathBuf;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, FixedSizeBinaryArray, PrimitiveArray, RecordBatch,
};
use arrow::datatypes::DataType;
use koppel_contract::meta::PSEUDONYM_BYTES;
use thiserror::Error;

/// Everything that stops a release. None of these messages carries a value
/// from the data: identifiers never reach an error. A wrapped error is the
/// `source`, not part of the message, so a chain printed with `{:#}` says
/// each thing once.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error("column {column}: {message}")]
    Column { column: String, message: String },
    /// A linked model (`file`) without a column export reads.
    #[error("{file}: no column {column}; is this the output of this version of `koppel link`?")]
    ModelColumnMissing { file: String, column: String },
    /// A column of a linked model of another type than export reads.
    #[error(
        "{file}, column {column}: type {found}, expected {expected}; is this the output of this version of `koppel link`?"
    )]
    ModelColumnType {
        file: String,
        column: String,
        found: DataType,
        expected: String,
    },
    /// A pseudonym column of a linked model whose values are not stage-2
    /// pseudonyms of 32 bytes.
    #[error(
        "{file}, column {column}: pseudonyms of {found} bytes, expected {expected}; is this the output of this version of `koppel link`?"
    )]
    PseudonymWidth {
        file: String,
        column: String,
        found: i32,
        expected: usize,
    },
    #[error("{} already exists and is not empty; a release is never written over another", path.display())]
    OutputExists { path: PathBuf },
    #[error("disclosure control of the person file")]
    Disclosure(#[from] koppel_disclosure::DisclosureError),
    #[error("table {table}")]
    Table {
        table: String,
        /// Boxed: the table's error carries the cell it could not protect.
        #[source]
        source: Box<crate::tables::TableError>,
    },
    #[error("identifier leak guard: {file}, column {column}: {what}; the release was not written")]
    Leak {
        file: String,
        column: String,
        what: String,
    },
    #[error("reading a staged delivery for the leak guard")]
    Ingest(#[from] koppel_ingest::IngestError),
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{context}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl ExportError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ExportError {
        let path = path.into();
        move |source| ExportError::Io { path, source }
    }

    pub(crate) fn arrow(
        context: impl Into<String>,
    ) -> impl FnOnce(arrow::error::ArrowError) -> ExportError {
        let context = context.into();
        move |source| ExportError::Arrow { context, source }
    }

    pub(crate) fn parquet(
        context: impl Into<String>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> ExportError {
        let context = context.into();
        move |source| ExportError::Parquet { context, source }
    }
}

// Checked access to the columns of the linked models. Arrow's `as_*`
// downcasts panic on another type; a model folder from another version or
// an edited file must stop the export with an error naming the file and
// the column instead. Each check is once per column, never per row.

/// The column `name` of the model read from `file`.
pub(crate) fn model_column<'a>(
    batch: &'a RecordBatch,
    file: &str,
    name: &str,
) -> Result<&'a ArrayRef, ExportError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ExportError::ModelColumnMissing {
            file: file.into(),
            column: name.into(),
        })
}

fn wrong_type(file: &str, name: &str, found: &DataType, expected: String) -> ExportError {
    ExportError::ModelColumnType {
        file: file.into(),
        column: name.into(),
        found: found.clone(),
        expected,
    }
}

/// The column `name` of the model read from `file`, of Arrow type `T`
/// exactly.
pub(crate) fn typed_column<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    file: &str,
    name: &str,
) -> Result<&'a PrimitiveArray<T>, ExportError> {
    let array = model_column(batch, file, name)?;
    match array.as_primitive_opt::<T>() {
        Some(values) if *values.data_type() == T::DATA_TYPE => Ok(values),
        _ => Err(wrong_type(
            file,
            name,
            array.data_type(),
            T::DATA_TYPE.to_string(),
        )),
    }
}

/// The column `name` of the model read from `file`, of a numeric type
/// (integer, decimal or floating point): what is cast to a number.
pub(crate) fn numeric_column<'a>(
    batch: &'a RecordBatch,
    file: &str,
    name: &str,
) -> Result<&'a ArrayRef, ExportError> {
    let array = model_column(batch, file, name)?;
    if array.data_type().is_numeric() {
        Ok(array)
    } else {
        Err(wrong_type(
            file,
            name,
            array.data_type(),
            "a number (integer, decimal or floating point)".into(),
        ))
    }
}

/// The column `name` of the model read from `file`, of type `Boolean`.
pub(crate) fn boolean_column<'a>(
    batch: &'a RecordBatch,
    file: &str,
    name: &str,
) -> Result<&'a arrow::array::BooleanArray, ExportError> {
    let array = model_column(batch, file, name)?;
    array
        .as_boolean_opt()
        .ok_or_else(|| wrong_type(file, name, array.data_type(), DataType::Boolean.to_string()))
}

/// A stage-2 pseudonym column of a model, checked to hold 32 bytes a row.
pub(crate) struct PseudonymColumn<'a> {
    /// The column as Arrow has it, for functions that take an array.
    pub array: &'a FixedSizeBinaryArray,
    /// The 32 bytes of each row (whatever they are under a null).
    pub keys: &'a [[u8; PSEUDONYM_BYTES]],
}

impl PseudonymColumn<'_> {
    /// The pseudonym of a row, `None` where it is null.
    pub fn key(&self, row: usize) -> Option<[u8; PSEUDONYM_BYTES]> {
        self.array.is_valid(row).then(|| self.keys[row])
    }
}

/// The column `name` of the model read from `file` as stage-2 pseudonyms:
/// `FixedSizeBinary(32)`.
pub(crate) fn pseudonym_column<'a>(
    batch: &'a RecordBatch,
    file: &str,
    name: &str,
) -> Result<PseudonymColumn<'a>, ExportError> {
    let array = model_column(batch, file, name)?;
    match array.data_type() {
        DataType::FixedSizeBinary(width) if *width as usize == PSEUDONYM_BYTES => {
            let array = array.as_fixed_size_binary();
            // The values of a fixed-size array are its rows back to back.
            let (keys, _) = array.value_data().as_chunks::<PSEUDONYM_BYTES>();
            Ok(PseudonymColumn { array, keys })
        }
        DataType::FixedSizeBinary(width) => Err(ExportError::PseudonymWidth {
            file: file.into(),
            column: name.into(),
            found: *width,
            expected: PSEUDONYM_BYTES,
        }),
        other => Err(wrong_type(
            file,
            name,
            other,
            DataType::FixedSizeBinary(PSEUDONYM_BYTES as i32).to_string(),
        )),
    }
}

/// Hand-made linked models for the tests of the checks above: a valid
/// pair, a way to change one column, and the export over them.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array,
        RecordBatch, StringArray,
    };
    use arrow::datatypes::{Field, Schema};
    use koppel_contract::IdentifierType;
    use koppel_contract::files::linked::{
        LINKAGE_REPORT_FILE, ORGANISATION_MODEL_FILE, PERSON_MODEL_FILE,
    };
    use koppel_pseudonymise::{KeyMaterial, Pseudonymiser, Stage};
    use parquet::arrow::ArrowWriter;

    use super::ExportError;
    use crate::config::{
        Banding, DisclosureConfig, Hierarchy, OrganisationRules, PersonRules, ReleasedVariable,
        TableDimension, TableModel, TableSpec,
    };
    use crate::{ExportOptions, ExportOutcome, LeakGuard};

    /// One model: its columns in order.
    pub(crate) type Model = Vec<(Field, ArrayRef)>;

    pub(crate) struct Models {
        pub person: Model,
        pub organisation: Model,
        /// What the export applies: [`Models::config`] unless changed.
        pub config: DisclosureConfig,
    }

    fn p2(bytes: &[u8; 4]) -> [u8; 32] {
        let mut p = [0x5c; 32];
        p[..4].copy_from_slice(bytes);
        p
    }

    /// `width`-byte pseudonyms (nullable), for a column of another width.
    pub(crate) fn pseudonyms(values: &[Option<[u8; 32]>], width: usize) -> ArrayRef {
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                values.iter().map(|v| v.map(|v| v[..width].to_vec())),
                width as i32,
            )
            .expect("pseudonyms"),
        )
    }

    fn stage2() -> Pseudonymiser {
        Pseudonymiser::new(
            Stage::Stage2,
            &KeyMaterial::from_bytes([0x21; 32]),
            "fixture-stage2",
            1,
        )
    }

    impl Models {
        /// A pair that exports: two organisations of two persons each.
        pub(crate) fn valid() -> Models {
            let keys = stage2();
            let orgs = [Some(p2(b"org1")), Some(p2(b"org2"))];
            let people = [p2(b"per1"), p2(b"per2"), p2(b"per3"), p2(b"per4")];
            let person = vec![
                (
                    keys.field("person_p2", IdentifierType::Bsn, false),
                    pseudonyms(&people.map(Some), 32),
                ),
                (
                    Field::new("year", arrow::datatypes::DataType::Int32, false),
                    Arc::new(Int32Array::from(vec![2024; 4])) as ArrayRef,
                ),
                (
                    keys.field("org_p2", IdentifierType::Kvk, true),
                    pseudonyms(&[orgs[0], orgs[0], orgs[1], None], 32),
                ),
                (
                    Field::new("on_payroll", arrow::datatypes::DataType::Boolean, false),
                    Arc::new(BooleanArray::from(vec![true, true, true, false])),
                ),
                (
                    Field::new("sex", arrow::datatypes::DataType::Utf8, true),
                    Arc::new(StringArray::from(vec!["V", "M", "V", "M"])),
                ),
            ];
            let organisation = vec![
                (
                    keys.field("org_p2", IdentifierType::Kvk, false),
                    pseudonyms(&orgs, 32),
                ),
                (
                    Field::new("year", arrow::datatypes::DataType::Int32, false),
                    Arc::new(Int32Array::from(vec![2024; 2])) as ArrayRef,
                ),
                (
                    Field::new("sector", arrow::datatypes::DataType::Utf8, true),
                    Arc::new(StringArray::from(vec!["Zorg", "Zorg"])),
                ),
                (
                    Field::new("headcount", arrow::datatypes::DataType::Int64, false),
                    Arc::new(Int64Array::from(vec![2, 2])),
                ),
                (
                    Field::new("fte", arrow::datatypes::DataType::Float64, true),
                    Arc::new(Float64Array::from(vec![1.5, 2.0])),
                ),
                (
                    Field::new(
                        "mean_physical_load",
                        arrow::datatypes::DataType::Float64,
                        true,
                    ),
                    Arc::new(Float64Array::from(vec![0.5, 0.25])),
                ),
                (
                    Field::new("n_fwg", arrow::datatypes::DataType::Int64, true),
                    Arc::new(Int64Array::from(vec![2, 1])),
                ),
                (
                    Field::new("available_days", arrow::datatypes::DataType::Int64, true),
                    Arc::new(Int64Array::from(vec![600, 700])),
                ),
            ];
            Models {
                person,
                organisation,
                config: Self::config(),
            }
        }

        /// Replaces column `name` of `model` by `array`, of its type; the
        /// field keeps its name, nullability and metadata.
        pub(crate) fn set(model: &mut Model, name: &str, array: ArrayRef) {
            let (field, column) = model
                .iter_mut()
                .find(|(f, _)| f.name() == name)
                .expect("a column of the fixture");
            *field = field
                .clone()
                .with_data_type(array.data_type().clone())
                .with_nullable(true);
            *column = array;
        }

        pub(crate) fn remove(model: &mut Model, name: &str) {
            model.retain(|(f, _)| f.name() != name);
        }

        /// The organisation pseudonyms of the fixture, for a column of
        /// another width.
        pub(crate) fn org_keys() -> [Option<[u8; 32]>; 2] {
            [Some(p2(b"org1")), Some(p2(b"org2"))]
        }

        pub(crate) fn person_keys() -> [Option<[u8; 32]>; 4] {
            [b"per1", b"per2", b"per3", b"per4"].map(|p| Some(p2(p)))
        }

        pub(crate) fn batch(model: &Model) -> RecordBatch {
            let schema = Schema::new(model.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>());
            RecordBatch::try_new(
                Arc::new(schema),
                model.iter().map(|(_, a)| a.clone()).collect(),
            )
            .expect("a consistent fixture")
        }

        /// Rules that read every column of the fixture: sex as a
        /// quasi-identifier, fte banded, a person table with `only_where`
        /// and an organisation table with a dimension and a measure.
        pub(crate) fn config() -> DisclosureConfig {
            DisclosureConfig {
                person: PersonRules {
                    k: 2,
                    max_suppression_pct: 100.0,
                    variables: vec![ReleasedVariable {
                        column: "sex".into(),
                        hierarchy: Hierarchy::Categorical,
                        min_level: 0,
                        max_level: None,
                        weight: 1.0,
                    }],
                    ..PersonRules::default()
                },
                organisation: OrganisationRules {
                    min_persons: 1,
                    k: 1,
                    banded: BTreeMap::from([("fte".into(), Banding::Round { to: 5.0 })]),
                },
                table_rules: Default::default(),
                tables: vec![
                    TableSpec {
                        name: "on_payroll_by_sex".into(),
                        label: String::new(),
                        model: TableModel::Person,
                        only_where: Some("on_payroll".into()),
                        dimensions: vec![TableDimension {
                            column: "sex".into(),
                            hierarchy: None,
                            level: 0,
                        }],
                        measures: Vec::new(),
                        ratio: None,
                    },
                    TableSpec {
                        name: "days_by_sector".into(),
                        label: String::new(),
                        model: TableModel::Organisation,
                        only_where: None,
                        dimensions: vec![TableDimension {
                            column: "sector".into(),
                            hierarchy: None,
                            level: 0,
                        }],
                        measures: vec!["available_days".into()],
                        ratio: None,
                    },
                ],
            }
        }

        /// Writes the models as `koppel link` would lay them out and
        /// exports them with `self.config`.
        pub(crate) fn export(&self) -> Result<ExportOutcome, ExportError> {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let linked = dir.path().join("linked");
            std::fs::create_dir(&linked).expect("linked folder");
            for (name, model) in [
                (PERSON_MODEL_FILE, &self.person),
                (ORGANISATION_MODEL_FILE, &self.organisation),
            ] {
                let batch = Self::batch(model);
                let file = std::fs::File::create(linked.join(name)).expect("model file");
                let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
                writer.write(&batch).expect("write");
                writer.close().expect("close");
            }
            std::fs::write(linked.join(LINKAGE_REPORT_FILE), "{}\n").expect("report");
            let config = &self.config;
            let research = Pseudonymiser::new(
                Stage::Research,
                &KeyMaterial::from_bytes([0x42; 32]),
                "fixture-release",
                1,
            );
            crate::export(
                &linked,
                &dir.path().join("release"),
                ExportOptions {
                    config,
                    research: &research,
                    release_name: "release".into(),
                    pipeline: "fixture".into(),
                    pipeline_version: "test".into(),
                    guard: LeakGuard::new(),
                    attachments: Vec::new(),
                    interrupt_before_commit: false,
                },
            )
        }
    }

    /// Asserts that `result` is the error `expected` says, and that its
    /// message names `file` and `column` (and holds no pseudonym).
    pub(crate) fn assert_names<T>(
        result: Result<T, ExportError>,
        expected: impl Fn(&ExportError) -> bool,
        file: &str,
        column: &str,
    ) -> String {
        let error = match result {
            Ok(_) => panic!("exported a model with a wrong {file}, column {column}"),
            Err(e) => e,
        };
        let message = error.to_string();
        assert!(expected(&error), "another error: {message} ({error:?})");
        assert!(message.contains(file), "no file in: {message}");
        assert!(
            message.contains(&format!("column {column}")),
            "no column in: {message}"
        );
        for fragment in ["per1", "org1", "5c5c5c5c"] {
            assert!(!message.contains(fragment), "a value in: {message}");
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::Models;

    /// The fixture the checks are tested on exports as it is, so each
    /// of those tests fails on the one column it changes.
    #[test]
    fn the_hand_made_models_export() {
        let outcome = Models::valid().export().expect("the fixture exports");
        assert_eq!(outcome.report.person.rows_in, 4);
        assert_eq!(outcome.report.organisation.rows_released, 2);
        assert_eq!(outcome.report.tables.len(), 2);
    }
}
