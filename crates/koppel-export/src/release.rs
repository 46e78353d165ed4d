//! Writing a release: Parquet and CSV files, the manifest and `SHA256SUMS`,
//! all in a hidden directory beside the target that is fsynced and renamed
//! into place only when everything is written and checked — a crash leaves
//! either no release or a complete one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::Schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::Serialize;

use koppel_contract::csv::quote_field;
use koppel_contract::fsx::{AtomicDir, AtomicDirError};

use crate::error::ExportError;

/// Rows per Parquet row group: large enough for good compression and
/// column statistics, small enough that readers can skip by statistics.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The directory a release is built in before it is renamed into place
/// (`koppel_contract::fsx::AtomicDir`: every file and the folder fsynced,
/// renamed, the parent fsynced).
pub struct ReleaseTarget {
    dir: AtomicDir,
}

fn release_error(e: AtomicDirError) -> ExportError {
    match e {
        AtomicDirError::Exists { path } => ExportError::OutputExists { path },
        AtomicDirError::Io { path, source } => ExportError::Io { path, source },
    }
}

impl ReleaseTarget {
    /// Refuses a target that exists and is not empty.
    pub fn new(final_path: &Path) -> Result<Self, ExportError> {
        let dir = AtomicDir::new(final_path, ".koppel-release-").map_err(release_error)?;
        Ok(ReleaseTarget { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.file(name)
    }

    /// Fsyncs every file and the directory, then renames it into place.
    pub fn commit(self) -> Result<PathBuf, ExportError> {
        self.dir.commit().map_err(release_error)
    }
}

/// Writes one Parquet file: zstd, row groups of [`ROW_GROUP_ROWS`], page
/// statistics, and the release's key-value metadata.
pub fn write_parquet(
    path: &Path,
    batch: &RecordBatch,
    metadata: &BTreeMap<String, String>,
) -> Result<(), ExportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kv = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(kv))
        .build();
    let file = File::create(path).map_err(ExportError::io(path))?;
    let mut writer = ArrowWriter::try_new(BufWriter::new(file), batch.schema(), Some(props))
        .map_err(ExportError::parquet(format!("writing {name}")))?;
    writer
        .write(batch)
        .map_err(ExportError::parquet(format!("writing {name}")))?;
    writer
        .close()
        .map_err(ExportError::parquet(format!("writing {name}")))?;
    Ok(())
}

/// Writes a batch as CSV with a header, for spreadsheets: nulls are empty
/// cells, floats keep up to six decimals.
pub fn write_csv(path: &Path, batch: &RecordBatch) -> Result<(), ExportError> {
    let file = File::create(path).map_err(ExportError::io(path))?;
    let mut out = BufWriter::new(file);
    let schema: Arc<Schema> = batch.schema();
    let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    writeln!(out, "{}", header.join(",")).map_err(ExportError::io(path))?;
    let formatted: Vec<Vec<String>> = batch
        .columns()
        .iter()
        .map(|c| csv_cells(c.as_ref()))
        .collect();
    for row in 0..batch.num_rows() {
        let line: Vec<&str> = formatted.iter().map(|col| col[row].as_str()).collect();
        writeln!(out, "{}", line.join(",")).map_err(ExportError::io(path))?;
    }
    out.flush().map_err(ExportError::io(path))?;
    Ok(())
}

fn csv_cells(array: &dyn Array) -> Vec<String> {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Float64Type, Int64Type};
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return String::new();
            }
            match array.data_type() {
                DataType::Float64 => {
                    let v = array.as_primitive::<Float64Type>().value(i);
                    let s = format!("{v:.6}");
                    s.trim_end_matches('0').trim_end_matches('.').to_owned()
                }
                DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
                DataType::Utf8 => quote_field(array.as_string::<i32>().value(i)).into_owned(),
                _ => arrow::util::display::array_value_to_string(array, i).unwrap_or_default(),
            }
        })
        .collect()
}

/// Orders a released file by its first two columns (research ID, year), so
/// its bytes do not depend on the order the models came in.
pub fn sort_by_id_and_year(batch: &RecordBatch, what: &str) -> Result<RecordBatch, ExportError> {
    use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    let columns: Vec<SortColumn> = (0..2)
        .map(|c| SortColumn {
            values: batch.column(c).clone(),
            options: None,
        })
        .collect();
    let order = lexsort_to_indices(&columns, None)
        .map_err(ExportError::arrow(format!("ordering {what}")))?;
    take_record_batch(batch, &order).map_err(ExportError::arrow(format!("ordering {what}")))
}

/// Writes pretty JSON with a trailing newline.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ExportError> {
    let mut text = serde_json::to_string_pretty(value).expect("release documents serialise");
    text.push('\n');
    std::fs::write(path, text).map_err(ExportError::io(path))
}

/// One file of the release as the manifest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// A release file's SHA-256 and length.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ExportError> {
    let digest = koppel_contract::digest::sha256_file(path).map_err(ExportError::io(path))?;
    Ok((digest.sha256, digest.bytes))
}

/// `SHA256SUMS` in the format `sha256sum -c` reads: hash, two spaces, name.
pub fn write_sha256sums(path: &Path, files: &[ReleaseFile]) -> Result<(), ExportError> {
    let mut text = String::new();
    for f in files {
        text.push_str(&format!("{}  {}\n", f.sha256, f.name));
    }
    std::fs::write(path, text).map_err(ExportError::io(path))
}
