//! Generalisation hierarchies applied to Arrow columns.
//!
//! A column is first reduced to its distinct values; each distinct value is
//! generalised once per level, and rows only carry the integer code of
//! their value. What the disclosure engine wants — a code per row and a map
//! per level — falls out directly, and label strings stay out of the
//! per-row work.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};

use crate::config::Hierarchy;
use crate::error::{ExportError, model_column};
use koppel_disclosure::NULL as NULL_CODE;

/// A value of a column before generalisation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    Int(i64),
    Num(Num),
    Text(String),
}

/// A floating-point value, ordered and compared by `total_cmp` (so that
/// values can be sorted and deduplicated; models hold no NaN).
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Num {}
/// By the bits, as `total_cmp` tells values apart by them.
impl Hash for Num {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}
impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Num {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Atom {
    fn label(&self) -> String {
        match self {
            Atom::Int(v) => v.to_string(),
            Atom::Num(v) => number_label(v.0),
            Atom::Text(s) => s.clone(),
        }
    }
}

/// A number as people write it: no trailing zeros, at most 6 decimals.
pub fn number_label(v: f64) -> String {
    let text = format!("{v:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// One level of a generalised column: a code per row and a label per code.
#[derive(Debug, Clone)]
pub struct Level {
    pub codes: Vec<u32>,
    pub labels: Vec<String>,
}

/// A column with every level of its hierarchy worked out: the code of each
/// row's value (an index into its distinct values), and per level a map
/// from value to category and the categories' labels.
#[derive(Debug, Clone)]
pub struct GeneralisedColumn {
    pub name: String,
    /// Distinct-value code of every row; [`NULL_CODE`] when unknown.
    pub values: Vec<u32>,
    /// `maps[l][value]`: the category of a value at level l.
    pub maps: Vec<Vec<u32>>,
    /// `labels[l][category]`.
    pub labels: Vec<Vec<String>>,
}

impl GeneralisedColumn {
    pub fn levels(&self) -> usize {
        self.maps.len()
    }

    /// The category of `row` at `level`.
    pub fn code(&self, level: usize, row: usize) -> u32 {
        let v = self.values[row];
        if v == NULL_CODE {
            NULL_CODE
        } else {
            self.maps[level][v as usize]
        }
    }

    /// Codes of every row at one level, with its labels.
    pub fn level(&self, level: usize) -> Level {
        Level {
            codes: (0..self.values.len())
                .map(|r| self.code(level, r))
                .collect(),
            labels: self.labels[level].clone(),
        }
    }

    /// The released column at `level`: labels, null where the category is
    /// null or where `suppressed` marks the row.
    pub fn to_array(&self, level: usize, suppressed: Option<&[bool]>) -> ArrayRef {
        let labels = &self.labels[level];
        let values = (0..self.values.len()).map(|row| {
            let code = self.code(level, row);
            if code == NULL_CODE || suppressed.is_some_and(|s| s[row]) {
                None
            } else {
                Some(labels[code as usize].as_str())
            }
        });
        std::sync::Arc::new(values.collect::<StringArray>())
    }
}

/// Reads a column's values as atoms (integers stay integers, booleans and
/// strings become text).
pub fn atoms(name: &str, array: &dyn Array) -> Result<Vec<Option<Atom>>, ExportError> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    match array.data_type() {
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Int(a.value(i)))));
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Int(a.value(i) as i64))));
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Num(Num(a.value(i))))));
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend((0..n).map(|i| {
                a.is_valid(i)
                    .then(|| Atom::Text(if a.value(i) { "true" } else { "false" }.into()))
            }));
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Text(a.value(i).to_owned()))));
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Text(a.value(i).to_owned()))));
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            out.extend((0..n).map(|i| a.is_valid(i).then(|| Atom::Text(a.value(i).to_owned()))));
        }
        other => {
            return Err(ExportError::Column {
                column: name.into(),
                message: format!("cannot generalise a column of type {other}"),
            });
        }
    }
    Ok(out)
}

/// The types [`atoms`] reads.
fn is_atom_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int64
            | DataType::Int32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// [`atoms`] of the column `name` of the model read from `file`; a column
/// of another type is an error naming the file, the column and the type.
pub(crate) fn model_atoms(
    batch: &RecordBatch,
    file: &str,
    name: &str,
) -> Result<Vec<Option<Atom>>, ExportError> {
    let array = model_column(batch, file, name)?;
    if !is_atom_type(array.data_type()) {
        return Err(ExportError::ModelColumnType {
            file: file.into(),
            column: name.into(),
            found: array.data_type().clone(),
            expected: "Int64, Int32, Float64, Boolean, Utf8, LargeUtf8 or Utf8View".into(),
        });
    }
    atoms(name, array.as_ref())
}

