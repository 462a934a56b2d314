#include "quant/lorc.h"

#include "lowrank/randomized_svd.h"
#include "lowrank/svd.h"
#include "quant/packed_storage.h"
#include "util/error.h"

#include <algorithm>
#include <string>

namespace ll {

void checkLowRankCorrection(const MatrixRM& W, const QuantizedLayer& base, int64_t rank, const char* method)
{
    if (base.weights.rows() != W.rows() || base.weights.cols() != W.cols())
        fail(ErrorCode::InvalidArgument, "", std::string(method) + ": the quantized layer does not match the weight matrix");
    if (rank < 0 || rank > std::min(W.rows(), W.cols()))
        fail(ErrorCode::InvalidArgument, "", "the " + std::string(method) + " rank must lie in 0.."
                                                 + std::to_string(std::min(W.rows(), W.cols())) + ", not " + std::to_string(rank));
}

LowRankFactors correctionFactors(const MatrixRM& E, int64_t rank, Progress* progress)
{
    RandomizedSvdOptions o;
    o.powerIterations = kCorrectionPowerIterations;
    const int64_t full = std::min(E.rows(), E.cols());
    if (full <= kSketchAbove || 4 * (rank + o.oversampling) > full)
        return truncatedSvd(E, rank, progress);
    return randomizedSvd(E, rank, o, progress);
}

QuantizedLayer lorcCorrect(const MatrixRM& W, QuantizedLayer base, int64_t rank, const LayerInputs& in, Progress* progress)
{
    checkLowRankCorrection(W, base, rank, "LoRC");
    if (rank == 0)
        return base;
    LowRankFactors f = correctionFactors(W - base.weights, rank, progress);
    return withLowRankCorrection(W, std::move(base), std::move(f.A), std::move(f.B), "lorc", in);
}

QuantizedLayer withLowRankCorrection(const MatrixRM& W, QuantizedLayer base, MatrixRM A, MatrixRM B, const char* name,
                                     const LayerInputs& in)
{
    const int64_t rank = A.cols();
    // The factors are counted, and stored, at 16 bits: their values are F16's
    // (a factor with a value beyond F16's range stays F32, factorTensor).
    roundToType(A, DType::F16);
    roundToType(B, DType::F16);
    MatrixRM What = plusLowRank(base.weights, A, B);
    base.factorA = std::move(A);
    base.factorB = std::move(B);
    base.bits.lowRank = 16.0 * static_cast<double>(rank) * static_cast<double>(W.rows() + W.cols());
    base.method += std::string(" + ") + name + " r" + std::to_string(rank);
    base.info[std::string(name) + "_rank"] = static_cast<double>(rank);
    finishQuantizedLayer(base, W, std::move(What), in);
    return base;
}

} // namespace ll
