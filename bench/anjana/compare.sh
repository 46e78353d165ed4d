#!/usr/bin/env bash
# anjana beside Koppel's person-file disclosure control (issue 21): the same
# linked person model, the same recipients (what each knows, as the
# release's disclosure report states it), the same hierarchies, k and
# suppression limit; the output of both measured by the same code, in the
# released rows and persons and in the workforce (bench/anjana/compare.py).
# Writes bench/anjana/results.md.
#
#   bench/anjana/compare.sh                       # PERSONS=300000
#   PERSONS=20000 bench/anjana/compare.sh
#   LINKED=/path/to/linked bench/anjana/compare.sh    # an existing `koppel link` folder
#   LINKED=… KOPPEL_RELEASE=/path/to/release bench/anjana/compare.sh   # that release: no build, no export
#   bench/anjana/compare.sh --attacker pfzw --sample 20000   # arguments go to compare.py
#
# Inputs are made as bench/export.sh makes them: the release build of
# koppel and the stage_synth example, bench/cache/link-<persons>/staged,
# and `koppel link` into bench/cache/link-<persons>/linked (each kept and
# reused; BENCH_CACHE moves bench/cache). Unless KOPPEL_RELEASE is given, `koppel export` (demo key store,
# default disclosure rules) makes a release of that same linked folder in a
# temporary directory, timed, for the Koppel column.
#
# anjana and its packages (bench/anjana/requirements.txt) go into their own
# virtual environment, bench/cache/anjana-venv or $ANJANA_VENV, made once and
# reinstalled when requirements.txt changes. KOPPEL=/path/to/koppel uses
# that binary and skips building it (only with LINKED, which needs no
# stage_synth).
set -euo pipefail
cd "$(dirname "$0")/../.."

PERSONS=${PERSONS:-300000}
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${ANJANA_VENV:-bench/cache/anjana-venv}
PY="$VENV/bin/python"

say() { echo "== $* ($(date -u +%H:%M:%S))" >&2; }

say "anjana's packages in $VENV"
if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
fi
if ! cmp -s bench/anjana/requirements.txt "$VENV/.requirements.txt"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/anjana/requirements.txt
    cp bench/anjana/requirements.txt "$VENV/.requirements.txt"
fi

if [ -z "${LINKED:-}" ]; then
    CACHE="${BENCH_CACHE:-bench/cache}/link-$PERSONS"
    say "building koppel and stage_synth (release)"
    # One invocation for both, as bench/export.sh: one build of DataFusion.
    cargo build --release --locked -p koppel -p koppel-testkit --bin koppel --example stage_synth
    KOPPEL="$TARGET/release/koppel"
    say "a staged sector of $PERSONS persons in $CACHE"
    "$TARGET/release/examples/stage_synth" "$PERSONS" "$CACHE"
    if [ ! -f "$CACHE/linked/workforce_model.parquet" ]; then
        say "koppel link → $CACHE/linked"
        rm -rf "$CACHE/linked"
        "$KOPPEL" link --staged "$CACHE/staged" --out "$CACHE/linked" > /dev/null
    fi
    LINKED="$CACHE/linked"
    STAGED="$CACHE/staged"
else
    STAGED="$(dirname "$LINKED")/staged"
    if [ -z "${KOPPEL:-}" ] && [ -z "${KOPPEL_RELEASE:-}" ]; then
        say "building koppel (release)"
        cargo build --release --locked -p koppel --bin koppel
        KOPPEL="$TARGET/release/koppel"
    fi
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ARGS=()
if [ -z "${KOPPEL_RELEASE:-}" ]; then
    # The demo key store: public passphrase, synthetic data only.
    install -m 600 keys-example/demo.keystore.yaml "$TMP/store.yaml"
    GUARD=()
    if [ -d "$STAGED" ]; then GUARD=(--staged "$STAGED"); fi
    say "koppel export of $LINKED"
    start=$(date +%s.%N)
    KOPPEL_PASSPHRASE=koppel-demo-passphrase "$KOPPEL" export -v --log-format text \
        --store "$TMP/store.yaml" --release-key release-preventieplan \
        --linked "$LINKED" "${GUARD[@]}" --out "$TMP/release" > "$TMP/export.out" 2> "$TMP/export.log" \
        || { cat "$TMP/export.out" "$TMP/export.log" >&2; exit 1; }
    end=$(date +%s.%N)
    KOPPEL_RELEASE="$TMP/release"
    ARGS+=(--koppel-note "made by compare.sh: \`koppel export\` with the default disclosure rules, in a temporary directory")
    ARGS+=(--koppel-seconds "$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", e - s}')")
    # The person file's own stage, from export's log (absent: not passed).
    person_ms=$(sed -n 's/.*person file anonymised.*elapsed_ms=\([0-9]*\).*/\1/p' "$TMP/export.log" | head -n 1)
    if [ -n "$person_ms" ]; then
        ARGS+=(--koppel-person-seconds "$(awk -v ms="$person_ms" 'BEGIN {printf "%.2f", ms / 1000}')")
    fi
    grep -E '^(release|persons:)' "$TMP/export.out" >&2 || true
fi

say "compare.py (anjana's k-anonymity runs now)"
"$PY" bench/anjana/compare.py --linked "$LINKED" --koppel-release "$KOPPEL_RELEASE" "${ARGS[@]}" "$@"