/// Generalises `values` through every level of `hierarchy`. `side` holds
/// the FWG level column for [`Hierarchy::FwgLevelBand`].
pub fn generalise(
    name: &str,
    values: &[Option<Atom>],
    hierarchy: &Hierarchy,
    side: Option<&[Option<Atom>]>,
) -> Result<GeneralisedColumn, ExportError> {
    // Each row's value numbered on first sight (a hash lookup, skipped
    // when a row repeats the one before it, as a person's years do), with
    // the first side value not null among its rows; then the distinct
    // values sorted.
    let mut number: HashMap<&Atom, u32> = HashMap::new();
    let mut seen: Vec<(&Atom, Option<&Atom>)> = Vec::new();
    let mut first_seen: Vec<u32> = Vec::with_capacity(values.len());
    let mut previous: Option<(&Atom, u32)> = None;
    for (row, v) in values.iter().enumerate() {
        let Some(v) = v else {
            first_seen.push(NULL_CODE);
            continue;
        };
        let n = match previous {
            Some((p, n)) if p == v => n,
            _ => *number.entry(v).or_insert_with(|| {
                seen.push((v, None));
                (seen.len() - 1) as u32
            }),
        };
        previous = Some((v, n));
        let slot = &mut seen[n as usize].1;
        if slot.is_none() {
            *slot = side.and_then(|s| s[row].as_ref());
        }
        first_seen.push(n);
    }
    let mut order: Vec<u32> = (0..seen.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| seen[a as usize].0.cmp(seen[b as usize].0));
    let mut rank = vec![0u32; seen.len()];
    for (r, &n) in order.iter().enumerate() {
        rank[n as usize] = r as u32;
    }
    let level_count = hierarchy.levels();
    // labels_of[i][level] for the i-th distinct value in order.
    let mut labels_of: Vec<Vec<Option<String>>> = Vec::with_capacity(seen.len());
    for &n in &order {
        let (atom, side) = seen[n as usize];
        let labels = (0..level_count)
            .map(|level| label_at(name, atom, side, hierarchy, level))
            .collect::<Result<Vec<_>, _>>()?;
        labels_of.push(labels);
    }
    let row_values: Vec<u32> = first_seen
        .iter()
        .map(|&n| {
            if n == NULL_CODE {
                NULL_CODE
            } else {
                rank[n as usize]
            }
        })
        .collect();
    let mut maps = Vec::with_capacity(level_count);
    let mut all_labels = Vec::with_capacity(level_count);
    for level in 0..level_count {
        // Codes in order of first appearance over the sorted distinct
        // values, so labels keep the values' order (age bands ascending).
        let mut labels: Vec<String> = Vec::new();
        let mut code_of_label: BTreeMap<&str, u32> = BTreeMap::new();
        let mut code_of_distinct = Vec::with_capacity(labels_of.len());
        for l in &labels_of {
            code_of_distinct.push(match &l[level] {
                None => NULL_CODE,
                Some(label) => *code_of_label.entry(label.as_str()).or_insert_with(|| {
                    labels.push(label.clone());
                    (labels.len() - 1) as u32
                }),
            });
        }
        maps.push(code_of_distinct);
        all_labels.push(labels);
    }
    Ok(GeneralisedColumn {
        name: name.into(),
        values: row_values,
        maps,
        labels: all_labels,
    })
}

/// A number's value, for hierarchies of numbers.
fn number(name: &str, atom: &Atom) -> Result<f64, ExportError> {
    match atom {
        Atom::Int(v) => Ok(*v as f64),
        Atom::Num(v) => Ok(v.0),
        Atom::Text(t) => t.parse().map_err(|_| ExportError::Column {
            column: name.into(),
            message: "this hierarchy needs numbers".into(),
        }),
    }
}

fn int(name: &str, atom: &Atom) -> Result<i64, ExportError> {
    match atom {
        Atom::Int(v) => Ok(*v),
        Atom::Num(_) => Err(ExportError::Column {
            column: name.into(),
            message: "this hierarchy needs whole numbers".into(),
        }),
        Atom::Text(t) => t.parse().map_err(|_| ExportError::Column {
            column: name.into(),
            message: "this hierarchy needs whole numbers".into(),
        }),
    }
}

