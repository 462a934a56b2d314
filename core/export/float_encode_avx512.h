#pragma once
// The AVX-512 float encoders (float_encode_avx512.cpp, compiled for AVX-512
// whatever the build flags say). Only call them when hostCpu().avx512().
#include <cstdint>

namespace ll::avx512 {

// n floats to F16 / BF16 bits, as util/half.h's floatToFp16 / floatToBf16.
// Return the number of finite values that became ±inf.
int64_t floatsToF16(const float* src, uint16_t* dst, int64_t n);
int64_t floatsToBf16(const float* src, uint16_t* dst, int64_t n);

} // namespace ll::avx512
