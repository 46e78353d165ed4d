//! The linking plans, as SQL over the registered sources.
//!
//! Every definition of the models lives here, so that one file says what a
//! variable means; docs/linking.md restates them for researchers.
//!
//! Determinism: DataFusion aggregates partitions in parallel, and floating
//! point sums depend on their order. Every sum that a later stage adds up
//! again is therefore taken over exact decimals or integers, and only the
//! final ratios are floating point.

use std::fmt::Write;

use crate::codes::{CONTRACT_TYPE, SECTOR, SEX};

/// The five care types of the IZZ claims, with their column prefix.
pub const CARE_TYPES: [(&str, &str); 5] = [
    ("GGZ", "ggz"),
    ("FYSIO", "physio"),
    ("HUISARTS", "gp"),
    ("MSZ", "hospital"),
    ("FARMACIE", "pharmacy"),
];

/// The survey scales, carried into the person model unchanged.
pub const SURVEY_SCALES: [&str; 9] = [
    "workload",
    "emotional_exhaustion",
    "engagement",
    "empowering_leadership",
    "learning_climate",
    "organisational_climate",
    "self_reported_absence",
    "work_related_absence",
    "intention_to_leave",
];

/// Long-term absence: an episode of more than six weeks.
pub const LONG_TERM_DAYS: i32 = 42;

/// Completed years on 1 January of `year` for a birth date.
fn age_on_1_january(birth: &str, year: &str) -> String {
    format!(
        "({year} - CAST(date_part('year', {birth}) AS INT)
          - CASE WHEN date_part('month', {birth}) = 1 AND date_part('day', {birth}) = 1 THEN 0 ELSE 1 END)"
    )
}

/// Popcount of a month bitmask (bits 1–12), as a plain expression so that
/// it vectorises without a UDF.
fn months_in(mask: &str) -> String {
    let terms: Vec<String> = (1..=12).map(|m| format!("(({mask} >> {m}) & 1)")).collect();
    format!("CAST(({}) AS BIGINT)", terms.join(" + "))
}

/// `years(year, y_start, y_end)`: each model year with its first day and
/// the first day of the next year, as days since 1970-01-01.
pub fn years_table(years: &[(i32, i32, i32)]) -> String {
    let rows: Vec<String> = years
        .iter()
        .map(|(y, s, e)| format!("({y}, {s}, {e})"))
        .collect();
    format!(
        "CREATE VIEW years AS SELECT CAST(column1 AS INT) AS year, CAST(column2 AS INT) AS y_start, CAST(column3 AS INT) AS y_end FROM (VALUES {})",
        rows.join(", ")
    )
}

/// "Latest" values of the payroll backbone: each is packed below its
/// radix, behind the month's day number, so that one `max()` finds the
/// value of the latest month; of two values in one month (a month
/// delivered twice) the higher wins. A missing postcode or end date is the
/// radix − 1 (counts as higher), a missing function code 0 (lower).
/// Function codes are four digits (the delivery contract), so code + 1 fits.
const POSTCODE_RADIX: i64 = 100_000;
const CONTRACT_RADIX: i64 = 10;
const FWG_RADIX: i64 = 100_000;
const END_RADIX: i64 = 1_000_000;

/// `value` packed behind the payroll month's day number.
fn behind_month(value: &str, radix: i64) -> String {
    format!("CAST(arrow_cast(period, 'Int32') AS BIGINT) * {radix} + {value}")
}

/// Payroll amounts are summed as integers in their smallest unit (hours
/// in ten-thousandths, euros in cents): exact like the decimals they stand
/// for, each value rounded as a cast to that decimal rounds it, but summed
/// as 64-bit integers where DataFusion sums decimals as 128-bit ones, and
/// without the per-value float-to-decimal conversion.
const HOUR_UNITS: i64 = 10_000;
const CENTS: i64 = 100;

/// A payroll amount in integer units of `1 / units`.
fn in_units(column: &str, units: i64) -> String {
    format!("CAST(round({column} * {units}.0) AS BIGINT)")
}

