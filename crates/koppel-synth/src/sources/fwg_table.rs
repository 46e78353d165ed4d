//! The FWG reference table: one row per function code, no personal data.

use super::{Target, Written};
use crate::SynthError;
use crate::defects::{DefectKind, Plan};
use crate::fmt::{push_padded, push_text, push_uint};
use crate::fwg::FwgFunction;
use crate::sink::CsvSink;
use rand::Rng;

pub(crate) const HEADER: [&str; 8] = [
    "FUNCTIECODE",
    "FUNCTIENAAM",
    "FWG_NIVEAU",
    "FYSIEKE_BELASTING",
    "PSYCHISCHE_BELASTING",
    "RISICO_LETSEL",
    "BEZWARENDE_OMSTANDIGHEDEN",
    "ONREGELMATIG",
];
const DELIMITER: u8 = b';';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// A later row repeating an earlier row's code: an old title kept next to
    /// the new one. The later line is the one to reject.
    DuplicateCode,
}

impl DefectKind for Defect {
    fn rule(self) -> &'static str {
        "duplicate"
    }

    fn column(self) -> &'static str {
        "fwg_function_code"
    }
}

pub(crate) const PLAN: [(Defect, u32); 1] = [(Defect::DuplicateCode, 1)];

fn write_row(buf: &mut Vec<u8>, function: &FwgFunction, title_suffix: &str) {
    push_padded(buf, u64::from(function.code), 4);
    buf.push(DELIMITER);
    if title_suffix.is_empty() {
        push_text(buf, function.title, DELIMITER);
    } else {
        push_text(buf, &format!("{}{title_suffix}", function.title), DELIMITER);
    }
    for value in [
        function.level,
        function.physical_load,
        function.mental_load,
        function.injury_risk,
        function.adverse_conditions,
    ] {
        buf.push(DELIMITER);
        push_uint(buf, u64::from(value));
    }
    buf.push(DELIMITER);
    buf.push(if function.irregular_hours { b'J' } else { b'N' });
}

pub(crate) fn write(target: Target<'_>) -> Result<Written, SynthError> {
    let table = &target.model.fwg;
    let mut defect_rng = target.defect_rng();
    // The duplicate must follow the row it repeats, so never before row 1.
    let mut plan = if target.plant_defects {
        Plan::spread(&PLAN, table.len() as u64, 1, &mut defect_rng)
    } else {
        Plan::none()
    };
    let mut sink = CsvSink::create(&target.path, DELIMITER, &HEADER)?;
    for (good, function) in table.iter().enumerate() {
        while plan.due(good as u64).is_some() {
            let original = &table[defect_rng.random_range(0..good)];
            write_row(sink.line(), original, " (oud)");
            sink.end_row()?;
        }
        write_row(sink.line(), function, "");
        sink.end_row()?;
    }
    let rows = sink.finish()?;
    Ok(target.finish(rows, &plan))
}
