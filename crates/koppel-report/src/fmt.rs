//! Escaping, number formatting and the orderings the page relies on.

use std::cmp::Ordering;

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values alike, so one function serves every place.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A count with thousands separators: `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A sum that stops at `u64::MAX` instead of overflowing: a report of
/// absurd counts should still render.
pub fn total(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0, u64::saturating_add)
}

/// `n / d` in percent, or `None` when there is no denominator: a share of
/// nothing is unknown, not zero, and must never become NaN on the page.
pub fn share(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64 * 100.0)
}

/// A percentage with one decimal. Values that would round to 0 or 100
/// without being so say so, since "0.0%" of suppressed cells reads as none.
pub fn pct(p: f64) -> String {
    if !p.is_finite() {
        return "–".into();
    }
    if p > 0.0 && p < 0.05 {
        "<0.1%".into()
    } else if (99.95..100.0).contains(&p) {
        ">99.9%".into()
    } else {
        format!("{p:.1}%")
    }
}

/// A share in percent, or a dash when it has no denominator.
pub fn pct_of(n: u64, d: u64) -> String {
    share(n, d).map_or_else(|| "–".into(), pct)
}

/// A plain decimal for settings such as the suppression cap (`5`, `2.5`).
pub fn decimal(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Orders age bands by their lower bound (`<25`, `25-34`, …, `55+`), since
/// a plain string sort puts `<25` last; bands without a number go last.
pub fn cmp_age_band(a: &str, b: &str) -> Ordering {
    fn key(s: &str) -> (u8, u64) {
        let t = s.trim();
        if t.starts_with('<') {
            return (0, 0);
        }
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<u64>() {
            Ok(n) => (1, n),
            Err(_) => (2, 0),
        }
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// An approximate rendered width in pixels of `s` at `font_px`, for sizing
/// the label areas of charts (plotters cannot measure without fonts).
pub fn text_width(s: &str, font_px: f64) -> u32 {
    (s.chars().count() as f64 * font_px * 0.58).ceil() as u32
}

/// An axis from 0 that holds `max` with four or five round steps.
pub fn nice_ticks(max: f64) -> (f64, Vec<f64>) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, vec![0.0, 1.0]);
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    let steps = (max / step).ceil().max(1.0) as usize;
    let ticks: Vec<f64> = (0..=steps).map(|i| i as f64 * step).collect();
    (steps as f64 * step, ticks)
}

/// An axis tick: counts with separators, fractions with one decimal.
pub fn tick(v: f64) -> String {
    if v.fract() == 0.0 && (0.0..1e15).contains(&v) {
        int(v as u64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_counts_and_shares() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(pct_of(1, 0), "–");
        assert_eq!(pct_of(1, 3), "33.3%");
        assert_eq!(pct_of(1, 10_000), "<0.1%");
        assert_eq!(pct_of(9_999, 10_000), ">99.9%");
        assert_eq!(pct_of(0, 10), "0.0%");
        assert_eq!(pct(f64::NAN), "–");
        assert_eq!(decimal(5.0), "5");
        assert_eq!(decimal(2.5), "2.5");
        assert_eq!(decimal(0.3571), "0.36");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">Verpleeg- & 'zorg'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Verpleeg- &amp; &#39;zorg&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn sorts_age_bands_by_lower_bound() {
        let mut bands = vec!["55+", "25-34", "<25", "45-54", "35-44", "unknown"];
        bands.sort_by(|a, b| cmp_age_band(a, b));
        assert_eq!(bands, ["<25", "25-34", "35-44", "45-54", "55+", "unknown"]);
    }

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(nice_ticks(0.0), (1.0, vec![0.0, 1.0]));
        assert_eq!(nice_ticks(3.0), (3.0, vec![0.0, 1.0, 2.0, 3.0]));
        let (max, ticks) = nice_ticks(328_933.0);
        assert!(max >= 328_933.0);
        assert_eq!(ticks, [0.0, 100_000.0, 200_000.0, 300_000.0, 400_000.0]);
        let (max, ticks) = nice_ticks(612.0);
        assert_eq!(max, 800.0);
        assert_eq!(ticks.len(), 5);
    }
}
