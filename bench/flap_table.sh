#!/usr/bin/env bash
# The FLAP table of docs/methods.md: stories260K under the reference protocol
# (eval.txt, windows of 256, 64 windows of calib.txt). For each ratio, FLAP
# with and without its bias compensation, and the same KV groups and neurons
# per block removed by magnitude and by Wanda-sp's activation-aware score
# (two structured steps). One run each.
#   bench/flap_table.sh [build/release/app/layerlab-cli] [../shared]
set -euo pipefail
source "$(dirname "$0")/recipe_ppl.sh" "${1:-}" "${2:-}"

flap() { # ratio, extra keys -> "ppl groups_after neurons_after parameters"
    printf 'layerlab_recipe: 1\ncalibration: {text: %s, windows: 64, context: 256}\nsteps:\n  - {action: prune, method: flap, ratio: %s%s}\n' \
        "$calib" "$1" "$2" > "$tmp/f.yaml"
    "$cli" apply "$tmp/f.yaml" "$model" --eval "$eval" --ctx 256 --json | python3 -c '
import json, sys
j = json.load(sys.stdin); f = j["steps"][0]["flap"]
print("%.4f %d %d %d %d %d" % (j["ppl"], f["kv_groups"][0], f["kv_groups"][1], f["neurons"][0], f["neurons"][1], j["parameters"]))'
}
share() { python3 -c "print('%.6f' % (($1 - $2 + 0.5) / $1))"; } # removes exactly before - after units

echo "| FLAP | KV groups / neurons kept per block | FLAP | FLAP without bias | magnitude, same units | Wanda-sp, same units |"
echo "| --- | --- | --- | --- | --- | --- |"
for structure in adaptive uniform; do
    for ratio in 0.1 0.2 0.3 0.4; do
        read -r p g0 g1 n0 n1 _ <<< "$(flap "$ratio" ", structure: $structure")"
        read -r pb _ <<< "$(flap "$ratio" ", structure: $structure, no-bias: true")"
        row="| $ratio $structure | $g1/$g0, $n1/$n0 | $p | $pb"
        for m in magnitude wanda; do
            steps=""
            [ "$g1" -lt "$g0" ] && steps+="  - {action: prune, method: $m, structured: heads, ratio: $(share "$g0" "$g1")}"$'\n'
            [ "$n1" -lt "$n0" ] && steps+="  - {action: prune, method: $m, structured: neurons, ratio: $(share "$n0" "$n1")}"$'\n'
            row+=" | $(ppl "$steps")"
        done
        echo "$row |"
    done
done
