#!/usr/bin/env bash
# The rotation table of docs/methods.md: stories260K under the reference
# protocol (eval.txt, windows of 256, every block linear), each weight/activation
# setting with and without a QuaRot rotation (seeds 0-3), one run each.
#   bench/rotation_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

declare -a names=("W4A16 RTN row" "W4A16 RTN g32" "W4A16 GPTQ g32" "W4A8 ZeroQuant g32" "W4A4 ZeroQuant g32")
declare -a steps=(
  "  - {action: quantize, method: rtn, bits: 4, group: 0}\n"
  "  - {action: quantize, method: rtn, bits: 4, group: 32}\n"
  "  - {action: quantize, method: gptq, bits: 4, group: 32}\n"
  "  - {action: quantize, method: zeroquant, bits: 4, group: 32, act_bits: 8}\n"
  "  - {action: quantize, method: zeroquant, bits: 4, group: 32, act_bits: 4}\n")
echo "| setting | no rotation | QuaRot seed 0 | seed 1 | seed 2 | seed 3 | QuaRot + online down_proj (seed 0) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for i in "${!names[@]}"; do
    s=$(printf "${steps[$i]}")
    row="| ${names[$i]} | $(ppl "$s"$'\n')"
    for seed in 0 1 2 3; do
        row+=" | $(ppl "  - {action: rotate, method: quarot, seed: $seed}"$'\n'"$s"$'\n')"
    done
    row+=" | $(ppl "  - {action: rotate, method: quarot, online: true}"$'\n'"$s"$'\n') |"
    echo "$row"
done