/// Payroll rows with the per-row quantities the aggregations need.
/// Available days: the calendar days of the payroll month inside the
/// employment (start and end dates clip the first and last month). Sex,
/// sector and contract type are the contract's codes (`codes.rs`), the
/// calendar parts plain integer arithmetic (`calendar.rs`).
pub fn payroll_rows() -> String {
    let postcode = behind_month(
        &format!("COALESCE(postcode4, {})", POSTCODE_RADIX - 1),
        POSTCODE_RADIX,
    );
    let contract = behind_month(
        &format!("{}(contract_type)", CONTRACT_TYPE.function),
        CONTRACT_RADIX,
    );
    let fwg = behind_month(
        "COALESCE(CAST(fwg_function_code AS BIGINT) + 1, 0)",
        FWG_RADIX,
    );
    let end = behind_month(
        &format!(
            "COALESCE(arrow_cast(employment_end, 'Int32'), {})",
            END_RADIX - 1
        ),
        END_RADIX,
    );
    let (sex, sector) = (SEX.function, SECTOR.function);
    let hours = in_units("hours_per_week", HOUR_UNITS);
    let wage = in_units("gross_monthly_wage", CENTS);
    let allowance = in_units("irregularity_allowance", CENTS);
    format!(
        "CREATE VIEW payroll_rows AS SELECT
    person,
    org,
    calendar_year(period) AS year,
    arrow_cast(period, 'Int32') AS month_day,
    CAST(1 AS BIGINT) << calendar_month(period) AS month_bit,
    birth_date,
    {sex}(sex) AS sex,
    {postcode} AS latest_postcode,
    {contract} AS latest_contract,
    {sector}(sector) AS sector,
    {fwg} AS latest_fwg,
    {hours} AS hours,
    {wage} AS wage,
    {allowance} AS allowance,
    GREATEST(0,
        LEAST(next_month_start(period),
              COALESCE(arrow_cast(employment_end, 'Int32') + 1, 2147483647))
      - GREATEST(month_start(period), arrow_cast(employment_start, 'Int32'))) AS available_days,
    arrow_cast(employment_start, 'Int32') AS start_day,
    {end} AS latest_end
FROM payroll"
    )
}

/// One row per person × employer × year (the payroll backbone). A month
/// delivered twice for one person and employer counts once: the month mask
/// counts months, and the sums are scaled by months ÷ rows, which averages
/// the duplicates.
pub fn person_employer_year() -> String {
    let months = months_in("month_mask");
    let (no_postcode, no_end) = (POSTCODE_RADIX - 1, END_RADIX - 1);
    // As `VARCHAR`, the type the backbone's sex and sector had when they
    // were strings.
    let sex = format!("CAST({} AS VARCHAR)", SEX.decode("sex"));
    let sector = format!("CAST({} AS VARCHAR)", SECTOR.decode("sector"));
    let contract_type = CONTRACT_TYPE.decode(&format!("latest_contract % {CONTRACT_RADIX}"));
    format!(
        "SELECT person, org, year, payroll_rows, {months} AS months,
            payroll_rows - {months} AS duplicate_rows,
            month_mask, last_month_day, birth_date, {sex} AS sex,
            CASE WHEN latest_postcode % {POSTCODE_RADIX} = {no_postcode} THEN NULL
                 ELSE latest_postcode % {POSTCODE_RADIX} END AS postcode4,
            {contract_type} AS contract_type,
            {sector} AS sector,
            CASE WHEN latest_fwg % {FWG_RADIX} = 0 THEN NULL
                 ELSE lpad(CAST(latest_fwg % {FWG_RADIX} - 1 AS VARCHAR), 4, '0') END AS fwg_function_code,
            start_day,
            CASE WHEN latest_end % {END_RADIX} = {no_end} THEN NULL
                 ELSE CAST(latest_end % {END_RADIX} AS INT) END AS end_day,
            CAST(CAST(hours_sum AS DOUBLE) / {HOUR_UNITS}.0 * {months} / payroll_rows AS DECIMAL(16, 4)) AS hour_months,
            CAST(CAST(wage_sum AS DOUBLE) / {CENTS}.0 * {months} / payroll_rows AS DECIMAL(18, 2)) AS wage,
            CAST(CAST(allowance_sum AS DOUBLE) / {CENTS}.0 * {months} / payroll_rows AS DECIMAL(18, 2)) AS allowance,
            CAST(ROUND(CAST(available_days_sum AS DOUBLE) * {months} / payroll_rows) AS BIGINT) AS available_days
        FROM (
            SELECT person, org, year,
                COUNT(*) AS payroll_rows,
                bit_or(month_bit) AS month_mask,
                max(month_day) AS last_month_day,
                max(birth_date) AS birth_date,
                max(sex) AS sex,
                max(latest_postcode) AS latest_postcode,
                max(latest_contract) AS latest_contract,
                max(sector) AS sector,
                max(latest_fwg) AS latest_fwg,
                max(start_day) AS start_day,
                max(latest_end) AS latest_end,
                sum(hours) AS hours_sum,
                sum(wage) AS wage_sum,
                sum(allowance) AS allowance_sum,
                sum(available_days) AS available_days_sum
            FROM payroll_rows
            GROUP BY person, org, year
        )",
    )
}

