#!/usr/bin/env bash
# Linking-stage benchmark: wall time and peak RSS of `koppel link` on a
# synthetic sector staged as stage-2 Parquet, at full scale and at half
# scale, so that memory growth with data size shows.
#
#   bench/link.sh                    # PERSONS="750000 1500000", RUNS=3
#   PERSONS=200000 RUNS=1 bench/link.sh
#
# Inputs are cached in bench/cache/link-<persons>/ (synth + staging take
# minutes at full scale). Results are printed per run and as medians; the
# ratio full/half of peak RSS is the memory-growth check (< 2 means
# sublinear). Figures go into docs/performance.md.
set -euo pipefail

cd "$(dirname "$0")/.."
PERSONS=${PERSONS:-"750000 1500000"}
RUNS=${RUNS:-3}
MEMORY_MIB=${MEMORY_MIB:-1536}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --locked -p koppel
cargo build --release --locked -p koppel-testkit --example stage_synth
KOPPEL="$TARGET/release/koppel"
STAGE="$TARGET/release/examples/stage_synth"

for p in $PERSONS; do
    "$STAGE" "$p" "bench/cache/link-$p"
    rows=$(du -sh "bench/cache/link-$p/staged" | cut -f1)
    echo "persons $p: staged inputs $rows"
done

declare -A walls rsss
for run in $(seq 1 "$RUNS"); do
    for p in $PERSONS; do
        out=$(mktemp -d)
        /usr/bin/time -v -o "$out/time.txt" "$KOPPEL" link \
            --staged "bench/cache/link-$p/staged" --out "$out/models" \
            --memory-limit-mib "$MEMORY_MIB" > "$out/stdout.txt"
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$out/time.txt")
        rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$out/time.txt")
        persons_rows=$(grep -o 'person model: [0-9]* rows' "$out/stdout.txt" | grep -o '[0-9]*' | head -1)
        echo "run $run  persons $p  wall ${wall} s  peak RSS ${rss} MiB  person-model rows ${persons_rows}"
        walls[$p]+="$wall "
        rsss[$p]+="$rss "
        rm -rf "$out"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "persons      median wall (s)   median peak RSS (MiB)"
last=""; first=""
for p in $PERSONS; do
    w=$(echo "${walls[$p]}" | median); r=$(echo "${rsss[$p]}" | median)
    printf "%-12s %-17s %s\n" "$p" "$w" "$r"
    [ -z "$first" ] && first=$r
    last=$r
done
if [ "$first" != "$last" ]; then
    awk -v a="$first" -v b="$last" 'BEGIN {printf "peak RSS ratio largest/smallest: %.2f\n", b/a}'
fi
