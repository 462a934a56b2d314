#!/usr/bin/env bash
# The weights-and-activations table of docs/methods.md: stories260K under the
# reference protocol (eval.txt, windows of 256, 64 windows of calib.txt), every
# block linear, weights per output row at 8 or 4 bits, activations at 8 or 4
# bits: per token (ZeroQuant), one static range per tensor after OS+'s shift
# and scale, 8 static ranges per tensor (RPTQ), OliVe's pairs on one static
# scale per tensor. One run each.
#   bench/w4a4_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

echo "| weights / activations | ZeroQuant (RTN sym, per-token activations) | OS+ (static per tensor) | RPTQ, 8 clusters | OliVe (pairs, static per tensor) |"
echo "| --- | --- | --- | --- | --- |"
for w in 8 4; do
    for a in 8 4; do
        row="| W${w}A${a} | $(ppl "  - {action: quantize, method: zeroquant, bits: $w, group: 0, act-bits: $a}"$'\n')"
        row+=" | $(ppl "  - {action: quantize, method: os-plus, bits: $w, act-bits: $a}"$'\n')"
        row+=" | $(ppl "  - {action: quantize, method: rptq, bits: $w, act-bits: $a, clusters: 8}"$'\n')"
        row+=" | $(ppl "  - {action: quantize, method: olive, bits: $w, act-bits: $a}"$'\n')"
        echo "$row |"
    done
done