/// Bits of an organisation's dense key in the main-employer rank of
/// [`person_year`]; linking refuses more organisations than this holds.
pub const ORG_RANK_BITS: u32 = 27;

/// One row per person × year on the payroll, from the backbone. The main
/// employer is the one with the most months that year (then the latest
/// month, then the lowest pseudonym, so ties resolve the same every run);
/// sector, contract, function, sex and postcode are those at the main
/// employer.
///
/// The order is packed into one integer per employment, so that one hash
/// aggregation finds each person's main employer as a maximum and a join
/// fetches its attributes: months (≤ 12) above the latest month's day
/// counted from `first_day` (the first payroll year's 1 January; under
/// 2³² for any date), above the complement of the organisation's key
/// (dense keys follow pseudonym order, so the lowest pseudonym ranks
/// highest). A `ROW_NUMBER()` window over a sort gave the same rows at
/// four times the cost: DataFusion's window operator finds partition
/// boundaries row by row.
pub fn person_year(first_day: i32) -> String {
    let months = months_in("t.month_mask");
    let age = age_on_1_january("m.birth_date", "m.year");
    let org_mask = (1i64 << ORG_RANK_BITS) - 1;
    let day_unit = 1i64 << ORG_RANK_BITS;
    let month_unit = 1i64 << (ORG_RANK_BITS + 32);
    format!(
        "SELECT m.person, m.year, m.org, m.sector, m.contract_type, m.fwg_function_code, m.postcode4,
            m.sex, m.birth_date, t.employers, {months} AS months, t.hour_months, t.wage, t.allowance,
            {age} AS age
        FROM (
            SELECT person, year, COUNT(*) AS employers, bit_or(month_mask) AS month_mask,
                sum(hour_months) AS hour_months, sum(wage) AS wage, sum(allowance) AS allowance,
                CAST({org_mask} - (max(
                    CAST(months AS BIGINT) * {month_unit}
                    + (CAST(last_month_day AS BIGINT) - {first_day}) * {day_unit}
                    + ({org_mask} - org)) & {org_mask}) AS INT) AS main_org
            FROM pe GROUP BY person, year
        ) t
        JOIN pe m ON m.person = t.person AND m.year = t.year AND m.org = t.main_org"
    )
}

/// Absence episodes, deduplicated on person × employer × first sick day
/// (a report delivered twice keeps its longest duration and highest
/// percentage). The end is exclusive: the recovery day is a working day;
/// an episode lasts at least its first day; an open one runs to the
/// reference date inclusive. Reports after the reference date are not
/// part of the extract and are left out.
pub fn episodes(reference_day: i32) -> String {
    let end = reference_day + 1;
    format!(
        "SELECT person, org, sick_day,
            max(end_excl) AS end_excl, max(absence_pct) AS absence_pct, COUNT(*) AS reports
        FROM (
            SELECT person, org,
                arrow_cast(sick_from, 'Int32') AS sick_day,
                LEAST({end}, GREATEST(COALESCE(arrow_cast(recovered_on, 'Int32'), {end}),
                                      arrow_cast(sick_from, 'Int32') + 1)) AS end_excl,
                absence_pct
            FROM absence
            WHERE arrow_cast(sick_from, 'Int32') <= {reference_day}
        )
        GROUP BY person, org, sick_day"
    )
}

