// layerlab-cli mixed: one quantization config per layer under a size budget,
// chosen by per-layer sensitivity (core/analysis/mixed_precision.h); prints
// the assignment, saves it as a recipe, measures it.
#include "analysis_common.h"
#include "args.h"
#include "commands.h"
#include "compress_common.h"

#include "analysis/mixed_precision.h"
#include "formats/open_model.h"
#include "model/model.h"

#include <cstdio>
#include <iostream>

namespace ll::cli {

namespace {

const char* kMixedUsage =
    "usage: layerlab-cli mixed MODEL --candidates \"rtn:2:32,rtn:3:32,rtn:4:32,rtn:8:32\"\n"
    "         (--budget-bits 4.5 | --budget-bytes N) --eval FILE [--ctx 128] [--windows 8] [--layers REGEX]\n"
    "         [--metric kl|dnll|dppl|top1] [--solver exact|greedy] [--calib FILE|builtin [--calib-ctx 256]\n"
    "         [--calib-windows 64]] [--save-recipe R.yaml] [--no-measure] [--threads N] [--json]\n"
    "  a candidate is METHOD[:BITS[:GROUP]] followed by flags or KEY=VALUE options, e.g. gptq:3:32:act-order";

} // namespace

int cmdMixed(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = analysis::commonValued();
    valued.insert({"candidates", "budget-bits", "budget-bytes", "solver", "save-recipe"});
    const Args a(argv, valued, {"json", "no-measure", "sweeps"});
    if (a.positional().size() != 1)
        throw UsageError(kMixedUsage);
    MixedPrecisionOptions o;
    const auto candidates = a.value("candidates");
    if (!candidates)
        throw UsageError(std::string("--candidates is required\n") + kMixedUsage);
    o.candidates = parseOptions([&] { return parseCandidates(*candidates); }, kMixedUsage);
    if (a.value("budget-bits"))
        o.budget.bitsPerWeight = a.doubleOr("budget-bits", 0.0);
    if (a.value("budget-bytes"))
        o.budget.bytes = a.doubleOr("budget-bytes", 0.0);
    if (!o.budget.bitsPerWeight && !o.budget.bytes)
        throw UsageError(std::string("give --budget-bits or --budget-bytes\n") + kMixedUsage);
    const std::string solver = a.valueOr("solver", "exact");
    if (solver != "exact" && solver != "greedy")
        throw UsageError("--solver must be exact or greedy");
    o.solver = solver == "exact" ? MixedSolver::Exact : MixedSolver::Greedy;
    o.metric = analysis::metric(a, "kl");
    o.layers = a.valueOr("layers", "");
    o.scoring = analysis::scoringOptions(a);
    o.compareLogits = true;
    o.measure = !a.flag("no-measure");
    setComputeThreads(static_cast<int>(a.intOr("threads", 0, 0, 1024)));

    compress::CliProgress progress;
    const std::shared_ptr<const Model> model = openModel(a.positional()[0]);
    const std::vector<int32_t> eval = analysis::evalTokens(*model, a, o.scoring, kMixedUsage);
    const RecipeCalibration rc = analysis::recipeCalibration(a);
    bool needCalib = false;
    for (const RecipeStep& c : o.candidates)
        needCalib = needCalib || c.usesCalibration();
    const CalibrationText calib = needCalib ? loadCalibration(*model, rc) : CalibrationText{};
    const MixedPrecisionResult r =
        planMixedPrecision(CompressionState::initial(model), o, eval, calib, rc, {}, &progress);
    progress.clear();
    if (const auto path = a.value("save-recipe"))
        saveRecipe(r.recipe, *path);

    if (a.flag("json")) {
        nlohmann::json j = r.toJson(a.flag("sweeps"));
        j["eval"] = *a.value("eval");
        if (const auto path = a.value("save-recipe"))
            j["saved_recipe"] = *path;
        std::cout << jsonText(j) << "\n";
        return 0;
    }
    const MixedPlan& p = r.plan;
    std::printf("mixed precision over %zu layers (%s, %s solver), %.1f s\n", p.layers.size(),
                sensitivityMetricName(p.metric), mixedSolverName(p.solver), r.seconds);
    std::printf("  %-28s %-16s %8s %12s %10s\n", "layer", "config", "bits/w", "loss", "dppl alone");
    for (const MixedLayerChoice& l : p.layers)
        std::printf("  %-28s %-16s %8.3f %12.6f %+10.4f\n", l.name.c_str(), l.badge.c_str(), l.bitsPerWeight, l.loss,
                    l.deltaPpl);
    for (size_t c = 0; c < p.candidates.size(); ++c) {
        size_t count = 0;
        for (const MixedLayerChoice& l : p.layers)
            count += l.candidate == c ? 1 : 0;
        std::printf("  %-16s %zu layer(s)\n", p.candidates[c].badge().c_str(), count);
    }
    std::printf("predicted: %.4f bits per weight (budget %.4f), PPL %.4f (base %.4f, sum of dppl %+.4f)\n",
                p.bitsPerWeight, p.weights > 0 ? p.budgetBits / static_cast<double>(p.weights) : 0.0, p.predictedPpl, p.basePpl,
                p.predictedDeltaPpl);
    if (r.measuredPpl)
        std::printf("measured:  %.4f bits per weight over the block linears, PPL %.4f\n", *r.measuredBitsPerWeight,
                    *r.measuredPpl);
    if (const auto path = a.value("save-recipe"))
        std::printf("wrote %s (%zu step(s); replay with layerlab-cli apply)\n", path->c_str(), r.recipe.steps.size());
    else
        std::printf("recipe not saved (no --save-recipe)\n");
    return 0;
}

} // namespace ll::cli
