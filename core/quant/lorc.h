#pragma once
// LoRC (low-rank compensation, ZeroQuant-V2, Yao et al. 2023): the
// quantization error E = W - W^ approximated by its best rank-r factors
// (truncated SVD, core/lowrank/svd.h, singular values split as square roots
// into A and B), W^' = W^ + A B. The factors are rounded to F16, as the
// paper keeps them, and counted so: r (out + in) * 16 bits on top of the base
// method's. The edited model keeps the base's packed codes and the F16 factors
// (replaceTensorCorrected), not their sum.
#include "lowrank/svd.h"
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <cstdint>

namespace ll {

class Progress;

// The top-`rank` factors of an error matrix E (out, in), A (out, rank) B (rank, in):
// a full SVD (exact) where min(out, in) <= kSketchAbove or the rank is a
// large share of it; otherwise randomized subspace iteration with
// kCorrectionPowerIterations (lowrank/randomized_svd.h), because a full SVD of
// a 2048 x 8192 error in double takes about a minute (a 7B model has 224 such
// layers) where the sketch of rank 16 takes a fraction of a second.
// Quantization errors have flat spectra, which take more power iterations than
// the default to converge (6 gave 96 % of the exact reduction of ||E - A B||²,
// 12 give 99 %: test_quant_methods measures it).
constexpr int64_t kSketchAbove = 256;
constexpr int kCorrectionPowerIterations = 12;
LowRankFactors correctionFactors(const MatrixRM& E, int64_t rank, Progress* progress = nullptr);

// What LoRC and EoRA both require: `base` has W's shape and 0 <= rank <=
// min(out, in); InvalidArgument naming `method` otherwise.
void checkLowRankCorrection(const MatrixRM& W, const QuantizedLayer& base, int64_t rank, const char* method);

// base with W^ + A B (A (out, r), B (r, in)) as its weights: the factors
// rounded to F16 and kept, "+ <name> r<r>" in its label, its error recomputed.
QuantizedLayer withLowRankCorrection(const MatrixRM& W, QuantizedLayer base, MatrixRM A, MatrixRM B, const char* name,
                                     const LayerInputs& inputs);

// `base` is any method's result for W; returns it with the correction added,
// the factors in factorA / factorB and the error report recomputed.
// rank 0 returns base unchanged. Throws InvalidArgument for a rank above min(out, in).
QuantizedLayer lorcCorrect(const MatrixRM& W, QuantizedLayer base, int64_t rank, const LayerInputs& inputs,
                           Progress* progress = nullptr);

} // namespace ll
