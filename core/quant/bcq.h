#pragma once
// Binary-coding quantization (BCQ; Xu et al. 2018, the format of LUT-GEMM,
// Park et al. 2024): each row (or group of columns of a row) is
//   w ~ sum_{i < b} alpha_i b_i,   b_i in {-1, +1}^n,  alpha_i stored as FP16.
// Fitting, one bit plane at a time:
//   greedy: on the residual r of the current fit, alpha = mean |r|, b = sign(r)
//   (sign(0) = +1), which is the best single plane for r; then alternating
//   refinement of all planes so far: alpha = argmin ||w - B alpha|| (least
//   squares, B = the planes), then each weight's code = the nearest of the 2^k
//   values sum alpha_i (+-1); repeated while the error drops (at most
//   `iterations` rounds). Each added plane starts from the previous fit, so
//   the error never grows with b.
// Bits: b per weight + 16 b per (row, group) for the alphas.
#include "model/tensor_data.h"
#include "quant/quantized_layer.h"

#include <cstdint>
#include <vector>

namespace ll {

struct BcqOptions {
    int bits = 3;          // 1..8 bit planes
    int groupSize = 0;     // > 0: columns per group; 0: one group per row
    int iterations = 10;   // alternating refinement rounds per added plane (0: greedy only)
};

// One slice x (n values): alphas (bits) and codes (bit i set = +1 in plane i).
// Returns the squared error ||x - x^||^2.
double bcqFitSlice(const float* x, int64_t n, const BcqOptions& options, float* alpha, uint8_t* codes);

QuantizedLayer bcqQuantize(const MatrixRM& W, const BcqOptions& options, const LayerInputs& inputs = {});

} // namespace ll
