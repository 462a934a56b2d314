#pragma once
// Scalar dequantization of ggml's block formats (layouts of ggml-common.h).
#include "model/dtype.h"

#include <cstdint>

namespace ll {

// Decodes n values (a multiple of the type's block size) of type t from src into dst.
// Supported: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
// Throws Error(UnsupportedDType) for other types.
void dequantizeGgml(DType t, const uint8_t* src, float* dst, int64_t n);

} // namespace ll
