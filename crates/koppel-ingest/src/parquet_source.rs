//! Reads a Parquet delivery by column name, checks column types, and feeds
//! typed values through the same column rules as CSV.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use crate::IngestError;
use crate::batch::Assembler;
use crate::columns::IdentifierMode;
use crate::header::map_headers;
use crate::spec::{ColumnKind, SourceSpec};

pub(crate) struct ParquetBatches {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    /// For each spec column, its position in the projected batches.
    position_of_column: Vec<usize>,
    pub rows_read: u64,
    pub total_rows: u64,
    pub mode: IdentifierMode,
}

/// What a spec column accepts from Parquet, and what it is cast to first.
fn accepted(kind: &ColumnKind, dt: &DataType) -> Option<DataType> {
    use DataType::*;
    let string = matches!(dt, Utf8 | LargeUtf8 | Utf8View);
    let int = matches!(dt, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32);
    match kind {
        ColumnKind::Identifier(_)
        | ColumnKind::Code { .. }
        | ColumnKind::Text
        | ColumnKind::Enum { .. } => string.then_some(Utf8),
        ColumnKind::Integer { .. } => int.then_some(Int64),
        ColumnKind::Decimal { .. } => (int || matches!(dt, Float32 | Float64)).then_some(Float64),
        ColumnKind::Bool { .. } => matches!(dt, Boolean).then_some(Boolean),
        ColumnKind::Date | ColumnKind::Month => {
            if matches!(dt, Date32) {
                Some(Date32)
            } else {
                string.then_some(Utf8)
            }
        }
    }
}

fn expected_name(kind: &ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Identifier(_)
        | ColumnKind::Code { .. }
        | ColumnKind::Text
        | ColumnKind::Enum { .. } => "a string",
        ColumnKind::Integer { .. } => "an integer",
        ColumnKind::Decimal { .. } => "a floating-point or integer number",
        ColumnKind::Bool { .. } => "a boolean",
        ColumnKind::Date | ColumnKind::Month => "a date (Date32) or an ISO date string",
    }
}

impl ParquetBatches {
    pub fn open(
        path: &Path,
        spec: &SourceSpec,
        expected_mode: Option<IdentifierMode>,
        batch_size: usize,
    ) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Self::from_chunks(path, file, len, spec, expected_mode, batch_size)
    }

    /// A Parquet delivery already in memory (`path` names it in messages).
    pub fn from_bytes(
        path: &Path,
        content: bytes::Bytes,
        spec: &SourceSpec,
        expected_mode: Option<IdentifierMode>,
        batch_size: usize,
    ) -> Result<Self, IngestError> {
        let len = content.len() as u64;
        Self::from_chunks(path, content, len, spec, expected_mode, batch_size)
    }

    fn from_chunks<T: ChunkReader + 'static>(
        path: &Path,
        input: T,
        len: u64,
        spec: &SourceSpec,
        expected_mode: Option<IdentifierMode>,
        batch_size: usize,
    ) -> Result<Self, IngestError> {
        let parquet_err = |e: parquet::errors::ParquetError| IngestError::Parquet {
            path: path.to_owned(),
            message: e.to_string(),
        };
        if len == 0 {
            return Err(IngestError::Empty {
                path: path.to_owned(),
            });
        }
        let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(parquet_err)?;
        let schema = builder.schema().clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let map = map_headers(path, spec, &names, expected_mode)?;
        for (col, &field) in spec.columns.iter().zip(&map.field_of_column) {
            let dt = schema.field(field).data_type();
            if accepted(&col.kind, dt).is_none() {
                return Err(IngestError::ParquetColumnType {
                    path: path.to_owned(),
                    column: names[field].to_owned(),
                    expected: expected_name(&col.kind),
                    found: dt.to_string(),
                });
            }
        }
        let mut roots: Vec<usize> = map.field_of_column.clone();
        roots.sort_unstable();
        let position_of_column = map
            .field_of_column
            .iter()
            .map(|f| roots.binary_search(f).expect("every column is projected"))
            .collect();
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_size)
            .build()
            .map_err(parquet_err)?;
        Ok(ParquetBatches {
            path: path.to_owned(),
            reader,
            position_of_column,
            rows_read: 0,
            total_rows,
            mode: map.mode,
        })
    }

    /// Feeds the next Parquet batch into the assembler; `false` at the end.
    pub fn fill(&mut self, spec: &SourceSpec, asm: &mut Assembler) -> Result<bool, IngestError> {
        let batch: RecordBatch = match self.reader.next() {
            None => return Ok(false),
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return Err(IngestError::Parquet {
                    path: self.path.clone(),
                    message: e.to_string(),
                });
            }
        };
        let first = self.rows_read + 1;
        let n = batch.num_rows();
        asm.start(first..first + n as u64);
        for (c, col) in spec.columns.iter().enumerate() {
            let raw = batch.column(self.position_of_column[c]);
            let target = accepted(&col.kind, raw.data_type()).expect("types checked on open");
            let array: ArrayRef = if raw.data_type() == &target {
                raw.clone()
            } else {
                cast(raw, &target).map_err(|source| IngestError::Arrow {
                    path: self.path.clone(),
                    source,
                })?
            };
            push_column(asm, c, &array);
        }
        self.rows_read += n as u64;
        Ok(true)
    }
}

fn push_column(asm: &mut Assembler, c: usize, array: &ArrayRef) {
    let n = array.len();
    macro_rules! each {
        ($values:expr, |$row:ident, $v:ident| $push:expr) => {
            for $row in 0..n {
                let result = if array.is_null($row) {
                    asm.builders[c].push_missing()
                } else {
                    let $v = $values.value($row);
                    $push
                };
                if let Err(rule) = result {
                    let shown = if array.is_null($row) {
                        None
                    } else {
                        Some(format!("{:?}", $values.value($row)))
                    };
                    asm.reject($row, c, rule, shown.as_deref().map(str::as_bytes));
                }
            }
        };
    }
    match array.data_type() {
        DataType::Utf8 => {
            let values = array.as_string::<i32>();
            each!(values, |row, v| asm.builders[c].push_text(v.as_bytes()));
        }
        DataType::Int64 => {
            let values = array.as_primitive::<Int64Type>();
            each!(values, |row, v| asm.builders[c].push_i64(v));
        }
        DataType::Float64 => {
            let values = array.as_primitive::<Float64Type>();
            each!(values, |row, v| asm.builders[c].push_f64(v));
        }
        DataType::Boolean => {
            let values = array.as_boolean();
            each!(values, |row, v| {
                asm.builders[c].push_bool(v);
                Ok(())
            });
        }
        DataType::Date32 => {
            let values = array.as_primitive::<Date32Type>();
            each!(values, |row, v| {
                asm.builders[c].push_date32(v);
                Ok(())
            });
        }
        other => {
            unreachable!("cast targets are Utf8, Int64, Float64, Boolean or Date32, not {other}")
        }
    }
}
