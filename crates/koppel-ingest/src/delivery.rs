//! The entry point: open a delivery file against its spec and stream its
//! accepted rows as canonical record batches.

use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use csv::ByteRecord;

use crate::IngestError;
use crate::batch::{AssembleError, Assembler};
use crate::columns::IdentifierMode;
use crate::csv_source::CsvRecords;
use crate::header::map_headers;
use crate::manifest::DeliveryManifest;
use crate::parquet_source::ParquetBatches;
use crate::report::{DeliverySummary, RejectLog, RejectSink, Verdict};
use crate::spec::{FormatSpec, SourceSpec};
use koppel_contract::files::manifest_path;

/// Rows per record batch unless the caller asks otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// How to read one delivery.
pub struct ReadOptions {
    pub batch_size: usize,
    /// The identifier mode the pipeline expects; `None` takes what the
    /// header shows (`BSN` or `BSN_P1`).
    pub identifier_mode: Option<IdentifierMode>,
    /// Verify `<file>.manifest.yaml` when it exists.
    pub verify_manifest: bool,
    /// Refuse the delivery when no manifest is present.
    pub require_manifest: bool,
    /// Where each reject is written as it is found.
    pub reject_sink: Option<Box<dyn RejectSink>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            identifier_mode: None,
            verify_manifest: true,
            require_manifest: false,
            reject_sink: None,
        }
    }
}

enum Source {
    Csv {
        records: CsvRecords,
        field_of_column: Vec<usize>,
        buffer: Vec<ByteRecord>,
        lines: Vec<u64>,
    },
    Parquet(ParquetBatches),
}

/// A delivery being read: an iterator of accepted rows as record batches.
///
/// Batches are handed out as they are read, before the verdict is known; a
/// caller that stages them must discard what it staged unless
/// [`DeliveryReader::finish`] returns an accepted summary.
pub struct DeliveryReader {
    path: PathBuf,
    spec: SourceSpec,
    source: Source,
    assembler: Assembler,
    log: RejectLog,
    mode: IdentifierMode,
    manifest: Option<DeliveryManifest>,
    rows_accepted: u64,
    done: bool,
}

impl DeliveryReader {
    /// Opens a delivery: verifies its manifest when present, reads and
    /// matches the header (or Parquet schema). File-level problems end here.
    pub fn open(path: &Path, spec: &SourceSpec, options: ReadOptions) -> Result<Self, IngestError> {
        let manifest_file = manifest_path(path);
        let manifest = if options.verify_manifest && manifest_file.exists() {
            let manifest = DeliveryManifest::load(&manifest_file)?;
            manifest.verify_source(path, &spec.source)?;
            manifest.verify_checksum(path)?;
            Some(manifest)
        } else if options.require_manifest {
            return Err(IngestError::ManifestInvalid {
                path: manifest_file,
                message: "no delivery manifest beside the file, and one is required".into(),
            });
        } else {
            None
        };
        let expected_mode = options
            .identifier_mode
            .or(manifest.as_ref().map(|m| m.identifier_mode));
        let batch_size = options.batch_size.max(1);
        let (source, mode) = match &spec.format {
            FormatSpec::Csv(dialect) => {
                let (records, names) = CsvRecords::open(path, dialect.delimiter)?;
                csv_source(path, spec, records, names, expected_mode, batch_size)?
            }
            FormatSpec::Parquet => {
                let batches = ParquetBatches::open(path, spec, expected_mode, batch_size)?;
                let mode = batches.mode;
                (Source::Parquet(batches), mode)
            }
        };
        Self::new(path, spec, options, manifest, source, mode)
    }

