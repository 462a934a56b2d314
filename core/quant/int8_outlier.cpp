#include "quant/int8_outlier.h"

#include "layer/checks.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ll {

IntRows intRowAbsmax(const MatrixRM& W, int bits)
{
    requireFinite(W, "the weight matrix");
    if (bits < 2 || bits > 8)
        fail(ErrorCode::InvalidArgument, "", "weight bits per row must be 2..8, not " + std::to_string(bits));
    const float levels = static_cast<float>((1 << (bits - 1)) - 1);
    IntRows r;
    r.bits = bits;
    r.dequantized.resize(W.rows(), W.cols());
    r.codes.resize(static_cast<size_t>(W.size()));
    r.scales.resize(W.rows());
    for (Eigen::Index i = 0; i < W.rows(); ++i) {
        const float absmax = W.row(i).cwiseAbs().maxCoeff();
        const float s = absmax > 0.0f ? absmax / levels : 1.0f;
        r.scales(i) = s;
        for (Eigen::Index c = 0; c < W.cols(); ++c) {
            // + 0: a small negative weight rounds to -0, which the grid's s (code - zero) gives as +0.
            const float q = std::clamp(std::nearbyint(W(i, c) / s), -levels, levels) + 0.0f;
            r.codes[static_cast<size_t>(i * W.cols() + c)] = static_cast<int8_t>(q);
            r.dequantized(i, c) = q * s;
        }
    }
    return r;
}

void packIntRows(const IntRows& q, PackedQuant& packed)
{
    const int64_t rows = q.dequantized.rows(), cols = q.dequantized.cols();
    const int zero = 1 << (q.bits - 1);
    packed.format = PackedQuant::Format::IntGrid;
    packed.bits = q.bits;
    packed.codes.resize(q.codes.size());
    for (size_t i = 0; i < q.codes.size(); ++i)
        packed.codes[i] = static_cast<uint8_t>(q.codes[i] + zero); // symmetric codes stored with zero 2^(b-1)
    GridParams& g = packed.grid;
    g.grid = {q.bits, true, 0};
    g.rows = rows;
    g.cols = cols;
    g.groupCols = std::max<int64_t>(cols, 1);
    g.scales = q.scales;
    g.zeros = Eigen::MatrixXf::Constant(rows, 1, static_cast<float>(zero));
}

MatrixRM quantizeActivationsPerToken(const MatrixRM& X, int bits, const std::vector<int32_t>& skipColumns)
{
    if (bits < 2 || bits > 16)
        fail(ErrorCode::InvalidArgument, "", "activation bits must be 2..16, not " + std::to_string(bits));
    std::vector<char> skip(static_cast<size_t>(X.cols()), 0);
    for (int32_t c : skipColumns)
        if (c >= 0 && c < X.cols())
            skip[static_cast<size_t>(c)] = 1;
    const float levels = static_cast<float>((1 << (bits - 1)) - 1);
    MatrixRM out = X;
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        float absmax = 0.0f;
        for (Eigen::Index c = 0; c < X.cols(); ++c)
            if (!skip[static_cast<size_t>(c)])
                absmax = std::max(absmax, std::fabs(X(t, c)));
        if (absmax == 0.0f)
            continue;
        const float s = absmax / levels;
        for (Eigen::Index c = 0; c < X.cols(); ++c)
            if (!skip[static_cast<size_t>(c)])
                out(t, c) = std::clamp(std::nearbyint(X(t, c) / s), -levels, levels) * s;
    }
    return out;
}

void quantizeActivationRows(Eigen::Ref<MatrixRM> X, int bits, const std::vector<char>* skip, const Eigen::VectorXf* inputScale)
{
    if (bits < 2 || bits > 16)
        fail(ErrorCode::InvalidArgument, "", "activation bits must be 2..16, not " + std::to_string(bits));
    const Eigen::Index cols = X.cols();
    if ((skip && static_cast<Eigen::Index>(skip->size()) != cols) || (inputScale && inputScale->size() != cols))
        fail(ErrorCode::InvalidArgument, "", "activation quantization: the column flags / scales do not fit the input");
    const float levels = static_cast<float>((1 << (bits - 1)) - 1);
    const char* sk = skip ? skip->data() : nullptr;
    for (Eigen::Index t = 0; t < X.rows(); ++t) {
        float* x = X.data() + t * X.outerStride();
        if (inputScale)
            for (Eigen::Index c = 0; c < cols; ++c)
                x[c] *= (*inputScale)(c);
        float absmax = 0.0f;
        for (Eigen::Index c = 0; c < cols; ++c)
            if (!sk || !sk[c])
                absmax = std::max(absmax, std::fabs(x[c]));
        if (absmax == 0.0f)
            continue;
        const float s = absmax / levels;
        for (Eigen::Index c = 0; c < cols; ++c)
            if (!sk || !sk[c])
                x[c] = std::clamp(std::nearbyint(x[c] / s), -levels, levels) * s;
    }
}

