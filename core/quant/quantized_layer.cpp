#include "quant/quantized_layer.h"

#include "util/error.h"

#include <cmath>
#include <string>

namespace ll {

Eigen::VectorXf rmsFromGram(const Eigen::MatrixXf& gram, int64_t tokens)
{
    if (tokens <= 0)
        fail(ErrorCode::InvalidArgument, "", "RMS of the inputs needs a positive token count");
    return (gram.diagonal().array().max(0.0f) / static_cast<float>(tokens)).sqrt().matrix();
}

void addGridBits(BitsBreakdown& b, const QuantGrid& grid, int64_t rows, int64_t cols, int64_t quantizedWeights)
{
    double groups = 1.0; // per tensor
    if (grid.groupSize == 0)
        groups = static_cast<double>(rows);
    else if (grid.groupSize > 0)
        groups = static_cast<double>(rows) * static_cast<double>((cols + grid.groupSize - 1) / grid.groupSize);
    b.codes += static_cast<double>(grid.bits) * static_cast<double>(quantizedWeights);
    b.scales += 16.0 * groups;
    if (!grid.symmetric)
        b.zeros += static_cast<double>(grid.bits) * groups;
}

MatrixRM dequantizePacked(const PackedQuant& p, int64_t rows, int64_t cols, const MatrixRM* lowRankA,
                          const MatrixRM* lowRankB)
{
    if (static_cast<int64_t>(p.codes.size()) != rows * cols && p.format != PackedQuant::Format::Dense)
        fail(ErrorCode::InvalidArgument, "",
             std::to_string(p.codes.size()) + " codes do not fill a " + std::to_string(rows) + " x "
                 + std::to_string(cols) + " matrix");
    MatrixRM out = MatrixRM::Zero(rows, cols);
    if (p.format == PackedQuant::Format::IntGrid) {
        const bool perTensor = p.grid.scales.rows() == 1 && rows > 1;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                const int64_t g = p.groupIndex.empty() ? c / p.grid.groupCols : p.groupIndex[static_cast<size_t>(c)];
                const int64_t pr = perTensor ? 0 : r;
                out(r, c) = dequantizeValue(p.codes[static_cast<size_t>(r * cols + c)], p.grid.scales(pr, g),
                                            p.grid.zeros(pr, g));
            }
    } else if (p.format == PackedQuant::Format::Bcq) {
        const int64_t groups = (cols + p.bcqGroupCols - 1) / p.bcqGroupCols;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
                const int64_t g = c / p.bcqGroupCols;
                const uint8_t code = p.codes[static_cast<size_t>(r * cols + c)];
                float v = 0.0f;
                for (int i = 0; i < p.bits; ++i)
                    v += p.bcqAlpha(r * groups + g, i) * (((code >> i) & 1u) ? 1.0f : -1.0f);
                out(r, c) = v;
            }
    }
    if (p.inputScale.size() == cols)
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                out(r, c) /= p.inputScale(c);
    for (size_t k = 0; k < p.denseColumns.size(); ++k)
        out.col(p.denseColumns[k]) = p.denseValues.col(static_cast<Eigen::Index>(k));
    for (size_t k = 0; k < p.outliers.size(); ++k)
        out(p.outliers.rows[k], p.outliers.cols[k]) = p.outliers.values[k];
    if (lowRankA && lowRankB && lowRankA->size() > 0)
        out.noalias() += (*lowRankA) * (*lowRankB);
    return out;
}

void finishQuantizedLayer(QuantizedLayer& layer, const MatrixRM& W, MatrixRM What, const LayerInputs& inputs)
{
    layer.paramsBefore = W.size();
    layer.bytesBefore = denseBytes(W.rows(), W.cols(), 32);
    layer.paramsAfter = W.size();
    const double weights = static_cast<double>(W.rows()) * static_cast<double>(W.cols());
    layer.bytesAfter = layer.bits.total() / 8.0;
    layer.bitsPerWeight = weights > 0 ? layer.bits.total() / weights : 0.0;
    layer.error = layerErrorReport(W, What, inputs.gram);
    layer.weights = std::move(What);
}

void refreshBits(QuantizedLayer& l)
{
    const double n = static_cast<double>(l.weights.size());
    l.bytesAfter = l.bits.total() / 8.0;
    l.bitsPerWeight = n > 0 ? l.bits.total() / n : 0.0;
}

} // namespace ll
