//! The person file: the requested variables, protected against every
//! declared recipient by the disclosure engine (`koppel-disclosure`), with
//! this release's research IDs.
//!
//! This module adapts the models to the engine — each variable's values as
//! codes with its hierarchy's levels, the workforce as the population,
//! the recipients' known variables from provenance — and turns the
//! engine's choice back into columns.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use koppel_contract::IdentifierType;
use koppel_contract::files::linked::PERSON_MODEL_FILE;
use koppel_disclosure::{
    Attacker, Microdata, NULL, Params, Population, Reference, SearchStep, Sensitive, Variable,
    protect,
};
use koppel_pseudonymise::Pseudonymiser;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{Hierarchy, PersonRules, ProtectionUnit, Recipient, ResearchIds};
use crate::error::{ExportError, PseudonymColumn, pseudonym_column, typed_column};
use crate::hierarchy::{Atom, GeneralisedColumn, atoms, generalise, model_atoms};
use crate::provenance;

/// The derived variable: size class of the main employer.
pub const ORGANISATION_SIZE: &str = "organisation_size";
/// The employer's research ID, as a variable an employer knows.
pub const ORG_ID: &str = "org_id";

/// An organisation and year, by stage-2 pseudonym.
pub type OrgYear = ([u8; 32], i32);

/// What disclosure control did to the person file.
#[derive(Debug, Clone, Serialize)]
pub struct PersonDisclosure {
    pub k: u32,
    pub max_suppression_pct: f64,
    pub unit: ProtectionUnit,
    pub research_ids: ResearchIds,
    pub rows_in: u64,
    pub rows_released: u64,
    /// Released rows with at least one value suppressed locally.
    pub rows_locally_suppressed: u64,
    /// Rows not released: their person stayed at risk with nothing left
    /// to suppress.
    pub rows_dropped: u64,
    pub persons_in: u64,
    pub persons_released: u64,
    /// Rows of the workforce (and respondents off the payroll) the k-map
    /// counts in; `None` when linking wrote no workforce model and every
    /// recipient was counted in the released rows instead (stricter).
    pub population_rows: Option<u64>,
    /// The smallest class any recipient finds among released persons.
    pub smallest_class: u64,
    pub nodes_evaluated: u64,
    /// The search's cost: weighted root-mean-square loss over the
    /// quasi-identifiers (0 as linked, 1 all suppressed).
    pub information_loss: f64,
    /// Quasi-identifier values known as linked that are null in the release.
    pub values_suppressed_pct: f64,
    /// Whether that share stayed within `max_suppression_pct`; when not,
    /// the node closest to it was released (no recipient finds a class
    /// below k either way).
    pub suppression_target_met: bool,
    pub quasi_identifiers: Vec<QuasiIdentifierOutcome>,
    pub recipients: Vec<RecipientRisk>,
    /// The search's path from the minimum levels to the chosen node.
    pub search: Vec<SearchStep>,
    pub l_diversity: Vec<LDiversityOutcome>,
    /// Person rows whose employer's organisation row was left out, so the
    /// employer is not identified in the person file either.
    pub organisation_ids_withheld: u64,
    /// Person-model columns not requested, and so not released.
    pub columns_withheld: Vec<String>,
}

/// One released variable.
#[derive(Debug, Clone, Serialize)]
pub struct QuasiIdentifierOutcome {
    pub column: String,
    pub hierarchy: Hierarchy,
    pub levels: usize,
    /// 0 is the value as linked; the last level withholds it.
    pub level: usize,
    pub min_level: usize,
    pub max_level: usize,
    pub categories: usize,
    /// The recipients who know it.
    pub known_by: Vec<Recipient>,
    /// Values known as linked that are null in the released rows: locally
    /// suppressed or generalised away.
    pub values_suppressed: u64,
    /// Values already unknown as linked (for example no payroll).
    pub values_missing: u64,
    /// Mean loss over known values: level height, 1 when suppressed.
    pub information_loss: f64,
}

