//! The contract's sources and the name of a delivery file.
//!
//! A delivery is one file per source and period, named
//! `<source>_<period>.<csv|parquet>`; sealed for transport it gets
//! `.sealed` appended, and the stage-2 file made of it at the TTP is
//! `<source>_<period>.parquet`. Partners, the TTP's runner, stage 2 and
//! linking all read the name through [`DeliveryFileName`].

use std::fmt;
use std::path::Path;

use crate::files::SEALED_SUFFIX;

/// One of the contract's seven sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Payroll,
    Absence,
    Insured,
    CareUse,
    Survey,
    JobCharacteristics,
    AnnualReports,
}

impl Source {
    pub const ALL: [Source; 7] = [
        Source::Payroll,
        Source::Absence,
        Source::Insured,
        Source::CareUse,
        Source::Survey,
        Source::JobCharacteristics,
        Source::AnnualReports,
    ];

    /// The source name of the delivery contract (and of its source spec).
    pub const fn contract_name(self) -> &'static str {
        match self {
            Source::Payroll => "pfzw_dienstverbanden",
            Source::Absence => "vernet_verzuimmeldingen",
            Source::Insured => "izz_verzekerden",
            Source::CareUse => "izz_zorggebruik",
            Source::Survey => "izz_monitor",
            Source::JobCharacteristics => "fwg_functiekenmerken",
            Source::AnnualReports => "intrakoop_jaarverslagen",
        }
    }

    /// The partner that delivers the source.
    pub const fn partner(self) -> &'static str {
        match self {
            Source::Payroll => "PFZW",
            Source::Absence => "Vernet",
            Source::Insured | Source::CareUse | Source::Survey => "IZZ",
            Source::JobCharacteristics => "FWG",
            Source::AnnualReports => "Intrakoop",
        }
    }

    /// The file format the contract prescribes for the source.
    pub const fn format(self) -> DeliveryFormat {
        match self {
            Source::Survey => DeliveryFormat::Parquet,
            _ => DeliveryFormat::Csv,
        }
    }

    pub fn from_contract_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.contract_name() == name)
    }

    /// The contract's source names, for [`DeliveryFileName::parse`].
    pub fn contract_names() -> impl Iterator<Item = &'static str> + Clone {
        Source::ALL.into_iter().map(Source::contract_name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.contract_name())
    }
}

/// The two file formats a delivery can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryFormat {
    Csv,
    Parquet,
}

impl DeliveryFormat {
    pub fn extension(self) -> &'static str {
        match self {
            DeliveryFormat::Csv => "csv",
            DeliveryFormat::Parquet => "parquet",
        }
    }
}

/// A delivery file's name taken apart:
/// `<source>_<period>.<csv|parquet>[.sealed]`.
///
/// The source is the longest known source name the file name starts with,
/// followed by `_` (so `s_long_2024.csv` is source `s_long` where both `s`
/// and `s_long` exist); the period is what follows up to the extension:
/// letters, digits and `-`, not empty (`2024`, `202401`, `2024-q1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFileName {
    pub source: String,
    pub period: String,
    pub format: DeliveryFormat,
    /// Ends in `.sealed`.
    pub sealed: bool,
}

impl DeliveryFileName {
    /// Takes a file name (not a path) apart against the known source names;
    /// `None` when it does not follow the rule.
    pub fn parse<'a>(
        name: &str,
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Option<DeliveryFileName> {
        let (inner, sealed) = match name.strip_suffix(SEALED_SUFFIX) {
            Some(inner) => (inner, true),
            None => (name, false),
        };
        let (stem, extension) = inner.rsplit_once('.')?;
        let format = match extension {
            "csv" => DeliveryFormat::Csv,
            "parquet" => DeliveryFormat::Parquet,
            _ => return None,
        };
        let source = sources
            .into_iter()
            .filter(|s| {
                !s.is_empty()
                    && stem
                        .strip_prefix(s)
                        .is_some_and(|rest| rest.starts_with('_'))
            })
            .max_by_key(|s| s.len())?;
        let period = &stem[source.len() + 1..];
        let period_ok = !period.is_empty()
            && period
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        period_ok.then(|| DeliveryFileName {
            source: source.to_owned(),
            period: period.to_owned(),
            format,
            sealed,
        })
    }

