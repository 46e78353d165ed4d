//! Organisation data: leave out small organisations, suppress statistics
//! that rest on too few persons, band what is public elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use koppel_contract::IdentifierType;
use koppel_contract::files::linked::ORGANISATION_MODEL_FILE;
use koppel_pseudonymise::Pseudonymiser;
use serde::Serialize;

use crate::config::{Banding, OrganisationRules};
use crate::error::{ExportError, model_column, numeric_column, pseudonym_column, typed_column};
use crate::person::OrgYear;

/// Which count of persons each statistic of the organisation model rests
/// on. Statistics not listed rest on the headcount.
pub const RESTS_ON: &[(&str, &str)] = &[
    ("mean_irregularity_share", "n_irregularity_share"),
    ("ggz_share_insured", "n_izz_insured"),
    ("physio_share_insured", "n_izz_insured"),
    ("mean_physical_load", "n_fwg"),
    ("mean_mental_load", "n_fwg"),
    ("mean_injury_risk", "n_fwg"),
    ("adverse_conditions_share", "n_fwg"),
];

/// Person statistics of the organisation model, suppressed when they rest
/// on fewer than k persons.
pub const STATISTICS: &[&str] = &[
    "fte",
    "mean_age",
    "temporary_share",
    "on_call_share",
    "mean_irregularity_share",
    "inflow_rate",
    "outflow_rate",
    "absence_pct",
    "absence_days",
    "available_days",
    "episode_frequency",
    "izz_coverage",
    "ggz_share_insured",
    "physio_share_insured",
    "mean_physical_load",
    "mean_mental_load",
    "mean_injury_risk",
    "adverse_conditions_share",
];

/// Status of a statistic in the organisation file.
pub const STATUS_SAFE: &str = "safe";
pub const STATUS_FEW: &str = "primary_threshold";
pub const STATUS_MISSING: &str = "empty";

#[derive(Debug, Clone, Serialize)]
pub struct OrganisationDisclosure {
    pub min_persons: u64,
    pub k: u64,
    pub rows_in: u64,
    pub rows_released: u64,
    /// Organisation-years left out for having fewer than `min_persons`.
    pub rows_left_out: u64,
    /// Per statistic: values suppressed for resting on fewer than k.
    pub suppressed: BTreeMap<String, u64>,
    /// Per column: how it was banded or rounded.
    pub banded: BTreeMap<String, Banding>,
}

