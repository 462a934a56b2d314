#pragma once
// The numerical pieces of a transformer block, on row-major F32 matrices whose
// rows are tokens. Every function is thread-safe; those marked "parallel"
// spread their rows over the compute threads (util/threads.h).
#include "engine/architecture.h"
#include "engine/weights.h"

#include <Eigen/Core>

#include <cstdint>
#include <span>
#include <vector>

namespace ll {

using MatrixRef = Eigen::Ref<MatrixRM>;
using ConstMatrixRef = Eigen::Ref<const MatrixRM>;

// x (n, in) @ W^T (in, out) + b -> y (n, out). Parallel over output columns.
void applyLinear(const LinearWeights& lw, const ConstMatrixRef& x, MatrixRef y);

// Row-wise RMSNorm / Gemma RMSNorm / LayerNorm of x (n, d) -> out (n, d). Parallel.
void applyNorm(NormKind kind, const NormWeights& nw, float eps, const ConstMatrixRef& x, MatrixRef out);

// x <- act(x), elementwise. Parallel.
void applyActivation(Activation act, MatrixRef x);
// gate <- act(gate) * up, elementwise. Parallel.
void applyGatedActivation(Activation act, MatrixRef gate, const ConstMatrixRef& up);

// cos/sin of position * invFreq for positions [first, first + count).
struct RotaryTable {
    int64_t first = 0;
    int64_t half = 0;                // dims / 2
    std::vector<float> cos, sin;     // (count, half)

    RotaryTable(const RotarySpec& spec, int64_t first, int64_t count);
    const float* cosAt(int64_t pos) const { return cos.data() + (pos - first) * half; }
    const float* sinAt(int64_t pos) const { return sin.data() + (pos - first) * half; }
};

// Rotates the first spec.dims of every head of x (n, heads * headDim) in place;
// row r is at position positions[r]. Parallel.
void applyRotary(const RotarySpec& spec, const RotaryTable& table, std::span<const int64_t> positions,
                 int64_t heads, int64_t headDim, MatrixRef x);

// Runs fn(begin, end) over [0, n) split into contiguous chunks on the compute threads.
template <class Fn>
void parallelFor(int64_t n, int64_t grain, Fn&& fn);

// log-softmax statistics of one row of logits.
struct RowLogSoftmax {
    float max = 0;
    double logSumExp = 0; // log sum exp(x)
};
RowLogSoftmax rowLogSoftmax(const float* row, int64_t n);

} // namespace ll

#include "util/threads.h"

namespace ll {

template <class Fn>
void parallelFor(int64_t n, int64_t grain, Fn&& fn)
{
    const int threads = computeThreads();
    const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
    if (chunks <= 1 || inParallelRegion()) {
        fn(int64_t{0}, n);
        return;
    }
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static)
    for (int64_t c = 0; c < chunks; ++c)
        fn(n * c / chunks, n * (c + 1) / chunks);
}

} // namespace ll
