//! An independent attacker on a written release (issue 21): re-identification
//! risk per party that already holds part of the data, and whether the
//! study's planted relationships can still be found — measured from a
//! release directory's files, and for the parties who do not know who is
//! in the release, from the linked population it was drawn from.
//!
//! **Independence.** Nothing here uses koppel-export's code (nor any
//! disclosure engine's): it reads `persons.parquet`, `organisations.parquet`,
//! `codebook.json`, `manifest.json` and `disclosure-report.json` with Arrow,
//! Parquet and serde_json and counts for itself. The generalisation
//! hierarchies are implemented here again from their definitions in
//! `disclosure-report.json` (docs/disclosure-control.md, "Hierarchies"), so
//! that the population is labelled the way the specification says, not the
//! way the engine happens to. A bug in the engine therefore cannot hide in
//! the check. (The province of a postcode is a table, not a rule: [`province`]
//! is a copy, and the end-to-end test compares it with the engine's for
//! every postcode.)
//!
//! # The attack model
//!
//! **Who knows what comes from provenance.** `codebook.json` gives, per file
//! and variable, the `source` it was derived from. The sources are the
//! vocabulary ([`PFZW_PAYROLL`], [`IZZ_CLAIMS`], [`IZZ_SURVEY`],
//! [`VERNET_ABSENCE`], [`FWG_FUNCTIONS`], [`KOPPEL`]); a source naming
//! several (`"IZZ staff survey / PFZW payroll"` for `year`) is known to each
//! of them. An attacker knows every person-file column whose source it holds;
//! a column it would know but the release does not contain is simply absent
//! from its key. Only the outsider and the employer's `org_id` are named by
//! column rather than by source. Every attacker knows `year`: each holds its
//! data per year.
//!
//! | attacker | who | knows | counted in |
//! |---|---|---|---|
//! | `pfzw` | pension fund | columns from PFZW payroll, and from FWG (they follow from the function code on its payroll) | the population |
//! | `vernet` | absence service | columns from Vernet absence, and `sector` and `organisation_size` (its reports carry the employer's KvK number) | the population |
//! | `izz` | health insurer, also runs the staff survey | columns from the IZZ insured list and claims and from the IZZ staff survey | the release: it knows who responded |
//! | `fwg` | job classification | only the year: it delivers a table of functions, not of persons | the release |
//! | `employer` | a care organisation | the payroll and FWG columns of its own staff, and `org_id` where released (not yet their sick reports: see the note at `ATTACKERS`) | the population |
//! | `outsider` | a neighbour, colleague, journalist | `age`, `sex`, `postcode4` (and `province`, which follows from it), `sector` | the population |
//!
//! **The person is the unit.** Rows are grouped by `person_id` (required):
//! an attacker who recognises a person in one year recognises the same
//! research ID in the other. A row with a null `person_id` is a unit of its
//! own (counting it as one "person" with all other null rows would hide it
//! in a made-up trajectory).
//!
//! **Counted in the release (sample).** A person's key is the sorted list of
//! its rows' (known values) — its trajectory — so a person whose rows are
//! each in a large class can still be alone in its combination of years.
//! Two persons are in one class when their keys are equal; a person is
//! **at risk** when its class has fewer than k persons. Values are compared
//! exactly as written: text, integers, booleans, floats by exact value (so
//! `0.0` and `-0.0` are one value, and every NaN one value — what a
//! `GROUP BY` does). A null is a value of its own, as in SQL's `GROUP BY`
//! and pandas' `dropna=False`: a researcher, or an attacker, can group on
//! "unknown" too.
//!
//! **Counted in the population (k-map).** A party that does not know who
//! answered the survey must find a person among everyone it holds. The
//! population is the linked folder's workforce model (one row per payroll
//! person and year) plus the respondents who are not on the payroll (person
//! model rows with `on_payroll` false), each row labelled as the release
//! labels it, and its rows grouped into persons by `person_p2` as the
//! release's rows are by `person_id`: a respondent's off-payroll row joins
//! its own workforce rows of other years, and a row without `person_p2` is
//! a person of its own ([`Population::from_linked`]). A released row
//! matches a population row when it has the same label on every column the
//! attacker knows (`year` among them), where a null in the release matches
//! any value (the attacker cannot tell a suppressed value from an unknown
//! one) and a null in the population matches only a null in the release. A
//! released person with m rows matches a population person holding m
//! distinct rows that can be paired one to one with its m rows so that
//! every released row matches its population row (with `year` known and one
//! row per person and year, the pairing is by year). Its **population
//! count** is the number of population persons that match it, each person
//! counted once: a one-row person is matched by every population person with
//! at least one matching row, however many it has; a two-row person only by
//! those holding both rows, so a trajectory is rarer than either of its
//! rows. A released person is **at risk** when both its population count and
//! its class in the release (as above) are below k: the release is part of
//! the population, so the class is a floor the count can only raise, short
//! of a labelling disagreement. Without a population a population attacker
//! is counted in the release (which overstates its risk, never understates
//! it), and the finding says so. Every released person must match at least
//! one population person (its own): [`Exposure::persons_unmatched`] counts
//! those that do not, and [`Exposure::rows_unmatched`] the released rows
//! that match no population row at all (a person with such a row is
//! unmatched too) — a sign that the population, its labels or its persons
//! are not the release's.
//!
//! The class of a person is counted over the whole release or population.
//! An attacker who holds only a subset of the population (one employer's
//! staff) can narrow classes down further with that knowledge; the measure
//! here is the release's side of it: no combination the attacker knows is
//! rarer than k in what was published.
//!
//! **k** is the release's own (`manifest.json`, `disclosure.k`), else the
//! caller's. **Threshold:** at most [`MAX_SHARE_AT_RISK`] (1%) of persons at
//! risk for every attacker.
//!
//! # Utility
//!
//! [`utility`] reports what the release still lets a researcher see: the
//! null share of every released variable, and the planted relationships of
//! the synthetic sector (docs/synth.md) recomputed from the files — leaving
//! by age 25–34 against other ages under 60, by mental-health care use, and
//! organisations' absence against their temporary-contract share.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchReader};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use koppel_contract::files::linked::{
    ORGANISATION_MODEL_FILE, PERSON_MODEL_FILE, WORKFORCE_MODEL_FILE,
};
use koppel_contract::files::release::{
    CODEBOOK_JSON, DISCLOSURE_JSON, MANIFEST_FILE, ORGANISATION_FILE, PERSON_FILE,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The codebook's source names: the vocabulary of who holds what.
pub const PFZW_PAYROLL: &str = "PFZW payroll";
pub const VERNET_ABSENCE: &str = "Vernet absence";
pub const IZZ_CLAIMS: &str = "IZZ insured list and claims";
pub const IZZ_SURVEY: &str = "IZZ staff survey";
pub const FWG_FUNCTIONS: &str = "FWG job characteristics";
/// Made by the TTP (research IDs, statuses): no partner holds it.
pub const KOPPEL: &str = "Koppel";
/// The organisation file's annual reports; no person-level attacker.
pub const INTRAKOOP_REPORTS: &str = "Intrakoop annual reports";

/// Every source a codebook may name; anything else is a provenance gap.
pub const SOURCES: [&str; 7] = [
    PFZW_PAYROLL,
    VERNET_ABSENCE,
    IZZ_CLAIMS,
    IZZ_SURVEY,
    FWG_FUNCTIONS,
    KOPPEL,
    INTRAKOOP_REPORTS,
];

/// The column every attacker knows, and the unit's column.
pub const YEAR: &str = "year";
pub const PERSON_ID: &str = "person_id";
/// The population's unit: the stage-2 person pseudonym of the linked
/// models. Its values are never printed.
pub const PERSON_P2: &str = "person_p2";
pub const ORG_ID: &str = "org_id";
/// The derived variable: size class of the row's employer, from the
/// organisation model's `headcount` of that organisation and year.
pub const ORGANISATION_SIZE: &str = "organisation_size";

/// The share of persons at risk a release may have, per attacker.
pub const MAX_SHARE_AT_RISK: f64 = 0.01;

/// The k used when the manifest declares none.
pub const DEFAULT_K: usize = 10;

/// Where an attacker's classes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Among the released persons: it knows who is in the release.
    Sample,
    /// In the population (k-map): it does not know who responded.
    Population,
}

/// One party that already holds part of the released data.
#[derive(Debug)]
pub struct Attacker {
    pub name: &'static str,
    pub party: &'static str,
    /// Person-file columns it knows: those whose source it holds...
    pub sources: &'static [&'static str],
    /// ...and these, by name.
    pub columns: &'static [&'static str],
    pub reference: Reference,
}

/// The declared attackers, in the order they are reported (the engine's).
pub static ATTACKERS: [Attacker; 6] = [
    Attacker {
        name: "pfzw",
        party: "pension fund (payroll; FWG characteristics follow from the function code)",
        sources: &[PFZW_PAYROLL, FWG_FUNCTIONS],
        columns: &[],
        reference: Reference::Population,
    },
    Attacker {
        name: "vernet",
        party: "absence service (its reports carry the employer: sector and size)",
        sources: &[VERNET_ABSENCE],
        columns: &["sector", "organisation_size"],
        reference: Reference::Population,
    },
    Attacker {
        name: "izz",
        party: "health insurer (insured list, claims, staff survey: knows who responded)",
        sources: &[IZZ_CLAIMS, IZZ_SURVEY],
        columns: &[],
        reference: Reference::Sample,
    },
    Attacker {
        name: "fwg",
        party: "job classification (a table of functions: nothing per person)",
        sources: &[],
        columns: &[],
        reference: Reference::Sample,
    },
    // An employer also receives its staff's sick reports; with the absence
    // columns added it finds 45.8% of the demo release's persons below k
    // (k-map). The engine does not model that yet (docs/disclosure-
    // control.md, "Known limits"), so neither does this attacker: it would
    // only fail.
    Attacker {
        name: "employer",
        party: "care organisation (its own staff's payroll, org_id where released)",
        sources: &[PFZW_PAYROLL, FWG_FUNCTIONS],
        columns: &[ORG_ID],
        reference: Reference::Population,
    },
    Attacker {
        name: "outsider",
        party: "anyone who knows a person's age, sex, address and sector",
        sources: &[],
        columns: &["age", "sex", "postcode4", "province", "sector"],
        reference: Reference::Population,
    },
];

/// What can go wrong reading a release. Messages name files and columns,
/// never a value.
#[derive(Debug)]
pub enum AttackError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    Arrow {
        what: String,
        source: arrow::error::ArrowError,
    },
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The files are readable but not what a release holds.
    Release { what: String },
}

impl fmt::Display for AttackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttackError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            AttackError::Parquet { path, source } => write!(f, "{}: {source}", path.display()),
            AttackError::Arrow { what, source } => write!(f, "{what}: {source}"),
            AttackError::Json { path, source } => write!(f, "{}: {source}", path.display()),
            AttackError::Release { what } => f.write_str(what),
        }
    }
}

impl std::error::Error for AttackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttackError::Io { source, .. } => Some(source),
            AttackError::Parquet { source, .. } => Some(source),
            AttackError::Arrow { source, .. } => Some(source),
            AttackError::Json { source, .. } => Some(source),
            AttackError::Release { .. } => None,
        }
    }
}

fn problem(what: impl Into<String>) -> AttackError {
    AttackError::Release { what: what.into() }
}

/// A release directory as its files say it is.
pub struct Release {
    pub dir: PathBuf,
    /// The person file, all row groups in one batch.
    pub persons: RecordBatch,
    /// The organisation file, when the release has one.
    pub organisations: Option<RecordBatch>,
    /// Codebook sources: file name → variable → source as written (None
    /// when the codebook gives none).
    pub sources: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// `disclosure.k` from the manifest.
    pub declared_k: Option<usize>,
    /// `disclosure-report.json`, when the release has one: the released
    /// variables' hierarchies and levels, and the engine's own account.
    pub disclosure: Option<serde_json::Value>,
}

impl Release {
    pub fn open(dir: &Path) -> Result<Release, AttackError> {
        let persons = read_parquet(&dir.join(PERSON_FILE))?;
        let organisations_path = dir.join(ORGANISATION_FILE);
        let organisations = if organisations_path.exists() {
            Some(read_parquet(&organisations_path)?)
        } else {
            None
        };
        let codebook = read_json(&dir.join(CODEBOOK_JSON))?;
        let manifest = read_json(&dir.join(MANIFEST_FILE))?;
        let declared_k = match manifest.get("disclosure").and_then(|d| d.get("k")) {
            None => None,
            Some(k) => Some(k.as_u64().map(|k| k as usize).ok_or_else(|| {
                problem(format!(
                    "{MANIFEST_FILE}: disclosure.k is not a whole number"
                ))
            })?),
        };
        let disclosure_path = dir.join(DISCLOSURE_JSON);
        let disclosure = if disclosure_path.exists() {
            Some(read_json(&disclosure_path)?)
        } else {
            None
        };
        Ok(Release {
            dir: dir.to_owned(),
            persons,
            organisations,
            sources: codebook_sources(&codebook)?,
            declared_k,
            disclosure,
        })
    }

    /// The k to measure against: the release's own, else `fallback`.
    pub fn k_or(&self, fallback: usize) -> usize {
        self.declared_k.unwrap_or(fallback)
    }

    /// The person file's columns with their codebook source.
    fn person_sources(&self) -> BTreeMap<String, Option<String>> {
        self.sources.get(PERSON_FILE).cloned().unwrap_or_default()
    }

    /// Person-file columns whose provenance the attack cannot place: no
    /// codebook entry, no source, or a source outside [`SOURCES`]. Each is
    /// a column no attacker is assumed to know, so a release with gaps
    /// could pass by being vague about where its data came from.
    pub fn provenance_gaps(&self) -> Vec<String> {
        let sources = self.person_sources();
        let mut gaps = Vec::new();
        for field in self.persons.schema().fields() {
            let name = field.name();
            match sources.get(name.as_str()) {
                None => gaps.push(format!("{name}: not in {CODEBOOK_JSON}")),
                Some(None) => gaps.push(format!("{name}: no source in {CODEBOOK_JSON}")),
                Some(Some(source)) => {
                    for part in source_parts(source) {
                        if !SOURCES.contains(&part) {
                            gaps.push(format!("{name}: unknown source \"{part}\""));
                        }
                    }
                }
            }
        }
        gaps
    }

    /// The person-file columns `attacker` knows, `year` first, then in the
    /// file's order.
    pub fn known_columns(&self, attacker: &Attacker) -> Vec<String> {
        let sources = self.person_sources();
        let schema = self.persons.schema();
        let mut known: Vec<String> = Vec::new();
        if schema.index_of(YEAR).is_ok() {
            known.push(YEAR.to_owned());
        }
        for field in schema.fields() {
            let name = field.name();
            if name == YEAR || name == PERSON_ID {
                continue;
            }
            let by_source = sources
                .get(name.as_str())
                .and_then(|s| s.as_deref())
                .is_some_and(|s| source_parts(s).any(|p| attacker.sources.contains(&p)));
            let by_name = attacker.columns.contains(&name.as_str());
            if by_source || by_name {
                known.push(name.clone());
            }
        }
        known
    }

