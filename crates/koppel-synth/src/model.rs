//! The population model: organisations, persons and their employment history.
//!
//! The model is simulated once, in full, before any file is written, and
//! independently of which files are asked for; every writer then reads from
//! it. That is what makes each file's content independent of `only`, and what
//! lets relationships that cross sources (care use → leaving, absence →
//! exhaustion in the survey, leaving → intention to leave) hold between
//! separately written files.
//!
//! Time runs in days. The workforce of the first year is drawn as it stands on
//! 1 January of that year (with employment that started years before); each
//! year then removes leavers, moves job changers to a new employer and adds
//! joiners. One more year is drawn beyond the last (exits only, never written)
//! so that the survey of the last year can still reflect who is about to
//! leave.

use crate::absence;
use crate::calendar::{
    age_years, birthday, civil_from_days, days_from_civil, dec31, jan1, month_last,
};
use crate::fmt::cents;
use crate::fwg::{self, FwgFunction};
use crate::ident::{BsnIssuer, issue_kvks};
use crate::rng::stream;
use crate::sector::Sector;
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal, Normal, StandardNormal};

/// End day of an employment that is still running on the reference date, and
/// exit day of someone who has not left (within the horizon plus one year).
pub(crate) const OPEN: i32 = i32::MAX;

/// Sector-wide yearly flows relative to the 1.5 million workforce.
const EXIT_RATE: f64 = 155_000.0 / 1_500_000.0;
const JOB_CHANGE_RATE: f64 = 145_000.0 / 1_500_000.0;
const INFLOW_RATE: f64 = 175_000.0 / 1_500_000.0;
/// Of the employer changes, the share that stays within the same sector
/// (75,000 of the 145,000).
const SAME_SECTOR_SHARE: f64 = 75.0 / 145.0;
/// Collective wage increase per year of the horizon.
const YEARLY_INDEXATION: f64 = 1.045;
/// Full-time (36 h) statutory minimum wage in the first year, euros a month.
const MINIMUM_WAGE: f64 = 2070.0;
/// Hours of a full-time week in the care collective agreements.
pub(crate) const FULL_TIME_HOURS: f64 = 36.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sex {
    V,
    M,
    X,
}

impl Sex {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Sex::V => "V",
            Sex::M => "M",
            Sex::X => "X",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contract {
    Vast,
    Tijdelijk,
    Oproep,
}

impl Contract {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Contract::Vast => "VAST",
            Contract::Tijdelijk => "TIJDELIJK",
            Contract::Oproep => "OPROEP",
        }
    }
}

/// Care use of one person in one year, as bit flags.
pub(crate) mod care {
    pub const GGZ: u8 = 1;
    pub const FYSIO: u8 = 2;
    pub const HUISARTS: u8 = 4;
    pub const MSZ: u8 = 8;
    pub const FARMACIE: u8 = 16;
    /// Ten or more mental-health claims in the year.
    pub const GGZ_HEAVY: u8 = 32;
    /// Ten or more physiotherapy claims in the year.
    pub const FYSIO_HEAVY: u8 = 64;

    /// The care types in the order the care-use file lists them.
    pub const TYPES: [(u8, &str); 5] = [
        (GGZ, "GGZ"),
        (FYSIO, "FYSIO"),
        (HUISARTS, "HUISARTS"),
        (MSZ, "MSZ"),
        (FARMACIE, "FARMACIE"),
    ];
}

pub(crate) struct Org {
    pub kvk: u32,
    pub sector: Sector,
    /// First two digits of the postcode area the organisation sits in.
    pub region: u8,
    /// Share of the workforce it employs at the start.
    pub weight: f64,
    pub flex_share: f64,
    pub oncall_fraction: f64,
    /// How much of its care runs at irregular hours (0–1); drives ORT.
    pub irregularity: f64,
    /// Multiplies both hiring and leaving: high-turnover employers.
    pub inflow_tendency: f64,
    /// Multiplier on the absence rate of its staff.
    pub absence_factor: f64,
    /// Organisation-level random effect on the survey's climate scales.
    pub climate: f64,
    pub locations: u32,
    pub overhead_pct: f64,
    pub personnel_share: f64,
    /// Hired staff (PNIL) on top of own payroll, as a share of it.
    pub external_share: f64,
}

pub(crate) struct Person {
    pub bsn: u32,
    pub birth: i32,
    pub sex: Sex,
    /// 0 when the payroll has no postcode for the person.
    pub postcode: u16,
    /// False for the ~2% whose payroll record lacks an FWG code.
    pub fwg_reported: bool,
    pub izz_member: bool,
    pub career_start_year: i32,
    /// Latent propensities with mean 1: general ill health, mental strain,
    /// physical strain. They drive absence and care use, and through care
    /// use, leaving.
    pub frailty: f32,
    pub mental: f32,
    pub physical: f32,
    /// Last working day before leaving the sector, or [`OPEN`].
    pub exit_day: i32,
}

