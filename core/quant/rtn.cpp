#include "quant/no_fma.h" // first: no fused multiply-adds in this file

#include "quant/rtn.h"

#include "util/threads.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace ll {

namespace {

constexpr double kScaleBits = 16.0; // an FP16 scale per group

RtnResult prepare(const MatrixRM& W, const QuantGrid& grid)
{
    RtnResult res;
    res.params = computeGridParams(W, grid); // validates the grid and the values
    res.dequantized.resize(W.rows(), W.cols());
    res.codes.resize(static_cast<size_t>(W.size()));
    res.bitsPerWeight = gridBitsPerWeight(grid, W.rows(), W.cols());
    return res;
}

// One row's slice [c0, c0 + n) on one (scale, zero): the hot loop of rtnQuantize.
void quantizeSlice(const float* x, int64_t n, float scale, float zero, int maxq, uint8_t* codes, float* out)
{
    const float top = static_cast<float>(maxq);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        float q = std::nearbyint(x[i] / scale) + zero;
        q = std::min(std::max(q, 0.0f), top);
        codes[i] = static_cast<uint8_t>(q);
        out[i] = scale * (q - zero);
    }
}

} // namespace

double gridBitsPerWeight(const QuantGrid& grid, int64_t rows, int64_t cols)
{
    const double weights = static_cast<double>(rows) * static_cast<double>(cols);
    if (weights == 0.0)
        return 0.0;
    double groups = 1.0; // per tensor
    if (grid.groupSize == 0)
        groups = static_cast<double>(rows);
    else if (grid.groupSize > 0)
        groups = static_cast<double>(rows) * static_cast<double>((cols + grid.groupSize - 1) / grid.groupSize);
    const double perGroup = kScaleBits + (grid.symmetric ? 0.0 : static_cast<double>(grid.bits));
    return static_cast<double>(grid.bits) + groups * perGroup / weights;
}

RtnResult rtnQuantizeRef(const MatrixRM& W, const QuantGrid& grid)
{
    RtnResult res = prepare(W, grid);
    const int maxq = gridMaxQ(grid.bits);
    for (Eigen::Index r = 0; r < W.rows(); ++r)
        for (Eigen::Index c = 0; c < W.cols(); ++c) {
            const float s = res.params.scale(r, c), z = res.params.zero(r, c);
            const int q = quantizeValue(W(r, c), s, z, maxq);
            res.codes[static_cast<size_t>(r * W.cols() + c)] = static_cast<uint8_t>(q);
            res.dequantized(r, c) = dequantizeValue(q, s, z);
        }
    return res;
}

RtnResult rtnQuantize(const MatrixRM& W, const QuantGrid& grid)
{
    RtnResult res = prepare(W, grid);
    const GridParams& p = res.params;
    const int maxq = gridMaxQ(grid.bits);
    // Slices of rows on separate threads (none under 64 rows).
    const int64_t rows = W.rows(), parts = std::clamp<int64_t>(rows / 64, 1, computeThreads());
    runParallel(parts, [&](int64_t part) {
        for (int64_t r = rows * part / parts; r < rows * (part + 1) / parts; ++r)
            for (int64_t c0 = 0; c0 < W.cols(); c0 += p.groupCols) {
                const int64_t n = std::min<int64_t>(p.groupCols, W.cols() - c0);
                quantizeSlice(&W(r, c0), n, p.scale(r, c0), p.zero(r, c0), maxq,
                              res.codes.data() + r * W.cols() + c0, &res.dequantized(r, c0));
            }
    });
    return res;
}

MatrixRM dequantizeCodes(const std::vector<uint8_t>& codes, const GridParams& params)
{
    if (static_cast<int64_t>(codes.size()) != params.rows * params.cols)
        fail(ErrorCode::InvalidArgument, "",
             std::to_string(codes.size()) + " codes do not fill a " + std::to_string(params.rows) + " x "
                 + std::to_string(params.cols) + " matrix");
    MatrixRM out(params.rows, params.cols);
    for (int64_t r = 0; r < params.rows; ++r)
        for (int64_t c = 0; c < params.cols; ++c)
            out(r, c) = dequantizeValue(codes[static_cast<size_t>(r * params.cols + c)], params.scale(r, c),
                                        params.zero(r, c));
    return out;
}

std::vector<uint8_t> packCodes(const std::vector<uint8_t>& codes, int bits)
{
    if (bits < 1 || bits > 8)
        fail(ErrorCode::InvalidArgument, "", "cannot pack " + std::to_string(bits) + "-bit codes");
    std::vector<uint8_t> out((codes.size() * static_cast<size_t>(bits) + 7) / 8, 0);
    size_t bit = 0;
    for (uint8_t code : codes)
        for (int b = 0; b < bits; ++b, ++bit)
            out[bit / 8] |= static_cast<uint8_t>(((code >> b) & 1u) << (bit % 8));
    return out;
}

std::vector<uint8_t> unpackCodes(const std::vector<uint8_t>& packed, int bits, int64_t count)
{
    if (bits < 1 || bits > 8 || count < 0 || packed.size() * 8 < static_cast<size_t>(count) * static_cast<size_t>(bits))
        fail(ErrorCode::InvalidArgument, "",
             std::to_string(packed.size()) + " bytes do not hold " + std::to_string(count) + " codes of "
                 + std::to_string(bits) + " bits");
    std::vector<uint8_t> out(static_cast<size_t>(count), 0);
    size_t bit = 0;
    for (auto& code : out)
        for (int b = 0; b < bits; ++b, ++bit)
            code |= static_cast<uint8_t>(((packed[bit / 8] >> (bit % 8)) & 1u) << b);
    return out;
}

} // namespace ll
