//! Citizen service numbers (BSN) and Chamber of Commerce numbers (KvK).

use rand::Rng;
use std::collections::HashSet;

/// The 11-test weights 9, 8, …, 2, −1 over the nine digits.
fn eleven_test_sum(bsn: u32) -> i64 {
    let mut digits = [0i64; 9];
    let mut rest = bsn;
    for slot in digits.iter_mut().rev() {
        *slot = i64::from(rest % 10);
        rest /= 10;
    }
    let weighted: i64 = digits[..8]
        .iter()
        .zip((2..=9).rev())
        .map(|(d, w)| d * w)
        .sum();
    weighted - digits[8]
}

/// Whether a nine-digit number passes the contract's BSN rule.
pub(crate) fn bsn_is_valid(bsn: u32) -> bool {
    bsn != 0 && bsn < 1_000_000_000 && eleven_test_sum(bsn).rem_euclid(11) == 0
}

/// Whether a delivered BSN string is valid under the contract (strip spaces,
/// dots and dashes; left-pad to 9 digits; 11-test; not all zeros).
#[cfg(test)]
pub(crate) fn bsn_text_is_valid(text: &str) -> bool {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    digits.parse::<u32>().is_ok_and(bsn_is_valid)
}

/// Whether a delivered KvK string is valid (strip spaces; left-pad to 8
/// digits; not all zeros).
#[cfg(test)]
pub(crate) fn kvk_text_is_valid(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| *c != ' ').collect();
    !digits.is_empty()
        && digits.len() <= 8
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

/// Draws BSNs that pass the 11-test and were not drawn before.
pub(crate) struct BsnIssuer {
    issued: HashSet<u32>,
}

impl BsnIssuer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        BsnIssuer {
            issued: HashSet::with_capacity(capacity),
        }
    }

    pub(crate) fn issue<R: Rng>(&mut self, rng: &mut R) -> u32 {
        loop {
            // Real numbers mostly start with 1–6; a share below 100000000
            // (a leading zero once padded) keeps the left-padding rule honest.
            let body: u32 = rng.random_range(1_000_000..70_000_000);
            let check = eleven_test_sum(body * 10).rem_euclid(11);
            if check == 10 {
                continue;
            }
            let bsn = body * 10 + check as u32;
            if bsn_is_valid(bsn) && self.issued.insert(bsn) {
                return bsn;
            }
        }
    }
}

/// A BSN that fails the 11-test: one digit of a valid number changed. Any
/// single-digit change breaks the test, because 11 is prime and every weight
/// and every digit difference lies in 1..=9.
pub(crate) fn corrupt_bsn<R: Rng>(valid: u32, rng: &mut R) -> u32 {
    let position = rng.random_range(0..9u32);
    let scale = 10u32.pow(position);
    let digit = (valid / scale) % 10;
    let replacement = (digit + rng.random_range(1..10u32)) % 10;
    let corrupted = valid - digit * scale + replacement * scale;
    debug_assert!(!bsn_is_valid(corrupted));
    corrupted
}

/// Draws unique KvK numbers: eight digits, not all zero.
pub(crate) fn issue_kvks<R: Rng>(count: usize, rng: &mut R) -> Vec<u32> {
    let mut issued = HashSet::with_capacity(count);
    let mut kvks = Vec::with_capacity(count);
    while kvks.len() < count {
        let kvk: u32 = rng.random_range(1_000_000..100_000_000);
        if issued.insert(kvk) {
            kvks.push(kvk);
        }
    }
    kvks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn known_numbers() {
        assert!(bsn_is_valid(111_222_333));
        assert!(bsn_is_valid(123_456_782));
        assert!(!bsn_is_valid(123_456_789));
        assert!(!bsn_is_valid(0));
        assert!(bsn_text_is_valid("1112.22.333"));
        assert!(!bsn_text_is_valid("000000000"));
        assert!(kvk_text_is_valid("1234567"));
        assert!(!kvk_text_is_valid("123456789"));
        assert!(!kvk_text_is_valid("00000000"));
        assert!(!kvk_text_is_valid("KVK1234"));
    }

    #[test]
    fn issued_numbers_are_valid_and_unique() {
        let mut rng = stream(1, "test");
        let mut issuer = BsnIssuer::with_capacity(10_000);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let bsn = issuer.issue(&mut rng);
            assert!(bsn_is_valid(bsn));
            assert!(seen.insert(bsn));
            assert!(!bsn_is_valid(corrupt_bsn(bsn, &mut rng)));
        }
        let kvks = issue_kvks(5000, &mut rng);
        let unique: HashSet<_> = kvks.iter().collect();
        assert_eq!(unique.len(), kvks.len());
        assert!(kvks.iter().all(|k| (1..100_000_000).contains(k)));
    }
}