    /// One attacker's finding on the person file; population attackers are
    /// counted in `population` when it is given and holds every column
    /// they know, else in the release (and the finding says why).
    pub fn attack(
        &self,
        attacker: &'static Attacker,
        k: usize,
        population: Option<&Population>,
    ) -> Result<Attack, AttackError> {
        let known = self.known_columns(attacker);
        let in_release = persons_at_risk(&self.persons, &known, k)?;
        let (counted, exposure) = match (attacker.reference, population) {
            (Reference::Sample, _) => (Counted::Sample, in_release),
            (Reference::Population, None) => (
                Counted::SampleInstead("no population given".to_owned()),
                in_release,
            ),
            (Reference::Population, Some(population)) => match population.lacks(&known) {
                Some(why) => (Counted::SampleInstead(why), in_release),
                None => (
                    Counted::Population,
                    persons_at_risk_in_population(&self.persons, &known, k, population)?,
                ),
            },
        };
        Ok(Attack {
            attacker,
            known,
            counted,
            exposure,
            in_release,
        })
    }

    /// Every declared attacker, in [`ATTACKERS`] order.
    pub fn attack_all(
        &self,
        k: usize,
        population: Option<&Population>,
    ) -> Result<Vec<Attack>, AttackError> {
        ATTACKERS
            .iter()
            .map(|a| self.attack(a, k, population))
            .collect()
    }

    fn disclosure_person(&self) -> Result<&serde_json::Value, AttackError> {
        self.disclosure
            .as_ref()
            .ok_or_else(|| problem(format!("the release has no {DISCLOSURE_JSON}")))?
            .get("person")
            .ok_or_else(|| problem(format!("{DISCLOSURE_JSON}: no \"person\"")))
    }

    /// The released variables with their hierarchy and chosen level, as
    /// `disclosure-report.json` states them (`person.quasi_identifiers`).
    pub fn released_variables(&self) -> Result<Vec<ReleasedVariable>, AttackError> {
        let malformed = |what: String| problem(format!("{DISCLOSURE_JSON}: {what}"));
        let list = self
            .disclosure_person()?
            .get("quasi_identifiers")
            .and_then(|q| q.as_array())
            .ok_or_else(|| malformed("no person.quasi_identifiers list".to_owned()))?;
        list.iter()
            .map(|q| {
                let column = q
                    .get("column")
                    .and_then(|c| c.as_str())
                    .ok_or_else(|| malformed("a quasi-identifier without \"column\"".to_owned()))?;
                let level = q
                    .get("level")
                    .and_then(|l| l.as_u64())
                    .ok_or_else(|| malformed(format!("{column}: no whole \"level\"")))?
                    as usize;
                let hierarchy = q
                    .get("hierarchy")
                    .ok_or_else(|| malformed(format!("{column}: no \"hierarchy\"")))
                    .and_then(|h| {
                        Hierarchy::from_json(h).map_err(|e| malformed(format!("{column}: {e}")))
                    })?;
                if level >= hierarchy.levels() {
                    return Err(malformed(format!(
                        "{column}: level {level} of a hierarchy with {} levels",
                        hierarchy.levels()
                    )));
                }
                Ok(ReleasedVariable {
                    column: column.to_owned(),
                    level,
                    hierarchy,
                })
            })
            .collect()
    }

    /// The engine's own account per recipient (`person.recipients`):
    /// name → (reference, columns it knows), to compare with this model.
    pub fn reported_recipients(
        &self,
    ) -> Result<BTreeMap<String, (String, Vec<String>)>, AttackError> {
        let malformed = |what: &str| problem(format!("{DISCLOSURE_JSON}: {what}"));
        let list = self
            .disclosure_person()?
            .get("recipients")
            .and_then(|r| r.as_array())
            .ok_or_else(|| malformed("no person.recipients list"))?;
        let mut out = BTreeMap::new();
        for r in list {
            let name = r
                .get("recipient")
                .and_then(|n| n.as_str())
                .ok_or_else(|| malformed("a recipient without \"recipient\""))?;
            let reference = r
                .get("reference")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_owned();
            let knows = r
                .get("knows")
                .and_then(|k| k.as_array())
                .ok_or_else(|| malformed("a recipient without \"knows\""))?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            out.insert(name.to_owned(), (reference, knows));
        }
        Ok(out)
    }
}

/// Where one attacker's persons were counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Among the released persons (the attacker knows who is in the release).
    Sample,
    /// In the population (k-map): by the population persons that match
    /// each released person, its class among the released persons a floor.
    Population,
    /// A population attacker counted among the released persons, and why.
    SampleInstead(String),
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counted::Sample => f.write_str("sample"),
            Counted::Population => f.write_str("population"),
            Counted::SampleInstead(why) => write!(f, "sample: {why}"),
        }
    }
}

/// What one attacker found.
#[derive(Debug)]
pub struct Attack {
    pub attacker: &'static Attacker,
    /// The columns its key is made of, as released.
    pub known: Vec<String>,
    pub counted: Counted,
    /// What it finds, counted as [`Attack::counted`] says.
    pub exposure: Exposure,
    /// What it would find counting every person in the release alone (the
    /// strict measure: the same as `exposure` for a sample attacker).
    pub in_release: Exposure,
}

impl Attack {
    /// Whether this attacker finds more than [`MAX_SHARE_AT_RISK`].
    pub fn fails(&self) -> bool {
        self.exposure.exceeds_threshold()
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.exposure;
        write!(
            f,
            "{}: {} of {} persons at risk ({:.2}%) at k = {}",
            self.attacker.name,
            e.at_risk,
            e.persons,
            e.share() * 100.0,
            e.k
        )?;
        match &self.counted {
            Counted::Population => {
                write!(
                    f,
                    " [k-map: {} persons, of which {} below k in the population (smallest {})",
                    e.persons,
                    e.below_k_in_population,
                    e.smallest_population_count
                        .map_or("-".to_owned(), |n| n.to_string()),
                )?;
                // Only when the labels disagree can the release's class
                // be larger than the population's count.
                let lifted = e.below_k_in_population - e.at_risk;
                if lifted > 0 {
                    write!(f, ", {lifted} of them in a class of k in the release")?;
                }
                write!(
                    f,
                    "; in the release alone {} ({:.2}%)]",
                    self.in_release.at_risk,
                    self.in_release.share() * 100.0
                )?;
            }
            counted => write!(f, " ({counted})")?,
        }
        if e.persons_unmatched > 0 || e.rows_unmatched > 0 {
            write!(
                f,
                " [{} released persons match no population person; {} released rows no population row]",
                e.persons_unmatched, e.rows_unmatched
            )?;
        }
        write!(f, ", knowing {}", self.known.join(", "))
    }
}

/// Persons, and those at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    pub persons: usize,
    pub at_risk: usize,
    /// Classes among the released persons.
    pub classes: usize,
    pub k: usize,
    /// Counted in the population (k-map; 0 when counted in the release):
    /// persons fewer than k population persons match. They are at risk
    /// unless their class in the release has k persons.
    pub below_k_in_population: usize,
    /// The fewest population persons matching a released person (None when
    /// counted in the release or nobody was released).
    pub smallest_population_count: Option<u64>,
    /// Released persons that no population person matches, not even their
    /// own (0 when counted in the release).
    pub persons_unmatched: usize,
    /// Released rows that match no population row, not even their own (0
    /// when counted in the release).
    pub rows_unmatched: usize,
}

impl Exposure {
    pub fn share(&self) -> f64 {
        if self.persons == 0 {
            0.0
        } else {
            self.at_risk as f64 / self.persons as f64
        }
    }

    /// More than 1% at risk, decided on the counts (no rounding at the edge).
    pub fn exceeds_threshold(&self) -> bool {
        self.at_risk * 100 > self.persons
    }
}

/// Persons of the release: the unit of each row and each unit's rows.
struct Units {
    of_row: Vec<u32>,
    rows: Vec<Vec<usize>>,
}

fn person_units(persons: &RecordBatch) -> Result<Units, AttackError> {
    let ids = persons.column_by_name(PERSON_ID).ok_or_else(|| {
        problem(format!(
            "{PERSON_FILE}: no {PERSON_ID} column; the person is the unit of the attack"
        ))
    })?;
    let of_row = unit_codes(ids)?;
    let count = of_row.iter().map(|&u| u as usize + 1).max().unwrap_or(0);
    let mut rows = vec![Vec::new(); count];
    for (row, &unit) in of_row.iter().enumerate() {
        rows[unit as usize].push(row);
    }
    Ok(Units { of_row, rows })
}

/// The class size of every person among the released persons: persons
/// with equal sorted lists of (known values) per row.
fn sample_classes(
    persons: &RecordBatch,
    known: &[String],
    units: &Units,
) -> Result<(Vec<usize>, usize), AttackError> {
    let columns = known
        .iter()
        .map(|name| {
            let column = persons
                .column_by_name(name)
                .ok_or_else(|| problem(format!("{PERSON_FILE}: no column {name}")))?;
            value_codes(name, column)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each distinct row (its known values) gets a number; a person's
    // trajectory is then the sorted list of its rows' numbers — equal
    // lists, equal multisets of rows.
    let mut row_classes: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut trajectories: Vec<Vec<u32>> = vec![Vec::new(); units.rows.len()];
    let mut row_key = Vec::with_capacity(columns.len());
    for (row, &unit) in units.of_row.iter().enumerate() {
        row_key.clear();
        row_key.extend(columns.iter().map(|c| c[row]));
        let next = row_classes.len() as u32;
        let class = *row_classes.entry(row_key.clone()).or_insert(next);
        trajectories[unit as usize].push(class);
    }
    for t in &mut trajectories {
        t.sort_unstable();
    }
    let mut class_sizes: HashMap<&[u32], usize> = HashMap::new();
    for t in &trajectories {
        *class_sizes.entry(t.as_slice()).or_default() += 1;
    }
    let sizes = trajectories
        .iter()
        .map(|t| class_sizes[t.as_slice()])
        .collect();
    Ok((sizes, class_sizes.len()))
}

/// The core count in the release: group `persons` by `person_id`, key each
/// person by the sorted (known values) of its rows, and count persons in
/// classes of fewer than `k`. `known` should include `year` (as
/// [`Release::known_columns`] does); the function does not add it.
pub fn persons_at_risk(
    persons: &RecordBatch,
    known: &[String],
    k: usize,
) -> Result<Exposure, AttackError> {
    let units = person_units(persons)?;
    let (sizes, classes) = sample_classes(persons, known, &units)?;
    Ok(Exposure {
        persons: units.rows.len(),
        at_risk: sizes.iter().filter(|&&n| n < k).count(),
        classes,
        k,
        below_k_in_population: 0,
        smallest_population_count: None,
        persons_unmatched: 0,
        rows_unmatched: 0,
    })
}

/// The k-map count. A released person (its rows grouped by `person_id`)
/// with m rows matches a population person (rows grouped by
/// [`Population::units`]) that holds m distinct rows pairing one to one
/// with its rows, each released row matching its population row on
/// `known`: a null in the release matches any value, a null in the
/// population only a null in the release. The person's population count is
/// the number of population persons that match it; it is at risk when that
/// count and its class among the released persons ([`persons_at_risk`])
/// are both below `k`. `population` must hold every known column.
///
/// How: released persons are grouped by the null masks of their rows
/// (sorted), and per group every population person's ordered tuples of
/// distinct rows are projected on the columns each position keeps; a
/// population person is counted at most once per released key. Work is
/// (population rows) per distinct mask of one-row persons plus (tuples of
/// population persons) per distinct mask list of the others — never
/// released persons times population rows.
pub fn persons_at_risk_in_population(
    persons: &RecordBatch,
    known: &[String],
    k: usize,
    population: &Population,
) -> Result<Exposure, AttackError> {
    if known.len() > 64 {
        return Err(problem("more than 64 known columns"));
    }
    if population.units.len() != population.rows {
        return Err(problem(format!(
            "the population gives the person of {} rows, not {}",
            population.units.len(),
            population.rows
        )));
    }
    let units = person_units(persons)?;
    let (sizes, classes) = sample_classes(persons, known, &units)?;
    let PopulationCounts {
        counts,
        rows_unmatched,
    } = population_counts(persons, known, &units, population)?;
    let mut exposure = Exposure {
        persons: units.rows.len(),
        at_risk: 0,
        classes,
        k,
        below_k_in_population: 0,
        smallest_population_count: counts.iter().copied().min(),
        persons_unmatched: counts.iter().filter(|&&n| n == 0).count(),
        rows_unmatched,
    };
    for (&count, &class) in counts.iter().zip(&sizes) {
        if count < k as u64 {
            exposure.below_k_in_population += 1;
            if class < k {
                exposure.at_risk += 1;
            }
        }
    }
    Ok(exposure)
}

/// The population count of every released person, and the released rows
/// no population row matches.
struct PopulationCounts {
    /// Per released person ([`Units`] order).
    counts: Vec<u64>,
    rows_unmatched: usize,
}

fn population_counts(
    persons: &RecordBatch,
    known: &[String],
    units: &Units,
    population: &Population,
) -> Result<PopulationCounts, AttackError> {
    let width = known.len();
    let rows = population.rows;

    // The population's labels as numbers per column, row by row; a label
    // the population never has gets ABSENT in the release (it matches no
    // row), a null in the population POPULATION_NULL (no released value
    // equals it: only a released null, which matches anything, matches it).
    const POPULATION_NULL: u32 = u32::MAX;
    const ABSENT: u32 = u32::MAX - 1;
    let mut codes = vec![0u32; rows * width];
    let mut released: Vec<Vec<Option<u32>>> = Vec::with_capacity(width);
    for (c, name) in known.iter().enumerate() {
        let labels = population
            .columns
            .get(name)
            .ok_or_else(|| problem(format!("the population has no column {name}")))?;
        if labels.len() != rows {
            return Err(problem(format!(
                "population column {name} has {} rows, not {rows}",
                labels.len()
            )));
        }
        let mut dictionary: HashMap<&str, u32> = HashMap::new();
        for (row, label) in labels.iter().enumerate() {
            codes[row * width + c] = match label {
                None => POPULATION_NULL,
                Some(l) => {
                    let next = dictionary.len() as u32;
                    *dictionary.entry(l.as_str()).or_insert(next)
                }
            };
        }
        let array = persons
            .column_by_name(name)
            .ok_or_else(|| problem(format!("{PERSON_FILE}: no column {name}")))?;
        released.push(
            values(name, array)?
                .iter()
                .map(|v| {
                    v.label()
                        .map(|l| dictionary.get(l.as_str()).copied().unwrap_or(ABSENT))
                })
                .collect(),
        );
    }

    // The distinct population rows, and each row's number among them.
    let mut distinct_of: HashMap<&[u32], u32> = HashMap::new();
    let mut distinct: Vec<&[u32]> = Vec::new();
    let mut row_key: Vec<u32> = Vec::with_capacity(rows);
    for row in 0..rows {
        let key = &codes[row * width..(row + 1) * width];
        let next = distinct.len() as u32;
        let id = *distinct_of.entry(key).or_insert_with(|| {
            distinct.push(key);
            next
        });
        row_key.push(id);
    }
    drop(distinct_of);

    // Population persons: their rows, consecutive.
    let mut by_person: Vec<u32> = (0..rows as u32).collect();
    by_person.sort_by_key(|&row| population.units[row as usize]);
    let mut person_rows: Vec<&[u32]> = Vec::new();
    let mut start = 0;
    for end in 1..=rows {
        if end == rows
            || population.units[by_person[end] as usize]
                != population.units[by_person[start] as usize]
        {
            person_rows.push(&by_person[start..end]);
            start = end;
        }
    }

    // Per null mask of the released rows (bit c: column c is null, which
    // matches anything): the distinct released rows projected on the other
    // columns, numbered, and the number each distinct population row
    // projects to (NO_KEY: no released row of this mask has it).
    const NO_KEY: u32 = u32::MAX;
    let released_rows = persons.num_rows();
    let row_mask: Vec<u64> = (0..released_rows)
        .map(|row| {
            released
                .iter()
                .enumerate()
                .filter(|(_, c)| c[row].is_none())
                .fold(0u64, |m, (c, _)| m | (1 << c))
        })
        .collect();
    let mut rows_of_mask: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (row, &mask) in row_mask.iter().enumerate() {
        rows_of_mask.entry(mask).or_default().push(row);
    }
    let mut released_key = vec![NO_KEY; released_rows];
    // mask → (number of keys, the key of every distinct population row).
    let mut projections: HashMap<u64, (usize, Vec<u32>)> = HashMap::new();
    let mut rows_unmatched = 0;
    for (&mask, mask_rows) in &rows_of_mask {
        let kept: Vec<usize> = (0..width).filter(|c| mask & (1 << c) == 0).collect();
        let mut keys: HashMap<Vec<u32>, u32> = HashMap::new();
        for &row in mask_rows {
            let key: Vec<u32> = kept
                .iter()
                .map(|&c| released[c][row].expect("not null"))
                .collect();
            let next = keys.len() as u32;
            released_key[row] = *keys.entry(key).or_insert(next);
        }
        let mut found = vec![false; keys.len()];
        let mut projected = Vec::with_capacity(kept.len());
        let of_distinct: Vec<u32> = distinct
            .iter()
            .map(|row| {
                projected.clear();
                projected.extend(kept.iter().map(|&c| row[c]));
                let key = keys.get(projected.as_slice()).copied().unwrap_or(NO_KEY);
                if key != NO_KEY {
                    found[key as usize] = true;
                }
                key
            })
            .collect();
        rows_unmatched += mask_rows
            .iter()
            .filter(|&&row| !found[released_key[row] as usize])
            .count();
        projections.insert(mask, (keys.len(), of_distinct));
    }

    // Released persons grouped by their rows' masks, rows in mask order
    // (rows of equal masks in any order: every ordering of a population
    // person's rows is tried).
    let mut groups: BTreeMap<Vec<u64>, Vec<(usize, Vec<u32>)>> = BTreeMap::new();
    for (person, person_released) in units.rows.iter().enumerate() {
        let mut ordered = person_released.clone();
        ordered.sort_by_key(|&row| row_mask[row]);
        let masks = ordered.iter().map(|&row| row_mask[row]).collect();
        let key = ordered.iter().map(|&row| released_key[row]).collect();
        groups.entry(masks).or_default().push((person, key));
    }

    let mut counts = vec![0u64; units.rows.len()];
    for (masks, members) in &groups {
        let tables: Vec<&[u32]> = masks.iter().map(|m| projections[m].1.as_slice()).collect();
        if let [mask] = masks.as_slice() {
            // One row: the released key is the projection's number.
            let keys = projections[mask].0;
            let table = tables[0];
            let mut matching = vec![0u64; keys];
            let mut last = vec![u32::MAX; keys];
            for (p, person) in person_rows.iter().enumerate() {
                for &row in *person {
                    let key = table[row_key[row as usize] as usize];
                    if key != NO_KEY && last[key as usize] != p as u32 {
                        last[key as usize] = p as u32;
                        matching[key as usize] += 1;
                    }
                }
            }
            for (person, key) in members {
                counts[*person] = matching[key[0] as usize];
            }
            continue;
        }
        // Several rows: the released keys' lists, numbered.
        let mut wanted: HashMap<&[u32], usize> = HashMap::new();
        for (_, key) in members {
            let next = wanted.len();
            wanted.entry(key.as_slice()).or_insert(next);
        }
        let mut matching = vec![0u64; wanted.len()];
        let mut last = vec![u32::MAX; wanted.len()];
        let mut tuple = TupleSearch {
            tables: &tables,
            row_key: &row_key,
            used: Vec::new(),
            key: Vec::with_capacity(masks.len()),
        };
        for (p, person) in person_rows.iter().enumerate() {
            if person.len() < masks.len() {
                continue;
            }
            tuple.used.clear();
            tuple.used.resize(person.len(), false);
            tuple.each(person, &mut |key| {
                if let Some(&w) = wanted.get(key)
                    && last[w] != p as u32
                {
                    last[w] = p as u32;
                    matching[w] += 1;
                }
            });
        }
        for (person, key) in members {
            counts[*person] = matching[wanted[key.as_slice()]];
        }
    }

    Ok(PopulationCounts {
        counts,
        rows_unmatched,
    })
}

/// The ordered tuples of distinct rows of one population person, each row
/// projected as its position's mask projects it; tuples with a row no
/// released row of that mask has are cut short.
struct TupleSearch<'a> {
    /// Per position: the key of every distinct population row.
    tables: &'a [&'a [u32]],
    row_key: &'a [u32],
    used: Vec<bool>,
    key: Vec<u32>,
}

