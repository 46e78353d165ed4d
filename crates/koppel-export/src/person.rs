//! Person microdata: generalise the quasi-identifiers to the least
//! generalisation the lattice search finds, suppress locally what is still
//! unsafe, and replace pseudonyms by this release's research IDs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field, Int32Type, Schema};
use koppel_contract::IdentifierType;
use koppel_contract::files::linked::PERSON_MODEL_FILE;
use koppel_pseudonymise::Pseudonymiser;
use serde::Serialize;

use crate::config::{Hierarchy, PersonRules};
use crate::error::{ExportError, PseudonymColumn, model_column, pseudonym_column, typed_column};
use crate::hierarchy::{GeneralisedColumn, atoms, generalise, model_atoms};
use crate::kanon::{KAnonymityParams, SensitiveAttribute, anonymise};

/// The derived quasi-identifier: size class of the main employer.
pub const ORGANISATION_SIZE: &str = "organisation_size";

/// An organisation and year, by stage-2 pseudonym.
pub type OrgYear = ([u8; 32], i32);

/// What k-anonymity did to the person file.
#[derive(Debug, Clone, Serialize)]
pub struct PersonDisclosure {
    pub k: u32,
    pub max_suppression_pct: f64,
    pub rows_in: u64,
    pub rows_released: u64,
    /// Rows whose quasi-identifiers were all set to null.
    pub rows_locally_suppressed: u64,
    /// Rows left out: too few to form a safe all-null class.
    pub rows_dropped: u64,
    pub classes: u64,
    /// The k reached: the smallest class of released rows within a year.
    pub smallest_class: u64,
    pub lattice_size: u64,
    pub nodes_evaluated: u64,
    pub information_loss: f64,
    pub quasi_identifiers: Vec<QuasiIdentifierOutcome>,
    pub l_diversity: Vec<LDiversityOutcome>,
    /// Person rows whose employer's organisation row was left out, so the
    /// employer is not identified in the person file either.
    pub organisation_ids_withheld: u64,
    /// Columns not released because a quasi-identifier's generalisation
    /// would otherwise be undone by them.
    pub columns_withheld: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuasiIdentifierOutcome {
    pub column: String,
    pub hierarchy: Hierarchy,
    pub levels: usize,
    /// 0 is the value as linked; the last level is fully suppressed.
    pub level: usize,
    pub categories: usize,
    /// Values known as linked that are null in the release: locally
    /// suppressed, or the whole column generalised away.
    pub values_suppressed: u64,
    /// Values already unknown as linked (for example no payroll).
    pub values_missing: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LDiversityOutcome {
    pub column: String,
    pub l: u32,
}

pub struct PersonRelease {
    pub batch: RecordBatch,
    pub disclosure: PersonDisclosure,
    /// Category labels of every released quasi-identifier, for the codebook.
    pub categories: HashMap<String, Vec<String>>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ExportError> {
    model_column(batch, PERSON_MODEL_FILE, name)
}

/// Headcount of each person's main employer in the year, from the
/// organisation model.
fn organisation_size(
    org: &PseudonymColumn<'_>,
    years: &Int32Array,
    headcounts: &HashMap<OrgYear, i64>,
) -> Int64Array {
    (0..years.len())
        .map(|row| {
            org.key(row)
                .and_then(|o| headcounts.get(&(o, years.value(row))).copied())
        })
        .collect()
}

/// Applies the person rules to the person model.
pub fn release_persons(
    people: &RecordBatch,
    headcounts: &HashMap<OrgYear, i64>,
    released_orgs: &HashSet<OrgYear>,
    rules: &PersonRules,
    research: &Pseudonymiser,
) -> Result<PersonRelease, ExportError> {
    let rows = people.num_rows();
    let file = PERSON_MODEL_FILE;
    let p2 = pseudonym_column(people, file, "person_p2")?;
    let org_p2 = pseudonym_column(people, file, "org_p2")?;
    let years = typed_column::<Int32Type>(people, file, "year")?;
    let size = organisation_size(&org_p2, years, headcounts);
    let mut generalised: Vec<(GeneralisedColumn, Option<String>)> = Vec::new();
    for qi in &rules.quasi_identifiers {
        let values = if qi.column == ORGANISATION_SIZE {
            atoms(&qi.column, &size)?
        } else {
            model_atoms(people, file, &qi.column)?
        };
        let (side, side_name) = match &qi.hierarchy {
            Hierarchy::FwgLevelBand { level_column, .. } => (
                Some(model_atoms(people, file, level_column)?),
                Some(level_column.clone()),
            ),
            _ => (None, None),
        };
        let g = generalise(&qi.column, &values, &qi.hierarchy, side.as_deref())?;
        generalised.push((g, side_name));
    }
    let mut sensitive = Vec::new();
    for l in &rules.l_diversity {
        let values = model_atoms(people, file, &l.column)?;
        let g = generalise(&l.column, &values, &Hierarchy::Categorical, None)?;
        sensitive.push(SensitiveAttribute {
            name: l.column.clone(),
            codes: g.levels[0].codes.clone(),
            l: l.l as usize,
        });
    }
    // Classes are formed within a year: every person has one row a year,
    // so a class of k rows is k different persons.
    let strata: Vec<u32> = years.values().iter().map(|y| *y as u32).collect();
    let encoded: Vec<_> = generalised.iter().map(|(g, _)| g.encoded()).collect();
    let solution = anonymise(
        &encoded,
        &sensitive,
        Some(&strata),
        &KAnonymityParams {
            k: rules.k as usize,
            max_suppression: rules.max_suppression_pct / 100.0,
            weights: rules.quasi_identifiers.iter().map(|q| q.weight).collect(),
        },
    )?;

    let mut suppressed = vec![false; rows];
    for &r in &solution.suppressed_rows {
        suppressed[r as usize] = true;
    }
    let mut keep = vec![true; rows];
    for &r in &solution.dropped_rows {
        keep[r as usize] = false;
    }

    let mut outcomes = Vec::new();
    let mut categories = HashMap::new();
    let mut replaced: HashMap<String, ArrayRef> = HashMap::new();
    let mut withheld = Vec::new();
    for ((g, side), (qi, &level)) in generalised
        .iter()
        .zip(rules.quasi_identifiers.iter().zip(&solution.levels))
    {
        let lvl = &g.levels[level];
        let linked = &g.levels[0].codes;
        let null = crate::kanon::NULL_CODE;
        // Unknown as linked, and known as linked but null in the release
        // (locally suppressed, or the whole column generalised away).
        let missing = linked
            .iter()
            .zip(&keep)
            .filter(|(c, k)| **k && **c == null)
            .count() as u64;
        let values_suppressed = (0..rows)
            .filter(|&r| keep[r] && linked[r] != null && (suppressed[r] || lvl.codes[r] == null))
            .count() as u64;
        outcomes.push(QuasiIdentifierOutcome {
            column: qi.column.clone(),
            hierarchy: qi.hierarchy.clone(),
            levels: g.levels.len(),
            level,
            categories: lvl.labels.len(),
            values_suppressed,
            values_missing: missing,
        });
        categories.insert(qi.column.clone(), lvl.labels.clone());
        replaced.insert(qi.column.clone(), lvl.to_array(Some(&suppressed)));
        // The FWG level is a function of the function code: released
        // beside a generalised code it would undo the generalisation.
        if let Some(side) = side
            && level > 0
        {
            withheld.push(side.clone());
        }
    }

    // Assemble in the model's column order, research IDs first.
    let person_ids = research.research_ids(IdentifierType::Bsn, p2.array);
    let org_ids = research.research_ids(IdentifierType::Kvk, org_p2.array);
    let mut withheld_orgs = 0u64;
    let org_ids: arrow::array::StringArray = (0..rows)
        .map(|row| {
            let key = org_p2.key(row)?;
            if released_orgs.contains(&(key, years.value(row))) {
                Some(org_ids.value(row).to_owned())
            } else {
                withheld_orgs += u64::from(keep[row]);
                None
            }
        })
        .collect();
    let mut fields: Vec<Field> = vec![
        research.field("person_id", IdentifierType::Bsn, false),
        Field::new("year", arrow::datatypes::DataType::Int32, false),
        research.field("org_id", IdentifierType::Kvk, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(person_ids),
        column(people, "year")?.clone(),
        Arc::new(org_ids),
    ];
    if let Some(size) = replaced.get(ORGANISATION_SIZE) {
        fields.push(Field::new(
            ORGANISATION_SIZE,
            arrow::datatypes::DataType::Utf8,
            true,
        ));
        columns.push(size.clone());
    }
    for (field, array) in people.schema().fields().iter().zip(people.columns()) {
        let name = field.name().as_str();
        if matches!(name, "person_p2" | "org_p2" | "year") || withheld.iter().any(|w| w == name) {
            continue;
        }
        match replaced.get(name) {
            Some(generalised) => {
                fields.push(Field::new(name, arrow::datatypes::DataType::Utf8, true));
                columns.push(generalised.clone());
            }
            None => {
                fields.push(Field::new(
                    name,
                    field.data_type().clone(),
                    field.is_nullable(),
                ));
                columns.push(array.clone());
            }
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(ExportError::arrow("assembling the person file"))?;
    let batch = filter_record_batch(&batch, &BooleanArray::from(keep))
        .map_err(ExportError::arrow("leaving out dropped rows"))?;
    let batch = crate::release::sort_by_id_and_year(&batch, "the person file")?;

    let disclosure = PersonDisclosure {
        k: rules.k,
        max_suppression_pct: rules.max_suppression_pct,
        rows_in: rows as u64,
        rows_released: batch.num_rows() as u64,
        rows_locally_suppressed: solution.suppressed_rows.len() as u64,
        rows_dropped: solution.dropped_rows.len() as u64,
        classes: solution.classes as u64,
        smallest_class: solution.smallest_class as u64,
        lattice_size: solution.lattice_size as u64,
        nodes_evaluated: solution.nodes_evaluated as u64,
        information_loss: solution.information_loss,
        quasi_identifiers: outcomes,
        l_diversity: rules
            .l_diversity
            .iter()
            .map(|l| LDiversityOutcome {
                column: l.column.clone(),
                l: l.l,
            })
            .collect(),
        organisation_ids_withheld: withheld_orgs,
        columns_withheld: withheld,
    };
    Ok(PersonRelease {
        batch,
        disclosure,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::DataType;

    use super::*;
    use crate::config::TableModel;
    use crate::error::fixture::{Models, assert_names, pseudonyms};

    const FILE: &str = PERSON_MODEL_FILE;

    #[test]
    fn a_year_of_another_type_is_an_error_naming_file_and_column() {
        let mut models = Models::valid();
        Models::set(
            &mut models.person,
            "year",
            Arc::new(Int64Array::from(vec![2024; 4])),
        );
        let message = assert_names(
            models.export(),
            |e| matches!(e, ExportError::ModelColumnType { found: DataType::Int64, expected, .. } if expected == "Int32"),
            FILE,
            "year",
        );
        assert!(
            message.contains("Int64") && message.contains("Int32"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_year_is_an_error() {
        let mut models = Models::valid();
        Models::remove(&mut models.person, "year");
        assert_names(
            models.export(),
            |e| matches!(e, ExportError::ModelColumnMissing { .. }),
            FILE,
            "year",
        );
    }

    #[test]
    fn person_pseudonyms_of_another_width_are_an_error() {
        let mut models = Models::valid();
        // Without the person table, which checks them too.
        models
            .config
            .tables
            .retain(|t| t.model != TableModel::Person);
        Models::set(
            &mut models.person,
            "person_p2",
            pseudonyms(&Models::person_keys(), 16),
        );
        assert_names(
            models.export(),
            |e| {
                matches!(
                    e,
                    ExportError::PseudonymWidth {
                        found: 16,
                        expected: 32,
                        ..
                    }
                )
            },
            FILE,
            "person_p2",
        );
    }

    #[test]
    fn employer_pseudonyms_of_another_width_are_an_error() {
        let mut models = Models::valid();
        let [a, b] = Models::org_keys();
        Models::set(
            &mut models.person,
            "org_p2",
            pseudonyms(&[a, a, b, None], 20),
        );
        assert_names(
            models.export(),
            |e| matches!(e, ExportError::PseudonymWidth { found: 20, .. }),
            FILE,
            "org_p2",
        );
    }

    #[test]
    fn a_quasi_identifier_of_a_type_that_does_not_generalise_is_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.person,
            "sex",
            Arc::new(Float64Array::from(vec![1.0, 2.0, 1.0, 2.0])),
        );
        assert_names(
            models.export(),
            |e| {
                matches!(
                    e,
                    ExportError::ModelColumnType {
                        found: DataType::Float64,
                        ..
                    }
                )
            },
            FILE,
            "sex",
        );
    }
}
