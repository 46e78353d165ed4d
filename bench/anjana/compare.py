#!/usr/bin/env python3
"""Koppel's person-file disclosure control beside anjana's k-anonymity.

Reads a Koppel release (`persons.parquet`, `disclosure-report.json`,
`manifest.json`) and the linked folder it was made from (`koppel link
--out DIR`: person_model.parquet, organisation_model.parquet,
workforce_model.parquet). The release's disclosure report names the
recipients and what each knows (`person.recipients[].knows`) and the
hierarchies, allowed levels and weights of every variable
(`rules.person.variables`, `person.quasi_identifiers`). For each recipient
compared, anjana's k-anonymity runs on the same person model with the
recipient's known variables as quasi-identifiers, the same hierarchies
(from each variable's minimum level up to withheld), the same k and the
release's `max_suppression_pct` as its record-suppression limit. Both
outputs are then measured by the same code, among them each recipient's
attack counted in the released rows and persons (the sample: anjana's
model) and in the workforce (k-map: Koppel's model for every recipient
that does not know who responded).

    compare.py --linked DIR --koppel-release DIR
               [--attacker all | --attacker pfzw --attacker outsider …]
               [--k 10] [--supp PCT] [--sample N] [--seed 21]
               [--koppel-seconds S] [--koppel-person-seconds S]
               [--koppel-note TEXT] [--out results.md]

Year is a quasi-identifier anjana never generalises (a one-level
hierarchy): anjana forms classes within a year, chooses one generalisation
for both years and applies the suppression limit to all rows. Unknown
values (null in the model) are a value of their own: anjana's grouping
(pandas groupby) would silently drop rows with a null quasi-identifier from
every class, so they are passed as the token UNKNOWN and read back as null.

See bench/anjana/README.md for what the measures mean and the caveats.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

UNKNOWN = "(unknown)"  # a null quasi-identifier, as anjana sees it
TOP = "*"  # the withheld top of every hierarchy (anjana writes it)
YEAR = "year"
ORGANISATION_SIZE = "organisation_size"  # derived: the employer's headcount
UNION = "union"  # every recipient's variables: one k-anonymous file for all

# Without --attacker: every recipient of the release's report that knows
# more than the year, once per distinct (knows, counted in) — the employer
# knows what the pension fund knows and is compared with it.
DEFAULT_ATTACKERS = ["all"]


# --------------------------------------------------------------------------
# Hierarchies, as docs/disclosure-control.md ("Hierarchies") defines them and
# disclosure-report.json states them; labels written as the release writes
# them (the same rules as crates/koppel-testkit/src/attack.rs, implemented
# here again). Level 0 is the value as linked; the last level withholds it.
# --------------------------------------------------------------------------

REGIONS = [
    (10, 12, "Noord-Holland"), (13, 13, "Flevoland"), (14, 21, "Noord-Holland"),
    (22, 33, "Zuid-Holland"), (34, 39, "Utrecht"), (40, 41, "Gelderland"),
    (42, 42, "Zuid-Holland"), (43, 45, "Zeeland"), (46, 57, "Noord-Brabant"),
    (58, 64, "Limburg"), (65, 73, "Gelderland"), (74, 77, "Overijssel"),
    (78, 79, "Drenthe"), (80, 81, "Overijssel"), (82, 83, "Flevoland"),
    (84, 92, "Friesland"), (93, 94, "Drenthe"), (95, 99, "Groningen"),
]
LANDSDEEL = {
    "Groningen": "Noord-Nederland", "Friesland": "Noord-Nederland", "Drenthe": "Noord-Nederland",
    "Overijssel": "Oost-Nederland", "Flevoland": "Oost-Nederland", "Gelderland": "Oost-Nederland",
    "Noord-Brabant": "Zuid-Nederland", "Limburg": "Zuid-Nederland",
}


def province(postcode4: int) -> str | None:
    region = postcode4 // 100
    return next((p for lo, hi, p in REGIONS if lo <= region <= hi), None)


def band(v: int, width: int) -> str:
    lo = (v // width) * width
    return f"{lo}-{lo + width - 1}"


def plain_number(x: float) -> str:
    t = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if t == "-0" else t


def value_label(v) -> str | None:
    """A linked value as a release writes it at level 0."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    return str(v)


