#include "lowrank/svd.h"

#include "layer/checks.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/SVD>

#include <string>

namespace ll {

SvdBasis svdBasis(const MatrixRM& W, Progress* progress)
{
    requireUsableWeights(W, "the weight matrix");
    throwIfCancelled(progress);
    if (progress)
        progress->report(0.0, "SVD");
    const Eigen::MatrixXd Wd = W.cast<double>();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(Wd, Eigen::ComputeThinU | Eigen::ComputeThinV);
    throwIfCancelled(progress);
    SvdBasis basis;
    basis.U = svd.matrixU();
    basis.sigma = svd.singularValues();
    basis.VtTinv = svd.matrixV().transpose();
    if (progress)
        progress->report(1.0, "SVD");
    return basis;
}

LowRankFactors truncate(const SvdBasis& basis, int64_t k)
{
    if (k < 0 || k > basis.maxRank())
        fail(ErrorCode::InvalidArgument, "",
             "rank " + std::to_string(k) + " is outside 0.." + std::to_string(basis.maxRank()) + " for this matrix");
    const Eigen::VectorXd root = basis.sigma.head(k).cwiseSqrt(); // sqrt(S_k)
    LowRankFactors f;
    // A = U_k sqrt(S_k): (out, k);  B = sqrt(S_k) V_k^T T^-1: (k, in)
    f.A = (basis.U.leftCols(k) * root.asDiagonal()).cast<float>();
    f.B = (root.asDiagonal() * basis.VtTinv.topRows(k)).cast<float>();
    f.singularValues = basis.sigma;
    return f;
}

LowRankFactors truncatedSvd(const MatrixRM& W, int64_t k, Progress* progress)
{
    return truncate(svdBasis(W, progress), k);
}

Eigen::VectorXd singularValues(const MatrixRM& W)
{
    requireUsableWeights(W, "the weight matrix");
    const Eigen::MatrixXd Wd = W.cast<double>();
    return Eigen::BDCSVD<Eigen::MatrixXd>(Wd).singularValues();
}

} // namespace ll
