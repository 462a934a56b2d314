#include "lowrank/randomized_svd.h"

#include "layer/checks.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/random.h"

#include <Eigen/QR>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace ll {

namespace {

// An orthonormal basis of Y's columns: the thin Q of its QR decomposition.
Eigen::MatrixXf orth(const Eigen::MatrixXf& Y)
{
    Eigen::HouseholderQR<Eigen::MatrixXf> qr(Y);
    return qr.householderQ() * Eigen::MatrixXf::Identity(Y.rows(), Y.cols());
}

} // namespace

SvdBasis randomizedSvdBasis(const MatrixRM& W, int64_t k, const RandomizedSvdOptions& options, Progress* progress)
{
    requireUsableWeights(W, "the weight matrix");
    const int64_t full = std::min(W.rows(), W.cols());
    if (k < 0 || k > full)
        fail(ErrorCode::InvalidArgument, "", "rank " + std::to_string(k) + " is outside 0.." + std::to_string(full));
    if (options.oversampling < 0 || options.powerIterations < 0)
        fail(ErrorCode::InvalidArgument, "", "oversampling and power iterations cannot be negative");
    const int64_t l = std::min<int64_t>(k + options.oversampling, full);
    if (l == 0) { // nothing to sample: an empty basis
        SvdBasis empty;
        empty.U.resize(W.rows(), 0);
        empty.VtTinv.resize(0, W.cols());
        return empty;
    }

    Gaussian gauss(options.seed);
    Eigen::MatrixXf omega(W.cols(), l); // (in, l), filled row by row for a layout-free sequence
    for (Eigen::Index r = 0; r < omega.rows(); ++r)
        for (Eigen::Index c = 0; c < l; ++c)
            omega(r, c) = gauss.next();

    const int steps = 2 + options.powerIterations;
    Eigen::MatrixXf Q = orth(W * omega); // (out, l)
    for (int it = 0; it < options.powerIterations; ++it) {
        throwIfCancelled(progress);
        if (progress)
            progress->report(static_cast<double>(it + 1) / steps, "randomized SVD");
        const Eigen::MatrixXf Z = orth(W.transpose() * Q); // (in, l)
        Q = orth(W * Z);                                    // (out, l)
    }
    throwIfCancelled(progress);
    // B = Q^T W: (l, in), small enough for an exact SVD in double.
    const Eigen::MatrixXd B = (Q.transpose() * W).cast<double>();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
    SvdBasis basis;
    basis.U = Q.cast<double>() * svd.matrixU(); // (out, l)
    basis.sigma = svd.singularValues();
    basis.VtTinv = svd.matrixV().transpose();   // (l, in)
    if (progress)
        progress->report(1.0, "randomized SVD");
    return basis;
}

LowRankFactors randomizedSvd(const MatrixRM& W, int64_t k, const RandomizedSvdOptions& options, Progress* progress)
{
    return truncate(randomizedSvdBasis(W, k, options, progress), k);
}

} // namespace ll
