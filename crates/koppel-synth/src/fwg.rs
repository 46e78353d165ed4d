//! The FWG job classification: the reference table of function codes.
//!
//! FWG is the job-evaluation system of Dutch care. The table is fixed (it does
//! not depend on the seed): a reference table is the same for every delivery,
//! and a stable table lets tests and later stages name functions.

/// One function of the reference table.
pub(crate) struct FwgFunction {
    pub code: u16,
    pub title: &'static str,
    pub level: u8,
    pub physical_load: u8,
    pub mental_load: u8,
    pub injury_risk: u8,
    pub adverse_conditions: u8,
    pub irregular_hours: bool,
    /// Relative frequency of the function per sector, in `Sector::ALL` order
    /// (VVT, ZKH, GGZ, GHZ, JZ, SW, KO, HA).
    pub sector_weights: [f32; 8],
}

type Row = (&'static str, u8, u8, u8, u8, u8, bool, [f32; 8]);

/// Title, FWG level, physical load, mental load, injury risk, adverse
/// conditions, irregular hours, weight per sector.
#[rustfmt::skip]
const FUNCTIONS: &[Row] = &[
    ("Zorghulp", 15, 4, 2, 3, 3, true, [4.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ("Helpende Zorg en Welzijn", 25, 4, 2, 3, 3, true, [10.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]),
    ("Verzorgende IG", 35, 4, 3, 3, 4, true, [26.0, 1.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0]),
    ("Leerling-verpleegkundige (BBL)", 25, 4, 3, 3, 3, true, [3.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ("Verpleegkundige MBO", 40, 4, 3, 3, 3, true, [6.0, 8.0, 4.0, 3.0, 0.0, 0.0, 0.0, 0.0]),
    ("Verpleegkundige HBO", 50, 3, 4, 3, 3, true, [3.0, 14.0, 5.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ("Wijkverpleegkundige", 55, 3, 4, 2, 2, false, [6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Gespecialiseerd verpleegkundige", 60, 3, 5, 3, 3, true, [0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Verpleegkundig specialist", 70, 2, 5, 2, 2, false, [0.5, 1.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Operatieassistent", 55, 3, 4, 3, 2, true, [0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Anesthesiemedewerker", 55, 3, 4, 2, 2, true, [0.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Physician assistant", 65, 2, 4, 2, 1, true, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Radiodiagnostisch laborant", 45, 3, 3, 3, 2, true, [0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Analist klinische chemie", 45, 2, 2, 2, 2, true, [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Doktersassistent", 35, 2, 3, 1, 1, false, [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 38.0]),
    ("Praktijkondersteuner huisarts", 50, 1, 3, 1, 0, false, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0]),
    ("Praktijkmanager", 50, 1, 3, 1, 0, false, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0]),
    ("Apothekersassistent", 35, 2, 2, 1, 1, false, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]),
    ("Begeleider gehandicaptenzorg", 40, 3, 4, 3, 4, true, [0.0, 0.0, 0.0, 24.0, 0.0, 0.0, 0.0, 0.0]),
    ("Persoonlijk begeleider", 45, 3, 4, 3, 3, true, [0.0, 0.0, 2.0, 12.0, 0.0, 0.0, 0.0, 0.0]),
    ("Activiteitenbegeleider", 35, 3, 2, 2, 1, false, [3.0, 0.0, 1.0, 4.0, 0.0, 0.0, 0.0, 0.0]),
    ("Gedragsdeskundige", 60, 1, 4, 1, 0, false, [0.0, 0.0, 1.0, 2.0, 4.0, 0.0, 0.0, 0.0]),
    ("Sociotherapeut", 50, 2, 5, 3, 3, true, [0.0, 0.0, 9.0, 0.0, 2.0, 0.0, 0.0, 0.0]),
    ("Sociaal-psychiatrisch verpleegkundige", 55, 2, 5, 2, 2, false, [0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Verpleegkundige GGZ", 50, 3, 5, 3, 3, true, [0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("GZ-psycholoog", 65, 1, 5, 1, 1, false, [0.0, 0.0, 8.0, 0.0, 2.0, 0.0, 0.0, 0.0]),
    ("Ervaringsdeskundige", 40, 1, 4, 1, 1, false, [0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Jeugdhulpverlener", 50, 2, 5, 2, 2, false, [0.0, 0.0, 0.0, 0.0, 22.0, 0.0, 0.0, 0.0]),
    ("Groepsleider jeugdzorg", 45, 3, 5, 3, 4, true, [0.0, 0.0, 0.0, 0.0, 14.0, 0.0, 0.0, 0.0]),
    ("Jeugdbeschermer", 55, 1, 5, 2, 2, false, [0.0, 0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0]),
    ("Maatschappelijk werker", 50, 1, 4, 1, 1, false, [0.0, 0.5, 1.0, 0.0, 0.0, 18.0, 0.0, 0.0]),
    ("Sociaal werker", 45, 1, 4, 1, 1, false, [0.0, 0.0, 0.0, 0.0, 0.0, 26.0, 0.0, 0.0]),
    ("Jongerenwerker", 40, 2, 3, 2, 2, true, [0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0]),
    ("Pedagogisch medewerker", 30, 3, 3, 2, 2, false, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 52.0, 0.0]),
    ("Pedagogisch coach", 45, 2, 3, 1, 1, false, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 0.0]),
    ("Locatiemanager kinderopvang", 55, 1, 4, 1, 0, false, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0]),
    ("Fysiotherapeut", 50, 3, 2, 2, 1, false, [1.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]),
    ("Ergotherapeut", 50, 2, 2, 1, 1, false, [0.7, 0.5, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]),
    ("Diëtist", 50, 1, 2, 1, 0, false, [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Medisch secretaresse", 35, 1, 2, 1, 0, false, [0.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Administratief medewerker", 30, 1, 2, 1, 0, false, [2.0, 3.0, 2.0, 2.0, 3.0, 3.0, 2.0, 2.0]),
    ("Receptionist", 25, 1, 2, 1, 0, false, [0.8, 1.0, 0.8, 0.5, 0.5, 1.0, 0.5, 0.0]),
    ("Planner", 40, 1, 3, 1, 0, false, [1.5, 1.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ("Teamleider zorg", 55, 2, 4, 1, 1, false, [3.0, 2.0, 2.0, 3.0, 2.0, 1.0, 0.0, 0.0]),
    ("Manager zorg", 65, 1, 4, 1, 0, false, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
    ("Directeur bedrijfsvoering", 80, 1, 5, 1, 0, false, [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0]),
    ("HR-adviseur", 55, 1, 3, 1, 0, false, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0]),
    ("Controller", 60, 1, 3, 1, 0, false, [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.3, 0.0]),
    ("ICT-medewerker", 50, 1, 2, 1, 0, false, [0.8, 2.0, 0.8, 0.8, 0.5, 0.5, 0.3, 0.0]),
    ("Kwaliteitsfunctionaris", 55, 1, 3, 1, 0, false, [0.6, 0.8, 0.6, 0.6, 0.5, 0.3, 0.3, 0.0]),
    ("Medewerker facilitair", 20, 4, 1, 3, 2, true, [2.0, 2.0, 1.0, 1.5, 0.0, 0.0, 0.0, 0.0]),
    ("Huishoudelijk medewerker", 15, 5, 1, 3, 3, false, [7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Schoonmaakmedewerker", 10, 5, 1, 3, 3, false, [1.0, 1.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.0]),
    ("Keukenmedewerker", 20, 4, 1, 3, 3, true, [1.5, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    ("Gastvrouw/gastheer", 20, 2, 2, 1, 1, true, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("Beveiliger", 25, 2, 3, 3, 3, true, [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]),
];

/// The reference table, ordered by function code.
pub(crate) fn table() -> Vec<FwgFunction> {
    let mut functions: Vec<FwgFunction> = FUNCTIONS
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (title, level, physical, mental, injury, adverse, irregular, weights) = *row;
            FwgFunction {
                // 7919 is coprime with 10_000, so distinct rows get distinct
                // codes; codes below 1000 (written with a leading zero) are
                // deliberate: the code is four digits, not an integer.
                code: ((i as u32 * 7919 + 311) % 10_000) as u16,
                title,
                level,
                physical_load: physical,
                mental_load: mental,
                injury_risk: injury,
                adverse_conditions: adverse,
                irregular_hours: irregular,
                sector_weights: weights,
            }
        })
        .collect();
    functions.sort_by_key(|f| f.code);
    functions
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_valid_reference_data() {
        let table = table();
        assert!((40..=60).contains(&table.len()));
        let codes: HashSet<u16> = table.iter().map(|f| f.code).collect();
        assert_eq!(codes.len(), table.len());
        for f in &table {
            assert!(f.code < 10_000);
            assert!((10..=80).contains(&f.level));
            for load in [f.physical_load, f.mental_load, f.injury_risk] {
                assert!((1..=5).contains(&load));
            }
            assert!(f.adverse_conditions <= 5);
        }
        for sector in 0..8 {
            assert!(table.iter().any(|f| f.sector_weights[sector] > 0.0));
        }
    }
}
