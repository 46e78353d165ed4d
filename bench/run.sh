#!/usr/bin/env bash
# Sector-scale benchmark: `koppel run` end to end against the tools a TTP
# would otherwise use — a pandas script and a DuckDB script doing the same
# work — and against the floor (reading and parsing the input once).
#
#   bench/run.sh                 # 1.5 million persons, 3 rounds
#   bench/run.sh --small         # 50,000 persons, 1 round (CI's smoke test)
#   bench/run.sh --persons 300000 --runs 5 --only koppel,duckdb
#
# The sector is synthesised once into bench/cache/sector-<persons>/ by
# `koppel demo` (partners prepare and seal every delivery with the demo
# keys; the demo's own run is the reference release). Every round then runs,
# in alternation, on the same files:
# Each tool's input is read once, untimed, just before it (page cache warm).
#   floor   cat of the plain deliveries, then a plain CSV parse of them
#           (pyarrow's multi-threaded reader, every column as text);
#   koppel  `koppel run` over the sealed inbox with a fresh state: unseal,
#           verify, ingest and validate, stage-2 pseudonymise, link, export;
#           its release must be byte-identical to the reference;
#   duckdb  bench/peers/duckdb_pipeline.py on the plain (unsealed) deliveries;
#   pandas  bench/peers/pandas_pipeline.py on the same.
# The peers link the models Koppel links, the workforce model (one row per
# person × year on the payroll) included, and write that one to Parquet in
# their link stage as Koppel does; their export still applies the earlier
# k-anonymity, not Koppel's attacker-aware disclosure engine.
# Each peer checks its results against the reference release (model row
# counts, organisations released, rows tabulated per table; the workforce
# model's rows against Koppel's linkage report in koppel-linked/, since the
# release's copy rounds them) and fails if they differ. Wall time and peak
# RSS come from /usr/bin/time -v, stage times from Koppel's run summary and
# the peers' own reports.
#
# The peers' packages (bench/peers/requirements.txt) are installed into
# bench/.venv, or $KOPPEL_BENCH_VENV. Results go to stdout and to
# bench/cache/sector-<persons>/results-<date>.txt; docs/performance.md
# holds the latest full-scale table.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=""
RUNS=""
TOOLS="floor koppel duckdb pandas"
SMALL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --small) SMALL=1 ;;
        --persons) PERSONS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --only) TOOLS=${2//,/ }; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
# --small only changes the defaults; --persons and --runs still win.
if [ -n "$SMALL" ]; then
    PERSONS=${PERSONS:-50000}
    RUNS=${RUNS:-1}
fi
PERSONS=${PERSONS:-1500000}
RUNS=${RUNS:-3}
for tool in $TOOLS; do
    case "$tool" in floor|koppel|duckdb|pandas) ;; *) echo "bench/run.sh: unknown tool $tool" >&2; exit 2 ;; esac
done
if [ ! -x /usr/bin/time ]; then
    echo "bench/run.sh needs GNU time at /usr/bin/time (Debian package: time)" >&2
    exit 1
fi

TARGET=${CARGO_TARGET_DIR:-target}
PIPELINE=pipelines/preventieplan.yaml
CACHE=bench/cache/sector-$PERSONS
VENV=${KOPPEL_BENCH_VENV:-bench/.venv}
PY="$VENV/bin/python"

say() { echo "== $* ($(date -u +%H:%M:%S))" >&2; }

# The same invocation as README's demo command, so the two share a build.
say "building koppel (release)"
cargo build --release --locked
KOPPEL="$TARGET/release/koppel"

say "peers' Python packages in $VENV"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/peers/requirements.txt

