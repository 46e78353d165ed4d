use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use koppel_contract::IdentifierMode;
use koppel_export::DisclosureConfig;
use koppel_ingest::SpecSet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One linkage project, as the operator declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The project's name; recorded in every release.
    pub pipeline: String,
    /// Bumped whenever the file changes meaning; recorded in every release.
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The deliveries a period needs, by source name (as in the source
    /// specs).
    pub sources: BTreeMap<String, SourceEntry>,
    pub keys: KeyIds,
    /// The extracts' reference date (`YYYY-MM-DD`); default: 31 December
    /// of the latest payroll year. Read it with
    /// [`PipelineSpec::reference_date`].
    #[serde(default)]
    pub reference_date: Option<String>,
    /// Disclosure rules and tables; default: the safe defaults.
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    pub release: ReleaseSpec,
    #[serde(default)]
    pub retention: RetentionSpec,
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// The partner that delivers it (its transport key is bound to it).
    pub partner: String,
    /// How identifiers arrive: `p1` (stage-1 pseudonyms, the norm) or
    /// `raw` (only where the project's agreement allows it).
    pub identifiers: IdentifierMode,
    /// The periods a run expects, for example `["2023", "2024"]`.
    pub periods: Vec<String>,
}

/// Key ids per purpose; the key store holds the material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIds {
    pub stage2: String,
    pub release: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Directory under which each release gets its own folder.
    pub destination: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSpec {
    /// Days staged (stage-1 and stage-2) data are kept after a successful
    /// run.
    pub staged_days: u32,
}

impl Default for RetentionSpec {
    fn default() -> Self {
        RetentionSpec { staged_days: 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Five-field cron expression (minute hour day-of-month month
    /// day-of-week), in UTC.
    pub cron: String,
}

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error("{}: cannot read it", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl PipelineSpec {
    /// The reference date, checked when the file was read.
    pub fn reference_date(&self) -> Option<NaiveDate> {
        self.reference_date
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    }

    /// Checks that the key store holds the pipeline's keys with the right
    /// purposes, and returns their active versions (labels only).
    pub fn check_keys(
        &self,
        store: &koppel_pseudonymise::KeyStore,
    ) -> Result<Vec<koppel_pseudonymise::KeyInfo>, PipelineError> {
        use koppel_pseudonymise::KeyPurpose;
        let mut found = Vec::new();
        for (field, id, purpose) in [
            ("keys.stage2", &self.keys.stage2, KeyPurpose::Stage2),
            ("keys.release", &self.keys.release, KeyPurpose::Release),
        ] {
            let invalid = |message: String| PipelineError::Invalid {
                file: store.path().display().to_string(),
                message: format!("{field}: {message}"),
            };
            let (info, key) = store.key(id, None).map_err(|e| invalid(e.to_string()))?;
            drop(key);
            if info.purpose != purpose {
                return Err(invalid(format!(
                    "{id} is a {} key, not a {purpose} key",
                    info.purpose
                )));
            }
            found.push(info);
        }
        Ok(found)
    }

    /// Every period any source expects, in order.
    pub fn periods(&self) -> Vec<String> {
        let mut periods: Vec<String> = self
            .sources
            .values()
            .flat_map(|s| s.periods.iter().cloned())
            .collect();
        periods.sort();
        periods.dedup();
        periods
    }

    /// What a run covers, as the ledger and folder names show it: the
    /// one period, or `first-last`.
    pub fn period_label(&self) -> String {
        let periods = self.periods();
        match (periods.first(), periods.last()) {
            (Some(first), Some(last)) if first != last => format!("{first}-{last}"),
            (Some(only), _) => only.clone(),
            _ => String::new(),
        }
    }

    /// The deliveries a run needs, as (source, period), in order.
    pub fn expected_deliveries(&self) -> Vec<(String, String)> {
        self.sources
            .iter()
            .flat_map(|(name, s)| s.periods.iter().map(move |p| (name.clone(), p.clone())))
            .collect()
    }

    /// Reads and checks a pipeline file against the source specs.
    pub fn from_file(path: &Path, specs: &SpecSet) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string(), specs)
    }

    /// Parses and checks pipeline YAML; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str, specs: &SpecSet) -> Result<Self, PipelineError> {
        let invalid = |message: String| PipelineError::Invalid {
            file: file.to_owned(),
            message,
        };
        let spec: PipelineSpec = serde_yaml::from_str(text).map_err(|e| {
            invalid(match e.location() {
                Some(at) => {
                    // The parser's message ends with the place again.
                    let message = e.to_string();
                    let message = message
                        .rsplit_once(" at line ")
                        .map_or(message.as_str(), |(m, _)| m);
                    format!("line {}, column {}: {message}", at.line(), at.column())
                }
                None => e.to_string(),
            })
        })?;
        spec.check(specs).map_err(invalid)?;
        Ok(spec)
    }

    /// What serde cannot say: every name resolves and every value makes
    /// sense together.
    fn check(&self, specs: &SpecSet) -> Result<(), String> {
        if self.pipeline.is_empty()
            || !self
                .pipeline
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("pipeline: a name of letters, digits, - and _ is expected".into());
        }
        if self.sources.is_empty() {
            return Err("sources: at least one source is expected".into());
        }
        for (name, source) in &self.sources {
            if specs.get(name).is_none() {
                return Err(format!(
                    "sources.{name}: no source spec of that name (known: {})",
                    specs.names().join(", ")
                ));
            }
            if source.periods.is_empty() {
                return Err(format!(
                    "sources.{name}.periods: at least one period is expected"
                ));
            }
            if let Some(bad) = source
                .periods
                .iter()
                .find(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(format!(
                    "sources.{name}.periods: {bad:?} is not a period (letters, digits and -, as in file names)"
                ));
            }
            if source.identifiers != IdentifierMode::PrePseudonymised {
                return Err(format!(
                    "sources.{name}.identifiers: only p1 is accepted: sealed deliveries carry stage-1 pseudonyms, never raw identifiers"
                ));
            }
            let spec_partner = &specs.get(name).expect("checked above").partner;
            if !spec_partner.eq_ignore_ascii_case(&source.partner) {
                return Err(format!(
                    "sources.{name}.partner: the source spec says {name} is delivered by {spec_partner}, not {}",
                    source.partner
                ));
            }
            if source.partner.is_empty() {
                return Err(format!(
                    "sources.{name}.partner: a partner name is expected"
                ));
            }
        }
        if let Some(d) = &self.reference_date {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                format!("reference_date: a date YYYY-MM-DD is expected, found {d:?}")
            })?;
        }
        if self.keys.stage2 == self.keys.release {
            return Err("keys: stage2 and release must be different keys".into());
        }
        self.disclosure
            .validate()
            .map_err(|e| format!("disclosure: {e}"))?;
        if let Some(schedule) = &self.schedule {
            parse_cron(&schedule.cron).map_err(|e| format!("schedule.cron: {e}"))?;
        }
        Ok(())
    }
}