@dataclass
class Variable:
    """A released variable of the person file: hierarchy, allowed range,
    weight, and the level the release chose."""
    column: str
    kind: str
    spec: dict
    min_level: int
    max_level: int
    weight: float
    level: int  # the release's
    side: str | None = None  # the column the labels need beside the value

    @property
    def levels(self) -> int:
        k, s = self.kind, self.spec
        return {"categorical": 2, "postcode": 5, "fwg_level_band": 3}.get(k) or (
            len(s["levels"]) + 2 if k == "groups" else
            len(s["widths"]) + 2 if k in ("bands", "steps") else
            len(s["levels"]) + 1 if k == "classes" else 0)

    @property
    def top(self) -> int:
        return self.levels - 1

    def height(self, level: int) -> float:
        return level / self.top if self.top > 0 else 0.0

    def level_name(self, level: int) -> str:
        k, s = self.kind, self.spec
        if level == self.top:
            return "withheld"
        if k == "postcode":
            return ["postcode4", "postcode2 region", "province", "landsdeel"][level]
        if k == "fwg_level_band":
            return "function code" if level == 0 else f"FWG level bands of {s['width']}"
        if k == "bands":
            return "exact" if level == 0 else f"{s['widths'][level - 1]}-year bands" \
                if self.column == "age" else f"bands of {s['widths'][level - 1]}"
        if k == "steps":
            return "exact" if level == 0 else f"steps of {plain_number(s['widths'][level - 1])}"
        if k == "classes":
            return f"{len(s['levels'][level])} classes"
        if k == "groups":
            return "as linked" if level == 0 else f"groups ({len(set(s['levels'][level - 1].values()))})"
        return "as linked"

    def label(self, level: int, value, side) -> str | None:
        """The label the release gives `value` at `level` (None: null)."""
        if value is None or level >= self.top:
            return None
        k, s = self.kind, self.spec
        if level == 0 and k != "classes":
            return value_label(value)
        if k == "groups":
            return s["levels"][level - 1][value_label(value)]
        if k == "bands":
            return band(int(value), int(s["widths"][level - 1]))
        if k == "steps":
            w = float(s["widths"][level - 1])
            lo = math.floor(float(value) / w) * w
            return f"{plain_number(lo)}-{plain_number(lo + w)}"
        if k == "classes":
            bounds = s["levels"][level]
            x = float(value)
            below = sum(1 for b in bounds if b <= x)
            if below == 0:
                return f"<{bounds[0]}"
            if below == len(bounds):
                return f"{bounds[-1]}+"
            if isinstance(value, float):  # fractions: half-open labels
                return f"{bounds[below - 1]}-<{bounds[below]}"
            return f"{bounds[below - 1]}-{bounds[below] - 1}"
        if k == "postcode":
            p = province(int(value))
            return f"{int(value) // 100}xx" if level == 1 else p if level == 2 else (
                None if p is None else LANDSDEEL.get(p, "West-Nederland"))
        if k == "fwg_level_band":
            return None if side is None else f"FWG {band(int(side), int(s['width']))}"
        raise ValueError(f"{self.column}: hierarchy kind {k!r} is not known here")


def variables_of(report: dict) -> dict[str, Variable]:
    person = report["person"]
    levels = {q["column"]: q for q in person.get("quasi_identifiers", [])}
    out = {}
    for v in report["rules"]["person"]["variables"]:
        col, h = v["column"], v["hierarchy"]
        var = Variable(col, h["kind"], h, int(v.get("min_level") or 0), 0,
                       float(v.get("weight") or 1.0), int(levels.get(col, {}).get("level", 0)),
                       h.get("level_column") if h["kind"] == "fwg_level_band" else None)
        mx = v.get("max_level")
        var.max_level = var.top if mx is None else int(mx)
        out[col] = var
    return out


# --------------------------------------------------------------------------
# Input: the linked models, and the population (workforce) drawn from them.
# --------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
            pa.float64(): pd.Float64Dtype()}


def read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    names = set(pq.read_schema(path).names)
    t = pq.read_table(path, columns=[c for c in columns if c in names])
    return t.to_pandas(types_mapper=NULLABLE.get)


def with_headcount(df: pd.DataFrame, orgs: pd.DataFrame) -> pd.DataFrame:
    """organisation_size's value: the organisation model's headcount of the
    row's employer and year (as Koppel and attack.rs derive it)."""
    m = df.merge(orgs, on=["org_p2", YEAR], how="left", validate="many_to_one")
    df = df.copy()
    df[ORGANISATION_SIZE] = m["headcount"].to_numpy()
    return df


