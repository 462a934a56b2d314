#pragma once
// Matrix products of the forward pass, always on the calling thread: the
// engine splits work across threads itself (windows, heads, output columns).
// Eigen's own threaded GEMM synchronises by spinning and stalls for
// milliseconds per product when the machine has other work, so the engine
// never lets it run, whatever Eigen::setNbThreads says for the rest of the app.
#include <cstdint>

namespace ll {

// C (m, n) = A (m, k) @ B^T with B (n, k): row-major, leading dimensions in floats.
// (A linear layer: activations @ W^T.)
void gemmABt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
             int64_t k);

// C (m, n) = A (m, k) @ B with B (k, n): row-major.
void gemmAB(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
            int64_t k);

} // namespace ll
