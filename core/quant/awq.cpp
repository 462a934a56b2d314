#include "quant/awq.h"

#include "layer/checks.h"
#include "quant/quant_method.h"
#include "quant/rtn.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace ll {

AwqOptions awqOptions(const QuantConfig& c)
{
    AwqOptions o;
    o.grid = c.grid;
    o.searchScale = c.awqSearchScale;
    o.clip = c.awqClip;
    o.scaleGridPoints = c.awqGridPoints;
    o.clipGridPoints = c.awqGridPoints;
    return o;
}

namespace {

// tr(D G D^T) in double over row blocks.
double quadForm(const MatrixRM& D, const Eigen::MatrixXf& G)
{
    constexpr Eigen::Index kRows = 128;
    double sum = 0.0;
    MatrixRM DG;
    for (Eigen::Index r0 = 0; r0 < D.rows(); r0 += kRows) {
        const Eigen::Index n = std::min(kRows, D.rows() - r0);
        DG.noalias() = D.middleRows(r0, n) * G;
        sum += DG.cwiseProduct(D.middleRows(r0, n)).cast<double>().sum();
    }
    return sum;
}

MatrixRM scaleColumns(const MatrixRM& W, const Eigen::VectorXf& s)
{
    return W * s.asDiagonal();
}

void checkInputs(const MatrixRM& W, const LayerInputs& in, bool needMean)
{
    requireUsableWeights(W, "the weight matrix");
    if (!in.gram)
        fail(ErrorCode::InvalidArgument, "", "AWQ needs the calibration Gram matrix of the layer's inputs");
    requireGram(*in.gram, W.cols(), "the Gram matrix");
    if (needMean)
        requireChannelStat(in.meanAbs, W.cols(), "mean |x|");
}

} // namespace

Eigen::VectorXf awqScalesFor(const Eigen::VectorXf& meanAbs, double alpha)
{
    Eigen::VectorXf s(meanAbs.size());
    for (Eigen::Index j = 0; j < s.size(); ++j)
        s(j) = std::max(std::pow(meanAbs(j), static_cast<float>(alpha)), 1e-4f);
    if (s.size() > 0)
        s /= std::sqrt(s.maxCoeff() * s.minCoeff());
    return s;
}

AwqScaleSearch awqSearchScale(std::span<const MatrixRM* const> Ws, const Eigen::MatrixXf& gram,
                              const Eigen::VectorXf& meanAbs, const AwqOptions& o, Progress* progress)
{
    if (Ws.empty())
        fail(ErrorCode::InvalidArgument, "", "the AWQ scale search needs at least one weight matrix");
    for (const MatrixRM* W : Ws) {
        requireUsableWeights(*W, "the weight matrix");
        if (W->cols() != Ws[0]->cols())
            fail(ErrorCode::InvalidArgument, "", "linears sharing an input must have the same number of inputs");
    }
    requireGram(gram, Ws[0]->cols(), "the Gram matrix");
    requireChannelStat(meanAbs, Ws[0]->cols(), "mean |x|");
    if (o.scaleGridPoints < 1)
        fail(ErrorCode::InvalidArgument, "", "the AWQ scale grid needs at least one point");
    AwqScaleSearch out;
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < o.scaleGridPoints; ++i) {
        throwIfCancelled(progress);
        const double alpha = static_cast<double>(i) / o.scaleGridPoints;
        const Eigen::VectorXf s = awqScalesFor(meanAbs, alpha);
        const Eigen::VectorXf inv = s.cwiseInverse();
        double loss = 0.0;
        for (const MatrixRM* W : Ws) {
            const MatrixRM What = rtnQuantize(scaleColumns(*W, s), o.grid).dequantized * inv.asDiagonal();
            loss += quadForm(What - *W, gram);
        }
        out.losses.push_back(loss);
        if (loss < best) { // strict: ties keep the smaller alpha, as llm-awq
            best = loss;
            out.alpha = alpha;
            out.scales = s;
        }
        if (progress)
            progress->report(static_cast<double>(i + 1) / o.scaleGridPoints, "AWQ scale search");
    }
    return out;
}

MatrixRM applyClip(const MatrixRM& W, const Eigen::MatrixXf& maxVal, int64_t groupCols)
{
    MatrixRM out = W;
    for (Eigen::Index r = 0; r < W.rows(); ++r)
        for (Eigen::Index c = 0; c < W.cols(); ++c) {
            const float m = maxVal(r, c / groupCols);
            out(r, c) = std::clamp(W(r, c), -m, m);
        }
    return out;
}

