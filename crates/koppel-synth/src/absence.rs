//! Sickness absence: episodes per employment, calibrated to the sector level.
//!
//! Each employment runs an alternating process: at work for an exponentially
//! distributed time, then sick for a duration drawn from a short (1–7 days),
//! medium (8–42 days) or long (more than 42 days, up to the two years after
//! which Dutch law ends sick pay) class. The rate of falling ill is a global
//! scale times the organisation's absence factor (sector level, flexible
//! share, irregular work, turnover), the person's frailty, and age and sex
//! effects; the share of long episodes rises with age.
//!
//! The global scale is solved for so that the expected absence percentage —
//! absence days weighted by the absence percentage over employed days — is
//! the sector's 7.5%. The process starts two years before the first
//! delivered year so that the first year begins in a steady state, with long
//! episodes already running.

use crate::calendar::{age_years, jan1};
use crate::model::{Episode, OPEN, Org, Person, Sex, Spell};
use crate::rng::stream;
use rand::Rng;
use rand::distr::Distribution;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal};

/// The sector-wide absence percentage the calibration aims at, as a fraction.
/// Slightly above 7.5% because employments that end cut episodes short,
/// which the steady-state formula does not see.
const TARGET_FRACTION: f64 = 0.0785;
/// Longer than the longest episode, so that every episode running on the
/// first 1 January has been drawn.
const WARM_UP_DAYS: i32 = 760;
/// Sick pay ends after two years; longer episodes do not occur.
const MAX_EPISODE_DAYS: f64 = 730.0;
const P_MEDIUM: f64 = 0.25;

pub(crate) struct Inputs<'a> {
    pub orgs: &'a [Org],
    pub persons: &'a [Person],
    pub spells: &'a [Spell],
    pub first_year: i32,
    pub reference_day: i32,
}

fn p_long(age: f64) -> f64 {
    0.08 + 0.002 * (age - 30.0).clamp(0.0, 35.0)
}

#[derive(Clone, Copy)]
enum Class {
    Short,
    Medium,
    Long,
}

fn draw_class(rng: &mut ChaCha8Rng, age: f64) -> Class {
    let u: f64 = rng.random();
    let long = p_long(age);
    if u < long {
        Class::Long
    } else if u < long + P_MEDIUM {
        Class::Medium
    } else {
        Class::Short
    }
}

fn draw_days(rng: &mut ChaCha8Rng, class: Class) -> i32 {
    match class {
        Class::Short => {
            let extra: f64 = Exp::new(1.0 / 3.0).expect("rate").sample(rng);
            (1.0 + extra.floor()).min(7.0) as i32
        }
        Class::Medium => {
            let extra: f64 = Exp::new(1.0 / 9.0).expect("rate").sample(rng);
            (8.0 + extra.floor()).min(42.0) as i32
        }
        Class::Long => {
            let extra: f64 = LogNormal::new(120f64.ln(), 0.9).expect("sigma").sample(rng);
            (43.0 + extra.floor()).min(MAX_EPISODE_DAYS) as i32
        }
    }
}

/// Mostly 100%; partial absence (therapeutic return to work) is common in
/// long episodes and rare in short ones.
fn draw_pct(rng: &mut ChaCha8Rng, class: Class) -> u8 {
    let u: f64 = rng.random();
    match class {
        Class::Short => {
            if u < 0.97 {
                100
            } else {
                50
            }
        }
        Class::Medium => {
            if u < 0.85 {
                100
            } else if u < 0.95 {
                50
            } else {
                75
            }
        }
        Class::Long => {
            if u < 0.55 {
                100
            } else if u < 0.80 {
                50
            } else if u < 0.88 {
                75
            } else if u < 0.94 {
                40
            } else {
                25
            }
        }
    }
}

/// Relative rate of falling ill for one employment.
fn rate_factor(inputs: &Inputs<'_>, spell: &Spell, on: i32) -> f64 {
    let person = &inputs.persons[spell.person as usize];
    let org = &inputs.orgs[spell.org as usize];
    let age = age_years(person.birth, on);
    let age_factor = if age < 25.0 {
        1.25
    } else if age < 35.0 {
        1.05
    } else {
        0.95
    };
    let sex_factor = match person.sex {
        Sex::V => 1.04,
        Sex::M => 0.82,
        Sex::X => 1.0,
    };
    org.absence_factor * f64::from(person.frailty) * age_factor * sex_factor
}

