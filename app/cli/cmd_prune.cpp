// layerlab-cli prune: magnitude / Wanda / SparseGPT pruning of a whole model
// (unstructured or N:M), removal of MLP neurons or attention heads (whole KV
// groups; FLAP), of whole blocks (ShortGPT) or hidden dimensions (SliceGPT);
// optional evaluation and export of the result.
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "formats/open_model.h"
#include "model/model.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace ll::cli {

namespace {

const char* kPruneUsage =
    "usage: layerlab-cli prune MODEL --method M (--sparsity S | --nm N:M) (layerlab-cli prune --help lists the methods)\n"
    "         [--structured neurons|heads --ratio R] [--layers REGEX] [--calib FILE [--calib-ctx 256] [--calib-windows 64]]\n"
    "         [--stats auto|sequential|one-shot] [--blocksize 128] [--damp 0.01]\n"
    "         [--eval FILE [--ctx 256]] [--out DIR [--dtype f32|f16|bf16] | --gguf OUT.gguf [--gguf-type Q4_K_M|Q8_0|F16|...]] [--force] [--threads N] [--json]";

// A step that rebuilds the whole model (SliceGPT, ShortGPT) as the result the
// other prunes print: no per-layer rows, the parameters before and after.
ModelCompressionResult wholeModelResult(std::string method, const Model& source, std::unique_ptr<Model> model,
                                        int64_t calibrationTokens, double seconds)
{
    ModelCompressionResult r;
    r.method = std::move(method);
    r.statsMode = "one-shot";
    r.calibrationTokens = calibrationTokens;
    r.seconds = seconds;
    r.model = std::move(model);
    r.countParameters(source);
    return r;
}

} // namespace

int cmdPrune(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = compress::commonValued();
    const std::set<std::string> methodValued = compress::methodOptions(StepAction::Prune, false);
    valued.insert(methodValued.begin(), methodValued.end());
    std::set<std::string> flags = compress::methodOptions(StepAction::Prune, true);
    flags.insert({"json", "force"});
    const Args a(argv, valued, flags);
    if (a.positional().empty())
        throw UsageError(kPruneUsage);
    const std::string modelPath = a.positionalAt(0, "MODEL");
    if (a.positional().size() > 1)
        throw UsageError("unexpected argument '" + a.positional()[1] + "'\n" + kPruneUsage);
    const PruneStepOptions o = parseOptions([&] { return pruneOptionsFrom(ArgsParams(a)); }, kPruneUsage);
    if (o.needsCalibration && !a.value("calib"))
        throw UsageError(a.valueOr("method", "")
                         + (o.kind == PruneStepOptions::Kind::Neurons || o.kind == PruneStepOptions::Kind::Heads ? " --structured" : "")
                         + " needs calibration text: --calib FILE");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));
    compress::CliProgress progress;
    const auto started = std::chrono::steady_clock::now();
    const auto model = openModel(modelPath);
    const std::vector<int32_t> calib = compress::calibrationTokens(*model, a);
    ModelCompressionResult r;
    switch (o.kind) {
    case PruneStepOptions::Kind::Unstructured: r = pruneModel(*model, o.unstructured, calib, &progress); break;
    case PruneStepOptions::Kind::Neurons: r = pruneMlpNeurons(*model, o.neurons, calib, &progress); break;
    case PruneStepOptions::Kind::Heads: r = pruneAttentionHeads(*model, o.heads, calib, &progress); break;
    case PruneStepOptions::Kind::Hidden: {
        SliceResult s = sliceModel(*model, o.slice, calib, &progress);
        r = wholeModelResult("slicegpt hidden " + std::to_string(s.hiddenBefore) + " -> " + std::to_string(s.hiddenAfter)
                                 + " (" + std::to_string(static_cast<int>(std::lround(100.0 * s.keptEnergy)))
                                 + " % of the variance kept)",
                             *model, std::move(s.model), s.calibrationTokens, s.seconds);
        break;
    }
    case PruneStepOptions::Kind::Flap: r = std::move(flapPrune(*model, o.flap, calib, &progress).compression); break;
    case PruneStepOptions::Kind::Blocks: {
        BlockRemovalResult b = removeBlocksByInfluence(*model, o.blocks, calib, &progress);
        if (!a.flag("json")) {
            progress.clear();
            std::printf("block influence (1 - mean cos of each block's input and output):\n");
            for (size_t i = 0; i < b.influence.size(); ++i)
                std::printf("  block %-3zu %.5f%s\n", i, b.influence[i],
                            std::binary_search(b.removed.begin(), b.removed.end(), static_cast<int>(i)) ? "  removed" : "");
        }
        r = wholeModelResult("shortgpt -" + std::to_string(b.removed.size()) + " blocks", *model, std::move(b.model),
                             b.calibrationTokens, b.seconds);
        break;
    }
    }
    return compress::finish(a, r, progress, started);
}

} // namespace ll::cli
