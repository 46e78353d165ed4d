//! Streams a partner CSV file into raw records, batch by batch, catching
//! every file-level problem with its line.
//!
//! Tokenising is the `csv` crate's; what it does not police (byte-order
//! mark, NUL bytes, UTF-8, ragged rows, runaway records, unterminated quotes)
//! is checked here, so a broken file stops with one clear error rather than
//! turning into silently wrong rows.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::IngestError;

/// A record longer than this is refused before it can exhaust memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// A single field longer than this is refused: no contract field comes near.
pub const MAX_FIELD_BYTES: usize = 64 << 10;
const READ_BUFFER: usize = 256 << 10;

/// Bytes of a stream kept behind the read position: enough to scan the last
/// record again (it is at most [`MAX_RECORD_BYTES`] plus the read-ahead the
/// guard allows, plus one read).
const TAIL_KEEP: usize = MAX_RECORD_BYTES + 2 * READ_BUFFER;

/// Strips a leading UTF-8 byte-order mark, counts bytes, and refuses to feed
/// one record more than [`MAX_RECORD_BYTES`] (plus one read-ahead buffer).
struct GuardedReader<R> {
    inner: R,
    bom_checked: bool,
    bom_len: u64,
    consumed: u64,
    record_start: Cell<u64>,
    /// For a stream: the last bytes handed out, since the last record
    /// cannot be read again from a file.
    tail: Option<Box<Tail>>,
}

/// The last [`TAIL_KEEP`] (or more) bytes read from a stream, as the blocks
/// they were read in; blocks are recycled, so keeping them costs one copy.
#[derive(Default)]
struct Tail {
    blocks: std::collections::VecDeque<Vec<u8>>,
    /// Offset (after any BOM) of the first byte kept.
    start: u64,
    len: usize,
    spare: Vec<Vec<u8>>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut block = self.spare.pop().unwrap_or_default();
        block.clear();
        block.extend_from_slice(bytes);
        self.len += block.len();
        self.blocks.push_back(block);
        while let Some(front) = self.blocks.front()
            && self.len - front.len() >= TAIL_KEEP
        {
            let front = self.blocks.pop_front().expect("checked");
            self.start += front.len() as u64;
            self.len -= front.len();
            self.spare.push(front);
        }
    }

    /// The kept bytes from `offset` on (from the first kept byte if
    /// `offset` is older than that).
    fn since(&self, offset: u64) -> Vec<u8> {
        let mut skip = offset.saturating_sub(self.start) as usize;
        let mut out = Vec::with_capacity(self.len.saturating_sub(skip));
        for block in &self.blocks {
            if skip >= block.len() {
                skip -= block.len();
                continue;
            }
            out.extend_from_slice(&block[skip..]);
            skip = 0;
        }
        out
    }
}

#[derive(Debug)]
struct RecordTooLarge;

impl std::fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too large")
    }
}

impl std::error::Error for RecordTooLarge {}

impl<R: Read> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.bom_checked {
            self.bom_checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                match self.inner.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            let skip = if head[..n] == [0xEF, 0xBB, 0xBF] {
                3
            } else {
                0
            };
            self.bom_len = skip as u64;
            let rest = &head[skip..n];
            buf[..rest.len()].copy_from_slice(rest);
            self.consumed += rest.len() as u64;
            if let Some(tail) = &mut self.tail {
                tail.push(rest);
            }
            if !rest.is_empty() {
                return Ok(rest.len());
            }
        }
        if self.consumed - self.record_start.get() > (MAX_RECORD_BYTES + READ_BUFFER) as u64 {
            return Err(io::Error::other(RecordTooLarge));
        }
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        if let Some(tail) = &mut self.tail {
            tail.push(&buf[..n]);
        }
        Ok(n)
    }
}

/// Raw records of one CSV delivery, with every file-level check applied:
/// what validation reads, and what a partner tool rewrites record by record.
pub struct CsvRecords {
    path: PathBuf,
    /// The file, when the records come from one (it is read again to
    /// diagnose an unterminated quote); `None` for a stream.
    file: Option<PathBuf>,
    reader: csv::Reader<GuardedReader<Box<dyn Read + Send>>>,
    width: usize,
    delimiter: u8,
    /// Byte offset (after any BOM) and line of the last record read.
    last_start: Option<(u64, u64)>,
    pub(crate) rows_read: u64,
}

