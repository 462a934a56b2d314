// layerlab-cli apply: replays a recipe (YAML or JSON, docs/recipes.md) on a
// model headless, through the same applyStep() as the GUI, so the weights are
// bit-identical; optional evaluation and Hugging Face export.
#include "args.h"
#include "commands.h"
#include "compress_common.h"
#include "recipe_args.h"

#include "formats/open_model.h"
#include "model/model.h"
#include "recipe/apply.h"
#include "model/demo_model.h"
#include "recipe/recipe.h"
#include "recipe/session_file.h"

#include <chrono>
#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kApplyUsage =
    "usage: layerlab-cli apply (RECIPE MODEL | --session FILE.layerlab) [--calib FILE|builtin] [--eval FILE [--ctx 256]]\n"
    "         [--out DIR [--dtype f32|f16|bf16] | --gguf OUT.gguf [--gguf-type Q4_K_M|Q8_0|F16|...]] [--force] [--threads N] [--json]";

} // namespace

int cmdApply(const std::vector<std::string>& argv)
{
    const Args a(argv, {"calib", "eval", "ctx", "out", "dtype", "threads", "gguf", "gguf-type", "session"}, {"json", "force"});
    const std::optional<std::string> sessionFile = a.value("session");
    if (a.positional().size() != (sessionFile ? 0u : 2u))
        throw UsageError(kApplyUsage);
    // A GUI session carries both: the recipe and the model it was made on.
    std::optional<SessionFile> session;
    if (sessionFile)
        session = loadSession(*sessionFile);
    const std::string recipeFile = session ? *sessionFile : a.positional()[0];
    const std::string modelName = session ? (session->demo ? std::string(kDemoModelPath) : session->modelPath)
                                          : a.positional()[1];
    Recipe recipe = session ? session->recipe : loadRecipe(recipeFile);
    if (const auto calib = a.value("calib"))
        recipe.calibration.text = *calib; // the recipe's own text may live elsewhere on this machine
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    compress::CliProgress progress;
    const auto started = std::chrono::steady_clock::now();
    std::shared_ptr<const Model> source = session ? openSessionModel(*session) : openModel(modelName);
    const StepOutcome r = applyRecipeNamingFile(source, recipe, recipeFile, &progress);
    const CompressionState& state = r.state;

    nlohmann::json j;
    j["recipe"] = recipe.toJson();
    j["steps"] = r.summary;
    j["state"] = state.toJson();
    j["bits_per_weight"] = state.linearBitsPerWeight();
    j["parameters"] = state.model->parameterCount();
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    int64_t ctx = 0;
    const std::optional<PerplexityResult> ppl = compress::evaluateIfAsked(a, *state.model, progress, j, ctx, [&](Transformer& t) {
        if (!state.activations.empty())
            applyActivationQuantization(t, state.activations);
    });
    const std::optional<ExportResult> exported = compress::exportIfAsked(a, *state.model, progress, j);
    progress.clear();
    j["seconds_total"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (a.flag("json")) {
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    std::printf("%zu step(s) on %s: %.4f bits per weight over the block linears, %lld -> %lld parameters, %.1f s\n",
                recipe.steps.size(), oneLine(modelName).c_str(), state.linearBitsPerWeight(),
                static_cast<long long>(source->parameterCount()), static_cast<long long>(state.model->parameterCount()),
                j["seconds"].get<double>());
    for (size_t i = 0; i < recipe.steps.size(); ++i)
        std::printf("  %zu. %-9s %-28s %s\n", i + 1, std::string(actionName(recipe.steps[i].action)).c_str(),
                    recipe.steps[i].badge().c_str(), recipe.steps[i].action == StepAction::Rotate ? "(the whole model)"
                    : recipe.steps[i].action == StepAction::KvCache ? "(every block's KV cache)"
                    : recipe.steps[i].layers.empty()                ? "(every block linear)"
                                                                    : recipe.steps[i].layers.c_str());
    if (const KvCacheQuantization& kv = state.activations.kv; kv.active()) {
        constexpr int64_t kAt = 4096;
        const double bytes = kvCacheBytes(state.model->config, kv, kAt), f16 = kvCacheBytes(state.model->config, {}, kAt);
        std::printf("  KV cache (%s) at %lld positions: %.2f MiB, F16 %.2f MiB (%.2fx smaller)\n", kv.label().c_str(),
                    static_cast<long long>(kAt), bytes / 1048576.0, f16 / 1048576.0, f16 / bytes);
    }
    compress::printEvaluationAndExport(a, ppl, ctx, exported);
    return 0;
}

} // namespace ll::cli
