#pragma once
// LoRC (low-rank compensation, ZeroQuant-V2, Yao et al. 2023): the
// quantization error E = W - W^ approximated by its best rank-r factors
// (truncated SVD, core/lowrank/svd.h, singular values split as square roots
// into A and B), W^' = W^ + A B. The factors are rounded to F16, as the
// paper keeps them, and counted so: r (out + in) * 16 bits on top of the base
// method's. The edited model keeps the base's packed codes and the F16 factors
// (replaceTensorCorrected), not their sum.
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <cstdint>

namespace ll {

class Progress;

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
