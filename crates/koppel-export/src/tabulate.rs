//! Declared tables: tabulate a model into cells with all margins, protect
//! them (primary and secondary suppression, audited), and lay them out as a
//! flat table for Parquet and CSV.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use serde::Serialize;

use crate::config::{Hierarchy, TableModel, TableSpec};
use crate::error::{ExportError, boolean_column, numeric_column, pseudonym_column};
use crate::hierarchy::{generalise, model_atoms};
use crate::tables::{
    AuditReport, CellStatus, Contribution, Dimension, ProtectedTable, TableInput, TableRules,
    protect,
};
use koppel_disclosure::NULL as NULL_CODE;

/// The label of a margin in a released table.
pub const TOTAL: &str = "Total";

/// What protecting one table did.
#[derive(Debug, Clone, Serialize)]
pub struct TableDisclosure {
    pub name: String,
    pub label: String,
    pub model: TableModel,
    pub dimensions: Vec<String>,
    pub measures: Vec<String>,
    pub rows_tabulated: u64,
    /// Rows left out because a dimension was unknown.
    pub rows_without_category: u64,
    pub cells: u64,
    /// Cells per status code.
    pub status: BTreeMap<String, u64>,
    pub audit: AuditReport,
}

pub struct ReleasedTable {
    pub batch: RecordBatch,
    pub disclosure: TableDisclosure,
    pub categories: Vec<(String, Vec<String>)>,
}

/// The file a model is read from, for errors.
fn model_file(model: TableModel) -> &'static str {
    match model {
        TableModel::Person => koppel_contract::files::linked::PERSON_MODEL_FILE,
        TableModel::Organisation => koppel_contract::files::linked::ORGANISATION_MODEL_FILE,
    }
}

/// Contributors are persons (person model) or organisations; their
/// stage-2 pseudonyms are uniformly random, so eight bytes identify one
/// within a table.
fn contributor_ids(batch: &RecordBatch, model: TableModel) -> Result<Vec<u64>, ExportError> {
    let name = match model {
        TableModel::Person => "person_p2",
        TableModel::Organisation => "org_p2",
    };
    let pseudonyms = pseudonym_column(batch, model_file(model), name)?;
    Ok(pseudonyms
        .keys
        .iter()
        .map(|&[b0, b1, b2, b3, b4, b5, b6, b7, ..]| {
            u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
        })
        .collect())
}

fn col<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef, ExportError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ExportError::Column {
            column: name.into(),
            message: format!("table {table} uses it, but the model has no such column"),
        })
}

/// Tabulates and protects one declared table.
pub fn release_table(
    spec: &TableSpec,
    model: &RecordBatch,
    rules: &TableRules,
) -> Result<ReleasedTable, ExportError> {
    let rows = model.num_rows();
    let file = model_file(spec.model);
    let mut include = vec![true; rows];
    if let Some(only) = &spec.only_where {
        col(model, &spec.name, only)?;
        let flag = boolean_column(model, file, only)?;
        for (r, inc) in include.iter_mut().enumerate() {
            *inc = flag.is_valid(r) && flag.value(r);
        }
    }
    let selected = include.iter().filter(|i| **i).count() as u64;

    let mut dimensions = Vec::new();
    let mut codes = Vec::new();
    for d in &spec.dimensions {
        col(model, &spec.name, &d.column)?;
        let values = model_atoms(model, file, &d.column)?;
        let hierarchy = d.hierarchy.clone().unwrap_or(Hierarchy::Categorical);
        let g = generalise(&d.column, &values, &hierarchy, None)?;
        let level = g.level(d.level);
        dimensions.push(Dimension {
            name: d.column.clone(),
            categories: level.labels.clone(),
        });
        codes.push(level.codes);
    }
    let measures: Vec<Float64Array> = spec
        .measures
        .iter()
        .map(|m| {
            col(model, &spec.name, m)?;
            let a = cast(numeric_column(model, file, m)?, &DataType::Float64).map_err(
                ExportError::arrow(format!("table {}: measure {m}", spec.name)),
            )?;
            Ok(a.as_primitive::<Float64Type>().clone())
        })
        .collect::<Result<_, ExportError>>()?;
    let contributors = contributor_ids(model, spec.model)?;

    let mut contributions = Vec::with_capacity(selected as usize);
    let mut without_category = 0u64;
    for r in (0..rows).filter(|r| include[*r]) {
        let coords: Vec<u32> = codes.iter().map(|c| c[r]).collect();
        if coords.contains(&NULL_CODE) {
            without_category += 1;
            continue;
        }
        contributions.push(Contribution {
            coords,
            contributor: contributors[r],
            // An unknown magnitude contributes nothing to the sum.
            values: measures
                .iter()
                .map(|m| {
                    if m.is_valid(r) {
                        m.value(r).max(0.0)
                    } else {
                        0.0
                    }
                })
                .collect(),
        });
    }
    let input = TableInput {
        name: spec.name.clone(),
        dimensions,
        measures: spec.measures.clone(),
        contributions,
    };
    let protected = protect(&input, rules).map_err(|source| ExportError::Table {
        table: spec.name.clone(),
        source,
    })?;
    let batch = lay_out(spec, &protected)?;
    let mut status = BTreeMap::new();
    for cell in &protected.cells {
        *status.entry(cell.status.code().to_owned()).or_insert(0u64) += 1;
    }
    Ok(ReleasedTable {
        categories: protected
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), d.categories.clone()))
            .collect(),
        disclosure: TableDisclosure {
            name: spec.name.clone(),
            label: spec.label.clone(),
            model: spec.model,
            dimensions: spec.dimensions.iter().map(|d| d.column.clone()).collect(),
            measures: spec.measures.clone(),
            rows_tabulated: selected - without_category,
            rows_without_category: without_category,
            cells: protected.cells.len() as u64,
            status,
            audit: protected.audit.clone(),
        },
        batch,
    })
}