/// Episode × year for each year an episode overlaps: whether it started in
/// the year, its percentage-weighted days inside the year (days × pct, an
/// exact integer; divide by 100 for days) and its whole duration.
pub const EPISODE_YEARS: &str = "SELECT e.person, e.org, y.year,
        CASE WHEN e.sick_day >= y.y_start THEN 1 ELSE 0 END AS started,
        CAST(LEAST(e.end_excl, y.y_end) - GREATEST(e.sick_day, y.y_start) AS BIGINT) * e.absence_pct AS pct_days,
        e.end_excl - e.sick_day AS duration
    FROM episodes e JOIN years y ON e.sick_day < y.y_end AND e.end_excl > y.y_start";

/// Absence per person × year. Materialised rather than a view, for the
/// reason given at [`EMPLOYMENT_ABSENCE`]: the workforce model joins it to
/// every payroll person-year, and over a view DataFusion would hash that
/// wide side instead of this one.
pub const PERSON_ABSENCE: &str = "SELECT person, year,
        CAST(sum(started) AS BIGINT) AS episodes,
        sum(pct_days) AS pct_days,
        max(duration) AS longest
    FROM episode_years GROUP BY person, year";

/// Absence per person × employer × year. Materialised rather than a view:
/// the organisation model joins it to the backbone, and over a view (an
/// aggregation of unknown size) DataFusion built the join's hash table on
/// the backbone instead, every column of 3.4 million rows at full scale;
/// from a file with row counts it builds on this, the smaller side (half
/// the organisation model's time and a gigabyte less peak memory).
pub const EMPLOYMENT_ABSENCE: &str = "SELECT person, org, year,
        CAST(sum(started) AS BIGINT) AS episodes,
        sum(pct_days) AS pct_days
    FROM episode_years GROUP BY person, org, year";

/// Insured persons per year; claims prove insurance too, so a person with
/// claims but missing from the insured list is counted as insured (the
/// linkage report counts how often that happens).
pub const INSURED_YEARS: &str = "SELECT DISTINCT person, year FROM (
        SELECT person, CAST(year AS INT) AS year FROM insured
        UNION ALL
        SELECT person, CAST(year AS INT) AS year FROM care_use
    )";

/// Claims per person × year, one column group per care type. A care type
/// delivered twice for one person and year keeps its largest claim count
/// and cost.
pub fn care_years() -> String {
    let mut columns = String::new();
    for (code, prefix) in CARE_TYPES {
        write!(
            columns,
            ", CAST(sum(CASE WHEN care_type = '{code}' THEN claims ELSE 0 END) AS BIGINT) AS {prefix}_claims,
               sum(CASE WHEN care_type = '{code}' THEN cost ELSE CAST(0 AS DECIMAL(14, 2)) END) AS {prefix}_cost"
        )
        .unwrap();
    }
    format!(
        "SELECT person, year, CAST(COUNT(*) AS BIGINT) AS care_types{columns}
        FROM (
            SELECT person, CAST(year AS INT) AS year, CAST(care_type AS VARCHAR) AS care_type,
                max(claims) AS claims, max(CAST(cost_eur AS DECIMAL(14, 2))) AS cost
            FROM care_use GROUP BY person, CAST(year AS INT), CAST(care_type AS VARCHAR)
        )
        GROUP BY person, year"
    )
}

/// The survey, one answer set per respondent × year; of duplicates the
/// first in scale order is kept.
pub fn survey_years() -> String {
    let scales = SURVEY_SCALES.join(", ");
    format!(
        "SELECT person, year, {scales} FROM (
            SELECT person, CAST(year AS INT) AS year, {scales},
                ROW_NUMBER() OVER (PARTITION BY person, year ORDER BY {scales}) AS answer_set
            FROM survey
        ) WHERE answer_set = 1"
    )
}

/// The FWG table, one row per function code.
pub const FWG_CODES: &str = "CREATE VIEW fwg_codes AS SELECT fwg_function_code,
        first_value(fwg_level ORDER BY function_title) AS fwg_level,
        first_value(physical_load ORDER BY function_title) AS physical_load,
        first_value(mental_load ORDER BY function_title) AS mental_load,
        first_value(injury_risk ORDER BY function_title) AS injury_risk,
        first_value(adverse_conditions ORDER BY function_title) AS adverse_conditions,
        first_value(irregular_hours ORDER BY function_title) AS irregular_hours
    FROM fwg GROUP BY fwg_function_code";

