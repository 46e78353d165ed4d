"""The DuckDB peer of the sector benchmark: Koppel's run as a data scientist
at a TTP would write it with DuckDB.

    python bench/peers/duckdb_pipeline.py --deliveries DIR --reference DIR \
        [--koppel-linked DIR] --out DIR [--threads N] [--memory-limit 2GB]

It reads the plain (unsealed) deliveries, pseudonymises them a second time,
links them into Koppel's person, workforce and organisation models, writes
the workforce model to --out/linked/workforce_model.parquet, applies
disclosure control and writes persons.parquet, organisations.parquet and one
table-<name>.parquet per table into --out. It then checks its counts against
Koppel's release of the same deliveries (--reference) and, for the workforce
model, against Koppel's linkage report of that run (--koppel-linked, by
default koppel-linked/ beside --reference: the release's copy of the report
rounds its counts) and prints, as its last line,
{"stages": {...}, "checks": {...}}: wall seconds per stage, and per check
the expected and the got value. It exits 1 when a required check fails
(model row counts, persons and organisations released, rows tabulated per
table); k reached, local suppression, the chosen generalisation levels and
the cells below the threshold are reported only.

1. read_pseudonymise: DuckDB's CSV reader (explicit column types, the
   source's delimiter, decimal separator and date format, ENUM types for the
   coded columns) and Parquet reader; the contract's rules as SQL predicates
   (required, ranges, codes, months, the row rules); rejected lines counted
   against each source's max_reject_fraction, as Koppel's ingest does.
   Stage 2 is P2 = HMAC-SHA256(K2, type || 0x00 || P1 bytes), the type
   being IdentifierType::as_str ("bsn", "kvk", lowercase: the contract's
   test vectors agree), with Python's hmac in a vectorised Arrow UDF:
   DuckDB has no HMAC. Each distinct P1 is hashed once: a first scan of
   every delivery collects its distinct P1s (and counts its lines), DuckDB
   checks and hex-decodes them, the UDF hashes them, and the second, typed
   scan joins every row to its pseudonym. Tables carry a dense INTEGER per
   pseudonym, numbered in P2 order, so ordering by it is ordering by P2 (the
   main-employer tie-break); the 32-byte P2 is kept once per person and
   organisation (person_keys, org_keys). No P1 remains after the stage, and
   the script checks that. K2 is random per run.
2. link: crates/koppel-join/src/sql.rs in DuckDB SQL, statement by
   statement and materialised as lib.rs does (payroll backbone, person-years,
   absence episodes and episode-years, insured years, claims, survey, FWG
   codes, annual reports, then the models). The person model (survey
   respondents) and the workforce model (every person-year of py: one row
   per person x year on the payroll, the population Koppel's disclosure
   engine measures risk against) select one definition of the person-year
   facts, person_year_facts, as sql.rs does; the workforce model goes
   straight from its query to Parquet by COPY, as Koppel writes it in its
   link stage, with the peer's integer ids for pseudonyms as in its other
   models. Where a literal translation
   would differ, DuckDB gets the same semantics explicitly: DataFusion's null
   order (ascending NULLS LAST, descending NULLS FIRST), the exact decimal
   mean of the irregularity share. Latest-month values are packed behind
   the month and maximised, as sql.rs does. On the 50,000
   sector the models equal Koppel's bit for bit, pseudonyms aside. The
   linkage report is not made.
3. export: crates/koppel-export with the preventieplan rules (person k = 10,
   5% suppression cap, config.rs's defaults otherwise):
   - organisations: left out below 10 persons; a statistic resting on fewer
     than 10 persons nulled with status primary_threshold; banding and
     rounding as OrganisationRules::default();
   - persons: research IDs (HMAC of P2 under a random release key, "P-"/"O-"
     and 26 base32 characters); k-anonymity by full-domain generalisation
     over the seven quasi-identifiers with hierarchy.rs's labels, classes
     within a year. The rows are reduced once to base classes; evaluating a
     lattice node is one SQL GROUP BY over them. The node is kanon.rs's
     (least weighted information loss, then fewest unsafe rows, then the
     lowest node), found by bisecting over the distinct losses and looking
     only at the maximal nodes under each bound (acceptability is monotone),
     which evaluates about a third of the nodes kanon.rs's middle-out order
     does. Local suppression and the all-null class as kanon.rs `suppress`;
     the FWG level is withheld when the function code is generalised;
   - the five default tables (config.rs default_tables): every cell with
     all margins (GROUP BY CUBE against the grid of categories), distinct
     contributors, row counts, measure sums and ratio, and the threshold
     rule: cells with 1 to 9 contributors are suppressed (primary_threshold).
   Every file is written by COPY ... (FORMAT parquet) with zstd, as Koppel.

Deliberate differences from Koppel:
- Tables: only the threshold rule. No dominance or p% rule, no secondary
  suppression and no audit, so cells Koppel suppresses for those reasons
  are published here; no CSV twins of the tables.
- No linkage report, codebook, disclosure report, manifest, SHA256SUMS,
  leak guard or key labels in the Parquet metadata; no l-diversity (the
  pipeline declares none).
- Rejected lines are counted per delivery, not reported by rule.
- Persons: the earlier k-anonymity above, not Koppel's attacker-aware
  disclosure engine (koppel-disclosure, issue 21), which protects the
  person file against declared recipients measured on the workforce model.
  The workforce model is built and written as Koppel does, but nothing here
  reads it back.

The database is a temporary file under --out, removed at the end, rather
than in-memory: DuckDB compresses table data on disk and evicts it from its
buffer pool when memory runs short, so the 37 M payroll rows of the full
sector need not fit in memory. memory_limit bounds the process (2 GB by
default, comparable to Koppel's 1.5 GB DataFusion pool; a 300,000-person
test sector, the 50,000 one six times over, ran within 400 MB), and spills
go to a temp_directory under --out as well.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# pipelines/preventieplan.yaml: open absence episodes run to this date.
REFERENCE_DATE = "2024-12-31"
# koppel-join's WORKFORCE_MODEL_FILE, written under --out/linked/ (Koppel
# keeps it in its run's linked folder, never in the release).
WORKFORCE_MODEL_FILE = "workforce_model.parquet"
# Long-term absence: more than six weeks (koppel-join LONG_TERM_DAYS).
LONG_TERM_DAYS = 42


# ---------------------------------------------------------------------------
# The delivery contract (pipelines/sources/*.yaml)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a source spec. kind: bsn, kvk, month, date, int, dec,
    enum, code, text or bool (values = (true, false) for bool)."""

    header: str
    name: str
    kind: str
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    values: tuple = ()
    digits: int = 0


@dataclass(frozen=True)
class Source:
    source: str  # contract name, the file name's prefix
    table: str  # table name in the linking SQL
    fmt: str  # csv or parquet
    columns: tuple
    delim: str = ";"
    decimal: str = ","
    dateformat: str = "%Y-%m-%d"
    max_reject: float = 0.01
    row_rules: tuple = ()  # SQL predicates over canonical names


def col(header, name, kind, required=False, lo=None, hi=None, values=(), digits=0):
    return Column(header, name, kind, required, lo, hi, tuple(values), digits)


SECTORS = ("VVT", "ZKH", "GGZ", "GHZ", "JZ", "SW", "KO", "HA")
SURVEY_SCALES = (
    "workload",
    "emotional_exhaustion",
    "engagement",
    "empowering_leadership",
    "learning_climate",
    "organisational_climate",
    "self_reported_absence",
    "work_related_absence",
    "intention_to_leave",
)
CARE_TYPES = (
    ("GGZ", "ggz"),
    ("FYSIO", "physio"),
    ("HUISARTS", "gp"),
    ("MSZ", "hospital"),
    ("FARMACIE", "pharmacy"),
)

