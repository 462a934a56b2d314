#pragma once
// The AVX-512 row kernels (row_kernels_avx512.cpp, compiled for AVX-512
// whatever the build flags say). Only call them when hostCpu().avx512().
#include "kernels/row_kernels.h"

namespace ll::avx512 {

// Null members where there is no AVX-512 kernel for the type.
RowKernels rowKernels(DType t);
float dotF32(const float* a, const float* b, int64_t n);

} // namespace ll::avx512
