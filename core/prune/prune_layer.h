#pragma once
// One entry point for pruning a linear layer with any method, and the error
// vs sparsity curve the GUI plots.
#include "layer/compressed_layer.h"
#include "prune/score_mask.h"
#include "quant/grid.h"

#include <optional>
#include <vector>

namespace ll {

class Progress;

enum class PruneMethod {
    Magnitude,    // lowest |W| over the whole matrix (the protocol's "magnitude")
    MagnitudeRow, // lowest |W| within each output row
    Wanda,        // lowest |W| * ||X_j|| within each row; needs inputNorm or gram
    SparseGpt,    // OBS reconstruction; needs gram
};

const char* pruneMethodName(PruneMethod method); // "magnitude", "magnitude-row", "wanda", "sparsegpt"

struct PruneConfig {
    PruneMethod method = PruneMethod::Magnitude;
    double sparsity = 0.5;
    std::optional<NMPattern> nm{};     // set: N:M (every method; sparsity ignored)
    int blockSize = 128;               // SparseGPT
    double percDamp = 0.01;            // SparseGPT
    // Unstructured magnitude (both scopes) and SparseGPT: Inclusive reproduces the
    // reference code's `<=` threshold (score_mask.h). Wanda and N:M always count exactly
    // (so do their references).
    CountRule countRule = CountRule::Exact;
    std::optional<QuantGrid> quantize{}; // SparseGPT only: joint sparsity + quantization
    int valueBits = 32;                // storage accounting (compressed_layer.h)
};

// W: (out, in). Throws InvalidArgument when the method lacks its statistics.
CompressedLayer pruneLayer(const MatrixRM& W, const PruneConfig& config, const LayerInputs& inputs = {},
                           Progress* progress = nullptr);

// 0, 0.1, ..., 0.9
std::vector<double> defaultSparsitySteps();

// The layer pruned at each sparsity with config's method (config.nm is
// ignored); one point per sparsity, x = the sparsity. Cancellable.
std::vector<ErrorCurvePoint> errorVsSparsity(const MatrixRM& W, const PruneConfig& config,
                                             const std::vector<double>& sparsities, const LayerInputs& inputs = {},
                                             Progress* progress = nullptr);

} // namespace ll
