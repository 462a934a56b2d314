#pragma once
// Mixed precision under a size budget: one quantization config per layer,
// chosen from candidates by measured sensitivity.
//
// 1. A sensitivity sweep per candidate (measureSensitivities: each layer
//    alone at that config), which gives every (layer, candidate) its bits and
//    its loss increase on the evaluation windows.
// 2. The loss is modelled as additive over layers, and the assignment
//    minimizing the summed loss subject to sum(bits) <= budget is solved:
//      Exact   the multiple-choice knapsack by dynamic programming over the
//              budget cut into 20000 units (each layer's cost rounded up, so
//              the predicted size always fits; optimal up to that rounding);
//      Greedy  start every layer at its most bits, repeatedly move the layer
//              whose loss increase per bit saved is smallest down (to any
//              cheaper candidate) until the budget holds, then spend what is
//              left on the best loss decrease per bit.
// 3. The assignment as a recipe: one quantize step per distinct config whose
//    `layers` is the alternation of the exact names it got, after the base
//    state's steps; applyRecipe replays it.
//
// solveMixedPrecision is cheap and pure, so a GUI can re-solve as the budget
// slider moves without measuring again.
#include "analysis/sensitivity.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ll {

class Progress;

// "rtn:3:32,gptq:4:128:sym,ggml:type=Q4_K": METHOD[:BITS[:GROUP]] then flags
// (sym, act-order, ...) or key=value options. Throws InvalidArgument.
std::vector<RecipeStep> parseCandidates(const std::string& text);

enum class MixedSolver { Exact, Greedy };
const char* mixedSolverName(MixedSolver s); // "exact", "greedy"

struct MixedBudget {
    std::optional<double> bitsPerWeight; // average over the target layers
    std::optional<double> bytes;         // total bytes of the target layers' weights (bits / 8)
};

struct MixedLayerChoice {
    std::string name;
    int block = -1;
    Role role = Role::Other;
    int64_t weights = 0;
    size_t candidate = 0;        // index into the candidates
    std::string badge;
    double bitsPerWeight = 0;
    double loss = 0;             // the metric's value at that candidate
    double deltaPpl = 0;         // measured alone
};

struct MixedPlan {
    std::vector<RecipeStep> candidates;
    SensitivityMetric metric = SensitivityMetric::Kl;
    MixedSolver solver = MixedSolver::Exact;
    double budgetBits = 0;             // total bits allowed
    int64_t weights = 0;               // of the target layers
    std::vector<MixedLayerChoice> layers; // in the model's order
    double bits = 0;                   // total predicted bits
    double bitsPerWeight = 0;          // bits / weights
    double basePpl = 0, baseNll = 0;
    double predictedDeltaPpl = 0;      // sum of the chosen layers' Δppl (additive model)
    double predictedPpl = 0;           // base ppl * exp(sum of Δnll)
    nlohmann::json toJson() const;
};

// `sweeps[c]` is candidate c's sweep over the same layers (same order). Throws
// InvalidArgument when a candidate reports no bits per weight (not a
// quantization) or when even the cheapest candidates exceed the budget.
MixedPlan solveMixedPrecision(const std::vector<SensitivityResult>& sweeps, const MixedBudget& budget,
                              SensitivityMetric metric = SensitivityMetric::Kl,
                              MixedSolver solver = MixedSolver::Exact);

// The base state's steps, then one step per distinct config (in candidate order).
Recipe mixedRecipe(const CompressionState& base, const MixedPlan& plan, const RecipeCalibration& calibration);

struct MixedPrecisionOptions {
    std::vector<RecipeStep> candidates;
    std::string layers;                // target pattern (empty: every block linear)
    MixedBudget budget;
    // KL: measured Δnll on a few windows is noisy and the solver overfits it
    // (stories260K, 8 windows: held-out PPL 6.42 with dnll vs 6.26 with kl).
    SensitivityMetric metric = SensitivityMetric::Kl;
    MixedSolver solver = MixedSolver::Exact;
    ScoringOptions scoring = SensitivityOptions::defaultScoring();
    bool compareLogits = true;         // KL / top-1 in the sweeps (needed for metric kl / top1)
    bool measure = true;               // apply the recipe and evaluate it on the same windows
};

struct MixedPrecisionResult {
    std::vector<SensitivityResult> sweeps;  // one per candidate
    MixedPlan plan;
    Recipe recipe;
    std::optional<double> measuredPpl;      // after applying the recipe
    std::optional<double> measuredBitsPerWeight; // CompressionState::linearBitsPerWeight of the result
    double seconds = 0;
    nlohmann::json toJson(bool withSweeps = false) const;
};

// Everything: the sweeps (measureSensitivities; onRow reports each
// candidate's rows as they come), solve, recipe, and optionally its measured
// perplexity. Cancellable between and inside the sweeps.
MixedPrecisionResult planMixedPrecision(const CompressionState& base, const MixedPrecisionOptions& options,
                                        std::span<const int32_t> evalTokens, const CalibrationText& calibration,
                                        const RecipeCalibration& recipeCalibration,
                                        const SensitivitySweepCallback& onRow = {}, Progress* progress = nullptr);

} // namespace ll
