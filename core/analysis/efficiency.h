#pragma once
// The efficiency figures of a model state, measured in one run (issue 17's
// "efficiency" dimension, the seed's finding that a smaller format can decode
// more slowly): prefill and decode speed as llama-bench measures them (pp N:
// a prompt of N tokens in one pass; tg N: N tokens one at a time through the
// KV cache after an optional prompt), the weights as held, the KV cache per
// 1,000 tokens, FLOPs per token and the process's peak memory.
#include "engine/transformer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ll {

class Progress;

struct EfficiencyOptions {
    int64_t prefillTokens = 512;   // pp: prompt tokens in one pass (0: skip)
    int64_t decodeTokens = 128;    // tg: tokens decoded one at a time (0: skip)
    int64_t decodeAfter = 128;     // prompt before decoding (0: from an empty context, llama-bench's tg)
    int repeats = 3;               // runs of each; mean ± sd as llama-bench reports them
    uint64_t seed = 1;             // the arbitrary token ids (llama-bench uses arbitrary ids too)
    bool warmup = true;            // one untimed token first (llama-bench's warm-up run)
};

struct Throughput {
    std::vector<double> runs;      // tokens/s of each run
    double mean = 0, sd = 0;       // sd: sample standard deviation (0 for one run)
};

// Mean and sample standard deviation of runs' tokens/s.
Throughput summariseRuns(std::vector<double> runs);

struct EfficiencyResult {
    Throughput prefill, decode;
    int64_t parameters = 0;        // of the linears, embedding and head as held (tied counted once)
    uint64_t weightBytes = 0;      // as the engine holds them (Transformer::weightBytes)
    double bitsPerWeight = 0;      // 8 * weightBytes / parameters
    uint64_t kvBytesPer1kTokens = 0; // the engine's F32 cache: layers * 2 * kv heads * head dim * 4 * 1000
    double flopsPerToken = 0;      // multiply-adds * 2 at the prefill's context
    uint64_t peakRssBytes = 0;     // VmHWM (mapped model pages included)
    uint64_t peakAnonBytes = 0;    // the largest RssAnon seen after a run (the process's own memory)
    // The most memory seen mapped in 2 MiB pages after a run (FilePmdMapped +
    // AnonHugePages): decoding reads every weight a token, and a model the page
    // cache holds in 4 KiB pages decodes about 1.4x slower (docs/benchmarks.md).
    uint64_t hugePageBytes = 0;
};

// Throws Cancelled between runs when progress asks.
EfficiencyResult measureEfficiency(const Transformer& model, const EfficiencyOptions& options, Progress* progress = nullptr);

// The original model and, when given, an edited one, measured one repetition
// at a time, alternating (a noisy machine slows both alike); each model's
// first run after its warm-up token. What `bench-model --recipe` and the
// Evaluate dock's Speed tab show.
struct EfficiencyComparison {
    EfficiencyResult original;
    std::optional<EfficiencyResult> edited;
    // The original's weight bytes over the edited's (1 without an edited model).
    double compressionRatio() const;
    // The quantization study's finding: smaller, yet decoding more slowly by
    // more than one standard deviation of each.
    bool smallerButSlower() const;
};
EfficiencyComparison compareEfficiency(const Transformer& original, const Transformer* edited, const EfficiencyOptions& options,
                                       Progress* progress = nullptr);

// {"prefill_tokens_per_second": {"mean", "sd", "runs"}, "decode_tokens_per_second": {...}, "parameters",
//  "weight_bytes", "bits_per_weight", "kv_bytes_per_1k_tokens", "flops_per_token", "peak_rss_bytes",
//  "peak_rss_anon_bytes", "huge_page_bytes"} (bench-model's JSON, sessions).
nlohmann::json toJson(const EfficiencyResult& r);
// Back from toJson's form; throws nlohmann::json's exceptions where a field is missing or of another type.
EfficiencyResult efficiencyFromJson(const nlohmann::json& j);

// bench-model's document: {"model", "threads", "prompt", "decode", "decode_after", "repeats", "original", and with
// an edited model "compressed", "compression_ratio", "smaller_but_slower", and "recipe" when named}. The HDF5
// report's /efficiency holds it, from the CLI and from the GUI's Speed tab.
nlohmann::json comparisonJson(const EfficiencyComparison& c, const EfficiencyOptions& options, const std::string& model,
                              int threads, const std::string& recipe = {});

// This process's memory from /proc/self/status (0 where unavailable).
uint64_t processPeakRss();
uint64_t processRssAnon();
// Mapped in 2 MiB pages now: FilePmdMapped + AnonHugePages of /proc/self/smaps_rollup.
uint64_t processHugePageBytes();

} // namespace ll
