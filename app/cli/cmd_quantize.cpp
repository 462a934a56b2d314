// layerlab-cli quantize: weight quantization of every linear inside the blocks
// (RTN, GPTQ, AWQ, SmoothQuant, LLM.int8, OWQ, SpQR, BCQ, NF4, FP8, FP4, ggml
// types, optionally + LoRC); optional evaluation and Hugging Face export of the
// dequantized weights.
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "pipeline/imatrix.h"
#include "pipeline/quantize_model.h"

#include <chrono>
#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kQuantizeUsage =
    "usage: layerlab-cli quantize MODEL --method M (layerlab-cli quantize --help lists them)\n"
    "         [--bits B] [--group G] [--sym] [--act-order] [--static-groups] [--type Q4_K|E4M3|E5M2]\n"
    "         [--layers REGEX] [--calib FILE [--calib-ctx 256] [--calib-windows 64] [--stats auto|sequential|one-shot]]\n"
    "         [--damp 0.01] [--blocksize 128] [--alpha 0.5] [--threshold 6] [--topk K] [--outlier-columns K]\n"
    "         [--outlier-fraction F] [--lorc-rank R] [--no-clip]\n"
    "         [--eval FILE [--ctx 256]] [--out DIR [--dtype f32|f16|bf16] | --gguf OUT.gguf [--gguf-type Q4_K_M|Q8_0|F16|...]] [--force] [--threads N] [--histograms] [--json]";

} // namespace

int cmdQuantize(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = compress::commonValued();
    const std::set<std::string> methodValued = compress::methodOptions(StepAction::Quantize, false);
    valued.insert(methodValued.begin(), methodValued.end());
    std::set<std::string> flags = compress::methodOptions(StepAction::Quantize, true);
    flags.insert({"json", "force", "histograms"});
    const Args a(argv, valued, flags);
    if (a.positional().empty())
        throw UsageError(kQuantizeUsage);
    const std::string modelPath = a.positionalAt(0, "MODEL");
    if (a.positional().size() > 1)
        throw UsageError("unexpected argument '" + a.positional()[1] + "'\n" + kQuantizeUsage);
    QuantizeModelOptions opt = parseOptions([&] { return quantizeOptionsFrom(ArgsParams(a)); }, kQuantizeUsage);
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    compress::CliProgress progress;
    const auto started = std::chrono::steady_clock::now();
    const auto source = openModel(modelPath);
    useImatrixParam(*source, opt);
    const std::vector<int32_t> calib = opt.importance.empty() ? compress::calibrationTokens(*source, a) : std::vector<int32_t>{};
    ModelCompressionResult r = quantizeModel(*source, opt, calib, &progress);

    nlohmann::json j = r.toJson(a.flag("histograms"));
    int64_t ctx = 0;
    // SmoothQuant / LLM.int8: the activations are quantized too (W8A8 products).
    const bool w8a8 = !r.activations.empty();
    const std::optional<PerplexityResult> ppl = compress::evaluateIfAsked(a, *r.model, progress, j, ctx, [&](Transformer& t) {
        if (w8a8)
            applyActivationQuantization(t, r.activations);
    });
    if (ppl) {
        std::string what = "weights only";
        if (w8a8) { // appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "W" + std::to_string(...)
            what = "W";
            what += std::to_string(opt.config.grid.bits);
            what += 'A';
            what += std::to_string(r.activations.bits);
        }
        j["quantized"] = what;
    }
    const auto exportStarted = std::chrono::steady_clock::now();
    const std::optional<ExportResult> exported = compress::exportIfAsked(a, *r.model, progress, j);
    const double exportSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - exportStarted).count();
    if (exported)
        j["seconds_export"] = exportSeconds;
    progress.clear();
    j["seconds_total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%s (%s statistics%s): %lld weights at %.4f bits per weight, %.1f s\n", r.method.c_str(),
                r.statsMode.c_str(),
                r.calibrationTokens > 0 ? (", " + std::to_string(r.calibrationTokens) + " tokens").c_str() : "",
                static_cast<long long>(r.quantizedWeights()), r.bitsPerWeight(), r.seconds);
    if (r.calibrationTokens > 0) {
        // Wall time of the streaming pass by part (BlockStatsTimes); "statistics" re-runs each block with the Gram sums.
        std::printf("  time: embedding %.1f s, forward %.1f s, statistics (forward + Hessians) %.1f s, %s %.1f s",
                    r.times.embedding, r.times.forward, r.times.statistics, opt.config.method.c_str(), r.times.compress);
        if (exported)
            std::printf(", export %.1f s", exportSeconds);
        std::printf("\n");
    }
    std::printf("  %-28s %-34s %8s %10s %10s\n", "layer", "method", "bits/w", "weight err", "output err");
    for (const LayerOutcome& l : r.layers) {
        char outErr[32] = "-";
        if (l.outputError)
            std::snprintf(outErr, sizeof outErr, "%.4f", *l.outputError);
        std::printf("  %-28s %-34s %8.4f %10.4f %10s\n", l.name.c_str(), l.method.c_str(), l.quantized->bitsPerWeight,
                    l.weightError, outErr);
    }
    compress::printEvaluationAndExport(a, ppl, ctx, exported, ppl ? j.at("quantized").get<std::string>() : std::string());
    return 0;
}

} // namespace ll::cli