/// Mean duration and mean percentage-weighted duration per class, estimated
/// once from a fixed stream.
struct ClassMeans {
    days: [f64; 3],
    weighted_days: [f64; 3],
}

fn class_means(seed: u64) -> ClassMeans {
    let mut rng = stream(seed, "model/absence-calibration");
    let mut days = [0.0; 3];
    let mut weighted_days = [0.0; 3];
    const DRAWS: usize = 20_000;
    for (i, class) in [Class::Short, Class::Medium, Class::Long]
        .into_iter()
        .enumerate()
    {
        for _ in 0..DRAWS {
            let d = f64::from(draw_days(&mut rng, class));
            let pct = f64::from(draw_pct(&mut rng, class));
            days[i] += d;
            weighted_days[i] += d * pct / 100.0;
        }
        days[i] /= DRAWS as f64;
        weighted_days[i] /= DRAWS as f64;
    }
    ClassMeans {
        days,
        weighted_days,
    }
}

/// Solves for the global rate scale: in steady state an employment with rate
/// `r` per day at work is absent a fraction `r·E[d·pct] / (1 + r·E[d])` of
/// its days; the employed-days-weighted mean of that must hit the target.
fn calibrate(inputs: &Inputs<'_>, means: &ClassMeans) -> f64 {
    let from = jan1(inputs.first_year);
    let mut terms = Vec::with_capacity(inputs.spells.len());
    for spell in inputs.spells {
        let start = spell.start.max(from);
        let end = spell.end.min(inputs.reference_day);
        if end < start {
            continue;
        }
        let weight = f64::from(end - start + 1);
        let person = &inputs.persons[spell.person as usize];
        let long = p_long(age_years(person.birth, start));
        let p = [1.0 - long - P_MEDIUM, P_MEDIUM, long];
        let mean_days: f64 = (0..3).map(|i| p[i] * means.days[i]).sum();
        let mean_weighted: f64 = (0..3).map(|i| p[i] * means.weighted_days[i]).sum();
        terms.push((
            weight,
            rate_factor(inputs, spell, start),
            mean_days,
            mean_weighted,
        ));
    }
    let total_weight: f64 = terms.iter().map(|t| t.0).sum();
    if total_weight == 0.0 {
        return 0.0;
    }
    let fraction = |scale: f64| {
        terms
            .iter()
            .map(|&(w, factor, d, dw)| {
                let r = scale * factor;
                w * r * dw / (1.0 + r * d)
            })
            .sum::<f64>()
            / total_weight
    };
    let (mut low, mut high) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if fraction(mid) < TARGET_FRACTION {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low + high) / 2.0
}

/// All episodes that overlap the delivered years, grouped by employment.
pub(crate) fn simulate(inputs: &Inputs<'_>, seed: u64) -> Vec<Episode> {
    let means = class_means(seed);
    let scale = calibrate(inputs, &means);
    let mut rng = stream(seed, "model/absence");
    let first_day = jan1(inputs.first_year);
    let mut episodes = Vec::with_capacity(inputs.spells.len() * 2);
    for (index, spell) in inputs.spells.iter().enumerate() {
        let window_start = spell.start.max(first_day - WARM_UP_DAYS);
        let window_end = spell.end.min(inputs.reference_day);
        if window_end < first_day || scale == 0.0 {
            continue;
        }
        let rate = scale * rate_factor(inputs, spell, window_start);
        let at_work = Exp::new(rate).expect("positive rate");
        let birth = inputs.persons[spell.person as usize].birth;
        let mut day = window_start;
        loop {
            let gap: f64 = at_work.sample(&mut rng);
            if gap >= f64::from(window_end - day) + 1.0 {
                break;
            }
            // At least one day at work between episodes (and before the
            // first): a new case on the day of recovery would be the same case.
            day += (gap as i32).max(1);
            if day > window_end {
                break;
            }
            let class = draw_class(&mut rng, age_years(birth, day));
            let days = draw_days(&mut rng, class);
            let pct = draw_pct(&mut rng, class);
            // Leaving the employer closes the case on the last working day.
            let mut recovered_on = (day + days).min(spell.end);
            if recovered_on > inputs.reference_day {
                recovered_on = OPEN;
            }
            if day >= first_day || recovered_on > first_day {
                episodes.push(Episode {
                    spell: index as u32,
                    sick_from: day,
                    recovered_on,
                    pct,
                });
            }
            if recovered_on == OPEN {
                break;
            }
            day = recovered_on;
        }
    }
    episodes
}