fn label_at(
    name: &str,
    atom: &Atom,
    side: Option<&Atom>,
    hierarchy: &Hierarchy,
    level: usize,
) -> Result<Option<String>, ExportError> {
    if level + 1 == hierarchy.levels() {
        return Ok(None);
    }
    Ok(match hierarchy {
        Hierarchy::Categorical => Some(atom.label()),
        Hierarchy::Bands { widths } => {
            let v = int(name, atom)?;
            if level == 0 {
                Some(v.to_string())
            } else {
                Some(band_label(v, widths[level - 1] as i64))
            }
        }
        Hierarchy::Classes { levels } => Some(match atom {
            // Fractions (weighted days) get half-open labels: `1-<8`.
            Atom::Num(v) => fraction_class_label(v.0, &levels[level]),
            _ => class_label(number(name, atom)?, &levels[level]),
        }),
        Hierarchy::Steps { widths } => {
            let v = number(name, atom)?;
            if level == 0 {
                Some(number_label(v))
            } else {
                let w = widths[level - 1];
                let lo = (v / w).floor() * w;
                Some(format!("{}-{}", number_label(lo), number_label(lo + w)))
            }
        }
        Hierarchy::Postcode => {
            let v = int(name, atom)?;
            match level {
                0 => Some(v.to_string()),
                1 => Some(format!("{}xx", v / 100)),
                2 => province(v).map(str::to_owned),
                _ => province(v).map(|p| landsdeel(p).to_owned()),
            }
        }
        Hierarchy::Groups { levels } => {
            if level == 0 {
                Some(atom.label())
            } else {
                let group =
                    levels[level - 1]
                        .get(&atom.label())
                        .ok_or_else(|| ExportError::Column {
                            column: name.into(),
                            message: format!("a value has no group at level {level}"),
                        })?;
                Some(group.clone())
            }
        }
        Hierarchy::FwgLevelBand { width, .. } => match level {
            0 => Some(atom.label()),
            _ => match side {
                Some(l) => Some(format!("FWG {}", band_label(int(name, l)?, *width as i64))),
                None => None,
            },
        },
    })
}

fn band_label(v: i64, width: i64) -> String {
    let lo = v.div_euclid(width) * width;
    format!("{lo}-{}", lo + width - 1)
}

/// Labels of classes of fractions by lower bounds: `"<0"`, `"1-<8"`,
/// `"183+"`.
pub fn fraction_class_label(v: f64, bounds: &[i64]) -> String {
    match bounds.iter().rposition(|b| *b as f64 <= v) {
        None => format!("<{}", bounds[0]),
        Some(i) if i + 1 == bounds.len() => format!("{}+", bounds[i]),
        Some(i) => format!("{}-<{}", bounds[i], bounds[i + 1]),
    }
}

/// Labels of classes of whole numbers by lower bounds: `"<0"`, `"50-99"`,
/// `"2500+"`.
pub fn class_label(v: f64, bounds: &[i64]) -> String {
    match bounds.iter().rposition(|b| *b as f64 <= v) {
        None => format!("<{}", bounds[0]),
        Some(i) if i + 1 == bounds.len() => format!("{}+", bounds[i]),
        Some(i) => format!("{}-{}", bounds[i], bounds[i + 1] - 1),
    }
}

/// The part of the country (CBS landsdeel) of a province.
pub fn landsdeel(province: &str) -> &'static str {
    match province {
        "Groningen" | "Friesland" | "Drenthe" => "Noord-Nederland",
        "Overijssel" | "Gelderland" | "Flevoland" => "Oost-Nederland",
        "Noord-Brabant" | "Limburg" => "Zuid-Nederland",
        _ => "West-Nederland",
    }
}