SOURCES = (
    Source(
        "pfzw_dienstverbanden",
        "payroll",
        "csv",
        (
            col("BSN", "bsn", "bsn", True),
            col("WERKGEVER_KVK", "employer_kvk", "kvk", True),
            col("PERIODE", "period", "month", True),
            col("GEBOORTEDATUM", "birth_date", "date", True),
            col("GESLACHT", "sex", "enum", True, values=("M", "V", "X")),
            col("POSTCODE4", "postcode4", "int", lo=1000, hi=9999),
            col("CONTRACTSOORT", "contract_type", "enum", True, values=("VAST", "TIJDELIJK", "OPROEP")),
            col("UREN_PER_WEEK", "hours_per_week", "dec", True, lo=0, hi=60),
            col("BRUTO_MAANDLOON", "gross_monthly_wage", "dec", True, lo=0),
            col("ORT_BEDRAG", "irregularity_allowance", "dec", True, lo=0),
            col("FWG_FUNCTIECODE", "fwg_function_code", "code", digits=4),
            col("BRANCHE", "sector", "enum", True, values=SECTORS),
            col("DATUM_IN_DIENST", "employment_start", "date", True),
            col("DATUM_UIT_DIENST", "employment_end", "date"),
        ),
        # min_age: the 14th birthday falls in or before the period's month.
        row_rules=(
            "year(birth_date) * 12 + month(birth_date) + 14 * 12 <= year(period) * 12 + month(period)",
        ),
    ),
    Source(
        "vernet_verzuimmeldingen",
        "absence",
        "csv",
        (
            col("BSN", "bsn", "bsn", True),
            col("KVK_NUMMER", "employer_kvk", "kvk", True),
            col("ZIEKMELDING", "sick_from", "date", True),
            col("HERSTELMELDING", "recovered_on", "date"),
            col("VERZUIMPERCENTAGE", "absence_pct", "int", True, lo=1, hi=100),
        ),
        dateformat="%d-%m-%Y",
        row_rules=("recovered_on IS NULL OR recovered_on >= sick_from",),
    ),
    Source(
        "izz_verzekerden",
        "insured",
        "csv",
        (col("bsn", "bsn", "bsn", True), col("jaar", "year", "int", True, lo=2000, hi=2100)),
        delim=",",
        decimal=".",
    ),
    Source(
        "izz_zorggebruik",
        "care_use",
        "csv",
        (
            col("bsn", "bsn", "bsn", True),
            col("jaar", "year", "int", True),
            col("zorgsoort", "care_type", "enum", True, values=[c for c, _ in CARE_TYPES]),
            col("declaraties", "claims", "int", True, lo=1),
            col("kosten", "cost_eur", "dec", True, lo=0),
        ),
        delim=",",
        decimal=".",
    ),
    Source(
        "izz_monitor",
        "survey",
        "parquet",
        (
            col("bsn", "bsn", "bsn", True),
            col("jaar", "year", "int", True),
            col("werkdruk", "workload", "dec", lo=1, hi=5),
            col("emotionele_uitputting", "emotional_exhaustion", "dec", lo=1, hi=5),
            col("bevlogenheid", "engagement", "dec", lo=0, hi=6),
            col("empowering_leiderschap", "empowering_leadership", "dec", lo=1, hi=5),
            col("leerklimaat", "learning_climate", "dec", lo=1, hi=5),
            col("organisatieklimaat", "organisational_climate", "dec", lo=1, hi=5),
            col("verzuim_zelfgerapporteerd", "self_reported_absence", "bool"),
            col("verzuim_werkgerelateerd", "work_related_absence", "bool"),
            col("vertrekintentie", "intention_to_leave", "dec", lo=1, hi=5),
        ),
    ),
    Source(
        "fwg_functiekenmerken",
        "fwg",
        "csv",
        (
            col("FUNCTIECODE", "fwg_function_code", "code", True, digits=4),
            col("FUNCTIENAAM", "function_title", "text", True),
            col("FWG_NIVEAU", "fwg_level", "int", True, lo=10, hi=80),
            col("FYSIEKE_BELASTING", "physical_load", "int", True, lo=1, hi=5),
            col("PSYCHISCHE_BELASTING", "mental_load", "int", True, lo=1, hi=5),
            col("RISICO_LETSEL", "injury_risk", "int", True, lo=1, hi=5),
            col("BEZWARENDE_OMSTANDIGHEDEN", "adverse_conditions", "int", True, lo=0, hi=5),
            col("ONREGELMATIG", "irregular_hours", "bool", True, values=("J", "N")),
        ),
        max_reject=0.0,
    ),
    Source(
        "intrakoop_jaarverslagen",
        "annual_reports",
        "csv",
        (
            col("KVK", "employer_kvk", "kvk", True),
            col("BOEKJAAR", "year", "int", True),
            col("OMZET_KEUR", "revenue_keur", "dec", True, lo=0),
            col("PERSONEELSKOSTEN_KEUR", "personnel_cost_keur", "dec", True, lo=0),
            col("OVERHEAD_PCT", "overhead_pct", "dec", lo=0, hi=100),
            col("FTE", "fte", "dec", True, lo=0),
            col("LOCATIES", "locations", "int", lo=1),
            col("RESULTAAT_KEUR", "result_keur", "dec"),
        ),
    ),
)

# What DuckDB's reader parses each kind into (Koppel's ingest: Int64
# integers, Float64 decimals, Date32 dates and months, dictionary enums).
READ_TYPES = {
    "bsn": "VARCHAR",
    "kvk": "VARCHAR",
    "month": "INTEGER",  # YYYYMM, made a date below
    "date": "DATE",
    "int": "BIGINT",
    "dec": "DOUBLE",
    "code": "VARCHAR",
    "text": "VARCHAR",
    "bool": "VARCHAR",
}


def fail(message: str) -> None:
    print(f"duckdb_pipeline: {message}", file=sys.stderr)
    sys.exit(1)


def run(con, sql: str) -> list:
    """Runs a statement to completion (DuckDB keeps a result open until it
    is fetched)."""
    return con.execute(sql).fetchall()


def scalar(con, sql: str):
    """The one value of a one-row, one-column query."""
    return run(con, sql)[0][0]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def is_identifier(c: Column) -> bool:
    return c.kind in ("bsn", "kvk")


def raw_name(c: Column) -> str:
    """The column's name while read: identifiers keep their stage-1 suffix."""
    return f"{c.name}_p1" if is_identifier(c) else c.name


def enum_type(source: Source, c: Column) -> str:
    return f"enum_{source.table}_{c.name}"


def read_type(source: Source, c: Column) -> str:
    if c.kind == "enum":
        return enum_type(source, c)
    if source.fmt == "parquet" and c.kind == "bool":
        return "BOOLEAN"
    return READ_TYPES[c.kind]


@dataclass
class Delivery:
    source: Source
    period: str
    path: Path
    headers: list  # the file's own header per column, in file order
    columns: list  # the spec column of each header


def header_key(header: str) -> str:
    return header.strip().upper()


def match_headers(source: Source, path: Path, headers: list) -> list:
    """Matches a file's headers to the spec (case-insensitive, identifiers
    with the _P1 suffix); unknown or missing columns refuse the delivery."""
    by_header = {
        header_key(c.header + ("_P1" if is_identifier(c) else "")): c for c in source.columns
    }
    matched = []
    for h in headers:
        c = by_header.pop(header_key(h), None)
        if c is None:
            fail(f"{path.name}: unknown column {h!r}")
        matched.append(c)
    missing = [c.header for c in by_header.values() if c.required]
    if missing:
        fail(f"{path.name}: missing columns {', '.join(missing)}")
    return matched


def csv_headers(path: Path, delim: str) -> list:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        line = f.readline().rstrip("\r\n")
    return [h.strip().strip('"') for h in line.split(delim)]


def discover(folder: Path) -> list:
    """Every <source>_<period>.csv|parquet delivery in the folder."""
    by_name = {s.source: s for s in SOURCES}
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".csv", ".parquet") or path.name.startswith("."):
            continue
        name, _, period = path.stem.rpartition("_")
        source = by_name.get(name)
        if source is None or path.suffix[1:] != source.fmt:
            fail(f"{path.name}: not a delivery of a known source")
        if source.fmt == "csv":
            headers = csv_headers(path, source.delim)
        else:
            headers = pq.read_schema(path).names
        found.append(Delivery(source, period, path, headers, match_headers(source, path, headers)))
    missing = sorted(set(by_name) - {d.source.source for d in found})
    if missing:
        fail(f"no deliveries of {', '.join(missing)} in {folder}")
    return found


# ---------------------------------------------------------------------------
# Stage 1: read and pseudonymise
# ---------------------------------------------------------------------------


def scan(d: Delivery, types: dict | None = None) -> str:
    """A table function over one delivery. CSV columns are named by their
    canonical names (identifiers with _p1) and typed as `types` says."""
    path = literal(str(d.path))
    if d.source.fmt == "parquet":
        return f"read_parquet({path})"
    names = [raw_name(c) for c in d.columns]
    types = types or {n: "VARCHAR" for n in names}
    columns = ", ".join(f"{literal(n)}: {literal(types[n])}" for n in names)
    return (
        f"read_csv({path}, header = true, auto_detect = false, delim = {literal(d.source.delim)}, "
        f"quote = '\"', escape = '\"', decimal_separator = {literal(d.source.decimal)}, "
        f"dateformat = {literal(d.source.dateformat)}, columns = {{{columns}}}, "
        f"store_rejects = true)"
    )


def scan_column(d: Delivery, c: Column) -> str:
    """Column c of a scan `r` of d (Parquet columns by their own name, cast
    to the spec's type)."""
    if d.source.fmt == "csv":
        return f"r.{raw_name(c)}"
    return f"CAST(r.{quote(d.headers[d.columns.index(c)])} AS {read_type(d.source, c)})"


def structural_rejects(con) -> int:
    """Lines DuckDB's CSV reader has set aside so far (a wrong number of
    fields, or a value its column type refuses), over all scans."""
    try:
        return scalar(con, "SELECT count(*) FROM (SELECT DISTINCT scan_id, line FROM reject_errors)")
    except duckdb.CatalogException:
        return 0


def keyed_hash(key: bytes, kind: str):
    """HMAC-SHA256(key, kind || 0x00 || value) for a list of values, as
    koppel-pseudonymise's `Pseudonymiser::pseudonym`. The keyed state, with
    the type prefix absorbed, is copied per value: the key schedule runs
    once."""
    keyed = hmac.new(key, kind.encode() + b"\x00", hashlib.sha256)

    def digests(values: list) -> list:
        out = []
        for value in values:
            mac = keyed.copy()
            mac.update(value)
            out.append(mac.digest())
        return out

    return digests


def stage2_udf(key: bytes, kind: str):
    """Arrow UDF: P2 for a column of P1 bytes."""
    digests = keyed_hash(key, kind)
    return lambda p1: pa.array(digests(p1.to_pylist()), pa.binary())


def research_id_udf(key: bytes, kind: str, prefix: str):
    """Arrow UDF: research IDs for a column of P2 (koppel-pseudonymise
    `research_ids`): the prefix and the first 16 bytes in base32, unpadded."""
    digests = keyed_hash(key, kind)

    def research_ids(p2):
        ids = [prefix + base64.b32encode(d[:16]).decode().rstrip("=") for d in digests(p2.to_pylist())]
        return pa.array(ids, pa.string())

    return research_ids


def collect_p1(con, deliveries: list) -> dict:
    """First scan: the distinct P1 values of each identifier column (one
    grouping set per column, in a temporary table seen_<i>), and the data
    lines of each delivery (for the reject fraction)."""
    lines = {}
    for i, d in enumerate(deliveries):
        before = structural_rejects(con)
        ids = [c for c in d.columns if is_identifier(c)]
        cols = [f"{scan_column(d, c)} AS id{j}, grouping(id{j}) AS g{j}" for j, c in enumerate(ids)]
        sets = ", ".join(f"(id{j})" for j in range(len(ids))) or "()"
        select = ", ".join(cols + ["count(*) AS n"])
        run(con, f"CREATE TEMP TABLE seen_{i} AS SELECT {select} FROM {scan(d)} r GROUP BY GROUPING SETS ({sets})")
        first = "WHERE g0 = 0" if ids else ""
        read = scalar(con, f"SELECT COALESCE(sum(n), 0) FROM seen_{i} {first}")
        lines[i] = read + structural_rejects(con) - before
    return lines