impl TupleSearch<'_> {
    fn each(&mut self, rows: &[u32], visit: &mut impl FnMut(&[u32])) {
        let position = self.key.len();
        if position == self.tables.len() {
            visit(&self.key);
            return;
        }
        for (i, &row) in rows.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let key = self.tables[position][self.row_key[row as usize] as usize];
            if key == u32::MAX {
                continue;
            }
            self.used[i] = true;
            self.key.push(key);
            self.each(rows, visit);
            self.key.pop();
            self.used[i] = false;
        }
    }
}

// ------------------------------------------------------------- population

/// The population a release was drawn from, labelled as the release labels
/// its columns: per column, the label of every population row (None:
/// null), and the person every row belongs to. Columns it cannot give are
/// listed with the reason.
#[derive(Debug, Clone, Default)]
pub struct Population {
    pub rows: usize,
    pub columns: BTreeMap<String, Vec<Option<String>>>,
    pub missing: BTreeMap<String, String>,
    /// The population person of every row: rows with the same number are
    /// one person's (numbers, not pseudonyms; any `u32`, not necessarily
    /// consecutive). Set with [`Population::set_units`].
    pub units: Vec<u32>,
}

impl Population {
    /// An empty population of `rows` rows, each row a person of its own;
    /// add columns with [`Population::insert`], group rows into persons
    /// with [`Population::set_units`].
    pub fn new(rows: usize) -> Population {
        Population {
            rows,
            units: (0..rows as u32).collect(),
            ..Population::default()
        }
    }

    /// Sets the person of every row.
    pub fn set_units(&mut self, units: Vec<u32>) -> Result<(), AttackError> {
        if units.len() != self.rows {
            return Err(problem(format!(
                "the population's persons are given for {} rows, not {}",
                units.len(),
                self.rows
            )));
        }
        self.units = units;
        Ok(())
    }

    /// The number of population persons.
    pub fn person_count(&self) -> usize {
        self.units.iter().collect::<HashSet<_>>().len()
    }

    /// Adds a column of labels, one per row.
    pub fn insert(&mut self, column: &str, labels: Vec<Option<String>>) -> Result<(), AttackError> {
        if labels.len() != self.rows {
            return Err(problem(format!(
                "population column {column} has {} rows, not {}",
                labels.len(),
                self.rows
            )));
        }
        self.missing.remove(column);
        self.columns.insert(column.to_owned(), labels);
        Ok(())
    }

    /// Why an attacker knowing `known` cannot be counted here, if it cannot.
    fn lacks(&self, known: &[String]) -> Option<String> {
        let lacking: Vec<String> = known
            .iter()
            .filter(|c| !self.columns.contains_key(c.as_str()))
            .map(|c| match self.missing.get(c) {
                Some(why) => format!("{c} ({why})"),
                None => c.clone(),
            })
            .collect();
        (!lacking.is_empty()).then(|| format!("the population lacks {}", lacking.join(", ")))
    }

    /// The population of `release` from the folder `koppel link` wrote:
    /// every row of `workforce_model.parquet` and the rows of
    /// `person_model.parquet` whose `on_payroll` is not true, grouped into
    /// persons by `person_p2` (an off-payroll row joins the same person's
    /// workforce rows; a row without one is a person of its own), each column
    /// the release's disclosure report names labelled at its released level
    /// ([`Hierarchy::label`]), `year` as it is, `organisation_size` from
    /// `organisation_model.parquet`'s `headcount` of the row's `org_p2` and
    /// year. `org_id` cannot be given (the employers' research IDs are the
    /// release's), nor columns the workforce model does not hold (survey
    /// answers): they are listed in [`Population::missing`].
    pub fn from_linked(linked: &Path, release: &Release) -> Result<Population, AttackError> {
        let workforce = read_parquet(&linked.join(WORKFORCE_MODEL_FILE))?;
        let people = read_parquet(&linked.join(PERSON_MODEL_FILE))?;
        let on_payroll = people
            .column_by_name("on_payroll")
            .ok_or_else(|| problem(format!("{PERSON_MODEL_FILE}: no column on_payroll")))?;
        let off_payroll: Vec<usize> = values("on_payroll", on_payroll)?
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != Value::Bool(true))
            .map(|(row, _)| row)
            .collect();
        let mut population = Population::new(workforce.num_rows() + off_payroll.len());
        // The persons: by pseudonym, which is compared, never shown.
        let pseudonyms = |batch: &RecordBatch, file: &str| -> Result<Vec<Value>, AttackError> {
            let array = batch.column_by_name(PERSON_P2).ok_or_else(|| {
                problem(format!(
                    "{file}: no column {PERSON_P2}; the population's persons are its rows' {PERSON_P2}"
                ))
            })?;
            values(PERSON_P2, array)
        };
        let mut person = pseudonyms(&workforce, WORKFORCE_MODEL_FILE)?;
        let theirs = pseudonyms(&people, PERSON_MODEL_FILE)?;
        person.extend(off_payroll.iter().map(|&r| theirs[r].clone()));
        drop(theirs);
        population.set_units(units_of(person))?;
        // A column's values in population rows; None when the workforce
        // model does not hold it.
        let raw = |column: &str| -> Result<Option<Vec<Value>>, AttackError> {
            let Some(array) = workforce.column_by_name(column) else {
                return Ok(None);
            };
            let mut out = values(column, array)?;
            match people.column_by_name(column) {
                Some(array) => {
                    let theirs = values(column, array)?;
                    out.extend(off_payroll.iter().map(|&r| theirs[r].clone()));
                }
                None => out.extend(off_payroll.iter().map(|_| Value::Null)),
            }
            Ok(Some(out))
        };
        let years = raw(YEAR)?
            .ok_or_else(|| problem(format!("{WORKFORCE_MODEL_FILE}: no column {YEAR}")))?;
        population.insert(YEAR, years.iter().map(Value::label).collect())?;
        for variable in release.released_variables()? {
            let column = variable.column.as_str();
            let values = match column {
                ORG_ID => {
                    population.missing.insert(
                        column.to_owned(),
                        "employers' research IDs are the release's own".to_owned(),
                    );
                    continue;
                }
                ORGANISATION_SIZE => {
                    let organisations = read_parquet(&linked.join(ORGANISATION_MODEL_FILE))?;
                    let org = raw("org_p2")?.ok_or_else(|| {
                        problem(format!("{WORKFORCE_MODEL_FILE}: no column org_p2"))
                    })?;
                    headcounts(&organisations, &org, &years)?
                }
                _ => match raw(column)? {
                    Some(values) => values,
                    None => {
                        population
                            .missing
                            .insert(column.to_owned(), format!("not in {WORKFORCE_MODEL_FILE}"));
                        continue;
                    }
                },
            };
            let side = match &variable.hierarchy {
                Hierarchy::FwgLevelBand { level_column, .. } => {
                    Some(raw(level_column)?.ok_or_else(|| {
                        problem(format!("{WORKFORCE_MODEL_FILE}: no column {level_column}"))
                    })?)
                }
                _ => None,
            };
            // Each distinct (value, side) labelled once.
            let mut labelled: HashMap<(&Value, Option<&Value>), Option<String>> = HashMap::new();
            let mut labels = Vec::with_capacity(values.len());
            for (row, value) in values.iter().enumerate() {
                let side = side.as_ref().map(|s| &s[row]);
                let label = match labelled.get(&(value, side)) {
                    Some(l) => l.clone(),
                    None => {
                        let l = variable
                            .hierarchy
                            .label(variable.level, value, side)
                            .map_err(|e| problem(format!("{column}: {e}")))?;
                        labelled.insert((value, side), l.clone());
                        l
                    }
                };
                labels.push(label);
            }
            population.insert(column, labels)?;
        }
        Ok(population)
    }
}

/// The organisation model's headcount of each row's organisation and year.
fn headcounts(
    organisations: &RecordBatch,
    org: &[Value],
    years: &[Value],
) -> Result<Vec<Value>, AttackError> {
    let column = |name: &str| -> Result<Vec<Value>, AttackError> {
        let array = organisations
            .column_by_name(name)
            .ok_or_else(|| problem(format!("{ORGANISATION_MODEL_FILE}: no column {name}")))?;
        values(name, array)
    };
    let (orgs, org_years, counts) = (column("org_p2")?, column(YEAR)?, column("headcount")?);
    let by_org_year: HashMap<(&Value, &Value), &Value> =
        orgs.iter().zip(&org_years).zip(&counts).collect();
    Ok(org
        .iter()
        .zip(years)
        .map(|(o, y)| match o {
            Value::Null => Value::Null,
            o => by_org_year
                .get(&(o, y))
                .map_or(Value::Null, |n| (*n).clone()),
        })
        .collect())
}

/// A released variable of the person file: its column, hierarchy, and
/// the level the release chose (0: as linked; the last withholds it).
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedVariable {
    pub column: String,
    pub level: usize,
    pub hierarchy: Hierarchy,
}

/// A generalisation hierarchy as docs/disclosure-control.md defines it,
/// read from its definition in `disclosure-report.json` (tagged `kind`).
#[derive(Debug, Clone, PartialEq)]
pub enum Hierarchy {
    /// value → withheld.
    Categorical,
    /// value → the group of each level's map → withheld.
    Groups(Vec<BTreeMap<String, String>>),
    /// integer → bands of each width, aligned to multiples of it, both
    /// ends included (`25-29`) → withheld.
    Bands(Vec<i64>),
    /// number → steps of each width, aligned to multiples of it, lower end
    /// included (`2.5-3`) → withheld.
    Steps(Vec<f64>),
    /// classes by lower bounds per level (level 0 already classed):
    /// integers `50-99`, `2500+`, `<0`; fractions `1-<8`, `183+` → withheld.
    Classes(Vec<Vec<i64>>),
    /// postcode4 → `10xx` → province → landsdeel → withheld.
    Postcode,
    /// function code → `FWG 30-39`, a band of `width` of the row's
    /// `level_column` → withheld.
    FwgLevelBand { level_column: String, width: i64 },
}

