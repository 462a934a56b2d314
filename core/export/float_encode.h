#pragma once
// F32 values as the float types the exporters write (F32, F16, BF16). Every
// path gives the bytes of the scalar reference (util/half.h: round to nearest
// even, NaN kept quiet) and counts the finite values that became infinite
// (F16 beyond ±65504, BF16 beyond its largest finite value).
#include "model/dtype.h"

#include <cstdint>
#include <vector>

namespace ll {

// Scalar: util/half.h one value at a time. F16c: 8 values at a time with F16C
// and AVX2. Avx512: 16 at a time (export/float_encode_avx512.cpp).
enum class EncodePath { Scalar, F16c, Avx512 };

// Avx512 when the AVX-512 kernels are in use (kernels/cpu_features.h), else
// F16c when the CPU has F16C and AVX2, else Scalar.
EncodePath bestEncodePath();
// False when the CPU cannot run `path`.
bool canUseEncodePath(EncodePath path);

// n values from src into dst (n * 4 or n * 2 bytes). Returns how many finite
// values became ±inf. Throws UnsupportedDType for types other than F32, F16, BF16.
int64_t encodeFloatsInto(const float* src, int64_t n, DType type, uint8_t* dst, EncodePath path = bestEncodePath());

// The same into a new buffer; `overflowed` (optional) receives the count.
std::vector<uint8_t> encodeFloats(const std::vector<float>& values, DType type, int64_t* overflowed = nullptr);

} // namespace ll
