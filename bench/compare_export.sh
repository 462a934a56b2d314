#!/usr/bin/env bash
# LayerLab's GGUF export against llama.cpp's llama-quantize doing the same
# conversion (docs/benchmarks.md, "Exports"). llama-quantize needs a GGUF
# input, so LayerLab first writes the Hugging Face folder as a BF16 GGUF; then,
# for each target type, three tools are run side by side, round after round:
#   llama-quantize   BF16.gguf -> OUT.gguf TYPE
#   layerlab (HF)    export HF_FOLDER --gguf OUT.gguf --gguf-type TYPE
#   layerlab (GGUF)  export BF16.gguf --gguf OUT.gguf --gguf-type TYPE
# Round 0 is a warm-up (page cache), not counted. Each run gives its wall time,
# peak RSS (/usr/bin/time) and peak RssAnon (/proc/PID/status, polled every
# 20 ms: the mapped model is not the process's own memory). LayerLab fsyncs its
# output (an export must survive a crash before it is renamed into place);
# llama-quantize does not, so the time of `sync OUT` after it is shown too.
# With --check, the tensor data of LayerLab's and llama-quantize's outputs are
# compared byte for byte (needs python3 with numpy and llama.cpp's gguf-py;
# PYTHON=/usr/bin/python3 picks another interpreter).
#
# usage: bench/compare_export.sh --hf DIR --llama-cpp DIR [--cli PATH] [--work DIR]
#                                [--types "F16 Q8_0"] [--rounds 3] [--check]
set -euo pipefail

HF=""; LLAMA=""; CLI="build/release/app/layerlab-cli"; WORK="${TMPDIR:-/tmp}/layerlab-compare-export"
TYPES="F16 Q8_0"; ROUNDS=3; CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hf) HF="$2"; shift 2 ;;
    --llama-cpp) LLAMA="$2"; shift 2 ;;
    --cli) CLI="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --types) TYPES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --check) CHECK=1; shift ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
[ -n "$HF" ] && [ -n "$LLAMA" ] || { sed -n '2,19p' "$0" >&2; exit 64; }
QUANTIZE="$LLAMA/build/bin/llama-quantize"
[ -x "$QUANTIZE" ] || { echo "no $QUANTIZE" >&2; exit 2; }
[ -x "$CLI" ] || { echo "no $CLI (build layerlab-cli first)" >&2; exit 2; }
mkdir -p "$WORK"
SRC="$WORK/source-bf16.gguf"

# run NAME OUT CMD...: one timed run; appends "name wall rss_kb anon_kb" to $WORK/runs.txt
run() {
  local name="$1" out="$2"; shift 2
  rm -f "$out"
  local tf; tf=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$tf" "$@" > /dev/null 2> "$WORK/last.err" &
  local tpid=$! pid="" anon=0 a
  while kill -0 "$tpid" 2> /dev/null; do
    [ -z "$pid" ] && pid=$(pgrep -P "$tpid" | head -1 || true)
    if [ -n "$pid" ] && a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2> /dev/null) && [ -n "$a" ]; then
      [ "$a" -gt "$anon" ] && anon=$a
    fi
    sleep 0.02
  done
  wait "$tpid" || { echo "$name failed:" >&2; cat "$WORK/last.err" >&2; exit 2; }
  read -r wall rss < "$tf"; rm -f "$tf"
  local extra=""
  if [ "$name" = "llama-quantize" ]; then
    local s0 s1; s0=$(date +%s.%N); sync "$out"; s1=$(date +%s.%N)
    extra=$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.2f", b - a}')
  fi
  echo "$TYPE $ROUND $name $wall $rss $anon ${extra:-0}" >> "$WORK/runs.txt"
  awk -v n="$name" -v t="$TYPE" -v r="$ROUND" -v w="$wall" -v m="$rss" -v a="$anon" -v s="$extra" 'BEGIN {
    printf "  %-16s %-5s round %s: %6.2f s  RSS %6.0f MB  RssAnon %6.0f MB%s\n", n, t, r, w, m / 1024, a / 1024,
           s == "" ? "" : "  (sync after: " s " s)" }'
}

echo "source: $HF -> $SRC (LayerLab, BF16)"
"$CLI" export "$HF" --gguf "$SRC" --gguf-type BF16 --force > /dev/null
: > "$WORK/runs.txt"
for TYPE in $TYPES; do
  for ROUND in $(seq 0 "$ROUNDS"); do
    run llama-quantize "$WORK/lq.gguf" "$QUANTIZE" "$SRC" "$WORK/lq.gguf" "$TYPE"
    run layerlab-hf "$WORK/ll-hf.gguf" "$CLI" export "$HF" --gguf "$WORK/ll-hf.gguf" --gguf-type "$TYPE" --force
    run layerlab-gguf "$WORK/ll-gguf.gguf" "$CLI" export "$SRC" --gguf "$WORK/ll-gguf.gguf" --gguf-type "$TYPE" --force
  done
  if [ "$CHECK" = 1 ]; then
    PYTHONPATH="$LLAMA/gguf-py" "${PYTHON:-python3}" - "$WORK/lq.gguf" "$WORK/ll-hf.gguf" "$WORK/ll-gguf.gguf" << 'EOF' \
      || echo "  check skipped (python3 with numpy and gguf-py needed; set PYTHON=...)"
import sys
from gguf import GGUFReader
ref = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
for path in sys.argv[2:]:
    ours = {t.name: t for t in GGUFReader(path).tensors}
    same = sum(1 for n, t in ours.items() if n in ref and t.tensor_type == ref[n].tensor_type
               and t.data.tobytes() == ref[n].data.tobytes())
    print(f"  check: {path}: {same} of {len(ref)} llama-quantize tensors byte-identical "
          f"(LayerLab wrote {len(ours)})")
EOF
  fi
  rm -f "$WORK/lq.gguf" "$WORK/ll-hf.gguf" "$WORK/ll-gguf.gguf"
done

echo
echo "medians over rounds 1..$ROUNDS (round 0 was the warm-up)"
awk '
  $2 > 0 { k = $1 " " $3; n[k]++; w[k, n[k]] = $4; if ($5 > r[k]) r[k] = $5; if ($6 > a[k]) a[k] = $6; s[k, n[k]] = $7
           if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
  function median(arr, k, c,   i, j, t, v) {
    for (i = 1; i <= c; i++) v[i] = arr[k, i]
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
  }
  END {
    printf "%-6s %-16s %9s %9s %9s %10s %12s\n", "type", "tool", "time s", "ratio", "ratio+sync", "peak RSS", "peak RssAnon"
    for (i = 1; i <= m; i++) { k = order[i]; split(k, p, " "); med[k] = median(w, k, n[k]); sy[k] = median(s, k, n[k]) }
    for (i = 1; i <= m; i++) {
      k = order[i]; split(k, p, " "); q = p[1] " llama-quantize"
      printf "%-6s %-16s %9.2f %9.2f %9.2f %7.0f MB %9.0f MB\n", p[1], p[2], med[k], med[k] / med[q],
             med[k] / (med[q] + sy[q]), r[k] / 1024, a[k] / 1024
    }
  }' "$WORK/runs.txt"
echo "(ratio: time / llama-quantize's; ratio+sync: time / (llama-quantize's + its sync); raw runs in $WORK/runs.txt)"