/// One row per cell: the dimension labels (`Total` for a margin), the
/// count of model rows, each measure's sum, the ratio, and the status.
/// Suppressed cells keep their labels and status; their numbers are null.
fn lay_out(spec: &TableSpec, table: &ProtectedTable) -> Result<RecordBatch, ExportError> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, d) in table.dimensions.iter().enumerate() {
        let labels: StringArray = table
            .cells
            .iter()
            .map(|c| Some(c.coords[i].map_or(TOTAL, |k| d.categories[k as usize].as_str())))
            .collect();
        fields.push(Field::new(&d.name, DataType::Utf8, false));
        columns.push(Arc::new(labels));
    }
    let published = |c: &crate::tables::Cell| {
        !matches!(
            c.status,
            CellStatus::PrimaryThreshold
                | CellStatus::PrimaryDominance
                | CellStatus::PrimaryPPercent
                | CellStatus::Secondary
        )
    };
    let counts: Int64Array = table
        .cells
        .iter()
        .map(|c| published(c).then_some(c.rows as i64))
        .collect();
    fields.push(Field::new(spec.model.count_column(), DataType::Int64, true));
    columns.push(Arc::new(counts));
    for (m, name) in table.measures.iter().enumerate() {
        let sums: Float64Array = table
            .cells
            .iter()
            .map(|c| published(c).then_some(c.sums[m]))
            .collect();
        fields.push(Field::new(format!("{name}_sum"), DataType::Float64, true));
        columns.push(Arc::new(sums));
    }
    if let Some(ratio) = &spec.ratio {
        let n = table.measures.iter().position(|m| *m == ratio.numerator);
        let d = table.measures.iter().position(|m| *m == ratio.denominator);
        let (Some(n), Some(d)) = (n, d) else {
            return Err(ExportError::Column {
                column: ratio.name.clone(),
                message: "ratio of measures the table does not have".into(),
            });
        };
        let values: Float64Array = table
            .cells
            .iter()
            .map(|c| (published(c) && c.sums[d] > 0.0).then(|| c.sums[n] / c.sums[d] * ratio.scale))
            .collect();
        fields.push(Field::new(&ratio.name, DataType::Float64, true));
        columns.push(Arc::new(values));
    }
    let status: StringArray = table.cells.iter().map(|c| Some(c.status.code())).collect();
    fields.push(Field::new("status", DataType::Utf8, false));
    columns.push(Arc::new(status));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(ExportError::arrow(
        format!("laying out table {}", spec.name),
    ))
}

/// Whether the model a table reads has every column it names.
pub fn check_columns(spec: &TableSpec, model: &RecordBatch) -> Result<(), ExportError> {
    for d in &spec.dimensions {
        col(model, &spec.name, &d.column)?;
    }
    for m in &spec.measures {
        col(model, &spec.name, m)?;
    }
    if let Some(o) = &spec.only_where {
        col(model, &spec.name, o)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;
    use crate::error::fixture::{Models, assert_names, pseudonyms};

    fn is_type(found: DataType) -> impl Fn(&ExportError) -> bool {
        move |e| matches!(e, ExportError::ModelColumnType { found: f, .. } if *f == found)
    }

    #[test]
    fn only_where_of_another_type_is_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.person,
            "on_payroll",
            Arc::new(Int32Array::from(vec![1, 1, 1, 0])),
        );
        let message = assert_names(
            models.export(),
            is_type(DataType::Int32),
            koppel_contract::files::linked::PERSON_MODEL_FILE,
            "on_payroll",
        );
        assert!(message.contains("Boolean"), "{message}");
    }

    #[test]
    fn a_measure_must_be_a_number() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "available_days",
            Arc::new(StringArray::from(vec!["600", "700"])),
        );
        assert_names(
            models.export(),
            is_type(DataType::Utf8),
            koppel_contract::files::linked::ORGANISATION_MODEL_FILE,
            "available_days",
        );
    }

    #[test]
    fn a_dimension_of_a_type_that_does_not_tabulate_is_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "sector",
            Arc::new(arrow::array::Date32Array::from(vec![1, 1])),
        );
        assert_names(
            models.export(),
            is_type(DataType::Date32),
            koppel_contract::files::linked::ORGANISATION_MODEL_FILE,
            "sector",
        );
    }

    /// In an export the person file checks `person_p2` first; the table's
    /// own check, on its own.
    #[test]
    fn contributors_of_another_width_are_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.person,
            "person_p2",
            pseudonyms(&Models::person_keys(), 16),
        );
        let config = Models::config();
        let spec = &config.tables[0];
        assert_eq!(spec.model, TableModel::Person);
        assert_names(
            release_table(spec, &Models::batch(&models.person), &config.table_rules),
            |e| matches!(e, ExportError::PseudonymWidth { found: 16, .. }),
            koppel_contract::files::linked::PERSON_MODEL_FILE,
            "person_p2",
        );
    }
}