def build_key_maps(con, deliveries: list, key: bytes) -> None:
    """map_bsn / map_kvk: P1 → P2 and a dense id in P2 order. Each distinct
    P1 is hashed once, by the Arrow UDF."""
    for kind in ("bsn", "kvk"):
        con.create_function(
            f"stage2_{kind}",
            stage2_udf(key, kind),
            [duckdb.sqltypes.BLOB],
            duckdb.sqltypes.BLOB,
            type="arrow",
            side_effects=True,
        )
        parts = []
        for i, d in enumerate(deliveries):
            ids = [c for c in d.columns if is_identifier(c)]
            parts += [
                f"SELECT id{j} AS p1 FROM seen_{i} WHERE g{j} = 0" for j, c in enumerate(ids) if c.kind == kind
            ]
        # A P1 must be 64 lowercase hex characters (rows with another value
        # find no pseudonym and are rejected). Marked as having side effects,
        # the UDF runs exactly once per value: otherwise DuckDB may inline it
        # into every use of p2.
        run(
            con,
            f"""CREATE TEMP TABLE hashed_{kind} AS SELECT p1, stage2_{kind}(unhex(p1)) AS p2
            FROM ({" UNION ".join(parts)}) WHERE regexp_full_match(p1, '[0-9a-f]{{64}}')""",
        )
        run(
            con,
            f"""CREATE TEMP TABLE map_{kind} AS
            SELECT p1, p2, CAST(row_number() OVER (ORDER BY p2) AS INTEGER) AS id FROM hashed_{kind}""",
        )
        run(con, f"DROP TABLE hashed_{kind}")
    for i in range(len(deliveries)):
        run(con, f"DROP TABLE seen_{i}")


def column_checks(c: Column, v: str) -> list:
    """Koppel's rules for one column as SQL predicates over its value v."""
    checks = [f"{v} IS NOT NULL"] if c.required else []
    if c.lo is not None:
        checks.append(f"({v} IS NULL OR {v} >= {c.lo})")
    if c.hi is not None:
        checks.append(f"({v} IS NULL OR {v} <= {c.hi})")
    if c.kind == "code":
        checks.append(f"({v} IS NULL OR regexp_full_match({v}, '[0-9]{{{c.digits}}}'))")
    if c.kind == "month":
        checks.append(f"({v} IS NULL OR ({v} BETWEEN 100001 AND 999912 AND {v} % 100 BETWEEN 1 AND 12))")
    if c.kind == "bool" and c.values:
        checks.append(f"({v} IS NULL OR {v} IN ({literal(c.values[0])}, {literal(c.values[1])}))")
    return checks


def column_value(c: Column, v: str) -> str:
    """The canonical value of column c from its read value v."""
    if c.kind == "month":
        # YYYYMM → the month's first day (bad months are rejected by the check).
        month = f"CAST(greatest(1, least(12, {v} % 100)) AS INTEGER)"
        return f"make_date(CAST({v} // 100 AS INTEGER), {month}, 1)"
    if c.kind == "bool" and c.values:
        return f"{v} = {literal(c.values[0])}"
    return v


def select_list(d: Delivery) -> tuple:
    """(expressions, joins, checks) turning a typed scan `r` into the
    canonical table, in the spec's column order: identifiers replaced by
    their dense P2 id, an optional column the file lacks as nulls."""
    exprs, joins, checks = [], [], []
    for j, c in enumerate(d.source.columns):
        if c not in d.columns:
            canonical = {"month": "DATE", "bool": "BOOLEAN"}.get(c.kind, read_type(d.source, c))
            exprs.append(f"CAST(NULL AS {canonical}) AS {c.name}")
            continue
        v = scan_column(d, c)
        if is_identifier(c):
            joins.append(f"JOIN map_{c.kind} k{j} ON k{j}.p1 = {v}")
            exprs.append(f"k{j}.id AS {c.name}_p2")
        else:
            exprs.append(f"{column_value(c, v)} AS {c.name}")
            checks += column_checks(c, v)
    return exprs, joins, checks


def load_delivery(con, d: Delivery, first: bool) -> int:
    """Second scan: typed, validated, pseudonymised rows into the source's
    table. Returns the rows accepted."""
    types = {raw_name(c): read_type(d.source, c) for c in d.columns}
    exprs, joins, checks = select_list(d)
    if d.source.table == "fwg":
        exprs.append(f"{literal(d.period)} AS delivery_period")
    inner = f"SELECT {', '.join(exprs)} FROM {scan(d, types)} r {' '.join(joins)}"
    if checks:
        inner += " WHERE " + " AND ".join(checks)
    rules = " AND ".join(f"({r})" for r in d.source.row_rules)
    query = f"SELECT * FROM ({inner})" + (f" WHERE {rules}" if rules else "")
    verb = f"CREATE TABLE {d.source.table} AS" if first else f"INSERT INTO {d.source.table} BY NAME"
    return scalar(con, f"{verb} {query}")


def create_enum_types(con) -> None:
    for s in SOURCES:
        for c in s.columns:
            if c.kind == "enum":
                values = ", ".join(literal(v) for v in c.values)
                run(con, f"CREATE TYPE {enum_type(s, c)} AS ENUM ({values})")


def fwg_duplicates(con) -> dict:
    """FWG codes must be unique within a delivery: each repeat is a reject
    (Koppel keeps the first; the FWG table tolerates none, so the count is
    what matters)."""
    rows = run(
        con,
        """SELECT delivery_period, sum(n - 1) FROM (
            SELECT delivery_period, count(*) AS n FROM fwg GROUP BY delivery_period, fwg_function_code
        ) GROUP BY delivery_period""",
    )
    return {period: int(n) for period, n in rows}


def read_and_pseudonymise(con, deliveries: list, key: bytes) -> None:
    create_enum_types(con)
    lines = collect_p1(con, deliveries)
    build_key_maps(con, deliveries, key)
    accepted, created = {}, set()
    for i, d in enumerate(deliveries):
        accepted[i] = load_delivery(con, d, first=d.source.table not in created)
        created.add(d.source.table)
    duplicates = fwg_duplicates(con)
    for i, d in enumerate(deliveries):
        rejected = lines[i] - accepted[i] + (duplicates.get(d.period, 0) if d.source.table == "fwg" else 0)
        print(f"  {d.path.name}: {lines[i]} rows, {rejected} rejected", flush=True)
        if rejected > d.source.max_reject * lines[i]:
            fail(f"{d.path.name}: {rejected} of {lines[i]} rows rejected, more than max_reject_fraction")
    # Only P2 (once per person and organisation) and the dense ids remain;
    # the reader's reject tables hold rejected lines as delivered.
    run(con, "CREATE TABLE person_keys AS SELECT id, p2 FROM map_bsn")
    run(con, "CREATE TABLE org_keys AS SELECT id, p2 FROM map_kvk")
    for table in ("map_bsn", "map_kvk", "reject_errors", "reject_scans"):
        run(con, f"DROP TABLE IF EXISTS {table}")


def p1_left(con) -> list:
    """Tables and columns that could still hold a stage-1 pseudonym: after
    stage 2 there must be none (no *_p1 column, no P1 map or first-scan
    table, no reject table)."""
    rows = run(
        con,
        """SELECT table_name || '.' || column_name FROM information_schema.columns
        WHERE lower(column_name) LIKE '%\\_p1' ESCAPE '\\' OR lower(column_name) = 'p1'
           OR regexp_matches(table_name, '^(seen|hashed|map)_|^reject_')""",
    )
    return sorted({r[0] for r in rows})


# ---------------------------------------------------------------------------
# Stage 2: link (crates/koppel-join/src/sql.rs in DuckDB SQL)
# ---------------------------------------------------------------------------


def age_on_1_january(birth: str, year: str) -> str:
    """Completed years on 1 January of `year`."""
    return (
        f"({year} - CAST(year({birth}) AS INTEGER)"
        f" - CASE WHEN month({birth}) = 1 AND day({birth}) = 1 THEN 0 ELSE 1 END)"
    )


# Days since 1970-01-01, as DataFusion's arrow_cast(date, 'Int32').
DAYS_MACRO = "CREATE MACRO days(d) AS CAST(d - DATE '1970-01-01' AS INTEGER)"

# Payroll rows with the per-row quantities the aggregations need. Available
# days: the calendar days of the payroll month inside the employment.
PAYROLL_ROWS = """CREATE VIEW payroll_rows AS SELECT
    bsn_p2 AS person,
    employer_kvk_p2 AS org,
    CAST(year(period) AS INTEGER) AS year,
    days(period) AS month_day,
    CAST(1 AS BIGINT) << CAST(month(period) AS BIGINT) AS month_bit,
    birth_date,
    CAST(sex AS VARCHAR) AS sex,
    CAST(days(period) AS BIGINT) * 100000 + COALESCE(postcode4, 99999) AS latest_postcode,
    CAST(days(period) AS BIGINT) * 10
        + CASE CAST(contract_type AS VARCHAR) WHEN 'VAST' THEN 0 WHEN 'TIJDELIJK' THEN 1 ELSE 2 END AS latest_contract,
    CAST(sector AS VARCHAR) AS sector,
    CAST(days(period) AS BIGINT) * 100000 + COALESCE(CAST(fwg_function_code AS BIGINT) + 1, 0) AS latest_fwg,
    CAST(hours_per_week AS DECIMAL(12, 4)) AS hours,
    CAST(gross_monthly_wage AS DECIMAL(14, 2)) AS wage,
    CAST(irregularity_allowance AS DECIMAL(14, 2)) AS allowance,
    GREATEST(0,
        LEAST(days(CAST(period + INTERVAL 1 MONTH AS DATE)),
              COALESCE(days(employment_end) + 1, 2147483647))
      - GREATEST(days(period), days(employment_start))) AS available_days,
    days(employment_start) AS start_day,
    CAST(days(period) AS BIGINT) * 1000000 + COALESCE(days(employment_end), 999999) AS latest_end
FROM payroll"""