# The sector, its sealed deliveries and the reference release, made once.
if [ ! -e "$CACHE/.complete" ]; then
    say "synthesising and sealing a sector of $PERSONS persons into $CACHE"
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    "$KOPPEL" demo --persons "$PERSONS" --out "$CACHE/demo" > "$CACHE/demo.log" 2>&1 \
        || { tail -n 20 "$CACHE/demo.log" >&2; exit 1; }
    # The plain deliveries, as the TTP holds them once unsealed: the peers'
    # input (`koppel run` itself never writes them to disk). The partners'
    # raw extracts are not needed again.
    KOPPEL_PASSPHRASE=koppel-demo-passphrase "$KOPPEL" unseal \
        --store "$CACHE/demo/keys/ttp.keystore.yaml" --staging "$CACHE/unsealed" \
        "$CACHE"/demo/inbox/*.sealed > "$CACHE/unseal.log" 2>&1 \
        || { tail -n 20 "$CACHE/unseal.log" >&2; exit 1; }
    mkdir "$CACHE/deliveries"
    find "$CACHE/unsealed" -maxdepth 1 -type f \( -name '*.csv' -o -name '*.parquet' \) \
        -exec mv -t "$CACHE/deliveries" {} +
    rm -rf "$CACHE/unsealed"
    mv "$(find "$CACHE/demo/releases" -mindepth 1 -maxdepth 1 -type d | head -n 1)" "$CACHE/reference"
    # Koppel's linked models before disclosure control: for comparing a
    # peer's models column by column while working on it.
    mv "$CACHE/demo/state/runs/preventieplan/run-1/linked" "$CACHE/koppel-linked"
    rm -rf "$CACHE/demo/partners" "$CACHE/demo/state" "$CACHE/demo/releases"
    touch "$CACHE/.complete"
fi
echo "sector: $PERSONS persons; plain deliveries $(du -sh "$CACHE/deliveries" | cut -f1), sealed inbox $(du -sh "$CACHE/demo/inbox" | cut -f1)"

# Wall seconds and peak RSS (MiB) from a /usr/bin/time -v report.
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; printf "%.2f", s}' "$1"; }
rss_of() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
# One line per tool and round: tool round wall rss stage=seconds...
record() { echo "$*" >> "$RESULTS"; echo "  $*" >&2; }

# Every tool starts with its own input in the page cache, as the floor
# does: the figures compare the work, not this VM's disk (about 120 MB/s,
# which a cold 7.8 GB input turns into a minute), and no tool pays for the
# one before it pushing its files out of the cache.
warm() { cat "$@" > /dev/null; }

run_floor() {
    local work=$1 round=$2
    warm "$CACHE"/deliveries/*
    /usr/bin/time -v -o "$work/cat.txt" sh -c 'cat "$@" > /dev/null' cat "$CACHE"/deliveries/*
    record floor-cat "$round" "$(wall_of "$work/cat.txt")" "$(rss_of "$work/cat.txt")"
    /usr/bin/time -v -o "$work/time.txt" "$PY" bench/peers/floor.py --deliveries "$CACHE/deliveries" > "$work/out.txt"
    record floor "$round" "$(wall_of "$work/time.txt")" "$(rss_of "$work/time.txt")"
}

run_koppel() {
    local work=$1 round=$2
    warm "$CACHE"/demo/inbox/*
    KOPPEL_PASSPHRASE=koppel-demo-passphrase /usr/bin/time -v -o "$work/time.txt" \
        "$KOPPEL" run "$PIPELINE" --inbox "$CACHE/demo/inbox" --release-dir "$work/releases" \
        --state "$work/state" --store "$CACHE/demo/keys/ttp.keystore.yaml" \
        > "$work/out.txt" 2> "$work/err.txt" || { tail -n 20 "$work/err.txt" >&2; exit 1; }
    local release
    release=$(find "$work/releases" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    if ! cmp -s "$release/SHA256SUMS" "$CACHE/reference/SHA256SUMS"; then
        echo "koppel: the release of round $round differs from the reference release" >&2
        diff "$release/SHA256SUMS" "$CACHE/reference/SHA256SUMS" >&2 || true
        exit 1
    fi
    local stages
    stages=$("$PY" -c '
import json, sys
summary = json.load(open(sys.argv[1]))
print(" ".join("%s=%.2f" % (s["stage"], s["wall_ms"] / 1000) for s in summary["stages"]))
' "$work/state/runs/preventieplan/run-1/summary.json")
    record koppel "$round" "$(wall_of "$work/time.txt")" "$(rss_of "$work/time.txt")" $stages
}

run_peer() {
    local peer=$1 work=$2 round=$3
    warm "$CACHE"/deliveries/*
    /usr/bin/time -v -o "$work/time.txt" "$PY" "bench/peers/${peer}_pipeline.py" \
        --deliveries "$CACHE/deliveries" --reference "$CACHE/reference" \
        --koppel-linked "$CACHE/koppel-linked" --out "$work/out" \
        > "$work/out.txt" 2> "$work/err.txt" || { tail -n 30 "$work/err.txt" >&2; exit 1; }
    # The peer's last line: its stages as JSON.
    local stages
    stages=$(tail -n 1 "$work/out.txt" | "$PY" -c '
import json, sys
report = json.load(sys.stdin)
print(" ".join(f"{k}={v:.2f}" for k, v in report["stages"].items()))
')
    record "$peer" "$round" "$(wall_of "$work/time.txt")" "$(rss_of "$work/time.txt")" $stages
}

for round in $(seq 1 "$RUNS"); do
    for tool in $TOOLS; do
        say "round $round of $RUNS: $tool"
        work=$(mktemp -d "$CACHE/work.XXXXXX")
        case "$tool" in
            floor) run_floor "$work" "$round" ;;
            koppel) run_koppel "$work" "$round" ;;
            *) run_peer "$tool" "$work" "$round" ;;
        esac
        rm -rf "$work"
    done
done

REPORT="$CACHE/results-$(date -u +%Y%m%dT%H%M%S).txt"
{
    echo "Koppel sector benchmark, $PERSONS persons, $RUNS round(s), $(date -u +%Y-%m-%d)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    "$PY" bench/peers/summarise.py "$RESULTS"
} | tee "$REPORT"
echo "saved: $REPORT"
