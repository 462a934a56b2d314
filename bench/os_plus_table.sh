#!/usr/bin/env bash
# The Outlier Suppression+ table of docs/methods.md: stories260K under the
# reference protocol (eval.txt, windows of 256, 64 windows of calib.txt),
# int8 weights per row with activations at 8, 6 and 4 bits. One run each.
#   bench/os_plus_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

echo "| activations | per token, no smoothing (ZeroQuant W8 per row) | SmoothQuant α 0.5 (per token) | OS+ without the shift (static per tensor) | OS+ (static per tensor) |"
echo "| --- | --- | --- | --- | --- |"
for a in 8 6 4; do
    row="| A$a | $(ppl "  - {action: quantize, method: zeroquant, bits: 8, group: 0, act-bits: $a}"$'\n')"
    if [ "$a" = 8 ]; then row+=" | $(ppl "  - {action: quantize, method: smoothquant}"$'\n')"; else row+=" | –"; fi
    row+=" | $(ppl "  - {action: quantize, method: os-plus, act-bits: $a, no-shift: true}"$'\n')"
    row+=" | $(ppl "  - {action: quantize, method: os-plus, act-bits: $a}"$'\n')"
    echo "$row |"
done