# One row per person × employer × year. A month delivered twice counts once:
# the sums are scaled by months ÷ rows, which averages the duplicates. The
# function code is the latest month's, packed behind the month as sql.rs
# does (of two in one month the higher; a missing code loses to any code).
PERSON_EMPLOYER_YEAR = """CREATE TABLE pe AS
SELECT person, org, year, payroll_rows, months, payroll_rows - months AS duplicate_rows,
    month_mask, last_month_day, birth_date, sex,
    CASE WHEN latest_postcode % 100000 = 99999 THEN NULL ELSE latest_postcode % 100000 END AS postcode4,
    CASE latest_contract % 10 WHEN 0 THEN 'VAST' WHEN 1 THEN 'TIJDELIJK' ELSE 'OPROEP' END AS contract_type,
    sector,
    CASE WHEN latest_fwg % 100000 = 0 THEN NULL
         ELSE lpad(CAST(latest_fwg % 100000 - 1 AS VARCHAR), 4, '0') END AS fwg_function_code,
    start_day,
    CASE WHEN latest_end % 1000000 = 999999 THEN NULL ELSE CAST(latest_end % 1000000 AS INTEGER) END AS end_day,
    CAST(CAST(hours_sum AS DOUBLE) * months / payroll_rows AS DECIMAL(16, 4)) AS hour_months,
    CAST(CAST(wage_sum AS DOUBLE) * months / payroll_rows AS DECIMAL(18, 2)) AS wage,
    CAST(CAST(allowance_sum AS DOUBLE) * months / payroll_rows AS DECIMAL(18, 2)) AS allowance,
    CAST(ROUND(CAST(available_days_sum AS DOUBLE) * months / payroll_rows) AS BIGINT) AS available_days
FROM (
    SELECT person, org, year,
        count(*) AS payroll_rows,
        CAST(bit_count(bit_or(month_bit)) AS BIGINT) AS months,
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
)"""

# One row per person × year on the payroll. The main employer has the most
# months that year, then the latest month, then the lowest pseudonym (the
# ids are numbered in P2 order); its sector, contract, function, sex and
# postcode are the person's.
PERSON_YEAR = f"""CREATE TABLE py AS
SELECT m.person, m.year, m.org, m.sector, m.contract_type, m.fwg_function_code, m.postcode4,
    m.sex, m.birth_date, t.employers, CAST(bit_count(t.month_mask) AS BIGINT) AS months,
    t.hour_months, t.wage, t.allowance,
    {age_on_1_january("m.birth_date", "m.year")} AS age
FROM (
    SELECT person, year, org, sector, contract_type, fwg_function_code, postcode4, sex, birth_date
    FROM (
        SELECT person, year, org, sector, contract_type, fwg_function_code, postcode4, sex, birth_date,
            ROW_NUMBER() OVER (PARTITION BY person, year
                ORDER BY months DESC, last_month_day DESC, org ASC) AS employer_rank
        FROM pe
    )
    WHERE employer_rank = 1
) m
JOIN (
    SELECT person, year, count(*) AS employers, bit_or(month_mask) AS month_mask,
        sum(hour_months) AS hour_months, sum(wage) AS wage, sum(allowance) AS allowance
    FROM pe GROUP BY person, year
) t ON t.person = m.person AND t.year = m.year"""


def episodes(reference_day: int) -> str:
    """Absence episodes, deduplicated on person × employer × first sick day
    (longest duration, highest percentage). The end is exclusive; an open
    episode runs to the reference date inclusive; later reports are left out."""
    end = reference_day + 1
    return f"""CREATE TABLE episodes AS
SELECT person, org, sick_day,
    max(end_excl) AS end_excl, max(absence_pct) AS absence_pct, count(*) AS reports
FROM (
    SELECT bsn_p2 AS person, employer_kvk_p2 AS org,
        days(sick_from) AS sick_day,
        LEAST({end}, GREATEST(COALESCE(days(recovered_on), {end}), days(sick_from) + 1)) AS end_excl,
        absence_pct
    FROM absence
    WHERE days(sick_from) <= {reference_day}
)
GROUP BY person, org, sick_day"""


# Episode × each year it overlaps: started in the year, percentage-weighted
# days inside the year (days × pct; ÷ 100 for days), whole duration.
EPISODE_YEARS = """CREATE TABLE episode_years AS
SELECT e.person, e.org, y.year,
    CASE WHEN e.sick_day >= y.y_start THEN 1 ELSE 0 END AS started,
    CAST(LEAST(e.end_excl, y.y_end) - GREATEST(e.sick_day, y.y_start) AS BIGINT) * e.absence_pct AS pct_days,
    e.end_excl - e.sick_day AS duration
FROM episodes e JOIN years y ON e.sick_day < y.y_end AND e.end_excl > y.y_start"""

PERSON_ABSENCE = """CREATE VIEW person_absence AS SELECT person, year,
    CAST(sum(started) AS BIGINT) AS episodes, sum(pct_days) AS pct_days, max(duration) AS longest
FROM episode_years GROUP BY person, year"""

EMPLOYMENT_ABSENCE = """CREATE VIEW employment_absence AS SELECT person, org, year,
    CAST(sum(started) AS BIGINT) AS episodes, sum(pct_days) AS pct_days
FROM episode_years GROUP BY person, org, year"""

# Insured per year; a claim proves insurance too.
INSURED_YEARS = """CREATE TABLE insured_years AS SELECT DISTINCT person, year FROM (
    SELECT bsn_p2 AS person, CAST(year AS INTEGER) AS year FROM insured
    UNION ALL
    SELECT bsn_p2 AS person, CAST(year AS INTEGER) AS year FROM care_use
)"""


def care_years() -> str:
    """Claims per person × year, a column group per care type; a care type
    delivered twice keeps its largest claim count and cost."""
    columns = "".join(
        f""",
        CAST(sum(CASE WHEN care_type = '{code}' THEN claims ELSE 0 END) AS BIGINT) AS {prefix}_claims,
        sum(CASE WHEN care_type = '{code}' THEN cost ELSE CAST(0 AS DECIMAL(14, 2)) END) AS {prefix}_cost"""
        for code, prefix in CARE_TYPES
    )
    return f"""CREATE TABLE care_years AS
SELECT person, year, CAST(count(*) AS BIGINT) AS care_types{columns}
FROM (
    SELECT bsn_p2 AS person, CAST(year AS INTEGER) AS year, CAST(care_type AS VARCHAR) AS care_type,
        max(claims) AS claims, max(CAST(cost_eur AS DECIMAL(14, 2))) AS cost
    FROM care_use GROUP BY bsn_p2, CAST(year AS INTEGER), CAST(care_type AS VARCHAR)
)
GROUP BY person, year"""


def survey_years() -> str:
    """One answer set per respondent × year: the first in scale order."""
    scales = ", ".join(SURVEY_SCALES)
    return f"""CREATE TABLE survey_years AS
SELECT person, year, {scales} FROM (
    SELECT bsn_p2 AS person, CAST(year AS INTEGER) AS year, {scales},
        ROW_NUMBER() OVER (PARTITION BY bsn_p2, year ORDER BY {scales}) AS answer_set
    FROM survey
) WHERE answer_set = 1"""


# The FWG table of the latest delivery, one row per function code.
FWG_CODES = """CREATE VIEW fwg_codes AS SELECT fwg_function_code,
    first(fwg_level ORDER BY function_title) AS fwg_level,
    first(physical_load ORDER BY function_title) AS physical_load,
    first(mental_load ORDER BY function_title) AS mental_load,
    first(injury_risk ORDER BY function_title) AS injury_risk,
    first(adverse_conditions ORDER BY function_title) AS adverse_conditions,
    first(irregular_hours ORDER BY function_title) AS irregular_hours
FROM fwg WHERE delivery_period = (SELECT max(delivery_period) FROM fwg)
GROUP BY fwg_function_code"""

# One annual report per organisation × year: the highest revenue wins.
ANNUAL_REPORT_YEARS = """CREATE VIEW annual_report_years AS SELECT org, year,
    revenue_keur, personnel_cost_keur, overhead_pct, fte, result_keur
FROM (
    SELECT employer_kvk_p2 AS org, CAST(year AS INTEGER) AS year,
        revenue_keur, personnel_cost_keur, overhead_pct, fte, result_keur,
        ROW_NUMBER() OVER (PARTITION BY employer_kvk_p2, year
            ORDER BY revenue_keur DESC, personnel_cost_keur DESC, fte DESC, result_keur DESC) AS report
    FROM annual_reports
) WHERE report = 1"""


# Alias of the payroll person-year (py) in person_year_facts; its person is
# null when the person is not on the payroll that year.
PY = "p"


def person_year_facts(d: str, payroll_years: list) -> tuple:
    """sql.rs person_year_facts: what linking knows of a person in a year
    apart from the survey (payroll, job, absence, insurance and care use,
    next year's leaving), over a driving table aliased `d` that gives person
    and year, with py joined to it as PY. The one definition of these
    columns, which the person model (survey respondents) and the workforce
    model (everyone on the payroll) both select. Returns the select list,
    org_p2 to left_sector, and the joins it reads besides py."""
    delivered = ", ".join(str(y - 1) for y in payroll_years)
    p = PY
    care = "".join(
        f""",
    CASE WHEN i.person IS NOT NULL THEN COALESCE(c.{c}_claims, 0) > 0 END AS {c}_any,
    CASE WHEN i.person IS NOT NULL THEN COALESCE(c.{c}_claims, 0) END AS {c}_claims,
    CASE WHEN i.person IS NOT NULL THEN CAST(COALESCE(c.{c}_cost, 0) AS DOUBLE) END AS {c}_cost_eur"""
        for _, c in CARE_TYPES
    )
    columns = f"""{p}.org AS org_p2, {p}.sector, CAST({p}.age AS BIGINT) AS age, {p}.sex,
    CAST({p}.postcode4 AS BIGINT) AS postcode4, {p}.contract_type,
    CAST({p}.hour_months AS DOUBLE) / {p}.months AS hours_per_week,
    {p}.months AS months_employed,
    CASE WHEN {p}.wage > 0 THEN CAST({p}.allowance AS DOUBLE) / CAST({p}.wage AS DOUBLE) END AS irregularity_share,
    {p}.fwg_function_code, f.fwg_level, f.physical_load, f.mental_load, f.injury_risk,
    f.adverse_conditions, f.irregular_hours,
    CASE WHEN {p}.person IS NOT NULL THEN COALESCE(a.episodes, 0) END AS absence_episodes,
    CASE WHEN {p}.person IS NOT NULL THEN COALESCE(CAST(a.pct_days AS DOUBLE), 0) / 100 END AS absence_days,
    CASE WHEN {p}.person IS NOT NULL THEN CAST(COALESCE(a.longest, 0) AS BIGINT) END AS longest_episode_days,
    CASE WHEN {p}.person IS NOT NULL THEN COALESCE(a.longest, 0) > {LONG_TERM_DAYS} END AS long_term_absence,
    i.person IS NOT NULL AS izz_insured{care},
    CASE WHEN {p}.person IS NULL OR {d}.year NOT IN ({delivered}) THEN NULL
         ELSE ne.person IS NULL END AS left_employer,
    CASE WHEN {p}.person IS NULL OR {d}.year NOT IN ({delivered}) THEN NULL
         ELSE np.person IS NULL END AS left_sector"""
    joins = f"""LEFT JOIN fwg_codes f ON f.fwg_function_code = {p}.fwg_function_code
LEFT JOIN person_absence a ON a.person = {d}.person AND a.year = {d}.year
LEFT JOIN insured_years i ON i.person = {d}.person AND i.year = {d}.year
LEFT JOIN care_years c ON c.person = {d}.person AND c.year = {d}.year
LEFT JOIN (SELECT person, org, year FROM pe) ne
    ON ne.person = {d}.person AND ne.org = {p}.org AND ne.year = {d}.year + 1
LEFT JOIN (SELECT person, year FROM py) np ON np.person = {d}.person AND np.year = {d}.year + 1"""
    return columns, joins