def read_linked(linked: Path, columns: list[str], sides: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The person model (the respondents) and the population: every
    workforce row plus the respondents' rows off the payroll, each with a
    person unit (the stage-2 pseudonym, compared, never shown)."""
    want = ["person_p2", YEAR, "org_p2", "on_payroll"] + [c for c in columns if c != ORGANISATION_SIZE] + sides
    want = list(dict.fromkeys(want))
    persons = read_parquet(linked / "person_model.parquet", want)
    workforce = read_parquet(linked / "workforce_model.parquet", want)
    orgs = read_parquet(linked / "organisation_model.parquet", ["org_p2", YEAR, "headcount"])
    if ORGANISATION_SIZE in columns:
        persons = with_headcount(persons, orgs)
        workforce = with_headcount(workforce, orgs)
    off = persons[persons["on_payroll"].fillna(False) != True]  # noqa: E712
    population = pd.concat([workforce, off[[c for c in workforce.columns if c in off.columns]]],
                           ignore_index=True)
    # One numbering of persons for both (a null pseudonym: a person of its own).
    p2 = pd.concat([persons["person_p2"], population["person_p2"]], ignore_index=True)
    codes, _ = pd.factorize(p2)
    nulls = codes < 0
    codes[nulls] = codes.max() + 1 + np.arange(nulls.sum())
    persons["unit"] = codes[: len(persons)]
    population["unit"] = codes[len(persons):]
    return persons.drop(columns=["person_p2"]), population.drop(columns=["person_p2"])


def labelled(df: pd.DataFrame, var: Variable, levels: list[int]) -> dict[int, np.ndarray]:
    """The label of every row of `df` at each level: each distinct
    (value, side) labelled once."""
    vcodes, vuniq = pd.factorize(df[var.column])
    vals = [None if pd.isna(x) else x for x in vuniq.tolist()]
    if var.side is not None:
        scodes, suniq = pd.factorize(df[var.side])
        sides = [None if pd.isna(x) else x for x in suniq.tolist()]
        combined = (vcodes.astype(np.int64) + 1) * (len(sides) + 1) + (scodes + 1)
        codes, pairs = pd.factorize(combined)
        pairs = [((p // (len(sides) + 1)) - 1, (p % (len(sides) + 1)) - 1) for p in pairs.tolist()]
        uniq = [(None if v < 0 else vals[v], None if s < 0 else sides[s]) for v, s in pairs]
    else:
        codes = vcodes
        uniq = [(v, None) for v in vals]
    nulls = codes < 0
    out = {}
    for level in levels:
        table = np.array([var.label(level, v, s) for v, s in uniq] + [None], dtype=object)
        out[level] = table[np.where(nulls, len(uniq), codes)]
    return out


# --------------------------------------------------------------------------
# anjana
# --------------------------------------------------------------------------

def anjana_input(labels: dict[str, dict[int, np.ndarray]], years: np.ndarray,
                 qis: list[str], variables: dict[str, Variable]) -> tuple[pd.DataFrame, dict]:
    """anjana's data (every quasi-identifier at its minimum level, null as
    UNKNOWN) and its ARX-style hierarchies: one row per distinct value at the
    minimum level, one column per level up to the maximum, `*` on top."""
    data = {YEAR: years.astype(str)}
    hierarchies = {YEAR: {0: np.array(sorted(set(data[YEAR])), dtype=object)}}
    for qi in qis:
        if qi == YEAR:
            continue
        var = variables[qi]
        lvls = list(range(var.min_level, var.max_level + 1))
        cols = [np.where(pd.isna(labels[qi][lvl]), UNKNOWN, labels[qi][lvl]) for lvl in lvls]
        if var.max_level == var.top:
            cols[-1] = np.full(len(years), TOP, dtype=object)
        data[qi] = cols[0]
        table = pd.DataFrame({i: c for i, c in enumerate(cols)}).drop_duplicates(subset=[0])
        for i in range(1, len(cols)):
            # Nesting: one value at a level has one generalisation above it.
            nested = pd.DataFrame({i - 1: cols[i - 1], i: cols[i]}).drop_duplicates()
            if nested[i - 1].duplicated().any():
                raise ValueError(f"{qi}: level {lvls[i]} does not nest in level {lvls[i - 1]}")
        hierarchies[qi] = {i: table[i].to_numpy(dtype=object) for i in range(len(cols))}
    return pd.DataFrame(data)[qis], hierarchies


def run_anjana(data: pd.DataFrame, hierarchies: dict, qis: list[str], k: int, supp: float):
    """anjana's k-anonymity; returns its output, the input row of each output
    row, anjana's generalisation level per quasi-identifier (None: read from
    the labels) and the seconds of the call."""
    try:
        from anjana.anonymity._k_anonymity import k_anonymity_inner
    except ImportError:  # another anjana: the public call, levels from labels
        k_anonymity_inner = None
    from anjana.anonymity import k_anonymity

    t0 = time.perf_counter()
    if k_anonymity_inner is not None:
        out, _, gen_level = k_anonymity_inner(data, [], qis, k, supp, hierarchies)
    else:
        out, gen_level = k_anonymity(data, [], qis, k, supp, hierarchies), None
    seconds = time.perf_counter() - t0
    # After record suppression anjana returns `.reset_index()`: the input
    # row is in column "index"; otherwise in the index itself.
    rows = out["index"].to_numpy() if "index" in out.columns else out.index.to_numpy()
    return out, rows.astype(np.int64), gen_level, seconds


# --------------------------------------------------------------------------
# Koppel's release.
# --------------------------------------------------------------------------

@dataclass
class Release:
    path: Path
    persons: pd.DataFrame
    report: dict
    release_id: str
    inputs: dict[str, str]


def read_release(path: Path) -> Release:
    persons = pq.read_table(path / "persons.parquet").to_pandas(types_mapper=NULLABLE.get)
    report = json.loads((path / "disclosure-report.json").read_text())
    release_id, inputs = "?", {}
    manifest = path / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        release_id = m.get("release_id", "?")
        inputs = {i.get("name"): i.get("sha256") for i in m.get("inputs", [])}
    return Release(path, persons, report, release_id, inputs)


def released_labels(s: pd.Series) -> np.ndarray:
    """A released column as labels (None: null, withheld or unknown)."""
    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        v = str(v)
        return None if v in (TOP, UNKNOWN) else v
    return np.array([one(v) for v in s.tolist()], dtype=object)


# --------------------------------------------------------------------------
# One tool's output, as the measures see it.
# --------------------------------------------------------------------------

@dataclass
class Output:
    """Released rows: year, each quasi-identifier's label (None: null), the
    person of each row; the level of each quasi-identifier."""
    years: np.ndarray
    labels: dict[str, np.ndarray]
    units: np.ndarray
    level: dict[str, int | None]
    rows_in: int
    persons_in: int
    known_in: dict[str, int]  # linked values known per variable, in the input
    seconds: float | None = None
    seconds_note: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Risk:
    persons: int = 0
    rows_below_k: int = 0  # rows in classes (within year) < k: anjana's model
    sample_below_k: int = 0  # persons whose trajectory class among released persons < k
    population: bool = False
    population_below_k: int = 0  # persons matched by < k workforce persons (k-map)
    population_smallest: int | None = None
    unmatched: int = 0  # released persons no workforce person matches (a labelling check)
    classes: int = 0
    smallest: int = 0
    discernibility: int = 0


def joint_codes(columns: list[np.ndarray]) -> np.ndarray:
    """One integer per row for the tuple of its values (null a value of its
    own), combined column by column and renumbered so it cannot overflow."""
    n = len(columns[0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    for col in columns:
        c, u = pd.factorize(pd.Series(col, dtype=object), use_na_sentinel=False)
        key, _ = pd.factorize(key * (len(u) + 1) + c)
        key = key.astype(np.int64)
    return key


def row_classes(out: Output, qis: list[str], k: int, risk: Risk) -> None:
    key = joint_codes([out.years] + [out.labels[q] for q in qis if q != YEAR])
    sizes = np.bincount(key) if len(key) else np.array([], dtype=np.int64)
    sizes = sizes[sizes > 0]
    risk.classes = len(sizes)
    risk.smallest = int(sizes.min()) if len(sizes) else 0
    risk.discernibility = int((sizes.astype(np.int64) ** 2).sum())
    risk.rows_below_k = int(sizes[sizes < k].sum())


def person_classes(out: Output, qis: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each released person's class among the released persons: persons
    with equal sorted lists of rows (known values; null a value of its own),
    as attack.rs counts the sample. Returns (units, class size per unit)."""
    row_key = joint_codes([out.years] + [out.labels[q] for q in qis if q != YEAR])
    frame = pd.DataFrame({"unit": out.units, "key": row_key}).sort_values(["unit", "key"])
    trajectory = frame.groupby("unit", sort=True)["key"].agg(tuple)
    codes, _ = pd.factorize(trajectory)
    sizes = np.bincount(codes)[codes]
    return trajectory.index.to_numpy(), sizes


