#!/usr/bin/env bash
# Rebuilds the DEMO key store and partner key files in this folder.
# The passphrase is published on purpose: these keys are for synthetic data,
# tests and the demo only, and Koppel warns when they touch anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
KOPPEL=${KOPPEL:-target/debug/koppel}
export KOPPEL_PASSPHRASE=koppel-demo-passphrase
export KOPPEL_PARTNER_PASSPHRASE=koppel-demo-passphrase
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/demo.keystore.yaml

"$KOPPEL" keys init --store "$store" --demo
"$KOPPEL" keys generate --store "$store" stage1-preventieplan --purpose stage1 --project preventieplan
"$KOPPEL" keys generate --store "$store" stage2-preventieplan --purpose stage2 --project preventieplan
"$KOPPEL" keys generate --store "$store" release-preventieplan --purpose release --project preventieplan
mkdir -p "$work/partners"
for partner in pfzw vernet izz fwg intrakoop; do
  "$KOPPEL" keys generate --store "$store" "transport-$partner" --purpose transport --partner "$partner"
  "$KOPPEL" keys export-partner-key --store "$store" --partner "$partner" \
    --stage1 stage1-preventieplan --transport "transport-$partner" --out "$work/partners/$partner.keys.yaml"
done
"$KOPPEL" keys list --store "$store"
rm -rf keys-example/partners keys-example/demo.keystore.yaml
cp "$store" keys-example/demo.keystore.yaml
cp -r "$work/partners" keys-example/partners
