//! Assembles one canonical record batch: column builders fill typed arrays,
//! row rules run over whole arrays, and rejected rows are filtered out.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Date32Type, Int64Type, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::columns::{
    ColumnBuilder, IdentifierMode, META_KEY_ID, META_KEY_VERSION, META_PSEUDONYM_STAGE, Notation,
    canonical_field, ymd,
};
use crate::manifest::KeyLabel;
use crate::report::{Reject, RejectLog, reportable_value};
use crate::rules::Rule;
use crate::spec::{ColumnKind, RowRule, SourceSpec};

enum CompiledRule {
    MinAge {
        birth: usize,
        at: usize,
        at_is_month: bool,
        years: i32,
    },
    NotBefore {
        column: usize,
        reference: usize,
    },
}

pub(crate) struct Assembler {
    schema: SchemaRef,
    /// The schema with every column nullable: rejected rows are nulls until
    /// they are filtered out.
    unfiltered: SchemaRef,
    names: Vec<String>,
    is_identifier: Vec<bool>,
    pub builders: Vec<ColumnBuilder>,
    rules: Vec<CompiledRule>,
    unique: Vec<(usize, HashSet<Vec<u8>>)>,
    rejected: Vec<bool>,
    lines: Vec<u64>,
    pending: Vec<(usize, usize, Rule, Option<String>)>,
}

