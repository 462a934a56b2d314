#include "kernels/grid_kernels.h"

#include "kernels/cpu_features.h"
#include "kernels/grid_decode_impl.h"
#include "kernels/row_kernels.h"

#include <vector>

namespace ll {

void decodeGridColumnsFast(const GridLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    if (kernelLevel() != KernelLevel::Portable) {
        avx512::decodeGridColumns(layout, row, c0, n, out);
        return;
    }
    grid_impl::decodeColumns(layout, row, c0, n, out);
}

float gridDot(const GridLayout& layout, const uint8_t* row, const float* x)
{
    if (layout.binaryCoding && layout.bits <= 4 && !layout.hasExceptions() && layout.columnScale.empty()
        && kernelLevel() != KernelLevel::Portable)
        return avx512::binaryGridDot(layout, row, x);
    thread_local std::vector<float> decoded;
    decoded.resize(static_cast<size_t>(layout.cols));
    decodeGridColumnsFast(layout, row, 0, layout.cols, decoded.data());
    return dotF32(decoded.data(), x, layout.cols);
}

} // namespace ll
