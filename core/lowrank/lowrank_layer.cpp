#include "lowrank/lowrank_layer.h"

#include "lowrank/activation_aware.h"
#include "util/error.h"
#include "util/progress.h"

#include <algorithm>
#include <string>

namespace ll {

CompressedLayer compressedFromFactors(const MatrixRM& W, LowRankFactors f, const LowRankConfig& config,
                                      const LayerInputs& inputs)
{
    CompressedLayer out = makeCompressedLayer(W, f.product(), inputs, config.valueBits);
    out.method = std::string(lowRankMethodName(config.method)) + " rank " + std::to_string(f.rank());
    out.paramsAfter = f.parameterCount();
    out.bytesAfter = lowRankBytes(f.rank(), W.rows(), W.cols(), config.valueBits);
    out.factorA = std::move(f.A);
    out.factorB = std::move(f.B);
    return out;
}

const char* lowRankMethodName(LowRankMethod method)
{
    switch (method) {
    case LowRankMethod::Svd: return "svd";
    case LowRankMethod::RandomizedSvd: return "rsvd";
    case LowRankMethod::Asvd: return "asvd";
    case LowRankMethod::Whitened: return "svd-llm";
    }
    return "?";
}

SvdBasis lowRankBasis(const MatrixRM& W, const LowRankConfig& config, const LayerInputs& inputs, int64_t rankHint,
                      Progress* progress)
{
    switch (config.method) {
    case LowRankMethod::Svd:
        return svdBasis(W, progress);
    case LowRankMethod::RandomizedSvd:
        return randomizedSvdBasis(W, rankHint, config.randomized, progress);
    case LowRankMethod::Asvd:
        if (inputs.meanAbs.size() == 0)
            fail(ErrorCode::InvalidArgument, "", "ASVD needs the mean |x| of the layer's input channels");
        return asvdBasis(W, inputs.meanAbs, config.asvdAlpha, progress);
    case LowRankMethod::Whitened:
        if (!inputs.gram)
            fail(ErrorCode::InvalidArgument, "", "SVD-LLM whitening needs the Gram matrix X^T X of the layer's inputs");
        return whitenedSvdBasis(W, *inputs.gram, progress);
    }
    fail(ErrorCode::InvalidArgument, "", "unknown low-rank method");
}

CompressedLayer factorizeLayer(const MatrixRM& W, const LowRankConfig& config, const LayerInputs& inputs,
                               Progress* progress)
{
    const SvdBasis basis = lowRankBasis(W, config, inputs, config.rank, progress);
    return compressedFromFactors(W, truncate(basis, config.rank), config, inputs);
}

std::vector<ErrorCurvePoint> errorVsRank(const MatrixRM& W, const LowRankConfig& config,
                                         const std::vector<int64_t>& ranks, const LayerInputs& inputs,
                                         Progress* progress)
{
    std::vector<ErrorCurvePoint> curve;
    if (ranks.empty())
        return curve;
    const int64_t top = *std::max_element(ranks.begin(), ranks.end());
    SubProgress decomposition(progress, 0.0, 0.5);
    const SvdBasis basis = lowRankBasis(W, config, inputs, top, &decomposition);
    for (size_t i = 0; i < ranks.size(); ++i) {
        throwIfCancelled(progress);
        const CompressedLayer layer = compressedFromFactors(W, truncate(basis, ranks[i]), config, inputs);
        curve.push_back(curvePoint(static_cast<double>(ranks[i]), layer));
        if (progress)
            progress->report(0.5 + 0.5 * static_cast<double>(i + 1) / static_cast<double>(ranks.size()),
                             "error vs rank");
    }
    return curve;
}

} // namespace ll
