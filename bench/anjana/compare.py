#!/usr/bin/env python3
"""Koppel's person-file disclosure control beside anjana's k-anonymity.

Reads a linked person model (`koppel link --out DIR`: person_model.parquet,
organisation_model.parquet), runs anjana's k-anonymity on it for each
attacker (a set of quasi-identifiers), and measures anjana's output and,
when given, a Koppel release of the same data with the same code:

    compare.py --linked DIR [--koppel-release DIR] [--koppel-seconds S]
               [--attacker pension-fund|release-default|all] [--k 10]
               [--supp 5] [--sample N] [--out results.md]

Year is a quasi-identifier that is never generalised (its hierarchy has a
single level, so anjana can only leave it as it is): classes are formed
within a year, as Koppel forms them, while one generalisation is chosen for
all years and the suppression limit applies to all rows, as in Koppel's
lattice search. Unknown values (null in the model) are a value of their
own, as in Koppel: anjana's grouping (pandas groupby) would silently drop
rows with a null quasi-identifier from every class, so they are passed as
the token UNKNOWN and read back as null.

See bench/anjana/README.md for what the measures mean and the caveats.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

UNKNOWN = "(unknown)"  # a null quasi-identifier, as anjana sees it
TOP = "*"  # the suppressed top of every hierarchy (anjana writes it)

# --------------------------------------------------------------------------
# Generalisation hierarchies. They mirror docs/disclosure-control.md
# ("Quasi-identifiers and hierarchies") and the labels Koppel writes
# (crates/koppel-export/src/hierarchy.rs: "25-29", "10xx", province names,
# "FWG 30-39", size classes "100-249"); hours_per_week and months_employed
# are not quasi-identifiers in today's defaults and follow issue 21.
# Level 0 is the value as linked; every hierarchy ends in "*" (suppressed),
# which is appended below and not listed. A level is (name, label), label
# taking the level-0 label and the side value (the FWG level for function
# codes, the headcount for the size class) and returning the label at that
# level, or None (unknown, as Koppel releases null there).
# --------------------------------------------------------------------------

FINE_SIZE = [0, 50, 100, 250, 500, 1000, 2500]
COARSE_SIZE = [0, 100, 500, 2500]


def band(v: int, width: int) -> str:
    lo = (v // width) * width
    return f"{lo}-{lo + width - 1}"


def class_label(v: int, bounds: list[int]) -> str:
    i = max((j for j, b in enumerate(bounds) if b <= v), default=None)
    if i is None:
        return f"<{bounds[0]}"
    if i + 1 == len(bounds):
        return f"{bounds[i]}+"
    return f"{bounds[i]}-{bounds[i + 1] - 1}"


def province(postcode4: int) -> str | None:
    pc2 = postcode4 // 100
    table = [
        ((10, 12), "Noord-Holland"), ((14, 21), "Noord-Holland"),
        ((13, 13), "Flevoland"), ((82, 83), "Flevoland"),
        ((22, 33), "Zuid-Holland"), ((42, 42), "Zuid-Holland"),
        ((34, 39), "Utrecht"),
        ((40, 41), "Gelderland"), ((65, 73), "Gelderland"),
        ((43, 45), "Zeeland"),
        ((46, 57), "Noord-Brabant"),
        ((58, 64), "Limburg"),
        ((74, 77), "Overijssel"), ((80, 81), "Overijssel"),
        ((78, 79), "Drenthe"), ((93, 94), "Drenthe"),
        ((84, 92), "Friesland"),
        ((95, 99), "Groningen"),
    ]
    for (lo, hi), name in table:
        if lo <= pc2 <= hi:
            return name
    return None


FINE_SIZE_LABELS = {class_label(d, FINE_SIZE) for d in range(-1, 6000)}


def months_band(v: int) -> str:
    return "1-5" if v <= 5 else "6-11" if v <= 11 else "12"


def hours_band(h: float, width: int) -> str:
    lo = int(math.floor(h / width)) * width
    return f"{lo}-{lo + width - 1}"  # [lo, lo + width): 36-39 holds 39.5


def is_int(label: str) -> bool:
    return re.fullmatch(r"-?\d+", label) is not None


def is_number(label: str) -> bool:
    try:
        float(label)
        return "-" not in label[1:]
    except ValueError:
        return False


@dataclass
class Hierarchy:
    level0: str  # name of level 0
    is_level0: Callable[[str], bool]  # does a released label look like level 0?
    levels: list[tuple[str, Callable[[str, str | None], str | None]]]
    domain: range = range(0)  # level-0 values (as side values too) to enumerate
    side: str | None = None  # column the labels need beside the value
    universes: list[set[str]] = field(default_factory=list)

    def __post_init__(self):
        # Every label a level can take, for telling the level of a released
        # column from its values.
        for _, fn in self.levels:
            self.universes.append({l for d in self.domain if (l := fn(str(d), str(d))) is not None})

    @property
    def names(self) -> list[str]:
        return [self.level0] + [n for n, _ in self.levels] + ["suppressed"]

    @property
    def top(self) -> int:
        return len(self.levels) + 1


def any_label(label: str) -> bool:
    return True


HIERARCHIES: dict[str, Hierarchy] = {
    "year": Hierarchy("as linked", is_int, []),  # never generalised
    "age": Hierarchy(
        "exact", is_int,
        [("5-year band", lambda v, s: band(int(v), 5)),
         ("10-year band", lambda v, s: band(int(v), 10))],
        domain=range(0, 121)),
    "sex": Hierarchy("as linked", any_label, []),
    "sector": Hierarchy("as linked", any_label, []),
    "contract_type": Hierarchy("as linked", any_label, []),
    "postcode4": Hierarchy(
        "postcode4", lambda l: re.fullmatch(r"\d{4}", l) is not None,
        [("postcode2 region", lambda v, s: f"{int(v) // 100}xx"),
         ("province", lambda v, s: province(int(v)))],
        domain=range(1000, 10000)),
    "fwg_function_code": Hierarchy(
        "function code", lambda l: re.fullmatch(r"\d{4}", l) is not None,
        [("FWG level band of 10", lambda v, s: None if s is None else f"FWG {band(int(s), 10)}")],
        domain=range(0, 101), side="fwg_level"),
    "organisation_size": Hierarchy(
        "size class", lambda l: l in FINE_SIZE_LABELS,
        [("coarser class", lambda v, s: None if s is None else class_label(int(s), COARSE_SIZE))],
        domain=range(-1, 6000), side="headcount"),
    "hours_per_week": Hierarchy(
        "exact", is_number,
        [("4-hour band", lambda v, s: hours_band(float(v), 4)),
         ("12-hour band", lambda v, s: hours_band(float(v), 12))],
        domain=range(0, 169)),
    "months_employed": Hierarchy(
        "exact", is_int,
        [("1-5 / 6-11 / 12", lambda v, s: months_band(int(v)))],
        domain=range(0, 13)),
}

# The attackers: what each knows of a person. Year first; it is never
# generalised. "pension-fund" is issue 21's: the payroll columns PFZW holds.
# "release-default" is today's default quasi-identifier set of a Koppel
# release (docs/disclosure-control.md), the like-for-like comparison.
ATTACKERS: dict[str, list[str]] = {
    "pension-fund": ["year", "age", "sex", "sector", "postcode4", "contract_type",
                     "fwg_function_code", "hours_per_week", "months_employed"],
    "release-default": ["year", "age", "sex", "postcode4", "sector",
                        "fwg_function_code", "organisation_size", "contract_type"],
}

# Where each quasi-identifier is in Koppel's persons.parquet. A column
# that is missing there (withheld) counts as suppressed in every row. When
# the release renames or re-bands a column, change it here.
KOPPEL_COLUMNS: dict[str, str] = {
    "year": "year",
    "age": "age",
    "sex": "sex",
    "sector": "sector",
    "postcode4": "postcode4",
    "contract_type": "contract_type",
    "fwg_function_code": "fwg_function_code",
    "organisation_size": "organisation_size",
    "hours_per_week": "hours_per_week",
    "months_employed": "months_employed",
}

INT_COLUMNS = {"year", "age", "postcode4", "months_employed", "fwg_level", "headcount"}


# --------------------------------------------------------------------------
# Labels: one text form per value, for both tools' output and the input.
# --------------------------------------------------------------------------

def canon(name: str, s: pd.Series) -> pd.Series:
    """Each value as text (ints without a fraction, floats by repr), None
    where null, suppressed (`*`) or unknown."""
    def one(v):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return str(int(v)) if name in INT_COLUMNS and float(v).is_integer() else repr(float(v))
        v = str(v)
        return None if v in (TOP, UNKNOWN) else v
    return s.map(one).astype(object)


# --------------------------------------------------------------------------
# Input: the linked models.
# --------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_linked(linked: Path, sample: int | None, seed: int) -> pd.DataFrame:
    cols = ["year", "org_p2", "age", "sex", "sector", "postcode4", "contract_type",
            "fwg_function_code", "fwg_level", "hours_per_week", "months_employed"]
    persons = pq.read_table(linked / "person_model.parquet", columns=cols).to_pandas()
    orgs = pq.read_table(linked / "organisation_model.parquet",
                         columns=["org_p2", "year", "headcount"]).to_pandas()
    df = persons.merge(orgs, on=["org_p2", "year"], how="left", validate="many_to_one")
    df = df.drop(columns=["org_p2"])
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed).sort_index()
    df = df.reset_index(drop=True)
    out = pd.DataFrame({c: canon(c, df[c]) for c in df.columns})
    # The size class of the main employer, level 0 of organisation_size.
    out["organisation_size"] = [
        None if h is None else class_label(int(h), FINE_SIZE) for h in out["headcount"]]
    return out


# --------------------------------------------------------------------------
# anjana
# --------------------------------------------------------------------------

def anjana_hierarchy(df: pd.DataFrame, qi: str) -> dict[int, np.ndarray]:
    """ARX-style hierarchy for anjana: one row per distinct value, one
    column per level."""
    h = HIERARCHIES[qi]
    values = df[qi].fillna(UNKNOWN)
    if h.side is not None:
        # The first side value seen for each value (as Koppel's hierarchy.rs).
        side = df[h.side].where(df[qi].notna())
        firsts = pd.DataFrame({"v": values, "s": side}).groupby("v", sort=True)["s"].first()
        pairs = list(firsts.items())
    else:
        pairs = [(v, None) for v in sorted(values.unique())]
    levels: dict[int, list] = {0: [v for v, _ in pairs]}
    for i, (_, fn) in enumerate(h.levels, start=1):
        col = []
        for v, s in pairs:
            label = None if v == UNKNOWN else fn(v, None if s is None or pd.isna(s) else s)
            col.append(UNKNOWN if label is None else label)
        levels[i] = col
    if qi != "year":
        levels[len(levels)] = [TOP] * len(pairs)
    return {lvl: np.array(col, dtype=object) for lvl, col in levels.items()}


def run_anjana(df: pd.DataFrame, qis: list[str], k: int, supp: float) -> tuple[pd.DataFrame, float]:
    from anjana.anonymity import k_anonymity

    data = pd.DataFrame({qi: df[qi].fillna(UNKNOWN) for qi in qis})
    hierarchies = {qi: anjana_hierarchy(df, qi) for qi in qis}
    t0 = time.perf_counter()
    out = k_anonymity(data, [], qis, k, supp, hierarchies)
    seconds = time.perf_counter() - t0
    return out, seconds


# --------------------------------------------------------------------------
# The measures, the same code for both tools.
# --------------------------------------------------------------------------

@dataclass
class Measures:
    rows_in: int
    rows_released: int = 0
    rows_all_suppressed: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    level: dict[str, int | None] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    classes: int = 0
    smallest: int = 0
    discernibility: int = 0
    rows_below_k: int = 0
    seconds: float | None = None
    seconds_note: str = ""
    own_qis_below_k: str = "same as above"
    notes: list[str] = field(default_factory=list)


def detect_level(qi: str, labels: set[str]) -> int | None:
    """The lowest level of the hierarchy whose labels cover every released
    (non-null) label; the top when all are suppressed; None when the labels
    fit no level (a new banding, say)."""
    h = HIERARCHIES[qi]
    if not labels:
        return h.top
    if all(h.is_level0(l) for l in labels):
        return 0
    for i, universe in enumerate(h.universes, start=1):
        if labels <= universe:
            return i
    return None


def classes_of(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """Equivalence-class sizes, null a value of its own."""
    if not len(frame):
        return pd.Series([], dtype=int)
    return frame.groupby(cols, dropna=False, sort=False).size()


def measure(out: pd.DataFrame, qis: list[str], rows_in: int, k: int) -> Measures:
    m = Measures(rows_in=rows_in, rows_released=len(out))
    cols = {}
    for qi in qis:
        if qi in out.columns:
            cols[qi] = canon(qi, out[qi])
        else:
            cols[qi] = pd.Series([None] * len(out), dtype=object)
            m.absent.add(qi)
    frame = pd.DataFrame(cols)
    generalisable = [qi for qi in qis if qi != "year"]
    m.rows_all_suppressed = int(frame[generalisable].isna().all(axis=1).sum()) if len(frame) else 0
    for qi in qis:
        col = frame[qi]
        m.suppressed[qi] = int(col.isna().sum())
        labels = set(col.dropna().unique())
        m.categories[qi] = len(labels)
        m.level[qi] = detect_level(qi, labels)
    sizes = classes_of(frame, qis)
    m.classes = len(sizes)
    m.smallest = int(sizes.min()) if len(sizes) else 0
    m.discernibility = int((sizes.astype(np.int64) ** 2).sum())
    m.rows_below_k = int(sizes[sizes < k].sum())
    return m


# --------------------------------------------------------------------------
# Koppel's side.
# --------------------------------------------------------------------------

@dataclass
class KoppelRelease:
    path: Path
    persons: pd.DataFrame
    report: dict
    release_id: str
    person_model_sha256: str | None


def read_release(path: Path) -> KoppelRelease:
    persons = pq.read_table(path / "persons.parquet").to_pandas()
    report = json.loads((path / "disclosure-report.json").read_text())
    release_id, sha = "?", None
    manifest = path / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        release_id = m.get("release_id", "?")
        sha = next((i["sha256"] for i in m.get("inputs", []) if i.get("name") == "person_model.parquet"), None)
    return KoppelRelease(path, persons, report, release_id, sha)


def measure_koppel(rel: KoppelRelease, qis: list[str], k: int) -> Measures:
    person = rel.report.get("person", {})
    out = pd.DataFrame({qi: rel.persons[KOPPEL_COLUMNS[qi]]
                        for qi in qis if KOPPEL_COLUMNS.get(qi) in rel.persons.columns})
    out.index = rel.persons.index
    m = measure(out, qis, int(person.get("rows_in", len(rel.persons))), k)
    # The release's own guarantee, checked by the same class count (year ×
    # the quasi-identifiers it declares, counted in the released rows).
    declared = [q.get("column") for q in person.get("quasi_identifiers", []) if isinstance(q, dict)]
    own = [c for c in (KOPPEL_COLUMNS.get(q, q) for q in declared if q) if c in rel.persons.columns]
    if own:
        own = ["year"] + [c for c in own if c != "year"]
        sizes = classes_of(pd.DataFrame({c: canon(c, rel.persons[c]) for c in own}), own)
        m.own_qis_below_k = f"{int(sizes[sizes < k].sum()):,}"
    else:
        m.own_qis_below_k = "? (no quasi-identifiers in the report)"
    loss = person.get("information_loss")
    m.notes.append(
        f"Koppel's report: {person.get('rows_locally_suppressed', '?')} rows locally suppressed, "
        f"{person.get('rows_dropped', '?')} left out; information loss "
        + (f"{loss:.3f}" if isinstance(loss, (int, float)) else "?")
        + f" (weighted, its own measure); smallest class {person.get('smallest_class', '?')}.")
    # Releases with per-recipient attacker models report each one's risk;
    # quoted as they are (a k-map counted in the workforce can leave
    # classes of the file itself below k by design).
    for r in person.get("recipients", []) or []:
        if isinstance(r, dict):
            m.notes.append(
                f"report, recipient `{r.get('recipient')}` ({r.get('reference', '?')}): knows "
                f"{', '.join(r.get('knows', []))}; at risk before {r.get('at_risk_before', '?')}, "
                f"after {r.get('at_risk_after', '?')}; smallest class {r.get('smallest_class', '?')}.")
    for q in person.get("quasi_identifiers", []):
        qi = q.get("column") if isinstance(q, dict) else None
        lvl = q.get("level") if isinstance(q, dict) else None
        if qi in m.level and m.level[qi] is not None and lvl is not None and m.level[qi] != lvl:
            m.notes.append(f"`{qi}`: level read from the data {m.level[qi]}, report says {lvl}.")
    return m


# --------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------

def pct(n: int, d: int) -> str:
    return "–" if d == 0 else f"{100 * n / d:.1f}%"


def level_text(qi: str, lvl: int | None) -> str:
    h = HIERARCHIES[qi]
    if lvl is None:
        return "? (labels fit no level)"
    return f"{lvl}/{h.top} {h.names[lvl]}"


def height(m: Measures, qis: list[str]) -> str:
    hs = [m.level[q] / HIERARCHIES[q].top for q in qis if q != "year" and m.level[q] is not None]
    if len(hs) != len([q for q in qis if q != "year"]):
        return "?"
    return f"{sum(hs) / len(hs):.3f}"


def table(attacker: str, qis: list[str], cols: dict[str, Measures], unknown_in: dict[str, int], k: int) -> str:
    names = list(cols)
    ms = [cols[n] for n in names]
    gen = [q for q in qis if q != "year"]
    rows: list[tuple[str, list[str]]] = []
    add = lambda label, f: rows.append((label, [f(m) for m in ms]))
    add("rows in", lambda m: f"{m.rows_in:,}")
    add("rows released", lambda m: f"{m.rows_released:,}")
    add("rows left out (record suppression)",
        lambda m: f"{m.rows_in - m.rows_released:,} ({pct(m.rows_in - m.rows_released, m.rows_in)})")
    add("released rows with every QI suppressed (local suppression)",
        lambda m: f"{m.rows_all_suppressed:,} ({pct(m.rows_all_suppressed, m.rows_released)})")
    add("QI values suppressed, released rows",
        lambda m: pct(sum(m.suppressed[q] for q in gen), m.rows_released * len(gen)))
    add("QI values suppressed, left-out rows counted as suppressed",
        lambda m: pct(sum(m.suppressed[q] for q in gen) + (m.rows_in - m.rows_released) * len(gen),
                      m.rows_in * len(gen)))
    for q in gen:
        add(f"`{q}` suppressed", lambda m, q=q: pct(m.suppressed[q], m.rows_released)
            + (" (column absent)" if q in m.absent else ""))
    for q in gen:
        add(f"`{q}` level", lambda m, q=q: level_text(q, m.level[q]))
    add("mean normalised generalisation height (unweighted)", lambda m: height(m, qis))
    for q in gen:
        add(f"`{q}` categories", lambda m, q=q: f"{m.categories[q]:,}")
    add("equivalence classes (within year)", lambda m: f"{m.classes:,}")
    add("average class size", lambda m: f"{m.rows_released / m.classes:.1f}" if m.classes else "–")
    add("discernibility: sum of class size², released rows", lambda m: f"{m.discernibility:,}")
    add("discernibility, each left-out row charged n (ARX's DM)",
        lambda m: f"{m.discernibility + (m.rows_in - m.rows_released) * m.rows_in:,}")
    add("smallest class", lambda m: f"{m.smallest:,}")
    add(f"rows in classes < k over these QIs", lambda m: f"{m.rows_below_k:,}")
    if len(ms) > 1:
        add("rows in classes < k over the tool's own QIs", lambda m: m.own_qis_below_k)
    add("wall time", lambda m: "–" if m.seconds is None else f"{m.seconds:.1f} s{m.seconds_note}")

    lines = [f"### Attacker `{attacker}`", "",
             "Quasi-identifiers: " + ", ".join(f"`{q}`" for q in qis) + ".", ""]
    lines.append("| measure | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    lines.append("")
    unk = ", ".join(f"`{q}` {unknown_in[q]:,}" for q in gen if unknown_in.get(q))
    if unk:
        lines.append(f"Unknown (null) in the input, and counted as suppressed above: {unk}.")
        lines.append("")
    for n, m in cols.items():
        for note in m.notes:
            lines.append(f"- {n}: {note}")
    if any(m.notes for m in ms):
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--linked", type=Path, required=True, help="folder `koppel link` wrote")
    p.add_argument("--koppel-release", type=Path, help="a Koppel release directory (optional)")
    p.add_argument("--koppel-seconds", type=float, help="wall time of the `koppel export` that made it")
    p.add_argument("--koppel-person-seconds", type=float,
                   help="the person file's part of it (export's log: `person file anonymised`)")
    p.add_argument("--koppel-note", help="how the release was made, for the results")
    p.add_argument("--attacker", default="all", choices=[*ATTACKERS, "all"])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--supp", type=float, default=None,
                   help="anjana's supp_level in %% (default: the release's max_suppression_pct, else 5)")
    p.add_argument("--sample", type=int, help="run on a random sample of this many rows")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    args = p.parse_args()

    release = read_release(args.koppel_release) if args.koppel_release else None
    supp, supp_from = args.supp, "--supp"
    if supp is None:
        supp_from = "the release's max_suppression_pct" if release else "default"
        supp = float(release.report.get("person", {}).get("max_suppression_pct", 5.0)) if release else 5.0
        rk = release.report.get("person", {}).get("k") if release else None
        if rk is not None and rk != args.k:
            print(f"note: the release has k = {rk}, comparing at k = {args.k}", file=sys.stderr)

    t0 = time.perf_counter()
    df = read_linked(args.linked, args.sample, args.seed)
    read_s = time.perf_counter() - t0
    model_sha = sha256(args.linked / "person_model.parquet")
    print(f"read {len(df):,} rows from {args.linked} in {read_s:.1f} s", file=sys.stderr)

    header = [
        "# anjana beside Koppel: person file, k-anonymity", "",
        f"- input: `{args.linked / 'person_model.parquet'}` (sha256 {model_sha[:16]}…), "
        f"{len(df):,} respondent-years"
        + (f" (a random sample, seed {args.seed})" if args.sample else ""),
        f"- k = {args.k}, suppression limit {supp:g}% of rows ({supp_from})",
        f"- anjana {metadata.version('anjana')} (pycanon {metadata.version('pycanon')}, "
        f"pandas {pd.__version__}, numpy {np.__version__}), Python {sys.version.split()[0]}",
        "- year is a quasi-identifier anjana never generalises (a one-level hierarchy): "
        "classes within a year, one generalisation and one suppression limit for all years",
    ]
    if release:
        same = release.person_model_sha256 == model_sha
        header.append(
            f"- Koppel release `{release.release_id}`"
            + ("" if args.koppel_note else f" from `{release.path}`") + ": "
            + ("made from this same person model (manifest checksum matches)" if same and not args.sample else
               "made from this person model, but anjana ran on a sample" if same else
               "**made from a different person model** (not the same data: compare shapes, not rows)")
            + (f"; {args.koppel_note}" if args.koppel_note else ""))
    header.append("")

    attackers = list(ATTACKERS) if args.attacker == "all" else [args.attacker]
    sections = []
    for attacker in attackers:
        qis = ATTACKERS[attacker]
        print(f"anjana, attacker {attacker}: {', '.join(qis)}", file=sys.stderr)
        out, seconds = run_anjana(df, qis, args.k, supp)
        print(f"  {len(out):,} rows out in {seconds:.1f} s", file=sys.stderr)
        m_anjana = measure(out, qis, len(df), args.k)
        m_anjana.seconds = seconds
        m_anjana.seconds_note = " (k_anonymity call)"
        cols = {"anjana": m_anjana}
        if release:
            m_koppel = measure_koppel(release, qis, args.k)
            if args.koppel_person_seconds is not None:
                m_koppel.seconds = args.koppel_person_seconds
                m_koppel.seconds_note = " (person file" + (
                    f"; whole `koppel export` {args.koppel_seconds:.1f} s)" if args.koppel_seconds else ")")
            elif args.koppel_seconds is not None:
                m_koppel.seconds = args.koppel_seconds
                m_koppel.seconds_note = " (whole `koppel export`)"
            cols["Koppel"] = m_koppel
        unknown_in = {q: int(df[q].isna().sum()) for q in qis}
        sections.append(table(attacker, qis, cols, unknown_in, args.k))

    text = "\n".join(header) + "\n" + "\n".join(sections)
    print(text)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
