//! Declared tables: tabulate rows into cells with all margins, protect
//! them (primary and secondary suppression, audited together with what
//! else the release publishes), and lay them out as a flat table for
//! Parquet and CSV. Also the release's copy of the linkage report, whose
//! counts go through the same rules.
//!
//! **Person tables** count the rows of the released person file by the
//! values it releases — its generalised labels, `Unknown` where it has a
//! null — so every count in them is one a researcher can compute from the
//! file: the table adds nothing the file does not publish. A measure the
//! file does not carry exactly (care costs; absence days, released in
//! classes) is summed from the model over the same released rows and
//! audited jointly with the file: each row's released class, or the
//! measure's known maximum where the file has nothing, bounds what a
//! reader knows of every cell before reading the table.
//!
//! **Organisation tables** count organisation-years of the model, and are
//! audited jointly with the organisation file released beside them: what
//! it tells of each organisation-year (its cell, its figures exact,
//! rounded, banded or withheld, the rows it leaves out) bounds every cell
//! before the table is read. Tables over the same rows that share
//! dimensions share cells (their margins over the common dimensions), and
//! are protected and audited as one set.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Hierarchy, TableModel, TableSpec};
use crate::error::{ExportError, boolean_column, numeric_column, pseudonym_column};
use crate::hierarchy::{Atom, atoms, generalise, model_atoms};
use crate::organisation::{HEADCOUNT, OrganisationRelease, Told};
use crate::tables::{
    AuditReport, Contribution, CountedUnits, Dimension, KnownRow, Link, Measure, ProtectedTable,
    RatioBound, TableInput, TableRules, protect_linked,
};
use koppel_disclosure::NULL as NULL_CODE;

/// The label of a margin in a released table.
pub const TOTAL: &str = "Total";
/// The category of rows whose value is unknown or suppressed.
pub const UNKNOWN: &str = "Unknown";

/// What protecting one table did.
#[derive(Debug, Clone, Serialize)]
pub struct TableDisclosure {
    pub name: String,
    pub label: String,
    pub model: TableModel,
    /// `persons.parquet` (the released person file) or the organisation
    /// model.
    pub rows_from: String,
    pub dimensions: Vec<String>,
    pub measures: Vec<String>,
    pub rows_tabulated: u64,
    /// Rows with an unknown (or, in the person file, suppressed) dimension
    /// value, counted in its `Unknown` category.
    pub rows_without_category: u64,
    pub cells: u64,
    /// Cells per reason (`safe`, `empty`, `primary_threshold`,
    /// `primary_dominance`, `primary_p_percent`, `primary_class`,
    /// `secondary`); the released table says only `safe`, `empty` or
    /// `suppressed`.
    pub status: BTreeMap<String, u64>,
    /// Quantities the person or organisation file publishes exactly in
    /// every cell: audited as the table alone (the file publishes them
    /// anyway).
    pub public: Vec<String>,
    /// Quantities audited jointly with what the person file tells of
    /// every cell.
    pub audited_with_person_file: Vec<String>,
    /// Quantities of an organisation table audited jointly with what the
    /// organisation file tells of every cell.
    pub audited_with_organisation_file: Vec<String>,
    /// Per measure, the most one row can contribute, as the audit applied
    /// it.
    pub max_per_contributor: BTreeMap<String, f64>,
    /// The ratio's known maximum as the audit applied it.
    pub ratio_bound: Option<RatioBoundReport>,
    /// Tables protected and audited together with this one (they share
    /// cells); the audit figures are the set's.
    pub linked_with: Vec<String>,
    pub audit: AuditReport,
}

/// `numerator ≤ factor × denominator` in every cell (a ratio's maximum
/// over its scale: absence days at most the available days).
#[derive(Debug, Clone, Serialize)]
pub struct RatioBoundReport {
    pub numerator: String,
    pub denominator: String,
    pub factor: f64,
}

pub struct ReleasedTable {
    pub batch: RecordBatch,
    pub disclosure: TableDisclosure,
    pub categories: Vec<(String, Vec<String>)>,
}

/// The released person file, as person tables read it.
pub struct PersonFile<'a> {
    /// `persons.parquet`.
    pub batch: &'a RecordBatch,
    /// Per released variable: its hierarchy and the level released.
    pub levels: HashMap<String, (Hierarchy, usize)>,
    /// Category labels of every generalised variable, in order.
    pub categories: &'a HashMap<String, Vec<String>>,
    /// Each file row's row in the person model, for what the file does
    /// not carry (a measure, a filter); see [`needs_model_rows`].
    pub model_rows: Option<Vec<usize>>,
}

/// Per dimension, the coordinate of its `Unknown` category, if it has one
/// (always the last).
fn unknown_categories(dimensions: &[Dimension]) -> Vec<Option<u32>> {
    dimensions
        .iter()
        .map(|d| {
            (d.categories.last().map(String::as_str) == Some(UNKNOWN))
                .then(|| d.categories.len() as u32 - 1)
        })
        .collect()
}

/// The file a model is read from, for errors.
fn model_file(model: TableModel) -> &'static str {
    match model {
        TableModel::Person => koppel_contract::files::linked::PERSON_MODEL_FILE,
        TableModel::Organisation => koppel_contract::files::linked::ORGANISATION_MODEL_FILE,
    }
}

fn col<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef, ExportError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ExportError::Column {
            column: name.into(),
            message: format!("table {table} uses it, but the model has no such column"),
        })
}

/// Whether the person file carries a measure exactly (released as a
/// number, as linked): the table then sums the file's values.
fn carried_exactly(file: &RecordBatch, column: &str) -> bool {
    file.column_by_name(column)
        .is_some_and(|a| a.data_type().is_numeric())
}

/// Whether the person file shows a flag (released, not withheld): a table
/// then selects on the released value.
fn carried_flag(file: &PersonFile<'_>, column: &str) -> bool {
    let shown = file
        .levels
        .get(column)
        .is_some_and(|(h, level)| level + 1 < h.levels());
    shown
        && file.batch.column_by_name(column).is_some_and(|a| {
            matches!(
                a.data_type(),
                DataType::Boolean | DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            )
        })
}

/// Whether any person table reads the model for what the file does not
/// carry, so that file rows must be matched with model rows.
pub fn needs_model_rows(specs: &[TableSpec], file: &PersonFile<'_>) -> bool {
    specs
        .iter()
        .filter(|s| s.model == TableModel::Person)
        .any(|s| {
            s.only_where
                .as_ref()
                .is_some_and(|f| !carried_flag(file, f))
                || s.measures
                    .iter()
                    .any(|m| !carried_exactly(file.batch, m.column()))
        })
}