/// Parses a five-field cron expression (minute hour day-of-month month
/// day-of-week, UTC), as croner reads POSIX/Vixie cron.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("{e} (five fields expected: minute hour day-of-month month day-of-week)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> SpecSet {
        SpecSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/sources"))
            .unwrap()
    }

    const MINIMAL: &str = "pipeline: preventieplan
version: '1'
sources:
  pfzw_dienstverbanden: {partner: pfzw, identifiers: p1, periods: ['2024']}
keys: {stage2: stage2-preventieplan, release: release-preventieplan}
release: {destination: releases}
schedule: {cron: '0 6 2 * *'}
";

    #[test]
    fn a_minimal_pipeline_takes_the_safe_defaults() {
        let p = PipelineSpec::from_yaml(MINIMAL, "p.yaml", &specs()).unwrap();
        assert_eq!(p.disclosure, DisclosureConfig::default());
        assert_eq!(p.retention.staged_days, 30);
        assert_eq!(
            p.sources["pfzw_dienstverbanden"].identifiers,
            IdentifierMode::PrePseudonymised
        );
    }

    #[test]
    fn the_project_pipeline_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/preventieplan.yaml");
        let p = PipelineSpec::from_file(&path, &specs()).unwrap();
        assert_eq!(p.pipeline, "preventieplan");
        assert_eq!(p.sources.len(), 7);
        assert_eq!(p.reference_date(), NaiveDate::from_ymd_opt(2024, 12, 31));
    }

    #[test]
    fn errors_name_the_file_line_and_column_and_what_was_expected() {
        let err =
            PipelineSpec::from_yaml(&MINIMAL.replace("periods:", "period:"), "p.yaml", &specs())
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("p.yaml: line 4, column"), "{err}");
        assert!(err.contains("unknown field `period`"), "{err}");
        let err = PipelineSpec::from_yaml(
            &MINIMAL.replace("pfzw_dienstverbanden:", "pfzw_salaris:"),
            "p.yaml",
            &specs(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("sources.pfzw_salaris: no source spec"),
            "{err}"
        );
        let err = PipelineSpec::from_yaml(
            &MINIMAL.replace("0 6 2 * *", "0 25 2 * *"),
            "p.yaml",
            &specs(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("schedule.cron:"), "{err}");
        let err = PipelineSpec::from_yaml(
            &MINIMAL.replace("release: release-", "release: stage2-"),
            "p.yaml",
            &specs(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("different keys"), "{err}");
    }

    #[test]
    fn cron_expressions() {
        for ok in [
            "* * * * *",
            "0 6 2 * *",
            "*/15 0-6,22 1-7 1,4,7,10 1-5",
            "0 0 * * 7",
        ] {
            parse_cron(ok).unwrap();
        }
        for bad in [
            "* * * *",
            "60 * * * *",
            "0 6 0 * *",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
    }
}
