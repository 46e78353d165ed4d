#!/usr/bin/env bash
# Pseudonymisation and sealing throughput (docs/performance.md).
#
#   bench/pseudonymise.sh [VALUES] [SEAL_MIB]     # defaults: 4,000,000 values, 1024 MiB
#
# Runs the measurement RUNS times (default 3); every run reports the raw
# HMAC-SHA256 floor of this CPU and Koppel's rates as ratios to it, so the
# ratios hold even when the machine is busy.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
cargo build --release -q -p koppel-pseudonymise --example crypto_bench
for i in $(seq 1 "$RUNS"); do
  echo "== run $i"
  target/release/examples/crypto_bench "${1:-4000000}" "${2:-1024}"
done
