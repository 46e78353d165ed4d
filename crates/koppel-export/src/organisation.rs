//! Organisation data: leave out small organisations, suppress statistics
//! that rest on too few persons, band what is public elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, UInt64Type};
use koppel_contract::IdentifierType;
use koppel_contract::files::linked::ORGANISATION_MODEL_FILE;
use koppel_pseudonymise::Pseudonymiser;
use serde::Serialize;

use crate::config::{Banding, OrganisationRules, round_to};
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
    /// Each file row's row in the organisation model: what the file tells
    /// of a model row ([`OrganisationRelease::told`]) bounds it in the
    /// audit of the organisation tables.
    pub model_rows: Vec<usize>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ExportError> {
    model_column(batch, ORGANISATION_MODEL_FILE, name)
}

/// A numeric array as floating point; the column's type is checked first.
fn as_f64(name: &str, array: &ArrayRef) -> Result<Float64Array, ExportError> {
    let cast =
        cast(array, &DataType::Float64).map_err(ExportError::arrow(format!("column {name}")))?;
    Ok(cast.as_primitive::<Float64Type>().clone())
}

/// Headcount per organisation-year, for the person file's size class.
pub fn headcounts(orgs: &RecordBatch) -> Result<HashMap<OrgYear, i64>, ExportError> {
    let file = ORGANISATION_MODEL_FILE;
    let org = pseudonym_column(orgs, file, "org_p2")?;
    let year = typed_column::<Int32Type>(orgs, file, "year")?;
    let headcount = typed_column::<Int64Type>(orgs, file, HEADCOUNT)?;
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
    let headcount = typed_column::<Int64Type>(orgs, file, HEADCOUNT)?;
    let keep: BooleanArray = headcount
        .iter()
        .map(|h| Some(h.is_some_and(|h| h as u64 >= rules.min_persons)))
        .collect();
    let kept = filter_record_batch(orgs, &keep)
        .map_err(ExportError::arrow("leaving out small organisations"))?;
    let rows = kept.num_rows();
    let kept_rows: Vec<u64> = (0..orgs.num_rows() as u64)
        .filter(|&r| keep.value(r as usize))
        .collect();
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
            let n_column = rests_on.get(name).copied().unwrap_or(HEADCOUNT);
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
                    let rounded: Float64Array =
                        values.iter().map(|v| v.map(|v| round_to(v, *to))).collect();
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
    // The model row rides along through the file's sort (the audit needs
    // each file row's model row) and is taken off before release.
    fields.push(Field::new(MODEL_ROW, DataType::UInt64, false));
    columns.push(Arc::new(UInt64Array::from(kept_rows)));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(ExportError::arrow("assembling the organisation file"))?;
    let mut batch = crate::release::sort_by_id_and_year(&batch, "the organisation file")?;
    let model_rows = batch
        .remove_column(batch.num_columns() - 1)
        .as_primitive::<UInt64Type>()
        .values()
        .iter()
        .map(|&r| r as usize)
        .collect();
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
        model_rows,
    })
}

/// The persons of an organisation-year: what the minimum size leaves rows
/// out by, and what a statistic rests on unless it has its own count.
pub const HEADCOUNT: &str = "headcount";

/// The column that carries each file row's model row through the sort (a
/// name no model column has).
const MODEL_ROW: &str = "\u{0}model_row";

/// A relation that holds exactly in every row of the organisation model:
/// `ratio = numerator / denominator × scale` (docs/linking.md). The file
/// publishes the ratio beside the two sides rounded or banded, so a reader
/// narrows each side by the other, and the audit does the same.
#[derive(Debug, Clone, Copy)]
pub struct Relation {
    pub ratio: &'static str,
    pub numerator: &'static str,
    pub denominator: &'static str,
    pub scale: f64,
}

/// The model's exact relations between columns of the file.
pub const RELATIONS: &[Relation] = &[
    Relation {
        ratio: "absence_pct",
        numerator: "absence_days",
        denominator: "available_days",
        scale: 100.0,
    },
    Relation {
        ratio: "izz_coverage",
        numerator: "n_izz_insured",
        denominator: HEADCOUNT,
        scale: 1.0,
    },
];