/// Annual reports, one per organisation × year; of duplicates the one with
/// the highest revenue is kept.
pub const ANNUAL_REPORT_YEARS: &str = "CREATE VIEW annual_report_years AS SELECT org, year,
        revenue_keur, personnel_cost_keur, overhead_pct, fte, result_keur
    FROM (
        SELECT org, CAST(year AS INT) AS year,
            revenue_keur, personnel_cost_keur, overhead_pct, fte, result_keur,
            ROW_NUMBER() OVER (PARTITION BY org, year
                ORDER BY revenue_keur DESC, personnel_cost_keur DESC, fte DESC, result_keur DESC) AS report
        FROM annual_reports
    ) WHERE report = 1";

/// What linking knows of a person in a year apart from the survey:
/// payroll, job characteristics, absence, IZZ insurance and care use, and
/// next year's leaving — the one definition of these columns, which the
/// person model (survey respondents) and the workforce model (everyone on
/// the payroll) both select, so that a respondent on the payroll has the
/// same values in both.
struct PersonYearFacts {
    /// The select list, `org_p2` to `left_sector`, in the models' order.
    columns: String,
    /// The joins that bring in what `columns` reads besides `py`.
    joins: String,
}

/// Alias of the payroll person-year (`py`) in [`PersonYearFacts`]; its
/// `person` is null when the person is not on the payroll that year.
const PY: &str = "p";

