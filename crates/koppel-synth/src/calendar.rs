//! Day arithmetic on plain day numbers (days since 1970-01-01).
//!
//! The generator handles tens of millions of dates per payroll year, so dates
//! are `i32` day numbers with Howard Hinnant's civil-calendar conversions
//! (`koppel_contract::civil`) instead of a date library type; conversion is
//! a handful of integer operations and needs no allocation.

pub(crate) use koppel_contract::civil::civil_from_days;

/// Day number of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    koppel_contract::civil::day_number(year, month, day)
}

pub(crate) fn jan1(year: i32) -> i32 {
    days_from_civil(year, 1, 1)
}

pub(crate) fn dec31(year: i32) -> i32 {
    days_from_civil(year, 12, 31)
}

pub(crate) fn month_first(year: i32, month: u32) -> i32 {
    days_from_civil(year, month, 1)
}

pub(crate) fn month_last(year: i32, month: u32) -> i32 {
    if month == 12 {
        dec31(year)
    } else {
        days_from_civil(year, month + 1, 1) - 1
    }
}

pub(crate) fn days_in_year(year: i32) -> i32 {
    dec31(year) - jan1(year) + 1
}

/// Completed years of age on `on` for someone born on `birth`.
#[cfg(test)]
pub(crate) fn age_on(birth: i32, on: i32) -> i32 {
    let (by, bm, bd) = civil_from_days(birth);
    let (y, m, d) = civil_from_days(on);
    let mut age = y - by;
    if (m, d) < (bm, bd) {
        age -= 1;
    }
    age
}

/// Approximate age in years, for the model's smooth effects (no need for
/// birthday-exact arithmetic there).
pub(crate) fn age_years(birth: i32, on: i32) -> f64 {
    f64::from(on - birth) / 365.2425
}

/// The day someone born on `birth` turns `years` old; a 29 February birthday
/// falls on 1 March in common years, as Dutch law counts it.
pub(crate) fn birthday(birth: i32, years: i32) -> i32 {
    let (by, bm, bd) = civil_from_days(birth);
    let y = by + years;
    if bm == 2 && bd == 29 && days_in_year(y) == 365 {
        days_from_civil(y, 3, 1)
    } else {
        days_from_civil(y, bm, bd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_against_chrono() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        for days in (-40_000..80_000).step_by(7) {
            let date = epoch + chrono::Duration::days(i64::from(days));
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                (y, m, d),
                (
                    chrono::Datelike::year(&date),
                    chrono::Datelike::month(&date),
                    chrono::Datelike::day(&date)
                )
            );
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn ages_count_completed_years() {
        let birth = days_from_civil(2000, 6, 15);
        assert_eq!(age_on(birth, days_from_civil(2014, 6, 14)), 13);
        assert_eq!(age_on(birth, days_from_civil(2014, 6, 15)), 14);
        let leap = days_from_civil(2004, 2, 29);
        assert_eq!(birthday(leap, 14), days_from_civil(2018, 3, 1));
        assert_eq!(birthday(leap, 16), days_from_civil(2020, 2, 29));
    }
}
