# Sourced by the *_table.sh scripts: stories260K under the reference protocol
# (eval.txt, windows of 256; calibration: 64 windows of 256 tokens of calib.txt).
#   source bench/recipe_ppl.sh CLI SHARED; ppl "  - {action: ...}"$'\n'
cli=${1:-build/release/app/layerlab-cli}
shared=${2:-../shared}
model=$shared/models/stories260K-hf
eval=$shared/data/tinystories/eval.txt
calib=$shared/data/tinystories/calib.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ppl() { # recipe steps (YAML lines; empty: the model as it is) -> perplexity
    if [ -z "$1" ]; then
        "$cli" ppl "$model" --text "$eval" --ctx 256 --json | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])'
        return
    fi
    printf 'layerlab_recipe: 1\ncalibration: {text: %s, windows: 64, context: 256}\nsteps:\n%s' "$calib" "$1" > "$tmp/r.yaml"
    "$cli" apply "$tmp/r.yaml" "$model" --eval "$eval" --ctx 256 --json | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["ppl"])'
}
