//! Planting of documented defects.
//!
//! A plan is a fixed list of defect kinds with counts per file. Each planted
//! row is a copy of the good row it is inserted before, with exactly one field
//! broken, so that it violates exactly one rule in one column. Positions are
//! drawn from the file's own defect stream; the good rows themselves are
//! identical with or without defects.

use crate::PlantedDefect;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A kind of defect a source can plant: the rule code it violates (shared
/// with the ingest crate) and the canonical column it sits in.
pub(crate) trait DefectKind: Copy {
    fn rule(self) -> &'static str;
    fn column(self) -> &'static str;
}

/// Planted defects in file order: `before_row` is the index of the good row
/// each defect row precedes.
pub(crate) struct Plan<K> {
    planted: Vec<(u64, K)>,
    next: usize,
}

impl<K: DefectKind> Plan<K> {
    /// No defects: what every file but the last year's gets.
    pub(crate) fn none() -> Self {
        Plan {
            planted: Vec::new(),
            next: 0,
        }
    }

    /// Spreads the kinds over the good rows `lowest..good_rows`. Without a
    /// good row to copy there is nothing to plant, and the summary will say
    /// so (it reports what was planted, not what was meant).
    pub(crate) fn spread(
        kinds: &[(K, u32)],
        good_rows: u64,
        lowest: u64,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let mut planted = Vec::new();
        if good_rows > lowest {
            for &(kind, count) in kinds {
                for _ in 0..count {
                    planted.push((rng.random_range(lowest..good_rows), kind));
                }
            }
        }
        // Stable: equal positions keep plan order.
        planted.sort_by_key(|p| p.0);
        Plan { planted, next: 0 }
    }

    /// The next defect to write before good row `row`, if any.
    pub(crate) fn due(&mut self, row: u64) -> Option<K> {
        let (position, kind) = *self.planted.get(self.next)?;
        if position == row {
            self.next += 1;
            Some(kind)
        } else {
            None
        }
    }

    /// One entry per (rule, column), ordered by rule and column.
    pub(crate) fn summary(&self, source: &str, file: &Path) -> Vec<PlantedDefect> {
        let mut kinds: Vec<K> = self.planted.iter().map(|p| p.1).collect();
        kinds.sort_by_key(|k| (k.rule(), k.column()));
        let mut summary: Vec<PlantedDefect> = Vec::new();
        for kind in kinds {
            match summary.last_mut() {
                Some(last) if last.rule == kind.rule() && last.column == kind.column() => {
                    last.count += 1;
                }
                _ => summary.push(PlantedDefect {
                    source: source.to_string(),
                    file: file.to_path_buf(),
                    rule: kind.rule().to_string(),
                    column: kind.column().to_string(),
                    count: 1,
                }),
            }
        }
        summary
    }
}