impl Hierarchy {
    pub fn from_json(json: &serde_json::Value) -> Result<Hierarchy, String> {
        let kind = json
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or("no \"kind\"")?;
        let list = |name: &str| -> Result<&Vec<serde_json::Value>, String> {
            json.get(name)
                .and_then(|l| l.as_array())
                .ok_or_else(|| format!("{kind}: no \"{name}\" list"))
        };
        let whole = |v: &serde_json::Value| -> Result<i64, String> {
            v.as_i64()
                .ok_or_else(|| format!("{kind}: {v} is not a whole number"))
        };
        let hierarchy = match kind {
            "categorical" => Hierarchy::Categorical,
            "postcode" => Hierarchy::Postcode,
            "bands" => Hierarchy::Bands(
                list("widths")?
                    .iter()
                    .map(whole)
                    .collect::<Result<_, _>>()?,
            ),
            "steps" => Hierarchy::Steps(
                list("widths")?
                    .iter()
                    .map(|w| {
                        w.as_f64()
                            .ok_or_else(|| format!("steps: {w} is not a number"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "classes" => Hierarchy::Classes(
                list("levels")?
                    .iter()
                    .map(|l| {
                        l.as_array()
                            .ok_or("classes: a level is not a list")?
                            .iter()
                            .map(whole)
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "groups" => Hierarchy::Groups(
                list("levels")?
                    .iter()
                    .map(|l| {
                        l.as_object()
                            .ok_or("groups: a level is not a map")?
                            .iter()
                            .map(|(value, group)| {
                                group
                                    .as_str()
                                    .map(|g| (value.clone(), g.to_owned()))
                                    .ok_or_else(|| "groups: a group is not text".to_owned())
                            })
                            .collect::<Result<BTreeMap<_, _>, _>>()
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "fwg_level_band" => Hierarchy::FwgLevelBand {
                level_column: json
                    .get("level_column")
                    .and_then(|c| c.as_str())
                    .ok_or("fwg_level_band: no \"level_column\"")?
                    .to_owned(),
                width: whole(json.get("width").ok_or("fwg_level_band: no \"width\"")?)?,
            },
            other => return Err(format!("hierarchy kind \"{other}\" is not known here")),
        };
        let widths_ok = match &hierarchy {
            Hierarchy::Bands(w) => w.iter().all(|&w| w > 0),
            Hierarchy::Steps(w) => w.iter().all(|&w| w > 0.0 && w.is_finite()),
            Hierarchy::FwgLevelBand { width, .. } => *width > 0,
            Hierarchy::Classes(levels) => levels.iter().all(|b| !b.is_empty()),
            _ => true,
        };
        if !widths_ok {
            return Err(format!(
                "{kind}: a width or class list is empty or not above 0"
            ));
        }
        Ok(hierarchy)
    }

    /// Levels, the withholding last one included.
    pub fn levels(&self) -> usize {
        match self {
            Hierarchy::Categorical => 2,
            Hierarchy::Groups(levels) => levels.len() + 2,
            Hierarchy::Bands(widths) => widths.len() + 2,
            Hierarchy::Steps(widths) => widths.len() + 2,
            Hierarchy::Classes(levels) => levels.len() + 1,
            Hierarchy::Postcode => 5,
            Hierarchy::FwgLevelBand { .. } => 3,
        }
    }

    /// The label the release gives `value` at `level`: None for a null
    /// value and at the last level. Level 0 is the value as linked (as
    /// [`Value::label`] writes it), except for classes, whose level 0 is
    /// already classed. `side` is the row's `level_column` value for
    /// [`Hierarchy::FwgLevelBand`].
    pub fn label(
        &self,
        level: usize,
        value: &Value,
        side: Option<&Value>,
    ) -> Result<Option<String>, String> {
        if level >= self.levels() {
            return Err(format!(
                "no level {level} in a hierarchy of {}",
                self.levels()
            ));
        }
        if level + 1 == self.levels() || *value == Value::Null {
            return Ok(None);
        }
        if level == 0 && !matches!(self, Hierarchy::Classes(_)) {
            return Ok(value.label());
        }
        Ok(match self {
            Hierarchy::Categorical => unreachable!("level 0 or withheld"),
            Hierarchy::Groups(levels) => {
                let key = value.label().expect("not null");
                Some(
                    levels[level - 1]
                        .get(&key)
                        .ok_or_else(|| format!("a value has no group at level {level}"))?
                        .clone(),
                )
            }
            Hierarchy::Bands(widths) => Some(band(whole_number(value)?, widths[level - 1])),
            Hierarchy::Steps(widths) => {
                let x = number(value)?;
                let width = widths[level - 1];
                let low = (x / width).floor() * width;
                Some(format!(
                    "{}-{}",
                    plain_number(low),
                    plain_number(low + width)
                ))
            }
            Hierarchy::Classes(levels) => {
                let bounds = &levels[level];
                // Fractions (Float64 columns) get half-open labels.
                let fraction = matches!(value, Value::Float(_));
                let x = number(value)?;
                let below = bounds.partition_point(|&b| b as f64 <= x);
                Some(if below == 0 {
                    format!("<{}", bounds[0])
                } else if below == bounds.len() {
                    format!("{}+", bounds[below - 1])
                } else if fraction {
                    format!("{}-<{}", bounds[below - 1], bounds[below])
                } else {
                    format!("{}-{}", bounds[below - 1], bounds[below] - 1)
                })
            }
            Hierarchy::Postcode => {
                let postcode = whole_number(value)?;
                match level {
                    1 => Some(format!("{}xx", postcode / 100)),
                    2 => province(postcode).map(str::to_owned),
                    _ => province(postcode).map(|p| landsdeel(p).to_owned()),
                }
            }
            Hierarchy::FwgLevelBand { width, .. } => match side {
                None | Some(Value::Null) => None,
                Some(fwg_level) => Some(format!("FWG {}", band(whole_number(fwg_level)?, *width))),
            },
        })
    }
}

/// `25-29`: the band of `width` holding `v`, both ends included.
fn band(v: i64, width: i64) -> String {
    let low = v.div_euclid(width) * width;
    format!("{low}-{}", low + width - 1)
}

fn whole_number(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::UInt(u) => i64::try_from(*u).map_err(|_| "a whole number out of range".to_owned()),
        Value::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| "this hierarchy needs whole numbers".to_owned()),
        _ => Err("this hierarchy needs whole numbers".to_owned()),
    }
}

fn number(value: &Value) -> Result<f64, String> {
    match value {
        Value::Float(bits) => Ok(f64::from_bits(*bits)),
        Value::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| "this hierarchy needs numbers".to_owned()),
        other => whole_number(other).map(|i| i as f64),
    }
}

/// A number as a label writes it: no trailing zeros (`2.5`, `3`), to at
/// most six decimals, so that `0.1 + 0.2` reads `0.3`.
fn plain_number(x: f64) -> String {
    let fixed = format!("{x:.6}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" => "0".to_owned(),
        t => t.to_owned(),
    }
}

/// The province of a four-digit postcode by its two-digit region, as the
/// release's postcode hierarchy groups regions (a coarse map: a region that
/// straddles a border goes to one province). Copied, not derived: the
/// end-to-end test checks it against the engine's for every postcode.
pub fn province(postcode4: i64) -> Option<&'static str> {
    const REGIONS: [(i64, i64, &str); 18] = [
        (10, 12, "Noord-Holland"),
        (13, 13, "Flevoland"),
        (14, 21, "Noord-Holland"),
        (22, 33, "Zuid-Holland"),
        (34, 39, "Utrecht"),
        (40, 41, "Gelderland"),
        (42, 42, "Zuid-Holland"),
        (43, 45, "Zeeland"),
        (46, 57, "Noord-Brabant"),
        (58, 64, "Limburg"),
        (65, 73, "Gelderland"),
        (74, 77, "Overijssel"),
        (78, 79, "Drenthe"),
        (80, 81, "Overijssel"),
        (82, 83, "Flevoland"),
        (84, 92, "Friesland"),
        (93, 94, "Drenthe"),
        (95, 99, "Groningen"),
    ];
    let region = postcode4 / 100;
    REGIONS
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&region))
        .map(|(_, _, p)| *p)
}

/// The part of the country (CBS landsdeel) of a province.
pub fn landsdeel(province: &str) -> &'static str {
    match province {
        "Groningen" | "Friesland" | "Drenthe" => "Noord-Nederland",
        "Overijssel" | "Flevoland" | "Gelderland" => "Oost-Nederland",
        "Noord-Brabant" | "Limburg" => "Zuid-Nederland",
        // Utrecht, Noord-Holland, Zuid-Holland, Zeeland.
        _ => "West-Nederland",
    }
}

// ------------------------------------------------------------------ values

/// A value as written in a release, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// The bits of an f64 with `-0.0` as `0.0` and one NaN: equal values,
    /// equal bits.
    Float(u64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    fn float(v: f64) -> Value {
        let canonical = if v == 0.0 {
            0.0
        } else if v.is_nan() {
            f64::NAN
        } else {
            v
        };
        Value::Float(canonical.to_bits())
    }

    /// The value as text, to compare a release's column with a population
    /// labelled from the models: `true`/`false`, integers in decimal,
    /// floats in the shortest form that reads back the same (`3`, `2.5`),
    /// bytes in hexadecimal; None for null.
    pub fn label(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(bits) => f64::from_bits(*bits).to_string(),
            Value::Text(t) => t.clone(),
            Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        })
    }
}

fn cast_to(name: &str, array: &ArrayRef, to: &DataType) -> Result<ArrayRef, AttackError> {
    cast(array, to).map_err(|source| AttackError::Arrow {
        what: format!("column {name}: reading {} as {to}", array.data_type()),
        source,
    })
}

/// Every row of a column as a [`Value`].
pub fn values(name: &str, array: &ArrayRef) -> Result<Vec<Value>, AttackError> {
    use DataType::*;
    fn collect<T>(it: impl Iterator<Item = Option<T>>, f: impl Fn(T) -> Value) -> Vec<Value> {
        it.map(|v| v.map_or(Value::Null, &f)).collect()
    }
    Ok(match array.data_type() {
        Null => vec![Value::Null; array.len()],
        Boolean => collect(array.as_boolean().iter(), Value::Bool),
        Int8 | Int16 | Int32 | Int64 => {
            let wide = cast_to(name, array, &Int64)?;
            collect(wide.as_primitive::<Int64Type>().iter(), Value::Int)
        }
        UInt8 | UInt16 | UInt32 | UInt64 => {
            let wide = cast_to(name, array, &UInt64)?;
            collect(wide.as_primitive::<UInt64Type>().iter(), Value::UInt)
        }
        // Widening to f64 is exact, so equal floats stay equal.
        Float16 | Float32 | Float64 => {
            let wide = cast_to(name, array, &Float64)?;
            collect(wide.as_primitive::<Float64Type>().iter(), Value::float)
        }
        Utf8 | LargeUtf8 | Utf8View => {
            let text = cast_to(name, array, &Utf8)?;
            collect(text.as_string::<i32>().iter(), |s| {
                Value::Text(s.to_owned())
            })
        }
        Binary | LargeBinary | BinaryView => {
            let bytes = cast_to(name, array, &LargeBinary)?;
            collect(bytes.as_binary::<i64>().iter(), |b| {
                Value::Bytes(b.to_vec())
            })
        }
        FixedSizeBinary(_) => collect(array.as_fixed_size_binary().iter(), |b| {
            Value::Bytes(b.to_vec())
        }),
        Dictionary(_, inner) => values(name, &cast_to(name, array, inner.as_ref())?)?,
        // Dates, decimals and the like: their exact text is their value.
        _ => {
            let text = cast_to(name, array, &Utf8)?;
            collect(text.as_string::<i32>().iter(), |s| {
                Value::Text(s.to_owned())
            })
        }
    })
}

/// A column's values numbered in order of appearance; null is one number
/// like any value.
fn value_codes(name: &str, array: &ArrayRef) -> Result<Vec<u32>, AttackError> {
    let mut numbers: HashMap<Value, u32> = HashMap::new();
    Ok(values(name, array)?
        .into_iter()
        .map(|v| {
            let next = numbers.len() as u32;
            *numbers.entry(v).or_insert(next)
        })
        .collect())
}

/// `person_id` numbered 0..n; every null row a unit of its own.
fn unit_codes(array: &ArrayRef) -> Result<Vec<u32>, AttackError> {
    Ok(units_of(values(PERSON_ID, array)?))
}

/// Values numbered 0..n in order of appearance; every null a unit of its own.
fn units_of(values: Vec<Value>) -> Vec<u32> {
    let mut numbers: HashMap<Value, u32> = HashMap::new();
    let mut next = 0u32;
    values
        .into_iter()
        .map(|v| {
            let unit = match v {
                Value::Null => next,
                v => *numbers.entry(v).or_insert(next),
            };
            if unit == next {
                next += 1;
            }
            unit
        })
        .collect()
}

/// The distinct non-null values of a column (to compare research IDs
/// between releases without printing them).
pub fn distinct_values(batch: &RecordBatch, column: &str) -> Result<HashSet<Value>, AttackError> {
    let array = batch
        .column_by_name(column)
        .ok_or_else(|| problem(format!("no column {column}")))?;
    Ok(values(column, array)?
        .into_iter()
        .filter(|v| *v != Value::Null)
        .collect())
}

fn source_parts(source: &str) -> impl Iterator<Item = &str> {
    source.split('/').map(str::trim).filter(|p| !p.is_empty())
}

fn read_parquet(path: &Path) -> Result<RecordBatch, AttackError> {
    let parquet_error = |source| AttackError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| AttackError::Io {
        path: path.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_error)?
        .build()
        .map_err(parquet_error)?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| AttackError::Arrow {
            what: format!("reading {}", path.display()),
            source,
        })?;
    concat_batches(&schema, &batches).map_err(|source| AttackError::Arrow {
        what: format!("reading {}", path.display()),
        source,
    })
}

fn read_json(path: &Path) -> Result<serde_json::Value, AttackError> {
    let bytes = std::fs::read(path).map_err(|source| AttackError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| AttackError::Json {
        path: path.to_owned(),
        source,
    })
}

fn codebook_sources(
    codebook: &serde_json::Value,
) -> Result<BTreeMap<String, BTreeMap<String, Option<String>>>, AttackError> {
    let malformed = |what: &str| problem(format!("{CODEBOOK_JSON}: {what}"));
    let files = codebook
        .get("files")
        .and_then(|f| f.as_array())
        .ok_or_else(|| malformed("no \"files\" list"))?;
    let mut sources = BTreeMap::new();
    for file in files {
        let name = file
            .get("file")
            .and_then(|n| n.as_str())
            .ok_or_else(|| malformed("a file without \"file\""))?;
        let variables = file
            .get("variables")
            .and_then(|v| v.as_array())
            .ok_or_else(|| malformed(&format!("{name} has no \"variables\" list")))?;
        let mut by_variable = BTreeMap::new();
        for variable in variables {
            let variable_name = variable
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| malformed(&format!("a variable of {name} without \"name\"")))?;
            let source = variable
                .get("source")
                .and_then(|s| s.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned);
            by_variable.insert(variable_name.to_owned(), source);
        }
        sources.insert(name.to_owned(), by_variable);
    }
    Ok(sources)
}

