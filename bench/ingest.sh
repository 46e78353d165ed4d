#!/usr/bin/env bash
# Ingest + validate throughput on a sector-scale payroll file.
#
#   bench/ingest.sh                 # 1.5 million persons, one year (~18 M rows)
#   PERSONS=100000 bench/ingest.sh  # smaller, for a quick look
#
# Synthesises the PFZW payroll file once into bench/cache (kept between runs),
# then validates it RUNS times (default 3) and reports rows/s, MB/s and peak
# RSS of each run, and the median. Also reports the synthesis speed.
set -euo pipefail
cd "$(dirname "$0")/.."

PERSONS=${PERSONS:-1500000}
RUNS=${RUNS:-3}
YEAR=${YEAR:-2024}
CACHE=${CACHE:-bench/cache/ingest-$PERSONS}
SOURCE=pfzw_dienstverbanden
FILE=$CACHE/${SOURCE}_$YEAR.csv

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

cargo build --release -q -p koppel
BIN=target/release/koppel
mkdir -p "$CACHE"

peak_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
wall_s() {
  awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"
}

if [ ! -f "$FILE" ]; then
  echo "synthesising $PERSONS persons ($SOURCE, $YEAR) into $CACHE ..."
  /usr/bin/time -v "$BIN" synth --out "$CACHE" --persons "$PERSONS" --years "$YEAR" --seed 1 \
    --only "$SOURCE" > "$CACHE/synth.out" 2> "$CACHE/synth.time"
  echo "synth: $(tail -n 1 "$CACHE/synth.out"), peak RSS $(( $(peak_kb "$CACHE/synth.time") / 1024 )) MiB"
fi

BYTES=$(stat -c %s "$FILE")
echo "file: $FILE, $(( BYTES / 1024 / 1024 )) MiB"
printf '%-5s %12s %10s %12s %10s %12s\n' run rows seconds rows/s MB/s "peak RSS MiB"
results=()
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -v "$BIN" validate --json "$FILE" > "$CACHE/validate.json" 2> "$CACHE/validate.time" || true
  rows=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['rows_read'])" "$CACHE/validate.json")
  secs=$(wall_s "$CACHE/validate.time")
  rss=$(( $(peak_kb "$CACHE/validate.time") / 1024 ))
  rps=$(python3 -c "print(round($rows / $secs))")
  mbs=$(python3 -c "print(round($BYTES / 1e6 / $secs, 1))")
  printf '%-5s %12s %10s %12s %10s %12s\n' "$i" "$rows" "$secs" "$rps" "$mbs" "$rss"
  results+=("$rps $mbs $rss")
done
printf '%s\n' "${results[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) {
  printf "median: %s rows/s, %s MB/s, peak RSS %s MiB\n", $1, $2, $3 }'
