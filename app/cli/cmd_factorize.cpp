// layerlab-cli factorize: low-rank factorization (SVD, ASVD, SVD-LLM) of a
// whole model's linears; optional evaluation and Hugging Face export. The
// model keeps each factored layer as its factors A, B (evaluation runs
// (x B^T) A^T); --dense stores the product A B instead. The export writes A B.
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "formats/open_model.h"
#include "model/model.h"

#include <chrono>

namespace ll::cli {

namespace {

const char* kFactorizeUsage =
    "usage: layerlab-cli factorize MODEL --method M (--rank-ratio F | --energy E) (layerlab-cli factorize --help lists the methods)\n"
    "         [--layers REGEX] [--calib FILE [--calib-ctx 256] [--calib-windows 64]] [--stats auto|sequential|one-shot]\n"
    "         [--alpha 0.5] [--dense] [--eval FILE [--ctx 256]] [--out DIR [--dtype f32|f16|bf16] | --gguf OUT.gguf [--gguf-type Q4_K_M|Q8_0|F16|...]] [--force] [--threads N]\n"
    "         [--json]\n"
    "  --dense  keep each factored layer as the dense product A B (same values; the evaluation runs at the dense cost)";

} // namespace

int cmdFactorize(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = compress::commonValued();
    const std::set<std::string> methodValued = compress::methodOptions(StepAction::Factorize, false);
    valued.insert(methodValued.begin(), methodValued.end());
    std::set<std::string> flags = compress::methodOptions(StepAction::Factorize, true);
    flags.insert({"json", "force", "dense"});
    const Args a(argv, valued, flags);
    if (a.positional().empty())
        throw UsageError(kFactorizeUsage);
    const std::string modelPath = a.positionalAt(0, "MODEL");
    if (a.positional().size() > 1)
        throw UsageError("unexpected argument '" + a.positional()[1] + "'\n" + kFactorizeUsage);
    ModelFactorizeOptions o = parseOptions([&] { return factorizeOptionsFrom(ArgsParams(a)); }, kFactorizeUsage);
    o.keepFactors = !a.flag("dense");
    if (o.method != LowRankMethod::Svd && !a.value("calib"))
        throw UsageError(a.valueOr("method", "") + " needs calibration text: --calib FILE");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    compress::CliProgress progress;
    const auto started = std::chrono::steady_clock::now();
    const auto model = openModel(modelPath);
    const std::vector<int32_t> calib = compress::calibrationTokens(*model, a);
    ModelCompressionResult r = factorizeModel(*model, o, calib, &progress);
    return compress::finish(a, r, progress, started);
}

} // namespace ll::cli