/// What the organisation file tells a reader of one value of the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Told {
    /// Nothing: the file leaves the row out (below the minimum size), the
    /// value out (a statistic on fewer than k persons), or has no such
    /// column.
    Nothing,
    /// That the model has no value: the file's null (status `empty` for a
    /// statistic).
    Null,
    /// The value as the model has it, not a number (a text, a flag).
    Exact,
    /// A number from `lo` to `hi` (`hi` itself excluded when
    /// `hi_excluded`: a class's upper bound); `lo == hi` where the file
    /// publishes it exactly.
    Number { lo: f64, hi: f64, hi_excluded: bool },
}

impl Told {
    fn number(lo: f64, hi: f64) -> Told {
        Told::Number {
            lo,
            hi,
            hi_excluded: false,
        }
    }
}

impl OrganisationRelease {
    /// Per row of the organisation model: what the file tells of its
    /// `column` — read from the file as released (its rounded number, its
    /// class label, its null and status) and the rules that shaped it,
    /// narrowed by what else the file says of the row: a released row has
    /// at least `min_persons` persons, and the sides of a [`Relation`] are
    /// narrowed by its published ratio.
    pub fn told(&self, column: &str) -> Result<Vec<Told>, ExportError> {
        let mut told = self.published(column)?;
        for relation in RELATIONS {
            let numerator = column == relation.numerator;
            if !numerator && column != relation.denominator {
                continue;
            }
            let ratio = self.published(relation.ratio)?;
            let other = self.published(if numerator {
                relation.denominator
            } else {
                relation.numerator
            })?;
            for ((t, r), o) in told.iter_mut().zip(&ratio).zip(&other) {
                let (n, d) = if numerator { (*t, *o) } else { (*o, *t) };
                if let Some((n, d)) = narrow(n, d, *r, relation.scale) {
                    *t = if numerator { n } else { d };
                }
            }
        }
        Ok(told)
    }

    /// Whether each row of the model is in the file.
    pub fn in_file(&self) -> Vec<bool> {
        let mut out = vec![false; self.disclosure.rows_in as usize];
        for &m in &self.model_rows {
            out[m] = true;
        }
        out
    }

    /// [`Self::told`] of the column alone.
    fn published(&self, column: &str) -> Result<Vec<Told>, ExportError> {
        let mut out = vec![Told::Nothing; self.disclosure.rows_in as usize];
        let Some(array) = self.batch.column_by_name(column) else {
            return Ok(out);
        };
        let status = self
            .batch
            .column_by_name(&format!("{column}_status"))
            .filter(|_| STATISTICS.contains(&column))
            .map(|a| a.as_string::<i32>());
        let numbers = array
            .data_type()
            .is_numeric()
            .then(|| as_f64(column, array))
            .transpose()?;
        let labels = matches!(array.data_type(), DataType::Utf8).then(|| array.as_string::<i32>());
        let banding = self.disclosure.banded.get(column);
        let classes = match banding {
            Some(Banding::Classes { bounds }) => class_labels(bounds),
            _ => Vec::new(),
        };
        for (r, &m) in self.model_rows.iter().enumerate() {
            out[m] = if status.is_some_and(|s| s.value(r) == STATUS_FEW) {
                Told::Nothing
            } else if array.is_null(r) {
                Told::Null
            } else {
                match (banding, &numbers, labels) {
                    // Rounded half away from zero: within half a step.
                    (Some(Banding::Round { to }), Some(v), _) => {
                        let v = v.value(r);
                        Told::number(v - to / 2.0, v + to / 2.0)
                    }
                    (Some(Banding::Classes { bounds }), _, Some(l)) => {
                        match classes.iter().position(|c| c == l.value(r)) {
                            // The first class also holds anything below
                            // its bound; the last is open.
                            Some(i) => Told::Number {
                                lo: if i == 0 { f64::NEG_INFINITY } else { bounds[i] },
                                hi: bounds.get(i + 1).copied().unwrap_or(f64::INFINITY),
                                hi_excluded: i + 1 < bounds.len(),
                            },
                            None => Told::Nothing,
                        }
                    }
                    (Some(_), _, _) => Told::Nothing,
                    (None, Some(v), _) => Told::number(v.value(r), v.value(r)),
                    (None, None, _) => Told::Exact,
                }
            };
            // The file leaves out every organisation-year below the
            // minimum size.
            if column == HEADCOUNT
                && let Told::Number { lo, .. } = &mut out[m]
            {
                *lo = lo.max(self.disclosure.min_persons as f64);
            }
        }
        Ok(out)
    }
}

