#pragma once
// Decoding and dotting sparse rows (model/sparse_rows.h: pruned layers once
// applied) without expanding them first. decodeSparseColumns in
// model/sparse_rows.cpp is the scalar reference; the decoders here are
// bit-identical with it, and the dot agrees with the reference's decoded row
// dotted in float (tests/test_kernels.cpp).
#include "model/sparse_rows.h"

#include <cstdint>

namespace ll {

// Columns [c0, c0 + n) of one stored row into out: the fastest path for kernelLevel().
void decodeSparseColumnsFast(const SparseLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);

// The row dotted with x (layout.cols values), reading only the kept values.
float sparseDot(const SparseLayout& layout, const uint8_t* row, const float* x);

namespace avx512 {
// The same compiled for AVX-512 (sparse_kernels_avx512.cpp): 16 columns at a
// time, the kept values moved to their columns by one VPERMPS whose indices
// come from a table of the mask's bytes. Only call them when hostCpu().avx512().
void decodeSparseColumns(const SparseLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);
float sparseDot(const SparseLayout& layout, const uint8_t* row, const float* x);
// A row of BF16 values as BF16 (exactly: zeros where pruned), for the BF16 GEMM
// (matmul's prefill of a pruned BF16 layer, kernels/gemm_avx512.h).
void decodeSparseRowBf16(const SparseLayout& layout, const uint8_t* row, uint16_t* out);
} // namespace avx512

} // namespace ll