Eigen::MatrixXf awqSearchClip(const MatrixRM& Ws, const Eigen::MatrixXf& G, const AwqOptions& o)
{
    requireUsableWeights(Ws, "the weight matrix");
    requireGram(G, Ws.cols(), "the Gram matrix");
    validateGrid(o.grid);
    if (o.grid.groupSize < 0)
        fail(ErrorCode::InvalidArgument, "", "the AWQ clip search works per row or per group, not per tensor");
    const int64_t rows = Ws.rows(), cols = Ws.cols();
    const int64_t gc = o.grid.groupSize > 0 ? o.grid.groupSize : cols;
    const int64_t groups = (cols + gc - 1) / gc;
    const int maxq = gridMaxQ(o.grid.bits);
    const int steps = std::max(1, static_cast<int>(o.maxShrink * o.clipGridPoints));
    Eigen::MatrixXf best(rows, groups);
    std::vector<float> d(static_cast<size_t>(gc));
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t c0 = g * gc, n = std::min(gc, cols - c0);
        const Eigen::MatrixXf Gg = G.block(c0, c0, n, n);
        for (int64_t r = 0; r < rows; ++r) {
            const float* w = &Ws(r, c0);
            float absMax = 0.0f;
            for (int64_t i = 0; i < n; ++i)
                absMax = std::max(absMax, std::fabs(w[i]));
            double bestErr = std::numeric_limits<double>::infinity();
            float bestVal = absMax;
            for (int step = 0; step < steps; ++step) {
                const float m = absMax * (1.0f - static_cast<float>(step) / static_cast<float>(o.clipGridPoints));
                float lo = 0.0f, hi = 0.0f;
                for (int64_t i = 0; i < n; ++i) {
                    const float v = std::clamp(w[i], -m, m);
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
                const ScaleZero sz = scaleZeroFromRange(lo, hi, o.grid.bits, o.grid.symmetric);
                for (int64_t i = 0; i < n; ++i) {
                    const float v = std::clamp(w[i], -m, m);
                    d[static_cast<size_t>(i)] = dequantizeValue(quantizeValue(v, sz.scale, sz.zero, maxq), sz.scale, sz.zero) - w[i];
                }
                const Eigen::Map<const Eigen::VectorXf> dv(d.data(), n);
                const double err = static_cast<double>(dv.dot(Gg * dv));
                if (err < bestErr) {
                    bestErr = err;
                    bestVal = m;
                }
            }
            best(r, g) = bestVal;
        }
    }
    return best;
}

QuantizedLayer awqQuantize(const MatrixRM& W, const LayerInputs& in, const AwqOptions& o, const Eigen::VectorXf* scales,
                           Progress* progress)
{
    validateGrid(o.grid);
    checkInputs(W, in, o.searchScale && !scales);
    Eigen::VectorXf s = Eigen::VectorXf::Ones(W.cols());
    double alpha = 0.0;
    if (scales) {
        requireChannelStat(*scales, W.cols(), "the AWQ scales");
        if ((scales->array() <= 0.0f).any())
            fail(ErrorCode::InvalidArgument, "", "AWQ scales must be positive");
        s = *scales;
    } else if (o.searchScale) {
        const MatrixRM* ws[] = {&W};
        const AwqScaleSearch search = awqSearchScale(ws, *in.gram, in.meanAbs, o, progress);
        s = search.scales;
        alpha = search.alpha;
    }
    MatrixRM Ws = scaleColumns(W, s);
    if (o.clip) {
        const Eigen::VectorXf inv = s.cwiseInverse();
        const Eigen::MatrixXf Gs = inv.asDiagonal() * (*in.gram) * inv.asDiagonal();
        const int64_t gc = o.grid.groupSize > 0 ? o.grid.groupSize : W.cols();
        Ws = applyClip(Ws, awqSearchClip(Ws, Gs, o), gc);
    }
    RtnResult q = rtnQuantize(Ws, o.grid);
    QuantizedLayer out;
    out.method = "awq " + o.grid.label();
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = o.grid.bits;
    out.packed.codes = std::move(q.codes);
    out.packed.grid = q.params;
    out.packed.inputScale = s;
    out.packed.inputScaleFolded = true;
    addGridBits(out.bits, o.grid, W.rows(), W.cols(), W.size());
    out.info["alpha"] = alpha;
    MatrixRM What = q.dequantized * s.cwiseInverse().asDiagonal();
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

} // namespace ll
