//! The identifier-leak guard: the last check before a release is renamed
//! into place.
//!
//! It knows every identifier and pseudonym the run has seen (canonical
//! citizen and employer numbers, stage-1 and stage-2 pseudonyms) as 64-bit
//! fingerprints under a per-process random key — 8 bytes a value, sorted
//! for binary search, never written anywhere — and scans every value of
//! every output file for them, and for any 9-digit number that passes the
//! citizen number's 11-test. A hit fails the release naming file and column,
//! never the value.
//!
//! Floating-point columns are not scanned: no identifier of the contract is
//! a float, and sums and means published as floats would otherwise trip the
//! 11-test by chance one time in eleven when they happen to be whole 9-digit
//! numbers.

use std::hash::BuildHasher;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::ExportError;

/// Fingerprints of the identifiers and pseudonyms a run has seen.
pub struct LeakGuard {
    hasher: std::collections::hash_map::RandomState,
    /// Guards made by [`LeakGuard::fork`] share their parent's family and
    /// fingerprint key; only those can be absorbed back.
    family: u64,
    fingerprints: Vec<u64>,
    /// `buckets[b]..buckets[b + 1]`: the sorted fingerprints whose top
    /// bits are b. Fingerprints are uniform hashes, so a bucket holds a
    /// few of them and a lookup touches a cache line or two instead of
    /// the twenty of a binary search over millions.
    buckets: Vec<usize>,
    sorted: bool,
    compact_at: usize,
}

/// Top bits of a fingerprint that pick its bucket.
const BUCKET_BITS: u32 = 16;

static FAMILIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const COMPACT_MIN: usize = 1 << 20;

impl Default for LeakGuard {
    fn default() -> Self {
        Self::new()
    }
}

/// What the guard found, without the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    KnownIdentifier,
    ElevenTestNumber,
}

impl Finding {
    fn describe(self) -> &'static str {
        match self {
            Finding::KnownIdentifier => {
                "holds a value equal to an identifier or pseudonym seen in the inputs"
            }
            Finding::ElevenTestNumber => {
                "holds a 9-digit number that passes the 11-test of a citizen number"
            }
        }
    }
}

impl LeakGuard {
    pub fn new() -> Self {
        LeakGuard {
            hasher: std::collections::hash_map::RandomState::new(),
            family: FAMILIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fingerprints: Vec::new(),
            buckets: vec![0; (1 << BUCKET_BITS) + 1],
            sorted: true,
            compact_at: COMPACT_MIN,
        }
    }

    /// An empty guard with this one's fingerprint key, for a worker thread
    /// to fill while other threads fill theirs; [`LeakGuard::absorb`] brings
    /// them together.
    pub fn fork(&self) -> LeakGuard {
        LeakGuard {
            hasher: self.hasher.clone(),
            family: self.family,
            fingerprints: Vec::new(),
            buckets: vec![0; (1 << BUCKET_BITS) + 1],
            sorted: true,
            compact_at: COMPACT_MIN,
        }
    }

    /// Takes in everything a fork of this guard has seen.
    ///
    /// # Panics
    /// If `other` is not a fork of this guard (its fingerprints would be
    /// under another key, and the guard would silently miss them).
    pub fn absorb(&mut self, mut other: LeakGuard) {
        assert_eq!(
            self.family, other.family,
            "only a fork of this leak guard can be absorbed"
        );
        other.seal();
        self.fingerprints.append(&mut other.fingerprints);
        self.sorted = false;
        self.seal();
        self.compact_at = (self.fingerprints.len() * 2).max(COMPACT_MIN);
    }