// ---------------------------------------------------------------- utility

/// Null values of one released variable of the person file.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub column: String,
    pub rows: usize,
    pub nulls: usize,
}

impl Suppression {
    /// Null share of the released rows: suppressed, withheld, or unknown
    /// as linked (the file cannot tell them apart).
    pub fn share(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.nulls as f64 / self.rows as f64
        }
    }

    /// Released as a column of nulls only: generalised away entirely.
    pub fn withheld(&self) -> bool {
        self.rows > 0 && self.nulls == self.rows
    }
}

/// Leavers among person-years with a known `left_employer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaveRate {
    pub leavers: usize,
    pub person_years: usize,
}

impl LeaveRate {
    pub fn rate(&self) -> Option<f64> {
        (self.person_years > 0).then(|| self.leavers as f64 / self.person_years as f64)
    }

    fn add(&mut self, left: bool) {
        self.person_years += 1;
        self.leavers += usize::from(left);
    }
}

/// A group's leave rate against the rest's.
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    pub group: String,
    pub rest: String,
    pub in_group: LeaveRate,
    pub in_rest: LeaveRate,
    /// Person-years with a known leave status that fit neither side (age
    /// unknown, or a band straddling the group's edge), and why.
    pub unplaced: Vec<(String, usize)>,
}

impl Contrast {
    /// The planted direction: the group leaves more. False when either
    /// side has no person-year to measure on.
    pub fn group_leaves_more(&self) -> bool {
        match (self.in_group.rate(), self.in_rest.rate()) {
            (Some(g), Some(r)) => g > r,
            _ => false,
        }
    }
}

impl fmt::Display for Contrast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |r: &LeaveRate| match r.rate() {
            Some(x) => format!("{:.1}% ({} of {})", x * 100.0, r.leavers, r.person_years),
            None => "no person-years".to_owned(),
        };
        write!(
            f,
            "{}: {} vs {}: {}",
            self.group,
            rate(&self.in_group),
            self.rest,
            rate(&self.in_rest)
        )?;
        for (why, n) in &self.unplaced {
            write!(f, "; {n} unplaced ({why})")?;
        }
        Ok(())
    }
}

/// Mean absence percentage of organisation-years by temporary share.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// Organisation-years with both figures.
    pub pairs: usize,
    /// Pearson correlation of absence % with temporary share.
    pub correlation: Option<f64>,
    /// Least-squares change of absence % per unit of temporary share.
    pub slope: Option<f64>,
    /// Mean absence % per temporary-share group: each distinct released
    /// value when there are few (bands), else thirds of the organisations.
    pub groups: Vec<TrendGroup>,
    /// Why there is nothing to measure, when there is not.
    pub missing: Option<String>,
}

