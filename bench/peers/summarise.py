"""Turns bench/run.sh's measurements into the comparison table.

Input: one line per tool and round, `tool round wall_s rss_mib
[stage=seconds ...]`. Output: every run, the medians per tool, the ratios
per round (taken within a round, so that a noisy machine slows both sides
of a ratio alike) with their medians, and the issue's targets.

    python bench/peers/summarise.py RESULTS
"""

import statistics
import sys
from collections import defaultdict

# Target: (description, ratio name, bound, "min" or "max").
TARGETS = [
    ("Koppel ≥ 30× faster than pandas", "pandas/koppel", 30.0, "min"),
    ("Koppel ≥ 10× faster than DuckDB", "duckdb/koppel", 10.0, "min"),
    ("Koppel's link stage ≤ 1.5× DuckDB's", "koppel link/duckdb link", 1.5, "max"),
    ("Koppel ≤ 4× the floor (parse)", "koppel/floor", 4.0, "max"),
]
RSS_LIMIT_MIB = 3072


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            tool, rnd, wall, rss = parts[:4]
            stages = dict(p.split("=", 1) for p in parts[4:])
            runs.append(
                {
                    "tool": tool,
                    "round": int(rnd),
                    "wall": float(wall),
                    "rss": int(rss),
                    "stages": {k: float(v) for k, v in stages.items()},
                }
            )
    return runs


def ratios_of(by_round):
    """Ratios within each round: {name: [value per round]}."""
    out = defaultdict(list)
    for tools in by_round.values():
        koppel = tools.get("koppel")
        if not koppel:
            continue
        for peer in ("pandas", "duckdb"):
            if peer in tools:
                out[f"{peer}/koppel"].append(tools[peer]["wall"] / koppel["wall"])
        if "floor" in tools:
            out["koppel/floor"].append(koppel["wall"] / tools["floor"]["wall"])
        duck = tools.get("duckdb")
        if duck and "link" in koppel["stages"] and "link" in duck["stages"]:
            out["koppel link/duckdb link"].append(
                koppel["stages"]["link"] / duck["stages"]["link"]
            )
    return out


def main():
    runs = load(sys.argv[1])
    by_round = defaultdict(dict)
    by_tool = defaultdict(list)
    for r in runs:
        by_round[r["round"]][r["tool"]] = r
        by_tool[r["tool"]].append(r)

    print("runs (wall and stages in seconds, peak RSS in MiB)")
    print(f"{'round':>5}  {'tool':<10} {'wall':>9} {'peak RSS':>9}  stages")
    for r in runs:
        stages = "  ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
        print(f"{r['round']:>5}  {r['tool']:<10} {r['wall']:>9.2f} {r['rss']:>9}  {stages}")

    print()
    print("medians")
    print(f"{'tool':<10} {'wall':>9} {'peak RSS':>9}  stages")
    medians = {}
    for tool, rs in by_tool.items():
        wall = statistics.median(r["wall"] for r in rs)
        rss = statistics.median(r["rss"] for r in rs)
        names = list(rs[0]["stages"])
        stages = {n: statistics.median(r["stages"][n] for r in rs if n in r["stages"]) for n in names}
        medians[tool] = {"wall": wall, "rss": rss}
        text = "  ".join(f"{k} {v:.2f}" for k, v in stages.items())
        print(f"{tool:<10} {wall:>9.2f} {rss:>9.0f}  {text}")

    ratios = ratios_of(by_round)
    if ratios:
        print()
        print("ratios per round, and their median")
        for name, values in ratios.items():
            per_round = "  ".join(f"{v:.2f}" for v in values)
            print(f"{name:<24} {per_round}   median {statistics.median(values):.2f}")

    print()
    print("targets")
    for text, name, bound, kind in TARGETS:
        if name not in ratios:
            print(f"  {text}: not measured")
            continue
        value = statistics.median(ratios[name])
        met = value >= bound if kind == "min" else value <= bound
        print(f"  {text}: {value:.2f} — {'met' if met else 'MISSED'}")
    if "koppel" in medians:
        rss = medians["koppel"]["rss"]
        peers = {t: m["rss"] for t, m in medians.items() if t in ("pandas", "duckdb")}
        if peers:
            lower = all(rss < v for v in peers.values())
            against = ", ".join(f"{t} {v:.0f}" for t, v in peers.items())
            print(
                f"  Koppel's peak RSS lower than the peers': {rss:.0f} MiB against {against}"
                f" — {'met' if lower else 'MISSED'}"
            )
        print(
            f"  Koppel's peak RSS under {RSS_LIMIT_MIB} MiB: {rss:.0f} MiB"
            f" — {'met' if rss < RSS_LIMIT_MIB else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
