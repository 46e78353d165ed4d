"""The pandas peer of the sector benchmark: Koppel's run, as a data scientist
at a trusted third party would write it in pandas 3.

    python bench/peers/pandas_pipeline.py --deliveries DIR --reference DIR \
        [--koppel-linked DIR] --out DIR [--threads N]

It does the work of `koppel run` after unsealing, on the plain deliveries:

1. read_pseudonymise: every delivery (`<source>_<period>.csv|parquet`, the
   periods present are the periods processed) is read with
   `pd.read_csv(engine="pyarrow", dtype_backend="pyarrow")` (large files in
   pieces of 256 MB, see PIECE_BYTES) or `pd.read_parquet`, typed (dates as
   day numbers, as Arrow's date32; enums and codes as categoricals; nullable
   Int32) and validated row by row as the source specs in
   pipelines/sources/*.yaml say (required fields, integers, decimals in the
   source's notation, existing dates and months, enums, 4-digit codes, J/N
   booleans, ranges, "at least 14 in the period", "recovery not before the
   sick day", unique FWG codes); rejected rows are left out and a file with
   more rejects than its max_reject_fraction fails the run. Stage 2:
   P2 = HMAC-SHA256(K2, type || 0x00 || P1 bytes) with type the lowercase
   "bsn"/"kvk" of koppel-ingest's IdentifierType::as_str (the brief says
   "BSN"/"KVK"; pseudonym.rs is followed), K2 = os.urandom(32). Each distinct
   P1 is hashed once (pd.factorize per piece, once more over all of them) and
   mapped back; identifiers then live on as int32 codes equal to the rank of
   their P2 among all P2 of that type, so integer order is pseudonym order
   (the main-employer tie-break "lowest pseudonym" is an integer compare).
   The P2 themselves are kept once per distinct value (32 bytes each) for the
   research IDs; no hex string, P1 or P2, stays in the frames.
2. link: the person, workforce and organisation models with the definitions
   of crates/koppel-join/src/sql.rs, step for step (payroll_rows -> pe -> py,
   episodes -> episode_years -> person/employment absence, insured_years,
   care_years, survey_years, fwg_codes, annual_report_years), as groupby /
   merge / np.where. The person model (survey respondents) and the workforce
   model (every row of py: one row per person x year on the payroll, the
   population Koppel's disclosure engine measures risk against) take their
   columns from one definition, person_year_facts, as sql.rs does. The
   workforce model is written to --out/linked/workforce_model.parquet in
   this stage, as Koppel writes it in its link stage (the peer's integer
   ids for pseudonyms, as in its other models), and not kept in memory.
   Sums that sql.rs takes over exact decimals are taken over integers here
   (hours in 1/10,000, money in cents), so they are exact
   too, and DataFusion's decimal average of the irregularity share is cut off
   after ten decimals as it does. Reference date 2024-12-31 (pipelines/preventieplan.yaml); payroll
   years are the years of the payroll periods, as in lib.rs.
3. export: crates/koppel-export with pipelines/preventieplan.yaml's rules
   (person k = 10, max_suppression_pct 5, the rest config.rs defaults):
   - organisations: at least 10 persons, statistics resting on fewer than 10
     persons suppressed with a status column, banding and rounding
     (organisation.rs);
   - persons: research IDs ("P-"/"O-" + 26 base32 characters of
     HMAC(KR, type || 0x00 || P2), KR random), k-anonymity within each year
     over the seven quasi-identifiers with hierarchy.rs's hierarchies, over a
     pre-aggregated frame of base classes, one groupby per lattice node;
     kanon.rs's search order, cone inference, acceptability (unsafe rows <=
     floor(5% of rows)), weighted Prec loss and tie-breaks (fewer suppressed
     rows, then the lowest node), then local suppression and the all-null
     class rule;
   - the five default tables (config.rs default_tables): every cell of the
     extended table (all margins), distinct contributors and rows per cell,
     and the threshold rule (fewer than 10 contributors: primary_threshold).
   Parquet is written with DataFrame.to_parquet (pyarrow, zstd level 3, row
   groups of 65,536 rows, as release.rs).

Deliberate differences from Koppel:
- Persons: the earlier k-anonymity above, not Koppel's attacker-aware
  disclosure engine (koppel-disclosure, issue 21), which protects the
  person file against declared recipients measured on the workforce model.
  The workforce model is built and written as Koppel does, but nothing here
  reads it back.
- Tables get primary suppression by the threshold rule only: no dominance or
  p% rule, no secondary suppression, no audit. Cells Koppel suppresses for
  dominance or as secondary are "safe" here.
- Only the Parquet files the brief names and the workforce model are
  written: no CSV twins of the tables, codebook, disclosure report,
  manifest, SHA256SUMS, leak guard or linkage report. Stage-1 (raw
  identifier) deliveries are refused.
- Types are left to pyarrow's inference (on its first 1 MB block) except for
  text-like columns, as pandas' pyarrow engine does; a malformed value further
  down a column then fails the read instead of rejecting one row.

Memory: the payroll (36.8 million rows at full scale) is the only large
frame. Its text is typed piece by piece, so the 64-character pseudonyms of
no more than one piece exist at a time; the "latest" quantities per payroll
row are packed into int32; large frames are built with copy=False so pandas
does not copy fresh arrays into consolidated blocks.

Stdout's last line is {"stages": {...}, "checks": {...}}; a check marked
required that fails makes the exit status 1. The checks compare with the
disclosure report of Koppel's release of the same deliveries (--reference)
and the workforce model's row count with Koppel's linkage report of that
run (--koppel-linked, by default koppel-linked/ beside --reference; the
release's copy of the report rounds its counts).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals

# --------------------------------------------------------------------------
# The source specs (pipelines/sources/*.yaml) and the pipeline's settings
# --------------------------------------------------------------------------

SECTORS = ("VVT", "ZKH", "GGZ", "GHZ", "JZ", "SW", "KO", "HA")
CONTRACTS = ("VAST", "TIJDELIJK", "OPROEP")  # latest_contract's rank order
CARE_TYPES = {"GGZ": "ggz", "FYSIO": "physio", "HUISARTS": "gp", "MSZ": "hospital", "FARMACIE": "pharmacy"}
SURVEY_SCALES = [
    "workload", "emotional_exhaustion", "engagement", "empowering_leadership", "learning_climate",
    "organisational_climate", "self_reported_absence", "work_related_absence", "intention_to_leave",
]
LONG_TERM_DAYS = 42
# koppel-join's WORKFORCE_MODEL_FILE, written under --out/linked/ (Koppel
# keeps it in its run's linked folder, never in the release).
WORKFORCE_MODEL_FILE = "workforce_model.parquet"
REFERENCE_DATE = np.datetime64("2024-12-31")  # pipelines/preventieplan.yaml
P1_PATTERN = r"[0-9a-f]{64}"
ID_COLUMN = {"bsn": "person", "employer_kvk": "org"}


@dataclass(frozen=True)
class Col:
    header: str
    name: str
    kind: str  # bsn kvk int dec date month enum bool (J/N text) pbool (Parquet) code text
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    values: tuple = ()
    digits: int = 0


@dataclass(frozen=True)
class SourceSpec:
    sep: str
    decimal: str
    date_format: str | None  # None: ISO, which pyarrow infers as date32
    max_reject: float
    columns: tuple
    parquet: bool = False


SPECS = {
    "pfzw_dienstverbanden": SourceSpec(";", ",", None, 0.01, (
        Col("BSN", "bsn", "bsn", True),
        Col("WERKGEVER_KVK", "employer_kvk", "kvk", True),
        Col("PERIODE", "period", "month", True),
        Col("GEBOORTEDATUM", "birth_date", "date", True),
        Col("GESLACHT", "sex", "enum", True, values=("M", "V", "X")),
        Col("POSTCODE4", "postcode4", "int", False, 1000, 9999),
        Col("CONTRACTSOORT", "contract_type", "enum", True, values=CONTRACTS),
        Col("UREN_PER_WEEK", "hours_per_week", "dec", True, 0, 60),
        Col("BRUTO_MAANDLOON", "gross_monthly_wage", "dec", True, 0),
        Col("ORT_BEDRAG", "irregularity_allowance", "dec", True, 0),
        Col("FWG_FUNCTIECODE", "fwg_function_code", "code", digits=4),
        Col("BRANCHE", "sector", "enum", True, values=SECTORS),
        Col("DATUM_IN_DIENST", "employment_start", "date", True),
        Col("DATUM_UIT_DIENST", "employment_end", "date"),
    )),
    "vernet_verzuimmeldingen": SourceSpec(";", ",", "%d-%m-%Y", 0.01, (
        Col("BSN", "bsn", "bsn", True),
        Col("KVK_NUMMER", "employer_kvk", "kvk", True),
        Col("ZIEKMELDING", "sick_from", "date", True),
        Col("HERSTELMELDING", "recovered_on", "date"),
        Col("VERZUIMPERCENTAGE", "absence_pct", "int", True, 1, 100),
    )),
    "izz_verzekerden": SourceSpec(",", ".", None, 0.01, (
        Col("bsn", "bsn", "bsn", True),
        Col("jaar", "year", "int", True, 2000, 2100),
    )),
    "izz_zorggebruik": SourceSpec(",", ".", None, 0.01, (
        Col("bsn", "bsn", "bsn", True),
        Col("jaar", "year", "int", True),
        Col("zorgsoort", "care_type", "enum", True, values=tuple(CARE_TYPES)),
        Col("declaraties", "claims", "int", True, 1),
        Col("kosten", "cost_eur", "dec", True, 0),
    )),
    "izz_monitor": SourceSpec("", ".", None, 0.01, (
        Col("bsn", "bsn", "bsn", True),
        Col("jaar", "year", "int", True),
        Col("werkdruk", "workload", "dec", False, 1, 5),
        Col("emotionele_uitputting", "emotional_exhaustion", "dec", False, 1, 5),
        Col("bevlogenheid", "engagement", "dec", False, 0, 6),
        Col("empowering_leiderschap", "empowering_leadership", "dec", False, 1, 5),
        Col("leerklimaat", "learning_climate", "dec", False, 1, 5),
        Col("organisatieklimaat", "organisational_climate", "dec", False, 1, 5),
        Col("verzuim_zelfgerapporteerd", "self_reported_absence", "pbool"),
        Col("verzuim_werkgerelateerd", "work_related_absence", "pbool"),
        Col("vertrekintentie", "intention_to_leave", "dec", False, 1, 5),
    ), parquet=True),
    "fwg_functiekenmerken": SourceSpec(";", ",", None, 0.0, (
        Col("FUNCTIECODE", "fwg_function_code", "code", True, digits=4),
        Col("FUNCTIENAAM", "function_title", "text", True),
        Col("FWG_NIVEAU", "fwg_level", "int", True, 10, 80),
        Col("FYSIEKE_BELASTING", "physical_load", "int", True, 1, 5),
        Col("PSYCHISCHE_BELASTING", "mental_load", "int", True, 1, 5),
        Col("RISICO_LETSEL", "injury_risk", "int", True, 1, 5),
        Col("BEZWARENDE_OMSTANDIGHEDEN", "adverse_conditions", "int", True, 0, 5),
        Col("ONREGELMATIG", "irregular_hours", "bool", True, values=("J", "N")),
    )),
    "intrakoop_jaarverslagen": SourceSpec(";", ",", None, 0.01, (
        Col("KVK", "employer_kvk", "kvk", True),
        Col("BOEKJAAR", "year", "int", True),
        Col("OMZET_KEUR", "revenue_keur", "dec", True, 0),
        Col("PERSONEELSKOSTEN_KEUR", "personnel_cost_keur", "dec", True, 0),
        Col("OVERHEAD_PCT", "overhead_pct", "dec", False, 0, 100),
        Col("FTE", "fte", "dec", True, 0),
        Col("LOCATIES", "locations", "int", False, 1),
        Col("RESULTAAT_KEUR", "result_keur", "dec"),
    )),
}


def log(message: str) -> None:
    """Progress, with the peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{message}  [peak RSS {peak:,.0f} MiB]", flush=True)


