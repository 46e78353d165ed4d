//! Calendar parts of a date as plain integer arithmetic, for the payroll's
//! per-row month quantities.
//!
//! Why not DataFusion's own: `period + INTERVAL '1 month'` and
//! `date_part` go through chrono's date types per value (building a date,
//! adding months, taking it apart), about 5% of linking's samples on the
//! payroll alone. The conversion is `koppel_contract::civil` (Howard
//! Hinnant's `civil_from_days`/`days_from_civil`): a few integer operations
//! per value, exact for every Date32.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Array};
use arrow::datatypes::{DataType, Date32Type, Field, FieldRef};
use datafusion::common::exec_err;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use koppel_contract::civil::{civil_from_days, days_from_civil};

/// What a calendar function takes from a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarPart {
    /// `calendar_year(date)`: the year.
    Year,
    /// `calendar_month(date)`: the month, 1–12.
    Month,
    /// `month_start(date)`: the day number of the first day of its month.
    MonthStart,
    /// `next_month_start(date)`: the day number of the first day of the
    /// following month.
    NextMonthStart,
}

impl CalendarPart {
    pub const ALL: [CalendarPart; 4] = [
        CalendarPart::Year,
        CalendarPart::Month,
        CalendarPart::MonthStart,
        CalendarPart::NextMonthStart,
    ];

    fn name(self) -> &'static str {
        match self {
            CalendarPart::Year => "calendar_year",
            CalendarPart::Month => "calendar_month",
            CalendarPart::MonthStart => "month_start",
            CalendarPart::NextMonthStart => "next_month_start",
        }
    }

    /// The part of one date. Day numbers of month starts stay within i32
    /// for every Date32 but the first and last month of its range, which
    /// saturate.
    fn of(self, days: i32) -> i32 {
        let (year, month, day) = civil_from_days(days);
        let start = match self {
            CalendarPart::Year => return year,
            CalendarPart::Month => return month as i32,
            CalendarPart::MonthStart => i64::from(days) - i64::from(day) + 1,
            CalendarPart::NextMonthStart if month == 12 => days_from_civil(year + 1, 1, 1),
            CalendarPart::NextMonthStart => days_from_civil(year, month + 1, 1),
        };
        start.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::from(CalendarUdf {
            part: self,
            signature: Signature::exact(vec![DataType::Date32], Volatility::Immutable),
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CalendarUdf {
    part: CalendarPart,
    signature: Signature,
}

impl ScalarUDFImpl for CalendarUdf {
    fn name(&self) -> &str {
        self.part.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> datafusion::common::Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Int32, nullable)))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else {
            return exec_err!("{} takes one date", self.name());
        };
        let array = argument.to_array(args.number_rows)?;
        let Some(dates) = array.as_primitive_opt::<Date32Type>() else {
            return exec_err!("{} takes a date, not {}", self.name(), array.data_type());
        };
        // A payroll holds a handful of distinct months, so most values
        // repeat one seen a few rows before: a small direct-mapped memo of
        // (day, part) answers them without the conversion.
        let part = self.part;
        let mut memo = [(i32::MIN, part.of(i32::MIN)); 64];
        let parts: Vec<i32> = dates
            .values()
            .iter()
            .map(|&days| {
                let slot = &mut memo[(days & 63) as usize];
                if slot.0 != days {
                    *slot = (days, part.of(days));
                }
                slot.1
            })
            .collect();
        let parts = Int32Array::new(parts.into(), dates.nulls().cloned());
        Ok(ColumnarValue::Array(Arc::new(parts)))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, RecordBatch};
    use arrow::datatypes::Int32Type;
    use chrono::{Datelike, Months, NaiveDate};
    use datafusion::prelude::SessionContext;

    use super::*;

    fn epoch() -> NaiveDate {
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
    }

    /// Every day from 1600 to 2400 (leap centuries both ways) agrees with
    /// chrono, as do the month starts DataFusion's interval arithmetic
    /// gave.
    #[test]
    fn parts_agree_with_chrono_over_eight_centuries() {
        let first = (NaiveDate::from_ymd_opt(1600, 1, 1).unwrap() - epoch()).num_days() as i32;
        let last = (NaiveDate::from_ymd_opt(2400, 12, 31).unwrap() - epoch()).num_days() as i32;
        for days in first..=last {
            let date = epoch() + chrono::TimeDelta::days(days.into());
            assert_eq!(
                civil_from_days(days),
                (date.year(), date.month(), date.day())
            );
            assert_eq!(
                days_from_civil(date.year(), date.month(), date.day()),
                i64::from(days)
            );
            let start = date.with_day(1).unwrap();
            let next = start.checked_add_months(Months::new(1)).unwrap();
            assert_eq!(
                CalendarPart::MonthStart.of(days),
                (start - epoch()).num_days() as i32
            );
            assert_eq!(
                CalendarPart::NextMonthStart.of(days),
                (next - epoch()).num_days() as i32
            );
            assert_eq!(CalendarPart::Year.of(days), date.year());
            assert_eq!(CalendarPart::Month.of(days), date.month() as i32);
        }
    }

    #[test]
    fn the_ends_of_date32_do_not_overflow() {
        for days in [i32::MIN, i32::MIN + 1, -1, 0, i32::MAX - 40, i32::MAX] {
            for part in CalendarPart::ALL {
                part.of(days);
            }
        }
    }

    #[tokio::test]
    async fn the_sql_functions_take_date_columns_and_keep_nulls() {
        let ctx = SessionContext::new();
        for part in CalendarPart::ALL {
            ctx.register_udf(part.udf());
        }
        let day = |y, m, d| (NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch()).num_days() as i32;
        let batch = RecordBatch::try_from_iter([(
            "d",
            Arc::new(Date32Array::from(vec![
                Some(day(2024, 12, 1)),
                Some(day(2024, 2, 15)),
                None,
            ])) as _,
        )])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let out = ctx
            .sql(
                "SELECT calendar_year(d), calendar_month(d), month_start(d), next_month_start(d),
                    arrow_cast(d + INTERVAL '1 month', 'Int32') FROM t",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = |i: usize| out[0].column(i).as_primitive::<Int32Type>().clone();
        assert_eq!(
            column(0),
            Int32Array::from(vec![Some(2024), Some(2024), None])
        );
        assert_eq!(column(1), Int32Array::from(vec![Some(12), Some(2), None]));
        assert_eq!(
            column(2),
            Int32Array::from(vec![Some(day(2024, 12, 1)), Some(day(2024, 2, 1)), None])
        );
        assert_eq!(
            column(3),
            Int32Array::from(vec![Some(day(2025, 1, 1)), Some(day(2024, 3, 1)), None])
        );
        // On the first of a month (every payroll period), the next month's
        // start is what DataFusion's interval arithmetic gave.
        assert_eq!(column(3).value(0), column(4).value(0));
    }
}