    /// How many distinct identifiers and pseudonyms the guard knows.
    pub fn distinct(&mut self) -> usize {
        self.seal();
        self.fingerprints.len()
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// Text is fingerprinted lower-cased; a pseudonym by its bytes, so
    /// its 64-character hexadecimal text (any case) maps to the same
    /// fingerprint without encoding every inserted value.
    fn fingerprint(&self, lower_ascii: &[u8]) -> u64 {
        if lower_ascii.len() == 64
            && let Ok(bytes) = hex::decode(lower_ascii)
        {
            return self.pseudonym_fingerprint(&bytes);
        }
        self.hasher.hash_one((0u8, lower_ascii))
    }

    fn pseudonym_fingerprint(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one((1u8, bytes))
    }

    fn push(&mut self, fp: u64) {
        self.fingerprints.push(fp);
        self.sorted = false;
        // Columns repeat the same pseudonyms (a payroll has a row per
        // month): compact as we go so memory follows distinct values.
        if self.fingerprints.len() >= self.compact_at {
            self.seal();
            self.compact_at = (self.fingerprints.len() * 2).max(COMPACT_MIN);
        }
    }

    /// Adds one identifier in its written form: canonical digits, or a
    /// pseudonym's hexadecimal text (case does not matter).
    pub fn insert(&mut self, value: &str) {
        let lower = value.trim().to_ascii_lowercase();
        let fp = self.fingerprint(lower.as_bytes());
        self.push(fp);
    }

    /// Adds a binary pseudonym (as the models store them); outputs are
    /// checked for both its bytes and its hexadecimal text.
    pub fn insert_pseudonym(&mut self, bytes: &[u8]) {
        let fp = self.pseudonym_fingerprint(bytes);
        self.push(fp);
    }

    /// Adds every value of an identifier or pseudonym column: binary
    /// columns as pseudonyms, text as written, integers as digits.
    pub fn insert_column(&mut self, array: &dyn Array) {
        // Deliveries come grouped by person (a payroll has a row per
        // month), so most values repeat the one before them; skipping those
        // saves fingerprinting and compacting them again.
        let mut previous: Option<Vec<u8>> = None;
        for_each_value(array, |value| {
            let int;
            let bytes = match value {
                Value::Bytes(b) => b,
                Value::Text(t) => t.as_bytes(),
                Value::Int(i) => {
                    int = i.to_le_bytes();
                    &int
                }
            };
            if previous.as_deref() == Some(bytes) {
                return;
            }
            match value {
                Value::Bytes(b) => self.insert_pseudonym(b),
                Value::Text(t) => self.insert(t),
                Value::Int(i) => self.insert(&i.to_string()),
            }
            let kept = previous.get_or_insert_default();
            kept.clear();
            kept.extend_from_slice(bytes);
        });
    }

    /// Adds the identifier columns of every Parquet file in `dir` (the
    /// stage-2 files linking read).
    pub fn insert_parquet_dir(&mut self, dir: &Path) -> Result<(), ExportError> {
        for path in sorted_files(dir)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        {
            let what = || format!("reading {}", path.display());
            let file = std::fs::File::open(&path).map_err(ExportError::io(&path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(ExportError::parquet(what()))?;
            for batch in reader {
                self.insert_identifier_columns(&batch.map_err(ExportError::arrow(what()))?);
            }
        }
        Ok(())
    }

    /// Adds the identifiers and stage-1 pseudonyms of every staged
    /// delivery in `dir` (a file with its manifest beside it).
    pub fn insert_staging_dir(
        &mut self,
        dir: &Path,
        specs: &koppel_ingest::SpecSet,
    ) -> Result<(), ExportError> {
        for path in sorted_files(dir)?
            .into_iter()
            .filter(|p| koppel_contract::files::manifest_path(p).exists())
        {
            let spec = specs.for_file(&path).ok_or_else(|| ExportError::Input {
                path: path.clone(),
                message: "no source spec matches the file name".into(),
            })?;
            let options = koppel_ingest::ReadOptions {
                require_manifest: true,
                ..koppel_ingest::ReadOptions::default()
            };
            let mut reader = koppel_ingest::DeliveryReader::open(&path, spec, options)?;
            while let Some(batch) = reader.next_batch()? {
                self.insert_identifier_columns(&batch);
            }
        }
        Ok(())
    }

    /// Adds every column of a batch that the ingest layer labelled as an
    /// identifier or pseudonym (`koppel.identifier` field metadata): raw
    /// deliveries, stage-1 staging and stage-2 Parquet alike.
    pub fn insert_identifier_columns(&mut self, batch: &arrow::array::RecordBatch) -> usize {
        let mut columns = 0;
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            if field
                .metadata()
                .contains_key(koppel_contract::meta::META_IDENTIFIER)
            {
                self.insert_column(array.as_ref());
                columns += 1;
            }
        }
        columns
    }

    fn seal(&mut self) {
        if !self.sorted {
            self.fingerprints.sort_unstable();
            self.fingerprints.dedup();
            self.buckets.fill(0);
            for fp in &self.fingerprints {
                self.buckets[(fp >> (64 - BUCKET_BITS)) as usize + 1] += 1;
            }
            for b in 1..self.buckets.len() {
                self.buckets[b] += self.buckets[b - 1];
            }
            self.sorted = true;
        }
    }

    fn known(&self, lower_ascii: &[u8]) -> bool {
        self.known_fingerprint(self.fingerprint(lower_ascii))
    }

    fn known_fingerprint(&self, fp: u64) -> bool {
        debug_assert!(self.sorted);
        let b = (fp >> (64 - BUCKET_BITS)) as usize;
        self.fingerprints[self.buckets[b]..self.buckets[b + 1]]
            .binary_search(&fp)
            .is_ok()
    }

    fn check_text(&self, text: &str) -> Option<Finding> {
        let lower = text.trim().to_ascii_lowercase();
        if self.known(lower.as_bytes()) {
            return Some(Finding::KnownIdentifier);
        }
        // Identifiers inside a longer text (a label, a file name, a line of
        // a report) count too.
        for token in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
            if token.len() >= 8 && token.len() < lower.len() && self.known(token.as_bytes()) {
                return Some(Finding::KnownIdentifier);
            }
            if passes_eleven_test(token) {
                return Some(Finding::ElevenTestNumber);
            }
        }
        None
    }

    fn check_value(&self, value: Value<'_>) -> Option<Finding> {
        match value {
            Value::Text(t) => self.check_text(t),
            Value::Int(i) => self.check_text(&i.to_string()),
            Value::Bytes(b) => {
                if self.known_fingerprint(self.pseudonym_fingerprint(b)) {
                    Some(Finding::KnownIdentifier)
                } else {
                    std::str::from_utf8(b).ok().and_then(|t| self.check_text(t))
                }
            }
        }
    }

    /// Checks every value of one column.
    pub fn check_array(
        &mut self,
        file: &str,
        column: &str,
        array: &dyn Array,
    ) -> Result<(), ExportError> {
        self.seal();
        let mut found = None;
        let mut clean = CleanValues::default();
        for_each_value(array, |v| {
            if found.is_none() && !clean.contains(v) {
                found = self.check_value(v);
                if found.is_none() {
                    clean.remember(v);
                }
            }
        });
        match found {
            None => Ok(()),
            Some(f) => Err(ExportError::Leak {
                file: file.into(),
                column: column.into(),
                what: f.describe().into(),
            }),
        }
    }

    /// Reads a Parquet file back and checks every column and the key-value
    /// metadata.
    pub fn scan_parquet(&mut self, path: &Path, name: &str) -> Result<(), ExportError> {
        self.seal();
        let file = std::fs::File::open(path).map_err(ExportError::io(path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(ExportError::parquet(format!("leak guard reading {name}")))?;
        if let Some(kv) = builder.metadata().file_metadata().key_value_metadata() {
            for entry in kv {
                let text = format!("{} {}", entry.key, entry.value.as_deref().unwrap_or(""));
                self.check_lines(name, "key-value metadata", &text)?;
            }
        }
        let schema = builder.schema().clone();
        let reader = builder
            .build()
            .map_err(ExportError::parquet(format!("leak guard reading {name}")))?;
        for batch in reader {
            let batch = batch.map_err(ExportError::arrow(format!("leak guard reading {name}")))?;
            for (field, array) in schema.fields().iter().zip(batch.columns()) {
                self.check_array(name, field.name(), array.as_ref())?;
            }
        }
        Ok(())
    }

    /// Checks a CSV file cell by cell, naming the column by its header.
    /// Checks a CSV file cell by cell. `float_columns` are the columns
    /// written from floating-point values: as in Parquet, they are checked
    /// against the known identifiers but not for the 11-test, since a sum
    /// printed without decimals is a 9-digit number by chance one time in
    /// eleven.
    pub fn scan_csv(
        &mut self,
        path: &Path,
        name: &str,
        float_columns: &[String],
    ) -> Result<(), ExportError> {
        self.seal();
        let text = std::fs::read_to_string(path).map_err(ExportError::io(path))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        for (i, cell) in header.iter().enumerate() {
            if let Some(f) = self.check_text(cell) {
                return Err(leak(name, &format!("header field {}", i + 1), f));
            }
        }
        let float: Vec<bool> = header
            .iter()
            .map(|h| float_columns.iter().any(|f| f == h))
            .collect();
        for line in lines {
            for (i, cell) in line.split(',').enumerate() {
                let cell = cell.trim_matches('"');
                let finding = if float.get(i).copied().unwrap_or(false) {
                    self.known(cell.trim().to_ascii_lowercase().as_bytes())
                        .then_some(Finding::KnownIdentifier)
                } else {
                    self.check_text(cell)
                };
                if let Some(f) = finding {
                    let column = header.get(i).copied().unwrap_or("?");
                    return Err(leak(name, column, f));
                }
            }
        }
        Ok(())
    }

    /// Checks a text file (report, codebook) line by line.
    pub fn scan_text(&mut self, path: &Path, name: &str) -> Result<(), ExportError> {
        self.seal();
        let text = std::fs::read_to_string(path).map_err(ExportError::io(path))?;
        self.check_lines(name, "text", &text)
    }

    fn check_lines(&self, name: &str, what: &str, text: &str) -> Result<(), ExportError> {
        for (i, line) in text.lines().enumerate() {
            if let Some(f) = self.check_text(line) {
                return Err(leak(name, &format!("{what}, line {}", i + 1), f));
            }
        }
        Ok(())
    }
}

fn leak(file: &str, column: &str, f: Finding) -> ExportError {
    ExportError::Leak {
        file: file.into(),
        column: column.into(),
        what: f.describe().into(),
    }
}

/// Nine digits that pass the citizen number's 11-test.
pub fn passes_eleven_test(token: &str) -> bool {
    let b = token.as_bytes();
    if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut out = [0u8; 9];
    koppel_ingest::canonical_bsn(b, &mut out)
}

/// Values of one column already found clean: most columns repeat a few
/// values (a sector, a year, a size class) row after row, and each check
/// costs a lower-casing, a hash and a lookup in millions of fingerprints.
/// Only a bounded number are remembered, as a column of distinct values
/// gains nothing.
#[derive(Default)]
struct CleanValues {
    texts: std::collections::HashSet<Box<str>>,
    ints: std::collections::HashSet<i128>,
}

impl CleanValues {
    const MAX: usize = 4096;

    fn contains(&self, value: Value<'_>) -> bool {
        match value {
            Value::Text(t) => self.texts.contains(t),
            Value::Int(i) => self.ints.contains(&i),
            Value::Bytes(_) => false,
        }
    }

    fn remember(&mut self, value: Value<'_>) {
        match value {
            Value::Text(t) if self.texts.len() < Self::MAX => {
                self.texts.insert(t.into());
            }
            Value::Int(i) if self.ints.len() < Self::MAX => {
                self.ints.insert(i);
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy)]
enum Value<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
    Int(i128),
}

fn for_each_value(array: &dyn Array, mut f: impl FnMut(Value<'_>)) {
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            for i in 0..a.len() {
                if a.is_valid(i) {
                    f(Value::Int(a.value(i) as i128));
                }
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Decimal128(_, 0) => {
            let a = array.as_primitive::<arrow::datatypes::Decimal128Type>();
            for i in 0..a.len() {
                if a.is_valid(i) {
                    f(Value::Int(a.value(i)));
                }
            }
        }
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .flatten()
            .for_each(|t| f(Value::Text(t))),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .flatten()
            .for_each(|t| f(Value::Text(t))),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .flatten()
            .for_each(|t| f(Value::Text(t))),
        DataType::Binary => array
            .as_binary::<i32>()
            .iter()
            .flatten()
            .for_each(|b| f(Value::Bytes(b))),
        DataType::LargeBinary => array
            .as_binary::<i64>()
            .iter()
            .flatten()
            .for_each(|b| f(Value::Bytes(b))),
        DataType::BinaryView => array
            .as_binary_view()
            .iter()
            .flatten()
            .for_each(|b| f(Value::Bytes(b))),
        DataType::FixedSizeBinary(_) => array
            .as_fixed_size_binary()
            .iter()
            .flatten()
            .for_each(|b| f(Value::Bytes(b))),
        DataType::Dictionary(_, _) => {
            if let Ok(cast) = arrow::compute::cast(array, &DataType::Utf8) {
                for_each_value(cast.as_ref(), f);
            }
        }
        _ => {}
    }
}

fn sorted_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, ExportError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(ExportError::io(dir))? {
        let path = entry.map_err(ExportError::io(dir))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{FixedSizeBinaryArray, Float64Array, Int64Array, StringArray};

    #[test]
    fn the_eleven_test_is_the_citizen_numbers() {
        assert!(passes_eleven_test("111222333"));
        assert!(passes_eleven_test("123456782"));
        assert!(!passes_eleven_test("123456789"));
        assert!(!passes_eleven_test("12345678"));
        assert!(!passes_eleven_test("000000000"));
    }

    #[test]
    fn known_pseudonyms_are_caught_as_bytes_and_as_text_in_any_case() {
        let p2 = [0xabu8; 32];
        let mut guard = LeakGuard::new();
        guard.insert_pseudonym(&p2);
        let bytes = FixedSizeBinaryArray::try_from_iter([[1u8; 32], p2].into_iter()).unwrap();
        let err = guard
            .check_array("person.parquet", "respondent", &bytes)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("person.parquet, column respondent"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("abab"),
            "the value never reaches the message"
        );
        let text = StringArray::from(vec![Some("x"), Some(&*hex::encode_upper(p2))]);
        assert!(guard.check_array("f", "c", &text).is_err());
        let inside = StringArray::from(vec![format!("id: {}", hex::encode(p2))]);
        assert!(guard.check_array("f", "c", &inside).is_err());
        let clean = StringArray::from(vec!["P-ABCDEFGH", "25-29"]);
        guard.check_array("f", "c", &clean).unwrap();
    }

    #[test]
    fn forks_fill_apart_and_are_absorbed_under_one_key() {
        let mut guard = LeakGuard::new();
        guard.insert_pseudonym(&[1u8; 32]);
        let mut forks: Vec<LeakGuard> = (0..2).map(|_| guard.fork()).collect();
        forks[0].insert_pseudonym(&[2u8; 32]);
        forks[1].insert_pseudonym(&[3u8; 32]);
        forks[1].insert_pseudonym(&[1u8; 32]);
        for fork in forks {
            guard.absorb(fork);
        }
        assert_eq!(guard.distinct(), 3);
        for p in [[1u8; 32], [2u8; 32], [3u8; 32]] {
            let text = StringArray::from(vec![hex::encode(p)]);
            assert!(guard.check_array("f", "c", &text).is_err());
        }
    }

    #[test]
    fn a_column_of_repeated_values_teaches_every_distinct_one() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let mut guard = LeakGuard::new();
        guard.insert_column(
            &FixedSizeBinaryArray::try_from_iter([a, a, b, b, a, c].into_iter()).unwrap(),
        );
        guard.insert_column(&StringArray::from(vec!["x1", "x1", "x2", "x1"]));
        guard.insert_column(&Int64Array::from(vec![123456789, 123456789, 12345]));
        assert_eq!(guard.distinct(), 3 + 2 + 2);
        for p in [a, b, c] {
            let bytes = FixedSizeBinaryArray::try_from_iter([p].into_iter()).unwrap();
            assert!(guard.check_array("f", "c", &bytes).is_err());
        }
        for t in ["x1", "x2", "123456789", "12345"] {
            assert!(
                guard
                    .check_array("f", "c", &StringArray::from(vec![t]))
                    .is_err(),
                "{t}"
            );
        }
    }

    #[test]
    fn many_known_values_are_all_found_and_others_not() {
        let mut guard = LeakGuard::new();
        let known: Vec<String> = (0..200_000).map(|i| format!("org-{i}")).collect();
        for k in &known {
            guard.insert(k);
        }
        let column = StringArray::from(known.iter().map(String::as_str).collect::<Vec<_>>());
        for k in known.iter().step_by(997) {
            assert!(
                guard
                    .check_array("f", "c", &StringArray::from(vec![k.as_str()]))
                    .is_err(),
                "{k}"
            );
        }
        assert!(guard.check_array("f", "c", &column).is_err());
        let others: Vec<String> = (0..200_000).map(|i| format!("other-{i}")).collect();
        let others = StringArray::from(others.iter().map(String::as_str).collect::<Vec<_>>());
        guard.check_array("f", "c", &others).unwrap();
    }

    #[test]
    fn a_value_repeated_clean_does_not_hide_a_leak_after_it() {
        let mut guard = LeakGuard::new();
        guard.insert("12345678");
        let mut values = vec!["ZKH"; 10_000];
        values.push("12345678");
        assert!(
            guard
                .check_array("f", "sector", &StringArray::from(values))
                .is_err()
        );
        let mut ints = vec![2024i64; 10_000];
        ints.push(123456782);
        assert!(
            guard
                .check_array("f", "year", &Int64Array::from(ints))
                .is_err()
        );
    }

    #[test]
    #[should_panic(expected = "only a fork")]
    fn a_guard_of_another_family_cannot_be_absorbed() {
        LeakGuard::new().absorb(LeakGuard::new());
    }

    #[test]
    fn in_a_csv_a_float_column_is_spared_the_eleven_test_but_not_the_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let floats = vec!["days_sum".to_owned()];
        // A sum that happens to print as a 9-digit number passing the test.
        std::fs::write(&path, "sector,days_sum,n\nZorg,123456782,12\n").unwrap();
        let mut guard = LeakGuard::new();
        guard.insert("12345678");
        guard.scan_csv(&path, "t.csv", &floats).unwrap();
        // The same number in an integer column is refused, naming it.
        let err = guard.scan_csv(&path, "t.csv", &[]).unwrap_err();
        assert!(err.to_string().contains("days_sum"), "{err}");
        // A known identifier in a float column is still caught.
        std::fs::write(&path, "sector,days_sum,n\nZorg,12345678,12\n").unwrap();
        assert!(guard.scan_csv(&path, "t.csv", &floats).is_err());
    }

    #[test]
    fn citizen_numbers_are_caught_as_integers_and_text_but_not_in_floats() {
        let mut guard = LeakGuard::new();
        guard.insert("12345678");
        let ints = Int64Array::from(vec![5, 123456782]);
        assert!(matches!(
            guard.check_array("t.parquet", "n", &ints),
            Err(ExportError::Leak { .. })
        ));
        let kvk = StringArray::from(vec!["12345678"]);
        assert!(guard.check_array("t", "org", &kvk).is_err());
        let floats = Float64Array::from(vec![123456782.0]);
        guard.check_array("t", "sum", &floats).unwrap();
        guard
            .check_array("t", "n", &Int64Array::from(vec![123456789, 99]))
            .unwrap();
    }
}
