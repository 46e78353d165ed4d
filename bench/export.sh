#!/usr/bin/env bash
# Export-stage benchmark: wall time and peak RSS of `koppel export` (the
# full-sector person and organisation models and the five default tables)
# beside `koppel link` on the same sector, alternating, so the ratio
# export/link is measured in one run on one machine.
#
#   bench/export.sh                  # PERSONS=1500000, RUNS=3
#   PERSONS=200000 RUNS=1 bench/export.sh
#
# Inputs come from bench/cache/link-<persons>/ (see bench/link.sh; made on
# first use). The export reads one linked folder kept beside them; its leak
# guard is fed from the staged stage-2 files, as in production. Figures go
# into docs/performance.md.
set -euo pipefail

cd "$(dirname "$0")/.."
PERSONS=${PERSONS:-1500000}
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}

# One invocation for both, so they share one feature resolution and one
# build of DataFusion.
cargo build --release --locked -p koppel -p koppel-testkit --bin koppel --example stage_synth
KOPPEL="$TARGET/release/koppel"
"$TARGET/release/examples/stage_synth" "$PERSONS" "bench/cache/link-$PERSONS"
CACHE="bench/cache/link-$PERSONS"

# The demo key store: public passphrase, synthetic data only.
KEYS=$(mktemp -d)
trap 'rm -rf "$KEYS"' EXIT
install -m 600 keys-example/demo.keystore.yaml "$KEYS/store.yaml"
export KOPPEL_PASSPHRASE=koppel-demo-passphrase

# Relinked when the cache predates the workforce model (the k-map population).
if [ ! -f "$CACHE/linked/workforce_model.parquet" ]; then
    rm -rf "$CACHE/linked"
    "$KOPPEL" link --staged "$CACHE/staged" --out "$CACHE/linked" > /dev/null
fi

seconds() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$1"; }
mib() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

link_walls=""; export_walls=""; link_rss=""; export_rss=""; ratios=""
for run in $(seq 1 "$RUNS"); do
    out=$(mktemp -d)
    /usr/bin/time -v -o "$out/link.txt" "$KOPPEL" link --staged "$CACHE/staged" --out "$out/linked" > /dev/null
    /usr/bin/time -v -o "$out/export.txt" "$KOPPEL" export --store "$KEYS/store.yaml" \
        --release-key release-preventieplan --linked "$CACHE/linked" --staged "$CACHE/staged" \
        --out "$out/release" > "$out/export.out"
    lw=$(seconds "$out/link.txt"); ew=$(seconds "$out/export.txt")
    lr=$(mib "$out/link.txt"); er=$(mib "$out/export.txt")
    ratio=$(awk -v e="$ew" -v l="$lw" 'BEGIN {printf "%.2f", e/l}')
    echo "run $run  link ${lw} s ${lr} MiB  export ${ew} s ${er} MiB  export/link ${ratio}"
    grep -E '^persons:|^organisations:' "$out/export.out" | sed 's/^/    /'
    link_walls+="$lw "; export_walls+="$ew "; link_rss+="$lr "; export_rss+="$er "; ratios+="$ratio "
    rm -rf "$out"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "persons $PERSONS, $RUNS runs (medians)"
echo "link:   $(echo "$link_walls" | median) s, peak RSS $(echo "$link_rss" | median) MiB"
echo "export: $(echo "$export_walls" | median) s, peak RSS $(echo "$export_rss" | median) MiB"
echo "export/link wall-time ratio: $(echo "$ratios" | median) (target ≤ 1)"
