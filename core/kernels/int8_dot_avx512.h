#pragma once
// The AVX-512 VNNI integer dot kernels (int8_dot_avx512.cpp, compiled for
// AVX-512 whatever the build flags say). Only call them when
// hostCpu().avx512() and hostCpu().avx512vnni.
#include "kernels/int8_dot.h"

namespace ll::avx512 {

// nullptr where there is no kernel for the type.
Int8DotFn int8Dot(DType t);
// The kernel for a packed grid (a layout that gridHasInt8Dot accepts).
GridInt8DotFn gridInt8Dot(const GridLayout& layout);

} // namespace ll::avx512
