#include "quant/eora.h"

#include "lowrank/svd.h"
#include "quant/lorc.h"
#include "util/error.h"
#include "util/progress.h"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <string>

namespace ll {

QuantizedLayer eoraCorrect(const MatrixRM& W, QuantizedLayer base, int64_t rank, const LayerInputs& in, Progress* progress)
{
    checkLowRankCorrection(W, base, rank, "EoRA");
    if (rank == 0)
        return base;
    if (!in.gram || in.gram->rows() != W.cols())
        fail(ErrorCode::InvalidArgument, "", "EoRA needs the calibration inputs' X^T X (give calibration text)");
    // The eigenspace of the inputs, in double: X^T X = Q diag(lambda) Q^T.
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(in.gram->cast<double>());
    if (eig.info() != Eigen::Success)
        fail(ErrorCode::InvalidArgument, "", "EoRA: the eigendecomposition of X^T X failed");
    throwIfCancelled(progress);
    Eigen::VectorXd lambda = eig.eigenvalues();
    const double floor = std::max(1e-6 * lambda.cwiseMax(0.0).mean(), 1e-30);
    lambda = lambda.cwiseMax(floor);
    const Eigen::MatrixXd& Q = eig.eigenvectors();
    const Eigen::VectorXd root = lambda.cwiseSqrt();
    // E' = E Q diag(sqrt lambda), truncated; then back: A <- A diag(1/sqrt lambda) Q^T.
    const Eigen::MatrixXd E = (W - base.weights).cast<double>();
    const MatrixRM projected = (E * Q * root.asDiagonal()).cast<float>();
    LowRankFactors f = correctionFactors(projected, rank, progress);
    MatrixRM B = (f.B.cast<double>() * root.cwiseInverse().asDiagonal() * Q.transpose()).cast<float>();
    return withLowRankCorrection(W, std::move(base), std::move(f.A), std::move(B), "eora", in);
}

} // namespace ll