    /// Opens a delivery whose content arrives as a stream, not as a file:
    /// the TTP reads a sealed delivery as it decrypts it. `name` is what
    /// messages call the delivery (the sealed file). The stream vouches for
    /// the content's checksum (a decrypting stream verifies it at its end
    /// and fails the read otherwise); the manifest's source, identifier
    /// mode and row count are checked as for a file. CSV is parsed as it
    /// streams; a Parquet delivery, which needs random access, is read into
    /// memory whole first.
    pub fn from_stream(
        name: &Path,
        mut content: Box<dyn Read + Send>,
        manifest: DeliveryManifest,
        spec: &SourceSpec,
        options: ReadOptions,
    ) -> Result<Self, IngestError> {
        manifest.verify_source(name, &spec.source)?;
        let expected_mode = options.identifier_mode.or(Some(manifest.identifier_mode));
        let batch_size = options.batch_size.max(1);
        let (source, mode) = match &spec.format {
            FormatSpec::Csv(dialect) => {
                let (records, names) = CsvRecords::from_stream(name, content, dialect.delimiter)?;
                csv_source(name, spec, records, names, expected_mode, batch_size)?
            }
            FormatSpec::Parquet => {
                let mut bytes = Vec::new();
                content
                    .read_to_end(&mut bytes)
                    .map_err(|source| IngestError::Io {
                        path: name.to_owned(),
                        source,
                    })?;
                let batches = ParquetBatches::from_bytes(
                    name,
                    bytes.into(),
                    spec,
                    expected_mode,
                    batch_size,
                )?;
                let mode = batches.mode;
                (Source::Parquet(batches), mode)
            }
        };
        Self::new(name, spec, options, Some(manifest), source, mode)
    }

    fn new(
        path: &Path,
        spec: &SourceSpec,
        options: ReadOptions,
        manifest: Option<DeliveryManifest>,
        source: Source,
        mode: IdentifierMode,
    ) -> Result<Self, IngestError> {
        if let Some(m) = &manifest
            && m.identifier_mode != mode
        {
            return Err(IngestError::ManifestIdentifierMode {
                path: path.to_owned(),
                declared: m.identifier_mode.as_str(),
                found: mode.as_str(),
            });
        }
        Ok(DeliveryReader {
            path: path.to_owned(),
            spec: spec.clone(),
            assembler: Assembler::new(
                spec,
                mode,
                manifest
                    .as_ref()
                    .and_then(|m| m.keys.iter().find(|k| k.purpose == "stage1")),
                options.batch_size.max(1),
            ),
            source,
            log: RejectLog::new(options.reject_sink),
            mode,
            manifest,
            rows_accepted: 0,
            done: false,
        })
    }

