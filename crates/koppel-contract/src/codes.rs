//! The contract's enumerations, in the order the contract lists them.
//!
//! The source specs (`pipelines/sources/*.yaml`) spell them for ingest and
//! linking codes them as integers; tests in both crates check their lists
//! against these, so the three cannot drift apart.

/// One enumeration of the contract: the canonical column it lives in and
/// its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Enumeration {
    /// The source (contract name) and canonical column.
    pub source: &'static str,
    pub column: &'static str,
    pub values: &'static [&'static str],
}

impl Enumeration {
    pub fn contains(&self, value: &str) -> bool {
        self.values.contains(&value)
    }
}

/// Sex (contract §1, `GESLACHT`).
pub const SEX: Enumeration = Enumeration {
    source: "pfzw_dienstverbanden",
    column: "sex",
    values: &["M", "V", "X"],
};

/// Contract type (contract §1, `CONTRACTSOORT`).
pub const CONTRACT_TYPE: Enumeration = Enumeration {
    source: "pfzw_dienstverbanden",
    column: "contract_type",
    values: &["VAST", "TIJDELIJK", "OPROEP"],
};

/// Sector codes (contract, "Sector codes", `BRANCHE`).
pub const SECTOR: Enumeration = Enumeration {
    source: "pfzw_dienstverbanden",
    column: "sector",
    values: &["VVT", "ZKH", "GGZ", "GHZ", "JZ", "SW", "KO", "HA"],
};

/// Every enumeration the later stages rely on.
pub const ALL: [Enumeration; 3] = [SEX, CONTRACT_TYPE, SECTOR];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_distinct() {
        for e in ALL {
            let mut v = e.values.to_vec();
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), e.values.len(), "{}", e.column);
        }
        assert!(SECTOR.contains("GGZ") && !SECTOR.contains("ggz"));
    }
}