/// Tabulates, protects and lays out every declared table: each set of
/// tables that share cells together.
pub fn release_tables(
    specs: &[TableSpec],
    people: &RecordBatch,
    orgs: &RecordBatch,
    file: &PersonFile<'_>,
    organisations: &OrganisationRelease,
    rules: &TableRules,
) -> Result<Vec<ReleasedTable>, ExportError> {
    let mut inputs = Vec::with_capacity(specs.len());
    let mut facts = Vec::with_capacity(specs.len());
    for spec in specs {
        let (input, f) = match spec.model {
            TableModel::Person => person_table(spec, people, file, rules)?,
            TableModel::Organisation => organisation_table(spec, orgs, organisations, rules)?,
        };
        inputs.push(input);
        facts.push(f);
    }
    let protected = protect_linked(&inputs, rules).map_err(|source| {
        let table = match &source {
            crate::tables::TableError::Unprotected { table, .. } => table.clone(),
            _ => specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        ExportError::Table {
            table,
            source: Box::new(source),
        }
    })?;
    specs
        .iter()
        .zip(protected)
        .zip(facts)
        .map(|((spec, table), facts)| released(spec, table, facts))
        .collect()
}

/// What tabulation counted, for the disclosure report.
struct Facts {
    rows_from: String,
    rows_tabulated: u64,
    rows_without_category: u64,
}

fn released(
    spec: &TableSpec,
    table: ProtectedTable,
    facts: Facts,
) -> Result<ReleasedTable, ExportError> {
    let batch = lay_out(spec, &table)?;
    let mut status = BTreeMap::new();
    for cell in &table.cells {
        *status.entry(cell.status.code().to_owned()).or_insert(0u64) += 1;
    }
    let quantity = |q: usize| {
        if q == 0 {
            spec.model.count_column().to_owned()
        } else {
            format!("{}_sum", table.measures[q - 1].name)
        }
    };
    let public = (0..table.public.len())
        .filter(|&q| table.public[q])
        .map(quantity)
        .collect();
    let with_file: Vec<String> = (0..table.public.len())
        .filter(|&q| !table.public[q])
        .map(quantity)
        .collect();
    let (with_person_file, with_organisation_file) = match spec.model {
        TableModel::Person => (with_file, Vec::new()),
        TableModel::Organisation => (Vec::new(), with_file),
    };
    Ok(ReleasedTable {
        categories: table
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), d.categories.clone()))
            .collect(),
        disclosure: TableDisclosure {
            name: spec.name.clone(),
            label: spec.label.clone(),
            model: spec.model,
            rows_from: facts.rows_from,
            dimensions: spec.dimensions.iter().map(|d| d.column.clone()).collect(),
            measures: table.measures.iter().map(|m| m.name.clone()).collect(),
            rows_tabulated: facts.rows_tabulated,
            rows_without_category: facts.rows_without_category,
            cells: table.cells.len() as u64,
            status,
            public,
            audited_with_person_file: with_person_file,
            audited_with_organisation_file: with_organisation_file,
            max_per_contributor: table
                .measures
                .iter()
                .filter_map(|m| m.max_per_row.map(|x| (m.name.clone(), x)))
                .collect(),
            ratio_bound: table.ratio.map(|r| RatioBoundReport {
                numerator: table.measures[r.numerator].name.clone(),
                denominator: table.measures[r.denominator].name.clone(),
                factor: r.max,
            }),
            linked_with: table.linked_with.clone(),
            audit: table.audit.clone(),
        },
        batch,
    })
}

/// A dimension's categories and each row's code (the `Unknown` category
/// for a null, appended when some row has one).
fn categorise(
    name: &str,
    values: &[Option<Atom>],
    order: Option<&Vec<String>>,
) -> Result<(Vec<String>, Vec<u32>), ExportError> {
    let g = generalise(name, values, &Hierarchy::Categorical, None)?;
    let level = g.level(0);
    let (mut labels, mut codes) = match order {
        // The hierarchy's own order (age bands ascending), not the
        // labels' sort order; a label it does not list goes last.
        Some(order) => {
            let mut labels = order.clone();
            let mut index: HashMap<String, u32> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i as u32))
                .collect();
            let mut map = Vec::with_capacity(level.labels.len());
            for l in &level.labels {
                let next = labels.len() as u32;
                let code = *index.entry(l.clone()).or_insert(next);
                if code == next {
                    labels.push(l.clone());
                }
                map.push(code);
            }
            let codes = level
                .codes
                .iter()
                .map(|&c| {
                    if c == NULL_CODE {
                        NULL_CODE
                    } else {
                        map[c as usize]
                    }
                })
                .collect();
            (labels, codes)
        }
        None => (level.labels, level.codes),
    };
    if codes.contains(&NULL_CODE) {
        let unknown = labels.len() as u32;
        labels.push(UNKNOWN.into());
        for c in codes.iter_mut().filter(|c| **c == NULL_CODE) {
            *c = unknown;
        }
    }
    Ok((labels, codes))
}

/// The interval a released label tells of a number: its class, band or
/// step at the released level; `None` when the label says nothing of it.
fn released_interval(h: &Hierarchy, level: usize, v: f64, integer: bool) -> Option<(f64, f64)> {
    if level + 1 >= h.levels() {
        return None;
    }
    let whole = |hi: f64| if integer { hi - 1.0 } else { hi };
    match h {
        Hierarchy::Classes { levels } => {
            let bounds = &levels[level];
            Some(match bounds.iter().rposition(|b| *b as f64 <= v) {
                None => (f64::NEG_INFINITY, whole(bounds[0] as f64)),
                Some(i) if i + 1 == bounds.len() => (bounds[i] as f64, f64::INFINITY),
                Some(i) => (bounds[i] as f64, whole(bounds[i + 1] as f64)),
            })
        }
        Hierarchy::Bands { widths } if level > 0 => {
            let w = widths[level - 1] as f64;
            let lo = (v / w).floor() * w;
            Some((lo, whole(lo + w)))
        }
        Hierarchy::Steps { widths } if level > 0 => {
            let w = widths[level - 1];
            let lo = (v / w).floor() * w;
            Some((lo, lo + w))
        }
        Hierarchy::Bands { .. } | Hierarchy::Steps { .. } | Hierarchy::Categorical => Some((v, v)),
        _ => None,
    }
}

