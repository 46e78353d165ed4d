//! Day arithmetic on plain day numbers (days since 1970-01-01).
//!
//! The generator handles tens of millions of dates per payroll year, so dates
//! are `i32` day numbers with Howard Hinnant's civil-calendar conversions
//! instead of a date library type; conversion is a handful of integer
//! operations and needs no allocation.

/// Day number of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// Civil date `(year, month, day)` of a day number.
pub(crate) fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
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
