#pragma once
// Layer sensitivity: how much the model's predictions suffer when ONE layer is
// compressed and every other layer is left as it is.
//
// For each target layer, the step template (e.g. RTN 3-bit) is applied to that
// layer alone through applyStep() (its `layers` is the escaped exact name, so
// the weights are exactly what a recipe step on that layer gives), and the
// result is evaluated on a few windows of an evaluation text against the base
// state: Δperplexity, KL(base || compressed) and top-1 agreement.
//
// Work done once per sweep: the base engine and its evaluation (per-token NLL,
// and the log-probabilities of every scored position, kept for KL and top-1);
// the calibration text is tokenized by the caller once (CalibrationText).
// Per layer: the step, then one forward pass over the evaluation windows. When
// the step changes only that layer's weights (weight-only methods), the base
// engine is reused with the one linear swapped in and restored afterwards,
// instead of building an engine from the stepped model, and the pass starts
// from the layer's block, whose input on every window was cached with the
// base evaluation (the blocks before it are unchanged): about half a forward
// pass per layer on average instead of one (docs/sensitivity-cost.md).
//
// Calibration statistics are not shared between layers: quantizeModel /
// pruneModel / factorizeModel take tokens, not statistics. A single-layer step
// only runs the calibration windows up to that layer's block, and steps whose
// weights do not depend on statistics (RTN, NF4, FP8, FP4, magnitude pruning,
// plain SVD) get no calibration text at all.
#include "eval/perplexity.h"
#include "recipe/apply.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ll {

class Progress;

// What ranks layers; every value is "higher = more sensitive".
enum class SensitivityMetric {
    DeltaPpl,   // ppl - base ppl
    DeltaNll,   // mean NLL - base mean NLL (nats per token) = log(ppl / base ppl)
    Kl,         // mean KL(base || compressed), nats
    Top1,       // 1 - top-1 agreement with the base
    OutputError,// the layer's own ||X (W - W^)^T|| / ||X W^T|| on calibration inputs (the proxy)
};
const char* sensitivityMetricName(SensitivityMetric m); // "dppl", "dnll", "kl", "top1", "output-error"
std::optional<SensitivityMetric> parseSensitivityMetric(const std::string& name);

struct SensitivityOptions {
    RecipeStep step;                  // applied to each layer alone; its `layers` is replaced
    std::string layers;               // target pattern like a step's (empty: every block linear)
    std::vector<std::string> names;   // explicit logical names instead of `layers` (when not empty)
    ScoringOptions scoring = defaultScoring();
    bool compareLogits = true;        // KL and top-1 (keeps the base's log-probabilities)
    // The base log-probabilities take scored positions x vocab x 4 bytes; more is refused.
    uint64_t maxCachedLogitBytes = uint64_t{1} << 30;
    // Keep every block's input on the evaluation windows (blocks x tokens x
    // hidden x 4 bytes; in memory up to cacheBudgetBytes, else a temporary
    // file): a layer of block l is then measured by running blocks l..L-1 only,
    // with the same numbers as a whole forward pass.
    bool cacheBlockInputs = true;
    uint64_t cacheBudgetBytes = uint64_t{1} << 30;
    // The proxy: no evaluation per layer. The template runs once on every
    // target together (one calibration pass), and each layer is ranked by its
    // own output error on the calibration inputs (data-free methods measure it
    // on the first kOutputErrorWindows windows). The cost of one step instead
    // of one per layer; its agreement with the full measurement is in
    // docs/sensitivity-cost.md. ppl, nll, KL and top-1 are then not measured (NaN).
    bool proxyOutputError = false;

    static ScoringOptions defaultScoring(); // 8 windows of 128 tokens, full protocol
};

struct LayerSensitivity {
    std::string name;                 // logical name
    int block = -1;
    Role role = Role::Other;
    std::string badge;                // the step's ("RTN 3b g32")
    int64_t weights = 0;              // elements of the layer before the step
    std::optional<double> bitsPerWeight; // quantization steps
    std::optional<double> weightError;   // ||W0 - W|| / ||W0|| against the source model
    double ppl = 0, deltaPpl = 0;
    double nll = 0, deltaNll = 0;
    std::optional<double> kl, top1;   // when compareLogits
    std::optional<double> outputError;   // the step's, on the calibration inputs (when measured)
    double seconds = 0;               // step + evaluation

    double value(SensitivityMetric m) const; // NaN when not measured
    // {"name", "block", "role", "badge", "weights", "bits_per_weight", "weight_error", "ppl",
    //  "delta_ppl", "nll", "delta_nll", "kl", "top1", "seconds"} (absent values are null)
    nlohmann::json toJson() const;
};

struct SensitivityResult {
    RecipeStep step;                  // the template
    ScoringOptions scoring;
    PerplexityResult base;            // of the base state on the same windows
    std::vector<LayerSensitivity> rows; // in the model's order
    double seconds = 0;
    nlohmann::json toJson() const;    // {"step", "context", "windows", "tokens_scored", "base_ppl", "base_nll", "rows", "seconds"}
};

// Called as each row is measured (on the calling thread), e.g. to fill a table live.
using SensitivityCallback = std::function<void(const LayerSensitivity& row, size_t index, size_t total)>;

// `evalTokens`: a tokenized text with at least one window. Throws
// InvalidArgument (a bad template, a pattern matching no block linear,
// structured pruning, too many logits to keep) and Cancelled (between layers
// and inside each step and evaluation); `base` is never changed.
SensitivityResult measureSensitivity(const CompressionState& base, const SensitivityOptions& options,
                                     std::span<const int32_t> evalTokens, const CalibrationText& calibration,
                                     const SensitivityCallback& onRow = {}, Progress* progress = nullptr);

// Several templates over the same layers (options.step is ignored), sharing
// one base engine and one base evaluation: one result per template, swept one
// template after the other. onRow also says which template.
using SensitivitySweepCallback =
    std::function<void(size_t step, const LayerSensitivity& row, size_t index, size_t total)>;
std::vector<SensitivityResult> measureSensitivities(const CompressionState& base, const std::vector<RecipeStep>& steps,
                                                    const SensitivityOptions& options, std::span<const int32_t> evalTokens,
                                                    const CalibrationText& calibration,
                                                    const SensitivitySweepCallback& onRow = {}, Progress* progress = nullptr);

// Most sensitive first (NaN last), ties by model order (stable).
void sortBySensitivity(std::vector<LayerSensitivity>& rows, SensitivityMetric metric);

// The template restricted to one layer.
RecipeStep singleLayerStep(const RecipeStep& step, const std::string& name);

} // namespace ll