/// Both sides of `n = r × d / scale`, each narrowed by the other and the
/// ratio (all three non-negative), or `None` where a side is not a known
/// number or the data break the relation. One step each way is exact: `d`
/// can be what `n / r` allows, and `n` what `r × d` then allows.
fn narrow(n: Told, d: Told, r: Told, scale: f64) -> Option<(Told, Told)> {
    let hull = |t: Told| match t {
        Told::Number { lo, hi, .. } => Some((lo.max(0.0), hi.max(0.0))),
        _ => None,
    };
    let ((n_lo, n_hi), (d_lo, d_hi), (r_lo, r_hi)) = (hull(n)?, hull(d)?, hull(r)?);
    // A hair of slack: the model's ratio and sides are floating point.
    let (down, up) = (1.0 - 1e-9, 1.0 + 1e-9);
    let d_lo = if r_hi > 0.0 {
        d_lo.max(n_lo * scale / r_hi * down)
    } else {
        d_lo
    };
    let d_hi = if r_lo > 0.0 {
        d_hi.min(n_hi * scale / r_lo * up)
    } else {
        d_hi
    };
    let n_lo = n_lo.max(r_lo * d_lo / scale * down);
    // A ratio of 0 is a numerator of 0, whatever the denominator.
    let n_hi = if r_hi == 0.0 {
        0.0
    } else {
        n_hi.min(r_hi * d_hi / scale * up)
    };
    if n_lo > n_hi || d_lo > d_hi {
        return None;
    }
    let keep = |t: Told, lo: f64, hi: f64| match t {
        Told::Number {
            hi: old,
            hi_excluded,
            ..
        } => Told::Number {
            lo,
            hi,
            hi_excluded: hi_excluded && hi == old,
        },
        other => other,
    };
    Some((keep(n, n_lo, n_hi), keep(d, d_lo, d_hi)))
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
pub(crate) mod tests {
    use super::*;
    use crate::error::fixture::{Models, assert_names, pseudonyms};
    use arrow::array::Int64Array;
    use koppel_pseudonymise::{KeyMaterial, Stage};

    const FILE: &str = ORGANISATION_MODEL_FILE;

    /// An organisation model of `rows` organisations in 2024 with the
    /// given columns (after `org_p2` and `year`).
    pub(crate) fn model_of(rows: usize, columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let keys: Vec<Option<[u8; 32]>> = (0..rows as u32)
            .map(|i| {
                let mut key = [0x5c; 32];
                key[..4].copy_from_slice(&i.to_le_bytes());
                Some(key)
            })
            .collect();
        let mut fields = vec![
            Field::new("org_p2", DataType::FixedSizeBinary(32), false),
            Field::new("year", DataType::Int32, false),
        ];
        let mut arrays = vec![
            pseudonyms(&keys, 32),
            Arc::new(arrow::array::Int32Array::from(vec![2024; rows])) as ArrayRef,
        ];
        for (name, array) in columns {
            fields.push(Field::new(name, array.data_type().clone(), true));
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("a model")
    }

    pub(crate) fn research() -> Pseudonymiser {
        Pseudonymiser::new(
            Stage::Research,
            &KeyMaterial::from_bytes([0x42; 32]),
            "test-release",
            1,
        )
    }

    fn floats(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    /// What the audit takes from the organisation file is what the file
    /// publishes: rows below the minimum size tell nothing, a rounded
    /// figure its half step around the rounded value, a class its bounds,
    /// a suppressed statistic nothing, a null that there is no value, an
    /// exact column itself; and each is worked out independently here from
    /// the model and the rules, so a file rounded another way than the
    /// audit reads it fails.
    #[test]
    fn what_the_file_tells_is_what_it_publishes() {
        // Row 0 is below the minimum size; row 2 has too few FWG persons
        // for its load; row 3 no absence figures at all.
        let headcount = [3i64, 40, 120, 12, 2600];
        let absence = [Some(12.0), Some(151.0), Some(149.99), None, Some(1234.5)];
        let available = [Some(900i64), Some(9_100), Some(29_500), None, Some(612_345)];
        let load = [Some(2.0), Some(2.5), Some(3.0), Some(1.5), None];
        let n_fwg = [3i64, 30, 4, 12, 2000];
        let model = model_of(
            5,
            vec![
                (
                    "sector",
                    Arc::new(StringArray::from(vec!["VVT", "GGZ", "KO", "JZ", "UMC"])) as ArrayRef,
                ),
                ("headcount", Arc::new(Int64Array::from(headcount.to_vec()))),
                ("absence_days", floats(&absence)),
                (
                    "available_days",
                    Arc::new(Int64Array::from(available.to_vec())),
                ),
                ("mean_physical_load", floats(&load)),
                ("n_fwg", Arc::new(Int64Array::from(n_fwg.to_vec()))),
            ],
        );
        let rules = OrganisationRules {
            min_persons: 10,
            k: 10,
            ..OrganisationRules::default()
        };
        let file = release_organisations(&model, &rules, &research()).unwrap();
        assert_eq!(file.batch.num_rows(), 4);
        assert_eq!(file.in_file(), [false, true, true, true, true]);
        // Each file row is its model row: the file's exact column agrees.
        let released = file
            .batch
            .column_by_name("sector")
            .unwrap()
            .as_string::<i32>();
        let sectors = model.column_by_name("sector").unwrap().as_string::<i32>();
        for (r, &m) in file.model_rows.iter().enumerate() {
            assert_eq!(released.value(r), sectors.value(m));
        }
        let told = |c: &str| file.told(c).unwrap();
        let round = |column: &str, v: f64| {
            let Banding::Round { to } = rules.banded[column] else {
                panic!("{column} is rounded by default")
            };
            let rounded = round_to(v, to);
            Told::Number {
                lo: rounded - to / 2.0,
                hi: rounded + to / 2.0,
                hi_excluded: false,
            }
        };
        let absence_told = told("absence_days");
        let available_told = told("available_days");
        let headcount_told = told("headcount");
        let load_told = told("mean_physical_load");
        let sector_told = told("sector");
        for m in 0..5 {
            if m == 0 {
                for t in [
                    &absence_told,
                    &available_told,
                    &headcount_told,
                    &sector_told,
                ] {
                    assert_eq!(t[m], Told::Nothing, "a row left out tells nothing");
                }
                continue;
            }
            // Rounded: absence days to 100, available days to 1000.
            match absence[m] {
                Some(v) => assert_eq!(absence_told[m], round("absence_days", v), "row {m}"),
                None => assert_eq!(absence_told[m], Told::Null),
            }
            match available[m] {
                Some(v) => assert_eq!(available_told[m], round("available_days", v as f64)),
                None => assert_eq!(available_told[m], Told::Null),
            }
            // Size classes of the headcount, at least the minimum size.
            let Banding::Classes { bounds } = &rules.banded["headcount"] else {
                panic!("headcount is classed by default")
            };
            let h = headcount[m] as f64;
            let i = bounds.iter().rposition(|b| *b <= h).unwrap();
            assert_eq!(
                headcount_told[m],
                Told::Number {
                    lo: bounds[i].max(10.0),
                    hi: bounds.get(i + 1).copied().unwrap_or(f64::INFINITY),
                    hi_excluded: i + 1 < bounds.len(),
                },
                "row {m}"
            );
            // A statistic on fewer than k persons tells nothing; one
            // released is rounded, as every mean and share (an exact one
            // would give its whole numbers back).
            let expected = match load[m] {
                _ if n_fwg[m] < 10 => Told::Nothing,
                Some(v) => round("mean_physical_load", v),
                None => Told::Null,
            };
            assert_eq!(load_told[m], expected, "row {m}");
            assert_eq!(sector_told[m], Told::Exact);
        }
        // Every interval holds the model's value.
        for (m, a) in absence.iter().enumerate() {
            if let (Told::Number { lo, hi, .. }, Some(a)) = (absence_told[m], a) {
                assert!(lo <= *a && *a <= hi, "row {m}: {a} outside [{lo}, {hi}]");
            }
        }
        // A column the file does not have tells nothing.
        assert!(told("no_such_column").iter().all(|t| *t == Told::Nothing));
    }

    /// The attack on the written file: a reader who sees a share of whole
    /// numbers looks for the headcounts that can give it, at the
    /// precision the file shows (half a step of 0.01 where the value is
    /// a multiple of it, else floating point), within the size class the
    /// file gives. An exact share of 7/43 leaves one headcount: 43, the
    /// number the size class was meant to hide. Rounded, it leaves many.
    #[test]
    fn a_share_does_not_give_the_headcount_back() {
        let headcount = [43i64, 57, 131, 260];
        let temporary = [7.0 / 43.0, 20.0 / 57.0, 50.0 / 131.0, 33.0 / 260.0];
        let model = model_of(
            4,
            vec![
                ("headcount", Arc::new(Int64Array::from(headcount.to_vec()))),
                ("temporary_share", floats(&temporary.map(Some))),
            ],
        );
        let file =
            release_organisations(&model, &OrganisationRules::default(), &research()).unwrap();
        let shares = file
            .batch
            .column_by_name("temporary_share")
            .unwrap()
            .as_primitive::<Float64Type>();
        let classes = file
            .batch
            .column_by_name("headcount")
            .unwrap()
            .as_string::<i32>();
        let Banding::Classes { bounds } = &OrganisationRules::default().banded[HEADCOUNT] else {
            panic!("headcount is classed by default")
        };
        let labels = class_labels(bounds);
        for r in 0..file.batch.num_rows() {
            let s = shares.value(r);
            let tolerance = if (s * 100.0 - (s * 100.0).round()).abs() < 1e-9 {
                0.005
            } else {
                1e-9
            };
            let i = labels.iter().position(|l| l == classes.value(r)).unwrap();
            let (lo, hi) = (bounds[i].max(10.0) as i64, bounds[i + 1] as i64);
            let candidates: Vec<i64> = (lo..hi)
                .filter(|&h| {
                    let n = (s * h as f64).round();
                    (n / h as f64 - s).abs() <= tolerance
                })
                .collect();
            assert!(
                candidates.len() > 1,
                "row {r}: the share {s} gives the headcount back: {candidates:?}"
            );
        }
    }

    /// Seeded draws for synthetic data (rand's ChaCha8 and rand_distr's
    /// distributions, as koppel-synth draws).
    struct Draws(rand_chacha::ChaCha8Rng);

    impl Draws {
        fn new(seed: u64) -> Draws {
            Draws(rand::SeedableRng::seed_from_u64(seed))
        }

        /// Uniform in [0, 1).
        fn uniform(&mut self) -> f64 {
            rand::Rng::random(&mut self.0)
        }

        fn normal(&mut self) -> f64 {
            rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut self.0)
        }

        fn exponential(&mut self, mean: f64) -> f64 {
            let exp = rand_distr::Exp::new(1.0 / mean).expect("a positive mean");
            rand_distr::Distribution::sample(&exp, &mut self.0)
        }

        fn poisson(&mut self, mean: f64) -> u32 {
            let poisson = rand_distr::Poisson::new(mean).expect("a positive mean");
            rand_distr::Distribution::<f64>::sample(&poisson, &mut self.0) as u32
        }

        /// The value of the first `(cumulative share, value)` past a
        /// uniform draw.
        fn pick(&mut self, table: &[(f64, i64)]) -> i64 {
            let u = self.uniform();
            table.iter().find(|(p, _)| u < *p).unwrap_or(&table[0]).1
        }
    }

    /// Synthetic organisation-years of 2024 whose absence figures are
    /// built the way linking builds them (docs/linking.md), with the
    /// synthetic data's sector profiles (koppel-synth: organisations per
    /// sector, log-normal sizes, absence levels) and its episodes: short
    /// (1–7 days), medium (8–42) or long (43 up to two years), mostly at
    /// 100%, long ones often partly. Most persons are employed the whole
    /// (leap) year, the rest part of it. Returns the model and, per
    /// model row, the whole number of percentage-weighted days (`pct_days`,
    /// absence days × 100) and the available days: `absence_pct` is their
    /// quotient and `absence_days` the first over 100, as linking computes
    /// them.
    fn absence_model(organisations: usize) -> (RecordBatch, Vec<(i64, i64)>) {
        // Per sector (koppel-synth's profiles): its share of the
        // organisations (workforce share over mean headcount; cumulative
        // here), mean headcount, its log-scale spread, absence percentage.
        const SECTORS: [(f64, f64, f64, f64); 8] = [
            (0.148, 240.0, 1.1, 8.3),
            (0.155, 3000.0, 0.7, 6.6),
            (0.214, 120.0, 1.2, 6.8),
            (0.263, 250.0, 1.2, 8.5),
            (0.314, 100.0, 1.1, 7.0),
            (0.361, 130.0, 1.0, 6.5),
            (0.606, 33.0, 1.1, 6.3),
            (1.0, 13.0, 0.6, 4.5),
        ];
        let mut draw = Draws::new(0x6b6f_7070_656c);
        let (mut headcount, mut truth) = (Vec::new(), Vec::new());
        for _ in 0..organisations {
            let u = draw.uniform();
            let &(_, size, sigma, level) = SECTORS.iter().find(|s| u < s.0).unwrap();
            let persons = (size.ln() - sigma * sigma / 2.0 + sigma * draw.normal())
                .exp()
                .round()
                .max(1.0) as i64;
            // Episodes per employed year: about 22 weighted days each,
            // the organisation's own level around its sector's.
            let rate = level / 100.0 * 366.0 / 22.0 * (0.6 + 0.8 * draw.uniform());
            let (mut pct_days, mut available) = (0i64, 0i64);
            for _ in 0..persons {
                let employed = if draw.uniform() < 0.8 {
                    366
                } else {
                    1 + (draw.uniform() * 365.0) as i64
                };
                available += employed;
                let mut left = employed;
                for _ in 0..draw.poisson(rate * employed as f64 / 366.0) {
                    let class = draw.uniform();
                    let (days, pct) = if class < 0.65 {
                        let days = 1.0 + draw.exponential(3.0).floor();
                        (days.min(7.0), draw.pick(&[(0.97, 100), (1.0, 50)]))
                    } else if class < 0.9 {
                        let days = 8.0 + draw.exponential(9.0).floor();
                        let pct = draw.pick(&[(0.85, 100), (0.95, 50), (1.0, 75)]);
                        (days.min(42.0), pct)
                    } else {
                        let days = 43.0 + (120f64.ln() + 0.9 * draw.normal()).exp().floor();
                        let pct =
                            draw.pick(&[(0.55, 100), (0.8, 50), (0.88, 75), (0.94, 40), (1.0, 25)]);
                        (days.min(730.0), pct)
                    };
                    let days = (days as i64).min(left);
                    left -= days;
                    pct_days += days * pct;
                }
            }
            headcount.push(persons);
            truth.push((pct_days, available));
        }
        let quotient = |(n, v): &(i64, i64)| (*v > 0).then(|| *n as f64 / *v as f64);
        let model = model_of(
            organisations,
            vec![
                (HEADCOUNT, Arc::new(Int64Array::from(headcount)) as ArrayRef),
                (
                    "absence_pct",
                    floats(&truth.iter().map(quotient).collect::<Vec<_>>()),
                ),
                (
                    "absence_days",
                    floats(
                        &truth
                            .iter()
                            .map(|(n, _)| Some(*n as f64 / 100.0))
                            .collect::<Vec<_>>(),
                    ),
                ),
                (
                    "available_days",
                    Arc::new(Int64Array::from(
                        truth.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                    )),
                ),
            ],
        );
        (model, truth)
    }

    /// The whole numbers from about `lo` to about `hi` (and none below 0)
    /// for which `holds`: an interval, searched from two past either end.
    fn whole_numbers(lo: f64, hi: f64, holds: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
        let (mut a, mut b) = ((lo.floor() as i64 - 2).max(0), hi.ceil() as i64 + 2);
        assert!(a == 0 || !holds(a), "the interval reaches below {a}");
        assert!(!holds(b), "the interval reaches above {b}");
        while a <= b && !holds(a) {
            a += 1;
        }
        while b >= a && !holds(b) {
            b -= 1;
        }
        (a <= b).then_some((a, b))
    }

    /// The attack on an organisation file read back from disk: per file
    /// row with an absence percentage, every whole number of
    /// percentage-weighted days (absence days × 100, the model's exact
    /// absence days to the hundredth) that some whole number of available
    /// days makes consistent with all the file publishes of the row:
    ///
    /// - the absence days, rounded as `banded` says (the rules the file's
    ///   metadata and the disclosure report carry), or exact if not;
    /// - the available days, likewise;
    /// - the absence percentage = pct_days ÷ available days, at the
    ///   precision `banded` gives it (re-rounding a candidate must give
    ///   the published value; unrounded, the quotient must be it exactly);
    /// - the size class: at most 366 available days per person below its
    ///   upper bound.
    ///
    /// As sorted, disjoint intervals of candidates.
    fn absence_day_candidates(
        file: &RecordBatch,
        banded: &BTreeMap<String, Banding>,
    ) -> Vec<Option<Vec<(i64, i64)>>> {
        let numbers = |c: &str| {
            as_f64(c, file.column_by_name(c).unwrap())
                .unwrap()
                .iter()
                .collect::<Vec<_>>()
        };
        let (pct, absence, available) = (
            numbers("absence_pct"),
            numbers("absence_days"),
            numbers("available_days"),
        );
        let classes = file.column_by_name(HEADCOUNT).unwrap().as_string::<i32>();
        let Some(Banding::Classes { bounds }) = banded.get(HEADCOUNT) else {
            panic!("headcount is classed")
        };
        let labels = class_labels(bounds);
        // Whether `v`, published as `banded` says for `column`, shows as
        // `shown`; and about where such values lie.
        let shows = |column: &str, v: f64, shown: f64| match banded.get(column) {
            Some(Banding::Round { to }) => round_to(v, *to) == shown,
            None => v == shown,
            Some(Banding::Classes { .. }) => panic!("{column} is a number"),
        };
        let half_step = |column: &str| match banded.get(column) {
            Some(Banding::Round { to }) => to / 2.0,
            _ => 0.0,
        };
        (0..file.num_rows())
            .map(|r| {
                let (Some(p), Some(a), Some(v)) = (pct[r], absence[r], available[r]) else {
                    return None;
                };
                let i = labels.iter().position(|l| l == classes.value(r)).unwrap();
                let most = bounds
                    .get(i + 1)
                    .map_or(i64::MAX, |hi| 366 * (*hi as i64 - 1));
                let (h, days) = (half_step("available_days"), half_step("absence_days"));
                let weighted = whole_numbers(100.0 * (a - days), 100.0 * (a + days), |n| {
                    shows("absence_days", n as f64 / 100.0, a)
                })?;
                let (v_lo, v_hi) =
                    whole_numbers(v - h, v + h, |d| shows("available_days", d as f64, v))?;
                let q = half_step("absence_pct");
                let mut found: Vec<(i64, i64)> = Vec::new();
                for d in v_lo.max(1)..=v_hi.min(most) {
                    let Some((lo, hi)) =
                        whole_numbers((p - q) * d as f64, (p + q) * d as f64, |n| {
                            shows("absence_pct", n as f64 / d as f64, p)
                        })
                    else {
                        continue;
                    };
                    let (lo, hi) = (lo.max(weighted.0), hi.min(weighted.1));
                    if lo <= hi {
                        found.push((lo, hi));
                    }
                }
                found.sort_unstable();
                let mut merged: Vec<(i64, i64)> = Vec::new();
                for (lo, hi) in found {
                    match merged.last_mut() {
                        Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
                        _ => merged.push((lo, hi)),
                    }
                }
                Some(merged)
            })
            .collect()
    }

    /// The organisation file as written to disk and read back.
    fn written_and_read(file: &OrganisationRelease) -> RecordBatch {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("organisations.parquet");
        crate::release::write_parquet(&path, &file.batch, &BTreeMap::new()).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// The attack on the written file: a reader who sees the absence
    /// percentage beside the rounded absence and available days looks
    /// for the whole numbers behind them ([`absence_day_candidates`]: the
    /// days as rounded, the percentage at the precision the file
    /// publishes it, the size class bounding the available days). Exact,
    /// the percentage is pct_days ÷ available days; reduced to its
    /// fraction it leaves, within the rounded available days, one
    /// multiple for most organisations, and with it their exact absence
    /// days. The claim tested, over 800 synthetic organisation-years (611
    /// released): for every released row the candidates hold the true
    /// absence days and more than one value for them (to the hundredth of
    /// a day the model keeps them in), spread over at least a whole day,
    /// so the file pins down no organisation's absence days. The rounded
    /// percentage still narrows them: to under 3 days for the narrowest
    /// row here, under 6 for 1% of the rows.
    ///
    /// And the attack has teeth: on the same model released with the
    /// percentage exact it pins down the exact absence days of at least
    /// 80% of the rows (557 of 611 here; the rest, small organisations,
    /// to a few values, where the fraction in lowest terms is small
    /// enough to have several multiples among the available days the
    /// rounding allows).
    #[test]
    fn the_absence_percentage_does_not_give_the_absence_days_back() {
        let (model, truth) = absence_model(800);
        let attack = |rules: &OrganisationRules| {
            let file = release_organisations(&model, rules, &research()).unwrap();
            let written = written_and_read(&file);
            let candidates = absence_day_candidates(&written, &file.disclosure.banded);
            (file, written, candidates)
        };
        let (file, written, candidates) = attack(&OrganisationRules::default());
        let pct = as_f64(
            "absence_pct",
            written.column_by_name("absence_pct").unwrap(),
        )
        .unwrap();
        let (mut attacked, mut pinned, mut within_a_day) = (0, Vec::new(), Vec::new());
        for (r, c) in candidates.iter().enumerate() {
            let Some(c) = c else { continue };
            attacked += 1;
            let (n, v) = truth[file.model_rows[r]];
            assert!(
                c.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n)),
                "row {r}: the attack misses the true absence days"
            );
            let count: i64 = c.iter().map(|(lo, hi)| hi - lo + 1).sum();
            if count == 1 {
                pinned.push((r, pct.value(r), n, v));
            } else if c[c.len() - 1].1 - c[0].0 < 100 {
                within_a_day.push(r);
            }
        }
        assert!(attacked > 600, "{attacked} rows with absence figures");
        if let Some((r, p, n, v)) = pinned.first() {
            panic!(
                "{} of {attacked} released rows have their exact absence days pinned down by \
                 the published percentage, e.g. row {r}: {p}% beside the rounded days leaves \
                 only {} absence days (of {v} available)",
                pinned.len(),
                *n as f64 / 100.0,
            );
        }
        assert!(
            within_a_day.is_empty(),
            "{} of {attacked} released rows have their absence days within a day, e.g. row {}",
            within_a_day.len(),
            within_a_day[0]
        );

        let mut exact = OrganisationRules::default();
        exact.banded.remove("absence_pct");
        let (_, _, candidates) = attack(&exact);
        let rows = candidates.iter().flatten().count();
        let pinned = candidates
            .iter()
            .flatten()
            .filter(|c| c.len() == 1 && c[0].0 == c[0].1)
            .count();
        assert!(
            pinned * 5 >= rows * 4,
            "exact, the percentage pins down only {pinned} of {rows} rows' absence days"
        );
    }

    /// A pipeline that publishes the absence percentage exactly beside
    /// the rounded days (the default rounds it too): a reader narrows each
    /// side by the other.
    #[test]
    fn a_published_ratio_narrows_both_rounded_sides() {
        let mut rules = OrganisationRules::default();
        rules.banded.remove("absence_pct");
        let absence = [123.45, 0.0];
        let available = [3_650i64, 4_100];
        let model = model_of(
            2,
            vec![
                ("headcount", Arc::new(Int64Array::from(vec![10i64, 12]))),
                ("absence_pct", floats(&[Some(12345.0 / 3650.0), Some(0.0)])),
                ("absence_days", floats(&absence.map(Some))),
                (
                    "available_days",
                    Arc::new(Int64Array::from(available.to_vec())),
                ),
            ],
        );
        let file = release_organisations(&model, &rules, &research()).unwrap();
        let absence_told = file.told("absence_days").unwrap();
        let available_told = file.told("available_days").unwrap();
        // Rounded alone: 100 ± 50 and 4000 ± 500. With the percentage
        // (3.382…%), available days are at least 50 / 3.382…% = 1478.3
        // (no news) and at most 150 / 3.382…% = 4435.1; absence days at
        // least 3.382…% × 3500 = 118.4.
        let Told::Number { lo, hi, .. } = absence_told[0] else {
            panic!("{:?}", absence_told[0])
        };
        let p = 12345.0 / 3650.0 / 100.0;
        assert!(
            (lo - p * 3500.0).abs() < 1e-3 && (hi - 150.0).abs() < 1e-3,
            "[{lo}, {hi}]"
        );
        assert!(lo <= absence[0] && absence[0] <= hi);
        let Told::Number { lo, hi, .. } = available_told[0] else {
            panic!("{:?}", available_told[0])
        };
        assert!(
            (lo - 3500.0).abs() < 1e-3 && (hi - 150.0 / p).abs() < 1e-3,
            "[{lo}, {hi}]"
        );
        // A percentage of 0 is no absence at all; the days available stay
        // as rounded.
        assert_eq!(
            absence_told[1],
            Told::Number {
                lo: 0.0,
                hi: 0.0,
                hi_excluded: false
            }
        );
        assert_eq!(
            available_told[1],
            Told::Number {
                lo: 3_500.0,
                hi: 4_500.0,
                hi_excluded: false
            }
        );
    }

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
