//! The codebook: every variable of every released file, with its label in
//! Dutch and English, type, categories, source, derivation, the
//! generalisation applied and how many values were suppressed.

use std::collections::HashMap;
use std::fmt::Write;

use arrow::array::RecordBatch;
use serde::Serialize;

/// What the codebook knows of a variable before any release: labels,
/// source and derivation. Generated columns (`*_status`, table columns)
/// are described where they are made.
struct Describe {
    name: &'static str,
    nl: &'static str,
    en: &'static str,
    source: &'static str,
    derivation: &'static str,
}

const fn d(
    name: &'static str,
    nl: &'static str,
    en: &'static str,
    source: &'static str,
    derivation: &'static str,
) -> Describe {
    Describe {
        name,
        nl,
        en,
        source,
        derivation,
    }
}

/// The sources a variable comes from, as the codebook names them; the
/// disclosure control's attacker models are derived from them
/// (`provenance.rs`).
pub const PAYROLL: &str = "PFZW payroll";
pub const VERNET: &str = "Vernet absence";
pub const IZZ_CARE: &str = "IZZ insured list and claims";
pub const SURVEY: &str = "IZZ staff survey";
pub const FWG: &str = "FWG job characteristics";
pub const INTRAKOOP: &str = "Intrakoop annual reports";
pub const KOPPEL: &str = "Koppel";

