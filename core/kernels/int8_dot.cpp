#include "kernels/int8_dot.h"

#include "kernels/cpu_features.h"
#include "kernels/int8_dot_avx512.h"
#include "kernels/matmul.h"
#include "kernels/row_kernels.h"
#include "model/grid_exception_access.h"
#include "model/packed_grid.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace ll {

void quantizeRowQ8K(const float* x, BlockQ8K* out, int64_t n)
{
    for (int64_t b = 0; b < n / kQ8Block; ++b, x += kQ8Block, ++out) {
        float amax = 0.0f;
        bool finite = true;
        for (int64_t i = 0; i < kQ8Block; ++i) {
            finite = finite && std::isfinite(x[i]);
            amax = std::max(amax, std::fabs(x[i]));
        }
        std::fill(std::begin(out->qs), std::end(out->qs), int8_t{0});
        std::fill(std::begin(out->bsums), std::end(out->bsums), int16_t{0});
        if (!finite) {
            out->d = std::numeric_limits<float>::quiet_NaN();
            continue;
        }
        out->d = amax / 127.0f;
        if (amax == 0.0f)
            continue;
        const float inv = 127.0f / amax;
        for (int64_t i = 0; i < kQ8Block; ++i) {
            const int q = static_cast<int>(std::nearbyint(x[i] * inv));
            out->qs[i] = static_cast<int8_t>(std::clamp(q, -127, 127));
            out->bsums[i / 16] = static_cast<int16_t>(out->bsums[i / 16] + out->qs[i]);
        }
    }
}

Int8DotFn int8DotKernel(DType t)
{
    if (kernelLevel() == KernelLevel::Portable || !hostCpu().avx512vnni || quantProducts() != QuantProducts::Int8)
        return nullptr;
    return avx512::int8Dot(t);
}

bool hasInt8Dot(DType t)
{
    return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1 || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K
           || t == DType::Q8_0;
}

float referenceInt8Dot(DType t, const uint8_t* w, const BlockQ8K* x, int64_t n)
{
    std::vector<float> values(static_cast<size_t>(n));
    referenceRowKernels(t).decode(w, values.data(), n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const BlockQ8K& b = x[i / kQ8Block];
        sum += static_cast<double>(values[static_cast<size_t>(i)]) * static_cast<double>(b.d) * b.qs[i % kQ8Block];
    }
    return static_cast<float>(sum);
}

double int8DotErrorBound(const float* w, const BlockQ8K* x, int64_t n)
{
    double bound = 0.0;
    for (int64_t b = 0; b < n / kQ8Block; ++b) {
        double l1 = 0.0;
        for (int64_t i = 0; i < kQ8Block; ++i)
            l1 += std::fabs(static_cast<double>(w[b * kQ8Block + i]));
        bound += 0.5 * static_cast<double>(x[b].d) * l1;
    }
    return bound;
}

bool gridHasInt8Dot(const GridLayout& layout)
{
    return layout.codebook.empty() && !layout.binaryCoding && layout.groupIndex.empty()
           && (!layout.hasExceptions() || layout.columnScale.empty()) && layout.groupCols > 0 && layout.groupCols % 32 == 0
           && layout.cols > 0 && layout.cols % kQ8Block == 0 && layout.bits >= 1 && layout.bits <= 8;
}

GridInt8DotFn gridInt8DotKernel(const GridLayout& layout)
{
    if (kernelLevel() == KernelLevel::Portable || !hostCpu().avx512vnni || quantProducts() != QuantProducts::Int8
        || !gridHasInt8Dot(layout))
        return nullptr;
    return avx512::gridInt8Dot(layout);
}

float referenceGridInt8Dot(const GridLayout& layout, const uint8_t* row, const BlockQ8K* x)
{
    GridLayout plain = layout;
    plain.columnScale.clear();
    std::vector<float> values(static_cast<size_t>(layout.cols));
    decodeGridRow(plain, row, values.data());
    double sum = 0.0;
    for (int64_t i = 0; i < layout.cols; ++i) {
        const BlockQ8K& b = x[i / kQ8Block];
        sum += static_cast<double>(values[static_cast<size_t>(i)]) * static_cast<double>(b.d) * b.qs[i % kQ8Block];
    }
    return static_cast<float>(sum);
}

float gridExceptionsInt8Dot(const GridLayout& L, const uint8_t* row, const BlockQ8K* x)
{
    float sum = 0.0f;
    forEachGridException(L, row, [&](int64_t c, float v) {
        const BlockQ8K& b = x[c / kQ8Block];
        sum += v * (b.d * static_cast<float>(b.qs[c % kQ8Block]));
    });
    return sum;
}

void gridInt8Input(const GridLayout& layout, const float* x, BlockQ8K* out)
{
    if (layout.columnScale.empty()) {
        quantizeRowQ8K(x, out, layout.cols);
        return;
    }
    thread_local std::vector<float> scaled;
    scaled.resize(static_cast<size_t>(layout.cols));
    for (int64_t i = 0; i < layout.cols; ++i)
        scaled[static_cast<size_t>(i)] = x[i] * layout.columnScale[static_cast<size_t>(i)];
    quantizeRowQ8K(scaled.data(), out, layout.cols);
}

} // namespace ll