def day_number(date) -> int:
    return int((np.datetime64(date, "D") - np.datetime64("1970-01-01", "D")).astype(int))


# --------------------------------------------------------------------------
# Stage 2 pseudonyms: each distinct value hashed once, rows carry int codes
# --------------------------------------------------------------------------


class Pseudonyms:
    """Stage 2 for one identifier type over every delivery.

    register() gives each row a provisional code into its piece's distinct
    P1 values; finish() hashes every distinct P1 once and returns the map from
    provisional codes to final codes, the rank of the P2 among all P2."""

    def __init__(self, kind: str, key: bytes):
        self.prefix = kind.encode() + b"\x00"
        self.mac = hmac.new(key, digestmod=hashlib.sha256)
        self.parts: list[pd.Index] = []
        self.count = 0
        self.p2 = b""  # the sorted P2, 32 bytes each: code c is p2[32c:32c+32]

    def register(self, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Provisional codes (-1: missing or invalid) and the invalid mask."""
        codes, uniques = pd.factorize(column)
        valid = uniques.str.fullmatch(P1_PATTERN).to_numpy(dtype=bool, na_value=False)
        renumber = np.where(valid, self.count + np.cumsum(valid) - 1, -1)
        provisional = np.where(codes >= 0, renumber[codes], -1).astype(np.int32)
        self.parts.append(uniques[valid])
        self.count += int(valid.sum())
        return provisional, (codes >= 0) & (provisional < 0)

    def _hash(self, p1_hex: str) -> bytes:
        mac = self.mac.copy()
        mac.update(self.prefix + bytes.fromhex(p1_hex))
        return mac.digest()

    def finish(self) -> np.ndarray:
        distinct_of, distinct = pd.factorize(pd.Index(np.concatenate([p.to_numpy() for p in self.parts])))
        self.parts = []  # the last P1 values go here
        digests = b"".join(map(self._hash, distinct.tolist()))
        del distinct
        p2 = np.frombuffer(digests, dtype="S32")
        order = np.argsort(p2, kind="stable")
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        self.p2 = p2[order].tobytes()
        return rank[distinct_of]

    def research_ids(self, codes: pd.Series, key: bytes, prefix: str) -> pd.Series:
        """HMAC(KR, type || 0x00 || P2) cut to 128 bits, base32 without
        padding, for each distinct code once; null codes stay null."""
        mac = hmac.new(key, digestmod=hashlib.sha256)

        def rid(code: int) -> str:
            m = mac.copy()
            m.update(self.prefix + self.p2[32 * code: 32 * code + 32])
            return prefix + base64.b32encode(m.digest()[:16]).decode().rstrip("=")

        of_row, distinct = pd.factorize(codes)
        ids = np.array([rid(int(c)) for c in distinct] + [None], dtype=object)
        return pd.Series(ids[of_row], index=codes.index, dtype="str")


# --------------------------------------------------------------------------
# Stage 1: reading, typing and validating the deliveries
# --------------------------------------------------------------------------


def discover(folder: Path) -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".csv", ".parquet") or path.name.startswith("."):
            continue
        source, _, period = path.stem.rpartition("_")
        if source not in SPECS:
            raise SystemExit(f"pandas peer: {path.name} is not a delivery of a known source")
        found.setdefault(source, {})[period] = path
    missing = sorted(set(SPECS) - set(found))
    if missing:
        raise SystemExit(f"pandas peer: no deliveries of {', '.join(missing)} in {folder}")
    return found


def header_map(headers: list[str], spec: SourceSpec, path: Path) -> dict[str, Col]:
    """Delivered header -> column spec: case-insensitive, identifiers with
    the stage-1 suffix _P1; unknown or missing columns are errors."""
    wanted = {}
    for col in spec.columns:
        wanted[(col.header + "_P1" if col.kind in ("bsn", "kvk") else col.header).upper()] = col
    mapping = {}
    for h in headers:
        col = wanted.get(h.strip().upper())
        if col is None:
            raise SystemExit(f"pandas peer: {path.name}: unknown column {h!r} (raw identifiers are not supported)")
        mapping[h] = col
    absent = {c.name for c in spec.columns} - {c.name for c in mapping.values()}
    if absent:
        raise SystemExit(f"pandas peer: {path.name}: missing columns {sorted(absent)}")
    return mapping


# The payroll is read in pieces of about this many bytes: pyarrow's CSV
# reader needs some 2.5 times the table it builds, and a whole 3.7 GB payroll
# file would take over 10 GB; a piece's text is typed and let go before the
# next is read.
PIECE_BYTES = 256 << 20


def csv_pieces(path: Path, header: bytes):
    """The file's rows in pieces, each cut at a line end outside quotes (a
    quoted field may hold line breaks) and preceded by the header line."""
    with path.open("rb") as f:
        f.readline()
        while piece := f.read(PIECE_BYTES):
            parts = [header, piece, f.readline()]
            quotes = (piece.count(b'"') if b'"' in piece else 0) + parts[-1].count(b'"')
            while quotes % 2 and parts[-1]:
                parts.append(f.readline())
                quotes += parts[-1].count(b'"')
            yield pa.BufferReader(b"".join(parts))


def read_pieces(path: Path, spec: SourceSpec):
    """(delivered columns, header map) per piece of a delivery."""
    if spec.parquet:
        frame = pd.read_parquet(path, dtype_backend="pyarrow")
        yield frame, header_map(list(frame.columns), spec, path)
        return
    with path.open("rb") as f:
        header = f.readline().removeprefix(b"\xef\xbb\xbf")
    mapping = header_map(header.decode().rstrip("\r\n").split(spec.sep), spec, path)
    # Text-like columns are parsed as text (a code keeps its leading zeros);
    # numbers and dates are typed by pyarrow while it parses.
    text = {h: pd.ArrowDtype(pa.string()) for h, c in mapping.items() if c.kind in ("bsn", "kvk", "enum", "bool", "code", "text")}
    dates = [h for h, c in mapping.items() if c.kind == "date"] if spec.date_format else None
    for piece in csv_pieces(path, header):
        frame = pd.read_csv(
            piece, sep=spec.sep, decimal=spec.decimal, engine="pyarrow", dtype_backend="pyarrow",
            dtype=text, keep_default_na=False, na_values=[""], parse_dates=dates, date_format=spec.date_format,
        )
        yield frame, mapping


def as_number(s: pd.Series, decimal: str) -> pd.Series:
    """A column pyarrow did not type as a number: parse what parses, the
    rest becomes null (and is rejected by the caller)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s
    text = s.astype("str").str.strip()
    if decimal == ",":
        text = text.where(~text.str.contains(".", regex=False)).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce")


def to_int(s: pd.Series, decimal: str) -> tuple[pd.Series, np.ndarray]:
    """Integers as Int32: every integer of the contract fits."""
    n = as_number(s, decimal)
    bad = pd.Series(False, index=n.index)
    if not pd.api.types.is_integer_dtype(n.dtype):
        n = n.astype("Float64")
        bad |= (n != n.round()).fillna(False)
    bad |= (n.abs() > 2**31 - 1).fillna(False)
    return n.where(~bad).astype("Int32"), bad.to_numpy(dtype=bool)


def to_days(s: pd.Series, fmt: str | None) -> tuple[pd.Series, np.ndarray]:
    """Dates as day numbers since 1970-01-01 (Arrow's date32, what sql.rs
    computes with); unparseable ones are null and flagged."""
    if isinstance(s.dtype, pd.ArrowDtype) and (pa.types.is_date(s.dtype.pyarrow_dtype) or pa.types.is_timestamp(s.dtype.pyarrow_dtype)):
        days = s.astype(pd.ArrowDtype(pa.date32())).astype(pd.ArrowDtype(pa.int32())).astype("Int32")
        return days, np.zeros(len(s), dtype=bool)
    parsed = pd.to_datetime(s.astype("str").str.strip(), format=fmt or "%Y-%m-%d", errors="coerce")
    days = (parsed - pd.Timestamp("1970-01-01")).dt.days.astype("Int32")
    return days, (s.notna() & days.isna()).to_numpy()


def to_month(s: pd.Series, decimal: str) -> tuple[dict, np.ndarray]:
    """YYYYMM -> year, month and the day number of the month's first day."""
    v, bad = to_int(s, decimal)
    year, month = v // 100, v % 100
    ok = ((month >= 1) & (month <= 12) & (year >= 1)).fillna(False)
    bad = bad | (v.notna() & ~ok).to_numpy()
    months = ((year - 1970) * 12 + month - 1).where(ok).fillna(0).to_numpy(dtype="int64")
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype("int64")
    return {
        "year": year.where(ok).astype("Int16"),
        "month": month.where(ok).astype("Int8"),
        "period_day": pd.Series(first).astype("Int32").where(ok),
    }, bad


