#include "quant/no_fma.h" // first: no fused multiply-adds in this file

#include "quant/grid.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace ll {

std::string QuantGrid::label() const
{
    std::string s = "w";
    s += std::to_string(bits);
    s += symmetric ? " sym " : " asym ";
    if (groupSize > 0) {
        s += 'g';
        s += std::to_string(groupSize);
    } else {
        s += groupSize == 0 ? "row" : "tensor";
    }
    return s;
}

int gridMaxQ(int bits) { return (1 << bits) - 1; }

void validateGrid(const QuantGrid& grid)
{
    if (grid.bits < 2 || grid.bits > 8)
        fail(ErrorCode::InvalidArgument, "", "integer grids have 2 to 8 bits, not " + std::to_string(grid.bits));
    if (grid.groupSize < -1)
        fail(ErrorCode::InvalidArgument, "",
             "group size " + std::to_string(grid.groupSize) + " is invalid (use > 0, 0 = per row, -1 = per tensor)");
}

namespace {
// x[0, n) holds no NaN/Inf: x - x is NaN exactly for those, and Eigen's sum is vectorised.
bool allFinite(const float* x, int64_t n)
{
    const Eigen::Map<const Eigen::ArrayXf> a(x, n);
    return (a - a).sum() == 0.0f;
}
} // namespace

void requireFinite(const Eigen::Ref<const MatrixRM>& W, const char* what)
{
    for (Eigen::Index r = 0; r < W.rows(); ++r) {
        if (allFinite(W.data() + r * W.outerStride(), W.cols()))
            continue;
        for (Eigen::Index c = 0; c < W.cols(); ++c)
            if (!std::isfinite(W(r, c)))
                fail(ErrorCode::InvalidArgument, "",
                     std::string(what) + " holds " + (std::isnan(W(r, c)) ? "NaN" : "an infinite value") + " at row "
                         + std::to_string(r) + ", column " + std::to_string(c) + "; it cannot be quantized");
    }
}

ScaleZero scaleZeroFromRange(float lo, float hi, int bits, bool symmetric)
{
    float xmin = std::min(lo, 0.0f);
    float xmax = std::max(hi, 0.0f);
    if (symmetric) {
        xmax = std::max(std::fabs(xmin), xmax);
        // GPTQ mirrors only a negative minimum: an all-positive slice keeps
        // xmin = 0, so its upper half of the grid is clipped (kept on purpose).
        if (xmin < 0.0f)
            xmin = -xmax;
    }
    const int maxq = gridMaxQ(bits);
    float scale = (xmax - xmin) / static_cast<float>(maxq);
    // An all-zero slice gets the range [-1, 1]; so does one so tiny (denormal)
    // that its scale underflows to 0, where GPTQ would divide by zero.
    if ((xmin == 0.0f && xmax == 0.0f) || scale == 0.0f) {
        xmin = -1.0f;
        xmax = 1.0f;
        scale = (xmax - xmin) / static_cast<float>(maxq);
    }
    ScaleZero sz;
    sz.scale = scale;
    sz.zero = symmetric ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-xmin / scale);
    return sz;
}

ScaleZero findScaleZero(const float* x, int64_t n, int bits, bool symmetric)
{
    float lo = 0.0f, hi = 0.0f; // the grid always holds 0, so 0 is a safe start
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i]))
            fail(ErrorCode::InvalidArgument, "",
                 "value " + std::to_string(i) + " of the slice is " + (std::isnan(x[i]) ? "NaN" : "infinite")
                     + "; it cannot be quantized");
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    return scaleZeroFromRange(lo, hi, bits, symmetric);
}

namespace {

// Range of W(r, c0 .. c0+n-1) folded into lo/hi; false when a value is NaN or
// infinite. Eigen's reductions are vectorised (a plain min/max loop stays
// scalar); a row slice stays in cache across the three.
bool sliceRange(const Eigen::Ref<const MatrixRM>& W, int64_t r, int64_t c0, int64_t n, float& lo, float& hi)
{
    if (n <= 0)
        return true;
    const float* p = W.data() + r * W.outerStride() + c0;
    if (!allFinite(p, n))
        return false;
    const Eigen::Map<const Eigen::ArrayXf> x(p, n);
    lo = std::min(lo, x.minCoeff());
    hi = std::max(hi, x.maxCoeff());
    return true;
}

} // namespace

GridParams computeGridParams(const Eigen::Ref<const MatrixRM>& W, const QuantGrid& grid)
{
    validateGrid(grid);
    GridParams p;
    p.grid = grid;
    p.rows = W.rows();
    p.cols = W.cols();
    p.groupCols = grid.groupSize > 0 ? grid.groupSize : std::max<int64_t>(p.cols, 1);
    const int64_t groups = p.cols == 0 ? 0 : (p.cols + p.groupCols - 1) / p.groupCols;

    if (grid.groupSize == -1) { // one range for the whole tensor
        float lo = 0.0f, hi = 0.0f;
        bool finite = true;
        for (int64_t r = 0; r < p.rows && p.cols > 0; ++r)
            finite = sliceRange(W, r, 0, p.cols, lo, hi) && finite;
        if (!finite)
            requireFinite(W, "the weight matrix"); // throws, naming the first bad value
        const ScaleZero sz = scaleZeroFromRange(lo, hi, grid.bits, grid.symmetric);
        p.scales = Eigen::MatrixXf::Constant(1, groups, sz.scale);
        p.zeros = Eigen::MatrixXf::Constant(1, groups, sz.zero);
        return p;
    }

    p.scales.resize(p.rows, groups);
    p.zeros.resize(p.rows, groups);
    for (int64_t r = 0; r < p.rows; ++r)
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * p.groupCols;
            float lo = 0.0f, hi = 0.0f;
            if (!sliceRange(W, r, c0, std::min(p.groupCols, p.cols - c0), lo, hi))
                requireFinite(W, "the weight matrix"); // throws, naming the first bad value
            const ScaleZero sz = scaleZeroFromRange(lo, hi, grid.bits, grid.symmetric);
            p.scales(r, g) = sz.scale;
            p.zeros(r, g) = sz.zero;
        }
    return p;
}

} // namespace ll