def population_counts(out: Output, qis: list[str], pop_years: np.ndarray,
                      pop_labels: dict[str, np.ndarray], pop_units: np.ndarray) -> pd.Series:
    """k-map: for each released person (m rows, distinct years), the number
    of population persons holding, for each of its years, a row that matches
    its row there on every known column — a null in the release matching any
    value, a null in the population only a null in the release. The
    population holds one row per person and year. Persons are grouped by
    their rows' (year, null mask); each group costs a pass over the
    population's rows of those years."""
    cols = [q for q in qis if q != YEAR]
    pop_codes, rel_codes = {}, {}
    for c in cols:
        codes, uniq = pd.factorize(pd.Series(pop_labels[c], dtype=object), use_na_sentinel=False)
        pop_codes[c] = codes.astype(np.int64)
        rel = pd.Index(uniq).get_indexer(pd.Series(out.labels[c], dtype=object).fillna("\0null"))
        rel = np.where(pd.isna(out.labels[c]), -2, rel)  # -2: wildcard, -1: no population row has it
        rel_codes[c] = rel.astype(np.int64)
    years = sorted(set(pop_years.tolist()) | set(out.years.tolist()))
    pop_year = {y: np.flatnonzero(pop_years == y) for y in years}
    n = len(out.years)
    mask = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(cols):
        mask |= (rel_codes[c] != -2).astype(np.int64) << i
    rows = pd.DataFrame({"unit": out.units, "year": out.years, "mask": mask, "row": np.arange(n)})
    rows = rows.sort_values(["unit", "year"])
    if rows.duplicated(["unit", "year"]).any():
        raise ValueError("a released person has two rows in one year")
    # One line per person: its rows' (year, mask) in year order, and the rows.
    rows["j"] = rows.groupby("unit", sort=False).cumcount()
    wide = rows.pivot(index="unit", columns="j", values=["year", "mask", "row"])
    span = rows["j"].max() + 1 if n else 0
    pattern_cols = [(f, j) for j in range(span) for f in ("year", "mask")]
    counts = pd.Series(0, index=wide.index, dtype=np.int64)

    def keys(idx_pop: np.ndarray | None, idx_rel: np.ndarray, m: int):
        """Joint keys of population rows and released rows on the columns
        of mask m, numbered together; released rows with a value no
        population row has get -1."""
        on = [c for i, c in enumerate(cols) if m >> i & 1]
        npop = len(idx_pop)
        key = np.zeros(npop + len(idx_rel), dtype=np.int64)
        bad = np.zeros(len(idx_rel), dtype=bool)
        for c in on:
            both = np.concatenate([pop_codes[c][idx_pop], rel_codes[c][idx_rel]])
            if not len(both):
                continue
            bad |= rel_codes[c][idx_rel] < 0
            key, _ = pd.factorize(key * (both.max() + 2) + both + 1)
            key = key.astype(np.int64)
        rel = key[npop:]
        rel[bad] = -1
        return key[:npop], rel

    for pat, group in wide.groupby(pattern_cols, dropna=False, sort=False):
        units = group.index.to_numpy()
        pat = [(pat[2 * j], int(pat[2 * j + 1])) for j in range(span) if not pd.isna(pat[2 * j])]
        rel_rows = group["row"].to_numpy()[:, : len(pat)].astype(np.int64)  # persons × m, by year
        per_year = []
        for j, (y, m) in enumerate(pat):
            idx = pop_year.get(y, np.array([], dtype=np.int64))
            kp, kr = keys(idx, rel_rows[:, j], m)
            per_year.append((pd.Series(kp, index=pop_units[idx], name=j), kr))
        if len(pat) == 1:
            tally = per_year[0][0].value_counts()
            found = tally.reindex(per_year[0][1]).fillna(0).to_numpy()
        else:
            joined = pd.concat([s for s, _ in per_year], axis=1, join="inner")
            tally = joined.value_counts()
            want = pd.MultiIndex.from_arrays([kr for _, kr in per_year])
            found = tally.reindex(want).fillna(0).to_numpy()
        for j in range(len(pat)):
            found = np.where(per_year[j][1] < 0, 0, found)
        counts.loc[units] = found.astype(np.int64)
    return counts