/// [`PersonYearFacts`] over a driving table aliased `d`, which gives
/// `person` and `year`, with `py` joined to it as [`PY`]: the workforce
/// model drives from `py` itself (`d` is [`PY`]), the person model from
/// the survey with `py` left-joined. Insurance and care use are the
/// driving person's, on the payroll or not; everything else is null off
/// the payroll.
fn person_year_facts(d: &str, payroll_years: &[i32]) -> PersonYearFacts {
    // Years whose next year's payroll is delivered: leaving is known.
    let delivered = payroll_years
        .iter()
        .map(|y| (y - 1).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let p = PY;
    let mut care = String::new();
    for (_, c) in CARE_TYPES {
        write!(
            care,
            ",
            CASE WHEN i.person IS NOT NULL THEN COALESCE(c.{c}_claims, 0) > 0 END AS {c}_any,
            CASE WHEN i.person IS NOT NULL THEN COALESCE(c.{c}_claims, 0) END AS {c}_claims,
            CASE WHEN i.person IS NOT NULL THEN CAST(COALESCE(c.{c}_cost, 0) AS DOUBLE) END AS {c}_cost_eur"
        )
        .unwrap();
    }
    let columns = format!(
        "{p}.org AS org_p2, {p}.sector, {p}.age, {p}.sex, {p}.postcode4, {p}.contract_type,
            CAST({p}.hour_months AS DOUBLE) / {p}.months AS hours_per_week,
            {p}.months AS months_employed,
            CASE WHEN {p}.wage > 0 THEN CAST({p}.allowance AS DOUBLE) / CAST({p}.wage AS DOUBLE) END AS irregularity_share,
            {p}.fwg_function_code, f.fwg_level, f.physical_load, f.mental_load, f.injury_risk,
            f.adverse_conditions, f.irregular_hours,
            CASE WHEN {p}.person IS NOT NULL THEN COALESCE(a.episodes, 0) END AS absence_episodes,
            CASE WHEN {p}.person IS NOT NULL THEN COALESCE(CAST(a.pct_days AS DOUBLE), 0) / 100 END AS absence_days,
            CASE WHEN {p}.person IS NOT NULL THEN COALESCE(a.longest, 0) END AS longest_episode_days,
            CASE WHEN {p}.person IS NOT NULL THEN COALESCE(a.longest, 0) > {LONG_TERM_DAYS} END AS long_term_absence,
            i.person IS NOT NULL AS izz_insured{care},
            CASE WHEN {p}.person IS NULL OR {d}.year NOT IN ({delivered}) THEN NULL
                 ELSE ne.person IS NULL END AS left_employer,
            CASE WHEN {p}.person IS NULL OR {d}.year NOT IN ({delivered}) THEN NULL
                 ELSE np.person IS NULL END AS left_sector"
    );
    let joins = format!(
        "LEFT JOIN fwg_codes f ON f.fwg_function_code = {p}.fwg_function_code
        LEFT JOIN person_absence a ON a.person = {d}.person AND a.year = {d}.year
        LEFT JOIN insured_years i ON i.person = {d}.person AND i.year = {d}.year
        LEFT JOIN care_years c ON c.person = {d}.person AND c.year = {d}.year
        LEFT JOIN (SELECT person, org, year FROM pe) ne
            ON ne.person = {d}.person AND ne.org = {p}.org AND ne.year = {d}.year + 1
        LEFT JOIN (SELECT person, year FROM py) np ON np.person = {d}.person AND np.year = {d}.year + 1"
    );
    PersonYearFacts { columns, joins }
}

/// The person model: one row per survey respondent × year, the
/// respondent's [`PersonYearFacts`] and survey answers.
pub fn person_model(payroll_years: &[i32]) -> String {
    let PersonYearFacts { columns, joins } = person_year_facts("s", payroll_years);
    let scales: String = SURVEY_SCALES.iter().map(|s| format!(",\n s.{s}")).collect();
    format!(
        "SELECT s.person AS person_p2, s.year,
            {PY}.person IS NOT NULL AS on_payroll,
            {columns}{scales}
        FROM survey_years s
        LEFT JOIN py {PY} ON {PY}.person = s.person AND {PY}.year = s.year
        {joins}
        ORDER BY person_p2, year"
    )
}

/// The workforce model: one row per person × year on the payroll, the
/// person's [`PersonYearFacts`]: the population the disclosure engine
/// measures a respondent's risk against (k-map). It never leaves the TTP.
///
/// `py` is stored in this order and the joins are planned to keep it (see
/// `collecting_joins` in lib.rs), so the `ORDER BY` costs no sort.
pub fn workforce_model(payroll_years: &[i32]) -> String {
    let PersonYearFacts { columns, joins } = person_year_facts(PY, payroll_years);
    format!(
        "SELECT {PY}.person AS person_p2, {PY}.year,
            {columns}
        FROM py {PY}
        {joins}
        ORDER BY person_p2, year"
    )
}

/// The organisation model: one row per organisation × year, from everyone
/// on its payroll that year, with the number of persons each statistic
/// rests on.
pub fn organisation_model() -> String {
    let age = age_on_1_january("e.birth_date", "e.year");
    format!(
        "WITH staff AS (
        SELECT e.org, e.year, e.person, e.sector, e.contract_type, e.hour_months, e.available_days,
            {age} AS age,
            CASE WHEN e.wage > 0 THEN CAST(CAST(e.allowance AS DOUBLE) / CAST(e.wage AS DOUBLE) AS DECIMAL(10, 6)) END AS irregularity_share,
            CASE WHEN e.start_day >= y.y_start THEN 1 ELSE 0 END AS joined,
            CASE WHEN e.end_day < y.y_end THEN 1 ELSE 0 END AS left_employer,
            COALESCE(a.pct_days, 0) AS pct_days,
            COALESCE(a.episodes, 0) AS episodes,
            CASE WHEN i.person IS NOT NULL THEN 1 ELSE 0 END AS insured,
            CASE WHEN i.person IS NOT NULL AND c.ggz_claims > 0 THEN 1 ELSE 0 END AS uses_ggz,
            CASE WHEN i.person IS NOT NULL AND c.physio_claims > 0 THEN 1 ELSE 0 END AS uses_physio,
            f.physical_load, f.mental_load, f.injury_risk,
            CASE WHEN f.adverse_conditions > 0 THEN 1 ELSE 0 END AS adverse
        FROM pe e
        JOIN years y ON y.year = e.year
        LEFT JOIN employment_absence a ON a.person = e.person AND a.org = e.org AND a.year = e.year
        LEFT JOIN insured_years i ON i.person = e.person AND i.year = e.year
        LEFT JOIN care_years c ON c.person = e.person AND c.year = e.year
        LEFT JOIN fwg_codes f ON f.fwg_function_code = e.fwg_function_code
    ), per_org AS (
        SELECT org, year,
            COUNT(*) AS persons,
            max(sector) AS sector,
            CAST(sum(hour_months) AS DOUBLE) / 12 / 36 AS fte,
            avg(age) AS mean_age,
            CAST(sum(CASE WHEN contract_type = 'TIJDELIJK' THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS temporary_share,
            CAST(sum(CASE WHEN contract_type = 'OPROEP' THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS on_call_share,
            CAST(avg(irregularity_share) AS DOUBLE) AS mean_irregularity_share,
            COUNT(irregularity_share) AS n_irregularity_share,
            CAST(sum(joined) AS DOUBLE) / COUNT(*) AS inflow_rate,
            CAST(sum(left_employer) AS DOUBLE) / COUNT(*) AS outflow_rate,
            CAST(sum(pct_days) AS DOUBLE) / NULLIF(sum(available_days), 0) AS absence_pct,
            CAST(sum(pct_days) AS DOUBLE) / 100 AS absence_days,
            CAST(sum(available_days) AS BIGINT) AS available_days,
            CAST(sum(episodes) AS DOUBLE) / COUNT(*) AS episode_frequency,
            CAST(sum(insured) AS DOUBLE) / COUNT(*) AS izz_coverage,
            CAST(sum(insured) AS BIGINT) AS n_izz_insured,
            CAST(sum(uses_ggz) AS DOUBLE) / NULLIF(sum(insured), 0) AS ggz_share_insured,
            CAST(sum(uses_physio) AS DOUBLE) / NULLIF(sum(insured), 0) AS physio_share_insured,
            avg(physical_load) AS mean_physical_load,
            avg(mental_load) AS mean_mental_load,
            avg(injury_risk) AS mean_injury_risk,
            CAST(sum(CASE WHEN physical_load IS NOT NULL THEN adverse ELSE 0 END) AS DOUBLE)
                / NULLIF(COUNT(physical_load), 0) AS adverse_conditions_share,
            COUNT(physical_load) AS n_fwg
        FROM staff GROUP BY org, year
    )
    SELECT o.org AS org_p2, o.year, o.sector, o.persons AS headcount, o.fte, o.mean_age,
        o.temporary_share, o.on_call_share, o.mean_irregularity_share, o.n_irregularity_share,
        o.inflow_rate, o.outflow_rate, o.absence_pct, o.absence_days, o.available_days, o.episode_frequency,
        o.izz_coverage, o.n_izz_insured, o.ggz_share_insured, o.physio_share_insured,
        o.mean_physical_load, o.mean_mental_load, o.mean_injury_risk, o.adverse_conditions_share, o.n_fwg,
        r.org IS NOT NULL AS annual_report,
        r.revenue_keur, r.personnel_cost_keur, r.overhead_pct, r.fte AS annual_report_fte, r.result_keur
    FROM per_org o
    LEFT JOIN annual_report_years r ON r.org = o.org AND r.year = o.year
    ORDER BY org_p2, year"
    )
}

/// Which person-level sources hold each person in each year (bit 1
/// payroll, 2 absence, 4 IZZ's insured list, 8 claims, 16 survey), with
/// the payroll's sector and age: the linkage report's counts, coverage and
/// overlap all come from this one table. Rows repeat (an episode per year,
/// a listing twice); the bitwise or absorbs them, and a `DISTINCT` on the
/// parts would cost more than it saves: DataFusion treats the constant
/// columns as sorted and then emits groups in a quadratic way.
pub const PRESENCE: &str = "SELECT person, year, CAST(bit_or(bit) AS BIGINT) AS mask,
        max(sector) AS sector, max(age) AS age
    FROM (
        SELECT person, year, CAST(1 AS BIGINT) AS bit, sector, age FROM py
        UNION ALL SELECT person, year, CAST(2 AS BIGINT) AS bit,
            CAST(NULL AS VARCHAR) AS sector, CAST(NULL AS INT) AS age FROM episode_years
        UNION ALL SELECT person, CAST(year AS INT) AS year, CAST(4 AS BIGINT) AS bit,
            CAST(NULL AS VARCHAR) AS sector, CAST(NULL AS INT) AS age FROM insured
        UNION ALL SELECT person, year, CAST(8 AS BIGINT) AS bit,
            CAST(NULL AS VARCHAR) AS sector, CAST(NULL AS INT) AS age FROM care_years
        UNION ALL SELECT person, year, CAST(16 AS BIGINT) AS bit,
            CAST(NULL AS VARCHAR) AS sector, CAST(NULL AS INT) AS age FROM survey_years
    )
    GROUP BY person, year";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, AsArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
        StringArray,
    };
    use arrow::datatypes::Int32Type;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    const JAN_2023: i32 = 19358;

    /// Day number of the first of `month` in 2023.
    fn month_2023(month: i32) -> i32 {
        const STARTS: [i32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        JAN_2023 + STARTS[(month - 1) as usize]
    }

    /// One payroll row per (person, org, month, function code).
    fn payroll(rows: &[(i32, i32, i32, Option<&str>)]) -> RecordBatch {
        let n = rows.len();
        RecordBatch::try_from_iter([
            (
                "person",
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            ),
            (
                "org",
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "period",
                Arc::new(Date32Array::from_iter_values(
                    rows.iter().map(|r| month_2023(r.2)),
                )),
            ),
            ("birth_date", Arc::new(Date32Array::from(vec![7000; n]))),
            ("sex", Arc::new(StringArray::from(vec!["V"; n]))),
            ("postcode4", Arc::new(Int64Array::from(vec![3511; n]))),
            (
                "contract_type",
                Arc::new(StringArray::from(vec!["VAST"; n])),
            ),
            (
                "hours_per_week",
                Arc::new(Float64Array::from(vec![36.0; n])),
            ),
            (
                "gross_monthly_wage",
                Arc::new(Float64Array::from(vec![3000.0; n])),
            ),
            (
                "irregularity_allowance",
                Arc::new(Float64Array::from(vec![0.0; n])),
            ),
            (
                "fwg_function_code",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3))),
            ),
            ("sector", Arc::new(StringArray::from(vec!["VVT"; n]))),
            (
                "employment_start",
                Arc::new(Date32Array::from(vec![15000; n])),
            ),
            (
                "employment_end",
                Arc::new(Date32Array::from(vec![None::<i32>; n])),
            ),
        ])
        .unwrap()
    }

    async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    /// The packed "latest" values and the packed main-employer rank pick
    /// what the definitions say, ties included.
    #[tokio::test]
    async fn latest_function_code_and_main_employer_resolve_ties_as_documented() {
        let rows = [
            // Person 1 at org 5: March then May; May delivered twice, once
            // with 0300 and once with 0250 (the higher wins).
            (1, 5, 3, Some("0999")),
            (1, 5, 5, Some("0250")),
            (1, 5, 5, Some("0300")),
            // Person 1 at org 4: March to May, three months. Org 4 and
            // org 5 tie on the latest month, org 4 has more months.
            (1, 4, 3, Some("0101")),
            (1, 4, 4, Some("0101")),
            (1, 4, 5, None),
            // Person 2: org 7 and org 6 tie on months and latest month; the
            // lower key (the lower pseudonym) is the main employer. At org
            // 6 the latest month's code is missing in one of two rows: a
            // missing code loses.
            (2, 7, 1, Some("0101")),
            (2, 7, 2, Some("0101")),
            (2, 6, 1, Some("0202")),
            (2, 6, 2, None),
            (2, 6, 2, Some("0303")),
        ];
        let ctx = SessionContext::new();
        crate::register_plan_functions(&ctx);
        ctx.register_batch("payroll", payroll(&rows)).unwrap();
        query(&ctx, &payroll_rows()).await;
        let pe = query(&ctx, &person_employer_year()).await;
        let table = MemTable::try_new(pe[0].schema(), vec![pe]).unwrap();
        ctx.register_table("pe", Arc::new(table)).unwrap();
        let codes = query(
            &ctx,
            "SELECT person, org, arrow_cast(fwg_function_code, 'Utf8') FROM pe ORDER BY person, org",
        )
        .await;
        let codes: Vec<Option<String>> = codes[0]
            .column(2)
            .as_string::<i32>()
            .iter()
            .map(|c| c.map(str::to_owned))
            .collect();
        // (1, 4): May has no code; (1, 5): 0300; (2, 6): 0303; (2, 7): 0101.
        assert_eq!(
            codes,
            [
                None,
                Some("0300".into()),
                Some("0303".into()),
                Some("0101".into())
            ]
        );

        let py = query(
            &ctx,
            &format!(
                "SELECT person, org, employers, months FROM ({}) ORDER BY person",
                person_year(JAN_2023)
            ),
        )
        .await;
        let py = &py[0];
        assert_eq!(py.column(1).as_primitive::<Int32Type>().values(), &[4, 6]);
        assert_eq!(
            py.column(2)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[2, 2]
        );
        assert_eq!(
            py.column(3)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[3, 2]
        );
    }
}
