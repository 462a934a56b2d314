#include "kernels/sparse_kernels.h"

#include "kernels/cpu_features.h"
#include "kernels/row_kernels.h"

#include <vector>

namespace ll {

void decodeSparseColumnsFast(const SparseLayout& layout, const uint8_t* row, int64_t c0, int64_t n, float* out)
{
    if (kernelLevel() != KernelLevel::Portable) {
        avx512::decodeSparseColumns(layout, row, c0, n, out);
        return;
    }
    decodeSparseColumns(layout, row, c0, n, out);
}

float sparseDot(const SparseLayout& layout, const uint8_t* row, const float* x)
{
    if (kernelLevel() != KernelLevel::Portable)
        return avx512::sparseDot(layout, row, x);
    thread_local std::vector<float> decoded;
    decoded.resize(static_cast<size_t>(layout.cols));
    decodeSparseColumns(layout, row, 0, layout.cols, decoded.data());
    return dotF32(decoded.data(), x, layout.cols);
}

} // namespace ll
