// The grid decoder compiled for AVX-512 (see grid_decode_impl.h).
#include "kernels/grid_decode_impl.h"
#include "kernels/grid_kernels.h"

namespace ll::avx512 {

void decodeGridColumns(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    grid_impl::decodeColumns(layout, row, c0, n, out);
}

} // namespace ll::avx512
