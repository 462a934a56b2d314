#include "prune/wanda.h"

#include "layer/checks.h"

namespace ll {

Eigen::VectorXf inputNormFromGram(const Eigen::MatrixXf& gram)
{
    requireGram(gram, gram.rows(), "the Gram matrix");
    // A PSD diagonal is >= 0; clamp rounding noise of an almost dead channel.
    return gram.diagonal().cwiseMax(0.0f).cwiseSqrt();
}

MatrixRM wandaScores(const MatrixRM& W, const Eigen::VectorXf& inputNorm)
{
    requireUsableWeights(W, "the weight matrix");
    requireChannelStat(inputNorm, W.cols(), "the input norm");
    // |W| (out, in) scaled column-wise by ||X_j|| (in,)
    return W.cwiseAbs() * inputNorm.asDiagonal();
}

SparsityMask wandaMask(const MatrixRM& W, const Eigen::VectorXf& inputNorm, double sparsity)
{
    return maskFromScores(wandaScores(W, inputNorm), sparsity, PruneScope::Row);
}

SparsityMask wandaMaskNM(const MatrixRM& W, const Eigen::VectorXf& inputNorm, const NMPattern& nm)
{
    return maskFromScoresNM(wandaScores(W, inputNorm), nm);
}

} // namespace ll