const VARIABLES: &[Describe] = &[
    d(
        "person_id",
        "Onderzoeks-ID persoon",
        "Research ID of the person",
        KOPPEL,
        "Keyed hash of the stage-2 pseudonym with a key derived from the release key and this release's name: differs between releases (unless the pipeline asks for stable panel IDs, which the disclosure report states); with yearly IDs it differs per year as well",
    ),
    d(
        "org_id",
        "Onderzoeks-ID organisatie",
        "Research ID of the organisation",
        KOPPEL,
        "Keyed hash of the employer's stage-2 pseudonym with this release's key; null when the organisation is not in the organisation file",
    ),
    d(
        "year",
        "Jaar",
        "Year",
        "IZZ staff survey / PFZW payroll",
        "Survey year (person file) or payroll year (organisation file)",
    ),
    d(
        "organisation_size",
        "Grootteklasse werkgever",
        "Size class of the main employer",
        PAYROLL,
        "Headcount of the main employer in the year, in classes",
    ),
    d(
        "on_payroll",
        "Op de loonlijst",
        "On the payroll",
        PAYROLL,
        "At least one payroll month in the sector in the year",
    ),
    d(
        "sector",
        "Branche",
        "Sector",
        PAYROLL,
        "Sector of the main employer",
    ),
    d(
        "age",
        "Leeftijd",
        "Age",
        PAYROLL,
        "Age on 1 January, from the date of birth",
    ),
    d(
        "sex",
        "Geslacht",
        "Sex",
        PAYROLL,
        "As on the latest payroll month at the main employer",
    ),
    d(
        "postcode4",
        "Postcode (regio)",
        "Postcode (region)",
        PAYROLL,
        "Postcode of the latest payroll month at the main employer",
    ),
    d(
        "contract_type",
        "Contractsoort",
        "Contract type",
        PAYROLL,
        "Contract of the latest month at the main employer",
    ),
    d(
        "hours_per_week",
        "Uren per week",
        "Hours per week",
        PAYROLL,
        "Contracted hours over concurrent employments, averaged over months employed",
    ),
    d(
        "months_employed",
        "Maanden in dienst",
        "Months employed",
        PAYROLL,
        "Distinct months with payroll, any employer",
    ),
    d(
        "irregularity_share",
        "Aandeel ORT",
        "Irregularity allowance share",
        PAYROLL,
        "Irregularity allowance ÷ gross wage over the year",
    ),
    d(
        "fwg_function_code",
        "FWG-functie",
        "FWG function",
        PAYROLL,
        "Function of the latest month at the main employer",
    ),
    d(
        "fwg_level",
        "FWG-niveau",
        "FWG level",
        FWG,
        "Level of the function",
    ),
    d(
        "physical_load",
        "Fysieke belasting",
        "Physical load",
        FWG,
        "1–5, of the function",
    ),
    d(
        "mental_load",
        "Psychische belasting",
        "Mental load",
        FWG,
        "1–5, of the function",
    ),
    d(
        "injury_risk",
        "Risico op letsel",
        "Injury risk",
        FWG,
        "1–5, of the function",
    ),
    d(
        "adverse_conditions",
        "Bezwarende omstandigheden",
        "Adverse conditions",
        FWG,
        "0–5, of the function",
    ),
    d(
        "irregular_hours",
        "Onregelmatige diensten",
        "Irregular hours",
        FWG,
        "Function works irregular hours",
    ),
    d(
        "absence_episodes",
        "Aantal verzuimmeldingen",
        "Absence episodes",
        VERNET,
        "Episodes that started in the year, any employer",
    ),
    d(
        "absence_days",
        "Verzuimdagen",
        "Absence days",
        VERNET,
        "Calendar days inside the year weighted by the absence percentage; open episodes run to the reference date",
    ),
    d(
        "longest_episode_days",
        "Langste verzuimduur",
        "Longest episode (days)",
        VERNET,
        "Longest duration of an episode overlapping the year",
    ),
    d(
        "long_term_absence",
        "Langdurig verzuim",
        "Long-term absence",
        VERNET,
        "Longest episode exceeds 42 days",
    ),
    d(
        "izz_insured",
        "Verzekerd bij IZZ",
        "Insured with IZZ",
        IZZ_CARE,
        "On the insured list or with claims that year",
    ),
    d(
        "left_employer",
        "Werkgever verlaten",
        "Left the employer",
        PAYROLL,
        "No payroll at the main employer the next year; null when the next year is not delivered",
    ),
    d(
        "left_sector",
        "Sector verlaten",
        "Left the sector",
        PAYROLL,
        "No payroll in the sector the next year; null when the next year is not delivered",
    ),
    d(
        "workload",
        "Werkdruk",
        "Workload",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "emotional_exhaustion",
        "Emotionele uitputting",
        "Emotional exhaustion",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "engagement",
        "Bevlogenheid",
        "Engagement",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "empowering_leadership",
        "Faciliterend leiderschap",
        "Empowering leadership",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "learning_climate",
        "Leerklimaat",
        "Learning climate",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "organisational_climate",
        "Organisatieklimaat",
        "Organisational climate",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "self_reported_absence",
        "Zelfgerapporteerd verzuim",
        "Self-reported absence",
        SURVEY,
        "As delivered",
    ),
    d(
        "work_related_absence",
        "Werkgerelateerd verzuim",
        "Work-related absence",
        SURVEY,
        "As delivered",
    ),
    d(
        "intention_to_leave",
        "Vertrekintentie",
        "Intention to leave",
        SURVEY,
        "Scale score as delivered",
    ),
    d(
        "headcount",
        "Personeelsomvang",
        "Headcount",
        PAYROLL,
        "Persons with at least one payroll month at the organisation in the year",
    ),
    d("fte", "Fte", "FTE", PAYROLL, "Hour-months ÷ 12 ÷ 36"),
    d(
        "mean_age",
        "Gemiddelde leeftijd",
        "Mean age",
        PAYROLL,
        "Mean age on 1 January",
    ),
    d(
        "temporary_share",
        "Aandeel tijdelijk",
        "Temporary contract share",
        PAYROLL,
        "Share of persons whose latest contract is temporary",
    ),
    d(
        "on_call_share",
        "Aandeel oproep",
        "On-call contract share",
        PAYROLL,
        "Share of persons whose latest contract is on call",
    ),
    d(
        "mean_irregularity_share",
        "Gemiddeld aandeel ORT",
        "Mean irregularity allowance share",
        PAYROLL,
        "Mean over persons with wage > 0",
    ),
    d(
        "n_irregularity_share",
        "N (aandeel ORT)",
        "N (irregularity share)",
        PAYROLL,
        "Persons the mean rests on",
    ),
    d(
        "inflow_rate",
        "Instroom",
        "Inflow rate",
        PAYROLL,
        "Persons whose employment started in the year ÷ headcount",
    ),
    d(
        "outflow_rate",
        "Uitstroom",
        "Outflow rate",
        PAYROLL,
        "Persons whose employment ended in the year ÷ headcount",
    ),
    d(
        "absence_pct",
        "Verzuimpercentage",
        "Absence percentage",
        VERNET,
        "Weighted absence days ÷ available days × 100",
    ),
    d(
        "available_days",
        "Beschikbare dagen",
        "Available days",
        PAYROLL,
        "Calendar days of employment in the year",
    ),
    d(
        "episode_frequency",
        "Meldingsfrequentie",
        "Episode frequency",
        VERNET,
        "Episodes started in the year ÷ headcount",
    ),
    d(
        "izz_coverage",
        "IZZ-dekking",
        "IZZ coverage",
        IZZ_CARE,
        "Share of staff insured with IZZ",
    ),
    d(
        "n_izz_insured",
        "N verzekerd bij IZZ",
        "N insured with IZZ",
        IZZ_CARE,
        "Staff insured with IZZ",
    ),
    d(
        "ggz_share_insured",
        "Aandeel GGZ-gebruik",
        "Share using GGZ care",
        IZZ_CARE,
        "Among insured staff, share with GGZ claims",
    ),
    d(
        "physio_share_insured",
        "Aandeel fysiotherapie",
        "Share using physiotherapy",
        IZZ_CARE,
        "Among insured staff, share with physiotherapy claims",
    ),
    d(
        "mean_physical_load",
        "Gemiddelde fysieke belasting",
        "Mean physical load",
        FWG,
        "Over staff with a known function",
    ),
    d(
        "mean_mental_load",
        "Gemiddelde psychische belasting",
        "Mean mental load",
        FWG,
        "Over staff with a known function",
    ),
    d(
        "mean_injury_risk",
        "Gemiddeld risico op letsel",
        "Mean injury risk",
        FWG,
        "Over staff with a known function",
    ),
    d(
        "adverse_conditions_share",
        "Aandeel bezwarende omstandigheden",
        "Share with adverse conditions",
        FWG,
        "Over staff with a known function",
    ),
    d(
        "n_fwg",
        "N met FWG-functie",
        "N with known function",
        FWG,
        "Staff with a known FWG function",
    ),
    d(
        "annual_report",
        "Jaarverslag aanwezig",
        "Annual report present",
        INTRAKOOP,
        "The organisation has a report for the year",
    ),
    d(
        "revenue_keur",
        "Omzet (k€)",
        "Revenue (k€)",
        INTRAKOOP,
        "Of the report with the higher revenue",
    ),
    d(
        "personnel_cost_keur",
        "Personeelskosten (k€)",
        "Personnel costs (k€)",
        INTRAKOOP,
        "As reported",
    ),
    d(
        "overhead_pct",
        "Overheadpercentage",
        "Overhead percentage",
        INTRAKOOP,
        "As reported",
    ),
    d(
        "annual_report_fte",
        "Fte (jaarverslag)",
        "FTE (annual report)",
        INTRAKOOP,
        "As reported",
    ),
    d(
        "result_keur",
        "Resultaat (k€)",
        "Result (k€)",
        INTRAKOOP,
        "As reported",
    ),
];

