#pragma once
// AVX-512 GEMM for the prefill: y (m, n) = x (m, k) @ W^T with W read in its
// stored type. x is packed once into 12-row micro-panels, slab by slab of kc
// columns; each 32-row panel of W is decoded straight into the kernel's
// layout, slab after slab along its rows (each weight decoded once, read in
// order), and a 12 x 32 register tile accumulates over each slab.
//
//   F32 kernel: every type, weights decoded to F32 (exact products of the
//     decoded values, as the portable path computes them);
//   BF16 kernel: BF16 weights with x rounded to BF16, VDPBF16PS (two products
//     per lane, F32 accumulation; what llama.cpp and PyTorch's BF16 matmul do).
//
// Only call when hostCpu().avx512() (and .avx512bf16 for the BF16 kernel).
// The caller owns the scratch buffers (this file instantiates no library
// templates, see row_kernels_avx512.cpp).
#include <cstddef>
#include <cstdint>

namespace ll::avx512 {

constexpr int64_t kGemmMr = 12;   // rows of x per register tile
constexpr int64_t kGemmNr = 32;   // weight rows (outputs) per register tile
constexpr int64_t kGemmKc = 256;  // columns per slab: a whole number of every block type

// Floats of scratch the kernels need for an (m, k) x: one packed weight panel
// and all of x packed (12-row panels, slabs of kGemmKc columns).
inline size_t gemmScratchFloats(int64_t m, int64_t k)
{
    const int64_t mPadded = (m + kGemmMr - 1) / kGemmMr * kGemmMr;
    const int64_t kPadded = (k + kGemmKc - 1) / kGemmKc * kGemmKc;
    return static_cast<size_t>(kGemmNr * kGemmKc + mPadded * kPadded);
}

// Decodes weight row `row`, columns [k0, k0 + n), into out (n floats).
using SegmentDecoder = void (*)(const void* context, int64_t row, int64_t k0, int64_t n, float* out);

// Output columns [c0, c1) of y. `weights` / `rowBytes` (optional: null) say
// where row j's bytes lie, for prefetching the next slab.
void gemmF32(const float* x, int64_t ldx, int64_t m, int64_t k, const void* context, SegmentDecoder decode,
             const uint8_t* weights, size_t rowBytes, float* y, int64_t ldy, int64_t c0, int64_t c1, float* scratch);

// BF16 weights: row j at w + j * rowBytes. Output columns [c0, c1).
void gemmBf16(const float* x, int64_t ldx, int64_t m, int64_t k, const uint8_t* w, size_t rowBytes, float* y,
              int64_t ldy, int64_t c0, int64_t c1, float* scratch);

} // namespace ll::avx512