def person_model(payroll_years: list) -> str:
    """sql.rs person_model: one row per survey respondent x year, the
    respondent's person-year facts and survey answers."""
    columns, joins = person_year_facts("s", payroll_years)
    scales = "".join(f",\n    s.{s}" for s in SURVEY_SCALES)
    return f"""CREATE TABLE person_model AS
SELECT s.person AS person_p2, s.year,
    {PY}.person IS NOT NULL AS on_payroll,
    {columns}{scales}
FROM survey_years s
LEFT JOIN py {PY} ON {PY}.person = s.person AND {PY}.year = s.year
{joins}
ORDER BY person_p2, year"""


def workforce_model(payroll_years: list) -> str:
    """sql.rs workforce_model: one row per person x year on the payroll, the
    person's person-year facts; the population Koppel's disclosure engine
    measures a respondent's risk against. A query rather than a table: this
    peer does not use it after writing it (its export still applies
    k-anonymity over the person model alone)."""
    columns, joins = person_year_facts(PY, payroll_years)
    return f"""SELECT {PY}.person AS person_p2, {PY}.year,
    {columns}
FROM py {PY}
{joins}
ORDER BY person_p2, year"""


ORGANISATION_MODEL = f"""CREATE TABLE organisation_model AS
WITH staff AS (
    SELECT e.org, e.year, e.person, e.sector, e.contract_type, e.hour_months, e.available_days,
        {age_on_1_january("e.birth_date", "e.year")} AS age,
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
        count(*) AS persons,
        max(sector) AS sector,
        CAST(sum(hour_months) AS DOUBLE) / 12 / 36 AS fte,
        avg(age) AS mean_age,
        CAST(sum(CASE WHEN contract_type = 'TIJDELIJK' THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS temporary_share,
        CAST(sum(CASE WHEN contract_type = 'OPROEP' THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS on_call_share,
        -- DataFusion's avg of DECIMAL(10, 6) is DECIMAL(14, 10), the exact
        -- sum divided by the count and truncated; DuckDB's avg would go
        -- through doubles and differ in the last bit.
        CAST(CAST(sum(irregularity_share) * 1000000 AS HUGEINT) * 10000 // NULLIF(count(irregularity_share), 0) AS DOUBLE)
            / 1e10 AS mean_irregularity_share,
        count(irregularity_share) AS n_irregularity_share,
        CAST(sum(joined) AS DOUBLE) / count(*) AS inflow_rate,
        CAST(sum(left_employer) AS DOUBLE) / count(*) AS outflow_rate,
        CAST(sum(pct_days) AS DOUBLE) / NULLIF(sum(available_days), 0) AS absence_pct,
        CAST(sum(pct_days) AS DOUBLE) / 100 AS absence_days,
        CAST(sum(available_days) AS BIGINT) AS available_days,
        CAST(sum(episodes) AS DOUBLE) / count(*) AS episode_frequency,
        CAST(sum(insured) AS DOUBLE) / count(*) AS izz_coverage,
        CAST(sum(insured) AS BIGINT) AS n_izz_insured,
        CAST(sum(uses_ggz) AS DOUBLE) / NULLIF(sum(insured), 0) AS ggz_share_insured,
        CAST(sum(uses_physio) AS DOUBLE) / NULLIF(sum(insured), 0) AS physio_share_insured,
        avg(physical_load) AS mean_physical_load,
        avg(mental_load) AS mean_mental_load,
        avg(injury_risk) AS mean_injury_risk,
        CAST(sum(CASE WHEN physical_load IS NOT NULL THEN adverse ELSE 0 END) AS DOUBLE)
            / NULLIF(count(physical_load), 0) AS adverse_conditions_share,
        count(physical_load) AS n_fwg
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
ORDER BY org_p2, year"""


def int_column(con, sql: str) -> list:
    return [r[0] for r in run(con, sql)]


def day_number(year: int, month: int = 1, day: int = 1) -> int:
    return (datetime.date(year, month, day) - datetime.date(1970, 1, 1)).days


def link(con, linked_dir: Path) -> dict:
    """Builds person_model and organisation_model, as koppel-join's lib.rs
    does, materialising the same intermediates, and writes the workforce
    model to linked_dir/workforce_model.parquet (Koppel's file name in its
    linked folder)."""
    payroll_years = int_column(con, "SELECT DISTINCT CAST(year(period) AS INTEGER) FROM payroll ORDER BY 1")
    survey = int_column(con, "SELECT DISTINCT CAST(year AS INTEGER) FROM survey WHERE year IS NOT NULL ORDER BY 1")
    if not payroll_years:
        fail("the payroll is empty: nothing to link")
    reference_day = day_number(*(int(part) for part in REFERENCE_DATE.split("-")))
    model_years = sorted(set(payroll_years) | set(survey))
    years = ", ".join(f"({y}, {day_number(y)}, {day_number(y + 1)})" for y in model_years)
    steps = [
        DAYS_MACRO,
        f"CREATE TABLE years AS SELECT CAST(c1 AS INTEGER) AS year, CAST(c2 AS INTEGER) AS y_start, "
        f"CAST(c3 AS INTEGER) AS y_end FROM (VALUES {years}) t(c1, c2, c3)",
        PAYROLL_ROWS,
        PERSON_EMPLOYER_YEAR,
        PERSON_YEAR,
        episodes(reference_day),
        EPISODE_YEARS,
        PERSON_ABSENCE,
        EMPLOYMENT_ABSENCE,
        INSURED_YEARS,
        care_years(),
        survey_years(),
        FWG_CODES,
        ANNUAL_REPORT_YEARS,
        person_model(payroll_years),
        ORGANISATION_MODEL,
    ]
    for sql in steps:
        run(con, sql)
    linked_dir.mkdir(parents=True, exist_ok=True)
    workforce = linked_dir / WORKFORCE_MODEL_FILE
    write_parquet(con, workforce_model(payroll_years), workforce)
    counts = {
        "person_model": scalar(con, "SELECT count(*) FROM person_model"),
        "workforce_model": pq.read_metadata(workforce).num_rows,
        "organisation_model": scalar(con, "SELECT count(*) FROM organisation_model"),
    }
    print(
        f"  person model {counts['person_model']} rows, workforce model {counts['workforce_model']} rows, "
        f"organisation model {counts['organisation_model']} rows"
    )
    return counts


# ---------------------------------------------------------------------------
# Stage 3: export (crates/koppel-export with the preventieplan rules)
# ---------------------------------------------------------------------------

PERSON_K = 10
MAX_SUPPRESSION_PCT = 5.0
ORG_MIN_PERSONS = 10
ORG_K = 10
TABLE_THRESHOLD = 10