def attack(out: Output, qis: list[str], k: int, population: dict | None) -> Risk:
    risk = Risk(persons=len(set(out.units.tolist())))
    row_classes(out, qis, k, risk)
    units, sample = person_classes(out, qis, k)
    risk.sample_below_k = int((sample < k).sum())
    if population is not None:
        risk.population = True
        pop_labels = {q: population["labels"][q][out.level[q]] for q in qis if q != YEAR}
        counts = population_counts(out, qis, population["years"], pop_labels, population["units"])
        counts = counts.reindex(units)
        # At risk: fewer than k workforce persons match, and the class among
        # the released persons (a floor: they are part of the workforce) is
        # below k too.
        risk.population_below_k = int(((counts.to_numpy() < k) & (sample < k)).sum())
        risk.unmatched = int((counts.to_numpy() == 0).sum())
        matched = counts[counts > 0]
        risk.population_smallest = int(matched.min()) if len(matched) else None
    return risk


# --------------------------------------------------------------------------
# The measures, the same code for both tools.
# --------------------------------------------------------------------------

def detect_level(var: Variable, labels: set[str], universes: dict[int, set[str]]) -> int | None:
    """The lowest allowed level whose labels (of the input) cover every
    released label; the top when all are null; None when none fits."""
    if not labels:
        return var.top
    for lvl in range(var.min_level, var.top):
        if labels <= universes[lvl]:
            return lvl
    return None


def pct(n: int, d: int) -> str:
    return "–" if d == 0 else f"{100 * n / d:.1f}%"


def loss_of(out: Output, var: Variable) -> tuple[int, int, float]:
    """(known values suppressed, known values, information loss) of one
    variable, as Koppel measures it: over the values known in the linked
    data, 1 for a suppressed value (left-out rows included), the level's
    normalised height otherwise. A released non-null label always comes from
    a known value, so suppressed = known − released non-null."""
    known = out.known_in[var.column]
    present = int(pd.notna(out.labels[var.column]).sum())
    supp = known - present
    lvl = out.level[var.column]
    h = var.height(lvl if lvl is not None else var.top)
    return supp, known, (present * h + supp) / known if known else 0.0


def weighted_loss(out: Output, qis: list[str], variables: dict[str, Variable]) -> float:
    """Koppel's node cost over these quasi-identifiers: the weighted
    root-mean-square of the variables' losses, year counted with weight 1
    and loss 0 (as the engine counts it)."""
    num, den = 0.0, 1.0
    for q in qis:
        if q == YEAR:
            continue
        _, known, loss = loss_of(out, variables[q])
        if known:
            num += variables[q].weight * loss * loss
            den += variables[q].weight
    return math.sqrt(num / den)


