//! Dense link keys: every distinct stage-2 pseudonym of a kind (person or
//! organisation) numbered 0, 1, 2, … in pseudonym order, once, at the
//! start of linking.
//!
//! Why: every join and aggregation of the models groups on the person or
//! organisation. On the 32-byte pseudonyms each of them hashes, compares
//! and moves 32 bytes per key, and every materialised intermediate stores
//! them again; on a 4-byte integer that work shrinks eightfold. Numbering
//! in pseudonym order keeps every ordering the models define — "the lowest
//! pseudonym" as a tie-break, rows sorted by pseudonym — the same on the
//! numbers, so the keys are translated back only when a model is written.
//!
//! The numbers never leave the linking stage: they depend on which
//! pseudonyms the inputs hold, so they are not stable across runs and mean
//! nothing outside one.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, Int32Array};
use arrow::buffer::Buffer;
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, FieldRef, Int32Type};
use datafusion::common::exec_err;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use koppel_contract::meta::PSEUDONYM_BYTES;

use crate::LinkError;

type Pseudonym = [u8; PSEUDONYM_BYTES];

/// The pseudonyms of one kind in byte order; a pseudonym's number is its
/// index. A directory on the leading bits finds the index with one or two
/// memory reads where a hash table needs two cache misses per key:
/// stage-2 pseudonyms are HMAC outputs, uniform in their leading bits, so
/// a directory of about one slot per pseudonym leaves each slot a range of
/// about one. Keys that are not uniform stay correct, only slower (the
/// range is searched).
#[derive(Debug)]
pub struct DenseKeys {
    /// What the keys stand for ("person", "organisation"), for messages.
    kind: &'static str,
    /// The pseudonyms in byte order, as the column numbers are restored from.
    sorted: FixedSizeBinaryArray,
    /// `directory[b]..directory[b + 1]`: the indices of the pseudonyms
    /// whose leading 64 bits, shifted right by `shift`, equal `b`.
    directory: Vec<u32>,
    shift: u32,
}

fn leading_bits(pseudonym: &[u8]) -> u64 {
    u64::from_be_bytes(pseudonym[..8].try_into().expect("a pseudonym has 32 bytes"))
}

/// Byte order, decided by the leading 64 bits as one integer: for HMAC
/// outputs they differ between any two pseudonyms but by chance, so the
/// byte-wise comparison of all 32 (a `memcmp` call per comparison; memcmp
/// was 7% of linking's samples, in part here) runs only on a tie.
fn byte_order(a: &Pseudonym, b: &Pseudonym) -> Ordering {
    leading_bits(a).cmp(&leading_bits(b)).then_with(|| a.cmp(b))
}

fn as_pseudonym(value: &[u8]) -> &Pseudonym {
    value.try_into().expect("checked to be 32 bytes")
}

/// The column as 32-byte stage-2 pseudonyms, or an error saying what it is.
fn as_pseudonyms<'a>(
    kind: &str,
    column: &'a ArrayRef,
) -> Result<&'a FixedSizeBinaryArray, LinkError> {
    match column.as_fixed_size_binary_opt() {
        Some(pseudonyms) if pseudonyms.value_length() as usize == PSEUDONYM_BYTES => Ok(pseudonyms),
        _ => Err(LinkError::Plan(format!(
            "a {kind} identifier column of type {} is not a stage-2 pseudonym",
            column.data_type()
        ))),
    }
}