impl Assembler {
    /// `stage1` labels pre-pseudonymised columns with the key that made
    /// them, as the delivery's manifest declares it.
    pub fn new(
        spec: &SourceSpec,
        mode: IdentifierMode,
        stage1: Option<&KeyLabel>,
        batch_size: usize,
    ) -> Self {
        let notation = Arc::new(Notation::of(spec.csv_dialect()));
        let index = |name: &str| {
            spec.columns
                .iter()
                .position(|c| c.name == name)
                .expect("spec check guarantees rule columns exist")
        };
        let rules = spec
            .row_rules
            .iter()
            .map(|r| match r {
                RowRule::MinAge {
                    birth_date,
                    at,
                    years,
                } => CompiledRule::MinAge {
                    birth: index(birth_date),
                    at: index(at),
                    at_is_month: matches!(spec.columns[index(at)].kind, ColumnKind::Month),
                    years: *years as i32,
                },
                RowRule::NotBefore { column, reference } => CompiledRule::NotBefore {
                    column: index(column),
                    reference: index(reference),
                },
            })
            .collect();
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("koppel.source".to_owned(), spec.source.clone());
        let fields: Vec<_> = spec
            .columns
            .iter()
            .map(|c| {
                let field = canonical_field(c, mode);
                match (c.identifier(), mode, stage1) {
                    (Some(_), IdentifierMode::PrePseudonymised, Some(key)) => {
                        let mut metadata = field.metadata().clone();
                        metadata.insert(META_PSEUDONYM_STAGE.to_owned(), "p1".to_owned());
                        metadata.insert(META_KEY_ID.to_owned(), key.id.clone());
                        metadata.insert(META_KEY_VERSION.to_owned(), key.version.to_string());
                        field.with_metadata(metadata)
                    }
                    _ => field,
                }
            })
            .collect();
        let unfiltered: Vec<_> = fields
            .iter()
            .map(|f| f.clone().with_nullable(true))
            .collect();
        Assembler {
            schema: Arc::new(Schema::new_with_metadata(fields, metadata)),
            unfiltered: Arc::new(Schema::new(unfiltered)),
            names: spec.columns.iter().map(|c| c.name.clone()).collect(),
            is_identifier: spec
                .columns
                .iter()
                .map(|c| c.identifier().is_some())
                .collect(),
            builders: spec
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c, mode, notation.clone(), batch_size))
                .collect(),
            rules,
            unique: spec
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.unique)
                .map(|(i, _)| (i, HashSet::new()))
                .collect(),
            rejected: Vec::with_capacity(batch_size),
            lines: Vec::with_capacity(batch_size),
            pending: Vec::new(),
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Starts a batch whose rows begin on these lines.
    pub fn start(&mut self, lines: impl IntoIterator<Item = u64>) {
        self.lines.clear();
        self.lines.extend(lines);
        self.rejected.clear();
        self.rejected.resize(self.lines.len(), false);
    }

    /// Records that `row` broke `rule` in column `col`; the raw field is kept
    /// for the report unless the column holds identifiers.
    #[inline]
    pub fn reject(&mut self, row: usize, col: usize, rule: Rule, raw: Option<&[u8]>) {
        self.rejected[row] = true;
        let value = if self.is_identifier[col] {
            None
        } else {
            raw.map(reportable_value)
        };
        self.pending.push((row, col, rule, value));
    }

    /// Finishes the arrays, runs the row rules and returns the accepted rows.
    pub fn finish(&mut self, log: &mut RejectLog) -> Result<RecordBatch, AssembleError> {
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        self.apply_row_rules(&columns);
        self.apply_uniqueness(&columns);

        // Report in file order, so a reject report reads top to bottom.
        self.pending.sort_by_key(|(row, col, ..)| (*row, *col));
        for (row, col, rule, value) in self.pending.drain(..) {
            log.reject(Reject {
                line: self.lines[row],
                column: self.names[col].clone(),
                rule,
                value,
            })
            .map_err(AssembleError::Report)?;
        }
        let n_rejected = self.rejected.iter().filter(|r| **r).count();
        log.rows_rejected(n_rejected as u64);

        let columns = if n_rejected == 0 {
            columns
        } else {
            let batch = RecordBatch::try_new(self.unfiltered.clone(), columns)
                .map_err(AssembleError::Arrow)?;
            let keep = BooleanArray::from_iter(self.rejected.iter().map(|r| Some(!r)));
            filter_record_batch(&batch, &keep)
                .map_err(AssembleError::Arrow)?
                .columns()
                .to_vec()
        };
        // Validation guarantees what the strict schema declares: required
        // columns hold no nulls among accepted rows.
        RecordBatch::try_new(self.schema.clone(), columns).map_err(AssembleError::Arrow)
    }

    fn apply_row_rules(&mut self, columns: &[ArrayRef]) {
        for i in 0..self.rules.len() {
            match self.rules[i] {
                CompiledRule::MinAge {
                    birth,
                    at,
                    at_is_month,
                    years,
                } => {
                    let births = columns[birth].as_primitive::<Date32Type>();
                    let ats = columns[at].as_primitive::<Date32Type>();
                    for row in 0..births.len() {
                        if self.rejected[row] || births.is_null(row) || ats.is_null(row) {
                            continue;
                        }
                        let (Some((by, bm, bd)), Some((ay, am, ad))) =
                            (ymd(births.value(row)), ymd(ats.value(row)))
                        else {
                            continue;
                        };
                        // Old enough at the end of the month: the birthday
                        // month has come, whatever the day.
                        let old_enough = if at_is_month {
                            (by + years, bm) <= (ay, am)
                        } else {
                            (by + years, bm, bd) <= (ay, am, ad)
                        };
                        if !old_enough {
                            self.reject(row, birth, Rule::TooYoung, None);
                        }
                    }
                }
                CompiledRule::NotBefore { column, reference } => {
                    let values = columns[column].as_primitive::<Date32Type>();
                    let refs = columns[reference].as_primitive::<Date32Type>();
                    for row in 0..values.len() {
                        if !self.rejected[row]
                            && values.is_valid(row)
                            && refs.is_valid(row)
                            && values.value(row) < refs.value(row)
                        {
                            self.reject(row, column, Rule::DateOrder, None);
                        }
                    }
                }
            }
        }
    }

    /// Checked last, over otherwise accepted rows only, so a rejected row
    /// never makes a later good row with the same value a duplicate.
    fn apply_uniqueness(&mut self, columns: &[ArrayRef]) {
        for u in 0..self.unique.len() {
            let col = self.unique[u].0;
            let array = &columns[col];
            for row in 0..array.len() {
                if self.rejected[row] || array.is_null(row) {
                    continue;
                }
                let key: Vec<u8> = match array.data_type() {
                    DataType::Utf8 => array.as_string::<i32>().value(row).as_bytes().to_vec(),
                    DataType::Int64 => array
                        .as_primitive::<Int64Type>()
                        .value(row)
                        .to_le_bytes()
                        .to_vec(),
                    DataType::FixedSizeBinary(_) => {
                        array.as_fixed_size_binary().value(row).to_vec()
                    }
                    DataType::Date32 => array
                        .as_primitive::<Date32Type>()
                        .value(row)
                        .to_le_bytes()
                        .to_vec(),
                    other => unreachable!("spec check refuses unique on {other}"),
                };
                if !self.unique[u].1.insert(key) {
                    self.reject(row, col, Rule::Duplicate, None);
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum AssembleError {
    Arrow(ArrowError),
    Report(std::io::Error),
}
