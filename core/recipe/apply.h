#pragma once
// Applying recipe steps to a model. The GUI and `layerlab-cli apply` both go
// through applyStep(), which is what makes a replayed recipe bit-identical to
// what the user saw.
//
// A CompressionState is an immutable snapshot: the source model, the model
// after the steps so far (edited tensors in memory, the source file never
// touched), the run-time activation quantization W8A8 methods need, and what
// was done to each layer. Applying a step makes a new state; undo is going
// back to the previous one.
#include "calib/calibration.h"
#include "model/model.h"
#include "pipeline/quantize_model.h"
#include "recipe/recipe.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ll {

class Progress;
class Transformer;

// What the steps so far did to one logical tensor.
struct LayerRecord {
    std::vector<std::string> badges;        // one per step that touched it: "GPTQ 4b g128", "wanda 50 % sparse"
    std::optional<double> bitsPerWeight;    // of the last quantization (scales, zeros, outliers included)
    std::optional<double> weightError;      // ||W0 - W||_F / ||W0||_F against the source (same shape only)
    std::optional<double> outputError;      // the last step's, on the calibration inputs
    double sparsity = 0.0;                  // share of exact zeros now
    int64_t rank = 0;                       // low rank (last factorization)
    std::vector<int64_t> shape;             // now
};

struct CompressionState {
    std::shared_ptr<const Model> source;
    std::shared_ptr<const Model> model;     // == source before the first step
    // What weight errors are measured against: the source, or the rotated
    // model after a rotate step (rotated weights differ from the source's
    // without any loss).
    std::shared_ptr<const Model> basis;
    ActivationQuantization activations;     // SmoothQuant / LLM.int8 inputs
    std::map<std::string, LayerRecord> layers; // by logical name; only touched tensors
    std::vector<RecipeStep> steps;          // applied so far
    RecipeCalibration calibration;          // the text every step calibrated on (one per recipe)

    // The steps so far as a recipe (replays to this state).
    Recipe recipe() const;

    static CompressionState initial(std::shared_ptr<const Model> source);
    // Bits per weight over the block linears: quantized layers at their bits,
    // the others at their stored type's bits (32 for F32, 16 for F16, ...).
    double linearBitsPerWeight() const;
    // A Transformer on model() with the W8A8 simulation when a step needs it.
    std::unique_ptr<Transformer> makeEngine(Progress* progress = nullptr) const;
    // {"steps", "bits_per_weight", "parameters", "layers": {name: {...}}}
    nlohmann::json toJson() const;
};

struct StepOutcome {
    CompressionState state;
    nlohmann::json summary;                 // the method's result (toJson of the model-level run)
    std::vector<std::string> touched;       // logical names changed by the step
};

// Tokens of the recipe's calibration text for `model`'s tokenizer: the file,
// or the built-in sample. `calibration` says how many windows fit: at most
// recipe.windows, fewer when the text is shorter (at least one, or
// InvalidArgument).
struct CalibrationText {
    std::vector<int32_t> tokens;
    CalibrationOptions options;
    std::string name;                       // the file or "builtin"
    RecipeCalibration recipe;               // what it was loaded from (recorded in the state)
};
CalibrationText loadCalibration(const Model& model, const RecipeCalibration& calibration);
// The same for `steps`, except that when the text cannot be had (a model
// without a tokenizer: the demo model) and no step uses calibration
// (RecipeStep::usesCalibration), it gives an empty CalibrationText: those
// steps run without output errors. Otherwise it throws what loadCalibration throws.
CalibrationText loadCalibrationFor(const Model& model, const RecipeCalibration& calibration,
                                   std::span<const RecipeStep> steps);

// Windows of the calibration text a data-free step measures its output error
// on when the step asks for it (output-error: true).
constexpr int64_t kOutputErrorWindows = 8;

// Runs one step on state.model. Calibration tokens are used by the methods
// that need statistics; data-free steps (RecipeStep::usesCalibration false)
// ignore them unless the step says output-error: true, and then use the first
// kOutputErrorWindows windows for each layer's output error. Throws
// InvalidArgument for steps that cannot apply (a pattern matching nothing, a
// method without its statistics, structured pruning after W8A8), Cancelled.
StepOutcome applyStep(const CompressionState& state, const RecipeStep& step, const CalibrationText& calibration,
                      Progress* progress = nullptr);

// Every step in order (progress split evenly over the steps).
StepOutcome applyRecipe(std::shared_ptr<const Model> source, const Recipe& recipe, Progress* progress = nullptr);

} // namespace ll
