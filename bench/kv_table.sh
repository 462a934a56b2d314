#!/usr/bin/env bash
# The KV-cache table of docs/methods.md: stories260K under the reference
# protocol (eval.txt, windows of 256, every block linear), the cache quantized
# by KIVI and by per-token MinMax (LLM-QAT), alone and after W4A4 weights and
# activations with and without a QuaRot rotation. One run each.
#   bench/kv_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

echo "| KV cache | alone (F32 weights) | W4A4 ZeroQuant g32 | QuaRot + W4A4 | QuaRot (online) + W4A4 |"
echo "| --- | --- | --- | --- | --- |"
w4a4="  - {action: quantize, method: zeroquant, bits: 4, group: 32, act_bits: 4}"
for kv in "" \
    "{action: kv-cache, method: kivi, bits: 8, group: 32, residual: 32}" \
    "{action: kv-cache, method: kivi, bits: 4, group: 32, residual: 128}" \
    "{action: kv-cache, method: kivi, bits: 4, group: 32, residual: 32}" \
    "{action: kv-cache, method: kivi, bits: 2, group: 32, residual: 128}" \
    "{action: kv-cache, method: kivi, bits: 2, group: 32, residual: 32}" \
    "{action: kv-cache, method: llm-qat, bits: 8}" \
    "{action: kv-cache, method: llm-qat, bits: 4}"; do
    line=""
    [ -n "$kv" ] && line="  - $kv"$'\n'
    name=${kv:-"F32 (none)"}
    row="| $name | $(ppl "$line")"
    row+=" | $(ppl "$w4a4"$'\n'"$line")"
    row+=" | $(ppl "  - {action: rotate, method: quarot}"$'\n'"$w4a4"$'\n'"$line")"
    row+=" | $(ppl "  - {action: rotate, method: quarot, online: true}"$'\n'"$w4a4"$'\n'"$line") |"
    echo "$row"
done
