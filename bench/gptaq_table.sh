#!/usr/bin/env bash
# The GPTAQ table of docs/methods.md: stories260K under the reference protocol
# (eval.txt, windows of 256, every block linear, 64 windows of calib.txt),
# GPTQ and GPTAQ at the same bits, alone and after a QuaRot rotation. One run each.
#   bench/gptaq_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

echo "| setting | GPTQ | GPTAQ α 0.25 | GPTAQ α 0.5 | GPTAQ α 1 |"
echo "| --- | --- | --- | --- | --- |"
for setting in "bits: 4, group: 0" "bits: 4, group: 32" "bits: 3, group: 32" "bits: 2, group: 32"; do
    for rot in "" "  - {action: rotate, method: quarot}"$'\n'; do
        row="| w${setting#bits: }${rot:+ + QuaRot}"
        row+=" | $(ppl "$rot  - {action: quantize, method: gptq, $setting}"$'\n')"
        for a in 0.25 0.5 1; do
            row+=" | $(ppl "$rot  - {action: quantize, method: gptaq, $setting, alpha: $a}"$'\n')"
        done
        echo "$row |"
    done
done
