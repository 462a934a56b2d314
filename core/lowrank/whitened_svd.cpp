#include "lowrank/activation_aware.h"

#include "layer/checks.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include <algorithm>

namespace ll {

WhiteningFactor whiteningFactor(const Eigen::MatrixXf& gram)
{
    requireGram(gram, gram.rows(), "the Gram matrix");
    Eigen::MatrixXd G = gram.cast<double>();
    WhiteningFactor out;
    Eigen::LLT<Eigen::MatrixXd> llt(G);
    if (llt.info() != Eigen::Success) {
        // Lift the smallest eigenvalue to 1e-6 mean(diag G) (SVD-LLM's rule, made scale-free).
        const double lambdaMin = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(G, Eigen::EigenvaluesOnly)
                                     .eigenvalues()
                                     .minCoeff();
        const double floor = 1e-6 * std::max(G.diagonal().mean(), 1e-30);
        out.shift = std::max(0.0, -lambdaMin) + floor;
        G.diagonal().array() += out.shift;
        llt.compute(G);
        if (llt.info() != Eigen::Success)
            fail(ErrorCode::InvalidArgument, "", "the Gram matrix cannot be made positive definite for whitening");
    }
    out.L = llt.matrixL();
    return out;
}

SvdBasis whitenedSvdBasis(const MatrixRM& W, const Eigen::MatrixXf& gram, Progress* progress)
{
    requireUsableWeights(W, "the weight matrix");
    requireGram(gram, W.cols(), "the Gram matrix");
    throwIfCancelled(progress);
    const WhiteningFactor wf = whiteningFactor(gram);
    // W L: (out, in) @ (in, in)
    const Eigen::MatrixXd M = W.cast<double>() * wf.L.triangularView<Eigen::Lower>();
    throwIfCancelled(progress);
    Eigen::BDCSVD<Eigen::MatrixXd> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
    throwIfCancelled(progress);
    SvdBasis basis;
    basis.U = svd.matrixU();
    basis.sigma = svd.singularValues();
    // V^T L^-1 = (L^-T V)^T: one triangular solve instead of an inverse.
    basis.VtTinv = wf.L.transpose().triangularView<Eigen::Upper>().solve(svd.matrixV()).transpose();
    return basis;
}

LowRankFactors whitenedSvd(const MatrixRM& W, const Eigen::MatrixXf& gram, int64_t k, Progress* progress)
{
    return truncate(whitenedSvdBasis(W, gram, progress), k);
}

} // namespace ll