    /// The canonical schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.assembler.schema()
    }

    pub fn identifier_mode(&self) -> IdentifierMode {
        self.mode
    }

    /// Progress: bytes consumed of a CSV file, or rows of a Parquet file.
    pub fn progress(&self) -> (u64, u64) {
        match &self.source {
            Source::Csv { records, .. } => (records.bytes_read(), 0),
            Source::Parquet(p) => (p.rows_read, p.total_rows),
        }
    }

    /// Data rows read so far.
    pub fn rows_read(&self) -> u64 {
        match &self.source {
            Source::Csv { records, .. } => records.rows_read,
            Source::Parquet(p) => p.rows_read,
        }
    }

    /// The next batch of accepted rows; `None` at the end. A batch may be
    /// empty when every row in it was rejected.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, IngestError> {
        if self.done {
            return Ok(None);
        }
        let filled = match &mut self.source {
            Source::Csv {
                records,
                field_of_column,
                buffer,
                lines,
            } => {
                lines.clear();
                for record in buffer.iter_mut() {
                    match records.next_record(record)? {
                        Some(line) => lines.push(line),
                        None => break,
                    }
                }
                if lines.is_empty() {
                    false
                } else {
                    let asm = &mut self.assembler;
                    asm.start(lines.iter().copied());
                    for (c, &field) in field_of_column.iter().enumerate() {
                        for (row, record) in buffer[..lines.len()].iter().enumerate() {
                            let value = &record[field];
                            if let Err(rule) = asm.builders[c].push_text(value) {
                                asm.reject(row, c, rule, Some(value));
                            }
                        }
                    }
                    true
                }
            }
            Source::Parquet(p) => p.fill(&self.spec, &mut self.assembler)?,
        };
        if !filled {
            self.done = true;
            if self.rows_read() == 0 {
                return Err(IngestError::HeaderOnly {
                    path: self.path.clone(),
                });
            }
            return Ok(None);
        }
        let batch = self.assembler.finish(&mut self.log).map_err(|e| match e {
            AssembleError::Arrow(source) => IngestError::Arrow {
                path: self.path.clone(),
                source,
            },
            AssembleError::Report(source) => IngestError::Io {
                path: self.path.clone(),
                source,
            },
        })?;
        self.rows_accepted += batch.num_rows() as u64;
        Ok(Some(batch))
    }

    /// Reads what is left, checks the manifest's row count and the reject
    /// fraction, and returns the verdict.
    pub fn finish(mut self) -> Result<DeliverySummary, IngestError> {
        while self.next_batch()?.is_some() {}
        let rows_read = self.rows_read();
        if let Some(m) = &self.manifest
            && m.rows != rows_read
        {
            return Err(IngestError::ManifestRowCount {
                path: self.path.clone(),
                expected: m.rows,
                found: rows_read,
            });
        }
        let violations = self.log.finish().map_err(|source| IngestError::Io {
            path: self.path.clone(),
            source,
        })?;
        let rows_rejected = self.log.total_rows_rejected();
        let mut summary = DeliverySummary {
            file: self.path.clone(),
            source: self.spec.source.clone(),
            format: match self.spec.format {
                FormatSpec::Csv(_) => "csv",
                FormatSpec::Parquet => "parquet",
            },
            identifier_mode: self
                .spec
                .columns
                .iter()
                .any(|c| c.identifier().is_some())
                .then_some(self.mode),
            rows_read,
            rows_accepted: self.rows_accepted,
            rows_rejected,
            max_reject_fraction: self.spec.max_reject_fraction,
            violations,
            manifest_verified: self.manifest.is_some(),
            verdict: Verdict::Accepted,
        };
        if summary.reject_fraction() > summary.max_reject_fraction {
            summary.verdict = Verdict::Failed {
                reason: format!(
                    "{} of {} rows rejected ({:.2}%), more than the allowed {:.2}%",
                    rows_rejected,
                    rows_read,
                    100.0 * summary.reject_fraction(),
                    100.0 * summary.max_reject_fraction
                ),
            };
        }
        Ok(summary)
    }
}

/// A CSV source once its header is read: the delimiter sanity check and
/// the header matched against the spec.
fn csv_source(
    path: &Path,
    spec: &SourceSpec,
    records: CsvRecords,
    names: Vec<String>,
    expected_mode: Option<IdentifierMode>,
    batch_size: usize,
) -> Result<(Source, IdentifierMode), IngestError> {
    let FormatSpec::Csv(dialect) = &spec.format else {
        unreachable!("called for CSV specs only")
    };
    if names.len() == 1 && spec.columns.len() + spec.ignored_columns.len() > 1 {
        return Err(IngestError::WrongDelimiter {
            path: path.to_owned(),
            expected: dialect.delimiter as char,
            found: [b';', b',', b'\t', b'|']
                .into_iter()
                .find(|d| *d != dialect.delimiter && names[0].as_bytes().contains(d))
                .map(char::from),
        });
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let map = map_headers(path, spec, &refs, expected_mode)?;
    Ok((
        Source::Csv {
            records,
            field_of_column: map.field_of_column,
            buffer: vec![ByteRecord::new(); batch_size],
            lines: Vec::with_capacity(batch_size),
        },
        map.mode,
    ))
}

impl Iterator for DeliveryReader {
    type Item = Result<RecordBatch, IngestError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Reads a whole delivery without keeping its rows: what `koppel validate`
/// and a partner's pre-flight check need.
pub fn validate_file(
    path: &Path,
    spec: &SourceSpec,
    options: ReadOptions,
) -> Result<DeliverySummary, IngestError> {
    DeliveryReader::open(path, spec, options)?.finish()
}
