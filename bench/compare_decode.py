#!/usr/bin/env python3
"""Decode speed of layerlab-cli against a baseline, in interleaved pairs.

On a shared machine the speed of either program drifts by 20 % or more within
minutes, so two rounds of "ours, then theirs" can say 0.95x and 1.25x for the
same code. This script runs many short pairs instead, flipping the order of
each pair (AB, BA, AB, ...), and summarises the per-pair ratios: the median,
the geometric mean with a bootstrap 95 % interval, and how many pairs LayerLab
won. Decode here is llama-bench's tg: batch 1 from an empty context.

  bench/compare_decode.py --against llama:/path/llama-bench M.gguf [M2.gguf ...]
  bench/compare_decode.py --against layerlab:/path/other/layerlab-cli M.gguf   # two builds

Run from the project root after a release build.
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys


def layerlab_tg(cli, model, n, threads):
    out = subprocess.run([cli, "bench-model", model, "--prompt", "0", "--decode", str(n), "--decode-after", "0",
                          "--repeats", "1", "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["original"]["decode_tokens_per_second"]["mean"]


def llama_tg(bench, model, n, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out = subprocess.run([bench, "-m", model, "-p", "0", "-n", str(n), "-t", str(threads), "-r", "1", "-o", "json"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)[0]["avg_ts"]


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def bootstrap_ci(ratios, draws=4000, seed=1):
    rng = random.Random(seed)
    means = sorted(geomean([rng.choice(ratios) for _ in ratios]) for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--against", required=True, help="llama:PATH_TO_LLAMA_BENCH or layerlab:PATH_TO_OTHER_CLI")
    ap.add_argument("--layerlab", default="build/release/app/layerlab-cli")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--decode", type=int, default=64, help="tokens decoded per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args()

    kind, _, path = a.against.partition(":")
    if kind not in ("llama", "layerlab") or not path:
        ap.error("--against must be llama:PATH or layerlab:PATH")

    def ours(m):
        return layerlab_tg(a.layerlab, m, a.decode, a.threads)

    def theirs(m):
        return llama_tg(path, m, a.decode, a.threads) if kind == "llama" else layerlab_tg(path, m, a.decode, a.threads)

    summary = []
    for m in a.models:
        ours(m), theirs(m)  # warm-up: both read the file into the page cache
        pairs = []
        for i in range(a.pairs):
            if i % 2 == 0:
                x = ours(m)
                y = theirs(m)
            else:
                y = theirs(m)
                x = ours(m)
            pairs.append((x, y))
            print(f"{os.path.basename(m)} pair {i + 1}: layerlab {x:.2f}  {kind} {y:.2f}  ratio {x / y:.3f}",
                  file=sys.stderr, flush=True)
        ratios = [x / y for x, y in pairs]
        lo, hi = bootstrap_ci(ratios)
        s = {"model": os.path.basename(m), "against": kind, "pairs": len(pairs), "decode_tokens": a.decode,
             "threads": a.threads, "layerlab_tg": [x for x, _ in pairs], "baseline_tg": [y for _, y in pairs],
             "median_ratio": statistics.median(ratios), "geomean_ratio": geomean(ratios),
             "geomean_ci95": [lo, hi], "wins": sum(r >= 1.0 for r in ratios)}
        summary.append(s)
        print(f"{s['model']}: tg{a.decode} layerlab median {statistics.median(s['layerlab_tg']):.2f}, {kind} median "
              f"{statistics.median(s['baseline_tg']):.2f} tokens/s; ratio median {s['median_ratio']:.3f}, "
              f"geomean {s['geomean_ratio']:.3f} [{lo:.3f}, {hi:.3f}], LayerLab >= in {s['wins']}/{len(pairs)} pairs",
              flush=True)
    if a.json:
        print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