pub(crate) struct Spell {
    pub person: u32,
    pub org: u32,
    pub start: i32,
    /// Last day of employment, or [`OPEN`] when running on the reference date.
    pub end: i32,
    pub contract: Contract,
    /// Index into the FWG table.
    pub fwg: u8,
    /// Contract hours per week in hundredths; for on-call work the typical
    /// monthly average.
    pub hours_centi: u16,
    /// Irregularity allowance as a share of the monthly wage.
    pub ort_share: f32,
}

impl Spell {
    pub(crate) fn overlaps(&self, from: i32, to: i32) -> bool {
        self.start <= to && self.end >= from
    }
}

/// A sickness-absence episode: absent from `sick_from` up to, not including,
/// `recovered_on` ([`OPEN`] when still absent on the reference date).
pub(crate) struct Episode {
    pub spell: u32,
    pub sick_from: i32,
    pub recovered_on: i32,
    pub pct: u8,
}

/// Compressed adjacency: the items of key `k` are
/// `items[offsets[k]..offsets[k + 1]]`.
pub(crate) struct Index {
    pub offsets: Vec<u32>,
    pub items: Vec<u32>,
}

impl Index {
    fn build(keys: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Index {
        let mut offsets = vec![0u32; keys + 1];
        for (key, _) in pairs.clone() {
            offsets[key as usize + 1] += 1;
        }
        for k in 0..keys {
            offsets[k + 1] += offsets[k];
        }
        let mut fill = offsets.clone();
        let mut items = vec![0u32; offsets[keys] as usize];
        for (key, item) in pairs {
            let slot = &mut fill[key as usize];
            items[*slot as usize] = item;
            *slot += 1;
        }
        Index { offsets, items }
    }

    pub(crate) fn get(&self, key: usize) -> &[u32] {
        &self.items[self.offsets[key] as usize..self.offsets[key + 1] as usize]
    }
}

pub(crate) struct ModelParams {
    pub persons: usize,
    pub orgs: usize,
    pub first_year: i32,
    pub last_year: i32,
    pub seed: u64,
}

pub(crate) struct Model {
    pub first_year: i32,
    pub last_year: i32,
    pub seed: u64,
    /// 31 December of the last year: the date every extract is taken on.
    pub reference_day: i32,
    pub fwg: Vec<FwgFunction>,
    pub orgs: Vec<Org>,
    pub persons: Vec<Person>,
    pub spells: Vec<Spell>,
    pub person_spells: Index,
    /// Grouped by spell, chronological within a spell.
    pub episodes: Vec<Episode>,
    /// Episodes of spell `s` are `episodes[spell_episodes[s]..spell_episodes[s + 1]]`.
    pub spell_episodes: Vec<u32>,
    /// Care-use flags per person and year (`person * years + year offset`).
    care: Vec<u8>,
    /// Wage indexation factor per year offset.
    indexation: Vec<f64>,
}

impl Model {
    pub(crate) fn build(params: &ModelParams) -> Model {
        let fwg = fwg::table();
        let orgs = build_orgs(params);
        let mut sim = Simulation::new(params, &fwg, &orgs);
        sim.initial_workforce();
        for year in params.first_year..=params.last_year {
            sim.simulate_year(year);
        }
        sim.draw_exits_after_horizon();
        let Simulation {
            persons,
            spells,
            care,
            ..
        } = sim;

        let person_spells = Index::build(
            persons.len(),
            spells.iter().enumerate().map(|(i, s)| (s.person, i as u32)),
        );
        let reference_day = dec31(params.last_year);
        let episodes = absence::simulate(
            &absence::Inputs {
                orgs: &orgs,
                persons: &persons,
                spells: &spells,
                first_year: params.first_year,
                reference_day,
            },
            params.seed,
        );
        let mut spell_episodes = vec![0u32; spells.len() + 1];
        for episode in &episodes {
            spell_episodes[episode.spell as usize + 1] += 1;
        }
        for s in 0..spells.len() {
            spell_episodes[s + 1] += spell_episodes[s];
        }
        let years = (params.last_year - params.first_year + 1) as usize;
        let mut indexation = Vec::with_capacity(years);
        let mut factor = 1.0;
        for _ in 0..years {
            indexation.push(factor);
            factor *= YEARLY_INDEXATION;
        }
        Model {
            first_year: params.first_year,
            last_year: params.last_year,
            seed: params.seed,
            reference_day,
            fwg,
            orgs,
            persons,
            spells,
            person_spells,
            episodes,
            spell_episodes,
            care,
            indexation,
        }
    }

    fn year_count(&self) -> usize {
        (self.last_year - self.first_year + 1) as usize
    }

    pub(crate) fn care(&self, person: usize, year: i32) -> u8 {
        self.care[person * self.year_count() + (year - self.first_year) as usize]
    }

    pub(crate) fn spell_episodes(&self, spell: usize) -> &[Episode] {
        &self.episodes[self.spell_episodes[spell] as usize..self.spell_episodes[spell + 1] as usize]
    }

