#!/usr/bin/env bash
# Perplexity throughput and memory, LayerLab against llama.cpp's
# llama-perplexity, side by side on the same GGUF, text, context and threads.
# The runs alternate (ABBA...) because the machine is shared and noisy; the
# medians and their ratio are printed at the end. llama.cpp is built outside
# the project (docs/benchmarks.md); LayerLab never depends on it.
#
#   bench/compare_ppl.sh --gguf M.gguf --text FILE [--layerlab-model PATH] [--ctx 512]
#                        [--chunks 4] [--threads 2] [--rounds 3] [--llama-cpp DIR] [--cli PATH]
#
# tokens/s counts every position of every window (llama.cpp's "prompt eval").
# wall is the whole command: with --chunks 1 it is the time to the first
# scored window, opening included. Memory: peak RSS and peak RssAnon
# (bench/peak_memory.sh); a mapped model is page cache, not the process's own.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gguf="" text="" model="" ctx=512 chunks=4 threads=2 rounds=3
llama="${LLAMA_CPP:-/work/llama.cpp}"
cli="$here/../build/release/app/layerlab-cli"
while [ $# -gt 0 ]; do
  case "$1" in
    --gguf) gguf="$2"; shift 2 ;;
    --text) text="$2"; shift 2 ;;
    --layerlab-model) model="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --chunks) chunks="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --llama-cpp) llama="$2"; shift 2 ;;
    --cli) cli="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
[ -n "$gguf" ] && [ -n "$text" ] || { sed -n '2,14p' "$0" >&2; exit 64; }
model="${model:-$gguf}"
perplexity="$llama/build/bin/llama-perplexity"
[ -x "$perplexity" ] || { echo "no $perplexity (build llama.cpp first)" >&2; exit 2; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Prints "tokens_per_second wall_s rss_mib anon_mib".
run_llama() {
  "$here/peak_memory.sh" "$perplexity" -m "$gguf" -f "$text" -c "$ctx" -b "$ctx" --chunks "$chunks" -t "$threads" \
    >"$log/llama.out" 2>"$log/llama.err" || { tail -5 "$log/llama.err" >&2; exit 2; }
  local tps mem
  tps=$(grep "prompt eval time" "$log/llama.err" | tail -1 | sed -E 's/.*\( *[0-9.]+ ms per token, *([0-9.]+) tokens per second.*/\1/')
  mem=$(grep "^peak_memory:" "$log/llama.err" | sed -E 's/peak_memory: ([0-9.]+) s, peak RSS ([0-9]+) MiB, peak RssAnon ([0-9]+) MiB.*/\1 \2 \3/')
  echo "$tps $mem"
}

run_layerlab() {
  "$here/peak_memory.sh" "$cli" ppl "$model" --text "$text" --ctx "$ctx" --max-windows "$chunks" --threads "$threads" \
    --protocol llamacpp --json >"$log/ll.out" 2>"$log/ll.err" || { tail -5 "$log/ll.err" >&2; exit 2; }
  local tps mem
  tps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_second"])' "$log/ll.out")
  mem=$(grep "^peak_memory:" "$log/ll.err" | sed -E 's/peak_memory: ([0-9.]+) s, peak RSS ([0-9]+) MiB, peak RssAnon ([0-9]+) MiB.*/\1 \2 \3/')
  echo "$tps $mem"
}

echo "model $gguf (LayerLab: $model), text $text, ctx $ctx, $chunks chunks, $threads threads, $rounds rounds"
printf "%-10s %5s %10s %8s %9s %10s\n" tool round tokens/s wall_s rss_MiB anon_MiB
: >"$log/llama.rows"
: >"$log/ll.rows"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="llama layerlab"; else order="layerlab llama"; fi
  for tool in $order; do
    if [ "$tool" = llama ]; then row=$(run_llama); echo "$row" >>"$log/llama.rows"; name=llama.cpp
    else row=$(run_layerlab); echo "$row" >>"$log/ll.rows"; name=LayerLab; fi
    # shellcheck disable=SC2086
    printf "%-10s %5d %10.1f %8.2f %9d %10d\n" "$name" "$r" $row
  done
done
python3 - "$log/llama.rows" "$log/ll.rows" <<'EOF'
import statistics, sys
def med(path):
    rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)]
a, b = med(sys.argv[1]), med(sys.argv[2])
print("medians    tokens/s   wall_s   rss_MiB  anon_MiB")
print("llama.cpp %9.1f %8.2f %9.0f %9.0f" % tuple(a))
print("LayerLab  %9.1f %8.2f %9.0f %9.0f" % tuple(b))
print("LayerLab / llama.cpp: tokens/s %.2f, wall %.2f, peak RSS %.2f" % (b[0] / a[0], b[1] / a[1], b[2] / a[2]))
EOF