const CARE: &[(&str, &str, &str)] = &[
    ("ggz", "GGZ", "mental health care"),
    ("physio", "fysiotherapie", "physiotherapy"),
    ("gp", "huisarts", "general practice"),
    ("hospital", "ziekenhuis", "hospital care"),
    ("pharmacy", "farmacie", "pharmacy"),
];

/// The source of a variable as the codebook states it; empty when the
/// codebook does not know the variable.
pub fn source_of(name: &str) -> String {
    describe(name).2
}

fn describe(name: &str) -> (String, String, String, String) {
    if let Some(v) = VARIABLES.iter().find(|v| v.name == name) {
        return (
            v.nl.into(),
            v.en.into(),
            v.source.into(),
            v.derivation.into(),
        );
    }
    if let Some(base) = name.strip_suffix("_status") {
        return (
            format!("Status van {base}"),
            format!("Status of {base}"),
            "Koppel".into(),
            "safe, primary_threshold (rests on fewer than k persons: value suppressed) or empty (no value)".into(),
        );
    }
    for (code, nl, en) in CARE {
        if let Some(rest) = name.strip_prefix(code).and_then(|r| r.strip_prefix('_')) {
            let (nl_what, en_what, how) = match rest {
                "any" => ("gebruik", "any claim", "At least one claim in the year"),
                "claims" => (
                    "aantal declaraties",
                    "number of claims",
                    "Claims in the year",
                ),
                "cost_eur" => ("kosten (€)", "costs (€)", "Claimed costs in the year"),
                _ => continue,
            };
            return (
                format!("{nl}: {nl_what}"),
                format!("{en}: {en_what}"),
                IZZ_CARE.into(),
                format!("{how}; null when not insured with IZZ (unknown, not zero)"),
            );
        }
    }
    (String::new(), String::new(), String::new(), String::new())
}

