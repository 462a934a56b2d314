#pragma once
// One entry point for factorizing a linear layer with any low-rank method,
// and the error vs rank curve the GUI plots.
#include "lowrank/randomized_svd.h"
#include "layer/compressed_layer.h"

#include <vector>

namespace ll {

class Progress;

enum class LowRankMethod {
    Svd,           // best rank-k approximation of W (the protocol's "svd")
    RandomizedSvd, // Halko et al., for large matrices
    Asvd,          // activation-aware scaling; needs meanAbs
    Whitened,      // SVD-LLM whitening; needs gram
};

const char* lowRankMethodName(LowRankMethod method); // "svd", "rsvd", "asvd", "svd-llm"

struct LowRankConfig {
    LowRankMethod method = LowRankMethod::Svd;
    int64_t rank = 0;                 // see rank_choice.h for ways to choose it
    double asvdAlpha = 0.5;
    RandomizedSvdOptions randomized{};
    int valueBits = 32;               // storage accounting (compressed_layer.h)
};

// The method's decomposition, from which any rank <= maxRank() can be cut.
// A randomized basis covers rank `rankHint` (+ oversampling).
SvdBasis lowRankBasis(const MatrixRM& W, const LowRankConfig& config, const LayerInputs& inputs, int64_t rankHint,
                      Progress* progress = nullptr);

// The per-layer result of factors already computed (rank chosen by the caller,
// e.g. rankForEnergy on basis.sigma): W^ = A B, the label, parameters, bytes, errors.
CompressedLayer compressedFromFactors(const MatrixRM& W, LowRankFactors factors, const LowRankConfig& config,
                                      const LayerInputs& inputs = {});

// W: (out, in) -> W^ = A B with A, B in factorA, factorB.
CompressedLayer factorizeLayer(const MatrixRM& W, const LowRankConfig& config, const LayerInputs& inputs = {},
                               Progress* progress = nullptr);

// The layer at each rank from ONE decomposition (config.rank is ignored);
// x = the rank. Cancellable.
std::vector<ErrorCurvePoint> errorVsRank(const MatrixRM& W, const LowRankConfig& config,
                                         const std::vector<int64_t>& ranks, const LayerInputs& inputs = {},
                                         Progress* progress = nullptr);

} // namespace ll
