#include "quant/bcq.h"

#include "layer/checks.h"
#include "util/error.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ll {

namespace {

float planeSign(uint8_t code, int i) { return ((code >> i) & 1u) ? 1.0f : -1.0f; }

double sliceError(const float* x, int64_t n, int planes, const float* alpha, const uint8_t* codes)
{
    double e = 0.0;
    for (int64_t j = 0; j < n; ++j) {
        float v = 0.0f;
        for (int i = 0; i < planes; ++i)
            v += alpha[i] * planeSign(codes[j], i);
        const double d = static_cast<double>(x[j]) - v;
        e += d * d;
    }
    return e;
}

// alpha = argmin ||x - B alpha|| for the current codes; false when B^T B is singular.
bool refitAlpha(const float* x, int64_t n, int planes, const uint8_t* codes, float* alpha)
{
    Eigen::MatrixXd BtB = Eigen::MatrixXd::Zero(planes, planes);
    Eigen::VectorXd Btx = Eigen::VectorXd::Zero(planes);
    for (int64_t j = 0; j < n; ++j)
        for (int a = 0; a < planes; ++a) {
            const double sa = planeSign(codes[j], a);
            Btx(a) += sa * x[j];
            for (int b = 0; b < planes; ++b)
                BtB(a, b) += sa * planeSign(codes[j], b);
        }
    Eigen::FullPivLU<Eigen::MatrixXd> lu(BtB);
    if (!lu.isInvertible())
        return false;
    const Eigen::VectorXd a = lu.solve(Btx);
    for (int i = 0; i < planes; ++i)
        alpha[i] = static_cast<float>(a(i));
    return true;
}

// Each weight's code: the nearest of the 2^planes representable values.
void recode(const float* x, int64_t n, int planes, const float* alpha, uint8_t* codes)
{
    const int m = 1 << planes;
    std::vector<std::pair<float, uint8_t>> values(static_cast<size_t>(m));
    for (int c = 0; c < m; ++c) {
        float v = 0.0f;
        for (int i = 0; i < planes; ++i)
            v += alpha[i] * planeSign(static_cast<uint8_t>(c), i);
        values[static_cast<size_t>(c)] = {v, static_cast<uint8_t>(c)};
    }
    std::sort(values.begin(), values.end());
    for (int64_t j = 0; j < n; ++j) {
        auto it = std::lower_bound(values.begin(), values.end(), std::make_pair(x[j], uint8_t{0}),
                                   [](const auto& a, const auto& b) { return a.first < b.first; });
        if (it == values.end())
            --it;
        else if (it != values.begin() && std::fabs(x[j] - (it - 1)->first) <= std::fabs(it->first - x[j]))
            --it;
        codes[j] = it->second;
    }
}

} // namespace

double bcqFitSlice(const float* x, int64_t n, const BcqOptions& o, float* alpha, uint8_t* codes)
{
    std::fill(codes, codes + n, uint8_t{0});
    std::fill(alpha, alpha + o.bits, 0.0f);
    std::vector<float> r(x, x + n), bestAlpha(static_cast<size_t>(o.bits));
    std::vector<uint8_t> bestCodes(static_cast<size_t>(n));
    double err = 0.0;
    for (int plane = 0; plane < o.bits; ++plane) {
        // Greedy plane on the residual of the fit so far.
        double meanAbs = 0.0;
        for (int64_t j = 0; j < n; ++j) {
            float v = 0.0f;
            for (int i = 0; i < plane; ++i)
                v += alpha[i] * planeSign(codes[j], i);
            r[static_cast<size_t>(j)] = x[j] - v;
            meanAbs += std::fabs(r[static_cast<size_t>(j)]);
        }
        alpha[plane] = n > 0 ? static_cast<float>(meanAbs / static_cast<double>(n)) : 0.0f;
        for (int64_t j = 0; j < n; ++j)
            if (r[static_cast<size_t>(j)] >= 0.0f)
                codes[j] |= static_cast<uint8_t>(1u << plane);
        const int planes = plane + 1;
        err = sliceError(x, n, planes, alpha, codes);
        // Alternating refinement, kept only while it lowers the error.
        for (int it = 0; it < o.iterations; ++it) {
            std::copy(alpha, alpha + planes, bestAlpha.begin());
            std::copy(codes, codes + n, bestCodes.begin());
            if (!refitAlpha(x, n, planes, codes, alpha))
                break;
            recode(x, n, planes, alpha, codes);
            const double e = sliceError(x, n, planes, alpha, codes);
            if (!(e < err)) { // no gain: back to the previous fit
                std::copy(bestAlpha.begin(), bestAlpha.begin() + planes, alpha);
                std::copy(bestCodes.begin(), bestCodes.end(), codes);
                break;
            }
            const bool small = e > err * (1.0 - 1e-6);
            err = e;
            if (small)
                break;
        }
    }
    return err;
}

QuantizedLayer bcqQuantize(const MatrixRM& W, const BcqOptions& o, const LayerInputs& in)
{
    requireUsableWeights(W, "the weight matrix");
    if (o.bits < 1 || o.bits > 8)
        fail(ErrorCode::InvalidArgument, "", "BCQ takes 1 to 8 bit planes, not " + std::to_string(o.bits));
    if (o.groupSize < 0 || o.iterations < 0)
        fail(ErrorCode::InvalidArgument, "", "BCQ group size and iterations must be >= 0");
    const int64_t rows = W.rows(), cols = W.cols();
    const int64_t gc = o.groupSize > 0 ? o.groupSize : cols;
    const int64_t groups = (cols + gc - 1) / gc;
    QuantizedLayer out;
    out.packed.format = PackedQuant::Format::Bcq;
    out.packed.bits = o.bits;
    out.packed.bcqGroupCols = gc;
    out.packed.bcqAlpha.resize(rows * groups, o.bits);
    out.packed.codes.assign(static_cast<size_t>(W.size()), 0);
    MatrixRM What(rows, cols);
    std::vector<float> alpha(static_cast<size_t>(o.bits));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t c0 = g * gc, n = std::min(gc, cols - c0);
            uint8_t* codes = out.packed.codes.data() + r * cols + c0;
            bcqFitSlice(&W(r, c0), n, o, alpha.data(), codes);
            for (int i = 0; i < o.bits; ++i)
                out.packed.bcqAlpha(r * groups + g, i) = alpha[static_cast<size_t>(i)];
            for (int64_t j = 0; j < n; ++j) {
                float v = 0.0f;
                for (int i = 0; i < o.bits; ++i)
                    v += alpha[static_cast<size_t>(i)] * planeSign(codes[j], i);
                What(r, c0 + j) = v;
            }
        }
    out.method = "bcq b" + std::to_string(o.bits) + (o.groupSize > 0 ? " g" + std::to_string(o.groupSize) : std::string(" row"));
    out.bits.codes = static_cast<double>(o.bits) * static_cast<double>(W.size());
    out.bits.scales = 16.0 * static_cast<double>(o.bits) * static_cast<double>(rows * groups);
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

} // namespace ll