pub struct OrganisationRelease {
    pub batch: RecordBatch,
    pub disclosure: OrganisationDisclosure,
    /// Organisation-years identified in this release.
    pub released: HashSet<OrgYear>,
    /// Category labels of banded columns, for the codebook.
    pub categories: HashMap<String, Vec<String>>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ExportError> {
    model_column(batch, ORGANISATION_MODEL_FILE, name)
}

/// A numeric array as floating point; the column's type is checked first.
fn as_f64(name: &str, array: &ArrayRef) -> Result<Float64Array, ExportError> {
    let cast =
        cast(array, &DataType::Float64).map_err(ExportError::arrow(format!("column {name}")))?;
    Ok(cast.as_primitive::<arrow::datatypes::Float64Type>().clone())
}

/// Headcount per organisation-year, for the person file's size class.
pub fn headcounts(orgs: &RecordBatch) -> Result<HashMap<OrgYear, i64>, ExportError> {
    let file = ORGANISATION_MODEL_FILE;
    let org = pseudonym_column(orgs, file, "org_p2")?;
    let year = typed_column::<Int32Type>(orgs, file, "year")?;
    let headcount = typed_column::<Int64Type>(orgs, file, "headcount")?;
    Ok((0..orgs.num_rows())
        .map(|r| ((org.keys[r], year.value(r)), headcount.value(r)))
        .collect())
}

/// Applies the organisation rules to the organisation model.
pub fn release_organisations(
    orgs: &RecordBatch,
    rules: &OrganisationRules,
    research: &Pseudonymiser,
) -> Result<OrganisationRelease, ExportError> {
    let file = ORGANISATION_MODEL_FILE;
    let headcount = typed_column::<Int64Type>(orgs, file, "headcount")?;
    let keep: BooleanArray = headcount
        .iter()
        .map(|h| Some(h.is_some_and(|h| h as u64 >= rules.min_persons)))
        .collect();
    let kept = filter_record_batch(orgs, &keep)
        .map_err(ExportError::arrow("leaving out small organisations"))?;
    let rows = kept.num_rows();
    let org_p2 = pseudonym_column(&kept, file, "org_p2")?;
    let years = typed_column::<Int32Type>(&kept, file, "year")?;
    let released = (0..rows)
        .map(|r| (org_p2.keys[r], years.value(r)))
        .collect();

    let rests_on: HashMap<&str, &str> = RESTS_ON.iter().copied().collect();
    let mut fields = vec![
        research.field("org_id", IdentifierType::Kvk, false),
        Field::new("year", DataType::Int32, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(research.research_ids(IdentifierType::Kvk, org_p2.array)),
        column(&kept, "year")?.clone(),
    ];
    let mut suppressed = BTreeMap::new();
    let mut categories = HashMap::new();
    for (field, array) in kept.schema().fields().iter().zip(kept.columns()) {
        let name = field.name().as_str();
        if matches!(name, "org_p2" | "year") {
            continue;
        }
        let mut array = array.clone();
        let mut status: Option<StringArray> = None;
        if STATISTICS.contains(&name) {
            let n_column = rests_on.get(name).copied().unwrap_or("headcount");
            let n = cast(numeric_column(&kept, file, n_column)?, &DataType::Int64)
                .map_err(ExportError::arrow(format!("column {n_column}")))?;
            let n = n.as_primitive::<Int64Type>();
            let mut count = 0u64;
            let codes: StringArray = (0..rows)
                .map(|r| {
                    Some(if array.is_null(r) {
                        STATUS_MISSING
                    } else if n.is_null(r) || (n.value(r) as u64) < rules.k {
                        count += 1;
                        STATUS_FEW
                    } else {
                        STATUS_SAFE
                    })
                })
                .collect();
            let safe: BooleanArray = codes.iter().map(|c| Some(c == Some(STATUS_SAFE))).collect();
            array =
                arrow::compute::nullif(&array, &arrow::compute::not(&safe).expect("same length"))
                    .map_err(ExportError::arrow(format!("suppressing {name}")))?;
            suppressed.insert(name.to_owned(), count);
            status = Some(codes);
        }
        let mut data_type = field.data_type().clone();
        if let Some(banding) = rules.banded.get(name) {
            numeric_column(&kept, file, name)?;
            let values = as_f64(name, &array)?;
            match banding {
                Banding::Round { to } => {
                    let rounded: Float64Array = values
                        .iter()
                        .map(|v| v.map(|v| (v / to).round() * to))
                        .collect();
                    array = Arc::new(rounded);
                    data_type = DataType::Float64;
                }
                Banding::Classes { bounds } => {
                    let labels: StringArray = values
                        .iter()
                        .map(|v| v.map(|v| band_label(v, bounds)))
                        .collect();
                    categories.insert(name.to_owned(), class_labels(bounds));
                    array = Arc::new(labels);
                    data_type = DataType::Utf8;
                }
            }
        }
        fields.push(Field::new(
            name,
            data_type,
            field.is_nullable() || status.is_some(),
        ));
        columns.push(array);
        if let Some(codes) = status {
            fields.push(Field::new(format!("{name}_status"), DataType::Utf8, false));
            columns.push(Arc::new(codes));
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(ExportError::arrow("assembling the organisation file"))?;
    let batch = crate::release::sort_by_id_and_year(&batch, "the organisation file")?;
    Ok(OrganisationRelease {
        disclosure: OrganisationDisclosure {
            min_persons: rules.min_persons,
            k: rules.k,
            rows_in: orgs.num_rows() as u64,
            rows_released: batch.num_rows() as u64,
            rows_left_out: (orgs.num_rows() - rows) as u64,
            suppressed,
            banded: rules.banded.clone(),
        },
        batch,
        released,
        categories,
    })
}

fn fmt_bound(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Label of the class of `v`: `"100-250"` means from 100 up to (not
/// including) 250; the first class also holds anything below its bound.
pub fn band_label(v: f64, bounds: &[f64]) -> String {
    let i = bounds.iter().rposition(|b| *b <= v).unwrap_or(0);
    class_name(i, bounds)
}

fn class_name(i: usize, bounds: &[f64]) -> String {
    if i + 1 == bounds.len() {
        format!("{}+", fmt_bound(bounds[i]))
    } else {
        format!("{}-{}", fmt_bound(bounds[i]), fmt_bound(bounds[i + 1]))
    }
}

fn class_labels(bounds: &[f64]) -> Vec<String> {
    (0..bounds.len()).map(|i| class_name(i, bounds)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::fixture::{Models, assert_names, pseudonyms};

    const FILE: &str = ORGANISATION_MODEL_FILE;

    #[test]
    fn bands_are_half_open_and_the_last_is_open_ended() {
        let bounds = [0.0, 50.0, 250.0];
        assert_eq!(band_label(0.0, &bounds), "0-50");
        assert_eq!(band_label(49.9, &bounds), "0-50");
        assert_eq!(band_label(50.0, &bounds), "50-250");
        assert_eq!(band_label(1e6, &bounds), "250+");
        assert_eq!(band_label(-3.0, &bounds), "0-50");
        assert_eq!(class_labels(&bounds), ["0-50", "50-250", "250+"]);
    }

    fn is_type(found: DataType) -> impl Fn(&ExportError) -> bool {
        move |e| matches!(e, ExportError::ModelColumnType { found: f, .. } if *f == found)
    }

    #[test]
    fn a_year_of_another_type_is_an_error_naming_file_and_column() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "year",
            Arc::new(arrow::array::Int64Array::from(vec![2024; 2])),
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
    fn a_headcount_of_another_type_is_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "headcount",
            Arc::new(arrow::array::Int32Array::from(vec![2, 2])),
        );
        assert_names(models.export(), is_type(DataType::Int32), FILE, "headcount");
    }

    #[test]
    fn a_missing_headcount_is_an_error() {
        let mut models = Models::valid();
        Models::remove(&mut models.organisation, "headcount");
        assert_names(
            models.export(),
            |e| matches!(e, ExportError::ModelColumnMissing { .. }),
            FILE,
            "headcount",
        );
    }

    #[test]
    fn organisation_pseudonyms_of_another_width_are_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "org_p2",
            pseudonyms(&Models::org_keys(), 16),
        );
        let message = assert_names(
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
            "org_p2",
        );
        assert!(
            message.contains("16") && message.contains("32"),
            "{message}"
        );
    }

    #[test]
    fn organisation_pseudonyms_that_are_not_binary_are_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "org_p2",
            Arc::new(StringArray::from(vec!["a", "b"])),
        );
        let message = assert_names(models.export(), is_type(DataType::Utf8), FILE, "org_p2");
        assert!(message.contains("FixedSizeBinary(32)"), "{message}");
    }

    #[test]
    fn a_count_a_statistic_rests_on_must_be_a_number() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "n_fwg",
            Arc::new(StringArray::from(vec!["2", "1"])),
        );
        assert_names(models.export(), is_type(DataType::Utf8), FILE, "n_fwg");
    }

    #[test]
    fn a_banded_column_must_be_a_number() {
        let mut models = Models::valid();
        Models::set(
            &mut models.organisation,
            "fte",
            Arc::new(StringArray::from(vec!["1.5", "2"])),
        );
        assert_names(models.export(), is_type(DataType::Utf8), FILE, "fte");
    }

    /// `headcounts` runs after `release_organisations` in an export,
    /// which checks the same columns first: its own checks on their own.
    fn headcounts_of(column: &str, array: ArrayRef) -> Result<HashMap<OrgYear, i64>, ExportError> {
        let mut models = Models::valid();
        Models::set(&mut models.organisation, column, array);
        headcounts(&Models::batch(&models.organisation))
    }

    #[test]
    fn headcounts_checks_the_pseudonym_width() {
        assert_names(
            headcounts_of("org_p2", pseudonyms(&Models::org_keys(), 8)),
            |e| matches!(e, ExportError::PseudonymWidth { found: 8, .. }),
            FILE,
            "org_p2",
        );
    }

    #[test]
    fn headcounts_checks_the_year_type() {
        assert_names(
            headcounts_of(
                "year",
                Arc::new(arrow::array::Int64Array::from(vec![2024; 2])),
            ),
            is_type(DataType::Int64),
            FILE,
            "year",
        );
    }

    #[test]
    fn headcounts_checks_the_headcount_type() {
        assert_names(
            headcounts_of("headcount", Arc::new(Float64Array::from(vec![2.0; 2]))),
            is_type(DataType::Float64),
            FILE,
            "headcount",
        );
    }
}
