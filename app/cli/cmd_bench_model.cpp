// layerlab-cli bench-model: the efficiency figures of a model (and, with a
// recipe, of the compressed model beside it, runs alternating): prefill and
// decode tokens/s as llama-bench measures them, weights, KV cache, FLOPs per
// token, compression ratio, peak memory; flags a smaller model that decodes
// more slowly.
#include "args.h"
#include "commands.h"
#include "compress_common.h"
#include "recipe_args.h"

#include "analysis/efficiency.h"
#include "formats/open_model.h"
#include "model/model.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"
#include "report/report_writer.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kBenchModelUsage =
    "usage: layerlab-cli bench-model MODEL [--recipe R.yaml [--calib FILE]] [--prompt 512] [--decode 128] [--decode-after 128]\n"
    "         [--repeats 3] [--threads N] [--report OUT.h5 [--force]] [--json]";

std::string mib(uint64_t bytes)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return b;
}

} // namespace

int cmdBenchModel(const std::vector<std::string>& argv)
{
    const Args a(argv, {"recipe", "calib", "prompt", "decode", "decode-after", "repeats", "threads", "seed", "report"}, {"json", "force"});
    if (a.positional().size() != 1)
        throw UsageError(kBenchModelUsage);
    const std::string modelPath = a.positionalAt(0, "MODEL");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    EfficiencyOptions opt;
    opt.prefillTokens = a.intOr("prompt", 512, 0, 1 << 20);
    opt.decodeTokens = a.intOr("decode", 128, 0, 1 << 20);
    opt.decodeAfter = a.intOr("decode-after", 128, 0, 1 << 20);
    opt.seed = static_cast<uint64_t>(a.intOr("seed", 1, 0, INT64_MAX));
    const int repeats = static_cast<int>(a.intOr("repeats", 3, 1, 1000));

    compress::CliProgress progress;
    std::shared_ptr<const Model> source = openModel(modelPath);
    std::optional<CompressionState> compressed;
    std::string recipeFile;
    if (const auto r = a.value("recipe")) {
        recipeFile = *r;
        compressed = applyRecipeNamingFile(source, loadRecipeArg(a, recipeFile), recipeFile, &progress).state;
    }
    const Transformer original(*source, &progress);
    const std::unique_ptr<Transformer> edited = compressed ? stateEngine(*compressed, &progress) : nullptr;
    opt.repeats = repeats;
    const EfficiencyComparison measured = compareEfficiency(original, edited.get(), opt, &progress);
    progress.clear();
    const EfficiencyResult& a0 = measured.original;
    const EfficiencyResult a1 = measured.edited.value_or(EfficiencyResult{});
    const bool slower = measured.smallerButSlower();
    const double ratio = measured.compressionRatio();

    const nlohmann::json j = comparisonJson(measured, opt, modelPath, computeThreads(), recipeFile);
    // --report: the HDF5 report of the model measured last (the compressed one with --recipe), this under /efficiency.
    if (const auto report = a.value("report")) {
        ReportInputs in;
        in.model = compressed ? compressed->model.get() : source.get();
        if (compressed)
            in.recipe = compressed->recipe().toJson();
        in.efficiency = j;
        in.options.overwrite = a.flag("force");
        writeReport(*report, in, &progress);
        progress.clear();
    }
    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s, %d threads, %d runs each%s\n", oneLine(modelPath).c_str(), computeThreads(), repeats,
                edited ? (", original and after " + oneLine(recipeFile) + " alternating").c_str() : "");
    const auto row = [&](const char* label, const std::string& x, const std::string& y) {
        std::printf("  %-26s %-24s %s\n", label, x.c_str(), edited ? y.c_str() : "");
    };
    const auto rate = [](const Throughput& t) {
        char b[48];
        std::snprintf(b, sizeof b, "%.2f ± %.2f", t.mean, t.sd);
        return std::string(b);
    };
    const auto num = [](const char* fmt, double v) {
        char b[48];
        std::snprintf(b, sizeof b, fmt, v);
        return std::string(b);
    };
    if (edited)
        row("", "original", "compressed");
    const std::string pp = "prefill pp" + std::to_string(opt.prefillTokens) + " tok/s";
    const std::string tg = "decode tg" + std::to_string(opt.decodeTokens) + (opt.decodeAfter ? " @" + std::to_string(opt.decodeAfter) : "") + " tok/s";
    if (opt.prefillTokens > 0)
        row(pp.c_str(), rate(a0.prefill), rate(a1.prefill));
    if (opt.decodeTokens > 0)
        row(tg.c_str(), rate(a0.decode), rate(a1.decode));
    row("weights", mib(a0.weightBytes) + num(" (%.2f b/w)", a0.bitsPerWeight), mib(a1.weightBytes) + num(" (%.2f b/w)", a1.bitsPerWeight));
    row("compression vs F16", num("%.2fx", 16.0 / std::max(1e-9, a0.bitsPerWeight)), num("%.2fx", 16.0 / std::max(1e-9, a1.bitsPerWeight)));
    if (edited)
        row("compression vs original", "1.00x", num("%.2fx", ratio));
    row("KV cache per 1k tokens", mib(a0.kvBytesPer1kTokens), mib(a1.kvBytesPer1kTokens));
    row("GFLOP per token", num("%.3f", a0.flopsPerToken * 1e-9), num("%.3f", a1.flopsPerToken * 1e-9));
    std::printf("  %-26s %s (the process, mapped model included); RssAnon %s\n", "peak RSS", mib(std::max(a0.peakRssBytes, a1.peakRssBytes)).c_str(),
                mib(std::max(a0.peakAnonBytes, a1.peakAnonBytes)).c_str());
    // The page cache's page size changes decoding speed by about 1.4x: say which one this run had.
    const uint64_t huge = std::max(a0.hugePageBytes, a1.hugePageBytes);
    std::printf("  %-26s %s mapped in 2 MiB pages (%s of the weights' size)\n", "huge pages", mib(huge).c_str(),
                num("%.0f %%", std::min(100.0, 100.0 * static_cast<double>(huge) / static_cast<double>(std::max<uint64_t>(1, a0.weightBytes)))).c_str());
    if (slower)
        std::printf("  ! smaller (%.2fx) but decodes more slowly: %.2f against the original's %.2f tokens/s\n", ratio, a1.decode.mean, a0.decode.mean);
    if (const auto report = a.value("report"))
        std::printf("report: %s (/efficiency)\n", oneLine(*report).c_str());
    return 0;
}

} // namespace ll::cli