def fmt_bound(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def band_sql(value: str, bounds: list) -> str:
    """organisation.rs `band_label`: "lo-hi" (half open), the last "lo+",
    anything below the first bound in the first class."""
    def name(i: int) -> str:
        if i + 1 == len(bounds):
            return f"{fmt_bound(bounds[i])}+"
        return f"{fmt_bound(bounds[i])}-{fmt_bound(bounds[i + 1])}"

    cases = " ".join(f"WHEN {value} >= {bounds[i]} THEN {literal(name(i))}" for i in range(len(bounds) - 1, 0, -1))
    return f"CASE WHEN {value} IS NULL THEN NULL {cases} ELSE {literal(name(0))} END"


def class_sql(value: str, bounds: list) -> str:
    """hierarchy.rs `class_label`: "<lo", "lo-(next-1)", the last "lo+"."""
    cases = []
    for i in range(len(bounds) - 1, -1, -1):
        label = f"{bounds[i]}+" if i == len(bounds) - 1 else f"{bounds[i]}-{bounds[i + 1] - 1}"
        cases.append(f"WHEN {value} >= {bounds[i]} THEN {literal(label)}")
    return f"CASE WHEN {value} IS NULL THEN NULL {' '.join(cases)} ELSE {literal(f'<{bounds[0]}')} END"


def width_band_sql(value: str, width: int) -> str:
    """hierarchy.rs `band_label`: bands aligned to multiples of the width."""
    lo = f"(CAST(floor({value} / {width}) AS BIGINT) * {width})"
    return f"(CAST({lo} AS VARCHAR) || '-' || CAST({lo} + {width - 1} AS VARCHAR))"


# hierarchy.rs `province`: the two-digit region ({pc2}) per province.
PROVINCES = (
    ("Noord-Holland", "{pc2} BETWEEN 10 AND 12 OR {pc2} BETWEEN 14 AND 21"),
    ("Flevoland", "{pc2} IN (13, 82, 83)"),
    ("Zuid-Holland", "{pc2} BETWEEN 22 AND 33 OR {pc2} = 42"),
    ("Utrecht", "{pc2} BETWEEN 34 AND 39"),
    ("Gelderland", "{pc2} IN (40, 41) OR {pc2} BETWEEN 65 AND 73"),
    ("Zeeland", "{pc2} BETWEEN 43 AND 45"),
    ("Noord-Brabant", "{pc2} BETWEEN 46 AND 57"),
    ("Limburg", "{pc2} BETWEEN 58 AND 64"),
    ("Overijssel", "{pc2} BETWEEN 74 AND 77 OR {pc2} IN (80, 81)"),
    ("Drenthe", "{pc2} IN (78, 79, 93, 94)"),
    ("Friesland", "{pc2} BETWEEN 84 AND 92"),
    ("Groningen", "{pc2} BETWEEN 95 AND 99"),
)


def province_sql(postcode: str) -> str:
    """The province of a postcode4; regions outside the map are null."""
    pc2 = f"({postcode} // 100)"
    cases = " ".join(f"WHEN {cond.format(pc2=pc2)} THEN {literal(name)}" for name, cond in PROVINCES)
    return f"(CASE {cases} END)"


@dataclass(frozen=True)
class QuasiIdentifier:
    column: str
    weight: float
    labels: tuple  # SQL label per level below the suppressed top


# config.rs default_quasi_identifiers, with hierarchy.rs's labels per level.
QUASI_IDENTIFIERS = (
    # Bands of 5 and 10 years; age and sector weigh double.
    QuasiIdentifier("age", 2.0, ("CAST(age AS VARCHAR)", width_band_sql("age", 5), width_band_sql("age", 10))),
    QuasiIdentifier("sex", 1.0, ("sex",)),
    # Postcode4 → "12xx" region → province.
    QuasiIdentifier(
        "postcode4",
        1.0,
        ("CAST(postcode4 AS VARCHAR)", "CAST(postcode4 // 100 AS VARCHAR) || 'xx'", province_sql("postcode4")),
    ),
    QuasiIdentifier("sector", 2.0, ("sector",)),
    # Function code → band of its FWG level.
    QuasiIdentifier("fwg_function_code", 1.0, ("fwg_function_code", f"'FWG ' || {width_band_sql('fwg_level', 10)}")),
    # Main employer's headcount → size classes, then coarser ones.
    QuasiIdentifier(
        "organisation_size",
        1.0,
        (
            class_sql("organisation_size", [0, 50, 100, 250, 500, 1000, 2500]),
            class_sql("organisation_size", [0, 100, 500, 2500]),
        ),
    ),
    QuasiIdentifier("contract_type", 1.0, ("contract_type",)),
)


def qi_column(q: int, level: int) -> str:
    return f"q{q}_l{level}"


def create_person_levels(con) -> None:
    """person_levels: every person row with its quasi-identifiers' label at
    every level (NULL: unknown, or no label at that level). The size class
    is the main employer's headcount that year."""
    cols = ",\n    ".join(
        f"{expr} AS {qi_column(q, level)}"
        for q, qi in enumerate(QUASI_IDENTIFIERS)
        for level, expr in enumerate(qi.labels)
    )
    run(
        con,
        f"""CREATE TABLE person_levels AS
        SELECT person_p2, year, {cols}
        FROM (SELECT p.*, o.headcount AS organisation_size
              FROM person_model p
              LEFT JOIN organisation_model o ON o.org_p2 = p.org_p2 AND o.year = p.year)""",
    )


def node_columns(node: tuple) -> list:
    """The label columns of a lattice node; a suppressed level puts every
    row in one null class, so it drops out of the grouping."""
    return [qi_column(q, l) for q, l in enumerate(node) if l < len(QUASI_IDENTIFIERS[q].labels)]


class BaseClasses:
    """The person rows reduced once to base classes: distinct combinations
    of the year and every level's label, with their row count. Labels are
    coded as small integers (null a code of its own: it is a class too), so
    that a node's classes are one GROUP BY on a single packed BIGINT key."""

    def __init__(self, con):
        self.con = con
        columns = ["year"] + [
            qi_column(q, level) for q, qi in enumerate(QUASI_IDENTIFIERS) for level in range(len(qi.labels))
        ]
        codes = ", ".join(f"CAST(dense_rank() OVER (ORDER BY {c}) - 1 AS BIGINT) AS {c}" for c in columns)
        run(
            con,
            f"""CREATE TEMP TABLE base_classes AS SELECT {codes}, n
            FROM (SELECT {", ".join(columns)}, count(*) AS n FROM person_levels GROUP BY ALL)""",
        )
        maxima = run(con, f"SELECT {', '.join(f'max({c})' for c in columns)} FROM base_classes")[0]
        self.radix = {c: int(m) + 1 for c, m in zip(columns, maxima)}

    def key(self, node: tuple) -> str:
        """The classes of a node as one integer (a mixed-radix number), or
        the column list when the product would not fit in 63 bits."""
        columns = ["year"] + node_columns(node)
        if np.prod([float(self.radix[c]) for c in columns]) >= 2.0**62:
            return ", ".join(columns)
        key = columns[0]
        for c in columns[1:]:
            key = f"({key}) * {self.radix[c]} + {c}"
        return key

    def unsafe_rows(self, node: tuple) -> int:
        """Rows in classes smaller than k at this node (within a year)."""
        return scalar(
            self.con,
            f"SELECT COALESCE(sum(s) FILTER (WHERE s < {PERSON_K}), 0) "
            f"FROM (SELECT sum(n) AS s FROM base_classes GROUP BY {self.key(node)})",
        )


class Lattice:
    """The generalisation lattice of kanon.rs: a node is a level per
    quasi-identifier, numbered with the first varying fastest (as
    Lattice::node); its information loss is the weighted mean normalised
    height. Acceptable: at most `cap` rows in classes smaller than k.
    Acceptability is monotone, so each evaluation settles a whole cone."""

    def __init__(self, base: BaseClasses, cap: int):
        levels = np.array([len(qi.labels) + 1 for qi in QUASI_IDENTIFIERS])
        weights = np.array([qi.weight for qi in QUASI_IDENTIFIERS])
        count = int(np.prod(levels))
        self.nodes = np.array(np.unravel_index(np.arange(count), levels[::-1])[::-1]).T
        self.loss = (self.nodes / (levels - 1) * weights).sum(axis=1) / weights.sum()
        self.status = np.zeros(count, dtype=np.int8)  # 1 acceptable, -1 not, 0 unknown
        self.unsafe: dict[int, int] = {}
        self.base, self.cap = base, cap

    def node(self, i: int) -> tuple:
        return tuple(int(x) for x in self.nodes[i])

    def count(self, i: int) -> int:
        """Unsafe rows of node i: one GROUP BY, settling its cone."""
        if i not in self.unsafe:
            self.unsafe[i] = self.base.unsafe_rows(self.node(i))
            if self.status[i] == 0:
                ok = self.unsafe[i] <= self.cap
                cone = (self.nodes >= self.nodes[i]) if ok else (self.nodes <= self.nodes[i])
                self.status[(self.status == 0) & cone.all(axis=1)] = 1 if ok else -1
        return self.unsafe[i]

    def acceptable(self, i: int) -> bool:
        if self.status[i] == 0:
            self.count(i)
        return self.status[i] == 1

    def any_acceptable_up_to(self, loss: float) -> bool:
        """Whether some node with at most this loss is acceptable: then one
        of the maximal nodes among them is (acceptability is upward closed),
        so only those are looked at, the already settled first."""
        within = np.flatnonzero(self.loss <= loss + 1e-9)
        points = self.nodes[within]
        above = (points[None, :, :] >= points[:, None, :]).all(axis=2)
        maximal = within[above.sum(axis=1) == 1]
        return any(self.acceptable(i) for i in sorted(maximal, key=lambda i: -self.status[i]))

    def search(self) -> tuple:
        """kanon.rs's winner: the least loss among acceptable nodes, then the
        fewest unsafe rows, then the lowest node. The least loss is found by
        bisecting over the distinct losses (fewer evaluations than kanon.rs's
        middle-out order; the same node)."""
        losses = np.unique(np.round(self.loss, 9))
        lo, hi = 0, len(losses) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.any_acceptable_up_to(losses[mid]):
                hi = mid
            else:
                lo = mid + 1
        if not self.any_acceptable_up_to(losses[lo]):
            fail("k-anonymity: not even full suppression is acceptable")
        ties = [i for i in np.flatnonzero(np.abs(self.loss - losses[lo]) <= 1e-9) if self.acceptable(i)]
        best = min(ties, key=lambda i: (self.count(i), self.node(i)))
        return self.node(best), float(self.loss[best])


def lattice_search(base: BaseClasses, rows: int) -> dict:
    lattice = Lattice(base, int(np.floor(MAX_SUPPRESSION_PCT / 100.0 * rows)))
    node, loss = lattice.search()
    return {
        "levels": list(node),
        "information_loss": loss,
        "lattice_size": len(lattice.nodes),
        "nodes_evaluated": len(lattice.unsafe),
    }


def local_suppression(con, node: tuple) -> dict:
    """kanon.rs `suppress`: rows in unsafe classes get every quasi-identifier
    nulled and join the year's all-null class; if that class is itself
    smaller than k, its rows are left out."""
    chosen = node_columns(node)
    labels = ", ".join(
        f"{qi_column(q, l) if l < len(qi.labels) else 'CAST(NULL AS VARCHAR)'} AS qi{q}"
        for q, (qi, l) in enumerate(zip(QUASI_IDENTIFIERS, node))
    )
    all_null = " AND ".join(f"{c} IS NULL" for c in chosen) or "TRUE"
    group = ", ".join(["year"] + chosen)
    run(
        con,
        f"""CREATE TABLE person_release AS
        WITH classes AS (
            SELECT person_p2, year, {labels}, {all_null} AS natural_null,
                count(*) OVER (PARTITION BY {group}) < {PERSON_K} AS unsafe
            FROM person_levels
        ), null_class AS (
            SELECT *, count(*) FILTER (WHERE unsafe OR natural_null) OVER (PARTITION BY year) AS null_rows
            FROM classes
        )
        SELECT *, (unsafe OR natural_null) AND null_rows < {PERSON_K} AS dropped,
            unsafe AND NOT natural_null AND null_rows >= {PERSON_K} AS suppressed
        FROM null_class"""
    )
    # The final recount: classes of the released rows, suppressed ones in
    # their year's all-null class.
    released_key = ", ".join(f"CASE WHEN suppressed THEN NULL ELSE qi{q} END" for q in range(len(node)))
    counts = run(
        con,
        f"""SELECT (SELECT count(*) FROM person_release WHERE NOT dropped),
            (SELECT count(*) FROM person_release WHERE suppressed),
            (SELECT count(*) FROM person_release WHERE dropped),
            count(*), min(n)
        FROM (SELECT count(*) AS n FROM person_release WHERE NOT dropped GROUP BY year, {released_key})""",
    )[0]
    names = ("rows_released", "rows_locally_suppressed", "rows_dropped", "classes", "smallest_class")
    return dict(zip(names, counts))


ORG_RESTS_ON = {
    "mean_irregularity_share": "n_irregularity_share",
    "ggz_share_insured": "n_izz_insured",
    "physio_share_insured": "n_izz_insured",
    "mean_physical_load": "n_fwg",
    "mean_mental_load": "n_fwg",
    "mean_injury_risk": "n_fwg",
    "adverse_conditions_share": "n_fwg",
}
ORG_STATISTICS = (
    "fte",
    "mean_age",
    "temporary_share",
    "on_call_share",
    "mean_irregularity_share",
    "inflow_rate",
    "outflow_rate",
    "absence_pct",
    "absence_days",
    "available_days",
    "episode_frequency",
    "izz_coverage",
    "ggz_share_insured",
    "physio_share_insured",
    "mean_physical_load",
    "mean_mental_load",
    "mean_injury_risk",
    "adverse_conditions_share",
)
MONEY = [0, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000]
# config.rs OrganisationRules::default(): ("classes", bounds) or ("round", to).
ORG_BANDED = {
    "headcount": ("classes", [0, 50, 100, 250, 500, 1000, 2500, 5000]),
    "fte": ("round", 25),
    "n_irregularity_share": ("round", 5),
    "n_izz_insured": ("round", 5),
    "n_fwg": ("round", 5),
    "absence_days": ("round", 100),
    "available_days": ("round", 1000),
    "revenue_keur": ("classes", MONEY),
    "personnel_cost_keur": ("classes", MONEY),
    "overhead_pct": ("round", 5),
    "annual_report_fte": ("classes", [0, 50, 100, 250, 500, 1000, 2500]),
    "result_keur": ("classes", [-1e12, -1_000, -100, 0, 100, 1_000, 10_000]),
}


def organisation_columns(con) -> list:
    """The released columns of the organisation file, in the model's order,
    each statistic followed by its status."""
    names = [r[0] for r in run(con, "DESCRIBE organisation_model")]
    out = []
    for name in names:
        if name in ("org_p2", "year"):
            continue
        value = name
        if name in ORG_STATISTICS:
            n = ORG_RESTS_ON.get(name, "headcount")
            safe = f"({name} IS NOT NULL AND {n} IS NOT NULL AND {n} >= {ORG_K})"
            value = f"CASE WHEN {safe} THEN {name} END"
            status = (
                f"CASE WHEN {name} IS NULL THEN 'empty' WHEN NOT {safe} THEN 'primary_threshold' ELSE 'safe' END"
            )
        kind, arg = ORG_BANDED.get(name, (None, None))
        if kind == "round":
            value = f"round(CAST({value} AS DOUBLE) / {arg}) * {arg}"
        elif kind == "classes":
            value = band_sql(f"CAST({value} AS DOUBLE)", arg)
        out.append(f"{value} AS {name}")
        if name in ORG_STATISTICS:
            out.append(f"{status} AS {name}_status")
    return out


def release_organisations(con, out: Path) -> dict:
    columns = ",\n    ".join(organisation_columns(con))
    run(
        con,
        f"""CREATE TABLE organisation_release AS
        SELECT o.org_p2, org_research_id(k.p2) AS org_id, o.year, {columns}
        FROM organisation_model o JOIN org_keys k ON k.id = o.org_p2
        WHERE o.headcount >= {ORG_MIN_PERSONS}"""
    )
    query = "SELECT * EXCLUDE (org_p2) FROM organisation_release ORDER BY org_id, year"
    write_parquet(con, query, out / "organisations.parquet")
    suppressed = {
        s: scalar(con, f"SELECT count(*) FROM organisation_release WHERE {s}_status = 'primary_threshold'")
        for s in ORG_STATISTICS
    }
    released = scalar(con, "SELECT count(*) FROM organisation_release")
    return {"rows_released": released, "suppressed": suppressed}


def release_persons(con, out: Path, node: tuple) -> None:
    """persons.parquet: research IDs, the quasi-identifiers at the chosen
    level (null where locally suppressed), the FWG level withheld when the
    function code is generalised, dropped rows left out."""
    names = [r[0] for r in run(con, "DESCRIBE person_model")]
    position = {qi.column: q for q, qi in enumerate(QUASI_IDENTIFIERS)}
    fwg = position["fwg_function_code"]
    withheld = {"fwg_level"} if node[fwg] > 0 else set()
    size = position["organisation_size"]
    columns = []
    for name in names:
        if name in ("person_p2", "org_p2", "year") or name in withheld:
            continue
        if name in position:
            columns.append(f"CASE WHEN r.suppressed THEN NULL ELSE r.qi{position[name]} END AS {name}")
        else:
            columns.append(f"p.{name}")
    # Research IDs once per person, not per person-year.
    run(
        con,
        """CREATE TEMP TABLE person_ids AS SELECT id, person_research_id(p2) AS person_id
        FROM person_keys WHERE id IN (SELECT person_p2 FROM person_model)""",
    )
    query = f"""SELECT pk.person_id, p.year,
            CASE WHEN o.org_p2 IS NOT NULL THEN o.org_id END AS org_id,
            CASE WHEN r.suppressed THEN NULL ELSE r.qi{size} END AS organisation_size,
            {", ".join(columns)}
        FROM person_model p
        JOIN person_release r ON r.person_p2 = p.person_p2 AND r.year = p.year
        JOIN person_ids pk ON pk.id = p.person_p2
        LEFT JOIN organisation_release o ON o.org_p2 = p.org_p2 AND o.year = p.year
        WHERE NOT r.dropped
        ORDER BY person_id, year"""
    write_parquet(con, query, out / "persons.parquet")


def write_parquet(con, query: str, path: Path) -> None:
    # zstd and row groups of 65,536 rows, as koppel-export's release.rs.
    options = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536"
    run(con, f"COPY ({query}) TO {literal(str(path))} ({options})")


# ---- tables (config.rs default_tables, tabulate.rs, tables/mod.rs) --------


@dataclass(frozen=True)
class Dimension:
    column: str
    label: str  # SQL label of a value (NULL: no category)
    order: str  # SQL sort key of the label's values


def categorical(column: str) -> Dimension:
    return Dimension(column, f"CAST({column} AS VARCHAR)", column)


def age_band(width: int) -> Dimension:
    return Dimension("age", width_band_sql("age", width), "age")


def size_class() -> Dimension:
    return Dimension("headcount", class_sql("headcount", [0, 100, 500, 2500]), "headcount")


@dataclass(frozen=True)
class TableSpec:
    name: str
    model: str  # person or organisation
    dimensions: tuple
    measures: tuple = ()
    only_where: str | None = None
    ratio: tuple | None = None  # (name, numerator, denominator, scale)


TABLES = (
    TableSpec(
        "leavers_by_sector_age_contract",
        "person",
        (categorical("sector"), age_band(10), categorical("contract_type"), categorical("left_sector")),
    ),
    TableSpec(
        "absence_by_sector_size",
        "organisation",
        (categorical("year"), categorical("sector"), size_class()),
        ("absence_days", "available_days"),
        ratio=("absence_pct", "absence_days", "available_days", 100.0),
    ),
    TableSpec(
        "ggz_use_by_sector_age",
        "person",
        (categorical("sector"), age_band(10), categorical("ggz_any")),
        only_where="izz_insured",
    ),
    TableSpec(
        "absence_days_by_sector_contract",
        "person",
        (categorical("year"), categorical("sector"), categorical("contract_type")),
        ("absence_days",),
        only_where="on_payroll",
    ),
    TableSpec(
        "care_cost_by_sector_age",
        "person",
        (categorical("sector"), age_band(10)),
        ("ggz_cost_eur", "physio_cost_eur"),
        only_where="izz_insured",
    ),
)


def release_table(con, spec: TableSpec, out: Path) -> dict:
    """Tabulates one table with every margin and applies the threshold rule.
    Categories come from every model row (hierarchy.rs `generalise`), cells
    from the selected rows with all dimensions known; contributors are
    distinct persons or organisations."""
    model = f"{spec.model}_model"
    contributor = "person_p2" if spec.model == "person" else "org_p2"
    dims = [f"d{i}" for i in range(len(spec.dimensions))]
    labels = ", ".join(f"{d.label} AS {n}" for d, n in zip(spec.dimensions, dims))
    # An unknown or negative magnitude contributes nothing (tabulate.rs).
    measures = "".join(
        f", greatest(COALESCE(CAST({m} AS DOUBLE), 0), 0) AS m{j}" for j, m in enumerate(spec.measures)
    )
    where = f"WHERE {spec.only_where}" if spec.only_where else ""
    known = " AND ".join(f"{n} IS NOT NULL" for n in dims)
    run(
        con,
        f"""CREATE OR REPLACE TEMP TABLE tab_rows AS
        SELECT {contributor} AS contributor, {labels}{measures} FROM {model} {where}""",
    )
    for i, (d, n) in enumerate(zip(spec.dimensions, dims)):
        # Categories in the order of their values; the total last.
        run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE cat{i} AS
            SELECT label, row_number() OVER (ORDER BY first_value) AS ord FROM (
                SELECT {d.label} AS label, min({d.order}) AS first_value FROM {model} GROUP BY ALL
            ) WHERE label IS NOT NULL
            UNION ALL SELECT 'Total', 1e9"""
        )
    cube_labels = ", ".join(f"CASE WHEN grouping({n}) = 1 THEN 'Total' ELSE {n} END AS {n}" for n in dims)
    sums = "".join(f", sum(m{j}) AS s{j}" for j in range(len(spec.measures)))
    grid = " CROSS JOIN ".join(f"cat{i} c{i}" for i in range(len(dims)))
    on = " AND ".join(f"t.{n} = c{i}.label" for i, n in enumerate(dims))
    run(
        con,
        f"""CREATE OR REPLACE TEMP TABLE tab_cells AS
        WITH cube AS (
            SELECT {cube_labels}, count(DISTINCT contributor) AS contributors, count(*) AS n{sums}
            FROM tab_rows WHERE {known} GROUP BY CUBE ({", ".join(dims)})
        )
        SELECT {", ".join(f"c{i}.label AS {n}, c{i}.ord AS o{i}" for i, n in enumerate(dims))},
            COALESCE(t.contributors, 0) AS contributors, COALESCE(t.n, 0) AS n
            {"".join(f", COALESCE(t.s{j}, 0) AS s{j}" for j in range(len(spec.measures)))},
            CASE WHEN COALESCE(t.contributors, 0) = 0 THEN 'empty'
                 WHEN t.contributors < {TABLE_THRESHOLD} THEN 'primary_threshold'
                 ELSE 'safe' END AS status
        FROM {grid} LEFT JOIN cube t ON {on}"""
    )
    write_parquet(con, table_layout(spec, dims), out / f"table-{spec.name}.parquet")
    return table_counts(con, known)


def table_layout(spec: TableSpec, dims: list) -> str:
    """tabulate.rs `lay_out`: labels, the count, measure sums and the ratio,
    null where suppressed; row-major, each dimension's total last."""
    count_name = "person_years" if spec.model == "person" else "organisation_years"
    published = "status <> 'primary_threshold'"
    cols = [f"{n} AS {d.column}" for n, d in zip(dims, spec.dimensions)]
    cols.append(f"CASE WHEN {published} THEN CAST(n AS BIGINT) END AS {count_name}")
    cols += [f"CASE WHEN {published} THEN s{j} END AS {m}_sum" for j, m in enumerate(spec.measures)]
    if spec.ratio:
        name, num, den, scale = spec.ratio
        n, d = spec.measures.index(num), spec.measures.index(den)
        cols.append(f"CASE WHEN {published} AND s{d} > 0 THEN s{n} / s{d} * {scale} END AS {name}")
    cols.append("status")
    order = ", ".join(f"o{i}" for i in range(len(dims)))
    return f"SELECT {', '.join(cols)} FROM tab_cells ORDER BY {order}"


def table_counts(con, known: str) -> dict:
    tabulated = scalar(con, f"SELECT count(*) FROM tab_rows WHERE {known}")
    status = dict(run(con, "SELECT status, count(*) FROM tab_cells GROUP BY status ORDER BY status"))
    cells = sum(status.values())
    return {"rows_tabulated": tabulated, "cells": cells, "status": status}


def export(con, out: Path, release_key: bytes) -> dict:
    """Disclosure control and the release files, in koppel-export's order:
    organisations (whose released rows decide the person file's org_id),
    persons, tables."""
    for kind, prefix, name in (("bsn", "P-", "person_research_id"), ("kvk", "O-", "org_research_id")):
        con.create_function(
            name,
            research_id_udf(release_key, kind, prefix),
            [duckdb.sqltypes.BLOB],
            duckdb.sqltypes.VARCHAR,
            type="arrow",
            side_effects=True,
        )
    organisations = release_organisations(con, out)
    rows_in = scalar(con, "SELECT count(*) FROM person_model")
    create_person_levels(con)
    search = lattice_search(BaseClasses(con), rows_in)
    persons = {"rows_in": rows_in, **search, **local_suppression(con, tuple(search["levels"]))}
    release_persons(con, out, tuple(search["levels"]))
    print(
        f"  persons: levels {search['levels']}, k reached {persons['smallest_class']}, "
        f"{persons['rows_locally_suppressed']} rows suppressed, "
        f"{search['nodes_evaluated']} of {search['lattice_size']} nodes evaluated",
        flush=True,
    )
    tables = {spec.name: release_table(con, spec, out) for spec in TABLES}
    return {"person": persons, "organisation": organisations, "tables": tables}


# ---------------------------------------------------------------------------
# Checks against Koppel's release
# ---------------------------------------------------------------------------


def koppel_workforce_rows(koppel_linked: Path) -> int:
    """The workforce model's rows in Koppel's linkage report of the
    reference run (bench/run.sh keeps that run's linked folder as
    koppel-linked/). The release's copy of the report rounds counts to
    tens, and the disclosure report's population_rows adds respondents off
    the payroll, so neither gives the exact count."""
    path = koppel_linked / "linkage-report.json"
    try:
        rows = json.loads(path.read_text())["workforce_model_rows"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"no workforce model row count to check against in {path}: {e!r}")
    return rows


def check_against(reference: Path, koppel_linked: Path, out: Path, linked: dict, released: dict) -> dict:
    """Expected (Koppel's disclosure report; its linkage report for the
    workforce model) against got, per check; the counts the brief requires
    to agree are marked required."""
    report = json.loads((reference / "disclosure-report.json").read_text())
    ref_person, ref_org = report["person"], report["organisation"]
    person, organisation = released["person"], released["organisation"]
    persons_released = pq.read_metadata(out / "persons.parquet").num_rows
    rows = [
        ("person.rows_in", ref_person["rows_in"], linked["person_model"], True),
        ("workforce.rows", koppel_workforce_rows(koppel_linked), linked["workforce_model"], True),
        # Koppel protects the person file against declared recipients
        # (koppel-disclosure, issue 21); this peer still applies the earlier
        # k-anonymity, so its person file is compared, not required equal.
        ("person.rows_released", ref_person["rows_released"], persons_released, False),
        ("organisation.rows_in", ref_org["rows_in"], linked["organisation_model"], True),
        ("organisation.rows_released", ref_org["rows_released"], organisation["rows_released"], True),
    ]
    for t in report["tables"]:
        mine = released["tables"].get(t["name"], {})
        # Koppel's person tables count the released (protected) person
        # file's rows since issue 21; this peer tabulates the model, so
        # those are compared, not required equal.
        required = t.get("model") != "person"
        rows.append((f"table.{t['name']}.rows_tabulated", t["rows_tabulated"], mine.get("rows_tabulated"), required))
    rows += [
        ("person.k_reached", ref_person.get("smallest_class"), person["smallest_class"], False),
        ("person.rows_locally_suppressed", ref_person["rows_locally_suppressed"],
         person["rows_locally_suppressed"], False),
        ("person.rows_dropped", ref_person["rows_dropped"], person["rows_dropped"], False),
    ]
    for qi, level in zip(ref_person["quasi_identifiers"], person["levels"]):
        rows.append((f"person.level.{qi['column']}", qi["level"], level, False))
    rows.append(("organisation.statistics_suppressed", ref_org["suppressed"], organisation["suppressed"], False))
    for t in report["tables"]:
        mine = released["tables"].get(t["name"], {}).get("status", {})
        expected = t["status"].get("primary_threshold", 0)
        rows.append((f"table.{t['name']}.primary_threshold", expected, mine.get("primary_threshold", 0), False))
    return {
        name: {"expected": expected, "got": got, "required": required, "ok": expected == got}
        for name, expected, got, required in rows
    }


# ---------------------------------------------------------------------------


def connect(work: Path, threads: int, memory_limit: str):
    work.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(work / "peer.duckdb"))
    run(con, f"SET threads = {threads}")
    run(con, f"SET memory_limit = {literal(memory_limit)}")
    run(con, f"SET temp_directory = {literal(str(work / 'tmp'))}")
    # Nothing relies on the order rows were inserted in (every file is
    # written with an ORDER BY); without it large loads need less memory.
    run(con, "SET preserve_insertion_order = false")
    # DataFusion's (and PostgreSQL's) null order, which the ORDER BYs of
    # sql.rs assume: NULLS LAST ascending, NULLS FIRST descending.
    run(con, "SET default_null_order = 'nulls_last_on_asc_first_on_desc'")
    return con


