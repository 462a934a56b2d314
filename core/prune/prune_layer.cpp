#include "prune/prune_layer.h"

#include "prune/magnitude.h"
#include "prune/sparsegpt.h"
#include "prune/wanda.h"
#include "quant/rtn.h"
#include "util/error.h"
#include "util/progress.h"

#include <cmath>
#include <string>

namespace ll {

namespace {

std::string label(const PruneConfig& c)
{
    // Appended piece by piece (GCC 12 warns falsely on "x" + std::to_string(...)).
    std::string s = pruneMethodName(c.method);
    s += ' ';
    if (c.nm) {
        s += std::to_string(c.nm->n);
        s += ':';
        s += std::to_string(c.nm->m);
    } else {
        s += std::to_string(static_cast<int>(std::lround(c.sparsity * 100.0)));
        s += '%';
    }
    if (c.quantize) {
        s += " + ";
        s += c.quantize->label();
    }
    return s;
}

Eigen::VectorXf wandaNorm(const LayerInputs& inputs)
{
    if (inputs.inputNorm.size() > 0)
        return inputs.inputNorm;
    if (inputs.gram)
        return inputNormFromGram(*inputs.gram);
    fail(ErrorCode::InvalidArgument, "", "Wanda needs the input channel norms (or the Gram matrix) of the layer");
}

SparsityMask selectMask(const MatrixRM& W, const PruneConfig& c, const LayerInputs& inputs)
{
    const bool row = c.method == PruneMethod::MagnitudeRow;
    if (c.method == PruneMethod::Wanda)
        return c.nm ? wandaMaskNM(W, wandaNorm(inputs), *c.nm) : wandaMask(W, wandaNorm(inputs), c.sparsity);
    return c.nm ? magnitudeMaskNM(W, *c.nm)
                : magnitudeMask(W, c.sparsity, row ? PruneScope::Row : PruneScope::Matrix, c.countRule);
}

// Bytes after, from the mask (and the grid when the kept values are quantized).
double storedBytes(const SparsityMask& mask, const PruneConfig& c)
{
    if (!c.quantize)
        return c.nm ? nmBytes(mask, *c.nm, c.valueBits) : unstructuredBytes(mask, c.valueBits);
    const int bits = c.quantize->bits;
    const double scalesPerWeight = gridBitsPerWeight(*c.quantize, mask.rows(), mask.cols()) - bits;
    const double scaleBytes = scalesPerWeight * static_cast<double>(mask.size()) / 8.0;
    return (c.nm ? nmBytes(mask, *c.nm, bits) : unstructuredBytes(mask, bits)) + scaleBytes;
}

} // namespace

const char* pruneMethodName(PruneMethod method)
{
    switch (method) {
    case PruneMethod::Magnitude: return "magnitude";
    case PruneMethod::MagnitudeRow: return "magnitude-row";
    case PruneMethod::Wanda: return "wanda";
    case PruneMethod::SparseGpt: return "sparsegpt";
    }
    return "?";
}

CompressedLayer pruneLayer(const MatrixRM& W, const PruneConfig& config, const LayerInputs& inputs, Progress* progress)
{
    throwIfCancelled(progress);
    if (config.quantize && config.method != PruneMethod::SparseGpt)
        fail(ErrorCode::InvalidArgument, "", "joint pruning and quantization is only available with SparseGPT");
    MatrixRM What;
    SparsityMask mask;
    if (config.method == PruneMethod::SparseGpt) {
        if (!inputs.gram)
            fail(ErrorCode::InvalidArgument, "", "SparseGPT needs the Gram matrix X^T X of the layer's inputs");
        SparseGptOptions o;
        o.sparsity = config.sparsity;
        o.nm = config.nm;
        o.blockSize = config.blockSize;
        o.percDamp = config.percDamp;
        o.countRule = config.countRule;
        if (config.quantize)
            o.quantizer = gridQuantizer(W, *config.quantize);
        SparseGptResult r = sparseGpt(W, *inputs.gram, o, progress);
        What = std::move(r.weights);
        mask = std::move(r.mask);
    } else {
        mask = selectMask(W, config, inputs);
        What = W;
        mask.applyTo(What);
    }
    CompressedLayer out = makeCompressedLayer(W, std::move(What), inputs, config.valueBits);
    out.method = label(config);
    out.paramsAfter = mask.keptCount();
    out.bytesAfter = storedBytes(mask, config);
    out.mask = std::move(mask);
    return out;
}

std::vector<double> defaultSparsitySteps()
{
    std::vector<double> s;
    for (int i = 0; i <= 9; ++i)
        s.push_back(i / 10.0);
    return s;
}

std::vector<ErrorCurvePoint> errorVsSparsity(const MatrixRM& W, const PruneConfig& config,
                                             const std::vector<double>& sparsities, const LayerInputs& inputs,
                                             Progress* progress)
{
    std::vector<ErrorCurvePoint> curve;
    PruneConfig c = config;
    c.nm.reset();
    for (size_t i = 0; i < sparsities.size(); ++i) {
        throwIfCancelled(progress);
        c.sparsity = sparsities[i];
        const double n = static_cast<double>(sparsities.size());
        SubProgress step(progress, static_cast<double>(i) / n, static_cast<double>(i + 1) / n);
        curve.push_back(curvePoint(c.sparsity, pruneLayer(W, c, inputs, &step)));
    }
    return curve;
}

} // namespace ll
