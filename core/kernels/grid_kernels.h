#pragma once
// Decoding packed grid rows (model/packed_grid.h: LayerLab's RTN, GPTQ, AWQ,
// HQQ, NF4, FP8 and FP4 layers once applied) at the speed of the ggml types'
// row kernels. decodeGridColumns in model/packed_grid.cpp is the scalar
// reference; these are bit-identical with it (tests/test_kernels.cpp).
#include "model/packed_grid.h"

#include <cstdint>

namespace ll {

// Columns [c0, c0 + n) of one stored row into out: the fastest path for kernelLevel().
void decodeGridColumnsFast(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);

// The row dotted with x (layout.cols values): decoded into a buffer that stays
// in cache, then dotted (BCQ rows of up to 4 bits: decoded and dotted at once).
float gridDot(const GridLayout& layout, const uint8_t* row, const float* x);

namespace avx512 {
// The same decoder compiled for AVX-512 (grid_kernels_avx512.cpp); only call it when hostCpu().avx512().
void decodeGridColumns(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out);
// gridDot of a binary-coding row (BCQ) of at most 4 bits without exceptions or
// column scales, without decoding it into a buffer first.
float binaryGridDot(const GridLayout& layout, const uint8_t* row, const float* x);
} // namespace avx512

} // namespace ll