def to_enum(s: pd.Series, allowed: tuple) -> tuple[pd.Categorical, np.ndarray]:
    """Categories sorted alphabetically, so a code's max is the string max
    (sql.rs takes max() of sector and sex). Each distinct value once."""
    codes, uniques = pd.factorize(s)
    categories = sorted(allowed)
    found = pd.Index(categories).get_indexer(uniques.str.strip())
    new = np.where(codes >= 0, found[codes] if len(found) else -1, -1)
    return pd.Categorical.from_codes(new, categories=categories), (codes >= 0) & (new < 0)


def to_code(s: pd.Series, digits: int) -> tuple[pd.Categorical, np.ndarray]:
    """Codes of exactly `digits` digits, leading zeros kept, as categories."""
    codes, uniques = pd.factorize(s)
    stripped = uniques.str.strip()
    ok = stripped.str.fullmatch(rf"[0-9]{{{digits}}}").to_numpy(dtype=bool, na_value=False)
    categories = sorted(set(stripped[ok]))
    found = pd.Index(categories).get_indexer(stripped)
    new = np.where(codes >= 0, np.where(ok, found, -1)[codes] if len(ok) else -1, -1)
    return pd.Categorical.from_codes(new, categories=categories), (codes >= 0) & (new < 0)


def out_of_range(values: pd.Series, col: Col) -> np.ndarray:
    outside = pd.Series(False, index=values.index)
    if col.lo is not None:
        outside |= (values < col.lo).fillna(False)
    if col.hi is not None:
        outside |= (values > col.hi).fillna(False)
    return outside.to_numpy(dtype=bool)


def convert(raw: pd.Series, col: Col, spec: SourceSpec, ids: dict[str, Pseudonyms]):
    """One delivered column -> (its typed column or columns, invalid mask)."""
    name = ID_COLUMN.get(col.name, DAY_NAMES.get(col.name, col.name))
    if col.kind in ("bsn", "kvk"):
        codes, bad = ids[col.kind].register(raw)
        return {name: codes}, bad
    if col.kind == "month":
        return to_month(raw, spec.decimal)
    if col.kind == "int":
        values, bad = to_int(raw, spec.decimal)
        return {name: values}, bad | out_of_range(values, col)
    if col.kind == "dec":
        values = as_number(raw, spec.decimal).astype("float64")
        bad = (raw.notna() & values.isna()).to_numpy() | np.isinf(values.to_numpy())
        return {name: values}, bad | out_of_range(values, col)
    if col.kind == "date":
        values, bad = to_days(raw, spec.date_format)
    elif col.kind == "enum":
        values, bad = to_enum(raw, col.values)
    elif col.kind == "bool":
        cat, bad = to_enum(raw, col.values)
        values = pd.Series(cat).map({col.values[0]: True, col.values[1]: False}).astype("boolean")
    elif col.kind == "pbool":  # Parquet delivers typed booleans
        values, bad = raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
    elif col.kind == "code":
        values, bad = to_code(raw, col.digits)
    else:
        values, bad = raw.astype("str"), np.zeros(len(raw), dtype=bool)
    return {name: values}, bad


def row_rules(source: str, frame: dict, rows: int) -> np.ndarray:
    """The sources' row rules: payroll persons at least 14 in the period's
    month; a recovery not before its sick day."""
    if source == "pfzw_dienstverbanden":
        birth = frame["birth_day"].to_numpy(dtype="int64", na_value=0).astype("datetime64[D]")
        birth_months = birth.astype("datetime64[M]").astype("int64")  # months since 1970-01
        at = (frame["year"].astype("Int64") - 1970) * 12 + frame["month"].astype("Int64") - 1
        return (frame["birth_day"].notna() & at.notna() & (birth_months + 14 * 12 > at)).to_numpy(dtype=bool, na_value=False)
    if source == "vernet_verzuimmeldingen":
        return (frame["recovered_day"] < frame["sick_day"]).to_numpy(dtype=bool, na_value=False)
    return np.zeros(rows, dtype=bool)


# Canonical names the link stage uses for date columns (day numbers).
DAY_NAMES = {"birth_date": "birth_day", "employment_start": "start_day", "employment_end": "end_day",
             "sick_from": "sick_day", "recovered_on": "recovered_day"}


def type_piece(source: str, raw: pd.DataFrame, mapping: dict, ids: dict[str, Pseudonyms]):
    """Delivered columns -> typed columns (by name; a frame is built once
    all pieces are in), and the rows that break a rule."""
    spec = SPECS[source]
    columns: dict[str, object] = {}
    bad = np.zeros(len(raw), dtype=bool)
    for header, col in mapping.items():
        delivered = raw.pop(header)  # the text goes as soon as it is typed
        typed, invalid = convert(delivered, col, spec, ids)
        columns.update(typed)
        bad |= invalid
        if col.required:
            bad |= delivered.isna().to_numpy()
    return columns, bad | row_rules(source, columns, len(bad))


def concat_pieces(pieces: list[dict]) -> pd.DataFrame:
    """One frame of the pieces' columns; categories found per piece are united."""
    columns = {}
    for c in list(pieces[0]):
        parts = [p.pop(c) for p in pieces]  # each piece's column goes once joined
        first = parts[0]
        if isinstance(first.dtype, pd.CategoricalDtype):
            columns[c] = union_categoricals(parts, sort_categories=True)
        elif isinstance(first, np.ndarray):
            columns[c] = np.concatenate(parts)
        else:
            columns[c] = pd.concat(parts, ignore_index=True)
    # The arrays are new: copy=False keeps pandas from copying them into
    # consolidated blocks (gigabytes for the payroll).
    return pd.DataFrame(columns, copy=False)


def read_delivery(source: str, path: Path, ids: dict[str, Pseudonyms]) -> list[dict]:
    """One delivery, typed, in pieces; rows that break a rule are left out."""
    spec = SPECS[source]
    pieces, bad = [], []
    for raw, mapping in read_pieces(path, spec):
        columns, rejected = type_piece(source, raw, mapping, ids)
        del raw
        pieces.append(columns)
        bad.append(rejected)
    if source == "fwg_functiekenmerken":  # codes are unique: later ones are rejected
        codes = pd.concat([pd.Series(p["fwg_function_code"]) for p in pieces], ignore_index=True)
        repeated = (codes.duplicated() & codes.notna()).to_numpy()
        bad = np.split(np.concatenate(bad) | repeated, np.cumsum([len(b) for b in bad])[:-1])
    rows, rejected = sum(len(b) for b in bad), sum(int(b.sum()) for b in bad)
    if rows and rejected / rows > spec.max_reject:
        raise SystemExit(f"pandas peer: {path.name}: {rejected} of {rows} rows rejected, above {spec.max_reject:.0%}")
    log(f"  {path.name}: {rows} rows, {rejected} rejected")
    if rejected:
        pieces = [{c: v[~b] for c, v in p.items()} for p, b in zip(pieces, bad)]
    return pieces


def read_and_pseudonymise(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Pseudonyms]]:
    ids = {kind: Pseudonyms(kind, os.urandom(32)) for kind in ("bsn", "kvk")}
    files = discover(folder)
    frames: dict[str, pd.DataFrame] = {}
    for source, periods in files.items():
        # The FWG table is replaced whole by its latest delivery (inputs.rs).
        chosen = [max(periods)] if source == "fwg_functiekenmerken" else sorted(periods)
        # One frame per source, joined once from the pieces of all periods.
        frames[source] = concat_pieces([piece for p in chosen for piece in read_delivery(source, periods[p], ids)])
    final = {kind: p.finish() for kind, p in ids.items()}
    for frame in frames.values():
        for column, kind in (("person", "bsn"), ("org", "kvk")):
            if column in frame:
                frame[column] = final[kind][frame[column].to_numpy()]
    return frames, ids


# --------------------------------------------------------------------------
# Stage 2: the models (crates/koppel-join/src/sql.rs)
# --------------------------------------------------------------------------


def half_up(x) -> np.ndarray:
    """Rust's f64::round and a decimal cast: halves away from zero."""
    x = np.asarray(x, dtype="float64")
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def units(values: pd.Series, scale: int) -> np.ndarray:
    """A decimal column as exact integers of 1/scale (DECIMAL(_, log scale)).
    Delivered with at most that many decimals, value x scale lies within
    rounding error of a whole number, so the nearest one is exact."""
    return np.rint(values.to_numpy(dtype="float64") * scale).astype(np.int64)