impl CsvRecords {
    /// Opens the file and reads the header row.
    pub fn open(path: &Path, delimiter: u8) -> Result<(Self, Vec<String>), IngestError> {
        let file = File::open(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::start(path, Some(path), Box::new(file), delimiter)
    }

    /// Reads records from a stream (a delivery decrypted as it is read);
    /// `name` is what messages call it. The same checks as for a file.
    pub fn from_stream(
        name: &Path,
        stream: Box<dyn Read + Send>,
        delimiter: u8,
    ) -> Result<(Self, Vec<String>), IngestError> {
        Self::start(name, None, stream, delimiter)
    }

    fn start(
        path: &Path,
        file: Option<&Path>,
        input: Box<dyn Read + Send>,
        delimiter: u8,
    ) -> Result<(Self, Vec<String>), IngestError> {
        let guarded = GuardedReader {
            inner: input,
            bom_checked: false,
            bom_len: 0,
            consumed: 0,
            record_start: Cell::new(0),
            tail: file.is_none().then(Box::default),
        };
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            // csv's CRLF terminator miscounts lines; splitting on LF alone
            // keeps line numbers right, and the CR left on a record's last
            // field is dropped in `next_record`.
            .terminator(csv::Terminator::Any(b'\n'))
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(READ_BUFFER)
            .from_reader(guarded);
        let mut records = CsvRecords {
            path: path.to_owned(),
            file: file.map(Path::to_owned),
            reader,
            width: 0,
            delimiter,
            last_start: None,
            rows_read: 0,
        };
        let mut header = ByteRecord::new();
        if !records.read_raw(&mut header)? {
            return Err(IngestError::Empty {
                path: path.to_owned(),
            });
        }
        strip_cr(&mut header);
        let line = header.position().map_or(1, |p| p.line());
        records.check_bytes(&header, line)?;
        let names = header
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>();
        records.width = names.len();
        Ok((records, names))
    }

    /// Reads the next data record into `record`; returns its line, or `None`
    /// at the end of the file.
    pub fn next_record(&mut self, record: &mut ByteRecord) -> Result<Option<u64>, IngestError> {
        loop {
            if !self.read_raw(record)? {
                return Ok(None);
            }
            strip_cr(record);
            // A blank CRLF line: what the csv crate skips for LF files.
            if !(record.len() == 1 && record[0].is_empty()) {
                break;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != self.width {
            self.check_unterminated()?;
            return Err(IngestError::RaggedRow {
                path: self.path.clone(),
                line,
                expected: self.width,
                found: record.len(),
            });
        }
        self.check_bytes(record, line)?;
        self.rows_read += 1;
        Ok(Some(line))
    }

    /// Bytes of the file consumed so far.
    pub fn bytes_read(&self) -> u64 {
        let g = self.reader.get_ref();
        g.consumed + g.bom_len
    }

    fn read_raw(&mut self, record: &mut ByteRecord) -> Result<bool, IngestError> {
        let start = self.reader.position().clone();
        self.reader.get_ref().record_start.set(start.byte());
        match self.reader.read_byte_record(record) {
            Ok(true) => {
                let pos = record.position().unwrap_or(&start);
                self.last_start = Some((pos.byte(), pos.line()));
                Ok(true)
            }
            Ok(false) => {
                self.check_unterminated()?;
                Ok(false)
            }
            Err(e) => Err(self.csv_error(e, start.line())),
        }
    }

    fn csv_error(&self, e: csv::Error, line: u64) -> IngestError {
        if let csv::ErrorKind::Io(io) = e.kind()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<RecordTooLarge>())
        {
            return IngestError::RecordTooLarge {
                path: self.path.clone(),
                line,
                limit: MAX_RECORD_BYTES,
            };
        }
        match e.into_kind() {
            csv::ErrorKind::Io(source) => IngestError::Io {
                path: self.path.clone(),
                source,
            },
            // Only I/O errors are possible with flexible byte records; keep a
            // clear message should the crate ever report something else.
            other => IngestError::Csv {
                path: self.path.clone(),
                line,
                message: format!("{other:?}"),
            },
        }
    }

    fn check_bytes(&self, record: &ByteRecord, line: u64) -> Result<(), IngestError> {
        let bytes = record.as_slice();
        if bytes.len() > MAX_FIELD_BYTES
            && let Some(field) = (0..record.len())
                .find(|&i| record.get(i).is_some_and(|f| f.len() > MAX_FIELD_BYTES))
        {
            {
                return Err(IngestError::FieldTooLarge {
                    path: self.path.clone(),
                    line,
                    field: field + 1,
                    limit: MAX_FIELD_BYTES,
                });
            }
        }
        if let Some(at) = memchr::memchr(0, bytes) {
            return Err(IngestError::NulByte {
                path: self.path.clone(),
                line,
                field: field_at(record, at),
            });
        }
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(IngestError::InvalidUtf8 {
                path: self.path.clone(),
                line,
                field: field_at(record, e.valid_up_to()),
            });
        }
        Ok(())
    }

    /// An unterminated quote swallows everything up to the end of the file
    /// into the last record, so only that record needs a second look.
    fn check_unterminated(&mut self) -> Result<(), IngestError> {
        let Some((start, line)) = self.last_start else {
            return Ok(());
        };
        let io_err = |source| IngestError::Io {
            path: self.path.clone(),
            source,
        };
        let limit = (MAX_RECORD_BYTES + READ_BUFFER) as u64 + 1;
        let mut tail = Vec::new();
        let guarded = self.reader.get_mut();
        match (&self.file, &guarded.tail) {
            (Some(path), _) => {
                let mut file = File::open(path).map_err(io_err)?;
                file.seek(SeekFrom::Start(start + guarded.bom_len))
                    .map_err(io_err)?;
                file.take(limit).read_to_end(&mut tail).map_err(io_err)?;
            }
            (None, Some(kept)) => {
                // What was read of the record, and what follows it in the
                // stream (which is failing anyway if this is not its end).
                tail = kept.since(start);
                tail.truncate(limit as usize);
                let more = limit - tail.len() as u64;
                (&mut guarded.inner)
                    .take(more)
                    .read_to_end(&mut tail)
                    .map_err(io_err)?;
            }
            (None, None) => unreachable!("a stream keeps its tail"),
        }
        // The same quote grammar the csv crate applies: a quote opens only at
        // the start of a field, and a doubled quote inside stays inside.
        #[derive(PartialEq)]
        enum State {
            FieldStart,
            Unquoted,
            Quoted,
            QuoteInQuoted,
        }
        let delimiter = self.delimiter;
        let mut state = State::FieldStart;
        let mut quote_line = line;
        let mut current_line = line;
        for &b in &tail {
            if b == b'\n' {
                current_line += 1;
            }
            state = match (state, b) {
                (State::FieldStart, b'"') => {
                    quote_line = current_line;
                    State::Quoted
                }
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (_, b) if b == delimiter || b == b'\n' => State::FieldStart,
                _ => State::Unquoted,
            };
        }
        if state == State::Quoted {
            return Err(IngestError::UnterminatedQuote {
                path: self.path.clone(),
                line: quote_line,
            });
        }
        Ok(())
    }
}

/// Drops the CR of a CRLF line end from the record's last field.
fn strip_cr(record: &mut ByteRecord) {
    let n = record.len();
    if n == 0 || !record[n - 1].ends_with(b"\r") {
        return;
    }
    let pos = record.position().cloned();
    let mut fixed = ByteRecord::with_capacity(record.as_slice().len(), n);
    for (i, field) in record.iter().enumerate() {
        fixed.push_field(if i + 1 == n {
            &field[..field.len() - 1]
        } else {
            field
        });
    }
    fixed.set_position(pos);
    *record = fixed;
}

/// 1-based number of the field holding byte `at` of the record's bytes.
fn field_at(record: &ByteRecord, at: usize) -> usize {
    (0..record.len())
        .find(|&i| {
            record
                .range(i)
                .is_some_and(|r| at < r.end || (r.is_empty() && at == r.start))
        })
        .map_or(record.len(), |i| i + 1)
}