/// The risk report for one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientRisk {
    pub recipient: Recipient,
    pub assumption: &'static str,
    /// Counted in the released persons (`sample`) or the workforce
    /// (`population`, k-map).
    pub reference: Reference,
    /// Released variables it knows.
    pub knows: Vec<String>,
    pub persons: u64,
    /// Persons in classes below k with every variable at its most detailed
    /// allowed level and nothing suppressed.
    pub at_risk_before: u64,
    pub at_risk_before_pct: f64,
    /// After protection (0 by construction; recounted).
    pub at_risk_after: u64,
    pub smallest_class: u64,
    /// Values suppressed locally on its account.
    pub values_suppressed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LDiversityOutcome {
    pub column: String,
    pub l: u32,
}

pub struct PersonRelease {
    pub batch: RecordBatch,
    pub disclosure: PersonDisclosure,
    /// Category labels of every generalised variable, for the codebook.
    pub categories: HashMap<String, Vec<String>>,
    /// The person-model row of each released row, in order: person tables
    /// read from the model what the file does not carry.
    pub model_rows: Vec<usize>,
}

/// The models the person file is made from.
pub struct PersonInputs<'a> {
    pub people: &'a RecordBatch,
    /// The whole workforce (`workforce_model.parquet`), if linking wrote it.
    pub workforce: Option<&'a RecordBatch>,
    pub headcounts: &'a HashMap<OrgYear, i64>,
    pub released_orgs: &'a HashSet<OrgYear>,
}

/// Headcount of each row's main employer in the year.
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

/// The workforce columns [`release_persons`] reads (the k-map's
/// population): pseudonyms and year, the released variables and the FWG
/// levels their bands come from. Linking writes more; export reads these.
pub fn population_columns(rules: &PersonRules) -> BTreeSet<String> {
    let mut columns: BTreeSet<String> = ["person_p2", "org_p2", "year"]
        .map(String::from)
        .into_iter()
        .collect();
    for v in &rules.variables {
        columns.insert(v.column.clone());
        if let Hierarchy::FwgLevelBand { level_column, .. } = &v.hierarchy {
            columns.insert(level_column.clone());
        }
    }
    columns
}

/// A released variable as the engine takes it, its generalised column, and
/// its codes in the population (when the population holds it).
type CodedVariable = (Variable, GeneralisedColumn, Option<Vec<u32>>);

/// A model read as the person file needs it.
struct ModelView<'a> {
    batch: &'a RecordBatch,
    file: &'a str,
    years: &'a Int32Array,
    org: PseudonymColumn<'a>,
}

impl<'a> ModelView<'a> {
    fn new(batch: &'a RecordBatch, file: &'a str) -> Result<Self, ExportError> {
        Ok(ModelView {
            batch,
            file,
            years: typed_column::<Int32Type>(batch, file, "year")?,
            org: pseudonym_column(batch, file, "org_p2")?,
        })
    }

    /// The values of a released variable in this model's rows; `None`
    /// when the model does not hold it.
    fn atoms(
        &self,
        column: &str,
        headcounts: &HashMap<OrgYear, i64>,
    ) -> Result<Option<Vec<Option<Atom>>>, ExportError> {
        Ok(Some(match column {
            ORGANISATION_SIZE => atoms(
                column,
                &organisation_size(&self.org, self.years, headcounts),
            )?,
            ORG_ID => (0..self.batch.num_rows())
                .map(|r| self.org.key(r).map(|k| Atom::Text(hex::encode(k))))
                .collect(),
            "on_payroll" if self.batch.column_by_name(column).is_none() => {
                // The workforce is the payroll: everyone in it is on it.
                vec![Some(Atom::Text("true".into())); self.batch.num_rows()]
            }
            _ if self.batch.column_by_name(column).is_none() => return Ok(None),
            _ => model_atoms(self.batch, self.file, column)?,
        }))
    }
}

