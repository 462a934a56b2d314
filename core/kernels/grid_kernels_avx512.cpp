// The grid decoder compiled for AVX-512 (see grid_decode_impl.h).
#include "kernels/grid_decode_impl.h"
#include "kernels/grid_kernels.h"

namespace ll::avx512 {

void decodeGridColumns(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    grid_impl::decodeColumns(layout, row, c0, n, out);
}

float binaryGridDot(const GridLayout& layout, const uint8_t* row, const float* x)
{
#if defined(__AVX512F__)
    return grid_impl::binaryDot(layout, row, x);
#else
    (void)layout, (void)row, (void)x;
    return 0.0f; // never called: the dispatcher needs AVX-512
#endif
}

} // namespace ll::avx512
