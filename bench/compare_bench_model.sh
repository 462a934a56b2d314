#!/bin/bash
# layerlab-cli bench-model against llama-bench on the same GGUF files, alternating,
# 2 threads: pp512 and tg128 (from an empty context, as llama-bench's tg), 3 runs each.
#   bench/compare_bench_model.sh LLAMA_BENCH MODEL.gguf [MODEL.gguf ...]
# Run from the project root after a release build; docs/benchmarks.md has the figures.
set -u
LLAMA_BENCH=$1; shift
for round in 1 2; do
for M in "$@"; do
  f=$(basename "$M" .gguf)
  echo "== round $round $f LayerLab"
  build/release/app/layerlab-cli bench-model $M --prompt 512 --decode 128 --decode-after 0 --repeats 3 --threads 2 --json | python3 -c "import json,sys; j=json.load(sys.stdin)['original']; print('LL pp512 %.2f ± %.2f  tg128 %.2f ± %.2f  rss %.0f MiB anon %.0f MiB' % (j['prefill_tokens_per_second']['mean'], j['prefill_tokens_per_second']['sd'], j['decode_tokens_per_second']['mean'], j['decode_tokens_per_second']['sd'], j['peak_rss_bytes']/2**20, j['peak_rss_anon_bytes']/2**20))"
  echo "== round $round $f llama-bench"
  (unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; "$LLAMA_BENCH" -m $M -p 512 -n 128 -t 2 -r 3 -o csv 2>/dev/null | python3 -c "
import csv,sys
for r in csv.DictReader(sys.stdin):
    print('llama', 'pp' if int(r['n_prompt'])>0 else 'tg', r['avg_ts'], '±', r['stddev_ts'])")
done
done
