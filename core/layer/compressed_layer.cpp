#include "layer/compressed_layer.h"

#include "util/error.h"

#include <bit>
#include <string>

namespace ll {

namespace {

void checkBits(int valueBits)
{
    if (valueBits < 1 || valueBits > 64)
        fail(ErrorCode::InvalidArgument, "", "bits per stored value must be 1..64, not " + std::to_string(valueBits));
}

} // namespace

double denseBytes(int64_t rows, int64_t cols, int valueBits)
{
    checkBits(valueBits);
    return static_cast<double>(rows) * static_cast<double>(cols) * valueBits / 8.0;
}

double unstructuredBytes(const SparsityMask& mask, int valueBits)
{
    checkBits(valueBits);
    return (static_cast<double>(mask.keptCount()) * valueBits + static_cast<double>(mask.size())) / 8.0;
}

double nmBytes(const SparsityMask& mask, const NMPattern& nm, int valueBits)
{
    checkBits(valueBits);
    validateNM(nm);
    const int indexBits = std::bit_width(static_cast<unsigned>(nm.m - 1)); // ceil(log2 m)
    return static_cast<double>(mask.keptCount()) * (valueBits + indexBits) / 8.0;
}

double lowRankBytes(int64_t rank, int64_t rows, int64_t cols, int valueBits)
{
    checkBits(valueBits);
    return static_cast<double>(rank) * static_cast<double>(rows + cols) * valueBits / 8.0;
}

CompressedLayer makeCompressedLayer(const MatrixRM& W, MatrixRM What, const LayerInputs& inputs, int valueBits)
{
    CompressedLayer out;
    out.paramsBefore = W.size();
    out.bytesBefore = denseBytes(W.rows(), W.cols(), valueBits);
    out.error = layerErrorReport(W, What, inputs.gram);
    out.weights = std::move(What);
    return out;
}

ErrorCurvePoint curvePoint(double x, const CompressedLayer& layer)
{
    ErrorCurvePoint p;
    p.x = x;
    p.weightError = layer.error.weightError;
    p.outputError = layer.error.outputError;
    p.paramsAfter = layer.paramsAfter;
    p.bytesAfter = layer.bytesAfter;
    return p;
}

} // namespace ll
