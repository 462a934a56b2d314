#include "analysis/efficiency.h"

#include "engine/session.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace ll {

namespace {

// The sum of the "Key:   N kB" lines of a /proc file named in keys, in bytes
// (0 where unavailable); one read of the file.
uint64_t procBytes(const char* file, std::initializer_list<const char*> keys)
{
    std::FILE* f = std::fopen(file, "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kb = 0;
    while (std::fgets(line, sizeof line, f))
        for (const char* key : keys) {
            const size_t n = std::strlen(key);
            if (std::strncmp(line, key, n) == 0 && line[n] == ':')
                kb += std::strtoull(line + n + 1, nullptr, 10);
        }
    std::fclose(f);
    return kb * 1024;
}

} // namespace

Throughput summariseRuns(std::vector<double> runs)
{
    Throughput t;
    t.runs = std::move(runs);
    if (t.runs.empty())
        return t;
    for (const double r : t.runs)
        t.mean += r / static_cast<double>(t.runs.size());
    if (t.runs.size() > 1) {
        double ss = 0;
        for (const double r : t.runs)
            ss += (r - t.mean) * (r - t.mean);
        t.sd = std::sqrt(ss / static_cast<double>(t.runs.size() - 1));
    }
    return t;
}

namespace {

// Arbitrary but fixed token ids (never 0, which is often a control token).
std::vector<int32_t> tokenIds(int64_t n, int64_t vocab, uint64_t seed)
{
    std::vector<int32_t> ids(static_cast<size_t>(n));
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto& id : ids) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        id = static_cast<int32_t>(1 + x % static_cast<uint64_t>(std::max<int64_t>(1, vocab - 1)));
    }
    return ids;
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

uint64_t processPeakRss() { return procBytes("/proc/self/status", {"VmHWM"}); }
uint64_t processRssAnon() { return procBytes("/proc/self/status", {"RssAnon"}); }
uint64_t processHugePageBytes() { return procBytes("/proc/self/smaps_rollup", {"FilePmdMapped", "AnonHugePages"}); }

EfficiencyResult measureEfficiency(const Transformer& model, const EfficiencyOptions& options, Progress* progress)
{
    const int64_t positions = model.config().maxPositions > 1 ? model.config().maxPositions : INT64_MAX;
    if (options.prefillTokens > positions || options.decodeAfter + options.decodeTokens > positions)
        fail(ErrorCode::InvalidArgument, model.source(),
             "the runs need " + std::to_string(std::max(options.prefillTokens, options.decodeAfter + options.decodeTokens))
                 + " positions, the model has " + std::to_string(positions));
    EfficiencyResult r;
    const int repeats = std::max(1, options.repeats);
    const auto prompt = tokenIds(std::max<int64_t>({options.prefillTokens, options.decodeAfter, 1}), model.vocab(), options.seed);
    const auto generated = tokenIds(options.decodeTokens, model.vocab(), options.seed + 1);
    std::vector<double> prefill, decode;
    const auto note = [&] {
        r.peakAnonBytes = std::max(r.peakAnonBytes, processRssAnon());
        r.hugePageBytes = std::max(r.hugePageBytes, processHugePageBytes());
    };
    // A warm-up token first, as llama-bench's warm-up run: it reads every weight once, so
    // pages of the file that the kernel reclaimed meanwhile are not timed as decoding.
    if (options.warmup) {
        Session warm(model);
        warm.append(std::span<const int32_t>(prompt.data(), std::min<size_t>(prompt.size(), 1)));
    }
    for (int rep = 0; rep < repeats; ++rep) {
        // Alternating pp and tg runs, as llama-bench's repetitions do.
        if (options.prefillTokens > 0) {
            throwIfCancelled(progress);
            if (progress)
                progress->report(static_cast<double>(rep) / repeats, "prefill run " + std::to_string(rep + 1) + " of " + std::to_string(repeats));
            Session session(model);
            const auto t0 = std::chrono::steady_clock::now();
            session.append(std::span<const int32_t>(prompt.data(), static_cast<size_t>(options.prefillTokens)));
            prefill.push_back(static_cast<double>(options.prefillTokens) / secondsSince(t0));
            note();
        }
        if (options.decodeTokens > 0) {
            throwIfCancelled(progress);
            if (progress)
                progress->report((rep + 0.5) / repeats, "decode run " + std::to_string(rep + 1) + " of " + std::to_string(repeats));
            Session session(model);
            if (options.decodeAfter > 0)
                session.append(std::span<const int32_t>(prompt.data(), static_cast<size_t>(options.decodeAfter)));
            const auto t0 = std::chrono::steady_clock::now();
            for (const int32_t id : generated)
                session.appendToken(id);
            decode.push_back(static_cast<double>(options.decodeTokens) / secondsSince(t0));
            note();
        }
    }
    r.prefill = summariseRuns(std::move(prefill));
    r.decode = summariseRuns(std::move(decode));
    const ModelConfig& c = model.config();
    const TransformerWeights& w = model.weights();
    // The embedding table once (a tied head is the same matrix), the head, every block linear.
    r.parameters = w.embeddingTable().rows * w.embeddingTable().cols + (w.headTied ? 0 : w.head.parameterCount());
    for (const BlockWeights& b : w.blocks)
        for (const LinearWeights* lw : {&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down})
            r.parameters += lw->parameterCount();
    r.weightBytes = model.weightBytes();
    r.bitsPerWeight = r.parameters > 0 ? 8.0 * static_cast<double>(r.weightBytes) / static_cast<double>(r.parameters) : 0;
    r.kvBytesPer1kTokens = static_cast<uint64_t>(model.layers()) * 2 * static_cast<uint64_t>(c.kvHeads * c.headDim) * sizeof(float) * 1000;
    // Transformer::flopsPerToken counts multiply-adds: two FLOPs each.
    r.flopsPerToken = 2.0 * model.flopsPerToken(std::max<int64_t>(1, options.prefillTokens));
    r.peakRssBytes = processPeakRss();
    return r;
}

namespace {

// Runs of two measurements taken one repetition at a time, put together: the
// throughputs pooled, the memory peaks the larger, the rest the latest run's.
void merge(EfficiencyResult& into, const EfficiencyResult& run)
{
    const auto pooled = [](const Throughput& a, const Throughput& b) {
        std::vector<double> runs = a.runs;
        runs.insert(runs.end(), b.runs.begin(), b.runs.end());
        return summariseRuns(std::move(runs));
    };
    EfficiencyResult r = run;
    r.prefill = pooled(into.prefill, run.prefill);
    r.decode = pooled(into.decode, run.decode);
    r.peakAnonBytes = std::max(into.peakAnonBytes, run.peakAnonBytes);
    r.hugePageBytes = std::max(into.hugePageBytes, run.hugePageBytes);
    into = std::move(r);
}

} // namespace

nlohmann::json toJson(const EfficiencyResult& r)
{
    const auto throughput = [](const Throughput& t) { return nlohmann::json{{"mean", t.mean}, {"sd", t.sd}, {"runs", t.runs}}; };
    return {{"prefill_tokens_per_second", throughput(r.prefill)},
            {"decode_tokens_per_second", throughput(r.decode)},
            {"parameters", r.parameters},
            {"weight_bytes", r.weightBytes},
            {"bits_per_weight", r.bitsPerWeight},
            {"kv_bytes_per_1k_tokens", r.kvBytesPer1kTokens},
            {"flops_per_token", r.flopsPerToken},
            {"peak_rss_bytes", r.peakRssBytes},
            {"peak_rss_anon_bytes", r.peakAnonBytes},
            {"huge_page_bytes", r.hugePageBytes}};
}

EfficiencyResult efficiencyFromJson(const nlohmann::json& j)
{
    EfficiencyResult r;
    r.prefill = summariseRuns(j.at("prefill_tokens_per_second").at("runs").get<std::vector<double>>());
    r.decode = summariseRuns(j.at("decode_tokens_per_second").at("runs").get<std::vector<double>>());
    r.parameters = j.at("parameters").get<int64_t>();
    r.weightBytes = j.at("weight_bytes").get<uint64_t>();
    r.bitsPerWeight = j.at("bits_per_weight").get<double>();
    r.kvBytesPer1kTokens = j.at("kv_bytes_per_1k_tokens").get<uint64_t>();
    r.flopsPerToken = j.at("flops_per_token").get<double>();
    r.peakRssBytes = j.at("peak_rss_bytes").get<uint64_t>();
    r.peakAnonBytes = j.at("peak_rss_anon_bytes").get<uint64_t>();
    r.hugePageBytes = j.value("huge_page_bytes", uint64_t{0});
    return r;
}

nlohmann::json comparisonJson(const EfficiencyComparison& c, const EfficiencyOptions& options, const std::string& model,
                              int threads, const std::string& recipe)
{
    nlohmann::json j{{"model", model},
                     {"threads", threads},
                     {"prompt", options.prefillTokens},
                     {"decode", options.decodeTokens},
                     {"decode_after", options.decodeAfter},
                     {"repeats", options.repeats},
                     {"original", toJson(c.original)}};
    if (c.edited) {
        if (!recipe.empty())
            j["recipe"] = recipe;
        j["compressed"] = toJson(*c.edited);
        j["compression_ratio"] = c.compressionRatio();
        j["smaller_but_slower"] = c.smallerButSlower();
    }
    return j;
}

double EfficiencyComparison::compressionRatio() const
{
    return edited && edited->weightBytes > 0 ? static_cast<double>(original.weightBytes) / static_cast<double>(edited->weightBytes) : 1.0;
}

bool EfficiencyComparison::smallerButSlower() const
{
    return edited && edited->weightBytes < original.weightBytes
           && edited->decode.mean + edited->decode.sd < original.decode.mean - original.decode.sd;
}

EfficiencyComparison compareEfficiency(const Transformer& original, const Transformer* edited, const EfficiencyOptions& options,
                                       Progress* progress)
{
    EfficiencyComparison c;
    if (edited)
        c.edited.emplace();
    EfficiencyOptions once = options;
    once.repeats = 1;
    const int repeats = std::max(1, options.repeats);
    const int runs = repeats * (edited ? 2 : 1);
    int run = 0;
    for (int rep = 0; rep < repeats; ++rep) {
        once.warmup = options.warmup && rep == 0; // each model's first run warms its pages
        const std::string of = " (" + std::to_string(rep + 1) + " of " + std::to_string(repeats) + ")";
        SubProgress originalPart(progress, static_cast<double>(run) / runs, static_cast<double>(run + 1) / runs,
                                 edited ? "original" + of : "run" + of);
        merge(c.original, measureEfficiency(original, once, &originalPart));
        ++run;
        if (edited) {
            SubProgress editedPart(progress, static_cast<double>(run) / runs, static_cast<double>(run + 1) / runs, "current" + of);
            merge(*c.edited, measureEfficiency(*edited, once, &editedPart));
            ++run;
        }
    }
    return c;
}

} // namespace ll