double w8a8OutputError(const MatrixRM& W, const MatrixRM& Wq, const Eigen::VectorXf* inputScale, const MatrixRM& X,
                       int actBits, const std::vector<int32_t>& fpColumns)
{
    if (W.rows() != Wq.rows() || W.cols() != Wq.cols() || X.cols() != W.cols())
        fail(ErrorCode::InvalidArgument, "", "the W8A8 simulation needs W, Wq (out, in) and X (tokens, in) of matching widths");
    MatrixRM Xs = X;
    if (inputScale) {
        if (inputScale->size() != X.cols())
            fail(ErrorCode::InvalidArgument, "", "the input scale has the wrong length");
        Xs = X * inputScale->cwiseInverse().asDiagonal();
    }
    return quantizedProductError(X, quantizeActivationsPerToken(Xs, actBits, fpColumns), W, Wq);
}

double quantizedProductError(const MatrixRM& X, const MatrixRM& Xq, const MatrixRM& W, const MatrixRM& Wq)
{
    const Eigen::MatrixXd Y = (X.cast<double>() * W.cast<double>().transpose());
    const Eigen::MatrixXd Yq = (Xq.cast<double>() * Wq.cast<double>().transpose());
    const double den = Y.norm();
    return den > 0.0 ? (Yq - Y).norm() / den : 0.0;
}

std::vector<int32_t> activationOutlierColumns(const Eigen::VectorXf& maxAbs, double threshold, int topK)
{
    std::vector<int32_t> cols;
    if (topK > 0) {
        std::vector<int32_t> idx(static_cast<size_t>(maxAbs.size()));
        std::iota(idx.begin(), idx.end(), 0);
        const size_t k = std::min(static_cast<size_t>(topK), idx.size());
        std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return maxAbs(a) > maxAbs(b); });
        cols.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
        for (Eigen::Index j = 0; j < maxAbs.size(); ++j)
            if (maxAbs(j) >= threshold)
                cols.push_back(static_cast<int32_t>(j));
    }
    std::sort(cols.begin(), cols.end());
    return cols;
}

QuantizedLayer int8OutlierQuantize(const MatrixRM& W, const LayerInputs& in, const Int8OutlierOptions& o)
{
    requireUsableWeights(W, "the weight matrix");
    if (in.maxAbs.size() == 0)
        fail(ErrorCode::InvalidArgument, "", "LLM.int8 needs max |x| of the layer's inputs (calibration text)");
    requireChannelStat(in.maxAbs, W.cols(), "max |x|");
    const std::vector<int32_t> outl = activationOutlierColumns(in.maxAbs, o.threshold, o.topK);

    MatrixRM Wrest = W;
    for (int32_t c : outl)
        Wrest.col(c).setZero(); // the int8 part: outlier columns do not widen the rows' absmax
    IntRows q = intRowAbsmax(Wrest);

    QuantizedLayer out;
    out.method = outl.empty() ? std::string("int8") : "int8 + " + std::to_string(outl.size()) + " fp16 columns";
    packIntRows(q, out.packed);
    out.packed.denseColumns = outl;
    out.packed.denseValues.resize(W.rows(), static_cast<Eigen::Index>(outl.size()));
    MatrixRM What = q.dequantized;
    for (size_t k = 0; k < outl.size(); ++k) {
        out.packed.denseValues.col(static_cast<Eigen::Index>(k)) = W.col(outl[k]);
        What.col(outl[k]) = W.col(outl[k]);
    }
    const double rows = static_cast<double>(W.rows()), k = static_cast<double>(outl.size());
    out.bits.codes = 8.0 * rows * (static_cast<double>(W.cols()) - k);
    out.bits.scales = 16.0 * rows;
    out.bits.outliers = 16.0 * rows * k + 32.0 * k;
    out.info["outlier_columns"] = k;
    if (in.samples)
        out.info["w8a8_output_error"] = w8a8OutputError(W, What, nullptr, *in.samples, o.actBits, outl);
    finishQuantizedLayer(out, W, std::move(What), in);
    return out;
}

} // namespace ll
