#pragma once
// Causal softmax attention of one head of one sequence.
#include <cstdint>

namespace ll {

// Rows of one head inside a wider row-major matrix.
struct HeadView {
    const float* data;
    int64_t stride;   // floats between consecutive rows
};

// Queries q (n, headDim) are at positions pos0 .. pos0+n-1; keys k and values
// v (pos0+n, headDim) hold positions 0 .. pos0+n-1. slidingWindow > 0 limits
// each query to the last `slidingWindow` keys. Writes out (n, headDim).
// Serial and thread-safe: callers spread (sequence, head) pairs over threads.
void attendOneHead(HeadView q, HeadView k, HeadView v, float* out, int64_t outStride, int64_t n, int64_t pos0,
                   int64_t headDim, float scale, int64_t slidingWindow);

// Score rows of the blocked kernels are padded to kScoreRowPad floats and start
// Eigen-aligned, so the softmax runs in whole vectors.
constexpr int64_t kScoreRowPad = 16;
// Softmax numerators exp((s - max) * scale) of one such score row over keys
// [lo, hi); entries outside become 0. Returns the denominator.
float softmaxNumerators(float* row, int64_t lo, int64_t hi, float scale);

} // namespace ll