def run_stages(con, args) -> tuple:
    """The three timed stages: wall seconds per stage, model row counts and
    what the export released."""
    stages = {}
    started = time.perf_counter()
    deliveries = discover(args.deliveries)
    print(f"read and pseudonymise: {len(deliveries)} deliveries", flush=True)
    read_and_pseudonymise(con, deliveries, os.urandom(32))
    left = p1_left(con)
    if left:
        fail(f"stage-1 pseudonyms remain after stage 2: {', '.join(left)}")
    stages["read_pseudonymise"] = time.perf_counter() - started

    started = time.perf_counter()
    print("link", flush=True)
    linked = link(con, args.out / "linked")
    stages["link"] = time.perf_counter() - started

    started = time.perf_counter()
    print("export", flush=True)
    released = export(con, args.out, os.urandom(32))
    stages["export"] = time.perf_counter() - started
    return stages, linked, released


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument(
        "--koppel-linked",
        type=Path,
        help="Koppel's linked models of the reference run, for the workforce model's row count "
        "(default: koppel-linked beside --reference, bench/run.sh's cache layout)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB's memory_limit (default 2GB)")
    args = parser.parse_args()
    if args.koppel_linked is None:
        args.koppel_linked = args.reference.parent / "koppel-linked"

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / ".duckdb-work"
    con = connect(work, args.threads, args.memory_limit)
    try:
        stages, linked, released = run_stages(con, args)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)

    checks = check_against(args.reference, args.koppel_linked, args.out, linked, released)
    print(json.dumps({"stages": stages, "checks": checks}))
    failed = [name for name, c in checks.items() if c["required"] and not c["ok"]]
    if failed:
        gaps = (f"{n}: expected {checks[n]['expected']}, got {checks[n]['got']}" for n in failed)
        fail("required checks failed: " + "; ".join(gaps))


if __name__ == "__main__":
    main()
