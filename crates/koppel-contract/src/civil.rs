//! Civil-calendar day numbers (days since 1970-01-01, proleptic Gregorian)
//! as plain integer arithmetic: Howard Hinnant's `days_from_civil` and
//! `civil_from_days`.
//!
//! Why not a date library: the synthetic generator and linking's calendar
//! functions convert tens of millions of dates; these are a handful of
//! integer operations each, allocate nothing, and are exact over every
//! `i32` day number (Arrow's `Date32`).

/// `(year, month 1–12, day 1–31)` of a day number.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as u32, day as u32)
}

/// The day number of a calendar date (the inverse of [`civil_from_days`]);
/// `i64` because a year near `i32::MAX` lies beyond `i32` day numbers.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// [`days_from_civil`] for dates whose day number fits an `i32` (every
/// date within ±5.8 million years); panics outside that range.
pub fn day_number(year: i32, month: u32, day: u32) -> i32 {
    i32::try_from(days_from_civil(year, month, day)).expect("a date within the Date32 range")
}

/// Whether `year` is a leap year.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(day_number(2024, 2, 29), 19_782);
        assert!(is_leap_year(2000) && !is_leap_year(1900) && is_leap_year(2024));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
    }

    proptest! {
        #[test]
        fn day_numbers_round_trip(days in any::<i32>()) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m));
            prop_assert!(d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), i64::from(days));
        }

        #[test]
        fn consecutive_days_are_consecutive_dates(days in -1_000_000i32..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            let next = civil_from_days(days + 1);
            let expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            prop_assert_eq!(next, expected);
        }
    }
}