impl Trend {
    /// The planted direction: absence rises with the temporary share.
    pub fn rises(&self) -> bool {
        self.slope.is_some_and(|s| s > 0.0) && self.correlation.is_some_and(|c| c > 0.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendGroup {
    pub temporary_share: String,
    pub organisation_years: usize,
    pub mean_absence_pct: f64,
}

/// Everything [`utility`] measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Utility {
    /// Every released variable of the person file (all but `person_id`
    /// and `year`), in the file's order.
    pub suppression: Vec<Suppression>,
    /// Leaving the employer at 25–34 (as near as the released age bands
    /// allow) against other ages under 60.
    pub young_leavers: Contrast,
    /// Leaving the employer with mental-health care use against without.
    pub ggz_leavers: Contrast,
    pub absence_by_temporary_share: Trend,
}

/// What a researcher can still see in the release.
pub fn utility(release: &Release) -> Result<Utility, AttackError> {
    let persons = &release.persons;
    let suppression = persons
        .schema()
        .fields()
        .iter()
        .zip(persons.columns())
        .filter(|(f, _)| f.name() != PERSON_ID && f.name() != YEAR)
        .map(|(f, array)| Suppression {
            column: f.name().clone(),
            rows: array.len(),
            nulls: array.logical_null_count(),
        })
        .collect();
    Ok(Utility {
        suppression,
        young_leavers: young_leavers(persons)?,
        ggz_leavers: ggz_leavers(persons)?,
        absence_by_temporary_share: absence_by_temporary_share(release.organisations.as_ref())?,
    })
}

fn bools(batch: &RecordBatch, column: &str) -> Result<Option<Vec<Option<bool>>>, AttackError> {
    let Some(array) = batch.column_by_name(column) else {
        return Ok(None);
    };
    values(column, array)?
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            _ => Err(problem(format!("column {column} is not boolean"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A column as numbers: numeric values as they are, text labels by the
/// numbers in them ([`number_in_label`]).
fn numbers(batch: &RecordBatch, column: &str) -> Result<Option<Vec<Option<f64>>>, AttackError> {
    let Some(array) = batch.column_by_name(column) else {
        return Ok(None);
    };
    Ok(Some(
        values(column, array)?
            .into_iter()
            .map(|v| match v {
                Value::Int(i) => Some(i as f64),
                Value::UInt(u) => Some(u as f64),
                Value::Float(bits) => Some(f64::from_bits(bits)).filter(|x| x.is_finite()),
                Value::Text(s) => number_in_label(&s),
                _ => None,
            })
            .collect(),
    ))
}

/// An age as released: an exact age (`27`), a band (`25-29`, both ends
/// included, as the codebook's labels read) or an open band (`60+`).
/// Returns (lowest, highest) age; `None` for a label that is none of these.
pub fn age_range(label: &str) -> Option<(u32, Option<u32>)> {
    let label = label.trim();
    if let Some(low) = label.strip_suffix('+') {
        return Some((low.trim().parse().ok()?, None));
    }
    if let Some((low, high)) = label.split_once(['-', '–']) {
        let (low, high): (u32, u32) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
        return (low <= high).then_some((low, Some(high)));
    }
    let age = label.parse().ok()?;
    Some((age, Some(age)))
}

/// The number a label stands for: its value, the middle of a band
/// (`0.10-0.20`, `10–20%`), or the lower bound of an open band (`40+`).
pub fn number_in_label(label: &str) -> Option<f64> {
    let mut found = Vec::new();
    let mut current = String::new();
    for c in label.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !current.is_empty()) {
            current.push(c);
        } else if c == ',' && !current.is_empty() {
            // A decimal comma, as partners and spreadsheets write them.
            current.push('.');
        } else if !current.is_empty() {
            found.push(current.trim_end_matches('.').parse::<f64>().ok()?);
            current.clear();
        }
    }
    match found.as_slice() {
        [x] => Some(*x),
        [low, high] => Some((low + high) / 2.0),
        _ => None,
    }
}

/// The ages the synthetic sector gives a higher exit propensity
/// (docs/synth.md: ×1.55 at 25–35).
const YOUNG: (u32, u32) = (25, 34);
/// From this age on the sector plants exits too (retirement): such ages
/// are compared with neither side, as docs/synth.md compares 25–35 with
/// "other ages under 60".
const OLD: u32 = 60;

/// An age range as parsed: lowest, highest (None: open).
type AgeRange = (u32, Option<u32>);

fn overlaps((low, high): AgeRange, (from, to): (u32, u32)) -> bool {
    low <= to && high.is_none_or(|h| h >= from)
}

/// Leaving at 25–34 against other ages under 60, as near as the released
/// ages allow. Released bands may not split at 25 and 35 (10-year bands
/// `20-29`, `30-39` at demo scale), so the group is the span of the
/// released ages that overlap 25–34 (then 20–39), and the rest every age
/// wholly outside that span and under 60. The planted group is a part of
/// that span: when 25–34 leave more than the others, the span does too
/// unless its other ages leave much less — the test of the direction is
/// weaker with wider bands, never reversed by them.
fn young_leavers(persons: &RecordBatch) -> Result<Contrast, AttackError> {
    let mut contrast = Contrast {
        group: format!("age {}-{}", YOUNG.0, YOUNG.1),
        rest: format!("other ages under {OLD}"),
        in_group: LeaveRate::default(),
        in_rest: LeaveRate::default(),
        unplaced: Vec::new(),
    };
    let Some(left) = bools(persons, "left_employer")? else {
        contrast
            .unplaced
            .push(("no left_employer column".to_owned(), 0));
        return Ok(contrast);
    };
    let ages = match persons.column_by_name("age") {
        Some(array) => values("age", array)?,
        None => vec![Value::Null; persons.num_rows()],
    };
    let (mut unknown, mut unreadable) = (0, 0);
    let mut known: Vec<(bool, AgeRange)> = Vec::new();
    for (left, age) in left.into_iter().zip(ages) {
        let Some(left) = left else { continue };
        let range = match &age {
            Value::Null => {
                unknown += 1;
                continue;
            }
            Value::Int(a) => u32::try_from(*a).ok().map(|a| (a, Some(a))),
            Value::UInt(a) => u32::try_from(*a).ok().map(|a| (a, Some(a))),
            Value::Text(label) => age_range(label),
            _ => None,
        };
        match range {
            Some(range) => known.push((left, range)),
            None => unreadable += 1,
        }
    }
    // The span of the released ages that overlap the planted group.
    let overlapping: Vec<AgeRange> = known
        .iter()
        .map(|(_, r)| *r)
        .filter(|r| overlaps(*r, YOUNG))
        .collect();
    let span_low = overlapping.iter().map(|r| r.0).min();
    let span_high = if overlapping.iter().any(|r| r.1.is_none()) {
        None
    } else {
        overlapping.iter().filter_map(|r| r.1).max()
    };
    let Some(span_low) = span_low else {
        contrast
            .unplaced
            .push(("no released age overlaps 25-34".to_owned(), known.len()));
        return Ok(contrast);
    };
    contrast.group = match span_high {
        Some(high) => format!("age {span_low}-{high}"),
        None => format!("age {span_low}+"),
    };
    let (mut straddling, mut old, mut straddling_old) = (0, 0, 0);
    for (left, (low, high)) in known {
        let within = low >= span_low
            && match (high, span_high) {
                (_, None) => true,
                (Some(h), Some(s)) => h <= s,
                (None, Some(_)) => false,
            };
        let outside = !overlaps((low, high), (span_low, span_high.unwrap_or(u32::MAX)));
        if within {
            contrast.in_group.add(left);
        } else if !outside {
            straddling += 1;
        } else if high.is_some_and(|h| h < OLD) {
            contrast.in_rest.add(left);
        } else if low >= OLD {
            old += 1;
        } else {
            straddling_old += 1;
        }
    }
    for (why, n) in [
        ("age suppressed".to_owned(), unknown),
        (
            format!("age band straddles the edge of {}", contrast.group),
            straddling,
        ),
        (format!("aged {OLD} or over"), old),
        (format!("age band straddles {OLD}"), straddling_old),
        ("age label not read".to_owned(), unreadable),
    ] {
        if n > 0 {
            contrast.unplaced.push((why, n));
        }
    }
    Ok(contrast)
}

fn ggz_leavers(persons: &RecordBatch) -> Result<Contrast, AttackError> {
    let mut contrast = Contrast {
        group: "GGZ use".to_owned(),
        rest: "no GGZ use".to_owned(),
        in_group: LeaveRate::default(),
        in_rest: LeaveRate::default(),
        unplaced: Vec::new(),
    };
    let (Some(left), Some(ggz)) = (bools(persons, "left_employer")?, bools(persons, "ggz_any")?)
    else {
        contrast
            .unplaced
            .push(("no left_employer or ggz_any column".to_owned(), 0));
        return Ok(contrast);
    };
    let mut unknown = 0;
    for (left, ggz) in left.into_iter().zip(ggz) {
        match (left, ggz) {
            (None, _) => {}
            (Some(left), Some(true)) => contrast.in_group.add(left),
            (Some(left), Some(false)) => contrast.in_rest.add(left),
            (Some(_), None) => unknown += 1,
        }
    }
    if unknown > 0 {
        contrast.unplaced.push((
            "GGZ use unknown (not insured or suppressed)".to_owned(),
            unknown,
        ));
    }
    Ok(contrast)
}

/// Distinct temporary shares up to this many are read as bands.
const MAX_BANDS: usize = 12;

fn absence_by_temporary_share(organisations: Option<&RecordBatch>) -> Result<Trend, AttackError> {
    let mut trend = Trend {
        pairs: 0,
        correlation: None,
        slope: None,
        groups: Vec::new(),
        missing: None,
    };
    let Some(organisations) = organisations else {
        trend.missing = Some(format!("no {ORGANISATION_FILE}"));
        return Ok(trend);
    };
    let (Some(share), Some(absence)) = (
        numbers(organisations, "temporary_share")?,
        numbers(organisations, "absence_pct")?,
    ) else {
        trend.missing = Some("no temporary_share or absence_pct column".to_owned());
        return Ok(trend);
    };
    let mut pairs: Vec<(f64, f64)> = share
        .into_iter()
        .zip(absence)
        .filter_map(|(x, y)| Some((x?, y?)))
        .collect();
    trend.pairs = pairs.len();
    if pairs.len() < 2 {
        trend.missing = Some("fewer than two organisation-years with both figures".to_owned());
        return Ok(trend);
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pairs.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let syy: f64 = pairs.iter().map(|(_, y)| (y - my) * (y - my)).sum();
    if sxx > 0.0 {
        trend.slope = Some(sxy / sxx);
        if syy > 0.0 {
            trend.correlation = Some(sxy / (sxx * syy).sqrt());
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let distinct: BTreeSet<u64> = pairs.iter().map(|p| p.0.to_bits()).collect();
    let mean = |group: &[(f64, f64)]| group.iter().map(|p| p.1).sum::<f64>() / group.len() as f64;
    if distinct.len() <= MAX_BANDS {
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            trend.groups.push(TrendGroup {
                temporary_share: format!("{}", group[0].0),
                organisation_years: group.len(),
                mean_absence_pct: mean(group),
            });
        }
    } else {
        let third = pairs.len().div_ceil(3);
        for group in pairs.chunks(third) {
            trend.groups.push(TrendGroup {
                temporary_share: format!("{:.3}-{:.3}", group[0].0, group[group.len() - 1].0),
                organisation_years: group.len(),
                mean_absence_pct: mean(group),
            });
        }
    }
    Ok(trend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, BooleanArray, Float64Array, Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    /// A column of a hand-made person file: name, codebook source, values.
    enum Column {
        Text(&'static str, Option<&'static str>, Vec<Option<String>>),
        Int(&'static str, Option<&'static str>, Vec<Option<i32>>),
        Float(&'static str, Option<&'static str>, Vec<Option<f64>>),
        Bool(&'static str, Option<&'static str>, Vec<Option<bool>>),
        Bytes(&'static str, Option<&'static str>, Vec<Option<Vec<u8>>>),
    }

    impl Column {
        fn name(&self) -> &'static str {
            match self {
                Column::Text(n, ..)
                | Column::Int(n, ..)
                | Column::Float(n, ..)
                | Column::Bool(n, ..)
                | Column::Bytes(n, ..) => n,
            }
        }
        fn source(&self) -> Option<&'static str> {
            match self {
                Column::Text(_, s, _)
                | Column::Int(_, s, _)
                | Column::Float(_, s, _)
                | Column::Bool(_, s, _)
                | Column::Bytes(_, s, _) => *s,
            }
        }
        fn array(&self) -> ArrayRef {
            match self {
                Column::Text(_, _, v) => Arc::new(StringArray::from(v.clone())),
                Column::Int(_, _, v) => Arc::new(Int32Array::from(v.clone())),
                Column::Float(_, _, v) => Arc::new(Float64Array::from(v.clone())),
                Column::Bool(_, _, v) => Arc::new(BooleanArray::from(v.clone())),
                Column::Bytes(_, _, v) => Arc::new(BinaryArray::from_iter(v.iter())),
            }
        }
    }

    fn batch(columns: &[Column]) -> RecordBatch {
        let arrays: Vec<ArrayRef> = columns.iter().map(Column::array).collect();
        let fields: Vec<Field> = columns
            .iter()
            .zip(&arrays)
            .map(|(c, a)| Field::new(c.name(), a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn write_parquet(path: &Path, batch: &RecordBatch) {
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
    }

    /// A release directory with a person file, its codebook and a manifest.
    fn release_of(columns: &[Column], k: Option<usize>) -> (tempfile::TempDir, Release) {
        let dir = tempfile::tempdir().unwrap();
        write_parquet(&dir.path().join(PERSON_FILE), &batch(columns));
        let variables: Vec<serde_json::Value> = columns
            .iter()
            .map(|c| match c.source() {
                Some(s) => serde_json::json!({"name": c.name(), "source": s}),
                None => serde_json::json!({"name": c.name()}),
            })
            .collect();
        let codebook = serde_json::json!({
            "release_id": "R-test",
            "files": [{"file": PERSON_FILE, "variables": variables}],
        });
        std::fs::write(dir.path().join(CODEBOOK_JSON), codebook.to_string()).unwrap();
        let manifest = match k {
            Some(k) => serde_json::json!({"disclosure": {"k": k}}),
            None => serde_json::json!({"release_id": "R-test"}),
        };
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest.to_string()).unwrap();
        let release = Release::open(dir.path()).unwrap();
        (dir, release)
    }

    fn ids(n: usize) -> Vec<Option<String>> {
        (0..n).map(|i| Some(format!("P{i:03}"))).collect()
    }

    fn text(values: &[&str]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect()
    }

    fn measured(attack: &Attack) -> (Vec<String>, Exposure) {
        (attack.known.clone(), attack.exposure)
    }

    fn attacker(name: &str) -> &'static Attacker {
        ATTACKERS.iter().find(|a| a.name == name).unwrap()
    }

    const YEAR_SOURCE: Option<&str> = Some("IZZ staff survey / PFZW payroll");

    #[test]
    fn singletons_are_at_risk_only_for_the_attacker_who_knows_their_columns() {
        // 12 persons share (40-44, V); 3 are alone in theirs. The absence
        // service knows only absence days, equal for all 15.
        let mut age = vec!["40-44"; 12];
        age.extend(["20-24", "60+", "40-44"]);
        let mut sex = vec!["V"; 12];
        sex.extend(["V", "V", "M"]);
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(15)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2023); 15]),
                Column::Text("age", Some(PFZW_PAYROLL), text(&age)),
                Column::Text("sex", Some(PFZW_PAYROLL), text(&sex)),
                Column::Float("absence_days", Some(VERNET_ABSENCE), vec![Some(3.5); 15]),
            ],
            Some(10),
        );
        assert!(release.provenance_gaps().is_empty());
        let k = release.k_or(DEFAULT_K);
        let (known, pfzw) = measured(&release.attack(attacker("pfzw"), k, None).unwrap());
        assert_eq!(known, ["year", "age", "sex"]);
        assert_eq!((pfzw.persons, pfzw.at_risk, pfzw.classes), (15, 3, 4));
        assert!(pfzw.exceeds_threshold());
        let (known, vernet) = measured(&release.attack(attacker("vernet"), k, None).unwrap());
        assert_eq!(known, ["year", "absence_days"]);
        assert_eq!((vernet.persons, vernet.at_risk), (15, 0));
        assert!(!vernet.exceeds_threshold());
        // The outsider knows age and sex by name, whatever their source.
        let (known, outsider) = measured(&release.attack(attacker("outsider"), k, None).unwrap());
        assert_eq!(known, ["year", "age", "sex"]);
        assert_eq!(outsider.at_risk, 3);
        // The insurer knows only the year here: one class of 15.
        let (known, izz) = measured(&release.attack(attacker("izz"), k, None).unwrap());
        assert_eq!(known, ["year"]);
        assert_eq!(izz.at_risk, 0);
    }

    #[test]
    fn a_trajectory_unlike_the_others_is_at_risk_though_each_row_hides_in_a_big_class() {
        // 12 persons are "a" both years, 12 are "b" both years; one is "a"
        // in 2023 and "b" in 2024. Each of its rows is in a class of 13
        // rows, but no one else moved from a to b.
        let mut person = Vec::new();
        let mut year = Vec::new();
        let mut sector = Vec::new();
        for p in 0..25 {
            let path = match p {
                0..12 => ["a", "a"],
                12..24 => ["b", "b"],
                _ => ["a", "b"],
            };
            for (y, s) in [2023, 2024].into_iter().zip(path) {
                person.push(Some(format!("P{p:03}")));
                year.push(Some(y));
                sector.push(Some(s.to_owned()));
            }
        }
        let columns = [
            Column::Text(PERSON_ID, Some(KOPPEL), person),
            Column::Int(YEAR, YEAR_SOURCE, year),
            Column::Text("sector", Some(PFZW_PAYROLL), sector),
        ];
        let (_dir, release) = release_of(&columns, Some(10));
        let (_, pfzw) = measured(&release.attack(attacker("pfzw"), 10, None).unwrap());
        assert_eq!((pfzw.persons, pfzw.at_risk, pfzw.classes), (25, 1, 3));
        // Row by row (each row its own unit) nobody would be at risk: the
        // trajectory is what singles the person out.
        let rows = batch(&columns);
        let unique: Vec<Option<String>> = (0..50).map(|r| Some(format!("R{r}"))).collect();
        let by_row = RecordBatch::try_new(
            rows.schema(),
            vec![
                Arc::new(StringArray::from(unique)),
                rows.column(1).clone(),
                rows.column(2).clone(),
            ],
        )
        .unwrap();
        let known = ["year".to_owned(), "sector".to_owned()];
        assert_eq!(persons_at_risk(&by_row, &known, 10).unwrap().at_risk, 0);
    }

    #[test]
    fn a_null_is_a_value_of_its_own_and_floats_compare_by_value() {
        // 11 with hours 0.0 or -0.0 (one value), 4 with hours unknown: the
        // nulls form their own class of 4, not part of any other.
        let mut hours: Vec<Option<f64>> = vec![Some(0.0); 6];
        hours.extend([Some(-0.0); 5]);
        hours.extend([None; 4]);
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(15)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 15]),
                Column::Float("hours_per_week", Some(PFZW_PAYROLL), hours),
            ],
            None,
        );
        assert_eq!(release.declared_k, None);
        let (_, pfzw) = measured(
            &release
                .attack(attacker("pfzw"), release.k_or(10), None)
                .unwrap(),
        );
        assert_eq!((pfzw.at_risk, pfzw.classes), (4, 2));
        // Exact values: 0.1 + 0.2 is not 0.3.
        let mut hours: Vec<Option<f64>> = vec![Some(0.3); 10];
        hours.push(Some(0.1 + 0.2));
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(11)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 11]),
                Column::Float("hours_per_week", Some(PFZW_PAYROLL), hours),
            ],
            None,
        );
        let (_, pfzw) = measured(&release.attack(attacker("pfzw"), 10, None).unwrap());
        assert_eq!(pfzw.at_risk, 1);
    }

    #[test]
    fn the_employer_knows_org_id_where_it_is_released() {
        let columns = |org_id: Vec<Option<String>>| {
            [
                Column::Text(PERSON_ID, Some(KOPPEL), ids(12)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 12]),
                Column::Text(ORG_ID, Some(KOPPEL), org_id),
                Column::Text("sex", Some(PFZW_PAYROLL), text(&["V"; 12])),
            ]
        };
        // Without org_id values the employer knows what the payroll says.
        let (_dir, release) = release_of(&columns(vec![None; 12]), Some(10));
        let attack = release.attack(attacker("employer"), 10, None).unwrap();
        assert!(!attack.fails());
        assert_eq!(
            attack.counted,
            Counted::SampleInstead("no population given".to_owned())
        );
        assert!(
            attack
                .to_string()
                .ends_with("(sample: no population given), knowing year, org_id, sex"),
            "{attack}"
        );
        let mut one = vec![Some("O1".to_owned()); 12];
        one[11] = Some("O2".to_owned());
        let (_dir, release) = release_of(&columns(one), Some(10));
        let (known, employer) = measured(&release.attack(attacker("employer"), 10, None).unwrap());
        assert_eq!(known, ["year", "org_id", "sex"]);
        // 11 at O1 (a class of 11), 1 at O2.
        assert_eq!(employer.at_risk, 1);
        // The pension fund does not know which research ID is which employer.
        let (known, _) = measured(&release.attack(attacker("pfzw"), 10, None).unwrap());
        assert_eq!(known, ["year", "sex"]);
    }

    #[test]
    fn provenance_comes_from_the_codebook_and_gaps_are_reported() {
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(3)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 3]),
                // Known to both the pension fund and the insurer.
                Column::Int(
                    "shared",
                    Some("PFZW payroll / IZZ staff survey"),
                    vec![Some(1); 3],
                ),
                Column::Int("mystery", None, vec![Some(1); 3]),
                Column::Int("foreign", Some("Somebody else"), vec![Some(1); 3]),
                Column::Int("fwg", Some(FWG_FUNCTIONS), vec![Some(1); 3]),
            ],
            Some(10),
        );
        assert_eq!(
            release.provenance_gaps(),
            [
                "mystery: no source in codebook.json",
                "foreign: unknown source \"Somebody else\""
            ]
        );
        // FWG's characteristics follow from the function code on the payroll.
        assert_eq!(
            release.known_columns(attacker("pfzw")),
            ["year", "shared", "fwg"]
        );
        assert_eq!(
            release.known_columns(attacker("employer")),
            ["year", "shared", "fwg"]
        );
        assert_eq!(release.known_columns(attacker("izz")), ["year", "shared"]);
        assert_eq!(release.known_columns(attacker("vernet")), ["year"]);
        // FWG itself knows functions, not persons.
        assert_eq!(release.known_columns(attacker("fwg")), ["year"]);
    }

    #[test]
    fn the_person_id_is_required_and_a_null_one_is_a_unit_of_its_own() {
        let (_dir, release) = release_of(
            &[Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 3])],
            Some(10),
        );
        let error = release.attack(attacker("pfzw"), 10, None).unwrap_err();
        assert!(error.to_string().contains("no person_id column"), "{error}");
        let mut id = ids(10);
        id.extend([None, None]);
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), id),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2024); 12]),
            ],
            Some(10),
        );
        let (_, pfzw) = measured(&release.attack(attacker("pfzw"), 10, None).unwrap());
        assert_eq!((pfzw.persons, pfzw.at_risk), (12, 0));
    }

    #[test]
    fn age_labels_and_numbers_in_labels_are_read_as_written() {
        assert_eq!(age_range("27"), Some((27, Some(27))));
        assert_eq!(age_range("25-29"), Some((25, Some(29))));
        assert_eq!(age_range(" 30–34 "), Some((30, Some(34))));
        assert_eq!(age_range("60+"), Some((60, None)));
        assert_eq!(age_range("Utrecht"), None);
        assert_eq!(age_range("29-25"), None);
        assert_eq!(number_in_label("0.25"), Some(0.25));
        assert_eq!(number_in_label("0.10-0.20"), Some(0.15000000000000002));
        assert_eq!(number_in_label("10–20%"), Some(15.0));
        assert_eq!(number_in_label("40+"), Some(40.0));
        assert_eq!(number_in_label("0,5"), Some(0.5));
        assert_eq!(number_in_label("unknown"), None);
    }

    #[test]
    fn utility_recovers_planted_leave_rates_and_counts_suppression() {
        // (age, left_employer, ggz_any) per row.
        let rows: [(&str, Option<bool>, Option<bool>); 11] = [
            ("25-29", Some(true), Some(true)),
            ("25-29", Some(false), Some(true)),
            // Overlaps 25-34: the group becomes 25-39.
            ("30-39", Some(true), Some(false)),
            ("40-44", Some(false), Some(false)),
            ("40-44", Some(false), None),
            // Suppressed.
            ("", Some(true), Some(false)),
            // Leaving unknown: not counted anywhere.
            ("27", None, Some(true)),
            ("60+", Some(true), Some(false)),
            // Straddles the group's edge (39).
            ("35-44", Some(false), Some(false)),
            // Outside the group but straddles 60.
            ("55-64", Some(true), Some(false)),
            ("20-24", Some(false), None),
        ];
        let n = rows.len();
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(n)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2023); n]),
                Column::Text("age", Some(PFZW_PAYROLL), text(&rows.map(|r| r.0))),
                Column::Text("province", Some(PFZW_PAYROLL), text(&vec!["Utrecht"; n])),
                Column::Bool(
                    "left_employer",
                    Some(PFZW_PAYROLL),
                    rows.map(|r| r.1).to_vec(),
                ),
                Column::Bool("ggz_any", Some(IZZ_CLAIMS), rows.map(|r| r.2).to_vec()),
            ],
            Some(10),
        );
        let utility = utility(&release).unwrap();
        let young = &utility.young_leavers;
        assert_eq!(young.group, "age 25-39");
        assert_eq!(
            young.in_group,
            LeaveRate {
                leavers: 2,
                person_years: 3
            }
        );
        assert_eq!(
            young.in_rest,
            LeaveRate {
                leavers: 0,
                person_years: 3
            }
        );
        assert_eq!(
            young.unplaced,
            [
                ("age suppressed".to_owned(), 1),
                ("age band straddles the edge of age 25-39".to_owned(), 1),
                ("aged 60 or over".to_owned(), 1),
                ("age band straddles 60".to_owned(), 1),
            ]
        );
        assert!(young.group_leaves_more());
        let ggz = &utility.ggz_leavers;
        assert_eq!(
            ggz.in_group,
            LeaveRate {
                leavers: 1,
                person_years: 2
            }
        );
        assert_eq!(
            ggz.in_rest,
            LeaveRate {
                leavers: 4,
                person_years: 6
            }
        );
        assert!(!ggz.group_leaves_more());
        let shares: Vec<(&str, usize, usize)> = utility
            .suppression
            .iter()
            .map(|s| (s.column.as_str(), s.nulls, s.rows))
            .collect();
        assert_eq!(
            shares,
            [
                ("age", 1, n),
                ("province", 0, n),
                ("left_employer", 1, n),
                ("ggz_any", 2, n)
            ]
        );
        assert!(!utility.suppression[0].withheld());
        assert_eq!(
            utility.absence_by_temporary_share.missing.as_deref(),
            Some("no organisations.parquet")
        );
    }

    #[test]
    fn with_five_year_bands_the_group_is_exactly_25_to_34() {
        let ages = ["25-29", "30-34", "35-39", "20-24", "60-64"];
        let (_dir, release) = release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), ids(5)),
                Column::Int(YEAR, YEAR_SOURCE, vec![Some(2023); 5]),
                Column::Text("age", Some(PFZW_PAYROLL), text(&ages)),
                Column::Bool("left_employer", Some(PFZW_PAYROLL), vec![Some(true); 5]),
            ],
            Some(10),
        );
        let young = utility(&release).unwrap().young_leavers;
        assert_eq!(young.group, "age 25-34");
        assert_eq!(
            (young.in_group.person_years, young.in_rest.person_years),
            (2, 2)
        );
        assert_eq!(young.unplaced, [("aged 60 or over".to_owned(), 1)]);
    }

    fn label(h: &Hierarchy, level: usize, value: Value) -> Option<String> {
        h.label(level, &value, None).unwrap()
    }

    fn float(x: f64) -> Value {
        Value::float(x)
    }

    #[test]
    fn hierarchies_label_as_the_specification_writes() {
        let ages = Hierarchy::Bands(vec![5, 10]);
        assert_eq!(ages.levels(), 4);
        assert_eq!(label(&ages, 0, Value::Int(27)).as_deref(), Some("27"));
        assert_eq!(label(&ages, 1, Value::Int(27)).as_deref(), Some("25-29"));
        assert_eq!(label(&ages, 2, Value::Int(27)).as_deref(), Some("20-29"));
        assert_eq!(label(&ages, 2, Value::Int(17)).as_deref(), Some("10-19"));
        assert_eq!(label(&ages, 3, Value::Int(27)), None);
        assert_eq!(label(&ages, 1, Value::Null), None);
        assert!(ages.label(4, &Value::Int(27), None).is_err());

        let scale = Hierarchy::Steps(vec![0.5, 1.0, 2.0]);
        assert_eq!(label(&scale, 0, float(2.74)).as_deref(), Some("2.74"));
        assert_eq!(label(&scale, 1, float(2.74)).as_deref(), Some("2.5-3"));
        assert_eq!(label(&scale, 2, float(3.0)).as_deref(), Some("3-4"));
        assert_eq!(label(&scale, 3, float(3.0)).as_deref(), Some("2-4"));
        let tenths = Hierarchy::Steps(vec![0.1]);
        assert_eq!(label(&tenths, 1, float(0.35)).as_deref(), Some("0.3-0.4"));

        let days = Hierarchy::Classes(vec![vec![0, 1, 8, 43, 183], vec![0, 1, 43]]);
        assert_eq!(days.levels(), 3);
        assert_eq!(label(&days, 0, float(0.5)).as_deref(), Some("0-<1"));
        assert_eq!(label(&days, 0, float(7.5)).as_deref(), Some("1-<8"));
        assert_eq!(label(&days, 0, float(8.0)).as_deref(), Some("8-<43"));
        assert_eq!(label(&days, 0, float(200.0)).as_deref(), Some("183+"));
        assert_eq!(label(&days, 0, float(-1.0)).as_deref(), Some("<0"));
        assert_eq!(label(&days, 1, float(50.0)).as_deref(), Some("43+"));
        assert_eq!(label(&days, 2, float(50.0)), None);
        let size = Hierarchy::Classes(vec![vec![0, 50, 100, 2500]]);
        assert_eq!(label(&size, 0, Value::Int(0)).as_deref(), Some("0-49"));
        assert_eq!(label(&size, 0, Value::Int(99)).as_deref(), Some("50-99"));
        assert_eq!(label(&size, 0, Value::Int(2500)).as_deref(), Some("2500+"));
        let episodes = Hierarchy::Classes(vec![vec![0, 1, 2, 3, 5]]);
        assert_eq!(label(&episodes, 0, Value::Int(0)).as_deref(), Some("0-0"));
        assert_eq!(label(&episodes, 0, Value::Int(4)).as_deref(), Some("3-4"));

        let postcode = Hierarchy::Postcode;
        assert_eq!(
            label(&postcode, 0, Value::Int(1012)).as_deref(),
            Some("1012")
        );
        assert_eq!(
            label(&postcode, 1, Value::Int(1012)).as_deref(),
            Some("10xx")
        );
        assert_eq!(
            label(&postcode, 2, Value::Int(3511)).as_deref(),
            Some("Utrecht")
        );
        assert_eq!(
            label(&postcode, 3, Value::Int(9711)).as_deref(),
            Some("Noord-Nederland")
        );
        assert_eq!(label(&postcode, 3, Value::Int(999)), None);
        assert_eq!(label(&postcode, 4, Value::Int(1012)), None);

        let contract = Hierarchy::Groups(vec![BTreeMap::from([
            ("VAST".to_owned(), "vast".to_owned()),
            ("OPROEP".to_owned(), "flexibel".to_owned()),
        ])]);
        assert_eq!(
            label(&contract, 0, Value::Text("VAST".into())).as_deref(),
            Some("VAST")
        );
        assert_eq!(
            label(&contract, 1, Value::Text("OPROEP".into())).as_deref(),
            Some("flexibel")
        );
        assert!(
            contract
                .label(1, &Value::Text("ANDERS".into()), None)
                .is_err()
        );
        // Level 0 keeps the model's type: a boolean reads as it is written.
        let flag = Hierarchy::Categorical;
        assert_eq!(label(&flag, 0, Value::Bool(true)).as_deref(), Some("true"));
        assert_eq!(label(&flag, 1, Value::Bool(true)), None);

        let fwg = Hierarchy::FwgLevelBand {
            level_column: "fwg_level".into(),
            width: 10,
        };
        let code = Value::Text("1234".into());
        assert_eq!(
            fwg.label(1, &code, Some(&Value::Int(35)))
                .unwrap()
                .as_deref(),
            Some("FWG 30-39")
        );
        assert_eq!(fwg.label(1, &code, Some(&Value::Null)).unwrap(), None);
        assert_eq!(fwg.label(0, &code, None).unwrap().as_deref(), Some("1234"));
    }

    #[test]
    fn hierarchies_are_read_from_their_definition_in_the_report() {
        let read = |json: &str| Hierarchy::from_json(&serde_json::from_str(json).unwrap());
        assert_eq!(
            read(r#"{"kind": "bands", "widths": [5, 10]}"#),
            Ok(Hierarchy::Bands(vec![5, 10]))
        );
        assert_eq!(
            read(r#"{"kind": "steps", "widths": [0.5, 1.0, 2.0]}"#),
            Ok(Hierarchy::Steps(vec![0.5, 1.0, 2.0]))
        );
        assert_eq!(
            read(r#"{"kind": "classes", "levels": [[0, 50], [0]]}"#),
            Ok(Hierarchy::Classes(vec![vec![0, 50], vec![0]]))
        );
        assert_eq!(
            read(r#"{"kind": "groups", "levels": [{"GGZ": "zorg", "JZ": "welzijn"}]}"#)
                .unwrap()
                .levels(),
            3
        );
        assert_eq!(
            read(r#"{"kind": "fwg_level_band", "level_column": "fwg_level", "width": 10}"#),
            Ok(Hierarchy::FwgLevelBand {
                level_column: "fwg_level".into(),
                width: 10
            })
        );
        assert_eq!(read(r#"{"kind": "postcode"}"#), Ok(Hierarchy::Postcode));
        assert_eq!(
            read(r#"{"kind": "categorical"}"#),
            Ok(Hierarchy::Categorical)
        );
        // A kind this attacker does not implement fails the check, rather
        // than being compared as something else.
        assert!(read(r#"{"kind": "dates"}"#).unwrap_err().contains("dates"));
        assert!(read(r#"{"kind": "bands", "widths": [0]}"#).is_err());
    }

    /// A release of one column besides the ID and year, each person's rows
    /// given as (year, value).
    fn release_of_rows(
        column: &'static str,
        persons: &[&[(i32, Option<&str>)]],
    ) -> (tempfile::TempDir, Release) {
        let (mut id, mut year, mut value) = (Vec::new(), Vec::new(), Vec::new());
        for (p, rows) in persons.iter().enumerate() {
            for (y, v) in *rows {
                id.push(Some(format!("P{p:03}")));
                year.push(Some(*y));
                value.push(v.map(str::to_owned));
            }
        }
        release_of(
            &[
                Column::Text(PERSON_ID, Some(KOPPEL), id),
                Column::Int(YEAR, YEAR_SOURCE, year),
                Column::Text(column, Some(PFZW_PAYROLL), value),
            ],
            Some(10),
        )
    }

    #[test]
    fn a_person_with_one_row_is_counted_in_the_population_where_a_null_matches_anything() {
        let (_dir, release) = release_of_rows(
            "age",
            &[
                // 5 population persons have this (`Population::new`: each
                // row a person of its own): at risk.
                &[(2024, Some("30-39"))],
                // 20 have this.
                &[(2024, Some("20-29"))],
                // A null matches all 28 rows of 2024.
                &[(2024, None)],
                // Nobody in the population: at risk, and a row unmatched.
                &[(2024, Some("40-49"))],
                // Two rows: no population person holds two (each row is a
                // person of its own here), and its 2023 row matches no
                // population row. (Until the population had persons, a
                // person with two rows was counted in the release, where
                // this one is alone: at risk as well, but not counted as
                // unmatched.)
                &[(2023, Some("20-29")), (2024, Some("20-29"))],
            ],
        );
        let mut population = Population::new(28);
        let mut ages = vec![Some("20-29".to_owned()); 20];
        ages.extend(vec![Some("30-39".to_owned()); 5]);
        ages.extend([None, None, None]);
        population
            .insert(YEAR, vec![Some("2024".to_owned()); 28])
            .unwrap();
        population.insert("age", ages).unwrap();
        assert!(population.insert("sex", vec![None; 3]).is_err());

        let attack = release
            .attack(attacker("outsider"), 10, Some(&population))
            .unwrap();
        assert_eq!(attack.counted, Counted::Population);
        assert_eq!(attack.known, ["year", "age"]);
        let e = attack.exposure;
        assert_eq!((e.persons, e.at_risk), (5, 3));
        assert_eq!(e.below_k_in_population, 3);
        assert_eq!(e.smallest_population_count, Some(0));
        assert_eq!((e.persons_unmatched, e.rows_unmatched), (2, 2));
        assert!(attack.fails());
        // In the release alone every class is a single person.
        assert_eq!(attack.in_release.at_risk, 5);
        let shown = attack.to_string();
        assert!(
            shown.contains("[k-map: 5 persons, of which 3 below k in the population (smallest 0); in the release alone 5 (100.00%)]"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "[2 released persons match no population person; 2 released rows no population row]"
            ),
            "{shown}"
        );

        // The insurer knows who responded: counted in the release.
        let izz = release
            .attack(attacker("izz"), 10, Some(&population))
            .unwrap();
        assert_eq!(izz.counted, Counted::Sample);
        // A population without a column the attacker knows is not used.
        let mut bare = Population::new(28);
        bare.insert(YEAR, vec![Some("2024".to_owned()); 28])
            .unwrap();
        bare.missing.insert("age".into(), "not in the test".into());
        let attack = release.attack(attacker("pfzw"), 10, Some(&bare)).unwrap();
        assert_eq!(
            attack.counted,
            Counted::SampleInstead("the population lacks age (not in the test)".into())
        );
        assert_eq!(attack.exposure, attack.in_release);
    }

    /// A population of one column besides the year, each person's rows
    /// given as (year, label), each person repeated `times`.
    /// A person's rows as (year, label).
    type Rows<'a> = &'a [(i32, Option<&'a str>)];

    fn population_of(column: &str, persons: &[(usize, Rows)]) -> Population {
        let (mut years, mut labels, mut units) = (Vec::new(), Vec::new(), Vec::new());
        let mut person = 0u32;
        for (times, rows) in persons {
            for _ in 0..*times {
                for (y, l) in *rows {
                    years.push(Some(y.to_string()));
                    labels.push(l.map(str::to_owned));
                    // Any number names a person: not 0.., not in order.
                    units.push(1_000_000 - 7 * person);
                }
                person += 1;
            }
        }
        let mut population = Population::new(years.len());
        population.insert(YEAR, years).unwrap();
        population.insert(column, labels).unwrap();
        population.set_units(units).unwrap();
        population
    }

    /// The population count of every released person, in release order.
    fn population_counts_of(
        persons: &RecordBatch,
        known: &[&str],
        population: &Population,
    ) -> Vec<u64> {
        let known: Vec<String> = known.iter().map(|c| c.to_string()).collect();
        let units = person_units(persons).unwrap();
        population_counts(persons, &known, &units, population)
            .unwrap()
            .counts
    }

    fn k_map(release: &Release, population: &Population) -> Attack {
        let attack = release
            .attack(attacker("pfzw"), 10, Some(population))
            .unwrap();
        assert_eq!(attack.counted, Counted::Population);
        assert_eq!(attack.known, ["year", "age"]);
        attack
    }

    #[test]
    fn a_trajectory_is_matched_only_by_the_population_persons_holding_both_its_rows() {
        let (_dir, release) = release_of_rows(
            "age",
            &[
                &[(2023, Some("a")), (2024, Some("b"))],
                &[(2023, Some("a"))],
            ],
        );
        let population = population_of(
            "age",
            &[
                (15, &[(2023, Some("a")), (2024, Some("a"))]),
                (15, &[(2023, Some("b")), (2024, Some("b"))]),
                (2, &[(2023, Some("a")), (2024, Some("b"))]),
            ],
        );
        assert_eq!(population.person_count(), 32);
        // Each of the first person's rows is matched by 17 population rows
        // of 17 persons; only 2 persons hold both. A row-by-row count would
        // find it safe.
        assert_eq!(
            population_counts_of(&release.persons, &["year", "age"], &population),
            [2, 17]
        );
        let e = k_map(&release, &population).exposure;
        assert_eq!((e.persons, e.at_risk, e.below_k_in_population), (2, 1, 1));
        assert_eq!(e.smallest_population_count, Some(2));
        assert_eq!((e.persons_unmatched, e.rows_unmatched), (0, 0));
    }

    #[test]
    fn a_trajectory_alone_in_the_release_is_safe_when_k_population_persons_hold_it() {
        let (_dir, release) = release_of_rows("age", &[&[(2023, Some("a")), (2024, Some("b"))]]);
        let trajectory: Rows = &[(2023, Some("a")), (2024, Some("b"))];
        let attack = k_map(&release, &population_of("age", &[(10, trajectory)]));
        let e = attack.exposure;
        assert_eq!((e.at_risk, e.below_k_in_population), (0, 0));
        assert_eq!(e.smallest_population_count, Some(10));
        assert!(!attack.fails());
        // Alone in the release: counted there (as it was until the
        // population had persons) it would be at risk.
        assert_eq!(attack.in_release.at_risk, 1);
        // Nine persons hold it; twenty more hold one of its rows each, and
        // do not help.
        let population = population_of(
            "age",
            &[
                (9, trajectory),
                (20, &[(2023, Some("a"))]),
                (20, &[(2024, Some("b"))]),
                (20, &[(2023, Some("b")), (2024, Some("b"))]),
            ],
        );
        let e = k_map(&release, &population).exposure;
        assert_eq!((e.at_risk, e.smallest_population_count), (1, Some(9)));
    }

    #[test]
    fn a_released_null_matches_any_value_in_a_trajectory_a_population_null_only_a_null() {
        let (_dir, release) = release_of_rows(
            "age",
            &[
                &[(2023, None), (2024, Some("b"))],
                &[(2023, Some("a")), (2024, Some("b"))],
                &[(2023, None), (2024, None)],
                &[(2023, None)],
            ],
        );
        let population = population_of(
            "age",
            &[
                (4, &[(2023, Some("a")), (2024, Some("b"))]),
                (4, &[(2023, Some("c")), (2024, Some("b"))]),
                (2, &[(2023, None), (2024, Some("b"))]),
                (5, &[(2024, Some("b"))]),
                (3, &[(2023, Some("a"))]),
            ],
        );
        // (null, b): every person with a 2023 row and b in 2024, the
        // population's nulls included; (a, b): not the population's
        // (null, b); (null, null): every person with both years; (null)
        // alone: every person with a 2023 row.
        assert_eq!(
            population_counts_of(&release.persons, &["year", "age"], &population),
            [10, 4, 10, 13]
        );
        let e = k_map(&release, &population).exposure;
        assert_eq!((e.at_risk, e.smallest_population_count), (1, Some(4)));
    }

    #[test]
    fn a_population_person_counts_once_however_many_of_its_rows_match() {
        // Not in the data (a person has one row a year), but the rule is
        // general: a one-row person is matched by persons, not rows, and a
        // person with two equal rows needs two distinct population rows.
        // (Until the population had persons, a one-row person was counted
        // by population rows: 10 here, not at risk.)
        let (_dir, release) = release_of_rows(
            "age",
            &[
                &[(2024, Some("a"))],
                &[(2024, Some("a")), (2024, Some("a"))],
            ],
        );
        let population = population_of(
            "age",
            &[
                (1, &[(2024, Some("a")), (2024, Some("a"))]),
                (8, &[(2024, Some("a"))]),
            ],
        );
        assert_eq!(population.rows, 10);
        assert_eq!(
            population_counts_of(&release.persons, &["year", "age"], &population),
            [9, 1]
        );
        let e = k_map(&release, &population).exposure;
        assert_eq!((e.at_risk, e.below_k_in_population), (2, 2));

        // The persons must be given for every row.
        let mut population = population;
        assert!(population.set_units(vec![0; 9]).is_err());
        population.units.pop();
        let error = release
            .attack(attacker("pfzw"), 10, Some(&population))
            .unwrap_err();
        assert!(
            error.to_string().contains("person of 9 rows, not 10"),
            "{error}"
        );
    }

    /// xorshift64: a small deterministic generator for the cross-check.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// One of `options`, or null.
        fn label(&mut self, options: &[&str]) -> Option<String> {
            options
                .get(self.below(options.len() + 1))
                .map(|o| o.to_string())
        }
    }

    /// Whether `released` rows pair one to one with distinct rows of
    /// `population` (each a list of labels), every pair matching.
    fn pairs(released: &[Vec<Option<String>>], population: &[Vec<Option<String>>]) -> bool {
        fn search(
            released: &[Vec<Option<String>>],
            population: &[Vec<Option<String>>],
            used: &mut [bool],
        ) -> bool {
            let Some((row, rest)) = released.split_first() else {
                return true;
            };
            (0..population.len()).any(|p| {
                let matches = row
                    .iter()
                    .zip(&population[p])
                    .all(|(r, q)| r.is_none() || r == q);
                if used[p] || !matches {
                    return false;
                }
                used[p] = true;
                let found = search(rest, population, used);
                used[p] = false;
                found
            })
        }
        search(released, population, &mut vec![false; population.len()])
    }

    #[test]
    fn population_counts_agree_with_pairing_every_released_person_with_every_population_person() {
        let columns = ["year", "a", "b"];
        let options: [&[&str]; 3] = [&["2023", "2024", "2025"], &["x", "y"], &["p", "q", "r"]];
        for seed in 1..=60u64 {
            let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Population persons of 1 to 5 rows; a year may repeat.
            let mut people: Vec<Vec<Vec<Option<String>>>> = Vec::new();
            for _ in 0..20 + random.below(40) {
                let rows = 1 + random.below(5);
                people.push(
                    (0..rows)
                        .map(|_| {
                            let mut row: Vec<Option<String>> =
                                options.iter().map(|o| random.label(o)).collect();
                            if random.below(4) > 0 {
                                row[0] = Some(options[0][random.below(3)].to_owned());
                            }
                            row
                        })
                        .collect(),
                );
            }
            // Its rows in a shuffled order, persons numbered at random.
            let mut rows: Vec<(u32, &Vec<Option<String>>)> = Vec::new();
            for (p, person) in people.iter().enumerate() {
                let unit = (p as u32) * 101 + random.below(100) as u32;
                rows.extend(person.iter().map(|row| (unit, row)));
            }
            for i in (1..rows.len()).rev() {
                rows.swap(i, random.below(i + 1));
            }
            let mut population = Population::new(rows.len());
            for (c, column) in columns.iter().enumerate() {
                population
                    .insert(column, rows.iter().map(|(_, r)| r[c].clone()).collect())
                    .unwrap();
            }
            population
                .set_units(rows.iter().map(|(u, _)| *u).collect())
                .unwrap();

            // Released persons of 1 to 3 rows: most of them some
            // population person's rows with values nulled, the others made
            // up.
            let mut released: Vec<Vec<Vec<Option<String>>>> = Vec::new();
            for _ in 0..30 {
                let m = 1 + random.below(3);
                let person = &people[random.below(people.len())];
                let made_up = random.below(4) == 0 || person.len() < m;
                let mut order: Vec<usize> = (0..person.len()).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, random.below(i + 1));
                }
                released.push(
                    (0..m)
                        .map(|i| {
                            if made_up {
                                options.iter().map(|o| random.label(o)).collect()
                            } else {
                                person[order[i]]
                                    .iter()
                                    .map(|v| {
                                        if random.below(3) == 0 {
                                            None
                                        } else {
                                            v.clone()
                                        }
                                    })
                                    .collect()
                            }
                        })
                        .collect(),
                );
            }
            let mut id = Vec::new();
            let mut values = vec![Vec::new(); columns.len()];
            for (p, person) in released.iter().enumerate() {
                for row in person {
                    id.push(Some(format!("P{p:03}")));
                    for (c, v) in row.iter().enumerate() {
                        values[c].push(v.clone());
                    }
                }
            }
            let mut batch_columns = vec![Column::Text(PERSON_ID, None, id)];
            for (c, v) in columns.iter().zip(values) {
                batch_columns.push(Column::Text(c, None, v));
            }
            let persons = batch(&batch_columns);

            for known in [&columns[..], &columns[..2], &["year", "b"]] {
                let index: Vec<usize> = known
                    .iter()
                    .map(|k| columns.iter().position(|c| c == k).unwrap())
                    .collect();
                let project = |row: &Vec<Option<String>>| -> Vec<Option<String>> {
                    index.iter().map(|&c| row[c].clone()).collect()
                };
                let expected: Vec<u64> = released
                    .iter()
                    .map(|r| {
                        let r: Vec<_> = r.iter().map(project).collect();
                        people
                            .iter()
                            .filter(|p| pairs(&r, &p.iter().map(project).collect::<Vec<_>>()))
                            .count() as u64
                    })
                    .collect();
                assert_eq!(
                    population_counts_of(&persons, known, &population),
                    expected,
                    "seed {seed}, knowing {known:?}"
                );
                let unmatched_rows = released
                    .iter()
                    .flatten()
                    .filter(|r| {
                        let r = [project(r)];
                        !people.iter().flatten().any(|q| pairs(&r, &[project(q)]))
                    })
                    .count();
                let known: Vec<String> = known.iter().map(|c| c.to_string()).collect();
                let e = persons_at_risk_in_population(&persons, &known, 3, &population).unwrap();
                assert_eq!(e.rows_unmatched, unmatched_rows, "seed {seed}");
                assert_eq!(
                    e.persons_unmatched,
                    expected.iter().filter(|&&n| n == 0).count()
                );
                assert_eq!(e.smallest_population_count, expected.iter().copied().min());
            }
        }
    }

    #[test]
    fn the_population_is_read_from_the_linked_folder_and_labelled_at_the_released_levels() {
        let (dir, _) = release_of_rows("age", &[&[(2024, Some("20-29"))]]);
        let report = serde_json::json!({"person": {"quasi_identifiers": [
            {"column": "age", "level": 2, "hierarchy": {"kind": "bands", "widths": [5, 10]}},
            {"column": "organisation_size", "level": 0,
             "hierarchy": {"kind": "classes", "levels": [[0, 50, 100], [0, 100]]}},
            {"column": "fwg_function_code", "level": 1,
             "hierarchy": {"kind": "fwg_level_band", "level_column": "fwg_level", "width": 10}},
            {"column": "left_employer", "level": 0, "hierarchy": {"kind": "categorical"}},
            {"column": "workload", "level": 1, "hierarchy": {"kind": "steps", "widths": [0.5]}},
            {"column": "org_id", "level": 0, "hierarchy": {"kind": "categorical"}},
        ]}});
        std::fs::write(dir.path().join(DISCLOSURE_JSON), report.to_string()).unwrap();
        let release = Release::open(dir.path()).unwrap();
        assert_eq!(release.released_variables().unwrap().len(), 6);

        let linked = tempfile::tempdir().unwrap();
        let org = |v: &[&str]| text(v);
        // Stage-2 pseudonyms: 32 bytes.
        let (p1, p2) = (Some(vec![1u8; 32]), Some(vec![2u8; 32]));
        // Three workforce rows: person 1 in 2023, person 2 in 2024, and a
        // row without a pseudonym...
        write_parquet(
            &linked.path().join(WORKFORCE_MODEL_FILE),
            &batch(&[
                Column::Bytes(PERSON_P2, None, vec![p1.clone(), p2.clone(), None]),
                Column::Int(YEAR, None, vec![Some(2023), Some(2024), Some(2024)]),
                Column::Text("org_p2", None, org(&["A", "A", ""])),
                Column::Int("age", None, vec![Some(27), Some(31), Some(64)]),
                Column::Text("fwg_function_code", None, org(&["F1", "F1", "F2"])),
                Column::Int("fwg_level", None, vec![Some(35), Some(35), None]),
                Column::Bool("left_employer", None, vec![Some(true), None, Some(false)]),
            ]),
        );
        // ...and the person model: one respondent on the payroll (in the
        // workforce already), one off it: person 1, off the payroll in 2024.
        write_parquet(
            &linked.path().join(PERSON_MODEL_FILE),
            &batch(&[
                Column::Bytes(PERSON_P2, None, vec![p2, p1]),
                Column::Int(YEAR, None, vec![Some(2024), Some(2024)]),
                Column::Bool("on_payroll", None, vec![Some(true), Some(false)]),
                Column::Text("org_p2", None, org(&["A", ""])),
                Column::Int("age", None, vec![Some(31), None]),
                Column::Text("fwg_function_code", None, org(&["F1", ""])),
                Column::Int("fwg_level", None, vec![Some(35), None]),
                Column::Bool("left_employer", None, vec![None, None]),
                Column::Float("workload", None, vec![Some(2.5), Some(3.0)]),
            ]),
        );
        write_parquet(
            &linked.path().join(ORGANISATION_MODEL_FILE),
            &batch(&[
                Column::Text("org_p2", None, org(&["A", "A"])),
                Column::Int(YEAR, None, vec![Some(2023), Some(2024)]),
                Column::Int("headcount", None, vec![Some(40), Some(120)]),
            ]),
        );
        let population = Population::from_linked(linked.path(), &release).unwrap();
        assert_eq!(population.rows, 4);
        let column = |name: &str| -> Vec<Option<&str>> {
            population.columns[name]
                .iter()
                .map(|l| l.as_deref())
                .collect()
        };
        assert_eq!(
            column(YEAR),
            [Some("2023"), Some("2024"), Some("2024"), Some("2024")]
        );
        assert_eq!(
            column("age"),
            [Some("20-29"), Some("30-39"), Some("60-69"), None]
        );
        assert_eq!(
            column("organisation_size"),
            [Some("0-49"), Some("100+"), None, None]
        );
        assert_eq!(
            column("fwg_function_code"),
            [Some("FWG 30-39"), Some("FWG 30-39"), None, None]
        );
        assert_eq!(
            column("left_employer"),
            [Some("true"), None, Some("false"), None]
        );
        assert_eq!(
            population.missing.keys().collect::<Vec<_>>(),
            ["org_id", "workload"]
        );

        // The off-payroll row joins person 1's workforce row; the row
        // without a pseudonym is a person of its own.
        let units = &population.units;
        assert_eq!(population.person_count(), 3);
        assert_eq!(units[0], units[3]);
        assert_eq!(
            BTreeSet::from([units[0], units[1], units[2]]).len(),
            3,
            "{units:?}"
        );
        // So a released person with a row on and a row off the payroll
        // finds its own population person (a released null matches its
        // unknown age); one whose 2024 age is not person 1's finds none,
        // though each of its rows matches a population row.
        let (_dir, two_years) = release_of_rows(
            "age",
            &[
                &[(2023, Some("20-29")), (2024, None)],
                &[(2023, Some("20-29")), (2024, Some("30-39"))],
            ],
        );
        let attack = two_years
            .attack(attacker("pfzw"), 10, Some(&population))
            .unwrap();
        assert_eq!(attack.counted, Counted::Population);
        let e = attack.exposure;
        assert_eq!((e.persons, e.at_risk, e.below_k_in_population), (2, 2, 2));
        assert_eq!(e.smallest_population_count, Some(0));
        assert_eq!((e.persons_unmatched, e.rows_unmatched), (1, 0));
        // A linked folder without pseudonyms has no persons: an error
        // naming the column, not a population of rows.
        write_parquet(
            &linked.path().join(PERSON_MODEL_FILE),
            &batch(&[
                Column::Int(YEAR, None, vec![Some(2024)]),
                Column::Bool("on_payroll", None, vec![Some(false)]),
            ]),
        );
        let error = Population::from_linked(linked.path(), &release).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("person_model.parquet: no column person_p2"),
            "{error}"
        );
    }

    #[test]
    fn absence_by_temporary_share_reads_bands_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ORGANISATION_FILE);
        let organisations = batch(&[
            Column::Text(
                "temporary_share",
                None,
                text(&["0.0-0.1", "0.0-0.1", "0.1-0.2", "0.1-0.2", "0.2+", ""]),
            ),
            Column::Float(
                "absence_pct",
                None,
                vec![
                    Some(5.0),
                    Some(6.0),
                    Some(7.0),
                    Some(7.0),
                    Some(9.0),
                    Some(8.0),
                ],
            ),
        ]);
        write_parquet(&path, &organisations);
        let organisations = read_parquet(&path).unwrap();
        let trend = absence_by_temporary_share(Some(&organisations)).unwrap();
        assert_eq!(trend.pairs, 5);
        assert!(trend.correlation.unwrap() > 0.9);
        assert!(trend.slope.unwrap() > 0.0);
        let means: Vec<(usize, f64)> = trend
            .groups
            .iter()
            .map(|g| (g.organisation_years, g.mean_absence_pct))
            .collect();
        assert_eq!(means, [(2, 5.5), (2, 7.0), (1, 9.0)]);
    }
}
