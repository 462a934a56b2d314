#pragma once
// What the compression panel shows before the user applies a step: the step
// run on the current tensor alone (applyStep with the exact-name pattern,
// i.e. the very code Apply runs), its weights before and after, the numbers,
// and the context a user needs to choose parameters: the error curve of the
// method over its main parameter (bits, sparsity, rank) with the choice
// marked, and the singular-value spectrum for low rank. Runs on a worker
// thread (no Qt); cancellable.
#include "layer/compressed_layer.h"
#include "layer/sparsity_mask.h"
#include "recipe/apply.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ll {

struct PreviewResult {
    std::string tensor;                       // logical name
    int64_t rows = 0, cols = 0;               // before
    int64_t rowsAfter = 0, colsAfter = 0;     // after (smaller for structured pruning)
    std::vector<float> before, after;         // row-major
    // Structured pruning (rows or columns removed): the weights in the shape
    // before, the removed rows / columns as zeros, for the mask view; else empty.
    std::vector<float> removedAsZeros;
    bool beforeIsSource = false;              // `before` is the source model's tensor (the layer was edited since)
    LayerRecord record;                       // what Apply would record for this tensor
    std::string badge;
    StepAction action = StepAction::Quantize;
    // The error curve (weight error and, with calibration, output error).
    std::vector<ErrorCurvePoint> curve;
    std::string curveLabel;                   // "bits", "sparsity", "rank"
    // The curve's two series (ErrorCurvePoint's weightError, outputError).
    std::pair<std::string, std::string> curveSeries{"weight error", "output error"};
    std::string curveYLabel = "relative error";
    std::optional<double> curveCurrent;       // the chosen x
    // Low rank: singular values of W, descending, and the rank chosen.
    std::vector<double> singularValues;
    int64_t rank = 0;
    std::optional<NMPattern> nm;              // pruning to N:M
    // ShortGPT: every block's influence and the blocks the step removes (ascending).
    std::vector<double> blockInfluence;
    std::vector<int> removedBlocks;
    std::string note;                         // e.g. "structured: every block is pruned to preview this one"
    double seconds = 0.0;
};

// `calibration` may be empty for methods that need none (no output errors then).
// A data-free step (RecipeStep::usesCalibration false) runs no calibration pass
// unless it says output_error, and then on at most kOutputErrorWindows windows;
// the caller limits `calibration.options.windows` for a smaller sample.
PreviewResult computePreview(const CompressionState& state, const RecipeStep& step, const std::string& tensor,
                             const CalibrationText& calibration, Progress* progress);

} // namespace ll