impl DenseKeys {
    /// Numbers the pseudonyms (in any order, with repeats) in byte order.
    pub fn new(kind: &'static str, mut pseudonyms: Vec<Pseudonym>) -> Result<DenseKeys, LinkError> {
        pseudonyms.sort_unstable_by(byte_order);
        pseudonyms.dedup();
        if i32::try_from(pseudonyms.len()).is_err() {
            return Err(LinkError::Plan(format!(
                "more than {} distinct {kind} pseudonyms",
                i32::MAX
            )));
        }
        let bits = (usize::BITS - pseudonyms.len().leading_zeros()).clamp(1, 26);
        let shift = u64::BITS - bits;
        let mut directory = Vec::with_capacity((1 << bits) + 1);
        let mut index = 0usize;
        for slot in 0..(1u64 << bits) {
            while index < pseudonyms.len() && leading_bits(&pseudonyms[index]) >> shift < slot {
                index += 1;
            }
            directory.push(index as u32);
        }
        directory.push(pseudonyms.len() as u32);
        let sorted = FixedSizeBinaryArray::try_new(
            PSEUDONYM_BYTES as i32,
            Buffer::from_vec(pseudonyms.into_flattened()),
            None,
        )?;
        Ok(DenseKeys {
            kind,
            sorted,
            directory,
            shift,
        })
    }

    /// Collects the pseudonyms of each query's result (one column per
    /// query, FixedSizeBinary(32)), reading the partitions side by side,
    /// and numbers them.
    pub async fn collect(
        ctx: &SessionContext,
        kind: &'static str,
        queries: &[String],
    ) -> Result<DenseKeys, LinkError> {
        let mut all: Vec<Pseudonym> = Vec::new();
        for sql in queries {
            let streams = ctx.sql(sql).await?.execute_stream_partitioned().await?;
            let tasks: Vec<_> = streams
                .into_iter()
                .map(|mut stream| {
                    tokio::spawn(async move {
                        let mut seen: Vec<Pseudonym> = Vec::new();
                        while let Some(batch) = stream.next().await {
                            push_distinct_runs(kind, &mut seen, batch?.column(0))?;
                        }
                        seen.sort_unstable_by(byte_order);
                        seen.dedup();
                        Ok::<_, LinkError>(seen)
                    })
                })
                .collect();
            for task in tasks {
                let seen = task.await.map_err(|source| LinkError::Task {
                    context: format!("collecting {kind} keys"),
                    source,
                })??;
                all.extend(seen);
            }
        }
        DenseKeys::new(kind, all)
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    fn number_of(&self, pseudonym: &Pseudonym) -> Option<i32> {
        let slot = (leading_bits(pseudonym) >> self.shift) as usize;
        let (start, end) = (
            self.directory[slot] as usize,
            self.directory[slot + 1] as usize,
        );
        let (sorted, _) = self.sorted.value_data().as_chunks::<PSEUDONYM_BYTES>();
        let found = sorted[start..end].binary_search_by(|p| byte_order(p, pseudonym));
        found.ok().map(|i| (start + i) as i32)
    }

    /// The number of each pseudonym (checked by [`as_pseudonyms`]); nulls
    /// stay null. A pseudonym that was not collected is an error (the keys
    /// must be collected from every input they are used on).
    fn numbers_of(&self, pseudonyms: &FixedSizeBinaryArray) -> Result<Int32Array, LinkError> {
        let mut numbers = Vec::with_capacity(pseudonyms.len());
        // Sources list a person's or organisation's rows together (a payroll
        // holds twelve months per employment), so a run of equal keys costs
        // one lookup.
        let mut previous: Option<(&Pseudonym, i32)> = None;
        for i in 0..pseudonyms.len() {
            if pseudonyms.is_null(i) {
                numbers.push(0);
                continue;
            }
            let value = as_pseudonym(pseudonyms.value(i));
            let number = match previous {
                Some((p, n)) if p == value => n,
                _ => {
                    let n = self.number_of(value).ok_or_else(|| {
                        LinkError::Plan(format!(
                            "a {} pseudonym that was not numbered at the start of linking",
                            self.kind
                        ))
                    })?;
                    previous = Some((value, n));
                    n
                }
            };
            numbers.push(number);
        }
        Ok(Int32Array::new(numbers.into(), pseudonyms.nulls().cloned()))
    }

    /// The pseudonym of each number; nulls stay null.
    fn pseudonyms_of(&self, numbers: &Int32Array) -> Result<FixedSizeBinaryArray, LinkError> {
        // `take` would panic on an index out of range.
        if let Some(number) = numbers
            .iter()
            .flatten()
            .find(|&n| usize::try_from(n).map_or(true, |n| n >= self.len()))
        {
            return Err(LinkError::Plan(format!(
                "{} key {number} out of range (0..{})",
                self.kind,
                self.len()
            )));
        }
        Ok(take(&self.sorted, numbers, None)?
            .as_fixed_size_binary()
            .clone())
    }

    /// Replaces a column of dense numbers by the pseudonyms they stand for.
    pub fn restore(&self, column: &ArrayRef) -> Result<ArrayRef, LinkError> {
        let Some(numbers) = column.as_primitive_opt::<Int32Type>() else {
            return Err(LinkError::Plan(format!(
                "a {} key column of type {} is not a dense key",
                self.kind,
                column.data_type()
            )));
        };
        Ok(Arc::new(self.pseudonyms_of(numbers)?))
    }

    /// A SQL function `name(pseudonym) → INT` that numbers pseudonyms.
    pub fn udf(self: &Arc<Self>, name: &str) -> ScalarUDF {
        ScalarUDF::from(DenseKeyUdf {
            name: name.to_owned(),
            keys: Arc::clone(self),
            signature: Signature::exact(
                vec![DataType::FixedSizeBinary(PSEUDONYM_BYTES as i32)],
                Volatility::Immutable,
            ),
        })
    }
}

/// Appends the column's pseudonyms, once per run of equal values (sources
/// list a person's rows together, so this keeps the buffer small).
fn push_distinct_runs(
    kind: &str,
    seen: &mut Vec<Pseudonym>,
    column: &ArrayRef,
) -> Result<(), LinkError> {
    let mut previous: Option<&Pseudonym> = None;
    for value in as_pseudonyms(kind, column)?.iter().flatten() {
        let value = as_pseudonym(value);
        if previous != Some(value) {
            seen.push(*value);
            previous = Some(value);
        }
    }
    Ok(())
}

/// `person_key(bsn_p2)`, `org_key(employer_kvk_p2)`: the dense number of a
/// pseudonym.
#[derive(Debug)]
struct DenseKeyUdf {
    name: String,
    keys: Arc<DenseKeys>,
    signature: Signature,
}

// DataFusion compares functions to deduplicate expressions; two are the
// same function only if they number from the same keys.
impl PartialEq for DenseKeyUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.keys, &other.keys)
    }
}

