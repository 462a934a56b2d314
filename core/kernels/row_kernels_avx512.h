#pragma once
// The AVX-512 row kernels (row_kernels_avx512.cpp, compiled for AVX-512
// whatever the build flags say). Only call them when hostCpu().avx512().
#include "kernels/row_kernels.h"

namespace ll::avx512 {

// Null members where there is no AVX-512 kernel for the type.
RowKernels rowKernels(DType t);
float dotF32(const float* a, const float* b, int64_t n);
// x rounded to F16 (nearest even), n values.
void floatsToHalf(const float* x, uint16_t* out, int64_t n);
// sum_i w_i * x_i with both stored as F16, products and sums in F32.
float dotF16HalfX(const uint8_t* w, const uint16_t* x, int64_t n);

} // namespace ll::avx512