def birth_parts(days: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Birth year and whether the birthday is 1 January."""
    d = days.to_numpy(dtype="int64").astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    first_january = d == d.astype("datetime64[Y]").astype("datetime64[D]")
    return year, first_january


def age_on_1_january(birth_days: pd.Series, year: pd.Series) -> np.ndarray:
    birth_year, first_january = birth_parts(birth_days)
    return year.to_numpy(dtype=np.int64) - birth_year - np.where(first_january, 0, 1)


def payroll_rows(pay: pd.DataFrame, fwg_radix: int) -> pd.DataFrame:
    """sql.rs PAYROLL_ROWS: the per-row quantities. "Latest" values are packed
    behind the month (months since 1970) so that one max() per person x
    employer x year finds the value of the latest month, as sql.rs does; all
    of it but money fits 32 bits, and the payroll frame is the largest there is."""
    year = pay["year"].to_numpy(dtype=np.int32)
    month = pay["month"].to_numpy(dtype=np.int32)
    mi = (year - 1970) * 12 + month - 1
    period = pay["period_day"].to_numpy(dtype=np.int32)
    next_month = (mi + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int32)
    start = pay["start_day"].to_numpy(dtype=np.int32)
    end = pay["end_day"].to_numpy(dtype="float64", na_value=np.nan)  # NaN: ongoing
    end_excl = np.where(np.isnan(end), 2**31 - 1, end + 1).astype(np.int64)
    contract = np.array([CONTRACTS.index(c) for c in pay["contract_type"].cat.categories], dtype=np.int32)
    return pd.DataFrame(copy=False, data={
        "person": pay["person"], "org": pay["org"], "year": year.astype(np.int16), "month": month.astype(np.int8),
        "month_bit": np.left_shift(1, month),
        "last_month": mi,
        "birth_day": pay["birth_day"].to_numpy(dtype=np.int32),
        "sex": pay["sex"].cat.codes,
        "latest_postcode": mi * 100_000 + pay["postcode4"].fillna(99_999).to_numpy(dtype=np.int32),
        "latest_contract": mi * 10 + contract[pay["contract_type"].cat.codes.to_numpy()],
        "sector": pay["sector"].cat.codes,
        "latest_fwg": mi * fwg_radix + pay["fwg_function_code"].cat.codes.to_numpy(dtype=np.int32) + 1,
        "start_day": start,
        "latest_end": mi * 1_000_000 + np.where(np.isnan(end), 999_999, end).astype(np.int32),
        "hours": units(pay["hours_per_week"], 10_000).astype(np.int32),
        # pandas sums int32 in int32: money stays int64, hours (<= 60) fit.
        "wage": units(pay["gross_monthly_wage"], 100),
        "allowance": units(pay["irregularity_allowance"], 100),
        "available_days": np.clip(np.minimum(next_month, end_excl) - np.maximum(period, start), 0, None).astype(np.int8),
    })


def person_employer_year(pay: pd.DataFrame, categories: dict) -> pd.DataFrame:
    """sql.rs person_employer_year: one row per person x employer x year. A
    month delivered twice counts once: the mask ORs distinct month bits."""
    fwg_codes = categories["fwg_function_code"]
    rows = payroll_rows(pay, fwg_radix=len(fwg_codes) + 2)
    del pay  # the last reference: the typed payroll goes before the group-by
    group = rows.groupby(["person", "org", "year"], sort=False).ngroup().to_numpy()
    pe = rows.groupby(group, sort=False).agg(
        person=("person", "first"), org=("org", "first"), year=("year", "first"),
        payroll_rows=("person", "size"), month_mask=("month_bit", "sum"),
        last_month=("last_month", "max"), birth_day=("birth_day", "max"), sex=("sex", "max"),
        latest_postcode=("latest_postcode", "max"), latest_contract=("latest_contract", "max"),
        sector=("sector", "max"), latest_fwg=("latest_fwg", "max"), start_day=("start_day", "max"),
        latest_end=("latest_end", "max"), hours_sum=("hours", "sum"), wage_sum=("wage", "sum"),
        allowance_sum=("allowance", "sum"), available_days_sum=("available_days", "sum"),
    )
    # bit_or(month_bit): a sum of distinct powers of two is their OR, and a
    # sum with a month twice has fewer bits than rows. Only those groups
    # need their distinct months.
    twice = np.bitwise_count(pe["month_mask"].to_numpy()) < pe["payroll_rows"].to_numpy()
    if twice.any():
        dup = rows.loc[twice[group], ["month", "month_bit"]].assign(group=group[twice[group]])
        distinct = dup.drop_duplicates(["group", "month"]).groupby("group")["month_bit"].sum()
        pe.loc[distinct.index, "month_mask"] = distinct
    del rows, group
    pe = pe.reset_index(drop=True)
    months = np.bitwise_count(pe["month_mask"].to_numpy(dtype=np.int64)).astype(np.int64)
    share = months / pe["payroll_rows"].to_numpy()  # averages duplicate rows
    postcode = pe.pop("latest_postcode") % 100_000
    end = pe.pop("latest_end") % 1_000_000
    fwg = (pe.pop("latest_fwg") % (len(fwg_codes) + 2) - 1).to_numpy()
    return pe.assign(
        months=months,
        duplicate_rows=pe["payroll_rows"] - months,
        postcode4=postcode.where(postcode != 99_999).astype("Int64"),
        contract_type=pd.Categorical.from_codes((pe.pop("latest_contract") % 10).to_numpy(), categories=list(CONTRACTS)),
        sex=pd.Categorical.from_codes(pe["sex"].to_numpy(), categories=categories["sex"]),
        sector=pd.Categorical.from_codes(pe["sector"].to_numpy(), categories=categories["sector"]),
        fwg_function_code=pd.Categorical.from_codes(fwg, categories=fwg_codes),
        end_day=end.where(end != 999_999).astype("Int32"),
        # DECIMAL(16, 4) and DECIMAL(18, 2): integers of 1/10,000 and cents.
        hour_months=half_up(pe.pop("hours_sum") * share).astype(np.int64),
        wage=half_up(pe.pop("wage_sum") * share).astype(np.int64),
        allowance=half_up(pe.pop("allowance_sum") * share).astype(np.int64),
        available_days=half_up(pe.pop("available_days_sum") * share).astype(np.int64),
    )


def person_year(pe: pd.DataFrame) -> pd.DataFrame:
    """sql.rs person_year: the main employer (most months, then the latest
    month, then the lowest pseudonym) and the sums over all employers."""
    main = pe.sort_values(
        ["person", "year", "months", "last_month", "org"], ascending=[True, True, False, False, True]
    ).drop_duplicates(["person", "year"])[
        ["person", "year", "org", "sector", "contract_type", "fwg_function_code", "postcode4", "sex", "birth_day"]
    ]
    # bit_or of the month masks: the max of each month's flag.
    bits = np.arange(1, 13)
    months = [f"m{b}" for b in bits]
    flags = pd.DataFrame((pe["month_mask"].to_numpy()[:, None] >> bits) & 1, columns=months).astype(np.uint8)
    flags[["person", "year"]] = pe[["person", "year"]]
    union = flags.groupby(["person", "year"]).max()
    totals = pe.groupby(["person", "year"]).agg(
        employers=("org", "size"), hour_months=("hour_months", "sum"), wage=("wage", "sum"), allowance=("allowance", "sum"),
    )
    totals["months"] = union[months].to_numpy().sum(axis=1)
    py = main.merge(totals.reset_index(), on=["person", "year"])
    py["age"] = age_on_1_january(py["birth_day"], py["year"])
    return py


def episodes(absence: pd.DataFrame, reference_day: int) -> pd.DataFrame:
    """sql.rs episodes: deduplicated per person x employer x first sick day;
    end exclusive, at least one day, open ones run to the reference date."""
    a = absence[absence["sick_day"] <= reference_day]
    end = reference_day + 1
    sick = a["sick_day"].to_numpy(dtype=np.int64)
    recovered = a["recovered_day"].fillna(end).to_numpy(dtype=np.int64)
    frame = pd.DataFrame({
        "person": a["person"], "org": a["org"], "sick_day": sick,
        "end_excl": np.minimum(end, np.maximum(recovered, sick + 1)),
        "absence_pct": a["absence_pct"].to_numpy(dtype=np.int64),
    })
    return frame.groupby(["person", "org", "sick_day"], as_index=False).agg(
        end_excl=("end_excl", "max"), absence_pct=("absence_pct", "max"), reports=("end_excl", "size"),
    )


def episode_years(ep: pd.DataFrame, years: pd.DataFrame) -> pd.DataFrame:
    """sql.rs EPISODE_YEARS: episode x each model year it overlaps."""
    parts = []
    for y in years.itertuples():
        e = ep[(ep["sick_day"] < y.y_end) & (ep["end_excl"] > y.y_start)]
        parts.append(pd.DataFrame({
            "person": e["person"], "org": e["org"], "year": y.year,
            "started": (e["sick_day"] >= y.y_start).astype(np.int64),
            "pct_days": (np.minimum(e["end_excl"], y.y_end) - np.maximum(e["sick_day"], y.y_start)) * e["absence_pct"],
            "duration": e["end_excl"] - e["sick_day"],
        }))
    return pd.concat(parts, ignore_index=True)


def care_years(care: pd.DataFrame) -> pd.DataFrame:
    """sql.rs care_years: per care type the largest claims and cost of a
    person-year, then one column pair per care type."""
    per_type = care.assign(cost=units(care["cost_eur"], 100)).groupby(
        ["person", "year", "care_type"], observed=True
    ).agg(claims=("claims", "max"), cost=("cost", "max"))
    wide = per_type.unstack("care_type", fill_value=0)
    out = pd.DataFrame(index=wide.index)
    out["care_types"] = per_type.groupby(level=["person", "year"]).size()
    for code, prefix in CARE_TYPES.items():
        has = code in wide["claims"].columns
        out[f"{prefix}_claims"] = wide["claims"][code].astype(np.int64) if has else 0
        out[f"{prefix}_cost"] = wide["cost"][code].astype(np.int64) if has else 0
    return out.reset_index()


def survey_years(survey: pd.DataFrame) -> pd.DataFrame:
    """sql.rs survey_years: of duplicates the first in scale order (nulls last)."""
    return survey.sort_values(["person", "year"] + SURVEY_SCALES, na_position="last", kind="stable").drop_duplicates(
        ["person", "year"]
    )[["person", "year"] + SURVEY_SCALES]


def fwg_table(fwg: pd.DataFrame) -> pd.DataFrame:
    """sql.rs FWG_CODES: one row per code, first by function title."""
    return fwg.sort_values("function_title", kind="stable").drop_duplicates("fwg_function_code").drop(columns="function_title")


def annual_report_years(reports: pd.DataFrame) -> pd.DataFrame:
    """sql.rs ANNUAL_REPORT_YEARS: of duplicates the highest revenue (DESC
    sorts nulls first, as DataFusion does)."""
    order = ["revenue_keur", "personnel_cost_keur", "fte", "result_keur"]
    best = reports.sort_values(["org", "year"] + order, ascending=[True, True] + [False] * 4, na_position="first", kind="stable")
    return best.drop_duplicates(["org", "year"])[["org", "year"] + order[:2] + ["overhead_pct", "fte", "result_keur"]]


@dataclass
class Linked:
    person: pd.DataFrame
    organisation: pd.DataFrame
    # The workforce model is written by link() and not kept: nothing here
    # reads it back (the export's k-anonymity looks at the person model only).
    workforce_rows: int


def link(frames: dict[str, pd.DataFrame], linked_dir: Path) -> Linked:
    """The models, as koppel-join's lib.rs builds them; the workforce model
    is written to linked_dir/workforce_model.parquet (Koppel's file name in
    its linked folder) and its row count, as written, kept."""
    payroll = frames["pfzw_dienstverbanden"]
    categories = {c: list(payroll[c].cat.categories) for c in ("sex", "sector", "fwg_function_code")}
    payroll_years = sorted(int(y) for y in payroll["year"].unique())
    del payroll  # person_employer_year takes the last reference
    survey = frames["izz_monitor"]
    survey["year"] = survey["year"].astype(np.int64)
    model_years = sorted(set(payroll_years) | set(int(y) for y in survey["year"].unique()))
    years = pd.DataFrame({
        "year": model_years,
        "y_start": [day_number(f"{y}-01-01") for y in model_years],
        "y_end": [day_number(f"{y + 1}-01-01") for y in model_years],
    })
    pe = person_employer_year(frames.pop("pfzw_dienstverbanden"), categories)
    pe["year"] = pe["year"].astype(np.int64)
    py = person_year(pe)
    ey = episode_years(episodes(frames.pop("vernet_verzuimmeldingen"), day_number(REFERENCE_DATE)), years)
    insured = frames.pop("izz_verzekerden")
    care = frames.pop("izz_zorggebruik")
    for f in (insured, care):
        f["year"] = f["year"].astype(np.int64)
    insured_years = pd.concat([insured[["person", "year"]], care[["person", "year"]]]).drop_duplicates()
    cy = care_years(care)
    fwg = fwg_table(frames.pop("fwg_functiekenmerken"))
    fwg["fwg_function_code"] = fwg["fwg_function_code"].astype("str")
    reports = frames.pop("intrakoop_jaarverslagen")
    reports["year"] = reports["year"].astype(np.int64)
    absence = person_absence(ey)
    person = person_model(survey_years(survey), py, pe, absence, insured_years, cy, fwg, payroll_years)
    linked_dir.mkdir(parents=True, exist_ok=True)
    workforce_file = linked_dir / WORKFORCE_MODEL_FILE
    write_parquet(workforce_model(py, pe, absence, insured_years, cy, fwg, payroll_years), workforce_file)
    del absence
    organisation = organisation_model(pe, years, ey, insured_years, cy, fwg, annual_report_years(reports))
    return Linked(person, organisation, rows_of(workforce_file))


def with_fwg(frame: pd.DataFrame, fwg: pd.DataFrame) -> pd.DataFrame:
    codes = frame["fwg_function_code"].astype("str")
    return frame.assign(fwg_function_code=codes).merge(fwg, on="fwg_function_code", how="left")


def person_absence(ey: pd.DataFrame) -> pd.DataFrame:
    """sql.rs PERSON_ABSENCE: absence per person x year."""
    return ey.groupby(["person", "year"], as_index=False).agg(
        episodes=("started", "sum"), pct_days=("pct_days", "sum"), longest=("duration", "max"))


def person_year_facts(d, py, pe, absence, insured_years, cy, fwg, payroll_years) -> tuple[pd.DataFrame, pd.DataFrame]:
    """sql.rs person_year_facts: what linking knows of a person in a year
    apart from the survey (payroll, job, absence, insurance and care use,
    next year's leaving), the one definition of these columns that the
    person model (survey respondents) and the workforce model (everyone on
    the payroll) both select. `d` gives person and year with py's columns
    merged in and on_payroll set where the person is on the payroll that
    year (the workforce model: py itself). Returns the facts, org_p2 to
    left_sector, in d's row order, and d with what they were made from, for
    the caller's own columns."""
    m = with_fwg(d, fwg)
    m = m.merge(absence, on=["person", "year"], how="left")
    m = m.merge(insured_years.assign(izz_insured=True), on=["person", "year"], how="left")
    m = m.merge(cy, on=["person", "year"], how="left")
    # Next year's outcomes: still at this employer, still in the sector.
    nxt = pe[["person", "org", "year"]].assign(year=pe["year"] - 1, stays_employer=True)
    m = m.merge(nxt, on=["person", "org", "year"], how="left")
    m = m.merge(py[["person", "year"]].assign(year=py["year"] - 1, stays_sector=True), on=["person", "year"], how="left")

    on = m["on_payroll"].notna().to_numpy()
    ins = m["izz_insured"].notna().to_numpy()
    delivered = m["year"].isin([y - 1 for y in payroll_years]).to_numpy()
    out = pd.DataFrame({
        "org_p2": m["org"].astype("Int32"),
        "sector": m["sector"].astype("str"), "age": m["age"].astype("Int64"), "sex": m["sex"].astype("str"),
        "postcode4": m["postcode4"].astype("Int64"), "contract_type": m["contract_type"].astype("str"),
        "hours_per_week": m["hour_months"] / 10_000 / m["months"],
        "months_employed": m["months"].astype("Int64"),
        # CAST(DECIMAL(18, 2) AS DOUBLE) is cents / 100 in arrow-cast: the
        # quotient of the two casts, not of the cents, is sql.rs's to the bit.
        "irregularity_share": ((m["allowance"] / 100) / (m["wage"] / 100)).where(m["wage"] > 0),
        "fwg_function_code": m["fwg_function_code"].where(on).astype("str"),
    })
    for c in ("fwg_level", "physical_load", "mental_load", "injury_risk", "adverse_conditions"):
        out[c] = m[c].astype("Int64")
    out["irregular_hours"] = m["irregular_hours"].astype("boolean")
    longest = m["longest"].fillna(0).astype("Int64")
    out["absence_episodes"] = m["episodes"].fillna(0).astype("Int64").where(on)
    out["absence_days"] = (m["pct_days"].fillna(0) / 100).where(on)
    out["longest_episode_days"] = longest.where(on)
    out["long_term_absence"] = (longest > LONG_TERM_DAYS).astype("boolean").where(on)
    out["izz_insured"] = ins
    for code, prefix in CARE_TYPES.items():
        claims = m[f"{prefix}_claims"].fillna(0).astype("Int64")
        out[f"{prefix}_any"] = (claims > 0).astype("boolean").where(ins)
        out[f"{prefix}_claims"] = claims.where(ins)
        out[f"{prefix}_cost_eur"] = (m[f"{prefix}_cost"].fillna(0) / 100).where(ins)
    known = on & delivered
    out["left_employer"] = pd.array(m["stays_employer"].isna().to_numpy(), dtype="boolean")
    out["left_sector"] = pd.array(m["stays_sector"].isna().to_numpy(), dtype="boolean")
    out.loc[~known, ["left_employer", "left_sector"]] = pd.NA
    return out, m


def person_model(sy, py, pe, absence, insured_years, cy, fwg, payroll_years) -> pd.DataFrame:
    """sql.rs person_model: one row per survey respondent x year, the
    respondent's person-year facts and survey answers."""
    d = sy.merge(py.assign(on_payroll=True), on=["person", "year"], how="left")
    facts, m = person_year_facts(d, py, pe, absence, insured_years, cy, fwg, payroll_years)
    out = pd.concat([
        pd.DataFrame({
            "person_p2": m["person"].astype(np.int32), "year": m["year"].astype(np.int32),
            "on_payroll": m["on_payroll"].notna().to_numpy(),
        }),
        facts,
        m[SURVEY_SCALES],
    ], axis=1)
    return out.sort_values(["person_p2", "year"], ignore_index=True)


def workforce_model(py, pe, absence, insured_years, cy, fwg, payroll_years) -> pd.DataFrame:
    """sql.rs workforce_model: one row per person x year on the payroll, the
    person's person-year facts: the population Koppel's disclosure engine
    measures a respondent's risk against."""
    facts, m = person_year_facts(py.assign(on_payroll=True), py, pe, absence, insured_years, cy, fwg, payroll_years)
    keys = pd.DataFrame({"person_p2": m["person"].astype(np.int32), "year": m["year"].astype(np.int32)})
    del m  # 3.4 million rows at full scale: the merged inputs go before the copies below
    out = pd.concat([keys, facts], axis=1)
    del keys, facts
    return out.sort_values(["person_p2", "year"], ignore_index=True)


def organisation_model(pe, years, ey, insured_years, cy, fwg, reports) -> pd.DataFrame:
    """sql.rs organisation_model: one row per organisation x year over
    everyone on its payroll, with the number of persons each statistic rests on."""
    employment = ey.groupby(["person", "org", "year"], as_index=False).agg(
        episodes=("started", "sum"), pct_days=("pct_days", "sum"))
    s = pe[["person", "org", "year", "sector", "contract_type", "fwg_function_code", "birth_day",
            "start_day", "end_day", "hour_months", "wage", "allowance", "available_days"]]
    s = s.merge(years, on="year").merge(employment, on=["person", "org", "year"], how="left")
    s = s.merge(insured_years.assign(insured=1), on=["person", "year"], how="left")
    s = s.merge(cy[["person", "year", "ggz_claims", "physio_claims"]], on=["person", "year"], how="left")
    s = with_fwg(s, fwg)
    insured = s["insured"].fillna(0).to_numpy(dtype=np.int64)
    load_known = s["physical_load"].notna()
    staff = pd.DataFrame({
        "org": s["org"], "year": s["year"], "sector": s["sector"].astype("str"),
        "hour_months": s["hour_months"],
        "age": age_on_1_january(s["birth_day"], s["year"]),
        # CAST(allowance / wage AS DECIMAL(10, 6)), in millionths
        "irregularity_share": pd.Series(half_up(s["allowance"] / s["wage"] * 1e6)).where(s["wage"] > 0).astype("Int64"),
        "temporary": (s["contract_type"] == "TIJDELIJK").astype(np.int64),
        "on_call": (s["contract_type"] == "OPROEP").astype(np.int64),
        "joined": (s["start_day"] >= s["y_start"]).astype(np.int64),
        "left_employer": (s["end_day"] < s["y_end"]).fillna(False).astype(np.int64),
        "pct_days": s["pct_days"].fillna(0).astype(np.int64),
        "available_days": s["available_days"],
        "episodes": s["episodes"].fillna(0).astype(np.int64),
        "insured": insured,
        "uses_ggz": ((insured == 1) & (s["ggz_claims"].fillna(0) > 0)).astype(np.int64),
        "uses_physio": ((insured == 1) & (s["physio_claims"].fillna(0) > 0)).astype(np.int64),
        "physical_load": s["physical_load"].astype("float64"),
        "mental_load": s["mental_load"].astype("float64"),
        "injury_risk": s["injury_risk"].astype("float64"),
        "adverse_known": ((s["adverse_conditions"] > 0) & load_known).fillna(False).astype(np.int64),
    })
    o = staff.groupby(["org", "year"], as_index=False).agg(
        headcount=("age", "size"), sector=("sector", "max"), hour_months=("hour_months", "sum"),
        mean_age=("age", "mean"), temporary=("temporary", "sum"), on_call=("on_call", "sum"),
        irregularity_share=("irregularity_share", "sum"), n_irregularity_share=("irregularity_share", "count"),
        joined=("joined", "sum"), left=("left_employer", "sum"), pct_days=("pct_days", "sum"),
        available_days=("available_days", "sum"), episodes=("episodes", "sum"), n_izz_insured=("insured", "sum"),
        uses_ggz=("uses_ggz", "sum"), uses_physio=("uses_physio", "sum"),
        mean_physical_load=("physical_load", "mean"), mean_mental_load=("mental_load", "mean"),
        mean_injury_risk=("injury_risk", "mean"), adverse=("adverse_known", "sum"), n_fwg=("physical_load", "count"),
    )
    n = o["headcount"]
    insured_n = o["n_izz_insured"].where(o["n_izz_insured"] > 0)
    out = pd.DataFrame({
        "org_p2": o["org"].astype(np.int32), "year": o["year"].astype(np.int32), "sector": o["sector"],
        "headcount": n.astype(np.int64), "fte": o["hour_months"] / 10_000 / 12 / 36,
        "mean_age": o["mean_age"], "temporary_share": o["temporary"] / n, "on_call_share": o["on_call"] / n,
        # DataFusion's avg of a DECIMAL(10, 6) is a DECIMAL(14, 10), cut off
        # (not rounded) after ten decimals: exact in integers.
        "mean_irregularity_share": (o["irregularity_share"] * 10_000 // o["n_irregularity_share"].where(
            o["n_irregularity_share"] > 0)) / 1e10,
        "n_irregularity_share": o["n_irregularity_share"].astype(np.int64),
        "inflow_rate": o["joined"] / n, "outflow_rate": o["left"] / n,
        "absence_pct": o["pct_days"] / o["available_days"].where(o["available_days"] != 0),
        "absence_days": o["pct_days"] / 100, "available_days": o["available_days"].astype(np.int64),
        "episode_frequency": o["episodes"] / n, "izz_coverage": o["n_izz_insured"] / n,
        "n_izz_insured": o["n_izz_insured"].astype(np.int64),
        "ggz_share_insured": o["uses_ggz"] / insured_n, "physio_share_insured": o["uses_physio"] / insured_n,
        "mean_physical_load": o["mean_physical_load"], "mean_mental_load": o["mean_mental_load"],
        "mean_injury_risk": o["mean_injury_risk"],
        "adverse_conditions_share": o["adverse"] / o["n_fwg"].where(o["n_fwg"] > 0),
        "n_fwg": o["n_fwg"].astype(np.int64),
    })
    reports = reports.rename(columns={"org": "org_p2", "fte": "annual_report_fte"}).assign(annual_report=True)
    reports = reports.astype({"org_p2": np.int32, "year": np.int32})
    out = out.merge(reports, on=["org_p2", "year"], how="left")
    out["annual_report"] = out["annual_report"].notna() & out["annual_report"].astype("boolean").fillna(False)
    order = ["revenue_keur", "personnel_cost_keur", "overhead_pct", "annual_report_fte", "result_keur"]
    out = out[[c for c in out.columns if c not in order] + order]
    return out.sort_values(["org_p2", "year"], ignore_index=True)


# --------------------------------------------------------------------------
# Stage 3: disclosure control (crates/koppel-export)
# --------------------------------------------------------------------------

PROVINCES = [((10, 12), "Noord-Holland"), ((14, 21), "Noord-Holland"), ((13, 13), "Flevoland"), ((82, 83), "Flevoland"),
             ((22, 33), "Zuid-Holland"), ((42, 42), "Zuid-Holland"), ((34, 39), "Utrecht"), ((40, 41), "Gelderland"),
             ((65, 73), "Gelderland"), ((43, 45), "Zeeland"), ((46, 57), "Noord-Brabant"), ((58, 64), "Limburg"),
             ((74, 77), "Overijssel"), ((80, 81), "Overijssel"), ((78, 79), "Drenthe"), ((93, 94), "Drenthe"),
             ((84, 92), "Friesland"), ((95, 99), "Groningen")]


def province(postcode4: int) -> str | None:
    pc2 = postcode4 // 100
    return next((name for (lo, hi), name in PROVINCES if lo <= pc2 <= hi), None)


def band_label(v: int, width: int) -> str:
    lo = v // width * width
    return f"{lo}-{lo + width - 1}"


def class_label(v: int, bounds: list) -> str:
    """hierarchy.rs class_label: "<0", "50-99", "2500+"."""
    below = [i for i, b in enumerate(bounds) if b <= v]
    if not below:
        return f"<{bounds[0]}"
    i = below[-1]
    return f"{bounds[i]}+" if i + 1 == len(bounds) else f"{bounds[i]}-{bounds[i + 1] - 1}"


# The quasi-identifiers of config.rs (column, hierarchy, weight).
QUASI_IDENTIFIERS = [
    ("age", ("bands", [5, 10]), 2.0),
    ("sex", ("categorical",), 1.0),
    ("postcode4", ("postcode",), 1.0),
    ("sector", ("categorical",), 2.0),
    ("fwg_function_code", ("fwg_level_band", "fwg_level", 10), 1.0),
    ("organisation_size", ("classes", [[0, 50, 100, 250, 500, 1000, 2500], [0, 100, 500, 2500]]), 1.0),
    ("contract_type", ("categorical",), 1.0),
]
PERSON_K = 10
MAX_SUPPRESSION = 0.05


def hierarchy_levels(h: tuple) -> int:
    return {"categorical": 2, "postcode": 4, "fwg_level_band": 3}.get(h[0]) or (
        len(h[1]) + 2 if h[0] == "bands" else len(h[1]) + 1)


def atom_label(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def label_at(v, side, h: tuple, level: int) -> str | None:
    """hierarchy.rs label_at: the label of one distinct value at a level."""
    if level + 1 == hierarchy_levels(h):
        return None
    kind = h[0]
    if kind == "categorical":
        return atom_label(v)
    if kind == "bands":
        return str(int(v)) if level == 0 else band_label(int(v), h[1][level - 1])
    if kind == "classes":
        return class_label(int(v), h[1][level])
    if kind == "postcode":
        return [str(int(v)), f"{int(v) // 100}xx", province(int(v))][level]
    # fwg_level_band: the code, then the band of its FWG level
    if level == 0:
        return atom_label(v)
    return None if side is None else f"FWG {band_label(int(side), h[2])}"


def generalise(values: pd.Series, h: tuple, side: pd.Series | None = None) -> list[tuple[np.ndarray, list]]:
    """Every level of a hierarchy: (code per row, -1 for null; labels). Each
    distinct value is generalised once, in sorted order, and codes follow
    the labels' first appearance over them (hierarchy.rs)."""
    of_row, distinct = pd.factorize(values, sort=True)
    sides = [None] * len(distinct)
    if side is not None:  # the first known side value of each distinct value
        known = pd.DataFrame({"d": of_row, "s": side.to_numpy(dtype=object, na_value=None)}).dropna()
        known = known[known["d"] >= 0].drop_duplicates("d")
        for d, s in zip(known["d"], known["s"]):
            sides[d] = s
    levels = []
    for level in range(hierarchy_levels(h)):
        labels = [label_at(v, s, h, level) for v, s in zip(distinct, sides)]
        code_of_distinct, names = pd.factorize(pd.Series(labels, dtype=object))
        codes = np.where(of_row >= 0, code_of_distinct[of_row] if len(labels) else -1, -1)
        levels.append((codes.astype(np.int64), list(names)))
    return levels


@dataclass
class Lattice:
    """The base classes (distinct stratum x level-0 codes, with counts) and
    per quasi-identifier and level the map from level-0 to level-l codes."""
    stratum: np.ndarray
    codes: list  # per QI: dense level-0 code of each base class
    count: pd.Series
    maps: list  # maps[q][l][c0]
    radix: list  # radix[q][l]: cardinality at level l, null included
    weights: list
    k: int

    @property
    def levels(self) -> list:
        return [len(m) for m in self.maps]

    def key(self, node) -> np.ndarray:
        key = self.stratum.astype(np.int64)
        for q, level in enumerate(node):
            key = key * self.radix[q][level] + self.maps[q][level][self.codes[q]]
        return key

    def class_sizes(self, node) -> pd.Series:
        """Rows per class at a node, broadcast back to the base classes."""
        return self.count.groupby(self.key(node), sort=False).transform("sum")

    def unsafe_rows(self, node) -> int:
        sizes = self.count.groupby(self.key(node), sort=False).sum()
        return int(sizes[sizes < self.k].sum())

    def loss(self, node) -> float:
        parts = 0.0
        for level, n, w in zip(node, self.levels, self.weights):
            parts += w * level / (n - 1) if n > 1 else 0.0
        return parts / sum(self.weights)


def build_lattice(people: pd.DataFrame, generalised: list, weights: list, k: int) -> tuple[Lattice, np.ndarray]:
    dense = []
    for levels in generalised:
        per_level = []
        for codes, labels in levels:
            per_level.append(np.where(codes < 0, len(labels), codes))
        dense.append(per_level)
    base_columns = {"stratum": people["year"].to_numpy()}
    for q, per_level in enumerate(dense):
        base_columns[q] = per_level[0]
    rows = pd.DataFrame(base_columns)
    grouped = rows.groupby(list(rows.columns), sort=False)
    of_row = grouped.ngroup().to_numpy()
    base = grouped.size().reset_index(name="count")
    maps, radix = [], []
    for q, per_level in enumerate(dense):
        pairs = pd.DataFrame({"c0": per_level[0]} | {l: c for l, c in enumerate(per_level)}).drop_duplicates("c0")
        size0 = len(generalised[q][0][1]) + 1
        maps.append([np.zeros(size0, dtype=np.int64) for _ in per_level])
        for level in range(len(per_level)):
            maps[q][level][pairs["c0"].to_numpy()] = pairs[level].to_numpy()
        radix.append([len(labels) + 1 for _, labels in generalised[q]])
    strata = np.unique(base["stratum"], return_inverse=True)[1]
    lattice = Lattice(strata, [base[q].to_numpy() for q in range(len(dense))], base["count"],
                      maps, radix, weights, k)
    return lattice, of_row


def search(lattice: Lattice, rows: int) -> tuple[list, int, int, float]:
    """kanon.rs anonymise: evaluate nodes from the middle height outwards,
    settle the cones above acceptable and below unacceptable nodes, then the
    least loss wins, ties to fewer unsafe rows, then the lowest node."""
    levels = lattice.levels
    size = int(np.prod(levels))
    # Node index i has level (i // prod(levels[:q])) % levels[q] for QI q.
    nodes = np.array(np.unravel_index(np.arange(size), levels[::-1]))[::-1].T
    heights = nodes.sum(axis=1)
    middle = sum(n - 1 for n in levels) // 2
    cap = int(np.floor(MAX_SUPPRESSION * rows))
    status = np.zeros(size, dtype=np.int8)  # 0 unknown, 1 acceptable, -1 not
    unsafe: dict[int, int] = {}
    for i in np.lexsort((np.arange(size), heights, np.abs(heights - middle))):
        if status[i]:
            continue
        unsafe[i] = lattice.unsafe_rows(nodes[i])
        if unsafe[i] <= cap:
            status[(status == 0) & (nodes >= nodes[i]).all(axis=1)] = 1
        else:
            status[(status == 0) & (nodes <= nodes[i]).all(axis=1)] = -1
    best = None
    for i in np.flatnonzero(status == 1):
        node = tuple(int(x) for x in nodes[i])
        loss = lattice.loss(node)
        if best is not None and loss > best[0] + 1e-12:
            continue
        if i not in unsafe:
            unsafe[i] = lattice.unsafe_rows(node)
        if best is None or loss < best[0] - 1e-12 or (unsafe[i], node) < (best[1], best[2]):
            best = (loss, unsafe[i], node)
    if best is None:
        raise SystemExit("pandas peer: no generalisation keeps suppression within the cap")
    return list(best[2]), len(unsafe), size, best[0]


def suppress(lattice: Lattice, node: list, of_row: np.ndarray):
    """kanon.rs suppress: rows of unsafe classes lose every quasi-identifier
    and join their year's all-null class; an unsafe all-null class is dropped."""
    k = lattice.k
    key = lattice.key(node)
    sizes = lattice.class_sizes(node).to_numpy()
    null_key = lattice.stratum.astype(np.int64)
    for q, level in enumerate(node):
        r = lattice.radix[q][level]
        null_key = null_key * r + (r - 1)
    unsafe_base = sizes < k
    natural_null = key == null_key
    in_null = unsafe_base | natural_null
    null_size = pd.Series(np.where(in_null, lattice.count, 0)).groupby(lattice.stratum).sum()
    null_safe = ((null_size == 0) | (null_size >= k)).reindex(range(lattice.stratum.max() + 1), fill_value=True).to_numpy()
    dropped_base = in_null & ~null_safe[lattice.stratum]
    suppressed_base = unsafe_base & ~natural_null & ~dropped_base
    released_key = np.where(unsafe_base, null_key, key)
    released = pd.Series(np.where(dropped_base, 0, lattice.count)).groupby(released_key).sum()
    released = released[released > 0]
    if (released < k).any():
        raise SystemExit(f"pandas peer: internal check failed: a released class of {int(released.min())} rows")
    return suppressed_base[of_row], dropped_base[of_row], len(released), int(released.min())


@dataclass
class PersonOutcome:
    frame: pd.DataFrame
    levels: dict
    rows_in: int
    rows_locally_suppressed: int
    rows_dropped: int
    smallest_class: int
    classes: int
    nodes_evaluated: int
    lattice_size: int
    information_loss: float


def release_persons(people: pd.DataFrame, orgs: pd.DataFrame, released_orgs: pd.DataFrame,
                    ids: dict[str, Pseudonyms], release_key: bytes) -> PersonOutcome:
    """person.rs: the size class of the main employer joins the quasi-
    identifiers; generalise, search, suppress; research IDs, and the org ID
    only where that organisation-year is released."""
    headcounts = orgs[["org_p2", "year", "headcount"]].rename(columns={"headcount": "organisation_size"})
    people = people.merge(headcounts, on=["org_p2", "year"], how="left")
    people["organisation_size"] = people["organisation_size"].astype("Int64")
    generalised = []
    for column, h, _ in QUASI_IDENTIFIERS:
        side = people[h[1]] if h[0] == "fwg_level_band" else None
        generalised.append(generalise(people[column], h, side))
    lattice, of_row = build_lattice(people, generalised, [w for _, _, w in QUASI_IDENTIFIERS], PERSON_K)
    node, evaluated, size, loss = search(lattice, len(people))
    suppressed, dropped, classes, smallest = suppress(lattice, node, of_row)

    released = released_orgs.assign(released=True)
    org_known = people[["org_p2", "year"]].merge(released, on=["org_p2", "year"], how="left")["released"].notna()
    out = pd.DataFrame({
        "person_id": ids["bsn"].research_ids(people["person_p2"], release_key, "P-"),
        "year": people["year"],
        "org_id": ids["kvk"].research_ids(people["org_p2"].where(org_known.to_numpy()), release_key, "O-"),
    })
    withheld = []
    generalised_columns = {}
    for (column, h, _), levels, level in zip(QUASI_IDENTIFIERS, generalised, node):
        codes, labels = levels[level]
        names = np.array(labels + [None], dtype=object)
        generalised_columns[column] = pd.Series(names[np.where(suppressed, -1, codes)], dtype="str")
        if h[0] == "fwg_level_band" and level > 0:
            withheld.append(h[1])  # the level would undo the code's generalisation
    out["organisation_size"] = generalised_columns["organisation_size"]
    for column in people.columns:
        if column in ("person_p2", "org_p2", "year", "organisation_size") or column in withheld:
            continue
        out[column] = generalised_columns.get(column, people[column])
    out = out[~dropped].sort_values(["person_id", "year"], ignore_index=True)
    return PersonOutcome(
        out, {c: int(l) for (c, _, _), l in zip(QUASI_IDENTIFIERS, node)}, len(people), int(suppressed.sum()),
        int(dropped.sum()), smallest, classes, evaluated, size, loss)


# organisation.rs: which count each statistic rests on (default: headcount).
RESTS_ON = {
    "mean_irregularity_share": "n_irregularity_share", "ggz_share_insured": "n_izz_insured",
    "physio_share_insured": "n_izz_insured", "mean_physical_load": "n_fwg", "mean_mental_load": "n_fwg",
    "mean_injury_risk": "n_fwg", "adverse_conditions_share": "n_fwg",
}
STATISTICS = [
    "fte", "mean_age", "temporary_share", "on_call_share", "mean_irregularity_share", "inflow_rate", "outflow_rate",
    "absence_pct", "absence_days", "available_days", "episode_frequency", "izz_coverage", "ggz_share_insured",
    "physio_share_insured", "mean_physical_load", "mean_mental_load", "mean_injury_risk", "adverse_conditions_share",
]
MONEY_BOUNDS = [0, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000]
BANDED = {
    "headcount": ("classes", [0, 50, 100, 250, 500, 1000, 2500, 5000]), "fte": ("round", 25),
    "n_irregularity_share": ("round", 5), "n_izz_insured": ("round", 5), "n_fwg": ("round", 5),
    "absence_days": ("round", 100), "available_days": ("round", 1000),
    "revenue_keur": ("classes", MONEY_BOUNDS), "personnel_cost_keur": ("classes", MONEY_BOUNDS),
    "overhead_pct": ("round", 5), "annual_report_fte": ("classes", [0, 50, 100, 250, 500, 1000, 2500]),
    "result_keur": ("classes", [-1e12, -1_000, -100, 0, 100, 1_000, 10_000]),
}
ORG_MIN_PERSONS = 10
ORG_K = 10


def fmt_bound(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else str(v)


def banded_label(values: pd.Series, bounds: list) -> pd.Series:
    """organisation.rs band_label: "100-250" is [100, 250); below the first
    bound falls in the first class."""
    names = [f"{fmt_bound(lo)}-{fmt_bound(hi)}" for lo, hi in zip(bounds, bounds[1:])] + [f"{fmt_bound(bounds[-1])}+"]
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    index = np.maximum(np.searchsorted(np.asarray(bounds, dtype="float64"), v, side="right") - 1, 0)
    return pd.Series(np.where(np.isnan(v), None, np.array(names, dtype=object)[index]), index=values.index, dtype="str")


def release_organisations(orgs: pd.DataFrame, ids: dict[str, Pseudonyms], release_key: bytes):
    kept = orgs[orgs["headcount"] >= ORG_MIN_PERSONS].reset_index(drop=True)
    out = pd.DataFrame({"org_id": ids["kvk"].research_ids(kept["org_p2"], release_key, "O-"), "year": kept["year"]})
    suppressed = {}
    for column in kept.columns.drop(["org_p2", "year"]):
        values = kept[column]
        status = None
        if column in STATISTICS:
            n = kept[RESTS_ON.get(column, "headcount")]
            status = np.where(values.isna(), "empty", np.where(n.isna() | (n < ORG_K), "primary_threshold", "safe"))
            suppressed[column] = int((status == "primary_threshold").sum())
            values = values.where(status == "safe")
        banding = BANDED.get(column)
        if banding and banding[0] == "round":
            values = pd.Series(half_up(values.to_numpy(dtype="float64", na_value=np.nan) / banding[1]) * banding[1])
        elif banding:
            values = banded_label(values, banding[1])
        out[column] = values
        if status is not None:
            out[f"{column}_status"] = pd.Series(status, dtype="str")
    released = kept[["org_p2", "year"]]
    return out.sort_values(["org_id", "year"], ignore_index=True), released, suppressed


@dataclass(frozen=True)
class TableSpec:
    name: str
    model: str  # person | organisation
    only_where: str | None
    dimensions: tuple  # (column, hierarchy or None, level)
    measures: tuple = ()
    ratio: tuple | None = None  # (name, numerator, denominator, scale)


TABLES = [
    TableSpec("leavers_by_sector_age_contract", "person", None,
              (("sector", None, 0), ("age", ("bands", [10]), 1), ("contract_type", None, 0), ("left_sector", None, 0))),
    TableSpec("absence_by_sector_size", "organisation", None,
              (("year", None, 0), ("sector", None, 0), ("headcount", ("classes", [[0, 100, 500, 2500]]), 0)),
              ("absence_days", "available_days"), ("absence_pct", "absence_days", "available_days", 100.0)),
    TableSpec("ggz_use_by_sector_age", "person", "izz_insured",
              (("sector", None, 0), ("age", ("bands", [10]), 1), ("ggz_any", None, 0))),
    TableSpec("absence_days_by_sector_contract", "person", "on_payroll",
              (("year", None, 0), ("sector", None, 0), ("contract_type", None, 0)), ("absence_days",)),
    TableSpec("care_cost_by_sector_age", "person", "izz_insured",
              (("sector", None, 0), ("age", ("bands", [10]), 1)), ("ggz_cost_eur", "physio_cost_eur")),
]
THRESHOLD = 10
TOTAL = "Total"


def tabulate(spec: TableSpec, model: pd.DataFrame, contributor: str) -> tuple[pd.DataFrame, dict]:
    """tabulate.rs with the threshold rule: every cell of the extended table
    (each dimension's categories, then its total), rows and distinct
    contributors per cell, and the measures' sums."""
    selected = model[spec.only_where].fillna(False).to_numpy(dtype=bool) if spec.only_where else np.ones(len(model), dtype=bool)
    dims, categories = [], []
    frame = pd.DataFrame({"who": model[contributor].to_numpy()})
    for i, (column, h, level) in enumerate(spec.dimensions):
        codes, labels = generalise(model[column], h or ("categorical",))[level]
        frame[i] = codes
        dims.append(i)
        categories.append(labels)
    for m in spec.measures:
        frame[m] = model[m].astype("float64").fillna(0.0).clip(lower=0.0).to_numpy()
    frame = frame[selected]
    tabulated = frame[(frame[dims] >= 0).all(axis=1)]
    rows_without = len(frame) - len(tabulated)
    named = {"rows": ("who", "size"), "contributors": ("who", "nunique")} | {m: (m, "sum") for m in spec.measures}
    parts = []
    for totals in itertools.product([False, True], repeat=len(dims)):
        # A constant key lets the grand total be one more group-by.
        kept = [d for d, t in zip(dims, totals) if not t] + ["all"]
        cells = tabulated.assign(all=0).groupby(kept).agg(**named).reset_index().drop(columns="all")
        for d, t in zip(dims, totals):
            if t:
                cells[d] = len(categories[d])  # the total's coordinate
        parts.append(cells)
    full = pd.MultiIndex.from_product([range(len(c) + 1) for c in categories], names=dims)
    cells = pd.concat(parts).set_index(dims).reindex(full, fill_value=0).reset_index()
    n = cells["contributors"].to_numpy()
    status = np.where(n == 0, "empty", np.where(n < THRESHOLD, "primary_threshold", "safe"))
    published = status != "primary_threshold"
    out = pd.DataFrame({
        column: pd.Series(np.array(c + [TOTAL], dtype=object)[cells[i].to_numpy()], dtype="str")
        for i, ((column, _, _), c) in enumerate(zip(spec.dimensions, categories))
    })
    count_column = "person_years" if spec.model == "person" else "organisation_years"
    out[count_column] = pd.array(np.where(published, cells["rows"], 0), dtype="Int64")
    out.loc[~published, count_column] = pd.NA
    for m in spec.measures:
        out[f"{m}_sum"] = cells[m].astype("float64").where(published)
    if spec.ratio:
        name, num, den, scale = spec.ratio
        out[name] = (cells[num] / cells[den] * scale).where(published & (cells[den] > 0).to_numpy())
    out["status"] = pd.Series(status, dtype="str")
    statuses = pd.Series(status).value_counts().to_dict()
    return out, {"rows_tabulated": len(tabulated), "rows_without_category": rows_without,
                 "cells": len(out), "status": {k: int(v) for k, v in statuses.items()}}


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, engine="pyarrow", index=False, compression="zstd", compression_level=3, row_group_size=65_536)


@dataclass
class Exported:
    persons: PersonOutcome
    organisations: dict
    tables: dict


def export(linked: Linked, ids: dict[str, Pseudonyms], out: Path) -> Exported:
    out.mkdir(parents=True, exist_ok=True)
    release_key = os.urandom(32)
    orgs = linked.organisation
    org_file, released_orgs, org_suppressed = release_organisations(orgs, ids, release_key)
    persons = release_persons(linked.person, orgs, released_orgs, ids, release_key)
    write_parquet(persons.frame, out / "persons.parquet")
    write_parquet(org_file, out / "organisations.parquet")
    tables = {}
    for spec in TABLES:
        model = linked.person if spec.model == "person" else orgs
        contributor = "person_p2" if spec.model == "person" else "org_p2"
        table, summary = tabulate(spec, model, contributor)
        write_parquet(table, out / f"table-{spec.name}.parquet")
        tables[spec.name] = summary
    organisations = {"rows_in": len(orgs), "rows_released": len(org_file), "suppressed": org_suppressed}
    return Exported(persons, organisations, tables)


# --------------------------------------------------------------------------
# Checks against the reference release, and the run
# --------------------------------------------------------------------------


def rows_of(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def koppel_workforce_rows(koppel_linked: Path) -> int:
    """The workforce model's rows in Koppel's linkage report of the
    reference run (bench/run.sh keeps that run's linked folder as
    koppel-linked/). The release's copy of the report rounds counts to
    tens, and the disclosure report's population_rows adds respondents off
    the payroll, so neither gives the exact count."""
    path = koppel_linked / "linkage-report.json"
    try:
        return json.loads(path.read_text())["workforce_model_rows"]
    except (OSError, ValueError, KeyError) as e:
        print(f"pandas peer: no workforce model row count to check against in {path}: {e!r}", file=sys.stderr)
        sys.exit(1)


def checks(reference: Path, koppel_linked: Path, linked: Linked, exported: Exported) -> dict:
    report = json.loads((reference / "disclosure-report.json").read_text())
    p, o = report["person"], report["organisation"]
    got_p = exported.persons
    result = {}

    def check(name, expected, got, required):
        result[name] = {"expected": expected, "got": got, "required": required, "ok": expected == got}

    check("person.rows_in", p["rows_in"], got_p.rows_in, True)
    check("workforce.rows", koppel_workforce_rows(koppel_linked), linked.workforce_rows, True)
    # Koppel protects the person file against declared recipients
    # (koppel-disclosure, issue 21); this peer still applies the earlier
    # k-anonymity, so its person file is compared, not required equal.
    check("person.rows_released", p["rows_released"], len(got_p.frame), False)
    check("persons.parquet rows", rows_of(reference / "persons.parquet"), len(got_p.frame), False)
    check("organisation.rows_in", o["rows_in"], exported.organisations["rows_in"], True)
    check("organisation.rows_released", o["rows_released"], exported.organisations["rows_released"], True)
    check("organisations.parquet rows", rows_of(reference / "organisations.parquet"), exported.organisations["rows_released"], True)
    for t in report["tables"]:
        mine = exported.tables.get(t["name"], {})
        # Koppel's person tables count the released (protected) person
        # file's rows since issue 21; this peer tabulates the model, so
        # those are compared, not required equal.
        required = t.get("model") != "person"
        check(f"table.{t['name']}.rows_tabulated", t["rows_tabulated"], mine.get("rows_tabulated"), required)
    check("person.k_reached", p["smallest_class"], got_p.smallest_class, False)
    check("person.rows_locally_suppressed", p["rows_locally_suppressed"], got_p.rows_locally_suppressed, False)
    check("person.rows_dropped", p["rows_dropped"], got_p.rows_dropped, False)
    check("person.classes", p.get("classes"), got_p.classes, False)
    check("person.levels", {q["column"]: q["level"] for q in p["quasi_identifiers"]}, got_p.levels, False)
    check("organisation.suppressed", o["suppressed"], exported.organisations["suppressed"], False)
    for t in report["tables"]:
        mine = exported.tables.get(t["name"], {})
        check(f"table.{t['name']}.primary_threshold", t["status"].get("primary_threshold", 0),
              mine.get("status", {}).get("primary_threshold", 0), False)
        check(f"table-{t['name']}.parquet rows", rows_of(reference / f"table-{t['name']}.parquet"), mine.get("cells"), False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument(
        "--koppel-linked", type=Path,
        help="Koppel's linked models of the reference run, for the workforce model's row count "
             "(default: koppel-linked beside --reference, bench/run.sh's cache layout)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.koppel_linked is None:
        args.koppel_linked = args.reference.parent / "koppel-linked"
    pa.set_cpu_count(args.threads)  # pyarrow's CSV reader and Parquet writer
    pa.set_io_thread_count(args.threads)

    stages = {}
    started = time.perf_counter()
    log("read_pseudonymise")
    frames, ids = read_and_pseudonymise(args.deliveries)
    stages["read_pseudonymise"] = time.perf_counter() - started

    started = time.perf_counter()
    log("link")
    linked = link(frames, args.out / "linked")
    del frames
    log(f"  person model {len(linked.person)} rows, workforce model {linked.workforce_rows} rows, "
        f"organisation model {len(linked.organisation)} rows")
    stages["link"] = time.perf_counter() - started

    started = time.perf_counter()
    log("export")
    exported = export(linked, ids, args.out)
    stages["export"] = time.perf_counter() - started
    p = exported.persons
    log(f"  persons: {len(p.frame)} of {p.rows_in} released, k = {p.smallest_class}, levels {p.levels}, "
        f"{p.rows_locally_suppressed} locally suppressed, {p.nodes_evaluated} of {p.lattice_size} nodes evaluated")

    result = checks(args.reference, args.koppel_linked, linked, exported)
    for name, c in result.items():
        log(f"  check {name}: expected {c['expected']}, got {c['got']}{'' if c['ok'] else ' (DIFFERS)'}")
    print(json.dumps({"stages": stages, "checks": result}))
    failed = [n for n, c in result.items() if c["required"] and not c["ok"]]
    if failed:
        print(f"pandas peer: required checks failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
