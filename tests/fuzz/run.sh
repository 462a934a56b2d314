#!/usr/bin/env bash
# Builds the libFuzzer harnesses (preset `fuzz`), seeds their corpora and runs
# each for SECONDS:   tests/fuzz/run.sh SECONDS [TARGET...]
#
# Inputs are at most 64 KiB (larger seeds are cut: their headers still count).
# A crash, a leak, undefined behaviour, a timeout (10 s per input) or an input
# that needs more than 2 GB ends the run of that target; its reproducer lands
# in build/fuzz/findings/<target>/ and the script exits 1. Make each finding a
# regression file: copy it to tests/data/bad/<target>/ (replayed by ctest).
#
# Environment: FUZZ_JOBS (parallel targets, default: the number of cores),
# FUZZ_RUNS (stop each target after this many executions, if that comes first),
# FUZZ_CORPUS (corpus folder, default build/fuzz/corpus: kept between runs, so
# a long campaign can be run in pieces), SHARED (../shared by default).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_EACH=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(safetensors gguf llama2c llama2c_tokenizer tokenizer_json hf_config hf_index recipe session imatrix)
fi

# clang, libFuzzer and libomp besides what every build needs (Debian 12).
bash scripts/install-deps.sh --fuzz

# Paths relative to the checkout in ccache's keys, so fresh clones (CI) reuse the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset fuzz >/dev/null
targets=()
for t in "${TARGETS[@]}"; do targets+=("fuzz_$t"); done
cmake --build --preset fuzz --target "${targets[@]}"

BUILD=build/fuzz
CORPUS=${FUZZ_CORPUS:-$BUILD/corpus}
SEEDS=$BUILD/seeds
python3 tests/fuzz/make_seeds.py "$SEEDS" "${SHARED:-../shared}" >/dev/null
JOBS=${FUZZ_JOBS:-$(nproc)}
LOGS=$BUILD/logs
mkdir -p "$LOGS"

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0

run_one() {
    local t=$1
    local corpus=$CORPUS/$t findings=$BUILD/findings/$t
    mkdir -p "$corpus" "$findings"
    local tmp
    tmp=$(mktemp -d)
    local runs_limit=()
    if [ -n "${FUZZ_RUNS:-}" ]; then runs_limit=(-runs="$FUZZ_RUNS"); fi
    if TMPDIR=$tmp "$BUILD/tests/fuzz/fuzz_$t" "$corpus" "$SEEDS/$t" -max_total_time="$SECONDS_EACH" "${runs_limit[@]}" \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$findings/" >"$LOGS/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
    fi
    rm -rf "$tmp"
    local runs corpus_size
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOGS/$t.log" | grep -o '[0-9]*$' || echo 0)
    corpus_size=$(find "$corpus" -type f | wc -l)
    printf '%-18s %-6s %10s executions  %6s corpus files  (%s)\n' "$t" "$status" "${runs:-0}" "$corpus_size" "$LOGS/$t.log"
    [ "$status" = ok ]
}
export -f run_one
FUZZ_RUNS=${FUZZ_RUNS:-}
export BUILD CORPUS SEEDS LOGS SECONDS_EACH FUZZ_RUNS

printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}' && exit 0
echo "tests/fuzz/run.sh: a target found a problem; reproducers in $BUILD/findings/, logs in $LOGS/" >&2
for t in "${TARGETS[@]}"; do
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$LOGS/$t.log" 2>/dev/null | sed "s/^/  $t: /" || true
done
exit 1
