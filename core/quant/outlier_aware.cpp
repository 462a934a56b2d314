#include "quant/no_fma.h" // first: the grid arithmetic matches RTN's

#include "quant/outlier_aware.h"

#include "layer/checks.h"
#include "util/progress.h"
#include "quant/rtn.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ll {

namespace {

// RTN on the grid with kept weights left out of the ranges and kept as they are.
QuantizedLayer rtnWithKeep(const MatrixRM& W, const std::vector<char>& keep, const QuantGrid& grid, const LayerInputs& in)
{
    MatrixRM Wr = W;
    for (int64_t i = 0; i < W.size(); ++i)
        if (keep[static_cast<size_t>(i)])
            Wr.data()[i] = 0.0f;
    RtnResult q = rtnQuantize(Wr, grid);
    QuantizedLayer out;
    out.packed.format = PackedQuant::Format::IntGrid;
    out.packed.bits = grid.bits;
    out.packed.grid = q.params;
    int64_t kept = 0;
    for (int64_t i = 0; i < W.size(); ++i)
        if (keep[static_cast<size_t>(i)]) {
            ++kept;
            q.codes[static_cast<size_t>(i)] = 0;
            q.dequantized.data()[i] = W.data()[i];
            out.packed.outliers.rows.push_back(static_cast<int32_t>(i / W.cols()));
            out.packed.outliers.cols.push_back(static_cast<int32_t>(i % W.cols()));
            out.packed.outliers.values.push_back(W.data()[i]);
        }
    out.packed.codes = std::move(q.codes);
    addGridBits(out.bits, grid, W.rows(), W.cols(), W.size() - kept);
    out.bits.outliers = 48.0 * static_cast<double>(kept);
    finishQuantizedLayer(out, W, std::move(q.dequantized), in);
    return out;
}

QuantizedLayer quantizeWithKeep(const MatrixRM& W, const LayerInputs& in, const OutlierAwareOptions& o,
                                const std::vector<char>& keep, std::vector<int32_t> lastColumns, Progress* progress)
{
    if (!o.useGptq)
        return rtnWithKeep(W, keep, o.gptq.grid, in);
    GptqOptions g = o.gptq;
    g.keep = &keep;
    g.lastColumns = std::move(lastColumns);
    QuantizedLayer out = quantizedLayerFromGptq(W, gptqQuantize(W, *in.gram, g, progress), in, g);
    return out;
}

void requireHessian(const MatrixRM& W, const LayerInputs& in, const char* what)
{
    requireUsableWeights(W, "the weight matrix");
    if (!in.gram)
        fail(ErrorCode::InvalidArgument, "", std::string(what) + " needs the calibration Gram matrix of the layer's inputs");
    requireGram(*in.gram, W.cols(), "the Gram matrix");
}

} // namespace

std::vector<int32_t> owqSensitiveColumns(const MatrixRM& W, const Eigen::MatrixXf& H, const QuantGrid& grid, int64_t k)
{
    requireGram(H, W.cols(), "the Hessian");
    const MatrixRM E = W - rtnQuantize(W, grid).dequantized;
    std::vector<double> score(static_cast<size_t>(W.cols()));
    for (Eigen::Index j = 0; j < W.cols(); ++j)
        score[static_cast<size_t>(j)] = static_cast<double>(H(j, j)) * E.col(j).cast<double>().squaredNorm();
    std::vector<int32_t> idx(static_cast<size_t>(W.cols()));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)]; });
    idx.resize(static_cast<size_t>(std::clamp<int64_t>(k, 0, W.cols())));
    std::sort(idx.begin(), idx.end());
    return idx;
}

QuantizedLayer owqQuantize(const MatrixRM& W, const LayerInputs& in, const OutlierAwareOptions& o, Progress* progress)
{
    requireHessian(W, in, "OWQ");
    if (o.columns < 0 || o.columns > W.cols())
        fail(ErrorCode::InvalidArgument, "", "OWQ keeps 0.." + std::to_string(W.cols()) + " columns, not " + std::to_string(o.columns));
    const std::vector<int32_t> cols = owqSensitiveColumns(W, *in.gram, o.gptq.grid, o.columns);
    std::vector<char> keep(static_cast<size_t>(W.size()), 0);
    for (int32_t c : cols)
        for (Eigen::Index r = 0; r < W.rows(); ++r)
            keep[static_cast<size_t>(r * W.cols() + c)] = 1;
    QuantizedLayer out = quantizeWithKeep(W, in, o, keep, cols, progress);
    // Whole columns: store them dense (values + one index per column) instead of as single weights.
    out.packed.outliers = {};
    out.packed.denseColumns = cols;
    out.packed.denseValues.resize(W.rows(), static_cast<Eigen::Index>(cols.size()));
    for (size_t k = 0; k < cols.size(); ++k)
        out.packed.denseValues.col(static_cast<Eigen::Index>(k)) = out.weights.col(cols[k]);
    out.bits.outliers = 16.0 * static_cast<double>(W.rows()) * static_cast<double>(cols.size()) + 32.0 * static_cast<double>(cols.size());
    const double weights = static_cast<double>(W.size());
    out.bytesAfter = out.bits.total() / 8.0;
    out.bitsPerWeight = out.bits.total() / weights;
    out.method = std::string(o.useGptq ? "owq gptq " : "owq rtn ") + o.gptq.grid.label() + " + " + std::to_string(cols.size()) + " fp16 columns";
    out.info["outlier_columns"] = static_cast<double>(cols.size());
    return out;
}

QuantizedLayer spqrQuantize(const MatrixRM& W, const LayerInputs& in, const OutlierAwareOptions& o, Progress* progress)
{
    requireHessian(W, in, "SpQR-style outlier quantization");
    if (!(o.fraction >= 0.0 && o.fraction < 1.0))
        fail(ErrorCode::InvalidArgument, "", "the outlier fraction must lie in [0, 1)");
    const int64_t n = W.size();
    const int64_t k = static_cast<int64_t>(std::llround(o.fraction * static_cast<double>(n)));
    SubProgress first(progress, 0.0, 0.5), second(progress, 0.5, 1.0);
    GptqOptions g = o.gptq;
    g.keep = nullptr;
    const GptqResult pass1 = gptqQuantize(W, *in.gram, g, &first);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    const float* loss = pass1.weightLoss.data();
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return loss[a] > loss[b]; });
    std::vector<char> keep(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < k; ++i)
        keep[static_cast<size_t>(idx[static_cast<size_t>(i)])] = 1;
    QuantizedLayer out = quantizeWithKeep(W, in, o, keep, {}, &second);
    out.method = std::string(o.useGptq ? "spqr gptq " : "spqr rtn ") + o.gptq.grid.label() + " + " + std::to_string(k) + " fp16 weights";
    out.info["outlier_weights"] = static_cast<double>(k);
    return out;
}

} // namespace ll