    /// Full-time (36 h) gross monthly wage in euros: the FWG level sets the
    /// scale, experience climbs it, the yearly indexation lifts all of it.
    pub(crate) fn full_time_wage(&self, spell: &Spell, year: i32) -> f64 {
        let level = f64::from(self.fwg[spell.fwg as usize].level);
        let person = &self.persons[spell.person as usize];
        let experience = f64::from((year - person.career_start_year).clamp(0, 12));
        let scale = (1200.0 + 46.0 * level) * (1.0 + 0.025 * experience);
        scale.max(MINIMUM_WAGE) * self.indexation[(year - self.first_year) as usize]
    }

    /// Gross monthly wage in cents for the given weekly hours.
    pub(crate) fn monthly_wage_cents(&self, full_time_wage: f64, hours_centi: u32) -> i64 {
        cents(full_time_wage * f64::from(hours_centi) / (100.0 * FULL_TIME_HOURS))
    }

    /// Persons with employment on at least one day of `year`, by index.
    pub(crate) fn persons_employed_in(&self, year: i32) -> Vec<u32> {
        let (from, to) = (jan1(year), dec31(year));
        (0..self.persons.len() as u32)
            .filter(|&p| {
                self.person_spells
                    .get(p as usize)
                    .iter()
                    .any(|&s| self.spells[s as usize].overlaps(from, to))
            })
            .collect()
    }