def table(name: str, recipient: dict, qis: list[str], outs: dict[str, Output],
          risks: dict[str, Risk], variables: dict[str, Variable], k: int) -> str:
    names = list(outs)
    gen = [q for q in qis if q != YEAR]
    rows: list[tuple[str, list[str]]] = []

    def add(label, f):
        rows.append((label, [f(outs[n], risks[n]) for n in names]))

    add("rows (person-years) in", lambda o, r: f"{o.rows_in:,}")
    add("rows left out (record suppression)",
        lambda o, r: f"{o.rows_in - len(o.years):,} ({pct(o.rows_in - len(o.years), o.rows_in)})")
    add("persons in / released", lambda o, r: f"{o.persons_in:,} / {r.persons:,}")
    add("**known QI values suppressed** (left-out rows counted)",
        lambda o, r: pct(sum(loss_of(o, variables[q])[0] for q in gen),
                         sum(loss_of(o, variables[q])[1] for q in gen)))
    for q in gen:
        add(f"`{q}` suppressed (of known)",
            lambda o, r, q=q: pct(*loss_of(o, variables[q])[:2]))
    for q in gen:
        add(f"`{q}` level (allowed {variables[q].min_level}–{variables[q].max_level})",
            lambda o, r, q=q: "? (labels fit no level)" if o.level[q] is None else
            f"{o.level[q]} {variables[q].level_name(o.level[q])}")
    for q in gen:
        add(f"`{q}` categories", lambda o, r, q=q: f"{len(set(x for x in o.labels[q] if x is not None)):,}")
    for q in gen:
        add(f"`{q}` information loss", lambda o, r, q=q: f"{loss_of(o, variables[q])[2]:.3f}")
    add("**information loss**, Koppel's measure over these QIs (weighted RMS)",
        lambda o, r: f"{weighted_loss(o, qis, variables):.3f}")
    add("equivalence classes of rows (within year)", lambda o, r: f"{r.classes:,}")
    add("average class size", lambda o, r: f"{len(o.years) / r.classes:.1f}" if r.classes else "–")
    add("discernibility Σ class size² (released rows)", lambda o, r: f"{r.discernibility:,}")
    add("discernibility, each left-out row charged n (ARX's DM)",
        lambda o, r: f"{r.discernibility + (o.rows_in - len(o.years)) * o.rows_in:,}")
    add("smallest class of rows", lambda o, r: f"{r.smallest:,}")
    add(f"**sample, rows**: rows in classes < {k} (anjana's model)",
        lambda o, r: f"{r.rows_below_k:,} ({pct(r.rows_below_k, len(o.years))})")
    add(f"**sample, persons**: persons whose trajectory class among released persons < {k}",
        lambda o, r: f"{r.sample_below_k:,} ({pct(r.sample_below_k, r.persons)})")
    add(f"**workforce (k-map)**: persons matched by < {k} workforce persons",
        lambda o, r: "– (not counted)" if not r.population else
        f"{r.population_below_k:,} ({pct(r.population_below_k, r.persons)})")
    add("fewest workforce persons matching a released person",
        lambda o, r: "–" if r.population_smallest is None else f"{r.population_smallest:,}")
    add("released persons no workforce person matches (labelling check; 0 expected)",
        lambda o, r: "–" if not r.population else f"{r.unmatched:,}")
    add("wall time", lambda o, r: "–" if o.seconds is None else f"{o.seconds:.1f} s{o.seconds_note}")

    counted = {"population": "the workforce (k-map): it does not know who responded",
               "sample": "the released persons: it knows who responded"}.get(
        recipient.get("reference"), recipient.get("reference", "?"))
    if name == UNION:
        lines = [f"### `{UNION}`: one file for every recipient", "",
                 f"Every variable some recipient knows: {', '.join(f'`{q}`' for q in qis)}. No "
                 "recipient knows them all; this is how k-anonymity makes one file safe for every "
                 "recipient at once (Koppel's file, made once for all recipients, protects each "
                 "with what it knows, so its count in the sample here is not a claim it makes).", ""]
    else:
        lines = [f"### Recipient `{name}`", "",
                 f"Knows (the release's report): {', '.join(f'`{q}`' for q in qis)}. "
                 f"Koppel counts it in {counted}. anjana makes the released rows "
                 f"k-anonymous over these quasi-identifiers (the sample).", ""]
    lines.append("| measure | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    lines.append("")
    for n, o in outs.items():
        for note in o.notes:
            lines.append(f"- {n}: {note}")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------

def summary_rows(name: str, recipient: dict, qis: list[str], outs: dict[str, Output],
                 risks: dict[str, Risk], variables: dict[str, Variable], k: int) -> list[str]:
    gen = [q for q in qis if q != YEAR]
    lines = []
    for tool, o in outs.items():
        r = risks[tool]
        supp = sum(loss_of(o, variables[q])[0] for q in gen)
        known = sum(loss_of(o, variables[q])[1] for q in gen)
        raised = [f"{q} {variables[q].level_name(o.level[q])}" for q in gen
                  if o.level[q] is None or o.level[q] > variables[q].min_level]
        lines.append(
            f"| `{name}` | {tool} | {o.rows_in - len(o.years):,} ({pct(o.rows_in - len(o.years), o.rows_in)}) "
            f"| {pct(supp, known)} | {weighted_loss(o, qis, variables):.3f} "
            f"| {'; '.join(raised) if raised else 'none'} "
            f"| {r.sample_below_k:,} ({pct(r.sample_below_k, r.persons)})"
            f"{' (no recipient views it so)' if name == UNION and tool == 'Koppel' else ''} "
            f"| {'–' if not r.population else f'{r.population_below_k:,} ({pct(r.population_below_k, r.persons)})'} "
            f"| {'–' if o.seconds is None else f'{o.seconds:.1f} s'}"
            f"{' (one run, every recipient)' if tool == 'Koppel' and o.seconds is not None else ''} |")
    return lines


def recipients_of(report: dict) -> dict[str, dict]:
    return {r["recipient"]: r for r in report["person"].get("recipients", []) if isinstance(r, dict)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--linked", type=Path, required=True, help="folder `koppel link` wrote")
    p.add_argument("--koppel-release", type=Path, required=True,
                   help="a Koppel release of that folder (its report names recipients and hierarchies)")
    p.add_argument("--koppel-seconds", type=float, help="wall time of the `koppel export` that made it")
    p.add_argument("--koppel-person-seconds", type=float,
                   help="the person file's part of it (export's log: `person file anonymised`)")
    p.add_argument("--koppel-note", help="how the release was made, for the results")
    p.add_argument("--attacker", action="append",
                   help="a recipient of the release's report (repeatable: pfzw, outsider, …), "
                        "or `all` (the default)")
    p.add_argument("--k", type=int, default=None, help="default: the release's k")
    p.add_argument("--supp", type=float, default=None,
                   help="anjana's supp_level in %% of rows (default: the release's max_suppression_pct)")
    p.add_argument("--sample", type=int, help="run anjana on a random sample of this many rows")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--no-workforce", action="store_true", help="skip the k-map count")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    args = p.parse_args()

    release = read_release(args.koppel_release)
    person = release.report["person"]
    k = args.k if args.k is not None else int(person.get("k", 10))
    supp, supp_from = args.supp, "--supp"
    if supp is None:
        supp = float(person.get("max_suppression_pct", 5.0))
        supp_from = "the release's max_suppression_pct"
    variables = variables_of(release.report)
    recipients = recipients_of(release.report)
    chosen = args.attacker or DEFAULT_ATTACKERS
    # `union`: one anjana file for every recipient at once, as Koppel's is:
    # k-anonymity can only treat the recipients as one attacker who knows
    # all their variables together.
    recipients[UNION] = {"recipient": UNION, "reference": None, "knows": list(dict.fromkeys(
        q for r in list(recipients.values()) for q in r.get("knows", [])))}
    if "all" in chosen:
        # Every recipient that knows more than the year, once per distinct
        # (knows, counted in); then the union.
        seen, chosen = set(), []
        for n, r in recipients.items():
            key = (tuple(r.get("knows", [])), r.get("reference"))
            if len(key[0]) > 1 and key not in seen:
                seen.add(key)
                chosen.append(n)
    for n in chosen:
        if n not in recipients:
            p.error(f"recipient {n!r} is not in the release's report ({', '.join(recipients)})")

    t0 = time.perf_counter()
    columns = sorted({q for n in chosen for q in recipients[n]["knows"] if q != YEAR})
    sides = sorted({variables[c].side for c in columns if variables[c].side})
    persons, population = read_linked(args.linked, columns, sides)
    model_sha = sha256(args.linked / "person_model.parquet")
    wf_sha = sha256(args.linked / "workforce_model.parquet")
    if args.sample is not None and args.sample < len(persons):
        anjana_rows = np.sort(persons.sample(n=args.sample, random_state=args.seed).index.to_numpy())
    else:
        anjana_rows = np.arange(len(persons))
    # Labels at every level the comparison can need.
    # The population is labelled for the recipients counted in it.
    pop_columns = {q for n in chosen if recipients[n].get("reference") == "population"
                   for q in recipients[n]["knows"] if q != YEAR}
    lab_in, lab_pop, universes = {}, {}, {}
    for c in columns:
        var = variables[c]
        lvls = list(range(var.top + 1))
        lab_in[c] = labelled(persons, var, lvls)
        universes[c] = {l: {x for x in lab_in[c][l] if x is not None} for l in lvls}
        if not args.no_workforce and c in pop_columns:
            if c not in population.columns:
                p.error(f"{c}: not in the workforce model, cannot count it there (--no-workforce)")
            lab_pop[c] = labelled(population, var, lvls)
    years_in = persons[YEAR].to_numpy(dtype=np.int64).astype(str)
    pop = None if args.no_workforce else {
        "years": population[YEAR].to_numpy(dtype=np.int64).astype(str),
        "labels": lab_pop, "units": population["unit"].to_numpy()}
    units_in = persons["unit"].to_numpy()
    print(f"read {len(persons):,} person-years and {len(population):,} population rows "
          f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    # Koppel's released rows, once.
    kp = release.persons
    k_units, _ = pd.factorize(kp["person_id"]) if "person_id" in kp.columns else (np.arange(len(kp)), None)
    k_units = np.asarray(k_units).copy()
    nul = k_units < 0
    k_units[nul] = k_units.max() + 1 + np.arange(nul.sum())
    k_labels = {c: (released_labels(kp[c]) if c in kp.columns else np.full(len(kp), None, dtype=object))
                for c in columns}
    k_years = kp[YEAR].to_numpy(dtype=np.int64).astype(str)

    header = [
        "# anjana beside Koppel: the person file, per recipient", "",
        f"- input: `{args.linked / 'person_model.parquet'}` (sha256 {model_sha[:16]}…), "
        f"{len(persons):,} respondent-years of {persons['unit'].nunique():,} persons; workforce "
        f"`workforce_model.parquet` (sha256 {wf_sha[:16]}…), {len(population):,} rows of "
        f"{population['unit'].nunique():,} persons (the respondents off the payroll included)",
        f"- k = {k}; anjana's record-suppression limit {supp:g}% of rows ({supp_from}: "
        f"Koppel's limit is {person.get('max_suppression_pct', '?')}% of the protected variables' "
        f"known values, {release.report['rules']['person'].get('max_variable_suppression_pct', '?')}% per variable)",
        f"- anjana {metadata.version('anjana')} (pycanon {metadata.version('pycanon')}, "
        f"pandas {pd.__version__}, numpy {np.__version__}), Python {sys.version.split()[0]}"
        + (f"; anjana on a random sample of {len(anjana_rows):,} rows (seed {args.seed}), "
           "Koppel's release measured whole" if len(anjana_rows) < len(persons) else ""),
        "- hierarchies, allowed levels and weights: the release's (`rules.person.variables`); "
        "anjana's hierarchy of each variable starts at the release's minimum level; "
        "year is never generalised",
    ]
    same = release.inputs.get("person_model.parquet") == model_sha
    same_wf = release.inputs.get("workforce_model.parquet") == wf_sha
    header.append(
        f"- Koppel release `{release.release_id}`"
        + ("" if args.koppel_note else f" (`{release.path}`)") + ": "
        + ("made from this same person model and workforce (manifest checksums match)" if same and same_wf else
           "**made from other linked data** (manifest checksums differ: compare shapes, not rows)")
        + (f"; {args.koppel_note}" if args.koppel_note else "")
        + f". Its report: information loss {person.get('information_loss', float('nan')):.3f} over all "
          f"{len(variables)} variables, {person.get('values_suppressed_pct', float('nan')):.1f}% of their "
          f"known values null, {person.get('rows_dropped', '?')} rows left out, smallest class "
          f"{person.get('smallest_class', '?')}; it protects every recipient at once.")
    header.append("")

    sections = []
    summary = ["## Summary", "",
               f"Same k ({k}); known QI values suppressed: of the values the linked data knows, "
               f"left-out rows counted, year (never suppressed) not counted; information loss: "
               f"Koppel's weighted root-mean-square measure (year in it with weight 1, as the "
               f"engine counts it); levels named where above the release's minimum. \"Sample\": persons "
               f"whose trajectory class among the released persons is below k (anjana's model, counted "
               f"per person); \"workforce\": persons fewer than k workforce persons match (k-map, "
               f"Koppel's model for recipients who do not know who responded).", "",
               "| recipient | tool | rows left out | known QI values suppressed | information loss "
               "(Koppel's measure) | levels above the minimum | persons < k, sample | "
               "persons < k, workforce | time |",
               "|---|---|---|---|---|---|---|---|---|"]
    for name in chosen:
        rec = recipients[name]
        qis = [YEAR] + [q for q in rec["knows"] if q != YEAR]
        gen = qis[1:]
        same_as = [n for n, r in recipients.items() if n != name and r.get("knows") == rec.get("knows")
                   and r.get("reference") == rec.get("reference")]
        label = name + (f" (= {', '.join(same_as)})" if same_as else "")
        print(f"anjana, recipient {label}: {', '.join(qis)}", file=sys.stderr)

        sub = {q: {l: a[anjana_rows] for l, a in lab_in[q].items()} for q in gen}
        data, hier = anjana_input(sub, years_in[anjana_rows], qis, variables)
        out, rows, gen_level, seconds = run_anjana(data, hier, qis, k, supp)
        print(f"  {len(out):,} rows out in {seconds:.1f} s", file=sys.stderr)
        a_rows = anjana_rows[rows]
        a_labels = {q: released_labels(out[q]) for q in gen}
        a_out = Output(years=years_in[a_rows], labels=a_labels, units=units_in[a_rows], level={},
                       rows_in=len(anjana_rows), persons_in=len(set(units_in[anjana_rows].tolist())),
                       known_in={q: int(persons[q].iloc[anjana_rows].notna().sum()) for q in gen},
                       seconds=seconds, seconds_note=" (`k_anonymity`)")
        for q in gen:
            read = detect_level(variables[q], set(x for x in a_labels[q] if x is not None), universes[q])
            own = None if gen_level is None or q not in gen_level else variables[q].min_level + gen_level[q]
            a_out.level[q] = own if own is not None else read
            if own is not None and read is not None and own != read and read != variables[q].top:
                a_out.notes.append(f"`{q}`: anjana's level {own}, the labels read as level {read}.")
        k_out = Output(years=k_years, labels={q: k_labels[q] for q in gen}, units=k_units, level={},
                       rows_in=int(person.get("rows_in", len(kp))),
                       persons_in=int(person.get("persons_in", len(set(k_units.tolist())))),
                       known_in={q: int(persons[q].notna().sum()) for q in gen})
        for q in gen:
            read = detect_level(variables[q], set(x for x in k_labels[q] if x is not None), universes[q])
            k_out.level[q] = variables[q].level
            if read != variables[q].level and read is not None:
                k_out.notes.append(f"`{q}`: the report says level {variables[q].level}, the labels read as {read}.")
            if read is None:
                k_out.notes.append(f"`{q}`: the released labels fit no level of the hierarchy.")
        rep = {q["column"]: q for q in person.get("quasi_identifiers", [])}
        for q in gen:
            s, known, loss = loss_of(k_out, variables[q])
            r = rep.get(q, {})
            if r and (r.get("values_suppressed") != s or abs(r.get("information_loss", loss) - loss) > 1e-9):
                k_out.notes.append(f"`{q}`: the report says {r.get('values_suppressed')} values suppressed, "
                                   f"loss {r.get('information_loss', float('nan')):.3f}; measured {s}, {loss:.3f}.")
        if args.koppel_person_seconds is not None:
            k_out.seconds = args.koppel_person_seconds
            k_out.seconds_note = " (person file, every recipient" + (
                f"; whole `koppel export` {args.koppel_seconds:.1f} s)" if args.koppel_seconds else ")")
        elif args.koppel_seconds is not None:
            k_out.seconds, k_out.seconds_note = args.koppel_seconds, " (whole `koppel export`)"
        if name != UNION:
            k_out.notes.append(
                f"the report for `{name}`: at risk before {rec.get('at_risk_before', '?')} persons "
                f"({rec.get('at_risk_before_pct', float('nan')):.1f}%), after {rec.get('at_risk_after', '?')}, "
                f"smallest class {rec.get('smallest_class', '?')}, counted in the "
                f"{'workforce' if rec.get('reference') == 'population' else 'released persons'}; "
                f"{person.get('rows_locally_suppressed', '?')} rows with a value suppressed "
                "for all recipients together.")

        t1 = time.perf_counter()
        counted_in_pop = rec.get("reference") == "population"
        risks = {"anjana": attack(a_out, qis, k, pop if counted_in_pop else None),
                 "Koppel": attack(k_out, qis, k, pop if counted_in_pop else None)}
        print(f"  attacks counted in {time.perf_counter() - t1:.1f} s", file=sys.stderr)
        sections.append(table(label, rec, qis, {"anjana": a_out, "Koppel": k_out}, risks, variables, k))
        summary += summary_rows(label, rec, qis, {"anjana": a_out, "Koppel": k_out}, risks, variables, k)

    text = ("\n".join(header) + "\n" + "\n".join(summary) + "\n\n"
            + "## Per recipient\n\n" + "\n".join(sections))
    print(text)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
