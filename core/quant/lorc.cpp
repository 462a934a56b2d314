#include "quant/lorc.h"

#include "lowrank/svd.h"
#include "util/error.h"

#include <algorithm>
#include <string>

namespace ll {

QuantizedLayer lorcCorrect(const MatrixRM& W, QuantizedLayer base, int64_t rank, const LayerInputs& in, Progress* progress)
{
    if (base.weights.rows() != W.rows() || base.weights.cols() != W.cols())
        fail(ErrorCode::InvalidArgument, "", "LoRC: the quantized layer does not match the weight matrix");
    if (rank < 0 || rank > std::min(W.rows(), W.cols()))
        fail(ErrorCode::InvalidArgument, "", "the LoRC rank must lie in 0.." + std::to_string(std::min(W.rows(), W.cols()))
                                                 + ", not " + std::to_string(rank));
    if (rank == 0)
        return base;
    const MatrixRM E = W - base.weights;
    LowRankFactors f = truncatedSvd(E, rank, progress);
    MatrixRM What = base.weights + f.A * f.B;
    base.factorA = std::move(f.A);
    base.factorB = std::move(f.B);
    base.bits.lowRank = 16.0 * static_cast<double>(rank) * static_cast<double>(W.rows() + W.cols());
    base.method += " + lorc r" + std::to_string(rank);
    base.info["lorc_rank"] = static_cast<double>(rank);
    finishQuantizedLayer(base, W, std::move(What), in);
    return base;
}

} // namespace ll