/// The province of a four-digit postcode, by its two-digit region. Regions
/// that straddle a border go to the province holding most of their
/// addresses; the map is coarse on purpose (it only has to group regions).
pub fn province(postcode4: i64) -> Option<&'static str> {
    let pc2 = postcode4 / 100;
    Some(match pc2 {
        10..=12 | 14..=21 => "Noord-Holland",
        13 | 82 | 83 => "Flevoland",
        22..=33 | 42 => "Zuid-Holland",
        34..=39 => "Utrecht",
        40 | 41 | 65..=73 => "Gelderland",
        43..=45 => "Zeeland",
        46..=57 => "Noord-Brabant",
        58..=64 => "Limburg",
        74..=77 | 80 | 81 => "Overijssel",
        78 | 79 | 93 | 94 => "Drenthe",
        84..=92 => "Friesland",
        95..=99 => "Groningen",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[Option<i64>]) -> Vec<Option<Atom>> {
        v.iter().map(|v| v.map(Atom::Int)).collect()
    }

    fn labels(col: &GeneralisedColumn, level: usize) -> Vec<Option<&str>> {
        (0..col.values.len())
            .map(|r| {
                let c = col.code(level, r);
                (c != NULL_CODE).then(|| col.labels[level][c as usize].as_str())
            })
            .collect()
    }

    #[test]
    fn ages_generalise_into_nested_bands_and_then_vanish() {
        let h = Hierarchy::Bands {
            widths: vec![5, 10],
        };
        let col = generalise(
            "age",
            &ints(&[Some(27), Some(31), None, Some(25)]),
            &h,
            None,
        )
        .unwrap();
        assert_eq!(col.levels(), 4);
        assert_eq!(labels(&col, 0), [Some("27"), Some("31"), None, Some("25")]);
        assert_eq!(
            labels(&col, 1),
            [Some("25-29"), Some("30-34"), None, Some("25-29")]
        );
        assert_eq!(
            labels(&col, 2),
            [Some("20-29"), Some("30-39"), None, Some("20-29")]
        );
        assert_eq!(labels(&col, 3), [None, None, None, None]);
        // Codes follow the values' order.
        assert_eq!(col.labels[1], ["25-29", "30-34"]);
    }

    #[test]
    fn postcodes_go_to_region_then_province() {
        let col = generalise(
            "postcode4",
            &ints(&[Some(1012), Some(9711), Some(1013)]),
            &Hierarchy::Postcode,
            None,
        )
        .unwrap();
        assert_eq!(labels(&col, 1), [Some("10xx"), Some("97xx"), Some("10xx")]);
        assert_eq!(
            labels(&col, 2),
            [
                Some("Noord-Holland"),
                Some("Groningen"),
                Some("Noord-Holland")
            ]
        );
        assert_eq!(
            labels(&col, 3),
            [
                Some("West-Nederland"),
                Some("Noord-Nederland"),
                Some("West-Nederland")
            ]
        );
        assert_eq!(labels(&col, 4), [None, None, None]);
    }

    #[test]
    fn classes_and_fwg_bands() {
        let h = Hierarchy::Classes {
            levels: vec![vec![0, 50, 250], vec![0, 250]],
        };
        let col = generalise("size", &ints(&[Some(12), Some(60), Some(900)]), &h, None).unwrap();
        assert_eq!(
            labels(&col, 0),
            [Some("0-49"), Some("50-249"), Some("250+")]
        );
        assert_eq!(
            labels(&col, 1),
            [Some("0-249"), Some("0-249"), Some("250+")]
        );
        let codes = [
            Some(Atom::Text("1234".into())),
            Some(Atom::Text("2001".into())),
        ];
        let levels = ints(&[Some(35), Some(60)]);
        let h = Hierarchy::FwgLevelBand {
            level_column: "fwg_level".into(),
            width: 10,
        };
        let col = generalise("fwg_function_code", &codes, &h, Some(&levels)).unwrap();
        assert_eq!(labels(&col, 1), [Some("FWG 30-39"), Some("FWG 60-69")]);
    }

    #[test]
    fn numbers_step_into_nested_bands() {
        let h = Hierarchy::Steps {
            widths: vec![0.5, 1.0],
        };
        let values: Vec<Option<Atom>> = [Some(2.74), Some(3.0), None, Some(1.25)]
            .iter()
            .map(|v| v.map(|v| Atom::Num(Num(v))))
            .collect();
        let col = generalise("workload", &values, &h, None).unwrap();
        assert_eq!(col.levels(), 4);
        assert_eq!(
            labels(&col, 0),
            [Some("2.74"), Some("3"), None, Some("1.25")]
        );
        assert_eq!(
            labels(&col, 1),
            [Some("2.5-3"), Some("3-3.5"), None, Some("1-1.5")]
        );
        assert_eq!(
            labels(&col, 2),
            [Some("2-3"), Some("3-4"), None, Some("1-2")]
        );
        assert_eq!(labels(&col, 3), [None, None, None, None]);
        // Fractions fall in whole-number classes by their value.
        let h = Hierarchy::Classes {
            levels: vec![vec![0, 1, 8]],
        };
        let days: Vec<Option<Atom>> = [0.0, 0.5, 7.5, 8.0]
            .iter()
            .map(|v| Some(Atom::Num(Num(*v))))
            .collect();
        let col = generalise("absence_days", &days, &h, None).unwrap();
        assert_eq!(
            labels(&col, 0),
            [Some("0-<1"), Some("0-<1"), Some("1-<8"), Some("8+")]
        );
    }
}
