#include "lowrank/activation_aware.h"

#include "layer/checks.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/SVD>

#include <cmath>
#include <string>

namespace ll {

Eigen::VectorXd asvdScales(const Eigen::VectorXf& meanAbs, double alpha)
{
    if (!(alpha >= 0.0 && std::isfinite(alpha)))
        fail(ErrorCode::InvalidArgument, "", "the ASVD exponent alpha must be >= 0, not " + std::to_string(alpha));
    requireChannelStat(meanAbs, meanAbs.size(), "the mean |x|");
    return meanAbs.cast<double>().array().pow(alpha) + 1e-6;
}

SvdBasis asvdBasis(const MatrixRM& W, const Eigen::VectorXf& meanAbs, double alpha, Progress* progress)
{
    requireUsableWeights(W, "the weight matrix");
    requireChannelStat(meanAbs, W.cols(), "the mean |x|");
    const Eigen::VectorXd s = asvdScales(meanAbs, alpha); // (in,)
    throwIfCancelled(progress);
    // W diag(s): (out, in)
    const Eigen::MatrixXd M = W.cast<double>() * s.asDiagonal();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
    throwIfCancelled(progress);
    SvdBasis basis;
    basis.U = svd.matrixU();
    basis.sigma = svd.singularValues();
    // V^T diag(s)^-1: (r, in)
    basis.VtTinv = svd.matrixV().transpose() * s.cwiseInverse().asDiagonal();
    return basis;
}

LowRankFactors asvd(const MatrixRM& W, const Eigen::VectorXf& meanAbs, int64_t k, double alpha, Progress* progress)
{
    return truncate(asvdBasis(W, meanAbs, alpha, progress), k);
}

} // namespace ll