/// A contributor of a person table: the research ID, hashed to 8 bytes.
fn contributor_of(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A person table: the released person file's rows, by their released
/// values.
fn person_table(
    spec: &TableSpec,
    people: &RecordBatch,
    file: &PersonFile<'_>,
    rules: &TableRules,
) -> Result<(TableInput, Facts), ExportError> {
    let batch = file.batch;
    let rows = batch.num_rows();
    let model_file = model_file(TableModel::Person);
    let model_row = |what: &str| {
        file.model_rows.as_ref().ok_or_else(|| ExportError::Column {
            column: what.into(),
            message: format!(
                "table {}: not in the person file, and its rows were not matched with the model",
                spec.name
            ),
        })
    };
    // Dimensions, as released.
    let mut dimensions = Vec::new();
    let mut codes = Vec::new();
    let mut keys = Vec::new();
    for d in &spec.dimensions {
        let array = batch
            .column_by_name(&d.column)
            .ok_or_else(|| ExportError::Column {
                column: d.column.clone(),
                message: format!(
                    "table {}: a person table counts the person file's rows, and the file has no such column",
                    spec.name
                ),
            })?;
        let values = atoms(&d.column, array.as_ref())?;
        let (categories, c) = categorise(&d.column, &values, file.categories.get(&d.column))?;
        dimensions.push(Dimension {
            sensitive: sensitive_categories(rules, &d.column, &categories),
            name: d.column.clone(),
            categories,
        });
        codes.push(c);
        keys.push(d.column.clone());
    }
    // Which rows: as the file shows the flag, or (not in the file) as the
    // model has it — then nobody reading the file can tell.
    let mut hidden = false;
    let selected: Vec<bool> = match &spec.only_where {
        None => vec![true; rows],
        Some(flag) if carried_flag(file, flag) => {
            let array = batch.column_by_name(flag).expect("carried");
            match array.data_type() {
                DataType::Boolean => {
                    let a = array.as_boolean();
                    (0..rows).map(|r| a.is_valid(r) && a.value(r)).collect()
                }
                _ => {
                    let a = cast(array, &DataType::Utf8)
                        .map_err(ExportError::arrow(format!("table {}: {flag}", spec.name)))?;
                    let a = a.as_string::<i32>();
                    (0..rows)
                        .map(|r| a.is_valid(r) && a.value(r) == "true")
                        .collect()
                }
            }
        }
        Some(flag) => {
            hidden = true;
            col(people, &spec.name, flag)?;
            let values = boolean_column(people, model_file, flag)?;
            let model_rows = model_row(flag)?;
            model_rows
                .iter()
                .map(|&m| values.is_valid(m) && values.value(m))
                .collect()
        }
    };
    // Measures: the file's values where it carries them exactly, else the
    // model's for the same rows, with what the file tells of each row.
    let mut measures = Vec::new();
    let mut values: Vec<Vec<f64>> = Vec::new();
    let mut bounds: Vec<Vec<(f64, f64)>> = Vec::new();
    for m in &spec.measures {
        let name = m.column();
        let max = m.maximum(TableModel::Person);
        let cap = max.unwrap_or(f64::INFINITY);
        measures.push(Measure {
            name: name.to_owned(),
            max_per_row: max,
        });
        if carried_exactly(batch, name) {
            let a = cast(
                batch.column_by_name(name).expect("carried"),
                &DataType::Float64,
            )
            .map_err(ExportError::arrow(format!(
                "table {}: measure {name}",
                spec.name
            )))?;
            let a = a.as_primitive::<Float64Type>();
            let v: Vec<f64> = (0..rows)
                .map(|r| {
                    if a.is_valid(r) {
                        a.value(r).max(0.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            bounds.push(v.iter().map(|&x| (x, x)).collect());
            values.push(v);
            continue;
        }
        col(people, &spec.name, name)?;
        let model = numeric_column(people, model_file, name)?;
        let integer = model.data_type().is_integer();
        let model = cast(model, &DataType::Float64).map_err(ExportError::arrow(format!(
            "table {}: measure {name}",
            spec.name
        )))?;
        let model = model.as_primitive::<Float64Type>();
        let model_rows = model_row(name)?;
        let released = batch.column_by_name(name);
        let level = file.levels.get(name);
        let zero = zero_flags(file, name)?;
        let mut v = Vec::with_capacity(rows);
        let mut b = Vec::with_capacity(rows);
        for (r, &m) in model_rows.iter().enumerate() {
            let x = if model.is_valid(m) {
                model.value(m).max(0.0)
            } else {
                0.0
            };
            let shown = released.is_some_and(|a| a.is_valid(r));
            let interval = match (shown, level) {
                (true, Some((h, level))) if model.is_valid(m) => {
                    released_interval(h, *level, model.value(m), integer)
                }
                _ => None,
            };
            let (lo, hi) = if zero.iter().any(|z| z[r]) {
                (0.0, 0.0)
            } else {
                interval.unwrap_or((0.0, cap))
            };
            // Never narrower than the truth, never below zero.
            b.push((lo.max(0.0).min(x), hi.min(cap).max(x)));
            v.push(x);
        }
        values.push(v);
        bounds.push(b);
    }
    let ids = batch
        .column_by_name("person_id")
        .ok_or_else(|| ExportError::Column {
            column: "person_id".into(),
            message: "the person file has no research IDs".into(),
        })?;
    let ids = cast(ids, &DataType::Utf8).map_err(ExportError::arrow("person_id"))?;
    let ids = ids.as_string::<i32>();
    let mut contributions = Vec::new();
    let mut known = Vec::with_capacity(rows);
    let mut without_category = 0u64;
    let unknown = unknown_categories(&dimensions);
    for r in 0..rows {
        let coords: Vec<u32> = codes.iter().map(|c| c[r]).collect();
        // What a reader of the file knows of the row: which cell it is in,
        // whether it is in the table (unless the selection is hidden), and
        // its measures' classes.
        if hidden || selected[r] {
            let mut row_bounds = vec![if hidden { (0.0, 1.0) } else { (1.0, 1.0) }];
            for b in &bounds {
                let (lo, hi) = b[r];
                row_bounds.push(if hidden { (0.0, hi) } else { (lo, hi) });
            }
            known.push(KnownRow {
                coords: coords.clone(),
                bounds: row_bounds,
            });
        }
        if !selected[r] {
            continue;
        }
        if coords.iter().zip(&unknown).any(|(c, u)| Some(*c) == *u) {
            without_category += 1;
        }
        contributions.push(Contribution {
            contributor: contributor_of(ids.value(r)),
            values: values.iter().map(|v| v[r]).collect(),
            coords,
        });
    }
    let rows_tabulated = contributions.len() as u64;
    let ratio = ratio_bound(spec, &measures)?;
    let population = format!(
        "person file|{}",
        spec.only_where.as_deref().unwrap_or("all rows")
    );
    Ok((
        TableInput {
            name: spec.name.clone(),
            dimensions,
            measures,
            ratio,
            contributions,
            counted: Vec::new(),
            known: Some(known),
            link: Some(Link {
                population,
                dimensions: keys,
            }),
        },
        Facts {
            rows_from: koppel_contract::files::release::PERSON_FILE.into(),
            rows_tabulated,
            rows_without_category: without_category,
        },
    ))
}

/// Rows whose released flags say a measure is zero: no claims of a care
/// type (`ggz_any` false) means no costs or claims of it; not insured
/// with IZZ (`izz_insured` false) means none at all. A reader of the file
/// knows those rows contribute nothing.
fn zero_flags(file: &PersonFile<'_>, measure: &str) -> Result<Vec<Vec<bool>>, ExportError> {
    let care = measure
        .strip_suffix("_cost_eur")
        .or_else(|| measure.strip_suffix("_claims"));
    let Some(care) = care else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for flag in [format!("{care}_any"), "izz_insured".to_owned()] {
        let Some(array) = file.batch.column_by_name(&flag) else {
            continue;
        };
        let text = cast(array, &DataType::Utf8).map_err(ExportError::arrow(flag.clone()))?;
        let text = text.as_string::<i32>();
        out.push(
            (0..text.len())
                .map(|r| text.is_valid(r) && text.value(r) == "false")
                .collect(),
        );
    }
    Ok(out)
}

fn sensitive_categories(rules: &TableRules, column: &str, categories: &[String]) -> Vec<u32> {
    rules
        .sensitive
        .iter()
        .filter(|s| s.column == column)
        .flat_map(|s| {
            categories
                .iter()
                .enumerate()
                .filter(|(_, c)| s.categories.contains(c))
                .map(|(i, _)| i as u32)
        })
        .collect()
}

fn ratio_bound(spec: &TableSpec, measures: &[Measure]) -> Result<Option<RatioBound>, ExportError> {
    let Some(ratio) = &spec.ratio else {
        return Ok(None);
    };
    let n = measures.iter().position(|m| m.name == ratio.numerator);
    let d = measures.iter().position(|m| m.name == ratio.denominator);
    let (Some(n), Some(d)) = (n, d) else {
        return Err(ExportError::Column {
            column: ratio.name.clone(),
            message: "ratio of measures the table does not have".into(),
        });
    };
    Ok(ratio.max.map(|max| RatioBound {
        numerator: n,
        denominator: d,
        max: max / ratio.scale,
    }))
}

/// An organisation table: organisation-years of the model, audited with
/// what the organisation file tells of each of them.
fn organisation_table(
    spec: &TableSpec,
    orgs: &RecordBatch,
    organisations: &OrganisationRelease,
    rules: &TableRules,
) -> Result<(TableInput, Facts), ExportError> {
    let rows = orgs.num_rows();
    let file = model_file(TableModel::Organisation);
    let mut include = vec![true; rows];
    if let Some(only) = &spec.only_where {
        col(orgs, &spec.name, only)?;
        let flag = boolean_column(orgs, file, only)?;
        for (r, inc) in include.iter_mut().enumerate() {
            *inc = flag.is_valid(r) && flag.value(r);
        }
    }
    let mut dimensions = Vec::new();
    let mut codes = Vec::new();
    let mut keys = Vec::new();
    for d in &spec.dimensions {
        col(orgs, &spec.name, &d.column)?;
        let values = model_atoms(orgs, file, &d.column)?;
        let hierarchy = d.hierarchy.clone().unwrap_or(Hierarchy::Categorical);
        let g = generalise(&d.column, &values, &hierarchy, None)?;
        let level = g.level(d.level);
        let mut categories = level.labels.clone();
        let mut c = level.codes;
        if c.contains(&NULL_CODE) {
            let unknown = categories.len() as u32;
            categories.push(UNKNOWN.into());
            for x in c.iter_mut().filter(|x| **x == NULL_CODE) {
                *x = unknown;
            }
        }
        dimensions.push(Dimension {
            sensitive: sensitive_categories(rules, &d.column, &categories),
            name: d.column.clone(),
            categories,
        });
        codes.push(c);
        keys.push(
            serde_json::to_string(&(&d.column, &hierarchy, d.level)).expect("dimensions serialise"),
        );
    }
    let measures: Vec<Measure> = spec
        .measures
        .iter()
        .map(|m| Measure {
            name: m.column().to_owned(),
            max_per_row: m.maximum(TableModel::Organisation),
        })
        .collect();
    let values: Vec<Float64Array> = spec
        .measures
        .iter()
        .map(|m| {
            let m = m.column();
            col(orgs, &spec.name, m)?;
            let a = cast(numeric_column(orgs, file, m)?, &DataType::Float64).map_err(
                ExportError::arrow(format!("table {}: measure {m}", spec.name)),
            )?;
            Ok(a.as_primitive::<Float64Type>().clone())
        })
        .collect::<Result<_, ExportError>>()?;
    let pseudonyms = pseudonym_column(orgs, file, "org_p2")?;
    let unknown = unknown_categories(&dimensions);
    let mut contributions = Vec::new();
    let mut without_category = 0u64;
    for r in (0..rows).filter(|r| include[*r]) {
        let coords: Vec<u32> = codes.iter().map(|c| c[r]).collect();
        if coords.iter().zip(&unknown).any(|(c, u)| Some(*c) == *u) {
            without_category += 1;
        }
        // Stage-2 pseudonyms are uniformly random: eight bytes identify
        // an organisation within a table.
        let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = pseudonyms.keys[r];
        contributions.push(Contribution {
            coords,
            contributor: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
            // An unknown magnitude contributes nothing to the sum.
            values: values
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
    let rows_tabulated = contributions.len() as u64;
    let ratio = ratio_bound(spec, &measures)?;
    let known = organisation_known(
        spec,
        organisations,
        &OrganisationRows {
            dimensions: &dimensions,
            codes: &codes,
            measures: &measures,
            values: &values,
            include: &include,
        },
    )?;
    Ok((
        TableInput {
            name: spec.name.clone(),
            dimensions,
            measures,
            ratio,
            contributions,
            counted: Vec::new(),
            known: Some(known),
            link: Some(Link {
                population: format!(
                    "organisation model|{}",
                    spec.only_where.as_deref().unwrap_or("all rows")
                ),
                dimensions: keys,
            }),
        },
        Facts {
            rows_from: file.into(),
            rows_tabulated,
            rows_without_category: without_category,
        },
    ))
}

/// An organisation table's rows as tabulated: per dimension its
/// categories and each model row's code, the measures and their values,
/// and which rows the table selects.
struct OrganisationRows<'a> {
    dimensions: &'a [Dimension],
    codes: &'a [Vec<u32>],
    measures: &'a [Measure],
    values: &'a [Float64Array],
    include: &'a [bool],
}

/// What a reader of the organisation file knows of an organisation
/// table's rows (docs/disclosure-control.md, "Tables"): every released
/// row, in its cell where the file tells which (else in any cell it could
/// be in), counted once where the file tells whether the table selects
/// it, and per measure what the file publishes of it — exact, within half
/// a rounding step, within its class, narrowed by a published ratio — or
/// nothing (0 to the measure's maximum) where the file leaves it out. Rows
/// the file leaves out (below `min_persons`, as many as the report says)
/// may be in any cell their size allows, with nothing known of them.
fn organisation_known(
    spec: &TableSpec,
    organisations: &OrganisationRelease,
    t: &OrganisationRows<'_>,
) -> Result<Vec<KnownRow>, ExportError> {
    let rows = t.include.len();
    if organisations.disclosure.rows_in != rows as u64 {
        return Err(ExportError::Column {
            column: "org_p2".into(),
            message: format!(
                "table {}: the organisation file was made from another model",
                spec.name
            ),
        });
    }
    let in_file = organisations.in_file();
    let placed: Vec<Vec<bool>> = spec
        .dimensions
        .iter()
        .map(|d| {
            let hierarchy = d.hierarchy.clone().unwrap_or(Hierarchy::Categorical);
            Ok(organisations
                .told(&d.column)?
                .into_iter()
                .map(|told| places(told, &hierarchy, d.level))
                .collect())
        })
        .collect::<Result<_, ExportError>>()?;
    let selection = spec
        .only_where
        .as_ref()
        .map(|flag| organisations.told(flag))
        .transpose()?;
    let told: Vec<Vec<Told>> = t
        .measures
        .iter()
        .map(|m| organisations.told(&m.name))
        .collect::<Result<_, _>>()?;
    let w = t.measures.len() + 1;
    let mut known = Vec::new();
    // Rows the reader cannot place: per set of cells they may be in (the
    // candidate categories per dimension), their upper bounds added up.
    let mut open: BTreeMap<Vec<Vec<u32>>, Vec<f64>> = BTreeMap::new();
    for r in (0..rows).filter(|&r| in_file[r]) {
        // A flag the file shows (or shows null: not selected) tells
        // whether the row is in the table; otherwise it may be.
        let shown = selection
            .as_ref()
            .is_none_or(|s| matches!(s[r], Told::Exact | Told::Null));
        if shown && !t.include[r] {
            continue;
        }
        let mut bounds = Vec::with_capacity(w);
        bounds.push(if shown { (1.0, 1.0) } else { (0.0, 1.0) });
        for (q, m) in t.measures.iter().enumerate() {
            let cap = m.max_per_row.unwrap_or(f64::INFINITY);
            // The table sums a null as 0, and nothing below 0.
            let (lo, hi) = match told[q][r] {
                Told::Null => (0.0, 0.0),
                Told::Number { lo, hi, .. } => (lo.max(0.0), hi.max(0.0).min(cap)),
                Told::Nothing | Told::Exact => (0.0, cap),
            };
            let lo = if shown { lo } else { 0.0 };
            let x = if t.include[r] && t.values[q].is_valid(r) {
                t.values[q].value(r).max(0.0)
            } else {
                0.0
            };
            // Never narrower than the truth.
            bounds.push((lo.min(x), hi.max(x)));
        }
        let coords: Vec<u32> = t.codes.iter().map(|c| c[r]).collect();
        if placed.iter().all(|p| p[r]) {
            known.push(KnownRow { coords, bounds });
            continue;
        }
        let cells = (0..coords.len())
            .map(|i| {
                if placed[i][r] {
                    vec![coords[i]]
                } else {
                    (0..t.dimensions[i].categories.len() as u32).collect()
                }
            })
            .collect();
        let slot = open.entry(cells).or_insert_with(|| vec![0.0; w]);
        for (s, (_, hi)) in slot.iter_mut().zip(&bounds) {
            *s += hi;
        }
    }
    let left_out = organisations.disclosure.rows_left_out;
    if left_out > 0 {
        let cells = spec
            .dimensions
            .iter()
            .zip(t.dimensions)
            .map(|(d, dim)| small_categories(d, dim, organisations.disclosure.min_persons))
            .collect::<Result<_, _>>()?;
        let n = left_out as f64;
        let mut upper = vec![n];
        upper.extend(
            t.measures
                .iter()
                .map(|m| m.max_per_row.map_or(f64::INFINITY, |max| max * n)),
        );
        let slot = open.entry(cells).or_insert_with(|| vec![0.0; w]);
        for (s, hi) in slot.iter_mut().zip(upper) {
            *s += hi;
        }
    }
    for (cells, upper) in open {
        if cells.iter().any(Vec::is_empty) {
            continue;
        }
        let bounds: Vec<(f64, f64)> = upper.iter().map(|&hi| (0.0, hi)).collect();
        let mut choice = vec![0usize; cells.len()];
        'cells: loop {
            known.push(KnownRow {
                coords: choice.iter().zip(&cells).map(|(&c, cs)| cs[c]).collect(),
                bounds: bounds.clone(),
            });
            for i in (0..cells.len()).rev() {
                choice[i] += 1;
                if choice[i] < cells[i].len() {
                    continue 'cells;
                }
                choice[i] = 0;
            }
            break;
        }
    }
    Ok(known)
}

/// Whether what the file tells of a row's value places the row in one
/// category of a dimension: an exact value or a null does; an interval
/// does where no class bound of the dimension's level falls inside it.
fn places(told: Told, hierarchy: &Hierarchy, level: usize) -> bool {
    match told {
        Told::Nothing => false,
        Told::Null | Told::Exact => true,
        Told::Number { lo, hi, .. } if lo == hi => true,
        // The last level: every row in `Unknown`.
        _ if level + 1 >= hierarchy.levels() => true,
        Told::Number {
            lo,
            hi,
            hi_excluded,
        } => match hierarchy {
            Hierarchy::Classes { levels } => !levels[level].iter().any(|&b| {
                let b = b as f64;
                lo < b && (b < hi || (b == hi && !hi_excluded))
            }),
            // Bands and steps of an interval: not worked out, so the row
            // may be in any category.
            _ => false,
        },
    }
}

/// The categories of a dimension a row the file leaves out may be in: on
/// `headcount`, those of a size below `min_persons` (or unknown); on any
/// other column, every one.
fn small_categories(
    d: &crate::config::TableDimension,
    dim: &Dimension,
    min_persons: u64,
) -> Result<Vec<u32>, ExportError> {
    let all = (0..dim.categories.len() as u32).collect();
    // A bound on the work; beyond it, every category.
    if d.column != HEADCOUNT || min_persons > 100_000 {
        return Ok(all);
    }
    let hierarchy = d.hierarchy.clone().unwrap_or(Hierarchy::Categorical);
    let sizes: Vec<Option<Atom>> = (0..min_persons as i64)
        .map(|h| Some(Atom::Int(h)))
        .collect();
    let labels = generalise(&d.column, &sizes, &hierarchy, None)?.level(d.level);
    let mut out: Vec<u32> = labels
        .codes
        .iter()
        .filter(|&&c| c != NULL_CODE)
        .filter_map(|&c| {
            let label = &labels.labels[c as usize];
            dim.categories.iter().position(|x| x == label)
        })
        .map(|i| i as u32)
        .collect();
    if let Some(unknown) = dim.categories.iter().position(|c| c == UNKNOWN) {
        out.push(unknown as u32);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One row per cell: the dimension labels (`Total` for a margin), the
/// count of rows, each measure's sum, the ratio, and the status — `safe`,
/// `empty` or `suppressed`, never why. Suppressed cells keep their labels;
/// their numbers are null.
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
    let published = |c: &crate::tables::Cell| !c.status.is_suppressed();
    let counts: Int64Array = table
        .cells
        .iter()
        .map(|c| published(c).then_some(c.rows as i64))
        .collect();
    fields.push(Field::new(spec.model.count_column(), DataType::Int64, true));
    columns.push(Arc::new(counts));
    for (m, measure) in table.measures.iter().enumerate() {
        let sums: Float64Array = table
            .cells
            .iter()
            .map(|c| published(c).then_some(c.sums[m]))
            .collect();
        fields.push(Field::new(
            format!("{}_sum", measure.name),
            DataType::Float64,
            true,
        ));
        columns.push(Arc::new(sums));
    }
    if let Some(ratio) = &spec.ratio {
        let n = table
            .measures
            .iter()
            .position(|m| m.name == ratio.numerator);
        let d = table
            .measures
            .iter()
            .position(|m| m.name == ratio.denominator);
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
    let status: StringArray = table
        .cells
        .iter()
        .map(|c| Some(c.status.released_code()))
        .collect();
    fields.push(Field::new("status", DataType::Utf8, false));
    columns.push(Arc::new(status));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(ExportError::arrow(
        format!("laying out table {}", spec.name),
    ))
}

/// Whether the model a table reads has every column it names (a person
/// table's dimensions are the person file's, checked when it is made).
pub fn check_columns(spec: &TableSpec, model: &RecordBatch) -> Result<(), ExportError> {
    if spec.model == TableModel::Organisation {
        for d in &spec.dimensions {
            col(model, &spec.name, &d.column)?;
        }
    }
    for m in &spec.measures {
        col(model, &spec.name, m.column())?;
    }
    if let Some(o) = &spec.only_where {
        col(model, &spec.name, o)?;
    }
    Ok(())
}

/// What the release's copy of the linkage report went through.
#[derive(Debug, Clone, Serialize)]
pub struct LinkageDisclosure {
    /// Counts from 1 to below this are withheld (null).
    pub threshold: u64,
    /// Every other count outside the coverage table is rounded to a
    /// multiple of this, so that no withheld count is the difference of
    /// two published ones.
    pub rounded_to: u64,
    /// Counts outside the coverage table.
    pub counts: u64,
    pub counts_withheld: u64,
    /// Coverage cells (year × sector × age band) and their counts.
    pub coverage_cells: u64,
    pub coverage_counts: u64,
    /// Coverage counts suppressed by the table rules.
    pub coverage_suppressed: u64,
    /// The sources' overlap per year is not released (the TTP keeps it).
    pub overlap_withheld: bool,
    /// The coverage tables' audit.
    pub audit: AuditReport,
}

/// Keys whose numbers are years, not counts.
const YEAR_KEYS: &[&str] = &["year", "payroll_years", "model_years"];

/// The coverage counts of a linkage report cell, in order.
const COVERAGE: [&str; 5] = [
    "payroll_persons",
    "absence_persons",
    "izz_insured_persons",
    "care_use_persons",
    "survey_persons",
];

/// The release's copy of the linkage report (`linkage-report.json` in the
/// linking output, which stays with the TTP): its counts through the
/// table rules. The coverage per year, sector and age band is protected as
/// three linked tables — absence, insurance and care use (a sensitive
/// dimension: class disclosure), survey — over the payroll persons they
/// share; every other count from 1 to below the threshold is withheld and
/// every other count rounded to a multiple of the threshold; the overlap
/// of the sources is left out. Years and texts stay as they are.
pub fn protect_linkage_report(
    report: &serde_json::Value,
    rules: &TableRules,
) -> Result<(serde_json::Value, LinkageDisclosure), crate::tables::TableError> {
    let mut out = report.clone();
    let mut disclosure = LinkageDisclosure {
        threshold: rules.threshold,
        rounded_to: rules.threshold,
        counts: 0,
        counts_withheld: 0,
        coverage_cells: 0,
        coverage_counts: 0,
        coverage_suppressed: 0,
        overlap_withheld: false,
        audit: AuditReport::default(),
    };
    let coverage = match &mut out {
        serde_json::Value::Object(map) => {
            if map.remove("overlap").is_some() {
                disclosure.overlap_withheld = true;
            }
            map.remove("coverage")
        }
        _ => None,
    };
    protect_counts(&mut out, None, rules, &mut disclosure);
    if let (Some(coverage), serde_json::Value::Object(map)) = (coverage, &mut out) {
        let protected = protect_coverage(&coverage, rules, &mut disclosure)?;
        map.insert("coverage".into(), protected);
    }
    if let serde_json::Value::Object(map) = &mut out {
        map.insert(
            "disclosure_control".into(),
            serde_json::Value::String(format!(
                "The release's copy of the linkage report; the full report stays with the TTP. Coverage counts follow the table rules (threshold {t}, secondary suppression, audit; a zero beside care use in a group is unsafe): null where suppressed. Every other count from 1 to {below} is null, every other count rounded to a multiple of {t}. The overlap of the sources is not released.",
                t = rules.threshold,
                below = rules.threshold.saturating_sub(1),
            )),
        );
    }
    Ok((out, disclosure))
}

fn protect_counts(
    value: &mut serde_json::Value,
    key: Option<&str>,
    rules: &TableRules,
    disclosure: &mut LinkageDisclosure,
) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if key.is_some_and(|k| YEAR_KEYS.contains(&k)) {
                return;
            }
            disclosure.counts += 1;
            let v = n.as_f64().unwrap_or(f64::NAN);
            let base = rules.threshold.max(1) as f64;
            *value = if v == 0.0 {
                Value::from(0u64)
            } else if v.is_nan() || v.abs() < base {
                disclosure.counts_withheld += 1;
                Value::Null
            } else {
                let rounded = (v / base).round() * base;
                if rounded >= 0.0 && rounded <= u64::MAX as f64 {
                    Value::from(rounded as u64)
                } else {
                    Value::from(rounded as i64)
                }
            };
        }
        Value::Array(items) => {
            for item in items {
                protect_counts(item, key, rules, disclosure);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                protect_counts(v, Some(k.as_str()), rules, disclosure);
            }
        }
        Value::String(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// A coverage cell: year, sector, age band and its five counts.
type CoverageCell = (String, String, String, [u64; 5]);

/// The coverage cells as three linked tables, protected; back as cells.
fn protect_coverage(
    coverage: &serde_json::Value,
    rules: &TableRules,
    disclosure: &mut LinkageDisclosure,
) -> Result<serde_json::Value, crate::tables::TableError> {
    use serde_json::Value;
    // (year, sector, age band, counts) of every well-formed cell; a cell
    // of another shape is left out.
    let mut cells: Vec<CoverageCell> = Vec::new();
    for c in coverage.as_array().map(Vec::as_slice).unwrap_or_default() {
        let text = |k: &str| match c.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(year), Some(sector), Some(band)) =
            (text("year"), text("sector"), text("age_band"))
        else {
            continue;
        };
        let counts: Option<Vec<u64>> = COVERAGE
            .iter()
            .map(|k| c.get(*k).and_then(Value::as_u64))
            .collect();
        let Some(counts) = counts else { continue };
        let counts: [u64; 5] = counts.try_into().expect("five counts");
        let [payroll, absence, insured, care, survey] = counts;
        // The subsets nest (care use proves insurance); a report where
        // they do not is not protected as tables but left out.
        if absence > payroll || insured > payroll || care > insured || survey > payroll {
            continue;
        }
        cells.push((year, sector, band, counts));
    }
    disclosure.coverage_cells = cells.len() as u64;
    disclosure.coverage_counts = 5 * cells.len() as u64;
    let sorted = |mut v: Vec<String>| {
        v.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        v.dedup();
        v
    };
    let years = sorted(cells.iter().map(|c| c.0.clone()).collect());
    let sectors = sorted(cells.iter().map(|c| c.1.clone()).collect());
    let bands = sorted(cells.iter().map(|c| c.2.clone()).collect());
    let position =
        |list: &[String], v: &String| list.iter().position(|x| x == v).expect("a category") as u32;
    let dim = |name: &str, categories: Vec<String>, sensitive: Vec<u32>| Dimension {
        name: name.into(),
        categories,
        sensitive,
    };
    let flag = || vec!["no".to_owned(), "yes".to_owned()];
    // Per year — the release publishes no sum over years — three tables of
    // the year's payroll persons by sector and age band, sharing those
    // cells: absence (yes/no), insurance × care use (care use is the
    // sensitive category), survey (yes/no).
    let mut inputs = Vec::new();
    for year in &years {
        let (mut absence, mut insurance, mut survey) = (Vec::new(), Vec::new(), Vec::new());
        // Persons by count: each person lies in one cell of each table.
        let persons = |out: &mut Vec<CountedUnits>, coords: Vec<u32>, units: u64| {
            if units > 0 {
                out.push(CountedUnits { coords, units });
            }
        };
        for (_, sector, band, [payroll, absent, insured, care, surveyed]) in
            cells.iter().filter(|c| c.0 == *year)
        {
            let base = [position(&sectors, sector), position(&bands, band)];
            let with = |extra: &[u32]| base.iter().chain(extra).copied().collect::<Vec<u32>>();
            persons(&mut absence, with(&[1]), *absent);
            persons(&mut absence, with(&[0]), payroll - absent);
            persons(&mut insurance, with(&[1, 1]), *care);
            persons(&mut insurance, with(&[1, 0]), insured - care);
            persons(&mut insurance, with(&[0, 0]), payroll - insured);
            persons(&mut survey, with(&[1]), *surveyed);
            persons(&mut survey, with(&[0]), payroll - surveyed);
        }
        let table = |name: &str, extra: Vec<Dimension>, counted| {
            let keys: Vec<String> = ["sector", "age_band"]
                .into_iter()
                .map(str::to_owned)
                .chain(extra.iter().map(|d| d.name.clone()))
                .collect();
            let mut dimensions = vec![
                dim("sector", sectors.clone(), vec![]),
                dim("age_band", bands.clone(), vec![]),
            ];
            dimensions.extend(extra);
            TableInput {
                name: format!("coverage {year} {name}"),
                dimensions,
                measures: vec![],
                ratio: None,
                contributions: Vec::new(),
                counted,
                known: None,
                link: Some(Link {
                    population: format!("linkage coverage: payroll persons {year}"),
                    dimensions: keys,
                }),
            }
        };
        inputs.push(table(
            "absence",
            vec![dim("absence", flag(), vec![])],
            absence,
        ));
        inputs.push(table(
            "insurance",
            vec![
                dim("insured", flag(), vec![]),
                dim("care_use", flag(), vec![1]),
            ],
            insurance,
        ));
        inputs.push(table("survey", vec![dim("survey", flag(), vec![])], survey));
    }
    let protected = protect_linked(&inputs, rules)?;
    // Each year's set was audited on its own (its tables carry the same
    // report): the figures added up.
    for set in protected.chunks(3) {
        let a = &set[0].audit;
        let d = &mut disclosure.audit;
        d.cells_checked += a.cells_checked;
        d.proven_by_hypercube += a.proven_by_hypercube;
        d.lps_solved += a.lps_solved;
        d.components += a.components;
        d.shared_cells += a.shared_cells;
        d.tightest_protection = match (d.tightest_protection, a.tightest_protection) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        d.failures.extend(a.failures.iter().cloned());
    }
    let value = |t: &ProtectedTable, coords: &[Option<u32>], counted: &mut u64| {
        let cell = t
            .cells
            .iter()
            .find(|c| c.coords == coords)
            .expect("a cell of the table");
        if cell.status.is_suppressed() {
            *counted += 1;
            Value::Null
        } else {
            Value::from(cell.rows)
        }
    };
    let mut out = Vec::with_capacity(cells.len());
    let mut suppressed = 0u64;
    for (year, sector, band, _) in &cells {
        let y = 3 * years.iter().position(|x| x == year).expect("a year");
        let base = [
            Some(position(&sectors, sector)),
            Some(position(&bands, band)),
        ];
        let at = |extra: &[Option<u32>]| base.iter().chain(extra).copied().collect::<Vec<_>>();
        let mut cell = serde_json::Map::new();
        cell.insert(
            "year".into(),
            year.parse::<i64>()
                .map_or(Value::from(year.clone()), Value::from),
        );
        cell.insert("sector".into(), Value::from(sector.clone()));
        cell.insert("age_band".into(), Value::from(band.clone()));
        let counts = [
            value(&protected[y], &at(&[None]), &mut suppressed),
            value(&protected[y], &at(&[Some(1)]), &mut suppressed),
            value(&protected[y + 1], &at(&[Some(1), None]), &mut suppressed),
            value(&protected[y + 1], &at(&[None, Some(1)]), &mut suppressed),
            value(&protected[y + 2], &at(&[Some(1)]), &mut suppressed),
        ];
        for (k, v) in COVERAGE.iter().zip(counts) {
            cell.insert((*k).into(), v);
        }
        out.push(Value::Object(cell));
    }
    disclosure.coverage_suppressed = suppressed;
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;
    use crate::config::{Banding, OrganisationRules, TableDimension};
    use crate::error::fixture::{Models, assert_names, pseudonyms};
    use crate::organisation::tests::{model_of, research};
    use crate::organisation::{STATUS_FEW, release_organisations};
    use crate::tables::{AuditMethod, CellStatus, audit, protect};

    fn is_type(found: DataType) -> impl Fn(&ExportError) -> bool {
        move |e| matches!(e, ExportError::ModelColumnType { found: f, .. } if *f == found)
    }

    #[test]
    fn only_where_of_another_type_is_an_error() {
        // The fixture's person table selects on `on_payroll`, which the
        // person file does not carry: it is read from the model.
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

    #[test]
    fn organisations_of_another_width_are_an_error() {
        let mut models = Models::valid();
        let config = Models::config();
        // The file from the valid model: the table checks its own input.
        let file = release_organisations(
            &Models::batch(&models.organisation),
            &config.organisation,
            &research(),
        )
        .unwrap();
        Models::set(
            &mut models.organisation,
            "org_p2",
            pseudonyms(&Models::org_keys(), 16),
        );
        let spec = config
            .tables
            .iter()
            .find(|t| t.model == TableModel::Organisation)
            .unwrap();
        assert_names(
            organisation_table(
                spec,
                &Models::batch(&models.organisation),
                &file,
                &config.table_rules,
            )
            .map(|_| ()),
            |e| matches!(e, ExportError::PseudonymWidth { found: 16, .. }),
            koppel_contract::files::linked::ORGANISATION_MODEL_FILE,
            "org_p2",
        );
    }

    fn floats(v: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    fn ints(v: &[i64]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    fn texts(v: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    fn org_spec(dimensions: Vec<TableDimension>, measures: &[&str]) -> TableSpec {
        TableSpec {
            name: "t".into(),
            label: String::new(),
            model: TableModel::Organisation,
            only_where: None,
            dimensions,
            measures: measures.iter().map(|&m| m.into()).collect(),
            ratio: None,
        }
    }

    fn dim(column: &str, classes: Option<Vec<i64>>) -> TableDimension {
        TableDimension {
            column: column.into(),
            hierarchy: classes.map(|c| Hierarchy::Classes { levels: vec![c] }),
            level: 0,
        }
    }

    /// Three small organisations in GGZ whose absence the file withholds
    /// (fewer than k persons) and twenty in VVT whose absence it rounds to
    /// 100. A table of absence days by sector that suppresses GGZ and VVT
    /// and publishes the total gives GGZ as the total minus VVT — and VVT
    /// lies within ±1,000 days by the file's rounded figures: GGZ's 6,000
    /// days within [5,000, 7,000], inside the ±30% required. The audit with
    /// the file must see that and protect GGZ otherwise.
    #[test]
    fn an_organisation_table_is_audited_with_the_files_rounded_figures() {
        let n = 23;
        let sectors: Vec<&str> = (0..n).map(|i| if i < 3 { "GGZ" } else { "VVT" }).collect();
        let model = model_of(
            n,
            vec![
                ("sector", texts(&sectors)),
                (
                    "headcount",
                    ints(
                        &(0..n)
                            .map(|i| if i < 3 { 6 } else { 20 })
                            .collect::<Vec<_>>(),
                    ),
                ),
                (
                    "absence_days",
                    floats(
                        &(0..n)
                            .map(|i| if i < 3 { 2000.0 } else { 5000.0 })
                            .collect::<Vec<_>>(),
                    ),
                ),
            ],
        );
        let rules = OrganisationRules {
            min_persons: 5,
            k: 10,
            banded: [("absence_days".to_owned(), Banding::Round { to: 100.0 })].into(),
        };
        let file = release_organisations(&model, &rules, &research()).unwrap();
        let spec = org_spec(vec![dim("sector", None)], &["absence_days"]);
        let table_rules = TableRules::default();
        let input = || {
            organisation_table(&spec, &model, &file, &table_rules)
                .unwrap()
                .0
        };
        let released = protect(&input(), &table_rules).unwrap();
        let [ggz, vvt, total] = [0, 1, 2].map(|c| &released.cells[c]);
        assert_eq!(ggz.status, CellStatus::PrimaryThreshold);
        assert_eq!(ggz.sums, [6000.0]);
        assert!(released.audit.failures.is_empty());
        // What a reader of the file knows, worked out here from the file
        // alone: every row's sector; its absence rounded to 100, or
        // nothing where withheld.
        let f = &file.batch;
        let sector = f.column_by_name("sector").unwrap().as_string::<i32>();
        let days = f
            .column_by_name("absence_days")
            .unwrap()
            .as_primitive::<Float64Type>();
        let status = f
            .column_by_name("absence_days_status")
            .unwrap()
            .as_string::<i32>();
        let reader: Vec<KnownRow> = (0..f.num_rows())
            .map(|r| KnownRow {
                coords: vec![u32::from(sector.value(r) == "VVT")],
                bounds: vec![
                    (1.0, 1.0),
                    if status.value(r) == STATUS_FEW {
                        (0.0, f64::INFINITY)
                    } else {
                        ((days.value(r) - 50.0).max(0.0), days.value(r) + 50.0)
                    },
                ],
            })
            .collect();
        let with_reader = |statuses: [CellStatus; 3]| {
            let mut input = input();
            input.known = Some(reader.clone());
            let mut t = protect(&input, &table_rules).unwrap();
            for (c, s) in t.cells.iter_mut().zip(statuses) {
                c.status = s;
            }
            audit(&[&t], &table_rules, AuditMethod::LinearPrograms).unwrap()
        };
        // The released pattern holds against that reader.
        let report = with_reader([ggz.status, vvt.status, total.status]);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        // The pattern chosen without the file does not: GGZ and VVT
        // suppressed, the total published.
        let mut blind = input();
        blind.known = None;
        let blind = protect(&blind, &table_rules).unwrap();
        let statuses = [0, 1, 2].map(|c| blind.cells[c].status);
        assert!(statuses[1].is_suppressed() && !statuses[2].is_suppressed());
        let report = with_reader(statuses);
        let f = report
            .failures
            .iter()
            .find(|f| f.quantity == 1)
            .expect("the rounded figures pin GGZ's days");
        assert!(
            (f.lower - 5000.0).abs() < 0.1 && (f.upper - 7000.0).abs() < 0.1,
            "{f:?}"
        );
        // The release protects GGZ with the total instead, and says so.
        assert!(total.status.is_suppressed() && !vvt.status.is_suppressed());
        let (_, facts) = organisation_table(&spec, &model, &file, &table_rules).unwrap();
        let out = released_table(&spec, released.clone(), facts);
        assert_eq!(out.audited_with_organisation_file, ["absence_days_sum"]);
        assert_eq!(out.public, ["organisation_years"]);
        // The Markdown report names the file it was audited with.
        assert_eq!(
            crate::report::audited_with_file(&out),
            "`absence_days_sum` (`organisations.parquet`)"
        );
    }

    fn released_table(spec: &TableSpec, table: ProtectedTable, facts: Facts) -> TableDisclosure {
        released(spec, table, facts).unwrap().disclosure
    }

    /// Per base cell, the known intervals of an input's rows added up.
    fn known_cells(input: &TableInput) -> BTreeMap<Vec<u32>, Vec<(f64, f64)>> {
        let mut out: BTreeMap<Vec<u32>, Vec<(f64, f64)>> = BTreeMap::new();
        for k in input.known.as_ref().unwrap() {
            let slot = out
                .entry(k.coords.clone())
                .or_insert_with(|| vec![(0.0, 0.0); k.bounds.len()]);
            for (s, b) in slot.iter_mut().zip(&k.bounds) {
                s.0 += b.0;
                s.1 += b.1;
            }
        }
        out
    }

    /// A row the file leaves out (below the minimum size) may be in any
    /// cell of the small size class, with nothing known of it; a row whose
    /// dimension the file withholds may be in any category of it; a size
    /// class the file's classes fall inside places a row exactly.
    #[test]
    fn rows_the_file_leaves_out_or_cannot_place_open_their_cells() {
        let model = model_of(
            5,
            vec![
                ("sector", texts(&["VVT", "VVT", "VVT", "GGZ", "GGZ"])),
                ("headcount", ints(&[5, 50, 150, 60, 700])),
                (
                    "absence_days",
                    floats(&[100.0, 300.0, 900.0, 420.0, 5000.0]),
                ),
                ("mean_physical_load", floats(&[1.0, 1.5, 2.5, 1.0, 3.0])),
                ("n_fwg", ints(&[5, 50, 3, 60, 700])),
            ],
        );
        let rules = OrganisationRules {
            min_persons: 10,
            k: 10,
            ..OrganisationRules::default()
        };
        let file = release_organisations(&model, &rules, &research()).unwrap();
        assert_eq!(file.disclosure.rows_left_out, 1);
        let table_rules = TableRules::default();
        // Sector (GGZ, VVT) × size (<100, 100-499, 500+).
        let spec = org_spec(
            vec![
                dim("sector", None),
                dim("headcount", Some(vec![0, 100, 500])),
            ],
            &["absence_days"],
        );
        let (input, _) = organisation_table(&spec, &model, &file, &table_rules).unwrap();
        assert_eq!(input.dimensions[1].categories.len(), 3);
        let known = known_cells(&input);
        let inf = f64::INFINITY;
        // The small class: its released rows, and up to one row left out
        // of which nothing is known.
        assert_eq!(known[&vec![1, 0]], [(1.0, 2.0), (250.0, inf)]);
        assert_eq!(known[&vec![0, 0]], [(1.0, 2.0), (350.0, inf)]);
        // Larger ones: exactly their rows, absence within the rounding.
        assert_eq!(known[&vec![1, 1]], [(1.0, 1.0), (850.0, 950.0)]);
        assert_eq!(known[&vec![0, 2]], [(1.0, 1.0), (4950.0, 5050.0)]);
        assert!(!known.contains_key(&vec![0, 1]) && !known.contains_key(&vec![1, 2]));
        let t = protect(&input, &table_rules).unwrap();
        assert_eq!(t.public, [false, false]);
        // By load, which the file withholds for VVT's second organisation
        // (three FWG persons): it may be in either class of VVT.
        let spec = org_spec(
            vec![
                dim("sector", None),
                dim("mean_physical_load", Some(vec![0, 2])),
            ],
            &["absence_days"],
        );
        let (input, _) = organisation_table(&spec, &model, &file, &table_rules).unwrap();
        let known = known_cells(&input);
        assert_eq!(
            known[&vec![1, 1]][0],
            (0.0, 2.0),
            "unplaced, and one left out"
        );
        assert_eq!(known[&vec![1, 0]][0], (1.0, 3.0));
        assert_eq!(known[&vec![0, 1]][0], (1.0, 2.0));
        assert_eq!(known[&vec![1, 1]][1], (0.0, inf));
    }

    #[test]
    fn table_declarations_are_checked_against_the_person_file() {
        use crate::DisclosureConfig;
        use crate::config::TableMeasure;
        // A person table's dimension is a released variable, as released.
        let hidden =
            "tables:\n  - {name: t, model: person, dimensions: [{column: hours_per_week}]}\n";
        let err = DisclosureConfig::from_yaml(hidden).unwrap_err().to_string();
        assert!(
            err.contains("hours_per_week") && err.contains("person.variables"),
            "{err}"
        );
        let banded = "tables:\n  - {name: t, model: person, dimensions: [{column: age, hierarchy: {kind: bands, widths: [10]}, level: 1}]}\n";
        let err = DisclosureConfig::from_yaml(banded).unwrap_err().to_string();
        assert!(err.contains("as released"), "{err}");
        // Measures: a name, or a name with its maximum per row.
        let config = DisclosureConfig::from_yaml(
            "tables:\n  - {name: t, model: person, dimensions: [{column: sector}], measures: [ggz_cost_eur, {column: absence_days, max_per_contributor: 300}]}\n",
        )
        .unwrap();
        let m = &config.tables[0].measures;
        assert_eq!(m[0], TableMeasure::from("ggz_cost_eur"));
        assert_eq!(m[0].maximum(TableModel::Person), None);
        assert_eq!(m[1].maximum(TableModel::Person), Some(300.0));
        assert_eq!(
            TableMeasure::from("absence_days").maximum(TableModel::Person),
            Some(366.0)
        );
        let misspelt = "tables:\n  - {name: t, model: person, dimensions: [{column: sector}], measures: [{column: absence_days, max: 3}]}\n";
        assert!(DisclosureConfig::from_yaml(misspelt).is_err());
        let zero = "tables:\n  - {name: t, model: person, dimensions: [{column: sector}], measures: [{column: absence_days, max_per_contributor: 0}]}\n";
        assert!(DisclosureConfig::from_yaml(zero).is_err());
        // Sensitive dimensions: by default the care-use flags and
        // long-term absence.
        let rules = TableRules::default();
        for c in ["ggz_any", "long_term_absence"] {
            assert!(
                rules
                    .sensitive
                    .iter()
                    .any(|s| s.column == c && s.categories == ["true"])
            );
        }
        let twice = "table_rules:\n  sensitive: [{column: ggz_any}, {column: ggz_any}]\n";
        assert!(DisclosureConfig::from_yaml(twice).is_err());
    }

    #[test]
    fn a_released_label_gives_the_interval_of_its_class() {
        let classes = Hierarchy::Classes {
            levels: vec![vec![0, 1, 8, 43, 183], vec![0, 1, 43]],
        };
        assert_eq!(
            released_interval(&classes, 0, 20.5, false),
            Some((8.0, 43.0))
        );
        assert_eq!(
            released_interval(&classes, 0, 20.0, true),
            Some((8.0, 42.0))
        );
        assert_eq!(
            released_interval(&classes, 1, 200.0, false),
            Some((43.0, f64::INFINITY))
        );
        assert_eq!(released_interval(&classes, 2, 200.0, false), None);
        let bands = Hierarchy::Bands {
            widths: vec![5, 10],
        };
        assert_eq!(released_interval(&bands, 2, 37.0, true), Some((30.0, 39.0)));
        assert_eq!(released_interval(&bands, 0, 37.0, true), Some((37.0, 37.0)));
        let steps = Hierarchy::Steps { widths: vec![0.5] };
        assert_eq!(released_interval(&steps, 1, 2.7, false), Some((2.5, 3.0)));
    }

    #[test]
    fn a_linkage_report_count_below_the_threshold_is_not_released() {
        let report = serde_json::json!({
            "payroll_years": [2023, 2024],
            "person_model_rows": 1034,
            "sources": [{"source": "pfzw", "rows_in": 122755, "duplicates": 3, "not_linked": 0,
                         "details": [["episodes", 13474], ["late", 7]]}],
            "coverage": [
                {"year": 2023, "sector": "GGZ", "age_band": "25-34", "payroll_persons": 71,
                 "absence_persons": 28, "izz_insured_persons": 13, "care_use_persons": 11, "survey_persons": 3},
                {"year": 2023, "sector": "GGZ", "age_band": "35-44", "payroll_persons": 81,
                 "absence_persons": 48, "izz_insured_persons": 25, "care_use_persons": 25, "survey_persons": 17},
                {"year": 2023, "sector": "VVT", "age_band": "25-34", "payroll_persons": 90,
                 "absence_persons": 40, "izz_insured_persons": 30, "care_use_persons": 12, "survey_persons": 20},
                {"year": 2023, "sector": "VVT", "age_band": "35-44", "payroll_persons": 95,
                 "absence_persons": 50, "izz_insured_persons": 31, "care_use_persons": 14, "survey_persons": 21}
            ],
            "overlap": [{"year": 2023, "sources": ["pfzw"], "persons": 3}]
        });
        let (out, d) = protect_linkage_report(&report, &TableRules::default()).unwrap();
        // Years stay, counts are rounded, small ones withheld.
        assert_eq!(out["payroll_years"], serde_json::json!([2023, 2024]));
        assert_eq!(out["person_model_rows"], 1030);
        assert_eq!(out["sources"][0]["duplicates"], serde_json::Value::Null);
        assert_eq!(out["sources"][0]["not_linked"], 0);
        assert_eq!(out["sources"][0]["details"][1][1], serde_json::Value::Null);
        assert_eq!(out["sources"][0]["details"][1][0], "late");
        assert!(out.get("overlap").is_none() && d.overlap_withheld);
        // Coverage through the table rules: the 3 survey persons are
        // suppressed, and with them enough to keep them uncertain; all
        // 25 insured persons of a group using care is class disclosure.
        let cov = out["coverage"].as_array().unwrap();
        assert_eq!(cov[0]["survey_persons"], serde_json::Value::Null);
        assert_eq!(cov[1]["care_use_persons"], serde_json::Value::Null);
        for cell in cov {
            for k in COVERAGE {
                if let Some(n) = cell[k].as_u64() {
                    assert!(n == 0 || n >= 10, "{k}: {n}");
                }
            }
        }
        assert!(d.audit.failures.is_empty() && d.coverage_suppressed >= 4);
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains(":3,") && !text.contains(":3}") && !text.contains(",3]"));
        assert!(text.contains("disclosure_control"));
    }
}
