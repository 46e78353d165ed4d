//! The eight care and welfare sectors (`BRANCHE`) and their profiles.
//!
//! The figures are the generator's calibration targets, taken from or
//! consistent with the partners' sector publications: workforce shares, the
//! share of flexible contracts (disability care about 5%), the absence level
//! (higher in nursing/home care and disability care, lower in hospitals and
//! mental health care) and typical organisation sizes.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sector {
    Vvt,
    Zkh,
    Ggz,
    Ghz,
    Jz,
    Sw,
    Ko,
    Ha,
}

pub(crate) struct SectorProfile {
    /// Share of the sector-wide workforce.
    pub workforce_share: f64,
    /// Mean head count of an organisation, relative between sectors.
    pub mean_org_size: f64,
    /// Spread (log-scale sigma) of organisation size within the sector.
    pub size_sigma: f64,
    /// Temporary plus on-call contracts as a share of contracts.
    pub flex_share: f64,
    /// Of the flexible contracts, the share that is on-call.
    pub oncall_fraction: f64,
    /// How much of the work is done at irregular hours (0–1).
    pub irregularity: f64,
    /// Target absence percentage before the sector-wide calibration.
    pub absence_pct: f64,
    /// Personnel costs as a share of revenue.
    pub personnel_share: f64,
    /// Mean contract hours per week.
    pub mean_hours: f64,
    /// Head count per location.
    pub staff_per_location: f64,
}

impl Sector {
    pub(crate) const ALL: [Sector; 8] = [
        Sector::Vvt,
        Sector::Zkh,
        Sector::Ggz,
        Sector::Ghz,
        Sector::Jz,
        Sector::Sw,
        Sector::Ko,
        Sector::Ha,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Sector::Vvt => "VVT",
            Sector::Zkh => "ZKH",
            Sector::Ggz => "GGZ",
            Sector::Ghz => "GHZ",
            Sector::Jz => "JZ",
            Sector::Sw => "SW",
            Sector::Ko => "KO",
            Sector::Ha => "HA",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn profile(self) -> SectorProfile {
        let p = |workforce_share,
                 mean_org_size,
                 size_sigma,
                 flex_share,
                 oncall_fraction,
                 irregularity,
                 absence_pct,
                 personnel_share,
                 mean_hours,
                 staff_per_location| SectorProfile {
            workforce_share,
            mean_org_size,
            size_sigma,
            flex_share,
            oncall_fraction,
            irregularity,
            absence_pct,
            personnel_share,
            mean_hours,
            staff_per_location,
        };
        match self {
            Sector::Vvt => p(0.35, 240.0, 1.1, 0.20, 0.45, 0.75, 8.3, 0.72, 24.0, 45.0),
            Sector::Zkh => p(0.22, 3000.0, 0.7, 0.14, 0.35, 0.70, 6.6, 0.58, 28.0, 900.0),
            Sector::Ggz => p(0.07, 120.0, 1.2, 0.15, 0.35, 0.45, 6.8, 0.72, 27.0, 35.0),
            Sector::Ghz => p(0.12, 250.0, 1.2, 0.05, 0.40, 0.75, 8.5, 0.74, 25.0, 30.0),
            Sector::Jz => p(0.05, 100.0, 1.1, 0.20, 0.30, 0.45, 7.0, 0.72, 28.0, 30.0),
            Sector::Sw => p(0.06, 130.0, 1.0, 0.18, 0.30, 0.20, 6.5, 0.70, 27.0, 25.0),
            Sector::Ko => p(0.08, 33.0, 1.1, 0.22, 0.30, 0.05, 6.3, 0.66, 25.0, 14.0),
            Sector::Ha => p(0.05, 13.0, 0.6, 0.15, 0.30, 0.05, 4.5, 0.45, 24.0, 15.0),
        }
    }
}