/// Applies the person rules: see the module documentation.
pub fn release_persons(
    inputs: &PersonInputs<'_>,
    rules: &PersonRules,
    research: &Pseudonymiser,
    release_name: &str,
) -> Result<PersonRelease, ExportError> {
    let started = std::time::Instant::now();
    let people = inputs.people;
    let rows = people.num_rows();
    let file = PERSON_MODEL_FILE;
    let p2 = pseudonym_column(people, file, "person_p2")?;
    let sample = ModelView::new(people, file)?;
    let on_payroll = crate::error::boolean_column(people, file, "on_payroll")?;
    // The population: the workforce, plus respondents off the payroll
    // (they are part of the population the sample is drawn from).
    let workforce = match inputs.workforce {
        Some(w) => Some(ModelView::new(
            w,
            koppel_contract::files::linked::WORKFORCE_MODEL_FILE,
        )?),
        None => None,
    };
    let off_payroll: Vec<usize> = (0..rows)
        .filter(|&r| !(on_payroll.is_valid(r) && on_payroll.value(r)))
        .collect();

    // Each variable over sample rows and then population rows, generalised
    // once so that both share one code dictionary.
    let (year, year_population) = year_variable(sample.years, workforce.as_ref(), &off_payroll);
    let mut engine_variables = vec![year];
    let mut population_codes: Vec<Option<Vec<u32>>> = vec![year_population];
    let mut generalised: Vec<GeneralisedColumn> = Vec::new();
    // The population's values of a column: the workforce's, then the
    // respondents' off the payroll (`own` holds the respondents').
    let population_of = |own: &[Option<Atom>],
                         workforce_values: Option<Vec<Option<Atom>>>|
     -> Option<Vec<Option<Atom>>> {
        let mut values = workforce_values?;
        values.extend(off_payroll.iter().map(|&r| own[r].clone()));
        Some(values)
    };
    // Variables are coded independently: in parallel, results in order
    // (and of two bad variables, the first one's error, every time).
    let coded: Vec<Result<CodedVariable, ExportError>> = rules
        .variables
        .par_iter()
        .map(|v| {
            let own = sample.atoms(&v.column, inputs.headcounts)?.ok_or_else(|| {
                ExportError::ModelColumnMissing {
                    file: file.into(),
                    column: v.column.clone(),
                }
            })?;
            let side = match &v.hierarchy {
                Hierarchy::FwgLevelBand { level_column, .. } => {
                    let mut s = model_atoms(people, file, level_column)?;
                    if let Some(w) = &workforce {
                        let in_workforce = w
                            .atoms(level_column, inputs.headcounts)?
                            .unwrap_or_else(|| vec![None; w.batch.num_rows()]);
                        let population = population_of(&s, Some(in_workforce));
                        s.extend(population.into_iter().flatten());
                    }
                    Some(s)
                }
                _ => None,
            };
            let in_workforce = match &workforce {
                Some(w) => w.atoms(&v.column, inputs.headcounts)?,
                None => None,
            };
            let population = population_of(&own, in_workforce);
            let has_values = population.is_some();
            let mut values = own;
            values.extend(population.into_iter().flatten());
            let mut g = generalise(&v.column, &values, &v.hierarchy, side.as_deref())?;
            // Rows past the respondents' are the population's.
            let population = g.values.split_off(rows);
            let variable = Variable {
                name: v.column.clone(),
                codes: g.values.clone(),
                levels: g.maps.clone(),
                min_level: v.min_level,
                max_level: v.max_level(),
                weight: v.weight,
                suppressible: true,
            };
            Ok((variable, g, has_values.then_some(population)))
        })
        .collect();
    for coded in coded {
        let (variable, g, population) = coded?;
        engine_variables.push(variable);
        population_codes.push(population);
        generalised.push(g);
    }
    let population_rows = workforce
        .as_ref()
        .map(|w| (w.batch.num_rows() + off_payroll.len()) as u64);
    let has_population = workforce.is_some();

    let recipients: Vec<Recipient> = {
        let set: BTreeSet<Recipient> = rules.recipients.iter().copied().collect();
        set.into_iter().collect()
    };
    let attackers: Vec<Attacker> = recipients
        .iter()
        .map(|&r| {
            let knows = engine_variables
                .iter()
                .enumerate()
                .filter(|(_, v)| provenance::knows(r, &v.name))
                .map(|(i, _)| i)
                .collect();
            let reference = if has_population {
                provenance::reference(r)
            } else {
                Reference::Sample
            };
            Attacker {
                name: r.as_str().into(),
                knows,
                reference,
            }
        })
        .collect();
    let mut sensitive = Vec::new();
    for l in &rules.l_diversity {
        let values = model_atoms(people, file, &l.column)?;
        let g = generalise(&l.column, &values, &Hierarchy::Categorical, None)?;
        sensitive.push(Sensitive {
            name: l.column.clone(),
            codes: g.values.clone(),
            l: l.l as usize,
        });
    }
    let units: Vec<u32> = match rules.unit {
        ProtectionUnit::Person => person_units(&p2),
        ProtectionUnit::Year => (0..rows as u32).collect(),
    };
    // The population's persons: a respondent surveyed in two years is
    // matched by workers on the payroll in both (their off-payroll rows
    // are theirs too). With yearly units, every row stands alone.
    let population_units = match (rules.unit, &workforce) {
        (ProtectionUnit::Person, Some(w)) => {
            let theirs = pseudonym_column(
                w.batch,
                koppel_contract::files::linked::WORKFORCE_MODEL_FILE,
                "person_p2",
            )?;
            Some(person_units_of(
                (0..w.batch.num_rows())
                    .map(|r| theirs.key(r))
                    .chain(off_payroll.iter().map(|&r| p2.key(r))),
            ))
        }
        _ => None,
    };
    let microdata = Microdata {
        variables: engine_variables,
        units,
        sensitive,
        population: has_population.then_some(Population {
            codes: population_codes,
            units: population_units,
        }),
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "person variables coded"
    );
    let started = std::time::Instant::now();
    let protection = protect(
        &microdata,
        &attackers,
        &Params {
            k: rules.k as usize,
            max_suppression: rules.max_suppression_pct / 100.0,
            max_variable_suppression: rules.max_variable_suppression_pct / 100.0,
            strict: rules.strict_suppression,
        },
    )?;

    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "person file protected"
    );
    // Research IDs: per release (the key derived for this release's name)
    // or a stable panel key; per year too when years must not link.
    let ids = match rules.research_ids {
        ResearchIds::PerRelease => research.derive(release_name),
        ResearchIds::StablePanel => research.clone(),
    };
    let person_ids: StringArray = match rules.unit {
        ProtectionUnit::Person => ids.research_ids(IdentifierType::Bsn, p2.array),
        ProtectionUnit::Year => {
            let mut by_year: HashMap<i32, StringArray> = HashMap::new();
            for &y in sample.years.values().iter().collect::<BTreeSet<_>>() {
                by_year.insert(
                    y,
                    ids.derive(&format!("year {y}"))
                        .research_ids(IdentifierType::Bsn, p2.array),
                );
            }
            (0..rows)
                .map(|r| Some(by_year[&sample.years.value(r)].value(r).to_owned()))
                .collect()
        }
    };

    let keep: Vec<bool> = protection.dropped.iter().map(|d| !d).collect();
    let mut fields: Vec<Field> = vec![
        ids.field("person_id", IdentifierType::Bsn, false),
        Field::new("year", DataType::Int32, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(person_ids), Arc::new(sample.years.clone())];
    let mut categories = HashMap::new();
    let mut outcomes = Vec::new();
    let mut withheld_orgs = 0u64;
    for (i, (v, g)) in rules.variables.iter().zip(&generalised).enumerate() {
        let index = i + 1;
        let level = protection.levels[index];
        let suppressed = &protection.suppressed[index];
        let outcome = &protection.variables[index];
        let (field, array): (Field, ArrayRef) = if v.column == ORG_ID {
            let org_ids = ids.research_ids(IdentifierType::Kvk, sample.org.array);
            let values: StringArray = (0..rows)
                .map(|r| {
                    let key = sample.org.key(r)?;
                    if level > 0 || suppressed[r] {
                        return None;
                    }
                    if inputs.released_orgs.contains(&(key, sample.years.value(r))) {
                        Some(org_ids.value(r).to_owned())
                    } else {
                        withheld_orgs += u64::from(keep[r]);
                        None
                    }
                })
                .collect();
            (
                ids.field(ORG_ID, IdentifierType::Kvk, true),
                Arc::new(values),
            )
        } else if level == 0
            && people.column_by_name(&v.column).is_some()
            && !matches!(v.hierarchy, Hierarchy::Classes { .. })
        {
            // As linked: the model's own type, null where suppressed.
            let original = people.column_by_name(&v.column).expect("checked");
            (
                Field::new(&v.column, original.data_type().clone(), true),
                null_where(original, suppressed)?,
            )
        } else {
            categories.insert(v.column.clone(), g.labels[level].clone());
            (
                Field::new(&v.column, DataType::Utf8, true),
                g.to_array(level, Some(suppressed)),
            )
        };
        fields.push(field);
        columns.push(array);
        // Over the released rows, as a researcher counts them: unknown as
        // linked, or known and null in the file.
        let missing = (0..rows)
            .filter(|&r| keep[r] && g.values[r] == NULL)
            .count() as u64;
        let values_suppressed = (0..rows)
            .filter(|&r| {
                keep[r] && g.values[r] != NULL && (suppressed[r] || g.code(level, r) == NULL)
            })
            .count() as u64;
        outcomes.push(QuasiIdentifierOutcome {
            column: v.column.clone(),
            hierarchy: v.hierarchy.clone(),
            levels: g.levels(),
            level,
            min_level: v.min_level,
            max_level: v.max_level(),
            categories: g.labels[level].len(),
            known_by: recipients
                .iter()
                .copied()
                .filter(|&r| provenance::knows(r, &v.column))
                .collect(),
            values_suppressed,
            values_missing: missing,
            information_loss: outcome.information_loss,
        });
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(ExportError::arrow("assembling the person file"))?;
    let batch = filter_record_batch(&batch, &BooleanArray::from(keep.clone())).map_err(
        ExportError::arrow("leaving out rows that cannot be released"),
    )?;
    let batch = crate::release::sort_by_id_and_year(&batch, "the person file")?;

    let released_names: HashSet<&str> = rules.variables.iter().map(|v| v.column.as_str()).collect();
    let columns_withheld = people
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| !matches!(*n, "person_p2" | "org_p2" | "year") && !released_names.contains(n))
        .map(str::to_owned)
        .collect();
    let rows_locally_suppressed = (0..rows)
        .filter(|&r| keep[r] && protection.suppressed.iter().any(|s| s[r]))
        .count() as u64;
    let recipient_risk: Vec<RecipientRisk> = recipients
        .iter()
        .zip(&protection.attackers)
        .zip(&attackers)
        .map(|((&r, a), attacker)| RecipientRisk {
            recipient: r,
            assumption: provenance::assumption(r),
            reference: attacker.reference,
            knows: a.knows.clone(),
            persons: a.units,
            at_risk_before: a.units_at_risk_before,
            at_risk_before_pct: pct(a.units_at_risk_before, a.units),
            at_risk_after: a.units_at_risk_after,
            smallest_class: a.smallest_class,
            values_suppressed: a.values_suppressed,
        })
        .collect();
    let disclosure = PersonDisclosure {
        k: rules.k,
        max_suppression_pct: rules.max_suppression_pct,
        unit: rules.unit,
        research_ids: rules.research_ids,
        rows_in: rows as u64,
        rows_released: batch.num_rows() as u64,
        rows_locally_suppressed,
        rows_dropped: protection.rows_dropped,
        persons_in: protection.attackers.first().map_or(0, |a| a.units),
        persons_released: protection.attackers.first().map_or(0, |a| a.units_released),
        population_rows,
        smallest_class: recipient_risk
            .iter()
            .filter(|r| !r.knows.is_empty())
            .map(|r| r.smallest_class)
            .min()
            .unwrap_or(0),
        nodes_evaluated: protection.nodes_evaluated as u64,
        information_loss: protection.information_loss,
        values_suppressed_pct: 100.0 * protection.values_suppressed_share,
        suppression_target_met: protection.suppression_target_met,
        quasi_identifiers: outcomes,
        recipients: recipient_risk,
        search: protection.path.clone(),
        l_diversity: rules
            .l_diversity
            .iter()
            .map(|l| LDiversityOutcome {
                column: l.column.clone(),
                l: l.l,
            })
            .collect(),
        organisation_ids_withheld: withheld_orgs,
        columns_withheld,
    };
    let model_rows = keep
        .iter()
        .enumerate()
        .filter(|(_, k)| **k)
        .map(|(r, _)| r)
        .collect();
    Ok(PersonRelease {
        model_rows,
        batch,
        disclosure,
        categories,
    })
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The year as the engine's first variable: known to every recipient,
/// never suppressed; with its population codes.
fn year_variable(
    years: &Int32Array,
    workforce: Option<&ModelView<'_>>,
    off_payroll: &[usize],
) -> (Variable, Option<Vec<u32>>) {
    let mut distinct: Vec<i32> = years.values().to_vec();
    if let Some(w) = workforce {
        distinct.extend(w.years.values().iter());
    }
    distinct.sort_unstable();
    distinct.dedup();
    let code = |y: i32| distinct.binary_search(&y).expect("a year seen") as u32;
    let variable = Variable {
        name: "year".into(),
        codes: years.values().iter().map(|&y| code(y)).collect(),
        levels: vec![(0..distinct.len() as u32).collect()],
        min_level: 0,
        max_level: 0,
        weight: 1.0,
        suppressible: false,
    };
    let population = workforce.map(|w| {
        w.years
            .values()
            .iter()
            .map(|&y| code(y))
            .chain(off_payroll.iter().map(|&r| code(years.value(r))))
            .collect()
    });
    (variable, population)
}

/// A unit per person: rows with the same stage-2 pseudonym.
fn person_units(p2: &PseudonymColumn<'_>) -> Vec<u32> {
    person_units_of((0..p2.array.len()).map(|r| p2.key(r)))
}

/// A unit per distinct pseudonym, in order of first appearance.
fn person_units_of(keys: impl Iterator<Item = Option<[u8; 32]>>) -> Vec<u32> {
    let mut index: HashMap<[u8; 32], u32> = HashMap::new();
    keys.enumerate()
        .map(|(r, key)| {
            let next = index.len() as u32;
            match key {
                Some(k) => *index.entry(k).or_insert(next),
                // A row without a pseudonym is nobody's: a unit of its own.
                None => u32::MAX - r as u32,
            }
        })
        .collect()
}

/// `array` with nulls where `suppressed` marks a row.
fn null_where(array: &ArrayRef, suppressed: &[bool]) -> Result<ArrayRef, ExportError> {
    if !suppressed.iter().any(|s| *s) {
        return Ok(array.clone());
    }
    let keep = BooleanArray::from(suppressed.iter().map(|s| !s).collect::<Vec<_>>());
    let nulls = arrow::array::new_null_array(array.data_type(), array.len());
    arrow::compute::kernels::zip::zip(&keep, array, &nulls)
        .map_err(ExportError::arrow("suppressing values"))
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
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
    fn a_released_variable_of_a_type_that_does_not_generalise_is_an_error() {
        let mut models = Models::valid();
        Models::set(
            &mut models.person,
            "sex",
            Arc::new(arrow::array::Date32Array::from(vec![1, 2, 1, 2])),
        );
        assert_names(
            models.export(),
            |e| {
                matches!(
                    e,
                    ExportError::ModelColumnType {
                        found: DataType::Date32,
                        ..
                    }
                )
            },
            FILE,
            "sex",
        );
    }

    /// Variables are coded in parallel; the error is still the first
    /// missing variable's in the rules' order, run after run.
    #[test]
    fn of_two_missing_variables_the_first_is_named_every_time() {
        for _ in 0..8 {
            let mut models = Models::valid();
            let like = models.config.person.variables[0].clone();
            // Two variables the model lacks, the first named last in the
            // alphabet: the rules' order decides, not the names'.
            for column in ["zz_first", "aa_second"] {
                let mut v = like.clone();
                v.column = column.into();
                models.config.person.variables.push(v);
            }
            assert_names_missing(models, "zz_first");
        }
    }

    #[test]
    fn a_requested_variable_the_model_lacks_is_an_error_naming_it() {
        let mut models = Models::valid();
        Models::remove(&mut models.person, "sex");
        assert_names_missing(models, "sex");
    }

    /// Exports `models` (without person tables, which would name the
    /// column first) and checks the error names the person model and
    /// `column` as missing.
    fn assert_names_missing(mut models: Models, column: &str) {
        models
            .config
            .tables
            .retain(|t| t.model != TableModel::Person);
        assert_names(
            models.export(),
            |e| matches!(e, ExportError::ModelColumnMissing { .. }),
            FILE,
            column,
        );
    }
}
