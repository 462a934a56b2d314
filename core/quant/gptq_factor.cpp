// GCC 12: false "may be used uninitialized" inside Eigen's AVX-512 kernels.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "quant/gptq_factor.h"

#include "engine/threads.h"
#include "util/error.h"

#include <Eigen/Cholesky>

#include <algorithm>
#include <string>

namespace ll {

void invertLowerTriangular(Eigen::Ref<Eigen::MatrixXd> L)
{
    const Eigen::Index n = L.rows();
    if (n <= 64) { // forward substitution against the identity
        Eigen::MatrixXd I = Eigen::MatrixXd::Identity(n, n);
        L.triangularView<Eigen::Lower>().solveInPlace(I);
        L = I;
        return;
    }
    // [A 0; B C]^-1 = [A^-1 0; -C^-1 B A^-1  C^-1]; A and C are independent.
    const Eigen::Index h = n / 2, m = n - h;
    auto A = L.topLeftCorner(h, h);
    auto B = L.bottomLeftCorner(m, h);
    auto C = L.bottomRightCorner(m, m);
    runParallel(2, [&](int64_t i) { invertLowerTriangular(i == 0 ? Eigen::Ref<Eigen::MatrixXd>(A) : Eigen::Ref<Eigen::MatrixXd>(C)); });
    // T = B A^-1 by slices of rows, then B = -C^-1 T by slices of columns (Eigen's TRMM is single-threaded).
    Eigen::MatrixXd T(m, h);
    const int64_t parts = std::min<int64_t>(computeThreads(), std::max<Eigen::Index>(1, std::min(m, h) / 64));
    runParallel(parts, [&](int64_t p) {
        const Eigen::Index r0 = m * p / parts, r1 = m * (p + 1) / parts;
        T.middleRows(r0, r1 - r0).noalias() = B.middleRows(r0, r1 - r0) * A.triangularView<Eigen::Lower>();
    });
    runParallel(parts, [&](int64_t p) {
        const Eigen::Index c0 = h * p / parts, c1 = h * (p + 1) / parts;
        B.middleCols(c0, c1 - c0).noalias() = -(C.triangularView<Eigen::Lower>() * T.middleCols(c0, c1 - c0));
    });
    L.topRightCorner(h, m).setZero();
}

Eigen::MatrixXf gptqInverseFactor(const Eigen::MatrixXf& H, double percdamp, const std::vector<int32_t>& order)
{
    const Eigen::Index n = H.rows();
    if (H.cols() != n || (!order.empty() && static_cast<Eigen::Index>(order.size()) != n))
        fail(ErrorCode::InvalidArgument, "", "the GPTQ Hessian must be square and match the column order");
    if (!(percdamp >= 0.0))
        fail(ErrorCode::InvalidArgument, "", "the damping fraction must be >= 0, not " + std::to_string(percdamp));
    // Hr = J P^T H P J: column b of Hr is column src(b) of H, gathered (H is column-major).
    auto src = [&](Eigen::Index k) { return order.empty() ? n - 1 - k : order[static_cast<size_t>(n - 1 - k)]; };
    Eigen::MatrixXd L(n, n);
    double mean = 0.0;
    for (Eigen::Index b = 0; b < n; ++b) {
        const float* col = H.col(src(b)).data();
        double* out = L.col(b).data();
        for (Eigen::Index a = b; a < n; ++a) // the lower triangle is all the factorization reads
            out[a] = col[src(a)];
        mean += out[b];
    }
    mean /= static_cast<double>(std::max<Eigen::Index>(n, 1));
    L.diagonal().array() += percdamp * mean;
    // Eigen's blocked LLT, in place (the lower triangle becomes L).
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>, Eigen::Lower> llt(L);
    if (llt.info() != Eigen::Success)
        fail(ErrorCode::InvalidArgument, "",
             "the calibration Hessian is not positive definite even after damping " + std::to_string(percdamp)
                 + " x mean(diag H); use more calibration tokens or more damping");
    invertLowerTriangular(L);
    // U = J L^-1 J: reversing both indices of a column-major matrix reverses its storage.
    Eigen::MatrixXf U(n, n);
    const double* s = L.data();
    float* d = U.data();
    const Eigen::Index total = n * n;
    for (Eigen::Index i = 0; i < total; ++i)
        d[i] = static_cast<float>(s[total - 1 - i]);
    return U;
}

} // namespace ll
