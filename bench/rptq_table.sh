#!/usr/bin/env bash
# The RPTQ table of docs/methods.md: stories260K under the reference protocol
# (eval.txt, windows of 256, 64 windows of calib.txt), int8 weights per row,
# activations on static ranges: one per tensor (1 cluster) to 16 clusters. One run each.
#   bench/rptq_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

echo "| activations | 1 cluster (per tensor) | 4 clusters | 8 clusters | 16 clusters | per token (ZeroQuant W8 per row) |"
echo "| --- | --- | --- | --- | --- | --- |"
for a in 8 6 4; do
    row="| A$a"
    for k in 1 4 8 16; do
        row+=" | $(ppl "  - {action: quantize, method: rptq, act-bits: $a, clusters: $k}"$'\n')"
    done
    row+=" | $(ppl "  - {action: quantize, method: zeroquant, bits: 8, group: 0, act-bits: $a}"$'\n')"
    echo "$row |"
done