    /// [`parse`](Self::parse) on the last component of a path.
    pub fn of_path<'a>(
        path: &Path,
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Option<DeliveryFileName> {
        DeliveryFileName::parse(path.file_name()?.to_str()?, sources)
    }

    /// [`parse`](Self::parse) against the contract's seven sources.
    pub fn parse_contract(name: &str) -> Option<(Source, DeliveryFileName)> {
        let parsed = DeliveryFileName::parse(name, Source::contract_names())?;
        Some((Source::from_contract_name(&parsed.source)?, parsed))
    }

    /// The name of the stage-2 file made of this delivery at the TTP.
    pub fn stage2_name(&self) -> String {
        stage2_file_name(&self.source, &self.period)
    }
}

/// The stage-2 file of a source's delivery for a period, as stage 2
/// writes it and linking finds it: `<source>_<period>.parquet`.
pub fn stage2_file_name(source: &str, period: &str) -> String {
    format!("{source}_{period}.parquet")
}

impl fmt::Display for DeliveryFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}.{}{}",
            self.source,
            self.period,
            self.format.extension(),
            if self.sealed { SEALED_SUFFIX } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_taken_apart() {
        let d = DeliveryFileName::parse(
            "pfzw_dienstverbanden_2024.csv.sealed",
            Source::contract_names(),
        )
        .unwrap();
        assert_eq!(d.source, "pfzw_dienstverbanden");
        assert_eq!(d.period, "2024");
        assert_eq!(d.format, DeliveryFormat::Csv);
        assert!(d.sealed);
        assert_eq!(d.to_string(), "pfzw_dienstverbanden_2024.csv.sealed");
        assert_eq!(d.stage2_name(), "pfzw_dienstverbanden_2024.parquet");
        let (source, d) = DeliveryFileName::parse_contract("izz_monitor_2023.parquet").unwrap();
        assert_eq!(source, Source::Survey);
        assert!(!d.sealed);
    }

    #[test]
    fn the_longest_source_wins() {
        let d = DeliveryFileName::parse("s_long_2024.csv", ["s", "s_long"]).unwrap();
        assert_eq!((d.source.as_str(), d.period.as_str()), ("s_long", "2024"));
        let d = DeliveryFileName::parse("s_2024.csv", ["s", "s_long"]).unwrap();
        assert_eq!(d.source, "s");
    }

    #[test]
    fn names_off_the_rule_are_refused() {
        for name in [
            "sx_2024.csv",
            "s_.csv",
            "s.csv",
            "s_2024",
            "s_2024.xlsx",
            "s_2024.csv.manifest.yaml",
            "s_20.24.csv",
            "s_2024_x.csv",
            "s-2024.csv",
            "_2024.csv",
        ] {
            assert_eq!(DeliveryFileName::parse(name, ["s"]), None, "{name}");
        }
        assert_eq!(DeliveryFileName::parse("_2024.csv", [""]), None);
        assert_eq!(DeliveryFileName::parse_contract("unknown_2024.csv"), None);
    }

    #[test]
    fn contract_names_and_partners() {
        assert_eq!(Source::ALL.len(), 7);
        for s in Source::ALL {
            assert_eq!(Source::from_contract_name(s.contract_name()), Some(s));
        }
        assert_eq!(Source::Survey.format(), DeliveryFormat::Parquet);
        assert_eq!(Source::CareUse.partner(), "IZZ");
    }

    proptest! {
        #[test]
        fn a_formatted_name_parses_back(
            source in prop::sample::select(Source::ALL.to_vec()),
            period in "[A-Za-z0-9-]{1,12}",
            parquet: bool,
            sealed: bool,
        ) {
            let name = DeliveryFileName {
                source: source.contract_name().to_owned(),
                period,
                format: if parquet { DeliveryFormat::Parquet } else { DeliveryFormat::Csv },
                sealed,
            };
            let text = name.to_string();
            prop_assert_eq!(DeliveryFileName::parse_contract(&text), Some((source, name)));
        }
    }
}
