//! Attacker models from provenance: which released variables each possible
//! recipient already knows of the persons in it, derived from each
//! variable's source as the codebook states it.
//!
//! - The pension fund (PFZW) delivered the payroll: every payroll column,
//!   and the FWG characteristics, which follow from the function code on
//!   its payroll through FWG's public table. It does not know who answered
//!   the staff survey, so its classes are counted in the workforce
//!   (k-map).
//! - The absence service (Vernet) knows the absence columns, and — since its
//!   reports carry the employer's KvK number — the employer's sector and
//!   size; it does not know who responded either (k-map).
//! - The health insurer (IZZ) knows its insured list and claims, and runs
//!   the staff survey: it knows the answers and who responded, so its
//!   classes are counted among the released persons themselves.
//! - FWG delivers a table of functions, not persons: nothing to attack
//!   with (it is declared, reported and costs nothing).
//! - An employer knows what the payroll says of its own staff and, where
//!   `org_id` is released, which rows are its staff (k-map: it does not
//!   know who responded). It also receives its staff's sick reports; that
//!   is not modelled yet (docs/disclosure-control.md, "Known limits").
//! - An outsider knows a person's age, sex, region and sector (k-map).
//!
//! Every recipient knows the year.

use koppel_disclosure::Reference;

use crate::codebook::{FWG, IZZ_CARE, PAYROLL, SURVEY, VERNET, source_of};
use crate::config::Recipient;

/// What an outsider is assumed to know: what neighbours and acquaintances
/// know of a care worker.
pub const OUTSIDER_KNOWS: [&str; 4] = ["age", "sex", "postcode4", "sector"];

/// Whether `recipient` knows `column` of every person it could look for.
pub fn knows(recipient: Recipient, column: &str) -> bool {
    if column == "year" {
        return true;
    }
    let source = source_of(column);
    match recipient {
        Recipient::Pfzw => source == PAYROLL || source == FWG,
        Recipient::Employer => source == PAYROLL || source == FWG || column == "org_id",
        // Its reports carry the employer's KvK number: the employer's
        // sector and size are public.
        Recipient::Vernet => source == VERNET || matches!(column, "sector" | "organisation_size"),
        Recipient::Izz => source == IZZ_CARE || source == SURVEY,
        Recipient::Fwg => false,
        Recipient::Outsider => OUTSIDER_KNOWS.contains(&column),
    }
}

/// Whom a recipient's classes are counted in: the released persons when it
/// knows who is in the data, else the workforce.
pub fn reference(recipient: Recipient) -> Reference {
    match recipient {
        Recipient::Izz => Reference::Sample,
        _ => Reference::Population,
    }
}

/// Why, in one line, for the disclosure report.
pub fn assumption(recipient: Recipient) -> &'static str {
    match recipient {
        Recipient::Pfzw => {
            "delivered the payroll (and so the FWG characteristics of each function code); does not know who answered the survey"
        }
        Recipient::Vernet => {
            "delivered the absence episodes, which name the employer (so its sector and size); does not know who answered the survey"
        }
        Recipient::Izz => {
            "delivered the insured list and claims and runs the staff survey: knows the answers and who responded"
        }
        Recipient::Fwg => "delivered a table of functions, no persons",
        Recipient::Employer => {
            "knows its own staff's employment and, where org_id is released, which rows are its staff; does not know who answered the survey (its staff's sick reports are not modelled yet)"
        }
        Recipient::Outsider => "knows a person's age, sex, region and sector",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partner_knows_the_columns_it_delivered() {
        assert!(knows(Recipient::Pfzw, "hours_per_week"));
        assert!(
            knows(Recipient::Pfzw, "physical_load"),
            "follows from the code"
        );
        assert!(!knows(Recipient::Pfzw, "workload"));
        assert!(!knows(Recipient::Pfzw, "org_id"));
        assert!(knows(Recipient::Employer, "org_id"));
        assert!(knows(Recipient::Izz, "ggz_any") && knows(Recipient::Izz, "workload"));
        assert!(knows(Recipient::Izz, "izz_insured"));
        assert!(!knows(Recipient::Izz, "age"));
        assert!(knows(Recipient::Vernet, "absence_days") && !knows(Recipient::Vernet, "sex"));
        assert!(
            knows(Recipient::Vernet, "sector") && knows(Recipient::Vernet, "organisation_size")
        );
        // Not yet: docs/disclosure-control.md, "Known limits".
        assert!(!knows(Recipient::Employer, "absence_days"));
        assert!(!knows(Recipient::Fwg, "fwg_function_code"));
        assert!(
            knows(Recipient::Outsider, "postcode4") && !knows(Recipient::Outsider, "contract_type")
        );
        for r in Recipient::ALL {
            assert!(knows(r, "year"));
        }
        assert_eq!(reference(Recipient::Izz), Reference::Sample);
        assert_eq!(reference(Recipient::Pfzw), Reference::Population);
    }
}
