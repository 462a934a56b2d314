#include "layer/obs_hessian.h"

#include "layer/checks.h"
#include "util/error.h"

#include <Eigen/Cholesky>

#include <string>

namespace ll {

InverseHessianFactor inverseHessianFactor(const Eigen::MatrixXf& H, double percdamp)
{
    requireGram(H, H.rows(), "the Hessian");
    if (!(percdamp >= 0.0))
        fail(ErrorCode::InvalidArgument, "", "the damping fraction must be >= 0, not " + std::to_string(percdamp));
    const Eigen::Index n = H.rows();
    InverseHessianFactor out;
    out.dead.assign(static_cast<size_t>(n), 0);

    Eigen::MatrixXd Hd = H.cast<double>();
    for (Eigen::Index j = 0; j < n; ++j)
        if (Hd(j, j) == 0.0) {
            out.dead[static_cast<size_t>(j)] = 1;
            Hd(j, j) = 1.0; // no signal: any positive value keeps H invertible
        }
    out.damp = percdamp * Hd.diagonal().mean();
    Hd.diagonal().array() += out.damp;

    Eigen::LLT<Eigen::MatrixXd> llt(Hd);
    if (llt.info() != Eigen::Success)
        fail(ErrorCode::InvalidArgument, "",
             "the calibration Hessian is not positive definite even after damping "
                 + std::to_string(percdamp) + " x mean(diag H); use more calibration tokens or more damping");
    const Eigen::MatrixXd Hinv = llt.solve(Eigen::MatrixXd::Identity(n, n));
    Eigen::LLT<Eigen::MatrixXd> lltInv(Hinv);
    if (lltInv.info() != Eigen::Success)
        fail(ErrorCode::InvalidArgument, "", "the inverse Hessian lost positive definiteness to rounding; add damping");
    out.upper = Eigen::MatrixXd(lltInv.matrixU()).cast<float>();
    return out;
}

} // namespace ll