    /// Absence days (calendar days, not weighted by percentage) of a person
    /// within the year, over all employers.
    pub(crate) fn absence_days(&self, person: usize, year: i32) -> i32 {
        let from = jan1(year);
        let to = dec31(year).min(self.reference_day) + 1;
        let mut days = 0;
        for &spell in self.person_spells.get(person) {
            for episode in self.spell_episodes(spell as usize) {
                let end = episode.recovered_on.min(self.reference_day + 1);
                days += (end.min(to) - episode.sick_from.max(from)).max(0);
            }
        }
        days
    }
}

fn lognormal_mean_one(sigma: f64) -> LogNormal<f64> {
    LogNormal::new(-sigma * sigma / 2.0, sigma).expect("finite sigma")
}

fn build_orgs(params: &ModelParams) -> Vec<Org> {
    let mut rng = stream(params.seed, "model/organisations");
    let n = params.orgs;
    // Organisation counts per sector follow workforce share over typical
    // size, so that many small general practices and few large hospitals
    // together carry the sectors' workforce shares.
    let raw: Vec<f64> = Sector::ALL
        .iter()
        .map(|s| s.profile().workforce_share / s.profile().mean_org_size)
        .collect();
    let total: f64 = raw.iter().sum();
    let mut counts: Vec<usize> = raw
        .iter()
        .map(|r| (r / total * n as f64).floor() as usize)
        .collect();
    let mut by_remainder: Vec<usize> = (0..raw.len()).collect();
    by_remainder.sort_by(|&a, &b| {
        let ra = raw[a] / total * n as f64 - counts[a] as f64;
        let rb = raw[b] / total * n as f64 - counts[b] as f64;
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let unassigned = n - counts.iter().sum::<usize>();
    for &i in by_remainder.iter().cycle().take(unassigned) {
        counts[i] += 1;
    }
    if n >= Sector::ALL.len() {
        // Every sector must be present; take the organisations from the
        // sector with the most of them.
        for i in 0..counts.len() {
            if counts[i] == 0 {
                let largest = (0..counts.len())
                    .max_by_key(|&j| (counts[j], usize::MAX - j))
                    .expect("eight sectors");
                counts[largest] -= 1;
                counts[i] = 1;
            }
        }
    }

    let mut orgs = Vec::with_capacity(n);
    for (sector, &count) in Sector::ALL.iter().zip(&counts) {
        let profile = sector.profile();
        let size_dist = lognormal_mean_one(profile.size_sigma);
        let sizes: Vec<f64> = (0..count).map(|_| size_dist.sample(&mut rng)).collect();
        let size_total: f64 = sizes.iter().sum();
        for size in sizes {
            let weight = profile.workforce_share * size / size_total;
            let flex_share =
                (profile.flex_share * lognormal_mean_one(0.45).sample(&mut rng)).clamp(0.005, 0.7);
            let oncall_fraction = (profile.oncall_fraction * rng.random_range(0.7..1.3)).min(0.9);
            let irregularity =
                (profile.irregularity * lognormal_mean_one(0.3).sample(&mut rng)).clamp(0.0, 1.0);
            let inflow_tendency = lognormal_mean_one(0.35).sample(&mut rng);
            // Within its sector, an organisation's absence rises with its
            // flexible share, its irregular work and its turnover (the
            // partners' early-warning findings); the sector sets the level.
            let absence_factor = profile.absence_pct / 7.5
                * (2.5 * (flex_share - profile.flex_share)
                    + 1.0 * (irregularity - profile.irregularity)
                    + 0.5 * inflow_tendency.ln())
                .exp()
                * lognormal_mean_one(0.10).sample(&mut rng);
            let climate: f64 = Normal::new(0.0, 0.3).expect("sd").sample(&mut rng);
            let head_count = weight * params.persons as f64;
            let locations = (head_count / profile.staff_per_location
                * lognormal_mean_one(0.4).sample(&mut rng))
            .round()
            .max(1.0) as u32;
            let overhead_pct = Normal::new(16.0f64, 4.0)
                .expect("sd")
                .sample(&mut rng)
                .clamp(6.0, 35.0);
            let personnel_share = (profile.personnel_share * rng.random_range(0.92..1.08)).min(0.9);
            let external_share = (0.05 * lognormal_mean_one(0.6).sample(&mut rng)).min(0.3);
            orgs.push(Org {
                kvk: 0,
                sector: *sector,
                region: rng.random_range(10..=99),
                weight,
                flex_share,
                oncall_fraction,
                irregularity,
                inflow_tendency,
                absence_factor,
                climate,
                locations,
                overhead_pct,
                personnel_share,
                external_share,
            });
        }
    }
    // The within-sector effects above must not move the sector's level:
    // rescale so that the workforce-weighted mean factor of each sector is
    // its profile's.
    for sector in Sector::ALL {
        let (weighted, weight) = orgs
            .iter()
            .filter(|o| o.sector == sector)
            .fold((0.0, 0.0), |(f, w), o| {
                (f + o.weight * o.absence_factor, w + o.weight)
            });
        if weight > 0.0 {
            let scale = sector.profile().absence_pct / 7.5 / (weighted / weight);
            for org in orgs.iter_mut().filter(|o| o.sector == sector) {
                org.absence_factor *= scale;
            }
        }
    }
    // Interleave sectors so that neither the org order nor the KvK order
    // gives the sector away.
    orgs.shuffle(&mut rng);
    let kvks = issue_kvks(orgs.len(), &mut rng);
    for (org, kvk) in orgs.iter_mut().zip(kvks) {
        org.kvk = kvk;
    }
    orgs
}

/// Age bands (from, to exclusive, weight) of the care workforce on 1 January:
/// few teenagers, a broad plateau and a large group over 55.
const WORKFORCE_AGES: [(f64, f64, f64); 11] = [
    (17.0, 20.0, 2.5),
    (20.0, 25.0, 9.0),
    (25.0, 30.0, 12.0),
    (30.0, 35.0, 11.0),
    (35.0, 40.0, 10.5),
    (40.0, 45.0, 10.0),
    (45.0, 50.0, 10.0),
    (50.0, 55.0, 11.0),
    (55.0, 60.0, 12.0),
    (60.0, 65.0, 10.0),
    (65.0, 66.9, 2.0),
];

/// Age bands of people joining the sector: mostly school leavers and young
/// adults, some returners.
const JOINER_AGES: [(f64, f64, f64); 7] = [
    (17.0, 20.0, 14.0),
    (20.0, 25.0, 26.0),
    (25.0, 30.0, 17.0),
    (30.0, 35.0, 10.0),
    (35.0, 45.0, 14.0),
    (45.0, 55.0, 12.0),
    (55.0, 63.0, 7.0),
];

/// Hiring by month: school leavers start in late summer.
const HIRING_MONTHS: [f64; 12] = [1.2, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.3, 1.6, 1.0, 0.8, 0.6];

fn age_bracket(age: f64) -> usize {
    if age < 21.0 {
        0
    } else if age < 30.0 {
        1
    } else {
        2
    }
}

struct Simulation<'a> {
    params: &'a ModelParams,
    fwg: &'a [FwgFunction],
    orgs: &'a [Org],
    rng: ChaCha8Rng,
    bsns: BsnIssuer,
    persons: Vec<Person>,
    spells: Vec<Spell>,
    /// The running spell of each person, or `u32::MAX`.
    current: Vec<u32>,
    care: Vec<u8>,
    year_count: usize,
    initial_org: WeightedIndex<f64>,
    hiring_org: WeightedIndex<f64>,
    /// Organisations of each sector with their hiring sampler.
    sector_orgs: Vec<Option<(Vec<u32>, WeightedIndex<f64>)>>,
    /// Function sampler per sector and age bracket.
    functions: Vec<[Option<WeightedIndex<f32>>; 3]>,
    workforce_ages: WeightedIndex<f64>,
    joiner_ages: WeightedIndex<f64>,
    hiring_months: WeightedIndex<f64>,
}

impl<'a> Simulation<'a> {
    fn new(params: &'a ModelParams, fwg: &'a [FwgFunction], orgs: &'a [Org]) -> Self {
        let initial_org = WeightedIndex::new(orgs.iter().map(|o| o.weight)).expect("org weights");
        let hiring = |o: &Org| o.weight * o.inflow_tendency;
        let hiring_org = WeightedIndex::new(orgs.iter().map(hiring)).expect("org weights");
        let sector_orgs = Sector::ALL
            .iter()
            .map(|sector| {
                let members: Vec<u32> = (0..orgs.len() as u32)
                    .filter(|&i| orgs[i as usize].sector == *sector)
                    .collect();
                if members.is_empty() {
                    return None;
                }
                let weights = members.iter().map(|&i| hiring(&orgs[i as usize]));
                Some((
                    members.clone(),
                    WeightedIndex::new(weights).expect("weights"),
                ))
            })
            .collect();
        let functions = Sector::ALL
            .iter()
            .map(|sector| {
                // Young staff mostly hold entry-level functions; management
                // and specialist functions come with age.
                let bracket = |b: usize| {
                    let weights = fwg.iter().map(|f| {
                        let w = f.sector_weights[sector.index()];
                        let adjust = match (b, f.level) {
                            (0, l) if l <= 35 => 2.5,
                            (0, l) if l >= 55 => 0.05,
                            (1, l) if l >= 65 => 0.3,
                            (2, l) if l >= 55 => 1.3,
                            _ => 1.0,
                        };
                        w * adjust
                    });
                    WeightedIndex::new(weights).ok()
                };
                [bracket(0), bracket(1), bracket(2)]
            })
            .collect();
        let band_weights = |bands: &[(f64, f64, f64)]| {
            WeightedIndex::new(bands.iter().map(|b| b.2)).expect("age weights")
        };
        let capacity = params.persons + params.persons / 4;
        Simulation {
            params,
            fwg,
            orgs,
            rng: stream(params.seed, "model/persons"),
            bsns: BsnIssuer::with_capacity(capacity),
            persons: Vec::with_capacity(capacity),
            spells: Vec::with_capacity(capacity),
            current: Vec::with_capacity(capacity),
            care: Vec::new(),
            year_count: (params.last_year - params.first_year + 1) as usize,
            initial_org,
            hiring_org,
            sector_orgs,
            functions,
            workforce_ages: band_weights(&WORKFORCE_AGES),
            joiner_ages: band_weights(&JOINER_AGES),
            hiring_months: WeightedIndex::new(HIRING_MONTHS).expect("month weights"),
        }
    }

    fn draw_age(&mut self, joiner: bool) -> f64 {
        let (bands, dist): (&[(f64, f64, f64)], _) = if joiner {
            (&JOINER_AGES, &self.joiner_ages)
        } else {
            (&WORKFORCE_AGES, &self.workforce_ages)
        };
        let (from, to, _) = bands[dist.sample(&mut self.rng)];
        self.rng.random_range(from..to)
    }

    fn draw_function(&mut self, sector: Sector, age: f64) -> u8 {
        let samplers = &self.functions[sector.index()];
        let sampler = samplers[age_bracket(age)]
            .as_ref()
            .or(samplers[1].as_ref())
            .expect("every sector has functions");
        sampler.sample(&mut self.rng) as u8
    }

    fn draw_contract(&mut self, org: &Org, age: f64, new_hire: bool) -> Contract {
        // Young people and new hires more often start on flexible terms.
        let age_factor = if age < 25.0 {
            1.9
        } else if age < 35.0 {
            1.15
        } else if age < 55.0 {
            0.8
        } else {
            0.75
        };
        let hire_factor = if new_hire { 1.3 } else { 1.0 };
        let p_flex = (org.flex_share * age_factor * hire_factor).min(0.95);
        if self.rng.random_bool(p_flex) {
            if self.rng.random_bool(org.oncall_fraction) {
                Contract::Oproep
            } else {
                Contract::Tijdelijk
            }
        } else {
            Contract::Vast
        }
    }

    fn draw_hours(&mut self, org: &Org, contract: Contract, sex: Sex) -> u16 {
        let rng = &mut self.rng;
        if contract == Contract::Oproep {
            let mean: f64 = 4.0 + Exp::new(1.0 / 8.0).expect("rate").sample(rng);
            return (mean.min(32.0) * 100.0).round() as u16;
        }
        let mean = org.sector.profile().mean_hours
            + if contract == Contract::Vast {
                2.0
            } else {
                -2.0
            }
            + if sex == Sex::M { 4.0 } else { 0.0 };
        let mut hours: f64 = Normal::new(mean, 6.5).expect("sd").sample(rng);
        hours = hours.clamp(4.0, 40.0);
        if rng.random_bool(0.015) {
            hours = rng.random_range(40.0..48.0);
        }
        // Contracts are whole hours or a part-time factor of a 36-hour week.
        let hours = if rng.random_bool(0.6) {
            hours.round()
        } else {
            (hours / FULL_TIME_HOURS * 100.0).round() / 100.0 * FULL_TIME_HOURS
        };
        (hours * 100.0).round() as u16
    }

    fn draw_ort_share(&mut self, org: &Org, function: u8) -> f32 {
        if self.fwg[function as usize].irregular_hours {
            (org.irregularity * 0.16 * self.rng.random_range(0.5..1.5)) as f32
        } else if self.rng.random_bool(0.08) {
            (0.02 * self.rng.random_range(0.2..1.0)) as f32
        } else {
            0.0
        }
    }

    fn draw_postcode(&mut self, org: &Org) -> u16 {
        if self.rng.random_bool(0.01) {
            return 0;
        }
        if self.rng.random_bool(0.85) {
            u16::from(org.region) * 100 + self.rng.random_range(0..100u16)
        } else {
            self.rng.random_range(1000..=9999u16)
        }
    }

    fn draw_sex(&mut self) -> Sex {
        let u: f64 = self.rng.random();
        if u < 0.84 {
            Sex::V
        } else if u < 0.997 {
            Sex::M
        } else {
            Sex::X
        }
    }

    /// A new person, with latent health traits and IZZ membership; IZZ
    /// under-represents 25–35 year olds.
    fn new_person(&mut self, birth: i32, org: &Org, career_start_year: i32, age: f64) -> Person {
        let bsn = self.bsns.issue(&mut self.rng);
        let sex = self.draw_sex();
        let postcode = self.draw_postcode(org);
        let fwg_reported = !self.rng.random_bool(0.02);
        let p_izz = if age < 25.0 {
            0.26
        } else if age < 36.0 {
            0.18
        } else {
            0.35
        };
        let izz_member = self.rng.random_bool(p_izz);
        let z_f: f64 = StandardNormal.sample(&mut self.rng);
        let z_m: f64 = StandardNormal.sample(&mut self.rng);
        let z_p: f64 = StandardNormal.sample(&mut self.rng);
        let frailty = (0.55 * z_f + 0.25 * z_m - (0.55f64.powi(2) + 0.25f64.powi(2)) / 2.0).exp();
        let mental = (0.75 * z_m - 0.75f64.powi(2) / 2.0).exp();
        let physical = (0.6 * z_p + 0.2 * z_f - (0.36 + 0.04) / 2.0).exp();
        Person {
            bsn,
            birth,
            sex,
            postcode,
            fwg_reported,
            izz_member,
            career_start_year,
            frailty: frailty as f32,
            mental: mental as f32,
            physical: physical as f32,
            exit_day: OPEN,
        }
    }

    fn push_person(&mut self, person: Person) -> u32 {
        let index = self.persons.len() as u32;
        self.persons.push(person);
        self.current.push(u32::MAX);
        self.care.resize(self.persons.len() * self.year_count, 0);
        index
    }

    fn push_spell(
        &mut self,
        person: u32,
        org_index: u32,
        start: i32,
        contract: Contract,
        function: u8,
        hours_centi: u16,
    ) -> u32 {
        let orgs = self.orgs;
        let ort_share = self.draw_ort_share(&orgs[org_index as usize], function);
        let index = self.spells.len() as u32;
        self.spells.push(Spell {
            person,
            org: org_index,
            start,
            end: OPEN,
            contract,
            fwg: function,
            hours_centi,
            ort_share,
        });
        self.current[person as usize] = index;
        index
    }

    fn initial_workforce(&mut self) {
        let day0 = jan1(self.params.first_year);
        let orgs = self.orgs;
        for _ in 0..self.params.persons {
            let org_index = self.initial_org.sample(&mut self.rng) as u32;
            let org = &orgs[org_index as usize];
            let age = self.draw_age(false);
            let birth = day0 - (age * 365.2425).round() as i32;
            let birth_year = civil_from_days(birth).0;
            let career_start_year =
                (birth_year + 18 + self.rng.random_range(0..5)).min(self.params.first_year);
            let person = self.new_person(birth, org, career_start_year, age);
            let sex = person.sex;
            let person_index = self.push_person(person);
            let function = self.draw_function(org.sector, age);
            let contract = self.draw_contract(org, age, false);
            let mean_tenure_years = match contract {
                Contract::Vast => 9.0,
                Contract::Tijdelijk => 1.2,
                Contract::Oproep => 2.5,
            };
            let tenure: f64 = Exp::new(1.0 / mean_tenure_years)
                .expect("rate")
                .sample(&mut self.rng);
            let earliest = birthday(birth, 17);
            let start = (day0 - 1 - (tenure * 365.2425) as i32)
                .max(earliest)
                .min(day0 - 1);
            let hours = self.draw_hours(org, contract, sex);
            self.push_spell(person_index, org_index, start, contract, function, hours);
        }
    }

    /// Care use in one year: mental-health care follows mental strain,
    /// physiotherapy physical strain and the function's physical load, GP,
    /// hospital and pharmacy care general ill health and age.
    fn draw_care(&mut self, person_index: u32, year: i32, function: u8) -> u8 {
        let person = &self.persons[person_index as usize];
        let age = age_years(person.birth, days_from_civil(year, 7, 1));
        let frailty = f64::from(person.frailty);
        let mental = f64::from(person.mental);
        let physical = f64::from(person.physical);
        let load = f64::from(self.fwg[function as usize].physical_load);
        let female = person.sex == Sex::V;
        let rng = &mut self.rng;
        let mut flags = 0u8;
        if rng.random_bool((0.08 * mental).min(0.8)) {
            flags |= care::GGZ;
            if rng.random_bool((0.3 * mental).min(0.9)) {
                flags |= care::GGZ_HEAVY;
            }
        }
        if rng.random_bool((0.20 * physical * (1.0 + 0.1 * (load - 3.0))).min(0.9)) {
            flags |= care::FYSIO;
            if rng.random_bool((0.25 * physical).min(0.9)) {
                flags |= care::FYSIO_HEAVY;
            }
        }
        let gp = 0.65 * frailty.powf(0.3) * if female { 1.1 } else { 0.85 };
        if rng.random_bool(gp.min(0.97)) {
            flags |= care::HUISARTS;
        }
        let hospital = 0.28 * frailty.sqrt() * (1.0 + 0.01 * (age - 40.0));
        if rng.random_bool(hospital.clamp(0.02, 0.9)) {
            flags |= care::MSZ;
        }
        let pharmacy = 0.55 * frailty.powf(0.4) * (1.0 + 0.008 * (age - 40.0));
        if rng.random_bool(pharmacy.clamp(0.05, 0.95)) {
            flags |= care::FARMACIE;
        }
        self.care
            [person_index as usize * self.year_count + (year - self.params.first_year) as usize] =
            flags;
        flags
    }

    /// Relative propensity to leave the sector: highest for 25–35 year olds
    /// and those near retirement, for heavy users of mental-health care and
    /// physiotherapy, for functions with adverse conditions, for flexible
    /// contracts and at high-turnover employers.
    fn exit_propensity(&self, spell: &Spell, age: f64, care_flags: u8) -> f64 {
        let age_factor = if age < 25.0 {
            1.3
        } else if age < 36.0 {
            1.55
        } else if age < 55.0 {
            0.7
        } else if age < 60.0 {
            0.8
        } else if age < 63.0 {
            1.6
        } else {
            3.2
        };
        let mut care_factor = 1.0;
        if care_flags & care::GGZ_HEAVY != 0 {
            care_factor *= 1.9;
        } else if care_flags & care::GGZ != 0 {
            care_factor *= 1.3;
        }
        if care_flags & care::FYSIO_HEAVY != 0 {
            care_factor *= 1.6;
        } else if care_flags & care::FYSIO != 0 {
            care_factor *= 1.15;
        }
        let adverse = f64::from(self.fwg[spell.fwg as usize].adverse_conditions);
        let contract_factor = match spell.contract {
            Contract::Vast => 1.0,
            Contract::Tijdelijk => 1.9,
            Contract::Oproep => 1.7,
        };
        let org = &self.orgs[spell.org as usize];
        age_factor
            * care_factor
            * (1.0 + 0.12 * adverse)
            * contract_factor
            * org.inflow_tendency.powf(0.8)
    }

    fn job_change_propensity(&self, spell: &Spell, age: f64) -> f64 {
        let age_factor = if age < 35.0 {
            1.4
        } else if age < 55.0 {
            0.9
        } else {
            0.4
        };
        let contract_factor = match spell.contract {
            Contract::Vast => 1.0,
            Contract::Tijdelijk => 1.6,
            Contract::Oproep => 1.4,
        };
        age_factor * contract_factor * self.orgs[spell.org as usize].inflow_tendency.sqrt()
    }

    /// Persons employed (or about to start after a job change) on 1 January.
    fn active_persons(&self) -> Vec<u32> {
        (0..self.persons.len() as u32)
            .filter(|&p| self.current[p as usize] != u32::MAX)
            .collect()
    }

    /// Draws who leaves the sector in `year` and on which day; forced exits at
    /// the state pension age (67) come first and count towards the target.
    fn draw_exits(
        &mut self,
        year: i32,
        active: &[u32],
        care_of: impl Fn(&Self, u32) -> u8,
    ) -> Vec<(u32, i32)> {
        let from = jan1(year);
        let to = dec31(year);
        let mut forced = Vec::new();
        let mut candidates = Vec::with_capacity(active.len());
        let mut propensity_total = 0.0;
        for &p in active {
            let person = &self.persons[p as usize];
            let spell = &self.spells[self.current[p as usize] as usize];
            let pension = birthday(person.birth, 67);
            if pension <= to {
                let (y, m, _) = civil_from_days(pension.max(from));
                let day = month_last(y, m).max(spell.start);
                forced.push((p, day));
                continue;
            }
            let age = age_years(person.birth, from);
            let propensity = self.exit_propensity(spell, age, care_of(self, p));
            propensity_total += propensity;
            candidates.push((p, propensity));
        }
        let wanted = EXIT_RATE * active.len() as f64 - forced.len() as f64;
        let base = if propensity_total > 0.0 {
            wanted.max(0.0) / propensity_total
        } else {
            0.0
        };
        let mut exits = forced;
        for (p, propensity) in candidates {
            if self.rng.random_bool((base * propensity).min(0.95)) {
                let start = self.spells[self.current[p as usize] as usize].start;
                let day = self.rng.random_range(from.max(start)..=to);
                exits.push((p, day));
            }
        }
        exits.sort_unstable();
        exits
    }

    fn simulate_year(&mut self, year: i32) {
        let from = jan1(year);
        let to = dec31(year);
        let reference_day = dec31(self.params.last_year);
        let orgs = self.orgs;
        let active = self.active_persons();
        for &p in &active {
            let function = self.spells[self.current[p as usize] as usize].fwg;
            self.draw_care(p, year, function);
        }
        let offset = (year - self.params.first_year) as usize;
        let year_count = self.year_count;
        let exits = self.draw_exits(year, &active, |sim, p| {
            sim.care[p as usize * year_count + offset]
        });
        let mut leaving = vec![false; self.persons.len()];
        for &(p, day) in &exits {
            let spell = self.current[p as usize] as usize;
            self.spells[spell].end = day;
            self.persons[p as usize].exit_day = day;
            self.current[p as usize] = u32::MAX;
            leaving[p as usize] = true;
        }

        // Employer changes among those who stay.
        let stayers: Vec<(u32, f64)> = active
            .iter()
            .filter(|&&p| !leaving[p as usize])
            .map(|&p| {
                let spell = &self.spells[self.current[p as usize] as usize];
                let age = age_years(self.persons[p as usize].birth, from);
                (p, self.job_change_propensity(spell, age))
            })
            .collect();
        let propensity_total: f64 = stayers.iter().map(|s| s.1).sum();
        let base = if propensity_total > 0.0 {
            JOB_CHANGE_RATE * active.len() as f64 / propensity_total
        } else {
            0.0
        };
        for (p, propensity) in stayers {
            if !self.rng.random_bool((base * propensity).min(0.9)) {
                continue;
            }
            let old_index = self.current[p as usize] as usize;
            let old_start = self.spells[old_index].start;
            let day = self.rng.random_range(from.max(old_start)..=to);
            self.spells[old_index].end = day;
            self.current[p as usize] = u32::MAX;
            let gap = if self.rng.random_bool(0.7) {
                0
            } else {
                self.rng.random_range(1..=60)
            };
            let start = day + 1 + gap;
            if start > reference_day {
                continue;
            }
            let old_org = self.spells[old_index].org;
            let new_org = self.pick_new_employer(old_org);
            let org = &orgs[new_org as usize];
            let person = &self.persons[p as usize];
            let age = age_years(person.birth, start);
            let sex = person.sex;
            let old_function = self.spells[old_index].fwg;
            let function =
                if self.fwg[old_function as usize].sector_weights[org.sector.index()] > 0.0 {
                    old_function
                } else {
                    self.draw_function(org.sector, age)
                };
            let contract = self.draw_contract(org, age, true);
            let old_contract = self.spells[old_index].contract;
            let hours = if contract != Contract::Oproep && old_contract != Contract::Oproep {
                let old = f64::from(self.spells[old_index].hours_centi) / 100.0;
                ((old * self.rng.random_range(0.85..1.15))
                    .clamp(4.0, 48.0)
                    .round()
                    * 100.0) as u16
            } else {
                self.draw_hours(org, contract, sex)
            };
            self.push_spell(p, new_org, start, contract, function, hours);
        }

        // Joiners, in proportion to the workforce at the start of the year.
        let joiners = (INFLOW_RATE * active.len() as f64).round() as usize;
        for _ in 0..joiners {
            let month = self.hiring_months.sample(&mut self.rng) as u32 + 1;
            let start = self
                .rng
                .random_range(days_from_civil(year, month, 1)..=month_last(year, month));
            let org_index = self.hiring_org.sample(&mut self.rng) as u32;
            let org = &orgs[org_index as usize];
            let age = self.draw_age(true);
            let birth = start - (age * 365.2425).round() as i32;
            let birth_year = civil_from_days(birth).0;
            let career_start_year = if age < 23.0 {
                year
            } else {
                (birth_year + 18 + self.rng.random_range(0..5)).min(year)
            };
            let person = self.new_person(birth, org, career_start_year, age);
            let sex = person.sex;
            let p = self.push_person(person);
            let function = self.draw_function(org.sector, age);
            let contract = self.draw_contract(org, age, true);
            let hours = self.draw_hours(org, contract, sex);
            self.push_spell(p, org_index, start, contract, function, hours);
            self.draw_care(p, year, function);
        }
    }

    /// A new employer: within the same sector for a bit over half of the
    /// changers, in another sector for the rest.
    fn pick_new_employer(&mut self, old_org: u32) -> u32 {
        let old_sector = self.orgs[old_org as usize].sector;
        let same_sector = self.rng.random_bool(SAME_SECTOR_SHARE);
        for _ in 0..20 {
            let candidate = if same_sector {
                let (members, sampler) = self.sector_orgs[old_sector.index()]
                    .as_ref()
                    .expect("the old employer's sector has organisations");
                members[sampler.sample(&mut self.rng)]
            } else {
                self.hiring_org.sample(&mut self.rng) as u32
            };
            let sector_ok = same_sector || self.orgs[candidate as usize].sector != old_sector;
            if candidate != old_org && sector_ok {
                return candidate;
            }
        }
        // Tiny configurations may have no other suitable employer.
        self.hiring_org.sample(&mut self.rng) as u32
    }

    /// Exits in the year after the horizon. Never written (the extracts are
    /// taken on 31 December of the last year), but the survey of the last
    /// year reflects them.
    fn draw_exits_after_horizon(&mut self) {
        let last = self.params.last_year;
        let active = self.active_persons();
        let offset = (last - self.params.first_year) as usize;
        let year_count = self.year_count;
        let exits = self.draw_exits(last + 1, &active, |sim, p| {
            sim.care[p as usize * year_count + offset]
        });
        for (p, day) in exits {
            self.persons[p as usize].exit_day = day;
        }
    }
}