impl Eq for DenseKeyUdf {}

impl Hash for DenseKeyUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        Arc::as_ptr(&self.keys).hash(state);
    }
}

impl ScalarUDFImpl for DenseKeyUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> datafusion::common::Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Int32, nullable)))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let array = argument.to_array(args.number_rows)?;
        let numbers = as_pseudonyms(self.keys.kind, &array)
            .and_then(|pseudonyms| self.keys.numbers_of(pseudonyms))
            .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))?;
        Ok(ColumnarValue::Array(Arc::new(numbers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudonym(first: u8, last: u8) -> [u8; PSEUDONYM_BYTES] {
        let mut p = [7u8; PSEUDONYM_BYTES];
        p[0] = first;
        p[PSEUDONYM_BYTES - 1] = last;
        p
    }

    fn array(values: &[Option<[u8; PSEUDONYM_BYTES]>]) -> FixedSizeBinaryArray {
        FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            values.iter().map(|v| v.as_ref().map(|p| p.to_vec())),
            PSEUDONYM_BYTES as i32,
        )
        .unwrap()
    }

    #[test]
    fn numbers_follow_pseudonym_order_and_round_trip() {
        let (a, b, c) = (pseudonym(1, 9), pseudonym(2, 0), pseudonym(2, 1));
        let keys = DenseKeys::new("person", vec![c, a, b, a]).unwrap();
        assert_eq!(keys.len(), 3);
        let input = array(&[Some(c), Some(c), None, Some(a), Some(b), Some(b), Some(c)]);
        let numbers = keys.numbers_of(&input).unwrap();
        let expected = Int32Array::from(vec![
            Some(2),
            Some(2),
            None,
            Some(0),
            Some(1),
            Some(1),
            Some(2),
        ]);
        assert_eq!(numbers, expected);
        assert_eq!(keys.pseudonyms_of(&numbers).unwrap(), input);
    }

    #[test]
    fn an_unknown_pseudonym_or_number_is_an_error() {
        let keys = DenseKeys::new("person", vec![pseudonym(1, 1)]).unwrap();
        let err = keys
            .numbers_of(&array(&[Some(pseudonym(1, 2))]))
            .unwrap_err();
        assert!(err.to_string().contains("not numbered"), "{err}");
        assert!(keys.pseudonyms_of(&Int32Array::from(vec![1])).is_err());
        assert!(keys.pseudonyms_of(&Int32Array::from(vec![-1])).is_err());
    }

    #[test]
    fn runs_are_pushed_once_and_nulls_skipped() {
        let (a, b) = (pseudonym(3, 3), pseudonym(4, 4));
        let mut seen = Vec::new();
        let column: ArrayRef = Arc::new(array(&[Some(a), Some(a), None, Some(b), Some(a)]));
        push_distinct_runs("person", &mut seen, &column).unwrap();
        assert_eq!(seen, vec![a, b, a]);
        let wrong: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        assert!(push_distinct_runs("person", &mut seen, &wrong).is_err());
    }

    /// Uniform keys (as HMAC outputs are) and keys that all share their
    /// leading bytes (one directory slot holds them all) number alike: by
    /// their rank in byte order.
    #[test]
    fn every_key_finds_its_rank_whatever_its_leading_bits() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let uniform: Vec<Pseudonym> = (0..5000)
            .map(|_| {
                let mut p = [0u8; PSEUDONYM_BYTES];
                for chunk in p.chunks_mut(8) {
                    chunk.copy_from_slice(&next().to_be_bytes());
                }
                p
            })
            .collect();
        let clustered: Vec<Pseudonym> = (0..300u16)
            .map(|i| {
                let mut p = [0xab; PSEUDONYM_BYTES];
                p[30..].copy_from_slice(&i.to_be_bytes());
                p
            })
            .collect();
        for keys in [uniform, clustered] {
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let mut doubled = keys.clone();
            doubled.extend(keys.iter().rev());
            let dense = DenseKeys::new("person", doubled).unwrap();
            assert_eq!(dense.len(), keys.len());
            for (rank, key) in sorted.iter().enumerate() {
                assert_eq!(dense.number_of(key), Some(rank as i32));
            }
            let mut absent = sorted[0];
            absent[31] ^= 0x80;
            if !sorted.contains(&absent) {
                assert_eq!(dense.number_of(&absent), None);
            }
        }
    }

    #[tokio::test]
    async fn the_sql_function_numbers_a_column() {
        let (a, b) = (pseudonym(5, 0), pseudonym(6, 0));
        let keys = Arc::new(DenseKeys::new("person", vec![b, a]).unwrap());
        let ctx = SessionContext::new();
        ctx.register_udf(keys.udf("person_key"));
        let batch = arrow::array::RecordBatch::try_from_iter([(
            "bsn_p2",
            Arc::new(array(&[Some(b), None, Some(a)])) as ArrayRef,
        )])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let out = ctx
            .sql("SELECT person_key(bsn_p2) AS k FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let k = out[0].column(0).as_primitive::<Int32Type>();
        assert_eq!(k, &Int32Array::from(vec![Some(1), None, Some(0)]));
    }
}