/// One variable in the codebook.
#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    pub name: String,
    pub label_nl: String,
    pub label_en: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    pub source: String,
    pub derivation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generalisation: Option<String>,
    /// Values set to null by disclosure control.
    pub suppressed: u64,
    /// Values null in the file (suppressed or unknown).
    pub nulls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodebookFile {
    pub file: String,
    pub description: String,
    pub rows: u64,
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Codebook {
    pub release_id: String,
    pub files: Vec<CodebookFile>,
}

/// What disclosure control says about one column.
#[derive(Default)]
pub struct ColumnNotes {
    pub categories: Vec<String>,
    pub generalisation: Option<String>,
    pub suppressed: u64,
    pub derivation: Option<String>,
}

/// Describes a released file's columns.
pub fn describe_file(
    file: &str,
    description: &str,
    batch: &RecordBatch,
    notes: &mut HashMap<String, ColumnNotes>,
) -> CodebookFile {
    let variables = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            let (nl, en, source, derivation) = describe(field.name());
            let note = notes.remove(field.name().as_str()).unwrap_or_default();
            Variable {
                name: field.name().clone(),
                label_nl: nl,
                label_en: en,
                data_type: type_name(field.data_type()),
                nullable: field.is_nullable(),
                categories: note.categories,
                source,
                derivation: note.derivation.unwrap_or(derivation),
                generalisation: note.generalisation,
                suppressed: note.suppressed,
                nulls: array.null_count() as u64,
            }
        })
        .collect();
    CodebookFile {
        file: file.into(),
        description: description.into(),
        rows: batch.num_rows() as u64,
        variables,
    }
}

fn type_name(t: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType::*;
    match t {
        Utf8 | Utf8View | LargeUtf8 => "string",
        Int32 | Int64 => "integer",
        Float64 => "double",
        Boolean => "boolean",
        _ => return t.to_string(),
    }
    .into()
}

impl Codebook {
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Codebook — release {}\n", self.release_id);
        let _ = writeln!(
            md,
            "Every variable of every file in this release. *Suppressed* counts values set to null by disclosure control; *nulls* counts all empty values (suppressed or unknown). See `disclosure-report.md` for the rules applied.\n"
        );
        for f in &self.files {
            let _ = writeln!(
                md,
                "## `{}`\n\n{} ({} rows)\n",
                f.file, f.description, f.rows
            );
            let _ = writeln!(
                md,
                "| variable | label (nl) | label (en) | type | source | derivation | generalisation | suppressed | nulls |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
            for v in &f.variables {
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
                    v.name,
                    v.label_nl,
                    v.label_en,
                    v.data_type,
                    v.source,
                    v.derivation.replace('|', "/"),
                    v.generalisation.as_deref().unwrap_or(""),
                    v.suppressed,
                    v.nulls
                );
            }
            let with_categories: Vec<_> = f
                .variables
                .iter()
                .filter(|v| !v.categories.is_empty())
                .collect();
            if !with_categories.is_empty() {
                let _ = writeln!(md, "\nCategories:\n");
                for v in with_categories {
                    let _ = writeln!(md, "- `{}`: {}", v.name, v.categories.join(", "));
                }
            }
            md.push('\n');
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_column_has_labels_in_both_languages() {
        let person = [
            "ggz_any",
            "physio_claims",
            "pharmacy_cost_eur",
            "workload",
            "left_sector",
            "fte_status",
        ];
        for name in person {
            let (nl, en, source, derivation) = describe(name);
            assert!(
                !nl.is_empty() && !en.is_empty() && !source.is_empty() && !derivation.is_empty(),
                "{name}"
            );
        }
        assert!(describe("no_such_column").0.is_empty());
    }
}
